/* SPDX-License-Identifier: MIT */
/* Queue add against a real redis-server: what lands in Redis. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(add, .init = setup, .fini = teardown);

static char *key(const char *prefix, const char *q, const char *suffix) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s:%s:%s", prefix, q, suffix);
    return buf;
}

Test(add, standard_job_lands_in_wait_with_node_fields) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *id = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add(q, "greet", "{ \"hello\" : \"world\", \"n\": [1, 2] }", NULL, &id, &err), 0, "%s",
                 err.message);
    cr_assert_str_eq(id, "1");
    char *data = tu_hget(rc, key(p, "q", "1"), "data");
    cr_assert_str_eq(data, "{\"hello\":\"world\",\"n\":[1,2]}");
    char *name = tu_hget(rc, key(p, "q", "1"), "name");
    cr_assert_str_eq(name, "greet");
    char *opts = tu_hget(rc, key(p, "q", "1"), "opts");
    cr_assert_str_eq(opts, "{\"attempts\":0}");
    redisReply *r = tu_cmd(rc, "LRANGE %s 0 -1", key(p, "q", "wait"));
    cr_assert_eq(r->elements, 1);
    cr_assert_str_eq(r->element[0]->str, "1");
    freeReplyObject(r);
    char *version = tu_hget(rc, key(p, "q", "meta"), "version");
    cr_assert_str_eq(version, "bullmq:6.7.0");
    free(data), free(name), free(opts), free(version);
    bullc_free(id);
    bullc_queue_free(q);
}

Test(add, delayed_prioritized_and_custom_id) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_job_opts *o;
    bullc_job_opts_new(&o);
    bullc_error err = {0};
    cr_assert_eq(bullc_job_opts_merge_json(o, "{\"delay\":60000}", &err), 0, "%s", err.message);
    char *id = NULL;
    cr_assert_eq(bullc_queue_add(q, "later", NULL, o, &id, &err), 0, "%s", err.message);
    redisReply *r = tu_cmd(rc, "ZSCORE %s %s", key(p, "q", "delayed"), id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "delayed job not in the delayed set");
    freeReplyObject(r);
    bullc_free(id);

    bullc_job_opts_free(o);
    bullc_job_opts_new(&o);
    bullc_job_opts_set_priority(o, 7);
    bullc_job_opts_set_job_id(o, "custom-1");
    cr_assert_eq(bullc_queue_add(q, "prio", "{}", o, &id, &err), 0, "%s", err.message);
    cr_assert_str_eq(id, "custom-1");
    bullc_free(id);
    r = tu_cmd(rc, "ZSCORE %s custom-1", key(p, "q", "prioritized"));
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_geq(strtod(r->str, NULL), 7.0 * 4294967296.0);
    freeReplyObject(r);

    /* a jobId that exists already: status 1, the same id, and the job is not overwritten */
    cr_assert_eq(bullc_queue_add(q, "prio", "{\"other\":1}", o, &id, &err), 1, "%s", err.message);
    cr_assert_str_eq(id, "custom-1");
    bullc_free(id);
    char *data = tu_hget(rc, key(p, "q", "custom-1"), "data");
    cr_assert_str_eq(data, "{}", "the duplicate must not overwrite the job");
    free(data);
    bullc_job_opts_free(o);
    bullc_queue_free(q);
}

