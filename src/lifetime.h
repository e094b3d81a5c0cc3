/* lifetime.h - learning long-lived call sites (POOLMALLOC_LIFETIME).
 *
 * One pool page can only be reused or given back when all its blocks are
 * free, so a few long-lived blocks among short-lived ones pin whole pages.
 * poolmalloc samples allocations per thread and size class (a countdown on
 * the malloc fast path), sends each sampled block to jemalloc and keeps it
 * in a small table keyed by address, with its call site (the caller's
 * return address) and its birth on a clock that counts allocations, not
 * time. Sites are told apart by return address alone (all size classes).
 * A sample freed before POOLMALLOC_LIFETIME_THRESHOLD allocations
 * counts as short-lived for its site, one that outlives it as long-lived.
 * A site whose samples are mostly long-lived is marked, and its class is
 * "diverted": every allocation of that class takes the countdown's slow
 * branch, looks its site up in the site table, and goes to jemalloc if the
 * site is marked. A site whose samples turn short again is unmarked, and a
 * class without marked sites returns to the plain fast path. See
 * docs/design.md, "Lifetime routing". */
#ifndef PM_LIFETIME_H
#define PM_LIFETIME_H

#include "common.h"
#include "sizeclass.h"

struct pm_heap;

/* classes with at least one marked site (bit per class) */
extern _Atomic uint64_t pm_lt_diverted;

/* Sets up the countdowns of a new heap (options must be loaded). */
void pm_lt_heap_init(struct pm_heap *h);

/* The countdown of class cls reached zero, or the class is diverted and
 * its page had no free block: a sample, a routed block, or a pool block. */
void *pm_lt_malloc(struct pm_heap *h, size_t size, unsigned cls, uintptr_t site);

/* A block outside the pools is freed (before jemalloc frees it) or moved by
 * realloc (q: the new address, or NULL if it left the sampled set). */
void pm_lt_forget(const void *p, const void *q);
extern _Atomic uint32_t pm_lt_outstanding; /* samples in the table */

/* For reports: the sites with long-lived samples, most routed bytes first. */
typedef struct pm_lt_site_info {
  uintptr_t site;
  uint64_t classes; /* bit per size class seen in its samples */
  bool marked;
  uint64_t long_samples, short_samples, routed_blocks, routed_bytes;
} pm_lt_site_info;
size_t pm_lt_top_sites(pm_lt_site_info *out, size_t max);
/* totals: samples taken, sites known, sites marked */
void pm_lt_totals(uint64_t *samples, uint64_t *sites, uint64_t *marked);

#endif
