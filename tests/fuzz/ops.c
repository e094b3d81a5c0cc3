/* ops.c - random-operation fuzzer for the pm_ core.
 *
 * Drives every allocation entry point of the core - pm_malloc, pm_calloc,
 * pm_realloc, pm_reallocarray, pm_memalign, pm_posix_memalign,
 * pm_aligned_alloc, pm_valloc, pm_pvalloc, pm_free, pm_usable_size, and now
 * and then pm_malloc_trim and pm_mallinfo2 - with random sizes and
 * alignments, fills every block (up to its usable size) with a pattern
 * derived from its own seed and checks the pattern whenever the block is
 * read, reallocated or freed, so an overlap, a lost realloc copy or a block
 * handed out twice is noticed. Also checks alignment, usable size, calloc
 * zeroing, the pool/jemalloc split and the error paths (overflowing sizes,
 * bad alignments: NULL or EINVAL/ENOMEM, the old block left intact).
 *
 * Two builds:
 *   plain (any compiler): `fuzz_ops [--seed N] [--ops N] [--seconds S]
 *     [--threads T] [--generations G]`; deterministic for one thread and a
 *     given seed. With T > 1 the threads also swap blocks through a shared
 *     exchange, so blocks are reallocated and freed by threads that do not
 *     own them; with G > 1 the threads exit G - 1 times and new ones carry
 *     on with the blocks they left (abandoned pages, adoption).
 *   libFuzzer (-DPM_LIBFUZZER, clang -fsanitize=fuzzer,address,undefined):
 *     each input is an operation stream (every decision takes the next one
 *     to eight bytes of it, then a generator seeded from its tail carries
 *     on); every block is freed at the end of the input.
 *
 * Never links libpoolmalloc.so: the harness itself keeps glibc's malloc. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "glibc_compat.h"
#include "options.h"
#include "arena.h"
#include "sizeclass.h"
#include "os.h"
#include "stats.h"

#define SLOTS 1024
#define FULL_CHECK_MAX (64 * 1024) /* larger blocks: head and tail only */
#define EDGE 512

typedef struct slot {
  unsigned char *p;
  size_t size;   /* requested */
  size_t usable; /* pm_usable_size when allocated: the pattern covers it */
  size_t align;
  uint32_t seed;
} slot;

static void fail(const char *what, const slot *s, const char *detail) {
  fprintf(stderr, "fuzz_ops: %s: block %p size %zu align %zu seed %u: %s\n", what,
          s ? (void *)s->p : NULL, s ? s->size : 0, s ? s->align : 0, s ? s->seed : 0,
          detail);
  abort();
}

static inline unsigned char pat(uint32_t seed, size_t i) {
  return (unsigned char)((seed >> (i & 7)) + i * 131u + (i >> 8));
}

/* The bytes of a block that carry its pattern: all usable bytes of a block
 * up to FULL_CHECK_MAX, else the first EDGE bytes and the EDGE bytes at
 * the end of the request plus up to EDGE bytes of slack after it. */
typedef struct range {
  size_t from, to;
} range;

static int pattern_ranges(const slot *s, range r[2]) {
  size_t slack = s->usable - s->size;
  if (s->size <= FULL_CHECK_MAX) {
    r[0] =
        (range){0, s->usable <= FULL_CHECK_MAX ? s->usable
                                               : s->size + (slack < EDGE ? slack : EDGE)};
    return 1;
  }
  r[0] = (range){0, EDGE};
  r[1] = (range){s->size - EDGE, s->size + (slack < EDGE ? slack : EDGE)};
  return 2;
}

static void fill(slot *s) {
  range r[2];
  int n = pattern_ranges(s, r);
  for (int k = 0; k < n; k++)
    for (size_t i = r[k].from; i < r[k].to; i++)
      s->p[i] = pat(s->seed, i);
}

/* checks the pattern of s in its ranges, below `upto` (SIZE_MAX: all) */
static void check(const slot *s, size_t upto, const char *when) {
  range r[2];
  int n = pattern_ranges(s, r);
  for (int k = 0; k < n; k++)
    for (size_t i = r[k].from; i < r[k].to && i < upto; i++)
      if (s->p[i] != pat(s->seed, i)) {
        char d[96];
        snprintf(d, sizeof d, "byte %zu is %#x, want %#x", i, s->p[i], pat(s->seed, i));
        fail(when, s, d);
      }
}

/* ---- random numbers: xorshift64*, one state per thread ---- */

typedef struct rng {
  uint64_t x;
  const uint8_t *data; /* libFuzzer input, consumed before the generator */
  size_t len;
} rng;

