/* SPDX-License-Identifier: MIT */
/* Job options: kept as a JSON object with Node's names, checked with Node's
 * rules (plus the ones Node forgets: negative delays, ill-typed values), and
 * packed with Node's short keys for the add scripts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static const char *const unsupported[] = {"repeatJobKey", "telemetry"};

int bullc_job_opts_new(bullc_job_opts **out) {
    bullc_job_opts *o = calloc(1, sizeof *o);
    if (!o || !(o->obj = cJSON_CreateObject())) {
        free(o);
        return BULLC_ENOMEM;
    }
    *out = o;
    return 0;
}

bullc_job_opts *bullc__job_opts_dup(const bullc_job_opts *src) {
    bullc_job_opts *o = calloc(1, sizeof *o);
    if (!o || !(o->obj = cJSON_Duplicate(src->obj, 1))) {
        free(o);
        return NULL;
    }
    return o;
}

void bullc_job_opts_free(bullc_job_opts *o) {
    if (!o) return;
    cJSON_Delete(o->obj);
    free(o);
}

char *bullc_job_opts_to_json(const bullc_job_opts *o) { return cJSON_PrintUnformatted(o->obj); }

static int put(bullc_job_opts *o, const char *key, cJSON *v) {
    if (!v) return BULLC_ENOMEM;
    if (cJSON_HasObjectItem(o->obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o->obj, key, v);
    else
        cJSON_AddItemToObject(o->obj, key, v);
    return 0;
}

static cJSON *num(double v) { return cJSON_CreateNumber(v); }

int bullc_job_opts_set_job_id(bullc_job_opts *o, const char *id) {
    return id ? put(o, "jobId", cJSON_CreateString(id)) : BULLC_EINVAL;
}
int bullc_job_opts_set_delay(bullc_job_opts *o, int64_t ms) { return put(o, "delay", num((double)ms)); }
int bullc_job_opts_set_priority(bullc_job_opts *o, int64_t p) { return put(o, "priority", num((double)p)); }
int bullc_job_opts_set_lifo(bullc_job_opts *o, bool lifo) { return put(o, "lifo", cJSON_CreateBool(lifo)); }
int bullc_job_opts_set_attempts(bullc_job_opts *o, int64_t n) { return put(o, "attempts", num((double)n)); }
int bullc_job_opts_set_keep_logs(bullc_job_opts *o, int64_t n) { return put(o, "keepLogs", num((double)n)); }
int bullc_job_opts_set_stack_trace_limit(bullc_job_opts *o, int64_t n) {
    return put(o, "stackTraceLimit", num((double)n));
}
int bullc_job_opts_set_size_limit(bullc_job_opts *o, int64_t n) { return put(o, "sizeLimit", num((double)n)); }
int bullc_job_opts_set_timestamp(bullc_job_opts *o, int64_t ms) { return put(o, "timestamp", num((double)ms)); }

int bullc_job_opts_set_backoff(bullc_job_opts *o, const char *type, int64_t delay, double jitter) {
    if (!type) return BULLC_EINVAL;
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "type", type) || !cJSON_AddNumberToObject(b, "delay", (double)delay) ||
        (jitter >= 0 && !cJSON_AddNumberToObject(b, "jitter", jitter))) {
        cJSON_Delete(b);
        return BULLC_ENOMEM;
    }
    return put(o, "backoff", b);
}

int bullc_job_opts_set_remove_on_complete(bullc_job_opts *o, bool r) {
    return put(o, "removeOnComplete", cJSON_CreateBool(r));
}
int bullc_job_opts_set_remove_on_fail(bullc_job_opts *o, bool r) { return put(o, "removeOnFail", cJSON_CreateBool(r)); }

static cJSON *keep(int64_t count, int64_t age) {
    if (age < 0) return count >= 0 ? num((double)count) : cJSON_CreateBool(0);
    cJSON *k = cJSON_CreateObject();
    if (k && (!cJSON_AddNumberToObject(k, "age", (double)age) ||
              (count >= 0 && !cJSON_AddNumberToObject(k, "count", (double)count)))) {
        cJSON_Delete(k);
        return NULL;
    }
    return k;
}
int bullc_job_opts_set_keep_on_complete(bullc_job_opts *o, int64_t count, int64_t age_s) {
    return put(o, "removeOnComplete", keep(count, age_s));
}
int bullc_job_opts_set_keep_on_fail(bullc_job_opts *o, int64_t count, int64_t age_s) {
    return put(o, "removeOnFail", keep(count, age_s));
}

int bullc_job_opts_set_deduplication(bullc_job_opts *o, const char *id, int64_t ttl, bool extend, bool replace) {
    if (!id) return BULLC_EINVAL;
    cJSON *d = cJSON_CreateObject();
    if (!d || !cJSON_AddStringToObject(d, "id", id) || (ttl > 0 && !cJSON_AddNumberToObject(d, "ttl", (double)ttl)) ||
        (extend && !cJSON_AddTrueToObject(d, "extend")) || (replace && !cJSON_AddTrueToObject(d, "replace"))) {
        cJSON_Delete(d);
        return BULLC_ENOMEM;
    }
    return put(o, "deduplication", d);
}

/* ---- validation -------------------------------------------------------- */

