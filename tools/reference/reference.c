/* SPDX-License-Identifier: MIT */
/* The reference deployment's producer helpers (see reference.h). The data
 * is written as text, key by key in the QueueService's order, with
 * `data_json` embedded as given: parsing and printing it again would
 * change numbers (1.950 -> 1.95) that a Node reader must see as sent. */
#include "reference.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int invalid(bullc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int invalid(bullc_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = BULLC_EINVAL;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return BULLC_EINVAL;
}

static int nomem(bullc_error *err) {
    if (err) {
        err->code = BULLC_ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
    }
    return BULLC_ENOMEM;
}

/* A small growing string. */
typedef struct text {
    char *p;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->failed) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p, t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }

/* `s` as a JSON string, escaped as JSON.stringify escapes it. */
static void quote(text *t, const char *s) {
    static const char hex[] = "0123456789abcdef";
    put(t, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        switch (*c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        default:
            if (*c >= 0x20) {
                put(t, (const char *)c, 1);
                continue;
            }
            memcpy(e + 1, "u00", 3);
            e[4] = hex[*c >> 4];
            e[5] = hex[*c & 15];
            put(t, e, 6);
            continue;
        }
        put(t, e, 2);
    }
    put(t, "\"", 1);
}

/* 1: one JSON object; 0: another JSON value; -1: not JSON. */
static int json_kind(const char *s) {
    cJSON *v = cJSON_ParseWithOpts(s, NULL, 1);
    int k = !v ? -1 : cJSON_IsObject(v) ? 1 : 0;
    cJSON_Delete(v);
    return k;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds `data` with the reference options. */
static int add(bullc_queue *q, const char *name, text *data, char **out_id, bullc_error *err) {
    if (data->failed) {
        free(data->p);
        return nomem(err);
    }
    bullc_job_opts *opts = NULL;
    int rc = bullc_job_opts_new(&opts);
    if (!rc) rc = bullc_job_opts_merge_json(opts, BULLC_REFERENCE_JOB_OPTS, err);
    if (!rc)
        rc = bullc_queue_add(q, name, data->p, opts, out_id, err);
    else if (rc == BULLC_ENOMEM)
        nomem(err);
    bullc_job_opts_free(opts);
    free(data->p);
    return rc;
}

int bullc_reference_add_test_queue_job(bullc_queue *q, const char *provider, const char *data_json,
                                       const char *message_type, char **out_id, bullc_error *err) {
    if (!message_type) message_type = "game_data";
    if (!q) return invalid(err, "no queue");
    if (!provider || !*provider) return invalid(err, "provider must be a non-empty string");
    if (!*message_type) return invalid(err, "message_type must be a non-empty string");
    if (!data_json || json_kind(data_json) < 0)
        return invalid(err, "data_json must be one JSON value (a text message as a JSON string)");
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)now_ms());
    text t = {0};
    puts_(&t, "{\"provider\":");
    quote(&t, provider);
    puts_(&t, ",\"data\":");
    puts_(&t, data_json);
    puts_(&t, ",\"timestamp\":");
    puts_(&t, ts);
    puts_(&t, ",\"messageType\":");
    quote(&t, message_type);
    puts_(&t, "}");
    return add(q, BULLC_REFERENCE_GAME_DATA_JOB, &t, out_id, err);
}

int bullc_reference_add_notification_job(bullc_queue *q, const char *user_id, const char *type, const char *message,
                                         const char *data_json, char **out_id, bullc_error *err) {
    if (!data_json) data_json = "{}";
    if (!q) return invalid(err, "no queue");
    if (!user_id || !*user_id) return invalid(err, "user_id must be a non-empty string");
    if (!type || !*type) return invalid(err, "type must be a non-empty string");
    if (!message) return invalid(err, "message must be a string");
    if (json_kind(data_json) != 1) return invalid(err, "data_json must be a JSON object (or NULL for {})");
    text t = {0};
    puts_(&t, "{\"userId\":");
    quote(&t, user_id);
    puts_(&t, ",\"type\":");
    quote(&t, type);
    puts_(&t, ",\"message\":");
    quote(&t, message);
    puts_(&t, ",\"data\":");
    puts_(&t, data_json);
    puts_(&t, "}");
    return add(q, BULLC_REFERENCE_NOTIFICATION_JOB, &t, out_id, err);
}
