/* SPDX-License-Identifier: MIT */
/* Node BullMQ cases from worker.test.ts, bulk.test.ts, job.redis.test.ts,
 * rate_limiter.test.ts, job_cancellation.test.ts (queue.getActive) and
 * connection.test.ts (an unreachable Redis, closing, a disconnect between
 * two jobs) and getters.test.ts
 * (.getJobCounts over every state), reproduced with bullc. */
#include "test_flow_util.h"

#include <math.h>
#include <unistd.h>

#include "private_redis.h"

TestSuite(parity_misc, .timeout = 60);

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

/* ---- priorities -------------------------------------------------------------------------------- */

static void add_second_then_check(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_name(job), "test1")) ph_add(h, "test", "{\"p\":2}", "{\"priority\":2}");
    cr_assert_str_eq(bullc_job_data(job), "{\"p\":2}");
    ph_complete(h, job, NULL);
}

/* node: "[while processing last active job] should process prioritized job whithout delay" */
Test(parity_misc, prioritized_job_added_while_processing_the_last) {
    ph *h = ph_new("q");
    ph_add(h, "test1", "{\"p\":2}", "{\"priority\":2}");
    h->proc = add_second_then_check;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_drain_delay(o, 5); /* Node's default: a wait on the marker must not delay the second job */
    ph_worker(h, o);
    int64_t t0 = tu_now_ms();
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 2));
    cr_assert_lt(tu_now_ms() - t0, 1000, "without delay");
    ph_end(h);
}

static void delay25(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 25, NULL);
}

/* node: "[when using custom jobId] should process prioritized jobs" */
Test(parity_misc, prioritized_jobs_with_custom_ids) {
    ph *h = ph_new("q");
    ph_add(h, "test1", "{\"p\":2}", "{\"priority\":2,\"jobId\":\"custom1\"}");
    ph_add(h, "test2", "{\"p\":3}", "{\"priority\":3,\"jobId\":\"custom2\"}");
    h->proc = delay25;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 2));
    cr_assert_lt(tu_now_ms() - t0, 1000);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, "custom1");
    cr_assert_str_eq(ph_wget(h, 'c', 1)->id, "custom2");
    ph_end(h);
}

/* ---- a failing fetch -------------------------------------------------------------------------------- */

static void success(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, "{\"result\":\"success\"}");
}

/* node: "emits error and continues running when _getNextJob fails" */
Test(parity_misc, failing_fetch_emits_error_and_continues) {
    ph *h = ph_new("q");
    h->proc = success;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"data\":\"test\"}", NULL);
    /* the next moveToActive fails: the queue's meta key has the wrong type */
    ph_vcmd("DEL %s", ph_key(h, "meta"));
    ph_vcmd("SET %s broken", ph_key(h, "meta"));
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, h->n_errors >= 1), "an error event");
    cr_assert_eq(h->n_completed, 0);
    ph_vcmd("DEL %s", ph_key(h, "meta")); /* the next attempt works */
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert(bullc_worker_is_running(w));
    ph_end(h);
}

/* ---- bulk ---------------------------------------------------------------------------------------- */

static void delay900(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 900, NULL);
}

/* node: "should keep workers busy" */
Test(parity_misc, bulk_keeps_workers_busy) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = delay900;
    ph_worker(h, NULL);
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 2));
    bullc_bulk_job jobs[6];
    char data[6][16];
    for (int i = 0; i < 6; i++) {
        snprintf(data[i], sizeof data[i], "{\"index\":%d}", i);
        jobs[i] = (bullc_bulk_job){.name = "test", .data_json = data[i]};
    }
    int64_t t0 = tu_now_ms();
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 6, NULL), 0);
    for (int i = 0; i < 6; i++) bullc_free(jobs[i].id);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "completed", NULL) == 6));
    int64_t took = tu_now_ms() - t0;
    cr_assert_lt(took, 6 * 900, "both workers kept busy (%lld ms)", (long long)took);
    int by0 = 0, by1 = 0;
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == 'c') *(h->wev[i].widx ? &by1 : &by0) += 1;
    cr_assert(by0 >= 2 && by1 >= 2, "worker 1: %d jobs, worker 2: %d jobs", by0, by1);
    ph_end(h);
}

/* ---- failing a removed job ------------------------------------------------------------------------ */

typedef struct manual {
    bullc_job *job;
    int code;
    bool done;
} manual;
static void got_next(bullc_worker *w, bullc_job *job, int code, void *data) {
    (void)w;
    manual *m = data;
    m->job = job;
    m->code = code;
    m->done = true;
}

