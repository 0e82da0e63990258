/* SPDX-License-Identifier: MIT */
/* Options of a job as it is added, with Node BullMQ's names and meaning. */
#ifndef BULLC_JOB_OPTS_H
#define BULLC_JOB_OPTS_H

#include <stdbool.h>
#include <bullc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Job options (Node's `JobsOptions`). Opaque; calls that take one only read
 * it, so one set of options may serve many adds. Not thread-safe.
 *
 * Supported, with Node's names: jobId, delay, priority, lifo, attempts,
 * backoff, removeOnComplete, removeOnFail, keepLogs, stackTraceLimit,
 * sizeLimit, timestamp, deduplication, failParentOnFailure,
 * continueParentOnFailure, ignoreDependencyOnFailure,
 * removeDependencyOnFailure. Values are checked when the job is added (the
 * setters only record them), with Node's rules plus a few more: see
 * docs/job-options.md. */
typedef struct bullc_job_opts bullc_job_opts;

/* Creates empty options (Node's defaults apply). 0 or BULLC_ENOMEM. */
BULLC_EXPORT int bullc_job_opts_new(bullc_job_opts **out);

/* Frees the options. NULL is a no-op. */
BULLC_EXPORT void bullc_job_opts_free(bullc_job_opts *opts);

/* Merges a JSON object with Node's option names, as a Node user writes them:
 * `{"attempts":3,"backoff":{"type":"exponential","delay":1000}}`. Keys given
 * replace earlier values. Invalid JSON, a non-object, an unknown option or an
 * ill-typed value: BULLC_EINVAL with a message naming the option, and `opts`
 * unchanged. */
BULLC_EXPORT int bullc_job_opts_merge_json(bullc_job_opts *opts, const char *json, bullc_error *err);

/* Checks the options as an add would (without data). 0 or BULLC_EINVAL. */
BULLC_EXPORT int bullc_job_opts_validate(const bullc_job_opts *opts, bullc_error *err);

/* The options as a JSON text with Node's names; free with bullc_free.
 * NULL on allocation failure. */
BULLC_EXPORT char *bullc_job_opts_to_json(const bullc_job_opts *opts);

/* Setters. Strings are copied. They return 0 or BULLC_ENOMEM (BULLC_EINVAL for
 * a NULL required string); range checks happen at add/validate time, so that
 * JSON and setters are checked by the same rules. */
BULLC_EXPORT int bullc_job_opts_set_job_id(bullc_job_opts *opts, const char *job_id);
BULLC_EXPORT int bullc_job_opts_set_delay(bullc_job_opts *opts, int64_t delay_ms);
BULLC_EXPORT int bullc_job_opts_set_priority(bullc_job_opts *opts, int64_t priority);
BULLC_EXPORT int bullc_job_opts_set_lifo(bullc_job_opts *opts, bool lifo);
BULLC_EXPORT int bullc_job_opts_set_attempts(bullc_job_opts *opts, int64_t attempts);
/* `type` is "fixed", "exponential" or the name of a custom strategy; a
 * negative jitter leaves it out. */
BULLC_EXPORT int bullc_job_opts_set_backoff(bullc_job_opts *opts, const char *type, int64_t delay_ms, double jitter);
/* removeOnComplete / removeOnFail: `true` removes at once, `false` keeps all. */
BULLC_EXPORT int bullc_job_opts_set_remove_on_complete(bullc_job_opts *opts, bool remove);
BULLC_EXPORT int bullc_job_opts_set_remove_on_fail(bullc_job_opts *opts, bool remove);
/* Keep the newest `count` jobs (count < 0: no count) and/or those younger
 * than `age_s` seconds (age_s < 0: no age limit). */
BULLC_EXPORT int bullc_job_opts_set_keep_on_complete(bullc_job_opts *opts, int64_t count, int64_t age_s);
BULLC_EXPORT int bullc_job_opts_set_keep_on_fail(bullc_job_opts *opts, int64_t count, int64_t age_s);
BULLC_EXPORT int bullc_job_opts_set_keep_logs(bullc_job_opts *opts, int64_t count);
BULLC_EXPORT int bullc_job_opts_set_stack_trace_limit(bullc_job_opts *opts, int64_t limit);
BULLC_EXPORT int bullc_job_opts_set_size_limit(bullc_job_opts *opts, int64_t bytes);
BULLC_EXPORT int bullc_job_opts_set_timestamp(bullc_job_opts *opts, int64_t ms);
/* ttl_ms <= 0: no ttl (the window lasts until the job finishes). */
BULLC_EXPORT int bullc_job_opts_set_deduplication(bullc_job_opts *opts, const char *id, int64_t ttl_ms, bool extend,
                                                  bool replace);

#ifdef __cplusplus
}
#endif
#endif
