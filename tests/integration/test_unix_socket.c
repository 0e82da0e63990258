/* SPDX-License-Identifier: MIT */
/* Redis over a unix socket (unix:///path.sock, docs/connection.md): a queue
 * adds single and bulk jobs and a worker processes them. TCP keepalive does
 * not apply to such a socket: setting it anyway used to leave the queue's
 * connection in an error state, so every call failed. The public any-command
 * connection (bullc_redis_conn) and its reply accessors, and where it finds
 * a command's keys to route it on a cluster. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bullc-private.h"
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

/* Settings for the private server's socket (unix://PATH). */
static bullc_redis_opts *sock_opts(void) {
    char url[200];
    snprintf(url, sizeof url, "unix://%s", sock);
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_parse_url(ro, url, &err), 0, "%s", err.message);
    return ro;
}

Test(unix_socket, queue_and_worker) {
    bullc_redis_opts *ro = sock_opts();
    bullc_error err = {0};
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
    bullc_redis_opts *ro = sock_opts();
    bullc_error err = {0};
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

/* Where a command's keys are, as bullc_redis_conn finds them to route it on
 * a cluster (command_keys.c: the server's key specs applied locally, COMMAND
 * GETKEYS where they cannot tell), equals what the server itself names
 * (COMMAND GETKEYS; no keys where it refuses). A user denied COMMAND gets
 * the fallback. */
Test(unix_socket, command_keys) {
    bullc_redis_opts *ro = sock_opts();
    bullc_error err = {0};
    bullc__conn c;
    bullc__cmd_table *table = NULL;
    cr_assert_eq(bullc__conn_init(&c, ro, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
    static const char *const cmds[][12] = {
        {"GET", "k"},
        {"mset", "a", "1", "b", "2"},
        {"XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"},
        {"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s1", ">"},
        {"OBJECT", "ENCODING", "k"},
        {"object", "help"},
        {"MEMORY", "USAGE", "k"},
        {"XINFO", "STREAM", "s"},
        {"XGROUP", "CREATE", "s", "g", "$"},
        {"BITOP", "AND", "dest", "k1", "k2"},
        {"ZUNION", "2", "a", "b"},
        {"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"},
        {"SINTERCARD", "2", "a", "b", "LIMIT", "1"},
        {"LMPOP", "2", "a", "b", "LEFT"},
        {"BLMPOP", "0", "2", "a", "b", "LEFT"},
        {"BZMPOP", "0", "1", "z", "MIN"},
        {"GEORADIUS", "g", "0", "0", "1", "km", "STORE", "dst"},
        {"GEORADIUS", "g", "0", "0", "1", "km", "STOREDIST", "dst"},
        {"EVAL", "return 1", "2", "k1", "k2", "a"},
        {"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0", "a"},
        {"SORT", "k", "BY", "w*", "STORE", "dst"},
        {"MIGRATE", "h", "1", "", "0", "5000", "KEYS", "a", "b"},
        {"LMOVE", "a", "b", "LEFT", "RIGHT"},
        {"INFO", "server"},
        {"PUBLISH", "ch", "m"},
        {"PING"},
        {"NOSUCHCOMMAND", "x"},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        int argc = 0;
        while (argc < 12 && cmds[i][argc]) argc++;
        bullc__cmd_keys k;
        cr_assert_eq(bullc__command_keys(&table, &c, argc, cmds[i], NULL, &k, &err), 0, "%s: %s", cmds[i][0],
                     err.message);
        const char *q[14] = {"COMMAND", "GETKEYS"};
        for (int a = 0; a < argc; a++) q[a + 2] = cmds[i][a];
        redisReply *r = NULL;
        int rc = bullc__conn_command(&c, &r, &err, argc + 2, q, NULL);
        size_t want = rc ? 0 : r->elements;
        cr_assert_eq(k.n, want, "%s %s: %zu keys, the server says %zu", cmds[i][0], argc > 1 ? cmds[i][1] : "", k.n,
                     want);
        for (size_t j = 0; j < want; j++)
            cr_assert(k.key[j].len == r->element[j]->len && !memcmp(k.key[j].p, r->element[j]->str, k.key[j].len),
                      "%s: key %zu is %.*s, the server says %s", cmds[i][0], j, (int)k.key[j].len, k.key[j].p,
                      r->element[j]->str);
        if (r) freeReplyObject(r);
        bullc__cmd_keys_clear(&k);
    }
    bullc__cmd_table_free(table);
    table = NULL;
    /* a user without COMMAND: a script call's first key, else argv[1] */
    const char *acl[] = {"ACL", "SETUSER", "nocmd", "on", ">pw", "+@all", "-command", "~*"};
    redisReply *r = NULL;
    cr_assert_eq(bullc__conn_command(&c, &r, &err, 8, acl, NULL), 0, "%s", err.message);
    freeReplyObject(r);
    bullc__conn_close(&c);
    ro = sock_opts();
    bullc_redis_opts_set_auth(ro, "nocmd", "pw");
    cr_assert_eq(bullc__conn_init(&c, ro, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
    static const char *const fallback[][6] = {
        {"XREAD", "STREAMS", "s", "0"}, {"EVALSHA", "x", "2", "k1", "k2"}, {"EVAL", "x", "0", "a"}, {"PING"}};
    static const char *const want[] = {"STREAMS", "k1", NULL, NULL};
    for (size_t i = 0; i < sizeof fallback / sizeof *fallback; i++) {
        int argc = 0;
        while (argc < 6 && fallback[i][argc]) argc++;
        bullc__cmd_keys k;
        cr_assert_eq(bullc__command_keys(&table, &c, argc, fallback[i], NULL, &k, &err), 0, "%s", err.message);
        cr_assert_eq(k.n, want[i] ? 1u : 0u, "%s: %zu keys", fallback[i][0], k.n);
        if (want[i]) cr_assert(k.key[0].len == strlen(want[i]) && !memcmp(k.key[0].p, want[i], k.key[0].len));
        bullc__cmd_keys_clear(&k);
    }
    bullc__cmd_table_free(table);
    bullc__conn_close(&c);
}
