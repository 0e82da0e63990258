/* SPDX-License-Identifier: MIT */
/* Node BullMQ's flow.test.ts cases about what a child's end does to its
 * parent: results kept when children are removed on completion, and the
 * on-failure options (removeOnFail, ignoreDependencyOnFailure,
 * removeDependencyOnFailure, failParentOnFailure, continueParentOnFailure).
 * Trees are added with bullc_flow_producer and processed by bullc workers:
 * worker 0 on the children's queue "q", worker 1 on "parents". */
#include "test_flow_util.h"

TestSuite(flow_failure, .timeout = 90);

/* What the parents' processor saw, read while it ran. */
static struct {
    bullc_queue *parents;
    const char *deps_opts; /* bullc_queue_get_dependencies' options, NULL: no read */
    char deps[4096];
    char ignored[4096];
    int64_t counts[4];
    int runs;
} seen;

static void seen_reset(ph *h, const char *deps_opts) {
    memset(&seen, 0, sizeof seen);
    seen.parents = tu_queue("parents", h->prefix);
    seen.deps_opts = deps_opts;
}

static void seen_end(void) { bullc_queue_free(seen.parents); }

/* Children (worker 0) fail with "failed" unless named "ok"; a parent (worker
 * 1) records its dependencies, counts and ignored failures, then completes. */
static void children_fail_parent_reads(ph *h, bullc_job *job, int widx) {
    if (widx == 0) {
        if (!strcmp(bullc_job_name(job), "ok"))
            ph_complete(h, job, "{}");
        else
            ph_fail(h, job, "failed", 0);
        return;
    }
    bullc_error err = {0};
    char *s = NULL;
    if (seen.deps_opts) {
        cr_assert_eq(bullc_queue_get_dependencies(seen.parents, bullc_job_id(job), seen.deps_opts, &s, &err), 0, "%s",
                     err.message);
        snprintf(seen.deps, sizeof seen.deps, "%s", s);
        bullc_free(s);
    }
    cr_assert_eq(bullc_queue_get_ignored_children_failures(seen.parents, bullc_job_id(job), &s, &err), 0, "%s",
                 err.message);
    snprintf(seen.ignored, sizeof seen.ignored, "%s", s);
    bullc_free(s);
    cr_assert_eq(bullc_queue_get_dependencies_count(seen.parents, bullc_job_id(job), seen.counts, &err), 0, "%s",
                 err.message);
    seen.runs++;
    ph_complete(h, job, "{}");
}

/* The ignored failure recorded for child `id` of queue q ("" when none). */
static const char *ignored_reason(ph *h, const char *id) {
    static char reason[256];
    cJSON *o = cJSON_Parse(seen.ignored);
    const cJSON *v = cJSON_GetObjectItem(o, job_key(h, "q", id));
    snprintf(reason, sizeof reason, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(o);
    return reason;
}

/* ---- children removed when they end ------------------------------------------- */

static void child0_fails(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_name(job), "child0"))
        ph_fail(h, job, "fail", 0);
    else
        ph_complete(h, job, "null");
}

/* node: "[when removeOnFail is true in last pending child] moves parent to wait without getting stuck" */
Test(flow_failure, a_last_child_removed_on_failure_releases_the_parent) {
    ph *h = ph_new("q");
    h->proc = child0_fails;
    ph_worker(h, NULL);
    cJSON *t = add_flow(h, "{\"name\":\"parent\",\"queueName\":\"q\",\"children\":[{\"name\":\"child0\",\"queueName\":"
                           "\"q\",\"opts\":{\"removeOnFail\":true}},{\"name\":\"child1\",\"queueName\":\"q\"}]}");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    int64_t counts[4];
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies_count(h->q, nid(t, ""), counts, &err), 0, "%s", err.message);
    cr_assert_eq(counts[0], 1, "processed");
    cr_assert(gone(h->q, nid(t, "0")), "removed on failure");
    cJSON_Delete(t);
    ph_end(h);
}

