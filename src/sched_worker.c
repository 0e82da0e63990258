/* SPDX-License-Identifier: MIT */
/* What Node's worker does when it takes a job scheduler's job: it upserts
 * the scheduler with override false and the job's id as producer, so the
 * script adds the next iteration only if this job is the current one. Node
 * and bullc workers sharing a scheduler thus never add an iteration twice,
 * and none is skipped. Legacy (v5) repeat keys are refused as Node 6 refuses
 * them; on a 5.x queue they run as a 5.x worker runs them, through Node 5's
 * Repeat class (repeat5.c): the repeat entry moved, then the next job added. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

#define SCHED_ERR "Failed to add repeatable job for next iteration: "
typedef struct bullc__sched_call {
    struct bullc__sched_call *next; /* in w->sched_parked */
    bullc_worker *w;
    sds rjk, job_id, data, name;
    cJSON *opts;         /* the job's stored options (short names) */
    bullc__repeat5 *leg; /* a 5.x legacy repeatable job's next iteration, once planned */
    void (*then)(void *arg);
    void *then_arg;
} sched_call;

/* Ends the call: whoever waits for it (a manual getNextJob, which Node
 * answers only once the next iteration is scheduled) learns it here. */
static void call_free(sched_call *c) {
    if (c->then) c->then(c->then_arg);
    sdsfree(c->rjk);
    sdsfree(c->job_id);
    sdsfree(c->data);
    sdsfree(c->name);
    cJSON_Delete(c->opts);
    if (c->leg) bullc__repeat5_free(c->leg);
    free(c->leg);
    free(c);
}

/* Node 6's hasLegacyRepeatableKeyShape (bullc__sched_legacy_shape); Node 5's
 * worker only counts the segments (five or more). */
static bool legacy_shape(const char *k, int major) {
    if (major != 5) return bullc__sched_legacy_shape(k);
    int n = 0;
    for (const char *c = strchr(k, ':'); c; c = strchr(c + 1, ':')) n++;
    return n >= 4;
}

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* JavaScript truthiness of a JSON value. */
static bool truthy(const cJSON *v) {
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return false;
    if (cJSON_IsNumber(v)) return v->valuedouble != 0 && v->valuedouble == v->valuedouble;
    if (cJSON_IsString(v)) return v->valuestring[0] != 0;
    return true;
}

static double num(const cJSON *v) {
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsString(v)) return strtod(v->valuestring, NULL);
    return 0;
}

/* Keeps a call the connection lost for bullc__sched_resend. */
static void park(sched_call *c) {
    c->next = c->w->sched_parked;
    c->w->sched_parked = c;
}

