/* fallback.c - the jemalloc tier (see fallback.h). */
#include "fallback.h"

#include "options.h"
#include "os.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

void *pm_je_mallocx(size_t size, int flags);
void *pm_je_rallocx(void *ptr, size_t size, int flags);
size_t pm_je_sallocx(const void *ptr, int flags);
void pm_je_dallocx(void *ptr, int flags);
int pm_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen);

#define PM_JE_ZERO 0x40

extern const char *pm_je_malloc_conf;

static _Atomic int started;
static bool own_purging; /* jemalloc's decay is off, poolmalloc purges */
static _Atomic uint64_t purged_bytes;
static PM_TLS int starting; /* this thread is inside jemalloc's initialisation */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

void je_jemalloc_prefork(void);
void je_jemalloc_postfork_parent(void);
void je_jemalloc_postfork_child(void);

bool pm_fallback_started(void) {
  return atomic_load_explicit(&started, memory_order_acquire) != 0;
}

/* With pools on, jemalloc sees only blocks above POOLMALLOC_MAX_POOLED,
 * unless lifetime routing sends it small blocks: without routing its thread
 * cache (blocks up to 32 KiB) would be set up for nothing; with routing,
 * sampled and routed small blocks need it (without it each sample cost a
 * slab allocation, some 3,000 instructions). And its time-based purging of
 * freed pages is replaced by poolmalloc's (below): under a steady churn of
 * large blocks jemalloc's decay curve returned about as many pages as the
 * loop touched (bench_large: 97 page faults per block, 9x slower than with
 * purging off). MALLOC_CONF, read when jemalloc starts, still overrides
 * these. With POOLMALLOC_DISABLE jemalloc keeps its own defaults. */
void pm_fallback_configure(bool pools_on) {
  if (!pools_on || pm_fallback_started()) return;
  static const char *const conf[2][2] = {
      /* [decay_ms == 0][lifetime] */
      {"tcache:false,dirty_decay_ms:-1", "dirty_decay_ms:-1"},
      {"tcache:false,dirty_decay_ms:0", "dirty_decay_ms:0"},
  };
  pm_je_malloc_conf = conf[pm_opt.decay_ms == 0][pm_opt.lifetime != 0];
  own_purging = pm_opt.decay_ms != 0;
}

/* Returning jemalloc's free pages: at most once per POOLMALLOC_DECAY_MS,
 * on a large free or when a pool page is released, all of jemalloc's
 * dirty pages go back to the OS if there are more of them than the bytes
 * of large blocks allocated since the last look. A steady churn reuses its
 * pages and keeps them; a spike that is over gives them back within about
 * two periods of the next activity. */
static _Atomic uint64_t recent_bytes, last_look_ms;

static uint64_t je_u64(const char *name) {
  uint64_t v = 0;
  size_t len = sizeof v;
  if (pm_je_mallctl(name, &v, &len, NULL, 0) != 0 || len != sizeof v) return 0;
  return v;
}

/* jemalloc's statistics are refreshed by advancing its epoch */
static void je_refresh(void) {
  uint64_t epoch = 1;
  size_t len = sizeof epoch;
  pm_je_mallctl("epoch", &epoch, &len, &epoch, len);
}

static void je_purge_all(void) {
  pm_je_mallctl("arena.4096.purge", NULL, NULL, NULL, 0); /* 4096: all arenas */
}

void pm_fallback_maybe_purge(void) {
  if (!own_purging || !pm_fallback_started()) return;
  uint64_t now = pm_os_now_ms(), last = relaxed_load(&last_look_ms);
  if (now - last < pm_opt.decay_ms) return;
  if (!atomic_compare_exchange_strong(&last_look_ms, &last, now)) return;
  int saved = errno;
  uint64_t recent = atomic_exchange(&recent_bytes, 0);
  je_refresh();
  uint64_t dirty = je_u64("stats.arenas.4096.pdirty") * pm_os_page_size();
  if (dirty > recent) {
    je_purge_all();
    atomic_fetch_add_explicit(&purged_bytes, dirty, memory_order_relaxed);
  }
  errno = saved;
}

uint64_t pm_fallback_purged(void) {
  return relaxed_load(&purged_bytes);
}

/* jemalloc starts on the first request that reaches it; most short-lived
 * processes never send one (its start costs about 20 system calls and 40
 * page faults). It initialises itself holding its own init lock; a fork()
 * by another thread in that window would leave the child a lock nobody
 * releases. So the start runs under start_lock, which the fork handlers
 * below hold across fork(): a fork waits for a start in progress, and a
 * start waits for a fork in progress. jemalloc's own fork handlers, which
 * it would register from inside its initialisation (possibly while another
 * thread holds glibc's atfork lock in fork()), are registered by poolmalloc
 * at load time instead and do nothing until jemalloc has started. */
static pm_noinline void start(void) {
  if (starting) return; /* jemalloc's init called malloc: let jemalloc cope */
  int saved = errno;
  pthread_mutex_lock(&start_lock);
  if (!pm_fallback_started()) {
    starting = 1;
    pm_je_dallocx(pm_je_mallocx(PM_MIN_ALIGN, 0), 0);
    starting = 0;
    atomic_store_explicit(&started, 1, memory_order_release);
  }
  pthread_mutex_unlock(&start_lock);
  errno = saved;
}

#define ENSURE_STARTED()                                                                 \
  do {                                                                                   \
    if (unlikely(!atomic_load_explicit(&started, memory_order_acquire))) start();        \
  } while (0)

