/* sample.c - the allocation sampler and its two tables (see sample.h).
 *
 * Reached only from slow paths: once per sample (about one per
 * POOLMALLOC_PROFILE_RATE bytes per class and thread), and on frees of
 * blocks on watched pages or, while samples are live, of large blocks.
 * Both tables are fixed arrays in .bss updated with atomics; nothing
 * allocates. The peak: the live estimate (the sum of the weights of live
 * samples) says when to look, the page table what the heap holds then
 * (consider_peak, below). */
#define _GNU_SOURCE
#include "sample.h"
#include "je_support.h"
#include "options.h"
#include "os.h"
#include "page.h"
#include "unwind.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

PM_HOT bool pm_sample_on, pm_sample_stacks;
PM_TLS int pm_sample_busy;
_Atomic uint32_t pm_sample_live;

/* ---- the profile's stacks ---- */

/* poolmalloc's own walk (unwind.h) by default: nothing to load, about 40
 * instructions a frame once its rule is cached. POOLMALLOC_UNWINDER picks
 * libgcc's _Unwind_Backtrace (1) or libunwind's unw_backtrace (2), loaded
 * by the constructor: they also step through signal frames. */
typedef int (*trace_fn)(void *ctx, void *arg);
static int (*unwind_backtrace)(trace_fn, void *);
static uintptr_t (*unwind_getip)(void *);
static int (*unw_backtrace_fn)(void **frames, int max);

void pm_sample_load_unwinder(unsigned which) {
  if (which == 2) {
    void *u = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (u != NULL) unw_backtrace_fn = (int (*)(void **, int))dlsym(u, "unw_backtrace");
    return; /* without it, the own walk */
  }
  if (which != 1) return;
  void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (lib == NULL) lib = dlopen("libgcc_s.so.1", RTLD_NOW);
  if (lib == NULL) return;
  unwind_getip = (uintptr_t(*)(void *))dlsym(lib, "_Unwind_GetIP");
  unwind_backtrace = (int (*)(trace_fn, void *))dlsym(lib, "_Unwind_Backtrace");
}

typedef struct walk {
  uintptr_t *frames;
  uint32_t n, skip_until_site;
  uintptr_t site;
} walk;

static int on_frame(void *ctx, void *arg) {
  walk *w = arg;
  uintptr_t ip = unwind_getip(ctx);
  if (w->skip_until_site) { /* poolmalloc's own frames come first */
    if (ip != w->site) return w->n++ < 16 ? 0 : 5;
    w->skip_until_site = 0;
    w->n = 0;
  }
  if (w->n >= PM_STACK_MAX || ip == 0) return 5; /* _URC_END_OF_STACK */
  w->frames[w->n++] = ip;
  return 0;
}

/* libunwind: the whole stack at once, then the part above the site */
static uint32_t capture_unw(uintptr_t *frames, uintptr_t site) {
  void *all[PM_STACK_MAX + 16];
  int n = unw_backtrace_fn(all, PM_STACK_MAX + 16);
  for (int i = 0; i < n && i < 16; i++) {
    if ((uintptr_t)all[i] != site) continue;
    uint32_t k = 0;
    for (int j = i; j < n && k < PM_STACK_MAX && all[j] != NULL; j++)
      frames[k++] = (uintptr_t)all[j];
    return k;
  }
  frames[0] = site; /* the site was not on the stack */
  return 1;
}

/* the stack above the allocation: frames[0] is the call site */
static uint32_t capture(uintptr_t *frames, uintptr_t site) {
  uint32_t n = 0;
  bool loaded =
      unw_backtrace_fn != NULL || (unwind_backtrace != NULL && unwind_getip != NULL);
  if (pm_sample_stacks && site != 0 && !loaded) {
    n = pm_unwind_stack(site, frames, PM_STACK_MAX, 16); /* own frames: at most 16 */
  } else if (pm_sample_stacks && site != 0 && pm_unwind_enter()) {
    /* a loaded unwinder takes the loader's list lock too: the fork gate */
    if (unw_backtrace_fn != NULL) {
      n = capture_unw(frames, site);
    } else {
      walk w = {frames, 0, 1, site};
      unwind_backtrace(on_frame, &w);
      n = w.skip_until_site ? 0 : w.n;
    }
    pm_unwind_leave();
  }
  if (n == 0) { /* the site was not on the stack */
    frames[0] = site;
    return 1;
  }
  return n;
}

