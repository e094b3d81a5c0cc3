/* glibc_compat.c - mallinfo, mallinfo2, malloc_trim, malloc_stats,
 * malloc_info, mallopt: glibc's extensions with glibc's return conventions,
 * describing poolmalloc's heap (pools plus the embedded jemalloc). */
#define _GNU_SOURCE
#include "glibc_compat.h"
#include "arena.h"
#include "fallback.h"
#include "fmt.h"
#include "heap.h"
#include "os.h"
#include "stats.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

/* The glibc model: "arena" is the heap proper (pool pages in use), split
 * into uordblks (live blocks) and fordblks (free blocks), so arena =
 * uordblks + fordblks as in glibc; blocks glibc would mmap are jemalloc's
 * here and go in hblkhd, as glibc counts its mmapped chunks. */
void pm_mallinfo2(struct mallinfo2 *mi) {
  pm_snapshot s;
  pm_stats_snapshot(&s);
  uint64_t pool_bytes = s.fig.pages_in_use_bytes;
  uint64_t pool_used =
      s.fig.live_block_bytes < pool_bytes ? s.fig.live_block_bytes : pool_bytes;
  uint64_t large = PM_JEMALLOC_REQUESTS(s.heap);
  struct mallinfo2 m = {0};
  m.arena = pool_bytes;
  m.ordblks = s.fig.pages_in_use;
  m.hblks = large > s.heap.large_frees ? large - s.heap.large_frees : 0;
  m.hblkhd = s.fig.jemalloc_allocated;
  m.uordblks = pool_used;
  m.fordblks = pool_bytes - pool_used;
  uint64_t cached = s.pages_free_cached * s.fig.page_size;
  m.keepcost = cached < m.fordblks ? cached : m.fordblks;
  *mi = m;
}

static int clamp_int(size_t v) {
  return v > 0x7fffffff ? 0x7fffffff : (int)v;
}

void pm_mallinfo(struct mallinfo *out) {
  struct mallinfo2 m;
  pm_mallinfo2(&m);
  out->arena = clamp_int(m.arena);
  out->ordblks = clamp_int(m.ordblks);
  out->smblks = clamp_int(m.smblks);
  out->hblks = clamp_int(m.hblks);
  out->hblkhd = clamp_int(m.hblkhd);
  out->usmblks = clamp_int(m.usmblks);
  out->fsmblks = clamp_int(m.fsmblks);
  out->uordblks = clamp_int(m.uordblks);
  out->fordblks = clamp_int(m.fordblks);
  out->keepcost = clamp_int(m.keepcost);
}

int pm_malloc_trim(size_t pad) {
  (void)pad;
  pm_heap *h = pm_tls_heap;
  if (h->kind == PM_HEAP_REAL) pm_heap_flush_cache(h);
  size_t purged = pm_g.size ? pm_pages_purge(true) : 0;
  pm_fallback_trim();
  return purged > 0 ? 1 : 0;
}

/* glibc prints per-arena figures to stderr; we print the same shape. Not a
 * cancellation point, as glibc's is not: write(2) is one, and a thread with
 * a pending cancellation would otherwise die in it with nothing written. */
void pm_malloc_stats(void) {
  int cancel_state;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  struct mallinfo2 m;
  pm_mallinfo2(&m);
  char text[512];
  pm_buf b = pm_buf_make(text, sizeof text);
  pm_buf_str(&b, "Arena 0:\nsystem bytes     = ");
  pm_buf_u64w(&b, m.arena, 10);
  pm_buf_str(&b, "\nin use bytes     = ");
  pm_buf_u64w(&b, m.uordblks, 10);
  pm_buf_str(&b, "\nTotal (incl. mmap):\nsystem bytes     = ");
  pm_buf_u64w(&b, m.arena + m.hblkhd, 10);
  pm_buf_str(&b, "\nin use bytes     = ");
  pm_buf_u64w(&b, m.uordblks + m.hblkhd, 10);
  pm_buf_str(&b, "\nmax mmap regions = ");
  pm_buf_u64w(&b, 0, 10);
  pm_buf_str(&b, "\nmax mmap bytes   = ");
  pm_buf_u64w(&b, 0, 10);
  pm_buf_char(&b, '\n');
  pm_os_write(2, b.data, b.len);
  pthread_setcancelstate(cancel_state, NULL);
}

int pm_malloc_info(int options, FILE *fp) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  struct mallinfo2 m;
  pm_mallinfo2(&m);
  char text[512];
  pm_buf b = pm_buf_make(text, sizeof text);
  pm_buf_str(&b, "<malloc version=\"1\">\n<heap nr=\"0\">\n<total type=\"fast\" "
                 "count=\"0\" size=\"0\"/>\n"
                 "<system type=\"current\" size=\"");
  pm_buf_u64(&b, m.arena + m.hblkhd);
  pm_buf_str(&b, "\"/>\n</heap>\n<total type=\"mmap\" count=\"0\" size=\"");
  pm_buf_u64(&b, m.hblkhd);
  pm_buf_str(&b, "\"/>\n<system type=\"current\" size=\"");
  pm_buf_u64(&b, m.arena + m.hblkhd);
  pm_buf_str(&b, "\"/>\n<aspace type=\"total\" size=\"");
  pm_buf_u64(&b, m.arena + m.hblkhd);
  pm_buf_str(&b, "\"/>\n</malloc>\n");
  fwrite(b.data, 1, b.len, fp);
  return 0;
}

/* glibc returns 1 on success; poolmalloc has no use for glibc's knobs and
 * accepts them all, as glibc accepts them when they change nothing */
int pm_mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 1;
}
