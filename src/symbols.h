/* symbols.h - names for the code addresses of the report's call stacks.
 *
 * The addresses a report will name are gathered first (pm_symbols_want),
 * then named module by module in one pass over each module's own symbol
 * table, read from its file (pm_symbols_resolve), and looked up while the
 * report is formatted (pm_symbols_get). Nothing here allocates or waits. */
#ifndef PM_SYMBOLS_H
#define PM_SYMBOLS_H

#include "common.h"

/* starts naming for one report: an empty table, held by this thread until
 * pm_symbols_end; false (and every call below a no-op, with no names) if
 * another report, or this thread's own interrupted one, holds it */
bool pm_symbols_begin(void);
void pm_symbols_end(void);
/* adds ip to the addresses to name; false if the table is full */
bool pm_symbols_want(uintptr_t ip);
/* names every wanted address that has no name yet */
void pm_symbols_resolve(void);
/* ip's symbol and its start address; false if ip has none (or was never
 * wanted) */
bool pm_symbols_get(uintptr_t ip, const char **name, uintptr_t *start);

#endif
