/* SPDX-License-Identifier: MIT */
/* One short-lived request to a node: a sentinel asked where its master is
 * (sentinel.c), a cluster seed asked for the slot map (cluster.c). Written
 * once: the connect with its timeout, TLS, AUTH, the command, and what each
 * failure is reported as. Blocking; any thread (connections resolve on
 * libuv's thread pool). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "bullc-private.h"

static struct timeval tv_ms(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

void bullc__note_reason(char *why, size_t size, const char *fmt, ...) {
    size_t n = strlen(why);
    if (n + 3 >= size) return;
    if (n) {
        memcpy(why + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + n, size - n, fmt, ap);
    va_end(ap);
}

/* One command and its reply; NULL with `fail` written. Over TLS the socket
 * is ours (tls.c): the request is formatted and the reply parsed with
 * hiredis's public formatter and reader, and the socket's timeouts
 * (redisSetTimeout) make a late answer a timeout. */
static redisReply *node_cmd(redisContext *ctx, struct ssl_st *ssl, int argc, const char **argv, int timeout_ms,
                            char *fail, size_t fail_size) {
    if (!ssl) {
        redisReply *r = bullc__command_argv(ctx, argc, argv);
        if (!r) snprintf(fail, fail_size, "%s", ctx->errstr);
        return r;
    }
    bullc_error err = {0};
    char *req = NULL;
    void *r = NULL;
    redisReader *reader = redisReaderCreate();
    long long len = redisFormatCommandArgv(&req, argc, argv, NULL);
    if (!reader || len < 0) {
        snprintf(fail, fail_size, "out of memory");
        goto done;
    }
    for (long long off = 0; off < len;) {
        ssize_t n = bullc__tls_write(ssl, req + off, (size_t)(len - off), &err);
        if (n <= 0) goto failed;
        off += n;
    }
    char buf[4096];
    while (redisReaderGetReply(reader, &r) == REDIS_OK && !r) {
        ssize_t n = bullc__tls_read(ssl, buf, sizeof buf, NULL, &err);
        if (n <= 0) goto failed;
        redisReaderFeed(reader, buf, (size_t)n);
    }
    if (!r) snprintf(fail, fail_size, "bad reply: %s", reader->errstr);
    goto done;
failed:
    if (err.message[0])
        snprintf(fail, fail_size, "%s", err.message);
    else
        snprintf(fail, fail_size, "no answer within %d ms", timeout_ms);
done:
    redisFreeCommand(req);
    if (reader) redisReaderFree(reader);
    return r;
}

redisReply *bullc__node_ask(const bullc_redis_opts *o, const struct bullc__sentinel_addr *node,
                            const bullc__node_req *q, char *why, size_t size) {
    redisContext *ctx = redisConnectWithTimeout(node->host, node->port, tv_ms(o->connect_timeout_ms));
    struct ssl_st *ssl = NULL;
    redisReply *r = NULL;
    char fail[512];
    if (!ctx || ctx->err) {
        bullc__note_reason(why, size, "%s %s:%d: %s", q->label, node->host, node->port,
                           ctx ? ctx->errstr : "out of memory");
        goto out;
    }
    if (q->tls) {
        /* the TLS settings, with the node's own name to check */
        bullc_redis_opts so = *o;
        so.host = node->host;
        so.port = node->port;
        so.tls_server_name = NULL;
        bullc_error terr = {0};
        if (bullc__tls_connect(&so, ctx->fd, o->connect_timeout_ms, &ssl, &terr)) {
            bullc__note_reason(why, size, "%s %s:%d: %s", q->label, node->host, node->port, terr.message);
            goto out;
        }
    }
    redisSetTimeout(ctx, tv_ms(o->command_timeout_ms));
    if (q->password) {
        const char *a[3] = {"AUTH", q->user ? q->user : q->password, q->password};
        r = node_cmd(ctx, ssl, q->user ? 3 : 2, a, o->command_timeout_ms, fail, sizeof fail);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            /* the password is never in the reply: Redis says WRONGPASS */
            bullc__note_reason(why, size, "%s %s:%d refused AUTH: %s", q->label, node->host, node->port,
                               r ? r->str : fail);
            freeReplyObject(r);
            r = NULL;
            goto out;
        }
        freeReplyObject(r);
    }
    r = node_cmd(ctx, ssl, q->argc, q->argv, o->command_timeout_ms, fail, sizeof fail);
    if (!r) /* a TLS port closes on a plain request */
        bullc__note_reason(why, size, "%s %s:%d: %s%s", q->label, node->host, node->port, fail,
                           q->plain_hint && !ssl && (strstr(fail, "closed") || strstr(fail, "reset")) ? q->plain_hint
                                                                                                      : "");
out:
    if (ssl) bullc__tls_free(ssl);
    if (ctx) redisFree(ctx);
    return r;
}
