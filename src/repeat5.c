/* SPDX-License-Identifier: MIT */
/* Legacy repeatable jobs on BullMQ 5.x queues, as 5.81.5's Repeat class
 * makes them: Queue.add with `repeat` (updateRepeatableJob, override) and a
 * 5.x worker's next iteration of a job whose key has the legacy shape
 * (override false, sched_worker.c). The key, the job ids and the options are
 * Node 5's byte for byte: a Node 5 worker, Queue.getRepeatableJobs and
 * removeRepeatableByKey find what bullc wrote, and the other way round. */
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* JavaScript truthiness of a JSON value. */
static bool truthy(const cJSON *v) {
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return false;
    if (cJSON_IsNumber(v)) return v->valuedouble != 0 && !isnan(v->valuedouble);
    if (cJSON_IsString(v)) return v->valuestring[0] != 0;
    return true;
}

/* Sets o[k] where it is (as a JavaScript assignment keeps a key's place),
 * else appends it; takes v. */
static bool put(cJSON *o, const char *k, cJSON *v) {
    if (!v) return false;
    if (cJSON_HasObjectItem(o, k)) return cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
    if (cJSON_AddItemToObject(o, k, v)) return true;
    cJSON_Delete(v);
    return false;
}

/* String(v) of a JSON number or string, as JavaScript concatenates it. */
static sds js_string(sds s, const cJSON *v) {
    if (cJSON_IsString(v)) return sdscat(s, v->valuestring);
    if (!cJSON_IsNumber(v)) return sdscat(s, "undefined");
    double d = v->valuedouble;
    if (d == trunc(d) && fabs(d) < 1e21) return sdscatprintf(s, "%.0f", d);
    char buf[32];
    for (int prec = 1; prec <= 17; prec++) { /* the shortest that reads back, as JavaScript prints it */
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    return sdscat(s, buf);
}

static sds md5_hex(const char *s, size_t n) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(s, n, md, &len, EVP_md5(), NULL)) return NULL;
    sds out = sdsempty();
    for (unsigned i = 0; out && i < len; i++) out = sdscatprintf(out, "%02x", md[i]);
    return out;
}

/* The Job constructor's {attempts: 0, ...opts}: attempts first, which
 * decides the order the add scripts store the options in. */
static bool attempts_first(cJSON *m) {
    cJSON *att = cJSON_DetachItemFromObjectCaseSensitive(m, "attempts");
    if (!att && cJSON_AddNumberToObject(m, "attempts", 0)) att = cJSON_DetachItemFromObjectCaseSensitive(m, "attempts");
    if (att && cJSON_InsertItemInArray(m, 0, att)) return true;
    cJSON_Delete(att);
    return false;
}

