/* SPDX-License-Identifier: MIT */
/* Running a processor on a job and moving the job out of active: completed,
 * failed, retried (at once or after a backoff), put back (rate limit), or
 * left where its processor moved it (delayed, waiting-children). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

enum { FIN_COMPLETED, FIN_FAILED, FIN_DELAYED, FIN_RETRY, FIN_RATE_LIMITED, FIN_MOVED };

struct bullc__finish {
    int kind;
    const bullc__script *script;
    int argc;
    /* Keys and ids are borrowed from the worker and the job (both outlive
     * the finish); only what is built per finish is owned. */
    const char *argv[24];
    size_t lens[24];
    sds own[4];
    int nown;
    char now[24];                     /* numbers formatted in place */
    char delay[BULLC__JS_NUMBER_MAX]; /* as String(delay) in Node */
    int fetch_index;                  /* argv index of the fetch-next flag, or -1 */
    bool fetch_next;
    bool pending;      /* to be (re)sent when the connection is ready */
    bool deferred;     /* waits for the job's own actions to be answered first */
    bool uncertain;    /* an earlier send may have been applied */
    bool oom;          /* building it failed */
    bool asked_next;   /* the last send asked for the next job too */
    bool said_moved;   /* FIN_MOVED: the processor ended with BULLC_FAIL_MOVED */
    int script_errors; /* error replies in a row with the lock still held */
    int next_code;     /* for a caller waiting for the move (job->next_req): why it was not stored */
    sds value;         /* result JSON or failure reason */
    sds error;         /* the last error reply, while its effect is checked */
};

