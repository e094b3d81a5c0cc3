/* page.c - carving, free lists and remote collection of one pool page, and
 * the checks on a pointer into one. */
#include "page.h"
#include "fmt.h"
#include "os.h"

#define PM_CARVE_BYTES 4096

/* pages in use per class and in all, with their peaks (slow path only) */
PM_HOT _Atomic uint64_t pm_class_pages[PM_NCLASSES], pm_class_pages_peak[PM_NCLASSES];
PM_HOT _Atomic uint64_t pm_pages_in_use, pm_pages_peak;
/* same-thread frees, remote frees and allocations of pages that were
 * retired, per class */
_Atomic uint64_t pm_class_local_frees[PM_NCLASSES], pm_class_remote_frees[PM_NCLASSES],
    pm_class_allocs_retired[PM_NCLASSES];

void pm_page_retire(pm_page *pg) {
  /* full must read 0 before the owner goes: a remote free that raced with
   * the last collection and still sees full == 1 would otherwise claim the
   * free page as an orphan and put it on the abandoned stack too */
  atomic_store_explicit(&pg->full, 0, memory_order_seq_cst);
  atomic_fetch_add_explicit(&pm_class_local_frees[pg->cls], pg->local_frees,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&pm_class_remote_frees[pg->cls], pg->remote_collected,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&pm_class_allocs_retired[pg->cls],
                            pm_page_allocs(pg, pm_page_used(pg)), memory_order_relaxed);
  pg->local_frees = pg->remote_collected = 0;
  relaxed_store(&pg->returned, 0); /* free: purged whole or reused from a fresh carve */
  pg->state = PM_PAGE_FREE;
  atomic_store_explicit(&pg->owner, NULL, memory_order_release);
  atomic_fetch_sub_explicit(&pm_class_pages[pg->cls], 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&pm_pages_in_use, 1, memory_order_relaxed);
}

void pm_page_init(pm_page *pg, unsigned cls, struct pm_heap *heap) {
  size_t bsize = pm_class_size(cls);
  pg->free = NULL;
  pg->local_frees = pg->remote_collected = 0;
  pg->bsize = (uint32_t)bsize;
  pm_page_set_divisor(pg, bsize);
  pg->capacity = (uint32_t)(pm_page_size() / bsize);
  pg->carved = 0;
  relaxed_store(&pg->returned, 0);
  pg->trim_used = 0;
  pg->cls = (uint8_t)cls;
  pg->state = PM_PAGE_IN_USE;
  pg->where = PM_IN_NONE;
  pg->wake = 0;
  pg->room = -1; /* used 0 */
  pg->dirty = 1;
  pg->watched = heap != NULL && heap->aux;
  pg->next = pg->prev = NULL;
  atomic_store_explicit(&pg->remote, NULL, memory_order_relaxed);
  atomic_store_explicit(&pg->full, 0, memory_order_relaxed);
  atomic_store_explicit(&pg->owner, heap, memory_order_release);
  pm_atomic_max(&pm_class_pages_peak[cls],
                atomic_fetch_add_explicit(&pm_class_pages[cls], 1, memory_order_relaxed) +
                    1);
  pm_atomic_max(&pm_pages_peak,
                atomic_fetch_add_explicit(&pm_pages_in_use, 1, memory_order_relaxed) + 1);
}

void pm_page_revive(pm_page *pg, struct pm_heap *heap) {
  pm_block *free = pg->free;
  uint32_t carved = pg->carved;
  pm_page_init(pg, pg->cls, heap);
  pg->free = free;
  pg->carved = carved;
}

/* Fresh memory is backed by one system call rather than a page fault per
 * page: on the 2-core VM the benchmarks run on, a first-touch fault costs
 * 9.5 us and MADV_POPULATE_WRITE 2.1 us for one page, 0.9 us a page for four
 * (docs/design.md "Carving populates"). The carve writes every page it
 * populates, so nothing becomes resident that the carve would not have
 * faulted in: populating ahead (a page's whole remainder) cut more faults
 * but left the pages of classes that stop growing resident. */
static void populate(pm_page *pg, size_t end) {
  size_t os = pm_os_page_size(), to = (end + os - 1) & ~(os - 1);
  pm_os_populate(pm_page_start(pg) + pg->touched, end - pg->touched);
  pg->touched = (uint32_t)(to < pm_page_size() ? to : pm_page_size());
}

