/* SPDX-License-Identifier: MIT */
/* Worker: Node BullMQ's worker algorithm on libuv. One connection runs the
 * scripts, a second one blocks in BZPOPMIN on the queue's marker. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static void fetch(bullc_worker *w);
static void maybe_closed(bullc_worker *w);

static void emit_error(bullc_worker *w, int code, const char *msg) {
    if (w->ev.error) w->ev.error(w, code, msg, w->ev_data);
}

enum { LAST_ERROR_MAX = 512 };

void bullc__worker_error(bullc_worker *w, int code, const char *fmt, ...) {
    char msg[LAST_ERROR_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, LAST_ERROR_MAX, fmt, ap);
    va_end(ap);
    /* The same error again within 5 s is held back (a Redis that is
     * down must not flood the log) and counted; a different one always
     * shows, so that one error never hides another. */
    int64_t now = (int64_t)uv_now(w->loop);
    bool same = w->last_error && !strcmp(msg, w->last_error);
    if (same && now - w->last_error_at < 5000) {
        w->errors_suppressed++;
        return;
    }
    if (w->errors_suppressed && !same) {
        char prev[sizeof msg];
        snprintf(prev, sizeof prev, "%s (repeated %d more times)", w->last_error, w->errors_suppressed);
        emit_error(w, w->last_error_code, prev);
    } else if (w->errors_suppressed) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof msg - n, " (%d identical errors held back)", w->errors_suppressed);
    }
    w->errors_suppressed = 0;
    w->last_error_at = now;
    w->last_error_code = code;
    /* its own buffer on its first error: thousands of a group's workers never have one */
    if (!w->last_error) w->last_error = malloc(LAST_ERROR_MAX);
    if (!same && w->last_error) memcpy(w->last_error, msg, strlen(msg) + 1); /* it fits: msg was cut to that size */
    emit_error(w, code, msg);
}

static void on_cmd_ready(bullc__aconn *c, void *data);
static void on_block_ready(bullc__aconn *c, void *data);
static void on_conn_down(bullc__aconn *c, const bullc_error *err, void *data);
static void on_conn_closed(bullc__aconn *c, void *data);

static void free_after_failed_new(bullc__aconn *c, void *data) {
    (void)c;
    bullc_worker_free(data);
}

static void autorun_cb(uv_timer_t *t) {
    bullc_worker *w = t->data;
    if (!w->running && !w->closing) bullc_worker_run(w);
}

