/* test_options.c - POOLMALLOC_* parsing (options.c) through
 * pm_options_load with a fake getenv and a capturing warn callback, the
 * unknown-name check and pm_parse_size. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "options.h"

/* ---- a fake environment ---- */

#define MAX_VARS 16
static const char *env_names[MAX_VARS], *env_values[MAX_VARS];
static int env_n;

static void env_set(const char *name, const char *value) {
  cr_assert_lt(env_n, MAX_VARS);
  env_names[env_n] = name;
  env_values[env_n] = value;
  env_n++;
}

static const char *fake_getenv(const char *name) {
  for (int i = 0; i < env_n; i++)
    if (strcmp(env_names[i], name) == 0) return env_values[i];
  return NULL;
}

/* ---- captured warnings ---- */

#define MAX_WARN 16
static char warnings[MAX_WARN][512];
static int nwarn;

static void capture_warn(const char *line) {
  if (nwarn < MAX_WARN) snprintf(warnings[nwarn], sizeof warnings[0], "%s", line);
  nwarn++;
}

static pm_options load(void) {
  pm_options o;
  memset(&o, 0x5a, sizeof o); /* every field must be written */
  nwarn = 0;
  pm_options_load(&o, fake_getenv, capture_warn);
  return o;
}

/* loads with one variable set */
static pm_options load1(const char *name, const char *value) {
  env_n = 0;
  env_set(name, value);
  return load();
}

static void expect_one_warning(const char *want) {
  cr_assert_eq(nwarn, 1, "expected exactly one warning (%s), got %d: first '%s'", want,
               nwarn, nwarn ? warnings[0] : "");
  cr_assert_str_eq(warnings[0], want);
}

static void expect_no_warning(void) {
  cr_assert_eq(nwarn, 0, "unexpected warning: %s", nwarn ? warnings[0] : "");
}

/* ---- defaults ---- */

Test(options, defaults_when_nothing_is_set) {
  env_n = 0;
  pm_options o = load();
  expect_no_warning();
  cr_assert_eq(o.pool_size, 65536);
  cr_assert_eq(o.max_pooled, 32768, "0 means POOL_SIZE/2");
  cr_assert_eq(o.disable, 0);
  cr_assert_eq(o.verbose, 0);
  cr_assert_eq(o.stats, PM_STATS_OFF);
  cr_assert_eq(o.stats_file, 0);
  cr_assert_null(o.stats_file_str);
  cr_assert_eq(o.decay_ms, 1000);
  cr_assert_eq(o.region_size, 32 * PM_GiB);
}

Test(options, table_is_consistent) {
  static const char *expected[] = {"POOL_SIZE", "MAX_POOLED", "DISABLE",  "VERBOSE",
                                   "STATS",     "STATS_FILE", "DECAY_MS", "REGION_SIZE"};
  for (size_t e = 0; e < sizeof expected / sizeof expected[0]; e++) {
    int found = 0;
    for (size_t i = 0; i < pm_option_count; i++)
      found += strcmp(pm_option_table[i].name, expected[e]) == 0;
    cr_assert_eq(found, 1, "POOLMALLOC_%s listed %d times", expected[e], found);
  }
  for (size_t i = 0; i < pm_option_count; i++) {
    for (size_t j = 0; j < i; j++)
      cr_assert_str_neq(pm_option_table[i].name, pm_option_table[j].name);
    const pm_option_info *o = &pm_option_table[i];
    cr_assert(o->name[0] != 0 && strlen(o->name) < sizeof o->name, "a name, terminated");
    cr_assert(o->offset + sizeof(uint64_t) <= offsetof(pm_options, stats_file_str), "%s",
              o->name);
    if (o->kind != PM_OPT_STRING)
      cr_assert(o->def == 0 || (o->def >= o->lo && o->def <= o->hi),
                "%s default in range", o->name);
  }
}

/* ---- good values ---- */

struct good {
  const char *name, *value;
  size_t offset;
  uint64_t want;
};

