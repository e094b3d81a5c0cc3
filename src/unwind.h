/* unwind.h - poolmalloc's own stack walk, from the DWARF call-frame tables
 * (.eh_frame_hdr) the compilers emit for every function on x86-64.
 *
 * It steps up from the frame of its caller, through poolmalloc's own frames,
 * to the frame whose return address is a given call site, and reads the
 * return address of that frame's function: the caller of an allocation
 * wrapper (lifetime routing's per-caller sites). It needs no library
 * loaded, allocates nothing, reads only the stack slots and unwind tables
 * the tables name, and takes no lock of poolmalloc's: only the loader's
 * list lock (dl_iterate_phdr, as every DWARF unwinder does), once per walk,
 * to find and keep mapped the unwind table of the site's module.
 *
 * A frame it cannot step (no table, a rule written as a DWARF expression,
 * a signal frame, another architecture) ends the walk: the answer is then 0,
 * as when the site is not on the stack within `max_frames` frames. */
#ifndef PM_UNWIND_H
#define PM_UNWIND_H

#include "common.h"

/* The return address of the function that holds `site`, if `site` is the
 * return address of one of the `max_frames` frames above the caller of this
 * function; else 0. */
uintptr_t pm_unwind_caller(uintptr_t site, unsigned max_frames);

/* The stack above poolmalloc's frames: frames[0] = `site` (found within
 * `max_own` frames above the caller of this function), then the return
 * addresses above it, at most `max` in all; 0 when `site` was not found.
 * The walk ends at the first frame it cannot step (a signal frame, code
 * with no unwind table such as a JIT's, the thread's first frame). */
uint32_t pm_unwind_stack(uintptr_t site, uintptr_t *frames, uint32_t max,
                         unsigned max_own);

/* The fork handlers' part (init.c): no walk is inside the loader's list
 * lock when fork() copies the process; walks started meanwhile are skipped
 * (a stack of the site alone; pm_unwind_caller takes no lock with glibc
 * 2.35 and later, a caller of 0 before). */
void pm_unwind_prefork(void);
/* The same gate around another unwinder's walk (libgcc's, libunwind's):
 * false while a fork is in progress (no walk then); else walk, then leave. */
bool pm_unwind_enter(void);
void pm_unwind_leave(void);
void pm_unwind_postfork(bool child);

#endif
