/* SPDX-License-Identifier: MIT */
/* Node BullMQ's flow.test.ts cases where a tree's jobs come again: children
 * retried after they failed or completed (bullc_queue_retry_job), and nodes
 * added again by later flows or by the parent option (ids that exist
 * already). Children run on worker 0 (queue "q"), parents on worker 1
 * ("parents"). */
#include "test_flow_util.h"

TestSuite(flow_again, .timeout = 90);

/* ---- retrying children -------------------------------------------------------- */

static int idx_of(const bullc_job *job) {
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    const cJSON *i = cJSON_GetObjectItem(d, "idx");
    int idx = cJSON_IsNumber(i) ? i->valueint : -1;
    cJSON_Delete(d);
    return idx;
}

/* idx 0 writes {"idx":1} and fails; anything else completes */
static void fail_idx0_once(ph *h, bullc_job *job, int widx) {
    if (widx == 0 && idx_of(job) == 0) {
        cr_assert_eq(bullc_job_update_data(job, "{\"idx\":1,\"foo\":\"baz\"}", NULL, NULL), 0);
        ph_fail(h, job, "error", 0);
    } else {
        ph_complete(h, job, "{}");
    }
}

static void retry_failed(ph *h, ph_wev *e) {
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, e->id, "failed", 0, &err), 0, "%s", err.message);
}

/* node: "[when retrying a failed child] should update parent dependencies reference" */
Test(flow_again, a_failed_child_retried_completes_its_parent) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\","
                           "\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"}}]}");
    h->proc = fail_idx0_once;
    h->on_failed = retry_failed;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    cr_assert_eq(ph_wcount(h, 'f', nid(t, "0")), 1);
    cr_assert_eq(ph_count(h, "completed"), 1);
    cJSON_Delete(t);
    ph_end(h);
}

static void fail_all(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "error", 0);
}

/* One child with `opt` fails; retried, it is the parent's pending
 * dependency again. counts[] of the parent after the retry. */
static void retry_a_failed_child_with(const char *opt, int64_t counts[4]) {
    ph *h = ph_new("q");
    char flow[512];
    snprintf(flow, sizeof flow,
             "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\",\"queueName\":"
             "\"q\",\"data\":{\"foo\":\"bar\"},\"opts\":{\"%s\":true,\"attempts\":1}}]}",
             opt);
    cJSON *t = add_flow(h, flow);
    h->proc = fail_all;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 15000, h->n_failed == 1));
    /* the loop does not run until the end: the worker cannot take the job back */
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, nid(t, "0"), "failed", 0, &err), 0, "%s", err.message);
    cr_assert_str_eq(ph_state(h, nid(t, "0")), "waiting");
    bullc_queue *parents = tu_queue("parents", h->prefix);
    cr_assert_eq(bullc_queue_get_dependencies_count(parents, nid(t, ""), counts, &err), 0, "%s", err.message);
    bullc_queue_free(parents);
    ph_close_worker(h, 0, true);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when retrying a failed child with ignoreDependencyOnFailure] should move the child back to the parent dependencies" */
Test(flow_again, a_retried_ignored_child_is_pending_again) {
    int64_t counts[4];
    retry_a_failed_child_with("ignoreDependencyOnFailure", counts);
    cr_assert_eq(counts[3], 0, "ignored");
    cr_assert_eq(counts[1], 1, "unprocessed");
}

/* node: "[when retrying a failed child with continueParentOnFailure] should move the child back to the parent dependencies" */
Test(flow_again, a_retried_continued_child_is_pending_again) {
    int64_t counts[4];
    retry_a_failed_child_with("continueParentOnFailure", counts);
    cr_assert_eq(counts[1], 1, "unprocessed");
}

/* children write idx + 2 and complete 200 ms later; parents complete */
static void bump_idx(ph *h, bullc_job *job, int widx) {
    if (widx == 1) {
        ph_complete(h, job, "{}");
        return;
    }
    char data[32];
    snprintf(data, sizeof data, "{\"idx\":%d}", idx_of(job) + 2);
    cr_assert_eq(bullc_job_update_data(job, data, NULL, NULL), 0);
    ph_complete_in(h, job, 200, "null");
}

