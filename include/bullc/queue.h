/* SPDX-License-Identifier: MIT */
/* Queue: the producer side (adding jobs). */
#ifndef BULLC_QUEUE_H
#define BULLC_QUEUE_H

#include <stdbool.h>
#include <bullc/common.h>
#include <bullc/job_opts.h>
#include <bullc/redis.h>
#include <bullc/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A queue handle: one Redis connection (synchronous, opened on first use and
 * reopened after a failure) and the queue's keys. Opaque. One thread at a
 * time; use one handle per thread. */
typedef struct bullc_queue bullc_queue;

/* Queue settings (Node's QueueOptions). Opaque; created with
 * bullc_queue_opts_new, freed with bullc_queue_opts_free. bullc_queue_new
 * copies them, so they may be freed right after. Not thread-safe. Setters
 * copy strings and objects and return 0, BULLC_EINVAL (out of range; `opts`
 * unchanged) or BULLC_ENOMEM. */
typedef struct bullc_queue_opts bullc_queue_opts;

/* Creates the defaults: Redis from bullc_redis_opts' defaults then the
 * environment (REDIS_URL, REDIS_HOST...), prefix "bull", no default job
 * options, an events stream capped near 10000 entries, meta written. 0 or
 * BULLC_ENOMEM. */
BULLC_EXPORT int bullc_queue_opts_new(bullc_queue_opts **out);

/* Frees the settings. NULL is a no-op. */
BULLC_EXPORT void bullc_queue_opts_free(bullc_queue_opts *opts);

/* Where Redis is; NULL: the defaults, then the environment. */
BULLC_EXPORT int bullc_queue_opts_set_redis(bullc_queue_opts *opts, const bullc_redis_opts *redis);
/* The key prefix; NULL: "bull". May hold a hash tag: "{bull}". */
BULLC_EXPORT int bullc_queue_opts_set_prefix(bullc_queue_opts *opts, const char *prefix);
/* Node's defaultJobOptions, merged under each add's; NULL: none. Checked by
 * bullc_queue_new. */
BULLC_EXPORT int bullc_queue_opts_set_default_job_opts(bullc_queue_opts *opts, const bullc_job_opts *job_opts);
/* streams.events.maxLen: the events stream's approximate cap, >= 0. */
BULLC_EXPORT int bullc_queue_opts_set_max_len_events(bullc_queue_opts *opts, int64_t max_len);
/* true: do not write meta.version / opts.maxLenEvents. */
BULLC_EXPORT int bullc_queue_opts_set_skip_meta_update(bullc_queue_opts *opts, bool skip);
/* The BullMQ major spoken to the queue: 5 (bullmq 5.81.5's protocol), 6
 * (6.7.0's) or 0, auto: the major of the queue's meta.version when it has
 * one, else 6 (docs/versions.md). An explicit major that the queue's
 * meta.version contradicts makes every call fail with BULLC_EVERSION, having
 * written nothing. Anything else: BULLC_EINVAL, settings unchanged. */
BULLC_EXPORT int bullc_queue_opts_set_bullmq_version(bullc_queue_opts *opts, int major);
/* Traces adds (NULL: none, the default): each add is an "add <queue>.<name>"
 * span (addBulk: one "addBulk <queue>" span) of a new trace, and its context
 * goes into the job's options as bullmq-otel stores it, so a Node worker
 * with bullmq-otel (or bullc's) continues the trace. Borrowed: the tracer
 * must outlive the queue. Returns 0. */
BULLC_EXPORT int bullc_queue_opts_set_tracer(bullc_queue_opts *opts, bullc_tracer *tracer);
/* settings.repeatStrategy for this queue's scheduler upserts (see
 * bullc_repeat_strategy_fn); NULL: the cron engine. `data` is passed to
 * every call. Returns 0. */
BULLC_EXPORT int bullc_queue_opts_set_repeat_strategy(bullc_queue_opts *opts, bullc_repeat_strategy_fn fn, void *data);

/* Creates a handle for queue `name` (which may not contain ':'). Does not
 * connect: the first call that needs Redis does, reads the queue's
 * meta.version to settle the BullMQ major (bullc_queue_opts_set_bullmq_version)
 * and then writes the queue's meta (version "bullmq:6.7.0" or
 * "bullmq:5.81.5", opts.maxLenEvents) as a Node Queue of that major does; a
 * meta.version of an unknown major is never rewritten.
 * Returns 0 and sets *out, or BULLC_EINVAL / BULLC_ENOMEM. Free with
 * bullc_queue_free. */
BULLC_EXPORT int bullc_queue_new(bullc_queue **out, const char *name, const bullc_queue_opts *opts, bullc_error *err);

/* Closes the connection and frees the handle. NULL is a no-op. */
BULLC_EXPORT void bullc_queue_free(bullc_queue *queue);

/* Borrowed strings: the queue's name, its prefix and its base key "prefix:name:". */
BULLC_EXPORT const char *bullc_queue_name(const bullc_queue *queue);
BULLC_EXPORT const char *bullc_queue_prefix(const bullc_queue *queue);
BULLC_EXPORT const char *bullc_queue_key_base(const bullc_queue *queue);
/* The BullMQ major (5 or 6) the handle speaks: the explicit one, else the
 * one settled on its first connection, else (not connected yet) 6. Any thread
 * that owns the handle. */
