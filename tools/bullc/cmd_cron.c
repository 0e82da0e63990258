/* SPDX-License-Identifier: MIT */
/* bullc cron next: the fire times of a cron expression as Node BullMQ
 * computes them (bullc_cron_*), to check a schedule before creating it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cli.h"

/* --from: epoch ms, or ISO 8601 as JavaScript's Date reads it with a zone
 * (YYYY-MM-DDTHH:MM[:SS[.mmm]] then Z or +HH:MM), or a date alone (UTC
 * midnight). A local time without a zone is refused: which zone would be a
 * guess. */
static int parse_from(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end != s && !*end) {
        if (errno || v > 8640000000000000LL || v < -8640000000000000LL) return -1;
        *out = v;
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return -1;
    const char *p = s + n;
    long off = 0;
    if (*p) {
        int k = 0;
        if (sscanf(p, "T%2d:%2d%n", &h, &mi, &k) != 2 || k != 6) return -1;
        p += k;
        if (*p == ':') {
            if (sscanf(p, ":%2d%n", &sec, &k) != 1 || k != 3) return -1;
            p += k;
            if (*p == '.') {
                if (sscanf(p, ".%3d%n", &ms, &k) != 1 || k != 4) return -1;
                p += k;
            }
        }
        if (*p == 'Z' && !p[1]) {
            off = 0;
        } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
            int oh, om;
            if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59) return -1;
            off = (*p == '-' ? -1 : 1) * (oh * 60L + om);
        } else {
            return -1;
        }
    }
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59) return -1;
    /* days from civil (proleptic Gregorian) */
    int yy = y - (mo <= 2);
    long era = (yy >= 0 ? yy : yy - 399) / 400;
    long yoe = yy - era * 400;
    long doy = (153L * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return -1;
    *out = ((int64_t)days * 86400 + h * 3600 + mi * 60 + sec - off * 60) * 1000 + ms;
    return 0;
}

int cmd_cron(cli *c) {
    cli_flag flags[] = {
        {"tz", true, NULL, 0}, {"from", true, NULL, 0}, {"count", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (rc) return rc;
    if (npos != 2 || strcmp(pos[0], "next") != 0) return cli_fail(EXIT_USAGE, "usage: bullc %s", c->verb->usage);
    long long count = 1;
    if (flags[2].set && (rc = cli_flag_i64(&flags[2], 1, 100000, &count))) return rc;
    int64_t from;
    if (flags[1].set) {
        if (parse_from(flags[1].value, &from) != 0)
            return cli_fail(EXIT_USAGE, "--from: '%s' is neither epoch milliseconds nor an ISO 8601 time with a zone",
                            flags[1].value);
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        from = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    }
    bullc_cron *cr;
    bullc_error err = {0};
    if ((rc = bullc_cron_new(&cr, pos[1], flags[0].value, NULL, &err)) != 0)
        return cli_fail(rc == BULLC_EINVAL ? EXIT_USAGE : EXIT_FAIL, "%s", err.message);
    bullc_cron_reset(cr, from);
    if (c->json) putchar('[');
    for (long long i = 0; i < count; i++) {
        int64_t t;
        if ((rc = bullc_cron_next_time(cr, &t, &err)) != 0) break;
        if (c->json)
            printf("%s%lld", i ? "," : "", (long long)t);
        else
            printf("%lld\n", (long long)t);
    }
    if (c->json) puts("]");
    bullc_cron_free(cr);
    if (rc) return cli_fail(EXIT_FAIL, "no fire time found after the last one printed (%s)", err.message);
    return 0;
}
