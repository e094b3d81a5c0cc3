/* unwind.c - one frame at a time, from .eh_frame_hdr (see unwind.h).
 *
 * A step is what libgcc's and libunwind's steps are, cut to what x86-64
 * code needs to find a return address: find the frame description (FDE) of
 * the pc by binary search in the module's .eh_frame_hdr table, run its
 * call-frame instructions up to the pc, and read the canonical frame address
 * (CFA = rsp or rbp + offset), the return address and rbp (the only
 * callee-saved register a CFA rule of compiled code is written in) from the
 * slots the rules name. poolmalloc's own module is found once and kept (it
 * is never unloaded while its code runs). pm_unwind_caller finds the site's
 * module with _dl_find_object, which takes no lock (the module stays mapped
 * while its code is on the stack); pm_unwind_stack walks frames of any
 * module, so it does it under the loader's list lock, which keeps every
 * module mapped while its tables are read. */
#define _GNU_SOURCE
#include "unwind.h"
#include "os.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/single_threaded.h>
#include <string.h>

#if defined(__x86_64__)

enum { REG_RBP = 6, REG_RSP = 7, REG_RA = 16 };

typedef struct regs {
  uintptr_t pc, sp, bp;
} regs;

/* where a register was saved: same value, at CFA + off, or unknown */
enum { RULE_SAME, RULE_AT, RULE_BAD };
typedef struct rule {
  uint8_t kind;
  int64_t off;
} rule;

typedef struct cfi_state {
  uint8_t cfa_reg;
  bool cfa_bad; /* an expression */
  int64_t cfa_off;
  rule bp, ra;
} cfi_state;

typedef struct cursor {
  const uint8_t *p, *end;
  bool bad;
} cursor;

