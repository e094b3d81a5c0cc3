/* test_threads.c - what happens between threads: remote frees and their
 * collection, the full-page hint, pages abandoned by exiting threads and
 * adopted by later ones, heap recycling, and a cross-thread stress run that
 * checks every block's contents. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "heap.h"
#include "start.h"
#include "options.h"
#include "page.h"
#include "stats.h"
#include "routing_off.h"

static pm_snapshot snap(void) {
  if (!PM_COUNTING)
    cr_skip_test("built without POOLMALLOC_COUNTING: no counters to check");
  pm_snapshot s;
  pm_stats_snapshot(&s);
  return s;
}

/* the per-class page counts (kept on the slow paths) agree with a walk of
 * the page table */
static void expect_page_counts_agree(void) {
  pm_snapshot s = snap();
  uint64_t sum = 0;
  for (unsigned c = 0; c < PM_NCLASSES; c++)
    sum += s.class_pages[c];
  cr_assert_eq(sum, s.fig.pages_in_use,
               "per-class page counts (%llu) vs pages in use (%llu)",
               (unsigned long long)sum, (unsigned long long)s.fig.pages_in_use);
}

static void run(void *(*fn)(void *), void *arg) {
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, fn, arg), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
}

struct blocks {
  void **v;
  size_t n;
};

static void *free_all(void *arg) {
  struct blocks *b = arg;
  for (size_t i = 0; i < b->n; i++)
    pm_free(b->v[i]);
  return NULL;
}

/* ---- remote frees ---- */

Test(threads, remote_frees_come_back_through_the_slow_path) {
  void *first = pm_malloc(64);
  pm_page *pg = pm_page_of(first);
  size_t cap = pg->capacity;
  void **v = calloc(cap, sizeof *v);
  v[0] = first;
  for (size_t i = 1; i < cap; i++) {
    v[i] = pm_malloc(64);
    cr_assert_eq(pm_page_of(v[i]), pg);
  }
  cr_assert_eq(pm_page_count_used(pg), cap);
  cr_assert_null(pg->free);
  cr_assert_eq(pg->carved, cap);

  struct blocks b = {v, cap};
  run(free_all, &b);
  cr_assert_eq(pm_page_count_used(pg), cap,
               "remote frees are not counted until collected");
  cr_assert_not_null(atomic_load(&pg->remote));
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.remote_frees, cap);
  cr_assert_eq(s.cls[pm_class_of(64)].frees, cap);
  cr_assert_eq(s.threads_total, 1,
               "a thread that only frees another's blocks needs no heap (remote frees "
               "are counted where they are collected)");
  cr_assert_eq(s.fig.live_block_bytes, 0);

  void *q = pm_malloc(64);
  cr_assert_eq(q, v[cap - 1], "the last remote free comes back first");
  cr_assert_eq(pm_page_count_used(pg), 1);
  cr_assert_null(atomic_load(&pg->remote));
  for (size_t i = 1; i < cap; i++)
    cr_assert_eq(pm_page_of(pm_malloc(64)), pg);
  cr_assert_eq(snap().heap.pages_fresh, 1, "every block was reused, no second page");
  free(v);
}

/* A thread that only frees other threads' blocks (a consumer) gets no heap
 * and writes no counter: its frees are counted where the owner collects
 * them, while pending by the report's walk, and after the page is released
 * in the class totals. The counts stay exact through all three. (Before, it
 * was given a heap to count in; without one it made two atomic adds on
 * process-wide counters per free.) */
static void *free_all_heapless(void *arg) {
  struct blocks *b = arg;
  for (size_t i = 0; i < b->n; i++)
    pm_free(b->v[i]);
  return (void *)(uintptr_t)(pm_tls_heap == &pm_heap_empty);
}

