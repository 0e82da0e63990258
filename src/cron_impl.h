/* SPDX-License-Identifier: MIT */
/* PRIVATE: the parsed form of a cron expression, shared by cron_parse.c (the
 * parser) and cron.c (the search for fire times). */
#ifndef BULLC_CRON_IMPL_H
#define BULLC_CRON_IMPL_H

#include <bullc/common.h>

enum { CRON_SECOND, CRON_MINUTE, CRON_HOUR, CRON_DOM, CRON_MONTH, CRON_DOW };

typedef struct {
    double v[64]; /* the field's numbers, ascending (cron-parser's sorted values) */
    int n;
    int wildcard;   /* written as * or ? */
    int has_last;   /* an L in the field */
    unsigned lmask; /* dayOfWeek with L: the weekdays (first digit of each value, mod 7) */
} bullc__cron_field;

typedef struct {
    bullc__cron_field f[6];
    double nth; /* dayOfWeek's #n, 0 when none */
} bullc__cron_fields;

extern const int bullc__cron_days_in_month[12];

/* Parses as CronExpressionParser.parse does; `seed` is its hashSeed (NULL: a
 * random one). 0, BULLC_EINVAL with cron-parser's message, or BULLC_ENOMEM. */
int bullc__cron_parse(bullc__cron_fields *cf, const char *pattern, const char *seed, bullc_error *err);

#endif
