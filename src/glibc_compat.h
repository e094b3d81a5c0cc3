/* glibc_compat.h - glibc's malloc extensions under pm_ names. */
#ifndef PM_GLIBC_COMPAT_H
#define PM_GLIBC_COMPAT_H

#include <malloc.h>
#include <stdio.h>

void pm_mallinfo2(struct mallinfo2 *m);
void pm_mallinfo(struct mallinfo *m);
int pm_malloc_trim(size_t pad);
void pm_malloc_stats(void);
int pm_malloc_info(int options, FILE *fp);
int pm_mallopt(int param, int value);

#endif
