/* os.h - every call poolmalloc makes into the operating system.
 *
 * None of these functions allocate memory with malloc, and none of them
 * change errno as seen by the caller (each saves and restores it), so they
 * are safe on the init, report and error paths. */
#ifndef PM_OS_H
#define PM_OS_H

#include "common.h"

/* Reserve `size` bytes of address space aligned to `align` (a power of two),
 * inaccessible (PROT_NONE) and not counted against overcommit. NULL on
 * failure. */
void *pm_os_reserve(size_t size, size_t align);
/* Map `size` bytes read/write, zero-filled, lazily backed. NULL on failure. */
void *pm_os_map(size_t size);
/* Zeroed, committed memory for a user block (accounted like glibc's mmapped
 * chunks: no MAP_NORESERVE); NULL on failure. */
void *pm_os_map_block(size_t size);
void pm_os_unmap(void *p, size_t size);
/* Make [p, p+size) of a reservation read/write. false on failure. */
bool pm_os_commit(void *p, size_t size);
/* Give the pages of [p, p+size) back to the OS; the range stays mapped and
 * reads as zeros afterwards. */
void pm_os_purge(void *p, size_t size);
/* write(2) the whole buffer, retrying on EINTR and short writes. false if
 * the descriptor is closed or broken. */
bool pm_os_write(int fd, const char *buf, size_t len);
/* getenv without allocation, safe before libc has finished starting. */
const char *pm_os_getenv(const char *name);
/* milliseconds of CLOCK_MONOTONIC_COARSE (vDSO, no syscall). */
uint64_t pm_os_now_ms(void);
/* nanoseconds of CLOCK_MONOTONIC. */
uint64_t pm_os_now_ns(void);
/* 64 random bits from the kernel's AT_RANDOM block mixed with addresses. */
uint64_t pm_os_random(void);
/* true if the process runs with AT_SECURE (setuid and friends). */
bool pm_os_secure(void);
/* The resident-set figures of /proc/self/status in bytes (0 if unknown). */
void pm_os_rss(size_t *current, size_t *peak);
/* OS page size. */
size_t pm_os_page_size(void);

#endif
