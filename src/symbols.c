/* symbols.c - names for the code addresses of the report's call stacks
 * (see symbols.h).
 *
 * dladdr scans a module's whole dynamic symbol table for every address:
 * on node (75,000 symbols) one report of 90 frames cost ~40 ms and paged
 * in 1.8 MiB of .dynsym (+3.4 MiB RSS at exit for `node -e 1`). Here each
 * module's table is read once per report from its file with pread, in
 * small chunks, into a static buffer: one pass names every wanted address
 * of the module, and the pages read go to the page cache, not to the
 * process's RSS. The file's own .symtab is used when it has one (static
 * functions get names too), else .dynsym. A module whose file cannot be
 * read, or no longer matches the loaded segments, is named by dladdr as
 * before. Nothing here allocates. */
#define _GNU_SOURCE
#include "symbols.h"
#include "os.h"
#include "sample.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>

#define SYM_SLOTS 1024 /* addresses per report (power of two) */
#define SYM_MAX (SYM_SLOTS * 3 / 4)
#define NAME_BYTES (64 * 1024)
#define CHUNK_SYMS 1024 /* symbols read per pread */
#define MAX_SECTIONS 256

typedef struct sym_entry {
  uintptr_t ip; /* 0: empty slot */
  uintptr_t start;
  uint64_t name_off; /* while resolving: file offset of the candidate's name */
  uint32_t name;     /* offset + 1 into names; 0: no name */
  uint8_t done;      /* resolved, named or not */
  uint8_t cand;      /* 0 none, 1 a data or untyped symbol, 2 a function */
} sym_entry;

static sym_entry entries[SYM_SLOTS];
static uint32_t nentries;
static char names[NAME_BYTES];
static uint32_t names_len;
static _Atomic int busy;  /* one report names at a time; others go without */
static PM_TLS bool owner; /* this thread's report holds `busy` */

/* scratch for one module (used only by the holder of `busy`) */
static uint16_t order[SYM_MAX];
static ElfW(Shdr) sections[MAX_SECTIONS];
static ElfW(Sym) chunk[CHUNK_SYMS];
/* which 2^shift-byte spans of the module hold a wanted address: most symbols
 * are rejected by one bit test (node's .symtab: 107,000 symbols for ~100
 * addresses; the binary search for each cost 13 M instructions a report) */
#define SPAN_WORDS 4096
static uint64_t spans[SPAN_WORDS];
static unsigned span_shift;
static uintptr_t span_lo;

static uint32_t slot_of(uintptr_t ip) {
  uint64_t k = ip * 0x9e3779b97f4a7c15ull;
  return (uint32_t)(k >> 40) & (SYM_SLOTS - 1);
}

static sym_entry *find(uintptr_t ip) {
  for (uint32_t i = slot_of(ip), n = 0; n < SYM_SLOTS; n++, i = (i + 1) & (SYM_SLOTS - 1))
    if (entries[i].ip == ip || entries[i].ip == 0) return &entries[i];
  return NULL;
}

bool pm_symbols_begin(void) {
  int expected = 0;
  if (owner || !atomic_compare_exchange_strong(&busy, &expected, 1)) return false;
  owner = true;
  memset(entries, 0, sizeof entries);
  nentries = 0;
  names_len = 0;
  return true;
}

void pm_symbols_end(void) {
  if (!owner) return;
  owner = false;
  atomic_store(&busy, 0);
}

bool pm_symbols_want(uintptr_t ip) {
  if (!owner || ip == 0 || nentries >= SYM_MAX) return false;
  sym_entry *e = find(ip);
  if (e->ip == 0) {
    e->ip = ip;
    nentries++;
  }
  return true;
}

bool pm_symbols_get(uintptr_t ip, const char **name, uintptr_t *start) {
  if (!owner || ip == 0) return false;
  const sym_entry *e = find(ip);
  if (e == NULL || e->ip != ip || e->name == 0) return false;
  *name = &names[e->name - 1];
  *start = e->start;
  return true;
}

/* copies a NUL-terminated name into names; its offset + 1, or 0 */
static uint32_t keep_name(const char *s, size_t n) {
  if (n == 0 || names_len + n + 1 > NAME_BYTES) return 0;
  uint32_t at = names_len;
  memcpy(&names[at], s, n);
  names[at + n] = 0;
  names_len += (uint32_t)n + 1;
  return at + 1;
}

/* the name at file offset off (up to 255 bytes) into names */
static uint32_t read_name(int fd, uint64_t off) {
  char buf[256];
  size_t n = pm_os_pread(fd, buf, sizeof buf - 1, off);
  buf[n] = 0;
  return keep_name(buf, strlen(buf));
}

/* the wanted addresses of module m, not yet named, sorted, into order */
static uint32_t gather(int m) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < SYM_SLOTS && k < SYM_MAX; i++) {
    sym_entry *e = &entries[i];
    if (e->ip == 0 || e->done || pm_sample_module_of(e->ip) != m) continue;
    uint32_t j = k++;
    while (j > 0 && entries[order[j - 1]].ip > e->ip) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = (uint16_t)i;
  }
  return k;
}

/* marks the spans of the k addresses in order, for a module at [lo, hi) */
static void mark_spans(uint32_t k, uintptr_t lo, uintptr_t hi) {
  memset(spans, 0, sizeof spans);
  span_lo = lo;
  span_shift = 12;
  while (((hi - lo) >> span_shift) >= SPAN_WORDS * 64)
    span_shift++;
  for (uint32_t j = 0; j < k; j++) {
    uintptr_t i = (entries[order[j]].ip - lo) >> span_shift;
    spans[i / 64] |= 1ull << (i % 64);
  }
}

