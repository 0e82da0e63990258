/* SPDX-License-Identifier: MIT */
/* bullc_aqueue: queue getters answered on a libuv loop, over a connection
 * of its own or one shared with other handles (aqueue_conn.c), for
 * programs that must not stall their loop on Redis (bullc-worker's
 * /metrics). The calls, their keys and the reading of their replies are the
 * synchronous getters' (getters.c, args.c); what is here is the waiting:
 * for the connection, for the queue's major (meta.version, read once per
 * connection as bullc_queue does), for the reply. */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

typedef enum { AQ_COUNTS, AQ_JOB, AQ_EXT, AQ_SETTLE } aq_kind;

typedef struct aq_call {
    bullc_aqueue *q;
    aq_kind kind;
    bullc_aqueue_json_cb cb;
    void *data;
    const char **names; /* AQ_COUNTS: checked states, borrowed strings (bullc__states_check) */
    int nnames;
    bool defaults;
    char *id;                     /* AQ_JOB */
    const bullc__aq_ext *ext_ops; /* AQ_EXT: a call made elsewhere (aqueue_add.c) */
    void *ext;
    int rc; /* a failure decided before any reply, for the deferred callback */
    bullc_error err;
    struct aq_call *next; /* in the waiting or the failed list; once sent, aconn's list holds it */
} aq_call;

typedef struct {
    aq_call *head, *tail;
} aq_list;

struct bullc_aqueue {
    uv_loop_t *loop;
    bullc_aqueue_conn *own; /* bullc_aqueue_new's connection, closed with the handle; NULL when shared */
    bullc_aqueue_conn *conn;
    bullc__aq_node *node; /* the connection its calls go over */
    bullc__aq_link link;
    bullc__keys keys;
    char *name;
    int explicit_major;
    const bullc__protocol *proto; /* NULL until settled once */
    unsigned settled_generation;  /* the connection proto was settled on (0: none) */
    bool settling;                /* meta.version's HGET is in flight */
    bool write_version;           /* meta.version is ours to write (not another major's) */
    bullc__aq_adds *adds;         /* what adds need (aqueue_add.c) */
    aq_list waiting;              /* for the connection or the major */
    aq_list failed;               /* answered without Redis: their callbacks run from `defer` */
    uv_timer_t defer;
    int open; /* handles not closed yet: `defer`, and `own` */
    bool closing;
    void (*close_cb)(bullc_aqueue *aq, void *data);
    void *close_data;
};