static bool is_int(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == trunc(v->valuedouble) &&
           fabs(v->valuedouble) <= BULLC__MAX_SAFE_INTEGER;
}

static int want_int(const cJSON *v, const char *name, double min, double max, bullc_error *err) {
    if (!is_int(v)) return bullc__err(err, BULLC_EINVAL, "%s must be an integer", name);
    if (v->valuedouble < min || v->valuedouble > max)
        return bullc__err(err, BULLC_EINVAL, "%s must be between %.0f and %.0f (got %.0f)", name, min, max,
                          v->valuedouble);
    return 0;
}

static int want_bool(const cJSON *v, const char *name, bullc_error *err) {
    return cJSON_IsBool(v) ? 0 : bullc__err(err, BULLC_EINVAL, "%s must be true or false", name);
}

/* Checks an object's keys against a list. */
static int only_keys(const cJSON *obj, const char *name, const char *const *keys, size_t n, bullc_error *err) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (cJSON_IsNull(c)) continue; /* null means unset, nested too */
        size_t i = 0;
        while (i < n && strcmp(c->string, keys[i])) i++;
        if (i == n) return bullc__err(err, BULLC_EINVAL, "%s: unknown field '%s'", name, c->string);
    }
    return 0;
}

/* Node rejects an id when `${parseInt(id, 10)}` === id: a string that is
 * exactly how JavaScript prints the integer it parses to. JavaScript prints
 * an integral double below 1e21 as its shortest round-trip digits padded
 * with zeros; so "18014398509481984" (2^54) is such a string and
 * "9007199254740993" (not a double) is not. */
static bool js_integer_string(const char *id) {
    const char *d = id + (id[0] == '-');
    size_t n = strlen(d);
    if (n == 0 || n > 21) return false;
    for (size_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9') return false;
    if (d[0] == '0') return n == 1 && id[0] != '-'; /* "0" prints as itself; "-0" prints as "0" */
    double v = strtod(d, NULL);
    if (v >= 1e21) return false;
    char digits[32], printed[48];
    int exp10 = 0, p;
    for (p = 1; p <= 17; p++) { /* shortest digits that read back as v */
        char e[40];
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) {
            char *ep = strchr(e, 'e');
            exp10 = atoi(ep + 1);
            size_t k = 0;
            for (const char *c = e; c < ep; c++)
                if (*c != '.') digits[k++] = *c;
            digits[k] = 0;
            break;
        }
    }
    if (p > 17 || exp10 + 1 < (int)strlen(digits)) return false;
    snprintf(printed, sizeof printed, "%s", digits);
    for (int z = (int)strlen(digits); z < exp10 + 1; z++) strcat(printed, "0");
    return !strcmp(printed, d);
}

int bullc__validate_job_id(const char *id, int major, bullc_error *err) {
    if (!strcmp(id, "0") || !strncmp(id, "0:", 2)) /* both majors refuse it, in their words */
        return major ? bullc__err(err, BULLC_EINVAL,
                                  major == 5 ? "JobId cannot be '0' or start with 0:"
                                             : "JobId cannot be '0' or start with '0:'")
                     : 0;
    if (!*id) return 0; /* "" means an automatic id, as in Node */
    if (js_integer_string(id)) return bullc__err(err, BULLC_EINVAL, "Custom Id cannot be integers");
    if (strchr(id, ':')) {
        int parts = 1;
        for (const char *p = id; *p; p++) parts += *p == ':';
        if (parts != 3) return bullc__err(err, BULLC_EINVAL, "Custom Id cannot contain :");
    }
    return 0;
}

