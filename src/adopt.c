/* SPDX-License-Identifier: MIT */
/* A fetch that answered an error may still have taken a job: BullMQ's scripts
 * keep the writes made before an error, and moveToActive moves the job to
 * active and locks it before it bumps the job's `ats` (a hash with a
 * non-integer `ats` fails exactly there). Such a job is locked with the
 * fetch's token and nobody processes it; left alone it returns through the
 * stalled checker only to be taken the same way again, for ever. So the
 * worker looks for it among the newest active jobs and processes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

enum { ADOPT_SCAN = 100 }; /* moveToActive pushes on the left: the job is among the first */

typedef struct adopt {
    bullc_worker *w;
    sds token;
    size_t n;
    sds ids[ADOPT_SCAN];
} adopt;

static void adopt_end(adopt *a) {
    bullc_worker *w = a->w;
    for (size_t i = 0; i < a->n; i++) sdsfree(a->ids[i]);
    sdsfree(a->token);
    free(a);
    w->fetching--;
    /* a fetch waits for the failed one's retry timer (no hot loop), unless
     * that fired while this went on and found the worker busy */
    if (w->closing)
        bullc__worker_maybe_closed(w);
    else if (!uv_is_active((uv_handle_t *)&w->wake_timer))
        bullc__worker_pump(w);
}

static bool held(const bullc_worker *w, const char *id) {
    for (const bullc_job *j = w->jobs; j; j = j->next)
        if (j->state != BULLC__JOB_FINISHED && !strcmp(j->id, id)) return true;
    return false;
}

static void hash_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    adopt *a = data;
    bullc_worker *w = a->w;
    (void)c, (void)err;
    const char *id = a->ids[0];
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && !w->forced) {
        redisReply idr = {.type = REDIS_REPLY_STRING, .str = (char *)id, .len = sdslen(a->ids[0])};
        bullc_job *job = bullc__job_from_reply(w, r, &idr, a->token);
        a->token = NULL; /* the job's now */
        if (job) {
            bullc__worker_error(w, BULLC_EREDIS, "job %s: taken by the fetch that failed; processing it", id);
            bullc__process_start(w, job);
        }
    }
    adopt_end(a);
}

static void locks_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    adopt *a = data;
    (void)err;
    size_t found = a->n;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == a->n)
        for (size_t i = 0; i < a->n && found == a->n; i++) {
            const redisReply *v = r->element[i];
            if (v->type == REDIS_REPLY_STRING && v->len == sdslen(a->token) && !memcmp(v->str, a->token, v->len) &&
                !held(a->w, a->ids[i]))
                found = i;
        }
    if (found == a->n || a->w->forced) {
        adopt_end(a);
        return;
    }
    sds tmp = a->ids[0];
    a->ids[0] = a->ids[found], a->ids[found] = tmp;
    sds key = bullc__job_key(&a->w->keys, a->ids[0], BULLC__K_JOB);
    const char *argv[] = {"HGETALL", key};
    int rc = key ? bullc__aconn_cmd(c, 0, hash_reply, a, 2, argv, NULL) : BULLC_ENOMEM;
    sdsfree(key);
    if (rc) adopt_end(a);
}

static void active_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    adopt *a = data;
    (void)err;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0 || a->w->forced) {
        adopt_end(a);
        return;
    }
    const char *argv[1 + ADOPT_SCAN];
    sds keys[ADOPT_SCAN];
    argv[0] = "MGET";
    for (size_t i = 0; i < r->elements && i < ADOPT_SCAN; i++) {
        const redisReply *e = r->element[i];
        a->ids[a->n] =
            sdsnewlen(e->type == REDIS_REPLY_STRING ? e->str : "", e->type == REDIS_REPLY_STRING ? e->len : 0);
        keys[a->n] = bullc__job_key(&a->w->keys, a->ids[a->n], BULLC__K_JOB_LOCK);
        argv[1 + a->n] = keys[a->n];
        a->n++;
    }
    int rc = bullc__aconn_cmd(c, 0, locks_reply, a, 1 + (int)a->n, argv, NULL);
    for (size_t i = 0; i < a->n; i++) sdsfree(keys[i]);
    if (rc) adopt_end(a);
}

void bullc__adopt(bullc_worker *w, const char *token) {
    adopt *a = calloc(1, sizeof *a);
    if (!a || !(a->token = sdsnew(token))) {
        free(a);
        return;
    }
    a->w = w;
    char last[24];
    snprintf(last, sizeof last, "%d", ADOPT_SCAN - 1);
    const char *argv[] = {"LRANGE", w->keys.k[BULLC__K_ACTIVE], "0", last};
    w->fetching++; /* a close waits for it, as for a fetch */
    if (bullc__aconn_cmd(w->cmd, 0, active_reply, a, 4, argv, NULL)) adopt_end(a);
}

bool bullc__script_runtime_error(const bullc_error *err) {
    /* Redis 6 and 7 and Valkey name the script's chunk in such errors */
    return strstr(err->message, "@user_script") != NULL;
}
