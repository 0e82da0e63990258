/* SPDX-License-Identifier: MIT */
/* Node BullMQ's deduplication.test.ts cases: deduplication ids with and
 * without ttl, extend, replace, keepLastIfActive, removing the key or the job,
 * reproduced with bullc's producer, worker and QueueEvents. Node's
 * queue.getDeduplicationJobId(id) is read as the key "<queue>:de:<id>". */
#include "test_parity_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_dedup, .timeout = 60);

/* queue.getDeduplicationJobId(id) */
static char *dedup_job_id(ph *h, const char *dedup_id) {
    char suffix[128];
    snprintf(suffix, sizeof suffix, "de:%s", dedup_id);
    redisReply *r = ph_cmd("GET %s", ph_key(h, suffix));
    char *s = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return s;
}
#define assert_dedup_job_id(h, dedup, want)                                                                        \
    do {                                                                                                           \
        char *got_ = dedup_job_id(h, dedup);                                                                       \
        cr_assert(got_ && !strcmp(got_, want), "deduplication key names %s, expected %s", got_ ? got_ : "nothing", \
                  want);                                                                                           \
        free(got_);                                                                                                \
    } while (0)

static bool dedup_job_id_exists(ph *h, const char *dedup_id) {
    char *s = dedup_job_id(h, dedup_id);
    free(s);
    return s != NULL;
}

/* Node's getJobCountByTypes() with no types: its default states. */
static int all_count(ph *h) {
    static const char *const st[] = {"active",      "completed", "delayed",         "failed",
                                     "prioritized", "waiting",   "waiting-children"};
    int n = 0;
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) n += ph_count(h, st[i]);
    return n;
}
static const char *add_dedup(ph *h, const char *data, const char *opts, int *status) {
    const char *id;
    int st = ph_add_to(h, NULL, "test", data, opts, &id);
    if (status) *status = st;
    return id;
}

static void delay100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, NULL);
}
static bullc_worker *paused_start_worker(ph *h, ph_proc_fn proc, int concurrency) {
    h->proc = proc;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, concurrency);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    return w;
}

/* ---- simple deduplication --------------------------------------------------------------- */

/* node: "emits deduplicated event" */
Test(parity_dedup, deduplicated_event) {
    ph *h = ph_new("q");
    int st;
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"jobId\":\"a1\",\"deduplication\":{\"id\":\"dedupId\"}}", &st);
    cr_assert_eq(st, 0);
    const char *id2 =
        add_dedup(h, "{\"foo\":\"bar\"}", "{\"jobId\":\"a2\",\"deduplication\":{\"id\":\"dedupId\"}}", &st);
    cr_assert_eq(st, 1, "deduplicated");
    cr_assert_str_eq(id2, "a1");
    char *s = NULL;
    cr_assert_eq(bullc_queue_get_events(h->q, "0-0", 100, &s, NULL), 0);
    cJSON *a = cJSON_Parse(s);
    bullc_free(s);
    bool found = false;
    cJSON *e;
    cJSON_ArrayForEach(e, a) {
        found |= !strcmp(ph_qe_field(e, "event"), "deduplicated") && !strcmp(ph_qe_field(e, "jobId"), "a1") &&
                 !strcmp(ph_qe_field(e, "deduplicationId"), "dedupId") &&
                 !strcmp(ph_qe_field(e, "deduplicatedJobId"), "a2");
    }
    cJSON_Delete(a);
    cr_assert(found, "a deduplicated event for a2 against a1");
    cr_assert(ph_job_exists(h, "a1"));
    cr_assert_not(ph_job_exists(h, "a2"));
    ph_end(h);
}

static void remove_dedup_key_then_100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cJSON *j = ph_job(h, bullc_job_id(job));
    cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "deduplicationId");
    cr_assert(cJSON_IsString(d));
    cr_assert_eq(bullc_queue_remove_deduplication_key(h->q, d->valuestring, NULL, NULL), 0);
    cJSON_Delete(j);
    ph_complete_in(h, job, 100, NULL);
}

