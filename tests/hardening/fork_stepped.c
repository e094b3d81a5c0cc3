/* fork_stepped.c - fork_nested's race made deterministic: a SIGALRM handler
 * forks at every instruction of fork()'s return path in the parent, and at
 * evenly spaced instructions of its path before the clone (issue 16).
 *
 * fork_nested lets a timer land where it may; a handler that forks while a
 * fork handler of its own thread sits between two particular instructions
 * then hangs (once the level was counted down before jemalloc's mutexes were
 * released, the nested fork took them again: 1 run in 15-50). Here a tracer
 * (ptrace) single-steps a single-threaded tracee through one fork() per
 * point and delivers SIGALRM exactly there. The tracee's handler forks, its
 * child _exits at once, and the handler waits for it; the tracee's own
 * child _exits too. A point whose handler does not come back within a few
 * seconds is a hang. The tracer is the scenario of a supervised child
 * (supervise.h), so a hang of the tracer itself is killed too.
 *
 * Passes: measure (single steps from the start of an iteration to the clone
 * and from the clone's return to fork()'s return into this program: about
 * 4,200 and 2,250 under the preload), then one fork per point: each of the
 * first POST_ALL instructions after the clone in the parent (glibc's return
 * path and poolmalloc's postfork handler, up to its jemalloc call), then
 * POST_POINTS and PRE_POINTS points spread evenly over the rest and over the
 * instructions before the clone. Under the preload before the fix: hung at
 * instruction 53 after the clone, every run. About 15 s on 2 loaded cores.
 *
 * x86-64 Linux only (syscall registers); exit 77 (skipped) elsewhere or
 * where ptrace is not allowed.
 * usage: fork_stepped [POST_ALL [POST_POINTS [PRE_POINTS]]] (300 60 60) */
#include "supervise.h"

#if defined(__x86_64__) && defined(__linux__)
#include <stddef.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>

extern char __executable_start[], etext[]; /* this program's code */

static long post_all = 300, post_points = 60, pre_points = 60;
static volatile long go_on = 1, handler_forks, handler_errors;

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  if (pid < 0 || hard_waitpid(pid, &status) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    handler_errors++;
  else
    handler_forks++;
  errno = saved;
}

/* the traced process: one fork per SIGSTOP until the tracer clears go_on */
static void tracee(void) {
  if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) _exit(77);
  void *keep[20];
  if (hard_keep_large(keep, 20) != 0 || hard_on_signal(SIGALRM, on_alarm) != 0) _exit(1);
  for (long n = 0;; n++) {
    free(keep[n % 20]); /* a large free and malloc between forks */
    keep[n % 20] = malloc(70000 + (size_t)(n % 50) * 1000);
    raise(SIGSTOP); /* the tracer starts counting here */
    if (!go_on) break;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status = 0;
    if (pid < 0 || hard_waitpid(pid, &status) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      _exit(1);
  }
  _exit(handler_errors ? 1 : 0);
}

static pid_t child;
static volatile sig_atomic_t timed_out; /* the tracer's alarm rang */

static void on_timeout(int sig) {
  (void)sig;
  timed_out = 1;
}

/* waits for the tracee's next stop; 0 if it stopped (*status), 1 if it
 * exited, 2 if it did not stop before the tracer's alarm (killed) */
static int next_stop(int *status) {
  for (;;) {
    pid_t w = waitpid(child, status, __WALL);
    if (w == child) return WIFSTOPPED(*status) ? 0 : 1;
    if (w < 0 && errno != EINTR) return 1;
    if (timed_out) {
      kill(child, SIGKILL);
      waitpid(child, status, __WALL);
      return 2;
    }
  }
}

/* resumes the tracee with `how`, passing on a signal it stopped with
 * (SIGCHLD of its children) but not the traps of single steps and
 * syscall stops */
static long resume(int how, int status) {
  int sig = WSTOPSIG(status);
  if (sig == SIGTRAP || sig == (SIGTRAP | 0x80) || sig == SIGSTOP) sig = 0;
  return ptrace(how, child, NULL, (void *)(long)sig);
}

