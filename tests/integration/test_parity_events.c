/* SPDX-License-Identifier: MIT */
/* Node BullMQ's events.test.ts / events.redis.test.ts cases: the events a
 * bullc producer and worker write to the queue's stream, as bullc's
 * QueueEvents listener delivers them, the worker's local events, and the
 * stream's trimming (maxLenEvents, trimEvents), and the listener's watchdog
 * over an XREAD whose answer never comes. */
#include "test_parity_util.h"

#include <math.h>
#include <unistd.h>

#include "faultproxy.h"

TestSuite(parity_events, .timeout = 60);

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

static long long xlen(ph *h) { return ph_icmd("XLEN %s", ph_key(h, "events")); }

/* node: "[when autorun option is provided as false] emits waiting when a job has been added" */
Test(parity_events, autorun_off_then_run) {
    ph *h = ph_new("q");
    bullc_queue_events_opts *o = ph_qe_opts(h, tu_redis_url(), 200);
    bullc_queue_events_opts_set_autorun(o, false);
    bullc_queue_events_callbacks cbs = {.event = ph__qe_event, .ready = ph__qe_ready};
    cr_assert_eq(bullc_queue_events_new(&h->qe, &h->loop, h->qname, o, &cbs, h, NULL), 0);
    PH_RUN_FOR(h, 100);
    cr_assert_not(h->qe_ready, "not listening before run()");
    cr_assert_eq(bullc_queue_events_run(h->qe), 0);
    cr_assert(PH_WAIT(h, 5000, h->qe_ready));
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "waiting", NULL) == 1));
    ph_end(h);
}

/* node: "[when run method is called when queueEvent is running] throws error" */
Test(parity_events, run_twice) {
    ph *h = ph_new("q");
    bullc_queue_events_opts *o = ph_qe_opts(h, tu_redis_url(), 200);
    bullc_queue_events_opts_set_autorun(o, false);
    bullc_queue_events_callbacks cbs = {.event = ph__qe_event, .ready = ph__qe_ready};
    cr_assert_eq(bullc_queue_events_new(&h->qe, &h->loop, h->qname, o, &cbs, h, NULL), 0);
    cr_assert_eq(bullc_queue_events_run(h->qe), 0);
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(bullc_queue_events_run(h->qe), BULLC_EINVAL, "Queue Events is already running.");
    cr_assert(PH_WAIT(h, 5000, h->qe_ready));
    ph_end(h);
}

/* node: "should emit global waiting event when a job has been added" */
Test(parity_events, global_waiting) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "waiting", id) == 1));
    ph_end(h);
}

/* Node reports both cleans to its own 'cleaned' listeners as type "wait";
 * what reaches other processes is the stream's cleaned event, one a call */
/* node: "should emit correct events for both "wait" and "waiting" clean operations" */
Test(parity_events, cleaned_events_of_wait_and_waiting) {
    ph *h = ph_new("q");
    ph_qe(h);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    PH_RUN_FOR(h, 100);
    const char *types[] = {"wait", "waiting"};
    for (int i = 0; i < 2; i++) {
        bullc_error err = {0};
        char *ids = NULL;
        cr_assert_eq(bullc_queue_clean(h->q, 0, 1, types[i], &ids, &err), 0, "%s", err.message);
        cJSON *a = cJSON_Parse(ids);
        cr_assert_eq(cJSON_GetArraySize(a), 1, "%s cleans one job: %s", types[i], ids);
        cJSON_Delete(a);
        bullc_free(ids);
        cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "cleaned", NULL) == i + 1));
        cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "cleaned", i), "count"), "1");
        cr_assert_eq(ph_count(h, "waiting"), 1 - i);
    }
    ph_end(h);
}

static void delay10(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 10, NULL);
}

/* node: "[when jobs are cleaned] emits cleaned global event" */
Test(parity_events, cleaned_event) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = delay10;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    bullc_bulk_job jobs[50];
    for (int i = 0; i < 50; i++) jobs[i] = (bullc_bulk_job){.name = "test", .data_json = "{\"foo\":\"bar\"}"};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 50, NULL), 0);
    for (int i = 0; i < 50; i++) bullc_free(jobs[i].id);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 20000, h->n_completed == 50));
    PH_RUN_FOR(h, 10);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_clean(h->q, 0, 0, "completed", NULL, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "cleaned", NULL) == 1));
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "cleaned", 0), "count"), "50");
    cr_assert_eq(ph_count(h, "waiting") + ph_count(h, "delayed") + ph_count(h, "prioritized"), 0);
    ph_end(h);
}

