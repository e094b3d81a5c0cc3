/* sizeclass.h - the size classes of the pools.
 *
 * Classes 0..7 are 16..128 bytes in steps of 16; above 128 every doubling
 * (128<<g, 256<<g] is split into four classes of step 32<<g, as jemalloc
 * does, so internal waste stays under 20%. Every block size is a multiple
 * of 16 (the minimum alignment), and a block at page_start + i*size is
 * aligned to the largest power of two dividing size. PM_NCLASSES covers
 * blocks up to 1 MiB, the largest POOLMALLOC_POOL_SIZE. */
#ifndef PM_SIZECLASS_H
#define PM_SIZECLASS_H

#include "common.h"

#define PM_NCLASSES 60 /* 8 + 4 * 13: up to 1 MiB */
#define PM_SMALL_LOOKUP_MAX 1024

pm_inline unsigned pm_class_of_big(size_t size) { /* size > 128 */
  size_t s = size - 1;
  unsigned lg = 63u - (unsigned)__builtin_clzl(s); /* 7 + g */
  unsigned k = (unsigned)(s >> (lg - 2)) & 3u;
  return 8u + 4u * (lg - 7u) + k;
}

pm_inline unsigned pm_class_of_calc(size_t size) {
  if (size <= 128) return size == 0 ? 0 : (unsigned)((size - 1) >> 4);
  return pm_class_of_big(size);
}

pm_inline size_t pm_class_size(unsigned cls) {
  if (cls < 8) return (size_t)(cls + 1) << 4;
  unsigned g = (cls - 8) >> 2, k = (cls - 8) & 3;
  return ((size_t)128 << g) + (size_t)(k + 1) * ((size_t)32 << g);
}

/* the class of every size up to 1024, indexed by the size itself: the
 * malloc fast path's lookup is one load (a table of 65 entries indexed by
 * (size + 15) >> 4 took two more instructions) */
extern const uint8_t pm_size_class[PM_SMALL_LOOKUP_MAX + 1];

pm_inline unsigned pm_class_of(size_t size) {
  if (likely(size <= PM_SMALL_LOOKUP_MAX)) return pm_size_class[size];
  return pm_class_of_big(size);
}

#endif