static uint64_t uleb(cursor *c) {
  uint64_t v = 0;
  for (unsigned shift = 0; c->p < c->end; shift += 7) {
    uint8_t b = *c->p++;
    if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  c->bad = true;
  return 0;
}

static int64_t sleb(cursor *c) {
  int64_t v = 0;
  unsigned shift = 0;
  uint8_t b = 0x80;
  while (c->p < c->end && (b & 0x80)) {
    b = *c->p++;
    if (shift < 64) v |= (int64_t)(b & 0x7f) << shift;
    shift += 7;
  }
  if (b & 0x80) c->bad = true;
  if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
  return v;
}

static uint64_t fixed(cursor *c, unsigned n) {
  if ((size_t)(c->end - c->p) < n) {
    c->bad = true;
    return 0;
  }
  uint64_t v = 0;
  memcpy(&v, c->p, n); /* little-endian */
  c->p += n;
  return v;
}

/* A pointer in a DW_EH_PE_* encoding; `datarel` is the base of datarel
 * values (.eh_frame_hdr's start). Indirect, textrel and funcrel values
 * are not used by x86-64 frame descriptions: bad. */
static uintptr_t encoded(cursor *c, uint8_t enc, uintptr_t datarel) {
  if (enc == 0xff) return 0; /* DW_EH_PE_omit */
  uintptr_t at = (uintptr_t)c->p, v;
  switch (enc & 0x0f) {
  case 0x00:
    v = fixed(c, 8);
    break;
  case 0x01:
    v = uleb(c);
    break;
  case 0x02:
    v = fixed(c, 2);
    break;
  case 0x03:
    v = fixed(c, 4);
    break;
  case 0x04:
    v = fixed(c, 8);
    break;
  case 0x09:
    v = (uintptr_t)sleb(c);
    break;
  case 0x0a:
    v = (uintptr_t)(int64_t)(int16_t)fixed(c, 2);
    break;
  case 0x0b:
    v = (uintptr_t)(int64_t)(int32_t)fixed(c, 4);
    break;
  case 0x0c:
    v = fixed(c, 8);
    break;
  default:
    c->bad = true;
    return 0;
  }
  switch (enc & 0x70) {
  case 0x00:
    break;
  case 0x10:
    v += at;
    break; /* pcrel */
  case 0x30:
    v += datarel;
    break; /* datarel */
  default:
    c->bad = true;
  }
  if (enc & 0x80) c->bad = true; /* indirect */
  return v;
}

/* ---- call-frame instructions ---- */

typedef struct cie {
  cursor insns; /* its initial instructions */
  uint64_t code_align;
  int64_t data_align;
  uint8_t fde_enc;
  bool has_aug_len, signal;
} cie;

static bool parse_cie(const uint8_t *at, cie *out) {
  cursor c = {at, at + 8, false};
  uint64_t len = fixed(&c, 4);
  if (len == 0 || len >= 0xfffffff0u) return false;
  c.end = at + 4 + len;
  if (fixed(&c, 4) != 0) return false; /* a CIE's id is 0 in .eh_frame */
  uint8_t version = (uint8_t)fixed(&c, 1);
  const char *aug = (const char *)c.p;
  size_t aug_n = pm_strnlen(aug, (size_t)(c.end - c.p));
  c.p += aug_n + 1;
  if (c.p > c.end || (version != 1 && version != 3)) return false;
  out->code_align = uleb(&c);
  out->data_align = sleb(&c);
  if (version == 1)
    (void)fixed(&c, 1);
  else
    (void)uleb(&c); /* the return-address column: 16 on x86-64 */
  out->fde_enc = 0x00;
  out->signal = false;
  out->has_aug_len = aug[0] == 'z';
  if (out->has_aug_len) {
    uint64_t n = uleb(&c);
    if (c.bad || n > (uint64_t)(c.end - c.p)) return false;
    const uint8_t *after = c.p + n;
    for (size_t i = 1; i < aug_n; i++)
      switch (aug[i]) {
      case 'R':
        out->fde_enc = (uint8_t)fixed(&c, 1);
        break;
      case 'L':
        (void)fixed(&c, 1);
        break;
      case 'P': {
        uint8_t enc = (uint8_t)fixed(&c, 1);
        cursor skip = c; /* the personality routine: its size only */
        (void)encoded(&skip, (uint8_t)(enc & 0x7f), 0);
        c.p = skip.p;
        break;
      }
      case 'S':
        out->signal = true;
        break;
      default:
        i = aug_n; /* unknown: the length says where the rest ends */
      }
    c.p = after;
  } else if (aug_n != 0) {
    return false;
  }
  out->insns = (cursor){c.p, c.end, c.bad};
  return !c.bad;
}

static void set_rule(cfi_state *s, uint64_t reg, uint8_t kind, int64_t off) {
  if (reg == REG_RBP) s->bp = (rule){kind, off};
  if (reg == REG_RA) s->ra = (rule){kind, off};
}

#define STATE_DEPTH 4

/* Runs instructions up to the row that covers `target` (rows start at
 * `*loc`); false when they cannot be followed. */
static bool run_cfi(cursor c, const cie *ci, const cfi_state *initial, cfi_state *s,
                    uintptr_t *loc, uintptr_t target) {
  cfi_state saved[STATE_DEPTH];
  unsigned depth = 0;
  while (c.p < c.end && !c.bad) {
    uint8_t op = *c.p++;
    uint64_t delta = 0, reg;
    switch (op >> 6) {
    case 1:
      delta = op & 0x3f;
      goto advance;
    case 2:
      set_rule(s, op & 0x3f, RULE_AT, (int64_t)uleb(&c) * ci->data_align);
      continue;
    case 3:
      reg = op & 0x3f;
      set_rule(s, reg, reg == REG_RBP ? initial->bp.kind : initial->ra.kind,
               reg == REG_RBP ? initial->bp.off : initial->ra.off);
      continue;
    }
    switch (op) {
    case 0x00:
      continue;  /* nop */
    case 0x01: { /* set_loc */
      uintptr_t to = encoded(&c, ci->fde_enc, 0);
      if (to > target) return !c.bad;
      *loc = to;
      continue;
    }
    case 0x02:
      delta = fixed(&c, 1);
      goto advance;
    case 0x03:
      delta = fixed(&c, 2);
      goto advance;
    case 0x04:
      delta = fixed(&c, 4);
      goto advance;
    case 0x05: /* offset_extended */
      reg = uleb(&c);
      set_rule(s, reg, RULE_AT, (int64_t)uleb(&c) * ci->data_align);
      continue;
    case 0x06: /* restore_extended */
      reg = uleb(&c);
      if (reg == REG_RBP) s->bp = initial->bp;
      if (reg == REG_RA) s->ra = initial->ra;
      continue;
    case 0x07:
      set_rule(s, uleb(&c), RULE_BAD, 0);
      continue; /* undefined */
    case 0x08:
      set_rule(s, uleb(&c), RULE_SAME, 0);
      continue; /* same_value */
    case 0x09:  /* register: the value is in another register */
      set_rule(s, uleb(&c), RULE_BAD, 0);
      (void)uleb(&c);
      continue;
    case 0x0a:
      if (depth == STATE_DEPTH) return false;
      saved[depth++] = *s;
      continue;
    case 0x0b: {
      if (depth == 0) return false;
      *s = saved[--depth]; /* the CFA rule too, as GCC's epilogues expect */
      continue;
    }
    case 0x0c: /* def_cfa */
      s->cfa_reg = (uint8_t)uleb(&c);
      s->cfa_off = (int64_t)uleb(&c);
      s->cfa_bad = false;
      continue;
    case 0x0d:
      s->cfa_reg = (uint8_t)uleb(&c);
      s->cfa_bad = false;
      continue;
    case 0x0e:
      s->cfa_off = (int64_t)uleb(&c);
      continue;
    case 0x0f: /* def_cfa_expression */
      s->cfa_bad = true;
      c.p += uleb(&c);
      continue;
    case 0x10: /* expression */
    case 0x16: /* val_expression */
      set_rule(s, uleb(&c), RULE_BAD, 0);
      c.p += uleb(&c);
      continue;
    case 0x11: /* offset_extended_sf */
      reg = uleb(&c);
      set_rule(s, reg, RULE_AT, sleb(&c) * ci->data_align);
      continue;
    case 0x12: /* def_cfa_sf */
      s->cfa_reg = (uint8_t)uleb(&c);
      s->cfa_off = sleb(&c) * ci->data_align;
      s->cfa_bad = false;
      continue;
    case 0x13:
      s->cfa_off = sleb(&c) * ci->data_align;
      continue; /* def_cfa_offset_sf */
    case 0x14:  /* val_offset */
      set_rule(s, uleb(&c), RULE_BAD, 0);
      (void)uleb(&c);
      continue;
    case 0x15: /* val_offset_sf */
      set_rule(s, uleb(&c), RULE_BAD, 0);
      (void)sleb(&c);
      continue;
    case 0x2e:
      (void)uleb(&c);
      continue; /* GNU_args_size */
    case 0x2f:  /* GNU_negative_offset_extended */
      reg = uleb(&c);
      set_rule(s, reg, RULE_AT, -(int64_t)uleb(&c) * ci->data_align);
      continue;
    default:
      return false;
    }
  advance:
    if (*loc + delta * ci->code_align > target) return !c.bad;
    *loc += delta * ci->code_align;
  }
  return !c.bad && c.p <= c.end;
}

/* ---- finding a frame description ---- */

typedef struct table {
  const uint8_t *hdr;     /* .eh_frame_hdr */
  const int32_t *entries; /* pairs (initial location, FDE), relative to hdr */
  size_t count;
} table;

static bool open_table(const uint8_t *hdr, table *t) {
  uint32_t head, count32;
  memcpy(&head, hdr, 4);
  if (head == 0x3b031b01u) { /* what linkers write: version 1, pcrel sdata4
                                eh_frame pointer, udata4 count, the table */
    memcpy(&count32, hdr + 8, 4);
    t->hdr = hdr;
    t->entries = (const int32_t *)(const void *)(hdr + 12);
    t->count = count32;
    return true;
  }
  cursor c = {hdr, hdr + 64, false};
  if (fixed(&c, 1) != 1) return false; /* version */
  uint8_t ptr_enc = (uint8_t)fixed(&c, 1), count_enc = (uint8_t)fixed(&c, 1);
  uint8_t table_enc = (uint8_t)fixed(&c, 1);
  (void)encoded(&c, ptr_enc, (uintptr_t)hdr);
  uintptr_t count = encoded(&c, count_enc, (uintptr_t)hdr);
  if (c.bad || table_enc != 0x3b) return false; /* datarel | sdata4 */
  t->hdr = hdr;
  t->entries = (const int32_t *)(const void *)c.p;
  t->count = count;
  return true;
}

/* The frame description (FDE) whose table entry is the last at or below
 * `pc`; NULL when there is none. */
static const uint8_t *find_fde(const table *t, uintptr_t pc) {
  if (t->count == 0) return NULL;
  uintptr_t base = (uintptr_t)t->hdr;
  size_t lo = 0, hi = t->count; /* the last entry starting at or below pc */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (base + (uintptr_t)(intptr_t)t->entries[2 * mid] <= pc)
      lo = mid;
    else
      hi = mid;
  }
  if (base + (uintptr_t)(intptr_t)t->entries[2 * lo] > pc) return NULL;
  return (const uint8_t *)(base + (uintptr_t)(intptr_t)t->entries[2 * lo + 1]);
}

