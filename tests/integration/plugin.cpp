// dlopen test, plugin side: a C++ shared library loaded with dlopen() after
// startup.  plugin_run() allocates with new/new[]/aligned new and the
// standard containers and releases with (sized) delete, so its references
// to _Znwm, _ZdlPv... are bound when it is loaded; the test checks (with
// LD_DEBUG=bindings) that they bind to the preloaded allocator.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {

struct Node {
    Node *next;
    unsigned value;
    char pad[40];
};

struct alignas(64) Line {
    unsigned char bytes[64];
};

} // namespace

extern "C" __attribute__((visibility("default"))) int plugin_run(void)
{
    int errors = 0;

    // A linked list of single objects: new + sized delete.
    Node *head = nullptr;
    for (unsigned i = 0; i < 10000; i++) {
        Node *n = new Node;
        n->next = head;
        n->value = i;
        std::memset(n->pad, static_cast<int>(i & 0xff), sizeof n->pad);
        head = n;
    }
    unsigned expect = 9999;
    while (head) {
        Node *n = head;
        if (n->value != expect-- || n->pad[39] != static_cast<char>(n->value & 0xff))
            errors++;
        head = n->next;
        delete n;
    }

    // Arrays and over-aligned objects.
    for (unsigned i = 1; i < 200; i++) {
        int *a = new int[i * 13];
        for (unsigned j = 0; j < i * 13; j++)
            a[j] = static_cast<int>(j ^ i);
        for (unsigned j = 0; j < i * 13; j++)
            if (a[j] != static_cast<int>(j ^ i))
                errors++;
        delete[] a;
        Line *l = new Line[i % 7 + 1];
        if (reinterpret_cast<std::uintptr_t>(l) % 64)
            errors++;
        delete[] l;
        Line *s = new Line;
        if (reinterpret_cast<std::uintptr_t>(s) % 64)
            errors++;
        delete s;
    }

    // Plain, nothrow and explicit operator calls.
    void *p = ::operator new(1000);
    std::memset(p, 1, 1000);
    ::operator delete(p);
    p = ::operator new(1000, std::nothrow);
    if (!p)
        errors++;
    ::operator delete(p, std::nothrow);

    // Standard containers (their allocators use operator new/delete).
    std::vector<std::string> v;
    for (int i = 0; i < 5000; i++)
        v.push_back(std::string(static_cast<std::size_t>(i % 100 + 20), static_cast<char>('a' + i % 26)));
    std::size_t total = 0;
    for (const auto &s : v)
        total += s.size();
    if (total != 5000u * 20u + 50u * (99u * 100u / 2u))
        errors++;

    return errors;
}
