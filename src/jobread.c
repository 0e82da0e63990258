/* SPDX-License-Identifier: MIT */
/* Reading a job hash as Node does (rawToJobJson + Job.fromJSON + the Job
 * constructor's defaults), producing Node's JobJson names as JSON. Stored
 * JSON is parsed leniently: Lua's cjson escapes '/', prints 14 significant
 * digits and reorders keys, which any parser reads back. */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "bullc-private.h"

cJSON *bullc__parse_stored(const char *s, size_t len) {
    if (!s) return NULL;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(s, &end, 1);
    /* an embedded NUL would end the parse early: that text is not JSON */
    if (v && end != s + len) {
        cJSON_Delete(v);
        v = NULL;
    }
    return v;
}

/* The value of hash field `name`, or NULL. */
static const redisReply *hfield(const redisReply *h, const char *name) {
    size_t nl = strlen(name);
    if (!h || h->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == nl && !memcmp(f->str, name, nl)) {
            const redisReply *v = h->element[i + 1];
            return v->type == REDIS_REPLY_STRING ? v : NULL;
        }
    }
    return NULL;
}

/* A field that is present and not empty (JavaScript truthiness of a string). */
static const redisReply *truthy(const redisReply *h, const char *name) {
    const redisReply *v = hfield(h, name);
    return v && v->len ? v : NULL;
}

/* JSON text as a raw item (printed as it is). */
static cJSON *raw_json(sds text) {
    cJSON *j = text ? cJSON_CreateRaw(text) : NULL;
    sdsfree(text);
    return j;
}

/* A string field. One holding a NUL goes in as a quoted raw item: cJSON's
 * strings end at the first NUL. */
static cJSON *str_json(const redisReply *v) {
    if (memchr(v->str, '\0', v->len)) return raw_json(bullc__json_quote(sdsempty(), v->str, v->len));
    sds s = sdsnewlen(v->str, v->len);
    cJSON *j = s ? cJSON_CreateString(s) : NULL;
    sdsfree(s);
    return j;
}

/* JavaScript's parseInt(text, 10): leading blanks, a sign, digits; NaN (JSON
 * null) without digits. */
static cJSON *js_parse_int(const char *s, size_t len) {
    size_t i = 0;
    while (i < len && isspace((unsigned char)s[i])) i++;
    bool neg = false;
    if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    double v = 0;
    size_t digits = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) v = v * 10 + (s[i] - '0');
    if (!digits) return cJSON_CreateNull();
    return cJSON_CreateNumber(neg ? -v : v);
}

static cJSON *field_int(const redisReply *h, const char *name, const char *dflt) {
    const redisReply *v = truthy(h, name);
    if (v) return js_parse_int(v->str, v->len);
    return dflt ? js_parse_int(dflt, strlen(dflt)) : cJSON_CreateNull();
}

/* A stored JSON text, parsed; when it does not parse, the text itself as a
 * string (Node would throw: bullc keeps the job readable). */
static cJSON *field_json(const redisReply *v, const char *dflt) {
    const char *s = v && v->len ? v->str : dflt;
    size_t len = v && v->len ? v->len : strlen(dflt);
    cJSON *j = bullc__parse_stored(s, len);
    if (j) return j;
    return v ? str_json(v) : NULL;
}

/* A stored value handed on (data, returnvalue, progress): parsed, unless
 * cJSON would change it, i.e. a string holding \u0000 (cut at the NUL) or
 * nesting past cJSON's depth limit (not parsed at all); those go on as the
 * stored text. NULL when the text is not JSON. */
static cJSON *stored_value(const char *s, size_t len) {
    cJSON *v = memmem(s, len, "\\u0000", 6) ? NULL : bullc__parse_stored(s, len);
    if (v || !bullc__json_parses(s, len)) return v;
    return raw_json(sdsnewlen(s, len));
}

