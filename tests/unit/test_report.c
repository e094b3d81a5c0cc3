/* test_report.c - the statistics report (report.c) in both formats, the
 * exit report's file handling, and glibc's extensions (glibc_compat.c):
 * mallinfo2, malloc_trim, malloc_info. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "glibc_compat.h"
#include "heap.h"
#include "options.h"
#include "report.h"
#include "stats.h"
#include "routing_off.h"

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)

static pm_snapshot snap(void) {
  if (!PM_COUNTING)
    cr_skip_test("built without POOLMALLOC_COUNTING: no counters to check");
  pm_snapshot s;
  pm_stats_snapshot(&s);
  return s;
}

/* ---- a minimal JSON checker: well-formedness only ---- */

static const char *js_ws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
    p++;
  return p;
}

static const char *js_value(const char *p, int depth);

static const char *js_string(const char *p) {
  if (*p++ != '"') return NULL;
  while (*p != '"') {
    if ((unsigned char)*p < 0x20) return NULL;
    if (*p == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
        p += 4;
      } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
        return NULL;
      }
    }
    p++;
  }
  return p + 1;
}

static const char *js_number(const char *p) {
  const char *s = p;
  if (*p == '-') p++;
  while (*p >= '0' && *p <= '9')
    p++;
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  return p == s ? NULL : p;
}

static const char *js_value(const char *p, int depth) {
  if (depth > 20) return NULL;
  p = js_ws(p);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    bool obj = *p == '{';
    p = js_ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (obj) {
        p = js_string(js_ws(p));
        if (!p) return NULL;
        p = js_ws(p);
        if (*p++ != ':') return NULL;
      }
      p = js_value(p, depth + 1);
      if (!p) return NULL;
      p = js_ws(p);
      if (*p == ',') {
        p++;
        continue;
      }
      if (*p == close) return p + 1;
      return NULL;
    }
  }
  if (*p == '"') return js_string(p);
  if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0) return p + 4;
  if (strncmp(p, "false", 5) == 0) return p + 5;
  return js_number(p);
}

static bool json_ok(const char *s) {
  const char *end = js_value(s, 0);
  return end != NULL && *js_ws(end) == 0;
}

Test(report, json_checker_self_test) {
  cr_assert(json_ok("{\"a\":[1,2,{\"b\":\"c\\u0001\"}],\"d\":{}}\n"));
  cr_assert_not(json_ok("{\"a\":1,}"));
  cr_assert_not(json_ok("{\"a\":1"));
  cr_assert_not(json_ok("{\"a\":\"x\ny\"}"));
  cr_assert_not(json_ok("{\"a\":1}}"));
}

/* ---- reports ---- */

static char *report(int format, size_t *len) {
  size_t cap = 256 * KiB;
  char *buf = malloc(cap);
  *len = pm_report_format(buf, cap, format);
  cr_assert_lt(*len, cap);
  cr_assert_eq(strlen(buf), *len);
  return buf;
}

static void *keep[10]; /* live blocks the reports must count */

static void some_work(void) {
  if (!PM_COUNTING)
    cr_skip_test("built without POOLMALLOC_COUNTING: the report has no counters");
  for (int i = 0; i < 100; i++)
    pm_free(pm_malloc(100));
  for (int i = 0; i < 10; i++)
    keep[i] = pm_malloc(3000);
  pm_free(pm_malloc(MiB));
}

Test(report, text_report) {
  some_work();
  size_t len;
  char *r = report(PM_REPORT_TEXT, &len);
  char head[128];
  snprintf(head, sizeof head, "==== poolmalloc %s report begin: pid %d ====\n",
           PM_VERSION, (int)getpid());
  cr_assert_eq(strncmp(r, head, strlen(head)), 0, "%.200s", r);
  cr_assert(strstr(r, "\nprogram:   ") != NULL, "%s", r);
  cr_assert(strstr(r, "POOL_SIZE=65536") != NULL);
  cr_assert(strstr(r, "threads:   1 with a heap, 1 at once at most, 1 live now\n"), "%s",
            r);
  /* 111 requests: 110 pooled, 1 to jemalloc */
  cr_assert(strstr(r, "requests:  111 allocations: 99.1% pooled, 0.9% to jemalloc\n"),
            "%s", r);
  cr_assert(strstr(r, "pool pages carved from arenas") != NULL, "%s", r);
  cr_assert(strstr(r, "jemalloc: larger than POOLMALLOC_MAX_POOLED") != NULL, "%s", r);
  cr_assert(strstr(r, "\npool pages:\n") != NULL, "%s", r);
  cr_assert(
      strstr(r, "  pool pages in use now                                       2\n") !=
          NULL,
      "%s", r);
  cr_assert(
      strstr(r, "  size of the pool pages in use now                           128.0 KiB "
                "(131072)\n") != NULL,
      "%s", r);
  cr_assert(
      strstr(r, "  pool blocks handed out and not freed now                    30.0 KiB "
                "(30720)\n") != NULL,
      "%s", r);
  cr_assert_null(strstr(r, "frees from a thread"), "zero counters are left out: %s", r);
  const char *tail = "==== poolmalloc report end ====\n";
  cr_assert_str_eq(r + len - strlen(tail), tail);
  free(r);
}

