/* SPDX-License-Identifier: MIT */
/* PRIVATE: time zones as Node's luxon resolves them, read from the IANA
 * database on the machine (TZif files under /usr/share/zoneinfo). */
#ifndef BULLC_TZ_H
#define BULLC_TZ_H

#include <stdint.h>

#include <bullc/common.h>

typedef struct bullc__tz bullc__tz;

/* Resolves a zone name as luxon's normalizeZone does: NULL, "default",
 * "local" and "system" are the process's zone (TZ, else /etc/localtime);
 * "utc", "gmt" and "utc+H[:MM]" fixed offsets (any case); anything else an
 * IANA name or an alias Node's ICU accepts, in any case. 0, BULLC_EINVAL
 * (unknown zone), BULLC_ENOMEM or BULLC_ESYS. Any thread. */
int bullc__tz_open(bullc__tz **out, const char *name, bullc_error *err);
void bullc__tz_free(bullc__tz *tz);

/* The zone's offset from UTC in seconds (east positive) at instant `ms`. */
int32_t bullc__tz_offset(const bullc__tz *tz, int64_t ms);

/* Proleptic Gregorian calendar helpers shared with cron.c. */
int64_t bullc__days_from_civil(int64_t y, int64_t m, int64_t d);
void bullc__civil_from_days(int64_t z, int64_t *y, int *m, int *d);

#endif
