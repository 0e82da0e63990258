/* SPDX-License-Identifier: MIT */
/* bullc-socket-client: a WebSocket feed into a BullMQ queue. This file puts
 * the pieces together: settings, the Redis handle and job options, the
 * producer, the socket, signals, the stats line and the exit code, all on
 * one libuv loop.
 *
 * Shutdown (SIGINT/SIGTERM): the socket is closed with a close frame, then
 * the producer adds what is left in the buffer; the process exits 0 once the
 * buffer is empty, or 4 when --flush-timeout (or a second signal) comes
 * first. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sc.h"

sc_stats sc_st;

static struct {
    sc_config cfg;
    uv_loop_t loop;
    sc_buffer buf;
    sc_producer producer;
    bullc_aqueue *queue;
    uv_signal_t sig_int, sig_term, sig_hup;
    uv_timer_t stats, flush, finish;
    bool shutting_down, ws_stopped, abandoned, finished, loop_open;
    int64_t shutdown_started;
} app;

/* Every counter, for the stats line and the exit line. */
#define SC_COUNTERS                                                                                                 \
    TLOG_I("received", atomic_load(&sc_st.received)), TLOG_I("added", atomic_load(&sc_st.added)),                   \
        TLOG_I("buffered", sc_buffer_count(&app.buf)),                                                              \
        TLOG_I("dropped_overflow", atomic_load(&sc_st.dropped_overflow)),                                           \
        TLOG_I("dropped_oversized", atomic_load(&sc_st.dropped_oversized)),                                         \
        TLOG_I("ignored_binary", atomic_load(&sc_st.ignored_binary)),                                               \
        TLOG_I("rejected", atomic_load(&sc_st.rejected)), TLOG_I("deduplicated", atomic_load(&sc_st.deduplicated)), \
        TLOG_I("connects", atomic_load(&sc_st.connects)), TLOG_I("disconnects", atomic_load(&sc_st.disconnects)),   \
        TLOG_I("connect_failures", atomic_load(&sc_st.connect_failures)),                                           \
        TLOG_I("redis_failures", atomic_load(&sc_st.redis_failures)), TLOG_B("redis_up", atomic_load(&sc_st.redis_up))

static void on_stats(uv_timer_t *t) {
    (void)t;
    TLOG(TLOG_INFO, "stats", SC_COUNTERS);
}

/* The last step: everything is flushed (or given up). lws's handles and ours
 * close on the loop, and uv_run returns once the last one is gone. */
static void finish(void) {
    if (app.finished) return;
    app.finished = true;
    sc_ws_destroy();
    sc_producer_stop(&app.producer);
    /* an add still in flight (abandoned) is answered now, as cancelled */
    if (app.queue) bullc_aqueue_close(app.queue, NULL, NULL);
    uv_handle_t *hs[] = {(uv_handle_t *)&app.sig_int, (uv_handle_t *)&app.sig_term, (uv_handle_t *)&app.sig_hup,
                         (uv_handle_t *)&app.stats,   (uv_handle_t *)&app.flush,    (uv_handle_t *)&app.finish};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        if (!uv_is_closing(hs[i])) uv_close(hs[i], NULL);
}

static void maybe_finish(void) {
    if (app.ws_stopped && (app.producer.finished || app.abandoned)) finish();
}

static void on_finish_timer(uv_timer_t *t) {
    (void)t;
    maybe_finish();
}

static void on_producer_finished(void) { maybe_finish(); }

static void on_ws_stopped(void) {
    app.ws_stopped = true;
    /* no more input: the producer ends once the buffer is empty */
    sc_buffer_close(&app.buf);
    maybe_finish();
}

static void abandon(const char *why) {
    if (app.abandoned) return;
    app.abandoned = true;
    TLOG(TLOG_ERROR, "flush_abandoned", TLOG_S("msg", why), TLOG_I("buffered", sc_buffer_count(&app.buf)));
    sc_buffer_abandon(&app.buf);
    /* the socket may still be closing: give it a moment, not the world */
    sc_ws_stop();
    uv_timer_start(&app.finish, on_finish_timer, 0, 0);
}

