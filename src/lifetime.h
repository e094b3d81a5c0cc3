/* lifetime.h - learning long-lived call sites (POOLMALLOC_LIFETIME).
 *
 * One pool page can only be reused or given back when all its blocks are
 * free, so a few long-lived blocks among short-lived ones pin whole pages.
 * The sampler's samples (sample.h) are attributed to their call site (the
 * caller's return address; all size classes together). A sample that
 * outlives the samples taken around it (its cohort: most of them freed, it
 * still live well after that) or twice the peak live heap of allocation
 * counts as long-lived for its site, one freed before as short-lived. A
 * site whose samples are mostly long-lived is marked, and its classes are
 * "diverted": every allocation of such a class takes the slow path, looks
 * its site up, and is routed (to jemalloc, or to pool pages of their own)
 * if the site is marked. A site whose samples turn short again is unmarked,
 * and a class without marked sites returns to the plain fast path. See
 * docs/design.md, "Lifetime routing".
 *
 * This file decides; it never allocates. alloc.c takes the samples and
 * allocates routed blocks. */
#ifndef PM_LIFETIME_H
#define PM_LIFETIME_H

#include "sample.h"

/* classes with at least one marked site (bit per class) */
extern _Atomic uint64_t pm_lt_diverted;

/* A sample of class cls from `site` was taken. The handle of the entry it
 * counts in, for pm_sample_record's `user` (0 if the site table is full):
 * the site's, or for a site seen called from two callers or more (a
 * wrapper; its callers are read, pm_sample_caller, once its samples are
 * mixed long and short), the site's and caller's. */
uint32_t pm_lt_on_sample(uintptr_t site, unsigned cls);
/* A sample of that site died at `age` (clock bytes); `counted` if a scan
 * already judged it long-lived. */
void pm_lt_on_death(uint32_t user, uint64_t age, bool counted);
/* Judges a few live samples that have outlived the threshold. */
void pm_lt_scan(void);
/* For an allocation of a diverted class: the marked site's handle, or 0.
 * From a wrapper with a marked caller it unwinds to find the caller. */
uint32_t pm_lt_route(pm_heap *h, uintptr_t site);
/* Counted up by every marking and unmarking: a heap's cached decisions
 * (pm_heap.lt_routes) hold while its lt_epoch equals it. */
extern _Atomic uint64_t pm_lt_epoch;
pm_inline unsigned pm_lt_route_slot(uintptr_t site) {
  return (unsigned)((site >> 4) ^ (site >> 11)) & (PM_LT_ROUTES - 1);
}
/* Whether h's cache already says that `site` is not routed: pm_lt_route
 * would return 0 without looking further (alloc.c's lean branch). */
pm_inline bool pm_lt_known_unrouted(const pm_heap *h, uintptr_t site) {
  unsigned i = pm_lt_route_slot(site);
  return h->lt_epoch == atomic_load_explicit(&pm_lt_epoch, memory_order_acquire) &&
         h->lt_routes[i].site == site && h->lt_routes[i].user == 0 && site != 0;
}
/* A block of `size` bytes was routed for the site. */
void pm_lt_routed(uint32_t user, size_t size);

/* For reports: the sites with long-lived samples, most routed bytes first. */
typedef struct pm_lt_site_info {
  uintptr_t site;
  uintptr_t caller; /* a wrapper's caller (its own entry); 0 for a site */
  bool wrapper;     /* a site whose callers are judged one by one */
  uint64_t classes; /* bit per size class seen in its samples */
  bool marked;
  bool resting; /* marked, its classes undiverted while it allocates nothing */
  uint64_t long_samples, short_samples, routed_blocks, routed_bytes;
  /* bytes allocated in all (the sampler's estimate) when it was first
   * marked: how long learning it took; 0 if never marked */
  uint64_t marked_after;
} pm_lt_site_info;
size_t pm_lt_top_sites(pm_lt_site_info *out, size_t max);
/* totals: samples taken, sites known, sites marked, rests (a marked site's
 * classes undiverted while it allocated nothing) */
void pm_lt_totals(uint64_t *samples, uint64_t *sites, uint64_t *marked, uint64_t *rested);

#endif
