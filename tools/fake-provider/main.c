/* SPDX-License-Identifier: MIT */
/* bullc-fake-provider: a loopback WebSocket server that plays a game-data
 * provider for the socket client's tests and demos. Flags, signals, timers
 * and the summary line; the connections are in conn.c. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp.h"

fp_app fp;

static const char usage_text[] =
    "usage: bullc-fake-provider [flags]\n\n"
    "A WebSocket server that emits NAMED_POWERBALL-style rounds to each client, after the client's first\n"
    "(subscribe) message, and misbehaves on demand. Every line on stdout starts with\n"
    "\"bullc-fake-provider \": listening, connection, subscribe, message, drop, stalled, closed, summary.\n\n"
    "  --port N             listen port (9001)\n"
    "  --bind ADDR          listen address (127.0.0.1)\n"
    "  --provider NAME      provider name in the rounds (NAMED_POWERBALL)\n"
    "  --rate N             rounds per second per connection (10; 0: as fast as the socket takes them)\n"
    "  --count N            rounds in total over all connections, then close and exit (0: no limit)\n"
    "  --linger MS          after --count: wait MS before closing (1000; -1: stay until a signal)\n"
    "  --duration S         exit after S seconds whatever happens (300; 0: no limit)\n"
    "  --no-subscribe       emit without waiting for the client's first message\n"
    "  --drop-every N       drop the connection (TCP FIN, no close frame) after every N rounds on it\n"
    "  --stall-after N      after N rounds on a connection, stop writing and reading it (no pongs)\n"
    "  --bad-every N        after every N rounds, send one bad message\n"
    "  --bad-kinds LIST     the bad messages, in turn: text, binary, oversized, untyped (type not a\n"
    "                       string), inject (not JSON alone, JSON inside an object), bignum (numbers\n"
    "                       that do not survive a re-print) (text,binary,oversized)\n"
    "  --oversize-bytes N   size of the oversized text message (2097152)\n"
    "  --fragment-bytes N   send text messages longer than N in fragments of N bytes (0: never)\n"
    "  --sent-log FILE      one JSON line per message written: {conn, kind, seq|text, bytes}\n"
    "  --tls-cert FILE      serve wss with this certificate (PEM) ...\n"
    "  --tls-key FILE       ... and this key\n\n"
    "Signals: SIGUSR1 drops every connection, SIGUSR2 prints the summary, SIGINT/SIGTERM close the\n"
    "connections (close frame) and exit 0 after the summary.\n";

int64_t fp_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bullc-fake-provider: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') return false;
    *out = v;
    return true;
}

static bool parse_num(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0) return false;
    *out = v;
    return true;
}

static int parse_kinds(const char *list) {
    fp.cfg.nbad_kinds = 0;
    char *copy = strdup(list);
    if (!copy) return 1;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        for (int i = 1; i < FP_NKINDS; i++)
            if (!strcmp(t, fp_kind_names[i])) k = i;
        if (!k || fp.cfg.nbad_kinds == FP_NKINDS) {
            int rc = usage_error("--bad-kinds: unknown kind (or too many) '%s'", t);
            free(copy);
            return rc;
        }
        fp.cfg.bad_kinds[fp.cfg.nbad_kinds++] = k;
    }
    free(copy);
    return 0;
}

static int parse_args(int argc, char **argv) {
    fp_config *c = &fp.cfg;
    c->port = 9001;
    c->bind = "127.0.0.1";
    c->provider = "NAMED_POWERBALL";
    c->rate = 10;
    c->duration = 300;
    c->linger_ms = 1000;
    c->wait_subscribe = true;
    c->oversize_bytes = 2u << 20;
    int rc = parse_kinds("text,binary,oversized");
    if (rc) return rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return -1;
        }
        if (!strcmp(a, "--no-subscribe")) {
            c->wait_subscribe = false;
            continue;
        }
        if (strncmp(a, "--", 2)) return usage_error("unexpected argument '%s'", a);
        /* A missing value is reported after the flag is known, so that a misspelled last flag is
         * named as unknown rather than as missing its value. */
        bool missing = i + 1 >= argc;
        const char *v = missing ? "" : argv[++i];
        uint64_t u = 0;
        bool ok = true;
        if (!strcmp(a, "--port")) {
            ok = parse_u64(v, &u) && u > 0 && u < 65536;
            c->port = (int)u;
        } else if (!strcmp(a, "--bind")) {
            c->bind = v;
        } else if (!strcmp(a, "--provider")) {
            c->provider = v;
            /* it goes into JSON text unescaped */
            ok = *v && !strpbrk(v, "\"\\") && strlen(v) < 64;
        } else if (!strcmp(a, "--rate")) {
            ok = parse_num(v, &c->rate);
        } else if (!strcmp(a, "--count")) {
            ok = parse_u64(v, &c->count);
        } else if (!strcmp(a, "--linger")) {
            char *end;
            c->linger_ms = strtoll(v, &end, 10);
            ok = end != v && !*end;
        } else if (!strcmp(a, "--duration")) {
            ok = parse_num(v, &c->duration);
        } else if (!strcmp(a, "--drop-every")) {
            ok = parse_u64(v, &c->drop_every);
        } else if (!strcmp(a, "--stall-after")) {
            ok = parse_u64(v, &c->stall_after);
        } else if (!strcmp(a, "--bad-every")) {
            ok = parse_u64(v, &c->bad_every);
        } else if (!strcmp(a, "--bad-kinds")) {
            if ((rc = parse_kinds(v))) return rc;
        } else if (!strcmp(a, "--oversize-bytes")) {
            ok = parse_u64(v, &u) && u >= 32 && u <= (1u << 30);
            c->oversize_bytes = (size_t)u;
        } else if (!strcmp(a, "--fragment-bytes")) {
            ok = parse_u64(v, &u);
            c->fragment_bytes = (size_t)u;
        } else if (!strcmp(a, "--sent-log")) {
            c->sent_log = v;
        } else if (!strcmp(a, "--tls-cert")) {
            c->tls_cert = v;
        } else if (!strcmp(a, "--tls-key")) {
            c->tls_key = v;
        } else {
            return usage_error("unknown flag %s", a);
        }
        if (missing) return usage_error("%s needs a value", a);
        if (!ok) return usage_error("bad value for %s: '%s'", a, v);
    }
    if (!c->tls_cert != !c->tls_key) return usage_error("--tls-cert and --tls-key go together");
    return 0;
}