static void on_flush_timeout(uv_timer_t *t) {
    (void)t;
    if (!app.ws_stopped) app.ws_stopped = true; /* a close that hangs must not keep us either */
    abandon("--flush-timeout passed before the buffer was added to Redis");
}

static void on_signal(uv_signal_t *s, int signum) {
    (void)s;
    if (signum == SIGHUP) {
        tlog_reopen();
        return;
    }
    if (app.shutting_down) {
        /* the same signal delivered twice (to the process and to its group,
         * as `timeout` does) is not an impatient operator */
        if (tlog_mono_ms() - app.shutdown_started < 1000) return;
        app.ws_stopped = true;
        abandon("second signal: exiting without waiting for Redis");
        return;
    }
    app.shutting_down = true;
    app.shutdown_started = tlog_mono_ms();
    TLOG(TLOG_INFO, "shutdown", TLOG_S("signal", signum == SIGINT ? "SIGINT" : "SIGTERM"),
         TLOG_I("buffered", sc_buffer_count(&app.buf)), TLOG_I("flush_timeout_ms", app.cfg.flush_timeout_ms));
    uv_timer_start(&app.flush, on_flush_timeout, (uint64_t)app.cfg.flush_timeout_ms, 0);
    sc_ws_stop();
}

/* 64 random bits in hex: deduplication ids must not meet those of another
 * run or another client on the same queue. */
static int instance_id(char *out, size_t size) {
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        TLOG(TLOG_ERROR, "start", TLOG_S("msg", "getrandom failed"));
        return -1;
    }
    snprintf(out, size, "%016llx", (unsigned long long)r);
    return 0;
}

typedef struct check {
    bool done;
    int status;
    bullc_error err;
} check;

static void on_checked(bullc_aqueue *aq, int status, const char *json, const bullc_error *err, void *data) {
    check *c = data;
    (void)aq;
    (void)json;
    c->done = true;
    c->status = status;
    if (status) c->err = *err;
}

/* Redis at start, before the socket: the connection's hand-shake and the
 * queue's major, through a read of the queue, on the loop. */
static int check_redis(bullc_error *err) {
    const char *waiting[] = {"waiting"};
    check c = {0};
    int rc = bullc_aqueue_get_job_counts(app.queue, waiting, 1, on_checked, &c);
    if (rc) {
        snprintf(err->message, sizeof err->message, "%s", bullc_strerror(rc));
        return rc;
    }
    while (!c.done) uv_run(&app.loop, UV_RUN_ONCE);
    if (c.status) *err = c.err;
    return c.status;
}

/* Redis settings: defaults, then the environment, then --redis. */
static int redis_opts(bullc_redis_opts **out) {
    bullc_error err = {0};
    if (bullc_redis_opts_new(out)) return SC_EXIT_FAIL;
    int rc = bullc_redis_opts_from_env(*out, &err);
    if (rc >= 0 && app.cfg.redis_url) rc = bullc_redis_opts_parse_url(*out, app.cfg.redis_url, &err);
    if (rc >= 0) rc = cli_tls_apply(&app.cfg.tls, *out, &err);
    if (rc < 0) {
        fprintf(stderr, "bullc-socket-client: %s\n", err.message);
        return SC_EXIT_USAGE;
    }
    return 0;
}

