/* thread_churn.c - 10,000 short-lived threads, at most 32 alive at once,
 * in five kinds (thread i is of kind i % 5):
 *   0 allocates and frees blocks of many sizes and leaves two live blocks
 *     that the main thread checks and frees a few batches later;
 *   1 only frees: main hands it three blocks, it checks and frees them (it
 *     never allocates itself: remote frees from a thread without a heap);
 *   2 allocates, and a pthread key destructor (a key created after
 *     poolmalloc's, so it runs after poolmalloc's thread-exit hook)
 *     allocates, reallocs, frees, leaves a block, and sets its key again so
 *     that it runs a second time;
 *   3 allocates, and a C++ thread_local destructor (thread_churn_tls.cpp)
 *     allocates and leaves a block;
 *   4 makes its first allocation in the pthread key destructor.
 * Every block carries a checksum. RSS (/proc/self/statm) is sampled after
 * every batch and must stay under 512 MiB.
 *
 * usage: thread_churn [THREADS]   (default 10000) */
#include "hard.h"

#include <pthread.h>

#define BATCH 32
#define RSS_LIMIT_KIB (512L * 1024)

struct blk {
  size_t n;
  uint64_t sum;
  unsigned char data[];
};

struct slot {
  unsigned id;
  struct blk *give[3]; /* kind 1: blocks handed to the thread */
  struct blk *left[4]; /* blocks the thread leaves for main */
  int nleft;
  int key_rounds;
  int bad;
  int created, reaped;
};

static pthread_key_t key;

static struct blk *new_blk(size_t n, uint64_t seed) {
  struct blk *b = malloc(sizeof *b + n);
  if (b == NULL) return NULL;
  b->n = n;
  b->sum = hard_fill(b->data, n, seed);
  return b;
}

static int blk_ok(const struct blk *b) {
  return hard_sum(b->data, b->n) == b->sum;
}

static void leave(struct slot *s, size_t n) {
  if (s->nleft == 4) {
    s->bad = 1;
    return;
  }
  struct blk *b = new_blk(n, (uint64_t)s->id * 131 + (uint64_t)s->nleft);
  if (b == NULL) s->bad = 1;
  s->left[s->nleft++] = b;
}

/* allocates, reallocs and frees a few blocks; sets s->bad on a mismatch */
static void churn_work(struct slot *s) {
  static const size_t sizes[] = {8, 24, 100, 700, 3000, 20000, 100000};
  struct blk *t[7];
  for (int i = 0; i < 7; i++) {
    t[i] = new_blk(sizes[i] + s->id % 13, (uint64_t)i + s->id);
    if (t[i] == NULL) s->bad = 1;
  }
  for (int i = 6; i >= 0; i--) {
    if (t[i] == NULL) continue;
    if (!blk_ok(t[i])) s->bad = 1;
    if (i % 2 == 0) {
      size_t keep = t[i]->n;
      uint64_t sum = t[i]->sum;
      struct blk *b = realloc(t[i], sizeof *b + keep * 2);
      if (b == NULL || hard_sum(b->data, keep) != sum) s->bad = 1;
      t[i] = b;
    }
    free(t[i]);
  }
}

/* called from the C++ thread_local destructor */
void churn_tls_exit(void *arg) {
  struct slot *s = arg;
  churn_work(s);
  leave(s, 40 + s->id % 500);
}
void churn_tls_arm(struct slot *s); /* thread_churn_tls.cpp */

static void key_dtor(void *arg) {
  struct slot *s = arg;
  s->key_rounds++;
  churn_work(s);
  leave(s, 16 + s->id % 300);
  if (s->key_rounds == 1 && s->id % 5 == 2) pthread_setspecific(key, s); /* once more */
}

