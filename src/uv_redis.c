/* SPDX-License-Identifier: MIT */
/* A libuv adapter for hiredis's async contexts, in place of hiredis's own.
 *
 * hiredis's adapters/libuv.h returns early when uv_poll reports an error
 * status; libuv reports a socket error (POLLERR after a reset) exactly that
 * way and stops the handle, so the connection would sit dead, unnoticed,
 * until a deadline. This adapter lets hiredis read instead, which surfaces
 * the error and runs the disconnect callback at once. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bullc-private.h"
#include "hiredis_glue.h"
#include "uv_redis.h"

typedef struct uv_events {
    redisAsyncContext *context;
    /* TLS: the settings (owned by the aconn, which outlives the context) and
     * the session, NULL until the TCP connect completes */
    const bullc_redis_opts *tls_opts;
    struct ssl_st *ssl;
    bool tls_up; /* handshake done: the context counts as connected */
    uv_poll_t handle;
    uv_prepare_t flush; /* writes queued output once per loop iteration */
    uv_idle_t spin;     /* busy polling: keeps the loop from sleeping */
    uint64_t spin_ns, spin_until;
    int events;
    int open_handles;
    bool write_wanted;
} uv_events;

/* A failed write frees the context, running its callbacks, and ev_cleanup
 * clears p->context: that, or an error left on the context, is the failure. */
static bool write_out(uv_events *p);
static void ev_set(uv_events *p, int events);
static void handle_write(uv_events *p) {
    if (write_out(p)) return;
    /* hiredis writes with write(): SIGPIPE is kept from the process around
     * it (sigpipe.c) */
    bullc__sigpipe g;
    bullc__sigpipe_block(&g);
    redisAsyncHandleWrite(p->context);
    bullc__sigpipe_unblock(&g, !p->context || p->context->err);
}

/* Writes from the start of the output: the bytes taken, 0 when the socket
 * would block, or -1 with err filled. A plain socket is written with send()
 * and MSG_NOSIGNAL, which cannot raise SIGPIPE, so the two signal-mask calls
 * sigpipe.c wraps around hiredis's write() are saved on every write (one per
 * job at concurrency 1, where each system call is on the job's round trip). */