static int validate_keep(const cJSON *v, const char *name, bullc_error *err) {
    if (cJSON_IsBool(v)) return 0;
    if (cJSON_IsNumber(v)) return want_int(v, name, -1, BULLC__MAX_SAFE_INTEGER, err);
    if (!cJSON_IsObject(v))
        return bullc__err(err, BULLC_EINVAL, "%s must be a boolean, a count or {age, count, limit}", name);
    static const char *const keys[] = {"age", "count", "limit"};
    int rc = only_keys(v, name, keys, 3, err);
    for (const cJSON *c = v->child; !rc && c; c = c->next) {
        if (cJSON_IsNull(c)) continue;
        char what[64];
        snprintf(what, sizeof what, "%s.%s", name, c->string);
        rc = want_int(c, what, strcmp(c->string, "count") ? 0 : -1, BULLC__MAX_SAFE_INTEGER, err);
    }
    return rc;
}

static int validate_backoff(const cJSON *v, bullc_error *err) {
    if (cJSON_IsNumber(v)) return want_int(v, "backoff", 0, BULLC__MAX_SAFE_INTEGER, err);
    if (!cJSON_IsObject(v)) return bullc__err(err, BULLC_EINVAL, "backoff must be a number or {type, delay, jitter}");
    static const char *const keys[] = {"type", "delay", "jitter"};
    int rc = only_keys(v, "backoff", keys, 3, err);
    if (rc) return rc;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(v, "delay");
    const cJSON *jitter = cJSON_GetObjectItemCaseSensitive(v, "jitter");
    if (!cJSON_IsString(type) || !*type->valuestring)
        return bullc__err(err, BULLC_EINVAL,
                          "backoff.type must be \"fixed\", \"exponential\" or a custom strategy's name");
    if (delay && !cJSON_IsNull(delay) && (rc = want_int(delay, "backoff.delay", 0, BULLC__MAX_SAFE_INTEGER, err)))
        return rc;
    if (jitter && !cJSON_IsNull(jitter) &&
        (!cJSON_IsNumber(jitter) || jitter->valuedouble < 0 || jitter->valuedouble > 1))
        return bullc__err(err, BULLC_EINVAL, "Jitter should be between 0 and 1");
    return 0;
}

/* deduplication, or 5.x's debounce (its old name, Node's messages say which) */
static int validate_dedup(const cJSON *v, const char *name, bullc_error *err) {
    bool debounce = !strcmp(name, "debounce");
    if (!cJSON_IsObject(v))
        return bullc__err(err, BULLC_EINVAL, "%s must be an object {id, ttl, extend, replace}", name);
    static const char *const keys[] = {"id", "ttl", "extend", "replace", "keepLastIfActive", "reschedule"};
    int rc = only_keys(v, name, keys, 6, err);
    if (rc) return rc;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
    if (!cJSON_IsString(id) || !*id->valuestring)
        return bullc__err(err, BULLC_EINVAL,
                          debounce ? "Debounce id must be provided" : "Deduplication id must be provided");
    for (const cJSON *c = v->child; c; c = c->next) {
        if (!strcmp(c->string, "id") || cJSON_IsNull(c)) continue;
        char what[64];
        snprintf(what, sizeof what, "%s.%s", name, c->string);
        rc = !strcmp(c->string, "ttl") ? want_int(c, what, 1, BULLC__MAX_SAFE_INTEGER, err) : want_bool(c, what, err);
        if (rc) return rc;
    }
    return 0;
}

/* Node's opts.parent: {id, queue} where queue is the parent's qualified
 * name "<prefix>:<queue>" (its keys are "<queue>:<id>..."). */
static int validate_parent(const cJSON *v, bullc_error *err) {
    if (!cJSON_IsObject(v)) return bullc__err(err, BULLC_EINVAL, "parent must be an object {id, queue}");
    static const char *const keys[] = {"id", "queue"};
    int rc = only_keys(v, "parent", keys, 2, err);
    if (rc) return rc;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
    const cJSON *queue = cJSON_GetObjectItemCaseSensitive(v, "queue");
    if (!cJSON_IsString(id) || !*id->valuestring) return bullc__err(err, BULLC_EINVAL, "parent.id must be a job id");
    if (!cJSON_IsString(queue) || !strchr(queue->valuestring, ':'))
        return bullc__err(err, BULLC_EINVAL, "parent.queue must be the parent queue's \"<prefix>:<name>\"");
    return 0;
}

