/* SPDX-License-Identifier: MIT */
/* Job schedulers (Node BullMQ's `queue.upsertJobScheduler` and friends):
 * a scheduler makes one job per iteration, every N ms or on a cron
 * pattern, from a template (name, data, options). A worker (bullc's or
 * Node's) that takes an iteration's job schedules the next one, so Node and
 * bullc workers share schedulers. See docs/schedulers.md. */
#ifndef BULLC_SCHEDULER_H
#define BULLC_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>
#include <bullc/common.h>
#include <bullc/job_opts.h>
#include <bullc/queue.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A scheduler's repeat options (Node's RepeatOptions): exactly one of
 * `every` and `pattern`, the rest optional. Opaque: the setters check each
 * value alone (BULLC_EINVAL leaves the object unchanged); how they combine
 * is checked by bullc_queue_upsert_job_scheduler, with Node's messages. Any
 * thread; one object per thread at a time. */
typedef struct bullc_scheduler_opts bullc_scheduler_opts;

/* A new, empty object in *out (freed with bullc_scheduler_opts_free). */
BULLC_EXPORT int bullc_scheduler_opts_new(bullc_scheduler_opts **out);
BULLC_EXPORT void bullc_scheduler_opts_free(bullc_scheduler_opts *opts);
/* `every`: an iteration every `ms` (>= 1) milliseconds. */
BULLC_EXPORT int bullc_scheduler_opts_set_every(bullc_scheduler_opts *opts, int64_t ms);
/* `pattern`: a cron expression (cron-parser's syntax, seconds optional);
 * `tz` (may be NULL): the IANA zone it is read in (default UTC). Copied. */
BULLC_EXPORT int bullc_scheduler_opts_set_pattern(bullc_scheduler_opts *opts, const char *pattern, const char *tz);
/* `limit`: at most `n` (>= 0) iterations. */
BULLC_EXPORT int bullc_scheduler_opts_set_limit(bullc_scheduler_opts *opts, int64_t n);
/* `startDate` / `endDate`: epoch milliseconds (>= 0). */
BULLC_EXPORT int bullc_scheduler_opts_set_start_date(bullc_scheduler_opts *opts, int64_t ms);
BULLC_EXPORT int bullc_scheduler_opts_set_end_date(bullc_scheduler_opts *opts, int64_t ms);
/* `immediately`: the first iteration of a pattern runs now. */
BULLC_EXPORT int bullc_scheduler_opts_set_immediately(bullc_scheduler_opts *opts, bool immediately);
/* `offset`: with `every`, iterations at `ms` (>= 0) past each interval. */
BULLC_EXPORT int bullc_scheduler_opts_set_offset(bullc_scheduler_opts *opts, int64_t ms);

/* Creates or updates scheduler `id` (Node's `queue.upsertJobScheduler(id,
 * repeat, {name, data, opts})`) and adds its next iteration's job. `name`
 * NULL: the id; `data_json` NULL: {}; `opts` (may be NULL) over the queue's
 * default job options: the template of every iteration. Returns 0 with the
 * next job's id in *out_job_id (may be NULL; malloc'd, freed with
 * bullc_free), or 1 when nothing is scheduled because `limit` is 0 or the
 * pattern has no later time before `endDate` (*out_job_id is set to NULL).
 * Invalid options (both or neither of every and pattern, immediately with a
 * start date, an end date in the past, an invalid pattern or zone, invalid
 * job options): BULLC_EINVAL and nothing is written. The queue's thread. */
BULLC_EXPORT int bullc_queue_upsert_job_scheduler(bullc_queue *queue, const char *id,
                                                  const bullc_scheduler_opts *repeat, const char *name,
                                                  const char *data_json, const bullc_job_opts *opts, char **out_job_id,
                                                  bullc_error *err);

/* Scheduler `id` (Node's `queue.getJobScheduler(id)`) as JSON in *out_json
 * (malloc'd, bullc_free): {key, name, next, iterationCount?, limit?,
 * startDate?, endDate?, tz?, pattern?, every?, offset?, template?: {data?,
 * opts?}} with Node's names. No such scheduler: BULLC_ENOTFOUND (Node
 * returns undefined). On a BullMQ 5.x queue an id with a colon and no hash
 * is answered as Node 5 answers it, its parts as a legacy repeatable key:
 * {key, name, id, endDate, tz, pattern, next} (nulls where empty). */
BULLC_EXPORT int bullc_queue_get_job_scheduler(bullc_queue *queue, const char *id, char **out_json, bullc_error *err);

/* Schedulers by next run (Node's `queue.getJobSchedulers(start, end, asc)`,
 * defaults 0, -1, false): a JSON array of the objects above, ranks [start,
 * end] inclusive, latest first unless `asc`. As in Node 6, a listed id
 * whose scheduler hash is gone is removed and left out; on a BullMQ 5.x
 * queue, as in Node 5, nothing is removed and such an id is listed as its
 * legacy key's parts (see above) when it has a colon, else as null. */
BULLC_EXPORT int bullc_queue_get_job_schedulers(bullc_queue *queue, int64_t start, int64_t end, bool asc,
                                                char **out_json, bullc_error *err);

/* How many schedulers the queue has (Node's `getJobSchedulersCount()`). */
BULLC_EXPORT int bullc_queue_get_job_schedulers_count(bullc_queue *queue, int64_t *out_count, bullc_error *err);

/* Removes scheduler `id` and its pending iteration (Node's
 * `queue.removeJobScheduler(id)`): 0 when it was removed, 1 when there was
 * no such scheduler (Node's false). A job of it that is already active
 * finishes, and no worker schedules another. */
BULLC_EXPORT int bullc_queue_remove_job_scheduler(bullc_queue *queue, const char *id, bullc_error *err);

#ifdef __cplusplus
}
#endif

#endif
