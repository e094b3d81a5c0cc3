/* alloc.c - malloc, free, calloc, realloc: the fast paths and their rules.
 *
 * malloc: one TLS load, a size-class lookup, a pop from the current page's
 * free list, the byte countdown; anything else (no current page, no heap
 * yet, large request) is a call to a noinline slow path.
 * free: one compare decides pool or jemalloc; a block of a page the thread
 * owns goes on the page's local free list without atomics, any other pool
 * block on the page's remote list. The cheap checks (block start, double
 * free tag) stay on the fast path: silent heap corruption costs more than
 * the few instructions they take. The fast paths themselves are inline code
 * in alloc.h (override.c inlines them into the exported functions); their
 * slow branches are here. */
#define _GNU_SOURCE
#include "alloc.h"
#include "fallback.h"
#include "fmt.h"
#include "lifetime.h"
#include "sample.h"
#include "options.h"
#include "start.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the jemalloc tier ---- */

void *pm_malloc_fallback(pm_heap *h, size_t size, size_t align, int zero, int reason) {
  void *p = pm_fallback_alloc(size, align, zero);
  if (unlikely(p == NULL)) return NULL;
  switch (reason) {
  case PM_FB_TOO_LARGE: {
    PM_STAT_ADD(h, fb_too_large, 1);
    unsigned bucket = size <= 1 ? 0 : 64u - (unsigned)__builtin_clzl(size - 1);
    if (h->kind == PM_HEAP_REAL)
      PM_COUNT(h->too_large_log2[bucket]++);
    else
      PM_COUNT(atomic_fetch_add_explicit(&pm_shared.too_large_log2[bucket], 1,
                                         memory_order_relaxed));
    break;
  }
  case PM_FB_ALIGNMENT:
    PM_STAT_ADD(h, fb_alignment, 1);
    break;
  case PM_FB_DISABLED:
    PM_STAT_ADD(h, fb_disabled, 1);
    break;
  case PM_FB_REGION_FULL:
    PM_STAT_ADD(h, fb_region_full, 1);
    break;
  case PM_FB_LONG_LIVED:
    PM_STAT_ADD(h, fb_long_lived, 1);
    break;
  default:
    PM_STAT_ADD(h, fb_no_heap, 1);
    break;
  }
  PM_STAT_ADD(h, large_bytes, size);
  return p;
}

static int no_pool_reason(const pm_heap *h) {
  return h->kind == PM_HEAP_REAL ? PM_FB_TOO_LARGE
         : pm_opt.disable        ? PM_FB_DISABLED
                                 : PM_FB_NO_HEAP;
}

/* ---- malloc ---- */

/* Requested bytes per class: h->req_bytes[cls] - h->countdown[cls] - 1.
 * The malloc fast path counts its request down and adds it nowhere else;
 * the tick folds what was counted down into req_bytes when it resets the
 * countdown (pm_malloc_tick), and a request served outside the pools
 * (jemalloc) is taken back out, since jemalloc's figures count it. A request
 * that did not count down (pm_malloc_pool: aligned.c) adds itself. */
pm_inline void count_request(pm_heap *h, unsigned cls, int64_t bytes) {
  PM_COUNT(h->req_bytes[cls] += (uint64_t)bytes);
  (void)h, (void)cls, (void)bytes;
}

pm_inline void *pop_block(pm_page *pg, pm_block *b) {
  pg->free = pm_block_next(b);
  b->tag = 0;
  /* not counted: pg is the class's current page (types.h), and a page's
   * allocations are used + frees */
  return b;
}

/* a block of class cls from a fresh or other page (the current one has none) */
static void *malloc_refill(pm_heap *h, size_t size, unsigned cls) {
  pm_page *pg = pm_heap_page_for(h, cls);
  if (unlikely(pg == NULL)) {
    count_request(h, cls, -(int64_t)size); /* jemalloc counts it */
    return pm_malloc_fallback(h, size, 0, false, PM_FB_REGION_FULL);
  }
  return pop_block(pg, pg->free);
}

/* a block of class cls for a request already counted */
static void *malloc_pool(pm_heap *h, size_t size, unsigned cls) {
  pm_page *pg = h->pages[cls];
  pm_block *b = pg->free;
  void *p = likely(b != NULL) ? pop_block(pg, b) : malloc_refill(h, size, cls);
  if (unlikely(pm_g.live != NULL) && p != NULL && pm_is_pool_ptr(p))
    pm_page_mark_live(pm_page_of(p), p);
  return p;
}