/* Validates one option by name by major 5 or 6's rules (0: not known yet,
 * see bullc__job_prepare_major); `v` is never JSON null (nulls are unset). */
static int validate_one(const char *k, const cJSON *v, int major, bullc_error *err) {
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (!strcmp(k, unsupported[i]))
            return bullc__err(err, BULLC_EINVAL, "job option '%s' is not supported by bullc yet (repeatable jobs)", k);
    /* 5.x's Queue.add takes repeat (a legacy repeatable job, repeat5.c);
       prevMillis is what its next iterations carry */
    if (!strcmp(k, "repeat") || !strcmp(k, "prevMillis")) {
        if (major == 6)
            return bullc__err(err, BULLC_EINVAL,
                              "job option '%s' belongs to repeatable jobs, which BullMQ 6 removed: use a job "
                              "scheduler (bullc_queue_upsert_job_scheduler, bullc scheduler upsert)",
                              k);
        if (!strcmp(k, "prevMillis")) return want_int(v, k, 0, BULLC__MAX_SAFE_INTEGER, err);
        return cJSON_IsObject(v) ? 0 : bullc__err(err, BULLC_EINVAL, "repeat must be an object");
    }
    if (!strcmp(k, "debounce")) {
        if (major == 6)
            return bullc__err(err, BULLC_EINVAL, "Debounce option has been removed. Use deduplication option instead");
        return major == 5 ? validate_dedup(v, k, err) : 0;
    }
    if (!strcmp(k, "jobId")) {
        if (!cJSON_IsString(v)) return bullc__err(err, BULLC_EINVAL, "jobId must be a string");
        return bullc__validate_job_id(v->valuestring, major, err);
    }
    if (!strcmp(k, "delay")) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return bullc__err(err, BULLC_EINVAL, "delay must be a number of milliseconds");
        if (v->valuedouble < 0)
            return bullc__err(err, BULLC_EINVAL, "delay must not be negative (got %g)", v->valuedouble);
        return 0;
    }
    if (!strcmp(k, "priority")) {
        if (cJSON_IsNumber(v) && v->valuedouble != trunc(v->valuedouble))
            return bullc__err(err, BULLC_EINVAL, "Priority should not be float");
        if (cJSON_IsNumber(v) && (v->valuedouble < 0 || v->valuedouble > BULLC__PRIORITY_LIMIT))
            return bullc__err(err, BULLC_EINVAL, "Priority should be between 0 and %d", BULLC__PRIORITY_LIMIT);
        return want_int(v, "priority", 0, BULLC__PRIORITY_LIMIT, err);
    }
    if (!strcmp(k, "attempts")) return want_int(v, "attempts", 0, BULLC__MAX_SAFE_INTEGER, err);
    if (!strcmp(k, "keepLogs")) return want_int(v, "keepLogs", 0, BULLC__MAX_SAFE_INTEGER, err);
    if (!strcmp(k, "stackTraceLimit")) return want_int(v, "stackTraceLimit", 0, BULLC__MAX_SAFE_INTEGER, err);
    if (!strcmp(k, "sizeLimit")) return want_int(v, "sizeLimit", 1, BULLC__MAX_SAFE_INTEGER, err);
    if (!strcmp(k, "timestamp")) return want_int(v, "timestamp", 0, BULLC__MAX_SAFE_INTEGER, err);
    if (!strcmp(k, "backoff")) return validate_backoff(v, err);
    if (!strcmp(k, "removeOnComplete") || !strcmp(k, "removeOnFail")) return validate_keep(v, k, err);
    if (!strcmp(k, "deduplication")) return validate_dedup(v, k, err);
    if (!strcmp(k, "parent")) return validate_parent(v, err);
    if (!strcmp(k, "lifo") || !strcmp(k, "failParentOnFailure") || !strcmp(k, "continueParentOnFailure") ||
        !strcmp(k, "ignoreDependencyOnFailure") || !strcmp(k, "removeDependencyOnFailure"))
        return want_bool(v, k, err);
    return bullc__err(err, BULLC_EINVAL, "unknown job option '%s'", k);
}

static bool set(const cJSON *obj, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, k);
    return v && !cJSON_IsNull(v);
}

