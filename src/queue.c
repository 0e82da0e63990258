/* SPDX-License-Identifier: MIT */
/* Queue: the producer side. Adds go through BullMQ's own add scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* The add calls, in the order their scripts are loaded. */
static const bullc__call_id add_calls[] = {BULLC__C_ADD_STANDARD, BULLC__C_ADD_DELAYED, BULLC__C_ADD_PRIORITIZED};
#define S_N 3

struct bullc_queue {
    bullc__conn conn;
    char *name;
    char *prefix;
    bullc__keys keys;             /* built once per handle */
    const bullc__protocol *proto; /* the BullMQ major spoken to this queue */
    int explicit_major;           /* 0: auto */
    bool settled;                 /* proto read from the queue's meta.version once */
    bool write_version;           /* meta.version is ours to write (not another major's) */
    unsigned settled_generation;  /* connection generation whose meta.version was read */
    unsigned scripts_generation;  /* connection generation the add scripts were loaded on */
    bullc_job_opts *defaults;
    int64_t max_len_events;
    bool skip_meta_update;
    bullc_tracer *tracer;     /* borrowed */
    unsigned meta_generation; /* connection generation whose meta was written */
    bullc_repeat_strategy_fn repeat_strategy;
    void *repeat_data;
};

int bullc_queue_new(bullc_queue **out, const char *name, const bullc_queue_opts *opts, bullc_error *err) {
    if (!opts) opts = &bullc__queue_opts_default;
    int rc = bullc__validate_queue_name(name, err);
    if (rc) return rc;
    if (opts->default_job_opts && (rc = bullc_job_opts_validate(opts->default_job_opts, err))) {
        bullc__err_prefix(err, "default job options: ");
        return rc;
    }
    bullc_queue *q = calloc(1, sizeof *q);
    if (!q) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    if ((rc = bullc__conn_init(&q->conn, opts->redis, err))) {
        free(q);
        return rc;
    }
    q->name = strdup(name);
    q->prefix = strdup(opts->prefix ? opts->prefix : BULLC__DEFAULT_PREFIX);
    q->max_len_events = opts->max_len_events;
    q->skip_meta_update = opts->skip_meta_update;
    q->tracer = opts->tracer;
    q->repeat_strategy = opts->repeat_strategy;
    q->repeat_data = opts->repeat_data;
    q->explicit_major = opts->bullmq_version;
    q->proto = opts->bullmq_version ? bullc__protocol_of(opts->bullmq_version) : &bullc__protocol_v6;
    if (opts->default_job_opts) q->defaults = bullc__job_opts_dup(opts->default_job_opts);
    bool keys_ok = q->prefix && bullc__keys_init(&q->keys, q->prefix, name) == 0;
    if (!q->name || !q->prefix || !keys_ok || (opts->default_job_opts && !q->defaults)) {
        bullc_queue_free(q);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    if ((rc = bullc__cluster_route(q->conn.opts, q->prefix, name, err))) {
        bullc_queue_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

void bullc_queue_free(bullc_queue *q) {
    if (!q) return;
    bullc__conn_close(&q->conn);
    free(q->name);
    free(q->prefix);
    bullc__keys_free(&q->keys);
    bullc_job_opts_free(q->defaults);
    free(q);
}

const char *bullc_queue_name(const bullc_queue *q) { return q->name; }
const char *bullc_queue_prefix(const bullc_queue *q) { return q->prefix; }
const char *bullc_queue_key_base(const bullc_queue *q) { return q->keys.k[BULLC__K_BASE]; }
int bullc_queue_bullmq_version(const bullc_queue *q) { return q->proto->major; }

/* Reads meta.version once per connection and settles the major spoken to the
 * queue: before anything is written, so a conflict writes nothing. */
static int settle(bullc_queue *q, bullc_error *err) {
    if (q->settled_generation == q->conn.generation) return 0;
    const char *argv[] = {"HGET", q->keys.k[BULLC__K_META], "version"};
    redisReply *r = NULL;
    int rc = bullc__conn_command(&q->conn, &r, err, 3, argv, NULL);
    if (rc) return rc;
    sds v = r->type == REDIS_REPLY_STRING ? sdsnewlen(r->str, r->len) : NULL;
    freeReplyObject(r);
    const bullc__protocol *p;
    rc =
        bullc__protocol_settle(q->name, q->explicit_major, v, q->settled ? q->proto : NULL, &p, &q->write_version, err);
    sdsfree(v);
    if (rc) return rc;
    q->proto = p;
    q->settled = true;
    q->settled_generation = q->conn.generation;
    return 0;
}

/* Appends the HMSET of the meta fields Node's Queue constructor writes, so
 * dashboards and Node peers see a normal queue; false when this connection
 * has written them already (or the handle skips them). */
static bool append_meta(bullc_queue *q, int *rc, bullc_error *err) {
    if (q->skip_meta_update || q->meta_generation == q->conn.generation) return false;
    char maxlen[24];
    snprintf(maxlen, sizeof maxlen, "%lld", (long long)q->max_len_events);
    const char *argv[] = {"HMSET",   q->keys.k[BULLC__K_META], "opts.maxLenEvents", maxlen,
                          "version", q->proto->meta_version};
    *rc = bullc__conn_append(&q->conn, q->write_version ? 6 : 4, argv, NULL, err);
    return true;
}

static int read_meta(bullc_queue *q, bullc_error *err) {
    redisReply *r = NULL;
    int rc = bullc__conn_read(&q->conn, &r, err);
    if (!rc && r->type == REDIS_REPLY_ERROR) rc = bullc__reply_err(r, err);
    if (!rc) q->meta_generation = q->conn.generation;
    freeReplyObject(r);
    return rc;
}

/* Connects and, once per connection, settles the major and writes the meta
 * fields. */
static int ready(bullc_queue *q, bullc_error *err) {
    int rc = bullc__conn_ensure(&q->conn, err);
    if (rc || (rc = settle(q, err)) || !append_meta(q, &rc, err) || rc) return rc;
    return read_meta(q, err);
}

int bullc_queue_ping(bullc_queue *q, bullc_error *err) {
    int rc = ready(q, err);
    if (rc) return rc;
    const char *argv[] = {"PING"};
    redisReply *r = NULL;
    rc = bullc__conn_command(&q->conn, &r, err, 1, argv, NULL);
    freeReplyObject(r);
    return rc;
}

void bullc__add_call_free(bullc__add_call *c) { sdsfree(c->args); }

int bullc__add_call_build(bullc__add_call *c, const bullc__protocol *proto, const bullc__keys *ks, const char *name,
                          const bullc__prepared_job *pj, unsigned flags) {
    memset(c, 0, sizeof *c);
    bullc__call_id call = flags & BULLC__ADD_WAITING_CHILDREN ? BULLC__C_ADD_PARENT
                          : pj->delay > 0                     ? BULLC__C_ADD_DELAYED
                          : pj->priority > 0                  ? BULLC__C_ADD_PRIORITIZED
                                                              : BULLC__C_ADD_STANDARD;
    c->proto = proto;
    c->script = bullc__call_script(proto, call);
    c->argc = bullc__call_keys(proto, call, ks, NULL, c->argv, c->lens);
    const sds base = ks->k[BULLC__K_BASE];
    /* ARGV[1]: the positional args (10 in 6.x, 9 in 5.x); nil in every slot
     * left empty (parent, repeat key, defer-release), as msgpackr packs null. */
    bullc__packbuf pb;
    bullc__packbuf_init(&pb);
    msgpack_pack_array(&pb.pk, (uint32_t)proto->add_args);
    bullc__pack_strn(&pb.pk, base, sdslen(base));
    bullc__pack_str(&pb.pk, pj->job_id ? pj->job_id : "");
    bullc__pack_str(&pb.pk, name);
    msgpack_pack_int64(&pb.pk, pj->timestamp);
    bool oom = false;
    if (pj->parent_key) {
        bullc__pack_strn(&pb.pk, pj->parent_key, sdslen(pj->parent_key));
        sds deps = sdscat(sdsdup(pj->parent_key), ":dependencies");
        oom = !deps;
        if (deps) bullc__pack_strn(&pb.pk, deps, sdslen(deps));
        sdsfree(deps);
        msgpack_sbuffer_write(&pb.sbuf, pj->parent_packed, sdslen(pj->parent_packed)); /* packed already */
    } else {
        msgpack_pack_nil(&pb.pk); /* parentKey */
        msgpack_pack_nil(&pb.pk); /* parent dependencies key */
        msgpack_pack_nil(&pb.pk); /* parent */
    }
    if (pj->rjk)
        bullc__pack_strn(&pb.pk, pj->rjk, sdslen(pj->rjk));
    else
        msgpack_pack_nil(&pb.pk);
    if (pj->dedup_id) {
        sds dk = bullc__dedup_key(ks, pj->dedup_id);
        bullc__pack_strn(&pb.pk, dk, sdslen(dk));
        sdsfree(dk);
    } else {
        msgpack_pack_nil(&pb.pk);
    }
    if (proto->add_args > 9) { /* deferParentRelease (6.x) */
        if (flags & BULLC__ADD_DEFER_RELEASE)
            msgpack_pack_int(&pb.pk, 1);
        else
            msgpack_pack_nil(&pb.pk);
    }
    c->args = oom ? NULL : sdsnewlen(pb.sbuf.data, pb.sbuf.size);
    bullc__packbuf_destroy(&pb);
    if (!c->args) return BULLC_ENOMEM;
    c->argv[c->argc] = c->args;
    c->lens[c->argc++] = sdslen(c->args);
    c->argv[c->argc] = pj->data;
    c->lens[c->argc++] = sdslen(pj->data);
    c->argv[c->argc] = pj->packed_opts;
    c->lens[c->argc++] = sdslen(pj->packed_opts);
    return 0;
}

/* SCRIPT LOAD of the three add scripts, once per connection: an EVALSHA
 * inside MULTI that meets NOSCRIPT cannot fall back to EVAL, so the scripts
 * must be cached before the transaction. */
static int load_add_scripts(bullc_queue *q, bullc_error *err) {
    const bullc__script *scripts[S_N];
    for (int k = 0; k < S_N; k++) scripts[k] = bullc__call_script(q->proto, add_calls[k]);
    return bullc__conn_load_scripts(&q->conn, scripts, S_N, &q->scripts_generation, err);
}

/* The queue as a batch sees it; the major is known once told or settled. */
static bullc__add_target target(const bullc_queue *q) {
    return (bullc__add_target){q->proto, &q->keys, q->defaults, q->explicit_major || q->settled ? q->proto->major : 0};
}

/* A batch's commands go to the connection's output buffer. */
static int append_cmd(void *ctx, const bullc__script *script, int argc, const char *const *argv, const size_t *lens,
                      bullc_error *err) {
    bullc_queue *q = ctx;
    if (!script) return bullc__conn_append(&q->conn, argc, (const char **)argv, lens, err); /* only read */
    return bullc__conn_append_script(&q->conn, script, false, argc, argv, lens, err);
}

/* How many appended jobs go to the socket at once while the rest of a batch
 * is still being prepared. */
#define FLUSH_EVERY 64

/* Sends the pending adds in one transaction and one round trip: MULTI, the
 * probes and EVALSHAs, EXEC. Jobs are validated and formatted while the
 * transaction is being sent, so Redis parses the first part of a long batch
 * while the rest is prepared; a job that fails validation drops the
 * connection, which discards the open transaction: nothing is added.
 * Entries that met NOSCRIPT (a SCRIPT FLUSH since the scripts were loaded)
 * did nothing and stay pending for a retry. */
static int send_batch(bullc_queue *q, bullc__add_batch *b, bullc_error *err) {
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    int rc = bullc__conn_append(&q->conn, 1, multi, NULL, err);
    size_t queued = 0;
    bullc__add_target t = target(q);
    for (size_t i = 0; i < b->n && !rc; i++) {
        if (i == b->prepared && (rc = bullc__add_batch_prepare(b, &t, err))) break;
        if (!b->pending[i]) continue;
        rc = bullc__add_batch_emit(b, i, &q->keys, append_cmd, q, err);
        queued += bullc__add_probes(&b->pj[i]) + 1;
        if (!rc && i % FLUSH_EVERY == FLUSH_EVERY - 1 && i + 1 < b->n) rc = bullc__conn_flush_some(&q->conn, err);
    }
    if (!rc) rc = bullc__conn_append(&q->conn, 1, exec, NULL, err);
    /* after EXEC: a batch that fails validation must write nothing at all */
    bool meta = !rc && append_meta(q, &rc, err);
    if (rc) {
        bullc__conn_drop(&q->conn); /* discards the transaction and what was not sent */
        return rc;
    }
    /* Every reply is read, even after an error, to keep the pipeline in step.
     * An error while queueing makes EXEC abort: then nothing was written. */
    redisReply *r = NULL;
    for (size_t k = 0; k < 1 + queued; k++) {
        if ((rc = bullc__conn_read(&q->conn, &r, err))) return rc;
        int qrc = r->type == REDIS_REPLY_ERROR ? bullc__reply_err(r, rc ? NULL : err) : 0;
        if (!rc) rc = qrc;
        freeReplyObject(r);
    }
    int qrc = rc;
    if ((rc = bullc__conn_read(&q->conn, &r, qrc ? NULL : err))) return qrc ? qrc : rc;
    if (meta && (rc = read_meta(q, qrc ? NULL : err))) {
        freeReplyObject(r);
        return qrc ? qrc : rc;
    }
    if (qrc) {
        freeReplyObject(r);
        return qrc;
    }
    bool noscript;
    rc = bullc__add_batch_exec(b, r, queued, &noscript, err);
    if (noscript) q->scripts_generation = 0; /* load them again before the retry */
    freeReplyObject(r);
    return rc;
}

static int add_many(bullc_queue *q, bullc_bulk_job *jobs, size_t n, bool prefix_index, bullc_error *err) {
    if (n == 0) return 0;
    if (!jobs) return bullc__err(err, BULLC_EINVAL, "jobs: NULL");
    bullc__add_batch b;
    int rc = 0;
    bullc__span span;
    sds tm = NULL;
    if (q->tracer) {
        bullc__span_start(q->tracer, &span, BULLC__SPAN_PRODUCER, NULL);
        tm = bullc__span_metadata(&span);
    }
    if (bullc__add_batch_init(&b, jobs, n, prefix_index, tm) || (q->tracer && !tm)) {
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        goto out;
    }
    /* The first job is checked before connecting: bad input is reported as
     * such even when Redis is down. */
    bullc__add_target t = target(q);
    if ((rc = bullc__add_batch_prepare(&b, &t, err))) goto out;
    /* settled before the meta is written: a job its major refuses writes nothing */
    if ((rc = bullc__conn_ensure(&q->conn, err)) || (rc = settle(q, err))) goto out;
    t = target(q);
    if ((rc = bullc__add_batch_rebuild(&b, 0, &t, err))) goto out;
    /* 5.x's legacy repeatable job: its own two calls, as Node 5's Queue.add
       makes them (its addBulk adds such a job as any other) */
    if (b.pj[0].repeat && !prefix_index) {
        rc = bullc__repeat5_add(q, &jobs[0], err);
        goto out;
    }
    if (n == 1 && !bullc__add_probes(&b.pj[0])) {
        if ((rc = ready(q, err))) goto out;
        /* The common single add: one EVALSHA, no transaction needed. */
        redisReply *r = NULL;
        bullc__add_probes_seen none = {0};
        rc = bullc__conn_eval(&q->conn, b.calls[0].script, b.calls[0].argc, b.calls[0].argv, b.calls[0].lens, &r, err);
        if (!rc) rc = bullc__add_reply(r, &b.pj[0], &none, &jobs[0], err);
        freeReplyObject(r);
        goto out;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((rc = load_add_scripts(q, err)) || (rc = send_batch(q, &b, err))) break;
        size_t left = 0;
        for (size_t i = 0; i < n; i++) left += b.pending[i];
        if (!left) break;
        if (attempt == 2) rc = bullc__err(err, BULLC_EREDIS, "NOSCRIPT: Redis keeps dropping BullMQ's scripts");
    }
out:
    if (rc < 0) bullc__add_batch_fail(&b);
    if (q->tracer) bullc__add_span_end(q->tracer, &span, q->name, jobs, n, prefix_index);
    sdsfree(tm);
    bullc__add_batch_free(&b);
    return rc;
}

int bullc_queue_add_bulk(bullc_queue *q, bullc_bulk_job *jobs, size_t count, bullc_error *err) {
    return add_many(q, jobs, count, true, err);
}

int bullc_queue_add(bullc_queue *q, const char *name, const char *data_json, const bullc_job_opts *opts, char **out_id,
                    bullc_error *err) {
    bullc_bulk_job one = {name, data_json, opts, NULL, 0};
    int rc = add_many(q, &one, 1, false, err);
    if (rc) return rc;
    if (out_id)
        *out_id = one.id;
    else
        free(one.id);
    return one.status;
}

/* ---- accessors for admin.c / events.c ---- */
const bullc__protocol *bullc__queue_proto(const bullc_queue *q) { return q->proto; }
int bullc__queue_explicit_major(const bullc_queue *q) { return q->explicit_major; }

int bullc__queue_conn(bullc_queue *q, bullc__conn **out, bullc_error *err) {
    int rc = ready(q, err);
    if (!rc) *out = &q->conn;
    return rc;
}

const bullc__keys *bullc__queue_keys(const bullc_queue *q) { return &q->keys; }

const bullc_job_opts *bullc__queue_default_opts(const bullc_queue *q) { return q->defaults; }

bullc_repeat_strategy_fn bullc__queue_repeat_strategy(const bullc_queue *q, void **data) {
    *data = q->repeat_data;
    return q->repeat_strategy;
}

/* ---- accessors for checks.c ---- */
const bullc_redis_opts *bullc__queue_redis_opts(const bullc_queue *q) { return q->conn.opts; }
