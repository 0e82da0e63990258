/* SPDX-License-Identifier: MIT */
/* Queue administration and getters (admin.h) against a real redis-server:
 * Node's semantics and result shapes, and the job reader's leniency. */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(admin, .init = setup, .fini = teardown);

/* "prefix:q:suffix" */
static const char *k(const char *p, const char *suffix) {
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s:q:%s", p, suffix);
    return buf[i];
}

/* Parsed JSON of a call that must succeed. */
#define JSON_OF(call)                                     \
    ({                                                    \
        char *s_ = NULL;                                  \
        bullc_error e_ = {0};                             \
        int r_ = (call);                                  \
        cr_assert_eq(r_, 0, "%s: %s", #call, e_.message); \
        cJSON *j_ = cJSON_Parse(s_);                      \
        cr_assert(j_, "not JSON: %s", s_);                \
        bullc_free(s_);                                   \
        j_;                                               \
    })

static cJSON *get_job(bullc_queue *q, const char *id) { return JSON_OF(bullc_queue_get_job(q, id, &s_, &e_)); }

static cJSON *get_jobs(bullc_queue *q, const char *const *states, size_t n, int64_t start, int64_t end, bool asc) {
    return JSON_OF(bullc_queue_get_jobs(q, states, n, start, end, asc, &s_, &e_));
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsString(v), "%s is not a string", key);
    return v->valuestring;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v), "%s is not a number", key);
    return v->valuedouble;
}

/* The compact JSON of o[key] (or of o when key is NULL), malloc'd. */
static char *js(const cJSON *o, const char *key) {
    const cJSON *v = key ? cJSON_GetObjectItemCaseSensitive(o, key) : o;
    return v ? cJSON_PrintUnformatted(v) : strdup("<absent>");
}

#define assert_json(o, key, expected)                                \
    do {                                                             \
        char *got_ = js(o, key);                                     \
        cr_assert_str_eq(got_, expected, "%s", key ? key : "value"); \
        free(got_);                                                  \
    } while (0)

static void cmd(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "redis: %s", r ? r->str : rc->errstr);
    freeReplyObject(r);
}

static long long icmd(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "redis: not an integer reply");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Moves a waiting job to `set` ("completed"/"failed") as a worker would. */
static void finish(const char *p, const char *id, const char *set, long long at, const char *field, const char *value) {
    cmd("LREM %s 0 %s", k(p, "wait"), id);
    cmd("ZADD %s %lld %s", k(p, set), at, id);
    cmd("HSET %s processedOn %lld finishedOn %lld %s %s atm 1 ats 1", k(p, id), at - 5, at, field, value);
}

/* Moves a waiting job to active with a lock, as a worker would. */
static void activate(const char *p, const char *id) {
    cmd("LREM %s 0 %s", k(p, "wait"), id);
    cmd("LPUSH %s %s", k(p, "active"), id);
    char lock[256];
    snprintf(lock, sizeof lock, "%s:lock", k(p, id));
    cmd("SET %s token PX 30000", lock);
}

/* ---- reading jobs ----------------------------------------------------------------- */

Test(admin, get_job_reads_every_field_with_node_names) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *id =
        tu_add(q, "greet", "{\"a\":[1,2.5,\"x\"]}",
               "{\"attempts\":3,\"backoff\":1000,\"keepLogs\":5,\"deduplication\":{\"id\":\"d1\"},\"lifo\":true}");
    cmd("HSET %s atm 2 ats 3 stc 1 processedOn 1700000000100 finishedOn 1700000000200 returnvalue {\"r\":[true,null]}"
        " failedReason boom stacktrace [\"l1\",\"l2\"] progress {\"p\":1} pb w1 defa later",
        k(p, id));
    cJSON *j = get_job(q, id);
    cr_assert_str_eq(str(j, "id"), id);
    cr_assert_str_eq(str(j, "name"), "greet");
    assert_json(j, "data", "{\"a\":[1,2.5,\"x\"]}");
    cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "opts");
    cr_assert_eq(num(o, "attempts"), 3);
    cr_assert_eq(num(o, "keepLogs"), 5, "kl is read back as keepLogs");
    assert_json(o, "deduplication", "{\"id\":\"d1\"}");
    cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "backoff"); /* Lua reorders keys */
    cr_assert_str_eq(str(b, "type"), "fixed");
    cr_assert_eq(num(b, "delay"), 1000);
    assert_json(o, "lifo", "true");
    assert_json(j, "progress", "{\"p\":1}");
    cr_assert_eq(num(j, "attemptsMade"), 2);
    cr_assert_eq(num(j, "attemptsStarted"), 3);
    cr_assert_eq(num(j, "stalledCounter"), 1);
    cr_assert_eq(num(j, "processedOn"), 1700000000100.0);
    cr_assert_eq(num(j, "finishedOn"), 1700000000200.0);
    cr_assert_gt(num(j, "timestamp"), 1600000000000.0);
    assert_json(j, "returnvalue", "{\"r\":[true,null]}");
    cr_assert_str_eq(str(j, "failedReason"), "boom");
    assert_json(j, "stacktrace", "[\"l1\",\"l2\"]");
    cr_assert_eq(num(j, "delay"), 0);
    cr_assert_eq(num(j, "priority"), 0);
    cr_assert_str_eq(str(j, "deduplicationId"), "d1");
    cr_assert_str_eq(str(j, "processedBy"), "w1");
    cr_assert_str_eq(str(j, "deferredFailure"), "later");
    assert_json(j, "parentKey", "<absent>");
    cJSON_Delete(j);
    bullc_free(id);
    bullc_queue_free(q);
}

