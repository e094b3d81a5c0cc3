/* profile.c - the heap profile's part of the report: who holds memory.
 *
 * From the sampler's tables (sample.h): the heap peak, the bytes live at
 * exit and allocated, the top call stacks by each (named by symbols.c from
 * the modules' own symbol tables), every stack
 * as module+offset in JSON, and the account of the RSS. Nothing here
 * allocates; report.c calls it with its buffer. */
#define _GNU_SOURCE
#include "profile.h"
#include "options.h"
#include "os.h"

#include "symbols.h"

#include <string.h>

#define PM_TEXT_SITES 5   /* per list in the text report */
#define PM_TEXT_FRAMES 6  /* frames shown per site in the text report */
#define PM_NAMED_SITES 16 /* JSON: sites whose frames get symbol names */
#define PM_NAMED_FRAMES                                                                  \
  8 /* JSON: frames named per such site (the reader                                      \
       names the rest from module+offset) */

/* "symbol+0x1f (module)" or "module+0x1234": the name of a frame, from the
 * loader's tables while its module is still loaded where it was */
static void frame_name(pm_buf *b, uintptr_t ip, bool with_symbol) {
  pm_module_info mod;
  bool known = pm_sample_module(pm_sample_module_of(ip), &mod);
  const char *path = known ? mod.path : NULL;
  uintptr_t base = known ? mod.base : 0;
  const char *slash = path ? strrchr(path, '/') : NULL;
  const char *short_name = slash ? slash + 1 : path;
  const char *sname;
  uintptr_t start;
  if (with_symbol && pm_symbols_get(ip, &sname, &start)) {
    pm_buf_str(b, sname);
    pm_buf_str(b, "+");
    pm_buf_hex(b, ip - start);
    pm_buf_str(b, " (");
    pm_buf_str(b, short_name ? short_name : "?");
    pm_buf_str(b, ")");
    return;
  }
  if (short_name == NULL) {
    pm_buf_hex(b, ip);
    return;
  }
  pm_buf_str(b, short_name);
  pm_buf_str(b, "+");
  pm_buf_hex(b, ip - base);
}

/* the exact bytes requested, all tiers */
static uint64_t requested_bytes(const pm_snapshot *s) {
  uint64_t r = s->heap.large_bytes;
  for (unsigned c = 0; c < PM_NCLASSES; c++)
    r += s->cls[c].req_bytes;
  return r;
}

/* the parts of RSS now: every figure resident memory */
typedef struct rss_account {
  uint64_t rss, pool_in_use, pool_free, jemalloc, metadata, other;
} rss_account;

static rss_account account_now(const pm_snapshot *s) {
  const pm_figures *f = &s->fig;
  rss_account a = {f->rss, 0, 0, f->jemalloc_resident, 0, 0};
  /* pages in use less their untouched tails and the pieces given back */
  uint64_t gone = f->tail_bytes + f->returned_bytes;
  a.pool_in_use = f->pages_in_use_bytes > gone ? f->pages_in_use_bytes - gone : 0;
  a.pool_free = s->pages_free_resident * f->page_size;
  a.metadata = s->metadata_bytes;
  uint64_t known = a.pool_in_use + a.pool_free + a.jemalloc + a.metadata;
  a.other = a.rss > known ? a.rss - known : 0;
  return a;
}

/* names the first `frames` frames of the top `sites` stacks by each key */
static void name_top_sites(size_t sites, uint32_t frames) {
  if (!pm_symbols_begin()) return;
  pm_stack_info top[PM_NAMED_SITES];
  for (int key = 0; key < 3; key++) {
    size_t n = pm_sample_top(top, sites < PM_NAMED_SITES ? sites : PM_NAMED_SITES, key);
    for (size_t i = 0; i < n; i++)
      for (uint32_t f = 0; f < top[i].depth && f < frames; f++)
        pm_symbols_want(top[i].frames[f]);
  }
  pm_symbols_resolve();
}

static const char key_name[3][20] = {"live at the peak", "live at exit", "allocated"};

