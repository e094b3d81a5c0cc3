/* profile.h - the heap profile's sections of the report (see profile.c). */
#ifndef PM_PROFILE_H
#define PM_PROFILE_H

#include "fmt.h"
#include "sample.h"
#include "stats.h"

/* the text report's profile: figures, top sites, RSS account */
void pm_profile_text(pm_buf *b, const pm_snapshot *s);
/* the JSON "profile" and "rss_account" objects (each followed by a comma);
 * scratch holds up to cap stacks (report.c maps it) */
void pm_profile_json(pm_buf *b, const pm_snapshot *s, pm_stack_info *scratch, size_t cap);

#endif