static char retried[64];
static void retry_completed_idx2(ph *h, ph_wev *e) {
    if (e->widx != 0 || retried[0]) return;
    /* the job's data as stored now (Node's job.data after updateData) */
    cJSON *j = ph_job(h, e->id);
    bool two = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "idx")->valueint == 2;
    cJSON_Delete(j);
    if (!two) return;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, e->id, "completed", 0, &err), 0, "%s", err.message);
    snprintf(retried, sizeof retried, "%s", e->id);
}

/* node: "[when retrying a completed child] should update parent dependencies reference" */
Test(flow_again, a_completed_child_retried_completes_its_parent) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":["
                           "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":0}},"
                           "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":1}}]}");
    retried[0] = 0;
    h->proc = bump_idx;
    h->on_completed = retry_completed_idx2;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    cr_assert_str_neq(retried, "", "the child with idx 0 was retried");
    cr_assert_eq(ph_count(h, "completed"), 2);
    cJSON_Delete(t);
    ph_end(h);
}

/* ---- nodes added again -------------------------------------------------------------- */

#define DAY(parent, child)                                                       \
    "{\"name\":\"" parent "\",\"queueName\":\"q\",\"opts\":{\"jobId\":\"" parent \
    "\"},\"children\":[{\"name\":\"" child "\",\"queueName\":\"q\",\"opts\":{\"jobId\":\"" child "\"}}]}"

/* node: "[when continually adding jobs] adds jobs that do not exists" */
Test(flow_again, a_flow_whose_child_exists_adds_the_rest) {
    ph *h = ph_new("q");
    cJSON *t1 = add_flow(h, DAY("tue", "mon")), *t2 = add_flow(h, DAY("wed", "tue"));
    h->proc = complete_all;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', "wed") == 1));
    cJSON *t3 = add_flow(h, DAY("thu", "wed"));
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', "thu") == 1));
    cr_assert_str_eq(ph_state(h, "thu"), "completed");
    cJSON_Delete(t1), cJSON_Delete(t2), cJSON_Delete(t3);
    ph_end(h);
}

static void complete_in_1s(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 1000, "{}");
}

/* node: "[when continually adding jobs] processes parent jobs added while a child job is active" */
Test(flow_again, a_parent_added_over_an_active_child_runs_after_it) {
    ph *h = ph_new("q");
    h->proc = complete_in_1s;
    ph_worker(h, NULL);
    cJSON *t1 = add_flow(h, "{\"name\":\"mon\",\"queueName\":\"q\",\"opts\":{\"jobId\":\"mon\"},\"children\":[]}");
    PH_RUN_FOR(h, 500);
    cJSON *t2 = add_flow(h, DAY("tue", "mon"));
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', "tue") == 1));
    cr_assert_str_eq(ph_state(h, "tue"), "completed");
    cJSON_Delete(t1), cJSON_Delete(t2);
    ph_end(h);
}

/* node: "[when continually adding jobs > when job already have a parent] throws an error" */
Test(flow_again, a_child_with_a_parent_cannot_get_another) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, DAY("tue", "mon"));
    ph_add(h, "wed", "{}", "{\"jobId\":\"wed\"}");
    char opts[160], msg[256], want[160];
    snprintf(opts, sizeof opts, "{\"jobId\":\"mon\",\"parent\":{\"id\":\"wed\",\"queue\":\"%s:q\"}}", h->prefix);
    cr_assert_eq(ph_add_err(h, "mon", "{}", opts, msg, sizeof msg), BULLC_ESTATE);
    snprintf(want, sizeof want, "The parent job %s:q:wed cannot be replaced. addJob", h->prefix);
    cr_assert_str_eq(msg, want);
    cJSON_Delete(t);
    ph_end(h);
}

static void complete_in_250ms(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 250, "{}");
}

