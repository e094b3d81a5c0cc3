/* bench_util.h - the clock and random numbers every benchmark program uses. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* seconds of CLOCK_MONOTONIC */
static inline double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* one step of xorshift64 on *state (never 0) */
static inline uint64_t xorshift64_step(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

/* a "Key: value kB" line of /proc/self/status (VmRSS, VmHWM) in KiB; -1
 * if absent. stdio only: the allocator under test serves fopen's buffer. */
static inline long status_kib(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t klen = strlen(key);
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') v = atol(line + klen + 1);
  fclose(f);
  return v;
}

#endif
