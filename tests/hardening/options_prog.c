/* options_prog.c - the small allocating program of the bad-option test
 * (run_bad_options.sh): allocates, reallocs and frees blocks of pool and
 * jemalloc sizes, checks them, and prints the same lines under any
 * allocator and any POOLMALLOC_* setting. */
#include "hard.h"

int main(void) {
  hard_check_preload();
  enum { N = 2000 };
  static unsigned char *p[N];
  static size_t n[N];
  static uint64_t sum[N];
  uint64_t x = 0x9E3779B97F4A7C15ull, total = 0;
  int bad = 0;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      if (p[i] != NULL) {
        if (hard_sum(p[i], n[i]) != sum[i]) bad++;
        free(p[i]);
      }
      uint64_t r = hard_rand(&x);
      n[i] = r % 64 == 0 ? (size_t)(r >> 8) % 300000 + 1 : (size_t)(r >> 8) % 3000 + 1;
      p[i] = r % 4 == 0 ? calloc(1, n[i]) : malloc(n[i]);
      if (p[i] == NULL) return 1;
      sum[i] = hard_fill(p[i], n[i], r);
      total += n[i];
    }
  }
  for (int i = 0; i < N; i++) {
    unsigned char *q = realloc(p[i], n[i] + 100);
    if (q == NULL || hard_sum(q, n[i]) != sum[i]) bad++;
    free(q);
  }
  printf("options_prog: %d blocks, %llu bytes, %d corrupted\n", 3 * N,
         (unsigned long long)total, bad);
  return bad ? 1 : 0;
}
