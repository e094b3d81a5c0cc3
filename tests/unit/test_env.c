/* test_env.c - the allocator under POOLMALLOC_* settings. Each test sets
 * the environment before its first pm_ call (every Criterion test is a
 * fresh process; start-up reads environ). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "heap.h"
#include "start.h"
#include "options.h"
#include "page.h"
#include "stats.h"
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

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

Test(env, disable_sends_everything_to_jemalloc) {
  setenv("POOLMALLOC_DISABLE", "1", 1);
  void *a = pm_malloc(16);
  cr_assert_not_null(a);
  cr_assert_not(pm_is_pool_ptr(a));
  cr_assert_eq(pm_g.size, 0, "no region is reserved");
  cr_assert_eq(pm_tls_heap, &pm_heap_jemalloc);
  cr_assert_eq(pm_opt.disable, 1);
  void *b = pm_memalign(256, 10);
  cr_assert_eq((uintptr_t)b % 256, 0);
  unsigned char *c = pm_calloc(10, 10);
  for (int i = 0; i < 100; i++)
    cr_assert_eq(c[i], 0);
  c = pm_realloc(c, 5000);
  cr_assert_geq(pm_usable_size(c), 5000);
  void *d = NULL;
  cr_assert_eq(pm_posix_memalign(&d, 64, 64), 0);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.fb_disabled, 4, "every request is counted as disabled (%llu)",
               (unsigned long long)s.heap.fb_disabled);
  cr_assert_eq(s.threads_total, 0);
  uint64_t allocs = 0;
  for (unsigned k = 0; k < PM_NCLASSES; k++)
    allocs += s.cls[k].allocs;
  cr_assert_eq(allocs, 0);
  pm_free(a);
  pm_free(b);
  pm_free(c);
  pm_free(d);
  cr_assert_eq(snap().heap.large_frees, 4);
}

Test(env, pool_size_4k) {
  setenv("POOLMALLOC_POOL_SIZE", "4K", 1);
  void *a = pm_malloc(2048);
  cr_assert_eq(pm_page_size(), 4096);
  cr_assert_eq(pm_g.max_pooled, 2048);
  cr_assert(pm_is_pool_ptr(a));
  cr_assert_eq(pm_page_of(a)->capacity, 2);
  void *b = pm_malloc(2048), *c = pm_malloc(2048);
  cr_assert_eq(pm_page_of(a), pm_page_of(b));
  cr_assert_neq(pm_page_of(a), pm_page_of(c), "two 2 KiB blocks per 4 KiB page");
  void *d = pm_malloc(2049);
  cr_assert_not(pm_is_pool_ptr(d));
  void *e = pm_memalign(2048, 1);
  cr_assert(pm_is_pool_ptr(e));
  cr_assert_eq((uintptr_t)e % 2048, 0);
  void *f = pm_memalign(4096, 1);
  cr_assert_not(pm_is_pool_ptr(f),
                "no pooled class is 4 KiB aligned under a 2 KiB limit");
  cr_assert_eq((uintptr_t)f % 4096, 0);
  void *g = pm_memalign(1024, 1500);
  cr_assert(pm_is_pool_ptr(g));
  cr_assert_eq((uintptr_t)g % 1024, 0);
  cr_assert_eq(pm_arena_size(), 4 * MiB);
  void *all[] = {a, b, c, d, e, f, g};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    pm_free(all[i]);
  cr_assert_eq(snap().fig.live_block_bytes, 0);
}

Test(env, pool_size_1m_pools_1m_blocks) {
  setenv("POOLMALLOC_POOL_SIZE", "1M", 1);
  setenv("POOLMALLOC_MAX_POOLED", "1M", 1);
  char *a = pm_malloc(MiB);
  cr_assert_eq(pm_page_size(), MiB);
  cr_assert(pm_is_pool_ptr(a));
  cr_assert_eq(pm_usable_size(a), MiB);
  cr_assert_eq(pm_page_of(a)->capacity, 1);
  memset(a, 7, MiB);
  char *b = pm_memalign(MiB, 100);
  cr_assert(pm_is_pool_ptr(b));
  cr_assert_eq((uintptr_t)b % MiB, 0);
  char *c = pm_memalign(256 * KiB, 300 * KiB);
  cr_assert(pm_is_pool_ptr(c));
  cr_assert_eq((uintptr_t)c % (256 * KiB), 0);
  char *d = pm_malloc(MiB + 1);
  cr_assert_not(pm_is_pool_ptr(d));
  cr_assert_eq(pm_arena_size(), 16 * MiB);
  for (size_t i = 0; i < MiB; i += 4096)
    cr_assert_eq(a[i], 7);
  pm_free(a);
  pm_free(b);
  pm_free(c);
  pm_free(d);
}

Test(env, max_pooled_limits_small_requests) {
  setenv("POOLMALLOC_MAX_POOLED", "100", 1);
  void *a = pm_malloc(100);
  cr_assert(pm_is_pool_ptr(a));
  cr_assert_eq(pm_g.max_pooled, 100);
  void *b = pm_malloc(200);
  cr_assert_not(pm_is_pool_ptr(b), "200 > POOLMALLOC_MAX_POOLED");
  void *c = pm_memalign(64, 100);
  cr_assert_not(pm_is_pool_ptr(c), "the 64-aligned class for 100 bytes is 128 > 100");
  cr_assert_eq((uintptr_t)c % 64, 0);
  /* 101 shares the 112-byte class with 100, whose page is now current */
  void *d = pm_malloc(101);
  cr_assert_not(pm_is_pool_ptr(d), "101 > POOLMALLOC_MAX_POOLED=100 must go to jemalloc");
  pm_free(a);
  pm_free(b);
  pm_free(c);
  pm_free(d);
}

