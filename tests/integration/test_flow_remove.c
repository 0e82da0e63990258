/* SPDX-License-Identifier: MIT */
/* Node BullMQ's flow.test.ts cases that take jobs out of a tree: a child cut
 * loose from its parent (bullc_queue_remove_child_dependency), the children a
 * parent still waits for removed (bullc_queue_remove_unprocessed_children),
 * and a parent removed with or without its children (bullc_queue_remove_job).
 * Trees are added with bullc_flow_producer; the parents sit in a queue of
 * their own ("parents"), the children in the ph's queue "q". */
#include "test_flow_util.h"

TestSuite(flow_remove, .timeout = 90);

/* Node's "parent" of a child, {"id", "queueKey"}, as getJob gives it. */
static void assert_parent(ph *h, bullc_queue *q, const char *id, const char *parent_id) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job(q, id, &s, &err), 0, "%s", err.message);
    /* Node's toMatchObject: other fields (fpof, idof...) may follow */
    cJSON *j = cJSON_Parse(s), *p = cJSON_GetObjectItem(j, "parent");
    char qk[128];
    snprintf(qk, sizeof qk, "%s:parents", h->prefix);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "id")->valuestring, parent_id);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "queueKey")->valuestring, qk);
    cJSON_Delete(j);
    bullc_free(s);
}

#define ONE_CHILD "{\"name\":\"parent\",\"queueName\":\"q\",\"children\":[{\"name\":\"child0\",\"queueName\":\"q\"}]}"
#define TWO_CHILDREN                                                                                     \
    "{\"name\":\"parent\",\"queueName\":\"q\",\"children\":[{\"name\":\"child0\",\"queueName\":\"q\"},{" \
    "\"name\":\"child1\",\"queueName\":\"q\"}]}"

/* ---- removeChildDependency ------------------------------------------------------ */

/* node: "[when removeChildDependency is called > when last child call this method] moves parent to wait" */
Test(flow_remove, the_last_child_cut_loose_releases_the_parent) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, ONE_CHILD);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_child_dependency(h->q, nid(t, "0"), NULL, &err), 0, "%s", err.message);
    cr_assert_str_eq(ph_state(h, nid(t, "")), "waiting");
    h->proc = complete_all;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, ph_wcount(h, 'c', nid(t, "")) == 1));
    int64_t counts[4];
    cr_assert_eq(bullc_queue_get_dependencies_count(h->q, nid(t, ""), counts, &err), 0, "%s", err.message);
    for (int i = 0; i < 4; i++) cr_assert_eq(counts[i], 0, "kind %d: %lld", i, (long long)counts[i]);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when removeChildDependency is called > when child is retrieved from getJob] does not restore the parent reference" */
Test(flow_remove, a_child_cut_loose_has_no_parent_fields) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, ONE_CHILD);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_child_dependency(h->q, nid(t, "0"), NULL, &err), 0, "%s", err.message);
    cJSON *child = ph_job(h, nid(t, "0"));
    cr_assert_null(cJSON_GetObjectItem(child, "parent"));
    cr_assert_null(cJSON_GetObjectItem(child, "parentKey"));
    cJSON_Delete(child);
    /* nothing left to break: Node's false */
    cr_assert_eq(bullc_queue_remove_child_dependency(h->q, nid(t, "0"), NULL, &err), 1);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when removeChildDependency is called > when there are pending children when calling this method] keeps parent in waiting-children state" */
Test(flow_remove, a_parent_with_other_pending_children_keeps_waiting) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, TWO_CHILDREN);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_child_dependency(h->q, nid(t, "0"), NULL, &err), 0, "%s", err.message);
    cJSON *child = ph_job(h, nid(t, "0"));
    cr_assert_null(cJSON_GetObjectItem(child, "parent"));
    cJSON_Delete(child);
    cr_assert_str_eq(ph_state(h, nid(t, "")), "waiting-children");
    h->proc = complete_all;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, ph_wcount(h, 'c', nid(t, "")) == 1));
    int64_t counts[4];
    cr_assert_eq(bullc_queue_get_dependencies_count(h->q, nid(t, ""), counts, &err), 0, "%s", err.message);
    cr_assert_eq(counts[1], 0, "unprocessed");
    cr_assert_eq(counts[0], 1, "processed: child1 alone");
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when removeChildDependency is called > when parent does not exist] throws an error" */
Test(flow_remove, a_missing_parent_is_named_by_its_key) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, TWO_CHILDREN);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, nid(t, ""), false, &err), 0, "%s", err.message);
    char want[256];
    snprintf(want, sizeof want, "Missing key for parent job %s. removeChildDependency", job_key(h, "q", nid(t, "")));
    /* the stored parentKey, as Node's Job object holds it, and the key given */
    cr_assert_eq(bullc_queue_remove_child_dependency(h->q, nid(t, "0"), NULL, &err), BULLC_ENOTFOUND);
    cr_assert_str_eq(err.message, want);
    cr_assert_eq(bullc_queue_remove_child_dependency(h->q, nid(t, "1"), job_key(h, "q", nid(t, "")), &err),
                 BULLC_ENOTFOUND);
    cr_assert_str_eq(err.message, want);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when removeChildDependency is called > when child does not exist] throws an error" */
