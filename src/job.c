/* SPDX-License-Identifier: MIT */
/* The job a processor sees: parsed leniently from the hash moveToActive
 * returns, and the actions a processor may take on it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static int64_t to_i64(const char *s) {
    /* parseInt-like: leading digits, fractional parts (marker scores) cut;
     * garbage from a buggy producer saturates instead of overflowing */
    if (!s) return 0;
    /* the usual case, a plain decimal integer, without strtod */
    const char *p = s + (*s == '-');
    int64_t v = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9' && n < 15) v = v * 10 + (*p++ - '0'), n++;
    if (n > 0 && *p == '\0') return *s == '-' ? -v : v;
    return bullc__double_to_i64(strtod(s, NULL));
}

/* The options the worker reads per job. */
enum {
    OPT_OTHER,
    OPT_ATTEMPTS,
    OPT_REMOVE_ON_COMPLETE,
    OPT_REMOVE_ON_FAIL,
    OPT_LIFO,
    OPT_STACK_TRACE_LIMIT,
    OPT_KEEP_LOGS,
    OPT_PARENT0 /* failParentOnFailure ... removeDependencyOnFailure: OPT_PARENT0 + 0..3 */
};

#define RK(name, opt) \
    { name, sizeof name - 1, opt }
static const struct {
    const char *name;
    size_t len;
    int opt;
} read_keys[] = {RK("attempts", OPT_ATTEMPTS),
                 RK("removeOnComplete", OPT_REMOVE_ON_COMPLETE),
                 RK("removeOnFail", OPT_REMOVE_ON_FAIL),
                 RK("lifo", OPT_LIFO),
                 RK("stackTraceLimit", OPT_STACK_TRACE_LIMIT),
                 RK("keepLogs", OPT_KEEP_LOGS),
                 RK("failParentOnFailure", OPT_PARENT0),
                 RK("continueParentOnFailure", OPT_PARENT0 + 1),
                 RK("ignoreDependencyOnFailure", OPT_PARENT0 + 2),
                 RK("removeDependencyOnFailure", OPT_PARENT0 + 3)};
#undef RK

/* The long names of the telemetry options, which Node's optsDecodeMap
 * leaves out (the job is shown with long names only). */
static const char *telemetry_long(const char *k) {
    return !strcmp(k, "tm") ? "telemetryMetadata" : !strcmp(k, "omc") ? "telemetryOmitContext" : NULL;
}

/* Renames a short option to its long name; returns which option it is
 * (-1: out of memory). */
static int opt_key(cJSON *c) {
    size_t n = strlen(c->string);
    const char *ln = n <= 4 ? bullc__opt_long(c->string) : NULL;
    if (n <= 3 && !ln) ln = telemetry_long(c->string);
    if (ln) {
        size_t len = strlen(ln);
        char *name = cJSON_malloc(len + 1);
        if (!name) return -1;
        memcpy(name, ln, len + 1);
        cJSON_free(c->string);
        c->string = name;
        n = len;
    }
    const char *k = c->string;
    for (size_t i = 0; i < sizeof read_keys / sizeof read_keys[0]; i++)
        if (n == read_keys[i].len && !memcmp(k, read_keys[i].name, n)) return read_keys[i].opt;
    return OPT_OTHER;
}

static bool is(const redisReply *k, const char *name, size_t len) {
    return k->len == len && !memcmp(k->str, name, len);
}
#define IS(k, lit) is(k, lit, sizeof lit - 1)

