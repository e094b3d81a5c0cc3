/* test_alloc.c - the allocator through the pm_ entry points, one thread:
 * lazy start-up, page carving, free lists, pages released and reused,
 * the jemalloc tier, aligned requests, calloc, realloc, overflow rules.
 * Every test is a fresh process with default options (64 KiB pages,
 * requests up to 32 KiB pooled). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alloc.h"
#include "fallback.h"
#include "heap.h"
#include "start.h"
#include "options.h"
#include "page.h"
#include "stats.h"

#include "poolmalloc.h"
#include "routing_off.h"

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)

static pm_snapshot snap(void) {
  if (!PM_COUNTING)
    cr_skip_test("built without POOLMALLOC_COUNTING: no counters to check");
  pm_snapshot s;
  pm_stats_snapshot(&s);
  return s;
}

static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    c[i] = (unsigned char)(seed * 31u + i * 7u);
}

static bool check(const void *p, size_t n, unsigned seed) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != (unsigned char)(seed * 31u + i * 7u)) return false;
  return true;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* ---- start-up ---- */

Test(alloc, initialises_lazily_on_first_call) {
  cr_assert_eq(pm_g.size, 0, "nothing is reserved before the first call");
  cr_assert_eq(pm_tls_heap, &pm_heap_empty);
  void *p = pm_malloc(24);
  cr_assert_not_null(p);
  cr_assert_neq(pm_g.size, 0);
  cr_assert_eq(pm_g.base % (pm_page_size() * 16), 0, "region aligned to the arena size");
  cr_assert_eq(pm_page_size(), 64 * KiB);
  cr_assert_eq(pm_g.max_pooled, 32 * KiB);
  cr_assert(pm_is_pool_ptr(p));
  pm_heap *h = pm_tls_heap;
  cr_assert_eq(h->kind, PM_HEAP_REAL);
  cr_assert_eq(pm_heap_get(), h);
  pm_snapshot s = snap();
  cr_assert_eq(s.threads_live, 1);
  cr_assert_eq(pm_heap_count(), 1);
  cr_assert_eq(s.cls[pm_class_of(24)].allocs, 1);
  cr_assert_eq(s.cls[pm_class_of(24)].req_bytes, 24);
  pm_free(p);
  cr_assert_eq(snap().cls[pm_class_of(24)].frees, 1);
}

/* jemalloc starts when it is needed, not before: the first 16 large blocks
 * of a process are mapped directly (page-aligned, zeroed, usable to the end
 * of their pages), the 17th starts jemalloc */
Test(alloc, jemalloc_starts_on_its_first_request) {
  void *small[100];
  for (int i = 0; i < 100; i++)
    small[i] = pm_malloc((size_t)i * 97 % 4000);
  for (int i = 0; i < 100; i++)
    pm_free(small[i]);
  cr_assert(!pm_fallback_started(), "small blocks only: jemalloc untouched");
  char *big[17];
  for (int i = 0; i < 16; i++) {
    size_t n = (64 << 10) + (size_t)i * 1000;
    big[i] = pm_calloc(1, n);
    cr_assert_not_null(big[i]);
    cr_assert(!pm_is_pool_ptr(big[i]));
    cr_assert_eq((uintptr_t)big[i] % 4096, 0);
    cr_assert_eq(pm_usable_size(big[i]), (n + 4095) & ~(size_t)4095);
    cr_assert_eq(big[i][n - 1], 0);
    big[i][pm_usable_size(big[i]) - 1] = 1;
  }
  cr_assert(!pm_fallback_started(), "16 direct blocks");
  big[16] = pm_malloc(1 << 20);
  cr_assert(pm_fallback_started());
  cr_assert_geq(pm_usable_size(big[16]), (size_t)1 << 20);
  big[3] = pm_realloc(big[3], 300 << 10); /* a direct block grows into jemalloc */
  cr_assert_not_null(big[3]);
  cr_assert_geq(pm_usable_size(big[3]), (size_t)300 << 10);
  for (int i = 0; i < 17; i++)
    pm_free(big[i]);
  char *again = pm_malloc(70 << 10); /* freed slots are not reused */
  cr_assert_neq((uintptr_t)again % 4096 == 0 && pm_usable_size(again) == (72 << 10), true,
                "a direct block after jemalloc started");
  pm_free(again);
}

/* A loop of calloc/free of big blocks reuses the freed direct block (grown
 * with mremap when it is too small) instead of unmapping it and mapping a
 * fresh one: it takes about one block's page faults, not one per page of
 * every block, and never starts jemalloc. Before: 16 fresh mappings (each
 * page faulted in), then jemalloc, about 11,000 faults here. */
static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

