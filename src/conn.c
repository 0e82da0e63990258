/* SPDX-License-Identifier: MIT */
/* A synchronous Redis connection: connect lazily, AUTH, SELECT, timeouts,
 * EVALSHA with NOSCRIPT fallback, reconnect after failures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/time.h>
#include <time.h>

#include "bullc-private.h"
#include "hiredis_glue.h"

int bullc__conn_init(bullc__conn *c, const bullc_redis_opts *opts, bullc_error *err) {
    memset(c, 0, sizeof *c);
    if (!(c->opts = calloc(1, sizeof *c->opts))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = opts ? (bullc__redis_opts_copy(c->opts, opts) ? BULLC_ENOMEM : 0) : 0;
    if (!opts) {
        bullc_redis_opts *d;
        free(c->opts);
        c->opts = NULL;
        if ((rc = bullc__redis_opts_default(&d, err)) == 0) c->opts = d;
        return rc;
    }
    if (rc) {
        free(c->opts);
        c->opts = NULL;
        return bullc__err(err, rc, "out of memory");
    }
    return 0;
}

void bullc__conn_drop(bullc__conn *c) {
    if (c->ssl) bullc__tls_free(c->ssl);
    c->ssl = NULL;
    if (c->ctx) redisFree(c->ctx);
    c->ctx = NULL;
    c->unread = 0;
    c->demoted = false;
}

void bullc__conn_close(bullc__conn *c) {
    bullc__conn_drop(c);
    bullc_redis_opts_free(c->opts);
    c->opts = NULL;
    free(c->client_name);
    c->client_name = NULL;
}

static struct timeval tv_ms(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Turns a hiredis context error into a bullc error, without the password
 * (hiredis never puts it in errstr; the described URL masks it). */
static int ctx_err(bullc__conn *c, bullc_error *err, const char *doing) {
    char where[256];
    bullc_redis_opts_describe(c->opts, where, sizeof where);
    int code = BULLC_ECONN;
    const char *msg = c->ctx ? c->ctx->errstr : "cannot allocate a context";
    if (c->ctx && c->ctx->err == REDIS_ERR_IO &&
        (errno == EAGAIN || errno == ETIMEDOUT || errno == EWOULDBLOCK || strstr(msg, "timed out")))
        code = BULLC_ETIMEDOUT;
    if (!c->ctx) code = BULLC_ENOMEM;
    if (code == BULLC_ETIMEDOUT && strcmp(doing, "cannot connect to") != 0)
        bullc__err(err, code, BULLC__TIMEOUT_MSG, where, c->opts->command_timeout_ms);
    else if (code == BULLC_ETIMEDOUT)
        bullc__err(err, code, BULLC__CONNECT_TIMEOUT_MSG, where, c->opts->connect_timeout_ms);
    else
        /* a TLS port closes a plain connection at its first bytes */
        bullc__err(err, code, "%s %s: %s%s", doing, where, msg[0] ? msg : strerror(errno),
                   !c->opts->tls && (strstr(msg, "closed the connection") || strstr(msg, "reset by peer"))
                       ? " (if that port speaks TLS, use rediss://)"
                       : "");
    bullc__conn_drop(c);
    return code;
}

/* hiredis's calls that may write, with SIGPIPE kept from the process
 * (sigpipe.c). */
static int buffer_write(redisContext *ctx, int *done) {
    bullc__sigpipe g;
    bullc__sigpipe_block(&g);
    int rc = redisBufferWrite(ctx, done);
    bullc__sigpipe_unblock(&g, rc != REDIS_OK);
    return rc;
}
static int get_reply(redisContext *ctx, void **r) {
    bullc__sigpipe g;
    bullc__sigpipe_block(&g);
    int rc = redisGetReply(ctx, r);
    bullc__sigpipe_unblock(&g, rc != REDIS_OK);
    return rc;
}

/* Over TLS, hiredis's buffers stay in use and the socket is ours: the
 * output buffer is written with SSL_write, and what SSL_read decrypts feeds
 * the reply reader. A blocking socket with SO_SNDTIMEO/SO_RCVTIMEO set
 * (redisSetTimeout) turns a late answer into "would block": a timeout. */
