/* SPDX-License-Identifier: MIT */
/* Cron expressions parsed as cron-parser 5.10.3 parses them (what bullmq
 * 6.7.0 pins): the same text transformations in the same order (aliases,
 * wildcards, hashed values, lists, steps, ranges), so the same expressions are
 * accepted, with the same values, and refused with its messages. Its quirks are
 * kept on purpose: a Node peer computes the schedule from the same text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"
#include "cron_impl.h"

#define MAX_FIELD_VALUES 256
#define MAX_EXPRESSION_LENGTH 1024
#define MAX_STACK (MAX_FIELD_VALUES + 64)

static const int field_min[6] = {0, 0, 0, 1, 1, 0};
static const int field_max[6] = {59, 59, 23, 31, 12, 7};
static const char *const field_unit[6] = {"Second", "Minute", "Hour", "DayOfMonth", "Month", "DayOfWeek"};
static const char *const field_class[6] = {"CronSecond",     "CronMinute", "CronHour",
                                           "CronDayOfMonth", "CronMonth",  "CronDayOfWeek"};
static const char *const field_lower[6] = {"second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek"};
const int bullc__cron_days_in_month[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* One value of a field as cron-parser holds it: a number, or a string such as
 * "L" or "5L". */
typedef struct {
    int is_str;
    double num;
    char str[16];
    int long_str; /* a string too long to be valid anywhere */
} cval;

typedef struct {
    cval v[MAX_STACK];
    int n;
} cstack;

/* A growable text. */
typedef struct {
    char *p;
    size_t n, cap;
} buf;

static int buf_put(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static int buf_num(buf *b, double v) {
    char t[40];
    int n = snprintf(t, sizeof t, "%.17g", v);
    if (v == floor(v) && fabs(v) < 1e21) n = snprintf(t, sizeof t, "%.0f", v);
    return buf_put(b, t, (size_t)n);
}

static int isdig(char c) { return c >= '0' && c <= '9'; }

/* JavaScript's parseInt(s, 10) on the texts that reach it (no spaces). */
static double js_parse_int(const char *s, size_t n) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i >= n || !isdig(s[i])) return NAN;
    double v = 0;
    while (i < n && isdig(s[i])) v = v * 10 + (s[i++] - '0');
    return neg ? -v : v;
}

/* JavaScript's Number(s) for the decimal forms; anything else NaN. */
static double js_to_number(const char *s, size_t n) {
    if (n == 0) return 0;
    char t[64];
    if (n >= sizeof t) {
        for (size_t i = 0; i < n; i++)
            if (!isdig(s[i])) return NAN;
        return js_parse_int(s, n);
    }
    size_t i = 0, digits = 0;
    if (s[i] == '+' || s[i] == '-') i++;
    while (i < n && isdig(s[i])) i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && isdig(s[i])) i++, digits++;
    }
    if (!digits) return NAN;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !isdig(s[i])) return NAN;
        while (i < n && isdig(s[i])) i++;
    }
    if (i != n) return NAN;
    memcpy(t, s, n);
    t[n] = 0;
    return strtod(t, NULL);
}

/* The first character of String(v) for a number. */
static char js_num_first_char(double v) {
    char t[40];
    if (v == floor(v) && fabs(v) < 1e21)
        snprintf(t, sizeof t, "%.0f", v);
    else
        snprintf(t, sizeof t, "%.17g", v);
    return t[0];
}

/* ---- the text stages ---------------------------------------------------- */

