/* SPDX-License-Identifier: MIT */
/* Redis requests in RESP, formatted in one pass.
 *
 * hiredis 0.14 formats each argument with sdscatfmt and grows its buffer as
 * it goes: about 600 instructions and a realloc or two per argument, which
 * was a fifth of the worker's CPU per job (docs/performance.md). Here the
 * size is known up front, so the request is one allocation and memcpys.
 *
 * A script call is the one place every connection formats the same way:
 * EVALSHA, the SHA1 and numkeys (the head), then the keys and arguments (the
 * tail). When Redis answers NOSCRIPT the call goes again as EVAL with the
 * script's text, and the tail is the same bytes, so a caller that kept them
 * sends EVAL's head and that tail without formatting anything again. */
#include <stdlib.h>
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

static char *put_bulk(char *p, const char *s, size_t len) {
    p = put_len(p, '$', len);
    if (len) memcpy(p, s, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static size_t args_size(int argc, const size_t *lens) {
    size_t n = 0;
    for (int i = 0; i < argc; i++) n += 5 + digits(lens[i]) + lens[i];
    return n;
}

static char *args_write(char *p, int argc, const char *const *argv, const size_t *lens) {
    for (int i = 0; i < argc; i++) p = put_bulk(p, argv[i], lens[i]);
    return p;
}

const size_t *bullc__resp_arg_lens(int argc, const char *const *argv, const size_t *lens, size_t *stack,
                                   size_t **heap) {
    *heap = NULL;
    if (lens) return lens;
    size_t *l = stack;
    if (argc > BULLC__RESP_STACK_ARGS && !(l = *heap = malloc((size_t)argc * sizeof *l))) return NULL;
    for (int i = 0; i < argc; i++) l[i] = strlen(argv[i]);
    return l;
}

size_t bullc__resp_size(int argc, const size_t *lens) { return 3 + digits((size_t)argc) + args_size(argc, lens); }

char *bullc__resp_write(char *p, int argc, const char *const *argv, const size_t *lens) {
    return args_write(put_len(p, '*', (size_t)argc), argc, argv, lens);
}

sds bullc__resp_cat(sds s, int argc, const char *const *argv, const size_t *lens) {
    size_t need = bullc__resp_size(argc, lens);
    if (!(s = sdsMakeRoomFor(s, need))) return NULL;
    char *end = bullc__resp_write(s + sdslen(s), argc, argv, lens);
    sdsIncrLen(s, (int)(end - (s + sdslen(s))));
    return s;
}

size_t bullc__resp_script_head_size(const bullc__script *s, int argc, bool eval) {
    size_t body = eval ? s->len : 40, nk = digits((size_t)s->numkeys);
    return 3 + digits((size_t)argc + 3) + (eval ? 10 : 13) + 5 + digits(body) + body + 5 + digits(nk) + nk;
}

char *bullc__resp_script_head_write(char *p, const bullc__script *s, int argc, bool eval) {
    char nk[24];
    size_t nkl = digits((size_t)s->numkeys);
    for (size_t i = nkl, v = (size_t)s->numkeys; i > 0; i--, v /= 10) nk[i - 1] = (char)('0' + v % 10);
    p = put_len(p, '*', (size_t)argc + 3);
    p = eval ? put_bulk(p, "EVAL", 4) : put_bulk(p, "EVALSHA", 7);
    p = eval ? put_bulk(p, s->text, s->len) : put_bulk(p, s->sha1, 40);
    return put_bulk(p, nk, nkl);
}

size_t bullc__resp_script_size(const bullc__script *s, int argc, const size_t *lens, bool eval, size_t *tail_len) {
    size_t tail = args_size(argc, lens);
    if (tail_len) *tail_len = tail;
    return bullc__resp_script_head_size(s, argc, eval) + tail;
}

char *bullc__resp_script_write(char *p, const bullc__script *s, int argc, const char *const *argv, const size_t *lens,
                               bool eval) {
    return args_write(bullc__resp_script_head_write(p, s, argc, eval), argc, argv, lens);
}

sds bullc__resp_script_cat(sds out, const bullc__script *s, int argc, const char *const *argv, const size_t *lens,
                           bool eval) {
    size_t need = bullc__resp_script_size(s, argc, lens, eval, NULL);
    if (!(out = sdsMakeRoomFor(out, need))) return NULL;
    char *end = bullc__resp_script_write(out + sdslen(out), s, argc, argv, lens, eval);
    sdsIncrLen(out, (int)(end - (out + sdslen(out))));
    return out;
}
