/* SPDX-License-Identifier: MIT */
/* Node BullMQ's flow.test.ts step-job cases where a processor chains a flow
 * at runtime: it adds children under its own job (a FlowProducer called in
 * the processor), stores its next step with updateData, and then completes,
 * fails, moves to delayed, is rate limited or moves to waiting-children,
 * while a child with failParentOnFailure fails. Workers: 0 on "q" (the
 * parent, whose events the ph's listener records), 1 on "children", 2 on
 * "grandchildren". */
#include "test_flow_util.h"

#include <time.h>

TestSuite(flow_steps, .timeout = 90);

enum { S_INITIAL, S_SECOND, S_THIRD, S_FINISH };

/* What the step processor of one queue does at its second step. */
enum {
    SECOND_NEXT,      /* stores step 3 and goes on */
    SECOND_FINISH,    /* stores step 4 and completes (its children still pending) */
    SECOND_THROW,     /* stores step 3 and fails "fail" */
    SECOND_DELAY,     /* moves to delayed 5 s ahead, stores step 3, DelayedError */
    SECOND_RATELIMIT, /* rate limits the queue 2 s, stores step 3, RateLimitError */
    SECOND_WAIT       /* moves to waiting-children at once, as the third step does */
};

typedef struct step_cfg {
    const char *flow;    /* the flow added at the first step; %s %s: the job's id and queue key */
    int second;          /* SECOND_* */
    int64_t pause_ms;    /* before the second step's work (Node's delay()) */
    int64_t third_pause; /* before the third step's moveToWaitingChildren */
} step_cfg;

static step_cfg cfgs[3];
static char child_ids[3][64]; /* the root id of the flow each queue's processor added */
static const char *const QUEUES[] = {"q", "children", "grandchildren"};
static int queue_of[3]; /* worker index -> index in QUEUES */

typedef struct step_run {
    ph *h;
    bullc_job *job;
    int widx, qi, step; /* the worker and its queue's index in QUEUES */
    bool paused;        /* the current step's pause is over */
} step_run;

/* ms since the epoch, as the moves take them (tu_now_ms is monotonic) */
static int64_t epoch_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_step(ph *h, void *arg);

static void data_stored(bullc_job *job, int code, const char *message, void *data) {
    step_run *r = data;
    (void)job;
    cr_assert_eq(code, 0, "updateData: %s", message ? message : "");
    run_step(r->h, r);
}

/* Stores {"step":<step>} as the job's data, then runs that step. */
static void store_step(step_run *r, int step) {
    char d[24];
    snprintf(d, sizeof d, "{\"step\":%d}", step);
    r->step = step;
    r->paused = false;
    cr_assert_eq(bullc_job_update_data(r->job, d, data_stored, r), 0);
}

static void finish(step_run *r, const char *fail_msg, int flags) {
    if (fail_msg || flags)
        ph_fail(r->h, r->job, fail_msg, flags);
    else
        ph_complete(r->h, r->job, "3");
    free(r);
}

static void moved_to_waiting_children(bullc_job *job, int code, const char *message, void *data) {
    step_run *r = data;
    (void)job;
    if (code == 1) return finish(r, NULL, BULLC_FAIL_MOVED);
    if (code < 0) return finish(r, message, 0); /* the move's error, thrown by Node's processor */
    r->step = S_FINISH;
    finish(r, NULL, 0);
}

static void moved_to_delayed(bullc_job *job, int code, const char *message, void *data) {
    step_run *r = data;
    (void)job;
    cr_assert_eq(code, 1, "moveToDelayed: %s", message ? message : "");
    /* Node stores the next step after the move and then throws DelayedError */
    char d[24];
    snprintf(d, sizeof d, "{\"step\":%d}", S_THIRD);
    cr_assert_eq(bullc_job_update_data(r->job, d, NULL, NULL), 0);
    finish(r, NULL, BULLC_FAIL_MOVED);
}

static void add_children(step_run *r) {
    const step_cfg *c = &cfgs[r->qi];
    char queue_key[128], flow[1024];
    snprintf(queue_key, sizeof queue_key, "%s:%s", r->h->prefix, QUEUES[r->qi]);
    snprintf(flow, sizeof flow, c->flow, bullc_job_id(r->job), queue_key);
    cJSON *tree = add_flow(r->h, flow);
    snprintf(child_ids[r->qi], sizeof child_ids[r->qi], "%s", nid(tree, ""));
    cJSON_Delete(tree);
}

