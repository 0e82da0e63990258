/* SPDX-License-Identifier: MIT */
/* An HTTP POST client for webhooks (the notification builtin), on
 * libwebsockets, called from blocking processors on libuv's thread pool.
 *
 * Why this shape: a blocking processor must return its result, so the
 * request is made and waited for on the calling thread. Each thread gets
 * an lws context of its own (created on its first request, reused after,
 * destroyed by bw_http_free), serviced by that thread alone until the
 * request finishes: lws contexts are not thread-safe, and one per thread
 * needs no lock around lws, while reusing it spares a context (and, for
 * https, a TLS context) per request. The wait is bounded by the request's
 * deadline, a lost job lock, and bw_http_abort(); a connection that cannot
 * be closed in time takes its context with it, so nothing that points at a
 * finished request can ever run. One request per connection (lws sends
 * "Connection: close" and we close once the response is in): there is no
 * idle connection to go stale between jobs. */
#include <errno.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bw.h"

#define TICK_US 50000 /* how often a waiting request checks its deadline and the job's lock */
#define CLOSE_GRACE_MS 1000
#define BODY_KEEP 200 /* bytes of an error response kept for the failure reason */

typedef struct thread_ctx {
    pthread_t tid;
    struct lws_context *ctx;
} thread_ctx;

struct bw_http {
    char *display; /* scheme://host[:port]/path, without the query: safe for logs and failure reasons */
    char *host, *host_header, *path;
    char *ca_file; /* https: trusted CAs (NULL: the system store) */
    int port;
    bool tls;
    atomic_bool aborting;
    pthread_mutex_t mu;
    thread_ctx *ctxs;
    size_t nctxs, cap;
};

/* One request in flight, owned by the thread that waits for it. */
typedef struct call {
    const bw_http_req *req;
    struct lws *wsi;
    bool finished, completed, sent;
    int status;
    char error[160];
    char body[BODY_KEEP + 1];
    size_t body_len;
    unsigned char *out; /* LWS_PRE bytes, then the request body */
    lws_sorted_usec_list_t tick;
} call;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- lws ------------------------------------------------------------------- */

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p, unsigned char *end) {
    char n[128];
    if ((size_t)snprintf(n, sizeof n, "%s:", name) >= sizeof n) return 1;
    return lws_add_http_header_by_name(wsi, (const unsigned char *)n, (const unsigned char *)value, (int)strlen(value),
                                       p, end);
}

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    call *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            snprintf(c->error, sizeof c->error, "%s", in ? (const char *)in : "connection failed");
            c->wsi = NULL;
            c->finished = true;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        char clen[24];
        snprintf(clen, sizeof clen, "%zu", c->req->body_len);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)"application/json",
                                         16, p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, (const unsigned char *)clen,
                                         (int)strlen(clen), p, end))
            return -1;
        for (size_t i = 0; c->req->headers && c->req->headers[i]; i += 2)
            if (add_header(wsi, c->req->headers[i], c->req->headers[i + 1], p, end)) return -1;
        /* the body follows the headers, when the socket can take it */
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
        if (!c || c->sent) return 0;
        c->sent = true;
        lws_client_http_body_pending(wsi, 0);
        /* lws keeps what the socket does not take at once and sends it later */
        if (lws_write(wsi, c->out + LWS_PRE, c->req->body_len, LWS_WRITE_HTTP_FINAL) != (int)c->req->body_len)
            return -1;
        return 0;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (c) c->status = (int)lws_http_client_http_response(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (c && c->body_len < BODY_KEEP) {
            size_t n = len < BODY_KEEP - c->body_len ? len : BODY_KEEP - c->body_len;
            memcpy(c->body + c->body_len, in, n);
            c->body_len += n;
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 2048], *p = buf + LWS_PRE;
        int n = (int)sizeof buf - LWS_PRE;
        return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (c) c->completed = true;
        return -1; /* the response is in: close now, the connection serves nothing else */
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (c) {
            c->wsi = NULL;
            c->finished = true;
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {{"bw-webhook", on_lws, 0, 0, 0, NULL, 0},
                                                 {NULL, NULL, 0, 0, 0, NULL, 0}};

/* lws says why a connection failed (a TLS verification error, ...) in its
 * log, not in the CONNECTION_ERROR callback: the last such line of this
 * thread goes into the failure reason. lws logs from the thread servicing
 * the context, which is the thread of the request. */
static _Thread_local char last_lws_error[200];

void bw_lws_log(int level, const char *line) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    msg[strcspn(msg, "\n")] = '\0';
    snprintf(last_lws_error, sizeof last_lws_error, "%s", msg);
    TLOG(level == LLL_ERR ? TLOG_WARN : TLOG_DEBUG, "lws", TLOG_S("msg", msg));
}

/* The calling thread's context, created on first use. */
static struct lws_context *thread_context(bw_http *h, char *why, size_t n) {
    pthread_t self = pthread_self();
    struct lws_context *ctx = NULL;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->nctxs && !ctx; i++)
        if (pthread_equal(h->ctxs[i].tid, self)) ctx = h->ctxs[i].ctx;
    if (!ctx && h->nctxs == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        thread_ctx *t = realloc(h->ctxs, cap * sizeof *t);
        if (t) h->ctxs = t, h->cap = cap;
    }
    if (!ctx && h->nctxs < h->cap) {
        struct lws_context_creation_info info;
        memset(&info, 0, sizeof info);
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = protocols;
        /* one connection at a time: do not size fd tables to ulimit -n */
        info.fd_limit_per_thread = 4;
        if (h->tls) info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = h->ca_file;
        /* created under the lock: lws's one-time set-up is not meant to
         * run on two threads at once */
        ctx = lws_create_context(&info);
        if (ctx) h->ctxs[h->nctxs++] = (thread_ctx){self, ctx};
    }
    pthread_mutex_unlock(&h->mu);
    if (!ctx) snprintf(why, n, "webhook %s: cannot create an HTTP client context", h->display);
    return ctx;
}

