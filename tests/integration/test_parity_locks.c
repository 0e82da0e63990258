/* SPDX-License-Identifier: MIT */
/* Node BullMQ's worker.redis.test.ts and lock_manager.test.ts cases that
 * concern locks and Redis-level bookkeeping of a worker: locks of concurrent
 * jobs, lock renewal, lock tokens after a retry, the stalled set, capped
 * progress events, the priority counter. */
#include "test_parity_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_locks, .timeout = 60);

static char *lock_of(ph *h, const char *id) {
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s:lock", id);
    redisReply *r = ph_cmd("GET %s", ph_key(h, suffix));
    char *s = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return s;
}

/* ---- locks of concurrent jobs -------------------------------------------------------------- */

typedef struct lockcheck {
    bullc_job *job;
    char *lock;
} lockcheck;
static int locks_kept;
static void check_lock_again(ph *h, void *arg) {
    lockcheck *c = arg;
    char *now = lock_of(h, bullc_job_id(c->job));
    cr_assert(now && !strcmp(now, c->lock), "job %s: lock %s, was %s", bullc_job_id(c->job), now ? now : "(none)",
              c->lock);
    free(now);
    free(c->lock);
    locks_kept++;
    ph_complete(h, c->job, NULL);
    free(c);
}
static void check_lock_then_2000(ph *h, bullc_job *job, int widx) {
    (void)widx;
    lockcheck *c = calloc(1, sizeof *c);
    c->job = job;
    c->lock = lock_of(h, bullc_job_id(job));
    cr_assert_not_null(c->lock, "job %s has a lock", bullc_job_id(job));
    ph_call_in(h, 2000, check_lock_again, c);
}

/* node: "keeps locks for all the jobs that are processed concurrently" */
Test(parity_locks, locks_of_concurrent_jobs) {
    ph *h = ph_new("q");
    h->proc = check_lock_then_2000;
    bullc_worker_opts *o = ph_wopts(h);
    /* Node's case holds 250 ms locks; 1000 ms still has each lock expire
       twice over during the 2 s job unless renewed, and a loaded machine
       (the ASan pass under CI's load) can stall the loop past 250 ms */
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_concurrency(o, 57);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    for (int i = 0; i < 57; i++) ph_add(h, "test", "{\"bar\":\"baz\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 57));
    cr_assert_eq(locks_kept, 57);
    ph_end(h);
}

static void hold_job(ph *h, bullc_job *job, int widx) {
    (void)widx;
    *(bullc_job **)h->user = job;
}

/* node: "[integration with Worker] should continue renewing locks for long-running jobs" */
Test(parity_locks, renews_locks_of_long_jobs) {
    ph *h = ph_new("q");
    bullc_job *job = NULL;
    h->user = &job;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_renew_time(o, 500);
    bullc_worker_opts_set_lock_duration(o, 2000);
    h->proc = hold_job;
    ph_worker(h, o);
    const char *id = ph_add(h, "test", "{\"data\":1}", NULL);
    cr_assert(PH_WAIT(h, 5000, job != NULL));
    /* the lock's time to live goes back up each time it is renewed */
    char suffix[64];
    snprintf(suffix, sizeof suffix, "%s:lock", id);
    int renewals = 0;
    long long prev = ph_icmd("PTTL %s", ph_key(h, suffix));
    int64_t end = tu_now_ms() + 3000;
    while (tu_now_ms() < end) {
        PH_RUN_FOR(h, 50);
        long long ttl = ph_icmd("PTTL %s", ph_key(h, suffix));
        cr_assert_gt(ttl, 0, "the lock must not expire");
        if (ttl > prev + 100) renewals++;
        prev = ttl;
    }
    cr_assert_geq(renewals, 2, "%d renewals", renewals);
    ph_complete(h, job, "{\"processed\":true}");
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    ph_end(h);
}

/* Node reads its private LockManager's count of tracked jobs; bullc's worker
 * tracks the jobs it processes (bullc_worker_active_count) and holds a lock
 * on each while it does. */
static int max_tracked;
static void track_then_complete(ph *h, bullc_job *job, int widx) {
    int n = bullc_worker_active_count(h->w[widx]);
    if (n > max_tracked) max_tracked = n;
    char *lock = lock_of(h, bullc_job_id(job));
    cr_assert_not_null(lock, "job %s is locked while tracked", bullc_job_id(job));
    free(lock);
    ph_complete_in(h, job, 100, "{\"processed\":true}");
}

/* node: "[integration with Worker] should track jobs during processing" */
Test(parity_locks, tracks_jobs_while_processing) {
    ph *h = ph_new("q");
    h->proc = track_then_complete;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 3);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *ids[3];
    for (int i = 0; i < 3; i++) ids[i] = ph_add(h, "test", "{\"data\":1}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 3));
    PH_RUN_FOR(h, 50);
    cr_assert(max_tracked >= 1 && max_tracked <= 3, "%d tracked at most", max_tracked);
    cr_assert_eq(bullc_worker_active_count(w), 0, "nothing tracked once done");
    for (int i = 0; i < 3; i++) cr_assert_null(lock_of(h, ids[i]), "job %s's lock released", ids[i]);
    ph_end(h);
}

static void fail_job(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "Processing failed", 0);
}

