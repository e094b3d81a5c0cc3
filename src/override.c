/* override.c - every symbol libpoolmalloc.so exports, and nothing else.
 *
 * Each function only forwards to the pm_ core (src/alloc.c, aligned.c,
 * glibc_compat.c, report.c): the whole glibc "Replacing malloc" list, the
 * __libc_* aliases, glibc's malloc extensions, all twenty C++ operator
 * new/delete forms, and the poolmalloc_ API of include/poolmalloc.h. A
 * missing entry point would let a call fall through to glibc and its block
 * reach our free, so tests/exports.txt pins this list. malloc, free and the
 * plain C++ new and delete forward by inlining the fast paths of alloc.h:
 * the entry point is the fast path, without a jump to pm_malloc/pm_free. */
#define _GNU_SOURCE
#include "alloc.h"
#include "fmt.h"
#include "glibc_compat.h"
#include "report.h"
#include "stats.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "poolmalloc.h"
#include "os.h"
#include "sample.h"

#include <sys/syscall.h>
#include <unistd.h>

/* pipe2, for libunwind (the sampler's unwinder). To check that an address
 * is readable it writes a byte of it into a pipe it opens at its first
 * need, at the lowest free descriptors, and when reading that pipe fails it
 * closes both descriptors and opens a new pipe. In a program those
 * descriptors are soon its own: configure's shell redirects its log onto 5
 * and its messages onto 6, so libunwind wrote NUL bytes into its output and
 * closed its log ("write error: Bad file descriptor", and no config.h) —
 * with the profile on, whenever fds 3 and 4 were taken when the first sample
 * was unwound. A pipe opened inside the unwinder (pm_sample_busy) is moved
 * to private descriptor numbers; any other pipe2 is the system call, as
 * glibc's. */
PM_EXPORT int pipe2(int fds[2], int flags) {
  long r = syscall(SYS_pipe2, fds, flags);
  if (r == 0 && pm_sample_busy) {
    pm_os_move_private(&fds[0]);
    pm_os_move_private(&fds[1]);
  }
  return (int)r;
}

PM_EXPORT void *malloc(size_t size) {
  PM_MALLOC_BODY((uintptr_t)__builtin_return_address(0));
}
PM_EXPORT void free(void *p) {
  pm_free_inline(p);
}
PM_EXPORT void *calloc(size_t n, size_t size) {
  return pm_calloc(n, size);
}
PM_EXPORT void *realloc(void *p, size_t size) {
  return pm_realloc(p, size);
}
PM_EXPORT void *reallocarray(void *p, size_t n, size_t size) {
  return pm_reallocarray(p, n, size);
}
PM_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  return pm_posix_memalign(out, align, size);
}
PM_EXPORT void *aligned_alloc(size_t align, size_t size) {
  return pm_aligned_alloc(align, size);
}
PM_EXPORT void *memalign(size_t align, size_t size) {
  return pm_memalign(align, size);
}
PM_EXPORT void *valloc(size_t size) {
  return pm_valloc(size);
}
PM_EXPORT void *pvalloc(size_t size) {
  return pm_pvalloc(size);
}
PM_EXPORT size_t malloc_usable_size(void *p) {
  return pm_usable_size(p);
}
PM_EXPORT void free_sized(void *p, size_t size) {
  (void)size;
  pm_free(p);
}
PM_EXPORT void free_aligned_sized(void *p, size_t align, size_t size) {
  (void)align;
  (void)size;
  pm_free(p);
}
PM_EXPORT void cfree(void *p) {
  pm_free(p);
}

PM_EXPORT void *__libc_malloc(size_t size) {
  return pm_malloc(size);
}
PM_EXPORT void __libc_free(void *p) {
  pm_free(p);
}
PM_EXPORT void *__libc_calloc(size_t n, size_t size) {
  return pm_calloc(n, size);
}
PM_EXPORT void *__libc_realloc(void *p, size_t size) {
  return pm_realloc(p, size);
}
PM_EXPORT void *__libc_memalign(size_t align, size_t size) {
  return pm_memalign(align, size);
}
PM_EXPORT void *__libc_valloc(size_t size) {
  return pm_valloc(size);
}
PM_EXPORT void *__libc_pvalloc(size_t size) {
  return pm_pvalloc(size);
}

PM_EXPORT int malloc_trim(size_t pad) {
  return pm_malloc_trim(pad);
}
PM_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo m;
  pm_mallinfo(&m);
  return m;
}
PM_EXPORT struct mallinfo2 mallinfo2(void) {
  struct mallinfo2 m;
  pm_mallinfo2(&m);
  return m;
}
PM_EXPORT void malloc_stats(void) {
  pm_malloc_stats();
}
PM_EXPORT int malloc_info(int options, FILE *fp) {
  return pm_malloc_info(options, fp);
}
PM_EXPORT int mallopt(int param, int value) {
  return pm_mallopt(param, value);
}

/* ---- the public API ---- */

PM_EXPORT const char *poolmalloc_version(void) {
  return PM_VERSION;
}
PM_EXPORT int poolmalloc_report_fd(int fd, int format) {
  return pm_report_write_fd(fd, format == POOLMALLOC_FORMAT_JSON ? PM_REPORT_JSON
                                                                 : PM_REPORT_TEXT)
             ? 0
             : -1;
}
PM_EXPORT size_t poolmalloc_report_buf(char *buf, size_t size, int format) {
  return pm_report_format(
      buf, size, format == POOLMALLOC_FORMAT_JSON ? PM_REPORT_JSON : PM_REPORT_TEXT);
}

