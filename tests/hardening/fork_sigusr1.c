/* fork_sigusr1.c - a SIGUSR1 handler forks while the thread it interrupted
 * is inside malloc or free of a large block (issue 16, the shape of glibc's
 * tst-mallocfork2).
 *
 * The main thread frees and allocates blocks of 40-300 KiB (the large tier,
 * past the first 16 directly mapped ones) in a loop for SECONDS, checking
 * each block's first and last byte. Another thread sends it SIGUSR1 0-20 us
 * after each free/malloc pair; the handler forks and waits for its child. Many signals
 * land inside the interrupted malloc or free (counted): a prepare handler that waits for
 * a lock the interrupted call holds waits for itself. Under poolmalloc the child also
 * allocates, grows and frees a large block before it _exits (the large tier must work in
 * such a child); under glibc it _exits at once, and the sender is a process: glibc's fork
 * is async-signal-safe with respect to malloc only in a single-threaded process (it takes
 * its arena locks when there are threads).
 *
 * Supervised (supervise.h): a hang is exit 2, anything else wrong exit 1.
 *
 * usage: fork_sigusr1 [SECONDS]   (default 2) */
#include "supervise.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define SLOTS 64

static double run_secs = 2;
static int preloaded;
static volatile sig_atomic_t in_call, hit_in_call;
static volatile long handler_forks, handler_errors;
static pthread_t main_thread;

static void on_usr1(int sig) {
  (void)sig;
  int saved = errno;
  hit_in_call |= in_call;
  pid_t pid = fork();
  if (pid == 0) {
    if (preloaded) {
      char *p = malloc(150 * 1024);
      if (p == NULL) _exit(3);
      memset(p, 7, 150 * 1024);
      char *q = realloc(p, 300 * 1024);
      if (q == NULL || q[149 * 1024] != 7) _exit(4);
      free(q);
    }
    _exit(0);
  }
  if (pid < 0) {
    handler_errors++;
  } else {
    int status = 0;
    if (hard_waitpid(pid, &status) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      handler_errors++;
    handler_forks++;
  }
  errno = saved;
}

/* shared with the sender (a thread, or a process under glibc): the sender
 * waits for the main loop to finish an operation since its last signal, so
 * the handler's forks cannot starve the loop (glibc's test stops its sender
 * process for the same reason) */
struct shared {
  atomic_long ops;
  atomic_int stop;
};
static struct shared *sh;

static void send_loop(void (*send)(void)) {
  uint64_t x = 88172645463325252ull;
  long seen = -1;
  while (!atomic_load(&sh->stop)) {
    long now = atomic_load(&sh->ops);
    if (now == seen) {
      sched_yield();
      continue;
    }
    seen = now;
    /* 0-20 us: the signal lands anywhere in the next free/malloc pair */
    for (volatile unsigned spin = (unsigned)(hard_rand(&x) % 20000); spin > 0; spin--) {
    }
    send();
  }
}

static void send_thread(void) {
  pthread_kill(main_thread, SIGUSR1);
}
static pid_t parent_pid;
static void send_process(void) {
  if (kill(parent_pid, SIGUSR1) != 0) _exit(0);
}

static void *sender_thread(void *arg) {
  (void)arg;
  send_loop(send_thread);
  return NULL;
}

static int scenario(void *arg) {
  (void)arg;
  main_thread = pthread_self();
  if (hard_on_signal(SIGUSR1, on_usr1) != 0) return 1;

  unsigned char *p[SLOTS] = {0};
  size_t n[SLOTS] = {0};
  for (int i = 0; i < 20; i++) /* past the first 16 directly mapped blocks */
    free(malloc(50000));

  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return 1;
  pthread_t sender;
  pid_t sender_pid = -1;
  if (preloaded) {
    if (pthread_create(&sender, NULL, sender_thread, NULL) != 0) return 1;
  } else {
    parent_pid = getpid();
    sender_pid = fork();
    if (sender_pid == 0) {
      send_loop(send_process);
      _exit(0);
    }
  }
  uint64_t x = 0x9E3779B97F4A7C15ull;
  long ops = 0, hits = 0, bad = 0;
  double end = hard_now() + run_secs;
  while (hard_now() < end) {
    unsigned i = (unsigned)(hard_rand(&x) % SLOTS);
    if (p[i] != NULL &&
        (p[i][0] != (unsigned char)i || p[i][n[i] - 1] != (unsigned char)~i))
      bad++;
    size_t sz = 40000 + (size_t)(hard_rand(&x) % 260000);
    hit_in_call = 0;
    in_call = 1;
    free(p[i]);
    p[i] = malloc(sz);
    in_call = 0;
    hits += hit_in_call;
    if (p[i] == NULL) {
      bad++;
      continue;
    }
    n[i] = sz;
    p[i][0] = (unsigned char)i;
    p[i][sz - 1] = (unsigned char)~i;
    ops++;
    atomic_store(&sh->ops, ops);
  }
  atomic_store(&sh->stop, 1);
  if (preloaded) {
    pthread_join(sender, NULL);
  } else {
    kill(sender_pid, SIGKILL);
    int st;
    hard_waitpid(sender_pid, &st);
  }
  signal(SIGUSR1, SIG_IGN);
  for (int i = 0; i < SLOTS; i++)
    free(p[i]);
  fprintf(stderr,
          "malloc/free pairs %ld, handler forks %ld (%ld inside malloc/free), errors "
          "%ld+%ld\n",
          ops, handler_forks, hits, bad, handler_errors);
  if (bad || handler_errors)
    hard_fail("%ld bad blocks or children", bad + handler_errors);
  if (handler_forks == 0) hard_fail("no signal handler forked");
  return hard_failures == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 1) run_secs = atof(argv[1]);
  preloaded = hard_check_preload();
  int rc = hard_supervise(scenario, NULL, run_secs + 20, "fork_sigusr1 scenario");
  printf("fork_sigusr1: SIGUSR1 handler forks inside large malloc/free: %s\n",
         rc == SUP_OK     ? "ok"
         : rc == SUP_HUNG ? "HUNG"
                          : "FAILED");
  return rc;
}
