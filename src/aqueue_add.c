/* SPDX-License-Identifier: MIT */
/* bullc_aqueue_add / _add_bulk: the synchronous producer's batch (add_batch.c:
 * the jobs checked and formatted, their probes and script calls, EXEC's reply
 * read) sent on the aqueue's asynchronous connection. Each add is one
 * transaction, sent in one go (nothing else can come between its MULTI and
 * its EXEC on the loop's thread), preceded on each new connection by SCRIPT
 * LOAD of the add scripts, once whatever the number of handles sharing it
 * (an EVALSHA inside MULTI cannot fall back to EVAL)
 * and followed by the queue's meta, as queue.c does. An add whose reply is
 * lost with the connection is reported, never sent again: only the caller
 * knows whether its jobs carry an id that makes a second add harmless.
 * A 5.x legacy repeatable job (bullc_aqueue_add with `repeat`) is Node 5's
 * two calls instead (repeat5.c builds them), the second sent from the
 * first's reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* The add calls, in the order their scripts are loaded. */
static const bullc__call_id add_calls[] = {BULLC__C_ADD_STANDARD, BULLC__C_ADD_DELAYED, BULLC__C_ADD_PRIORITIZED};
#define S_N 3
/* NOSCRIPT in EXEC (a SCRIPT FLUSH between the load and the add): the
 * scripts are loaded again and the jobs it answered sent again, so often. */
#define NOSCRIPT_TRIES 3
/* send_add's answer for a repeatable job with no iteration left (nothing to
 * write): a code that is no error, so that `fail` answers it from the loop. */
#define REPEAT_NONE 1

struct bullc__aq_adds {
    bullc_job_opts *defaults;
    bullc_tracer *tracer; /* borrowed; NULL: no spans */
    char *name;           /* the queue's, for the spans */
    int64_t max_len_events;
    bool skip_meta_update;
    unsigned meta_generation; /* the connection the meta was written on */
};

bullc__aq_adds *bullc__aq_adds_new(const bullc_queue_opts *opts, const char *name) {
    bullc__aq_adds *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->max_len_events = opts->max_len_events;
    a->skip_meta_update = opts->skip_meta_update;
    a->tracer = opts->tracer;
    if (!(a->name = strdup(name)) ||
        (opts->default_job_opts && !(a->defaults = bullc__job_opts_dup(opts->default_job_opts)))) {
        bullc__aq_adds_free(a);
        return NULL;
    }
    return a;
}

void bullc__aq_adds_free(bullc__aq_adds *a) {
    if (!a) return;
    bullc_job_opts_free(a->defaults);
    free(a->name);
    free(a);
}

typedef struct aq_add {
    bullc_aqueue *q;
    bool bulk;
    bullc_aqueue_add_cb cb1;
    bullc_aqueue_bulk_cb cbn;
    void *data;
    bullc_bulk_job *jobs; /* copies: names, data, options (one per run of a shared pointer) */
    size_t n;
    bullc__add_batch b;
    bullc__repeat5_calls *rep; /* a 5.x legacy repeatable job's two calls, or NULL */
    bullc__span span;          /* started by the call, as bullc_queue_add's; ended with the answer */
    sds tm;                    /* the span's context, stored in each job's options (NULL: not traced) */
    unsigned generation;       /* the connection it was sent on */
    size_t queued;             /* commands between MULTI and EXEC */
    int outstanding;           /* commands sent whose replies have not come */
    int tries;
    bool noscript;
    int rc;
    bullc_error err;
} aq_add;

static void add_free(aq_add *a) {
    bullc__add_batch_free(&a->b);
    if (a->rep) bullc__repeat5_calls_free(a->rep);
    free(a->rep);
    sdsfree(a->tm);
    for (size_t i = 0; i < a->n; i++) {
        free((char *)a->jobs[i].name);
        free((char *)a->jobs[i].data_json);
        if (i == 0 || a->jobs[i].opts != a->jobs[i - 1].opts) bullc_job_opts_free((bullc_job_opts *)a->jobs[i].opts);
        free(a->jobs[i].id);
    }
    free(a->jobs);
    free(a);
}

