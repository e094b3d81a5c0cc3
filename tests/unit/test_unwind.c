/* test_unwind.c - poolmalloc's own stack walk (src/unwind.c): the caller of
 * the function holding a call site, through frames of every shape a
 * compiler makes (a frame pointer, a large frame, alloca's rbp-based CFA,
 * callee-saved registers pushed, a signal handler on an alternate stack),
 * in the main thread and another, and 0 whenever the answer is not known.
 *
 * `probe` plays malloc: it reads its own return address (the call site in
 * a wrapper) and asks for the wrapper's caller from under a few frames of
 * its own, as pm_sample_caller does from inside poolmalloc. Each wrapper
 * records its own return address, the answer expected. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <alloca.h>
#include <dlfcn.h>
#include <link.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unwind.h"

#define opaque(x) __asm__ volatile("" : : "r"(x) : "memory")

static uintptr_t expected, found;
static unsigned depth_asked = 10;

/* the allocator's own frames below the site, of different sizes */
__attribute__((noinline)) static uintptr_t inner2(uintptr_t site) {
  volatile char pad[200];
  pad[0] = 1;
  uintptr_t r = pm_unwind_caller(site, depth_asked);
  opaque(pad);
  return r;
}

/* poolmalloc's own frames above the walk: n recursive frames with six
 * values live across each call (every callee-saved register, rbp too, so a
 * wrapper's rbp-based CFA needs rbp restored from its slot), then `leaf`,
 * which walks */
typedef uintptr_t (*leaf_fn)(uintptr_t site);
__attribute__((noinline)) static uintptr_t own_frames(uintptr_t site, long n,
                                                      leaf_fn leaf) {
  long a = n * 3, b = n * 5, c = n * 7, d = n * 11, e = n * 13, f = n * 17;
  opaque(a);
  opaque(b);
  opaque(c);
  opaque(d);
  opaque(e);
  opaque(f);
  uintptr_t r = n > 0 ? own_frames(site, n - 1, leaf) : leaf(site);
  opaque(a);
  opaque(b);
  opaque(c);
  opaque(d);
  opaque(e);
  opaque(f);
  return r;
}

static uintptr_t last_site;
__attribute__((noinline)) static void *probe(int own_frames_n) {
  uintptr_t site = (uintptr_t)__builtin_return_address(0);
  last_site = site;
  found = own_frames(site, own_frames_n, inner2);
  opaque(found);
  return &found;
}

__attribute__((noinline)) static void *wrap_plain(int own) {
  expected = (uintptr_t)__builtin_return_address(0);
  void *p = probe(own);
  opaque(p);
  return p;
}

__attribute__((noinline, optimize("no-omit-frame-pointer"))) static void *
wrap_frame_pointer(int own) {
  expected = (uintptr_t)__builtin_return_address(0);
  void *p = probe(own);
  opaque(p);
  return p;
}

__attribute__((noinline)) static void *wrap_big_frame(int own) {
  expected = (uintptr_t)__builtin_return_address(0);
  volatile char big[20000];
  big[0] = (char)own;
  void *p = probe(own);
  opaque(big);
  opaque(p);
  return p;
}

/* a frame of run-time size: its CFA is written in rbp */
__attribute__((noinline)) static void *wrap_alloca(int own, size_t n) {
  expected = (uintptr_t)__builtin_return_address(0);
  char *b = alloca(n);
  memset(b, 1, n);
  opaque(b);
  void *p = probe(own);
  opaque(b);
  opaque(p);
  return p;
}

/* values live across the call: callee-saved registers pushed */
__attribute__((noinline)) static void *wrap_registers(int own, long a, long b, long c,
                                                      long d, long e) {
  expected = (uintptr_t)__builtin_return_address(0);
  void *p = probe(own);
  long s = a * 3 + b * 5 + c * 7 + d * 11 + e * 13;
  opaque(s);
  opaque(a);
  opaque(b);
  opaque(c);
  opaque(d);
  opaque(e);
  return p;
}

