/* lifetime.c - which call sites allocate long-lived blocks (see lifetime.h).
 *
 * Samples come from the sampler (sample.c): each one is attributed to its
 * call site and to a cohort (the samples taken around it); its verdict
 * comes when it is freed or when a scan finds it still live: long-lived if
 * it outlived its cohort or the age threshold (long_age), short-lived if
 * it died before. The site table is a fixed array in .bss updated with
 * atomics; nothing here allocates and nothing runs on the fast path. */
#include "lifetime.h"
#include "options.h"
#include "sample.h"

#include <string.h>

PM_HOT _Atomic uint64_t pm_lt_diverted;

PM_HOT static _Atomic uint64_t lt_samples;

/* ---- sites: return address (or wrapper and caller) -> counts ---- */
#define SITE_SLOTS 4096 /* power of two */
#define SITE_PROBE 16
/* A site whose samples come from two callers or more is an allocation
 * wrapper (a helper that calls malloc for its callers, CPython's
 * PyMem_RawMalloc, redis's zmalloc; callers are looked for only once a
 * site has both long- and short-lived samples): from then on its samples go
 * to an entry per (site, caller) — its "callers" — and each of those is
 * judged, marked and routed on its own; routing an allocation from the
 * wrapper reads its caller from the stack (pm_sample_caller) only while one
 * of its callers is marked. Callers get entries while the table is at most
 * half full: a program with thousands of callers of one wrapper (gcc's
 * xmalloc) must leave room for its plain sites. */
typedef struct lt_site {
  _Atomic uint64_t key;             /* the return address, or caller_key(); 0: empty */
  _Atomic uint32_t n_long, n_short; /* recent verdicts (halved every 32) */
  _Atomic uint32_t slow_long, slow_short; /* halved every 512 */
  _Atomic uint32_t marked;
  _Atomic uint32_t busy;     /* marking or unmarking in progress */
  _Atomic uint64_t classes;  /* size classes seen in its samples */
  _Atomic uint64_t diverted; /* classes it keeps diverted while marked */
  _Atomic uint64_t routed_blocks, routed_bytes;
  _Atomic uint64_t long_total, short_total; /* never decayed, for reports */
  _Atomic uint64_t first_marked; /* the clock when first marked, + 1; 0: never */
  _Atomic uint64_t active;       /* the clock at its marking or its last sample: a
                                  * marked site idle for REST_AGES long ages rests */
  /* a plain site: the first caller seen; wrapper once a second one shows */
  _Atomic uint64_t caller0;
  _Atomic uint32_t wrapper;
  _Atomic uint32_t marked_callers; /* a wrapper: its callers' entries marked */
  /* a caller's entry: the call site and the caller it stands for, its
   * wrapper's entry (index + 1) and the one its mark was counted in */
  _Atomic uint64_t site, caller;
  _Atomic uint32_t parent, counted_in;
} lt_site;
static lt_site sites[SITE_SLOTS];
/* a sample's handle (pm_sample_record's `user`): its entry's index + 1 in
 * the low bits, its cohort's number above them */
#define USER_SITE_BITS 13 /* SITE_SLOTS + 1 fits */
#define USER_SITE_MASK ((1u << USER_SITE_BITS) - 1)
#define USER_COHORT_MASK ((1u << (32 - USER_SITE_BITS)) - 1)

/* ---- cohorts: did a sample outlive the samples taken around it? ----
 * Samples are numbered as they are taken; every COHORT_SAMPLES consecutive
 * ones are a cohort, whatever their sites. When most of a cohort has died
 * (COHORT_SWEPT of its samples), it is "swept", and the clock then is kept:
 * a sample of it still live well after that (see outlived_cohort) has
 * outlived the blocks allocated around it: a generational collector's
 * survival of a scavenge (V8's allocation-site pretenuring judges sites
 * the same way). A ring of COHORTS keeps the last ones; an older sample is
 * judged by its age alone (long_age). */