Test(threads, remote_frees_counted_where_collected_by_a_thread_without_heap) {
  enum { N = 3000 };
  unsigned cls = pm_class_of(48);
  void **v = calloc(N, sizeof *v);
  for (size_t i = 0; i < N; i++)
    v[i] = pm_malloc(48);
  pm_snapshot s0 = snap();
  struct blocks b = {v, N};
  pthread_t t;
  void *heapless = NULL;
  cr_assert_eq(pthread_create(&t, NULL, free_all_heapless, &b), 0);
  cr_assert_eq(pthread_join(t, &heapless), 0);
  cr_assert((uintptr_t)heapless, "the freeing thread got a heap");
  pm_snapshot s = snap();
  cr_assert_eq(s.threads_total, 1);
  cr_assert_eq(s.heap.remote_frees, N, "pending: %llu",
               (unsigned long long)s.heap.remote_frees);
  cr_assert_eq(s.cls[cls].frees, s0.cls[cls].frees + N);
  cr_assert_eq(s.fig.live_block_bytes, 0);
  /* the owner collects them (and reuses every block) */
  for (size_t i = 0; i < N; i++)
    v[i] = pm_malloc(48);
  s = snap();
  cr_assert_eq(s.heap.remote_frees, N, "collected: %llu",
               (unsigned long long)s.heap.remote_frees);
  cr_assert_eq(s.cls[cls].allocs, s0.cls[cls].allocs + N);
  /* freed locally, the pages are released: the class totals keep them */
  for (size_t i = 0; i < N; i++)
    pm_free(v[i]);
  s = snap();
  cr_assert_geq(s.heap.pages_released, 1);
  cr_assert_eq(s.heap.remote_frees, N, "retired: %llu",
               (unsigned long long)s.heap.remote_frees);
  cr_assert_eq(s.cls[cls].frees, s.cls[cls].allocs);
  free(v);
}

Test(threads, remote_frees_into_a_full_page_release_it) {
  void *first = pm_malloc(64);
  pm_page *pg = pm_page_of(first);
  size_t cap = pg->capacity;
  void **v = calloc(cap, sizeof *v);
  v[0] = first;
  for (size_t i = 1; i < cap; i++)
    v[i] = pm_malloc(64);
  void *extra = pm_malloc(64); /* retires the first page to the full list */
  cr_assert_neq(pm_page_of(extra), pg);
  cr_assert_eq(pg->where, PM_IN_FULL);
  cr_assert_eq(atomic_load(&pg->full), 1);
  pm_heap *h = pm_tls_heap;
  cr_assert_eq(h->nfull, 1);

  struct blocks b = {v, cap};
  run(free_all, &b);
  cr_assert_eq(atomic_load(&h->remote_full_hint), 1,
               "a remote free into a full page raises the hint");
  cr_assert_eq(pg->state, PM_PAGE_IN_USE);

  /* any slow path of the owner looks at the full list: the emptied page is
   * released, and here at once reused by the class that needed a page */
  void *other = pm_malloc(5000);
  cr_assert_eq(atomic_load(&h->remote_full_hint), 0);
  cr_assert_eq(h->nfull, 0);
  cr_assert_null(atomic_load(&pg->remote));
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_released, 1, "the emptied full page was released");
  cr_assert_eq(s.heap.pages_reused, 1);
  cr_assert_eq(s.heap.pages_fresh, 2);
  cr_assert_eq(pm_page_of(other), pg, "and serves the next class that needs a page");
  cr_assert_eq(pg->cls, pm_class_of(5000));
  cr_assert_eq(pm_page_count_used(pg), 1);
  cr_assert_eq(s.fig.pages_in_use, 2);
  pm_free(extra);
  pm_free(other);
  free(v);
  expect_page_counts_agree();
}

Test(threads, remote_frees_into_a_partly_used_page) {
  /* blocks freed remotely while the owner keeps freeing locally */
  enum { N = 100 };
  void *v[N];
  for (int i = 0; i < N; i++)
    v[i] = pm_malloc(500);
  pm_page *pg = pm_page_of(v[0]);
  struct blocks b = {v, N / 2};
  run(free_all, &b);
  for (int i = N / 2; i < N; i++)
    pm_free(v[i]);
  cr_assert_eq(pm_page_count_used(pg), N / 2,
               "the local frees are counted, the remote ones not yet");
  cr_assert_eq(snap().fig.live_block_bytes, 0);
  /* draining the local list then collects the remote one */
  void *w[N];
  for (int i = 0; i < N; i++) {
    w[i] = pm_malloc(500);
    cr_assert_eq(pm_page_of(w[i]), pg);
  }
  cr_assert_null(atomic_load(&pg->remote));
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < i; j++)
      cr_assert_neq(w[i], w[j]);
    pm_free(w[i]);
  }
  cr_assert_eq(pm_page_count_used(pg), 0);
}