/* node: "[integration with Worker] should untrack jobs on failure" */
Test(parity_locks, untracks_failed_jobs) {
    ph *h = ph_new("q");
    h->proc = fail_job;
    bullc_worker *w = ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"data\":1}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    PH_RUN_FOR(h, 50);
    cr_assert_eq(bullc_worker_active_count(w), 0);
    cr_assert_null(lock_of(h, id), "the failed job's lock is released");
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

/* node: "[integration with Worker] should handle lock manager closure during worker shutdown" */
Test(parity_locks, lock_renewal_stops_with_the_worker) {
    ph *h = ph_new("q");
    h->proc = track_then_complete;
    bullc_worker *w = ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert(bullc_worker_is_running(w));
    ph_close_worker(h, 0, false);
    cr_assert_not(bullc_worker_is_running(w));
    cr_assert_eq(bullc_worker_active_count(w), 0);
    /* closed, it takes and renews nothing: a job added now stays waiting, unlocked */
    const char *id = ph_add(h, "test", "{\"data\":1}", NULL);
    PH_RUN_FOR(h, 300);
    cr_assert_str_eq(ph_state(h, id), "waiting");
    cr_assert_null(lock_of(h, id));
    ph_end(h);
}

/* ---- lock renewal: Node drives its LockManager with a mocked worker; here
 * the worker's own renewals are read from the locks' time to live ------------ */

static bullc_job *held[4];
static int nheld;
static void hold_jobs(ph *h, bullc_job *job, int widx) {
    (void)h, (void)widx;
    held[nheld++] = job;
}
static void complete_held(ph *h) {
    for (int i = 0; i < nheld; i++) ph_complete(h, held[i], NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == nheld));
}
static long long lock_pttl(ph *h, const char *id) {
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s:lock", id);
    return ph_icmd("PTTL %s", ph_key(h, suffix));
}
/* Two jobs of 30 s locks held by a worker renewing every `renew_ms`. */
static ph *two_held_jobs(int64_t renew_ms) {
    ph *h = ph_new("q");
    nheld = 0;
    h->proc = hold_jobs;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 30000);
    bullc_worker_opts_set_lock_renew_time(o, renew_ms);
    bullc_worker_opts_set_concurrency(o, 2);
    ph_worker(h, o);
    ph_add(h, "test", "{}", NULL);
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, nheld == 2));
    return h;
}

/* node: "should extend locks for tracked jobs" */
Test(parity_locks, renewal_extends_every_tracked_job) {
    ph *h = two_held_jobs(500);
    PH_RUN_FOR(h, 700);
    /* unrenewed, each lock would be down to about 29,300 ms; a renewal in
       the last 250 ms sets it back to 30,000 */
    for (int i = 0; i < 2; i++) {
        long long ttl = lock_pttl(h, bullc_job_id(held[i]));
        cr_assert_gt(ttl, 29600, "job %s: lock ttl %lld", bullc_job_id(held[i]), ttl);
    }
    cr_assert_eq(h->n_errors, 0);
    complete_held(h);
    ph_end(h);
}

/* node: "should not extend locks if no jobs need renewal" */
Test(parity_locks, no_renewal_before_it_is_due) {
    ph *h = two_held_jobs(1000);
    long long before[2];
    for (int i = 0; i < 2; i++) before[i] = lock_pttl(h, bullc_job_id(held[i]));
    PH_RUN_FOR(h, 300);
    for (int i = 0; i < 2; i++) {
        long long ttl = lock_pttl(h, bullc_job_id(held[i]));
        cr_assert_lt(ttl, before[i] - 200, "job %s: lock ttl %lld, was %lld: renewed before it was due",
                     bullc_job_id(held[i]), ttl, before[i]);
    }
    complete_held(h);
    ph_end(h);
}

