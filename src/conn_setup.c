/* SPDX-License-Identifier: MIT */
/* What every connection says first, and what Redis's error replies mean:
 * written once for the synchronous connection (conn.c) and the
 * asynchronous one (aconn.c), which only differ in how they send and read.
 * The order of the hand-shake is part of the wire: AUTH before anything
 * (a script call before it is refused as "unauthenticated"), ROLE through
 * Sentinel, SELECT, then CLIENT SETNAME. */
#include <stdio.h>
#include <string.h>

#include "bullc-private.h"

static void add(bullc__conn_setup *s, int kind, int argc, const char *a0, const char *a1, const char *a2) {
    bullc__setup_cmd *c = &s->cmd[s->n++];
    c->kind = kind;
    c->argc = argc;
    c->argv[0] = a0;
    c->argv[1] = a1;
    c->argv[2] = a2;
}

void bullc__conn_setup_build(bullc__conn_setup *s, const bullc_redis_opts *o, const char *client_name) {
    s->n = 0;
    if (o->password) add(s, BULLC__SETUP_AUTH, o->user ? 3 : 2, "AUTH", o->user ? o->user : o->password, o->password);
    /* a sentinel's answer may lag a failover: the node must say master, as
     * ioredis checks */
    if (o->nsentinels) add(s, BULLC__SETUP_ROLE, 1, "ROLE", NULL, NULL);
    if (o->db) {
        snprintf(s->db, sizeof s->db, "%d", o->db);
        add(s, BULLC__SETUP_SELECT, 2, "SELECT", s->db, NULL);
    }
    if (client_name) add(s, BULLC__SETUP_NAME, 3, "CLIENT", "SETNAME", client_name);
}

int bullc__conn_setup_check(int kind, const redisReply *r, const bullc_redis_opts *o, bullc_error *err) {
    if (kind == BULLC__SETUP_ROLE) return bullc__sentinel_role_is_master(r, o, err) ? 0 : BULLC_ECONN;
    /* managed Redis services may forbid CLIENT: naming is best effort */
    if (kind == BULLC__SETUP_NAME || r->type != REDIS_REPLY_ERROR) return 0;
    char where[256];
    bullc_redis_opts_describe(o, where, sizeof where);
    /* a PING answered LOADING (a restart reading its data back): not ready
     * yet, try again later */
    if (kind == BULLC__SETUP_READY)
        return bullc__err(err, BULLC_ECONN, "PING refused by %s: %.*s", where, (int)r->len, r->str);
    /* the command's name, never its arguments (AUTH's password) */
    return bullc__err(err, BULLC_EAUTH, "%s refused by %s: %.*s", kind == BULLC__SETUP_AUTH ? "AUTH" : "SELECT", where,
                      (int)r->len, r->str);
}

static bool starts(const redisReply *r, const char *word) { return !strncmp(r->str, word, strlen(word)); }

int bullc__reply_class(const redisReply *r, const bullc_redis_opts *o) {
    if (!r || r->type != REDIS_REPLY_ERROR) return BULLC__REPLY_FINE;
    if (!r->str) return BULLC__REPLY_ERROR;
    if (starts(r, "NOSCRIPT")) return BULLC__REPLY_NOSCRIPT;
    /* Redis asks for a password in two ways: NOAUTH, or, for a command of
     * more than 10 arguments sent before AUTH (a script call), a protocol
     * error about an "unauthenticated" request. */
    if (starts(r, "NOAUTH") || strstr(r->str, "unauthenticated")) return BULLC__REPLY_NOAUTH;
    if (starts(r, "WRONGPASS") || starts(r, "NOPERM")) return BULLC__REPLY_DENIED;
    if (starts(r, "READONLY")) return o && !o->nsentinels ? BULLC__REPLY_ERROR : BULLC__REPLY_READONLY;
    if (starts(r, "LOADING")) return BULLC__REPLY_LOADING;
    if (starts(r, "BUSY ")) return BULLC__REPLY_BUSY;
    if (!o || o->ncluster) {
        int kind = bullc__cluster_reply_kind(r);
        if (kind == BULLC__CLUSTER_MOVED) return BULLC__REPLY_MOVED;
        if (kind == BULLC__CLUSTER_RETRY) return BULLC__REPLY_RETRY;
    }
    return BULLC__REPLY_ERROR;
}

bool bullc__reply_is_noscript(const redisReply *r) { return bullc__reply_class(r, NULL) == BULLC__REPLY_NOSCRIPT; }

bool bullc__reply_is_readonly(const redisReply *r) { return bullc__reply_class(r, NULL) == BULLC__REPLY_READONLY; }

int bullc__reply_err(const redisReply *r, bullc_error *err) {
    const char *s = r->str ? r->str : "";
    switch (bullc__reply_class(r, NULL)) {
    case BULLC__REPLY_NOAUTH:
        return bullc__err(err, BULLC_EAUTH,
                          "Redis wants a password (and maybe a user): give them in the URL "
                          "(redis://[USER]:PASSWORD@HOST) or in REDIS_PASSWORD (and REDIS_USERNAME) (Redis said: %.*s)",
                          (int)r->len, s);
    case BULLC__REPLY_DENIED:
        return bullc__err(err, BULLC_EAUTH, "Redis error: %.*s", (int)r->len, s);
    default:
        return bullc__err(err, BULLC_EREDIS, "Redis error: %.*s", (int)r->len, s);
    }
}
