/* SPDX-License-Identifier: MIT */
/* The one file that reaches into hiredis 0.14's internals: a context's
 * output buffer (obuf), its reply reader (fed by hand, its object
 * functions swapped), the async context's queue of callbacks
 * (replies.head), its flags and error fields, and the exported but
 * undeclared redisProcessCallbacks. Everything else uses hiredis's
 * documented API and this file's small one (hiredis_glue.h), so that a
 * hiredis upgrade is checked here and nowhere else.
 *
 * Why reach in at all: requests are formatted by resp.c straight into the
 * output buffer (no copy per command); over TLS the socket is ours (tls.c),
 * so the buffer is written with SSL_write and the reader fed what SSL_read
 * decrypts; replies are built in an arena (reply_arena.c); and busy polling
 * needs to know whether a reply is due. */
#include <stdio.h>

#include "bullc-private.h"
#include "hiredis_glue.h"

/* hiredis 0.14 exports it without declaring it. */
void redisProcessCallbacks(redisAsyncContext *ac);

int bullc__hiredis_append_resp(redisContext *c, int argc, const char *const *argv, const size_t *lens) {
    sds ob = bullc__resp_cat(c->obuf, argc, argv, lens);
    if (!ob) return -1;
    c->obuf = ob;
    return 0;
}

int bullc__hiredis_append_script(redisContext *c, const bullc__script *s, bool eval, int argc, const char *const *argv,
                                 const size_t *lens) {
    sds ob = bullc__resp_script_cat(c->obuf, s, argc, argv, lens, eval);
    if (!ob) return -1;
    c->obuf = ob;
    return 0;
}

const char *bullc__hiredis_out(const redisContext *c, size_t *len) {
    *len = sdslen(c->obuf);
    return c->obuf;
}

void bullc__hiredis_out_consumed(redisContext *c, size_t n) { sdsrange(c->obuf, (ssize_t)n, -1); }

int bullc__hiredis_feed(redisContext *c, const char *buf, size_t n) { return redisReaderFeed(c->reader, buf, n); }

void bullc__hiredis_set_reply_fns(redisContext *c, redisReplyObjectFunctions *fns, void *privdata) {
    c->reader->fn = fns;
    c->reader->privdata = privdata;
}

bool bullc__hiredis_replies_due(const redisAsyncContext *ac) { return ac->replies.head != NULL; }

void bullc__hiredis_process_callbacks(redisAsyncContext *ac) { redisProcessCallbacks(ac); }

bool bullc__hiredis_is_connected(const redisAsyncContext *ac) { return ac->c.flags & REDIS_CONNECTED; }

bool bullc__hiredis_is_ending(const redisAsyncContext *ac) {
    return ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING);
}

bool bullc__hiredis_is_disconnecting(const redisAsyncContext *ac) { return ac->c.flags & REDIS_DISCONNECTING; }

void bullc__hiredis_mark_connected(redisAsyncContext *ac) {
    ac->c.flags |= REDIS_CONNECTED;
    if (ac->onConnect) ac->onConnect(ac, REDIS_OK);
}

void bullc__hiredis_fail(redisAsyncContext *ac, const char *why) {
    ac->c.err = REDIS_ERR_IO;
    snprintf(ac->c.errstr, sizeof ac->c.errstr, "%s", why);
    ac->err = ac->c.err;
    ac->errstr = ac->c.errstr;
    if (!(ac->c.flags & REDIS_CONNECTED)) {
        if (ac->onConnect) ac->onConnect(ac, REDIS_ERR);
    } else {
        ac->c.flags |= REDIS_DISCONNECTING;
    }
    redisAsyncFree(ac);
}

int bullc__hiredis_keepalive(redisAsyncContext *ac) { return redisEnableKeepAlive(&ac->c); }