static void answer(aq_add *a) {
    if (a->rc) bullc__add_batch_fail(&a->b);
    bullc__aq_adds *ad = bullc__aqueue_adds(a->q);
    if (a->tm) bullc__add_span_end(ad->tracer, &a->span, ad->name, a->jobs, a->n, a->bulk);
    const bullc_error *e = a->rc ? &a->err : NULL;
    if (a->bulk)
        a->cbn(a->q, a->rc, a->jobs, a->n, e, a->data);
    else
        a->cb1(a->q, a->rc ? a->rc : a->jobs[0].status, a->rc ? NULL : a->jobs[0].id, e, a->data);
    add_free(a);
}

static void fail(bullc_aqueue *q, void *ext, int rc, const bullc_error *err) {
    aq_add *a = ext;
    (void)q;
    if (rc != REPEAT_NONE) {
        a->rc = rc;
        a->err = *err;
    }
    answer(a);
}

static int send_add(bullc_aqueue *q, void *ext, bullc_error *err);
static const bullc__aq_ext add_ext = {send_add, fail};

/* The last reply of an add is in: answered, or sent again after NOSCRIPT. */
static void settle_add(aq_add *a) {
    if (--a->outstanding > 0) return;
    if (!a->rc && a->noscript) {
        if (++a->tries < NOSCRIPT_TRIES) {
            a->noscript = false;
            int rc = bullc__aqueue_enqueue(a->q, &add_ext, a);
            if (!rc) return;
            bullc__err(&a->err, rc, rc == BULLC_ECLOSED ? "the queue handle was closed" : "out of memory");
            a->rc = rc;
        } else {
            a->rc = bullc__err(&a->err, BULLC_EREDIS, "NOSCRIPT: Redis keeps dropping BullMQ's scripts");
        }
    }
    answer(a);
}

/* A reply that is not EXEC's: the first error while queueing is the add's
 * (EXEC then aborts, nothing is written). */
static void piece_reply(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data) {
    aq_add *a = data;
    (void)conn;
    if (!a->rc && r && r->type == REDIS_REPLY_ERROR) {
        a->err = *err;
        a->rc = err->code ? err->code : bullc__err(&a->err, BULLC_EREDIS, "%s", r->str);
    }
    settle_add(a);
}

static void exec_reply(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data) {
    aq_add *a = data;
    (void)conn;
    if (a->rc) {
        /* an error while queueing: EXEC aborted */
    } else if (!r) {
        if (bullc__aqueue_closing(a->q))
            a->rc = bullc__err(&a->err, BULLC_ECLOSED,
                               "the queue handle was closed before Redis answered: the add may have been written");
        else
            a->rc = bullc__err(&a->err, err->code ? err->code : BULLC_ECONN,
                               "%s before Redis answered: the add may have been written (adding again with the same "
                               "jobId or deduplication id adds nothing twice)",
                               err->message[0] ? err->message : "connection to Redis lost");
    } else {
        a->rc = bullc__add_batch_exec(&a->b, r, a->queued, &a->noscript, &a->err);
        /* loaded again before the retry (whichever handle's add comes first) */
        if (a->noscript) bullc__aqueue_conn(a->q)->add_scripts[bullc__aqueue_proto(a->q)->major == 5] = 0;
    }
    settle_add(a);
}

static void meta_reply(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data) {
    aq_add *a = data;
    (void)conn;
    (void)err;
    bullc__aq_adds *ad = bullc__aqueue_adds(a->q);
    if ((!r || r->type == REDIS_REPLY_ERROR) && ad->meta_generation == a->generation) ad->meta_generation = 0;
    settle_add(a);
}

static int send_piece(aq_add *a, bullc__areply_fn cb, int argc, const char **argv, const size_t *lens) {
    /* the handle's own: its close answers the add even when the connection
     * is shared and stays */
    int rc = bullc__aconn_cmd_for(bullc__aqueue_conn(a->q), a->q, 0, cb, a, argc, argv, lens);
    if (!rc) a->outstanding++;
    return rc;
}

/* An EVALSHA as it is: inside MULTI its NOSCRIPT comes in EXEC's reply,
 * which add_batch.c reads (aconn's EVAL fallback would run it outside). */
