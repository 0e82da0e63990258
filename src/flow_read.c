/* SPDX-License-Identifier: MIT */
/* Reading flows: a parent's dependencies (Node's job.getDependencies and
 * friends, read from "<job key>:processed", ":dependencies", ":failed" and
 * ":unsuccessful") and whole trees (Node's flowProducer.getFlow). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* The four kinds of dependency, in the order Node lists a tree's children. */
enum { D_PROCESSED, D_UNPROCESSED, D_FAILED, D_IGNORED, D_N };
static const char *const dep_names[D_N] = {"processed", "unprocessed", "failed", "ignored"};

/* One page of one kind: Node's {cursor, count}; `on` false: not asked for. */
typedef struct dep_page {
    bool on;
    long long cursor, count;
} dep_page;

/* Node's DependenciesOpts as pages; NULL JSON: none asked (everything). */
static int parse_pages(const char *json, dep_page pages[D_N], bool *paged, bullc_error *err) {
    memset(pages, 0, D_N * sizeof *pages);
    *paged = false;
    if (!json) return 0;
    cJSON *o = cJSON_Parse(json);
    int rc = 0;
    if (!cJSON_IsObject(o)) rc = bullc__err(err, BULLC_EINVAL, "dependencies options must be a JSON object");
    for (const cJSON *c = o ? o->child : NULL; c && !rc; c = c->next) {
        int k = 0;
        while (k < D_N && strcmp(c->string, dep_names[k])) k++;
        if (k == D_N) {
            rc = bullc__err(err, BULLC_EINVAL, "dependencies options: unknown field '%s'", c->string);
            break;
        }
        if (cJSON_IsNull(c) || cJSON_IsFalse(c)) continue;
        dep_page *p = &pages[k];
        p->on = *paged = true;
        p->count = 20; /* Node's defaults: {cursor: 0, count: 20} */
        const cJSON *cur = cJSON_GetObjectItemCaseSensitive(c, "cursor");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(c, "count");
        if ((cur && !cJSON_IsNumber(cur)) || (cnt && !cJSON_IsNumber(cnt)) || (cur && cur->valuedouble < 0) ||
            (cnt && cnt->valuedouble < 1))
            rc = bullc__err(err, BULLC_EINVAL, "dependencies options: %s needs {cursor >= 0, count >= 1}", c->string);
        if (cur) p->cursor = (long long)cur->valuedouble;
        if (cnt) p->count = (long long)cnt->valuedouble;
    }
    cJSON_Delete(o);
    return rc;
}

/* Appends the reads of one job's dependencies: all of them (no page asked
 * for), else the pages asked for; returns how many commands. */
static int append_deps(bullc__conn *c, const char *job_key, const dep_page pages[D_N], bool paged, bullc_error *err) {
    static const char *const suffix[D_N] = {":processed", ":dependencies", ":unsuccessful", ":failed"};
    int n = 0, rc = 0;
    for (int k = 0; k < D_N && !rc; k++) {
        if (paged && !pages[k].on) continue;
        sds key = sdscat(sdsnew(job_key), suffix[k]);
        char a[24], b[24];
        snprintf(a, sizeof a, "%lld", paged ? pages[k].cursor : 0);
        snprintf(b, sizeof b, "%lld", paged ? pages[k].count - (k == D_FAILED) : -1);
        const char *all[D_N] = {"HGETALL", "SMEMBERS", "ZRANGE", "HGETALL"};
        const char *scan[D_N] = {"HSCAN", "SSCAN", "ZRANGE", "HSCAN"};
        /* Node's ZRANGE of failed children ends at count - 1, not at
         * cursor + count - 1: kept, the pages must match Node's */
        const char *argv[] = {paged ? scan[k] : all[k], key, a, k == D_FAILED ? b : "COUNT", b};
        int argc = !paged ? (k == D_FAILED ? 4 : 2) : k == D_FAILED ? 4 : 5;
        if (!paged && k == D_FAILED) argv[2] = "0", argv[3] = "-1";
        if (!key)
            rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        else
            rc = bullc__conn_append(c, argc, argv, NULL, err);
        sdsfree(key);
        n++;
    }
    if (rc) bullc__conn_drop(c);
    return rc ? rc : n;
}

/* A hash's field/value pairs as an object; values parsed as JSON when
 * `parse` (Node's parseObjectValues), strings otherwise. */