bullc_job *bullc__job_from_reply(bullc_worker *w, const redisReply *hash, const redisReply *idr, sds token) {
    bullc_job *j = calloc(1, sizeof *j);
    if (!j) {
        sdsfree(token);
        return NULL;
    }
    j->w = w;
    j->token = token;
    if (idr->type == REDIS_REPLY_INTEGER)
        j->id = sdsfromlonglong(idr->integer);
    else
        j->id = sdsnewlen(idr->str, idr->type == REDIS_REPLY_STRING ? idr->len : 0);
    if (j->id) {
        const sds base = w->keys.k[BULLC__K_BASE];
        size_t bl = sdslen(base), il = sdslen(j->id);
        if ((j->key = sdsnewlen(NULL, bl + il))) {
            memcpy(j->key, base, bl);
            memcpy(j->key + bl, j->id, il);
        }
    }
    const char *data = NULL, *opts = NULL, *atm_long = NULL, *atm = NULL;
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        const redisReply *k = hash->element[i], *v = hash->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len < 3) continue;
        const char *s = v->str;
        sds *dst = NULL;
        /* a real HGETALL has each field once; a forged reply may not */
        switch (k->str[0]) {
        case 'n':
            if (IS(k, "name")) dst = &j->name;
            break;
        case 'd':
            if (IS(k, "data"))
                data = s;
            else if (IS(k, "delay"))
                j->delay = to_i64(s);
            else if (IS(k, "defa"))
                dst = &j->defa;
            break;
        case 'o':
            if (IS(k, "opts")) opts = s;
            break;
        case 't':
            if (IS(k, "timestamp")) j->timestamp = to_i64(s);
            break;
        case 'p':
            if (IS(k, "processedOn"))
                j->processed_on = to_i64(s);
            else if (IS(k, "priority"))
                j->priority = to_i64(s);
            else if (IS(k, "progress"))
                dst = &j->progress;
            break;
        case 'a':
            if (IS(k, "atm"))
                atm = s;
            else if (IS(k, "attemptsMade"))
                atm_long = s;
            else if (IS(k, "ats"))
                j->attempts_started = to_i64(s);
            break;
        case 'r':
            if (IS(k, "rjk")) dst = &j->rjk;
            break;
        case 's':
            if (IS(k, "stacktrace")) dst = &j->stacktrace;
            break;
        default:
            break;
        }
        if (dst) {
            sdsfree(*dst);
            *dst = sdsnewlen(s, v->len);
        }
    }
    /* Node: attemptsMade = attemptsMade || atm || 0 (the long name is legacy) */
    j->attempts_made = to_i64(atm_long) ? to_i64(atm_long) : to_i64(atm);
    if (!j->name) j->name = sdsempty();
    j->data = data ? sdsnewlen(data, strlen(data)) : sdsnew("{}");
    if (j->data && j->id) {
        if (!bullc__json_parses(j->data, sdslen(j->data)))
            j->bad = sdscatprintf(sdsempty(), "bullc: job %s has invalid JSON in its data field", j->id);
        else if (!bullc__utf8_valid(j->data, sdslen(j->data)))
            j->bad = sdscatprintf(sdsempty(), "bullc: job %s has invalid UTF-8 in its data field", j->id);
    }
    j->opts = cJSON_Parse(opts ? opts : "{}");
    if (!cJSON_IsObject(j->opts)) {
        if (!j->bad && j->id)
            j->bad = sdscatprintf(sdsempty(), "bullc: job %s has invalid JSON in its opts field", j->id);
        cJSON_Delete(j->opts);
        j->opts = cJSON_CreateObject();
    }
    bool oom = false;
    for (cJSON *c = j->opts ? j->opts->child : NULL; c; c = c->next) {
        const cJSON **slot = NULL;
        int o = opt_key(c);
        if (o < 0)
            oom = true;
        else if (o >= OPT_PARENT0)
            slot = &j->o_parent[o - OPT_PARENT0];
        else if (o != OPT_OTHER)
            slot = o == OPT_ATTEMPTS             ? &j->o_attempts
                   : o == OPT_REMOVE_ON_COMPLETE ? &j->o_remove_on_complete
                   : o == OPT_REMOVE_ON_FAIL     ? &j->o_remove_on_fail
                   : o == OPT_LIFO               ? &j->o_lifo
                   : o == OPT_STACK_TRACE_LIMIT  ? &j->o_stack_trace_limit
                                                 : &j->o_keep_logs;
        if (slot && !*slot) *slot = c; /* the first of a name, as cJSON_GetObjectItemCaseSensitive */
    }
    if (oom || !j->id || !j->key || !j->token || !j->name || !j->data || !j->opts) {
        bullc__job_free(j);
        return NULL;
    }
    return j;
}

