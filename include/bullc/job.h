/* SPDX-License-Identifier: MIT */
/* A job as a processor sees it, and what the processor can do with it. */
#ifndef BULLC_JOB_H
#define BULLC_JOB_H

#include <stdbool.h>
#include <bullc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A job being processed. Borrowed: it belongs to the worker, and stays valid
 * from the processor call until the processor has called bullc_job_complete
 * or bullc_job_fail (for a blocking processor: until it returns). Getters
 * return borrowed strings that live as long as the job. */
typedef struct bullc_job bullc_job;

BULLC_EXPORT const char *bullc_job_id(const bullc_job *job);
BULLC_EXPORT const char *bullc_job_name(const bullc_job *job);
/* The name's length in bytes. A name may hold NUL bytes (a Node producer's
 * string can), where the C string bullc_job_name returns ends early. */
BULLC_EXPORT size_t bullc_job_name_len(const bullc_job *job);
/* The job data as JSON text (Node's `job.data`, stringified). */
BULLC_EXPORT const char *bullc_job_data(const bullc_job *job);
/* The job options as stored, as JSON text with Node's long names
 * (`{"attempts":3,"backoff":{...},"keepLogs":10,...}`). */
BULLC_EXPORT const char *bullc_job_opts_json(const bullc_job *job);
/* The job as JSON: {id, name, data, opts, attemptsMade, attemptsStarted,
 * timestamp, processedOn, progress}. Caller frees with bullc_free. */
BULLC_EXPORT char *bullc_job_to_json(const bullc_job *job);
BULLC_EXPORT int64_t bullc_job_attempts_made(const bullc_job *job);
BULLC_EXPORT int64_t bullc_job_attempts_started(const bullc_job *job);
BULLC_EXPORT int64_t bullc_job_timestamp(const bullc_job *job);
BULLC_EXPORT int64_t bullc_job_processed_on(const bullc_job *job);
BULLC_EXPORT int64_t bullc_job_priority(const bullc_job *job);
/* The lock token this worker holds the job with. */
BULLC_EXPORT const char *bullc_job_token(const bullc_job *job);
/* The queue's name. */
BULLC_EXPORT const char *bullc_job_queue_name(const bullc_job *job);
/* "<prefix>:<queue>" (Node's job.queueQualifiedName): the `queue` of the
 * `parent` option {"id": bullc_job_id(job), "queue": ...} that makes a job
 * added with bullc_queue_add a child of this one (a processor adding
 * children to the job it runs, then waiting for them). */
BULLC_EXPORT const char *bullc_job_queue_qualified_name(const bullc_job *job);
/* Node's job.deferredFailure: the failure a stalled-jobs check left on a
 * job it moved back to wait past maxStalledCount (the job failed at its
 * next start), e.g. "job stalled more than allowable limit"; NULL when
 * none. A worker with a processor fails such a job itself without running
 * the processor; a job taken by hand (bullc_worker_get_next_job) comes with
 * it, for the caller to fail the job: bullc_job_fail(job, it,
 * BULLC_FAIL_UNRECOVERABLE), as Node's test does. Borrowed, lives as long
 * as the job. */
BULLC_EXPORT const char *bullc_job_deferred_failure(const bullc_job *job);
/* True once the worker knows it lost the job's lock (renewal failed, or the
 * job's deadline passed): the result will not be stored, so a long-running
 * processor should stop. */
BULLC_EXPORT bool bullc_job_lock_lost(const bullc_job *job);

/* Cancellation (Node's AbortSignal handed to a processor; see
 * bullc_worker_cancel_job). Cancelling only tells the processor: the job
 * ends as the processor ends it, as in Node, where a processor throws on
 * abort: bullc_job_fail(job, reason, 0) is retried per its attempts and
 * backoff, BULLC_FAIL_UNRECOVERABLE is not; a processor that ignores the
 * cancellation completes its job as usual. */
/* True once the job was cancelled (signal.aborted). Any thread: a blocking
 * processor or a plugin polls it. */
BULLC_EXPORT bool bullc_job_is_cancelled(const bullc_job *job);
/* The cancellation's reason (signal.reason): the text given to the cancel
 * call, or Node's default "This operation was aborted" when it gave none;
 * NULL while the job is not cancelled. Borrowed, lives as long as the job.
 * Any thread, after bullc_job_is_cancelled returned true. */
BULLC_EXPORT const char *bullc_job_cancel_reason(const bullc_job *job);
/* Called once per registration: with the reason when the job is cancelled
 * (inside the cancel call, as an abort listener runs inside abort(), so the
 * callback may fail the job right there), or with NULL when the processor
 * hands the job back uncancelled (inside bullc_job_complete / bullc_job_fail,
 * before they return, the job still valid; it must not complete or fail the
 * job again then). Loop thread. */
typedef void (*bullc_job_cancel_cb)(bullc_job *job, const char *reason, void *data);
/* Registers the job's cancel callback (signal.addEventListener('abort')),
 * for asynchronous processors, on the loop thread; one per job. Returns 0:
 * `cb` runs exactly once, never inside this call; 1: the job is already
 * cancelled, nothing is registered (read bullc_job_cancel_reason);
 * BULLC_EINVAL: `cb` is NULL, a callback is registered already, or the
 * processor already handed the job back (`cb` never runs). */