static void add_two(ph *h) {
    bullc_bulk_job jobs[2] = {{.name = "test", .data_json = "{\"foo\":\"bar\"}"},
                              {.name = "test", .data_json = "{\"foo\":\"baz\"}"}};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 2, NULL), 0);
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
}

/* node: "emits drained global event when all jobs have been processed" */
Test(parity_events, drained_global_event) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = noop;
    ph_worker(h, NULL);
    add_two(h);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "drained", NULL) >= 1));
    cr_assert_neq(*ph_qe_field(ph_qe_get(h, "drained", 0), "id"), 0, "the event has an id");
    int n = ph_count(h, "completed");
    cr_assert(n >= 1 && n <= 2, "%d completed", n);
    ph_end(h);
}

static void delay500(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 500, NULL);
}

/* node: "[when concurrency is greater than 1] emits drained global event when all jobs have been processed" */
Test(parity_events, drained_global_event_with_concurrency) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = delay500;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 4);
    bullc_worker_opts_set_drain_delay(o, 0.5);
    ph_worker(h, o);
    bullc_bulk_job jobs[4] = {{.name = "test", .data_json = "{\"foo\":\"bar\"}"},
                              {.name = "test", .data_json = "{\"foo\":\"baz\"}"},
                              {.name = "test", .data_json = "{\"foo\":\"bax\"}"},
                              {.name = "test", .data_json = "{\"foo\":\"bay\"}"}};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 4, NULL), 0);
    for (int i = 0; i < 4; i++) bullc_free(jobs[i].id);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "drained", NULL) >= 1));
    cr_assert_eq(ph_count(h, "completed"), 4);
    ph_end(h);
}

static void delay25(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 25, NULL);
}

/* node: "[events] emits drained global event only once when worker is idle" */
Test(parity_events, drained_once_when_idle) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = delay25;
    ph_worker(h, NULL);
    add_two(h);
    PH_RUN_FOR(h, 1000);
    add_two(h);
    PH_RUN_FOR(h, 2000);
    cr_assert_eq(ph_count(h, "completed"), 4);
    cr_assert_eq(ph_qe_count(h, "drained", NULL), 2);
    ph_end(h);
}

/* The same with a global concurrency of 1 set after the adds and a worker
 * of concurrency 10: the jobs run one at a time, and the idle worker's
 * blocking polls (drain delay 1 s) write no more drained events. */
/* node: "[Concurrency] emits drained global event only once when worker is idle" */
Test(parity_events, drained_once_with_global_concurrency) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = delay25;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 10);
    ph_worker(h, o);
    add_two(h);
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, NULL), 0);
    PH_RUN_FOR(h, 4000);
    cr_assert_eq(ph_count(h, "completed"), 2);
    cr_assert_eq(ph_qe_count(h, "drained", NULL), 1);
    cr_assert_eq(h->max_in_process, 1, "one at a time once the global concurrency is set");
    ph_end(h);
}

/* node: "emits drained event in worker when all jobs have been processed" */
Test(parity_events, worker_drained_event) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int before = h->n_drained;
    add_two(h);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2 && h->n_drained > before));
    PH_RUN_FOR(h, 10);
    cr_assert_eq(ph_count(h, "completed"), 2);
    ph_end(h);
}

static void delay100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, NULL);
}

/* node: "[when one job is added] emits added event" */
Test(parity_events, added_event) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = delay100;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "added", NULL) == 1));
    cJSON *e = ph_qe_get(h, "added", 0);
    cr_assert_str_eq(ph_qe_field(e, "jobId"), "1");
    cr_assert_str_eq(ph_qe_field(e, "name"), "test");
    ph_end(h);
}

static void add_a1_again(ph *h, void *arg) {
    bullc_job *job = arg;
    cr_assert_eq(ph_add_to(h, NULL, "test", "{\"foo\":\"bar\"}", "{\"jobId\":\"a1\"}", NULL), 1,
                 "the id exists: nothing added");
    ph_complete_in(h, job, 50, NULL);
}
static void duplicate_while_active(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_call_in(h, 50, add_a1_again, job);
}

