/* SPDX-License-Identifier: MIT */
/* Running a processor on a job and moving the job out of active: completed,
 * failed, retried (at once or after a backoff) or put back (rate limit). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

enum { FIN_COMPLETED, FIN_FAILED, FIN_DELAYED, FIN_RETRY, FIN_RATE_LIMITED };

struct bullc__finish {
    int kind;
    const bullc__script *script;
    int argc;
    /* Keys and ids are borrowed from the worker and the job (both outlive
     * the finish); only what is built per finish is owned. */
    const char *argv[24];
    size_t lens[24];
    sds own[6];
    int nown;
    int fetch_index; /* argv index of the fetch-next flag, or -1 */
    bool fetch_next;
    bool pending;   /* to be (re)sent when the connection is ready */
    bool deferred;  /* waits for the job's own actions to be answered first */
    bool uncertain; /* an earlier send may have been applied */
    sds value;      /* result JSON or failure reason */
};

static void fin_free(bullc__finish *f) {
    if (!f) return;
    for (int i = 0; i < f->nown; i++) sdsfree(f->own[i]);
    sdsfree(f->value);
    free(f);
}

static void release_if_done(bullc_job *job) {
    bullc_worker *w = job->w;
    if (job->state != BULLC__JOB_FINISHED || !job->processor_done || job->ops_pending) return;
    if (job->prev)
        job->prev->next = job->next;
    else
        w->jobs = job->next;
    if (job->next) job->next->prev = job->prev;
    fin_free(job->fin);
    bullc__job_free(job);
    bullc__worker_maybe_closed(w);
}

/* The job left active (or will be left to stalled recovery). */
static void finished(bullc_job *job) {
    bullc_worker *w = job->w;
    job->state = BULLC__JOB_FINISHED;
    w->in_flight--;
    release_if_done(job);
}

static void send_finish(bullc_job *job);

void bullc__process_op_done(bullc_job *job) {
    if (--job->ops_pending > 0) return;
    if (job->fin && job->fin->deferred) {
        job->fin->deferred = false;
        send_finish(job);
    } else {
        release_if_done(job);
    }
}

void bullc__process_abandon(bullc_job *job) {
    if (job->state != BULLC__JOB_PROCESSING) return;
    job->state = BULLC__JOB_FINISHING;
    finished(job);
}

static void finish_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_job *job = data;
    bullc_worker *w = job->w;
    bullc__finish *f = job->fin;
    (void)c;
    if (f->fetch_next) {
        f->fetch_next = false;
        if (f->fetch_index >= 0) f->argv[f->fetch_index] = "0";
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* Not stored (or not known to be): send again once Redis is back.
         * The lock check in the script keeps a second send from completing
         * the job twice. */
        if (!r) f->uncertain = true;
        f->pending = true;
        if (w->forced) {
            finished(job); /* closing: left for stalled recovery */
        } else {
            bullc__worker_error(w, err->code, "job %s: cannot store its result yet (%s); will retry", job->id,
                                err->message);
            if (r) uv_timer_start(&w->retry_timer, bullc__process_resend_timer, 1000, 0);
        }
        bullc__worker_maybe_closed(w);
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        long long code = r->integer;
        if (!(f->uncertain && (code == -1 || code == -2 || code == -3))) {
            bullc_error e;
            bullc__admin_code_err(code, job->id, f->script->name, "active", &e); /* Node's wording */
            bullc__worker_error(w, e.code, "%s", e.message);
        }
        finished(job);
        bullc__worker_pump(w);
        return;
    }
    int64_t now = bullc__now_ms();
    switch (f->kind) {
    case FIN_COMPLETED:
        if (w->ev.completed) w->ev.completed(w, job, f->value, w->ev_data);
        break;
    case FIN_RATE_LIMITED:
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) w->limit_until = now + r->integer;
        break;
    default:
        if (w->ev.failed) w->ev.failed(w, job, f->value, f->kind != FIN_FAILED, w->ev_data);
    }
    sds token = sdsdup(job->token);
    finished(job);
    if (r->type == REDIS_REPLY_ARRAY) bullc__worker_handle_next(w, r, token);
    sdsfree(token);
    bullc__worker_pump(w);
}