bool pm_page_carve(pm_page *pg) {
  uint32_t left = pg->capacity - pg->carved;
  if (left == 0) return false;
  uint32_t n = PM_CARVE_BYTES / pg->bsize;
  if (n == 0) n = 1;
  if (n > left) n = left;
  char *first = pm_page_start(pg) + (size_t)pg->carved * pg->bsize;
  /* the links about to be written end at the last block's first 16 bytes */
  size_t end = (size_t)(first - pm_page_start(pg)) + (size_t)(n - 1) * pg->bsize +
               sizeof(pm_block);
  if (end > pg->touched) populate(pg, end);
  char *b = first;
  for (uint32_t i = 1; i < n; i++, b += pg->bsize)
    pm_block_set_next((pm_block *)b, (pm_block *)(b + pg->bsize));
  pm_block_set_next((pm_block *)b, pg->free);
  pg->free = (pm_block *)first;
  pg->carved += n;
  return true;
}

uint32_t pm_page_collect(pm_page *pg) {
  if (atomic_load_explicit(&pg->remote, memory_order_relaxed) == NULL) return 0;
  pm_block *w = atomic_exchange_explicit(&pg->remote, NULL, memory_order_acquire);
  if (w == NULL) return 0;
  pm_block *head = pm_remote_first(w);
  uint32_t n = pm_remote_length(w);
  bool returned = pm_page_returned(pg) != 0; /* their blocks are already free */
  if (pg->free != NULL || n >= PM_REMOTE_MAX || returned) {
    /* splice (the tail is needed), count, or check every block: a walk of
     * blocks another core wrote last. Otherwise the list becomes the free
     * list as it is: the walk was 16% of larson's time (perf), a miss per
     * block that malloc's pop then takes one at a time, overlapped with
     * the program's own work. */
    n = 1;
    pm_block *tail = head;
    for (pm_block *nx;; tail = nx, n++) {
      if (unlikely(returned) && pm_page_in_returned(pg, (uintptr_t)tail & pm_g.page_mask))
        pm_heap_error("free()", "double free detected", tail);
      if ((nx = pm_block_next(tail)) == NULL) break;
    }
    pm_block_set_next(tail, pg->free);
  }
  pg->free = head;
  pm_page_add_used(pg, -(int32_t)n);
  pg->remote_collected += n;
  return n;
}

/* ---- returned pieces (page.h) ---- */

static void count_one(pm_page *pg, uint32_t i, void *arg) {
  (void)pg, (void)i;
  ++*(uint32_t *)arg;
}

size_t pm_page_piece(void) {
  size_t os = pm_os_page_size(), piece = pm_page_size() >> 6;
  return piece > os ? piece : os;
}

/* the pieces [off, off + len) touches, as a mask */
static uint64_t pieces_of(uintptr_t off, size_t len, unsigned shift) {
  unsigned first = (unsigned)(off >> shift), last = (unsigned)((off + len - 1) >> shift);
  uint64_t upto = last >= 63 ? ~0ull : (2ull << last) - 1;
  return upto & ~((1ull << first) - 1);
}

bool pm_page_in_returned(const pm_page *pg, uintptr_t off) {
  unsigned shift = (unsigned)__builtin_ctzl(pm_page_piece());
  return (pieces_of(off, pg->bsize, shift) & pm_page_returned(pg)) != 0;
}

/* Calls fn(pg, index, arg) once for each block touching a returned piece. */
static void each_returned_block(pm_page *pg, unsigned shift,
                                void (*fn)(pm_page *, uint32_t, void *), void *arg) {
  uint32_t next = 0;
  for (uint64_t m = pm_page_returned(pg); m != 0; m &= m - 1) {
    uint64_t s = (uint64_t)__builtin_ctzll(m) << shift, e = s + ((uint64_t)1 << shift);
    uint32_t i = (uint32_t)(s / pg->bsize), j = (uint32_t)((e - 1) / pg->bsize);
    if (j >= pg->carved) j = pg->carved - 1;
    for (i = i > next ? i : next; i <= j; i++)
      fn(pg, i, arg);
    if (j + 1 > next) next = j + 1;
  }
}

/* free bytes per piece */
typedef struct piece_bytes {
  uint32_t n[64];
  unsigned shift;
} piece_bytes;

static void add_span(piece_bytes *pb, uintptr_t off, size_t len) {
  uintptr_t end = off + len;
  while (off < end) {
    unsigned u = (unsigned)(off >> pb->shift);
    uintptr_t piece_end = (uintptr_t)(u + 1) << pb->shift;
    uintptr_t stop = piece_end < end ? piece_end : end;
    pb->n[u] += (uint32_t)(stop - off);
    off = stop;
  }
}

static void add_returned(pm_page *pg, uint32_t i, void *arg) {
  add_span(arg, (uintptr_t)i * pg->bsize, pg->bsize);
}

