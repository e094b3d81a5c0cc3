/* page.h - one pool page: blocks of a single size class.
 *
 * A page hands out blocks from its local free list; when that is empty it
 * bump-carves the next few blocks from its untouched tail (fresh memory is
 * never threaded onto a list up front), and collects the blocks other
 * threads freed onto its atomic remote list. Links stored inside free
 * blocks are XOR-encoded with a per-process secret, and a freed block's
 * second word holds a per-process tag so a double free is noticed
 * (pm_page_check). */
#ifndef PM_PAGE_H
#define PM_PAGE_H

#include "arena.h"

pm_inline pm_block *pm_block_next(const pm_block *b) {
  return (pm_block *)(b->next ^ pm_g.key);
}
pm_inline void pm_block_set_next(pm_block *b, const pm_block *next) {
  b->next = (uintptr_t)next ^ pm_g.key;
}

/* the newest block of a remote list's head word, and the list's length
 * (PM_REMOTE_MAX: that many or more) */
pm_inline pm_block *pm_remote_first(const pm_block *w) {
  return (pm_block *)((uintptr_t)w & PM_REMOTE_ADDR);
}
pm_inline uint32_t pm_remote_length(const pm_block *w) {
  return (uint32_t)((uintptr_t)w >> PM_REMOTE_SHIFT);
}
/* the head word with b pushed on top of old */
pm_inline pm_block *pm_remote_push(pm_block *old, pm_block *b) {
  uint32_t n = pm_remote_length(old);
  n += n < PM_REMOTE_MAX;
  return (pm_block *)((uintptr_t)b | (uintptr_t)n << PM_REMOTE_SHIFT);
}

/* Makes pg an empty page of class cls owned by heap. */
void pm_page_init(pm_page *pg, unsigned cls, struct pm_heap *heap);
/* Makes pg, released empty by heap with every block it carved still on its
 * free list, an empty page of its class again, keeping that list. */
void pm_page_revive(pm_page *pg, struct pm_heap *heap);
/* Marks an in-use page free (no owner); keeps the page counts. */
void pm_page_retire(pm_page *pg);
extern _Atomic uint64_t pm_class_pages[PM_NCLASSES], pm_class_pages_peak[PM_NCLASSES];
extern _Atomic uint64_t pm_pages_in_use, pm_pages_peak;
extern _Atomic uint64_t pm_class_local_frees[PM_NCLASSES],
    pm_class_remote_frees[PM_NCLASSES], pm_class_allocs_retired[PM_NCLASSES];
/* Carves up to a few KiB of fresh blocks onto the free list; false if the
 * page has no untouched tail left. */
bool pm_page_carve(pm_page *pg);
/* Blocks out: pm_page_used, or for the class's current page, whose
 * allocations are not counted, the carved blocks less those on the free list
 * and in returned pieces. The walk stops at a link that leaves the page: a
 * report reads other threads' pages while they run. */
uint32_t pm_page_count_used(pm_page *pg);
/* Moves remote frees onto the local free list; returns how many. */
uint32_t pm_page_collect(pm_page *pg);
/* An in-use page's blocks out (pm_page_count_used) and, of those, the
 * remote frees not yet collected (pm_page_count_remote), read so that a
 * collection by the owner in between does not count its blocks as out. */
void pm_page_count_out(pm_page *pg, uint32_t *used, uint32_t *pending);
/* The allocations an in-use page served since it was initialised, `used`
 * of its blocks being out (used + its same-thread and collected frees). */
pm_inline uint64_t pm_page_allocs(const pm_page *pg, uint32_t used) {
  return used + pg->local_frees + pg->remote_collected;
}
/* Blocks on pg's remote list now: the head word's count, or, past
 * PM_REMOTE_MAX, a bounded walk that stops at the first link leaving the
 * page (a racing collection cannot send it astray). */
uint32_t pm_page_count_remote(pm_page *pg);
/* A remote free reached a full page that has no owner: whoever clears its
 * full flag first puts it on the abandoned stack, where adopters find it. */