static uint64_t next64(rng *r) {
  if (r->len >= 8) {
    uint64_t v;
    memcpy(&v, r->data, 8);
    r->data += 8;
    r->len -= 8;
    return v;
  }
  if (r->len > 0) { /* fold the last bytes in, then run on the generator */
    for (; r->len; r->len--)
      r->x = r->x * 31 + *r->data++;
  }
  r->x ^= r->x >> 12;
  r->x ^= r->x << 25;
  r->x ^= r->x >> 27;
  return r->x * 0x2545F4914F6CDD1Dull;
}

/* a number below n; from the libFuzzer input, as few bytes as n needs */
static size_t below(rng *r, size_t n) {
  if (n == 0) return 0;
  if (r->len > 0) {
    size_t want = n <= 0x100 ? 1 : n <= 0x10000 ? 2 : n <= 0x100000000ull ? 4 : 8;
    if (r->len >= want) {
      uint64_t v = 0;
      for (size_t i = 0; i < want; i++)
        v = v << 8 | r->data[i];
      r->data += want;
      r->len -= want;
      return (size_t)(v % n);
    }
  }
  return (size_t)(next64(r) % n);
}

static uint32_t next32(rng *r) {
  return (uint32_t)below(r, 0x100000000ull);
}

/* mostly small, sometimes around class and page edges, rarely large */
static size_t random_size(rng *r) {
  size_t k = below(r, 100);
  if (k < 55) return below(r, 257);
  if (k < 80) return below(r, 4097);
  if (k < 90) return below(r, 40000);
  if (k < 96) { /* just around a class boundary */
    size_t c = pm_class_size((unsigned)below(r, PM_NCLASSES - 16));
    return c - 2 + below(r, 5);
  }
  if (k < 99) return 30000 + below(r, 5000); /* around the default MAX_POOLED */
  return below(r, 2 << 20);
}

static size_t random_align(rng *r) {
  size_t k = below(r, 100);
  if (k < 85) return (size_t)1 << below(r, 13);       /* 1 .. 4096 */
  if (k < 97) return (size_t)1 << (13 + below(r, 3)); /* 8K .. 32K */
  return (size_t)1 << (16 + below(r, 5));             /* 64K .. 1M */
}

/* ---- one operation ---- */

typedef struct stats {
  uint64_t ops, mallocs, callocs, reallocs, aligned, frees, swaps, errors;
} stats;

/* pool_expected: a request this small (and not over-aligned) must be pooled */
static void after_alloc(slot *s, const char *what, bool pool_expected) {
  if (s->p == NULL) fail(what, s, "returned NULL");
  size_t a = s->align > PM_MIN_ALIGN ? s->align : PM_MIN_ALIGN;
  if (a & (a - 1)) a = (size_t)1 << (64 - __builtin_clzl(a)); /* memalign rounds up */
  if ((uintptr_t)s->p % a) fail(what, s, "misaligned");
  size_t usable = pm_usable_size(s->p);
  if (usable < s->size) fail(what, s, "usable size below the request");
  s->usable = usable;
  if (pm_is_pool_ptr(s->p)) {
    if (usable != pm_class_size(pm_class_of(usable)))
      fail(what, s, "usable size not a class size");
    if (s->size > pm_g.max_pooled)
      fail(what, s, "request above MAX_POOLED served from a pool");
  } else if (pool_expected && !pm_opt.lifetime && s->size <= pm_g.max_pooled &&
             pm_g.size != 0) { /* lifetime routing sends samples to jemalloc */
    fail(what, s, "a poolable request went to jemalloc");
  }
}

static void release(slot *s, stats *st) {
  if (s->p == NULL) return;
  check(s, SIZE_MAX, "free");
  pm_free(s->p);
  s->p = NULL;
  st->frees++;
}

