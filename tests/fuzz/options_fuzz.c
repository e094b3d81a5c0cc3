/* options_fuzz.c - libFuzzer target for the POOLMALLOC_* parser (options.c).
 *
 * An input is a list of lines, NAME=VALUE each (NAME gets the POOLMALLOC_
 * prefix unless it has it; lines without '=' are skipped), which becomes
 * the environment seen through pm_options_load's getenv callback and by
 * pm_options_check_unknown. Asserted, for any input:
 *   - nothing crashes and nothing allocates (pm_options_load promises to
 *     run inside the first malloc of a process);
 *   - every option ends within [lo, hi] of the table (MAX_POOLED: 1 ..
 *     POOL_SIZE, since 0 means POOL_SIZE/2; POOL_SIZE a power of two;
 *     STATS_SIGNAL a catchable signal; STATS_FILE 0/1 and its string);
 *   - warn is called at most once per variable, with one well-formed line;
 *   - an independent reference parser, written from the documented syntax,
 *     agrees on every value: accepted and equal, or warned about and the
 *     default used;
 *   - the effective options round-trip: pm_option_format of every option,
 *     loaded again, gives the same options and no warning;
 *   - pm_options_check_unknown warns once per unknown POOLMALLOC_ name;
 *   - pm_parse_size, on the raw input and on every value, agrees with the
 *     reference.
 *
 *   clang build: CC=clang cmake -DPOOLMALLOC_LIBFUZZER=ON ..., target
 *   fuzz_options_libfuzzer; seeds in tests/fuzz/corpus/options. */
#define _GNU_SOURCE
#include <sanitizer/allocator_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "options.h"

#define PREFIX "POOLMALLOC_"
#define PREFIX_LEN (sizeof PREFIX - 1)
#define MAX_VARS 64
#define MAX_WARN 256
#define MAX_OPTS 64

static void die(const char *what, const char *detail) {
  fprintf(stderr, "options_fuzz: %s: %s\n", what, detail ? detail : "");
  abort();
}

/* ---- the fake environment ---- */

static char *env[MAX_VARS + 1]; /* "POOLMALLOC_NAME=VALUE", NULL-terminated */
static size_t env_n;

static const char *fake_getenv(const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; i < env_n; i++) /* the first match, as glibc's getenv */
    if (strncmp(env[i], name, len) == 0 && env[i][len] == '=') return env[i] + len + 1;
  return NULL;
}

/* ---- captured warnings ---- */

static char warnings[MAX_WARN][512];
static size_t nwarn;

static void capture_warn(const char *line) {
  size_t len = strnlen(line, 1000);
  if (len >= 400) die("warning longer than any warning buffer", line);
  if (strncmp(line, PREFIX, PREFIX_LEN) != 0)
    die("warning without the POOLMALLOC_ name", line);
  if (nwarn < MAX_WARN) memcpy(warnings[nwarn], line, len + 1);
  nwarn++;
}

/* warnings about POOLMALLOC_<name>: the name is followed by '=' or ' ' */
static size_t warnings_about(const char *name) {
  size_t len = strlen(name), n = 0;
  for (size_t i = 0; i < nwarn && i < MAX_WARN; i++) {
    const char *w = warnings[i] + PREFIX_LEN;
    if (strncmp(w, name, len) == 0 && (w[len] == '=' || w[len] == ' ')) n++;
  }
  return n;
}

/* ---- allocation counting (ASan's malloc hooks) ---- */

/* per thread: libFuzzer's own threads (the RSS watcher) allocate too */
static _Thread_local int counting;
static _Thread_local size_t allocations;

static void malloc_hook(const volatile void *p, size_t size) {
  (void)p;
  (void)size;
  if (counting) allocations++;
}
static void free_hook(const volatile void *p) {
  (void)p;
}

static void load(pm_options *o) {
  memset(o, 0x5a, sizeof *o); /* every field must be written */
  nwarn = 0;
  allocations = 0;
  counting = 1;
  pm_options_load(o, fake_getenv, capture_warn);
  counting = 0;
  if (allocations) die("pm_options_load", "allocated memory");
}

/* ---- the reference parser, from the documented syntax ---- */