Test(flow_remove, a_missing_child_is_named_by_its_id) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, TWO_CHILDREN);
    bullc_error err = {0};
    const char *child = nid(t, "0");
    cr_assert_eq(bullc_queue_remove_job(h->q, child, true, &err), 0, "%s", err.message);
    char want[256];
    snprintf(want, sizeof want, "Missing key for job %s. removeChildDependency", child);
    cr_assert_eq(bullc_queue_remove_child_dependency(h->q, child, job_key(h, "q", nid(t, "")), &err), BULLC_ENOTFOUND);
    cr_assert_str_eq(err.message, want);
    cr_assert_eq(bullc_queue_remove_child_dependency(h->q, child, NULL, &err), BULLC_ENOTFOUND);
    cr_assert_str_eq(err.message, want);
    cJSON_Delete(t);
    ph_end(h);
}

/* ---- removeUnprocessedChildren ---------------------------------------------------- */

#define SIX_CHILDREN                                                                                          \
    "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":["                                       \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":0}},"                                      \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":1},\"opts\":{\"priority\":1}},"            \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":2},\"opts\":{\"delay\":1000}},"            \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":3}},"                                      \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":4}},"                                      \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":5},\"children\":[{\"name\":\"child-job\"," \
    "\"queueName\":\"q\",\"data\":{\"idx\":6}}]}]}"

static cJSON *tree6;
static int runs6;
static char done6[3][64];

/* completes the first job, fails the second, and on the third removes the
 * parent's unprocessed children while it is active */
static void first_second_third(ph *h, bullc_job *job, int widx) {
    (void)widx;
    snprintf(done6[runs6], sizeof done6[0], "%s", bullc_job_id(job));
    switch (runs6++) {
    case 0:
        ph_complete(h, job, "{\"idx\":0,\"bar\":\"something\"}");
        break;
    case 1:
        ph_fail(h, job, "failed job", 0);
        break;
    case 2: {
        bullc_queue *parents = tu_queue("parents", h->prefix);
        bullc_error err = {0};
        cr_assert_eq(bullc_queue_remove_unprocessed_children(parents, nid(tree6, ""), &err), 0, "%s", err.message);
        bullc_queue_free(parents);
        ph_complete(h, job, "{}");
        break;
    }
    default:
        ph_complete(h, job, "{}");
    }
}

/* node: "[.removeUnprocessedChildren] should remove unprocessed children" */
Test(flow_remove, unprocessed_children_are_removed_and_processed_ones_stay) {
    ph *h = ph_new("q");
    tree6 = add_flow(h, SIX_CHILDREN);
    runs6 = 0;
    h->proc = first_second_third;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 15000, runs6 >= 3 && h->n_completed == 2));
    PH_RUN_FOR(h, 200);
    cr_assert_eq(runs6, 3, "nothing else was left to run");
    for (int i = 0; i < 6; i++) {
        char path[4];
        snprintf(path, sizeof path, "%d", i);
        const char *id = nid(tree6, path);
        bool processed = !strcmp(id, done6[0]) || !strcmp(id, done6[1]) || !strcmp(id, done6[2]);
        if (processed)
            assert_parent(h, h->q, id, nid(tree6, ""));
        else
            cr_assert(gone(h->q, id), "child %d (%s) was not processed and must be gone", i, id);
    }
    cJSON_Delete(tree6);
    ph_end(h);
}

/* node: "[.removeUnprocessedChildren] should not remove completed children" */
Test(flow_remove, completed_children_are_not_removed) {
    ph *h = ph_new("q");
    cJSON *t =
        add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":["
                    "{\"name\":\"c\",\"queueName\":\"q\"},{\"name\":\"c\",\"queueName\":\"q\"},"
                    "{\"name\":\"c\",\"queueName\":\"q\"},{\"name\":\"c\",\"queueName\":\"q\"},"
                    "{\"name\":\"c\",\"queueName\":\"q\",\"children\":[{\"name\":\"c\",\"queueName\":\"q\"}]}]}");
    h->proc = complete_all;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1));
    cr_assert_eq(ph_count(h, "completed"), 6);
    bullc_queue *parents = tu_queue("parents", h->prefix);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_unprocessed_children(parents, nid(t, ""), &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "completed"), 6);
    cr_assert_eq(bullc_queue_remove_unprocessed_children(parents, "nope", &err), BULLC_ENOTFOUND);
    bullc_queue_free(parents);
    cJSON_Delete(t);
    ph_end(h);
}

