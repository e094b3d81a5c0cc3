/* aligned.c - posix_memalign, aligned_alloc, memalign, valloc, pvalloc.
 *
 * A pool page is aligned to its own size, so block i of a class sits at
 * page_start + i * size and is aligned to every power of two dividing the
 * class size. An aligned request therefore takes the smallest class whose
 * size is a multiple of the alignment; alignments no pooled class has go
 * to jemalloc. Argument rules follow glibc 2.36 (_mid_memalign), except
 * aligned_alloc's, which follow glibc 2.38 (see pm_aligned_alloc). */
#define _GNU_SOURCE
#include "alloc.h"
#include "start.h"
#include "options.h"
#include "os.h"

#include <errno.h>
#include <unistd.h>

void *pm_memalign(size_t align, size_t size) {
  if (align <= PM_MIN_ALIGN) return pm_malloc(size);
  if (align > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  if (align & (align - 1)) align = (size_t)1 << (64 - __builtin_clzl(align));
  if (size > PTRDIFF_MAX - align) {
    errno = ENOMEM;
    return NULL;
  }
  pm_heap *h = pm_heap_get();
  if (h->kind != PM_HEAP_REAL)
    return pm_malloc_fallback(h, size, align, false,
                              pm_opt.disable ? PM_FB_DISABLED : PM_FB_NO_HEAP);
  size_t want = size > align ? size : align;
  if (want <= pm_g.max_pooled) {
    unsigned cls = pm_class_of(want);
    while (cls < PM_NCLASSES && pm_class_size(cls) % align != 0)
      cls++;
    if (cls < PM_NCLASSES && pm_class_size(cls) <= pm_g.max_pooled) {
      void *p = pm_malloc_pool(h, size, cls);
      /* with the region full the pool hands out an unaligned jemalloc block */
      if (p == NULL || pm_is_pool_ptr(p)) return p;
      pm_free(p);
      return pm_malloc_fallback(h, size, align, false, PM_FB_REGION_FULL);
    }
    return pm_malloc_fallback(h, size, align, false, PM_FB_ALIGNMENT);
  }
  return pm_malloc_fallback(h, size, align, false, PM_FB_TOO_LARGE);
}

/* As glibc: a failure for lack of memory returns ENOMEM and leaves errno
 * ENOMEM too (glibc's tst-malloc-thread-fail checks it); a bad alignment
 * returns EINVAL and leaves errno alone; success keeps errno. */
int pm_posix_memalign(void **out, size_t align, size_t size) {
  if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
  int saved = errno;
  void *p = pm_memalign(align, size);
  if (p == NULL) {
    errno = ENOMEM;
    return ENOMEM;
  }
  errno = saved;
  *out = p;
  return 0;
}

/* C17 (DR 460) and glibc >= 2.38: an alignment that is not a power of two
 * (or 0) is an error, EINVAL; memalign still rounds it up. */
void *pm_aligned_alloc(size_t align, size_t size) {
  if (align == 0 || (align & (align - 1)) != 0) {
    errno = EINVAL;
    return NULL;
  }
  return pm_memalign(align, size);
}

void *pm_valloc(size_t size) {
  return pm_memalign(pm_os_page_size(), size);
}

void *pm_pvalloc(size_t size) {
  size_t page = pm_os_page_size(), rounded;
  if (__builtin_add_overflow(size, page - 1, &rounded)) {
    errno = ENOMEM;
    return NULL;
  }
  rounded &= ~(page - 1);
  return pm_memalign(page, rounded ? rounded : page);
}