/* The remote list's head word carries the list's length: the owner takes a
 * list into an empty free list without walking it, and walks it only to
 * splice it behind blocks it already has or when the length saturated. */
Test(threads, the_remote_list_head_counts_its_blocks) {
  enum { N = 12 };
  void *v[N];
  for (int i = 0; i < N; i++)
    v[i] = pm_malloc(96);
  pm_page *pg = pm_page_of(v[0]);
  for (int i = 1; i < N; i++)
    cr_assert_eq(pm_page_of(v[i]), pg);
  struct blocks b = {v, 5};
  run(free_all, &b);
  pm_block *w = atomic_load(&pg->remote);
  cr_assert_eq(pm_remote_length(w), 5, "five remote frees, five in the head word");
  cr_assert_eq(pm_remote_first(w), (pm_block *)v[4], "the newest block first");
  cr_assert_eq(pm_page_count_remote(pg), 5);
  /* the free list holds blocks (the rest of the carved chunk, and a local
   * free): collecting must splice, and count by walking */
  pm_free(v[5]);
  uint32_t used = pm_page_count_used(pg);
  cr_assert_eq(pm_page_collect(pg), 5);
  cr_assert_eq(pm_page_count_used(pg), used - 5);
  /* a saturated count: the owner walks the list for the real one */
  b = (struct blocks){v + 6, 3};
  run(free_all, &b);
  w = atomic_load(&pg->remote);
  cr_assert_eq(pm_remote_length(w), 3);
  atomic_store(&pg->remote, (pm_block *)((uintptr_t)pm_remote_first(w) |
                                         (uintptr_t)PM_REMOTE_MAX << PM_REMOTE_SHIFT));
  cr_assert_eq(pm_page_count_remote(pg), 3, "past the count, the walk counts");
  used = pm_page_count_used(pg);
  cr_assert_eq(pm_page_collect(pg), 3);
  cr_assert_eq(pm_page_count_used(pg), used - 3);
  cr_assert_eq(pm_remote_length(pm_remote_push(w, v[9])), 4);
  cr_assert_eq(pm_remote_length(pm_remote_push(
                   (pm_block *)((uintptr_t)PM_REMOTE_MAX << PM_REMOTE_SHIFT), v[9])),
               PM_REMOTE_MAX, "the count saturates");
  /* every block comes back once: the lists were joined correctly */
  for (int i = 9; i < N; i++)
    pm_free(v[i]);
  cr_assert_eq(pm_page_count_used(pg), 0);
  void *u[N];
  for (int i = 0; i < N; i++) {
    u[i] = pm_malloc(96);
    cr_assert_eq(pm_page_of(u[i]), pg);
    for (int j = 0; j < i; j++)
      cr_assert_neq(u[i], u[j]);
  }
  for (int i = 0; i < N; i++)
    pm_free(u[i]);
}

/* ---- abandoned pages ---- */

struct leave {
  void *live[7];
  void *freed[3];
};

static void *leave_blocks(void *arg) {
  struct leave *l = arg;
  for (int i = 0; i < 3; i++)
    l->freed[i] = pm_malloc(64);
  for (int i = 0; i < 7; i++)
    l->live[i] = pm_malloc(64);
  for (int i = 0; i < 3; i++)
    pm_free(l->freed[i]);
  return NULL;
}

struct adopted {
  void *p;
  pm_heap *heap, *owner;
};

static void *adopt_one(void *arg) {
  struct adopted *a = arg;
  a->p = pm_malloc(64);
  a->heap = pm_tls_heap;
  a->owner = atomic_load(&pm_page_of(a->p)->owner);
  return NULL;
}

