/* options.c - parsing and validating POOLMALLOC_* variables (see options.h).
 *
 * A bad value never crashes and is never silently ignored: it gets one line
 * naming the variable, the value and the default used instead. Parsing reads
 * environ directly and never allocates, so it can run inside the first
 * malloc of the process. */
#include "options.h"
#include "fmt.h"
#include "os.h"

#include <signal.h>
#include <stddef.h>
#include <string.h>

const pm_option_info pm_option_table[] = {
#define PM_OPT_INFO(NAME, field, kind, flags, def, lo, hi, help)                         \
  {#NAME, kind, flags, def, lo, hi, offsetof(pm_options, field)},
    PM_OPTIONS(PM_OPT_INFO)
#undef PM_OPT_INFO
};
const size_t pm_option_count = sizeof pm_option_table / sizeof pm_option_table[0];

pm_options pm_opt = {
#define PM_OPT_DEFAULT(NAME, field, kind, flags, def, lo, hi, help) .field = def,
    PM_OPTIONS(PM_OPT_DEFAULT)
#undef PM_OPT_DEFAULT
};

static bool parse_u64(const char **sp, uint64_t *out) {
  const char *s = *sp;
  uint64_t v = 0;
  if (*s < '0' || *s > '9') return false;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) return false;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *sp = s;
  *out = v;
  return true;
}

static bool ieq(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
    if (x != *b) return false;
  }
  return *a == 0 && *b == 0;
}

bool pm_parse_size(const char *s, uint64_t *out) {
  uint64_t v;
  while (*s == ' ')
    s++;
  if (!parse_u64(&s, &v)) return false;
  unsigned shift = 0;
  if (*s != 0) {
    /* accepted suffixes: K M G T, KB KiB, MB MiB ... (binary multiples) */
    char c = *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
    const char *units = "KMGT";
    const char *u = strchr(units, c);
    if (u == NULL || c == 0) return false;
    shift = 10 * (unsigned)(u - units + 1);
    s++;
    if (ieq(s, "") || ieq(s, "b") || ieq(s, "ib")) {
      /* ok */
    } else {
      return false;
    }
  }
  if (shift && v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

/* One rule for every switch, any case. */
#define PM_SWITCH_WORDS "0, 1, on, off, yes, no, true, false"
static bool parse_bool(const char *s, uint64_t *out) {
  static const char yes[][6] = {"1", "on", "yes", "true"};
  static const char no[][6] = {"0", "off", "no", "false"};
  for (size_t i = 0; i < 4; i++) {
    if (ieq(s, yes[i])) return (*out = 1), true;
    if (ieq(s, no[i])) return (*out = 0), true;
  }
  return false;
}

static bool parse_stats(const char *s, uint64_t *out) {
  if (ieq(s, "text")) return (*out = PM_STATS_TEXT), true;
  if (ieq(s, "json")) return (*out = PM_STATS_JSON), true;
  return parse_bool(s, out);
}

static bool parse_check(const char *s, uint64_t *out) {
  if (ieq(s, "default")) return (*out = PM_CHECK_DEFAULT), true;
  if (ieq(s, "full")) return (*out = PM_CHECK_FULL), true;
  return parse_bool(s, out);
}

static const struct {
  char name[8];
  int num;
} signal_names[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"USR1", SIGUSR1},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"CHLD", SIGCHLD},     {"CONT", SIGCONT}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"PWR", SIGPWR}};

/* a signal a handler can be installed for: not KILL/STOP, not the two
 * glibc keeps for itself (32, 33) */
static bool catchable(uint64_t sig) {
  return sig != SIGKILL && sig != SIGSTOP && sig != 32 && sig != 33;
}

/* "USR2", "SIGUSR2", "12" or "0"/"off" */
static bool parse_signal(const char *s, uint64_t *out) {
  const char *p = s;
  if (parse_u64(&p, out) && *p == 0) return catchable(*out);
  if (parse_bool(s, out) && *out == 0) return true;
  if ((s[0] == 'S' || s[0] == 's') && (s[1] == 'I' || s[1] == 'i') &&
      (s[2] == 'G' || s[2] == 'g'))
    s += 3;
  for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++) {
    const char *n = signal_names[i].name;
    size_t k = 0;
    while (n[k] && s[k] &&
           (s[k] == n[k] || (n[k] >= 'A' && n[k] <= 'Z' && s[k] == n[k] + 32)))
      k++;
    if (n[k] == 0 && s[k] == 0) return (*out = (uint64_t)signal_names[i].num), true;
  }
  return false;
}