Test(alloc, calloc_free_loop_reuses_its_direct_block) {
  pm_free(pm_malloc(32)); /* start-up outside the count */
  static const size_t sizes[] = {1 * MiB, 3 * MiB, 2 * MiB, 4 * MiB + 8, 1 * MiB + 24};
  long f0 = minflt();
  for (int i = 0; i < 40; i++) {
    size_t n = sizes[i % 5] + (size_t)i * 8;
    uint64_t *w = pm_calloc(n / 8, 8);
    cr_assert_not_null(w);
    for (size_t k = 0; k < n / 8; k++)
      if (w[k] != 0) cr_assert_fail("round %d (%zu B): word %zu is %#lx", i, n, k, w[k]);
    for (size_t k = 0; k < n / 8; k++)
      w[k] = k | 1;
    pm_free(w);
  }
  long faults = minflt() - f0;
  cr_assert_lt(faults, 3 * (long)(4 * MiB / 4096), "%ld page faults", faults);
  cr_assert(!pm_fallback_started(), "the loop needs no jemalloc");
  /* malloc_trim returns the kept block */
  uint64_t alloc0, res0, alloc1, res1;
  pm_fallback_figures(&alloc0, &res0);
  cr_assert_geq(res0, 4 * MiB, "the kept block counts as resident");
  pm_fallback_trim();
  pm_fallback_figures(&alloc1, &res1);
  cr_assert_eq(res1, 0);
}

/* A large block freed while others are live ends the direct mappings:
 * the program churns large blocks, and a direct block given back is
 * faulted in again where jemalloc reuses freed memory (bench_large: 19,600
 * faults with 16 direct blocks, 15,400 with this rule) */
Test(alloc, a_large_block_freed_among_live_ones_ends_the_direct_blocks) {
  pm_free(pm_malloc(32));
  void *a = pm_malloc(1 * MiB), *b = pm_malloc(2 * MiB);
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  cr_assert(!pm_fallback_started(), "two large blocks are mapped directly");
  pm_free(a); /* b is live: not kept as the spare */
  cr_assert(!pm_fallback_started());
  void *c = pm_malloc(1 * MiB);
  cr_assert_not_null(c);
  cr_assert(pm_fallback_started(), "the next large block comes from jemalloc");
  memset(c, 1, 1 * MiB);
  memset(b, 2, 2 * MiB);
  pm_free(b); /* still a direct block: freed as one */
  pm_free(c);
}

/* One large block at a time is not churn: it stays direct (the spare) */
Test(alloc, one_large_block_at_a_time_stays_direct) {
  pm_free(pm_malloc(32));
  for (int i = 0; i < 40; i++) {
    void *p = pm_malloc((size_t)(1 + i % 3) * MiB);
    cr_assert_not_null(p);
    memset(p, i, MiB);
    pm_free(p);
  }
  cr_assert(!pm_fallback_started());
}

/* jemalloc's own decay is off; poolmalloc keeps freed large pages while
 * large blocks churn and gives them back once the churn is over */
Test(alloc, large_pages_kept_while_churning_returned_after) {
  setenv("POOLMALLOC_DECAY_MS", "100", 1);
  enum { N = 16, SZ = 4 << 20 };
  char *b[N];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      b[i] = pm_malloc(SZ);
      cr_assert_not_null(b[i]);
      memset(b[i], round + 1, SZ);
    }
    for (int i = 0; i < N; i++)
      pm_free(b[i]);
  }
  cr_assert_eq(pm_fallback_purged(), 0, "a churn within one period keeps its pages");
  /* the churn is over: within two periods of little activity they go */
  for (int i = 0; i < 2; i++) {
    usleep(120 * 1000);
    pm_free(pm_malloc(SZ));
  }
  cr_assert_geq(pm_fallback_purged(), (uint64_t)N * SZ / 2, "purged %lu",
                (unsigned long)pm_fallback_purged());
}

Test(alloc, every_entry_point_initialises) {
  void *p = NULL;
  cr_assert_eq(pm_posix_memalign(&p, 64, 10), 0);
  cr_assert(pm_is_pool_ptr(p), "the first call may be posix_memalign");
  cr_assert_eq((uintptr_t)p % 64, 0);
  pm_free(p);
}

Test(alloc, first_call_calloc_and_realloc) {
  char *p = pm_calloc(3, 5);
  cr_assert(pm_is_pool_ptr(p));
  for (int i = 0; i < 15; i++)
    cr_assert_eq(p[i], 0);
  char *q = pm_realloc(NULL, 40);
  cr_assert(pm_is_pool_ptr(q));
  pm_free(p);
  pm_free(q);
}

Test(alloc, free_null_is_a_no_op) {
  pm_free(NULL); /* before start-up */
  void *p = pm_malloc(1);
  pm_free(NULL);
  pm_free(p);
  cr_assert_eq(pm_usable_size(NULL), 0);
}

/* ---- page carving ---- */

#define PAGE (64 * KiB) /* POOLMALLOC_POOL_SIZE's default */

static void carve_class(size_t request) {
  unsigned cls = pm_class_of(request);
  size_t bsize = pm_class_size(cls);
  size_t cap = PAGE / bsize;
  size_t n = cap * 3 + cap / 2; /* three and a half pages */
  void **v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    v[i] = pm_malloc(request);
    cr_assert_not_null(v[i]);
    cr_assert(pm_is_pool_ptr(v[i]), "size %zu block %zu not pooled", request, i);
    cr_assert_eq((uintptr_t)v[i] % 16, 0);
    cr_assert_eq(pm_usable_size(v[i]), bsize);
    cr_assert_eq(pm_page_of(v[i])->cls, cls);
    cr_assert_eq(((uintptr_t)v[i] & pm_g.page_mask) % bsize, 0,
                 "block start in its page");
    fill(v[i], request, (unsigned)i);
  }
  for (size_t i = 0; i < n; i++)
    cr_assert(check(v[i], request, (unsigned)i), "size %zu: block %zu overwritten",
              request, i);
  void **sorted = malloc(n * sizeof *v);
  memcpy(sorted, v, n * sizeof *v);
  qsort(sorted, n, sizeof *sorted, cmp_ptr);
  size_t npages = 1;
  for (size_t i = 1; i < n; i++)
    npages += pm_page_of(sorted[i]) != pm_page_of(sorted[i - 1]);
  cr_assert_eq(npages, 4, "size %zu: %zu blocks fill 4 pages, not %zu", request, n,
               npages);
  for (size_t i = 1; i < n; i++)
    cr_assert_geq((uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1], bsize,
                  "size %zu: blocks %p and %p overlap", request, sorted[i - 1],
                  sorted[i]);
  for (size_t i = 0; i < n; i++)
    pm_free(v[i]);
  free(sorted);
  free(v);
}

