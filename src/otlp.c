/* SPDX-License-Identifier: MIT */
/* The OTLP/HTTP JSON exporter: finished spans wait in a bounded queue and
 * one thread of the tracer's own sends them in batches with a blocking
 * socket, so the loop that processes jobs never waits for the collector. A
 * full queue drops the new span, a failed or late export its batch; both are
 * counted (bullc_tracer_dropped, bullc-worker's /metrics). */
#include <errno.h>
#include <netdb.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bullc-private.h"

static int64_t mono_ms(void) { return (int64_t)(uv_hrtime() / 1000000); }

/* "http[s]://host[:port]/path", the host possibly an IPv6 literal in
 * brackets (getaddrinfo wants it without them; the Host header keeps them). */
static int split_url(bullc_tracer *t, const char *url, bool tls) {
    const char *h = url + (tls ? 8 : 7), *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *host = h, *end = h + hl, *colon;
    if (h[0] == '[') {
        const char *close = memchr(h, ']', hl);
        if (!close) return BULLC_EINVAL;
        host = h + 1;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (!colon && close + 1 != end) return BULLC_EINVAL;
        t->host = strndup(host, (size_t)(close - host));
    } else {
        colon = memchr(h, ':', hl);
        t->host = strndup(h, colon ? (size_t)(colon - h) : hl);
    }
    t->host_header = strndup(h, colon ? (size_t)(colon - h) : hl);
    t->port = colon ? strndup(colon + 1, (size_t)(end - colon - 1)) : strdup(tls ? "443" : "80");
    t->path = strdup(slash ? slash : "/");
    return t->host && t->host_header && t->port && t->path && *t->host && *t->port ? 0 : BULLC_EINVAL;
}

/* tls.c's errors in the exporter's terms */
static const bullc__tls_words otlp_words = {
    .scheme = "https://",
    .ca = "OTEL_EXPORTER_OTLP_CERTIFICATE",
    .client_cert = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
    .server_name = " (host name check failed: the endpoint's host must be one the certificate names)",
    .plain = "use an http:// endpoint if the collector has no TLS",
    .timeout = "OTEL_EXPORTER_OTLP_TIMEOUT",
};

/* tls.c takes a connection's settings: the exporter's, with its own words. */
static int tls_settings(bullc_tracer *t, const bullc_tracer_opts *o) {
    int port = atoi(t->port);
    if (port <= 0 || port > 65535) return BULLC_EINVAL;
    if (bullc_redis_opts_new(&t->tls)) return BULLC_ENOMEM;
    t->tls->tls = true;
    t->tls->tls_words = &otlp_words;
    int rc = bullc_redis_opts_set_host(t->tls, t->host, port);
    if (!rc && o->tls_ca) rc = bullc__tls_set_ca_path(t->tls, o->tls_ca);
    if (!rc && o->tls_cert) rc = bullc_redis_opts_set_tls_cert(t->tls, o->tls_cert, o->tls_key);
    return rc;
}

static sds kv_attr(sds b, const char *k, const char *v, bool comma) {
    b = sdscat(b, comma ? ",{\"key\":" : "{\"key\":");
    if (b) b = bullc__json_quote(b, k, strlen(k));
    if (b) b = sdscat(b, ",\"value\":{\"stringValue\":");
    if (b) b = bullc__json_quote(b, v, strlen(v));
    return b ? sdscat(b, "}}") : NULL;
}

