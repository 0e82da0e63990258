/* SPDX-License-Identifier: MIT */
/* Keeping jobs' locks (one extendLocks call for all due jobs), the stalled
 * jobs checker, and the per-job deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static void renew_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_worker *w = data;
    (void)c;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (!w->closing) bullc__worker_error(w, err->code, "extendLocks: %s", err->message);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *id = r->element[i];
        if (id->type != REDIS_REPLY_STRING) continue;
        for (bullc_job *j = w->jobs, *next; j; j = next) {
            next = j->next;
            /* a job its processor moved has no lock any more */
            if (j->state == BULLC__JOB_PROCESSING && !j->moved && sdslen(j->id) == id->len &&
                !memcmp(j->id, id->str, id->len)) {
                j->lock_lost = true;
                bullc__worker_error(w, BULLC_ELOCK, "could not renew lock for job %s: giving it up", j->id);
                w->stats.lock_lost++;
                if (w->ev.lock_lost) w->ev.lock_lost(w, j, w->ev_data);
                bullc__process_abandon(j); /* may free j */
            }
        }
    }
}

static void lock_tick(uv_timer_t *t) {
    bullc_worker *w = t->data;
    int64_t now = (int64_t)uv_now(w->loop), half = w->o.lock_renew_time / 2;
    bullc__packbuf tokens, ids;
    bullc__packbuf_init(&tokens);
    bullc__packbuf_init(&ids);
    size_t n = 0;
    for (bullc_job *j = w->jobs; j; j = j->next)
        if (j->state != BULLC__JOB_FINISHED && !j->lock_lost && !j->moved && j->lock_ts + half <= now) n++;
    if (n && bullc__aconn_ready(w->cmd)) {
        msgpack_pack_array(&tokens.pk, n);
        msgpack_pack_array(&ids.pk, n);
        for (bullc_job *j = w->jobs; j; j = j->next)
            if (j->state != BULLC__JOB_FINISHED && !j->lock_lost && !j->moved && j->lock_ts + half <= now) {
                bullc__pack_str(&tokens.pk, j->token);
                bullc__pack_str(&ids.pk, j->id);
                j->lock_ts = now;
            }
        char dur[24];
        snprintf(dur, sizeof dur, "%lld", (long long)w->o.lock_duration);
        const char *argv[BULLC__CALL_MAX_KEYS + 4];
        size_t lens[BULLC__CALL_MAX_KEYS + 4];
        int a = bullc__call_keys(w->proto, BULLC__C_EXTEND_LOCKS, &w->keys, NULL, argv, lens);
        argv[a] = w->keys.k[BULLC__K_BASE], lens[a++] = sdslen(w->keys.k[BULLC__K_BASE]);
        argv[a] = tokens.sbuf.data, lens[a++] = tokens.sbuf.size;
        argv[a] = ids.sbuf.data, lens[a++] = ids.sbuf.size;
        argv[a] = dur, lens[a++] = strlen(dur);
        bullc__aconn_eval(w->cmd, bullc__call_script(w->proto, BULLC__C_EXTEND_LOCKS), 0, renew_reply, w, a, argv,
                          lens);
    }
    bullc__packbuf_destroy(&tokens);
    bullc__packbuf_destroy(&ids);
}

/* The deadline of bullc's job_timeout: a processor past it cannot keep its
 * slot and lock; the job fails (and may be retried) and whatever the
 * processor reports later is dropped. */
static void watchdog_tick(uv_timer_t *t) {
    bullc_worker *w = t->data;
    int64_t now = (int64_t)uv_now(w->loop), hr_now = (int64_t)(uv_hrtime() / 1000000);
    int stuck = 0;
    for (bullc_job *j = w->jobs; j; j = j->next) stuck += j->stuck;
    for (bullc_job *j = w->jobs, *next; j; j = next) {
        next = j->next;
        if (j->state != BULLC__JOB_PROCESSING || j->processor_done) continue;
        /* a blocking job is timed from when a pool thread took it */
        int64_t ran = now - j->started;
        if (w->o.blocking_processor) {
            int64_t at = j->run_started;
            ran = at ? hr_now - at : 0;
        }
        if (ran < w->o.job_timeout) continue;
        j->timed_out = j->lock_lost = true;
        char msg[128];
        snprintf(msg, sizeof msg, "job timed out after %lld ms", (long long)w->o.job_timeout);
        bullc__process_end(j, false, msg, 0);
        if (w->o.blocking_processor)
            bullc__worker_error(w, BULLC_ETIMEDOUT,
                                "job %s timed out after %lld ms and its processor has not returned: its slot stays "
                                "busy until it does (%d of %d slots held so)",
                                j->id, (long long)w->o.job_timeout, ++stuck, w->o.concurrency);
    }
}