static void fin_free(bullc__finish *f) {
    if (!f) return;
    for (int i = 0; i < f->nown; i++) sdsfree(f->own[i]);
    sdsfree(f->value);
    sdsfree(f->error);
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

/* The job left active (or will be left to stalled recovery). A job that
 * timed out while its blocking processor still runs keeps its concurrency
 * slot until the processor returns: the pool thread is still busy with it,
 * and a job fetched into that slot would only wait for a thread. */
static void finished(bullc_job *job) {
    bullc_worker *w = job->w;
    job->state = BULLC__JOB_FINISHED;
    if (job->next_req) { /* stored() answers it first: here the move was not stored (or was a processor's) */
        const bullc__finish *f = job->fin;
        int code = !f ? (w->forced ? BULLC_ECLOSED : BULLC_ENOMEM)
                      : (f->next_code ? f->next_code : (w->forced && f->kind != FIN_MOVED ? BULLC_ECLOSED : 0));
        bullc__worker_next_req_fail(job->next_req, code);
        job->next_req = NULL;
    }
    if (job->timed_out && !job->processor_done && w->o.blocking_processor) {
        job->stuck = true;
    } else {
        w->in_flight--;
        if (w->group) bullc__group_slot_freed(w->group);
    }
    release_if_done(job);
    bullc__worker_maybe_paused(w);
}

static void send_finish(bullc_job *job);

/* The processor moved its job (Node's WaitingChildrenError, DelayedError):
 * nothing is stored, and the slot goes to the next job, as Node's worker
 * fetches one then. A job said moved that was not stays active with nobody
 * renewing its lock: the stalled checker takes it back, as with Node. */
static void moved_end(bullc_job *job) {
    bullc_worker *w = job->w;
    if (!job->moved)
        bullc__worker_error(w, BULLC_ESTATE,
                            "job %s: its processor ended it as moved, but it was not moved: it stays active until "
                            "the stalled checker takes it back",
                            job->id);
    else if (!job->fin->said_moved)
        bullc__worker_error(w, BULLC_ESTATE, "job %s was moved by its processor: its result is not stored", job->id);
    finished(job);
    bullc__worker_pump(w);
}

void bullc__process_op_done(bullc_job *job) {
    if (--job->ops_pending > 0) return;
    if (job->fin && job->fin->deferred) {
        job->fin->deferred = false;
        if (job->fin->kind == FIN_MOVED)
            moved_end(job);
        else
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

/* The finish was stored: the job's events, then the next job it brought. */
static void stored(bullc_job *job, const redisReply *r) {
    bullc_worker *w = job->w;
    bullc__finish *f = job->fin;
    int64_t now = bullc__now_ms();
    if (f->kind != FIN_RATE_LIMITED) bullc__wstats_duration(&w->stats, (double)(uv_hrtime() - job->started_ns) / 1e9);
    if (w->o.tracer && f->kind != FIN_RATE_LIMITED && f->kind != FIN_MOVED)
        bullc__trace_job_end(w, job, f->kind == FIN_COMPLETED, f->value);
    switch (f->kind) {
    case FIN_COMPLETED:
        w->stats.completed++;
        if (w->ev.completed) w->ev.completed(w, job, f->value, w->ev_data);
        break;
    case FIN_RATE_LIMITED:
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) w->limit_until = now + r->integer;
        break;
    default:
        w->stats.failed++;
        if (w->ev.failed) w->ev.failed(w, job, f->value, f->kind != FIN_FAILED, w->ev_data);
    }
    struct bullc__manual_ctx *req = job->next_req; /* the caller takes the next job, not the worker */
    job->next_req = NULL;
    sds token = !req && r && r->type == REDIS_REPLY_ARRAY ? sdsdup(job->token) : NULL; /* the next job's too */
    /* The script answers 0 when it found no next job to hand over: Node
     * reads that as an empty next-job answer and is drained (it blocks
     * next instead of asking moveToActive once more). */
    bool none_next = !req && f->asked_next && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0;
    finished(job);
    if (req && r)
        bullc__worker_next_req_reply(req, r);
    else if (req)
        bullc__worker_next_req_fail(req, 0); /* stored by a send whose reply was lost */
    if (token)
        bullc__worker_handle_next(w, r, token);
    else if (none_next)
        bullc__worker_drained(w);
    bullc__worker_pump(w);
}

/* Where a stored finish puts the job, when that is a sorted set. */
static sds target_set(bullc_worker *w, const bullc__finish *f) {
    switch (f->kind) {
    case FIN_COMPLETED:
        return w->keys.k[BULLC__K_COMPLETED];
    case FIN_FAILED:
        return w->keys.k[BULLC__K_FAILED];
    case FIN_DELAYED:
        return w->keys.k[BULLC__K_DELAYED];
    default:
        return NULL;
    }
}

/* The results pending go out again in a second (and, failing a timer, once
 * the connection is back: bullc__process_resend). */
static void resend_later(bullc_worker *w) {
    bullc__worker_timer_start(w, &w->retry_timer, bullc__process_resend_timer, 1000, 0);
}

static void recheck_done(bullc_job *job, bool lock_held, bool in_target) {
    bullc_worker *w = job->w;
    bullc__finish *f = job->fin;
    const char *name = f->script->name;
    if (lock_held && ++f->script_errors < 3) {
        /* the script stopped before it took the job out of active */
        bullc__worker_error(w, BULLC_EREDIS, "job %s: %s failed: %s; will retry", job->id, name, f->error);
        f->pending = true;
        resend_later(w);
    } else if (lock_held) {
        bullc__worker_error(w, BULLC_EREDIS,
                            "job %s: %s failed 3 times (%s): the job is left active for stalled recovery", job->id,
                            name, f->error);
        finished(job);
        bullc__worker_pump(w);
    } else if (in_target && f->uncertain) {
        stored(job, NULL); /* by the send whose reply was lost */
    } else if (in_target) {
        /* BullMQ's scripts keep what they wrote before an error: this one
         * moved the job, then failed fetching the next (taken or not) */
        bullc__worker_error(w, BULLC_EREDIS, "job %s: %s stored it, then failed: %s", job->id, name, f->error);
        if (f->asked_next) bullc__adopt(w, job->token);
        stored(job, NULL);
    } else if (f->uncertain) {
        /* moved by the lost send (then removed, or put where no set tells),
         * or taken over: either way no longer this worker's */
        finished(job);
        bullc__worker_pump(w);
    } else {
        bullc__worker_error(w, BULLC_EREDIS,
                            "job %s: %s failed (%s) and the job's lock is no longer this worker's: left to its "
                            "new owner or to stalled recovery",
                            job->id, name, f->error);
        finished(job);
        bullc__worker_pump(w);
    }
    bullc__worker_maybe_closed(w);
}

static void recheck_target_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_job *job = data;
    (void)c, (void)err;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        recheck_done(job, false, false);
        return;
    }
    recheck_done(job, false, r->type == REDIS_REPLY_STRING);
}

