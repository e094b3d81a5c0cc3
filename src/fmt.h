/* fmt.h - formatting into a caller-owned buffer, without malloc or stdio.
 *
 * Used by every path that must not allocate: option warnings, error
 * messages, the verbose dump and the statistics report. A pm_buf never
 * overflows: text past its capacity is dropped and `truncated` is set, or,
 * for a buffer made with pm_buf_make_fd, written to its file descriptor
 * whenever it fills (a report of any length through a small buffer). */
#ifndef PM_FMT_H
#define PM_FMT_H

#include "common.h"

typedef struct pm_buf {
  char *data;
  size_t cap, len;
  size_t want; /* length the text would have without the cap */
  bool truncated;
  bool write_failed; /* a flush to fd failed (the rest is dropped) */
  char last;         /* the last character appended (survives a flush) */
  int fd;            /* where a full buffer is flushed; -1: truncate */
} pm_buf;

pm_inline pm_buf pm_buf_make(char *data, size_t cap) {
  pm_buf b = {data, cap, 0, 0, false, false, 0, -1};
  return b;
}
/* a buffer flushed to fd whenever it fills; pm_buf_flush writes the rest */
pm_inline pm_buf pm_buf_make_fd(char *data, size_t cap, int fd) {
  pm_buf b = {data, cap, 0, 0, false, false, 0, fd};
  return b;
}
/* writes what the buffer holds to its fd and empties it; false if a write
 * failed now or before */
bool pm_buf_flush(pm_buf *b);
void pm_buf_str(pm_buf *b, const char *s);
void pm_buf_mem(pm_buf *b, const char *s, size_t n);
void pm_buf_char(pm_buf *b, char c);
void pm_buf_u64(pm_buf *b, uint64_t v);
void pm_buf_i64(pm_buf *b, int64_t v);
void pm_buf_hex(pm_buf *b, uint64_t v); /* 0x-prefixed */
/* v right-aligned in a field of `width` characters */
void pm_buf_u64w(pm_buf *b, uint64_t v, int width);
void pm_buf_pad(pm_buf *b, const char *s, int width); /* left-aligned */
/* bytes as "1.5 MiB" (or "512 B") */
void pm_buf_bytes(pm_buf *b, uint64_t v);
/* v/total as "12.3%" */
void pm_buf_pct(pm_buf *b, uint64_t v, uint64_t total);
/* a JSON string literal, escaped; bytes that are not UTF-8 become U+FFFD */
void pm_buf_json_str(pm_buf *b, const char *s);
/* text for one line of a report: control characters escaped (\n, \x1b) */
void pm_buf_text(pm_buf *b, const char *s);
/* bytes as "1.5 MiB (1572864)": the exact figure in parentheses from 1 KiB */
void pm_buf_bytes_exact(pm_buf *b, uint64_t v);
/* one line of a report: "  label<padded to 60>value\n", a count or bytes */
void pm_buf_figure(pm_buf *b, const char *label, bool count, uint64_t v);
/* "key":v, with a comma before it unless it opens an object */
void pm_buf_json_field(pm_buf *b, const char *key, uint64_t v);
/* NUL-terminates (within capacity) and returns data */
const char *pm_buf_cstr(pm_buf *b);

/* Writes "poolmalloc: <msg>\n" to stderr in one write(2). */
void pm_message(const char *msg);
/* Heap corruption seen by the call `call` ("free()"): one line
 * "poolmalloc: free(): <what> (address 0x...); aborting", then abort(). */
_Noreturn void pm_heap_error(const char *call, const char *what, const void *p);

#endif
