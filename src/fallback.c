/* fallback.c - the jemalloc tier (see fallback.h). */
#include "fallback.h"

#include <errno.h>

void *pm_je_mallocx(size_t size, int flags);
void *pm_je_rallocx(void *ptr, size_t size, int flags);
size_t pm_je_sallocx(const void *ptr, int flags);
void pm_je_dallocx(void *ptr, int flags);
int pm_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen);

#define PM_JE_ZERO 0x40

extern const char *pm_je_malloc_conf;

static _Atomic int started;

bool pm_fallback_started(void) {
  return relaxed_load(&started) != 0;
}

/* jemalloc initialises itself on its first call, holding its init lock
 * until done; a fork() by another thread in that window leaves the child a
 * lock nobody will release (the integration fork test hung this way). Its
 * own answer is a load-time constructor, which poolmalloc strips (it made
 * every process pay, even /bin/true). So poolmalloc starts jemalloc in its
 * own process start-up, at the first allocation, when the process has one
 * thread: glibc's pthread_create allocates before the new thread exists. */
void pm_fallback_init(bool pools_on) {
  if (relaxed_load(&started)) return;
  /* with pools on, jemalloc sees only blocks above POOLMALLOC_MAX_POOLED:
   * its thread cache (blocks up to 32 KiB) would be set up for nothing.
   * MALLOC_CONF, read after this, still overrides it. */
  if (pools_on) pm_je_malloc_conf = "tcache:false";
  relaxed_store(&started, 1);
  pm_je_dallocx(pm_je_mallocx(PM_MIN_ALIGN, 0), 0);
}

void *pm_fallback_alloc(size_t size, size_t align, bool zero) {
  if (unlikely(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  if (!relaxed_load(&started)) relaxed_store(&started, 1);
  int flags = zero ? PM_JE_ZERO : 0;
  if (size < PM_MIN_ALIGN) size = PM_MIN_ALIGN;
  if (align > PM_MIN_ALIGN) flags |= __builtin_ctzl(align);
  void *p = pm_je_mallocx(size, flags);
  if (unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

void *pm_fallback_realloc(void *p, size_t size) {
  if (unlikely(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  if (size < PM_MIN_ALIGN) size = PM_MIN_ALIGN;
  void *q = pm_je_rallocx(p, size, 0);
  if (unlikely(q == NULL)) errno = ENOMEM;
  return q;
}

void pm_fallback_free(void *p) {
  int saved = errno;
  pm_je_dallocx(p, 0);
  errno = saved;
}

size_t pm_fallback_usable(const void *p) {
  return pm_je_sallocx(p, 0);
}

void pm_fallback_figures(uint64_t *allocated, uint64_t *resident, uint64_t *mapped) {
  *allocated = *resident = *mapped = 0;
  if (!pm_fallback_started()) return;
  int saved = errno;
  uint64_t epoch = 1;
  size_t len = sizeof epoch;
  pm_je_mallctl("epoch", &epoch, &len, &epoch, len);
  size_t v, vlen = sizeof v;
  if (pm_je_mallctl("stats.allocated", &v, &vlen, NULL, 0) == 0) *allocated = v;
  vlen = sizeof v;
  if (pm_je_mallctl("stats.resident", &v, &vlen, NULL, 0) == 0) *resident = v;
  vlen = sizeof v;
  if (pm_je_mallctl("stats.mapped", &v, &vlen, NULL, 0) == 0) *mapped = v;
  errno = saved;
}

void pm_fallback_trim(void) {
  if (!pm_fallback_started()) return;
  int saved = errno;
  pm_je_mallctl("arena.4096.purge", NULL, NULL, NULL, 0); /* 4096: all arenas */
  errno = saved;
}