static void recheck_lock_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_job *job = data;
    bullc_worker *w = job->w;
    bullc__finish *f = job->fin;
    (void)err;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* cannot tell: send again once Redis answers (the script's lock
         * check keeps that from finishing the job twice) */
        f->uncertain = true;
        f->pending = true;
        if (w->forced) finished(job);
        bullc__worker_maybe_closed(w);
        return;
    }
    bool held = r->type == REDIS_REPLY_STRING && r->len == sdslen(job->token) && !memcmp(r->str, job->token, r->len);
    sds set = target_set(w, f);
    if (held || !set) {
        recheck_done(job, held, false);
        return;
    }
    const char *argv[] = {"ZSCORE", set, job->id};
    if (bullc__aconn_cmd(c, 0, recheck_target_reply, job, 3, argv, NULL)) recheck_done(job, false, false);
}

/* A script answered an error, which does not mean it wrote nothing: read
 * the job's lock (and where the finish puts it) to learn what happened. */
static void recheck(bullc_job *job, const bullc_error *err) {
    bullc_worker *w = job->w;
    bullc__finish *f = job->fin;
    sdsfree(f->error);
    f->error = sdsnew(err->message);
    f->next_code = err->code ? err->code : BULLC_EREDIS;
    sds lock = bullc__job_key(&w->keys, job->id, BULLC__K_JOB_LOCK);
    const char *argv[] = {"GET", lock};
    int rc = lock ? bullc__aconn_cmd(w->cmd, 0, recheck_lock_reply, job, 2, argv, NULL) : BULLC_ENOMEM;
    sdsfree(lock);
    if (rc) {
        f->pending = true; /* on_cmd_ready resends */
        if (w->forced) finished(job);
    }
}

static void finish_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_job *job = data;
    bullc_worker *w = job->w;
    bullc__finish *f = job->fin;
    (void)c;
    f->asked_next = f->fetch_next;
    if (f->fetch_next) {
        f->fetch_next = false;
        if (f->fetch_index >= 0) f->argv[f->fetch_index] = "0";
    }
    if (r && r->type == REDIS_REPLY_ERROR && !w->forced && bullc__script_runtime_error(err)) {
        recheck(job, err);
        bullc__worker_maybe_closed(w);
        return;
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* Not stored (or not known to be): send again once Redis is back.
         * The lock check in the script keeps a second send from completing
         * the job twice. */
        if (!r) f->uncertain = true;
        if (!r && f->asked_next && !w->forced) bullc__worker_lost_fetch(w, job->token);
        f->pending = true;
        if (w->forced) {
            finished(job); /* closing: left for stalled recovery */
        } else {
            bullc__worker_error(w, err->code, "job %s: cannot store its result yet (%s); will retry", job->id,
                                err->message);
            if (r) resend_later(w);
        }
        bullc__worker_maybe_closed(w);
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        long long code = r->integer;
        bullc_error e;
        bullc__script_code_err(code, job->id, f->script->name, "active", &e); /* Node's wording */
        if (f->uncertain && (code == -1 || code == -2 || code == -3)) {
            /* gone from active or unlocked: most likely by the send whose
             * reply was lost; where the job is tells */
            recheck(job, &e);
            bullc__worker_maybe_closed(w);
            return;
        }
        bullc__worker_error(w, e.code, "%s", e.message);
        f->next_code = e.code;
        if (f->kind == FIN_COMPLETED && (code == -4 || code == -9) && !w->forced) {
            /* Node's worker fails a job whose completion the script refused
             * (pending or failed children): handleFailed with that error.
             * The job is still active and locked, so the failure is stored. */
            job->fin = NULL;
            job->state = BULLC__JOB_PROCESSING;
            fin_free(f);
            bullc__process_end(job, false, e.message, 0);
            return;
        }
        finished(job);
        bullc__worker_pump(w);
        return;
    }
    stored(job, r);
}

void bullc__process_resend_timer(uv_timer_t *t) { bullc__process_resend(t->data); }

static void send_finish(bullc_job *job) {
    bullc_worker *w = job->w;
    bullc__finish *f = job->fin;
    f->pending = false;
    if (bullc__aconn_eval(w->cmd, f->script, 0, finish_reply, job, f->argc, f->argv, f->lens)) {
        if (f->fetch_next) {
            f->fetch_next = false;
            if (f->fetch_index >= 0) f->argv[f->fetch_index] = "0";
        }
        f->pending = true; /* on_cmd_ready resends */
        if (w->forced) finished(job);
    }
}

