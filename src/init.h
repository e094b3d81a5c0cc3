/* init.h - process and thread start-up, thread exit, fork.
 *
 * Initialisation is lazy: the first allocation of the process reads the
 * options and reserves the region; the first allocation of a thread gives
 * it a heap. None of it calls malloc. */
#ifndef PM_INIT_H
#define PM_INIT_H

#include "heap.h"

/* The heap the calling thread should use: a real heap, or
 * &pm_heap_jemalloc when pools are off (POOLMALLOC_DISABLE, no address
 * space, too many threads, thread exiting, or a call made while
 * poolmalloc itself is starting). */
pm_heap *pm_thread_start(void);

pm_inline pm_heap *pm_heap_get(void) {
  pm_heap *h = pm_tls_heap;
  if (unlikely(h == &pm_heap_empty)) h = pm_thread_start();
  return h;
}

/* nanoseconds since the library was loaded */
uint64_t pm_uptime_ns(void);

#endif