Test(admin, get_job_reads_lua_cjson_output_and_legacy_fields_leniently) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    /* as Lua's cjson writes opts: '/' escaped, 14 significant digits,
     * short keys; plus the legacy attemptsMade field and junk numbers */
    cmd("HSET %s name legacy data {\"u\":\"a\\/b\"} attemptsMade 7 atm 2 timestamp 12abc delay %s priority x "
        "returnvalue %s stacktrace {\"a\":1} parent {\"id\":\"p1\",\"queueKey\":\"bull:pq\"} parentKey bull:pq:p1 "
        "progress null "
        "opts {\"kl\":2,\"de\":{\"id\":\"x\"},\"tm\":\"meta\",\"omc\":true,\"attempts\":1,\"repeatJobKey\":\"rk\","
        "\"backoff\":0,\"big\":1.2345678901234e+14,\"path\":\"a\\/b\",\"empty\":{}}",
        k(p, "j1"), "", "not json");
    cJSON *j = get_job(q, "j1");
    assert_json(j, "data", "{\"u\":\"a/b\"}");
    cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "opts");
    cr_assert_eq(num(o, "keepLogs"), 2);
    assert_json(o, "deduplication", "{\"id\":\"x\"}");
    assert_json(o, "telemetry", "{\"metadata\":\"meta\",\"omitContext\":true}");
    assert_json(o, "backoff", "<absent>");      /* Backoffs.normalize(0) is undefined */
    assert_json(o, "repeatJobKey", "<absent>"); /* the Job constructor takes it out */
    cr_assert_eq(num(o, "big"), 123456789012340.0);
    cr_assert_str_eq(str(o, "path"), "a/b");
    cr_assert_eq(num(o, "attempts"), 1);
    cr_assert_str_eq(str(j, "repeatJobKey"), "rk");
    cr_assert_str_eq(str(j, "deduplicationId"), "x");
    cr_assert_eq(num(j, "attemptsMade"), 7, "the legacy long name wins, as in Node");
    cr_assert_eq(num(j, "timestamp"), 12, "parseInt");
    assert_json(j, "delay", "null");
    assert_json(j, "priority", "null");
    assert_json(j, "returnvalue", "<absent>"); /* corrupt: undefined */
    assert_json(j, "stacktrace", "[]");
    assert_json(j, "progress", "0");
    assert_json(j, "parent", "{\"id\":\"p1\",\"queueKey\":\"bull:pq\"}");
    cr_assert_str_eq(str(j, "parentKey"), "bull:pq:p1");
    cJSON_Delete(j);
    /* unreadable data stays readable as text */
    cmd("HSET %s name bad data {oops opts [1]", k(p, "j2"));
    j = get_job(q, "j2");
    cr_assert_str_eq(str(j, "data"), "{oops");
    assert_json(j, "opts", "[1]");
    cJSON_Delete(j);
    bullc_queue_free(q);
}

/* node: "should get a specific job" */
Test(admin, get_a_specific_job) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *id = tu_add(q, "test", "{\"foo\":\"sup!\"}", NULL);
    cJSON *j = get_job(q, id);
    assert_json(j, "data", "{\"foo\":\"sup!\"}");
    cr_assert_str_eq(str(j, "id"), id);
    cJSON_Delete(j);
    bullc_free(id);
    bullc_queue_free(q);
}

/* node: "should get undefined for nonexistent specific job" */
Test(admin, get_nonexistent_job_is_not_found) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    bullc_error err = {0};
    char *json = NULL;
    cr_assert_eq(bullc_queue_get_job(q, "test", &json, &err), BULLC_ENOTFOUND);
    cr_assert_null(json);
    cr_assert_eq(bullc_queue_get_job(q, "", &json, &err), BULLC_EINVAL);
    bullc_queue_free(q);
}

/* The `data.foo` (or other key) of each job of an array, as one string. */
static char *datas(const cJSON *jobs, const char *key) {
    char buf[512] = "";
    for (const cJSON *j = jobs->child; j; j = j->next) {
        char *v = js(cJSON_GetObjectItemCaseSensitive(j, "data"), key);
        strncat(buf, v, sizeof buf - strlen(buf) - 2);
        strcat(buf, " ");
        free(v);
    }
    return strdup(buf);
}

static const char *const WAITING[] = {"waiting"};

/* node: "should get waiting jobs" */
Test(admin, get_waiting_jobs) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_free(tu_add(q, "test", "{\"foo\":\"bar\"}", NULL));
    bullc_free(tu_add(q, "test", "{\"baz\":\"qux\"}", NULL));
    cJSON *jobs = get_jobs(q, WAITING, 1, 0, -1, true); /* Node's getWaiting() */
    char *d = datas(jobs, NULL);
    cr_assert_str_eq(d, "{\"foo\":\"bar\"} {\"baz\":\"qux\"} ");
    free(d);
    cJSON_Delete(jobs);
    bullc_queue_free(q);
}

/* node: "should get all waiting jobs when no range is provided" */
Test(admin, get_all_waiting_jobs_without_range) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    for (int i = 0; i < 4; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"foo\":%d}", i);
        bullc_free(tu_add(q, "test", data, NULL));
    }
    cJSON *jobs = get_jobs(q, WAITING, 1, 0, -1, true);
    char *d = datas(jobs, "foo");
    cr_assert_str_eq(d, "0 1 2 3 ");
    free(d);
    cJSON_Delete(jobs);
    bullc_queue_free(q);
}

/* node: "should filter out missing jobs when ids remain in the waiting list" */
Test(admin, missing_job_hashes_are_skipped) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_free(tu_add(q, "test", "{\"foo\":\"bar\"}", NULL));
    char *b = tu_add(q, "test", "{\"baz\":\"qux\"}", NULL);
    bullc_free(tu_add(q, "test", "{\"bar\":\"baz\"}", NULL));
    cmd("DEL %s", k(p, b));
    cJSON *jobs = get_jobs(q, WAITING, 1, 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(jobs), 2);
    char *d = datas(jobs, NULL);
    cr_assert_str_eq(d, "{\"bar\":\"baz\"} {\"foo\":\"bar\"} ");
    free(d);
    cJSON_Delete(jobs);
    bullc_free(b);
    bullc_queue_free(q);
}

/* node: "should backfill a bounded range when a job hash is missing" */
Test(admin, bounded_range_is_backfilled) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *ids[5];
    for (int i = 0; i < 5; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"foo\":%d}", i + 1);
        ids[i] = tu_add(q, "test", data, NULL);
    }
    cmd("DEL %s", k(p, ids[1]));
    cJSON *jobs = get_jobs(q, WAITING, 1, 0, 2, true);
    char *d = datas(jobs, "foo");
    cr_assert_str_eq(d, "1 3 4 ");
    free(d);
    cJSON_Delete(jobs);
    for (int i = 0; i < 5; i++) bullc_free(ids[i]);
    bullc_queue_free(q);
}

/* node: "should return an empty array for an ascending bounded range beyond the list length" */
Test(admin, ascending_range_beyond_the_list_is_empty) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    for (int i = 0; i < 3; i++) bullc_free(tu_add(q, "test", "{}", NULL));
    cJSON *jobs = get_jobs(q, WAITING, 1, 10, 12, true);
    cr_assert_eq(cJSON_GetArraySize(jobs), 0);
    cJSON_Delete(jobs);
    bullc_queue_free(q);
}

