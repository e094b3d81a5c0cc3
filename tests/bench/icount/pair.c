/* pair.c - scripts/icount's "pair": malloc(32) and free in a loop, n times
 * (argv[1]). The slot is volatile so that the compiler keeps both calls. */
#include <stdlib.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  for (long i = 0; i < n; i++) {
    void *volatile p = malloc(32);
    free(p);
  }
  return 0;
}