Test(alloc, carving_gives_distinct_aligned_blocks) {
  static const size_t sizes[] = {0,    1,    16,   17,   100,   128,  129,
                                 1000, 1024, 1025, 4000, 20000, 32768};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    carve_class(sizes[i]);
}

Test(alloc, carving_is_lazy_and_in_address_order) {
  char *a = pm_malloc(100);
  pm_page *pg = pm_page_of(a);
  size_t bsize = pg->bsize;
  cr_assert_eq(bsize, 112);
  cr_assert_eq(pg->capacity, pm_page_size() / bsize);
  cr_assert_eq((uintptr_t)a & pm_g.page_mask, 0,
               "a fresh page starts with its first block");
  cr_assert_gt(pg->carved, 1);
  cr_assert_lt(pg->carved, pg->capacity, "fresh memory is carved a few KiB at a time");
  uint32_t first_carve = pg->carved;
  for (uint32_t i = 1; i < first_carve; i++) {
    char *b = pm_malloc(100);
    cr_assert_eq(b, a + i * bsize, "block %u: bump order", i);
  }
  cr_assert_eq(pg->carved, first_carve, "no carving while the free list has blocks");
  cr_assert_null(pg->free);
  char *c = pm_malloc(100);
  cr_assert_eq(c, a + first_carve * bsize);
  cr_assert_gt(pg->carved, first_carve);
  cr_assert_eq(pm_page_count_used(pg), first_carve + 1);
}

Test(alloc, usable_size_is_the_class_size_for_every_pooled_size) {
  pm_free(pm_malloc(1)); /* start up: max_pooled is known from here on */
  for (size_t s = 0; s <= pm_g.max_pooled; s++) {
    void *p = pm_malloc(s);
    size_t want = pm_class_size(pm_class_of(s));
    if (!pm_is_pool_ptr(p)) cr_assert_fail("size %zu not pooled", s);
    if (pm_usable_size(p) != want)
      cr_assert_fail("size %zu: usable %zu, class %zu", s, pm_usable_size(p), want);
    pm_free(p);
  }
  cr_assert_eq(pm_g.max_pooled, 32 * KiB);
}

/* ---- free lists ---- */

Test(alloc, lifo_reuse_after_free) {
  void *a = pm_malloc(48), *b = pm_malloc(48), *c = pm_malloc(48);
  pm_free(a);
  cr_assert_eq(pm_malloc(40), a, "the last freed block comes back first");
  pm_free(a);
  pm_free(b);
  pm_free(c);
  cr_assert_eq(pm_malloc(48), c);
  cr_assert_eq(pm_malloc(33), b);
  cr_assert_eq(pm_malloc(48), a);
}

Test(alloc, local_free_goes_on_the_page_list) {
  void *a = pm_malloc(200), *b = pm_malloc(200);
  pm_page *pg = pm_page_of(a);
  cr_assert_eq(pm_page_of(b), pg);
  cr_assert_eq(pm_page_count_used(pg), 2);
  cr_assert_eq(atomic_load(&pg->owner), pm_tls_heap);
  pm_block *old_head = pg->free;
  pm_free(a);
  cr_assert_eq(pm_page_count_used(pg), 1);
  cr_assert_eq((void *)pg->free, a, "the freed block heads the local list");
  cr_assert_eq(pm_block_next(pg->free), old_head,
               "linked to the old head (encoded link)");
  cr_assert_eq(((pm_block *)a)->tag, pm_g.tag, "a free block carries the tag");
  cr_assert_neq(((pm_block *)a)->next, (uintptr_t)old_head,
                "links are not stored in clear");
  cr_assert_null(atomic_load(&pg->remote), "a local free never touches the remote list");
  pm_free(b);
  cr_assert_eq(pm_page_count_used(pg), 0);
  cr_assert_eq(pg->state, PM_PAGE_IN_USE, "the empty current page stays");
  cr_assert_eq(pm_tls_heap->pages[pg->cls], pg);
  cr_assert_eq(snap().heap.remote_frees, 0);
}

Test(alloc, malloc_free_loop_keeps_one_page) {
  for (int i = 0; i < 100000; i++)
    pm_free(pm_malloc(64));
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_fresh, 1);
  cr_assert_eq(s.heap.pages_released, 0);
  cr_assert_eq(s.cls[pm_class_of(64)].allocs, 100000);
  cr_assert_eq(s.cls[pm_class_of(64)].frees, 100000);
  cr_assert_eq(s.fig.live_block_bytes, 0);
}

