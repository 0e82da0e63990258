/* SPDX-License-Identifier: MIT */
/* Helpers of the tests that reproduce Node BullMQ's own behavioural tests
 * (tests/integration/test_parity_*.c; each case carries the Node title it
 * reproduces). One "ph" per test: a libuv loop, a queue handle, workers whose
 * events are recorded, an optional QueueEvents listener whose entries are
 * recorded, and helpers to finish jobs later, wait for a condition and read
 * jobs back as Node's getters return them. Header only: every test file is its
 * own executable. */
#ifndef BULLC_TEST_PARITY_UTIL_H
#define BULLC_TEST_PARITY_UTIL_H

#include <criterion/criterion.h>
#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "testutil.h"

#define PH_UNUSED __attribute__((unused))
#define PH_MAXW 6
#define PH_MAXEV 4096
#define PH_MAXIDS 256

/* One worker event: kind 'a' active, 'c' completed, 'f' failed, 'p' progress,
 * 's' stalled, 'd' drained, 'e' error, 'l' lock lost. */
typedef struct ph_wev {
    char kind;
    int widx;
    char id[64];
    char name[64];
    char *data; /* the job's data (JSON) when there is a job */
    char *text; /* result / reason / progress / error message */
    bool will_retry;
    int64_t attempts_made, attempts_started;
    int64_t t; /* tu_now_ms() */
} ph_wev;

struct ph;
typedef void (*ph_proc_fn)(struct ph *h, bullc_job *job, int widx);

typedef struct ph_wctx {
    struct ph *h;
    int idx;
} ph_wctx;

typedef struct ph {
    uv_loop_t loop;
    char prefix[64];
    char qname[64];
    bullc_queue *q;
    bullc_worker *w[PH_MAXW];
    ph_wctx wctx[PH_MAXW];
    int nw, wclosed;
    bool wclosing[PH_MAXW], wdone[PH_MAXW];
    ph_proc_fn proc;
    /* optional hooks, called from the worker's event callbacks (after recording) */
    void (*on_completed)(struct ph *h, ph_wev *e);
    void (*on_failed)(struct ph *h, ph_wev *e);
    void (*on_active)(struct ph *h, ph_wev *e);
    void (*on_lock_lost)(struct ph *h, ph_wev *e);
    bullc_backoff_fn backoff;
    ph_wev *wev;
    int nwev;
    int n_ready, n_active, n_completed, n_failed, n_retried, n_progress, n_stalled, n_drained, n_errors, n_lock_lost;
    int n_paused, n_resumed, n_closing;
    char closing_msg[32];
    void (*on_paused)(struct ph *h, int widx); /* after counting */
    int in_process, max_in_process;            /* processor calls not yet finished */
    bullc_queue_events *qe;
    bool qe_ready, qe_closed;
    cJSON *qev; /* array of {"event":..., "jobId":..., fields...} */
    uv_timer_t tick;
    char ids[PH_MAXIDS][64];
    int nids;
    void *user;
    int64_t t0;
    const char *url; /* Redis of the workers and listener; NULL: the tests' Redis */
} ph;

static PH_UNUSED ph *ph_new(const char *qname) {
    ph *h = calloc(1, sizeof *h);
    cr_assert_eq(uv_loop_init(&h->loop), 0);
    snprintf(h->prefix, sizeof h->prefix, "%s", tu_prefix());
    snprintf(h->qname, sizeof h->qname, "%s", qname ? qname : "q");
    h->q = tu_queue(h->qname, h->prefix);
    h->wev = calloc(PH_MAXEV, sizeof *h->wev);
    h->qev = cJSON_CreateArray();
    uv_timer_init(&h->loop, &h->tick);
    h->tick.data = h;
    h->t0 = tu_now_ms();
    return h;
}

/* A queue handle for the ph's queue and prefix on the Redis at `url`. */
static PH_UNUSED bullc_queue *ph_queue_at(ph *h, const char *url) {
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    cr_assert_eq(bullc_redis_opts_parse_url(o, url, NULL), 0);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, h->prefix);
    bullc_queue *q = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, h->qname, qo, &err), 0, "%s", err.message);
    bullc_redis_opts_free(o);
    return q;
}