Test(threads, abandoned_pages_are_adopted) {
  struct leave l;
  run(leave_blocks, &l);
  pm_page *pg = pm_page_of(l.live[0]);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_abandoned, 1);
  cr_assert_eq(s.threads_live, 0);
  cr_assert_eq(s.threads_total, 1);
  cr_assert_null(atomic_load(&pg->owner), "an abandoned page has no owner");
  cr_assert_eq(pg->state, PM_PAGE_IN_USE);
  cr_assert_eq(pm_page_count_used(pg), 7);
  cr_assert_eq(s.fig.pages_in_use, 1);

  struct adopted a;
  run(adopt_one, &a);
  cr_assert_eq(pm_page_of(a.p), pg, "the next thread adopts the page instead of carving");
  cr_assert_eq(a.p, l.freed[2], "and reuses its free blocks first");
  cr_assert_eq(a.owner, a.heap);
  s = snap();
  cr_assert_gt(s.heap.pages_adopted, 0);
  cr_assert_eq(s.heap.pages_adopted, 1);
  cr_assert_eq(s.heap.pages_fresh, 1);
  cr_assert_eq(s.heap.pages_abandoned, 2, "abandoned again when the adopter exits");
  cr_assert_eq((uint64_t)pm_heap_count(), 1, "the exited thread's heap was recycled");

  /* free everything from here (remote frees into an ownerless page): the
   * next adoption finds the page empty and releases it */
  for (int i = 0; i < 7; i++)
    pm_free(l.live[i]);
  pm_free(a.p);
  cr_assert_eq(pm_page_count_used(pg), 8);
  void *p = pm_malloc(64);
  s = snap();
  cr_assert_eq(s.heap.pages_adopted, 2);
  cr_assert_eq(s.heap.pages_released, 1);
  cr_assert_eq(s.heap.pages_fresh, 1);
  cr_assert_eq(pm_page_of(p), pg, "the released page is reused");
  cr_assert_eq(s.fig.live_block_bytes, 64);
  expect_page_counts_agree();
}

struct pages4 {
  void *v[4 * 64];
};

static void *four_pages(void *arg) {
  struct pages4 *f = arg;
  for (int i = 0; i < 4 * 64; i++)
    f->v[i] = pm_malloc(1024);
  for (int i = 64; i < 128; i++)
    pm_free(f->v[i]); /* empties the second page */
  for (int i = 128; i < 160; i++)
    pm_free(f->v[i]); /* half of the third */
  return NULL;
}

Test(threads, thread_exit_releases_or_abandons_every_page) {
  struct pages4 f;
  run(four_pages, &f);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_fresh, 4);
  cr_assert_eq(s.heap.pages_released, 1);
  cr_assert_eq(s.heap.pages_abandoned, 3);
  cr_assert_eq(s.fig.pages_in_use, 3);
  cr_assert_eq(s.pages_free_cached, 0, "the page cache is flushed at thread exit");
  for (int i = 0; i < 64; i++)
    pm_free(f.v[i]);
  for (int i = 160; i < 256; i++)
    pm_free(f.v[i]);
  cr_assert_eq(snap().fig.live_block_bytes, 0);
  /* one slow path adopts all three; each turns out empty and is released */
  void *p = pm_malloc(1024);
  s = snap();
  cr_assert_eq(s.heap.pages_adopted, 3);
  cr_assert_eq(s.heap.pages_released, 4);
  cr_assert_eq(s.heap.pages_fresh, 4);
  cr_assert_eq(s.fig.pages_in_use, 1);
  pm_free(p);
  expect_page_counts_agree();
}

static void *alloc_and_free(void *arg) {
  (void)arg;
  void *v[300];
  for (int i = 0; i < 300; i++)
    v[i] = pm_malloc(256);
  for (int i = 0; i < 300; i++)
    pm_free(v[i]);
  return NULL;
}

Test(threads, sequential_threads_recycle_one_heap_and_its_pages) {
  for (int i = 0; i < 50; i++)
    run(alloc_and_free, NULL);
  pm_snapshot s = snap();
  cr_assert_eq((uint64_t)pm_heap_count(), 1);
  cr_assert_eq(s.threads_total, 50);
  cr_assert_eq(s.threads_peak, 1);
  cr_assert_eq(s.threads_live, 0);
  cr_assert_eq(s.heap.pages_abandoned, 0, "nothing was left live");
  cr_assert_eq(s.heap.pages_fresh, 2,
               "300 blocks of 256 need two pages, reused by every thread");
  cr_assert_eq(s.fig.pages_in_use, 0);
  cr_assert_eq(s.cls[pm_class_of(256)].allocs, 50 * 300);
  cr_assert_eq(s.cls[pm_class_of(256)].frees, 50 * 300);
  expect_page_counts_agree();
}