static void *thread_main(void *arg) {
  struct slot *s = arg;
  switch (s->id % 5) {
  case 0:
    churn_work(s);
    leave(s, 16 + (s->id * 37) % 1000);
    leave(s, 2000 + s->id % 5000);
    break;
  case 1:
    for (int i = 0; i < 3; i++) {
      if (s->give[i] == NULL || !blk_ok(s->give[i])) s->bad = 1;
      free(s->give[i]);
      s->give[i] = NULL;
    }
    break;
  case 2:
    churn_work(s);
    pthread_setspecific(key, s);
    break;
  case 3:
    churn_work(s);
    churn_tls_arm(s);
    break;
  case 4:
    pthread_setspecific(key, s);
    break;
  }
  return NULL;
}

/* checks and frees what a finished thread left */
static int reap(struct slot *s) {
  s->reaped = 1;
  int bad = s->bad;
  int want = (int[]){2, 0, 2, 1, 1}[s->id % 5];
  if (s->nleft != want) {
    hard_fail("thread %u (kind %u): left %d blocks, want %d", s->id, s->id % 5, s->nleft,
              want);
    bad = 1;
  }
  for (int i = 0; i < s->nleft; i++) {
    if (s->left[i] == NULL || !blk_ok(s->left[i])) bad = 1;
    free(s->left[i]);
  }
  s->nleft = 0;
  if (bad)
    hard_fail("thread %u (kind %u): a block was corrupted or missing", s->id, s->id % 5);
  return bad;
}

int main(int argc, char **argv) {
  unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
  hard_check_preload();
  hard_watchdog(100, "thread_churn");
  /* the first allocation (poolmalloc's key) happened before main; ours is
   * created later, so its destructor runs after poolmalloc's */
  free(malloc(1));
  if (pthread_key_create(&key, key_dtor) != 0) {
    printf("FAIL: pthread_key_create\n");
    return 1;
  }
  struct slot *slots = calloc(threads, sizeof *slots);
  if (slots == NULL) return 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);

  long rss_first = -1, rss_max = 0;
  int bad = 0;
  double t0 = hard_now();
  for (unsigned base = 0; base < threads; base += BATCH) {
    unsigned n = threads - base < BATCH ? threads - base : BATCH;
    pthread_t t[BATCH];
    for (unsigned i = 0; i < n; i++) {
      struct slot *s = &slots[base + i];
      s->id = base + i;
      if (s->id % 5 == 1) {
        s->give[0] = new_blk(48 + s->id % 64, s->id);
        s->give[1] = new_blk(900 + s->id % 64, s->id + 1);
        s->give[2] = new_blk(60000 + s->id % 64, s->id + 2);
      }
      s->created = 1;
      int rc = pthread_create(&t[i], &attr, thread_main, s);
      if (rc != 0) {
        printf("FAIL: pthread_create of thread %u: %s\n", s->id, strerror(rc));
        return 1;
      }
    }
    for (unsigned i = 0; i < n; i++)
      pthread_join(t[i], NULL);
    /* blocks outlive their thread by four batches */
    if (base >= 4 * BATCH)
      for (unsigned i = base - 4 * BATCH; i < base - 3 * BATCH; i++)
        bad += reap(&slots[i]);
    long rss = hard_rss_kib();
    if (rss_first < 0 && base >= 10 * BATCH) rss_first = rss;
    if (rss > rss_max) rss_max = rss;
    if (rss > RSS_LIMIT_KIB) {
      hard_fail("RSS %ld KiB after %u threads (limit %ld KiB)", rss, base + n,
                RSS_LIMIT_KIB);
      break;
    }
  }
  for (unsigned i = 0; i < threads; i++)
    if (slots[i].created && !slots[i].reaped) bad += reap(&slots[i]);
  long rss_end = hard_rss_kib();
  fprintf(
      stderr,
      "%u threads in %.1f s; RSS after 320 threads %ld KiB, max %ld KiB, end %ld KiB\n",
      threads, hard_now() - t0, rss_first, rss_max, rss_end);
  free(slots);
  int ok = hard_failures == 0 && bad == 0;
  printf("thread_churn: %u threads in batches of %d, 5 kinds: %s\n", threads, BATCH,
         ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
