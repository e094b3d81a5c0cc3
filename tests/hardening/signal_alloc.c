/* signal_alloc.c - a signal handler that allocates while its thread
 * allocates.
 *
 * malloc is not async-signal-safe in POSIX, but programs call it from
 * handlers. Two threads (the main thread and a worker) replace checksummed
 * blocks in a loop; two POSIX timers (SIGEV_THREAD_ID) send SIGRTMIN to each
 * of them every 200 us, and the handler, on whichever thread it interrupts,
 * replaces blocks of its own per-thread set (malloc, calloc, realloc, free,
 * with checksums) and, on the worker, frees blocks the main thread handed
 * over through a lock-free queue (a cross-thread free inside a handler).
 * After each phase every live block of every set is verified. A hang is a
 * failure (watchdog).
 *
 * Phase 1: the handler allocates only when the interrupted thread is
 * between two allocator calls (a flag around each call): the same thread
 * re-entering the allocator at a safe point. Any allocator must pass this.
 * Phase 2 (only with PM_HARD_SIGNAL_ANYWHERE=1): the handler allocates
 * wherever the signal lands, also inside malloc/free of its own thread.
 * That is undefined in POSIX, glibc's malloc deadlocks on its arena lock,
 * and poolmalloc's per-thread fast paths are not reentrant either: a
 * handler that pops or pushes between the interrupted code's load and
 * store of a page's free list hands one block out twice (found by this
 * test; see docs/design.md, "Signals"). Making them reentrant would cost a
 * flag store on every malloc and free; phase 2 stays here to measure it.
 *
 * usage: signal_alloc [SECONDS-PER-PHASE]   (default 2) */
#include "hard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define SLOTS 256
#define HSLOTS 32
#define QCAP 1024
#define PERIOD_NS 200000

struct blk {
  size_t n;
  uint64_t sum;
  unsigned char data[];
};

/* per-thread state: the handler's blocks, and whether the thread is inside
 * an allocator call (phase 1 handlers skip their work then) */
struct hstate {
  struct blk *slot[HSLOTS];
  uint64_t x;
  long calls, skipped;
  int is_worker;
  volatile sig_atomic_t in_alloc;
};
static __thread struct hstate hs;
static atomic_int any_point; /* phase 2 */

#define ALLOC_CALL(expr)                                                                 \
  ({                                                                                     \
    hs.in_alloc = 1;                                                                     \
    atomic_signal_fence(memory_order_seq_cst);                                           \
    __typeof__(expr) r_ = (expr);                                                        \
    atomic_signal_fence(memory_order_seq_cst);                                           \
    hs.in_alloc = 0;                                                                     \
    r_;                                                                                  \
  })
#define FREE_CALL(p)                                                                     \
  do {                                                                                   \
    hs.in_alloc = 1;                                                                     \
    atomic_signal_fence(memory_order_seq_cst);                                           \
    free(p);                                                                             \
    atomic_signal_fence(memory_order_seq_cst);                                           \
    hs.in_alloc = 0;                                                                     \
  } while (0)

static struct blk *new_blk(size_t n, uint64_t seed, int how) {
  struct blk *b;
  if (how == 0) {
    b = ALLOC_CALL(calloc(1, sizeof *b + n));
    if (b != NULL)
      for (size_t i = 0; i < n; i++)
        if (b->data[i] != 0) return NULL;
  } else {
    b = ALLOC_CALL(malloc(sizeof *b + n));
  }
  if (b == NULL) return NULL;
  b->n = n;
  b->sum = hard_fill(b->data, n, seed);
  return b;
}

static int blk_ok(const struct blk *b) {
  return hard_sum(b->data, b->n) == b->sum;
}

static size_t pick_size(uint64_t r) {
  unsigned k = (unsigned)(r % 64);
  if (k == 0) return (size_t)(r >> 8) % 100000; /* jemalloc under poolmalloc */
  if (k < 8) return (size_t)(r >> 8) % 8000;
  return (size_t)(r >> 8) % 600;
}

/* failures seen inside handlers: counted, reported by write() */
static atomic_int handler_bad;
static void handler_fail(const char *msg) {
  atomic_fetch_add(&handler_bad, 1);
  ssize_t w = write(1, msg, strlen(msg));
  (void)w;
}

/* main thread -> worker's handler: blocks to free (single producer, single
 * consumer) */
static struct blk *queue[QCAP];
static atomic_size_t q_head, q_tail;

