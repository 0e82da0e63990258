/* SPDX-License-Identifier: MIT */
/* Job schedulers on a queue handle: Node's JobScheduler.upsertJobScheduler
 * with override (the queue's upsert), getScheduler, getJobSchedulers, the
 * count and removal; and the option packing the worker shares
 * (sched_worker.c) to schedule the next iteration as Node's worker does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

struct bullc_scheduler_opts {
    char *pattern, *tz;
    int64_t every, limit, start_date, end_date, offset;
    bool has_limit, has_start, has_end, has_offset, immediately;
};

int bullc_scheduler_opts_new(bullc_scheduler_opts **out) {
    if (!out) return BULLC_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? 0 : BULLC_ENOMEM;
}

void bullc_scheduler_opts_free(bullc_scheduler_opts *o) {
    if (!o) return;
    free(o->pattern);
    free(o->tz);
    free(o);
}

int bullc_scheduler_opts_set_every(bullc_scheduler_opts *o, int64_t ms) {
    if (!o || ms < 1) return BULLC_EINVAL;
    o->every = ms;
    return 0;
}

int bullc_scheduler_opts_set_pattern(bullc_scheduler_opts *o, const char *pattern, const char *tz) {
    if (!o || !pattern || !*pattern || (tz && !*tz)) return BULLC_EINVAL;
    return bullc__str_set2(&o->pattern, pattern, &o->tz, tz, false);
}

#define SETTER(fn, field, flag)                                              \
    int fn(bullc_scheduler_opts *o, int64_t v) {                             \
        if (!o || v < 0 || v > BULLC__MAX_SAFE_INTEGER) return BULLC_EINVAL; \
        o->field = v;                                                        \
        o->flag = true;                                                      \
        return 0;                                                            \
    }
SETTER(bullc_scheduler_opts_set_limit, limit, has_limit)
SETTER(bullc_scheduler_opts_set_start_date, start_date, has_start)
SETTER(bullc_scheduler_opts_set_end_date, end_date, has_end)
SETTER(bullc_scheduler_opts_set_offset, offset, has_offset)
#undef SETTER

int bullc_scheduler_opts_set_immediately(bullc_scheduler_opts *o, bool immediately) {
    if (!o) return BULLC_EINVAL;
    o->immediately = immediately;
    return 0;
}

/* ---- shared with the worker ----------------------------------------------- */

int bullc__sched_cron_next(const char *pattern, const char *tz, int64_t from, int64_t *next, bullc_error *err) {
    return bullc_cron_next(pattern, tz, from, next, err);
}

static bool put(cJSON *o, const char *k, cJSON *v) {
    if (!v) return false;
    if (cJSON_GetObjectItemCaseSensitive(o, k)) return cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
    if (cJSON_AddItemToObject(o, k, v)) return true;
    cJSON_Delete(v);
    return false;
}

