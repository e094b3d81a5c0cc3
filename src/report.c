/* report.c - the text and JSON statistics reports (see report.h).
 *
 * Both formats come from one snapshot and the field lists of stats.h and
 * options.h. The JSON schema is versioned ("schema": 1) and documented in
 * docs/report.md. */
#define _GNU_SOURCE
#include "report.h"
#include "fallback.h"
#include "fmt.h"
#include "init.h"
#include "lifetime.h"
#include "options.h"
#include "os.h"
#include "sizeclass.h"
#include "stats.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PM_REPORT_SCHEMA 1

/* why the report being formatted is written: "exit", "signal" or "api" */
static const char *report_trigger = "api";
bool pm_forked_child;
#define PM_REPORT_CAP (256 * 1024)

/* the command line from /proc/self/cmdline, arguments joined by spaces */
static void cmdline(char *out, size_t cap) {
  int saved = errno;
  out[0] = 0;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n > 0) {
      for (ssize_t i = 0; i < n; i++)
        if (out[i] == 0) out[i] = ' ';
      while (n > 0 && out[n - 1] == ' ')
        n--;
      out[n] = 0;
    }
  }
  errno = saved;
}

typedef struct totals {
  uint64_t allocs, frees, req, fallbacks;
} totals;

static totals sum(const pm_snapshot *s) {
  totals t = {0, 0, 0, 0};
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    t.allocs += s->cls[c].allocs;
    t.frees += s->cls[c].frees;
    t.req += s->cls[c].req_bytes;
  }
  t.fallbacks = PM_JEMALLOC_REQUESTS(s->heap);
  return t;
}

/* the largest size counted in too_large_log2[i] */
static uint64_t bucket_max(unsigned i) {
  return i >= 63 ? UINT64_MAX : (uint64_t)1 << i;
}

static void text_bytes(pm_buf *b, uint64_t v) {
  pm_buf_bytes(b, v);
  if (v >= 1024) {
    pm_buf_str(b, " (");
    pm_buf_u64(b, v);
    pm_buf_str(b, ")");
  }
}

static void json_kv(pm_buf *b, const char *key, uint64_t v, bool comma) {
  pm_buf_json_str(b, key);
  pm_buf_char(b, ':');
  pm_buf_u64(b, v);
  if (comma) pm_buf_char(b, ',');
}

/* ---- long-lived call sites (POOLMALLOC_LIFETIME) ---- */

#define PM_REPORT_SITES 10

/* "symbol+0x1f (library)" for a code address, without allocating: dladdr
 * reads the loader's tables. A site in a library that was unloaded since
 * shows as its bare address. */
static void site_name(pm_buf *b, uintptr_t site, bool json) {
  Dl_info info;
  char text[512];
  pm_buf t = pm_buf_make(text, sizeof text);
  if (dladdr((void *)site, &info) != 0 && info.dli_fname != NULL) {
    if (info.dli_sname != NULL) {
      pm_buf_str(&t, info.dli_sname);
      pm_buf_str(&t, "+");
      pm_buf_hex(&t, site - (uintptr_t)info.dli_saddr);
    } else {
      pm_buf_hex(&t, site - (uintptr_t)info.dli_fbase);
    }
    pm_buf_str(&t, " (");
    const char *slash = strrchr(info.dli_fname, '/');
    pm_buf_str(&t, slash ? slash + 1 : info.dli_fname);
    pm_buf_str(&t, ")");
  } else {
    pm_buf_hex(&t, site);
  }
  if (json)
    pm_buf_json_str(b, pm_buf_cstr(&t));
  else
    pm_buf_str(b, pm_buf_cstr(&t));
}

static void text_sites(pm_buf *b) {
  pm_lt_site_info top[PM_REPORT_SITES];
  size_t n = pm_lt_top_sites(top, PM_REPORT_SITES);
  uint64_t samples, known, marked;
  pm_lt_totals(&samples, &known, &marked);
  if (samples == 0) return;
  pm_buf_str(b, "lifetime:  ");
  pm_buf_u64(b, samples);
  pm_buf_str(b, " samples from ");
  pm_buf_u64(b, known);
  pm_buf_str(b, " call sites, ");
  pm_buf_u64(b, marked);
  pm_buf_str(b, " marked long-lived now\n");
  for (size_t i = 0; i < n; i++) {
    pm_buf_str(b, "  ");
    pm_buf_str(b, top[i].marked ? "routed " : "seen   ");
    site_name(b, top[i].site, false);
    pm_buf_str(b, ", ");
    pm_buf_u64(b, pm_class_size((unsigned)__builtin_ctzll(top[i].classes | 1ull << 63)));
    pm_buf_str(b, top[i].classes & (top[i].classes - 1) ? " B blocks and larger: "
                                                        : " B blocks: ");
    pm_buf_u64(b, top[i].routed_blocks);
    pm_buf_str(b, " routed (");
    pm_buf_bytes(b, top[i].routed_bytes);
    pm_buf_str(b, "), samples ");
    pm_buf_u64(b, top[i].long_samples);
    pm_buf_str(b, " long / ");
    pm_buf_u64(b, top[i].short_samples);
    pm_buf_str(b, " short\n");
  }
}

