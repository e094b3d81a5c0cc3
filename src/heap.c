/* heap.c - per-thread heaps: finding a page with free blocks, moving pages
 * between the current/available/full lists, abandoning and adopting pages.
 *
 * Only the owning thread touches a heap's lists. Other threads touch a page
 * only through its atomic remote list and full flag, and a heap only through
 * remote_full_hint. Nothing here takes a lock. */
#include "heap.h"
#include "fmt.h"
#include "istack.h"
#include "options.h"
#include "os.h"

#define PM_MAX_HEAPS 16384
#define PM_HEAP_CACHE_PAGES 16
#define PM_ADOPT_BATCH 4
#define PM_SCAN_STEP 64

PM_HOT pm_page pm_page_empty;
#define PM_EMPTY_PAGES                                                                   \
  { [0 ... PM_NCLASSES - 1] = &pm_page_empty }
/* Their page arrays are written by relocations at load; section pm_heaps
 * goes after pm_hot (cmake/pm_je_lazy.ld), so that the two arrays, 5 KiB
 * apart, fall on the page after .data and the next one, and .data's own
 * relocations share the first */
__attribute__((section("pm_heaps")))
pm_heap pm_heap_empty = {.pages = PM_EMPTY_PAGES, .kind = PM_HEAP_EMPTY};
__attribute__((section("pm_heaps")))
pm_heap pm_heap_jemalloc = {.pages = PM_EMPTY_PAGES, .kind = PM_HEAP_JEMALLOC};
PM_TLS pm_heap *pm_tls_heap = &pm_heap_empty;
pm_shared_stats pm_shared;

PM_HOT static pm_heap *heaps;
PM_HOT static uint32_t max_heaps;
PM_HOT static _Atomic uint32_t nheaps;
PM_HOT static pm_istack free_heaps;
PM_HOT _Atomic uint64_t pm_threads_live, pm_threads_peak, pm_threads_total;

bool pm_heaps_init(void) {
  for (uint32_t n = PM_MAX_HEAPS; n >= 64; n /= 2) {
    heaps = pm_os_map((size_t)n * sizeof(pm_heap));
    if (heaps != NULL) {
      max_heaps = n;
      return true;
    }
  }
  return false;
}

uint32_t pm_heap_count(void) {
  return atomic_load(&nheaps);
}
pm_heap *pm_heap_at(uint32_t i) {
  return &heaps[i];
}

uint64_t pm_heaps_live_requested(void) {
  if (pm_g.size == 0) return 0;
  uint64_t live[PM_NCLASSES] = {0}, allocs[PM_NCLASSES] = {0}, req[PM_NCLASSES] = {0};
  uint64_t npages = pm_arena_committed() >> pm_g.page_shift;
  for (uint64_t i = 0; i < npages; i++) {
    pm_page *pg = &pm_g.pages[i];
    if (pg->state != PM_PAGE_IN_USE) continue;
    uint32_t used, pending;
    pm_page_count_out(pg, &used, &pending);
    if (used > pending) live[pg->cls] += used - pending;
    allocs[pg->cls] += pm_page_allocs(pg, used);
  }
  uint32_t n = pm_heap_count();
  for (uint32_t i = 0; i < n; i++) {
    const pm_heap *h = &heaps[i];
    if (h->kind != PM_HEAP_REAL) continue;
    for (unsigned c = 0; c < PM_NCLASSES; c++)
      PM_COUNT(req[c] += pm_heap_requested(h, c));
  }
  uint64_t bytes = 0;
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    if (live[c] == 0) continue;
    uint64_t bsize = pm_class_size(c);
    allocs[c] += atomic_load_explicit(&pm_class_allocs_retired[c], memory_order_relaxed);
    double mean =
        allocs[c] && req[c] ? (double)req[c] / (double)allocs[c] : (double)bsize;
    if (mean > (double)bsize) mean = (double)bsize;
    bytes += (uint64_t)((double)live[c] * mean + 0.5);
  }
  return bytes;
}

static _Atomic uint32_t *heap_link(uint32_t index) {
  return &heaps[index].stack_next;
}

