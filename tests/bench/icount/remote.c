/* remote.c - scripts/icount's "remote": blocks of 64 B allocated by the main
 * thread and freed by a second thread, in batches of 1024 handed over
 * under two semaphores, n blocks (argv[1]). The
 * marginal figure is one malloc plus one remote free. */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

#define BATCH 1024
static void *batch[BATCH];
static sem_t full, empty;
static long rounds;

static void *consumer(void *arg) {
  (void)arg;
  for (long r = 0; r < rounds; r++) {
    sem_wait(&full);
    for (int i = 0; i < BATCH; i++)
      free(batch[i]);
    sem_post(&empty);
  }
  return NULL;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  rounds = n / BATCH;
  sem_init(&full, 0, 0);
  sem_init(&empty, 0, 1);
  pthread_t t;
  if (pthread_create(&t, NULL, consumer, NULL) != 0) return 1;
  for (long r = 0; r < rounds; r++) {
    sem_wait(&empty);
    for (int i = 0; i < BATCH; i++)
      batch[i] = malloc(64);
    sem_post(&full);
  }
  pthread_join(t, NULL);
  return 0;
}