/* The rules for the frame executing at `pc` (the return address minus one
 * for a caller's frame) described by `fde`, in *s; false when they cannot
 * be had. */
static bool fde_rules(const uint8_t *fde, uintptr_t pc, cfi_state *s) {
  if (fde == NULL) return false;
  cursor c = {fde, fde + 8, false};
  uint64_t len = fixed(&c, 4);
  if (len == 0 || len >= 0xfffffff0u) return false;
  c.end = fde + 4 + len;
  const uint8_t *id_at = c.p;
  uint64_t id = fixed(&c, 4);
  if (id == 0) return false; /* a CIE */
  cie ci;
  if (!parse_cie(id_at - id, &ci) || ci.signal) return false;
  uintptr_t start = encoded(&c, ci.fde_enc, 0);
  uintptr_t range = encoded(&c, (uint8_t)(ci.fde_enc & 0x0f), 0);
  if (c.bad || pc < start || pc - start >= range) return false;
  if (ci.has_aug_len) c.p += uleb(&c);
  cfi_state initial = {REG_RSP, false, 8, {RULE_SAME, 0}, {RULE_AT, -8}};
  uintptr_t loc = start;
  if (!run_cfi(ci.insns, &ci, &initial, &initial, &loc, UINTPTR_MAX)) return false;
  *s = initial;
  loc = start;
  return run_cfi(c, &ci, &initial, s, &loc, pc);
}

