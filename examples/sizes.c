/* sizes.c - allocates many medium blocks, 20 to 60 KiB, to show what
 * POOLMALLOC_POOL_SIZE and POOLMALLOC_MAX_POOLED change
 * (examples/tuning-pool-size.md).
 *
 *   cc -O2 -o /tmp/sizes examples/sizes.c
 *   /tmp/sizes [ROUNDS]      (default 200000 allocations)
 *
 * Keeps a window of 256 live blocks: each round frees a random one and puts
 * a new block of a random size (uniform over 20..60 KiB) in its place,
 * writing its first and last bytes. Sizes come from a fixed-seed generator,
 * so every run makes the same requests. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define LIVE 256
#define MIN_SIZE (20 * 1024)
#define MAX_SIZE (60 * 1024)

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t next(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (uint32_t)((rng * 0x2545f4914f6cdd1du) >> 32);
}

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 200000;
  unsigned char *live[LIVE] = {0};
  size_t small = 0, checksum = 0;
  for (long i = 0; i < rounds; i++) {
    unsigned slot = next() % LIVE;
    size_t size = MIN_SIZE + next() % (MAX_SIZE - MIN_SIZE + 1);
    if (size <= 32 * 1024) small++;
    free(live[slot]);
    unsigned char *p = malloc(size);
    if (p == NULL) {
      perror("malloc");
      return 1;
    }
    p[0] = (unsigned char)i;
    p[size - 1] = (unsigned char)size;
    checksum += p[0] + p[size - 1];
    live[slot] = p;
  }
  for (int s = 0; s < LIVE; s++)
    free(live[s]);
  printf("%ld blocks of 20-60 KiB, %.1f%% of them <= 32 KiB; checksum %zu\n", rounds,
         100.0 * (double)small / (double)(rounds ? rounds : 1), checksum);
  return 0;
}