static int emit(void *ctx, const bullc__script *script, int argc, const char *const *argv, const size_t *lens,
                bullc_error *err) {
    aq_add *a = ctx;
    const char *v[16];
    size_t l[16];
    char numkeys[12];
    int n = 0;
    if (script) {
        if (argc + 3 > 16) return bullc__err(err, BULLC_EPROTO, "too many arguments");
        snprintf(numkeys, sizeof numkeys, "%d", script->numkeys);
        v[0] = "EVALSHA", l[0] = 7;
        v[1] = script->sha1, l[1] = 40;
        v[2] = numkeys, l[2] = strlen(numkeys);
        n = 3;
    }
    for (int i = 0; i < argc; i++, n++) {
        v[n] = argv[i];
        l[n] = lens ? lens[i] : strlen(argv[i]);
    }
    int rc = send_piece(a, piece_reply, n, v, l);
    if (rc) bullc__err(err, rc, rc == BULLC_ENOMEM ? "out of memory" : "connection to Redis lost");
    return rc;
}

/* A failure once some of the add's commands went out: their replies
 * answer it (the caller fails it only when nothing was sent). */
static int late_fail(aq_add *a, int rc, bullc_error *err) {
    if (!err->code) bullc__err(err, rc, rc == BULLC_ENOMEM ? "out of memory" : "connection to Redis lost");
    if (!a->outstanding) return rc;
    if (!a->rc) {
        a->rc = rc;
        a->err = *err;
    }
    return 0;
}

/* The queue's meta, once per connection, after an add's first command. */
static void send_meta(aq_add *a) {
    bullc__aq_adds *ad = bullc__aqueue_adds(a->q);
    bullc__aconn *conn = bullc__aqueue_conn(a->q);
    if (ad->skip_meta_update || ad->meta_generation == conn->generation) return;
    ad->meta_generation = conn->generation; /* once, however many adds follow before its reply */
    char maxlen[24];
    snprintf(maxlen, sizeof maxlen, "%lld", (long long)ad->max_len_events);
    const char *argv[] = {"HMSET",   bullc__aqueue_keys(a->q)->k[BULLC__K_META], "opts.maxLenEvents", maxlen,
                          "version", bullc__aqueue_proto(a->q)->meta_version};
    send_piece(a, meta_reply, bullc__aqueue_write_version(a->q) ? 6 : 4, argv, NULL); /* best effort, as queue.c */
}

/* A repeatable job's call whose reply did not come: `what` may have been
 * written. */
static void repeat_lost(aq_add *a, const bullc_error *err, const char *what) {
    if (bullc__aqueue_closing(a->q))
        a->rc = bullc__err(&a->err, BULLC_ECLOSED, "the queue handle was closed before Redis answered: %s", what);
    else
        a->rc = bullc__err(&a->err, err->code ? err->code : BULLC_ECONN, "%s before Redis answered: %s",
                           err->message[0] ? err->message : "connection to Redis lost", what);
}

static void repeat_added(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data) {
    aq_add *a = data;
    (void)conn;
    if (!a->rc && !r)
        repeat_lost(a, err,
                    "the repeatable job was written and its first job may have been (adding it again adds "
                    "the same job within its time slot)");
    else if (!a->rc)
        a->rc = bullc__repeat5_result(a->rep, r, &a->jobs[0], &a->err);
    settle_add(a);
}

/* addRepeatableJob answered: the first iteration's add goes out. */
static void repeat_entered(bullc__aconn *conn, redisReply *r, const bullc_error *err, void *data) {
    aq_add *a = data;
    (void)conn;
    bullc__repeat5_calls *c = a->rep;
    if (a->rc) {
        /* answered already */
    } else if (!r) {
        repeat_lost(a, err, "the repeatable job (its repeat entry) may have been written, its first job was not");
    } else if (!(a->rc = bullc__repeat5_second(c, r, bullc__aqueue_proto(a->q), bullc__aqueue_keys(a->q), &a->jobs[0],
                                               &a->err))) {
        int rc = bullc__aqueue_closing(a->q)
                     ? BULLC_ECLOSED
                     : bullc__aconn_eval_for(bullc__aqueue_conn(a->q), a->q, c->call.script, 0, repeat_added, a,
                                             c->call.argc, c->call.argv, c->call.lens);
        if (!rc)
            a->outstanding++;
        else
            a->rc =
                bullc__err(&a->err, rc, "%s: the repeatable job (its repeat entry) was written, its first job was not",
                           rc == BULLC_ECLOSED  ? "the queue handle was closed"
                           : rc == BULLC_ENOMEM ? "out of memory"
                                                : "connection to Redis lost");
    }
    settle_add(a);
}

