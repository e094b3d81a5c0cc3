// C++ allocation forms test: exercises all 20 replaceable operator new /
// operator delete forms (plain, array, nothrow, align_val_t, sized and their
// combinations), both by explicit calls and through new-expressions (over-
// aligned types, sized delete, nothrow new whose constructor throws), checks
// alignment and contents of every block, and checks the failure paths:
// operator new of a huge size throws std::bad_alloc (after calling the
// new_handler), nothrow new of a huge size returns nullptr.
//
// Run with and without LD_PRELOAD; the outputs must be identical.  Build with
// -fsized-deallocation -faligned-new (and -fno-allocation-dce where the
// compiler supports it, so no new/delete pair is optimised away).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

int failures;

void check(bool ok, const char *label, const char *expect, const char *detail = "")
{
    if (ok) {
        std::printf("%s: %s\n", label, expect);
    } else {
        std::printf("%s: %s: FAIL %s\n", label, expect, detail);
        failures++;
    }
    std::fflush(stdout);
}

// Sizes are read through volatile objects so the compiler cannot reason
// about them.
volatile std::size_t v_huge62 = std::size_t(1) << 62;
volatile std::size_t v_huge63 = std::size_t(1) << 63;

unsigned char pat(std::size_t i, unsigned seed)
{
    return static_cast<unsigned char>((i * 151u) ^ (i >> 10) ^ (seed * 97u) ^ 0x3c);
}

void fill(void *p, std::size_t n, unsigned seed)
{
    auto *c = static_cast<unsigned char *>(p);
    for (std::size_t i = 0; i < n; i++)
        c[i] = pat(i, seed);
}

bool verify(const void *p, std::size_t n, unsigned seed)
{
    auto *c = static_cast<const unsigned char *>(p);
    for (std::size_t i = 0; i < n; i++)
        if (c[i] != pat(i, seed))
            return false;
    return true;
}