/* ---- concurrent threads ---- */

#define NT 4
#define PER 20000

static pthread_barrier_t barrier;

struct worker {
  int id;
  void *v[PER];
  size_t sz[PER];
  struct worker *peer;
  int bad;
};

static size_t size_of(int id, int i) {
  uint32_t x = (uint32_t)(id * 2654435761u) ^ (uint32_t)i * 40503u;
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  return x % 3 == 0 ? x % 2000 : x % 300;
}

static void *disjoint_worker(void *arg) {
  struct worker *w = arg;
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < PER; i++) {
    w->sz[i] = size_of(w->id, i);
    w->v[i] = pm_malloc(w->sz[i]);
    memset(w->v[i], w->id + 1, w->sz[i]);
  }
  pthread_barrier_wait(&barrier); /* everybody has everything */
  for (int i = 0; i < PER; i++) {
    const unsigned char *c = w->v[i];
    for (size_t k = 0; k < w->sz[i]; k++)
      if (c[k] != w->id + 1) w->bad++;
  }
  pthread_barrier_wait(&barrier);
  /* free the peer's blocks: remote frees in both directions at once */
  for (int i = 0; i < PER; i++)
    pm_free(w->peer->v[i]);
  pthread_barrier_wait(&barrier);
  /* allocate again: the slow paths collect what the peer freed */
  for (int i = 0; i < PER; i++)
    w->v[i] = pm_malloc(w->sz[i]);
  for (int i = 0; i < PER; i++)
    pm_free(w->v[i]);
  return NULL;
}

Test(threads, concurrent_threads_get_disjoint_blocks, .timeout = 60) {
  static struct worker w[NT];
  pthread_t t[NT];
  pthread_barrier_init(&barrier, NULL, NT);
  for (int i = 0; i < NT; i++) {
    w[i].id = i;
    w[i].peer = &w[(i + 1) % NT];
    w[i].bad = 0;
  }
  for (int i = 0; i < NT; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, disjoint_worker, &w[i]), 0);
  for (int i = 0; i < NT; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < NT; i++)
    cr_assert_eq(w[i].bad, 0, "thread %d found %d bytes overwritten", i, w[i].bad);
  pm_snapshot s = snap();
  cr_assert_eq(s.threads_peak, NT);
  cr_assert_eq((uint64_t)pm_heap_count(), NT);
  cr_assert_eq(s.heap.remote_frees, NT * PER);
  cr_assert_eq(s.fig.live_block_bytes, 0);
  uint64_t allocs = 0, frees = 0;
  for (unsigned c = 0; c < PM_NCLASSES; c++)
    allocs += s.cls[c].allocs, frees += s.cls[c].frees;
  cr_assert_eq(allocs, 2 * NT * PER);
  cr_assert_eq(frees, 2 * NT * PER);
  expect_page_counts_agree();
}

/* producer/consumer through a small ring: every block is freed by a thread
 * that did not allocate it, and its contents are checked on the way */
#define RING 256
#define ITEMS 100000

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  void *slot[RING];
  size_t head, tail;
  int bad;
} ring = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0};