Test(env, region_exhaustion_falls_back_to_jemalloc, .timeout = 60) {
  setenv("POOLMALLOC_REGION_SIZE", "64M", 1);
  enum { N = 64 * 32 + 50 }; /* 2048 blocks of 32 KiB fill 64 MiB */
  static void *v[N];
  size_t pooled = 0;
  for (int i = 0; i < N; i++) {
    v[i] = pm_malloc(32 * KiB);
    cr_assert_not_null(v[i]);
    ((char *)v[i])[100] = (char)i;
    pooled += pm_is_pool_ptr(v[i]);
  }
  cr_assert_eq(pm_g.size, 64 * MiB);
  cr_assert_eq(pooled, 2048, "the whole region is used before falling back (%zu)",
               pooled);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.fb_region_full, N - 2048);
  cr_assert_eq(s.fig.region_committed, 64 * MiB);
  cr_assert_eq(s.fig.pages_in_use, 1024);
  void *small = pm_malloc(16);
  cr_assert_not(pm_is_pool_ptr(small), "no page left for a new class either");
  for (int i = 0; i < N; i++)
    cr_assert_eq(((char *)v[i])[100], (char)i);
  /* freeing pooled blocks gives pages back for the next requests */
  for (int i = 0; i < 64; i++)
    pm_free(v[i]);
  void *again = pm_malloc(16);
  cr_assert(pm_is_pool_ptr(again), "released pages serve new classes");
  for (int i = 64; i < N; i++)
    pm_free(v[i]);
  pm_free(small);
  pm_free(again);
}

Test(env, decay_zero_purges_released_pages_at_once) {
  setenv("POOLMALLOC_DECAY_MS", "0", 1);
  size_t per = 64; /* 1 KiB blocks per 64 KiB page */
  size_t n = 22 * per;
  unsigned char **v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    v[i] = pm_malloc(1024);
    memset(v[i], 0xee, 1024);
  }
  for (size_t i = 0; i < n; i++)
    pm_free(v[i]);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_released, 21);
  cr_assert_eq(s.pages_free_cached, 16, "16 emptied pages stay in the heap's cache");
  cr_assert_eq(s.fig.purged_bytes, 5 * 64 * KiB,
               "the five oldest leave it and are purged at once (%llu)",
               (unsigned long long)s.fig.purged_bytes);
  /* the cache keeps the newest: the purged ones are the first five
   * released, and their memory reads as zeros again */
  size_t zero_pages = 0;
  for (size_t p = 0; p < 21; p++) {
    unsigned char *blk = v[p * per + 1]; /* skip the free-list words of block 0 */
    if (pm_page_of(blk)->state != PM_PAGE_FREE) continue;
    bool zero = true;
    for (size_t k = 16; k < 1024; k++)
      zero &= blk[k] == 0;
    zero_pages += zero;
  }
  cr_assert_eq(zero_pages, 5);
  free(v);
}

