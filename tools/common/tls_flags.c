/* SPDX-License-Identifier: MIT */
#include "tls_flags.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const cli_tls_flag cli_tls_flags[CLI_TLS_NFLAGS] = {
    {"tls-ca-cert", "PATH",
     "TLS: the CA certificate(s) that signed the server's (a PEM file, or a\n"
     "directory of hashed certificates; default: the system's; REDIS_TLS_CA)",
     "tlsCaCert"},
    {"tls-cert", "PEM", "TLS: a client certificate, for servers that require one (REDIS_TLS_CERT)", "tlsCert"},
    {"tls-key", "PEM", "TLS: the client certificate's key (REDIS_TLS_KEY)", "tlsKey"},
    {"tls-server-name", "NAME",
     "TLS: the name the server's certificate must carry, also sent as SNI\n"
     "(default: the host; REDIS_TLS_SERVER_NAME)",
     "tlsServerName"},
    {"tls-insecure", NULL,
     "TLS without checking the server's certificate (tests only;\n"
     "REDIS_TLS_INSECURE=1)",
     "tlsInsecure"},
    {"sentinel", "HOST:PORT",
     "Sentinel: ask this sentinel where the master is (repeatable, or\n"
     "HOST:PORT,HOST:PORT...; asked in order; with --sentinel-master)",
     "sentinels"},
    {"sentinel-master", "NAME", "Sentinel: the name of the master the sentinels monitor", "sentinelMaster"},
    {"sentinel-password", "PASSWORD",
     "Sentinel: the sentinels' password, apart from Redis's (prefer\n"
     "REDIS_SENTINEL_PASSWORD: a flag shows in ps)",
     "sentinelPassword"},
    {"cluster", "HOST:PORT",
     "Redis Cluster: a seed node to ask for the slot map (repeatable, or\n"
     "HOST:PORT,HOST:PORT...; the prefix or queue needs a hash tag)",
     "cluster"},
    {"sentinel-tls", NULL,
     "Sentinel: speak TLS to the sentinels too, with the TLS settings\n"
     "(ioredis's sentinelTLS; rediss+sentinel:// URLs turn it on; REDIS_SENTINEL_TLS=1)",
     "sentinelTLS"},
};

static int store(cli_tls *t, int i, const char *value) {
    switch (i) {
    case 0:
        t->ca = value;
        break;
    case 1:
        t->cert = value;
        break;
    case 2:
        t->key = value;
        break;
    case 3:
        t->server_name = value;
        break;
    case 4:
        t->insecure = !value || strcmp(value, "false") != 0;
        break;
    case 5:
        if (t->nsentinels <= CLI_MAX_SENTINEL_FLAGS) {
            if (t->nsentinels < CLI_MAX_SENTINEL_FLAGS) t->sentinels[t->nsentinels] = value;
            t->nsentinels++;
        }
        break;
    case 6:
        t->sentinel_master = value;
        break;
    case 7:
        t->sentinel_password = value;
        break;
    case 8:
        if (t->nclusters <= CLI_MAX_SENTINEL_FLAGS) {
            if (t->nclusters < CLI_MAX_SENTINEL_FLAGS) t->clusters[t->nclusters] = value;
            t->nclusters++;
        }
        break;
    default:
        t->sentinel_tls = !value || strcmp(value, "false") != 0;
        break;
    }
    return i;
}

bool cli_tls_given(const cli_tls *t, int i) {
    const char *const v[CLI_TLS_NFLAGS] = {
        t->ca, t->cert, t->key, t->server_name, NULL, NULL, t->sentinel_master, t->sentinel_password, NULL, NULL};
    return i == 4   ? t->insecure
           : i == 5 ? t->nsentinels > 0
           : i == 8 ? t->nclusters > 0
           : i == 9 ? t->sentinel_tls
                    : v[i] != NULL;
}

int cli_tls_set(cli_tls *t, const char *name, const char *value) {
    for (int i = 0; i < CLI_TLS_NFLAGS; i++)
        if (!strcmp(name, cli_tls_flags[i].name)) return store(t, i, value);
    return -1;
}