#define COHORT_SAMPLES 32
#define COHORT_SWEPT 28 /* 85% */
#define COHORTS 256     /* power of two: the last 8192 samples */
typedef struct lt_cohort {
  _Atomic uint32_t tag;       /* its number (USER_COHORT_MASK bits) + 1; 0: none */
  _Atomic uint32_t dead;      /* samples of it freed */
  _Atomic uint64_t start;     /* the clock at its first sample */
  _Atomic uint64_t swept;     /* the clock when COHORT_SWEPT had died; 0: not yet */
  _Atomic uint64_t live_then; /* the live heap (estimated) at the sweep */
} lt_cohort;
static lt_cohort cohorts[COHORTS];
static _Atomic uint64_t sample_seq;
PM_HOT static _Atomic uint32_t nsites, nmarked;
static _Atomic uint32_t marked_in_class[PM_NCLASSES];

static uint64_t site_key(uintptr_t site) {
  return site ? (uint64_t)site : 1;
}

/* a wrapper's caller: above any user-space address */
static uint64_t caller_key(uintptr_t site, uintptr_t caller) {
  uint64_t k = (uint64_t)site * 0x9e3779b97f4a7c15ull ^ (uint64_t)caller;
  k ^= k >> 31;
  k *= 0xbf58476d1ce4e5b9ull;
  return (k ^ (k >> 29)) | 1ull << 63;
}

static uint32_t hash64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return (uint32_t)k;
}

/* Entries are handed out in order (sites[0], sites[1]...) and found
 * through a hash index of their numbers: a process with a few hundred
 * sites touches a few pages of the table, not one page per site (entries
 * placed by hash put each site on its own page: gcc's cc1 with routing on,
 * 432 sites and callers, touched most of the table's 144 pages). */
static _Atomic uint16_t site_index[2 * SITE_SLOTS]; /* entry + 1; 0: empty */
PM_HOT static _Atomic uint32_t sites_used;          /* entries handed out */

/* the site's entry; inserts it if `insert`; NULL if absent or the table is
 * full (or full around its hash) */
static lt_site *site_find(uint64_t key, bool insert) {
  uint32_t i = hash64(key), mine = 0; /* an entry taken for the key, + 1 */
  for (unsigned n = 0; n < SITE_PROBE; n++, i++) {
    _Atomic uint16_t *slot = &site_index[i & (2 * SITE_SLOTS - 1)];
    uint16_t v = atomic_load_explicit(slot, memory_order_acquire);
    if (v == 0) {
      if (!insert) return NULL;
      if (mine == 0) {
        if (relaxed_load(&sites_used) >= SITE_SLOTS) return NULL; /* full: no count */
        uint32_t e = atomic_fetch_add_explicit(&sites_used, 1, memory_order_relaxed);
        if (e >= SITE_SLOTS) return NULL;
        mine = e + 1;
        atomic_store_explicit(&sites[e].key, key, memory_order_relaxed);
      }
      if (atomic_compare_exchange_strong(slot, &v, (uint16_t)mine)) {
        atomic_fetch_add(&nsites, 1);
        return &sites[mine - 1];
      }
      /* another thread took the slot: v is its entry */
    }
    lt_site *s = &sites[v - 1];
    if (atomic_load_explicit(&s->key, memory_order_relaxed) == key) {
      /* another thread inserted the key first: the entry taken is left
       * empty (a key of 0 is skipped by reports) */
      if (mine != 0) atomic_store_explicit(&sites[mine - 1].key, 0, memory_order_relaxed);
      return s;
    }
  }
  if (mine != 0) atomic_store_explicit(&sites[mine - 1].key, 0, memory_order_relaxed);
  return NULL;
}

/* the classes of a marked site are diverted: every allocation of them
 * looks its site up. Marking and unmarking a site are serialised by its
 * busy flag (sample path only). */
static void divert(lt_site *s, uint64_t mask) {
  mask &= ~relaxed_load(&s->diverted);
  while (mask) {
    unsigned c = (unsigned)__builtin_ctzll(mask);
    mask &= mask - 1;
    atomic_fetch_or(&s->diverted, 1ull << c);
    if (atomic_fetch_add(&marked_in_class[c], 1) == 0)
      atomic_fetch_or(&pm_lt_diverted, 1ull << c);
  }
}