static void update_reply(bullc__aconn *ac, redisReply *r, const bullc_error *err, void *data) {
    (void)ac, (void)err;
    sched_call *c = data;
    bullc_worker *w = c->w;
    if (!r) {
        /* Node's retryIfFailed: a connection error is retried, and the job
         * waits; the script only adds an iteration still missing, so one
         * that did run before the reply was lost is not added twice */
        if (!w->closing) {
            park(c);
            return;
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        bullc__worker_error(w, BULLC_EREDIS, SCHED_ERR "%s", r->str);
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        bullc_error e = {0};
        bullc__script_code_err(r->integer, c->job_id, "updateJobScheduler", NULL, &e);
        bullc__worker_error(w, e.code, SCHED_ERR "%s", e.message);
    }
    call_free(c);
}

/* JobScheduler.upsertJobScheduler(rjk, opts.repeat, name, data, opts,
 * {override: false, producerId: job id}); takes `c`. */
static void schedule(sched_call *c) {
    bullc_worker *w = c->w;
    const cJSON *repeat = item(c->opts, "repeat");
    const cJSON *every = item(repeat, "every"), *pattern = item(repeat, "pattern");
    const char *problem = NULL;
    if (!cJSON_IsObject(repeat))
        problem = "the job has no repeat options";
    else if (truthy(pattern) && truthy(every))
        problem = "Both .pattern and .every options are defined for this repeatable job";
    else if (!truthy(pattern) && !truthy(every))
        problem = "Either .pattern or .every options must be defined for this repeatable job";
    else if (truthy(item(repeat, "immediately")) && truthy(item(repeat, "startDate")))
        problem = "Both .immediately and .startDate options are defined for this repeatable job";
    else if (w->proto->major != 5 && item(c->opts, "debounce")) /* 5.x takes it as deduplication */
        problem = "Debounce option has been removed. Use deduplication option instead";
    if (problem) {
        bullc__worker_error(w, BULLC_EINVAL, SCHED_ERR "%s", problem);
        call_free(c);
        return;
    }
    const cJSON *count = item(repeat, "count"), *limit = item(repeat, "limit"), *end = item(repeat, "endDate");
    int64_t iteration = truthy(count) ? (int64_t)num(count) + 1 : 1;
    int64_t now = bullc__now_ms();
    /* the last iteration, or past the end: the scheduler just stops */
    if ((limit && (double)iteration > num(limit)) || (truthy(end) && (double)now > num(end))) {
        call_free(c);
        return;
    }
    int64_t prev = (int64_t)num(item(c->opts, "prevMillis"));
    if (prev > now) now = prev;
    int64_t next = 0;
    if (truthy(pattern) && w->o.repeat_strategy) {
        bullc_error e = {0};
        int rc = bullc__sched_strategy_next(w->o.repeat_strategy, w->o.repeat_data, now, repeat, c->name, &next, &e);
        if (rc) {
            /* no time: Node's undefined schedules nothing */
            if (rc < 0) bullc__worker_error(w, rc, SCHED_ERR "%s", e.message);
            call_free(c);
            return;
        }
    } else if (truthy(pattern)) {
        const cJSON *tz = item(repeat, "tz"), *start = item(repeat, "startDate");
        int64_t from = truthy(start) && num(start) > (double)now ? (int64_t)num(start) : now;
        bullc_error e = {0};
        int rc = bullc__sched_cron_next(cJSON_IsString(pattern) ? pattern->valuestring : "",
                                        cJSON_IsString(tz) ? tz->valuestring : NULL, from, &next, &e);
        if (!rc && truthy(item(repeat, "immediately"))) next = bullc__now_ms();
        if (!rc && truthy(end) && (double)next > num(end)) rc = BULLC_ENOTFOUND;
        if (rc) {
            /* cron-parser's throw past the end is swallowed; a bad pattern is not */
            if (rc != BULLC_ENOTFOUND) bullc__worker_error(w, rc, SCHED_ERR "%s", e.message);
            call_free(c);
            return;
        }
        if (next < now) next = now;
    }
    double offset = num(item(repeat, "offset"));
    const double *new_offset = truthy(every) && offset != 0 ? &offset : NULL;
    cJSON *r = cJSON_Duplicate(repeat, 1);
    if (r) cJSON_DeleteItemFromObjectCaseSensitive(r, "immediately");
    bool cron = truthy(pattern);
    /* a copy: a call the connection lost is computed again when resent */
    cJSON *opts = bullc__sched_job_opts(c->opts);
    opts = bullc__sched_iteration_opts(opts, c->rjk, cron ? &next : NULL, r, iteration, new_offset, bullc__now_ms());
    sds packed = opts ? bullc__sched_pack(opts) : NULL;
    cJSON_Delete(opts);
    sds producer = bullc__job_key(&w->keys, c->job_id, BULLC__K_JOB);
    char nbuf[24] = "", tbuf[24];
    if (cron) snprintf(nbuf, sizeof nbuf, "%lld", (long long)next);
    snprintf(tbuf, sizeof tbuf, "%lld", (long long)bullc__now_ms());
    const char *argv[BULLC__CALL_MAX_KEYS + 7];
    size_t lens[BULLC__CALL_MAX_KEYS + 7];
    bullc__call_ctx x = {.job = producer};
    int rc = BULLC_ENOMEM;
    if (packed && producer) {
        int n = bullc__call_keys(w->proto, BULLC__C_UPDATE_JOB_SCHEDULER, &w->keys, &x, argv, lens);
        const char *args[7] = {nbuf, c->rjk, c->data, packed, tbuf, w->keys.k[BULLC__K_BASE], c->job_id};
        size_t alens[7] = {strlen(nbuf),     sdslen(c->rjk), sdslen(c->data),
                           sdslen(packed),   strlen(tbuf),   sdslen(w->keys.k[BULLC__K_BASE]),
                           sdslen(c->job_id)};
        for (int i = 0; i < 7; i++) {
            argv[n + i] = args[i];
            lens[n + i] = alens[i];
        }
        /* the job's processing goes on meanwhile: its finish is sent later on
         * the same connection, so Redis runs this first, as in Node */
        rc = bullc__aconn_eval(w->cmd, bullc__call_script(w->proto, BULLC__C_UPDATE_JOB_SCHEDULER), 0, update_reply, c,
                               n + 7, argv, lens);
    }
    sdsfree(packed);
    sdsfree(producer);
    if (rc && rc != BULLC_ENOMEM && !w->closing) {
        park(c); /* sent again once the connection is back */
    } else if (rc) {
        bullc__worker_error(w, rc, SCHED_ERR "%s",
                            rc == BULLC_ENOMEM ? "out of memory" : "the connection to Redis is down");
        call_free(c);
    }
}

void bullc__sched_resend(bullc_worker *w) {
    sched_call *c = w->sched_parked;
    w->sched_parked = NULL;
    while (c) {
        sched_call *next = c->next;
        schedule(c);
        c = next;
    }
}

void bullc__sched_drop_parked(bullc_worker *w) {
    sched_call *c = w->sched_parked;
    w->sched_parked = NULL;
    while (c) {
        sched_call *next = c->next;
        bullc__worker_error(w, BULLC_ECLOSED, SCHED_ERR "the worker closed before Redis was back");
        call_free(c);
        c = next;
    }
}

/* ---- 5.x legacy repeatable jobs: Node 5's Repeat, override false ---------- */

static void legacy5_added(bullc__aconn *ac, redisReply *r, const bullc_error *err, void *data) {
    (void)ac, (void)err;
    sched_call *c = data;
    if (r && r->type == REDIS_REPLY_ERROR) {
        bullc__worker_error(c->w, BULLC_EREDIS, SCHED_ERR "%s", r->str);
    } else if (r && r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        bullc_error e = {0};
        bullc__script_code_err(r->integer, c->job_id, "addJob", NULL, &e);
        bullc__worker_error(c->w, e.code, SCHED_ERR "%s", e.message);
    } else if (!r && !c->w->closing) {
        bullc__worker_error(c->w, BULLC_EREDIS, SCHED_ERR "the connection to Redis was lost");
    }
    call_free(c);
}

/* updateRepeatableJobMillis answered the key it moved (or ""): the next
 * iteration's job, as createNextJob adds it. */
static void legacy5_moved(bullc__aconn *ac, redisReply *r, const bullc_error *err, void *data) {
    (void)ac, (void)err;
    sched_call *c = data;
    bullc_worker *w = c->w;
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r || !w->closing)
            bullc__worker_error(w, BULLC_EREDIS, SCHED_ERR "%s",
                                r && r->type == REDIS_REPLY_ERROR ? r->str : "the connection to Redis was lost");
        call_free(c);
        return;
    }
    bullc__prepared_job pj = {0};
    int64_t now = 0;
    cJSON *opts = bullc__repeat5_next_opts(c->leg, c->name, c->data, r->str, &pj.job_id, &now, &pj.delay);
    const cJSON *prio = item(opts, "priority"), *de = item(item(opts, "de"), "id");
    pj.timestamp = now;
    pj.priority = cJSON_IsNumber(prio) ? (int64_t)prio->valuedouble : 0;
    pj.data = sdsdup(c->data);
    pj.packed_opts = opts ? bullc__sched_pack(opts) : NULL;
    pj.rjk = sdsnewlen(r->str, r->len);
    if (cJSON_IsString(de)) pj.dedup_id = sdsnew(de->valuestring);
    cJSON_Delete(opts);
    bullc__add_call call = {0};
    int rc = BULLC_ENOMEM;
    if (pj.job_id && pj.data && pj.packed_opts && pj.rjk && (!cJSON_IsString(de) || pj.dedup_id) &&
        !bullc__add_call_build(&call, w->proto, &w->keys, c->name, &pj, 0)) {
        sdsfree(c->job_id);
        c->job_id = sdsdup(pj.job_id); /* the one a refusal names */
        rc = bullc__aconn_eval(w->cmd, call.script, 0, legacy5_added, c, call.argc, call.argv, call.lens);
    }
    bullc__add_call_free(&call);
    bullc__job_prepared_free(&pj);
    if (rc) {
        bullc__worker_error(w, rc, SCHED_ERR "%s", rc == BULLC_ENOMEM ? "out of memory" : "the connection is down");
        call_free(c);
    }
}