static void push(aq_list *l, aq_call *c) {
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static aq_call *pop(aq_list *l) {
    aq_call *c = l->head;
    if (c && !(l->head = c->next)) l->tail = NULL;
    return c;
}

static void call_free(aq_call *c) {
    free(c->names);
    free(c->id);
    free(c);
}

/* Runs a call's callback with a failure and frees the call. */
static void call_fail(aq_call *c, int rc, const bullc_error *err) {
    if (c->kind == AQ_EXT)
        c->ext_ops->fail(c->q, c->ext, rc, err);
    else
        c->cb(c->q, rc, NULL, err, c->data);
    call_free(c);
}

static void on_defer(uv_timer_t *t) {
    bullc_aqueue *q = t->data;
    aq_list l = q->failed;
    q->failed = (aq_list){NULL, NULL};
    for (aq_call *c; (c = pop(&l));) call_fail(c, c->rc, &c->err);
}

/* Fails every waiting call, from the loop (they may have been registered
 * by the caller's current call). */
static void fail_waiting(bullc_aqueue *q, const bullc_error *err) {
    for (aq_call *c; (c = pop(&q->waiting));) {
        c->rc = err->code;
        c->err = *err;
        push(&q->failed, c);
    }
    if (q->failed.head) uv_timer_start(&q->defer, on_defer, 0, 0);
}

static void kick(bullc_aqueue *q);

static void counts_reply(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data);
static void job_reply(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data);

/* Sends a call; 0, or the code with `c` failed (deferred). */
static int send_call(bullc_aqueue *q, aq_call *c) {
    int rc;
    bullc_error e = {0};
    bool ext = c->kind == AQ_EXT;
    if (ext) {
        rc = c->ext_ops->send(q, c->ext, &e);
        if (!rc) free(c); /* the call is the extension's now */
    } else if (c->kind == AQ_COUNTS) {
        c->nnames = bullc__states_for(q->proto, c->names, c->nnames, c->defaults);
        bullc__args a;
        bullc__args_call_keys(&a, q->proto, &q->keys, BULLC__C_GET_COUNTS, NULL, 0);
        bullc__counts_args(&a, c->names, (size_t)c->nnames);
        rc = a.oom ? BULLC_ENOMEM
                   : bullc__aconn_eval_for(&q->node->conn, q, bullc__call_script(q->proto, BULLC__C_GET_COUNTS), 0,
                                           counts_reply, c, a.argc, a.argv, a.lens);
        bullc__args_free(&a);
    } else {
        sds key = bullc__job_key(&q->keys, c->id, BULLC__K_JOB);
        const char *argv[] = {"HGETALL", key};
        size_t lens[] = {7, key ? sdslen(key) : 0};
        rc = key ? bullc__aconn_cmd_for(&q->node->conn, q, 0, job_reply, c, 2, argv, lens) : BULLC_ENOMEM;
        sdsfree(key);
    }
    if (rc) {
        c->rc = rc;
        if (e.code)
            c->err = e;
        else
            bullc__err(&c->err, rc, rc == BULLC_ENOMEM ? "out of memory" : "connection to Redis lost");
        push(&q->failed, c);
        uv_timer_start(&q->defer, on_defer, 0, 0);
    }
    return rc;
}

static void settle_reply(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data) {
    aq_call *c = data;
    (void)conn;
    bullc_aqueue *q = c->q;
    call_free(c);
    q->settling = false;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fail_waiting(q, err);
        return;
    }
    sds v = r->type == REDIS_REPLY_STRING ? sdsnewlen(r->str, r->len) : NULL;
    const bullc__protocol *p;
    bullc_error e = {0};
    int rc = bullc__protocol_settle(q->name, q->explicit_major, v, q->proto, &p, &q->write_version, &e);
    sdsfree(v);
    if (rc) {
        fail_waiting(q, &e);
        return;
    }
    q->proto = p;
    q->settled_generation = q->node->conn.generation;
    kick(q);
}

/* Moves the waiting calls on as far as the connection allows. */
static void kick(bullc_aqueue *q) {
    if (q->closing || !q->waiting.head) return;
    bullc__aconn *conn = &q->node->conn;
    if (!bullc__aconn_ready(conn)) {
        /* Redis is known to be down: an error now rather than a wait of
         * unknown length; otherwise the node's next event moves them on */
        if (q->node->down) fail_waiting(q, &q->node->down_err);
        return;
    }
    if (q->settled_generation != conn->generation) {
        if (q->settling) return;
        const char *argv[] = {"HGET", q->keys.k[BULLC__K_META], "version"};
        aq_call *c = calloc(1, sizeof *c);
        if (c) *c = (aq_call){.q = q, .kind = AQ_SETTLE};
        if (!c || bullc__aconn_cmd_for(conn, q, 0, settle_reply, c, 3, argv, NULL)) {
            free(c);
            bullc_error e;
            bullc__err(&e, c ? BULLC_ECONN : BULLC_ENOMEM, c ? "connection to Redis lost" : "out of memory");
            fail_waiting(q, &e);
            return;
        }
        q->settling = true;
        return;
    }
    for (aq_call *c; (c = pop(&q->waiting));) send_call(q, c);
}

/* A reply's failure as the caller sees it (a close answered its calls
 * before their replies came). */
static int reply_failure(const redisReply *r, const bullc_error *err, bullc_error *out) {
    *out = *err;
    return err->code ? err->code : bullc__err(out, BULLC_EREDIS, "%s", r ? r->str : "no reply");
}

