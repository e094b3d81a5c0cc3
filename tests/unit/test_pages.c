/* test_pages.c - which page a class allocates from: the hysteresis of full
 * pages (heap.c, "A full page comes back in two steps").
 *
 * A page that filled up and got a block or two back must not become the
 * class's current page at once: it would serve that one block, take the
 * slow path again and be retired again (larson: two slow paths per block
 * once a class had filled its pages). It waits on the low list until an
 * eighth of it is free, and is used before a new page is carved. Every test
 * is a fresh process with the default 64 KiB pages. */
#include <criterion/criterion.h>
#include <sys/mman.h>

#include "alloc.h"
#include "arena.h"
#include "heap.h"
#include "page.h"
#include "resident.h"
#include "options.h"
#include "os.h"
#include "start.h"
#include "routing_off.h"

#define BSIZE 1024
#define CAP (64 * 1024 / BSIZE) /* blocks per page */

/* allocates until the class's current page changes; the blocks of the page
 * that filled up go into v (CAP of them) */
static pm_page *fill_page(void **v) {
  void *p = pm_malloc(BSIZE);
  pm_page *pg = pm_page_of(p);
  cr_assert_eq(pm_page_count_used(pg), 1, "a fresh page");
  v[0] = p;
  for (int i = 1; i < CAP; i++) {
    v[i] = pm_malloc(BSIZE);
    cr_assert_eq(pm_page_of(v[i]), pg);
  }
  cr_assert_null(pg->free);
  return pg;
}

static pm_heap *heap(void) {
  return pm_tls_heap;
}

Test(pages, a_full_page_given_one_block_back_waits_on_the_low_list) {
  static void *a[CAP], *b[CAP], *c[CAP];
  pm_page *pa = fill_page(a);
  pm_page *pb = fill_page(b); /* retires pa: full */
  cr_assert_eq(pa->where, PM_IN_FULL);
  pm_page *pc = fill_page(c); /* retires pb */
  unsigned cls = pa->cls;

  for (int i = 0; i < CAP / 8; i++) /* an eighth of pb: available */
    pm_free(b[i]);
  cr_assert_eq(pb->where, PM_IN_AVAIL);
  pm_free(a[5]); /* one block of pa: low, not available */
  cr_assert_eq(pa->where, PM_IN_LOW, "one block back makes a full page low");
  cr_assert_null(heap()->avail[cls]->next, "pa is not on the available list");
  cr_assert_eq(heap()->low[cls], pa);

  void *d = pm_malloc(BSIZE); /* pc is exhausted: pb, with its eighth */
  cr_assert_eq(pm_page_of(d), pb, "the available page, not the one with one block");
  cr_assert_eq(heap()->pages[cls], pb);
  cr_assert_eq(pa->where, PM_IN_LOW);
  cr_assert_eq(pc->where, PM_IN_FULL);
  (void)d;
}

Test(pages, a_low_page_becomes_available_when_an_eighth_is_free) {
  static void *a[CAP], *b[CAP];
  pm_page *pa = fill_page(a);
  fill_page(b);
  unsigned cls = pa->cls;
  for (int i = 0; i < CAP / 8 - 1; i++) {
    pm_free(a[i]);
    cr_assert_eq(pa->where, PM_IN_LOW, "%d blocks free", i + 1);
  }
  pm_free(a[CAP / 8 - 1]);
  cr_assert_eq(pa->where, PM_IN_AVAIL, "an eighth free: available");
  cr_assert_eq(heap()->avail[cls], pa);
  cr_assert_null(heap()->low[cls]);
}

Test(pages, a_low_page_is_used_before_a_new_page_is_carved) {
  static void *a[CAP], *b[CAP];
  pm_page *pa = fill_page(a);
  pm_page *pb = fill_page(b);
  pm_free(a[7]);
  cr_assert_eq(pa->where, PM_IN_LOW);
  void *d = pm_malloc(BSIZE); /* pb is exhausted, no available page */
  cr_assert_eq(d, a[7], "the low page's block, no new page");
  cr_assert_eq(heap()->pages[pa->cls], pa);
  cr_assert_eq(pb->where, PM_IN_FULL);
}

/* Free pages are kept on two stacks (arena.c): those released by auxiliary
 * heaps (watched pages: a few samples each, resident only where those
 * were) go back to auxiliary heaps first and need no purge; an ordinary
 * heap takes them only when no ordinary page is left; an auxiliary heap
 * that must take an ordinary page purges it if it was touched. On one
 * stack (before), the auxiliary heap took the ordinary page last pushed and
 * purged it, and ordinary heaps refaulted watched ones (mstress, routing
 * on: 339 madvise calls instead of 42, 30% more time). */
