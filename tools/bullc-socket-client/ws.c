/* SPDX-License-Identifier: MIT */
/* The socket side: one libwebsockets client connection on the main libuv
 * loop (lws 4.1's libuv event-lib plugin, with our loop as its "foreign"
 * loop, so that lws, our timers and our signal handlers share one thread and
 * nothing here needs a lock). It connects, sends the subscribe messages,
 * reassembles messages, turns text ones into job data for the buffer, pings,
 * notices a dead peer, and reconnects with exponential backoff and jitter.
 *
 * lws's own idle policy (pings after 300 s) is turned off: ours works in
 * milliseconds, so that tests can use short timeouts. */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sc.h"

enum { WS_IDLE, WS_CONNECTING, WS_OPEN, WS_CLOSING };

static struct {
    uv_loop_t *loop;
    const sc_config *cfg;
    sc_buffer *buf;
    void (*on_stopped)(void);
    struct lws_context *ctx;
    struct lws *wsi;
    uv_timer_t reconnect, watchdog, stopped;
    bool timers_open;
    int state;
    bool stopping, close_requested, close_sent, ping_due;
    int64_t opened_at;          /* monotonic ms: when the current connection was established */
    unsigned attempt;           /* reconnect attempts since the last good connection */
    int64_t state_since;        /* monotonic ms: when the current state began */
    int64_t last_rx, last_ping; /* monotonic ms */
    uint64_t conn_received;     /* messages on the current connection */
    size_t next_subscribe;
    char *provider_json;
    /* the message being reassembled */
    char *msg;
    size_t msg_len, msg_cap, msg_bytes;
    bool msg_binary, msg_oversized;
    /* log lines for binary and for oversized messages: at most one a second each */
    struct drop_log {
        int64_t last;
        uint64_t unlogged;
    } binary_log, oversized_log;
} ws;

/* The close-frame opcode of lws_write(): private in lws 4.1 (LWS_WRITE_CLOSE,
 * 4, in lib/roles/ws/private-lib-roles-ws.h, the same since lws 2), and
 * needed because lws_close_reason() + returning -1 from the writable
 * callback closes the socket without the close frame on the libuv loop. */
#define SC_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* No idle policy: secs_since_valid_hangup 0 turns lws's validity checks off. */
static const lws_retry_bo_t no_idle_policy = {0};

static void set_state(int s) {
    ws.state = s;
    ws.state_since = tlog_mono_ms();
}

/* ---- reconnecting ------------------------------------------------------------- */

static void connect_now(void);

static void on_reconnect(uv_timer_t *t) {
    (void)t;
    if (!ws.stopping) connect_now();
}

/* Exponential backoff with "equal jitter": the delay doubles from
 * --reconnect-min up to --reconnect-max, and a random half of it is taken
 * off, so that many clients cut off together do not come back together. */
static void schedule_reconnect(void) {
    if (ws.stopping || uv_is_active((uv_handle_t *)&ws.reconnect)) return;
    int64_t d = ws.cfg->reconnect_min_ms;
    for (unsigned i = 0; i < ws.attempt && d < ws.cfg->reconnect_max_ms; i++) d *= 2;
    if (d > ws.cfg->reconnect_max_ms) d = ws.cfg->reconnect_max_ms;
    int64_t half = d / 2;
    d = d - half + (half > 0 ? (int64_t)(random() % (half + 1)) : 0);
    ws.attempt++;
    TLOG(TLOG_INFO, "reconnect", TLOG_S("url", ws.cfg->url.display), TLOG_I("in_ms", d), TLOG_I("attempt", ws.attempt));
    uv_timer_start(&ws.reconnect, on_reconnect, (uint64_t)d, 0);
}

static void on_stopped_timer(uv_timer_t *t) {
    (void)t;
    ws.on_stopped();
}

static void reset_message(void) {
    ws.msg_len = ws.msg_bytes = 0;
    ws.msg_binary = ws.msg_oversized = false;
}

/* The connection ended (or never got established): the single place that
 * forgets the wsi, for CONNECTION_ERROR and CLOSED alike. */
