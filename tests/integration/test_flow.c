/* SPDX-License-Identifier: MIT */
/* Node BullMQ's flow.test.ts cases for the producer and reader half: trees
 * added with bullc_flow_producer, processed by bullc workers, read back with
 * the dependency getters and getFlow. */
#include "test_flow_util.h"

#include <pthread.h>

#include "private_redis.h"

TestSuite(flow, .timeout = 60);

static char order[512];

static void record_and_complete(ph *h, bullc_job *job, int widx) {
    (void)widx;
    strcat(order, bullc_job_name(job));
    strcat(order, " ");
    char result[64];
    snprintf(result, sizeof result, "{\"from\":\"%s\"}", bullc_job_name(job));
    ph_complete(h, job, result);
}

/* How many keys the test's prefix has in Redis. */
static size_t keys_under(const char *prefix) {
    redisContext *c = tu_redis();
    redisReply *r = tu_cmd(c, "KEYS %s:*", prefix);
    size_t n = r->elements;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* node: "[flows] should process a chain of jobs" */
Test(flow, a_chain_runs_from_the_leaf_up) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    char *tree = NULL;
    cr_assert_eq(
        bullc_flow_producer_add(fp,
                                "{\"name\":\"root\",\"queueName\":\"q\",\"children\":[{\"name\":\"mid\","
                                "\"queueName\":\"q\",\"children\":[{\"name\":\"leaf\",\"queueName\":\"q\"}]}]}",
                                NULL, &tree, &err),
        0, "%s", err.message);
    cJSON *t = cJSON_Parse(tree);
    const char *root = cJSON_GetObjectItem(cJSON_GetObjectItem(t, "job"), "id")->valuestring;
    order[0] = 0;
    h->proc = record_and_complete;
    ph_worker(h, ph_wopts(h));
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 3));
    cr_assert_str_eq(order, "leaf mid root ");
    /* the root saw its child's result */
    char *values = NULL;
    cr_assert_eq(bullc_queue_get_children_values(h->q, root, &values, &err), 0, "%s", err.message);
    const char *mid =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "children"), 0), "job"), "id")
            ->valuestring;
    char want[256];
    snprintf(want, sizeof want, "{\"%s:q:%s\":{\"from\":\"mid\"}}", h->prefix, mid);
    cr_assert_str_eq(values, want);
    bullc_free(values);
    bullc_free(tree);
    cJSON_Delete(t);
    bullc_flow_producer_free(fp);
    ph_end(h);
}

/* node: "[flows] should process parent when children is an empty array" */
Test(flow, empty_children_make_a_plain_job) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    cr_assert_eq(
        bullc_flow_producer_add(fp, "{\"name\":\"alone\",\"queueName\":\"q\",\"children\":[]}", NULL, NULL, &err), 0,
        "%s", err.message);
    order[0] = 0;
    h->proc = record_and_complete;
    ph_worker(h, ph_wopts(h));
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_str_eq(order, "alone ");
    bullc_flow_producer_free(fp);
    ph_end(h);
}