static void undivert(lt_site *s) {
  uint64_t mask = atomic_exchange(&s->diverted, 0);
  while (mask) {
    unsigned c = (unsigned)__builtin_ctzll(mask);
    mask &= mask - 1;
    if (atomic_fetch_sub(&marked_in_class[c], 1) == 1)
      atomic_fetch_and(&pm_lt_diverted, ~(1ull << c));
  }
}

/* The classes a marked site diverts: every class from its smallest to its
 * largest sampled one. A site is sampled about once per PROFILE_RATE bytes
 * it allocates, so a site spread over many classes would otherwise be
 * diverted one class at a time as samples arrive in each (bench_fragsites:
 * 16 classes, ~2 samples a phase, learned class by class over ~8 phases,
 * each of its blocks before that pinning a pool page). */
static uint64_t class_span(uint64_t classes) {
  if (classes == 0) return 0;
  unsigned lo = (unsigned)__builtin_ctzll(classes),
           hi = 63u - (unsigned)__builtin_clzll(classes);
  /* A site seen in several classes allocates sizes that vary, and a
   * request is sampled in proportion to its size: its smallest requests are
   * the least likely to show in samples (issue 14's site B, 16-512 B, had
   * samples from 64 B up only, so its blocks under 64 B, a tenth of them,
   * were never routed). Such a span reaches down to a quarter of its
   * smallest sampled size. */
  if (lo != hi) lo = pm_class_of(pm_class_size(lo) / 4);
  uint64_t upto = hi >= 63 ? ~0ull : (2ull << hi) - 1;
  return upto & ~((1ull << lo) - 1);
}

/* The classes of a marked site that no longer allocates (CPython's code
 * objects, made at import and kept to the end) stay diverted: every request
 * of them, from any site, leaves the fast path for pm_malloc_counted (about
 * 55 instructions more a request) and routes nothing. Such a site rests:
 * once the clock has run REST_AGES long ages (long_age: twice the peak heap,
 * at least LIFETIME_THRESHOLD) past its last sample, its classes are
 * undiverted; it stays marked, and its next sample diverts them again
 * (pm_lt_on_sample). A site that still allocates is sampled about once per
 * PROFILE_RATE bytes, far more often; what resting costs is the blocks such
 * a site allocates before its next sample after a long pause (PROFILE_RATE
 * bytes on average), in the pools. The idle sites are looked for every
 * REST_EVERY samples. */
static uint64_t long_age(void);
#define REST_AGES 2
#define REST_EVERY 64
static _Atomic uint32_t rest_clock;
static _Atomic uint64_t rests;

static void rest_idle(uint64_t now) {
  uint64_t span = REST_AGES * long_age();
  size_t used = relaxed_load(&sites_used);
  for (size_t i = 0; i < used && i < SITE_SLOTS; i++) {
    lt_site *s = &sites[i];
    if (!relaxed_load(&s->marked) || relaxed_load(&s->diverted) == 0) continue;
    uint64_t a = relaxed_load(&s->active);
    if (a > now || now - a < span) continue;
    uint32_t expected = 0; /* marking and unmarking hold it (set_marked) */
    if (!atomic_compare_exchange_strong(&s->busy, &expected, 1)) continue;
    if (relaxed_load(&s->marked) && relaxed_load(&s->diverted) != 0) {
      undivert(s);
      atomic_fetch_add_explicit(&rests, 1, memory_order_relaxed);
    }
    atomic_store(&s->busy, 0);
  }
}

/* counted up by every marking and unmarking: the heaps' cached routes
 * (pm_lt_route) are then stale */
_Atomic uint64_t pm_lt_epoch = 1;

