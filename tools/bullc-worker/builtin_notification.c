/* SPDX-License-Identifier: MIT */
/* The notification builtin (`--builtin notification=notification`): the
 * reference deployment's processor of `send-notification` jobs, as the
 * NestJS QueueService.addNotificationJob writes them:
 *
 *   {"userId": "u1", "type": "info", "message": "text", "data": {...}}   (data optional)
 *
 * Delivery, in this order:
 *  1. in-app: the notification entry
 *       {"jobId","userId","type","message","data","timestamp" (the job's)}
 *     is pushed to the user's list `<prefix>:<queue>:user:<userId>` (newest
 *     first, trimmed to `cap`, default 100) and published on the channel of
 *     the same name, in one Lua script;
 *  2. when a webhook is configured (--builtin-config '{"webhookUrl":...}' or
 *     NOTIFICATION_WEBHOOK_URL), an HTTP POST of the same entry
 *     (application/json). A connection error, a timeout (`timeoutMs`,
 *     default 5000) or a status other than 2xx fails the job, which the
 *     job's attempts and backoff retry.
 *
 * A retry must not push the in-app entry twice: with a webhook, step 1
 * also sets `<prefix>:<queue>:delivered:<jobId>` (the job's timestamp, so a
 * later job reusing the id is not mistaken for it; expires after 7 days),
 * a retry that finds it skips step 1, and a webhook that accepted the
 * entry deletes it.
 *
 * A malformed job, or one with another name, fails without retries, with a
 * reason naming the field. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bw.h"

#define DEFAULT_CAP 100
#define DEFAULT_TIMEOUT_MS 5000
#define MARKER_TTL_S (7 * 24 * 3600)

typedef struct notification {
    bw_redis_pool *pool;
    char *base; /* <prefix>:<queue> */
    int64_t cap, timeout_ms;
    bw_http *http;  /* NULL: no webhook */
    char **headers; /* name, value, ..., NULL */
} notification;

/* KEYS[1] the user's list (also the channel), KEYS[2] the delivery marker
 * (only with a webhook); ARGV: entry, cap, marker value, marker ttl.
 * Returns the subscribers reached, or -1 when an earlier attempt of this
 * job delivered it already. */
static const char inapp_script[] = "if KEYS[2] and redis.call('GET', KEYS[2]) == ARGV[3] then return -1 end\n"
                                   "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
                                   "redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)\n"
                                   "if KEYS[2] then redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4]) end\n"
                                   "return redis.call('PUBLISH', KEYS[1], ARGV[1])\n";

static void free_state(notification *s) {
    if (!s) return;
    bw_redis_pool_free(s->pool);
    bw_http_free(s->http);
    for (size_t i = 0; s->headers && s->headers[i]; i++) free(s->headers[i]);
    free(s->headers);
    free(s->base);
    free(s);
}

/* An integer member of the configuration within [min, max]. */
static int config_int(const cJSON *item, int64_t min, int64_t max, int64_t *out, char *why, size_t n) {
    if (!cJSON_IsNumber(item) || item->valuedouble < (double)min || item->valuedouble > (double)max ||
        item->valuedouble != floor(item->valuedouble)) {
        snprintf(why, n, "\"%s\" must be an integer from %lld to %lld", item->string, (long long)min, (long long)max);
        return -1;
    }
    *out = (int64_t)item->valuedouble;
    return 0;
}

static int parse_config(notification *s, const char *config_json, const char **url, char *why, size_t n) {
    const char *ca_file = NULL;
    cJSON *c = config_json ? cJSON_Parse(config_json) : NULL;
    if (config_json && !cJSON_IsObject(c)) {
        cJSON_Delete(c);
        snprintf(why, n, "the configuration must be a JSON object");
        return -1;
    }
    int rc = 0;
    for (const cJSON *it = c ? c->child : NULL; it && !rc; it = it->next) {
        const char *k = it->string;
        if (!strcmp(k, "webhookUrl")) {
            if (!cJSON_IsString(it))
                rc = -1, snprintf(why, n, "\"webhookUrl\" must be a string");
            else
                *url = it->valuestring; /* points into `c`: used below, before it is freed */
        } else if (!strcmp(k, "caFile")) {
            if (!cJSON_IsString(it) || !*it->valuestring)
                rc = -1, snprintf(why, n, "\"caFile\" must be a path");
            else if (access(it->valuestring, R_OK))
                rc = -1, snprintf(why, n, "\"caFile\": cannot read %s: %s", it->valuestring, strerror(errno));
            else
                ca_file = it->valuestring;
        } else if (!strcmp(k, "timeoutMs")) {
            rc = config_int(it, 1, 600000, &s->timeout_ms, why, n);
        } else if (!strcmp(k, "cap")) {
            rc = config_int(it, 1, 1000000, &s->cap, why, n);
        } else if (!strcmp(k, "headers")) {
            size_t nh = cJSON_IsObject(it) ? (size_t)cJSON_GetArraySize(it) : 0;
            if (!cJSON_IsObject(it) || !(s->headers = calloc(2 * nh + 1, sizeof *s->headers))) {
                rc = -1;
                snprintf(why, n, "\"headers\" must be an object of strings: {\"Authorization\": \"Bearer ...\"}");
                continue;
            }
            size_t i = 0;
            for (const cJSON *h = it->child; h && !rc; h = h->next) {
                if (!cJSON_IsString(h) || !*h->string || strpbrk(h->string, ": \r\n") ||
                    strpbrk(h->valuestring, "\r\n")) {
                    rc = -1;
                    snprintf(why, n, "\"headers\": '%s' must be a header name with a one-line string value", h->string);
                    break;
                }
                s->headers[i++] = strdup(h->string);
                s->headers[i++] = strdup(h->valuestring);
                if (!s->headers[i - 2] || !s->headers[i - 1]) rc = -1, snprintf(why, n, "out of memory");
            }
        } else {
            rc = -1;
            snprintf(why, n, "unknown key \"%s\" (webhookUrl, timeoutMs, cap, headers, caFile)", k);
        }
    }
    if (!rc && !*url) *url = getenv("NOTIFICATION_WEBHOOK_URL");
    if (!rc && (s->headers || ca_file) && !(*url && **url)) {
        rc = -1;
        snprintf(why, n, "\"%s\" needs a webhook URL", s->headers ? "headers" : "caFile");
    }
    if (!rc && *url && **url) rc = bw_http_new(&s->http, *url, ca_file, why, n) ? -1 : 0;
    cJSON_Delete(c);
    *url = NULL;
    return rc;
}

