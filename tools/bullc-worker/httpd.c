/* SPDX-License-Identifier: MIT */
/* --http: GET /metrics, /healthz and /readyz, served by libwebsockets on the
 * workers' own libuv loop (a foreign loop for lws, as the socket client's).
 *
 * Nothing here waits: a /metrics request whose cached job counts are too
 * old asks Redis for fresh ones (metrics.c, on this loop) and is answered
 * when they arrive, or after COUNTS_WAIT_MS with what the cache holds, so
 * a slow or absent Redis delays a scrape a little and never the jobs.
 * Health is measured: the workers' connection state (bullc_stats) and the
 * loop's own lateness, taken by a timer that should fire every LAG_TICK_MS;
 * a tick that comes much later means the loop was stuck (a callback that
 * blocked, the process frozen) and /healthz says so for LAG_WINDOW_MS. A
 * loop that is stuck right now cannot answer at all, which a probe's
 * timeout reports. */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

#define LAG_TICK_MS 100
#define LAG_WINDOW_MS 60000
#define COUNTS_WAIT_MS 2000

/* One HTTP request (lws' per-session data). */
typedef struct req {
    struct lws *wsi;
    struct req *next; /* waiting for counts */
    bool waiting, answer;
    int route; /* ROUTE_* */
} req;

enum { ROUTE_NONE, ROUTE_METRICS, ROUTE_HEALTHZ, ROUTE_READYZ };

struct bw_httpd {
    bw_app *app;
    struct lws_context *ctx;
    uv_timer_t lag_timer, wait_timer;
    uint64_t last_tick;
    uint64_t stalled_at; /* uv_now when the last stall over the limit ended (0: none) */
    uint64_t stalled_ms;
    req *waiting;
    bool closing;
};

static void wake(bw_httpd *h) {
    for (req *r = h->waiting; r; r = r->next) {
        r->waiting = false;
        r->answer = true;
        lws_callback_on_writable(r->wsi);
    }
    h->waiting = NULL;
    uv_timer_stop(&h->wait_timer);
}

void bw_httpd_counts_ready(bw_httpd *h) {
    if (h && !h->closing) wake(h);
}

static void on_wait_timeout(uv_timer_t *t) { wake(t->data); }

static void unlink_req(bw_httpd *h, req *r) {
    for (req **p = &h->waiting; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    r->waiting = false;
}

static void on_lag_tick(uv_timer_t *t) {
    bw_httpd *h = t->data;
    uint64_t now = uv_now(t->loop), late = now - h->last_tick > LAG_TICK_MS ? now - h->last_tick - LAG_TICK_MS : 0;
    h->last_tick = now;
    if (late > (uint64_t)h->app->cfg->health_max_lag) {
        h->stalled_at = now;
        h->stalled_ms = late;
        TLOG(TLOG_WARN, "stalled-loop", TLOG_I("ms", (int64_t)late),
             TLOG_S("msg", "the event loop did not run for this long: /healthz answers 503 for a minute"));
    }
}

/* The one-line reason why the worker is not healthy, or NULL. */
static const char *unhealthy(bw_httpd *h, char *buf, size_t n) {
    bw_app *app = h->app;
    uint64_t now = uv_now(&app->loop);
    if (h->stalled_at && now - h->stalled_at < LAG_WINDOW_MS) {
        snprintf(buf, n, "event loop stalled for %llu ms (limit %lld ms) %llu s ago", (unsigned long long)h->stalled_ms,
                 (long long)app->cfg->health_max_lag, (unsigned long long)((now - h->stalled_at) / 1000));
        return buf;
    }
    /* a draining worker has closed its blocking connection on purpose */
    for (size_t i = 0; i < app->nqueues && !app->shutting_down; i++) {
        bw_queue *q = app->queues[i];
        if (q->closed || !q->worker) continue;
        if (!bw_queue_redis_up(q)) {
            snprintf(buf, n, "redis unreachable (queue %s: not connected)", q->cfg->name);
            return buf;
        }
    }
    return NULL;
}

static const char *not_ready(bw_httpd *h, char *buf, size_t n) {
    bw_app *app = h->app;
    if (app->shutting_down) return "shutting down: draining the jobs in process";
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_queue *q = app->queues[i];
        if (!q->ready_once && !q->removed) {
            snprintf(buf, n, "starting (queue %s: not connected yet)", q->cfg->name);
            return buf;
        }
    }
    return unhealthy(h, buf, n);
}

