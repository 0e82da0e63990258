/* SPDX-License-Identifier: MIT */
/* bullc-worker: a drop-in replacement for a Node BullMQ worker process.
 * Start-up: configuration, log, Redis check, plugins; then run.c runs the
 * workers until a signal stops them. */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bw.h"

/* A start-up failure: a log line, and a plain line on stderr when the log
 * goes elsewhere, so that whoever started the program sees why it stopped. */
static int fatal(const bw_config *cfg, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fatal(const bw_config *cfg, int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    TLOG(TLOG_ERROR, "fatal", TLOG_S("msg", msg), TLOG_I("exit_code", code));
    if (cfg->log_file || cfg->log_format == TLOG_JSON) fprintf(stderr, "bullc-worker: %s\n", msg);
    return code;
}

/* On the exporter's thread (tlog is thread-safe): once per outage, so an
 * operator learns why bullc_worker_trace_spans_dropped_total grows. */
static void export_failed(const bullc_error *err, void *data) {
    (void)data;
    TLOG(TLOG_WARN, "tracing-export-failed", TLOG_S("error", err->message));
}

/* OpenTelemetry from the standard OTEL_* variables: off unless an endpoint
 * is set. */
static int tracer_settings(const bw_config *cfg, bullc_tracer **out) {
    bullc_error err = {0};
    bullc_tracer_opts *o = NULL;
    bool on = false;
    if (bullc_tracer_opts_new(&o)) return fatal(cfg, BW_EXIT_FAIL, "out of memory");
    bullc_tracer_opts_set_service_name(o, "bullc-worker");
    bullc_tracer_opts_set_error_cb(o, export_failed, NULL);
    int rc = bullc_tracer_opts_from_env(o, &on, &err);
    if (!rc && on) rc = bullc_tracer_new(out, o, &err);
    bullc_tracer_opts_free(o);
    if (rc) return fatal(cfg, rc == BULLC_EINVAL ? BW_EXIT_USAGE : BW_EXIT_FAIL, "OpenTelemetry: %s", err.message);
    if (on) TLOG(TLOG_INFO, "tracing", TLOG_S("exporter", "otlp/http-json"));
    return 0;
}

static int redis_settings(const bw_config *cfg, bullc_redis_opts **out) {
    bullc_error err = {0};
    if (bullc_redis_opts_new(out)) return fatal(cfg, BW_EXIT_FAIL, "out of memory");
    /* the environment first, then --redis (or the file's "redis") over it */
    int rc = bullc_redis_opts_from_env(*out, &err);
    if (rc < 0) return fatal(cfg, BW_EXIT_USAGE, "Redis settings from the environment: %s", err.message);
    if (cfg->redis_url && bullc_redis_opts_parse_url(*out, cfg->redis_url, &err) < 0)
        return fatal(cfg, BW_EXIT_USAGE, "%s%s: %s", cfg->redis_url_from_file ? cfg->config_path : "--redis",
                     cfg->redis_url_from_file ? ": redis" : "", err.message);
    if (cli_tls_apply(&cfg->tls, *out, &err) < 0) return fatal(cfg, BW_EXIT_USAGE, "%s", err.message);
    bullc_redis_opts_set_busy_poll(*out, cfg->busy_poll_us); /* range checked by the parser */
    return 0;
}

/* A queue handle for checks: a worker writes nothing until it takes a job,
 * so it skips the queue's meta update. */
static int open_queue(const bullc_redis_opts *ro, const bw_queue_cfg *qc, bullc_queue **out, bullc_error *err) {
    bullc_queue_opts *qo = NULL;
    int rc = bullc_queue_opts_new(&qo);
    if (!rc) rc = bullc_queue_opts_set_redis(qo, ro);
    if (!rc) rc = bullc_queue_opts_set_prefix(qo, qc->s.prefix);
    if (!rc) rc = bullc_queue_opts_set_skip_meta_update(qo, true);
    if (!rc) rc = bullc_queue_opts_set_bullmq_version(qo, qc->s.bullmq_version);
    if (!rc)
        rc = bullc_queue_new(out, qc->name, qo, err);
    else
        snprintf(err->message, sizeof err->message, "%s", bullc_strerror(rc));
    bullc_queue_opts_free(qo);
    return rc;
}

/* One synchronous PING before anything starts: a wrong host or password is
 * a clear message and exit code 3, not a worker retrying for ever. */
static int check_redis(const bw_config *cfg, const bullc_redis_opts *ro, const char *where) {
    bullc_queue *q = NULL;
    bullc_error err = {0};
    /* only globs, which found nothing yet: a handle on an unused name does for the PING (it writes nothing) */
    bw_queue_cfg probe = {.name = "bullc-worker"};
    probe.s.prefix = cfg->glob_prefix;
    int rc = open_queue(ro, cfg->nqueues ? &cfg->queues[0] : &probe, &q, &err);
    if (rc) return fatal(cfg, rc == BULLC_EINVAL ? BW_EXIT_USAGE : BW_EXIT_FAIL, "%s", err.message);
    rc = bullc_queue_ping(q, &err);
    bullc_queue_free(q);
    switch (rc) {
    case 0:
        return 0;
    case BULLC_ECONN:
    case BULLC_ETIMEDOUT:
        return fatal(cfg, BW_EXIT_REDIS, "cannot reach Redis at %s: %s", where, err.message);
    case BULLC_EAUTH:
        return fatal(cfg, BW_EXIT_REDIS, "Redis at %s refused the credentials or the database: %s", where, err.message);
    case BULLC_EVERSION: /* not bypassed by --allow-unsafe-redis: the worker could not run its scripts */
        return fatal(cfg, BW_EXIT_UNSAFE, "%s", err.message);
    default:
        return fatal(cfg, BW_EXIT_REDIS, "Redis at %s: %s", where, err.message);
    }
}

/* As execvp looks for it: a name with a slash as it is, else along PATH. */
static bool exec_findable(const char *prog) {
    if (strchr(prog, '/')) return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *dir = path; *dir;) {
        size_t len = strcspn(dir, ":");
        char full[4096];
        int w = snprintf(full, sizeof full, "%.*s/%s", (int)len, len ? dir : ".", prog);
        if (w > 0 && (size_t)w < sizeof full && access(full, X_OK) == 0) return true;
        dir += len + (dir[len] == ':');
    }
    return false;
}

