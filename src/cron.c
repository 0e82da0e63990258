/* SPDX-License-Identifier: MIT */
/* The search for a cron expression's next fire time, step for step as
 * cron-parser 5.10.3's CronExpression.next() does it over luxon 3.7: a luxon
 * DateTime is an instant plus a zone, its calendar fields are the instant
 * shifted by the zone's offset at that instant, and setting a field goes
 * through luxon's fixOffset (which decides where a wall-clock time that a DST
 * change skipped or repeated lands). The DST flags cron-parser keeps on its
 * CronDate, its per-day DST check and its 10,000-step limit are kept too, so
 * that the fire times are identical, not merely plausible. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"
#include "cron_impl.h"
#include "tz.h"

#define LOOP_LIMIT 10000
#define MAX_DATE_MS 8640000000000000LL

/* luxon's DateTime (instant and local fields) plus CronDate's DST memory. */
typedef struct {
    int64_t ts;
    int32_t off; /* seconds */
    int64_t y;
    int mo, d, h, mi, s, ms;
    int dst_start, dst_landing, dst_end; /* -1: null */
} cdate;

struct bullc_cron {
    bullc__cron_fields cf;
    bullc__tz *tz;
    cdate cur;
    /* CronExpression's per-day DST cache */
    int64_t dst_key;
    int dst_day;
};

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static void cd_load(const bullc__tz *tz, cdate *c, int64_t ts) {
    c->ts = ts;
    c->off = bullc__tz_offset(tz, ts);
    int64_t local = ts + (int64_t)c->off * 1000;
    int64_t days = floordiv(local, 86400000);
    int64_t rem = local - days * 86400000;
    bullc__civil_from_days(days, &c->y, &c->mo, &c->d);
    c->h = (int)(rem / 3600000);
    c->mi = (int)(rem / 60000 % 60);
    c->s = (int)(rem / 1000 % 60);
    c->ms = (int)(rem % 1000);
}

/* Date.UTC over possibly overflowing fields (each truncated to an integer). */
static int64_t local_ms(int64_t y, int64_t mo, int64_t d, double h, double mi, double s, double ms) {
    return bullc__days_from_civil(y, mo, d) * 86400000 + (int64_t)trunc(h) * 3600000 + (int64_t)trunc(mi) * 60000 +
           (int64_t)trunc(s) * 1000 + (int64_t)trunc(ms);
}

/* luxon's fixOffset: the instant of a wall-clock time, guessing offset o first
 * (which picks the earlier or later of a repeated hour, and where a skipped
 * one lands). Offsets in seconds. */
static int64_t fix_offset(const bullc__tz *tz, int64_t local, int32_t o) {
    int64_t utc = local - (int64_t)o * 1000;
    int32_t o2 = bullc__tz_offset(tz, utc);
    if (o == o2) return utc;
    utc -= (int64_t)(o2 - o) * 1000;
    int32_t o3 = bullc__tz_offset(tz, utc);
    if (o2 == o3) return utc;
    return local - (int64_t)(o2 < o3 ? o2 : o3) * 1000;
}

/* DateTime.set with the given fields (the others kept). */
static void cd_set(const bullc__tz *tz, cdate *c, double h, double mi, double s, double ms) {
    cd_load(tz, c, fix_offset(tz, local_ms(c->y, c->mo, c->d, h, mi, s, ms), c->off));
}

static int days_in(int64_t y, int m) {
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return md[m - 1] + (m == 2 && leap);
}

/* plus({days: n}) / plus({months: 1}): calendar arithmetic, then fixOffset
 * with the offset before. */
static void cd_plus_days(const bullc__tz *tz, cdate *c, int n) {
    cd_load(tz, c, fix_offset(tz, local_ms(c->y, c->mo, c->d + n, c->h, c->mi, c->s, c->ms), c->off));
}

static void cd_plus_month(const bullc__tz *tz, cdate *c) {
    int64_t y = c->y + (c->mo == 12);
    int m = c->mo == 12 ? 1 : c->mo + 1;
    int d = c->d < days_in(y, m) ? c->d : days_in(y, m);
    cd_load(tz, c, fix_offset(tz, local_ms(y, m, d, c->h, c->mi, c->s, c->ms), c->off));
}

enum { U_SECOND, U_MINUTE, U_HOUR, U_DAY, U_MONTH };