static void return_name(ph *h, bullc_job *job, int widx) {
    (void)widx;
    char result[96];
    snprintf(result, sizeof result, "\"%s\"", bullc_job_name(job));
    ph_complete(h, job, result);
}

/* The parent's processed values are the children's names. */
static void assert_named_results(ph *h, const cJSON *t) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies(h->q, nid(t, ""), NULL, &s, &err), 0, "%s", err.message);
    cJSON *o = cJSON_Parse(s), *processed = cJSON_GetObjectItem(o, "processed");
    cr_assert_eq(cJSON_GetArraySize(processed), 2, "%s", s);
    for (int i = 0; i < 2; i++) {
        char path[2] = {(char)('0' + i), 0}, name[16];
        snprintf(name, sizeof name, "child%d", i);
        const cJSON *v = cJSON_GetObjectItem(processed, job_key(h, "q", nid(t, path)));
        cr_assert(cJSON_IsString(v) && !strcmp(v->valuestring, name), "%s", s);
    }
    cJSON_Delete(o);
    bullc_free(s);
}

/* node: "[when removeOnComplete is true in children] keeps children results in parent" */
Test(flow_failure, children_removed_on_completion_leave_their_results) {
    ph *h = ph_new("q");
    h->proc = return_name;
    ph_worker(h, NULL);
    cJSON *t = add_flow(h, "{\"name\":\"parent\",\"queueName\":\"q\",\"children\":["
                           "{\"name\":\"child0\",\"queueName\":\"q\",\"opts\":{\"removeOnComplete\":true}},"
                           "{\"name\":\"child1\",\"queueName\":\"q\",\"opts\":{\"removeOnComplete\":true}}]}");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    assert_named_results(h, t);
    cr_assert(gone(h->q, nid(t, "0")) && gone(h->q, nid(t, "1")));
    cJSON_Delete(t);
    ph_end(h);
}

static void return_name_in_1s(ph *h, bullc_job *job, int widx) {
    (void)widx;
    char result[96];
    snprintf(result, sizeof result, "\"%s\"", bullc_job_name(job));
    /* Node's delay(1000); a libuv timer counts from the loop's cached time,
     * which may lag: 1000 ms could end before a second has passed since the
     * last child completed, and that child would not be old enough */
    uv_update_time(&h->loop);
    ph_complete_in(h, job, 1000, result);
}

/* node: "[when removeOnComplete contains age in children and time is reached] keeps children results in parent" */
Test(flow_failure, children_removed_by_age_leave_their_results) {
    ph *h = ph_new("q");
    h->proc = return_name_in_1s;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_keep_on_complete(o, -1, 1, 0);
    ph_worker(h, o);
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    char *tree = NULL;
    cr_assert_eq(bullc_flow_producer_add(fp,
                                         "{\"name\":\"parent\",\"queueName\":\"q\",\"opts\":{\"removeOnComplete\":{"
                                         "\"age\":1}},\"children\":[{\"name\":\"child0\",\"queueName\":\"q\",\"opts\":{"
                                         "\"removeOnComplete\":{\"age\":1}}},{\"name\":\"child1\",\"queueName\":\"q\","
                                         "\"opts\":{\"removeOnComplete\":{\"age\":1}}}]}",
                                         "{\"queuesOptions\":{\"q\":{\"defaultJobOptions\":{\"removeOnComplete\":{"
                                         "\"age\":1}}}}}",
                                         &tree, &err),
                 0, "%s", err.message);
    cJSON *t = cJSON_Parse(tree);
    bullc_free(tree);
    bullc_flow_producer_free(fp);
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    assert_named_results(h, t);
    cr_assert_eq(ph_count(h, "completed"), 1, "the children older than 1 s went when the parent completed");
    cJSON_Delete(t);
    ph_end(h);
}

/* ---- ignoreDependencyOnFailure, removeDependencyOnFailure ---------------------------- */