/* node: "[flows] should get paginated processed dependencies keys" */
Test(flow, dependencies_page_by_cursor) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    /* the root in another queue: only the 30 children run here */
    sds flow = sdsnew("{\"name\":\"root\",\"queueName\":\"parents\",\"opts\":{\"jobId\":\"root\"},\"children\":[");
    for (int i = 0; i < 30; i++) flow = sdscatprintf(flow, "%s{\"name\":\"c%d\",\"queueName\":\"q\"}", i ? "," : "", i);
    flow = sdscat(flow, "]}");
    cr_assert_eq(bullc_flow_producer_add(fp, flow, NULL, NULL, &err), 0, "%s", err.message);
    sdsfree(flow);
    bullc_queue *parents = tu_queue("parents", h->prefix);
    int64_t counts[4];
    cr_assert_eq(bullc_queue_get_dependencies_count(parents, "root", counts, &err), 0, "%s", err.message);
    cr_assert(counts[0] == 0 && counts[1] == 30 && counts[2] == 0 && counts[3] == 0);
    order[0] = 0;
    h->proc = record_and_complete;
    ph_worker(h, ph_wopts(h));
    cr_assert(PH_WAIT(h, 20000, h->n_completed == 30));
    cr_assert_eq(bullc_queue_get_dependencies_count(parents, "root", counts, &err), 0, "%s", err.message);
    cr_assert(counts[0] == 30 && counts[1] == 0, "%lld processed, %lld left", (long long)counts[0],
              (long long)counts[1]);
    /* HSCAN pages of at most about 10 until the cursor comes back to 0 */
    cJSON *seen = cJSON_CreateObject();
    double cursor = 0;
    int pages = 0;
    do {
        char opts[96], *out = NULL;
        snprintf(opts, sizeof opts, "{\"processed\":{\"cursor\":%.0f,\"count\":10}}", cursor);
        cr_assert_eq(bullc_queue_get_dependencies(parents, "root", opts, &out, &err), 0, "%s", err.message);
        cJSON *o = cJSON_Parse(out);
        cr_assert_null(cJSON_GetObjectItem(o, "unprocessed"), "%s", out);
        for (cJSON *e = cJSON_GetObjectItem(o, "processed")->child; e; e = e->next)
            if (!cJSON_HasObjectItem(seen, e->string)) cJSON_AddItemToObject(seen, e->string, cJSON_CreateTrue());
        cursor = cJSON_GetObjectItem(o, "nextProcessedCursor")->valuedouble;
        cJSON_Delete(o);
        bullc_free(out);
        pages++;
    } while (cursor != 0 && pages < 100);
    cr_assert_eq(cJSON_GetArraySize(seen), 30);
    cJSON_Delete(seen);
    /* the whole set at once, Node's default shape */
    char *all = NULL;
    cr_assert_eq(bullc_queue_get_dependencies(parents, "root", NULL, &all, &err), 0, "%s", err.message);
    cJSON *o = cJSON_Parse(all);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "processed")), 30);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "unprocessed")), 0);
    cJSON_Delete(o);
    bullc_free(all);
    bullc_queue_free(parents);
    bullc_flow_producer_free(fp);
    ph_end(h);
}

/* node: "[when defaultJobOptions is provided] processes children before the parent" */
Test(flow, queues_options_give_each_queue_its_defaults) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    cr_assert_eq(bullc_flow_producer_add(fp,
                                         "{\"name\":\"root\",\"queueName\":\"q\",\"opts\":{\"jobId\":\"r\"},"
                                         "\"children\":[{\"name\":\"kid\",\"queueName\":\"q\",\"opts\":{\"jobId\":"
                                         "\"k\",\"attempts\":2}}]}",
                                         "{\"queuesOptions\":{\"q\":{\"defaultJobOptions\":{\"removeOnComplete\":true,"
                                         "\"attempts\":5}}}}",
                                         NULL, &err),
                 0, "%s", err.message);
    char *job = NULL;
    cr_assert_eq(bullc_queue_get_job(h->q, "k", &job, &err), 0);
    cJSON *j = cJSON_Parse(job), *o = cJSON_GetObjectItem(j, "opts");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "removeOnComplete")));
    cr_assert_eq(cJSON_GetObjectItem(o, "attempts")->valueint, 2, "the node's own options win");
    cJSON_Delete(j);
    bullc_free(job);
    order[0] = 0;
    h->proc = record_and_complete;
    ph_worker(h, ph_wopts(h));
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cr_assert_str_eq(order, "kid root ");
    cr_assert_eq(bullc_queue_get_job(h->q, "k", &job, &err), BULLC_ENOTFOUND, "removed on completion");
    bullc_flow_producer_free(fp);
    ph_end(h);
}