/* gives back the runs of adjacent pieces of mask with one madvise each */
static void purge_pieces(pm_page *pg, uint64_t mask, unsigned shift) {
  char *start = pm_page_start(pg);
  while (mask) {
    unsigned u = (unsigned)__builtin_ctzll(mask);
    uint64_t rest = ~(mask >> u);
    unsigned n = rest ? (unsigned)__builtin_ctzll(rest) : 64 - u;
    pm_os_purge(start + ((size_t)u << shift), (size_t)n << shift);
    mask &= ~((n >= 64 ? ~0ull : (1ull << n) - 1) << u);
  }
}

size_t pm_page_trim(pm_page *pg) {
  size_t psize = pm_page_size(), piece = pm_page_piece();
  unsigned shift = (unsigned)__builtin_ctzl(piece);
  if (psize / piece < 2) return 0;
  pm_page_collect(pg);
  pg->trim_used = pm_page_used(pg);
  if (pm_page_used(pg) == 0) return 0; /* the owner releases it whole */
  piece_bytes pb = {.shift = shift};
  char *start = pm_page_start(pg);
  uint32_t limit = pg->capacity + 1;
  for (pm_block *b = pg->free; b != NULL; b = pm_block_next(b)) {
    /* a list that leaves the page is corrupted: leave it to the checks */
    if (!limit-- || !pm_is_pool_ptr(b) || pm_page_of(b) != pg) return 0;
    add_span(&pb, (uintptr_t)((char *)b - start), pg->bsize);
  }
  each_returned_block(pg, shift, add_returned, &pb);
  /* a piece can go when every block byte in it is free; pieces past the
   * carved blocks are the tail, carved later (and slack holds no block) */
  uint64_t blocks_end = (uint64_t)pg->carved * pg->bsize;
  uint64_t extent = pg->carved == pg->capacity ? psize : blocks_end, fresh = 0;
  for (unsigned u = 0; u < psize >> shift; u++) {
    uint64_t s = (uint64_t)u << shift, e = s + piece;
    if (e > extent || s >= blocks_end) break;
    uint64_t held = (e < blocks_end ? e : blocks_end) - s;
    if (!(pm_page_returned(pg) >> u & 1) && pb.n[u] == held) fresh |= 1ull << u;
  }
  if (fresh == 0) return 0;
  pm_block *prev = NULL;
  for (pm_block *b = pg->free, *next; b != NULL; b = next) {
    next = pm_block_next(b);
    if (!(pieces_of((uintptr_t)((char *)b - start), pg->bsize, shift) & fresh)) {
      prev = b;
    } else if (prev) {
      pm_block_set_next(prev, next);
    } else {
      pg->free = next;
    }
  }
  purge_pieces(pg, fresh, shift);
  relaxed_store(&pg->returned, pm_page_returned(pg) | fresh);
  return (size_t)__builtin_popcountll(fresh) << shift;
}

typedef struct chain {
  pm_block *first, *last;
} chain;

static void push_returned(pm_page *pg, uint32_t i, void *arg) {
  chain *c = arg;
  pm_block *b = (pm_block *)(pm_page_start(pg) + (size_t)i * pg->bsize);
  if (c->last)
    pm_block_set_next(c->last, b);
  else
    c->first = b;
  c->last = b;
}

bool pm_page_reclaim(pm_page *pg) {
  if (pm_page_returned(pg) == 0) return false;
  chain c = {NULL, NULL};
  each_returned_block(pg, (unsigned)__builtin_ctzl(pm_page_piece()), push_returned, &c);
  relaxed_store(&pg->returned, 0);
  if (c.first == NULL) return false;
  pm_block_set_next(c.last, pg->free);
  pg->free = c.first;
  return true;
}

/* walks a free list, stopping at the first link that leaves the page (a
 * corrupted list must not send the check itself astray) */
static bool list_holds(pm_page *pg, pm_block *f, const pm_block *b) {
  for (uint32_t limit = pg->capacity + 1; f != NULL && limit--; f = pm_block_next(f)) {
    if (f == b) return true;
    if (!pm_is_pool_ptr(f) || pm_page_of(f) != pg) return false;
  }
  return false;
}

uint32_t pm_page_count_remote(pm_page *pg) {
  uint32_t n = 0;
  pm_block *w = atomic_load_explicit(&pg->remote, memory_order_acquire);
  if (pm_remote_length(w) < PM_REMOTE_MAX) return pm_remote_length(w);
  pm_block *f = pm_remote_first(w);
  for (; f != NULL && n <= pg->capacity; f = pm_block_next(f), n++)
    if (!pm_is_pool_ptr(f) || pm_page_of(f) != pg ||
        !pm_page_is_block_start(pg, (uintptr_t)f & pm_g.page_mask))
      break;
  return n;
}

/* Blocks on the current page pg's free list, up to the first link that
 * is no block of pg; *whole: the walk reached the list's end. */