/* node: "should get paused jobs" */
Test(admin, get_paused_jobs) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(q, &err), 0, "%s", err.message);
    bullc_free(tu_add(q, "test", "{\"foo\":\"bar\"}", NULL));
    bullc_free(tu_add(q, "test", "{\"baz\":\"qux\"}", NULL));
    cJSON *jobs = get_jobs(q, WAITING, 1, 0, -1, true);
    char *d = datas(jobs, NULL);
    cr_assert_str_eq(d, "{\"foo\":\"bar\"} {\"baz\":\"qux\"} ");
    free(d);
    cJSON_Delete(jobs);
    bullc_queue_free(q);
}

/* node: "should return deduplicated jobs for duplicates types" */
Test(admin, duplicate_types_list_each_job_once) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    bullc_free(tu_add(q, "test", "{\"foo\":1}", NULL));
    bullc_free(tu_add(q, "test", "{\"foo\":2}", NULL));
    static const char *const wait[] = {"wait"}, *const dups[] = {"wait", "waiting", "waiting"};
    cJSON *expected = get_jobs(q, wait, 1, 0, -1, false), *jobs = get_jobs(q, dups, 3, 0, -1, false);
    char *a = js(expected, NULL), *b = js(jobs, NULL);
    cr_assert_eq(cJSON_GetArraySize(jobs), 2);
    cr_assert_str_eq(b, a);
    free(a), free(b);
    cJSON_Delete(expected), cJSON_Delete(jobs);
    bullc_queue_free(q);
}

/* node: "[when there are delayed jobs and waiting jobs] filters jobIds different than marker" */
Test(admin, waiting_jobs_with_a_delayed_job) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_free(tu_add(q, "test1", "{\"foo\":3}", "{\"delay\":2000}"));
    char *w = tu_add(q, "test2", "{\"foo\":2}", NULL);
    cJSON *jobs = get_jobs(q, WAITING, 1, 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(jobs), 1);
    cr_assert_str_eq(str(jobs->child, "name"), "test2");
    redisReply *r = tu_cmd(rc, "LRANGE %s 0 -1", k(p, "wait"));
    cr_assert_eq(r->elements, 1);
    cr_assert_str_eq(r->element[0]->str, w);
    freeReplyObject(r);
    cJSON_Delete(jobs);
    bullc_free(w);
    bullc_queue_free(q);
}

/* node: "[when there is only one delayed job and get waiting jobs] filters marker and returns an empty array" */
Test(admin, no_waiting_jobs_with_only_a_delayed_job) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    bullc_free(tu_add(q, "test1", "{\"foo\":3}", "{\"delay\":2000}"));
    cJSON *jobs = get_jobs(q, WAITING, 1, 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(jobs), 0);
    cJSON_Delete(jobs);
    bullc_queue_free(q);
}

Test(admin, jobs_across_states_and_ranges) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *c1 = tu_add(q, "c1", "{}", NULL), *c2 = tu_add(q, "c2", "{}", NULL), *f1 = tu_add(q, "f1", "{}", NULL);
    finish(p, c1, "completed", 1000, "returnvalue", "1");
    finish(p, c2, "completed", 2000, "returnvalue", "2");
    finish(p, f1, "failed", 1500, "failedReason", "x");
    static const char *const done[] = {"completed", "failed"};
    cJSON *jobs = get_jobs(q, done, 2, 0, -1, false); /* newest first, state by state */
    char ids[64] = "";
    for (cJSON *j = jobs->child; j; j = j->next) strcat(ids, str(j, "name")), strcat(ids, " ");
    cr_assert_str_eq(ids, "c2 c1 f1 ");
    cJSON_Delete(jobs);
    jobs = get_jobs(q, done, 2, -1, -1, true);
    ids[0] = 0;
    for (cJSON *j = jobs->child; j; j = j->next) strcat(ids, str(j, "name")), strcat(ids, " ");
    cr_assert_str_eq(ids, "c2 f1 ");
    cJSON_Delete(jobs);
    /* NULL: Node's default types */
    jobs = get_jobs(q, NULL, 0, 0, -1, false);
    cr_assert_eq(cJSON_GetArraySize(jobs), 3);
    cJSON_Delete(jobs);
    bullc_free(c1), bullc_free(c2), bullc_free(f1);
    bullc_queue_free(q);
}

Test(admin, unknown_state_is_einval_before_any_redis_call) {
    /* a queue on a port where nothing listens: any Redis call would fail with ECONN */
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_set_host(ro, "127.0.0.1", tu_free_port());
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, ro);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", qo, NULL), 0);
    bullc_redis_opts_free(ro);
    static const char *const bad[] = {"waiting", "bogus"};
    bullc_error err = {0};
    char *json = NULL;
    cr_assert_eq(bullc_queue_get_jobs(q, bad, 2, 0, -1, false, &json, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "bogus"), "%s", err.message);
    cr_assert_eq(bullc_queue_get_job_counts(q, bad, 2, &json, &err), BULLC_EINVAL);
    int64_t counts[2] = {7, 7};
    cr_assert_eq(bullc_queue_count_jobs(q, bad, 2, counts, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "bogus"), "%s", err.message);
    cr_assert_eq(bullc_queue_count_jobs(q, NULL, 0, counts, &err), BULLC_EINVAL, "the states are required");
    cr_assert(counts[0] == 7 && counts[1] == 7, "nothing written on an error");
    cr_assert_eq(bullc_queue_clean(q, 0, 0, "waiting-children", &json, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_retry_jobs(q, "active", 0, 0, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_get_metrics(q, "waiting", 0, -1, &json, &err), BULLC_EINVAL);
    cr_assert_null(json);
    cr_assert_eq(bullc_queue_get_job_counts(q, NULL, 0, &json, &err), BULLC_ECONN, "and a real call does connect");
    bullc_queue_free(q);
}

/* ---- counts and states ------------------------------------------------------------------- */

/* node: "should return 0 if queue is empty" */
Test(admin, counts_of_an_empty_queue) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    cJSON *c = JSON_OF(bullc_queue_get_job_counts(q, NULL, 0, &s_, &e_));
    char *s = js(c, NULL);
    cr_assert_str_eq(s, "{\"active\":0,\"completed\":0,\"delayed\":0,\"failed\":0,\"prioritized\":0,\"waiting\":0,"
                        "\"waiting-children\":0}");
    free(s);
    cJSON_Delete(c);
    bullc_queue_free(q);
}