cJSON *bullc__sched_job_opts(const cJSON *stored) {
    cJSON *m = cJSON_Duplicate(stored, 1);
    if (m) cJSON_DeleteItemFromObjectCaseSensitive(m, "repeatJobKey"); /* the constructor's own field */
    if (m && !attempts_first(m)) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

sds bullc__repeat5_concat(const char *name, const cJSON *repeat) {
    sds s = sdscatprintf(sdsempty(), "%s:", name);
    const cJSON *id = item(repeat, "jobId"), *end = item(repeat, "endDate"), *tz = item(repeat, "tz");
    const cJSON *pattern = item(repeat, "pattern");
    if (s && truthy(id)) s = js_string(s, id);
    if (s) s = sdscat(s, ":");
    if (s && truthy(end)) s = js_string(s, end);
    if (s) s = sdscat(s, ":");
    if (s && truthy(tz)) s = js_string(s, tz);
    if (s) s = sdscat(s, ":");
    if (s) s = js_string(s, truthy(pattern) ? pattern : item(repeat, "every"));
    return s;
}

void bullc__repeat5_free(bullc__repeat5 *p) {
    cJSON_Delete(p->opts);
    sdsfree(p->key);
    sdsfree(p->legacy_key);
    memset(p, 0, sizeof *p);
}

/* Node 5's getNextMillis; 0: none (cron-parser found no time before the end). */
static int next_millis(const cJSON *r, int64_t millis, int64_t *next, bullc_error *err) {
    const cJSON *every = item(r, "every"), *pattern = item(r, "pattern");
    *next = 0;
    if (truthy(pattern) && truthy(every))
        return bullc__err(err, BULLC_EINVAL, "Both .pattern and .every options are defined for this repeatable job");
    if (truthy(every)) {
        double e = every->valuedouble;
        *next = (int64_t)(floor((double)millis / e) * e + (truthy(item(r, "immediately")) ? 0 : e));
        return 0;
    }
    if (!cJSON_IsString(pattern))
        return bullc__err(err, BULLC_EINVAL,
                          "Either .pattern or .every options must be defined for this repeatable job");
    const cJSON *start = item(r, "startDate"), *tz = item(r, "tz"), *end = item(r, "endDate");
    int64_t from = cJSON_IsNumber(start) && start->valuedouble > (double)millis ? (int64_t)start->valuedouble : millis;
    int rc = bullc__sched_cron_next(pattern->valuestring, cJSON_IsString(tz) ? tz->valuestring : NULL, from, next, err);
    if (rc == BULLC_ENOTFOUND || (!rc && truthy(end) && (double)*next > end->valuedouble)) {
        *next = 0; /* cron-parser throws past its end: Node swallows it */
        return 0;
    }
    if (!rc && truthy(item(r, "immediately"))) *next = bullc__now_ms();
    return rc;
}

int bullc__repeat5_plan(bullc__repeat5 *p, const char *name, const cJSON *opts, bullc_error *err) {
    memset(p, 0, sizeof *p);
    const cJSON *given = item(opts, "repeat");
    if (!cJSON_IsObject(given)) return bullc__err(err, BULLC_EINVAL, "repeat must be an object");
    static const char *const dates[] = {"startDate", "endDate"};
    for (int i = 0; i < 2; i++) {
        const cJSON *d = item(given, dates[i]);
        if (d && !cJSON_IsNull(d) && !cJSON_IsNumber(d))
            return bullc__err(err, BULLC_EINVAL, "repeat.%s must be a number of milliseconds since the epoch",
                              dates[i]);
    }
    const cJSON *every = item(given, "every");
    if (every && !cJSON_IsNull(every) && (!cJSON_IsNumber(every) || every->valuedouble <= 0))
        return bullc__err(err, BULLC_EINVAL, "repeat.every must be a positive number of milliseconds");

    /* repeatOpts = {...opts.repeat}; pattern ??= cron; delete cron */
    cJSON *r = cJSON_Duplicate(given, 1);
    if (!r) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    /* an undefined value is packed as nil, and the add script's Lua table
       keeps a nil key's slot: the keys Node sets to undefined are kept as
       null so the stored options come out in Node's order */
    const cJSON *pat = item(r, "pattern"), *cron = item(r, "cron");
    if (!pat || cJSON_IsNull(pat))
        put(r, "pattern", cJSON_IsString(cron) ? cJSON_CreateString(cron->valuestring) : cJSON_CreateNull());
    cJSON_DeleteItemFromObjectCaseSensitive(r, "cron");

    const cJSON *count = item(r, "count"), *limit = item(r, "limit"), *end = item(r, "endDate");
    p->count = truthy(count) ? (int64_t)count->valuedouble + 1 : 1;
    int64_t now = bullc__now_ms();
    /* the limit or the end reached: nothing more (Node returns undefined) */
    if ((cJSON_IsNumber(limit) && (double)p->count > limit->valuedouble) ||
        (truthy(end) && (double)now > end->valuedouble)) {
        cJSON_Delete(r);
        return 0;
    }
    const cJSON *prev = item(opts, "prevMillis");
    int64_t prev_ms = truthy(prev) ? (int64_t)prev->valuedouble : 0;
    if (prev_ms > now) now = prev_ms;
    int rc = next_millis(r, now, &p->next, err);
    if (rc || !p->next) {
        cJSON_Delete(r);
        p->next = 0;
        return rc;
    }
    bool is_every = truthy(item(r, "every"));
    p->immediately = (is_every || truthy(item(r, "pattern"))) && truthy(item(r, "immediately"));
    p->has_offset = p->immediately && is_every;
    p->offset = p->has_offset ? (double)(now - p->next) : 0;
    /* the undecorated jobId goes into the repeat options on the first add */
    const cJSON *job_id = item(opts, "jobId");
    bool ok = true;
    if (!prev_ms && truthy(job_id)) ok = put(r, "jobId", cJSON_Duplicate(job_id, 1));
    p->legacy_key = ok ? bullc__repeat5_concat(name, r) : NULL;
    const cJSON *key = item(given, "key");
    p->key = !p->legacy_key        ? NULL
             : cJSON_IsString(key) ? sdsnew(key->valuestring)
                                   : md5_hex(p->legacy_key, sdslen(p->legacy_key));
    /* opts = {...opts, repeat: {offset, ...repeatOpts less immediately}} */
    cJSON_DeleteItemFromObjectCaseSensitive(r, "immediately");
    cJSON *nr = cJSON_CreateObject();
    if (nr) ok = ok && put(nr, "offset", p->has_offset ? cJSON_CreateNumber(p->offset) : cJSON_CreateNull());
    for (cJSON *c = r ? r->child : NULL; ok && nr && c; c = c->next) ok = put(nr, c->string, cJSON_Duplicate(c, 1));
    cJSON_Delete(r);
    /* createNextJob's delay takes the offset the job carries: an earlier
       iteration's, spread over this one's */
    const cJSON *off = item(nr, "offset");
    p->offset = cJSON_IsNumber(off) ? off->valuedouble : 0;
    p->opts = cJSON_Duplicate(opts, 1);
    if (!ok || !nr || !p->opts || !p->key || !put(p->opts, "repeat", nr)) {
        if (!p->opts || !ok) cJSON_Delete(nr);
        bullc__repeat5_free(p);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return 0;
}

sds bullc__repeat5_pack_meta(const char *name, const cJSON *opts) {
    const cJSON *r = item(opts, "repeat");
    bullc__packbuf b;
    bullc__packbuf_init(&b);
    msgpack_packer *pk = &b.pk;
    msgpack_pack_map(pk, 5);
    bullc__pack_str(pk, "name");
    bullc__pack_str(pk, name);
    /* each unset one nil, as msgpackr packs undefined for Node */
    static const char *const keys[] = {"endDate", "tz", "pattern", "every"};
    for (int i = 0; i < 4; i++) {
        const cJSON *v = item(r, keys[i]);
        bullc__pack_str(pk, keys[i]);
        if (i == 0 && !truthy(v)) v = NULL; /* endDate ? getTime() : undefined */
        if (v && !cJSON_IsNull(v))
            bullc__pack_json(pk, v);
        else
            msgpack_pack_nil(pk);
    }
    sds s = sdsnewlen(b.sbuf.data, b.sbuf.size);
    bullc__packbuf_destroy(&b);
    return s;
}

cJSON *bullc__repeat5_next_opts(const bullc__repeat5 *p, const char *name, const char *data_json, const char *rjk,
                                sds *job_id, int64_t *now, double *delay) {
    /* getRepeatJobKey: a key with more than two segments names the job by
     * hashes of its name, data.id and the key; any other by the key */
    int segments = 1;
    for (const char *c = strchr(rjk, ':'); c; c = strchr(c + 1, ':')) segments++;
    *job_id = NULL;
    if (segments > 2) {
        cJSON *data = data_json ? cJSON_Parse(data_json) : NULL;
        const cJSON *id = item(data, "id");
        sds ns = md5_hex(rjk, strlen(rjk));
        sds s = ns ? sdsnew(name) : NULL;
        if (s && truthy(id)) s = js_string(s, id);
        if (s) s = sdscatsds(s, ns);
        sds sum = s ? md5_hex(s, sdslen(s)) : NULL;
        if (sum) *job_id = sdscatprintf(sdsempty(), "repeat:%s:%lld", sum, (long long)p->next);
        cJSON_Delete(data);
        sdsfree(ns), sdsfree(s), sdsfree(sum);
    } else {
        *job_id = sdscatprintf(sdsempty(), "repeat:%s:%lld", rjk, (long long)p->next);
    }
    *now = bullc__now_ms();
    double d = (double)p->next + p->offset - (double)*now;
    *delay = d < 0 || p->immediately ? 0 : d;
    cJSON *m = cJSON_Duplicate(p->opts, 1);
    cJSON *r = m ? cJSON_Duplicate(item(m, "repeat"), 1) : NULL;
    bool ok = *job_id && m && r && put(m, "jobId", cJSON_CreateString(*job_id)) &&
              put(m, "delay", cJSON_CreateNumber(*delay)) && put(m, "timestamp", cJSON_CreateNumber((double)*now)) &&
              put(m, "prevMillis", cJSON_CreateNumber((double)p->next));
    /* repeatJobKey goes to the add's own argument (rjk), not the options */
    if (ok) cJSON_DeleteItemFromObjectCaseSensitive(m, "repeatJobKey");
    ok = ok && put(r, "count", cJSON_CreateNumber((double)p->count)) && put(m, "repeat", r);
    ok = ok && attempts_first(m);
    if (!ok) {
        if (r && (!m || item(m, "repeat") != r)) cJSON_Delete(r);
        cJSON_Delete(m);
        sdsfree(*job_id);
        *job_id = NULL;
        return NULL;
    }
    return m;
}

/* Node 5's Queue.add with `repeat`, its first call (addRepeatableJob: the
 * entry in the repeat zset and its hash) built. */
int bullc__repeat5_first(bullc__repeat5_calls *c, const bullc__protocol *proto, const bullc__keys *ks,
                         const bullc_job_opts *defaults, const bullc_bulk_job *job, bullc_error *err) {
    memset(c, 0, sizeof *c);
    cJSON *m = defaults ? cJSON_Duplicate(defaults->obj, 1) : cJSON_CreateObject();
    for (const cJSON *o = job->opts ? job->opts->obj->child : NULL; m && o; o = o->next)
        if (!put(m, o->string, cJSON_Duplicate(o, 1))) cJSON_Delete(m), m = NULL;
    for (cJSON *o = m ? m->child : NULL, *next; o; o = next) { /* null means unset */
        next = o->next;
        if (cJSON_IsNull(o)) cJSON_Delete(cJSON_DetachItemViaPointer(m, o));
    }
    if (!m) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    const cJSON *end = item(item(m, "repeat"), "endDate");
    int rc = 0;
    if (truthy(end) && end->valuedouble < (double)bullc__now_ms())
        rc = bullc__err(err, BULLC_EINVAL, "End date must be greater than current timestamp");
    if (!rc) rc = bullc__repeat5_plan(&c->plan, job->name, m, err);
    cJSON_Delete(m);
    if (rc || !c->plan.next) return rc;
    if (!(c->meta = bullc__repeat5_pack_meta(job->name, c->plan.opts)))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    snprintf(c->next, sizeof c->next, "%lld", (long long)c->plan.next);
    int n = bullc__call_keys(proto, BULLC__C_ADD_REPEATABLE_JOB, ks, NULL, c->argv, c->lens);
    const char *args[5] = {c->next, c->meta, c->plan.legacy_key, c->plan.key, ks->k[BULLC__K_BASE]};
    for (int i = 0; i < 5; i++) c->argv[n + i] = args[i], c->lens[n + i] = i == 1 ? sdslen(c->meta) : strlen(args[i]);
    c->argc = n + 5;
    c->script = bullc__call_script(proto, BULLC__C_ADD_REPEATABLE_JOB);
    return 0;
}

/* The first iteration's job (createNextJob), under the key the first call
 * answered. */
int bullc__repeat5_second(bullc__repeat5_calls *c, const redisReply *r, const bullc__protocol *proto,
                          const bullc__keys *ks, const bullc_bulk_job *job, bullc_error *err) {
    if (r->type == REDIS_REPLY_ERROR) return bullc__reply_err(r, err);
    if (r->type != REDIS_REPLY_STRING) return bullc__err(err, BULLC_EPROTO, "addRepeatableJob: unexpected reply");
    int64_t now = 0;
    double delay = 0;
    if (!(c->opts = bullc__repeat5_next_opts(&c->plan, job->name, job->data_json, r->str, &c->job_id, &now, &delay)))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc =
        bullc__job_prepare_major(&c->pj, 5, job->name, job->data_json, NULL, &(bullc_job_opts){c->opts}, NULL, err);
    if (!rc &&
        (!(c->pj.rjk = sdsnewlen(r->str, r->len)) || bullc__add_call_build(&c->call, proto, ks, job->name, &c->pj, 0)))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    return rc;
}

int bullc__repeat5_result(const bullc__repeat5_calls *c, const redisReply *r, bullc_bulk_job *job, bullc_error *err) {
    if (r->type == REDIS_REPLY_ERROR) return bullc__reply_err(r, err);
    if (r->type == REDIS_REPLY_INTEGER && r->integer < 0)
        return bullc__script_code_err(r->integer, c->pj.job_id, "addJob", NULL, err);
    if (!(job->id = strdup(c->pj.job_id))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    return 0;
}

void bullc__repeat5_calls_free(bullc__repeat5_calls *c) {
    bullc__add_call_free(&c->call);
    bullc__job_prepared_free(&c->pj);
    cJSON_Delete(c->opts);
    sdsfree(c->meta);
    sdsfree(c->job_id);
    bullc__repeat5_free(&c->plan);
    memset(c, 0, sizeof *c);
}

/* The synchronous add: its two calls in turn. */
int bullc__repeat5_add(bullc_queue *q, bullc_bulk_job *job, bullc_error *err) {
    const bullc__protocol *proto = bullc__queue_proto(q);
    const bullc__keys *ks = bullc__queue_keys(q);
    bullc__repeat5_calls c;
    int rc = bullc__repeat5_first(&c, proto, ks, bullc__queue_default_opts(q), job, err);
    if (rc || !c.plan.next) { /* the limit or the end reached: no job, as Node returns none */
        bullc__repeat5_calls_free(&c);
        return rc;
    }
    bullc__conn *conn = NULL;
    redisReply *r = NULL;
    rc = bullc__queue_conn(q, &conn, err);
    if (!rc) rc = bullc__conn_eval(conn, c.script, c.argc, c.argv, c.lens, &r, err);
    if (!rc) rc = bullc__repeat5_second(&c, r, proto, ks, job, err);
    freeReplyObject(r);
    r = NULL;
    if (!rc) rc = bullc__conn_eval(conn, c.call.script, c.call.argc, c.call.argv, c.call.lens, &r, err);
    if (!rc) rc = bullc__repeat5_result(&c, r, job, err);
    freeReplyObject(r);
    bullc__repeat5_calls_free(&c);
    return rc;
}