static void json_sites(pm_buf *b) {
  pm_lt_site_info top[PM_REPORT_SITES];
  size_t n = pm_lt_top_sites(top, PM_REPORT_SITES);
  uint64_t samples, known, marked;
  pm_lt_totals(&samples, &known, &marked);
  pm_buf_str(b, "\"lifetime\":{");
  json_kv(b, "samples", samples, true);
  json_kv(b, "sites", known, true);
  json_kv(b, "marked", marked, true);
  pm_buf_str(b, "\"long_lived_sites\":[");
  for (size_t i = 0; i < n; i++) {
    if (i) pm_buf_char(b, ',');
    pm_buf_str(b, "{\"site\":");
    site_name(b, top[i].site, true);
    pm_buf_str(b, ",\"address\":\"");
    pm_buf_hex(b, top[i].site);
    pm_buf_str(b, "\",\"marked\":");
    pm_buf_str(b, top[i].marked ? "true," : "false,");
    pm_buf_str(b, "\"block_sizes\":[");
    bool more = false;
    for (uint64_t m = top[i].classes; m; m &= m - 1) {
      if (more) pm_buf_char(b, ',');
      more = true;
      pm_buf_u64(b, pm_class_size((unsigned)__builtin_ctzll(m)));
    }
    pm_buf_str(b, "],");
    json_kv(b, "routed_blocks", top[i].routed_blocks, true);
    json_kv(b, "routed_bytes", top[i].routed_bytes, true);
    json_kv(b, "long_samples", top[i].long_samples, true);
    json_kv(b, "short_samples", top[i].short_samples, false);
    pm_buf_char(b, '}');
  }
  pm_buf_str(b, "]},");
}

static void format_text(pm_buf *b, const pm_snapshot *s, bool color) {
  char cmd[512];
  cmdline(cmd, sizeof cmd);
  totals t = sum(s);
  uint64_t requests = t.allocs + t.fallbacks;
  pm_buf_str(b, color ? "\033[1m" : "");
  pm_buf_str(b, "==== poolmalloc " PM_VERSION " report begin: pid ");
  pm_buf_u64(b, (uint64_t)getpid());
  pm_buf_str(b, " ====");
  pm_buf_str(b, color ? "\033[0m" : "");
  pm_buf_str(b, "\nprogram:   ");
  pm_buf_str(b, cmd);
  pm_buf_str(b, "\nrun time:  ");
  pm_buf_u64(b, pm_uptime_ns() / 1000000);
  pm_buf_str(b, " ms\noptions:  ");
  for (size_t i = 0; i < pm_option_count; i++) {
    pm_buf_str(b, " ");
    pm_buf_str(b, pm_option_table[i].name);
    pm_buf_char(b, '=');
    pm_option_format(b, &pm_opt, i);
  }
  pm_buf_str(b, "\nthreads:   ");
  pm_buf_u64(b, s->threads_total);
  pm_buf_str(b, " with a heap, ");
  pm_buf_u64(b, s->threads_peak);
  pm_buf_str(b, " at once at most, ");
  pm_buf_u64(b, s->threads_live);
  pm_buf_str(b, " live now\nrequests:  ");
  pm_buf_u64(b, requests);
  pm_buf_str(b, " allocations: ");
  pm_buf_pct(b, t.allocs, requests);
  pm_buf_str(b, " pooled, ");
  pm_buf_pct(b, t.fallbacks, requests);
  pm_buf_str(b, " to jemalloc\n");
#define PM_TEXT_LINE(f, key, label)                                                      \
  if (s->heap.f) {                                                                       \
    pm_buf_str(b, "  ");                                                                 \
    pm_buf_pad(b, label, 52);                                                            \
    if (strcmp(key, "large_bytes") == 0)                                                 \
      text_bytes(b, s->heap.f);                                                          \
    else                                                                                 \
      pm_buf_u64(b, s->heap.f);                                                          \
    pm_buf_char(b, '\n');                                                                \
  }
  PM_HEAP_COUNTERS(PM_TEXT_LINE)
#undef PM_TEXT_LINE
  if (s->heap.fb_too_large) {
    pm_buf_str(b, "  too large, by size:");
    for (unsigned i = 0; i < PM_LARGE_BUCKETS; i++) {
      if (s->too_large_log2[i] == 0) continue;
      pm_buf_str(b, " <=");
      pm_buf_bytes(b, bucket_max(i));
      pm_buf_str(b, ": ");
      pm_buf_u64(b, s->too_large_log2[i]);
    }
    pm_buf_char(b, '\n');
  }
  pm_buf_str(b, "pool pages: ");
  pm_buf_u64(b, s->pages_in_use);
  pm_buf_str(b, " in use, ");
  pm_buf_u64(b, s->pages_peak);
  pm_buf_str(b, " at most (");
  pm_buf_bytes(b, s->pages_in_use * ((uint64_t)1 << pm_g.page_shift));
  pm_buf_str(b, "), live blocks ");
  pm_buf_bytes(b, s->block_bytes_live);
  pm_buf_str(b, ", never-carved tails ");
  pm_buf_bytes(b, s->tail_bytes);
  pm_buf_str(b, ", returned to the OS ");
  pm_buf_bytes(b, s->pages_purged_total);
  pm_buf_str(b, "\npinned:    ");
  pm_buf_u64(b, s->pinned_pages);
  pm_buf_str(b, " pages at most a quarter full hold ");
  pm_buf_bytes(b, s->pinned_bytes);
  pm_buf_str(b, " of free blocks\nmemory:    RSS ");
  text_bytes(b, s->rss);
  pm_buf_str(b, " now, ");
  text_bytes(b, s->rss_peak);
  pm_buf_str(b, " peak\n");
  if (t.allocs) {
    pm_buf_str(b, color ? "\033[1m" : "");
    pm_buf_str(
        b, "  class   block       allocs        frees         live    requested   waste"
           "   pages    peak\n");
    pm_buf_str(b, color ? "\033[0m" : "");
    for (unsigned c = 0; c < PM_NCLASSES; c++) {
      const pm_class_stats *k = &s->cls[c];
      if (k->allocs == 0 && k->frees == 0) continue;
      uint64_t bsize = pm_class_size(c);
      uint64_t given = k->allocs * bsize;
      pm_buf_u64w(b, c, 7);
      pm_buf_u64w(b, bsize, 8);
      pm_buf_u64w(b, k->allocs, 13);
      pm_buf_u64w(b, k->frees, 13);
      pm_buf_u64w(b, k->allocs > k->frees ? k->allocs - k->frees : 0, 13);
      pm_buf_u64w(b, k->req_bytes, 13);
      char pct[16];
      pm_buf pb = pm_buf_make(pct, sizeof pct);
      pm_buf_pct(&pb, given > k->req_bytes ? given - k->req_bytes : 0, given);
      for (size_t i = pb.len; i < 8; i++)
        pm_buf_char(b, ' ');
      pm_buf_mem(b, pct, pb.len);
      pm_buf_u64w(b, s->class_pages[c], 8);
      pm_buf_u64w(b, s->class_pages_peak[c], 8);
      pm_buf_char(b, '\n');
    }
  }
  text_sites(b);
  pm_buf_str(b, color ? "\033[1m==== poolmalloc report end ====\033[0m\n"
                      : "==== poolmalloc report end ====\n");
}

