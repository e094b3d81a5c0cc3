/* options.h - the one table of POOLMALLOC_* settings.
 *
 * PM_OPTIONS lists every option once: name, field, kind, default, range and
 * a one-line meaning. The parser, the verbose dump, `pm-options --markdown`
 * (the README table) and the report header are all generated from it. */
#ifndef PM_OPTIONS_H
#define PM_OPTIONS_H

#include "common.h"

typedef enum {
  PM_OPT_SIZE,
  PM_OPT_UINT,
  PM_OPT_BOOL,
  PM_OPT_STATS,
  PM_OPT_STRING,
  PM_OPT_SIGNAL,
  PM_OPT_CHECK
} pm_opt_kind;

enum { PM_STATS_OFF = 0, PM_STATS_TEXT = 1, PM_STATS_JSON = 2 };
enum { PM_CHECK_DEFAULT = 0, PM_CHECK_FULL = 1 };

#define PM_KiB ((uint64_t)1024)
#define PM_MiB (PM_KiB * 1024)
#define PM_GiB (PM_MiB * 1024)
#define PM_TiB (PM_GiB * 1024)
#define PM_POOL_SIZE_DEFAULT (64 * PM_KiB)

/* Properties of an option beyond its kind. */
enum {
  PM_OPTF_POW2 = 1,   /* the value must be a power of two */
  PM_OPTF_SWITCH = 2, /* a number that also takes the switch words (on = 1) */
};

/* X(NAME, field, kind, flags, default, min, max, meaning) */
#define PM_OPTIONS(X)                                                                    \
  X(POOL_SIZE, pool_size, PM_OPT_SIZE, PM_OPTF_POW2, PM_POOL_SIZE_DEFAULT, 4 * PM_KiB,   \
    1 * PM_MiB,                                                                          \
    "bytes per pool page (a power of two); every page holds blocks of one size class")   \
  X(MAX_POOLED, max_pooled, PM_OPT_SIZE, 0, 0, 0, 1 * PM_MiB,                            \
    "largest request served from the pools; 0 means POOLMALLOC_POOL_SIZE/2; larger "     \
    "requests go to jemalloc")                                                           \
  X(DISABLE, disable, PM_OPT_BOOL, 0, 0, 0, 1,                                           \
    "send every request to the embedded jemalloc (A/B comparisons, memory tools)")       \
  X(VERBOSE, verbose, PM_OPT_BOOL, 0, 0, 0, 1,                                           \
    "print the version and every effective option once, on stderr")                      \
  X(STATS, stats, PM_OPT_STATS, 0, 0, 0, 2,                                              \
    "write a statistics report at exit: off, text (or any switch word for on), json")    \
  X(STATS_FILE, stats_file, PM_OPT_STRING, 0, 0, 0, 0,                                   \
    "write the report to this file instead of stderr; %p is the pid, %e the program")    \
  X(STATS_SIGNAL, stats_signal, PM_OPT_SIGNAL, 0, 0, 0, 64,                              \
    "a signal (USR2, SIGUSR1, 12) that writes a report while the program runs; 0: none") \
  X(DECAY_MS, decay_ms, PM_OPT_UINT, 0, 1000, 0, 3600000,                                \
    "milliseconds a free pool page stays resident at least; its memory goes back to "    \
    "the "                                                                               \
    "OS at the next allocator call after that, or by POOLMALLOC_BACKGROUND's thread "    \
    "while the program is idle; 0: at once")                                             \
  X(BACKGROUND, background, PM_OPT_BOOL, 0, 0, 0, 1,                                     \
    "a thread that returns free memory to the OS after POOLMALLOC_DECAY_MS while the "   \
    "program is idle (as jemalloc's background_thread); it makes the process "           \
    "multi-threaded, so not for programs that fork from signal handlers; not restarted " \
    "in forked children")                                                                \
  X(CHECK, check, PM_OPT_CHECK, 0, 0, 0, 1,                                              \
    "heap checks: default (cheap double/invalid free checks of pool blocks) or full (a " \
    "bitmap of live blocks and free-list validation on every call; slower)")             \
  X(PROFILE, profile, PM_OPT_BOOL, 0, 1, 0, 1,                                           \
    "sample allocations with their call stacks for the report (only when a report is "   \
    "asked for): who holds memory at the peak, at exit, by volume")                      \
  X(PROFILE_RATE, profile_rate, PM_OPT_SIZE, 0, 512 * PM_KiB, 16, 1 * PM_GiB,            \
    "mean bytes allocated between two samples (per thread and size class) once the "     \
    "live heap is 256 times that or more; a smaller heap is sampled every heap/256 "     \
    "bytes, down to 64 KiB, so its figures keep about 256 live samples")                 \
  X(UNWINDER, unwinder, PM_OPT_UINT, 0, 0, 0, 2,                                         \
    "the profile's stack unwinder: 0 poolmalloc's own (the unwind tables; a stack ends "  \
    "at a signal frame or code without tables, such as a JIT's); 1 libgcc's "             \
    "_Unwind_Backtrace; 2 libunwind (libunwind.so.8; the own one if not installed)")      \
  X(LIFETIME, lifetime, PM_OPT_UINT, PM_OPTF_SWITCH, 2, 0, 2,                            \
    "learn call sites whose blocks live long and keep them out of the pools: 0 off, 1 "  \
    "send their requests to jemalloc, 2 to pool pages of their own")                     \
  X(LIFETIME_THRESHOLD, lifetime_threshold, PM_OPT_SIZE, 0, 16 * PM_MiB, 1024,           \
    1 * PM_TiB,                                                                          \
    "a sampled block is long-lived once this many bytes, and twice the peak live heap, " \
    "were allocated after it, or this many since most blocks allocated with it were "    \
    "freed")                                                                             \
  X(REGION_SIZE, region_size, PM_OPT_SIZE, 0, 32 * PM_GiB, 64 * PM_MiB, 4096 * PM_GiB,   \
    "address space reserved (not committed) for pool pages")

