/* init.c - process and thread start-up, thread exit, fork, exit report.
 *
 * The first allocation of the process (from any thread, before or after
 * constructors) reads the options and reserves the region; nothing calls
 * malloc on the way. A thread's first allocation gives it a heap and
 * registers a pthread key whose destructor abandons the heap's pages when
 * the thread exits. The library constructor does no work a short-lived
 * process would pay for beyond reading the clock. */
#define _GNU_SOURCE
#include "init.h"
#include "arena.h"
#include "fallback.h"
#include "fmt.h"
#include "options.h"
#include "os.h"
#include "report.h"

#include <pthread.h>
#include <sched.h>

enum { PM_INIT_NONE, PM_INIT_RUNNING, PM_INIT_DONE, PM_INIT_FAILED };
static _Atomic int process_state;
static PM_TLS int in_init;
static pthread_key_t thread_key;
static uint64_t start_ns;

uint64_t pm_uptime_ns(void) {
  return start_ns ? pm_os_now_ns() - start_ns : 0;
}

static void thread_exit(void *arg) {
  pm_heap *h = arg;
  /* allocations made by later destructors of this thread go to jemalloc */
  pm_tls_heap = &pm_heap_jemalloc;
  if (h != NULL && h->kind == PM_HEAP_REAL) pm_heap_release(h);
}

static void verbose_dump(void) {
  char line[1024];
  pm_buf b = pm_buf_make(line, sizeof line);
  pm_buf_str(&b, "version " PM_VERSION ", pid ");
  extern int getpid(void);
  pm_buf_u64(&b, (uint64_t)getpid());
  for (size_t i = 0; i < pm_option_count; i++) {
    pm_buf_str(&b, ", POOLMALLOC_");
    pm_buf_str(&b, pm_option_table[i].name);
    pm_buf_char(&b, '=');
    pm_option_format(&b, &pm_opt, i);
  }
  pm_message(pm_buf_cstr(&b));
}

static bool process_init(void) {
  int s = atomic_load_explicit(&process_state, memory_order_acquire);
  if (likely(s >= PM_INIT_DONE)) return s == PM_INIT_DONE;
  if (in_init) return false; /* something below called malloc: serve it from jemalloc */
  int expected = PM_INIT_NONE;
  if (atomic_compare_exchange_strong(&process_state, &expected, PM_INIT_RUNNING)) {
    in_init = 1;
    if (start_ns == 0) start_ns = pm_os_now_ns();
    pm_options_init();
    if (pm_opt.verbose) verbose_dump();
    pm_report_prepare();
    pm_report_install_signal();
    bool ok = pm_opt.disable || (pm_arena_init() && pm_heaps_init() &&
                                 pthread_key_create(&thread_key, thread_exit) == 0);
    pm_fallback_configure(ok && !pm_opt.disable);
    if (!ok && pm_opt.verbose)
      pm_message("could not reserve address space; every request goes to jemalloc");
    in_init = 0;
    atomic_store_explicit(&process_state, ok ? PM_INIT_DONE : PM_INIT_FAILED,
                          memory_order_release);
    return ok;
  }
  while ((s = atomic_load_explicit(&process_state, memory_order_acquire)) ==
         PM_INIT_RUNNING)
    sched_yield();
  return s == PM_INIT_DONE;
}

pm_heap *pm_thread_start(void) {
  if (!process_init()) {
    if (!in_init && atomic_load(&process_state) == PM_INIT_FAILED)
      pm_tls_heap = &pm_heap_jemalloc;
    return &pm_heap_jemalloc;
  }
  pm_heap *h = pm_opt.disable ? NULL : pm_heap_acquire();
  if (h == NULL) {
    pm_tls_heap = &pm_heap_jemalloc;
    return &pm_heap_jemalloc;
  }
  pm_tls_heap = h;
  /* may call calloc for keys >= 32; the heap is already in place */
  pthread_setspecific(thread_key, h);
  return h;
}

static void fork_child(void) {
  pm_heap *self = pm_tls_heap;
  pm_fallback_postfork_child();
  pm_forked_child = true;
  if (atomic_load(&process_state) == PM_INIT_DONE) pm_heaps_after_fork(self);
}

__attribute__((constructor)) static void pm_library_init(void) {
  if (start_ns == 0) start_ns = pm_os_now_ns();
  /* glibc keeps the first 48 handlers without allocating */
  pthread_atfork(pm_fallback_prefork, pm_fallback_postfork_parent, fork_child);
}

__attribute__((destructor)) static void pm_library_fini(void) {
  pm_options_init();
  if (pm_opt.stats != PM_STATS_OFF) pm_report_at_exit();
}