static int validate_obj(const cJSON *obj, int major, bullc_error *err) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (cJSON_IsNull(c)) continue;
        int rc = validate_one(c->string, c, major, err);
        if (rc) return rc;
    }
    /* Node lists the enabled ones, in this order */
    static const char *const exclusive[] = {"removeDependencyOnFailure", "failParentOnFailure",
                                            "continueParentOnFailure", "ignoreDependencyOnFailure"};
    char list[160] = "";
    int n = 0;
    for (int i = 0; i < 4; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, exclusive[i]))) {
            if (n++) strcat(list, ", ");
            strcat(list, exclusive[i]);
        }
    if (n > 1) return bullc__err(err, BULLC_EINVAL, "The following options cannot be used together: %s", list);
    if (set(obj, "deduplication") && set(obj, "parent"))
        return bullc__err(err, BULLC_EINVAL, "Deduplication and parent options cannot be used together");
    if (major == 5 && set(obj, "debounce") && set(obj, "parent"))
        return bullc__err(err, BULLC_EINVAL, "Debounce and parent options cannot be used together");
    return 0;
}

/* Without a queue, the major is not known: its rules are checked by the add. */
int bullc_job_opts_validate(const bullc_job_opts *o, bullc_error *err) { return validate_obj(o->obj, 0, err); }

int bullc_job_opts_merge_json(bullc_job_opts *o, const char *json, bullc_error *err) {
    if (!json) return bullc__err(err, BULLC_EINVAL, "options: NULL JSON");
    cJSON *in = cJSON_ParseWithOpts(json, NULL, 1);
    if (!in)
        return bullc__err(err, BULLC_EINVAL, "options: invalid JSON near '%.20s'",
                          cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "");
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return bullc__err(err, BULLC_EINVAL, "options must be a JSON object");
    }
    int rc = validate_obj(in, 0, err);
    if (rc) {
        cJSON_Delete(in);
        return rc;
    }
    while (in->child) {
        cJSON *c = cJSON_DetachItemViaPointer(in, in->child);
        cJSON_DeleteItemFromObjectCaseSensitive(o->obj, c->string);
        cJSON_AddItemToObject(o->obj, c->string, c); /* takes c->string over */
    }
    cJSON_Delete(in);
    return 0;
}

/* ---- preparing an add --------------------------------------------------- */

void bullc__job_prepared_free(bullc__prepared_job *pj) {
    sdsfree(pj->data);
    sdsfree(pj->packed_opts);
    sdsfree(pj->job_id);
    sdsfree(pj->dedup_id);
    sdsfree(pj->parent_key);
    sdsfree(pj->parent_packed);
    sdsfree(pj->rjk);
    memset(pj, 0, sizeof *pj);
}

/* Node's optsEncodeMap: the stored name of an option (5.x's maps its
 * legacy debounce to deduplication's "de" too). */
static const char *short_key(const char *k, int major) {
    if (major == 5 && !strcmp(k, "debounce")) return "de";
    const char *s = bullc__opt_short(k);
    return s ? s : k;
}

/* The data as Node stores it: JSON.stringify's output. Minifying keeps every
 * number and string byte as written (no re-formatting). */
static int prepare_data(bullc__prepared_job *pj, const char *data_json, bullc_error *err) {
    if (!data_json) {
        pj->data = sdsnew("{}");
        return 0;
    }
    if (!bullc__utf8_valid(data_json, strlen(data_json)))
        return bullc__err(err, BULLC_EINVAL, "data is not valid UTF-8 (Node could not have written it)");
    const char *end = NULL;
    cJSON *d = cJSON_ParseWithOpts(data_json, &end, 1);
    if (!d) {
        size_t at = end ? (size_t)(end - data_json) : 0;
        const char *ep = cJSON_GetErrorPtr();
        if (ep && ep >= data_json && ep <= data_json + strlen(data_json)) at = (size_t)(ep - data_json);
        return bullc__err(err, BULLC_EINVAL, "data is not valid JSON (at byte %zu)", at);
    }
    cJSON_Delete(d);
    pj->data = sdsnew(data_json);
    cJSON_Minify(pj->data);
    sdsupdatelen(pj->data);
    return 0;
}

static int check_size(const bullc__prepared_job *pj, const char *name, bullc_error *err) {
    if (pj->size_limit >= 0 && (double)sdslen(pj->data) > pj->size_limit)
        return bullc__err(err, BULLC_EINVAL, "The size of job %s exceeds the limit %.0f bytes", name ? name : "",
                          pj->size_limit);
    return 0;
}

