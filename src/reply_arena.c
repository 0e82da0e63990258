/* SPDX-License-Identifier: MIT */
/* Reply objects from an arena, for hiredis async contexts.
 *
 * hiredis builds a reply with one malloc per element (two per string) and
 * frees it the same way after the callback: for the ~30-field job hash that
 * comes back with each job, that was a quarter of the worker's instructions.
 * Here the objects of a reply are carved from chunks the connection keeps,
 * and freeing a reply (hiredis does it after the callback, or drops one
 * half-read with the context) only rewinds them once no reply is left. The
 * aconn contract already forbids keeping a reply past its callback. */
#include <stdlib.h>
#include <string.h>

#include "hiredis_glue.h"
#include "reply_arena.h"

enum { ARENA_CHUNK = 16384, ARENA_ALIGN = 16 };

/* Under AddressSanitizer the arena stays off: hiredis's own reply objects,
 * one allocation each, let ASan catch a reply used after its callback. */
#if defined(__SANITIZE_ADDRESS__)
#define USE_REPLY_ARENA 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define USE_REPLY_ARENA 0
#endif
#endif
#ifndef USE_REPLY_ARENA
#define USE_REPLY_ARENA 1
#endif

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_chunk;

struct bullc__reply_arena {
    arena_chunk *chunks; /* the one being filled first */
    int live;            /* replies built and not yet freed */
};
typedef bullc__reply_arena reply_arena;

/* Before each reply's root object: where it came from. */
typedef struct root_hdr {
    _Alignas(ARENA_ALIGN) reply_arena *arena;
} root_hdr;

static void *arena_alloc(reply_arena *a, size_t n) {
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_chunk *c = a->chunks;
    if (!c || c->size - c->used < n) {
        size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if (!(c = malloc(sizeof *c + size))) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

/* No reply left: keep one standard chunk, emptied, and free the rest. */
static void arena_rewind(reply_arena *a) {
    arena_chunk *keep = NULL;
    for (arena_chunk *c = a->chunks, *next; c; c = next) {
        next = c->next;
        if (!keep && c->size == ARENA_CHUNK) {
            keep = c;
            continue;
        }
        free(c);
    }
    if (keep) keep->used = 0, keep->next = NULL;
    a->chunks = keep;
}

void bullc__reply_arena_free(reply_arena *a) {
    if (!a) return;
    for (arena_chunk *c = a->chunks, *next; c; c = next) next = c->next, free(c);
    free(a);
}

/* A reply object with `extra` bytes after it, linked into its parent. */
static redisReply *reply_new(const redisReadTask *task, int type, size_t extra) {
    reply_arena *a = task->privdata;
    redisReply *r;
    if (task->parent) {
        r = arena_alloc(a, sizeof *r + extra);
    } else {
        root_hdr *h = arena_alloc(a, sizeof *h + sizeof *r + extra);
        if (!h) return NULL;
        h->arena = a;
        r = (redisReply *)(h + 1);
        a->live++;
    }
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->type = type;
    if (task->parent) ((redisReply *)task->parent->obj)->element[task->idx] = r;
    return r;
}

static void *reply_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *r = reply_new(task, task->type, len + 1);
    if (!r) return NULL;
    r->str = (char *)(r + 1);
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *reply_array(const redisReadTask *task, int elements) {
    size_t n = elements > 0 ? (size_t)elements : 0;
    redisReply *r = reply_new(task, REDIS_REPLY_ARRAY, n * sizeof(redisReply *));
    if (!r) return NULL;
    if (n) {
        r->element = (redisReply **)(r + 1);
        memset(r->element, 0, n * sizeof(redisReply *));
    }
    r->elements = n;
    return r;
}

static void *reply_integer(const redisReadTask *task, long long value) {
    redisReply *r = reply_new(task, REDIS_REPLY_INTEGER, 0);
    if (r) r->integer = value;
    return r;
}

static void *reply_nil(const redisReadTask *task) { return reply_new(task, REDIS_REPLY_NIL, 0); }

/* hiredis frees only whole replies (their root objects). */
static void reply_free(void *reply) {
    if (!reply) return;
    reply_arena *a = ((root_hdr *)reply - 1)->arena;
    if (--a->live == 0) arena_rewind(a);
}

static redisReplyObjectFunctions reply_fns = {reply_string, reply_array, reply_integer, reply_nil, reply_free};

reply_arena *bullc__reply_arena_new(void) { return USE_REPLY_ARENA ? calloc(1, sizeof(reply_arena)) : NULL; }

void bullc__reply_arena_attach(redisContext *ctx, reply_arena *a) { bullc__hiredis_set_reply_fns(ctx, &reply_fns, a); }
