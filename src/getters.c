/* SPDX-License-Identifier: MIT */
/* Queue getters: Node's QueueGetters (jobs, counts, states, logs, workers,
 * metrics...) with the same scripts and the same result shapes, as JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* Node's getJobs default types (QueueGetters.sanitizeJobTypes). */
static const char *const default_states[] = {"active",      "completed", "delayed",         "failed",
                                             "prioritized", "waiting",   "waiting-children"};
#define NDEFAULT (sizeof default_states / sizeof default_states[0])

/* Node 5's defaults, in its order (its getJobCounts() keys): "paused" is a
 * state of its own there */
static const char *const default_states5[] = {"active", "completed",   "delayed", "failed",
                                              "paused", "prioritized", "waiting", "waiting-children"};
#define NDEFAULT5 (sizeof default_states5 / sizeof default_states5[0])

int bullc__states_check(const char *const *states, size_t n, const char ***names, bool *defaults, bullc_error *err) {
    *defaults = !states || !n;
    if (*defaults) {
        states = default_states;
        n = NDEFAULT;
    }
    /* room for 5.x's additions: "paused" after the given ones, or its defaults */
    const char **out = calloc(n + 1 > NDEFAULT5 ? n + 1 : NDEFAULT5, sizeof *out);
    if (!out) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!bullc__state_key(states[i])) {
            free(out);
            return bullc__err(err, BULLC_EINVAL,
                              "unknown job state \"%s\" (waiting, active, delayed, prioritized, completed, failed, "
                              "paused, waiting-children)",
                              states[i] ? states[i] : "(null)");
        }
        int j = 0;
        while (j < k && strcmp(out[j], states[i])) j++;
        if (j == k) out[k++] = states[i];
    }
    *names = out;
    return k;
}

int bullc__states_for(const bullc__protocol *p, const char **names, int k, bool defaults) {
    if (!p->paused_list) return k;
    if (defaults) {
        for (size_t j = 0; j < NDEFAULT5; j++) names[j] = default_states5[j];
        return (int)NDEFAULT5;
    }
    bool waiting = false, paused = false;
    for (int j = 0; j < k; j++) waiting |= !strcmp(names[j], "waiting"), paused |= !strcmp(names[j], "paused");
    if (waiting && !paused) names[k++] = "paused";
    return k;
}

/* Node's sanitizeJobTypes for queue `q`: bullc__states_check, then (once
 * connected: the major decides) bullc__states_for. `names` gets borrowed
 * pointers; returns the count or a negative error. */
static int sanitize_states(bullc_queue *q, const char *const *states, size_t n, const char ***names, bullc_error *err) {
    bool defaults;
    int k = bullc__states_check(states, n, names, &defaults, err);
    if (k < 0) return k;
    bullc__conn *c;
    int rc = bullc__queue_conn(q, &c, err);
    if (rc) {
        free(*names);
        return rc;
    }
    return bullc__states_for(bullc__queue_proto(q), *names, k, defaults);
}

static cJSON *reply_string(const redisReply *r) {
    if (r->type == REDIS_REPLY_INTEGER) {
        char buf[24];
        snprintf(buf, sizeof buf, "%lld", r->integer);
        return cJSON_CreateString(buf);
    }
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) return cJSON_CreateNull();
    sds s = sdsnewlen(r->str, r->len);
    cJSON *j = s ? cJSON_CreateString(s) : NULL;
    sdsfree(s);
    return j;
}

/* Adds `item` to an array or object (key != NULL); false when out of memory. */
static bool put(cJSON *parent, const char *key, cJSON *item) {
    if (!item) return false;
    bool ok = key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item);
    if (!ok) cJSON_Delete(item);
    return ok;
}

/* ---- one job, many jobs ---------------------------------------------------------- */

int bullc_queue_get_job(bullc_queue *q, const char *id, char **out_json, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HGETALL");
    bullc__args_job_key(&a, q, id);
    redisReply *r = NULL;
    rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    rc = bullc__job_reply(id, r, out_json, err);
    freeReplyObject(r);
    return rc;
}

int bullc__job_reply(const char *id, const redisReply *r, char **out_json, bullc_error *err) {
    if (r->type != REDIS_REPLY_ARRAY)
        return bullc__err(err, BULLC_EPROTO, "HGETALL: unexpected reply type %d", r->type);
    if (r->elements == 0) return bullc__err(err, BULLC_ENOTFOUND, "job %s not found", id);
    return bullc__json_out(bullc__job_json(id, strlen(id), r), out_json, err);
}