static void on_timer(int sig) {
  (void)sig;
  int saved = errno;
  struct hstate *h = &hs;
  sig_atomic_t was_in_alloc = h->in_alloc;
  h->calls++;
  if (was_in_alloc && !atomic_load_explicit(&any_point, memory_order_relaxed)) {
    h->skipped++;
    return;
  }
  /* the handler's own calls set the flag too (the signal is blocked while
   * the handler runs); it is restored on the way out */
  for (int k = 0; k < 3; k++) {
    uint64_t r = hard_rand(&h->x);
    unsigned i = (unsigned)(r % HSLOTS);
    if (h->slot[i] != NULL) {
      if (!blk_ok(h->slot[i])) handler_fail("FAIL: handler block corrupted\n");
      if (r & 0x100) {
        /* grow or shrink with realloc: the prefix must survive */
        struct blk *b = h->slot[i];
        size_t keep = b->n, n = (r >> 20) % 3000;
        size_t cmp = n < keep ? n : keep;
        uint64_t want = hard_sum(b->data, cmp);
        b = realloc(b, sizeof *b + n);
        if (b == NULL) {
          handler_fail("FAIL: realloc in the handler failed\n");
          free(h->slot[i]);
        } else {
          if (hard_sum(b->data, cmp) != want) handler_fail("FAIL: realloc lost data\n");
          free(b);
        }
      } else {
        free(h->slot[i]);
      }
    }
    h->slot[i] = new_blk(pick_size(r >> 9), r, (int)(r >> 50) % 4);
    if (h->slot[i] == NULL) handler_fail("FAIL: allocation in the handler failed\n");
  }
  if (h->is_worker) {
    size_t head = atomic_load_explicit(&q_head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&q_tail, memory_order_acquire);
    for (; head != tail; head++) {
      struct blk *b = queue[head % QCAP];
      if (!blk_ok(b)) handler_fail("FAIL: handed-over block corrupted\n");
      free(b);
    }
    atomic_store_explicit(&q_head, head, memory_order_release);
  }
  h->in_alloc = was_in_alloc;
  errno = saved;
}

struct loop {
  struct blk *slot[SLOTS];
  uint64_t x;
  long ops, handed;
  int bad;
};

static atomic_int stop;

/* replaces blocks until stop is set or, checked every 1024 operations,
 * the clock passes end */
static void loop_run(struct loop *l, int hand_over, double end) {
  const char *who = hand_over ? "main" : "worker";
  while (!atomic_load_explicit(&stop, memory_order_relaxed) &&
         (l->ops % 1024 != 0 || hard_now() < end)) {
    uint64_t r = hard_rand(&l->x);
    unsigned i = (unsigned)(r % SLOTS);
    struct blk *b = l->slot[i];
    if (b != NULL) {
      if (!blk_ok(b)) {
        hard_fail("%s: block of %zu bytes corrupted", who, b->n);
        l->bad++;
      }
      size_t tail = atomic_load_explicit(&q_tail, memory_order_relaxed);
      if (hand_over && (r & 7) == 0 &&
          tail - atomic_load_explicit(&q_head, memory_order_acquire) < QCAP) {
        queue[tail % QCAP] = b;
        atomic_store_explicit(&q_tail, tail + 1, memory_order_release);
        l->handed++;
      } else {
        FREE_CALL(b);
      }
    }
    l->slot[i] = new_blk(pick_size(r >> 3), r, (int)(r >> 40) % 4);
    if (l->slot[i] == NULL) {
      hard_fail("%s: allocation failed", who);
      l->bad++;
      return;
    }
    l->ops++;
  }
}

static int loop_check_free(struct loop *l, const char *who) {
  int bad = 0;
  for (int i = 0; i < SLOTS; i++)
    if (l->slot[i] != NULL) {
      if (!blk_ok(l->slot[i]))
        hard_fail("%s: live block %d corrupted at the end", who, i), bad++;
      free(l->slot[i]);
      l->slot[i] = NULL;
    }
  return bad;
}

static int hstate_check_free(struct hstate *h, const char *who) {
  int bad = 0;
  for (int i = 0; i < HSLOTS; i++)
    if (h->slot[i] != NULL) {
      if (!blk_ok(h->slot[i]))
        hard_fail("%s: handler block %d corrupted at the end", who, i), bad++;
      free(h->slot[i]);
      h->slot[i] = NULL;
    }
  return bad;
}

static struct loop main_loop, worker_loop;
static atomic_int worker_tid, worker_done, worker_may_exit, worker_bad;
static long worker_calls, worker_skipped;