int bw_notification_init(bw_queue *q, const bullc_redis_opts *redis, const char *config_json, char *why, size_t n) {
    notification *s = calloc(1, sizeof *s);
    const char *prefix = q->cfg->s.prefix ? q->cfg->s.prefix : "bull";
    if (s && asprintf(&s->base, "%s:%s", prefix, q->cfg->name) < 0) s->base = NULL;
    if (!s || !s->base || bw_redis_pool_new(&s->pool, redis)) {
        free_state(s);
        snprintf(why, n, "out of memory");
        return BW_EXIT_FAIL;
    }
    s->cap = DEFAULT_CAP;
    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    const char *url = NULL;
    char msg[400];
    if (parse_config(s, config_json, &url, msg, sizeof msg)) {
        snprintf(why, n, "builtin notification for queue %s: %s", q->cfg->name, msg);
        free_state(s);
        return BW_EXIT_USAGE;
    }
    TLOG(TLOG_INFO, "notification", TLOG_S("queue", q->cfg->name), TLOG_I("cap", s->cap),
         TLOG_S("webhook", s->http ? bw_http_display(s->http) : "none"),
         TLOG_I("timeout_ms", s->http ? s->timeout_ms : 0));
    q->builtin_state = s;
    return 0;
}

void bw_notification_fini(bw_queue *q) {
    free_state(q->builtin_state);
    q->builtin_state = NULL;
}

void bw_notification_abort(bw_queue *q) {
    notification *s = q->builtin_state;
    if (s) bw_http_abort(s->http);
}

/* ---- one job ------------------------------------------------------------------- */

typedef struct note {
    bw_jspan user, type, message, data;
    bool has_data;
    char *user_id; /* decoded: part of the list's key */
} note;

static int unrecoverable(bullc_job_result *out, const char *msg) {
    out->error = strdup(msg);
    out->fail_flags = BULLC_FAIL_UNRECOVERABLE;
    return -1;
}

static bool non_empty_string(const char *d, size_t len, const char *key, bw_jspan *v, char **decoded) {
    if (!bw_json_member(d, len, key, v) || bw_json_kind(v) != BW_JSON_STRING) return false;
    char *s = bw_json_string_value(v);
    bool ok = s && *s;
    if (ok && decoded)
        *decoded = s;
    else
        free(s);
    return ok;
}

static int check(bullc_job *job, note *nt, bullc_job_result *out) {
    const char *name = bullc_job_name(job);
    if (strcmp(name, "send-notification")) {
        char msg[300];
        snprintf(msg, sizeof msg, "notification: unknown job name '%s' (this processor takes send-notification jobs)",
                 name);
        return unrecoverable(out, msg);
    }
    const char *d = bullc_job_data(job);
    size_t len = strlen(d);
    bw_jspan all = {d, len};
    if (!bw_json_valid(d, len) || bw_json_kind(&all) != BW_JSON_OBJECT)
        return unrecoverable(out, "send-notification: the job data must be a JSON object");
    if (!non_empty_string(d, len, "userId", &nt->user, &nt->user_id))
        return unrecoverable(out, "send-notification: \"userId\" must be a non-empty string");
    if (!non_empty_string(d, len, "type", &nt->type, NULL))
        return unrecoverable(out, "send-notification: \"type\" must be a non-empty string");
    if (!bw_json_member(d, len, "message", &nt->message) || bw_json_kind(&nt->message) != BW_JSON_STRING)
        return unrecoverable(out, "send-notification: \"message\" must be a string");
    nt->has_data = bw_json_member(d, len, "data", &nt->data);
    if (nt->has_data && bw_json_kind(&nt->data) != BW_JSON_OBJECT)
        return unrecoverable(out, "send-notification: \"data\" must be an object when given");
    return 0;
}

