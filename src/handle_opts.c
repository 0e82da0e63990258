/* SPDX-License-Identifier: MIT */
/* The settings of queues, workers and event listeners: opaque, so that an
 * option BullMQ adds is a new setter and not a new struct layout. Each setter
 * checks its value at once (Node's rules) and leaves the settings unchanged
 * when it refuses one. */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

int bullc__redis_opts_replace(bullc_redis_opts **dst, const bullc_redis_opts *src) {
    bullc_redis_opts *copy = NULL;
    if (src) {
        if (!(copy = calloc(1, sizeof *copy))) return BULLC_ENOMEM;
        if (bullc__redis_opts_copy(copy, src)) {
            free(copy);
            return BULLC_ENOMEM;
        }
    }
    bullc_redis_opts_free(*dst);
    *dst = copy;
    return 0;
}

/* ---- queue ------------------------------------------------------------------ */

const bullc_queue_opts bullc__queue_opts_default = {.max_len_events = 10000};

int bullc_queue_opts_new(bullc_queue_opts **out) {
    bullc_queue_opts *o = malloc(sizeof *o);
    if (!o) return BULLC_ENOMEM;
    *o = bullc__queue_opts_default;
    *out = o;
    return 0;
}

void bullc_queue_opts_free(bullc_queue_opts *o) {
    if (!o) return;
    bullc_redis_opts_free(o->redis);
    free(o->prefix);
    bullc_job_opts_free(o->default_job_opts);
    free(o);
}

int bullc_queue_opts_set_redis(bullc_queue_opts *o, const bullc_redis_opts *redis) {
    return bullc__redis_opts_replace(&o->redis, redis);
}
int bullc_queue_opts_set_prefix(bullc_queue_opts *o, const char *prefix) { return bullc__str_set(&o->prefix, prefix); }

int bullc_queue_opts_set_default_job_opts(bullc_queue_opts *o, const bullc_job_opts *job_opts) {
    bullc_job_opts *copy = NULL;
    if (job_opts && !(copy = bullc__job_opts_dup(job_opts))) return BULLC_ENOMEM;
    bullc_job_opts_free(o->default_job_opts);
    o->default_job_opts = copy;
    return 0;
}

int bullc_queue_opts_set_max_len_events(bullc_queue_opts *o, int64_t max_len) {
    if (max_len < 0) return BULLC_EINVAL;
    o->max_len_events = max_len;
    return 0;
}

int bullc_queue_opts_set_skip_meta_update(bullc_queue_opts *o, bool skip) {
    o->skip_meta_update = skip;
    return 0;
}

int bullc_queue_opts_set_tracer(bullc_queue_opts *o, bullc_tracer *tracer) {
    o->tracer = tracer;
    return 0;
}

int bullc_queue_opts_set_repeat_strategy(bullc_queue_opts *o, bullc_repeat_strategy_fn fn, void *data) {
    o->repeat_strategy = fn;
    o->repeat_data = data;
    return 0;
}

int bullc_worker_opts_set_repeat_strategy(bullc_worker_opts *o, bullc_repeat_strategy_fn fn, void *data) {
    o->repeat_strategy = fn;
    o->repeat_data = data;
    return 0;
}

int bullc_worker_opts_set_tracer(bullc_worker_opts *o, bullc_tracer *tracer) {
    o->tracer = tracer;
    return 0;
}

int bullc_worker_opts_set_group(bullc_worker_opts *o, bullc_worker_group *group) {
    o->group = group;
    return 0;
}

/* 0 (auto), 5 or 6: the majors whose protocol bullc has. */
static int set_major(int *dst, int major) {
    if (major != 0 && !bullc__protocol_of(major)) return BULLC_EINVAL;
    *dst = major;
    return 0;
}

int bullc_queue_opts_set_bullmq_version(bullc_queue_opts *o, int major) { return set_major(&o->bullmq_version, major); }
int bullc_worker_opts_set_bullmq_version(bullc_worker_opts *o, int major) {
    return set_major(&o->bullmq_version, major);
}
int bullc_queue_events_opts_set_bullmq_version(bullc_queue_events_opts *o, int major) {
    return set_major(&o->bullmq_version, major);
}

