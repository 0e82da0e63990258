/* SPDX-License-Identifier: MIT */
/* Node BullMQ's flow.test.ts cases about a tree's shape and timing: getFlow
 * with depth, maxChildren and the producer's prefix, a parent removed on
 * completion, delayed parents and children, a failed child, a paused parent
 * queue, and addBulk with a root that has a parent. Children run on worker 0
 * (queue "q"), parents on worker 1 ("parents"). */
#include <time.h>

#include "test_flow_util.h"

TestSuite(flow_tree, .timeout = 90);

static const char *const values[] = {"{\"bar\":\"something\"}", "{\"baz\":\"something\"}", "{\"qux\":\"something\"}"};

/* What the parents' processor saw. */
static struct {
    bullc_queue *parents;
    char deps[2048];
    char children_values[2048];
    int runs, child_runs;
    int child_delay_ms;
    bool child_fails;
} seen;

static void seen_reset(ph *h) {
    memset(&seen, 0, sizeof seen);
    seen.parents = tu_queue("parents", h->prefix);
}

/* A child returns values[data.idx] (after child_delay_ms) or fails; a parent
 * records its processed page and children values, then completes. */
static void process(ph *h, bullc_job *job, int widx) {
    if (widx == 0) {
        seen.child_runs++;
        if (seen.child_fails) {
            ph_fail(h, job, "failed job", 0);
            return;
        }
        cJSON *d = cJSON_Parse(bullc_job_data(job));
        int idx = cJSON_GetObjectItem(d, "idx")->valueint;
        cJSON_Delete(d);
        uv_update_time(&h->loop);
        ph_complete_in(h, job, seen.child_delay_ms, values[idx]);
        return;
    }
    bullc_error err = {0};
    char *s = NULL;
    cr_assert_eq(bullc_queue_get_dependencies(seen.parents, bullc_job_id(job), "{\"processed\":{}}", &s, &err), 0, "%s",
                 err.message);
    snprintf(seen.deps, sizeof seen.deps, "%s", s);
    bullc_free(s);
    cr_assert_eq(bullc_queue_get_children_values(seen.parents, bullc_job_id(job), &s, &err), 0, "%s", err.message);
    snprintf(seen.children_values, sizeof seen.children_values, "%s", s);
    bullc_free(s);
    seen.runs++;
    ph_complete(h, job, "{}");
}

/* The parent saw `n` processed children, child i's value values[i], both
 * as its processed page (cursor done) and as its children values. */
static void assert_parent_saw(ph *h, const cJSON *t, int n) {
    cJSON *d = cJSON_Parse(seen.deps), *v = cJSON_Parse(seen.children_values);
    cr_assert_eq(cJSON_GetObjectItem(d, "nextProcessedCursor")->valuedouble, 0, "%s", seen.deps);
    cJSON *processed = cJSON_GetObjectItem(d, "processed");
    cr_assert_eq(cJSON_GetArraySize(processed), n, "%s", seen.deps);
    for (int i = 0; i < n; i++) {
        char path[2] = {(char)('0' + i), 0};
        const char *key = job_key(h, "q", nid(t, path));
        cJSON *want = cJSON_Parse(values[i]);
        cr_assert(cJSON_Compare(cJSON_GetObjectItem(v, key), want, true), "child %d: %s", i, seen.children_values);
        cr_assert(cJSON_Compare(cJSON_GetObjectItem(processed, key), want, true), "child %d: %s", i, seen.deps);
        cJSON_Delete(want);
    }
    cJSON_Delete(d);
    cJSON_Delete(v);
}

static void seen_end(void) { bullc_queue_free(seen.parents); }

#define DEEP                                                                                                      \
    "{\"name\":\"root-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\",\"queueName\":\"q\"," \
    "\"data\":{\"idx\":0,\"foo\":\"bar\"},\"children\":[{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{"   \
    "\"idx\":1,\"foo\":\"baz\"},\"children\":[{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":2,"   \
    "\"foo\":"                                                                                                    \
    "\"qux\"}}]}]}"

