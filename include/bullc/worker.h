/* SPDX-License-Identifier: MIT */
/* Worker: processes the jobs of one queue on a libuv loop, as Node's Worker. */
#ifndef BULLC_WORKER_H
#define BULLC_WORKER_H

#include <stdbool.h>
#include <bullc/common.h>
#include <bullc/job.h>
#include <bullc/redis.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s; /* libuv's loop; this header does not include uv.h */

/* A worker. Opaque. Every call, and every callback, is on the loop's thread
 * (except blocking processors, which run on libuv's thread pool). */
typedef struct bullc_worker bullc_worker;

/* An asynchronous processor: called on the loop thread for each job; it must
 * later call bullc_job_complete or bullc_job_fail exactly once (it may do so
 * before returning). */
typedef void (*bullc_processor_fn)(bullc_job *job, void *data);

/* What a blocking processor reports. */
typedef struct bullc_job_result {
    char *result_json; /* success: the return value (malloc'd JSON text, or NULL for undefined) */
    char *error;       /* failure: the message (malloc'd); set means failed */
    int fail_flags;    /* BULLC_FAIL_* when failed */
} bullc_job_result;

/* A blocking processor: runs on libuv's thread pool (size UV_THREADPOOL_SIZE,
 * default 4), so CPU-bound or blocking code does not stall the loop. It fills
 * `out` (zeroed on entry); the worker frees the strings. */
typedef void (*bullc_blocking_processor_fn)(bullc_job *job, bullc_job_result *out, void *data);

/* A custom backoff strategy (Node's settings.backoffStrategy): the delay in
 * ms before attempt `attempts_made` (1-based) of a job whose backoff type is
 * `type`; -1 means do not retry. Loop thread. */
typedef int64_t (*bullc_backoff_fn)(int64_t attempts_made, const char *type, const char *error, const bullc_job *job,
                                    void *data);

/* Worker settings, with Node's names and defaults. Initialise with
 * bullc_worker_opts_init; strings and objects are copied by bullc_worker_new. */
typedef struct bullc_worker_opts {
    const bullc_redis_opts *redis;    /* NULL: defaults, then REDIS_URL / REDIS_HOST... */
    const char *prefix;               /* NULL: "bull" */
    const char *name;                 /* worker name (job field `pb`, client name suffix) or NULL */
    int concurrency;                  /* 1 */
    int64_t lock_duration;            /* 30000 ms */
    int64_t lock_renew_time;          /* 0: lock_duration / 2 */
    int64_t stalled_interval;         /* 30000 ms */
    int max_stalled_count;            /* 1 */
    double drain_delay;               /* 5 seconds: longest block on an empty queue */
    int64_t limiter_max;              /* rate limit: jobs per limiter_duration; 0 = none */
    int64_t limiter_duration;         /* ms */
    int64_t maximum_rate_limit_delay; /* 30000 ms */
    const char *remove_on_complete;   /* worker default keepJobs as Node JSON: true, false, 10, {"age":..,"count":..};
                                         NULL none */
    const char *remove_on_fail;
    int64_t max_started_attempts;    /* 0: no limit */
    int64_t metrics_max_data_points; /* 0: metrics off */
    bool skip_stalled_check;
    bool skip_lock_renewal;
    bool autorun;        /* true: start processing as soon as the loop runs */
    int64_t job_timeout; /* ms; 0: none. A job still processing past it is failed
                           ("job timed out"), its lock given up; bullc's addition */
    /* The processor: one of the two (neither for manual processing, with
     * autorun off: see bullc_worker_get_next_job). */
    bullc_processor_fn processor;
    bullc_blocking_processor_fn blocking_processor;
    void *processor_data;
    bullc_backoff_fn backoff_strategy;
    void *backoff_data;
} bullc_worker_opts;

BULLC_EXPORT void bullc_worker_opts_init(bullc_worker_opts *opts);

/* Local events (Node's worker.on(...)). All optional; `data` is the last
 * argument of each. The job is borrowed for the call. */
typedef struct bullc_worker_events {
    void (*active)(bullc_worker *w, const bullc_job *job, void *data);
    void (*completed)(bullc_worker *w, const bullc_job *job, const char *result_json, void *data);
    /* every failed attempt; `will_retry` tells whether it was retried */
    void (*failed)(bullc_worker *w, const bullc_job *job, const char *reason, bool will_retry, void *data);
    void (*progress)(bullc_worker *w, const bullc_job *job, const char *progress_json, void *data);
    void (*stalled)(bullc_worker *w, const char *job_id, void *data);
    void (*drained)(bullc_worker *w, void *data);
    void (*error)(bullc_worker *w, int code, const char *message, void *data);
    /* each time both connections are ready (start and after reconnects) */
    void (*ready)(bullc_worker *w, void *data);
    /* the job's lock could not be renewed (another worker holds it, or it
     * expired while this process was frozen): the worker gives the job up
     * at once (its slot is free, nothing more is written for it; whatever
     * the processor reports later is dropped). The processor should stop. */
    void (*lock_lost)(bullc_worker *w, const bullc_job *job, void *data);
} bullc_worker_events;