static void set_marked(lt_site *s, bool on) {
  uint32_t expected = 0;
  if (!atomic_compare_exchange_strong(&s->busy, &expected, 1)) return;
  bool was = relaxed_load(&s->marked) != 0;
  if (on && !was) {
    uint32_t parent = atomic_load_explicit(&s->parent, memory_order_acquire);
    if (parent != 0) { /* a wrapper's caller: the wrapper now reads callers */
      atomic_fetch_add(&sites[parent - 1].marked_callers, 1);
      relaxed_store(&s->counted_in, parent);
    }
    relaxed_store(&s->marked, 1);
    relaxed_store(&s->active, pm_sample_clock());
    atomic_fetch_add(&nmarked, 1);
    if (relaxed_load(&s->first_marked) == 0)
      relaxed_store(&s->first_marked, pm_sample_clock() + 1);
    divert(s, class_span(relaxed_load(&s->classes)));
  } else if (on) {
    divert(s, class_span(relaxed_load(&s->classes))); /* classes seen since */
  } else if (was) {
    relaxed_store(&s->marked, 0);
    atomic_fetch_sub(&nmarked, 1);
    undivert(s);
    uint32_t parent = atomic_exchange(&s->counted_in, 0);
    if (parent != 0) atomic_fetch_sub(&sites[parent - 1].marked_callers, 1);
  }
  if (on != was) atomic_fetch_add_explicit(&pm_lt_epoch, 1, memory_order_release);
  atomic_store(&s->busy, 0);
}