/* ---- removing a parent ------------------------------------------------------------ */

#define NESTED(opts)                                                                                          \
    "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\",\"queueName\":" \
    "\"q\"},{\"name\":\"child-job\",\"queueName\":\"q\"" opts ",\"children\":[{\"name\":\"child-job\","       \
    "\"queueName\":\"q\"" opts "}]}]}"

/* The states Node checks before removing a NESTED tree. */
static void assert_nested_states(ph *h, bullc_queue *parents, const cJSON *t) {
    cr_assert_str_eq(state_of(parents, nid(t, "")), "waiting-children");
    cr_assert_str_eq(ph_state(h, nid(t, "0")), "waiting");
    cr_assert_str_eq(ph_state(h, nid(t, "1")), "waiting-children");
    cr_assert_str_eq(ph_state(h, nid(t, "1.0")), "waiting");
    assert_parent(h, h->q, nid(t, "0"), nid(t, ""));
    assert_parent(h, h->q, nid(t, "1"), nid(t, ""));
}

static void assert_nested_gone(ph *h, bullc_queue *parents, const cJSON *t) {
    cr_assert(gone(parents, nid(t, "")));
    for (const char *const *p = (const char *const[]){"0", "1", "1.0", NULL}; *p; p++) {
        cr_assert(gone(h->q, nid(t, *p)), "node %s", *p);
        cr_assert_str_eq(ph_state(h, nid(t, *p)), "unknown");
    }
    cr_assert_str_eq(state_of(parents, nid(t, "")), "unknown");
}

/* node: "[.remove > when there are processed children] removes all children when removing a parent" */
Test(flow_remove, a_completed_parent_goes_with_its_processed_children) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, NESTED(""));
    bullc_queue *parents = tu_queue("parents", h->prefix);
    assert_nested_states(h, parents, t);
    h->proc = complete_all;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(parents, nid(t, ""), true, &err), 0, "%s", err.message);
    assert_nested_gone(h, parents, t);
    cr_assert_eq(ph_count(h, "completed"), 0);
    bullc_queue_free(parents);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[.remove > when there are processed children > when there is a grand parent] removes all children when removing a parent, but not grandparent" */
Test(flow_remove, removing_a_middle_parent_keeps_the_grandparent) {
    ph *h = ph_new("q");
    cJSON *t =
        add_flow(h, "{\"name\":\"grandparent-job\",\"queueName\":\"grandparents\",\"children\":[" NESTED("") "]}");
    bullc_queue *parents = tu_queue("parents", h->prefix), *grand = tu_queue("grandparents", h->prefix);
    cr_assert_str_eq(state_of(grand, nid(t, "")), "waiting-children");
    cr_assert_str_eq(state_of(parents, nid(t, "0")), "waiting-children");
    cr_assert_str_eq(ph_state(h, nid(t, "0.0")), "waiting");
    cr_assert_str_eq(ph_state(h, nid(t, "0.1")), "waiting-children");
    cr_assert_str_eq(ph_state(h, nid(t, "0.1.0")), "waiting");
    assert_parent(h, h->q, nid(t, "0.0"), nid(t, "0"));
    assert_parent(h, h->q, nid(t, "0.1"), nid(t, "0"));
    h->proc = complete_all;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "0")) == 1));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(parents, nid(t, "0"), true, &err), 0, "%s", err.message);
    cr_assert(gone(parents, nid(t, "0")));
    cr_assert(gone(h->q, nid(t, "0.0")) && gone(h->q, nid(t, "0.1")));
    cr_assert_eq(ph_count(h, "completed"), 0);
    cr_assert_str_eq(ph_state(h, nid(t, "0.0")), "unknown");
    cr_assert_str_eq(ph_state(h, nid(t, "0.1")), "unknown");
    cr_assert_str_eq(state_of(parents, nid(t, "0")), "unknown");
    cr_assert_str_eq(state_of(grand, nid(t, "")), "waiting", "its only child was processed before");
    bullc_queue_free(grand);
    bullc_queue_free(parents);
    cJSON_Delete(t);
    ph_end(h);
}

/* children (worker 0) fail, parents (worker 1) complete */
static void children_fail(ph *h, bullc_job *job, int widx) {
    if (widx == 0)
        ph_fail(h, job, "failure", 0);
    else
        ph_complete(h, job, "{}");
}