static pm_heap *acquire(bool aux) {
  pm_heap *h;
  uint32_t i = pm_istack_pop(&free_heaps, heap_link);
  if (i != UINT32_MAX) {
    h = &heaps[i];
  } else {
    i = atomic_fetch_add(&nheaps, 1);
    if (i >= max_heaps) {
      atomic_fetch_sub(&nheaps, 1);
      return NULL;
    }
    h = &heaps[i];
    /* its 2-3 pages backed in one system call, not a fault each (page.c:
     * "populate"); a neighbour's share of the pages comes with them */
    pm_os_populate(h, sizeof *h);
    for (unsigned c = 0; c < PM_NCLASSES; c++) {
      h->pages[c] = &pm_page_empty;
      h->countdown[c] = -1; /* the first allocation of a class, malloc(0) too,
                               takes the tick that arms it (alloc.c) */
    }
    h->rng = (uint64_t)(uintptr_t)h * 0x9e3779b97f4a7c15ull | 1;
    h->kind = PM_HEAP_REAL;
  }
  h->aux = aux;
  h->aux_heap = NULL;
  if (aux) return h;
  uint64_t live = atomic_fetch_add(&pm_threads_live, 1) + 1;
  atomic_fetch_add(&pm_threads_total, 1);
  pm_atomic_max(&pm_threads_peak, live);
  return h;
}

pm_heap *pm_heap_acquire(void) {
  return acquire(false);
}

pm_heap *pm_heap_acquire_aux(void) {
  return acquire(true);
}

/* ---- owner-only page lists ---- */

static void list_push(pm_page **head, pm_page *pg) {
  pg->prev = NULL;
  pg->next = *head;
  if (*head) (*head)->prev = pg;
  *head = pg;
}

static void list_remove(pm_page **head, pm_page *pg) {
  if (pg->prev)
    pg->prev->next = pg->next;
  else
    *head = pg->next;
  if (pg->next) pg->next->prev = pg->prev;
  pg->next = pg->prev = NULL;
}

/* Where a page is, and when a same-thread free calls pm_heap_free_slow:
 * the free fast path compares the page's used count with `wake` and nothing
 * else. The current page never wakes it (-1), an available page when it
 * empties (0), a full page at its first free (capacity - 1), a low page
 * when an eighth of it is free (relist_mark).
 *
 * A full page comes back in two steps. Its first free moves it to the
 * class's low list: pages with a few free blocks, taken only when no
 * available page is left, before adopting or carving a new page, so no
 * memory is held back. Its frees then gather on its own free list, without
 * the slow path, until an eighth of the page is free, and it moves to the
 * available list. (Before, one free put a full page at the head of the
 * available list, the next refill made it current for that one block and
 * retired it again: two slow paths per block once a class filled its
 * pages, as in larson.) */
static void set_where(pm_page *pg, uint8_t where, int32_t wake) {
  pg->where = where;
  /* a page with returned pieces wakes at every free: the freed block must
   * not be one of theirs (their blocks are free, their tags read zero) */
  pm_page_set_wake(pg, pm_page_returned(pg) ? INT32_MAX : wake);
}

static int32_t relist_mark(const pm_page *pg) {
  uint32_t n = pg->capacity / 8;
  return (int32_t)(pg->capacity - (n ? n : 1));
}

/* The class's current page: malloc does not count its blocks (types.h). */
static void current_room(pm_page *pg) {
  pg->room = pm_page_returned(pg) ? PM_ROOM_EVERY : PM_ROOM_CURRENT;
}

static void make_current(pm_heap *h, pm_page *pg) {
  pg->where = PM_IN_CURRENT;
  pg->wake = -1;
  current_room(pg);
  h->pages[pg->cls] = pg;
}

/* The current page pg is no longer: its count, found (pm_page_count_used),
 * goes back into room, with no list and wake 0. */
static void leave_current(pm_page *pg) {
  uint32_t used = pm_page_count_used(pg);
  pg->where = PM_IN_NONE;
  pg->wake = 0;
  pg->room = (int32_t)(used - 1u);
}