/* node: "[when job is removed] should not save stacktrace" */
Test(parity_misc, failing_a_removed_job_saves_nothing) {
    ph *h = ph_new("q");
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_lock_duration(o, 100);
    bullc_worker_opts_set_skip_lock_renewal(o, true);
    bullc_worker *w = ph_worker_ex(h, o, true);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":1}");
    manual m = {0};
    cr_assert_eq(bullc_worker_get_next_job(w, "my-token", false, got_next, &m), 0);
    cr_assert(PH_WAIT(h, 5000, m.done));
    cr_assert_not_null(m.job);
    usleep(105000);
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, NULL), 0, "the lock expired: removable");
    bullc_job_fail(m.job, "test error", 0);
    char want[64];
    snprintf(want, sizeof want, "Missing key for job %s. moveToFinished", id);
    cr_assert(PH_WAIT(h, 5000, h->n_errors >= 1), "the failure is refused");
    cr_assert(strstr(ph_wget(h, 'e', 0)->text, want), "%s", ph_wget(h, 'e', 0)->text);
    cr_assert_eq(ph_icmd("EXISTS %s", ph_key(h, id)), 0, "no hash (and no stacktrace) written");
    ph_end(h);
}

/* ---- rate limit on a job that is gone ------------------------------------------------------------------ */

static void obliterate_then_limited(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_started(job) == 1) {
        cr_assert_eq(bullc_queue_rate_limit(h->q, 250, NULL), 0);
        cr_assert_eq(bullc_queue_obliterate(h->q, true, 0, NULL), 0);
        ph_fail(h, job, "bullmq:rateLimitExceeded", BULLC_FAIL_RATE_LIMITED);
        return;
    }
    ph_complete(h, job, NULL);
}

/* node: "[when job does not exist] should fail with job existence error" */
Test(parity_misc, rate_limited_job_that_is_gone) {
    ph *h = ph_new("q");
    h->proc = obliterate_then_limited;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, 10);
    bullc_worker_opts_set_limiter(o, 2, 100);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_worker_run(w);
    char want[96];
    snprintf(want, sizeof want, "Missing key for job %s. moveJobFromActiveToWait", id);
    cr_assert(PH_WAIT(h, 5000, h->n_errors >= 1));
    cr_assert(strstr(ph_wget(h, 'e', 0)->text, want), "%s", ph_wget(h, 'e', 0)->text);
    ph_end(h);
}

/* ---- queue.getActive() ------------------------------------------------------------------------------------ */

static void delay500(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 500, "{\"done\":true}");
}

/* node: "[Get Active Jobs] should return list of active job IDs using queue.getActive()" */
Test(parity_misc, get_active) {
    ph *h = ph_new("q");
    h->proc = delay500;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 3);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *ids[3];
    for (int i = 0; i < 3; i++) {
        char d[16];
        snprintf(d, sizeof d, "{\"index\":%d}", i);
        ids[i] = ph_add(h, "test", d, NULL);
    }
    cr_assert(PH_WAIT(h, 5000, h->n_active == 3));
    cJSON *a = ph_jobs(h, "active", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 3);
    cJSON *j;
    cJSON_ArrayForEach(j, a) {
        const char *id = cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring;
        cr_assert(!strcmp(id, ids[0]) || !strcmp(id, ids[1]) || !strcmp(id, ids[2]), "%s", id);
    }
    cJSON_Delete(a);
    ph_end(h);
}

/* node: "[Get Active Jobs] should return empty array when no jobs are active" */
Test(parity_misc, get_active_when_none) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cJSON *a = ph_jobs(h, "active", 0, -1, false);
    cr_assert(cJSON_IsArray(a));
    cr_assert_eq(cJSON_GetArraySize(a), 0);
    cJSON_Delete(a);
    ph_end(h);
}

static void delay100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, "{\"done\":true}");
}

/* node: "[Get Active Jobs] should update active jobs list as jobs complete" */
Test(parity_misc, get_active_as_jobs_complete) {
    ph *h = ph_new("q");
    h->proc = delay100;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 2);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"index\":1}", NULL);
    ph_add(h, "test", "{\"index\":2}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 2));
    cJSON *a = ph_jobs(h, "active", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 2);
    cJSON_Delete(a);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 2));
    PH_RUN_FOR(h, 10);
    a = ph_jobs(h, "active", 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(a), 0);
    cJSON_Delete(a);
    ph_end(h);
}

/* ---- connection losses and an unreachable Redis ----------------------------------------------------------- */

/* node: "should close worker even if redis is down" */
Test(parity_misc, close_worker_while_redis_is_down) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", tu_free_port());
    ph *h = ph_new("q");
    h->url = url;
    h->proc = noop;
    ph_worker(h, NULL);
    PH_RUN_FOR(h, 200);
    int64_t t0 = tu_now_ms();
    ph_close_worker(h, 0, false);
    cr_assert_lt(tu_now_ms() - t0, 3000);
    ph_end(h);
}

