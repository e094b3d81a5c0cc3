/* alloc.h - malloc-family semantics under pm_ names (glibc 2.36 rules).
 *
 * src/override.c forwards every exported symbol here; unit tests call these
 * directly. The same-thread fast paths of malloc and free are here too, as
 * inline code: override.c inlines them into malloc, free and the plain C++
 * operators, so an exported entry point is the fast path itself (a jump to
 * pm_malloc and one to pm_free were two instructions of a malloc/free
 * pair); everything else they reach is a tail call into alloc.c. */
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

/* ---- the fast paths (inlined by override.c and alloc.c) ----
 *
 * malloc of size <= pm_g.fast_max: a TLS load, one size compare, the class
 * from a table indexed by the size, the class's current page, a pop from its
 * free list, the byte countdown (sampling, the housekeeping tick, and the
 * class's requested bytes: pm_malloc_tick folds the bytes counted down into
 * req_bytes, so malloc adds nothing for them), the tag cleared, used++.
 * Every other case is a tail call to one of these (alloc.c): */
void *pm_malloc_big(size_t size, uintptr_t site); /* size > pm_g.fast_max */
void *pm_malloc_slow(size_t size, unsigned cls, uintptr_t site); /* no free block */
void *pm_malloc_counted(pm_heap *h, size_t size, unsigned cls, uintptr_t site);

/* SITE (the caller's return address, for lifetime routing) is evaluated
 * only on the slow branches. */
#define PM_MALLOC_BODY(SITE)                                                             \
  pm_heap *h = pm_tls_heap;                                                              \
  if (unlikely(size > pm_g.fast_max)) return pm_malloc_big(size, (SITE));                \
  unsigned cls = pm_size_class[size];                                                    \
  pm_page *pg = h->pages[cls];                                                           \
  pm_block *b = pg->free;                                                                \
  if (unlikely(b == NULL)) return pm_malloc_slow(size, cls, (SITE));                     \
  int64_t left = h->countdown[cls] - (int64_t)size; /* sub mem; js */                    \
  h->countdown[cls] = left;                                                              \
  if (unlikely(left < 0)) return pm_malloc_counted(h, size, cls, (SITE));                \
  pg->free = pm_block_next(b);                                                           \
  b->tag = 0;                                                                            \
  pg->used++;                                                                            \
  return b

/* free: one compare decides pool or jemalloc; the descriptor is
 * pages[(p - base) >> shift]; the block-start check (a multiply and a
 * rotate, page.h), the tag compare and `owner == my heap` select the local
 * push. The unusual cases (alloc.c): */
void pm_free_large(void *p); /* not a pool pointer (or POOLMALLOC_CHECK=full) */
void pm_free_unusual(pm_heap *h, pm_page *pg, pm_block *b); /* a check fired */
void pm_free_other(pm_heap *h, pm_page *pg, pm_block *b);   /* another owner */

/* the push of a checked block on a page h owns */
pm_inline void pm_free_local_tag(pm_heap *h, pm_page *pg, pm_block *b, uintptr_t tag) {
  pm_block_set_next(b, pg->free);
  b->tag = tag;
  pg->free = b;
  PM_COUNT(pg->local_frees++); /* folded into the class at retire / report */
  /* one compare against the page's wake mark (heap.c): never for the current
   * page (an emptied current page stays: malloc/free of one block in a loop),
   * at 0 for an available page, after a few frees for a full one */
  pg->used--;
  /* the decrement in memory (subl) and the compare with the stored count:
   * left to itself gcc loads, subtracts, stores and compares (one more) */
  __asm__("" : "+m"(pg->used));
  if (unlikely((int32_t)pg->used <= pg->wake)) pm_heap_free_slow(h, pg);
}
pm_inline void pm_free_local(pm_heap *h, pm_page *pg, pm_block *b) {
  pm_free_local_tag(h, pg, b, pm_g.tag);
}

pm_inline void pm_free_inline(void *p) {
  uintptr_t off = (uintptr_t)p - pm_g.base;
  if (unlikely(off >= pm_g.free_span)) {
    pm_free_large(p);
    return;
  }
  pm_page *pg = &pm_g.pages[off >> pm_g.page_shift];
  pm_heap *h = pm_tls_heap;
  pm_block *b = p;
  uintptr_t tag = pm_g.tag;
  /* loaded once and kept in a register for the push: otherwise gcc reloads
   * it there and pairs the two stores into one vector store built from the
   * link and the reloaded tag (two instructions more) */
  __asm__("" : "+r"(tag));
  if (unlikely(!pm_page_is_block_start(pg, off & pm_g.page_mask) || b->tag == tag)) {
    pm_free_unusual(h, pg, b);
    return;
  }
  if (unlikely(relaxed_load(&pg->owner) != h)) {
    pm_free_other(h, pg, b);
    return;
  }
  pm_free_local_tag(h, pg, b, tag);
}

#endif