static void format_json(pm_buf *b, const pm_snapshot *s) {
  char cmd[512];
  cmdline(cmd, sizeof cmd);
  uint64_t je_alloc, je_res, je_mapped;
  pm_fallback_figures(&je_alloc, &je_res, &je_mapped);
  pm_buf_str(b, "{\"poolmalloc\":{\"schema\":");
  pm_buf_u64(b, PM_REPORT_SCHEMA);
  pm_buf_str(b, ",\"version\":\"" PM_VERSION "\",");
  json_kv(b, "pid", (uint64_t)getpid(), true);
  json_kv(b, "ppid", (uint64_t)getppid(), true);
  pm_buf_str(b, "\"forked_without_exec\":");
  pm_buf_str(b, pm_forked_child ? "true," : "false,");
  pm_buf_str(b, "\"trigger\":");
  pm_buf_json_str(b, report_trigger);
  pm_buf_str(b, ",\"program\":");
  pm_buf_json_str(b, cmd);
  pm_buf_char(b, ',');
  json_kv(b, "run_time_ms", pm_uptime_ns() / 1000000, true);
  pm_buf_str(b, "\"options\":{");
  for (size_t i = 0; i < pm_option_count; i++) {
    char v[256];
    pm_buf vb = pm_buf_make(v, sizeof v);
    pm_option_format(&vb, &pm_opt, i);
    if (i) pm_buf_char(b, ',');
    pm_buf_json_str(b, pm_option_table[i].name);
    pm_buf_char(b, ':');
    pm_opt_kind kind = pm_option_table[i].kind;
    if (kind == PM_OPT_STRING || kind == PM_OPT_STATS || kind == PM_OPT_SIGNAL ||
        kind == PM_OPT_CHECK)
      pm_buf_json_str(b, pm_buf_cstr(&vb));
    else
      pm_buf_str(b, pm_buf_cstr(&vb));
  }
  pm_buf_str(b, "},\"threads\":{");
  json_kv(b, "total", s->threads_total, true);
  json_kv(b, "peak", s->threads_peak, true);
  json_kv(b, "live", s->threads_live, false);
  pm_buf_str(b, "},\"counters\":{");
#define PM_JSON_KV(f, key, label) json_kv(b, key, s->heap.f, true);
  PM_HEAP_COUNTERS(PM_JSON_KV)
#undef PM_JSON_KV
  json_kv(b, "pages_in_use", s->pages_in_use, true);
  json_kv(b, "pages_peak", s->pages_peak, true);
  json_kv(b, "page_size", pm_opt.pool_size, true);
  json_kv(b, "live_block_bytes", s->block_bytes_live, true);
  json_kv(b, "tail_bytes", s->tail_bytes, true);
  json_kv(b, "pinned_pages", s->pinned_pages, true);
  json_kv(b, "pinned_bytes", s->pinned_bytes, true);
  json_kv(b, "purged_bytes", s->pages_purged_total, true);
  json_kv(b, "region_committed", s->region_committed, true);
  json_kv(b, "jemalloc_allocated", je_alloc, true);
  json_kv(b, "jemalloc_resident", je_res, true);
  json_kv(b, "rss", s->rss, true);
  json_kv(b, "rss_peak", s->rss_peak, false);
  pm_buf_str(b, "},\"too_large_sizes\":[");
  bool any = false;
  for (unsigned i = 0; i < PM_LARGE_BUCKETS; i++) {
    if (s->too_large_log2[i] == 0) continue;
    if (any) pm_buf_char(b, ',');
    any = true;
    pm_buf_str(b, "{\"max_bytes\":");
    pm_buf_u64(b, bucket_max(i));
    pm_buf_str(b, ",\"count\":");
    pm_buf_u64(b, s->too_large_log2[i]);
    pm_buf_char(b, '}');
  }
  pm_buf_str(b, "],");
  json_sites(b);
  pm_buf_str(b, "\"classes\":[");
  bool first = true;
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    const pm_class_stats *k = &s->cls[c];
    if (k->allocs == 0 && k->frees == 0) continue;
    if (!first) pm_buf_char(b, ',');
    first = false;
    pm_buf_char(b, '{');
    json_kv(b, "class", c, true);
    json_kv(b, "block_size", pm_class_size(c), true);
#define PM_JSON_C(f, key) json_kv(b, key, k->f, true);
    PM_CLASS_COUNTERS(PM_JSON_C)
#undef PM_JSON_C
    json_kv(b, "live", k->allocs > k->frees ? k->allocs - k->frees : 0, true);
    json_kv(b, "pages", s->class_pages[c], true);
    json_kv(b, "peak_pages", s->class_pages_peak[c], false);
    pm_buf_char(b, '}');
  }
  pm_buf_str(b, "]}}\n");
}

static size_t format_report(char *buf, size_t cap, int format, bool color) {
  pm_snapshot s;
  pm_stats_snapshot(&s);
  pm_buf b = pm_buf_make(buf, cap ? cap - 1 : 0);
  if (format == PM_REPORT_JSON)
    format_json(&b, &s);
  else
    format_text(&b, &s, color);
  if (cap) buf[b.len] = 0;
  return b.want;
}

size_t pm_report_format(char *buf, size_t cap, int format) {
  return format_report(buf, cap, format, false);
}

