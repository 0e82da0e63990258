/* SPDX-License-Identifier: MIT */
/* Job cancellation, as Node's worker.cancelJob / cancelAllJobs and the
 * AbortSignal its processors get: a flag, a reason and one callback per job.
 * Cancelling writes nothing to Redis; the processor ends its job, and the
 * worker stores that end as any other. */
#include "bullc-private.h"

/* Node's abort() without a reason aborts with a DOMException whose message
 * is this: a processor that throws signal.reason fails its job with it. */
#define DEFAULT_REASON "This operation was aborted"

bool bullc_job_is_cancelled(const bullc_job *job) { return job->cancelled; }

const char *bullc_job_cancel_reason(const bullc_job *job) { return job->cancelled ? job->cancel_reason : NULL; }

int bullc_job_on_cancel(bullc_job *job, bullc_job_cancel_cb cb, void *data) {
    if (!cb || job->cancel_cb || job->processor_done) return BULLC_EINVAL;
    if (job->cancelled) return 1;
    job->cancel_cb = cb;
    job->cancel_data = data;
    return 0;
}

static void run_cb(bullc_job *job, const char *reason) {
    bullc_job_cancel_cb cb = job->cancel_cb;
    if (!cb) return;
    job->cancel_cb = NULL; /* exactly once, also when the callback ends the job */
    cb(job, reason, job->cancel_data);
}

void bullc__cancel_settle(bullc_job *job) { run_cb(job, NULL); }

/* Only a job whose processor still holds it can be cancelled: Node untracks
 * a job before storing its result, and cancelJob is false from then on. A
 * job cancelled before is still found (Node aborts again, a no-op, and
 * answers true). */
static bool cancellable(const bullc_job *j) { return j->state == BULLC__JOB_PROCESSING && !j->processor_done; }

/* Marks the job once (the first reason stays, as an AbortSignal's); its
 * callback runs apart, since it may end the job. */
static int mark(bullc_job *j, const char *reason) {
    if (j->cancelled) return 0;
    sds r = sdsnew(reason ? reason : DEFAULT_REASON);
    if (!r) return BULLC_ENOMEM;
    j->cancel_reason = r;
    j->cancelled = true; /* sequentially consistent: a pool thread that sees it sees the reason */
    return 0;
}

int bullc_worker_cancel_job(bullc_worker *w, const char *job_id, const char *reason) {
    if (!job_id) return 0;
    for (bullc_job *j = w->jobs; j; j = j->next) {
        if (strcmp(j->id, job_id) || !cancellable(j)) continue;
        int rc = mark(j, reason);
        if (rc) return rc;
        run_cb(j, j->cancel_reason); /* a no-op the second time */
        return 1;
    }
    return 0;
}

int bullc_worker_cancel_all_jobs(bullc_worker *w, const char *reason) {
    int n = 0;
    for (bullc_job *j = w->jobs; j; j = j->next)
        if (cancellable(j) && mark(j, reason) == 0) n++;
    /* A callback may fail its job (freeing it) and the worker may fetch
     * others meanwhile: look again from the head after each one. */
    for (;;) {
        bullc_job *j = w->jobs;
        while (j && !(j->cancelled && j->cancel_cb)) j = j->next;
        if (!j) break;
        run_cb(j, j->cancel_reason);
    }
    return n;
}
