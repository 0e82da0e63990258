/* SPDX-License-Identifier: MIT */
/* Time zones for cron: the IANA database's TZif files read directly (not
 * ICU, not localtime_r): Debian's ICU carries its own, older tzdata copy,
 * while Node bundles a newer one, so the machine's files are the closer
 * match, and reading them needs neither TZ nor any process-wide state. Names
 * resolve as luxon + Node's ICU resolve them (docs/schedulers.md). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bullc-private.h"
#include "tz.h"

#define ZONEINFO "/usr/share/zoneinfo"

/* A POSIX TZ rule (a TZif footer): standard time, optionally daylight time
 * between two yearly dates. */
typedef struct {
    int kind; /* 'J': Jn (1..365, no Feb 29), 'D': n (0..365), 'M': Mm.w.d */
    int a, b, c;
    int32_t time; /* seconds after local midnight, may be negative or > 24 h */
} tz_date;

typedef struct {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    tz_date start, end;
} tz_rule;

struct bullc__tz {
    int fixed;
    int32_t fixed_off;
    size_t n_trans;
    int64_t *trans;     /* transition instants, seconds */
    int32_t *trans_off; /* the offset in effect from trans[i] */
    int32_t first_off;  /* before the first transition */
    int has_rule;
    tz_rule rule;
};

int64_t bullc__days_from_civil(int64_t y, int64_t m, int64_t d) {
    /* Normalise the month first so that month 13 or 0 roll the year, as
     * Date.UTC does. */
    int64_t my = (m - 1) >= 0 ? (m - 1) / 12 : -((12 - m) / 12);
    y += my;
    m -= my * 12;
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + 1 - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468 + (d - 1);
}

void bullc__civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* ---- POSIX TZ strings --------------------------------------------------- */

static const char *parse_name(const char *p) {
    if (*p == '<') {
        const char *q = strchr(p, '>');
        return q ? q + 1 : NULL;
    }
    const char *s = p;
    while (isalpha((unsigned char)*p)) p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] into seconds. */
static const char *parse_hms(const char *p, int32_t *out) {
    int sign = 1;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p)) return NULL;
    long h = strtol(p, (char **)&p, 10), m = 0, s = 0;
    if (*p == ':') {
        m = strtol(p + 1, (char **)&p, 10);
        if (*p == ':') s = strtol(p + 1, (char **)&p, 10);
    }
    if (h > 167 || m > 59 || s > 59) return NULL;
    *out = (int32_t)(sign * (h * 3600 + m * 60 + s));
    return p;
}

static const char *parse_date(const char *p, tz_date *d) {
    char *e;
    if (*p == 'M') {
        d->kind = 'M';
        d->a = (int)strtol(p + 1, &e, 10);
        if (*e != '.') return NULL;
        d->b = (int)strtol(e + 1, &e, 10);
        if (*e != '.') return NULL;
        d->c = (int)strtol(e + 1, &e, 10);
        if (d->a < 1 || d->a > 12 || d->b < 1 || d->b > 5 || d->c < 0 || d->c > 6) return NULL;
    } else if (*p == 'J') {
        d->kind = 'J';
        d->a = (int)strtol(p + 1, &e, 10);
        if (d->a < 1 || d->a > 365) return NULL;
    } else if (isdigit((unsigned char)*p)) {
        d->kind = 'D';
        d->a = (int)strtol(p, &e, 10);
        if (d->a > 365) return NULL;
    } else {
        return NULL;
    }
    d->time = 7200;
    if (*e == '/') return parse_hms(e + 1, &d->time);
    return e;
}

static int parse_rule(const char *s, tz_rule *r) {
    int32_t off;
    const char *p = parse_name(s);
    if (!p || !(p = parse_hms(p, &off))) return -1;
    r->std_off = -off;
    r->has_dst = 0;
    if (!*p) return 0;
    if (!(p = parse_name(p))) return -1;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, &off))) return -1;
        r->dst_off = -off;
    }
    if (*p != ',') return -1; /* TZif footers always carry their rules */
    if (!(p = parse_date(p + 1, &r->start)) || *p != ',') return -1;
    if (!(p = parse_date(p + 1, &r->end)) || *p) return -1;
    r->has_dst = 1;
    return 0;
}