/* poolmalloc's frames below the site are at most 9 (pm_unwind_caller,
 * this one, pm_lt_route, pm_malloc_tick, pm_malloc_counted, realloc's
 * helpers, realloc...); a few more for a margin */
#define PM_CALLER_DEPTH 12

uintptr_t pm_sample_caller(uintptr_t site) {
  if (pm_sample_busy) return 0; /* inside the profile's unwinder */
  return pm_unwind_caller(site, PM_CALLER_DEPTH);
}

/* ---- modules: the loaded objects frames fall in, kept after dlclose ---- */

#define MODULE_SLOTS 256
typedef struct module {
  uintptr_t base, lo, hi; /* load address; the range of its PT_LOAD segments */
  char path[200];
} module;
static module modules[MODULE_SLOTS];
static _Atomic uint32_t nmodules;
static _Atomic int modules_busy;

static int module_find(uintptr_t ip) {
  uint32_t n = atomic_load_explicit(&nmodules, memory_order_acquire);
  for (uint32_t i = n; i-- > 0;)
    if (ip >= modules[i].lo && ip < modules[i].hi) return (int)i;
  return -1;
}

typedef struct module_scan {
  uintptr_t ip;
} module_scan;

static int add_module(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  module_scan *m = arg;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (unsigned i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (a < lo) lo = a;
    if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
  }
  if (m->ip < lo || m->ip >= hi) return 0;
  uint32_t n = relaxed_load(&nmodules);
  if (n >= MODULE_SLOTS) return 1;
  module *mod = &modules[n];
  mod->base = info->dlpi_addr;
  mod->lo = lo;
  mod->hi = hi;
  const char *name = info->dlpi_name;
  if (name == NULL || name[0] == 0) { /* the main program */
    ssize_t k = 0;
    char exe[sizeof mod->path];
    k = pm_os_readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
    memcpy(mod->path, exe, sizeof exe);
  } else {
    size_t k = strlen(name);
    if (k >= sizeof mod->path) k = sizeof mod->path - 1;
    memcpy(mod->path, name, k);
    mod->path[k] = 0;
  }
  atomic_store_explicit(&nmodules, n + 1, memory_order_release);
  return 1;
}

/* makes sure the module of every frame is in the table (new stacks only) */
static void note_modules(const uintptr_t *f, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    if (module_find(f[i]) >= 0) continue;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&modules_busy, &expected, 1)) return;
    if (module_find(f[i]) < 0) {
      module_scan m = {f[i]};
      dl_iterate_phdr(add_module, &m);
    }
    atomic_store(&modules_busy, 0);
  }
}

size_t pm_sample_modules(pm_module_info *out, size_t max) {
  size_t n = 0;
  while (n < max && pm_sample_module((int)n, &out[n]))
    n++;
  return n;
}

bool pm_sample_module(int i, pm_module_info *out) {
  if (i < 0 || (uint32_t)i >= atomic_load_explicit(&nmodules, memory_order_acquire))
    return false;
  out->base = modules[i].base;
  out->lo = modules[i].lo;
  out->hi = modules[i].hi;
  out->path = modules[i].path;
  return true;
}

int pm_sample_module_of(uintptr_t ip) {
  return module_find(ip);
}

/* ---- the stack table ---- */

/* A slot is one cache line; its frames live in frame_pool, filled densely
 * in insertion order, so a process with few stacks touches few pages of
 * either (slots with the frames inside were 320 bytes each, and hashing
 * spread 158 stacks of `node -e 1` over 632 KiB). The slots too are handed
 * out in order and found through a hash index of their numbers: placed by
 * hash, a process with a hundred stacks touched most of the 256 KiB. */
typedef struct stack {
  _Atomic uint64_t hash; /* 0: unused (or left by an insertion that lost) */
  uint32_t depth, first; /* frames: frame_pool[first .. first + depth) */
  _Atomic uint64_t alloc_bytes, alloc_blocks, live_bytes, live_blocks;
  uint64_t peak_bytes, peak_blocks; /* copied at the peak snapshot */
} stack;
static stack stacks[PM_STACK_SLOTS];
static uintptr_t frame_pool[PM_STACK_SLOTS * PM_STACK_MAX];
static _Atomic uint32_t frames_used;
static _Atomic uint32_t nstacks;
/* the slots in use, in insertion order (walks touch only those) */
static _Atomic uint32_t stack_order[PM_STACK_SLOTS];
static _Atomic uint16_t stack_index[2 * PM_STACK_SLOTS]; /* slot + 1; 0: empty */
static _Atomic uint32_t stacks_used;                     /* slots handed out */
#define STACK_PROBE 32

static uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  return k ^ (k >> 33);
}

static uint64_t hash_frames(const uintptr_t *f, uint32_t n) {
  uint64_t h = n;
  for (uint32_t i = 0; i < n; i++)
    h = mix(h ^ f[i]);
  return h < 2 ? h + 2 : h;
}

static bool stack_is(const stack *s, uint64_t h, const uintptr_t *f, uint32_t n) {
  return atomic_load_explicit(&s->hash, memory_order_acquire) == h && s->depth == n &&
         memcmp(&frame_pool[s->first], f, n * sizeof *f) == 0;
}

/* A new slot for the stack, written but not yet in the index: 0 if the
 * table is full, else its number + 1. Room for the frames: the pool holds
 * PM_STACK_MAX per slot, and a slot is handed out once, so it never runs
 * out. */
static uint32_t stack_new(uint64_t h, const uintptr_t *f, uint32_t n) {
  if (relaxed_load(&stacks_used) >= PM_STACK_SLOTS) return 0;
  uint32_t e = atomic_fetch_add_explicit(&stacks_used, 1, memory_order_relaxed);
  if (e >= PM_STACK_SLOTS) return 0;
  stack *s = &stacks[e];
  uint32_t first = atomic_fetch_add_explicit(&frames_used, n, memory_order_relaxed);
  s->depth = n;
  s->first = first;
  memcpy(&frame_pool[first], f, n * sizeof *f);
  if (pm_sample_stacks) note_modules(f, n);
  atomic_store_explicit(&s->hash, h, memory_order_release);
  return e + 1;
}

/* the stack's slot, inserted if new; NULL if the table is full (or full
 * around its hash) */
static stack *stack_find(const uintptr_t *f, uint32_t n) {
  uint64_t h = hash_frames(f, n);
  uint32_t mine = 0; /* a slot written for it, + 1 */
  for (uint32_t i = 0; i < STACK_PROBE; i++) {
    _Atomic uint16_t *slot = &stack_index[(h + i) & (2 * PM_STACK_SLOTS - 1)];
    uint16_t v = atomic_load_explicit(slot, memory_order_acquire);
    if (v == 0) {
      if (mine == 0 && (mine = stack_new(h, f, n)) == 0) return NULL;
      if (atomic_compare_exchange_strong(slot, &v, (uint16_t)mine)) {
        uint32_t k = atomic_fetch_add(&nstacks, 1);
        atomic_store_explicit(&stack_order[k], mine, memory_order_release);
        return &stacks[mine - 1];
      }
      /* another thread took the index slot: v is its stack */
    }
    if (stack_is(&stacks[v - 1], h, f, n)) {
      /* inserted by another thread first: the slot written is left unused */
      if (mine != 0)
        atomic_store_explicit(&stacks[mine - 1].hash, 0, memory_order_relaxed);
      return &stacks[v - 1];
    }
  }
  if (mine != 0) atomic_store_explicit(&stacks[mine - 1].hash, 0, memory_order_relaxed);
  return NULL;
}

/* ---- live samples: address -> stack, weight, birth ---- */

/* The table has room for SAMPLE_BUCKETS buckets but uses the first
 * `nbuckets`, doubled (never halved) when live samples pass half of their
 * slots: at the adaptive rate a process keeps a few hundred live samples, and
 * hashing them over all 786 KiB touched every page of it. A sample stays in
 * the bucket it was put in; its free looks in its bucket of each size used
 * so far, largest first (at most seven: 32 to 2048 buckets). Routing alone
 * keeps a few dozen live samples in a small process: 128 buckets to start
 * with touched 10 pages (40 KiB of bench_churn's peak RSS), 32 touch 3. */
#define SAMPLE_BUCKETS 2048 /* power of two */
#define SAMPLE_BUCKETS_MIN 32
#define BUCKET_SLOTS 8
typedef struct live_sample {
  _Atomic uintptr_t ptr; /* 0 empty, 1 being written or read */
  uint32_t stack;        /* index + 1; 0: no stack (table full) */
  uint32_t user;
  uint64_t weight, birth;
  uint32_t blocks; /* the blocks it stands for */
  uint8_t flag;
  uint8_t large; /* not on a pool page (counted in live_large) */
} live_sample;
static live_sample samples[SAMPLE_BUCKETS * BUCKET_SLOTS];
static _Atomic uint32_t nbuckets = SAMPLE_BUCKETS_MIN;
static _Atomic uint32_t scan_cursor;