/* A queue handle on the same prefix, with Node's defaultJobOptions. */
static PH_UNUSED bullc_queue *ph_queue_with_defaults(ph *h, const char *default_opts_json) {
    bullc_redis_opts *o = tu_redis_opts();
    bullc_job_opts *jo = NULL;
    bullc_job_opts_new(&jo);
    bullc_error err = {0};
    cr_assert_eq(bullc_job_opts_merge_json(jo, default_opts_json, &err), 0, "%s", err.message);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, h->prefix);
    bullc_queue_opts_set_default_job_opts(qo, jo);
    bullc_queue *q = NULL;
    cr_assert_eq(bullc_queue_new(&q, h->qname, qo, &err), 0, "%s", err.message);
    bullc_redis_opts_free(o);
    bullc_job_opts_free(jo);
    return q;
}

static PH_UNUSED redisContext *ph_rc(void) {
    static redisContext *c;
    if (!c) c = tu_redis();
    return c;
}

/* A Redis command for assertions; the reply must not be an error. */
static PH_UNUSED redisReply *ph_cmd(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ph_rc(), fmt, ap);
    va_end(ap);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "redis: %s", r ? r->str : ph_rc()->errstr);
    return r;
}
static PH_UNUSED long long ph_icmd(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ph_rc(), fmt, ap);
    va_end(ap);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "redis: not an integer reply");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}
static PH_UNUSED void ph_vcmd(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ph_rc(), fmt, ap);
    va_end(ap);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "redis: %s", r ? r->str : ph_rc()->errstr);
    freeReplyObject(r);
}

/* "prefix:queue:suffix" (a ring of buffers). */
static PH_UNUSED const char *ph_key(ph *h, const char *suffix) {
    static char buf[8][256];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s:%s:%s", h->prefix, h->qname, suffix);
    return buf[i];
}

/* ---- adding ---------------------------------------------------------------- */

/* Adds a job on `q` (NULL: the ph's queue); returns the add's status (0, 1,
 * 2) and the id (kept in h->ids) in *id when not NULL. Fails the test on an
 * error. */
static PH_UNUSED int ph_add_to(ph *h, bullc_queue *q, const char *name, const char *data, const char *opts_json,
                               const char **id) {
    bullc_job_opts *o = tu_job_opts(opts_json);
    bullc_error err = {0};
    char *out = NULL;
    int rc = bullc_queue_add(q ? q : h->q, name, data, o, &out, &err);
    cr_assert_geq(rc, 0, "add %s %s: %s", data ? data : "", opts_json ? opts_json : "", err.message);
    bullc_job_opts_free(o);
    cr_assert_lt(h->nids, PH_MAXIDS);
    snprintf(h->ids[h->nids], sizeof h->ids[0], "%s", out);
    bullc_free(out);
    if (id) *id = h->ids[h->nids];
    h->nids++;
    return rc;
}
static PH_UNUSED const char *ph_add(ph *h, const char *name, const char *data, const char *opts_json) {
    const char *id;
    ph_add_to(h, NULL, name, data, opts_json, &id);
    return id;
}
/* Adds with an error expected: returns the code, the message in msg. */
static PH_UNUSED int ph_add_err(ph *h, const char *name, const char *data, const char *opts_json, char *msg,
                                size_t msglen) {
    bullc_job_opts *o = NULL;
    bullc_error err = {0};
    bullc_job_opts_new(&o);
    if (opts_json && bullc_job_opts_merge_json(o, opts_json, &err) < 0) {
        bullc_job_opts_free(o);
        if (msg) snprintf(msg, msglen, "%s", err.message);
        return err.code ? err.code : BULLC_EINVAL;
    }
    char *out = NULL;
    int rc = bullc_queue_add(h->q, name, data, o, &out, &err);
    bullc_job_opts_free(o);
    if (rc >= 0) bullc_free(out);
    if (msg) snprintf(msg, msglen, "%s", rc < 0 ? err.message : "");
    return rc;
}

/* ---- reading ------------------------------------------------------------------ */