/* node: "[when there are prioritized jobs] retries count considering prioritized jobs" */
Test(admin, count_considers_prioritized_jobs) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    for (int i = 0; i < 8; i++) {
        char o[32], d[32];
        snprintf(o, sizeof o, "{\"priority\":%d}", i + 1);
        snprintf(d, sizeof d, "{\"idx\":%d}", i);
        bullc_free(tu_add(q, "test", d, o));
    }
    bullc_free(tu_add(q, "test", "{}", NULL));
    /* Node's count(): waiting + delayed + prioritized + waiting-children */
    static const char *const counted[] = {"waiting", "delayed", "prioritized", "waiting-children"};
    cJSON *c = JSON_OF(bullc_queue_get_job_counts(q, counted, 4, &s_, &e_));
    double total = 0;
    for (cJSON *e = c->child; e; e = e->next) total += e->valuedouble;
    cr_assert_eq(total, 9);
    cJSON_Delete(c);
    /* the typed form: one count per state, in the order given (a repeat too) */
    static const char *const typed[] = {"prioritized", "waiting", "delayed", "waiting"};
    int64_t n[4] = {-1, -1, -1, -1};
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_count_jobs(q, typed, 4, n, &err), 0, "%s", err.message);
    cr_assert(n[0] == 8 && n[1] == 1 && n[2] == 0 && n[3] == 1, "%lld %lld %lld %lld", (long long)n[0], (long long)n[1],
              (long long)n[2], (long long)n[3]);
    bullc_queue_free(q);
}

/* node: "[.getPrioritized] retries prioritized job instances" */
Test(admin, get_prioritized_jobs) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    for (int i = 0; i < 8; i++) {
        char o[32];
        snprintf(o, sizeof o, "{\"priority\":%d}", i + 1);
        bullc_free(tu_add(q, "test", "{}", o));
    }
    static const char *const prio[] = {"prioritized"};
    cJSON *jobs = get_jobs(q, prio, 1, 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(jobs), 8);
    cJSON_Delete(jobs);
    bullc_queue_free(q);
}

/* node: "[.getPrioritizedCount] retries prioritized count" */
Test(admin, prioritized_count) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    for (int i = 0; i < 8; i++) {
        char o[32];
        snprintf(o, sizeof o, "{\"priority\":%d}", i + 1);
        bullc_free(tu_add(q, "test", "{}", o));
    }
    static const char *const prio[] = {"prioritized"};
    cJSON *c = JSON_OF(bullc_queue_get_job_counts(q, prio, 1, &s_, &e_));
    cr_assert_eq(num(c, "prioritized"), 8);
    cJSON_Delete(c);
    bullc_queue_free(q);
}

static void counts_per_priority(bool paused) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    bullc_error err = {0};
    if (paused) cr_assert_eq(bullc_queue_pause(q, &err), 0, "%s", err.message);
    bullc_bulk_job jobs[42];
    bullc_job_opts *opts[4];
    for (int i = 0; i < 4; i++) {
        bullc_job_opts_new(&opts[i]);
        bullc_job_opts_set_priority(opts[i], i);
    }
    for (int i = 0; i < 42; i++) jobs[i] = (bullc_bulk_job){"test", "{}", opts[i % 4], NULL, 0};
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 42, &err), 0, "%s", err.message);
    for (int i = 0; i < 42; i++) bullc_free(jobs[i].id);
    for (int i = 0; i < 4; i++) bullc_job_opts_free(opts[i]);
    static const int64_t prios[] = {0, 1, 2, 3, 1};
    cJSON *c = JSON_OF(bullc_queue_get_counts_per_priority(q, prios, 5, &s_, &e_));
    char *s = js(c, NULL);
    cr_assert_str_eq(s, "{\"0\":11,\"1\":11,\"2\":10,\"3\":10}");
    free(s);
    cJSON_Delete(c);
    static const int64_t bad[] = {-1};
    char *json = NULL;
    cr_assert_eq(bullc_queue_get_counts_per_priority(q, bad, 1, &json, &err), BULLC_EINVAL);
    bullc_queue_free(q);
}

/* node: "[.getCountsPerPriority] returns job counts per priority" */
Test(admin, counts_per_priority) { counts_per_priority(false); }

/* node: "[when queue is paused] returns job counts per priority" */
Test(admin, counts_per_priority_when_paused) { counts_per_priority(true); }

/* node: "[.getJobState] gets current job state" */
Test(admin, job_state_of_a_new_job) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    char *id = tu_add(q, "test", "{\"foo\":\"bar\"}", NULL);
    const char *state = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_state(q, id, &state, &err), 0, "%s", err.message);
    cr_assert_str_eq(state, "waiting");
    bullc_free(id);
    bullc_queue_free(q);
}

Test(admin, job_state_in_every_state) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *w = tu_add(q, "w", "{}", NULL), *d = tu_add(q, "d", "{}", "{\"delay\":50000}"),
         *pr = tu_add(q, "p", "{}", "{\"priority\":2}"), *a = tu_add(q, "a", "{}", NULL),
         *c = tu_add(q, "c", "{}", NULL), *f = tu_add(q, "f", "{}", NULL);
    activate(p, a);
    finish(p, c, "completed", 1000, "returnvalue", "null");
    finish(p, f, "failed", 1000, "failedReason", "x");
    cmd("ZADD %s 1 wc", k(p, "waiting-children"));
    cmd("RPUSH %s legacy", k(p, "paused"));
    const char *ids[] = {w, d, pr, a, c, f, "wc", "legacy", "nope"};
    const char *want[] = {"waiting", "delayed",          "prioritized", "active", "completed",
                          "failed",  "waiting-children", "waiting",     "unknown"};
    for (int i = 0; i < 9; i++) {
        const char *state = NULL;
        bullc_error err = {0};
        cr_assert_eq(bullc_queue_get_job_state(q, ids[i], &state, &err), 0, "%s", err.message);
        cr_assert_str_eq(state, want[i], "job %s", ids[i]);
    }
    cJSON *counts =
        JSON_OF(bullc_queue_get_job_counts(q, (const char *const[]){"waiting", "paused", "active"}, 3, &s_, &e_));
    char *s = js(counts, NULL);
    cr_assert_str_eq(s, "{\"waiting\":1,\"paused\":1,\"active\":1}");
    free(s);
    cJSON_Delete(counts);
    bullc_free(w), bullc_free(d), bullc_free(pr), bullc_free(a), bullc_free(c), bullc_free(f);
    bullc_queue_free(q);
}