Test(add, invalid_input_writes_nothing) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_error err = {0};
    char *id = NULL;
    cr_assert_eq(bullc_queue_add(q, "x", "{not json", NULL, &id, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "JSON"), "%s", err.message);
    const char *bad_opts[] = {"{\"priority\":1.5}",   "{\"priority\":2097152}",
                              "{\"delay\":-1}",       "{\"deduplication\":{\"ttl\":5}}",
                              "{\"jobId\":\"123\"}",  "{\"jobId\":\"a:b\"}",
                              "{\"attempts\":\"3\"}", "{\"bogus\":1}",
                              "{\"lifo\":1}",         "{\"backoff\":{\"type\":\"fixed\",\"jitter\":2}}"};
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++) {
        bullc_job_opts *o;
        bullc_job_opts_new(&o);
        /* merge_json checks at once; setters are checked at add time */
        cr_assert_eq(bullc_job_opts_merge_json(o, bad_opts[i], &err), BULLC_EINVAL, "accepted %s", bad_opts[i]);
        bullc_job_opts_free(o);
    }
    /* rules whose words or outcome depend on the queue's BullMQ major are the add's */
    const char *by_major[][2] = {
        {"{\"jobId\":\"0\"}", "JobId cannot be '0' or start with '0:'"},
        {"{\"debounce\":{\"id\":\"a\"}}", "Debounce option has been removed. Use deduplication option instead"}};
    for (size_t i = 0; i < sizeof by_major / sizeof by_major[0]; i++) {
        bullc_job_opts *o;
        bullc_job_opts_new(&o);
        cr_assert_eq(bullc_job_opts_merge_json(o, by_major[i][0], &err), 0, "%s: %s", by_major[i][0], err.message);
        cr_assert_eq(bullc_queue_add(q, "x", "{}", o, &id, &err), BULLC_EINVAL, "added %s", by_major[i][0]);
        cr_assert_str_eq(err.message, by_major[i][1]);
        bullc_job_opts_free(o);
    }
    bullc_job_opts *o;
    bullc_job_opts_new(&o);
    bullc_job_opts_set_priority(o, -3);
    cr_assert_eq(bullc_queue_add(q, "x", "{}", o, &id, &err), BULLC_EINVAL);
    bullc_job_opts_free(o);
    redisReply *r = tu_cmd(rc, "KEYS %s:*", p);
    cr_assert_eq(r->elements, 0, "invalid adds wrote %zu keys", r->elements);
    freeReplyObject(r);
    bullc_queue *bad = NULL;
    cr_assert_eq(bullc_queue_new(&bad, "a:b", NULL, &err), BULLC_EINVAL);
    bullc_queue_free(q);
}

Test(add, bulk_is_atomic_and_ordered) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_job_opts *bad;
    bullc_job_opts_new(&bad);
    bullc_job_opts_set_priority(bad, 3000000);
    bullc_bulk_job jobs[3] = {
        {"a", "{\"i\":1}", NULL, NULL, 0}, {"b", "{\"i\":2}", bad, NULL, 0}, {"c", NULL, NULL, NULL, 0}};
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 3, &err), BULLC_EINVAL);
    cr_assert(!strncmp(err.message, "job 1: ", 7), "%s", err.message);
    cr_assert(jobs[0].status == 0 && jobs[1].status == BULLC_EINVAL && jobs[2].status == 0,
              "the failing job carries the code: %d %d %d", jobs[0].status, jobs[1].status, jobs[2].status);
    redisReply *r = tu_cmd(rc, "EXISTS %s", key(p, "q", "1"));
    cr_assert_eq(r->integer, 0, "a rejected batch must write nothing");
    freeReplyObject(r);
    jobs[1].opts = NULL;
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 3, &err), 0, "%s", err.message);
    cr_assert_str_eq(jobs[0].id, "1");
    cr_assert_str_eq(jobs[2].id, "3");
    r = tu_cmd(rc, "LRANGE %s 0 -1", key(p, "q", "wait"));
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[2]->str, "1", "FIFO: the first job is at the right end");
    freeReplyObject(r);
    for (int i = 0; i < 3; i++) bullc_free(jobs[i].id);
    bullc_job_opts_free(bad);
    bullc_queue_free(q);
}

Test(add, redis_down_fails_fast_with_clear_error) {
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    bullc_redis_opts_parse_url(o, "redis://:topsecret@127.0.0.1:1/0", NULL);
    bullc_redis_opts_set_timeouts(o, 500, 500);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue *q;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, "q", qo, &err), 0);
    char *id = NULL;
    int rc2 = bullc_queue_add(q, "x", "{}", NULL, &id, &err);
    cr_assert_eq(rc2, BULLC_ECONN, "%d %s", rc2, err.message);
    cr_assert(strstr(err.message, "127.0.0.1:1"), "%s", err.message);
    cr_assert_null(strstr(err.message, "topsecret"), "password leaked: %s", err.message);
    bullc_queue_free(q);
    bullc_redis_opts_free(o);
}

