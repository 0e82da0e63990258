/* SPDX-License-Identifier: MIT */
/* Queue administration: Node's Queue and Job actions (pause, drain, clean,
 * obliterate, retries, promotion, removal, limits...), through BullMQ's own
 * scripts with the KEYS/ARGV that Node's RedisQueueBackend builds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

int bullc__json_out(cJSON *json, char **out, bullc_error *err) {
    char *s = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!s) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    /* cJSON allocates with malloc (its default hooks), so bullc_free frees it */
    *out = s;
    return 0;
}

/* ---- shared checks and names ----------------------------------------------- */

int bullc__check_job_id(const char *id, bullc_error *err) {
    if (!id || !*id) return bullc__err(err, BULLC_EINVAL, "job id must not be empty");
    return 0;
}

const char *bullc__state_key(const char *state) { return bullc__keys_suffix(bullc__keys_state(state)); }

sds bullc__client_name(const char *prefix, const char *queue, const char *suffix) {
    sds b64 = bullc__base64(queue, strlen(queue));
    sds s = b64 ? sdscatprintf(sdsempty(), "%s:%s%s", prefix, b64, suffix) : NULL;
    sdsfree(b64);
    return s;
}

/* Runs a command and drops its reply. */
static int cmd_void(bullc_queue *q, bullc__args *a, long long *out_int, bullc_error *err) {
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, a, &r, err);
    bullc__args_free(a);
    if (!rc && out_int) *out_int = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return rc;
}

int bullc__job_exists(bullc_queue *q, const char *id, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "EXISTS");
    bullc__args_job_key(&a, q, id);
    long long n = 0;
    int rc = cmd_void(q, &a, &n, err);
    return rc ? rc : n > 0;
}

int bullc__job_not_found(const char *id, bullc_error *err) {
    return bullc__err(err, BULLC_ENOTFOUND, "job %s not found", id);
}

/* ---- pause / resume --------------------------------------------------------- */

static void pause_args(bullc__args *a, bullc_queue *q, bool pause, bool emit) {
    bullc__call_id c = pause ? BULLC__C_PAUSE : BULLC__C_RESUME;
    bullc__args_call(a, q, c, NULL, 0);
    bullc__args_add(a, pause ? "paused" : "resumed");
    /* 6.x's script also takes whether to write the event (5.x's always does) */
    if (bullc__call_of(bullc__queue_proto(q), c)->nargs > 1) bullc__args_add(a, emit ? "1" : "0");
}

int bullc_queue_pause(bullc_queue *q, bullc_error *err) {
    bullc__args a;
    pause_args(&a, q, true, true);
    long long left;
    return bullc__args_eval_int(q, BULLC__C_PAUSE, &a, &left, err);
}

int bullc_queue_resume(bullc_queue *q, bullc_error *err) {
    /* The script moves a legacy paused list back in batches and returns what
     * is left; only the first call writes the `resumed` event. */
    bool emit = true;
    for (;;) {
        bullc__args a;
        pause_args(&a, q, false, emit);
        long long left = 0;
        int rc = bullc__args_eval_int(q, BULLC__C_PAUSE, &a, &left, err);
        if (rc) return rc;
        if (left <= 0) return 0;
        emit = false;
    }
}

/* ---- drain, clean, obliterate ------------------------------------------------ */

int bullc_queue_drain(bullc_queue *q, bool delayed, bullc_error *err) {
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_DRAIN, NULL, 0);
    bullc__args_add(&a, bullc_queue_key_base(q));
    bullc__args_add(&a, delayed ? "1" : "0");
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_DRAIN, &a, &r, err);
    bullc__args_free(&a);
    freeReplyObject(r);
    return rc;
}

