/* bench_tagged.h - blocks tagged at both ends, checked before they are
 * freed: the fragmentation programs (bench_frag.c, bench_fragsites.c) catch
 * an allocator that hands out overlapping or corrupted blocks. */
#ifndef BENCH_TAGGED_H
#define BENCH_TAGGED_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct block {
  unsigned char *p;
  uint32_t size;
  uint32_t until; /* the phase at whose end it is freed (UINT32_MAX: never) */
  uint64_t tag;
};

static inline void tag_block(unsigned char *p, size_t size, uint64_t tag) {
  memcpy(p, &tag, sizeof tag);
  memcpy(p + size - sizeof tag, &tag, sizeof tag);
}

/* exits 3 naming `prog` if either tag changed, else frees the block */
static inline void check_and_free(struct block *b, const char *prog) {
  uint64_t head, tail;
  memcpy(&head, b->p, sizeof head);
  memcpy(&tail, b->p + b->size - sizeof tail, sizeof tail);
  if (head != b->tag || tail != b->tag) {
    fprintf(stderr, "%s: CORRUPTION in block tagged %llx (%u B)\n", prog,
            (unsigned long long)b->tag, b->size);
    exit(3);
  }
  free(b->p);
  b->p = NULL;
}

#endif