/* The job as Node's getJob returns it (cJSON, delete it), or NULL when it is gone. */
static PH_UNUSED cJSON *ph_job(ph *h, const char *id) {
    char *s = NULL;
    bullc_error err = {0};
    int rc = bullc_queue_get_job(h->q, id, &s, &err);
    if (rc == BULLC_ENOTFOUND) return NULL;
    cr_assert_eq(rc, 0, "getJob %s: %s", id, err.message);
    cJSON *j = cJSON_Parse(s);
    cr_assert(j, "not JSON: %s", s);
    bullc_free(s);
    return j;
}
static PH_UNUSED bool ph_job_exists(ph *h, const char *id) {
    cJSON *j = ph_job(h, id);
    cJSON_Delete(j);
    return j != NULL;
}
/* A numeric field of a job (NAN when absent or not a number). */
static PH_UNUSED double ph_jnum(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : __builtin_nan("");
}
/* The compact JSON of j[key] (malloc'd; "<absent>" when absent). */
static PH_UNUSED char *ph_jtext(const cJSON *j, const char *key) {
    const cJSON *v = key ? cJSON_GetObjectItemCaseSensitive(j, key) : j;
    return v ? cJSON_PrintUnformatted(v) : strdup("<absent>");
}
#define ph_assert_json(j, key, expected)             \
    do {                                             \
        char *got_ = ph_jtext(j, key);               \
        cr_assert_str_eq(got_, expected, "%s", key); \
        free(got_);                                  \
    } while (0)

/* A numeric field of the job `id` (NAN when the job is gone). */
static PH_UNUSED double ph_job_num(ph *h, const char *id, const char *key) {
    cJSON *j = ph_job(h, id);
    double v = j ? ph_jnum(j, key) : __builtin_nan("");
    cJSON_Delete(j);
    return v;
}

/* Count of one state (Node's getJobCounts(state)[state]). */
static PH_UNUSED int ph_count(ph *h, const char *state) {
    bullc_error err = {0};
    const char *st[] = {state};
    int64_t n = -1;
    cr_assert_eq(bullc_queue_count_jobs(h->q, st, 1, &n, &err), 0, "%s", err.message);
    return (int)n;
}
static PH_UNUSED const char *ph_state(ph *h, const char *id) {
    const char *st = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_state(h->q, id, &st, &err), 0, "%s", err.message);
    return st;
}
/* getJobs(states...) as cJSON (delete it). */
static PH_UNUSED cJSON *ph_jobs(ph *h, const char *state, int64_t start, int64_t end, bool asc) {
    char *s = NULL;
    bullc_error err = {0};
    const char *st[] = {state};
    cr_assert_eq(bullc_queue_get_jobs(h->q, state ? st : NULL, state ? 1 : 0, start, end, asc, &s, &err), 0, "%s",
                 err.message);
    cJSON *j = cJSON_Parse(s);
    bullc_free(s);
    return j;
}
/* Number of log lines of a job. */
static PH_UNUSED int ph_log_count(ph *h, const char *id) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_logs(h->q, id, 0, -1, true, &s, &err), 0, "%s", err.message);
    cJSON *j = cJSON_Parse(s);
    bullc_free(s);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "logs"));
    cJSON_Delete(j);
    return n;
}

/* ---- workers ------------------------------------------------------------------- */

static PH_UNUSED ph_wev *ph_rec(ph *h, char kind, int widx, const bullc_job *job, const char *text) {
    cr_assert_lt(h->nwev, PH_MAXEV, "too many worker events");
    ph_wev *e = &h->wev[h->nwev++];
    e->kind = kind;
    e->widx = widx;
    e->t = tu_now_ms();
    if (job) {
        snprintf(e->id, sizeof e->id, "%s", bullc_job_id(job) ? bullc_job_id(job) : "");
        snprintf(e->name, sizeof e->name, "%s", bullc_job_name(job) ? bullc_job_name(job) : "");
        e->data = bullc_job_data(job) ? strdup(bullc_job_data(job)) : NULL;
        e->attempts_made = bullc_job_attempts_made(job);
        e->attempts_started = bullc_job_attempts_started(job);
    }
    if (text) e->text = strdup(text);
    return e;
}

