/* SPDX-License-Identifier: MIT */
/* The connection flags of every program (docs/connection.md): --tls-* and
 * --sentinel*, parsed and applied in one place so that bullc, bullc-worker
 * and bullc-socket-client take the same ones with the same rules. */
#ifndef BULLC_TOOLS_TLS_FLAGS_H
#define BULLC_TOOLS_TLS_FLAGS_H

#include <stdbool.h>

#include <bullc/bullc.h>

/* What the flags gave (borrowed strings, NULL when not given). */
#define CLI_MAX_SENTINEL_FLAGS 16
typedef struct cli_tls {
    const char *ca, *cert, *key, *server_name;
    bool insecure;
    /* --sentinel (repeatable, each HOST:PORT[,HOST:PORT...]) */
    const char *sentinels[CLI_MAX_SENTINEL_FLAGS];
    int nsentinels;
    const char *sentinel_master, *sentinel_password;
    /* --cluster (repeatable, each HOST:PORT[,HOST:PORT...]) */
    const char *clusters[CLI_MAX_SENTINEL_FLAGS];
    int nclusters;
    bool sentinel_tls;
} cli_tls;

/* One flag: its name without "--", its argument's name (NULL: none), its
 * help, and its key in bullc-worker's config file. */
typedef struct cli_tls_flag {
    const char *name, *arg, *help, *file_key;
} cli_tls_flag;
#define CLI_TLS_NFLAGS 10
extern const cli_tls_flag cli_tls_flags[CLI_TLS_NFLAGS];

/* Stores `value` when `name` (without "--") is a connection flag and returns
 * its index in cli_tls_flags; -1 when it is not one. A later value wins,
 * except --sentinel's and --cluster's, which add up (past 16 the rest are ignored and
 * cli_tls_apply refuses them). */
int cli_tls_set(cli_tls *t, const char *name, const char *value);
/* By config-file key; the same. */
int cli_tls_set_file_key(cli_tls *t, const char *key, const char *value);
/* Whether flag `i` was given (config-file values yield to flags). */
bool cli_tls_given(const cli_tls *t, int i);
/* Applies what was given over `o` (after the URL and the environment). 0, or
 * BULLC_EINVAL with `err` filled (--tls-cert without --tls-key, a malformed
 * --sentinel or --cluster, sentinels without a master's name or the reverse,
 * sentinels and cluster nodes together). */
int cli_tls_apply(const cli_tls *t, bullc_redis_opts *o, bullc_error *err);

#endif
