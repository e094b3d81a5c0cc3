/* churn.c - scripts/icount's "churn": 4096 slots of 16-256 B blocks; each
 * step frees a random slot's block and puts a new one of a random size
 * there, n steps (argv[1]). xorshift64, fixed seed: every run is the same. */
#include <stdint.h>
#include <stdlib.h>

static uint64_t state = 88172645463325252ull;
static uint64_t next(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  static void *slot[4096];
  for (int i = 0; i < 4096; i++)
    slot[i] = malloc(16 + next() % 241);
  for (long i = 0; i < n; i++) {
    uint64_t r = next();
    unsigned k = r & 4095;
    free(slot[k]);
    slot[k] = malloc(16 + (r >> 12) % 241);
  }
  for (int i = 0; i < 4096; i++)
    free(slot[i]);
  return 0;
}