int bullc_queue_clean(bullc_queue *q, int64_t grace_ms, int64_t limit, const char *state, char **out_json,
                      bullc_error *err) {
    if (!state) state = "completed";
    /* the states cleanJobsInSet knows; Node maps "waiting" to "wait" */
    static const char *const ok[] = {"completed", "failed", "wait", "active", "paused", "delayed", "prioritized", NULL};
    const char *type = !strcmp(state, "waiting") ? "wait" : state;
    int i = 0;
    while (ok[i] && strcmp(ok[i], type)) i++;
    if (!ok[i])
        return bullc__err(err, BULLC_EINVAL,
                          "cannot clean jobs in state \"%s\" (completed, failed, waiting, active, paused, delayed, "
                          "prioritized)",
                          state);
    if (grace_ms < 0) return bullc__err(err, BULLC_EINVAL, "grace must not be negative");
    if (limit < 0) return bullc__err(err, BULLC_EINVAL, "limit must not be negative");
    int64_t max_count = limit > 0 ? limit : INT64_MAX;
    int64_t per_call = max_count < 10000 ? max_count : 10000;
    int64_t timestamp = bullc__now_ms() - grace_ms;
    cJSON *ids = cJSON_CreateArray();
    if (!ids) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int64_t deleted = 0;
    int rc = 0;
    while (deleted < max_count) {
        bullc__args a;
        bullc__args_call(&a, q, BULLC__C_CLEAN, NULL, bullc__keys_state(type));
        bullc__args_add(&a, bullc_queue_key_base(q));
        bullc__args_i64(&a, timestamp);
        bullc__args_i64(&a, per_call);
        bullc__args_add(&a, type);
        redisReply *r = NULL;
        rc = bullc__args_eval(q, BULLC__C_CLEAN, &a, &r, err);
        bullc__args_free(&a);
        if (rc) break;
        if (r->type != REDIS_REPLY_ARRAY) {
            rc = bullc__err(err, BULLC_EPROTO, "cleanJobsInSet: unexpected reply type %d", r->type);
            freeReplyObject(r);
            break;
        }
        size_t n = r->elements;
        for (size_t k = 0; k < n; k++) {
            const redisReply *e = r->element[k];
            sds id = e->type == REDIS_REPLY_INTEGER ? sdsfromlonglong(e->integer) : sdsnewlen(e->str, e->len);
            cJSON *s = id ? cJSON_CreateString(id) : NULL;
            sdsfree(id);
            if (!s || !cJSON_AddItemToArray(ids, s)) {
                cJSON_Delete(s);
                rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
            }
        }
        freeReplyObject(r);
        if (rc) break;
        deleted += (int64_t)n;
        if ((int64_t)n < per_call) break;
    }
    if (rc) {
        cJSON_Delete(ids);
        return rc;
    }
    if (!out_json) {
        cJSON_Delete(ids);
        return 0;
    }
    return bullc__json_out(ids, out_json, err);
}

int bullc_queue_obliterate(bullc_queue *q, bool force, int64_t count, bullc_error *err) {
    if (count < 0) return bullc__err(err, BULLC_EINVAL, "count must not be negative");
    int rc = bullc_queue_pause(q, err);
    if (rc) return rc;
    for (;;) {
        bullc__args a;
        bullc__args_call(&a, q, BULLC__C_OBLITERATE, NULL, 0);
        bullc__args_i64(&a, count > 0 ? count : 1000);
        bullc__args_add(&a, force ? "force" : "");
        long long cursor = 0;
        if ((rc = bullc__args_eval_int(q, BULLC__C_OBLITERATE, &a, &cursor, err))) return rc;
        if (cursor == -1) return bullc__err(err, BULLC_ESTATE, "Cannot obliterate non-paused queue");
        if (cursor == -2) return bullc__err(err, BULLC_ESTATE, "Cannot obliterate queue with active jobs");
        if (cursor == 0) return 0;
    }
}

/* ---- retries and promotion ---------------------------------------------------- */

/* Node's moveJobsToWaitArgs. */
static int move_jobs_to_wait(bullc_queue *q, const char *state, int64_t count, const char *timestamp,
                             bullc_error *err) {
    for (;;) {
        bullc__args a;
        bullc__args_call(&a, q, BULLC__C_MOVE_JOBS_TO_WAIT, NULL, bullc__keys_state(state));
        bullc__args_i64(&a, count > 0 ? count : 1000);
        bullc__args_add(&a, timestamp);
        bullc__args_add(&a, state);
        long long cursor = 0;
        int rc = bullc__args_eval_int(q, BULLC__C_MOVE_JOBS_TO_WAIT, &a, &cursor, err);
        if (rc) return rc;
        if (!cursor) return 0;
    }
}

int bullc_queue_retry_jobs(bullc_queue *q, const char *state, int64_t count, int64_t timestamp, bullc_error *err) {
    if (!state) state = "failed";
    if (strcmp(state, "failed") && strcmp(state, "completed"))
        return bullc__err(err, BULLC_EINVAL, "can only retry failed or completed jobs, not \"%s\"", state);
    if (count < 0 || timestamp < 0) return bullc__err(err, BULLC_EINVAL, "count and timestamp must not be negative");
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)(timestamp > 0 ? timestamp : bullc__now_ms()));
    return move_jobs_to_wait(q, state, count, ts, err);
}

