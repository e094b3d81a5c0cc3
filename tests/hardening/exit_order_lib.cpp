/* exit_order_lib.cpp - the two libraries of the exit_order test, built from
 * this one file:
 *   EO_NEEDED  libpm_hard_eo_needed.so, linked by exit_order (DT_NEEDED, so
 *              loaded after the preloaded poolmalloc and finalized after
 *              it): eo_phase(), eo_leave() and a destructor;
 *   EO_DLOPEN  pm_hard_eo_dlopen.so, dlopen()ed by exit_order: a C++ static
 *              object, a destructor (finalized after poolmalloc too) that
 *              registers an atexit handler, which then runs last of all. */
#include "exit_order.h"
#include "hard.h"

#include <new>

#ifdef EO_NEEDED
namespace {
struct left_block {
  char name[64];
  unsigned char *p;
  size_t n;
  uint64_t sum;
};
left_block left[32];
int nleft;

bool work(void) {
  static const size_t sizes[] = {16, 200, 5000, 100000, 2u << 20};
  bool ok = true;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    void *p = malloc(n);
    if (p == NULL) return false;
    uint64_t sum = hard_fill(p, n, n);
    unsigned char *q = (unsigned char *)realloc(p, n * 2);
    if (q == NULL) return false;
    ok &= hard_sum(q, n) == sum;
    q = (unsigned char *)realloc(q, n / 2);
    if (q == NULL) return false;
    ok &= hard_sum(q, n / 2) == hard_sum(q, n / 2); /* readable */
    free(q);
    unsigned char *z = (unsigned char *)calloc(n, 1);
    if (z == NULL) return false;
    for (size_t k = 0; k < n; k += 61)
      ok &= z[k] == 0;
    free(z);
    void *a = NULL;
    if (posix_memalign(&a, 64, n) != 0 || ((uintptr_t)a & 63) != 0) return false;
    free(a);
  }
  int *v = new int[100];
  v[99] = 1;
  delete[] v;
  return ok;
}
} // namespace

extern "C" void eo_leave(const char *phase) {
  if (nleft == 32) abort();
  left_block *b = &left[nleft++];
  snprintf(b->name, sizeof b->name, "%s", phase);
  b->n = 24 + strlen(phase) * 100;
  b->p = (unsigned char *)malloc(b->n);
  if (b->p == NULL) abort();
  b->sum = hard_fill(b->p, b->n, b->n);
}

extern "C" void eo_phase(const char *phase) {
  char line[160];
  int n = snprintf(line, sizeof line, "MARK %s\n", phase);
  ssize_t w = write(2, line, (size_t)n);
  (void)w;
  bool ok = work();
  const char *why = ok ? "" : "allocations in the phase failed";
  left_block *b = NULL;
  for (int i = 0; i < nleft; i++)
    if (strcmp(left[i].name, phase) == 0 && left[i].p != NULL) b = &left[i];
  if (b == NULL) {
    ok = false, why = "no block left for this phase";
  } else {
    if (hard_sum(b->p, b->n) != b->sum)
      ok = false, why = "block left by main() corrupted";
    unsigned char *q = (unsigned char *)realloc(b->p, b->n * 3);
    if (q == NULL || hard_sum(q, b->n) != b->sum)
      ok = false, why = "realloc of the block left by main() failed";
    free(q);
    b->p = NULL;
  }
  printf("exit_order: %s: %s%s\n", phase, ok ? "ok" : "FAIL ", why);
}

__attribute__((destructor)) static void needed_fini(void) {
  eo_phase("needed-lib destructor");
}
#endif

#ifdef EO_DLOPEN
namespace {
struct dl_static {
  dl_static() { eo_leave("dlopen-lib static object destructor"); }
  ~dl_static() { eo_phase("dlopen-lib static object destructor"); }
};
dl_static the_static;

void registered_in_dtor(void) {
  eo_phase("atexit handler registered in a destructor");
}
} // namespace

extern "C" void eo_dlopen_init(void) {
  eo_leave("dlopen-lib destructor");
  eo_leave("atexit handler registered in a destructor");
}

__attribute__((destructor)) static void dlopen_fini(void) {
  eo_phase("dlopen-lib destructor");
  atexit(registered_in_dtor);
}
#endif