static _Atomic uint64_t clock_bytes, peak_est, nsamples, ndropped;
PM_HOT static _Atomic uint64_t live_est; /* read by every draw (rate_now) */
static _Atomic uint64_t live_large;      /* the live samples' weights off pool pages */
/* the profile's peak: counted, the estimate then, and the state of the looks */
static _Atomic uint64_t peak_counted, peak_sampled, look_ref, look_clock, look_gap,
    nlooks;
/* the report's look: live bytes counted then, and the estimate then; the
 * bytes allocated in all, exact (the report's counters) and estimated */
static _Atomic uint64_t now_counted, now_sampled, alloc_exact, alloc_sampled;
static _Atomic uint64_t peak_ms, peak_rss, peak_pool;
static _Atomic int looking;
static uint32_t rate_max = 512 * 1024;
/* written by every allocating process (pm_sample_init, the first draws) */
PM_HOT static uint32_t rate_floor;
static _Atomic uint32_t rate_lo = UINT32_MAX; /* drawn so far */
PM_HOT static _Atomic uint32_t rate_hi;

/* what the pool pages hold now (heap.c, above this layer: start.c passes it) */
static uint64_t (*count_pool)(void);

void pm_sample_init(bool profile, bool sites, uint64_t (*count)(void)) {
  count_pool = count;
  pm_sample_stacks = profile;
  pm_sample_on = profile || sites;
  rate_max = pm_opt.profile_rate ? (uint32_t)pm_opt.profile_rate : 512 * 1024;
  uint32_t floor = profile ? PM_SAMPLE_RATE_MIN : PM_SAMPLE_RATE_MIN_SITES;
  rate_floor = rate_max < floor ? rate_max : floor;
}

/* the rate for a distance drawn now (see sample.h) */
static uint32_t rate_now(void) {
  uint64_t r = relaxed_load(&live_est) / PM_SAMPLE_LIVE_TARGET;
  if (r < rate_floor) r = rate_floor;
  if (r > rate_max) r = rate_max;
  if (r < relaxed_load(&rate_lo))
    atomic_store_explicit(&rate_lo, (uint32_t)r, memory_order_relaxed);
  if (r > relaxed_load(&rate_hi))
    atomic_store_explicit(&rate_hi, (uint32_t)r, memory_order_relaxed);
  return (uint32_t)r;
}

uint64_t pm_sample_clock(void) {
  return relaxed_load(&clock_bytes);
}

uint64_t pm_sample_live_bytes(void) {
  return relaxed_load(&live_est);
}

uint64_t pm_sample_peak_bytes(void) {
  return relaxed_load(&peak_est);
}

