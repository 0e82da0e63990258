/* SPDX-License-Identifier: MIT */
/* bullc-worker's private header: shared by its .c files only. The program
 * uses bullc's public API, libuv, cJSON and libc, like any user would. */
#ifndef BW_H
#define BW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <bullc/bullc.h>
#include <uv.h>

/* Exit codes (also in --help and docs/worker.md). */
enum {
    BW_EXIT_OK = 0,        /* stopped by a signal; every job in process was finished and stored */
    BW_EXIT_FAIL = 1,      /* a failure at run time (a worker could not start, a plugin's init failed) */
    BW_EXIT_USAGE = 2,     /* bad flags, bad config file, unknown builtin, plugin not loadable, log file */
    BW_EXIT_REDIS = 3,     /* Redis unreachable, timed out, or refused the password / database at start */
    BW_EXIT_ABANDONED = 4, /* shutdown was forced (second signal or --shutdown-timeout): jobs were left
                              in active for stalled recovery */
    BW_EXIT_UNSAFE = 5     /* the server checks found a setting that loses jobs (eviction policy, cluster
                              without a hash tag, a queue of another BullMQ major); --allow-unsafe-redis */
};

/* An exec child that exits with this code fails its job without retries
 * (BULLC_FAIL_UNRECOVERABLE). 78 is sysexits' EX_CONFIG. */
#define BW_EXIT_UNRECOVERABLE 78

#include "tlog.h"
#include "tls_flags.h"

/* ---- config.c: flags and the config file ----------------------------------- */

enum { BW_PROC_NONE, BW_PROC_EXEC, BW_PROC_PLUGIN, BW_PROC_BUILTIN, BW_PROC_EXEC_PERSISTENT };

/* How a queue's jobs are processed. */
typedef struct bw_proc {
    int kind;
    char **argv; /* exec, exec-persistent: program and arguments, NULL-terminated */
    int argc;
    const char *path;        /* plugin: the .so */
    const char *config_json; /* plugin: passed to bullc_plugin_init; builtin: its configuration (NULL: none) */
    const char *builtin;     /* builtin: noop, echo, sleep, game-data, notification */
} bw_proc;

/* Worker settings; `set` has a bit per option given, so that layers (file
 * defaults, file queue, flags) can be merged. */
typedef struct bw_settings {
    uint32_t set;
    int concurrency, max_stalled_count;
    int64_t lock_duration, lock_renew_time, stalled_interval;
    double drain_delay; /* seconds, as Node's drainDelay */
    int64_t limiter_max, limiter_duration, max_started_attempts, max_rate_limit_delay, metrics_max_data_points;
    int64_t timeout;    /* ms; 0 none */
    int64_t kill_grace; /* ms between SIGTERM and SIGKILL of an exec child */
    int exec_children;  /* exec-persistent: children shared by the slots (0: one per slot) */
    const char *remove_on_complete, *remove_on_fail, *name, *prefix;
    bool skip_stalled_check, skip_lock_renewal;
    int bullmq_version; /* 0: auto, 5, 6 */
} bw_settings;

typedef struct bw_queue_cfg {
    const char *name;
    bw_proc proc;
    bw_settings s; /* merged: library defaults <- file defaults <- file queue <- flags */
} bw_queue_cfg;

typedef struct bw_config {
    const char *redis_url;
    bool redis_url_from_file; /* the file's "redis", for messages */
    cli_tls tls;              /* --tls-* flags over the file's tls* keys */
    const char *config_path;
    int64_t shutdown_timeout; /* ms; 0: wait for ever */
    int busy_poll_us;         /* bullc_redis_opts_set_busy_poll */
    bool allow_unsafe_redis;  /* start despite the server checks' errors */
    bool allow_low_fd_limit;  /* start although the fd limit cannot cover every queue at full concurrency */
    bool exec_redis_env;      /* exec children see REDIS_PASSWORD and a REDIS_URL with a password */
    bool shared_connections;  /* every queue on one bullc_worker_group (2 to 6 connections in all) */
    int global_concurrency;   /* the group's cap on jobs in process (0: none) */
    const char *queues_file;  /* --queues-file: more queue names, one per line */
    const char **globs;       /* --queue-glob: patterns matched against the queues found in Redis */
    size_t nglobs;
    int64_t glob_interval_ms; /* how often the globs are matched again (0: at start and on SIGHUP only) */
    const char *glob_prefix;  /* the prefix the globs look under (NULL: bull) */
    const char *http;         /* --http ADDR:PORT: /metrics, /healthz, /readyz (NULL: no server) */
    int64_t counts_cache_ms;  /* how long /metrics reuses the queues' job counts */
    int64_t health_max_lag;   /* ms: a loop stalled longer (within the last minute) fails /healthz */
    int log_format, log_level;
    const char *log_file;
    bw_queue_cfg *queues;
    size_t nqueues;
    /* everything parsed is owned here */
    void **owned;
    size_t nowned, owned_cap;
    void *file_json;                /* the parsed config file (cJSON), strings point into it */
    const struct cJSON *schedulers; /* the file's "schedulers" (checked), or NULL */
} bw_config;

