/* sample.h - the allocation sampler: one sample per POOLMALLOC_PROFILE_RATE
 * bytes on average, with its call stack, watched until it is freed.
 *
 * Each thread counts down bytes per size class (the countdown the malloc
 * fast path already has); when it runs out the request is sampled and the
 * next distance is drawn from an exponential distribution with the rate as
 * its mean (as tcmalloc, jemalloc's lg_prof_sample and Go's MemProfileRate
 * do). A request of s bytes is then sampled with probability
 * 1 - exp(-s/rate), so a sample stands for s / (1 - exp(-s/rate)) bytes
 * (its weight) and sums of weights estimate allocated, live and peak bytes
 * without bias. A sample's stack (up to PM_STACK_MAX frames, from libgcc's
 * unwinder, or only the call site when profiling is off and lifetime
 * routing asks) is stored once in a fixed table keyed by its hash; the
 * sampled block is entered in a fixed table keyed by address until it is
 * freed. Nothing here allocates or takes a lock; a full table drops the
 * sample and counts it.
 *
 * Sampled pool blocks live on pages of the thread's auxiliary heap, marked
 * `watched`, so only frees that already leave the fast path look them up;
 * sampled large blocks are looked up on the large free path. */
#ifndef PM_SAMPLE_H
#define PM_SAMPLE_H

#include "types.h"

#define PM_STACK_MAX 32
#define PM_STACK_SLOTS 4096 /* distinct stacks kept */

/* Set up at process start from the options: sampling on for the profile
 * (with stacks) or for lifetime routing (call site only). count_pool: the
 * bytes the pool blocks live now hold (pm_heaps_live_requested), with
 * which the profile counts its peak. */
void pm_sample_init(bool profile, bool sites, uint64_t (*count_pool)(void));
extern bool pm_sample_on; /* either */
/* this thread is inside the sampler (its unwinder allocating): no sample */
extern PM_TLS int pm_sample_busy;
extern bool pm_sample_stacks; /* whole stacks (the profile) */
/* Loads the unwinder (the library constructor, when profiling: never from
 * inside malloc, where the loader's lock could be held by a fork). */
void pm_sample_load_unwinder(unsigned which); /* POOLMALLOC_UNWINDER */

/* The return address one frame above `site`: the caller of the function
 * that holds the call site (lifetime routing keys an allocation wrapper's
 * samples by it). 0 when the site is not on the stack or a frame cannot be
 * stepped. poolmalloc's own unwinder (unwind.h): nothing to load. */
uintptr_t pm_sample_caller(uintptr_t site);

/* A distance to the next sample, in bytes (exponential), drawn with the
 * rate of the moment as its mean, which is stored in *rate: the weight of
 * the sample that ends this distance must use the same rate.
 *
 * The rate adapts to the heap: POOLMALLOC_PROFILE_RATE is its ceiling,
 * reached once the live estimate is PM_SAMPLE_LIVE_TARGET rates or more;
 * below, the rate is live/PM_SAMPLE_LIVE_TARGET, down to PM_SAMPLE_RATE_MIN
 * with the profile on, PM_SAMPLE_RATE_MIN_SITES for routing alone (a
 * PROFILE_RATE at or below the floor is used as it is). The error of the
 * peak and exit estimates is about 1/sqrt(live samples): a fixed 512 KiB
 * gives a 17 MB heap 33 samples (+-17%), the adaptive rate about
 * PM_SAMPLE_LIVE_TARGET (+-6%) for any heap of 16 MiB or more. */
#define PM_SAMPLE_LIVE_TARGET 256
#define PM_SAMPLE_RATE_MIN (64u << 10)
/* The floor when only lifetime routing samples (no profile): routing needs
 * samples in proportion to the memory at stake, and a small heap has
 * little. At 64 KiB, bench_churn's 1.3 MB heap took a sample every ~470
 * allocations and routing cost it 9-16% of its time (each sample touches
 * the site table, the cohorts, the sample table and a watched page); at
 * 256 KiB callgrind counts +0.3% instructions instead of +2.8%. */
#define PM_SAMPLE_RATE_MIN_SITES (256u << 10)
int64_t pm_sample_draw(pm_heap *h, uint32_t *rate);

/* Records the sampled block p of `size` bytes requested from `site` (the
 * caller's return address): captures the stack, adds the sample's weight
 * to its stack's counters. `user` is kept for the caller (lifetime.c's
 * site). false if the sample could not be recorded (table full). */
