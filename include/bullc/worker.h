/* SPDX-License-Identifier: MIT */
/* Worker: processes the jobs of one queue on a libuv loop, as Node's Worker. */
#ifndef BULLC_WORKER_H
#define BULLC_WORKER_H

#include <stdbool.h>
#include <bullc/common.h>
#include <bullc/job.h>
#include <bullc/redis.h>
#include <bullc/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s; /* libuv's loop; this header does not include uv.h */

/* A worker. Opaque. Every call, and every callback, is on the loop's thread
 * (except blocking processors, which run on libuv's thread pool). */
typedef struct bullc_worker bullc_worker;

/* A worker group: many workers (thousands of queues) on one command
 * connection and one blocking connection, whatever their number (on Redis
 * Cluster, one such pair per hash slot the queues are in: a BZPOPMIN names
 * keys of one slot; a shared hash tag such as the prefix "{bull}" keeps
 * them to one pair). The group
 * loads the scripts once per connection; its blocking connection waits with
 * one BZPOPMIN on the marker keys of every member whose queue is drained,
 * rotating their order so that no queue's marker is always served first; a
 * process-wide cap on jobs in process is optional. Opaque; loop thread only. */
typedef struct bullc_worker_group bullc_worker_group;

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

/* Worker settings, with Node's names (WorkerOptions) and defaults. Opaque;
 * created with bullc_worker_opts_new, freed with bullc_worker_opts_free.
 * bullc_worker_new copies what it needs, so one set may serve many workers
 * and be freed right after. Not thread-safe; use from one thread.
 *
 * Every setter returns 0, BULLC_EINVAL (a value out of range: `opts` is left
 * unchanged) or BULLC_ENOMEM. Strings and objects are copied. */
typedef struct bullc_worker_opts bullc_worker_opts;

/* Creates settings with Node's defaults: the Redis of bullc_redis_opts'
 * defaults then REDIS_URL / REDIS_HOST..., prefix "bull", concurrency 1,
 * lockDuration 30000 ms, lockRenewTime lockDuration / 2, stalledInterval
 * 30000 ms, maxStalledCount 1, drainDelay 5 s, no limiter,
 * maximumRateLimitDelay 30000 ms, keep every finished job, no
 * maxStartedAttempts, metrics off, autorun on, no processor. 0 or
 * BULLC_ENOMEM. */
BULLC_EXPORT int bullc_worker_opts_new(bullc_worker_opts **out);

/* Frees the settings. NULL is a no-op. */
BULLC_EXPORT void bullc_worker_opts_free(bullc_worker_opts *opts);

/* Where Redis is; NULL: the defaults, then the environment. */
BULLC_EXPORT int bullc_worker_opts_set_redis(bullc_worker_opts *opts, const bullc_redis_opts *redis);
/* The key prefix; NULL: "bull". May hold a hash tag: "{bull}". */
BULLC_EXPORT int bullc_worker_opts_set_prefix(bullc_worker_opts *opts, const char *prefix);
/* The worker's name (job field `pb`, client name suffix); NULL: none. */
BULLC_EXPORT int bullc_worker_opts_set_name(bullc_worker_opts *opts, const char *name);
/* The BullMQ major spoken to the queue: 5, 6 or 0 (auto: the queue's
 * meta.version major when it has one, else 6), as
 * bullc_queue_opts_set_bullmq_version. The worker reads meta.version on
 * every connection and at each stalled-jobs check: an explicit major it
 * contradicts, or a major that changed while running, is an error event
 * BULLC_EVERSION and the worker closes (fetching nothing more). Else
 * BULLC_EINVAL, settings unchanged. */
BULLC_EXPORT int bullc_worker_opts_set_bullmq_version(bullc_worker_opts *opts, int major);
/* Traces processing (NULL: none, the default): each job stored as completed
 * or failed is a "process <queue>" span, as Node's worker writes it, child
 * of the context a producer stored in the job (bullmq-otel's "tm"), else of
 * a new trace. Spans are queued for the tracer's thread on the loop thread,
 * never waited for. Borrowed: the tracer must outlive the worker. Returns 0. */
BULLC_EXPORT int bullc_worker_opts_set_tracer(bullc_worker_opts *opts, bullc_tracer *tracer);
/* Serves the queue through `group`'s two connections (on a cluster, those
 * of the queue's slot) instead of two of the worker's own (NULL: its own,
 * the default). The worker's own Redis settings are then unused. Its
 * blocking connection is not named after the queue, so Node's
 * Queue.getWorkers() does not list it; bullc_worker_get_next_job never
 * blocks. Borrowed: the group must outlive the worker (close it after every
 * member's close callback ran). Returns 0. */
