/* bad_free.c - double and invalid frees end to end, under the preload
 * (tests/unit/test_corruption.c covers them on the static core).
 *
 * The parent runs this program again (fork + exec, --case NAME) for each
 * case; the child prints the address it is about to pass to free() and
 * makes the bad call. Under poolmalloc the child must die of SIGABRT, and
 * its stderr must be exactly one line naming poolmalloc, free() and that
 * address (in hex). Without poolmalloc (the reference run) every child must
 * end within the time limit, and glibc must catch the plain double free;
 * the cases that are meaningless for glibc (poolmalloc's region) are
 * skipped there. Cases: immediate double frees of pool blocks of six sizes,
 * delayed double frees (the block deep in its page's free list), a double
 * free of a block that another malloc reused and freed in between, interior
 * pointers (of a power-of-two class and of classes with an odd factor:
 * 48 = 3 * 16, 224 = 7 * 32, at offsets that are multiples of 16 or 32),
 * a block of a released pool page, an untouched part of the pool
 * region, and frees from other threads of blocks already freed by the owner
 * or by another thread.
 *
 * usage: bad_free            run every case
 *        bad_free --case NAME  one case (what the parent runs) */
#include "hard.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define CHILD_WAIT_S 5

static volatile void *sink;

/* stdout is unbuffered in the child: a stdout buffer allocated late could
 * reuse the freed block and make the second free a valid one */
static void say(const void *addr) {
  printf("%p\n", (void *)addr);
}

static void *thread_free(void *p) {
  free(p);
  return NULL;
}

static void free_in_thread(void *p) {
  pthread_t t;
  if (pthread_create(&t, NULL, thread_free, p) != 0) _exit(90);
  pthread_join(t, NULL);
}

static int run_case(const char *c) {
  struct rlimit r = {0, 0};
  setrlimit(RLIMIT_CORE, &r);
  setvbuf(stdout, NULL, _IONBF, 0);
  size_t n, at;
  if (sscanf(c, "double_free_%zu", &n) == 1) {
    char *p = malloc(n);
    say(p);
    free(p);
    free(p);
  } else if (sscanf(c, "delayed_double_free_%zu", &n) == 1) {
    char *p = malloc(n), *q[50];
    for (int i = 0; i < 50; i++)
      q[i] = malloc(n);
    free(p);
    /* q[0] (next to p) stays live, so p's page stays in use */
    for (int i = 1; i < 50; i++)
      free(q[i]);
    for (int i = 0; i < 200; i++) /* other classes in between */
      free(malloc((size_t)(i * 53 % 3000) + n + 17));
    say(p);
    free(p);
  } else if (sscanf(c, "reused_double_free_%zu", &n) == 1) {
    char *p = malloc(n);
    sink = malloc(n); /* keeps the page in use */
    free(p);
    char *q = malloc(n); /* p again, most likely: reused */
    free(q);
    say(p);
    free(p); /* p is free now, whether or not q was p */
  } else if (sscanf(c, "interior_%zu", &n) == 1) {
    char *p = malloc(1000);
    say(p + n);
    free(p + n);
  } else if (sscanf(c, "interior_in_%zu_at_%zu", &n, &at) == 2) {
    char *p = malloc(n);
    sink = malloc(n);
    say(p + at);
    free(p + at);
  } else if (strcmp(c, "released_page") == 0) {
    /* three pages of 1 KiB blocks, all freed: the first page is released */
    enum { N = 3 * 64 };
    static char *v[N];
    for (int i = 0; i < N; i++)
      v[i] = malloc(1024);
    for (int i = 0; i < N; i++)
      free(v[i]);
    say(v[0]);
    free(v[0]);
  } else if (strcmp(c, "untouched_region") == 0) {
    if (!hard_under_poolmalloc()) return 77;
    /* the pool region is 32 GiB by default, used from its start: 4 GiB
     * past a pool block, 64 KiB aligned, is inside it and never used */
    char *p = malloc(64);
    char *bad = (char *)(((uintptr_t)p + ((uintptr_t)4 << 30)) & ~(uintptr_t)0xffff);
    say(bad);
    free(bad);
  } else if (strcmp(c, "remote_double_free") == 0) {
    char *p = malloc(64);
    sink = malloc(64); /* keeps the page in use */
    free(p);
    say(p);
    free_in_thread(p);
  } else if (strcmp(c, "remote_twice") == 0) {
    char *p = malloc(96);
    sink = malloc(96);
    free_in_thread(p); /* a remote free: fine */
    say(p);
    free_in_thread(p); /* another thread frees it again */
  } else if (strcmp(c, "owner_after_remote") == 0) {
    char *p = malloc(96);
    sink = malloc(96);
    free_in_thread(p);
    say(p);
    free(p); /* the owner frees a block on its page's remote list */
  } else {
    printf("unknown case %s\n", c);
    return 2;
  }
  return 0; /* the bad free was not caught */
}

static const char *cases[] = {
    "double_free_16",
    "double_free_48",
    "double_free_200",
    "double_free_1000",
    "double_free_5000",
    "double_free_30000",
    "delayed_double_free_16",
    "delayed_double_free_200",
    "delayed_double_free_5000",
    "reused_double_free_48",
    "reused_double_free_200",
    "interior_16",
    "interior_1",
    "interior_8",
    "interior_512",
    "interior_in_48_at_16",
    "interior_in_48_at_32",
    "interior_in_200_at_32",
    "interior_in_200_at_112",
    "released_page",
    "untouched_region",
    "remote_double_free",
    "remote_twice",
    "owner_after_remote",
};

static size_t drain(int fd, char *buf, size_t cap) {
  size_t len = 0;
  ssize_t r;
  while (len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) > 0)
    len += (size_t)r;
  buf[len] = 0;
  return len;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--case") == 0) return run_case(argv[2]);
  int pm = hard_check_preload();
  hard_watchdog(45, "bad_free");
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) return 1;
  self[len] = 0;
  fflush(stdout);
  hard_block_sigchld();

  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const char *c = cases[k];
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      hard_unblock_signals();
      dup2(out[1], 1);
      dup2(err[1], 2);
      close(out[0]), close(out[1]), close(err[0]), close(err[1]);
      execl(self, self, "--case", c, (char *)NULL);
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    int status = 0;
    pid_t w = hard_wait_bounded(pid, &status, CHILD_WAIT_S);
    char o[256], e[1024];
    drain(out[0], o, sizeof o);
    drain(err[0], e, sizeof e);
    close(out[0]);
    close(err[0]);
    o[strcspn(o, "\n")] = 0;

    char got[64];
    if (w == 0)
      snprintf(got, sizeof got, "still running after %d s", CHILD_WAIT_S);
    else if (WIFSIGNALED(status))
      snprintf(got, sizeof got, "signal %d", WTERMSIG(status));
    else
      snprintf(got, sizeof got, "exit %d", WEXITSTATUS(status));
    fprintf(stderr, "%s: %s, address %s, stderr: %s%s", c, got, o, e,
            e[0] && e[strlen(e) - 1] == '\n' ? "" : "\n");

    if (w == 0) {
      hard_fail("%s: child %s", c, got);
      continue;
    }
    if (!pm) {
      /* glibc: no hang; the plain double free is caught */
      if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("bad_free: %s: not applicable without poolmalloc\n", c);
        continue;
      }
      if (strcmp(c, "double_free_16") == 0 &&
          !(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
        hard_fail("%s: glibc did not abort: %s", c, got);
      printf("bad_free: %s: ended (%s)\n", c, WIFSIGNALED(status) ? "signal" : "exit");
      continue;
    }
    int nl = 0;
    for (char *p = e; *p; p++)
      nl += *p == '\n';
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
      hard_fail("%s: want SIGABRT, got %s; stderr: %s", c, got, e);
    else if (nl != 1 || e[strlen(e) - 1] != '\n')
      hard_fail("%s: want one line on stderr, got %d: %s", c, nl, e);
    else if (strstr(e, "poolmalloc") == NULL || strstr(e, "free()") == NULL)
      hard_fail("%s: the line does not name poolmalloc and free(): %s", c, e);
    else if (strncmp(o, "0x", 2) != 0 || strstr(e, o) == NULL)
      hard_fail("%s: the line does not name the address %s: %s", c, o, e);
    else
      printf("bad_free: %s: SIGABRT, one line naming free() and the address: ok\n", c);
  }
  return hard_failures == 0 ? 0 : 1;
}