int64_t pm_sample_draw(pm_heap *h, uint32_t *rate) {
  *rate = rate_now();
  /* xorshift64*, then -rate * ln(u) with u in (0, 1] */
  uint64_t x = h->rng ? h->rng : (uint64_t)(uintptr_t)h | 1;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  h->rng = x;
  double u = (double)((x * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
  double d = -pm_je_support_log(u > 0 ? u : 1e-300) * (double)*rate;
  if (d < 1) d = 1;
  if (d > 1e15) d = 1e15;
  return (int64_t)d;
}

/* the bytes a sample of `size` stands for: size / (1 - exp(-size / rate)) */
static uint64_t weight_of(size_t size, uint32_t rate) {
  double s = (double)(size ? size : 1), r = (double)(rate ? rate : rate_max);
  if (s >= 40 * r) return (uint64_t)s;
  double p = 1.0 - pm_je_support_exp(-s / r);
  return (uint64_t)(s / p + 0.5);
}

static live_sample *bucket_at(uint64_t h, uint32_t nb) {
  return &samples[(h & (nb - 1)) * BUCKET_SLOTS];
}

/* doubles the buckets in use when live samples fill half their slots, or
 * when `full` (a sample found its bucket full); the count in use */
static uint32_t grow_buckets(bool full) {
  uint32_t nb = atomic_load_explicit(&nbuckets, memory_order_acquire);
  while (nb < SAMPLE_BUCKETS &&
         (full || relaxed_load(&pm_sample_live) > nb * BUCKET_SLOTS / 2)) {
    if (atomic_compare_exchange_weak(&nbuckets, &nb, nb * 2)) return nb * 2;
    full = false; /* another thread grew it: look again */
  }
  return nb;
}

/* The peak. The live estimate reads high at its highest: with n live
 * samples it wanders by about 1/sqrt(n) of itself, and over a long run its
 * maximum is the maximum of that wander (a steady 1 MiB heap sampled once
 * per 64 KiB, ~16 live samples, peaked at 2.0-2.3 MiB). So the estimate only
 * says when to look, and a look counts what the heap holds: the page
 * table's live blocks (exact; in bytes by each class's mean request) plus
 * the large samples' weights (a block much larger than the rate is sampled
 * almost surely, at its size). A look happens
 * - when the program has allocated, since the last look, 1/32 of the peak
 *   if that look found the heap grown by 1/256, and twice the last such span
 *   if it did not: a heap that grows is looked at every 1/32 of its growth
 *   whatever the estimate reads (whose wander, 6% at 256 live samples, hid
 *   the last few percent of a growth to its peak from the rules below:
 *   38.2 MiB counted of tests/report/sites_prog.c's 40 MiB), and a heap
 *   that stays (or wavers by less than 1/256) a logarithmic number of times;
 * - when the estimate passes by 1/32 the one at the look that found the
 *   peak (raised by each later look that found nothing more): a growing
 *   heap is looked at every 1/32 of its growth, and a heap that stays is
 *   looked at as the estimate wanders to new highs (a reference at the
 *   highest estimate of any look, never lowered, missed the last 2-6% of
 *   python3's growth to its peak: the estimate had read high earlier);
 * - when it passes the counted peak by 1/32 and the program has allocated,
 *   since the last look, twice the bytes of the pool pages in use (what a
 *   look reads, so its cost stays a small share of the allocating): a
 *   later peak that the estimate's early wander hid is still found if it
 *   lasts a few such spans.
 * A look that counts more than the peak so far is the new peak: every
 * stack's live estimate is copied as its figure at the peak, and reports
 * scale those copies by counted / estimated then (pm_sample_top). A look
 * never waits: one at a time, and a thread that finds one running (another
 * thread, or its own interrupted by a signal handler) goes on. */
static uint64_t look(uint64_t est) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&looking, &expected, 1)) return UINT64_MAX;
  atomic_fetch_add_explicit(&nlooks, 1, memory_order_relaxed);
  relaxed_store(&look_clock, relaxed_load(&clock_bytes));
  uint64_t counted = (count_pool ? count_pool() : 0) + relaxed_load(&live_large);
  uint64_t peak = relaxed_load(&peak_counted), gap = relaxed_load(&look_gap);
  bool grew = counted > peak + peak / 256;
  if (grew || est > relaxed_load(&look_ref))
    relaxed_store(&look_ref, est); /* grown: the estimate where the heap is now */
  if (grew)
    gap = counted / 32; /* look again after 1/32 more */
  else if (gap < UINT64_MAX / 4)
    gap *= 2; /* nothing new: look half as often */
  relaxed_store(&look_gap, gap > PM_SAMPLE_RATE_MIN ? gap : PM_SAMPLE_RATE_MIN);
  if (counted > peak) {
    uint32_t n = atomic_load_explicit(&nstacks, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t slot = atomic_load_explicit(&stack_order[i], memory_order_acquire);
      if (slot == 0) continue; /* being inserted */
      stack *s = &stacks[slot - 1];
      s->peak_bytes = relaxed_load(&s->live_bytes);
      s->peak_blocks = relaxed_load(&s->live_blocks);
    }
    relaxed_store(&peak_sampled, relaxed_load(&live_est));
    relaxed_store(&peak_counted, counted);
    relaxed_store(&peak_ms, pm_os_uptime_ns() / 1000000);
    size_t rss, hwm;
    pm_os_rss(&rss, &hwm);
    relaxed_store(&peak_rss, rss);
    relaxed_store(&peak_pool, relaxed_load(&pm_pages_in_use) << pm_g.page_shift);
  }
  atomic_store(&looking, 0);
  return counted;
}

static void consider_peak(uint64_t est) {
  uint64_t ref = relaxed_load(&look_ref), counted = relaxed_load(&peak_counted);
  uint64_t since = relaxed_load(&clock_bytes) - relaxed_load(&look_clock);
  if (est > ref + ref / 32 || since >= relaxed_load(&look_gap) ||
      (est > counted + counted / 32 &&
       since >= 2 * (relaxed_load(&pm_pages_in_use) << pm_g.page_shift)))
    look(est);
}