Test(pages, watched_pages_go_back_to_auxiliary_heaps_first) {
  pm_free(pm_malloc(1));
  while (pm_pages_pop_free() != NULL) /* this test's pages only */
    ;
  char *cur = NULL, *end = NULL;
  pm_page *w = pm_arena_carve_page(&cur, &end), *o = pm_arena_carve_page(&cur, &end);
  cr_assert(w != NULL && o != NULL);
  w->dirty = o->dirty = 1;
  pm_pages_push_free_watched(w);
  pm_pages_push_free(o);
  uint64_t purged = pm_pages_purged_total();
  cr_assert_eq(pm_pages_pop_free_clean(), w, "an auxiliary heap takes the watched page");
  cr_assert_eq(pm_pages_purged_total(), purged, "without a purge");
  pm_pages_push_free_watched(w);
  cr_assert_eq(pm_pages_pop_free(), o, "an ordinary heap takes the ordinary page");
  cr_assert_eq(pm_pages_pop_free(), w, "and a watched one when no other is left");
  cr_assert_null(pm_pages_pop_free());
  pm_pages_push_free(o);
  cr_assert_eq(pm_pages_pop_free_clean(), o, "no watched page: an ordinary one");
  cr_assert(o->dirty == 0 && pm_pages_purged_total() == purged + pm_page_size(),
            "purged first");
}

/* A page released empty goes to its heap's cache with its free list: when
 * its class needs a page again it comes back as it was, the blocks in the
 * order they were freed and nothing carved again (bench_churn's batches
 * empty a page of each class every round). A page of another class is
 * initialised afresh. */
Test(pages, an_emptied_page_comes_back_to_its_class_with_its_blocks) {
  static void *a[CAP], *b[CAP];
  pm_page *pa = fill_page(a);
  pm_page *pb = fill_page(b);
  unsigned cls = pa->cls;
  for (int i = 0; i < CAP; i++)
    pm_free(a[i]);
  cr_assert_eq(pa->where, PM_IN_CACHE, "released whole into the heap's cache");
  cr_assert_eq(pa->state, PM_PAGE_FREE);
  cr_assert_eq(heap()->cache, pa);
  cr_assert_eq(pa->carved, CAP, "its blocks stay carved");

  void *d = pm_malloc(BSIZE); /* pb is exhausted: the cached page comes back */
  cr_assert_eq(d, a[CAP - 1], "the last block freed comes first");
  cr_assert_eq(pa->state, PM_PAGE_IN_USE);
  cr_assert_eq(heap()->pages[cls], pa);
  cr_assert_eq(pm_page_count_used(pa), 1);
  cr_assert_eq(pa->carved, CAP, "not carved again");
  for (int i = CAP - 2; i >= 0; i--)
    cr_assert_eq(pm_malloc(BSIZE), a[i], "block %d, last freed first", i);
  cr_assert_null(pa->free, "every block handed out once");
  cr_assert_eq(pb->where, PM_IN_FULL);
}

Test(pages, a_cached_page_of_another_class_starts_afresh) {
  static void *a[CAP], *b[CAP];
  pm_page *pa = fill_page(a);
  fill_page(b);
  for (int i = 0; i < CAP; i++)
    pm_free(a[i]);
  cr_assert_eq(heap()->cache, pa);
  void *d = pm_malloc(48); /* a class with no page yet */
  cr_assert_eq(pm_page_of(d), pa, "the cached page, for another class");
  cr_assert_eq(pa->bsize, 48);
  cr_assert_eq(pa->carved, 4096 / 48, "carved afresh");
  cr_assert_eq(d, pm_page_start(pa), "from its first block");
}

/* Cached pages are the thread's alone: one that sat idle for
 * POOLMALLOC_DECAY_MS goes to the global free stack, where the purge finds
 * it and other threads can take it. */
Test(pages, an_idle_cached_page_goes_to_the_global_stack) {
  static void *a[CAP], *b[CAP];
  pm_page *pa = fill_page(a);
  fill_page(b);
  for (int i = 0; i < CAP; i++)
    pm_free(a[i]);
  cr_assert_eq(heap()->cache, pa);
  pm_opt.decay_ms = 1;
  heap()->trim_ms = 0;
  pa->freed_ms = pm_os_now_ms() - 10;
  pm_heap_trim_idle(heap());
  cr_assert_null(heap()->cache);
  cr_assert_eq(heap()->ncache, 0);
  cr_assert_eq(pa->where, PM_IN_NONE);
  cr_assert_eq(pm_pages_pop_free(), pa, "on the global stack");
}

/* malloc takes blocks only from its class's current page and does not
 * count them: the page's count is found when it stops being current
 * (pm_page_count_used: carved blocks less the free list), and frees count
 * down from PM_ROOM_CURRENT until the slow path sets it again. */