int bullc_queue_promote_jobs(bullc_queue *q, int64_t count, bullc_error *err) {
    if (count < 0) return bullc__err(err, BULLC_EINVAL, "count must not be negative");
    /* Node passes Number.MAX_VALUE, which ioredis writes as this text */
    return move_jobs_to_wait(q, "delayed", count, "1.7976931348623157e+308", err);
}

/* ---- events, limits, deduplication ------------------------------------------- */

int bullc_queue_trim_events(bullc_queue *q, int64_t max_len, int64_t *out_trimmed, bullc_error *err) {
    if (max_len < 0) return bullc__err(err, BULLC_EINVAL, "max_len must not be negative");
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "XTRIM");
    bullc__args_qkey(&a, q, BULLC__K_EVENTS);
    bullc__args_add(&a, "MAXLEN");
    bullc__args_add(&a, "~");
    bullc__args_i64(&a, max_len);
    long long n = 0;
    int rc = cmd_void(q, &a, &n, err);
    if (!rc && out_trimmed) *out_trimmed = n;
    return rc;
}

static int meta_set(bullc_queue *q, const char *f1, int64_t v1, const char *f2, int64_t v2, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HSET");
    bullc__args_qkey(&a, q, BULLC__K_META);
    bullc__args_add(&a, f1);
    bullc__args_i64(&a, v1);
    if (f2) {
        bullc__args_add(&a, f2);
        bullc__args_i64(&a, v2);
    }
    return cmd_void(q, &a, NULL, err);
}

static int meta_del(bullc_queue *q, const char *f1, const char *f2, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HDEL");
    bullc__args_qkey(&a, q, BULLC__K_META);
    bullc__args_add(&a, f1);
    if (f2) bullc__args_add(&a, f2);
    return cmd_void(q, &a, NULL, err);
}

int bullc_queue_set_global_concurrency(bullc_queue *q, int64_t concurrency, bullc_error *err) {
    if (concurrency < 1) return bullc__err(err, BULLC_EINVAL, "global concurrency must be at least 1");
    return meta_set(q, "concurrency", concurrency, NULL, 0, err);
}

int bullc_queue_remove_global_concurrency(bullc_queue *q, bullc_error *err) {
    return meta_del(q, "concurrency", NULL, err);
}

int bullc_queue_set_global_rate_limit(bullc_queue *q, int64_t max, int64_t duration_ms, bullc_error *err) {
    if (max < 1 || duration_ms < 1)
        return bullc__err(err, BULLC_EINVAL, "a global rate limit needs max >= 1 and duration >= 1 ms");
    return meta_set(q, "max", max, "duration", duration_ms, err);
}

int bullc_queue_remove_global_rate_limit(bullc_queue *q, bullc_error *err) {
    return meta_del(q, "max", "duration", err);
}

int bullc_queue_rate_limit(bullc_queue *q, int64_t expire_ms, bullc_error *err) {
    if (expire_ms <= 0) return bullc__err(err, BULLC_EINVAL, "the rate limit must last at least 1 ms");
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "SET");
    bullc__args_qkey(&a, q, BULLC__K_LIMITER);
    bullc__args_add(&a, "9007199254740991"); /* Number.MAX_SAFE_INTEGER, as Node */
    bullc__args_add(&a, "PX");
    bullc__args_i64(&a, expire_ms);
    return cmd_void(q, &a, NULL, err);
}

int bullc_queue_remove_rate_limit_key(bullc_queue *q, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "DEL");
    bullc__args_qkey(&a, q, BULLC__K_LIMITER);
    return cmd_void(q, &a, NULL, err);
}

int bullc_queue_remove_deduplication_key(bullc_queue *q, const char *dedup_id, int64_t *out_removed, bullc_error *err) {
    if (!dedup_id || !*dedup_id) return bullc__err(err, BULLC_EINVAL, "deduplication id must not be empty");
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "DEL");
    /* Node: `${keys.de}:${id}` where keys.de is "<base>de" */
    bullc__args_own(&a, bullc__dedup_key(bullc__queue_keys(q), dedup_id));
    long long n = 0;
    int rc = cmd_void(q, &a, &n, err);
    if (!rc && out_removed) *out_removed = n;
    return rc;
}

int bullc_queue_get_deduplication_job_id(bullc_queue *q, const char *dedup_id, char **out_id, bullc_error *err) {
    if (!out_id) return bullc__err(err, BULLC_EINVAL, "out_id must not be NULL");
    *out_id = NULL;
    if (!dedup_id || !*dedup_id) return bullc__err(err, BULLC_EINVAL, "deduplication id must not be empty");
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "GET");
    bullc__args_own(&a, bullc__dedup_key(bullc__queue_keys(q), dedup_id));
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    if (r->type == REDIS_REPLY_STRING && !(*out_id = strdup(r->str)))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    freeReplyObject(r);
    return rc;
}

