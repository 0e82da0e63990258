/* SPDX-License-Identifier: MIT */
/* Flow control inside processors: a processor moves its own job to delayed
 * or to waiting-children (Node's job.moveToDelayed / moveToWaitingChildren)
 * and ends it with BULLC_FAIL_MOVED (Node's DelayedError /
 * WaitingChildrenError), from the loop thread and from a blocking
 * processor's thread. Children come from Node in compat-tests/test/
 * flow-control.test.js. */
#include "test_parity_util.h"

#include <stdatomic.h>
#include <time.h>

TestSuite(flow_control, .timeout = 60);

/* The answer of a move, and what the processor does with it. */
typedef struct move_ctx {
    ph *h;
    int code;
    bool answered;
    bool lock_gone; /* the job's lock key was gone when the answer came */
} move_ctx;

static move_ctx mc;

/* ms since the epoch, as the moves take them (tu_now_ms is monotonic) */
static int64_t epoch_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The stored data of job `id`, as JSON text (free it). */
static char *stored_data(ph *h, const char *id) {
    cJSON *j = ph_job(h, id);
    cr_assert(j, "job %s is gone", id);
    char *d = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "data"));
    cJSON_Delete(j);
    return d;
}

static bool lock_exists(ph *h, const char *id) {
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s:lock", id);
    return ph_icmd("EXISTS %s", ph_key(h, suffix)) == 1;
}

/* ---- moveToDelayed + DelayedError, the step-job pattern --------------------------- */

static void delayed_then_next_step(bullc_job *job, int code, const char *message, void *data) {
    ph *h = data;
    cr_assert_eq(code, 1, "moveToDelayed: %d %s", code, message ? message : "");
    mc.lock_gone = !lock_exists(h, bullc_job_id(job));
    mc.answered = true;
    /* as Node's test: the data of the next step is written after the move */
    cr_assert_eq(bullc_job_update_data(job, "{\"step\":\"second\"}", NULL, NULL), 0);
    ph_fail(h, job, NULL, BULLC_FAIL_MOVED);
}

static void step_job(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_data(job), "{\"step\":\"initial\"}")) {
        cr_assert_eq(bullc_job_move_to_delayed(job, epoch_ms() + 300, delayed_then_next_step, h), 0);
        return;
    }
    cr_assert_str_eq(bullc_job_data(job), "{\"step\":\"second\"}");
    cr_assert_eq(bullc_job_update_data(job, "{\"step\":\"finish\"}", NULL, NULL), 0);
    ph_complete(h, job, "\"finish\"");
}

/* node: "should retry job after a delay time, keeping the current step" */
Test(flow_control, delayed_step_job_keeps_its_step_and_its_attempts) {
    ph *h = ph_new("q");
    h->proc = step_job;
    mc = (move_ctx){0};
    ph_worker(h, NULL);
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{\"step\":\"initial\"}", "{\"attempts\":3}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_geq(tu_now_ms() - t0, 300, "it came back only after its delay");
    cr_assert_eq(h->n_failed + h->n_retried, 0, "a moved job is neither failed nor retried");
    cr_assert_eq(h->n_active, 2);
    ph_wev *second = ph_wget(h, 'a', 1);
    cr_assert_eq(second->attempts_made, 0, "the delay counts no attempt (skipAttempt)");
    cr_assert_eq(second->attempts_started, 2);
    char *d = stored_data(h, id);
    cr_assert_str_eq(d, "{\"step\":\"finish\"}");
    free(d);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 1);
    cr_assert_str_eq(ph_state(h, id), "completed");
    cr_assert_eq(h->n_errors, 0);
    ph_end(h);
}

/* node: "deletes token after moving jobs to delayed" */
Test(flow_control, moving_to_delayed_deletes_the_lock) {
    ph *h = ph_new("q");
    h->proc = step_job;
    mc = (move_ctx){0};
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"step\":\"initial\"}", NULL);
    /* the move's answer, not just the delayed set: the job is there before the reply is read */
    cr_assert(PH_WAIT(h, 5000, mc.answered));
    cr_assert(mc.lock_gone, "the lock key was still there after moveToDelayed");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_str_eq(ph_state(h, id), "completed");
    ph_end(h);
}

/* ---- a processor that adds children to its own job and waits for them ------------- */

