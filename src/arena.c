/* arena.c - the reserved region, arenas, page sourcing and the global
 * stacks of free and abandoned pages (see arena.h). */
#include "arena.h"
#include "istack.h"
#include "options.h"
#include "os.h"

/* max_pooled starts at the default so requests made before the options
 * are read take the pool path, which initialises the process */
pm_globals pm_g __attribute__((aligned(PM_CACHELINE))) = {
    .fast_max = PM_SMALL_LOOKUP_MAX, .max_pooled = PM_POOL_SIZE_DEFAULT / 2};

/* every allocating process writes these and reads the stacks below (PM_HOT:
 * common.h) */
PM_HOT static size_t arena_size;
PM_HOT static _Atomic uint64_t region_cursor; /* offset of the next untaken arena */
/* Free pages on two stacks: ordinary ones, and those auxiliary heaps
 * released. A watched page holds a few samples, so it is resident only
 * where they were (an auxiliary heap purges a dirty page it takes): such
 * pages go back to auxiliary heaps first. On one stack, ordinary heaps took
 * them too, refaulting them a piece at a time, and auxiliary heaps then
 * took dirty pages and purged them again: mstress (its threads, each with
 * an auxiliary heap, come and go) had 339 madvise calls instead of 42 and
 * 30% more time and page faults with routing on. */
PM_HOT static pm_istack free_head, watched_head, abandoned_head;
static _Atomic uint64_t purged_total;
static _Atomic uint64_t last_purge_ms;
static _Atomic int purging;

size_t pm_arena_size(void) {
  return arena_size;
}

bool pm_arena_init(void) {
  size_t page = (size_t)pm_opt.pool_size;
  unsigned shift = (unsigned)__builtin_ctzl(page);
  arena_size = page * 16 > PM_ARENA_MIN ? page * 16 : PM_ARENA_MIN;
  size_t want = (size_t)pm_opt.region_size / arena_size * arena_size;
  void *base = NULL;
  /* a smaller reservation is better than none (ulimit -v, small VMs) */
  for (; want >= arena_size * 4; want /= 2) {
    base = pm_os_reserve(want, arena_size);
    if (base != NULL) break;
  }
  if (base == NULL) return false;
  /* a remote list's head word keeps its length above bit 48 (page.h);
   * Linux maps below 2^47 (x86-64) or 2^48 unless asked for more */
  if (((uintptr_t)base + want) >> PM_REMOTE_SHIFT != 0) return false;
  pm_page *table = pm_os_map((want >> shift) * sizeof(pm_page));
  if (table == NULL) return false;
  pm_g.pages = table;
  pm_g.page_shift = shift;
  pm_g.page_mask = page - 1;
  pm_g.max_pooled = (size_t)pm_opt.max_pooled;
  pm_g.fast_max =
      pm_g.max_pooled < PM_SMALL_LOOKUP_MAX ? pm_g.max_pooled : PM_SMALL_LOOKUP_MAX;
  pm_g.key = (uintptr_t)pm_os_random();
  pm_g.tag = (uintptr_t)pm_os_random() | 1;
  if (pm_opt.check == PM_CHECK_FULL) {
    pm_g.live = pm_os_map(want / 16 / 8); /* touched lazily, like the region */
    if (pm_g.live == NULL) return false;
  }
  pm_g.base = (uintptr_t)base;
  atomic_thread_fence(memory_order_release);
  pm_g.free_span = pm_g.live ? 0 : want;
  pm_g.size = want; /* published last: until now every pointer was foreign */
  return true;
}

static bool arena_take(char **start, char **end) {
  uint64_t off =
      atomic_fetch_add_explicit(&region_cursor, arena_size, memory_order_relaxed);
  if (off + arena_size > pm_g.size) return false;
  char *p = (char *)(pm_g.base + off);
  if (!pm_os_commit(p, arena_size)) return false;
  *start = p;
  *end = p + arena_size;
  return true;
}

pm_page *pm_arena_carve_page(char **cur, char **end) {
  size_t psize = pm_page_size();
  if ((size_t)(*end - *cur) < psize && !arena_take(cur, end)) return NULL;
  pm_page *pg = pm_page_of(*cur);
  *cur += psize;
  return pg;
}

uint64_t pm_arena_committed(void) {
  uint64_t c = atomic_load(&region_cursor);
  return c < pm_g.size ? c : pm_g.size;
}

uint64_t pm_pages_purged_total(void) {
  return atomic_load(&purged_total);
}

/* ---- the global stacks of pages (istack.h) ---- */

static _Atomic uint32_t *page_link(uint32_t index) {
  return &pm_g.pages[index].stack_next;
}