void bullc__job_free(bullc_job *j) {
    if (!j) return;
    sdsfree(j->id), sdsfree(j->name), sdsfree(j->data), sdsfree(j->opts_json), sdsfree(j->token);
    sdsfree(j->key), sdsfree(j->progress), sdsfree(j->defa), sdsfree(j->stacktrace), sdsfree(j->bad);
    sdsfree(j->rjk), sdsfree(j->cancel_reason);
    cJSON_Delete(j->opts);
    free(j->result.result_json);
    free(j->result.error);
    free(j);
}

const char *bullc_job_id(const bullc_job *j) { return j->id; }
const char *bullc_job_name(const bullc_job *j) { return j->name; }
size_t bullc_job_name_len(const bullc_job *j) { return sdslen(j->name); }
const char *bullc_job_data(const bullc_job *j) { return j->data; }
/* Printed on first use: most processors never ask, and it is per job.
 * The job is the processor's alone while it runs, so the cache is too. */
const char *bullc_job_opts_json(const bullc_job *j) {
    bullc_job *m = (bullc_job *)j;
    if (!m->opts_json) {
        char *oj = cJSON_PrintUnformatted(m->opts);
        m->opts_json = sdsnew(oj ? oj : "{}");
        free(oj);
    }
    return m->opts_json;
}
int64_t bullc_job_attempts_made(const bullc_job *j) { return j->attempts_made; }
int64_t bullc_job_attempts_started(const bullc_job *j) { return j->attempts_started; }
int64_t bullc_job_timestamp(const bullc_job *j) { return j->timestamp; }
int64_t bullc_job_processed_on(const bullc_job *j) { return j->processed_on; }
int64_t bullc_job_priority(const bullc_job *j) { return j->priority; }
const char *bullc_job_token(const bullc_job *j) { return j->token; }
const char *bullc_job_queue_name(const bullc_job *j) { return j->w->queue; }
const char *bullc_job_queue_qualified_name(const bullc_job *j) { return j->w->qualified_name; }
bool bullc_job_lock_lost(const bullc_job *j) { return j->lock_lost; }
const char *bullc_job_deferred_failure(const bullc_job *j) { return j->defa; }

/* The job's text fields go out as stored, not parsed and printed again: a
 * string holding \u0000 would end at the NUL in cJSON, nesting deeper than
 * cJSON's limit would not parse at all, and 1.950 would become 1.95. The
 * data parses here (else `bad` is set and no processor runs); only what
 * JSON.parse would refuse goes through cJSON. */
char *bullc_job_to_json(const bullc_job *j) {
    const char *opts = bullc_job_opts_json(j);
    sds s = sdsMakeRoomFor(sdsempty(), sdslen(j->data) + strlen(opts) + 256);
    s = s ? sdscatlen(s, "{\"id\":", 6) : NULL;
    s = bullc__json_quote(s, j->id, sdslen(j->id));
    s = s ? sdscatlen(s, ",\"name\":", 8) : NULL;
    s = bullc__json_quote(s, j->name, sdslen(j->name));
    s = s ? sdscatlen(s, ",\"data\":", 8) : NULL;
    if (j->bad) {
        s = bullc__json_quote(s, j->data, sdslen(j->data));
    } else if (bullc__json_strict(j->data, sdslen(j->data))) {
        s = s ? sdscatsds(s, j->data) : NULL;
    } else { /* what only cJSON reads (bullc__json_parses): printed as JSON */
        cJSON *d = cJSON_Parse(j->data);
        char *p = d ? cJSON_PrintUnformatted(d) : NULL;
        s = p && s ? sdscat(s, p) : bullc__json_quote(s, j->data, sdslen(j->data));
        free(p);
        cJSON_Delete(d);
    }
    const char *progress = j->progress && bullc__json_parses(j->progress, sdslen(j->progress)) ? j->progress : "0";
    if (s)
        s = sdscatprintf(s,
                         ",\"opts\":%s,\"attemptsMade\":%lld,\"attemptsStarted\":%lld,\"timestamp\":%lld,"
                         "\"processedOn\":%lld,\"progress\":%s}",
                         opts, (long long)j->attempts_made, (long long)j->attempts_started, (long long)j->timestamp,
                         (long long)j->processed_on, progress);
    if (!s) return NULL;
    /* the caller frees with bullc_free (free) */
    char *out = malloc(sdslen(s) + 1);
    if (out) memcpy(out, s, sdslen(s) + 1);
    sdsfree(s);
    return out;
}

