/* test_trim.c - giving back the empty pieces of pinned pool pages
 * (pm_page_trim, pm_heap_trim_idle): a page held by one live block keeps
 * only the pieces that block is in; a block of a returned piece is never
 * handed out before the page reclaims it; a second free of such a block,
 * from the owner or another thread, and realloc of it, abort with one line.
 * POOLMALLOC_DECAY_MS=0 makes every listed page old enough at once. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "resident.h"
#include "heap.h"
#include "page.h"
#include "start.h"
#include "stats.h"

#define BSIZE 64
#define PAGES 20

static size_t per_page;
static void **blocks;
static size_t nblocks;

static void setup(void) {
  setenv("POOLMALLOC_DECAY_MS", "0", 1);
  setenv("POOLMALLOC_POOL_SIZE", "65536", 1);
  pm_free(pm_malloc(1)); /* starts the process and the thread's heap */
  per_page = pm_page_size() / BSIZE;
  nblocks = PAGES * per_page;
  blocks = calloc(nblocks, sizeof *blocks); /* the runner's malloc: glibc */
  cr_assert_not_null(blocks);
}

/* PAGES pages of 64 B blocks, all touched; then every block freed but the
 * first of each page: the pages are pinned by one block each */
static void pin_pages(void) {
  for (size_t i = 0; i < nblocks; i++) {
    blocks[i] = pm_malloc(BSIZE);
    cr_assert_not_null(blocks[i]);
    memset(blocks[i], 0x5a, BSIZE);
  }
  for (size_t i = 0; i < nblocks; i++) {
    if (((uintptr_t)blocks[i] & pm_g.page_mask) == 0) continue; /* a page's first */
    pm_free(blocks[i]);
    blocks[i] = NULL;
  }
}

/* one sweep now (the allocations' own ticks may have run one this
 * millisecond) */
static void sweep(void) {
  pm_heap *h = pm_heap_get();
  h->trim_ms = 0;
  pm_heap_trim_idle(h);
}

static pm_snapshot snap(void) {
  pm_snapshot s;
  pm_stats_snapshot(&s);
  return s;
}

/* a block of a returned piece (the second piece of a pinned page) */
static void *returned_block(void) {
  for (size_t i = 0; i < nblocks; i++) {
    if (blocks[i] == NULL) continue;
    char *q = (char *)blocks[i] + pm_page_piece();
    pm_page *pg = pm_page_of(q);
    if (pg->returned && pm_page_in_returned(pg, (uintptr_t)q & pm_g.page_mask)) return q;
  }
  return NULL;
}

Test(trim, pinned_pages_keep_only_the_pieces_of_their_live_blocks, .init = setup) {
  pin_pages();
  pm_snapshot before = snap();
  sweep();
  pm_snapshot after = snap();
  size_t pieces = pm_page_size() / pm_page_piece();
  /* the current page is never trimmed; every other pinned page gives back
   * all its pieces but the first */
  uint64_t want = (uint64_t)(PAGES - 2) * (pieces - 1) * pm_page_piece();
  cr_assert_geq(after.fig.returned_bytes, want, "returned %lu, want at least %lu",
                (unsigned long)after.fig.returned_bytes, (unsigned long)want);
  cr_assert_geq(after.heap.pages_trimmed, PAGES - 2);
  cr_assert_eq(after.heap.trimmed_bytes, after.fig.returned_bytes);
  cr_assert_lt(after.fig.pinned_bytes, before.fig.pinned_bytes);
  char *q = returned_block();
  cr_assert_not_null(q);
  cr_assert(!resident(q), "a returned piece is still resident");
  /* the live blocks kept their contents */
  for (size_t i = 0; i < nblocks; i++)
    if (blocks[i] != NULL)
      for (int k = 0; k < BSIZE; k++)
        cr_assert_eq(((unsigned char *)blocks[i])[k], 0x5a);
  /* nothing new to give back: a second sweep trims nothing */
  sweep();
  cr_assert_eq(snap().heap.pages_trimmed, after.heap.pages_trimmed);
}

Test(trim, a_returned_block_is_handed_out_only_after_reclaim, .init = setup) {
  pin_pages();
  sweep();
  cr_assert_gt(snap().fig.returned_bytes, 0);
  /* take every free block again: each is new (never a live one, never twice)
   * and writable; the returned pieces come back as the pages need them */
  void **again = calloc(nblocks, sizeof *again);
  cr_assert_not_null(again);
  size_t n = 0;
  for (size_t i = 0; i < nblocks; i++)
    if (blocks[i] == NULL) {
      again[n] = pm_malloc(BSIZE);
      cr_assert_not_null(again[n]);
      pm_page *pg = pm_page_of(again[n]);
      cr_assert(!pm_page_in_returned(pg, (uintptr_t)again[n] & pm_g.page_mask),
                "block %p handed out from a returned piece", again[n]);
      memset(again[n], 0x77, BSIZE);
      n++;
    }
  for (size_t i = 0; i < nblocks; i++)
    if (blocks[i] != NULL)
      for (int k = 0; k < BSIZE; k++)
        cr_assert_eq(((unsigned char *)blocks[i])[k], 0x5a,
                     "a live block was handed out");
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < BSIZE; k++)
      cr_assert_eq(((unsigned char *)again[i])[k], 0x77, "a block was handed out twice");
  cr_assert_eq(snap().fig.returned_bytes, 0, "every piece was reclaimed");
  for (size_t i = 0; i < n; i++)
    pm_free(again[i]);
  for (size_t i = 0; i < nblocks; i++)
    pm_free(blocks[i]);
  free(again);
}

