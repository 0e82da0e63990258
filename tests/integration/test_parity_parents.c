/* SPDX-License-Identifier: MIT */
/* Node BullMQ's cases about a job's parent seen from the job and queue side
 * (job.test.ts, job.redis.test.ts, bulk.test.ts, events.test.ts,
 * queue.test.ts): a missing parent refused, a parent's processed hash
 * removed with it, a parent not completed before its children, children
 * added in bulk, a parent's waiting-children and waiting events; and those
 * of worker.test.ts and worker.redis.test.ts where a parent moves itself to
 * waiting-children (taken by hand, or a step job adding its children at run
 * time). Each case runs speaking BullMQ 6 (the marked test) and 5 (its twin,
 * on queues a Node 5.81.5 Queue made). */
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

/* ---- a parent taken by hand moved to waiting-children -------------------------------- */

typedef struct move_answer {
    int code;
    char msg[256];
    bool done;
} move_answer;
static void move_answered(bullc_job *job, int code, const char *message, void *data) {
    (void)job;
    move_answer *m = data;
    m->code = code;
    snprintf(m->msg, sizeof m->msg, "%s", message ? message : "");
    m->done = true;
}
/* Node's job.moveToWaitingChildren(token) with the job's own token (bullc
 * has no opts.child: the move checks every pending child). */
static move_answer move_to_waiting_children(ph *h, bullc_job *job) {
    move_answer m = {0};
    cr_assert_eq(bullc_job_move_to_waiting_children(job, move_answered, &m), 0);
    cr_assert(PH_WAIT(h, 5000, m.done));
    return m;
}

/* Node's getDependencies() of `pid`: {"processed": {...}, "unprocessed": [...], ...}. */
static cJSON *dependencies(bullc_queue *pq, const char *pid, const char *opts) {
    char *out = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies(pq, pid, opts, &out, &err), 0, "%s", err.message);
    cJSON *d = cJSON_Parse(out);
    bullc_free(out);
    return d;
}
static int unprocessed(const cJSON *d) { return cJSON_GetArraySize(cJSON_GetObjectItem(d, "unprocessed")); }

/* Node's Job.create(parentQueue, ...) then parentWorker.getNextJob(parentToken):
 * the parent, active, with its worker and id. */
static bullc_job *parent_taken(ph *h, bullc_queue *pq, bullc_worker **pw, const char **pid) {
    *pw = manual_on(h, "parents");
    *pid = add_parent(h, pq);
    bullc_job *parent = ph_next_job(h, *pw, "parent-token");
    cr_assert_str_eq(state_of(pq, *pid), "active");
    return parent;
}

/* Node moves it again with its token, whose lock the move deleted, then with
 * token "0", which skips the lock check: bullc's job keeps its token, so the
 * test puts the lock back for the second refusal. */
/* node: "[workers > Manually process jobs > when move job to waiting-children > when job is not in active state] throws an error" */
BOTH_MAJORS(waiting_children_move_refused_when_not_active) {
    ph *h = setup(major);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    bullc_worker *pw;
    const char *pid;
    bullc_job *parent = parent_taken(h, pq, &pw, &pid);
    bullc_worker *cw = manual_on(h, "q");
    ph_add(h, "testJob1", "{\"idx\":0,\"bar\":\"something\"}", parent_opts(h, pid));
    cJSON *d = dependencies(pq, pid, NULL);
    cr_assert_eq(unprocessed(d), 1);
    cJSON_Delete(d);
    bullc_job *child = ph_next_job(h, cw, "child-token");
    cr_assert_str_eq(ph_state(h, bullc_job_id(child)), "active");
    cr_assert_eq(move_to_waiting_children(h, parent).code, 1);
    cr_assert_str_eq(state_of(pq, pid), "waiting-children");
    cr_assert_eq(count_in(pq, "waiting-children"), 1);
    move_answer m = move_to_waiting_children(h, parent);
    char want[128];
    snprintf(want, sizeof want, "Missing lock for job %s. moveToWaitingChildren", pid);
    cr_assert_eq(m.code, BULLC_ELOCK, "%d %s", m.code, m.msg);
    cr_assert_str_eq(m.msg, want);
    char lock[256];
    snprintf(lock, sizeof lock, "%s:lock", job_key(h, "parents", pid));
    ph_vcmd("SET %s parent-token", lock);
    m = move_to_waiting_children(h, parent);
    snprintf(want, sizeof want, "Job %s is not in the active state. moveToWaitingChildren", pid);
    cr_assert_eq(m.code, BULLC_ESTATE, "%d %s", m.code, m.msg);
    cr_assert_str_eq(m.msg, want);
    ph_vcmd("DEL %s", lock);
    cr_assert_str_eq(state_of(pq, pid), "waiting-children");
    cr_assert_eq(bullc_worker_bullmq_version(pw), major);
    cr_assert_eq(bullc_job_fail(parent, NULL, BULLC_FAIL_MOVED), 0);
    cr_assert_eq(bullc_job_complete(child, NULL), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(state_of(pq, pid), "waiting")));
    bullc_queue_free(pq);
    ph_end(h);
}