/* ---- steps, and a cache of them ---- */

/* A frame's rule, packed in a word: bit 0 set; bit 1 the CFA is rbp + off
 * (else rsp + off); bits 2-3 rbp's rule (RULE_*); bits 4-35 the CFA's
 * offset; bits 36-49 and 50-63 how far below the CFA the return address
 * and the saved rbp are. A rule that does not fit is not cached. */
static uint64_t pack_rule(const cfi_state *s) {
  int64_t ra = -s->ra.off, bp = s->bp.kind == RULE_AT ? -s->bp.off : 0;
  if (s->cfa_off < 0 || s->cfa_off >= (int64_t)1 << 32 || ra < 0 || ra >= 1 << 14 ||
      bp < 0 || bp >= 1 << 14)
    return 0;
  return 1 | (uint64_t)(s->cfa_reg == REG_RBP) << 1 | (uint64_t)s->bp.kind << 2 |
         (uint64_t)s->cfa_off << 4 | (uint64_t)ra << 36 | (uint64_t)bp << 50;
}

/* The rule of the frame executing at `pc` (a return address minus one),
 * packed; 0 when the frame cannot be stepped. */
static uint64_t frame_rule(const uint8_t *fde, uintptr_t pc, cfi_state *s) {
  if (!fde_rules(fde, pc, s) || s->cfa_bad || s->ra.kind != RULE_AT ||
      (s->cfa_reg != REG_RSP && s->cfa_reg != REG_RBP))
    return 0;
  return pack_rule(s);
}

