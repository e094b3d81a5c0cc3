/* supervise.h - run a scenario in a child process and call a hang a hang
 * (header only, for the fork tests of issue 16).
 *
 * The scenario may deadlock inside fork(), or use SIGALRM itself, so the
 * watchdog is a parent process: hard_supervise() forks (before any thread
 * exists), runs the scenario in the child and waits for it at most `secs`.
 * A child still running then is killed with SIGKILL and reported as
 * "FAIL: ... hung" (exit status 2 of the program, so a loop script can count
 * hangs apart from other failures). */
#ifndef SUPERVISE_H
#define SUPERVISE_H

#include "hard.h"

enum { SUP_OK = 0, SUP_FAILED = 1, SUP_HUNG = 2 };

/* Runs fn(arg) in a child; returns SUP_OK, SUP_FAILED or SUP_HUNG. The
 * child's exit status is fn's result (0: pass). */
static inline int hard_supervise(int (*fn)(void *), void *arg, double secs,
                                 const char *what) {
  fflush(NULL);
  hard_block_sigchld();
  pid_t pid = fork();
  if (pid < 0) {
    printf("FAIL: %s: fork: %s\n", what, strerror(errno));
    return SUP_FAILED;
  }
  if (pid == 0) {
    hard_unblock_signals();
    int rc = fn(arg);
    fflush(NULL);
    _exit(rc);
  }
  int status = 0;
  pid_t w = hard_wait_bounded(pid, &status, secs);
  if (w == 0) {
    printf("FAIL: %s hung (still running after %.0f s, killed)\n", what, secs);
    return SUP_HUNG;
  }
  if (w != pid) {
    printf("FAIL: %s: waitpid: %s\n", what, strerror(errno));
    return SUP_FAILED;
  }
  if (WIFSIGNALED(status)) {
    printf("FAIL: %s killed by signal %d\n", what, WTERMSIG(status));
    return SUP_FAILED;
  }
  if (WEXITSTATUS(status) != 0) {
    printf("FAIL: %s exited with %d\n", what, WEXITSTATUS(status));
    return SUP_FAILED;
  }
  return SUP_OK;
}

/* waitpid that retries on EINTR (signal handlers fork here) */
static inline pid_t hard_waitpid(pid_t pid, int *status) {
  pid_t w;
  while ((w = waitpid(pid, status, 0)) < 0 && errno == EINTR) {
  }
  return w;
}

#endif