static int lower(char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int isalpha_ascii(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* value.replace(/[a-z]{3}/gi, alias), for month and dayOfWeek. */
static int replace_aliases(const char *in, buf *out, bullc_error *err) {
    static const char *const names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                        "nov", "dec", "sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    static const int values[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2, 3, 4, 5, 6};
    for (size_t i = 0; in[i];) {
        if (isalpha_ascii(in[i]) && isalpha_ascii(in[i + 1]) && isalpha_ascii(in[i + 2])) {
            char m[4] = {(char)lower(in[i]), (char)lower(in[i + 1]), (char)lower(in[i + 2]), 0};
            int found = -1;
            for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
                if (strcmp(m, names[k]) == 0) found = values[k];
            if (found < 0) return bullc__err(err, BULLC_EINVAL, "Validation error, cannot resolve alias \"%s\"", m);
            if (buf_num(out, found) < 0) return BULLC_ENOMEM;
            i += 3;
        } else {
            if (buf_put(out, in + i, 1) < 0) return BULLC_ENOMEM;
            i++;
        }
    }
    if (!out->p && buf_put(out, "", 0) < 0) return BULLC_ENOMEM;
    return 0;
}

/* Matches H(\d+-\d+) at s; returns its length or 0. */
static size_t match_hrange(const char *s, double *lo, double *hi) {
    if (s[0] != 'H' || s[1] != '(' || !isdig(s[2])) return 0;
    size_t i = 2;
    while (isdig(s[i])) i++;
    if (s[i] != '-' || !isdig(s[i + 1])) return 0;
    size_t j = i + 1;
    while (isdig(s[j])) j++;
    if (s[j] != ')') return 0;
    *lo = js_parse_int(s + 2, i - 2);
    *hi = js_parse_int(s + i + 1, j - i - 1);
    return j + 1;
}

/* Matches /\d+ at s; returns its length or 0. */
static size_t match_step(const char *s, double *step) {
    if (s[0] != '/' || !isdig(s[1])) return 0;
    size_t i = 1;
    while (isdig(s[i])) i++;
    *step = js_parse_int(s + 1, i - 1);
    return i;
}

static int valid_chars(int f, const char *s) {
    double a, b;
    for (const char *p = s; *p; p++)
        if (*p == 'H' && (match_hrange(p, &a, &b) || match_step(p + 1, &a))) return 1;
    if (!*s) return 0;
    for (const char *p = s; *p; p++) {
        if (isdig(*p) || strchr("?,*H/-", *p)) continue;
        if ((f == CRON_DOM || f == CRON_DOW) && *p == 'L') continue;
        if (f == CRON_DOW && *p == '#') continue;
        return 0;
    }
    return 1;
}

static int replace_wildcards(int f, const char *in, buf *out) {
    char range[16];
    int rn = snprintf(range, sizeof range, "%d-%d", field_min[f], field_max[f]);
    for (const char *p = in; *p; p++)
        if (buf_put(out, (*p == '*' || *p == '?') ? range : p, (*p == '*' || *p == '?') ? (size_t)rn : 1) < 0)
            return BULLC_ENOMEM;
    if (!out->p && buf_put(out, "", 0) < 0) return BULLC_ENOMEM;
    return 0;
}

static double hashed_value(double r, double min, double max) { return floor(r * (max - min + 1)) + min; }

static int hashed_step(buf *out, double r, double min, double max, double step) {
    double offset = floor(r * step);
    int any = 0;
    for (double i = floor(min / step) * step + offset; i <= max; i += step) {
        if (i < min) continue;
        if ((any && buf_put(out, ",", 1) < 0) || buf_num(out, i) < 0) return BULLC_ENOMEM;
        any = 1;
    }
    if (!any && buf_num(out, hashed_value(r, min, max)) < 0) return BULLC_ENOMEM;
    return 0;
}

static int hashed_range(int f, double *lo, double *hi, bullc_error *err) {
    if (*lo > *hi) return bullc__err(err, BULLC_EINVAL, "Invalid range: %.0f-%.0f, min > max", *lo, *hi);
    double a = fmax(*lo, field_min[f]), b = fmin(*hi, field_max[f]);
    if (a > b)
        return bullc__err(err, BULLC_EINVAL, "Invalid range: %.0f-%.0f, no usable value in the %s field", *lo, *hi,
                          field_lower[f]);
    *lo = a;
    *hi = b;
    return 0;
}

/* value.replace(/H(?:\((\d+)-(\d+)\))?(?:\/(\d+))?/g, ...) */
static int replace_hashed(int f, const char *in, double r, buf *out, bullc_error *err) {
    double count = 0;
    for (const char *p = in; *p;) {
        if (*p != 'H') {
            if (buf_put(out, p++, 1) < 0) return BULLC_ENOMEM;
            continue;
        }
        double lo = 0, hi = 0, step = 0;
        size_t rl = match_hrange(p, &lo, &hi);
        size_t sl = match_step(p + (rl ? rl : 1), &step);
        int rc;
        if (sl && step <= 0) return bullc__err(err, BULLC_EINVAL, "Invalid step: %.0f, must be positive", step);
        if (rl && sl) {
            if ((rc = hashed_range(f, &lo, &hi, err)) < 0) return rc;
            count += ceil((hi - lo + 1) / step);
            if (count > MAX_FIELD_VALUES)
                return bullc__err(err, BULLC_EINVAL,
                                  "Constraint error, too many values in %s field, expected at most %d", field_unit[f],
                                  MAX_FIELD_VALUES);
            if ((rc = hashed_step(out, r, lo, hi, step)) < 0) return rc;
        } else if (rl) {
            if ((rc = hashed_range(f, &lo, &hi, err)) < 0) return rc;
            if (buf_num(out, hashed_value(r, lo, hi)) < 0) return BULLC_ENOMEM;
        } else if (sl) {
            count += ceil((field_max[f] - field_min[f] + 1) / step);
            if (count > MAX_FIELD_VALUES)
                return bullc__err(err, BULLC_EINVAL,
                                  "Constraint error, too many values in %s field, expected at most %d", field_unit[f],
                                  MAX_FIELD_VALUES);
            if ((rc = hashed_step(out, r, field_min[f], field_max[f], step)) < 0) return rc;
        } else if (buf_num(out, hashed_value(r, field_min[f], field_max[f])) < 0) {
            return BULLC_ENOMEM;
        }
        p += (rl ? rl : 1) + sl;
    }
    if (!out->p && buf_put(out, "", 0) < 0) return BULLC_ENOMEM;
    return 0;
}

/* ---- lists, steps, ranges ----------------------------------------------- */

/* createRange's own de-duplication, within the range being built (from `from`). */
static int stack_has(const cstack *st, int from, double v) {
    for (int i = from; i < st->n; i++)
        if (!st->v[i].is_str && st->v[i].num == v) return 1;
    return 0;
}

static void push_num(cstack *st, double v) {
    st->v[st->n].is_str = 0;
    st->v[st->n].num = v;
    st->n++;
}

static void push_str(cstack *st, const char *s, size_t n) {
    cval *c = &st->v[st->n++];
    c->is_str = 1;
    c->long_str = n >= sizeof c->str;
    size_t k = c->long_str ? sizeof c->str - 1 : n;
    memcpy(c->str, s, k);
    c->str[k] = 0;
}

static const char *js_num_text(double v, char t[40]) {
    if (isnan(v)) return "NaN";
    snprintf(t, 40, v == floor(v) && fabs(v) < 1e21 ? "%.0f" : "%.17g", v);
    return t;
}

static int parse_range(int f, const char *s, size_t n, double repeat, cstack *st, bullc_error *err) {
    char ta[40], tb[40];
    const char *dash = memchr(s, '-', n);
    if (!dash) {
        double v = js_to_number(s, n);
        /* handleResult on a single value */
        int has_l = (f == CRON_DOM || f == CRON_DOW) && memchr(s, 'L', n) != NULL;
        if (isnan(v) && has_l) {
            push_str(st, s, n);
            return 0;
        }
        double iv;
        if (isnan(v))
            iv = js_parse_int(s, n);
        else if (fabs(v) >= 1e21 || v != floor(v))
            iv = js_num_first_char(v) - '0';
        else
            iv = v;
        if (!(iv >= field_min[f] && iv <= field_max[f]))
            return bullc__err(err, BULLC_EINVAL, "Constraint error, got value %.*s expected range %d-%d", (int)n, s,
                              field_min[f], field_max[f]);
        if (f == CRON_DOW)
            push_num(st, fmod(iv, 7));
        else if (isnan(v))
            push_str(st, s, n);
        else
            push_num(st, v);
        return 0;
    }
    const char *rest = dash + 1, *end = s + n;
    const char *dash2 = memchr(rest, '-', (size_t)(end - rest));
    double min = js_parse_int(s, (size_t)(dash - s));
    double max = js_parse_int(rest, (size_t)((dash2 ? dash2 : end) - rest));
    if (isnan(min) || isnan(max) || min < field_min[f] || max > field_max[f])
        return bullc__err(err, BULLC_EINVAL, "Constraint error, got range %s-%s expected range %d-%d",
                          js_num_text(min, ta), js_num_text(max, tb), field_min[f], field_max[f]);
    if (min > max)
        return bullc__err(err, BULLC_EINVAL, "Invalid range: %.0f-%.0f, min(%.0f) > max(%.0f)", min, max, min, max);
    if (isnan(repeat) || repeat <= 0)
        return bullc__err(err, BULLC_EINVAL, "Constraint error, cannot repeat at every %g time.", repeat);
    int from = st->n;
    if (f == CRON_DOW && fmod(max, 7) == 0 && fmod(max - min, repeat) == 0) push_num(st, 0);
    for (double i = min; i <= max; i += repeat)
        if (!stack_has(st, from, i)) push_num(st, i);
    return 0;
}

static int parse_sequence(int f, const char *val, cstack *st, bullc_error *err) {
    st->n = 0;
    const char *p = val;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (st->n > MAX_FIELD_VALUES)
            return bullc__err(err, BULLC_EINVAL, "Constraint error, too many values in %s field, expected at most %d",
                              field_unit[f], MAX_FIELD_VALUES);
        if (n == 0) return bullc__err(err, BULLC_EINVAL, "Invalid list value format");
        /* parseRepeat */
        const char *slash = memchr(p, '/', n);
        int rc;
        if (slash) {
            const char *rest = slash + 1;
            size_t rn = n - (size_t)(rest - p);
            if (memchr(rest, '/', rn)) return bullc__err(err, BULLC_EINVAL, "Invalid repeat: %.*s", (int)n, p);
            double repeat = js_parse_int(rest, rn);
            size_t an = (size_t)(slash - p);
            if (memchr(p, '-', an)) {
                rc = parse_range(f, p, an, repeat, st, err);
            } else {
                char t[64];
                if (an > 40) return bullc__err(err, BULLC_EINVAL, "Constraint error, got range NaN expected range");
                int tn = snprintf(t, sizeof t, "%.*s-%d", (int)an, p, field_max[f]);
                rc = parse_range(f, t, (size_t)tn, repeat, st, err);
            }
        } else {
            rc = parse_range(f, p, n, 1, st, err);
        }
        if (rc < 0) return rc;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* ---- fields ------------------------------------------------------------- */

static int cval_cmp(const void *a, const void *b) {
    const cval *x = a, *y = b;
    if (!x->is_str && !y->is_str) return x->num < y->num ? -1 : x->num > y->num;
    if (x->is_str && y->is_str) return strcmp(x->str, y->str);
    return x->is_str ? 1 : -1;
}

static int l_string_ok(const cval *c) {
    /* ^\d{0,2}L$ */
    if (c->long_str) return 0;
    size_t n = strlen(c->str);
    if (n < 1 || n > 3 || c->str[n - 1] != 'L') return 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (!isdig(c->str[i])) return 0;
    return 1;
}

/* The CronField constructor and validate(): sorts, checks ranges and
 * duplicates, and fills the engine's view of the field. */
static int make_field(int f, cstack *st, const char *raw, bullc__cron_field *out, bullc_error *err) {
    if (st->n == 0)
        return bullc__err(err, BULLC_EINVAL, "%s Validation error, values contains no values", field_class[f]);
    qsort(st->v, (size_t)st->n, sizeof st->v[0], cval_cmp);
    out->wildcard = strcmp(raw, "*") == 0 || strcmp(raw, "?") == 0;
    out->has_last = strchr(raw, 'L') != NULL;
    for (int i = 0; i < st->n; i++) {
        cval *c = &st->v[i];
        if (c->is_str && !c->long_str && strcmp(c->str, "L") == 0) out->has_last = 1;
        int ok = c->is_str ? ((f == CRON_DOM || f == CRON_DOW) && l_string_ok(c))
                           : (c->num >= field_min[f] && c->num <= field_max[f]);
        if (!ok) {
            if (c->is_str)
                return bullc__err(err, BULLC_EINVAL, "%s Validation error, got value %s expected range %d-%d%s",
                                  field_class[f], c->str, field_min[f], field_max[f],
                                  (f == CRON_DOM || f == CRON_DOW) ? " or chars L" : "");
            return bullc__err(err, BULLC_EINVAL, "%s Validation error, got value %g expected range %d-%d%s",
                              field_class[f], c->num, field_min[f], field_max[f],
                              (f == CRON_DOM || f == CRON_DOW) ? " or chars L" : "");
        }
    }
    for (int i = 1; i < st->n; i++)
        if (cval_cmp(&st->v[i - 1], &st->v[i]) == 0 && st->v[i].is_str == st->v[i - 1].is_str) {
            if (st->v[i].is_str)
                return bullc__err(err, BULLC_EINVAL, "%s Validation error, duplicate values found: %s", field_class[f],
                                  st->v[i].str);
            return bullc__err(err, BULLC_EINVAL, "%s Validation error, duplicate values found: %g", field_class[f],
                              st->v[i].num);
        }
    out->n = 0;
    out->lmask = 0;
    for (int i = 0; i < st->n; i++) {
        cval *c = &st->v[i];
        char first = c->is_str ? c->str[0] : js_num_first_char(c->num);
        if (isdig(first)) out->lmask |= 1u << ((first - '0') % 7);
        if (!c->is_str) out->v[out->n++] = c->num;
    }
    if (f == CRON_DOW)
        for (int i = 0; i < st->n; i++)
            if (st->v[i].is_str && strcmp(st->v[i].str, "L") == 0)
                return bullc__err(err, BULLC_EINVAL, "CronDayOfWeek Validation error, unexpected standalone L");
    return 0;
}

static int parse_field(int f, const char *raw, double r, cstack *st, bullc_error *err) {
    buf a = {0}, b = {0}, c = {0};
    int rc = 0;
    const char *val = raw;
    if (f == CRON_MONTH || f == CRON_DOW) {
        if ((rc = replace_aliases(raw, &a, err)) < 0) goto out;
        val = a.p;
    }
    if (!valid_chars(f, val)) {
        rc = bullc__err(err, BULLC_EINVAL, "Invalid characters, got value: %s", val);
        goto out;
    }
    if ((rc = replace_wildcards(f, val, &b)) < 0 || (rc = replace_hashed(f, b.p, r, &c, err)) < 0) goto out;
    rc = parse_sequence(f, c.p, st, err);
out:
    free(a.p);
    free(b.p);
    free(c.p);
    return rc == BULLC_ENOMEM ? bullc__err(err, BULLC_ENOMEM, "out of memory") : rc;
}

/* cron-parser's seededRandom: xfnv1a over the seed's UTF-16 code units, then
 * mulberry32. */
static uint32_t hash_seed(const char *s) {
    uint32_t h = 2166136261u;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int n = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
        cp = n == 1 ? *p : (uint32_t)(*p & (0xFF >> (n + 1)));
        for (int i = 1; i < n && p[i]; i++) cp = cp << 6 | (p[i] & 0x3F);
        for (int i = 0; i < n && *p; i++) p++;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = (h ^ (0xD800 + (cp >> 10))) * 16777619u;
            h = (h ^ (0xDC00 + (cp & 0x3FF))) * 16777619u;
        } else {
            h = (h ^ cp) * 16777619u;
        }
    }
    return h;
}

static double mulberry32(uint32_t *state) {
    uint32_t t = (*state += 0x6D2B79F5u);
    t = (t ^ (t >> 15)) * (t | 1);
    t ^= t + (t ^ (t >> 7)) * (t | 61);
    return (double)(t ^ (t >> 14)) / 4294967296.0;
}

static int is_js_space(const unsigned char *p, size_t *len) {
    if (*p == ' ' || (*p >= 9 && *p <= 13)) return *len = 1, 1;
    if (p[0] == 0xC2 && p[1] == 0xA0) return *len = 2, 1;
    if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return *len = 3, 1;
    if (p[0] == 0xE2 && p[1] == 0x80 &&
        ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
        return *len = 3, 1;
    if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return *len = 3, 1;
    if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return *len = 3, 1;
    if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) return *len = 3, 1;
    return 0;
}

static size_t utf16_length(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) != 0x80) n++;
        if (*p >= 0xF0) n++;
    }
    return n;
}