static void ph__ev_active(bullc_worker *w, const bullc_job *job, void *data) {
    (void)w;
    ph_wctx *c = data;
    c->h->n_active++;
    ph_wev *e = ph_rec(c->h, 'a', c->idx, job, NULL);
    if (c->h->on_active) c->h->on_active(c->h, e);
}
static void ph__ev_completed(bullc_worker *w, const bullc_job *job, const char *res, void *data) {
    (void)w;
    ph_wctx *c = data;
    c->h->n_completed++;
    ph_wev *e = ph_rec(c->h, 'c', c->idx, job, res);
    if (c->h->on_completed) c->h->on_completed(c->h, e);
}
static void ph__ev_failed(bullc_worker *w, const bullc_job *job, const char *reason, bool will_retry, void *data) {
    (void)w;
    ph_wctx *c = data;
    if (will_retry)
        c->h->n_retried++;
    else
        c->h->n_failed++;
    ph_wev *e = ph_rec(c->h, 'f', c->idx, job, reason);
    e->will_retry = will_retry;
    if (c->h->on_failed) c->h->on_failed(c->h, e);
}
static void ph__ev_progress(bullc_worker *w, const bullc_job *job, const char *p, void *data) {
    (void)w;
    ph_wctx *c = data;
    c->h->n_progress++;
    ph_rec(c->h, 'p', c->idx, job, p);
}
static void ph__ev_stalled(bullc_worker *w, const char *id, void *data) {
    (void)w;
    ph_wctx *c = data;
    c->h->n_stalled++;
    snprintf(ph_rec(c->h, 's', c->idx, NULL, NULL)->id, sizeof c->h->wev[0].id, "%s", id);
}
static void ph__ev_drained(bullc_worker *w, void *data) {
    (void)w;
    ph_wctx *c = data;
    c->h->n_drained++;
    ph_rec(c->h, 'd', c->idx, NULL, NULL);
}
static void ph__ev_error(bullc_worker *w, int code, const char *msg, void *data) {
    (void)w, (void)code;
    ph_wctx *c = data;
    c->h->n_errors++;
    ph_rec(c->h, 'e', c->idx, NULL, msg);
}
static void ph__ev_lock_lost(bullc_worker *w, const bullc_job *job, void *data) {
    (void)w;
    ph_wctx *c = data;
    c->h->n_lock_lost++;
    ph_wev *e = ph_rec(c->h, 'l', c->idx, job, NULL);
    if (c->h->on_lock_lost) c->h->on_lock_lost(c->h, e);
}
static void ph__ev_paused(bullc_worker *w, void *data) {
    (void)w;
    ph_wctx *c = data;
    c->h->n_paused++;
    if (c->h->on_paused) c->h->on_paused(c->h, c->idx);
}
static void ph__ev_resumed(bullc_worker *w, void *data) {
    (void)w;
    ((ph_wctx *)data)->h->n_resumed++;
}
static void ph__ev_closing(bullc_worker *w, const char *msg, void *data) {
    (void)w;
    ph *h = ((ph_wctx *)data)->h;
    h->n_closing++;
    snprintf(h->closing_msg, sizeof h->closing_msg, "%s", msg);
}
static void ph__ev_ready(bullc_worker *w, void *data) {
    (void)w;
    ((ph_wctx *)data)->h->n_ready++;
}
static void ph__processor(bullc_job *job, void *data) {
    ph_wctx *c = data;
    c->h->in_process++;
    if (c->h->in_process > c->h->max_in_process) c->h->max_in_process = c->h->in_process;
    cr_assert(c->h->proc, "no processor set");
    c->h->proc(c->h, job, c->idx);
}

/* Worker options with the test Redis, the ph's prefix and a 1 s drain delay
 * (freed at exit); ph_worker sets the ph's processor (h->proc, set it before
 * adding the worker). */
static PH_UNUSED bullc_worker_opts *ph_wopts(ph *h) {
    bullc_worker_opts *o = tu_wopts();
    bullc_worker_opts_set_prefix(o, h->prefix);
    bullc_worker_opts_set_drain_delay(o, 1);
    return o;
}

/* Creates a worker; `o` NULL: defaults of ph_wopts. With `manual`, no
 * processor. Sets the ph's Redis, processor and backoff strategy on `o`. */