typedef struct pm_options {
#define PM_OPT_FIELD(NAME, field, kind, flags, def, lo, hi, help) uint64_t field;
  PM_OPTIONS(PM_OPT_FIELD)
#undef PM_OPT_FIELD
  const char *stats_file_str; /* points into environ; NULL if unset */
} pm_options;

/* No pointers: the table is read-only data, not a relocated word in the
 * RELRO pages the loader writes (docs/design.md "RELRO on one page"); the
 * meanings are PM_OPTIONS' last column (tools/pm_options.c). */
typedef struct pm_option_info {
  char name[24]; /* without the POOLMALLOC_ prefix */
  pm_opt_kind kind;
  unsigned flags; /* PM_OPTF_* */
  uint64_t def, lo, hi;
  size_t offset; /* of the field in pm_options */
} pm_option_info;

extern const pm_option_info pm_option_table[];
extern const size_t pm_option_count;

/* The effective options; valid after pm_options_init(). */
extern pm_options pm_opt;

/* Reads every option with `get` (a getenv), validating each; calls `warn`
 * once per bad value or unknown POOLMALLOC_ name with a full line (without
 * "poolmalloc: " prefix and newline). No allocation. */
typedef const char *(*pm_getenv_fn)(const char *name);
typedef void (*pm_warn_fn)(const char *line);
void pm_options_load(pm_options *out, pm_getenv_fn get, pm_warn_fn warn);
/* Checks environ for POOLMALLOC_* names that are not options. */
void pm_options_check_unknown(char **env, pm_warn_fn warn);

/* "USR2" for 12; NULL if unknown */
const char *pm_signal_name(int sig);
/* Parses "64K", "1MiB", "4096" into *out; false if not a size. */
bool pm_parse_size(const char *s, uint64_t *out);

/* Loads pm_opt from the environment once (idempotent, thread-safe enough:
 * every loader computes the same values). */
void pm_options_init(void);
/* true once pm_options_init has run */
bool pm_options_loaded(void);

/* Formats the effective value of option i into b. */
struct pm_buf;
void pm_option_format(struct pm_buf *b, const pm_options *o, size_t i);

#endif