void bullc__process_resend_timer(uv_timer_t *t) { bullc__process_resend(t->data); }

static void send_finish(bullc_job *job) {
    bullc_worker *w = job->w;
    bullc__finish *f = job->fin;
    f->pending = false;
    if (bullc__aconn_eval(&w->cmd, f->script, 0, finish_reply, job, f->argc, f->argv, f->lens)) {
        if (f->fetch_next) {
            f->fetch_next = false;
            if (f->fetch_index >= 0) f->argv[f->fetch_index] = "0";
        }
        f->pending = true; /* on_cmd_ready resends */
        if (w->forced) finished(job);
    }
}

void bullc__process_resend(bullc_worker *w) {
    for (bullc_job *j = w->jobs, *next; j; j = next) {
        next = j->next;
        if (j->state == BULLC__JOB_FINISHING && j->fin && j->fin->pending) send_finish(j);
    }
}

static void arg(bullc__finish *f, const char *s, size_t len) {
    f->argv[f->argc] = s;
    f->lens[f->argc++] = len;
}
static void arg_str(bullc__finish *f, const char *s) { arg(f, s, strlen(s)); }
static void arg_sds(bullc__finish *f, const sds s) { arg(f, s, sdslen(s)); } /* borrowed */
static void arg_own(bullc__finish *f, sds s) {
    f->own[f->nown++] = s;
    arg_sds(f, s);
}

static const cJSON *opt(const bullc_job *job, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(job->opts, name);
}

/* Node's getKeepJobs: the job's removeOn* first, then the worker's. */
static cJSON *keep_for(bullc_worker *w, const bullc_job *job, bool completed) {
    const cJSON *v = opt(job, completed ? "removeOnComplete" : "removeOnFail");
    const cJSON *def = completed ? w->keep_complete : w->keep_fail;
    if (v && !cJSON_IsNull(v)) return bullc__keep_jobs(v);
    if (def) return cJSON_Duplicate(def, 1);
    return bullc__keep_jobs(NULL); /* keep all: {count: -1} */
}

static void pack_limiter(bullc_worker *w, msgpack_packer *pk) {
    bullc__pack_str(pk, "limiter");
    msgpack_pack_map(pk, 2);
    bullc__pack_str(pk, "max");
    msgpack_pack_int64(pk, w->o.limiter_max);
    bullc__pack_str(pk, "duration");
    msgpack_pack_int64(pk, w->o.limiter_duration);
}

static sds pack_finish_opts(bullc_worker *w, const bullc_job *job, bool completed) {
    bullc__packbuf pb;
    bullc__packbuf_init(&pb);
    msgpack_pack_map(&pb.pk, 9 + (w->name != NULL) + (w->o.limiter_max > 0));
    bullc__pack_str(&pb.pk, "token");
    bullc__pack_str(&pb.pk, job->token);
    if (w->name) {
        bullc__pack_str(&pb.pk, "name");
        bullc__pack_str(&pb.pk, w->name);
    }
    cJSON *keep = keep_for(w, job, completed);
    bullc__pack_str(&pb.pk, "keepJobs");
    bullc__pack_json(&pb.pk, keep);
    cJSON_Delete(keep);
    if (w->o.limiter_max > 0) pack_limiter(w, &pb.pk);
    bullc__pack_str(&pb.pk, "lockDuration");
    msgpack_pack_int64(&pb.pk, w->o.lock_duration);
    const cJSON *att = opt(job, "attempts");
    bullc__pack_str(&pb.pk, "attempts");
    bullc__pack_number(&pb.pk, cJSON_IsNumber(att) ? att->valuedouble : 0);
    bullc__pack_str(&pb.pk, "maxMetricsSize");
    if (w->o.metrics_max_data_points > 0)
        msgpack_pack_int64(&pb.pk, w->o.metrics_max_data_points);
    else
        bullc__pack_str(&pb.pk, "");
    static const char *const flags[] = {"fpof", "failParentOnFailure",       "cpof", "continueParentOnFailure",
                                        "idof", "ignoreDependencyOnFailure", "rdof", "removeDependencyOnFailure"};
    for (int i = 0; i < 8; i += 2) {
        bullc__pack_str(&pb.pk, flags[i]);
        if (cJSON_IsTrue(opt(job, flags[i + 1])))
            msgpack_pack_true(&pb.pk);
        else
            msgpack_pack_false(&pb.pk);
    }
    sds s = sdsnewlen(pb.sbuf.data, pb.sbuf.size);
    bullc__packbuf_destroy(&pb);
    return s;
}