/* ---- logs, progress, data ------------------------------------------------------------------ */

Test(admin, logs_progress_and_data_updates) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *id = tu_add(q, "x", "{}", NULL);
    bullc_error err = {0};
    int64_t n = 0;
    const char *lines[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(bullc_queue_add_job_log(q, id, lines[i], 0, &n, &err), 0, "%s", err.message);
    cr_assert_eq(n, 3);
    cr_assert_eq(bullc_queue_add_job_log(q, id, "four", 2, &n, &err), 0, "%s", err.message);
    cr_assert_eq(n, 2, "keepLogs 2 keeps the last two");
    cJSON *l = JSON_OF(bullc_queue_get_job_logs(q, id, 0, -1, true, &s_, &e_));
    assert_json(l, NULL, "{\"logs\":[\"three\",\"four\"],\"count\":2}");
    cJSON_Delete(l);
    l = JSON_OF(bullc_queue_get_job_logs(q, id, 0, 0, false, &s_, &e_));
    assert_json(l, NULL, "{\"logs\":[\"four\"],\"count\":2}");
    cJSON_Delete(l);
    l = JSON_OF(bullc_queue_get_job_logs(q, "nope", 0, -1, true, &s_, &e_));
    assert_json(l, NULL, "{\"logs\":[],\"count\":0}");
    cJSON_Delete(l);
    cr_assert_eq(bullc_queue_add_job_log(q, "nope", "x", 0, NULL, &err), BULLC_ENOTFOUND);

    cr_assert_eq(bullc_queue_update_job_progress(q, id, " { \"pct\" : 0.30000000000000004 } ", &err), 0, "%s",
                 err.message);
    char *prog = tu_hget(rc, k(p, id), "progress");
    cr_assert_str_eq(prog, "{\"pct\":0.30000000000000004}", "minified, number text kept");
    free(prog);
    cr_assert_eq(bullc_queue_update_job_progress(q, id, "{bad", &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_update_job_progress(q, "nope", "1", &err), BULLC_ENOTFOUND);
    cr_assert_eq(bullc_queue_update_job_data(q, id, "[1, 2]", &err), 0, "%s", err.message);
    char *data = tu_hget(rc, k(p, id), "data");
    cr_assert_str_eq(data, "[1,2]");
    free(data);
    cr_assert_eq(bullc_queue_update_job_data(q, "nope", "{}", &err), BULLC_ENOTFOUND);
    char *ev = NULL;
    cr_assert_eq(bullc_queue_get_events(q, NULL, 0, &ev, &err), 0, "%s", err.message);
    cr_assert(strstr(ev, "{\"event\":\"progress\",\"jobId\":\"1\",\"data\":\"{\\\"pct\\\":0.30000000000000004}\"}") ||
                  strstr(ev, "\"event\":\"progress\",\"jobId\":\"1\""),
              "%s", ev);
    bullc_free(ev);
    bullc_free(id);
    bullc_queue_free(q);
}

/* ---- queue actions ------------------------------------------------------------------------------ */

Test(admin, pause_resume_and_the_legacy_paused_list) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_error err = {0};
    bool paused = true;
    cr_assert_eq(bullc_queue_is_paused(q, &paused, &err), 0);
    cr_assert(!paused);
    cr_assert_eq(bullc_queue_pause(q, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_is_paused(q, &paused, &err), 0);
    cr_assert(paused);
    cJSON *meta = JSON_OF(bullc_queue_get_meta(q, &s_, &e_));
    assert_json(meta, "paused", "true");
    cr_assert_eq(num(meta, "maxLenEvents"), 10000);
    cr_assert_str_eq(str(meta, "version"), "bullmq:6.7.0");
    cJSON_Delete(meta);
    /* a 5.x paused list goes back into wait on resume */
    cmd("RPUSH %s a b c", k(p, "paused"));
    cr_assert_eq(bullc_queue_resume(q, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_is_paused(q, &paused, &err), 0);
    cr_assert(!paused);
    cr_assert_eq(icmd("LLEN %s", k(p, "wait")), 3);
    cr_assert_eq(icmd("EXISTS %s", k(p, "paused")), 0);
    char *ev = NULL;
    cr_assert_eq(bullc_queue_get_events(q, NULL, 0, &ev, &err), 0);
    cJSON *a = cJSON_Parse(ev);
    cr_assert_eq(cJSON_GetArraySize(a), 2);
    cr_assert_str_eq(str(cJSON_GetArrayItem(a, 0), "event"), "paused");
    cr_assert_str_eq(str(cJSON_GetArrayItem(a, 1), "event"), "resumed");
    cJSON_Delete(a);
    bullc_free(ev);
    bullc_queue_free(q);
}

Test(admin, drain_with_and_without_delayed) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_free(tu_add(q, "w", "{}", NULL));
    bullc_free(tu_add(q, "p", "{}", "{\"priority\":3}"));
    char *d = tu_add(q, "d", "{}", "{\"delay\":60000}");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_drain(q, false, &err), 0, "%s", err.message);
    cJSON *c =
        JSON_OF(bullc_queue_get_job_counts(q, (const char *const[]){"waiting", "prioritized", "delayed"}, 3, &s_, &e_));
    assert_json(c, NULL, "{\"waiting\":0,\"prioritized\":0,\"delayed\":1}");
    cJSON_Delete(c);
    cr_assert_eq(icmd("EXISTS %s", k(p, d)), 1);
    cr_assert_eq(bullc_queue_drain(q, true, &err), 0, "%s", err.message);
    cr_assert_eq(icmd("ZCARD %s", k(p, "delayed")), 0);
    cr_assert_eq(icmd("EXISTS %s", k(p, d)), 0, "the job's keys go too");
    bullc_free(d);
    bullc_queue_free(q);
}

/* node: "should clean an empty queue" */
Test(admin, clean_an_empty_queue) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    cJSON *ids = JSON_OF(bullc_queue_clean(q, 0, 0, NULL, &s_, &e_));
    cr_assert_eq(cJSON_GetArraySize(ids), 0);
    cJSON_Delete(ids);
    bullc_queue_free(q);
}

