/* hard.h - helpers shared by the hardening tests (header only).
 *
 * Every program is run twice by run_both.sh: once without the preload
 * (PM_HARD_EXPECT=0) and once with LD_PRELOAD=libpoolmalloc.so
 * (PM_HARD_EXPECT=1); hard_check_preload() makes sure that the run really is
 * (or is not) under poolmalloc. hard_watchdog() turns a hang into a failure:
 * it prints one line and aborts (a core, if enabled, shows where it hung).
 * Failures are printed as "FAIL: ..." lines on stdout. */
#ifndef HARD_H
#define HARD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static int hard_failures;

static void hard_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void hard_fail(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  /* write(2), not stdio: callable from any thread, also after fork */
  ssize_t w1 = write(1, "FAIL: ", 6);
  ssize_t w2 = write(1, buf, (size_t)n);
  (void)w1;
  (void)w2;
  __atomic_add_fetch(&hard_failures, 1, __ATOMIC_RELAXED);
}

/* true if poolmalloc is the process's allocator */
static inline int hard_under_poolmalloc(void) {
  return dlsym(RTLD_DEFAULT, "poolmalloc_version") != NULL;
}

/* PM_HARD_EXPECT=1: must run under poolmalloc; 0: must not; unset: either.
 * Exits 1 on a mismatch. Returns whether poolmalloc is there. */
static inline int hard_check_preload(void) {
  int have = hard_under_poolmalloc();
  const char *e = getenv("PM_HARD_EXPECT");
  if (e != NULL && (e[0] == '1') != have) {
    printf("FAIL: PM_HARD_EXPECT=%s but poolmalloc is %s\n", e,
           have ? "loaded" : "not loaded");
    exit(1);
  }
  return have;
}

static unsigned hard_watchdog_secs;
static const char *hard_watchdog_what = "test";

static void hard_on_watchdog(int sig) {
  (void)sig;
  char msg[160];
  int n =
      snprintf(msg, sizeof msg, "FAIL: watchdog: %s still running after %u s (hang?)\n",
               hard_watchdog_what, hard_watchdog_secs);
  ssize_t w = write(1, msg, (size_t)n);
  w = write(2, msg, (size_t)n);
  (void)w;
  signal(SIGABRT, SIG_DFL);
  abort();
}

/* SIGALRM after secs seconds ends the process with a message and SIGABRT.
 * Programs that use alarm() themselves do not call this. */
static inline void hard_watchdog(unsigned secs, const char *what) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = hard_on_watchdog;
  sigaction(SIGALRM, &sa, NULL);
  hard_watchdog_secs = secs;
  hard_watchdog_what = what;
  alarm(secs);
}

/* handler for sig with SA_RESTART and nothing masked; 0 or -1 */
static inline int hard_on_signal(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  return sigaction(sig, &sa, NULL);
}

/* n large blocks (100 KB and up, first 4 KiB written), so the next large
 * blocks come from jemalloc rather than the first 16 direct mappings;
 * 0 or -1 */
static inline int hard_keep_large(void **keep, int n) {
  for (int i = 0; i < n; i++) {
    keep[i] = malloc(100000 + (size_t)i * 4096);
    if (keep[i] == NULL) return -1;
    memset(keep[i], i, 4096);
  }
  return 0;
}

static inline double hard_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* SIGCHLD blocked in the calling thread, for hard_wait_bounded */
static inline void hard_block_sigchld(void) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
}

/* every signal unblocked (a forked child before exec) */
static inline void hard_unblock_signals(void) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Waits at most `secs` for child `pid`, with SIGCHLD blocked in the calling
 * thread (the wait sleeps in sigtimedwait and wakes when a child exits; at
 * least every 50 ms, so a SIGCHLD taken by someone else is not missed).
 * Returns waitpid's result: pid, -1 on error, or 0 when the child was still
 * running and has been killed (SIGKILL) and reaped. */
static inline pid_t hard_wait_bounded(pid_t pid, int *status, double secs) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  double deadline = hard_now() + secs;
  pid_t w;
  while ((w = waitpid(pid, status, WNOHANG)) == 0) {
    double left = deadline - hard_now();
    if (left <= 0) break;
    if (left > 0.05) left = 0.05;
    struct timespec ts = {0, (long)(left * 1e9)};
    sigtimedwait(&chld, NULL, &ts);
  }
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
  }
  return w;
}

static inline void hard_sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static inline uint64_t hard_rand(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* fills n bytes from seed; returns the checksum of what it wrote */
static inline uint64_t hard_fill(void *p, size_t n, uint64_t seed) {
  unsigned char *c = (unsigned char *)p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    c[i] = (unsigned char)(seed + i * 31 + (i >> 8) + (seed >> 17));
    h = (h ^ c[i]) * 1099511628211ull;
  }
  return h;
}

static inline uint64_t hard_sum(const void *p, size_t n) {
  const unsigned char *c = (const unsigned char *)p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

/* resident set size in KiB, from /proc/self/statm (no allocation) */
static inline long hard_rss_kib(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  unsigned long size = 0, resident = 0;
  if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return -1;
  return (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

#endif