Test(add, noscript_after_flush_is_transparent) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *id = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add(q, "a", "{}", NULL, &id, &err), 0, "%s", err.message);
    bullc_free(id);
    freeReplyObject(tu_cmd(rc, "SCRIPT FLUSH"));
    cr_assert_eq(bullc_queue_add(q, "b", "{}", NULL, &id, &err), 0, "%s", err.message);
    cr_assert_str_eq(id, "2");
    bullc_free(id);
    freeReplyObject(tu_cmd(rc, "SCRIPT FLUSH"));
    bullc_bulk_job jobs[2] = {{"c", NULL, NULL, NULL, 0}, {"d", NULL, NULL, NULL, 0}};
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 2, &err), 0, "%s", err.message);
    cr_assert_str_eq(jobs[1].id, "4");
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
    bullc_queue_free(q);
}

Test(add, stale_deduplication_key_is_recovered_and_reported) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_job_opts *o;
    bullc_job_opts_new(&o);
    bullc_job_opts_set_deduplication(o, "d1", 0, false, false);
    char *id = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add(q, "a", "{}", o, &id, &err), 0, "%s", err.message);
    bullc_free(id);
    cr_assert_eq(bullc_queue_add(q, "a", "{}", o, &id, &err), 1, "the window is open: nothing added, said so");
    cr_assert_str_eq(id, "1");
    bullc_free(id);
    /* the owner vanishes (removed by hand, say) and leaves its key behind */
    char key[128];
    snprintf(key, sizeof key, "%s:q:1", p);
    freeReplyObject(tu_cmd(rc, "DEL %s", key));
    cr_assert_eq(bullc_queue_add(q, "a", "{}", o, &id, &err), 2, "added over a stale key, and said so");
    cr_assert_str_eq(id, "3");
    bullc_free(id);
    bullc_job_opts_free(o);
    bullc_queue_free(q);
}

/* A long batch is sent while it is still being validated (docs/performance.md):
 * a bad job far into it must still leave nothing written, and jobs that share
 * one options object get the same options, each with its own data check. */
Test(add, long_bulk_streams_yet_stays_atomic) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    enum { N = 1500 };
    bullc_job_opts *o;
    bullc_job_opts_new(&o);
    bullc_error err = {0};
    cr_assert_eq(bullc_job_opts_merge_json(o, "{\"removeOnComplete\":10,\"attempts\":3,\"sizeLimit\":20}", &err), 0);
    bullc_bulk_job *jobs = calloc(N, sizeof *jobs);
    char(*data)[32] = calloc(N, sizeof *data);
    for (int i = 0; i < N; i++) {
        snprintf(data[i], sizeof data[i], "{\"i\":%d}", i);
        jobs[i] = (bullc_bulk_job){"j", data[i], o, NULL, 0};
    }
    jobs[1234].data_json = "{\"too\":\"long for the limit\"}";
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, N, &err), BULLC_EINVAL);
    cr_assert(!strncmp(err.message, "job 1234: The size of job j exceeds the limit 20 bytes", 53), "%s", err.message);
    for (int i = 0; i < N; i++)
        cr_assert_eq(jobs[i].status, i == 1234 ? BULLC_EINVAL : 0, "job %d: status %d", i, jobs[i].status);
    redisReply *r = tu_cmd(rc, "KEYS %s:*", p);
    cr_assert_eq(r->elements, 0, "a rejected batch wrote %zu keys", r->elements);
    freeReplyObject(r);
    jobs[1234].data_json = data[1234];
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, N, &err), 0, "%s", err.message);
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i + 1);
        cr_assert_str_eq(jobs[i].id, want);
        bullc_free(jobs[i].id);
    }
    r = tu_cmd(rc, "HMGET %s data opts", key(p, "q", "1500"));
    cr_assert_str_eq(r->element[0]->str, "{\"i\":1499}");
    freeReplyObject(r);
    redisReply *a = tu_cmd(rc, "HGET %s opts", key(p, "q", "1"));
    r = tu_cmd(rc, "HGET %s opts", key(p, "q", "1500"));
    cr_assert_str_eq(a->str, r->str, "shared options packed alike");
    cr_assert(strstr(a->str, "\"attempts\":3"), "%s", a->str);
    freeReplyObject(a);
    freeReplyObject(r);
    r = tu_cmd(rc, "LLEN %s", key(p, "q", "wait"));
    cr_assert_eq(r->integer, N);
    freeReplyObject(r);
    free(jobs);
    free(data);
    bullc_job_opts_free(o);
    bullc_queue_free(q);
}

