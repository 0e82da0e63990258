/* SPDX-License-Identifier: MIT */
/* Cancelling a job from another process: bullc_queue_cancel_job (a blocking
 * call, on a thread of its own with its own queue handle) reaching library
 * workers through one bullc_cancel_listener, while the test's loop runs
 * them. */
#include "test_parity_util.h"

#include <pthread.h>

TestSuite(cancel_channel, .timeout = 60);

typedef struct canceller {
    bullc_queue *q;
    const char *id, *reason;
    int64_t timeout_ms;
    int rc;
    char by[64];
    bullc_error err;
    int done; /* set by the thread (atomically), read by the loop */
    pthread_t t;
} canceller;

static void *cancel_thread(void *p) {
    canceller *c = p;
    c->rc = bullc_queue_cancel_job(c->q, c->id, c->reason, c->timeout_ms, c->by, sizeof c->by, &c->err);
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Cancels job `id` of queue `qname` from a thread while the loop runs; the
 * call's code (its message and worker in `c`). */
static int cancel_from_thread(ph *h, canceller *c, const char *qname, const char *id, const char *reason,
                              int64_t timeout_ms) {
    memset(c, 0, sizeof *c);
    c->q = tu_queue(qname, h->prefix);
    c->id = id;
    c->reason = reason;
    c->timeout_ms = timeout_ms;
    cr_assert_eq(pthread_create(&c->t, NULL, cancel_thread, c), 0);
    cr_assert(PH_WAIT(h, 20000, __atomic_load_n(&c->done, __ATOMIC_SEQ_CST)), "the cancel did not return");
    pthread_join(c->t, NULL);
    bullc_queue_free(c->q);
    return c->rc;
}

/* The abort listener of a Node processor: fail the job with signal.reason. */
static void fail_with_reason(bullc_job *job, const char *reason, void *data) {
    if (reason) ph_fail(data, job, reason, 0);
}

static void hold_until_cancelled(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_eq(bullc_job_on_cancel(job, fail_with_reason, h), 0);
}

static bullc_cancel_listener *listener(ph *h) {
    bullc_cancel_listener *l;
    bullc_error err = {0};
    bullc_redis_opts *ro = tu_redis_opts();
    cr_assert_eq(bullc_cancel_listener_new(&l, &h->loop, ro, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
    return l;
}

static void listener_closed(bullc_cancel_listener *l, void *data) {
    *(bool *)data = true;
    bullc_cancel_listener_free(l); /* before its workers: they are taken out */
}

/* A worker in a listener, processing until cancelled: the cancel from
 * another handle answers with that worker's id, and the job fails with the
 * reason (a failed event, the reason stored). */
Test(cancel_channel, reaches_the_worker_holding_the_job) {
    ph *h = ph_new("q");
    h->proc = hold_until_cancelled;
    bullc_worker *w = ph_worker(h, NULL);
    bullc_cancel_listener *l = listener(h);
    bullc_error err = {0};
    cr_assert_eq(bullc_cancel_listener_add(l, w, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_cancel_listener_add(l, w, &err), BULLC_EINVAL, "a worker joins once");
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_active == 1));
    canceller c;
    cr_assert_eq(cancel_from_thread(h, &c, "q", id, "stop", 5000), 0, "%s", c.err.message);
    cr_assert_str_eq(c.by, bullc_worker_id(w));
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_str_eq(ph_wget(h, 'f', 0)->text, "stop");
    cJSON *j = ph_job(h, id);
    ph_assert_json(j, "failedReason", "\"stop\"");
    cJSON_Delete(j);
    cr_assert_str_eq(ph_state(h, id), "failed");
    /* a finished job holds no lock: 'not found' at once */
    cr_assert_eq(cancel_from_thread(h, &c, "q", id, NULL, 5000), BULLC_ENOTFOUND);
    cr_assert_eq(cancel_from_thread(h, &c, "q", "missing", NULL, 5000), BULLC_ENOTFOUND);
    cr_assert_eq(cancel_from_thread(h, &c, "q", id, NULL, 0), BULLC_EINVAL);
    bool closed = false;
    cr_assert_eq(bullc_cancel_listener_close(l, listener_closed, &closed), 0);
    ph_end(h);
    cr_assert(closed);
}

/* One listener, workers of two queues: a request reaches only the worker of
 * its queue; no reason is Node's default; a request naming another token (a
 * stale one: the job was taken again since) cancels nothing. */
Test(cancel_channel, one_listener_many_queues_and_the_token_checked) {
    ph *h = ph_new("a");
    h->proc = hold_until_cancelled;
    bullc_worker *wa = ph_worker(h, NULL);
    snprintf(h->qname, sizeof h->qname, "b");
    bullc_worker *wb = ph_worker(h, NULL);
    bullc_cancel_listener *l = listener(h);
    cr_assert_eq(bullc_cancel_listener_add(l, wa, NULL), 0);
    cr_assert_eq(bullc_cancel_listener_add(l, wb, NULL), 0);
    snprintf(h->qname, sizeof h->qname, "a");
    bullc_queue *qb = tu_queue("b", h->prefix);
    char *ida = NULL, *idb = NULL;
    cr_assert_eq(bullc_queue_add(h->q, "x", "{}", NULL, &ida, NULL), 0);
    cr_assert_eq(bullc_queue_add(qb, "x", "{}", NULL, &idb, NULL), 0);
    cr_assert_str_eq(ida, idb, "both are job 1 of their queue");
    cr_assert(PH_WAIT(h, 10000, h->n_active == 2));
    canceller c;
    cr_assert_eq(cancel_from_thread(h, &c, "b", idb, NULL, 5000), 0, "%s", c.err.message);
    cr_assert_str_eq(c.by, bullc_worker_id(wb));
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_str_eq(ph_wget(h, 'f', 0)->text, "This operation was aborted");
    cr_assert_eq(ph_wget(h, 'f', 0)->widx, 1);
    /* queue a's job under a token its worker does not hold */
    char lock[160];
    snprintf(lock, sizeof lock, "%s:a:%s:lock", h->prefix, ida);
    redisReply *r = ph_cmd("GET %s", lock);
    char *token = strdup(r->str);
    freeReplyObject(r);
    ph_vcmd("SET %s stale-token", lock);
    cr_assert_eq(cancel_from_thread(h, &c, "a", ida, "late", 400), BULLC_ESTATE);
    cr_assert(strstr(c.err.message, "answered"), "%s", c.err.message);
    PH_RUN_FOR(h, 100);
    cr_assert_eq(h->n_failed, 1, "nothing cancelled");
    ph_vcmd("SET %s %s", lock, token);
    cr_assert_eq(cancel_from_thread(h, &c, "a", ida, "now", 5000), 0, "%s", c.err.message);
    cr_assert_str_eq(c.by, bullc_worker_id(wa));
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 2));
    /* taken out: the worker holds a job again, nobody answers for it */
    bullc_cancel_listener_remove(l, wa);
    char *id2 = NULL;
    cr_assert_eq(bullc_queue_add(h->q, "x", "{}", NULL, &id2, NULL), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_active == 3));
    cr_assert_eq(cancel_from_thread(h, &c, "a", id2, NULL, 300), BULLC_ESTATE);
    cr_assert_eq(bullc_worker_cancel_job(wa, id2, NULL), 1);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 3));
    free(token);
    bullc_free(ida);
    bullc_free(idb);
    bullc_free(id2);
    bullc_queue_free(qb);
    cr_assert_eq(bullc_cancel_listener_close(l, NULL, NULL), 0);
    cr_assert_eq(bullc_cancel_listener_close(l, NULL, NULL), BULLC_ECLOSED);
    ph_end(h);
    bullc_cancel_listener_free(l); /* after its workers: they took themselves out */
}