/* {"removeOnComplete":..,"removeOnFail":..} then --job-opts over them. */
static int job_opts(bullc_job_opts **out) {
    bullc_error err = {0};
    if (bullc_job_opts_new(out)) return SC_EXIT_FAIL;
    /* each must be one JSON value, or "10,\"x\":1" would slip in a member */
    const char *values[] = {app.cfg.remove_on_complete, app.cfg.remove_on_fail};
    for (int i = 0; i < 2; i++) {
        cJSON *v = cJSON_ParseWithOpts(values[i], NULL, 1);
        cJSON_Delete(v);
        if (!v) {
            fprintf(stderr, "bullc-socket-client: --remove-on-%s: not a JSON value: %s\n", i ? "fail" : "complete",
                    values[i]);
            return SC_EXIT_USAGE;
        }
    }
    size_t n = strlen(app.cfg.remove_on_complete) + strlen(app.cfg.remove_on_fail) + 64;
    char *json = malloc(n);
    if (!json) return SC_EXIT_FAIL;
    snprintf(json, n, "{\"removeOnComplete\":%s,\"removeOnFail\":%s}", app.cfg.remove_on_complete,
             app.cfg.remove_on_fail);
    int rc = bullc_job_opts_merge_json(*out, json, &err);
    free(json);
    if (!rc && app.cfg.job_opts) rc = bullc_job_opts_merge_json(*out, app.cfg.job_opts, &err);
    if (!rc) rc = bullc_job_opts_validate(*out, &err);
    if (rc) {
        fprintf(stderr, "bullc-socket-client: job options: %s\n", err.message);
        return SC_EXIT_USAGE;
    }
    if (app.cfg.job_opts && app.cfg.dedup_ttl_ms > 0) {
        /* the user's own deduplication wins over ours */
        cJSON *j = cJSON_Parse(app.cfg.job_opts);
        if (cJSON_HasObjectItem(j, "deduplication")) {
            app.cfg.dedup_ttl_ms = 0;
            TLOG(TLOG_WARN, "start", TLOG_S("msg", "--job-opts has a deduplication option: --dedup-ttl is off"));
        }
        cJSON_Delete(j);
    }
    return 0;
}