Test(alloc, empty_pages_are_released_and_reused_by_another_class) {
  size_t n = 8 * (PAGE / 1024); /* eight pages of 1 KiB blocks */
  void **v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = pm_malloc(1024);
  pm_snapshot s0 = snap();
  cr_assert_eq(s0.heap.pages_fresh, 8);
  cr_assert_eq(s0.fig.pages_in_use, 8);
  for (size_t i = 0; i < n; i++)
    pm_free(v[i]);
  pm_snapshot s1 = snap();
  cr_assert_eq(s1.heap.pages_released, 7,
               "every emptied page but the current one is released");
  cr_assert_eq(s1.fig.pages_in_use, 1);
  cr_assert_eq(s1.fig.live_block_bytes, 0);
  /* another class takes the released pages instead of fresh ones */
  cr_assert_eq(pm_page_size(), PAGE);
  size_t m = 7 * (PAGE / 2048);
  for (size_t i = 0; i < m; i++) {
    v[i] = pm_malloc(2000);
    fill(v[i], 2000, (unsigned)i);
  }
  pm_snapshot s2 = snap();
  cr_assert_eq(s2.heap.pages_fresh, 8, "no fresh page for the second class (got %llu)",
               (unsigned long long)s2.heap.pages_fresh);
  cr_assert_eq(s2.heap.pages_reused, 7);
  cr_assert_eq(s2.fig.pages_in_use, 8);
  for (size_t i = 0; i < m; i++) {
    cr_assert_eq(pm_page_of(v[i])->cls, pm_class_of(2000));
    cr_assert(check(v[i], 2000, (unsigned)i));
    pm_free(v[i]);
  }
  free(v);
}

Test(alloc, churn_does_not_grow_the_footprint) {
  /* allocate and free waves of mixed classes: pages are recycled */
  enum { N = 20000 };
  static void *v[N];
  uint64_t fresh_after_first = 0;
  for (int wave = 0; wave < 6; wave++) {
    size_t base = 64u << (wave % 3);
    for (int i = 0; i < N; i++)
      v[i] = pm_malloc(base + (size_t)(i % 7) * 16);
    for (int i = 0; i < N; i++)
      pm_free(v[i]);
    if (wave == 2) fresh_after_first = snap().heap.pages_fresh;
  }
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_fresh, fresh_after_first,
               "later waves of the same sizes need no fresh page (%llu > %llu)",
               (unsigned long long)s.heap.pages_fresh,
               (unsigned long long)fresh_after_first);
  cr_assert_eq(s.fig.live_block_bytes, 0);
}

/* ---- the jemalloc tier ---- */

Test(alloc, requests_above_max_pooled_go_to_jemalloc) {
  void *a = pm_malloc(32 * KiB);
  cr_assert(pm_is_pool_ptr(a));
  cr_assert_eq(pm_usable_size(a), 32 * KiB);
  void *b = pm_malloc(32 * KiB + 1);
  cr_assert_not_null(b);
  cr_assert_not(pm_is_pool_ptr(b));
  cr_assert_geq(pm_usable_size(b), 32 * KiB + 1);
  cr_assert_eq((uintptr_t)b % 16, 0);
  char *c = pm_malloc(100 * MiB);
  cr_assert_not_null(c);
  cr_assert_not(pm_is_pool_ptr(c));
  c[0] = 1;
  c[100 * MiB - 1] = 2;
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.fb_too_large, 2);
  cr_assert_eq(s.heap.large_bytes, 32 * KiB + 1 + 100 * MiB);
  pm_free(b);
  pm_free(c);
  cr_assert_eq(snap().heap.large_frees, 2);
  pm_free(a);
}

Test(alloc, first_call_large) {
  void *p = pm_malloc(MiB);
  cr_assert_not_null(p);
  cr_assert_not(pm_is_pool_ptr(p));
  cr_assert_eq(pm_tls_heap->kind, PM_HEAP_REAL,
               "a large first request still gives a heap");
  void *q = pm_malloc(10);
  cr_assert(pm_is_pool_ptr(q));
  pm_free(p);
  pm_free(q);
}

/* ---- aligned requests ---- */

Test(alloc, aligned_requests_up_to_4096_land_in_pools) {
  static const size_t sizes[] = {0,   1,    15,   16,   31,   33,
                                 100, 1000, 4095, 4096, 4097, 10000};
  for (size_t align = 32; align <= 4096; align <<= 1) {
    for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
      size_t size = sizes[j];
      void *ps[5];
      for (int k = 0; k < 5; k++) {
        ps[k] = pm_memalign(align, size);
        cr_assert_not_null(ps[k]);
        cr_assert_eq((uintptr_t)ps[k] % align, 0, "memalign(%zu, %zu) = %p", align, size,
                     ps[k]);
        cr_assert(pm_is_pool_ptr(ps[k]), "memalign(%zu, %zu) not pooled", align, size);
        cr_assert_geq(pm_usable_size(ps[k]), size);
        fill(ps[k], size, (unsigned)k);
      }
      for (int k = 0; k < 5; k++) {
        cr_assert(check(ps[k], size, (unsigned)k));
        pm_free(ps[k]);
      }
      void *p = NULL;
      cr_assert_eq(pm_posix_memalign(&p, align, size), 0);
      cr_assert_eq((uintptr_t)p % align, 0);
      cr_assert(pm_is_pool_ptr(p));
      pm_free(p);
      p = pm_aligned_alloc(align, size);
      cr_assert_eq((uintptr_t)p % align, 0);
      pm_free(p);
    }
  }
  cr_assert_eq(snap().heap.fb_alignment + snap().heap.fb_too_large, 0);
}