static void run_step(ph *h, void *arg) {
    step_run *r = arg;
    const step_cfg *c = &cfgs[r->qi];
    switch (r->step) {
    case S_INITIAL:
        add_children(r);
        return store_step(r, S_SECOND);
    case S_SECOND:
        if (c->pause_ms > 0 && !r->paused) {
            r->paused = true;
            return ph_call_in(h, c->pause_ms, run_step, r);
        }
        switch (c->second) {
        case SECOND_FINISH:
            r->step = S_FINISH;
            return store_step(r, S_FINISH);
        case SECOND_THROW: {
            char d[24];
            snprintf(d, sizeof d, "{\"step\":%d}", S_THIRD);
            cr_assert_eq(bullc_job_update_data(r->job, d, NULL, NULL), 0);
            return finish(r, "fail", 0);
        }
        case SECOND_DELAY:
            cr_assert_eq(bullc_job_move_to_delayed(r->job, epoch_ms() + 5000, moved_to_delayed, r), 0);
            return;
        case SECOND_RATELIMIT: {
            cr_assert_eq(bullc_worker_rate_limit(h->w[r->widx], 2000), 0);
            char d[24];
            snprintf(d, sizeof d, "{\"step\":%d}", S_THIRD);
            cr_assert_eq(bullc_job_update_data(r->job, d, NULL, NULL), 0);
            return finish(r, "rate limited", BULLC_FAIL_RATE_LIMITED);
        }
        case SECOND_WAIT:
            r->step = S_THIRD, r->paused = false;
            return run_step(h, r);
        default:
            return store_step(r, S_THIRD);
        }
    case S_THIRD:
        if (c->third_pause > 0 && !r->paused) {
            r->paused = true;
            return ph_call_in(h, c->third_pause, run_step, r);
        }
        cr_assert_eq(bullc_job_move_to_waiting_children(r->job, moved_to_waiting_children, r), 0);
        return;
    default:
        finish(r, NULL, 0);
    }
}

/* Queues with a step configuration run the step job; "children" jobs
 * complete; "grandchildren" jobs fail ("fail", after `grand_fail_ms`). */
static int64_t grand_fail_ms;
static void process(ph *h, bullc_job *job, int widx) {
    int qi = queue_of[widx];
    if (cfgs[qi].flow) {
        step_run *r = calloc(1, sizeof *r);
        r->h = h, r->job = job, r->widx = widx, r->qi = qi;
        cJSON *d = cJSON_Parse(bullc_job_data(job));
        r->step = cJSON_GetObjectItem(d, "step") ? cJSON_GetObjectItem(d, "step")->valueint : S_INITIAL;
        cJSON_Delete(d);
        return run_step(h, r);
    }
    if (qi == 2) return ph_fail_in(h, job, grand_fail_ms, "fail", 0);
    ph_complete(h, job, NULL);
}

/* The ph (listening to "q"), its workers (on the queues of QUEUES whose bit
 * is set in `workers`), and the job added to "q"; speaking BullMQ 5 when
 * `major` is 5 (the queues' meta written as a Node 5.81.5 Queue does). */
static ph *start_as(int major, unsigned workers, const char *job_opts, const char **id) {
    ph *h = ph_new("q");
    for (int i = 0; i < 3 && major == 5; i++)
        freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix, QUEUES[i]));
    memset(child_ids, 0, sizeof child_ids);
    h->proc = process;
    ph_qe(h);
    for (int i = 0; i < 3; i++)
        if (workers & (1u << i)) queue_of[h->nw] = i, worker_on(h, QUEUES[i]);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == h->nw && h->qe_ready));
    *id = ph_add(h, "test", "{\"step\":0}", job_opts);
    return h;
}
static ph *start(unsigned workers, const char *job_opts, const char **id) { return start_as(0, workers, job_opts, id); }