/* ---- job actions ------------------------------------------------------- */

enum { OP_PROGRESS, OP_LOG, OP_DATA, OP_EXTEND, OP_WAIT_CHILDREN, OP_DELAYED };
static const bullc__call_id op_calls[] = {
    BULLC__C_UPDATE_PROGRESS,          BULLC__C_ADD_LOG,        BULLC__C_UPDATE_DATA, BULLC__C_EXTEND_LOCK,
    BULLC__C_MOVE_TO_WAITING_CHILDREN, BULLC__C_MOVE_TO_DELAYED};
static const char *const op_names[] = {"updateProgress",        "addLog",       "updateData", "extendLock",
                                       "moveToWaitingChildren", "moveToDelayed"};
#define OP_IS_MOVE(k) ((k) == OP_WAIT_CHILDREN || (k) == OP_DELAYED)

/* A blocking processor's thread waiting for the answer to a move: it needs
 * it before it returns (moved or not, as Node's `await`). */
typedef struct jobwait {
    uv_mutex_t mutex;
    uv_cond_t cond;
    bool done;
    int code;
} jobwait;

/* An action with everything it needs copied: a blocking processor's call
 * may run after the job is gone. */
struct bullc__jobop {
    int kind;
    bullc_worker *w;
    bullc_job *job; /* only dereferenced for loop-thread calls (cb) */
    sds id, key, token, arg, keep_logs;
    int64_t duration; /* extendLock's duration; moveToDelayed's timestamp */
    uint64_t seq;     /* order of submission, kept when parked */
    jobwait *wait;    /* a blocking processor's thread waits for the answer */
    bullc_job_cb cb;
    void *data;
    bullc__jobop *next;
};

static int op_send(bullc__jobop *op);
static void op_free(bullc__jobop *op);

/* Progress, logs and data updates without a callback (nobody to tell of a
 * failure) are kept while Redis is away, up to BULLC__PARKED_MAX a worker,
 * and sent in order once it is back; the job's finish waits for them, so
 * they land before its completion, as under Node's `await`. Returns false
 * when the action cannot be kept. */
static bool park(bullc__jobop *op) {
    bullc_worker *w = op->w;
    if (op->cb || op->wait || op->kind == OP_EXTEND || OP_IS_MOVE(op->kind) || w->forced) return false;
    if (w->nparked >= BULLC__PARKED_MAX) {
        bullc__worker_error(w, BULLC_ECONN,
                            "Redis is away and %d job actions wait for it: progress and logs beyond that are dropped",
                            BULLC__PARKED_MAX);
        return false;
    }
    if (w->nparked == 0)
        bullc__worker_error(w, BULLC_ECONN,
                            "Redis is away: job progress, logs and data updates are kept (up to %d) and sent in "
                            "order once it is back",
                            BULLC__PARKED_MAX);
    /* in submission order: one whose send failed goes before those made
     * after it */
    bullc__jobop **at = &w->parked_head;
    if (w->parked_tail && w->parked_tail->seq < op->seq)
        at = &w->parked_tail->next; /* the usual case */
    else
        while (*at && (*at)->seq < op->seq) at = &(*at)->next;
    op->next = *at;
    *at = op;
    if (!op->next) w->parked_tail = op;
    w->nparked++;
    op->job->ops_pending++; /* the job's finish waits for it */
    return true;
}

