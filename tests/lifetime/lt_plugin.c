/* lt_plugin.c - a long-lived call site in a library that is dlclose'd. */
#include <stdlib.h>

__attribute__((noinline)) void *plugin_keep(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