/* The local (wall-clock, in the time before the change) instant of a rule date
 * in year y, in seconds since the epoch as if local were UTC. */
static int64_t rule_local(const tz_date *d, int64_t y) {
    int64_t day;
    if (d->kind == 'J') {
        day = bullc__days_from_civil(y, 1, 1) + d->a - 1 + (is_leap(y) && d->a >= 60);
    } else if (d->kind == 'D') {
        day = bullc__days_from_civil(y, 1, 1) + d->a;
    } else {
        int64_t first = bullc__days_from_civil(y, d->a, 1);
        int wd = (int)(((first + 4) % 7 + 7) % 7);
        day = first + ((d->c - wd) % 7 + 7) % 7 + (int64_t)(d->b - 1) * 7;
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int dim = mdays[d->a - 1] + (d->a == 2 && is_leap(y));
        while (day >= first + dim) day -= 7;
    }
    return day * 86400 + d->time;
}

static int32_t rule_offset(const tz_rule *r, int64_t t) {
    if (!r->has_dst) return r->std_off;
    int64_t days = (t + r->std_off) >= 0 ? (t + r->std_off) / 86400 : -((-(t + r->std_off) + 86399) / 86400);
    int64_t y;
    int m, d;
    bullc__civil_from_days(days, &y, &m, &d);
    /* The latest change at or before t among three years' changes: robust for
     * rules whose dates sit near a year's ends or wrap around it. */
    int64_t best = INT64_MIN;
    int32_t off = r->std_off;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t on = rule_local(&r->start, yy) - r->std_off;
        int64_t offt = rule_local(&r->end, yy) - r->dst_off;
        if (on <= t && on > best) best = on, off = r->dst_off;
        if (offt <= t && offt > best) best = offt, off = r->std_off;
    }
    return off;
}

/* ---- TZif --------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

static int parse_tzif(bullc__tz *tz, const unsigned char *b, size_t n) {
    if (n < 44 || memcmp(b, "TZif", 4) != 0) return -1;
    int v2 = b[4] >= '2';
    size_t tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        if (n < 44) return -1;
        uint32_t isut = be32(b + 20), isstd = be32(b + 24), leap = be32(b + 28), timecnt = be32(b + 32),
                 typecnt = be32(b + 36), charcnt = be32(b + 40);
        size_t body =
            (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6 + charcnt + (size_t)leap * (tsize + 4) + isstd + isut;
        if (typecnt == 0 || n - 44 < body) return -1;
        if (pass == 0 && v2) {
            b += 44 + body;
            n -= 44 + body;
            tsize = 8;
            continue;
        }
        const unsigned char *tp = b + 44, *ip = tp + (size_t)timecnt * tsize, *ty = ip + timecnt;
        tz->trans = malloc((timecnt ? timecnt : 1) * sizeof *tz->trans);
        tz->trans_off = malloc((timecnt ? timecnt : 1) * sizeof *tz->trans_off);
        if (!tz->trans || !tz->trans_off) return -2;
        for (uint32_t i = 0; i < timecnt; i++) {
            if (ip[i] >= typecnt) return -1;
            tz->trans[i] = tsize == 8 ? be64(tp + (size_t)i * 8) : (int32_t)be32(tp + (size_t)i * 4);
            tz->trans_off[i] = (int32_t)be32(ty + (size_t)ip[i] * 6);
        }
        tz->n_trans = timecnt;
        tz->first_off = (int32_t)be32(ty);
        if (v2) {
            const char *foot = (const char *)b + 44 + body, *end = (const char *)b + n;
            if (foot < end && *foot == '\n') {
                const char *nl = memchr(foot + 1, '\n', (size_t)(end - foot - 1));
                if (nl && nl > foot + 1) {
                    char rule[128];
                    size_t len = (size_t)(nl - foot - 1);
                    if (len < sizeof rule) {
                        memcpy(rule, foot + 1, len);
                        rule[len] = 0;
                        tz->has_rule = parse_rule(rule, &tz->rule) == 0;
                    }
                }
            }
        }
        return 0;
    }
    return -1;
}

static int load_file(bullc__tz *tz, const char *path, bullc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT || errno == ENOTDIR || errno == EISDIR
                   ? 1
                   : bullc__err(err, BULLC_ESYS, "%s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return bullc__err(err, BULLC_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    int bad = ferror(f);
    fclose(f);
    int rc = bad ? -1 : parse_tzif(tz, buf, n);
    free(buf);
    if (rc == -2) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    return rc < 0 ? 1 : 0;
}

/* Names Node's ICU accepts that the IANA database no longer has, with the
 * zone ICU gives them (checked against Node by compat_cron). ICU's
 * SystemV zones with daylight time are left out: ICU's own rules, not tzdata. */