static void gone(struct lws *wsi, bool established, const char *why) {
    if (wsi != ws.wsi) return; /* not the current connection */
    ws.wsi = NULL;
    int64_t up_ms = tlog_mono_ms() - ws.opened_at;
    set_state(WS_IDLE);
    reset_message();
    if (established) {
        atomic_fetch_add(&sc_st.disconnects, 1);
        /* a connection that delivered messages, or lived long, was a good
         * one: the next attempt starts from the shortest delay again */
        if (ws.conn_received || up_ms >= ws.cfg->reconnect_max_ms) ws.attempt = 0;
        TLOG(ws.stopping ? TLOG_INFO : TLOG_WARN, "disconnected", TLOG_S("url", ws.cfg->url.display),
             TLOG_S("reason", why), TLOG_I("up_ms", up_ms), TLOG_I("received", ws.conn_received));
    } else {
        atomic_fetch_add(&sc_st.connect_failures, 1);
        TLOG(ws.stopping ? TLOG_INFO : TLOG_WARN, "connect_failed", TLOG_S("url", ws.cfg->url.display),
             TLOG_S("error", why ? why : "unknown"));
    }
    if (ws.stopping)
        uv_timer_start(&ws.stopped, on_stopped_timer, 0, 0); /* outside lws's callback */
    else
        schedule_reconnect();
}

static void connect_now(void) {
    const sc_url *u = &ws.cfg->url;
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = ws.ctx;
    i.address = u->host;
    i.port = u->port;
    i.path = u->path;
    i.host = u->host_header;
    i.origin = ws.cfg->origin;
    i.protocol = ws.cfg->subprotocol;
    i.local_protocol_name = "bullc-socket-client";
    /* WebSocket over HTTP/1.1 only: lws 4.1 could otherwise pick h2 by ALPN */
    i.alpn = "http/1.1";
    i.retry_and_idle_policy = &no_idle_policy;
    if (u->tls) {
        i.ssl_connection = LCCSCF_USE_SSL;
        if (ws.cfg->insecure)
            i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED;
    }
    i.pwsi = &ws.wsi;
    set_state(WS_CONNECTING);
    ws.conn_received = 0;
    TLOG(TLOG_DEBUG, "connecting", TLOG_S("url", u->display));
    struct lws *w = lws_client_connect_via_info(&i);
    if (!w && ws.state == WS_CONNECTING) {
        /* failed before lws reported it through the callback */
        ws.wsi = NULL;
        gone(NULL, false, "cannot start the connection");
    }
}

/* ---- messages ------------------------------------------------------------------- */

/* A provider that sends nothing but binary must not flood the log: the
 * lines that are skipped are counted in the next one (and in the stats). */
static void log_drop(struct drop_log *l, const char *event, const char *msg, size_t bytes, uint64_t total) {
    int64_t now = tlog_mono_ms();
    if (l->last && now - l->last < 1000) {
        l->unlogged++;
        return;
    }
    TLOG(TLOG_WARN, event, TLOG_S("msg", msg), TLOG_I("bytes", bytes), TLOG_I("total", total),
         TLOG_I("not_logged_before", l->unlogged));
    l->last = now;
    l->unlogged = 0;
}

static void deliver(void) {
    ws.msg[ws.msg_len] = 0;
    char *data = sc_message_to_data(ws.provider_json, ws.cfg->type_field, ws.msg, ws.msg_len, tlog_now_ms());
    atomic_fetch_add(&sc_st.received, 1);
    ws.conn_received++;
    if (!data) {
        TLOG(TLOG_ERROR, "dropped", TLOG_S("msg", "out of memory: a message was dropped"));
        return;
    }
    sc_buffer_push(ws.buf, data);
}

/* Frames and their pieces arrive in chunks; a message is whole at its final
 * fragment. Text beyond --max-message-bytes is not kept (the rest of the
 * message is skipped, then counted once). */