BULLC_EXPORT int bullc_worker_opts_set_group(bullc_worker_opts *opts, bullc_worker_group *group);
/* Jobs processed at once: >= 1. */
BULLC_EXPORT int bullc_worker_opts_set_concurrency(bullc_worker_opts *opts, int concurrency);
/* lockDuration, ms: > 0. */
BULLC_EXPORT int bullc_worker_opts_set_lock_duration(bullc_worker_opts *opts, int64_t ms);
/* lockRenewTime, ms: >= 0; 0: half the lock duration. */
BULLC_EXPORT int bullc_worker_opts_set_lock_renew_time(bullc_worker_opts *opts, int64_t ms);
/* stalledInterval, ms: > 0. */
BULLC_EXPORT int bullc_worker_opts_set_stalled_interval(bullc_worker_opts *opts, int64_t ms);
/* maxStalledCount: >= 0. */
BULLC_EXPORT int bullc_worker_opts_set_max_stalled_count(bullc_worker_opts *opts, int count);
/* drainDelay, seconds: > 0; the longest block on an empty queue. */
BULLC_EXPORT int bullc_worker_opts_set_drain_delay(bullc_worker_opts *opts, double seconds);
/* limiter {max, duration}: at most `max` jobs per `duration_ms`, both > 0;
 * both 0: no limiter. */
BULLC_EXPORT int bullc_worker_opts_set_limiter(bullc_worker_opts *opts, int64_t max, int64_t duration_ms);
/* maximumRateLimitDelay, ms: > 0. */
BULLC_EXPORT int bullc_worker_opts_set_maximum_rate_limit_delay(bullc_worker_opts *opts, int64_t ms);
/* removeOnComplete / removeOnFail, the defaults for jobs that set none:
 * `true` removes a job as it finishes, `false` keeps all. */
BULLC_EXPORT int bullc_worker_opts_set_remove_on_complete(bullc_worker_opts *opts, bool remove);
BULLC_EXPORT int bullc_worker_opts_set_remove_on_fail(bullc_worker_opts *opts, bool remove);
/* Node's KeepJobs {count, age, limit}: keep the newest `count` jobs
 * (count < 0: no count) and/or those younger than `age_s` seconds (age_s <
 * 0: no age limit), removing at most `limit` old jobs per finished one
 * (limit <= 0: BullMQ's default). Values up to 2^53 - 1. */
BULLC_EXPORT int bullc_worker_opts_set_keep_on_complete(bullc_worker_opts *opts, int64_t count, int64_t age_s,
                                                        int64_t limit);
BULLC_EXPORT int bullc_worker_opts_set_keep_on_fail(bullc_worker_opts *opts, int64_t count, int64_t age_s,
                                                    int64_t limit);
/* maxStartedAttempts: >= 0; 0: no limit. */
BULLC_EXPORT int bullc_worker_opts_set_max_started_attempts(bullc_worker_opts *opts, int64_t attempts);
/* metrics.maxDataPoints: >= 0; 0: metrics off. */
BULLC_EXPORT int bullc_worker_opts_set_metrics(bullc_worker_opts *opts, int64_t max_data_points);
/* skipStalledCheck (default false): the worker never runs the stalled-jobs
 * check on its own (another process, or bullc_worker_check_stalled, does).
 * Returns 0. */
BULLC_EXPORT int bullc_worker_opts_set_skip_stalled_check(bullc_worker_opts *opts, bool skip);
/* skipLockRenewal (default false): the locks of the jobs in process are not
 * renewed, so a job running past lockDuration is found stalled by a stalled
 * check, as with Node's option. Returns 0. */
BULLC_EXPORT int bullc_worker_opts_set_skip_lock_renewal(bullc_worker_opts *opts, bool skip);
/* true (the default): start processing as soon as the loop runs; else call
 * bullc_worker_run, or process by hand (bullc_worker_get_next_job). */
BULLC_EXPORT int bullc_worker_opts_set_autorun(bullc_worker_opts *opts, bool autorun);
/* bullc's addition, ms: >= 0; 0: none. A job still processing past it is
 * failed ("job timed out"), its lock given up. A blocking processor's job is
 * timed from when a pool thread starts it, and keeps its slot until the
 * processor returns. */
