/* SPDX-License-Identifier: MIT */
/* Queue administration and inspection on a bullc_queue handle, with the
 * semantics of Node BullMQ's Queue, QueueGetters and Job methods (same
 * scripts, same defaults). See docs/admin.md. */
#ifndef BULLC_ADMIN_H
#define BULLC_ADMIN_H

#include <stdbool.h>
#include <bullc/common.h>
#include <bullc/queue.h>
#include <bullc/redis.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Common rules of this header:
 * - Every call uses the queue handle's synchronous connection (connecting,
 *   and writing the queue's meta unless the handle skips it, on first use).
 * - Where Node returns an object, the call returns JSON text with Node's
 *   names in *out_json: malloc'd, the caller frees it with bullc_free. On an
 *   error *out_json is left untouched.
 * - State names are Node's: "waiting" (also "wait", the Redis key's name),
 *   "active", "delayed", "prioritized", "completed", "failed", "paused",
 *   "waiting-children". An unknown name is BULLC_EINVAL (Node silently
 *   counts it as an empty set); nothing is sent to Redis then.
 * - A job is JSON with Node's JobJson names, read from the job hash with
 *   Node's `Job.fromJSON` rules: {id, name, data, opts, progress,
 *   attemptsMade, attemptsStarted, stalledCounter, timestamp, delay,
 *   priority, returnvalue, stacktrace} always; processedOn, finishedOn,
 *   failedReason, deduplicationId, repeatJobKey, parentKey, parent,
 *   processedBy, deferredFailure when the job has them. `data`, `opts`
 *   (short stored keys mapped back to Node's names), `progress`,
 *   `returnvalue`, `stacktrace` and `parent` are parsed JSON; numbers that
 *   Node reads with parseInt are numbers (null when unreadable).
 *   Text that Node could not parse is kept as a JSON string rather than
 *   failing (data, opts, progress); a corrupt returnvalue is left out and a
 *   corrupt stacktrace is [] (as in Node). */

/* ---- Reading ------------------------------------------------------------ */

/* One job (Node's `queue.getJob(id)`), as JSON (see above). A missing job
 * is BULLC_ENOTFOUND (Node returns undefined). */
BULLC_EXPORT int bullc_queue_get_job(bullc_queue *queue, const char *job_id, char **out_json, bullc_error *err);

/* Jobs in `states` (Node's `queue.getJobs(types, start, end, asc)`): a JSON
 * array of jobs, state by state in the order given, each state's range
 * [start, end] (inclusive, negative from the end; Node's defaults 0, -1)
 * newest first unless `asc`. A job listed under two states appears once.
 * `states` NULL or `nstates` 0: Node's default set (active, completed,
 * delayed, failed, prioritized, waiting, waiting-children). Ids whose hash
 * is gone are skipped; bounded ranges are backfilled as Node does. */
BULLC_EXPORT int bullc_queue_get_jobs(bullc_queue *queue, const char *const *states, size_t nstates, int64_t start,
                                      int64_t end, bool asc, char **out_json, bullc_error *err);

/* Job counts (Node's `queue.getJobCounts(...types)`): a JSON object, one
 * key per state name as given ("waiting" counts the `wait` list). NULL/0:
 * Node's default set (as bullc_queue_get_jobs). */
BULLC_EXPORT int bullc_queue_get_job_counts(bullc_queue *queue, const char *const *states, size_t nstates,
                                            char **out_json, bullc_error *err);

/* The same, typed: counts[i] (caller-owned, `nstates` long) receives the
 * number of jobs in states[i], read in one call as getJobCounts does. The
 * states are required (`nstates` >= 1); an unknown one is BULLC_EINVAL and
 * nothing is sent. On an error `counts` is left as it was. */
BULLC_EXPORT int bullc_queue_count_jobs(bullc_queue *queue, const char *const *states, size_t nstates, int64_t *counts,
                                        bullc_error *err);

/* The state of a job (Node's `queue.getJobState(id)`): *out_state is a
 * static string, one of "completed", "failed", "delayed", "active",
 * "waiting", "prioritized", "waiting-children" or "unknown" (no such job in
 * any state; this is not an error, as in Node). */
BULLC_EXPORT int bullc_queue_get_job_state(bullc_queue *queue, const char *job_id, const char **out_state,
                                           bullc_error *err);

/* Cancels job `job_id` in the bullc worker that processes it, from any
 * process (`bullc cancel`; docs/worker-api.md): reads the job's lock token,
 * publishes the request with `reason` (NULL: Node's default, "This operation
 * was aborted") on the queue's cancel channel and waits up to `timeout_ms`
 * (> 0) for the worker holding the job under that token to answer, through
 * a bullc_cancel_listener. 0 when it cancelled the job (its worker id is
 * copied into `out_worker`, `out_size` bytes, when not NULL; the job then
 * ends as its processor ends it); BULLC_ENOTFOUND when the job does not exist
 * or no worker holds its lock; BULLC_ESTATE when no listening bullc worker
 * holds it (a Node worker, a worker without a listener, or its processor
 * already returned); Redis errors. Blocks the calling thread; same thread
 * rule as the queue. */
BULLC_EXPORT int bullc_queue_cancel_job(bullc_queue *queue, const char *job_id, const char *reason, int64_t timeout_ms,
                                        char *out_worker, size_t out_size, bullc_error *err);

/* Waits until job `job_id` completes or fails (Node's
 * `job.waitUntilFinished(queueEvents, ttl)`), blocking the calling thread: a
 * job already finished answers at once (BullMQ's isFinished script), else the
 * queue's events stream is read until the job's completed or failed event.
 * `timeout_ms` 0 waits without limit. On 0, *out_failed tells which, and
 * *out_value holds the return value as JSON text (completed) or the failed
 * reason (failed), malloc'd, for the caller to bullc_free; NULL when Redis
 * holds none. BULLC_ENOTFOUND for a job that does not exist (Node's "Missing
 * key for job <key>. isFinished", e.g. one removed on completion),
 * BULLC_ETIMEDOUT after `timeout_ms` (Node's message). The queue's
 * connection is busy meanwhile; same thread rule as the queue. */
BULLC_EXPORT int bullc_queue_wait_until_finished(bullc_queue *queue, const char *job_id, int64_t timeout_ms,
                                                 bool *out_failed, char **out_value, bullc_error *err);

/* A job's log lines (Node's `queue.getJobLogs(id, start, end, asc)`,
 * defaults 0, -1, true): JSON {"logs":[...], "count": <total lines>}. A
 * job without logs (or no job) gives {"logs":[],"count":0}, as in Node. */
BULLC_EXPORT int bullc_queue_get_job_logs(bullc_queue *queue, const char *job_id, int64_t start, int64_t end, bool asc,
                                          char **out_json, bullc_error *err);

/* Jobs per priority (Node's `queue.getCountsPerPriority(priorities)`): JSON
 * {"<priority>": count, ...}; priority 0 counts the wait list. Duplicates
 * are counted once. Priorities must be 0 ... 2097151. */
BULLC_EXPORT int bullc_queue_get_counts_per_priority(bullc_queue *queue, const int64_t *priorities, size_t count,
                                                     char **out_json, bullc_error *err);

/* Whether the queue is paused (Node's `queue.isPaused()`). */
BULLC_EXPORT int bullc_queue_is_paused(bullc_queue *queue, bool *out_paused, bullc_error *err);

/* The queue's meta (Node's `queue.getMeta()`): JSON with `paused` (bool),
 * `concurrency`, `max`, `duration`, `maxLenEvents` as numbers when set, and
 * any other meta field as a string (e.g. "version"). */
BULLC_EXPORT int bullc_queue_get_meta(bullc_queue *queue, char **out_json, bullc_error *err);

/* The global concurrency (Node's `getGlobalConcurrency()`); *out is 0 when
 * none is set (Node: null). */
BULLC_EXPORT int bullc_queue_get_global_concurrency(bullc_queue *queue, int64_t *out, bullc_error *err);

/* The global rate limit (Node's `getGlobalRateLimit()`); both 0 when unset
 * (Node: null). */
BULLC_EXPORT int bullc_queue_get_global_rate_limit(bullc_queue *queue, int64_t *out_max, int64_t *out_duration,
                                                   bullc_error *err);

/* Whether the queue's active jobs reached its global concurrency (Node's
 * `queue.isMaxed()`, BullMQ's isMaxed script): `*out` true when a global
 * concurrency is set and that many jobs are active; false without one. 0 or
 * a negative BULLC_E* code. Blocking; any thread that owns the queue handle. */
BULLC_EXPORT int bullc_queue_is_maxed(bullc_queue *queue, bool *out, bullc_error *err);

/* The rate limiter's remaining time in ms (Node's `getRateLimitTtl(maxJobs)`):
 * with `max_jobs` > 0 (or a global rate limit set), the TTL when the limit is
 * reached and 0 otherwise; with neither, the raw PTTL (-2: no key, -1: no
 * expiry). */
BULLC_EXPORT int bullc_queue_get_rate_limit_ttl(bullc_queue *queue, int64_t max_jobs, int64_t *out_ttl,
                                                bullc_error *err);

/* The workers connected to the queue (Node's `queue.getWorkers()`): CLIENT
 * LIST entries named "<prefix>:<base64(queue)>" or "...:w:<worker name>",
 * as a JSON array of objects with every CLIENT LIST field as a string,
 * `name` replaced by the queue's name and `rawname` the client name. Where
 * CLIENT is forbidden (managed Redis), Node's placeholder
 * [{"name":"GCP does not support client list"}]. */
BULLC_EXPORT int bullc_queue_get_workers(bullc_queue *queue, char **out_json, bullc_error *err);

/* Metrics of `type` "completed" or "failed" (Node's `queue.getMetrics(type,
 * start, end)`, defaults 0, -1): JSON {"meta":{"count","prevTS",
 * "prevCount"}, "data":[per-minute counts, newest first], "count": <data
 * points stored>}. */
BULLC_EXPORT int bullc_queue_get_metrics(bullc_queue *queue, const char *type, int64_t start, int64_t end,
                                         char **out_json, bullc_error *err);

/* The names of the queues under `prefix` (NULL: "bull") on the Redis that
 * `redis` describes (NULL: defaults and the environment): every name N with
 * a key "<prefix>:N:meta" or "<prefix>:N:id", found with SCAN. A JSON array
 * of strings, sorted. Not atomic (SCAN). */
BULLC_EXPORT int bullc_queue_list(const bullc_redis_opts *redis, const char *prefix, char **out_json, bullc_error *err);

/* ---- Queue actions ------------------------------------------------------ */

/* Pauses the queue globally (Node's `queue.pause()`): workers take no new
 * job; a `paused` event is written. */
BULLC_EXPORT int bullc_queue_pause(bullc_queue *queue, bullc_error *err);

/* Resumes it (Node's `queue.resume()`), moving a legacy 5.x paused list back
 * into wait; a `resumed` event is written. */
BULLC_EXPORT int bullc_queue_resume(bullc_queue *queue, bullc_error *err);

/* Removes every waiting and prioritized job (and delayed ones when
 * `delayed`), not active, completed or failed ones (Node's
 * `queue.drain(delayed)`). Job scheduler iterations stay. */
BULLC_EXPORT int bullc_queue_drain(bullc_queue *queue, bool delayed, bullc_error *err);

/* Removes the jobs in `state` ("completed" when NULL; also "wait"/"waiting",
 * "active" (unlocked ones), "paused", "delayed", "prioritized", "failed")
 * older than `grace_ms` (finishedOn for finished jobs, else the creation
 * time), at most `limit` (0: all), as Node's `queue.clean(grace, limit,
 * type)`: in calls of at most 10000, each writing a `cleaned` event. When
 * `out_json` is not NULL, it receives the removed ids as a JSON array. */
BULLC_EXPORT int bullc_queue_clean(bullc_queue *queue, int64_t grace_ms, int64_t limit, const char *state,
                                   char **out_json, bullc_error *err);

/* Removes the job hashes (and their logs, dependencies, processed, failed,
 * unsuccessful and lock keys) that no state of the queue references: what
 * the removal-by-age bug of BullMQ 5.66.6 left behind (Node's
 * `queue.removeOrphanedJobs(count, limit)`). Scans the queue's keys `count`
 * at a time (0: 1000) and checks each batch atomically, so a job added or
 * moved meanwhile is never taken for an orphan; stops once `limit` jobs are
 * removed (0: no limit) and stores how many were in `*removed` (may be
 * NULL). Blocking; any thread that owns the queue handle. */
BULLC_EXPORT int bullc_queue_remove_orphaned_jobs(bullc_queue *queue, int64_t count, int64_t limit, int64_t *removed,
                                                  bullc_error *err);

/* Destroys the queue and all its jobs and keys (Node's
 * `queue.obliterate({force, count})`): pauses it, then deletes `count` keys
 * per call (0: 1000) until done. With active jobs and no `force`: BULLC_ESTATE
 * ("Cannot obliterate queue with active jobs"), the queue stays paused and
 * nothing else is removed. */
BULLC_EXPORT int bullc_queue_obliterate(bullc_queue *queue, bool force, int64_t count, bullc_error *err);

/* Moves finished jobs of `state` ("failed" when NULL, or "completed") back to
 * wait (Node's `queue.retryJobs({state, count, timestamp})`): those finished
 * at or before `timestamp` (0: now), `count` per call (0: 1000) until none
 * is left. */
BULLC_EXPORT int bullc_queue_retry_jobs(bullc_queue *queue, const char *state, int64_t count, int64_t timestamp,
                                        bullc_error *err);

/* Moves every delayed job to wait (Node's `queue.promoteJobs({count})`),
 * `count` per call (0: 1000). */
BULLC_EXPORT int bullc_queue_promote_jobs(bullc_queue *queue, int64_t count, bullc_error *err);

/* Trims the events stream to about `max_len` entries (Node's
 * `queue.trimEvents`, XTRIM MAXLEN ~). *out_trimmed (may be NULL): entries
 * removed. */
BULLC_EXPORT int bullc_queue_trim_events(bullc_queue *queue, int64_t max_len, int64_t *out_trimmed, bullc_error *err);

/* Global concurrency (Node's `setGlobalConcurrency` / `removeGlobalConcurrency`):
 * at most `concurrency` (>= 1) jobs active at once across all workers. */
BULLC_EXPORT int bullc_queue_set_global_concurrency(bullc_queue *queue, int64_t concurrency, bullc_error *err);
BULLC_EXPORT int bullc_queue_remove_global_concurrency(bullc_queue *queue, bullc_error *err);

/* Global rate limit (Node's `setGlobalRateLimit(max, duration)` /
 * `removeGlobalRateLimit()`): at most `max` (>= 1) jobs per `duration_ms`
 * (>= 1) across all workers. */
BULLC_EXPORT int bullc_queue_set_global_rate_limit(bullc_queue *queue, int64_t max, int64_t duration_ms,
                                                   bullc_error *err);
BULLC_EXPORT int bullc_queue_remove_global_rate_limit(bullc_queue *queue, bullc_error *err);

/* Rate-limits the queue now for `expire_ms` (> 0) (Node's
 * `queue.rateLimit(ms)`): workers take no job until it expires. */
BULLC_EXPORT int bullc_queue_rate_limit(bullc_queue *queue, int64_t expire_ms, bullc_error *err);

/* Deletes the rate limiter key (Node's `removeRateLimitKey()`). */
BULLC_EXPORT int bullc_queue_remove_rate_limit_key(bullc_queue *queue, bullc_error *err);

/* Deletes the deduplication key of `dedup_id` (Node's
 * `queue.removeDeduplicationKey(id)`); *out_removed (may be NULL): 1 if
 * there was one, else 0. */
BULLC_EXPORT int bullc_queue_remove_deduplication_key(bullc_queue *queue, const char *dedup_id, int64_t *out_removed,
                                                      bullc_error *err);

/* The id of the job whose deduplication window `dedup_id` names (Node's
 * `queue.getDeduplicationJobId(id)`): *out_id is a new string the caller
 * frees with bullc_free, or NULL when no window is open (0 either way).
 * BULLC_EINVAL for an empty id. Blocking; any one thread at a time per
 * queue handle. */
BULLC_EXPORT int bullc_queue_get_deduplication_job_id(bullc_queue *queue, const char *dedup_id, char **out_id,
                                                      bullc_error *err);

/* Deletes the deduplication key of `dedup_id` only while it still names job
 * `job_id` (Node's `job.removeDeduplicationKey()`, BullMQ's
 * removeDeduplicationKey script): a job ends its own deduplication window
 * without ending a later job's. *out_removed (may be NULL): 1 if removed,
 * else 0 (no key, or it names another job). Same thread rule as the queue. */
BULLC_EXPORT int bullc_queue_remove_deduplication_key_of_job(bullc_queue *queue, const char *dedup_id,
                                                             const char *job_id, int64_t *out_removed,
                                                             bullc_error *err);

/* Deletes the "<prefix>:<queue>:priority" sorted set that BullMQ before 3.x
 * kept prioritized jobs in (Node's `queue.removeDeprecatedPriorityKey()`);
 * *out_removed (may be NULL): 1 if there was one, else 0. Same thread rule
 * as the queue. */
BULLC_EXPORT int bullc_queue_remove_deprecated_priority_key(bullc_queue *queue, int64_t *out_removed, bullc_error *err);

/* ---- Job actions, by id ------------------------------------------------ */

/* Removes a job, its keys and (when `remove_children`, Node's default) its
 * children (Node's `queue.remove(id, {removeChildren})`); a `removed` event
 * is written. BULLC_ENOTFOUND when there was no such job hash (Node reports
 * success; as in Node, an orphan id left in a state is dropped all the
 * same), BULLC_ELOCK when the job or a child is locked (being processed;
 * nothing removed), BULLC_ESTATE when it is the current job of a job
 * scheduler. */
BULLC_EXPORT int bullc_queue_remove_job(bullc_queue *queue, const char *job_id, bool remove_children, bullc_error *err);

/* Flags of bullc_queue_retry_job (Node's retry options). */
enum { BULLC_RETRY_RESET_ATTEMPTS_MADE = 1, BULLC_RETRY_RESET_ATTEMPTS_STARTED = 2 };

/* Retries a finished job (Node's `job.retry(state, opts)`): moves it from
 * `state` ("failed" when NULL, or "completed") back to wait (or prioritized),
 * clearing its result. BULLC_ENOTFOUND for no such job, BULLC_ESTATE when it
 * is not in `state`. */
BULLC_EXPORT int bullc_queue_retry_job(bullc_queue *queue, const char *job_id, const char *state, int flags,
                                       bullc_error *err);

/* Moves a delayed job to wait now (Node's `job.promote()`). BULLC_ENOTFOUND
 * for no such job, BULLC_ESTATE when it is not delayed. */
BULLC_EXPORT int bullc_queue_promote_job(bullc_queue *queue, const char *job_id, bullc_error *err);

/* Reschedules a delayed job to run `delay_ms` (>= 0) from now (Node's
 * `job.changeDelay(delay)`). BULLC_ENOTFOUND / BULLC_ESTATE (not delayed). */
BULLC_EXPORT int bullc_queue_change_job_delay(bullc_queue *queue, const char *job_id, int64_t delay_ms,
                                              bullc_error *err);

/* Changes a job's priority (0 ... 2097151), re-placing it if it is waiting
 * or prioritized; `lifo` puts it ahead of its peers (Node's
 * `job.changePriority({priority, lifo})`). BULLC_ENOTFOUND for no such job. */
BULLC_EXPORT int bullc_queue_change_job_priority(bullc_queue *queue, const char *job_id, int64_t priority, bool lifo,
                                                 bullc_error *err);

/* Replaces a job's data with `data_json` (stored minified; NULL means {})
 * (Node's `job.updateData`). BULLC_EINVAL for invalid JSON, BULLC_ENOTFOUND. */
BULLC_EXPORT int bullc_queue_update_job_data(bullc_queue *queue, const char *job_id, const char *data_json,
                                             bullc_error *err);

/* Sets a job's progress (a JSON number, object, string or boolean, as text)
 * and writes a `progress` event (Node's `queue.updateJobProgress`).
 * BULLC_EINVAL / BULLC_ENOTFOUND. */
BULLC_EXPORT int bullc_queue_update_job_progress(bullc_queue *queue, const char *job_id, const char *progress_json,
                                                 bullc_error *err);

/* Appends a log line to a job, keeping the last `keep_logs` lines (0: all)
 * (Node's `queue.addJobLog(id, row, keepLogs)`). *out_count (may be NULL):
 * the number of lines now. BULLC_ENOTFOUND for no such job. */
BULLC_EXPORT int bullc_queue_add_job_log(bullc_queue *queue, const char *job_id, const char *line, int64_t keep_logs,
                                         int64_t *out_count, bullc_error *err);

/* Clears a job's log, keeping its last `keep_logs` lines (0: none) (Node's
 * `job.clearLogs(keepLogs)`). As in Node, a job without logs, or no such
 * job, is no error. Same thread rule as the queue. */
BULLC_EXPORT int bullc_queue_clear_job_logs(bullc_queue *queue, const char *job_id, int64_t keep_logs,
                                            bullc_error *err);

#ifdef __cplusplus
}
#endif
#endif
