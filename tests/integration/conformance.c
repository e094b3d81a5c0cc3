/* Conformance test: checks that the malloc family behaves like glibc 2.36
 * (zero sizes, overflow and failure paths with errno, alignment functions,
 * errno preservation by free, realloc content preservation, usable sizes,
 * mallinfo2/malloc_trim/mallopt conventions).  It is run once under
 * LD_PRELOAD=libpoolmalloc.so and once without; every check prints one
 * deterministic line, and the two outputs must be identical.  Nothing that
 * depends on the allocator (addresses, statistics) is printed unless a check
 * fails.  Exit status is 0 only if every check passed.
 *
 * Build with -fno-builtin so the compiler cannot fold or elide allocations. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

/* Sizes are read through volatile objects so the compiler cannot see them
 * (no -Walloc-size-larger-than noise, no constant folding). */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_max = PTRDIFF_MAX;
static volatile size_t v_two62 = (size_t)1 << 62;

/* Print "label: expectation" when ok, or the same followed by
 * ": FAIL <detail>" otherwise. */
static void check(int ok, const char *label, const char *expect, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void check(int ok, const char *label, const char *expect, const char *fmt, ...)
{
    if (ok) {
        printf("%s: %s\n", label, expect);
    } else {
        va_list ap;
        printf("%s: %s: FAIL ", label, expect);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        failures++;
    }
    fflush(stdout);
}

static unsigned char pat(size_t i, unsigned seed)
{
    return (unsigned char)((i * 131u) ^ (i >> 9) ^ (seed * 29u) ^ 0x5a);
}

static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = pat(i, seed);
}

/* Returns the index of the first mismatching byte, or n if all match. */
static size_t verify(const void *p, size_t n, unsigned seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != pat(i, seed))
            return i;
    return n;
}

static int is_aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

/* Writes every byte of the usable size; returns 1 if the block is usable for
 * at least `need` bytes and reads back correctly. */
static int usable_and_writable(void *p, size_t need, size_t *usable_out)
{
    size_t u = malloc_usable_size(p);
    *usable_out = u;
    if (u < need)
        return 0;
    memset(p, 0xA5, u);
    unsigned char *c = p;
    return c[0] == 0xA5 && c[u - 1] == 0xA5 && c[u / 2] == 0xA5;
}

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------------ */

static void test_zero_sizes(void)
{
    enum { N = 32 };
    void *p[N];
    int ok = 1;
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        if (!p[i])
            ok = 0;
        for (int j = 0; j < i && ok; j++)
            if (p[j] == p[i])
                ok = 0;
    }
    check(ok, "malloc(0)", "non-NULL unique", "some result NULL or duplicated");
    for (int i = 0; i < N; i++)
        free(p[i]);

    void *q = calloc(0, 16), *r = calloc(16, 0);
    check(q && r && q != r, "calloc(0, n) and calloc(n, 0)", "non-NULL unique", "got %p %p", q, r);
    free(q);
    free(r);

    q = realloc(NULL, 0);
    check(q != NULL, "realloc(NULL, 0)", "non-NULL", "got NULL");
    free(q);

    q = realloc(NULL, 100);
    size_t u = 0;
    check(q && usable_and_writable(q, 100, &u), "realloc(NULL, 100)", "acts as malloc",
          "p=%p usable=%zu", q, u);
    free(q);

    check(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL)", "0", "got %zu",
          malloc_usable_size(NULL));

    /* realloc(p, 0) frees p and returns NULL in glibc. Repeating it many times
     * with sizable blocks would also expose a leak as memory growth. */
    int all_null = 1;
    for (int i = 0; i < 2000; i++) {
        void *b = malloc(64 * 1024);
        if (!b) {
            all_null = 0;
            break;
        }
        memset(b, 1, 64 * 1024);
        void *z = realloc(b, 0);
        if (z != NULL) {
            all_null = 0;
            free(z);
            break;
        }
    }
    check(all_null, "realloc(p, 0)", "frees, returns NULL", "returned non-NULL");

    void *v = malloc(1);
    errno = 0;
    free(NULL);
    check(errno == 0, "free(NULL)", "no effect", "errno=%d", errno);
    free(v);
}

