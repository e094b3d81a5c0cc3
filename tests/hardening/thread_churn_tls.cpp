/* thread_churn_tls.cpp - the C++ thread_local of thread_churn.c: its
 * destructor, run at thread exit, allocates and leaves a block. */
struct slot;
extern "C" void churn_tls_exit(void *s);
extern "C" void churn_tls_arm(struct slot *s);

namespace {
struct exit_hook {
  void *s = nullptr;
  ~exit_hook() {
    if (s != nullptr) churn_tls_exit(s);
  }
};
thread_local exit_hook hook;
} // namespace

void churn_tls_arm(struct slot *s) {
  hook.s = s;
}