static int tls_timeout(bullc__conn *c, bullc_error *err) {
    char where[256];
    bullc__err(err, BULLC_ETIMEDOUT, BULLC__TIMEOUT_MSG, bullc_redis_opts_describe(c->opts, where, sizeof where),
               c->opts->command_timeout_ms);
    bullc__conn_drop(c);
    return BULLC_ETIMEDOUT;
}
static int tls_fail(bullc__conn *c, int rc, bullc_error *err) {
    char where[256];
    bullc__err_prefix(err, "%s: ", bullc_redis_opts_describe(c->opts, where, sizeof where));
    bullc__conn_drop(c);
    return rc;
}
static int tls_flush(bullc__conn *c, bullc_error *err) {
    size_t len;
    const char *ob;
    while ((ob = bullc__hiredis_out(c->ctx, &len)), len) {
        ssize_t n = bullc__tls_write(c->ssl, ob, len, err);
        if (n < 0) return tls_fail(c, (int)n, err);
        if (n == 0) return tls_timeout(c, err);
        bullc__hiredis_out_consumed(c->ctx, (size_t)n);
    }
    return 0;
}
static int tls_get_reply(bullc__conn *c, void **r, bullc_error *err) {
    int rc = tls_flush(c, err);
    if (rc) return rc;
    char buf[16 * 1024];
    while (!*r) {
        if (redisGetReplyFromReader(c->ctx, r) != REDIS_OK) {
            char where[256];
            bullc__err(err, BULLC_EPROTO, "bad reply from %s: %s",
                       bullc_redis_opts_describe(c->opts, where, sizeof where), c->ctx->errstr);
            bullc__conn_drop(c);
            return BULLC_EPROTO;
        }
        if (*r) break;
        ssize_t n = bullc__tls_read(c->ssl, buf, sizeof buf, NULL, err);
        if (n < 0) return tls_fail(c, (int)n, err);
        if (n == 0) return tls_timeout(c, err);
        bullc__hiredis_feed(c->ctx, buf, (size_t)n);
    }
    return 0;
}

/* One command and its reply, straight on the socket (no reconnect). */
static redisReply *roundtrip(bullc__conn *c, int argc, const char **argv, const char *doing, bullc_error *err,
                             int *rc) {
    if (!c->ssl) {
        redisReply *r = bullc__command_argv(c->ctx, argc, argv);
        if (!r) *rc = ctx_err(c, err, doing);
        return r;
    }
    void *r = NULL;
    if (redisAppendCommandArgv(c->ctx, argc, argv, NULL) != REDIS_OK) {
        *rc = bullc__err(err, BULLC_ENOMEM, "cannot queue a command");
        bullc__conn_drop(c);
    } else
        *rc = tls_get_reply(c, &r, err);
    return r;
}

/* The hand-shake (conn_setup.c), one command and its reply at a time. */
static int setup(bullc__conn *c, bullc_error *err) {
    bullc__conn_setup s;
    bullc__conn_setup_build(&s, c->opts, c->client_name);
    for (int i = 0; i < s.n; i++) {
        bullc__setup_cmd *cmd = &s.cmd[i];
        int rc = 0;
        redisReply *r = roundtrip(c, cmd->argc, cmd->argv,
                                  cmd->kind == BULLC__SETUP_ROLE   ? "while asking the role of"
                                  : cmd->kind == BULLC__SETUP_NAME ? "while naming the connection to"
                                                                   : "while setting up the connection to",
                                  err, &rc);
        if (!r) return rc;
        rc = bullc__conn_setup_check(cmd->kind, r, c->opts, err);
        freeReplyObject(r);
        if (rc) {
            bullc__conn_drop(c);
            return rc;
        }
    }
    return 0;
}

static int connect_once(bullc__conn *c, bullc_error *err);

static int64_t mono_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Whether the sentinels still name the node this connection is on. A
 * synchronous connection has no loop to hear +switch-master on, and after a
 * SENTINEL FAILOVER the old master accepts writes (lost once it is demoted)
 * for seconds: so a call that finds the connection live after a second or
 * more without a reply asks the sentinels first. Only then: a busy producer
 * would otherwise pay a sentinel round trip (or, with a dead sentinel, its
 * connect timeout) every second on its own path, and it meets READONLY or
 * the old master's close soon enough, which move it. A sentinel that does
 * not answer keeps the connection. */
