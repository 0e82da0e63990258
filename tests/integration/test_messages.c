/* SPDX-License-Identifier: MIT */
/* What a user reads when Redis says no or says nothing: a server that wants
 * a password names the password and where to give it (NOAUTH, and the
 * protocol error Redis gives a script call before AUTH); a silent server is
 * a timeout that says after how long and what changes it; secrets given on
 * the command line never come back in a message. Library and programs. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

static int auth_port(void) {
    const char *p = getenv("BULLC_TEST_AUTH_PORT");
    cr_assert(p && *p, "BULLC_TEST_AUTH_PORT is not set (run through ctest)");
    return atoi(p);
}

/* Runs a shell command line with stderr joined to stdout. */
static int run_both(const char *cmdline, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s </dev/null 2>&1", cmdline);
    return tu_run(cmd, out);
}

/* A server that accepts connections (the kernel does, from the backlog)
 * and never answers. */
static int silent_server(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

Test(messages, a_server_that_wants_a_password_says_so_to_the_library) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", auth_port());
    char *saved = strdup(tu_redis_url());
    cr_assert_eq(setenv("REDIS_URL", url, 1), 0);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "m", NULL, NULL), 0);
    bullc_error err = {0};
    /* a command, and a script call */
    cr_assert_eq(bullc_queue_ping(q, &err), BULLC_EAUTH, "%s", err.message);
    cr_expect(strstr(err.message, "wants a password"), "%s", err.message);
    cr_expect(strstr(err.message, "REDIS_PASSWORD"), "%s", err.message);
    bullc_queue_free(q);
    cr_assert_eq(bullc_queue_new(&q, "m", NULL, NULL), 0); /* a fresh connection: its first call is the script */
    char *json = NULL;
    bullc_error err2 = {0};
    cr_assert_eq(bullc_queue_get_job_counts(q, NULL, 0, &json, &err2), BULLC_EAUTH, "%s", err2.message);
    cr_expect(strstr(err2.message, "wants a password"), "%s", err2.message);
    cr_expect(strstr(err2.message, "Redis said: "), "Redis's own words stay: %s", err2.message);
    cr_expect_null(json);
    bullc_queue_free(q);
    cr_assert_eq(setenv("REDIS_URL", saved, 1), 0);
    free(saved);
}

Test(messages, bullc_tells_that_a_password_is_needed) {
    /* every verb's first command is now the read of meta.version (the
     * BullMQ major), which gets NOAUTH; a script call of more than 10
     * arguments as the first command got Redis's bare "Protocol error:
     * unauthenticated multibulk length" instead (conn.c still maps both) */
    static const char *const verbs[] = {"counts q", "get q 1", "add q n", "jobs q"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        char cmd[512], *out = NULL;
        snprintf(cmd, sizeof cmd, "'%s' --redis redis://127.0.0.1:%d --prefix '%s' %s", tu_bin("bullc"), auth_port(),
                 tu_prefix(), verbs[i]);
        cr_expect_eq(run_both(cmd, &out), 3, "bullc %s: %s", verbs[i], out);
        cr_expect(strstr(out, "wants a password") && strstr(out, "REDIS_PASSWORD"), "bullc %s: %s", verbs[i], out);
        free(out);
    }
}

Test(messages, a_silent_server_is_a_timeout_that_says_how_long_and_what_changes_it) {
    int port, fd = silent_server(&port);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    /* the environment's timeout, which the message names (the queue reads
     * the environment when given no Redis settings) */
    char *saved = strdup(tu_redis_url());
    cr_assert_eq(setenv("REDIS_URL", url, 1), 0);
    cr_assert_eq(setenv("REDIS_COMMAND_TIMEOUT", "300", 1), 0);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "m", NULL, NULL), 0);
    cr_assert_eq(setenv("REDIS_URL", saved, 1), 0);
    free(saved);
    cr_assert_eq(unsetenv("REDIS_COMMAND_TIMEOUT"), 0);
    bullc_error err = {0};
    int64_t t0 = tu_now_ms();
    cr_assert_eq(bullc_queue_ping(q, &err), BULLC_ETIMEDOUT, "%s", err.message);
    cr_expect_geq(tu_now_ms() - t0, 250);
    cr_expect(strstr(err.message, "did not answer within 300 ms"), "%s", err.message);
    cr_expect(strstr(err.message, "REDIS_COMMAND_TIMEOUT"), "%s", err.message);
    cr_expect(strstr(err.message, "bullc_redis_opts_set_timeouts"), "%s", err.message);
    cr_expect_null(strstr(err.message, "Resource temporarily unavailable"), "%s", err.message);
    bullc_queue_free(q);

    /* the programs read the timeout from the environment */
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "REDIS_COMMAND_TIMEOUT=200 '%s' --redis %s counts q", tu_bin("bullc"), url);
    cr_expect_eq(run_both(cmd, &out), 3, "%s", out);
    cr_expect(strstr(out, "did not answer within 200 ms") && strstr(out, "REDIS_COMMAND_TIMEOUT"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "REDIS_COMMAND_TIMEOUT=soon '%s' --redis %s counts q", tu_bin("bullc"), url);
    cr_expect_eq(run_both(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "REDIS_COMMAND_TIMEOUT: not a number"), "%s", out);
    free(out);
    close(fd);
}

Test(messages, bullc_masks_the_password_without_its_length) {
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --redis redis://:a-long-wrong-password@127.0.0.1:%d counts q", tu_bin("bullc"),
             auth_port());
    cr_expect_eq(run_both(cmd, &out), 3, "%s", out);
    cr_expect(strstr(out, "redis://:***@127.0.0.1"), "%s", out);
    cr_expect_null(strstr(out, "a-long-wrong-password"), "%s", out);
    cr_expect_null(strstr(out, "****"), "%s", out);
    free(out);
}

Test(messages, socket_client_never_echoes_a_subscribe_message_or_a_header) {
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --url ws://127.0.0.1:1/ --provider P --subscribe '{\"token\":\"s3cr3t-tok\"'",
             tu_bin("bullc-socket-client"));
    cr_expect_eq(run_both(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--subscribe: not valid JSON"), "%s", out);
    cr_expect_null(strstr(out, "s3cr3t"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' --url ws://127.0.0.1:1/ --provider P --header 'Authorization Bearer s3cr3t-tok'",
             tu_bin("bullc-socket-client"));
    cr_expect_eq(run_both(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--header: expected"), "%s", out);
    cr_expect_null(strstr(out, "s3cr3t"), "%s", out);
    free(out);
}