/* Parses argv (and the --config file it names) into `cfg`, serving the
 * `nfound` queue names --queue-glob found too (copied). Returns 0; 1 when
 * --help or --version was printed (exit 0); or BW_EXIT_USAGE after printing
 * the reason to stderr. */
int bw_config_parse(bw_config *cfg, int argc, char **argv, char *const *found, size_t nfound);
void bw_config_free(bw_config *cfg);
/* Applies the settings given in `s` to `o`. 0, or the setter's BULLC_E*
 * code with the reason in `why`. */
int bw_settings_to_opts(const bw_settings *s, bullc_worker_opts *o, char *why, size_t size);
void bw_usage(FILE *f);

/* ---- schedulers.c: the config file's job schedulers ----------------------- */
/* Checks the "schedulers" array (options, pattern and zone, template): 0, or
 * -1 with the reason in `why`. Writes nothing. */
int bw_schedulers_check(const struct cJSON *list, char *why, size_t size);
/* Upserts every scheduler of the file (after bw_schedulers_check): 0, or a
 * BW_EXIT_* code, logged. */
int bw_schedulers_upsert(const bw_config *cfg, const bullc_redis_opts *redis);

/* ---- run time --------------------------------------------------------------- */

typedef struct bw_app bw_app;
typedef struct bw_execp bw_execp;
typedef struct bw_httpd bw_httpd;
typedef struct bw_metrics bw_metrics;
typedef struct bw_plugin bw_plugin;
typedef struct bw_run bw_run;
typedef struct bw_sleep bw_sleep;

/* One queue at run time: its worker and its processor's state. */
typedef struct bw_queue {
    bw_app *app;
    const bw_queue_cfg *cfg;
    bullc_worker *worker;
    bool ready_once, closed;
    bool removed;      /* SIGHUP no longer names it: its worker closes (or could not start) */
    bw_plugin *plugin; /* plugin processors */
    void *plugin_state;
    bool plugin_inited;
    bw_run *runs;    /* exec children running */
    bw_execp *execp; /* exec-persistent: the slots and children (made at the first job) */
    /* exec: commands that cannot be started for want of fds, memory or
     * processes hand their jobs back; fetching pauses for spawn_backoff_ms */
    uv_timer_t spawn_timer;
    bool spawn_timer_inited, spawned_since_resume;
    int64_t spawn_backoff_ms, spawn_handed_back, spawn_warned_at;
    bw_sleep *sleeps;    /* sleep builtin timers running */
    void *builtin_state; /* game-data, notification: their settings and connections */
} bw_queue;

struct bw_app {
    uv_loop_t loop;
    bw_config *cfg;
    bullc_redis_opts *redis;
    bullc_cancel_listener *cancel; /* `bullc cancel` requests, for every queue */
    bw_queue **queues;             /* apart, so that SIGHUP can add queues without moving their handles */
    size_t nqueues, queues_cap;
    size_t nremoved;   /* queues SIGHUP removed (still listed: their worker closes or closed) */
    bool ready_logged; /* the ready line for the queues at start was written */
    bw_config **kept;  /* configurations that SIGHUP read and whose queues were added */
    size_t nkept;
    char **found; /* the queues --queue-glob found last, sorted */
    size_t nfound;
    uv_timer_t glob_timer;
    bool glob_timer_inited, glob_scanning, glob_again;
    uv_signal_t sig_int, sig_term, sig_hup, sig_usr1;
    int argc; /* SIGHUP parses them again for the config file's concurrency */
    char **argv;
    uv_timer_t shutdown_timer, hard_exit_timer;
    int signals;
    bool shutting_down, forced;
    size_t ready, open;
    int exit_code;
    bullc_worker_group *group;     /* --shared-connections: every queue's worker is a member */
    bw_httpd *httpd;               /* --http */
    struct lws_context *httpd_ctx; /* --http's lws context until lws has wholly destroyed it (lws NULLs it) */
    bw_metrics *metrics;           /* --http: what /metrics reads */
    bullc_tracer *tracer;          /* OTEL_* configured: the workers' spans */
};