/* ---- worker ----------------------------------------------------------------- */

int bullc_worker_opts_new(bullc_worker_opts **out) {
    bullc_worker_opts *o = calloc(1, sizeof *o);
    if (!o) return BULLC_ENOMEM;
    o->concurrency = 1;
    o->lock_duration = 30000;
    o->stalled_interval = 30000;
    o->max_stalled_count = 1;
    o->drain_delay = 5;
    o->maximum_rate_limit_delay = 30000;
    o->autorun = true;
    *out = o;
    return 0;
}

void bullc_worker_opts_free(bullc_worker_opts *o) {
    if (!o) return;
    bullc_redis_opts_free(o->redis);
    free(o->prefix);
    free(o->name);
    cJSON_Delete(o->keep_complete);
    cJSON_Delete(o->keep_fail);
    free(o);
}

int bullc_worker_opts_set_redis(bullc_worker_opts *o, const bullc_redis_opts *redis) {
    return bullc__redis_opts_replace(&o->redis, redis);
}
int bullc_worker_opts_set_prefix(bullc_worker_opts *o, const char *prefix) {
    return bullc__str_set(&o->prefix, prefix);
}
int bullc_worker_opts_set_name(bullc_worker_opts *o, const char *name) { return bullc__str_set(&o->name, name); }

/* Sets an integer field when `ok`. */
#define SET_IF(field, value, ok)        \
    do {                                \
        if (!(ok)) return BULLC_EINVAL; \
        (field) = (value);              \
        return 0;                       \
    } while (0)

int bullc_worker_opts_set_concurrency(bullc_worker_opts *o, int n) { SET_IF(o->concurrency, n, n >= 1); }
int bullc_worker_opts_set_lock_duration(bullc_worker_opts *o, int64_t ms) { SET_IF(o->lock_duration, ms, ms > 0); }
int bullc_worker_opts_set_lock_renew_time(bullc_worker_opts *o, int64_t ms) { SET_IF(o->lock_renew_time, ms, ms >= 0); }
int bullc_worker_opts_set_stalled_interval(bullc_worker_opts *o, int64_t ms) {
    SET_IF(o->stalled_interval, ms, ms > 0);
}
int bullc_worker_opts_set_max_stalled_count(bullc_worker_opts *o, int n) { SET_IF(o->max_stalled_count, n, n >= 0); }
int bullc_worker_opts_set_drain_delay(bullc_worker_opts *o, double s) { SET_IF(o->drain_delay, s, s > 0); }
int bullc_worker_opts_set_maximum_rate_limit_delay(bullc_worker_opts *o, int64_t ms) {
    SET_IF(o->maximum_rate_limit_delay, ms, ms > 0);
}
int bullc_worker_opts_set_max_started_attempts(bullc_worker_opts *o, int64_t n) {
    SET_IF(o->max_started_attempts, n, n >= 0);
}
int bullc_worker_opts_set_metrics(bullc_worker_opts *o, int64_t n) { SET_IF(o->metrics_max_data_points, n, n >= 0); }
int bullc_worker_opts_set_job_timeout(bullc_worker_opts *o, int64_t ms) { SET_IF(o->job_timeout, ms, ms >= 0); }
int bullc_worker_opts_set_skip_stalled_check(bullc_worker_opts *o, bool b) { SET_IF(o->skip_stalled_check, b, true); }
int bullc_worker_opts_set_skip_lock_renewal(bullc_worker_opts *o, bool b) { SET_IF(o->skip_lock_renewal, b, true); }
int bullc_worker_opts_set_autorun(bullc_worker_opts *o, bool b) { SET_IF(o->autorun, b, true); }

int bullc_worker_opts_set_limiter(bullc_worker_opts *o, int64_t max, int64_t duration_ms) {
    if (max < 0 || duration_ms < 0 || (max > 0) != (duration_ms > 0)) return BULLC_EINVAL;
    o->limiter_max = max;
    o->limiter_duration = duration_ms;
    return 0;
}

/* Replaces *dst with `k`, a KeepJobs object (NULL: out of memory). */
static int set_keep(cJSON **dst, cJSON *k) {
    if (!k) return BULLC_ENOMEM;
    cJSON_Delete(*dst);
    *dst = k;
    return 0;
}