static void legacy5(sched_call *c) {
    bullc_worker *w = c->w;
    bullc_error e = {0};
    c->leg = calloc(1, sizeof *c->leg);
    int rc = c->leg ? bullc__repeat5_plan(c->leg, c->name, c->opts, &e) : BULLC_ENOMEM;
    if (rc || !c->leg->next) { /* an error, or the limit or the end reached */
        if (rc) bullc__worker_error(w, rc, SCHED_ERR "%s", rc == BULLC_ENOMEM ? "out of memory" : e.message);
        call_free(c);
        return;
    }
    char next[24];
    snprintf(next, sizeof next, "%lld", (long long)c->leg->next);
    const char *argv[BULLC__CALL_MAX_KEYS + 3];
    size_t lens[BULLC__CALL_MAX_KEYS + 3];
    int n = bullc__call_keys(w->proto, BULLC__C_UPDATE_REPEATABLE_JOB_MILLIS, &w->keys, NULL, argv, lens);
    argv[n] = next, lens[n] = strlen(next);
    argv[n + 1] = c->leg->key, lens[n + 1] = sdslen(c->leg->key);
    argv[n + 2] = c->leg->legacy_key, lens[n + 2] = sdslen(c->leg->legacy_key);
    rc = bullc__aconn_eval(w->cmd, bullc__call_script(w->proto, BULLC__C_UPDATE_REPEATABLE_JOB_MILLIS), 0,
                           legacy5_moved, c, n + 3, argv, lens);
    if (rc) {
        bullc__worker_error(w, rc, SCHED_ERR "%s", rc == BULLC_ENOMEM ? "out of memory" : "the connection is down");
        call_free(c);
    }
}