void pm_sample_postfork_child(void) {
  atomic_store(&looking, 0); /* a look of a thread that is gone */
}

/* w more bytes live (a new sample, or one that grew): the estimates, and
 * maybe a look for the peak */
static void add_live(uint64_t w, bool large) {
  if (large) atomic_fetch_add_explicit(&live_large, w, memory_order_relaxed);
  uint64_t est = atomic_fetch_add_explicit(&live_est, w, memory_order_relaxed) + w;
  pm_atomic_max(&peak_est, est);
  if (pm_sample_stacks) consider_peak(est);
}

/* enters the block p as a live sample of weight w standing for `blocks`
 * blocks, with the stack of the allocation at `site` */
static bool insert(const void *p, uint64_t w, uint64_t blocks, uintptr_t site,
                   uint32_t user) {
  uintptr_t frames[PM_STACK_MAX];
  /* the unwinder may allocate (libgcc sorts the FDEs of registered frames
   * with malloc while it holds its object mutex): such allocations are
   * never sampled, or their sample would unwind into that mutex */
  pm_sample_busy = 1;
  uint32_t n = capture(frames, site);
  pm_sample_busy = 0;
  atomic_fetch_add_explicit(&nsamples, 1, memory_order_relaxed);
  uint64_t now = atomic_fetch_add_explicit(&clock_bytes, w, memory_order_relaxed);
  uint64_t h = mix((uintptr_t)p);
  live_sample *e = NULL;
  for (int tries = 0; tries < 2 && e == NULL; tries++) {
    live_sample *b = bucket_at(h, grow_buckets(tries > 0));
    for (unsigned i = 0; i < BUCKET_SLOTS && e == NULL; i++) {
      uintptr_t expected = 0;
      if (relaxed_load(&b[i].ptr) == 0 &&
          atomic_compare_exchange_strong(&b[i].ptr, &expected, (uintptr_t)1))
        e = &b[i];
    }
  }
  if (e == NULL) {
    atomic_fetch_add_explicit(&ndropped, 1, memory_order_relaxed);
    return false;
  }
  /* routing alone (no profile) reads no stacks: their tables stay untouched */
  stack *s = pm_sample_stacks ? stack_find(frames, n) : NULL;
  if (blocks > UINT32_MAX) blocks = UINT32_MAX;
  if (s != NULL) {
    atomic_fetch_add_explicit(&s->alloc_bytes, w, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->alloc_blocks, blocks, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->live_bytes, w, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->live_blocks, blocks, memory_order_relaxed);
  } else if (pm_sample_stacks) {
    atomic_fetch_add_explicit(&ndropped, 1, memory_order_relaxed);
  }
  e->stack = s ? (uint32_t)(s - stacks) + 1 : 0;
  e->blocks = (uint32_t)blocks;
  /* the fields a scan reads without claiming the entry: relaxed atomics */
  __atomic_store_n(&e->user, user, __ATOMIC_RELAXED);
  __atomic_store_n(&e->weight, w, __ATOMIC_RELAXED);
  __atomic_store_n(&e->birth, now, __ATOMIC_RELAXED);
  __atomic_store_n(&e->flag, 0, __ATOMIC_RELAXED);
  e->large = !pm_is_pool_ptr(p);
  atomic_fetch_add(&pm_sample_live, 1);
  atomic_store_explicit(&e->ptr, (uintptr_t)p, memory_order_release);
  add_live(w, e->large);
  return true;
}

bool pm_sample_record(const void *p, size_t size, uint32_t rate, uintptr_t site,
                      uint32_t user) {
  uint64_t w = weight_of(size, rate);
  return insert(p, w, (w + size / 2) / (size ? size : 1), site, user);
}

bool pm_sample_record_growth(const void *p, size_t grown, uint32_t rate, uintptr_t site) {
  return insert(p, weight_of(grown, rate), 1, site, 0);
}

/* p's entry in the bucket b, claimed (ptr 1) */
static live_sample *claim_in(live_sample *b, const void *p) {
  for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
    uintptr_t expected = (uintptr_t)p;
    if (relaxed_load(&b[i].ptr) == expected &&
        atomic_compare_exchange_strong(&b[i].ptr, &expected, (uintptr_t)1))
      return &b[i];
  }
  return NULL;
}