static void receive(struct lws *wsi, const char *in, size_t len) {
    if (lws_is_first_fragment(wsi)) {
        reset_message();
        ws.msg_binary = lws_frame_is_binary(wsi) != 0;
    }
    ws.msg_bytes += len;
    if (!ws.msg_binary && !ws.msg_oversized) {
        if (ws.msg_len + len > ws.cfg->max_message_bytes) {
            ws.msg_oversized = true;
        } else {
            if (ws.msg_len + len + 1 > ws.msg_cap) {
                size_t cap = ws.msg_cap ? ws.msg_cap : 4096;
                while (cap < ws.msg_len + len + 1) cap *= 2;
                char *p = realloc(ws.msg, cap);
                if (!p) {
                    ws.msg_oversized = true; /* counted with the oversized: it could not be kept */
                    goto check_final;
                }
                ws.msg = p;
                ws.msg_cap = cap;
            }
            memcpy(ws.msg + ws.msg_len, in, len);
            ws.msg_len += len;
        }
    }
check_final:
    if (!lws_is_final_fragment(wsi)) return;
    if (ws.msg_binary) {
        uint64_t n = atomic_fetch_add(&sc_st.ignored_binary, 1) + 1;
        log_drop(&ws.binary_log, "binary_ignored", "binary message ignored (no job)", ws.msg_bytes, n);
    } else if (ws.msg_oversized) {
        uint64_t n = atomic_fetch_add(&sc_st.dropped_oversized, 1) + 1;
        log_drop(&ws.oversized_log, "oversized_dropped", "message over --max-message-bytes dropped (no job)",
                 ws.msg_bytes, n);
    } else {
        deliver();
    }
    reset_message();
    /* a big message must not keep a big buffer for ever */
    if (ws.msg_cap > 65536) {
        free(ws.msg);
        ws.msg = NULL;
        ws.msg_cap = 0;
    }
}