/* the same shapes with per-thread answers, for threads at once */
static __thread uintptr_t t_found;
__attribute__((noinline)) static void *t_probe(int own_frames_n) {
  uintptr_t site = (uintptr_t)__builtin_return_address(0);
  t_found = own_frames(site, own_frames_n, inner2);
  opaque(t_found);
  return &t_found;
}

__attribute__((noinline)) static void *t_wrap(int own, uintptr_t *want) {
  *want = (uintptr_t)__builtin_return_address(0);
  char *b = alloca(64 + (size_t)own * 32);
  memset(b, 0, 64);
  opaque(b);
  void *p = t_probe(own);
  opaque(b);
  opaque(p);
  return p;
}

static void check(const char *shape) {
  cr_assert_neq(expected, 0);
  cr_assert_eq(found, expected, "%s: caller %#lx, expected %#lx", shape,
               (unsigned long)found, (unsigned long)expected);
}

/* twice each: a step's rule is read from the frame's instructions the
 * first time, from the cache of steps after */
static void every_shape(void) {
  for (int own = 0; own < 10; own++) {
    found = 1;
    wrap_plain(own % 5);
    check("plain");
    found = 1;
    wrap_frame_pointer(own % 5);
    check("frame pointer");
    found = 1;
    wrap_big_frame(own % 5);
    check("big frame");
    found = 1;
    wrap_alloca(own % 5, 100 + (size_t)own * 1000);
    check("alloca");
    found = 1;
    wrap_registers(own % 5, own, 2, 3, 4, 5);
    check("registers");
  }
}

Test(unwind, finds_the_caller_of_every_frame_shape) {
  every_shape();
}

/* threads share the cache of steps: each checks its own answers */
static void *thread_main(void *arg) {
  (void)arg;
  for (int round = 0; round < 2000; round++) {
    uintptr_t want = 0;
    for (int own = 0; own < 5; own++) {
      t_found = 1;
      t_wrap(own, &want);
      if (t_found != want) return (void *)1;
    }
  }
  return NULL;
}

Test(unwind, threads_share_the_steps) {
  /* the first walk of the process finds poolmalloc's module: a walk in
   * another thread meanwhile gives up (0) rather than wait */
  every_shape();
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, thread_main, NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *bad = NULL;
    pthread_join(t[i], &bad);
    cr_assert_null(bad, "a thread found a wrong caller");
  }
}

static volatile sig_atomic_t handled;
static void on_signal(int sig) {
  (void)sig;
  every_shape(); /* cr_assert from a handler: a failure ends the process */
  handled = 1;
}

