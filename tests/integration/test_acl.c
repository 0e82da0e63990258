/* SPDX-License-Identifier: MIT */
/* Redis ACL: the minimal users docs/security.md gives a producer and a
 * worker are enough for adds (single and bulk), processing, retries, lock
 * renewal and the stalled checker — and nothing more. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "private_redis.h"
#include "testutil.h"
#include "worker_harness.h"

/* The rules of docs/security.md, for the prefix "bull". */
#define WORKER_RULES                                                                                  \
    "on >worker-pw ~bull:* resetchannels -@all +@read +@write +@scripting -@dangerous -script|flush " \
    "-script|kill -function +ping +client|setname +info +select"
#define PRODUCER_RULES                                                                                  \
    "on >producer-pw ~bull:* resetchannels -@all +@read +@write +@scripting -@dangerous -script|flush " \
    "-script|kill -function +ping +multi +exec +select -@blocking"

static private_redis pr;
static void setup(void) {
    pr_start(&pr, "");
    pr_cmd(&pr, "ACL SETUSER bullc-worker reset " WORKER_RULES);
    pr_cmd(&pr, "ACL SETUSER bullc-producer reset " PRODUCER_RULES);
}
static void teardown(void) { pr_stop(&pr); }
TestSuite(acl, .init = setup, .fini = teardown, .timeout = 60);

static bullc_redis_opts *as(const char *user, const char *pw) {
    char url[160];
    snprintf(url, sizeof url, "redis://%s:%s@127.0.0.1:%d", user, pw, pr.port);
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    cr_assert_eq(bullc_redis_opts_parse_url(o, url, NULL), 0);
    return o;
}

static void fail_once(bullc_job *job, void *data) {
    (void)data;
    if (bullc_job_attempts_made(job) == 0)
        bullc_job_fail(job, "first attempt fails", 0);
    else
        bullc_job_complete(job, "\"ok\"");
}

Test(acl, minimal_users_add_and_process) {
    bullc_redis_opts *po = as("bullc-producer", "producer-pw");
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, po);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", qo, NULL), 0);
    bullc_job_opts *jo;
    bullc_job_opts_new(&jo);
    bullc_job_opts_merge_json(jo, "{\"attempts\":2,\"jobId\":\"custom-1\"}", NULL);
    bullc_error err = {0};
    cr_assert_geq(bullc_queue_add(q, "one", "{}", jo, NULL, &err), 0, "%s", err.message);
    bullc_bulk_job jobs[3] = {{"b", "{}", NULL, NULL, 0}, {"b", "{}", NULL, NULL, 0}, {"b", "{}", NULL, NULL, 0}};
    for (int i = 0; i < 3; i++) jobs[i].opts = NULL;
    bullc_job_opts *att;
    bullc_job_opts_new(&att);
    bullc_job_opts_set_attempts(att, 2);
    for (int i = 0; i < 3; i++) jobs[i].opts = att;
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 3, &err), 0, "bulk (SCRIPT LOAD + MULTI): %s", err.message);
    for (int i = 0; i < 3; i++) bullc_free(jobs[i].id);
    bullc_job_opts_free(jo);
    bullc_job_opts_free(att);
    bullc_queue_free(q);
    bullc_redis_opts_free(po);

    wh h;
    wh_init(&h);
    h.want = 4;
    bullc_worker_opts *o = wh_opts("bull");
    bullc_redis_opts *wo = as("bullc-worker", "worker-pw");
    bullc_worker_opts_set_redis(o, wo);
    bullc_worker_opts_set_processor(o, fail_once, NULL);
    bullc_worker_opts_set_stalled_interval(o, 200);
    bullc_worker_opts_set_lock_duration(o, 1000); /* renewals every 250 ms */
    wh_add_worker(&h, "q", o);
    bullc_redis_opts_free(wo);
    wh_run(&h, 20000);
    cr_assert_eq(h.completed, 4);
    cr_assert_eq(h.retried, 4);
    cr_assert_eq(h.errors, 0, "no command was refused");
}

Test(acl, the_worker_user_can_do_nothing_else) {
    redisContext *c = pr_connect(&pr);
    redisReply *r = redisCommand(c, "AUTH bullc-worker worker-pw");
    cr_assert_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    const char *denied[] = {
        "FLUSHALL", "CONFIG GET maxmemory", "KEYS *",      "SET other:key 1", "CLIENT KILL ID 1",  "SHUTDOWN",
        "ACL LIST", "SCRIPT FLUSH",         "SCRIPT KILL", "FUNCTION FLUSH",  "XADD other:s * a b"};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        r = redisCommand(c, denied[i]);
        cr_assert(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOPERM"), "%s was allowed", denied[i]);
        freeReplyObject(r);
    }
    redisFree(c);
}
