/* test_corruption.c - heap-corruption detection: double frees, interior
 * pointers and frees into pages that are not in use abort with one line on
 * stderr naming the call and the address. The message tests run the bad
 * call in a forked child with stderr on a pipe, so the parent can check
 * both the signal and the text. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "fallback.h"
#include "heap.h"
#include "page.h"
#include "stats.h"

static void no_core(void) {
  struct rlimit r = {0, 0};
  setrlimit(RLIMIT_CORE, &r);
}

/* the abort message would clutter the runner's output */
static void quiet_abort(void) {
  no_core();
  cr_redirect_stderr();
}

/* ---- the plain Criterion form ---- */

Test(corruption, double_free_aborts, .signal = SIGABRT, .init = quiet_abort) {
  void *p = pm_malloc(32);
  pm_free(p);
  pm_free(p);
}

Test(corruption, interior_pointer_free_aborts, .signal = SIGABRT, .init = quiet_abort) {
  char *p = pm_malloc(100);
  pm_free(p + 16);
}

Test(corruption, no_abort_without_corruption) {
  /* the control for the two above: the same calls, correctly */
  void *p = pm_malloc(32);
  pm_free(p);
  char *q = pm_malloc(100);
  pm_free(q);
}

/* ---- stderr and the signal, through a forked child ---- */

static char child_err[1024];

typedef void (*child_fn)(void);

/* runs fn in a child; returns its wait status and leaves its stderr in
 * child_err */
static int in_child(child_fn fn) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    no_core();
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], child_err + len, sizeof child_err - 1 - len)) > 0)
    len += (size_t)n;
  child_err[len] = 0;
  close(fds[0]);
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return status;
}

static void expect_abort(child_fn fn, const char *call, const char *what) {
  int status = in_child(fn);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
            "expected SIGABRT, got status %#x; stderr: %s", status, child_err);
  cr_assert_eq(strncmp(child_err, "poolmalloc: ", 12), 0, "stderr: %s", child_err);
  char want[256];
  snprintf(want, sizeof want, "poolmalloc: %s: %s (address ", call, what);
  cr_assert_eq(strncmp(child_err, want, strlen(want)), 0, "want prefix '%s', got '%s'",
               want, child_err);
  cr_assert(strstr(child_err, "); aborting\n") != NULL, "%s", child_err);
  cr_assert_eq(strchr(child_err, '\n'), child_err + strlen(child_err) - 1, "one line: %s",
               child_err);
}

static void expect_address(void *addr) {
  char hex[40];
  snprintf(hex, sizeof hex, "(address %#lx)", (unsigned long)(uintptr_t)addr);
  cr_assert(strstr(child_err, hex) != NULL, "message does not name %s: %s", hex,
            child_err);
}

static void double_free_in_a_fresh_child(void) {
  void *p = pm_malloc(32); /* the child's own first call: a fresh heap */
  pm_free(p);
  pm_free(p);
}

Test(corruption, double_free_message) {
  expect_abort(double_free_in_a_fresh_child, "free()", "double free detected");
  char *at = strstr(child_err, "(address 0x");
  cr_assert_not_null(at, "%s", child_err);
  unsigned long a = strtoul(at + 9, NULL, 16);
  cr_assert_neq(a, 0);
  cr_assert_eq(a % 65536, 0, "names the first block of the child's first page: %s",
               child_err);
}

/* For the remaining cases the parent allocates first, then forks: the
 * child inherits the heap, so the addresses are the parent's. */
static void *bad_ptr;
static void free_bad(void) {
  pm_free(bad_ptr);
}
static void realloc_bad(void) {
  pm_realloc(bad_ptr, 10);
}
static void usable_bad(void) {
  (void)pm_usable_size(bad_ptr);
}

Test(corruption, double_free_of_an_inherited_block_names_it) {
  void *p = pm_malloc(32);
  pm_free(p);
  bad_ptr = p;
  expect_abort(free_bad, "free()", "double free detected");
  expect_address(p);
}

Test(corruption, double_free_deep_in_the_free_list) {
  void *v[50];
  for (int i = 0; i < 50; i++)
    v[i] = pm_malloc(48);
  for (int i = 0; i < 50; i++)
    pm_free(v[i]);
  bad_ptr = v[3]; /* not the list head: found by walking the list */
  expect_abort(free_bad, "free()", "double free detected");
  expect_address(v[3]);
}

Test(corruption, interior_pointer_message) {
  char *p = pm_malloc(100);
  bad_ptr = p + 16;
  expect_abort(free_bad, "free()", "invalid pointer: not the start of a block");
  expect_address(p + 16);
  bad_ptr = p + 1;
  expect_abort(free_bad, "free()", "invalid pointer: not the start of a block");
  expect_address(p + 1);
  pm_free(p); /* the parent's copy is still fine */
}

static void *thread_free(void *arg) {
  pm_free(arg);
  return NULL;
}
static void remote_free_bad(void) {
  pthread_t t;
  pthread_create(&t, NULL, thread_free, bad_ptr);
  pthread_join(t, NULL);
}

Test(corruption, remote_double_free) {
  void *p = pm_malloc(64);
  pm_free(p);
  bad_ptr = p;
  expect_abort(remote_free_bad, "free()", "double free detected");
  expect_address(p);
}

Test(corruption, remote_interior_free) {
  char *p = pm_malloc(64);
  bad_ptr = p + 32;
  expect_abort(remote_free_bad, "free()", "invalid pointer: not the start of a block");
  expect_address(p + 32);
}

static void *free_in_thread_and_keep(void *arg) {
  pm_free(arg);
  return NULL;
}