/* node: "should fail if redis connection fails" */
Test(parity_misc, unreachable_redis_fails) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", tu_free_port());
    ph *h = ph_new("q");
    bullc_queue *q = ph_queue_at(h, url);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_ping(q, &err), BULLC_ECONN, "%s", err.message);
    cr_assert(strstr(err.message, "refused") || strstr(err.message, "REFUSED"), "%s", err.message);
    bullc_queue_free(q);
    ph_end(h);
}

/* node: "should close if connection has failed" */
Test(parity_misc, close_after_a_failed_connection) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", tu_free_port());
    ph *h = ph_new("q");
    bullc_queue *q = ph_queue_at(h, url);
    cr_assert_eq(bullc_queue_ping(q, NULL), BULLC_ECONN);
    cr_assert_lt(bullc_queue_add(q, "test", "{}", NULL, NULL, NULL), 0);
    bullc_queue_free(q); /* closes without hanging */
    ph_end(h);
}

/* node: "should handle jobs added before and after a redis disconnect" */
Test(parity_misc, jobs_added_before_and_after_a_disconnect) {
    private_redis pr;
    pr_start(&pr, "");
    ph *h = ph_new("q");
    h->url = pr.url;
    h->proc = noop;
    bullc_queue *q = ph_queue_at(h, pr.url);
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *first = NULL;
    ph_add_to(h, q, "test", "{\"foo\":\"bar\"}", NULL, &first);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, first);
    /* every connection but this one: the worker's two and the queue's */
    redisContext *c = pr_connect(&pr);
    redisReply *r = redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 3, "killed %lld", r ? r->integer : -1);
    freeReplyObject(r);
    const char *second = NULL;
    ph_add_to(h, q, "test", "{\"foo\":\"bar\"}", NULL, &second);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2), "the job added after the disconnect is processed");
    cr_assert_str_eq(ph_wget(h, 'c', 1)->id, second);
    cr_assert(PH_WAIT(h, 5000, h->n_ready >= 2), "the worker connected again");
    redisFree(c);
    bullc_queue_free(q);
    ph_end(h);
    pr_stop(&pr);
}

static int refused_errors;
static char refused_msg[256];
static void record_refusal(bullc_queue_events *qe, int code, const char *message, void *data) {
    (void)qe, (void)data;
    cr_assert_eq(code, BULLC_ECONN);
    if (!refused_errors++) snprintf(refused_msg, sizeof refused_msg, "%s", message);
}
static void qe_closed(bullc_queue_events *qe, void *data) {
    (void)qe;
    ++*(int *)data;
}

/* A listener on a port nobody listens on: its error callback names the
 * refusal and the address. */
/* node: "should emit error if redis connection fails" */
Test(parity_misc, unreachable_redis_is_an_error_event) {
    int port = tu_free_port();
    char url[64], where[32];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    snprintf(where, sizeof where, "127.0.0.1:%d", port);
    ph *h = ph_new("q");
    bullc_queue_events_callbacks cbs = {.error = record_refusal};
    refused_errors = 0;
    bullc_queue_events *qe = ph_qe_at(h, url, -1, &cbs, h);
    cr_assert(PH_WAIT(h, 5000, refused_errors >= 1));
    cr_assert(strstr(refused_msg, "refused") || strstr(refused_msg, "REFUSED"), "%s", refused_msg);
    cr_assert(strstr(refused_msg, where), "%s", refused_msg);
    int closed = 0;
    bullc_queue_events_close(qe, qe_closed, &closed);
    cr_assert(PH_WAIT(h, 3000, closed == 1));
    bullc_queue_events_free(qe);
    ph_end(h);
}

/* A server that takes each connection and closes it at once, counting them:
 * a Redis whose connections keep failing. */
typedef struct closer {
    uv_tcp_t srv;
    int accepted;
} closer;
static void closer_client_closed(uv_handle_t *c) { free(c); }
static void closer_conn(uv_stream_t *srv, int status) {
    closer *k = srv->data;
    if (status < 0) return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(srv->loop, c);
    if (uv_accept(srv, (uv_stream_t *)c) == 0) k->accepted++;
    uv_close((uv_handle_t *)c, closer_client_closed);
}

/* Node's retryStrategy tries once more after 10 ms, then gives up: a queue
 * handle whose connects keep failing answers each call with the refusal (a
 * call is a new attempt), and closes at once; so does a listener that keeps
 * connecting to a server that closes each connection. */