Test(unwind, finds_it_in_a_signal_handler_on_its_own_stack) {
  static char alt[1 << 16];
  stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
  cr_assert_eq(sigaltstack(&ss, NULL), 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_ONSTACK;
  cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
  raise(SIGUSR1);
  cr_assert_eq(handled, 1);
}

Test(unwind, zero_when_the_site_is_not_on_the_stack) {
  /* an address inside a function that is not running */
  cr_assert_eq(pm_unwind_caller((uintptr_t)&wrap_plain + 4, 10), 0);
  cr_assert_eq(pm_unwind_caller(0, 10), 0);
  cr_assert_eq(pm_unwind_caller(1, 10), 0);
}

Test(unwind, zero_when_the_site_is_deeper_than_asked) {
  /* inner2, own_frames x5, probe: the site is 7 steps up */
  depth_asked = 5;
  found = 1;
  wrap_plain(4);
  cr_assert_eq(found, 0);
  depth_asked = 10;
  wrap_plain(4);
  check("plain, deep enough");
}

/* ---- whole stacks (the profile's), against glibc's backtrace(), which
 * uses libgcc's unwinder ---- */

static uintptr_t own_stack[32];
static uint32_t own_n;
static void *their_stack[64];
static int their_n;

__attribute__((noinline)) static uintptr_t stack_leaf(uintptr_t site) {
  return pm_unwind_stack(site, own_stack, 32, 16);
}

__attribute__((noinline)) static void *stack_probe(int own) {
  uintptr_t site = (uintptr_t)__builtin_return_address(0);
  own_n = (uint32_t)own_frames(site, own, stack_leaf);
  their_n = backtrace(their_stack, 64);
  opaque(own_n);
  return &own_n;
}

#define STACK_LEVEL(name, next)                                                          \
  __attribute__((noinline)) static void *name(int own, size_t n) {                       \
    char *b = alloca(n);                                                                 \
    memset(b, 0, n);                                                                     \
    opaque(b);                                                                           \
    void *p = next;                                                                      \
    opaque(b);                                                                           \
    opaque(p);                                                                           \
    return p;                                                                            \
  }
STACK_LEVEL(level3, stack_probe(own))
STACK_LEVEL(level2, level3(own, n + 16))
STACK_LEVEL(level1, level2(own, n * 2))

/* backtrace()'s frames from stack_probe's return address on: the same */
static void same_as_backtrace(int min_frames) {
  int at = -1;
  for (int i = 0; i < their_n && at < 0; i++)
    if ((uintptr_t)their_stack[i] == own_stack[0]) at = i;
  cr_assert_geq(at, 0, "the site is on backtrace()'s stack");
  uint32_t theirs = (uint32_t)(their_n - at);
  cr_assert_geq(own_n, (uint32_t)min_frames, "%u frames", own_n);
  for (uint32_t i = 0; i < own_n && i < theirs; i++)
    cr_assert_eq(own_stack[i], (uintptr_t)their_stack[at + (int)i], "frame %u differs",
                 i);
  if (theirs < 32)
    cr_assert_eq(own_n, theirs, "own %u frames, backtrace %u", own_n, theirs);
}

Test(unwind, a_whole_stack_is_backtraces) {
  for (int own = 0; own < 6; own++) {
    own_n = 0;
    level1(own, 40);
    same_as_backtrace(5);
  }
}

static volatile sig_atomic_t stack_handled;
static void on_signal_stack(int sig) {
  (void)sig;
  level1(2, 100);
  stack_handled = 1;
}

/* a handler's stack ends at the signal frame: backtrace() goes on */
Test(unwind, a_stack_in_a_signal_handler_ends_at_the_signal_frame) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal_stack;
  cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
  raise(SIGUSR2);
  cr_assert_eq(stack_handled, 1);
  int at = -1;
  for (int i = 0; i < their_n && at < 0; i++)
    if ((uintptr_t)their_stack[i] == own_stack[0]) at = i;
  cr_assert_geq(at, 0);
  /* level3, level2, level1, the handler; then the signal trampoline */
  cr_assert_geq(own_n, 4);
  cr_assert_lt(own_n, (uint32_t)(their_n - at),
               "backtrace() steps through the signal frame");
  for (uint32_t i = 0; i < own_n; i++)
    cr_assert_eq(own_stack[i], (uintptr_t)their_stack[at + (int)i], "frame %u differs",
                 i);
}

/* ---- fork: a child forked while other threads walk can walk too ----
 *
 * glibc's child inherits the loader's list lock as it was: had a walker
 * held it (inside dl_iterate_phdr) at the fork, the child's first walk
 * would wait forever. The fork handlers keep walks out of it; a hung child
 * is killed by its alarm and fails the test. */
static _Atomic int stop_walkers;

__attribute__((noinline)) static void *walker_probe(void) {
  uintptr_t site = (uintptr_t)__builtin_return_address(0);
  uintptr_t frames[32];
  uint32_t n = pm_unwind_stack(site, frames, 32, 16);
  opaque(n);
  opaque(frames);
  return NULL;
}

__attribute__((noinline)) static uint32_t child_walk_probe(uintptr_t *frames) {
  uintptr_t site = (uintptr_t)__builtin_return_address(0);
  uint32_t n = pm_unwind_stack(site, frames, 32, 16);
  opaque(n);
  return n;
}

