/* pm_lazy_relocs LIB - moves the load-time relocations of the embedded
 * jemalloc's mallctl tree (section pm_je_lazy, cmake/EmbedJemalloc.cmake)
 * out of LIB's dynamic relocation table and into the table
 * pm_je_lazy_table (src/je_lazy.c), which src/fallback.c applies when
 * jemalloc starts. Every process that never starts jemalloc then leaves
 * those pages untouched instead of writing them at load (docs/design.md,
 * "Start-up: what the loader writes").
 *
 * The R_X86_64_RELATIVE entries come first in .rela.dyn (DT_RELACOUNT of
 * them; the loader applies those without looking at their type); the
 * ones that target pm_je_lazy are taken out, the table's other entries
 * move up to close the gap, and DT_RELACOUNT and DT_RELASZ (and the
 * section's size) shrink: the loader's loop never visits the moved
 * entries, as it did when they were left as R_X86_64_NONE (about 29,000
 * instructions of every process's start); the freed bytes at the end are
 * zeroed. The linker writes each relative relocation's addend into the
 * word it patches too, so the lazy pass only adds the load address. Run
 * once, after the link (a second run finds the table filled and does
 * nothing); when anything is not as expected it leaves the file unchanged,
 * and the library relocates everything at load as before. */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PM_LAZY_MAGIC 0x4c5a4d50u /* "PMZL" */

static unsigned char *data;
static size_t size;

static int fail(const char *what) {
  fprintf(stderr, "pm_lazy_relocs: %s; library left as linked\n", what);
  return 0; /* not an error: the library is correct without the patch */
}