PM_EXPORT int poolmalloc_report_cb(poolmalloc_write_fn write, void *arg, int format) {
  return pm_report_callback(
      write, arg, format == POOLMALLOC_FORMAT_JSON ? PM_REPORT_JSON : PM_REPORT_TEXT);
}
PM_EXPORT int poolmalloc_get_totals(poolmalloc_totals *out, size_t size) {
  return pm_get_totals(out, size);
}

/* ---- C++ operators ----
 * libstdc++ is not a dependency: its new-handler and bad_alloc come in
 * through weak references, present whenever the program is C++. */
typedef void (*pm_new_handler)(void);
extern pm_new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

/* The C++ rule: while allocation fails, call the new-handler if there is
 * one and retry; without one, throw std::bad_alloc (plain forms) or return
 * nullptr (nothrow forms). A handler may itself throw, and a nothrow form
 * must then return nullptr; C cannot catch, so with a handler installed
 * the nothrow forms hand the request to libstdc++'s own nothrow operator
 * (found with dlsym(RTLD_NEXT)), which calls our throwing form inside a
 * try block. Unwinding through this file works: it is built with
 * -fexceptions. */
typedef struct nothrow_t nothrow_t;
static pm_noinline void *new_failed(size_t size, size_t align, const char *nothrow_name) {
  for (;;) {
    pm_new_handler handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
    if (handler == NULL) {
      if (nothrow_name) return NULL;
      if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
      pm_message("operator new: out of memory and no C++ runtime to throw "
                 "std::bad_alloc; aborting");
      abort();
    }
    if (nothrow_name) {
      void *next = dlsym(RTLD_NEXT, nothrow_name);
      if (next == NULL) return NULL;
      static const char nothrow_tag = 0; /* std::nothrow is an empty struct */
      if (align)
        return ((void *(*)(size_t, size_t, const void *))next)(size, align, &nothrow_tag);
      return ((void *(*)(size_t, const void *))next)(size, &nothrow_tag);
    }
    handler();
    void *p = align ? pm_memalign(align, size) : pm_malloc(size);
    if (p != NULL) return p;
  }
}

/* always inlined into each operator: its return address is the caller's
 * call site, which lifetime routing keys on */
__attribute__((always_inline)) static inline void *cxx_new(size_t size, size_t align,
                                                           const char *nothrow_name) {
  void *p = align ? pm_memalign(align, size)
                  : pm_malloc_at(size, (uintptr_t)__builtin_return_address(0));
  if (likely(p != NULL)) return p;
  return new_failed(size, align, nothrow_name);
}

/* the plain forms: the malloc fast path inlined (it never returns NULL) */
pm_inline void *cxx_new_at(size_t size, uintptr_t site) {
  PM_MALLOC_BODY(site);
}
pm_inline void *cxx_new_plain(size_t size, uintptr_t site) {
  void *p = cxx_new_at(size, site);
  if (likely(p != NULL)) return p;
  return new_failed(size, 0, NULL);
}

typedef struct nothrow_t nothrow_t;
PM_EXPORT void *_Znwm(size_t n) {
  return cxx_new_plain(n, (uintptr_t)__builtin_return_address(0));
}
PM_EXPORT void *_Znam(size_t n) {
  return cxx_new_plain(n, (uintptr_t)__builtin_return_address(0));
}
PM_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const nothrow_t *t) {
  (void)t;
  return cxx_new(n, 0, "_ZnwmRKSt9nothrow_t");
}
PM_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const nothrow_t *t) {
  (void)t;
  return cxx_new(n, 0, "_ZnamRKSt9nothrow_t");
}
PM_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al) {
  return cxx_new(n, al, NULL);
}
PM_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al) {
  return cxx_new(n, al, NULL);
}
PM_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al,
                                                   const nothrow_t *t) {
  (void)t;
  return cxx_new(n, al, "_ZnwmSt11align_val_tRKSt9nothrow_t");
}
PM_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al,
                                                   const nothrow_t *t) {
  (void)t;
  return cxx_new(n, al, "_ZnamSt11align_val_tRKSt9nothrow_t");
}

PM_EXPORT void _ZdlPv(void *p) {
  pm_free_inline(p);
}
PM_EXPORT void _ZdaPv(void *p) {
  pm_free_inline(p);
}
PM_EXPORT void _ZdlPvm(void *p, size_t n) {
  pm_free_inline(p);
  (void)n;
}
PM_EXPORT void _ZdaPvm(void *p, size_t n) {
  pm_free_inline(p);
  (void)n;
}
PM_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const nothrow_t *t) {
  pm_free(p);
  (void)t;
}
PM_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const nothrow_t *t) {
  pm_free(p);
  (void)t;
}
PM_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t al) {
  pm_free(p);
  (void)al;
}
PM_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t al) {
  pm_free(p);
  (void)al;
}
PM_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al) {
  pm_free(p);
  (void)n;
  (void)al;
}
PM_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al) {
  pm_free(p);
  (void)n;
  (void)al;
}
PM_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al,
                                                   const nothrow_t *t) {
  pm_free(p);
  (void)al;
  (void)t;
}
PM_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al,
                                                   const nothrow_t *t) {
  pm_free(p);
  (void)al;
  (void)t;
}

/* The library links without the C runtime's start files (CMakeLists.txt:
 * -nostartfiles): crtbeginS.o's exit-time __do_global_dtors_aux wrote a
 * flag on a page of .bss nothing else touches, a page fault of every
 * process; its other parts (frame registration, transactional-memory clone
 * tables, a __cxa_finalize for dlclose) do nothing for a preloaded C
 * library. What it defined and the core uses: */
void *__dso_handle __attribute__((visibility("hidden"))) = &__dso_handle;