int bullc_queue_get_jobs(bullc_queue *q, const char *const *states, size_t nstates, int64_t start, int64_t end,
                         bool asc, char **out_json, bullc_error *err) {
    const char **names;
    int n = sanitize_states(q, states, nstates, &names, err);
    if (n < 0) return n;
    /* Node's getJobsArgs: base; start, end, asc, backfill bound 5, then the
     * Redis names of the types, without duplicates ("waiting" = "wait") */
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_GET_JOBS, NULL, 0);
    bullc__args_i64(&a, start);
    bullc__args_i64(&a, end);
    bullc__args_add(&a, asc ? "1" : "0");
    bullc__args_add(&a, "5");
    for (int i = 0; i < n; i++) {
        const char *k = bullc__state_key(names[i]);
        bool dup = false;
        for (int j = 0; j < i; j++) dup = dup || !strcmp(bullc__state_key(names[j]), k);
        if (!dup) bullc__args_add(&a, k);
    }
    free(names);
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_GET_JOBS, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return bullc__err(err, BULLC_EPROTO, "getJobs: unexpected reply type");
    }
    cJSON *jobs = cJSON_CreateArray();
    bool ok = jobs != NULL;
    /* ids already listed (a job can sit in two structures for a moment) */
    sds *seen = calloc(1, sizeof *seen);
    size_t nseen = 0;
    ok = ok && seen;
    for (size_t t = 0; ok && t < r->elements; t++) {
        const redisReply *type = r->element[t];
        if (type->type != REDIS_REPLY_ARRAY) continue;
        for (size_t e = 0; ok && e < type->elements; e++) {
            const redisReply *entry = type->element[e];
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
                entry->element[0]->type != REDIS_REPLY_STRING)
                continue;
            const redisReply *id = entry->element[0];
            bool dup = false;
            for (size_t s = 0; s < nseen && !dup; s++)
                dup = sdslen(seen[s]) == id->len && !memcmp(seen[s], id->str, id->len);
            if (dup) continue;
            sds *more = realloc(seen, sizeof *seen * (nseen + 1));
            if (!more || !(more[nseen] = sdsnewlen(id->str, id->len))) {
                if (more) seen = more;
                ok = false;
                break;
            }
            seen = more;
            nseen++;
            ok = put(jobs, NULL, bullc__job_json(id->str, id->len, entry->element[1]));
        }
    }
    for (size_t s = 0; s < nseen; s++) sdsfree(seen[s]);
    free(seen);
    freeReplyObject(r);
    if (!ok) {
        cJSON_Delete(jobs);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return bullc__json_out(jobs, out_json, err);
}

/* ---- counts and states ---------------------------------------------------------------- */

void bullc__counts_args(bullc__args *a, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++) bullc__args_add(a, bullc__state_key(names[i]));
}

int bullc__counts_read(const redisReply *r, size_t n, int64_t *counts, bullc_error *err) {
    if (r->type != REDIS_REPLY_ARRAY)
        return bullc__err(err, BULLC_EPROTO, "getCounts: unexpected reply type %d", r->type);
    for (size_t i = 0; i < n; i++)
        counts[i] = i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
    return 0;
}

/* getCounts for `names` (checked state names) into counts[i]. */
static int get_counts(bullc_queue *q, const char *const *names, size_t n, int64_t *counts, bullc_error *err) {
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_GET_COUNTS, NULL, 0);
    bullc__counts_args(&a, names, n);
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_GET_COUNTS, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    rc = bullc__counts_read(r, n, counts, err);
    freeReplyObject(r);
    return rc;
}

int bullc_queue_count_jobs(bullc_queue *q, const char *const *states, size_t nstates, int64_t *counts,
                           bullc_error *err) {
    if (!states || !nstates || !counts) return bullc__err(err, BULLC_EINVAL, "states and counts are required");
    for (size_t i = 0; i < nstates; i++)
        if (!bullc__state_key(states[i]))
            return bullc__err(err, BULLC_EINVAL, "unknown job state \"%s\"", states[i] ? states[i] : "(null)");
    bullc__conn *c;
    int rc = bullc__queue_conn(q, &c, err);
    if (rc || !bullc__queue_proto(q)->paused_list) return rc ? rc : get_counts(q, states, nstates, counts, err);
    /* 5.x: a paused queue's waiting jobs are in `paused`; Node 5's waiting
     * count (getJobCountByTypes('waiting')) adds them */
    const char **names = calloc(nstates + 1, sizeof *names);
    int64_t *all = calloc(nstates + 1, sizeof *all);
    if (!names || !all) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < nstates; i++) names[i] = states[i];
    if (!rc) names[nstates] = "paused";
    if (!rc && !(rc = get_counts(q, names, nstates + 1, all, err)))
        for (size_t i = 0; i < nstates; i++) counts[i] = all[i] + (!strcmp(states[i], "waiting") ? all[nstates] : 0);
    free(names);
    free(all);
    return rc;
}

