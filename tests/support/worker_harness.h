/* SPDX-License-Identifier: MIT */
/* A small harness for worker tests: a loop, one or more workers, event
 * counters, a guard timer, and a clean-loop check at the end. */
#ifndef BULLC_WORKER_HARNESS_H
#define BULLC_WORKER_HARNESS_H

#include <bullc/bullc.h>
#include <uv.h>

typedef struct wh {
    uv_loop_t loop;
    bullc_worker *w[4];
    int nworkers, closed;
    int completed, failed, retried, active, drained, stalled, errors, ready;
    int want;          /* close all when completed + failed reaches it (0: never by count) */
    char errlog[8192]; /* the error events' messages, one a line (as many as fit) */
    uv_timer_t guard;
    bool guard_fired;
    void *user;
} wh;

void wh_init(wh *h);
/* Opts with the test Redis, `prefix` and a 1 s drain delay (freed at exit);
 * the caller sets the processor. */
bullc_worker_opts *wh_opts(const char *prefix);
bullc_worker *wh_add_worker(wh *h, const char *queue, const bullc_worker_opts *o);
/* Runs until every worker closed (or the guard: `guard_ms`), then checks
 * that the loop closes clean and frees the workers. */
void wh_run(wh *h, int guard_ms);
void wh_close_all(wh *h, bool force);

#endif