int bullc_worker_new(bullc_worker **out, uv_loop_t *loop, const char *queue, const bullc_worker_opts *opts,
                     const bullc_worker_events *events, void *events_data, bullc_error *err) {
    int rc = bullc__validate_queue_name(queue, err);
    if (rc) return rc;
    if (!loop || !opts) return bullc__err(err, BULLC_EINVAL, "loop and opts are required");
    /* each value was checked by its setter; only this pair is left */
    if (!opts->processor && !opts->blocking_processor && opts->autorun)
        return bullc__err(err, BULLC_EINVAL, "a processor is required (or autorun off, for manual processing)");
    bullc_worker *w = calloc(1, sizeof *w);
    if (!w) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    w->o = *opts;
    if (!w->o.lock_renew_time) w->o.lock_renew_time = w->o.lock_duration / 2;
    w->o.redis = NULL; /* the worker keeps none of the settings' pointers */
    w->o.prefix = w->o.name = NULL;
    w->o.keep_complete = w->o.keep_fail = NULL;
    w->keep_complete = opts->keep_complete ? cJSON_Duplicate(opts->keep_complete, 1) : NULL;
    w->keep_fail = opts->keep_fail ? cJSON_Duplicate(opts->keep_fail, 1) : NULL;
    if ((opts->keep_complete && !w->keep_complete) || (opts->keep_fail && !w->keep_fail)) {
        cJSON_Delete(w->keep_complete);
        cJSON_Delete(w->keep_fail);
        free(w);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    w->loop = loop;
    if (events) w->ev = *events;
    w->ev_data = events_data;
    w->queue = sdsnew(queue);
    w->prefix = sdsnew(opts->prefix ? opts->prefix : BULLC__DEFAULT_PREFIX);
    w->name = opts->name ? sdsnew(opts->name) : NULL;
    w->min_block = 0.001;
    bullc__uuid4(w->id);
    w->proto = opts->bullmq_version ? bullc__protocol_of(opts->bullmq_version) : &bullc__protocol_v6;
    if (bullc__keys_init(&w->keys, w->prefix ? w->prefix : "", queue)) rc = BULLC_ENOMEM;
    const sds base = w->keys.k[BULLC__K_BASE]; /* "<prefix>:<queue>:" */
    if (base && !(w->qualified_name = sdsnewlen(base, sdslen(base) - 1))) rc = BULLC_ENOMEM;
    /* Node names the blocking connection "<prefix>:<base64(queue)>[:w:<name>]"
     * so that Queue.getWorkers() lists it. */
    sds b64 = bullc__base64(queue, strlen(queue));
    sds cname = sdscatfmt(sdsempty(), "%S:%S", w->prefix, b64);
    if (w->name) cname = sdscatfmt(cname, ":w:%S", w->name);
    sdsfree(b64);
    bullc_redis_opts *ro = NULL;
    w->g_snap = -1;
    /* a group's thousands of members have no connection of their own to hold */
    if (!rc && !opts->group && !(w->own = calloc(2, sizeof *w->own))) rc = BULLC_ENOMEM;
    if (w->own) w->cmd = &w->own[0], w->block = &w->own[1];
    if (rc) {
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    } else if (opts->group) {
        /* the group's connections (those of the queue's slot on a
         * cluster): none of the worker's own */
        rc = bullc__group_lane(opts->group, w->prefix, queue, &w->lane, err);
        if (!rc) {
            w->group = opts->group;
            w->cmd = &w->lane->node->conn;
            w->block = &w->lane->block;
        }
    } else if (!opts->redis) {
        rc = bullc__redis_opts_default(&ro, err);
    } else if (!(ro = calloc(1, sizeof *ro)) || bullc__redis_opts_copy(ro, opts->redis)) {
        free(ro);
        ro = NULL;
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    /* in a cluster, the worker's connections serve its queue's slot */
    if (!rc && !w->group) rc = bullc__cluster_route(ro, w->prefix, queue, err);
    if (!rc && !w->group) rc = bullc__aconn_init(w->cmd, loop, ro, NULL, err);
    if (!rc && !w->group) {
        rc = bullc__aconn_init(w->block, loop, ro, cname, err);
        if (rc) bullc__aconn_close(w->cmd);
    }
    bullc_redis_opts_free(ro);
    sdsfree(cname);
    if (rc) {
        /* Nothing was started. A connection that was set up holds a timer
         * handle: closing it (and freeing w) happens once the loop runs its
         * close callback, so w is handed to that callback. */
        if (w->own && w->cmd->opts) {
            w->cmd->on_closed = free_after_failed_new;
            w->cmd->hook_data = w;
            bullc__aconn_close(w->cmd);
        } else {
            bullc_worker_free(w);
        }
        return rc;
    }
    if (!w->group) {
        w->cmd->on_ready = on_cmd_ready;
        w->block->on_ready = on_block_ready;
        w->cmd->on_down = w->block->on_down = on_conn_down;
        w->cmd->on_closed = w->block->on_closed = on_conn_closed;
        w->cmd->hook_data = w->block->hook_data = w;
    }
    /* a group member's one "connection" is its last command's reply: the
     * close waits for it (see maybe_closed) */
    w->conns_open = w->group ? 1 : 2;
    uv_timer_t *timers[] = {&w->wake_timer, &w->stalled_timer, &w->lock_timer, &w->deferred_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = w;
        w->handles_open++;
    }
    uv_async_init(loop, &w->ops_async, bullc__jobops_async_cb);
    w->ops_async.data = w;
    w->handles_open++;
    uv_mutex_init(&w->ops_mutex);
    w->loop_thread = uv_thread_self();
    if (w->group) {
        bullc__group_join(w->group, w);
    } else {
        bullc__aconn_start(w->cmd);
        bullc__aconn_start(w->block);
    }
    if (w->o.autorun) uv_timer_start(&w->wake_timer, autorun_cb, 0, 0);
    *out = w;
    return 0;
}

int bullc_worker_run(bullc_worker *w) {
    if (w->running || w->closing || (!w->o.processor && !w->o.blocking_processor)) return BULLC_EINVAL;
    w->running = true;
    if (!w->o.skip_stalled_check) bullc__stalled_start(w);
    if (!w->o.skip_lock_renewal) bullc__locks_start(w);
    bullc__worker_pump(w);
    return 0;
}

static void deferred_cb(uv_timer_t *t);

void bullc_worker_pause(bullc_worker *w) {
    if (w->paused || w->closing) return;
    w->paused = w->pause_pending = true;
    /* the paused event comes from the loop even when nothing is in process */
    uv_timer_start(&w->deferred_timer, deferred_cb, 0, 0);
}

void bullc_worker_resume(bullc_worker *w) {
    if (!w->paused) return;
    w->paused = w->pause_pending = w->pause_done = false;
    if (w->ev.resumed) w->ev.resumed(w, w->ev_data);
    bullc__worker_pump(w);
}

/* Node's pause resolves, and emits 'paused', once its main loop has
 * nothing left: no job in process, no fetch in flight (the job a fetch
 * brings is processed). */
void bullc__worker_maybe_paused(bullc_worker *w) {
    if (!w->pause_pending || w->closing || w->in_flight || w->fetching) return;
    w->pause_pending = false;
    w->pause_done = true;
    if (w->ev.paused) w->ev.paused(w, w->ev_data);
}

bool bullc_worker_is_paused(const bullc_worker *w) { return w->paused; }
bool bullc_worker_is_running(const bullc_worker *w) { return w->running && !w->closing && !w->pause_done; }

double bullc_worker_block_timeout(const bullc_worker *w, int64_t block_until_ms) {
    if (!block_until_ms) return fmax(w->o.drain_delay, w->min_block);
    double delay = (double)(block_until_ms - bullc__now_ms());
    if (delay <= 0) return delay / 1000;
    /* at most 10 s: a block outliving a reconnection is lost time (Node's
     * maximumBlockTimeout, BullMQ issue 1658) */
    return delay < w->min_block * 1000 ? w->min_block : fmin(delay / 1000, 10);
}
int bullc_worker_active_count(const bullc_worker *w) { return w->in_flight; }
int bullc_worker_concurrency(const bullc_worker *w) { return w->o.concurrency; }

int bullc_worker_set_concurrency(bullc_worker *w, int concurrency) {
    if (concurrency < 1) return BULLC_EINVAL;
    w->o.concurrency = concurrency;
    /* Node's main loop reads it before each fetch: new slots fill now; a
     * lower value only holds fetches back until the jobs in process end */
    bullc__worker_pump(w);
    return 0;
}
const char *bullc_worker_id(const bullc_worker *w) { return w->id; }
int bullc_worker_bullmq_version(const bullc_worker *w) { return w->proto->major; }
int bullc_worker_close_left(const bullc_worker *w) { return w->close_left; }

static void rate_limit_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c;
    if (!r || r->type == REDIS_REPLY_ERROR) bullc__worker_error(data, err->code, "rateLimit: %s", err->message);
}

int bullc_worker_rate_limit(bullc_worker *w, int64_t ms) {
    if (ms <= 0) return BULLC_EINVAL;
    /* Queue.rateLimit: the limiter counter set beyond any max, for `ms` */
    char px[24];
    snprintf(px, sizeof px, "%lld", (long long)ms);
    const char *argv[] = {"SET", w->keys.k[BULLC__K_LIMITER], "9007199254740991", "PX", px};
    /* only the key, as Node: the rate-limited job's move back to wait
     * returns the key's TTL, which is what pauses this worker */
    return bullc__aconn_cmd(w->cmd, 0, rate_limit_reply, w, 5, argv, NULL);
}

/* ---- connections ---------------------------------------------------------- */

void bullc__worker_info_limits(const redisReply *r, double *min_block, bool *integer_block) {
    const char *v = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "redis_version:") : NULL;
    if (!v) return; /* INFO may be forbidden: keep defaults */
    int maj = 0, min = 0, pat = 0;
    sscanf(v + 14, "%d.%d.%d", &maj, &min, &pat);
    long ver = maj * 10000L + min * 100L + pat;
    *min_block = ver >= 70008 ? 0.001 : 0.002;
    *integer_block = ver < 60000;
}