int bullc__cron_parse(bullc__cron_fields *cf, const char *pattern, const char *seed, bullc_error *err) {
    static const char *const predefined[][2] = {{"@yearly", "0 0 0 1 1 *"},     {"@annually", "0 0 0 1 1 *"},
                                                {"@monthly", "0 0 0 1 * *"},    {"@weekly", "0 0 0 * * 0"},
                                                {"@daily", "0 0 0 * * *"},      {"@hourly", "0 0 * * * *"},
                                                {"@minutely", "0 * * * * *"},   {"@secondly", "* * * * * *"},
                                                {"@weekdays", "0 0 0 * * 1-5"}, {"@weekends", "0 0 0 * * 0,6"}};
    for (size_t i = 0; i < sizeof predefined / sizeof predefined[0]; i++)
        if (strcmp(pattern, predefined[i][0]) == 0) pattern = predefined[i][1];
    if (!*pattern) pattern = "0 * * * * *";
    if (utf16_length(pattern) > MAX_EXPRESSION_LENGTH)
        return bullc__err(err, BULLC_EINVAL, "Invalid cron expression, too long, expected at most %d characters",
                          MAX_EXPRESSION_LENGTH);

    /* expression.trim().split(/\s+/) */
    char *copy = strdup(pattern);
    if (!copy) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    char *atoms[8];
    int natoms = 0;
    size_t sl;
    unsigned char *p = (unsigned char *)copy;
    while (*p && is_js_space(p, &sl)) p += sl;
    if (!*p) atoms[natoms++] = (char *)p;
    while (*p) {
        if (natoms == 7) break;
        atoms[natoms++] = (char *)p;
        while (*p && !is_js_space(p, &sl)) p++;
        if (!*p) break;
        *p = 0;
        p += sl;
        while (*p && is_js_space(p, &sl)) p += sl;
    }
    if (natoms > 6) {
        free(copy);
        return bullc__err(err, BULLC_EINVAL, "Invalid cron expression, too many fields");
    }
    const char *raw[6];
    static const char *const defaults[6] = {"0", "*", "*", "*", "*", "*"};
    for (int i = 0; i < 6 - natoms; i++) raw[i] = defaults[i];
    for (int i = 0; i < natoms; i++) raw[6 - natoms + i] = atoms[i];

    uint32_t state = seed && *seed ? hash_seed(seed) : (uint32_t)(bullc__random_below(10000000000ull) & 0xFFFFFFFFu);
    cstack *st = malloc(sizeof *st * 6);
    if (!st) {
        free(copy);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    /* cron-parser's order: second, minute, hour, month, dayOfMonth, then the
     * nth-day split and dayOfWeek; one random draw per field. */
    static const int order[5] = {CRON_SECOND, CRON_MINUTE, CRON_HOUR, CRON_MONTH, CRON_DOM};
    int rc = 0;
    for (int i = 0; i < 5 && rc == 0; i++)
        rc = parse_field(order[i], raw[order[i]], mulberry32(&state), &st[order[i]], err);
    cf->nth = 0;
    const char *dow = raw[CRON_DOW];
    char dowbuf[MAX_EXPRESSION_LENGTH + 8];
    if (rc == 0 && strchr(dow, '#')) {
        const char *h1 = strchr(dow, '#'), *hl = strrchr(dow, '#');
        double nth = js_to_number(hl + 1, strlen(hl + 1));
        if (strpbrk(dow, ",-/")) {
            char c = *strpbrk(dow, ",-/");
            rc = bullc__err(err, BULLC_EINVAL,
                            "Constraint error, invalid dayOfWeek `#` and `%c` special characters are incompatible", c);
        } else if (h1 != hl || isnan(nth) || nth < 1 || nth > 5) {
            rc = bullc__err(err, BULLC_EINVAL, "Constraint error, invalid dayOfWeek occurrence number (#)");
        } else {
            snprintf(dowbuf, sizeof dowbuf, "%.*s", (int)(h1 - dow), dow);
            dow = dowbuf;
            cf->nth = nth;
        }
    }
    if (rc == 0) rc = parse_field(CRON_DOW, dow, mulberry32(&state), &st[CRON_DOW], err);

    /* The fields' constructors, in cron-parser's order. */
    for (int f = CRON_SECOND; f <= CRON_HOUR && rc == 0; f++) rc = make_field(f, &st[f], raw[f], &cf->f[f], err);
    if (rc == 0) {
        /* CronDayOfMonth.fromMonth: days the only month cannot have are
         * dropped, unless none would be left. */
        cstack *m = &st[CRON_MONTH], *d = &st[CRON_DOM];
        if (m->n == 1) {
            double dim = m->v[0].is_str || m->v[0].num < 1 || m->v[0].num > 12 || m->v[0].num != floor(m->v[0].num)
                             ? NAN
                             : bullc__cron_days_in_month[(int)m->v[0].num - 1];
            int keep = 0;
            for (int i = 0; i < d->n; i++)
                if (d->v[i].is_str || d->v[i].num <= dim) keep++;
            if (keep > 0) {
                int k = 0;
                for (int i = 0; i < d->n; i++)
                    if (d->v[i].is_str || d->v[i].num <= dim) d->v[k++] = d->v[i];
                d->n = k;
            }
        }
        rc = make_field(CRON_DOM, d, raw[CRON_DOM], &cf->f[CRON_DOM], err);
    }
    if (rc == 0) rc = make_field(CRON_MONTH, &st[CRON_MONTH], raw[CRON_MONTH], &cf->f[CRON_MONTH], err);
    if (rc == 0) rc = make_field(CRON_DOW, &st[CRON_DOW], raw[CRON_DOW], &cf->f[CRON_DOW], err);
    if (rc == 0 && cf->f[CRON_MONTH].n == 1 && !cf->f[CRON_DOM].has_last && cf->f[CRON_DOW].wildcard) {
        /* dayOfMonth.values[0]: the smallest number (numbers sort first) */
        const cstack *d = &st[CRON_DOM];
        double first = d->v[0].is_str ? js_parse_int(d->v[0].str, strlen(d->v[0].str)) : d->v[0].num;
        if (!(first <= bullc__cron_days_in_month[(int)cf->f[CRON_MONTH].v[0] - 1]))
            rc = bullc__err(err, BULLC_EINVAL, "Invalid explicit day of month definition");
    }
    free(st);
    free(copy);
    return rc;
}
