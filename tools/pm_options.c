/* pm_options.c - prints the option table: `--markdown` for the README
 * table, `--man` for the ENVIRONMENT section of poolmalloc(1) (roff; the
 * build puts it into man/poolmalloc.1.in), otherwise one
 * "POOLMALLOC_NAME default meaning" line each. */
#include "options.h"

#include <stdio.h>
#include <string.h>

/* the meanings, PM_OPTIONS' last column (the library's table has none) */
#define PM_OPT_HELP(NAME, field, kind, flags, def, lo, hi, help) help,
static const char *const help_of[] = {PM_OPTIONS(PM_OPT_HELP)};
#undef PM_OPT_HELP

/* a size as the parser accepts it: 65536 -> 64K */
static void print_size(uint64_t v) {
  const char *units = "KMGT";
  int u = -1;
  while (v >= 1024 && v % 1024 == 0 && u < 3) {
    v /= 1024;
    u++;
  }
  printf("%llu", (unsigned long long)v);
  if (u >= 0) printf("%c", units[u]);
}

static void print_value(const pm_option_info *o, uint64_t v) {
  if (o->kind == PM_OPT_SIZE && v)
    print_size(v);
  else
    printf("%llu", (unsigned long long)v);
}

static void print_default(const pm_option_info *o) {
  if (o->kind == PM_OPT_STRING)
    printf("(unset)");
  else if (o->kind == PM_OPT_STATS)
    printf("%s", o->def ? "text" : "off");
  else if (o->kind == PM_OPT_CHECK)
    printf("%s", o->def ? "full" : "default");
  else
    print_value(o, o->def);
}

/* text for a roff line: backslashes escaped, no control character at the
 * start of the line */
static void print_roff(const char *s) {
  if (*s == '.' || *s == '\'') printf("\\&");
  for (; *s; s++) {
    if (*s == '\\')
      printf("\\e");
    else
      putchar(*s);
  }
}

/* one tagged paragraph per variable: name, meaning, default and range */
static void print_man(void) {
  for (size_t i = 0; i < pm_option_count; i++) {
    const pm_option_info *o = &pm_option_table[i];
    const char *help = help_of[i];
    printf(".TP\n.B POOLMALLOC_%s\n", o->name);
    /* a sentence: the table's text starts in lower case */
    if (help[0] >= 'a' && help[0] <= 'z') putchar(help[0] - 'a' + 'A');
    print_roff(help[0] >= 'a' && help[0] <= 'z' ? help + 1 : help);
    printf(".\nDefault: ");
    print_default(o);
    if (o->kind == PM_OPT_SIZE || o->kind == PM_OPT_UINT) {
      printf("; range: ");
      print_value(o, o->lo);
      printf(" to ");
      print_value(o, o->hi);
    }
    printf(".\n");
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--man") == 0) {
    print_man();
    return 0;
  }
  int md = argc > 1 && strcmp(argv[1], "--markdown") == 0;
  if (md) {
    printf("| variable | default | range | meaning |\n|---|---|---|---|\n");
  }
  for (size_t i = 0; i < pm_option_count; i++) {
    const pm_option_info *o = &pm_option_table[i];
    if (md) {
      printf("| `POOLMALLOC_%s` | ", o->name);
      print_default(o);
      if (o->kind == PM_OPT_SIZE || o->kind == PM_OPT_UINT) {
        printf(" | ");
        print_value(o, o->lo);
        printf("–");
        print_value(o, o->hi);
      } else
        printf(" | ");
      printf(" | %s |\n", help_of[i]);
    } else {
      printf("POOLMALLOC_%-12s ", o->name);
      print_default(o);
      printf("  %s\n", help_of[i]);
    }
  }
  return 0;
}