Test(alloc, large_alignments) {
  for (size_t align = 8192; align <= 32 * KiB; align <<= 1) {
    void *p = pm_memalign(align, 10);
    cr_assert_eq((uintptr_t)p % align, 0);
    cr_assert(pm_is_pool_ptr(p), "alignment %zu fits a pooled class", align);
    pm_free(p);
  }
  for (size_t align = 64 * KiB; align <= 4 * MiB; align <<= 1) {
    void *p = NULL;
    cr_assert_eq(pm_posix_memalign(&p, align, 100), 0);
    cr_assert_eq((uintptr_t)p % align, 0, "alignment %zu: %p", align, p);
    cr_assert_not(pm_is_pool_ptr(p));
    memset(p, 1, 100);
    pm_free(p);
  }
  void *p = pm_memalign(MiB, MiB);
  cr_assert_not_null(p);
  cr_assert_eq((uintptr_t)p % MiB, 0);
  cr_assert_not(pm_is_pool_ptr(p));
  cr_assert_geq(pm_usable_size(p), MiB);
  pm_free(p);
}

Test(alloc, small_alignments_are_plain_mallocs) {
  for (size_t align = 1; align <= 16; align <<= 1) {
    void *p = pm_memalign(align, 24);
    cr_assert(pm_is_pool_ptr(p));
    cr_assert_eq((uintptr_t)p % 16, 0);
    cr_assert_eq(pm_usable_size(p), 32);
    pm_free(p);
  }
  /* glibc rounds a non-power-of-two alignment up */
  void *p = pm_memalign(48, 10);
  cr_assert_eq((uintptr_t)p % 64, 0);
  pm_free(p);
  p = pm_memalign(3000, 10);
  cr_assert_eq((uintptr_t)p % 4096, 0);
  pm_free(p);
}

Test(alloc, posix_memalign_argument_rules) {
  void *p = (void *)0x1234;
  cr_assert_eq(pm_posix_memalign(&p, 0, 16), EINVAL);
  cr_assert_eq(pm_posix_memalign(&p, 4, 16), EINVAL);
  cr_assert_eq(pm_posix_memalign(&p, 24, 16), EINVAL);
  cr_assert_eq(pm_posix_memalign(&p, 65, 16), EINVAL);
  cr_assert_eq(p, (void *)0x1234, "*out untouched on failure");
  errno = 0;
  cr_assert_eq(pm_posix_memalign(&p, 64, SIZE_MAX - 100), ENOMEM);
  cr_assert_eq(errno, ENOMEM, "posix_memalign leaves errno ENOMEM, as glibc does");
  cr_assert_eq(p, (void *)0x1234);
  cr_assert_eq(pm_posix_memalign(&p, 8, 0), 0);
  cr_assert(pm_is_pool_ptr(p));
  pm_free(p);
  cr_assert_eq(pm_posix_memalign(&p, 64, 0), 0, "size 0 gives a unique pointer");
  cr_assert_not_null(p);
  pm_free(p);
}

Test(alloc, valloc_pvalloc) {
  size_t page = 4096;
  void *p = pm_valloc(1);
  cr_assert_eq((uintptr_t)p % page, 0);
  cr_assert(pm_is_pool_ptr(p));
  pm_free(p);
  p = pm_pvalloc(1);
  cr_assert_eq((uintptr_t)p % page, 0);
  cr_assert_geq(pm_usable_size(p), page, "pvalloc rounds up to whole pages");
  pm_free(p);
  p = pm_pvalloc(0);
  cr_assert_geq(pm_usable_size(p), page);
  pm_free(p);
  errno = 0;
  cr_assert_null(pm_pvalloc(SIZE_MAX));
  cr_assert_eq(errno, ENOMEM);
}

/* ---- calloc ---- */

Test(alloc, calloc_zeroes_a_reused_block) {
  for (size_t size = 16; size <= 32 * KiB; size *= 2) {
    unsigned char *p = pm_malloc(size);
    memset(p, 0xab, size);
    pm_free(p);
    unsigned char *q = pm_calloc(1, size);
    cr_assert_eq(q, p, "size %zu: the freed block is reused", size);
    for (size_t i = 0; i < size; i++)
      if (q[i] != 0) cr_assert_fail("size %zu: byte %zu is %#x", size, i, q[i]);
    pm_free(q);
  }
  unsigned char *p = pm_malloc(200);
  memset(p, 0xcd, 200);
  pm_free(p);
  unsigned char *q = pm_calloc(25, 8);
  cr_assert_eq(q, p);
  for (size_t i = 0; i < 200; i++)
    cr_assert_eq(q[i], 0);
  pm_free(q);
}

Test(alloc, calloc_large_and_zero) {
  unsigned char *p = pm_calloc(1000, 1000);
  cr_assert_not(pm_is_pool_ptr(p));
  for (size_t i = 0; i < 1000000; i += 4093)
    cr_assert_eq(p[i], 0);
  pm_free(p);
  void *z = pm_calloc(0, 100);
  cr_assert_not_null(z);
  pm_free(z);
  z = pm_calloc(100, 0);
  cr_assert_not_null(z);
  pm_free(z);
}