void pm_profile_text(pm_buf *b, const pm_snapshot *s) {
  pm_profile_totals t;
  pm_sample_totals(&t);
  pm_sample_allocated_exact(requested_bytes(s));
  if (!pm_sample_stacks || t.samples == 0) return;
  name_top_sites(PM_TEXT_SITES, PM_TEXT_FRAMES);
  pm_buf_str(b, "profile:   ");
  pm_buf_u64(b, t.samples);
  pm_buf_str(b, " samples (one per ");
  pm_buf_bytes(b, t.rate_min);
  pm_buf_str(b, " to ");
  pm_buf_bytes(b, t.rate_max);
  pm_buf_str(b, " allocated, by heap size), ");
  pm_buf_u64(b, t.stacks);
  pm_buf_str(b, " call stacks\n");
  pm_buf_figure(b, "heap peak: live bytes at their highest (counted)", false,
                t.peak_bytes);
  pm_buf_str(b, "  ");
  pm_buf_pad(b, "  reached after (ms)", 60);
  pm_buf_u64(b, t.peak_ms);
  pm_buf_char(b, '\n');
  pm_buf_figure(b, "live bytes now (at exit: leaked or held to the end)", false,
                t.live_bytes);
  pm_buf_figure(b, "bytes requested in all (exact)", false, requested_bytes(s));
  for (int key = 0; key < 3; key++) {
    pm_stack_info top[PM_TEXT_SITES];
    size_t n = pm_sample_top(top, PM_TEXT_SITES, key);
    if (n == 0) continue;
    uint64_t total = key == 0   ? t.peak_bytes
                     : key == 1 ? t.live_bytes
                                : requested_bytes(s);
    pm_buf_str(b, "top sites by bytes ");
    pm_buf_str(b, key_name[key]);
    pm_buf_str(b, ":\n");
    for (size_t i = 0; i < n; i++) {
      uint64_t v = key == 0   ? top[i].peak_bytes
                   : key == 1 ? top[i].live_bytes
                              : top[i].alloc_bytes;
      char num[32];
      pm_buf nb = pm_buf_make(num, sizeof num);
      pm_buf_bytes(&nb, v);
      for (size_t k = nb.len; k < 11; k++)
        pm_buf_char(b, ' ');
      pm_buf_mem(b, num, nb.len);
      pm_buf_str(b, " ");
      char pct[16];
      pm_buf pb = pm_buf_make(pct, sizeof pct);
      pm_buf_pct(&pb, v, total);
      for (size_t k = pb.len; k < 6; k++)
        pm_buf_char(b, ' ');
      pm_buf_mem(b, pct, pb.len);
      for (uint32_t f = 0; f < top[i].depth && f < PM_TEXT_FRAMES; f++) {
        pm_buf_str(b, f == 0 ? "  " : "\n                     <- ");
        frame_name(b, top[i].frames[f], true);
      }
      if (top[i].depth > PM_TEXT_FRAMES) pm_buf_str(b, " ...");
      pm_buf_char(b, '\n');
    }
  }
  rss_account a = account_now(s);
  pm_buf_str(b, "RSS account at exit: ");
  pm_buf_bytes(b, a.rss);
  pm_buf_str(b, " = pool pages in use ");
  pm_buf_bytes(b, a.pool_in_use);
  pm_buf_str(b, " + free pool pages not yet returned ");
  pm_buf_bytes(b, a.pool_free);
  pm_buf_str(b, " + jemalloc (at most) ");
  pm_buf_bytes(b, a.jemalloc);
  pm_buf_str(b, " + poolmalloc's metadata ");
  pm_buf_bytes(b, a.metadata);
  pm_buf_str(b, " + not from malloc ");
  pm_buf_bytes(b, a.other);
  pm_buf_str(b, " (code, stacks, other mappings");
  extern char *program_invocation_short_name;
  if (program_invocation_short_name != NULL &&
      strncmp(program_invocation_short_name, "python", 6) == 0)
    pm_buf_str(b, "; python's pymalloc arenas are there: PYTHONMALLOC=malloc lets "
                  "poolmalloc see them");
  pm_buf_str(b, ")\n");
  pm_symbols_end();
}

static void json_account(pm_buf *b, const char *name, const rss_account *a, bool known) {
  pm_buf_json_str(b, name);
  pm_buf_str(b, ":{");
  pm_buf_json_field(b, "rss", a->rss);
  pm_buf_json_field(b, "pool_in_use", a->pool_in_use);
  if (known) {
    pm_buf_json_field(b, "pool_free_resident", a->pool_free);
    pm_buf_json_field(b, "jemalloc_resident", a->jemalloc);
    pm_buf_json_field(b, "metadata", a->metadata);
    pm_buf_json_field(b, "other", a->other);
  } else { /* not measured at the peak: reading them there could deadlock */
    pm_buf_str(b, ",\"pool_free_resident\":null,\"jemalloc_resident\":null,"
                  "\"metadata\":null,\"other\":null");
  }
  pm_buf_char(b, '}');
}