/* The programs warned about (on the loop's thread only: at start and at
 * SIGHUP), so that many queues naming one program say it once. */
static char **warned;
static size_t nwarned;
static void free_warned(void) {
    for (size_t i = 0; i < nwarned; i++) free(warned[i]);
    free(warned);
}

/* A mistyped --exec program would fail every job of the queue, one attempt
 * after another, with nothing said at start: the command may still appear
 * (a deployment in progress), so this is a warning, said once per program. */
static void warn_exec_missing(const bw_queue *q) {
    const char *prog = q->cfg->proc.argv && q->cfg->proc.argv[0] ? q->cfg->proc.argv[0] : NULL;
    if (!prog) return;
    for (size_t i = 0; i < nwarned; i++)
        if (!strcmp(prog, warned[i])) return;
    if (exec_findable(prog)) return;
    /* out of memory: warned again next time, which is harmless */
    char **grown = realloc(warned, (nwarned + 1) * sizeof *grown);
    if (grown) {
        if (!warned) atexit(free_warned);
        warned = grown;
        if ((warned[nwarned] = strdup(prog))) nwarned++;
    }
    char msg[700];
    snprintf(msg, sizeof msg, "cannot run %s (not found%s, or not executable): its jobs fail until it is there", prog,
             strchr(prog, '/') ? "" : " in PATH");
    TLOG(TLOG_WARN, "exec-missing", TLOG_S("queue", q->cfg->name), TLOG_S("msg", msg));
}

/* Plugins are loaded and initialised, builtins that take a configuration
 * check it (and make their connections' settings); a missing exec program
 * is a warning. */
int bw_queue_load(bw_queue *q, const bullc_redis_opts *redis, char *why, size_t n) {
    if (q->cfg->proc.kind == BW_PROC_EXEC || q->cfg->proc.kind == BW_PROC_EXEC_PERSISTENT) warn_exec_missing(q);
    if (q->cfg->proc.kind == BW_PROC_BUILTIN) return bw_builtin_init(q, redis, why, n);
    if (q->cfg->proc.kind != BW_PROC_PLUGIN) return 0;
    if (bw_plugin_load(q, why, n)) return BW_EXIT_USAGE;
    if (bw_plugin_init(q, why, n)) return BW_EXIT_FAIL;
    return 0;
}