static void do_alloc(rng *r, slot *s, stats *st) {
  size_t k = below(r, 12);
  s->seed = next32(r);
  s->align = 0;
  if (k < 5) {
    s->size = random_size(r);
    s->p = pm_malloc(s->size);
    after_alloc(s, "malloc", true);
    st->mallocs++;
  } else if (k < 7) {
    size_t n = 1 + below(r, 16), each = random_size(r) / n;
    s->size = n * each;
    s->p = pm_calloc(n, each);
    after_alloc(s, "calloc", true);
    size_t upto = s->size <= FULL_CHECK_MAX ? s->size : EDGE;
    for (size_t i = 0; i < upto; i++)
      if (s->p[i] != 0) fail("calloc", s, "not zeroed");
    st->callocs++;
  } else if (k < 10) {
    s->align = random_align(r);
    s->size = random_size(r);
    if (k == 7) {
      if (below(r, 8) == 0) s->align += 1 + below(r, s->align); /* not a power of two */
      s->p = pm_memalign(s->align, s->size);
      after_alloc(s, "memalign", s->align <= PM_MIN_ALIGN);
    } else if (k == 8) {
      void *p = NULL;
      if (s->align < sizeof(void *)) s->align = sizeof(void *);
      int rc = pm_posix_memalign(&p, s->align, s->size);
      if (rc != 0) fail("posix_memalign", s, strerror(rc));
      s->p = p;
      after_alloc(s, "posix_memalign", s->align <= PM_MIN_ALIGN);
    } else {
      s->p = pm_aligned_alloc(s->align, s->size);
      after_alloc(s, "aligned_alloc", s->align <= PM_MIN_ALIGN);
    }
    st->aligned++;
  } else {
    size_t page = pm_os_page_size();
    s->align = page;
    s->size = random_size(r);
    if (k == 10) {
      s->p = pm_valloc(s->size);
      after_alloc(s, "valloc", false);
    } else {
      s->p = pm_pvalloc(s->size);
      after_alloc(s, "pvalloc", false);
      size_t rounded = s->size ? (s->size + page - 1) & ~(page - 1) : page;
      if (s->usable < rounded)
        fail("pvalloc", s, "usable size below the rounded request");
    }
    st->aligned++;
  }
  fill(s);
}

static void do_realloc(rng *r, slot *s, stats *st) {
  size_t old = s->size, size = random_size(r);
  if (below(r, 4) == 0)
    size = old + below(r, 64) - (old >= 32 ? 32 : old); /* near the old size */
  check(s, SIZE_MAX, "before realloc");
  slot before = *s;
  size_t old_usable = pm_usable_size(s->p);
  if (old_usable != s->usable) fail("usable size", s, "changed while the block was live");
  unsigned char *q;
  if (below(r, 4) == 0) { /* as n elements */
    size_t n = 1 + below(r, 8);
    size = size / n * n;
    q = pm_reallocarray(s->p, n, size / n);
  } else {
    q = pm_realloc(s->p, size);
  }
  if (size == 0 && q == NULL) { /* glibc: freed */
    s->p = NULL;
    st->frees++;
    return;
  }
  if (q == NULL) fail("realloc", s, "returned NULL");
  /* the kept prefix must match what the old block held */
  slot kept = before;
  kept.p = q;
  check(&kept, old < size ? old : size, "realloc lost the contents");
  s->p = q;
  s->size = size;
  s->align = 0;
  /* a pool block stays in the pools, and so does a large block shrunk to
   * pool size; a small jemalloc block (an over-aligned one) may stay */
  bool was_large = !pm_is_pool_ptr(before.p) && old_usable > pm_g.max_pooled;
  if (!pm_is_pool_ptr(q) && size <= pm_g.max_pooled && !pm_opt.lifetime &&
      (pm_is_pool_ptr(before.p) || was_large)) {
    char d[160];
    snprintf(d, sizeof d, "from %p (%s, size %zu, usable %zu)", (void *)before.p,
             pm_is_pool_ptr(before.p) ? "pool" : "jemalloc", old, old_usable);
    fail("realloc: a poolable request stayed in jemalloc", s, d);
  }
  after_alloc(s, "realloc", false);
  fill(s);
  st->reallocs++;
}

/* sizes no allocation can satisfy */
static size_t impossible_size(rng *r) {
  static const size_t sizes[] = {SIZE_MAX,
                                 SIZE_MAX - 4095,
                                 SIZE_MAX / 2 + 1,
                                 (size_t)PTRDIFF_MAX,
                                 (size_t)PTRDIFF_MAX - 15,
                                 (size_t)1 << 50};
  return sizes[below(r, sizeof sizes / sizeof sizes[0])];
}

static void expect_enomem(const char *what, const void *p, slot *s) {
  if (p != NULL) fail(what, s, "an impossible request succeeded");
  if (errno != ENOMEM) fail(what, s, "errno is not ENOMEM");
}

/* calls that must fail, or do nothing, and leave every block intact; s is
 * a live block or NULL */