int main(int argc, char **argv) {
    int rc = sc_config_parse(&app.cfg, argc, argv);
    if (rc) {
        sc_config_free(&app.cfg);
        return rc < 0 ? SC_EXIT_OK : rc;
    }
    char why[256];
    if (tlog_open(app.cfg.log_file, app.cfg.log_format, app.cfg.log_level, why, sizeof why)) {
        fprintf(stderr, "bullc-socket-client: %s\n", why);
        sc_config_free(&app.cfg);
        return SC_EXIT_USAGE;
    }
    /* a Redis or socket peer that goes away must be an error code, not a signal */
    signal(SIGPIPE, SIG_IGN);

    bullc_redis_opts *ro = NULL;
    bullc_job_opts *jo = NULL;
    bullc_error err = {0};
    int exit_code = SC_EXIT_OK;
    if ((rc = redis_opts(&ro)) || (rc = job_opts(&jo))) {
        exit_code = rc;
        goto out;
    }
    bullc_queue_opts *qo = NULL;
    if (!(rc = bullc_queue_opts_new(&qo)) && !(rc = bullc_queue_opts_set_redis(qo, ro)) &&
        !(rc = bullc_queue_opts_set_prefix(qo, app.cfg.prefix)) &&
        !(rc = bullc_queue_opts_set_bullmq_version(qo, app.cfg.bullmq_version)) &&
        !(rc = uv_loop_init(&app.loop) ? BULLC_ENOMEM : 0)) {
        app.loop_open = true;
        rc = bullc_aqueue_new(&app.queue, &app.loop, app.cfg.queue, qo, &err);
    } else
        snprintf(err.message, sizeof err.message, "%s", bullc_strerror(rc));
    bullc_queue_opts_free(qo);
    if (rc) {
        fprintf(stderr, "bullc-socket-client: %s\n", err.message);
        exit_code = rc == BULLC_EINVAL ? SC_EXIT_USAGE : SC_EXIT_FAIL;
        goto out;
    }
    char where[256], *opts_json = bullc_job_opts_to_json(jo);
    bullc_redis_opts_describe(ro, where, sizeof where);
    TLOG(TLOG_INFO, "start", TLOG_S("version", bullc_version()), TLOG_S("url", app.cfg.url.display),
         TLOG_S("provider", app.cfg.provider), TLOG_S("redis", where),
         TLOG_S("prefix", app.cfg.prefix ? app.cfg.prefix : "bull"), TLOG_S("queue", app.cfg.queue),
         TLOG_S("job_name", app.cfg.job_name), TLOG_S("job_opts", opts_json), TLOG_I("buffer", app.cfg.buffer_size),
         TLOG_I("max_message_bytes", app.cfg.max_message_bytes), TLOG_I("dedup_ttl_ms", app.cfg.dedup_ttl_ms));
    bullc_free(opts_json);

    /* Redis at start: a refused password or database will not fix itself;
     * an absent Redis may come back, and the buffer covers it meanwhile. */
    rc = check_redis(&err);
    atomic_store(&sc_st.redis_up, rc == 0);
    if (rc == BULLC_EVERSION) {
        TLOG(TLOG_ERROR, "redis", TLOG_S("msg", "BullMQ major conflict"), TLOG_S("code", bullc_err_name(rc)),
             TLOG_S("error", err.message));
        exit_code = SC_EXIT_VERSION;
        goto out;
    }
    if (rc == BULLC_EAUTH || (rc && app.cfg.require_redis)) {
        TLOG(TLOG_ERROR, "redis", TLOG_S("msg", "Redis is not usable at start"), TLOG_S("code", bullc_err_name(rc)),
             TLOG_S("error", err.message));
        exit_code = SC_EXIT_REDIS;
        goto out;
    }
    if (rc)
        TLOG(TLOG_WARN, "redis_down", TLOG_S("msg", "Redis is unreachable at start; messages wait in the buffer"),
             TLOG_S("code", bullc_err_name(rc)), TLOG_S("error", err.message));

    char instance[20];
    if (instance_id(instance, sizeof instance)) {
        exit_code = SC_EXIT_FAIL;
        goto out;
    }
    if (sc_buffer_init(&app.buf, app.cfg.buffer_size)) {
        fprintf(stderr, "bullc-socket-client: cannot allocate a buffer of %zu messages\n", app.cfg.buffer_size);
        exit_code = SC_EXIT_FAIL;
        goto out;
    }
    uv_timer_init(&app.loop, &app.stats);
    uv_timer_init(&app.loop, &app.flush);
    uv_timer_init(&app.loop, &app.finish);
    uv_signal_init(&app.loop, &app.sig_int);
    uv_signal_init(&app.loop, &app.sig_term);
    uv_signal_init(&app.loop, &app.sig_hup);
    uv_signal_start(&app.sig_int, on_signal, SIGINT);
    uv_signal_start(&app.sig_term, on_signal, SIGTERM);
    uv_signal_start(&app.sig_hup, on_signal, SIGHUP);
    if (app.cfg.stats_interval_ms > 0)
        uv_timer_start(&app.stats, on_stats, (uint64_t)app.cfg.stats_interval_ms, (uint64_t)app.cfg.stats_interval_ms);

    app.producer = (sc_producer){.loop = &app.loop,
                                 .buf = &app.buf,
                                 .queue = app.queue,
                                 .opts = jo,
                                 .job_name = app.cfg.job_name,
                                 .batch = app.cfg.batch,
                                 .dedup_ttl_ms = app.cfg.dedup_ttl_ms,
                                 .on_finished = on_producer_finished};
    snprintf(app.producer.instance, sizeof app.producer.instance, "%s", instance);
    if (sc_producer_start(&app.producer) || sc_ws_start(&app.loop, &app.cfg, &app.buf, on_ws_stopped)) {
        TLOG(TLOG_ERROR, "start", TLOG_S("msg", "cannot start (see above)"));
        exit_code = SC_EXIT_FAIL;
        app.ws_stopped = true;
        abandon("start failed");
    }
    uv_run(&app.loop, UV_RUN_DEFAULT);

    size_t left = sc_buffer_count(&app.buf);
    if (app.abandoned && left) exit_code = exit_code ? exit_code : SC_EXIT_LOST;
    TLOG(left ? TLOG_ERROR : TLOG_INFO, "exit", TLOG_I("code", exit_code), TLOG_I("lost", left),
         TLOG_I("shutdown_ms", app.shutdown_started ? tlog_mono_ms() - app.shutdown_started : 0), SC_COUNTERS);
    if ((rc = uv_loop_close(&app.loop)))
        TLOG(TLOG_WARN, "loop", TLOG_S("msg", "the loop did not close clean"), TLOG_S("error", uv_strerror(rc)));
    app.loop_open = false;
    sc_buffer_destroy(&app.buf);
out:
    if (app.loop_open) { /* a stop at start: the queue's handles close before the loop goes */
        if (app.queue) bullc_aqueue_close(app.queue, NULL, NULL);
        uv_run(&app.loop, UV_RUN_DEFAULT);
        uv_loop_close(&app.loop);
    }
    bullc_aqueue_free(app.queue);
    bullc_job_opts_free(jo);
    bullc_redis_opts_free(ro);
    sc_config_free(&app.cfg);
    tlog_close();
    return exit_code;
}
