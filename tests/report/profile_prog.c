/* profile_prog.c - frames for the heap-profile tests of the reader
 * (report_profile_tests.py: addr2line, pprof). Built with -g (a PIE and a
 * non-PIE copy) and never run under the preload: the tests take the return
 * addresses of its calls from objdump, put them in hand-made schema 2
 * reports, and check that poolmalloc-report names them back
 * (function, file:line, the inlined function) and that google-pprof reads
 * its --pprof output. The PM_LINE_* comments mark the lines the tests expect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline __attribute__((always_inline)) void *grow_buffer(size_t n) {
  return malloc(n); /* PM_LINE_GROW */
}

__attribute__((noinline)) void *leaf_alloc(size_t n) {
  char *p = grow_buffer(n); /* PM_LINE_LEAF */
  if (p) memset(p, 1, n);
  return p;
}

__attribute__((noinline)) void *make_table(size_t n) {
  void *p = leaf_alloc(n * 16); /* PM_LINE_TABLE */
  if (p) printf("table %p\n", p);
  return p;
}

__attribute__((noinline)) void *make_index(size_t n) {
  void *p = malloc(n * 8); /* PM_LINE_INDEX */
  if (p) printf("index %p\n", p);
  return p;
}

int main(int argc, char **argv) {
  (void)argv;
  void *t = make_table((size_t)argc * 100); /* PM_LINE_MAIN */
  void *i = make_index((size_t)argc * 100); /* PM_LINE_MAIN_INDEX */
  free(t);
  free(i);
  return 0;
}
