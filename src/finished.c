/* SPDX-License-Identifier: MIT */
/* Waiting for a job's end (Node's job.waitUntilFinished(queueEvents, ttl)).
 * The isFinished script answers for a job already done; otherwise the events
 * stream is read from where it stood before that check, so an end between
 * the check and the first read is not missed (Node registers its QueueEvents
 * listeners before checking, for the same reason). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static int copy_out(const redisReply *s, char **out, bullc_error *err) {
    *out = NULL;
    if (!s || s->type != REDIS_REPLY_STRING) return 0; /* Redis holds none */
    char *v = malloc(s->len + 1);
    if (!v) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    memcpy(v, s->str, s->len);
    v[s->len] = '\0';
    *out = v;
    return 0;
}

static bool is(const redisReply *r, const char *s) {
    return r && r->type == REDIS_REPLY_STRING && r->len == strlen(s) && !memcmp(r->str, s, r->len);
}

/* The id of the stream's last entry, or "0-0" for an empty stream. */
static int stream_tail(bullc_queue *q, char *last, size_t n, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "XREVRANGE");
    bullc__args_qkey(&a, q, BULLC__K_EVENTS);
    bullc__args_add(&a, "+");
    bullc__args_add(&a, "-");
    bullc__args_add(&a, "COUNT");
    bullc__args_add(&a, "1");
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    snprintf(last, n, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(last, n, "%.*s", (int)r->element[0]->element[0]->len, r->element[0]->element[0]->str);
    freeReplyObject(r);
    return 0;
}

/* isFinished(id, returnValue=1): 1 once it answered for a finished job, 0 if
 * the job is not finished yet. */
static int check_finished(bullc_queue *q, const char *id, bool *failed, char **value, bullc_error *err) {
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_IS_FINISHED, id, 0);
    bullc__args_add(&a, id);
    bullc__args_add(&a, "1");
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_IS_FINISHED, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    long long status = r->type == REDIS_REPLY_ARRAY && r->elements && r->element[0]->type == REDIS_REPLY_INTEGER
                           ? r->element[0]->integer
                           : -99;
    const redisReply *v = r->elements > 1 ? r->element[1] : NULL;
    if (status == -1)
        rc = bullc__err(err, BULLC_ENOTFOUND, "%.*s", v && v->type == REDIS_REPLY_STRING ? (int)v->len : 0,
                        v && v->type == REDIS_REPLY_STRING ? v->str : "");
    else if (status == 1 || status == 2) {
        *failed = status == 2;
        rc = copy_out(v, value, err);
        if (!rc) rc = 1;
    } else if (status != 0)
        rc = bullc__err(err, BULLC_EPROTO, "isFinished: unexpected reply");
    freeReplyObject(r);
    return rc;
}

/* Looks through one XREAD answer for job `id`'s completed or failed event;
 * `last` follows the entries read. 1 when found. */
static int scan_events(const redisReply *r, const char *id, char *last, size_t n, bool *failed, char **value,
                       bullc_error *err) {
    if (r->type != REDIS_REPLY_ARRAY || !r->elements || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements < 2)
        return 0;
    const redisReply *entries = r->element[0]->element[1];
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING) continue;
        snprintf(last, n, "%.*s", (int)e->element[0]->len, e->element[0]->str);
        const redisReply *f = e->element[1], *event = NULL, *job = NULL, *rv = NULL, *reason = NULL;
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
            const redisReply *name = f->element[k], *val = f->element[k + 1];
            if (is(name, "event")) event = val;
            if (is(name, "jobId")) job = val;
            if (is(name, "returnvalue")) rv = val;
            if (is(name, "failedReason")) reason = val;
        }
        if (!is(job, id) || !(is(event, "completed") || is(event, "failed"))) continue;
        *failed = is(event, "failed");
        int rc = copy_out(*failed ? reason : rv, value, err);
        return rc ? rc : 1;
    }
    return 0;
}

static int timed_out(bullc_queue *q, const char *id, int64_t timeout_ms, bullc_error *err) {
    /* Node's message names the job: its name is read only now */
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HGET");
    bullc__args_job_key(&a, q, id);
    bullc__args_add(&a, "name");
    redisReply *r = NULL;
    bullc_error e2 = {0};
    int rc = bullc__args_cmd(q, &a, &r, &e2);
    bullc__args_free(&a);
    bool named = !rc && r->type == REDIS_REPLY_STRING;
    rc = bullc__err(err, BULLC_ETIMEDOUT,
                    "Job wait %.*s timed out before finishing, no finish notification arrived after %lldms (id=%s)",
                    named ? (int)r->len : 0, named ? r->str : "", (long long)timeout_ms, id);
    freeReplyObject(r);
    return rc;
}

int bullc_queue_wait_until_finished(bullc_queue *q, const char *id, int64_t timeout_ms, bool *out_failed,
                                    char **out_value, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    if (!out_failed || !out_value) return bullc__err(err, BULLC_EINVAL, "out_failed and out_value must not be NULL");
    if (timeout_ms < 0) return bullc__err(err, BULLC_EINVAL, "timeout_ms must not be negative");
    *out_failed = false;
    *out_value = NULL;
    int64_t deadline = timeout_ms ? bullc__now_ms() + timeout_ms : 0;
    char last[64];
    if ((rc = stream_tail(q, last, sizeof last, err))) return rc;
    if ((rc = check_finished(q, id, out_failed, out_value, err))) return rc < 0 ? rc : 0;
    bullc__conn *c;
    if ((rc = bullc__queue_conn(q, &c, err))) return rc;
    /* each XREAD blocks for less than the connection's command timeout, which
     * would otherwise take a quiet stream for a dead server */
    int ct = c->opts->command_timeout_ms;
    int64_t slice = ct > 2000 ? ct - 1000 : ct > 0 ? ct / 2 : 5000;
    for (;;) {
        int64_t block = slice;
        if (deadline) {
            int64_t left = deadline - bullc__now_ms();
            if (left <= 0) return timed_out(q, id, timeout_ms, err);
            if (left < block) block = left;
        }
        if (block < 1) block = 1; /* BLOCK 0 would wait for ever */
        bullc__args a;
        bullc__args_init(&a);
        bullc__args_add(&a, "XREAD");
        bullc__args_add(&a, "COUNT");
        bullc__args_add(&a, "100");
        bullc__args_add(&a, "BLOCK");
        bullc__args_i64(&a, block);
        bullc__args_add(&a, "STREAMS");
        bullc__args_qkey(&a, q, BULLC__K_EVENTS);
        bullc__args_add(&a, last);
        redisReply *r = NULL;
        rc = bullc__args_cmd(q, &a, &r, err);
        bullc__args_free(&a);
        if (rc) return rc;
        rc = scan_events(r, id, last, sizeof last, out_failed, out_value, err);
        freeReplyObject(r);
        if (rc) return rc < 0 ? rc : 0;
    }
}
