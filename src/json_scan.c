/* SPDX-License-Identifier: MIT */
/* Validating JSON without building it.
 *
 * Strict JSON (RFC 8259) in the part that cJSON_Parse is known to accept as
 * well: \u escapes outside the surrogates or in proper pairs (cJSON refuses
 * lone surrogates), numbers within cJSON's 63-character number buffer,
 * nesting well inside its limit, only whitespace after the value. For
 * anything else the scan is not sure and cJSON_Parse decides, so the answer
 * is always cJSON's. */
#include <stdbool.h>
#include <stddef.h>

#include "bullc-private.h"

enum { SCAN_MAX_DEPTH = 200, SCAN_MAX_NUMBER = 63 };

typedef struct json_scan {
    const unsigned char *p, *end;
} json_scan;

static void scan_ws(json_scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int scan_hex4(const unsigned char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        int d = c >= '0' && c <= '9'   ? (int)(c - '0')
                : c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10)
                : c >= 'A' && c <= 'F' ? (int)(c - 'A' + 10)
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool scan_string(json_scan *s) {
    const unsigned char *p = s->p + 1, *end = s->end;
    while (p < end) {
        unsigned c = *p;
        if (c == '"') {
            s->p = p + 1;
            return true;
        }
        if (c < 0x20) return false;
        if (c != '\\') {
            p++;
            continue;
        }
        if (end - p < 2) return false;
        c = p[1];
        if (c == 'u') {
            int u = end - p >= 6 ? scan_hex4(p + 2) : -1;
            if (u < 0 || (u >= 0xdc00 && u <= 0xdfff)) return false;
            if (u >= 0xd800 && u <= 0xdbff) {
                if (end - p < 12 || p[6] != '\\' || p[7] != 'u') return false;
                int l = scan_hex4(p + 8);
                if (l < 0xdc00 || l > 0xdfff) return false;
                p += 12;
            } else {
                p += 6;
            }
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
            p += 2;
        } else {
            return false;
        }
    }
    return false;
}

static bool scan_digits(json_scan *s) {
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > start;
}

static bool scan_number(json_scan *s) {
    const unsigned char *start = s->p;
    if (*s->p == '-') s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!scan_digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!scan_digits(s)) return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!scan_digits(s)) return false;
    }
    return s->p - start <= SCAN_MAX_NUMBER;
}

static bool scan_literal(json_scan *s, const char *lit, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n)) return false;
    s->p += n;
    return true;
}

static bool scan_value(json_scan *s, int depth) {
    if (s->p >= s->end) return false;
    switch (*s->p) {
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    case '[':
    case '{': {
        bool obj = *s->p == '{';
        unsigned char close = obj ? (unsigned char)'}' : (unsigned char)']';
        if (depth >= SCAN_MAX_DEPTH) return false;
        s->p++;
        scan_ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return true;
        }
        for (;;) {
            if (obj) {
                if (s->p >= s->end || *s->p != '"' || !scan_string(s)) return false;
                scan_ws(s);
                if (s->p >= s->end || *s->p != ':') return false;
                s->p++;
                scan_ws(s);
            }
            if (!scan_value(s, depth + 1)) return false;
            scan_ws(s);
            if (s->p >= s->end) return false;
            if (*s->p == close) {
                s->p++;
                return true;
            }
            if (*s->p != ',') return false;
            s->p++;
            scan_ws(s);
        }
    }
    default:
        return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) && scan_number(s);
    }
}

bool bullc__json_parses(const char *text, size_t len) {
    json_scan s = {(const unsigned char *)text, (const unsigned char *)text + len};
    scan_ws(&s);
    if (scan_value(&s, 0)) {
        scan_ws(&s);
        if (s.p == s.end) return true;
    }
    cJSON *j = cJSON_Parse(text); /* not sure: cJSON's own answer */
    cJSON_Delete(j);
    return j != NULL;
}