static int load_plugins(bw_app *app) {
    char why[600];
    size_t threads = 0;
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_queue *q = app->queues[i];
        int code = bw_queue_load(q, app->redis, why, sizeof why);
        if (code) return fatal(app->cfg, code, "%s", why);
        bool blocking = q->cfg->proc.kind == BW_PROC_PLUGIN ||
                        (q->cfg->proc.kind == BW_PROC_BUILTIN && bw_builtin_blocking(q->cfg->proc.builtin));
        if (blocking) threads += (size_t)(q->cfg->s.concurrency ? q->cfg->s.concurrency : 1);
    }
    /* Blocking processors (plugins, and the builtins that wait on Redis or
     * HTTP) run on libuv's pool (4 threads by default): give every
     * concurrency slot a thread, unless the user chose a size. */
    if (threads > 4 && !getenv("UV_THREADPOOL_SIZE")) {
        char n[16];
        snprintf(n, sizeof n, "%zu", threads > 1024 ? (size_t)1024 : threads);
        setenv("UV_THREADPOOL_SIZE", n, 1);
    }
    return 0;
}

static void unload_plugins(bw_app *app) {
    for (size_t i = 0; i < app->nqueues; i++)
        if (app->queues[i]->cfg && app->queues[i]->cfg->proc.kind == BW_PROC_BUILTIN) bw_builtin_fini(app->queues[i]);
    for (size_t i = 0; i < app->nqueues; i++) bw_plugin_fini(app->queues[i]);
    for (size_t i = 0; i < app->nqueues; i++) bw_plugin_unload(app->queues[i]);
}

static void log_open_handle(uv_handle_t *h, void *arg) {
    (void)arg;
    TLOG(TLOG_ERROR, "exit", TLOG_S("msg", "a handle is still open after shutdown"),
         TLOG_S("type", uv_handle_type_name(uv_handle_get_type(h))), TLOG_B("closing", uv_is_closing(h)));
}

/* The process's own argument strings are what `ps` shows: a --redis URL
 * is copied for the parser and its password overwritten in place. */
static char *url_copies[8];
static void free_url_copies(void) {
    for (size_t i = 0; i < sizeof url_copies / sizeof url_copies[0]; i++) free(url_copies[i]);
}
static void mask_redis_args(int argc, char **argv) {
    size_t n = 0;
    atexit(free_url_copies);
    for (int i = 1; i < argc && n < sizeof url_copies / sizeof url_copies[0]; i++) {
        size_t skip; /* where the URL starts in argv[i] */
        if (!strcmp(argv[i], "--redis") && i + 1 < argc)
            i++, skip = 0;
        else if (!strncmp(argv[i], "--redis=", 8))
            skip = 8;
        else
            continue;
        char *copy = strdup(argv[i]);
        if (!copy) continue;
        url_copies[n++] = copy;
        bullc_redis_url_mask(argv[i] + skip);
        argv[i] = copy;
    }
}

/* Guard rails (bullc_queue_check_server): an eviction policy, a cluster
 * without a hash tag or a queue of another BullMQ major lose jobs, so the
 * worker refuses to start on them unless told otherwise; the rest is a
 * warning. CONFIG/INFO forbidden by a managed Redis only skip checks. */
static int check_server(const bw_config *cfg, const bullc_redis_opts *ro) {
    if (!cfg->nqueues) return 0;
    /* every queue at once: one connection, the server read once (a warning
     * about it is said once, not once per queue), the meta reads pipelined */
    bullc_queue **qs = calloc(cfg->nqueues, sizeof *qs);
    if (!qs) return fatal(cfg, BW_EXIT_FAIL, "server checks: out of memory");
    bullc_error err = {0};
    char *report = NULL;
    int rc = 0;
    for (size_t i = 0; !rc && i < cfg->nqueues; i++) rc = open_queue(ro, &cfg->queues[i], &qs[i], &err);
    if (!rc) rc = bullc_queue_check_servers(qs, cfg->nqueues, &report, &err);
    for (size_t i = 0; i < cfg->nqueues; i++) bullc_queue_free(qs[i]);
    free(qs);
    if (rc) return fatal(cfg, BW_EXIT_REDIS, "server checks: %s", err.message);
    cJSON *r = cJSON_Parse(report);
    bullc_free(report);
    const char *where = cfg->nqueues == 1 ? cfg->queues[0].name : NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(r, "warnings"))
        TLOG(TLOG_WARN, "redis", TLOG_S("queue", where), TLOG_S("msg", e->valuestring));
    int errors = 0;
    char first[400] = "", first_queue[200] = "";
    const cJSON *server_errors = cJSON_GetObjectItem(r, "errors"), *q;
    cJSON_ArrayForEach(e, server_errors) {
        if (!errors++) snprintf(first, sizeof first, "%s", e->valuestring);
        TLOG(cfg->allow_unsafe_redis ? TLOG_WARN : TLOG_ERROR, "redis", TLOG_S("queue", where),
             TLOG_S("msg", e->valuestring));
    }
    cJSON_ArrayForEach(q, cJSON_GetObjectItem(r, "queues")) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(q, "name"));
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(q, "errors")) {
            if (!errors++) {
                snprintf(first, sizeof first, "%s", e->valuestring);
                snprintf(first_queue, sizeof first_queue, "%s", name);
            }
            TLOG(cfg->allow_unsafe_redis ? TLOG_WARN : TLOG_ERROR, "redis", TLOG_S("queue", name),
                 TLOG_S("msg", e->valuestring));
        }
    }
    cJSON_Delete(r);
    if (errors && !cfg->allow_unsafe_redis) {
        const char *qn = *first_queue ? first_queue : cfg->queues[0].name;
        if (errors > 1)
            return fatal(cfg, BW_EXIT_UNSAFE, "queue %s: %s (and %d more; --allow-unsafe-redis starts anyway)", qn,
                         first, errors - 1);
        return fatal(cfg, BW_EXIT_UNSAFE, "queue %s: %s (--allow-unsafe-redis starts anyway)", qn, first);
    }
    return 0;
}