void *pm_malloc_pool(pm_heap *h, size_t size, unsigned cls) {
  count_request(h, cls, (int64_t)size);
  return malloc_pool(h, size, cls);
}

/* ---- the slow-path tick: sampling, routing, housekeeping ---- */

static PM_TLS uint8_t realloc_moving; /* realloc_alloc: do not route */

/* With the sampler off the countdown still runs out every PM_TICK_BYTES
 * bytes of a class: the tick that lets free memory go back to the OS in a
 * program whose allocations no longer reach a slow path (a steady
 * malloc/free of a few blocks after a spike), as jemalloc's decay ticker. */
#define PM_TICK_BYTES ((int64_t)256 << 10)
#define PM_LARGE_BIT (1ull << 63)

static void housekeeping(pm_heap *h) {
  pm_pages_maybe_purge();
  pm_fallback_maybe_purge();
  pm_heap_trim_idle(h);
}

/* the thread's heap of watched pages, or NULL (heap table full) */
static pm_heap *aux_heap(pm_heap *h) {
  if (h->aux_heap == NULL) h->aux_heap = pm_heap_acquire_aux();
  return h->aux_heap;
}

/* a sampled block: on a watched page, so its free reaches the sampler */
static void *malloc_sampled(pm_heap *h, size_t size, unsigned cls, uint32_t rate,
                            uintptr_t site) {
  uint32_t user = 0;
  if (pm_opt.lifetime) {
    user = pm_lt_on_sample(site, cls);
    pm_lt_scan();
  }
  pm_heap *aux = aux_heap(h);
  void *p;
  if (aux != NULL) {
    p = malloc_pool(aux, size, cls); /* counted down in h */
  } else {
    count_request(h, cls, -(int64_t)size);
    p = pm_fallback_alloc(size, 0, PM_ZERO_NONE);
  }
  if (p == NULL) return NULL;
  pm_sample_record(p, size, rate, site, user);
  PM_STAT_ADD(h, samples, 1);
  return p;
}

/* a routed block: to pool pages of their own, or to jemalloc */
static void *malloc_routed(pm_heap *h, size_t size, unsigned cls, uint32_t site) {
  void *p = NULL;
  if (pm_opt.lifetime == 2) {
    pm_heap *aux = aux_heap(h);
    if (aux != NULL) {
      p = malloc_pool(aux, size, cls); /* counted down in h */
      if (p != NULL) PM_STAT_ADD(h, lt_to_pages, 1);
    }
  }
  if (p == NULL) {
    count_request(h, cls, -(int64_t)size); /* jemalloc counts it */
    p = pm_malloc_fallback(h, size, 0, false, PM_FB_LONG_LIVED);
  }
  if (p != NULL) pm_lt_routed(site, size);
  return p;
}

/* whether this request of `size` bytes is sampled; re-arms the distance.
 * *rate: the rate the distance that ran out was drawn with. */
static bool tick_sample(pm_heap *h, size_t size, unsigned cls, uint32_t *rate) {
  uint64_t bit = 1ull << cls;
  bool forced = h->forced & bit;
  if (!pm_sample_on) {
    if (!forced) housekeeping(h);
    h->sample_left[cls] = PM_TICK_BYTES;
    return false;
  }
  if (!(h->armed & bit)) { /* the first allocation of the class in this heap */
    h->armed |= bit;
    h->sample_left[cls] = pm_sample_draw(h, &h->sample_rate[cls]);
    return false;
  }
  if (forced) { /* every allocation comes here: count it */
    h->sample_left[cls] -= (int64_t)size;
    if (h->sample_left[cls] > 0) return false;
  }
  /* the distance ran out on this request */
  *rate = h->sample_rate[cls];
  h->sample_left[cls] = pm_sample_draw(h, &h->sample_rate[cls]);
  housekeeping(h);
  return !pm_sample_busy; /* not an allocation of the sampler's own unwinder */
}