static void do_error(rng *r, slot *s, stats *st) {
  void *p, *out = (void *)&out;
  size_t k = below(r, 12);
  errno = 0;
  switch (k) {
  case 0:
    p = pm_malloc(impossible_size(r));
    expect_enomem("malloc", p, NULL);
    break;
  case 1: { /* n * size overflows, or the product is impossible */
    size_t n = (size_t)2 << below(r, 62), size = SIZE_MAX / n + 1 + below(r, 1000);
    if (below(r, 2)) n = 1, size = impossible_size(r);
    p = pm_calloc(n, size);
    expect_enomem("calloc", p, NULL);
    break;
  }
  case 2: { /* below sizeof(void *) or not a power of two */
    static const size_t bad[] = {0, 1, 2, 4, 12, 24, 48, 96, 4097, 65535, SIZE_MAX};
    int rc = pm_posix_memalign(&out, bad[below(r, sizeof bad / sizeof bad[0])],
                               below(r, 1000));
    if (rc != EINVAL) fail("posix_memalign", NULL, "a bad alignment did not give EINVAL");
    if (out != (void *)&out) fail("posix_memalign", NULL, "wrote *out on failure");
    break;
  }
  case 3:
    p = pm_memalign((size_t)1 << below(r, 21), impossible_size(r));
    expect_enomem("memalign", p, NULL);
    break;
  case 4:
    p = pm_memalign(SIZE_MAX / 2 + 2 + below(r, 1000), 16);
    if (p != NULL || errno != EINVAL)
      fail("memalign", NULL, "a huge alignment did not give EINVAL");
    break;
  case 5:
    p = pm_pvalloc(impossible_size(r));
    expect_enomem("pvalloc", p, NULL);
    break;
  case 6:
    p = pm_valloc(impossible_size(r));
    expect_enomem("valloc", p, NULL);
    break;
  case 7: /* a failed realloc keeps the old block */
    if (s == NULL) break;
    p = pm_realloc(s->p, impossible_size(r));
    expect_enomem("realloc", p, s);
    check(s, SIZE_MAX, "after a failed realloc");
    break;
  case 8:
    if (s == NULL) break;
    p = pm_reallocarray(s->p, (size_t)1 << 33, ((size_t)1 << 31) + below(r, 1000));
    expect_enomem("reallocarray", p, s);
    check(s, SIZE_MAX, "after a failed reallocarray");
    break;
  case 9:
    pm_free(NULL);
    if (pm_usable_size(NULL) != 0) fail("malloc_usable_size", NULL, "not 0 for NULL");
    break;
  case 10:
    pm_malloc_trim(below(r, 1 << 20));
    break;
  default: {
    struct mallinfo2 m;
    pm_mallinfo2(&m);
    if (m.uordblks + m.fordblks != m.arena)
      fail("mallinfo2", NULL, "uordblks + fordblks != arena");
    break;
  }
  }
  st->errors++;
}

/* blocks swapped between threads: freed or reallocated by another thread */
#define XCHG 64
static _Atomic(slot *) exchange[XCHG];

static void step(rng *r, slot *slots, stats *st, bool threaded) {
  slot *s = &slots[below(r, SLOTS)];
  size_t k = below(r, 100);
  st->ops++;
  if (k >= 98) {
    do_error(r, s->p ? s : NULL, st);
  } else if (s->p == NULL) {
    do_alloc(r, s, st);
  } else if (k < 45) {
    release(s, st);
  } else if (k < 70) {
    do_realloc(r, s, st);
  } else if (k < 75 && threaded) {
    /* hand our block over, take whatever was there: it now belongs to us */
    slot *mine = malloc(sizeof *mine);
    *mine = *s;
    slot *theirs = atomic_exchange(&exchange[below(r, XCHG)], mine);
    if (theirs != NULL) {
      check(theirs, SIZE_MAX, "swapped block");
      *s = *theirs;
      free(theirs);
    } else {
      s->p = NULL;
    }
    st->swaps++;
  } else {
    check(s, SIZE_MAX, "read");
    if (pm_usable_size(s->p) != s->usable)
      fail("usable size", s, "changed while the block was live");
  }
}

static void drain(slot *slots, stats *st) {
  for (size_t i = 0; i < SLOTS; i++)
    release(&slots[i], st);
}

#ifdef PM_LIBFUZZER

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static slot slots[SLOTS];
  stats st = {0};
  rng r = {0x9e3779b97f4a7c15ull, data, size};
  size_t n = size / 2 + 1;
  if (n > 20000) n = 20000;
  for (size_t i = 0; i < n; i++)
    step(&r, slots, &st, false);
  drain(slots, &st);
  return 0;
}

#else

typedef struct worker {
  uint64_t ops;
  double end;
  bool threaded, last;
  slot *slots; /* kept across generations: blocks outlive their threads */
  rng r;
  stats st;
} worker;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *run(void *arg) {
  worker *w = arg;
  for (uint64_t i = 0; i < w->ops; i++) {
    step(&w->r, w->slots, &w->st, w->threaded);
    if ((i & 4095) == 0 && now() > w->end) break;
  }
  if (w->last) drain(w->slots, &w->st);
  return NULL;
}