bool pm_sample_record(const void *p, size_t size, uint32_t rate, uintptr_t site,
                      uint32_t user);
/* The block p grew in place by `grown` bytes and that growth ran out the
 * countdown (drawn with `rate`): a sample of the growth, which stands for
 * weight_of(grown) bytes allocated and one block. */
bool pm_sample_record_growth(const void *p, size_t grown, uint32_t rate, uintptr_t site);

typedef struct pm_sample_info {
  uint64_t weight; /* bytes this sample stands for */
  uint64_t birth;  /* pm_sample_clock() when it was taken */
  uint32_t user;
  uint8_t flag; /* set by a pm_sample_scan visitor */
} pm_sample_info;
/* p is being freed: if it was sampled, takes it out and fills *out. */
bool pm_sample_forget(const void *p, pm_sample_info *out);
/* A block being reallocated: its sample (if it is one) is held, out of
 * sight of scans and frees, until the outcome is known. The block stayed
 * (grew in place, or the realloc failed): pm_sample_keep puts it back for
 * p, adding the weight of `grown` bytes when rate is not 0 (the growth ran
 * out the countdown); it keeps its birth and stack. The block moved:
 * pm_sample_drop takes it out as pm_sample_forget does. Held, the entry
 * cannot be confused with a sample of a new block at the old address (p is
 * freed by the move and may be another thread's at once). */
typedef struct live_sample pm_sample_slot;
pm_sample_slot *pm_sample_hold(const void *p);
void pm_sample_keep(pm_sample_slot *e, const void *p, size_t grown, uint32_t rate);
void pm_sample_drop(pm_sample_slot *e, pm_sample_info *out);
/* live samples (cheap test for the large free path) */
extern _Atomic uint32_t pm_sample_live;

/* Estimated bytes allocated so far (the sum of every sample's weight): the
 * clock lifetime routing measures ages with. */
uint64_t pm_sample_clock(void);
/* The estimated live heap (the sum of the live samples' weights). */
uint64_t pm_sample_live_bytes(void);
/* The highest live estimate so far (lifetime routing's yardstick; the
 * profile's peak is counted: pm_sample_totals). */
uint64_t pm_sample_peak_bytes(void);
/* fork's child: a look another thread had begun never ends there */
void pm_sample_postfork_child(void);

/* Visits up to n live samples (round robin): fn may mark one (*flag). */
typedef void (*pm_sample_visit_fn)(pm_sample_info *s, uint8_t *flag, uint64_t now);
void pm_sample_scan(unsigned n, pm_sample_visit_fn fn);

/* ---- for reports ---- */
typedef struct pm_stack_info {
  uint32_t depth;
  const uintptr_t *frames; /* innermost (the allocation's call site) first */
  uint64_t alloc_bytes, alloc_blocks, live_bytes, live_blocks, peak_bytes, peak_blocks;
} pm_stack_info;
/* The stacks, largest `key` first (0 peak, 1 live, 2 allocated); returns
 * how many were written (at most max). */
size_t pm_sample_top(pm_stack_info *out, size_t max, int key);
typedef struct pm_profile_totals {
  uint64_t samples, dropped, stacks, live_bytes, peak_ms, peak_rss, peak_pool_bytes,
      rate_min, rate_max; /* the range of rates (the option's when nothing was
                             sampled) */
  uint64_t live_sampled;  /* the live estimate now (live_bytes is counted) */
  uint64_t peak_bytes;    /* counted at a look (sample.c, "The peak") */
  uint64_t peak_sampled;  /* the live estimate at that look */
  uint64_t looks;         /* times the page table was counted for the peak */
} pm_profile_totals;
void pm_sample_totals(pm_profile_totals *t);
/* The bytes allocated in all, exact (the report's counters): the stacks'
 * allocated figures are reported as their shares of it from now on. */
void pm_sample_allocated_exact(uint64_t exact);
/* resident bytes of the sampler's tables (estimated) */
uint64_t pm_sample_metadata_bytes(void);

/* The modules (loaded objects) the stored frames fall in, recorded when a
 * stack is first seen, so a library unloaded since still has its name. */
typedef struct pm_module_info {
  uintptr_t base, lo, hi; /* load address; the range of its segments */
  const char *path;
} pm_module_info;
size_t pm_sample_modules(pm_module_info *out, size_t max);
/* module i (false if there is none) */
bool pm_sample_module(int i, pm_module_info *out);
/* index of the module holding ip, -1 if none */
int pm_sample_module_of(uintptr_t ip);

#endif
