/* fork_nested.c - a SIGALRM handler forks while its own thread is inside
 * fork() (issue 16, the shape of glibc's tst-mallocfork, glibc bug 838).
 *
 * A single-threaded process (nested forks in a multi-threaded one deadlock
 * in glibc's own atfork lock, with any malloc) with the large tier in use
 * (20 large blocks first, so the embedded jemalloc has started) forks in a
 * loop for SECONDS; every child _exits at once. An interval timer (50-450
 * us, changed after every signal) raises SIGALRM, whose handler forks too
 * (its child _exits at once) and waits for its child. Many handler forks
 * land between the loop's fork handlers: a prepare handler that waits for
 * something its own outer fork holds hangs there.
 *
 * Supervised (supervise.h): a hang is exit 2, anything else wrong exit 1.
 *
 * usage: fork_nested [SECONDS]   (default 2) */
#include "supervise.h"

#include <sys/time.h>

static double run_secs = 2;
static volatile sig_atomic_t in_fork; /* the loop is inside fork() */
static volatile long handler_forks, nested_forks, handler_errors;
static unsigned timer_seed = 12345;

static void arm_timer(void) {
  timer_seed = timer_seed * 1103515245u + 12345u;
  struct itimerval it = {{0, 0}, {0, 50 + (long)(timer_seed >> 16) % 400}};
  setitimer(ITIMER_REAL, &it, NULL);
}

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  int nested = in_fork;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  if (pid < 0) {
    handler_errors++;
  } else {
    int status = 0;
    if (hard_waitpid(pid, &status) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      handler_errors++;
    handler_forks++;
    nested_forks += nested;
  }
  arm_timer();
  errno = saved;
}

static int scenario(void *arg) {
  (void)arg;
  void *keep[20];
  if (hard_keep_large(keep, 20) != 0 || hard_on_signal(SIGALRM, on_alarm) != 0) return 1;
  long loops = 0, bad = 0;
  double end = hard_now() + run_secs;
  arm_timer();
  while (hard_now() < end) {
    free(keep[loops % 20]); /* a large free and malloc between forks */
    keep[loops % 20] = malloc(70000 + (size_t)(loops % 50) * 1000);
    if (keep[loops % 20] == NULL) bad++;
    in_fork = 1;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    in_fork = 0;
    if (pid < 0) {
      bad++;
      continue;
    }
    int status = 0;
    if (hard_waitpid(pid, &status) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      bad++;
    loops++;
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  signal(SIGALRM, SIG_IGN);
  for (int i = 0; i < 20; i++)
    free(keep[i]);
  fprintf(stderr,
          "loop forks %ld, handler forks %ld (%ld during a loop fork), errors %ld+%ld\n",
          loops, handler_forks, nested_forks, bad, handler_errors);
  if (bad || handler_errors)
    hard_fail("%ld failed forks or children", bad + handler_errors);
  if (handler_forks == 0) hard_fail("the timer never forked");
  return hard_failures == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 1) run_secs = atof(argv[1]);
  hard_check_preload();
  int rc = hard_supervise(scenario, NULL, run_secs + 20, "fork_nested scenario");
  printf("fork_nested: SIGALRM handler forks during fork(): %s\n", rc == SUP_OK ? "ok"
                                                                   : rc == SUP_HUNG
                                                                       ? "HUNG"
                                                                       : "FAILED");
  return rc;
}