static bool error_with(ph *h, const char *text) {
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == 'e' && strstr(h->wev[i].text, text)) return true;
    return false;
}

/* One job held by a worker renewing every 200 ms; its lock key in `lock`. */
static ph *one_held_job(char lock[96]) {
    ph *h = ph_new("q");
    nheld = 0;
    h->proc = hold_jobs;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_renew_time(o, 200);
    ph_worker(h, o);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, nheld == 1));
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s:lock", id);
    snprintf(lock, 96, "%s", ph_key(h, suffix));
    return h;
}

/* The lock now holds another token: the renewal reports the job failed. */
/* node: "should emit error when lock extension fails" */
Test(parity_locks, renewal_failure_is_an_error_event) {
    char lock[96], want[128];
    ph *h = one_held_job(lock);
    ph_vcmd("SET %s token-of-another", lock);
    snprintf(want, sizeof want, "could not renew lock for job %s", bullc_job_id(held[0]));
    cr_assert(PH_WAIT(h, 2000, error_with(h, want)), "an error event naming the job");
    cr_assert_eq(h->n_lock_lost, 1);
    cr_assert(bullc_job_lock_lost(held[0]));
    ph_complete(h, held[0], NULL); /* given up: dropped */
    ph_end(h);
}

/* The renewal's script call itself fails (GET on a lock that is not a
 * string): the error reply is the worker's error event. */
/* node: "should emit error when extendJobLocks throws" */
Test(parity_locks, renewal_call_error_is_an_error_event) {
    char lock[96];
    ph *h = one_held_job(lock);
    ph_vcmd("DEL %s", lock);
    ph_vcmd("HSET %s not a-string", lock);
    cr_assert(PH_WAIT(h, 2000, error_with(h, "extendLocks: ") && error_with(h, "WRONGTYPE")),
              "the script's error as an error event");
    /* the lock back as the worker took it: the job completes */
    ph_vcmd("DEL %s", lock);
    ph_vcmd("SET %s %s PX 30000", lock, bullc_job_token(held[0]));
    complete_held(h);
    ph_end(h);
}

/* ---- tokens and the stalled set ------------------------------------------------------------------ */

static void fail_until_attempt_2(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) != 2)
        ph_fail(h, job, "error", 0);
    else
        ph_complete_in(h, job, 100, NULL);
}
static int null_tokens;
static void token_gone(ph *h, ph_wev *e) {
    char *t = lock_of(h, e->id);
    cr_assert_null(t, "the lock token is deleted when the job moves to delayed");
    null_tokens++;
}

/* node: "deletes token after moving jobs to delayed" */
Test(parity_locks, token_deleted_when_delayed) {
    ph *h = ph_new("q");
    h->proc = fail_until_attempt_2;
    h->on_failed = token_gone;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 10000);
    bullc_worker_opts_set_lock_renew_time(o, 3000);
    ph_worker(h, o);
    const char *id = ph_add(h, "test", "{\"bar\":\"baz\"}", "{\"attempts\":3,\"backoff\":100}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_eq(null_tokens, 2);
    char *t = lock_of(h, id);
    cr_assert_null(t);
    ph_end(h);
}

static void delay100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, NULL);
}
static long long stalled_at_completion = -1;
static void stalled_set_size(ph *h, ph_wev *e) {
    (void)e;
    stalled_at_completion = ph_icmd("SCARD %s", ph_key(h, "stalled"));
}

/* node: "should clear job from stalled set when job completed" */
Test(parity_locks, completed_job_leaves_the_stalled_set) {
    ph *h = ph_new("q");
    h->proc = delay100;
    h->on_completed = stalled_set_size;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_stalled_interval(o, 10);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_eq(stalled_at_completion, 0);
    ph_end(h);
}

/* ---- progress events are capped ---------------------------------------------------------------------- */

static int progress_left = 500;
static void next_progress(bullc_job *job, int code, const char *message, void *data) {
    ph *h = data;
    cr_assert_eq(code, 0, "%s", message);
    if (--progress_left > 0)
        cr_assert_eq(bullc_job_update_progress(job, "42", next_progress, h), 0);
    else
        ph_complete(h, job, NULL);
}
static void progress_500(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    cr_assert_eq(bullc_job_update_progress(job, "42", next_progress, h), 0);
}

