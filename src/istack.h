/* istack.h - a lock-free stack of table entries, linked by index.
 *
 * The free heaps (heap.c) and the free and abandoned pages (arena.c) are
 * entries of fixed tables; a stack of them is one 64-bit word, the low half
 * the index + 1 of the top entry (0: empty), the high half a tag that every
 * change increments so a pop that raced with a pop and a push of the same
 * entry fails its compare-and-swap (the ABA problem). Each entry keeps the
 * index + 1 of the entry below it in an _Atomic uint32_t link; `link_of`
 * finds it for an index. Nothing here allocates or blocks. */
#ifndef PM_ISTACK_H
#define PM_ISTACK_H

#include "common.h"

typedef _Atomic uint64_t pm_istack;
typedef _Atomic uint32_t *(*pm_istack_link_fn)(uint32_t index);

#define PM_ISTACK_TOP(word) ((uint32_t)(word))
#define PM_ISTACK_NEXT_TAG(word) ((((word) >> 32) + 1) << 32)

/* Pushes the chain first..last (first's index given, last's link given);
 * the entries between are already linked. */
pm_inline void pm_istack_push(pm_istack *head, uint32_t first,
                              _Atomic uint32_t *last_link) {
  uint64_t old = atomic_load_explicit(head, memory_order_relaxed), next;
  do {
    relaxed_store(last_link, PM_ISTACK_TOP(old));
    next = PM_ISTACK_NEXT_TAG(old) | (uint64_t)(first + 1);
  } while (!atomic_compare_exchange_weak_explicit(head, &old, next, memory_order_release,
                                                  memory_order_relaxed));
}

/* The index of the popped entry, or UINT32_MAX when the stack is empty. */
pm_inline uint32_t pm_istack_pop(pm_istack *head, pm_istack_link_fn link_of) {
  uint64_t old = atomic_load_explicit(head, memory_order_acquire), next;
  do {
    uint32_t top = PM_ISTACK_TOP(old);
    if (top == 0) return UINT32_MAX;
    next = PM_ISTACK_NEXT_TAG(old) | relaxed_load(link_of(top - 1));
  } while (!atomic_compare_exchange_weak_explicit(head, &old, next, memory_order_acquire,
                                                  memory_order_acquire));
  return PM_ISTACK_TOP(old) - 1;
}

/* Detaches the whole stack; the index of its top, or UINT32_MAX. */
pm_inline uint32_t pm_istack_take_all(pm_istack *head) {
  uint64_t old = atomic_load_explicit(head, memory_order_acquire), next;
  do {
    if (PM_ISTACK_TOP(old) == 0) return UINT32_MAX;
    next = PM_ISTACK_NEXT_TAG(old);
  } while (!atomic_compare_exchange_weak_explicit(head, &old, next, memory_order_acquire,
                                                  memory_order_acquire));
  return PM_ISTACK_TOP(old) - 1;
}

pm_inline bool pm_istack_empty(pm_istack *head) {
  return PM_ISTACK_TOP(atomic_load_explicit(head, memory_order_relaxed)) == 0;
}

#endif
