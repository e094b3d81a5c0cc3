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
#include "fallback.h"
#include "fmt.h"
#include "options.h"
#include "os.h"
#include "report.h"
#include "start.h"

#include <pthread.h>

/* referenced by the link of every user of the core (CMakeLists.txt), so
 * this file, which nothing calls, is always linked in */
const int pm_init_linked = 1;

static void ignore_warning(const char *line) {
  (void)line;
}

static void fork_child(void) {
  pm_heap *self = pm_tls_heap;
  pm_fallback_postfork_child();
  pm_forked_child = true;
  if (pm_started()) pm_heaps_after_fork(self);
}

__attribute__((constructor)) static void pm_library_init(void) {
  pm_os_mark_start();
  /* glibc keeps the first 48 handlers without allocating */
  pthread_atfork(pm_fallback_prefork, pm_fallback_postfork_parent, fork_child);
  /* a look at the options without loading them: the first allocation
   * loads them (and warns about bad values) once */
  pm_options o;
  pm_options_load(&o, pm_os_getenv, ignore_warning);
  if (o.stats != PM_STATS_OFF || o.stats_signal != 0) {
    pm_report_prepare();
    pm_report_install_signal((int)o.stats_signal);
  }
}

__attribute__((destructor)) static void pm_library_fini(void) {
  pm_options_init();
  if (pm_opt.stats != PM_STATS_OFF) pm_report_at_exit();
}
