/* SPDX-License-Identifier: MIT */
/* Redis Sentinel: where the master is. Every connection asks here before it
 * connects (conn.c, aconn.c through the thread pool, the programs' own
 * through bullc_redis_opts_resolve), so discovery is written once. The
 * sentinels are asked in order, as ioredis does; the node they name is then
 * checked with ROLE by the connection itself, after AUTH, since a sentinel's
 * answer may be stale for a moment during a failover. */
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

enum { ASKED_DOWN, ASKED_UNKNOWN, ASKED_FOUND };

/* One command to a sentinel and its reply; NULL with `fail` written. Over
 * TLS the socket is ours (tls.c): the request is formatted and the reply
 * parsed with hiredis's public formatter and reader, and the socket's
 * timeouts (redisSetTimeout) make a late answer a timeout. */
static redisReply *sentinel_cmd(redisContext *ctx, struct ssl_st *ssl, int argc, const char **argv, int timeout_ms,
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

/* Asks one sentinel; ASKED_FOUND with host and port written into `o`. */
static int ask(bullc_redis_opts *o, const struct bullc__sentinel_addr *s, char *why, size_t size) {
    redisContext *ctx = redisConnectWithTimeout(s->host, s->port, tv_ms(o->connect_timeout_ms));
    struct ssl_st *ssl = NULL;
    char fail[512];
    int res = ASKED_DOWN;
    if (!ctx || ctx->err) {
        bullc__note_reason(why, size, "sentinel %s:%d: %s", s->host, s->port, ctx ? ctx->errstr : "out of memory");
        goto out;
    }
    if (o->sentinel_tls) {
        /* the TLS settings, with the sentinel's own name to check */
        bullc_redis_opts so = *o;
        so.host = s->host;
        so.port = s->port;
        so.tls_server_name = NULL;
        bullc_error terr = {0};
        if (bullc__tls_connect(&so, ctx->fd, o->connect_timeout_ms, &ssl, &terr)) {
            bullc__note_reason(why, size, "sentinel %s:%d: %s", s->host, s->port, terr.message);
            goto out;
        }
    }
    redisSetTimeout(ctx, tv_ms(o->command_timeout_ms));
    redisReply *r;
    if (o->sentinel_password) {
        const char *a[3] = {"AUTH", o->sentinel_user ? o->sentinel_user : o->sentinel_password, o->sentinel_password};
        r = sentinel_cmd(ctx, ssl, o->sentinel_user ? 3 : 2, a, o->command_timeout_ms, fail, sizeof fail);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            /* the password is never in the reply: Redis says WRONGPASS */
            bullc__note_reason(why, size, "sentinel %s:%d refused AUTH: %s", s->host, s->port, r ? r->str : fail);
            freeReplyObject(r);
            goto out;
        }
        freeReplyObject(r);
    }
    const char *a[3] = {"SENTINEL", "get-master-addr-by-name", o->sentinel_master};
    r = sentinel_cmd(ctx, ssl, 3, a, o->command_timeout_ms, fail, sizeof fail);
    if (!r) /* a TLS port closes on a plain request */
        bullc__note_reason(why, size, "sentinel %s:%d: %s%s", s->host, s->port, fail,
                           !ssl && (strstr(fail, "closed") || strstr(fail, "reset")) ? " (a TLS port? --sentinel-tls)"
                                                                                     : "");
    else if (r->type == REDIS_REPLY_ERROR)
        bullc__note_reason(why, size, "sentinel %s:%d: %s%s", s->host, s->port, r->str,
                           strstr(r->str, "NOAUTH")
                               ? " (the sentinels' password: --sentinel-password or REDIS_SENTINEL_PASSWORD)"
                               : "");
    else if (r->type == REDIS_REPLY_NIL) {
        bullc__note_reason(why, size, "sentinel %s:%d knows no master named '%s'", s->host, s->port,
                           o->sentinel_master);
        res = ASKED_UNKNOWN;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        int64_t port;
        char *host = strdup(r->element[0]->str);
        if (host && bullc__parse_i64(r->element[1]->str, r->element[1]->len, &port) && port > 0 && port <= 65535) {
            free(o->host);
            o->host = host;
            o->port = (int)port;
            res = ASKED_FOUND;
        } else {
            free(host);
            bullc__note_reason(why, size, "sentinel %s:%d: unexpected answer", s->host, s->port);
        }
    } else
        bullc__note_reason(why, size, "sentinel %s:%d: unexpected answer", s->host, s->port);
    freeReplyObject(r);
out:
    if (ssl) bullc__tls_free(ssl);
    if (ctx) redisFree(ctx);
    return res;
}

int bullc__sentinel_resolve(bullc_redis_opts *o, bullc_error *err) {
    if (!o->nsentinels) return 0;
    if (!o->sentinel_master)
        return bullc__err(err, BULLC_EINVAL,
                          "Sentinel: no master name (redis+sentinel://.../MASTER or --sentinel-master)");
    char why[768] = "";
    bool unknown = false;
    o->sentinel_resolved = false;
    for (size_t i = 0; i < o->nsentinels; i++) {
        int res = ask(o, &o->sentinels[i], why, sizeof why);
        if (res == ASKED_FOUND) {
            o->sentinel_resolved = true;
            return 0;
        }
        unknown |= res == ASKED_UNKNOWN;
    }
    if (unknown)
        return bullc__err(err, BULLC_ECONN, "Sentinel: no sentinel knows a master named '%s' (%s)", o->sentinel_master,
                          why);
    return bullc__err(err, BULLC_ECONN, "Sentinel: no sentinel answered for master '%s' (%s)", o->sentinel_master, why);
}

bool bullc__sentinel_role_is_master(const redisReply *r, const bullc_redis_opts *o, bullc_error *err) {
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING &&
        !strcmp(r->element[0]->str, "master"))
        return true;
    const char *role = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING
                           ? r->element[0]->str
                       : r->type == REDIS_REPLY_ERROR ? r->str
                                                      : "?";
    bullc__err(err, BULLC_ECONN,
               "Sentinel: %s:%d, named master '%s' by a sentinel, is not a master (ROLE: %s); a failover may be "
               "under way",
               o->host, o->port, o->sentinel_master ? o->sentinel_master : "", role);
    return false;
}

int bullc_redis_opts_resolve(const bullc_redis_opts *opts, char *host, size_t host_size, int *port, bullc_error *err) {
    if (!opts || !host || !host_size || !port) return bullc__err(err, BULLC_EINVAL, "bullc_redis_opts_resolve: NULL");
    if (opts->unix_path) return bullc__err(err, BULLC_EINVAL, "a unix socket has no host and port");
    bullc_redis_opts t;
    if (bullc__redis_opts_copy(&t, opts)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__sentinel_resolve(&t, err);
    if (!rc && strlen(t.host) >= host_size) rc = bullc__err(err, BULLC_EINVAL, "host name longer than the buffer");
    if (!rc) {
        memcpy(host, t.host, strlen(t.host) + 1);
        *port = t.port;
    }
    bullc__redis_opts_clear(&t);
    return rc;
}