/* node: "should get part of flow tree" */
Test(flow_tree, depth_and_max_children_cut_the_tree) {
    ph *h = ph_new("q");
    cJSON *t = add_flow(h, DEEP ",{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":3,\"foo\":\"bax\"}},"
                                "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":4,\"foo\":\"baz\"}}]}");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    char *s = NULL;
    cr_assert_eq(bullc_flow_producer_get_flow(fp, "parents", nid(t, ""), h->prefix, 2, 2, &s, &err), 0, "%s",
                 err.message);
    cJSON *tree = cJSON_Parse(s), *kids = cJSON_GetObjectItem(tree, "children");
    bullc_queue *parents = tu_queue("parents", h->prefix);
    cr_assert_str_eq(state_of(parents, nid(t, "")), "waiting-children");
    cr_assert_geq(cJSON_GetArraySize(kids), 2);
    for (int i = 0; i < 2; i++) {
        cJSON *k = cJSON_GetArrayItem(kids, i);
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(k, "job"), "id")));
        cr_assert_null(cJSON_GetObjectItem(k, "children"), "depth 2: no grandchildren: %s", s);
    }
    bullc_queue_free(parents);
    cJSON_Delete(tree);
    bullc_free(s);
    bullc_flow_producer_free(fp);
    cJSON_Delete(t);
    ph_end(h);
}

/* The data field `field` of a getFlow node's job. */
static const char *node_data(const cJSON *node, const char *field) {
    static char v[64];
    cJSON *d = cJSON_GetObjectItem(cJSON_GetObjectItem(node, "job"), "data");
    const cJSON *f = cJSON_GetObjectItem(d, field);
    snprintf(v, sizeof v, "%s", cJSON_IsString(f) ? f->valuestring : "");
    return v;
}

/* node: "should get a flow tree using default prefix from FlowProducer" */
Test(flow_tree, get_flow_reads_under_the_producer_prefix) {
    ph *h = ph_new("q");
    char prefix[80];
    snprintf(prefix, sizeof prefix, "{%s}", h->prefix);
    bullc_flow_producer_opts *o;
    bullc_flow_producer_opts_new(&o);
    bullc_flow_producer_opts_set_prefix(o, prefix);
    bullc_flow_producer *fp;
    bullc_error err = {0};
    cr_assert_eq(bullc_flow_producer_new(&fp, o, &err), 0, "%s", err.message);
    bullc_flow_producer_opts_free(o);
    char *s = NULL;
    cr_assert_eq(bullc_flow_producer_add(fp, DEEP "]}", NULL, &s, &err), 0, "%s", err.message);
    cJSON *t = cJSON_Parse(s);
    bullc_free(s);
    cr_assert_eq(bullc_flow_producer_get_flow(fp, "parents", nid(t, ""), NULL, 0, 0, &s, &err), 0, "%s", err.message);
    cJSON *root = cJSON_Parse(s);
    bullc_free(s);
    bullc_queue *parents = tu_queue("parents", prefix);
    cr_assert_str_eq(state_of(parents, nid(t, "")), "waiting-children");
    bullc_queue_free(parents);
    /* bullc's job JSON has no queueName (Node's Job object does): each
     * child's queue is the one that holds it */
    bullc_queue *q = tu_queue("q", prefix);
    const cJSON *n = root;
    for (const char *const *foo = (const char *const[]){"bar", "baz", "qux", NULL}; *foo; foo++) {
        cJSON *kids = cJSON_GetObjectItem(n, "children");
        cr_assert_eq(cJSON_GetArraySize(kids), 1);
        n = cJSON_GetArrayItem(kids, 0);
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(n, "job"), "id")));
        cr_assert_str_neq(state_of(q, cJSON_GetObjectItem(cJSON_GetObjectItem(n, "job"), "id")->valuestring),
                          "unknown");
        cr_assert_str_eq(node_data(n, "foo"), *foo);
    }
    bullc_queue_free(q);
    cJSON_Delete(root);
    cJSON_Delete(t);
    bullc_flow_producer_free(fp);
    ph_end(h);
}