static void info_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_worker *w = data;
    (void)c, (void)err;
    bullc__worker_info_limits(r, &w->min_block, &w->integer_block);
}

static void preload_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c, (void)r, (void)err, (void)data; /* a failure only means EVALSHA meets NOSCRIPT later */
}

/* Settles the major from meta.version's reply; false (and the worker stopped
 * with an error event) on a conflict. */
static bool settle(bullc_worker *w, const redisReply *r) {
    if (!r || r->type == REDIS_REPLY_ERROR) return true; /* unreadable: keep speaking what it spoke */
    sds v = r->type == REDIS_REPLY_STRING ? sdsnewlen(r->str, r->len) : NULL;
    const bullc__protocol *p;
    bool write_version;
    bullc_error e = {0};
    int rc =
        bullc__protocol_settle(w->queue, w->o.bullmq_version, v, w->settled ? w->proto : NULL, &p, &write_version, &e);
    sdsfree(v);
    if (rc) {
        if (!w->version_stopped) bullc__worker_error(w, rc, "%s", e.message);
        w->version_stopped = true;
        return false;
    }
    w->proto = p;
    w->settled = true;
    return true;
}

static void version_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c, (void)err;
    settle(data, r);
}

void bullc__worker_check_version(bullc_worker *w) {
    const char *argv[] = {"HGET", w->keys.k[BULLC__K_META], "version"};
    bullc__aconn_cmd(w->cmd, 0, version_reply, w, 3, argv, NULL);
}

static void cmd_ready(bullc_worker *w, bullc__aconn *c);

static void ready_version_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)err;
    bullc_worker *w = data;
    w->cmd_settling = false;
    if (settle(w, r) && bullc__aconn_ready(c)) cmd_ready(w, c);
}

/* The scripts a worker runs depend on the queue's major: meta.version is
 * read before anything else goes out on a new connection. */
