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

#ifdef __cplusplus
}
#endif

#endif
