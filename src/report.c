/* report.c - the text and JSON statistics reports (see report.h).
 *
 * Both formats come from one snapshot and the field lists of stats.h and
 * options.h. The JSON schema is versioned ("schema": 1) and documented in
 * docs/report.md. */
#define _GNU_SOURCE
#include "report.h"
#include "fmt.h"
#include "lifetime.h"
#include "profile.h"
#include "options.h"
#include "os.h"
#include "stats.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

#define PM_REPORT_SCHEMA 2

static void text_notes(pm_buf *b);
static void json_notes(pm_buf *b);

/* why the report being formatted is written: "exit", "signal" or "api" */
static const char *report_trigger = "api";
bool pm_forked_child;
#define PM_REPORT_MIN (256 * 1024)
/* room for every stored stack with every frame in JSON */
#define PM_REPORT_CAP                                                                    \
  (PM_REPORT_MIN + (size_t)PM_STACK_SLOTS * (PM_STACK_MAX * 120 + 300))
/* scratch for the stack list of the JSON report (mapped with the buffer) */
static pm_stack_info *stack_scratch;
static size_t stack_scratch_cap;

/* the command line from /proc/self/cmdline, arguments joined by spaces */
static void cmdline(char *out, size_t cap) {
  size_t n = pm_os_read_file("/proc/self/cmdline", out, cap);
  for (size_t i = 0; i < n; i++)
    if (out[i] == 0) out[i] = ' ';
  while (n > 0 && out[n - 1] == ' ')
    n--;
  out[n] = 0;
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

/* the lines of one section: per-thread counters when not zero, snapshot
 * figures always */
static void text_section(pm_buf *b, const pm_snapshot *s, int section) {
#define PM_TEXT_COUNTER(f, key, unit, sec, label)                                        \
  if (PM_SEC_##sec == section && s->heap.f)                                              \
    pm_buf_figure(b, label, PM_UNIT_##unit == PM_UNIT_COUNT, s->heap.f);
  PM_HEAP_COUNTERS(PM_TEXT_COUNTER)
#undef PM_TEXT_COUNTER
#define PM_TEXT_FIGURE(f, key, unit, sec, label)                                         \
  if (PM_SEC_##sec == section)                                                           \
    pm_buf_figure(b, label, PM_UNIT_##unit == PM_UNIT_COUNT, s->fig.f);
  PM_SNAPSHOT_FIGURES(PM_TEXT_FIGURE)
#undef PM_TEXT_FIGURE
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
  uint64_t samples, known, marked, rests;
  pm_lt_totals(&samples, &known, &marked, &rests);
  if (samples == 0) return;
  pm_buf_str(b, "lifetime:  ");
  pm_buf_u64(b, samples);
  pm_buf_str(b, " samples from ");
  pm_buf_u64(b, known);
  pm_buf_str(b, " call sites, ");
  pm_buf_u64(b, marked);
  pm_buf_str(b, " marked long-lived now");
  if (rests != 0) {
    pm_buf_str(b, ", ");
    pm_buf_u64(b, rests);
    pm_buf_str(b, rests == 1 ? " rest" : " rests");
    pm_buf_str(b, " (classes undiverted while a marked site allocated nothing)");
  }
  pm_buf_char(b, '\n');
  for (size_t i = 0; i < n; i++) {
    pm_buf_str(b, "  ");
    pm_buf_str(b, top[i].resting ? "resting " : top[i].marked ? "routed  " : "seen    ");
    site_name(b, top[i].site, false);
    if (top[i].caller != 0) {
      pm_buf_str(b, " called from ");
      site_name(b, top[i].caller, false);
    } else if (top[i].wrapper) {
      pm_buf_str(b, " (a wrapper: judged by caller)");
    }
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
    pm_buf_str(b, " short");
    if (top[i].marked_after != 0) {
      pm_buf_str(b, ", learned after ");
      pm_buf_bytes(b, top[i].marked_after);
      pm_buf_str(b, " allocated");
    }
    pm_buf_char(b, '\n');
  }
}

static void json_sites(pm_buf *b) {
  pm_lt_site_info top[PM_REPORT_SITES];
  size_t n = pm_lt_top_sites(top, PM_REPORT_SITES);
  uint64_t samples, known, marked, rests;
  pm_lt_totals(&samples, &known, &marked, &rests);
  pm_buf_str(b, "\"lifetime\":{");
  json_kv(b, "samples", samples, true);
  json_kv(b, "sites", known, true);
  json_kv(b, "marked", marked, true);
  json_kv(b, "rests", rests, true);
  pm_buf_str(b, "\"long_lived_sites\":[");
  for (size_t i = 0; i < n; i++) {
    if (i) pm_buf_char(b, ',');
    pm_buf_str(b, "{\"site\":");
    site_name(b, top[i].site, true);
    pm_buf_str(b, ",\"address\":\"");
    pm_buf_hex(b, top[i].site);
    if (top[i].caller != 0) {
      pm_buf_str(b, "\",\"caller\":");
      site_name(b, top[i].caller, true);
      pm_buf_str(b, ",\"caller_address\":\"");
      pm_buf_hex(b, top[i].caller);
    }
    if (top[i].wrapper)
      pm_buf_str(b, "\",\"wrapper\":true,\"marked\":");
    else
      pm_buf_str(b, "\",\"marked\":");
    pm_buf_str(b, top[i].marked ? "true," : "false,");
    if (top[i].marked)
      pm_buf_str(b, top[i].resting ? "\"resting\":true," : "\"resting\":false,");
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
    if (top[i].marked_after != 0)
      json_kv(b, "marked_after_bytes", top[i].marked_after, true);
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
  pm_buf_u64(b, (uint64_t)pm_os_pid());
  pm_buf_str(b, " ====");
  pm_buf_str(b, color ? "\033[0m" : "");
  pm_buf_str(b, "\nprogram:   ");
  pm_buf_text(b, cmd);
  pm_buf_str(b, "\nrun time:  ");
  pm_buf_u64(b, pm_os_uptime_ns() / 1000000);
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
  text_section(b, s, PM_SEC_REQUESTS);
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
  pm_buf_str(b, "pool pages:\n");
  text_section(b, s, PM_SEC_POOL);
  pm_buf_str(b, "memory:\n");
  text_section(b, s, PM_SEC_MEMORY);
  text_notes(b);
  if (t.allocs) {
    pm_buf_str(b, "classes:   allocs, frees, requested and waste are running totals; "
                  "live and pages are now\n");
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
  pm_profile_text(b, s);
  pm_buf_str(b, color ? "\033[1m==== poolmalloc report end ====\033[0m\n"
                      : "==== poolmalloc report end ====\n");
}

static void format_json(pm_buf *b, const pm_snapshot *s) {
  char cmd[512];
  cmdline(cmd, sizeof cmd);
  pm_buf_str(b, "{\"poolmalloc\":{\"schema\":");
  pm_buf_u64(b, PM_REPORT_SCHEMA);
  pm_buf_str(b, ",\"version\":\"" PM_VERSION "\",");
  json_kv(b, "pid", (uint64_t)pm_os_pid(), true);
  json_kv(b, "ppid", (uint64_t)pm_os_ppid(), true);
  pm_buf_str(b, "\"forked_without_exec\":");
  pm_buf_str(b, pm_forked_child ? "true," : "false,");
  pm_buf_str(b, "\"trigger\":");
  pm_buf_json_str(b, report_trigger);
  pm_buf_str(b, ",\"program\":");
  pm_buf_json_str(b, cmd);
  pm_buf_char(b, ',');
  json_kv(b, "run_time_ms", pm_os_uptime_ns() / 1000000, true);
  json_notes(b);
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
#define PM_JSON_COUNTER(f, key, ...) pm_buf_json_field(b, key, s->heap.f);
  PM_HEAP_COUNTERS(PM_JSON_COUNTER)
#undef PM_JSON_COUNTER
#define PM_JSON_FIGURE(f, key, ...) pm_buf_json_field(b, key, s->fig.f);
  PM_SNAPSHOT_FIGURES(PM_JSON_FIGURE)
#undef PM_JSON_FIGURE
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
  pm_profile_json(b, s, stack_scratch, stack_scratch_cap);
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

/* the report into b (text or JSON) */
static void format_report(pm_buf *b, int format, bool color) {
  size_t scratch = PM_STACK_SLOTS * sizeof(pm_stack_info);
  stack_scratch = format == PM_REPORT_JSON ? pm_os_map(scratch) : NULL;
  stack_scratch_cap = stack_scratch ? PM_STACK_SLOTS : 0;
  pm_snapshot s;
  pm_stats_snapshot(&s);
  if (format == PM_REPORT_JSON)
    format_json(b, &s);
  else
    format_text(b, &s, color);
  if (stack_scratch) pm_os_unmap(stack_scratch, scratch);
  stack_scratch = NULL;
}

size_t pm_report_format(char *buf, size_t cap, int format) {
  pm_buf b = pm_buf_make(buf, cap ? cap - 1 : 0);
  format_report(&b, format, false);
  if (cap) buf[b.len] = 0;
  return b.want;
}

/* The report is written through a small buffer, flushed whenever it fills:
 * a JSON report with thousands of stacks is megabytes long, and formatting
 * it whole first would add as much to the process's peak RSS at exit. */
#define PM_REPORT_CHUNK (64 * 1024)

bool pm_report_write_fd(int fd, int format) {
  if (fd < 0) return false;
  char *buf = pm_os_map(PM_REPORT_CHUNK);
  if (buf == NULL) return false;
  pm_buf b = pm_buf_make_fd(buf, PM_REPORT_CHUNK, fd);
  /* colour only for a text report going to a terminal */
  format_report(&b, format, format == PM_REPORT_TEXT && pm_os_isatty(fd));
  bool ok = pm_buf_flush(&b);
  pm_os_unmap(buf, PM_REPORT_CHUNK);
  return ok;
}

int pm_report_callback(void (*fn)(void *, const char *, size_t), void *arg, int format) {
  char *buf = pm_os_map(PM_REPORT_CAP);
  if (buf == NULL) return -1;
  size_t n = pm_report_format(buf, PM_REPORT_CAP, format);
  if (n >= PM_REPORT_CAP) n = PM_REPORT_CAP - 1;
  fn(arg, buf, n);
  pm_os_unmap(buf, PM_REPORT_CAP);
  return 0;
}

/* expands %p (pid), %e (program name) and %% in the file name */
static void expand_path(pm_buf *b, const char *pattern) {
  extern char *program_invocation_short_name;
  for (const char *p = pattern; *p; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      pm_buf_u64(b, (uint64_t)pm_os_pid());
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

/* A private copy of the stderr the process started with, taken by the
 * library constructor before any of the program runs: a program that
 * closes fd 2, or closes it and opens a data file that gets number 2,
 * neither loses the report nor has it written into its file. -1 when
 * stderr was closed at start: then a report for stderr is dropped. */
static int report_fd = -1;
static _Atomic int file_written;

void pm_report_prepare(void) {
  if (report_fd < 0) report_fd = pm_os_dup_private(2);
}

/* one line "poolmalloc: ..." to the saved stderr (nothing if it was closed) */
static void report_message(const char *line) {
  if (report_fd < 0) return;
  char msg[1400];
  pm_buf m = pm_buf_make(msg, sizeof msg - 1);
  pm_buf_str(&m, "poolmalloc: ");
  pm_buf_str(&m, line);
  pm_buf_char(&m, '\n');
  pm_os_write(report_fd, m.data, m.len);
}

/* the report into the POOLMALLOC_STATS_FILE file; false (with a warning on
 * stderr naming the path and the reason) if it cannot be written */
static bool write_file(int format) {
  char path[1024];
  pm_buf b = pm_buf_make(path, sizeof path);
  expand_path(&b, pm_opt.stats_file_str);
  const char *why = NULL;
  int err = 0;
  if (pm_os_secure()) {
    why = "is ignored in a setuid program";
  } else {
    /* the first report of the process truncates, later ones (signal dumps,
     * then the exit report) append */
    bool trunc = !atomic_exchange(&file_written, 1);
    int fd = pm_os_open_write(pm_buf_cstr(&b), trunc, &err);
    if (fd >= 0) {
      bool ok = pm_report_write_fd(fd, format);
      pm_os_close(fd);
      if (ok) return true;
      why = "could not be written";
    } else {
      why = "could not be opened";
    }
  }
  char line[1300];
  pm_buf l = pm_buf_make(line, sizeof line);
  pm_buf_str(&l, "POOLMALLOC_STATS_FILE '");
  pm_buf_str(&l, pm_buf_cstr(&b));
  pm_buf_str(&l, "' ");
  pm_buf_str(&l, why);
  if (err) {
    pm_buf_str(&l, " (");
    pm_buf_str(&l, pm_os_reason(err));
    pm_buf_str(&l, ")");
  }
  pm_buf_str(&l, "; writing the report to stderr");
  report_message(pm_buf_cstr(&l));
  return false;
}

static void write_report(const char *trigger) {
  report_trigger = trigger;
  int format = pm_opt.stats == PM_STATS_JSON ? PM_REPORT_JSON : PM_REPORT_TEXT;
  if ((pm_opt.stats_file_str == NULL || !write_file(format)) && report_fd >= 0)
    pm_report_write_fd(report_fd, format);
  report_trigger = "api";
}

void pm_report_at_exit(void) {
  write_report("exit");
}

static void on_signal(int sig) {
  (void)sig;
  write_report("signal"); /* keeps errno: every call below does */
}

void pm_report_install_signal(int sig) {
  if (sig != 0) pm_os_on_signal(sig, on_signal);
}

/* ---- notes: what the report cannot see ---- */

/* the dump signal's handler was replaced by the program's own */
static bool signal_taken(void) {
  return pm_opt.stats_signal != 0 &&
         pm_os_signal_handler((int)pm_opt.stats_signal) != (void *)on_signal;
}

/* Another malloc library in the process: one that binds `malloc` before
 * poolmalloc (LD_PRELOAD order), or one the program links itself (Debian's
 * redis-server links libjemalloc.so.2): its own statistics then describe an
 * allocator that sees nothing, or poolmalloc sees nothing. */
typedef struct other_malloc {
  char name[128];
  bool binds;       /* it, not poolmalloc, serves malloc */
  bool before_self; /* a known allocator comes before poolmalloc in load order */
  uintptr_t self;   /* poolmalloc's load address */
  bool seen_self;
} other_malloc;

static int find_other(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  other_malloc *o = arg;
  if (info->dlpi_addr == o->self) o->seen_self = true;
  const char *path = info->dlpi_name, *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  static const char *const libs[] = {"libjemalloc.so",  "libtcmalloc",
                                     "libmimalloc.so",  "libhoard",
                                     "libsnmallocshim", "librpmalloc"};
  for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
    if (strncmp(base, libs[i], strlen(libs[i])) == 0 && o->name[0] == 0) {
      pm_buf b = pm_buf_make(o->name, sizeof o->name);
      pm_buf_str(&b, base);
      pm_buf_cstr(&b);
      o->before_self = !o->seen_self;
    }
  }
  return 0;
}

static void find_other_malloc(other_malloc *o) {
  memset(o, 0, sizeof *o);
  Dl_info mine, bound;
  if (!dladdr((void *)find_other_malloc, &mine)) return;
  o->self = (uintptr_t)mine.dli_fbase;
  dl_iterate_phdr(find_other, o);
  void *sym = dlsym(RTLD_DEFAULT, "malloc");
  const ElfW(Sym) *es = NULL;
  if (sym == NULL || !dladdr1(sym, &bound, (void **)&es, RTLD_DL_SYMENT) ||
      mine.dli_fbase == bound.dli_fbase)
    return;
  if (es != NULL && es->st_shndx == SHN_UNDEF) {
    /* A program built without -fPIC that takes malloc's address makes its
     * own PLT entry malloc's canonical address, and dlsym returns that
     * (Debian's node is built so): not a definition. Who serves the calls
     * behind it is then judged by load order: a known allocator loaded
     * before poolmalloc (earlier in LD_PRELOAD) does. */
    o->binds = o->before_self;
    return;
  }
  o->binds = true;
  if (bound.dli_fname != NULL) {
    const char *slash = strrchr(bound.dli_fname, '/');
    pm_buf b = pm_buf_make(o->name, sizeof o->name);
    pm_buf_str(&b, slash ? slash + 1 : bound.dli_fname);
    pm_buf_cstr(&b);
  }
}

static void text_notes(pm_buf *b) {
  other_malloc o;
  find_other_malloc(&o);
  if (o.binds) {
    pm_buf_str(b, "note:      malloc is served by ");
    pm_buf_str(b, o.name[0] ? o.name : "another library");
    pm_buf_str(b, ", not poolmalloc (it comes first in LD_PRELOAD or the program): "
                  "these figures miss its allocations\n");
  } else if (o.name[0]) {
    pm_buf_str(b, "note:      the process also loads ");
    pm_buf_str(b, o.name);
    pm_buf_str(b, "; poolmalloc serves malloc, so that allocator's own statistics "
                  "(e.g. redis INFO memory) describe an allocator that sees nothing\n");
  }
  if (signal_taken()) {
    pm_buf_str(b, "note:      POOLMALLOC_STATS_SIGNAL SIG");
    const char *name = pm_signal_name((int)pm_opt.stats_signal);
    if (name)
      pm_buf_str(b, name);
    else
      pm_buf_u64(b, pm_opt.stats_signal);
    pm_buf_str(b, " was taken over by the program's own handler: it wrote no report\n");
  }
}

static void json_notes(pm_buf *b) {
  other_malloc o;
  find_other_malloc(&o);
  pm_buf_str(b, "\"other_malloc\":");
  if (o.name[0] || o.binds)
    pm_buf_json_str(b, o.name[0] ? o.name : "unknown");
  else
    pm_buf_str(b, "null");
  pm_buf_str(b, ",\"other_malloc_binds\":");
  pm_buf_str(b, o.binds ? "true" : "false");
  pm_buf_str(b, ",\"stats_signal_taken\":");
  pm_buf_str(b, signal_taken() ? "true," : "false,");
}
