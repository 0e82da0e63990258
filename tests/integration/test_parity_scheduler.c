/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job_scheduler.test.ts, reproduced with bullc's scheduler API
 * (scheduler.h): validation with Node's messages and nothing written, upsert
 * of the same id and of several ids, the template, get, count and remove.
 * The iterations under workers are compat_scheduler_interop's. */
#include "test_sched_util.h"

TestSuite(parity_scheduler, .timeout = 60);

/* Upserts and expects Node's error message; nothing may be written. */
static void refused(ph *h, bullc_scheduler_opts *o, const char *message) {
    bullc_error err = {0};
    char *id = (char *)"untouched";
    cr_assert_eq(bullc_queue_upsert_job_scheduler(h->q, "s", o, NULL, NULL, NULL, &id, &err), BULLC_EINVAL);
    cr_assert_str_eq(err.message, message);
    cr_assert_null(id);
    int64_t n = -1;
    cr_assert_eq(bullc_queue_get_job_schedulers_count(h->q, &n, &err), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(ph_count(h, "delayed") + ph_count(h, "waiting"), 0);
    bullc_scheduler_opts_free(o);
}

static int64_t count(ph *h) {
    bullc_error err = {0};
    int64_t n = -1;
    cr_assert_eq(bullc_queue_get_job_schedulers_count(h->q, &n, &err), 0, "%s", err.message);
    return n;
}

/* node: "should throw an error when using .pattern and .every simultaneously" */
Test(parity_scheduler, pattern_and_every) {
    ph *h = ph_new("q");
    bullc_scheduler_opts *o = every(5000);
    bullc_scheduler_opts_set_pattern(o, "*/1 * * * * *", NULL);
    refused(h, o, "Both .pattern and .every options are defined for this repeatable job");
    ph_end(h);
}

/* node: "should throw an error when not specifying .pattern or .every" */
Test(parity_scheduler, neither_pattern_nor_every) {
    ph *h = ph_new("q");
    bullc_scheduler_opts *o;
    bullc_scheduler_opts_new(&o);
    refused(h, o, "Either .pattern or .every options must be defined for this repeatable job");
    ph_end(h);
}

/* node: "should throw an error when using .immediately and .startDate simultaneously" */
Test(parity_scheduler, immediately_and_start_date) {
    ph *h = ph_new("q");
    bullc_scheduler_opts *o = pattern("*/5 * * * * *");
    bullc_scheduler_opts_set_immediately(o, true);
    bullc_scheduler_opts_set_start_date(o, (int64_t)time(NULL) * 1000 + 60000);
    refused(h, o, "Both .immediately and .startDate options are defined for this repeatable job");
    ph_end(h);
}

/* node: "[when endDate is not greater than current timestamp] throws an error" */
Test(parity_scheduler, end_date_in_the_past) {
    ph *h = ph_new("q");
    bullc_scheduler_opts *o = every(100);
    bullc_scheduler_opts_set_end_date(o, (int64_t)time(NULL) * 1000 - 1000);
    refused(h, o, "End date must be greater than current timestamp");
    ph_end(h);
}

/* node: "[when job scheduler does not exist] should return undefined" */
Test(parity_scheduler, get_missing) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    char *json = (char *)"untouched";
    cr_assert_eq(bullc_queue_get_job_scheduler(h->q, "nope", &json, &err), BULLC_ENOTFOUND);
    cr_assert_str_eq(json, "untouched");
    ph_end(h);
}

/* node: "[when repeatable job does not exist] returns false" */
Test(parity_scheduler, remove_missing) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "nope", &err), 1, "%s", err.message);
    ph_end(h);
}

/* node: "[when job schedulers have same id and different every pattern] should create only one job scheduler" */
Test(parity_scheduler, same_id_twice) {
    ph *h = ph_new("q");
    bullc_free(upsert(h, "test", every(1000), NULL, NULL, NULL));
    bullc_free(upsert(h, "test", every(2000), NULL, NULL, NULL));
    cr_assert_eq(count(h), 1);
    cr_assert_eq(ph_count(h, "delayed") + ph_count(h, "waiting"), 1);
    char *json = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_scheduler(h->q, "test", &json, &err), 0, "%s", err.message);
    cJSON *s = cJSON_Parse(json);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(s, "every")->valuedouble, 2000);
    cJSON_Delete(s);
    bullc_free(json);
    ph_end(h);
}

