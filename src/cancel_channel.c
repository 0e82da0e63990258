/* SPDX-License-Identifier: MIT */
/* Cancelling a job from another process: the channel (docs/worker-api.md).
 * A canceller reads the job's lock token and publishes
 * {"id","token","reason","reply"} on "<prefix>:<queue>:bullc:cancel"; a
 * listener (one connection per process, in subscribe mode) hands it to its
 * worker of that queue holding the job under that token, which cancels it
 * and pushes its worker id on the reply list the canceller waits on. The
 * token confirms the holder: a worker that took the job again after a stall
 * holds it under another token and is not cancelled by a stale request. */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* The acknowledgement outlives a canceller that gave up by this long. */
#define REPLY_TTL_MS "60000"

typedef struct member {
    bullc_worker *w;
    sds channel;
} member;

struct bullc_cancel_listener {
    bullc__aconn conn;
    member *members;
    int nmembers, cap;
    bool closing;
    void (*close_cb)(bullc_cancel_listener *l, void *data);
    void *close_data;
};

/* The channel of a queue whose base key is "<prefix>:<queue>:"; a
 * canceller's reply list is named after it. */
static sds channel_of(const char *base) { return sdscat(sdsnew(base), "bullc:cancel"); }

static void ignore_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c, (void)r, (void)err, (void)data;
}

static const char *str_field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The worker holds the job under that very token, its processor still runs. */
static bool holds(const bullc_worker *w, const char *id, const char *token) {
    for (const bullc_job *j = w->jobs; j; j = j->next)
        if (!strcmp(j->id, id) && j->token && !strcmp(j->token, token)) return true;
    return false;
}

static void acknowledge(bullc_worker *w, const char *reply) {
    const char *push[] = {"LPUSH", reply, w->id};
    const char *ttl[] = {"PEXPIRE", reply, REPLY_TTL_MS};
    /* not sent when the worker's connection is down: the canceller then
     * reports no answer, though the job was cancelled */
    if (!bullc__aconn_cmd(w->cmd, 0, ignore_reply, NULL, 3, push, NULL))
        bullc__aconn_cmd(w->cmd, 0, ignore_reply, NULL, 3, ttl, NULL);
}

static void deliver(bullc_cancel_listener *l, const redisReply *ch, const redisReply *payload) {
    cJSON *msg = cJSON_ParseWithLength(payload->str, payload->len);
    const char *id = str_field(msg, "id"), *token = str_field(msg, "token"), *reply = str_field(msg, "reply");
    const char *reason = str_field(msg, "reason");
    for (int i = 0; id && token && reply && i < l->nmembers; i++) {
        bullc_worker *w = l->members[i].w;
        if (sdslen(l->members[i].channel) != ch->len || memcmp(l->members[i].channel, ch->str, ch->len) ||
            !holds(w, id, token))
            continue;
        if (bullc_worker_cancel_job(w, id, reason) == 1) acknowledge(w, reply);
        break;
    }
    cJSON_Delete(msg);
}

static void on_message(redisAsyncContext *ac, void *reply, void *data) {
    (void)ac;
    const redisReply *r = reply;
    /* NULL: the context is going away; a subscribe confirmation is no message */
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    deliver(data, r->element[1], r->element[2]);
}

/* hiredis keeps the callback per channel while subscribed; each connect
 * starts a context with none, so every (re)connect subscribes again. */
static void subscribe(bullc_cancel_listener *l, const sds channel) {
    if (!bullc__aconn_ready(&l->conn)) return;
    const char *argv[] = {"SUBSCRIBE", channel};
    const size_t lens[] = {9, sdslen(channel)};
    redisAsyncCommandArgv(l->conn.ac, on_message, l, 2, argv, lens);
}

static void on_ready(bullc__aconn *c, void *data) {
    bullc_cancel_listener *l = data;
    (void)c;
    for (int i = 0; i < l->nmembers; i++) subscribe(l, l->members[i].channel);
}

static void on_closed(bullc__aconn *c, void *data) {
    bullc_cancel_listener *l = data;
    (void)c;
    if (l->close_cb) l->close_cb(l, l->close_data);
}

