/* Cross-thread free test: 4 producer/consumer pairs.  Each producer
 * allocates blocks of varied sizes (mostly small, some medium and large,
 * some via calloc/memalign), fills them with a seeded pattern and records a
 * checksum in a header; it hands them to its consumer through a bounded
 * queue protected by a mutex and condition variables.  The consumer, on
 * another thread, verifies the checksum, sometimes reallocs the block
 * (checking the preserved prefix) and frees it.  Any corruption or lost
 * block fails the test.  The output is deterministic. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAIRS 4
#define BLOCKS_PER_PRODUCER 100000
#define QUEUE_CAP 512

struct block {
    size_t size;      /* payload bytes after the header */
    uint64_t seed;
    uint64_t checksum;
    unsigned char payload[];
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    struct block *items[QUEUE_CAP];
    size_t head, count;
    int done;
};

struct pair {
    struct queue q;
    unsigned id;
    unsigned long consumed, bad, reallocs;
};

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static uint64_t fill_payload(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(seed + i * 31 + (i >> 8));
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

static uint64_t sum_payload(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static size_t pick_size(uint64_t r)
{
    unsigned k = (unsigned)(r % 256);
    if (k == 0)
        return (size_t)(r >> 8) % (1024 * 1024); /* large: up to 1 MiB */
    if (k < 12)
        return (size_t)(r >> 8) % 65536;         /* medium */
    if (k < 48)
        return (size_t)(r >> 8) % 4096;
    return (size_t)(r >> 8) % 512;               /* small */
}

static void *producer(void *arg)
{
    struct pair *pr = arg;
    uint64_t x = 0x9E3779B97F4A7C15ull * (pr->id + 1);
    for (unsigned long i = 0; i < BLOCKS_PER_PRODUCER; i++) {
        uint64_t r = next_rand(&x);
        size_t n = pick_size(r);
        struct block *b;
        switch ((r >> 40) % 8) {
        case 0: b = calloc(1, sizeof *b + n); break;
        case 1: b = memalign((size_t)16 << ((r >> 44) % 8), sizeof *b + n); break;
        default: b = malloc(sizeof *b + n); break;
        }
        if (!b) {
            fprintf(stderr, "producer %u: allocation of %zu failed\n", pr->id, n);
            exit(1);
        }
        b->size = n;
        b->seed = r;
        b->checksum = fill_payload(b->payload, n, r);

        pthread_mutex_lock(&pr->q.lock);
        while (pr->q.count == QUEUE_CAP)
            pthread_cond_wait(&pr->q.not_full, &pr->q.lock);
        pr->q.items[(pr->q.head + pr->q.count) % QUEUE_CAP] = b;
        pr->q.count++;
        pthread_cond_signal(&pr->q.not_empty);
        pthread_mutex_unlock(&pr->q.lock);
    }
    pthread_mutex_lock(&pr->q.lock);
    pr->q.done = 1;
    pthread_cond_broadcast(&pr->q.not_empty);
    pthread_mutex_unlock(&pr->q.lock);
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *pr = arg;
    for (;;) {
        pthread_mutex_lock(&pr->q.lock);
        while (pr->q.count == 0 && !pr->q.done)
            pthread_cond_wait(&pr->q.not_empty, &pr->q.lock);
        if (pr->q.count == 0 && pr->q.done) {
            pthread_mutex_unlock(&pr->q.lock);
            break;
        }
        struct block *b = pr->q.items[pr->q.head];
        pr->q.head = (pr->q.head + 1) % QUEUE_CAP;
        pr->q.count--;
        pthread_cond_signal(&pr->q.not_full);
        pthread_mutex_unlock(&pr->q.lock);

        if (sum_payload(b->payload, b->size) != b->checksum)
            pr->bad++;
        if (b->seed % 5 == 0) {
            /* Realloc on the consumer thread: grow or shrink, prefix kept. */
            size_t keep = b->size;
            size_t n = (b->seed % 2) ? keep / 2 : keep * 2 + 100;
            size_t cmp = n < keep ? n : keep;
            uint64_t want = sum_payload(b->payload, cmp);
            struct block *nb = realloc(b, sizeof *nb + n);
            if (!nb) {
                pr->bad++;
            } else {
                b = nb;
                if (sum_payload(b->payload, cmp) != want)
                    pr->bad++;
                pr->reallocs++;
            }
        }
        free(b);
        pr->consumed++;
    }
    return NULL;
}

int main(void)
{
    static struct pair pairs[PAIRS];
    pthread_t prod[PAIRS], cons[PAIRS];
    for (unsigned i = 0; i < PAIRS; i++) {
        pairs[i].id = i;
        pthread_mutex_init(&pairs[i].q.lock, NULL);
        pthread_cond_init(&pairs[i].q.not_empty, NULL);
        pthread_cond_init(&pairs[i].q.not_full, NULL);
    }
    for (unsigned i = 0; i < PAIRS; i++) {
        if (pthread_create(&cons[i], NULL, consumer, &pairs[i]) ||
            pthread_create(&prod[i], NULL, producer, &pairs[i])) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    int failed = 0;
    for (unsigned i = 0; i < PAIRS; i++) {
        pthread_join(prod[i], NULL);
        pthread_join(cons[i], NULL);
        printf("pair %u: %lu blocks consumed, %lu corrupted\n", i, pairs[i].consumed, pairs[i].bad);
        if (pairs[i].consumed != BLOCKS_PER_PRODUCER || pairs[i].bad != 0 || pairs[i].reallocs == 0)
            failed = 1;
    }
    printf("prodcons: %s\n", failed ? "FAILED" : "ok");
    return failed;
}
