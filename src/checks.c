/* SPDX-License-Identifier: MIT */
/* Startup guard rails: the server settings under which BullMQ loses jobs,
 * checked before a program starts (Node's workers only warn about some). */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* "field:value\r\n" out of an INFO text, or NULL. */
static sds info_field(const char *info, const char *field) {
    size_t n = strlen(field);
    for (const char *p = info; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, field, n) && p[n] == ':') {
            const char *v = p + n + 1, *e = v;
            while (*e && *e != '\r' && *e != '\n') e++;
            return sdsnewlen(v, (size_t)(e - v));
        }
    }
    return NULL;
}

/* CONFIG GET name -> value, or NULL when CONFIG is forbidden. */
static sds config_get(bullc__conn *c, const char *name) {
    const char *argv[] = {"CONFIG", "GET", name};
    redisReply *r = NULL;
    if (bullc__conn_command(c, &r, NULL, 3, argv, NULL)) return NULL;
    sds v = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING)
        v = sdsnewlen(r->element[1]->str, r->element[1]->len);
    freeReplyObject(r);
    return v;
}

static bool has_hash_tag(const char *s) {
    const char *o = strchr(s, '{');
    const char *c = o ? strchr(o + 1, '}') : NULL;
    return c && c > o + 1;
}

/* The server's part of the report (one read for any number of queues):
 * whether it is a cluster. */
static bool check_the_server(bullc__conn *c, cJSON *rep, cJSON *errors, cJSON *warnings) {
    redisReply *r = NULL;
    const char *info[] = {"INFO"};
    sds version = NULL, mode = NULL, cluster = NULL;
    if (bullc__conn_command(c, &r, NULL, 1, info, NULL) == 0 && r->type == REDIS_REPLY_STRING) {
        version = info_field(r->str, "redis_version");
        mode = info_field(r->str, "redis_mode");
        cluster = info_field(r->str, "cluster_enabled");
    } else {
        cJSON_AddItemToArray(warnings, cJSON_CreateString("INFO is not allowed: server checks skipped"));
    }
    freeReplyObject(r);
    if (version)
        cJSON_AddStringToObject(rep, "redisVersion", version);
    else
        cJSON_AddNullToObject(rep, "redisVersion");
    bool is_cluster = (cluster && !strcmp(cluster, "1")) || (mode && !strcmp(mode, "cluster"));
    cJSON_AddBoolToObject(rep, "cluster", is_cluster);
    sdsfree(version), sdsfree(mode), sdsfree(cluster);

    sds policy = config_get(c, "maxmemory-policy");
    if (policy) {
        cJSON_AddStringToObject(rep, "maxmemoryPolicy", policy);
        if (strcmp(policy, "noeviction")) {
            sds m = sdscatprintf(sdsempty(),
                                 "maxmemory-policy is %s: Redis may evict job keys and lose jobs; BullMQ needs "
                                 "noeviction",
                                 policy);
            cJSON_AddItemToArray(errors, cJSON_CreateString(m));
            sdsfree(m);
        }
        sds aof = config_get(c, "appendonly"), save = config_get(c, "save");
        bool a = aof && !strcmp(aof, "yes"), s = save && *save;
        cJSON_AddStringToObject(rep, "persistence", a && s ? "aof+rdb" : a ? "aof" : s ? "rdb" : "none");
        if (!a && !s)
            cJSON_AddItemToArray(warnings, cJSON_CreateString("persistence is off (no AOF, no RDB): a Redis "
                                                              "restart loses every queue"));
        sdsfree(aof);
        sdsfree(save);
    } else {
        cJSON_AddNullToObject(rep, "maxmemoryPolicy");
        cJSON_AddNullToObject(rep, "persistence");
        cJSON_AddItemToArray(warnings, cJSON_CreateString("CONFIG is not allowed: eviction policy and "
                                                          "persistence not checked"));
    }
    sdsfree(policy);
    return is_cluster;
}

