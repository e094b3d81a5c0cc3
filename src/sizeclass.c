/* sizeclass.c - the lookup table of small size classes (see sizeclass.h). */
#include "sizeclass.h"

/* pm_small_class[(size + 15) >> 4] for size <= 1024 (checked against
 * pm_class_of_calc by the unit tests) */
const uint8_t pm_small_class[PM_SMALL_LOOKUP_MAX / 16 + 1] = {
    0,  0,  1,  2,  3,  4,  5,  6,  7,  8,  8,  9,  9,  10, 10, 11, 11,
    12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15, 16,
    16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17, 18, 18,
    18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19};
