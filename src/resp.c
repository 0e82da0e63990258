/* SPDX-License-Identifier: MIT */
/* Redis requests in RESP, formatted in one pass.
 *
 * hiredis 0.14 formats each argument with sdscatfmt and grows its buffer as
 * it goes: about 600 instructions and a realloc or two per argument, which
 * was a fifth of the worker's CPU per job (docs/performance.md). Here the
 * size is known up front, so the request is one allocation and memcpys. */
#include <string.h>

#include "bullc-private.h"

static size_t digits(size_t v) {
    size_t n = 1;
    while (v >= 10) v /= 10, n++;
    return n;
}

static char *put_len(char *p, char kind, size_t v) {
    size_t n = digits(v);
    *p++ = kind;
    for (size_t i = n; i > 0; i--, v /= 10) p[i - 1] = (char)('0' + v % 10);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

size_t bullc__resp_size(int argc, const size_t *lens) {
    size_t n = 3 + digits((size_t)argc);
    for (int i = 0; i < argc; i++) n += 5 + digits(lens[i]) + lens[i];
    return n;
}

char *bullc__resp_write(char *p, int argc, const char *const *argv, const size_t *lens) {
    p = put_len(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        p = put_len(p, '$', lens[i]);
        if (lens[i]) memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    return p;
}

sds bullc__resp_cat(sds s, int argc, const char *const *argv, const size_t *lens) {
    size_t need = bullc__resp_size(argc, lens);
    if (!(s = sdsMakeRoomFor(s, need))) return NULL;
    char *end = bullc__resp_write(s + sdslen(s), argc, argv, lens);
    sdsIncrLen(s, (int)(end - (s + sdslen(s))));
    return s;
}
