/* sizeclass.c - the lookup table of small size classes (see sizeclass.h). */
#include "sizeclass.h"

/* pm_class_of_calc(s) as a constant expression: the table is complete
 * before any code runs (malloc may be called before constructors) */
#define PM_LG(s) (63u - (unsigned)__builtin_clzl((unsigned long)(s)-1u))
#define PM_CLS_BIG(s)                                                                    \
  (8u + 4u * (PM_LG(s) - 7u) + (unsigned)((((s)-1u) >> (PM_LG(s) - 2u)) & 3u))
#define PM_CLS(s)                                                                        \
  ((s) <= 128 ? (unsigned)(((s) + 15) / 16 - ((s) != 0))                                 \
              : PM_CLS_BIG((s) > 128 ? (s) : 129))
#define PM_E1(s) PM_CLS(s),
#define PM_E4(s) PM_E1(s) PM_E1((s) + 1) PM_E1((s) + 2) PM_E1((s) + 3)
#define PM_E16(s) PM_E4(s) PM_E4((s) + 4) PM_E4((s) + 8) PM_E4((s) + 12)
#define PM_E64(s) PM_E16(s) PM_E16((s) + 16) PM_E16((s) + 32) PM_E16((s) + 48)
#define PM_E256(s) PM_E64(s) PM_E64((s) + 64) PM_E64((s) + 128) PM_E64((s) + 192)

/* pm_size_class[size] for size <= 1024 (checked against pm_class_of_calc by
 * the unit tests) */
const uint8_t pm_size_class[PM_SMALL_LOOKUP_MAX + 1] = {
    PM_E256(0) PM_E256(256) PM_E256(512) PM_E256(768) PM_E1(1024)};
