/* exit_order.h - shared by exit_order.cpp and its two libraries. */
#ifndef EXIT_ORDER_H
#define EXIT_ORDER_H

#ifdef __cplusplus
extern "C" {
#endif

/* Allocates, reallocs and frees blocks of several sizes (checked), frees
 * the block main() left for this phase (checked), and prints
 * "exit_order: <phase>: ok" (or FAIL) on stdout and "MARK <phase>" on
 * stderr, unbuffered, so the driver sees where the phase ran relative to
 * poolmalloc's exit report. Defined in the needed library. */
void eo_phase(const char *phase);

/* main() leaves one checksummed block per phase name */
void eo_leave(const char *phase);

#ifdef __cplusplus
}
#endif

#endif