static void test_huge_requests(void)
{
    struct {
        const char *label;
        size_t n;
    } sizes[] = {
        {"malloc(SIZE_MAX)", v_size_max},
        {"malloc(SIZE_MAX-4095)", v_size_max - 4095},
        {"malloc(PTRDIFF_MAX+1)", v_ptrdiff_max + 1},
        {"malloc(PTRDIFF_MAX)", v_ptrdiff_max},
        {"malloc(2^62)", v_two62},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        void *p = malloc(sizes[i].n);
        int e = errno;
        check(p == NULL && e == ENOMEM, sizes[i].label, "NULL ENOMEM", "p=%p errno=%d", p, e);
        free(p);
    }

    struct {
        const char *label;
        size_t a, b;
    } cs[] = {
        {"calloc overflow (SIZE_MAX/2+1, 2)", v_size_max / 2 + 1, 2},
        {"calloc overflow (2, SIZE_MAX/2+1)", 2, v_size_max / 2 + 1},
        {"calloc overflow (2^32, 2^32)", v_two62 >> 30, v_two62 >> 30},
        {"calloc overflow (SIZE_MAX, SIZE_MAX)", v_size_max, v_size_max},
        {"calloc(PTRDIFF_MAX+1, 1)", v_ptrdiff_max + 1, 1},
        {"calloc(1, SIZE_MAX)", 1, v_size_max},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        errno = 0;
        void *p = calloc(cs[i].a, cs[i].b);
        int e = errno;
        check(p == NULL && e == ENOMEM, cs[i].label, "NULL ENOMEM", "p=%p errno=%d", p, e);
        free(p);
    }

    errno = 0;
    void *p = reallocarray(NULL, v_size_max / 2 + 1, 2);
    int e = errno;
    check(p == NULL && e == ENOMEM, "reallocarray(NULL) overflow", "NULL ENOMEM", "p=%p errno=%d",
          p, e);
    free(p);

    errno = 0;
    p = reallocarray(NULL, 10, 100);
    size_t u = 0;
    check(p && usable_and_writable(p, 1000, &u), "reallocarray(NULL, 10, 100)", "acts as malloc",
          "p=%p usable=%zu", p, u);
    if (p) {
        fill(p, 1000, 7);
        void *q = reallocarray(p, 10, 1000);
        check(q && verify(q, 1000, 7) == 1000, "reallocarray(p, 10, 1000)", "grows, contents kept",
              "q=%p", q);
        if (q)
            p = q;
        errno = 0;
        q = reallocarray(p, v_two62 >> 29, v_two62 >> 29);
        e = errno;
        if (q == NULL) {
            check(e == ENOMEM && verify(p, 1000, 7) == 1000, "reallocarray(p) overflow",
                  "NULL ENOMEM, p intact", "errno=%d", e);
            free(p);
        } else {
            check(0, "reallocarray(p) overflow", "NULL ENOMEM, p intact", "q=%p", q);
            free(q);
        }
    }

    /* realloc failure must leave the block intact, for each size class. */
    struct {
        const char *label;
        size_t n;
    } blocks[] = {{"small", 100}, {"medium", 40 * 1024}, {"large", 4 * 1024 * 1024}};
    size_t huge[] = {v_size_max, v_ptrdiff_max + 1, v_ptrdiff_max, v_two62};
    const char *huge_name[] = {"SIZE_MAX", "PTRDIFF_MAX+1", "PTRDIFF_MAX", "2^62"};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
            char label[96];
            snprintf(label, sizeof label, "realloc(%s block, %s)", blocks[b].label, huge_name[h]);
            void *blk = malloc(blocks[b].n);
            if (!blk) {
                check(0, label, "NULL ENOMEM, p intact", "setup malloc failed");
                continue;
            }
            fill(blk, blocks[b].n, (unsigned)(b * 10 + h));
            errno = 0;
            void *r = realloc(blk, huge[h]);
            e = errno;
            if (r == NULL) {
                size_t bad = verify(blk, blocks[b].n, (unsigned)(b * 10 + h));
                check(e == ENOMEM && bad == blocks[b].n, label, "NULL ENOMEM, p intact",
                      "errno=%d contents %s", e, bad == blocks[b].n ? "intact" : "damaged");
                free(blk);
            } else {
                check(0, label, "NULL ENOMEM, p intact", "r=%p", r);
                free(r);
            }
        }
    }

    long pg = (long)page_size();
    struct {
        const char *label;
        void *(*fn)(size_t, size_t);
        size_t align;
    } af[] = {
        {"aligned_alloc(64, SIZE_MAX)", aligned_alloc, 64},
        {"aligned_alloc(4096, PTRDIFF_MAX+1)", aligned_alloc, 4096},
        {"memalign(64, SIZE_MAX)", memalign, 64},
        {"memalign(4096, PTRDIFF_MAX+1)", memalign, 4096},
    };
    for (size_t i = 0; i < sizeof af / sizeof af[0]; i++) {
        errno = 0;
        size_t n = (i % 2) ? v_ptrdiff_max + 1 : v_size_max;
        void *q = af[i].fn(af[i].align, n);
        e = errno;
        check(q == NULL && e == ENOMEM, af[i].label, "NULL ENOMEM", "p=%p errno=%d", q, e);
        free(q);
    }
    errno = 0;
    p = valloc(v_size_max);
    e = errno;
    check(p == NULL && e == ENOMEM, "valloc(SIZE_MAX)", "NULL ENOMEM", "p=%p errno=%d", p, e);
    free(p);
    errno = 0;
    p = pvalloc(v_size_max - (size_t)pg + 2);
    e = errno;
    check(p == NULL && e == ENOMEM, "pvalloc(SIZE_MAX-pagesize+2)", "NULL ENOMEM",
          "p=%p errno=%d", p, e);
    free(p);
}

