/* SPDX-License-Identifier: MIT */
/* The events stream: Node's QueueEvents (a blocking XREAD loop on its own
 * connection, on libuv), QueueEventsProducer.publishEvent, and a
 * non-blocking read of the stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

enum { QE_IDLE, QE_RUNNING, QE_CLOSING, QE_CLOSED };

struct bullc_queue_events {
    uv_loop_t *loop;
    bullc__aconn conn;
    bullc__keys keys;
    sds last_id; /* "$" until the stream's last id is known */
    sds queue;
    int64_t block_ms;
    bullc_queue_events_callbacks cbs;
    void *data;
    uv_timer_t retry; /* waits after an error reply */
    int state;
    bool resolved;                /* last_id is an id (not "$") */
    const bullc__protocol *proto; /* settled from meta.version (NULL: not yet) */
    int explicit_major;           /* 0: auto */
    unsigned settled;             /* connection generation whose meta.version was read */
    bool version_stopped;         /* meta.version conflicts: listening stopped */
    bool busy;                    /* a command is in flight */
    unsigned announced;           /* connection generation `ready` was reported for */
    int open;                     /* handles still to close: connection, timer */
    void (*close_cb)(bullc_queue_events *qe, void *data);
    void *close_data;
};

const char *bullc_event_get(const bullc_event *ev, const char *name) {
    for (size_t i = 0; ev && name && i < ev->nfields; i++)
        if (!strcmp(ev->fields[i].name, name)) return ev->fields[i].value;
    return NULL;
}

static void step(bullc_queue_events *qe);

static void report(bullc_queue_events *qe, int code, const char *message) {
    if (qe->state == QE_RUNNING && qe->cbs.error) qe->cbs.error(qe, code, message, qe->data);
}

static void retry_timer_cb(uv_timer_t *t) { step(t->data); }

/* After an error reply: try again in a second, as a reconnect would. */
static void retry_later(bullc_queue_events *qe) {
    if (qe->state == QE_RUNNING) uv_timer_start(&qe->retry, retry_timer_cb, 1000, 0);
}

static bool set_last_id(bullc_queue_events *qe, const char *id, size_t len) {
    sds s = sdsnewlen(id, len);
    if (!s) return false;
    sdsfree(qe->last_id);
    qe->last_id = s;
    return true;
}

/* Calls the event callback for each entry of an XREAD/XRANGE entry list,
 * recording each id first (so that a reconnect resumes after it). Stops
 * when the listener is closed from a callback. */
static void deliver(bullc_queue_events *qe, const redisReply *entries) {
    for (size_t i = 0; qe->state == QE_RUNNING && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING) continue;
        if (!set_last_id(qe, e->element[0]->str, e->element[0]->len)) {
            report(qe, BULLC_ENOMEM, "out of memory: event skipped");
            continue;
        }
        const redisReply *f = e->element[1];
        size_t npairs = f->type == REDIS_REPLY_ARRAY ? f->elements / 2 : 0;
        bullc_event_field *fields = calloc(npairs ? npairs : 1, sizeof *fields);
        if (!fields) {
            report(qe, BULLC_ENOMEM, "out of memory: event skipped");
            continue;
        }
        bullc_event ev = {qe->last_id, "", fields, 0};
        for (size_t k = 0; k < npairs; k++) {
            const redisReply *name = f->element[2 * k], *value = f->element[2 * k + 1];
            if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) continue;
            if (!strcmp(name->str, "event") && !ev.name[0]) {
                ev.name = value->str;
                continue;
            }
            fields[ev.nfields].name = name->str;
            fields[ev.nfields].value = value->str;
            fields[ev.nfields++].value_len = value->len;
        }
        if (qe->cbs.event) qe->cbs.event(qe, &ev, qe->data);
        free(fields);
    }
}

static void on_xread(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_queue_events *qe = data;
    (void)c;
    qe->busy = false;
    if (qe->state != QE_RUNNING) return;
    if (!r) return; /* the connection dropped (or the watchdog fired): on_ready resumes */
    if (r->type == REDIS_REPLY_ERROR) {
        report(qe, err->code, err->message);
        retry_later(qe);
        return;
    }
    /* nil: BLOCK timed out; else [[key, [[id, [field, value...]]...]]] */
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *stream = r->element[s];
            if (stream->type == REDIS_REPLY_ARRAY && stream->elements == 2 &&
                stream->element[1]->type == REDIS_REPLY_ARRAY)
                deliver(qe, stream->element[1]);
        }
    step(qe);
}

