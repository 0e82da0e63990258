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
    bullc__cmd_table *cmds; /* on a cluster: where each command's keys are */
    /* Inside MULTI on the connection of this generation: a lookup would be
     * queued into the transaction, so queued commands are not routed. */
    bool multi;
    unsigned multi_gen;
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
    bullc__cmd_table_free(c->cmds);
    free(c);
}

static void aim(bullc_redis_opts *o, int slot) {
    if (slot == o->cluster_slot) return;
    o->cluster_slot = slot;
    o->cluster_redirected = false;
}

/* On a cluster, a command goes where its keys are, as the server's command
 * table says (command_keys.c); a keyless one wherever the connection is. A
 * connection yet to be made goes to the master of the keys' slot; a live
 * one is used as it is, and a MOVED moves it (the pool's connections serve
 * every slot in turn: connecting anew for each would cost more than the odd
 * redirection). Keys of several slots: BULLC_EINVAL, nothing sent. */
static int route(bullc_redis_conn *rc, int argc, const char *const *argv, const size_t *lens, bullc_error *err) {
    bullc__conn *c = &rc->conn;
    bullc_redis_opts *o = c->opts;
    if (!o->ncluster || (rc->multi && c->ctx && c->generation == rc->multi_gen)) return 0;
    bool fresh = !c->ctx;
    int was = o->cluster_slot, slot;
    /* A new command name is asked of the server, which connects: aimed at
     * argv[1]'s slot, right for most commands, the answer rarely means
     * connecting again. */
    if (fresh && argc > 1) aim(o, bullc__cluster_key_slot(argv[1], lens ? lens[1] : strlen(argv[1])));
    int r = bullc__command_slot(&rc->cmds, c, argc, argv, lens, &slot, err);
    if (r || !fresh) return r;
    if (slot < 0 && !c->ctx) aim(o, was);
    if (slot >= 0 && slot != o->cluster_slot) {
        bullc__conn_drop(c); /* made only to ask, at the wrong master */
        aim(o, slot);
    }
    return 0;
}

int bullc_redis_conn_command(bullc_redis_conn *c, int argc, const char *const *argv, const size_t *lens,
                             bullc_redis_reply **reply, bullc_error *err) {
    if (argc < 1 || !argv || !argv[0]) return bullc__err(err, BULLC_EINVAL, "a command needs at least its name");
    int rc = route(c, argc, argv, lens, err);
    if (rc) return rc;
    redisReply *r = NULL;
    c->conn.in_multi = c->multi && c->conn.ctx && c->conn.generation == c->multi_gen;
    rc = bullc__conn_command(&c->conn, &r, err, argc, (const char **)argv, lens);
    c->conn.in_multi = false;
    size_t n0 = lens ? lens[0] : strlen(argv[0]);
    if (n0 == 5 && !strncasecmp(argv[0], "MULTI", 5)) {
        c->multi = !rc;
        c->multi_gen = c->conn.generation;
    } else if ((n0 == 4 && !strncasecmp(argv[0], "EXEC", 4)) || (n0 == 7 && !strncasecmp(argv[0], "DISCARD", 7))) {
        c->multi = false;
    }
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
