/* exit_order.cpp - allocation in every kind of exit-time code, with
 * poolmalloc's exit report on (POOLMALLOC_STATS=1).
 *
 * main() leaves one checksummed block for each phase below; each phase
 * allocates, reallocs and frees blocks of several sizes (pool and jemalloc
 * sizes, new[]/delete[]), checks and reallocs and frees its block, and
 * prints "exit_order: <phase>: ok" (stdout) and "MARK <phase>" (stderr).
 * The phases: a worker thread's C++ thread_local destructor, and at exit
 * the main thread's thread_local destructor, a function-local static's and
 * a global static's destructors, atexit handlers registered early (in a
 * constructor) and late (in main), the program's destructor, a static
 * object's destructor in a dlopen()ed library; then, after poolmalloc's
 * own destructor has written the report: the destructors of a DT_NEEDED
 * library and of the dlopen()ed library, and an atexit handler registered
 * by the latter. run_exit_order.sh checks stdout and that order.
 *
 * usage: exit_order DLOPEN_LIBRARY */
#include "exit_order.h"
#include "hard.h"

#include <string>
#include <thread>
#include <vector>

namespace {
struct phase_obj {
  const char *name;
  explicit phase_obj(const char *n) : name(n) { eo_leave(n); }
  ~phase_obj() {
    std::string s(name);
    std::vector<std::string> v(50, s);
    eo_phase(v[49].c_str());
  }
};

struct tls_obj {
  std::string name;
  ~tls_obj() {
    if (!name.empty()) eo_phase(name.c_str());
  }
};
thread_local tls_obj tls;

phase_obj global_static("global static object destructor");

void atexit_first(void) {
  eo_phase("atexit handler registered first");
}
void atexit_in_main(void) {
  eo_phase("atexit handler registered in main");
}
} // namespace

__attribute__((constructor(101))) static void early_ctor(void) {
  atexit(atexit_first);
  eo_leave("atexit handler registered first");
}

__attribute__((destructor)) static void program_fini(void) {
  eo_phase("program destructor");
}

int main(int argc, char **argv) {
  hard_check_preload();
  hard_watchdog(40, "exit_order"); /* also covers the exit handlers */
  if (argc < 2) {
    printf("FAIL: usage: exit_order DLOPEN_LIBRARY\n");
    return 2;
  }
  void *h = dlopen(argv[1], RTLD_NOW);
  void (*init)(void) = h ? (void (*)(void))dlsym(h, "eo_dlopen_init") : nullptr;
  if (init == nullptr) {
    printf("FAIL: dlopen %s: %s\n", argv[1], dlerror());
    return 1;
  }
  init();

  eo_leave("worker thread_local destructor");
  std::thread t([] { tls.name = "worker thread_local destructor"; });
  t.join();

  eo_leave("main thread_local destructor");
  tls.name = "main thread_local destructor";
  static phase_obj local_static("function-local static object destructor");
  eo_leave("program destructor");
  eo_leave("needed-lib destructor");
  eo_leave("atexit handler registered in main");
  atexit(atexit_in_main);
  printf("exit_order: main: ok\n");
  return 0;
}
