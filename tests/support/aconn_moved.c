/* SPDX-License-Identifier: MIT */
/* bullc-test-aconn-moved SEED_PORT FROM_PORT TO_PORT KEY: a slot's commands
 * across a MOVED hand-over, as a worker group's command connections make it
 * (src/aconn.c's on_moved hook, src/worker_group.c), for
 * compat-tests/test/cluster.test.js. KEY's slot has moved from the master on
 * FROM_PORT to the one on TO_PORT; a connection to each, the first handing
 * its MOVED over to the second. RPUSH KEY 1 goes to the first, then a WAIT
 * that holds the first's later replies for 300 ms, then RPUSH KEY 2..10;
 * RPUSH 1, handed over and answered long before them, sends RPUSH KEY 11
 * (newer) to the second at once. Prints the list as the second master holds
 * it; every RPUSH must have succeeded (exit 1 otherwise). Test-only: it
 * uses bullc's private connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bullc-private.h"

static bullc__aconn from, to, *current = &from;
static int answered, failed;
static const char *key;

static bullc__aconn *on_moved(bullc__aconn *c, int slot, const char *host, int port, void *data) {
    (void)c, (void)slot, (void)host, (void)port, (void)data;
    current = &to; /* the slot's later commands go there, as a group's lane does */
    return &to;
}

static void pushed(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c;
    answered++;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "RPUSH %s: %s\n", (const char *)data, r ? r->str : err->message);
        failed++;
    }
    if (!strcmp(data, "1")) {
        const char *argv[] = {"RPUSH", key, "11"};
        if (bullc__aconn_cmd(current, 0, pushed, "11", 3, argv, NULL)) failed++, answered++;
    }
}

static void waited(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c, (void)r, (void)err, (void)data;
}

static void listed(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    (void)c, (void)data;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "LRANGE: %s\n", r ? r->str : err->message);
        failed++;
    } else {
        for (size_t i = 0; i < r->elements; i++) printf("%s%s", i ? " " : "", r->element[i]->str);
        printf("\n");
    }
    answered++;
}

/* Runs the loop until `n` answers came, or 10 s went by. */
static bool run_until(uv_loop_t *loop, int n) {
    int64_t until = bullc__now_ms() + 10000;
    while (answered < n && bullc__now_ms() < until) uv_run(loop, UV_RUN_NOWAIT), usleep(1000);
    return answered >= n;
}

static int conn_to(bullc__aconn *c, uv_loop_t *loop, const bullc_redis_opts *o, int port) {
    if (bullc__aconn_init(c, loop, o, NULL, NULL)) return -1;
    c->opts->port = port;
    c->opts->cluster_redirected = true; /* straight there, as a group's node_new */
    bullc__aconn_start(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: bullc-test-aconn-moved SEED_PORT FROM_PORT TO_PORT KEY\n");
        return 2;
    }
    key = argv[4];
    char url[64];
    snprintf(url, sizeof url, "redis+cluster://127.0.0.1:%s", argv[1]);
    bullc_redis_opts *o;
    bullc_error err = {0};
    if (bullc_redis_opts_new(&o) || bullc_redis_opts_parse_url(o, url, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (conn_to(&from, &loop, o, atoi(argv[2])) || conn_to(&to, &loop, o, atoi(argv[3]))) return 1;
    from.on_moved = on_moved;
    int64_t until = bullc__now_ms() + 10000;
    while (!(bullc__aconn_ready(&from) && bullc__aconn_ready(&to)) && bullc__now_ms() < until)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
    static const char *nums[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"};
    int sent = 0;
    for (int i = 0; i < 10; i++) {
        const char *push[] = {"RPUSH", key, nums[i]};
        sent += !bullc__aconn_cmd(&from, 0, pushed, (void *)nums[i], 3, push, NULL);
        if (i == 0) {
            /* more replicas than there are: the full 300 ms */
            const char *wait[] = {"WAIT", "100", "300"};
            bullc__aconn_cmd(&from, 0, waited, NULL, 3, wait, NULL);
        }
    }
    bool ok = sent == 10 && run_until(&loop, 11);
    const char *range[] = {"LRANGE", key, "0", "-1"};
    ok = ok && !bullc__aconn_cmd(&to, 0, listed, NULL, 4, range, NULL) && run_until(&loop, 12);
    bullc__aconn_close(&from);
    bullc__aconn_close(&to);
    while (uv_run(&loop, UV_RUN_ONCE)) {
    }
    uv_loop_close(&loop);
    bullc_redis_opts_free(o);
    if (!ok || failed) fprintf(stderr, "%d sent, %d answered, %d failed\n", sent, answered, failed);
    return ok && !failed ? 0 : 1;
}
