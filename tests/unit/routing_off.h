/* routing_off.h - for the unit tests that place blocks exactly (which page,
 * how many pages, which block is reused): lifetime routing, on by default,
 * puts every sampled block on a watched page of the thread's auxiliary
 * heap, so a sample moves one block of such a test elsewhere. Included by
 * those tests: routing is off in them unless the environment sets
 * POOLMALLOC_LIFETIME (the runner's constructor sets it before Criterion
 * forks each test). */
#ifndef PM_TEST_ROUTING_OFF_H
#define PM_TEST_ROUTING_OFF_H

#include <stdlib.h>

__attribute__((constructor)) static void pm_test_routing_off(void) {
  setenv("POOLMALLOC_LIFETIME", "0", 0);
}

#endif
