/* SPDX-License-Identifier: MIT */
/* Cron expressions as Node BullMQ 6.7.0 reads them (cron-parser 5.10.3 over
 * luxon): the same fire times, the same expressions accepted, in any IANA
 * time zone Node accepts. See docs/schedulers.md, "Cron expressions and time
 * zones". */
#ifndef BULLC_CRON_H
#define BULLC_CRON_H

#include <stdint.h>
#include <bullc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The first fire time of `pattern` strictly after `from_ms` (epoch ms), as
 * `CronExpressionParser.parse(pattern, {currentDate: new Date(from_ms), tz})
 * .next()` gives it, into *next_ms. `tz` is an IANA zone name (any case, the
 * aliases Node accepts, "UTC", "UTC+5:30", "local"), or NULL for the zone Node
 * would use without one: the TZ environment variable, else /etc/localtime
 * (read, never set). Patterns using `H` draw their value at random, as Node
 * does without a hashSeed (bullc_cron_new takes a seed).
 * Returns 0; BULLC_EINVAL for an invalid pattern or zone (the message says
 * why, in cron-parser's words where it has them); BULLC_ENOTFOUND when
 * cron-parser would give up (no fire time within its search limit);
 * BULLC_ENOMEM; BULLC_ESYS when the zone's file cannot be read.
 * Thread-safe: it keeps no state and never changes TZ or the locale. */
BULLC_EXPORT int bullc_cron_next(const char *pattern, const char *tz, int64_t from_ms, int64_t *next_ms,
                                 bullc_error *err);

/* A parsed expression with its zone, for computing many fire times without
 * parsing again. Opaque; one thread at a time. */
typedef struct bullc_cron bullc_cron;

/* Parses `pattern` for zone `tz` (as bullc_cron_next) into *out, positioned at
 * the epoch (set a start with bullc_cron_reset). `hash_seed` seeds `H` values
 * as cron-parser's hashSeed option does (NULL: a random seed, as Node without
 * one). The strings are copied. Errors as bullc_cron_next; *out is set only on
 * success. Free with bullc_cron_free. */
BULLC_EXPORT int bullc_cron_new(bullc_cron **out, const char *pattern, const char *tz, const char *hash_seed,
                                bullc_error *err);

/* Frees the expression. NULL is a no-op. */
BULLC_EXPORT void bullc_cron_free(bullc_cron *cron);

/* Sets the current instant (cron-parser's `reset(new Date(from_ms))`): the
 * next bullc_cron_next_time starts after it. */
BULLC_EXPORT void bullc_cron_reset(bullc_cron *cron, int64_t from_ms);

/* The next fire time after the current instant, into *next_ms, which becomes
 * the current instant (cron-parser's successive `next()` calls, including its
 * memory of a DST change met on the way). 0, or BULLC_ENOTFOUND (the current
 * instant is left unchanged) with a message in `err`. */
BULLC_EXPORT int bullc_cron_next_time(bullc_cron *cron, int64_t *next_ms, bullc_error *err);

#ifdef __cplusplus
}
#endif

#endif