/* node: "[when root parent job has deduplication option] should reject deduplication when root node has children" */
Test(flow, deduplication_on_a_root_with_children_is_refused) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    cr_assert_eq(bullc_flow_producer_add(fp,
                                         "{\"name\":\"root\",\"queueName\":\"q\",\"opts\":{\"deduplication\":{\"id\":"
                                         "\"d\"}},\"children\":[{\"name\":\"kid\",\"queueName\":\"q\"}]}",
                                         NULL, NULL, &err),
                 BULLC_EINVAL);
    cr_assert_str_eq(err.message, "flow node root ('root' in queue 'q'): Deduplication options cannot be used on flow "
                                  "nodes with children");
    cr_assert_eq(keys_under(h->prefix), 0);
    bullc_flow_producer_free(fp);
    ph_end(h);
}

/* node: "[when root parent job has deduplication option] should reject deduplication on nested nodes with children" */
Test(flow, deduplication_on_a_nested_parent_is_refused_and_nothing_is_written) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    const char *bulk = "[{\"name\":\"ok\",\"queueName\":\"q\"},{\"name\":\"root\",\"queueName\":\"q\",\"children\":[{"
                       "\"name\":\"mid\",\"queueName\":\"q2\",\"opts\":{\"deduplication\":{\"id\":\"d\"}},"
                       "\"children\":[{\"name\":\"leaf\",\"queueName\":\"q\"}]}]}]";
    cr_assert_eq(bullc_flow_producer_add_bulk(fp, bulk, NULL, &err), BULLC_EINVAL);
    cr_assert_str_eq(err.message, "flow node [1].children[0] ('mid' in queue 'q2'): Deduplication options cannot be "
                                  "used on flow nodes with children");
    cr_assert_eq(keys_under(h->prefix), 0, "the first, valid tree was not written either");
    bullc_flow_producer_free(fp);
    ph_end(h);
}

Test(flow, get_flow_reads_the_tree_with_node_defaults) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    sds flow = sdsnew("{\"name\":\"root\",\"queueName\":\"q\",\"opts\":{\"jobId\":\"root\"},\"children\":[");
    for (int i = 0; i < 25; i++)
        flow = sdscatprintf(flow,
                            "%s{\"name\":\"c%d\",\"queueName\":\"q\",\"children\":[{\"name\":\"g\",\"queueName\":"
                            "\"q\"}]}",
                            i ? "," : "", i);
    flow = sdscat(flow, "]}");
    cr_assert_eq(bullc_flow_producer_add(fp, flow, NULL, NULL, &err), 0, "%s", err.message);
    sdsfree(flow);
    char *out = NULL;
    cr_assert_eq(bullc_flow_producer_get_flow(fp, "q", "root", NULL, 0, 0, &out, &err), 0, "%s", err.message);
    cJSON *t = cJSON_Parse(out);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "job"), "name")->valuestring, "root");
    cJSON *kids = cJSON_GetObjectItem(t, "children");
    /* SSCAN's COUNT is a hint: about maxChildren (20), every one a whole node */
    cr_assert_geq(cJSON_GetArraySize(kids), 20);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(kids, 0), "children")), 1);
    cJSON_Delete(t);
    bullc_free(out);
    cr_assert_eq(bullc_flow_producer_get_flow(fp, "q", "root", NULL, 1, 5, &out, &err), 0, "%s", err.message);
    t = cJSON_Parse(out);
    cr_assert_null(cJSON_GetObjectItem(t, "children"), "depth 1: the root alone");
    cJSON_Delete(t);
    bullc_free(out);
    cr_assert_eq(bullc_flow_producer_get_flow(fp, "q", "nope", NULL, 0, 0, &out, &err), BULLC_ENOTFOUND);
    bullc_flow_producer_free(fp);
    ph_end(h);
}

/* The job id Node's queue.getDeduplicationJobId(id) reads. */
static char *dedup_job_id(ph *h, const char *dedup_id) {
    char suffix[128];
    snprintf(suffix, sizeof suffix, "de:%s", dedup_id);
    redisReply *r = ph_cmd("GET %s", ph_key(h, suffix));
    char *id = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return id;
}

#define DEDUP_ROOT(name) \
    "{\"name\":\"" name "\",\"queueName\":\"q\",\"opts\":{\"deduplication\":{\"id\":\"dd\"},\"delay\":1000}}"