static void *producer(void *arg) {
  (void)arg;
  for (uint32_t i = 0; i < ITEMS; i++) {
    size_t n = 8 + (i * 2654435761u) % 700;
    uint32_t *p = pm_malloc(n);
    p[0] = i;
    p[1] = (uint32_t)n;
    memset((char *)p + 8, (int)(i & 0xff), n - 8);
    pthread_mutex_lock(&ring.lock);
    while (ring.head - ring.tail == RING)
      pthread_cond_wait(&ring.cond, &ring.lock);
    ring.slot[ring.head++ % RING] = p;
    pthread_cond_broadcast(&ring.cond);
    pthread_mutex_unlock(&ring.lock);
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  for (uint32_t i = 0; i < ITEMS; i++) {
    pthread_mutex_lock(&ring.lock);
    while (ring.head == ring.tail)
      pthread_cond_wait(&ring.cond, &ring.lock);
    uint32_t *p = ring.slot[ring.tail++ % RING];
    pthread_cond_broadcast(&ring.cond);
    pthread_mutex_unlock(&ring.lock);
    size_t n = p[1];
    if (p[0] != i || n != 8 + (i * 2654435761u) % 700) ring.bad++;
    for (size_t k = 8; k < n; k++)
      if (((unsigned char *)p)[k] != (i & 0xff)) {
        ring.bad++;
        break;
      }
    pm_free(p);
    /* the consumer allocates too, so it owns pages of its own */
    pm_free(pm_malloc(n));
  }
  return NULL;
}

Test(threads, producer_consumer_contents_survive, .timeout = 60) {
  pthread_t p, c;
  pthread_create(&p, NULL, producer, NULL);
  pthread_create(&c, NULL, consumer, NULL);
  pthread_join(p, NULL);
  pthread_join(c, NULL);
  cr_assert_eq(ring.bad, 0);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.remote_frees, ITEMS);
  cr_assert_eq(s.fig.live_block_bytes, 0);
  /* pages hold no live block: a new thread adopting or reusing them must
   * not need more fresh pages than the run had */
  uint64_t fresh = s.heap.pages_fresh;
  run(alloc_and_free, NULL);
  cr_assert_eq(snap().heap.pages_fresh, fresh);
  expect_page_counts_agree();
}

/* ---- pages that are full when their thread exits ---- */

static void *fill_one_page(void *arg) {
  void **v = arg;
  for (int i = 0; i < 64; i++)
    v[i] = pm_malloc(1024); /* exactly one 64 KiB page */
  return NULL;
}

static void *adopt_one_1024(void *arg) {
  struct adopted *a = arg;
  a->p = pm_malloc(1024);
  a->heap = pm_tls_heap;
  a->owner = atomic_load(&pm_page_of(a->p)->owner);
  return NULL;
}

Test(threads, full_pages_of_exited_threads_wait_for_a_remote_free) {
  void *v[64];
  run(fill_one_page, v);
  pm_page *pg = pm_page_of(v[0]);
  for (int i = 1; i < 64; i++)
    cr_assert_eq(pm_page_of(v[i]), pg);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_abandoned, 1);
  cr_assert_null(atomic_load(&pg->owner));
  cr_assert_eq(pm_page_count_used(pg), 64);

  /* nothing to give: a new thread does not take it */
  struct adopted a;
  run(adopt_one_1024, &a);
  cr_assert_neq(pm_page_of(a.p), pg);
  cr_assert_eq(snap().heap.pages_adopted, 0);

  /* the first remote free makes it adoptable again */
  pm_free(v[10]);
  pm_free(v[20]);
  struct adopted b;
  run(adopt_one_1024, &b);
  cr_assert_eq(pm_page_of(b.p), pg, "the page with freed blocks is adopted");
  cr_assert_eq(b.p, v[20]);
  cr_assert_eq(snap().heap.pages_adopted, 1);
  cr_assert_eq(snap().heap.pages_fresh, 2);
  expect_page_counts_agree();
}

struct two_classes {
  void *a[3], *b[3];
};

static void *two_classes_leave_one(void *arg) {
  struct two_classes *t = arg;
  for (int i = 0; i < 3; i++)
    t->a[i] = pm_malloc(1024), t->b[i] = pm_malloc(2048);
  for (int i = 1; i < 3; i++)
    pm_free(t->a[i]), pm_free(t->b[i]);
  return NULL;
}

static void *alloc_both(void *arg) {
  void **out = arg;
  out[0] = pm_malloc(1024);
  out[1] = pm_malloc(2048);
  return NULL;
}