Test(corruption, owner_frees_a_block_already_freed_remotely) {
  void *p = pm_malloc(64);
  void *keep = pm_malloc(64);
  pthread_t t;
  pthread_create(&t, NULL, free_in_thread_and_keep, p);
  pthread_join(t, NULL);
  cr_assert_not_null(atomic_load(&pm_page_of(p)->remote));
  bad_ptr = p; /* on the remote list, not collected yet */
  expect_abort(free_bad, "free()", "double free detected");
  expect_address(p);
  pm_free(keep);
}

Test(corruption, free_into_a_released_page) {
  enum { N = 3 * 64 };
  void *v[N];
  for (int i = 0; i < N; i++)
    v[i] = pm_malloc(1024);
  pm_page *first = pm_page_of(v[0]);
  for (int i = 0; i < N; i++)
    pm_free(v[i]);
  cr_assert_eq(first->state, PM_PAGE_FREE);
  bad_ptr = v[0];
  expect_abort(free_bad, "free()", "invalid pointer: its pool page is not in use");
  expect_address(v[0]);
}

Test(corruption, free_into_an_untouched_part_of_the_region) {
  pm_free(pm_malloc(8));
  bad_ptr = (char *)pm_g.base + pm_g.size / 2;
  expect_abort(free_bad, "free()", "invalid pointer: its pool page is not in use");
  expect_address(bad_ptr);
}

Test(corruption, realloc_and_usable_size_check_their_pointer) {
  char *p = pm_malloc(100);
  pm_free(p);
  bad_ptr = p;
  expect_abort(realloc_bad, "realloc()", "pointer already freed");
  expect_address(p);
  expect_abort(usable_bad, "malloc_usable_size()", "pointer already freed");
  expect_address(p);
  char *q = pm_malloc(100);
  bad_ptr = q + 8;
  expect_abort(realloc_bad, "realloc()", "invalid pointer: not the start of a block");
  expect_address(q + 8);
  expect_abort(usable_bad, "malloc_usable_size()",
               "invalid pointer: not the start of a block");
}

Test(corruption, tag_lookalike_in_a_live_block_is_not_a_double_free) {
  /* a live block whose second word happens to equal the tag: the local
   * free's slow check walks the lists and lets it through */
  pm_block *p = pm_malloc(64);
  void *other = pm_malloc(64);
  p->tag = pm_g.tag;
  pm_free(p);
  pm_free(other);
  cr_assert_eq(pm_malloc(64), other);
  cr_assert_eq(pm_malloc(64), (void *)p);
}

Test(corruption, free_then_reuse_then_free_is_fine) {
  for (int i = 0; i < 1000; i++) {
    void *p = pm_malloc(80);
    pm_free(p);
  }
  pm_snapshot s;
  pm_stats_snapshot(&s);
  cr_assert_eq(s.fig.live_block_bytes, 0);
}

/* Until the embedded jemalloc has started, no pointer outside the pool
 * region can be a valid block: free, realloc and malloc_usable_size of one
 * name it instead of handing it to an uninitialised jemalloc. */
static char foreign_block[64];

Test(corruption, foreign_pointer_before_jemalloc_starts) {
  pm_free(pm_malloc(32)); /* pools only: jemalloc not started */
  cr_assert(!pm_fallback_started());
  bad_ptr = foreign_block + 16;
  expect_abort(free_bad, "free()", "invalid pointer: not allocated by poolmalloc");
  expect_address(bad_ptr);
  expect_abort(realloc_bad, "realloc()", "invalid pointer: not allocated by poolmalloc");
  expect_abort(usable_bad, "malloc_usable_size()",
               "invalid pointer: not allocated by poolmalloc");
}

/* ---- POOLMALLOC_CHECK=full ---- */

/* a use-after-free write over the tag word hides a double free from the
 * default check; the live bitmap still sees it */
static void double_free_after_write(void) {
  char *p = pm_malloc(64);
  pm_free(p);
  memset(p + 8, 0x55, 8);
  pm_free(p);
}

Test(corruption, full_check_catches_a_double_free_the_tag_missed) {
  setenv("POOLMALLOC_CHECK", "full", 1);
  expect_abort(double_free_after_write, "free()", "double free detected");
}

/* a use-after-free write over the link word: the next malloc from that
 * list finds the list pointing outside its page */
static void link_overwritten(void) {
  char *p = pm_malloc(64), *q = pm_malloc(64);
  pm_free(q);
  pm_free(p); /* the list: p, q */
  memset(p, 0x41, 8);
  (void)pm_malloc(64); /* takes p; the list head is now garbage */
}

Test(corruption, full_check_catches_a_corrupted_free_list) {
  setenv("POOLMALLOC_CHECK", "full", 1);
  expect_abort(link_overwritten, "malloc()",
               "free list corrupted (a write into a freed block?)");
}

static void usable_of_freed(void) {
  char *p = pm_malloc(64);
  memset(p, 0, 64);
  pm_free(p);
  memset(p + 8, 0, 8); /* even with the tag word wiped */
  (void)pm_usable_size(p);
}

Test(corruption, full_check_validates_realloc_and_usable_size) {
  setenv("POOLMALLOC_CHECK", "full", 1);
  expect_abort(usable_of_freed, "malloc_usable_size()", "pointer already freed");
}

Test(corruption, full_check_is_silent_on_correct_use) {
  setenv("POOLMALLOC_CHECK", "full", 1);
  void *v[1000];
  for (int r = 0; r < 3; r++) {
    for (int i = 0; i < 1000; i++)
      v[i] = pm_malloc((size_t)(i % 300) + 1);
    for (int i = 0; i < 1000; i += 2)
      v[i] = pm_realloc(v[i], (size_t)(i % 500) + 1);
    for (int i = 999; i >= 0; i--)
      pm_free(v[i]);
  }
  cr_assert(pm_g.live != NULL, "the bitmap is on");
}
