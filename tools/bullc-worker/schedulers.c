/* SPDX-License-Identifier: MIT */
/* The config file's "schedulers": job schedulers upserted at start, as a
 * NestJS app upserts its schedulers at boot. Every entry is checked (the
 * options, the pattern and zone, the template) before the first is
 * written, so a bad file changes nothing in Redis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cJSON.h>

#include "bw.h"
#include "tlog.h"

typedef struct entry {
    const char *queue, *key, *prefix, *name;
    char *data; /* JSON text, or NULL */
    bullc_scheduler_opts *repeat;
    bullc_job_opts *opts;
} entry;

static void entry_free(entry *e) {
    bullc_scheduler_opts_free(e->repeat);
    bullc_job_opts_free(e->opts);
    free(e->data);
    memset(e, 0, sizeof *e);
}

static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static bool whole(const cJSON *v, double min) {
    return cJSON_IsNumber(v) && v->valuedouble >= min && v->valuedouble <= 9007199254740991.0 &&
           v->valuedouble == (double)(int64_t)v->valuedouble;
}

/* Reads schedulers[i] into `e`; 0, or a message in `why`. */
static int read_entry(const cJSON *o, entry *e, char *why, size_t size) {
    memset(e, 0, sizeof *e);
    if (!cJSON_IsObject(o)) return snprintf(why, size, "must be an object"), -1;
    if (bullc_scheduler_opts_new(&e->repeat) || bullc_job_opts_new(&e->opts))
        return snprintf(why, size, "out of memory"), -1;
    const char *pattern = NULL, *tz = NULL;
    bool immediately = false, has_start = false;
    for (const cJSON *v = o->child; v; v = v->next) {
        const char *k = v->string;
        int rc = 0;
        if (!strcmp(k, "queue") || !strcmp(k, "key") || !strcmp(k, "prefix") || !strcmp(k, "name") ||
            !strcmp(k, "pattern") || !strcmp(k, "tz")) {
            if (!cJSON_IsString(v) || !*v->valuestring)
                return snprintf(why, size, "%s must be a non-empty string", k), -1;
            const char **dst = !strcmp(k, "queue")    ? &e->queue
                               : !strcmp(k, "key")    ? &e->key
                               : !strcmp(k, "prefix") ? &e->prefix
                               : !strcmp(k, "name")   ? &e->name
                               : !strcmp(k, "tz")     ? &tz
                                                      : &pattern;
            *dst = v->valuestring;
        } else if (!strcmp(k, "every") || !strcmp(k, "limit") || !strcmp(k, "startDate") || !strcmp(k, "endDate") ||
                   !strcmp(k, "offset")) {
            bool every = !strcmp(k, "every");
            if (!whole(v, every ? 1 : 0))
                return snprintf(why, size, "%s must be a whole number %s", k, every ? ">= 1 (ms)" : ">= 0"), -1;
            int64_t n = (int64_t)v->valuedouble;
            rc = every                     ? bullc_scheduler_opts_set_every(e->repeat, n)
                 : !strcmp(k, "limit")     ? bullc_scheduler_opts_set_limit(e->repeat, n)
                 : !strcmp(k, "startDate") ? bullc_scheduler_opts_set_start_date(e->repeat, n)
                 : !strcmp(k, "endDate")   ? bullc_scheduler_opts_set_end_date(e->repeat, n)
                                           : bullc_scheduler_opts_set_offset(e->repeat, n);
            has_start |= !strcmp(k, "startDate") && n > 0;
        } else if (!strcmp(k, "immediately")) {
            if (!cJSON_IsBool(v)) return snprintf(why, size, "immediately must be true or false"), -1;
            immediately = cJSON_IsTrue(v);
            rc = bullc_scheduler_opts_set_immediately(e->repeat, immediately);
        } else if (!strcmp(k, "data")) {
            if (!(e->data = cJSON_PrintUnformatted(v))) return snprintf(why, size, "out of memory"), -1;
        } else if (!strcmp(k, "opts")) {
            char *text = cJSON_IsObject(v) ? cJSON_PrintUnformatted(v) : NULL;
            bullc_error err = {0};
            if (!cJSON_IsObject(v)) return snprintf(why, size, "opts must be an object (Node's job options)"), -1;
            rc = text ? bullc_job_opts_merge_json(e->opts, text, &err) : BULLC_ENOMEM;
            free(text);
            if (rc < 0) return snprintf(why, size, "opts: %s", err.message), -1;
            rc = bullc_job_opts_validate(e->opts, &err);
            if (rc < 0) return snprintf(why, size, "opts: %s", err.message), -1;
        } else {
            return snprintf(why, size, "unknown key '%s'", k), -1;
        }
        if (rc < 0) return snprintf(why, size, "%s: %s", k, bullc_strerror(rc)), -1;
    }
    if (!e->queue || !e->key) return snprintf(why, size, "queue and key are required"), -1;
    if (strchr(e->queue, ':')) return snprintf(why, size, "queue name '%s' must not contain ':'", e->queue), -1;
    if (tz && !pattern) return snprintf(why, size, "tz goes with pattern"), -1;
    if (pattern && bullc_scheduler_opts_set_pattern(e->repeat, pattern, tz))
        return snprintf(why, size, "out of memory"), -1;
    bool every = cJSON_GetObjectItemCaseSensitive(o, "every") != NULL;
    if (!!pattern == every) return snprintf(why, size, "give one of every and pattern"), -1;
    if (immediately && has_start)
        return snprintf(why, size, "Both .immediately and .startDate options are defined"), -1;
    const cJSON *end = cJSON_GetObjectItemCaseSensitive(o, "endDate");
    if (end && end->valuedouble > 0 && end->valuedouble < (double)now_ms())
        return snprintf(why, size, "End date must be greater than current timestamp"), -1;
    if (pattern) {
        int64_t next;
        bullc_error err = {0};
        int rc = bullc_cron_next(pattern, tz, now_ms(), &next, &err);
        if (rc && rc != BULLC_ENOTFOUND) return snprintf(why, size, "pattern: %s", err.message), -1;
    }
    return 0;
}