static bool add(cJSON *o, const char *key, cJSON *item) {
    if (!item) return false;
    if (!cJSON_AddItemToObject(o, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* Node's optsFromJSON (short keys back to long names, tm/omc into
 * telemetry) and the Job constructor (repeatJobKey taken out, attempts
 * defaulted to 0, backoff normalised). *rjk receives a stored repeatJobKey. */
static cJSON *decode_opts(const redisReply *raw, cJSON **rjk) {
    cJSON *stored = field_json(raw, "{}");
    if (!stored) return NULL;
    if (!cJSON_IsObject(stored)) return stored; /* unreadable: kept as it is */
    cJSON *opts = cJSON_CreateObject();
    if (!opts || !add(opts, "attempts", cJSON_CreateNumber(0))) {
        cJSON_Delete(opts);
        cJSON_Delete(stored);
        return NULL;
    }
    while (stored->child) {
        cJSON *item = cJSON_DetachItemViaPointer(stored, stored->child);
        const char *name = bullc__opt_long(item->string);
        if (!name) name = item->string;
        bool ok = true;
        if (!strcmp(item->string, "tm") || !strcmp(item->string, "omc")) {
            cJSON *tel = cJSON_GetObjectItemCaseSensitive(opts, "telemetry");
            if (!tel && !(tel = cJSON_AddObjectToObject(opts, "telemetry"))) ok = false;
            const char *tn = item->string[0] == 't' ? "metadata" : "omitContext";
            if (ok) {
                cJSON_DeleteItemFromObjectCaseSensitive(tel, tn);
                ok = add(tel, tn, item);
            } else {
                cJSON_Delete(item);
            }
        } else if (!strcmp(name, "repeatJobKey")) {
            cJSON_Delete(*rjk);
            *rjk = item;
        } else {
            /* a later duplicate wins, as with JSON.parse */
            cJSON_DeleteItemFromObjectCaseSensitive(opts, name);
            sds n = sdsnew(name);
            ok = n && add(opts, n, item);
            if (!n) cJSON_Delete(item);
            sdsfree(n);
        }
        if (!ok) {
            cJSON_Delete(opts);
            cJSON_Delete(stored);
            return NULL;
        }
    }
    cJSON_Delete(stored);
    /* Backoffs.normalize: a finite number n is {type:'fixed', delay:n}, an
     * object is kept, anything falsy (0, null, false, "") disappears */
    cJSON *b = cJSON_GetObjectItemCaseSensitive(opts, "backoff");
    if (b) {
        if (cJSON_IsNumber(b) && b->valuedouble != 0) {
            cJSON *o = cJSON_CreateObject();
            if (!o || !add(o, "type", cJSON_CreateString("fixed")) ||
                !add(o, "delay", cJSON_CreateNumber(b->valuedouble)) || !cJSON_ReplaceItemViaPointer(opts, b, o)) {
                cJSON_Delete(o);
                cJSON_Delete(opts);
                return NULL;
            }
        } else if (cJSON_IsNull(b) || cJSON_IsFalse(b) || cJSON_IsNumber(b) ||
                   (cJSON_IsString(b) && !*b->valuestring)) {
            cJSON_DeleteItemFromObjectCaseSensitive(opts, "backoff");
        }
    }
    return opts;
}

cJSON *bullc__job_json(const char *id_str, size_t id_len, const redisReply *h) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    sds id = sdsnewlen(id_str, id_len);
    cJSON *rjk = NULL;
    bool ok = id && add(j, "id", cJSON_CreateString(id));
    sdsfree(id);
    const redisReply *name = hfield(h, "name");
    if (ok && name) ok = add(j, "name", str_json(name)); /* undefined (left out) without one */
    const redisReply *data = truthy(h, "data");
    cJSON *dv = data ? stored_value(data->str, data->len) : NULL;
    ok = ok && add(j, "data", dv ? dv : field_json(data, "{}"));
    cJSON *opts = ok ? decode_opts(truthy(h, "opts"), &rjk) : NULL;
    ok = ok && add(j, "opts", opts);
    const redisReply *pv = truthy(h, "progress");
    cJSON *progress = ok && pv ? stored_value(pv->str, pv->len) : NULL;
    if (ok && !progress) progress = field_json(pv, "0");
    if (cJSON_IsNull(progress)) { /* Job.fromJSON: progress ?? 0 */
        cJSON_Delete(progress);
        progress = cJSON_CreateNumber(0);
    }
    ok = ok && add(j, "progress", progress);
    /* attemptsMade: the legacy long name first, as Node reads it */
    const redisReply *atm = truthy(h, "attemptsMade");
    ok = ok && add(j, "attemptsMade", atm ? js_parse_int(atm->str, atm->len) : field_int(h, "atm", "0"));
    ok = ok && add(j, "attemptsStarted", field_int(h, "ats", "0"));
    ok = ok && add(j, "stalledCounter", field_int(h, "stc", "0"));
    const redisReply *ts = hfield(h, "timestamp");
    ok = ok && add(j, "timestamp", ts ? js_parse_int(ts->str, ts->len) : cJSON_CreateNull());
    /* processedOn / finishedOn only when set and not 0, as Job.fromJSON */
    static const char *const times[] = {"processedOn", "finishedOn"};
    for (int i = 0; ok && i < 2; i++) {
        const redisReply *v = truthy(h, times[i]);
        cJSON *n = v ? js_parse_int(v->str, v->len) : NULL;
        if (n && cJSON_IsNumber(n) && n->valuedouble != 0)
            ok = add(j, times[i], n);
        else
            cJSON_Delete(n);
    }
    /* returnvalue: null unless stored; a corrupt one is left out (undefined) */
    const redisReply *rv = hfield(h, "returnvalue");
    if (ok && !rv)
        ok = add(j, "returnvalue", cJSON_CreateNull());
    else if (ok) {
        cJSON *v = stored_value(rv->str, rv->len);
        if (v) ok = add(j, "returnvalue", v);
    }
    const redisReply *fr = truthy(h, "failedReason");
    if (ok && fr) ok = add(j, "failedReason", str_json(fr));
    /* stacktrace: an array, or [] */
    const redisReply *st = truthy(h, "stacktrace");
    cJSON *trace = st ? bullc__parse_stored(st->str, st->len) : NULL;
    if (!cJSON_IsArray(trace)) {
        cJSON_Delete(trace);
        trace = cJSON_CreateArray();
    }
    ok = ok && add(j, "stacktrace", trace);
    const redisReply *delay = hfield(h, "delay"), *prio = hfield(h, "priority");
    ok = ok && add(j, "delay", delay ? js_parse_int(delay->str, delay->len) : cJSON_CreateNull());
    ok = ok && add(j, "priority", prio ? js_parse_int(prio->str, prio->len) : cJSON_CreateNull());
    /* deduplicationId: the `deid` field, else the deduplication option's id */
    const redisReply *deid = truthy(h, "deid");
    if (ok && deid) {
        ok = add(j, "deduplicationId", str_json(deid));
    } else if (ok) {
        cJSON *de = cJSON_GetObjectItemCaseSensitive(opts, "deduplication");
        cJSON *did = cJSON_IsObject(de) ? cJSON_GetObjectItemCaseSensitive(de, "id") : NULL;
        if (did && !cJSON_IsNull(did)) ok = add(j, "deduplicationId", cJSON_Duplicate(did, 1));
    }
    const redisReply *rk = truthy(h, "rjk");
    if (ok && rk)
        ok = add(j, "repeatJobKey", str_json(rk));
    else if (ok && rjk && !cJSON_IsNull(rjk))
        ok = add(j, "repeatJobKey", cJSON_Duplicate(rjk, 1));
    const redisReply *pk = truthy(h, "parentKey");
    if (ok && pk) ok = add(j, "parentKey", str_json(pk));
    const redisReply *parent = truthy(h, "parent");
    if (ok && parent) {
        cJSON *p = bullc__parse_stored(parent->str, parent->len);
        ok = add(j, "parent", p ? p : str_json(parent));
    }
    const redisReply *pb = truthy(h, "pb");
    if (ok && pb) ok = add(j, "processedBy", str_json(pb));
    const redisReply *defa = truthy(h, "defa");
    if (ok && defa) ok = add(j, "deferredFailure", str_json(defa));
    cJSON_Delete(rjk);
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}