static void test_posix_memalign_errors(void)
{
    size_t bad[] = {0, 1, 2, 4, 12, 24, 48, 96, 3 * sizeof(void *), 4096 + 8, 65537};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *sentinel = (void *)(uintptr_t)0xdeadbeef;
        void *p = sentinel;
        int r = posix_memalign(&p, bad[i], 64);
        char label[80];
        snprintf(label, sizeof label, "posix_memalign(align=%zu)", bad[i]);
        check(r == EINVAL && p == sentinel, label, "EINVAL, *memptr untouched", "r=%d p=%p", r,
              p);
        if (p != sentinel)
            free(p);
    }
    size_t aligns[] = {sizeof(void *), 16, 64, 4096, 1 << 20};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        void *p = NULL;
        int r = posix_memalign(&p, aligns[i], v_size_max);
        char label[80];
        snprintf(label, sizeof label, "posix_memalign(align=%zu, SIZE_MAX)", aligns[i]);
        check(r == ENOMEM, label, "ENOMEM", "r=%d", r);
        if (r == 0)
            free(p);
        p = NULL;
        r = posix_memalign(&p, aligns[i], v_ptrdiff_max + 1);
        snprintf(label, sizeof label, "posix_memalign(align=%zu, PTRDIFF_MAX+1)", aligns[i]);
        check(r == ENOMEM, label, "ENOMEM", "r=%d", r);
        if (r == 0)
            free(p);
    }
    void *p = NULL;
    int r = posix_memalign(&p, 64, 0);
    check(r == 0 && p != NULL && is_aligned(p, 64), "posix_memalign(64, 0)", "0, aligned non-NULL",
          "r=%d p=%p", r, p);
    if (r == 0)
        free(p);
}

/* Sizes exercised for a given alignment. */
static size_t align_sizes(size_t a, size_t out[8])
{
    size_t n = 0;
    out[n++] = 1;
    out[n++] = 24;
    if (a > 1)
        out[n++] = a - 1;
    out[n++] = a;
    out[n++] = a + 1;
    out[n++] = 3 * a + 7;
    out[n++] = 100000;
    return n;
}

