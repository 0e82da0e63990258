/* SPDX-License-Identifier: MIT */
/* The job a processor sees: parsed leniently from the hash moveToActive
 * returns, and the actions a processor may take on it. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static const struct {
    const char *short_name, *name;
} long_keys[] = {{"de", "deduplication"},
                 {"fpof", "failParentOnFailure"},
                 {"cpof", "continueParentOnFailure"},
                 {"idof", "ignoreDependencyOnFailure"},
                 {"kl", "keepLogs"},
                 {"rdof", "removeDependencyOnFailure"},
                 {"tm", "telemetryMetadata"},
                 {"omc", "telemetryOmitContext"}};

static int64_t to_i64(const char *s) {
    /* parseInt-like: leading digits, fractional parts (marker scores) cut;
     * garbage from a buggy producer saturates instead of overflowing */
    return s ? bullc__double_to_i64(strtod(s, NULL)) : 0;
}

bullc_job *bullc__job_from_reply(bullc_worker *w, const redisReply *hash, const redisReply *idr, const char *token) {
    bullc_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->w = w;
    j->id = sdsnewlen(idr->str, idr->type == REDIS_REPLY_STRING ? idr->len : 0);
    if (idr->type == REDIS_REPLY_INTEGER) j->id = sdscatfmt(j->id, "%I", idr->integer);
    j->key = sdscatsds(sdsnew(w->base), j->id);
    j->token = sdsnew(token);
    const char *data = NULL, *opts = NULL, *atm_long = NULL, *atm = NULL;
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        const redisReply *k = hash->element[i], *v = hash->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        const char *f = k->str, *s = v->str;
        /* a real HGETALL has each field once; a forged reply may not */
        if (!strcmp(f, "name"))
            sdsfree(j->name), j->name = sdsnewlen(s, v->len);
        else if (!strcmp(f, "data"))
            data = s;
        else if (!strcmp(f, "opts"))
            opts = s;
        else if (!strcmp(f, "timestamp"))
            j->timestamp = to_i64(s);
        else if (!strcmp(f, "processedOn"))
            j->processed_on = to_i64(s);
        else if (!strcmp(f, "atm"))
            atm = s;
        else if (!strcmp(f, "attemptsMade"))
            atm_long = s;
        else if (!strcmp(f, "ats"))
            j->attempts_started = to_i64(s);
        else if (!strcmp(f, "priority"))
            j->priority = to_i64(s);
        else if (!strcmp(f, "delay"))
            j->delay = to_i64(s);
        else if (!strcmp(f, "progress"))
            sdsfree(j->progress), j->progress = sdsnewlen(s, v->len);
        else if (!strcmp(f, "defa"))
            sdsfree(j->defa), j->defa = sdsnewlen(s, v->len);
        else if (!strcmp(f, "rjk"))
            sdsfree(j->rjk), j->rjk = sdsnewlen(s, v->len);
        else if (!strcmp(f, "stacktrace"))
            sdsfree(j->stacktrace), j->stacktrace = sdsnewlen(s, v->len);
    }
    /* Node: attemptsMade = attemptsMade || atm || 0 (the long name is legacy) */
    j->attempts_made = to_i64(atm_long) ? to_i64(atm_long) : to_i64(atm);
    if (!j->name) j->name = sdsempty();
    j->data = sdsnew(data ? data : "{}");
    cJSON *d = cJSON_Parse(j->data);
    if (!d)
        j->bad = sdscatprintf(sdsempty(), "bullc: job %s has invalid JSON in its data field", j->id);
    else if (!bullc__utf8_valid(j->data, sdslen(j->data)))
        j->bad = sdscatprintf(sdsempty(), "bullc: job %s has invalid UTF-8 in its data field", j->id);
    cJSON_Delete(d);
    j->opts = cJSON_Parse(opts ? opts : "{}");
    if (!cJSON_IsObject(j->opts)) {
        if (!j->bad) j->bad = sdscatprintf(sdsempty(), "bullc: job %s has invalid JSON in its opts field", j->id);
        cJSON_Delete(j->opts);
        j->opts = cJSON_CreateObject();
    }
    for (cJSON *c = j->opts ? j->opts->child : NULL; c; c = c->next)
        for (size_t k = 0; k < sizeof long_keys / sizeof long_keys[0]; k++)
            if (!strcmp(c->string, long_keys[k].short_name)) {
                cJSON_free(c->string);
                c->string = (char *)cJSON_malloc(strlen(long_keys[k].name) + 1);
                strcpy(c->string, long_keys[k].name);
                break;
            }
    if (!j->progress) j->progress = sdsnew("0");
    if (!j->id || !j->key || !j->token || !j->data || !j->opts) {
        bullc__job_free(j);
        return NULL;
    }
    return j;
}