/* failedReason and stacktrace (the stored array plus this failure, cut to
 * stackTraceLimit), packed as Node's objectToFlatArray. */
static sds pack_fail_fields(const bullc_job *job, const char *reason) {
    cJSON *st = job->stacktrace ? cJSON_Parse(job->stacktrace) : NULL;
    if (!cJSON_IsArray(st)) {
        cJSON_Delete(st);
        st = cJSON_CreateArray();
    }
    sds line = sdscatprintf(sdsempty(), "Error: %s\n    at bullc worker (%s)", reason, job->w->queue);
    cJSON_AddItemToArray(st, cJSON_CreateString(line));
    sdsfree(line);
    const cJSON *lim = opt(job, "stackTraceLimit");
    if (cJSON_IsNumber(lim)) {
        int keep = (int)lim->valuedouble;
        while (cJSON_GetArraySize(st) > keep && cJSON_GetArraySize(st) > 0) cJSON_DeleteItemFromArray(st, 0);
    }
    char *sts = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    bullc__packbuf pb;
    bullc__packbuf_init(&pb);
    msgpack_pack_array(&pb.pk, 4);
    bullc__pack_str(&pb.pk, "failedReason");
    bullc__pack_str(&pb.pk, reason);
    bullc__pack_str(&pb.pk, "stacktrace");
    bullc__pack_str(&pb.pk, sts ? sts : "[]");
    free(sts);
    sds s = sdsnewlen(pb.sbuf.data, pb.sbuf.size);
    bullc__packbuf_destroy(&pb);
    return s;
}

static sds pack_fetch(bullc_worker *w, const char *token) {
    bullc__packbuf pb;
    bullc__packbuf_init(&pb);
    msgpack_pack_map(&pb.pk, 2 + (w->name != NULL) + (w->o.limiter_max > 0));
    bullc__pack_str(&pb.pk, "token");
    bullc__pack_str(&pb.pk, token);
    bullc__pack_str(&pb.pk, "lockDuration");
    msgpack_pack_int64(&pb.pk, w->o.lock_duration);
    if (w->o.limiter_max > 0) pack_limiter(w, &pb.pk);
    if (w->name) {
        bullc__pack_str(&pb.pk, "name");
        bullc__pack_str(&pb.pk, w->name);
    }
    sds s = sdsnewlen(pb.sbuf.data, pb.sbuf.size);
    bullc__packbuf_destroy(&pb);
    return s;
}

