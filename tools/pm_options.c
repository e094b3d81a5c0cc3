/* pm_options.c - prints the option table: `--markdown` for the README
 * table, otherwise one "POOLMALLOC_NAME default meaning" line each. */
#include "options.h"

#include <stdio.h>
#include <string.h>

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
  else
    print_value(o, o->def);
}

int main(int argc, char **argv) {
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
      printf(" | %s |\n", o->help);
    } else {
      printf("POOLMALLOC_%-12s ", o->name);
      print_default(o);
      printf("  %s\n", o->help);
    }
  }
  return 0;
}