void bullc__locks_start(bullc_worker *w) {
    uint64_t every = (uint64_t)(w->o.lock_renew_time / 2);
    if (every < 1) every = 1;
    uv_timer_start(&w->lock_timer, lock_tick, every, every);
    if (w->o.job_timeout > 0) {
        uint64_t tick = (uint64_t)(w->o.job_timeout / 10);
        if (tick < 10) tick = 10;
        if (tick > 1000) tick = 1000;
        if (bullc__worker_timer_start(w, &w->watchdog_timer, watchdog_tick, tick, tick))
            bullc__worker_error(w, BULLC_ENOMEM, "out of memory: the job timeout is not enforced");
    }
}

void bullc__locks_stop(bullc_worker *w) {
    uv_timer_stop(&w->lock_timer);
    if (w->watchdog_timer) uv_timer_stop(w->watchdog_timer);
}

/* A bullc_worker_check_stalled call waiting for its answer. */
typedef struct stalled_call {
    bullc_worker *w;
    bullc_stalled_check_cb cb;
    void *data;
} stalled_call;

static void stalled_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    stalled_call *call = data;
    bullc_worker *w = call->w;
    (void)c;
    int code = 0, n = 0;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        code = err->code ? err->code : BULLC_EREDIS;
        if (!w->closing) bullc__worker_error(w, code, "moveStalledJobsToWait: %s", err->message);
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING) continue;
            w->stats.stalled++;
            n++;
            if (w->ev.stalled) w->ev.stalled(w, r->element[i]->str, w->ev_data);
        }
    }
    if (call->cb) call->cb(w, code, n, call->data);
    free(call);
}

/* One moveStalledJobsToWait; `call` is freed by its reply, or here when it
 * cannot be sent. */
static int stalled_send(bullc_worker *w, bullc_stalled_check_cb cb, void *data) {
    stalled_call *call = malloc(sizeof *call);
    if (!call) return BULLC_ENOMEM;
    *call = (stalled_call){.w = w, .cb = cb, .data = data};
    bullc__worker_check_version(w); /* a peer of another major may have taken the queue over */
    char max[16], now[24], interval[24];
    snprintf(max, sizeof max, "%d", w->o.max_stalled_count);
    snprintf(now, sizeof now, "%lld", (long long)bullc__now_ms());
    snprintf(interval, sizeof interval, "%lld", (long long)w->o.stalled_interval);
    const char *argv[BULLC__CALL_MAX_KEYS + 4];
    size_t lens[BULLC__CALL_MAX_KEYS + 4];
    int a = bullc__call_keys(w->proto, BULLC__C_MOVE_STALLED, &w->keys, NULL, argv, lens);
    const char *args[] = {max, w->keys.k[BULLC__K_BASE], now, interval};
    for (int i = 0; i < 4; i++) argv[a] = args[i], lens[a++] = strlen(args[i]);
    int rc = bullc__aconn_eval(w->cmd, bullc__call_script(w->proto, BULLC__C_MOVE_STALLED), 0, stalled_reply, call, a,
                               argv, lens);
    if (rc) free(call);
    return rc;
}

static void stalled_tick(uv_timer_t *t) {
    bullc_worker *w = t->data;
    if (w->closing || w->paused || !bullc__aconn_ready(w->cmd)) return;
    stalled_send(w, NULL, NULL);
}

int bullc_worker_check_stalled(bullc_worker *w, bullc_stalled_check_cb cb, void *data) {
    if (w->closing) return BULLC_ECLOSED;
    if (!bullc__aconn_ready(w->cmd)) return BULLC_ECONN;
    return stalled_send(w, cb, data);
}

void bullc__stalled_start(bullc_worker *w) {
    if (w->group) {
        /* a group's members: the first check as soon as the member is ready,
         * in the group's batches (5,000 queues' checks at once held Redis,
         * and every job added meanwhile, for a tenth of a second), then
         * every interval from there, so that the later ones keep that spread */
        w->stalled_first = true;
        bullc__stalled_ready(w);
        return;
    }
    /* first check soon after start (once connected), then every interval */
    uv_timer_start(&w->stalled_timer, stalled_tick, 50, (uint64_t)w->o.stalled_interval);
}

void bullc__stalled_ready(bullc_worker *w) {
    /* its meta.version answered: the check speaks the queue's major */
    if (w->group && w->stalled_first && !w->g_stalled_due && !w->closing && !w->cmd_settling && !w->g_ready_due &&
        w->stats.cmd_ready_once && bullc__aconn_ready(w->cmd))
        bullc__group_stalled_due(w->group, w);
}

bool bullc__stalled_first(bullc_worker *w) {
    if (w->closing || !w->stalled_first || !bullc__aconn_ready(w->cmd)) return false;
    w->stalled_first = false;
    uv_timer_start(&w->stalled_timer, stalled_tick, (uint64_t)w->o.stalled_interval, (uint64_t)w->o.stalled_interval);
    return !w->paused && stalled_send(w, NULL, NULL) == 0;
}
