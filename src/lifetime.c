/* lifetime.c - sampling lifetimes per call site, routing long-lived sites
 * (see lifetime.h). Nothing here runs on the fast path: it is reached once
 * per POOLMALLOC_LIFETIME_RATE allocations of a class in a thread, on every
 * allocation of a diverted class, and on frees of blocks outside the pools
 * while samples are outstanding. Both tables are fixed arrays in .bss,
 * updated with atomics; nothing allocates. */
#include "lifetime.h"
#include "options.h"

_Atomic uint64_t pm_lt_diverted;
_Atomic uint32_t pm_lt_outstanding;

/* ---- the clock: allocations, advanced by the sampling interval per sample */
static _Atomic uint64_t lt_clock;
static _Atomic uint64_t lt_samples;

/* ---- sites: (return address, class) -> counts, open addressing ---- */
#define SITE_SLOTS 4096 /* power of two */
#define SITE_PROBE 16
typedef struct pm_lt_site {
  _Atomic uint64_t key; /* the return address; 0: empty */
  _Atomic uint32_t n_long, n_short;
  _Atomic uint32_t marked;
  _Atomic uint32_t busy;     /* marking or unmarking in progress */
  _Atomic uint64_t classes;  /* size classes seen in its samples */
  _Atomic uint64_t diverted; /* classes it keeps diverted while marked */
  _Atomic uint64_t routed_blocks, routed_bytes;
  _Atomic uint64_t long_total, short_total; /* never decayed, for reports */
} lt_site;
static lt_site sites[SITE_SLOTS];
static _Atomic uint32_t nsites, nmarked;
static _Atomic uint32_t marked_in_class[PM_NCLASSES];

static uint64_t site_key(uintptr_t site) {
  return site ? (uint64_t)site : 1;
}

static uint32_t hash64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return (uint32_t)k;
}

/* the site's slot; inserts it if `insert`; NULL if absent or the table is
 * full around its hash */
static lt_site *site_find(uint64_t key, bool insert) {
  uint32_t i = hash64(key);
  for (unsigned n = 0; n < SITE_PROBE; n++, i++) {
    lt_site *s = &sites[i & (SITE_SLOTS - 1)];
    uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
    if (k == key) return s;
    if (k == 0) {
      if (!insert) return NULL;
      if (atomic_compare_exchange_strong(&s->key, &k, key)) {
        atomic_fetch_add(&nsites, 1);
        return s;
      }
      if (k == key) return s; /* another thread inserted it */
    }
  }
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

static void set_marked(lt_site *s, bool on) {
  uint32_t expected = 0;
  if (!atomic_compare_exchange_strong(&s->busy, &expected, 1)) return;
  bool was = relaxed_load(&s->marked) != 0;
  if (on && !was) {
    relaxed_store(&s->marked, 1);
    atomic_fetch_add(&nmarked, 1);
    divert(s, relaxed_load(&s->classes));
  } else if (on) {
    divert(s, relaxed_load(&s->classes)); /* classes seen since */
  } else if (was) {
    relaxed_store(&s->marked, 0);
    atomic_fetch_sub(&nmarked, 1);
    undivert(s);
  }
  atomic_store(&s->busy, 0);
}

/* a verdict on one sample of site s: long-lived or not */
static void site_count(lt_site *s, bool is_long) {
  atomic_fetch_add_explicit(is_long ? &s->n_long : &s->n_short, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(is_long ? &s->long_total : &s->short_total, 1,
                            memory_order_relaxed);
  uint32_t l = relaxed_load(&s->n_long), sh = relaxed_load(&s->n_short);
  /* recent samples weigh more: halve both every 32 verdicts */
  if (l + sh >= 32) {
    relaxed_store(&s->n_long, l / 2);
    relaxed_store(&s->n_short, sh / 2);
  }
  uint32_t total = l + sh;
  if (l >= 2 && 4 * l >= 3 * total)
    set_marked(s, true);
  else if (2 * l < total && relaxed_load(&s->marked))
    set_marked(s, false);
}

/* ---- outstanding samples: address -> site, birth ---- */
#define SAMPLE_BUCKETS 512 /* power of two */
#define BUCKET_SLOTS 8
#define SAMPLE_BUSY ((uintptr_t)1)
typedef struct lt_sample {
  _Atomic uintptr_t ptr; /* 0: empty, 1: being written or read */
  lt_site *site;
  uint64_t birth;
  uint32_t cls;
  _Atomic uint32_t counted_long;
} lt_sample;
static lt_sample samples[SAMPLE_BUCKETS * BUCKET_SLOTS];
static _Atomic uint32_t scan_cursor;

static lt_sample *bucket_of(const void *p) {
  return &samples[(hash64((uintptr_t)p) & (SAMPLE_BUCKETS - 1)) * BUCKET_SLOTS];
}

static bool sample_insert(const void *p, lt_site *s, unsigned cls, uint64_t birth) {
  lt_sample *b = bucket_of(p);
  for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
    uintptr_t expected = 0;
    if (atomic_compare_exchange_strong(&b[i].ptr, &expected, SAMPLE_BUSY)) {
      b[i].site = s;
      b[i].birth = birth;
      b[i].cls = cls;
      relaxed_store(&b[i].counted_long, 0);
      atomic_fetch_add(&pm_lt_outstanding, 1);
      atomic_store_explicit(&b[i].ptr, (uintptr_t)p, memory_order_release);
      return true;
    }
  }
  return false;
}

/* takes the sample of p out of the table; NULL if p is not sampled */
static lt_sample *sample_claim(const void *p) {
  lt_sample *b = bucket_of(p);
  for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
    uintptr_t expected = (uintptr_t)p;
    if (relaxed_load(&b[i].ptr) == expected &&
        atomic_compare_exchange_strong(&b[i].ptr, &expected, SAMPLE_BUSY))
      return &b[i];
  }
  return NULL;
}

