/* start.h - process and thread start-up, thread exit.
 *
 * Initialisation is lazy: the first allocation of the process reads the
 * options and reserves the region; the first allocation of a thread gives
 * it a heap and registers a pthread key whose destructor abandons the
 * heap's pages when the thread exits. None of it calls malloc. */
#ifndef PM_START_H
#define PM_START_H

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

/* true once the process start-up has succeeded (pools on) */
bool pm_started(void);

#endif