void bullc__process_end(bullc_job *job, bool ok, const char *value, int fail_flags) {
    bullc_worker *w = job->w;
    if (job->state != BULLC__JOB_PROCESSING) return;
    job->state = BULLC__JOB_FINISHING;
    bullc__finish *f = calloc(1, sizeof *f);
    if (!f || w->forced) {
        free(f);
        finished(job); /* left for stalled recovery */
        return;
    }
    job->fin = f;
    f->fetch_index = -1;
    f->value = sdsnew(value ? value : (ok ? "null" : "Unknown error"));
    int64_t now = bullc__now_ms();
    /* Node: fetch the next job in the same call while numTotal <= concurrency
     * (this job's slot passes to the next one) */
    bool fetch_next = !w->closing && !w->paused && w->in_flight + w->fetching <= w->o.concurrency &&
                      w->limit_until <= now && w->running;
    if (!ok && (fail_flags & BULLC_FAIL_RATE_LIMITED)) {
        f->kind = FIN_RATE_LIMITED;
        f->script = bullc__script_get("moveJobFromActiveToWait");
        const sds keys[] = {w->k_active,  w->k_wait,        w->k_stalled, w->k_paused, w->k_meta,
                            w->k_limiter, w->k_prioritized, w->k_marker,  w->k_events};
        for (int i = 0; i < 9; i++) arg_sds(f, keys[i]);
        arg_sds(f, job->id), arg_sds(f, job->token), arg_sds(f, job->key);
        if (job->ops_pending)
            f->deferred = true;
        else
            send_finish(job);
        return;
    }
    int kind = ok ? FIN_COMPLETED : FIN_FAILED;
    int64_t delay = 0;
    if (!ok) {
        const cJSON *att = opt(job, "attempts");
        double attempts = cJSON_IsNumber(att) ? att->valuedouble : 0;
        bool unrecoverable = fail_flags & BULLC_FAIL_UNRECOVERABLE;
        bool max_started = w->o.max_started_attempts && w->o.max_started_attempts <= job->attempts_started;
        if ((double)job->attempts_made + 1 < attempts && !unrecoverable && !max_started) {
            delay = bullc__backoff_delay(w, job, job->attempts_made + 1, f->value);
            if (delay != -1) kind = delay > 0 ? FIN_DELAYED : FIN_RETRY;
        }
    }
    f->kind = kind;
    sds now_s = sdsfromlonglong((long long)now);
    if (kind == FIN_COMPLETED || kind == FIN_FAILED) {
        bool completed = kind == FIN_COMPLETED;
        f->script = bullc__script_get("moveToFinished");
        const sds keys[] = {w->k_wait,
                            w->k_active,
                            w->k_prioritized,
                            w->k_events,
                            w->k_stalled,
                            w->k_limiter,
                            w->k_delayed,
                            w->k_paused,
                            w->k_meta,
                            w->k_pc,
                            completed ? w->k_completed : w->k_failed,
                            job->key,
                            completed ? w->k_metrics_completed : w->k_metrics_failed,
                            w->k_marker};
        for (int i = 0; i < 14; i++) arg_sds(f, keys[i]);
        arg_sds(f, job->id);
        arg_own(f, now_s);
        arg_str(f, completed ? "returnvalue" : "failedReason");
        arg_sds(f, f->value);
        arg_str(f, completed ? "completed" : "failed");
        f->fetch_index = f->argc;
        arg_str(f, fetch_next ? "1" : "0");
        arg_sds(f, w->base);
        arg_own(f, pack_finish_opts(w, job, completed));
        if (completed)
            arg_str(f, "");
        else
            arg_own(f, pack_fail_fields(job, f->value));
    } else if (kind == FIN_DELAYED) {
        f->script = bullc__script_get("moveToDelayed");
        const sds keys[] = {w->k_marker, w->k_active,  w->k_prioritized, w->k_delayed, job->key, w->k_events,
                            w->k_meta,   w->k_stalled, w->k_wait,        w->k_limiter, w->k_pc};
        for (int i = 0; i < 11; i++) arg_sds(f, keys[i]);
        arg_sds(f, w->base);
        arg_own(f, now_s);
        arg_sds(f, job->id);
        arg_sds(f, job->token);
        arg_own(f, sdsfromlonglong((long long)delay));
        arg_str(f, "0"); /* skipAttempt */
        arg_own(f, pack_fail_fields(job, f->value));
        f->fetch_index = f->argc;
        arg_str(f, fetch_next ? "1" : "0");
        if (fetch_next)
            arg_own(f, pack_fetch(w, job->token));
        else
            arg_str(f, "");
    } else {
        f->script = bullc__script_get("retryJob");
        const sds keys[] = {w->k_active,  w->k_wait,        w->k_paused, job->key,    w->k_meta,   w->k_events,
                            w->k_delayed, w->k_prioritized, w->k_pc,     w->k_marker, w->k_stalled};
        for (int i = 0; i < 11; i++) arg_sds(f, keys[i]);
        arg_sds(f, w->base);
        arg_own(f, now_s);
        arg_str(f, cJSON_IsTrue(opt(job, "lifo")) ? "RPUSH" : "LPUSH");
        arg_sds(f, job->id);
        arg_sds(f, job->token);
        arg_own(f, pack_fail_fields(job, f->value));
        fetch_next = false;
    }
    f->fetch_next = fetch_next && f->fetch_index >= 0;
    /* as Node's `await job.updateProgress()`: the job's progress and logs are
     * stored before it leaves active */
    if (job->ops_pending)
        f->deferred = true;
    else
        send_finish(job);
}