static int respond(struct lws *wsi, unsigned status, const char *type, const char *body, size_t len) {
    unsigned char *hdr = malloc(LWS_PRE + 512 + len), *start = hdr + LWS_PRE, *p = start, *end = start + 512;
    if (!hdr) return -1;
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (const unsigned char *)"no-store", 8, &p,
                                     end) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        free(hdr);
        return -1;
    }
    /* lws keeps what the socket does not take now and sends it before the
     * next writable callback */
    memcpy(start, body, len);
    int rc = len ? lws_write(wsi, start, len, LWS_WRITE_HTTP_FINAL) : 0;
    free(hdr);
    if (rc < 0) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int answer(bw_httpd *h, req *r) {
    char why[256], line[300];
    const char *bad;
    switch (r->route) {
    case ROUTE_METRICS: {
        bw_sb b = {0};
        bw_metrics_write(h->app, &b);
        char *text = bw_sb_take(&b);
        if (!text) return respond(r->wsi, 500, "text/plain", "out of memory\n", 14);
        int rc = respond(r->wsi, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
        free(text);
        return rc;
    }
    case ROUTE_HEALTHZ:
    case ROUTE_READYZ:
        bad = r->route == ROUTE_HEALTHZ ? unhealthy(h, why, sizeof why) : not_ready(h, why, sizeof why);
        snprintf(line, sizeof line, "%s\n", bad ? bad : "ok");
        return respond(r->wsi, bad ? 503 : 200, "text/plain; charset=utf-8", line, strlen(line));
    default:
        return respond(r->wsi, 404, "text/plain; charset=utf-8", "not found: try /metrics, /healthz, /readyz\n", 44);
    }
}

static int on_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    bw_httpd *h = lws_context_user(lws_get_context(wsi));
    req *r = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        memset(r, 0, sizeof *r);
        r->wsi = wsi;
        const char *uri = in;
        if (!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
            return lws_return_http_status(wsi, 405, "GET only") || lws_http_transaction_completed(wsi) ? -1 : 0;
        (void)len;
        r->route = !strcmp(uri, "/metrics")   ? ROUTE_METRICS
                   : !strcmp(uri, "/healthz") ? ROUTE_HEALTHZ
                   : !strcmp(uri, "/readyz")  ? ROUTE_READYZ
                                              : ROUTE_NONE;
        if (r->route == ROUTE_METRICS && bw_metrics_refresh(h->app)) {
            /* counts on their way: answer when they come, or at the bound */
            r->waiting = true;
            r->next = h->waiting;
            h->waiting = r;
            if (!uv_is_active((uv_handle_t *)&h->wait_timer))
                uv_timer_start(&h->wait_timer, on_wait_timeout, COUNTS_WAIT_MS, 0);
            return 0;
        }
        r->answer = true;
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!r || !r->answer) return 0;
        r->answer = false;
        return answer(h, r);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (r && r->waiting) unlink_req(h, r);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"http", on_http, sizeof(req), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int bw_httpd_port(const char *spec, char *why, size_t n) {
    const char *colon = strrchr(spec, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == spec || !end || *end || end == colon + 1 || port < 1 || port > 65535) {
        snprintf(why, n, "--http must be ADDR:PORT (e.g. 127.0.0.1:9464), not '%s'", spec);
        return 0;
    }
    return (int)port;
}

int bw_httpd_start(bw_app *app, char *why, size_t n) {
    const char *spec = app->cfg->http;
    int port = bw_httpd_port(spec, why, n);
    if (!port) return BW_EXIT_USAGE;
    const char *colon = strrchr(spec, ':');
    bw_httpd *h = calloc(1, sizeof *h);
    char *addr = h ? strndup(spec, (size_t)(colon - spec)) : NULL;
    if (!addr) {
        free(h);
        snprintf(why, n, "out of memory");
        return BW_EXIT_FAIL;
    }
    h->app = app;
    uv_timer_init(&app->loop, &h->lag_timer);
    uv_timer_init(&app->loop, &h->wait_timer);
    h->lag_timer.data = h->wait_timer.data = h;
    lws_set_log_level(LLL_ERR | LLL_WARN, bw_lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {&app->loop};
    info.port = CONTEXT_PORT_NO_LISTEN; /* the vhost below listens: its failure is seen */
    info.foreign_loops = loops;
    info.user = h;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.pcontext = &app->httpd_ctx; /* lws clears it once the context is wholly freed */
    h->ctx = app->httpd_ctx = lws_create_context(&info);
    app->httpd = h;
    /* "[::1]" style addresses lose their brackets; lws takes an interface
     * name or an address */
    if (addr[0] == '[') {
        memmove(addr, addr + 1, strlen(addr));
        addr[strcspn(addr, "]")] = '\0';
    }
    info.port = port;
    info.iface = strcmp(addr, "0.0.0.0") && *addr ? addr : NULL;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    if (!strchr(addr, ':')) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    bool listening = h->ctx && lws_create_vhost(h->ctx, &info);
    free(addr);
    if (!listening) {
        snprintf(why, n, "--http %s: cannot listen there (in use, or not an address of this host)", spec);
        return BW_EXIT_USAGE;
    }
    h->last_tick = uv_now(&app->loop);
    uv_timer_start(&h->lag_timer, on_lag_tick, LAG_TICK_MS, LAG_TICK_MS);
    TLOG(TLOG_INFO, "http", TLOG_S("listen", spec), TLOG_S("paths", "/metrics /healthz /readyz"));
    return 0;
}

void bw_httpd_finish(bw_app *app) {
    /* lws_context_destroy on a foreign loop closes lws's handles and leaves
     * the rest to a second call once the loop has run their close callbacks */
    if (app->httpd_ctx) lws_context_destroy(app->httpd_ctx);
    app->httpd_ctx = NULL;
}

static void free_on_close(uv_handle_t *hd) {
    bw_httpd *h = hd->data;
    if (hd == (uv_handle_t *)&h->wait_timer) free(h);
}

void bw_httpd_close(bw_app *app) {
    bw_httpd *h = app->httpd;
    if (!h || h->closing) return;
    h->closing = true;
    h->waiting = NULL;
    if (h->ctx) lws_context_destroy(h->ctx);
    h->ctx = NULL;
    uv_close((uv_handle_t *)&h->lag_timer, NULL);
    uv_close((uv_handle_t *)&h->wait_timer, free_on_close); /* closed after lag_timer: frees h */
    app->httpd = NULL;
}
