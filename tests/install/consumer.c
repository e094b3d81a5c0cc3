/* consumer.c - a program that links libpoolmalloc.so directly (no
 * LD_PRELOAD). tests/install builds it against an installed tree, through
 * pkg-config and through find_package(poolmalloc).
 *
 *   consumer [VERSION]   prints "poolmalloc VERSION: N allocations, M pooled";
 *                        exits 1 if VERSION is given and is not the
 *                        library's, or if its mallocs did not go to poolmalloc */
#include <poolmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 1000 };

int main(int argc, char **argv) {
  /* through a volatile pointer: the compiler may not drop the pairs */
  void *(*volatile alloc)(size_t) = malloc;
  static void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = alloc(16 + (size_t)(i % 200));
    if (p[i] == NULL) return 1;
    memset(p[i], i, 16);
  }
  poolmalloc_totals t;
  if (poolmalloc_get_totals(&t, sizeof t) != 0) {
    fprintf(stderr, "consumer: poolmalloc_get_totals failed\n");
    return 1;
  }
  for (int i = 0; i < N; i++)
    free(p[i]);
  const char *v = poolmalloc_version();
  printf("poolmalloc %s: %llu allocations, %llu pooled\n", v, t.allocations,
         t.pooled_allocations);
  if (argc > 1 && strcmp(argv[1], v) != 0) {
    fprintf(stderr, "consumer: expected version %s, the library says %s\n", argv[1], v);
    return 1;
  }
  if (t.pooled_allocations < N) {
    fprintf(stderr, "consumer: its mallocs did not go to poolmalloc\n");
    return 1;
  }
  return 0;
}
