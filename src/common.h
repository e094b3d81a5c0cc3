/* common.h - compiler helpers shared by every poolmalloc source file.
 *
 * likely/unlikely/noinline/cold are defined once here; PM_EXPORT marks the
 * only symbols the preload library exports (src/override.c). Everything else
 * is built with -fvisibility=hidden and carries the pm_ prefix. */
#ifndef PM_COMMON_H
#define PM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdatomic.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define pm_noinline __attribute__((noinline))
/* code that every process runs at load or exit (the constructor and
 * destructor and what they call) and every child of fork() (the fork
 * handlers): GCC puts constructors in .text.startup and destructors in
 * .text.exit, which the linker places together, so these share their page
 * instead of faulting in one of their own (a child maps no page of the
 * library's code until it runs it) */
#define pm_startup_code __attribute__((section(".text.startup")))
#define pm_cold __attribute__((cold, noinline))
/* The small variables every allocating process writes (the first page of a
 * class, the thread start, jemalloc's configuration): section pm_hot, which
 * cmake/pm_je_lazy.ld places after .data, on the page the loader's
 * relocations write anyway. In .bss they were on six pages of their own,
 * six page faults in every process that allocates (docs/design.md "Hot
 * variables on a written page"). Zero-initialised like .bss. */
#define PM_HOT __attribute__((section("pm_hot")))
#define pm_inline static inline __attribute__((always_inline))
#define PM_EXPORT __attribute__((visibility("default")))
#define PM_TLS __thread __attribute__((tls_model("initial-exec")))
#define PM_CACHELINE 64

#ifndef PM_COUNTING
#define PM_COUNTING 1
#endif
#if PM_COUNTING
#define PM_COUNT(stmt) (stmt)
#else
#define PM_COUNT(stmt) ((void)sizeof(stmt))
#endif

#define PM_MIN_ALIGN 16

#define relaxed_load(p) atomic_load_explicit((p), memory_order_relaxed)
#define relaxed_store(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

/* Raises *peak to v if v is larger (a relaxed maximum; slow paths only). */
pm_inline void pm_atomic_max(_Atomic uint64_t *peak, uint64_t v) {
  uint64_t old = atomic_load_explicit(peak, memory_order_relaxed);
  while (v > old && !atomic_compare_exchange_weak_explicit(
                        peak, &old, v, memory_order_relaxed, memory_order_relaxed)) {
  }
}

/* strnlen, not imported: glibc's is an IFUNC, and resolving the import ran
 * its resolver at load time (a page of libc's text, faulted in by every
 * process); the strings here are short (a warning's value, an unwind
 * table's augmentation) */
pm_inline size_t pm_strnlen(const char *s, size_t max) {
  size_t n = 0;
  while (n < max && s[n] != '\0')
    n++;
  return n;
}

#endif
