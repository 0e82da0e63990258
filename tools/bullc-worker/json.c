/* SPDX-License-Identifier: MIT */
/* JSON handled as text, for the builtins that pass a job's values on:
 * the raw text of an object's members and a small string builder. A value
 * is copied as the producer wrote it, never parsed and printed again:
 * cJSON would turn 1.950 into 1.95 and 12345678901234567890 into
 * 1.2345678901234567e+19, and a Node reader must see what was sent. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Past the string token at p (which is at its opening quote). */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return end;
}

/* Past the value at p. Iterative, so that deep nesting cannot exhaust the
 * stack; brackets are not matched by kind (the text is known to be JSON). */
static const char *skip_value(const char *p, const char *end) {
    int depth = 0;
    do {
        p = skip_ws(p, end);
        if (p >= end) return end;
        if (*p == '"') {
            p = skip_string(p, end);
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else {
            /* a number or a literal; or a ':' / ',' inside a container,
             * stepped over (so is any stray byte: the scan always moves) */
            const char *s = p;
            while (p < end && !strchr(" \t\r\n,:]}\"{[", *p)) p++;
            if (p == s) p++;
        }
    } while (depth > 0 && p < end);
    return p;
}

/* Whether the string token [p, q) says `key`. A key written with escapes
 * ("\u0064ata") is decoded first, as JSON.parse would. */
static bool key_is(const char *p, const char *q, const char *key) {
    size_t klen = strlen(key);
    if (!memchr(p, '\\', (size_t)(q - p))) return (size_t)(q - p) == klen + 2 && !memcmp(p + 1, key, klen);
    cJSON *s = cJSON_ParseWithLength(p, (size_t)(q - p));
    bool same = cJSON_IsString(s) && !strcmp(s->valuestring, key);
    cJSON_Delete(s);
    return same;
}

static const char *scan_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c != '\\') continue;
        if (++p >= end) return NULL;
        if (*p == 'u') {
            for (int i = 1; i <= 4; i++)
                if (p + i >= end || !strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
            p += 4;
        } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
            return NULL;
        }
    }
    return NULL;
}

static const char *scan_digits(const char *p, const char *end) {
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    return p > s ? p : NULL;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *scan_number(const char *p, const char *end) {
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0')
        p++;
    else if (!(p = scan_digits(p, end)))
        return NULL;
    if (p < end && *p == '.' && !(p = scan_digits(p + 1, end))) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (!(p = scan_digits(p, end))) return NULL;
    }
    return p;
}

/* Strict JSON, as JSON.parse takes it, at any depth: iterative, with the
 * open containers on a heap stack, so that deep nesting (valid JSON that a
 * Node processor may return) neither overflows the stack nor is refused
 * as cJSON refuses it past 1,000 levels. */
bool bw_json_valid(const char *json, size_t len) {
    const char *p = json, *end = json + len;
    char *stack = NULL; /* '{' or '[' per open container */
    size_t depth = 0, cap = 0;
    bool ok = false;
    for (;;) {
        /* a value */
        p = skip_ws(p, end);
        if (p >= end) goto out;
        if (*p == '{' || *p == '[') {
            if (depth == cap) {
                char *more = realloc(stack, cap = cap ? cap * 2 : 64);
                if (!more) goto out;
                stack = more;
            }
            stack[depth++] = *p++;
            p = skip_ws(p, end);
            if (p < end && *p == (stack[depth - 1] == '{' ? '}' : ']')) {
                p++;
                depth--;
            } else {
                if (stack[depth - 1] == '{') goto key;
                continue;
            }
        } else if (*p == '"') {
            if (!(p = scan_string(p, end))) goto out;
        } else if (*p == 't' || *p == 'f' || *p == 'n') {
            const char *lit = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
            size_t n = strlen(lit);
            if ((size_t)(end - p) < n || memcmp(p, lit, n)) goto out;
            p += n;
        } else if (!(p = scan_number(p, end))) {
            goto out;
        }
        /* after a value: close containers, or go on to the next member */
        for (;;) {
            p = skip_ws(p, end);
            if (!depth) {
                ok = p == end;
                goto out;
            }
            if (p >= end) goto out;
            char close = stack[depth - 1] == '{' ? '}' : ']';
            if (*p == close) {
                p++;
                depth--;
                continue;
            }
            if (*p++ != ',') goto out;
            if (stack[depth - 1] == '[') break;
        key:
            p = skip_ws(p, end);
            if (p >= end || *p != '"' || !(p = scan_string(p, end))) goto out;
            p = skip_ws(p, end);
            if (p >= end || *p++ != ':') goto out;
            break;
        }
    }
out:
    free(stack);
    return ok;
}

bool bw_json_member(const char *json, size_t len, const char *key, bw_jspan *out) {
    const char *end = json + len, *p = skip_ws(json, end);
    bool found = false;
    if (p >= end || *p != '{') return false;
    p = skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *k = p;
        p = skip_string(p, end);
        bool match = key_is(k, p, key);
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return false;
        const char *v = skip_ws(p + 1, end);
        p = skip_value(v, end);
        if (match) {
            /* the last one: JSON.parse keeps the last of repeated keys */
            const char *ve = p;
            while (ve > v && strchr(" \t\r\n", ve[-1])) ve--;
            out->p = v;
            out->n = (size_t)(ve - v);
            found = true;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') p = skip_ws(p + 1, end);
    }
    return found;
}

int bw_json_kind(const bw_jspan *v) {
    if (!v->n) return BW_JSON_INVALID;
    switch (v->p[0]) {
    case '"':
        return BW_JSON_STRING;
    case '{':
        return BW_JSON_OBJECT;
    case '[':
        return BW_JSON_ARRAY;
    case 't':
    case 'f':
        return BW_JSON_BOOL;
    case 'n':
        return BW_JSON_NULL;
    default:
        return (v->p[0] == '-' || (v->p[0] >= '0' && v->p[0] <= '9')) ? BW_JSON_NUMBER : BW_JSON_INVALID;
    }
}

char *bw_json_string_value(const bw_jspan *v) {
    if (bw_json_kind(v) != BW_JSON_STRING) return NULL;
    cJSON *s = cJSON_ParseWithLength(v->p, v->n);
    char *r = cJSON_IsString(s) ? strdup(s->valuestring) : NULL;
    cJSON_Delete(s);
    return r;
}

/* ---- building ---------------------------------------------------------------- */

void bw_sb_put(bw_sb *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void bw_sb_puts(bw_sb *b, const char *s) { bw_sb_put(b, s, strlen(s)); }

void bw_sb_printf(bw_sb *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = true; /* only short numbers and names go through here */
        return;
    }
    bw_sb_put(b, tmp, (size_t)n);
}

void bw_sb_quote(bw_sb *b, const char *s) { bw_sb_quote_n(b, s, strlen(s)); }

void bw_sb_quote_n(bw_sb *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    bw_sb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s, *end = c + len; c < end; c++) {
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (*c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            if (*c < 0x20) {
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[*c >> 4];
                esc[5] = hex[*c & 15];
                n = 6;
            } else {
                /* other bytes as they are: job strings are UTF-8 already */
                bw_sb_put(b, (const char *)c, 1);
                continue;
            }
        }
        bw_sb_put(b, esc, n);
    }
    bw_sb_put(b, "\"", 1);
}

char *bw_sb_take(bw_sb *b) {
    char *p = b->failed ? NULL : b->p;
    if (b->failed) free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = false;
    return p;
}