static bool sentinel_moved(bullc__conn *c) {
    int64_t now = mono_ms();
    if (now - c->active_ms < 1000) return false;
    c->active_ms = now; /* a call may ensure twice before its first reply */
    bullc_redis_opts t;
    if (bullc__redis_opts_copy(&t, c->opts)) return false;
    bool moved = !bullc__sentinel_resolve(&t, NULL) && (t.port != c->opts->port || strcmp(t.host, c->opts->host));
    bullc__redis_opts_clear(&t);
    return moved;
}

static void sleep_ms(uint64_t ms) {
    nanosleep(&(struct timespec){(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L}, NULL);
}

int bullc__conn_ensure(bullc__conn *c, bullc_error *err) {
    if (c->ctx) {
        /* A synchronous connection never has unread data between calls: if
         * its socket is readable, the server closed it (an idle timeout, a
         * restart, CLIENT KILL). Reconnecting now, before anything is sent,
         * cannot apply a command twice. */
        struct pollfd p = {c->ctx->fd, POLLIN, 0};
        if ((poll(&p, 1, 0) == 0 || (c->ssl && bullc__tls_alive(c->ssl, c->ctx->fd))) &&
            !(c->opts->nsentinels && sentinel_moved(c)))
            return 0;
        bullc__conn_drop(c);
    }
    if (!bullc__opts_resolved(c->opts)) return connect_once(c, err);
    /* During a failover the sentinels may name the old master, or a node
     * not yet promoted, for a moment (a cluster's slot map, likewise): ask
     * again for up to the connect timeout before giving up. Sentinels or
     * seed nodes that do not answer, or know no such master, are the answer
     * at once. */
    int64_t t0 = mono_ms();
    for (unsigned attempt = 1;; attempt++) {
        int rc = bullc__sentinel_resolve(c->opts, err);
        c->active_ms = mono_ms();
        if (!rc) rc = bullc__cluster_resolve(c->opts, err);
        if (rc) return rc;
        rc = connect_once(c, err);
        if (!rc || rc == BULLC_EINVAL || rc == BULLC_EAUTH || rc == BULLC_ENOMEM) return rc;
        uint64_t wait = bullc__retry_delay_ms(attempt, BULLC__RECONNECT_BASE_MS, BULLC__RECONNECT_CAP_MS);
        if (mono_ms() - t0 + (int64_t)wait > c->opts->connect_timeout_ms) return rc;
        sleep_ms(wait);
    }
}

static int connect_once(bullc__conn *c, bullc_error *err) {
    const bullc_redis_opts *o = c->opts;
    struct timeval ct = tv_ms(o->connect_timeout_ms);
    c->ctx =
        o->unix_path ? redisConnectUnixWithTimeout(o->unix_path, ct) : redisConnectWithTimeout(o->host, o->port, ct);
    if (!c->ctx || c->ctx->err) return ctx_err(c, err, "cannot connect to");
    if (o->tls && !o->unix_path) {
        int trc = bullc__tls_connect(o, c->ctx->fd, o->connect_timeout_ms, &c->ssl, err);
        if (trc) {
            bullc__conn_drop(c);
            return trc;
        }
    }
    /* TCP keepalive does not apply to a unix socket, and hiredis leaves the
     * context in an error state when setting it fails there. */
    if (!o->unix_path) redisEnableKeepAlive(c->ctx);
    if (redisSetTimeout(c->ctx, tv_ms(o->command_timeout_ms)) != REDIS_OK)
        return ctx_err(c, err, "cannot set timeout on");
    int rc = setup(c, err);
    if (rc) return rc;
    c->generation++;
    return 0;
}

/* A READONLY reply through Sentinel: the node is a replica now (a
 * failover). A MOVED in a cluster: the slot is served elsewhere (written
 * into the settings). Dropping the connection once no reply is due makes
 * the next call connect where the master went. */
static void got_reply(bullc__conn *c, const redisReply *r) {
    if (c->unread) c->unread--;
    /* Only the last reply a call waits for dates the idleness: a call
     * ensures its connection only once no reply is due, so the clock is read
     * once per call or pipeline, not once per reply. */
    if (!c->unread && c->opts->nsentinels) c->active_ms = mono_ms();
    int cls = bullc__reply_class(r, c->opts);
    if (cls == BULLC__REPLY_READONLY ||
        (cls == BULLC__REPLY_MOVED && bullc__cluster_redirect(c->opts, r) == BULLC__CLUSTER_MOVED))
        c->demoted = true;
    if (c->demoted && !c->unread) bullc__conn_drop(c);
}

/* Connects unless replies are pending (then the connection is live by
 * construction), and counts one more reply to read. */
static int begin_append(bullc__conn *c, bullc_error *err) {
    int rc = c->ctx && c->unread ? 0 : bullc__conn_ensure(c, err);
    if (!rc) c->unread++;
    return rc;
}

int bullc__conn_append(bullc__conn *c, int argc, const char **argv, const size_t *lens, bullc_error *err) {
    size_t stack[BULLC__RESP_STACK_ARGS], *heap;
    const size_t *l = bullc__resp_arg_lens(argc, argv, lens, stack, &heap);
    if (!l) return bullc__err(err, BULLC_ENOMEM, "cannot queue a command");
    int rc = begin_append(c, err);
    /* straight into hiredis's output buffer, where redisAppendCommandArgv
     * would format a copy first */
    if (!rc && bullc__hiredis_append_resp(c->ctx, argc, argv, l))
        rc = bullc__err(err, BULLC_ENOMEM, "cannot queue a command");
    free(heap);
    return rc;
}

int bullc__conn_append_script(bullc__conn *c, const bullc__script *s, bool eval, int argc, const char *const *argv,
                              const size_t *lens, bullc_error *err) {
    if (argc < s->numkeys)
        return bullc__err(err, BULLC_EINVAL, "%s: needs %d keys, got %d arguments", s->id, s->numkeys, argc);
    size_t stack[BULLC__RESP_STACK_ARGS], *heap;
    const size_t *l = bullc__resp_arg_lens(argc, argv, lens, stack, &heap);
    if (!l) return bullc__err(err, BULLC_ENOMEM, "cannot queue a command");
    int rc = begin_append(c, err);
    if (!rc && bullc__hiredis_append_script(c->ctx, s, eval, argc, argv, l))
        rc = bullc__err(err, BULLC_ENOMEM, "cannot queue a command");
    free(heap);
    return rc;
}

int bullc__conn_flush_some(bullc__conn *c, bullc_error *err) {
    int done = 0;
    size_t len;
    if (!c->ctx) return bullc__err(err, BULLC_ECONN, "connection lost");
    if (c->ssl) return tls_flush(c, err);
    if ((bullc__hiredis_out(c->ctx, &len), len) && buffer_write(c->ctx, &done) != REDIS_OK)
        return ctx_err(c, err, "lost the connection to");
    return 0;
}

/* Busy polling (bullc_redis_opts_set_busy_poll): sends what is buffered,
 * then checks the socket without sleeping until a reply arrives or `us`
 * have passed; the blocking read that follows then finds it at once. */
static void spin_for_reply(redisContext *ctx, int us) {
    int done = 0;
    size_t len;
    while ((bullc__hiredis_out(ctx, &len), len) && !done)
        if (buffer_write(ctx, &done) != REDIS_OK) return;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct pollfd p = {ctx->fd, POLLIN, 0};
    do {
        if (poll(&p, 1, 0) != 0) return;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

int bullc__conn_read(bullc__conn *c, redisReply **reply, bullc_error *err) {
    void *r = NULL;
    if (!c->ctx) return bullc__err(err, BULLC_ECONN, "connection lost");
    if (c->ssl) {
        int rc = tls_get_reply(c, &r, err);
        if (rc) return rc;
        got_reply(c, r);
        *reply = r;
        return 0;
    }
    if (c->opts->busy_poll_us > 0) {
        if (redisGetReplyFromReader(c->ctx, &r) != REDIS_OK) return ctx_err(c, err, "lost the connection to");
        if (!r) spin_for_reply(c->ctx, c->opts->busy_poll_us);
    }
    if (!r && (get_reply(c->ctx, &r) != REDIS_OK || !r)) return ctx_err(c, err, "lost the connection to");
    got_reply(c, r);
    *reply = r;
    return 0;
}

/* In a cluster, whether a lone command's reply is a redirection to follow:
 * MOVED, ASK, TRYAGAIN and CLUSTERDOWN all say the command did not run, so
 * sending it again cannot apply it twice. A MOVED already repointed the
 * settings (got_reply); the others wait as the retry policy says
 * (backoff.c, as the asynchronous connection does) while a slot migrates
 * or a failover ends. Not inside MULTI: Redis refused to queue it, and
 * EXEC will say the transaction was not run.
 * Frees the reply when it says to resend. */
static bool cluster_resend(bullc__conn *c, redisReply *r, int *tries) {
    int cls = bullc__reply_class(r, c->opts);
    if ((cls != BULLC__REPLY_MOVED && cls != BULLC__REPLY_RETRY) || c->unread || c->in_multi || ++*tries > 50)
        return false;
    freeReplyObject(r);
    if (cls == BULLC__REPLY_MOVED) return true;
    sleep_ms(bullc__retry_delay_ms((unsigned)*tries, BULLC__REDIRECT_BASE_MS, BULLC__REDIRECT_CAP_MS));
    return true;
}

int bullc__conn_command(bullc__conn *c, redisReply **reply, bullc_error *err, int argc, const char **argv,
                        const size_t *lens) {
    int rc, tries = 0;
    redisReply *r = NULL;
    do {
        if ((rc = bullc__conn_append(c, argc, argv, lens, err))) return rc;
        if ((rc = bullc__conn_read(c, &r, err))) return rc;
    } while (cluster_resend(c, r, &tries));
    if (r->type == REDIS_REPLY_ERROR) {
        rc = bullc__reply_err(r, err);
        freeReplyObject(r);
        return rc;
    }
    *reply = r;
    return 0;
}

int bullc__conn_eval(bullc__conn *c, const bullc__script *s, int argc, const char **argv, const size_t *lens,
                     redisReply **reply, bullc_error *err) {
    int rc, tries = 0;
    redisReply *r = NULL;
    do {
        if ((rc = bullc__conn_append_script(c, s, false, argc, argv, lens, err))) return rc;
        if ((rc = bullc__conn_read(c, &r, err))) return rc;
        if (bullc__reply_class(r, c->opts) == BULLC__REPLY_NOSCRIPT) {
            /* SCRIPT FLUSH, a restart, a failover or a node new to the slot
             * lacks the script: EVAL sends the text once and caches it again
             * under the same SHA1. */
            freeReplyObject(r);
            if ((rc = bullc__conn_append_script(c, s, true, argc, argv, lens, err)) ||
                (rc = bullc__conn_read(c, &r, err)))
                return rc;
        }
    } while (cluster_resend(c, r, &tries));
    if (r->type == REDIS_REPLY_ERROR) {
        rc = bullc__reply_err(r, err);
        /* the script's name helps with a script's error, not with a password */
        if (rc != BULLC_EAUTH) bullc__err_prefix(err, "%s: ", s->id);
        freeReplyObject(r);
        return rc;
    }
    *reply = r;
    return 0;
}

int bullc__conn_load_scripts(bullc__conn *c, const bullc__script *const *scripts, size_t n, unsigned *loaded,
                             bullc_error *err) {
    if (*loaded == c->generation) return 0;
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        const char *argv[] = {"SCRIPT", "LOAD", scripts[k]->text};
        size_t lens[] = {6, 4, scripts[k]->len};
        rc = bullc__conn_append(c, 3, argv, lens, err);
    }
    if (rc) {
        bullc__conn_drop(c);
        return rc;
    }
    redisReply *r = NULL;
    for (size_t k = 0; k < n; k++) {
        if ((rc = bullc__conn_read(c, &r, rc ? NULL : err))) return rc;
        int lrc = r->type == REDIS_REPLY_ERROR ? bullc__reply_err(r, rc ? NULL : err) : 0;
        if (!rc) rc = lrc;
        freeReplyObject(r);
    }
    if (!rc) *loaded = c->generation;
    return rc;
}