static void sample_release(lt_sample *e) {
  atomic_fetch_sub(&pm_lt_outstanding, 1);
  atomic_store_explicit(&e->ptr, 0, memory_order_release);
}

/* A few outstanding samples are looked at per new sample: one that has
 * outlived the threshold counts as long-lived now (blocks that live until
 * exit are never freed); one that is far older leaves the table, so
 * immortal blocks do not fill it. */
static void scan_some(uint64_t now) {
  uint32_t start = atomic_fetch_add_explicit(&scan_cursor, 4, memory_order_relaxed);
  for (uint32_t n = 0; n < 4; n++) {
    lt_sample *e = &samples[(start + n) % (SAMPLE_BUCKETS * BUCKET_SLOTS)];
    uintptr_t p = atomic_load_explicit(&e->ptr, memory_order_acquire);
    if (p <= SAMPLE_BUSY) continue;
    if (!atomic_compare_exchange_strong(&e->ptr, &p, SAMPLE_BUSY)) continue;
    uint64_t age = now - e->birth;
    if (age >= pm_opt.lifetime_threshold && !relaxed_load(&e->counted_long)) {
      relaxed_store(&e->counted_long, 1);
      site_count(e->site, true);
    }
    if (age >= 4 * pm_opt.lifetime_threshold) {
      sample_release(e);
      continue;
    }
    atomic_store_explicit(&e->ptr, p, memory_order_release);
  }
}

void pm_lt_forget(const void *p, const void *q) {
  lt_sample *e = sample_claim(p);
  if (e == NULL) return;
  if (q != NULL) { /* moved by realloc: the sample lives on at q */
    lt_sample copy = {.site = e->site, .birth = e->birth, .cls = e->cls};
    bool counted = relaxed_load(&e->counted_long);
    sample_release(e);
    if (!counted) sample_insert(q, copy.site, copy.cls, copy.birth);
    return;
  }
  uint64_t age = relaxed_load(&lt_clock) - e->birth;
  if (!relaxed_load(&e->counted_long))
    site_count(e->site, age >= pm_opt.lifetime_threshold);
  sample_release(e);
}

/* ---- the allocation side: decisions only ---- */

static uint32_t next_interval(pm_heap *h) {
  uint32_t rate = (uint32_t)pm_opt.lifetime_rate;
  /* +-1/8 jitter so periodic programs are not sampled in step */
  h->lt_rng ^= h->lt_rng << 13;
  h->lt_rng ^= h->lt_rng >> 17;
  h->lt_rng ^= h->lt_rng << 5;
  uint32_t spread = rate / 4;
  return rate - rate / 8 + (spread ? h->lt_rng % spread : 0);
}

pm_lt_action pm_lt_decide(pm_heap *h, unsigned cls, uintptr_t site, pm_lt_site **out) {
  *out = NULL;
  bool diverted = (relaxed_load(&pm_lt_diverted) >> cls) & 1;
  bool sample;
  if (diverted) {
    h->countdown[cls] = 1; /* every allocation of the class comes here */
    sample = --h->lt_sample_left[cls] == 0;
    if (sample) h->lt_sample_left[cls] = next_interval(h);
  } else {
    h->countdown[cls] = next_interval(h);
    sample = true;
  }
  if (sample) {
    uint64_t now =
        atomic_fetch_add_explicit(&lt_clock, pm_opt.lifetime_rate, memory_order_relaxed);
    atomic_fetch_add_explicit(&lt_samples, 1, memory_order_relaxed);
    scan_some(now);
    lt_site *s = site_find(site_key(site), true);
    if (s != NULL) {
      if (!(relaxed_load(&s->classes) >> cls & 1)) {
        atomic_fetch_or(&s->classes, 1ull << cls);
        if (relaxed_load(&s->marked)) set_marked(s, true); /* divert the new class too */
      }
      *out = s;
      return PM_LT_SAMPLE;
    }
  }
  if (diverted) {
    lt_site *s = site_find(site_key(site), false);
    if (s != NULL && relaxed_load(&s->marked)) {
      *out = s;
      return PM_LT_ROUTE;
    }
  }
  return PM_LT_POOL;
}

bool pm_lt_sampled(pm_lt_site *s, const void *p, unsigned cls) {
  return sample_insert(p, s, cls, relaxed_load(&lt_clock));
}

void pm_lt_routed(pm_lt_site *s, size_t size) {
  atomic_fetch_add_explicit(&s->routed_blocks, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->routed_bytes, size, memory_order_relaxed);
}

/* ---- reports ---- */

size_t pm_lt_top_sites(pm_lt_site_info *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < SITE_SLOTS; i++) {
    lt_site *s = &sites[i];
    uint64_t key = atomic_load_explicit(&s->key, memory_order_acquire);
    if (key == 0) continue;
    pm_lt_site_info info = {
        .site = (uintptr_t)key,
        .classes = relaxed_load(&s->classes),
        .marked = relaxed_load(&s->marked) != 0,
        .long_samples = relaxed_load(&s->long_total),
        .short_samples = relaxed_load(&s->short_total),
        .routed_blocks = relaxed_load(&s->routed_blocks),
        .routed_bytes = relaxed_load(&s->routed_bytes),
    };
    if (!info.marked && info.routed_blocks == 0 && info.long_samples == 0) continue;
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

void pm_lt_totals(uint64_t *samples_taken, uint64_t *sites_known,
                  uint64_t *sites_marked) {
  *samples_taken = relaxed_load(&lt_samples);
  *sites_known = relaxed_load(&nsites);
  *sites_marked = relaxed_load(&nmarked);
}
