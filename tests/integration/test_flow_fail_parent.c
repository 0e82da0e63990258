/* SPDX-License-Identifier: MIT */
/* Node BullMQ's flow.test.ts cases of failParentOnFailure on three levels: a
 * grandchild that fails fails its parent, whose own on-failure option
 * decides what happens to the grandparent (failed too, removed on failure,
 * released with the dependency removed or ignored). Workers: 0 on the
 * grandchildren's queue "grand", 1 on the children's "q", 2 on "parents"
 * when the case has one; the ph's queue is the one whose events the case
 * watches. */
#include "test_flow_util.h"

TestSuite(flow_fail_parent, .timeout = 90);

static int grand_runs;

/* grandchildren: the second one run completes, the others fail ("bar" ones
 * only when `only_bar`) 200 ms later; children and parents complete */
static bool only_bar;
static void process(ph *h, bullc_job *job, int widx) {
    if (widx != 0) {
        ph_complete(h, job, "{}");
        return;
    }
    if (++grand_runs == 2 || (only_bar && !strstr(bullc_job_data(job), "\"bar\""))) {
        ph_complete(h, job, "{}");
        return;
    }
    uv_update_time(&h->loop);
    ph_fail_in(h, job, 200, "failed", 0);
}

#define TREE(child0, child1)                                                                                    \
    "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[" child0                                  \
    "{\"name\":\"child-job\",\"queueName\":"                                                                    \
    "\"q\",\"data\":{\"foo\":\"qux\"},\"opts\":" child1 ",\"children\":[{\"name\":\"child-job\",\"queueName\":" \
    "\"grand\",\"data\":{\"foo\":\"bar\"},\"opts\":{\"failParentOnFailure\":true}},{\"name\":\"child-job\","    \
    "\"queueName\":\"grand\",\"data\":{\"foo\":\"baz\"}}]}]}"
#define PLAIN_CHILD "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"foo\":\"bar\"}},"

/* The case's tree, its workers and listener; the ph watches `watch`. */
static ph *start(const char *watch, const char *flow, bool parent_worker, bool bar_only, cJSON **tree) {
    ph *h = ph_new(watch);
    grand_runs = 0;
    only_bar = bar_only;
    h->proc = process;
    ph_qe(h);
    worker_on(h, "grand");
    worker_on(h, "q");
    if (parent_worker) worker_on(h, "parents");
    *tree = add_flow(h, flow);
    return h;
}

/* "child <prefix>:<queue>:<id> failed", Node's failedReason of a parent. */
static const char *child_failed(ph *h, const char *queue, const char *id) {
    static char r[256];
    snprintf(r, sizeof r, "child %s failed", job_key(h, queue, id));
    return r;
}

/* Waits for the failed event of `id` on the watched queue and checks it. */
static void assert_failed_event(ph *h, const char *id, const char *reason) {
    cr_assert(PH_WAIT(h, 15000, ph_qe_count(h, "failed", id) == 1), "no failed event for %s", id);
    cJSON *e = NULL;
    for (int i = 0; (e = ph_qe_get(h, "failed", i)); i++)
        if (!strcmp(ph_qe_field(e, "jobId"), id)) break;
    cr_assert_str_eq(ph_qe_field(e, "prev"), "active");
    cr_assert_str_eq(ph_qe_field(e, "failedReason"), reason);
}

/* Job `id` of `queue` is in `state` with `reason` as its failedReason. */
static void assert_job(ph *h, const char *queue, const char *id, const char *state, const char *reason) {
    bullc_queue *q = tu_queue(queue, h->prefix);
    cr_assert_str_eq(state_of(q, id), state, "%s:%s", queue, id);
    if (reason) {
        cJSON *j = ph_job_in(q, id);
        cr_assert_str_eq(cJSON_GetObjectItem(j, "failedReason")->valuestring, reason);
        cJSON_Delete(j);
    }
    bullc_queue_free(q);
}