/* One step with a rule: the caller's registers from the callee's; false
 * at the end of what can be followed. */
pm_inline bool apply(uint64_t rule, regs *r) {
  if (rule == 0) return false;
  uintptr_t cfa = ((rule >> 1 & 1) ? r->bp : r->sp) + (rule >> 4 & 0xffffffffu);
  /* the stack grows down: a caller's frame is above; slots are aligned */
  if (cfa <= r->sp || (cfa & 7) != 0) return false;
  uintptr_t ra = *(const uintptr_t *)(cfa - (rule >> 36 & 0x3fff));
  unsigned bp_kind = rule >> 2 & 3;
  if (bp_kind == RULE_AT)
    r->bp = *(const uintptr_t *)(cfa - (rule >> 50));
  else if (bp_kind == RULE_BAD)
    r->bp = 0; /* unknown: a CFA rule in rbp above this fails the check */
  r->sp = cfa;
  r->pc = ra;
  return ra != 0;
}

/* Steps cost a binary search and a frame's instructions (about 300
 * instructions for poolmalloc's larger functions); routing a wrapper's
 * allocation repeats the same few. Rules are cached by pc in a table
 * shared by threads, each slot a key and a rule: a writer claims the key
 * (a CAS to BUSY), stores the rule, then the key; a reader takes the rule
 * only if the key read before and after it is its own (a seqlock whose
 * sequence is the key). The key of a pc outside poolmalloc also carries
 * the loader's count of unloaded modules: a module unloaded and another
 * mapped at its address cannot hand its rules on. */
#define STEP_SLOTS 256
#define KEY_BUSY 1
typedef struct step_slot {
  _Atomic uint64_t key, rule;
} step_slot;
static step_slot steps[STEP_SLOTS];

pm_inline step_slot *slot_of(uint64_t key) {
  uint64_t h = key * 0x9e3779b97f4a7c15ull;
  return &steps[h >> 56 & (STEP_SLOTS - 1)];
}

pm_inline uint64_t cached_rule(uint64_t key) {
  step_slot *sl = slot_of(key);
  if (atomic_load_explicit(&sl->key, memory_order_acquire) != key) return 0;
  uint64_t rule = relaxed_load(&sl->rule);
  atomic_thread_fence(memory_order_acquire);
  return relaxed_load(&sl->key) == key ? rule : 0;
}

static void cache_rule(uint64_t key, uint64_t rule) {
  step_slot *sl = slot_of(key);
  uint64_t old = relaxed_load(&sl->key);
  if (old == KEY_BUSY || !atomic_compare_exchange_strong(&sl->key, &old, KEY_BUSY))
    return; /* another thread is writing it: leave it */
  relaxed_store(&sl->rule, rule);
  atomic_store_explicit(&sl->key, key, memory_order_release);
}

/* the key of a return address (never 0 or KEY_BUSY: pcs are above 4 KiB) */
static uint64_t step_key(uintptr_t pc, uint64_t unloads) {
  return (uint64_t)pc ^ unloads << 48;
}

/* the rule of the frame at `pc` found in its tables, and cached */
pm_noinline static uint64_t find_rule(const uint8_t *fde, uintptr_t pc, uint64_t key) {
  cfi_state s;
  uint64_t rule = frame_rule(fde, pc, &s);
  if (rule != 0 && key != 0) cache_rule(key, rule);
  return rule;
}

pm_inline bool step(const table *t, regs *r, bool is_return_address, uint64_t unloads) {
  uintptr_t pc = r->pc - is_return_address;
  uint64_t key = step_key(pc, unloads);
  uint64_t rule = cached_rule(key);
  if (rule == 0) rule = find_rule(find_fde(t, pc), pc, key);
  return apply(rule, r);
}