void pm_fallback_prefork(void) {
  if (starting) return;
  pthread_mutex_lock(&start_lock);
  if (relaxed_load(&started)) je_jemalloc_prefork();
}

void pm_fallback_postfork_parent(void) {
  if (starting) return;
  if (relaxed_load(&started)) je_jemalloc_postfork_parent();
  pthread_mutex_unlock(&start_lock);
}

void pm_fallback_postfork_child(void) {
  if (starting) return;
  if (relaxed_load(&started)) je_jemalloc_postfork_child();
  pthread_mutex_init(&start_lock, NULL);
}

/* ---- before jemalloc starts: the first large blocks straight from mmap ----
 *
 * Most short-lived processes (cat, sed, the compiler driver, half of the
 * shells of a configure run) ask for only a few blocks above
 * POOLMALLOC_MAX_POOLED. Starting jemalloc for them costs ~20 system calls
 * and ~40 page faults (about 1 ms here); an mmap per block costs one call.
 * So the first DIRECT_SLOTS such blocks of a process are mapped directly
 * (page-aligned, zeroed, unmapped when freed), and jemalloc starts with the
 * request after them. Each slot is used once; freeing a block empties its
 * slot. */
#define DIRECT_SLOTS 16
#define DIRECT_MAX ((size_t)64 << 20) /* larger ones start jemalloc */
typedef struct direct_block {
  _Atomic uintptr_t p; /* 0: empty */
  size_t len;
} direct_block;
static direct_block direct[DIRECT_SLOTS];
static _Atomic uint32_t direct_taken, direct_live;

static void *direct_alloc(size_t size, size_t align) {
  if (align > 4096 || size > DIRECT_MAX || relaxed_load(&direct_taken) >= DIRECT_SLOTS)
    return NULL;
  uint32_t i = atomic_fetch_add(&direct_taken, 1);
  if (i >= DIRECT_SLOTS) return NULL;
  size_t len = (size + 4095) & ~(size_t)4095;
  void *p = pm_os_map_block(len);
  if (p == NULL) return NULL;
  direct[i].len = len;
  atomic_fetch_add(&direct_live, 1);
  atomic_store_explicit(&direct[i].p, (uintptr_t)p, memory_order_release);
  return p;
}

/* p's slot if p is a direct block */
static direct_block *direct_find(const void *p) {
  if (likely(relaxed_load(&direct_live) == 0)) return NULL;
  for (unsigned i = 0; i < DIRECT_SLOTS; i++)
    if (atomic_load_explicit(&direct[i].p, memory_order_acquire) == (uintptr_t)p)
      return &direct[i];
  return NULL;
}

static void direct_free(direct_block *d) {
  uintptr_t p = atomic_exchange(&d->p, 0);
  if (p == 0) return;
  atomic_fetch_sub(&direct_live, 1);
  pm_os_unmap((void *)p, d->len);
}

bool pm_fallback_owns(const void *p) {
  return pm_fallback_started() || direct_find(p) != NULL;
}

void *pm_fallback_alloc(size_t size, size_t align, bool zero) {
  if (unlikely(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  if (unlikely(!atomic_load_explicit(&started, memory_order_acquire))) {
    void *p = direct_alloc(size, align);
    if (p != NULL) return p;
    start();
  }
  if (own_purging) atomic_fetch_add_explicit(&recent_bytes, size, memory_order_relaxed);
  int flags = zero ? PM_JE_ZERO : 0;
  if (size < PM_MIN_ALIGN) size = PM_MIN_ALIGN;
  if (align > PM_MIN_ALIGN) flags |= __builtin_ctzl(align);
  void *p = pm_je_mallocx(size, flags);
  if (unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

void *pm_fallback_realloc(void *p, size_t size) {
  if (unlikely(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  direct_block *d = direct_find(p);
  if (d != NULL) {
    if (size <= d->len && size > d->len / 2) return p;
    void *q = pm_fallback_alloc(size, 0, false);
    if (q == NULL) return NULL;
    memcpy(q, p, size < d->len ? size : d->len);
    direct_free(d);
    return q;
  }
  ENSURE_STARTED();
  if (size < PM_MIN_ALIGN) size = PM_MIN_ALIGN;
  void *q = pm_je_rallocx(p, size, 0);
  if (unlikely(q == NULL)) errno = ENOMEM;
  return q;
}

void pm_fallback_free(void *p) {
  direct_block *d = direct_find(p);
  if (d != NULL) {
    direct_free(d);
    return;
  }
  int saved = errno;
  pm_je_dallocx(p, 0);
  errno = saved;
}

size_t pm_fallback_usable(const void *p) {
  direct_block *d = direct_find(p);
  if (d != NULL) return d->len;
  return pm_je_sallocx(p, 0);
}

void pm_fallback_figures(uint64_t *allocated, uint64_t *resident) {
  uint64_t d = 0; /* direct blocks count as this tier's (resident: an upper bound) */
  for (unsigned i = 0; i < DIRECT_SLOTS; i++)
    if (atomic_load_explicit(&direct[i].p, memory_order_acquire)) d += direct[i].len;
  *allocated = *resident = d;
  if (!pm_fallback_started()) return;
  int saved = errno;
  je_refresh();
  *allocated += je_u64("stats.allocated");
  *resident += je_u64("stats.resident");
  errno = saved;
}

void pm_fallback_trim(void) {
  if (!pm_fallback_started()) return;
  int saved = errno;
  je_purge_all();
  errno = saved;
}