static void test_alignment_functions(void)
{
    for (int k = 0; k <= 20; k++) {
        size_t a = (size_t)1 << k;
        size_t sz[8];
        size_t ns = align_sizes(a, sz);
        char label[96];

        /* posix_memalign */
        int ok = 1;
        char detail[160] = "";
        for (size_t i = 0; i < ns; i++) {
            void *p = (void *)(uintptr_t)0x1234;
            int r = posix_memalign(&p, a, sz[i]);
            if (a < sizeof(void *)) {
                if (r != EINVAL || p != (void *)(uintptr_t)0x1234) {
                    ok = 0;
                    snprintf(detail, sizeof detail, "size=%zu r=%d", sz[i], r);
                }
                if (r == 0)
                    free(p);
                continue;
            }
            size_t u = 0;
            if (r != 0 || !p || !is_aligned(p, a) || !is_aligned(p, 16) ||
                !usable_and_writable(p, sz[i], &u)) {
                ok = 0;
                snprintf(detail, sizeof detail, "size=%zu r=%d p=%p usable=%zu", sz[i], r, p, u);
            }
            if (r == 0)
                free(p);
        }
        snprintf(label, sizeof label, "posix_memalign(align=2^%d)", k);
        check(ok, label,
              a < sizeof(void *) ? "EINVAL, *memptr untouched"
                                 : "aligned, 16-aligned, usable>=size, writable",
              "%s", detail);

        /* aligned_alloc and memalign */
        struct {
            const char *name;
            void *(*fn)(size_t, size_t);
        } fns[] = {{"aligned_alloc", aligned_alloc}, {"memalign", memalign}};
        for (size_t f = 0; f < 2; f++) {
            ok = 1;
            detail[0] = 0;
            for (size_t i = 0; i < ns; i++) {
                void *p = fns[f].fn(a, sz[i]);
                size_t u = 0;
                if (!p || !is_aligned(p, a) || !is_aligned(p, 16) ||
                    !usable_and_writable(p, sz[i], &u)) {
                    ok = 0;
                    snprintf(detail, sizeof detail, "size=%zu p=%p usable=%zu", sz[i], p, u);
                }
                free(p);
            }
            snprintf(label, sizeof label, "%s(align=2^%d)", fns[f].name, k);
            check(ok, label, "aligned, 16-aligned, usable>=size, writable", "%s", detail);
        }
    }

    /* Many live aligned blocks at once, so placement inside runs is covered. */
    int ok = 1;
    enum { LIVE = 200 };
    void *live[LIVE];
    for (int i = 0; i < LIVE; i++) {
        size_t a = (size_t)16 << (i % 9);
        size_t n = 1 + (size_t)(i * 37) % 3000;
        live[i] = memalign(a, n);
        if (!live[i] || !is_aligned(live[i], a))
            ok = 0;
        else
            fill(live[i], n, (unsigned)i);
    }
    for (int i = 0; i < LIVE; i++) {
        size_t n = 1 + (size_t)(i * 37) % 3000;
        if (live[i] && verify(live[i], n, (unsigned)i) != n)
            ok = 0;
        free(live[i]);
    }
    check(ok, "200 live memalign blocks (align 16..4096)", "aligned, contents intact", "mismatch");

    size_t pg = page_size();
    size_t vs[] = {1, 100, pg - 1, pg, pg + 1, 3 * pg + 1, 1 << 20, (1 << 20) + 1};
    int vok = 1, pok = 1;
    char vdetail[160] = "", pdetail[160] = "";
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        size_t u = 0;
        void *p = valloc(vs[i]);
        if (!p || !is_aligned(p, pg) || !usable_and_writable(p, vs[i], &u)) {
            vok = 0;
            snprintf(vdetail, sizeof vdetail, "size=%zu p=%p usable=%zu", vs[i], p, u);
        }
        free(p);
        size_t rounded = (vs[i] + pg - 1) & ~(pg - 1);
        p = pvalloc(vs[i]);
        if (!p || !is_aligned(p, pg) || !usable_and_writable(p, rounded, &u)) {
            pok = 0;
            snprintf(pdetail, sizeof pdetail, "size=%zu p=%p usable=%zu need=%zu", vs[i], p, u,
                     rounded);
        }
        free(p);
    }
    check(vok, "valloc(1 .. 1MiB+1)", "page-aligned, usable>=size, writable", "%s", vdetail);
    check(pok, "pvalloc(1 .. 1MiB+1)", "page-aligned, usable>=page-rounded size, writable", "%s",
          pdetail);
    void *p = valloc(0);
    check(p && is_aligned(p, pg), "valloc(0)", "page-aligned non-NULL", "p=%p", p);
    free(p);
    p = pvalloc(0);
    check(p && is_aligned(p, pg), "pvalloc(0)", "page-aligned non-NULL", "p=%p", p);
    free(p);
}