Test(alloc, calloc_of_reused_large_memory_is_zero) {
  /* large blocks come back from jemalloc dirty; calloc must zero them
   * whether it memsets or asks jemalloc for zeroed memory */
  for (size_t size = 64 * KiB; size <= 8 * MiB; size *= 2) {
    for (int round = 0; round < 3; round++) {
      unsigned char *p = pm_malloc(size);
      memset(p, 0xa5, size);
      pm_free(p);
      unsigned char *q = pm_calloc(1, size - (size_t)round);
      cr_assert_not(pm_is_pool_ptr(q));
      for (size_t i = 0; i < size - (size_t)round; i += 61)
        if (q[i] != 0)
          cr_assert_fail("size %zu round %d: byte %zu is %#x", size, round, i, q[i]);
      cr_assert_eq(q[size - (size_t)round - 1], 0);
      pm_free(q);
    }
  }
  /* bigger than anything freed so far */
  unsigned char *big = pm_calloc(3, 10 * MiB);
  for (size_t i = 0; i < 30 * MiB; i += 4096)
    cr_assert_eq(big[i], 0);
  pm_free(big);
}

/* ---- realloc ---- */

Test(alloc, realloc_in_place_and_moved) {
  char *p = pm_malloc(1000); /* class 1024 */
  fill(p, 1000, 1);
  cr_assert_eq(pm_realloc(p, 1024), p, "growing within the block stays");
  cr_assert_eq(pm_realloc(p, 600), p, "shrinking to more than half stays");
  cr_assert(check(p, 600, 1));
  char *q = pm_realloc(p, 400);
  cr_assert_neq(q, p, "shrinking below half moves to a smaller class");
  cr_assert_eq(pm_usable_size(q), pm_class_size(pm_class_of(400)));
  cr_assert(check(q, 400, 1));
  char *r = pm_realloc(q, 5000);
  cr_assert_neq(r, q);
  cr_assert(pm_is_pool_ptr(r));
  cr_assert(check(r, 400, 1), "contents kept when growing");
  fill(r, 5000, 2);
  char *big = pm_realloc(r, 200 * KiB);
  cr_assert_not(pm_is_pool_ptr(big));
  cr_assert(check(big, 5000, 2), "contents kept into jemalloc");
  fill(big, 200 * KiB, 3);
  char *big2 = pm_realloc(big, 300 * KiB);
  cr_assert_not(pm_is_pool_ptr(big2));
  cr_assert(check(big2, 200 * KiB, 3));
  char *back = pm_realloc(big2, 100);
  cr_assert(pm_is_pool_ptr(back),
            "a large block shrunk to pool size moves into the pools");
  cr_assert(check(back, 100, 3));
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.realloc_in_place, 2 + (big2 == big));
  cr_assert_eq(s.heap.realloc_moved, 4 + (big2 != big));
  pm_free(back);
  cr_assert_eq(snap().fig.live_block_bytes, 0);
}

/* jemalloc's count of bytes this thread allocated: each rallocx adds the
 * new block's usable size, even when it keeps the block as it was */
int pm_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen);
static uint64_t je_thread_allocated(void) {
  uint64_t n = 0;
  size_t len = sizeof n;
  cr_assert_eq(pm_je_mallctl("thread.allocated", &n, &len, NULL, 0), 0);
  return n;
}

/* A large block grown by small steps within its jemalloc size class stays
 * where it is without a call into jemalloc (realloc-chain: ~800
 * instructions of rallocx per realloc that changed nothing). Fails before:
 * every realloc below reached rallocx and counted its 80 KiB. */
Test(alloc, large_realloc_within_its_class_calls_no_jemalloc) {
  void *direct[17]; /* past the direct blocks: jemalloc started */
  for (int i = 0; i < 17; i++)
    direct[i] = pm_malloc(40 * KiB);
  for (int i = 0; i < 17; i++)
    pm_free(direct[i]);
  cr_assert(pm_fallback_started());
  char *p = pm_malloc(64 * KiB + 1); /* jemalloc's class of 80 KiB */
  cr_assert_eq(pm_usable_size(p), 80 * KiB);
  fill(p, 64 * KiB + 1, 5);
  uint64_t before = je_thread_allocated();
  uint64_t in_place = snap().heap.realloc_in_place;
  size_t n = 64 * KiB + 1;
  for (; n + 48 <= 80 * KiB; n += 48) {
    cr_assert_eq(pm_realloc(p, n + 48), p, "realloc to %zu stays", n + 48);
    p[n + 47] = 1;
  }
  cr_assert_eq(je_thread_allocated(), before, "no rallocx within the class");
  cr_assert_eq(snap().heap.realloc_in_place - in_place, (n - 64 * KiB - 1) / 48);
  cr_assert(check(p, 64 * KiB + 1, 5));
  char *q = pm_realloc(p, 80 * KiB + 1); /* the next class: jemalloc decides */
  cr_assert_not_null(q);
  cr_assert_eq(pm_usable_size(q), 96 * KiB);
  cr_assert_gt(je_thread_allocated(), before);
  cr_assert(check(q, 64 * KiB + 1, 5));
  cr_assert_eq(pm_realloc(q, 40 * KiB), q, "shrinking to a smaller class is jemalloc's");
  cr_assert_eq(pm_usable_size(q), 40 * KiB, "jemalloc shrank it in place");
  pm_free(q);
}