int bullc__job_prepare_like(bullc__prepared_job *pj, const bullc__prepared_job *like, const char *name,
                            const char *data_json, bullc_error *err) {
    memset(pj, 0, sizeof *pj);
    int rc = prepare_data(pj, data_json, err);
    if (rc) return rc;
    sds data = pj->data;
    *pj = *like;
    pj->data = data;
    pj->rjk = NULL; /* only a repeatable job's own add sets it */
    pj->packed_opts = sdsdup(like->packed_opts);
    pj->job_id = like->job_id ? sdsdup(like->job_id) : NULL;
    pj->dedup_id = like->dedup_id ? sdsdup(like->dedup_id) : NULL;
    pj->parent_key = like->parent_key ? sdsdup(like->parent_key) : NULL;
    pj->parent_packed = like->parent_packed ? sdsdup(like->parent_packed) : NULL;
    if (!pj->timestamp_given) pj->timestamp = bullc__now_ms();
    if (!pj->packed_opts || (like->job_id && !pj->job_id) || (like->dedup_id && !pj->dedup_id) ||
        (like->parent_key && (!pj->parent_key || !pj->parent_packed))) {
        bullc__job_prepared_free(pj);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    if ((rc = check_size(pj, name, err))) bullc__job_prepared_free(pj);
    return rc;
}

/* Node's job.parentKey and job.parent: the parent's key "<queue>:<id>", and
 * {id, queueKey} plus the one on-failure flag set, packed as msgpackr packs
 * the object (the add scripts store it as the job's "parent" field). */
static int prepare_parent(bullc__prepared_job *pj, const cJSON *m) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "parent");
    if (!p) return 0;
    const char *id = cJSON_GetObjectItemCaseSensitive(p, "id")->valuestring;
    const char *queue = cJSON_GetObjectItemCaseSensitive(p, "queue")->valuestring;
    pj->parent_key = sdscatprintf(sdsempty(), "%s:%s", queue, id);
    /* job.js sets them in this order; validate_obj allows one at most */
    static const char *const flags[][2] = {{"failParentOnFailure", "fpof"},
                                           {"removeDependencyOnFailure", "rdof"},
                                           {"ignoreDependencyOnFailure", "idof"},
                                           {"continueParentOnFailure", "cpof"}};
    const char *flag = NULL;
    for (size_t i = 0; i < 4; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, flags[i][0]))) flag = flags[i][1];
    bullc__packbuf pb;
    bullc__packbuf_init(&pb);
    msgpack_pack_map(&pb.pk, flag ? 3 : 2);
    bullc__pack_str(&pb.pk, "id");
    bullc__pack_str(&pb.pk, id);
    bullc__pack_str(&pb.pk, "queueKey");
    bullc__pack_str(&pb.pk, queue);
    if (flag) {
        bullc__pack_str(&pb.pk, flag);
        msgpack_pack_true(&pb.pk);
    }
    pj->parent_packed = sdsnewlen(pb.sbuf.data, pb.sbuf.size);
    bullc__packbuf_destroy(&pb);
    return pj->parent_key && pj->parent_packed ? 0 : BULLC_ENOMEM;
}

int bullc__job_prepare(bullc__prepared_job *pj, const char *data_json, const bullc_job_opts *defaults,
                       const bullc_job_opts *opts, bullc_error *err) {
    return bullc__job_prepare_named(pj, "", data_json, defaults, opts, err);
}

int bullc__job_prepare_named(bullc__prepared_job *pj, const char *name, const char *data_json,
                             const bullc_job_opts *defaults, const bullc_job_opts *opts, bullc_error *err) {
    return bullc__job_prepare_major(pj, 6, name, data_json, defaults, opts, NULL, err);
}