BULLC_EXPORT int bullc_worker_opts_set_job_timeout(bullc_worker_opts *opts, int64_t ms);
/* The processor: an asynchronous one or a blocking one; setting one clears
 * the other, NULL clears it (no processor: manual processing, with autorun
 * off). `data` is passed to every call. */
BULLC_EXPORT int bullc_worker_opts_set_processor(bullc_worker_opts *opts, bullc_processor_fn fn, void *data);
BULLC_EXPORT int bullc_worker_opts_set_blocking_processor(bullc_worker_opts *opts, bullc_blocking_processor_fn fn,
                                                          void *data);
/* settings.backoffStrategy; NULL: none. */
BULLC_EXPORT int bullc_worker_opts_set_backoff_strategy(bullc_worker_opts *opts, bullc_backoff_fn fn, void *data);
/* settings.repeatStrategy for the scheduler iterations the worker schedules
 * (see bullc_repeat_strategy_fn); NULL: the cron engine. Loop thread. */
BULLC_EXPORT int bullc_worker_opts_set_repeat_strategy(bullc_worker_opts *opts, bullc_repeat_strategy_fn fn,
                                                       void *data);

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
    /* Node's 'paused': once after bullc_worker_pause, when the jobs in
     * process (and a fetch in flight, whose job is processed too) have
     * ended; never inside bullc_worker_pause. Not after a resume that came
     * first, nor while closing. */
    void (*paused)(bullc_worker *w, void *data);
    /* Node's 'resumed': inside bullc_worker_resume of a paused worker. */
    void (*resumed)(bullc_worker *w, void *data);
    /* Node's 'closing': once, inside the first bullc_worker_close, before
     * the worker stops fetching; `msg` is Node's "closing queue". */
    void (*closing)(bullc_worker *w, const char *msg, void *data);
} bullc_worker_events;

/* Creates a worker for `queue` on `loop`. Copies what it needs from `opts`
 * and `events` (which may be NULL). BULLC_EINVAL when autorun is on without
 * a processor. With autorun it starts on the loop's next iteration; else call
 * bullc_worker_run. Free with bullc_worker_free after its close callback
 * ran. */
BULLC_EXPORT int bullc_worker_new(bullc_worker **out, struct uv_loop_s *loop, const char *queue,
                                  const bullc_worker_opts *opts, const bullc_worker_events *events, void *events_data,
                                  bullc_error *err);

/* Starts fetching and processing (when autorun is off). 0 or BULLC_EINVAL if
 * already running or closing. */
BULLC_EXPORT int bullc_worker_run(bullc_worker *w);

/* Stops fetching new jobs (Node's worker.pause); jobs in process finish,
 * then the `paused` event runs. Resume runs `resumed` and fetches again. A
 * pause of a paused worker does nothing. Loop thread. */
BULLC_EXPORT void bullc_worker_pause(bullc_worker *w);
BULLC_EXPORT void bullc_worker_resume(bullc_worker *w);
BULLC_EXPORT bool bullc_worker_is_paused(const bullc_worker *w);
/* Running: started and not closing, and not paused with its jobs ended (as
 * Node's main loop, which returns once a pause has waited for them). */
BULLC_EXPORT bool bullc_worker_is_running(const bullc_worker *w);
/* Jobs being processed now. */
BULLC_EXPORT int bullc_worker_active_count(const bullc_worker *w);
/* The worker's id (a UUID; tokens are "<id>:<n>"). */
BULLC_EXPORT const char *bullc_worker_id(const bullc_worker *w);
/* The BullMQ major (5 or 6) the worker speaks to its queue: the explicit
 * one, else the one settled from the queue's meta.version on its last
 * connection, else (not connected yet) 6. Loop thread. */
BULLC_EXPORT int bullc_worker_bullmq_version(const bullc_worker *w);

/* Cancels a job this worker is processing (Node's worker.cancelJob): marks
 * it cancelled with `reason` (copied; NULL: Node's default "This operation
 * was aborted") and runs its cancel callback, if one is registered, before
 * returning. The processor decides how the job ends (bullc_job_on_cancel).
 * Returns 1 when the job was found (also when it was cancelled before: the
 * first reason stays, the callback does not run again), 0 when this worker
 * does not process it (unknown id, another worker's, already finished, its
 * processor already returned), BULLC_ENOMEM. Loop thread only. */