Test(threads, adoption_takes_pages_of_other_classes_too) {
  struct two_classes t;
  run(two_classes_leave_one, &t);
  cr_assert_eq(snap().heap.pages_abandoned, 2);
  void *out[2];
  run(alloc_both, out);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_adopted, 2, "one slow path takes both abandoned pages");
  cr_assert_eq(s.heap.pages_fresh, 2, "no fresh page for either class");
  cr_assert_eq(pm_page_of(out[0]), pm_page_of(t.a[0]));
  cr_assert_eq(pm_page_of(out[1]), pm_page_of(t.b[0]));
  expect_page_counts_agree();
}

Test(threads, many_full_pages_are_scanned_a_step_at_a_time) {
  enum { PAGES = 130, N = 2 * PAGES };
  static void *v[N];
  for (int i = 0; i < N; i++)
    v[i] = pm_malloc(32 * 1024);     /* two per page */
  void *last = pm_malloc(32 * 1024); /* retires the last full page */
  pm_heap *h = pm_tls_heap;
  cr_assert_eq(h->nfull, PAGES);
  struct blocks b = {v, N};
  run(free_all, &b);
  cr_assert_eq(atomic_load(&h->remote_full_hint), 1);
  /* each slow path looks at no more than 64 full pages */
  static const size_t new_class[] = {16, 48, 80};
  static const uint64_t released[] = {64, 128, 130};
  for (int k = 0; k < 3; k++) {
    pm_free(pm_malloc(new_class[k]));
    cr_assert_eq(snap().heap.pages_released, released[k], "after slow path %d: %llu",
                 k + 1, (unsigned long long)snap().heap.pages_released);
    cr_assert_eq(h->nfull, PAGES - released[k]);
  }
  pm_free(last);
  cr_assert_eq(snap().fig.live_block_bytes, 0);
  expect_page_counts_agree();
}

/* ---- fork ---- */

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fork_cond = PTHREAD_COND_INITIALIZER;
static int fork_stage;
static void *fork_blocks[100];

static void *hold_blocks_until_told(void *arg) {
  (void)arg;
  for (int i = 0; i < 100; i++) {
    fork_blocks[i] = pm_malloc(200);
    memset(fork_blocks[i], 0x5c, 200);
  }
  pthread_mutex_lock(&fork_lock);
  fork_stage = 1;
  pthread_cond_broadcast(&fork_cond);
  while (fork_stage != 2)
    pthread_cond_wait(&fork_cond, &fork_lock);
  pthread_mutex_unlock(&fork_lock);
  for (int i = 0; i < 100; i++)
    pm_free(fork_blocks[i]);
  return NULL;
}

Test(threads, fork_child_frees_the_blocks_of_a_thread_it_does_not_have) {
  void *mine = pm_malloc(200);
  pthread_t t;
  pthread_create(&t, NULL, hold_blocks_until_told, NULL);
  pthread_mutex_lock(&fork_lock);
  while (fork_stage != 1)
    pthread_cond_wait(&fork_cond, &fork_lock);
  pthread_mutex_unlock(&fork_lock);

  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int bad = 0;
    pm_snapshot s;
    pm_stats_snapshot(&s);
    if (s.threads_live != 1) bad |= 1;
    for (int i = 0; i < 100; i++) {
      const unsigned char *c = fork_blocks[i];
      for (int k = 16; k < 200; k++)
        bad |= (c[k] != 0x5c) << 1;
      if (i % 2)
        pm_free(fork_blocks[i]);
      else
        fork_blocks[i] = pm_realloc(fork_blocks[i], 5000);
    }
    static void *v[5000];
    for (int i = 0; i < 5000; i++)
      memset(v[i] = pm_malloc(200), i & 0xff, 200);
    for (int i = 0; i < 5000; i++) {
      for (int k = 0; k < 200; k++)
        bad |= (((unsigned char *)v[i])[k] != (i & 0xff)) << 2;
      pm_free(v[i]);
    }
    pm_free(mine);
    _exit(bad);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  pthread_mutex_lock(&fork_lock);
  fork_stage = 2;
  pthread_cond_broadcast(&fork_cond);
  pthread_mutex_unlock(&fork_lock);
  pthread_join(t, NULL);
  cr_assert(WIFEXITED(status), "child died: status %#x", status);
  cr_assert_eq(WEXITSTATUS(status), 0, "child found problems: %#x", WEXITSTATUS(status));
  pm_free(mine);
}