static void add_avail(pm_heap *h, pm_page *pg) {
  if (h->pages[pg->cls] == &pm_page_empty) {
    make_current(h, pg);
    return;
  }
  set_where(pg, PM_IN_AVAIL, 0);
  pg->freed_ms = pm_os_now_ms(); /* idle since (trim_idle) */
  list_push(&h->avail[pg->cls], pg);
}

static void add_low(pm_heap *h, pm_page *pg) {
  if (h->pages[pg->cls] == &pm_page_empty) {
    make_current(h, pg);
    return;
  }
  set_where(pg, PM_IN_LOW, relist_mark(pg));
  pg->freed_ms = pm_os_now_ms();
  list_push(&h->low[pg->cls], pg);
}

static void unfull(pm_heap *h, pm_page *pg) {
  if (h->full_cursor == pg) h->full_cursor = pg->next;
  list_remove(&h->full, pg);
  h->nfull--;
  set_where(pg, PM_IN_NONE, 0);
  atomic_store_explicit(&pg->full, 0, memory_order_relaxed);
}

/* Puts pg (no free block, nothing left to carve) on the full list. A remote
 * free that raced with us is seen by one side or the other (both use
 * seq_cst): if it landed, the page comes back with its blocks and we return
 * true. */
static bool retire_full(pm_heap *h, pm_page *pg) {
  set_where(pg, PM_IN_FULL, (int32_t)pg->capacity - 1);
  list_push(&h->full, pg);
  h->nfull++;
  atomic_store_explicit(&pg->full, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&pg->remote, memory_order_seq_cst) == NULL) return false;
  unfull(h, pg);
  pm_page_collect(pg);
  return true;
}

/* an empty page back to the global free pages (its heap's kind's stack) */
static void push_free(pm_heap *h, pm_page *pg) {
  if (h->aux)
    pm_pages_push_free_watched(pg);
  else
    pm_pages_push_free(pg);
}

/* The heap's cache of emptied pages, newest first: a page released whole
 * keeps its free list (every block it carved, in the order they came back),
 * so the next page its class needs is that one again, without the carve
 * that wrote a link into each block once more (bench_churn's batches empty
 * a page of each class every round: 7% of the run in pm_page_carve). The
 * oldest goes to the global free stack when the cache is full. */
static void cache_push(pm_heap *h, pm_page *pg) {
  pg->where = PM_IN_CACHE;
  pg->freed_ms = pm_os_now_ms();
  pg->next = h->cache;
  h->cache = pg;
  if (h->ncache < PM_HEAP_CACHE_PAGES) {
    h->ncache++;
    return;
  }
  pm_page *prev = pg;
  while (prev->next->next != NULL)
    prev = prev->next;
  pm_page *old = prev->next;
  prev->next = NULL;
  old->where = PM_IN_NONE;
  push_free(h, old);
  pm_pages_maybe_purge();
}

static void release_page(pm_heap *h, pm_page *pg) {
  bool whole = pm_page_returned(pg) == 0; /* every block is on the free list */
  set_where(pg, PM_IN_NONE, 0);
  pm_page_retire(pg);
  if (!whole) pg->free = NULL;
  PM_COUNT(h->stats.pages_released++);
  cache_push(h, pg);
}

void pm_heap_flush_cache(pm_heap *h) {
  while (h->cache) {
    pm_page *pg = h->cache;
    h->cache = pg->next;
    pg->next = NULL;
    pg->where = PM_IN_NONE;
    push_free(h, pg);
  }
  h->ncache = 0;
}

/* Takes the cached page of class cls that kept its blocks, or else the
 * oldest; NULL if the cache is empty. */
static pm_page *cache_take(pm_heap *h, unsigned cls, bool *warm) {
  pm_page **link = &h->cache, **pick = NULL;
  for (; *link != NULL; link = &(*link)->next) {
    pick = link;
    if ((*link)->cls == cls && (*link)->free != NULL) break;
  }
  if (pick == NULL) return NULL;
  pm_page *pg = *pick;
  *pick = pg->next;
  pg->next = NULL;
  h->ncache--;
  *warm = pg->cls == cls && pg->free != NULL;
  return pg;
}

/* A page just taken off the full list with blocks back: released when
 * empty, available from an eighth free, else low. */