cJSON *bullc__sched_iteration_opts(cJSON *opts, const char *id, const int64_t *next, cJSON *repeat, int64_t count,
                                   const double *offset, int64_t now) {
    /* Node's getNextJobOpts: {...opts, jobId, delay, timestamp, prevMillis,
     * repeatJobKey, repeat: {...repeat, offset, count, startDate, endDate}};
     * with `every` there is no next time yet (the script computes it), so
     * Node writes "undefined" and NaN where the script then puts its own. */
    bool ok = opts && repeat;
    char tail[BULLC__JS_NUMBER_MAX];
    if (next)
        bullc__js_number(tail, (double)*next);
    else
        strcpy(tail, "undefined");
    sds job_id = sdscatprintf(sdsempty(), "repeat:%s:%s", id, tail);
    double delay = next ? (double)*next + (offset ? *offset : 0) - (double)now : NAN;
    ok = ok && job_id && put(opts, "jobId", cJSON_CreateString(job_id));
    sdsfree(job_id);
    ok = ok && put(opts, "delay", cJSON_CreateNumber(delay < 0 ? 0 : delay));
    ok = ok && put(opts, "timestamp", cJSON_CreateNumber((double)now));
    if (next)
        ok = ok && put(opts, "prevMillis", cJSON_CreateNumber((double)*next));
    else if (ok)
        cJSON_DeleteItemFromObjectCaseSensitive(opts, "prevMillis");
    ok = ok && put(opts, "repeatJobKey", cJSON_CreateString(id));
    ok = ok && put(repeat, "offset", offset ? cJSON_CreateNumber(*offset) : cJSON_CreateNull());
    ok = ok && put(repeat, "count", cJSON_CreateNumber((double)count));
    for (int i = 0; ok && i < 2; i++) {
        const char *k = i ? "endDate" : "startDate";
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(repeat, k);
        if (cJSON_IsNumber(d) && d->valuedouble != 0) continue; /* already epoch ms */
        int64_t ms;
        if (cJSON_IsString(d) && bullc__parse_i64(d->valuestring, strlen(d->valuestring), &ms) && ms)
            ok = put(repeat, k, cJSON_CreateNumber((double)ms));
        else /* falsy: undefined, packed as nil, whose slot in the script's Lua
                table decides the order the options are stored in */
            ok = put(repeat, k, cJSON_CreateNull());
    }
    if (ok && cJSON_GetObjectItemCaseSensitive(opts, "repeat"))
        ok = cJSON_ReplaceItemInObjectCaseSensitive(opts, "repeat", repeat);
    else if (ok)
        ok = cJSON_AddItemToObject(opts, "repeat", repeat);
    else
        cJSON_Delete(repeat);
    if (!ok) {
        cJSON_Delete(opts);
        return NULL;
    }
    return opts;
}

sds bullc__sched_pack(const cJSON *v) {
    bullc__packbuf b;
    bullc__packbuf_init(&b);
    bullc__pack_json(&b.pk, v);
    sds s = sdsnewlen(b.sbuf.data, b.sbuf.size);
    bullc__packbuf_destroy(&b);
    return s;
}

/* ---- upsert ------------------------------------------------------------------ */