void bullc__job_free(bullc_job *j) {
    if (!j) return;
    sdsfree(j->id), sdsfree(j->name), sdsfree(j->data), sdsfree(j->opts_json), sdsfree(j->token);
    sdsfree(j->key), sdsfree(j->progress), sdsfree(j->defa), sdsfree(j->stacktrace), sdsfree(j->bad);
    sdsfree(j->rjk);
    cJSON_Delete(j->opts);
    free(j->result.result_json);
    free(j->result.error);
    free(j);
}

const char *bullc_job_id(const bullc_job *j) { return j->id; }
const char *bullc_job_name(const bullc_job *j) { return j->name; }
const char *bullc_job_data(const bullc_job *j) { return j->data; }
/* Printed on first use: most processors never ask, and it is per job.
 * The job is the processor's alone while it runs, so the cache is too. */
const char *bullc_job_opts_json(const bullc_job *j) {
    bullc_job *m = (bullc_job *)j;
    if (!m->opts_json) {
        char *oj = cJSON_PrintUnformatted(m->opts);
        m->opts_json = sdsnew(oj ? oj : "{}");
        free(oj);
    }
    return m->opts_json;
}
int64_t bullc_job_attempts_made(const bullc_job *j) { return j->attempts_made; }
int64_t bullc_job_attempts_started(const bullc_job *j) { return j->attempts_started; }
int64_t bullc_job_timestamp(const bullc_job *j) { return j->timestamp; }
int64_t bullc_job_processed_on(const bullc_job *j) { return j->processed_on; }
int64_t bullc_job_priority(const bullc_job *j) { return j->priority; }
const char *bullc_job_token(const bullc_job *j) { return j->token; }
const char *bullc_job_queue_name(const bullc_job *j) { return j->w->queue; }
bool bullc_job_lock_lost(const bullc_job *j) { return j->lock_lost; }

char *bullc_job_to_json(const bullc_job *j) {
    cJSON *o = cJSON_CreateObject();
    cJSON *data = cJSON_Parse(j->data), *opts = cJSON_Duplicate(j->opts, 1), *progress = cJSON_Parse(j->progress);
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "name", j->name);
    cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateString(j->data));
    cJSON_AddItemToObject(o, "opts", opts ? opts : cJSON_CreateObject());
    cJSON_AddNumberToObject(o, "attemptsMade", (double)j->attempts_made);
    cJSON_AddNumberToObject(o, "attemptsStarted", (double)j->attempts_started);
    cJSON_AddNumberToObject(o, "timestamp", (double)j->timestamp);
    cJSON_AddNumberToObject(o, "processedOn", (double)j->processed_on);
    cJSON_AddItemToObject(o, "progress", progress ? progress : cJSON_CreateNumber(0));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- job actions ------------------------------------------------------- */

enum { OP_PROGRESS, OP_LOG, OP_DATA, OP_EXTEND };

/* An action with everything it needs copied: a blocking processor's call
 * may run after the job is gone. */
struct bullc__jobop {
    int kind;
    bullc_worker *w;
    bullc_job *job; /* only dereferenced for loop-thread calls (cb) */
    sds id, key, token, arg, keep_logs;
    int64_t duration;
    bullc_job_cb cb;
    void *data;
    bullc__jobop *next;
};

static void op_free(bullc__jobop *op) {
    sdsfree(op->id), sdsfree(op->key), sdsfree(op->token), sdsfree(op->arg), sdsfree(op->keep_logs);
    free(op);
}

static void op_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc__jobop *op = data;
    bullc_job *job = op->job;
    (void)c;
    int code = 0;
    const char *msg = NULL;
    char buf[256];
    if (!r || r->type == REDIS_REPLY_ERROR) {
        code = err->code ? err->code : BULLC_EREDIS;
        msg = err->message;
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        bullc_error e;
        code = bullc__script_code_err(r->integer, "job action", op->id, &e);
        snprintf(buf, sizeof buf, "%s", e.message);
        msg = buf;
    } else if (op->kind == OP_EXTEND && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        code = BULLC_ELOCK;
        msg = "the job's lock is not held by this worker any more";
    }
    if (code && !op->cb) bullc__worker_error(op->w, code, "job %s: %s", op->id, msg);
    if (op->cb) op->cb(op->job, code, msg, op->data);
    op_free(op);
    bullc__process_op_done(job); /* may send the job's finish, or free it */
}