Test(trim, more_frees_give_back_more, .init = setup) {
  /* two blocks kept per page: the first and one in the last piece */
  for (size_t i = 0; i < nblocks; i++) {
    blocks[i] = pm_malloc(BSIZE);
    cr_assert_not_null(blocks[i]);
    memset(blocks[i], 0x5a, BSIZE);
  }
  size_t last = pm_page_size() - BSIZE;
  for (size_t i = 0; i < nblocks; i++) {
    uintptr_t off = (uintptr_t)blocks[i] & pm_g.page_mask;
    if (off == 0 || off == last) continue;
    pm_free(blocks[i]);
    blocks[i] = NULL;
  }
  sweep();
  pm_snapshot one = snap();
  size_t pieces = pm_page_size() / pm_page_piece();
  cr_assert_geq(one.fig.returned_bytes,
                (uint64_t)(PAGES - 2) * (pieces - 2) * pm_page_piece());
  /* the last blocks go: their pieces follow at the next sweep */
  for (size_t i = 0; i < nblocks; i++)
    if (blocks[i] != NULL && ((uintptr_t)blocks[i] & pm_g.page_mask) == last) {
      pm_free(blocks[i]);
      blocks[i] = NULL;
    }
  sweep();
  pm_snapshot two = snap();
  cr_assert_geq(two.fig.returned_bytes,
                one.fig.returned_bytes + (uint64_t)(PAGES - 2) * pm_page_piece());
  cr_assert_eq(two.heap.trimmed_bytes, two.fig.returned_bytes);
  /* a trimmed page that empties is released whole: its pieces no longer
   * count as returned from a page in use */
  for (size_t i = 0; i < nblocks; i++)
    if (blocks[i] != NULL && pm_page_of(blocks[i])->returned) {
      uint64_t released = snap().heap.pages_released;
      pm_free(blocks[i]);
      blocks[i] = NULL;
      pm_snapshot three = snap();
      cr_assert_eq(three.heap.pages_released, released + 1);
      cr_assert_eq(three.fig.returned_bytes,
                   two.fig.returned_bytes - (pieces - 1) * pm_page_piece());
      break;
    }
}

/* ---- wrong calls on returned blocks abort with one line ---- */

static void quiet_abort(void) {
  struct rlimit r = {0, 0};
  setrlimit(RLIMIT_CORE, &r);
  cr_redirect_stderr();
  setup();
}

/* pinned pages trimmed, and a block of one of their returned pieces */
static char *trimmed_block(void) {
  pin_pages();
  sweep();
  char *q = returned_block();
  cr_assert_not_null(q);
  return q;
}

Test(trim, double_free_of_a_returned_block_aborts, .signal = SIGABRT,
     .init = quiet_abort) {
  char *q = trimmed_block();
  pm_free(q);
}

static void *free_it(void *p) {
  pm_free(p);
  return NULL;
}

Test(trim, remote_double_free_of_a_returned_block_aborts, .signal = SIGABRT,
     .init = quiet_abort) {
  char *q = trimmed_block();
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_it, q), 0);
  pthread_join(t, NULL);
  /* the owner finds it when it collects the page's remote frees */
  for (size_t i = 0; i < 4 * nblocks; i++)
    pm_malloc(BSIZE);
}

Test(trim, realloc_of_a_returned_block_aborts, .signal = SIGABRT, .init = quiet_abort) {
  char *q = trimmed_block();
  pm_realloc(q, 1000);
}

Test(trim, the_message_names_the_call_and_the_fault, .init = setup) {
  char *q = trimmed_block();
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit r = {0, 0};
    setrlimit(RLIMIT_CORE, &r);
    dup2(fds[1], 2);
    pm_free(q);
    _exit(0);
  }
  close(fds[1]);
  char buf[512] = {0};
  size_t len = 0;
  ssize_t k;
  while (len < sizeof buf - 1 && (k = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)k;
  int status;
  waitpid(pid, &status, 0);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %d", status);
  cr_assert(strstr(buf, "poolmalloc") && strstr(buf, "free()") &&
                strstr(buf, "double free detected"),
            "message: %s", buf);
}

static void *free_kept(void *arg) {
  (void)arg;
  for (size_t i = 0; i < nblocks; i++)
    if (blocks[i] != NULL && pm_page_of(blocks[i])->where != 1 /* PM_IN_CURRENT */) {
      pm_free(blocks[i]);
      blocks[i] = NULL;
    }
  return NULL;
}

Test(trim, an_idle_page_emptied_by_remote_frees_is_released, .init = setup) {
  pin_pages();
  sweep();
  uint64_t released = snap().heap.pages_released;
  /* another thread frees the blocks that pinned the pages: the owner's
   * sweep collects them and releases the pages whole */
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_kept, NULL), 0);
  pthread_join(t, NULL);
  sweep();
  pm_snapshot s = snap();
  cr_assert_geq(s.heap.pages_released, released + PAGES - 2, "released %lu -> %lu",
                (unsigned long)released, (unsigned long)s.heap.pages_released);
  cr_assert_eq(s.fig.returned_bytes, 0);
}