static void on_cmd_ready(bullc__aconn *c, void *data) {
    bullc_worker *w = data;
    if (w->stats.cmd_ready_once) w->stats.reconnects++;
    w->stats.cmd_ready_once = true;
    const char *argv[] = {"HGET", w->keys.k[BULLC__K_META], "version"};
    w->cmd_settling = bullc__aconn_cmd(c, 0, ready_version_reply, w, 3, argv, NULL) == 0;
}

void bullc__worker_preload(bullc__aconn *c, const bullc__protocol *proto) {
    /* Load every script the worker runs before anything else goes out on
     * this connection: a NOSCRIPT answer is re-sent as EVAL at the back of
     * the pipeline, which would let later calls overtake it. */
    for (int i = BULLC__C_MOVE_TO_ACTIVE; i <= BULLC__C_MOVE_TO_WAITING_CHILDREN; i++) {
        if (i == BULLC__C_MOVE_TO_FAILED) continue; /* the script of _COMPLETED */
        const bullc__script *s = bullc__call_script(proto, i);
        const char *load[] = {"SCRIPT", "LOAD", s->text};
        size_t lens[] = {6, 4, s->len};
        bullc__aconn_cmd(c, 0, preload_reply, NULL, 3, load, lens);
    }
}

static void cmd_ready(bullc_worker *w, bullc__aconn *c) {
    if (w->group) {
        /* the group asked INFO and loaded both majors' scripts once */
        bullc__group_block_limits(w->lane, &w->min_block, &w->integer_block);
    } else {
        const char *argv[] = {"INFO", "server"};
        bullc__aconn_cmd(c, 0, info_reply, w, 2, argv, NULL);
        bullc__worker_preload(c, w->proto);
    }
    bullc__jobops_send_parked(w); /* before any finish: a job's actions land first */
    bullc__sched_resend(w);       /* its job waits for it before it runs */
    bullc__process_resend(w);
    /* after the resends: a finish whose first send was applied leaves its
     * job unlocked, so only the job its lost reply brought is found */
    for (int i = 0; i < w->nlost_fetches; i++) {
        if (!w->closing) bullc__adopt(w, w->lost_fetches[i]);
        sdsfree(w->lost_fetches[i]);
    }
    w->nlost_fetches = 0;
    bullc__stalled_ready(w);
    if (bullc__aconn_ready(w->block) && w->ev.ready) w->ev.ready(w, w->ev_data);
    bullc__worker_pump(w);
}

void bullc__worker_cmd_ready(bullc_worker *w) {
    if (!w->closing) on_cmd_ready(w->cmd, w);
}

void bullc__worker_block_ready(bullc_worker *w) {
    if (!w->closing) on_block_ready(w->block, w);
}

static void on_block_ready(bullc__aconn *c, void *data) {
    bullc_worker *w = data;
    (void)c;
    if (bullc__aconn_ready(w->cmd) && !w->cmd_settling && w->ev.ready) w->ev.ready(w, w->ev_data);
    bullc__worker_pump(w);
}

static void on_conn_down(bullc__aconn *c, const bullc_error *err, void *data) {
    bullc_worker *w = data;
    if (w->closing) return;
    bullc__worker_error(w, err->code, "%s connection: %s", c == w->block ? "blocking" : "command", err->message);
}

static void on_conn_closed(bullc__aconn *c, void *data) {
    bullc_worker *w = data;
    (void)c;
    w->conns_open--;
    maybe_closed(w);
}

/* ---- fetching ------------------------------------------------------------- */

static sds next_token(bullc_worker *w) {
    return sdscatfmt(sdsempty(), "%s:%U", w->id, (unsigned long long)w->token_seq++);
}

sds bullc__worker_fetch_opts(const bullc_worker *w, const char *token) {
    const bullc__fetch_opts fo = {w->o.lock_duration, w->o.limiter_max, w->o.limiter_duration, w->name};
    bullc__packbuf pb;
    bullc__packbuf_init(&pb);
    bullc__pack_fetch_opts(&pb.pk, &fo, token);
    sds s = sdsnewlen(pb.sbuf.data, pb.sbuf.size);
    bullc__packbuf_destroy(&pb);
    return s;
}

/* moveToActive with a new lock token; same contract as bullc__aconn_eval. */
static int send_fetch(bullc_worker *w, const char *token, bullc__areply_fn cb, void *data) {
    const char *argv[BULLC__CALL_MAX_KEYS + 3];
    size_t lens[BULLC__CALL_MAX_KEYS + 3];
    int n = bullc__call_keys(w->proto, BULLC__C_MOVE_TO_ACTIVE, &w->keys, NULL, argv, lens);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)bullc__now_ms());
    sds packed = bullc__worker_fetch_opts(w, token);
    if (!packed) return BULLC_ENOMEM;
    argv[n] = w->keys.k[BULLC__K_BASE], lens[n++] = sdslen(w->keys.k[BULLC__K_BASE]);
    argv[n] = now, lens[n++] = strlen(now);
    argv[n] = packed, lens[n++] = sdslen(packed);
    int rc =
        bullc__aconn_eval(w->cmd, bullc__call_script(w->proto, BULLC__C_MOVE_TO_ACTIVE), 0, cb, data, n, argv, lens);
    sdsfree(packed);
    return rc;
}