void bullc__jobops_send_parked(bullc_worker *w) {
    while (w->parked_head) {
        bullc__jobop *op = w->parked_head;
        if (op_send(op)) return; /* down again: kept */
        op->job->ops_pending--;  /* op_send counted it again */
        w->parked_head = op->next;
        if (!w->parked_head) w->parked_tail = NULL;
        op->next = NULL;
        w->nparked--;
    }
}

void bullc__jobops_drop_parked(bullc_worker *w) {
    while (w->parked_head) {
        bullc__jobop *op = w->parked_head;
        w->parked_head = op->next;
        w->nparked--;
        bullc_job *job = op->job;
        op_free(op);
        bullc__process_op_done(job);
    }
    w->parked_tail = NULL;
}

static void op_free(bullc__jobop *op) {
    sdsfree(op->id), sdsfree(op->key), sdsfree(op->token), sdsfree(op->arg), sdsfree(op->keep_logs);
    free(op);
}

/* Tells whoever asked: the callback, the waiting thread, or the error event. */
static void op_answer(bullc__jobop *op, int code, const char *msg) {
    if (code < 0 && !op->cb) bullc__worker_error(op->w, code, "job %s: %s", op->id, msg);
    if (op->cb) op->cb(op->job, code, msg, op->data);
    if (op->wait) {
        uv_mutex_lock(&op->wait->mutex);
        op->wait->code = code;
        op->wait->done = true;
        uv_cond_signal(&op->wait->cond);
        uv_mutex_unlock(&op->wait->mutex);
    }
}

static void op_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc__jobop *op = data;
    bullc_job *job = op->job;
    (void)c;
    int code = 0;
    const char *msg = NULL;
    char buf[256];
    if (!r || r->type == REDIS_REPLY_ERROR) {
        code = err->code ? err->code : BULLC_EREDIS;
        msg = err->message;
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        bullc_error e;
        /* Node names the state a move expects: "Job <id> is not in the active state." */
        code =
            bullc__script_code_err(r->integer, op->id, op_names[op->kind], OP_IS_MOVE(op->kind) ? "active" : NULL, &e);
        snprintf(buf, sizeof buf, "%s", e.message);
        msg = buf;
    } else if (op->kind == OP_EXTEND && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        code = BULLC_ELOCK;
        msg = "the job's lock is not held by this worker any more";
    } else if (op->kind == OP_WAIT_CHILDREN) {
        code = r->type == REDIS_REPLY_INTEGER && r->integer == 0; /* 1: no pending children, it stays active */
        job->moved = code == 1;
    } else if (op->kind == OP_DELAYED) {
        code = 1;
        job->moved = true;
    }
    if (!r && park(op)) {            /* the connection broke: it may not have been applied */
        bullc__process_op_done(job); /* park counted it again */
        return;
    }
    op_answer(op, code, msg);
    op_free(op);
    bullc__process_op_done(job); /* may send the job's finish, or free it */
}

