/* SPDX-License-Identifier: MIT */
/* Redis over a unix socket (unix:///path.sock, docs/connection.md): a queue
 * adds single and bulk jobs and a worker processes them. TCP keepalive does
 * not apply to such a socket: setting it anyway used to leave the queue's
 * connection in an error state, so every call failed. The public any-command
 * connection (bullc_redis_conn) and its reply accessors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* bullc_redis_conn (any command) and its reply accessors, on the same
 * socket: every reply type, binary values, an error reply, bad input. */
Test(unix_socket, any_command) {
    char url[200];
    snprintf(url, sizeof url, "unix://%s", sock);
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_parse_url(ro, url, &err), 0, "%s", err.message);
    bullc_redis_conn *c;
    cr_assert_eq(bullc_redis_conn_new(&c, ro, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro); /* the connection has its copy */
    bullc_redis_reply *r = NULL;
    const char *set[] = {"SET", "k", "a\0b"};
    size_t set_lens[] = {3, 1, 3};
    cr_assert_eq(bullc_redis_conn_command(c, 3, set, set_lens, &r, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_redis_reply_type(r), BULLC_REPLY_STATUS);
    cr_assert_str_eq(bullc_redis_reply_str(r, NULL), "OK");
    bullc_redis_reply_free(r);
    const char *get[] = {"GET", "k"};
    size_t len = 0;
    cr_assert_eq(bullc_redis_conn_command(c, 2, get, NULL, &r, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_redis_reply_type(r), BULLC_REPLY_STRING);
    cr_assert_eq(memcmp(bullc_redis_reply_str(r, &len), "a\0b", 3), 0);
    cr_assert_eq(len, 3);
    bullc_redis_reply_free(r);
    const char *eval[] = {"EVAL", "return {1, redis.call('GET', KEYS[1]), redis.error_reply('E x')}", "1", "missing"};
    cr_assert_eq(bullc_redis_conn_command(c, 4, eval, NULL, &r, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_redis_reply_count(r), 3);
    cr_assert_eq(bullc_redis_reply_integer(bullc_redis_reply_element(r, 0)), 1);
    cr_assert_eq(bullc_redis_reply_type(bullc_redis_reply_element(r, 1)), BULLC_REPLY_NIL);
    cr_assert_eq(bullc_redis_reply_type(bullc_redis_reply_element(r, 2)), BULLC_REPLY_ERROR);
    cr_assert_null(bullc_redis_reply_element(r, 3));
    bullc_redis_reply_free(r);
    const char *bad[] = {"INCR", "k"};
    r = NULL;
    cr_assert_eq(bullc_redis_conn_command(c, 2, bad, NULL, &r, &err), BULLC_EREDIS);
    cr_assert(strstr(err.message, "not an integer"), "%s", err.message);
    cr_assert_null(r);
    cr_assert_eq(bullc_redis_conn_command(c, 0, bad, NULL, &r, &err), BULLC_EINVAL);
    /* still usable after an error reply */
    cr_assert_eq(bullc_redis_conn_command(c, 2, get, NULL, &r, &err), 0, "%s", err.message);
    bullc_redis_reply_free(r);
    bullc_redis_conn_free(c);
}