int bullc__job_prepare_major(bullc__prepared_job *pj, int major, const char *name, const char *data_json,
                             const bullc_job_opts *defaults, const bullc_job_opts *opts, const char *tm,
                             bullc_error *err) {
    memset(pj, 0, sizeof *pj);
    pj->major = major;
    int rc = prepare_data(pj, data_json, err);
    if (rc) return rc;

    /* mergedOpts = {...defaultJobOptions, ...opts, jobId: opts.jobId} */
    cJSON *m = defaults ? cJSON_Duplicate(defaults->obj, 1) : cJSON_CreateObject();
    if (!m) goto oom;
    cJSON_DeleteItemFromObjectCaseSensitive(m, "jobId");
    if (opts)
        for (const cJSON *c = opts->obj->child; c; c = c->next) {
            cJSON *dup = cJSON_Duplicate(c, 1);
            if (!dup) goto oom;
            cJSON_DeleteItemFromObjectCaseSensitive(m, c->string);
            cJSON_AddItemToObject(m, c->string, dup);
        }
    /* null means unset, as undefined does in Node */
    for (cJSON *c = m->child, *next; c; c = next) {
        next = c->next;
        if (cJSON_IsNull(c)) cJSON_Delete(cJSON_DetachItemViaPointer(m, c));
    }
    if ((rc = validate_obj(m, major, err))) goto out;

    /* The Job constructor's normalisation: attempts defaults to 0; a number
     * backoff becomes {type: 'fixed', delay}. */
    if (!cJSON_HasObjectItem(m, "attempts")) cJSON_AddNumberToObject(m, "attempts", 0);
    cJSON *bo = cJSON_GetObjectItemCaseSensitive(m, "backoff");
    if (cJSON_IsNumber(bo)) {
        cJSON *b = cJSON_CreateObject();
        if (!b) goto oom;
        cJSON_AddStringToObject(b, "type", "fixed");
        cJSON_AddNumberToObject(b, "delay", bo->valuedouble);
        cJSON_ReplaceItemInObjectCaseSensitive(m, "backoff", b);
    }
    /* Node's add: opts = {...opts, telemetry: {metadata}}, stored as "tm"
     * after the options given (and after attempts, which Node puts first) */
    if (tm && !cJSON_AddStringToObject(m, "tm", tm)) goto oom;

    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "jobId")) && *v->valuestring) pj->job_id = sdsnew(v->valuestring);
    /* 5.x: deduplication.id, else debounce.id (Job's deduplicationId) */
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "deduplication")) ||
        (major == 5 && (v = cJSON_GetObjectItemCaseSensitive(m, "debounce"))))
        pj->dedup_id = sdsnew(cJSON_GetObjectItemCaseSensitive(v, "id")->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(m, "timestamp");
    pj->timestamp_given = v && v->valuedouble > 0;
    pj->timestamp = pj->timestamp_given ? (int64_t)v->valuedouble : bullc__now_ms();
    v = cJSON_GetObjectItemCaseSensitive(m, "delay");
    pj->delay = v ? v->valuedouble : 0;
    v = cJSON_GetObjectItemCaseSensitive(m, "priority");
    pj->priority = v ? (int64_t)v->valuedouble : 0;
    pj->lifo = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "lifo"));
    pj->repeat = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, "repeat"));
    pj->size_limit = (v = cJSON_GetObjectItemCaseSensitive(m, "sizeLimit")) ? v->valuedouble : -1;
    if ((rc = check_size(pj, name, err))) goto out;
    if (prepare_parent(pj, m)) goto oom;

    /* 5.x with both deduplication and debounce: Node's optsAsJSON assigns
     * "de" twice, so it stays where the first one was, with the last value */
    const cJSON *de_last = NULL;
    size_t n_de = 0;
    for (const cJSON *c = m->child; c; c = c->next)
        if (!strcmp(short_key(c->string, major), "de")) de_last = c, n_de++;
    bullc__packbuf pb;
    bullc__packbuf_init(&pb);
    msgpack_pack_map(&pb.pk, (size_t)cJSON_GetArraySize(m) - (n_de > 1 ? n_de - 1 : 0));
    bool de_packed = false;
    for (const cJSON *c = m->child; c; c = c->next) {
        const char *k = short_key(c->string, major);
        bool de = !strcmp(k, "de");
        if (de && de_packed) continue;
        de_packed = de_packed || de;
        bullc__pack_str(&pb.pk, k);
        bullc__pack_json(&pb.pk, de ? de_last : c);
    }
    pj->packed_opts = sdsnewlen(pb.sbuf.data, pb.sbuf.size);
    bullc__packbuf_destroy(&pb);
    cJSON_Delete(m);
    if (!pj->data || !pj->packed_opts) {
        bullc__job_prepared_free(pj);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return 0;
oom:
    rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
out:
    cJSON_Delete(m);
    bullc__job_prepared_free(pj);
    return rc;
}