void bullc__process_drop_parked(bullc_worker *w) {
    for (bullc_job *j = w->jobs, *next; j; j = next) {
        next = j->next;
        if (j->state == BULLC__JOB_FINISHING && j->fin && j->fin->pending) finished(j);
    }
}

void bullc__process_resend(bullc_worker *w) {
    for (bullc_job *j = w->jobs, *next; j; j = next) {
        next = j->next;
        if (j->state == BULLC__JOB_FINISHING && j->fin && j->fin->pending) send_finish(j);
    }
}

/* A decimal integer at `buf` (24 bytes); returns its length. */
static size_t fmt_i64(char *buf, int64_t v) {
    char tmp[24];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do tmp[n++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) buf[len++] = '-';
    while (n) buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

static void arg(bullc__finish *f, const char *s, size_t len) {
    f->argv[f->argc] = s;
    f->lens[f->argc++] = len;
}
static void arg_str(bullc__finish *f, const char *s) { arg(f, s, strlen(s)); }
static void arg_sds(bullc__finish *f, const sds s) { arg(f, s, sdslen(s)); } /* borrowed */
static void arg_own(bullc__finish *f, sds s) {
    if (!s) {
        f->oom = true;
        arg(f, "", 0);
        return;
    }
    f->own[f->nown++] = s;
    arg_sds(f, s);
}

/* The script of call `c` and its keys, borrowed from the worker and the job. */
static void call_keys(bullc__finish *f, bullc__call_id c, const bullc_job *job) {
    const bullc__call_ctx x = {.job = job->key};
    f->script = bullc__call_script(job->w->proto, c);
    f->argc += bullc__call_keys(job->w->proto, c, &job->w->keys, &x, f->argv + f->argc, f->lens + f->argc);
}

/* msgpack into an sds (one allocation for the usual sizes). */
typedef struct sds_out {
    sds s;
    bool oom;
} sds_out;

static int sds_out_write(void *data, const char *buf, size_t len) {
    sds_out *o = data;
    if (!o->oom && sdsavail(o->s) >= len) { /* the usual case: the room was made up front */
        memcpy(o->s + sdslen(o->s), buf, len);
        sdssetlen(o->s, sdslen(o->s) + len);
        o->s[sdslen(o->s)] = '\0';
        return 0;
    }
    sds n = o->oom ? NULL : sdscatlen(o->s, buf, len);
    if (!n) {
        o->oom = true;
        return -1;
    }
    o->s = n;
    return 0;
}

static void sds_out_init(sds_out *o, msgpack_packer *pk, size_t room) {
    o->s = sdsnewlen(NULL, room);
    o->oom = !o->s;
    if (o->s) sdsclear(o->s);
    msgpack_packer_init(pk, o, sds_out_write);
}

/* The packed result, or NULL when out of memory. */
static sds sds_out_done(sds_out *o) {
    if (!o->oom) return o->s;
    sdsfree(o->s);
    return NULL;
}

static void pack_cat(msgpack_packer *pk, const sds part) { sds_out_write(pk->data, part, sdslen(part)); }

/* moveToFinished's options map is the same for every job of the worker but
 * for the token, keepJobs, attempts and the four parent flags: the rest is
 * packed once, in the parts between those. */
enum { FO_HEAD, FO_KEEP_KEY, FO_KEEP_COMPLETE, FO_KEEP_FAIL, FO_ATTEMPTS_KEY, FO_METRICS, FO_N };
_Static_assert(FO_N == sizeof((bullc_worker *)0)->fin_opts / sizeof(sds), "bullc_worker.fin_opts holds the parts");

static int fin_opts_init(bullc_worker *w) {
    for (int i = 0; i < FO_N; i++) {
        msgpack_packer pk;
        sds_out o;
        sds_out_init(&o, &pk, 64);
        switch (i) {
        case FO_HEAD:
            msgpack_pack_map(&pk, 9 + (w->name != NULL) + (w->o.limiter_max > 0));
            bullc__pack_str(&pk, "token");
            break;
        case FO_KEEP_KEY:
            if (w->name) {
                bullc__pack_str(&pk, "name");
                bullc__pack_str(&pk, w->name);
            }
            bullc__pack_str(&pk, "keepJobs");
            break;
        case FO_KEEP_COMPLETE:
        case FO_KEEP_FAIL: {
            const cJSON *def = i == FO_KEEP_COMPLETE ? w->keep_complete : w->keep_fail;
            if (def)
                bullc__pack_json(&pk, def);
            else
                bullc__pack_keep_jobs(&pk, NULL); /* keep all: {count: -1} */
            break;
        }
        case FO_ATTEMPTS_KEY:
            if (w->o.limiter_max > 0) bullc__pack_limiter(&pk, w->o.limiter_max, w->o.limiter_duration);
            bullc__pack_str(&pk, "lockDuration");
            msgpack_pack_int64(&pk, w->o.lock_duration);
            bullc__pack_str(&pk, "attempts");
            break;
        default:
            bullc__pack_str(&pk, "maxMetricsSize");
            if (w->o.metrics_max_data_points > 0)
                msgpack_pack_int64(&pk, w->o.metrics_max_data_points);
            else
                bullc__pack_str(&pk, "");
        }
        if (!(w->fin_opts[i] = sds_out_done(&o))) {
            for (int k = 0; k < i; k++) sdsfree(w->fin_opts[k]), w->fin_opts[k] = NULL;
            return BULLC_ENOMEM;
        }
    }
    return 0;
}

/* {token, name?, keepJobs, limiter?, lockDuration, attempts, maxMetricsSize,
 * fpof, cpof, idof, rdof}, as Node packs moveToFinished's options. */
static sds pack_finish_opts(bullc_worker *w, const bullc_job *job, bool completed) {
    if (!w->fin_opts[0] && fin_opts_init(w)) return NULL;
    msgpack_packer pk;
    sds_out o;
    sds_out_init(&o, &pk, 192 + sdslen(job->token));
    pack_cat(&pk, w->fin_opts[FO_HEAD]);
    bullc__pack_strn(&pk, job->token, sdslen(job->token));
    pack_cat(&pk, w->fin_opts[FO_KEEP_KEY]);
    /* Node's getKeepJobs: the job's removeOn* first, then the worker's */
    const cJSON *keep = completed ? job->o_remove_on_complete : job->o_remove_on_fail;
    if (keep && !cJSON_IsNull(keep))
        bullc__pack_keep_jobs(&pk, keep);
    else
        pack_cat(&pk, w->fin_opts[completed ? FO_KEEP_COMPLETE : FO_KEEP_FAIL]);
    pack_cat(&pk, w->fin_opts[FO_ATTEMPTS_KEY]);
    bullc__pack_number(&pk, cJSON_IsNumber(job->o_attempts) ? job->o_attempts->valuedouble : 0);
    pack_cat(&pk, w->fin_opts[FO_METRICS]);
    for (int i = 0; i < 4; i++) {
        bullc__pack_strn(&pk, bullc__opt_parent_flags[i], 4);
        if (cJSON_IsTrue(job->o_parent[i]))
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
    }
    return sds_out_done(&o);
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
    const cJSON *lim = job->o_stack_trace_limit;
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
    bool stuck = job->timed_out && !job->processor_done && w->o.blocking_processor; /* keeps its slot */
    bool fetch_next = !w->closing && !w->paused && !w->version_stopped &&
                      w->in_flight + w->fetching <= w->o.concurrency && w->limit_until <= now && w->running && !stuck &&
                      !(w->group && bullc__group_contended(w->group));
    if (job->next_req) fetch_next = job->next_fetch; /* the caller's choice: a manual worker never fetches */
    if (job->moved || (!ok && (fail_flags & BULLC_FAIL_MOVED))) {
        f->kind = FIN_MOVED;
        f->said_moved = !ok && (fail_flags & BULLC_FAIL_MOVED);
        if (job->ops_pending) /* the move's answer among them */
            f->deferred = true;
        else
            moved_end(job);
        return;
    }
    if (!ok && (fail_flags & BULLC_FAIL_RATE_LIMITED)) {
        f->kind = FIN_RATE_LIMITED;
        call_keys(f, BULLC__C_MOVE_ACTIVE_TO_WAIT, job);
        arg_sds(f, job->id), arg_sds(f, job->token), arg_sds(f, job->key);
        if (job->ops_pending)
            f->deferred = true;
        else
            send_finish(job);
        return;
    }
    int kind = ok ? FIN_COMPLETED : FIN_FAILED;
    double delay = 0;
    if (!ok) {
        const cJSON *att = job->o_attempts;
        double attempts = cJSON_IsNumber(att) ? att->valuedouble : 0;
        bool unrecoverable = fail_flags & BULLC_FAIL_UNRECOVERABLE;
        bool max_started = w->proto->max_started_ends_retries && w->o.max_started_attempts &&
                           w->o.max_started_attempts <= job->attempts_started;
        if ((double)job->attempts_made + 1 < attempts && !unrecoverable && !max_started) {
            delay = bullc__backoff_delay(w, job, job->attempts_made + 1, f->value);
            /* Node: `if (retryDelay)`, so a negative delay goes through
             * moveToDelayed too (the script runs it now) and NaN retries */
            if (delay != -1) kind = delay != 0 && !isnan(delay) ? FIN_DELAYED : FIN_RETRY;
        }
    }
    f->kind = kind;
    size_t now_len = fmt_i64(f->now, now);
    if (kind == FIN_COMPLETED || kind == FIN_FAILED) {
        bool completed = kind == FIN_COMPLETED;
        call_keys(f, completed ? BULLC__C_MOVE_TO_COMPLETED : BULLC__C_MOVE_TO_FAILED, job);
        arg_sds(f, job->id);
        arg(f, f->now, now_len);
        arg_str(f, completed ? "returnvalue" : "failedReason");
        arg_sds(f, f->value);
        arg_str(f, completed ? "completed" : "failed");
        f->fetch_index = f->argc;
        arg_str(f, fetch_next ? "1" : "0");
        arg_sds(f, w->keys.k[BULLC__K_BASE]);
        arg_own(f, pack_finish_opts(w, job, completed));
        if (completed)
            arg_str(f, "");
        else
            arg_own(f, pack_fail_fields(job, f->value));
    } else if (kind == FIN_DELAYED) {
        call_keys(f, BULLC__C_MOVE_TO_DELAYED, job);
        arg_sds(f, w->keys.k[BULLC__K_BASE]);
        arg(f, f->now, now_len);
        arg_sds(f, job->id);
        arg_sds(f, job->token);
        arg(f, f->delay, bullc__js_number(f->delay, delay));
        arg_str(f, "0"); /* skipAttempt */
        arg_own(f, pack_fail_fields(job, f->value));
        f->fetch_index = f->argc;
        arg_str(f, fetch_next ? "1" : "0");
        if (fetch_next)
            arg_own(f, bullc__worker_fetch_opts(w, job->token));
        else
            arg_str(f, "");
    } else {
        call_keys(f, BULLC__C_RETRY_JOB, job);
        arg_sds(f, w->keys.k[BULLC__K_BASE]);
        arg(f, f->now, now_len);
        arg_str(f, cJSON_IsTrue(job->o_lifo) ? "RPUSH" : "LPUSH");
        arg_sds(f, job->id);
        arg_sds(f, job->token);
        arg_own(f, pack_fail_fields(job, f->value));
        fetch_next = false;
    }
    f->fetch_next = fetch_next && f->fetch_index >= 0;
    if (f->oom) {
        job->fin = NULL;
        fin_free(f);
        finished(job); /* left for stalled recovery */
        return;
    }
    /* as Node's `await job.updateProgress()`: the job's progress and logs are
     * stored before it leaves active */
    if (job->ops_pending)
        f->deferred = true;
    else
        send_finish(job);
}

/* ---- running the processor -------------------------------------------- */

static bool valid_json(const char *s) { return bullc__json_parses(s, strlen(s)); }

static void work_cb(uv_work_t *req) {
    bullc_job *job = req->data;
    bullc_worker *w = job->w;
    job->run_started = (int64_t)(uv_hrtime() / 1000000);
    w->o.blocking_processor(job, &job->result, w->o.processor_data);
}

static void after_work_cb(uv_work_t *req, int status) {
    bullc_job *job = req->data;
    bullc_worker *w = job->w;
    (void)status;
    bullc__jobops_drain(w); /* its progress and logs go out before its result */
    job->processor_done = true;
    if (job->stuck) {
        job->stuck = false;
        w->in_flight--;
        if (w->group) bullc__group_slot_freed(w->group);
        bullc__worker_error(w, BULLC_ETIMEDOUT,
                            "job %s: its processor returned %lld ms after the job timed out; its slot is free again",
                            job->id,
                            (long long)((int64_t)(uv_hrtime() / 1000000) - job->run_started - w->o.job_timeout));
        bullc__worker_maybe_paused(w);
        bullc__worker_pump(w);
    }
    if (job->state != BULLC__JOB_PROCESSING)
        release_if_done(job); /* timed out before */
    else if (job->result.error || (job->result.fail_flags & BULLC_FAIL_MOVED))
        bullc__process_end(job, false, job->result.error, job->result.fail_flags);
    else if (job->result.result_json && !valid_json(job->result.result_json))
        bullc__process_end(job, false, "bullc: the processor returned invalid JSON", BULLC_FAIL_UNRECOVERABLE);
    else
        bullc__process_end(job, true, job->result.result_json, 0);
}

/* Runs the processor on a job taken (and, for a scheduler's job, once its
 * next iteration is scheduled). */
static void process_run(bullc_worker *w, bullc_job *job) {
    if (w->ev.active) w->ev.active(w, job, w->ev_data);
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

static void scheduled(void *arg) {
    bullc_job *job = arg;
    if (job->state == BULLC__JOB_PROCESSING) {
        process_run(job->w, job);
        return;
    }
    /* it timed out while the next iteration was being scheduled: no processor ran */
    job->processor_done = true;
    release_if_done(job);
}

void bullc__process_track(bullc_worker *w, bullc_job *job) {
    job->next = w->jobs;
    if (w->jobs) w->jobs->prev = job;
    w->jobs = job;
    w->in_flight++;
    if (w->group) bullc__group_slot_taken(w->group);
    job->state = BULLC__JOB_PROCESSING;
    job->lock_ts = job->started = (int64_t)uv_now(w->loop);
    job->started_ns = uv_hrtime();
    if (w->o.tracer) bullc__trace_job_start(w, job);
}

void bullc__process_start(bullc_worker *w, bullc_job *job) {
    bullc__process_track(w, job);
    /* Node's worker schedules a scheduler's next iteration when it takes one
     * of its jobs, and only then emits active and runs the processor: the
     * processor finds the next iteration there */
    if (job->rjk)
        bullc__sched_next_then(w, job, scheduled, job);
    else
        process_run(w, job);
}

int bullc_job_complete(bullc_job *job, const char *result_json) {
    if (job->processor_done) return BULLC_EINVAL;
    job->processor_done = true;
    bullc__cancel_settle(job);
    int rc = result_json && !valid_json(result_json) ? BULLC_EINVAL : 0;
    if (job->state != BULLC__JOB_PROCESSING)
        release_if_done(job); /* timed out before */
    else if (rc)
        bullc__process_end(job, false, "bullc: the processor returned invalid JSON", BULLC_FAIL_UNRECOVERABLE);
    else
        bullc__process_end(job, true, result_json, 0);
    return rc;
}

/* bullc_job_move_to_completed / _failed: the move of bullc_job_complete /
 * bullc_job_fail, answered to `cb` with the next job when asked for. */
static int move_answered(bullc_job *job, bool ok, const char *value, int flags, bool fetch_next, bullc_next_job_cb cb,
                         void *data) {
    bullc_worker *w = job->w;
    if (!cb || job->processor_done || w->running || (ok && value && !valid_json(value))) return BULLC_EINVAL;
    if (job->state != BULLC__JOB_PROCESSING) {
        job->processor_done = true;
        release_if_done(job);
        return BULLC_ECLOSED;
    }
    if (!(job->next_req = bullc__worker_next_req(w, job->token, cb, data))) return BULLC_ENOMEM;
    job->next_fetch = fetch_next;
    job->processor_done = true;
    bullc__cancel_settle(job);
    bullc__process_end(job, ok, value ? value : (ok ? NULL : "Unknown error"), flags);
    return 0;
}

int bullc_job_move_to_completed(bullc_job *job, const char *result_json, bool fetch_next, bullc_next_job_cb cb,
                                void *data) {
    return move_answered(job, true, result_json, 0, fetch_next, cb, data);
}

int bullc_job_move_to_failed(bullc_job *job, const char *message, int flags, bool fetch_next, bullc_next_job_cb cb,
                             void *data) {
    return move_answered(job, false, message && *message ? message : NULL, flags, fetch_next, cb, data);
}

int bullc_job_fail(bullc_job *job, const char *message, int flags) {
    if (job->processor_done) return BULLC_EINVAL;
    job->processor_done = true;
    bullc__cancel_settle(job);
    if (job->state != BULLC__JOB_PROCESSING)
        release_if_done(job);
    else
        bullc__process_end(job, false, message && *message ? message : "Unknown error", flags);
    return 0;
}