void fp_summary(const char *why) {
    char bad[256] = "";
    size_t n = 0;
    for (int k = FP_BAD_TEXT; k < FP_NKINDS; k++)
        n += (size_t)snprintf(bad + n, sizeof bad - n, " bad_%s=%llu", fp_kind_names[k],
                              (unsigned long long)fp.st.bad[k]);
    printf("bullc-fake-provider summary sent=%llu last_seq=%llu connections=%llu drops=%llu subscribes=%llu%s%s%s\n",
           (unsigned long long)fp.st.rounds, (unsigned long long)fp.st.last_seq, (unsigned long long)fp.st.connections,
           (unsigned long long)fp.st.drops, (unsigned long long)fp.st.subscribes, bad, why ? " why=" : "",
           why ? why : "");
    fflush(stdout);
}

static void close_handle(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Second stage of the exit: every connection is closed (or the grace
 * period is over). lws closes its own handles on the loop; ours follow, and
 * uv_run returns when the last one is gone. */
static void teardown(void) {
    static bool done;
    if (done) return;
    done = true;
    if (fp.ctx) lws_context_destroy(fp.ctx);
    uv_handle_t *hs[] = {(uv_handle_t *)&fp.tick,     (uv_handle_t *)&fp.linger,  (uv_handle_t *)&fp.deadline,
                         (uv_handle_t *)&fp.grace,    (uv_handle_t *)&fp.sig_int, (uv_handle_t *)&fp.sig_term,
                         (uv_handle_t *)&fp.sig_usr1, (uv_handle_t *)&fp.sig_usr2};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) close_handle(hs[i]);
}

static void on_grace(uv_timer_t *t) {
    (void)t;
    teardown();
}

static char finish_why[32];

/* Stops emitting and closes every connection with a close frame; `why` is
 * recorded for the summary. The tick tears down once the last one closed. */