static void *worker(void *arg) {
  (void)arg;
  hs.x = 0xD1B54A32D192ED03ull;
  hs.is_worker = 1;
  atomic_store(&worker_tid, (int)syscall(SYS_gettid));
  loop_run(&worker_loop, 0, 1e300);
  atomic_store(&worker_done, 1);
  /* main stops the timers and then lets the worker check its handler set */
  while (!atomic_load(&worker_may_exit))
    hard_sleep_ms(1);
  worker_calls = hs.calls;
  worker_skipped = hs.skipped;
  atomic_store(&worker_bad, hstate_check_free(&hs, "worker"));
  return NULL;
}

static timer_t start_timer(int tid) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGRTMIN;
  sev.sigev_notify_thread_id = tid;
  timer_t t;
  if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0) {
    printf("FAIL: timer_create: %s\n", strerror(errno));
    exit(1);
  }
  struct itimerspec its = {{0, PERIOD_NS}, {0, PERIOD_NS}};
  timer_settime(t, 0, &its, NULL);
  return t;
}

/* one phase; returns 1 if every check passed */
static int run_phase(int anywhere, double secs) {
  int failures_before = hard_failures;
  memset(&main_loop, 0, sizeof main_loop);
  memset(&worker_loop, 0, sizeof worker_loop);
  main_loop.x = 0x9E3779B97F4A7C15ull + (uint64_t)anywhere;
  worker_loop.x = 0x2545F4914F6CDD1Dull + (uint64_t)anywhere;
  memset(&hs, 0, sizeof hs);
  hs.x = 0xA0761D6478BD642Full;
  atomic_store(&stop, 0);
  atomic_store(&worker_tid, 0);
  atomic_store(&worker_done, 0);
  atomic_store(&worker_may_exit, 0);
  atomic_store(&handler_bad, 0);
  atomic_store(&q_head, 0);
  atomic_store(&q_tail, 0);
  atomic_store(&any_point, anywhere);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) {
    printf("FAIL: pthread_create\n");
    exit(1);
  }
  while (atomic_load(&worker_tid) == 0)
    hard_sleep_ms(1);
  timer_t tm = start_timer((int)syscall(SYS_gettid));
  timer_t tw = start_timer(atomic_load(&worker_tid));

  loop_run(&main_loop, 1, hard_now() + secs);

  atomic_store(&stop, 1);
  while (!atomic_load(&worker_done))
    hard_sleep_ms(1);
  timer_delete(tm);
  timer_delete(tw);
  /* a signal may still be pending here: block it for the final checks */
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  atomic_store(&worker_may_exit, 1);
  pthread_join(t, NULL);

  int bad = loop_check_free(&main_loop, "main") +
            loop_check_free(&worker_loop, "worker") + hstate_check_free(&hs, "main") +
            atomic_load(&worker_bad);
  size_t head = atomic_load(&q_head), tail = atomic_load(&q_tail);
  for (; head != tail; head++) {
    if (!blk_ok(queue[head % QCAP])) hard_fail("queued block corrupted"), bad++;
    free(queue[head % QCAP]);
  }
  fprintf(
      stderr,
      "phase %d: main %ld ops, %ld handed over, %ld signals (%ld skipped); worker %ld "
      "ops, %ld signals (%ld skipped); handler failures %d\n",
      anywhere + 1, main_loop.ops, main_loop.handed, hs.calls, hs.skipped,
      worker_loop.ops, worker_calls, worker_skipped, atomic_load(&handler_bad));
  if (hs.calls - hs.skipped < 20 || worker_calls - worker_skipped < 20)
    hard_fail("phase %d: too few signals handled (main %ld, worker %ld)", anywhere + 1,
              hs.calls - hs.skipped, worker_calls - worker_skipped);
  return hard_failures == failures_before && atomic_load(&handler_bad) == 0 && bad == 0;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2;
  (void)hard_check_preload();
  hard_watchdog((unsigned)(2 * secs) + 60, "signal_alloc");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_timer;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGRTMIN, &sa, NULL);

  int ok1 = run_phase(0, secs);
  printf("signal_alloc: handler allocating between its thread's allocator calls: %s\n",
         ok1 ? "ok" : "FAILED");
  fflush(stdout);
  int ok2 = 1;
  if (getenv("PM_HARD_SIGNAL_ANYWHERE") != NULL) {
    ok2 = run_phase(1, secs);
    printf("signal_alloc: handler allocating anywhere, also inside malloc/free: %s\n",
           ok2 ? "ok" : "FAILED");
  } else {
    printf("signal_alloc: handler allocating anywhere: not run (undefined; "
           "PM_HARD_SIGNAL_ANYWHERE=1 runs it)\n");
  }
  return ok1 && ok2 ? 0 : 1;
}