/* The failed event of `id` on "q": prev active, `reason`. */
static void assert_failed_event(ph *h, const char *id, const char *reason) {
    cr_assert(PH_WAIT(h, 20000, ph_qe_count(h, "failed", id) >= 1), "no failed event for %s", id);
    cJSON *e = NULL;
    for (int i = 0; (e = ph_qe_get(h, "failed", i)); i++)
        if (!strcmp(ph_qe_field(e, "jobId"), id)) break;
    cr_assert_str_eq(ph_qe_field(e, "prev"), "active");
    cr_assert_str_eq(ph_qe_field(e, "failedReason"), reason);
}

#define CHILD_WITH_PARENT(opts)                                                                           \
    "{\"name\":\"child-job\",\"queueName\":\"children\",\"data\":{},\"opts\":{\"parent\":{\"id\":\"%s\"," \
    "\"queue\":\"%s\"}" opts "}}"
#define CHILD_AND_GRANDCHILD                                                                                     \
    "{\"name\":\"child-job\",\"queueName\":\"children\",\"data\":{},\"children\":[{\"name\":\"grandchild-job\"," \
    "\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"grandchildren\",\"opts\":{\"failParentOnFailure\":"    \
    "true}}],\"opts\":{\"failParentOnFailure\":true,\"parent\":{\"id\":\"%s\",\"queue\":\"%s\"}}}"

/* A step job completing while its child waits: the completion is refused
 * and the worker fails the job with the script's error, as Node's does
 * (speaking `major`: the queues' meta written as a Node 5.81.5 Queue
 * writes it for 5). */
static void pending_dependencies(const char *child_opts, int64_t pause_ms, int major) {
    memset(cfgs, 0, sizeof cfgs);
    char flow[512];
    snprintf(flow, sizeof flow, CHILD_WITH_PARENT("%s"), "%s", "%s", child_opts);
    cfgs[0] = (step_cfg){.flow = flow, .second = SECOND_FINISH, .pause_ms = pause_ms};
    const char *id;
    ph *h = start_as(major, 1u, NULL, &id);
    cr_assert_eq(bullc_worker_bullmq_version(h->w[0]), major);
    char reason[128];
    snprintf(reason, sizeof reason, "Job %s has pending dependencies. moveToFinished", id);
    assert_failed_event(h, id, reason);
    ph_end(h);
}

/* No worker serves "children" (the child stays waiting), as in Node's cases. */
/* node: "should fail parent with pending dependencies error" */
Test(flow_steps, completing_with_pending_children_fails) {
    grand_fail_ms = 0;
    pending_dependencies("", 0, 6);
}
Test(flow_steps, completing_with_pending_children_fails_bullmq5) {
    grand_fail_ms = 0;
    pending_dependencies("", 0, 5);
}

/* node: "[when parent has pending children to be processed when trying to move it to completed > when parent has pending children to be processed when trying to move it to completed] should fail parent with pending dependencies error" */
Test(flow_steps, completing_with_pending_fail_parent_children_fails) {
    grand_fail_ms = 0;
    pending_dependencies(",\"failParentOnFailure\":true", 100, 6);
}

/* Job `id` of "q" has one failed child and no other (Node's getDependenciesCount). */
static void assert_one_failed_child(ph *h, const char *id) {
    int64_t counts[4];
    cr_assert_eq(bullc_queue_get_dependencies_count(h->q, id, counts, NULL), 0);
    cr_assert(counts[0] == 0 && counts[1] == 0 && counts[2] == 1 && counts[3] == 0,
              "processed %lld unprocessed %lld failed %lld ignored %lld", (long long)counts[0], (long long)counts[1],
              (long long)counts[2], (long long)counts[3]);
}

