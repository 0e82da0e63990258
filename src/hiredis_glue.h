/* SPDX-License-Identifier: MIT */
/* PRIVATE: what bullc needs of hiredis 0.14 beyond its documented API, all
 * in hiredis_glue.c (the only file that touches hiredis's internals). Any
 * thread that owns the context; async calls on the loop thread. */
#ifndef BULLC_HIREDIS_GLUE_H
#define BULLC_HIREDIS_GLUE_H

#include <async.h>
#include <hiredis.h>
#include <stdbool.h>

#include "bullc-private.h"

/* Formats a command (resp.c) or a script call (EVALSHA, or EVAL when
 * `eval`) straight into the context's output buffer; -1 when out of memory
 * (the buffer is intact). */
int bullc__hiredis_append_resp(redisContext *c, int argc, const char *const *argv, const size_t *lens);
int bullc__hiredis_append_script(redisContext *c, const bullc__script *s, bool eval, int argc, const char *const *argv,
                                 const size_t *lens);
/* The output not written yet (borrowed, valid until the next call on `c`),
 * and dropping its first `n` bytes once written elsewhere (TLS). */
const char *bullc__hiredis_out(const redisContext *c, size_t *len);
void bullc__hiredis_out_consumed(redisContext *c, size_t n);
/* Feeds the context's reply reader bytes read elsewhere (TLS); REDIS_OK or
 * REDIS_ERR (a protocol error, in the reader). */
int bullc__hiredis_feed(redisContext *c, const char *buf, size_t n);
/* Makes the context's reader build replies with `fns` (borrowed, static). */
void bullc__hiredis_set_reply_fns(redisContext *c, redisReplyObjectFunctions *fns, void *privdata);
/* Whether an async context waits for a reply (a command sent, unanswered). */
bool bullc__hiredis_replies_due(const redisAsyncContext *ac);
/* Hands the replies in the reader to their callbacks (may free `ac`). */
void bullc__hiredis_process_callbacks(redisAsyncContext *ac);
/* The async context's state: connected; being disconnected or freed (a
 * command sent now would be lost); being disconnected. */
bool bullc__hiredis_is_connected(const redisAsyncContext *ac);
bool bullc__hiredis_is_ending(const redisAsyncContext *ac);
bool bullc__hiredis_is_disconnecting(const redisAsyncContext *ac);
/* An adapter that connects by itself (TLS): marks `ac` connected as hiredis
 * does and runs its connect callback. */
void bullc__hiredis_mark_connected(redisAsyncContext *ac);
/* Ends `ac` with `why` as hiredis ends it after an I/O error: before the
 * connect completed, as a failed connect (the connect callback with
 * REDIS_ERR); after, as a lost connection (pending callbacks with NULL,
 * then the disconnect callback with REDIS_ERR). Frees `ac`. */
void bullc__hiredis_fail(redisAsyncContext *ac, const char *why);
/* TCP keepalive on an async context's socket. */
int bullc__hiredis_keepalive(redisAsyncContext *ac);

#endif