BULLC_EXPORT int bullc_worker_cancel_job(bullc_worker *w, const char *job_id, const char *reason);
/* Cancels every job the worker is processing (Node's cancelAllJobs), as
 * bullc_worker_cancel_job does each; the number of jobs found. Loop thread
 * only. */
BULLC_EXPORT int bullc_worker_cancel_all_jobs(bullc_worker *w, const char *reason);
/* Cancellation from other processes (bullc_queue_cancel_job, `bullc
 * cancel`): a listener holds one Redis connection in subscribe mode, shared
 * by every worker added to it (one per process is enough), and subscribes to
 * each worker's queue channel "<prefix>:<queue>:bullc:cancel". A request for
 * a job a member processes under the token named in it cancels the job as
 * bullc_worker_cancel_job does and is answered through the worker's own
 * command connection. Makes the listener on `loop` with a copy of `redis`
 * (NULL: REDIS_URL..., as a worker's defaults) and starts connecting (and
 * reconnecting, subscribing again). 0, or BULLC_EINVAL / BULLC_ENOMEM with
 * nothing made. Loop thread only, as every call on the listener. */
typedef struct bullc_cancel_listener bullc_cancel_listener;
BULLC_EXPORT int bullc_cancel_listener_new(bullc_cancel_listener **out, struct uv_loop_s *loop,
                                           const bullc_redis_opts *redis, bullc_error *err);
/* Adds worker `w` (borrowed: bullc_worker_free removes it): requests for its
 * queue reach it. A worker joins one listener. 0, BULLC_EINVAL (already a
 * member), BULLC_ECLOSED (the listener is closing), BULLC_ENOMEM. */
BULLC_EXPORT int bullc_cancel_listener_add(bullc_cancel_listener *l, bullc_worker *w, bullc_error *err);
/* Takes `w` out: requests no longer reach it. Not a member: a no-op. */
BULLC_EXPORT void bullc_cancel_listener_remove(bullc_cancel_listener *l, bullc_worker *w);
/* Closes the listener's connection; its members stay as they are. `cb`
 * (NULL: none) runs exactly once on the loop thread, after this call
 * returned; then call bullc_cancel_listener_free. BULLC_ECLOSED (nothing
 * done, `cb` never runs) on a second call. */
BULLC_EXPORT int bullc_cancel_listener_close(bullc_cancel_listener *l, void (*cb)(bullc_cancel_listener *l, void *data),
                                             void *data);
/* Frees a closed listener (the workers still in it are taken out). NULL is a
 * no-op. */
BULLC_EXPORT void bullc_cancel_listener_free(bullc_cancel_listener *l);

/* Changes the number of jobs processed at once while the worker runs
 * (Node's `worker.concurrency = n`): >= 1, else BULLC_EINVAL. A higher one
 * fetches more jobs at once; a lower one lets the jobs in process finish and
 * fetches again only below it. Blocking processors also share libuv's
 * thread pool (UV_THREADPOOL_SIZE). Loop thread only. */
BULLC_EXPORT int bullc_worker_set_concurrency(bullc_worker *w, int concurrency);
/* The current concurrency. Loop thread. */
BULLC_EXPORT int bullc_worker_concurrency(const bullc_worker *w);
/* How long, in seconds, the worker blocks on its queue's marker when the
 * queue is drained (Node's getBlockTimeout): with no delayed job due
 * (`block_until_ms` 0) the drain delay, at least Redis's shortest block
 * (0.001 s from Redis 7.0.8, else 0.002, known once the worker is ready);
 * with one due at `block_until_ms` (ms since the epoch) the time left, at
 * least that shortest block and at most 10 s, or the time past it (<= 0:
 * the worker fetches at once). Redis before 6 blocks whole seconds; the
 * worker rounds up what this returns. Loop thread. */
BULLC_EXPORT double bullc_worker_block_timeout(const bullc_worker *w, int64_t block_until_ms);

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