#define THREE_FAILING(opt)                                                                                           \
    "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":["                                              \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"opts\":{\"" opt "\":true}}," \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":1,\"foo\":\"baz\"},\"opts\":{\"" opt "\":true}}," \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":2,\"foo\":\"qux\"},\"opts\":{\"" opt "\":true}}]}"

/* node: "[flows > when ignoreDependencyOnFailure is provided] moves parent to wait after children fail" */
Test(flow_failure, ignored_failures_release_the_parent) {
    ph *h = ph_new("q");
    seen_reset(h, "{\"processed\":{},\"ignored\":{}}");
    h->proc = children_fail_parent_reads;
    cJSON *t = add_flow(h, THREE_FAILING("ignoreDependencyOnFailure"));
    cr_assert_str_eq(state_of(seen.parents, nid(t, "")), "waiting-children");
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    /* in the processor: no processed child, the three ignored, both pages done */
    cJSON *d = cJSON_Parse(seen.deps);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "processed")), 0, "%s", seen.deps);
    cr_assert_eq(cJSON_GetObjectItem(d, "nextProcessedCursor")->valuedouble, 0);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "ignored")), 3, "%s", seen.deps);
    cr_assert_eq(cJSON_GetObjectItem(d, "nextIgnoredCursor")->valuedouble, 0);
    cJSON_Delete(d);
    cJSON *parent = ph_job_in(seen.parents, nid(t, ""));
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(parent, "finishedOn")));
    cJSON_Delete(parent);
    cr_assert_eq(count_in(seen.parents, "completed"), 1);
    int64_t counts[4];
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies_count(seen.parents, nid(t, ""), counts, &err), 0, "%s", err.message);
    cr_assert_eq(counts[3], 3, "ignored");
    char *s = NULL;
    cr_assert_eq(bullc_queue_get_ignored_children_failures(seen.parents, nid(t, ""), &s, &err), 0, "%s", err.message);
    cJSON *got = cJSON_Parse(s), *exp = cJSON_CreateObject();
    for (const char *const *p = (const char *const[]){"0", "1", "2", NULL}; *p; p++)
        cJSON_AddStringToObject(exp, job_key(h, "q", nid(t, *p)), "failed");
    cr_assert(cJSON_Compare(got, exp, true), "%s", s);
    cJSON_Delete(got), cJSON_Delete(exp), bullc_free(s);
    bullc_flow_producer *fp = producer(h);
    cr_assert_eq(bullc_flow_producer_get_flow(fp, "parents", nid(t, ""), NULL, 0, 0, &s, &err), 0, "%s", err.message);
    cJSON *tree = cJSON_Parse(s);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(tree, "children")), 3);
    cJSON_Delete(tree), bullc_free(s);
    bullc_flow_producer_free(fp);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[flows > when removeDependencyOnFailure is provided] moves parent to wait after children fail" */
Test(flow_failure, removed_dependencies_release_the_parent) {
    ph *h = ph_new("q");
    seen_reset(h, "{\"processed\":{}}");
    h->proc = children_fail_parent_reads;
    cJSON *t = add_flow(h, THREE_FAILING("removeDependencyOnFailure"));
    cr_assert_str_eq(state_of(seen.parents, nid(t, "")), "waiting-children");
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    cr_assert_str_eq(seen.deps, "{\"processed\":{},\"nextProcessedCursor\":0}");
    cJSON *parent = ph_job_in(seen.parents, nid(t, ""));
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(parent, "finishedOn")));
    cJSON_Delete(parent);
    cr_assert_eq(count_in(seen.parents, "completed"), 1);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* ---- continueParentOnFailure ----------------------------------------------------- */

/* node: "should start processing parent after a child fails" */
Test(flow_failure, a_failed_child_with_continue_starts_the_parent) {
    ph *h = ph_new("q");
    seen_reset(h, NULL);
    h->proc = children_fail_parent_reads;
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\","
                           "\"queueName\":\"q\",\"opts\":{\"continueParentOnFailure\":true}}]}");
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, seen.runs == 1), "the parent did not run");
    cr_assert_str_eq(ignored_reason(h, nid(t, "0")), "failed");
    cr_assert(seen.counts[0] == 0 && seen.counts[1] == 0 && seen.counts[2] == 0 && seen.counts[3] == 1,
              "{processed %lld, unprocessed %lld, failed %lld, ignored %lld}", (long long)seen.counts[0],
              (long long)seen.counts[1], (long long)seen.counts[2], (long long)seen.counts[3]);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "should start processing parent after child fails even with more unprocessed children" */
