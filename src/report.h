/* report.h - the statistics report, as text or JSON.
 *
 * The report is formatted into a buffer mapped for the purpose (never
 * malloc, never stdio) and written with as few write(2) calls as fit. */
#ifndef PM_REPORT_H
#define PM_REPORT_H

#include "common.h"

enum { PM_REPORT_TEXT = 1, PM_REPORT_JSON = 2 };

/* Writes a report of the current state to fd. false if fd failed. */
bool pm_report_write_fd(int fd, int format);
/* Formats a report into buf (NUL-terminated); returns its length, or the
 * length it needs if cap is too small. */
size_t pm_report_format(char *buf, size_t cap, int format);
/* set in a fork child that has not exec'd: its counters include the parent's */
extern bool pm_forked_child;
/* Keeps a private copy of stderr for the report (the library constructor,
 * when POOLMALLOC_STATS is on). */
void pm_report_prepare(void);
/* Installs the handler of the POOLMALLOC_STATS_SIGNAL signal sig (0: none). */
void pm_report_install_signal(int sig);
/* Formats a report and hands it to fn in one call; -1 if no buffer. */
int pm_report_callback(void (*fn)(void *, const char *, size_t), void *arg, int format);
/* The exit report: where POOLMALLOC_STATS and POOLMALLOC_STATS_FILE say. */
void pm_report_at_exit(void);

#endif