static void waiting_for_own_children(bullc_job *job, int code, const char *message, void *data) {
    ph *h = data;
    cr_assert_eq(code, 1, "moveToWaitingChildren: %d %s", code, message ? message : "");
    ph_fail(h, job, NULL, BULLC_FAIL_MOVED); /* Node: throw new WaitingChildrenError() */
}

static void adds_own_children(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_name(job), "child")) {
        ph_complete(h, job, bullc_job_data(job));
        return;
    }
    if (strcmp(bullc_job_data(job), "{\"step\":\"init\"}")) {
        ph_complete(h, job, "\"parent done\"");
        return;
    }
    char opts[256];
    snprintf(opts, sizeof opts, "{\"parent\":{\"id\":\"%s\",\"queue\":\"%s\"}}", bullc_job_id(job),
             bullc_job_queue_qualified_name(job));
    ph_add(h, "child", "{\"n\":1}", opts);
    ph_add(h, "child", "{\"n\":2}", opts);
    cr_assert_eq(bullc_job_update_data(job, "{\"step\":\"wait\"}", NULL, NULL), 0);
    cr_assert_eq(bullc_job_move_to_waiting_children(job, waiting_for_own_children, h), 0);
}

/* The step job of Node's "should wait children as one step of the parent job",
 * its children in the parent's own queue: the worker's one slot passes from
 * the waiting parent to the children, then back to the parent. */
Test(flow_control, a_processor_waits_for_children_it_adds_itself) {
    ph *h = ph_new("q");
    h->proc = adds_own_children;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "parent", "{\"step\":\"init\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 3));
    cr_assert_eq(h->n_active, 4, "parent, two children, parent again");
    cr_assert_str_eq(ph_wget(h, 'c', 2)->text, "\"parent done\"", "the parent completes last");
    cr_assert_str_eq(ph_state(h, id), "completed");
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s:processed", id);
    cr_assert_eq(ph_icmd("HLEN %s", ph_key(h, suffix)), 2, "both children's results are the parent's");
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 1, "waiting for children counted no attempt");
    char *d = stored_data(h, id);
    cr_assert_str_eq(d, "{\"step\":\"wait\"}");
    free(d);
    cr_assert_eq(h->n_failed + h->n_retried + h->n_errors, 0);
    ph_end(h);
}

/* ---- closing while a job moves ------------------------------------------------------ */

static void moved_while_closing(bullc_job *job, int code, const char *message, void *data) {
    ph *h = data;
    cr_assert_eq(code, 1, "moveToDelayed: %d %s", code, message ? message : "");
    ph_fail(h, job, NULL, BULLC_FAIL_MOVED);
}

static void close_then_delay(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_close_worker_async(h, 0, false);
    cr_assert_eq(bullc_job_move_to_delayed(job, epoch_ms() + 60000, moved_while_closing, h), 0);
}

/* node: "resolves close() when an active job throws DelayedError during shutdown" */
Test(flow_control, close_resolves_when_the_active_job_moves_to_delayed) {
    ph *h = ph_new("q");
    h->proc = close_then_delay;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 15000, h->wdone[0]), "close did not resolve");
    cr_assert_str_eq(ph_state(h, id), "delayed");
    cr_assert_eq(bullc_worker_close_left(h->w[0]), 0);
    cr_assert_eq(h->n_completed + h->n_failed + h->n_retried, 0);
    ph_end(h);
}

static void pause_close_then_delay(ph *h, bullc_job *job, int widx) {
    bullc_worker_pause(h->w[widx]);
    close_then_delay(h, job, widx);
}

/* node: "resolves close() when a paused worker has an active job that throws DelayedError" */
Test(flow_control, close_resolves_when_a_paused_workers_job_moves_to_delayed) {
    ph *h = ph_new("q");
    h->proc = pause_close_then_delay;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 15000, h->wdone[0]), "close did not resolve");
    cr_assert_str_eq(ph_state(h, id), "delayed");
    ph_end(h);
}

/* ---- moveToWaitingChildren without children ---------------------------------------- */

static void no_children(bullc_job *job, int code, const char *message, void *data) {
    ph *h = data;
    cr_assert_eq(code, 0, "moveToWaitingChildren: %d %s", code, message ? message : "");
    ph_complete(h, job, "\"no children\""); /* not moved: the processor goes on */
}

