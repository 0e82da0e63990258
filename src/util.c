/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bullc-private.h"

/* The frozen time of bullc_test_clock_set, 0 while the system clock runs:
 * one relaxed load is all the hot paths pay for the hook. */
static _Atomic int64_t test_clock;

void bullc_test_clock_set(int64_t epoch_ms) {
    atomic_store_explicit(&test_clock, epoch_ms > 0 ? epoch_ms : 0, memory_order_relaxed);
}

int64_t bullc_test_clock_tick(int64_t ms) {
    int64_t t = atomic_load_explicit(&test_clock, memory_order_relaxed);
    while (t && !atomic_compare_exchange_weak_explicit(&test_clock, &t, t + ms, memory_order_relaxed,
                                                       memory_order_relaxed)) {
    }
    return t ? t + ms : 0;
}

int64_t bullc__now_ms(void) {
    int64_t frozen = atomic_load_explicit(&test_clock, memory_order_relaxed);
    if (frozen) return frozen;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool bullc__parse_i64(const char *s, size_t len, int64_t *out) {
    if (!s || len == 0) return false;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        if (++i == len) return false;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

sds bullc__base64(const char *s, size_t len) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sds out = sdsempty();
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len) v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], i + 1 < len ? tbl[(v >> 6) & 63] : '=',
                     i + 2 < len ? tbl[v & 63] : '='};
        out = sdscatlen(out, q, 4);
    }
    return out;
}

int64_t bullc__double_to_i64(double d) {
    if (!(d == d)) return 0;
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    return (int64_t)d;
}

bool bullc__utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 4;
        if (n == 4 || (size_t)(end - p) <= n) return n == 0 && p < end;
        unsigned cp = n == 0 ? c : n == 1 ? c & 0x1f : n == 2 ? c & 0x0f : c & 0x07;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* no overlong forms, no surrogates, nothing past U+10FFFF */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

size_t bullc__js_number(char out[BULLC__JS_NUMBER_MAX], double v) {
    if (isnan(v)) return (size_t)snprintf(out, BULLC__JS_NUMBER_MAX, "NaN");
    if (isinf(v)) return (size_t)snprintf(out, BULLC__JS_NUMBER_MAX, "%sInfinity", v < 0 ? "-" : "");
    if (v == 0) return (size_t)snprintf(out, BULLC__JS_NUMBER_MAX, "0"); /* -0 too */
    char e[40], digits[24];
    int k = 0;
    for (int p = 1; p <= 17; p++) { /* the shortest digits that read back as v */
        snprintf(e, sizeof e, "%.*e", p - 1, fabs(v));
        if (strtod(e, NULL) == fabs(v)) break;
    }
    const char *ep = strchr(e, 'e');
    for (const char *c = e; c < ep; c++)
        if (*c != '.') digits[k++] = *c;
    digits[k] = '\0';
    /* Number.prototype.toString, with n the position of the decimal point */
    int n = atoi(ep + 1) + 1;
    size_t len = 0;
    if (v < 0) out[len++] = '-';
    if (0 < n && n <= 21) {
        for (int i = 0; i < (k > n ? k : n); i++) {
            if (i == n) out[len++] = '.';
            out[len++] = i < k ? digits[i] : '0';
        }
    } else if (-6 < n && n <= 0) {
        out[len++] = '0', out[len++] = '.';
        for (int i = n; i < 0; i++) out[len++] = '0';
        for (int i = 0; i < k; i++) out[len++] = digits[i];
    } else {
        out[len++] = digits[0];
        if (k > 1) out[len++] = '.';
        for (int i = 1; i < k; i++) out[len++] = digits[i];
        len += (size_t)snprintf(out + len, BULLC__JS_NUMBER_MAX - len, "e%c%d", n > 0 ? '+' : '-', abs(n - 1));
    }
    out[len] = '\0';
    return len;
}

/* sdscatlen that frees `s` when it cannot grow it (hiredis's keeps it). */
static sds cat_or_free(sds s, const char *p, size_t n) {
    sds grown = sdscatlen(s, p, n);
    if (!grown) sdsfree(s);
    return grown;
}

sds bullc__json_quote(sds out, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    if (!out || !(out = cat_or_free(out, "\"", 1))) return NULL;
    size_t run = 0; /* start of the bytes not yet copied: copied in runs */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        char esc[6] = {'\\', (char)c};
        size_t n = 2;
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20) {
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            n = 6;
        }
        if (!(out = cat_or_free(out, s + run, i - run)) || !(out = cat_or_free(out, esc, n))) return NULL;
        run = i + 1;
    }
    if (!(out = cat_or_free(out, s + run, len - run))) return NULL;
    return cat_or_free(out, "\"", 1);
}

void bullc__wipe_free(char *s) {
    if (!s) return;
    /* volatile so the wipe of a password is not optimised away */
    for (volatile char *p = s; *p; p++) *p = 0;
    free(s);
}

int bullc__str_set(char **dst, const char *s) {
    char *copy = NULL;
    if (s && !(copy = strdup(s))) return BULLC_ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

int bullc__str_set2(char **a, const char *sa, char **b, const char *sb, bool secret_b) {
    char *ca = NULL, *cb = NULL;
    if ((sa && !(ca = strdup(sa))) || (sb && !(cb = strdup(sb)))) {
        free(ca);
        secret_b ? bullc__wipe_free(cb) : free(cb);
        return BULLC_ENOMEM;
    }
    free(*a);
    secret_b ? bullc__wipe_free(*b) : free(*b);
    *a = ca;
    *b = cb;
    return 0;
}
