/* test_sizeclass.c - size-class math (sizeclass.h, the lookup table in
 * sizeclass.c) and the divisibility test of pm_page_is_block_start (page.h).
 * Pure arithmetic: nothing here initialises the allocator. */
#include <criterion/criterion.h>

#include "page.h"
#include "sizeclass.h"

#define MiB ((size_t)1 << 20)

Test(sizeclass, lookup_table_matches_calc_for_every_size_to_1MiB) {
  for (size_t s = 0; s <= MiB; s++) {
    unsigned a = pm_class_of(s), b = pm_class_of_calc(s);
    if (a != b)
      cr_assert_fail("size %zu: pm_class_of %u != pm_class_of_calc %u", s, a, b);
    if (s <= PM_SMALL_LOOKUP_MAX) {
      unsigned t = pm_size_class[s];
      if (t != b)
        cr_assert_fail("size %zu: pm_size_class %u != pm_class_of_calc %u", s, t, b);
    }
  }
}

Test(sizeclass, table_has_an_entry_for_every_size_to_1KiB) {
  cr_assert_eq(sizeof pm_size_class / sizeof pm_size_class[0], PM_SMALL_LOOKUP_MAX + 1);
  cr_assert_eq(pm_size_class[0], 0, "malloc(0) uses the smallest class");
  cr_assert_eq(pm_size_class[PM_SMALL_LOOKUP_MAX], pm_class_of_calc(PM_SMALL_LOOKUP_MAX));
}

Test(sizeclass, class_sizes_are_16_multiples_and_strictly_increasing) {
  size_t prev = 0;
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    size_t sz = pm_class_size(c);
    cr_assert_eq(sz % 16, 0, "class %u size %zu not a multiple of 16", c, sz);
    cr_assert_gt(sz, prev, "class %u size %zu not above class %u (%zu)", c, sz, c - 1,
                 prev);
    cr_assert_eq(pm_class_of(sz), c, "class %u: pm_class_of(its own size %zu) is %u", c,
                 sz, pm_class_of(sz));
    prev = sz;
  }
  cr_assert_eq(pm_class_size(0), 16);
  cr_assert_eq(pm_class_size(7), 128);
  cr_assert_eq(pm_class_size(8), 160);
  cr_assert_eq(pm_class_size(PM_NCLASSES - 1), MiB,
               "the last class is 1 MiB (largest POOL_SIZE)");
}

Test(sizeclass, class_of_is_the_smallest_class_that_fits) {
  for (size_t s = 0; s <= MiB; s++) {
    unsigned c = pm_class_of(s);
    if (c >= PM_NCLASSES) cr_assert_fail("size %zu: class %u out of range", s, c);
    size_t sz = pm_class_size(c);
    if (sz < s) cr_assert_fail("size %zu: class %u holds only %zu", s, c, sz);
    if (c > 0 && pm_class_size(c - 1) >= s)
      cr_assert_fail("size %zu: class %u (%zu) chosen but class %u (%zu) fits", s, c, sz,
                     c - 1, pm_class_size(c - 1));
  }
}

Test(sizeclass, waste_below_25_percent_above_128) {
  double worst = 0;
  size_t worst_s = 0;
  for (size_t s = 129; s <= MiB; s++) {
    size_t sz = pm_class_size(pm_class_of(s));
    double w = (double)(sz - s) / (double)s;
    if (w > worst) worst = w, worst_s = s;
  }
  cr_assert_lt(worst, 0.25, "worst waste %.3f at size %zu", worst, worst_s);
  /* small sizes: at most 15 bytes of rounding */
  for (size_t s = 1; s <= 128; s++)
    cr_assert_lt(pm_class_size(pm_class_of(s)) - s, 16);
}

Test(sizeclass, power_of_two_alignment_of_classes) {
  /* aligned.c relies on: every power of two from 16 to 1 MiB is a class */
  for (size_t a = 16; a <= MiB; a <<= 1)
    cr_assert_eq(pm_class_size(pm_class_of(a)), a);
}

/* ---- the division magic ---- */

/* checks every offset of a page of page_size for block size class cls */
static void check_magic(unsigned cls, size_t page_size) {
  pm_page pg;
  memset(&pg, 0xa5, sizeof pg);
  pm_page_init(&pg, cls, NULL);
  size_t bsize = pm_class_size(cls);
  cr_assert_eq(pg.bsize, bsize);
  cr_assert_eq(pg.capacity, page_size / bsize, "class %u page %zu", cls, page_size);
  size_t odd = bsize >> pg.rot;
  cr_assert_eq(odd << pg.rot, bsize, "class %u: rot %u", cls, pg.rot);
  cr_assert_eq(odd & 1, 1, "class %u: rot %u leaves an even factor", cls, pg.rot);
  cr_assert_eq(pg.inv * odd, 1, "class %u: inv is not the inverse of %zu", cls, odd);
  cr_assert_eq(pm_page_used(&pg), 0);
  cr_assert_eq(pg.carved, 0);
  cr_assert_null(pg.free);
  cr_assert_eq(pg.state, PM_PAGE_IN_USE);
  cr_assert_eq(pg.cls, cls);
  size_t next = 0, idx = 0, cap = pg.capacity;
  for (uintptr_t off = 0; off < page_size; off++) {
    bool want = off == next && idx < cap;
    if (off == next) next += bsize, idx++;
    if (pm_page_is_block_start(&pg, off) != want)
      cr_assert_fail("class %u (bsize %zu), page %zu: offset %zu: got %d, want %d", cls,
                     bsize, page_size, (size_t)off, !want, want);
  }
}

Test(sizeclass, block_start_magic_exact_for_every_class_and_offset, .timeout = 60) {
  for (unsigned shift = 12; shift <= 20; shift++) {
    pm_g.page_shift = shift; /* pm_page_init reads the page size from here */
    pm_g.page_mask = ((uintptr_t)1 << shift) - 1;
    for (unsigned cls = 0; cls < PM_NCLASSES; cls++)
      check_magic(cls, (size_t)1 << shift);
  }
}

Test(sizeclass, block_start_magic_holds_beyond_one_page) {
  /* the multiply must not overflow for any offset a 1 MiB page can have, and
   * a class larger than the page has no block at all */
  pm_g.page_shift = 12;
  pm_page pg;
  pm_page_init(&pg, pm_class_of(8192), NULL);
  cr_assert_eq(pg.capacity, 0);
  cr_assert_not(pm_page_is_block_start(&pg, 0));
  pm_g.page_shift = 20;
  for (unsigned cls = 0; cls < PM_NCLASSES; cls++) {
    pm_page_init(&pg, cls, NULL);
    uint64_t last = (uint64_t)(pg.capacity - 1) * pg.bsize;
    cr_assert(pm_page_is_block_start(&pg, last), "class %u last block", cls);
    cr_assert_not(pm_page_is_block_start(&pg, last + pg.bsize), "class %u one past", cls);
    cr_assert_not(pm_page_is_block_start(&pg, MiB - 1));
  }
}