int bullc_queue_remove_deduplication_key_of_job(bullc_queue *q, const char *dedup_id, const char *job_id,
                                                int64_t *out_removed, bullc_error *err) {
    if (!dedup_id || !*dedup_id) return bullc__err(err, BULLC_EINVAL, "deduplication id must not be empty");
    int rc = bullc__check_job_id(job_id, err);
    if (rc) return rc;
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_REMOVE_DEDUP_KEY_OF_JOB, dedup_id, 0);
    bullc__args_add(&a, job_id);
    long long n = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_REMOVE_DEDUP_KEY_OF_JOB, &a, &n, err))) return rc;
    if (out_removed) *out_removed = n;
    return 0;
}

int bullc_queue_remove_deprecated_priority_key(bullc_queue *q, int64_t *out_removed, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "DEL");
    /* Node's toKey('priority'): BullMQ 2's priority set, in no key set since */
    bullc__args_own(&a, sdscat(sdsdup(bullc__queue_keys(q)->k[BULLC__K_BASE]), "priority"));
    long long n = 0;
    int rc = cmd_void(q, &a, &n, err);
    if (!rc && out_removed) *out_removed = n;
    return rc;
}

/* ---- job actions ----------------------------------------------------------------- */

int bullc_queue_remove_job(bullc_queue *q, const char *id, bool remove_children, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    int existed = bullc__job_exists(q, id, err);
    if (existed < 0) return existed;
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_REMOVE_JOB, id, 0);
    bullc__args_add(&a, id);
    bullc__args_add(&a, remove_children ? "1" : "0");
    bullc__args_add(&a, bullc_queue_key_base(q));
    long long code = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_REMOVE_JOB, &a, &code, err))) return rc;
    if (code < 0) return bullc__script_code_err(code, id, "removeJob", NULL, err);
    if (code == 0)
        return bullc__err(err, BULLC_ELOCK, "Job %s could not be removed because it is locked by another worker", id);
    /* the script ran anyway, as Node's does: it also drops an orphan id
     * (one without a hash) from the state it sits in */
    return existed ? 0 : bullc__job_not_found(id, err);
}

/* The job's stored `lifo` option (its opts JSON), for re-queueing like Node. */
static int job_lifo(bullc_queue *q, const char *id, bool *lifo, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HGET");
    bullc__args_job_key(&a, q, id);
    bullc__args_add(&a, "opts");
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    *lifo = false;
    if (r->type == REDIS_REPLY_STRING) {
        cJSON *o = bullc__parse_stored(r->str, r->len);
        *lifo = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "lifo"));
        cJSON_Delete(o);
    }
    freeReplyObject(r);
    return 0;
}

int bullc_queue_retry_job(bullc_queue *q, const char *id, const char *state, int flags, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (!state) state = "failed";
    if (strcmp(state, "failed") && strcmp(state, "completed"))
        return bullc__err(err, BULLC_EINVAL, "can only retry failed or completed jobs, not \"%s\"", state);
    bool lifo = false;
    if ((rc = job_lifo(q, id, &lifo, err))) return rc;
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_REPROCESS_JOB, id, bullc__keys_state(state));
    bullc__args_add(&a, id);
    bullc__args_add(&a, lifo ? "RPUSH" : "LPUSH");
    bullc__args_add(&a, !strcmp(state, "failed") ? "failedReason" : "returnvalue");
    bullc__args_add(&a, state);
    bullc__args_add(&a, flags & BULLC_RETRY_RESET_ATTEMPTS_MADE ? "1" : "0");
    bullc__args_add(&a, flags & BULLC_RETRY_RESET_ATTEMPTS_STARTED ? "1" : "0");
    long long code = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_REPROCESS_JOB, &a, &code, err))) return rc;
    return code == 1 ? 0 : bullc__script_code_err(code, id, "reprocessJob", state, err);
}

int bullc_queue_promote_job(bullc_queue *q, const char *id, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_PROMOTE, id, 0);
    bullc__args_add(&a, bullc_queue_key_base(q));
    bullc__args_add(&a, id);
    long long code = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_PROMOTE, &a, &code, err))) return rc;
    if (code >= 0) return 0;
    /* the script answers -3 for a missing job too: tell them apart */
    if (code == -3 && (rc = bullc__job_exists(q, id, err)) <= 0) return rc < 0 ? rc : bullc__job_not_found(id, err);
    return bullc__script_code_err(code, id, "promote", "delayed", err);
}