/* ---- modules ---- */

typedef struct module_search {
  uintptr_t pc;
  uintptr_t lo, hi; /* the executable segment holding pc */
  const uint8_t *hdr;
  /* the step, done under the loader's lock while the module is mapped */
  regs *r;
  bool first, stepped;
  uint64_t unloads;
} module_search;

/* the loader's count of unloaded modules, + 1 (part of a foreign pc's key);
 * without it a key no pc of ours has */
static uint64_t unloads_of(const struct dl_phdr_info *info, size_t size) {
  return size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs
             ? (uint64_t)info->dlpi_subs + 1
             : 0xffff;
}

static int find_module(struct dl_phdr_info *info, size_t size, void *arg) {
  module_search *m = arg;
  if (m->first) { /* the count of unloads comes with every object */
    m->first = false;
    m->unloads = unloads_of(info, size);
    uint64_t rule = m->r != NULL ? cached_rule(step_key(m->pc - 1, m->unloads)) : 0;
    if (rule != 0) {
      m->stepped = apply(rule, m->r);
      return 1;
    }
  }
  const uint8_t *hdr = NULL;
  bool holds = false;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && m->pc >= lo &&
        m->pc - lo < ph->p_memsz) {
      holds = true;
      m->lo = lo;
      m->hi = lo + ph->p_memsz;
    }
    if (ph->p_type == PT_GNU_EH_FRAME)
      hdr = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
  }
  if (!holds) return 0;
  m->hdr = hdr;
  table t;
  if (m->r != NULL && hdr != NULL && open_table(hdr, &t))
    m->stepped = step(&t, m->r, true, m->unloads);
  return 1;
}

/* ---- fork: no walk holds the loader's list lock across it ----
 *
 * glibc's fork() re-creates the loader's main lock in the child but not
 * its list lock (dl_load_write_lock, which dl_iterate_phdr holds): a
 * child forked while another thread walked would wait for it forever at
 * its first walk. The fork handlers (init.c) raise a gate, then wait for
 * the walks in flight to end (a walk waits for nothing the forking thread
 * holds: it skips its walk while the gate is up), at most 1 s: a
 * prepare handler that ran before this one may hold a lock a thread
 * inside dl_iterate_phdr's callback waits for. */
static _Atomic uint32_t walks, walk_gate;
static _Atomic int own_state;   /* poolmalloc's own module, below */
static PM_TLS uint32_t walking; /* this thread's walks in flight */

bool pm_unwind_enter(void) {
  atomic_fetch_add_explicit(&walks, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&walk_gate, memory_order_seq_cst) == 0) {
    walking++;
    return true;
  }
  atomic_fetch_sub_explicit(&walks, 1, memory_order_seq_cst);
  return false;
}

void pm_unwind_leave(void) {
  walking--;
  atomic_fetch_sub_explicit(&walks, 1, memory_order_seq_cst);
}

/* forks in progress on this thread (a handler may fork on top of one), and
 * which of them raised the gate: a single-threaded process has no other
 * walk to wait for, and its fork writes no page of ours (each page
 * written after the copy costs a fault) */
static PM_TLS uint32_t fork_depth, fork_raised;

void pm_unwind_prefork(void) {
  uint32_t depth = fork_depth++;
  if (__libc_single_threaded || depth >= 32) return;
  fork_raised |= 1u << depth;
  atomic_fetch_add_explicit(&walk_gate, 1, memory_order_seq_cst);
  /* a walk takes a few microseconds, unless its thread is preempted in
   * it (a time slice: milliseconds); a handler that forks on top of this
   * thread's own walk does not wait for it */
  uint64_t start = 0;
  for (unsigned spins = 0; atomic_load_explicit(&walks, memory_order_seq_cst) > walking;
       spins++) {
    if (spins < 64) continue;
    if (start == 0) start = pm_os_now_ns();
    if (pm_os_now_ns() - start > 1000 * 1000 * 1000) break;
    pm_os_yield();
  }
}