static const char *const icu_aliases[][2] = {
    {"ACT", "Australia/Darwin"},
    {"AET", "Australia/Sydney"},
    {"AGT", "America/Argentina/Buenos_Aires"},
    {"ART", "Africa/Cairo"},
    {"AST", "America/Anchorage"},
    {"BET", "America/Sao_Paulo"},
    {"BST", "Asia/Dhaka"},
    {"CAT", "Africa/Maputo"},
    {"CNT", "America/St_Johns"},
    {"CST", "America/Chicago"},
    {"CTT", "Asia/Shanghai"},
    {"EAT", "Africa/Nairobi"},
    {"ECT", "Europe/Paris"},
    {"IET", "America/Indiana/Indianapolis"},
    {"IST", "Asia/Kolkata"},
    {"JST", "Asia/Tokyo"},
    {"MIT", "Pacific/Apia"},
    {"NET", "Asia/Yerevan"},
    {"NST", "Pacific/Auckland"},
    {"PLT", "Asia/Karachi"},
    {"PNT", "America/Phoenix"},
    {"PRT", "America/Puerto_Rico"},
    {"PST", "America/Los_Angeles"},
    {"SST", "Pacific/Guadalcanal"},
    {"VST", "Asia/Ho_Chi_Minh"},
    {"SystemV/AST4", "Etc/GMT+4"},
    {"SystemV/CST6", "Etc/GMT+6"},
    {"SystemV/EST5", "Etc/GMT+5"},
    {"SystemV/HST10", "Etc/GMT+10"},
    {"SystemV/MST7", "Etc/GMT+7"},
    {"SystemV/PST8", "Etc/GMT+8"},
    {"SystemV/YST9", "Etc/GMT+9"},
    {"Canada/East-Saskatchewan", "America/Regina"},
    {"US/Pacific-New", "America/Los_Angeles"},
};

/* The database's spelling of `name` (any case) from tzdata.zi's zone and link
 * lines, into out. 0 found, 1 not a zone of the database, <0 error. */