#define THREE_CHILDREN(opts)                                                             \
    "{\"name\":\"parent-job\",\"queueName\":\"parents\"" opts ",\"children\":["          \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"}}," \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":1,\"foo\":\"baz\"}}," \
    "{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":2,\"foo\":\"qux\"}}]}"

/* node: "[when parent has removeOnComplete as true] removes processed data" */
Test(flow_tree, a_parent_removed_on_completion_takes_its_results) {
    ph *h = ph_new("q");
    seen_reset(h);
    h->proc = process;
    cJSON *t = add_flow(h, THREE_CHILDREN(",\"opts\":{\"removeOnComplete\":true}"));
    cr_assert_str_eq(state_of(seen.parents, nid(t, "")), "waiting-children");
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cr_assert(PH_WAIT(h, 15000, ph_wcount(h, 'c', nid(t, "")) == 1), "the parent did not complete");
    assert_parent_saw(h, t, 3);
    cr_assert(gone(seen.parents, nid(t, "")));
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies(seen.parents, nid(t, ""), NULL, &s, &err), 0, "%s", err.message);
    cJSON *d = cJSON_Parse(s);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "processed")), 0, "%s", s);
    cJSON_Delete(d), bullc_free(s);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when parent has delay] moves process to delayed after children are processed" */
Test(flow_tree, a_delayed_parent_is_delayed_once_its_children_are_done) {
    ph *h = ph_new("parents");
    seen_reset(h);
    seen.child_delay_ms = 400;
    h->proc = process;
    ph_qe(h);
    cJSON *t = add_flow(h, "{\"name\":\"root-job\",\"queueName\":\"parents\",\"opts\":{\"delay\":3000},\"children\":[{"
                           "\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"}}]}");
    cr_assert_str_eq(ph_state(h, nid(t, "")), "waiting-children");
    worker_on(h, "q");
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "delayed", nid(t, "")) == 1), "no delayed event");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ms =
        atoll(ph_qe_field(ph_qe_get(h, "delayed", 0), "delay")) - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    cr_assert(ms > 2000 && ms <= 3000, "the delay ends in %lld ms", (long long)ms);
    cr_assert_str_eq(ph_state(h, nid(t, "")), "delayed");
    cr_assert(PH_WAIT(h, 10000, seen.runs == 1), "the parent did not run");
    assert_parent_saw(h, t, 1);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[when children have delay] moves children to delayed" */
Test(flow_tree, delayed_children_run_later_and_the_parent_after_them) {
    ph *h = ph_new("q");
    seen_reset(h);
    seen.child_delay_ms = 500;
    h->proc = process;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cJSON *t = add_flow(h, "{\"name\":\"root-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\","
                           "\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"opts\":{\"delay\":2000}}]}");
    cr_assert_str_eq(state_of(seen.parents, nid(t, "")), "waiting-children");
    cr_assert_str_eq(ph_state(h, nid(t, "0")), "delayed");
    cr_assert(PH_WAIT(h, 10000, seen.runs == 1), "the parent did not run");
    assert_parent_saw(h, t, 1);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[flows] should not process parent if child fails" */
Test(flow_tree, a_failed_child_keeps_its_parent_waiting) {
    ph *h = ph_new("q");
    seen_reset(h);
    seen.child_fails = true;
    h->proc = process;
    ph_worker(h, NULL);
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\","
                           "\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"}}]}");
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_eq(count_in(seen.parents, "waiting"), 0);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[flows] should not process parent until queue is unpaused" */
Test(flow_tree, a_paused_parent_queue_holds_the_released_parent) {
    ph *h = ph_new("q");
    seen_reset(h);
    h->proc = process;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(seen.parents, &err), 0, "%s", err.message);
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\","
                           "\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"}}]}");
    cr_assert(PH_WAIT(h, 10000, seen.child_runs == 1));
    PH_RUN_FOR(h, 500);
    cr_assert_eq(count_in(seen.parents, "waiting"), 1);
    cr_assert_eq(seen.runs, 0);
    cr_assert_eq(bullc_queue_resume(seen.parents, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, seen.runs == 1), "the parent did not run once resumed");
    cr_assert_eq(count_in(seen.parents, "waiting"), 0);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[.addBulk] should allow parent opts on the root job" */
