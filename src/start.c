/* start.c - process and thread start-up, thread exit (see start.h).
 *
 * The first allocation of the process (from any thread, before or after
 * constructors) reads the options and reserves the region; nothing calls
 * malloc on the way. A thread's first allocation gives it a heap. */
#define _GNU_SOURCE
#include "start.h"
#include "fallback.h"
#include "fmt.h"
#include "options.h"
#include "os.h"
#include "sample.h"

#include <pthread.h>
#include <sched.h>

enum { PM_INIT_NONE, PM_INIT_RUNNING, PM_INIT_DONE, PM_INIT_FAILED };
PM_HOT static _Atomic int process_state;
static PM_TLS int in_init;
PM_HOT static pthread_key_t thread_key;

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
  pm_buf_u64(&b, (uint64_t)pm_os_pid());
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
    pm_os_mark_start(); /* unless the constructor did (a POOLMALLOC_ variable) */
    pm_options_init();
    if (pm_opt.verbose) verbose_dump();
    pm_sample_init(pm_opt.profile &&
                       (pm_opt.stats != PM_STATS_OFF || pm_opt.stats_signal),
                   pm_opt.lifetime != 0, pm_heaps_live_requested);
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

bool pm_started(void) {
  return atomic_load(&process_state) == PM_INIT_DONE;
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