/* A 5.x legacy repeatable job: addRepeatableJob, then (repeat_entered) the
 * first iteration's add, as Node 5's Queue.add makes them. */
static int send_repeat(aq_add *a, bullc_error *err) {
    bullc__aconn *conn = bullc__aqueue_conn(a->q);
    if (!(a->rep = calloc(1, sizeof *a->rep))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__repeat5_first(a->rep, bullc__aqueue_proto(a->q), bullc__aqueue_keys(a->q),
                                  bullc__aqueue_adds(a->q)->defaults, &a->jobs[0], err);
    if (rc) return rc;
    if (!a->rep->plan.next) return REPEAT_NONE; /* the limit or the end reached: no job, as Node returns none */
    rc = bullc__aconn_eval_for(conn, a->q, a->rep->script, 0, repeat_entered, a, a->rep->argc, a->rep->argv,
                               a->rep->lens);
    if (rc) return bullc__err(err, rc, rc == BULLC_ENOMEM ? "out of memory" : "connection to Redis lost");
    a->outstanding++;
    a->generation = conn->generation;
    send_meta(a);
    return 0;
}

/* On the loop, connected and the queue's major settled: the jobs are
 * checked by its rules, then the scripts (once per connection), the
 * transaction and the meta go out. */
static int send_add(bullc_aqueue *q, void *ext, bullc_error *err) {
    aq_add *a = ext;
    bullc__aq_adds *ad = bullc__aqueue_adds(q);
    bullc__aconn *conn = bullc__aqueue_conn(q);
    const bullc__protocol *p = bullc__aqueue_proto(q);
    const bullc__keys *ks = bullc__aqueue_keys(q);
    bullc__add_target t = {p, ks, ad->defaults, p->major};
    int rc = 0;
    for (size_t i = 0; i < a->n && !rc; i++) rc = bullc__add_batch_rebuild(&a->b, i, &t, err);
    if (rc) return rc;
    /* Node 5's addBulk adds a job with `repeat` as any other */
    if (a->b.pj[0].repeat && !a->bulk) return send_repeat(a, err);
    a->generation = conn->generation;
    unsigned *loaded = &conn->add_scripts[p->major == 5];
    if (*loaded != conn->generation) {
        /* no need to wait: Redis runs them before the MULTI that follows */
        for (int k = 0; k < S_N && !rc; k++) {
            const bullc__script *s = bullc__call_script(p, add_calls[k]);
            const char *argv[] = {"SCRIPT", "LOAD", s->text};
            size_t lens[] = {6, 4, s->len};
            rc = send_piece(a, piece_reply, 3, argv, lens);
        }
        if (rc) return late_fail(a, rc, err);
        *loaded = conn->generation;
    }
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"}, *discard[] = {"DISCARD"};
    if ((rc = send_piece(a, piece_reply, 1, multi, NULL))) return late_fail(a, rc, err);
    a->queued = 0;
    for (size_t i = 0; i < a->n && !rc; i++) {
        if (!a->b.pending[i]) continue;
        rc = bullc__add_batch_emit(&a->b, i, ks, emit, a, err);
        a->queued += bullc__add_probes(&a->b.pj[i]) + 1;
    }
    if (!rc && (rc = send_piece(a, exec_reply, 1, exec, NULL))) bullc__err(err, rc, "out of memory");
    if (rc) {
        /* out of memory half way: the transaction must not stay open (a
         * DISCARD refused too leaves it to the next MULTI's error) */
        send_piece(a, piece_reply, 1, discard, NULL);
        return late_fail(a, rc, err);
    }
    send_meta(a);
    return 0;
}

/* A copy of the caller's jobs: names, data and options (one copy per run of
 * jobs sharing an options object, so the batch still shares their checks). */
static int copy_jobs(aq_add *a, const bullc_bulk_job *jobs, size_t n) {
    if (!(a->jobs = calloc(n, sizeof *a->jobs))) return BULLC_ENOMEM;
    a->n = n;
    for (size_t i = 0; i < n; i++) {
        bullc_bulk_job *c = &a->jobs[i];
        if (jobs[i].name && !(c->name = strdup(jobs[i].name))) return BULLC_ENOMEM;
        if (jobs[i].data_json && !(c->data_json = strdup(jobs[i].data_json))) return BULLC_ENOMEM;
        if (!jobs[i].opts) continue;
        if (i > 0 && jobs[i].opts == jobs[i - 1].opts) {
            c->opts = a->jobs[i - 1].opts;
            continue;
        }
        if (!(c->opts = bullc__job_opts_dup(jobs[i].opts))) return BULLC_ENOMEM;
    }
    return 0;
}

static int add_new(bullc_aqueue *q, const bullc_bulk_job *jobs, size_t n, bool bulk, aq_add **out, bullc_error *err) {
    if (bullc__aqueue_closing(q)) return bullc__err(err, BULLC_ECLOSED, "the queue handle was closed");
    aq_add *a = calloc(1, sizeof *a);
    int rc = !a ? BULLC_ENOMEM : copy_jobs(a, jobs, n);
    bullc_tracer *tracer = bullc__aqueue_adds(q)->tracer;
    if (!rc && tracer) {
        bullc__span_start(tracer, &a->span, BULLC__SPAN_PRODUCER, NULL);
        if (!(a->tm = bullc__span_metadata(&a->span))) rc = BULLC_ENOMEM;
    }
    if (!rc) rc = bullc__add_batch_init(&a->b, a->jobs, n, bulk, a->tm);
    if (rc) {
        if (a) add_free(a);
        return bullc__err(err, rc, "out of memory");
    }
    a->q = q;
    a->bulk = bulk;
    /* checked now, so that bad input never waits for Redis; by the queue's
     * major's rules when known, else again once it is (send_add) */
    const bullc__protocol *p = bullc__aqueue_proto(q);
    bullc__add_target t = {p ? p : &bullc__protocol_v6, bullc__aqueue_keys(q), bullc__aqueue_adds(q)->defaults,
                           p ? p->major : 0};
    while (!rc && a->b.prepared < n) rc = bullc__add_batch_prepare(&a->b, &t, err);
    *out = a; /* on a refusal too: the refused job's status is in it */
    return rc;
}

/* Checks and queues an add; on a refusal the jobs' statuses are copied back
 * (bulk: the refused one's code), and the callback never runs. */
static int start_add(bullc_aqueue *q, bullc_bulk_job *jobs, size_t n, bool bulk, bullc_aqueue_add_cb cb1,
                     bullc_aqueue_bulk_cb cbn, void *data, bullc_error *err) {
    aq_add *a = NULL;
    int rc = add_new(q, jobs, n, bulk, &a, err);
    if (!rc) {
        a->cb1 = cb1;
        a->cbn = cbn;
        a->data = data;
        rc = bullc__aqueue_enqueue(q, &add_ext, a);
        if (!rc) return 0;
        bullc__err(err, rc, rc == BULLC_ECLOSED ? "the queue handle was closed" : "out of memory");
    } else if (a && bulk) {
        for (size_t i = 0; i < n; i++) jobs[i].status = a->jobs[i].status; /* the refused one's code */
    }
    /* a refused add has its span too, as bullc_queue_add's */
    if (a && a->tm)
        bullc__add_span_end(bullc__aqueue_adds(q)->tracer, &a->span, bullc__aqueue_adds(q)->name, a->jobs, n, bulk);
    if (a) add_free(a);
    return rc;
}

int bullc_aqueue_add(bullc_aqueue *q, const char *name, const char *data_json, const bullc_job_opts *opts,
                     bullc_aqueue_add_cb cb, void *data, bullc_error *err) {
    if (!cb) return bullc__err(err, BULLC_EINVAL, "cb: NULL");
    bullc_bulk_job one = {name, data_json, opts, NULL, 0};
    return start_add(q, &one, 1, false, cb, NULL, data, err);
}

int bullc_aqueue_add_bulk(bullc_aqueue *q, bullc_bulk_job *jobs, size_t count, bullc_aqueue_bulk_cb cb, void *data,
                          bullc_error *err) {
    if (!cb) return bullc__err(err, BULLC_EINVAL, "cb: NULL");
    if (!jobs || !count) return bullc__err(err, BULLC_EINVAL, "jobs: none");
    return start_add(q, jobs, count, true, NULL, cb, data, err);
}