/* node: "[when removing deduplication key] should stop deduplication" */
Test(parity_dedup, removing_the_key_stops_deduplication) {
    ph *h = ph_new("q");
    bullc_worker *w = paused_start_worker(h, remove_dedup_key_then_100, 1);
    bullc_worker_run(w);
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"jobId\":\"a1\",\"deduplication\":{\"id\":\"dedupId\"}}", NULL);
    PH_RUN_FOR(h, 25);
    int st;
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"jobId\":\"a2\",\"deduplication\":{\"id\":\"dedupId\"}}", &st);
    cr_assert_eq(st, 0, "added: the key was removed");
    cr_assert(PH_WAIT(h, 5000, ph_wcount(h, 'c', "a2") == 1));
    cJSON *j = ph_job(h, "a2");
    ph_assert_json(j, "deduplicationId", "\"dedupId\"");
    cJSON_Delete(j);
    ph_end(h);
}

/* ---- the job's own removal: only while the key names it ---------------------------- */

typedef struct own_removal {
    int64_t removed[2]; /* a1's, a2's answer; -1 until asked */
    int64_t after_ms;   /* how long a job works before asking */
} own_removal;

static void ask_own_removal(ph *h, void *arg) {
    bullc_job *job = arg;
    own_removal *o = h->user;
    cJSON *j = ph_job(h, bullc_job_id(job));
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "deduplicationId");
    cr_assert(cJSON_IsString(d));
    bullc_error err = {0};
    int64_t *slot = &o->removed[!strcmp(bullc_job_id(job), "a2")];
    cr_assert_eq(bullc_queue_remove_deduplication_key_of_job(h->q, d->valuestring, bullc_job_id(job), slot, &err), 0,
                 "%s", err.message);
    cJSON_Delete(j);
}
/* Asks after `after_ms` (Node: at once, then works 100 ms; or works 200 ms, then asks). */
static void own_removal_proc(ph *h, bullc_job *job, int widx) {
    (void)widx;
    own_removal *o = h->user;
    if (o->after_ms) {
        ph_call_in(h, o->after_ms, ask_own_removal, job);
        ph_complete_in(h, job, o->after_ms + 10, NULL);
    } else {
        ask_own_removal(h, job);
        ph_complete_in(h, job, 100, NULL);
    }
}

static ph *own_removal_case(int major, own_removal *o) {
    ph *h = ph_new("q");
    if (major == 5) freeReplyObject(ph_cmd("HSET %s opts.maxLenEvents 10000 version bullmq:5.81.5", ph_key(h, "meta")));
    o->removed[0] = o->removed[1] = -1;
    h->user = o;
    bullc_worker_run(paused_start_worker(h, own_removal_proc, 1));
    return h;
}

/* a1 ends its own window as it starts: a2 is added, not deduplicated */
static void own_key_removed(int major) {
    own_removal o = {.after_ms = 0};
    ph *h = own_removal_case(major, &o);
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"jobId\":\"a1\",\"deduplication\":{\"id\":\"dedupId\"}}", NULL);
    cr_assert(PH_WAIT(h, 5000, o.removed[0] >= 0), "a1 asked");
    cr_assert_eq(o.removed[0], 1, "the key named a1: removed");
    int st;
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"jobId\":\"a2\",\"deduplication\":{\"id\":\"dedupId\"}}", &st);
    cr_assert_eq(st, 0, "added");
    cr_assert(PH_WAIT(h, 5000, ph_wcount(h, 'c', "a2") == 1));
    cr_assert_eq(o.removed[1], 1, "a2's own key, removed by a2");
    cr_assert_eq(h->n_completed, 2);
    cr_assert_eq(bullc_worker_bullmq_version(h->w[0]), major);
    for (int i = 0; i < 2; i++) {
        cJSON *j = ph_job(h, i ? "a2" : "a1");
        ph_assert_json(j, "deduplicationId", "\"dedupId\"");
        cJSON_Delete(j);
    }
    ph_end(h);
}
/* node: "[when job id is still present inside deduplication key] should stop deduplication" */
Test(parity_dedup, own_key_removed) { own_key_removed(6); }
Test(parity_dedup, own_key_removed_bullmq5) { own_key_removed(5); }

/* a1's window (ttl 100) ends while it works; a2 opens one of its own
 * before a1 asks: a1 must not end a2's window */