/* node: "should succeed when the limit is higher than the actual number of jobs" */
Test(admin, clean_with_a_limit_higher_than_the_jobs) {
    bullc_queue *q = tu_queue("q", tu_prefix());
    bullc_free(tu_add(q, "test", "{\"some\":\"data\"}", NULL));
    bullc_free(tu_add(q, "test", "{\"some\":\"data\"}", NULL));
    usleep(100 * 1000);
    cJSON *ids = JSON_OF(bullc_queue_clean(q, 0, 100, "wait", &s_, &e_));
    cr_assert_eq(cJSON_GetArraySize(ids), 2);
    cJSON_Delete(ids);
    static const char *const counted[] = {"waiting", "delayed", "prioritized", "waiting-children"};
    cJSON *c = JSON_OF(bullc_queue_get_job_counts(q, counted, 4, &s_, &e_));
    for (cJSON *e = c->child; e; e = e->next) cr_assert_eq(e->valuedouble, 0, "%s", e->string);
    cJSON_Delete(c);
    bullc_queue_free(q);
}

Test(admin, clean_finished_jobs_by_age_and_limit) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *ids[4];
    long long now = (long long)time(NULL) * 1000;
    for (int i = 0; i < 4; i++) ids[i] = tu_add(q, "c", "{}", NULL);
    finish(p, ids[0], "completed", now - 100000, "returnvalue", "1");
    finish(p, ids[1], "completed", now - 90000, "returnvalue", "1");
    finish(p, ids[2], "completed", now - 80000, "returnvalue", "1");
    finish(p, ids[3], "completed", now + 60000, "returnvalue", "1"); /* within any grace */
    cJSON *got = JSON_OF(bullc_queue_clean(q, 85000, 0, "completed", &s_, &e_));
    char *s = js(got, NULL);
    char want[64];
    snprintf(want, sizeof want, "[\"%s\",\"%s\"]", ids[0], ids[1]);
    cr_assert_str_eq(s, want);
    free(s);
    cJSON_Delete(got);
    got = JSON_OF(bullc_queue_clean(q, 0, 1, "completed", &s_, &e_));
    cr_assert_eq(cJSON_GetArraySize(got), 1);
    cJSON_Delete(got);
    cr_assert_eq(icmd("ZCARD %s", k(p, "completed")), 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_clean(q, 0, 0, "completed", NULL, &err), 0, "no output wanted");
    cr_assert_eq(icmd("ZCARD %s", k(p, "completed")), 1, "the one in the future stays");
    for (int i = 0; i < 4; i++) bullc_free(ids[i]);
    bullc_queue_free(q);
}

Test(admin, obliterate_pauses_refuses_active_jobs_and_loops) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *a = tu_add(q, "a", "{}", NULL);
    for (int i = 0; i < 30; i++) bullc_free(tu_add(q, "x", "{\"i\":1}", i % 3 ? NULL : "{\"delay\":9000}"));
    activate(p, a);
    cmd("RPUSH %s:logs l1", k(p, a));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_obliterate(q, false, 0, &err), BULLC_ESTATE);
    cr_assert_str_eq(err.message, "Cannot obliterate queue with active jobs");
    bool paused = false;
    cr_assert_eq(bullc_queue_is_paused(q, &paused, &err), 0);
    cr_assert(paused, "paused first, as Node");
    cr_assert_eq(bullc_queue_obliterate(q, true, 4, &err), 0, "%s", err.message);
    redisReply *r = tu_cmd(rc, "KEYS %s:*", p);
    cr_assert_eq(r->elements, 0, "left: %s", r->elements ? r->element[0]->str : "");
    freeReplyObject(r);
    bullc_free(a);
    bullc_queue_free(q);
}

Test(admin, retry_and_promote_jobs) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    long long now = (long long)time(NULL) * 1000;
    char *f1 = tu_add(q, "f1", "{}", NULL), *f2 = tu_add(q, "f2", "{}", NULL),
         *c1 = tu_add(q, "c1", "{}", "{\"lifo\":true}");
    finish(p, f1, "failed", now - 5000, "failedReason", "x");
    finish(p, f2, "failed", now + 100000, "failedReason", "y");
    finish(p, c1, "completed", now - 5000, "returnvalue", "{}");
    bullc_error err = {0};
    /* timestamp: only those finished before it */
    cr_assert_eq(bullc_queue_retry_jobs(q, NULL, 0, now, &err), 0, "%s", err.message);
    cr_assert_eq(icmd("ZCARD %s", k(p, "failed")), 1);
    char *fr = tu_hget(rc, k(p, f1), "failedReason");
    cr_assert_null(fr, "failedReason removed");
    /* one job: reprocessJob, back to wait (RPUSH for lifo) */
    cr_assert_eq(bullc_queue_retry_job(q, c1, "completed", BULLC_RETRY_RESET_ATTEMPTS_MADE, &err), 0, "%s",
                 err.message);
    redisReply *r = tu_cmd(rc, "LINDEX %s -1", k(p, "wait"));
    cr_assert_str_eq(r->str, c1, "a lifo job is retried at the head");
    freeReplyObject(r);
    char *atm = tu_hget(rc, k(p, c1), "atm");
    cr_assert_null(atm, "attemptsMade reset");
    cr_assert_eq(bullc_queue_retry_job(q, c1, "completed", 0, &err), BULLC_ESTATE);
    cr_assert(strstr(err.message, "is not in the completed state"), "%s", err.message);
    cr_assert_eq(bullc_queue_retry_job(q, "nope", NULL, 0, &err), BULLC_ENOTFOUND);
    cr_assert_eq(bullc_queue_retry_job(q, f2, "active", 0, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_retry_job(q, f2, NULL, 0, &err), 0, "%s", err.message);
    /* promotion */
    char *d1 = tu_add(q, "d1", "{}", "{\"delay\":60000}"), *d2 = tu_add(q, "d2", "{}", "{\"delay\":60000}");
    cr_assert_eq(bullc_queue_promote_job(q, d1, &err), 0, "%s", err.message);
    char *delay = tu_hget(rc, k(p, d1), "delay");
    cr_assert_str_eq(delay, "0");
    free(delay);
    cr_assert_eq(bullc_queue_promote_job(q, d1, &err), BULLC_ESTATE);
    cr_assert_eq(bullc_queue_promote_job(q, "nope", &err), BULLC_ENOTFOUND);
    cr_assert_eq(bullc_queue_promote_jobs(q, 1, &err), 0, "%s", err.message);
    cr_assert_eq(icmd("ZCARD %s", k(p, "delayed")), 0);
    const char *state = NULL;
    cr_assert_eq(bullc_queue_get_job_state(q, d2, &state, &err), 0);
    cr_assert_str_eq(state, "waiting");
    bullc_free(f1), bullc_free(f2), bullc_free(c1), bullc_free(d1), bullc_free(d2);
    bullc_queue_free(q);
}