/* ---- running the processor -------------------------------------------- */

static bool valid_json(const char *s) {
    cJSON *j = cJSON_Parse(s);
    cJSON_Delete(j);
    return j != NULL;
}

static void work_cb(uv_work_t *req) {
    bullc_job *job = req->data;
    bullc_worker *w = job->w;
    w->o.blocking_processor(job, &job->result, w->o.processor_data);
}

static void after_work_cb(uv_work_t *req, int status) {
    bullc_job *job = req->data;
    bullc_worker *w = job->w;
    (void)status;
    bullc__jobops_drain(w); /* its progress and logs go out before its result */
    job->processor_done = true;
    if (job->state != BULLC__JOB_PROCESSING)
        release_if_done(job); /* timed out before */
    else if (job->result.error)
        bullc__process_end(job, false, job->result.error, job->result.fail_flags);
    else if (job->result.result_json && !valid_json(job->result.result_json))
        bullc__process_end(job, false, "bullc: the processor returned invalid JSON", BULLC_FAIL_UNRECOVERABLE);
    else
        bullc__process_end(job, true, job->result.result_json, 0);
}

void bullc__process_start(bullc_worker *w, bullc_job *job) {
    job->next = w->jobs;
    if (w->jobs) w->jobs->prev = job;
    w->jobs = job;
    w->in_flight++;
    job->state = BULLC__JOB_PROCESSING;
    job->lock_ts = job->started = (int64_t)uv_now(w->loop);
    if (w->ev.active) w->ev.active(w, job, w->ev_data);
    if (job->rjk)
        /* A Node worker would schedule the scheduler's next job now; bullc does
         * not implement job schedulers yet, so say so rather than let the
         * schedule stop in silence. */
        bullc__worker_error(w, BULLC_EINVAL,
                            "job %s belongs to job scheduler '%s': bullc does not schedule its next iteration "
                            "(job schedulers are not supported yet; run a Node worker for this queue)",
                            job->id, job->rjk);
    const char *unrecoverable = NULL;
    if (job->bad)
        unrecoverable = job->bad;
    else if (job->defa)
        unrecoverable = job->defa;
    else if (w->o.max_started_attempts && w->o.max_started_attempts < job->attempts_started)
        unrecoverable = "job started more than allowable limit";
    if (unrecoverable) {
        job->processor_done = true;
        bullc__process_end(job, false, unrecoverable, BULLC_FAIL_UNRECOVERABLE);
        return;
    }
    if (w->o.processor) {
        w->o.processor(job, w->o.processor_data);
        return;
    }
    job->work.data = job;
    if (uv_queue_work(w->loop, &job->work, work_cb, after_work_cb)) {
        job->processor_done = true;
        bullc__process_end(job, false, "bullc: cannot queue the job on the thread pool", 0);
    }
}

int bullc_job_complete(bullc_job *job, const char *result_json) {
    if (job->processor_done) return BULLC_EINVAL;
    job->processor_done = true;
    int rc = 0;
    if (result_json) {
        cJSON *r = cJSON_Parse(result_json);
        if (!r) rc = BULLC_EINVAL;
        cJSON_Delete(r);
    }
    if (job->state != BULLC__JOB_PROCESSING)
        release_if_done(job); /* timed out before */
    else if (rc)
        bullc__process_end(job, false, "bullc: the processor returned invalid JSON", BULLC_FAIL_UNRECOVERABLE);
    else
        bullc__process_end(job, true, result_json, 0);
    return rc;
}

int bullc_job_fail(bullc_job *job, const char *message, int flags) {
    if (job->processor_done) return BULLC_EINVAL;
    job->processor_done = true;
    if (job->state != BULLC__JOB_PROCESSING)
        release_if_done(job);
    else
        bullc__process_end(job, false, message && *message ? message : "Unknown error", flags);
    return 0;
}
