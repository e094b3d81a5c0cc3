/* fallback.h - the embedded jemalloc, reached only through these calls.
 *
 * jemalloc is linked from Debian's libjemalloc_pic.a with every public
 * name renamed to pm_je_* and hidden (cmake/EmbedJemalloc.cmake). These
 * wrappers fix the parts of its contract that differ from malloc's: size 0
 * is undefined for mallocx (ask for 16), blocks of 8 bytes or less are only
 * 8-aligned (ask for 16), and it sets no errno (we set ENOMEM). jemalloc
 * starts on the first request that reaches it, never at load time. */
#ifndef PM_FALLBACK_H
#define PM_FALLBACK_H

#include "common.h"

/* Sets jemalloc's defaults before it starts (process start-up). */
void pm_fallback_configure(bool pools_on);
/* fork handlers, registered at load time (init.c) */
void pm_fallback_prefork(void);
void pm_fallback_postfork_parent(void);
void pm_fallback_postfork_child(void);
/* How a block must be zeroed (calloc): not at all; zeroed pages (jemalloc
 * purges a reused extent, so a huge sparse calloc stays lazily zero); or a
 * memset of what may be dirty (warm memory a loop of callocs reuses). A
 * fresh mapping is zero either way. */
enum { PM_ZERO_NONE, PM_ZERO_PAGES, PM_ZERO_MEMSET };
/* NULL with errno ENOMEM on failure. align <= 16 means the default; zero is
 * a PM_ZERO_* value. */
void *pm_fallback_alloc(size_t size, size_t align, int zero);
void *pm_fallback_realloc(void *p, size_t size);
void pm_fallback_free(void *p); /* keeps errno */
size_t pm_fallback_usable(const void *p);
/* true if a realloc of a block of `usable` bytes (pm_fallback_usable) to
 * `size` bytes keeps the block as it is: jemalloc's size class of `size` is
 * `usable` itself, so rallocx would change nothing (a direct block of that
 * length keeps it too). The caller returns the block without a call. */
pm_inline bool pm_fallback_same_size(size_t usable, size_t size) {
  if (size > usable || usable < 16) return false;
  /* jemalloc's classes: 8, 16 to 128 by 16, then four per doubling */
  size_t step = usable <= 128 ? 16 : (size_t)1 << (61 - __builtin_clzl(usable - 1));
  return size > usable - step;
}
/* true if p may be a block of this tier: jemalloc has started, or p is one
 * of the first large blocks, mapped before it started (fallback.c) */
bool pm_fallback_owns(const void *p);
/* true once jemalloc has started: until then no valid pointer is jemalloc's,
 * and reports must not start it */
bool pm_fallback_started(void);
/* jemalloc's own figures (0 if it never started) */
void pm_fallback_figures(uint64_t *allocated, uint64_t *resident);
/* At most once per POOLMALLOC_DECAY_MS: gives jemalloc's free pages back
 * if large-block activity no longer needs them (see fallback.c). */
void pm_fallback_maybe_purge(void);
/* bytes returned that way so far */
uint64_t pm_fallback_purged(void);
/* purge jemalloc's unused dirty pages and unmap a kept direct block */
void pm_fallback_trim(void);

#endif