bool pm_report_write_fd(int fd, int format) {
  char *buf = pm_os_map(PM_REPORT_CAP);
  if (buf == NULL) return false;
  /* colour only for a text report going to a terminal */
  size_t n =
      format_report(buf, PM_REPORT_CAP, format, format == PM_REPORT_TEXT && isatty(fd));
  if (n >= PM_REPORT_CAP) n = PM_REPORT_CAP - 1;
  bool ok = pm_os_write(fd, buf, n);
  int saved = errno;
  munmap(buf, PM_REPORT_CAP);
  errno = saved;
  return ok;
}

int pm_report_callback(void (*fn)(void *, const char *, size_t), void *arg, int format) {
  char *buf = pm_os_map(PM_REPORT_CAP);
  if (buf == NULL) return -1;
  size_t n = pm_report_format(buf, PM_REPORT_CAP, format);
  if (n >= PM_REPORT_CAP) n = PM_REPORT_CAP - 1;
  fn(arg, buf, n);
  int saved = errno;
  munmap(buf, PM_REPORT_CAP);
  errno = saved;
  return 0;
}

/* expands %p (pid), %e (program name) and %% in the file name */
static void expand_path(pm_buf *b, const char *pattern) {
  extern char *program_invocation_short_name;
  for (const char *p = pattern; *p; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      pm_buf_u64(b, (uint64_t)getpid());
      p++;
    } else if (p[0] == '%' && p[1] == 'e') {
      pm_buf_str(b, program_invocation_short_name ? program_invocation_short_name
                                                  : "unknown");
      p++;
    } else if (p[0] == '%' && p[1] == '%') {
      pm_buf_char(b, '%');
      p++;
    } else {
      pm_buf_char(b, *p);
    }
  }
}

/* A private copy of stderr, taken when the process starts allocating: a
 * program that closes fd 2, or closes it and opens a data file that gets
 * number 2, neither loses the report nor has it written into its file. */
static int report_fd = -1;
static _Atomic int file_written;

void pm_report_prepare(void) {
  if (pm_opt.stats == PM_STATS_OFF || report_fd >= 0) return;
  int saved = errno;
  report_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  errno = saved;
}

static void write_report(const char *trigger) {
  report_trigger = trigger;
  int format = pm_opt.stats == PM_STATS_JSON ? PM_REPORT_JSON : PM_REPORT_TEXT;
  const char *pattern = pm_opt.stats_file_str;
  int err_fd = report_fd >= 0 ? report_fd : 2;
  if (pattern != NULL) {
    char path[1024];
    pm_buf b = pm_buf_make(path, sizeof path);
    expand_path(&b, pattern);
    const char *why = NULL;
    if (pm_os_secure()) {
      why = "is ignored in a setuid program";
    } else {
      int saved = errno;
      /* the first report of the process truncates, later ones (signal dumps,
       * then the exit report) append */
      int trunc = atomic_exchange(&file_written, 1) ? O_APPEND : O_TRUNC;
      int fd = open(pm_buf_cstr(&b), O_WRONLY | O_CREAT | trunc | O_CLOEXEC, 0644);
      errno = saved;
      if (fd >= 0) {
        bool ok = pm_report_write_fd(fd, format);
        close(fd);
        errno = saved;
        if (ok) {
          report_trigger = "api";
          return;
        }
        why = "could not be written";
      } else {
        why = "could not be opened";
      }
    }
    char line[1200];
    pm_buf l = pm_buf_make(line, sizeof line);
    pm_buf_str(&l, "POOLMALLOC_STATS_FILE '");
    pm_buf_str(&l, pm_buf_cstr(&b));
    pm_buf_str(&l, "' ");
    pm_buf_str(&l, why);
    pm_buf_str(&l, "; writing the report to stderr\n");
    char msg[1300];
    pm_buf m = pm_buf_make(msg, sizeof msg);
    pm_buf_str(&m, "poolmalloc: ");
    pm_buf_mem(&m, l.data, l.len);
    pm_os_write(err_fd, m.data, m.len);
  }
  pm_report_write_fd(err_fd, format);
  report_trigger = "api";
}

void pm_report_at_exit(void) {
  write_report("exit");
}

static void on_signal(int sig) {
  (void)sig;
  int saved = errno;
  write_report("signal");
  errno = saved;
}

void pm_report_install_signal(void) {
  if (pm_opt.stats_signal == 0) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  int saved = errno;
  sigaction((int)pm_opt.stats_signal, &sa, NULL);
  errno = saved;
}