/* node: "[when parent has another parent] should fail parent and grandparent when trying to move it to waiting children" */
Test(flow_steps, failed_grandchild_fails_parent_and_grandparent_at_waiting_children) {
    memset(cfgs, 0, sizeof cfgs);
    grand_fail_ms = 0;
    /* The grandparent asks after its child failed (Node's two 1000 ms waits
     * race; a grandparent already waiting for its children is released with
     * the deferred failure at once). */
    cfgs[0] = (step_cfg){
        .flow = CHILD_WITH_PARENT(",\"failParentOnFailure\":true"), .second = SECOND_WAIT, .third_pause = 2500};
    cfgs[1] = (step_cfg){.flow = "{\"name\":\"grandchild-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":"
                                 "\"grandchildren\",\"opts\":{\"parent\":{\"id\":\"%s\",\"queue\":\"%s\"},"
                                 "\"failParentOnFailure\":true}}",
                         .second = SECOND_WAIT,
                         .third_pause = 1000};
    const char *id;
    ph *h = start(7u, "{\"attempts\":3,\"backoff\":1000}", &id);
    /* the worker's failed event: moveToWaitingChildren refused, as Node's */
    char refused[160];
    snprintf(refused, sizeof refused,
             "Cannot complete job %s because it has at least one failed child. moveToWaitingChildren", id);
    cr_assert(PH_WAIT(h, 20000, ph_wcount(h, 'f', id) >= 1), "no failed event of the worker");
    const ph_wev *first = NULL;
    for (int i = 0; i < h->nwev && !first; i++)
        if (h->wev[i].kind == 'f' && h->wev[i].widx == 0) first = &h->wev[i];
    cr_assert_str_eq(first->id, id);
    cr_assert_str_eq(first->text, refused);
    /* BullMQ 6.7.0's scripts (newer than the 6.2.0 tests) also store the
     * child's failure on the active grandparent as its deferred failure
     * (moveChildFromDependenciesIfNeeded), which ends its retry at once:
     * the queue's failed event names the child, as with Node 6.7.0 */
    char deferred[160];
    snprintf(deferred, sizeof deferred, "child %s failed", job_key(h, "children", child_ids[0]));
    assert_failed_event(h, id, deferred);
    assert_one_failed_child(h, id);
    bullc_queue *cq = tu_queue("children", h->prefix);
    char child_reason[160];
    snprintf(child_reason, sizeof child_reason,
             "Cannot complete job %s because it has at least one failed child. moveToWaitingChildren", child_ids[0]);
    cJSON *child = ph_job_in(cq, child_ids[0]);
    cr_assert_str_eq(cJSON_GetObjectItem(child, "failedReason")->valuestring, child_reason);
    cJSON_Delete(child);
    bullc_queue_free(cq);
    ph_end(h);
}

/* node: "[when parent failed before moving to waiting-children] should fail parent with last error" */
Test(flow_steps, parent_failing_before_waiting_children_keeps_its_error) {
    memset(cfgs, 0, sizeof cfgs);
    grand_fail_ms = 0;
    cfgs[0] = (step_cfg){.flow = CHILD_AND_GRANDCHILD, .second = SECOND_THROW};
    const char *id;
    ph *h = start(1u | 4u, NULL, &id);
    assert_failed_event(h, id, "fail");
    cr_assert_str_eq(state_of(h->q, id), "failed");
    ph_end(h);
}

/* A failed grandchild fails its parent, which fails the step job (with
 * `job_opts`) while its second step `second` keeps it out of active. */
static void fail_parent_out_of_active(int second, const char *job_opts) {
    memset(cfgs, 0, sizeof cfgs);
    grand_fail_ms = 500;
    cfgs[0] = (step_cfg){.flow = CHILD_AND_GRANDCHILD, .second = second};
    const char *id;
    ph *h = start(7u, job_opts, &id);
    cr_assert(PH_WAIT(h, 10000, child_ids[0][0]), "the child was added");
    char reason[160];
    snprintf(reason, sizeof reason, "child %s failed", job_key(h, "children", child_ids[0]));
    assert_failed_event(h, id, reason);
    ph_end(h);
}

/* node: "[when failParentOnFailure option is provided > when parent is in delayed state] should move parent to failed when child is moved to failed" */
Test(flow_steps, delayed_step_job_fails_with_its_child) {
    fail_parent_out_of_active(SECOND_DELAY, "{\"attempts\":3,\"backoff\":1000}");
}

/* node: "[when failParentOnFailure option is provided > when parent is in prioritized state] should move parent to failed when child is moved to failed" */
Test(flow_steps, prioritized_step_job_fails_with_its_child) {
    fail_parent_out_of_active(SECOND_RATELIMIT, "{\"priority\":10}");
}
