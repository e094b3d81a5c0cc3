/* je_support.h - the libm functions src/je_support.c provides (for the
 * embedded jemalloc, and for the sampler's exponential intervals), so
 * poolmalloc needs no libm. Within 4 ulp of glibc's. */
#ifndef PM_JE_SUPPORT_H
#define PM_JE_SUPPORT_H

double pm_je_support_exp(double x);
double pm_je_support_log(double x);

/* applies the relocations of the embedded jemalloc's read-only data that
 * tools/pm_lazy_relocs.c took out of the loader's table; once, before
 * jemalloc's first call (src/fallback.c) */
void pm_je_lazy_relocate(void);

#endif
