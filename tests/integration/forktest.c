/* Fork-safety test: 8 threads allocate and free continuously while the main
 * thread forks 200 times.  Each child allocates, checks and frees blocks of
 * several sizes (including from a new thread) and calls _exit(0).  The
 * parent waits for each child with an alarm-based timeout, so a child that
 * deadlocks on an allocator lock inherited in the locked state is detected
 * (and killed) instead of hanging the test. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 8
#define FORKS 200
#define CHILD_TIMEOUT_S 30
#define MAX_HUNG 3 /* stop forking after this many hung children */

static atomic_int stop;
static atomic_long worker_ops;

static void *worker(void *arg)
{
    /* Lower this thread's priority (Linux nice values are per thread) so
     * that on a small machine the forking thread and the children still
     * get the CPU; the workers keep allocating whenever it is idle. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    uint64_t x = 0x2545F4914F6CDD1Dull * ((uintptr_t)arg + 1);
    void *ring[64] = {0};
    while (!atomic_load(&stop)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned i = (unsigned)(x % 64);
        free(ring[i]);
        size_t n = (x >> 8) % 8 == 0 ? (size_t)(x >> 16) % 300000 : (size_t)(x >> 16) % 2000;
        ring[i] = (x >> 12) % 4 == 0 ? calloc(1, n) : malloc(n);
        if (ring[i] && n)
            ((unsigned char *)ring[i])[n - 1] = 1;
        atomic_fetch_add(&worker_ops, 1);
    }
    for (unsigned i = 0; i < 64; i++)
        free(ring[i]);
    return NULL;
}

static int child_allocs(void)
{
    static const size_t sizes[] = {1, 16, 100, 4000, 40000, 400000, 1 << 20};
    for (int round = 0; round < 2; round++) {
        void *p[7];
        for (int i = 0; i < 7; i++) {
            p[i] = malloc(sizes[i]);
            if (!p[i])
                return 0;
            memset(p[i], 0x40 + i, sizes[i]);
        }
        for (int i = 0; i < 7; i++) {
            unsigned char *c = p[i];
            if (c[0] != 0x40 + i || c[sizes[i] - 1] != 0x40 + i)
                return 0;
            c = realloc(c, sizes[i] * 2 + 1);
            if (!c || c[sizes[i] - 1] != 0x40 + i)
                return 0;
            free(c);
        }
        void *a = memalign(4096, 10000);
        void *z = calloc(100, 100);
        if (!a || !z || ((uintptr_t)a & 4095))
            return 0;
        free(a);
        free(z);
    }
    return 1;
}

static void *child_thread(void *arg)
{
    (void)arg;
    return child_allocs() ? (void *)1 : NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* Single-threaded forks first (no pthread_create yet): poolmalloc's fork
 * handlers then skip jemalloc's (nothing to lock), so each child must find
 * jemalloc usable as it is. The parent keeps 40 large blocks (the embedded
 * jemalloc is running) and keeps allocating between forks; each child frees
 * and reallocates some of them, runs child_allocs, forks a grandchild that
 * does the same, and exits. Returns the number of failed children. */
static int single_threaded_forks(void)
{
    enum { LARGE = 40, SINGLE_FORKS = 20 };
    void *big[LARGE];
    for (int i = 0; i < LARGE; i++) {
        big[i] = malloc(50000 + 1000 * (size_t)i);
        if (!big[i])
            return 1;
        memset(big[i], i, 50000);
    }
    int failed = 0;
    for (int f = 0; f < SINGLE_FORKS; f++) {
        free(big[f]);
        big[f] = malloc(60000 + 100 * (size_t)f);
        if (!big[f])
            return failed + 1;
        memset(big[f], f, 50000);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(CHILD_TIMEOUT_S);
            int ok = child_allocs();
            for (int i = 0; ok && i < LARGE; i += 3) {
                unsigned char *c = big[i];
                ok = c[0] == (unsigned char)i && c[49999] == (unsigned char)i;
                free(c);
                big[i] = malloc(70000);
                ok = ok && big[i] != NULL;
            }
            pid_t g = ok ? fork() : -1;
            if (g == 0)
                _exit(child_allocs() ? 0 : 3);
            int st = 1;
            ok = ok && g > 0 && waitpid(g, &st, 0) == g && st == 0;
            _exit(ok ? 0 : 3);
        }
        int status = 1;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0) {
            fprintf(stderr, "single-threaded fork %d: child status %d\n", f, status);
            failed++;
        }
    }
    for (int i = 0; i < LARGE; i++)
        free(big[i]);
    return failed;
}

int main(void)
{
    int single_failed = single_threaded_forks();
    printf("single-threaded forks: failed children: %d\n", single_failed);
    pthread_t t[WORKERS];
    for (uintptr_t i = 0; i < WORKERS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: waitpid returns EINTR */
    sigaction(SIGALRM, &sa, NULL);

    int failed = 0, hung = 0, crashed = 0, forks = 0;
    for (int f = 0; f < FORKS; f++) {
        forks++;
        /* Let the workers get into the allocator. */
        long target = atomic_load(&worker_ops) + 50;
        while (atomic_load(&worker_ops) < target)
            ;
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            failed++;
            continue;
        }
        if (pid == 0) {
            /* A hung child dies of SIGALRM (the parent's no-op handler is
             * inherited across fork, so restore the default action). */
            signal(SIGALRM, SIG_DFL);
            alarm(CHILD_TIMEOUT_S);
            int ok = child_allocs();
            pthread_t ct;
            void *res = NULL;
            if (ok && pthread_create(&ct, NULL, child_thread, NULL) == 0) {
                pthread_join(ct, &res);
                ok = res != NULL;
            } else {
                ok = 0;
            }
            _exit(ok ? 0 : 3);
        }
        int status = 0;
        alarm(CHILD_TIMEOUT_S + 10);
        pid_t w = waitpid(pid, &status, 0);
        alarm(0);
        if (w < 0 && errno == EINTR) {
            fprintf(stderr, "fork %d: child %d did not exit in time, killing it\n", f, (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            hung++;
            failed++;
        } else if (w != pid) {
            perror("waitpid");
            failed++;
        } else if (WIFSIGNALED(status)) {
            fprintf(stderr, "fork %d: child killed by signal %d%s\n", f, WTERMSIG(status),
                    WTERMSIG(status) == SIGALRM ? " (hung in child)" : "");
            if (WTERMSIG(status) == SIGALRM)
                hung++;
            else
                crashed++;
            failed++;
        } else if (WEXITSTATUS(status) != 0) {
            fprintf(stderr, "fork %d: child exited with %d\n", f, WEXITSTATUS(status));
            failed++;
        }
        if (hung >= MAX_HUNG) {
            fprintf(stderr, "%d children hung: giving up after %d forks\n", hung, f + 1);
            break;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    printf("forks: %d, failed children: %d (hung %d, crashed %d)\n", forks, failed, hung, crashed);
    printf("forktest: %s\n", failed ? "FAILED" : "ok");
    return failed || single_failed || forks != FORKS ? 1 : 0;
}