Test(report, json_report_is_valid_and_matches_the_snapshot) {
  some_work();
  size_t len;
  char *r = report(PM_REPORT_JSON, &len);
  cr_assert(json_ok(r), "invalid JSON: %s", r);
  cr_assert_eq(r[len - 1], '\n');
  cr_assert(strstr(r, "{\"poolmalloc\":{\"schema\":2,\"version\":\"" PM_VERSION "\",") ==
                r,
            "%.100s", r);
  pm_snapshot s = snap();
  char want[128];
  snprintf(want, sizeof want, "\"pages_fresh\":%llu,",
           (unsigned long long)s.heap.pages_fresh);
  cr_assert(strstr(r, want) != NULL, "%s not in %s", want, r);
  snprintf(want, sizeof want, "\"live_block_bytes\":%llu,",
           (unsigned long long)s.fig.live_block_bytes);
  cr_assert(strstr(r, want) != NULL, "%s not in %s", want, r);
  cr_assert(
      strstr(r, "{\"class\":6,\"block_size\":112,\"allocs\":100,\"frees\":100,"
                "\"requested_bytes\":10000,\"live\":0,\"pages\":1,\"peak_pages\":1}") !=
          NULL,
      "%s", r);
  cr_assert(strstr(r, "\"fallback_too_large\":1,") != NULL, "%s", r);
  cr_assert(strstr(r, "\"options\":{\"POOL_SIZE\":65536,") != NULL ||
                strstr(r, "\"options\":{\"POOL_SIZE\":\"65536\",") != NULL,
            "%s", r);
  free(r);
}

Test(report, json_report_of_an_idle_process) {
  size_t len;
  char *r = report(PM_REPORT_JSON, &len);
  cr_assert(json_ok(r), "invalid JSON before start-up: %s", r);
  cr_assert(strstr(r, "\"classes\":[]") != NULL, "%s", r);
  free(r);
  char *t = report(PM_REPORT_TEXT, &len);
  cr_assert(strstr(t, "requests:  0 allocations: - pooled, - to jemalloc") != NULL, "%s",
            t);
  free(t);
}

Test(report, truncated_report_returns_the_full_length) {
  some_work();
  size_t full;
  char *r = report(PM_REPORT_JSON, &full);
  char small[100];
  memset(small, 'x', sizeof small);
  size_t n = pm_report_format(small, sizeof small, PM_REPORT_JSON);
  cr_assert_eq(strlen(small), sizeof small - 1, "NUL-terminated within the buffer");
  cr_assert_eq(strncmp(small, r, sizeof small - 1), 0);
  /* poolmalloc.h: "Returns the report's full length; a return value >= size
   * means it was cut." (run time and RSS may differ by a few digits between calls) */
  cr_assert_geq(n, sizeof small,
                "a cut report must say so: returned %zu for a %zu-byte buffer", n,
                sizeof small);
  cr_assert(n + 16 >= full && n <= full + 16, "returned %zu, full length %zu", n, full);
  cr_assert_geq(pm_report_format(NULL, 0, PM_REPORT_TEXT), 100,
                "size 0 asks for the length");
  free(r);
}

Test(report, write_fd) {
  some_work();
  char path[] = "/tmp/pm_unit_report_XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  cr_assert(pm_report_write_fd(fd, PM_REPORT_JSON));
  off_t size = lseek(fd, 0, SEEK_END);
  char *buf = calloc(1, (size_t)size + 1);
  cr_assert_eq(pread(fd, buf, (size_t)size, 0), size);
  close(fd);
  unlink(path);
  cr_assert(json_ok(buf), "%s", buf);
  free(buf);
  int p[2];
  cr_assert_eq(pipe(p), 0);
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  cr_assert_not(pm_report_write_fd(p[1], PM_REPORT_TEXT), "a broken descriptor fails");
  close(p[1]);
  cr_assert_not(pm_report_write_fd(-1, PM_REPORT_TEXT));
}

/* ---- the exit report ---- */