/* Completes a child taken by hand and waits until its parent has its result. */
static void complete_child(ph *h, bullc_queue *pq, const char *pid, bullc_job *child, const char *result,
                           int processed) {
    cr_assert_str_eq(ph_state(h, bullc_job_id(child)), "active");
    cr_assert_eq(bullc_job_complete(child, result), 0);
    int64_t counts[4] = {0};
    cr_assert(PH_WAIT(h, 5000, !bullc_queue_get_dependencies_count(pq, pid, counts, NULL) && counts[0] == processed));
}

/* node: "[workers (redis-only) > Manually process jobs > when move job to waiting-children] allows to move parent job to waiting-children" */
BOTH_MAJORS(parent_taken_by_hand_waits_for_its_children) {
    ph *h = setup(major);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    bullc_worker *pw;
    const char *pid;
    bullc_job *parent = parent_taken(h, pq, &pw, &pid);
    bullc_worker *cw = manual_on(h, "q");
    const char *values[] = {"{\"idx\":0,\"bar\":\"something\"}", "{\"idx\":1,\"baz\":\"something\"}",
                            "{\"idx\":2,\"qux\":\"something\"}"};
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "testJob%d", i + 1);
        ph_add(h, name, values[i], parent_opts(h, pid));
    }
    cJSON *d = dependencies(pq, pid, NULL);
    cr_assert_eq(unprocessed(d), 3);
    cJSON_Delete(d);
    bullc_job *child[3];
    for (int i = 0; i < 3; i++) child[i] = ph_next_job(h, cw, "child-token");
    char key1[256];
    snprintf(key1, sizeof key1, "%s:q:%s", h->prefix, bullc_job_id(child[0]));
    complete_child(h, pq, pid, child[0], "\"return value1\"", 1);
    d = dependencies(pq, pid, NULL);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "processed"), key1)->valuestring, "return value1");
    cr_assert_eq(unprocessed(d), 2);
    cJSON_Delete(d);
    cr_assert_eq(move_to_waiting_children(h, parent).code, 1);
    char lock[256];
    snprintf(lock, sizeof lock, "%s:lock", job_key(h, "parents", pid));
    cr_assert_eq(ph_icmd("EXISTS %s", lock), 0, "the move gave the lock up");
    cr_assert_eq(bullc_job_fail(parent, NULL, BULLC_FAIL_MOVED), 0);
    complete_child(h, pq, pid, child[1], "\"return value2\"", 2);
    int64_t counts[4];
    cr_assert_eq(bullc_queue_get_dependencies_count(pq, pid, counts, NULL), 0);
    cr_assert(counts[0] == 2 && counts[1] == 1);
    d = dependencies(pq, pid, NULL);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "processed")), 2);
    cr_assert_eq(unprocessed(d), 1);
    cJSON_Delete(d);
    cr_assert_str_eq(state_of(pq, pid), "waiting-children");
    complete_child(h, pq, pid, child[2], "\"return value3\"", 3);
    d = dependencies(pq, pid, NULL);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "processed")), 3);
    cr_assert_eq(unprocessed(d), 0);
    cJSON_Delete(d);
    cr_assert_str_neq(state_of(pq, pid), "waiting-children");
    bullc_job *again = ph_next_job(h, pw, "parent-token2");
    cr_assert_str_eq(bullc_job_id(again), pid);
    cr_assert_eq(move_to_waiting_children(h, again).code, 0, "no child pending: it stays active");
    cr_assert_eq(bullc_job_complete(again, NULL), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(state_of(pq, pid), "completed")));
    bullc_queue_free(pq);
    ph_end(h);
}

/* `n` children of `pid` named child<i>, added in one round trip. */
static void add_children(ph *h, const char *pid, int n) {
    bullc_job_opts *o = NULL;
    bullc_error err = {0};
    bullc_job_opts_new(&o);
    cr_assert_eq(bullc_job_opts_merge_json(o, parent_opts(h, pid), &err), 0, "%s", err.message);
    bullc_bulk_job jobs[65];
    char names[65][16], data[65][48];
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "child%d", i);
        snprintf(data[i], sizeof data[i], "{\"idx\":%d,\"bar\":\"something\"}", i);
        jobs[i] = (bullc_bulk_job){.name = names[i], .data_json = data[i], .opts = o};
    }
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, (size_t)n, &err), 0, "%s", err.message);
    for (int i = 0; i < n; i++) bullc_free(jobs[i].id);
    bullc_job_opts_free(o);
}

/* One page of unprocessed children from `cursor`: their number, and the next cursor in *next. */
static int unprocessed_page(bullc_queue *pq, const char *pid, double cursor, double *next) {
    char opts[96];
    snprintf(opts, sizeof opts, "{\"unprocessed\":{\"cursor\":%.0f,\"count\":50}}", cursor);
    cJSON *d = dependencies(pq, pid, opts);
    int n = unprocessed(d);
    *next = cJSON_GetObjectItem(d, "nextUnprocessedCursor")->valuedouble;
    cJSON_Delete(d);
    return n;
}