/* A manually taken job's move out of active, answered (Node's
 * job.moveToCompleted(value, token, fetchNext) and job.moveToFailed(err,
 * token, fetchNext)): as bullc_job_complete / bullc_job_fail (the failure
 * retried per the job's attempts and backoff, or stored), and with
 * `fetch_next` the same script call takes the next waiting job, locked with
 * the job's token (moveToFinished, or moveToDelayed for a failure retried
 * after a backoff; a retry at once and a rate-limited failure fetch none, as
 * in Node). Loop thread, for a worker without a processor (manual
 * processing). Returns 0: `job` is gone, and `cb` runs exactly once on the
 * loop thread, never inside this call: once the move is stored, with code 0
 * and the next job (then yours as one bullc_worker_get_next_job gives) or
 * NULL (none waiting, or not asked); or with NULL and a BULLC_E* code when
 * it was not stored (BULLC_ESTATE: the job is not active; BULLC_ELOCK: its
 * lock is missing or another token's; the worker's `error` event carries
 * Node's message; BULLC_ECLOSED: the worker closed first). A move Redis did
 * not answer is sent again once it is back, as a processor's. Returns
 * BULLC_EINVAL (`cb` NULL, a worker with a processor, the job already
 * handed back, or invalid result_json) or BULLC_ENOMEM with the job still
 * yours; BULLC_ECLOSED when the worker already gave the job up (closing):
 * the job is gone. `cb` never runs when this does not return 0. */
BULLC_EXPORT int bullc_job_move_to_completed(bullc_job *job, const char *result_json, bool fetch_next,
                                             bullc_next_job_cb cb, void *data);
/* `message` and `flags` as bullc_job_fail's. */
BULLC_EXPORT int bullc_job_move_to_failed(bullc_job *job, const char *message, int flags, bool fetch_next,
                                          bullc_next_job_cb cb, void *data);

/* Runs one stalled-jobs check now, as the worker's own check does every
 * stalledInterval (Node's moveStalledJobsToWait, the first step of
 * worker.startStalledCheckTimer()): active jobs whose lock is gone are moved
 * back to wait, or failed past maxStalledCount; each is a `stalled` event.
 * The check shares the queue's stalled-check key with every worker, so it
 * does nothing while that key is set (within stalledInterval of the last
 * check). Also with skipStalledCheck. `cb` (NULL: none) runs exactly once on
 * the loop thread if this returns 0, always after this call returned, with
 * 0 and the number of jobs found stalled, or a BULLC_E* code and 0. Returns
 * BULLC_ECONN (Redis out of reach, before `ready`), BULLC_ECLOSED (closing)
 * or BULLC_ENOMEM, and then never calls `cb`. Loop thread. */
typedef void (*bullc_stalled_check_cb)(bullc_worker *w, int code, int stalled, void *data);
BULLC_EXPORT int bullc_worker_check_stalled(bullc_worker *w, bullc_stalled_check_cb cb, void *data);

/* Closes the worker: stops fetching; unless `force`, waits up to
 * `timeout_ms` (0: no limit) for the jobs in process to finish and be stored
 * (a fetch in flight is work in process: the job it brings is processed too,
 * as Node's worker.close() does); then closes the connections. Jobs still
 * unfinished, and results still waiting for an unreachable Redis, are left
 * to the stalled checker (their locks expire), and an
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

/* Makes a group on `loop` with a copy of `redis` (NULL: REDIS_URL...,
 * as a worker's defaults) and starts connecting its two connections (with
 * seed nodes, a slot's pair connects when the slot's first member joins;
 * the slot map is read on the loop, never by a blocking call, when the
 * first member joins: members wait for it, and a round in which no seed
 * answered is reported on a member's error event and asked again).
 * 0, or BULLC_EINVAL / BULLC_ENOMEM with nothing made. Loop thread. */
BULLC_EXPORT int bullc_worker_group_new(bullc_worker_group **out, struct uv_loop_s *loop, const bullc_redis_opts *redis,
                                        bullc_error *err);
/* The most jobs the group's workers process at once, all queues together
 * (each worker's concurrency still holds); 0: no cap (the default). A
 * worker held back by the cap is served in turn as slots free. 0 or
 * BULLC_EINVAL (negative). */
BULLC_EXPORT int bullc_worker_group_set_concurrency(bullc_worker_group *g, int max);
/* Jobs the group's workers process now, all queues together. */
BULLC_EXPORT int bullc_worker_group_active_count(const bullc_worker_group *g);
/* Closes the group's connections, once every member worker's close
 * callback ran (BULLC_ESTATE, nothing done, while members are left). `cb`
 * runs exactly once on the loop thread, after this call returned; then
 * call bullc_worker_group_free. */
BULLC_EXPORT int bullc_worker_group_close(bullc_worker_group *g, void (*cb)(bullc_worker_group *g, void *data),
                                          void *data);
/* Frees a closed group (or one whose close failed to start: never used).
 * NULL is a no-op. */
BULLC_EXPORT void bullc_worker_group_free(bullc_worker_group *g);

#ifdef __cplusplus
}
#endif
#endif