static void wake_cb(uv_timer_t *t);

void bullc__worker_drained(bullc_worker *w) {
    if (w->drained) return;
    w->drained = true;
    if (w->ev.drained) w->ev.drained(w, w->ev_data);
}

/* A next-job reply [hash, id, rateLimitTtl, delayUntil] (moveToActive, or a
 * fetch-next of moveToFinished / moveToDelayed). */
void bullc__worker_handle_next(bullc_worker *w, const redisReply *r, sds token) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 4) {
        sdsfree(token);
        return;
    }
    const redisReply *hash = r->element[0], *id = r->element[1];
    int64_t ttl = r->element[2]->type == REDIS_REPLY_INTEGER ? r->element[2]->integer : 0;
    int64_t until = r->element[3]->type == REDIS_REPLY_INTEGER ? r->element[3]->integer : 0;
    int64_t now = bullc__now_ms();
    w->limit_until = ttl > 0 ? now + ttl : 0;
    w->block_until = until > 0 ? until : 0;
    if (hash->type != REDIS_REPLY_ARRAY || (id->type != REDIS_REPLY_STRING && id->type != REDIS_REPLY_INTEGER)) {
        sdsfree(token);
        bullc__worker_drained(w);
        return;
    }
    w->drained = false;
    bullc_job *job = bullc__job_from_reply(w, hash, id, token);
    if (!job) {
        bullc__worker_error(w, BULLC_ENOMEM, "out of memory while taking a job: it is left for stalled recovery");
        return;
    }
    bullc__process_start(w, job);
}

void bullc__worker_lost_fetch(bullc_worker *w, const char *token) {
    if (w->closing) return; /* left to stalled recovery, as the close's other jobs */
    sds *grown = realloc(w->lost_fetches, (size_t)(w->nlost_fetches + 1) * sizeof *grown);
    sds t = grown ? sdsnew(token) : NULL;
    if (grown) w->lost_fetches = grown;
    if (!t) {
        bullc__worker_error(w, BULLC_ENOMEM, "out of memory: a job a lost fetch took is left for stalled recovery");
        return;
    }
    w->lost_fetches[w->nlost_fetches++] = t;
}

static void fetch_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c;
    struct fetch_ctx {
        bullc_worker *w;
        sds token;
    } *f = data;
    bullc_worker *w = f->w;
    w->fetching--;
    if (w->group) bullc__group_fetch(w->group, -1);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (!w->closing) bullc__worker_error(w, err->code, "moveToActive: %s", err->message);
        /* Not connected: on_cmd_ready pumps. A Redis error: retry in a
         * second, and process the job the script may have taken first. */
        if (r) uv_timer_start(&w->wake_timer, wake_cb, 1000, 0);
        if (r && !w->forced && bullc__script_runtime_error(err)) bullc__adopt(w, f->token);
        /* lost: Redis may have run it, and locked a job with the token */
        if (!r) bullc__worker_lost_fetch(w, f->token);
    } else {
        bullc__worker_handle_next(w, r, f->token);
        f->token = NULL;
    }
    sdsfree(f->token);
    free(f);
    bullc__worker_maybe_paused(w);
    if (w->closing) {
        maybe_closed(w); /* a close may have been waiting for this fetch */
        return;
    }
    if (r && r->type == REDIS_REPLY_ERROR) return; /* the wake timer pumps */
    bullc__worker_pump(w);
}

static void fetch(bullc_worker *w) {
    struct fetch_ctx {
        bullc_worker *w;
        sds token;
    } *f = malloc(sizeof *f);
    if (!f) return;
    f->w = w;
    f->token = next_token(w);
    w->fetching++;
    if (!f->token || send_fetch(w, f->token, fetch_reply, f)) {
        w->fetching--;
        sdsfree(f->token);
        free(f);
        return;
    }
    if (w->group) bullc__group_fetch(w->group, 1);
}

static void block_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c, (void)err;
    bullc__worker_block_done(data, r);
}

void bullc__worker_block_done(bullc_worker *w, const redisReply *r) {
    w->blocking = false;
    if (w->closing) {
        maybe_closed(w);
        return;
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* The blocking connection failed or its deadline passed: never
         * re-send blindly; poll with moveToActive instead (delayed jobs get
         * promoted there), and block again once reconnected. */
        w->drained = false;
        bullc__worker_pump(w);
        return;
    }
    int64_t prev = w->block_until, next = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
        next = bullc__double_to_i64(strtod(r->element[2]->str, NULL));
    if (prev && next > prev) next = prev;
    if (next <= 0 || next - bullc__now_ms() < 1) {
        if (!w->paused && bullc__aconn_ready(w->cmd) && w->in_flight + w->fetching < w->o.concurrency &&
            !(w->group && bullc__group_full(w->group, w))) {
            fetch(w);
            return;
        }
        w->drained = false;
    } else {
        w->block_until = next;
    }
    bullc__worker_pump(w);
}