void *pm_malloc_tick(pm_heap *h, size_t size, unsigned cls, uintptr_t site) {
  uint64_t bit = 1ull << cls;
  uint32_t rate = 0;
  bool sample = tick_sample(h, size, cls, &rate);
  bool diverted = pm_opt.lifetime && (relaxed_load(&pm_lt_diverted) & bit);
  int64_t next;
  if (diverted || pm_g.live != NULL) {
    h->forced |= bit;
    next = -1; /* below zero after any request, malloc(0) too */
  } else {
    h->forced &= ~bit;
    next = h->sample_left[cls];
  }
  /* what was counted down (this request included) goes into req_bytes;
   * req_bytes is written first, so a report reading the two fields in
   * between counts up to one distance too many, never a negative figure */
  count_request(h, cls, next - h->countdown[cls]);
  atomic_signal_fence(memory_order_seq_cst);
  h->countdown[cls] = next;
  void *p = NULL;
  if (sample) p = malloc_sampled(h, size, cls, rate, site);
  if (p == NULL && diverted && !realloc_moving) {
    uint32_t routed = pm_lt_route(h, site);
    if (routed) p = malloc_routed(h, size, cls, routed);
  }
  return p != NULL ? p : malloc_pool(h, size, cls);
}

/* a large request of a real heap: sampled once per rate bytes too */
/* The large-block countdown (per thread): the block p of `size` bytes from
 * `site` is sampled when it runs out. malloc, calloc and realloc of large
 * blocks all count, as they do for pool blocks. */
/* counts `size` bytes down: the rate of the sample they make, 0 for none */
static uint32_t count_large(pm_heap *h, size_t size) {
  if (!pm_sample_on || h->kind != PM_HEAP_REAL) return 0;
  h->large_left -= (int64_t)size;
  if (h->large_left > 0) return 0;
  bool armed = (h->armed & PM_LARGE_BIT) && !pm_sample_busy;
  h->armed |= PM_LARGE_BIT;
  uint32_t rate = h->large_rate;
  h->large_left = pm_sample_draw(h, &h->large_rate);
  return armed ? rate : 0;
}

static void sample_large(pm_heap *h, void *p, size_t size, uintptr_t site) {
  if (p == NULL) return;
  uint32_t rate = count_large(h, size);
  if (rate != 0) pm_sample_record(p, size, rate, site, 0);
}

static void *malloc_large_block(pm_heap *h, size_t size, uintptr_t site) {
  void *p = pm_malloc_fallback(h, size, 0, false, PM_FB_TOO_LARGE);
  sample_large(h, p, size, site);
  return p;
}

pm_noinline void *pm_malloc_slow(pm_heap *h, size_t size, uintptr_t site, size_t cls) {
  if (unlikely(h == &pm_heap_empty)) h = pm_thread_start(); /* the thread's first call */
  if (unlikely(h->kind != PM_HEAP_REAL))
    return pm_malloc_fallback(h, size, 0, false, no_pool_reason(h));
  size_t bsize = pm_class_size(cls);
  if (unlikely(size > pm_g.max_pooled || bsize > pm_page_size()))
    return malloc_large_block(h, size, site);
  /* this request counts down too (sampling must see every byte; a forced
   * class - diverted, POOLMALLOC_CHECK=full - is at -1 and ticks) */
  if ((h->countdown[cls] -= (int64_t)size) < 0) return pm_malloc_tick(h, size, cls, site);
  return malloc_refill(h, size, cls);
}

/* The fast path's countdown ran out; its page has a free block. A diverted
 * class (routing) is held at -1, so every one of its requests comes here,
 * and most of them are neither sampled nor routed: the lean branch below
 * counts the request and the sampling distance as the tick would, finds
 * the site in the heap's cache of routing decisions as "not routed", and
 * pops the block the fast path saw, leaving the countdown at -1. Anything
 * else (a sample due, a site not cached or routed, the class no longer
 * diverted, POOLMALLOC_CHECK=full) is the tick's. A malloc(48)+free pair
 * of an unrouted site in a diverted class: 177.5 instructions through the
 * tick, 122.4 here, 67.0 with routing off (docs/design.md, "Routing"). */
pm_noinline void *pm_malloc_counted(pm_heap *h, size_t size, uintptr_t site, size_t cls) {
  uint64_t bit = 1ull << cls;
  int64_t left = h->sample_left[cls] - (int64_t)size;
  if ((h->forced & h->armed & bit) && left > 0 && (relaxed_load(&pm_lt_diverted) & bit) &&
      pm_g.live == NULL && pm_lt_known_unrouted(h, site)) {
    pm_page *pg = h->pages[cls];
    pm_block *b = pg->free;
    if (likely(b != NULL)) {
      h->sample_left[cls] = left;
      count_request(h, cls, -1 - h->countdown[cls]);
      atomic_signal_fence(memory_order_seq_cst);
      h->countdown[cls] = -1;
      return pop_block(pg, b);
    }
  }
  return pm_malloc_tick(h, size, cls, site);
}