static void on_last_id(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_queue_events *qe = data;
    (void)c;
    qe->busy = false;
    if (qe->state != QE_RUNNING || !r) return;
    if (r->type == REDIS_REPLY_ERROR) {
        report(qe, err->code, err->message);
        retry_later(qe);
        return;
    }
    /* XREVRANGE + - COUNT 1: [[id, fields]], or [] for an empty stream, where
     * every future entry is new */
    const redisReply *e = r->type == REDIS_REPLY_ARRAY && r->elements ? r->element[0] : NULL;
    bool ok = e && e->type == REDIS_REPLY_ARRAY && e->elements && e->element[0]->type == REDIS_REPLY_STRING
                  ? set_last_id(qe, e->element[0]->str, e->element[0]->len)
                  : set_last_id(qe, "0-0", 3);
    if (!ok) {
        report(qe, BULLC_ENOMEM, "out of memory");
        retry_later(qe);
        return;
    }
    qe->resolved = true;
    step(qe);
}

/* The queue's meta.version, once per connection: a queue taken over by
 * another major than the one chosen stops the listener (its events differ:
 * 5.x writes `debounced` too). */
static void on_version(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_queue_events *qe = data;
    (void)err;
    qe->busy = false;
    if (qe->state != QE_RUNNING || !r) return;
    if (r->type != REDIS_REPLY_ERROR) {
        sds v = r->type == REDIS_REPLY_STRING ? sdsnewlen(r->str, r->len) : NULL;
        const bullc__protocol *p;
        bool write_version;
        bullc_error e = {0};
        int rc = bullc__protocol_settle(qe->queue, qe->explicit_major, v, qe->proto, &p, &write_version, &e);
        sdsfree(v);
        if (rc) {
            report(qe, rc, e.message);
            qe->version_stopped = true;
            return;
        }
        qe->proto = p;
    }
    qe->settled = c->generation;
    step(qe);
}

/* Sends the next command when the connection is ready and none is in
 * flight: the queue's meta.version once per connection, the stream's last
 * id (when started from "$"), then XREAD. */
static void step(bullc_queue_events *qe) {
    if (qe->state != QE_RUNNING || qe->busy || qe->version_stopped || !bullc__aconn_ready(&qe->conn)) return;
    int rc;
    if (qe->settled != qe->conn.generation) {
        const char *argv[] = {"HGET", qe->keys.k[BULLC__K_META], "version"};
        rc = bullc__aconn_cmd(&qe->conn, 0, on_version, qe, 3, argv, NULL);
    } else if (!qe->resolved) {
        const char *argv[] = {"XREVRANGE", qe->keys.k[BULLC__K_EVENTS], "+", "-", "COUNT", "1"};
        rc = bullc__aconn_cmd(&qe->conn, 0, on_last_id, qe, 6, argv, NULL);
    } else {
        char block[24];
        snprintf(block, sizeof block, "%lld", (long long)qe->block_ms);
        const char *argv[] = {"XREAD", "BLOCK", block, "STREAMS", qe->keys.k[BULLC__K_EVENTS], qe->last_id};
        /* Node's readEvents watchdog: a read that outlives its BLOCK by a
         * second is abandoned with its connection (BLOCK 0: never) */
        int64_t deadline = qe->block_ms > 0 ? qe->block_ms + 1000 : INT64_C(1) << 50;
        rc = bullc__aconn_cmd(&qe->conn, deadline, on_xread, qe, 6, argv, NULL);
        if (!rc && qe->announced != qe->conn.generation) {
            qe->announced = qe->conn.generation;
            qe->busy = true;
            if (qe->cbs.ready) qe->cbs.ready(qe, qe->last_id, qe->data);
            return;
        }
    }
    if (rc == 0)
        qe->busy = true;
    else if (rc == BULLC_ENOMEM)
        retry_later(qe);
    /* BULLC_ECONN: on_ready calls step again */
}

static void on_ready(bullc__aconn *c, void *data) {
    (void)c;
    step(data);
}

