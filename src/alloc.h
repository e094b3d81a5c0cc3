/* alloc.h - malloc-family semantics under pm_ names (glibc 2.36 rules).
 *
 * src/override.c forwards every exported symbol here; unit tests call these
 * directly. */
#ifndef PM_ALLOC_H
#define PM_ALLOC_H

#include "heap.h"

void *pm_malloc(size_t size);
/* malloc for a caller whose own caller is the call site (operator new) */
void *pm_malloc_at(size_t size, uintptr_t site);
void pm_free(void *p);
void *pm_calloc(size_t n, size_t size);
void *pm_realloc(void *p, size_t size);
void *pm_reallocarray(void *p, size_t n, size_t size);
size_t pm_usable_size(const void *p);

/* aligned.c */
void *pm_memalign(size_t align, size_t size);
int pm_posix_memalign(void **out, size_t align, size_t size);
void *pm_aligned_alloc(size_t align, size_t size);
void *pm_valloc(size_t size);
void *pm_pvalloc(size_t size);

/* A pool block of exactly class cls (a real heap, a class no larger than
 * POOLMALLOC_MAX_POOLED), without the lifetime checks: lifetime routing
 * decided, or aligned.c needs the class's alignment. Falls back to jemalloc if the
 * region is full. */
void *pm_malloc_pool(struct pm_heap *h, size_t size, unsigned cls);
/* The slow-path tick of class cls (its countdown ran out): sampling,
 * routing and housekeeping, then a block from wherever they decided. */
void *pm_malloc_tick(pm_heap *h, size_t size, unsigned cls, uintptr_t site);
/* The jemalloc tier with statistics; reason is a PM_FB_* value, zero a
 * PM_ZERO_* value (fallback.h). */
enum {
  PM_FB_TOO_LARGE,
  PM_FB_ALIGNMENT,
  PM_FB_DISABLED,
  PM_FB_REGION_FULL,
  PM_FB_NO_HEAP,
  PM_FB_LONG_LIVED
};
void *pm_malloc_fallback(struct pm_heap *h, size_t size, size_t align, int zero,
                         int reason);

#endif