/* A queue's part of the report into `obj`, from its meta.version (NULL: none). */
static void check_the_queue(bullc_queue *q, bool is_cluster, const char *meta_version, cJSON *obj, cJSON *errors) {
    bool tagged = has_hash_tag(bullc_queue_prefix(q)) || has_hash_tag(bullc_queue_name(q));
    cJSON_AddBoolToObject(obj, "hashTagged", tagged);
    if (is_cluster && !tagged)
        cJSON_AddItemToArray(errors, cJSON_CreateString("Redis Cluster needs a hash-tagged prefix such as "
                                                        "\"{bull}\" (all of a queue's keys must share a slot)"));
    if (meta_version)
        cJSON_AddStringToObject(obj, "queueVersion", meta_version);
    else
        cJSON_AddNullToObject(obj, "queueVersion");
    /* the major the queue's handles would settle on, as they do */
    const bullc__protocol *p;
    bool write_version;
    bullc_error e = {0};
    if (bullc__protocol_settle(bullc_queue_name(q), bullc__queue_explicit_major(q), meta_version, NULL, &p,
                               &write_version, &e)) {
        cJSON_AddNullToObject(obj, "bullmqVersion");
        cJSON_AddItemToArray(errors, cJSON_CreateString(e.message));
    } else {
        cJSON_AddNumberToObject(obj, "bullmqVersion", p->major);
    }
}

static const char *meta_version_of(const redisReply *r) { return r && r->type == REDIS_REPLY_STRING ? r->str : NULL; }

static int finish_report(cJSON *rep, cJSON *errors, cJSON *warnings, char **report_json, bullc_error *err) {
    cJSON_AddItemToObject(rep, "errors", errors);
    cJSON_AddItemToObject(rep, "warnings", warnings);
    *report_json = cJSON_PrintUnformatted(rep);
    cJSON_Delete(rep);
    return *report_json ? 0 : bullc__err(err, BULLC_ENOMEM, "out of memory");
}

int bullc_queue_check_server(bullc_queue *q, char **report_json, bullc_error *err) {
    if (!report_json) return bullc__err(err, BULLC_EINVAL, "report_json is required");
    bullc__conn c;
    int rc = bullc__conn_init(&c, bullc__queue_redis_opts(q), err);
    if (rc) return rc;
    if ((rc = bullc__conn_ensure(&c, err))) {
        bullc__conn_close(&c);
        return rc;
    }
    cJSON *rep = cJSON_CreateObject(), *errors = cJSON_CreateArray(), *warnings = cJSON_CreateArray();
    bool is_cluster = check_the_server(&c, rep, errors, warnings);
    redisReply *r = NULL;
    const sds meta = bullc__queue_keys(q)->k[BULLC__K_META];
    const char *hget[] = {"HGET", meta, "version"};
    if (bullc__conn_command(&c, &r, NULL, 3, hget, NULL)) r = NULL;
    check_the_queue(q, is_cluster, meta_version_of(r), rep, errors);
    freeReplyObject(r);
    bullc__conn_close(&c);
    return finish_report(rep, errors, warnings, report_json, err);
}

int bullc_queue_check_servers(bullc_queue *const *queues, size_t count, char **report_json, bullc_error *err) {
    if (!report_json || !queues || !count) return bullc__err(err, BULLC_EINVAL, "queues and report_json are required");
    bullc__conn c;
    int rc = bullc__conn_init(&c, bullc__queue_redis_opts(queues[0]), err);
    if (rc) return rc;
    if ((rc = bullc__conn_ensure(&c, err))) {
        bullc__conn_close(&c);
        return rc;
    }
    cJSON *rep = cJSON_CreateObject(), *errors = cJSON_CreateArray(), *warnings = cJSON_CreateArray();
    cJSON *list = cJSON_AddArrayToObject(rep, "queues");
    bool is_cluster = check_the_server(&c, rep, errors, warnings);
    /* in slices, so that neither side holds thousands of replies at once */
    enum { SLICE = 512 };
    for (size_t i = 0; !rc && i < count; i += SLICE) {
        size_t n = count - i < SLICE ? count - i : SLICE;
        for (size_t k = 0; !rc && k < n; k++) {
            const char *hget[] = {"HGET", bullc__queue_keys(queues[i + k])->k[BULLC__K_META], "version"};
            rc = bullc__conn_append(&c, 3, hget, NULL, err);
        }
        for (size_t k = 0; !rc && k < n; k++) {
            redisReply *r = NULL;
            if ((rc = bullc__conn_read(&c, &r, err))) break;
            cJSON *obj = cJSON_CreateObject(), *qerrors = cJSON_CreateArray();
            cJSON_AddStringToObject(obj, "name", bullc_queue_name(queues[i + k]));
            check_the_queue(queues[i + k], is_cluster, meta_version_of(r), obj, qerrors);
            cJSON_AddItemToObject(obj, "errors", qerrors);
            cJSON_AddItemToArray(list, obj);
            freeReplyObject(r);
        }
    }
    bullc__conn_close(&c);
    if (rc) {
        cJSON_Delete(rep), cJSON_Delete(errors), cJSON_Delete(warnings);
        return rc;
    }
    return finish_report(rep, errors, warnings, report_json, err);
}
