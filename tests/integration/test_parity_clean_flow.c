/* SPDX-License-Identifier: MIT */
/* Node BullMQ's clean.test.ts, obliterate.redis.test.ts and queue.test.ts
 * cases that remove a flow's jobs with clean, obliterate and drain: what
 * becomes of a parent whose children are removed (in the same queue or in
 * another), and clean beside a job scheduler. Each case runs speaking BullMQ
 * 6 (the marked test) and 5 (its twin, on queues a Node 5.81.5 Queue made):
 * the removal scripts differ between the majors. Also queue.redis.test.ts's
 * removal of BullMQ 2's priority set. */
#include "test_flow_util.h"
#include "test_sched_util.h"

#define BOTH_MAJORS(name)                                \
    static void name(int major);                         \
    Test(parity_clean_flow, name) { name(6); }           \
    Test(parity_clean_flow, name##_bullmq5) { name(5); } \
    static void name(int major)

/* Writes queue `queue`'s meta as a Node 5.81.5 Queue does, so that every
 * handle of the case (auto) speaks 5.x to it. */
static void node5_meta(ph *h, const char *queue) {
    freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix, queue));
}

static ph *setup(int major) {
    ph *h = ph_new("q");
    if (major == 5) node5_meta(h, "q"), node5_meta(h, "other");
    return h;
}

/* Node's queue.count(): jobs waiting, paused, delayed, prioritized and
 * waiting for children. */
static int count_of(bullc_queue *q) {
    static const char *const st[] = {"waiting", "paused", "delayed", "prioritized", "waiting-children"};
    int64_t n[5];
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_count_jobs(q, st, 5, n, &err), 0, "%s", err.message);
    return (int)(n[0] + n[1] + n[2] + n[3] + n[4]);
}

static int count_state(bullc_queue *q, const char *state) {
    const char *st[] = {state};
    int64_t n = -1;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_count_jobs(q, st, 1, &n, &err), 0, "%s", err.message);
    return (int)n;
}

/* Keys of queue `queue` in Redis (KEYS prefix:queue:*). */
static int keys_of(ph *h, const char *queue) {
    redisReply *r = ph_cmd("KEYS %s:%s:*", h->prefix, queue);
    int n = (int)r->elements;
    freeReplyObject(r);
    return n;
}

static bool majors_speak(ph *h, int major) {
    bullc_error err = {0};
    char *m = NULL;
    cr_assert_eq(bullc_queue_get_meta(h->q, &m, &err), 0, "%s", err.message);
    bool ok = bullc_queue_bullmq_version(h->q) == major;
    bullc_free(m);
    return ok;
}

/* The parent on "q" (or on "other") with children on "q" (or on "other"). */
static cJSON *three_children_flow(ph *h, const char *parent_q, const char *child_q) {
    char flow[1024];
    snprintf(flow, sizeof flow,
             "{\"name\":\"parent-job\",\"queueName\":\"%s\",\"data\":{},\"children\":["
             "{\"name\":\"child-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"%s\"},"
             "{\"name\":\"child-job\",\"data\":{\"idx\":1,\"foo\":\"baz\"},\"queueName\":\"%s\"},"
             "{\"name\":\"child-job\",\"data\":{\"idx\":2,\"foo\":\"qux\"},\"queueName\":\"%s\"}]}",
             parent_q, child_q, child_q, child_q);
    return add_flow(h, flow);
}
static cJSON *one_child_flow(ph *h, const char *parent_q, const char *child_q, const char *child_opts) {
    char flow[1024];
    snprintf(flow, sizeof flow,
             "{\"name\":\"parent-job\",\"queueName\":\"%s\",\"data\":{},\"children\":["
             "{\"name\":\"child-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"%s\",\"opts\":%s}]}",
             parent_q, child_q, child_opts ? child_opts : "{}");
    return add_flow(h, flow);
}

static void clean(ph *h, const char *state, int expected) {
    bullc_error err = {0};
    char *ids = NULL;
    cr_assert_eq(bullc_queue_clean(h->q, 0, 0, state, &ids, &err), 0, "%s", err.message);
    cJSON *a = cJSON_Parse(ids);
    if (expected >= 0) cr_assert_eq(cJSON_GetArraySize(a), expected, "clean %s removed %s", state, ids);
    cJSON_Delete(a);
    bullc_free(ids);
}
static void obliterate(ph *h) {
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_obliterate(h->q, false, 0, &err), 0, "%s", err.message);
}
static void drain(ph *h) {
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_drain(h->q, false, &err), 0, "%s", err.message);
}