static void other_jobs_key_kept(int major) {
    own_removal o = {.after_ms = 200};
    ph *h = own_removal_case(major, &o);
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"jobId\":\"a1\",\"deduplication\":{\"id\":\"dedupId\",\"ttl\":100}}", NULL);
    PH_RUN_FOR(h, 105);
    cr_assert(PH_WAIT(h, 1000, !dedup_job_id_exists(h, "dedupId")), "a1's window is over");
    int st;
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"jobId\":\"a2\",\"deduplication\":{\"id\":\"dedupId\",\"ttl\":5000}}", &st);
    cr_assert_eq(st, 0, "added");
    cr_assert(PH_WAIT(h, 5000, o.removed[0] >= 0), "a1 asked");
    cr_assert_eq(o.removed[0], 0, "the key names a2: kept");
    cr_assert(PH_WAIT(h, 5000, ph_wcount(h, 'c', "a2") == 1));
    cr_assert_eq(h->n_completed, 2);
    cr_assert_eq(bullc_worker_bullmq_version(h->w[0]), major);
    ph_end(h);
}
/* node: "[when job id is not present inside deduplication key] should not stop deduplication" */
Test(parity_dedup, other_jobs_key_kept) { other_jobs_key_kept(6); }
Test(parity_dedup, other_jobs_key_kept_bullmq5) { other_jobs_key_kept(5); }

/* node: "[when ttl is provided] uses a fixed time period and emits deduplicated event" */
Test(parity_dedup, ttl_window) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *o = "{\"deduplication\":{\"id\":\"a1\",\"ttl\":2000}}";
    const char *first = add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 1000);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 1100);
    int st;
    const char *second = add_dedup(h, "{\"foo\":\"bar\"}", o, &st);
    cr_assert_eq(st, 0, "the window closed: a new job");
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 100);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 4);
    for (int i = 0; i < 4; i++) {
        cJSON *e = ph_qe_get(h, "deduplicated", i);
        cr_assert_str_eq(ph_qe_field(e, "jobId"), i < 2 ? first : second);
        cr_assert_str_eq(ph_qe_field(e, "deduplicationId"), "a1");
    }
    ph_end(h);
}

/* node: "[when ttl is provided > when removing deduplicated job] removes deduplication key" */
Test(parity_dedup, removing_the_job_removes_the_ttl_key) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *o = "{\"deduplication\":{\"id\":\"a1\",\"ttl\":2000}}";
    const char *job = add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    cr_assert_eq(bullc_queue_remove_job(h->q, job, true, NULL), 0);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 1000);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 1100);
    const char *second = add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    cr_assert_eq(bullc_queue_remove_job(h->q, second, true, NULL), 0);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 100);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 2);
    ph_end(h);
}

/* node: "[when extend is provided as true] resets ttl" */
Test(parity_dedup, extend_resets_ttl_of_delayed_jobs) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = paused_start_worker(h, delay100, 1);
    bullc_worker_run(w);
    const char *o = "{\"deduplication\":{\"id\":\"a1\",\"ttl\":500,\"extend\":true},\"delay\":500}";
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 250);
    add_dedup(h, "{\"foo\":\"baz\"}", o, NULL);
    PH_RUN_FOR(h, 250);
    add_dedup(h, "{\"foo\":\"bax\"}", o, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, "1");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"foo\":\"bar\"}");
    cr_assert_eq(all_count(h), 1);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 2);
    ph_end(h);
}

/* node: "[when extend is provided as true] resets ttl" */
Test(parity_dedup, extend_resets_ttl) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = paused_start_worker(h, delay100, 1);
    bullc_worker_run(w);
    const char *o = "{\"deduplication\":{\"id\":\"a1\",\"extend\":true,\"ttl\":500}}";
    const char *job1 = add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 250);
    add_dedup(h, "{\"foo\":\"baz\"}", o, NULL);
    assert_dedup_job_id(h, "a1", job1);
    PH_RUN_FOR(h, 250);
    /* the second add extended the window: deduplicated again (the add returns the first job's id) */
    const char *job3 = add_dedup(h, "{\"foo\":\"bax\"}", o, NULL);
    assert_dedup_job_id(h, "a1", job3);
    cr_assert(PH_WAIT(h, 5000, h->n_completed >= 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, "1");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"foo\":\"bar\"}");
    cr_assert_eq(all_count(h), 1);
    cr_assert(PH_WAIT(h, 2000, ph_qe_count(h, "deduplicated", NULL) >= 2));
    PH_RUN_FOR(h, 50);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 2);
    ph_end(h);
}