/* node: "[when job has been added again] emits duplicated event" */
Test(parity_events, duplicated_event) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = duplicate_while_active;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"jobId\":\"a1\"}");
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "duplicated", NULL) == 1));
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "duplicated", 0), "jobId"), "a1");
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    ph_end(h);
}

/* node: "should emit an event when a job becomes active" */
Test(parity_events, active_then_completed) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_eq(h->n_active, 1);
    cr_assert_str_eq(ph_wget(h, 'a', 0)->id, id);
    int ia = -1, ic = -1;
    for (int i = 0; i < h->nwev; i++) {
        if (h->wev[i].kind == 'a' && ia < 0) ia = i;
        if (h->wev[i].kind == 'c' && ic < 0) ic = i;
    }
    cr_assert_lt(ia, ic, "active comes before completed");
    ph_end(h);
}

/* node: "should emit an active event for every processed job" */
Test(parity_events, active_for_every_job) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    bullc_bulk_job jobs[20];
    char data[20][16];
    for (int i = 0; i < 20; i++) {
        snprintf(data[i], sizeof data[i], "{\"index\":%d}", i);
        jobs[i] = (bullc_bulk_job){.name = "test", .data_json = data[i]};
    }
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 20, NULL), 0);
    for (int i = 0; i < 20; i++) bullc_free(jobs[i].id);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 20));
    cr_assert_eq(h->n_active, 20);
    cr_assert_eq(h->n_errors, 0);
    ph_end(h);
}

/* node: "should listen to global events" */
Test(parity_events, global_events_in_order) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = noop;
    ph_worker(h, NULL);
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "completed", NULL) == 1));
    const char *order[] = {"waiting", "active", "completed"};
    int k = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, h->qev) {
        const char *name = ph_qe_field(e, "event");
        if (k < 3 && !strcmp(name, order[k])) {
            cr_assert_str_eq(ph_qe_field(e, "jobId"), "1");
            if (k == 1) cr_assert_str_eq(ph_qe_field(e, "prev"), "waiting");
            if (k == 2) cr_assert_str_eq(ph_qe_field(e, "returnvalue"), "null");
            k++;
        }
    }
    cr_assert_eq(k, 3, "waiting, active, completed in this order");
    ph_end(h);
}

static void result42(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, "{\"result\":42}");
}

/* node: "emits completed global event with the deserialized return value" */
Test(parity_events, completed_with_return_value) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = result42;
    ph_worker(h, NULL);
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "completed", NULL) == 1));
    cJSON *e = ph_qe_get(h, "completed", 0);
    cr_assert_str_eq(ph_qe_field(e, "jobId"), "1");
    cJSON *rv = cJSON_Parse(ph_qe_field(e, "returnvalue"));
    cr_assert_eq(ph_jnum(rv, "result"), 42);
    cJSON_Delete(rv);
    ph_end(h);
}

/* ---- events.redis.test.ts ------------------------------------------------------------ */

/* node: "[when jobs removal is attempted on non-existed records] should not publish removed events" */
Test(parity_events, no_removed_event_for_missing_jobs) {
    ph *h = ph_new("q");
    for (int i = 0; i < 100; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", i);
        cr_assert_eq(bullc_queue_remove_job(h->q, id, true, NULL), BULLC_ENOTFOUND);
    }
    cr_assert_eq(xlen(h), 0);
    ph_end(h);
}

/* node: "should trim events manually" */
Test(parity_events, trim_events_manually) {
    ph *h = ph_new("q");
    for (int i = 0; i < 4; i++) ph_add(h, "test", "{}", NULL);
    cr_assert_eq(xlen(h), 8);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_trim_events(h->q, 0, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(xlen(h), 0);
    ph_end(h);
}

/* A queue handle on the ph's prefix with maxLenEvents `max_len`. */
static bullc_queue *trimmed_queue(ph *h, int64_t max_len) {
    bullc_redis_opts *o = tu_redis_opts();
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, h->prefix);
    bullc_queue_opts_set_max_len_events(qo, max_len);
    bullc_queue *q = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, h->qname, qo, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_ping(q, &err), 0);
    bullc_redis_opts_free(o);
    return q;
}
static void add_80(bullc_queue *q, const char *opts_json) {
    bullc_job_opts *o = tu_job_opts(opts_json);
    bullc_bulk_job jobs[80];
    for (int i = 0; i < 80; i++)
        jobs[i] = (bullc_bulk_job){.name = "test", .data_json = "{\"foo\":\"bar\"}", .opts = o};
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 80, NULL), 0);
    for (int i = 0; i < 80; i++) bullc_free(jobs[i].id);
    bullc_job_opts_free(o);
}

