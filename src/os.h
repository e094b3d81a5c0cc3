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
/* Grows the mapped block [p, p+old) to `size` bytes, moving it if it must
 * (the pages it had keep their contents, the new ones read as zero); the
 * block's new address, or NULL (the old mapping stays) on failure. */
void *pm_os_remap(void *p, size_t old, size_t size);
/* Make [p, p+size) of a reservation read/write. false on failure. */
bool pm_os_commit(void *p, size_t size);
/* Give the pages of [p, p+size) back to the OS; the range stays mapped and
 * reads as zeros afterwards. */
void pm_os_purge(void *p, size_t size);
/* Back the pages holding [p, p+size) with memory now, as writes
 * would (MADV_POPULATE_WRITE, Linux 5.14): one system call instead of a
 * page fault per page. false if the kernel cannot (it is then not asked
 * again); the range is unchanged either way and faults in as usual. */
bool pm_os_populate(void *p, size_t size);
/* write(2) the whole buffer, retrying on EINTR and short writes. false if
 * the descriptor is closed or broken. */
bool pm_os_write(int fd, const char *buf, size_t len);
/* true if some environment variable's name starts with prefix */
bool pm_os_env_has_prefix(const char *prefix);
/* getenv without allocation, safe before libc has finished starting. */
const char *pm_os_getenv(const char *name);
/* milliseconds of CLOCK_MONOTONIC_COARSE (vDSO, no syscall). */
uint64_t pm_os_now_ms(void);
/* nanoseconds of CLOCK_MONOTONIC. */
uint64_t pm_os_now_ns(void);
/* gives the CPU to another thread (sched_yield) */
void pm_os_yield(void);
/* 64 random bits from the kernel's AT_RANDOM block mixed with addresses. */
uint64_t pm_os_random(void);
/* true if the process runs with AT_SECURE (setuid and friends). */
bool pm_os_secure(void);
/* The resident-set figures of /proc/self/status in bytes (0 if unknown). */
void pm_os_rss(size_t *current, size_t *peak);
/* OS page size. */
size_t pm_os_page_size(void);

/* Records the start time once (the constructor when a POOLMALLOC_ variable
 * is set, else the first allocation: start.c); nanoseconds since
 * then (0 if never recorded). */
void pm_os_mark_start(void);
uint64_t pm_os_uptime_ns(void);

/* Files and descriptors for reports. pm_os_open_append/trunc return a
 * descriptor (close-on-exec) or -1 with *err set to errno's value. */
int pm_os_open_write(const char *path, bool truncate, int *err);
void pm_os_close(int fd);
/* A private copy of fd: close-on-exec, at a high number (near the top of
 * RLIMIT_NOFILE, at most 4032), out of the way of the numbers programs
 * redirect onto; -1 if fd is not open. */
int pm_os_dup_private(int fd);
/* Moves *fd to such a private number (closing the old one); unchanged if
 * it cannot. */
void pm_os_move_private(int *fd);
/* Reads up to cap - 1 bytes of a file into buf, NUL-terminated; the
 * length read (0 on failure). */
size_t pm_os_read_file(const char *path, char *buf, size_t cap);
/* A file opened read-only (close-on-exec), or -1; errno is kept. */
int pm_os_open_read(const char *path);
/* Reads n bytes at offset off; the bytes read (fewer at the end of the
 * file or on an error). */
size_t pm_os_pread(int fd, void *buf, size_t n, uint64_t off);
/* A short reason for an errno value from open(2) ("no such file or
 * directory"); never allocates, unlike strerror. */
const char *pm_os_reason(int err);
/* readlink(2); the length, or -1 */
long pm_os_readlink(const char *path, char *buf, size_t cap);
int pm_os_pid(void);
int pm_os_ppid(void);
bool pm_os_isatty(int fd);
/* Installs fn as the handler of sig (SA_RESTART); false on failure. */
bool pm_os_on_signal(int sig, void (*fn)(int));
/* The handler currently installed for sig (SIG_DFL is NULL). */
void *pm_os_signal_handler(int sig);

#endif