static void test_default_alignment(void)
{
    enum { N = 4096 };
    void **p = malloc(N * sizeof *p);
    int ok = 1;
    size_t bad = 0;
    for (size_t s = 1; s <= N; s++) {
        p[s - 1] = malloc(s);
        if (!p[s - 1] || !is_aligned(p[s - 1], 16) || malloc_usable_size(p[s - 1]) < s) {
            if (ok)
                bad = s;
            ok = 0;
        } else {
            memset(p[s - 1], (int)s, s);
        }
    }
    for (size_t s = 1; s <= N; s++)
        free(p[s - 1]);
    check(ok, "malloc(1..4096)", "16-byte aligned, usable>=size", "first bad size=%zu", bad);

    ok = 1;
    for (size_t s = 1; s <= N; s++) {
        p[s - 1] = calloc(1, s);
        if (!p[s - 1] || !is_aligned(p[s - 1], 16)) {
            if (ok)
                bad = s;
            ok = 0;
        }
    }
    for (size_t s = 1; s <= N; s++)
        free(p[s - 1]);
    check(ok, "calloc(1, 1..4096)", "16-byte aligned", "first bad size=%zu", bad);

    ok = 1;
    size_t count = 0;
    for (size_t s = 4097; s <= (size_t)6 << 20; s = s + s / 7 + 13) {
        void *q = malloc(s);
        void *r = calloc(s, 1);
        if (!q || !r || !is_aligned(q, 16) || !is_aligned(r, 16) || malloc_usable_size(q) < s ||
            malloc_usable_size(r) < s) {
            if (ok)
                bad = s;
            ok = 0;
        } else {
            ((char *)q)[s - 1] = 1;
            ((char *)r)[s - 1] = 1;
        }
        if (count < N)
            p[count++] = q; /* keep some live so they are not simply reused */
        else
            free(q);
        free(r);
    }
    for (size_t i = 0; i < count; i++)
        free(p[i]);
    check(ok, "malloc/calloc(4097 .. 6MiB)", "16-byte aligned, usable>=size", "first bad size=%zu",
          bad);
    free(p);
}

static void test_calloc_zeroing(void)
{
    size_t sizes[] = {8, 24, 100, 1000, 4000, 40 * 1024, 200 * 1024, 4 << 20};
    int ok = 1;
    size_t bad = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            enum { K = 16 };
            void *d[K];
            for (int k = 0; k < K; k++) {
                d[k] = malloc(sizes[i]);
                if (d[k])
                    memset(d[k], 0xEE, sizes[i]);
            }
            for (int k = 0; k < K; k++)
                free(d[k]);
            for (int k = 0; k < K; k++) {
                unsigned char *c = calloc(1, sizes[i]);
                d[k] = c;
                if (!c) {
                    ok = 0;
                    bad = sizes[i];
                    continue;
                }
                for (size_t j = 0; j < sizes[i]; j++)
                    if (c[j]) {
                        ok = 0;
                        bad = sizes[i];
                        break;
                    }
                memset(c, 0xDD, sizes[i]);
            }
            for (int k = 0; k < K; k++)
                free(d[k]);
        }
    }
    check(ok, "calloc after dirty free (8 .. 4MiB)", "zeroed", "size=%zu not zeroed", bad);
}