/* node: "[when root parent job has deduplication option] should return deduplicated root job id when flow has no children" */
Test(flow, a_root_without_children_is_deduplicated) {
    ph *h = ph_new("q");
    cJSON *first = add_flow(h, DEDUP_ROOT("root")), *second = add_flow(h, DEDUP_ROOT("root"));
    const char *id = nid(first, "");
    cr_assert_str_eq(nid(second, ""), id);
    char *dd = dedup_job_id(h, "dd");
    cr_assert_str_eq(dd, id);
    free(dd);
    cJSON_Delete(first), cJSON_Delete(second);
    ph_end(h);
}

/* node: "[when root parent job has deduplication option] should return deduplicated ids from addBulk when roots share deduplication id" */
Test(flow, add_bulk_roots_sharing_a_deduplication_id_get_one_id) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    char *out = NULL;
    cr_assert_eq(bullc_flow_producer_add_bulk(fp, "[" DEDUP_ROOT("root-1") "," DEDUP_ROOT("root-2") "]", &out, &err), 0,
                 "%s", err.message);
    cJSON *trees = cJSON_Parse(out);
    const char *id = nid(cJSON_GetArrayItem(trees, 0), "");
    cr_assert_str_eq(nid(cJSON_GetArrayItem(trees, 1), ""), id);
    char *dd = dedup_job_id(h, "dd");
    cr_assert_str_eq(dd, id);
    free(dd);
    cJSON_Delete(trees);
    bullc_free(out);
    bullc_flow_producer_free(fp);
    ph_end(h);
}

/* A producer speaking BullMQ `major` to every queue it touches. */
static bullc_flow_producer *producer_of(ph *h, int major) {
    bullc_flow_producer_opts *o;
    cr_assert_eq(bullc_flow_producer_opts_new(&o), 0);
    cr_assert_eq(bullc_flow_producer_opts_set_prefix(o, h->prefix), 0);
    cr_assert_eq(bullc_flow_producer_opts_set_bullmq_version(o, major), 0);
    bullc_flow_producer *fp;
    cr_assert_eq(bullc_flow_producer_new(&fp, o, NULL), 0);
    bullc_flow_producer_opts_free(o);
    return fp;
}

#define BOTH_MAJORS(name) PH_BOTH_MAJORS(flow, name)

/* One of Node's flow.add promises in flight: a thread with its own producer
 * (a producer is used by one thread at a time) adds a deduplicated root
 * once every thread is ready. */
typedef struct concurrent_add {
    pthread_t t;
    ph *h;
    int major, index, rc;
    pthread_barrier_t *start;
    char id[64];
} concurrent_add;