static cJSON *pairs(const redisReply *arr, bool parse) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i + 1 < arr->elements; i += 2) {
        const redisReply *f = arr->element[i], *v = arr->element[i + 1];
        cJSON *val = parse ? bullc__parse_stored(v->str, v->len) : NULL;
        if (!val) val = cJSON_CreateString(v->str ? v->str : "");
        sds name = sdsnewlen(f->str, f->len);
        if (!val || !name || !cJSON_AddItemToObject(o, name, val)) {
            cJSON_Delete(val);
            sdsfree(name);
            cJSON_Delete(o);
            return NULL;
        }
        sdsfree(name);
    }
    return o;
}

static cJSON *strings(const redisReply *arr) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < arr->elements; i++) {
        sds s = sdsnewlen(arr->element[i]->str, arr->element[i]->len);
        cJSON *v = s ? cJSON_CreateString(s) : NULL;
        sdsfree(s);
        if (!v || !cJSON_AddItemToArray(a, v)) {
            cJSON_Delete(v);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static bool add_cursor(cJSON *o, const char *name, const redisReply *scan) {
    const redisReply *c = scan->element[0];
    return cJSON_AddNumberToObject(o, name, strtod(c->str ? c->str : "0", NULL)) != NULL;
}

/* Reads the replies of append_deps into Node's shape: {processed,
 * unprocessed, failed, ignored}, or with pages {processed,
 * nextProcessedCursor, ignored, nextIgnoredCursor, failed, nextFailedCursor,
 * unprocessed, nextUnprocessedCursor} for the kinds asked for. */
static int read_deps(bullc__conn *c, const dep_page pages[D_N], bool paged, cJSON **out, bullc_error *err) {
    redisReply *r[D_N] = {0};
    int rc = 0;
    for (int k = 0; k < D_N; k++) {
        if (paged && !pages[k].on) continue;
        int rrc = bullc__conn_read(c, &r[k], rc ? NULL : err);
        if (rrc && !rc) rc = rrc;
        if (!rc && r[k]->type == REDIS_REPLY_ERROR) rc = bullc__reply_err(r[k], err);
        if (!rc && (r[k]->type != REDIS_REPLY_ARRAY ||
                    (paged && k != D_FAILED && (r[k]->elements != 2 || r[k]->element[1]->type != REDIS_REPLY_ARRAY))))
            rc = bullc__err(err, BULLC_EPROTO, "dependencies: unexpected reply");
        if (rrc) break;
    }
    cJSON *o = rc ? NULL : cJSON_CreateObject();
    bool ok = o != NULL;
    if (ok && !paged) {
        ok = cJSON_AddItemToObject(o, "processed", pairs(r[D_PROCESSED], true)) &&
             cJSON_AddItemToObject(o, "unprocessed", strings(r[D_UNPROCESSED])) &&
             cJSON_AddItemToObject(o, "failed", strings(r[D_FAILED])) &&
             cJSON_AddItemToObject(o, "ignored", pairs(r[D_IGNORED], false));
    } else if (ok) {
        if (pages[D_PROCESSED].on)
            ok = cJSON_AddItemToObject(o, "processed", pairs(r[D_PROCESSED]->element[1], true)) &&
                 add_cursor(o, "nextProcessedCursor", r[D_PROCESSED]);
        if (ok && pages[D_IGNORED].on)
            ok = cJSON_AddItemToObject(o, "ignored", pairs(r[D_IGNORED]->element[1], false)) &&
                 add_cursor(o, "nextIgnoredCursor", r[D_IGNORED]);
        if (ok && pages[D_FAILED].on && pages[D_FAILED].cursor + pages[D_FAILED].count)
            ok = cJSON_AddItemToObject(o, "failed", strings(r[D_FAILED])) &&
                 cJSON_AddNumberToObject(o, "nextFailedCursor",
                                         (double)(pages[D_FAILED].cursor + pages[D_FAILED].count));
        if (ok && pages[D_UNPROCESSED].on)
            ok = cJSON_AddItemToObject(o, "unprocessed", strings(r[D_UNPROCESSED]->element[1])) &&
                 add_cursor(o, "nextUnprocessedCursor", r[D_UNPROCESSED]);
    }
    for (int k = 0; k < D_N; k++) freeReplyObject(r[k]);
    if (rc) return rc;
    if (!ok) {
        cJSON_Delete(o);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    *out = o;
    return 0;
}

static int job_key_of(bullc_queue *q, const char *id, sds *out, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (!(*out = bullc__job_key(bullc__queue_keys(q), id, BULLC__K_JOB)))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    return 0;
}

int bullc_queue_get_dependencies(bullc_queue *q, const char *job_id, const char *opts_json, char **out_json,
                                 bullc_error *err) {
    dep_page pages[D_N];
    bool paged;
    sds key = NULL;
    bullc__conn *c;
    cJSON *o = NULL;
    int rc = parse_pages(opts_json, pages, &paged, err);
    if (!rc) rc = job_key_of(q, job_id, &key, err);
    if (!rc) rc = bullc__queue_conn(q, &c, err);
    if (!rc && (rc = append_deps(c, key, pages, paged, err)) > 0) rc = read_deps(c, pages, paged, &o, err);
    sdsfree(key);
    return rc ? rc : bullc__json_out(o, out_json, err);
}

int bullc_queue_get_dependencies_count(bullc_queue *q, const char *job_id, int64_t counts[4], bullc_error *err) {
    sds key = NULL;
    bullc__conn *c;
    int rc = job_key_of(q, job_id, &key, err);
    if (!rc) rc = bullc__queue_conn(q, &c, err);
    /* what Node's getDependencyCounts script counts, read directly */
    static const char *const cmd[D_N] = {"HLEN", "SCARD", "ZCARD", "HLEN"};
    static const char *const suffix[D_N] = {":processed", ":dependencies", ":unsuccessful", ":failed"};
    for (int k = 0; k < D_N && !rc; k++) {
        sds kk = sdscat(sdsdup(key), suffix[k]);
        const char *argv[] = {cmd[k], kk};
        rc = kk ? bullc__conn_append(c, 2, argv, NULL, err) : bullc__err(err, BULLC_ENOMEM, "out of memory");
        sdsfree(kk);
        if (rc) bullc__conn_drop(c);
    }
    sdsfree(key);
    for (int k = 0; k < D_N && !rc; k++) {
        redisReply *r = NULL;
        if ((rc = bullc__conn_read(c, &r, err))) break;
        if (r->type == REDIS_REPLY_INTEGER)
            counts[k] = r->integer;
        else
            rc = r->type == REDIS_REPLY_ERROR ? bullc__reply_err(r, err)
                                              : bullc__err(err, BULLC_EPROTO, "dependency count: unexpected reply");
        freeReplyObject(r);
        /* keep reading: the pipeline must stay in step */
        for (int rest = k + 1; rc && rest < D_N; rest++)
            if (!bullc__conn_read(c, &r, NULL)) freeReplyObject(r);
    }
    return rc;
}

/* One hash of a parent's (":processed" or ":failed") as an object. */
static int read_hash(bullc_queue *q, const char *job_id, const char *suffix, bool parse, char **out_json,
                     bullc_error *err) {
    sds key = NULL;
    int rc = job_key_of(q, job_id, &key, err);
    if (rc) return rc;
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HGETALL");
    bullc__args_own(&a, sdscat(key, suffix));
    redisReply *r = NULL;
    rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    cJSON *o = r->type == REDIS_REPLY_ARRAY ? pairs(r, parse) : NULL;
    if (r->type != REDIS_REPLY_ARRAY) rc = bullc__err(err, BULLC_EPROTO, "HGETALL: unexpected reply type %d", r->type);
    freeReplyObject(r);
    if (rc) return rc;
    return o ? bullc__json_out(o, out_json, err) : bullc__err(err, BULLC_ENOMEM, "out of memory");
}

int bullc_queue_get_children_values(bullc_queue *q, const char *job_id, char **out_json, bullc_error *err) {
    return read_hash(q, job_id, ":processed", true, out_json, err);
}

int bullc_queue_get_ignored_children_failures(bullc_queue *q, const char *job_id, char **out_json, bullc_error *err) {
    return read_hash(q, job_id, ":failed", false, out_json, err);
}

/* ---- getFlow ------------------------------------------------------------------ */

/* Node's getNode: the job, then (depth left) the first `max` children of each
 * kind, each read the same way. A job that does not exist is JSON null. */
static int get_node(bullc__conn *c, const char *prefix, const char *queue, const char *id, int depth, int max,
                    cJSON **out, bullc_error *err) {
    sds key = sdscatprintf(sdsempty(), "%s:%s:%s", prefix, queue, id);
    if (!key) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    dep_page pages[D_N];
    for (int k = 0; k < D_N; k++) pages[k] = (dep_page){true, 0, max};
    const char *argv[] = {"HGETALL", key};
    int rc = bullc__conn_append(c, 2, argv, NULL, err);
    if (rc) bullc__conn_drop(c);
    if (!rc && (rc = append_deps(c, key, pages, true, err)) > 0) rc = 0;
    sdsfree(key);
    if (rc) return rc;
    redisReply *h = NULL;
    cJSON *deps = NULL;
    if ((rc = bullc__conn_read(c, &h, err))) return rc;
    rc = read_deps(c, pages, true, &deps, err);
    if (!rc && h->type != REDIS_REPLY_ARRAY) rc = bullc__err(err, BULLC_EPROTO, "HGETALL: unexpected reply");
    if (rc || h->elements == 0) {
        freeReplyObject(h);
        cJSON_Delete(deps);
        if (!rc) *out = cJSON_CreateNull();
        return rc ? rc : *out ? 0 : bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    cJSON *node = cJSON_CreateObject();
    cJSON *job = bullc__job_json(id, strlen(id), h);
    freeReplyObject(h);
    if (!node || !job || !cJSON_AddItemToObject(node, "job", job)) {
        if (!cJSON_IsObject(node) || !job) cJSON_Delete(job);
        cJSON_Delete(node);
        cJSON_Delete(deps);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    /* children: processed, unprocessed, failed, ignored, as Node lists them */
    cJSON *kids = NULL;
    const cJSON *kinds[] = {
        cJSON_GetObjectItemCaseSensitive(deps, "processed"), cJSON_GetObjectItemCaseSensitive(deps, "unprocessed"),
        cJSON_GetObjectItemCaseSensitive(deps, "failed"), cJSON_GetObjectItemCaseSensitive(deps, "ignored")};
    int count = 0;
    for (int k = 0; k < D_N; k++) count += cJSON_GetArraySize(kinds[k]);
    if (count > 0 && depth - 1 != 0 && !(kids = cJSON_AddArrayToObject(node, "children")))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    for (int k = 0; kids && k < D_N && !rc; k++)
        for (const cJSON *e = kinds[k]->child; e && !rc; e = e->next) {
            /* Node's parseNodeKey: "<prefix>:<queue>:<id>" split at its last two ':' */
            const char *ck = cJSON_IsArray(kinds[k]) ? e->valuestring : e->string; /* a list, or keys to values */
            const char *last = strrchr(ck, ':'), *prev = NULL;
            for (const char *p = ck; last && p < last; p++)
                if (*p == ':') prev = p;
            if (!prev) continue;
            sds cp = sdsnewlen(ck, (size_t)(prev - ck)), cq = sdsnewlen(prev + 1, (size_t)(last - prev - 1));
            cJSON *child = NULL;
            rc = cp && cq ? get_node(c, cp, cq, last + 1, depth - 1, max, &child, err)
                          : bullc__err(err, BULLC_ENOMEM, "out of memory");
            sdsfree(cp), sdsfree(cq);
            if (!rc && !cJSON_AddItemToArray(kids, child)) {
                cJSON_Delete(child);
                rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
            }
        }
    cJSON_Delete(deps);
    if (rc) {
        cJSON_Delete(node);
        return rc;
    }
    *out = node;
    return 0;
}

int bullc__flow_get(bullc__conn *c, const char *prefix, const char *queue, const char *id, int depth, int max_children,
                    char **out_json, bullc_error *err) {
    int rc = bullc__validate_queue_name(queue, err);
    if (!rc) rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (depth < 1 || max_children < 1)
        return bullc__err(err, BULLC_EINVAL, "getFlow: depth and maxChildren must be at least 1");
    cJSON *tree = NULL;
    if ((rc = bullc__conn_ensure(c, err)) || (rc = get_node(c, prefix, queue, id, depth, max_children, &tree, err)))
        return rc;
    if (cJSON_IsNull(tree)) {
        cJSON_Delete(tree);
        return bullc__err(err, BULLC_ENOTFOUND, "job %s not found in queue %s", id, queue);
    }
    return bullc__json_out(tree, out_json, err);
}

/* ---- Node's queue.getDependencies(parent, type, start, end) -------------------------- */

/* Appends one paginate reply's items and jobs; `hash`: items are [field,
 * value] pairs (Node's {id, v} or {id, err} when the value is not JSON). */
static bool add_page(const redisReply *items, const redisReply *jobs, cJSON *out_items, cJSON *out_jobs, size_t *n) {
    for (size_t i = 0; i < items->elements; i++) {
        const redisReply *it = items->element[i];
        const redisReply *id = it->type == REDIS_REPLY_ARRAY && it->elements == 2 ? it->element[0] : it;
        cJSON *o = cJSON_CreateObject();
        sds s = sdsnewlen(id->str ? id->str : "", id->len);
        bool ok = o && s && cJSON_AddStringToObject(o, "id", s);
        sdsfree(s);
        if (ok && id != it) {
            const redisReply *v = it->element[1];
            cJSON *val = bullc__parse_stored(v->str, v->len);
            /* JSON.parse's message for what it refuses */
            ok = val ? cJSON_AddItemToObject(o, "v", val)
                     : cJSON_AddStringToObject(o, "err", "Unexpected token, not valid JSON") != NULL;
        }
        if (!ok || !cJSON_AddItemToArray(out_items, o)) {
            cJSON_Delete(o);
            return false;
        }
        (*n)++;
        const redisReply *h = jobs && i < jobs->elements ? jobs->element[i] : NULL;
        if (!h || h->type != REDIS_REPLY_ARRAY || !h->elements) continue; /* the child's hash is gone */
        const char *last = strrchr(id->str ? id->str : "", ':');
        const char *jid = last ? last + 1 : id->str;
        cJSON *j = bullc__job_json(jid, id->len - (size_t)(jid - id->str), h);
        if (!j || !cJSON_AddItemToArray(out_jobs, j)) {
            cJSON_Delete(j);
            return false;
        }
    }
    return true;
}

int bullc_queue_get_dependencies_page(bullc_queue *q, const char *job_id, const char *type, int64_t start, int64_t end,
                                      char **out_json, bullc_error *err) {
    bool processed = type && !strcmp(type, "processed");
    if (!type || (!processed && strcmp(type, "pending")))
        return bullc__err(err, BULLC_EINVAL, "dependencies type must be \"processed\" or \"pending\"");
    if (start < 0 || end < -1 || (end >= 0 && end < start))
        return bullc__err(err, BULLC_EINVAL, "dependencies page: start >= 0 and end >= start, or -1 for all");
    int rc = bullc__check_job_id(job_id, err);
    if (rc) return rc;
    bullc__call_id call = processed ? BULLC__C_PAGINATE_PROCESSED : BULLC__C_PAGINATE_PENDING;
    cJSON *o = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(o, "items"),
          *jobs = cJSON_AddArrayToObject(o, "jobs");
    if (!items || !jobs) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    /* Node's paginate: up to 5 scan rounds a call, called again from the
     * cursor it stopped at until the page is full or the scan is over */
    sds cursor = sdsnew("0");
    long long offset = 0, total = 0;
    size_t n = 0;
    do {
        bullc__args a;
        bullc__args_call(&a, q, call, job_id, 0);
        bullc__args_i64(&a, start + (int64_t)n);
        bullc__args_i64(&a, end);
        bullc__args_add(&a, cursor);
        bullc__args_i64(&a, offset);
        bullc__args_add(&a, "5");
        bullc__args_add(&a, "1");
        redisReply *r = NULL;
        if (!rc) rc = bullc__args_eval(q, call, &a, &r, err);
        bullc__args_free(&a);
        if (rc) break;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 4 || r->element[2]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            rc = bullc__err(err, BULLC_EPROTO, "paginate: unexpected reply");
            break;
        }
        const redisReply *c = r->element[0];
        sdsfree(cursor);
        cursor = c->type == REDIS_REPLY_INTEGER ? sdsfromlonglong(c->integer) : sdsnewlen(c->str, c->len);
        offset = r->element[1]->integer;
        total = r->element[3]->integer;
        if (!cursor || !add_page(r->element[2], r->elements > 4 ? r->element[4] : NULL, items, jobs, &n))
            rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        freeReplyObject(r);
    } while (!rc && strcmp(cursor, "0") && (end < 0 || (int64_t)n < end - start + 1));
    if (!rc && (!cJSON_AddNumberToObject(o, "total", (double)total) || !cJSON_AddStringToObject(o, "cursor", cursor)))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    sdsfree(cursor);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    return bullc__json_out(o, out_json, err);
}