static void test_free_errno(void)
{
    struct {
        const char *label;
        size_t n;
        size_t align;
    } cases[] = {
        {"free(small 32B) errno", 32, 0},
        {"free(small 1000B) errno", 1000, 0},
        {"free(medium 40KiB) errno", 40 * 1024, 0},
        {"free(large 4MiB) errno", 4 * 1024 * 1024, 0},
        {"free(huge 64MiB) errno", 64 * 1024 * 1024, 0},
        {"free(memalign 4096, 40KiB) errno", 40 * 1024, 4096},
        {"free(memalign 2MiB, 4MiB) errno", 4 * 1024 * 1024, 2 * 1024 * 1024},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int ok = 1, got = 0;
        for (int rep = 0; rep < 8 && ok; rep++) {
            void *p = cases[i].align ? memalign(cases[i].align, cases[i].n) : malloc(cases[i].n);
            if (!p) {
                ok = 0;
                break;
            }
            memset(p, 0x11, cases[i].n);
            errno = 1234;
            free(p);
            got = errno;
            if (got != 1234)
                ok = 0;
        }
        check(ok, cases[i].label, "preserved", "errno after free=%d", got);
    }
    void *p = malloc(100);
    void *q;
    errno = 1234;
    q = realloc(p, 0);
    int got = errno;
    check(q == NULL && got == 1234, "realloc(p, 0) errno", "preserved", "q=%p errno=%d", q, got);
}

/* Grow one block from 1 byte to 8 MiB and shrink it back, checking that the
 * common prefix survives every move.  A second live block is allocated
 * between steps so the block cannot always grow in place. */
static void test_realloc_chain(void)
{
    unsigned char *p = NULL;
    size_t cur = 0;
    int ok = 1;
    size_t steps = 0, bad_at = 0;
    void *blockers[64] = {0};
    size_t nb = 0;
    for (size_t n = 1; n <= (size_t)8 << 20; n = n + n / 3 + 1) {
        unsigned char *q = realloc(p, n);
        if (!q) {
            ok = 0;
            bad_at = n;
            break;
        }
        p = q;
        if (verify(p, cur, 1) != cur || !is_aligned(p, 16) || malloc_usable_size(p) < n) {
            if (ok)
                bad_at = n;
            ok = 0;
        }
        for (size_t i = cur; i < n; i++)
            p[i] = pat(i, 1);
        cur = n;
        steps++;
        if (nb < 64)
            blockers[nb++] = malloc(n < 4096 ? n : 4096);
    }
    check(ok, "realloc chain 1B -> 8MiB", "contents kept, 16-aligned", "failed at size %zu",
          bad_at);
    ok = 1;
    while (cur > 1) {
        size_t n = cur - cur / 4 - 1;
        if (n == 0)
            n = 1;
        unsigned char *q = realloc(p, n);
        if (!q) {
            ok = 0;
            bad_at = n;
            break;
        }
        p = q;
        if (verify(p, n, 1) != n || !is_aligned(p, 16) || malloc_usable_size(p) < n) {
            if (ok)
                bad_at = n;
            ok = 0;
        }
        cur = n;
    }
    check(ok, "realloc chain 8MiB -> 1B", "contents kept, 16-aligned", "failed at size %zu",
          bad_at);
    free(p);
    for (size_t i = 0; i < nb; i++)
        free(blockers[i]);

    /* In-place style: realloc to the same and to slightly smaller/larger sizes. */
    ok = 1;
    size_t sizes[] = {16, 100, 5000, 70000, 1 << 20, 5 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *b = malloc(n);
        if (!b) {
            ok = 0;
            continue;
        }
        fill(b, n, 3);
        b = realloc(b, n);
        if (!b || verify(b, n, 3) != n)
            ok = 0;
        unsigned char *c = b ? realloc(b, n - n / 8) : NULL;
        if (!c || verify(c, n - n / 8, 3) != n - n / 8)
            ok = 0;
        b = c ? c : b;
        c = realloc(b, n + n / 8);
        if (!c || verify(c, n - n / 8, 3) != n - n / 8)
            ok = 0;
        free(c ? c : b);
    }
    check(ok, "realloc same/smaller/larger", "contents kept", "mismatch");
}