/* Node's optsAsJSON: long option names to the stored short ones. */
static cJSON *short_names(const cJSON *opts) {
    cJSON *out = cJSON_CreateObject();
    for (const cJSON *c = opts ? opts->child : NULL; out && c; c = c->next) {
        const char *s = bullc__opt_short(c->string);
        cJSON *v = cJSON_Duplicate(c, 1);
        if (!v || !put(out, s ? s : c->string, v)) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

/* The template's options: the queue's defaults, then the caller's. */
static cJSON *merged_opts(bullc_queue *q, const bullc_job_opts *opts) {
    const bullc_job_opts *d = bullc__queue_default_opts(q);
    cJSON *m = d ? cJSON_Duplicate(d->obj, 1) : cJSON_CreateObject();
    for (const cJSON *c = opts ? opts->obj->child : NULL; m && c; c = c->next)
        if (!put(m, c->string, cJSON_Duplicate(c, 1))) {
            cJSON_Delete(m);
            return NULL;
        }
    return m;
}

/* The scheduler's options (ARGV[2]) as Node packs them: every key, nil when
 * unset (msgpackr's encodeUndefinedAsNil). */
static sds pack_scheduler(const bullc_scheduler_opts *r, const char *name, const double *offset) {
    bullc__packbuf b;
    bullc__packbuf_init(&b);
    msgpack_packer *pk = &b.pk;
    msgpack_pack_map(pk, 8);
    bullc__pack_str(pk, "name");
    bullc__pack_str(pk, name);
#define OPT_INT(key, has, v)       \
    bullc__pack_str(pk, key);      \
    if (has)                       \
        msgpack_pack_int64(pk, v); \
    else                           \
        msgpack_pack_nil(pk);
#define OPT_STR(key, s)         \
    bullc__pack_str(pk, key);   \
    if (s)                      \
        bullc__pack_str(pk, s); \
    else                        \
        msgpack_pack_nil(pk);
    /* Node: `startDate ? getTime() : undefined`, so 0 is unset */
    OPT_INT("startDate", r->has_start && r->start_date, r->start_date)
    OPT_INT("endDate", r->has_end && r->end_date, r->end_date)
    OPT_STR("tz", r->tz)
    OPT_STR("pattern", r->pattern)
    OPT_INT("every", r->every > 0, r->every)
    OPT_INT("limit", r->has_limit, r->limit)
    bullc__pack_str(pk, "offset");
    if (offset)
        bullc__pack_number(pk, *offset);
    else
        msgpack_pack_nil(pk);
#undef OPT_INT
#undef OPT_STR
    sds s = sdsnewlen(b.sbuf.data, b.sbuf.size);
    bullc__packbuf_destroy(&b);
    return s;
}

/* The repeat options as the caller gave them (Node keeps the object, less
 * `immediately`, in every iteration's opts.repeat). */
static cJSON *repeat_json(const bullc_scheduler_opts *r) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (ok && r->pattern) ok = put(o, "pattern", cJSON_CreateString(r->pattern));
    if (ok && r->tz) ok = put(o, "tz", cJSON_CreateString(r->tz));
    if (ok && r->every) ok = put(o, "every", cJSON_CreateNumber((double)r->every));
    if (ok && r->has_limit) ok = put(o, "limit", cJSON_CreateNumber((double)r->limit));
    if (ok && r->has_start) ok = put(o, "startDate", cJSON_CreateNumber((double)r->start_date));
    if (ok && r->has_end) ok = put(o, "endDate", cJSON_CreateNumber((double)r->end_date));
    if (ok && r->has_offset) ok = put(o, "offset", cJSON_CreateNumber((double)r->offset));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int bullc__sched_strategy_next(bullc_repeat_strategy_fn fn, void *data, int64_t millis, const cJSON *repeat,
                               const char *name, int64_t *next, bullc_error *err) {
    char *json = cJSON_PrintUnformatted(repeat);
    if (!json) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int64_t t = 0;
    int rc = fn(millis, json, name, &t, data);
    cJSON_free(json);
    if (rc < 0) return bullc__err(err, rc, "the repeat strategy failed: %s", bullc_strerror(rc));
    if (rc > 0) return 1;
    *next = t < millis ? millis : t;
    return 0;
}

static int check_repeat(const bullc_scheduler_opts *r, int64_t now, bullc_error *err) {
    if (r->has_end && r->end_date && r->end_date < now)
        return bullc__err(err, BULLC_EINVAL, "End date must be greater than current timestamp");
    if (r->pattern && r->every)
        return bullc__err(err, BULLC_EINVAL, "Both .pattern and .every options are defined for this repeatable job");
    if (!r->pattern && !r->every)
        return bullc__err(err, BULLC_EINVAL,
                          "Either .pattern or .every options must be defined for this repeatable job");
    if (r->immediately && r->has_start && r->start_date)
        return bullc__err(err, BULLC_EINVAL,
                          "Both .immediately and .startDate options are defined for this repeatable job");
    return 0;
}

/* A pattern's first time: cron-parser from max(startDate, now), none past
 * endDate (cron-parser throws there and Node schedules nothing): 1. */
static int first_time(const bullc_scheduler_opts *r, int64_t now, int64_t *next, bullc_error *err) {
    int64_t from = r->has_start && r->start_date > now ? r->start_date : now;
    int64_t t = 0;
    bullc_error e = {0};
    int rc = bullc__sched_cron_next(r->pattern, r->tz, from, &t, &e);
    if (rc == BULLC_ENOTFOUND) return 1;
    if (rc) return bullc__err(err, rc, "%s", e.message);
    if (r->immediately) t = bullc__now_ms();
    if (r->has_end && r->end_date && t > r->end_date) return 1;
    *next = t < now ? now : t;
    return 0;
}

int bullc_queue_upsert_job_scheduler(bullc_queue *q, const char *id, const bullc_scheduler_opts *r, const char *name,
                                     const char *data_json, const bullc_job_opts *opts, char **out_job_id,
                                     bullc_error *err) {
    if (out_job_id) *out_job_id = NULL;
    if (!q || !r) return bullc__err(err, BULLC_EINVAL, "a queue and repeat options are required");
    if (!id || !*id) return bullc__err(err, BULLC_EINVAL, "job scheduler id must not be empty");
    int64_t now = bullc__now_ms();
    int rc = check_repeat(r, now, err);
    if (rc) return rc;
    if (!name) name = id;
    /* A template may carry prevMillis, as Node's does (a peer's last next
     * time): the pattern's next time is computed from no earlier than it.
     * A 6.x add refuses the option (repeatable jobs are gone), so the job is
     * checked without it; the stored template keeps it, as Node's. */
    const cJSON *prev = opts ? cJSON_GetObjectItemCaseSensitive(opts->obj, "prevMillis") : NULL;
    bullc_job_opts checked = {.obj = NULL};
    if (cJSON_IsNumber(prev)) {
        if (!(checked.obj = cJSON_Duplicate(opts->obj, 1))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
        cJSON_DeleteItemFromObjectCaseSensitive(checked.obj, "prevMillis");
    }
    int64_t from = cJSON_IsNumber(prev) && prev->valuedouble > (double)now ? (int64_t)prev->valuedouble : now;
    bullc__prepared_job pj;
    rc = bullc__job_prepare_named(&pj, name, data_json ? data_json : "{}", bullc__queue_default_opts(q),
                                  checked.obj ? &checked : opts, err);
    cJSON_Delete(checked.obj);
    if (rc) return rc;
    int64_t next = 0;
    /* Node: no iteration is left (limit 0), nothing is written */
    if (r->has_limit && r->limit < 1) rc = 1;
    void *sdata = NULL;
    bullc_repeat_strategy_fn strategy = bullc__queue_repeat_strategy(q, &sdata);
    if (!rc && r->pattern && strategy) {
        /* Node hands the strategy the options as given, immediately too */
        cJSON *given = repeat_json(r);
        if (given && r->immediately) cJSON_AddTrueToObject(given, "immediately");
        rc = given ? bullc__sched_strategy_next(strategy, sdata, from, given, name, &next, err)
                   : bullc__err(err, BULLC_ENOMEM, "out of memory");
        cJSON_Delete(given);
    } else if (!rc && r->pattern) {
        rc = first_time(r, from, &next, err);
    }
    if (rc) {
        bullc__job_prepared_free(&pj);
        return rc;
    }
    /* Node stamps the job and the script's now after computing the first
     * time: an immediate pattern's job is then due (delay 0), not 1 ms late */
    int64_t stamp = bullc__now_ms();
    if (stamp < now) stamp = now;
    double offset = (double)r->offset;
    const double *new_offset = r->every && r->has_offset && r->offset ? &offset : NULL;
    cJSON *tmpl = merged_opts(q, opts);
    cJSON *tmpl_short = short_names(tmpl);
    cJSON *iter = bullc__sched_iteration_opts(short_names(tmpl), id, r->pattern ? &next : NULL, repeat_json(r), 1,
                                              new_offset, stamp);
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_ADD_JOB_SCHEDULER, NULL, 0);
    if (r->pattern)
        bullc__args_i64(&a, next);
    else
        bullc__args_add(&a, ""); /* Node's undefined: the script computes it */
    bullc__args_own(&a, pack_scheduler(r, name, new_offset));
    bullc__args_add(&a, id);
    bullc__args_addn(&a, pj.data, sdslen(pj.data));
    bullc__args_own(&a, tmpl_short ? bullc__sched_pack(tmpl_short) : NULL);
    bullc__args_own(&a, iter ? bullc__sched_pack(iter) : NULL);
    bullc__args_i64(&a, stamp);
    bullc__args_qkey(&a, q, BULLC__K_BASE);
    bullc__args_add(&a, "");
    cJSON_Delete(tmpl);
    cJSON_Delete(tmpl_short);
    cJSON_Delete(iter);
    redisReply *reply = NULL;
    rc = (!tmpl_short || !iter) ? bullc__err(err, BULLC_ENOMEM, "out of memory")
                                : bullc__args_eval(q, BULLC__C_ADD_JOB_SCHEDULER, &a, &reply, err);
    bullc__args_free(&a);
    bullc__job_prepared_free(&pj);
    if (rc) return rc;
    if (reply->type == REDIS_REPLY_INTEGER)
        rc = bullc__script_code_err(reply->integer, NULL, "addJobScheduler", NULL, err);
    else if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 || reply->element[0]->type != REDIS_REPLY_STRING)
        rc = bullc__err(err, BULLC_EPROTO, "addJobScheduler: unexpected reply");
    else if (out_job_id && !(*out_job_id = strdup(reply->element[0]->str)))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    freeReplyObject(reply);
    return rc;
}

static bool digits(const char *s, size_t from, size_t to) {
    if (from >= to) return false;
    for (size_t i = from; i < to; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* Node's hasLegacyRepeatableKeyShape: "name:id:endDate:tz:<cron|every>". */
bool bullc__sched_legacy_shape(const char *k) {
    size_t len = strlen(k), colon[4];
    size_t from = 0;
    for (int i = 0; i < 4; i++) {
        const char *c = strchr(k + from, ':');
        if (!c) return false;
        colon[i] = (size_t)(c - k);
        from = colon[i] + 1;
    }
    if (colon[1] + 1 < colon[2] && !digits(k, colon[1] + 1, colon[2])) return false;
    size_t suffix = colon[3] + 1;
    if (suffix >= len) return false;
    if (strchr(k + suffix, ' ')) return true;
    return digits(k, suffix, len);
}

/* ---- reading --------------------------------------------------------------------- */

/* JavaScript's parseInt of a stored field (leading integer digits). */
static double parse_int(const char *s) { return (double)strtoll(s, NULL, 10); }

/* JavaScript's `parseInt(s) || null`. */
static cJSON *int_or_null(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    const char *d = s + (*s == '-' || *s == '+');
    if (*d < '0' || *d > '9') return cJSON_CreateNull();
    double v = parse_int(s);
    return v != 0 ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* Node 5's keyToData: what 5.x answers for a listed key without a hash when
 * the key has a colon (a legacy repeatable key,
 * "name:id:endDate:tz:pattern"). */
static cJSON *legacy_key_json(const char *key, const double *next) {
    sds *parts;
    int n = 0;
    cJSON *o = cJSON_CreateObject();
    parts = o ? sdssplitlen(key, (ssize_t)strlen(key), ":", 1, &n) : NULL;
    bool ok = parts && n >= 2;
    sds pattern = ok ? sdsempty() : NULL;
    for (int i = 4; ok && pattern && i < n; i++) pattern = sdscat(i > 4 ? sdscat(pattern, ":") : pattern, parts[i]);
    ok = ok && pattern && put(o, "key", cJSON_CreateString(key));
    ok = ok && put(o, "name", cJSON_CreateString(parts[0]));
    ok = ok && put(o, "id", *parts[1] ? cJSON_CreateString(parts[1]) : cJSON_CreateNull());
    ok = ok && put(o, "endDate", n > 2 ? int_or_null(parts[2]) : cJSON_CreateNull());
    ok = ok && put(o, "tz", n > 3 && *parts[3] ? cJSON_CreateString(parts[3]) : cJSON_CreateNull());
    ok = ok && put(o, "pattern", *pattern ? cJSON_CreateString(pattern) : cJSON_CreateNull());
    ok = ok && put(o, "next", next ? cJSON_CreateNumber(*next) : cJSON_CreateNull());
    sdsfree(pattern);
    if (parts) sdsfreesplitres(parts, n);
    if (!ok) {
        cJSON_Delete(o);
        return cJSON_CreateString(""); /* out of memory: a non-object the caller reports */
    }
    return o;
}

/* Node's transformSchedulerData: the hash's fields (name/value pairs) as the
 * scheduler object; NULL when the hash is empty (no such scheduler). */
static cJSON *scheduler_json(const char *key, const redisReply *fields, const double *next) {
    if (!fields || fields->type != REDIS_REPLY_ARRAY || fields->elements < 2) return NULL;
    const char *v[10] = {0};
    size_t vlen[10] = {0};
    static const char *const names[10] = {"name", "ic",      "limit", "startDate", "endDate",
                                          "tz",   "pattern", "every", "offset",    "data"};
    const char *opts = NULL;
    size_t opts_len = 0;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i], *x = fields->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || x->type != REDIS_REPLY_STRING) continue;
        if (!strcmp(f->str, "opts")) {
            opts = x->str;
            opts_len = x->len;
        }
        for (int n = 0; n < 10; n++)
            if (!strcmp(f->str, names[n])) {
                v[n] = x->str;
                vlen[n] = x->len;
            }
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o && put(o, "key", cJSON_CreateString(key));
    ok = ok && put(o, "name", v[0] ? cJSON_CreateString(v[0]) : cJSON_CreateNull());
    ok = ok && put(o, "next", next ? cJSON_CreateNumber(*next) : cJSON_CreateNull());
    static const char *const out[10] = {NULL, "iterationCount", "limit", "startDate", "endDate",
                                        "tz", "pattern",        "every", "offset",    NULL};
    for (int n = 1; ok && n < 9; n++) {
        if (!v[n] || !vlen[n]) continue; /* Node: `if (jobData.x)`, an empty string is falsy */
        bool text = n == 5 || n == 6;
        ok = put(o, out[n], text ? cJSON_CreateString(v[n]) : cJSON_CreateNumber(parse_int(v[n])));
    }
    if (ok && ((v[9] && vlen[9]) || (opts && opts_len))) {
        cJSON *t = cJSON_CreateObject();
        ok = put(o, "template", t);
        if (ok && v[9] && vlen[9]) {
            cJSON *d = bullc__parse_stored(v[9], vlen[9]);
            ok = put(t, "data", d ? d : cJSON_CreateString(v[9]));
        }
        cJSON *so = ok && opts && opts_len ? bullc__parse_stored(opts, opts_len) : NULL;
        if (so && cJSON_IsObject(so)) {
            cJSON *lo = cJSON_CreateObject();
            for (const cJSON *c = so->child; lo && c; c = c->next) {
                const char *l = bullc__opt_long(c->string);
                if (!put(lo, l ? l : c->string, cJSON_Duplicate(c, 1))) ok = false;
            }
            ok = ok && put(t, "opts", lo);
        }
        cJSON_Delete(so);
    }
    if (!ok) {
        cJSON_Delete(o);
        return cJSON_CreateString(""); /* out of memory: a non-object the caller reports */
    }
    return o;
}

int bullc_queue_get_job_scheduler(bullc_queue *q, const char *id, char **out_json, bullc_error *err) {
    if (!q || !id || !*id || !out_json)
        return bullc__err(err, BULLC_EINVAL, "a queue, an id and out_json are required");
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_GET_JOB_SCHEDULER, NULL, 0);
    bullc__args_add(&a, id);
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_GET_JOB_SCHEDULER, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    cJSON *j = NULL;
    bool v5 = bullc__queue_proto(q)->major == 5;
    if (r->type == REDIS_REPLY_ARRAY) {
        /* Node: `next ? parseInt(next) : null`; the script answers {} when
         * the id is not in the set */
        bool has_next = r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING;
        double next = has_next ? parse_int(r->element[1]->str) : 0;
        if (has_next) j = scheduler_json(id, r->element[0], &next);
        /* 5.x still answers for a legacy repeatable key (any id with a colon) */
        if (!j && v5 && strchr(id, ':')) j = legacy_key_json(id, has_next ? &next : NULL);
    }
    freeReplyObject(r);
    if (!j && bullc__sched_legacy_shape(id)) return bullc__err(err, BULLC_ESTATE, BULLC__SCHED_LEGACY_MSG, id);
    if (!j) return bullc__err(err, BULLC_ENOTFOUND, "no job scheduler '%s'", id);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return bullc__json_out(j, out_json, err);
}

int bullc_queue_remove_job_scheduler(bullc_queue *q, const char *id, bullc_error *err) {
    if (!q || !id || !*id) return bullc__err(err, BULLC_EINVAL, "job scheduler id must not be empty");
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_REMOVE_JOB_SCHEDULER, NULL, 0);
    bullc__args_add(&a, id);
    bullc__args_qkey(&a, q, BULLC__K_BASE);
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_REMOVE_JOB_SCHEDULER, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    rc = r->type == REDIS_REPLY_INTEGER ? (r->integer ? 1 : 0)
                                        : bullc__err(err, BULLC_EPROTO, "removeJobScheduler: unexpected reply");
    freeReplyObject(r);
    return rc;
}