/* Creates a worker for `queue` on `loop`. Copies what it needs from `opts`
 * (and `events`, which may be NULL). With autorun it starts on the loop's
 * next iteration; else call bullc_worker_run. Free with bullc_worker_free
 * after its close callback ran. */
BULLC_EXPORT int bullc_worker_new(bullc_worker **out, struct uv_loop_s *loop, const char *queue,
                                  const bullc_worker_opts *opts, const bullc_worker_events *events, void *events_data,
                                  bullc_error *err);

/* Starts fetching and processing (when autorun is off). 0 or BULLC_EINVAL if
 * already running or closing. */
BULLC_EXPORT int bullc_worker_run(bullc_worker *w);

/* Stops fetching new jobs (Node's worker.pause); jobs in process finish. */
BULLC_EXPORT void bullc_worker_pause(bullc_worker *w);
BULLC_EXPORT void bullc_worker_resume(bullc_worker *w);
BULLC_EXPORT bool bullc_worker_is_paused(const bullc_worker *w);
BULLC_EXPORT bool bullc_worker_is_running(const bullc_worker *w);
/* Jobs being processed now. */
BULLC_EXPORT int bullc_worker_active_count(const bullc_worker *w);
/* The worker's id (a UUID; tokens are "<id>:<n>"). */
BULLC_EXPORT const char *bullc_worker_id(const bullc_worker *w);

/* Rate-limits the queue for `ms` (Node's worker.rateLimit / queue.rateLimit):
 * then fail the current job with BULLC_FAIL_RATE_LIMITED to put it back. */
BULLC_EXPORT int bullc_worker_rate_limit(bullc_worker *w, int64_t ms);

/* Manual processing (Node's `worker.getNextJob(token)` on a worker created
 * without a processor and with autorun off): takes the next job, locked
 * with `token`. When the queue is empty and `block` is set, waits up to the
 * drain delay for one. `cb` runs exactly once on the loop thread if this
 * returns 0, always after this call returned (also when the answer needs no
 * Redis: a paused worker gives NULL and 0): with the job (then finish it
 * with bullc_job_complete or bullc_job_fail; extend its lock with
 * bullc_job_extend_lock, as nothing renews it), or with NULL and code 0 (no
 * job) or a BULLC_E* code (e.g. BULLC_ECONN when the connection broke while
 * waiting). Returns BULLC_ECONN, and never calls `cb`, before the worker's
 * `ready` event and while Redis is out of reach. */
typedef void (*bullc_next_job_cb)(bullc_worker *w, bullc_job *job, int code, void *data);
BULLC_EXPORT int bullc_worker_get_next_job(bullc_worker *w, const char *token, bool block, bullc_next_job_cb cb,
                                           void *data);

/* Closes the worker: stops fetching; unless `force`, waits up to
 * `timeout_ms` (0: no limit) for the jobs in process to finish and be stored
 * (a fetch in flight is work in process: the job it brings is processed too,
 * as Node's worker.close() does); then closes the connections. Jobs still
 * unfinished are left to the stalled checker (their locks expire), and an
 * `error` event (BULLC_ECLOSED) names them; their processors must still
 * return (a blocking processor) or call complete/fail (an asynchronous one)
 * before `cb` runs. `cb` runs exactly once, on the loop thread; after it, call
 * bullc_worker_free. A second call only makes a running close forced. */
BULLC_EXPORT void bullc_worker_close(bullc_worker *w, bool force, int64_t timeout_ms,
                                     void (*cb)(bullc_worker *w, void *data), void *data);

/* After the close callback: how many jobs the close left active for stalled
 * recovery (forced, or its timeout passed), counting each fetch that was in
 * flight as one (Redis may have handed it a job). 0: everything was finished
 * and stored. Loop thread. */
BULLC_EXPORT int bullc_worker_close_left(const bullc_worker *w);

/* Frees a closed worker. NULL is a no-op. */
BULLC_EXPORT void bullc_worker_free(bullc_worker *w);

#ifdef __cplusplus
}
#endif
#endif
