/* SPDX-License-Identifier: MIT */
/* The bullc admin verbs' usage errors: exit 2, nothing printed on stdout,
 * nothing written to Redis; destructive verbs without --yes change nothing;
 * exit 3 and 4 where they belong. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(admin_cli, .init = setup, .fini = teardown);

/* Runs `bullc --redis URL --prefix P ARGS` with stdin from /dev/null (not a
 * terminal); stdout in *out (may be NULL), stderr dropped. */
static int run(const char *url, const char *prefix, const char *args, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' --redis '%s' --prefix '%s' %s </dev/null 2>/dev/null", tu_bin("bullc"), url, prefix,
             args);
    return tu_run(cmd, out);
}

static long long nkeys(const char *prefix) {
    redisReply *r = tu_cmd(rc, "KEYS %s:*", prefix);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

Test(admin_cli, usage_errors_exit_2_and_write_nothing) {
    static const char *const cases[] = {
        "counts",
        "counts q extra",
        "counts bad:name",
        "jobs q --state bogus",
        "jobs q --state waiting,nope",
        "jobs q --state ''",
        "jobs q --start x",
        "jobs q --end 1.5",
        "jobs q --bogus-flag",
        "jobs q --asc=1",
        "get q",
        "get q 1 2",
        "logs q",
        "logs q 1 --start",
        "clear-logs q --yes",
        "wait q",
        "wait q 1 --timeout x",
        "wait q 1 --timeout -5",
        "clear-logs q 1 --keep -1 --yes",
        "clear-logs q 1 --keep x --yes",
        "state q",
        "pause",
        "resume a b",
        "drain",
        "drain q --delayed=yes --yes",
        "clean q --state failed --yes",
        "clean q --state bogus --grace 0 --yes",
        "clean q --state waiting-children --grace 0 --yes",
        "clean q --grace -5 --yes",
        "clean q --grace 0 --limit x --yes",
        "obliterate",
        "obliterate q --force=1 --yes",
        "--tls-insecure=false counts q",
        "--tls-insecure=0 counts q",
        "remove-orphans",
        "remove-orphans q --count 0 --yes",
        "remove-orphans q --limit -1 --yes",
        "remove-orphans q --count x --yes",
        "retry q",
        "retry q 1 --state failed",
        "retry q --state active",
        "retry q --state failed --count 0",
        "promote",
        "promote q 1 2",
        "remove q",
        "remove q 1 --yes --bogus",
        "workers",
        "queues extra",
        "events",
        "events q --from abc",
        "events q --from 1-2-3",
        "events q --from",
        "global-concurrency",
        "global-concurrency q 0",
        "global-concurrency q abc",
        "global-concurrency q 2 --remove",
        "global-rate-limit q 5",
        "global-rate-limit q 5 0",
        "global-rate-limit q 5 100 --remove",
        "rate-limit",
        "rate-limit q 0",
        "rate-limit q -1",
        "rate-limit q 10 20",
        "metrics q --end x",
        "metrics",
        "--bogus counts q",
        "flow add /nonexistent/flow.json",
    };
    const char *p = tu_prefix();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        int code = run(tu_redis_url(), p, cases[i], &out);
        cr_expect_eq(code, 2, "bullc %s: exit %d", cases[i], code);
        cr_expect_str_empty(out, "bullc %s printed: %s", cases[i], out);
        free(out);
    }
    cr_assert_eq(nkeys(p), 0, "nothing was written");
    /* a mistyped global flag is named as an unknown flag, not as a verb */
    char cmd[600], *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --bogus counts q </dev/null 2>&1 >/dev/null", tu_bin("bullc"));
    cr_expect_eq(tu_run(cmd, &err), 2);
    cr_expect(err && strstr(err, "unknown flag '--bogus'"), "%s", err);
    free(err);
}