/* A deterministic random mix of operations over many slots. */
static void test_random_mix(void)
{
    enum { SLOTS = 2048, OPS = 200000 };
    struct {
        unsigned char *p;
        size_t n;
        unsigned seed;
    } *s = calloc(SLOTS, sizeof *s);
    unsigned long long x = 88172645463325252ull;
    int ok = s != NULL;
    size_t bad_op = 0;
    for (size_t op = 0; op < OPS && ok; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t i = (size_t)(x % SLOTS);
        unsigned kind = (unsigned)((x >> 20) % 8);
        unsigned r = (unsigned)(x >> 32);
        size_t n;
        switch (r % 16) {
        case 0: n = (size_t)(r >> 4) % (256 * 1024); break;
        case 1: n = (size_t)(r >> 4) % 32768; break;
        case 2: case 3: n = (size_t)(r >> 4) % 4096; break;
        default: n = (size_t)(r >> 4) % 512; break;
        }
        if (s[i].p) {
            size_t got = verify(s[i].p, s[i].n, s[i].seed);
            if (got != s[i].n) {
                ok = 0;
                bad_op = op;
                break;
            }
        }
        if (kind < 3 && s[i].p) {
            free(s[i].p);
            s[i].p = NULL;
        } else if (kind < 5 && s[i].p) {
            unsigned char *q = realloc(s[i].p, n + 1);
            if (!q) {
                ok = 0;
                bad_op = op;
                break;
            }
            size_t keep = s[i].n < n + 1 ? s[i].n : n + 1;
            if (verify(q, keep, s[i].seed) != keep) {
                ok = 0;
                bad_op = op;
                break;
            }
            s[i].p = q;
            s[i].n = n + 1;
            fill(q, s[i].n, s[i].seed);
        } else {
            free(s[i].p);
            if (kind == 5) {
                s[i].p = calloc(1, n);
                if (s[i].p)
                    for (size_t j = 0; j < n; j++)
                        if (s[i].p[j])
                            ok = 0;
            } else if (kind == 6) {
                s[i].p = memalign((size_t)16 << (r % 6), n);
            } else {
                s[i].p = malloc(n);
            }
            if (!s[i].p || !is_aligned(s[i].p, 16)) {
                ok = 0;
                bad_op = op;
                break;
            }
            s[i].n = n;
            s[i].seed = r;
            fill(s[i].p, n, r);
        }
    }
    if (s)
        for (size_t i = 0; i < SLOTS; i++)
            free(s[i].p);
    free(s);
    check(ok, "random malloc/calloc/memalign/realloc/free mix (200000 ops)",
          "contents intact, calloc zeroed", "failed at op %zu", bad_op);
}

static void test_usable_size(void)
{
    int ok = 1;
    size_t bad = 0;
    for (size_t n = 1; n < (size_t)2 << 20; n = n * 3 / 2 + 1) {
        unsigned char *p = malloc(n);
        size_t u = 0;
        if (!p || !usable_and_writable(p, n, &u)) {
            ok = 0;
            bad = n;
        }
        free(p);
    }
    check(ok, "malloc_usable_size(malloc(n))", ">= n, every byte writable", "n=%zu", bad);
}