static void wake_cb(uv_timer_t *t) {
    bullc_worker *w = t->data;
    if (w->limit_until) {
        /* Node's waitForRateLimit: after the wait (capped by
         * maximumRateLimitDelay) ask Redis again; it knows whether the limit
         * still holds, was removed, or delayed jobs are now due. */
        w->limit_until = 0;
        w->drained = false;
    }
    if (!bullc__aconn_ready(w->block)) w->drained = false; /* poll while the blocking side is down */
    bullc__worker_pump(w);
}

static void start_block(bullc_worker *w) {
    if (!bullc__aconn_ready(w->block)) {
        /* Keep promoting delayed jobs and picking up work while the blocking
         * connection is away: poll every drain delay (at most 1 s). */
        double s = w->o.drain_delay < 1 ? w->o.drain_delay : 1;
        uv_timer_start(&w->wake_timer, wake_cb, (uint64_t)(s * 1000) + 1, 0);
        return;
    }
    double timeout = bullc_worker_block_timeout(w, w->block_until);
    if (timeout <= 0) {
        w->block_until = 0;
        fetch(w);
        return;
    }
    if (w->integer_block) timeout = ceil(timeout);
    if (w->group) {
        w->g_poll_due = bullc__now_ms() + (int64_t)(timeout * 1000);
        bullc__group_wait(w->group, w);
        return;
    }
    char ts[32];
    snprintf(ts, sizeof ts, "%.3f", timeout);
    const char *argv[] = {"BZPOPMIN", w->keys.k[BULLC__K_MARKER], ts};
    w->blocking = true;
    /* its own deadline: the timeout plus a margin, then the connection is
     * dropped and rebuilt (a blackholed socket never answers) */
    if (bullc__aconn_cmd(w->block, (int64_t)(timeout * 1000) + 2000, block_reply, w, 3, argv, NULL)) {
        w->blocking = false;
        uv_timer_start(&w->wake_timer, wake_cb, 100, 0);
    }
}

void bullc__worker_pump(bullc_worker *w) {
    if (!w->running || w->closing || w->paused || w->version_stopped || w->cmd_settling || !bullc__aconn_ready(w->cmd))
        return;
    int64_t now = bullc__now_ms();
    if (w->limit_until > now) {
        int64_t d = w->limit_until - now;
        if (d > w->o.maximum_rate_limit_delay) d = w->o.maximum_rate_limit_delay;
        uv_timer_start(&w->wake_timer, wake_cb, (uint64_t)d, 0);
        return;
    }
    /* One fetch at a time, as Node does: several moveToActive at once on an
     * empty queue only load Redis. */
    if (w->fetching || w->blocking || w->in_flight >= w->o.concurrency) return;
    if (w->group && bullc__group_full(w->group, w)) return;
    if (w->drained)
        start_block(w);
    else
        fetch(w);
}

/* ---- manual processing ------------------------------------------------------ */

typedef struct bullc__manual_ctx {
    bullc_worker *w;
    bullc_job *job; /* taken, waiting for its scheduler's next iteration */
    sds token;
    bool block;
    bullc_next_job_cb cb;
    void *data;
    int code;                       /* the answer, when deferred */
    struct bullc__manual_ctx *next; /* in w->deferred */
} manual_ctx;

static int manual_fetch(manual_ctx *m);

static void manual_done(manual_ctx *m, bullc_job *job, int code) {
    m->cb(m->w, job, code, m->data);
    sdsfree(m->token);
    free(m);
}

static void manual_block_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    manual_ctx *m = data;
    (void)c, (void)err;
    m->block = false; /* one wait only, then one more look */
    if (!r || m->w->closing) {
        manual_done(m, NULL, m->w->closing ? BULLC_ECLOSED : BULLC_ECONN);
        return;
    }
    int rc = manual_fetch(m);
    if (rc) manual_done(m, NULL, rc);
}

static void manual_scheduled(void *arg) {
    manual_ctx *m = arg;
    manual_done(m, m->job, 0);
}

/* A reply that is no error: the job it holds, or none (then one wait on
 * the marker when asked to block). */