static void on_down(bullc__aconn *c, const bullc_error *err, void *data) {
    (void)c;
    report(data, err->code, err->message);
}

static void closed_one(bullc_queue_events *qe) {
    if (--qe->open > 0) return;
    qe->state = QE_CLOSED;
    if (qe->close_cb) qe->close_cb(qe, qe->close_data);
}

static void on_conn_closed(bullc__aconn *c, void *data) {
    (void)c;
    closed_one(data);
}

static void on_timer_closed(uv_handle_t *h) { closed_one(h->data); }

int bullc_queue_events_new(bullc_queue_events **out, struct uv_loop_s *loop, const char *queue,
                           const bullc_queue_events_opts *opts, const bullc_queue_events_callbacks *cbs, void *data,
                           bullc_error *err) {
    if (!opts) opts = &bullc__queue_events_opts_default;
    if (!loop) return bullc__err(err, BULLC_EINVAL, "loop must not be NULL");
    int rc = bullc__validate_queue_name(queue, err);
    if (rc) return rc;
    const char *prefix = opts->prefix ? opts->prefix : BULLC__DEFAULT_PREFIX;
    if (!*prefix) return bullc__err(err, BULLC_EINVAL, "prefix must not be empty");
    bullc_queue_events *qe = calloc(1, sizeof *qe);
    if (!qe) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    qe->loop = loop;
    qe->block_ms = opts->blocking_timeout;
    qe->explicit_major = opts->bullmq_version;
    if (cbs) qe->cbs = *cbs;
    qe->data = data;
    bool keys_ok = bullc__keys_init(&qe->keys, prefix, queue) == 0;
    qe->last_id = sdsnew(opts->last_event_id ? opts->last_event_id : "$");
    qe->queue = sdsnew(queue);
    qe->resolved = strcmp(qe->last_id ? qe->last_id : "$", "$") != 0;
    if (!keys_ok || !qe->last_id || !qe->queue)
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    else
        rc = bullc__aconn_init_queue(&qe->conn, loop, opts->redis, prefix, queue, ":qe", err);
    if (rc) {
        bullc__keys_free(&qe->keys);
        sdsfree(qe->last_id);
        sdsfree(qe->queue);
        free(qe);
        return rc;
    }
    qe->conn.on_ready = on_ready;
    qe->conn.on_down = on_down;
    qe->conn.on_closed = on_conn_closed;
    qe->conn.hook_data = qe;
    uv_timer_init(loop, &qe->retry);
    qe->retry.data = qe;
    qe->open = 2;
    qe->state = QE_IDLE;
    *out = qe;
    if (opts->autorun) bullc_queue_events_run(qe);
    return 0;
}

int bullc_queue_events_run(bullc_queue_events *qe) {
    if (qe->state == QE_RUNNING) return BULLC_EINVAL;
    if (qe->state != QE_IDLE) return BULLC_ECLOSED;
    qe->state = QE_RUNNING;
    bullc__aconn_start(&qe->conn);
    return 0;
}

const char *bullc_queue_events_last_id(const bullc_queue_events *qe) { return qe->last_id; }

void bullc_queue_events_close(bullc_queue_events *qe, void (*cb)(bullc_queue_events *qe, void *data), void *data) {
    if (qe->state == QE_CLOSING || qe->state == QE_CLOSED) return;
    qe->state = QE_CLOSING;
    qe->close_cb = cb;
    qe->close_data = data;
    uv_timer_stop(&qe->retry);
    uv_close((uv_handle_t *)&qe->retry, on_timer_closed);
    bullc__aconn_close(&qe->conn); /* a pending XREAD's callback runs now, and is ignored */
}

void bullc_queue_events_free(bullc_queue_events *qe) {
    if (!qe) return;
    bullc__keys_free(&qe->keys);
    sdsfree(qe->last_id);
    sdsfree(qe->queue);
    free(qe);
}

/* ---- the synchronous side: publishing and reading -------------------------------- */

