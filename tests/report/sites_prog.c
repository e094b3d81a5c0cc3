/* sites_prog.c - a program with known allocation sites, for the heap
 * profile's tests and the sample report in docs/report.md.
 *
 *   direct_site     40 MiB of 1000 B blocks live at the peak, all freed
 *   leak_site       8 MiB of 200 B blocks never freed (a leak)
 *   via_wrapper     8 MiB of 100 KB blocks through a wrapper, never freed
 *   cxx-like churn  a short-lived site of 64 B blocks (by volume only)
 *   a thread        4 MiB of 512 B blocks from a second thread, never freed
 *   plugin_site     4 MiB of 256 B blocks from a library that is dlclose'd
 *                   before exit (SITES_PLUGIN), never freed
 * Every site allocates many times the sampling rate, so each is sampled. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024 * 1024)

__attribute__((noinline)) void *direct_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory"); /* no tail call: the site is this function */
  return p;
}
__attribute__((noinline)) void *leak_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
__attribute__((noinline)) void *wrapper(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
__attribute__((noinline)) void *via_wrapper(size_t n) {
  void *p = wrapper(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
__attribute__((noinline)) void *churn_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
__attribute__((noinline)) void *thread_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 4 * MiB / 512; i++)
    memset(thread_site(512), 3, 512);
  return NULL;
}

int main(void) {
  enum { N = 40 * MiB / 1000 };
  static void *hold[N];
  for (int i = 0; i < N; i++)
    memset(hold[i] = direct_site(1000), 1, 1000);
  for (int i = 0; i < N; i++)
    free(hold[i]);
  for (int i = 0; i < 8 * MiB / 200; i++)
    memset(leak_site(200), 2, 200);
  for (int i = 0; i < 8 * MiB / 100000; i++)
    memset(via_wrapper(100000), 4, 4096);
  for (int i = 0; i < 1000000; i++)
    free(churn_site(64));
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_join(t, NULL);
  void *lib = dlopen(SITES_PLUGIN, RTLD_NOW);
  if (lib == NULL) return 2;
  void (*run)(void) = (void (*)(void))dlsym(lib, "plugin_run");
  if (run == NULL) return 3;
  run();
  dlclose(lib);
  puts("sites_prog: done");
  return 0;
}