/* glibc's internal aliases (exported by glibc 2.36 too) must be the same
 * allocator as malloc/free: blocks move freely between the two names. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static void test_glibc_aliases(void)
{
    int ok = 1;
    size_t pg = page_size();
    for (size_t n = 1; n < (size_t)1 << 22; n = n * 5 + 3) {
        unsigned char *a = __libc_malloc(n);
        unsigned char *b = malloc(n);
        unsigned char *c = __libc_calloc(1, n);
        if (!a || !b || !c) {
            ok = 0;
            break;
        }
        fill(a, n, 1);
        fill(b, n, 2);
        if (c[0] || c[n - 1])
            ok = 0;
        a = __libc_realloc(a, n * 2);
        b = realloc(b, n + 1);
        if (!a || !b || verify(a, n, 1) != n || verify(b, n, 2) != n)
            ok = 0;
        free(a);
        __libc_free(b);
        __libc_free(c);
        void *m = __libc_memalign(256, n), *v = __libc_valloc(n), *pv = __libc_pvalloc(n);
        if (!m || !v || !pv || !is_aligned(m, 256) || !is_aligned(v, pg) || !is_aligned(pv, pg) ||
            malloc_usable_size(pv) < ((n + pg - 1) & ~(pg - 1)))
            ok = 0;
        free(m);
        __libc_free(v);
        free(pv);
    }
    check(ok, "__libc_malloc/calloc/realloc/memalign/valloc/pvalloc/free",
          "interchangeable with malloc/free", "%s", "mismatch");

    /* Optional names: free_sized and free_aligned_sized (C23; not in glibc
     * 2.36) and cfree (a compat-only symbol in glibc).  When present they
     * must free the block and keep errno; when absent the check is vacuous,
     * so the line is the same for every allocator. */
    void (*fs)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    void (*fas)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    void (*cf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    ok = 1;
    for (size_t n = 1; n < (size_t)1 << 23; n = n * 7 + 1) {
        if (fs) {
            void *p = malloc(n);
            errno = 1234;
            fs(p, n);
            if (errno != 1234)
                ok = 0;
            fs(NULL, 0);
        }
        if (fas) {
            void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
            errno = 1234;
            fas(p, 64, (n + 63) & ~(size_t)63);
            if (errno != 1234)
                ok = 0;
        }
        if (cf) {
            void *p = calloc(n, 1);
            errno = 1234;
            cf(p);
            if (errno != 1234)
                ok = 0;
        }
    }
    check(ok, "free_sized/free_aligned_sized/cfree (where exported)", "free, errno preserved",
          "%s", "errno changed");
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void test_introspection(void)
{
    void *keep = malloc(1 << 20);
    void *small = malloc(100);
    struct mallinfo2 m2 = mallinfo2();
    check(m2.uordblks + m2.fordblks == m2.arena && m2.keepcost <= m2.fordblks, "mallinfo2()",
          "uordblks+fordblks==arena, keepcost<=fordblks",
          "arena=%zu uordblks=%zu fordblks=%zu keepcost=%zu", m2.arena, m2.uordblks, m2.fordblks,
          m2.keepcost);
    struct mallinfo m1 = mallinfo();
    check(m1.arena >= 0 && m1.uordblks >= 0 && m1.fordblks >= 0 && m1.hblkhd >= 0, "mallinfo()",
          "non-negative fields", "arena=%d uordblks=%d fordblks=%d hblkhd=%d", m1.arena,
          m1.uordblks, m1.fordblks, m1.hblkhd);
    free(keep);
    free(small);

    int t = malloc_trim(0);
    check(t == 0 || t == 1, "malloc_trim(0)", "returns 0 or 1", "got %d", t);
    t = malloc_trim(1 << 20);
    check(t == 0 || t == 1, "malloc_trim(1MiB)", "returns 0 or 1", "got %d", t);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int r = f ? malloc_info(0, f) : -2;
    if (f)
        fclose(f);
    check(r == 0 && buf && len > 0 && buf[0] == '<', "malloc_info(0, fp)", "0, XML written",
          "r=%d len=%zu", r, len);
    free(buf);

    /* malloc_stats writes to stderr, which the test does not compare. */
    malloc_stats();
    check(1, "malloc_stats()", "returns", "%s", "");

    struct {
        const char *label;
        int param, value;
    } opts[] = {
        {"mallopt(M_TRIM_THRESHOLD, 256KiB)", M_TRIM_THRESHOLD, 256 * 1024},
        {"mallopt(M_TOP_PAD, 64KiB)", M_TOP_PAD, 64 * 1024},
        {"mallopt(M_MMAP_THRESHOLD, 256KiB)", M_MMAP_THRESHOLD, 256 * 1024},
        {"mallopt(M_ARENA_MAX, 8)", M_ARENA_MAX, 8},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        int v = mallopt(opts[i].param, opts[i].value);
        check(v == 1, opts[i].label, "returns 1", "got %d", v);
    }
    /* The allocator still works after the options changed. */
    void *p = malloc(300 * 1024), *q = malloc(10);
    check(p && q, "malloc after mallopt", "works", "p=%p q=%p", p, q);
    free(p);
    free(q);
}
#pragma GCC diagnostic pop

int main(void)
{
    test_zero_sizes();
    test_huge_requests();
    test_posix_memalign_errors();
    test_alignment_functions();
    test_default_alignment();
    test_calloc_zeroing();
    test_free_errno();
    test_realloc_chain();
    test_random_mix();
    test_usable_size();
    test_glibc_aliases();
    test_introspection();
    printf("conformance: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