BULLC_EXPORT int bullc_queue_bullmq_version(const bullc_queue *queue);

/* Adds a job, as Node's `queue.add(name, data, opts)`.
 *
 * `data_json` is the job data as JSON text (NULL means `{}`); it is checked
 * and stored minified (whitespace outside strings dropped). `opts` may be NULL;
 * the queue's default job options are merged under it. The add script is
 * chosen as Node chooses it (delayed when delay > 0, else prioritized when
 * priority > 0, else standard). Invalid data or options write nothing and
 * return BULLC_EINVAL.
 *
 * On success returns 0 and, when `out_id` is not NULL, the job id in *out_id
 * (free with bullc_free). With a `jobId` that already exists, or a
 * deduplication id whose window is open, Node returns the existing job's id
 * and adds nothing: so does this call, and then it returns 1 instead of 0
 * (`*out_id` is the existing job). It returns 2 when the job was added
 * although its deduplication key named another job: a delayed job that
 * `replace` removed, or a stale key (its job gone) that BullMQ recovered —
 * worth a log line, as such keys once blocked adds for good. */
BULLC_EXPORT int bullc_queue_add(bullc_queue *queue, const char *name, const char *data_json,
                                 const bullc_job_opts *opts, char **out_id, bullc_error *err);

/* One entry of a bulk add. `name`, `data_json`, `opts` are read; `id` and
 * `status` are written: the job id (free with bullc_free) and 0, or 1 for an
 * existing job / open deduplication window, or 2 (as bullc_queue_add). When
 * the add fails because of one job, that job's `status` is the (negative)
 * BULLC_E* code and every other one is 0. */
typedef struct bullc_bulk_job {
    const char *name;
    const char *data_json;
    const bullc_job_opts *opts;
    char *id;
    int status;
} bullc_bulk_job;

/* Adds `count` jobs in one round trip, atomically (MULTI/EXEC), as Node's
 * `queue.addBulk`. Every job is checked first: if any is invalid nothing is
 * written, BULLC_EINVAL is returned, that job's `status` holds the code and
 * the message starts with "job <index>: ". On a Redis failure nothing is
 * written either (and no job's `status` is negative unless one job's script
 * call failed). */
BULLC_EXPORT int bullc_queue_add_bulk(bullc_queue *queue, bullc_bulk_job *jobs, size_t count, bullc_error *err);

/* Checks the server and the queue before a program starts working on them,
 * on a connection of its own (the queue's meta is read before any write).
 * `*report_json` (free with bullc_free) is an object:
 *   {"redisVersion": "7.0.15", "cluster": false, "hashTagged": false,
 *    "maxmemoryPolicy": "noeviction" | null (CONFIG forbidden),
 *    "persistence": "aof" | "rdb" | "aof+rdb" | "none" | null,
 *    "queueVersion": "bullmq:6.7.0" | null (new queue),
 *    "bullmqVersion": 6 (the major the handle would speak) | null (a conflict),
 *    "errors": [...], "warnings": [...]}
 * `errors` holds what makes BullMQ lose jobs: an eviction policy other than
 * noeviction, a cluster with a prefix (or queue name) without a hash tag, a
 * meta.version whose major conflicts with the handle's explicit one or that
 * bullc does not speak (what the handle's calls refuse with BULLC_EVERSION).
 * `warnings`: persistence off, INFO/CONFIG forbidden (checks skipped).
 * Returns 0 when the report could be made (whatever it says), or the
 * connection error. */
BULLC_EXPORT int bullc_queue_check_server(bullc_queue *queue, char **report_json, bullc_error *err);

/* Checks `count` queues (count >= 1) at once, as bullc_queue_check_server
 * checks one, on one connection of its own made with the first queue's
 * Redis options (every queue must live on that server): the server is read
 * once and the queues' meta.version in pipelined slices, so thousands of
 * queues cost a few round trips, not a connection each. `*report_json`
 * (free with bullc_free) holds the server's fields, "errors" and "warnings"
 * (eviction policy, persistence, INFO/CONFIG forbidden) once, and "queues":
 * per queue in order {"name", "hashTagged", "queueVersion", "bullmqVersion",
 * "errors": [...]} with that queue's errors (a cluster without a hash tag, a
 * conflicting or unknown meta.version). The queues stay the caller's; they
 * are only read (one thread at a time per queue, as for their other calls).
 * Returns 0 when the report could be made (whatever it says), or the
 * connection error (nothing to free then). */
BULLC_EXPORT int bullc_queue_check_servers(bullc_queue *const *queues, size_t count, char **report_json,
                                           bullc_error *err);

/* Sends PING (connecting first if needed). 0, or the connection error. */
BULLC_EXPORT int bullc_queue_ping(bullc_queue *queue, bullc_error *err);

#ifdef __cplusplus
}
#endif
#endif
