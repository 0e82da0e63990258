/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the exec processor's stderr protocol (bullc-worker's
 * lines.c). The input is cut into chunks of varying sizes, as pipes deliver
 * it; every line handed over must be shorter than BW_MAX_LINE, NUL-free after
 * classification, and a classified value must lie inside its line. The same
 * input in one chunk must give the same lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

typedef struct sink {
    size_t nlines, total;
    uint64_t hash;
} sink;

static void on_line(void *ctx, char *line, size_t len) {
    sink *s = ctx;
    if (len >= BW_MAX_LINE) abort();
    const char *v;
    size_t n = len;
    bw_line_kind k = bw_line_classify(line, &n, &v);
    if (n > len || memchr(line, 0, n)) abort();
    if (v < line || v > line + n) abort();
    if (k < BW_LINE_TEXT || k > BW_LINE_WAIT_CHILDREN) abort();
    s->nlines++;
    s->total += n;
    for (size_t i = 0; i < n; i++) s->hash = s->hash * 1099511628211u ^ (unsigned char)line[i];
    s->hash = s->hash * 31 + (uint64_t)k;
}

static sink run(const uint8_t *data, size_t size, size_t chunk) {
    bw_lines l = {0};
    sink s = {0, 0, 1469598103934665603u};
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        bw_lines_feed(&l, (const char *)data + off, n, on_line, &s);
    }
    bw_lines_flush_line(&l, on_line, &s, false);
    bw_lines_free(&l);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t chunk = size ? (size_t)data[0] % 64 + 1 : 1;
    sink a = run(data, size, chunk), b = run(data, size, size ? size : 1);
    if (a.nlines != b.nlines || a.total != b.total || a.hash != b.hash) abort(); /* chunking changed the lines */
    return 0;
}
