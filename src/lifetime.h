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
 * docs/design.md, "Lifetime routing".
 *
 * This file decides; it never allocates. alloc.c asks pm_lt_decide and
 * allocates the sample, the routed block or the pool block itself. */
#ifndef PM_LIFETIME_H
#define PM_LIFETIME_H

#include "types.h"

typedef struct pm_lt_site pm_lt_site;

/* classes with at least one marked site (bit per class) */
extern _Atomic uint64_t pm_lt_diverted;

typedef enum { PM_LT_POOL, PM_LT_SAMPLE, PM_LT_ROUTE } pm_lt_action;
/* The countdown of class cls reached zero, or the class is diverted: what
 * to do with this request from `site` (re-arms h's countdown). For
 * PM_LT_SAMPLE and PM_LT_ROUTE *site_out is the site's entry. */
pm_lt_action pm_lt_decide(pm_heap *h, unsigned cls, uintptr_t site,
                          pm_lt_site **site_out);
/* The sample block p (outside the pools) was allocated for s; false if the
 * sample table has no room (then p is an ordinary block). */
bool pm_lt_sampled(pm_lt_site *s, const void *p, unsigned cls);
/* A block of `size` bytes was routed for s. */
void pm_lt_routed(pm_lt_site *s, size_t size);

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