/* node: "[when failParentOnFailure option is provided > when parent is in waiting-children state] should move parent to failed when child is moved to failed" */
Test(flow_fail_parent, a_failed_grandchild_fails_its_parent_and_grandparent) {
    cJSON *t;
    ph *h = start("parents", TREE(PLAIN_CHILD, "{\"failParentOnFailure\":true}"), true, false, &t);
    cr_assert_str_eq(ph_state(h, nid(t, "")), "waiting-children");
    assert_failed_event(h, nid(t, ""), child_failed(h, "q", nid(t, "1")));
    int64_t counts[4];
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies_count(h->q, nid(t, ""), counts, &err), 0, "%s", err.message);
    cr_assert_eq(counts[2], 1, "failed");
    bullc_flow_producer *fp = producer(h);
    char *s = NULL;
    cr_assert_eq(bullc_flow_producer_get_flow(fp, "parents", nid(t, ""), NULL, 0, 0, &s, &err), 0, "%s", err.message);
    cJSON *tree = cJSON_Parse(s);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(tree, "children")), 2, "%s", s);
    cJSON_Delete(tree), bullc_free(s);
    bullc_flow_producer_free(fp);
    assert_job(h, "grand", nid(t, "1.0"), "failed", "failed");
    assert_job(h, "q", nid(t, "1"), "failed", child_failed(h, "grand", nid(t, "1.0")));
    assert_job(h, "parents", nid(t, ""), "failed", child_failed(h, "q", nid(t, "1")));
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when failParentOnFailure option is provided > when removeOnFail option is provided] should remove parent when child is moved to failed" */
Test(flow_fail_parent, a_parent_removed_on_failure_still_fails_the_grandparent) {
    cJSON *t;
    ph *h =
        start("parents", TREE(PLAIN_CHILD, "{\"failParentOnFailure\":true,\"removeOnFail\":true}"), true, false, &t);
    cr_assert_str_eq(ph_state(h, nid(t, "")), "waiting-children");
    assert_failed_event(h, nid(t, ""), child_failed(h, "q", nid(t, "1")));
    int64_t counts[4];
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies_count(h->q, nid(t, ""), counts, &err), 0, "%s", err.message);
    cr_assert_eq(counts[2], 1, "failed");
    assert_job(h, "grand", nid(t, "1.0"), "failed", "failed");
    bullc_queue *q = tu_queue("q", h->prefix);
    cr_assert(gone(q, nid(t, "1")), "removed on failure");
    bullc_queue_free(q);
    assert_job(h, "parents", nid(t, ""), "failed", child_failed(h, "q", nid(t, "1")));
    cJSON_Delete(t);
    ph_end(h);
}

/* The child's failure as the watched queue q saw it: one failed event, the
 * child's, and the states Node checks. */
static void assert_child_failed_root_waiting(ph *h, const cJSON *t) {
    assert_failed_event(h, nid(t, "0"), child_failed(h, "grand", nid(t, "0.0")));
    PH_RUN_FOR(h, 200);
    cr_assert_eq(ph_qe_count(h, "failed", NULL), 1, "no other job of q failed");
    assert_job(h, "grand", nid(t, "0.0"), "failed", "failed");
    assert_job(h, "q", nid(t, "0"), "failed", child_failed(h, "grand", nid(t, "0.0")));
    assert_job(h, "parents", nid(t, ""), "waiting", NULL);
}

/* node: "[when failParentOnFailure option is provided > when removeDependencyOnFailure is provided] moves parent to wait after children fail" */
Test(flow_fail_parent, a_failed_parent_with_remove_dependency_releases_the_grandparent) {
    cJSON *t;
    ph *h = start("q", TREE("", "{\"removeDependencyOnFailure\":true}"), false, true, &t);
    assert_job(h, "parents", nid(t, ""), "waiting-children", NULL);
    assert_child_failed_root_waiting(h, t);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when failParentOnFailure option is provided > when ignoreDependencyOnFailure is provided] moves parent to wait after children fail" */
Test(flow_fail_parent, a_failed_parent_with_ignore_dependency_releases_the_grandparent) {
    cJSON *t;
    ph *h = start("q", TREE("", "{\"ignoreDependencyOnFailure\":true}"), false, true, &t);
    assert_child_failed_root_waiting(h, t);
    bullc_queue *parents = tu_queue("parents", h->prefix);
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies(parents, nid(t, ""), NULL, &s, &err), 0, "%s", err.message);
    cJSON *d = cJSON_Parse(s);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "ignored")), 1, "%s", s);
    cJSON_Delete(d), bullc_free(s);
    cr_assert_eq(bullc_queue_get_ignored_children_failures(parents, nid(t, ""), &s, &err), 0, "%s", err.message);
    cJSON *got = cJSON_Parse(s), *want = cJSON_CreateObject();
    char key[256];
    snprintf(key, sizeof key, "%s", job_key(h, "q", nid(t, "0"))); /* job_key's buffer is reused */
    cJSON_AddStringToObject(want, key, child_failed(h, "grand", nid(t, "0.0")));
    cr_assert(cJSON_Compare(got, want, true), "%s", s);
    cJSON_Delete(got), cJSON_Delete(want), bullc_free(s);
    bullc_queue_free(parents);
    cJSON_Delete(t);
    ph_end(h);
}