int bullc_queue_change_job_delay(bullc_queue *q, const char *id, int64_t delay_ms, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (delay_ms < 0) return bullc__err(err, BULLC_EINVAL, "delay must not be negative");
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_CHANGE_DELAY, id, 0);
    bullc__args_i64(&a, delay_ms);
    bullc__args_i64(&a, bullc__now_ms());
    bullc__args_add(&a, id);
    bullc__args_job_key(&a, q, id);
    long long code = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_CHANGE_DELAY, &a, &code, err))) return rc;
    return code < 0 ? bullc__script_code_err(code, id, "changeDelay", "delayed", err) : 0;
}

int bullc_queue_change_job_priority(bullc_queue *q, const char *id, int64_t priority, bool lifo, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (priority < 0 || priority > BULLC__PRIORITY_LIMIT)
        return bullc__err(err, BULLC_EINVAL, "Priority should be between 0 and %d", BULLC__PRIORITY_LIMIT);
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_CHANGE_PRIORITY, id, 0);
    bullc__args_i64(&a, priority);
    bullc__args_add(&a, bullc_queue_key_base(q));
    bullc__args_add(&a, id);
    bullc__args_add(&a, lifo ? "1" : "0");
    long long code = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_CHANGE_PRIORITY, &a, &code, err))) return rc;
    return code < 0 ? bullc__script_code_err(code, id, "changePriority", NULL, err) : 0;
}

/* Checks JSON text and returns it minified as JSON.stringify writes it:
 * whitespace dropped, every other byte kept (numbers are not re-printed). */
static int minify(const char *json, sds *out, bullc_error *err, const char *what) {
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(json, &end, 1);
    if (!v) return bullc__err(err, BULLC_EINVAL, "%s is not valid JSON", what);
    cJSON_Delete(v);
    if (!(*out = sdsnew(json))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    cJSON_Minify(*out);
    sdsupdatelen(*out);
    return 0;
}

int bullc_queue_update_job_data(bullc_queue *q, const char *id, const char *data_json, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    sds data = NULL;
    if ((rc = minify(data_json ? data_json : "{}", &data, err, "data"))) return rc;
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_UPDATE_DATA, id, 0);
    bullc__args_own(&a, data);
    long long code = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_UPDATE_DATA, &a, &code, err))) return rc;
    return code < 0 ? bullc__script_code_err(code, id, "updateData", NULL, err) : 0;
}

int bullc_queue_update_job_progress(bullc_queue *q, const char *id, const char *progress_json, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (!progress_json) return bullc__err(err, BULLC_EINVAL, "progress must not be NULL");
    sds progress = NULL;
    if ((rc = minify(progress_json, &progress, err, "progress"))) return rc;
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_UPDATE_PROGRESS, id, 0);
    bullc__args_add(&a, id);
    bullc__args_own(&a, progress);
    long long code = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_UPDATE_PROGRESS, &a, &code, err))) return rc;
    return code < 0 ? bullc__script_code_err(code, id, "updateProgress", NULL, err) : 0;
}

int bullc_queue_add_job_log(bullc_queue *q, const char *id, const char *line, int64_t keep_logs, int64_t *out_count,
                            bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (!line) return bullc__err(err, BULLC_EINVAL, "log line must not be NULL");
    if (keep_logs < 0) return bullc__err(err, BULLC_EINVAL, "keep_logs must not be negative");
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_ADD_LOG, id, 0);
    bullc__args_add(&a, id);
    bullc__args_add(&a, line);
    if (keep_logs > 0)
        bullc__args_i64(&a, keep_logs);
    else
        bullc__args_add(&a, "");
    long long code = 0;
    if ((rc = bullc__args_eval_int(q, BULLC__C_ADD_LOG, &a, &code, err))) return rc;
    if (code < 0) return bullc__script_code_err(code, id, "addLog", NULL, err);
    if (out_count) *out_count = code;
    return 0;
}

int bullc_queue_clear_job_logs(bullc_queue *q, const char *id, int64_t keep_logs, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (keep_logs < 0) return bullc__err(err, BULLC_EINVAL, "keep_logs must not be negative");
    bullc__args a;
    bullc__args_init(&a);
    /* Node's clearLogs: LTRIM to the last keepLogs lines, DEL without it; no
     * script, so a missing job is no error there either */
    bullc__args_add(&a, keep_logs ? "LTRIM" : "DEL");
    bullc__args_own(&a, bullc__job_key(bullc__queue_keys(q), id, BULLC__K_JOB_LOGS));
    if (keep_logs) {
        bullc__args_i64(&a, -keep_logs);
        bullc__args_add(&a, "-1");
    }
    return cmd_void(q, &a, NULL, err);
}