/* from the tracee's SIGSTOP to its clone syscall's entry (pre, single
 * steps) or exit (post). pre: counts the single steps to the clone in
 * *steps, or stops after at most *steps; returns 0, or what next_stop did */
static int run_to_clone(int *status, long *steps, int count_pre) {
  long n = 0;
  for (;;) {
    int how = count_pre ? PTRACE_SINGLESTEP : PTRACE_SYSCALL;
    if (resume(how, *status) != 0) return 1;
    int r = next_stop(status);
    if (r) return r;
    int sig = WSTOPSIG(*status);
    if (sig != SIGTRAP && sig != (SIGTRAP | 0x80)) continue; /* a signal */
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, child, NULL, &regs) != 0) return 1;
    if (count_pre) {
      /* the next instruction is the clone's syscall: 0f 05, rax clone */
      long insn = ptrace(PTRACE_PEEKTEXT, child, (void *)regs.rip, NULL);
      if ((insn & 0xffff) == 0x050f && (regs.rax == SYS_clone || regs.rax == SYS_fork))
        break;
      if (++n == *steps) return 0; /* the point before the clone */
      continue;
    }
    if ((regs.orig_rax == SYS_clone || regs.orig_rax == SYS_fork) &&
        regs.rax != (unsigned long long)-ENOSYS)
      break; /* the clone's exit in the parent */
  }
  if (count_pre) {
    *steps = n;
    /* step over the syscall: the parent side returns */
    if (resume(PTRACE_SYSCALL, *status) != 0) return 1; /* entry */
    int r = next_stop(status);
    if (r) return r;
    return run_to_clone(status, steps, 0);
  }
  return 0;
}

/* single steps from here until the tracee runs this program's code again
 * (fork returned): the count, or at most `max` steps; -1 on a failure */
static long steps_to_return(int *status, long max) {
  long n = 0;
  while (n < max) {
    if (resume(PTRACE_SINGLESTEP, *status) != 0) return -1;
    if (next_stop(status)) return -1;
    if (WSTOPSIG(*status) != SIGTRAP) continue; /* a signal, not a step */
    n++;
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, child, NULL, &regs) != 0) return -1;
    if (regs.rip >= (unsigned long long)__executable_start &&
        regs.rip < (unsigned long long)etext)
      break;
  }
  return n;
}

/* one iteration from the tracee's SIGSTOP: SIGALRM after `pre` single
 * steps from the stop (pre >= 0) or after `post` from the clone's return;
 * runs to the next SIGSTOP. 0: fine, 2: hung, 1: other failure */
static int one_point(int *status, long pre, long post) {
  int r;
  timed_out = 0;
  alarm(10); /* far more than an iteration takes */
  if (pre >= 0) {
    long steps = pre;
    r = pre == 0 ? 0 : run_to_clone(status, &steps, 1);
  } else {
    r = run_to_clone(status, &(long){0}, 0);
    if (r == 0 && post > 0 && steps_to_return(status, post) < 0) r = 1;
  }
  if (r) return r;
  /* deliver SIGALRM at this instruction (a single-step trap is a
   * signal-delivery stop: its signal can be replaced) */
  if (ptrace(PTRACE_CONT, child, NULL, (void *)(long)SIGALRM) != 0) return 1;
  for (;;) { /* to the next iteration's SIGSTOP, passing on SIGCHLD */
    r = next_stop(status);
    if (r) return r;
    if (WSTOPSIG(*status) == SIGSTOP) {
      alarm(0);
      return 0;
    }
    if (resume(PTRACE_CONT, *status) != 0) return 1;
  }
}