static void manual_answer(manual_ctx *m, const redisReply *r) {
    bullc_worker *w = m->w;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 4 && r->element[0]->type == REDIS_REPLY_ARRAY) {
        bullc_job *job = bullc__job_from_reply(w, r->element[0], r->element[1], m->token);
        m->token = NULL; /* the job's now */
        if (!job) {
            manual_done(m, NULL, BULLC_ENOMEM);
            return;
        }
        bullc__process_track(w, job);
        if (w->ev.active) w->ev.active(w, job, w->ev_data); /* as Node's getNextJob */
        if (job->rjk) {
            /* Node's getNextJob schedules a scheduler's next iteration
             * before it returns the job */
            m->job = job;
            bullc__sched_next_then(w, job, manual_scheduled, m);
            return;
        }
        manual_done(m, job, 0);
        return;
    }
    if (m->block && !w->group && bullc__aconn_ready(w->block)) {
        double timeout = bullc_worker_block_timeout(w, 0);
        char ts[32];
        snprintf(ts, sizeof ts, "%.3f", timeout);
        const char *argv[] = {"BZPOPMIN", w->keys.k[BULLC__K_MARKER], ts};
        if (bullc__aconn_cmd(w->block, (int64_t)(timeout * 1000) + 2000, manual_block_reply, m, 3, argv, NULL) == 0)
            return;
    }
    manual_done(m, NULL, 0);
}

static void manual_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    manual_ctx *m = data;
    (void)c;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        manual_done(m, NULL, err->code ? err->code : BULLC_EREDIS);
        return;
    }
    manual_answer(m, r);
}

/* Sends moveToActive; on an error nothing was sent and the caller decides
 * whether `m`'s callback runs (never inside bullc_worker_get_next_job). */
static int manual_fetch(manual_ctx *m) { return send_fetch(m->w, m->token, manual_reply, m); }

/* Answers the requests that need no Redis (a paused worker's) from the loop,
 * never from inside the call that made them. */
static void deferred_cb(uv_timer_t *t) {
    bullc_worker *w = t->data;
    manual_ctx *m = w->deferred;
    w->deferred = NULL;
    while (m) {
        manual_ctx *next = m->next;
        manual_done(m, NULL, m->code);
        m = next;
    }
    bullc__worker_maybe_paused(w);
    maybe_closed(w);
}

static void defer(manual_ctx *m, int code) {
    bullc_worker *w = m->w;
    m->code = code;
    m->next = w->deferred;
    w->deferred = m;
    uv_timer_start(&w->deferred_timer, deferred_cb, 0, 0);
}

manual_ctx *bullc__worker_next_req(bullc_worker *w, const char *token, bullc_next_job_cb cb, void *data) {
    manual_ctx *m = calloc(1, sizeof *m);
    if (!m || !(m->token = sdsnew(token))) {
        free(m);
        return NULL;
    }
    m->w = w;
    m->cb = cb;
    m->data = data;
    return m;
}

void bullc__worker_next_req_reply(manual_ctx *m, const redisReply *r) { manual_answer(m, r); }

void bullc__worker_next_req_fail(manual_ctx *m, int code) { defer(m, code); }

int bullc_worker_get_next_job(bullc_worker *w, const char *token, bool block, bullc_next_job_cb cb, void *data) {
    if (!token || !*token || !cb || w->running) return BULLC_EINVAL;
    if (w->closing) return BULLC_ECLOSED;
    if (!bullc__aconn_ready(w->cmd)) return BULLC_ECONN;
    manual_ctx *m = bullc__worker_next_req(w, token, cb, data);
    if (!m) return BULLC_ENOMEM;
    m->block = block;
    if (w->paused) { /* Node's getNextJob returns nothing while paused */
        defer(m, 0);
        return 0;
    }
    int rc = manual_fetch(m);
    if (rc) {
        sdsfree(m->token);
        free(m);
    }
    return rc;
}

/* ---- closing ---------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h) {
    bullc_worker *w = h->data;
    if (--w->handles_open == 0 && w->conns_open == 0 && w->close_cb) {
        void (*cb)(bullc_worker *, void *) = w->close_cb;
        w->close_cb = NULL;
        cb(w, w->close_data);
    }
}

static void lazy_closed(uv_handle_t *h) {
    handle_closed(h);
    free(h);
}

void bullc__worker_maybe_closed(bullc_worker *w) { maybe_closed(w); }

/* What a forced (or timed-out) close leaves active, said once. */
static void report_left(bullc_worker *w) {
    char msg[400] = "";
    size_t len = 0;
    int n = 0;
    bool cut = false;
    for (bullc_job *j = w->jobs; j; j = j->next) {
        if (j->state == BULLC__JOB_FINISHED) continue;
        if (len + sdslen(j->id) + 8 < sizeof msg - 80)
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s job %s", n ? "," : "", j->id);
        else
            cut = true;
        n++;
    }
    if (cut) len += (size_t)snprintf(msg + len, sizeof msg - len, " ...");
    if (w->fetching)
        snprintf(msg + len, sizeof msg - len, "%s %d fetch%s in flight (the job Redis gave it, if any)", n ? ";" : "",
                 w->fetching, w->fetching > 1 ? "es" : "");
    w->close_left = n + w->fetching;
    if (w->close_left) bullc__worker_error(w, BULLC_ECLOSED, "closing: left active for stalled recovery:%s", msg);
}

static void barrier_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_worker *w = data;
    (void)c, (void)r, (void)err;
    w->conns_open--;
    maybe_closed(w);
}