static pm_noinline void *malloc_large(size_t size, uintptr_t site) {
  pm_heap *h = pm_tls_heap;
  if (h == &pm_heap_empty) { /* first call of the thread: max_pooled may change */
    h = pm_thread_start();
    if (h->kind == PM_HEAP_REAL && size <= pm_g.max_pooled)
      return pm_malloc_slow(h, size, site, pm_class_of(size));
  }
  if (h->kind == PM_HEAP_REAL) return malloc_large_block(h, size, site);
  return pm_malloc_fallback(h, size, 0, false, no_pool_reason(h));
}

/* size > pm_g.fast_max: a pool size above the lookup table (the fast path
 * with the computed class), or a large request */
pm_noinline void *pm_malloc_big(size_t size, uintptr_t site) {
  if (unlikely(size > pm_g.max_pooled)) return malloc_large(size, site);
  pm_heap *h = pm_tls_heap;
  unsigned cls = pm_class_of(size);
  pm_page *pg = h->pages[cls];
  pm_block *b = pg->free;
  if (unlikely(b == NULL)) return pm_malloc_slow(h, size, site, cls);
  if ((h->countdown[cls] -= (int64_t)size) < 0) return pm_malloc_tick(h, size, cls, site);
  return pop_block(pg, b);
}

void *pm_malloc(size_t size) {
  PM_MALLOC_BODY((uintptr_t)__builtin_return_address(0));
}

void *pm_malloc_at(size_t size, uintptr_t site) {
  PM_MALLOC_BODY(site);
}

/* ---- free ---- */

/* Zeroing large calloc blocks. jemalloc zeroes a reused extent by purging
 * it (madvise) so the program's next touch faults every page in again; on
 * this VM that made a loop of 1-8 MiB callocs 20x slower than glibc. glibc
 * instead memsets chunks it reuses and relies on fresh mmap zero pages only
 * for sizes above its dynamic mmap threshold, which rises to the largest
 * mmapped chunk freed so far (at most 32 MiB). We do the same: a calloc no
 * larger than the largest large block freed so far is likely to reuse warm
 * memory and is memset; a larger one asks jemalloc for zeroed memory, so a
 * huge sparse calloc (numpy.zeros) stays lazily zero. */
#define PM_CALLOC_MEMSET_MAX ((size_t)32 << 20)
static _Atomic size_t calloc_memset_limit;

/* a pointer that is neither a pool block nor, since jemalloc never started,
 * a jemalloc block */
static void check_foreign(const char *call, const void *p) {
  if (unlikely(!pm_fallback_owns(p)))
    pm_heap_error(call, "invalid pointer: not allocated by poolmalloc", p);
}

static void free_checked(void *p);

/* p is freed (or moved by realloc): if it was a sample, it dies */
static void sample_dead(const pm_sample_info *info) {
  if (pm_opt.lifetime)
    pm_lt_on_death(info->user, pm_sample_clock() - info->birth, info->flag);
}

static void sample_died(const void *p) {
  pm_sample_info info;
  if (pm_sample_forget(p, &info)) sample_dead(&info);
}

pm_noinline void pm_free_large(void *p) {
  if (p == NULL) return;
  if (pm_is_pool_ptr(p)) { /* only with POOLMALLOC_CHECK=full */
    free_checked(p);
    return;
  }
  check_foreign("free()", p);
  if (relaxed_load(&pm_sample_live)) sample_died(p);
  pm_heap *h = pm_tls_heap;
  PM_STAT_ADD(h, large_frees, 1);
  size_t usable = pm_fallback_usable(p);
  if (usable > relaxed_load(&calloc_memset_limit) && usable <= PM_CALLOC_MEMSET_MAX)
    relaxed_store(&calloc_memset_limit, usable);
  pm_fallback_free(p);
  pm_fallback_maybe_purge();
}

static void *calloc_large(pm_heap *h, size_t total, int reason, uintptr_t site) {
  /* fallback.c zeroes: a fresh mapping needs nothing, a reused direct
   * block a memset of what it held before */
  int zero = total > relaxed_load(&calloc_memset_limit) ? PM_ZERO_PAGES : PM_ZERO_MEMSET;
  void *p = pm_malloc_fallback(h, total, 0, zero, reason);
  sample_large(h, p, total, site);
  return p;
}

/* pushes b on pg's remote list (pg is another thread's page, checked).
 * It counts nothing: remote frees are counted where the owner collects
 * them (pm_page_collect) and, while pending, by the report's walk of the
 * remote lists (stats.c), so a freeing thread needs no heap and writes no
 * counter (two atomic adds on process-wide counters, for a thread without
 * a heap, bounced between the cores of a producer/consumer pair). */
