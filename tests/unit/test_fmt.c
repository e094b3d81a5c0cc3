/* test_fmt.c - formatting into fixed buffers (fmt.h). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "fmt.h"

/* runs fn on a fresh buffer of capacity cap and returns the C string */
#define FMT(cap, stmt)                                                                   \
  ({                                                                                     \
    static char out_[512];                                                               \
    memset(out_, 0, sizeof out_);                                                        \
    pm_buf b_ = pm_buf_make(out_, (cap));                                                \
    pm_buf *b = &b_;                                                                     \
    stmt;                                                                                \
    pm_buf_cstr(b);                                                                      \
  })

Test(fmt, bytes) {
  static const struct {
    uint64_t v;
    const char *s;
  } cases[] = {
      {0, "0 B"},
      {1, "1 B"},
      {512, "512 B"},
      {1023, "1023 B"},
      {1024, "1.0 KiB"},
      {1536, "1.5 KiB"},
      {1024 * 1024, "1.0 MiB"},
      {1024 * 1024 + 1024 * 1024 / 10 + 1, "1.1 MiB"},
      {(uint64_t)3 << 30, "3.0 GiB"},
      {(uint64_t)5 << 40, "5.0 TiB"},
      {(uint64_t)1 << 50, "1024.0 TiB"},
      {10 * 1024 + 51, "10.0 KiB"}, /* 10.0498 rounds down */
      {10 * 1024 + 52, "10.1 KiB"}, /* 10.0507 rounds up */
      {UINT64_MAX, "16777215 TiB"}, /* no overflow in the rounding */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *got = FMT(64, pm_buf_bytes(b, cases[i].v));
    cr_assert_str_eq(got, cases[i].s, "%llu", (unsigned long long)cases[i].v);
  }
}