static void wait_children(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_eq(bullc_job_move_to_waiting_children(job, NULL, NULL), BULLC_EINVAL, "the loop thread needs a callback");
    cr_assert_eq(bullc_job_move_to_waiting_children(job, no_children, h), 0);
}

Test(flow_control, waiting_children_without_children_leaves_the_job_active) {
    ph *h = ph_new("q");
    h->proc = wait_children;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_str_eq(ph_state(h, id), "completed");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->text, "\"no children\"");
    cr_assert_eq(h->n_errors, 0);
    ph_end(h);
}

/* ---- what a processor reports after a move, or a move it did not make --------------- */

static void moved_then_completed(bullc_job *job, int code, const char *message, void *data) {
    ph *h = data;
    cr_assert_eq(code, 1, "moveToDelayed: %d %s", code, message ? message : "");
    ph_complete(h, job, "\"ignored\"");
}

static void delay_then_complete(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_eq(bullc_job_move_to_delayed(job, epoch_ms() + 60000, moved_then_completed, h), 0);
}

Test(flow_control, a_moved_jobs_result_is_not_stored) {
    ph *h = ph_new("q");
    h->proc = delay_then_complete;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_errors == 1));
    cr_assert(strstr(ph_wget(h, 'e', 0)->text, "its result is not stored"), "%s", ph_wget(h, 'e', 0)->text);
    cr_assert_str_eq(ph_state(h, id), "delayed");
    cr_assert_eq(h->n_completed, 0);
    ph_add(h, "next", "{}", NULL); /* the slot was given back */
    cr_assert(PH_WAIT(h, 10000, h->n_active == 2));
    ph_end(h);
}

static void says_moved(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, NULL, BULLC_FAIL_MOVED);
}

Test(flow_control, a_job_said_moved_but_not_moved_stays_active) {
    ph *h = ph_new("q");
    h->proc = says_moved;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_errors == 1));
    cr_assert(strstr(ph_wget(h, 'e', 0)->text, "it was not moved"), "%s", ph_wget(h, 'e', 0)->text);
    cr_assert_str_eq(ph_state(h, id), "active", "left to the stalled checker, as Node leaves it");
    cr_assert_eq(h->n_completed + h->n_failed + h->n_retried, 0);
    ph_end(h);
}

/* ---- from a blocking processor's thread: the calls wait for the answer ------------- */

static atomic_int blocking_codes[4];

static void blocking_steps(bullc_job *job, bullc_job_result *out, void *data) {
    (void)data;
    if (!strcmp(bullc_job_data(job), "{\"step\":\"initial\"}")) {
        cr_assert_eq(bullc_job_update_data(job, "{\"step\":\"wait\"}", NULL, NULL), 0);
        int64_t at = epoch_ms() + 300;
        atomic_store(&blocking_codes[0], bullc_job_move_to_delayed(job, at, NULL, NULL));
        out->fail_flags = BULLC_FAIL_MOVED;
        return;
    }
    /* no children: 0, the job stays active and completes */
    atomic_store(&blocking_codes[1], bullc_job_move_to_waiting_children(job, NULL, NULL));
    atomic_store(&blocking_codes[2], (int)bullc_job_attempts_made(job));
    out->result_json = strdup("\"done\"");
}

Test(flow_control, blocking_processor_moves_and_waits_for_the_answers) {
    ph *h = ph_new("q");
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_blocking_processor(o, blocking_steps, NULL);
    ph_worker_ex(h, o, true);
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{\"step\":\"initial\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_geq(tu_now_ms() - t0, 300);
    cr_assert_eq(atomic_load(&blocking_codes[0]), 1, "moveToDelayed answered %d", atomic_load(&blocking_codes[0]));
    cr_assert_eq(atomic_load(&blocking_codes[1]), 0, "moveToWaitingChildren answered %d",
                 atomic_load(&blocking_codes[1]));
    cr_assert_eq(atomic_load(&blocking_codes[2]), 0, "attemptsMade after the delay");
    cr_assert_eq(h->n_failed + h->n_retried + h->n_errors, 0);
    char *d = stored_data(h, id);
    cr_assert_str_eq(d, "{\"step\":\"wait\"}");
    free(d);
    ph_end(h);
}
