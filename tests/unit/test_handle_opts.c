/* SPDX-License-Identifier: MIT */
/* The settings of workers, queues and listeners: Node's defaults, each
 * setter's range (a refused value leaves the settings as they were), the
 * KeepJobs objects the worker sends for removeOn*, and copies that outlive
 * what they were made from. No Redis. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static bullc_worker_opts *wopts(void) {
    bullc_worker_opts *o = NULL;
    cr_assert_eq(bullc_worker_opts_new(&o), 0);
    return o;
}

Test(handle_opts, worker_defaults_are_nodes) {
    bullc_worker_opts *o = wopts();
    cr_assert_eq(o->concurrency, 1);
    cr_assert_eq(o->lock_duration, 30000);
    cr_assert_eq(o->lock_renew_time, 0, "0: half the lock duration, resolved by bullc_worker_new");
    cr_assert_eq(o->stalled_interval, 30000);
    cr_assert_eq(o->max_stalled_count, 1);
    cr_assert_float_eq(o->drain_delay, 5.0, 1e-9);
    cr_assert_eq(o->maximum_rate_limit_delay, 30000);
    cr_assert_eq(o->limiter_max, 0);
    cr_assert(o->autorun && !o->skip_stalled_check && !o->skip_lock_renewal);
    cr_assert(!o->keep_complete && !o->keep_fail, "keep every finished job");
    cr_assert(!o->redis && !o->prefix && !o->name && !o->processor && !o->blocking_processor);
    bullc_worker_opts_free(o);
}

Test(handle_opts, worker_setters_refuse_out_of_range_values_and_keep_the_old_one) {
    bullc_worker_opts *o = wopts();
    cr_assert_eq(bullc_worker_opts_set_concurrency(o, 0), BULLC_EINVAL);
    cr_assert_eq(o->concurrency, 1);
    cr_assert_eq(bullc_worker_opts_set_concurrency(o, 8), 0);
    cr_assert_eq(o->concurrency, 8);
    cr_assert_eq(bullc_worker_opts_set_lock_duration(o, 0), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_lock_renew_time(o, -1), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_stalled_interval(o, 0), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_max_stalled_count(o, -1), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_drain_delay(o, 0), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_maximum_rate_limit_delay(o, 0), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_max_started_attempts(o, -1), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_metrics(o, -1), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_job_timeout(o, -1), BULLC_EINVAL);
    cr_assert_eq(o->lock_duration, 30000);
    cr_assert_eq(o->stalled_interval, 30000);
    cr_assert_eq(o->max_stalled_count, 1);
    cr_assert_float_eq(o->drain_delay, 5.0, 1e-9);
    cr_assert_eq(o->maximum_rate_limit_delay, 30000);
    cr_assert_eq(bullc_worker_opts_set_drain_delay(o, 0.25), 0);
    cr_assert_float_eq(o->drain_delay, 0.25, 1e-9);
    cr_assert_eq(bullc_worker_opts_set_max_stalled_count(o, 0), 0);
    cr_assert_eq(o->max_stalled_count, 0);
    /* the limiter needs both values, or neither */
    cr_assert_eq(bullc_worker_opts_set_limiter(o, 5, 0), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_limiter(o, 0, 1000), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_limiter(o, -1, -1), BULLC_EINVAL);
    cr_assert_eq(o->limiter_max, 0);
    cr_assert_eq(bullc_worker_opts_set_limiter(o, 5, 1000), 0);
    cr_assert(o->limiter_max == 5 && o->limiter_duration == 1000);
    cr_assert_eq(bullc_worker_opts_set_limiter(o, 0, 0), 0);
    cr_assert(o->limiter_max == 0 && o->limiter_duration == 0);
    bullc_worker_opts_free(o);
}

static void keep_is(const cJSON *k, const char *want) {
    char *got = cJSON_PrintUnformatted(k);
    cr_assert_str_eq(got, want);
    free(got);
}

Test(handle_opts, remove_on_complete_and_fail_are_nodes_keep_jobs) {
    bullc_worker_opts *o = wopts();
    cr_assert_eq(bullc_worker_opts_set_remove_on_complete(o, true), 0);
    keep_is(o->keep_complete, "{\"count\":0}");
    cr_assert_eq(bullc_worker_opts_set_remove_on_complete(o, false), 0);
    keep_is(o->keep_complete, "{\"count\":-1}");
    cr_assert_eq(bullc_worker_opts_set_keep_on_complete(o, 10, -1, -1), 0);
    keep_is(o->keep_complete, "{\"count\":10}");
    cr_assert_eq(bullc_worker_opts_set_keep_on_complete(o, -1, 3600, -1), 0);
    keep_is(o->keep_complete, "{\"age\":3600}");
    cr_assert_eq(bullc_worker_opts_set_keep_on_fail(o, 5, 60, 2), 0);
    keep_is(o->keep_fail, "{\"age\":60,\"count\":5,\"limit\":2}");
    cr_assert_eq(bullc_worker_opts_set_keep_on_fail(o, -1, -1, -1), 0);
    keep_is(o->keep_fail, "{\"count\":-1}");
    cr_assert_eq(bullc_worker_opts_set_keep_on_fail(o, INT64_C(9007199254740992), -1, -1), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_keep_on_fail(o, -1, INT64_C(9007199254740992), -1), BULLC_EINVAL);
    keep_is(o->keep_fail, "{\"count\":-1}");
    keep_is(o->keep_complete, "{\"age\":3600}");
    bullc_worker_opts_free(o);
}