static PH_UNUSED bullc_worker *ph_worker_ex(ph *h, bullc_worker_opts *o, bool manual) {
    if (!o) o = ph_wopts(h);
    cr_assert_lt(h->nw, PH_MAXW);
    int idx = h->nw;
    h->wctx[idx].h = h;
    h->wctx[idx].idx = idx;
    bullc_redis_opts *ro = tu_redis_opts_url(h->url ? h->url : tu_redis_url());
    bullc_worker_opts_set_redis(o, ro);
    bullc_redis_opts_free(ro);
    if (!manual) bullc_worker_opts_set_processor(o, ph__processor, &h->wctx[idx]);
    if (h->backoff) bullc_worker_opts_set_backoff_strategy(o, h->backoff, h);
    bullc_worker_events ev = {.active = ph__ev_active,
                              .completed = ph__ev_completed,
                              .failed = ph__ev_failed,
                              .progress = ph__ev_progress,
                              .stalled = ph__ev_stalled,
                              .drained = ph__ev_drained,
                              .error = ph__ev_error,
                              .lock_lost = ph__ev_lock_lost,
                              .ready = ph__ev_ready,
                              .paused = ph__ev_paused,
                              .resumed = ph__ev_resumed,
                              .closing = ph__ev_closing};
    bullc_error err = {0};
    bullc_worker *w = NULL;
    cr_assert_eq(bullc_worker_new(&w, &h->loop, h->qname, o, &ev, &h->wctx[idx], &err), 0, "%s", err.message);
    h->w[h->nw++] = w;
    return w;
}
static PH_UNUSED bullc_worker *ph_worker(ph *h, bullc_worker_opts *o) { return ph_worker_ex(h, o, false); }

/* The processor is done with a job (call before completing/failing it). */
static PH_UNUSED void ph_done(ph *h) { h->in_process--; }
static PH_UNUSED void ph_complete(ph *h, bullc_job *job, const char *result) {
    ph_done(h);
    bullc_job_complete(job, result);
}
static PH_UNUSED void ph_fail(ph *h, bullc_job *job, const char *msg, int flags) {
    ph_done(h);
    bullc_job_fail(job, msg, flags);
}

/* Timers that finish a job (or run a function) later. */
typedef struct ph_later {
    uv_timer_t t;
    ph *h;
    bullc_job *job;
    char *text;
    int flags;
    int action; /* 0 complete, 1 fail, 2 call */
    void (*fn)(ph *h, void *arg);
    void *arg;
} ph_later;
static void ph__later_closed(uv_handle_t *t) {
    ph_later *l = t->data;
    free(l->text);
    free(l);
}
static void ph__later_cb(uv_timer_t *t) {
    ph_later *l = t->data;
    if (l->action == 0)
        ph_complete(l->h, l->job, l->text);
    else if (l->action == 1)
        ph_fail(l->h, l->job, l->text, l->flags);
    else
        l->fn(l->h, l->arg);
    uv_close((uv_handle_t *)t, ph__later_closed);
}
static PH_UNUSED ph_later *ph__later(ph *h, int64_t ms) {
    ph_later *l = calloc(1, sizeof *l);
    l->h = h;
    uv_timer_init(&h->loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, ph__later_cb, (uint64_t)(ms < 0 ? 0 : ms), 0);
    return l;
}
static PH_UNUSED void ph_complete_in(ph *h, bullc_job *job, int64_t ms, const char *result) {
    ph_later *l = ph__later(h, ms);
    l->job = job;
    l->text = result ? strdup(result) : NULL;
    l->action = 0;
}
static PH_UNUSED void ph_fail_in(ph *h, bullc_job *job, int64_t ms, const char *msg, int flags) {
    ph_later *l = ph__later(h, ms);
    l->job = job;
    l->text = strdup(msg);
    l->flags = flags;
    l->action = 1;
}
static PH_UNUSED void ph_call_in(ph *h, int64_t ms, void (*fn)(ph *h, void *arg), void *arg) {
    ph_later *l = ph__later(h, ms);
    l->fn = fn;
    l->arg = arg;
    l->action = 2;
}

/* ---- QueueEvents -------------------------------------------------------------- */

