/* arena.h - where pool pages come from and where free ones go.
 *
 * At the first allocation poolmalloc reserves one large range of address
 * space (POOLMALLOC_REGION_SIZE, PROT_NONE) and a table of page
 * descriptors outside it. The region is cut into arenas of pm_arena_size()
 * bytes that threads take whole (one atomic add) and commit (one
 * mprotect); a thread carves pool pages from its arena with a bump pointer
 * (pm_arena_carve_page).
 *
 * Pages nobody uses go on a global lock-free stack (istack.h); after
 * POOLMALLOC_DECAY_MS their memory is returned with madvise(MADV_DONTNEED).
 * Pages left by exiting threads with live blocks go on the abandoned stack
 * for adoption. */
#ifndef PM_ARENA_H
#define PM_ARENA_H

#include "types.h"

#define PM_ARENA_MIN (4u << 20)

/* Reserves the region and the descriptor table; false if the OS refuses.
 * Uses pm_opt. */
bool pm_arena_init(void);
size_t pm_arena_size(void);

/* The next page of the bump range [*cur, *end), refilled with a fresh
 * arena when it runs out; NULL when the region is exhausted. */
pm_page *pm_arena_carve_page(char **cur, char **end);

/* Global stacks of pages (lock-free, ABA-safe by tag). */
void pm_pages_push_free(pm_page *pg); /* a page nobody uses */
/* the same for an auxiliary heap's (watched) page: mostly not resident */
void pm_pages_push_free_watched(pm_page *pg);
/* a free page: an ordinary one first, a watched one when none is left */
pm_page *pm_pages_pop_free(void);
/* for an auxiliary heap: a watched one first, else an ordinary one, its
 * memory given back to the OS first if it was touched since its last purge
 * (an auxiliary heap's pages hold a few samples each) */
pm_page *pm_pages_pop_free_clean(void);
void pm_pages_push_abandoned(pm_page *pg); /* a page with live blocks, no owner */
pm_page *pm_pages_pop_abandoned(void);
/* Returns the memory of free pages older than the decay delay (or all of
 * them when `all`); returns the bytes purged. Never blocks. */
size_t pm_pages_purge(bool all);
/* Runs pm_pages_purge when the decay clock says it is due. */
void pm_pages_maybe_purge(void);

/* Figures for reports (racy reads, no locks). */
uint64_t pm_arena_committed(void);
uint64_t pm_pages_purged_total(void);

#endif
