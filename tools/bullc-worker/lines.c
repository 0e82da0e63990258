/* SPDX-License-Identifier: MIT */
/* The exec processor's stderr protocol: bytes cut into lines (a longer line
 * into pieces of BW_MAX_LINE), and each line classified as `progress: JSON`,
 * `log: TEXT`, `data: JSON`, `delay: MS`, `wait-children` or ordinary text
 * (which may become the failure reason), and the last lines kept for that
 * reason (bw_tail). Kept
 * apart from the process plumbing so that it can be fuzzed on its own. */
#include <stdlib.h>
#include <string.h>

#include "bw.h"

void bw_lines_feed(bw_lines *l, const char *buf, size_t n, bw_line_fn fn, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c != '\n' && l->len + 1 < BW_MAX_LINE) {
            if (l->len + 2 > l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 256;
                char *p = realloc(l->line, cap);
                if (!p) return; /* out of memory: the rest of this chunk is lost */
                l->line = p;
                l->cap = cap;
            }
            l->line[l->len++] = c;
            continue;
        }
        if (c != '\n') i--; /* BW_MAX_LINE reached: this byte starts the next piece */
        bw_lines_flush_line(l, fn, ctx, true);
    }
}

void bw_lines_flush_line(bw_lines *l, bw_line_fn fn, void *ctx, bool empty_too) {
    if (!l->len && !empty_too) return;
    char empty[1] = {'\0'};
    char *line = l->line ? l->line : empty;
    line[l->len] = '\0';
    size_t len = l->len;
    l->len = 0;
    fn(ctx, line, len);
}

void bw_lines_free(bw_lines *l) {
    free(l->line);
    memset(l, 0, sizeof *l);
}

bw_line_kind bw_line_classify(char *line, size_t *len, const char **value) {
    size_t n = *len;
    if (n && line[n - 1] == '\r') line[--n] = '\0';
    for (size_t i = 0; i < n; i++) /* a NUL would cut the text short everywhere downstream */
        if (!line[i]) line[i] = '?';
    *len = n;
    *value = line;
    if (!strncmp(line, "progress:", 9)) {
        const char *v = line + 9;
        while (*v == ' ' || *v == '\t') v++;
        *value = v;
        return BW_LINE_PROGRESS;
    }
    if (!strncmp(line, "log:", 4)) {
        const char *v = line + 4;
        if (*v == ' ') v++;
        *value = v;
        return BW_LINE_LOG;
    }
    static const struct {
        const char *prefix;
        bw_line_kind kind;
    } valued[] = {{"data:", BW_LINE_DATA}, {"delay:", BW_LINE_DELAY}};
    for (size_t i = 0; i < sizeof valued / sizeof valued[0]; i++) {
        size_t pl = strlen(valued[i].prefix);
        if (strncmp(line, valued[i].prefix, pl)) continue;
        const char *v = line + pl;
        while (*v == ' ' || *v == '\t') v++;
        *value = v;
        return valued[i].kind;
    }
    size_t t = n; /* a bare word: trailing blanks are no part of it */
    while (t && (line[t - 1] == ' ' || line[t - 1] == '\t')) t--;
    if (t == 13 && !memcmp(line, "wait-children", 13)) return BW_LINE_WAIT_CHILDREN;
    return BW_LINE_TEXT;
}

void bw_tail_push(bw_tail *t, const char *s, size_t len) {
    if (len > BW_TAIL_BYTES) {
        s += len - BW_TAIL_BYTES; /* the end of a long line says most */
        len = BW_TAIL_BYTES;
    }
    char *copy = strndup(s, len);
    if (!copy) return;
    free(t->line[t->next]);
    t->line[t->next] = copy;
    t->next = (t->next + 1) % BW_TAIL_LINES;
    if (t->count < BW_TAIL_LINES) t->count++;
}

char *bw_tail_text(const bw_tail *t) {
    size_t total = 0, take = 0;
    while (take < t->count) {
        size_t n = strlen(t->line[(t->next + BW_TAIL_LINES - 1 - take) % BW_TAIL_LINES]) + (take ? 1 : 0);
        if (total + n > BW_TAIL_BYTES) break;
        total += n;
        take++;
    }
    char *s = malloc(total + 1), *p = s;
    if (!s) return NULL;
    for (size_t k = take; k > 0; k--) {
        const char *l = t->line[(t->next + BW_TAIL_LINES - k) % BW_TAIL_LINES];
        size_t n = strlen(l);
        memcpy(p, l, n);
        p += n;
        if (k > 1) *p++ = '\n';
    }
    *p = '\0';
    char *b = s;
    while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r') b++;
    size_t n = strlen(b);
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\n' || b[n - 1] == '\r')) n--;
    memmove(s, b, n);
    s[n] = '\0';
    return s;
}

void bw_tail_clear(bw_tail *t) {
    for (size_t i = 0; i < BW_TAIL_LINES; i++) {
        free(t->line[i]);
        t->line[i] = NULL;
    }
    t->next = t->count = 0;
}