/* A member leaves its group: the shared connection stays, so the close
 * waits for the reply of a PING sent after the worker's last command (Redis
 * answers in order; a lost connection runs the callbacks in order too). */
static void leave_group(bullc_worker *w) {
    bullc__group_leave(w->group, w);
    const char *argv[] = {"PING"};
    if (bullc__aconn_cmd(w->cmd, 0, barrier_reply, w, 1, argv, NULL)) w->conns_open--;
}

static void maybe_closed(bullc_worker *w) {
    if (!w->closing) return;
    bool busy = false;
    for (bullc_job *j = w->jobs; j; j = j->next)
        if (j->state != BULLC__JOB_FINISHED) busy = true;
    if ((busy || w->fetching) && !w->forced) return;
    if (!w->closed_cmd) {
        report_left(w);
        w->closed_cmd = true;
        w->forced = true; /* from here on nothing more is sent */
        bullc__jobops_drop_parked(w);
        /* processors still running learn it through bullc_job_lock_lost:
         * their results will not be stored */
        for (bullc_job *j = w->jobs; j; j = j->next) j->lock_lost = true;
        bullc__locks_stop(w);
        if (w->group)
            leave_group(w);
        else {
            bullc__aconn_close(w->cmd); /* outstanding replies come back NULL */
            bullc__aconn_close(w->block);
        }
        bullc__process_drop_parked(w);
        bullc__sched_drop_parked(w);
    }
    /* processors still holding jobs must hand them back first */
    if (w->jobs || w->deferred || w->conns_open || w->handles_open == 0 || uv_is_closing((uv_handle_t *)&w->ops_async))
        return;
    uv_handle_t *hs[] = {(uv_handle_t *)&w->wake_timer, (uv_handle_t *)&w->stalled_timer, (uv_handle_t *)&w->lock_timer,
                         (uv_handle_t *)&w->deferred_timer, (uv_handle_t *)&w->ops_async};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) uv_close(hs[i], handle_closed);
    uv_timer_t **lazy[] = {&w->close_timer, &w->watchdog_timer, &w->retry_timer};
    for (size_t i = 0; i < sizeof lazy / sizeof lazy[0]; i++) {
        if (!*lazy[i]) continue;
        uv_close((uv_handle_t *)*lazy[i], lazy_closed);
        *lazy[i] = NULL;
    }
}

int bullc__worker_timer_start(bullc_worker *w, uv_timer_t **slot, uv_timer_cb cb, uint64_t timeout, uint64_t repeat) {
    if (uv_is_closing((uv_handle_t *)&w->ops_async)) return BULLC_ECLOSED;
    if (!*slot) {
        uv_timer_t *t = malloc(sizeof *t);
        if (!t) return BULLC_ENOMEM;
        uv_timer_init(w->loop, t);
        t->data = w;
        w->handles_open++;
        *slot = t;
    }
    uv_timer_start(*slot, cb, timeout, repeat);
    return 0;
}

static void close_timeout(uv_timer_t *t) {
    bullc_worker *w = t->data;
    w->forced = true;
    maybe_closed(w);
}

void bullc_worker_close(bullc_worker *w, bool force, int64_t timeout_ms, void (*cb)(bullc_worker *w, void *data),
                        void *data) {
    if (w->closing) {
        if (force) {
            w->forced = true;
            maybe_closed(w);
        }
        return;
    }
    w->closing = true;
    w->close_cb = cb;
    w->close_data = data;
    w->forced = force;
    if (w->ev.closing) w->ev.closing(w, "closing queue", w->ev_data);
    uv_timer_stop(&w->wake_timer);
    uv_timer_stop(&w->stalled_timer);
    /* interrupt BZPOPMIN at once: nothing more will be fetched */
    if (w->group)
        bullc__group_unwait(w->group, w);
    else if (!w->closed_cmd)
        bullc__aconn_close(w->block);
    if (timeout_ms > 0 && !force &&
        bullc__worker_timer_start(w, &w->close_timer, close_timeout, (uint64_t)timeout_ms, 0))
        w->forced = true; /* no timer for the timeout: closed now rather than never */
    maybe_closed(w);
}

void bullc_worker_free(bullc_worker *w) {
    if (!w) return;
    bullc_cancel_listener_remove(w->cancel_listener, w);
    sdsfree(w->queue);
    sdsfree(w->prefix);
    sdsfree(w->name);
    sdsfree(w->qualified_name);
    bullc__keys_free(&w->keys);
    for (size_t i = 0; i < sizeof w->fin_opts / sizeof w->fin_opts[0]; i++) sdsfree(w->fin_opts[i]);
    for (int i = 0; i < w->nlost_fetches; i++) sdsfree(w->lost_fetches[i]);
    free(w->lost_fetches);
    cJSON_Delete(w->keep_complete);
    cJSON_Delete(w->keep_fail);
    uv_mutex_destroy(&w->ops_mutex);
    free(w->own);
    free(w->last_error);
    free(w);
}