/* node: "should cap progress events" */
Test(parity_locks, progress_events_capped) {
    ph *h = ph_new("q");
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, ro);
    bullc_queue_opts_set_prefix(qo, h->prefix);
    bullc_queue_opts_set_max_len_events(qo, 10);
    bullc_queue *tq = NULL;
    cr_assert_eq(bullc_queue_new(&tq, h->qname, qo, NULL), 0);
    bullc_redis_opts_free(ro);
    const char *id;
    ph_add_to(h, tq, "test", "{\"foo\":\"bar\"}", NULL, &id);
    h->proc = progress_500;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 20000, h->n_completed == 1));
    long long n = ph_icmd("XLEN %s", ph_key(h, "events"));
    cr_assert_lt(n, 500 + 10);
    cr_assert_geq(n, 10);
    bullc_queue_free(tq);
    ph_end(h);
}

/* ---- priority counter -------------------------------------------------------------------------- */

static int current_priority = 1, per_priority, total_seen;
static long long last_id_of[4];
static void by_priority_and_id(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    int p = (int)ph_jnum(d, "p");
    cJSON_Delete(d);
    long long id = atoll(bullc_job_id(job));
    if (last_id_of[p]) cr_assert_lt(last_id_of[p], id, "FIFO within a priority");
    last_id_of[p] = id;
    cr_assert_eq(p, current_priority, "job %lld of priority %d while at %d", id, p, current_priority);
    total_seen++;
    if (++per_priority == 12) {
        current_priority++;
        per_priority = 0;
    }
    ph_complete_in(h, job, 10, NULL);
}

/* node: "[when priority counter is having a high number] should process jobs by priority" */
Test(parity_locks, high_priority_counter) {
    ph *h = ph_new("q");
    bullc_bulk_job jobs[18];
    bullc_job_opts *opts[3];
    static const char *const data[3] = {"{\"p\":1}", "{\"p\":2}", "{\"p\":3}"};
    for (int p = 0; p < 3; p++) {
        bullc_job_opts_new(&opts[p]);
        bullc_job_opts_set_priority(opts[p], p + 1);
    }
    for (int i = 0; i < 18; i++)
        jobs[i] = (bullc_bulk_job){.name = "test", .data_json = data[i % 3], .opts = opts[i % 3]};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 18, NULL), 0);
    for (int i = 0; i < 18; i++) bullc_free(jobs[i].id), jobs[i].id = NULL;
    ph_vcmd("INCRBY %s 2147483648", ph_key(h, "pc"));
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 18, NULL), 0);
    for (int i = 0; i < 18; i++) bullc_free(jobs[i].id);
    for (int p = 0; p < 3; p++) bullc_job_opts_free(opts[p]);
    h->proc = by_priority_and_id;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 36));
    cr_assert_eq(total_seen, 36);
    cr_assert_eq(current_priority, 4);
    ph_end(h);
}

/* ---- a lost or stolen lock -------------------------------------------------------------------- */

static void delay1250(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 1250, NULL);
}

/* node: "emits error if lock is lost" */
Test(parity_locks, error_when_lock_lost) {
    ph *h = ph_new("q");
    h->proc = delay1250;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_lock_renew_time(o, 3000); /* not renewed in time */
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"bar\":\"baz\"}", NULL);
    char want[96];
    snprintf(want, sizeof want, "Missing lock for job %s. moveToFinished", id);
    cr_assert(PH_WAIT(h, 5000, h->n_errors >= 1), "an error event (lock_lost events: %d)", h->n_lock_lost);
    cr_assert(strstr(ph_wget(h, 'e', 0)->text, want), "%s", ph_wget(h, 'e', 0)->text);
    ph_end(h);
}

static void steal_then_complete(ph *h, bullc_job *job, int widx) {
    (void)widx;
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s:lock", bullc_job_id(job));
    ph_vcmd("SET %s foo", ph_key(h, suffix));
    ph_complete_in(h, job, 2000, NULL);
}

/* Another token in the lock when the job completes: moveToFinished refuses,
 * and the worker says so in Node's words. */
/* node: "emits error if lock is "stolen"" */
Test(parity_locks, error_when_lock_stolen) {
    ph *h = ph_new("q");
    h->proc = steal_then_complete;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"bar\":\"baz\"}", NULL);
    char want[96];
    snprintf(want, sizeof want, "Lock mismatch for job %s. Cmd moveToFinished from active", id);
    cr_assert(PH_WAIT(h, 5000, h->n_errors >= 1));
    cr_assert(strstr(ph_wget(h, 'e', 0)->text, want), "%s", ph_wget(h, 'e', 0)->text);
    cr_assert_eq(h->n_completed, 0);
    ph_end(h);
}