static void proc(bullc_job *job, void *data) { (void)job, (void)data; }
static void bproc(bullc_job *job, bullc_job_result *out, void *data) { (void)job, (void)out, (void)data; }

Test(handle_opts, one_processor_at_a_time) {
    bullc_worker_opts *o = wopts();
    int d;
    bullc_worker_opts_set_processor(o, proc, &d);
    cr_assert(o->processor == proc && o->processor_data == &d);
    bullc_worker_opts_set_blocking_processor(o, bproc, NULL);
    cr_assert(!o->processor && o->blocking_processor == bproc && !o->processor_data);
    bullc_worker_opts_set_processor(o, proc, NULL);
    cr_assert(o->processor == proc && !o->blocking_processor);
    bullc_worker_opts_free(o);
}

Test(handle_opts, a_worker_needs_a_processor_unless_autorun_is_off) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bullc_worker_opts *o = wopts();
    bullc_worker *w = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_worker_new(&w, &loop, "q", o, NULL, NULL, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "processor is required"), "%s", err.message);
    cr_assert_eq(bullc_worker_new(&w, &loop, "q", NULL, NULL, NULL, &err), BULLC_EINVAL);
    cr_assert_null(w);
    bullc_worker_opts_free(o);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(handle_opts, settings_keep_copies) {
    bullc_redis_opts *ro = NULL;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_set_host(ro, "redis.example", 6390);
    char prefix[] = "{p}";
    bullc_worker_opts *w = wopts();
    bullc_queue_opts *q = NULL;
    bullc_queue_events_opts *e = NULL;
    cr_assert_eq(bullc_queue_opts_new(&q), 0);
    cr_assert_eq(bullc_queue_events_opts_new(&e), 0);
    cr_assert_eq(bullc_worker_opts_set_redis(w, ro), 0);
    cr_assert_eq(bullc_queue_opts_set_redis(q, ro), 0);
    cr_assert_eq(bullc_queue_events_opts_set_redis(e, ro), 0);
    cr_assert_eq(bullc_worker_opts_set_prefix(w, prefix), 0);
    cr_assert_eq(bullc_queue_opts_set_prefix(q, prefix), 0);
    cr_assert_eq(bullc_queue_events_opts_set_prefix(e, prefix), 0);
    bullc_job_opts *jo = NULL;
    bullc_job_opts_new(&jo);
    bullc_job_opts_set_attempts(jo, 3);
    cr_assert_eq(bullc_queue_opts_set_default_job_opts(q, jo), 0);
    bullc_job_opts_free(jo);
    bullc_redis_opts_free(ro);
    prefix[1] = 'x';
    cr_assert_str_eq(bullc_redis_opts_host(w->redis), "redis.example");
    cr_assert_eq(bullc_redis_opts_port(q->redis), 6390);
    cr_assert_str_eq(bullc_redis_opts_host(e->redis), "redis.example");
    cr_assert_str_eq(w->prefix, "{p}");
    cr_assert_str_eq(q->prefix, "{p}");
    cr_assert_str_eq(e->prefix, "{p}");
    char *json = bullc_job_opts_to_json(q->default_job_opts);
    cr_assert_str_eq(json, "{\"attempts\":3}");
    bullc_free(json);
    /* NULL unsets */
    cr_assert_eq(bullc_worker_opts_set_redis(w, NULL), 0);
    cr_assert_eq(bullc_queue_opts_set_default_job_opts(q, NULL), 0);
    cr_assert(!w->redis && !q->default_job_opts);
    bullc_worker_opts_free(w);
    bullc_queue_opts_free(q);
    bullc_queue_events_opts_free(e);
}

Test(handle_opts, queue_and_listener_defaults_and_ranges) {
    bullc_queue_opts *q = NULL;
    bullc_queue_events_opts *e = NULL;
    cr_assert_eq(bullc_queue_opts_new(&q), 0);
    cr_assert_eq(bullc_queue_events_opts_new(&e), 0);
    cr_assert_eq(q->max_len_events, 10000);
    cr_assert(!q->skip_meta_update && !q->default_job_opts);
    cr_assert_eq(bullc_queue_opts_set_max_len_events(q, -1), BULLC_EINVAL);
    cr_assert_eq(q->max_len_events, 10000);
    cr_assert_eq(bullc_queue_opts_set_max_len_events(q, 0), 0);
    cr_assert_eq(q->max_len_events, 0);
    cr_assert_eq(e->blocking_timeout, 10000);
    cr_assert(e->autorun && !e->last_event_id);
    cr_assert_eq(bullc_queue_events_opts_set_blocking_timeout(e, -1), BULLC_EINVAL);
    cr_assert_eq(e->blocking_timeout, 10000);
    cr_assert_eq(bullc_queue_events_opts_set_last_event_id(e, ""), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_events_opts_set_last_event_id(e, "0-0"), 0);
    cr_assert_str_eq(e->last_event_id, "0-0");
    cr_assert_eq(bullc_queue_events_opts_set_last_event_id(e, NULL), 0);
    cr_assert_null(e->last_event_id, "NULL: only new events");
    bullc_queue_opts_free(q);
    bullc_queue_events_opts_free(e);
}
