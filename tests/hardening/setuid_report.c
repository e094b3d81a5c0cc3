/* setuid_report.c - the program of the setuid test (run_setuid.sh). It is
 * linked against libpoolmalloc.so (a setuid program ignores LD_PRELOAD
 * paths with slashes) and run as root, as a setuid-nobody copy and as a
 * plain copy, with POOLMALLOC_STATS=1 and POOLMALLOC_STATS_FILE set.
 * It checks that poolmalloc serves its allocations (its totals), that
 * AT_SECURE is what the run expects (--secure: else it exits 77, the test
 * does not apply; --plain: else it fails), prints its pid and exits 0.
 *
 * usage: setuid_report --secure|--plain */
#include "hard.h"
#include "poolmalloc.h"

#include <sys/auxv.h>

int main(int argc, char **argv) {
  if (argc != 2 ||
      (strcmp(argv[1], "--secure") != 0 && strcmp(argv[1], "--plain") != 0)) {
    printf("FAIL: usage: setuid_report --secure|--plain\n");
    return 2;
  }
  int want_secure = strcmp(argv[1], "--secure") == 0;
  int secure = getauxval(AT_SECURE) != 0;
  printf("pid %d\n", (int)getpid());
  printf("AT_SECURE %d, uid %d, euid %d\n", secure, (int)getuid(), (int)geteuid());
  if (want_secure && !secure) {
    printf("SKIP: not running in secure mode (AT_SECURE=0)\n");
    return 77;
  }
  if (!want_secure && secure) {
    printf("FAIL: AT_SECURE is set in the plain run\n");
    return 1;
  }
  void *p[100];
  uint64_t sum[100];
  for (int i = 0; i < 100; i++) {
    size_t n = (size_t)(i * 97 % 3000) + 1;
    p[i] = malloc(n);
    if (p[i] == NULL) return 1;
    sum[i] = hard_fill(p[i], n, (uint64_t)i);
  }
  poolmalloc_totals t;
  memset(&t, 0, sizeof t);
  if (poolmalloc_get_totals(&t, sizeof t) != 0 || t.pooled_allocations < 100) {
    printf("FAIL: poolmalloc does not serve this program's allocations (%llu pooled)\n",
           (unsigned long long)t.pooled_allocations);
    return 1;
  }
  for (int i = 0; i < 100; i++) {
    if (hard_sum(p[i], (size_t)(i * 97 % 3000) + 1) != sum[i]) {
      printf("FAIL: block %d corrupted\n", i);
      return 1;
    }
    free(p[i]);
  }
  printf("setuid_report: %s run: ok\n", secure ? "secure" : "plain");
  return 0;
}
