/* os.c - the platform layer: mmap, madvise, environ, write(2), clocks.
 *
 * Every function keeps errno as the caller left it: an allocator must not
 * change errno on success, and glibc's free never does. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void *pm_os_reserve(size_t size, size_t align) {
  int saved = errno;
  size_t span = size + align;
  char *p =
      mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    errno = saved;
    return NULL;
  }
  uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = start - (uintptr_t)p;
  if (head) munmap(p, head);
  size_t tail = span - head - size;
  if (tail) munmap((char *)start + size, tail);
  errno = saved;
  return (void *)start;
}

void *pm_os_map(size_t size) {
  int saved = errno;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  errno = saved;
  return p == MAP_FAILED ? NULL : p;
}

void *pm_os_map_block(size_t size) {
  int saved = errno;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  return p == MAP_FAILED ? NULL : p;
}

void *pm_os_remap(void *p, size_t old, size_t size) {
  int saved = errno;
  void *q = mremap(p, old, size, MREMAP_MAYMOVE);
  errno = saved;
  return q == MAP_FAILED ? NULL : q;
}

void pm_os_unmap(void *p, size_t size) {
  int saved = errno;
  munmap(p, size);
  errno = saved;
}

bool pm_os_commit(void *p, size_t size) {
  int saved = errno;
  bool ok = mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
  errno = saved;
  return ok;
}

void pm_os_purge(void *p, size_t size) {
  int saved = errno;
  madvise(p, size, MADV_DONTNEED);
  errno = saved;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
PM_HOT static _Atomic bool populate_unsupported;

bool pm_os_populate(void *p, size_t size) {
  if (atomic_load_explicit(&populate_unsupported, memory_order_relaxed)) return false;
  uintptr_t os = pm_os_page_size(), lo = (uintptr_t)p & ~(os - 1);
  size_t len = (((uintptr_t)p + size + os - 1) & ~(os - 1)) - lo;
  int saved = errno;
  bool ok = madvise((void *)lo, len, MADV_POPULATE_WRITE) == 0;
  /* EINVAL: a kernel before 5.14; EPERM or ENOSYS: a seccomp filter that
   * allows only some advice. Anything else (ENOMEM, EINTR) is this call's
   * alone */
  if (!ok && (errno == EINVAL || errno == EPERM || errno == ENOSYS))
    atomic_store_explicit(&populate_unsupported, true, memory_order_relaxed);
  errno = saved;
  return ok;
}

bool pm_os_write(int fd, const char *buf, size_t len) {
  int saved = errno;
  bool ok = true;
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    buf += n;
    len -= (size_t)n;
  }
  errno = saved;
  return ok;
}

pm_startup_code bool pm_os_env_has_prefix(const char *prefix) {
  if (environ == NULL) return false;
  size_t len = strlen(prefix);
  for (char **e = environ; *e != NULL; e++)
    if (strncmp(*e, prefix, len) == 0) return true;
  return false;
}

const char *pm_os_getenv(const char *name) {
  if (environ == NULL) return NULL;
  size_t len = strlen(name);
  for (char **e = environ; *e != NULL; e++) {
    if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  }
  return NULL;
}

uint64_t pm_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t pm_os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t pm_os_random(void) {
  PM_HOT static _Atomic uint64_t counter;
  uint64_t seed = (uint64_t)(uintptr_t)&counter ^ pm_os_now_ns();
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  if (r != NULL) {
    uint64_t a, b;
    memcpy(&a, r, 8);
    memcpy(&b, r + 8, 8);
    seed ^= a ^ mix64(b);
  }
  return mix64(seed + atomic_fetch_add(&counter, 0x9e3779b97f4a7c15ull));
}

bool pm_os_secure(void) {
  return getauxval(AT_SECURE) != 0;
}

size_t pm_os_page_size(void) {
  PM_HOT static size_t page;
  if (page == 0) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

PM_HOT static uint64_t start_ns;

void pm_os_mark_start(void) {
  if (start_ns == 0) start_ns = pm_os_now_ns();
}

uint64_t pm_os_uptime_ns(void) {
  return start_ns ? pm_os_now_ns() - start_ns : 0;
}

int pm_os_open_write(const char *path, bool truncate, int *err) {
  int saved = errno;
  int fd =
      open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0644);
  *err = fd < 0 ? errno : 0;
  errno = saved;
  return fd;
}

