/* SPDX-License-Identifier: MIT */
/* Node BullMQ's flow.test.ts cases on priorities inside a tree: children
 * (and grandchildren) of one parent are taken by each queue's worker in
 * their priority order once released, before the parent, which then reads
 * every child's value. Workers: 0 on "parents", 1 on "q" (the children), 2
 * on "grandchildren"; 1 and 2 start only when the case says (autorun off,
 * as Node's). */
#include "test_flow_util.h"

TestSuite(flow_priority, .timeout = 90);

static const char *const VALUES[] = {"{\"bar\":\"something\"}", "{\"baz\":\"something\"}", "{\"qux\":\"something\"}"};

/* The parent's dependencies and children values, read by its processor. */
static int parent_runs;
static int64_t parent_processed, parent_cursor = -1;
static cJSON *parent_values;

static int data_int(const bullc_job *job, const char *key) {
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    const cJSON *v = cJSON_GetObjectItem(d, key);
    int n = cJSON_IsNumber(v) ? v->valueint : -1;
    cJSON_Delete(d);
    return n;
}

/* Children return VALUES[idx] (or VALUES[order - 1]); the plain "test" job
 * takes 500 ms; grandchildren 50 ms; the parent reads its children. */
static void process(ph *h, bullc_job *job, int widx) {
    if (widx == 0) {
        bullc_queue *pq = tu_queue("parents", h->prefix);
        char *deps = NULL, *values = NULL;
        bullc_error err = {0};
        cr_assert_eq(bullc_queue_get_dependencies(pq, bullc_job_id(job), "{\"processed\":{}}", &deps, &err), 0, "%s",
                     err.message);
        cJSON *d = cJSON_Parse(deps);
        parent_processed = cJSON_GetArraySize(cJSON_GetObjectItem(d, "processed"));
        parent_cursor = (int64_t)cJSON_GetObjectItem(d, "nextProcessedCursor")->valuedouble;
        cJSON_Delete(d);
        cr_assert_eq(bullc_queue_get_children_values(pq, bullc_job_id(job), &values, &err), 0, "%s", err.message);
        parent_values = cJSON_Parse(values);
        bullc_free(deps), bullc_free(values);
        bullc_queue_free(pq);
        parent_runs++;
        return ph_complete(h, job, NULL);
    }
    int idx = data_int(job, "idx"), order = data_int(job, "order");
    if (widx == 1 && idx >= 0) return ph_complete_in(h, job, 10, VALUES[idx]);
    if (order >= 1) return ph_complete_in(h, job, 25, VALUES[order - 1]);
    ph_complete_in(h, job, widx == 1 ? 500 : 50, NULL);
}

static void on(ph *h, const char *queue, bool autorun) {
    char keep[sizeof h->qname];
    snprintf(keep, sizeof keep, "%s", h->qname);
    snprintf(h->qname, sizeof h->qname, "%s", queue);
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, autorun);
    ph_worker(h, o);
    snprintf(h->qname, sizeof h->qname, "%s", keep);
}

static ph *start(bool grandchildren_autorun) {
    ph *h = ph_new("q");
    parent_runs = 0, parent_processed = 0, parent_cursor = -1;
    cJSON_Delete(parent_values);
    parent_values = NULL;
    h->proc = process;
    on(h, "parents", true);
    on(h, "q", false);
    on(h, "grandchildren", grandchildren_autorun);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 3));
    return h;
}

/* The data field `key` of the jobs worker `widx` took, in the order taken. */
static void taken(ph *h, int widx, const char *key, int *out, int n) {
    int k = 0;
    for (int i = 0; i < h->nwev && k < n; i++) {
        const ph_wev *e = &h->wev[i];
        if (e->kind != 'a' || e->widx != widx) continue;
        cJSON *d = cJSON_Parse(e->data);
        const cJSON *v = cJSON_GetObjectItem(d, key);
        if (cJSON_IsNumber(v)) out[k++] = v->valueint;
        cJSON_Delete(d);
    }
    cr_assert_eq(k, n, "worker %d took %d jobs with %s", widx, k, key);
}

static int completed_on(ph *h, int widx) {
    int n = 0;
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == 'c' && h->wev[i].widx == widx) n++;
    return n;
}

#define GRANDCHILD "{\"name\":\"grandchildren-job\",\"data\":{},\"queueName\":\"grandchildren\"}"

