/* fmt.c - number and text formatting into fixed buffers (see fmt.h). */
#include "fmt.h"
#include "os.h"

#include <stdlib.h>
#include <string.h>

void pm_buf_mem(pm_buf *b, const char *s, size_t n) {
  b->want += n;
  if (n) b->last = s[n - 1];
  size_t room = b->cap > b->len ? b->cap - b->len : 0;
  while (n > room && b->fd >= 0 && b->cap > 0) {
    memcpy(b->data + b->len, s, room);
    b->len += room;
    s += room;
    n -= room;
    pm_buf_flush(b);
    room = b->cap;
  }
  if (n > room) {
    n = room;
    b->truncated = true;
  }
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
}

bool pm_buf_flush(pm_buf *b) {
  if (b->fd >= 0 && b->len > 0 && !b->write_failed)
    b->write_failed = !pm_os_write(b->fd, b->data, b->len);
  if (b->fd >= 0) b->len = 0;
  return !b->write_failed;
}

void pm_buf_str(pm_buf *b, const char *s) {
  pm_buf_mem(b, s, strlen(s));
}

void pm_buf_char(pm_buf *b, char c) {
  pm_buf_mem(b, &c, 1);
}

static int u64_digits(char *tmp, uint64_t v) {
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return n;
}

void pm_buf_u64w(pm_buf *b, uint64_t v, int width) {
  char tmp[24];
  int n = u64_digits(tmp, v);
  for (int i = n; i < width; i++)
    pm_buf_char(b, ' ');
  while (n)
    pm_buf_char(b, tmp[--n]);
}

void pm_buf_u64(pm_buf *b, uint64_t v) {
  pm_buf_u64w(b, v, 0);
}

void pm_buf_i64(pm_buf *b, int64_t v) {
  if (v < 0) {
    pm_buf_char(b, '-');
    pm_buf_u64(b, (uint64_t)0 - (uint64_t)v);
  } else {
    pm_buf_u64(b, (uint64_t)v);
  }
}

void pm_buf_hex(pm_buf *b, uint64_t v) {
  char tmp[18]; /* "0x" and 16 digits, written from the end */
  int at = (int)sizeof tmp;
  do {
    tmp[--at] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  tmp[--at] = 'x';
  tmp[--at] = '0';
  pm_buf_mem(b, tmp + at, sizeof tmp - (size_t)at);
}

void pm_buf_pad(pm_buf *b, const char *s, int width) {
  int n = (int)strlen(s);
  pm_buf_str(b, s);
  for (int i = n; i < width; i++)
    pm_buf_char(b, ' ');
}

/* one decimal: num/den rounded to tenths, exact for any 64-bit inputs */
static void buf_fixed1(pm_buf *b, unsigned __int128 num, uint64_t den) {
  uint64_t tenths = (uint64_t)((num * 10 + den / 2) / den);
  pm_buf_u64(b, tenths / 10);
  pm_buf_char(b, '.');
  pm_buf_char(b, (char)('0' + tenths % 10));
}

void pm_buf_bytes(pm_buf *b, uint64_t v) {
  static const char units[][4] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (v < 1024) {
    pm_buf_u64(b, v);
    pm_buf_str(b, " B");
    return;
  }
  int u = 0;
  uint64_t unit = 1;
  while (u < 4 && v >= unit * 1024) {
    unit *= 1024;
    u++;
  }
  if (v / unit >= 1000000)
    pm_buf_u64(b, v / unit); /* no decimals for huge values */
  else
    buf_fixed1(b, v, unit);
  pm_buf_char(b, ' ');
  pm_buf_str(b, units[u]);
}

void pm_buf_pct(pm_buf *b, uint64_t v, uint64_t total) {
  if (total == 0) {
    pm_buf_str(b, "-");
    return;
  }
  buf_fixed1(b, (unsigned __int128)v * 100, total);
  pm_buf_char(b, '%');
}

/* the length of the valid UTF-8 sequence at s, 0 if it is not one */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  size_t n = c < 0x80                 ? 1
             : c >= 0xc2 && c <= 0xdf ? 2
             : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4
                                      : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))) return 0;
  if (n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))) return 0;
  return n;
}

void pm_buf_json_str(pm_buf *b, const char *s) {
  pm_buf_char(b, '"');
  while (s && *s) {
    unsigned char c = (unsigned char)*s;
    size_t n = utf8_len((const unsigned char *)s);
    if (c == '"' || c == '\\') {
      pm_buf_char(b, '\\');
      pm_buf_char(b, (char)c);
    } else if (c < 0x20) {
      pm_buf_str(b, "\\u00");
      pm_buf_char(b, "0123456789abcdef"[c >> 4]);
      pm_buf_char(b, "0123456789abcdef"[c & 15]);
    } else if (n == 0) {
      pm_buf_str(b, "\\ufffd"); /* a byte that is not UTF-8 */
      n = 1;
    } else {
      pm_buf_mem(b, s, n);
    }
    s += n ? n : 1;
  }
  pm_buf_char(b, '"');
}

void pm_buf_text(pm_buf *b, const char *s) {
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\n') {
      pm_buf_str(b, "\\n");
    } else if (c < 0x20 || c == 0x7f) {
      pm_buf_str(b, "\\x");
      pm_buf_char(b, "0123456789abcdef"[c >> 4]);
      pm_buf_char(b, "0123456789abcdef"[c & 15]);
    } else {
      pm_buf_char(b, (char)c);
    }
  }
}

const char *pm_buf_cstr(pm_buf *b) {
  if (b->cap == 0) return "";
  if (b->len >= b->cap) b->len = b->cap - 1;
  b->data[b->len] = 0;
  return b->data;
}

void pm_buf_bytes_exact(pm_buf *b, uint64_t v) {
  pm_buf_bytes(b, v);
  if (v >= 1024) {
    pm_buf_str(b, " (");
    pm_buf_u64(b, v);
    pm_buf_str(b, ")");
  }
}

void pm_buf_figure(pm_buf *b, const char *label, bool count, uint64_t v) {
  pm_buf_str(b, "  ");
  pm_buf_pad(b, label, 60);
  if (count)
    pm_buf_u64(b, v);
  else
    pm_buf_bytes_exact(b, v);
  pm_buf_char(b, '\n');
}

void pm_buf_json_field(pm_buf *b, const char *key, uint64_t v) {
  if (b->want > 0 && b->last != '{') pm_buf_char(b, ',');
  pm_buf_json_str(b, key);
  pm_buf_char(b, ':');
  pm_buf_u64(b, v);
}

void pm_message(const char *msg) {
  char line[512];
  pm_buf b = pm_buf_make(line, sizeof line - 1);
  pm_buf_str(&b, "poolmalloc: ");
  pm_buf_str(&b, msg);
  if (b.len > sizeof line - 2) b.len = sizeof line - 2;
  line[b.len++] = '\n';
  pm_os_write(2, line, b.len);
}

_Noreturn void pm_heap_error(const char *call, const char *what, const void *p) {
  char line[256];
  pm_buf b = pm_buf_make(line, sizeof line);
  pm_buf_str(&b, call);
  pm_buf_str(&b, ": ");
  pm_buf_str(&b, what);
  pm_buf_str(&b, " (address ");
  pm_buf_hex(&b, (uintptr_t)p);
  pm_buf_str(&b, "); aborting");
  pm_message(pm_buf_cstr(&b));
  abort();
}