/* The fds the program needs at full concurrency: a few of its own (stdio,
 * epoll, signals, the log, the pool's eventfd), the cancel listener's Redis
 * connection, two per queue (commands and the blocking fetch), and per job in process: three
 * pipes for an exec command (eight while it starts), a connection for the
 * blocking builtins (Redis or a webhook), one for a plugin. A queue that
 * cannot connect is not a failure the worker sees at start: it logs
 * connection errors for ever. So the limit is checked, and raised up to the
 * hard limit, before anything starts. */
#define FD_BASE 16
static int64_t fds_needed(const bw_config *cfg) {
    int64_t n = FD_BASE + 1 + (cfg->shared_connections ? 6 : 0); /* a group's 5 lanes and their command connection */
    for (size_t i = 0; i < cfg->nqueues; i++) {
        const bw_queue_cfg *q = &cfg->queues[i];
        int64_t c = q->s.concurrency ? q->s.concurrency : 1;
        if (!cfg->shared_connections) n += 2;
        if (q->proc.kind == BW_PROC_EXEC || q->proc.kind == BW_PROC_EXEC_PERSISTENT)
            n += 3 * c + 5;
        else if (q->proc.kind == BW_PROC_PLUGIN ||
                 (q->proc.kind == BW_PROC_BUILTIN && bw_builtin_blocking(q->proc.builtin)))
            n += c;
    }
    return n;
}

static int check_fd_limit(const bw_config *cfg) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return 0;
    int64_t need = fds_needed(cfg);
    if (rl.rlim_cur != RLIM_INFINITY && (int64_t)rl.rlim_cur < need) {
        /* room for reconnections and fds the program did not count */
        rlim_t want = (rlim_t)(need + need / 2);
        if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) want = rl.rlim_max;
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = want;
        if (want > was && !setrlimit(RLIMIT_NOFILE, &rl))
            TLOG(TLOG_INFO, "fd-limit", TLOG_I("raised_from", (int64_t)was), TLOG_I("to", (int64_t)want),
                 TLOG_I("needed", need));
        else
            rl.rlim_cur = was;
    }
    if (rl.rlim_cur == RLIM_INFINITY || (int64_t)rl.rlim_cur >= need) return 0;
    if (cfg->allow_low_fd_limit) {
        TLOG(TLOG_WARN, "fd-limit", TLOG_I("limit", (int64_t)rl.rlim_cur), TLOG_I("needed", need),
             TLOG_S("msg", "starting anyway (--allow-low-fd-limit): commands that cannot start go back to wait"));
        return 0;
    }
    return fatal(
        cfg, BW_EXIT_UNSAFE,
        "the open-files limit is %lld (hard limit %lld) but %zu queue(s) at their concurrency need about "
        "%lld fds (2 Redis connections per queue unless shared, 3 per exec command, 1 per plugin or blocking builtin "
        "job): raise it (ulimit -n, systemd LimitNOFILE=) or lower --concurrency; "
        "--allow-low-fd-limit starts anyway",
        (long long)rl.rlim_cur, rl.rlim_max == RLIM_INFINITY ? -1LL : (long long)rl.rlim_max, cfg->nqueues,
        (long long)need);
}

/* --queue-glob: the queues it matches at start are served from the start
 * (the configuration is read again with them); the loop looks again later. */