__attribute__((noinline)) static uint32_t child_walk(uintptr_t *frames) {
  uint32_t n = child_walk_probe(frames);
  opaque(n);
  return n;
}

static void *walker(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_walkers)) {
    void *p = walker_probe();
    opaque(p);
  }
  return NULL;
}

Test(unwind, a_child_forked_during_walks_walks) {
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, walker, NULL), 0);
  int bad = 0;
  for (int i = 0; i < 300 && !bad; i++) {
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* walks only (no backtrace(): it loads libgcc_s) */
      alarm(10);
      uintptr_t frames[32];
      uint32_t n = child_walk(frames);
      _exit(n >= 3 ? 0 : 2);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    bad = !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? i + 1 : 0;
  }
  atomic_store(&stop_walkers, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  cr_assert_eq(bad, 0, "child %d hung or failed", bad);
}

/* The site's module is found without the loader's lock (_dl_find_object):
 * a thread inside dl_iterate_phdr (which holds the lock, as a C++
 * unwinder or a sampling profiler does) does not hold up an allocation's
 * walk in another thread. The holder waits up to 5 s for the walker's
 * answer; with a walk that takes the lock it never comes. */
static atomic_int lock_held, walk_done;
static int hold_loader_lock(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)info;
  (void)size;
  atomic_store(&lock_held, 1);
  for (int i = 0; i < 5000 && !atomic_load(&walk_done); i++)
    usleep(1000);
  *(int *)arg = atomic_load(&walk_done);
  return 1;
}

static void *lock_holder(void *arg) {
  dl_iterate_phdr(hold_loader_lock, arg);
  return NULL;
}

Test(unwind, walks_while_another_thread_holds_the_loaders_lock) {
  every_shape(); /* poolmalloc's module is found before, under the lock */
  int answered = 0;
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, lock_holder, &answered), 0);
  while (!atomic_load(&lock_held))
    usleep(100);
  found = 1;
  wrap_frame_pointer(3);
  uintptr_t got = found, want = expected;
  atomic_store(&walk_done, 1);
  pthread_join(t, NULL);
  cr_assert_eq(got, want, "caller %#lx, expected %#lx", (unsigned long)got,
               (unsigned long)want);
  cr_assert_eq(answered, 1, "the walk waited for the loader's lock");
}

/* A module unloaded and another loaded at its address: the cached rule of
 * the first module's call site must not serve the second's call at the
 * same address, whose frame is larger (tests/unit/unwind_plugin.c, built
 * twice). The key of a foreign frame is made of its description's bytes;
 * a key of the pc alone would read the return address from the wrong slot
 * of the second frame. */
typedef void *(*plugin_wrap_fn)(void *(*)(int), int, uintptr_t *);
static uintptr_t through_plugin(const char *path, uintptr_t *site) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  cr_assert_not_null(h, "dlopen %s: %s", path, dlerror());
  plugin_wrap_fn wrap = (plugin_wrap_fn)(uintptr_t)dlsym(h, "plugin_wrap");
  cr_assert_not_null(wrap);
  for (int i = 0; i < 3; i++) { /* the first finds the rule, the others use the cache */
    found = 1;
    wrap(probe, 2, &expected);
    cr_assert_eq(found, expected, "%s: caller %#lx, expected %#lx", path,
                 (unsigned long)found, (unsigned long)expected);
  }
  *site = last_site;
  cr_assert_eq(dlclose(h), 0);
  return (uintptr_t)wrap;
}

Test(unwind, a_module_loaded_where_another_was_gets_its_own_rules) {
  every_shape();
  uintptr_t site_a, site_b;
  uintptr_t a = through_plugin(PM_UNWIND_PLUGIN_A, &site_a);
  uintptr_t b = through_plugin(PM_UNWIND_PLUGIN_B, &site_b);
  if (a != b || site_a != site_b)
    cr_skip_test("the second module was not mapped where the first was (%#lx, %#lx)",
                 (unsigned long)a, (unsigned long)b);
}
