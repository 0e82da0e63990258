/* SPDX-License-Identifier: MIT */
/* Redis over a unix socket (unix:///path.sock, docs/connection.md): a queue
 * adds single and bulk jobs and a worker processes them. TCP keepalive does
 * not apply to such a socket: setting it anyway used to leave the queue's
 * connection in an error state, so every call failed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "private_redis.h"
#include "testutil.h"
#include "worker_harness.h"

static private_redis pr;
static char sock[128];
static void setup(void) {
    snprintf(sock, sizeof sock, "/tmp/bullc-test-%d.sock", (int)getpid());
    char extra[200];
    snprintf(extra, sizeof extra, "--unixsocket %s --unixsocketperm 700", sock);
    pr_start(&pr, extra);
}
static void teardown(void) { pr_stop(&pr); }
TestSuite(unix_socket, .init = setup, .fini = teardown, .timeout = 60);

static void ok(bullc_job *job, void *data) {
    (void)data;
    bullc_job_complete(job, "\"done\"");
}

Test(unix_socket, queue_and_worker) {
    char url[200];
    snprintf(url, sizeof url, "unix://%s", sock);
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_parse_url(ro, url, &err), 0, "%s", err.message);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, ro);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", qo, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_ping(q, &err), 0, "%s", err.message);
    char *id = NULL;
    cr_assert_eq(bullc_queue_add(q, "one", "{\"a\":1}", NULL, &id, &err), 0, "%s", err.message);
    cr_assert_str_eq(id, "1");
    bullc_free(id);
    bullc_bulk_job jobs[2] = {{"b", "{}", NULL, NULL, 0}, {"b", "{}", NULL, NULL, 0}};
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, 2, &err), 0, "%s", err.message);
    cr_assert_str_eq(jobs[1].id, "3");
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
    bullc_queue_free(q);

    wh h;
    wh_init(&h);
    h.want = 3;
    bullc_worker_opts *o = wh_opts("bull");
    bullc_worker_opts_set_redis(o, ro);
    bullc_worker_opts_set_processor(o, ok, NULL);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 20000);
    cr_assert_eq(h.completed, 3);
    cr_assert_eq(h.errors, 0);
    bullc_redis_opts_free(ro);

    /* and what landed is what a TCP client sees */
    redisContext *c = pr_connect(&pr);
    redisReply *r = redisCommand(c, "HGET bull:q:1 returnvalue");
    cr_assert_str_eq(r->str, "\"done\"");
    freeReplyObject(r);
    redisFree(c);
}