/* Node's KeepJobs {count} for a boolean or a bare count, else {age?, count?,
 * limit?}, as the worker passes removeOn* to moveToFinished. */
static int set_keep_jobs(cJSON **dst, int64_t count, int64_t age_s, int64_t limit) {
    const int64_t max = (int64_t)BULLC__MAX_SAFE_INTEGER;
    if (count > max || age_s > max || limit > max) return BULLC_EINVAL;
    cJSON *k = cJSON_CreateObject();
    bool ok = k != NULL;
    if (ok && age_s >= 0) ok = cJSON_AddNumberToObject(k, "age", (double)age_s) != NULL;
    if (ok && (count >= 0 || (age_s < 0 && limit <= 0)))
        ok = cJSON_AddNumberToObject(k, "count", (double)(count >= 0 ? count : -1)) != NULL;
    if (ok && limit > 0) ok = cJSON_AddNumberToObject(k, "limit", (double)limit) != NULL;
    if (!ok) cJSON_Delete(k);
    return set_keep(dst, ok ? k : NULL);
}

int bullc_worker_opts_set_remove_on_complete(bullc_worker_opts *o, bool remove) {
    return set_keep_jobs(&o->keep_complete, remove ? 0 : -1, -1, 0);
}
int bullc_worker_opts_set_remove_on_fail(bullc_worker_opts *o, bool remove) {
    return set_keep_jobs(&o->keep_fail, remove ? 0 : -1, -1, 0);
}
int bullc_worker_opts_set_keep_on_complete(bullc_worker_opts *o, int64_t count, int64_t age_s, int64_t limit) {
    return set_keep_jobs(&o->keep_complete, count, age_s, limit);
}
int bullc_worker_opts_set_keep_on_fail(bullc_worker_opts *o, int64_t count, int64_t age_s, int64_t limit) {
    return set_keep_jobs(&o->keep_fail, count, age_s, limit);
}

int bullc_worker_opts_set_processor(bullc_worker_opts *o, bullc_processor_fn fn, void *data) {
    o->processor = fn;
    o->blocking_processor = NULL;
    o->processor_data = data;
    return 0;
}

int bullc_worker_opts_set_blocking_processor(bullc_worker_opts *o, bullc_blocking_processor_fn fn, void *data) {
    o->blocking_processor = fn;
    o->processor = NULL;
    o->processor_data = data;
    return 0;
}

int bullc_worker_opts_set_backoff_strategy(bullc_worker_opts *o, bullc_backoff_fn fn, void *data) {
    o->backoff_strategy = fn;
    o->backoff_data = data;
    return 0;
}

/* ---- queue events ----------------------------------------------------------- */

const bullc_queue_events_opts bullc__queue_events_opts_default = {.blocking_timeout = 10000, .autorun = true};

int bullc_queue_events_opts_new(bullc_queue_events_opts **out) {
    bullc_queue_events_opts *o = malloc(sizeof *o);
    if (!o) return BULLC_ENOMEM;
    *o = bullc__queue_events_opts_default;
    *out = o;
    return 0;
}

void bullc_queue_events_opts_free(bullc_queue_events_opts *o) {
    if (!o) return;
    bullc_redis_opts_free(o->redis);
    free(o->prefix);
    free(o->last_event_id);
    free(o);
}

int bullc_queue_events_opts_set_redis(bullc_queue_events_opts *o, const bullc_redis_opts *redis) {
    return bullc__redis_opts_replace(&o->redis, redis);
}
int bullc_queue_events_opts_set_prefix(bullc_queue_events_opts *o, const char *prefix) {
    return bullc__str_set(&o->prefix, prefix);
}
int bullc_queue_events_opts_set_last_event_id(bullc_queue_events_opts *o, const char *id) {
    return id && !*id ? BULLC_EINVAL : bullc__str_set(&o->last_event_id, id);
}
int bullc_queue_events_opts_set_blocking_timeout(bullc_queue_events_opts *o, int64_t ms) {
    SET_IF(o->blocking_timeout, ms, ms >= 0);
}
int bullc_queue_events_opts_set_autorun(bullc_queue_events_opts *o, bool b) { SET_IF(o->autorun, b, true); }