static int build_fixed(bullc_tracer *t, const bullc_tracer_opts *o) {
    sds r = sdsnew("{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    if (r) r = kv_attr(r, "service.name", o->service, false);
    if (r) r = kv_attr(r, "telemetry.sdk.name", "bullc", true);
    if (r) r = kv_attr(r, "telemetry.sdk.version", bullc_version(), true);
    for (const cJSON *c = o->resource->child; c && r; c = c->next) r = kv_attr(r, c->string, c->valuestring, true);
    /* bullmq-otel's tracer: trace.getTracer('bullmq') */
    if (r) r = sdscat(r, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"bullmq\"},\"spans\":[");
    t->resource = r;
    sds h = sdscatprintf(sdsempty(),
                         "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                         "User-Agent: bullc/%s\r\nConnection: close\r\n",
                         t->path, t->host_header, t->port, bullc_version());
    for (const cJSON *c = o->headers->child; c && h; c = c->next)
        h = sdscatprintf(h, "%s: %s\r\n", c->string, c->valuestring);
    t->head = h;
    return r && h ? 0 : BULLC_ENOMEM;
}

void bullc__tracer_push(bullc_tracer *t, sds span) {
    if (!span) {
        atomic_fetch_add(&t->dropped, 1);
        return;
    }
    uv_mutex_lock(&t->mu);
    if (t->count == t->max_queue || t->stopping) {
        uv_mutex_unlock(&t->mu);
        sdsfree(span);
        atomic_fetch_add(&t->dropped, 1);
        return;
    }
    t->ring[(t->head_i + t->count++) % t->max_queue] = span;
    bool wake = t->count == t->max_batch;
    uv_mutex_unlock(&t->mu);
    if (wake) uv_cond_signal(&t->cv);
}

/* ---- HTTP ------------------------------------------------------------------ */

static int wait_fd(int fd, short ev, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) return -1;
        struct pollfd p = {fd, ev, 0};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return -1;
    }
}

static int connect_to(const bullc_tracer *t, int64_t deadline, bullc_error *err) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(t->host, t->port, &hints, &res);
    if (g) return bullc__err(err, BULLC_ECONN, "cannot resolve '%s': %s", t->host, gai_strerror(g));
    int fd = -1, e = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        e = errno;
        if (e == EINPROGRESS) {
            socklen_t el = sizeof e;
            if (wait_fd(fd, POLLOUT, deadline))
                e = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el))
                e = errno;
            if (!e) break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) bullc__err(err, BULLC_ECONN, "cannot connect: %s", strerror(e ? e : ECONNREFUSED));
    return fd;
}

/* One exchange's transport: the socket, or TLS over it (tls.c). Both are
 * non-blocking; 0 bytes moved means wait for `*ev` until the deadline. */
typedef struct xport {
    int fd;
    struct ssl_st *ssl;
} xport;

static ssize_t link_send(xport *l, const char *buf, size_t n, short *ev, bullc_error *err) {
    *ev = POLLOUT;
    if (l->ssl) return bullc__tls_write(l->ssl, buf, n, err);
    ssize_t r = send(l->fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0 || errno == EAGAIN || errno == EINTR) return r > 0 ? r : 0;
    return bullc__err(err, BULLC_ECONN, "send failed: %s", strerror(errno));
}

static ssize_t link_recv(xport *l, char *buf, size_t n, short *ev, bullc_error *err) {
    *ev = POLLIN;
    if (l->ssl) {
        bool ww = false;
        ssize_t r = bullc__tls_read(l->ssl, buf, n, &ww, err);
        if (ww) *ev = POLLOUT;
        return r;
    }
    ssize_t r = recv(l->fd, buf, n, 0);
    if (r > 0) return r;
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return bullc__err(err, BULLC_ECONN, "%s", r ? strerror(errno) : "the collector closed the connection");
}

static int timed_out(bullc_error *err, const char *doing) {
    return bullc__err(err, BULLC_ETIMEDOUT, "no %s within the export timeout (OTEL_EXPORTER_OTLP_TIMEOUT)", doing);
}