int bullc_cancel_listener_new(bullc_cancel_listener **out, uv_loop_t *loop, const bullc_redis_opts *redis,
                              bullc_error *err) {
    if (!out || !loop) return bullc__err(err, BULLC_EINVAL, "out and loop are required");
    bullc_cancel_listener *l = calloc(1, sizeof *l);
    if (!l) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    bullc_redis_opts *ro = NULL;
    int rc = redis ? 0 : bullc__redis_opts_default(&ro, err);
    if (!rc) rc = bullc__aconn_init(&l->conn, loop, redis ? redis : ro, "bullc:cancel", err);
    bullc_redis_opts_free(ro);
    if (rc) {
        free(l);
        return rc;
    }
    l->conn.on_ready = on_ready;
    l->conn.on_closed = on_closed;
    l->conn.hook_data = l;
    bullc__aconn_start(&l->conn);
    *out = l;
    return 0;
}

int bullc_cancel_listener_add(bullc_cancel_listener *l, bullc_worker *w, bullc_error *err) {
    if (!l || !w) return bullc__err(err, BULLC_EINVAL, "listener and worker are required");
    if (l->closing) return bullc__err(err, BULLC_ECLOSED, "the cancel listener is closing");
    if (w->cancel_listener) return bullc__err(err, BULLC_EINVAL, "the worker listens already");
    if (l->nmembers == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        member *m = realloc(l->members, (size_t)cap * sizeof *m);
        if (!m) return bullc__err(err, BULLC_ENOMEM, "out of memory");
        l->members = m;
        l->cap = cap;
    }
    sds ch = channel_of(w->keys.k[BULLC__K_BASE]);
    if (!ch) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    bool known = false;
    for (int i = 0; i < l->nmembers; i++) known |= !strcmp(l->members[i].channel, ch);
    l->members[l->nmembers++] = (member){w, ch};
    w->cancel_listener = l;
    if (!known) subscribe(l, ch);
    return 0;
}

void bullc_cancel_listener_remove(bullc_cancel_listener *l, bullc_worker *w) {
    for (int i = 0; l && i < l->nmembers; i++) {
        if (l->members[i].w != w) continue;
        /* the channel stays subscribed: a message nobody holds is dropped */
        sdsfree(l->members[i].channel);
        l->members[i] = l->members[--l->nmembers];
        w->cancel_listener = NULL;
        return;
    }
}

int bullc_cancel_listener_close(bullc_cancel_listener *l, void (*cb)(bullc_cancel_listener *l, void *data),
                                void *data) {
    if (l->closing) return BULLC_ECLOSED;
    l->closing = true;
    l->close_cb = cb;
    l->close_data = data;
    bullc__aconn_close(&l->conn);
    return 0;
}

void bullc_cancel_listener_free(bullc_cancel_listener *l) {
    if (!l) return;
    for (int i = 0; i < l->nmembers; i++) {
        l->members[i].w->cancel_listener = NULL;
        sdsfree(l->members[i].channel);
    }
    free(l->members);
    free(l);
}

/* ---- the canceller's side (a queue handle, synchronous) ---------------- */

static int run(bullc_queue *q, bullc__args *a, redisReply **r, bullc_error *err) {
    int rc = bullc__args_cmd(q, a, r, err);
    bullc__args_free(a);
    return rc;
}

/* The token the job's lock holds: NULL (and 0) when no worker holds it. */
static int lock_token(bullc_queue *q, const char *id, sds *token, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "GET");
    bullc__args_own(&a, bullc__job_key(bullc__queue_keys(q), id, BULLC__K_JOB_LOCK));
    redisReply *r = NULL;
    int rc = run(q, &a, &r, err);
    if (rc) return rc;
    *token = r->type == REDIS_REPLY_STRING ? sdsnewlen(r->str, r->len) : NULL;
    freeReplyObject(r);
    return 0;
}

static int not_held(bullc_queue *q, const char *id, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "EXISTS");
    bullc__args_job_key(&a, q, id);
    redisReply *r = NULL;
    int rc = run(q, &a, &r, err);
    if (rc) return rc;
    bool exists = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    return exists ? bullc__err(err, BULLC_ENOTFOUND, "job %s is not being processed (it holds no lock)", id)
                  : bullc__err(err, BULLC_ENOTFOUND, "job %s not found", id);
}

static sds request(const char *id, const char *token, const char *reason, const char *reply) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "token", token);
    if (reason) cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "reply", reply);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    sds out = s ? sdsnew(s) : NULL;
    cJSON_free(s);
    return out;
}

static int publish(bullc_queue *q, const char *msg, long long *receivers, bullc_error *err) {
    const bullc__keys *ks = bullc__queue_keys(q);
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "PUBLISH");
    bullc__args_own(&a, channel_of(ks->k[BULLC__K_BASE]));
    bullc__args_add(&a, msg);
    redisReply *r = NULL;
    int rc = run(q, &a, &r, err);
    if (rc) return rc;
    *receivers = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return 0;
}