void pm_page_claim_orphan(pm_page *pg);

/* ---- giving back the empty pieces of a pinned page ----
 *
 * A page held by a few live blocks cannot be reused or purged whole, but
 * the OS pages inside it that hold no live block can go back to the OS.
 * The page is cut into pieces (the OS page size, or page/64 if larger, so a
 * 64-bit mask covers them); a piece is returned when every block touching it
 * is free. Its free blocks are first taken off the free list: while the
 * piece is returned they are free and on no list (their memory reads as
 * zeros, so the double-free tag cannot vouch for them: pm_page_check and the
 * owner's free path ask pm_page_in_returned). When the page runs out of
 * other free blocks, pm_page_reclaim puts them all back on its free list,
 * as carving does with the untouched tail. Owner only. */

/* The page's returned pieces (a mask). */
pm_inline uint64_t pm_page_returned(const pm_page *pg) {
  return atomic_load_explicit(&((pm_page *)pg)->returned, memory_order_relaxed);
}
/* Bytes per piece. */
size_t pm_page_piece(void);
/* Returns the pieces of pg whose blocks are all free (collecting remote
 * frees first); the bytes given back. */
size_t pm_page_trim(pm_page *pg);
/* Puts the blocks of every returned piece back on the free list; false if
 * there were none. */
bool pm_page_reclaim(pm_page *pg);
/* true if the block at page offset off touches a returned piece */
bool pm_page_in_returned(const pm_page *pg, uintptr_t off);

/* Sets pg's divisibility constants for blocks of bsize = odd << rot bytes:
 * inv is odd's inverse mod 2^64 (Newton's iteration: odd * odd == 1 mod 8,
 * and each step doubles the bits that are right). */
pm_inline void pm_page_set_divisor(pm_page *pg, size_t bsize) {
  unsigned rot = (unsigned)__builtin_ctzl(bsize);
  uint64_t odd = bsize >> rot, inv = odd;
  for (int i = 0; i < 5; i++)
    inv *= 2 - odd * inv;
  pg->inv = inv;
  pg->rot = (uint8_t)rot;
}

/* true if off (bytes from the page start) is the start of a block. One
 * multiply and one rotate (Granlund and Montgomery's divisibility test): if
 * bsize divides off, off * inv rotated right by rot is the block index; if
 * not, either a low bit of off below rot is set and the rotate puts it in
 * the top rot bits, or odd does not divide off >> rot and the product is
 * not below 2^(64 - rot) / odd. Either way the result is far above the
 * capacity, so one compare checks the block start and that the block is
 * inside the page (a multiply by ceil(2^40 / bsize) and a multiply back took
 * four more instructions and a second compare). */
pm_inline bool pm_page_is_block_start(const pm_page *pg, uintptr_t off) {
  uint64_t m = (uint64_t)off * pg->inv;
  unsigned r = pg->rot;
  uint64_t idx = (m >> r) | (m << (-r & 63));
  return idx < pg->capacity;
}

/* How pm_page_check decides that a block is already free. */
enum {
  PM_FREED_TAG,  /* its tag word says so (a remote free: cheap, the tag is
                    a random 64-bit value) */
  PM_FREED_LIST, /* it is on the page's local or remote free list (the tag
                    said so, but the tag word may be user data) */
  PM_FREED_BIT,  /* its bit in the POOLMALLOC_CHECK=full bitmap is clear
                    (the bit is cleared, atomically, when `clear_bit`) */
};
/* Every check on a pointer p into pool page pg, made by the call `call`
 * ("free()", "realloc()", ...): the page is in use, p starts a block, and
 * the block is not free (by `freed`). A failed check ends the process with
 * one line naming the call, the fault and the address. */
void pm_page_check(const char *call, pm_page *pg, const void *p, int freed,
                   bool clear_bit);

/* POOLMALLOC_CHECK=full: a block just handed out. Its bit must be clear,
 * and the free list it came from must still point into its page (a write
 * into a freed block, decoded, lands anywhere). */
void pm_page_mark_live(pm_page *pg, const void *p);

#endif