Test(options, good_values_parse) {
  static const struct good cases[] = {
      {"POOLMALLOC_POOL_SIZE", "64K", offsetof(pm_options, pool_size), 65536},
      {"POOLMALLOC_POOL_SIZE", "1MiB", offsetof(pm_options, pool_size), 1 << 20},
      {"POOLMALLOC_POOL_SIZE", "65536", offsetof(pm_options, pool_size), 65536},
      {"POOLMALLOC_POOL_SIZE", "1m", offsetof(pm_options, pool_size), 1 << 20},
      {"POOLMALLOC_POOL_SIZE", "4096", offsetof(pm_options, pool_size), 4096},
      {"POOLMALLOC_POOL_SIZE", "16kb", offsetof(pm_options, pool_size), 16384},
      {"POOLMALLOC_REGION_SIZE", "2G", offsetof(pm_options, region_size), 2 * PM_GiB},
      {"POOLMALLOC_REGION_SIZE", "4T", offsetof(pm_options, region_size), 4096 * PM_GiB},
      {"POOLMALLOC_REGION_SIZE", "64M", offsetof(pm_options, region_size), 64 * PM_MiB},
      {"POOLMALLOC_MAX_POOLED", "1K", offsetof(pm_options, max_pooled), 1024},
      {"POOLMALLOC_MAX_POOLED", "65536", offsetof(pm_options, max_pooled), 65536},
      {"POOLMALLOC_DECAY_MS", "0", offsetof(pm_options, decay_ms), 0},
      {"POOLMALLOC_DECAY_MS", "3600000", offsetof(pm_options, decay_ms), 3600000},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    pm_options o = load1(cases[i].name, cases[i].value);
    uint64_t got = *(uint64_t *)((char *)&o + cases[i].offset);
    cr_assert_eq(got, cases[i].want, "%s='%s': got %llu", cases[i].name, cases[i].value,
                 (unsigned long long)got);
    expect_no_warning();
  }
}

Test(options, max_pooled_defaults_to_half_the_pool_size) {
  pm_options o = load1("POOLMALLOC_POOL_SIZE", "4K");
  expect_no_warning();
  cr_assert_eq(o.pool_size, 4096);
  cr_assert_eq(o.max_pooled, 2048);
  env_n = 0;
  env_set("POOLMALLOC_POOL_SIZE", "1M");
  env_set("POOLMALLOC_MAX_POOLED", "1M");
  o = load();
  expect_no_warning();
  cr_assert_eq(o.max_pooled, 1 << 20, "MAX_POOLED == POOL_SIZE is allowed");
}

/* ---- bad values: default kept, one warning naming variable, value, default ---- */

struct bad {
  const char *name, *value;
  size_t offset;
  const char *warning;
};

static void check_bad(const struct bad *c) {
  pm_options o = load1(c->name, c->value);
  env_n = 0;
  pm_options d = load();
  uint64_t got = *(uint64_t *)((char *)&o + c->offset);
  uint64_t def = *(uint64_t *)((char *)&d + c->offset);
  load1(c->name, c->value);
  cr_assert_eq(got, def, "%s='%s': default %llu not kept (got %llu)", c->name, c->value,
               (unsigned long long)def, (unsigned long long)got);
  expect_one_warning(c->warning);
}