/* the rule against jemalloc's own size classes: usable size unchanged
 * exactly when nallocx would give the same class */
Test(alloc, same_size_rule_matches_jemalloc_classes) {
  static const size_t classes[] = {
      16,       32,       48,       64,       80,      96,          112,      128,
      160,      192,      224,      256,      320,     16 * KiB,    20 * KiB, 40 * KiB,
      48 * KiB, 56 * KiB, 64 * KiB, 80 * KiB, 1 * MiB, 5 * MiB / 4, 2 * MiB};
  for (size_t i = 1; i < sizeof classes / sizeof classes[0]; i++) {
    size_t u = classes[i], prev = classes[i - 1];
    if (prev < u - (u <= 128 ? 16 : u / 4)) continue; /* a gap in the list */
    cr_assert(pm_fallback_same_size(u, u), "%zu", u);
    cr_assert(pm_fallback_same_size(u, prev + 1), "%zu in %zu", prev + 1, u);
    cr_assert_not(pm_fallback_same_size(u, prev), "%zu in %zu", prev, u);
    cr_assert_not(pm_fallback_same_size(u, u + 1), "%zu in %zu", u + 1, u);
  }
}

Test(alloc, small_blocks_never_move_on_shrink) {
  char *p = pm_malloc(128);
  for (size_t s = 128; s >= 1; s--)
    cr_assert_eq(pm_realloc(p, s), p, "realloc to %zu", s);
  pm_free(p);
}

Test(alloc, realloc_null_and_zero) {
  char *p = pm_realloc(NULL, 50);
  cr_assert(pm_is_pool_ptr(p));
  errno = 0;
  cr_assert_null(pm_realloc(p, 0), "glibc: realloc(p, 0) frees and returns NULL");
  cr_assert_eq(errno, 0);
  cr_assert_eq(pm_malloc(50), p, "the block was freed");
  char *big = pm_malloc(MiB);
  cr_assert_null(pm_realloc(big, 0));
  cr_assert_eq(snap().heap.large_frees, 1);
}

Test(alloc, reallocarray) {
  int *p = pm_reallocarray(NULL, 10, sizeof(int));
  for (int i = 0; i < 10; i++)
    p[i] = i;
  p = pm_reallocarray(p, 1000, sizeof(int));
  for (int i = 0; i < 10; i++)
    cr_assert_eq(p[i], i);
  errno = 0;
  cr_assert_null(pm_reallocarray(p, SIZE_MAX / 2, 4));
  cr_assert_eq(errno, ENOMEM);
  cr_assert_eq(p[9], 9, "the old block stays valid");
  pm_free(p);
}

/* ---- overflow ---- */

Test(alloc, overflow_returns_null_with_enomem) {
  void *keep = pm_malloc(100);
  struct {
    const char *what;
    void *(*fn)(size_t);
    size_t arg;
  } cases[] = {
      {"malloc(SIZE_MAX)", pm_malloc, SIZE_MAX},
      {"malloc(PTRDIFF_MAX + 1)", pm_malloc, (size_t)PTRDIFF_MAX + 1},
      {"malloc(SIZE_MAX - 16)", pm_malloc, SIZE_MAX - 16},
      {"valloc(SIZE_MAX)", pm_valloc, SIZE_MAX},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    errno = 0;
    cr_assert_null(cases[i].fn(cases[i].arg), "%s", cases[i].what);
    cr_assert_eq(errno, ENOMEM, "%s: errno %d", cases[i].what, errno);
  }
  errno = 0;
  cr_assert_null(pm_calloc(SIZE_MAX / 2, 3));
  cr_assert_eq(errno, ENOMEM);
  errno = 0;
  cr_assert_null(pm_calloc((size_t)1 << 32, (size_t)1 << 32));
  cr_assert_eq(errno, ENOMEM);
  errno = 0;
  cr_assert_null(pm_calloc(1, SIZE_MAX));
  cr_assert_eq(errno, ENOMEM);
  errno = 0;
  cr_assert_null(pm_memalign(64, SIZE_MAX));
  cr_assert_eq(errno, ENOMEM);
  errno = 0;
  cr_assert_null(pm_memalign(64, (size_t)PTRDIFF_MAX - 32));
  cr_assert_eq(errno, ENOMEM);
  errno = 0;
  cr_assert_null(pm_memalign(((size_t)1 << 63) + 1, 10), "alignment too large");
  cr_assert_eq(errno, EINVAL);
  fill(keep, 100, 9);
  errno = 0;
  cr_assert_null(pm_realloc(keep, SIZE_MAX));
  cr_assert_eq(errno, ENOMEM);
  cr_assert(check(keep, 100, 9), "a failed realloc keeps the block");
  char *big = pm_malloc(MiB);
  errno = 0;
  cr_assert_null(pm_realloc(big, (size_t)PTRDIFF_MAX + 1));
  cr_assert_eq(errno, ENOMEM);
  pm_free(big);
  pm_free(keep);
  cr_assert_eq(snap().fig.live_block_bytes, 0);
}