void pm_profile_json(pm_buf *b, const pm_snapshot *s, pm_stack_info *all, size_t cap) {
  pm_profile_totals t;
  pm_sample_totals(&t);
  pm_sample_allocated_exact(requested_bytes(s));
  if (!pm_sample_stacks) return;
  name_top_sites(PM_NAMED_SITES, PM_NAMED_FRAMES);
  pm_buf_str(b, "\"profile\":{");
  pm_buf_json_field(b, "rate_bytes", pm_opt.profile_rate);
  pm_buf_json_field(b, "rate_min_bytes", t.rate_min);
  pm_buf_json_field(b, "rate_max_bytes", t.rate_max);
  pm_buf_json_field(b, "samples", t.samples);
  pm_buf_json_field(b, "stacks", t.stacks);
  pm_buf_json_field(b, "stacks_dropped", t.dropped);
  pm_buf_json_field(b, "allocated_bytes", requested_bytes(s));
  pm_buf_str(b, ",\"peak\":{");
  pm_buf_json_field(b, "bytes", t.peak_bytes);
  pm_buf_json_field(b, "time_ms", t.peak_ms);
  pm_buf_json_field(b, "estimated_bytes", t.peak_sampled);
  pm_buf_json_field(b, "looks", t.looks);
  pm_buf_str(b, "},\"exit\":{");
  pm_buf_json_field(b, "bytes", t.live_bytes);
  pm_buf_json_field(b, "time_ms", pm_os_uptime_ns() / 1000000);
  pm_buf_json_field(b, "estimated_bytes", t.live_sampled);
  pm_buf_str(b, "},\"modules\":[");
  pm_module_info mods[256];
  size_t nm = pm_sample_modules(mods, 256);
  for (size_t i = 0; i < nm; i++) {
    pm_buf_str(b, i ? ",{" : "{");
    pm_buf_json_field(b, "id", i);
    pm_buf_str(b, ",\"path\":");
    pm_buf_json_str(b, mods[i].path);
    pm_buf_str(b, ",\"base\":\"");
    pm_buf_hex(b, mods[i].base);
    pm_buf_str(b, "\",\"end\":\"");
    pm_buf_hex(b, mods[i].hi);
    pm_buf_str(b, "\"}");
  }
  pm_buf_str(b, "],\"sites\":[");
  /* sites by bytes allocated; frames of the top sites by any key get names */
  uint64_t floor[3];
  for (int key = 0; key < 3; key++) {
    size_t n = pm_sample_top(all, PM_NAMED_SITES, key);
    floor[key] = n < PM_NAMED_SITES ? 1
                 : key == 0         ? all[n - 1].peak_bytes
                 : key == 1         ? all[n - 1].live_bytes
                                    : all[n - 1].alloc_bytes;
  }
  size_t n = pm_sample_top(all, cap, 2);
  for (size_t i = 0; i < n; i++) {
    const pm_stack_info *st = &all[i];
    bool named = st->peak_bytes >= floor[0] || st->live_bytes >= floor[1] ||
                 st->alloc_bytes >= floor[2];
    pm_buf_str(b, i ? ",{\"frames\":[" : "{\"frames\":[");
    for (uint32_t f = 0; f < st->depth; f++) {
      uintptr_t ip = st->frames[f];
      int m = pm_sample_module_of(ip);
      pm_buf_str(b, f ? ",{\"address\":\"" : "{\"address\":\"");
      pm_buf_hex(b, ip);
      pm_buf_str(b, "\",\"module\":");
      if (m >= 0 && (size_t)m < nm) {
        pm_buf_u64(b, (uint64_t)m);
        pm_buf_str(b, ",\"offset\":\"");
        pm_buf_hex(b, ip - mods[m].base);
        pm_buf_str(b, "\"");
      } else {
        pm_buf_str(b, "-1,\"offset\":null");
      }
      pm_buf_str(b, ",\"symbol\":");
      const char *sname;
      uintptr_t start;
      if (named && f < PM_NAMED_FRAMES && pm_symbols_get(ip, &sname, &start)) {
        char sym[300];
        pm_buf sb = pm_buf_make(sym, sizeof sym);
        pm_buf_str(&sb, sname);
        pm_buf_str(&sb, "+");
        pm_buf_hex(&sb, ip - start);
        pm_buf_json_str(b, pm_buf_cstr(&sb));
      } else {
        pm_buf_str(b, "null");
      }
      pm_buf_char(b, '}');
    }
    pm_buf_str(b, "]");
    pm_buf_json_field(b, "peak_bytes", st->peak_bytes);
    pm_buf_json_field(b, "peak_blocks", st->peak_blocks);
    pm_buf_json_field(b, "exit_bytes", st->live_bytes);
    pm_buf_json_field(b, "exit_blocks", st->live_blocks);
    pm_buf_json_field(b, "alloc_bytes", st->alloc_bytes);
    pm_buf_json_field(b, "alloc_blocks", st->alloc_blocks);
    pm_buf_char(b, '}');
  }
  pm_buf_str(b, "]},\"rss_account\":{");
  rss_account now = account_now(s);
  json_account(b, "exit", &now, true);
  rss_account peak = {t.peak_rss, t.peak_pool_bytes, 0, 0, 0, 0};
  pm_buf_char(b, ',');
  json_account(b, "peak", &peak, false);
  pm_buf_str(b, "},");
  pm_symbols_end();
}