int bw_schedulers_check(const cJSON *list, char *why, size_t size) {
    if (!cJSON_IsArray(list)) return snprintf(why, size, "schedulers must be an array of objects"), -1;
    int i = 0;
    for (const cJSON *o = list->child; o; o = o->next, i++) {
        entry e;
        char msg[400];
        int rc = read_entry(o, &e, msg, sizeof msg);
        entry_free(&e);
        if (rc) return snprintf(why, size, "schedulers[%d]: %s", i, msg), -1;
    }
    return 0;
}

int bw_schedulers_upsert(const bw_config *cfg, const bullc_redis_opts *redis) {
    const cJSON *list = cfg->schedulers;
    int i = 0;
    for (const cJSON *o = list ? list->child : NULL; o; o = o->next, i++) {
        entry e;
        char why[400];
        if (read_entry(o, &e, why, sizeof why)) {
            entry_free(&e);
            TLOG(TLOG_ERROR, "scheduler", TLOG_I("index", i), TLOG_S("error", why));
            return BW_EXIT_USAGE;
        }
        /* the prefix of the entry, else of the queue when this worker serves
         * it, else the first queue's (the file's defaults and the flags) */
        const char *prefix = e.prefix;
        const bw_queue_cfg *served = NULL;
        for (size_t q = 0; !served && q < cfg->nqueues; q++)
            if (!strcmp(cfg->queues[q].name, e.queue)) served = &cfg->queues[q];
        if (!prefix && served) prefix = served->s.prefix;
        if (!prefix && cfg->nqueues) prefix = cfg->queues[0].s.prefix;
        /* the BullMQ major likewise: a scheduler is written as the queue's
         * workers speak, and a major left to auto follows meta.version */
        if (!served && cfg->nqueues) served = &cfg->queues[0];
        bullc_queue_opts *qo = NULL;
        bullc_queue *queue = NULL;
        bullc_error err = {0};
        char *job_id = NULL;
        int rc = bullc_queue_opts_new(&qo);
        if (!rc) rc = bullc_queue_opts_set_redis(qo, redis);
        if (!rc && prefix) rc = bullc_queue_opts_set_prefix(qo, prefix);
        if (!rc && served) rc = bullc_queue_opts_set_bullmq_version(qo, served->s.bullmq_version);
        if (!rc) rc = bullc_queue_new(&queue, e.queue, qo, &err);
        if (!rc) rc = bullc_queue_upsert_job_scheduler(queue, e.key, e.repeat, e.name, e.data, e.opts, &job_id, &err);
        if (rc < 0)
            TLOG(TLOG_ERROR, "scheduler", TLOG_S("queue", e.queue), TLOG_S("key", e.key),
                 TLOG_S("error", err.message[0] ? err.message : bullc_strerror(rc)));
        else
            TLOG(TLOG_INFO, "scheduler", TLOG_S("queue", e.queue), TLOG_S("key", e.key),
                 TLOG_S("next_job", job_id ? job_id : "none"));
        bullc_free(job_id);
        bullc_queue_free(queue);
        bullc_queue_opts_free(qo);
        entry_free(&e);
        if (rc < 0)
            return rc == BULLC_EINVAL     ? BW_EXIT_USAGE
                   : rc == BULLC_EVERSION ? BW_EXIT_UNSAFE
                   : rc == BULLC_ECONN || rc == BULLC_ETIMEDOUT || rc == BULLC_EAUTH || rc == BULLC_EREDIS
                       ? BW_EXIT_REDIS
                       : BW_EXIT_FAIL;
    }
    return 0;
}