static void free_remote(pm_page *pg, pm_block *b) {
  b->tag = pm_g.tag;
  pm_block *old = atomic_load_explicit(&pg->remote, memory_order_relaxed);
  do {
    pm_block_set_next(b, pm_remote_first(old));
  } while (
      !atomic_compare_exchange_weak_explicit(&pg->remote, &old, pm_remote_push(old, b),
                                             memory_order_seq_cst, memory_order_relaxed));
  if (old == NULL && atomic_load_explicit(&pg->full, memory_order_seq_cst)) {
    pm_heap *owner = atomic_load_explicit(&pg->owner, memory_order_acquire);
    if (owner != NULL)
      atomic_store_explicit(&owner->remote_full_hint, 1, memory_order_release);
    else
      pm_page_claim_orphan(pg);
  }
}

/* a pool block that is not simply ours: another thread's page, or one of
 * the cheap checks fired (the tag may be user data: confirm on the list) */
/* a block of a watched page (an auxiliary heap's): maybe a sample */
static void free_watched(pm_heap *h, pm_page *pg, pm_block *b) {
  pm_heap *owner = relaxed_load(&pg->owner);
  bool mine = owner != NULL && owner == h->aux_heap;
  pm_page_check("free()", pg, b, mine ? PM_FREED_LIST : PM_FREED_TAG, false);
  if (relaxed_load(&pm_sample_live)) sample_died(b);
  if (mine)
    pm_free_local(owner, pg, b);
  else
    free_remote(pg, b);
}

pm_noinline void pm_free_unusual(pm_block *b, pm_page *pg, pm_heap *h) {
  if (unlikely(pg->watched)) {
    free_watched(h, pg, b);
    return;
  }
  if (relaxed_load(&pg->owner) != h) {
    pm_page_check("free()", pg, b, PM_FREED_TAG, false);
    free_remote(pg, b);
    return;
  }
  pm_page_check("free()", pg, b, PM_FREED_LIST, false);
  pm_free_local(h, pg, b);
}

/* A block start without the free tag on a page the thread does not own:
 * pm_free made the checks pm_page_check would make but the page's state
 * (a page that is not in use has no owner, so it lands here too). */
pm_noinline void pm_free_other(pm_block *b, pm_page *pg, pm_heap *h) {
  if (unlikely(pg->watched || pg->state != PM_PAGE_IN_USE)) {
    pm_free_unusual(b, pg, h);
    return;
  }
  free_remote(pg, b);
}

/* POOLMALLOC_CHECK=full: the block's live bit must be set */
static pm_noinline void free_checked(void *p) {
  pm_page *pg = pm_page_of(p);
  pm_block *b = p;
  pm_page_check("free()", pg, p, PM_FREED_BIT, true);
  pm_heap *h = pm_tls_heap;
  if (pg->watched && relaxed_load(&pm_sample_live)) sample_died(p);
  if (pg->watched && relaxed_load(&pg->owner) == h->aux_heap && h->aux_heap != NULL) {
    pm_free_local(h->aux_heap, pg, b);
  } else if (relaxed_load(&pg->owner) != h) {
    b->tag = 0; /* checked above: a value equal to the tag is user data */
    free_remote(pg, b);
  } else {
    pm_free_local(h, pg, b);
  }
}

void pm_free(void *p) {
  pm_free_inline(p);
}

/* ---- calloc, realloc ---- */

