/* SPDX-License-Identifier: MIT */
/* Node BullMQ's cases about a job's parent seen from the job and queue side
 * (job.test.ts, job.redis.test.ts, bulk.test.ts, events.test.ts,
 * queue.test.ts): a missing parent refused, a parent's processed hash
 * removed with it, a parent not completed before its children, children
 * added in bulk, a parent's waiting-children and waiting events. Each case runs speaking BullMQ 6 (the
 * marked test) and 5 (its twin, on queues a Node 5.81.5 Queue made). */
#include "test_flow_util.h"

#define BOTH_MAJORS(name)                             \
    static void name(int major);                      \
    Test(parity_parents, name) { name(6); }           \
    Test(parity_parents, name##_bullmq5) { name(5); } \
    static void name(int major)

static ph *setup(int major) {
    ph *h = ph_new("q");
    if (major == 5)
        for (int i = 0; i < 2; i++)
            freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix,
                                   i ? "parents" : "q"));
    return h;
}

/* {"parent":{"id":<id>,"queue":"<prefix>:parents"}} */
static const char *parent_opts(ph *h, const char *id) {
    static char o[256];
    snprintf(o, sizeof o, "{\"parent\":{\"id\":\"%s\",\"queue\":\"%s:parents\"}}", id, h->prefix);
    return o;
}

/* A plain job on "parents" (Node's Job.create(parentQueue, ...)). */
static const char *add_parent(ph *h, bullc_queue *pq) {
    const char *id;
    ph_add_to(h, pq, "testParent", "{\"foo\":\"bar\"}", NULL, &id);
    return id;
}

/* node: "[.create > when parent key is missing] throws an error" */
BOTH_MAJORS(missing_parent_refused) {
    ph *h = setup(major);
    char msg[512], expected[512];
    snprintf(expected, sizeof expected, "Missing key for parent job %s:parents:gone. addJob", h->prefix);
    cr_assert_eq(ph_add_err(h, "test", "{\"foo\":\"bar\"}", parent_opts(h, "gone"), msg, sizeof msg), BULLC_ENOTFOUND);
    cr_assert_str_eq(msg, expected);
    cr_assert_eq(bullc_queue_bullmq_version(h->q), major);
    cr_assert_eq(ph_count(h, "waiting"), 0, "nothing added");
    ph_end(h);
}

/* ---- manual workers on both queues ------------------------------------------------- */

/* A worker without a processor on queue `qname`. */
static bullc_worker *manual_on(ph *h, const char *qname) {
    char keep[sizeof h->qname];
    snprintf(keep, sizeof keep, "%s", h->qname);
    snprintf(h->qname, sizeof h->qname, "%s", qname);
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    int ready = h->n_ready;
    bullc_worker *w = ph_worker_ex(h, o, true);
    snprintf(h->qname, sizeof h->qname, "%s", keep);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == ready + 1));
    return w;
}

/* node: "[Job (redis-only) > .remove] removes processed hash" */
BOTH_MAJORS(remove_takes_processed_hash) {
    ph *h = setup(major);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    bullc_worker *pw = manual_on(h, "parents"), *cw = manual_on(h, "q");
    const char *pid = add_parent(h, pq);
    ph_add(h, "testJob1", "{\"idx\":0,\"bar\":\"something\"}", parent_opts(h, pid));
    bullc_job *parent = ph_next_job(h, pw, "my-token"), *child = ph_next_job(h, cw, "my-token2");
    cr_assert_str_eq(state_of(pq, pid), "active");
    char pkey[256];
    snprintf(pkey, sizeof pkey, "%s:processed", job_key(h, "parents", pid));
    cr_assert_eq(bullc_job_complete(child, "\"return value\""), 0);
    cr_assert(PH_WAIT(h, 5000, ph_icmd("HLEN %s", pkey) == 1), "the child's result in the parent's processed hash");
    cr_assert_eq(bullc_job_complete(parent, "\"return value\""), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(state_of(pq, pid), "completed")));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(pq, pid, true, &err), 0, "%s", err.message);
    cr_assert(gone(pq, pid));
    cr_assert_eq(ph_icmd("EXISTS %s", pkey), 0, "the processed hash went with the parent");
    bullc_queue_free(pq);
    ph_end(h);
}

/* Node's job.moveToCompleted rejects and leaves the job active and locked;
 * bullc completes through its worker, which then fails the job with the
 * script's message, as Node's worker does (docs/flows.md) */