static void counts_reply(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data) {
    aq_call *c = data;
    (void)conn;
    bullc_error e = {0};
    int rc = !r || r->type == REDIS_REPLY_ERROR ? reply_failure(r, err, &e) : 0;
    int64_t *counts = rc ? NULL : calloc((size_t)c->nnames + 1, sizeof *counts);
    char *json = NULL;
    if (!rc && !counts) rc = bullc__err(&e, BULLC_ENOMEM, "out of memory");
    if (!rc && !(rc = bullc__counts_read(r, (size_t)c->nnames, counts, &e)))
        rc = bullc__counts_json(c->names, counts, (size_t)c->nnames, &json, &e);
    free(counts);
    c->cb(c->q, rc, json, rc ? &e : NULL, c->data);
    bullc_free(json);
    call_free(c);
}

static void job_reply(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data) {
    aq_call *c = data;
    (void)conn;
    bullc_error e = {0};
    int rc = !r || r->type == REDIS_REPLY_ERROR ? reply_failure(r, err, &e) : 0;
    char *json = NULL;
    if (!rc) rc = bullc__job_reply(c->id, r, &json, &e);
    c->cb(c->q, rc, json, rc ? &e : NULL, c->data);
    bullc_free(json);
    call_free(c);
}

void bullc__aqueue_node_event(bullc_aqueue *q, const bullc_error *down) {
    (void)down; /* kick reads it from the node */
    kick(q);
}

static void closed_one(bullc_aqueue *q) {
    if (--q->open == 0 && q->close_cb) q->close_cb(q, q->close_data);
}

static void on_own_closed(bullc_aqueue_conn *conn, void *data) {
    bullc_aqueue *q = data;
    bullc_aqueue_conn_free(conn);
    q->own = NULL;
    closed_one(q);
}

static void on_defer_closed(uv_handle_t *h) { closed_one(h->data); }

static void free_conn(bullc_aqueue_conn *conn, void *data) {
    (void)data;
    bullc_aqueue_conn_free(conn);
}

/* A handle on `shared`, or on a connection of its own when NULL. */
static int aqueue_new(bullc_aqueue **out, uv_loop_t *loop, bullc_aqueue_conn *shared, const char *name,
                      const bullc_queue_opts *opts, bullc_error *err) {
    if (!opts) opts = &bullc__queue_opts_default;
    int rc = bullc__validate_queue_name(name, err);
    if (rc) return rc;
    if (!loop) return bullc__err(err, BULLC_EINVAL, "loop: NULL");
    const char *prefix = opts->prefix ? opts->prefix : BULLC__DEFAULT_PREFIX;
    bullc_aqueue *q = calloc(1, sizeof *q);
    if (!q) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    q->loop = loop;
    q->link.q = q;
    q->explicit_major = opts->bullmq_version;
    if (opts->bullmq_version) q->proto = bullc__protocol_of(opts->bullmq_version);
    q->name = strdup(name);
    if (bullc__keys_init(&q->keys, prefix, name) || !q->name)
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    else if (!(q->adds = bullc__aq_adds_new(opts, name)))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    else if (!shared && !(rc = bullc__aqueue_conn_own(&q->own, loop, opts->redis, prefix, name, err)))
        shared = q->own;
    if (!rc) rc = bullc__aqueue_conn_attach(shared, &q->link, prefix, name, &q->node, err);
    if (rc) {
        if (q->own) bullc_aqueue_conn_close(q->own, free_conn, NULL);
        bullc__aq_adds_free(q->adds);
        bullc__keys_free(&q->keys);
        free(q->name);
        free(q);
        return rc;
    }
    q->conn = shared;
    uv_timer_init(loop, &q->defer);
    q->defer.data = q;
    q->open = q->own ? 2 : 1;
    *out = q;
    return 0;
}

int bullc_aqueue_new(bullc_aqueue **out, uv_loop_t *loop, const char *name, const bullc_queue_opts *opts,
                     bullc_error *err) {
    return aqueue_new(out, loop, NULL, name, opts, err);
}

int bullc_aqueue_new_shared(bullc_aqueue **out, bullc_aqueue_conn *conn, const char *name, const bullc_queue_opts *opts,
                            bullc_error *err) {
    if (!conn) return bullc__err(err, BULLC_EINVAL, "conn: NULL");
    return aqueue_new(out, bullc__aqueue_conn_loop(conn), conn, name, opts, err);
}