/* POSTs the body; 0 on a 2xx answer, else err says why. */
static int post(const bullc_tracer *t, const sds body, int64_t deadline, bullc_error *err) {
    xport l = {connect_to(t, deadline, err), NULL};
    if (l.fd < 0) return -1;
    int rc = -1;
    sds req = NULL;
    if (t->tls) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            timed_out(err, "TLS handshake");
            goto out;
        }
        if (bullc__tls_connect(t->tls, l.fd, left > INT_MAX ? INT_MAX : (int)left, &l.ssl, err)) goto out;
    }
    req = sdscatprintf(sdsdup(t->head), "Content-Length: %zu\r\n\r\n", sdslen(body));
    if (!req) {
        bullc__err(err, BULLC_ENOMEM, "out of memory");
        goto out;
    }
    const sds parts[2] = {req, body};
    short ev;
    for (int i = 0; i < 2; i++)
        for (size_t off = 0; off < sdslen(parts[i]);) {
            ssize_t n = link_send(&l, parts[i] + off, sdslen(parts[i]) - off, &ev, err);
            if (n < 0) goto out;
            off += (size_t)n;
            if (!n && wait_fd(l.fd, ev, deadline)) {
                timed_out(err, "room to send");
                goto out;
            }
        }
    /* only the status line matters: "HTTP/1.1 200 ..." */
    char buf[64];
    size_t got = 0;
    while (got < 12) {
        ssize_t n = link_recv(&l, buf + got, sizeof buf - 1 - got, &ev, err);
        if (n < 0) goto out;
        got += (size_t)n;
        /* TLS may hold decrypted bytes the socket no longer signals */
        if (!n && !(l.ssl && bullc__tls_pending(l.ssl)) && wait_fd(l.fd, ev, deadline)) {
            timed_out(err, "answer");
            goto out;
        }
    }
    buf[got] = 0;
    if (!strncmp(buf, "HTTP/1.", 7) && buf[9] == '2') {
        rc = 0;
    } else {
        char *eol = strpbrk(buf, "\r\n");
        if (eol) *eol = 0;
        bullc__err(err, BULLC_ECONN, "the collector answered '%s'", buf);
    }
out:
    sdsfree(req);
    if (l.ssl) bullc__tls_free(l.ssl);
    close(l.fd);
    return rc;
}

/* ---- the export thread ------------------------------------------------------ */

static size_t take(bullc_tracer *t, sds *batch) {
    size_t n = t->count < t->max_batch ? t->count : t->max_batch;
    for (size_t i = 0; i < n; i++) batch[i] = t->ring[(t->head_i + i) % t->max_queue];
    t->head_i = (t->head_i + n) % t->max_queue;
    t->count -= n;
    return n;
}

static void export_batch(bullc_tracer *t, sds *batch, size_t n, int64_t deadline) {
    sds body = sdsdup(t->resource);
    for (size_t i = 0; i < n && body; i++) {
        if (i) body = sdscat(body, ",");
        if (body) body = sdscatsds(body, batch[i]);
    }
    if (body) body = sdscat(body, "]}]}]}");
    /* past the close's deadline nothing is sent: post() would still resolve
       the host, which no deadline bounds */
    bullc_error err = {0};
    bool ok = false;
    if (!body)
        bullc__err(&err, BULLC_ENOMEM, "out of memory");
    else if (mono_ms() >= deadline)
        timed_out(&err, "time left before closing");
    else
        ok = post(t, body, deadline, &err) == 0;
    atomic_fetch_add(ok ? &t->exported : &t->dropped, n);
    /* once per outage: a collector down for an hour is one line, not one per batch */
    if (!ok && !t->failing && t->on_error) {
        bullc_error e = {0};
        bullc__err(&e, err.code,
                   "OTLP export to %s failed, %zu span%s dropped (and those after, until it "
                   "works again): %s",
                   t->endpoint, n, n == 1 ? "" : "s", err.message);
        t->on_error(&e, t->on_error_data);
    }
    t->failing = !ok;
    sdsfree(body);
    for (size_t i = 0; i < n; i++) sdsfree(batch[i]);
}

