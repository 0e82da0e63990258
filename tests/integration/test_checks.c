/* SPDX-License-Identifier: MIT */
/* Startup guard rails: eviction policy, persistence, foreign queue versions,
 * forbidden CONFIG — on a private redis-server this test may reconfigure. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "private_redis.h"
#include "testutil.h"

static private_redis pr;

static void setup(void) { pr_start(&pr, "--appendonly no"); }
static void teardown(void) { pr_stop(&pr); }
TestSuite(checks, .init = setup, .fini = teardown, .timeout = 30);

/* bullc_queue_check_server's report, parsed, for `queue` under `prefix` on the server at `url`. */
static cJSON *check_on(const char *url, const char *prefix, const char *queue) {
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    bullc_redis_opts_parse_url(o, url, NULL);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, prefix);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, queue, qo, NULL), 0);
    char *rep = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_check_server(q, &rep, &err), 0, "%s", err.message);
    cJSON *j = cJSON_Parse(rep);
    cr_assert_not_null(j, "%s", rep);
    bullc_free(rep);
    bullc_queue_free(q);
    bullc_redis_opts_free(o);
    return j;
}
static cJSON *check(const char *prefix, const char *queue) { return check_on(pr.url, prefix, queue); }

static bool array_has(const cJSON *j, const char *name, const char *needle) {
    const cJSON *a = cJSON_GetObjectItem(j, name), *e;
    cJSON_ArrayForEach(e, a) if (strstr(e->valuestring, needle)) return true;
    return false;
}

Test(checks, healthy_server_has_no_errors_but_warns_without_persistence) {
    cJSON *j = check("bull", "q");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "maxmemoryPolicy")->valuestring, "noeviction");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "persistence")->valuestring, "none");
    cr_assert(array_has(j, "warnings", "persistence is off"));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "queueVersion")), "a new queue has no version yet");
    cJSON_Delete(j);
    pr_cmd(&pr, "CONFIG SET appendonly %s", "yes");
    j = check("bull", "q");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "persistence")->valuestring, "aof");
    cr_assert_not(array_has(j, "warnings", "persistence is off"));
    cJSON_Delete(j);
}

Test(checks, eviction_policy_is_an_error) {
    pr_cmd(&pr, "CONFIG SET maxmemory-policy %s", "allkeys-lru");
    cJSON *j = check("bull", "q");
    cr_assert(array_has(j, "errors", "maxmemory-policy is allkeys-lru"));
    cJSON_Delete(j);
}

Test(checks, foreign_queue_version_is_an_error) {
    pr_cmd(&pr, "HSET bull:old:meta version %s", "bullmq:4.12.0");
    pr_cmd(&pr, "HSET bull:five:meta version %s", "bullmq:5.12.0");
    pr_cmd(&pr, "HSET bull:new:meta version %s", "bullmq:6.2.0");
    cJSON *j = check("bull", "old");
    cr_assert(array_has(j, "errors", "bullmq:4.12.0"), "a major bullc does not speak");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "bullmqVersion")));
    cJSON_Delete(j);
    j = check("bull", "five");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), 0, "5.x is spoken (auto)");
    cr_assert_eq(cJSON_GetObjectItem(j, "bullmqVersion")->valueint, 5);
    cJSON_Delete(j);
    j = check("bull", "new");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), 0, "any 6.x is fine");
    cr_assert_eq(cJSON_GetObjectItem(j, "bullmqVersion")->valueint, 6);
    cJSON_Delete(j);
}

/* Many queues at once (bullc-worker's start): the server's findings once,
 * each queue's own under its name, in order. */
Test(checks, many_queues_in_one_report) {
    pr_cmd(&pr, "CONFIG SET maxmemory-policy %s", "allkeys-lru");
    pr_cmd(&pr, "HSET bull:old:meta version %s", "bullmq:4.12.0");
    pr_cmd(&pr, "HSET bull:five:meta version %s", "bullmq:5.12.0");
    pr_cmd(&pr, "HSET bull:new:meta version %s", "bullmq:6.2.0");
    const char *names[] = {"old", "five", "new", "unused"};
    enum { N = 4 };
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    bullc_redis_opts_parse_url(o, pr.url, NULL);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, "bull");
    bullc_queue *qs[N];
    for (int i = 0; i < N; i++) cr_assert_eq(bullc_queue_new(&qs[i], names[i], qo, NULL), 0);
    char *rep = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_check_servers(qs, N, &rep, &err), 0, "%s", err.message);
    cJSON *j = cJSON_Parse(rep);
    cr_assert_not_null(j, "%s", rep);
    bullc_free(rep);
    for (int i = 0; i < N; i++) bullc_queue_free(qs[i]);
    bullc_redis_opts_free(o);
    const cJSON *errors = cJSON_GetObjectItem(j, "errors"), *warnings = cJSON_GetObjectItem(j, "warnings");
    cr_assert_eq(cJSON_GetArraySize(errors), 1, "the eviction policy, once");
    cr_assert(array_has(j, "errors", "maxmemory-policy is allkeys-lru"));
    cr_assert_eq(cJSON_GetArraySize(warnings), 1, "persistence off, once");
    const cJSON *list = cJSON_GetObjectItem(j, "queues");
    cr_assert_eq(cJSON_GetArraySize(list), N);
    for (int i = 0; i < N; i++) {
        const cJSON *q = cJSON_GetArrayItem(list, i);
        cr_assert_str_eq(cJSON_GetObjectItem(q, "name")->valuestring, names[i]);
        cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(q, "errors")), i == 0 ? 1 : 0, "%s", names[i]);
    }
    cr_assert(array_has(cJSON_GetArrayItem(list, 0), "errors", "bullmq:4.12.0"));
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "bullmqVersion")->valueint, 5);
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 2), "bullmqVersion")->valueint, 6);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 3), "queueVersion")));
    cJSON_Delete(j);
}

Test(checks, forbidden_config_degrades_to_a_warning) {
    /* a managed Redis forbids CONFIG: simulate it with an ACL user without it */
    pr_cmd(&pr, "ACL SETUSER limited on >pw ~* &* +@all -config %s", "-info");
    char url[96];
    snprintf(url, sizeof url, "redis://limited:pw@127.0.0.1:%d", pr.port);
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    bullc_redis_opts_parse_url(o, url, NULL);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", qo, NULL), 0);
    char *rep = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_check_server(q, &rep, &err), 0, "%s", err.message);
    cJSON *j = cJSON_Parse(rep);
    cr_assert(array_has(j, "warnings", "CONFIG is not allowed"), "%s", rep);
    cr_assert(array_has(j, "warnings", "INFO is not allowed"), "%s", rep);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "maxmemoryPolicy")));
    cJSON_Delete(j);
    bullc_free(rep);
    bullc_queue_free(q);
    bullc_redis_opts_free(o);
}

/* ---- Redis Cluster: a queue's keys must share a slot ---- */
Test(checks, cluster_without_a_hash_tagged_prefix_is_an_error) {
    private_redis c;
    pr_start(&c, "--cluster-enabled yes --cluster-config-file nodes.conf");
    cJSON *j = check_on(c.url, "bull", "q");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "cluster")));
    cr_assert(array_has(j, "errors", "hash-tagged prefix"));
    cJSON_Delete(j);
    j = check_on(c.url, "{bull}", "q");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "hashTagged")));
    cr_assert_not(array_has(j, "errors", "hash-tagged prefix"), "a hash-tagged prefix keeps a queue in one slot");
    cJSON_Delete(j);
    pr_stop(&c);
}