/* ---- the parent in the same queue ------------------------------------------------ */

/* node: "[Cleaner > when creating a flow > when parent belongs to same queue > when parent has more than 1 pending children in the same queue] removes parent record" */
BOTH_MAJORS(clean_parent_with_children_in_same_queue) {
    ph *h = setup(major);
    cJSON *t = three_children_flow(h, "q", "q");
    cr_assert(majors_speak(h, major));
    cr_assert_eq(count_of(h->q), 4);
    clean(h, "wait", 3);
    cr_assert_eq(count_of(h->q), 0, "the parent went with its last child");
    cr_assert_eq(count_state(h->q, "failed"), 0);
    cr_assert(gone(h->q, nid(t, "")));
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[Obliterate (redis-only) > when creating a flow > when parent belongs to same queue > when parent has more than 1 pending children in the same queue] removes parent record" */
BOTH_MAJORS(obliterate_parent_with_children_in_same_queue) {
    ph *h = setup(major);
    cJSON *t = three_children_flow(h, "q", "q");
    cr_assert(majors_speak(h, major));
    cr_assert_eq(count_of(h->q), 4);
    obliterate(h);
    cr_assert_eq(keys_of(h, "q"), 0);
    cr_assert_eq(count_of(h->q), 0);
    cr_assert_eq(count_state(h->q, "failed"), 0);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[queues > .drain > when having a flow > when parent belongs to same queue > when parent has more than 1 pending children in the same queue] deletes parent record" */
BOTH_MAJORS(drain_parent_with_children_in_same_queue) {
    ph *h = setup(major);
    cJSON *t = three_children_flow(h, "q", "q");
    cr_assert(majors_speak(h, major));
    cr_assert_eq(count_of(h->q), 4);
    drain(h);
    cr_assert_eq(count_of(h->q), 0);
    cr_assert(gone(h->q, nid(t, "")));
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[queues > .drain > when having a flow > when parent belongs to same queue > when parent has only 1 pending child in the same queue] deletes parent record" */
BOTH_MAJORS(drain_parent_with_one_child_in_same_queue) {
    ph *h = setup(major);
    cJSON *t = one_child_flow(h, "q", "q", NULL);
    cr_assert(majors_speak(h, major));
    cr_assert_eq(count_of(h->q), 2);
    drain(h);
    cr_assert_eq(count_of(h->q), 0);
    cr_assert(gone(h->q, nid(t, "")));
    cJSON_Delete(t);
    ph_end(h);
}

/* Fails the first job it gets, completes the others after 10 ms. */
static void fail_first(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!h->user) {
        h->user = h;
        ph_fail(h, job, "failed first", 0);
    } else {
        ph_complete_in(h, job, 10, "null");
    }
}

/* The first child fails, so the parent keeps one pending child and waits. */
static cJSON *flow_with_a_failed_child(ph *h) {
    h->proc = fail_first;
    ph_worker(h, NULL);
    cJSON *t = three_children_flow(h, "q", "q");
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1 && h->n_completed == 2), "%d failed, %d completed", h->n_failed,
              h->n_completed);
    cr_assert_str_eq(state_of(h->q, nid(t, "")), "waiting-children");
    return t;
}

/* node: "[Cleaner > when creating a flow > when parent belongs to same queue > when parent has only 1 pending child in the same queue] deletes parent and its dependency keys" */
BOTH_MAJORS(clean_failed_last_pending_child) {
    ph *h = setup(major);
    cJSON *t = flow_with_a_failed_child(h);
    cr_assert(majors_speak(h, major));
    clean(h, "failed", 1);
    cr_assert_eq(count_state(h->q, "completed"), 2);
    cr_assert_str_eq(state_of(h->q, nid(t, "")), "unknown", "the parent went with its pending child");
    char key[256];
    snprintf(key, sizeof key, "%s:dependencies", job_key(h, "q", nid(t, "")));
    cr_assert_eq(ph_icmd("EXISTS %s", key), 0);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[Obliterate (redis-only) > when creating a flow > when parent belongs to same queue > when parent has only 1 pending child in the same queue] obliterates a queue with jobs and its dependency keys" */
BOTH_MAJORS(obliterate_flow_with_failed_child) {
    ph *h = setup(major);
    cJSON *t = flow_with_a_failed_child(h);
    cr_assert(majors_speak(h, major));
    ph_close_worker(h, 0, false);
    obliterate(h);
    cr_assert_eq(keys_of(h, "q"), 0);
    cJSON_Delete(t);
    ph_end(h);
}

static void complete_in_20(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 20, "null");
}