/* run.c: runs every queue's worker until signals stop them; the exit code. */
int bw_app_run(bw_app *app);
/* Frees what SIGHUP's reloads kept (after the queues are gone). */
void bw_app_free_kept(bw_app *app);
/* Reads the configuration again (with the queues --queue-glob found last)
 * and applies it: concurrency, queues added and removed (SIGHUP). Loop thread. */
void bw_app_reload(bw_app *app);

/* glob.c: --queue-glob. The queues under the configuration's prefix whose
 * names match its globs, sorted (caller frees with bw_glob_names_free): 0 or
 * a BULLC_E* code with `err`. Any thread. */
int bw_glob_scan(const bw_config *cfg, const bullc_redis_opts *redis, char ***out, size_t *n, bullc_error *err);
void bw_glob_names_free(char **names, size_t n);
/* The periodic scan (start, stop), and one now (SIGHUP): a change in the
 * names found is applied with bw_app_reload. Loop thread; no-ops without globs. */
void bw_glob_start(bw_app *app);
void bw_glob_stop(bw_app *app);
void bw_glob_rescan(bw_app *app);

/* main.c: a queue's builtin initialised or plugin loaded and initialised (at
 * start, and for a queue SIGHUP adds). 0, or a BW_EXIT_* code with `why`. */
int bw_queue_load(bw_queue *q, const bullc_redis_opts *redis, char *why, size_t n);

/* httpd.c: --http's server on the app's loop. Start: 0, or an exit code
 * with `why` (BW_EXIT_USAGE: a bad or unusable ADDR:PORT). Close: at
 * shutdown, once the workers closed (it answers /readyz 503 meanwhile). */
int bw_httpd_start(bw_app *app, char *why, size_t n);
/* --http's ADDR:PORT form, checked with the other options (before Redis is
 * reached): its port, or 0 with `why`. */
int bw_httpd_port(const char *spec, char *why, size_t n);
void bw_httpd_close(bw_app *app);
/* After the loop ran out: completes the destruction of the lws context,
 * which on a foreign loop needs its handles closed by the loop first. */
void bw_httpd_finish(bw_app *app);
/* metrics.c says fresh job counts arrived (loop thread; NULL: no-op). */
void bw_httpd_counts_ready(bw_httpd *h);

/* metrics.c: what /metrics shows, and the queues' job counts (asked on the loop). */
struct bw_sb;
int bw_metrics_start(bw_app *app);
void bw_metrics_stop(bw_app *app);
/* Asks for fresh job counts unless the cached ones are recent enough:
 * true while a fetch is in progress (then bw_httpd_counts_ready follows).
 * bw_metrics_stop answers a fetch in progress and frees what is left once
 * its handles closed (the loop runs on). */
bool bw_metrics_refresh(bw_app *app);
void bw_metrics_write(bw_app *app, struct bw_sb *b);
/* Whether the queue's worker has both of its connections ready. */
bool bw_queue_redis_up(bw_queue *q);

/* exec.c: the --exec processor (asynchronous; the command runs as a child
 * process, without a shell). */
void bw_exec_process(bullc_job *job, void *data);
/* Sends `sig` to every child of the queue (forced shutdown). */
void bw_exec_kill_all(bw_queue *q, int sig);
/* Closes the queue's exec handles (at shutdown, with the app's). */
void bw_exec_close(bw_queue *q);
/* Whether an environment entry gives away Redis's password (REDIS_PASSWORD,
 * a REDIS_URL with one): children do not get it without --exec-redis-env. */
bool bw_exec_redis_secret(const char *env_entry);

/* spawn.c: starts `file` (searched in PATH) with argv and env, without a
 * shell, in a session of its own, every signal at its default, through
 * posix_spawn rather than a fork. fds gets the worker's ends of its stdin
 * (write), stdout and stderr (read), blocking and close-on-exec; pid_out its
 * pid and pidfd_out a pidfd that becomes readable when it exits (the caller
 * reaps it with waitpid and closes all four). 0, or a negative UV_E* code
 * (UV_ENOENT: no such program; nothing left open or running). Loop thread. */
int bw_spawn(const char *file, char *const argv[], char *const env[], int fds[3], int *pid_out, int *pidfd_out);
/* Kills (SIGKILL) and reaps a child of bw_spawn's the loop cannot watch. */
void bw_spawn_kill(int pid);

/* helpers_path.c: exports BULLC_HELPERS (the installed exec-persistent
 * helpers, found relative to this program unless already set) and appends it
 * to PYTHONPATH and NODE_PATH, for every processor started later. Call before
 * any thread starts. 0, or -1 when out of memory. */
int bw_helpers_export(void);

