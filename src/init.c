/* init.c - the library's constructor and destructor, and the fork handlers.
 *
 * The constructor does no work a short-lived process would pay for: it
 * reads the clock and the options, and only when a report is asked for
 * keeps a private copy of stderr (before any of the program runs, so the
 * report never goes into a file that later took descriptor 2) and
 * installs the dump signal. The first
 * allocation does the rest (start.c). The destructor writes the exit
 * report. */
#define _GNU_SOURCE
#include "arena.h"
#include "fallback.h"
#include "fmt.h"
#include "options.h"
#include "os.h"
#include "report.h"
#include "sample.h"
#include "start.h"
#include "unwind.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

/* referenced by the link of every user of the core (CMakeLists.txt), so
 * this file, which nothing calls, is always linked in */
const int pm_init_linked = 1;

/* ---- POOLMALLOC_BACKGROUND: returning memory while the program is idle ----
 *
 * Without it free memory goes back to the OS at the next allocator call
 * after POOLMALLOC_DECAY_MS; an idle program keeps it. The thread wakes
 * every half decay period and runs the same purge the allocator's own
 * calls run (lock-free for the pool pages; for jemalloc through the fork
 * gate of fallback.c). It never allocates, so it gets no heap and is not
 * counted in the report's threads; it blocks every signal, so the
 * program's signals never land on it. A forked child does not get one
 * (children usually exec). It does make the process multi-threaded, and
 * glibc's fork() then takes its stdio and malloc locks: a fork from a
 * signal handler that interrupted a fork (allowed only in single-threaded
 * programs) deadlocks in glibc itself, which is why it is opt-in. */
static void *background(void *arg) {
  (void)arg;
  uint64_t ms = pm_opt.decay_ms / 2 ? pm_opt.decay_ms / 2 : 50;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  for (;;) {
    nanosleep(&ts, NULL);
    if (pm_started()) pm_pages_maybe_purge();
    pm_fallback_maybe_purge();
  }
  return NULL;
}

static void background_start(void) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  if (pthread_create(&t, NULL, background, NULL) == 0) {
    pthread_setname_np(t, "pm-background");
    pthread_detach(t);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void ignore_warning(const char *line) {
  (void)line;
}

/* the walks' gate first (unwind.c: it may wait, briefly, so before any
 * lock is taken), then jemalloc's */
pm_startup_code static void fork_prepare(void) {
  pm_unwind_prefork();
  pm_fallback_prefork();
}

pm_startup_code static void fork_parent(void) {
  pm_fallback_postfork_parent();
  pm_unwind_postfork(false);
}

pm_startup_code static void fork_child(void) {
  pm_heap *self = pm_tls_heap;
  pm_fallback_postfork_child();
  pm_unwind_postfork(true);
  pm_sample_postfork_child();
  pm_forked_child = true;
  if (pm_started()) pm_heaps_after_fork(self);
}

/* what pthread_atfork is: libc_nonshared.a's stub, linked at the end of
 * the text, whose page alone cost every process a page fault */
extern int __register_atfork(void (*prepare)(void), void (*parent)(void),
                             void (*child)(void), void *dso_handle);
extern void *__dso_handle;

__attribute__((constructor)) static void pm_library_init(void) {
  /* glibc keeps the first 48 handlers without allocating */
  __register_atfork(fork_prepare, fork_parent, fork_child, __dso_handle);
  /* most processes set no POOLMALLOC_ variable: one pass over environ. The
   * run time of a report counts from here when one is asked for, else from
   * the first allocation (start.c): reading the clock faulted in the
   * vDSO's two data pages of every process */
  char prefix[] = "POOLMALLOC_"; /* on the stack: no page of .rodata read */
  if (!pm_os_env_has_prefix(prefix)) return;
  pm_os_mark_start();
  /* a look at the options without loading them: the first allocation
   * loads them (and warns about bad values) once */
  pm_options o;
  pm_options_load(&o, pm_os_getenv, ignore_warning);
  if (o.background) {
    pm_options_init(); /* the thread reads pm_opt */
    background_start();
  }
  if (o.stats != PM_STATS_OFF || o.stats_signal != 0) {
    pm_report_prepare();
    pm_report_install_signal((int)o.stats_signal);
    /* here, not in malloc: loading it takes the loader's lock */
    if (o.profile) pm_sample_load_unwinder((unsigned)o.unwinder);
  }
}

/* DT_FINI (CMakeLists.txt: -Wl,-fini): the loader calls it at exit after
 * the destructors. crti.o's _fini, which did nothing, sat alone at the end
 * of the text and cost every process a page fault */
pm_startup_code void pm_library_dt_fini(void) {}

__attribute__((destructor)) static void pm_library_fini(void) {
  /* a process that never allocated (and set no POOLMALLOC_ variable) has
   * nothing to report: no option parsing at exit either */
  char prefix[] = "POOLMALLOC_";
  if (!pm_options_loaded() && !pm_os_env_has_prefix(prefix)) return;
  pm_options_init();
  if (pm_opt.stats != PM_STATS_OFF) pm_report_at_exit();
}