static int scenario(void *arg) {
  (void)arg;
  child = fork();
  if (child < 0) return 1;
  if (child == 0) tracee();
  struct sigaction sa; /* the tracer's own SIGALRM: a bound on each wait */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_timeout;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: waitpid returns EINTR */
  alarm(60);
  int status = 0;
  if (next_stop(&status) != 0) { /* the first SIGSTOP, or ptrace refused */
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) return 77;
    hard_fail("tracee did not start");
    return 1;
  }
  /* measure: steps to the clone, and from its return to fork's return */
  long pre = -1;
  int r = run_to_clone(&status, &pre, 1);
  long post = r == 0 ? steps_to_return(&status, 1000000) : -1;
  if (r != 0 || post <= 0) {
    hard_fail("could not measure fork() (%d, %ld)", r, post);
    kill(child, SIGKILL);
    return 1;
  }
  for (;;) { /* to the next SIGSTOP */
    if (resume(PTRACE_CONT, status) != 0 || next_stop(&status) != 0) return 1;
    if (WSTOPSIG(status) == SIGSTOP) break;
  }
  alarm(0);
  fprintf(stderr, "measured: %ld steps to the clone, %ld after it\n", pre, post);
  long every = pre / pre_points > 0 ? pre / pre_points : 1;
  long post_every =
      (post - post_all) / post_points > 0 ? (post - post_all) / post_points : 1;
  long points = 0, first_hang_pre = -1, first_hang_post = -1;
  for (long k = 0; k < post && r == 0; k += k < post_all ? 1 : post_every, points++) {
    r = one_point(&status, -1, k);
    if (r == 2) first_hang_post = k;
  }
  for (long k = 0; k < pre && r == 0; k += every, points++) {
    r = one_point(&status, k, 0);
    if (r == 2) first_hang_pre = k;
  }
  if (r == 2) {
    hard_fail("SIGALRM handler's fork hung: %s %ld of %s (the tracee is killed)",
              first_hang_post >= 0 ? "instruction" : "point",
              first_hang_post >= 0 ? first_hang_post : first_hang_pre,
              first_hang_post >= 0 ? "fork()'s return path" : "the path to the clone");
    return 2;
  }
  if (r != 0) {
    hard_fail("tracing failed (%d)", r);
    kill(child, SIGKILL);
    return 1;
  }
  long forks = ptrace(PTRACE_PEEKDATA, child, (void *)&handler_forks, NULL);
  ptrace(PTRACE_POKEDATA, child, (void *)&go_on, NULL); /* go_on = 0: the end */
  resume(PTRACE_CONT, status);
  if (next_stop(&status) != 1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    hard_fail("tracee failed (status %#x)", status);
    return 1;
  }
  fprintf(stderr,
          "%ld points (%ld instructions to the clone, every %ld; %ld after it, each of "
          "the first %ld, then every %ld), %ld handler forks\n",
          points, pre, every, post, post_all, post_every, forks);
  if (forks != points) hard_fail("%ld handler forks for %ld points", forks, points);
  return hard_failures == 0 ? 0 : 1;
}

/* whether this system lets a child be traced by its parent */
static int ptrace_works(void) {
  pid_t pid = fork();
  if (pid == 0) {
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) _exit(77);
    raise(SIGSTOP);
    _exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 0;
  int ok = WIFSTOPPED(status);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return ok;
}

int main(int argc, char **argv) {
  if (argc > 1) post_all = atol(argv[1]);
  if (argc > 2) post_points = atol(argv[2]);
  if (argc > 3) pre_points = atol(argv[3]);
  if (pre_points < 1) pre_points = 1;
  if (post_points < 1) post_points = 1;
  hard_check_preload();
  if (!ptrace_works()) {
    printf("fork_stepped: ptrace is not allowed here\n");
    return 77;
  }
  int rc = hard_supervise(scenario, NULL, 140, "fork_stepped scenario");
  printf("fork_stepped: a SIGALRM handler forks at each step of fork(): %s\n",
         rc == SUP_OK     ? "ok"
         : rc == SUP_HUNG ? "HUNG"
                          : "FAILED");
  return rc;
}
#else
int main(void) {
  printf("fork_stepped: x86-64 Linux only\n");
  return 77;
}
#endif