/* The add scripts are loaded once per connection before a transaction; a
 * SCRIPT FLUSH after that makes the EVALSHAs inside MULTI fail with NOSCRIPT,
 * which must be retried (loading them again) without adding anything twice. */
Test(add, bulk_after_script_flush_retries_once) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_error err = {0};
    bullc_bulk_job jobs[2] = {{"a", NULL, NULL, NULL, 0}, {"b", NULL, NULL, NULL, 0}};
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 2, &err), 0, "%s", err.message);
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
    freeReplyObject(tu_cmd(rc, "SCRIPT FLUSH"));
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 2, &err), 0, "%s", err.message);
    cr_assert_str_eq(jobs[0].id, "3");
    cr_assert_str_eq(jobs[1].id, "4");
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
    redisReply *r = tu_cmd(rc, "LLEN %s", key(p, "q", "wait"));
    cr_assert_eq(r->integer, 4, "each job once");
    freeReplyObject(r);
    bullc_queue_free(q);
}

/* Busy polling changes how a reply is waited for, nothing else: adds, a
 * transaction, an error reply and a dead server behave as without it. */
Test(add, busy_poll_is_transparent) {
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    cr_assert_eq(bullc_redis_opts_set_busy_poll(o, -1), BULLC_EINVAL);
    cr_assert_eq(bullc_redis_opts_set_busy_poll(o, 100001), BULLC_EINVAL);
    cr_assert_eq(bullc_redis_opts_busy_poll(o), 0);
    cr_assert_eq(bullc_redis_opts_from_env(o, NULL) >= 0, 1);
    cr_assert_eq(bullc_redis_opts_set_busy_poll(o, 50), 0);
    cr_assert_eq(bullc_redis_opts_busy_poll(o), 50);
    const char *p = tu_prefix();
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, p);
    bullc_queue *q;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, "q", qo, &err), 0, "%s", err.message);
    char *id = NULL;
    for (int i = 1; i <= 20; i++) {
        cr_assert_eq(bullc_queue_add(q, "x", "{\"a\":1}", NULL, &id, &err), 0, "%s", err.message);
        char want[8];
        snprintf(want, sizeof want, "%d", i);
        cr_assert_str_eq(id, want);
        bullc_free(id);
    }
    bullc_bulk_job jobs[2] = {{"a", NULL, NULL, NULL, 0}, {"b", NULL, NULL, NULL, 0}};
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 2, &err), 0, "%s", err.message);
    cr_assert_str_eq(jobs[1].id, "22");
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
    /* a reply slower than the spin: the blocking read takes over */
    freeReplyObject(tu_cmd(rc, "SCRIPT FLUSH"));
    cr_assert_eq(bullc_queue_add(q, "x", "{}", NULL, &id, &err), 0, "%s", err.message);
    cr_assert_str_eq(id, "23");
    bullc_free(id);
    bullc_queue_free(q);
    /* nothing listens on port 1: a clear error, no hang */
    bullc_redis_opts_parse_url(o, "redis://127.0.0.1:1/0", NULL);
    bullc_redis_opts_set_timeouts(o, 300, 300);
    bullc_queue_opts_set_redis(qo, o);
    cr_assert_eq(bullc_queue_new(&q, "q", qo, &err), 0);
    cr_assert_eq(bullc_queue_add(q, "x", "{}", NULL, &id, &err), BULLC_ECONN, "%s", err.message);
    bullc_queue_free(q);
    bullc_redis_opts_free(o);
}