int bullc_queue_get_job_counts(bullc_queue *q, const char *const *states, size_t nstates, char **out_json,
                               bullc_error *err) {
    const char **names;
    int n = sanitize_states(q, states, nstates, &names, err);
    if (n < 0) return n;
    int64_t *counts = calloc((size_t)n + 1, sizeof *counts);
    int rc = counts ? get_counts(q, names, (size_t)n, counts, err) : bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (!rc) rc = bullc__counts_json(names, counts, (size_t)n, out_json, err);
    free(counts);
    free(names);
    return rc;
}

int bullc__counts_json(const char *const *names, const int64_t *counts, size_t n, char **out_json, bullc_error *err) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    for (size_t i = 0; ok && i < n; i++) ok = put(o, names[i], cJSON_CreateNumber((double)counts[i]));
    if (!ok) {
        cJSON_Delete(o);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return bullc__json_out(o, out_json, err);
}

int bullc_queue_get_job_state(bullc_queue *q, const char *id, const char **out_state, bullc_error *err) {
    static const char *const states[] = {"completed", "failed",           "delayed", "prioritized", "active",
                                         "waiting",   "waiting-children", "unknown", NULL};
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    redisReply *r = NULL;
    /* getStateV2 (LPOS) on Redis >= 6.0.6, as Node; getState scans lists on older ones */
    for (int v = 0; v < 2; v++) {
        bullc__call_id call = v == 0 ? BULLC__C_GET_STATE_V2 : BULLC__C_GET_STATE;
        bullc__args a;
        bullc__args_call(&a, q, call, id, 0);
        bullc__args_add(&a, id);
        bullc_error e2 = {0};
        rc = bullc__args_eval(q, call, &a, &r, v == 0 ? &e2 : err);
        bullc__args_free(&a);
        if (!rc) break;
        if (v == 0 && rc != BULLC_EREDIS) return bullc__err(err, rc, "%s", e2.message);
    }
    if (rc) return rc;
    *out_state = NULL;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        for (int i = 0; states[i] && !*out_state; i++)
            if (strlen(states[i]) == r->len && !memcmp(states[i], r->str, r->len)) *out_state = states[i];
    if (!*out_state) rc = bullc__err(err, BULLC_EPROTO, "getState: unexpected reply");
    freeReplyObject(r);
    return rc;
}

/* Sends the commands of `cmds` (each an args vector) in one MULTI/EXEC and
 * returns EXEC's reply. */