static int canonical_name(const char *name, char *out, size_t outsz) {
    FILE *f = fopen(ZONEINFO "/tzdata.zi", "r");
    if (!f) return 1;
    char line[512];
    int found = 1;
    while (found == 1 && fgets(line, sizeof line, f)) {
        if ((line[0] != 'Z' && line[0] != 'L') || line[1] != ' ') continue;
        char *tok = strtok(line + 2, " \t\n");
        if (tok && line[0] == 'L') tok = strtok(NULL, " \t\n");
        if (tok && strcasecmp(tok, name) == 0 && strlen(tok) < outsz) {
            strcpy(out, tok);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

static int safe_name(const char *n) {
    if (!*n || *n == '/' || strstr(n, "..") || strncmp(n, "posix/", 6) == 0 || strncmp(n, "right/", 6) == 0) return 0;
    /* Files that are no zones, and Factory, which ICU refuses. */
    static const char *const not_zones[] = {"posixrules", "localtime", "Factory", "posix", "right"};
    for (size_t i = 0; i < sizeof not_zones / sizeof not_zones[0]; i++)
        if (strcmp(n, not_zones[i]) == 0) return 0;
    for (const char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) return 0;
    return 1;
}

static int open_iana(bullc__tz *tz, const char *name, bullc_error *err) {
    for (size_t i = 0; i < sizeof icu_aliases / sizeof icu_aliases[0]; i++)
        if (strcasecmp(name, icu_aliases[i][0]) == 0) {
            name = icu_aliases[i][1];
            break;
        }
    char path[600], canon[256];
    if (!safe_name(name) || strlen(name) > 200) return 1;
    snprintf(path, sizeof path, ZONEINFO "/%s", name);
    int rc = load_file(tz, path, err);
    if (rc <= 0) return rc;
    /* A name in another case: the database's own list spells it. */
    if (canonical_name(name, canon, sizeof canon) != 0 || !safe_name(canon)) return 1;
    snprintf(path, sizeof path, ZONEINFO "/%s", canon);
    return load_file(tz, path, err);
}

static int open_system(bullc__tz *tz, bullc_error *err) {
    const char *env = getenv("TZ");
    if (env && *env) {
        if (*env == ':') env++;
        if (*env == '/') {
            if (load_file(tz, env, err) == 0) return 0;
        } else if (open_iana(tz, env, err) == 0) {
            return 0;
        }
        tz->fixed = 1; /* ICU falls back to UTC for a TZ it cannot read */
        return 0;
    }
    if (env || load_file(tz, "/etc/localtime", err) != 0) tz->fixed = 1;
    return 0;
}

/* luxon's FixedOffsetZone.parseSpecifier: utc, utc+5, utc-05:30 (lowered). */
static int parse_fixed(const char *s, int32_t *off) {
    if (strncasecmp(s, "utc", 3) != 0) return 0;
    s += 3;
    if (!*s) return *off = 0, 1;
    if (*s != '+' && *s != '-') return 0;
    int neg = *s++ == '-';
    if (!isdigit((unsigned char)s[0])) return 0;
    int h = s[0] - '0', i = 1;
    if (isdigit((unsigned char)s[1])) h = h * 10 + (s[1] - '0'), i = 2;
    s += i;
    int m = 0;
    if (*s == ':') {
        if (!isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2])) return 0;
        m = (s[1] - '0') * 10 + (s[2] - '0');
        s += 3;
    }
    if (*s) return 0;
    *off = (neg ? -1 : 1) * (h * 3600 + m * 60);
    return 1;
}

int bullc__tz_open(bullc__tz **out, const char *name, bullc_error *err) {
    bullc__tz *tz = calloc(1, sizeof *tz);
    if (!tz) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc;
    if (!name || strcasecmp(name, "default") == 0 || strcasecmp(name, "local") == 0 ||
        strcasecmp(name, "system") == 0) {
        rc = open_system(tz, err);
    } else if (strcasecmp(name, "gmt") == 0 || parse_fixed(name, &tz->fixed_off)) {
        tz->fixed = 1;
        rc = 0;
    } else {
        rc = open_iana(tz, name, err);
        if (rc == 1) rc = bullc__err(err, BULLC_EINVAL, "Invalid time zone: %s", name);
    }
    if (rc < 0) {
        bullc__tz_free(tz);
        return rc;
    }
    *out = tz;
    return 0;
}

void bullc__tz_free(bullc__tz *tz) {
    if (!tz) return;
    free(tz->trans);
    free(tz->trans_off);
    free(tz);
}

int32_t bullc__tz_offset(const bullc__tz *tz, int64_t ms) {
    if (tz->fixed) return tz->fixed_off;
    int64_t t = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    if (tz->n_trans == 0 || t < tz->trans[0]) {
        if (tz->n_trans == 0 && tz->has_rule) return rule_offset(&tz->rule, t);
        return tz->first_off;
    }
    if (t >= tz->trans[tz->n_trans - 1]) {
        if (tz->has_rule) return rule_offset(&tz->rule, t);
        return tz->trans_off[tz->n_trans - 1];
    }
    size_t lo = 0, hi = tz->n_trans - 1; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->trans_off[lo];
}
