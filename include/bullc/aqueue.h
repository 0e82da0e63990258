/* SPDX-License-Identifier: MIT */
/* An asynchronous queue on a libuv loop: the reads a worker or a server
 * needs without stalling its loop on Redis (job counts, one job), with the
 * same calls and results as their synchronous forms in admin.h, and adds
 * (as queue.h's). See docs/admin.md ("On an event loop"). */
#ifndef BULLC_AQUEUE_H
#define BULLC_AQUEUE_H

#include <bullc/common.h>
#include <bullc/queue.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s; /* libuv's loop; this header does not include uv.h */

/* A queue handle whose calls answer through callbacks on one libuv loop,
 * over one connection of its own (reconnected with backoff, through
 * Sentinel, Cluster redirects and TLS as its settings say). Until its
 * first add it writes nothing to Redis, not even the queue's meta (a
 * reader, unlike bullc_queue). Every function below is for the loop's
 * thread only. */
typedef struct bullc_aqueue bullc_aqueue;

/* Connections that many bullc_aqueue handles share, for a program reading
 * the counts of thousands of queues (bullc-worker's /metrics): one
 * connection, or in a Redis Cluster one per master, each queue's calls
 * going to its slot's master. Loop thread only. */
typedef struct bullc_aqueue_conn bullc_aqueue_conn;

/* A call's outcome: `status` 0 and `json` (borrowed: valid until the
 * callback returns) as the synchronous call's *out_json, or a negative
 * BULLC_E* code, `json` NULL and `err` saying what failed (BULLC_ECLOSED:
 * the handle was closed before the answer came). */
typedef void (*bullc_aqueue_json_cb)(bullc_aqueue *aq, int status, const char *json, const bullc_error *err,
                                     void *data);

/* Creates a handle for queue `name` on `loop` and starts connecting. From
 * `opts` (NULL: defaults; copied, the caller keeps it) it takes the Redis
 * settings, the prefix and the BullMQ major (0: settled from the queue's
 * meta.version, as bullc_queue does, on each new connection), and for its
 * adds the default job options, max_len_events, skip_meta_update and the
 * tracer (its adds' spans, as bullc_queue_add's: borrowed, it must outlive
 * the handle; the repeat strategy is ignored). The connection is named as
 * Node's Queue's ("<prefix>:<base64(name)>"). Returns 0 and *out, or
 * BULLC_EINVAL (a bad name, a prefix without a hash tag on a cluster) or
 * BULLC_ENOMEM with `err` (may be NULL) filled. Close it with
 * bullc_aqueue_close, free it after the close callback. */
BULLC_EXPORT int bullc_aqueue_new(bullc_aqueue **out, struct uv_loop_s *loop, const char *name,
                                  const bullc_queue_opts *opts, bullc_error *err);

/* Makes a connection set on `loop` with the Redis settings `redis` (NULL:
 * defaults and environment; copied, the caller keeps them) and starts
 * connecting. In a cluster it first asks the seed nodes for the masters
 * and their slots: a blocking request within the connect timeout per seed,
 * so make it before the loop runs when that matters. If no seed answers,
 * the set is made all the same and reads the map on the loop (no blocking
 * call there), asking again with the reconnections' backoff: until it is
 * in, its handles' calls fail with BULLC_ECONN at once. The connections are
 * unnamed. Returns 0 and *out, or BULLC_EINVAL or BULLC_ENOMEM with `err`
 * (may be NULL) filled. Close it with
 * bullc_aqueue_conn_close, free it after the close callback. */
BULLC_EXPORT int bullc_aqueue_conn_new(bullc_aqueue_conn **out, struct uv_loop_s *loop, const bullc_redis_opts *redis,
                                       bullc_error *err);

/* As bullc_aqueue_new, but the handle's calls go over `conn` (made on the
 * same loop), which it does not own: the Redis settings of `opts` are
 * ignored, its prefix and BullMQ major are used. Many handles may share one
 * `conn`; each is closed and freed as any other. BULLC_ECLOSED when `conn`
 * is closing. */
BULLC_EXPORT int bullc_aqueue_new_shared(bullc_aqueue **out, bullc_aqueue_conn *conn, const char *name,
                                         const bullc_queue_opts *opts, bullc_error *err);

/* Closes the set: no handle may be made on it any more, and its connections
 * close once every handle made on it is closed (before or after this call).
 * `cb` (may be NULL) runs exactly once on the loop then, never inside this
 * call; then call bullc_aqueue_conn_free. A second call does nothing (its
 * `cb` never runs). */
BULLC_EXPORT void bullc_aqueue_conn_close(bullc_aqueue_conn *conn, void (*cb)(bullc_aqueue_conn *conn, void *data),
                                          void *data);

/* Frees a set whose close callback ran. NULL is a no-op. */
BULLC_EXPORT void bullc_aqueue_conn_free(bullc_aqueue_conn *conn);

/* Job counts (Node's `queue.getJobCounts(...types)`), the JSON object
 * bullc_queue_get_job_counts gives for the same `states` (NULL/0: Node's
 * default set; on a 5.x queue "paused" too). `states` is read during the
 * call only. Returns 0 and `cb` runs exactly once, later, on the loop
 * (never inside this call); or returns BULLC_EINVAL (an unknown state),
 * BULLC_ENOMEM or BULLC_ECLOSED and `cb` never runs. While Redis cannot be
 * reached (its first connection failed, or it was lost and not yet back)
 * `cb` gets BULLC_ECONN at once rather than waiting for it. */