/* whether [a, end) may hold a wanted address */
static bool spans_hit(uintptr_t a, uintptr_t end) {
  if (end <= span_lo) return false;
  uintptr_t i = a > span_lo ? (a - span_lo) >> span_shift : 0,
            last = (end - 1 - span_lo) >> span_shift;
  if (last >= SPAN_WORDS * 64) last = SPAN_WORDS * 64 - 1;
  for (; i <= last; i++)
    if (spans[i / 64] >> (i % 64) & 1) return true;
  return false;
}

/* first index in order[0..k) whose address is >= a */
static uint32_t lower_bound(uint32_t k, uintptr_t a) {
  uint32_t lo = 0, hi = k;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (entries[order[mid]].ip < a)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* names the k addresses in order from the module's file; false if the
 * file cannot be read or is not the object loaded there */
static bool from_file(const pm_module_info *mod, uint32_t k) {
  int fd = pm_os_open_read(mod->path);
  if (fd < 0) return false;
  bool ok = false;
  ElfW(Ehdr) eh;
  ElfW(Phdr) ph[64];
  if (pm_os_pread(fd, &eh, sizeof eh, 0) != sizeof eh ||
      memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_shentsize != sizeof(ElfW(Shdr)) ||
      eh.e_phnum > 64 || eh.e_shnum > MAX_SECTIONS)
    goto out;
  /* the same object as the one loaded: its PT_LOAD span matches */
  size_t phn = eh.e_phnum;
  if (pm_os_pread(fd, ph, phn * sizeof ph[0], eh.e_phoff) != phn * sizeof ph[0]) goto out;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (size_t i = 0; i < phn; i++) {
    if (ph[i].p_type != PT_LOAD) continue;
    if (ph[i].p_vaddr < lo) lo = ph[i].p_vaddr;
    if (ph[i].p_vaddr + ph[i].p_memsz > hi) hi = ph[i].p_vaddr + ph[i].p_memsz;
  }
  if (lo != mod->lo - mod->base || hi != mod->hi - mod->base) goto out;
  size_t shn = eh.e_shnum;
  if (shn == 0 || pm_os_pread(fd, sections, shn * sizeof sections[0], eh.e_shoff) !=
                      shn * sizeof sections[0])
    goto out;
  const ElfW(Shdr) *symtab = NULL;
  for (size_t i = 0; i < shn; i++)
    if (sections[i].sh_type == SHT_SYMTAB) symtab = &sections[i];
  for (size_t i = 0; i < shn && symtab == NULL; i++)
    if (sections[i].sh_type == SHT_DYNSYM) symtab = &sections[i];
  if (symtab == NULL || symtab->sh_link >= shn || symtab->sh_entsize != sizeof(ElfW(Sym)))
    goto out;
  const ElfW(Shdr) *strtab = &sections[symtab->sh_link];
  mark_spans(k, mod->lo, mod->hi);
  uint64_t total = symtab->sh_size / sizeof(ElfW(Sym));
  for (uint64_t at = 0; at < total; at += CHUNK_SYMS) {
    size_t want = total - at < CHUNK_SYMS ? (size_t)(total - at) : CHUNK_SYMS;
    size_t got = pm_os_pread(fd, chunk, want * sizeof chunk[0],
                             symtab->sh_offset + at * sizeof chunk[0]) /
                 sizeof chunk[0];
    for (size_t i = 0; i < got; i++) {
      const ElfW(Sym) *s = &chunk[i];
      if (s->st_size == 0 || s->st_shndx == SHN_UNDEF || s->st_name == 0) continue;
      uintptr_t a = mod->base + s->st_value, end = a + s->st_size;
      if (!spans_hit(a, end)) continue;
      unsigned type = ELF64_ST_TYPE(s->st_info);
      if (type == STT_SECTION || type == STT_FILE || type == STT_TLS) continue;
      uint8_t rank = type == STT_FUNC || type == STT_GNU_IFUNC ? 2 : 1;
      for (uint32_t j = lower_bound(k, a); j < k && entries[order[j]].ip < end; j++) {
        sym_entry *e = &entries[order[j]];
        if (e->cand >= rank) continue;
        e->cand = rank;
        e->start = a;
        e->name_off = strtab->sh_offset + s->st_name;
      }
    }
    if (got < want) break;
  }
  for (uint32_t j = 0; j < k; j++) {
    sym_entry *e = &entries[order[j]];
    if (e->cand) e->name = read_name(fd, e->name_off);
    e->done = 1;
  }
  ok = true;
out:
  pm_os_close(fd);
  return ok;
}

/* names e with dladdr, if the object holding it is still the module m */
static void from_loader(sym_entry *e, const pm_module_info *mod) {
  Dl_info info;
  e->done = 1;
  if (dladdr((void *)e->ip, &info) == 0 || info.dli_sname == NULL) return;
  if (mod != NULL && (uintptr_t)info.dli_fbase != mod->base) return;
  e->start = (uintptr_t)info.dli_saddr;
  e->name = keep_name(info.dli_sname, strlen(info.dli_sname));
}

void pm_symbols_resolve(void) {
  if (!owner) return;
  pm_module_info mod;
  for (int m = 0; pm_sample_module(m, &mod); m++) {
    uint32_t k = gather(m);
    if (k == 0 || from_file(&mod, k)) continue;
    for (uint32_t j = 0; j < k; j++)
      from_loader(&entries[order[j]], &mod);
  }
  for (uint32_t i = 0; i < SYM_SLOTS; i++)
    if (entries[i].ip != 0 && !entries[i].done) from_loader(&entries[i], NULL);
}