/* node: "[.remove > when there are unsuccessful children] removes all children when removing a parent" */
Test(flow_remove, a_failed_parent_goes_with_its_failed_children) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, NESTED(",\"opts\":{\"failParentOnFailure\":true}"));
    bullc_queue *parents = tu_queue("parents", h->prefix);
    assert_nested_states(h, parents, t);
    h->proc = children_fail;
    ph_worker(h, NULL);
    /* BullMQ 6 fails a parent from its worker, as the failed child asked */
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, !strcmp(state_of(parents, nid(t, "")), "failed")));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(parents, nid(t, ""), true, &err), 0, "%s", err.message);
    assert_nested_gone(h, parents, t);
    cr_assert_eq(ph_count(h, "failed"), 0);
    bullc_queue_free(parents);
    cJSON_Delete(t);
    ph_end(h);
}

static bullc_job *held;
/* holds the first job (active, locked) and completes the others */
static void hold(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (held)
        ph_complete(h, job, "{}");
    else
        held = job;
}

/* node: "[.remove] should not remove anything if there is a locked job in the tree" */
Test(flow_remove, a_locked_child_keeps_the_whole_tree) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":["
                           "{\"name\":\"c\",\"queueName\":\"q\"},{\"name\":\"c\",\"queueName\":\"q\"}]}");
    held = NULL;
    h->proc = hold;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 1);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 10000, held != NULL));
    bullc_queue *parents = tu_queue("parents", h->prefix);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(parents, nid(t, ""), true, &err), BULLC_ELOCK);
    char want[160];
    snprintf(want, sizeof want, "Job %s could not be removed because it is locked by another worker", nid(t, ""));
    cr_assert_str_eq(err.message, want);
    cr_assert_str_eq(state_of(parents, nid(t, "")), "waiting-children");
    const char *active = bullc_job_id(held), *other = strcmp(active, nid(t, "0")) ? nid(t, "0") : nid(t, "1");
    cr_assert_str_eq(ph_state(h, active), "active");
    cr_assert_str_eq(ph_state(h, other), "waiting");
    ph_complete(h, held, "{}");
    bullc_queue_free(parents);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[.remove] should remove from parent dependencies and move parent to wait" */
Test(flow_remove, removing_the_only_child_releases_each_parent_up_the_chain) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, "{\"name\":\"root-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"c\","
                           "\"queueName\":\"q\",\"children\":[{\"name\":\"c\",\"queueName\":\"q\",\"children\":[{"
                           "\"name\":\"c\",\"queueName\":\"q\"}]}]}]}");
    bullc_queue *parents = tu_queue("parents", h->prefix);
    bullc_error err = {0};
    /* from the deepest child up: each parent moves to wait once its child is gone */
    const char *chain[][2] = {{"0.0", "0.0.0"}, {"0", "0.0"}, {"", "0"}};
    for (int i = 0; i < 3; i++) {
        bullc_queue *pq = i == 2 ? parents : h->q;
        cr_assert_str_eq(state_of(pq, nid(t, chain[i][0])), "waiting-children", "step %d", i);
        cr_assert_eq(bullc_queue_remove_job(h->q, nid(t, chain[i][1]), true, &err), 0, "%s", err.message);
        cr_assert_str_eq(state_of(pq, nid(t, chain[i][0])), "waiting", "step %d", i);
    }
    bullc_queue_free(parents);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[.remove] should only move parent to wait when all children have been removed" */
Test(flow_remove, the_parent_waits_until_every_child_is_removed) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":["
                           "{\"name\":\"c\",\"queueName\":\"q\"},{\"name\":\"c\",\"queueName\":\"q\"}]}");
    bullc_queue *parents = tu_queue("parents", h->prefix);
    bullc_error err = {0};
    cr_assert_str_eq(state_of(parents, nid(t, "")), "waiting-children");
    cr_assert_str_eq(ph_state(h, nid(t, "0")), "waiting");
    cr_assert_eq(bullc_queue_remove_job(h->q, nid(t, "0"), true, &err), 0, "%s", err.message);
    cr_assert_str_eq(ph_state(h, nid(t, "0")), "unknown");
    cr_assert_str_eq(state_of(parents, nid(t, "")), "waiting-children");
    cr_assert_eq(bullc_queue_remove_job(h->q, nid(t, "1"), true, &err), 0, "%s", err.message);
    cr_assert_str_eq(ph_state(h, nid(t, "1")), "unknown");
    cr_assert_str_eq(state_of(parents, nid(t, "")), "waiting");
    bullc_queue_free(parents);
    cJSON_Delete(t);
    ph_end(h);
}