Test(pages, a_current_page_counts_nothing_until_it_leaves) {
  static void *a[CAP], *b[CAP];
  void *p = pm_malloc(BSIZE);
  pm_page *pg = pm_page_of(p);
  cr_assert_eq(pg->where, PM_IN_CURRENT);
  cr_assert_eq(pg->room, PM_ROOM_CURRENT);
  a[0] = p;
  for (int i = 1; i < 10; i++)
    a[i] = pm_malloc(BSIZE);
  cr_assert_eq(pg->room, PM_ROOM_CURRENT, "malloc counts nothing");
  cr_assert_eq(pm_page_count_used(pg), 10);
  for (int i = 0; i < 3; i++)
    pm_free(a[i]);
  cr_assert_eq(pm_page_count_used(pg), 7, "the carved blocks less the free list");
  cr_assert_eq(pg->room, PM_ROOM_CURRENT - 3);
  pg->room = 0; /* as after 2^30 frees */
  pm_free(a[3]);
  cr_assert_eq(pg->room, PM_ROOM_CURRENT, "the slow path sets it again");
  cr_assert_eq(pg->where, PM_IN_CURRENT);
  cr_assert_eq(pm_page_count_used(pg), 6);

  for (int i = 0; i < 6; i++)
    b[i] = a[4 + i];
  for (int i = 6; i < CAP; i++)
    b[i] = pm_malloc(BSIZE);  /* fills pg */
  void *q = pm_malloc(BSIZE); /* pg leaves: its count, found, is CAP */
  cr_assert_neq(pm_page_of(q), pg);
  cr_assert_eq(pg->where, PM_IN_FULL);
  cr_assert_eq(pm_page_used(pg), CAP, "the count written back when it left");
  pm_free(b[0]);
  cr_assert_eq(pg->where, PM_IN_LOW, "and the full page's first free wakes");
  cr_assert_eq(pm_page_used(pg), CAP - 1);
}

/* ---- carving populates (page.c, "Carving populates" in docs/design.md) ---- */

/* a fresh page of the arena, initialised for the class of `size` */
static pm_page *fresh_page(size_t size) {
  pm_free(pm_malloc(1));
  char *cur = NULL, *end = NULL;
  pm_page *pg = pm_arena_carve_page(&cur, &end);
  cr_assert_not_null(pg);
  pm_page_init(pg, pm_class_of(size), NULL);
  cr_assert_eq(pg->touched, 0, "nothing of a fresh page is backed");
  cr_assert(!resident(pm_page_start(pg)));
  return pg;
}

Test(pages, populate_backs_a_page_without_writing_it) {
  size_t os = pm_os_page_size();
  char *p =
      mmap(NULL, 2 * os, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(p, MAP_FAILED);
  cr_assert(!resident(p));
  cr_assert(pm_os_populate(p, os), "MADV_POPULATE_WRITE (Linux 5.14)");
  cr_assert(resident(p), "backed without a write");
  cr_assert(!resident(p + os), "and only the range asked for");
  munmap(p, 2 * os);
}

/* A carve backs the pages its links go to in one system call, and no more:
 * pages past them stay unbacked until a later carve (or the program) writes
 * them, so the resident size is what it was with page faults. */
Test(pages, a_carve_backs_the_pages_it_writes_and_no_more) {
  size_t os = pm_os_page_size();
  pm_page *pg = fresh_page(48);
  char *start = pm_page_start(pg);
  cr_assert(pm_page_carve(pg));
  cr_assert_eq(pg->touched, os);
  cr_assert(resident(start));
  cr_assert(!resident(start + os), "the next page waits for the next carve");
  cr_assert(pm_page_carve(pg));
  cr_assert_eq(pg->touched, 2 * os, "the second carve's links reach the second page");
  cr_assert(resident(start + os));
  cr_assert(!resident(start + 2 * os));
}

/* A carve of one block larger than a page writes its first 16 bytes only:
 * the rest of the block is the program's to touch. */
Test(pages, a_large_blocks_carve_backs_its_first_page_only) {
  size_t os = pm_os_page_size();
  pm_page *pg = fresh_page(16384);
  cr_assert_geq(pg->bsize, 4 * os);
  char *start = pm_page_start(pg);
  cr_assert(pm_page_carve(pg));
  cr_assert_eq(pg->carved, 1);
  cr_assert_eq(pg->touched, os);
  cr_assert(resident(start));
  for (size_t off = os; off < pg->bsize; off += os)
    cr_assert(!resident(start + off), "page %zu of the block", off / os);
}

/* A purged page is unbacked again: its next carves populate from its start. */
Test(pages, a_purged_page_is_populated_again) {
  pm_page *pg = fresh_page(48);
  cr_assert(pm_page_carve(pg) && pm_page_carve(pg));
  while (pm_pages_pop_free() != NULL) /* this test's page only */
    ;
  pg->state = PM_PAGE_FREE;
  pm_pages_push_free(pg);
  cr_assert_eq(pm_pages_pop_free_clean(), pg);
  cr_assert_eq(pg->dirty, 0);
  cr_assert_eq(pg->touched, 0, "purged whole");
  cr_assert(!resident(pm_page_start(pg)));
  pm_page_init(pg, pm_class_of(48), NULL);
  cr_assert(pm_page_carve(pg));
  cr_assert_eq(pg->touched, pm_os_page_size());
  cr_assert(resident(pm_page_start(pg)));
}