Test(admin_cli, destructive_verbs_need_yes_and_change_nothing_without_it) {
    const char *p = tu_prefix();
    char *out = NULL;
    cr_assert_eq(run(tu_redis_url(), p, "add q a '{}'", NULL), 0);
    cr_assert_eq(run(tu_redis_url(), p, "add q b '{}' --opts '{\"delay\":60000}'", NULL), 0);
    redisReply *before = tu_cmd(rc, "KEYS %s:*", p);
    long long n = (long long)before->elements;
    freeReplyObject(before);
    redisReply *s1 = tu_cmd(rc, "XLEN %s:q:events", p);
    static const char *const cases[] = {"drain q",          "drain q --delayed",    "clean q --state waiting --grace 0",
                                        "obliterate q",     "obliterate q --force", "remove q 1",
                                        "remove-orphans q", "clear-logs q 1"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_eq(run(tu_redis_url(), p, cases[i], &out), 2, "bullc %s", cases[i]);
        cr_expect_str_empty(out);
        free(out);
    }
    cr_assert_eq(nkeys(p), n);
    redisReply *s2 = tu_cmd(rc, "XLEN %s:q:events", p);
    cr_assert_eq(s2->integer, s1->integer, "no event written either");
    freeReplyObject(s1), freeReplyObject(s2);
    redisReply *paused = tu_cmd(rc, "HEXISTS %s:q:meta paused", p);
    cr_assert_eq(paused->integer, 0, "obliterate did not even pause the queue");
    freeReplyObject(paused);
    /* with --yes they run */
    cr_assert_eq(run(tu_redis_url(), p, "--json remove q 1 --yes", &out), 0);
    cr_assert_str_eq(out, "{\"id\":\"1\",\"removed\":true}\n");
    free(out);
}

Test(admin_cli, missing_jobs_exit_4) {
    const char *p = tu_prefix();
    cr_assert_eq(run(tu_redis_url(), p, "add q a '{}'", NULL), 0);
    static const char *const cases[] = {"get q 99",  "logs q 99",  "state q 99",   "clear-logs q 99 --yes",
                                        "wait q 99", "retry q 99", "promote q 99", "remove q 99 --yes"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        cr_expect_eq(run(tu_redis_url(), p, cases[i], &out), 4, "bullc %s", cases[i]);
        cr_expect_str_empty(out, "bullc %s", cases[i]);
        free(out);
    }
}

/* Node's job.clearLogs(keepLogs) from the shell: the last N lines stay, then none */
Test(admin_cli, clear_logs_keeps_the_last_lines) {
    const char *p = tu_prefix();
    cr_assert_eq(run(tu_redis_url(), p, "add q a '{}'", NULL), 0);
    for (int i = 1; i <= 3; i++) freeReplyObject(tu_cmd(rc, "RPUSH %s:q:1:logs line%d", p, i));
    char *out = NULL;
    cr_assert_eq(run(tu_redis_url(), p, "--yes clear-logs q 1 --keep 2", &out), 0);
    cr_assert_str_empty(out);
    free(out);
    cr_assert_eq(run(tu_redis_url(), p, "logs q 1", &out), 0);
    cr_assert_str_eq(out, "line2\nline3\n");
    free(out);
    cr_assert_eq(run(tu_redis_url(), p, "--yes clear-logs q 1", NULL), 0);
    redisReply *r = tu_cmd(rc, "EXISTS %s:q:1:logs", p);
    cr_assert_eq(r->integer, 0, "no lines left");
    freeReplyObject(r);
    r = tu_cmd(rc, "EXISTS %s:q:1", p);
    cr_assert_eq(r->integer, 1, "the job stays");
    freeReplyObject(r);
}

/* Node's job.waitUntilFinished from the shell: the return value printed, a failure or no end in time
 * exit 1 (the jobs' ends are written as the scripts would leave them) */