static int writable(struct lws *wsi) {
    if (ws.close_requested) {
        /* The closing handshake, written by hand: with lws 4.1 on libuv,
         * lws_close_reason() and returning -1 here closes the socket without
         * the close frame. The peer's answering close frame then ends the
         * connection (see WS_PEER_INITIATED_CLOSE); the watchdog kills it
         * if no answer comes. */
        if (!ws.close_sent) {
            unsigned char b[LWS_PRE + 10] = {0};
            b[LWS_PRE] = LWS_CLOSE_STATUS_NORMAL >> 8;
            b[LWS_PRE + 1] = LWS_CLOSE_STATUS_NORMAL & 0xff;
            memcpy(b + LWS_PRE + 2, "shutdown", 8);
            ws.close_sent = true;
            if (lws_write(wsi, b + LWS_PRE, 10, SC_LWS_WRITE_CLOSE) < 0) return -1;
        }
        return 0;
    }
    if (ws.next_subscribe < ws.cfg->nsubscribe) {
        const char *s = ws.cfg->subscribe[ws.next_subscribe++];
        size_t len = strlen(s);
        unsigned char *b = malloc(LWS_PRE + len);
        if (!b) return -1;
        memcpy(b + LWS_PRE, s, len);
        int w = lws_write(wsi, b + LWS_PRE, len, LWS_WRITE_TEXT);
        free(b);
        if (w < (int)len) return -1;
        TLOG(TLOG_DEBUG, "subscribed", TLOG_I("index", ws.next_subscribe), TLOG_I("bytes", len));
        if (ws.next_subscribe < ws.cfg->nsubscribe || ws.ping_due) lws_callback_on_writable(wsi);
        return 0;
    }
    if (ws.ping_due) {
        unsigned char b[LWS_PRE + 4];
        ws.ping_due = false;
        if (lws_write(wsi, b + LWS_PRE, 0, LWS_WRITE_PING) < 0) return -1;
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        for (size_t k = 0; k < ws.cfg->nheaders; k++) {
            /* "Name: value" -> lws wants "name:" and the value apart */
            const char *h = ws.cfg->headers[k], *colon = strchr(h, ':');
            char name[128];
            snprintf(name, sizeof name, "%.*s:", (int)(colon - h), h);
            const char *v = colon + 1;
            while (*v == ' ') v++;
            if (lws_add_http_header_by_name(wsi, (unsigned char *)name, (const unsigned char *)v, (int)strlen(v), p,
                                            end))
                return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (wsi != ws.wsi) return -1;
        set_state(WS_OPEN);
        ws.opened_at = ws.last_rx = ws.last_ping = tlog_mono_ms();
        ws.close_sent = false;
        ws.next_subscribe = 0;
        ws.ping_due = false;
        atomic_fetch_add(&sc_st.connects, 1);
        /* the readiness line, on stdout, for supervisors and tests */
        printf("bullc-socket-client connected url=%s provider=%s\n", ws.cfg->url.display, ws.cfg->provider);
        fflush(stdout);
        TLOG(TLOG_INFO, "connected", TLOG_S("url", ws.cfg->url.display), TLOG_S("provider", ws.cfg->provider),
             TLOG_I("subscribe_messages", ws.cfg->nsubscribe));
        if (ws.stopping) ws.close_requested = true;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (wsi != ws.wsi) return 0;
        ws.last_rx = tlog_mono_ms();
        receive(wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if (wsi == ws.wsi) ws.last_rx = tlog_mono_ms();
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return wsi == ws.wsi ? writable(wsi) : 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (wsi == ws.wsi) {
            int code = len >= 2 ? ((unsigned char *)in)[0] << 8 | ((unsigned char *)in)[1] : 0;
            char reason_text[128] = "";
            if (len > 2) snprintf(reason_text, sizeof reason_text, "%.*s", (int)(len - 2), (char *)in + 2);
            TLOG(TLOG_INFO, "peer_close", TLOG_I("code", code), TLOG_S("reason", reason_text),
                 TLOG_B("answer_to_ours", ws.close_sent));
            /* nonzero: lws closes at once (the handshake is complete when
             * this answers our close); zero: lws answers with a close frame */
            return ws.close_sent ? 1 : 0;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        gone(wsi, false, in ? (const char *)in : NULL);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        gone(wsi, true, ws.close_requested ? "closed by us" : "closed by the peer or the network");
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"bullc-socket-client", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- keepalive ----------------------------------------------------------------------- */

/* lws 4.1's libuv plugin only runs lws's timers (its "sul" list: timeouts,
 * including LWS_TO_KILL_ASYNC) when some socket event wakes it; a timer set
 * from outside lws, on a silent connection, would wait for ever. Waking the
 * service (its event pipe) makes lws look at its timers now. */
static void poke_lws(void) {
    if (ws.ctx) lws_cancel_service(ws.ctx);
}

/* Drops the connection at once, without a closing handshake (the peer is
 * not answering anyway): shutting the socket down makes it readable (EOF),
 * so lws closes it on its next look, which poke_lws makes now. */
static void kill_connection(const char *why) {
    TLOG(TLOG_WARN, "dead", TLOG_S("url", ws.cfg->url.display), TLOG_S("msg", why));
    set_state(WS_CLOSING);
    int fd = lws_get_socket_fd(ws.wsi);
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
    lws_set_timeout(ws.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    poke_lws();
}

/* Pings every --ping-interval; a connection that brought nothing (no data,
 * no pong) for --dead-timeout is dropped, as is a connect or a close that
 * takes too long. */
static void on_watchdog(uv_timer_t *t) {
    (void)t;
    poke_lws(); /* lws's own timeouts (connect, close ack) run at least this often */
    if (!ws.wsi) return;
    int64_t now = tlog_mono_ms();
    switch (ws.state) {
    case WS_CONNECTING:
        /* lws has its own connect timeout, in whole seconds */
        if (now - ws.state_since > ws.cfg->connect_timeout_ms + 1000) kill_connection("connect timed out");
        break;
    case WS_OPEN:
        if (ws.cfg->dead_timeout_ms && now - ws.last_rx > ws.cfg->dead_timeout_ms) {
            kill_connection("no data and no pong within --dead-timeout");
        } else if (ws.cfg->ping_interval_ms > 0 && now - ws.last_ping >= ws.cfg->ping_interval_ms) {
            ws.last_ping = now;
            ws.ping_due = true;
            lws_callback_on_writable(ws.wsi);
        }
        break;
    case WS_CLOSING:
        /* our close frame got no answer */
        if (now - ws.state_since > 2000) kill_connection("no answer to our close frame");
        break;
    }
}

/* ---- start and stop ---------------------------------------------------------------------- */

static void lws_log(int level, const char *line) {
    size_t n = strlen(line);
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
    /* lws 4.1 logs its libuv teardown at error level ("lws_libuv_stop"): not ours to worry about */
    int ours = level & LLL_ERR ? TLOG_WARN : TLOG_DEBUG;
    if (strstr(text, "lws_libuv_stop") || strstr(text, "ignoring")) ours = TLOG_DEBUG;
    TLOG(ours, "lws", TLOG_S("msg", text));
}

int sc_ws_start(uv_loop_t *loop, const sc_config *cfg, sc_buffer *buf, void (*on_stopped)(void)) {
    memset(&ws, 0, sizeof ws);
    ws.loop = loop;
    ws.cfg = cfg;
    ws.buf = buf;
    ws.on_stopped = on_stopped;
    srandom((unsigned)(tlog_now_ms() ^ (int64_t)getpid()));
    if (!(ws.provider_json = sc_json_string(cfg->provider, strlen(cfg->provider)))) return -1;
    uv_timer_init(loop, &ws.reconnect);
    uv_timer_init(loop, &ws.watchdog);
    uv_timer_init(loop, &ws.stopped);
    ws.timers_open = true;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {loop};
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.foreign_loops = loops;
    info.options = LWS_SERVER_OPTION_LIBUV;
    if (cfg->url.tls) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = cfg->ca_file;
    unsigned secs = (unsigned)((cfg->connect_timeout_ms + 999) / 1000);
    info.timeout_secs = secs;
    info.connect_timeout_secs = secs;
    /* one connection: without this lws sizes its tables by the fd limit */
    info.fd_limit_per_thread = 64;
    info.pcontext = &ws.ctx;
    if (!(ws.ctx = lws_create_context(&info))) {
        TLOG(TLOG_ERROR, "lws",
             TLOG_S("msg", "cannot create the libwebsockets context (is libwebsockets-evlib-uv "
                           "installed?)"));
        return -1;
    }
    /* a quarter of the shortest period, between 50 ms and 1 s */
    int64_t tick = 4000;
    if (cfg->ping_interval_ms > 0 && cfg->ping_interval_ms < tick) tick = cfg->ping_interval_ms;
    if (cfg->dead_timeout_ms > 0 && cfg->dead_timeout_ms < tick) tick = cfg->dead_timeout_ms;
    tick /= 4;
    tick = tick < 50 ? 50 : tick;
    uv_timer_start(&ws.watchdog, on_watchdog, (uint64_t)tick, (uint64_t)tick);
    connect_now();
    return 0;
}

void sc_ws_stop(void) {
    if (ws.stopping) return;
    ws.stopping = true;
    uv_timer_stop(&ws.reconnect);
    if (!ws.wsi) {
        uv_timer_start(&ws.stopped, on_stopped_timer, 0, 0);
    } else if (ws.state == WS_OPEN) {
        ws.close_requested = true;
        set_state(WS_CLOSING);
        lws_callback_on_writable(ws.wsi);
    } else if (ws.state == WS_CONNECTING) {
        set_state(WS_CLOSING);
        lws_set_timeout(ws.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        poke_lws();
    }
}

void sc_ws_destroy(void) {
    if (ws.ctx) lws_context_destroy(ws.ctx);
    if (ws.timers_open) {
        uv_close((uv_handle_t *)&ws.reconnect, NULL);
        uv_close((uv_handle_t *)&ws.watchdog, NULL);
        uv_close((uv_handle_t *)&ws.stopped, NULL);
        ws.timers_open = false;
    }
    free(ws.msg);
    ws.msg = NULL;
    free(ws.provider_json);
    ws.provider_json = NULL;
}