/* node: "[when child already existed and it is re-added with same parentId] moves parent to wait if child is already completed" */
Test(flow_again, a_parent_added_again_over_its_completed_child_completes) {
    ph *h = ph_new("q");
    h->proc = complete_in_250ms;
    ph_worker(h, NULL);
    cJSON *t1 =
        add_flow(h, "{\"name\":\"tue\",\"queueName\":\"q\",\"opts\":{\"jobId\":\"tue\",\"removeOnComplete\":"
                    "true},\"children\":[{\"name\":\"mon\",\"queueName\":\"q\",\"opts\":{\"jobId\":\"mon\"}}]}");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', "tue") == 1));
    cJSON *t2 = add_flow(h, DAY("tue", "mon"));
    PH_RUN_FOR(h, 1000);
    cr_assert_str_eq(ph_state(h, "tue"), "completed");
    cJSON_Delete(t1), cJSON_Delete(t2);
    ph_end(h);
}

/* ---- attempts ------------------------------------------------------------------------ */

/* fails a job unless this is the last of its attempts (Node: attemptsMade + 1
 * == opts.attempts) */
static void only_on_last_attempt(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cJSON *o = cJSON_Parse(bullc_job_opts_json(job));
    int attempts = cJSON_GetObjectItem(o, "attempts")->valueint;
    cJSON_Delete(o);
    if (bullc_job_attempts_made(job) + 1 != attempts)
        ph_fail(h, job, "{}", 0);
    else
        ph_complete(h, job, "null");
}

#define TASK(name, status, children)                                                                                   \
    "{\"name\":\"" name "\",\"queueName\":\"q\",\"data\":{" status "},\"opts\":{\"attempts\":1,\"backoff\":{\"type\":" \
    "\"fixed\",\"delay\":1000}}" children "}"

/* node: "[when moving jobs from wait to active continuing] begins with attemptsMade as 1" */
Test(flow_again, every_node_starts_at_its_first_attempt) {
    ph *h = ph_new("q");
    h->proc = only_on_last_attempt;
    ph_worker(h, NULL);
    cJSON *t =
        add_flow(h, TASK("task3", "\"status\":\"plan\"",
                         ",\"children\":[" TASK(
                             "task2", "", ",\"children\":[" TASK("task3", "\"status\":\"proposal\"", "") "]") "]"));
    cr_assert_str_eq(ph_state(h, nid(t, "")), "waiting-children");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "children")), 1);
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the root did not complete");
    cr_assert_eq(h->n_failed, 0);
    cr_assert_eq(ph_count(h, "completed"), 3);
    cJSON_Delete(t);
    ph_end(h);
}

static int64_t times_500(int64_t attempts_made, const char *type, const char *error, const bullc_job *job, void *data) {
    (void)type, (void)error, (void)job, (void)data;
    return attempts_made * 500;
}

/* children fail their first attempt; parents complete */
static void not_yet(ph *h, bullc_job *job, int widx) {
    if (widx == 0 && bullc_job_attempts_made(job) < 1)
        ph_fail(h, job, "Not yet!", 0);
    else
        ph_complete(h, job, widx == 0 ? "{\"bar\":\"something\"}" : "{}");
}

/* node: "[when backoff strategy is provided] retries a job after a delay if a fixed backoff is given" */
Test(flow_again, a_child_retried_by_a_custom_backoff_releases_its_parent) {
    ph *h = ph_new("q");
    h->proc = not_yet;
    h->backoff = times_500;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\","
                           "\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"opts\":{\"attempts\":3,"
                           "\"backoff\":{\"type\":\"custom\"}}}]}");
    bullc_queue *parents = tu_queue("parents", h->prefix);
    cr_assert_str_eq(state_of(parents, nid(t, "")), "waiting-children");
    bullc_queue_free(parents);
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    cr_assert_eq(ph_wcount(h, 'f', nid(t, "0")), 1);
    cr_assert(ph_wget(h, 'f', 0)->will_retry);
    ph_wev *done = NULL;
    for (int i = 0; (done = ph_wget(h, 'c', i)); i++)
        if (!strcmp(done->id, nid(t, "0"))) break;
    cr_assert(done && done->t - ph_wget(h, 'f', 0)->t >= 450, "the retry waited for the backoff");
    cJSON_Delete(t);
    ph_end(h);
}