Test(fmt, pct) {
  static const struct {
    uint64_t v, total;
    const char *s;
  } cases[] = {
      {0, 0, "-"},
      {0, 10, "0.0%"},
      {1, 2, "50.0%"},
      {1, 3, "33.3%"},
      {2, 3, "66.7%"},
      {10, 10, "100.0%"},
      {1, 1000, "0.1%"},
      {1, 2001, "0.0%"},
      {3, 2, "150.0%"},
      {UINT64_MAX / 2, UINT64_MAX, "50.0%"},
      {UINT64_MAX / 4, UINT64_MAX / 2, "50.0%"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *got = FMT(64, pm_buf_pct(b, cases[i].v, cases[i].total));
    cr_assert_str_eq(got, cases[i].s, "%llu/%llu", (unsigned long long)cases[i].v,
                     (unsigned long long)cases[i].total);
  }
}

Test(fmt, pct_large_totals_do_not_overflow) {
  /* 0.1% of a total near 2^64: the rounding term must not wrap */
  uint64_t total = UINT64_MAX, v = UINT64_MAX / 1000;
  cr_assert_str_eq(FMT(64, pm_buf_pct(b, v, total)), "0.1%");
  cr_assert_str_eq(FMT(64, pm_buf_pct(b, UINT64_MAX, UINT64_MAX)), "100.0%");
  cr_assert_str_eq(FMT(64, pm_buf_pct(b, (uint64_t)15000000000000000, UINT64_MAX - 1)),
                   "0.1%");
}

Test(fmt, numbers) {
  cr_assert_str_eq(FMT(64, pm_buf_u64(b, 0)), "0");
  cr_assert_str_eq(FMT(64, pm_buf_u64(b, 1234567890)), "1234567890");
  cr_assert_str_eq(FMT(64, pm_buf_u64(b, UINT64_MAX)), "18446744073709551615");
  cr_assert_str_eq(FMT(64, pm_buf_i64(b, -42)), "-42");
  cr_assert_str_eq(FMT(64, pm_buf_i64(b, INT64_MIN)), "-9223372036854775808");
  cr_assert_str_eq(FMT(64, pm_buf_i64(b, INT64_MAX)), "9223372036854775807");
  cr_assert_str_eq(FMT(64, pm_buf_hex(b, 0)), "0x0");
  cr_assert_str_eq(FMT(64, pm_buf_hex(b, 0xdeadBEEF)), "0xdeadbeef");
  cr_assert_str_eq(FMT(64, pm_buf_hex(b, UINT64_MAX)), "0xffffffffffffffff");
  cr_assert_str_eq(FMT(64, pm_buf_u64w(b, 42, 6)), "    42");
  cr_assert_str_eq(FMT(64, pm_buf_u64w(b, 1234567, 3)), "1234567");
  cr_assert_str_eq(FMT(64, pm_buf_pad(b, "ab", 5); pm_buf_char(b, '|')), "ab   |");
  cr_assert_str_eq(FMT(64, pm_buf_pad(b, "abcdef", 3)), "abcdef");
}

Test(fmt, json_escaping) {
  cr_assert_str_eq(FMT(128, pm_buf_json_str(b, "plain")), "\"plain\"");
  cr_assert_str_eq(FMT(128, pm_buf_json_str(b, "")), "\"\"");
  cr_assert_str_eq(FMT(128, pm_buf_json_str(b, NULL)), "\"\"");
  cr_assert_str_eq(FMT(128, pm_buf_json_str(b, "a\"b\\c")), "\"a\\\"b\\\\c\"");
  cr_assert_str_eq(FMT(128, pm_buf_json_str(b, "tab\there\nnl\r\x01\x1f")),
                   "\"tab\\u0009here\\u000anl\\u000d\\u0001\\u001f\"");
  cr_assert_str_eq(FMT(128, pm_buf_json_str(b, "caf\xc3\xa9 ~\x7f")),
                   "\"caf\xc3\xa9 ~\x7f\"");
}

static void append_everything(pm_buf *b) {
  pm_buf_str(b, "hello, world");
  pm_buf_u64(b, UINT64_MAX);
  pm_buf_json_str(b, "q\"\n");
  pm_buf_bytes(b, 123456789);
  pm_buf_pct(b, 1, 3);
  pm_buf_hex(b, 0xabcdef);
  pm_buf_u64w(b, 7, 30);
  pm_buf_i64(b, INT64_MIN);
  pm_buf_pad(b, "x", 10);
  pm_buf_char(b, '!');
}

Test(fmt, truncation_never_overflows) {
  char full[512];
  pm_buf fb = pm_buf_make(full, sizeof full);
  append_everything(&fb);
  cr_assert_not(fb.truncated);
  const char *whole = pm_buf_cstr(&fb);
  size_t whole_len = strlen(whole);
  cr_assert_eq(whole_len, 12 + 20 + 11 + 9 + 5 + 8 + 30 + 20 + 10 + 1, "%s", whole);
  /* every capacity up to past the full length: a guard region around the
   * buffer must never be written, and the text is a prefix of the whole */
  for (size_t cap = 0; cap <= whole_len + 2; cap++) {
    char mem[256 + 2 * 16];
    memset(mem, '#', sizeof mem);
    char *data = mem + 16;
    pm_buf b = pm_buf_make(data, cap);
    append_everything(&b);
    cr_assert_leq(b.len, cap);
    cr_assert_eq(b.truncated, cap < whole_len, "cap %zu: truncated=%d", cap, b.truncated);
    const char *s = pm_buf_cstr(&b);
    if (cap == 0) {
      cr_assert_str_eq(s, "");
    } else {
      cr_assert_eq(s, data);
      cr_assert_lt(strlen(s), cap);
      cr_assert_eq(strncmp(s, whole, strlen(s)), 0, "cap %zu: %s", cap, s);
      cr_assert_eq(strlen(s), cap <= whole_len ? cap - 1 : whole_len);
    }
    for (size_t i = 0; i < 16; i++)
      cr_assert_eq(mem[i], '#', "cap %zu: wrote before", cap);
    for (size_t i = 16 + cap; i < sizeof mem; i++)
      cr_assert_eq(mem[i], '#', "cap %zu: wrote %zu past the end", cap, i - 16 - cap);
  }
}

Test(fmt, exact_fit_is_not_truncated) {
  char mem[8];
  pm_buf b = pm_buf_make(mem, 6);
  pm_buf_str(&b, "12345");
  cr_assert_not(b.truncated);
  cr_assert_str_eq(pm_buf_cstr(&b), "12345");
  pm_buf_str(&b, "6");
  cr_assert_not(b.truncated, "6 bytes fit a capacity of 6");
  pm_buf_str(&b, "7");
  cr_assert(b.truncated);
  cr_assert_str_eq(pm_buf_cstr(&b), "12345", "cstr gives up the last byte for the NUL");
}

static void redirect(void) {
  cr_redirect_stderr();
}

Test(fmt, message_is_one_line_on_stderr, .init = redirect) {
  pm_message("hello there");
  fflush(stderr);
  cr_assert_stderr_eq_str("poolmalloc: hello there\n");
}

Test(fmt, long_message_is_cut_but_keeps_the_newline, .init = redirect) {
  static char big[2000];
  memset(big, 'z', sizeof big - 1);
  pm_message(big);
  fflush(stderr);
  char expect[600];
  int n = snprintf(expect, sizeof expect, "poolmalloc: ");
  memset(expect + n, 'z', 510 - (size_t)n);
  expect[510] = '\n';
  expect[511] = 0;
  cr_assert_stderr_eq_str(expect);
}

/* a buffer made with pm_buf_make_fd writes itself out whenever it fills:
 * text of any length goes through a small buffer whole, in order, and a
 * JSON field after a flush still knows whether it opens an object */
Test(fmt, flushes_to_fd) {
  char path[] = "/tmp/pm_unit_fmt_XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  char small[7];
  pm_buf b = pm_buf_make_fd(small, sizeof small, fd);
  pm_buf_str(&b, "{");
  pm_buf_json_field(&b, "alpha", 1);
  for (int i = 0; i < 40; i++)
    pm_buf_json_field(&b, "k", (uint64_t)i * 1000003u);
  pm_buf_str(&b, "}");
  cr_assert(pm_buf_flush(&b));
  cr_assert_not(b.truncated);
  char want[2048];
  pm_buf w = pm_buf_make(want, sizeof want);
  pm_buf_str(&w, "{");
  pm_buf_json_field(&w, "alpha", 1);
  for (int i = 0; i < 40; i++)
    pm_buf_json_field(&w, "k", (uint64_t)i * 1000003u);
  pm_buf_str(&w, "}");
  const char *expect = pm_buf_cstr(&w);
  char got[2048] = {0};
  cr_assert_eq(pread(fd, got, sizeof got - 1, 0), (ssize_t)strlen(expect));
  cr_assert_str_eq(got, expect);
  cr_assert_eq(b.want, strlen(expect));
  close(fd);
  unlink(path);

  int p[2];
  cr_assert_eq(pipe(p), 0);
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  pm_buf e = pm_buf_make_fd(small, sizeof small, p[1]);
  pm_buf_str(&e, "more than seven characters");
  cr_assert_not(pm_buf_flush(&e), "a failed write is reported");
  close(p[1]);
}