bool aligned_to(const void *p, std::size_t a)
{
    return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

// Alignment the standard guarantees for operator new(n) without align_val_t:
// that of any object of size n without new-extended alignment.
std::size_t default_alignment_for(std::size_t n)
{
    std::size_t a = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
    while (a > 1 && a > n)
        a >>= 1;
    return a;
}

const std::size_t kSizes[] = {1, 7, 16, 100, 1000, 4096, 40000, 300000, 5u << 20};
constexpr int kNumSizes = sizeof kSizes / sizeof kSizes[0];

enum class Del { Plain, Sized, Nothrow };

// Allocates one block of each size with `alloc`, fills them all, verifies
// them all (so overlapping blocks are detected), and releases them with
// `dealloc`.
template <class Alloc, class Dealloc>
void run_form(const char *label, std::size_t align, Alloc alloc, Dealloc dealloc)
{
    void *blocks[kNumSizes];
    bool ok = true;
    char detail[128] = "";
    for (int i = 0; i < kNumSizes; i++) {
        blocks[i] = alloc(kSizes[i]);
        std::size_t need = align ? align : default_alignment_for(kSizes[i]);
        if (!blocks[i] || !aligned_to(blocks[i], need)) {
            ok = false;
            std::snprintf(detail, sizeof detail, "size=%zu p=%p need align=%zu", kSizes[i],
                          blocks[i], need);
        } else {
            fill(blocks[i], kSizes[i], static_cast<unsigned>(i));
        }
    }
    for (int i = 0; i < kNumSizes; i++) {
        if (blocks[i] && !verify(blocks[i], kSizes[i], static_cast<unsigned>(i))) {
            ok = false;
            std::snprintf(detail, sizeof detail, "size=%zu contents damaged", kSizes[i]);
        }
    }
    for (int i = 0; i < kNumSizes; i++)
        if (blocks[i])
            dealloc(blocks[i], kSizes[i]);
    check(ok, label, "aligned, contents intact", detail);
}

void explicit_forms()
{
    run_form("_Znwm + _ZdlPv", 0, [](std::size_t n) { return ::operator new(n); },
             [](void *p, std::size_t) { ::operator delete(p); });
    run_form("_Znwm + _ZdlPvm", 0, [](std::size_t n) { return ::operator new(n); },
             [](void *p, std::size_t n) { ::operator delete(p, n); });
    run_form("_Znam + _ZdaPv", 0, [](std::size_t n) { return ::operator new[](n); },
             [](void *p, std::size_t) { ::operator delete[](p); });
    run_form("_Znam + _ZdaPvm", 0, [](std::size_t n) { return ::operator new[](n); },
             [](void *p, std::size_t n) { ::operator delete[](p, n); });
    run_form("_ZnwmRKSt9nothrow_t + _ZdlPvRKSt9nothrow_t", 0,
             [](std::size_t n) { return ::operator new(n, std::nothrow); },
             [](void *p, std::size_t) { ::operator delete(p, std::nothrow); });
    run_form("_ZnamRKSt9nothrow_t + _ZdaPvRKSt9nothrow_t", 0,
             [](std::size_t n) { return ::operator new[](n, std::nothrow); },
             [](void *p, std::size_t) { ::operator delete[](p, std::nothrow); });

    for (int k = 0; k <= 20; k++) {
        const std::size_t a = std::size_t(1) << k;
        const std::align_val_t al{a};
        char label[128];
        std::snprintf(label, sizeof label, "_ZnwmSt11align_val_t + _ZdlPvSt11align_val_t (2^%d)", k);
        run_form(label, a, [al](std::size_t n) { return ::operator new(n, al); },
                 [al](void *p, std::size_t) { ::operator delete(p, al); });
        std::snprintf(label, sizeof label, "_ZnwmSt11align_val_t + _ZdlPvmSt11align_val_t (2^%d)", k);
        run_form(label, a, [al](std::size_t n) { return ::operator new(n, al); },
                 [al](void *p, std::size_t n) { ::operator delete(p, n, al); });
        std::snprintf(label, sizeof label, "_ZnamSt11align_val_t + _ZdaPvSt11align_val_t (2^%d)", k);
        run_form(label, a, [al](std::size_t n) { return ::operator new[](n, al); },
                 [al](void *p, std::size_t) { ::operator delete[](p, al); });
        std::snprintf(label, sizeof label, "_ZnamSt11align_val_t + _ZdaPvmSt11align_val_t (2^%d)", k);
        run_form(label, a, [al](std::size_t n) { return ::operator new[](n, al); },
                 [al](void *p, std::size_t n) { ::operator delete[](p, n, al); });
        std::snprintf(label, sizeof label,
                      "_ZnwmSt11align_val_tRKSt9nothrow_t + _ZdlPvSt11align_val_tRKSt9nothrow_t (2^%d)",
                      k);
        run_form(label, a, [al](std::size_t n) { return ::operator new(n, al, std::nothrow); },
                 [al](void *p, std::size_t) { ::operator delete(p, al, std::nothrow); });
        std::snprintf(label, sizeof label,
                      "_ZnamSt11align_val_tRKSt9nothrow_t + _ZdaPvSt11align_val_tRKSt9nothrow_t (2^%d)",
                      k);
        run_form(label, a, [al](std::size_t n) { return ::operator new[](n, al, std::nothrow); },
                 [al](void *p, std::size_t) { ::operator delete[](p, al, std::nothrow); });
    }

    void *z1 = ::operator new(0), *z2 = ::operator new(0);
    void *z3 = ::operator new[](0), *z4 = ::operator new(0, std::align_val_t{64});
    check(z1 && z2 && z3 && z4 && z1 != z2 && z1 != z3 && z2 != z3 && aligned_to(z4, 64),
          "operator new(0) forms", "non-null, unique");
    ::operator delete(z1);
    ::operator delete(z2, std::size_t(0));
    ::operator delete[](z3);
    ::operator delete(z4, std::align_val_t{64});

    // Deleting a null pointer is a no-op for every form.
    ::operator delete(nullptr);
    ::operator delete[](nullptr);
    ::operator delete(nullptr, std::nothrow);
    ::operator delete[](nullptr, std::nothrow);
    ::operator delete(nullptr, std::align_val_t{64});
    ::operator delete[](nullptr, std::align_val_t{64});
    ::operator delete(nullptr, std::align_val_t{64}, std::nothrow);
    ::operator delete[](nullptr, std::align_val_t{64}, std::nothrow);
    check(true, "operator delete(nullptr) forms", "no-op");
}

// ---- new-expressions ----------------------------------------------------

int live_objects;

struct Plain {
    unsigned v[5];
    explicit Plain(unsigned s = 1) { for (unsigned i = 0; i < 5; i++) v[i] = s * 7 + i; live_objects++; }
    ~Plain() { live_objects--; }
    bool ok(unsigned s) const { for (unsigned i = 0; i < 5; i++) if (v[i] != s * 7 + i) return false; return true; }
};

template <std::size_t A>
struct alignas(A) Over {
    unsigned char bytes[A + 8];
    explicit Over(unsigned s = 2) { fill(bytes, sizeof bytes, s); live_objects++; }
    ~Over() { live_objects--; }
    bool ok(unsigned s) const { return verify(bytes, sizeof bytes, s); }
};

template <std::size_t A>
struct alignas(A) OverTrivial {
    unsigned char bytes[A];
};

struct Thrower {
    int x[4];
    Thrower() { throw 42; }
};

struct alignas(128) AlignedThrower {
    int x[4];
    AlignedThrower() { throw 43; }
};

template <std::size_t A>
void over_aligned_exprs(const char *name)
{
    char label[128];
    bool ok = true;
    // new T -> _ZnwmSt11align_val_t; delete -> _ZdlPvmSt11align_val_t
    std::vector<Over<A> *> objs;
    for (unsigned i = 0; i < 16; i++) {
        objs.push_back(new Over<A>(i));
        if (!aligned_to(objs.back(), A))
            ok = false;
    }
    for (unsigned i = 0; i < 16; i++) {
        if (!objs[i]->ok(i))
            ok = false;
        delete objs[i];
    }
    std::snprintf(label, sizeof label, "new/delete %s (single)", name);
    check(ok, label, "aligned, contents intact");

    // new T[n] with a destructor -> _ZnamSt11align_val_t + _ZdaPvmSt11align_val_t
    ok = true;
    Over<A> *arr = new Over<A>[5];
    for (unsigned i = 0; i < 5; i++)
        if (!aligned_to(&arr[i], A) || !arr[i].ok(2))
            ok = false;
    delete[] arr;
    std::snprintf(label, sizeof label, "new[]/delete[] %s (with destructor)", name);
    check(ok, label, "aligned, contents intact");

    // trivially destructible array -> _ZnamSt11align_val_t + _ZdaPvSt11align_val_t
    ok = true;
    auto *tarr = new OverTrivial<A>[7];
    for (unsigned i = 0; i < 7; i++) {
        if (!aligned_to(&tarr[i], A))
            ok = false;
        fill(tarr[i].bytes, A, i);
    }
    for (unsigned i = 0; i < 7; i++)
        if (!verify(tarr[i].bytes, A, i))
            ok = false;
    delete[] tarr;
    std::snprintf(label, sizeof label, "new[]/delete[] %s (trivial)", name);
    check(ok, label, "aligned, contents intact");

    // nothrow forms -> _ZnwmSt11align_val_tRKSt9nothrow_t / _ZnamSt11align_val_tRKSt9nothrow_t
    ok = true;
    auto *n1 = new (std::nothrow) Over<A>(9);
    auto *n2 = new (std::nothrow) Over<A>[3];
    if (!n1 || !n2 || !aligned_to(n1, A) || !aligned_to(n2, A) || !n1->ok(9) || !n2[2].ok(2))
        ok = false;
    delete n1;
    delete[] n2;
    std::snprintf(label, sizeof label, "nothrow new/new[] %s", name);
    check(ok, label, "aligned, contents intact");
}

void expression_forms()
{
    bool ok = true;
    std::vector<Plain *> v;
    for (unsigned i = 0; i < 1000; i++)
        v.push_back(new Plain(i)); // _Znwm
    for (unsigned i = 0; i < 1000; i++) {
        if (!v[i]->ok(i) || !aligned_to(v[i], alignof(Plain)))
            ok = false;
        delete v[i]; // _ZdlPvm (sized deallocation)
    }
    check(ok, "new/delete Plain x1000", "contents intact");

    ok = true;
    Plain *pa = new Plain[33]; // _Znam (with cookie)
    for (unsigned i = 0; i < 33; i++)
        if (!pa[i].ok(1))
            ok = false;
    delete[] pa; // _ZdaPvm
    int *ia = new int[1000]; // _Znam (no cookie)
    for (int i = 0; i < 1000; i++)
        ia[i] = i * 3;
    for (int i = 0; i < 1000; i++)
        if (ia[i] != i * 3)
            ok = false;
    delete[] ia; // _ZdaPv
    check(ok && live_objects == 0, "new[]/delete[] Plain and int", "contents intact, all destroyed");

    over_aligned_exprs<32>("alignas(32)");
    over_aligned_exprs<64>("alignas(64)");
    over_aligned_exprs<256>("alignas(256)");
    over_aligned_exprs<4096>("alignas(4096)");
    over_aligned_exprs<65536>("alignas(65536)");
    check(live_objects == 0, "over-aligned objects", "all destroyed");

    // A nothrow new-expression whose constructor throws releases the memory
    // through the matching nothrow operator delete.
    int caught = 0;
    for (int i = 0; i < 100; i++) {
        try { (void)new (std::nothrow) Thrower; } catch (int) { caught++; }          // _ZdlPvRKSt9nothrow_t
        try { (void)new (std::nothrow) Thrower[3]; } catch (int) { caught++; }       // _ZdaPvRKSt9nothrow_t
        try { (void)new (std::nothrow) AlignedThrower; } catch (int) { caught++; }   // _ZdlPvSt11align_val_tRKSt9nothrow_t
        try { (void)new (std::nothrow) AlignedThrower[3]; } catch (int) { caught++; } // _ZdaPvSt11align_val_tRKSt9nothrow_t
        try { (void)new Thrower; } catch (int) { caught++; }                         // _ZdlPv[m]
        try { (void)new AlignedThrower; } catch (int) { caught++; }                  // _ZdlPv[m]St11align_val_t
    }
    check(caught == 600, "constructor throws in new-expression", "memory released, exception propagates");

    // Standard library containers.
    ok = true;
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 20000; i++) {
        std::string key = "key-" + std::to_string(i * 7919 % 20000) + std::string(i % 50, 'x');
        m[key].push_back(i);
    }
    std::size_t total = 0;
    for (auto &kv : m)
        total += kv.second.size() + kv.first.size();
    auto sp = std::make_shared<Over<64>>(5);
    auto up = std::make_unique<Over<4096>[]>(3);
    if (total == 0 || !aligned_to(sp.get(), 64) || !sp->ok(5) || !aligned_to(up.get(), 4096) ||
        !up[1].ok(2))
        ok = false;
    check(ok, "std::map/string/vector/shared_ptr/unique_ptr", "work");
}