/* node: "should close if connection is failing" */
Test(parity_misc, close_while_the_connection_is_failing) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", tu_free_port());
    ph *h = ph_new("q");
    bullc_queue *q = ph_queue_at(h, url);
    bullc_error err = {0};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(bullc_queue_ping(q, &err), BULLC_ECONN);
        cr_assert(strstr(err.message, "refused") || strstr(err.message, "REFUSED"), "%s", err.message);
    }
    bullc_queue_free(q);
    closer k = {0};
    uv_tcp_init(&h->loop, &k.srv);
    k.srv.data = &k;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    cr_assert_eq(uv_tcp_bind(&k.srv, (const struct sockaddr *)&sa, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&k.srv, 8, closer_conn), 0);
    int len = sizeof sa;
    uv_tcp_getsockname(&k.srv, (struct sockaddr *)&sa, &len);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(sa.sin_port));
    bullc_queue_events *qe = ph_qe_at(h, url, -1, NULL, NULL);
    cr_assert(PH_WAIT(h, 5000, k.accepted >= 2), "connected again after a failure");
    int closed = 0;
    int64_t t0 = tu_now_ms();
    bullc_queue_events_close(qe, qe_closed, &closed);
    cr_assert(PH_WAIT(h, 3000, closed == 1));
    cr_assert_lt(tu_now_ms() - t0, 1000, "closed without waiting for a connection");
    int n = k.accepted;
    PH_RUN_FOR(h, 500);
    cr_assert_eq(k.accepted, n, "no attempt after the close");
    bullc_queue_events_free(qe);
    uv_close((uv_handle_t *)&k.srv, NULL);
    ph_end(h);
}

static long long clients_of(const private_redis *pr) {
    redisContext *c = pr_connect(pr);
    redisReply *r = redisCommand(c, "CLIENT LIST");
    cr_assert(r && r->type != REDIS_REPLY_ERROR);
    long long n = 0;
    for (const char *p = r->str; (p = strstr(p, "id=")); p += 3) n++;
    freeReplyObject(r);
    redisFree(c);
    return n; /* this one included */
}

/* node: "should close underlying redis connection when closing fast" */
Test(parity_misc, close_closes_the_connection) {
    private_redis pr;
    pr_start(&pr, "");
    ph *h = ph_new("q");
    cr_assert_eq(clients_of(&pr), 1);
    /* closed at once: no connection is left */
    bullc_queue *q = ph_queue_at(h, pr.url);
    bullc_queue_free(q);
    cr_assert_eq(clients_of(&pr), 1);
    /* closed after it connected: its connection is closed */
    q = ph_queue_at(h, pr.url);
    cr_assert_eq(bullc_queue_ping(q, NULL), 0);
    cr_assert_eq(clients_of(&pr), 2);
    bullc_queue_free(q);
    usleep(50000);
    cr_assert_eq(clients_of(&pr), 1);
    ph_end(h);
    pr_stop(&pr);
}

/* ---- getJobCounts over every state ------------------------------------------------ */

static void fail_first_then_complete(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (h->n_failed + h->n_completed == 0 && !h->user) {
        h->user = job; /* the first job fails */
        ph_fail_in(h, job, 200, "failed", 0);
    } else {
        ph_complete_in(h, job, 200, NULL);
    }
}

/* node: "[.getJobCounts] returns job counts for active, completed, delayed, failed, prioritized, waiting and waiting-children" */
Test(parity_misc, job_counts_of_every_state) {
    ph *h = ph_new("q");
    h->proc = fail_first_then_complete;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"q\",\"data\":{},\"children\":["
                           "{\"name\":\"child-1\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"q\"},"
                           "{\"name\":\"child-2\",\"data\":{\"idx\":1,\"foo\":\"baz\"},\"queueName\":\"q\"},"
                           "{\"name\":\"child-3\",\"data\":{\"idx\":2,\"foo\":\"bac\"},\"queueName\":\"q\"},"
                           "{\"name\":\"child-4\",\"data\":{\"idx\":3,\"foo\":\"bad\"},\"queueName\":\"q\"}]}");
    cJSON_Delete(t);
    ph_add(h, "test", "{\"idx\":2}", "{\"delay\":5000}");
    ph_add(h, "test", "{\"idx\":3}", "{\"priority\":5}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    char *json = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_counts(h->q, NULL, 0, &json, &err), 0, "%s", err.message);
    cJSON *c = cJSON_Parse(json);
    static const char *const states[] = {"active",      "completed", "delayed",         "failed",
                                         "prioritized", "waiting",   "waiting-children"};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        cr_expect_eq(ph_jnum(c, states[i]), 1, "%s in %s", states[i], json);
    cr_assert_eq(cJSON_GetArraySize(c), 7, "%s", json);
    cJSON_Delete(c);
    bullc_free(json);
    ph_end(h);
}