static void ph__qe_event(bullc_queue_events *qe, const bullc_event *ev, void *data) {
    (void)qe;
    ph *h = data;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", ev->name);
    cJSON_AddStringToObject(o, "id", ev->id);
    for (size_t i = 0; i < ev->nfields; i++) cJSON_AddStringToObject(o, ev->fields[i].name, ev->fields[i].value);
    cJSON_AddNumberToObject(o, "_t", (double)tu_now_ms());
    cJSON_AddItemToArray(h->qev, o);
}
static void ph__qe_ready(bullc_queue_events *qe, const char *after, void *data) {
    (void)qe, (void)after;
    ((ph *)data)->qe_ready = true;
}
static void ph__qe_closed(bullc_queue_events *qe, void *data) {
    (void)qe;
    ((ph *)data)->qe_closed = true;
}

static void ph__tick(uv_timer_t *t) { (void)t; }

/* A case that runs speaking BullMQ 6 (test `name`, which carries the Node
 * marker) and 5 (its twin `name`_bullmq5): the body follows, taking `int
 * major`; further Test options (.fini = ...) go after the name. */
#define PH_BOTH_MAJORS(suite, name, ...)                    \
    static void name(int major);                            \
    Test(suite, name, ##__VA_ARGS__) { name(6); }           \
    Test(suite, name##_bullmq5, ##__VA_ARGS__) { name(5); } \
    static void name(int major)

/* Runs the loop until `cond` holds or `ms` pass; the value of `cond`. */
#define PH_WAIT(h, ms, cond)                                                 \
    ({                                                                       \
        int64_t d_ = tu_now_ms() + (ms);                                     \
        uv_timer_start(&(h)->tick, ph__tick, 5, 5);                          \
        while (!(cond) && tu_now_ms() < d_) uv_run(&(h)->loop, UV_RUN_ONCE); \
        uv_timer_stop(&(h)->tick);                                           \
        (bool)(cond);                                                        \
    })
/* Runs the loop for `ms`. */
#define PH_RUN_FOR(h, ms) ((void)PH_WAIT(h, ms, false))

/* QueueEvents settings for the ph's queue on the Redis at `url`, blocking
 * `block_ms` (< 0: the default); freed at exit (tu_eopts). */
static PH_UNUSED bullc_queue_events_opts *ph_qe_opts(ph *h, const char *url, int64_t block_ms) {
    bullc_redis_opts *ro = tu_redis_opts_url(url);
    bullc_queue_events_opts *o = tu_eopts();
    bullc_queue_events_opts_set_redis(o, ro);
    bullc_redis_opts_free(ro);
    bullc_queue_events_opts_set_prefix(o, h->prefix);
    if (block_ms >= 0) bullc_queue_events_opts_set_blocking_timeout(o, block_ms);
    return o;
}

/* A QueueEvents listener (from "$") for the ph's queue on the Redis at
 * `url`, blocking `block_ms` (< 0: the default), on the ph's loop; `cbs` and
 * `data` as bullc_queue_events_new takes them. */
static PH_UNUSED bullc_queue_events *ph_qe_at(ph *h, const char *url, int64_t block_ms,
                                              const bullc_queue_events_callbacks *cbs, void *data) {
    bullc_queue_events_opts *o = ph_qe_opts(h, url, block_ms);
    bullc_error err = {0};
    bullc_queue_events *qe = NULL;
    cr_assert_eq(bullc_queue_events_new(&qe, &h->loop, h->qname, o, cbs, data, &err), 0, "%s", err.message);
    return qe;
}

/* Starts a QueueEvents listener (from "$") and waits until it listens. */
static PH_UNUSED void ph_qe(ph *h) {
    bullc_queue_events_callbacks cbs = {.event = ph__qe_event, .ready = ph__qe_ready};
    h->qe = ph_qe_at(h, tu_redis_url(), 200, &cbs, h);
    cr_assert(PH_WAIT(h, 5000, h->qe_ready), "QueueEvents not ready");
}

/* Number of recorded stream events named `name` (for `job_id` when not NULL). */
static PH_UNUSED int ph_qe_count(ph *h, const char *name, const char *job_id) {
    int n = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, h->qev) {
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(e, "event");
        const cJSON *jid = cJSON_GetObjectItemCaseSensitive(e, "jobId");
        if (strcmp(ev->valuestring, name)) continue;
        if (job_id && (!cJSON_IsString(jid) || strcmp(jid->valuestring, job_id))) continue;
        n++;
    }
    return n;
}
/* The n-th (0-based) recorded event named `name`, or NULL. Borrowed. */
static PH_UNUSED cJSON *ph_qe_get(ph *h, const char *name, int nth) {
    cJSON *e;
    cJSON_ArrayForEach(e, h->qev) {
        if (!strcmp(cJSON_GetObjectItemCaseSensitive(e, "event")->valuestring, name) && nth-- == 0) return e;
    }
    return NULL;
}
/* A string field of a recorded event ("" when absent). */
static PH_UNUSED const char *ph_qe_field(const cJSON *e, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Counting worker events. */
static PH_UNUSED int ph_wcount(ph *h, char kind, const char *id) {
    int n = 0;
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == kind && (!id || !strcmp(h->wev[i].id, id))) n++;
    return n;
}
/* The n-th (0-based) worker event of `kind`, or NULL. */
static PH_UNUSED ph_wev *ph_wget(ph *h, char kind, int nth) {
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == kind && nth-- == 0) return &h->wev[i];
    return NULL;
}