void pm_os_close(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

/* Where poolmalloc's own descriptors go: near the top of the descriptor
 * limit, never among the low numbers programs name in dup2 and `exec 5>`
 * (a shell script's fds 3-9: configure writes its log to 5 and its messages
 * to 6). A descriptor at the lowest free number ≥ 3 was one of those, and a
 * program that redirected onto it took it over. A limit below 256 leaves
 * no room: then the lowest free number ≥ 10. */
static int private_fd_base(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur < 256) return 10;
  rlim_t top = r.rlim_cur < 4096 ? r.rlim_cur : 4096;
  return (int)(top - 64);
}

int pm_os_dup_private(int fd) {
  int saved = errno;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, private_fd_base());
  if (copy < 0) copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  errno = saved;
  return copy;
}

void pm_os_move_private(int *fd) {
  int copy = pm_os_dup_private(*fd);
  if (copy < 0) return;
  int saved = errno;
  close(*fd);
  errno = saved;
  *fd = copy;
}

size_t pm_os_read_file(const char *path, char *buf, size_t cap) {
  int saved = errno;
  size_t len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    while (len + 1 < cap) {
      ssize_t n = read(fd, buf + len, cap - 1 - len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      len += (size_t)n;
    }
    close(fd);
  }
  if (cap) buf[len] = 0;
  errno = saved;
  return len;
}

int pm_os_open_read(const char *path) {
  int saved = errno;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  errno = saved;
  return fd;
}

size_t pm_os_pread(int fd, void *buf, size_t n, uint64_t off) {
  int saved = errno;
  size_t done = 0;
  while (done < n) {
    ssize_t k = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    done += (size_t)k;
  }
  errno = saved;
  return done;
}

const char *pm_os_reason(int err) {
  switch (err) {
  case ENOENT:
    return "no such file or directory";
  case ENOTDIR:
    return "a part of the path is not a directory";
  case EACCES:
    return "permission denied";
  case EPERM:
    return "operation not permitted";
  case EISDIR:
    return "is a directory";
  case EROFS:
    return "read-only file system";
  case ENOSPC:
    return "no space left on the device";
  case EDQUOT:
    return "disk quota exceeded";
  case EMFILE:
  case ENFILE:
    return "too many open files";
  case ENAMETOOLONG:
    return "file name too long";
  case ELOOP:
    return "too many symbolic links";
  case EIO:
    return "input/output error";
  default:
    return "the system refused it";
  }
}

long pm_os_readlink(const char *path, char *buf, size_t cap) {
  int saved = errno;
  long n = (long)readlink(path, buf, cap);
  errno = saved;
  return n;
}

int pm_os_pid(void) {
  return getpid();
}

int pm_os_ppid(void) {
  return getppid();
}

bool pm_os_isatty(int fd) {
  int saved = errno;
  bool tty = isatty(fd) == 1;
  errno = saved;
  return tty;
}

bool pm_os_on_signal(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  int saved = errno;
  bool ok = sigaction(sig, &sa, NULL) == 0;
  errno = saved;
  return ok;
}

void *pm_os_signal_handler(int sig) {
  struct sigaction sa;
  int saved = errno;
  void *h = NULL;
  if (sigaction(sig, NULL, &sa) == 0) h = (void *)sa.sa_handler;
  errno = saved;
  return h;
}

static size_t parse_kb_line(const char *buf, const char *key) {
  const char *p = strstr(buf, key);
  if (p == NULL) return 0;
  p += strlen(key);
  while (*p == ' ' || *p == '\t')
    p++;
  size_t v = 0;
  while (*p >= '0' && *p <= '9')
    v = v * 10 + (size_t)(*p++ - '0');
  return v * 1024;
}

void pm_os_rss(size_t *current, size_t *peak) {
  int saved = errno;
  char buf[4096];
  *current = *peak = 0;
  if (pm_os_read_file("/proc/self/status", buf, sizeof buf) > 0) {
    *current = parse_kb_line(buf, "VmRSS:");
    *peak = parse_kb_line(buf, "VmHWM:");
  }
  errno = saved;
}

void pm_os_yield(void) {
  int saved = errno;
  sched_yield();
  errno = saved;
}