/* exec_persistent.c: the --exec-persistent processor (asynchronous; one
 * long-lived child per concurrency slot, or --exec-children shared ones, a
 * JSON line per job each way). */
void bw_execp_process(bullc_job *job, void *data);
/* Sends `sig` to every child of the queue (forced shutdown). */
void bw_execp_kill_all(bw_queue *q, int sig);
/* After the queue's worker closed: stops the children (stdin closed,
 * SIGTERM, SIGKILL after --kill-grace) and frees the pool once they went. */
void bw_execp_close(bw_queue *q);

/* builtin.c: the builtins by name. noop, echo and sleep are asynchronous
 * processors on the loop; game-data and notification are blocking ones (on
 * libuv's thread pool), with state made by bw_builtin_init. */
bool bw_builtin_known(const char *name);
bool bw_builtin_blocking(const char *name);
/* Once per queue, on the main thread, before its worker starts: checks the
 * builtin's configuration (proc.config_json). 0, or an exit code
 * (BW_EXIT_USAGE: bad configuration) with `why` filled. */
int bw_builtin_init(bw_queue *q, const bullc_redis_opts *redis, char *why, size_t why_size);
/* After the queue's worker closed. */
void bw_builtin_fini(bw_queue *q);
void bw_builtin_process(bullc_job *job, void *data);
void bw_builtin_process_blocking(bullc_job *job, bullc_job_result *out, void *data);
/* Forced shutdown: ends the sleeps in progress (their results are dropped)
 * and stops waiting webhooks. */
void bw_builtin_abort_all(bw_queue *q);

/* builtin_game_data.c, builtin_notification.c: the reference deployment's
 * processors (see those files and docs/reference-deployment.md). */
int bw_game_data_init(bw_queue *q, const bullc_redis_opts *redis, const char *config_json, char *why, size_t n);
void bw_game_data_fini(bw_queue *q);
void bw_game_data_process(bullc_job *job, bullc_job_result *out, void *data);
int bw_notification_init(bw_queue *q, const bullc_redis_opts *redis, const char *config_json, char *why, size_t n);
void bw_notification_fini(bw_queue *q);
void bw_notification_process(bullc_job *job, bullc_job_result *out, void *data);
void bw_notification_abort(bw_queue *q);

/* redis_pool.c: the library's synchronous connections (bullc_redis_conn)
 * for blocking builtins, made from bullc-worker's Redis settings (TLS,
 * Sentinel, Cluster); thread-safe. */
typedef struct bw_redis_pool bw_redis_pool;
/* `redis` is borrowed (each new connection copies it) and must outlive the
 * pool. */
int bw_redis_pool_new(bw_redis_pool **out, const bullc_redis_opts *redis);
void bw_redis_pool_free(bw_redis_pool *p);
/* Runs one command (binary-safe arguments) on a pooled connection (on a
 * cluster: routed by its first key, see bullc_redis_conn_command),
 * reconnecting once when an idle connection turns out broken. The reply
 * (free with bullc_redis_reply_free), or NULL with `why` filled: a Redis
 * error reply ("Redis error: ..."), or Redis could not be reached or did
 * not answer. */
bullc_redis_reply *bw_redis_pool_command(bw_redis_pool *p, int argc, const char **argv, const size_t *lens, char *why,
                                         size_t n);

/* http_post.c: webhook POSTs from thread-pool threads (libwebsockets). */
typedef struct bw_http bw_http;
typedef struct bw_http_req {
    const char *body;
    size_t body_len;
    const char *const *headers; /* name, value, name, value, ..., NULL; may be NULL */
    int64_t timeout_ms;         /* the whole request: connect, send, response */
    const bullc_job *job;       /* stop early when its lock is lost; may be NULL */
} bw_http_req;
/* Checks and keeps `url` (http:// or https://); `ca_file` (may be NULL:
 * the system store) is the CAs https trusts. 0, or -errno with `why`. */
int bw_http_new(bw_http **out, const char *url, const char *ca_file, char *why, size_t n);
/* After every bw_http_post returned. NULL is a no-op. */
void bw_http_free(bw_http *h);
/* The URL without its query string: for logs and failure reasons. */
const char *bw_http_display(const bw_http *h);
/* Makes requests in progress, and later ones, fail at once. Any thread. */
void bw_http_abort(bw_http *h);
/* lws' log handler for every lws user of the program (lws_set_log_level is
 * process-wide): a `lws` line, warn for its errors, debug otherwise; the
 * webhook client also keeps the calling thread's last one for its reasons. */