void *pm_calloc(size_t n, size_t size) {
  size_t total;
  if (unlikely(__builtin_mul_overflow(n, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  pm_heap *h = pm_heap_get();
  if (total <= pm_g.max_pooled && h->kind == PM_HEAP_REAL) {
    void *p = pm_malloc_at(total, (uintptr_t)__builtin_return_address(0));
    if (p != NULL) memset(p, 0, total);
    return p;
  }
  return calloc_large(h, total, no_pool_reason(h),
                      (uintptr_t)__builtin_return_address(0));
}

/* the block p points into, checked: realloc and malloc_usable_size of a
 * freed or foreign pool pointer would otherwise corrupt the heap */
static pm_page *checked_page(const char *call, const void *p) {
  pm_page *pg = pm_page_of(p);
  pm_page_check(call, pg, p, pm_g.live != NULL ? PM_FREED_BIT : PM_FREED_TAG, false);
  return pg;
}

/* The new block of a realloc that moves: never routed. A block that grows by
 * realloc leaves its old place at each move, so it pins nothing, and a routed
 * one went on growing inside jemalloc. The flag is the thread's own; a signal
 * handler's malloc in between is merely not routed. */
static void *realloc_alloc(size_t size, uintptr_t site) {
  realloc_moving = 1;
  void *q = pm_malloc_at(size, site);
  realloc_moving = 0;
  return q;
}

/* A large block reallocated. For the sampler a block that moves is a free
 * and an allocation of its new size; one that grows in place is an
 * allocation of its growth only, and if it is a sample it stays one (same
 * birth and stack) with the growth's weight added when the growth runs out
 * the countdown. Counting the whole size at each in-place realloc sampled
 * nearly every one of a vector growing by 16-128 B steps (realloc-chain:
 * 6.6 M samples, 2.5x the time, "2.6 TiB allocated" for 10 GiB of moves
 * and growth). */
static void *realloc_large(pm_heap *h, void *p, size_t size, uintptr_t site) {
  size_t old = pm_fallback_usable(p); /* growth in place counts, not the size */
  /* the same size class: jemalloc's rallocx would keep the block as it is,
   * after ~800 instructions (its thread events, the extent lookups); a
   * vector growing by 16-128 B steps lands here about (class step) / 72
   * times per class: 225 times in 64-80 KiB */
  if (pm_fallback_same_size(old, size)) {
    PM_STAT_ADD(h, realloc_in_place, 1);
    return p;
  }
  pm_sample_slot *held = relaxed_load(&pm_sample_live) ? pm_sample_hold(p) : NULL;
  void *q = pm_fallback_realloc(p, size);
  if (q == p || q == NULL) { /* p stays: in place, or failed */
    uint32_t rate = q != NULL && size > old ? count_large(h, size - old) : 0;
    if (held != NULL)
      pm_sample_keep(held, p, size - old, rate);
    else if (rate != 0)
      pm_sample_record_growth(p, size - old, rate, site);
    if (q != NULL) PM_STAT_ADD(h, realloc_in_place, 1);
    if (q != NULL && size > old) PM_STAT_ADD(h, large_bytes, size - old);
    return q;
  }
  if (held != NULL) {
    pm_sample_info info;
    pm_sample_drop(held, &info);
    sample_dead(&info);
  }
  sample_large(h, q, size, site);
  PM_STAT_ADD(h, realloc_moved, 1);
  PM_STAT_ADD(h, large_bytes, size);
  return q;
}

void *pm_realloc(void *p, size_t size) {
  uintptr_t site = (uintptr_t)__builtin_return_address(0); /* the caller's call site */
  if (p == NULL) return pm_malloc_at(size, site);
  if (size == 0) { /* glibc: frees and returns NULL */
    pm_free(p);
    return NULL;
  }
  pm_heap *h = pm_heap_get();
  if (!pm_is_pool_ptr(p)) {
    check_foreign("realloc()", p);
    if (size <= pm_g.max_pooled && h->kind == PM_HEAP_REAL) {
      /* a large block shrunk to pool size, or a small one jemalloc holds (a
       * routed site's, an aligned one), moves into the pools */
      size_t usable = pm_fallback_usable(p);
      void *q = realloc_alloc(size, site);
      if (q == NULL) return NULL;
      memcpy(q, p, size < usable ? size : usable);
      pm_free_large(p);
      PM_STAT_ADD(h, realloc_moved, 1);
      return q;
    }
    return realloc_large(h, p, size, site);
  }
  pm_page *pg = checked_page("realloc()", p);
  size_t bsize = pg->bsize;
  if (size <= bsize && (size > bsize / 2 || bsize <= 128)) {
    PM_STAT_ADD(h, realloc_in_place, 1);
    return p;
  }
  void *q = realloc_alloc(size, site);
  if (q == NULL) return NULL; /* p stays valid */
  memcpy(q, p, size < bsize ? size : bsize);
  pm_free(p);
  PM_STAT_ADD(h, realloc_moved, 1);
  return q;
}

void *pm_reallocarray(void *p, size_t n, size_t size) {
  size_t total;
  if (unlikely(__builtin_mul_overflow(n, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  return pm_realloc(p, total);
}

size_t pm_usable_size(const void *p) {
  if (p == NULL) return 0;
  if (pm_is_pool_ptr(p)) return checked_page("malloc_usable_size()", p)->bsize;
  check_foreign("malloc_usable_size()", p);
  return pm_fallback_usable(p);
}