Test(report, exit_report_goes_to_the_stats_file) {
  char dir[] = "/tmp/pm_unit_dir_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char pattern[256], want[256];
  snprintf(pattern, sizeof pattern, "%s/r.%%p.%%e.%%%%.json", dir);
  extern char *program_invocation_short_name;
  snprintf(want, sizeof want, "%s/r.%d.%s.%%.json", dir, (int)getpid(),
           program_invocation_short_name);
  setenv("POOLMALLOC_STATS", "json", 1);
  setenv("POOLMALLOC_STATS_FILE", pattern, 1);
  some_work();
  cr_assert_eq(pm_opt.stats, PM_STATS_JSON);
  pm_report_at_exit();
  pm_opt.stats = PM_STATS_OFF; /* no second report when this process exits */
  FILE *f = fopen(want, "r");
  cr_assert_not_null(f, "no report at %s", want);
  static char buf[256 * 1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  unlink(want);
  rmdir(dir);
  cr_assert(json_ok(buf), "%s", buf);
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

Test(report, stats_signal_writes_a_report_while_running) {
  char dir[] = "/tmp/pm_unit_sig_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/report.txt", dir);
  setenv("POOLMALLOC_STATS", "text", 1);
  setenv("POOLMALLOC_STATS_SIGNAL", "SIGUSR2", 1);
  setenv("POOLMALLOC_STATS_FILE", path, 1);
  some_work();
  cr_assert_eq(pm_opt.stats_signal, SIGUSR2);
  pm_report_prepare(); /* what the library constructor does in a preloaded process */
  pm_report_install_signal(SIGUSR2);
  cr_assert_eq(raise(SIGUSR2), 0);
  static char buf[256 * 1024];
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "the signal wrote no report to %s", path);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  cr_assert_eq(count(buf, "report begin"), 1, "%s", buf);
  cr_assert_eq(count(buf, "==== poolmalloc report end ====\n"), 1);
  cr_assert(strstr(buf, "STATS_SIGNAL=SIGUSR2") != NULL, "%s", buf);
  /* the exit report is appended after the signal's */
  pm_report_at_exit();
  pm_opt.stats = PM_STATS_OFF;
  f = fopen(path, "r");
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  unlink(path);
  rmdir(dir);
  cr_assert_eq(count(buf, "report begin"), 2, "%s", buf);
}

static void redirect(void) {
  cr_redirect_stderr();
}

Test(report, unwritable_stats_file_falls_back_to_stderr, .init = redirect) {
  setenv("POOLMALLOC_STATS", "1", 1);
  setenv("POOLMALLOC_STATS_FILE", "/nonexistent/dir/report", 1);
  pm_free(pm_malloc(10));
  pm_report_prepare(); /* the constructor's copy of stderr */
  pm_report_at_exit();
  pm_opt.stats = PM_STATS_OFF;
  fflush(stderr);
  FILE *f = cr_get_redirected_stderr();
  static char buf[64 * 1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  const char *first =
      "poolmalloc: POOLMALLOC_STATS_FILE '/nonexistent/dir/report' could not be "
      "opened (no such file or directory); writing the report to stderr\n"
      "==== poolmalloc ";
  cr_assert_eq(strncmp(buf, first, strlen(first)), 0, "%s", buf);
}

/* ---- glibc extensions ---- */

Test(report, mallinfo2_counts_live_bytes) {
  if (!PM_COUNTING)
    cr_skip_test("built without POOLMALLOC_COUNTING: no live-byte counts");
  void *v[10];
  for (int i = 0; i < 10; i++)
    v[i] = pm_malloc(1000);
  void *big = pm_malloc(MiB);
  struct mallinfo2 m;
  pm_mallinfo2(&m);
  cr_assert_eq(m.arena, 64 * KiB, "one pool page in use");
  cr_assert_geq(m.uordblks, 10 * 1024);
  cr_assert_geq(m.hblkhd, MiB, "jemalloc blocks count as glibc's mmapped chunks");
  cr_assert_eq(m.arena, m.uordblks + m.fordblks, "glibc's identity");
  cr_assert_eq(m.fordblks, 64 * KiB - 10 * 1024);
  cr_assert_geq(m.hblkhd, MiB);
  struct mallinfo mi;
  pm_mallinfo(&mi);
  cr_assert_eq((size_t)mi.arena, m.arena);
  for (int i = 0; i < 10; i++)
    pm_free(v[i]);
  pm_free(big);
  pm_mallinfo2(&m);
  cr_assert_lt(m.uordblks, MiB);
}

Test(report, malloc_trim_purges_free_pages) {
  size_t n = 6 * 64;
  void **v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = pm_malloc(1024);
  for (size_t i = 0; i < n; i++)
    pm_free(v[i]);
  pm_snapshot s = snap();
  cr_assert_eq(s.heap.pages_released, 5);
  cr_assert_eq(s.fig.purged_bytes, 0);
  cr_assert_eq(pm_malloc_trim(0), 1, "trim returns 1 when it gave memory back");
  s = snap();
  cr_assert_eq(s.fig.purged_bytes, 5 * 64 * KiB);
  cr_assert_eq(s.pages_free_cached, 0, "trim empties the heap's page cache");
  cr_assert_eq(pm_malloc_trim(0), 0, "nothing left to give back");
  /* the trimmed pages still serve allocations */
  for (size_t i = 0; i < n; i++)
    v[i] = pm_malloc(1024);
  cr_assert_eq(snap().heap.pages_fresh, 6);
  for (size_t i = 0; i < n; i++)
    pm_free(v[i]);
  free(v);
}

Test(report, malloc_info_and_mallopt) {
  pm_free(pm_malloc(10));
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  cr_assert_eq(pm_malloc_info(0, f), 0);
  fclose(f);
  cr_assert_eq(strncmp(text, "<malloc version=\"1\">", 20), 0, "%s", text);
  cr_assert(strstr(text, "</malloc>\n") != NULL);
  free(text);
  errno = 0;
  cr_assert_eq(pm_malloc_info(1, stdout), -1);
  cr_assert_eq(errno, EINVAL);
  cr_assert_eq(pm_mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
}