/* node: "[when ttl is provided > when replace is provided as true] removes last job if it is in delayed state" */
Test(parity_dedup, replace_with_ttl) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = paused_start_worker(h, delay100, 1);
    bullc_worker_run(w);
    const char *o = "{\"deduplication\":{\"id\":\"a1\",\"ttl\":500,\"replace\":true},\"delay\":500}";
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 250);
    const char *job2 = add_dedup(h, "{\"foo\":\"baz\"}", o, NULL);
    assert_dedup_job_id(h, "a1", job2);
    PH_RUN_FOR(h, 300);
    const char *job3 = add_dedup(h, "{\"foo\":\"bax\"}", o, NULL);
    assert_dedup_job_id(h, "a1", job3);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, "2");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"foo\":\"baz\"}");
    cr_assert_eq(all_count(h), 2);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 1);
    ph_end(h);
}

/* node: "[when extend and replace options are provided as true] resets ttl and removes last job if it is in delayed state" */
Test(parity_dedup, extend_and_replace) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = paused_start_worker(h, delay100, 1);
    bullc_worker_run(w);
    const char *o = "{\"deduplication\":{\"id\":\"a1\",\"ttl\":500,\"extend\":true,\"replace\":true},\"delay\":500}";
    const char *last = NULL;
    for (int i = 0; i < 10; i++) {
        char d[16];
        snprintf(d, sizeof d, "{\"foo\":%d}", i);
        last = add_dedup(h, d, o, NULL);
        PH_RUN_FOR(h, 25);
    }
    assert_dedup_job_id(h, "a1", last);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, "10");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"foo\":9}");
    cr_assert_eq(all_count(h), 1);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 9);
    ph_end(h);
}

static void adds_twice_while_active(ph *h, bullc_job *job, int widx);
static void add_a1(ph *h, void *arg) {
    (void)arg;
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"deduplication\":{\"id\":\"a1\"}}", NULL);
}
static void finish_it(ph *h, void *arg) { ph_complete(h, arg, NULL); }
static void adds_twice_while_active(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_call_in(h, 100, add_a1, NULL);
    ph_call_in(h, 200, add_a1, NULL);
    ph_call_in(h, 300, finish_it, job);
}

/* node: "[when ttl is not provided] waits until job is finished before removing deduplication key" */
Test(parity_dedup, key_kept_until_finished) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = paused_start_worker(h, adds_twice_while_active, 1);
    bullc_worker_run(w);
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"deduplication\":{\"id\":\"a1\"}}", NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "completed", NULL) == 1));
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "completed", 0), "jobId"), "1");
    int st;
    const char *second = add_dedup(h, "{\"foo\":\"bar\"}", "{\"deduplication\":{\"id\":\"a1\"}}", &st);
    cr_assert_eq(st, 0);
    cr_assert_eq(all_count(h), 2);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 2);
    cr_assert_str_eq(second, "4");
    ph_end(h);
}

static void delay250(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 250, NULL);
}

/* node: "[when ttl is not provided > when replace is provided as true] removes last job if it is in delayed state" */
Test(parity_dedup, replace_without_ttl) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = paused_start_worker(h, delay250, 1);
    bullc_worker_run(w);
    add_dedup(h, "{\"foo\":\"bar\"}", "{\"deduplication\":{\"id\":\"a1\",\"replace\":true},\"delay\":500}", NULL);
    PH_RUN_FOR(h, 150);
    const char *job2 =
        add_dedup(h, "{\"foo\":\"baz\"}", "{\"deduplication\":{\"id\":\"a1\",\"replace\":true},\"delay\":250}", NULL);
    assert_dedup_job_id(h, "a1", job2);
    PH_RUN_FOR(h, 400);
    /* job 2 is active now: not replaced, so this one is deduplicated */
    const char *job3 =
        add_dedup(h, "{\"foo\":\"bax\"}", "{\"deduplication\":{\"id\":\"a1\",\"replace\":true},\"delay\":500}", NULL);
    assert_dedup_job_id(h, "a1", job3);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, "2");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"foo\":\"baz\"}");
    cr_assert_eq(all_count(h), 1);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 1);
    ph_end(h);
}