/* ---- manual processing ------------------------------------------------------------ */

typedef struct ph_manual {
    bullc_job *job;
    int code;
    bool done;
} ph_manual;
static void ph__got_next(bullc_worker *w, bullc_job *job, int code, void *data) {
    (void)w;
    ph_manual *m = data;
    m->job = job, m->code = code, m->done = true;
}
/* Takes the next job of a worker without a processor (Node's
 * worker.getNextJob(token, {block: false})): the job, or NULL when there is
 * none. */
static PH_UNUSED bullc_job *ph_next_job_or_null(ph *h, bullc_worker *w, const char *token) {
    ph_manual m = {0};
    cr_assert_eq(bullc_worker_get_next_job(w, token, false, ph__got_next, &m), 0);
    cr_assert(PH_WAIT(h, 10000, m.done));
    cr_assert_eq(m.code, 0);
    return m.job;
}
/* As ph_next_job_or_null; fails the test when there is none. */
static PH_UNUSED bullc_job *ph_next_job(ph *h, bullc_worker *w, const char *token) {
    bullc_job *job = ph_next_job_or_null(h, w, token);
    cr_assert_not_null(job);
    return job;
}

/* ---- the end ------------------------------------------------------------------ */

static void ph__wclosed(bullc_worker *w, void *data) {
    (void)w;
    ph_wctx *c = data;
    c->h->wdone[c->idx] = true;
    c->h->wclosed++;
}
/* Starts closing worker i (gracefully unless `force`), without waiting. */
static PH_UNUSED void ph_close_worker_async(ph *h, int i, bool force) {
    if (h->wclosing[i] && !force) return;
    h->wclosing[i] = true;
    bullc_worker_close(h->w[i], force, 10000, ph__wclosed, &h->wctx[i]);
}
/* Closes worker i (gracefully unless `force`) and waits until it closed. */
static PH_UNUSED void ph_close_worker(ph *h, int i, bool force) {
    ph_close_worker_async(h, i, force);
    cr_assert(PH_WAIT(h, 15000, h->wdone[i]), "worker %d did not close", i);
}

/* Closes what is still open (workers gracefully, then the listener), checks
 * that the loop closes clean and frees everything. */
static PH_UNUSED void ph_end(ph *h) {
    for (int i = 0; i < h->nw; i++)
        if (!h->wclosing[i]) ph_close_worker_async(h, i, false);
    if (h->qe) bullc_queue_events_close(h->qe, ph__qe_closed, h);
    uv_timer_start(&h->tick, ph__tick, 5, 5);
    int64_t deadline = tu_now_ms() + 20000;
    for (;;) {
        bool all = !(h->qe && !h->qe_closed);
        for (int i = 0; i < h->nw; i++)
            if (!h->wdone[i]) all = false;
        if (all) break;
        cr_assert_lt(tu_now_ms(), deadline, "workers or listener did not close");
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&h->tick);
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < h->nw; i++) bullc_worker_free(h->w[i]);
    if (h->qe) bullc_queue_events_free(h->qe);
    cr_assert_eq(uv_loop_close(&h->loop), 0, "the loop must close clean");
    bullc_queue_free(h->q);
    for (int i = 0; i < h->nwev; i++) free(h->wev[i].data), free(h->wev[i].text);
    free(h->wev);
    cJSON_Delete(h->qev);
    free(h);
}

#endif