static int transaction(bullc_queue *q, bullc__args *cmds, int n, redisReply **out, bullc_error *err) {
    bullc__conn *c;
    int rc = bullc__queue_conn(q, &c, err);
    if (rc) return rc;
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    rc = bullc__conn_append(c, 1, multi, NULL, err);
    for (int i = 0; i < n && !rc; i++)
        rc = cmds[i].oom ? bullc__err(err, BULLC_ENOMEM, "out of memory")
                         : bullc__conn_append(c, cmds[i].argc, cmds[i].argv, cmds[i].lens, err);
    if (!rc) rc = bullc__conn_append(c, 1, exec, NULL, err);
    if (rc) {
        bullc__conn_drop(c); /* nothing half-sent may linger */
        return rc;
    }
    redisReply *r = NULL;
    int qrc = 0;
    for (int i = 0; i < n + 1; i++) { /* +OK, then QUEUED per command */
        if ((rc = bullc__conn_read(c, &r, err))) return rc;
        if (r->type == REDIS_REPLY_ERROR && !qrc) qrc = bullc__reply_err(r, err);
        freeReplyObject(r);
    }
    if ((rc = bullc__conn_read(c, &r, qrc ? NULL : err))) return qrc ? qrc : rc;
    if (qrc || r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n) {
        rc = qrc                            ? qrc
             : r->type == REDIS_REPLY_ERROR ? bullc__reply_err(r, err)
                                            : bullc__err(err, BULLC_EPROTO, "EXEC: unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return 0;
}

int bullc_queue_get_job_logs(bullc_queue *q, const char *id, int64_t start, int64_t end, bool asc, char **out_json,
                             bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    bullc__args cmds[2];
    bullc__args_init(&cmds[0]);
    bullc__args_init(&cmds[1]);
    sds key = bullc__job_key(bullc__queue_keys(q), id, BULLC__K_JOB_LOGS);
    bullc__args_add(&cmds[0], "LRANGE");
    bullc__args_add(&cmds[0], key);
    /* Node: descending reads the mirrored range and reverses it */
    bullc__args_i64(&cmds[0], asc ? start : -(end + 1));
    bullc__args_i64(&cmds[0], asc ? end : -(start + 1));
    bullc__args_add(&cmds[1], "LLEN");
    bullc__args_add(&cmds[1], key);
    redisReply *r = NULL;
    rc = key ? transaction(q, cmds, 2, &r, err) : bullc__err(err, BULLC_ENOMEM, "out of memory");
    bullc__args_free(&cmds[0]);
    bullc__args_free(&cmds[1]);
    sdsfree(key);
    if (rc) return rc;
    const redisReply *lines = r->element[0], *count = r->element[1];
    cJSON *o = cJSON_CreateObject(), *logs = cJSON_CreateArray();
    bool ok = put(o, "logs", logs); /* false (and logs freed) when o is NULL */
    if (ok && lines->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; ok && i < lines->elements; i++)
            ok = put(logs, NULL, reply_string(lines->element[asc ? i : lines->elements - 1 - i]));
    ok = ok && put(o, "count", cJSON_CreateNumber(count->type == REDIS_REPLY_INTEGER ? (double)count->integer : 0));
    freeReplyObject(r);
    if (!ok) {
        cJSON_Delete(o);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return bullc__json_out(o, out_json, err);
}

int bullc_queue_get_counts_per_priority(bullc_queue *q, const int64_t *priorities, size_t count, char **out_json,
                                        bullc_error *err) {
    if (count && !priorities) return bullc__err(err, BULLC_EINVAL, "priorities: NULL");
    for (size_t i = 0; i < count; i++)
        if (priorities[i] < 0 || priorities[i] > BULLC__PRIORITY_LIMIT)
            return bullc__err(err, BULLC_EINVAL, "priority %lld is out of range (0 ... %d)", (long long)priorities[i],
                              BULLC__PRIORITY_LIMIT);
    cJSON *o = cJSON_CreateObject();
    if (!o) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int64_t *uniq = malloc(sizeof *uniq * (count ? count : 1));
    size_t nu = 0;
    for (size_t i = 0; uniq && i < count; i++) {
        size_t j = 0;
        while (j < nu && uniq[j] != priorities[i]) j++;
        if (j == nu) uniq[nu++] = priorities[i];
    }
    int rc = uniq ? 0 : bullc__err(err, BULLC_ENOMEM, "out of memory");
    /* in chunks, to stay within the argument limit of one EVALSHA */
    for (size_t off = 0; !rc && off < nu; off += 50) {
        size_t m = nu - off < 50 ? nu - off : 50;
        bullc__args a;
        bullc__args_call(&a, q, BULLC__C_GET_COUNTS_PER_PRIORITY, NULL, 0);
        for (size_t i = 0; i < m; i++) bullc__args_i64(&a, uniq[off + i]);
        redisReply *r = NULL;
        rc = bullc__args_eval(q, BULLC__C_GET_COUNTS_PER_PRIORITY, &a, &r, err);
        bullc__args_free(&a);
        if (rc) break;
        for (size_t i = 0; !rc && i < m; i++) {
            char key[24];
            snprintf(key, sizeof key, "%lld", (long long)uniq[off + i]);
            long long v = r->type == REDIS_REPLY_ARRAY && i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER
                              ? r->element[i]->integer
                              : 0;
            if (!put(o, key, cJSON_CreateNumber((double)v))) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        }
        freeReplyObject(r);
    }
    free(uniq);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    return bullc__json_out(o, out_json, err);
}

/* ---- meta -------------------------------------------------------------------------- */

int bullc_queue_is_paused(bullc_queue *q, bool *out, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HEXISTS");
    bullc__args_qkey(&a, q, BULLC__K_META);
    bullc__args_add(&a, "paused");
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    *out = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return 0;
}

/* JavaScript's Number(text) for the texts meta fields hold: a number, or NaN
 * (JSON null) when the whole text is not one. */
static cJSON *js_number(const char *s, size_t len) {
    sds t = sdsnewlen(s, len);
    if (!t) return NULL;
    sdstrim(t, " \t\r\n");
    char *end = NULL;
    double v = sdslen(t) ? strtod(t, &end) : 0;
    bool ok = sdslen(t) == 0 || (end && !*end && isfinite(v));
    sdsfree(t);
    return ok ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

int bullc_queue_get_meta(bullc_queue *q, char **out_json, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HGETALL");
    bullc__args_qkey(&a, q, BULLC__K_META);
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    cJSON *o = cJSON_CreateObject();
    bool ok = o && r->type == REDIS_REPLY_ARRAY, paused = false;
    static const struct {
        const char *field, *name;
    } numeric[] = {{"concurrency", "concurrency"},
                   {"opts.maxLenEvents", "maxLenEvents"},
                   {"max", "max"},
                   {"duration", "duration"}};
    /* Node's getMeta: the other fields first, as strings, then the numbers
     * (only when truthy), then `paused` */
    for (size_t i = 0; ok && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        sds name = sdsnewlen(f->str, f->len);
        bool special = !strcmp(name, "paused");
        for (size_t k = 0; k < sizeof numeric / sizeof numeric[0]; k++)
            special = special || !strcmp(name, numeric[k].field);
        if (!strcmp(name, "paused")) paused = v->len == 1 && v->str[0] == '1';
        if (!special) ok = put(o, name, reply_string(v));
        sdsfree(name);
    }
    for (size_t k = 0; ok && k < sizeof numeric / sizeof numeric[0]; k++)
        for (size_t i = 0; ok && i + 1 < r->elements; i += 2) {
            const redisReply *f = r->element[i], *v = r->element[i + 1];
            if (f->len == strlen(numeric[k].field) && !memcmp(f->str, numeric[k].field, f->len) && v->len > 0)
                ok = put(o, numeric[k].name, js_number(v->str, v->len));
        }
    ok = ok && put(o, "paused", cJSON_CreateBool(paused));
    int type = r->type;
    freeReplyObject(r);
    if (!ok) {
        cJSON_Delete(o);
        return type != REDIS_REPLY_ARRAY ? bullc__err(err, BULLC_EPROTO, "HGETALL: unexpected reply")
                                         : bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return bullc__json_out(o, out_json, err);
}

/* HMGET of meta fields as integers (0 when unset or not a number). */
static int meta_ints(bullc_queue *q, const char *f1, const char *f2, int64_t *v1, int64_t *v2, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HMGET");
    bullc__args_qkey(&a, q, BULLC__K_META);
    bullc__args_add(&a, f1);
    if (f2) bullc__args_add(&a, f2);
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    int64_t *outs[2] = {v1, v2};
    for (size_t i = 0; i < 2; i++) {
        if (!outs[i]) continue;
        *outs[i] = 0;
        if (r->type == REDIS_REPLY_ARRAY && i < r->elements && r->element[i]->type == REDIS_REPLY_STRING) {
            double d = strtod(r->element[i]->str, NULL);
            if (isfinite(d)) *outs[i] = (int64_t)d;
        }
    }
    freeReplyObject(r);
    return 0;
}

int bullc_queue_get_global_concurrency(bullc_queue *q, int64_t *out, bullc_error *err) {
    return meta_ints(q, "concurrency", NULL, out, NULL, err);
}

int bullc_queue_get_global_rate_limit(bullc_queue *q, int64_t *out_max, int64_t *out_duration, bullc_error *err) {
    int64_t max = 0, duration = 0;
    int rc = meta_ints(q, "max", "duration", &max, &duration, err);
    if (rc) return rc;
    if (!max || !duration) max = duration = 0; /* Node: null unless both are set */
    if (out_max) *out_max = max;
    if (out_duration) *out_duration = duration;
    return 0;
}

int bullc_queue_get_rate_limit_ttl(bullc_queue *q, int64_t max_jobs, int64_t *out_ttl, bullc_error *err) {
    if (max_jobs < 0) return bullc__err(err, BULLC_EINVAL, "max_jobs must not be negative");
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_GET_RATE_LIMIT_TTL, NULL, 0);
    bullc__args_i64(&a, max_jobs);
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_GET_RATE_LIMIT_TTL, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    if (r->type == REDIS_REPLY_INTEGER)
        *out_ttl = r->integer;
    else
        rc = bullc__err(err, BULLC_EPROTO, "getRateLimitTtl: unexpected reply type %d", r->type);
    freeReplyObject(r);
    return rc;
}

int bullc_queue_is_maxed(bullc_queue *q, bool *out, bullc_error *err) {
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_IS_MAXED, NULL, 0);
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_IS_MAXED, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    if (r->type == REDIS_REPLY_INTEGER || r->type == REDIS_REPLY_NIL) /* the script's Lua false is nil */
        *out = r->type == REDIS_REPLY_INTEGER && r->integer != 0;
    else
        rc = bullc__err(err, BULLC_EPROTO, "isMaxed: unexpected reply type %d", r->type);
    freeReplyObject(r);
    return rc;
}

/* ---- workers, metrics ------------------------------------------------------------------- */

/* Node's parseClientList: every "k=v" of every line whose name matches. */
static bool parse_client_list(cJSON *out, const char *list, size_t len, const char *queue, const char *plain,
                              const char *named_prefix) {
    size_t npre = strlen(named_prefix);
    const char *p = list, *stop = list + len;
    while (p < stop) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        const char *le = eol ? eol : stop;
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r') ll--;
        cJSON *client = cJSON_CreateObject();
        if (!client) return false;
        const char *name = NULL;
        size_t name_len = 0;
        for (const char *f = p; f <= p + ll;) {
            const char *sp = memchr(f, ' ', (size_t)(p + ll - f));
            const char *fe = sp ? sp : p + ll;
            const char *eq = memchr(f, '=', (size_t)(fe - f));
            /* "k=v"; a part without '=' is Node's substring(0, -1): key "" */
            sds k = eq ? sdsnewlen(f, (size_t)(eq - f)) : sdsempty();
            sds v = eq ? sdsnewlen(eq + 1, (size_t)(fe - eq - 1)) : sdsnewlen(f, (size_t)(fe - f));
            bool ok = k && v;
            if (ok) {
                cJSON_DeleteItemFromObjectCaseSensitive(client, k); /* later wins, as in JS */
                ok = put(client, k, cJSON_CreateString(v));
            }
            if (ok && !strcmp(k, "name")) name = eq + 1, name_len = (size_t)(fe - eq - 1);
            sdsfree(k);
            sdsfree(v);
            if (!ok) {
                cJSON_Delete(client);
                return false;
            }
            f = fe + 1;
        }
        bool match = name && name_len > 0 &&
                     ((name_len == strlen(plain) && !memcmp(name, plain, name_len)) ||
                      (name_len >= npre && !memcmp(name, named_prefix, npre)));
        if (match) {
            sds raw = sdsnewlen(name, name_len);
            cJSON_DeleteItemFromObjectCaseSensitive(client, "name");
            bool ok = raw && put(client, "name", cJSON_CreateString(queue)) &&
                      put(client, "rawname", cJSON_CreateString(raw));
            sdsfree(raw);
            if (!ok || !put(out, NULL, client)) {
                if (!ok) cJSON_Delete(client);
                return false;
            }
        } else {
            cJSON_Delete(client);
        }
        p = le + 1;
    }
    return true;
}

/* The queue's clients in one node's CLIENT LIST reply into *best, unless
 * *best has more (Node's baseGetClients: in a cluster, the node with the
 * most). Frees `r`. */
static int keep_workers(bullc_queue *q, redisReply *r, cJSON **best, bullc_error *err) {
    cJSON *out = cJSON_CreateArray();
    sds plain = bullc__client_name(bullc_queue_prefix(q), bullc_queue_name(q), "");
    sds named = bullc__client_name(bullc_queue_prefix(q), bullc_queue_name(q), ":w:");
    bool ok = out && plain && named && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
    if (ok) ok = parse_client_list(out, r->str, r->len, bullc_queue_name(q), plain, named);
    int type = r->type;
    sdsfree(plain);
    sdsfree(named);
    freeReplyObject(r);
    if (!ok) {
        cJSON_Delete(out);
        return type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS
                   ? bullc__err(err, BULLC_ENOMEM, "out of memory")
                   : bullc__err(err, BULLC_EPROTO, "CLIENT LIST: unexpected reply type %d", type);
    }
    if (!*best || cJSON_GetArraySize(out) > cJSON_GetArraySize(*best)) {
        cJSON_Delete(*best);
        *best = out;
    } else {
        cJSON_Delete(out);
    }
    return 0;
}

/* CLIENT LIST on every master of a cluster (a worker's connections are on
 * its queue's master, a Node worker's on any node). */
static int cluster_client_lists(bullc_queue *q, cJSON **best, bullc_error *err) {
    bullc_redis_opts *nodes;
    size_t n;
    int rc = bullc__cluster_masters(bullc__queue_redis_opts(q), &nodes, &n, NULL, err);
    for (size_t i = 0; i < n && !rc; i++) {
        bullc__conn c;
        if ((rc = bullc__conn_init(&c, &nodes[i], err))) break;
        const char *argv[] = {"CLIENT", "LIST"};
        redisReply *r = NULL;
        rc = bullc__conn_command(&c, &r, err, 2, argv, NULL);
        bullc__conn_close(&c);
        if (!rc) rc = keep_workers(q, r, best, err);
    }
    bullc__cluster_masters_free(nodes, n);
    return rc;
}

int bullc_queue_get_workers(bullc_queue *q, char **out_json, bullc_error *err) {
    redisReply *r = NULL;
    bullc_error e2 = {0};
    cJSON *best = NULL;
    const bullc_redis_opts *ro = bullc__queue_redis_opts(q);
    int rc;
    if (ro && ro->ncluster) {
        rc = cluster_client_lists(q, &best, &e2);
    } else {
        bullc__args a;
        bullc__args_init(&a);
        bullc__args_add(&a, "CLIENT");
        bullc__args_add(&a, "LIST");
        rc = bullc__args_cmd(q, &a, &r, &e2);
        bullc__args_free(&a);
        if (!rc) rc = keep_workers(q, r, &best, &e2);
    }
    if (rc) {
        cJSON_Delete(best);
        /* Node's clientCommandMessageReg: managed services without CLIENT */
        if (rc == BULLC_EREDIS && strstr(e2.message, "unknown command") && strstr(e2.message, "lient")) {
            return bullc__json_out(cJSON_Parse("[{\"name\":\"GCP does not support client list\"}]"), out_json, err);
        }
        return bullc__err(err, rc, "%s", e2.message);
    }
    return bullc__json_out(best, out_json, err);
}

/* JavaScript's parseInt(s || '0', 10) for the metrics counters. */
static double js_parse_int_or0(const redisReply *r) {
    if (r->type == REDIS_REPLY_INTEGER) return (double)r->integer;
    if (r->type != REDIS_REPLY_STRING || !r->len) return 0;
    return strtod(r->str, NULL) >= 0 ? floor(strtod(r->str, NULL)) : ceil(strtod(r->str, NULL));
}

int bullc_queue_get_metrics(bullc_queue *q, const char *type, int64_t start, int64_t end, char **out_json,
                            bullc_error *err) {
    if (!type || (strcmp(type, "completed") && strcmp(type, "failed")))
        return bullc__err(err, BULLC_EINVAL, "metrics type must be \"completed\" or \"failed\"");
    bullc__call_id call = !strcmp(type, "completed") ? BULLC__C_GET_METRICS_COMPLETED : BULLC__C_GET_METRICS_FAILED;
    bullc__args a;
    bullc__args_call(&a, q, call, NULL, 0);
    bullc__args_i64(&a, start);
    bullc__args_i64(&a, end);
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, call, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements < 3) {
        freeReplyObject(r);
        return bullc__err(err, BULLC_EPROTO, "getMetrics: unexpected reply");
    }
    const redisReply *meta = r->element[0], *data = r->element[1], *count = r->element[2];
    cJSON *o = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(o, "meta"), *d = cJSON_AddArrayToObject(o, "data");
    bool ok = o && m && d && put(m, "count", cJSON_CreateNumber(js_parse_int_or0(meta->element[0]))) &&
              put(m, "prevTS", cJSON_CreateNumber(js_parse_int_or0(meta->element[1]))) &&
              put(m, "prevCount", cJSON_CreateNumber(js_parse_int_or0(meta->element[2])));
    for (size_t i = 0; ok && data->type == REDIS_REPLY_ARRAY && i < data->elements; i++) {
        /* Node: +point || 0 */
        const redisReply *p = data->element[i];
        double v = 0;
        if (p->type == REDIS_REPLY_STRING) {
            cJSON *n = js_number(p->str, p->len);
            v = cJSON_IsNumber(n) ? n->valuedouble : 0;
            cJSON_Delete(n);
        } else if (p->type == REDIS_REPLY_INTEGER) {
            v = (double)p->integer;
        }
        ok = put(d, NULL, cJSON_CreateNumber(v));
    }
    ok = ok && put(o, "count", cJSON_CreateNumber(count->type == REDIS_REPLY_INTEGER ? (double)count->integer : 0));
    freeReplyObject(r);
    if (!ok) {
        cJSON_Delete(o);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return bullc__json_out(o, out_json, err);
}

/* ---- queues under a prefix ------------------------------------------------------------------ */

sds bullc__glob_escape(const char *s) {
    sds out = sdsempty();
    for (; out && *s; s++) {
        if (strchr("*?[]\\", *s)) out = sdscatlen(out, "\\", 1);
        if (out) out = sdscatlen(out, s, 1);
    }
    return out;
}

static int cmp_sds(const void *a, const void *b) { return strcmp(*(const sds *)a, *(const sds *)b); }

/* Adds the queue names SCAN finds on one node to names[0..*n) (no repeats). */
static int scan_names(bullc__conn *c, const char *prefix, sds **names, size_t *n, bullc_error *err) {
    size_t plen = strlen(prefix);
    static const char *const suffixes[] = {":meta", ":id"};
    int rc = 0;
    for (int s = 0; s < 2 && !rc; s++) {
        sds pattern = bullc__glob_escape(prefix);
        if (pattern) pattern = sdscatprintf(pattern, ":*%s", suffixes[s]);
        if (!pattern) return bullc__err(err, BULLC_ENOMEM, "out of memory");
        sds cursor = sdsnew("0");
        do {
            const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
            redisReply *r = NULL;
            if ((rc = bullc__conn_command(c, &r, err, 6, argv, NULL))) break;
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
                freeReplyObject(r);
                rc = bullc__err(err, BULLC_EPROTO, "SCAN: unexpected reply");
                break;
            }
            sdsfree(cursor);
            cursor = sdsnewlen(r->element[0]->str, r->element[0]->len);
            const redisReply *keys = r->element[1];
            size_t slen = strlen(suffixes[s]);
            for (size_t i = 0; i < keys->elements && !rc; i++) {
                const redisReply *k = keys->element[i];
                if (k->type != REDIS_REPLY_STRING || k->len <= plen + 1 + slen) continue;
                const char *name = k->str + plen + 1;
                size_t nl = k->len - plen - 1 - slen;
                /* a queue name has no ':' (else it is some job's or scheduler's key) */
                if (memchr(name, ':', nl) || !nl) continue;
                bool dup = false;
                for (size_t j = 0; j < *n && !dup; j++)
                    dup = sdslen((*names)[j]) == nl && !memcmp((*names)[j], name, nl);
                if (dup) continue;
                sds *more = realloc(*names, sizeof **names * (*n + 1));
                if (!more || !(more[*n] = sdsnewlen(name, nl))) {
                    if (more) *names = more;
                    rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
                    break;
                }
                *names = more;
                (*n)++;
            }
            freeReplyObject(r);
        } while (!rc && cursor && strcmp(cursor, "0"));
        if (!cursor && !rc) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        sdsfree(cursor);
        sdsfree(pattern);
    }
    return rc;
}

int bullc_queue_list(const bullc_redis_opts *redis, const char *prefix, char **out_json, bullc_error *err) {
    if (!prefix) prefix = BULLC__DEFAULT_PREFIX;
    if (!*prefix) return bullc__err(err, BULLC_EINVAL, "prefix must not be empty");
    bullc_redis_opts *defaults = NULL;
    if (!redis) {
        int rc = bullc__redis_opts_default(&defaults, err);
        if (rc) return rc;
        redis = defaults;
    }
    /* in a cluster each master holds the queues of its slots: SCAN visits one node */
    bullc_redis_opts *nodes;
    size_t nnodes;
    int rc = bullc__cluster_masters(redis, &nodes, &nnodes, NULL, err);
    bullc_redis_opts_free(defaults);
    if (rc) return rc;
    sds *names = NULL;
    size_t n = 0;
    for (size_t i = 0; i < nnodes && !rc; i++) {
        bullc__conn c;
        if ((rc = bullc__conn_init(&c, &nodes[i], err))) break;
        rc = scan_names(&c, prefix, &names, &n, err);
        bullc__conn_close(&c);
    }
    bullc__cluster_masters_free(nodes, nnodes);
    cJSON *arr = NULL;
    if (!rc) {
        if (n) qsort(names, n, sizeof *names, cmp_sds);
        arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < n; i++)
            if (!put(arr, NULL, cJSON_CreateString(names[i]))) {
                cJSON_Delete(arr);
                arr = NULL;
            }
        if (!arr) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) sdsfree(names[i]);
    free(names);
    return rc ? rc : bullc__json_out(arr, out_json, err);
}