void fp_finish(const char *why) {
    if (fp.finishing) return;
    snprintf(finish_why, sizeof finish_why, "%s", why);
    fp.finishing = true;
    fp_conns_close_all();
    /* a client that never answers the close frame must not keep us */
    uv_timer_start(&fp.grace, on_grace, 2000, 0);
}

static void on_linger(uv_timer_t *t) {
    (void)t;
    fp_finish("count");
}

static void on_tick(uv_timer_t *t) {
    (void)t;
    /* lws 4.1's libuv plugin runs lws's own timers (timeouts, kills) only
     * when a socket event wakes it: wake it regularly */
    static unsigned ticks;
    if (fp.ctx && ++ticks % 20 == 0) lws_cancel_service(fp.ctx);
    if (fp.finishing) {
        /* the last close callback ran: tear down here, outside lws's callbacks */
        if (!fp.conns) teardown();
        return;
    }
    fp_conns_tick();
    if (fp_all_sent() && !fp.lingering && fp.cfg.linger_ms >= 0) {
        fp.lingering = true;
        uv_timer_start(&fp.linger, on_linger, (uint64_t)fp.cfg.linger_ms, 0);
    }
}

static void on_deadline(uv_timer_t *t) {
    (void)t;
    fp_finish("duration");
}

static void on_signal(uv_signal_t *s, int signum) {
    (void)s;
    if (signum == SIGUSR1)
        fp_conns_drop_all();
    else if (signum == SIGUSR2)
        fp_summary(NULL);
    else if (fp.finishing)
        teardown(); /* a second signal: stop waiting for clients */
    else
        fp_finish(signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void lws_log(int level, const char *line) {
    (void)level;
    fprintf(stderr, "bullc-fake-provider: lws: %s", line);
}

int main(int argc, char **argv) {
    int rc = parse_args(argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, lws_log);
    if (fp.cfg.sent_log && !(fp.sent_log = fopen(fp.cfg.sent_log, "w"))) {
        fprintf(stderr, "bullc-fake-provider: cannot open %s: %s\n", fp.cfg.sent_log, strerror(errno));
        return 2;
    }
    uv_loop_init(&fp.loop);
    uv_timer_init(&fp.loop, &fp.tick);
    uv_timer_init(&fp.loop, &fp.linger);
    uv_timer_init(&fp.loop, &fp.deadline);
    uv_timer_init(&fp.loop, &fp.grace);
    uv_signal_t *sigs[] = {&fp.sig_int, &fp.sig_term, &fp.sig_usr1, &fp.sig_usr2};
    int signums[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(&fp.loop, sigs[i]);
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {&fp.loop};
    info.port = fp.cfg.port;
    info.iface = fp.cfg.bind;
    info.protocols = fp_protocols;
    info.foreign_loops = loops;
    info.pcontext = &fp.ctx;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DISABLE_IPV6;
    if (fp.cfg.tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = fp.cfg.tls_cert;
        info.ssl_private_key_filepath = fp.cfg.tls_key;
    }
    fp.ctx = lws_create_context(&info);
    if (!fp.ctx) {
        fprintf(stderr, "bullc-fake-provider: cannot listen on %s:%d (see the lws error above)\n", fp.cfg.bind,
                fp.cfg.port);
        teardown();
        uv_run(&fp.loop, UV_RUN_DEFAULT);
        uv_loop_close(&fp.loop);
        return 1;
    }
    fp.start_ms = fp_now_ms();
    uv_timer_start(&fp.tick, on_tick, 5, 5);
    if (fp.cfg.duration > 0) uv_timer_start(&fp.deadline, on_deadline, (uint64_t)(fp.cfg.duration * 1000), 0);
    printf("bullc-fake-provider listening port=%d tls=%s\n", fp.cfg.port, fp.cfg.tls_cert ? "yes" : "no");
    fflush(stdout);

    uv_run(&fp.loop, UV_RUN_DEFAULT);
    fp_summary(finish_why[0] ? finish_why : NULL);
    if (fp.sent_log) fclose(fp.sent_log);
    rc = uv_loop_close(&fp.loop);
    if (rc) fprintf(stderr, "bullc-fake-provider: the loop did not close clean: %s\n", uv_strerror(rc));
    return 0;
}