static void legacy_reply(bullc__aconn *ac, redisReply *r, const bullc_error *err, void *data) {
    (void)ac;
    (void)err;
    sched_call *c = data;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        schedule(c); /* a scheduler whose id only looks like a legacy key */
        return;
    }
    if (r && c->w->proto->major == 5) {
        legacy5(c); /* Node 5's Repeat.updateRepeatableJob */
        return;
    }
    if (r) bullc__worker_error(c->w, BULLC_EINVAL, SCHED_ERR BULLC__SCHED_LEGACY_MSG, c->rjk);
    call_free(c);
}

void bullc__sched_next(bullc_worker *w, const bullc_job *job) { bullc__sched_next_then(w, job, NULL, NULL); }

void bullc__sched_next_then(bullc_worker *w, const bullc_job *job, void (*then)(void *arg), void *arg) {
    sched_call *c = calloc(1, sizeof *c);
    if (c) {
        c->w = w;
        c->then = then;
        c->then_arg = arg;
        c->rjk = sdsdup(job->rjk);
        c->job_id = sdsdup(job->id);
        c->data = sdsdup(job->data);
        c->name = sdsnew(job->name ? job->name : "");
        c->opts = cJSON_Duplicate(job->opts, 1);
    }
    if (!c || !c->rjk || !c->job_id || !c->data || !c->name || !c->opts) {
        bullc__worker_error(w, BULLC_ENOMEM, SCHED_ERR "out of memory");
        if (c)
            call_free(c);
        else if (then)
            then(arg);
        return;
    }
    if (!legacy_shape(job->rjk, w->proto->major)) {
        schedule(c);
        return;
    }
    /* Node's isJobScheduler: only a scheduler's hash has the `ic` field */
    sds key = sdscat(sdscat(sdsdup(w->keys.k[BULLC__K_REPEAT]), ":"), job->rjk);
    const char *argv[3] = {"HEXISTS", key, "ic"};
    size_t lens[3] = {7, key ? sdslen(key) : 0, 2};
    int rc = key ? bullc__aconn_cmd(w->cmd, 0, legacy_reply, c, 3, argv, lens) : BULLC_ENOMEM;
    sdsfree(key);
    if (rc) {
        bullc__worker_error(w, rc, SCHED_ERR "%s", rc == BULLC_ENOMEM ? "out of memory" : "the connection is down");
        call_free(c);
    }
}