void pm_unwind_postfork(bool child) {
  uint32_t depth = --fork_depth;
  if (depth >= 32 || !(fork_raised >> depth & 1)) return;
  fork_raised &= ~(1u << depth);
  /* the child's other threads are gone, and their walks with them (one
   * that was looking for poolmalloc's module, if the wait gave up) */
  if (child) {
    atomic_store_explicit(&walks, walking, memory_order_seq_cst);
    int looking = 3;
    if (walking == 0) atomic_compare_exchange_strong(&own_state, &looking, 0);
  }
  atomic_fetch_sub_explicit(&walk_gate, 1, memory_order_seq_cst);
}

/* poolmalloc's own module: found once */
static table own;
static uintptr_t own_lo, own_hi;
/* own_state (above): 0 not looked for, 1 found, 2 none, 3 looking */

static bool own_module(void) {
  int st = atomic_load_explicit(&own_state, memory_order_acquire);
  if (st != 0) return st == 1;
  /* one thread looks (3: looking), inside a walk (so a fork waits for
   * it); the others walk nothing meanwhile */
  if (!pm_unwind_enter()) return false; /* a fork is in progress */
  if (!atomic_compare_exchange_strong(&own_state, &st, 3)) {
    pm_unwind_leave();
    return false;
  }
  module_search m = {(uintptr_t)&pm_unwind_caller, 0, 0, NULL, NULL, true, false, 0};
  dl_iterate_phdr(find_module, &m);
  table t;
  bool ok = m.hdr != NULL && open_table(m.hdr, &t);
  if (ok) {
    own = t;
    own_lo = m.lo;
    own_hi = m.hi;
  }
  atomic_store_explicit(&own_state, ok ? 1 : 2, memory_order_release);
  pm_unwind_leave();
  return ok;
}

/* Steps from the frame it is inlined in up through poolmalloc's own frames
 * to the frame whose return address is `site`; true with *r the registers
 * of the site's frame (pc = site). */
pm_inline bool climb(uintptr_t site, unsigned max_frames, regs *r) {
  if (site == 0 || !own_module()) return false;
  __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                   : "=r"(r->pc), "=r"(r->sp), "=r"(r->bp));
  /* this frame's pc is where it runs, not a return address */
  bool is_return_address = false;
  for (unsigned i = 0; i < max_frames; i++) {
    if (r->pc < own_lo || r->pc >= own_hi) return false; /* left poolmalloc */
    if (!step(&own, r, is_return_address, 0)) return false;
    is_return_address = true;
    if (r->pc == site) return true;
  }
  return false;
}

#if defined(DLFO_STRUCT_HAS_EH_DBASE) /* glibc 2.35: _dl_find_object */

/* (h + w) × an odd constant per word: two contents that differ in one word
 * never meet; a final shift folds the high bits in */
static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n) {
  const uint64_t k = 0x9e3779b97f4a7c15ull;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h + w) * k;
  }
  for (; n > 0; p++, n--)
    h = (h + *p) * k;
  return h ^ h >> 31;
}

/* A foreign frame's key: its pc, where its description (FDE) is, and the
 * bytes of the FDE and of its CIE, which are all its rule is computed
 * from. A module mapped where an unloaded one was shares a key with it
 * only through the same bytes at the same place: the same rule. Bit 63
 * keeps it apart from the keys of poolmalloc's own pcs; 0 when the
 * descriptions are too long to hash on every call (not cached). */
static uint64_t content_key(uintptr_t pc, const uint8_t *fde) {
  uint32_t len, id, cie_len;
  memcpy(&len, fde, 4);
  memcpy(&id, fde + 4, 4);
  if (len < 8 || len > 1024 || id == 0) return 0;
  const uint8_t *cie = fde + 4 - id;
  memcpy(&cie_len, cie, 4);
  if (cie_len < 8 || cie_len > 1024) return 0;
  uint64_t h = ((uint64_t)pc * 0x9e3779b97f4a7c15ull) ^ (uintptr_t)fde;
  h = hash_bytes(h, fde, (size_t)len + 4);
  h = hash_bytes(h, cie, (size_t)cie_len + 4);
  return h | 1ull << 63;
}

