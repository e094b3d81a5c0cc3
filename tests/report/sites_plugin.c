/* sites_plugin.c - a library sites_prog loads, allocates through (4 MiB
 * kept) and unloads: the profile must still name its module. */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *plugin_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

void plugin_run(void) {
  for (int i = 0; i < 4 * 1024 * 1024 / 256; i++)
    memset(plugin_site(256), 5, 256);
}