static ssize_t transport_write(uv_events *p, const char *ob, size_t len, bullc_error *err) {
    if (p->tls_opts) return bullc__tls_write(p->ssl, ob, len, err);
#ifdef MSG_NOSIGNAL
    for (;;) {
        ssize_t n = send(p->context->c.fd, ob, len, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return bullc__err(err, BULLC_ECONN, "%s", strerror(errno)); /* as hiredis words it */
    }
#else
    return bullc__err(err, BULLC_ESYS, "no MSG_NOSIGNAL"); /* not reached: write_out leaves it to hiredis */
#endif
}

/* A connected socket's output, written here rather than by hiredis (the
 * buffer is hiredis's own, consumed as hiredis would), over TLS or plain.
 * False: left to hiredis (a plain socket not connected yet, whose connect
 * hiredis detects, or a system without MSG_NOSIGNAL). */
static bool write_out(uv_events *p) {
    redisAsyncContext *ac = p->context;
    if (p->tls_opts) {
        if (!p->tls_up) return true; /* the handshake sends what is queued when done */
    } else {
#ifdef MSG_NOSIGNAL
        if (!bullc__hiredis_is_connected(ac)) return false;
#else
        return false;
#endif
    }
    bullc_error err;
    size_t len;
    const char *ob;
    while ((ob = bullc__hiredis_out(&ac->c, &len)), len) {
        ssize_t n = transport_write(p, ob, len, &err);
        if (n < 0) {
            bullc__hiredis_fail(ac, err.message);
            return true;
        }
        if (n == 0) {
            ev_set(p, p->events | UV_WRITABLE | UV_READABLE);
            return true;
        }
        bullc__hiredis_out_consumed(&ac->c, (size_t)n);
    }
    ev_set(p, (p->events & ~UV_WRITABLE) | UV_READABLE);
    return true;
}

static void tls_poll(uv_events *p, int status, int events);
static void ev_poll(uv_poll_t *handle, int status, int events) {
    uv_events *p = handle->data;
    if (p->tls_opts) {
        tls_poll(p, status, events);
        return;
    }
    if (status < 0) events = UV_READABLE; /* let hiredis hit the error */
    if (p->context && (events & UV_READABLE)) redisAsyncHandleRead(p->context);
    if (p->context && (events & UV_WRITABLE)) handle_write(p);
}

/* hiredis asks for write interest on every command it queues: restarting
 * the poll each time costs libuv a failing epoll_ctl per call, so only a
 * change of the event set reaches it. */
static void ev_set(uv_events *p, int events) {
    if (events == p->events) return;
    p->events = events;
    if (events)
        uv_poll_start(&p->handle, events, ev_poll);
    else
        uv_poll_stop(&p->handle);
}

/* Once connected, output is written just before the loop next waits for
 * I/O (a prepare handle), in one write for all the commands queued meanwhile:
 * the socket is nearly always writable, and arming write interest per
 * command costs two epoll_ctl calls for nothing. Writing here, not inside
 * the call that queued the command, keeps callbacks from ever running
 * inside that call when the write fails. */
/* Busy polling (bullc_redis_opts_set_busy_poll): an active idle handle makes
 * libuv poll for I/O without blocking, so while a reply is due the loop
 * spins instead of sleeping, up to spin_ns after the last request sent. */
static void ev_spin(uv_idle_t *h) {
    uv_events *p = h->data;
    if (!p->context || !bullc__hiredis_replies_due(p->context) || uv_hrtime() > p->spin_until) uv_idle_stop(h);
}

static void ev_flush(uv_prepare_t *h) {
    uv_events *p = h->data;
    uv_prepare_stop(h);
    if (!p->context || !p->write_wanted) return;
    p->write_wanted = false;
    if (p->spin_ns) {
        p->spin_until = uv_hrtime() + p->spin_ns;
        uv_idle_start(&p->spin, ev_spin);
    }
    handle_write(p);
    /* not all written: hiredis asked again; wait for writability */
    if (p->context && p->write_wanted) ev_set(p, p->events | UV_WRITABLE);
}

static void ev_add_read(void *d) { ev_set(d, ((uv_events *)d)->events | UV_READABLE); }
static void ev_del_read(void *d) { ev_set(d, ((uv_events *)d)->events & ~UV_READABLE); }
static void ev_add_write(void *d) {
    uv_events *p = d;
    if (p->context && bullc__hiredis_is_connected(p->context) && !(p->events & UV_WRITABLE)) {
        p->write_wanted = true;
        uv_prepare_start(&p->flush, ev_flush);
    } else {
        ev_set(p, p->events | UV_WRITABLE); /* the connect is detected by writability */
    }
}
static void ev_del_write(void *d) {
    uv_events *p = d;
    p->write_wanted = false;
    ev_set(p, p->events & ~UV_WRITABLE);
}
static void ev_closed(uv_handle_t *h) {
    uv_events *p = h->data;
    if (--p->open_handles == 0) free(p);
}
static void ev_cleanup(void *d) {
    uv_events *p = d;
    p->context = NULL;
    if (p->ssl) bullc__tls_free(p->ssl);
    p->ssl = NULL;
    uv_close((uv_handle_t *)&p->handle, ev_closed);
    uv_close((uv_handle_t *)&p->flush, ev_closed);
    uv_close((uv_handle_t *)&p->spin, ev_closed);
}

/* Before the handshake is done, a failed connect; after, a lost
 * connection (hiredis_glue.c). */
static void tls_fail(uv_events *p, const char *why) { bullc__hiredis_fail(p->context, why); }

static void tls_read(uv_events *p) {
    char buf[16 * 1024];
    bullc_error err;
    bool want_write = false;
    for (;;) {
        ssize_t n = bullc__tls_read(p->ssl, buf, sizeof buf, &want_write, &err);
        if (n < 0) {
            tls_fail(p, err.message);
            return;
        }
        if (n == 0) break;
        if (bullc__hiredis_feed(&p->context->c, buf, (size_t)n) != REDIS_OK) {
            tls_fail(p, "bad reply from Redis");
            return;
        }
    }
    if (want_write) ev_set(p, p->events | UV_WRITABLE);
    bullc__hiredis_process_callbacks(p->context); /* may free the context (ev_cleanup) */
}

/* The TCP connect completes (writability), then the handshake runs in steps
 * as the socket allows; when it is done, the context is marked connected as
 * hiredis marks it, and the commands queued meanwhile (AUTH, SELECT, ...)
 * go out. */
static void tls_handshake(uv_events *p, int status) {
    redisAsyncContext *ac = p->context;
    bullc_error err;
    if (!p->ssl) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (status < 0 || getsockopt(ac->c.fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
            tls_fail(p, strerror(soerr ? soerr : status < 0 ? -status : errno));
            return;
        }
        if (bullc__tls_start(p->tls_opts, ac->c.fd, &p->ssl, &err)) {
            tls_fail(p, err.message);
            return;
        }
    }
    int rc = bullc__tls_handshake(p->ssl, p->tls_opts, &err);
    if (rc < 0) {
        tls_fail(p, err.message);
        return;
    }
    if (rc > 0) {
        ev_set(p, rc == 1 ? UV_READABLE : UV_WRITABLE);
        return;
    }
    p->tls_up = true;
    bullc__hiredis_mark_connected(ac);
    if (p->context) write_out(p);
}

static void tls_poll(uv_events *p, int status, int events) {
    if (!p->context) return;
    if (!p->tls_up) {
        tls_handshake(p, status);
        return;
    }
    if (status < 0) events = UV_READABLE; /* SSL_read reports the error */
    if (events & UV_READABLE) tls_read(p);
    if (p->context && (events & UV_WRITABLE)) write_out(p);
}

int bullc__uv_redis_attach(redisAsyncContext *ac, uv_loop_t *loop, int busy_poll_us, const bullc_redis_opts *tls_opts) {
    uv_events *p = calloc(1, sizeof *p);
    if (!p) return REDIS_ERR;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    uv_prepare_init(loop, &p->flush);
    uv_idle_init(loop, &p->spin);
    p->open_handles = 3;
    p->spin_ns = (uint64_t)busy_poll_us * 1000;
    p->tls_opts = tls_opts;
    p->context = ac;
    p->handle.data = p;
    p->flush.data = p;
    p->spin.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return REDIS_OK;
}
