/* resident.h - for the unit tests: whether the page holding p is backed
 * by memory (mincore), for tests of what the allocator touches and gives
 * back. Include after <criterion/criterion.h>. */
#ifndef PM_TEST_RESIDENT_H
#define PM_TEST_RESIDENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static inline bool resident(const void *p) {
  unsigned char v = 0;
  void *pg = (void *)((uintptr_t)p & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1));
  cr_assert_eq(mincore(pg, 1, &v), 0);
  return v & 1;
}

#endif
