/* lt_prog.c - one call site whose blocks live long, one whose blocks die
 * young, both of the same sizes; run under the preload library.
 *
 *   lt_prog [plugin.so | --wrapper]
 *
 * With a plugin argument the long-lived blocks come from plugin_keep() in
 * that library, which is dlclose'd before exit (the report must still
 * name the site, by address). With --wrapper both kinds come from one
 * call site, in lt_wrap(), called by lt_keep_caller() for the long-lived
 * blocks and lt_drop_caller() for the others (an allocation wrapper). Prints a checksum
 * of the data it kept, which does not depend on the allocator. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 400000
#define KEEP_EVERY 64
#define RING 32

/* A call site of its own: a function that is never inlined and calls
 * `callee` not as a tail call (the asm), so the allocation's return address
 * is inside it. Exported (-rdynamic) so the report can name it. */
#define SITE(name, callee)                                                               \
  __attribute__((noinline)) void *name(size_t n) {                                       \
    void *p = callee(n);                                                                 \
    __asm__ volatile("" ::: "memory");                                                   \
    return p;                                                                            \
  }

SITE(lt_long_site, malloc)
SITE(lt_short_site, malloc)
SITE(lt_wrap, malloc)         /* a wrapper: two callers */
SITE(lt_keep_caller, lt_wrap) /* keeps the blocks it gets */
SITE(lt_drop_caller, lt_wrap) /* frees them soon */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

int main(int argc, char **argv) {
  void *(*keep)(size_t) = lt_long_site, *(*drop)(size_t) = lt_short_site;
  void *lib = NULL;
  if (argc > 1 && strcmp(argv[1], "--wrapper") == 0) {
    keep = lt_keep_caller;
    drop = lt_drop_caller;
  } else if (argc > 1) {
    lib = dlopen(argv[1], RTLD_NOW);
    if (lib == NULL) {
      fprintf(stderr, "lt_prog: %s\n", dlerror());
      return 2;
    }
    keep = (void *(*)(size_t))dlsym(lib, "plugin_keep");
    if (keep == NULL) return 2;
  }
  size_t nkept = ROUNDS / KEEP_EVERY + 1;
  unsigned char **kept = calloc(nkept, sizeof *kept);
  unsigned char *ring[RING] = {0};
  size_t k = 0;
  uint64_t sum = 0;
  for (size_t i = 0; i < ROUNDS; i++) {
    size_t n = 16 + next() % 240;
    size_t slot = i % RING;
    free(ring[slot]);
    ring[slot] = drop(n);
    if (ring[slot] == NULL) return 1;
    ring[slot][0] = (unsigned char)i;
    if (i % KEEP_EVERY == 0) {
      unsigned char *p = keep(n);
      if (p == NULL) return 1;
      memset(p, (int)(i & 0xff), n);
      kept[k++] = p;
    }
  }
  for (size_t i = 0; i < k; i++)
    sum = sum * 31 + kept[i][0];
  for (int i = 0; i < RING; i++)
    free(ring[i]);
  if (lib != NULL) { /* the plugin's blocks go, then the plugin */
    for (size_t i = 0; i < k; i++)
      free(kept[i]);
    k = 0;
    dlclose(lib);
  }
  printf("kept %zu blocks, checksum %llu\n", k, (unsigned long long)sum);
  return 0; /* the blocks of lt_long_site stay live until exit */
}