static void *add_in_flight(void *arg) {
    concurrent_add *c = arg;
    bullc_flow_producer *fp = producer_of(c->h, c->major);
    char flow[256], *tree = NULL;
    snprintf(flow, sizeof flow,
             "{\"name\":\"root-%d\",\"data\":{\"index\":%d},\"queueName\":\"q\",\"opts\":{\"deduplication\":"
             "{\"id\":\"dedup-concurrent-root\"},\"delay\":1000}}",
             c->index, c->index);
    pthread_barrier_wait(c->start);
    c->rc = bullc_flow_producer_add(fp, flow, NULL, &tree, NULL);
    cJSON *t = c->rc ? NULL : cJSON_Parse(tree);
    const cJSON *id = cJSON_GetObjectItem(cJSON_GetObjectItem(t, "job"), "id");
    snprintf(c->id, sizeof c->id, "%s", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_Delete(t);
    bullc_free(tree);
    bullc_flow_producer_free(fp);
    return NULL;
}

/* node: "[when root parent job has deduplication option] should return same deduplicated id for concurrent add calls" */
BOTH_MAJORS(concurrent_adds_get_one_deduplicated_id) {
    ph *h = ph_new("q");
    enum { CALLS = 8 };
    concurrent_add c[CALLS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CALLS);
    for (int i = 0; i < CALLS; i++) {
        c[i] = (concurrent_add){.h = h, .major = major, .index = i, .start = &start};
        cr_assert_eq(pthread_create(&c[i].t, NULL, add_in_flight, &c[i]), 0);
    }
    for (int i = 0; i < CALLS; i++) pthread_join(c[i].t, NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < CALLS; i++) {
        cr_assert_eq(c[i].rc, 0, "add %d", i);
        cr_assert_str_eq(c[i].id, c[0].id, "add %d's id", i);
    }
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

/* node: "[when root parent job has deduplication option] should not corrupt id mapping for successful jobs when some addBulk commands fail" */
BOTH_MAJORS(add_bulk_with_a_missing_parent_keeps_the_other_ids) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer_of(h, major);
    char flows[512], *out = NULL;
    snprintf(flows, sizeof flows,
             "[{\"name\":\"valid-root\",\"data\":{},\"queueName\":\"q\",\"opts\":{\"deduplication\":{\"id\":"
             "\"dedup-valid-on-partial-failure\"},\"delay\":1000}},{\"name\":\"invalid-root\",\"data\":{},"
             "\"queueName\":\"q\",\"opts\":{\"parent\":{\"id\":\"missing-parent\",\"queue\":\"%s:q\"}}}]",
             h->prefix);
    bullc_error err = {0};
    int rc = bullc_flow_producer_add_bulk(fp, flows, &out, &err);
    char *valid = dedup_job_id(h, "dedup-valid-on-partial-failure");
    cr_assert_not_null(valid, "the valid root is written");
    cr_assert_eq(ph_count(h, "delayed"), 1);
    cr_assert_eq(ph_count(h, "wait"), 0, "the invalid root is not");
    if (major == 6) {
        /* 6.7.0's addBulk reports no root's failure: each tree is handed
         * back, the valid one with its job's id, the invalid with an id no
         * job has */
        cr_assert_eq(rc, 0, "%s", err.message);
        cJSON *trees = cJSON_Parse(out);
        cr_assert_str_eq(nid(cJSON_GetArrayItem(trees, 0), ""), valid);
        cr_assert(ph_job_exists(h, valid));
        cr_assert_not(ph_job_exists(h, nid(cJSON_GetArrayItem(trees, 1), "")));
        cJSON_Delete(trees);
    } else {
        /* 5.81.5's throws the refused root's error after the transaction */
        cr_assert_eq(rc, BULLC_ENOTFOUND);
        char want[256];
        snprintf(want, sizeof want, "Missing key for parent job %s:q:missing-parent. addJob", h->prefix);
        cr_assert(strstr(err.message, want), "%s", err.message);
        cr_assert_null(out);
    }
    bullc_free(out);
    free(valid);
    bullc_flow_producer_free(fp);
    ph_end(h);
}

/* node: "[flows (redis-only)] should add meta key to both parents and children" */
BOTH_MAJORS(a_flow_writes_the_meta_of_every_queue) {
    ph *h = ph_new("q");
    bullc_flow_producer *fp = producer_of(h, major);
    const char *flow = "{\"name\":\"root-job\",\"queueName\":\"top-queue\",\"data\":{},\"children\":[{"
                       "\"name\":\"child-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"q\","
                       "\"children\":[{\"name\":\"child-job\",\"data\":{\"idx\":1,\"foo\":\"baz\"},"
                       "\"queueName\":\"q\",\"children\":[{\"name\":\"child-job\",\"data\":{\"idx\":2,"
                       "\"foo\":\"qux\"},\"queueName\":\"q\"}]}]}]}";
    bullc_error err = {0};
    cr_assert_eq(bullc_flow_producer_add(fp, flow, NULL, NULL, &err), 0, "%s", err.message);
    for (int i = 0; i < 2; i++) {
        redisReply *r = ph_cmd("HGET %s:%s:meta opts.maxLenEvents", h->prefix, i ? "q" : "top-queue");
        cr_assert(r->type == REDIS_REPLY_STRING && !strcmp(r->str, "10000"), "%s's meta",
                  i ? "the children's queue" : "the parent's queue");
        freeReplyObject(r);
    }
    bullc_flow_producer_free(fp);
    ph_end(h);
}
