/* SPDX-License-Identifier: MIT */
#include "worker_harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static void on_closed(bullc_worker *w, void *data) {
    (void)w;
    ((wh *)data)->closed++;
}

void wh_close_all(wh *h, bool force) {
    for (int i = 0; i < h->nworkers; i++) bullc_worker_close(h->w[i], force, 5000, on_closed, h);
}

static void check_done(wh *h) {
    if (h->want && h->completed + h->failed >= h->want) wh_close_all(h, false);
}

static void ev_completed(bullc_worker *w, const bullc_job *job, const char *res, void *data) {
    wh *h = data;
    (void)w, (void)job, (void)res;
    h->completed++;
    check_done(h);
}
static void ev_failed(bullc_worker *w, const bullc_job *job, const char *reason, bool will_retry, void *data) {
    wh *h = data;
    (void)w, (void)job, (void)reason;
    if (will_retry)
        h->retried++;
    else
        h->failed++;
    check_done(h);
}
static void ev_active(bullc_worker *w, const bullc_job *job, void *data) {
    (void)w, (void)job;
    ((wh *)data)->active++;
}
static void ev_stalled(bullc_worker *w, const char *id, void *data) {
    (void)w, (void)id;
    ((wh *)data)->stalled++;
}
static void ev_drained(bullc_worker *w, void *data) {
    (void)w;
    ((wh *)data)->drained++;
}
static void ev_error(bullc_worker *w, int code, const char *msg, void *data) {
    (void)w, (void)code;
    wh *h = data;
    cr_log_info("worker error: %s", msg);
    h->errors++;
    size_t n = strlen(h->errlog);
    snprintf(h->errlog + n, sizeof h->errlog - n, "%s\n", msg);
}
static void ev_ready(bullc_worker *w, void *data) {
    (void)w;
    ((wh *)data)->ready++;
}

void wh_init(wh *h) {
    memset(h, 0, sizeof *h);
    cr_assert_eq(uv_loop_init(&h->loop), 0);
}

bullc_worker_opts *wh_opts(const char *prefix) {
    bullc_worker_opts *o = tu_wopts();
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_worker_opts_set_redis(o, ro);
    bullc_redis_opts_free(ro);
    bullc_worker_opts_set_prefix(o, prefix);
    bullc_worker_opts_set_drain_delay(o, 1);
    return o;
}

bullc_worker *wh_add_worker(wh *h, const char *queue, const bullc_worker_opts *o) {
    bullc_worker_events ev = {.active = ev_active,
                              .completed = ev_completed,
                              .failed = ev_failed,
                              .stalled = ev_stalled,
                              .drained = ev_drained,
                              .error = ev_error,
                              .ready = ev_ready};
    bullc_error err = {0};
    bullc_worker *w = NULL;
    cr_assert_eq(bullc_worker_new(&w, &h->loop, queue, o, &ev, h, &err), 0, "%s", err.message);
    h->w[h->nworkers++] = w;
    return w;
}

static void guard_cb(uv_timer_t *t) {
    wh *h = t->data;
    h->guard_fired = true;
    cr_log_error("guard fired: completed=%d failed=%d active=%d", h->completed, h->failed, h->active);
    wh_close_all(h, true);
}

void wh_run(wh *h, int guard_ms) {
    uv_timer_init(&h->loop, &h->guard);
    h->guard.data = h;
    uv_timer_start(&h->guard, guard_cb, (uint64_t)guard_ms, 0);
    while (h->closed < h->nworkers) uv_run(&h->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&h->guard, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < h->nworkers; i++) bullc_worker_free(h->w[i]);
    cr_assert_eq(uv_loop_close(&h->loop), 0, "the loop must close clean (no handle left)");
}