// ---- failure paths -------------------------------------------------------

int handler_calls;

void one_shot_handler()
{
    handler_calls++;
    std::set_new_handler(nullptr); // the next failure throws
}

// A new_handler may also report failure by throwing std::bad_alloc; the
// nothrow forms must then return nullptr, not let the exception escape.
void throwing_handler()
{
    handler_calls++;
    throw std::bad_alloc();
}

// Returns true if alloc() throws std::bad_alloc; on (unexpected) success the
// block is released with dealloc().
template <class F, class D>
bool throws_bad_alloc(F alloc, D dealloc)
{
    try {
        void *p = alloc();
        dealloc(p);
        return false;
    } catch (const std::bad_alloc &) {
        return true;
    }
}

void failure_paths()
{
    const std::size_t huge[] = {v_huge62, v_huge63};
    const char *names[] = {"2^62", "2^63"};
    for (int h = 0; h < 2; h++) {
        const std::size_t n = huge[h];
        char label[128];
        std::snprintf(label, sizeof label, "operator new(%s)", names[h]);
        bool t = throws_bad_alloc([n] { return ::operator new(n); },
                                  [](void *q) { ::operator delete(q); });
        check(t, label, "throws std::bad_alloc");
        std::printf("caught std::bad_alloc: %s\n", t ? "yes" : "no");

        std::snprintf(label, sizeof label, "operator new[](%s)", names[h]);
        check(throws_bad_alloc([n] { return ::operator new[](n); },
                               [](void *q) { ::operator delete[](q); }),
              label, "throws std::bad_alloc");
        std::snprintf(label, sizeof label, "operator new(%s, align 64)", names[h]);
        check(throws_bad_alloc([n] { return ::operator new(n, std::align_val_t{64}); },
                               [](void *q) { ::operator delete(q, std::align_val_t{64}); }),
              label,
              "throws std::bad_alloc");
        std::snprintf(label, sizeof label, "operator new[](%s, align 4096)", names[h]);
        check(throws_bad_alloc([n] { return ::operator new[](n, std::align_val_t{4096}); },
                               [](void *q) { ::operator delete[](q, std::align_val_t{4096}); }),
              label,
              "throws std::bad_alloc");

        std::snprintf(label, sizeof label, "new char[%s]", names[h]);
        bool threw = false;
        try {
            char *c = new char[n];
            delete[] c;
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        check(threw, label, "throws std::bad_alloc");

        void *p1 = ::operator new(n, std::nothrow);
        void *p2 = ::operator new[](n, std::nothrow);
        void *p3 = ::operator new(n, std::align_val_t{64}, std::nothrow);
        void *p4 = ::operator new[](n, std::align_val_t{64}, std::nothrow);
        std::snprintf(label, sizeof label, "nothrow operator new/new[] (%s, plain and aligned)",
                      names[h]);
        check(!p1 && !p2 && !p3 && !p4, label, "nullptr");
        char *c = new (std::nothrow) char[n];
        std::snprintf(label, sizeof label, "new (std::nothrow) char[%s]", names[h]);
        check(c == nullptr, label, "nullptr");
        delete[] c;
    }

    // The new_handler is called on failure; once it removes itself the
    // throwing form throws and the nothrow form returns nullptr.
    const std::size_t n = v_huge62;
    char detail[96];
    handler_calls = 0;
    std::set_new_handler(one_shot_handler);
    bool t = throws_bad_alloc([n] { return ::operator new(n); },
                              [](void *q) { ::operator delete(q); });
    std::snprintf(detail, sizeof detail, "handler called %d times, %s", handler_calls,
                  t ? "threw std::bad_alloc" : "did not throw");
    check(t && handler_calls == 1, "operator new(huge) with new_handler",
          "handler called once, then std::bad_alloc", detail);
    handler_calls = 0;
    std::set_new_handler(one_shot_handler);
    t = throws_bad_alloc([n] { return ::operator new(n, std::align_val_t{256}); },
                         [](void *q) { ::operator delete(q, std::align_val_t{256}); });
    std::snprintf(detail, sizeof detail, "handler called %d times, %s", handler_calls,
                  t ? "threw std::bad_alloc" : "did not throw");
    check(t && handler_calls == 1, "operator new(huge, align 256) with new_handler",
          "handler called once, then std::bad_alloc", detail);
    handler_calls = 0;
    std::set_new_handler(one_shot_handler);
    void *p = ::operator new(n, std::nothrow);
    std::snprintf(detail, sizeof detail, "handler called %d times, returned %p", handler_calls, p);
    check(!p && handler_calls == 1, "nothrow operator new(huge) with new_handler",
          "handler called once, then nullptr", detail);

    for (int form = 0; form < 4; form++) {
        static const char *const labels[] = {
            "nothrow operator new(huge) with a throwing new_handler",
            "nothrow operator new[](huge) with a throwing new_handler",
            "nothrow operator new(huge, align 64) with a throwing new_handler",
            "nothrow operator new[](huge, align 64) with a throwing new_handler",
        };
        handler_calls = 0;
        std::set_new_handler(throwing_handler);
        bool escaped = false;
        void *q = nullptr;
        try {
            switch (form) {
            case 0: q = ::operator new(n, std::nothrow); break;
            case 1: q = ::operator new[](n, std::nothrow); break;
            case 2: q = ::operator new(n, std::align_val_t{64}, std::nothrow); break;
            default: q = ::operator new[](n, std::align_val_t{64}, std::nothrow); break;
            }
        } catch (const std::bad_alloc &) {
            escaped = true;
        }
        std::set_new_handler(nullptr);
        std::snprintf(detail, sizeof detail, "handler called %d times, %s", handler_calls,
                      escaped ? "std::bad_alloc escaped" : q ? "returned non-null" : "returned nullptr");
        check(!escaped && !q && handler_calls == 1, labels[form],
              "handler called once, nullptr, no exception", detail);
    }
}

} // namespace

int main()
{
    explicit_forms();
    expression_forms();
    failure_paths();
    std::printf("cxx_forms: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