/* Destroys the calling thread's context (a request in it could not end). */
static void drop_thread_context(bw_http *h, struct lws_context *ctx) {
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->nctxs; i++)
        if (h->ctxs[i].ctx == ctx) h->ctxs[i] = h->ctxs[--h->nctxs];
    pthread_mutex_unlock(&h->mu);
    lws_context_destroy(ctx);
}

/* Only wakes lws_service, which then returns to the wait loop's checks. */
static void on_tick(lws_sorted_usec_list_t *sul) { (void)sul; }

/* ---- the API --------------------------------------------------------------------- */

/* http[s]://host[:port][/path][?query]; no user:password@ (use headers). */
int bw_http_new(bw_http **out, const char *url, const char *ca_file, char *why, size_t n) {
    bool tls = !strncmp(url, "https://", 8);
    if (!tls && strncmp(url, "http://", 7)) {
        snprintf(why, n, "webhook URL must start with http:// or https://");
        return -EINVAL;
    }
    const char *a = url + (tls ? 8 : 7), *ae = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(ae - a))) {
        snprintf(why, n, "webhook URL: user:password@ is not supported; give an Authorization header in \"headers\"");
        return -EINVAL;
    }
    const char *hs = a, *he, *colon;
    if (*a == '[') { /* [v6 address] */
        he = memchr(a, ']', (size_t)(ae - a));
        if (!he) {
            snprintf(why, n, "webhook URL: bad host");
            return -EINVAL;
        }
        hs = a + 1;
        colon = he + 1 < ae && he[1] == ':' ? he + 1 : NULL;
    } else {
        colon = memchr(a, ':', (size_t)(ae - a));
        he = colon ? colon : ae;
    }
    int port = tls ? 443 : 80;
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (end != ae || p < 1 || p > 65535) {
            snprintf(why, n, "webhook URL: bad port");
            return -EINVAL;
        }
        port = (int)p;
    }
    if (he == hs) {
        snprintf(why, n, "webhook URL: no host");
        return -EINVAL;
    }
    bw_http *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    const char *path = *ae == '/' ? ae : NULL;
    size_t plen = path ? strcspn(path, "#") : 0;
    size_t qlen = path ? strcspn(path, "?#") : 0;
    h->tls = tls;
    h->port = port;
    h->host = strndup(hs, (size_t)(he - hs));
    h->host_header = strndup(a, (size_t)(ae - a)); /* host[:port], as the URL says it */
    h->path = path ? strndup(path, plen) : strdup("/");
    h->ca_file = ca_file ? strdup(ca_file) : NULL;
    /* what logs may show: the query string may hold a token */
    if (h->host && h->path &&
        asprintf(&h->display, "%s://%.*s%.*s", tls ? "https" : "http", (int)(ae - a), a, (int)qlen, path ? path : "") <
            0)
        h->display = NULL;
    if (!h->host || !h->host_header || !h->path || !h->display || (ca_file && !h->ca_file) ||
        pthread_mutex_init(&h->mu, NULL)) {
        free(h->host), free(h->host_header), free(h->path), free(h->display), free(h->ca_file), free(h);
        return -ENOMEM;
    }
    /* lws logs through ours (process-wide: the --http server shares it) */
    lws_set_log_level(LLL_ERR | LLL_WARN, bw_lws_log);
    *out = h;
    return 0;
}

const char *bw_http_display(const bw_http *h) { return h->display; }

void bw_http_abort(bw_http *h) {
    if (h) atomic_store(&h->aborting, true);
}