/* A new call's record, or NULL with *rc set. */
static aq_call *call_new(bullc_aqueue *q, aq_kind kind, bullc_aqueue_json_cb cb, void *data, int *rc) {
    *rc = q->closing ? BULLC_ECLOSED : !cb ? BULLC_EINVAL : 0;
    aq_call *c = *rc ? NULL : calloc(1, sizeof *c);
    if (!*rc && !c) *rc = BULLC_ENOMEM;
    if (c) *c = (aq_call){.q = q, .kind = kind, .cb = cb, .data = data};
    return c;
}

static int enqueue(bullc_aqueue *q, aq_call *c) {
    push(&q->waiting, c);
    kick(q);
    return 0;
}

int bullc_aqueue_get_job_counts(bullc_aqueue *q, const char *const *states, size_t nstates, bullc_aqueue_json_cb cb,
                                void *data) {
    int rc;
    aq_call *c = call_new(q, AQ_COUNTS, cb, data, &rc);
    if (!c) return rc;
    if ((rc = bullc__states_check(states, nstates, &c->names, &c->defaults, NULL)) < 0) {
        free(c);
        return rc;
    }
    c->nnames = rc;
    return enqueue(q, c);
}

int bullc_aqueue_get_job(bullc_aqueue *q, const char *id, bullc_aqueue_json_cb cb, void *data) {
    int rc = bullc__check_job_id(id, NULL);
    if (rc) return rc;
    aq_call *c = call_new(q, AQ_JOB, cb, data, &rc);
    if (!c) return rc;
    if (!(c->id = strdup(id))) {
        free(c);
        return BULLC_ENOMEM;
    }
    return enqueue(q, c);
}

void bullc_aqueue_close(bullc_aqueue *q, void (*cb)(bullc_aqueue *aq, void *data), void *data) {
    if (q->closing) return;
    q->closing = true;
    q->close_cb = cb;
    q->close_data = data;
    bullc_error e;
    bullc__err(&e, BULLC_ECLOSED, "the queue handle was closed");
    for (aq_call *c; (c = pop(&q->waiting));) call_fail(c, BULLC_ECLOSED, &e);
    for (aq_call *c; (c = pop(&q->failed));) call_fail(c, BULLC_ECLOSED, &e);
    /* the calls in flight (adds' commands too) are answered now; their
     * replies, when they come, are dropped (the connection may be shared
     * and stay) */
    bullc__aconn_forget(&q->node->conn, q, &e);
    uv_timer_stop(&q->defer);
    uv_close((uv_handle_t *)&q->defer, on_defer_closed);
    bullc__aqueue_conn_detach(q->conn, q->node, &q->link);
    if (q->own) bullc_aqueue_conn_close(q->own, on_own_closed, q);
}

void bullc_aqueue_free(bullc_aqueue *q) {
    if (!q) return;
    bullc__aq_adds_free(q->adds);
    bullc__keys_free(&q->keys);
    free(q->name);
    free(q);
}

/* ---- for aqueue_add.c ---- */
int bullc__aqueue_enqueue(bullc_aqueue *q, const bullc__aq_ext *ops, void *ext) {
    aq_call *c = q->closing ? NULL : calloc(1, sizeof *c);
    if (!c) return q->closing ? BULLC_ECLOSED : BULLC_ENOMEM;
    *c = (aq_call){.q = q, .kind = AQ_EXT, .ext_ops = ops, .ext = ext};
    return enqueue(q, c);
}

bullc__aconn *bullc__aqueue_conn(bullc_aqueue *q) { return &q->node->conn; }
void bullc__aqueue_set_node(bullc_aqueue *q, bullc__aq_node *node) { q->node = node; }
const bullc__keys *bullc__aqueue_keys(const bullc_aqueue *q) { return &q->keys; }
const bullc__protocol *bullc__aqueue_proto(const bullc_aqueue *q) { return q->proto; }
int bullc__aqueue_explicit_major(const bullc_aqueue *q) { return q->explicit_major; }
bool bullc__aqueue_write_version(const bullc_aqueue *q) { return q->write_version; }
bool bullc__aqueue_closing(const bullc_aqueue *q) { return q->closing; }
bullc__aq_adds *bullc__aqueue_adds(bullc_aqueue *q) { return q->adds; }