static void delay50(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 50, NULL);
}

/* node: "[when maxLen is greater than 0] should trim events so its length is at least the threshold" */
Test(parity_events, trim_to_max_len) {
    ph *h = ph_new("q");
    bullc_queue *tq = trimmed_queue(h, 20);
    ph_qe(h);
    h->proc = delay50;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    add_80(tq, NULL);
    cr_assert(PH_WAIT(h, 20000, ph_qe_count(h, "completed", NULL) == 80));
    long long n = xlen(h);
    cr_assert(n >= 20 && n <= 45, "events length %lld", n);
    bullc_queue_free(tq);
    ph_end(h);
}

static void fail_after_50(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail_in(h, job, 50, "error", 0);
}

/* node: "[when jobs are moved to delayed] should trim events so its length is at least the threshold" */
Test(parity_events, trim_when_moved_to_delayed) {
    ph *h = ph_new("q");
    bullc_queue *tq = trimmed_queue(h, 20);
    ph_qe(h);
    h->proc = fail_after_50;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    add_80(tq, "{\"attempts\":2,\"backoff\":5000}");
    cr_assert(PH_WAIT(h, 20000, ph_qe_count(h, "delayed", NULL) == 80));
    long long n = xlen(h);
    cr_assert(n >= 20 && n <= 35, "events length %lld", n);
    bullc_queue_free(tq);
    ph_end(h);
}

static void fail_after_25(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail_in(h, job, 25, "error", 0);
}

/* node: "[when jobs are retried immediately] should trim events so its length is at least the threshold" */
Test(parity_events, trim_when_retried) {
    ph *h = ph_new("q");
    bullc_queue *tq = trimmed_queue(h, 20);
    ph_qe(h);
    h->proc = fail_after_25;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    add_80(tq, "{\"attempts\":2}");
    cr_assert(PH_WAIT(h, 20000, h->n_retried == 80));
    cr_assert(PH_WAIT(h, 5000, ({
                          bool found = false;
                          cJSON *e;
                          cJSON_ArrayForEach(e, h->qev) {
                              if (!strcmp(ph_qe_field(e, "event"), "waiting") && *ph_qe_field(e, "prev")) {
                                  cr_assert_str_eq(ph_qe_field(e, "prev"), "active");
                                  if (!strcmp(ph_qe_field(e, "jobId"), "80")) found = true;
                              }
                          }
                          found;
                      })));
    long long n = xlen(h);
    cr_assert(n >= 20 && n <= 35, "events length %lld", n);
    bullc_queue_free(tq);
    ph_end(h);
}

/* node: "[when jobs removal is attempted] should trim events so its length is at least the threshold" */
Test(parity_events, trim_when_removing) {
    ph *h = ph_new("q");
    bullc_queue *tq = trimmed_queue(h, 20);
    bullc_bulk_job jobs[200];
    for (int i = 0; i < 200; i++) jobs[i] = (bullc_bulk_job){.name = "test", .data_json = "{\"foo\":\"bar\"}"};
    cr_assert_eq(bullc_queue_add_bulk(tq, jobs, 200, NULL), 0);
    for (int i = 0; i < 200; i++) bullc_free(jobs[i].id);
    for (int i = 1; i <= 200; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", i);
        cr_assert_eq(bullc_queue_remove_job(tq, id, true, NULL), 0);
    }
    long long n = xlen(h);
    cr_assert(n >= 20 && n <= 100, "events length %lld", n);
    bullc_queue_free(tq);
    ph_end(h);
}

/* node: "[when publishing custom events] emits waiting when a job has been added" */
Test(parity_events, custom_event) {
    ph *h = ph_new("q");
    const char *fields[] = {"custom", "value"};
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_publish_event(h->q, "example", fields, 1, 0, NULL, &err), 0, "%s", err.message);
    /* a listener started from 0-0 after the event was published */
    bullc_queue_events_opts *o = ph_qe_opts(h, tu_redis_url(), 200);
    bullc_queue_events_opts_set_autorun(o, false);
    bullc_queue_events_opts_set_last_event_id(o, "0-0");
    bullc_queue_events_callbacks cbs = {.event = ph__qe_event, .ready = ph__qe_ready};
    cr_assert_eq(bullc_queue_events_new(&h->qe, &h->loop, h->qname, o, &cbs, h, NULL), 0);
    cr_assert_eq(bullc_queue_events_run(h->qe), 0);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "example", NULL) == 1));
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "example", 0), "custom"), "value");
    ph_end(h);
}
static void delay100b(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, NULL);
}