/* CronDate.addUnit */
static void cd_add(const bullc__tz *tz, cdate *c, int unit) {
    switch (unit) {
    case U_MONTH:
        cd_plus_month(tz, c);
        c->d = 1;
        cd_set(tz, c, 0, 0, 0, 0);
        break;
    case U_DAY:
        cd_plus_days(tz, c, 1);
        cd_set(tz, c, 0, 0, 0, 0);
        break;
    case U_HOUR:
        cd_load(tz, c, c->ts + 3600000);
        cd_set(tz, c, c->h, 0, 0, 0);
        break;
    case U_MINUTE:
        cd_load(tz, c, c->ts + 60000);
        cd_set(tz, c, c->h, c->mi, 0, 0);
        break;
    default:
        cd_load(tz, c, c->ts + 1000);
        break;
    }
}

/* CronDate.applyDateOperation, forward: records a DST start or end crossed. */
static void cd_apply(const bullc__tz *tz, cdate *c, int unit, int hours_len) {
    if (unit == U_MONTH || unit == U_DAY) {
        cd_add(tz, c, unit);
        return;
    }
    int prev_h = c->h;
    int32_t prev_off = c->off;
    cd_add(tz, c, unit);
    int advance = (c->h - prev_h + 24) % 24;
    if (c->off > prev_off && advance >= 2) {
        if (hours_len != 24) {
            c->dst_start = (prev_h + 1) % 24;
            c->dst_landing = c->h;
        }
    } else if (advance == 0 && c->mi == 0 && c->s == 0) {
        if (hours_len != 24) c->dst_end = c->h;
    }
}

static int in_list(const bullc__cron_field *f, double v) {
    for (int i = 0; i < f->n; i++)
        if (f->v[i] == v) return 1;
    return 0;
}

static int nearest_after(const bullc__cron_field *f, double v, double *out) {
    for (int i = 0; i < f->n; i++)
        if (f->v[i] > v) return *out = f->v[i], 1;
    return 0;
}

static int weekday(const cdate *c) {
    int64_t days = bullc__days_from_civil(c->y, c->mo, c->d);
    return (int)(((days + 4) % 7 + 7) % 7);
}

static int match_day(const bullc_cron *cr, const cdate *c) {
    const bullc__cron_field *dom = &cr->cf.f[CRON_DOM], *dow = &cr->cf.f[CRON_DOW];
    int last_day = c->mo == 2 ? 28 + ((c->y % 4 == 0 && c->y % 100 != 0) || c->y % 400 == 0)
                              : bullc__cron_days_in_month[c->mo - 1];
    int wd = weekday(c);
    int m_dom = in_list(dom, c->d) || (dom->has_last && c->d == last_day);
    double nth = cr->cf.nth;
    int m_dow = (in_list(dow, wd) && (nth <= 0 || ceil(c->d / 7.0) == nth)) ||
                (dow->has_last && c->d > last_day - 7 && (dow->lmask >> wd & 1));
    if (!dom->wildcard && !dow->wildcard && (m_dom || m_dow)) return 1;
    if (m_dom && dow->wildcard) return 1;
    if (dom->wildcard && !dow->wildcard && m_dow) return 1;
    return 0;
}

/* CronExpression's DST-day check: does the offset at the start of this day
 * differ from the one at its end? Cached per calendar day. */
static int dst_day(bullc_cron *cr, const cdate *c) {
    int64_t key = (c->y * 100 + c->mo) * 100 + c->d;
    if (cr->dst_key == key) return cr->dst_day;
    cdate start = *c, end = *c;
    cd_set(cr->tz, &start, 0, 0, 0, 0);
    cd_plus_days(cr->tz, &end, 1);
    cd_set(cr->tz, &end, 0, 0, 0, 0);
    cd_load(cr->tz, &end, end.ts - 1);
    cr->dst_key = key;
    cr->dst_day = start.off != end.off;
    return cr->dst_day;
}

static int match_hour(bullc_cron *cr, cdate *c) {
    const bullc__cron_field *hf = &cr->cf.f[CRON_HOUR];
    int hl = hf->n, h = c->h;
    int is_match = in_list(hf, h);
    if (c->dst_start >= 0 && c->dst_landing == h)
        for (int sk = c->dst_start; sk != h; sk = (sk + 1) % 24)
            if (in_list(hf, sk)) return 1;
    if (c->dst_end == h) {
        c->dst_end = -1;
        cd_apply(cr->tz, c, U_HOUR, hl);
        return 0;
    }
    if (is_match) return 1;
    c->dst_start = c->dst_landing = -1;
    double next;
    if (!nearest_after(hf, h, &next)) {
        cd_apply(cr->tz, c, U_DAY, hl);
        return 0;
    }
    if (dst_day(cr, c)) {
        double steps = next - h;
        for (int i = 0; i < steps; i++) {
            cd_apply(cr->tz, c, U_HOUR, hl);
            if (c->h >= next) break;
        }
    } else {
        cd_set(cr->tz, c, next, c->mi, c->s, c->ms);
    }
    cd_set(cr->tz, c, c->h, cr->cf.f[CRON_MINUTE].v[0], c->s, c->ms);
    cd_set(cr->tz, c, c->h, c->mi, cr->cf.f[CRON_SECOND].v[0], c->ms);
    return 0;
}