pm_inline uint32_t count_free(pm_page *pg, bool *whole) {
  uint32_t n = 0;
  pm_block *f = pg->free;
  for (; f != NULL && n < pg->capacity; f = pm_block_next(f), n++)
    if (!pm_is_pool_ptr(f) || pm_page_of(f) != pg ||
        !pm_page_is_block_start(pg, (uintptr_t)f & pm_g.page_mask))
      break;
  *whole = f == NULL;
  return n;
}

/* the current page's blocks out, n of its carved blocks being free */
static uint32_t used_of_current(pm_page *pg, uint32_t n) {
  if (pm_page_returned(pg))
    each_returned_block(pg, (unsigned)__builtin_ctzl(pm_page_piece()), count_one, &n);
  return pg->carved > n ? pg->carved - n : 0;
}

uint32_t pm_page_count_used(pm_page *pg) {
  if (pg->where != PM_IN_CURRENT) return pm_page_used(pg);
  bool whole;
  return used_of_current(pg, count_free(pg, &whole));
}

/* Another thread's page races with its owner. A walk of its current
 * page's free list meets the owner at the head: a block popped while the
 * walk reads it gets the program's data in its link, and the walk stops
 * there, counting the rest of the list as handed out (a whole page's worth,
 * now and then, in the profile's looks at bench_larson). And the owner may
 * collect the remote list between the two reads, whose blocks would then
 * count as neither free nor pending. Either way the count is read again:
 * the owner has moved on by then. The owner's own count
 * (pm_page_count_used) walks once. */
#define PM_COUNT_TRIES 4

void pm_page_count_out(pm_page *pg, uint32_t *used, uint32_t *pending) {
  for (int tries = 0; tries < PM_COUNT_TRIES; tries++) {
    pm_block *before = atomic_load_explicit(&pg->remote, memory_order_acquire);
    bool whole = true;
    *used = pg->where != PM_IN_CURRENT ? pm_page_used(pg)
                                       : used_of_current(pg, count_free(pg, &whole));
    *pending = pm_page_count_remote(pg);
    if (whole && pm_remote_length(before) <= *pending) return;
  }
}

static bool holds_free(pm_page *pg, const pm_block *b) {
  return list_holds(pg, pg->free, b) ||
         list_holds(pg, pm_remote_first(atomic_load(&pg->remote)), b);
}

void pm_page_claim_orphan(pm_page *pg) {
  uint8_t one = 1;
  if (atomic_compare_exchange_strong(&pg->full, &one, 0)) pm_pages_push_abandoned(pg);
}

/* ---- checks ---- */

/* the live bit of the block at region offset off (POOLMALLOC_CHECK=full) */
pm_inline _Atomic uint64_t *live_word(uintptr_t off, uint64_t *bit) {
  *bit = 1ull << ((off >> 4) & 63);
  return &pm_g.live[off >> 10];
}

void pm_page_check(const char *call, pm_page *pg, const void *p, int freed,
                   bool clear_bit) {
  uintptr_t off = (uintptr_t)p - pm_g.base;
  if (unlikely(pg->state != PM_PAGE_IN_USE))
    pm_heap_error(call, "invalid pointer: its pool page is not in use", p);
  if (unlikely(!pm_page_is_block_start(pg, off & pm_g.page_mask)))
    pm_heap_error(call, "invalid pointer: not the start of a block", p);
  bool is_free;
  if (unlikely(pm_page_returned(pg)) && pm_page_in_returned(pg, off & pm_g.page_mask)) {
    is_free = true; /* its piece was given back: the block is free */
  } else if (freed == PM_FREED_BIT) {
    uint64_t bit;
    _Atomic uint64_t *w = live_word(off, &bit);
    is_free = !((clear_bit ? atomic_fetch_and(w, ~bit) : atomic_load(w)) & bit);
  } else {
    is_free = ((const pm_block *)p)->tag == pm_g.tag &&
              (freed == PM_FREED_TAG || holds_free(pg, p));
  }
  if (unlikely(is_free))
    pm_heap_error(call, call[0] == 'f' ? "double free detected" : "pointer already freed",
                  p);
}

void pm_page_mark_live(pm_page *pg, const void *p) {
  pm_block *next = pg->free;
  if (next != NULL && (!pm_is_pool_ptr(next) || pm_page_of(next) != pg ||
                       !pm_page_is_block_start(pg, (uintptr_t)next & pm_g.page_mask)))
    pm_heap_error("malloc()", "free list corrupted (a write into a freed block?)", p);
  uint64_t bit;
  _Atomic uint64_t *w = live_word((uintptr_t)p - pm_g.base, &bit);
  if (atomic_fetch_or(w, bit) & bit)
    pm_heap_error("malloc()", "block handed out twice (heap corrupted)", p);
}