static bool ref_u64(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (*s == 0) return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    if (__builtin_mul_overflow(v, 10, &v) ||
        __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
      return false;
  }
  *out = v;
  return true;
}

/* " *[0-9]+([KMGT](B|iB)?)?", case-insensitive units, binary multiples (the
 * leading blanks are what options.c has always accepted) */
static bool ref_size(const char *s, uint64_t *out) {
  while (*s == ' ')
    s++;
  size_t digits = strspn(s, "0123456789");
  if (digits == 0) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < digits; i++)
    if (__builtin_mul_overflow(v, 10, &v) ||
        __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
      return false;
  const char *u = s + digits;
  if (*u == 0) return (*out = v), true;
  static const char units[] = "kmgt";
  const char *k = strchr(units, u[0] | 0x20);
  if (u[0] == 0 || k == NULL ||
      !((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')))
    return false;
  const char *rest = u + 1;
  if (!(strcasecmp(rest, "") == 0 || strcasecmp(rest, "b") == 0 ||
        strcasecmp(rest, "ib") == 0))
    return false;
  unsigned shift = 10 * (unsigned)(k - units + 1);
  if (v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

static bool ref_bool(const char *s, uint64_t *out) {
  static const char *yes[] = {"1", "on", "yes", "true"},
                    *no[] = {"0", "off", "no", "false"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) return (*out = 1), true;
    if (strcasecmp(s, no[i]) == 0) return (*out = 0), true;
  }
  return false;
}

/* a number (not KILL, STOP, 32, 33), "0"/"off"..., or a name from
 * pm_signal_name with or without SIG, any case */
static bool ref_signal(const char *s, uint64_t *out) {
  uint64_t v;
  if (ref_u64(s, &v))
    return v != 9 && v != 19 && v != 32 && v != 33 && ((*out = v), true);
  if (ref_bool(s, &v) && v == 0) return (*out = 0), true;
  const char *n = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
  for (int sig = 1; sig <= 64; sig++) {
    const char *name = pm_signal_name(sig);
    if (name && strcasecmp(n, name) == 0) return (*out = (uint64_t)sig), true;
  }
  return false;
}

/* false: the value is not of the kind's syntax; *known false: a kind this
 * reference does not know (a new one), nothing is compared */
static bool ref_parse(const pm_option_info *info, const char *s, uint64_t *out,
                      bool *known) {
  *known = true;
  switch (info->kind) {
  case PM_OPT_SIZE:
    return ref_size(s, out);
  case PM_OPT_UINT: /* a number; with PM_OPTF_SWITCH also the switch words */
    return ref_u64(s, out) || ((info->flags & PM_OPTF_SWITCH) && ref_bool(s, out));
  case PM_OPT_BOOL:
    return ref_bool(s, out);
  case PM_OPT_STATS:
    if (strcasecmp(s, "text") == 0) return (*out = PM_STATS_TEXT), true;
    if (strcasecmp(s, "json") == 0) return (*out = PM_STATS_JSON), true;
    return ref_bool(s, out);
  case PM_OPT_SIGNAL:
    return ref_signal(s, out);
  case PM_OPT_CHECK:
    if (strcasecmp(s, "default") == 0) return (*out = PM_CHECK_DEFAULT), true;
    if (strcasecmp(s, "full") == 0) return (*out = PM_CHECK_FULL), true;
    return ref_bool(s, out); /* one rule for every switch: on is full */
  default:
    *known = false;
    return false;
  }
}

/* ---- the checks ---- */

static uint64_t field(const pm_options *o, size_t i) {
  return *(const uint64_t *)((const char *)o + pm_option_table[i].offset);
}

static void fail_opt(size_t i, const char *value, const char *why, uint64_t got) {
  char d[600];
  snprintf(d, sizeof d,
           "POOLMALLOC_%s='%.300s': %s (effective value %llu, %zu warning(s)%s%s)",
           pm_option_table[i].name, value ? value : "(unset)", why,
           (unsigned long long)got, nwarn, nwarn ? ": " : "", nwarn ? warnings[0] : "");
  die("pm_options_load", d);
}

static void check_options(const pm_options *o) {
  const size_t i_pool = 0, i_max = 1; /* the table's first two rows */
  if (strcmp(pm_option_table[i_pool].name, "POOL_SIZE") != 0 ||
      strcmp(pm_option_table[i_max].name, "MAX_POOLED") != 0)
    die("option table", "POOL_SIZE and MAX_POOLED are no longer its first rows");
  uint64_t pool = o->pool_size;
  for (size_t i = 0; i < pm_option_count; i++) {
    const pm_option_info *info = &pm_option_table[i];
    char name[80];
    snprintf(name, sizeof name, PREFIX "%s", info->name);
    const char *value = fake_getenv(name);
    uint64_t v = field(o, i);
    size_t warned = warnings_about(info->name);
    if (warned > 1) fail_opt(i, value, "warned about more than once", v);

    if (info->kind == PM_OPT_STRING) {
      bool set = value && *value;
      if (warned) fail_opt(i, value, "a string option was warned about", v);
      if (v != (uint64_t)set)
        fail_opt(i, value, "flag does not say whether it is set", v);
      if (set ? o->stats_file_str != value : o->stats_file_str != NULL)
        fail_opt(i, value, "string does not point to the value", v);
      continue;
    }

    /* the range; MAX_POOLED's 0 became POOL_SIZE/2 */
    if (i == i_max) {
      if (v == 0 || v > pool || v > info->hi)
        fail_opt(i, value, "not in 1 .. POOL_SIZE", v);
    } else if (v < info->lo || v > info->hi) {
      fail_opt(i, value, "out of the table's range", v);
    }
    if (i == i_pool && (v & (v - 1)) != 0) fail_opt(i, value, "not a power of two", v);
    if (info->kind == PM_OPT_SIGNAL && (v == 9 || v == 19 || v == 32 || v == 33))
      fail_opt(i, value, "not a catchable signal", v);

    /* what the reference expects */
    uint64_t def = i == i_max && info->def == 0 ? pool / 2 : info->def;
    if (value == NULL) {
      if (warned) fail_opt(i, value, "warned about though unset", v);
      if (v != def) fail_opt(i, value, "unset but not the default", v);
      continue;
    }
    uint64_t want;
    bool known, ok = ref_parse(info, value, &want, &known);
    if (!known) continue;
    bool bad = !ok || want < info->lo || want > info->hi ||
               (i == i_pool && (want & (want - 1)) != 0) ||
               (i == i_max && want > pool); /* the cross-option rule */
    if (bad) {
      if (!warned) fail_opt(i, value, "a bad value was accepted without a warning", v);
      if (v != def) fail_opt(i, value, "a bad value did not give the default", v);
    } else {
      if (warned) fail_opt(i, value, "a good value was warned about", v);
      if (i == i_max && want == 0) want = pool / 2;
      if (v != want) {
        char why[96];
        snprintf(why, sizeof why, "parsed differently from the reference (%llu)",
                 (unsigned long long)want);
        fail_opt(i, value, why, v);
      }
    }
  }
  /* every warning is about a variable that is set */
  for (size_t w = 0; w < nwarn && w < MAX_WARN; w++) {
    bool about_set = false;
    for (size_t i = 0; i < pm_option_count && !about_set; i++) {
      char name[80];
      snprintf(name, sizeof name, PREFIX "%s", pm_option_table[i].name);
      size_t len = strlen(name);
      about_set = strncmp(warnings[w], name, len) == 0 &&
                  (warnings[w][len] == '=' || warnings[w][len] == ' ') &&
                  fake_getenv(name);
    }
    if (!about_set) die("a warning about no variable that is set", warnings[w]);
  }
}

/* every effective option, formatted and loaded again, is the same */
static void check_round_trip(const pm_options *o) {
  static char text[MAX_OPTS][PREFIX_LEN + 64 + 4200];
  char *saved[MAX_VARS + 1];
  size_t saved_n = env_n;
  memcpy(saved, env, sizeof env);
  if (pm_option_count > MAX_OPTS) die("option table", "more than MAX_OPTS rows");
  env_n = 0;
  for (size_t i = 0; i < pm_option_count; i++) {
    pm_buf b = pm_buf_make(text[i], sizeof text[i]);
    pm_buf_str(&b, PREFIX);
    pm_buf_str(&b, pm_option_table[i].name);
    pm_buf_char(&b, '=');
    pm_option_format(&b, o, i);
    if (b.truncated) die("round trip", "a formatted option did not fit");
    pm_buf_cstr(&b);
    env[env_n++] = text[i];
  }
  env[env_n] = NULL;
  pm_options again;
  load(&again);
  if (nwarn) die("round trip: the formatted options gave a warning", warnings[0]);
  for (size_t i = 0; i < pm_option_count; i++)
    if (field(&again, i) != field(o, i)) die("round trip: an option changed", text[i]);
  if ((o->stats_file_str == NULL) != (again.stats_file_str == NULL) ||
      (o->stats_file_str && strcmp(o->stats_file_str, again.stats_file_str) != 0))
    die("round trip", "POOLMALLOC_STATS_FILE changed");
  memcpy(env, saved, sizeof env);
  env_n = saved_n;
}

static void check_unknown(void) {
  size_t unknown = 0;
  for (size_t e = 0; e < env_n; e++) {
    const char *name = env[e] + PREFIX_LEN;
    size_t len = strcspn(name, "=");
    bool known = len == 3 && strncmp(name, "LIB", 3) == 0; /* the wrapper's */
    for (size_t i = 0; i < pm_option_count && !known; i++)
      known = strlen(pm_option_table[i].name) == len &&
              strncmp(pm_option_table[i].name, name, len) == 0;
    unknown += !known;
  }
  nwarn = 0;
  allocations = 0;
  counting = 1;
  pm_options_check_unknown(env, capture_warn);
  counting = 0;
  if (allocations) die("pm_options_check_unknown", "allocated memory");
  if (nwarn != unknown) {
    char d[160];
    snprintf(d, sizeof d, "%zu warning(s) for %zu unknown name(s)", nwarn, unknown);
    die("pm_options_check_unknown", d);
  }
  for (size_t w = 0; w < nwarn && w < MAX_WARN; w++) {
    const char *tail = " is not a poolmalloc setting; ignored";
    size_t len = strlen(warnings[w]), tl = strlen(tail);
    if (len < tl || strcmp(warnings[w] + len - tl, tail) != 0)
      die("pm_options_check_unknown: malformed warning", warnings[w]);
  }
}

static void check_size(const char *s) {
  uint64_t got = 0x5a5a, want = 0;
  bool ok = pm_parse_size(s, &got), ref = ref_size(s, &want);
  if (ok != ref || (ok && got != want)) {
    char d[400];
    snprintf(d, sizeof d, "'%.200s': %s %llu, the reference %s %llu", s,
             ok ? "accepted" : "rejected", (unsigned long long)got,
             ref ? "accepts" : "rejects", (unsigned long long)want);
    die("pm_parse_size", d);
  }
}

/* ---- the fuzz target ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  __sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char raw[1 << 16];
  static char lines[MAX_VARS][PREFIX_LEN + 4096 + 1];
  if (size >= sizeof raw) return 0;
  memcpy(raw, data, size);
  raw[size] = 0;
  check_size(raw); /* up to the first NUL */

  env_n = 0;
  const char *p = (const char *)data, *end = p + size;
  while (p < end && env_n < MAX_VARS) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    const char *eq = memchr(p, '=', len);
    /* skip lines without '=', with a NUL (environ strings end there) or too long */
    if (eq && !memchr(p, 0, len) && len <= 4096) {
      char *l = lines[env_n];
      size_t pre =
          len >= PREFIX_LEN && memcmp(p, PREFIX, PREFIX_LEN) == 0 ? 0 : PREFIX_LEN;
      memcpy(l, PREFIX, pre);
      memcpy(l + pre, p, len);
      l[pre + len] = 0;
      env[env_n++] = l;
      check_size(strchr(l, '=') + 1);
    }
    p += len + 1;
  }
  env[env_n] = NULL;

  pm_options o;
  load(&o);
  check_options(&o);
  check_round_trip(&o);
  check_unknown();
  return 0;
}
