/* hello.c - a small program to run under poolmalloc: builds a linked list
 * of strings, frees half of them from another thread, prints a checksum. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
  struct node *next;
  char *text;
} node;

static node *half;

static void *free_half(void *arg) {
  (void)arg;
  while (half) {
    node *n = half;
    half = n->next;
    free(n->text);
    free(n);
  }
  return NULL;
}

int main(void) {
  node *keep = NULL;
  unsigned long sum = 0;
  for (int i = 0; i < 100000; i++) {
    node *n = malloc(sizeof *n);
    n->text = malloc(16 + (size_t)(i % 200));
    snprintf(n->text, 16, "item %d", i);
    node **list = (i & 1) ? &half : &keep;
    n->next = *list;
    *list = n;
  }
  pthread_t t;
  pthread_create(&t, NULL, free_half, NULL);
  pthread_join(t, NULL);
  while (keep) {
    node *n = keep;
    keep = n->next;
    sum += strlen(n->text);
    free(n->text);
    free(n);
  }
  printf("hello from poolmalloc's example: checksum %lu\n", sum);
  return 0;
}