int bullc_queue_get_job_schedulers_count(bullc_queue *q, int64_t *out_count, bullc_error *err) {
    if (!q || !out_count) return bullc__err(err, BULLC_EINVAL, "a queue and out_count are required");
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "ZCARD");
    bullc__args_qkey(&a, q, BULLC__K_REPEAT);
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    if (r->type == REDIS_REPLY_INTEGER)
        *out_count = r->integer;
    else
        rc = bullc__err(err, BULLC_EPROTO, "ZCARD: unexpected reply");
    freeReplyObject(r);
    return rc;
}

/* One listed scheduler: its hash, or (Node 6's getSchedulerData) its removal
 * when the hash is gone, *out NULL: left out. Node 5 removes nothing: it
 * lists a legacy repeatable key as its parts, and anything else as
 * undefined (null in JSON). */
static int list_one(bullc_queue *q, const char *id, double next, cJSON **out, bullc_error *err) {
    *out = NULL;
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HGETALL");
    bullc__args_own(&a, sdscat(sdscat(sdsdup(bullc__queue_keys(q)->k[BULLC__K_REPEAT]), ":"), id));
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    *out = scheduler_json(id, r, &next);
    freeReplyObject(r);
    if (!*out && bullc__queue_proto(q)->major == 5) {
        *out = strchr(id, ':') ? legacy_key_json(id, &next) : cJSON_CreateNull();
        if (!*out) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    /* Node 6 refuses a v5 repeatable job's entry (its metadata lives in the
     * key itself) rather than removing it as a dangling scheduler */
    if (!*out && bullc__sched_legacy_shape(id)) return bullc__err(err, BULLC_ESTATE, BULLC__SCHED_LEGACY_MSG, id);
    if (!*out) {
        rc = bullc_queue_remove_job_scheduler(q, id, err);
        return rc < 0 ? rc : 0;
    }
    if (!cJSON_IsObject(*out) && !cJSON_IsNull(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return 0;
}

int bullc_queue_get_job_schedulers(bullc_queue *q, int64_t start, int64_t end, bool asc, char **out_json,
                                   bullc_error *err) {
    if (!q || !out_json) return bullc__err(err, BULLC_EINVAL, "a queue and out_json are required");
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, asc ? "ZRANGE" : "ZREVRANGE");
    bullc__args_qkey(&a, q, BULLC__K_REPEAT);
    bullc__args_i64(&a, start);
    bullc__args_i64(&a, end);
    bullc__args_add(&a, "WITHSCORES");
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    cJSON *list = cJSON_CreateArray();
    if (!list) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        cJSON *s;
        rc = list_one(q, r->element[i]->str, parse_int(r->element[i + 1]->str), &s, err);
        if (s) cJSON_AddItemToArray(list, s);
    }
    freeReplyObject(r);
    if (rc) {
        cJSON_Delete(list);
        return rc;
    }
    return bullc__json_out(list, out_json, err);
}
