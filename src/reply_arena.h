/* SPDX-License-Identifier: MIT */
/* PRIVATE: reply objects built in an arena (reply_arena.c). */
#ifndef BULLC_REPLY_ARENA_H
#define BULLC_REPLY_ARENA_H

#include <hiredis.h>

typedef struct bullc__reply_arena bullc__reply_arena;

/* An empty arena; NULL when out of memory or under AddressSanitizer (then
 * hiredis's own reply objects are used). */
bullc__reply_arena *bullc__reply_arena_new(void);
/* Frees the arena's memory: only once no reply built in it is alive (the
 * contexts it was attached to are freed). NULL is fine. */
void bullc__reply_arena_free(bullc__reply_arena *a);
/* Makes the reader of `ctx` build its replies in `a`. One arena may serve
 * successive contexts; a reply must not be kept past the callback it is
 * handed to. */
void bullc__reply_arena_attach(redisContext *ctx, bullc__reply_arena *a);

#endif