/* node: "[when maxLen is 0] should trim events automatically" */
Test(parity_events, trim_with_max_len_zero) {
    ph *h = ph_new("q");
    bullc_queue *tq = trimmed_queue(h, 0);
    ph_qe(h);
    h->proc = delay100b;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_bulk_job jobs[3] = {{.name = "test", .data_json = "{\"foo\":\"bar\"}"},
                              {.name = "test", .data_json = "{\"foo\":\"baz\"}"},
                              {.name = "test", .data_json = "{\"foo\":\"bar\"}"}};
    cr_assert_eq(bullc_queue_add_bulk(tq, jobs, 3, NULL), 0);
    for (int i = 0; i < 3; i++) bullc_free(jobs[i].id);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "completed", NULL) == 3));
    redisReply *r = ph_cmd("XREVRANGE %s + -", ph_key(h, "events"));
    cr_assert_geq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->element[1]->element[1]->str, "drained");
    cr_assert_str_eq(r->element[1]->element[1]->element[1]->str, "completed");
    freeReplyObject(r);
    cr_assert_leq(xlen(h), 2);
    bullc_queue_free(tq);
    ph_end(h);
}

/* ---- a read that never settles ------------------------------------------------------------- */

static int wedge_ready, wedge_errors;
static void wedge_ready_cb(bullc_queue_events *qe, const char *after, void *data) {
    wedge_ready++;
    ph__qe_ready(qe, after, data);
}
static void wedge_error_cb(bullc_queue_events *qe, int code, const char *message, void *data) {
    (void)qe, (void)code, (void)message, (void)data;
    wedge_errors++;
}

/* The proxy between the listener and Redis swallows the answer to the
 * listener's XREAD BLOCK 200, so the read never settles (as #4479's
 * re-sent read): a second past its BLOCK the listener gives it up with
 * its connection, connects again and reads on from the last id it
 * delivered, so the job added while it was stuck is not lost. */
/* node: "[events (redis-only) > when the blocking XREAD never settles (#4479)] recovers via the readEvents watchdog" */
Test(parity_events, xread_watchdog) {
    faultproxy *fp = fp_start(tu_redis_port());
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", fp_port(fp));
    ph *h = ph_new("q");
    bullc_queue_events_callbacks cbs = {.event = ph__qe_event, .ready = wedge_ready_cb, .error = wedge_error_cb};
    h->qe = ph_qe_at(h, url, 200, &cbs, h);
    cr_assert(PH_WAIT(h, 5000, h->qe_ready));
    const char *first = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 3000, ph_qe_count(h, "waiting", first) == 1));
    cr_assert_eq(fp_accepted(fp), 1);
    fp_set_mode(fp, FP_DROP_REPLY, 0); /* the pending (or next) read's answer */
    PH_RUN_FOR(h, 300);
    int64_t wedged = tu_now_ms();
    const char *during = ph_add(h, "test", "{}", NULL);
    PH_RUN_FOR(h, 300);
    cr_assert_eq(ph_qe_count(h, "waiting", during), 0, "the read is stuck");
    cr_assert_eq(fp_accepted(fp), 1);
    cr_assert(PH_WAIT(h, 5000, fp_accepted(fp) == 2), "the watchdog gave the read up with its connection");
    cr_assert_lt(tu_now_ms() - wedged, 3500, "a second past its BLOCK, not a reconnect of its own");
    cr_assert(PH_WAIT(h, 3000, ph_qe_count(h, "waiting", during) == 1), "read on from the last id");
    cr_assert_eq(wedge_ready, 2, "listening again on the new connection");
    cr_assert_geq(wedge_errors, 1, "the abandoned read was reported");
    const char *after = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 3000, ph_qe_count(h, "waiting", after) == 1));
    cr_assert_eq(ph_qe_count(h, "waiting", first), 1, "nothing delivered twice");
    ph_end(h);
    fp_stop(fp);
}