Test(flow_tree, add_bulk_takes_a_root_with_a_parent) {
    ph *h = ph_new("q");
    seen_reset(h);
    h->proc = process;
    bullc_queue *gq = tu_queue("grandparents", h->prefix);
    bullc_error err = {0};
    char *gid = NULL;
    cr_assert_eq(bullc_queue_add(gq, "grandparent", "{\"foo\":\"bar\"}", NULL, &gid, &err), 0, "%s", err.message);
    ph_worker(h, NULL);
    worker_on(h, "parents");
    char flows[1024];
    snprintf(flows, sizeof flows,
             "[{\"name\":\"parent-job\",\"queueName\":\"parents\",\"opts\":{\"parent\":{\"id\":\"%s\",\"queue\":\"%s:"
             "grandparents\"}},\"children\":[{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":"
             "\"bar\"}},{\"name\":\"child-job\",\"queueName\":\"q\",\"data\":{\"idx\":1,\"foo\":\"baz\"}}]}]",
             gid, h->prefix);
    bullc_flow_producer *fp = producer(h);
    char *s = NULL;
    cr_assert_eq(bullc_flow_producer_add_bulk(fp, flows, &s, &err), 0, "%s", err.message);
    cJSON *all = cJSON_Parse(s), *t = cJSON_GetArrayItem(all, 0);
    bullc_free(s);
    cJSON *root = ph_job_in(seen.parents, nid(t, ""));
    char want[160];
    snprintf(want, sizeof want, "%s:grandparents:%s", h->prefix, gid);
    cr_assert_str_eq(cJSON_GetObjectItem(root, "parentKey")->valuestring, want);
    cJSON_Delete(root);
    cr_assert_str_eq(state_of(seen.parents, nid(t, "")), "waiting-children");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "children")), 2);
    cr_assert(PH_WAIT(h, 10000, seen.runs == 1), "the parent did not run");
    assert_parent_saw(h, t, 2);
    bullc_flow_producer_free(fp);
    cJSON_Delete(all);
    bullc_free(gid);
    bullc_queue_free(gq);
    seen_end();
    ph_end(h);
}

/* node: "[when custom prefix is set in flow producer] uses default prefix to add jobs" */
Test(flow_tree, a_custom_prefix_holds_the_whole_tree) {
    ph *h = ph_new("q");
    char custom[sizeof h->prefix];
    snprintf(custom, sizeof custom, "{%.40s}:custom", h->prefix);
    snprintf(h->prefix, sizeof h->prefix, "%s", custom);
    bullc_queue_free(h->q);
    h->q = tu_queue("q", h->prefix);
    seen_reset(h);
    h->proc = process;
    ph_worker(h, NULL);
    worker_on(h, "parents");
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"children\":[{\"name\":\"child-job\","
                           "\"queueName\":\"q\",\"data\":{\"idx\":0,\"foo\":\"bar\"}}]}");
    cr_assert_str_eq(state_of(seen.parents, nid(t, "")), "waiting-children");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "children")), 1);
    cJSON *child = ph_job(h, nid(t, "0"));
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(child, "data"), "foo")->valuestring, "bar");
    cJSON_Delete(child);
    cr_assert(PH_WAIT(h, 10000, seen.runs == 1), "the parent did not run");
    assert_parent_saw(h, t, 1);
    seen_end();
    cJSON_Delete(t);
    ph_end(h);
}