static void run(void *arg) {
    bullc_tracer *t = arg;
    sds *batch = malloc(t->max_batch * sizeof *batch);
    int64_t final_deadline = 0;
    uv_mutex_lock(&t->mu);
    for (;;) {
        int64_t due = mono_ms() + t->delay_ms;
        while (!t->stopping && t->count < t->max_batch) {
            int64_t left = due - mono_ms();
            if (left <= 0 || uv_cond_timedwait(&t->cv, &t->mu, (uint64_t)left * 1000000) != 0) break;
        }
        if (t->stopping && !final_deadline) final_deadline = mono_ms() + t->timeout_ms;
        if (!t->count && t->stopping) break;
        if (!t->count) continue;
        if (!batch) {
            atomic_fetch_add(&t->dropped, t->count);
            while (t->count) sdsfree(t->ring[t->head_i]), t->head_i = (t->head_i + 1) % t->max_queue, t->count--;
            continue;
        }
        size_t n = take(t, batch);
        bool stopping = t->stopping;
        uv_mutex_unlock(&t->mu);
        int64_t deadline = mono_ms() + t->timeout_ms;
        /* on close everything left shares one export timeout */
        if (stopping && final_deadline < deadline) deadline = final_deadline;
        export_batch(t, batch, n, deadline);
        uv_mutex_lock(&t->mu);
    }
    uv_mutex_unlock(&t->mu);
    free(batch);
}

static void release(bullc_tracer *t) {
    free(t->host);
    free(t->host_header);
    free(t->port);
    free(t->path);
    free(t->endpoint);
    bullc_redis_opts_free(t->tls);
    sdsfree(t->head);
    sdsfree(t->resource);
    free(t->ring);
    free(t);
}

int bullc_tracer_new(bullc_tracer **out, const bullc_tracer_opts *o, bullc_error *err) {
    if (!out || !o) return bullc__err(err, BULLC_EINVAL, "tracer: NULL");
    if (!o->endpoint) return bullc__err(err, BULLC_EINVAL, "tracer: no endpoint");
    bullc_tracer *t = calloc(1, sizeof *t);
    if (!t) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    t->ratio = o->ratio;
    t->parent_based = o->parent_based;
    t->max_queue = o->max_queue;
    t->max_batch = o->max_batch;
    t->delay_ms = o->delay_ms;
    t->timeout_ms = o->timeout_ms;
    t->on_error = o->on_error;
    t->on_error_data = o->on_error_data;
    bool tls = !strncmp(o->endpoint, "https://", 8);
    int rc = split_url(t, o->endpoint, tls);
    if (rc || !(t->endpoint = strdup(o->endpoint))) {
        rc = bullc__err(err, BULLC_EINVAL, "tracer: bad endpoint '%s'", o->endpoint);
    } else if (!tls && (o->tls_ca || o->tls_cert)) {
        rc = bullc__err(err, BULLC_EINVAL,
                        "tracer: TLS settings with the http:// endpoint '%s' (spans would go "
                        "unencrypted): use https://",
                        o->endpoint);
    } else if (tls && (rc = tls_settings(t, o))) {
        rc = bullc__err(err, rc, "tracer: bad endpoint '%s'", o->endpoint);
    } else if (build_fixed(t, o) || !(t->ring = calloc(t->max_queue, sizeof *t->ring))) {
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    } else if (uv_mutex_init(&t->mu)) {
        rc = bullc__err(err, BULLC_ESYS, "tracer: cannot create a mutex");
    } else if (uv_cond_init(&t->cv)) {
        uv_mutex_destroy(&t->mu);
        rc = bullc__err(err, BULLC_ESYS, "tracer: cannot create a condition variable");
    } else if (uv_thread_create(&t->thread, run, t)) {
        uv_cond_destroy(&t->cv);
        uv_mutex_destroy(&t->mu);
        rc = bullc__err(err, BULLC_ESYS, "tracer: cannot start the export thread");
    }
    if (rc) {
        release(t);
        return rc;
    }
    *out = t;
    return 0;
}

void bullc_tracer_free(bullc_tracer *t) {
    if (!t) return;
    uv_mutex_lock(&t->mu);
    t->stopping = true;
    uv_mutex_unlock(&t->mu);
    uv_cond_signal(&t->cv);
    uv_thread_join(&t->thread);
    uv_cond_destroy(&t->cv);
    uv_mutex_destroy(&t->mu);
    release(t);
}

uint64_t bullc_tracer_dropped(const bullc_tracer *t) { return t ? atomic_load(&((bullc_tracer *)t)->dropped) : 0; }
uint64_t bullc_tracer_exported(const bullc_tracer *t) { return t ? atomic_load(&((bullc_tracer *)t)->exported) : 0; }
