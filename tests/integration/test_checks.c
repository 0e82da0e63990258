/* SPDX-License-Identifier: MIT */
/* Startup guard rails: eviction policy, persistence, foreign queue versions,
 * forbidden CONFIG — on a private redis-server this test may reconfigure. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "testutil.h"

static int port;
static char dir[256];

static void setup(void) {
    port = tu_free_port();
    snprintf(dir, sizeof dir, "%s/checks-%d", getenv("BULLC_TEST_TMP") ? getenv("BULLC_TEST_TMP") : "/tmp",
             (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && redis-server --port %d --bind 127.0.0.1 --dir %s --save '' --appendonly no "
             "--daemonize yes --pidfile %s/r.pid --logfile %s/r.log && "
             "for i in $(seq 1 100); do redis-cli -p %d ping >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1",
             dir, port, dir, dir, dir, port);
    cr_assert_eq(tu_run(cmd, NULL), 0);
}
static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d shutdown nosave >/dev/null 2>&1; rm -rf %s", port, dir);
    tu_run(cmd, NULL);
}
TestSuite(checks, .init = setup, .fini = teardown, .timeout = 30);

static cJSON *check(const char *prefix, const char *queue) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    bullc_redis_opts_parse_url(o, url, NULL);
    bullc_queue_opts qo;
    bullc_queue_opts_init(&qo);
    qo.redis = o;
    qo.prefix = prefix;
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, queue, &qo, NULL), 0);
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

static bool array_has(const cJSON *j, const char *name, const char *needle) {
    const cJSON *a = cJSON_GetObjectItem(j, name), *e;
    cJSON_ArrayForEach(e, a) if (strstr(e->valuestring, needle)) return true;
    return false;
}

static void redis(const char *fmt, const char *arg) {
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply *r = redisCommand(c, fmt, arg);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "%s", r ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
}

Test(checks, healthy_server_has_no_errors_but_warns_without_persistence) {
    cJSON *j = check("bull", "q");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "maxmemoryPolicy")->valuestring, "noeviction");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "persistence")->valuestring, "none");
    cr_assert(array_has(j, "warnings", "persistence is off"));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "queueVersion")), "a new queue has no version yet");
    cJSON_Delete(j);
    redis("CONFIG SET appendonly %s", "yes");
    j = check("bull", "q");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "persistence")->valuestring, "aof");
    cr_assert_not(array_has(j, "warnings", "persistence is off"));
    cJSON_Delete(j);
}

Test(checks, eviction_policy_is_an_error) {
    redis("CONFIG SET maxmemory-policy %s", "allkeys-lru");
    cJSON *j = check("bull", "q");
    cr_assert(array_has(j, "errors", "maxmemory-policy is allkeys-lru"));
    cJSON_Delete(j);
}

Test(checks, foreign_queue_version_is_an_error) {
    redis("HSET bull:old:meta version %s", "bullmq:5.12.0");
    redis("HSET bull:new:meta version %s", "bullmq:6.2.0");
    cJSON *j = check("bull", "old");
    cr_assert(array_has(j, "errors", "bullmq:5.12.0"));
    cJSON_Delete(j);
    j = check("bull", "new");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), 0, "any 6.x is fine");
    cJSON_Delete(j);
}

Test(checks, forbidden_config_degrades_to_a_warning) {
    /* a managed Redis forbids CONFIG: simulate it with an ACL user without it */
    redis("ACL SETUSER limited on >pw ~* &* +@all -config %s", "-info");
    char url[96];
    snprintf(url, sizeof url, "redis://limited:pw@127.0.0.1:%d", port);
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    bullc_redis_opts_parse_url(o, url, NULL);
    bullc_queue_opts qo;
    bullc_queue_opts_init(&qo);
    qo.redis = o;
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", &qo, NULL), 0);
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
#include "private_redis.h"

static cJSON *check_on(const char *url, const char *prefix) {
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    bullc_redis_opts_parse_url(o, url, NULL);
    bullc_queue_opts qo;
    bullc_queue_opts_init(&qo);
    qo.redis = o;
    qo.prefix = prefix;
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", &qo, NULL), 0);
    char *rep = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_check_server(q, &rep, &err), 0, "%s", err.message);
    cJSON *j = cJSON_Parse(rep);
    bullc_free(rep);
    bullc_queue_free(q);
    bullc_redis_opts_free(o);
    return j;
}

Test(checks, cluster_without_a_hash_tagged_prefix_is_an_error) {
    private_redis c;
    pr_start(&c, "--cluster-enabled yes --cluster-config-file nodes.conf");
    cJSON *j = check_on(c.url, "bull");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "cluster")));
    cr_assert(array_has(j, "errors", "hash-tagged prefix"));
    cJSON_Delete(j);
    j = check_on(c.url, "{bull}");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "hashTagged")));
    cr_assert_not(array_has(j, "errors", "hash-tagged prefix"), "a hash-tagged prefix keeps a queue in one slot");
    cJSON_Delete(j);
    pr_stop(&c);
}
