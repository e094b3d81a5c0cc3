/* page.h - one pool page: blocks of a single size class.
 *
 * A page hands out blocks from its local free list; when that is empty it
 * bump-carves the next few blocks from its untouched tail (fresh memory is
 * never threaded onto a list up front), and collects the blocks other
 * threads freed onto its atomic remote list. Links stored inside free
 * blocks are XOR-encoded with a per-process secret, and a freed block's
 * second word holds a per-process tag so a double free is noticed. */
#ifndef PM_PAGE_H
#define PM_PAGE_H

#include "arena.h"
#include "sizeclass.h"

typedef struct pm_block {
  uintptr_t next; /* encoded link */
  uintptr_t tag;  /* pm_g.tag while free, 0 while allocated */
} pm_block;

pm_inline pm_block *pm_block_next(const pm_block *b) {
  return (pm_block *)(b->next ^ pm_g.key);
}
pm_inline void pm_block_set_next(pm_block *b, const pm_block *next) {
  b->next = (uintptr_t)next ^ pm_g.key;
}

/* Makes pg an empty page of class cls owned by heap. */
void pm_page_init(pm_page *pg, unsigned cls, struct pm_heap *heap);
/* Marks an in-use page free (no owner); keeps the page counts. */
void pm_page_retire(pm_page *pg);
extern _Atomic uint64_t pm_class_pages[PM_NCLASSES], pm_class_pages_peak[PM_NCLASSES];
extern _Atomic uint64_t pm_pages_in_use, pm_pages_peak;
extern _Atomic uint64_t pm_class_local_frees[PM_NCLASSES],
    pm_class_allocs_retired[PM_NCLASSES];
/* Carves up to a few KiB of fresh blocks onto the free list; false if the
 * page has no untouched tail left. */
bool pm_page_carve(pm_page *pg);
/* Moves remote frees onto the local free list; returns how many. */
uint32_t pm_page_collect(pm_page *pg);
/* true if off (bytes from the page start) is the start of a block */
pm_inline bool pm_page_is_block_start(const pm_page *pg, uintptr_t off) {
  uint64_t idx = ((uint64_t)off * pg->magic) >> 40;
  return idx * pg->bsize == off && idx < pg->capacity;
}
/* true if b is on the local or remote free list (the slow, certain part of
 * the double-free check). */
bool pm_page_holds_free(pm_page *pg, const pm_block *b);

#endif