void bw_lws_log(int level, const char *line);
/* POSTs the body (application/json) and waits for the response. 0 for a
 * 2xx status (in *status); -1 with `why` ("webhook URL: HTTP 500: ...",
 * "...: connection failed: ...", "...: timed out after N ms"). */
int bw_http_post(bw_http *h, const bw_http_req *req, int *status, char *why, size_t n);

/* json.c: JSON as text (values passed on byte for byte). */
typedef struct bw_jspan {
    const char *p;
    size_t n;
} bw_jspan;
enum { BW_JSON_INVALID, BW_JSON_OBJECT, BW_JSON_ARRAY, BW_JSON_STRING, BW_JSON_NUMBER, BW_JSON_BOOL, BW_JSON_NULL };
/* Whether [json, json + len) is one valid JSON value, as JSON.parse decides
 * (any depth). */
bool bw_json_valid(const char *json, size_t len);
/* The text of member `key` of the object `json` (valid JSON): the last one
 * when the key is repeated, as JSON.parse takes it. False when `json` is
 * not an object or has no such member. */
bool bw_json_member(const char *json, size_t len, const char *key, bw_jspan *out);
int bw_json_kind(const bw_jspan *v);
/* A string value, decoded (malloc'd); NULL when not a string. */
char *bw_json_string_value(const bw_jspan *v);
/* A growing string; `failed` once an allocation failed (then take gives NULL). */
typedef struct bw_sb {
    char *p;
    size_t len, cap;
    bool failed;
} bw_sb;
void bw_sb_put(bw_sb *b, const char *s, size_t n);
void bw_sb_puts(bw_sb *b, const char *s);
void bw_sb_printf(bw_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `s` as a JSON string. */
void bw_sb_quote(bw_sb *b, const char *s);
/* [s, s+len) as a JSON string, NULs included (as \u0000). */
void bw_sb_quote_n(bw_sb *b, const char *s, size_t len);
/* The text (malloc'd), and the builder emptied. */
char *bw_sb_take(bw_sb *b);

/* plugin.c: the --plugin processor (blocking, on libuv's thread pool). */
int bw_plugin_load(bw_queue *q, char *why, size_t why_size);
int bw_plugin_init(bw_queue *q, char *why, size_t why_size);
void bw_plugin_fini(bw_queue *q);
void bw_plugin_unload(bw_queue *q);
void bw_plugin_process(bullc_job *job, bullc_job_result *out, void *data);

/* Milliseconds since the epoch. */

/* ---- lines.c: the exec processor's stderr protocol ---- */
#define BW_MAX_LINE 65536 /* a longer stderr line is cut into pieces */
typedef struct bw_lines {
    char *line;
    size_t len, cap;
} bw_lines;
typedef void (*bw_line_fn)(void *ctx, char *line, size_t len);
/* Cuts `buf` into lines (without the '\n'), calling `fn` for each complete one. */
void bw_lines_feed(bw_lines *l, const char *buf, size_t n, bw_line_fn fn, void *ctx);
/* Hands over the partial line (at end of stream), or an empty one when `empty_too`. */
void bw_lines_flush_line(bw_lines *l, bw_line_fn fn, void *ctx, bool empty_too);
void bw_lines_free(bw_lines *l);
/* The last stderr lines of a command or child, for a failure's reason: at
 * most BW_TAIL_LINES, and what bw_tail_text gives at most BW_TAIL_BYTES. */
#define BW_TAIL_LINES 20
#define BW_TAIL_BYTES 4096
typedef struct bw_tail {
    char *line[BW_TAIL_LINES];
    size_t next, count;
} bw_tail;
/* Keeps a copy of the line (its end when longer than BW_TAIL_BYTES), the oldest going. */
void bw_tail_push(bw_tail *t, const char *s, size_t len);
/* The newest lines that fit in BW_TAIL_BYTES, oldest first, joined by '\n'
 * and trimmed: malloc'd (the caller frees), NULL when out of memory. */
char *bw_tail_text(const bw_tail *t);
/* Forgets every line (and frees them). */
void bw_tail_clear(bw_tail *t);
typedef enum {
    BW_LINE_TEXT,
    BW_LINE_PROGRESS,
    BW_LINE_LOG,
    BW_LINE_DATA,         /* `data: JSON`: job.updateData */
    BW_LINE_DELAY,        /* `delay: TIMESTAMP_MS`: move to delayed at a clean exit */
    BW_LINE_WAIT_CHILDREN /* `wait-children`: move to waiting-children at a clean exit */
} bw_line_kind;
/* Strips a trailing '\r', replaces NULs, and tells what the line is; *value
 * points at the value after the prefix (or the whole line). */
bw_line_kind bw_line_classify(char *line, size_t *len, const char **value);

#endif