Test(env, decay_purges_old_free_pages_later, .timeout = 30) {
  /* 200 ms: long enough that a loaded machine does not purge during the
   * first wave, short enough for a unit test */
  setenv("POOLMALLOC_DECAY_MS", "200", 1);
  enum { HOLD = 2 * 128 };
  static void *hold[HOLD]; /* two pages of 512-byte blocks, released later */
  for (int i = 0; i < HOLD; i++)
    hold[i] = pm_malloc(512);
  size_t n = 22 * 64;
  void **v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = pm_malloc(1024);
  for (size_t i = 0; i < n; i++)
    pm_free(v[i]);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_released, 21);
  cr_assert_eq(s.fig.purged_bytes, 0, "nothing is purged before the delay");
  sleep_ms(300);
  /* releasing one more page runs the decay clock: the five pages on the
   * global stack are old enough now; the one the cache lets go to make room
   * is stamped now */
  for (int i = 0; i < 128; i++)
    pm_free(hold[i]);
  s = snap();
  cr_assert_eq(s.heap.pages_released, 22);
  cr_assert_eq(s.fig.purged_bytes, 5 * 64 * KiB, "purged %llu",
               (unsigned long long)s.fig.purged_bytes);
  free(v);
}

static void redirect(void) {
  cr_redirect_stderr();
}

Test(env, verbose_prints_every_option_once, .init = redirect) {
  setenv("POOLMALLOC_VERBOSE", "1", 1);
  pm_free(pm_malloc(1));
  pm_free(pm_malloc(2));
  fflush(stderr);
  static char out[4096];
  size_t n = fread(out, 1, sizeof out - 1, cr_get_redirected_stderr());
  out[n] = 0;
  char head[128];
  snprintf(head, sizeof head, "poolmalloc: version %s, pid %d, ", PM_VERSION,
           (int)getpid());
  cr_assert_eq(strncmp(out, head, strlen(head)), 0, "%s", out);
  cr_assert_gt(n, 0);
  cr_assert_eq(strchr(out, '\n'), out + n - 1, "one line, once: %s", out);
  for (size_t i = 0; i < pm_option_count; i++) {
    char name[64];
    snprintf(name, sizeof name, "POOLMALLOC_%s=", pm_option_table[i].name);
    const char *at = strstr(out, name);
    cr_assert_not_null(at, "%s missing: %s", name, out);
    cr_assert_null(strstr(at + 1, name), "%s twice: %s", name, out);
  }
  cr_assert(strstr(out, ", POOLMALLOC_POOL_SIZE=65536,") != NULL, "%s", out);
  cr_assert(strstr(out, ", POOLMALLOC_MAX_POOLED=32768,") != NULL, "%s", out);
  cr_assert(strstr(out, ", POOLMALLOC_VERBOSE=1") != NULL, "%s", out);
  cr_assert(strstr(out, ", POOLMALLOC_STATS=off") != NULL, "%s", out);
  cr_assert(strstr(out, ", POOLMALLOC_REGION_SIZE=34359738368") != NULL, "%s", out);
}

Test(env, bad_value_warns_once_at_start_up, .init = redirect) {
  setenv("POOLMALLOC_POOL_SIZE", "12x", 1);
  void *p = pm_malloc(10);
  pm_free(pm_malloc(20));
  cr_assert_eq(pm_page_size(), 64 * KiB);
  pm_free(p);
  fflush(stderr);
  cr_assert_stderr_eq_str(
      "poolmalloc: POOLMALLOC_POOL_SIZE='12x' is not a size; using 65536\n");
}

Test(env, unknown_name_warns_at_start_up, .init = redirect) {
  setenv("POOLMALLOC_TYPO", "1", 1);
  pm_free(pm_malloc(10));
  fflush(stderr);
  static char out[1024];
  size_t n = fread(out, 1, sizeof out - 1, cr_get_redirected_stderr());
  out[n] = 0;
  const char *want = "poolmalloc: POOLMALLOC_TYPO is not a poolmalloc setting";
  cr_assert_eq(strncmp(out, want, strlen(want)), 0, "%s", out);
  cr_assert_eq(strchr(out, '\n'), out + n - 1, "exactly one line: %s", out);
}

Test(env, quiet_by_default, .init = redirect) {
  pm_free(pm_malloc(10));
  pm_free(pm_malloc(MiB));
  fflush(stderr);
  cr_assert_stderr_eq_str("");
}

/* Programs that set their process title (redis-server) overwrite the memory
 * environ pointed to; the report file name must not change with it. */
Test(env, stats_file_survives_a_rewritten_environment) {
  static char entry[] = "POOLMALLOC_STATS_FILE=/tmp/pm-title-%p.txt";
  cr_assert_eq(putenv(entry), 0); /* environ points into entry itself */
  pm_free(pm_malloc(8));          /* options read here */
  memset(entry, 'x', sizeof entry - 1);
  cr_assert_not_null(pm_opt.stats_file_str);
  cr_assert_str_eq(pm_opt.stats_file_str, "/tmp/pm-title-%p.txt");
}