static void op_send(bullc__jobop *op) {
    bullc_worker *w = op->w;
    int rc;
    if (op->kind == OP_PROGRESS) {
        const char *argv[] = {op->key, w->k_events, w->k_meta, op->id, op->arg};
        rc = bullc__aconn_eval(&w->cmd, bullc__script_get("updateProgress"), 0, op_reply, op, 5, argv, NULL);
    } else if (op->kind == OP_LOG) {
        sds logs = sdscat(sdsdup(op->key), ":logs");
        const char *argv[] = {op->key, logs, op->id, op->arg, op->keep_logs ? op->keep_logs : ""};
        size_t lens[] = {sdslen(op->key), sdslen(logs), sdslen(op->id), sdslen(op->arg),
                         op->keep_logs ? sdslen(op->keep_logs) : 0};
        rc = bullc__aconn_eval(&w->cmd, bullc__script_get("addLog"), 0, op_reply, op, 5, argv, lens);
        sdsfree(logs);
    } else if (op->kind == OP_DATA) {
        const char *argv[] = {op->key, op->arg};
        size_t lens[] = {sdslen(op->key), sdslen(op->arg)};
        rc = bullc__aconn_eval(&w->cmd, bullc__script_get("updateData"), 0, op_reply, op, 2, argv, lens);
    } else {
        sds lock = sdscat(sdsdup(op->key), ":lock");
        char dur[24];
        snprintf(dur, sizeof dur, "%lld", (long long)op->duration);
        const char *argv[] = {lock, w->k_stalled, op->token, dur, op->id};
        rc = bullc__aconn_eval(&w->cmd, bullc__script_get("extendLock"), 0, op_reply, op, 5, argv, NULL);
        sdsfree(lock);
    }
    if (rc == 0) {
        op->job->ops_pending++; /* the job's finish waits for the answer */
        return;
    }
    if (op->cb)
        op->cb(op->job, BULLC_ECONN, "not connected to Redis", op->data);
    else
        bullc__worker_error(w, BULLC_ECONN, "job %s: action lost: not connected to Redis", op->id);
    op_free(op);
}

void bullc__jobops_drain(bullc_worker *w) {
    uv_mutex_lock(&w->ops_mutex);
    bullc__jobop *op = w->ops_head;
    w->ops_head = w->ops_tail = NULL;
    uv_mutex_unlock(&w->ops_mutex);
    while (op) {
        bullc__jobop *next = op->next;
        op->next = NULL;
        op_send(op);
        op = next;
    }
}

void bullc__jobops_async_cb(uv_async_t *h) { bullc__jobops_drain(h->data); }

static int op_submit(bullc_job *job, int kind, const char *arg, int64_t duration, bullc_job_cb cb, void *data) {
    bullc_worker *w = job->w;
    bool on_loop = (unsigned long)pthread_self() == w->loop_thread;
    if (!on_loop && cb) return BULLC_EINVAL; /* callbacks need the loop thread */
    if (job->state == BULLC__JOB_FINISHED && on_loop) return BULLC_ECLOSED;
    bullc__jobop *op = calloc(1, sizeof *op);
    if (!op) return BULLC_ENOMEM;
    op->kind = kind;
    op->w = w;
    op->job = job;
    op->id = sdsdup(job->id);
    op->key = sdsdup(job->key);
    op->token = sdsdup(job->token);
    op->arg = arg ? sdsnew(arg) : sdsempty();
    op->duration = duration;
    op->cb = cb;
    op->data = data;
    const cJSON *kl = cJSON_GetObjectItemCaseSensitive(job->opts, "keepLogs");
    if (cJSON_IsNumber(kl) && kl->valuedouble > 0) op->keep_logs = sdsfromlonglong((long long)kl->valuedouble);
    if (kind == OP_PROGRESS) {
        /* kept for bullc_job_to_json and the local event */
        if (on_loop) {
            sdsfree(job->progress);
            job->progress = sdsnew(arg);
            if (w->ev.progress) w->ev.progress(w, job, arg, w->ev_data);
        }
    }
    if (on_loop) {
        op_send(op);
        return 0;
    }
    uv_mutex_lock(&w->ops_mutex);
    if (w->ops_tail)
        w->ops_tail->next = op;
    else
        w->ops_head = op;
    w->ops_tail = op;
    uv_mutex_unlock(&w->ops_mutex);
    uv_async_send(&w->ops_async);
    return 0;
}

static bool valid_json(const char *s) {
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    cJSON_Delete(j);
    return j != NULL;
}

int bullc_job_update_progress(bullc_job *job, const char *progress_json, bullc_job_cb cb, void *data) {
    if (!valid_json(progress_json)) return BULLC_EINVAL;
    return op_submit(job, OP_PROGRESS, progress_json, 0, cb, data);
}

int bullc_job_log(bullc_job *job, const char *line, bullc_job_cb cb, void *data) {
    if (!line) return BULLC_EINVAL;
    return op_submit(job, OP_LOG, line, 0, cb, data);
}

int bullc_job_update_data(bullc_job *job, const char *data_json, bullc_job_cb cb, void *data) {
    if (!valid_json(data_json)) return BULLC_EINVAL;
    return op_submit(job, OP_DATA, data_json, 0, cb, data);
}

int bullc_job_extend_lock(bullc_job *job, int64_t duration_ms, bullc_job_cb cb, void *data) {
    if (duration_ms <= 0) return BULLC_EINVAL;
    return op_submit(job, OP_EXTEND, NULL, duration_ms, cb, data);
}