/* node: "[when ttl is not provided > when removing deduplicated job] removes deduplication key" */
Test(parity_dedup, removing_the_job_removes_the_key) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *o = "{\"deduplication\":{\"id\":\"a1\"}}";
    const char *job = add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    cr_assert_eq(bullc_queue_remove_job(h->q, job, true, NULL), 0);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    PH_RUN_FOR(h, 100);
    const char *second = add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    cr_assert_eq(bullc_queue_remove_job(h->q, second, true, NULL), 0);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "deduplicated", NULL) == 2));
    PH_RUN_FOR(h, 100);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 2);
    ph_end(h);
}

/* node: "[when manual removal on a deduplicated job in finished state] does not remove deduplication key" */
Test(parity_dedup, removing_a_finished_job_keeps_the_key) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *o = "{\"deduplication\":{\"id\":\"a1\"}}";
    const char *job = add_dedup(h, "{\"foo\":\"bar\"}", o, NULL);
    bullc_worker *w = paused_start_worker(h, delay100, 1);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    bullc_worker_pause(w);
    PH_RUN_FOR(h, 50);
    add_dedup(h, "{\"foo\":\"bar\"}", o, NULL); /* a new job: the key now names it */
    cr_assert_eq(bullc_queue_remove_job(h->q, job, true, NULL), 0);
    int st;
    add_dedup(h, "{\"foo\":\"bar\"}", o, &st);
    cr_assert_eq(st, 1);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "deduplicated", NULL) == 1));
    PH_RUN_FOR(h, 100);
    cr_assert_eq(ph_qe_count(h, "deduplicated", NULL), 1);
    ph_end(h);
}

/* ---- keepLastIfActive -------------------------------------------------------------------- */

#define KLIA(id) "{\"deduplication\":{\"id\":\"" id "\",\"keepLastIfActive\":true}}"

static int64_t first_hold_ms = 500;
static void hold_first(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, h->n_active == 1 ? first_hold_ms : 0, NULL);
}

/* Adds seq 1, waits until it is active, adds the others; returns after 2 completions. */
static void klia_case(ph *h, const char *opts, int nmore, const char *const *more) {
    bullc_worker *w = paused_start_worker(h, hold_first, 1);
    bullc_worker_run(w);
    const char *id1 = add_dedup(h, "{\"seq\":1}", opts, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    for (int i = 0; i < nmore; i++) {
        int st;
        const char *id = add_dedup(h, more[i], opts, &st);
        cr_assert_str_eq(id, id1, "returns the active job's id");
    }
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    PH_RUN_FOR(h, 100);
    cr_assert_eq(h->n_completed, 2);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"seq\":1}");
}

/* node: "should store next job data and create new job when active job completes" */
Test(parity_dedup, klia_next_job_after_active) {
    ph *h = ph_new("q");
    const char *more[] = {"{\"seq\":2}"};
    klia_case(h, KLIA("dedup-active-1"), 1, more);
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"seq\":2}");
    ph_end(h);
}

/* node: "should still deduplicate when dedup job is waiting (not active)" */
Test(parity_dedup, klia_deduplicates_waiting_job) {
    ph *h = ph_new("q");
    const char *id1 = add_dedup(h, "{\"seq\":1}", KLIA("dedup-waiting-1"), NULL);
    const char *id2 = add_dedup(h, "{\"seq\":2}", KLIA("dedup-waiting-1"), NULL);
    cr_assert_str_eq(id2, id1);
    char *s = NULL;
    cr_assert_eq(bullc_queue_get_events(h->q, "0-0", 10, &s, NULL), 0);
    cJSON *a = cJSON_Parse(s);
    bullc_free(s);
    int n = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, a) {
        n += !strcmp(ph_qe_field(e, "event"), "deduplicated") && !strcmp(ph_qe_field(e, "jobId"), id1) &&
             !strcmp(ph_qe_field(e, "deduplicationId"), "dedup-waiting-1");
    }
    cJSON_Delete(a);
    cr_assert_eq(n, 1);
    ph_end(h);
}

/* node: "should replace stored data with latest when multiple jobs added while active" */
Test(parity_dedup, klia_latest_data_wins) {
    ph *h = ph_new("q");
    const char *more[] = {"{\"seq\":2}", "{\"seq\":3}"};
    klia_case(h, KLIA("dedup-latest-1"), 2, more);
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"seq\":3}");
    ph_end(h);
}