/* node: "[Job (redis-only) > .moveToCompleted] should not complete a parent job before its children" */
BOTH_MAJORS(parent_not_completed_before_children) {
    ph *h = setup(major);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    bullc_worker *pw = manual_on(h, "parents");
    const char *pid = add_parent(h, pq);
    ph_add(h, "testJob1", "{\"idx\":0,\"bar\":\"something\"}", parent_opts(h, pid));
    ph_add(h, "testJob2", "{\"idx\":1,\"baz\":\"something\"}", parent_opts(h, pid));
    bullc_job *parent = ph_next_job(h, pw, "my-token");
    int64_t counts[4];
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies_count(pq, pid, counts, &err), 0, "%s", err.message);
    cr_assert_eq(counts[1], 2, "two unprocessed children");
    cr_assert_str_eq(state_of(pq, pid), "active");
    char expected[256];
    snprintf(expected, sizeof expected, "Job %s has pending dependencies. moveToFinished", pid);
    cr_assert_eq(bullc_job_complete(parent, "\"return value\""), 0);
    cr_assert(PH_WAIT(h, 5000, h->n_errors >= 1), "the refusal is reported");
    ph_wev *e = ph_wget(h, 'e', 0);
    cr_assert_str_eq(e->text, expected);
    cr_assert(PH_WAIT(h, 5000, !strcmp(state_of(pq, pid), "failed")));
    cJSON *j = ph_job_in(pq, pid);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "failedReason")->valuestring, expected);
    cr_assert(!cJSON_IsNumber(cJSON_GetObjectItem(j, "returnvalue")) &&
                  !cJSON_IsString(cJSON_GetObjectItem(j, "returnvalue")),
              "never completed");
    cJSON_Delete(j);
    cr_assert_eq(bullc_queue_get_dependencies_count(pq, pid, counts, &err), 0, "%s", err.message);
    cr_assert_eq(counts[1], 2, "the children still pending");
    bullc_queue_free(pq);
    ph_end(h);
}

/* node: "[bulk jobs] should allow to pass parent option" */
BOTH_MAJORS(bulk_children) {
    ph *h = setup(major);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    const char *pid;
    ph_add_to(h, pq, "parent", "{\"some\":\"data\"}", NULL, &pid);
    bullc_job_opts *o = NULL;
    bullc_error err = {0};
    bullc_job_opts_new(&o);
    cr_assert_eq(bullc_job_opts_merge_json(o, parent_opts(h, pid), &err), 0, "%s", err.message);
    bullc_bulk_job jobs[2] = {{.name = "test", .data_json = "{\"idx\":0,\"foo\":\"bar\"}", .opts = o},
                              {.name = "test", .data_json = "{\"idx\":1,\"foo\":\"baz\"}", .opts = o}};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 2, &err), 0, "%s", err.message);
    bullc_job_opts_free(o);
    const char *foo[] = {"bar", "baz"};
    for (int i = 0; i < 2; i++) {
        cr_assert(jobs[i].id && *jobs[i].id);
        cJSON *j = ph_job(h, jobs[i].id);
        cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "foo")->valuestring, foo[i]);
        cr_assert_str_eq(cJSON_GetObjectItem(j, "parentKey")->valuestring, job_key(h, "parents", pid));
        cJSON_Delete(j);
        bullc_free(jobs[i].id);
    }
    int64_t counts[4];
    cr_assert_eq(bullc_queue_get_dependencies_count(pq, pid, counts, &err), 0, "%s", err.message);
    cr_assert_eq(counts[1], 2);
    cr_assert_eq(bullc_queue_bullmq_version(h->q), major);
    bullc_queue_free(pq);
    ph_end(h);
}

/* node: "[when one job is a parent] emits waiting-children and waiting event" */
BOTH_MAJORS(waiting_children_then_waiting) {
    ph *h = setup(major);
    ph_qe(h);
    h->proc = complete_all;
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"q\",\"data\":{},\"children\":["
                           "{\"name\":\"test\",\"data\":{\"foo\":\"bar\"},\"queueName\":\"parents\"}]}");
    const char *pid = nid(t, "");
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "waiting-children", pid) == 1));
    cr_assert_str_eq(ph_state(h, pid), "waiting-children");
    cJSON *j = ph_job(h, pid);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "parent-job");
    cJSON_Delete(j);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "waiting", pid) == 1), "the parent's waiting event");
    cJSON *e;
    cJSON_ArrayForEach(e, h->qev) {
        if (strcmp(ph_qe_field(e, "event"), "waiting") || strcmp(ph_qe_field(e, "jobId"), pid)) continue;
        cr_assert_str_eq(ph_qe_field(e, "prev"), "waiting-children");
    }
    cJSON_Delete(t);
    ph_end(h);
}
