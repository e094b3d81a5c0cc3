/* bench_fragsites: RSS over live bytes when one call site's few long-lived
 * blocks sit among another site's many short-lived ones (issue 14).
 *
 * Usage: bench_fragsites [scale] [--phases N] [--per-phase N] [--every N]
 *                        [--keep K] [--idle SEC] [--tick SEC] [--oracle]
 *
 * Each phase, site A (short_alloc) allocates per-phase (200,000 x scale)
 * blocks of 16-512 B and frees them all, in allocation order, at the end of
 * the phase; after every `every` (100) of them, site B (keep_alloc, a
 * separate function that is never inlined, cloned or merged with A) allocates
 * one block of 16-512 B. B's blocks live to the end of the program (--keep 0,
 * the default: "immortal"), or are freed at the end of the k-th phase after
 * the one that made them (--keep k: "phase-limited"; k phases' worth of them
 * are live at the end). There are `phases` (40) phases; --phases 1 is the
 * one-phase program.
 *
 * Right after the last phase's frees it reads VmRSS from /proc/self/status
 * and prints
 *   point=end rss_kib=R live_bytes=L ratio=R*1024/L heap_ratio=(R-base)*1024/L
 * where L is the bytes B's live blocks asked for and base is VmRSS before the
 * first phase (bookkeeping arrays are mmap'd and touched before, outside the
 * allocator under test). With --idle SEC it then sleeps SEC seconds, makes one
 * malloc/free (an allocator that gives memory back lazily, on its next call
 * after a delay, gets that call), reads VmRSS again and prints point=idle.
 * With --tick SEC it then (after the sleep, if any) goes on for SEC seconds
 * allocating and freeing 16 small blocks every 10 ms, the way an idle server
 * does, and prints point=tick: an allocator whose decay runs only when it is
 * called gets to run it. The last line repeats everything as key=value pairs
 * (end_*, idle_*, tick_*) and ends in check=ok.
 *
 * --oracle (with --keep 0) gives B's blocks their own memory, outside the
 * allocator (a private mmap'd bump area, densely packed): what perfect
 * routing of the long-lived site from its first block would give. The
 * allocator then sees only A's short-lived blocks; RSS still counts B's
 * bytes (they are live), so the ratio is what the allocator keeps besides.
 *
 * Every block carries a head and a tail tag checked before its free; a
 * mismatch prints CORRUPTION and exits with status 3. A fixed-seed xorshift
 * makes every run the same request stream.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_tagged.h"
#include "bench_util.h"

#define MIN_SIZE 16
#define MAX_SIZE 512

/* distinct call sites the compiler may not inline, clone or fold together */
#if defined(__clang__)
#define CALL_SITE __attribute__((noinline))
#else
#define CALL_SITE __attribute__((noipa))
#endif

struct config {
  double scale, idle, tick;
  long phases, per_phase, every, keep;
  int oracle;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static size_t count_a, count_b;

static void die(const char *what, long n) {
  fprintf(stderr, "bench_fragsites: %s (%ld)\n", what, n);
  exit(2);
}

static uint32_t random_size(void) {
  return MIN_SIZE + (uint32_t)(xorshift64_step(&rng_state) % (MAX_SIZE - MIN_SIZE + 1));
}

CALL_SITE static unsigned char *short_alloc(size_t size, uint64_t tag) {
  unsigned char *p = malloc(size);
  if (!p) die("malloc failed", (long)size);
  tag_block(p, size, tag);
  count_a++;
  return p;
}

static unsigned char *oracle_area;
static size_t oracle_used, oracle_cap;

/* --oracle: B's blocks packed in memory of their own, never freed */
static unsigned char *oracle_alloc(size_t size) {
  size_t n = (size + 15) & ~(size_t)15;
  if (oracle_used + n > oracle_cap) return NULL;
  unsigned char *p = oracle_area + oracle_used;
  oracle_used += n;
  return p;
}

CALL_SITE static unsigned char *keep_alloc(size_t size, uint64_t tag) {
  unsigned char *p = oracle_area ? oracle_alloc(size) : malloc(size);
  if (!p) die("malloc failed", (long)size);
  tag_block(p, size, tag);
  count_b += 1 + (size > MAX_SIZE); /* differs from short_alloc's body */
  return p;
}

/* zeroed memory outside the allocator under test, resident from the start */
static void *book(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap failed", (long)n);
  memset(p, 0, n);
  return p;
}

static long long_arg(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) die("missing value after option", *i);
  return atol(argv[++*i]);
}

static struct config parse(int argc, char **argv) {
  struct config c = {1.0, 0.0, 0.0, 40, 0, 100, 0, 0};
  int i = 1;
  if (argc > 1 && argv[1][0] != '-') c.scale = atof(argv[i++]);
  if (c.scale <= 0) c.scale = 1.0;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--phases"))
      c.phases = long_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--per-phase"))
      c.per_phase = long_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--every"))
      c.every = long_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--keep"))
      c.keep = long_arg(argc, argv, &i);
    else if (!strcmp(argv[i], "--idle") && i + 1 < argc)
      c.idle = atof(argv[++i]);
    else if (!strcmp(argv[i], "--tick") && i + 1 < argc)
      c.tick = atof(argv[++i]);
    else if (!strcmp(argv[i], "--oracle"))
      c.oracle = 1;
    else
      die("unknown option at argument", i);
  }
  if (c.per_phase <= 0)
    c.per_phase = (long)(200000 * c.scale) < 1000 ? 1000 : (long)(200000 * c.scale);
  if (c.phases < 1 || c.every < 1 || c.keep < 0)
    die("bad --phases, --every or --keep", 0);
  if (c.oracle && c.keep) die("--oracle needs --keep 0", c.keep);
  return c;
}

