/* SPDX-License-Identifier: MIT */
/* Pausing a worker (Node's worker.pause() and its 'paused' / 'resumed'
 * events), as pause.test.ts and worker.test.ts check it: the pause takes
 * effect once the jobs in process have ended, nothing is left active, the
 * worker's loop stops, and a resume carries on; plus the concurrency getter. */
#include "test_parity_util.h"

TestSuite(parity_worker_pause, .timeout = 60);

static int64_t paused_at, last_finished_at;

static void hold_1000(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 1000, NULL);
}
static void note_completed(ph *h, ph_wev *e) {
    (void)h;
    last_finished_at = e->t;
}

/* node: "should wait until active jobs are finished before resolving pause" */
Test(parity_worker_pause, pause_waits_for_active_jobs) {
    ph *h = ph_new("q");
    h->proc = hold_1000;
    h->on_completed = note_completed;
    bullc_worker *w = ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    for (int i = 0; i < 10; i++) {
        char d[8];
        snprintf(d, sizeof d, "%d", i);
        ph_add(h, "test", d, NULL);
    }
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    bullc_worker_pause(w);
    cr_assert_eq(h->n_paused, 0, "the paused event never runs inside the call");
    cr_assert(bullc_worker_is_paused(w));
    cr_assert(PH_WAIT(h, 5000, h->n_paused == 1));
    paused_at = tu_now_ms();
    cr_assert_eq(h->n_completed, 1, "the job in process finished first");
    cr_assert_leq(last_finished_at, paused_at);
    cr_assert_eq(ph_count(h, "active"), 0);
    cr_assert(bullc_worker_is_paused(w));
    cr_assert_not(bullc_worker_is_running(w));
    cr_assert_eq(ph_count(h, "waiting") + ph_count(h, "delayed"), 9);
    ph_add(h, "test", "{}", NULL);
    PH_RUN_FOR(h, 200);
    cr_assert_eq(ph_count(h, "active"), 0);
    cr_assert_eq(ph_count(h, "waiting") + ph_count(h, "delayed") + ph_count(h, "paused"), 10);
    cr_assert_eq(h->n_active, 1);
    cr_assert_eq(h->n_paused, 1, "once");
    ph_end(h);
}

/* Jobs 1..8 with concurrency 4, each taking 100 - 10 * (actives so far) ms;
 * every 7th active one fails. */
static int actives;
static void delay_then_maybe_fail(ph *h, bullc_job *job, int widx) {
    (void)widx;
    int i = actives;
    if (i % 7 == 0)
        ph_fail_in(h, job, 100 - i * 10, "Error", 0);
    else
        ph_complete_in(h, job, 100 - i * 10, NULL);
}
static void pause_at_fourth(ph *h, ph_wev *e) {
    (void)e;
    if (++actives == 4) bullc_worker_pause(h->w[0]);
}
static int finished_at_pause;
static bool was_running_at_pause;
static void resume_on_paused(ph *h, int widx) {
    finished_at_pause = h->n_completed + h->n_failed;
    was_running_at_pause = bullc_worker_is_running(h->w[widx]);
    cr_assert_eq(ph_count(h, "active"), 0);
    bullc_worker_resume(h->w[widx]);
}

/* node: "[when pausing] should wait for all concurrent processing" */
Test(parity_worker_pause, pause_waits_for_concurrent_jobs) {
    ph *h = ph_new("q");
    h->proc = delay_then_maybe_fail;
    h->on_active = pause_at_fourth;
    h->on_paused = resume_on_paused;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 4);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    for (int i = 0; i < 8; i++) ph_add(h, "test", "{}", NULL);
    cr_assert_eq(bullc_worker_run(w), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_completed + h->n_failed == 8));
    cr_assert_eq(h->n_paused, 1);
    cr_assert_eq(h->n_resumed, 1);
    /* the four jobs in process when it paused had all ended */
    cr_assert_eq(finished_at_pause, 4);
    cr_assert_not(was_running_at_pause, "the worker's loop had stopped");
    cr_assert(bullc_worker_is_running(w), "and runs again once resumed");
    cr_assert_eq(h->max_in_process, 4);
    ph_end(h);
}

/* node: "should retrieve concurrency from getter" */
Test(parity_worker_pause, concurrency_getter) {
    ph *h = ph_new("q");
    h->proc = hold_1000;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 100);
    bullc_worker *w = ph_worker(h, o);
    cr_assert_eq(bullc_worker_concurrency(w), 100);
    cr_assert_eq(bullc_worker_set_concurrency(w, 10), 0);
    cr_assert_eq(bullc_worker_concurrency(w), 10);
    ph_end(h);
}

/* Node's worker emits 'closing' ("closing queue") when close() starts, once,
 * before the worker has closed. */
Test(parity_worker_pause, closing_event) {
    ph *h = ph_new("q");
    h->proc = hold_1000;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    ph_close_worker_async(h, 0, false);
    cr_assert_eq(h->n_closing, 1);
    cr_assert_str_eq(h->closing_msg, "closing queue");
    cr_assert_not(h->wdone[0], "emitted before the worker closed (its job still runs)");
    ph_close_worker_async(h, 0, true);
    cr_assert(PH_WAIT(h, 5000, h->wdone[0]));
    cr_assert_eq(h->n_closing, 1, "once, also when a forced close follows");
    ph_end(h);
}