int bullc_queue_publish_event(bullc_queue *q, const char *event_name, const char *const *fields, size_t nfields,
                              int64_t max_events, char **out_id, bullc_error *err) {
    if (!event_name || !*event_name) return bullc__err(err, BULLC_EINVAL, "event name must not be empty");
    if (nfields && !fields) return bullc__err(err, BULLC_EINVAL, "fields: NULL");
    for (size_t i = 0; i < 2 * nfields; i++)
        if (!fields[i]) return bullc__err(err, BULLC_EINVAL, "field %zu: NULL", i / 2);
    if (max_events < 0) return bullc__err(err, BULLC_EINVAL, "max_events must not be negative");
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "XADD");
    bullc__args_qkey(&a, q, BULLC__K_EVENTS);
    bullc__args_add(&a, "MAXLEN");
    bullc__args_add(&a, "~");
    bullc__args_i64(&a, max_events > 0 ? max_events : 1000);
    bullc__args_add(&a, "*");
    bullc__args_add(&a, "event");
    bullc__args_add(&a, event_name);
    for (size_t i = 0; i < 2 * nfields; i++) bullc__args_add(&a, fields[i]);
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    if (r->type != REDIS_REPLY_STRING)
        rc = bullc__err(err, BULLC_EPROTO, "XADD: unexpected reply type %d", r->type);
    else if (out_id && !(*out_id = strndup(r->str, r->len)))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    freeReplyObject(r);
    return rc;
}

/* The smallest id after `id` ("ms" or "ms-seq"), for an exclusive XRANGE
 * start that also works before Redis 6.2. */
static sds next_id(const char *id) {
    const char *dash = strchr(id, '-');
    int64_t ms, seq = 0;
    if (!bullc__parse_i64(id, dash ? (size_t)(dash - id) : strlen(id), &ms) || ms < 0) return NULL;
    if (dash && (!bullc__parse_i64(dash + 1, strlen(dash + 1), &seq) || seq < 0)) return NULL;
    if (seq == INT64_MAX) return sdscatprintf(sdsempty(), "%lld-0", (long long)ms + 1);
    return sdscatprintf(sdsempty(), "%lld-%lld", (long long)ms, (long long)seq + 1);
}

static bool put(cJSON *o, const char *key, cJSON *item) {
    if (!item) return false;
    if (!(key ? cJSON_AddItemToObject(o, key, item) : cJSON_AddItemToArray(o, item))) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static cJSON *text(const redisReply *r) {
    sds s = sdsnewlen(r->str, r->len);
    cJSON *j = s ? cJSON_CreateString(s) : NULL;
    sdsfree(s);
    return j;
}

int bullc_queue_get_events(bullc_queue *q, const char *after_id, size_t count, char **out_json, bullc_error *err) {
    cJSON *out = cJSON_CreateArray();
    if (!out) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (after_id && !strcmp(after_id, "$")) return bullc__json_out(out, out_json, err);
    sds start = after_id && *after_id ? next_id(after_id) : sdsnew("-");
    if (!start) {
        cJSON_Delete(out);
        return bullc__err(err, BULLC_EINVAL, "\"%s\" is not a stream id (ms or ms-seq)", after_id);
    }
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "XRANGE");
    bullc__args_qkey(&a, q, BULLC__K_EVENTS);
    bullc__args_own(&a, start);
    bullc__args_add(&a, "+");
    if (count) {
        bullc__args_add(&a, "COUNT");
        bullc__args_i64(&a, (int64_t)count);
    }
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) {
        cJSON_Delete(out);
        return rc;
    }
    bool ok = r->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING) continue;
        cJSON *o = cJSON_CreateObject();
        if (!put(out, NULL, o)) {
            ok = false;
            break;
        }
        const redisReply *f = e->element[1];
        const redisReply *ev = NULL;
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements && !ev; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING && !strcmp(f->element[k]->str, "event"))
                ev = f->element[k + 1];
        ok = put(o, "id", text(e->element[0])) && put(o, "event", ev ? text(ev) : cJSON_CreateString(""));
        for (size_t k = 0; ok && f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
            const redisReply *name = f->element[k], *value = f->element[k + 1];
            if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING || value == ev) continue;
            ok = put(o, name->str, text(value));
        }
    }
    int type = r->type;
    freeReplyObject(r);
    if (!ok) {
        cJSON_Delete(out);
        return type != REDIS_REPLY_ARRAY ? bullc__err(err, BULLC_EPROTO, "XRANGE: unexpected reply type %d", type)
                                         : bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return bullc__json_out(out, out_json, err);
}
