/* bench_tiny: a process that lives for a moment, like most of a build's.
 *
 * Usage: bench_tiny [scale]   (the scale is accepted for uniformity and ignored)
 *
 * Allocates what a small command-line tool allocates before it exits: a few
 * dozen small blocks (16-200 B, as for strings and list nodes), one 4 KiB
 * buffer, one 64 KiB buffer and one 256 KiB block (above the usual mmap
 * threshold), a calloc and a growing realloc. Every block is tagged and
 * checked before its free; a mismatch exits with status 3. Prints check=ok.
 *
 * scripts/bench runs it N times from a shell loop (workload startup-tiny), with
 * LD_PRELOAD in the loop's environment, so the time measured is almost all
 * process start-up and exit: exec, dynamic loading and relocation of the
 * preloaded allocator, its first-allocation initialisation, and its exit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSMALL 40

static void die(const char *what) {
  fprintf(stderr, "bench_tiny: %s\n", what);
  exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) die("malloc failed");
  return p;
}

static void check(const unsigned char *p, size_t n, unsigned char tag) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != tag) {
      printf("CORRUPTION at %zu of %zu (tag %u)\n", i, n, tag);
      exit(3);
    }
}

int main(void) {
  unsigned char *small[NSMALL];
  size_t sizes[NSMALL];
  for (int i = 0; i < NSMALL; i++) {
    sizes[i] = 16 + (size_t)(i * 37) % 185;
    small[i] = xmalloc(sizes[i]);
    memset(small[i], i + 1, sizes[i]);
  }
  static const size_t big_sizes[] = {4096, 65536, 262144};
  unsigned char *big[3];
  for (int i = 0; i < 3; i++) {
    big[i] = xmalloc(big_sizes[i]);
    memset(big[i], 0xA0 + i, big_sizes[i]);
  }
  unsigned char *z = calloc(100, 24);
  if (z == NULL) die("calloc failed");
  check(z, 2400, 0);

  size_t len = 0;
  char *line = NULL;
  for (int i = 0; i < 8; i++) { /* a string that grows, as a tool's output line */
    char *nl = realloc(line, len + 33);
    if (nl == NULL) die("realloc failed");
    line = nl;
    memset(line + len, 'a' + i, 32);
    len += 32;
    line[len] = '\0';
  }
  for (int i = 0; i < 8; i++) check((unsigned char *)line + 32 * i, 32, (unsigned char)('a' + i));

  for (int i = NSMALL - 1; i >= 0; i--) {
    check(small[i], sizes[i], (unsigned char)(i + 1));
    free(small[i]);
  }
  for (int i = 0; i < 3; i++) {
    check(big[i], big_sizes[i], (unsigned char)(0xA0 + i));
    free(big[i]);
  }
  free(z);
  free(line);
  puts("check=ok");
  return 0;
}
