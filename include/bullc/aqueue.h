/* SPDX-License-Identifier: MIT */
/* Asynchronous queue getters on a libuv loop: the reads a worker or a server
 * needs without stalling its loop on Redis (job counts, one job), with the
 * same calls and results as their synchronous forms in admin.h. See
 * docs/admin.md ("On an event loop"). */
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
 * Sentinel, Cluster redirects and TLS as its settings say). It writes
 * nothing to Redis: not even the queue's meta (a reader, unlike
 * bullc_queue). Every function below is for the loop's thread only. */
typedef struct bullc_aqueue bullc_aqueue;

/* A call's outcome: `status` 0 and `json` (borrowed: valid until the
 * callback returns) as the synchronous call's *out_json, or a negative
 * BULLC_E* code, `json` NULL and `err` saying what failed (BULLC_ECLOSED:
 * the handle was closed before the answer came). */
typedef void (*bullc_aqueue_json_cb)(bullc_aqueue *aq, int status, const char *json, const bullc_error *err,
                                     void *data);

/* Creates a handle for queue `name` on `loop` and starts connecting. From
 * `opts` (NULL: defaults; copied, the caller keeps it) it takes the Redis
 * settings, the prefix and the BullMQ major (0: settled from the queue's
 * meta.version, as bullc_queue does, on each new connection); the other
 * options are a producer's and are ignored. The connection is named as
 * Node's Queue's ("<prefix>:<base64(name)>"). Returns 0 and *out, or
 * BULLC_EINVAL (a bad name, a prefix without a hash tag on a cluster) or
 * BULLC_ENOMEM with `err` (may be NULL) filled. Close it with
 * bullc_aqueue_close, free it after the close callback. */
BULLC_EXPORT int bullc_aqueue_new(bullc_aqueue **out, struct uv_loop_s *loop, const char *name,
                                  const bullc_queue_opts *opts, bullc_error *err);

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