static bool in_cluster(bullc_queue *q) {
    const bullc_redis_opts *ro = bullc__queue_redis_opts(q);
    return ro && ro->ncluster;
}

/* A cluster broadcasts a PUBLISH to every node but counts the receivers of
 * the node it was made on only: the listener of the holding process may be
 * subscribed on another master (cancel listeners subscribe on any). The
 * channel's subscribers on every master, or 0 when one cannot be asked. */
static long long cluster_receivers(bullc_queue *q) {
    bullc_redis_opts *nodes;
    size_t n;
    bullc_error e = {0};
    if (bullc__cluster_masters(bullc__queue_redis_opts(q), &nodes, &n, NULL, &e)) return 0;
    sds ch = channel_of(bullc__queue_keys(q)->k[BULLC__K_BASE]);
    long long total = 0;
    for (size_t i = 0; i < n && ch; i++) {
        bullc__conn c;
        if (bullc__conn_init(&c, &nodes[i], &e)) break;
        const char *argv[] = {"PUBSUB", "NUMSUB", ch};
        redisReply *r = NULL;
        if (!bullc__conn_command(&c, &r, &e, 3, argv, NULL) && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[1]->type == REDIS_REPLY_INTEGER)
            total += r->element[1]->integer;
        freeReplyObject(r);
        bullc__conn_close(&c);
    }
    sdsfree(ch);
    bullc__cluster_masters_free(nodes, n);
    return total;
}

/* Waits for the holder's answer on `reply`, in BLPOPs shorter than the
 * connection's command timeout. 1 when it came (its worker id in `by`). */
static int await_ack(bullc_queue *q, const char *reply, int64_t timeout_ms, char *by, size_t n, bullc_error *err) {
    bullc__conn *c;
    int rc = bullc__queue_conn(q, &c, err);
    if (rc) return rc;
    int ct = c->opts->command_timeout_ms;
    int64_t slice = ct > 2000 ? ct - 1000 : ct > 0 ? ct / 2 : 5000;
    int64_t deadline = bullc__now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - bullc__now_ms();
        if (left <= 0) return 0;
        int64_t block = left < slice ? left : slice;
        char secs[32];
        snprintf(secs, sizeof secs, "%.3f", (double)(block < 1 ? 1 : block) / 1000.0);
        bullc__args a;
        bullc__args_init(&a);
        bullc__args_add(&a, "BLPOP");
        bullc__args_add(&a, reply);
        bullc__args_add(&a, secs);
        redisReply *r = NULL;
        if ((rc = run(q, &a, &r, err))) return rc;
        bool got = r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING;
        if (got) snprintf(by, n, "%.*s", (int)r->element[1]->len, r->element[1]->str);
        freeReplyObject(r);
        if (got) return 1;
    }
}

int bullc_queue_cancel_job(bullc_queue *q, const char *job_id, const char *reason, int64_t timeout_ms, char *out_worker,
                           size_t out_size, bullc_error *err) {
    int rc = bullc__check_job_id(job_id, err);
    if (rc) return rc;
    if (timeout_ms <= 0) return bullc__err(err, BULLC_EINVAL, "timeout_ms must be positive");
    sds token = NULL;
    if ((rc = lock_token(q, job_id, &token, err))) return rc;
    if (!token) return not_held(q, job_id, err);
    char uuid[37], by[64] = "";
    bullc__uuid4(uuid);
    sds reply = channel_of(bullc__queue_keys(q)->k[BULLC__K_BASE]);
    if (reply) reply = sdscatfmt(reply, ":%s", uuid);
    sds msg = reply ? request(job_id, token, reason, reply) : NULL;
    long long receivers = 0;
    if (!msg)
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    else if (!(rc = publish(q, msg, &receivers, err)) && !receivers && in_cluster(q))
        receivers = cluster_receivers(q);
    if (!rc && receivers > 0) rc = await_ack(q, reply, timeout_ms, by, sizeof by, err);
    if (rc == 0 && receivers)
        rc = bullc__err(err, BULLC_ESTATE, "no bullc worker holding job %s answered within %lld ms", job_id,
                        (long long)timeout_ms);
    else if (rc == 0)
        rc = bullc__err(err, BULLC_ESTATE,
                        "no bullc worker listens for cancellations on this queue (job %s is held by token %s)", job_id,
                        token);
    else if (rc == 1) {
        rc = 0;
        if (out_worker && out_size) snprintf(out_worker, out_size, "%s", by);
    }
    sdsfree(token);
    sdsfree(reply);
    sdsfree(msg);
    return rc;
}