static void hold_200(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 200, NULL);
}

/* node: "should not allow parallel execution of jobs with same dedup id" */
Test(parity_dedup, klia_no_parallel_execution) {
    ph *h = ph_new("q");
    bullc_worker *w = paused_start_worker(h, hold_200, 5);
    bullc_worker_run(w);
    add_dedup(h, "{\"seq\":1}", KLIA("dedup-no-parallel-1"), NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    add_dedup(h, "{\"seq\":2}", KLIA("dedup-no-parallel-1"), NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 2));
    cr_assert_eq(h->max_in_process, 1);
    ph_end(h);
}

/* node: "should properly clean up after both jobs complete" */
Test(parity_dedup, klia_clean_after_both) {
    ph *h = ph_new("q");
    first_hold_ms = 300;
    const char *more[] = {"{\"seq\":2}"};
    klia_case(h, KLIA("dedup-cleanup-1"), 1, more);
    add_dedup(h, "{\"seq\":3}", KLIA("dedup-cleanup-1"), NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 3));
    cr_assert_str_eq(ph_wget(h, 'c', 2)->data, "{\"seq\":3}");
    cr_assert_eq(h->n_active, 3);
    ph_end(h);
}

/* node: "should work with ttl option" */
Test(parity_dedup, klia_with_ttl) {
    ph *h = ph_new("q");
    first_hold_ms = 300;
    const char *more[] = {"{\"seq\":2}"};
    klia_case(h, "{\"deduplication\":{\"id\":\"dedup-ttl-active-1\",\"ttl\":10000,\"keepLastIfActive\":true}}", 1,
              more);
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"seq\":2}");
    ph_end(h);
}

static bullc_job *gated;
static void gate_first(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (h->n_active == 1)
        gated = job;
    else
        ph_complete(h, job, NULL);
}

/* node: "should add next job to paused list when queue is paused and process after resume" */
Test(parity_dedup, klia_paused_then_resumed) {
    ph *h = ph_new("q");
    bullc_worker *w = paused_start_worker(h, gate_first, 1);
    bullc_worker_run(w);
    add_dedup(h, "{\"seq\":1}", KLIA("dedupPause"), NULL);
    cr_assert(PH_WAIT(h, 5000, gated != NULL));
    cr_assert_eq(bullc_queue_pause(h->q, NULL), 0);
    add_dedup(h, "{\"seq\":2}", KLIA("dedupPause"), NULL);
    ph_complete(h, gated, NULL);
    PH_RUN_FOR(h, 500);
    cr_assert_eq(h->n_completed, 1);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"seq\":1}");
    cr_assert_eq(bullc_queue_resume(h->q, NULL), 0);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 2));
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"seq\":2}");
    ph_end(h);
}

/* node: "should allow delay with keepLastIfActive" */
Test(parity_dedup, klia_with_delay) {
    ph *h = ph_new("q");
    const char *id = add_dedup(
        h, "{\"seq\":1}", "{\"deduplication\":{\"id\":\"dedupDelay\",\"keepLastIfActive\":true},\"delay\":5000}", NULL);
    cr_assert(id && *id);
    cr_assert_str_eq(ph_state(h, id), "delayed");
    ph_end(h);
}

/* node: "should allow queue default delay with keepLastIfActive" */
Test(parity_dedup, klia_with_default_delay) {
    ph *h = ph_new("q");
    bullc_queue *q = ph_queue_with_defaults(h, "{\"delay\":5000}");
    const char *id;
    ph_add_to(h, q, "test", "{\"seq\":1}", KLIA("dedupDefaultDelay"), &id);
    cr_assert(id && *id);
    cr_assert_str_eq(ph_state(h, id), "delayed");
    bullc_queue_free(q);
    ph_end(h);
}

/* node: "should requeue with delay when active job completes and next job was stored" */
Test(parity_dedup, klia_requeue_with_delay) {
    ph *h = ph_new("q");
    const char *o = "{\"deduplication\":{\"id\":\"dedupDelayRequeue\",\"keepLastIfActive\":true},\"delay\":1000}";
    first_hold_ms = 500;
    h->proc = hold_first;
    bullc_worker_opts *wo = ph_wopts(h);
    bullc_worker_opts_set_autorun(wo, false);
    bullc_worker *w = ph_worker(h, wo);
    add_dedup(h, "{\"seq\":1}", o, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    add_dedup(h, "{\"seq\":2}", o, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"seq\":1}");
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"seq\":2}");
    ph_end(h);
}

