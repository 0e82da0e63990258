/* SPDX-License-Identifier: MIT */
/* The public "any command" connection: conn.c's synchronous connection
 * (TLS, Sentinel, Cluster) behind an opaque handle, and its replies behind
 * accessors, so the ABI does not carry hiredis's reply struct. A reply is
 * hiredis's own, handed out under another name: no copy. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bullc-private.h"

struct bullc_redis_conn {
    bullc__conn conn;
};

int bullc_redis_conn_new(bullc_redis_conn **out, const bullc_redis_opts *opts, bullc_error *err) {
    bullc_redis_conn *c = calloc(1, sizeof *c);
    if (!c) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__conn_init(&c->conn, opts, err);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void bullc_redis_conn_free(bullc_redis_conn *c) {
    if (!c) return;
    bullc__conn_close(&c->conn);
    free(c);
}

/* Where a cluster client sends a command: its first key, after the script
 * and the key count of a script call. -1: no key (any master). */
static int first_key(int argc, const char *const *argv, const size_t *lens) {
    static const char *const scripts[] = {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"};
    size_t n0 = lens ? lens[0] : strlen(argv[0]);
    for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++)
        if (n0 == strlen(scripts[i]) && !strncasecmp(argv[0], scripts[i], n0))
            /* a key count of 1 or more starts with a digit 1-9 */
            return argc > 3 && (lens ? lens[2] : strlen(argv[2])) && argv[2][0] >= '1' && argv[2][0] <= '9' ? 3 : -1;
    return argc > 1 ? 1 : -1;
}

/* On a cluster, a connection yet to be made goes to the master of the
 * command's slot; a live one is used as it is, and a MOVED moves it (the
 * pool's connections serve every slot in turn: connecting anew for each
 * would cost more than the odd redirection). */
static void route(bullc__conn *c, int argc, const char *const *argv, const size_t *lens) {
    if (!c->opts->ncluster || c->ctx) return;
    int k = first_key(argc, argv, lens);
    int slot = k < 0 ? -1 : bullc__cluster_key_slot(argv[k], lens ? lens[k] : strlen(argv[k]));
    if (slot != c->opts->cluster_slot) {
        c->opts->cluster_slot = slot;
        c->opts->cluster_redirected = false;
    }
}

int bullc_redis_conn_command(bullc_redis_conn *c, int argc, const char *const *argv, const size_t *lens,
                             bullc_redis_reply **reply, bullc_error *err) {
    if (argc < 1 || !argv || !argv[0]) return bullc__err(err, BULLC_EINVAL, "a command needs at least its name");
    route(&c->conn, argc, argv, lens);
    redisReply *r = NULL;
    int rc = bullc__conn_command(&c->conn, &r, err, argc, (const char **)argv, lens);
    if (rc) return rc;
    *reply = (bullc_redis_reply *)r;
    return 0;
}

void bullc_redis_reply_free(bullc_redis_reply *r) {
    if (r) freeReplyObject(r);
}

int bullc_redis_reply_type(const bullc_redis_reply *reply) {
    const redisReply *r = (const redisReply *)reply;
    switch (r->type) {
    case REDIS_REPLY_STRING:
        return BULLC_REPLY_STRING;
    case REDIS_REPLY_STATUS:
        return BULLC_REPLY_STATUS;
    case REDIS_REPLY_INTEGER:
        return BULLC_REPLY_INTEGER;
    case REDIS_REPLY_ARRAY:
        return BULLC_REPLY_ARRAY;
    case REDIS_REPLY_ERROR:
        return BULLC_REPLY_ERROR;
    default:
        return BULLC_REPLY_NIL;
    }
}

const char *bullc_redis_reply_str(const bullc_redis_reply *reply, size_t *len) {
    const redisReply *r = (const redisReply *)reply;
    bool text = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR;
    if (len) *len = text ? r->len : 0;
    return text ? r->str : NULL;
}

long long bullc_redis_reply_integer(const bullc_redis_reply *reply) {
    const redisReply *r = (const redisReply *)reply;
    return r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

size_t bullc_redis_reply_count(const bullc_redis_reply *reply) {
    const redisReply *r = (const redisReply *)reply;
    return r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

const bullc_redis_reply *bullc_redis_reply_element(const bullc_redis_reply *reply, size_t i) {
    const redisReply *r = (const redisReply *)reply;
    return r->type == REDIS_REPLY_ARRAY && i < r->elements ? (const bullc_redis_reply *)r->element[i] : NULL;
}