const char *pm_signal_name(int sig) {
  for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
    if (signal_names[i].num == sig) return signal_names[i].name;
  return NULL;
}

/* the default as a user would write it: "0 (off)", "default", "65536" */
static void default_name(pm_buf *b, const pm_option_info *o) {
  switch (o->kind) {
  case PM_OPT_BOOL:
  case PM_OPT_STATS:
    pm_buf_str(b, o->def ? "1 (on)" : "0 (off)");
    break;
  case PM_OPT_CHECK:
    pm_buf_str(b, o->def ? "full" : "default");
    break;
  case PM_OPT_SIGNAL:
    pm_buf_str(b, o->def ? "" : "0 (none)");
    break;
  default:
    pm_buf_u64(b, o->def);
  }
}

static void warn_bad(pm_warn_fn warn, const pm_option_info *o, const char *value,
                     const char *why) {
  char line[400];
  pm_buf b = pm_buf_make(line, sizeof line);
  pm_buf_str(&b, "POOLMALLOC_");
  pm_buf_str(&b, o->name);
  pm_buf_str(&b, "='");
  pm_buf_mem(&b, value, pm_strnlen(value, 64));
  pm_buf_str(&b, "' ");
  pm_buf_str(&b, why);
  pm_buf_str(&b, "; using ");
  default_name(&b, o);
  warn(pm_buf_cstr(&b));
}

static void range_text(pm_buf *b, const pm_option_info *o) {
  pm_buf_str(b, "is out of range [");
  pm_buf_u64(b, o->lo);
  pm_buf_str(b, ", ");
  pm_buf_u64(b, o->hi);
  pm_buf_str(b, "]");
}

static uint64_t parse_one(const pm_option_info *o, const char *value, pm_warn_fn warn) {
  uint64_t v = 0;
  bool ok;
  const char *what;
  switch (o->kind) {
  case PM_OPT_SIZE:
    ok = pm_parse_size(value, &v);
    what = "is not a size";
    break;
  case PM_OPT_UINT: {
    const char *s = value;
    ok = parse_u64(&s, &v) && *s == 0;
    if (!ok && (o->flags & PM_OPTF_SWITCH)) ok = parse_bool(value, &v);
    what = o->flags & PM_OPTF_SWITCH
               ? "is not a number or a switch word (" PM_SWITCH_WORDS ")"
               : "is not a number";
    break;
  }
  case PM_OPT_BOOL:
    ok = parse_bool(value, &v);
    what = "is not a switch word (" PM_SWITCH_WORDS ")";
    break;
  case PM_OPT_STATS:
    ok = parse_stats(value, &v);
    what = "is not one of off, text, json (or a switch word: " PM_SWITCH_WORDS ")";
    break;
  case PM_OPT_SIGNAL:
    ok = parse_signal(value, &v);
    what = "is not a catchable signal name or number";
    break;
  case PM_OPT_CHECK:
    ok = parse_check(value, &v);
    what = "is not one of default, full (or a switch word: " PM_SWITCH_WORDS ")";
    break;
  default:
    return 0;
  }
  if (!ok) {
    warn_bad(warn, o, value, what);
    return o->def;
  }
  if (v < o->lo || v > o->hi) {
    char why[96];
    pm_buf b = pm_buf_make(why, sizeof why);
    range_text(&b, o);
    warn_bad(warn, o, value, pm_buf_cstr(&b));
    return o->def;
  }
  if ((o->flags & PM_OPTF_POW2) && (v & (v - 1)) != 0) {
    warn_bad(warn, o, value, "is not a power of two");
    return o->def;
  }
  return v;
}

void pm_options_load(pm_options *out, pm_getenv_fn get, pm_warn_fn warn) {
  char name[64];
  out->stats_file_str = NULL;
  for (size_t i = 0; i < pm_option_count; i++) {
    const pm_option_info *o = &pm_option_table[i];
    uint64_t *field = (uint64_t *)((char *)out + o->offset);
    pm_buf b = pm_buf_make(name, sizeof name);
    pm_buf_str(&b, "POOLMALLOC_");
    pm_buf_str(&b, o->name);
    const char *value = get(pm_buf_cstr(&b));
    *field = o->def;
    if (value == NULL) continue;
    if (o->kind == PM_OPT_STRING) {
      if (*value) out->stats_file_str = value;
      *field = *value ? 1 : 0;
      continue;
    }
    *field = parse_one(o, value, warn);
  }
  /* cross-option rule: a page must hold at least one pooled block */
  if (out->max_pooled > out->pool_size) {
    const char *raw = get("POOLMALLOC_MAX_POOLED"); /* quoted as given, like the rest */
    char line[200];
    pm_buf l = pm_buf_make(line, sizeof line);
    pm_buf_str(&l, "POOLMALLOC_MAX_POOLED='");
    pm_buf_str(&l, raw ? raw : "");
    pm_buf_str(&l, "' is larger than POOLMALLOC_POOL_SIZE (");
    pm_buf_u64(&l, out->pool_size);
    pm_buf_str(&l, "); using ");
    pm_buf_u64(&l, out->pool_size / 2);
    warn(pm_buf_cstr(&l));
    out->max_pooled = 0;
  }
  if (out->max_pooled == 0) out->max_pooled = out->pool_size / 2;
}