/* The site's frame is found without the loader's lock: _dl_find_object
 * reads the loader's table of mappings lock-free (and is safe in a signal
 * handler and across fork), and the site's module cannot be unloaded while
 * its code is on this stack. No walk is counted, so a fork does not wait
 * for this one. */
pm_noinline uintptr_t pm_unwind_caller(uintptr_t site, unsigned max_frames) {
  regs r;
  if (!climb(site, max_frames, &r)) return 0;
  uintptr_t pc = site - 1;
  struct dl_find_object fo;
  table t;
  if (_dl_find_object((void *)pc, &fo) != 0 || fo.dlfo_eh_frame == NULL ||
      !open_table(fo.dlfo_eh_frame, &t))
    return 0;
  const uint8_t *fde = find_fde(&t, pc);
  if (fde == NULL) return 0;
  uint64_t key = content_key(pc, fde);
  uint64_t rule = key != 0 ? cached_rule(key) : 0;
  if (rule == 0) rule = find_rule(fde, pc, key);
  return apply(rule, &r) ? r.pc : 0;
}

#else /* the site's module under the loader's lock */

pm_noinline uintptr_t pm_unwind_caller(uintptr_t site, unsigned max_frames) {
  regs r;
  if (!climb(site, max_frames, &r)) return 0;
  /* the site's frame: its module's tables, under the loader's lock */
  module_search m = {site, 0, 0, NULL, &r, true, false, 0};
  if (!pm_unwind_enter()) return 0;
  dl_iterate_phdr(find_module, &m);
  pm_unwind_leave();
  return m.stepped ? r.pc : 0;
}

#endif

typedef struct stack_walk {
  regs r;
  uintptr_t *frames;
  uint32_t n, max;
} stack_walk;

/* The walk above the site, run in the loader's first callback: no module
 * is unloaded while it reads their tables; a rule not cached is found by
 * a nested search (the loader's lock is recursive). */
static int walk_frames(struct dl_phdr_info *info, size_t size, void *arg) {
  stack_walk *w = arg;
  uint64_t unloads = unloads_of(info, size);
  while (w->n < w->max) {
    uintptr_t pc = w->r.pc;
    uint64_t rule = cached_rule(step_key(pc - 1, unloads));
    if (rule != 0) {
      if (!apply(rule, &w->r)) break;
    } else {
      module_search m = {pc, 0, 0, NULL, &w->r, true, false, 0};
      dl_iterate_phdr(find_module, &m);
      if (!m.stepped) break;
    }
    if (w->r.pc == 0) break;
    w->frames[w->n++] = w->r.pc;
  }
  return 1;
}

pm_noinline uint32_t pm_unwind_stack(uintptr_t site, uintptr_t *frames, uint32_t max,
                                     unsigned max_own) {
  stack_walk w = {{0, 0, 0}, frames, 0, max};
  if (max == 0 || !climb(site, max_own, &w.r)) return 0;
  frames[w.n++] = site;
  if (!pm_unwind_enter()) return w.n;
  dl_iterate_phdr(walk_frames, &w);
  pm_unwind_leave();
  return w.n;
}

#else /* no unwinder for other architectures: wrappers stay single sites */

uintptr_t pm_unwind_caller(uintptr_t site, unsigned max_frames) {
  (void)site;
  (void)max_frames;
  return 0;
}

void pm_unwind_prefork(void) {}
bool pm_unwind_enter(void) {
  return true;
}
void pm_unwind_leave(void) {}
void pm_unwind_postfork(bool child) {
  (void)child;
}

uint32_t pm_unwind_stack(uintptr_t site, uintptr_t *frames, uint32_t max,
                         unsigned max_own) {
  (void)site;
  (void)frames;
  (void)max;
  (void)max_own;
  return 0;
}

#endif