Test(alloc, errno_untouched_on_success) {
  errno = 4321;
  void *a = pm_malloc(10), *b = pm_malloc(MiB), *c = pm_calloc(10, 10),
       *d = pm_memalign(256, 10);
  void *e = NULL;
  cr_assert_eq(pm_posix_memalign(&e, MiB, 10), 0);
  a = pm_realloc(a, 3000);
  b = pm_realloc(b, 2 * MiB);
  pm_free(a);
  pm_free(b);
  pm_free(c);
  pm_free(d);
  pm_free(e);
  pm_free(NULL);
  cr_assert_eq(errno, 4321);
}

/* ---- counters ---- */

Test(alloc, class_counters_are_exact) {
  void *v[10];
  for (int i = 0; i < 10; i++)
    v[i] = pm_malloc(100 + (size_t)i);
  void *w = pm_malloc(3000);
  pm_snapshot s = snap();
  unsigned c = pm_class_of(100);
  cr_assert_eq(s.cls[c].allocs, 10);
  cr_assert_eq(s.cls[c].frees, 0);
  cr_assert_eq(s.cls[c].req_bytes, 10 * 100 + 45);
  cr_assert_eq(s.cls[pm_class_of(3000)].allocs, 1);
  cr_assert_eq(s.fig.live_block_bytes, 10 * 112 + pm_class_size(pm_class_of(3000)));
  cr_assert_eq(s.fig.pages_in_use, 2);
  cr_assert_eq(s.fig.region_committed, pm_arena_size());
  for (int i = 0; i < 5; i++)
    pm_free(v[i]);
  s = snap();
  cr_assert_eq(s.cls[c].frees, 5);
  cr_assert_eq(s.fig.live_block_bytes, 5 * 112 + pm_class_size(pm_class_of(3000)));
  cr_assert_eq(s.heap.fb_too_large + s.heap.fb_alignment + s.heap.fb_no_heap, 0);
  for (int i = 5; i < 10; i++)
    pm_free(v[i]);
  pm_free(w);
}

/* ---- page counts per class ---- */

static void expect_page_counts_agree(void) {
  pm_snapshot s = snap();
  uint64_t sum = 0;
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    sum += s.class_pages[c];
    cr_assert_leq(s.class_pages[c], s.class_pages_peak[c], "class %u", c);
  }
  cr_assert_eq(sum, s.fig.pages_in_use,
               "per-class page counts (%llu) vs pages in use (%llu)",
               (unsigned long long)sum, (unsigned long long)s.fig.pages_in_use);
  cr_assert_leq(s.fig.pages_in_use, s.fig.pages_peak);
}

Test(alloc, page_counts_per_class_and_peaks) {
  unsigned k1 = pm_class_of(1024), k2 = pm_class_of(2000);
  size_t n = 8 * 64;
  void **v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = pm_malloc(1024);
  pm_snapshot s = snap();
  cr_assert_eq(s.class_pages[k1], 8);
  cr_assert_eq(s.class_pages_peak[k1], 8);
  cr_assert_eq(s.fig.pages_peak, 8);
  expect_page_counts_agree();
  for (size_t i = 0; i < n; i++)
    pm_free(v[i]);
  s = snap();
  cr_assert_eq(s.class_pages[k1], 1, "the empty current page stays");
  cr_assert_eq(s.class_pages_peak[k1], 8);
  expect_page_counts_agree();
  for (size_t i = 0; i < 3 * 32; i++)
    v[i] = pm_malloc(2000);
  s = snap();
  cr_assert_eq(s.class_pages[k2], 3);
  cr_assert_eq(s.fig.pages_peak, 8, "reused pages do not raise the peak");
  expect_page_counts_agree();
  for (size_t i = 0; i < 3 * 32; i++)
    pm_free(v[i]);
  expect_page_counts_agree();
  free(v);
}

Test(alloc, get_totals) {
  void *a = pm_malloc(100), *b = pm_malloc(MiB);
  poolmalloc_totals t;
  memset(&t, 0xff, sizeof t);
  cr_assert_eq(pm_get_totals(&t, sizeof t), 0);
  cr_assert_eq(t.version, POOLMALLOC_TOTALS_VERSION);
  cr_assert_eq(t.size, sizeof t);
  if (PM_COUNTING) {
    cr_assert_eq(t.pooled_allocations, 1);
    cr_assert_eq(t.jemalloc_allocations, 1);
    cr_assert_eq(t.allocations, 2);
    cr_assert_eq(t.live_pool_bytes, 112);
  }
  cr_assert_eq(t.pool_pages, 1);
  cr_assert_eq(t.page_size, 64 * KiB);
  cr_assert_geq(t.jemalloc_bytes, MiB);
  /* an older, shorter struct: only its fields are written */
  unsigned char small[2 * sizeof(unsigned) + 8];
  memset(small, 0xab, sizeof small);
  cr_assert_eq(pm_get_totals((poolmalloc_totals *)(void *)small, 2 * sizeof(unsigned)),
               0);
  for (size_t i = 2 * sizeof(unsigned); i < sizeof small; i++)
    cr_assert_eq(small[i], 0xab);
  cr_assert_eq(((unsigned *)(void *)small)[1], 2 * sizeof(unsigned));
  cr_assert_eq(pm_get_totals(&t, 4), -1, "too small for version and size");
  cr_assert_eq(pm_get_totals(NULL, sizeof t), -1);
  pm_free(a);
  pm_free(b);
}