/* node: "[when jobs have the same cron pattern and different job scheduler id] should create multiple jobs" */
Test(parity_scheduler, same_pattern_two_ids) {
    ph *h = ph_new("q");
    bullc_free(upsert(h, "test-1", pattern("0 * 1 * *"), NULL, NULL, NULL));
    bullc_free(upsert(h, "test-2", pattern("0 * 1 * *"), NULL, NULL, NULL));
    cr_assert_eq(count(h), 2);
    cr_assert_eq(ph_count(h, "delayed"), 2);
    ph_end(h);
}

static void clock_restore(void) { bullc_test_clock_set(0); }

/* node: "should create job schedulers with different cron patterns" */
Test(parity_scheduler, different_patterns, .fini = clock_restore) {
    ph *h = ph_new("q");
    /* Node's frozen instant: on the real clock, in an hour's tenth minute
     * "2 10 * * * *" could fire first */
    bullc_test_clock_set(1486481040000); /* 2017-02-07T15:24:00.000Z */
    bullc_free(upsert(h, "first", pattern("10 * * * * *"), "first", NULL, NULL));
    bullc_free(upsert(h, "second", pattern("2 10 * * * *"), "second", NULL, NULL));
    char *json = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_schedulers(h->q, 0, -1, true, &json, &err), 0, "%s", err.message);
    cJSON *list = cJSON_Parse(json);
    cr_assert_eq(cJSON_GetArraySize(list), 2);
    /* ascending by next run: "10 * * * * *" fires within a minute, "2 10 * * * *" within an hour */
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "pattern")->valuestring,
                     "10 * * * * *");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 1), "pattern")->valuestring,
                     "2 10 * * * *");
    cJSON_Delete(list);
    bullc_free(json);
    cr_assert_eq(ph_count(h, "delayed"), 2);
    ph_end(h);
}

/* node: "should return a valid job with the job's options and data passed as the job template" */
Test(parity_scheduler, template) {
    ph *h = ph_new("q");
    char *id = upsert(h, "test", every(1000), "test", "{\"foo\":\"bar\"}",
                      "{\"attempts\":3,\"backoff\":{\"type\":"
                      "\"exponential\",\"delay\":1000}}");
    cr_assert(id && !strncmp(id, "repeat:test:", 12), "%s", id);
    cJSON *job = ph_job(h, id);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(job, "name")->valuestring, "test");
    cJSON *data = cJSON_GetObjectItemCaseSensitive(job, "data");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(data, "foo")->valuestring, "bar");
    cJSON *opts = cJSON_GetObjectItemCaseSensitive(job, "opts");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(opts, "attempts")->valuedouble, 3);
    cJSON *backoff = cJSON_GetObjectItemCaseSensitive(opts, "backoff");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(backoff, "type")->valuestring, "exponential");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(backoff, "delay")->valuedouble, 1000);
    cJSON *repeat = cJSON_GetObjectItemCaseSensitive(opts, "repeat");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(repeat, "every")->valuedouble, 1000);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(repeat, "count")->valuedouble, 1);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(job, "repeatJobKey")->valuestring, "test");
    cJSON_Delete(job);
    bullc_free(id);
    ph_end(h);
}

/* node: "should allow removing a named repeatable job" */
Test(parity_scheduler, remove) {
    ph *h = ph_new("q");
    bullc_free(upsert(h, "remove", pattern("*/2 * * * * *"), "remove", NULL, NULL));
    cr_assert_eq(count(h), 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "remove", &err), 0, "%s", err.message);
    cr_assert_eq(count(h), 0);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    char *json = NULL;
    cr_assert_eq(bullc_queue_get_job_scheduler(h->q, "remove", &json, &err), BULLC_ENOTFOUND);
    ph_end(h);
}