/* node: "[Cleaner > when creating a flow > when parent belongs to same queue > when parent has all processed children in the same queue > when parent completes] deletes parent and its dependency keys" */
BOTH_MAJORS(clean_completed_flow) {
    ph *h = setup(major);
    h->proc = complete_in_20;
    ph_worker(h, NULL);
    cJSON *t = three_children_flow(h, "q", "q");
    cr_assert(majors_speak(h, major));
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4), "%d completed", h->n_completed);
    PH_RUN_FOR(h, 100);
    clean(h, "completed", 4);
    cr_assert_eq(count_of(h->q), 0);
    cr_assert_eq(count_state(h->q, "completed"), 0);
    char key[256];
    snprintf(key, sizeof key, "%s:processed", job_key(h, "q", nid(t, "")));
    cr_assert_eq(ph_icmd("EXISTS %s", key), 0, "the parent's processed children went with it");
    cJSON_Delete(t);
    ph_end(h);
}

/* Fails the job whose data has idx 3 (the parent), completes the others. */
static void fail_idx3(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (strstr(bullc_job_data(job), "\"idx\":3"))
        ph_fail(h, job, "error", 0);
    else
        ph_complete_in(h, job, 10, "null");
}

/* node: "[Cleaner > when creating a flow > when parent belongs to same queue > when parent has all processed children in the same queue > when parent fails] deletes parent dependencies and keeps parent" */
BOTH_MAJORS(clean_completed_children_of_failed_parent) {
    ph *h = setup(major);
    h->proc = fail_idx3;
    ph_worker(h, NULL);
    cJSON *t = add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"q\",\"data\":{\"idx\":3},\"children\":["
                           "{\"name\":\"child-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"q\"},"
                           "{\"name\":\"child-job\",\"data\":{\"idx\":1,\"foo\":\"baz\"},\"queueName\":\"q\"},"
                           "{\"name\":\"child-job\",\"data\":{\"idx\":2,\"foo\":\"qux\"},\"queueName\":\"q\"}]}");
    cr_assert(majors_speak(h, major));
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1), "%d failed", h->n_failed);
    clean(h, "completed", 3);
    cr_assert_str_eq(state_of(h->q, nid(t, "")), "failed");
    cr_assert(!gone(h->q, nid(t, "")), "the failed parent stays");
    cr_assert_eq(count_state(h->q, "completed"), 0);
    cJSON_Delete(t);
    ph_end(h);
}

/* ---- pending children in another queue ------------------------------------------- */

