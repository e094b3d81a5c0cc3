/* fallback.c - the jemalloc tier (see fallback.h). */
#include "fallback.h"

#include "je_support.h"
#include "options.h"
#include "os.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/single_threaded.h>

void *pm_je_mallocx(size_t size, int flags);
void *pm_je_rallocx(void *ptr, size_t size, int flags);
size_t pm_je_sallocx(const void *ptr, int flags);
void pm_je_dallocx(void *ptr, int flags);
int pm_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen);

#define PM_JE_ZERO 0x40

/* jemalloc's malloc_conf (weak there, defined here to place it) */
PM_HOT const char *pm_je_malloc_conf;

PM_HOT static _Atomic int started;
static inline bool je_enter(void); /* around every jemalloc call (fork, below) */
static inline void je_leave(void);
PM_HOT static bool own_purging; /* jemalloc's decay is off, poolmalloc purges */
static _Atomic uint64_t purged_bytes;
bool pm_fallback_started(void) {
  return atomic_load_explicit(&started, memory_order_acquire) != 0;
}

/* Its arenas follow the CPUs (percpu_arena: one per CPU, a thread uses the
 * one of the CPU it runs on) rather than jemalloc's default of four per
 * CPU with each thread bound to one for life: the freed pages of an arena
 * serve only the threads bound to it, so threads that come and go with
 * different footprints left every arena at its own peak (bench_mstress:
 * 83 MiB peak RSS, 63 MiB of it jemalloc's free pages; 65 MiB per CPU).
 * Two threads can still share an arena only while one is preempted.
 * With pools on, jemalloc sees only blocks above POOLMALLOC_MAX_POOLED,
 * unless lifetime routing (POOLMALLOC_LIFETIME=1) sends it small blocks, so
 * its thread cache (blocks up to 32 KiB) stays off, routing or not. With
 * routing it was on (samples went to jemalloc then; they are on pool pages
 * of their own now): bench_mstress, whose 40 threads come and go, took 2x
 * the time with it (41,401 page faults against 19,237 without, nothing
 * routed), while a routed block costs about 500 instructions more without it
 * (bench_frag: +0.7% instructions for 11,500 routed blocks). And its
 * time-based purging of
 * freed pages is replaced by poolmalloc's (below): under a steady churn of
 * large blocks jemalloc's decay curve returned about as many pages as the
 * loop touched (bench_large: 97 page faults per block, 9x slower than with
 * purging off). MALLOC_CONF, read when jemalloc starts, still overrides
 * these. With POOLMALLOC_DISABLE jemalloc keeps its own defaults. */