static char *entry_json(const bullc_job *job, const note *nt) {
    bw_sb b = {0};
    bw_sb_puts(&b, "{\"jobId\":");
    bw_sb_quote(&b, bullc_job_id(job));
    bw_sb_puts(&b, ",\"userId\":");
    bw_sb_put(&b, nt->user.p, nt->user.n);
    bw_sb_puts(&b, ",\"type\":");
    bw_sb_put(&b, nt->type.p, nt->type.n);
    bw_sb_puts(&b, ",\"message\":");
    bw_sb_put(&b, nt->message.p, nt->message.n);
    bw_sb_puts(&b, ",\"data\":");
    if (nt->has_data)
        bw_sb_put(&b, nt->data.p, nt->data.n);
    else
        bw_sb_puts(&b, "{}"); /* the NestJS QueueService's default */
    bw_sb_printf(&b, ",\"timestamp\":%lld}", (long long)bullc_job_timestamp(job));
    return bw_sb_take(&b);
}

/* Step 1. The subscribers reached, -1 when an earlier attempt delivered
 * the entry, -2 on a Redis failure (`why` filled). */
static long long deliver_in_app(notification *s, const bullc_job *job, const char *user_id, const char *entry,
                                const char *marker, char *why, size_t n) {
    char *list = NULL, cap[24], stamp[24], ttl[24];
    if (asprintf(&list, "%s:user:%s", s->base, user_id) < 0) {
        snprintf(why, n, "out of memory");
        return -2;
    }
    snprintf(cap, sizeof cap, "%lld", (long long)s->cap);
    snprintf(stamp, sizeof stamp, "%lld", (long long)bullc_job_timestamp(job));
    snprintf(ttl, sizeof ttl, "%d", MARKER_TTL_S);
    const char *argv[] = {"EVAL", inapp_script, marker ? "2" : "1", list, marker, entry, cap, stamp, ttl};
    size_t lens[] = {
        4,           sizeof inapp_script - 1, 1,          strlen(list), marker ? strlen(marker) : 0, strlen(entry),
        strlen(cap), strlen(stamp),           strlen(ttl)};
    /* without a marker, its slot is left out of the arguments */
    int argc = 9;
    if (!marker) {
        memmove(&argv[4], &argv[5], 4 * sizeof argv[0]);
        memmove(&lens[4], &lens[5], 4 * sizeof lens[0]);
        argc = 8;
    }
    bullc_redis_reply *r = bw_redis_pool_command(s->pool, argc, argv, lens, why, n);
    long long v = -2;
    if (r && bullc_redis_reply_type(r) == BULLC_REPLY_INTEGER)
        v = bullc_redis_reply_integer(r);
    else if (r)
        snprintf(why, n, "Redis: unexpected reply to the in-app script");
    bullc_redis_reply_free(r);
    free(list);
    return v;
}

/* Thread-pool thread. */
void bw_notification_process(bullc_job *job, bullc_job_result *out, void *data) {
    bw_queue *q = data;
    notification *s = q->builtin_state;
    note nt = {0};
    char *entry = NULL, *marker = NULL, why[700], msg[800];
    if (check(job, &nt, out)) goto done;
    if (!(entry = entry_json(job, &nt)) ||
        (s->http && asprintf(&marker, "%s:delivered:%s", s->base, bullc_job_id(job)) < 0)) {
        marker = NULL;
        out->error = strdup("notification: out of memory");
        goto done;
    }
    long long published = deliver_in_app(s, job, nt.user_id, entry, marker, why, sizeof why);
    if (published == -2) {
        snprintf(msg, sizeof msg, "notification: in-app delivery: %s", why);
        out->error = strdup(msg);
        goto done;
    }
    int status = 0;
    if (s->http) {
        bw_http_req req = {.body = entry,
                           .body_len = strlen(entry),
                           .headers = (const char *const *)s->headers,
                           .timeout_ms = s->timeout_ms,
                           .job = job};
        if (bw_http_post(s->http, &req, &status, why, sizeof why)) {
            out->error = strdup(why); /* retried per the job's attempts and backoff */
            goto done;
        }
        /* delivered everywhere: a later job may reuse the id */
        const char *argv[] = {"DEL", marker};
        size_t lens[] = {3, strlen(marker)};
        bullc_redis_reply_free(bw_redis_pool_command(s->pool, 2, argv, lens, why, sizeof why));
    }
    bw_sb res = {0};
    bw_sb_puts(&res, "{\"delivered\":true,\"userId\":");
    bw_sb_put(&res, nt.user.p, nt.user.n);
    if (published >= 0)
        bw_sb_printf(&res, ",\"published\":%lld", published);
    else
        bw_sb_puts(&res, ",\"published\":null"); /* an earlier attempt published it */
    if (s->http) bw_sb_printf(&res, ",\"webhookStatus\":%d", status);
    bw_sb_puts(&res, "}");
    out->result_json = bw_sb_take(&res);
    if (!out->result_json) out->error = strdup("notification: out of memory");
done:
    free(nt.user_id);
    free(entry);
    free(marker);
}
