/* unwind_alloc.c - the unwinder allocates while the sampler unwinds.
 *
 * libgcc's unwinder sorts the FDEs of frames registered with
 * __register_frame_info the first time it searches them, with malloc,
 * while it holds its object mutex. This program registers its own
 * .eh_frame that way, then allocates under a profile that samples nearly
 * every request: the sampler's first unwind makes the unwinder call malloc
 * inside the sampler. If that allocation were sampled too, its unwind would
 * wait for the object mutex its own thread holds.
 *
 * libunwind (POOLMALLOC_UNWINDER=2) allocates too: its first unwind in
 * a thread makes a cache and stores it with pthread_setspecific, which
 * callocs when the key is not among the first 32. The program creates 40
 * keys first, then allocates from a new thread. Run under a timeout: a
 * hang or a crash fails the test. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void __register_frame_info(const void *begin, void *ob);

static const unsigned char *eh_frame_hdr;

static int find_hdr(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size, (void)arg;
  if (info->dlpi_name && info->dlpi_name[0]) return 0; /* the main program only */
  for (unsigned i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
      eh_frame_hdr =
          (const unsigned char *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  return 1;
}

__attribute__((noinline)) static void *alloc_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

static void *churn(void *arg) {
  void *keep[4096];
  for (int r = 0; r < 20; r++) {
    for (int i = 0; i < 4096; i++)
      keep[i] = alloc_site(16 + (size_t)(i % 64) * 16);
    for (int i = 0; i < 4096; i++)
      free(keep[i]);
  }
  return arg;
}

int main(void) {
  pthread_key_t keys[40]; /* libunwind's cache key is past the first 32 */
  for (int i = 0; i < 40; i++)
    if (pthread_key_create(&keys[i], NULL) != 0) return 1;
  dl_iterate_phdr(find_hdr, NULL);
  /* version 1, eh_frame_ptr encoded pc-relative sdata4 (0x1b) */
  if (eh_frame_hdr == NULL || eh_frame_hdr[0] != 1 || eh_frame_hdr[1] != 0x1b) {
    puts("unwind_alloc: no usable .eh_frame_hdr; nothing to test");
    return 77;
  }
  int32_t rel;
  memcpy(&rel, eh_frame_hdr + 4, 4);
  static char object[512] __attribute__((aligned(16)));
  __register_frame_info(eh_frame_hdr + 4 + rel, object);
  pthread_t t;
  if (pthread_create(&t, NULL, churn, NULL) != 0) return 1;
  pthread_join(t, NULL);
  churn(NULL);
  puts("unwind_alloc: done");
  return 0;
}