/* Sends `op`; on an error nothing was sent and the caller still owns `op`. */
static int op_send(bullc__jobop *op) {
    bullc_worker *w = op->w;
    sds own = NULL; /* the job's logs or lock key */
    bullc__call_ctx x = {.job = op->key};
    sds own2 = NULL;
    if (op->kind == OP_LOG) x.logs = own = bullc__job_key(&w->keys, op->id, BULLC__K_JOB_LOGS);
    if (op->kind == OP_EXTEND) x.lock = own = bullc__job_key(&w->keys, op->id, BULLC__K_JOB_LOCK);
    if (op->kind == OP_WAIT_CHILDREN) {
        x.deps = own = bullc__job_key(&w->keys, op->id, BULLC__K_JOB_DEPS);
        x.unsuccessful = own2 = bullc__job_key(&w->keys, op->id, BULLC__K_JOB_UNSUCCESSFUL);
        if (!own2) own = (sdsfree(own), NULL);
    }
    if ((op->kind == OP_LOG || op->kind == OP_EXTEND || op->kind == OP_WAIT_CHILDREN) && !own) return BULLC_ENOMEM;
    const char *argv[BULLC__CALL_MAX_KEYS + 9];
    size_t lens[BULLC__CALL_MAX_KEYS + 9];
    int n = bullc__call_keys(w->proto, op_calls[op->kind], &w->keys, &x, argv, lens);
    char dur[24], now[24], delay[24];
    const sds base = w->keys.k[BULLC__K_BASE];
    if (op->kind == OP_PROGRESS) {
        argv[n] = op->id, lens[n++] = sdslen(op->id);
        argv[n] = op->arg, lens[n++] = sdslen(op->arg);
    } else if (op->kind == OP_LOG) {
        argv[n] = op->id, lens[n++] = sdslen(op->id);
        argv[n] = op->arg, lens[n++] = sdslen(op->arg);
        argv[n] = op->keep_logs ? op->keep_logs : "", lens[n++] = op->keep_logs ? sdslen(op->keep_logs) : 0;
    } else if (op->kind == OP_DATA) {
        argv[n] = op->arg, lens[n++] = sdslen(op->arg);
    } else if (op->kind == OP_WAIT_CHILDREN) { /* Node's moveToWaitingChildrenArgs, without opts.child */
        snprintf(now, sizeof now, "%lld", (long long)bullc__now_ms());
        argv[n] = op->token, lens[n++] = sdslen(op->token);
        argv[n] = "", lens[n++] = 0;
        argv[n] = now, lens[n++] = strlen(now);
        argv[n] = op->id, lens[n++] = sdslen(op->id);
        argv[n] = base, lens[n++] = sdslen(base);
    } else if (op->kind == OP_DELAYED) { /* Node's job.moveToDelayed(timestamp, token): skipAttempt, no fetch */
        int64_t t = bullc__now_ms(), d = op->duration - t;
        snprintf(now, sizeof now, "%lld", (long long)t);
        snprintf(delay, sizeof delay, "%lld", (long long)(d > 0 ? d : 0));
        const char *rest[] = {base, now, op->id, op->token, delay, "1", "", "0", ""};
        for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) argv[n] = rest[i], lens[n++] = strlen(rest[i]);
    } else {
        snprintf(dur, sizeof dur, "%lld", (long long)op->duration);
        argv[n] = op->token, lens[n++] = sdslen(op->token);
        argv[n] = dur, lens[n++] = strlen(dur);
        argv[n] = op->id, lens[n++] = sdslen(op->id);
    }
    int rc =
        bullc__aconn_eval(w->cmd, bullc__call_script(w->proto, op_calls[op->kind]), 0, op_reply, op, n, argv, lens);
    sdsfree(own), sdsfree(own2);
    if (rc == 0) op->job->ops_pending++; /* the job's finish waits for the answer */
    return rc;
}

void bullc__jobops_drain(bullc_worker *w) {
    uv_mutex_lock(&w->ops_mutex);
    bullc__jobop *op = w->ops_head;
    w->ops_head = w->ops_tail = NULL;
    uv_mutex_unlock(&w->ops_mutex);
    while (op) {
        bullc__jobop *next = op->next;
        op->next = NULL;
        /* submitted from a blocking processor's thread, so without a
         * callback: the error event is the only one to tell */
        op->seq = w->op_seq++;
        if (op->wait) {
            if (op_send(op)) { /* the waiting thread hears it */
                op_answer(op, BULLC_ECONN, "not connected to Redis");
                op_free(op);
            }
        } else if ((w->parked_head || op_send(op)) && !park(op)) {
            bullc__worker_error(w, BULLC_ECONN, "job %s: action lost: not connected to Redis", op->id);
            op_free(op);
        }
        op = next;
    }
}

void bullc__jobops_async_cb(uv_async_t *h) { bullc__jobops_drain(h->data); }