static int glob_at_start(bw_config *cfg, int argc, char **argv, char ***found, size_t *nfound) {
    bullc_redis_opts *ro = NULL;
    int code = redis_settings(cfg, &ro);
    bullc_error err = {0};
    if (!code && bw_glob_scan(cfg, ro, found, nfound, &err))
        code = fatal(cfg, BW_EXIT_REDIS, "--queue-glob: looking for the queues: %s", err.message);
    bullc_redis_opts_free(ro);
    if (code) return code;
    bw_config_free(cfg);
    code = bw_config_parse(cfg, argc, argv, *found, *nfound);
    return code == 1 ? BW_EXIT_USAGE : code;
}

int main(int argc, char **argv) {
    /* a command that exits without reading its input must not kill us */
    signal(SIGPIPE, SIG_IGN);
    mask_redis_args(argc, argv);
    bw_config cfg;
    int code = bw_config_parse(&cfg, argc, argv, NULL, 0);
    if (code) {
        bw_config_free(&cfg);
        return code == 1 ? BW_EXIT_OK : code;
    }
    char why[512];
    if (tlog_open(cfg.log_file, cfg.log_format, cfg.log_level, why, sizeof why)) {
        fprintf(stderr, "bullc-worker: %s\n", why);
        bw_config_free(&cfg);
        return BW_EXIT_USAGE;
    }
    if (bw_helpers_export()) {
        fprintf(stderr, "bullc-worker: out of memory\n");
        bw_config_free(&cfg);
        return BW_EXIT_FAIL;
    }
    bw_app app;
    memset(&app, 0, sizeof app);
    if (cfg.nglobs && (code = glob_at_start(&cfg, argc, argv, &app.found, &app.nfound))) {
        bw_glob_names_free(app.found, app.nfound);
        tlog_close();
        bw_config_free(&cfg);
        return code;
    }
    app.cfg = &cfg;
    app.argc = argc;
    app.argv = argv;
    app.nqueues = cfg.nqueues;
    char where[512] = "";
    /* each queue apart: SIGHUP adds queues, and their handles must not move */
    app.queues_cap = cfg.nqueues;
    if (!(app.queues = calloc(cfg.nqueues ? cfg.nqueues : 1, sizeof *app.queues)))
        code = fatal(&cfg, BW_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < cfg.nqueues && !code; i++)
        if (!(app.queues[i] = calloc(1, sizeof **app.queues))) {
            app.nqueues = i;
            code = fatal(&cfg, BW_EXIT_FAIL, "out of memory");
        }
    if (!code) code = redis_settings(&cfg, &app.redis);
    if (!code) code = tracer_settings(&cfg, &app.tracer);
    if (!code) {
        bullc_redis_opts_describe(app.redis, where, sizeof where);
        TLOG(TLOG_INFO, "start", TLOG_S("version", bullc_version()), TLOG_S("bullmq", bullc_bullmq_version()),
             TLOG_S("redis", where), TLOG_I("queues", (int64_t)cfg.nqueues), TLOG_I("pid", getpid()));
        code = check_fd_limit(&cfg);
        if (!code) code = check_redis(&cfg, app.redis, where);
        if (!code) code = check_server(&cfg, app.redis);
        if (!code) code = bw_schedulers_upsert(&cfg, app.redis);
    }
    for (size_t i = 0; i < app.nqueues && !code; i++) {
        app.queues[i]->app = &app;
        app.queues[i]->cfg = &cfg.queues[i];
    }
    if (!code) code = load_plugins(&app);
    if (!code && uv_loop_init(&app.loop)) code = fatal(&cfg, BW_EXIT_FAIL, "cannot create the event loop");
    if (!code) {
        code = bw_app_run(&app);
        unload_plugins(&app);
        int rc = uv_loop_close(&app.loop);
        if (rc && code == BW_EXIT_OK) {
            /* a leak in the shutdown path: say so rather than exit 0 */
            uv_walk(&app.loop, log_open_handle, NULL);
            code = BW_EXIT_FAIL;
        }
        TLOG(TLOG_INFO, "exit", TLOG_I("code", code), TLOG_B("loop_closed", rc == 0));
    } else if (app.queues) {
        unload_plugins(&app);
    }
    bullc_tracer_free(app.tracer); /* the workers are gone: exports what they left */
    bullc_redis_opts_free(app.redis);
    for (size_t i = 0; app.queues && i < app.nqueues; i++) free(app.queues[i]);
    free(app.queues);
    bw_app_free_kept(&app);
    bw_glob_names_free(app.found, app.nfound);
    tlog_close();
    bw_config_free(&cfg);
    return code;
}