Test(options, bad_sizes_keep_the_default_with_one_warning) {
  static const struct bad cases[] = {
      {"POOLMALLOC_POOL_SIZE", "", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='' is not a size; using 65536"},
      {"POOLMALLOC_POOL_SIZE", "12x", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='12x' is not a size; using 65536"},
      {"POOLMALLOC_POOL_SIZE", "-1", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='-1' is not a size; using 65536"},
      {"POOLMALLOC_POOL_SIZE", "99999999999999999999999", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='99999999999999999999999' is not a size; using 65536"},
      {"POOLMALLOC_POOL_SIZE", "64 K", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='64 K' is not a size; using 65536"},
      {"POOLMALLOC_POOL_SIZE", "64KiBs", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='64KiBs' is not a size; using 65536"},
      {"POOLMALLOC_POOL_SIZE", "3000", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='3000' is out of range [4096, 1048576]; using 65536"},
      {"POOLMALLOC_POOL_SIZE", "2M", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='2M' is out of range [4096, 1048576]; using 65536"},
      {"POOLMALLOC_POOL_SIZE", "50000", offsetof(pm_options, pool_size),
       "POOLMALLOC_POOL_SIZE='50000' is not a power of two; using 65536"},
      {"POOLMALLOC_REGION_SIZE", "1M", offsetof(pm_options, region_size),
       "POOLMALLOC_REGION_SIZE='1M' is out of range [67108864, 4398046511104]; using "
       "34359738368"},
      {"POOLMALLOC_MAX_POOLED", "2M", offsetof(pm_options, max_pooled),
       "POOLMALLOC_MAX_POOLED='2M' is out of range [0, 1048576]; using 0"},
      {"POOLMALLOC_DECAY_MS", "12x", offsetof(pm_options, decay_ms),
       "POOLMALLOC_DECAY_MS='12x' is not a number; using 1000"},
      {"POOLMALLOC_DECAY_MS", "1s", offsetof(pm_options, decay_ms),
       "POOLMALLOC_DECAY_MS='1s' is not a number; using 1000"},
      {"POOLMALLOC_DECAY_MS", "-5", offsetof(pm_options, decay_ms),
       "POOLMALLOC_DECAY_MS='-5' is not a number; using 1000"},
      {"POOLMALLOC_DECAY_MS", "", offsetof(pm_options, decay_ms),
       "POOLMALLOC_DECAY_MS='' is not a number; using 1000"},
      {"POOLMALLOC_DECAY_MS", "3600001", offsetof(pm_options, decay_ms),
       "POOLMALLOC_DECAY_MS='3600001' is out of range [0, 3600000]; using 1000"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_bad(&cases[i]);
}

Test(options, booleans) {
  static const struct {
    const char *value;
    uint64_t want;
  } good[] = {{"on", 1}, {"off", 0}, {"yes", 1}, {"no", 0},   {"1", 1},
              {"0", 0},  {"ON", 1},  {"Off", 0}, {"true", 1}, {"false", 0}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    pm_options o = load1("POOLMALLOC_DISABLE", good[i].value);
    expect_no_warning();
    cr_assert_eq(o.disable, good[i].want, "DISABLE='%s'", good[i].value);
    o = load1("POOLMALLOC_VERBOSE", good[i].value);
    expect_no_warning();
    cr_assert_eq(o.verbose, good[i].want, "VERBOSE='%s'", good[i].value);
  }
  static const struct bad bad[] = {
      {"POOLMALLOC_DISABLE", "bad", offsetof(pm_options, disable),
       "POOLMALLOC_DISABLE='bad' is not a switch word (0, 1, on, off, yes, no, true, "
       "false); using 0 (off)"},
      {"POOLMALLOC_DISABLE", "", offsetof(pm_options, disable),
       "POOLMALLOC_DISABLE='' is not a switch word (0, 1, on, off, yes, no, true, "
       "false); using 0 (off)"},
      {"POOLMALLOC_DISABLE", "2", offsetof(pm_options, disable),
       "POOLMALLOC_DISABLE='2' is not a switch word (0, 1, on, off, yes, no, true, "
       "false); using 0 (off)"},
      {"POOLMALLOC_VERBOSE", "onn", offsetof(pm_options, verbose),
       "POOLMALLOC_VERBOSE='onn' is not a switch word (0, 1, on, off, yes, no, true, "
       "false); using 0 (off)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    check_bad(&bad[i]);
}

Test(options, stats) {
  static const struct {
    const char *value;
    uint64_t want;
  } good[] = {{"text", PM_STATS_TEXT}, {"json", PM_STATS_JSON}, {"JSON", PM_STATS_JSON},
              {"1", PM_STATS_TEXT},    {"0", PM_STATS_OFF},     {"off", PM_STATS_OFF},
              {"on", PM_STATS_TEXT}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    pm_options o = load1("POOLMALLOC_STATS", good[i].value);
    expect_no_warning();
    cr_assert_eq(o.stats, good[i].want, "STATS='%s'", good[i].value);
  }
  static const struct bad bad[] = {
      {"POOLMALLOC_STATS", "bad", offsetof(pm_options, stats),
       "POOLMALLOC_STATS='bad' is not one of off, text, json (or a switch word: 0, 1, "
       "on, off, yes, no, true, false); using 0 (off)"},
      {"POOLMALLOC_STATS", "2", offsetof(pm_options, stats),
       "POOLMALLOC_STATS='2' is not one of off, text, json (or a switch word: 0, 1, on, "
       "off, yes, no, true, false); using 0 (off)"},
      {"POOLMALLOC_STATS", "xml", offsetof(pm_options, stats),
       "POOLMALLOC_STATS='xml' is not one of off, text, json (or a switch word: 0, 1, "
       "on, off, yes, no, true, false); using 0 (off)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    check_bad(&bad[i]);
}

Test(options, stats_signal) {
  static const struct {
    const char *value;
    uint64_t want;
  } good[] = {{"USR2", 12}, {"usr1", 10}, {"SIGUSR1", 10}, {"sigusr2", 12}, {"12", 12},
              {"0", 0},     {"off", 0},   {"SIGHUP", 1},   {"64", 64}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    pm_options o = load1("POOLMALLOC_STATS_SIGNAL", good[i].value);
    expect_no_warning();
    cr_assert_eq(o.stats_signal, good[i].want, "STATS_SIGNAL='%s'", good[i].value);
  }
  static const struct bad bad[] = {
      {"POOLMALLOC_STATS_SIGNAL", "FOO", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='FOO' is not a catchable signal name or number; using 0 "
       "(none)"},
      {"POOLMALLOC_STATS_SIGNAL", "SIG", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='SIG' is not a catchable signal name or number; using 0 "
       "(none)"},
      {"POOLMALLOC_STATS_SIGNAL", "USR22", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='USR22' is not a catchable signal name or number; using "
       "0 (none)"},
      /* the fuzzer found these taken for USR1/USR2: '1' + 32 is 'Q', '2' + 32 is 'R' */
      {"POOLMALLOC_STATS_SIGNAL", "USRQ", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='USRQ' is not a catchable signal name or number; using "
       "0 (none)"},
      {"POOLMALLOC_STATS_SIGNAL", "SIGUSRR", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='SIGUSRR' is not a catchable signal name or number; "
       "using 0 (none)"},
      {"POOLMALLOC_STATS_SIGNAL", "on", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='on' is not a catchable signal name or number; using 0 "
       "(none)"},
      {"POOLMALLOC_STATS_SIGNAL", "65", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='65' is out of range [0, 64]; using 0 (none)"},
      {"POOLMALLOC_STATS_SIGNAL", "9", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='9' is not a catchable signal name or number; using 0 "
       "(none)"},
      {"POOLMALLOC_STATS_SIGNAL", "19", offsetof(pm_options, stats_signal),
       "POOLMALLOC_STATS_SIGNAL='19' is not a catchable signal name or number; using 0 "
       "(none)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    check_bad(&bad[i]);
}

Test(options, stats_file) {
  pm_options o = load1("POOLMALLOC_STATS_FILE", "/tmp/pm.%p");
  expect_no_warning();
  cr_assert_eq(o.stats_file, 1);
  cr_assert_str_eq(o.stats_file_str, "/tmp/pm.%p");
  o = load1("POOLMALLOC_STATS_FILE", "");
  expect_no_warning();
  cr_assert_eq(o.stats_file, 0);
  cr_assert_null(o.stats_file_str);
}

Test(options, max_pooled_larger_than_pool_size) {
  env_n = 0;
  env_set("POOLMALLOC_POOL_SIZE", "65536");
  env_set("POOLMALLOC_MAX_POOLED", "131072");
  pm_options o = load();
  expect_one_warning("POOLMALLOC_MAX_POOLED='131072' is larger than POOLMALLOC_POOL_SIZE "
                     "(65536); using 32768");
  cr_assert_eq(o.pool_size, 65536);
  cr_assert_eq(o.max_pooled, 32768);

  /* against a smaller page, with the default pool size rejected first */
  env_n = 0;
  env_set("POOLMALLOC_POOL_SIZE", "4K");
  env_set("POOLMALLOC_MAX_POOLED", "8192");
  o = load();
  expect_one_warning("POOLMALLOC_MAX_POOLED='8192' is larger than POOLMALLOC_POOL_SIZE "
                     "(4096); using 2048");
  cr_assert_eq(o.max_pooled, 2048);
}

Test(options, one_warning_per_bad_variable) {
  env_n = 0;
  env_set("POOLMALLOC_POOL_SIZE", "12x");
  env_set("POOLMALLOC_DISABLE", "maybe");
  env_set("POOLMALLOC_STATS", "bad");
  env_set("POOLMALLOC_DECAY_MS", "5");
  pm_options o = load();
  cr_assert_eq(nwarn, 3);
  cr_assert_eq(o.pool_size, 65536);
  cr_assert_eq(o.disable, 0);
  cr_assert_eq(o.stats, 0);
  cr_assert_eq(o.decay_ms, 5);
  for (int i = 0; i < nwarn; i++)
    cr_assert_eq(strncmp(warnings[i], "POOLMALLOC_", 11), 0);
}

Test(options, long_values_are_cut_in_the_warning) {
  static char big[300];
  memset(big, '7', sizeof big - 2);
  big[sizeof big - 2] = 'x';
  pm_options o = load1("POOLMALLOC_POOL_SIZE", big);
  cr_assert_eq(o.pool_size, 65536);
  cr_assert_eq(nwarn, 1);
  cr_assert_lt(strlen(warnings[0]), 200,
               "warning quotes at most 64 characters of the value");
  cr_assert(strstr(warnings[0], "; using 65536") != NULL, "%s", warnings[0]);
}

/* ---- unknown POOLMALLOC_ names ---- */

Test(options, check_unknown) {
  char *env[] = {"PATH=/bin",
                 "POOLMALLOC_TYPO=1",
                 "POOLMALLOC_POOL_SIZE=64K",
                 "POOLMALLOC_POOL_SIZEX=1",
                 "POOLMALLOC_STATS_FILE=/tmp/x",
                 "XPOOLMALLOC_FOO=1",
                 NULL};
  nwarn = 0;
  pm_options_check_unknown(env, capture_warn);
  cr_assert_eq(nwarn, 2);
  cr_assert_eq(strncmp(warnings[0], "POOLMALLOC_TYPO is not a poolmalloc setting", 43), 0,
               "%s", warnings[0]);
  cr_assert(strncmp(warnings[1], "POOLMALLOC_POOL_SIZEX is not", 28) == 0, "%s",
            warnings[1]);
  nwarn = 0;
  pm_options_check_unknown(NULL, capture_warn);
  cr_assert_eq(nwarn, 0);
  for (size_t i = 0; i < pm_option_count; i++) {
    char line[64];
    char *one[] = {line, NULL};
    snprintf(line, sizeof line, "POOLMALLOC_%s=1", pm_option_table[i].name);
    pm_options_check_unknown(one, capture_warn);
  }
  cr_assert_eq(nwarn, 0, "known name reported: %s", nwarn ? warnings[0] : "");
}

/* ---- pm_parse_size ---- */

Test(options, parse_size_accepts) {
  static const struct {
    const char *s;
    uint64_t v;
  } ok[] = {
      {"0", 0},
      {"1", 1},
      {"4096", 4096},
      {"64K", 64 << 10},
      {"64k", 64 << 10},
      {"64KB", 64 << 10},
      {"64kb", 64 << 10},
      {"64KiB", 64 << 10},
      {"64kib", 64 << 10},
      {"1M", 1 << 20},
      {"1MiB", 1 << 20},
      {"3G", 3 * PM_GiB},
      {"2T", 2048 * PM_GiB},
      {" 8K", 8192},
      {"18446744073709551615", UINT64_MAX},
      {"16777215T", (uint64_t)16777215 << 40},
      {"017", 17},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    uint64_t v = 12345;
    cr_assert(pm_parse_size(ok[i].s, &v), "'%s' rejected", ok[i].s);
    cr_assert_eq(v, ok[i].v, "'%s' -> %llu", ok[i].s, (unsigned long long)v);
  }
}

Test(options, parse_size_rejects) {
  static const char *bad[] = {"",
                              " ",
                              "K",
                              "-1",
                              "+1",
                              "12x",
                              "1.5M",
                              "64 K",
                              "64K ",
                              "64KiBs",
                              "64Kx",
                              "64iB",
                              "64B",
                              "0x10",
                              "1P",
                              "18446744073709551616",
                              "99999999999999999999999",
                              "16777216T",
                              "17179869184G",
                              "64KK"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t v = 777;
    cr_assert_not(pm_parse_size(bad[i], &v), "'%s' accepted as %llu", bad[i],
                  (unsigned long long)v);
    cr_assert_eq(v, 777, "'%s': output written on failure", bad[i]);
  }
}

/* one rule for every switch (issue 17.3): the same words, any case, for
 * DISABLE, VERBOSE, STATS, CHECK and the LIFETIME level; a warning names
 * the accepted words and the default by name */
Test(options, one_rule_for_every_switch) {
  static const char *on[] = {"1", "on", "ON", "yes", "Yes", "true", "TRUE"};
  static const char *off[] = {"0", "off", "Off", "no", "NO", "false", "False"};
  for (size_t i = 0; i < 7; i++) {
    cr_assert_eq(load1("POOLMALLOC_DISABLE", on[i]).disable, 1, "%s", on[i]);
    cr_assert_eq(load1("POOLMALLOC_VERBOSE", on[i]).verbose, 1, "%s", on[i]);
    cr_assert_eq(load1("POOLMALLOC_STATS", on[i]).stats, PM_STATS_TEXT, "%s", on[i]);
    cr_assert_eq(load1("POOLMALLOC_CHECK", on[i]).check, PM_CHECK_FULL, "%s", on[i]);
    cr_assert_eq(load1("POOLMALLOC_LIFETIME", on[i]).lifetime, 1, "%s", on[i]);
    expect_no_warning();
    cr_assert_eq(load1("POOLMALLOC_DISABLE", off[i]).disable, 0, "%s", off[i]);
    cr_assert_eq(load1("POOLMALLOC_STATS", off[i]).stats, PM_STATS_OFF, "%s", off[i]);
    cr_assert_eq(load1("POOLMALLOC_CHECK", off[i]).check, PM_CHECK_DEFAULT, "%s", off[i]);
    cr_assert_eq(load1("POOLMALLOC_LIFETIME", off[i]).lifetime, 0, "%s", off[i]);
    expect_no_warning();
  }
  cr_assert_eq(load1("POOLMALLOC_LIFETIME", "2").lifetime, 2);
  load1("POOLMALLOC_CHECK", "paranoid");
  expect_one_warning(
      "POOLMALLOC_CHECK='paranoid' is not one of default, full (or a switch "
      "word: 0, 1, on, off, yes, no, true, false); using default");
  load1("POOLMALLOC_LIFETIME", "sometimes");
  expect_one_warning(
      "POOLMALLOC_LIFETIME='sometimes' is not a number or a switch word (0, "
      "1, on, off, yes, no, true, false); using 2");
}