pm_sample_slot *pm_sample_hold(const void *p) {
  uint64_t h = mix((uintptr_t)p);
  live_sample *seen = NULL, *e;
  for (uint32_t nb = atomic_load_explicit(&nbuckets, memory_order_acquire);
       nb >= SAMPLE_BUCKETS_MIN; nb /= 2) {
    live_sample *b = bucket_at(h, nb);
    if (b != seen && (e = claim_in(b, p)) != NULL) return e;
    seen = b; /* a smaller size maps p to the same bucket when h's top bit is 0 */
  }
  return NULL;
}

void pm_sample_keep(pm_sample_slot *e, const void *p, size_t grown, uint32_t rate) {
  bool large = !pm_is_pool_ptr(p);
  if (large != e->large) { /* moved between the pools and the large tier */
    uint64_t w = __atomic_load_n(&e->weight, __ATOMIC_RELAXED);
    if (large)
      atomic_fetch_add_explicit(&live_large, w, memory_order_relaxed);
    else
      atomic_fetch_sub_explicit(&live_large, w, memory_order_relaxed);
    e->large = large;
  }
  if (rate != 0) {
    uint64_t w = weight_of(grown, rate);
    atomic_fetch_add_explicit(&nsamples, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&clock_bytes, w, memory_order_relaxed);
    __atomic_store_n(&e->weight, e->weight + w, __ATOMIC_RELAXED);
    if (e->stack) {
      stack *s = &stacks[e->stack - 1];
      atomic_fetch_add_explicit(&s->alloc_bytes, w, memory_order_relaxed);
      atomic_fetch_add_explicit(&s->live_bytes, w, memory_order_relaxed);
    }
    add_live(w, large);
  }
  atomic_store_explicit(&e->ptr, (uintptr_t)p, memory_order_release);
}

void pm_sample_drop(pm_sample_slot *e, pm_sample_info *out) {
  out->weight = __atomic_load_n(&e->weight, __ATOMIC_RELAXED);
  out->birth = __atomic_load_n(&e->birth, __ATOMIC_RELAXED);
  out->user = __atomic_load_n(&e->user, __ATOMIC_RELAXED);
  out->flag = __atomic_load_n(&e->flag, __ATOMIC_RELAXED);
  if (e->stack) {
    stack *s = &stacks[e->stack - 1];
    atomic_fetch_sub_explicit(&s->live_bytes, e->weight, memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->live_blocks, e->blocks, memory_order_relaxed);
  }
  if (e->large) atomic_fetch_sub_explicit(&live_large, e->weight, memory_order_relaxed);
  atomic_fetch_sub_explicit(&live_est, e->weight, memory_order_relaxed);
  atomic_fetch_sub(&pm_sample_live, 1);
  atomic_store_explicit(&e->ptr, 0, memory_order_release);
}

bool pm_sample_forget(const void *p, pm_sample_info *out) {
  pm_sample_slot *e = pm_sample_hold(p);
  if (e == NULL) return false;
  pm_sample_drop(e, out);
  return true;
}

/* A scan reads an entry without claiming it: a claimed entry (ptr 1) made
 * a free of that block in another thread miss it, leaving a stale entry
 * and the live estimate too high (the growing table made scans 16× more
 * frequent per slot, and unit_lifetime's threads test caught it). The
 * fields are read, then the pointer again: if the block was freed in
 * between, the entry is skipped; a flag set on an entry reused meanwhile
 * only skips one verdict. */
void pm_sample_scan(unsigned n, pm_sample_visit_fn fn) {
  uint64_t now = relaxed_load(&clock_bytes);
  uint32_t start = atomic_fetch_add_explicit(&scan_cursor, n, memory_order_relaxed);
  for (uint32_t k = 0; k < n; k++) {
    live_sample *e = &samples[(start + k) % (relaxed_load(&nbuckets) * BUCKET_SLOTS)];
    uintptr_t p = atomic_load_explicit(&e->ptr, memory_order_acquire);
    if (p <= 1) continue;
    pm_sample_info info = {__atomic_load_n(&e->weight, __ATOMIC_RELAXED),
                           __atomic_load_n(&e->birth, __ATOMIC_RELAXED),
                           __atomic_load_n(&e->user, __ATOMIC_RELAXED),
                           __atomic_load_n(&e->flag, __ATOMIC_RELAXED)};
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->ptr, memory_order_relaxed) != p) continue;
    uint8_t flag = info.flag;
    fn(&info, &flag, now);
    if (flag != info.flag) __atomic_store_n(&e->flag, flag, __ATOMIC_RELAXED);
  }
}