Test(admin, change_delay_and_priority) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *d = tu_add(q, "d", "{}", "{\"delay\":60000}"), *w = tu_add(q, "w", "{}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_change_job_delay(q, d, 5000, &err), 0, "%s", err.message);
    char *delay = tu_hget(rc, k(p, d), "delay");
    cr_assert_str_eq(delay, "5000");
    free(delay);
    cr_assert_eq(bullc_queue_change_job_delay(q, w, 10, &err), BULLC_ESTATE);
    cr_assert_eq(bullc_queue_change_job_delay(q, "nope", 10, &err), BULLC_ENOTFOUND);
    cr_assert_eq(bullc_queue_change_job_priority(q, w, 7, false, &err), 0, "%s", err.message);
    const char *state = NULL;
    cr_assert_eq(bullc_queue_get_job_state(q, w, &state, &err), 0);
    cr_assert_str_eq(state, "prioritized");
    cr_assert_eq(bullc_queue_change_job_priority(q, "nope", 1, false, &err), BULLC_ENOTFOUND);
    cr_assert_eq(bullc_queue_change_job_priority(q, w, 1 << 21, false, &err), BULLC_EINVAL);
    bullc_free(d), bullc_free(w);
    bullc_queue_free(q);
}

Test(admin, remove_job_not_found_locked_and_removed) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *w = tu_add(q, "w", "{}", NULL), *a = tu_add(q, "a", "{}", NULL);
    activate(p, a);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(q, "nope", true, &err), BULLC_ENOTFOUND);
    cr_assert_eq(bullc_queue_remove_job(q, a, true, &err), BULLC_ELOCK);
    cr_assert(strstr(err.message, "locked"), "%s", err.message);
    cr_assert_eq(icmd("EXISTS %s", k(p, a)), 1);
    cr_assert_eq(bullc_queue_remove_job(q, w, true, &err), 0, "%s", err.message);
    cr_assert_eq(icmd("EXISTS %s", k(p, w)), 0);
    cr_assert_eq(icmd("LLEN %s", k(p, "wait")), 0);
    char *ev = NULL;
    cr_assert_eq(bullc_queue_get_events(q, NULL, 0, &ev, &err), 0);
    char want[128];
    snprintf(want, sizeof want, "\"event\":\"removed\",\"jobId\":\"%s\",\"prev\":\"wait\"", w);
    cr_assert(strstr(ev, want), "%s", ev);
    bullc_free(ev);
    /* an orphan id (no hash) is dropped from its list, and reported missing */
    cmd("LPUSH %s orphan", k(p, "wait"));
    cr_assert_eq(bullc_queue_remove_job(q, "orphan", true, &err), BULLC_ENOTFOUND);
    cr_assert_eq(icmd("LLEN %s", k(p, "wait")), 0);
    bullc_free(w), bullc_free(a);
    bullc_queue_free(q);
}