int main(int argc, char **argv) {
  uint64_t seed = 1, ops = 1000000;
  double seconds = 15;
  int threads = 1, generations = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--seed") == 0)
      seed = strtoull(argv[i + 1], NULL, 0);
    else if (strcmp(argv[i], "--ops") == 0)
      ops = strtoull(argv[i + 1], NULL, 0);
    else if (strcmp(argv[i], "--seconds") == 0)
      seconds = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--threads") == 0)
      threads = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--generations") == 0)
      generations = atoi(argv[i + 1]);
    else {
      fprintf(
          stderr,
          "usage: %s [--seed N] [--ops N] [--seconds S] [--threads T] [--generations G]\n"
          "  T threads run at once, G times in a row (each generation continues on\n"
          "  the blocks the previous, exited, threads left behind)\n",
          argv[0]);
      return 2;
    }
  }
  if (threads < 1 || threads > 64) threads = 1;
  if (generations < 1) generations = 1;
  bool threaded = threads > 1 || generations > 1;
  worker w[64];
  pthread_t t[64];
  double start = now();
  for (int i = 0; i < threads; i++)
    w[i] = (worker){ops / (uint64_t)generations,
                    start,
                    threaded,
                    false,
                    calloc(SLOTS, sizeof(slot)),
                    {(seed + (uint64_t)i) * 0x9e3779b97f4a7c15ull + 1, NULL, 0},
                    {0}};
  for (int g = 0; g < generations; g++) {
    /* each generation gets its share of the time */
    for (int i = 0; i < threads; i++) {
      w[i].last = g == generations - 1;
      w[i].end = start + seconds * (g + 1) / generations;
    }
    if (!threaded) {
      run(&w[0]);
      continue;
    }
    for (int i = 0; i < threads; i++)
      pthread_create(&t[i], NULL, run, &w[i]);
    for (int i = 0; i < threads; i++)
      pthread_join(t[i], NULL);
  }
  /* blocks still parked in the exchange */
  stats tot = {0};
  for (size_t i = 0; i < XCHG; i++) {
    slot *s = atomic_exchange(&exchange[i], NULL);
    if (s) {
      release(s, &tot);
      free(s);
    }
  }
  for (int i = 0; i < threads; i++) {
    tot.ops += w[i].st.ops;
    tot.mallocs += w[i].st.mallocs;
    tot.callocs += w[i].st.callocs;
    tot.reallocs += w[i].st.reallocs;
    tot.aligned += w[i].st.aligned;
    tot.frees += w[i].st.frees;
    tot.swaps += w[i].st.swaps;
    tot.errors += w[i].st.errors;
    free(w[i].slots);
  }
  uint64_t allocs = tot.mallocs + tot.callocs + tot.aligned;
  /* everything is freed: the counters and the page table must agree */
  pm_snapshot snap;
  pm_stats_snapshot(&snap);
  uint64_t class_pages = 0;
  for (unsigned c = 0; c < PM_NCLASSES; c++)
    class_pages += snap.class_pages[c];
  if (class_pages != snap.fig.pages_in_use) {
    fprintf(stderr,
            "fuzz_ops: per-class page counts say %llu pages, the page table %llu\n",
            (unsigned long long)class_pages, (unsigned long long)snap.fig.pages_in_use);
    return 1;
  }
  if (PM_COUNTING && snap.fig.live_block_bytes != 0) {
    fprintf(stderr, "fuzz_ops: %llu live pool bytes after freeing everything\n",
            (unsigned long long)snap.fig.live_block_bytes);
    return 1;
  }
  printf(
      "fuzz_ops: seed %llu, %d thread(s) x %d generation(s): %llu ops, %llu mallocs, "
      "%llu callocs, %llu aligned, %llu reallocs, %llu frees, %llu swaps, %llu failing "
      "calls: OK\n",
      (unsigned long long)seed, threads, generations, (unsigned long long)tot.ops,
      (unsigned long long)tot.mallocs, (unsigned long long)tot.callocs,
      (unsigned long long)tot.aligned, (unsigned long long)tot.reallocs,
      (unsigned long long)tot.frees, (unsigned long long)tot.swaps,
      (unsigned long long)tot.errors);
  if (tot.frees != allocs) {
    fprintf(stderr, "fuzz_ops: %llu allocations but %llu frees\n",
            (unsigned long long)allocs, (unsigned long long)tot.frees);
    return 1;
  }
  return 0;
}

#endif
