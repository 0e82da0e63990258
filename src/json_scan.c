/* SPDX-License-Identifier: MIT */
/* Validating JSON without building it.
 *
 * The verdict is JSON.parse's (RFC 8259; lone surrogate escapes and numbers
 * of any length are JSON), at any depth: nesting is tracked with one bit a
 * level, not with recursion, so 100,000 levels cannot exhaust the stack
 * (cJSON stops at 1,000 and a Node producer's data may go deeper). A text the
 * scan refuses goes to cJSON_Parse, which bullc accepted before and which is
 * laxer in places ("{}x", "01", "1."), so nothing accepted before is refused
 * now; its own depth limit keeps it off the stack's end. */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

typedef struct json_scan {
    const unsigned char *p, *end;
    /* open containers, one bit a level (1: object); the first 512 levels
     * inline, deeper ones in `heap` */
    unsigned char inl[64], *heap;
    size_t depth, cap;
} json_scan;

static bool nest_push(json_scan *s, bool obj) {
    if (s->depth == s->cap * 8) {
        size_t cap = s->cap * 2;
        unsigned char *n = s->heap ? realloc(s->heap, cap) : malloc(cap);
        if (!n) return false;
        if (!s->heap) memcpy(n, s->inl, sizeof s->inl);
        s->heap = n;
        s->cap = cap;
    }
    unsigned char *bits = s->heap ? s->heap : s->inl;
    size_t i = s->depth++;
    if (obj)
        bits[i / 8] |= (unsigned char)(1u << (i % 8));
    else
        bits[i / 8] &= (unsigned char)~(1u << (i % 8));
    return true;
}

static bool nest_top_is_object(const json_scan *s) {
    const unsigned char *bits = s->heap ? s->heap : s->inl;
    size_t i = s->depth - 1;
    return bits[i / 8] >> (i % 8) & 1u;
}

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
            if (end - p < 6 || scan_hex4(p + 2) < 0) return false; /* any code unit, paired or not */
            p += 6;
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
    return true;
}

static bool scan_literal(json_scan *s, const char *lit, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n)) return false;
    s->p += n;
    return true;
}

static bool scan_scalar(json_scan *s) {
    switch (*s->p) {
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) && scan_number(s);
    }
}

/* An object member's `"key" :` and the whitespace after it. */
static bool scan_key(json_scan *s) {
    if (s->p >= s->end || *s->p != '"' || !scan_string(s)) return false;
    scan_ws(s);
    if (s->p >= s->end || *s->p != ':') return false;
    s->p++;
    scan_ws(s);
    return true;
}

/* One value and only whitespace after it, iteratively. */
static bool scan_text(json_scan *s) {
    scan_ws(s);
    for (;;) {
        /* a value is due */
        if (s->p >= s->end) return false;
        if (*s->p == '[' || *s->p == '{') {
            bool obj = *s->p++ == '{';
            scan_ws(s);
            if (s->p < s->end && *s->p == (obj ? '}' : ']')) {
                s->p++; /* empty: a whole value */
            } else {
                if (!nest_push(s, obj) || (obj && !scan_key(s))) return false;
                continue;
            }
        } else if (!scan_scalar(s)) {
            return false;
        }
        /* a value ended: close containers, or go on after a comma */
        for (;;) {
            scan_ws(s);
            if (s->depth == 0) return s->p == s->end;
            if (s->p >= s->end) return false;
            bool obj = nest_top_is_object(s);
            if (*s->p == (obj ? '}' : ']')) {
                s->p++;
                s->depth--;
                continue;
            }
            if (*s->p != ',') return false;
            s->p++;
            scan_ws(s);
            if (obj && !scan_key(s)) return false;
            break;
        }
    }
}

bool bullc__json_strict(const char *text, size_t len) {
    json_scan s = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len, .cap = 64};
    bool ok = scan_text(&s);
    free(s.heap);
    return ok;
}

bool bullc__json_parses(const char *text, size_t len) {
    if (bullc__json_strict(text, len)) return true;
    cJSON *j = cJSON_Parse(text); /* what bullc accepted before */
    cJSON_Delete(j);
    return j != NULL;
}