/* node: "processes children before the parent respecting priority option" */
Test(flow_priority, children_in_priority_order_before_the_parent) {
    ph *h = start(true);
    ph_add(h, "test", "{}", NULL);
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    char *out = NULL;
    const char *flow =
        "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"data\":{},\"children\":["
        "{\"name\":\"child-job\",\"data\":{\"idx\":1,\"foo\":\"baz\"},\"queueName\":\"q\",\"children\":[" GRANDCHILD
        "],\"opts\":{\"priority\":2}},"
        "{\"name\":\"child-job\",\"data\":{\"idx\":2,\"foo\":\"qux\"},\"queueName\":\"q\",\"children\":[" GRANDCHILD
        "],\"opts\":{\"priority\":3}},"
        "{\"name\":\"child-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"q\",\"children\":[" GRANDCHILD
        "],\"opts\":{\"priority\":1}}]}";
    cr_assert_eq(bullc_flow_producer_add(fp, flow,
                                         "{\"queuesOptions\":{\"parents\":{\"defaultJobOptions\":{\"removeOnComplete\":"
                                         "true}}}}",
                                         &out, &err),
                 0, "%s", err.message);
    bullc_flow_producer_free(fp);
    cJSON *tree = cJSON_Parse(out);
    bullc_free(out);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    const char *parent = nid(tree, "");
    cr_assert_str_eq(state_of(pq, parent), "waiting-children");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(tree, "children")), 3);
    cr_assert(PH_WAIT(h, 10000, completed_on(h, 2) == 3), "the grandchildren");
    cr_assert_eq(bullc_worker_run(h->w[1]), 0);
    cr_assert(PH_WAIT(h, 10000, parent_runs == 1 && completed_on(h, 0) == 1));
    int idx[3];
    taken(h, 1, "idx", idx, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(idx[i], i, "child %d taken in priority order: %d", i, idx[i]);
    cr_assert_eq(parent_processed, 3);
    cr_assert_eq(parent_cursor, 0);
    cr_assert_eq(cJSON_GetArraySize(parent_values), 3);
    cr_assert(gone(pq, parent), "removed on completion");
    cr_assert_eq(count_in(pq, "completed"), 0);
    bullc_queue_free(pq);
    cJSON_Delete(tree);
    ph_end(h);
}

#define ORDERED(q, n, foo)                                                                       \
    "{\"name\":\"child-job\",\"data\":{\"order\":" #n ",\"foo\":\"" foo "\"},\"queueName\":\"" q \
    "\",\"opts\":{\"priority\":" #n "}"

/* node: "should process children before the parent prioritizing jobs per queueName" */
Test(flow_priority, each_queue_in_its_priority_order) {
    ph *h = start(false);
    const char *
        flow = "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"data\":{},\"children\":[" ORDERED("q", 1, "bar") "}," ORDERED(
            "q", 2,
            "baz") "}," ORDERED("q", 3,
                                "qux") ",\"children\":[" ORDERED("grandchildren", 1,
                                                                 "bar") "}," ORDERED("grandchildren", 2,
                                                                                     "baz") "}," ORDERED("grandchildre"
                                                                                                         "n",
                                                                                                         3,
                                                                                                         "qux") "}]}]}";
    cJSON *tree = add_flow(h, flow);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    cr_assert_str_eq(state_of(pq, nid(tree, "")), "waiting-children");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(tree, "children")), 3);
    cr_assert_eq(bullc_worker_run(h->w[2]), 0);
    cr_assert(PH_WAIT(h, 10000, completed_on(h, 2) == 3), "the grandchildren");
    cr_assert_eq(bullc_worker_run(h->w[1]), 0);
    cr_assert(PH_WAIT(h, 10000, parent_runs == 1));
    int order[3];
    taken(h, 2, "order", order, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(order[i], i + 1, "grandchild %d taken in priority order", i);
    taken(h, 1, "order", order, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(order[i], i + 1, "child %d taken in priority order", i);
    cr_assert_eq(parent_processed, 3);
    cr_assert_eq(parent_cursor, 0);
    for (int i = 0; i < 3; i++) {
        char path[4];
        snprintf(path, sizeof path, "%d", i);
        char *v = cJSON_PrintUnformatted(cJSON_GetObjectItem(parent_values, job_key(h, "q", nid(tree, path))));
        cr_assert_str_eq(v, VALUES[i]);
        free(v);
    }
    bullc_queue_free(pq);
    cJSON_Delete(tree);
    ph_end(h);
}