/* a verdict on one sample of site s: long-lived or not */
static void site_count(lt_site *s, bool is_long) {
  atomic_fetch_add_explicit(is_long ? &s->n_long : &s->n_short, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(is_long ? &s->long_total : &s->short_total, 1,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(is_long ? &s->slow_long : &s->slow_short, 1,
                            memory_order_relaxed);
  if (relaxed_load(&s->wrapper)) return; /* its callers are judged instead */
  uint32_t l = relaxed_load(&s->n_long), sh = relaxed_load(&s->n_short);
  /* recent samples weigh more: halve both every 32 verdicts */
  if (l + sh >= 32) {
    relaxed_store(&s->n_long, l / 2);
    relaxed_store(&s->n_short, sh / 2);
  }
  uint32_t sl = relaxed_load(&s->slow_long), ss = relaxed_load(&s->slow_short);
  if (sl + ss >= 512) {
    relaxed_store(&s->slow_long, sl / 2);
    relaxed_store(&s->slow_short, ss / 2);
  }
  /* Marked when 3 in 4 of its recent verdicts are long, and 3 in 4 of the
   * last few hundred: a site that makes both kinds of blocks (sqlite's one
   * malloc call, behind two wrappers: a third of its samples long-lived)
   * has bursts of long verdicts as a sweep's survivors are judged together,
   * and 3 in 4 of 32 alone marked it for a while (83,468 of its blocks
   * routed, peak RSS 148 -> 180 MB; half of the last 512 still did, later).
   * Marking a site routes all its blocks, short-lived ones too: worth it
   * only for a site whose blocks are nearly all long-lived. A long-lived
   * site among short-lived ones has only long verdicts and is marked at its
   * second. */
  uint32_t total = l + sh;
  if (l >= 2 && 4 * l >= 3 * total && 4 * sl >= 3 * (sl + ss))
    set_marked(s, true);
  else if (2 * l < total && relaxed_load(&s->marked))
    set_marked(s, false);
}

/* ---- verdicts on samples (the sampler keeps the samples) ---- */

static lt_site *site_at(uint32_t user) {
  user &= USER_SITE_MASK;
  return user ? &sites[user - 1] : NULL;
}

/* the cohort of a sample about to be taken: its number, for the handle.
 * The first sample of a cohort resets its slot; a sample of the slot's
 * previous cohort that dies during the reset may count in the new one (one
 * death in 32: a verdict a little early or late, never a wrong block). */
static uint32_t cohort_take(void) {
  uint64_t seq = atomic_fetch_add_explicit(&sample_seq, 1, memory_order_relaxed);
  uint32_t no = (uint32_t)(seq / COHORT_SAMPLES) & USER_COHORT_MASK;
  if (seq % COHORT_SAMPLES == 0) {
    lt_cohort *c = &cohorts[no % COHORTS];
    relaxed_store(&c->tag, 0);
    relaxed_store(&c->dead, 0);
    relaxed_store(&c->swept, 0);
    relaxed_store(&c->live_then, 0);
    relaxed_store(&c->start, pm_sample_clock());
    atomic_store_explicit(&c->tag, no + 1, memory_order_release);
  }
  return no;
}

/* the cohort of the sample with this handle, if the ring still holds it */
static lt_cohort *cohort_of(uint32_t user) {
  uint32_t no = user >> USER_SITE_BITS;
  lt_cohort *c = &cohorts[no % COHORTS];
  return atomic_load_explicit(&c->tag, memory_order_acquire) == no + 1 ? c : NULL;
}

/* s's samples came from a second caller: its own verdicts mixed its
 * callers', so it is unmarked and its callers are judged from now on */
static void become_wrapper(lt_site *s) {
  uint32_t expected = 0;
  if (!atomic_compare_exchange_strong(&s->wrapper, &expected, 1)) return;
  set_marked(s, false);
  relaxed_store(&s->n_long, 0);
  relaxed_store(&s->n_short, 0);
}

/* Whether a sample of s needs its caller: s is a wrapper, or its verdicts
 * are mixed (long and short ones), so it may be one. A site whose samples
 * all agree never pays the unwind (about 600 instructions, and the first
 * unwinds through a module page in its unwind tables). */
static bool wants_caller(lt_site *s) {
  return relaxed_load(&s->wrapper) ||
         (relaxed_load(&s->long_total) != 0 && relaxed_load(&s->short_total) != 0);
}

/* the entry a sample from `site` counts in */
static lt_site *sample_site(uintptr_t site) {
  lt_site *s = site_find(site_key(site), true);
  if (s == NULL || !wants_caller(s)) return s;
  uintptr_t caller = pm_sample_caller(site);
  if (caller == 0) return s;
  if (!relaxed_load(&s->wrapper)) {
    uint64_t first = 0;
    if (atomic_compare_exchange_strong(&s->caller0, &first, caller) || first == caller)
      return s;
    become_wrapper(s);
  }
  lt_site *t =
      site_find(caller_key(site, caller), relaxed_load(&nsites) < SITE_SLOTS / 2);
  if (t == NULL) return s;
  if (relaxed_load(&t->parent) == 0) {
    relaxed_store(&t->site, site);
    relaxed_store(&t->caller, caller);
    atomic_store_explicit(&t->parent, (uint32_t)(s - sites) + 1, memory_order_release);
  }
  return t;
}

uint32_t pm_lt_on_sample(uintptr_t site, unsigned cls) {
  lt_site *s = sample_site(site);
  if (s == NULL) return 0;
  relaxed_store(&s->active, pm_sample_clock());
  bool new_class = !(relaxed_load(&s->classes) >> cls & 1);
  if (new_class) atomic_fetch_or(&s->classes, 1ull << cls);
  /* divert a new class too, or again after a rest (rest_idle) */
  if (relaxed_load(&s->marked) && (new_class || relaxed_load(&s->diverted) == 0))
    set_marked(s, true);
  atomic_fetch_add_explicit(&lt_samples, 1, memory_order_relaxed);
  return ((uint32_t)(s - sites) + 1) | cohort_take() << USER_SITE_BITS;
}

/* The age (bytes allocated since its birth) past which a sample counts as
 * long-lived: twice the live heap at its highest so far, and at least
 * LIFETIME_THRESHOLD. A block that outlives two turnovers of the heap has
 * outlived the bulk of the blocks allocated around it, however long the
 * program's phases are (the survival test of a generational collector); a
 * fixed age alone classed the short-lived blocks of a program whose phases
 * allocate more than it long-lived (bench_fragsites: 53 MB per phase, 80% of
 * its samples "long-lived" at 16 MiB). The peak, not the live heap now: a
 * heap that shrinks as a phase's blocks are freed makes the last of them look
 * old next to what is left (bench_mixed, whose one malloc call serves
 * short- and long-lived blocks: with the live heap now, its samples freed
 * late in each sweep were judged long-lived, the site was marked and 7.7 M of
 * its 10 M requests went to jemalloc, 4x the time and 2x the RSS). */
static uint64_t long_age(void) {
  uint64_t t = 2 * pm_sample_peak_bytes();
  return t > pm_opt.lifetime_threshold ? t : pm_opt.lifetime_threshold;
}

/* Whether a sample of cohort c, `age` old at `now`, has outlived its
 * cohort. Two conditions:
 * - the cohort was swept, and the clock has run on since by half the
 *   cohort's life before its sweep (at least LIFETIME_THRESHOLD): the blocks
 *   that merely die last with their cohort are not taken for survivors (in
 *   a sweep of frees the clock stands still; a queue's last blocks die soon
 *   after the rest);
 * - the sample is older than the live heap was at the sweep: a block that
 *   lives long next to a churn of very short ones, but a fraction of the
 *   heap's turnover, is not long-lived (unit_lifetime's
 *   the_verdict_is_relative_to_the_live_heap). The heap at the sweep, not
 *   now: a survivor born late in a phase is younger than the next phase's
 *   heap while that grows.
 * What it gains: issue 14's program (phases of 53 MB that all die at the
 * phase's end, a long-lived site among them) was learned after 140 MiB of
 * allocation by the age alone (twice the peak), after 70 MiB this way. */
static bool outlived_cohort(lt_cohort *c, uint64_t age, uint64_t now) {
  if (c == NULL) return false;
  uint64_t swept = relaxed_load(&c->swept), start = relaxed_load(&c->start);
  if (swept == 0 || swept < start) return false;
  uint64_t floor = pm_opt.lifetime_threshold, margin = (swept - start) / 2;
  if (margin < floor) margin = floor;
  if (now < swept + margin) return false;
  uint64_t live = relaxed_load(&c->live_then);
  return age >= (live > floor ? live : floor);
}

void pm_lt_on_death(uint32_t user, uint64_t age, bool counted) {
  uint64_t now = pm_sample_clock();
  lt_cohort *c = cohort_of(user);
  if (c != NULL &&
      atomic_fetch_add_explicit(&c->dead, 1, memory_order_relaxed) + 1 == COHORT_SWEPT) {
    relaxed_store(&c->live_then, pm_sample_live_bytes());
    relaxed_store(&c->swept, now);
  }
  lt_site *s = site_at(user);
  if (s != NULL && !counted)
    site_count(s, age >= long_age() || outlived_cohort(c, age, now));
}

/* a live sample that has outlived its cohort or the threshold counts as
 * long-lived now (blocks that live until exit are never freed) */
static void visit(pm_sample_info *e, uint8_t *flag, uint64_t now) {
  if (*flag || e->birth > now) return; /* taken since the scan read the clock */
  uint64_t age = now - e->birth;
  if (age < long_age() && !outlived_cohort(cohort_of(e->user), age, now)) return;
  *flag = 1;
  lt_site *s = site_at(e->user);
  if (s != NULL) site_count(s, true);
}

void pm_lt_scan(void) {
  pm_sample_scan(16, visit);
  if (atomic_fetch_add_explicit(&rest_clock, 1, memory_order_relaxed) % REST_EVERY ==
          REST_EVERY - 1 &&
      relaxed_load(&nmarked) != 0)
    rest_idle(pm_sample_clock());
}

/* the decision for `site` when it does not depend on the caller (*fixed) */
static uint32_t route(uintptr_t site, bool *fixed) {
  *fixed = true;
  lt_site *s = site_find(site_key(site), false);
  if (s == NULL) return 0;
  /* a wrapper's own mark, if becoming one raced with a marking (a busy
   * site is never waited for), is void */
  if (relaxed_load(&s->marked) && !relaxed_load(&s->wrapper))
    return (uint32_t)(s - sites) + 1;
  if (relaxed_load(&s->marked_callers) == 0) return 0;
  *fixed = false;
  /* a wrapper with a marked caller: which caller is this? */
  uintptr_t caller = pm_sample_caller(site);
  lt_site *t = caller != 0 ? site_find(caller_key(site, caller), false) : NULL;
  return t != NULL && relaxed_load(&t->marked) ? (uint32_t)(t - sites) + 1 : 0;
}

/* Every allocation of a diverted class asks; most come from a few sites,
 * unmarked ones among them. Each heap keeps its last decisions by site
 * (direct-mapped), valid while the tables' epoch is unchanged: a marking or
 * unmarking counts it up (set_marked). A wrapper with a marked caller is
 * decided at each call (its caller). python3, PYTHONMALLOC=malloc, routing
 * on, callgrind: 46 instructions a call without the cache (a hash probe of
 * the site index, the entry's key), 21 with 64 entries (16: 34, a third of
 * the calls missed). */
uint32_t pm_lt_route(pm_heap *h, uintptr_t site) {
  uint64_t epoch = atomic_load_explicit(&pm_lt_epoch, memory_order_acquire);
  if (h->lt_epoch != epoch) {
    memset(h->lt_routes, 0, sizeof h->lt_routes);
    h->lt_epoch = epoch;
  }
  unsigned i = pm_lt_route_slot(site);
  if (h->lt_routes[i].site == site && site != 0) return h->lt_routes[i].user;
  bool fixed;
  uint32_t user = route(site, &fixed);
  if (fixed) {
    h->lt_routes[i].site = site;
    h->lt_routes[i].user = user;
  }
  return user;
}

void pm_lt_routed(uint32_t user, size_t size) {
  lt_site *s = site_at(user);
  if (s == NULL) return;
  atomic_fetch_add_explicit(&s->routed_blocks, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->routed_bytes, size, memory_order_relaxed);
}

/* ---- reports ---- */

size_t pm_lt_top_sites(pm_lt_site_info *out, size_t max) {
  size_t n = 0;
  size_t used = relaxed_load(&sites_used);
  for (size_t i = 0; i < used && i < SITE_SLOTS; i++) {
    lt_site *s = &sites[i];
    uint64_t key = atomic_load_explicit(&s->key, memory_order_acquire);
    if (key == 0) continue;
    bool is_caller = key >> 63;
    pm_lt_site_info info = {
        .site = is_caller ? (uintptr_t)relaxed_load(&s->site) : (uintptr_t)key,
        .caller = is_caller ? (uintptr_t)relaxed_load(&s->caller) : 0,
        .wrapper = relaxed_load(&s->wrapper) != 0,
        .classes = relaxed_load(&s->classes),
        .marked = relaxed_load(&s->marked) != 0,
        .resting = relaxed_load(&s->marked) != 0 && relaxed_load(&s->diverted) == 0,
        .long_samples = relaxed_load(&s->long_total),
        .short_samples = relaxed_load(&s->short_total),
        .routed_blocks = relaxed_load(&s->routed_blocks),
        .routed_bytes = relaxed_load(&s->routed_bytes),
        .marked_after = relaxed_load(&s->first_marked),
    };
    if (info.marked_after) info.marked_after--;
    if (!info.marked && !info.wrapper && info.routed_blocks == 0 &&
        info.long_samples == 0)
      continue;
    /* insertion into the sorted prefix: most routed bytes, then most long samples */
    size_t j = n < max ? n++ : max;
    while (j > 0 && (out[j - 1].routed_bytes < info.routed_bytes ||
                     (out[j - 1].routed_bytes == info.routed_bytes &&
                      out[j - 1].long_samples < info.long_samples))) {
      if (j < max) out[j] = out[j - 1];
      j--;
    }
    if (j < max) out[j] = info;
  }
  return n;
}

void pm_lt_totals(uint64_t *samples_taken, uint64_t *sites_known, uint64_t *sites_marked,
                  uint64_t *sites_rested) {
  *samples_taken = relaxed_load(&lt_samples);
  *sites_known = relaxed_load(&nsites);
  *sites_marked = relaxed_load(&nmarked);
  *sites_rested = relaxed_load(&rests);
}
