/* je_support.c - the few outside functions the embedded jemalloc calls that
 * poolmalloc provides itself (cmake/EmbedJemalloc.cmake renames them).
 *
 * exp, log and round are used only by jemalloc's heap profiler (sampling
 * intervals, unbiasing); _Unwind_Backtrace and _Unwind_GetIP only by its
 * profiler's backtraces. Taking them from libm and libgcc_s made every
 * preloaded process load two more libraries (about 13 system calls and a
 * few dozen page faults) for code that runs only with MALLOC_CONF=prof:true.
 * The versions here are accurate to about one unit in the last place; the
 * unwinder is the process's own libgcc_s when something already loaded it
 * (every C++ program does), else a backtrace comes back empty.
 *
 * pthread_atfork: jemalloc registers its fork handlers when it initialises,
 * which now happens on the first request that reaches it, possibly while
 * another thread is inside fork() holding glibc's atfork lock. poolmalloc
 * registers jemalloc's handlers itself, at load time (src/fallback.c), so
 * jemalloc's own registration is a no-op.
 *
 * gettimeofday: jemalloc's background thread (off unless
 * POOLMALLOC_BACKGROUND) reads the time with it. It is an IFUNC in glibc:
 * importing it ran its resolver when the library was loaded, which read a
 * page of libc's text no other part of a short process touches (one page
 * fault of every process). */
#define _GNU_SOURCE
#include "common.h"
#include "je_support.h"

#include <dlfcn.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

double pm_je_support_exp(double x);
double pm_je_support_log(double x);
double pm_je_support_round(double x);
int pm_je_support_pthread_atfork(void (*prepare)(void), void (*parent)(void),
                                 void (*child)(void));
typedef int (*pm_unwind_fn)(void *ctx, void *arg);
int pm_je_support__Unwind_Backtrace(pm_unwind_fn fn, void *arg);
uintptr_t pm_je_support__Unwind_GetIP(void *ctx);
int pm_je_support_gettimeofday(struct timeval *tv, void *tz);

int pm_je_support_gettimeofday(struct timeval *tv, void *tz) {
  (void)tz;
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

static uint64_t bits_of(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static double double_of(uint64_t u) {
  double x;
  memcpy(&x, &u, sizeof x);
  return x;
}

static const double ln2_hi = 6.93147180369123816490e-01; /* high bits of ln 2 */
static const double ln2_lo = 1.90821492927058770002e-10; /* ln 2 - ln2_hi */

/* 2^k for -1074 <= k <= 1023 */
static double pow2(int k) {
  if (k >= -1022) return double_of((uint64_t)(k + 1023) << 52);
  return double_of((uint64_t)1 << (k + 1074)); /* subnormal */
}

double pm_je_support_log(double x) {
  uint64_t u = bits_of(x);
  if (x != x) return x;                                 /* NaN */
  if (x < 0) return double_of(0x7ff8000000000000ull);   /* NaN */
  if (x == 0) return -double_of(0x7ff0000000000000ull); /* -inf */
  if (u == 0x7ff0000000000000ull) return x;             /* +inf */
  int e = 0;
  if ((u >> 52) == 0) {       /* subnormal: scale into the normal range */
    x *= 18014398509481984.0; /* 2^54 */
    u = bits_of(x);
    e = -54;
  }
  e += (int)(u >> 52) - 1023;
  double m = double_of((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull); /* [1, 2) */
  if (m > 1.41421356237309504880) {
    m *= 0.5;
    e++;
  }
  /* log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716 */
  double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
  for (int n = 1; n <= 27; n += 2) {
    sum += term / n;
    term *= s2;
  }
  return e * ln2_lo + 2 * sum + e * ln2_hi;
}

double pm_je_support_exp(double x) {
  if (x != x) return x;
  if (x > 709.782712893383973096) return double_of(0x7ff0000000000000ull);
  if (x < -745.133219101941108420) return 0;
  /* x = k ln 2 + r, |r| <= ln2 / 2 */
  double kd = x * 1.44269504088896340736;
  int k = (int)(kd < 0 ? kd - 0.5 : kd + 0.5);
  double r = (x - k * ln2_hi) - k * ln2_lo;
  double term = 1, sum = 1;
  for (int n = 1; n <= 17; n++) {
    term *= r / n;
    sum += term;
  }
  /* scale in two steps so neither factor overflows or underflows early */
  int k1 = k / 2, k2 = k - k1;
  return sum * pow2(k1) * pow2(k2);
}

double pm_je_support_round(double x) {
  if (!(x > -4503599627370496.0 && x < 4503599627370496.0))
    return x;                    /* NaN, |x| >= 2^52 */
  double t = (double)(int64_t)x; /* truncated */
  if (x - t >= 0.5)
    t += 1;
  else if (t - x >= 0.5)
    t -= 1;
  if (t == 0 && (bits_of(x) >> 63)) t = -0.0;
  return t;
}

int pm_je_support_pthread_atfork(void (*prepare)(void), void (*parent)(void),
                                 void (*child)(void)) {
  (void)prepare, (void)parent, (void)child;
  return 0;
}

typedef int (*pm_backtrace_fn)(pm_unwind_fn, void *);
typedef uintptr_t (*pm_getip_fn)(void *);

int pm_je_support__Unwind_Backtrace(pm_unwind_fn fn, void *arg) {
  pm_backtrace_fn real = (pm_backtrace_fn)dlsym(RTLD_DEFAULT, "_Unwind_Backtrace");
  if (real == NULL) return 5; /* _URC_END_OF_STACK: no frames */
  return real(fn, arg);
}

uintptr_t pm_je_support__Unwind_GetIP(void *ctx) {
  /* only reached from a callback of the real _Unwind_Backtrace */
  pm_getip_fn real = (pm_getip_fn)dlsym(RTLD_DEFAULT, "_Unwind_GetIP");
  return real != NULL ? real(ctx) : 0;
}

/* ---- jemalloc's read-only data, relocated when it starts ----
 *
 * The embedded jemalloc's pointer tables in read-only-after-relocation
 * data (its mallctl tree: some 1,100 pointers over 5 pages) were relocated
 * by the loader in every process, which copied each of those pages (a
 * copy-on-write fault per page) for processes that never start jemalloc.
 * cmake/EmbedJemalloc.cmake puts them in the section pm_je_lazy, and
 * tools/pm_lazy_relocs.c, run after the link, moves their relocations from
 * the dynamic relocation table into this table; src/fallback.c applies it
 * when jemalloc starts, before its first call. In a library the tool did
 * not patch (the unit tests link the core statically) the count stays 0
 * and the loader relocated everything as usual. */
#define PM_LAZY_MAGIC 0x4c5a4d50u /* the tool checks it */
#define PM_LAZY_MAX 2048
typedef struct pm_lazy_table {
  uint32_t magic, count;
  uint32_t offset[PM_LAZY_MAX]; /* from the load address */
} pm_lazy_table;
__attribute__((used)) const pm_lazy_table pm_je_lazy_table = {PM_LAZY_MAGIC, 0, {0}};
extern const char __ehdr_start[] __attribute__((visibility("hidden")));

void pm_je_lazy_relocate(void) {
  static bool done;
  if (done) return;
  done = true;
  const pm_lazy_table *t = &pm_je_lazy_table;
  __asm__("" : "+r"(t)); /* filled after compilation: read what is there */
  uintptr_t base = (uintptr_t)__ehdr_start;
  for (uint32_t i = 0; i < t->count && i < PM_LAZY_MAX; i++)
    *(uintptr_t *)(base + t->offset[i]) += base;
}
