/* glibc_rules.c - three glibc behaviours that glibc's own malloc tests check
 * (issue 16):
 *   1. posix_memalign that fails for lack of memory returns ENOMEM and
 *      leaves errno ENOMEM (tst-malloc-thread-fail): an impossible size, and
 *      a possible one under RLIMIT_AS;
 *   2. malloc_stats is not a cancellation point: a thread with a pending
 *      cancellation still writes the statistics, and is cancelled at its
 *      next cancellation point (tst-malloc-stats-cancellation);
 *   3. aligned_alloc with an alignment that is not a power of two (65, 0)
 *      fails with EINVAL (C17 DR 460, glibc >= 2.38; older glibc rounds the
 *      alignment up, and that is accepted without the preload); memalign
 *      still rounds it up.
 * Prints one line per check; the lines are the same under glibc and
 * poolmalloc. Each check that changes process state runs in a child. */
#include "hard.h"

#include <gnu/libc-version.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>

static int glibc_at_least(int major, int minor) {
  int a = 0, b = 0;
  sscanf(gnu_get_libc_version(), "%d.%d", &a, &b);
  return a > major || (a == major && b >= minor);
}

static int run_child(int (*fn)(void), const char *what) {
  fflush(NULL);
  hard_block_sigchld();
  pid_t pid = fork();
  if (pid == 0) {
    hard_unblock_signals();
    _exit(fn());
  }
  int status = 0;
  pid_t w = hard_wait_bounded(pid, &status, 20);
  int ok = w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) hard_fail("%s (child status %#x%s)", what, status, w == 0 ? ", hung" : "");
  return ok;
}

/* 1a: a size no allocator can serve */
static void posix_memalign_huge(void) {
  void *p = (void *)1;
  errno = 0;
  int rc = posix_memalign(&p, 64, SIZE_MAX - 4096);
  int e = errno;
  if (rc != ENOMEM || e != ENOMEM || p != (void *)1)
    hard_fail("posix_memalign(64, SIZE_MAX-4096): returned %d, errno %d (%s), want ENOMEM "
              "twice and *memptr untouched",
              rc, e, strerror(e));
  else
    printf("posix_memalign of an impossible size: ENOMEM, errno ENOMEM\n");
}

/* 1b: 256 MiB with 32 MiB of address space left */
static int posix_memalign_rlimit_child(void) {
  free(malloc(100)); /* the allocator's own start-up happens before the limit */
  long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL || fscanf(f, "%ld", &pages) != 1) return 2;
  fclose(f);
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (32 << 20);
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 3;
  for (size_t align = 64; align <= 65536; align *= 32) {
    void *p = (void *)1;
    errno = 0;
    int rc = posix_memalign(&p, align, (size_t)256 << 20);
    int e = errno;
    if (rc != ENOMEM || e != ENOMEM || p != (void *)1) {
      printf("FAIL: posix_memalign(%zu, 256 MiB) under RLIMIT_AS: returned %d, errno %d "
             "(%s), want ENOMEM twice\n",
             align, rc, e, strerror(e));
      return 1;
    }
  }
  return 0;
}

/* 2: malloc_stats with a pending cancellation */
static volatile int stats_returned;

static void *stats_thread(void *arg) {
  (void)arg;
  pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
  pthread_cancel(pthread_self()); /* pending until a cancellation point */
  malloc_stats();
  stats_returned = 1;
  pthread_testcancel();
  return NULL;
}

static int malloc_stats_cancel_child(void) {
  char path[] = "/tmp/pm-glibc-rules-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 2;
  unlink(path);
  if (dup2(fd, 2) < 0) return 3;
  pthread_t t;
  void *ret = NULL;
  if (pthread_create(&t, NULL, stats_thread, NULL) != 0 || pthread_join(t, &ret) != 0)
    return 4;
  char buf[4096];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  buf[n > 0 ? n : 0] = 0;
  if (ret != PTHREAD_CANCELED || !stats_returned || strstr(buf, "system bytes") == NULL) {
    printf("FAIL: malloc_stats with a pending cancellation: %s, %zd bytes written%s\n",
           stats_returned ? "returned" : "cancelled inside", n,
           ret == PTHREAD_CANCELED ? "" : ", thread not cancelled afterwards");
    return 1;
  }
  return 0;
}

/* 3: aligned_alloc's alignment rule */
static void aligned_alloc_rule(void) {
  int strict = hard_under_poolmalloc() || glibc_at_least(2, 38);
  size_t bad[] = {65, 0, 3 * 4096, ((size_t)1 << 20) + 16};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void *p = aligned_alloc(bad[i], 64);
    int e = errno;
    if (strict && (p != NULL || e != EINVAL))
      hard_fail("aligned_alloc(%zu, 64) = %p, errno %d: want NULL and EINVAL", bad[i], p, e);
    if (!strict && p == NULL) hard_fail("aligned_alloc(%zu, 64) failed (glibc < 2.38)", bad[i]);
    free(p);
  }
  void *p = aligned_alloc(64, 64);
  if (p == NULL || (uintptr_t)p % 64 != 0) hard_fail("aligned_alloc(64, 64) = %p", p);
  free(p);
  p = memalign(65, 64);
  if (p == NULL || (uintptr_t)p % 128 != 0) hard_fail("memalign(65, 64) = %p: want 128-aligned", p);
  free(p);
  printf("aligned_alloc of a non-power-of-two alignment: %s; memalign rounds up\n",
         "EINVAL (C17 DR 460, glibc >= 2.38)");
}

int main(void) {
  hard_check_preload();
  hard_watchdog(60, "glibc_rules");
  setvbuf(stdout, NULL, _IOLBF, 0);
  posix_memalign_huge();
  if (run_child(posix_memalign_rlimit_child, "posix_memalign under RLIMIT_AS"))
    printf("posix_memalign under RLIMIT_AS: ENOMEM, errno ENOMEM\n");
  if (run_child(malloc_stats_cancel_child, "malloc_stats with a pending cancellation"))
    printf("malloc_stats with a pending cancellation: written, then cancelled\n");
  aligned_alloc_rule();
  return hard_failures == 0 ? 0 : 1;
}