BULLC_EXPORT int bullc_aqueue_get_job_counts(bullc_aqueue *aq, const char *const *states, size_t nstates,
                                             bullc_aqueue_json_cb cb, void *data);

/* One job (Node's `queue.getJob(id)`): the JSON bullc_queue_get_job gives,
 * or BULLC_ENOTFOUND. `job_id` is copied. Same contract as
 * bullc_aqueue_get_job_counts (BULLC_EINVAL: an empty or NULL id). */
BULLC_EXPORT int bullc_aqueue_get_job(bullc_aqueue *aq, const char *job_id, bullc_aqueue_json_cb cb, void *data);

/* An add's outcome: `status` as bullc_queue_add's return (0 added, 1 the id
 * of a job that already had that jobId or deduplication id, 2 added over a
 * stale deduplication key) and `job_id` (borrowed: valid until the callback
 * returns), or a negative BULLC_E* code, `job_id` NULL and `err` saying what
 * failed. */
typedef void (*bullc_aqueue_add_cb)(bullc_aqueue *aq, int status, const char *job_id, const bullc_error *err,
                                    void *data);

/* A bulk add's outcome: `status` 0 and every job's `id` and `status` filled
 * as bullc_queue_add_bulk fills them, or a negative BULLC_E* code and `err`
 * (the failing job's `status` negative, its message starting "job <i>: ").
 * `jobs` (`count` of them, the handle's copies of the caller's) are
 * borrowed: valid until the callback returns. */
typedef void (*bullc_aqueue_bulk_cb)(bullc_aqueue *aq, int status, const bullc_bulk_job *jobs, size_t count,
                                     const bullc_error *err, void *data);

/* Adds a job as bullc_queue_add does (Node's `queue.add`), on the handle's
 * connection: the queue's meta is written with its first add on each
 * connection, as bullc_queue writes it; the handle's default job options
 * (bullc_queue_opts_set_default_job_opts) apply. `name`, `data_json` and
 * `opts` are checked and copied during the call (the caller keeps them).
 * Returns 0 and `cb` runs exactly once, later, on the loop (never inside
 * this call); or returns BULLC_EINVAL (a bad name, data or option: nothing
 * is written), BULLC_ENOMEM or BULLC_ECLOSED with `err` (may be NULL)
 * filled, and `cb` never runs. A job with `repeat` on a 5.x queue is Node
 * 5's legacy repeatable job, as bullc_queue_add makes it: two calls, the
 * `repeat` entry and hash (addRepeatableJob) and then the first iteration's
 * delayed job, whose id `cb` gets (0 and `job_id` NULL: its limit or end
 * already reached, nothing written). Lost between or during those calls,
 * `cb` gets the error once: the entry may have been written (it has if the
 * second call was sent), the job too if the second call was out; adding it
 * again writes the same entry and, in the same time slot, the same job. On
 * a handle of bullc_aqueue_new_shared the add goes over the set's
 * connection (in a cluster, its queue's slot's master's), between the other
 * handles' calls; bullc_aqueue_close answers it if its reply has not come.
 *
 * While Redis is known to be down `cb` gets BULLC_ECONN at once, and
 * nothing was written. When the connection breaks (or a command times out)
 * after the add was sent and before its reply came, `cb` gets BULLC_ECONN
 * (or BULLC_ETIMEDOUT) with a message saying the add may have been written:
 * the handle never sends an add twice. Adding it again with the same jobId
 * or deduplication id is safe (Redis keeps one job, and the add answers 1);
 * without either it may make a second job. */
BULLC_EXPORT int bullc_aqueue_add(bullc_aqueue *aq, const char *name, const char *data_json, const bullc_job_opts *opts,
                                  bullc_aqueue_add_cb cb, void *data, bullc_error *err);

/* Adds `count` jobs (count >= 1) in one transaction (MULTI/EXEC: all or
 * none), as bullc_queue_add_bulk does (Node's `queue.addBulk`). Every job is
 * checked during the call: if one is invalid nothing is written,
 * BULLC_EINVAL is returned, that job's `status` in `jobs` holds the code and
 * the message starts with "job <index>: ". `jobs`' name, data and options
 * are copied (their `id` and `status` are not written on success: the
 * results come in `cb`'s copies). Same contract as bullc_aqueue_add
 * otherwise; a batch is answered whole, never in part. */
BULLC_EXPORT int bullc_aqueue_add_bulk(bullc_aqueue *aq, bullc_bulk_job *jobs, size_t count, bullc_aqueue_bulk_cb cb,
                                       void *data, bullc_error *err);

/* Closes the handle: the callback of every call not answered yet runs now,
 * once, with BULLC_ECLOSED (new calls return BULLC_ECLOSED); `cb` (may be
 * NULL) runs exactly once on the loop when the connection is closed, then
 * call bullc_aqueue_free. A second call does nothing (its `cb` never runs). */
BULLC_EXPORT void bullc_aqueue_close(bullc_aqueue *aq, void (*cb)(bullc_aqueue *aq, void *data), void *data);

/* Frees a handle whose close callback ran. NULL is a no-op. */
BULLC_EXPORT void bullc_aqueue_free(bullc_aqueue *aq);

#ifdef __cplusplus
}
#endif

#endif