static void fail_first_after_500(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (h->n_active == 1)
        ph_fail_in(h, job, 500, "intentional failure", 0);
    else
        ph_complete(h, job, NULL);
}

/* node: "should requeue next job when active job fails permanently" */
Test(parity_dedup, klia_requeue_after_failure) {
    ph *h = ph_new("q");
    bullc_worker *w = paused_start_worker(h, fail_first_after_500, 1);
    bullc_worker_run(w);
    const char *o = "{\"deduplication\":{\"id\":\"dedup-fail-1\",\"keepLastIfActive\":true},\"attempts\":1}";
    const char *id1 = add_dedup(h, "{\"seq\":1}", o, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    const char *id2 = add_dedup(h, "{\"seq\":2}", KLIA("dedup-fail-1"), NULL);
    cr_assert_str_eq(id2, id1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1 && h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'f', 0)->data, "{\"seq\":1}");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"seq\":2}");
    ph_end(h);
}

static int seq1_attempts;
static void seq1_always_fails(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_data(job), "{\"seq\":1}")) {
        seq1_attempts++;
        ph_fail_in(h, job, seq1_attempts == 1 ? 300 : 0, "retry failure", 0);
    } else {
        ph_complete(h, job, NULL);
    }
}

/* node: "should requeue next job only after retries are exhausted" */
Test(parity_dedup, klia_requeue_after_retries) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = paused_start_worker(h, seq1_always_fails, 1);
    bullc_worker_run(w);
    add_dedup(h, "{\"seq\":1}",
              "{\"deduplication\":{\"id\":\"dedup-retry-1\",\"keepLastIfActive\":true},\"attempts\":3,"
              "\"backoff\":{\"type\":\"fixed\",\"delay\":50}}",
              NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    add_dedup(h, "{\"seq\":2}", KLIA("dedup-retry-1"), NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "retries-exhausted", NULL) == 1));
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_eq(seq1_attempts, 3);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"seq\":2}");
    /* seq 2 only ran once seq 1 had failed for good */
    cr_assert_gt(ph_wget(h, 'c', 0) - h->wev, ph_wget(h, 'f', 2) - h->wev);
    ph_end(h);
}

/* node: "should prevent parallel execution even when ttl expires while job is active" */
Test(parity_dedup, klia_ttl_expires_while_active) {
    ph *h = ph_new("q");
    first_hold_ms = 500;
    bullc_worker *w = paused_start_worker(h, hold_first, 1);
    bullc_worker_run(w);
    const char *o = "{\"deduplication\":{\"id\":\"dedup-ttl-expire-1\",\"ttl\":200,\"keepLastIfActive\":true}}";
    const char *id1 = add_dedup(h, "{\"seq\":1}", o, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    PH_RUN_FOR(h, 300);
    const char *id2 = add_dedup(h, "{\"seq\":2}", o, NULL);
    cr_assert_str_eq(id2, id1);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 2));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"seq\":1}");
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"seq\":2}");
    ph_end(h);
}

/* node: "should preserve custom jobId when requeuing proto-job" */
Test(parity_dedup, klia_custom_job_id) {
    ph *h = ph_new("q");
    first_hold_ms = 500;
    bullc_worker *w = paused_start_worker(h, hold_first, 1);
    bullc_worker_run(w);
    add_dedup(
        h, "{\"seq\":1}",
        "{\"jobId\":\"my-custom-uuid-1\",\"deduplication\":{\"id\":\"dedup-custom-id-1\",\"keepLastIfActive\":true}}",
        NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    add_dedup(
        h, "{\"seq\":2}",
        "{\"jobId\":\"my-custom-uuid-2\",\"deduplication\":{\"id\":\"dedup-custom-id-1\",\"keepLastIfActive\":true}}",
        NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 2));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, "my-custom-uuid-1");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"seq\":1}");
    cr_assert_str_eq(ph_wget(h, 'c', 1)->id, "my-custom-uuid-2");
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"seq\":2}");
    ph_end(h);
}