BULLC_EXPORT int bullc_job_on_cancel(bullc_job *job, bullc_job_cancel_cb cb, void *data);

/* Completion callback of the job actions below: `code` is 0 or a BULLC_E*
 * code; `message` explains an error (NULL on success). */
typedef void (*bullc_job_cb)(bullc_job *job, int code, const char *message, void *data);

/* Job actions, as Node's job.updateProgress / log / updateData / extendLock.
 * They may be called from the loop thread (an asynchronous processor) or
 * from a blocking processor's thread; from the latter, `cb` must be NULL.
 * `cb` (when given) runs exactly once on the loop thread if the call returns
 * 0, always after the call returned; never otherwise. With `cb`, from the
 * loop thread they return BULLC_ECONN while the worker is not connected
 * (nothing is sent). Without `cb`, progress, log and data updates made while
 * Redis is away (or in flight when the connection broke) are kept, up to
 * 10,000 a worker, and sent in order once it is back, before the job's
 * completion; beyond that they are dropped with an error event. They return
 * BULLC_ECLOSED for a finished job. Strings are copied. */
/* `progress_json`: a number or a JSON object, as text. */
BULLC_EXPORT int bullc_job_update_progress(bullc_job *job, const char *progress_json, bullc_job_cb cb, void *data);
/* Appends a log line (kept to the job's keepLogs option). */
BULLC_EXPORT int bullc_job_log(bullc_job *job, const char *line, bullc_job_cb cb, void *data);
/* Replaces the job's data (JSON text). */
BULLC_EXPORT int bullc_job_update_data(bullc_job *job, const char *data_json, bullc_job_cb cb, void *data);
/* Extends the job's lock by `duration_ms` from now. */
BULLC_EXPORT int bullc_job_extend_lock(bullc_job *job, int64_t duration_ms, bullc_job_cb cb, void *data);

/* Flow control (Node's job.moveToWaitingChildren / job.moveToDelayed, with
 * the worker's token). A processor that moved its job ends it with
 * bullc_job_fail(job, NULL, BULLC_FAIL_MOVED) (a blocking processor: sets
 * out->fail_flags to BULLC_FAIL_MOVED), as a Node processor throws
 * WaitingChildrenError or DelayedError: the worker then neither completes
 * nor fails it, and the job comes back to a worker later (its children
 * done, or its delay passed) with the data it holds then (the step-job
 * pattern: update the data, move, return). Whatever a processor reports for
 * a job it moved is not stored.
 *
 * From the loop thread (an asynchronous processor) `cb` is required: it runs
 * once, after the call returned, with the answer as `code`. From a blocking
 * processor's thread `cb` must be NULL and the call waits for Redis's answer
 * and returns it. Either way the answer is 1 (moved), 0 (not moved: only
 * bullc_job_move_to_waiting_children, when the job has no pending children;
 * the job stays active and the processor goes on, e.g. to complete it) or a
 * BULLC_E* code (BULLC_ELOCK: the lock is not held any more; BULLC_ESTATE:
 * not active, or a child failed; BULLC_ECONN: Redis out of reach, nothing
 * moved). A call that fails at once returns the code and never runs `cb`. */
/* Moves the job to waiting-children if it has pending children (Node's
 * moveToWaitingChildren(token) without opts.child). */
BULLC_EXPORT int bullc_job_move_to_waiting_children(bullc_job *job, bullc_job_cb cb, void *data);
/* Moves the job to delayed until `timestamp_ms` (ms since the epoch; a past
 * one: due at once), without counting an attempt (Node's moveToDelayed with
 * skipAttempt). Answers 1 on success. */
BULLC_EXPORT int bullc_job_move_to_delayed(bullc_job *job, int64_t timestamp_ms, bullc_job_cb cb, void *data);

/* How a job failed (flags of bullc_job_fail). */
enum {
    BULLC_FAIL_RETRY = 0,         /* an ordinary failure: retried per attempts/backoff */
    BULLC_FAIL_UNRECOVERABLE = 1, /* Node's UnrecoverableError: no retry */
    BULLC_FAIL_RATE_LIMITED = 2,  /* Node's RateLimitError (job.moveToWait): back to wait, no attempt counted,
                                     nothing stored; also for a failure of the worker rather than the job (it
                                     cannot start a command: out of fds or memory) */
    BULLC_FAIL_MOVED = 4          /* Node's WaitingChildrenError / DelayedError: the processor moved the job
                                     (bullc_job_move_to_*); nothing is stored, the message is ignored. A job
                                     that was not moved is left active for the stalled checker, as Node does */
};

/* Ends the processing of `job` with success. `result_json` is the return
 * value as JSON text (NULL means Node's `undefined`, stored as "null").
 * Loop thread only (asynchronous processors). Exactly one of
 * bullc_job_complete / bullc_job_fail per job; afterwards `job` is gone. An
 * invalid result_json fails the job instead and returns BULLC_EINVAL. */
BULLC_EXPORT int bullc_job_complete(bullc_job *job, const char *result_json);

/* Ends the processing of `job` with a failure: `message` becomes
 * failedReason (raw text) and the last line of the stack trace. `flags`: one
 * of BULLC_FAIL_*. Loop thread only. Afterwards `job` is gone. */
BULLC_EXPORT int bullc_job_fail(bullc_job *job, const char *message, int flags);

#ifdef __cplusplus
}
#endif
#endif