Test(admin, global_limits_rate_limit_and_dedup_keys) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_error err = {0};
    int64_t v = -1, m = -1, d = -1, ttl = 0;
    cr_assert_eq(bullc_queue_get_global_concurrency(q, &v, &err), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(bullc_queue_set_global_concurrency(q, 0, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_set_global_concurrency(q, 4, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_get_global_concurrency(q, &v, &err), 0);
    cr_assert_eq(v, 4);
    cr_assert_eq(bullc_queue_set_global_rate_limit(q, 10, 2000, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_get_global_rate_limit(q, &m, &d, &err), 0);
    cr_assert(m == 10 && d == 2000);
    cJSON *meta = JSON_OF(bullc_queue_get_meta(q, &s_, &e_));
    cr_assert_eq(num(meta, "concurrency"), 4);
    cr_assert_eq(num(meta, "max"), 10);
    cr_assert_eq(num(meta, "duration"), 2000);
    cJSON_Delete(meta);
    cr_assert_eq(bullc_queue_remove_global_concurrency(q, &err), 0);
    cr_assert_eq(bullc_queue_remove_global_rate_limit(q, &err), 0);
    cr_assert_eq(bullc_queue_get_global_rate_limit(q, &m, &d, &err), 0);
    cr_assert(m == 0 && d == 0);
    cr_assert_eq(icmd("HEXISTS %s concurrency", k(p, "meta")), 0);
    /* rate limit: Node's sentinel value with a PX */
    cr_assert_eq(bullc_queue_get_rate_limit_ttl(q, 0, &ttl, &err), 0);
    cr_assert_eq(ttl, -2, "no key: raw PTTL");
    cr_assert_eq(bullc_queue_rate_limit(q, 3000, &err), 0, "%s", err.message);
    char *lim = tu_hget(rc, k(p, "meta"), "nothing");
    cr_assert_null(lim);
    redisReply *r = tu_cmd(rc, "GET %s", k(p, "limiter"));
    cr_assert_str_eq(r->str, "9007199254740991");
    freeReplyObject(r);
    cr_assert_eq(bullc_queue_get_rate_limit_ttl(q, 5, &ttl, &err), 0);
    cr_assert(ttl > 0 && ttl <= 3000, "ttl %lld", (long long)ttl);
    cr_assert_eq(bullc_queue_remove_rate_limit_key(q, &err), 0);
    cr_assert_eq(icmd("EXISTS %s", k(p, "limiter")), 0);
    /* deduplication key */
    char *id = tu_add(q, "x", "{}", "{\"deduplication\":{\"id\":\"dd\"}}");
    char *dedup_of = NULL;
    cr_assert_eq(bullc_queue_get_deduplication_job_id(q, "dd", &dedup_of, &err), 0, "%s", err.message);
    cr_assert_str_eq(dedup_of, id, "Node's getDeduplicationJobId names the job");
    bullc_free(dedup_of);
    cr_assert_eq(bullc_queue_get_deduplication_job_id(q, "", &dedup_of, &err), BULLC_EINVAL);
    int64_t removed = -1;
    cr_assert_eq(bullc_queue_remove_deduplication_key(q, "dd", &removed, &err), 0, "%s", err.message);
    cr_assert_eq(removed, 1);
    cr_assert_eq(bullc_queue_remove_deduplication_key(q, "dd", &removed, &err), 0);
    cr_assert_eq(removed, 0);
    cr_assert_eq(bullc_queue_get_deduplication_job_id(q, "dd", &dedup_of, &err), 0);
    cr_assert_null(dedup_of, "no window open: NULL");
    bullc_free(id);
    bullc_queue_free(q);
}

Test(admin, workers_are_the_clients_named_as_node_names_them) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("myq", p);
    /* base64("myq") = "bXlx" */
    char n1[128], n2[128], n3[128];
    snprintf(n1, sizeof n1, "%s:bXlx", p);
    snprintf(n2, sizeof n2, "%s:bXlx:w:alpha", p);
    snprintf(n3, sizeof n3, "%s:b3RoZXI=", p); /* another queue */
    redisContext *c1 = tu_redis(), *c2 = tu_redis(), *c3 = tu_redis();
    freeReplyObject(tu_cmd(c1, "CLIENT SETNAME %s", n1));
    freeReplyObject(tu_cmd(c2, "CLIENT SETNAME %s", n2));
    freeReplyObject(tu_cmd(c3, "CLIENT SETNAME %s", n3));
    cJSON *w = JSON_OF(bullc_queue_get_workers(q, &s_, &e_));
    cr_assert_eq(cJSON_GetArraySize(w), 2);
    for (cJSON *e = w->child; e; e = e->next) {
        cr_assert_str_eq(str(e, "name"), "myq");
        const char *raw = str(e, "rawname");
        cr_assert(!strcmp(raw, n1) || !strcmp(raw, n2), "%s", raw);
        cr_assert(strlen(str(e, "addr")) > 0 && strlen(str(e, "id")) > 0);
    }
    cJSON_Delete(w);
    redisFree(c1), redisFree(c2), redisFree(c3);
    bullc_queue_free(q);
}

Test(admin, metrics_as_node_reads_them) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    cmd("HSET %s count 5 prevTS 1700000000000 prevCount 3", k(p, "metrics:completed"));
    cmd("RPUSH %s 4 0 x 1", k(p, "metrics:completed:data"));
    cJSON *m = JSON_OF(bullc_queue_get_metrics(q, "completed", 0, -1, &s_, &e_));
    assert_json(m, NULL,
                "{\"meta\":{\"count\":5,\"prevTS\":1700000000000,\"prevCount\":3},\"data\":[4,0,0,1],\"count\":4}");
    cJSON_Delete(m);
    m = JSON_OF(bullc_queue_get_metrics(q, "completed", 1, 2, &s_, &e_));
    assert_json(m, "data", "[0,0]");
    cJSON_Delete(m);
    m = JSON_OF(bullc_queue_get_metrics(q, "failed", 0, -1, &s_, &e_));
    assert_json(m, NULL, "{\"meta\":{\"count\":0,\"prevTS\":0,\"prevCount\":0},\"data\":[],\"count\":0}");
    cJSON_Delete(m);
    bullc_queue_free(q);
}

Test(admin, queue_list_under_a_prefix) {
    const char *p = tu_prefix();
    char other[80];
    snprintf(other, sizeof other, "%sz", p);
    bullc_queue *a = tu_queue("alpha", p), *b = tu_queue("beta", p), *c = tu_queue("gamma", other);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_ping(a, &err), 0); /* writes meta */
    cr_assert_eq(bullc_queue_ping(c, &err), 0);
    bullc_free(tu_add(b, "x", "{}", NULL));
    cmd("SET %s:beta:sub:meta 1", p); /* not a queue: names have no ':' */
    cmd("SET %s:zeta:id 3", p);       /* only an id key, as an old queue */
    bullc_redis_opts *ro = tu_redis_opts();
    char *json = NULL;
    cr_assert_eq(bullc_queue_list(ro, p, &json, &err), 0, "%s", err.message);
    cr_assert_str_eq(json, "[\"alpha\",\"beta\",\"zeta\"]");
    bullc_free(json);
    cr_assert_eq(bullc_queue_list(ro, "", &json, &err), BULLC_EINVAL);
    bullc_redis_opts_free(ro);
    bullc_queue_free(a), bullc_queue_free(b), bullc_queue_free(c);
}

/* ---- the events stream, synchronously ------------------------------------------------------------ */

Test(admin, publish_read_and_trim_events) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_error err = {0};
    char *id1 = NULL, *id2 = NULL;
    const char *fields[] = {"foo", "bar", "n", "1"};
    cr_assert_eq(bullc_queue_publish_event(q, "custom", fields, 2, 0, &id1, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_publish_event(q, "other", NULL, 0, 0, &id2, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_publish_event(q, "", NULL, 0, 0, NULL, &err), BULLC_EINVAL);
    char *json = NULL;
    cr_assert_eq(bullc_queue_get_events(q, NULL, 0, &json, &err), 0, "%s", err.message);
    char want[256];
    snprintf(want, sizeof want,
             "[{\"id\":\"%s\",\"event\":\"custom\",\"foo\":\"bar\",\"n\":\"1\"},{\"id\":\"%s\",\"event\":\"other\"}]",
             id1, id2);
    cr_assert_str_eq(json, want);
    bullc_free(json);
    cr_assert_eq(bullc_queue_get_events(q, id1, 0, &json, &err), 0);
    snprintf(want, sizeof want, "[{\"id\":\"%s\",\"event\":\"other\"}]", id2);
    cr_assert_str_eq(json, want);
    bullc_free(json);
    cr_assert_eq(bullc_queue_get_events(q, NULL, 1, &json, &err), 0);
    cr_assert_eq(strstr(json, id2), NULL, "count 1");
    bullc_free(json);
    cr_assert_eq(bullc_queue_get_events(q, "$", 0, &json, &err), 0);
    cr_assert_str_eq(json, "[]");
    bullc_free(json);
    cr_assert_eq(bullc_queue_get_events(q, "x-1", 0, &json, &err), BULLC_EINVAL);
    /* trimming, approximately (whole macro nodes of 100 entries) */
    for (int i = 0; i < 250; i++) cr_assert_eq(bullc_queue_publish_event(q, "e", NULL, 0, 100000, NULL, &err), 0);
    int64_t trimmed = -1;
    cr_assert_eq(bullc_queue_trim_events(q, 0, &trimmed, &err), 0, "%s", err.message);
    cr_assert_gt(trimmed, 0);
    cr_assert_lt(icmd("XLEN %s", k(p, "events")), 252);
    bullc_free(id1), bullc_free(id2);
    bullc_queue_free(q);
}