static int find_next(bullc_cron *cr, bullc_error *err) {
    const bullc__cron_fields *cf = &cr->cf;
    const bullc__tz *tz = cr->tz;
    int hl = cf->f[CRON_HOUR].n;
    cdate c = cr->cur;
    int64_t start = c.ts;
    if (c.ms > 0) {
        cd_set(tz, &c, c.h, c.mi, c.s, 0);
        cd_apply(tz, &c, U_SECOND, hl);
    }
    int steps = 0;
    while (++steps < LOOP_LIMIT) {
        if (c.ts > MAX_DATE_MS || c.ts < -MAX_DATE_MS) break;
        if (!in_list(&cf->f[CRON_MONTH], c.mo)) {
            cd_apply(tz, &c, U_MONTH, hl);
            continue;
        }
        if (!match_day(cr, &c)) {
            cd_apply(tz, &c, U_DAY, hl);
            continue;
        }
        if (!match_hour(cr, &c)) continue;
        double next;
        if (!in_list(&cf->f[CRON_MINUTE], c.mi)) {
            if (nearest_after(&cf->f[CRON_MINUTE], c.mi, &next)) {
                cd_set(tz, &c, c.h, next, c.s, c.ms);
                cd_set(tz, &c, c.h, c.mi, cf->f[CRON_SECOND].v[0], c.ms);
            } else {
                cd_apply(tz, &c, U_HOUR, hl);
                cd_set(tz, &c, c.h, cf->f[CRON_MINUTE].v[0], c.s, c.ms);
                cd_set(tz, &c, c.h, c.mi, cf->f[CRON_SECOND].v[0], c.ms);
            }
            continue;
        }
        if (!in_list(&cf->f[CRON_SECOND], c.s)) {
            if (nearest_after(&cf->f[CRON_SECOND], c.s, &next)) {
                cd_set(tz, &c, c.h, c.mi, next, c.ms);
            } else {
                cd_apply(tz, &c, U_MINUTE, hl);
                cd_set(tz, &c, c.h, c.mi, cf->f[CRON_SECOND].v[0], c.ms);
            }
            continue;
        }
        if (start == c.ts) {
            cd_apply(tz, &c, U_SECOND, hl);
            continue;
        }
        cr->cur = c;
        return 0;
    }
    return bullc__err(err, BULLC_ENOTFOUND, "Invalid expression, loop limit exceeded");
}

int bullc_cron_new(bullc_cron **out, const char *pattern, const char *tz, const char *hash_seed, bullc_error *err) {
    if (!out || !pattern) return bullc__err(err, BULLC_EINVAL, "a pattern is required");
    bullc_cron *cr = calloc(1, sizeof *cr);
    if (!cr) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__cron_parse(&cr->cf, pattern, hash_seed, err);
    if (rc == 0) rc = bullc__tz_open(&cr->tz, tz, err);
    if (rc < 0) {
        free(cr);
        return rc;
    }
    cr->dst_key = -1;
    bullc_cron_reset(cr, 0);
    *out = cr;
    return 0;
}

void bullc_cron_free(bullc_cron *cron) {
    if (!cron) return;
    bullc__tz_free(cron->tz);
    free(cron);
}

void bullc_cron_reset(bullc_cron *cron, int64_t from_ms) {
    cd_load(cron->tz, &cron->cur, from_ms);
    cron->cur.dst_start = cron->cur.dst_landing = cron->cur.dst_end = -1;
}

int bullc_cron_next_time(bullc_cron *cron, int64_t *next_ms, bullc_error *err) {
    int rc = find_next(cron, err);
    if (rc == 0) *next_ms = cron->cur.ts;
    return rc;
}

int bullc_cron_next(const char *pattern, const char *tz, int64_t from_ms, int64_t *next_ms, bullc_error *err) {
    if (!next_ms) return bullc__err(err, BULLC_EINVAL, "next_ms is required");
    if (from_ms > MAX_DATE_MS || from_ms < -MAX_DATE_MS)
        return bullc__err(err, BULLC_EINVAL, "CronDate: unhandled timestamp: %lld", (long long)from_ms);
    bullc_cron *cr;
    int rc = bullc_cron_new(&cr, pattern, tz, NULL, err);
    if (rc < 0) return rc;
    bullc_cron_reset(cr, from_ms);
    rc = bullc_cron_next_time(cr, next_ms, err);
    bullc_cron_free(cr);
    return rc;
}