/* a little work: 16 blocks of 16-512 B allocated, then freed */
static void few_calls(void) {
  void *few[16];
  for (int i = 0; i < 16; i++)
    if ((few[i] = malloc(random_size())) == NULL) die("malloc failed", 0);
  for (int i = 0; i < 16; i++)
    free(few[i]);
}

/* --idle: a sleep, then one round of calls */
static void idle_sleep(double sec) {
  struct timespec all = {(time_t)sec, (long)((sec - (time_t)sec) * 1e9)};
  nanosleep(&all, NULL);
  few_calls();
}

/* --tick: a round of calls every 10 ms */
static void idle_tick(double sec) {
  double end = now_sec() + sec;
  struct timespec slice = {0, 10 * 1000 * 1000};
  do {
    few_calls();
    nanosleep(&slice, NULL);
  } while (now_sec() < end);
}

static size_t live_bytes(const struct block *b, size_t n) {
  size_t live = 0;
  for (size_t k = 0; k < n; k++)
    live += b[k].size;
  return live;
}

/* one phase: A's blocks with B's among them, A's freed, then B's that are due */
static void phase(const struct config *c, long ph, struct block *as, struct block *bs,
                  size_t *nb, uint64_t *tag) {
  for (long i = 0; i < c->per_phase; i++) {
    uint32_t size = random_size();
    as[i] = (struct block){short_alloc(size, *tag), size, 0, *tag};
    ++*tag;
    if (i % c->every == c->every - 1) {
      size = random_size();
      uint32_t until = c->keep ? (uint32_t)(ph + c->keep) : UINT32_MAX;
      bs[(*nb)++] = (struct block){keep_alloc(size, *tag), size, until, *tag};
      ++*tag;
    }
  }
  for (long i = 0; i < c->per_phase; i++)
    check_and_free(&as[i], "bench_fragsites");
  for (size_t k = 0; k < *nb;) {
    if (bs[k].until == (uint32_t)ph) {
      check_and_free(&bs[k], "bench_fragsites");
      bs[k] = bs[--*nb];
    } else {
      k++;
    }
  }
}

static void point(const char *name, long rss, long base, size_t live) {
  printf("point=%s rss_kib=%ld live_bytes=%zu ratio=%.2f heap_ratio=%.2f\n", name, rss,
         live, live ? rss * 1024.0 / live : 0.0,
         live ? (rss - base) * 1024.0 / live : 0.0);
}

/* name_rss_kib, name_ratio and name_heap_ratio on the result line (rss < 0: none) */
static void print_point(const char *name, long rss, long base, size_t live) {
  if (rss < 0) return;
  printf(" %s_rss_kib=%ld %s_ratio=%.2f %s_heap_ratio=%.2f", name, rss, name,
         live ? rss * 1024.0 / live : 0.0, name,
         live ? (rss - base) * 1024.0 / live : 0.0);
}

int main(int argc, char **argv) {
  struct config c = parse(argc, argv);
  size_t cap = (size_t)c.phases * (size_t)(c.per_phase / c.every + 1);
  struct block *as = book(sizeof *as * (size_t)c.per_phase);
  struct block *bs = book(sizeof *bs * cap);
  size_t nb = 0;
  uint64_t tag = 1;
  if (c.oracle) { /* reserved, not touched: its pages count once B writes them */
    oracle_cap = cap * (MAX_SIZE + 16);
    oracle_area = mmap(NULL, oracle_cap, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (oracle_area == MAP_FAILED) die("mmap failed", (long)oracle_cap);
  }
  long base = status_kib("VmRSS");

  double t0 = now_sec();
  for (long ph = 0; ph < c.phases; ph++)
    phase(&c, ph, as, bs, &nb, &tag);
  double dt = now_sec() - t0;

  size_t live = live_bytes(bs, nb);
  long end_rss = status_kib("VmRSS"), idle_rss = -1, tick_rss = -1;
  point("end", end_rss, base, live);
  if (c.idle > 0) {
    idle_sleep(c.idle);
    idle_rss = status_kib("VmRSS");
    point("idle", idle_rss, base, live);
  }
  if (c.tick > 0) {
    idle_tick(c.tick);
    tick_rss = status_kib("VmRSS");
    point("tick", tick_rss, base, live);
  }
  long hwm = status_kib("VmHWM");
  fflush(stdout);
  for (size_t k = 0; k < nb; k++) {
    if (oracle_area) { /* not the allocator's: checked, not freed */
      uint64_t head, tail;
      memcpy(&head, bs[k].p, sizeof head);
      memcpy(&tail, bs[k].p + bs[k].size - sizeof tail, sizeof tail);
      if (head != bs[k].tag || tail != bs[k].tag)
        die("CORRUPTION in an oracle block", (long)k);
      continue;
    }
    check_and_free(&bs[k], "bench_fragsites");
  }
  if (count_a != (size_t)(c.phases * c.per_phase) ||
      count_b != (size_t)c.phases * (size_t)(c.per_phase / c.every))
    die("allocation count mismatch", (long)count_b);

  printf(
      "bench_fragsites phases=%ld per_phase=%ld every=%ld keep=%ld oracle=%d idle=%g "
      "tick=%g time=%.3fs live_blocks=%zu live_bytes=%zu live_kib=%.0f base_rss_kib=%ld",
      c.phases, c.per_phase, c.every, c.keep, c.oracle, c.idle, c.tick, dt, nb, live,
      live / 1024.0, base);
  print_point("end", end_rss, base, live);
  print_point("idle", idle_rss, base, live);
  print_point("tick", tick_rss, base, live);
  printf(" peak_rss_kib=%ld check=ok\n", hwm);
  return 0;
}