void pm_fallback_configure(bool pools_on) {
  if (!pools_on || pm_fallback_started()) return;
  static const char conf[2][56] = {
      /* [decay_ms == 0] */
      "percpu_arena:percpu,tcache:false,dirty_decay_ms:-1",
      "percpu_arena:percpu,tcache:false,dirty_decay_ms:0",
  };
  pm_je_malloc_conf = conf[pm_opt.decay_ms == 0];
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

static void spare_expire(bool all);

void pm_fallback_maybe_purge(void) {
  spare_expire(false);
  if (!own_purging || !pm_fallback_started()) return;
  uint64_t now = pm_os_now_ms(), last = relaxed_load(&last_look_ms);
  if (now - last < pm_opt.decay_ms) return;
  if (!atomic_compare_exchange_strong(&last_look_ms, &last, now) || !je_enter()) return;
  int saved = errno;
  uint64_t recent = atomic_exchange(&recent_bytes, 0);
  je_refresh();
  uint64_t dirty = je_u64("stats.arenas.4096.pdirty") * pm_os_page_size();
  if (dirty > recent) {
    je_purge_all();
    atomic_fetch_add_explicit(&purged_bytes, dirty, memory_order_relaxed);
  }
  je_leave();
  errno = saved;
}

uint64_t pm_fallback_purged(void) {
  return relaxed_load(&purged_bytes);
}

/* ---- jemalloc and fork() ----
 *
 * jemalloc starts on the first request that reaches it; most short-lived
 * processes never send one (its start costs about 20 system calls and 40
 * page faults). Its fork functions (je_jemalloc_prefork and the two
 * postforks) take and release every jemalloc mutex; poolmalloc registers
 * them at load time (init.c) and runs them from its own handlers, since
 * jemalloc would register them from inside its initialisation, possibly
 * while another thread holds glibc's atfork lock in fork().
 *
 * A prepare handler runs before fork() takes glibc's stdio locks. If it
 * holds jemalloc's locks and a thread that holds a FILE lock (getdelim)
 * then needs one of them, the thread that holds the stdio list lock
 * (fflush(NULL)) waits for that FILE lock and fork() waits for the list
 * lock: a cycle (glibc bug 19431; glibc takes its own malloc locks after the
 * stdio locks, which a handler cannot). So while a fork holds jemalloc
 * ("the window": from the prepare handler's wait to the postfork handler)
 * no thread waits for it:
 * - every jemalloc call is bracketed by je_enter/je_leave: a count of calls
 *   in progress (je_calls) and a gate (fork_gate). The prepare handler
 *   raises the gate, then waits until je_calls is 0 (seq_cst on both sides:
 *   either the entering thread sees the gate or the handler sees its count),
 *   then calls je_jemalloc_prefork. A thread inside a jemalloc call waits
 *   only on jemalloc's own locks, held by other threads inside jemalloc,
 *   never on the fork.
 * - a thread that finds the gate raised does not enter jemalloc: a new block
 *   is mapped directly (window blocks, below), a jemalloc block it frees goes
 *   on a lock-free list freed after the window, and the size of a jemalloc
 *   block (realloc, malloc_usable_size) comes from je_sallocx, which for a
 *   thread whose jemalloc data is set up (je_ready) only reads jemalloc's
 *   radix tree: no lock, so it needs no bracket at all. Only a thread
 *   without that data waits for the window to end (jemalloc would create it
 *   under a lock the fork holds); see docs/design.md.
 * - a fork from a signal handler that interrupted this thread's own jemalloc
 *   call (je_depth), or a fork nested in this thread's fork (fork_level),
 *   does not wait and does not touch jemalloc: the child never calls
 *   jemalloc ("lost") and gets every large block by direct mapping. */
static _Atomic long je_calls;      /* jemalloc calls in progress, all threads */
static _Atomic unsigned fork_gate; /* windows open (low bits) | JE_LOST */
#define JE_LOST 0x80000000u        /* this process is a child that never calls jemalloc */
static PM_TLS volatile unsigned je_depth; /* this thread's jemalloc calls in progress */
/* this thread has finished a jemalloc call that set up all of jemalloc's
 * per-thread data (mallocx, rallocx, sallocx, mallctl, prefork; not dallocx,
 * which sets up only a minimal part): from then on je_sallocx takes no lock */
static PM_TLS bool je_ready;
static PM_TLS int starting; /* this thread is inside jemalloc's initialisation */
#define FORK_LEVELS 32
/* this thread's fork() calls in progress, and a bit per level. A signal
 * handler on this thread reads and writes them (it forks), so they are
 * volatile, in program order with je_depth. A level stays counted from the
 * first instruction of the prepare handler to the last of the postfork one:
 * a handler that forks in between is nested and never touches jemalloc, whose
 * mutexes the outer fork may hold (docs/design.md, "fork", wait 4). */
static PM_TLS volatile unsigned fork_level;
static PM_TLS volatile uint32_t fork_raised, fork_held, fork_lose;
static _Atomic(void *) deferred; /* jemalloc blocks freed during a window */

void je_jemalloc_prefork(void);
void je_jemalloc_postfork_parent(void);
void je_jemalloc_postfork_child(void);

static inline bool je_enter(void) {
  je_depth++;
  atomic_signal_fence(memory_order_seq_cst);
  atomic_fetch_add_explicit(&je_calls, 1, memory_order_seq_cst);
  if (likely(atomic_load_explicit(&fork_gate, memory_order_seq_cst) == 0)) return true;
  atomic_fetch_sub_explicit(&je_calls, 1, memory_order_release);
  atomic_signal_fence(memory_order_seq_cst);
  je_depth--;
  return false;
}

static inline void je_leave(void) {
  atomic_fetch_sub_explicit(&je_calls, 1, memory_order_release);
  atomic_signal_fence(memory_order_seq_cst);
  je_depth--;
}

static inline bool je_lost(void) {
  return (relaxed_load(&fork_gate) & JE_LOST) != 0;
}

/* jemalloc's first call, inside je_enter. One thread runs it; concurrent
 * starters wait for it here rather than enter jemalloc's initialisation
 * alongside it (ThreadSanitizer caught one thread locking jemalloc's
 * tsd_nominal_tsds_lock while the initialising thread was still creating
 * it). The wait cannot close a cycle: the starter waits on nothing of
 * poolmalloc's, and a fork's prepare handler waits for both (they are
 * inside je_enter) until the start is over. A fork from a signal handler
 * that interrupted the starter does not wait (je_depth) and its child never
 * calls jemalloc. */
static _Atomic int start_state; /* 0 not started, 1 starting */
static pm_noinline void start(void) {
  if (starting) return; /* jemalloc's init called malloc: let jemalloc cope */
  int expected = 0;
  if (!atomic_compare_exchange_strong(&start_state, &expected, 1)) {
    while (!atomic_load_explicit(&started, memory_order_acquire) &&
           atomic_load_explicit(&start_state, memory_order_acquire) == 1)
      sched_yield();
    return;
  }
  int saved = errno;
  starting = 1;
  pm_je_lazy_relocate(); /* its read-only data, left unrelocated at load */
  void *p = pm_je_mallocx(PM_MIN_ALIGN, 0);
  if (p != NULL) pm_je_dallocx(p, 0);
  starting = 0;
  if (p != NULL) atomic_store_explicit(&started, 1, memory_order_release);
  atomic_store_explicit(&start_state, 0,
                        memory_order_release); /* a failed start can be retried */
  errno = saved;
}

/* frees of jemalloc blocks that arrived during a window */
static void defer_free(void *p) {
  void *old = atomic_load_explicit(&deferred, memory_order_relaxed);
  do {
    *(void **)p = old;
  } while (!atomic_compare_exchange_weak_explicit(
      &deferred, &old, p, memory_order_release, memory_order_relaxed));
}

static pm_noinline void drain_deferred(void) {
  if (atomic_load_explicit(&deferred, memory_order_relaxed) == NULL || !je_enter())
    return;
  int saved = errno;
  void *p = atomic_exchange_explicit(&deferred, NULL, memory_order_acquire);
  while (p != NULL) {
    void *next = *(void **)p;
    pm_je_dallocx(p, 0);
    p = next;
  }
  je_leave();
  errno = saved;
}

pm_startup_code void pm_fallback_prefork(void) {
  unsigned level = fork_level++;
  if (level >= FORK_LEVELS) return;
  uint32_t bit = 1u << level;
  if (level > 0 || je_depth > 0 || je_lost()) {
    fork_lose |= bit; /* nested, or inside our own jemalloc call: no wait */
    return;
  }
  /* A single-threaded process (glibc's flag: false from the first
   * pthread_create on, for good) has no other thread that could hold a
   * jemalloc mutex or enter jemalloc during the window, and this one is in
   * no jemalloc call (je_depth): there is nothing to wait for or lock, and
   * the child's copy of jemalloc is consistent as it is. jemalloc's fork
   * functions lock, then unlock (parent) or re-create (child) every mutex
   * of every arena: they wrote some 12 pages on each side after the copy,
   * a copy-on-write fault each, and a fork took 2.4 times glibc's time
   * (docs/design.md, "fork"). The handlers below write nothing either
   * then: every page written after the copy costs a fault. */
  if (__libc_single_threaded) return;
  atomic_fetch_add_explicit(&fork_gate, 1, memory_order_seq_cst);
  fork_raised |= bit;
  for (unsigned spins = 0; atomic_load_explicit(&je_calls, memory_order_seq_cst) != 0;
       spins++)
    if (spins > 64) sched_yield();
  if (atomic_load_explicit(&started, memory_order_acquire)) {
    je_depth++; /* a signal handler that forks now is nested in this one */
    je_jemalloc_prefork();
    je_depth--;
    je_ready = true;
    fork_held |= bit;
  }
}

/* The postfork handlers leave this level counted until its jemalloc mutexes
 * are released and its bits cleared: a signal handler that forks before the
 * last store is nested (lost, no wait); after it, jemalloc is as it was
 * before the fork. (Counting it down first let a SIGALRM handler's fork take
 * jemalloc's mutexes while this thread still held them: it waited for
 * itself.) */
pm_startup_code void pm_fallback_postfork_parent(void) {
  unsigned level = fork_level - 1;
  if (level >= FORK_LEVELS) {
    fork_level = level;
    return;
  }
  uint32_t bit = 1u << level;
  if (fork_held & bit) {
    je_depth++;
    je_jemalloc_postfork_parent();
    je_depth--;
  }
  if (fork_raised & bit) atomic_fetch_sub_explicit(&fork_gate, 1, memory_order_seq_cst);
  if ((fork_held | fork_raised | fork_lose) & bit) {
    fork_held &= ~bit;
    fork_raised &= ~bit;
    fork_lose &= ~bit;
  }
  fork_level = level; /* last (volatile stores stay in program order) */
  if (relaxed_load(&deferred) != NULL) drain_deferred();
}

pm_startup_code void pm_fallback_postfork_child(void) {
  unsigned level = fork_level - 1;
  if (level >= FORK_LEVELS) { /* nested beyond the bits: lost, as any nested fork */
    atomic_fetch_or_explicit(&fork_gate, JE_LOST, memory_order_seq_cst);
    fork_level = level;
    return;
  }
  uint32_t bit = 1u << level;
  if (fork_held & bit) {
    je_depth++;
    je_jemalloc_postfork_child();
    je_depth--;
  }
  unsigned gate = relaxed_load(&fork_gate) & JE_LOST;
  if (fork_lose & bit) gate = JE_LOST;
  if ((fork_held | fork_raised | fork_lose) & bit) {
    fork_held &= ~bit;
    fork_raised &= ~bit;
    fork_lose &= ~bit;
  }
  /* only this thread exists now: the windows still open are its own outer
   * forks' (a nested fork), the calls in progress its own. Stored only if
   * they change (after a single-threaded fork they do not): each page
   * written costs the child a fault */
  if (fork_raised) gate |= (unsigned)__builtin_popcount(fork_raised);
  if (relaxed_load(&fork_gate) != gate)
    atomic_store_explicit(&fork_gate, gate, memory_order_seq_cst);
  if (relaxed_load(&je_calls) != (long)je_depth)
    atomic_store_explicit(&je_calls, (long)je_depth, memory_order_seq_cst);
  fork_level = level; /* last, as in the parent */
  if (gate == 0 && relaxed_load(&deferred) != NULL) drain_deferred();
}

/* ---- direct blocks: the first large blocks, and blocks asked for while
 * jemalloc cannot be entered ----
 *
 * Most short-lived processes (cat, sed, the compiler driver, half of the
 * shells of a configure run) ask for only a few blocks above
 * POOLMALLOC_MAX_POOLED. Starting jemalloc for them costs ~20 system calls
 * and ~40 page faults (about 1 ms here); an mmap per block costs one call.
 * So the first DIRECT_SLOTS such blocks of a process are mapped directly
 * (page-aligned, zeroed), and jemalloc starts with the request after them,
 * or sooner: with the first request after a direct block was freed while
 * another was live. Such a program churns large blocks; each direct block
 * it frees is unmapped and its pages are faulted in again in the next
 * block, where jemalloc reuses them (bench_large, 8 live blocks of 64 KiB-8
 * MiB: 19,600 faults and 0.27-0.29 s with 16 direct blocks, 15,400 and
 * 0.20-0.22 s with this rule; mimalloc 15,800).
 *
 * One big block at a time (a scratch buffer allocated and freed in a
 * loop) is served by one mapping: when the last live direct block is freed
 * it is kept (the spare) for the next large request, grown with mremap if
 * it is too small (a larger spare is handed out whole), and unmapped after
 * POOLMALLOC_DECAY_MS without use (at once with a decay of 0; malloc_trim).
 * Reusing it maps nothing, so it does not count towards the DIRECT_SLOTS
 * fresh mappings: such a loop neither re-faults every page of every block
 * (munmap then mmap: 25,000 faults where tcmalloc took 6,000 on calloc-big)
 * nor starts jemalloc. A reused block is not fresh: calloc memsets the part
 * of it that was in use before (the rest of a grown block is new zero
 * pages). With other direct blocks live the spare is not used: a program
 * that keeps several large blocks gets jemalloc after 16 as before (serving
 * bench_large's 8 live blocks from grown spares for the whole run took 0.41
 * s of CPU against jemalloc's 0.26, with 17% fewer faults). A slot (a live
 * block) is freed with its block and claimed again by the next one.
 *
 * Blocks requested during a fork window, and every large block of a child
 * that lost jemalloc, are mapped directly too and recorded in a second
 * table, mapped on first use (1 MiB of address space, touched as used): open
 * addressing on the address, at most WPROBE slots from its hash, lock-free
 * (a slot goes empty -> busy -> address -> tombstone -> busy...; lookups stop
 * at an empty slot, which never reappears before a live entry). */
#define DIRECT_SLOTS 16
#define DIRECT_MAX ((size_t)64 << 20) /* larger ones start jemalloc */
typedef struct direct_block {
  _Atomic uintptr_t p; /* 0: empty */
  size_t len;
} direct_block;
static direct_block direct[DIRECT_SLOTS];
/* fresh mappings made (DIRECT_SLOTS once a block was freed among live
 * ones), live blocks */
PM_HOT static _Atomic uint32_t direct_taken, direct_live;
/* the spare: a freed direct block, its length in its first word, or 0 */
static _Atomic uintptr_t spare;
static _Atomic uint64_t spare_ms, spare_bytes; /* when it was kept, its length */

#define WBITS 16
#define WSLOTS (1u << WBITS)
#define WPROBE 64
#define W_GONE ((uintptr_t)1)
#define W_BUSY ((uintptr_t)2)
static _Atomic(direct_block *) wtab;
static _Atomic uint32_t wlive;
static _Atomic uint64_t wbytes;

/* an empty slot, claimed (W_BUSY), or NULL if all hold live blocks */
static direct_block *slot_claim(void) {
  for (unsigned i = 0; i < DIRECT_SLOTS; i++) {
    uintptr_t v = 0;
    if (relaxed_load(&direct[i].p) == 0 &&
        atomic_compare_exchange_strong_explicit(
            &direct[i].p, &v, W_BUSY, memory_order_acquire, memory_order_relaxed))
      return &direct[i];
  }
  return NULL;
}

/* the spare, taken (its length in *len), or NULL */
static char *spare_take(size_t *len) {
  if (relaxed_load(&spare) == 0) return NULL;
  char *p = (char *)atomic_exchange_explicit(&spare, 0, memory_order_acquire);
  if (p != NULL) {
    *len = *(size_t *)p;
    atomic_fetch_sub_explicit(&spare_bytes, *len, memory_order_relaxed);
  }
  return p;
}

/* keeps the freed direct block p of len bytes as the spare if no other
 * direct block is live (the previous spare is unmapped); false if it is not
 * kept (the caller unmaps it) */
static bool spare_keep(char *p, size_t len) {
  if (pm_opt.decay_ms == 0 || pm_fallback_started() || relaxed_load(&direct_live) != 0)
    return false;
  *(size_t *)p = len;
  atomic_fetch_add_explicit(&spare_bytes, len, memory_order_relaxed);
  relaxed_store(&spare_ms, pm_os_now_ms());
  char *old =
      (char *)atomic_exchange_explicit(&spare, (uintptr_t)p, memory_order_acq_rel);
  if (old != NULL) {
    size_t old_len = *(size_t *)old;
    atomic_fetch_sub_explicit(&spare_bytes, old_len, memory_order_relaxed);
    pm_os_unmap(old, old_len);
  }
  return true;
}

/* unmaps the spare if it is unused for the decay period, once jemalloc has
 * started (it serves every large request then), or if `all` */
static void spare_expire(bool all) {
  if (likely(relaxed_load(&spare) == 0)) return;
  if (!all && !pm_fallback_started() &&
      pm_os_now_ms() - relaxed_load(&spare_ms) < pm_opt.decay_ms)
    return;
  size_t len;
  char *p = spare_take(&len);
  if (p != NULL) pm_os_unmap(p, len);
}

/* A direct block: the spare (grown if it must) or, for the first
 * DIRECT_SLOTS, a fresh mapping; NULL if jemalloc must serve it. */
static void *direct_alloc(size_t size, size_t align, int zero) {
  if (align > 4096 || size > DIRECT_MAX) return NULL;
  bool fresh_left = relaxed_load(&direct_taken) < DIRECT_SLOTS;
  if (!fresh_left && relaxed_load(&spare) == 0) return NULL;
  direct_block *d = slot_claim();
  if (d == NULL) return NULL;
  size_t len = (size + 4095) & ~(size_t)4095, dirty = 0;
  char *p = spare_take(&dirty);
  if (p != NULL && relaxed_load(&direct_live) != 0) { /* not one block at a time */
    pm_os_unmap(p, dirty);
    p = NULL;
    dirty = 0;
  }
  if (p != NULL && dirty < len) { /* grow: the pages it has stay */
    char *q = pm_os_remap(p, dirty, len);
    if (q == NULL) {
      pm_os_unmap(p, dirty);
      dirty = 0;
    }
    p = q;
  } else if (p != NULL) {
    len = dirty; /* a larger spare is handed out whole */
  }
  if (p == NULL) {
    if (!fresh_left || atomic_fetch_add(&direct_taken, 1) >= DIRECT_SLOTS ||
        (p = pm_os_map_block(len)) == NULL) {
      atomic_store_explicit(&d->p, 0, memory_order_release);
      return NULL;
    }
  }
  /* a reused block is not fresh: zero what was in use before */
  if (zero != PM_ZERO_NONE && dirty != 0) memset(p, 0, dirty < size ? dirty : size);
  d->len = len;
  atomic_fetch_add(&direct_live, 1);
  atomic_store_explicit(&d->p, (uintptr_t)p, memory_order_release);
  return p;
}

static size_t whash(uintptr_t p) {
  return (size_t)(((p >> 12) * 0x9E3779B97F4A7C15ull) >> (64 - WBITS));
}

/* a zeroed block of at least size bytes aligned to align, in the table;
 * NULL with errno ENOMEM if there is no memory or no free slot near its hash */
static pm_noinline void *window_alloc(size_t size, size_t align) {
  direct_block *t = atomic_load_explicit(&wtab, memory_order_acquire);
  if (t == NULL) {
    direct_block *n = pm_os_map(WSLOTS * sizeof *n);
    if (n == NULL) goto fail;
    if (atomic_compare_exchange_strong(&wtab, &t, n))
      t = n;
    else
      pm_os_unmap(n, WSLOTS * sizeof *n);
  }
  if (align < 4096) align = 4096;
  size_t len = (size + 4095) & ~(size_t)4095;
  if (len < size || len > PTRDIFF_MAX - align) goto fail;
  size_t span = align > 4096 ? len + align : len;
  char *m = pm_os_map_block(span);
  if (m == NULL) goto fail;
  char *p = (char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
  if (p > m) pm_os_unmap(m, (size_t)(p - m));
  if (m + span > p + len) pm_os_unmap(p + len, (size_t)(m + span - (p + len)));
  size_t h = whash((uintptr_t)p);
  for (unsigned i = 0; i < WPROBE; i++) {
    direct_block *s = &t[(h + i) & (WSLOTS - 1)];
    uintptr_t v = atomic_load_explicit(&s->p, memory_order_relaxed);
    if ((v == 0 || v == W_GONE) &&
        atomic_compare_exchange_strong_explicit(&s->p, &v, W_BUSY, memory_order_acquire,
                                                memory_order_relaxed)) {
      s->len = len;
      atomic_fetch_add(&wlive, 1);
      atomic_fetch_add_explicit(&wbytes, len, memory_order_relaxed);
      atomic_store_explicit(&s->p, (uintptr_t)p, memory_order_release);
      return p;
    }
  }
  pm_os_unmap(p, len);
fail:
  errno = ENOMEM;
  return NULL;
}

static pm_noinline direct_block *direct_search(const void *p) {
  if (relaxed_load(&direct_live) != 0)
    for (unsigned i = 0; i < DIRECT_SLOTS; i++)
      if (atomic_load_explicit(&direct[i].p, memory_order_acquire) == (uintptr_t)p)
        return &direct[i];
  if (relaxed_load(&wlive) == 0) return NULL;
  direct_block *t = atomic_load_explicit(&wtab, memory_order_acquire);
  size_t h = whash((uintptr_t)p);
  for (unsigned i = 0; i < WPROBE; i++) {
    direct_block *s = &t[(h + i) & (WSLOTS - 1)];
    uintptr_t v = atomic_load_explicit(&s->p, memory_order_acquire);
    if (v == (uintptr_t)p) return s;
    if (v == 0) break;
  }
  return NULL;
}

/* p's slot if p is a direct block. Direct and window blocks start on a
 * 4 KiB page (their own mapping); jemalloc's small blocks mostly do not, and
 * while a direct block was live each of their frees scanned the 16 slots
 * (python3 with routing on: 2% of its instructions) */
static inline direct_block *direct_find(const void *p) {
  if (likely((relaxed_load(&direct_live) | relaxed_load(&wlive)) == 0)) return NULL;
  if ((uintptr_t)p & 4095) return NULL;
  return direct_search(p);
}

static void direct_free(direct_block *d) {
  bool table = (uintptr_t)d - (uintptr_t)direct >= sizeof direct;
  size_t len = d->len;
  uintptr_t p = atomic_exchange(&d->p, table ? W_GONE : 0);
  if (p <= W_BUSY) return;
  if (table) {
    atomic_fetch_sub(&wlive, 1);
    atomic_fetch_sub_explicit(&wbytes, len, memory_order_relaxed);
  } else {
    bool others = atomic_fetch_sub(&direct_live, 1) > 1;
    if (spare_keep((char *)p, len)) return;
    /* freed while other direct blocks live: the program churns large
     * blocks, and each direct one given back is faulted in again; the next
     * ones go to jemalloc, which reuses what is freed */
    if (others) atomic_store_explicit(&direct_taken, DIRECT_SLOTS, memory_order_relaxed);
  }
  pm_os_unmap((void *)p, len);
}

/* The size of jemalloc block p while jemalloc cannot be entered (a window
 * is open, or this is a child that lost it): 1 with *size, 0 if it cannot
 * be known (this thread's own fork is the window, or a lost child whose
 * thread never set up its jemalloc data), -1 after waiting for the window
 * to close (the caller starts again). With its jemalloc data set up
 * (je_ready), je_sallocx only reads jemalloc's radix tree, without a lock. */
static int size_outside(const void *p, size_t *size) {
  if (je_ready) {
    *size = pm_je_sallocx(p, 0);
    return 1;
  }
  if (fork_level > 0 || je_lost()) return 0;
  /* the one wait of the window (docs/design.md, "fork") */
  while (relaxed_load(&fork_gate) != 0 && !je_lost())
    sched_yield();
  return -1;
}

bool pm_fallback_owns(const void *p) {
  return pm_fallback_started() || direct_find(p) != NULL;
}

void *pm_fallback_alloc(size_t size, size_t align, int zero) {
  if (unlikely(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  if (unlikely(!atomic_load_explicit(&started, memory_order_acquire))) {
    void *p = direct_alloc(size, align, zero);
    if (p != NULL) return p;
  }
  if (unlikely(!je_enter())) return window_alloc(size, align); /* zeroed: mmap */
  if (unlikely(!atomic_load_explicit(&started, memory_order_acquire))) start();
  if (own_purging) atomic_fetch_add_explicit(&recent_bytes, size, memory_order_relaxed);
  int flags = zero == PM_ZERO_PAGES ? PM_JE_ZERO : 0;
  size_t n = size < PM_MIN_ALIGN ? PM_MIN_ALIGN : size;
  if (align > PM_MIN_ALIGN) flags |= __builtin_ctzl(align);
  void *p = pm_je_mallocx(n, flags);
  je_leave();
  je_ready = true;
  if (unlikely(p == NULL))
    errno = ENOMEM;
  else if (zero == PM_ZERO_MEMSET)
    memset(p, 0, size);
  return p;
}

/* realloc of a jemalloc block while jemalloc cannot be entered: a window
 * block, the old one freed after the window (or, in a lost child, left) */
static pm_noinline void *realloc_outside(void *p, size_t size, bool *retry) {
  size_t old = 0;
  int known = size_outside(p, &old);
  *retry = known < 0;
  if (known <= 0) {
    if (known == 0) errno = ENOMEM;
    return NULL;
  }
  void *q = window_alloc(size, 0);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  if (!je_lost()) defer_free(p);
  return q;
}

void *pm_fallback_realloc(void *p, size_t size) {
  if (unlikely(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  for (;;) {
    direct_block *d = direct_find(p);
    if (d != NULL) {
      size_t len = d->len;
      if (size <= len && size > len / 2) return p;
      void *q = pm_fallback_alloc(size, 0, PM_ZERO_NONE);
      if (q == NULL) return NULL;
      memcpy(q, p, size < len ? size : len);
      direct_free(d);
      return q;
    }
    if (size < PM_MIN_ALIGN) size = PM_MIN_ALIGN;
    if (likely(je_enter())) {
      void *q = pm_je_rallocx(p, size, 0);
      je_leave();
      je_ready = true;
      if (unlikely(q == NULL)) errno = ENOMEM;
      return q;
    }
    bool retry;
    void *q = realloc_outside(p, size, &retry);
    if (!retry) return q;
  }
}

void pm_fallback_free(void *p) {
  direct_block *d = direct_find(p);
  if (d != NULL) {
    direct_free(d);
    return;
  }
  int saved = errno;
  if (likely(je_enter())) {
    pm_je_dallocx(p, 0);
    je_leave();
    if (unlikely(atomic_load_explicit(&deferred, memory_order_relaxed) != NULL))
      drain_deferred();
  } else if (!je_lost()) {
    defer_free(p);
  } /* a lost child leaves jemalloc's blocks alone */
  errno = saved;
}

size_t pm_fallback_usable(const void *p) {
  for (;;) {
    direct_block *d = direct_find(p);
    if (d != NULL) return d->len;
    /* no lock once this thread's jemalloc data exists: needs no bracket */
    if (likely(je_ready)) return pm_je_sallocx(p, 0);
    if (je_enter()) {
      size_t n = pm_je_sallocx(p, 0);
      je_leave();
      je_ready = true;
      return n;
    }
    size_t n = 0;
    int known = size_outside(p, &n);
    if (known >= 0) return n; /* 0: unknown (see size_outside) */
  }
}

void pm_fallback_figures(uint64_t *allocated, uint64_t *resident) {
  uint64_t d = relaxed_load(&wbytes); /* direct blocks count as this tier's */
  for (unsigned i = 0; i < DIRECT_SLOTS; i++)
    if (atomic_load_explicit(&direct[i].p, memory_order_acquire)) d += direct[i].len;
  *allocated = d;
  *resident = d + relaxed_load(&spare_bytes); /* resident: an upper bound */
  if (!pm_fallback_started() || !je_enter()) return;
  int saved = errno;
  je_refresh();
  *allocated += je_u64("stats.allocated");
  *resident += je_u64("stats.resident");
  je_leave();
  je_ready = true;
  errno = saved;
}

void pm_fallback_trim(void) {
  spare_expire(true);
  if (!pm_fallback_started() || !je_enter()) return;
  int saved = errno;
  je_purge_all();
  je_leave();
  errno = saved;
}