static int op_submit(bullc_job *job, int kind, const char *arg, int64_t duration, bullc_job_cb cb, void *data) {
    bullc_worker *w = job->w;
    uv_thread_t self = uv_thread_self();
    bool on_loop = uv_thread_equal(&self, &w->loop_thread);
    if (!on_loop && cb) return BULLC_EINVAL;                     /* callbacks need the loop thread */
    if (on_loop && !cb && OP_IS_MOVE(kind)) return BULLC_EINVAL; /* the answer needs one there */
    if (job->state == BULLC__JOB_FINISHED && on_loop) return BULLC_ECLOSED;
    bullc__jobop *op = calloc(1, sizeof *op);
    if (!op) return BULLC_ENOMEM;
    op->kind = kind;
    op->w = w;
    op->job = job;
    op->id = sdsdup(job->id);
    op->key = sdsdup(job->key);
    op->token = sdsdup(job->token);
    op->arg = arg ? sdsnew(arg) : sdsempty();
    op->duration = duration;
    op->cb = cb;
    op->data = data;
    const cJSON *kl = job->o_keep_logs;
    if (cJSON_IsNumber(kl) && kl->valuedouble > 0) op->keep_logs = sdsfromlonglong((long long)kl->valuedouble);
    if (on_loop) {
        op->seq = w->op_seq++;
        /* behind actions already waiting for Redis, to keep the order */
        int rc = w->parked_head && !cb ? BULLC_ECONN : op_send(op);
        if (rc && !park(op)) { /* known at once: returned, and the callback never runs */
            op_free(op);
            return rc;
        }
        if (kind == OP_PROGRESS) { /* kept for bullc_job_to_json and the local event */
            sdsfree(job->progress);
            job->progress = sdsnew(arg);
            if (w->ev.progress) w->ev.progress(w, job, arg, w->ev_data);
        }
        return 0;
    }
    jobwait wait;
    if (OP_IS_MOVE(kind)) {
        if (uv_mutex_init(&wait.mutex)) return op_free(op), BULLC_ENOMEM;
        if (uv_cond_init(&wait.cond)) return uv_mutex_destroy(&wait.mutex), op_free(op), BULLC_ENOMEM;
        wait.done = false;
        op->wait = &wait;
    }
    uv_mutex_lock(&w->ops_mutex);
    if (w->ops_tail)
        w->ops_tail->next = op;
    else
        w->ops_head = op;
    w->ops_tail = op;
    uv_mutex_unlock(&w->ops_mutex);
    uv_async_send(&w->ops_async);
    if (!OP_IS_MOVE(kind)) return 0;
    uv_mutex_lock(&wait.mutex);
    while (!wait.done) uv_cond_wait(&wait.cond, &wait.mutex);
    uv_mutex_unlock(&wait.mutex);
    uv_cond_destroy(&wait.cond);
    uv_mutex_destroy(&wait.mutex);
    return wait.code;
}

static bool valid_json(const char *s) { return s && bullc__json_parses(s, strlen(s)); }

int bullc_job_update_progress(bullc_job *job, const char *progress_json, bullc_job_cb cb, void *data) {
    if (!valid_json(progress_json)) return BULLC_EINVAL;
    return op_submit(job, OP_PROGRESS, progress_json, 0, cb, data);
}

int bullc_job_log(bullc_job *job, const char *line, bullc_job_cb cb, void *data) {
    if (!line) return BULLC_EINVAL;
    return op_submit(job, OP_LOG, line, 0, cb, data);
}

int bullc_job_update_data(bullc_job *job, const char *data_json, bullc_job_cb cb, void *data) {
    if (!valid_json(data_json)) return BULLC_EINVAL;
    return op_submit(job, OP_DATA, data_json, 0, cb, data);
}

int bullc_job_extend_lock(bullc_job *job, int64_t duration_ms, bullc_job_cb cb, void *data) {
    if (duration_ms <= 0) return BULLC_EINVAL;
    return op_submit(job, OP_EXTEND, NULL, duration_ms, cb, data);
}

int bullc_job_move_to_waiting_children(bullc_job *job, bullc_job_cb cb, void *data) {
    return op_submit(job, OP_WAIT_CHILDREN, NULL, 0, cb, data);
}

int bullc_job_move_to_delayed(bullc_job *job, int64_t timestamp_ms, bullc_job_cb cb, void *data) {
    return op_submit(job, OP_DELAYED, NULL, timestamp_ms, cb, data);
}