static bool redis_7_2(void) {
    redisReply *r = ph_cmd("INFO server");
    int a = 0, b = 0;
    sscanf(strstr(r->str, "redis_version:") + strlen("redis_version:"), "%d.%d", &a, &b);
    freeReplyObject(r);
    return a * 100 + b >= 702;
}

/* The pending set is SSCANned: from Redis 7.2 its 65 short members are a
 * listpack, returned whole; before, a hash table, in pages of about 50. */
/* node: "[workers (redis-only) > Manually process jobs] should get paginated unprocessed dependencies keys" */
BOTH_MAJORS(unprocessed_dependencies_by_page) {
    ph *h = setup(major);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    bullc_worker *pw;
    const char *pid;
    bullc_job *parent = parent_taken(h, pq, &pw, &pid);
    add_children(h, pid, 65);
    double next1, next2, next3;
    int n1 = unprocessed_page(pq, pid, 0, &next1);
    if (redis_7_2()) {
        cr_assert(n1 == 65 && next1 == 0, "%d, cursor %.0f", n1, next1);
    } else {
        cr_assert(n1 >= 50 && next1 != 0, "%d, cursor %.0f", n1, next1);
    }
    int n2 = unprocessed_page(pq, pid, next1, &next2);
    if (redis_7_2())
        cr_assert_eq(n2, 65);
    else
        cr_assert_leq(n2, 15);
    cr_assert_eq(next2, 0);
    add_children(h, pid, 64);
    int n3 = unprocessed_page(pq, pid, 0, &next3);
    cr_assert(n3 >= 50 && next3 != 0, "129 children: %d, cursor %.0f", n3, next3);
    cr_assert_eq(bullc_job_complete(parent, NULL), 0); /* refused: pending dependencies */
    cr_assert(PH_WAIT(h, 5000, !strcmp(state_of(pq, pid), "failed")));
    bullc_queue_free(pq);
    ph_end(h);
}

/* ---- a step job adding children at run time and waiting for them ---------------------- */

static int waiting_children_steps;

static void step_moved(bullc_job *job, int code, const char *message, void *data) {
    ph *h = data;
    cr_assert(code == 0 || code == 1, "moveToWaitingChildren: %d %s", code, message ? message : "");
    if (code == 1) {
        ph_fail(h, job, NULL, BULLC_FAIL_MOVED); /* Node: throw new WaitingChildrenError() */
        return;
    }
    cr_assert_eq(bullc_job_update_data(job, "{\"step\":3}", NULL, NULL), 0);
    ph_complete(h, job, "3");
}

/* Node's enum Step { Initial, Second, Third, Finish }: two children added
 * (their parent named by the job's qualified name, then spelled out), then
 * one wait for them; children take 200 ms. */
static void children_step_job(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_queue_name(job), "q")) {
        ph_complete_in(h, job, 200, NULL);
        return;
    }
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    int step = (int)cJSON_GetObjectItem(d, "step")->valuedouble;
    cJSON_Delete(d);
    char opts[256];
    if (step == 0) {
        snprintf(opts, sizeof opts, "{\"parent\":{\"id\":\"%s\",\"queue\":\"%s\"}}", bullc_job_id(job),
                 bullc_job_queue_qualified_name(job));
        ph_add(h, "child-1", "{\"foo\":\"bar\"}", opts);
        cr_assert_eq(bullc_job_update_data(job, "{\"step\":1}", NULL, NULL), 0);
        step = 1;
    }
    if (step == 1) {
        ph_add(h, "child-2", "{\"foo\":\"bar\"}", parent_opts(h, bullc_job_id(job)));
        cr_assert_eq(bullc_job_update_data(job, "{\"step\":2}", NULL, NULL), 0);
    }
    waiting_children_steps++;
    cr_assert_eq(bullc_job_move_to_waiting_children(job, step_moved, h), 0);
}

/* node: "[when skip attempt option is provided as true] should wait children as one step of the parent job whithout incrementing attemptMade" */
BOTH_MAJORS(step_job_waits_for_its_children_without_an_attempt) {
    ph *h = setup(major);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    waiting_children_steps = 0;
    h->proc = children_step_job;
    worker_on(h, "q");
    worker_on(h, "parents");
    const char *pid;
    ph_add_to(h, pq, "test", "{\"step\":0}", "{\"attempts\":3,\"backoff\":1000}", &pid);
    cr_assert(PH_WAIT(h, 10000, !strcmp(state_of(pq, pid), "completed")));
    cJSON *j = ph_job_in(pq, pid);
    cr_assert_eq(cJSON_GetObjectItem(j, "returnvalue")->valuedouble, 3);
    cr_assert_eq(cJSON_GetObjectItem(j, "attemptsMade")->valuedouble, 1);
    cr_assert_eq(cJSON_GetObjectItem(j, "attemptsStarted")->valuedouble, 2);
    cJSON_Delete(j);
    cr_assert_eq(waiting_children_steps, 2);
    cr_assert_eq(h->n_failed + h->n_retried + h->n_errors, 0);
    cr_assert_eq(bullc_worker_bullmq_version(h->w[1]), major);
    bullc_queue_free(pq);
    ph_end(h);
}
