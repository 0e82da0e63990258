/* SPDX-License-Identifier: MIT */
/* Argument vectors for commands and scripts that grow as they are built,
 * and running them on a queue's synchronous connection. Building never
 * fails half-way for the caller: an allocation failure is remembered and
 * reported once, when the vector is run. */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

void bullc__args_init(bullc__args *a) { memset(a, 0, sizeof *a); }

void bullc__args_free(bullc__args *a) {
    for (int i = 0; i < a->nowned; i++) sdsfree(a->owned[i]);
    free(a->owned);
    free(a->argv);
    free(a->lens);
    memset(a, 0, sizeof *a);
}

void bullc__args_addn(bullc__args *a, const char *s, size_t len) {
    if (a->oom) return;
    if (!s) {
        a->oom = true;
        return;
    }
    if (a->argc == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        const char **argv = realloc(a->argv, sizeof *argv * (size_t)cap);
        if (argv) a->argv = argv;
        size_t *lens = realloc(a->lens, sizeof *lens * (size_t)cap);
        if (lens) a->lens = lens;
        if (!argv || !lens) {
            a->oom = true;
            return;
        }
        a->cap = cap;
    }
    a->argv[a->argc] = s;
    a->lens[a->argc++] = len;
}

void bullc__args_add(bullc__args *a, const char *s) { bullc__args_addn(a, s, s ? strlen(s) : 0); }

void bullc__args_own(bullc__args *a, sds s) {
    if (!s || a->oom) {
        sdsfree(s);
        a->oom = true;
        return;
    }
    if (a->nowned == a->capowned) {
        int cap = a->capowned ? a->capowned * 2 : 16;
        sds *o = realloc(a->owned, sizeof *o * (size_t)cap);
        if (!o) {
            sdsfree(s);
            a->oom = true;
            return;
        }
        a->owned = o;
        a->capowned = cap;
    }
    a->owned[a->nowned++] = s;
    bullc__args_addn(a, s, sdslen(s));
}

void bullc__args_job_key(bullc__args *a, bullc_queue *q, const char *id) {
    bullc__args_own(a, bullc__job_key(bullc__queue_keys(q), id, BULLC__K_JOB));
}

void bullc__args_qkey(bullc__args *a, bullc_queue *q, bullc__key_id k) {
    const sds key = bullc__queue_keys(q)->k[k];
    bullc__args_addn(a, key, sdslen(key));
}

void bullc__args_i64(bullc__args *a, int64_t v) { bullc__args_own(a, sdsfromlonglong(v)); }

void bullc__args_call(bullc__args *a, bullc_queue *q, bullc__call_id c, const char *job_id, int state) {
    bullc__conn *conn;
    bullc_error err = {0};
    int rc = bullc__queue_conn(q, &conn, &err);
    if (rc) {
        bullc__args_init(a);
        a->rc = rc;
        a->err = err;
        return;
    }
    bullc__args_call_keys(a, bullc__queue_proto(q), bullc__queue_keys(q), c, job_id, state);
}

void bullc__args_call_keys(bullc__args *a, const bullc__protocol *p, const bullc__keys *ks, bullc__call_id c,
                           const char *job_id, int state) {
    bullc__args_init(a);
    const bullc__call *d = bullc__call_of(p, c);
    for (int i = 0; i < d->nkeys; i++) {
        int k = d->keys[i];
        if (k >= BULLC__K_JOB && k <= BULLC__K_DEDUP_ID) {
            bullc__args_own(a, bullc__job_key(ks, job_id, k));
        } else {
            const sds key = ks->k[k == BULLC__K_STATE ? state : k];
            bullc__args_addn(a, key, sdslen(key));
        }
    }
}

int bullc__args_eval(bullc_queue *q, bullc__call_id call, bullc__args *a, redisReply **reply, bullc_error *err) {
    if (a->rc) return bullc__err(err, a->rc, "%s", a->err.message);
    if (a->oom) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    const bullc__call *d = bullc__call_of(bullc__queue_proto(q), call);
    if (d->nargs >= 0 && a->argc != d->nkeys + d->nargs) /* a bug: the call site and its descriptor disagree */
        return bullc__err(err, BULLC_EINVAL, "%s: %d arguments where its descriptor says %d", d->name,
                          a->argc - d->nkeys, d->nargs);
    bullc__conn *c;
    int rc = bullc__queue_conn(q, &c, err);
    if (rc) return rc;
    return bullc__conn_eval(c, bullc__call_script(bullc__queue_proto(q), call), a->argc, a->argv, a->lens, reply, err);
}

int bullc__args_eval_int(bullc_queue *q, bullc__call_id call, bullc__args *a, long long *out, bullc_error *err) {
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, call, a, &r, err);
    bullc__args_free(a);
    if (rc) return rc;
    if (r->type == REDIS_REPLY_INTEGER)
        *out = r->integer;
    else if (r->type == REDIS_REPLY_NIL)
        *out = 0;
    else
        rc = bullc__err(err, BULLC_EPROTO, "%s: unexpected reply type %d", bullc__calls[call].script, r->type);
    freeReplyObject(r);
    return rc;
}

int bullc__args_cmd(bullc_queue *q, bullc__args *a, redisReply **reply, bullc_error *err) {
    if (a->oom) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    bullc__conn *c;
    int rc = bullc__queue_conn(q, &c, err);
    if (rc) return rc;
    return bullc__conn_command(c, reply, err, a->argc, a->argv, a->lens);
}