int cli_tls_set_file_key(cli_tls *t, const char *key, const char *value) {
    for (int i = 0; i < CLI_TLS_NFLAGS; i++)
        if (!strcmp(key, cli_tls_flags[i].file_key)) return store(t, i, value);
    return -1;
}

int cli_tls_apply(const cli_tls *t, bullc_redis_opts *o, bullc_error *err) {
    int rc = 0;
    if (!t->cert != !t->key) {
        snprintf(err->message, sizeof err->message,
                 "--tls-cert and --tls-key go together (a client certificate and its key)");
        return err->code = BULLC_EINVAL;
    }
    if (t->ca) {
        struct stat st;
        bool dir = stat(t->ca, &st) == 0 && S_ISDIR(st.st_mode);
        rc = bullc_redis_opts_set_tls_ca(o, dir ? NULL : t->ca, dir ? t->ca : NULL);
    }
    if (!rc && t->cert) rc = bullc_redis_opts_set_tls_cert(o, t->cert, t->key);
    if (!rc && t->server_name) rc = bullc_redis_opts_set_tls_server_name(o, t->server_name);
    if (!rc && t->insecure) rc = bullc_redis_opts_set_tls_insecure(o, true);
    if (rc) {
        snprintf(err->message, sizeof err->message, "TLS settings: %s", bullc_strerror(rc));
        err->code = rc;
        return rc;
    }
    if (t->nsentinels > CLI_MAX_SENTINEL_FLAGS) {
        snprintf(err->message, sizeof err->message,
                 "--sentinel: at most %d flags (give several as HOST:PORT,HOST:PORT)", CLI_MAX_SENTINEL_FLAGS);
        return err->code = BULLC_EINVAL;
    }
    for (int i = 0; i < t->nsentinels; i++)
        if ((rc = bullc_redis_opts_add_sentinels(o, t->sentinels[i], err))) {
            char m[sizeof err->message];
            snprintf(m, sizeof m, "--sentinel: %s", err->message);
            memcpy(err->message, m, sizeof m);
            return rc;
        }
    if (t->nclusters > CLI_MAX_SENTINEL_FLAGS) {
        snprintf(err->message, sizeof err->message, "--cluster: at most %d flags (give several as HOST:PORT,HOST:PORT)",
                 CLI_MAX_SENTINEL_FLAGS);
        return err->code = BULLC_EINVAL;
    }
    if (t->nclusters && t->nsentinels) {
        snprintf(err->message, sizeof err->message, "--cluster and --sentinel do not go together");
        return err->code = BULLC_EINVAL;
    }
    for (int i = 0; i < t->nclusters; i++)
        if ((rc = bullc_redis_opts_add_cluster_nodes(o, t->clusters[i], err))) {
            char m[sizeof err->message];
            snprintf(m, sizeof m, "--cluster: %s", err->message);
            memcpy(err->message, m, sizeof m);
            return rc;
        }
    if (!rc && t->sentinel_master) rc = bullc_redis_opts_set_sentinel_master(o, t->sentinel_master);
    if (!rc && t->sentinel_password) rc = bullc_redis_opts_set_sentinel_auth(o, NULL, t->sentinel_password);
    if (!rc && t->sentinel_tls) rc = bullc_redis_opts_set_sentinel_tls(o, true);
    if (rc) {
        snprintf(err->message, sizeof err->message, "Sentinel settings: %s", bullc_strerror(rc));
        return err->code = rc;
    }
    bool sentinels = bullc_redis_opts_sentinel_count(o) > 0, master = bullc_redis_opts_sentinel_master(o) != NULL;
    if (sentinels != master) {
        snprintf(err->message, sizeof err->message,
                 sentinels ? "sentinels given without the master's name (--sentinel-master NAME)"
                           : "--sentinel-master without a sentinel (--sentinel HOST:PORT, or a redis+sentinel:// URL)");
        return err->code = BULLC_EINVAL;
    }
    return 0;
}