/* node: "[Cleaner > when creating a flow > when parent belongs to same queue > when parent has pending children in different queue] keeps parent in waiting-children" */
BOTH_MAJORS(clean_keeps_parent_of_other_queue_child) {
    ph *h = setup(major);
    cJSON *t = one_child_flow(h, "q", "other", NULL);
    cr_assert(majors_speak(h, major));
    cr_assert_eq(count_of(h->q), 1);
    clean(h, "wait", 0);
    cr_assert_eq(count_of(h->q), 1);
    cr_assert_str_eq(state_of(h->q, nid(t, "")), "waiting-children");
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[Obliterate (redis-only) > when creating a flow > when parent belongs to same queue > when parent has pending children in different queue] keeps parent in waiting-children" */
BOTH_MAJORS(obliterate_keeps_parent_of_other_queue_child) {
    ph *h = setup(major);
    cJSON *t = one_child_flow(h, "q", "other", NULL);
    cr_assert(majors_speak(h, major));
    cr_assert_eq(count_of(h->q), 1);
    obliterate(h);
    /* the parent's hash, its dependencies and the waiting-children set */
    cr_assert_eq(keys_of(h, "q"), 3);
    cr_assert_eq(count_of(h->q), 1);
    cr_assert_str_eq(state_of(h->q, nid(t, "")), "waiting-children");
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "[queues > .drain > when having a flow > when parent belongs to same queue > when parent has pending children in different queue] keeps parent in waiting-children" */
BOTH_MAJORS(drain_keeps_parent_of_other_queue_child) {
    ph *h = setup(major);
    cJSON *t = one_child_flow(h, "q", "other", NULL);
    cr_assert(majors_speak(h, major));
    cr_assert_eq(count_of(h->q), 1);
    drain(h);
    cr_assert_eq(count_of(h->q), 1);
    cr_assert_eq(count_state(h->q, "waiting-children"), 1);
    cJSON_Delete(t);
    ph_end(h);
}

/* ---- the parent in another queue -------------------------------------------------- */

enum removal { CLEAN_WAIT, CLEAN_PRIORITIZED, OBLITERATE, DRAIN };

/* A parent on "other" with three children (or one, with `child_opts`) on
 * "q", the children removed by `how`: the parent moves to wait, the
 * children are gone, none failed. */
static void parent_elsewhere(int major, bool three, const char *child_opts, enum removal how) {
    ph *h = setup(major);
    bullc_queue *pq = tu_queue("other", h->prefix);
    cJSON *t = three ? three_children_flow(h, "other", "q") : one_child_flow(h, "other", "q", child_opts);
    cr_assert(majors_speak(h, major));
    cr_assert_eq(count_of(h->q), three ? 3 : 1);
    long long events = ph_icmd("XLEN %s:other:events", h->prefix);
    if (how == CLEAN_WAIT) clean(h, "wait", 3);
    if (how == CLEAN_PRIORITIZED) {
        cr_assert_eq(count_state(h->q, "prioritized"), 1);
        clean(h, "prioritized", 1);
    }
    if (how == OBLITERATE) {
        obliterate(h);
        cr_assert_eq(keys_of(h, "q"), 0);
        /* Node counts the parent's added and waiting-children events and no
         * other: obliterate moves the parent to wait without an event */
        cr_assert_eq(events, 2);
        cr_assert_eq(ph_icmd("XLEN %s:other:events", h->prefix), 2);
    }
    if (how == DRAIN) drain(h);
    cr_assert_eq(count_of(h->q), 0);
    cr_assert_eq(count_state(h->q, "failed"), 0, "the children were removed, not failed");
    cr_assert_eq(count_state(pq, "wait"), 1, "the parent moved to wait");
    cr_assert_str_eq(state_of(pq, nid(t, "")), "waiting");
    cJSON_Delete(t);
    bullc_queue_free(pq);
    ph_end(h);
}

/* node: "[Cleaner > when creating a flow > when parent belongs to different queue > when parent has more than 1 pending children] deletes each children until trying to move parent to wait" */
BOTH_MAJORS(clean_children_releases_parent_elsewhere) { parent_elsewhere(major, true, NULL, CLEAN_WAIT); }

/* node: "[Cleaner > when creating a flow > when parent belongs to different queue > when parent has only 1 pending children] moves parent to wait to try to process it" */
BOTH_MAJORS(clean_prioritized_child_releases_parent_elsewhere) {
    parent_elsewhere(major, false, "{\"priority\":1}", CLEAN_PRIORITIZED);
}

/* node: "[Obliterate (redis-only) > when creating a flow > when parent belongs to different queue > when parent has more than 1 pending children] deletes each children until trying to move parent to wait" */
BOTH_MAJORS(obliterate_children_releases_parent_elsewhere) { parent_elsewhere(major, true, NULL, OBLITERATE); }

/* node: "[Obliterate (redis-only) > when creating a flow > when parent belongs to different queue > when parent has only 1 pending children] moves parent to wait to try to process it" */
BOTH_MAJORS(obliterate_child_releases_parent_elsewhere) { parent_elsewhere(major, false, NULL, OBLITERATE); }

/* node: "[queues > .drain > when having a flow > when parent belongs to different queue > when parent has more than 1 pending children] deletes each children until trying to move parent to wait" */
BOTH_MAJORS(drain_children_releases_parent_elsewhere) { parent_elsewhere(major, true, NULL, DRAIN); }

/* node: "[queues > .drain > when having a flow > when parent belongs to different queue > when parent has only 1 pending children] moves parent to wait to try to process it" */
BOTH_MAJORS(drain_child_releases_parent_elsewhere) { parent_elsewhere(major, false, NULL, DRAIN); }

/* ---- beside a job scheduler ------------------------------------------------------ */

static void fail_in_100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail_in(h, job, 100, "It failed", 0);
}
static void complete_in_100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, "null");
}

/* Two jobs and a scheduler's first iteration finish; clean takes the three,
 * the scheduler's next iteration stays delayed. */
