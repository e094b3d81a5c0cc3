/* Thread-churn test: 10,000 short-lived threads (at most 8 alive at once),
 * each allocating and freeing a few blocks of different sizes and leaving
 * one live block behind, which the main thread verifies and frees after the
 * thread has exited.  Per-thread allocator state must be reclaimed when a
 * thread exits: the test prints VmRSS before and after and fails if it grew
 * by more than 64 MiB.  Blocks carry a pattern that is checked. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 10000
#define WAVE 8
#define RSS_LIMIT_KIB (64L * 1024)

struct slot {
    unsigned char *live;
    size_t size;
    unsigned id;
    int bad;
};

static struct slot slots[THREADS];

static long vm_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static unsigned char pat(size_t i, unsigned id)
{
    return (unsigned char)(i * 7 + id * 13 + 1);
}

static void *worker(void *arg)
{
    struct slot *s = arg;
    static const size_t sizes[] = {24, 200, 1500, 9000, 70000, 300000};
    void *tmp[6];
    for (int i = 0; i < 6; i++) {
        size_t n = sizes[i] + s->id % 17;
        tmp[i] = malloc(n);
        if (!tmp[i]) {
            s->bad = 1;
            continue;
        }
        memset(tmp[i], i + 1, n);
    }
    for (int i = 5; i >= 0; i--) {
        unsigned char *c = tmp[i];
        if (c && (c[0] != i + 1 || c[sizes[i] + s->id % 17 - 1] != i + 1))
            s->bad = 1;
        free(c);
    }
    /* The block that outlives the thread. */
    s->size = 16 + (s->id * 37) % 1000;
    s->live = malloc(s->size);
    if (!s->live) {
        s->bad = 1;
        return NULL;
    }
    for (size_t i = 0; i < s->size; i++)
        s->live[i] = pat(i, s->id);
    return NULL;
}

int main(void)
{
    /* Warm up the allocator and the thread machinery before measuring. */
    for (unsigned i = 0; i < WAVE; i++) {
        struct slot s = {.id = i};
        pthread_t t;
        if (pthread_create(&t, NULL, worker, &s) != 0)
            return 1;
        pthread_join(t, NULL);
        free(s.live);
    }
    long before = vm_rss_kib();

    for (unsigned base = 0; base < THREADS; base += WAVE) {
        pthread_t t[WAVE];
        unsigned n = THREADS - base < WAVE ? THREADS - base : WAVE;
        for (unsigned i = 0; i < n; i++) {
            slots[base + i].id = base + i;
            int rc = pthread_create(&t[i], NULL, worker, &slots[base + i]);
            if (rc != 0) {
                fprintf(stderr, "pthread_create failed for thread %u: %s\n", base + i,
                        strerror(rc));
                return 1;
            }
        }
        for (unsigned i = 0; i < n; i++)
            pthread_join(t[i], NULL);
    }
    long peak = vm_rss_kib();

    int bad = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        struct slot *s = &slots[i];
        if (s->bad || !s->live) {
            bad++;
            continue;
        }
        for (size_t j = 0; j < s->size; j++)
            if (s->live[j] != pat(j, s->id)) {
                bad++;
                break;
            }
        free(s->live);
    }
    long after = vm_rss_kib();
    printf("VmRSS before: %ld kB\n", before);
    printf("VmRSS with %d live blocks: %ld kB\n", THREADS, peak);
    printf("VmRSS after: %ld kB\n", after);
    printf("threads with bad blocks: %d\n", bad);
    int ok = bad == 0 && before > 0 && after > 0 && after - before <= RSS_LIMIT_KIB;
    if (after - before > RSS_LIMIT_KIB)
        printf("RSS grew by %ld kB (limit %ld kB)\n", after - before, RSS_LIMIT_KIB);
    printf("churn: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
