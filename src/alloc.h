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
/* The branches take (h, size, site, cls): cls comes last, in rcx, where the
 * fast path's class index is anyway (another order cost a register copy on
 * the fast path, before the branch). */
void *pm_malloc_slow(pm_heap *h, size_t size, uintptr_t site,
                     size_t cls); /* no free block */
void *pm_malloc_counted(pm_heap *h, size_t size, uintptr_t site, size_t cls);

/* Steps of the fast paths as x86-64 asm, each an instruction gcc does not
 * emit from the C (the C beside each is the same step, used on other
 * machines and under ThreadSanitizer, which cannot see into asm):
 * - PM_SUB_NEG: mem -= v in memory, true if the result is negative (gcc
 *   computed the address into a register first: one more);
 * - PM_DEC_NEG: mem -= 1 in memory, the same test;
 * - PM_NE_MEM: v != mem with mem read once, in the compare (gcc loads an
 *   atomic into a register before comparing it: one more). The owner word
 *   is written by other threads; an aligned 8-byte load is atomic on
 *   x86-64, which is all a relaxed load is;
 * - PM_IN_RAX: the block malloc returns, held in rax from its load (gcc
 *   loaded it into another register and copied it at the end). */
#if defined(__SANITIZE_THREAD__) /* gcc */
#define PM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) /* clang */
#define PM_TSAN 1
#endif
#endif
#if defined(__x86_64__) && !defined(PM_TSAN)
#define PM_SUB_NEG(mem, v, neg) __asm__("subq %2, %0" : "+m"(mem), "=@ccs"(neg) : "r"(v))
#define PM_DEC_NEG(mem, neg) __asm__("subl $1, %0" : "+m"(mem), "=@ccs"(neg))
#define PM_NE_MEM(v, mem, ne) __asm__("cmpq %1, %2" : "=@ccne"(ne) : "r"(v), "m"(mem))
#define PM_IN_RAX(T, name, init)                                                         \
  register T name __asm__("rax") = (init);                                               \
  __asm__("" : "+r"(name))
#else
#define PM_SUB_NEG(mem, v, neg) ((mem) -= (int64_t)(v), (neg) = (mem) < 0)
#define PM_DEC_NEG(mem, neg) ((mem) = (int32_t)((uint32_t)(mem)-1u), (neg) = (mem) < 0)
#define PM_NE_MEM(v, mem, ne) ((ne) = relaxed_load(&(mem)) != (v))
#define PM_IN_RAX(T, name, init) T name = (init)
#endif

/* SITE (the caller's return address, for lifetime routing) is evaluated
 * only on the slow branches. */
#define PM_MALLOC_BODY(SITE)                                                             \
  pm_heap *h = pm_tls_heap;                                                              \
  if (unlikely(size > pm_g.fast_max)) return pm_malloc_big(size, (SITE));                \
  size_t cls = pm_size_class[size]; /* 64-bit: the countdown's address is an operand */  \
  pm_page *pg = h->pages[cls];                                                           \
  PM_IN_RAX(pm_block *, b, pg->free);                                                    \
  if (unlikely(b == NULL)) return pm_malloc_slow(h, size, (SITE), cls);                  \
  bool neg_;                                                                             \
  PM_SUB_NEG(h->countdown[cls], size, neg_);                                             \
  if (unlikely(neg_)) return pm_malloc_counted(h, size, (SITE), cls);                    \
  pm_block *next_ = pm_block_next(b);                                                    \
  pg->free = next_;                                                                      \
  __builtin_prefetch(next_);                                                             \
  b->tag = 0; /* malloc counts nothing: the page is current (types.h) */                 \
  return b

/* free: one compare decides pool or jemalloc; the descriptor is
 * pages[(p - base) >> shift]; the block-start check (a multiply and a
 * rotate, page.h), the tag compare and `owner == my heap` select the local
 * push. The unusual cases (alloc.c): */
void pm_free_large(void *p); /* not a pool pointer (or POOLMALLOC_CHECK=full) */
void pm_free_unusual(pm_block *b, pm_page *pg, pm_heap *h); /* a check fired */
void pm_free_other(pm_block *b, pm_page *pg, pm_heap *h);   /* another owner */

/* the push of a checked block on a page h owns */
pm_inline void pm_free_local_tag(pm_heap *h, pm_page *pg, pm_block *b, uintptr_t tag) {
  pm_block_set_next(b, pg->free);
  b->tag = tag;
  pg->free = b;
  PM_COUNT(pg->local_frees++); /* folded into the class at retire / report */
  /* one compare against the page's wake mark (heap.c): never for the current
   * page (an emptied current page stays: malloc/free of one block in a loop),
   * at 0 for an available page, after a few frees for a full one */
  bool wake_;
  PM_DEC_NEG(pg->room, wake_); /* used--, and used <= wake: one subl, one js */
  if (unlikely(wake_)) pm_heap_free_slow(h, pg);
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
    pm_free_unusual(b, pg, h);
    return;
  }
  bool other_;
  PM_NE_MEM(h, pg->owner, other_);
  if (unlikely(other_)) {
    pm_free_other(b, pg, h);
    return;
  }
  pm_free_local_tag(h, pg, b, tag);
}

#endif