Test(flow_failure, a_failed_child_with_continue_starts_the_parent_before_the_others) {
    ph *h = ph_new("q");
    seen_reset(h, NULL);
    h->proc = children_fail_parent_reads;
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":["
                           "{\"name\":\"ok\",\"queueName\":\"q\"},{\"name\":\"ok\",\"queueName\":\"q\"},"
                           "{\"name\":\"fail\",\"queueName\":\"q\",\"opts\":{\"continueParentOnFailure\":true}},"
                           "{\"name\":\"ok\",\"queueName\":\"q\"},{\"name\":\"ok\",\"queueName\":\"q\"}]}");
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, seen.runs == 1), "the parent did not run");
    cr_assert_str_eq(ignored_reason(h, nid(t, "2")), "failed");
    /* the children worker goes on with the other four (the parent, started
     * early, may not complete while they are pending: Node's case does not
     * look at it) */
    for (const char *const *p = (const char *const[]){"0", "1", "3", "4", NULL}; *p; p++)
        cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, *p)) == 1), "child %s did not run", *p);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "should ignore parent if a child has already failed and another one fails afterwards" */
Test(flow_failure, a_second_failed_child_with_continue_does_not_start_the_parent_again) {
    ph *h = ph_new("q");
    seen_reset(h, NULL);
    h->proc = children_fail_parent_reads;
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":["
                           "{\"name\":\"ok\",\"queueName\":\"q\"},"
                           "{\"name\":\"fail\",\"queueName\":\"q\",\"opts\":{\"continueParentOnFailure\":true}},"
                           "{\"name\":\"fail\",\"queueName\":\"q\",\"opts\":{\"continueParentOnFailure\":true}},"
                           "{\"name\":\"ok\",\"queueName\":\"q\"},{\"name\":\"ok\",\"queueName\":\"q\"}]}");
    /* the children one at a time, in the order they were added: the first
     * failure starts the parent */
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 15000, h->n_completed + h->n_failed == 5), "the children did not all run");
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, seen.runs == 1), "the parent did not run");
    PH_RUN_FOR(h, 300);
    cr_assert_eq(seen.runs, 1, "the parent runs once");
    cr_assert_str_eq(ignored_reason(h, nid(t, "1")), "failed");
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* A parent with `opts` whose one child fails with continueParentOnFailure:
 * it moves to `state` (delayed or prioritized, not waiting), then runs. */
static void continue_to(const char *opts, const char *state) {
    ph *h = ph_new("q");
    seen_reset(h, NULL);
    h->proc = children_fail_parent_reads;
    char flow[512];
    snprintf(flow, sizeof flow,
             "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"opts\":%s,\"children\":[{\"name\":\"child-job\","
             "\"queueName\":\"q\",\"opts\":{\"continueParentOnFailure\":true}}]}",
             opts);
    cJSON *t = add_flow(h, flow);
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 15000, h->n_failed == 1));
    cr_assert_eq(count_in(seen.parents, state), 1, "%s", state);
    for (const char *const *p = (const char *const[]){"delayed", "prioritized", "waiting", NULL}; *p; p++)
        if (strcmp(*p, state)) cr_assert_eq(count_in(seen.parents, *p), 0, "%s", *p);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, seen.runs == 1), "the parent did not run");
    cr_assert_str_eq(ignored_reason(h, nid(t, "0")), "failed");
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "should move the parent to delayed after a child fails" */
Test(flow_failure, a_delayed_parent_continues_to_delayed) { continue_to("{\"delay\":1000}", "delayed"); }

/* node: "should move the parent to prioritized after a child fails" */
Test(flow_failure, a_prioritized_parent_continues_to_prioritized) { continue_to("{\"priority\":42}", "prioritized"); }