static void refile(pm_heap *h, pm_page *pg) {
  if (pm_page_used(pg) == 0)
    release_page(h, pg);
  else if ((int32_t)pm_page_used(pg) <= relist_mark(pg))
    add_avail(h, pg);
  else
    add_low(h, pg);
}

/* Pages that went full and then received remote frees: the freeing thread
 * raised remote_full_hint; look through the full list a bounded step at a
 * time so one slow path never walks a huge list. */
static void scan_full(pm_heap *h) {
  if (relaxed_load(&h->remote_full_hint)) {
    atomic_store_explicit(&h->remote_full_hint, 0, memory_order_seq_cst);
    h->scan_left = h->nfull;
    h->full_cursor = h->full;
  }
  for (unsigned step = 0; step < PM_SCAN_STEP && h->scan_left && h->full_cursor; step++) {
    pm_page *pg = h->full_cursor;
    h->full_cursor = pg->next;
    h->scan_left--;
    if (atomic_load_explicit(&pg->remote, memory_order_acquire) == NULL) continue;
    unfull(h, pg);
    pm_page_collect(pg);
    refile(h, pg);
  }
  if (h->full_cursor == NULL) h->scan_left = 0;
}

static bool has_free(pm_page *pg) {
  if (pg->free != NULL || pm_page_collect(pg) || pm_page_carve(pg)) return true;
  if (!pm_page_reclaim(pg)) return false;
  if (pg->where == PM_IN_CURRENT) current_room(pg); /* no returned piece left */
  return true;
}

/* The heap an abandoned page goes to. A watched page (an exited thread's
 * auxiliary heap's) may hold live samples: it goes to this thread's
 * auxiliary heap, so that their frees still leave the fast path and reach
 * the sampler (adopted by an ordinary heap, the page was that thread's own,
 * its samples were freed on the fast path and never forgotten: larson,
 * whose threads exit every generation, reported hundreds of MiB live at
 * exit for 10 KiB). Auxiliary heaps adopt nothing (adopt): an ordinary
 * page they took would have to become watched while other threads' frees
 * read the flag (TSan: a race on `watched`), and their samples must be on
 * watched pages. */
static pm_heap *adopter(pm_heap *h, pm_page *pg) {
  if (!pg->watched) return h;
  if (h->aux_heap == NULL) h->aux_heap = pm_heap_acquire_aux();
  return h->aux_heap != NULL ? h->aux_heap : h;
}

/* Takes up to a few abandoned pages; returns one of class cls with free
 * blocks (made current) if it found one. */
static pm_page *adopt(pm_heap *h, unsigned cls) {
  pm_page *found = NULL;
  if (h->aux) return NULL; /* see adopter */
  for (int i = 0; i < PM_ADOPT_BATCH && !found; i++) {
    pm_page *pg = pm_pages_pop_abandoned();
    if (pg == NULL) break;
    pm_heap *to = adopter(h, pg);
    atomic_store_explicit(&pg->owner, to, memory_order_seq_cst);
    PM_COUNT(to->stats.pages_adopted++);
    pm_page_collect(pg);
    if (pm_page_used(pg) == 0) {
      release_page(to, pg);
      continue;
    }
    if (!has_free(pg) && !retire_full(to, pg)) continue;
    if (to == h && pg->cls == cls && h->pages[cls] == &pm_page_empty) found = pg;
    add_avail(to, pg);
  }
  return found;
}

static pm_page *new_page(pm_heap *h, unsigned cls, bool *warm) {
  *warm = false;
  pm_page *pg = cache_take(h, cls, warm);
  if (pg != NULL) {
    PM_COUNT(h->stats.pages_reused++);
    return pg;
  }
  /* An auxiliary heap's pages hold a few samples each: a page another heap
   * emptied is resident throughout (up to 64 KiB for one sample), so it is
   * purged first and then resident only where it is carved (bench_churn,
   * routing on: 6 of its 12 watched pages came off the free stack, 384 KiB
   * resident). Carving fresh pages instead left the freed ones resident
   * too: mstress's threads come and go, and its peak RSS grew by 15 MB.
   * Watched pages released by auxiliary heaps come first (arena.c's
   * second stack): they need no purge. */
  pg = h->aux ? pm_pages_pop_free_clean() : pm_pages_pop_free();
  if (pg != NULL) {
    PM_COUNT(h->stats.pages_reused++);
    return pg;
  }
  pg = pm_arena_carve_page(&h->arena_cur, &h->arena_end);
  if (pg == NULL) return NULL;
  PM_COUNT(h->stats.pages_fresh++);
  return pg;
}

