/* poolmalloc.h - the public API of libpoolmalloc.so.
 *
 * Programs usually get poolmalloc with LD_PRELOAD and never include this.
 * Programs that link it, or find these functions with dlsym(RTLD_DEFAULT,
 * "poolmalloc_version"), can ask for the version and for a report of the
 * current state while they run. None of these functions allocate. */
#ifndef POOLMALLOC_H
#define POOLMALLOC_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>

#define POOLMALLOC_FORMAT_TEXT 1
#define POOLMALLOC_FORMAT_JSON 2

/* "MAJOR.MINOR.PATCH" */
const char *poolmalloc_version(void);

/* Writes a statistics report (POOLMALLOC_FORMAT_TEXT or _JSON) to the file
 * descriptor fd. Returns 0, or -1 if the descriptor could not be written. */
int poolmalloc_report_fd(int fd, int format);

/* Formats a report into buf (always NUL-terminated when size > 0). Returns
 * the report's full length; a return value >= size means it was cut. */
size_t poolmalloc_report_buf(char *buf, size_t size, int format);

/* Hands a whole report to write(arg, text, length) in one call, the way
 * jemalloc's malloc_stats_print and mimalloc's mi_stats_print_out do.
 * Returns 0, or -1 if no buffer could be mapped. text is not NUL-terminated
 * and is valid only during the call. */
typedef void (*poolmalloc_write_fn)(void *arg, const char *text, size_t length);
int poolmalloc_report_cb(poolmalloc_write_fn write, void *arg, int format);

/* The main totals, as numbers. Pass sizeof(poolmalloc_totals): a library
 * built with a newer, longer struct fills only what the caller knows of,
 * and `version` says which fields are valid. */
#define POOLMALLOC_TOTALS_VERSION 1
typedef struct poolmalloc_totals {
  unsigned version;                        /* POOLMALLOC_TOTALS_VERSION of the library */
  unsigned size;                           /* bytes of this struct the library filled */
  unsigned long long allocations;          /* every allocation, pooled or not */
  unsigned long long pooled_allocations;   /* served from the pools */
  unsigned long long jemalloc_allocations; /* served by the embedded jemalloc */
  unsigned long long frees;                /* frees of pool blocks */
  unsigned long long live_pool_bytes;      /* bytes of pool blocks now allocated */
  unsigned long long pool_pages;           /* pool pages in use */
  unsigned long long pool_pages_peak;      /* most pool pages in use at once */
  unsigned long long page_size;            /* POOLMALLOC_POOL_SIZE */
  unsigned long long remote_frees;         /* frees from a thread not owning the page */
  unsigned long long jemalloc_bytes;       /* bytes jemalloc has allocated now */
  unsigned long long threads_live, threads_peak;
  unsigned long long rss, rss_peak; /* bytes, from /proc/self/status */
} poolmalloc_totals;

/* Fills *out (size = sizeof *out). Returns 0, or -1 if size is too small
 * for the first two fields. */
int poolmalloc_get_totals(poolmalloc_totals *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif
