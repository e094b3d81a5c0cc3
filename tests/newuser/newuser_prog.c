/* newuser_prog.c - the programs of issue 17's library items, one per mode:
 *
 *   reuse-fd2 FILE   closes fd 2 before any allocation, opens FILE (it gets
 *                    number 2), allocates, writes "DATA" to it and exits:
 *                    the report must not land in FILE
 *   own-handler SIG  installs its own handler for signal SIG, allocates and
 *                    exits: the report must say the dump signal was taken
 *   alloc            allocates a little and exits (argv goes in the report)
 *   idle             allocates and frees 60 MB of small blocks, then sleeps
 *                    2 s without calling the allocator; prints its RSS in
 *                    KiB after the frees and after the sleep
 *
 * Built without poolmalloc; it gets it only through LD_PRELOAD. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_sig(int sig) {
  (void)sig;
}

static long rss_kib(void) {
  char buf[128] = {0};
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0) return -1;
  close(fd);
  long pages = 0;
  const char *p = strchr(buf, ' ');
  return p && sscanf(p + 1, "%ld", &pages) == 1 ? pages * 4 : -1;
}

static void work(void) {
  void *volatile keep[64];
  for (int i = 0; i < 64; i++)
    keep[i] = malloc((size_t)(i + 1) * 24);
  for (int i = 0; i < 64; i++)
    free(keep[i]);
}

/* malloc's address taken: built without -fPIC (pm_newuser_prog_nopie), the
 * program's own PLT entry becomes malloc's canonical address, which is what
 * dlsym(RTLD_DEFAULT, "malloc") then returns (as in Debian's node) */
void *(*volatile pm_newuser_malloc)(size_t);

int main(int argc, char **argv) {
  pm_newuser_malloc = malloc; /* in code: an absolute address without -fPIC */
  if (argc > 2 && strcmp(argv[1], "reuse-fd2") == 0) {
    close(2);
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd != 2) return 10;
    work();
    if (write(fd, "DATA", 4) != 4) return 11;
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "own-handler") == 0) {
    signal(atoi(argv[2]), on_sig);
    work();
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "idle") == 0) {
    enum { N = 400000 };
    static void *v[N];
    for (int i = 0; i < N; i++)
      memset(v[i] = malloc(64 + (size_t)(i % 8) * 32), 1, 64);
    for (int i = 0; i < N; i++)
      free(v[i]);
    long before = rss_kib();
    sleep(2);
    printf("%ld %ld\n", before, rss_kib());
    return 0;
  }
  work();
  return 0;
}