static void clean_beside_scheduler(int major, bool fail, const char *state) {
    ph *h = setup(major);
    h->proc = fail ? fail_in_100 : complete_in_100;
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    ph_add(h, "test", "{\"some\":\"data\"}", NULL);
    UPSERT(h, "test-scheduler1", every(5000));
    cr_assert(majors_speak(h, major));
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, (fail ? h->n_failed : h->n_completed) == 3), "%d failed, %d completed", h->n_failed,
              h->n_completed);
    PH_RUN_FOR(h, 50);
    clean(h, state, 3);
    cr_assert_eq(count_of(h->q), 1, "the scheduler's next iteration");
    cr_assert_eq(count_state(h->q, "delayed"), 1);
    ph_end(h);
}

/* node: "[when job scheduler is present] should clean all failed jobs" */
BOTH_MAJORS(clean_failed_beside_scheduler) { clean_beside_scheduler(major, true, "failed"); }

/* node: "[when job scheduler is present] should clean all completed jobs" */
BOTH_MAJORS(clean_completed_beside_scheduler) { clean_beside_scheduler(major, false, "completed"); }

/* node: "[Obliterate (redis-only)] should remove job schedulers" */
BOTH_MAJORS(obliterate_removes_schedulers) {
    ph *h = setup(major);
    UPSERT(h, "test-scheduler", every(1000));
    cr_assert(majors_speak(h, major));
    cJSON *s = schedulers(h);
    cr_assert_eq(cJSON_GetArraySize(s), 1);
    cJSON_Delete(s);
    obliterate(h);
    cr_assert_eq(keys_of(h, "q"), 0);
    ph_end(h);
}

/* ---- a child added at run time fails while its parent is active ------------------- */

typedef struct runtime {
    char parent[64];
    bool cleaned, parent_exists;
    const char *parent_state;
    int completed_after;
} runtime;

/* The parent adds a child (removeDependencyOnFailure) and works on for a
 * second, as Node's Step.Initial does; the child fails after 100 ms. */
static void parent_or_child(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_name(job), "child")) {
        ph_fail_in(h, job, 100, "forced child error", 0);
        return;
    }
    char opts[256];
    snprintf(opts, sizeof opts, "{\"parent\":{\"id\":\"%s\",\"queue\":\"%s\"},\"removeDependencyOnFailure\":true}",
             bullc_job_id(job), bullc_job_queue_qualified_name(job));
    ph_add(h, "child", "{\"foo\":\"bar\"}", opts);
    ph_complete_in(h, job, 1000, "3");
}

/* Cleans the failed jobs as the child's failure is reported, as Node's
 * 'failed' listener does, and looks at the parent then. */
static void clean_on_failed(ph *h, ph_wev *e) {
    (void)e;
    runtime *r = h->user;
    if (r->cleaned) return;
    r->cleaned = true;
    clean(h, "failed", 1);
    r->parent_exists = ph_job_exists(h, r->parent);
    r->parent_state = ph_state(h, r->parent);
    r->completed_after = count_state(h->q, "completed");
}

/* node: "[when creating children at runtime and call clean when parent is active] does not delete parent record" */
BOTH_MAJORS(clean_runtime_child_of_active_parent) {
    ph *h = setup(major);
    runtime r = {0};
    h->user = &r;
    h->proc = parent_or_child;
    h->on_failed = clean_on_failed;
    const char *id = ph_add(h, "parent", "{\"step\":0}", "{\"attempts\":3,\"backoff\":1000}");
    snprintf(r.parent, sizeof r.parent, "%s", id);
    cr_assert(majors_speak(h, major));
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 2);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 10000, r.cleaned), "the child did not fail");
    cr_assert(r.parent_exists, "the parent's record stays");
    cr_assert_str_eq(r.parent_state, "active");
    cr_assert_eq(r.completed_after, 0);
    ph_end(h);
}

/* ---- BullMQ 2's priority set ------------------------------------------------------- */

/* node: "[queues (redis-only) > .removeDeprecatedPriorityKey] removes old priority key" */
BOTH_MAJORS(remove_deprecated_priority_key) {
    ph *h = setup(major);
    ph_vcmd("ZADD %s 1 a 2 b", ph_key(h, "priority"));
    cr_assert_eq(ph_icmd("ZCARD %s", ph_key(h, "priority")), 2);
    int64_t removed = -1;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_deprecated_priority_key(h->q, &removed, &err), 0, "%s", err.message);
    cr_assert_eq(removed, 1);
    cr_assert_eq(ph_icmd("ZCARD %s", ph_key(h, "priority")), 0);
    cr_assert_eq(bullc_queue_remove_deprecated_priority_key(h->q, &removed, &err), 0, "%s", err.message);
    cr_assert_eq(removed, 0, "nothing left to remove");
    cr_assert(majors_speak(h, major));
    ph_end(h);
}