pm_page *pm_heap_page_for(pm_heap *h, unsigned cls) {
  if (relaxed_load(&h->remote_full_hint) || h->scan_left) scan_full(h);
  pm_page *pg = h->pages[cls];
  if (pg != &pm_page_empty) {
    if (has_free(pg)) return pg;
    h->pages[cls] = &pm_page_empty;
    leave_current(pg);
    if (retire_full(h, pg)) {
      make_current(h, pg);
      return pg;
    }
  }
  while ((pg = h->avail[cls]) != NULL) {
    list_remove(&h->avail[cls], pg);
    if (has_free(pg) || retire_full(h, pg)) {
      make_current(h, pg);
      return pg;
    }
  }
  pg = adopt(h, cls);
  if (pg != NULL) return pg;
  while ((pg = h->low[cls]) != NULL) { /* a few free blocks beat a new page */
    list_remove(&h->low[cls], pg);
    if (has_free(pg) || retire_full(h, pg)) {
      make_current(h, pg);
      return pg;
    }
  }
  bool warm;
  pg = new_page(h, cls, &warm);
  if (pg == NULL) return NULL;
  if (warm) {
    pm_page_revive(pg, h);
  } else {
    pm_page_init(pg, cls, h);
    pm_page_carve(pg);
  }
  make_current(h, pg);
  return pg;
}

void pm_heap_free_slow(pm_heap *h, pm_page *pg) {
  if (unlikely(pm_page_returned(pg))) { /* every free of such a page comes here */
    if (pm_page_in_returned(pg, (uintptr_t)pg->free & pm_g.page_mask))
      pm_heap_error("free()", "double free detected", pg->free);
    if (pg->where == PM_IN_LOW && (int32_t)pm_page_used(pg) > relist_mark(pg)) return;
  }
  switch (pg->where) {
  case PM_IN_FULL:
    unfull(h, pg);
    refile(h, pg);
    return;
  case PM_IN_LOW:
    list_remove(&h->low[pg->cls], pg);
    if (pm_page_used(pg) == 0)
      release_page(h, pg);
    else
      add_avail(h, pg);
    return;
  case PM_IN_AVAIL:
    if (pm_page_used(pg) == 0) {
      list_remove(&h->avail[pg->cls], pg);
      release_page(h, pg);
    }
    return;
  default:
    /* the current page stays even when empty (its wake is -1): malloc/free
     * of one block in a loop must not take and release a page every time.
     * Its room ran down (2^30 frees) or every free is checked. */
    if (pg->where == PM_IN_CURRENT) current_room(pg);
    return;
  }
}

/* ---- giving back what pinned pages do not use ---- */

/* Pages on the available and low lists that no allocation has taken a
 * block from for POOLMALLOC_DECAY_MS: their empty pieces go back to the OS
 * (pm_page_trim). A page pinned by a few long-lived blocks keeps only the
 * pieces those blocks are in. A page is looked at again only after it
 * got more blocks back. */
static void trim_list(pm_heap *h, pm_page **head, uint64_t now) {
  for (pm_page *pg = *head, *next; pg != NULL; pg = next) {
    next = pg->next;
    if (now - pg->freed_ms < pm_opt.decay_ms || pm_page_used(pg) == 0) continue;
    if (pm_page_returned(pg) != 0 && pm_page_used(pg) >= pg->trim_used &&
        atomic_load_explicit(&pg->remote, memory_order_relaxed) == NULL)
      continue; /* nothing freed since its last trim */
    if ((uint64_t)pm_page_used(pg) * pg->bsize > pm_page_size() / 2) continue;
    size_t bytes = pm_page_trim(pg);
    if (pm_page_used(pg) == 0) { /* its last blocks were remote frees, collected */
      list_remove(head, pg);
      release_page(h, pg);
      continue;
    }
    if (bytes == 0) continue;
    pm_page_set_wake(pg, INT32_MAX); /* set_where's rule for returned pieces */
    PM_COUNT(h->stats.pages_trimmed++);
    PM_COUNT(h->stats.trimmed_bytes += bytes);
  }
}