static pm_page *page_at(uint32_t index) {
  return index == UINT32_MAX ? NULL : &pm_g.pages[index];
}

static pm_page *stack_next_of(pm_page *pg) {
  uint32_t n = relaxed_load(&pg->stack_next);
  return n ? &pm_g.pages[n - 1] : NULL;
}

static void purge_page(pm_page *pg);

static void push_free(pm_istack *head, pm_page *pg) {
  if (pm_opt.decay_ms == 0 && pg->dirty) purge_page(pg);
  pg->freed_ms = pm_os_now_ms();
  pm_istack_push(head, pm_page_index(pg), &pg->stack_next);
}
void pm_pages_push_free(pm_page *pg) {
  push_free(&free_head, pg);
}
void pm_pages_push_free_watched(pm_page *pg) {
  push_free(&watched_head, pg);
}

pm_page *pm_pages_pop_free(void) {
  pm_page *pg = page_at(pm_istack_pop(&free_head, page_link));
  return pg != NULL ? pg : page_at(pm_istack_pop(&watched_head, page_link));
}

static void purge_page(pm_page *pg) {
  pm_os_purge(pm_page_start(pg), pm_page_size());
  pg->dirty = 0;
  pg->touched = 0;
  atomic_fetch_add_explicit(&purged_total, pm_page_size(), memory_order_relaxed);
}

pm_page *pm_pages_pop_free_clean(void) {
  pm_page *pg = page_at(pm_istack_pop(&watched_head, page_link));
  if (pg != NULL) return pg;
  pg = page_at(pm_istack_pop(&free_head, page_link));
  if (pg != NULL && pg->dirty) purge_page(pg);
  return pg;
}
void pm_pages_push_abandoned(pm_page *pg) {
  pm_istack_push(&abandoned_head, pm_page_index(pg), &pg->stack_next);
}
pm_page *pm_pages_pop_abandoned(void) {
  return page_at(pm_istack_pop(&abandoned_head, page_link));
}

/* madvise runs of adjacent pages with one call each */
typedef struct purge_run {
  char *start, *end;
  size_t bytes;
} purge_run;

static void run_add(purge_run *r, pm_page *pg) {
  char *s = pm_page_start(pg);
  if (r->end == s) {
    r->end += pm_page_size();
    return;
  }
  if (r->start) pm_os_purge(r->start, (size_t)(r->end - r->start));
  r->start = s;
  r->end = s + pm_page_size();
}

/* purges the pages of one stack; the bytes */
static size_t purge_stack(pm_istack *head, bool all, uint64_t now) {
  pm_page *clean_first = NULL, *clean_last = NULL, *dirty_first = NULL,
          *dirty_last = NULL;
  purge_run run = {0};
  pm_page *pg = page_at(pm_istack_take_all(head));
  while (pg != NULL) {
    pm_page *next = stack_next_of(pg);
    bool old_enough = now - pg->freed_ms >= pm_opt.decay_ms;
    if (pg->dirty && (all || old_enough)) {
      run_add(&run, pg);
      run.bytes += pm_page_size();
      pg->dirty = 0;
      pg->touched = 0;
    }
    pm_page **first = pg->dirty ? &dirty_first : &clean_first;
    pm_page **last = pg->dirty ? &dirty_last : &clean_last;
    relaxed_store(&pg->stack_next, 0);
    if (*last)
      relaxed_store(&(*last)->stack_next, pm_page_index(pg) + 1);
    else
      *first = pg;
    *last = pg;
    pg = next;
  }
  if (run.start) pm_os_purge(run.start, (size_t)(run.end - run.start));
  /* clean pages below, dirty (warm) pages on top so they are reused first */
  if (clean_first)
    pm_istack_push(head, pm_page_index(clean_first), &clean_last->stack_next);
  if (dirty_first)
    pm_istack_push(head, pm_page_index(dirty_first), &dirty_last->stack_next);
  return run.bytes;
}

size_t pm_pages_purge(bool all) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&purging, &expected, 1)) return 0;
  uint64_t now = pm_os_now_ms();
  size_t bytes = purge_stack(&free_head, all, now) + purge_stack(&watched_head, all, now);
  atomic_fetch_add(&purged_total, bytes);
  atomic_store(&last_purge_ms, now);
  atomic_store(&purging, 0);
  return bytes;
}

void pm_pages_maybe_purge(void) {
  if (pm_istack_empty(&free_head) && pm_istack_empty(&watched_head)) return;
  uint64_t now = pm_os_now_ms();
  uint64_t period = pm_opt.decay_ms / 2 ? pm_opt.decay_ms / 2 : 1;
  if (now - atomic_load_explicit(&last_purge_ms, memory_order_relaxed) >= period)
    pm_pages_purge(false);
}