/* ---- reports ---- */

static uint64_t key_of(const pm_stack_info *s, int key) {
  return key == 0 ? s->peak_bytes : key == 1 ? s->live_bytes : s->alloc_bytes;
}

/* a stack's figure as its share of a counted total: the estimate's total
 * was `sampled` when the count was `counted` (look) */
static uint64_t scale_to(uint64_t v, const _Atomic uint64_t *counted,
                         const _Atomic uint64_t *sampled) {
  uint64_t c = relaxed_load(counted), e = relaxed_load(sampled);
  if (e == 0) return v;
  return (uint64_t)((double)v * (double)c / (double)e + 0.5);
}

size_t pm_sample_top(pm_stack_info *out, size_t max, int key) {
  size_t n = 0;
  uint32_t used = relaxed_load(&stacks_used);
  for (uint32_t i = 0; i < used && i < PM_STACK_SLOTS; i++) {
    stack *s = &stacks[i];
    if (atomic_load_explicit(&s->hash, memory_order_acquire) < 2) continue;
    pm_stack_info info = {
        s->depth,
        &frame_pool[s->first],
        scale_to(relaxed_load(&s->alloc_bytes), &alloc_exact, &alloc_sampled),
        scale_to(relaxed_load(&s->alloc_blocks), &alloc_exact, &alloc_sampled),
        scale_to(relaxed_load(&s->live_bytes), &now_counted, &now_sampled),
        scale_to(relaxed_load(&s->live_blocks), &now_counted, &now_sampled),
        scale_to(s->peak_bytes, &peak_counted, &peak_sampled),
        scale_to(s->peak_blocks, &peak_counted, &peak_sampled)};
    if (key_of(&info, key) == 0) continue;
    size_t j = n < max ? n++ : max;
    while (j > 0 && key_of(&out[j - 1], key) < key_of(&info, key)) {
      if (j < max) out[j] = out[j - 1];
      j--;
    }
    if (j < max) out[j] = info;
  }
  return n;
}

void pm_sample_allocated_exact(uint64_t exact) {
  relaxed_store(&alloc_exact, exact);
  relaxed_store(&alloc_sampled, relaxed_load(&clock_bytes));
}

void pm_sample_totals(pm_profile_totals *t) {
  t->samples = relaxed_load(&nsamples);
  t->dropped = relaxed_load(&ndropped);
  t->stacks = relaxed_load(&nstacks);
  /* the report counts what the heap holds now, as a look for the peak does
   * (which it may be: a heap that grows to the end); the sites' live
   * figures are then their shares of that count. Without a count (no
   * profile, or another thread's look under way) the estimate. */
  uint64_t est = relaxed_load(&live_est), counted = UINT64_MAX;
  if (pm_sample_stacks && relaxed_load(&nsamples) != 0) counted = look(est);
  relaxed_store(&now_counted, counted != UINT64_MAX ? counted : est);
  relaxed_store(&now_sampled, counted != UINT64_MAX ? est : 0);
  t->live_bytes = relaxed_load(&now_counted);
  t->live_sampled = est;
  t->peak_bytes = relaxed_load(&peak_counted);
  t->peak_sampled = relaxed_load(&peak_sampled);
  t->looks = relaxed_load(&nlooks);
  t->peak_ms = relaxed_load(&peak_ms);
  t->peak_rss = relaxed_load(&peak_rss);
  t->peak_pool_bytes = relaxed_load(&peak_pool);
  uint32_t lo = relaxed_load(&rate_lo), hi = relaxed_load(&rate_hi);
  t->rate_min = lo <= hi ? lo : rate_max;
  t->rate_max = lo <= hi ? hi : rate_max;
}

uint64_t pm_sample_metadata_bytes(void) {
  /* the stacks stored, their frames, and the pages of the sample table's
   * buckets in use touched so far (samples land in random buckets) */
  uint64_t pages = relaxed_load(&nbuckets) * BUCKET_SLOTS * sizeof(live_sample) / 4096,
           touched = relaxed_load(&nsamples);
  return (uint64_t)relaxed_load(&nstacks) * sizeof(stack) +
         (uint64_t)relaxed_load(&frames_used) * sizeof(uintptr_t) +
         (touched < pages ? touched : pages) * 4096;
}