/* Cached pages idle for POOLMALLOC_DECAY_MS go to the global free stack,
 * where the purge finds them (the oldest are last). */
static void trim_cache(pm_heap *h, uint64_t now) {
  for (pm_page **link = &h->cache; *link != NULL;) {
    pm_page *pg = *link;
    if (now - pg->freed_ms < pm_opt.decay_ms) {
      link = &pg->next;
      continue;
    }
    *link = pg->next;
    pg->next = NULL;
    pg->where = PM_IN_NONE;
    h->ncache--;
    push_free(h, pg);
  }
}

void pm_heap_trim_idle(pm_heap *h) {
  uint64_t now = pm_os_now_ms();
  uint64_t period = pm_opt.decay_ms / 2 ? pm_opt.decay_ms / 2 : 1;
  if (now - h->trim_ms < period) return;
  h->trim_ms = now;
  trim_cache(h, now);
  if (pm_page_piece() * 2 > pm_page_size()) return;
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    trim_list(h, &h->avail[c], now);
    trim_list(h, &h->low[c], now);
  }
}

static void abandon_page(pm_heap *h, pm_page *pg) {
  pm_page_collect(pg);
  pg->next = pg->prev = NULL;
  set_where(pg, PM_IN_NONE, 0);
  if (pm_page_used(pg) == 0) {
    pm_page_retire(pg);
    PM_COUNT(h->stats.pages_released++);
    push_free(h, pg);
    return;
  }
  PM_COUNT(h->stats.pages_abandoned++);
  if (pg->free == NULL && pg->carved == pg->capacity && pm_page_returned(pg) == 0) {
    /* An orphan: no block to give, so no adopter wants it yet. It stays
     * off every list, marked full; the first remote free claims it and puts
     * it on the abandoned stack (pm_page_claim_orphan). */
    atomic_store_explicit(&pg->full, 1, memory_order_seq_cst);
    atomic_store_explicit(&pg->owner, NULL, memory_order_seq_cst);
    if (atomic_load_explicit(&pg->remote, memory_order_seq_cst) != NULL)
      pm_page_claim_orphan(pg);
    return;
  }
  atomic_store_explicit(&pg->full, 0, memory_order_relaxed);
  atomic_store_explicit(&pg->owner, NULL, memory_order_seq_cst);
  pm_pages_push_abandoned(pg);
}

void pm_heap_release(pm_heap *h) {
  if (h->aux_heap != NULL) {
    pm_heap_release(h->aux_heap);
    h->aux_heap = NULL;
  }
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    pm_page *pg = h->pages[c];
    h->pages[c] = &pm_page_empty;
    if (pg != &pm_page_empty) {
      leave_current(pg);
      abandon_page(h, pg);
    }
    while ((pg = h->avail[c]) != NULL) {
      h->avail[c] = pg->next;
      abandon_page(h, pg);
    }
    while ((pg = h->low[c]) != NULL) {
      h->low[c] = pg->next;
      abandon_page(h, pg);
    }
  }
  pm_page *pg;
  while ((pg = h->full) != NULL) {
    h->full = pg->next;
    abandon_page(h, pg);
  }
  h->nfull = h->scan_left = 0;
  h->full_cursor = NULL;
  pm_heap_flush_cache(h);
  if (!h->aux) atomic_fetch_sub(&pm_threads_live, 1);
  pm_istack_push(&free_heaps, (uint32_t)(h - heaps), &h->stack_next);
}

void pm_heaps_after_fork(pm_heap *self) {
  /* The other threads are gone; their pages stay owned by heaps nobody
   * runs, so frees into them are remote pushes (safe) and the memory is held
   * until exit. Touching their lists is not safe: a thread may have been in
   * the middle of changing them when fork() copied the address space. */
  atomic_store(&pm_threads_live, self->kind == PM_HEAP_REAL ? 1 : 0);
}
