/* api.c - a program that asks poolmalloc about itself while it runs.
 *
 * Built linked against libpoolmalloc.so (so it works without LD_PRELOAD);
 * a program that is only preloaded finds the same functions with
 * dlsym(RTLD_DEFAULT, "poolmalloc_get_totals").
 *
 *   build/api_example            expected: the version, a totals line before
 *                                and after 100,000 allocations, then the
 *                                JSON report's first 80 characters
 */
#include <poolmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void show(const char *when) {
  poolmalloc_totals t;
  if (poolmalloc_get_totals(&t, sizeof t) != 0) return;
  printf("%-7s allocations %llu (%llu pooled, %llu to jemalloc), live pool bytes %llu, "
         "pool pages %llu (peak %llu)\n",
         when, t.allocations, t.pooled_allocations, t.jemalloc_allocations,
         t.live_pool_bytes, t.pool_pages, t.pool_pages_peak);
}

static void collect(void *arg, const char *text, size_t length) {
  size_t *total = arg;
  *total = length;
  printf("report: %.80s...\n", text);
}

int main(void) {
  printf("poolmalloc %s\n", poolmalloc_version());
  show("before");
  enum { N = 100000 };
  static char *blocks[N];
  for (int i = 0; i < N; i++)
    blocks[i] = malloc(16 + (size_t)(i % 64) * 8);
  blocks[0] = realloc(blocks[0], 100000); /* one large block */
  show("after");
  size_t length = 0;
  poolmalloc_report_cb(collect, &length, POOLMALLOC_FORMAT_JSON);
  printf("(%zu bytes of JSON)\n", length);
  for (int i = 0; i < N; i++)
    free(blocks[i]);
  return 0;
}