Test(admin_cli, wait_prints_the_return_value_or_exits_1) {
    const char *p = tu_prefix();
    cr_assert_eq(run(tu_redis_url(), p, "add q a '{}'", NULL), 0);
    cr_assert_eq(run(tu_redis_url(), p, "add q b '{}'", NULL), 0);
    cr_assert_eq(run(tu_redis_url(), p, "add q c '{}'", NULL), 0);
    char *out = NULL;
    cr_assert_eq(run(tu_redis_url(), p, "wait q 1 --timeout 200", &out), 1, "still waiting");
    cr_assert_str_empty(out);
    free(out);
    freeReplyObject(tu_cmd(rc, "ZADD %s:q:completed 1 1", p));
    freeReplyObject(tu_cmd(rc, "HSET %s:q:1 returnvalue {\"ok\":1}", p));
    cr_assert_eq(run(tu_redis_url(), p, "wait q 1", &out), 0);
    cr_assert_str_eq(out, "{\"ok\":1}\n");
    free(out);
    freeReplyObject(tu_cmd(rc, "ZADD %s:q:failed 1 2", p));
    freeReplyObject(tu_cmd(rc, "HSET %s:q:2 failedReason boom", p));
    cr_assert_eq(run(tu_redis_url(), p, "wait q 2", &out), 1);
    cr_assert_str_empty(out);
    free(out);
}

Test(admin_cli, unreachable_redis_exits_3) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", tu_free_port());
    static const char *const cases[] = {"counts q", "jobs q",   "get q 1",           "pause q",   "drain q --yes",
                                        "queues",   "events q", "events q --follow", "workers q", "metrics q"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(run(url, "x", cases[i], NULL), 3, "bullc %s", cases[i]);
}

Test(admin_cli, every_verb_has_help) {
    static const char *const verbs[] = {"counts",
                                        "jobs",
                                        "get",
                                        "logs",
                                        "clear-logs",
                                        "wait",
                                        "state",
                                        "pause",
                                        "resume",
                                        "drain",
                                        "clean",
                                        "obliterate",
                                        "retry",
                                        "promote",
                                        "remove",
                                        "workers",
                                        "events",
                                        "queues",
                                        "global-concurrency",
                                        "global-rate-limit",
                                        "rate-limit",
                                        "metrics"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        char cmd[512], *out = NULL;
        snprintf(cmd, sizeof cmd, "'%s' %s --help", tu_bin("bullc"), verbs[i]);
        cr_expect_eq(tu_run(cmd, &out), 0, "%s --help", verbs[i]);
        char want[64];
        snprintf(want, sizeof want, "usage: bullc %s", verbs[i]);
        cr_expect(strstr(out, want), "%s --help: %s", verbs[i], out);
        free(out);
        snprintf(cmd, sizeof cmd, "'%s' --help", tu_bin("bullc"));
        cr_assert_eq(tu_run(cmd, &out), 0);
        snprintf(want, sizeof want, "  %s", verbs[i]);
        cr_expect(strstr(out, want), "bullc --help lists %s", verbs[i]);
        free(out);
    }
}

/* On a terminal (a pty from util-linux's `script`), a destructive verb asks;
 * only "y" goes ahead. */
static int on_terminal(const char *prefix, const char *args, const char *answer) {
    cr_assert_eq(system("command -v script >/dev/null"), 0, "this test needs `script` (util-linux) for a pty");
    char cmd[2048];
    snprintf(
        cmd, sizeof cmd,
        "(sleep 0.3; printf '%s\\n') | script -qec \"'%s' --redis '%s' --prefix '%s' %s\" /dev/null >/dev/null 2>&1",
        answer, tu_bin("bullc"), tu_redis_url(), prefix, args);
    return tu_run(cmd, NULL);
}

Test(admin_cli, destructive_verbs_ask_on_a_terminal) {
    const char *p = tu_prefix();
    cr_assert_eq(run(tu_redis_url(), p, "add q a '{}'", NULL), 0);
    cr_assert_eq(on_terminal(p, "drain q", "n"), 2, "declined");
    redisReply *r = tu_cmd(rc, "LLEN %s:q:wait", p);
    cr_assert_eq(r->integer, 1, "nothing changed");
    freeReplyObject(r);
    cr_assert_eq(on_terminal(p, "drain q", "y"), 0, "confirmed");
    r = tu_cmd(rc, "LLEN %s:q:wait", p);
    cr_assert_eq(r->integer, 0, "drained");
    freeReplyObject(r);
}