void pm_options_check_unknown(char **env, pm_warn_fn warn) {
  static const char prefix[] = "POOLMALLOC_";
  for (char **e = env; e && *e; e++) {
    if (strncmp(*e, prefix, sizeof prefix - 1) != 0) continue;
    const char *name = *e + sizeof prefix - 1;
    size_t len = strcspn(name, "=");
    bool known = false;
    for (size_t i = 0; i < pm_option_count && !known; i++)
      known = strlen(pm_option_table[i].name) == len &&
              strncmp(pm_option_table[i].name, name, len) == 0;
    /* POOLMALLOC_LIB is the wrapper's (scripts/poolmalloc), not ours */
    if (len == 3 && strncmp(name, "LIB", 3) == 0) known = true;
    if (known) continue;
    char line[200];
    pm_buf b = pm_buf_make(line, sizeof line);
    pm_buf_str(&b, "POOLMALLOC_");
    pm_buf_mem(&b, name, len < 48 ? len : 48);
    pm_buf_str(&b, " is not a poolmalloc setting; ignored");
    warn(pm_buf_cstr(&b));
  }
}

void pm_option_format(pm_buf *b, const pm_options *o, size_t i) {
  const pm_option_info *info = &pm_option_table[i];
  uint64_t v = *(const uint64_t *)((const char *)o + info->offset);
  switch (info->kind) {
  case PM_OPT_STRING:
    pm_buf_str(b, o->stats_file_str ? o->stats_file_str : "");
    break;
  case PM_OPT_BOOL:
    pm_buf_str(b, v ? "1" : "0");
    break;
  case PM_OPT_STATS:
    pm_buf_str(b, v == PM_STATS_JSON ? "json" : v ? "text" : "off");
    break;
  case PM_OPT_CHECK:
    pm_buf_str(b, v == PM_CHECK_FULL ? "full" : "default");
    break;
  case PM_OPT_SIGNAL:
    if (v && pm_signal_name((int)v)) {
      pm_buf_str(b, "SIG");
      pm_buf_str(b, pm_signal_name((int)v));
    } else {
      pm_buf_u64(b, v);
    }
    break;
  default:
    pm_buf_u64(b, v);
    break;
  }
}

/* 0 not loaded, 1 loaded. In .data, beside pm_opt: the destructor of
 * every process reads it, and in .bss it sat alone on a page nothing else
 * touches (a page fault of every process, /bin/true 61 -> 60); pm_opt's
 * page is copied by the loader's relocations anyway. */
static _Atomic int options_state __attribute__((section(".data")));

/* The value of POOLMALLOC_STATS_FILE, copied: programs that set their
 * process title (redis-server, postgres, nginx) overwrite the memory environ
 * pointed to, and the exit report would find an empty or garbled name. */
static char stats_file_copy[1024];

pm_startup_code bool pm_options_loaded(void) {
  return atomic_load_explicit(&options_state, memory_order_acquire) != 0;
}

void pm_options_init(void) {
  if (atomic_load_explicit(&options_state, memory_order_acquire)) return;
  extern char **environ;
  pm_options o;
  pm_options_load(&o, pm_os_getenv, pm_message);
  pm_options_check_unknown(environ, pm_message);
  if (o.stats_file_str != NULL) {
    size_t n = strlen(o.stats_file_str);
    if (n < sizeof stats_file_copy) {
      memcpy(stats_file_copy, o.stats_file_str, n + 1);
      o.stats_file_str = stats_file_copy;
    } else {
      pm_message(
          "POOLMALLOC_STATS_FILE is longer than 1023 bytes; the report goes to stderr");
      o.stats_file_str = NULL;
    }
  }
  pm_opt = o;
  atomic_store_explicit(&options_state, 1, memory_order_release);
}