static Elf64_Off to_off(const Elf64_Ehdr *eh, Elf64_Addr v, size_t len) {
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + eh->e_phoff);
  for (unsigned i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && v >= ph[i].p_vaddr &&
        v + len <= ph[i].p_vaddr + ph[i].p_filesz)
      return v - ph[i].p_vaddr + ph[i].p_offset;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: pm_lazy_relocs LIB\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) return perror(argv[1]), 1;
  fseek(f, 0, SEEK_END);
  size = (size_t)ftell(f);
  rewind(f);
  data = malloc(size);
  if (data == NULL || fread(data, 1, size, f) != size) return perror("read"), 1;
  fclose(f);
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)data;
  if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
    return fail("not an x86-64 ELF file");
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(data + eh->e_shoff);
  const char *shstr = (const char *)data + sh[eh->e_shstrndx].sh_offset;
  const Elf64_Shdr *lazy = NULL, *symtab = NULL, *dynamic = NULL;
  for (unsigned i = 0; i < eh->e_shnum; i++) {
    const char *n = shstr + sh[i].sh_name;
    if (strcmp(n, "pm_je_lazy") == 0) lazy = &sh[i];
    if (sh[i].sh_type == SHT_SYMTAB) symtab = &sh[i];
    if (sh[i].sh_type == SHT_DYNAMIC) dynamic = &sh[i];
  }
  if (lazy == NULL || symtab == NULL || dynamic == NULL)
    return fail("no pm_je_lazy section, symbol table or dynamic section");
  /* written when jemalloc starts: it must not be read-only by then */
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + eh->e_phoff);
  for (unsigned i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_GNU_RELRO && lazy->sh_addr < ph[i].p_vaddr + ph[i].p_memsz &&
        lazy->sh_addr + lazy->sh_size > ph[i].p_vaddr)
      return fail("pm_je_lazy is inside RELRO");
  /* the table */
  const Elf64_Sym *sym = (const Elf64_Sym *)(data + symtab->sh_offset);
  const char *str = (const char *)data + sh[symtab->sh_link].sh_offset;
  Elf64_Off table = 0;
  size_t table_size = 0;
  for (size_t i = 0; i < symtab->sh_size / sizeof *sym; i++)
    if (strcmp(str + sym[i].st_name, "pm_je_lazy_table") == 0) {
      table_size = sym[i].st_size;
      table = to_off(eh, sym[i].st_value, table_size);
    }
  if (table == 0 || table_size < 8) return fail("no pm_je_lazy_table");
  uint32_t *tab = (uint32_t *)(data + table);
  if (tab[0] != PM_LAZY_MAGIC) return fail("pm_je_lazy_table has no magic");
  if (tab[1] != 0) return 0; /* already done */
  size_t cap = table_size / 4 - 2;
  /* the relocations */
  Elf64_Dyn *dyn = (Elf64_Dyn *)(data + dynamic->sh_offset);
  Elf64_Addr rela = 0;
  uint64_t relasz = 0;
  Elf64_Dyn *relacount = NULL, *relasz_dyn = NULL;
  for (Elf64_Dyn *d = dyn; d->d_tag != DT_NULL; d++) {
    if (d->d_tag == DT_RELA) rela = d->d_un.d_ptr;
    if (d->d_tag == DT_RELASZ) relasz_dyn = d, relasz = d->d_un.d_val;
    if (d->d_tag == DT_RELACOUNT) relacount = d;
  }
  if (rela == 0 || relacount == NULL || relasz_dyn == NULL)
    return fail("no DT_RELA, DT_RELASZ or DT_RELACOUNT");
  /* the section header of the table, kept in step for readelf */
  Elf64_Shdr *rela_sh = NULL;
  for (unsigned i = 0; i < eh->e_shnum; i++)
    if (sh[i].sh_type == SHT_RELA && sh[i].sh_addr == rela && sh[i].sh_size == relasz)
      rela_sh = (Elf64_Shdr *)&sh[i];
  if (rela_sh == NULL) return fail("no section header for DT_RELA");
  Elf64_Off roff = to_off(eh, rela, relasz);
  if (roff == 0) return fail("DT_RELA outside the file");
  Elf64_Rela *r = (Elf64_Rela *)(data + roff);
  size_t nrel = relacount->d_un.d_val, keep = 0, moved = 0;
  if (nrel > relasz / sizeof *r) return fail("DT_RELACOUNT too large");
  Elf64_Addr lo = lazy->sh_addr, hi = lazy->sh_addr + lazy->sh_size;
  Elf64_Rela *lazy_rel = malloc(nrel * sizeof *lazy_rel);
  if (lazy_rel == NULL) return 1;
  for (size_t i = 0; i < nrel; i++) {
    if (ELF64_R_TYPE(r[i].r_info) != R_X86_64_RELATIVE)
      return fail("a non-relative entry within DT_RELACOUNT");
    if (r[i].r_offset >= lo && r[i].r_offset + 8 <= hi)
      lazy_rel[moved++] = r[i];
    else
      r[keep++] = r[i];
  }
  if (moved == 0) return fail("no relocation in pm_je_lazy");
  if (moved > cap) return fail("pm_je_lazy_table too small");
  for (size_t i = 0; i < moved; i++) {
    Elf64_Off w = to_off(eh, lazy_rel[i].r_offset, 8);
    if (w == 0 || lazy_rel[i].r_offset > UINT32_MAX)
      return fail("a target outside the file");
    int64_t content;
    memcpy(&content, data + w, 8);
    if (content != lazy_rel[i].r_addend) return fail("a target without its addend");
  }
  for (size_t i = 0; i < moved; i++)
    tab[2 + i] = (uint32_t)lazy_rel[i].r_offset;
  size_t total = relasz / sizeof *r;
  memmove(&r[keep], &r[nrel], (total - nrel) * sizeof *r);
  memset(&r[total - moved], 0, moved * sizeof *r);
  tab[1] = (uint32_t)moved;
  relacount->d_un.d_val = keep;
  relasz_dyn->d_un.d_val = (total - moved) * sizeof *r;
  rela_sh->sh_size = relasz_dyn->d_un.d_val;
  f = fopen(argv[1], "r+b");
  if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
    return perror(argv[1]), 1;
  return 0;
}