void bw_http_free(bw_http *h) {
    if (!h) return;
    /* every request has returned: the contexts are idle */
    for (size_t i = 0; i < h->nctxs; i++) lws_context_destroy(h->ctxs[i].ctx);
    free(h->ctxs);
    pthread_mutex_destroy(&h->mu);
    free(h->host), free(h->host_header), free(h->path), free(h->display), free(h->ca_file);
    free(h);
}

/* Printable text of an error response, for the failure reason. */
static void body_excerpt(const call *c, char *out, size_t n) {
    size_t j = 0;
    for (size_t i = 0; i < c->body_len && j + 1 < n; i++) {
        unsigned char ch = (unsigned char)c->body[i];
        out[j++] = ch >= 0x20 && ch != 0x7f ? (char)ch : ' ';
    }
    while (j && out[j - 1] == ' ') j--;
    out[j] = '\0';
}

int bw_http_post(bw_http *h, const bw_http_req *req, int *status, char *why, size_t n) {
    *status = 0;
    if (atomic_load(&h->aborting)) {
        snprintf(why, n, "webhook %s: bullc-worker is shutting down", h->display);
        return -1;
    }
    struct lws_context *ctx = thread_context(h, why, n);
    if (!ctx) return -1;
    call c;
    memset(&c, 0, sizeof c);
    c.req = req;
    last_lws_error[0] = '\0';
    if (!(c.out = malloc(LWS_PRE + req->body_len + 1))) {
        snprintf(why, n, "webhook %s: out of memory", h->display);
        return -1;
    }
    memcpy(c.out + LWS_PRE, req->body, req->body_len);

    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = ctx;
    i.address = h->host;
    i.port = h->port;
    i.path = h->path;
    i.host = h->host_header;
    i.method = "POST";
    i.protocol = protocols[0].name;
    i.alpn = "http/1.1";
    /* a redirect is a failure: lws would turn the POST into a GET */
    i.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (h->tls ? LCCSCF_USE_SSL : 0);
    i.opaque_user_data = &c;
    struct lws *w = lws_client_connect_via_info(&i);
    if (!c.finished) c.wsi = w;
    if (!w && !c.finished) {
        c.finished = true;
        snprintf(c.error, sizeof c.error, "cannot start the connection");
    }

    int64_t deadline = mono_ms() + req->timeout_ms;
    const char *stopped = NULL;
    bool stuck = false;
    while (!c.finished) {
        int64_t left = deadline - mono_ms();
        if (!stopped) {
            if (left <= 0)
                stopped = "timed out";
            else if (atomic_load(&h->aborting))
                stopped = "bullc-worker is shutting down";
            else if (req->job && bullc_job_lock_lost(req->job))
                stopped = "the job's lock was lost";
            /* outside any lws callback, so the close may run at once */
            if (stopped && c.wsi) lws_set_timeout(c.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
            if (c.finished) break;
        }
        if (stopped && left < -CLOSE_GRACE_MS) {
            stuck = true;
            break;
        }
        int64_t wait_us = left > 0 && left * 1000 < TICK_US ? left * 1000 : TICK_US;
        lws_sul_schedule(ctx, 0, &c.tick, on_tick, wait_us);
        if (lws_service(ctx, 0) < 0) break;
    }
    lws_sul_cancel(&c.tick);
    if (!c.finished || stuck) drop_thread_context(h, ctx); /* its callbacks would see `c` after we return */
    free(c.out);

    *status = c.status;
    bool accepted = c.status >= 200 && c.status <= 299;
    if (stopped && !c.completed && !accepted) {
        if (!strcmp(stopped, "timed out"))
            snprintf(why, n, "webhook %s: timed out after %lld ms", h->display, (long long)req->timeout_ms);
        else
            snprintf(why, n, "webhook %s: %s", h->display, stopped);
        return -1;
    }
    if (!c.completed && !c.status) {
        const char *e = c.error[0] ? c.error : "closed";
        if (last_lws_error[0] && !strstr(e, last_lws_error))
            snprintf(why, n, "webhook %s: connection failed: %s (%s)", h->display, e, last_lws_error);
        else
            snprintf(why, n, "webhook %s: connection failed: %s", h->display, e);
        return -1;
    }
    if (!accepted) {
        char excerpt[BODY_KEEP + 1];
        body_excerpt(&c, excerpt, sizeof excerpt);
        if (excerpt[0])
            snprintf(why, n, "webhook %s: HTTP %d: %s", h->display, c.status, excerpt);
        else
            snprintf(why, n, "webhook %s: HTTP %d", h->display, c.status);
        return -1;
    }
    if (!c.completed) {
        /* a 2xx whose body was cut short: the receiver has taken the
         * request, and only a failed delivery should be retried */
        TLOG(TLOG_DEBUG, "webhook", TLOG_S("url", h->display), TLOG_I("status", c.status),
             TLOG_S("msg", "response cut short after a 2xx status"));
    }
    return 0;
}
