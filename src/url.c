/* SPDX-License-Identifier: MIT */
/* Redis connection settings: URL, environment, masking for logs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bullc-private.h"

/* Forgets the sentinel list (not the master name nor the sentinels'
 * password): a URL or a host naming one server replaces it. */
static void bullc__sentinels_clear(bullc_redis_opts *o) {
    for (size_t i = 0; i < o->nsentinels; i++) free(o->sentinels[i].host);
    free(o->sentinels);
    o->sentinels = NULL;
    o->nsentinels = 0;
}

/* Forgets the cluster's seed nodes, likewise. */
static void bullc__cluster_clear(bullc_redis_opts *o) {
    for (size_t i = 0; i < o->ncluster; i++) free(o->cluster_nodes[i].host);
    free(o->cluster_nodes);
    o->cluster_nodes = NULL;
    o->ncluster = 0;
    o->cluster_redirected = false;
}

/* A copy of an address list; false when out of memory (then *dst holds the
 * `*n` copied so far). */
static bool addrs_copy(struct bullc__sentinel_addr **dst, size_t *n, const struct bullc__sentinel_addr *src,
                       size_t count) {
    *dst = NULL;
    *n = 0;
    if (count && !(*dst = calloc(count, sizeof **dst))) return false;
    for (size_t i = 0; i < count; i++, (*n)++) {
        (*dst)[i].port = src[i].port;
        if (!((*dst)[i].host = strdup(src[i].host))) return false;
    }
    return true;
}

/* An empty string given for a name or a path means none. */
static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

int bullc_redis_opts_new(bullc_redis_opts **out) {
    bullc_redis_opts *o = calloc(1, sizeof *o);
    if (!o || !(o->host = strdup("127.0.0.1"))) {
        free(o);
        return BULLC_ENOMEM;
    }
    o->port = 6379;
    o->cluster_slot = -1;
    o->connect_timeout_ms = 5000;
    o->command_timeout_ms = 10000;
    *out = o;
    return 0;
}

void bullc__redis_opts_clear(bullc_redis_opts *o) {
    free(o->host);
    free(o->unix_path);
    free(o->user);
    bullc__wipe_free(o->password);
    free(o->tls_ca_file);
    free(o->tls_ca_dir);
    free(o->tls_cert);
    free(o->tls_key);
    free(o->tls_server_name);
    bullc__sentinels_clear(o);
    bullc__cluster_clear(o);
    free(o->sentinel_master);
    free(o->sentinel_user);
    bullc__wipe_free(o->sentinel_password);
    memset(o, 0, sizeof *o);
}

void bullc_redis_opts_free(bullc_redis_opts *o) {
    if (!o) return;
    bullc__redis_opts_clear(o);
    free(o);
}

static int dup_or_null(char **dst, const char *src) {
    char *d = NULL;
    if (src && !(d = strdup(src))) return BULLC_ENOMEM;
    *dst = d;
    return 0;
}

int bullc__redis_opts_copy(bullc_redis_opts *dst, const bullc_redis_opts *src) {
    bullc_redis_opts t = *src;
    t.host = t.unix_path = t.user = t.password = NULL;
    t.tls_ca_file = t.tls_ca_dir = t.tls_cert = t.tls_key = t.tls_server_name = NULL;
    t.sentinels = NULL;
    t.nsentinels = 0;
    t.sentinel_master = t.sentinel_user = t.sentinel_password = NULL;
    t.cluster_nodes = NULL;
    t.ncluster = 0;
    if (!addrs_copy(&t.sentinels, &t.nsentinels, src->sentinels, src->nsentinels) ||
        !addrs_copy(&t.cluster_nodes, &t.ncluster, src->cluster_nodes, src->ncluster) ||
        dup_or_null(&t.sentinel_master, src->sentinel_master) || dup_or_null(&t.sentinel_user, src->sentinel_user) ||
        dup_or_null(&t.sentinel_password, src->sentinel_password) || dup_or_null(&t.host, src->host) ||
        dup_or_null(&t.unix_path, src->unix_path) || dup_or_null(&t.user, src->user) ||
        dup_or_null(&t.password, src->password) || dup_or_null(&t.tls_ca_file, src->tls_ca_file) ||
        dup_or_null(&t.tls_ca_dir, src->tls_ca_dir) || dup_or_null(&t.tls_cert, src->tls_cert) ||
        dup_or_null(&t.tls_key, src->tls_key) || dup_or_null(&t.tls_server_name, src->tls_server_name)) {
        bullc__redis_opts_clear(&t);
        return BULLC_ENOMEM;
    }
    *dst = t;
    return 0;
}

int bullc_redis_opts_set_host(bullc_redis_opts *o, const char *host, int port) {
    if (!host || !*host || port <= 0 || port > 65535) return BULLC_EINVAL;
    char *h = strdup(host);
    if (!h) return BULLC_ENOMEM;
    free(o->host);
    free(o->unix_path);
    o->unix_path = NULL;
    o->host = h;
    o->port = port;
    bullc__sentinels_clear(o);
    bullc__cluster_clear(o);
    return 0;
}

int bullc_redis_opts_set_unix(bullc_redis_opts *o, const char *path) {
    if (!path || !*path) return BULLC_EINVAL;
    char *p = strdup(path);
    if (!p) return BULLC_ENOMEM;
    free(o->unix_path);
    o->unix_path = p;
    bullc__sentinels_clear(o);
    bullc__cluster_clear(o);
    return 0;
}

int bullc_redis_opts_set_auth(bullc_redis_opts *o, const char *user, const char *password) {
    return bullc__str_set2(&o->user, nonempty(user), &o->password, password, true);
}

int bullc_redis_opts_set_db(bullc_redis_opts *o, int db) {
    if (db < 0) return BULLC_EINVAL;
    o->db = db;
    return 0;
}

int bullc_redis_opts_set_timeouts(bullc_redis_opts *o, int connect_ms, int command_ms) {
    if (connect_ms <= 0 || command_ms <= 0) return BULLC_EINVAL;
    o->connect_timeout_ms = connect_ms;
    o->command_timeout_ms = command_ms;
    return 0;
}

int bullc_redis_opts_set_busy_poll(bullc_redis_opts *o, int us) {
    if (us < 0 || us > 100000) return BULLC_EINVAL;
    o->busy_poll_us = us;
    return 0;
}

int bullc_redis_opts_set_tls(bullc_redis_opts *o, bool on) {
    o->tls = on;
    return 0;
}

int bullc_redis_opts_set_tls_ca(bullc_redis_opts *o, const char *ca_file, const char *ca_dir) {
    if (bullc__str_set2(&o->tls_ca_file, nonempty(ca_file), &o->tls_ca_dir, nonempty(ca_dir), false))
        return BULLC_ENOMEM;
    o->tls = true;
    return 0;
}

int bullc_redis_opts_set_tls_cert(bullc_redis_opts *o, const char *cert_file, const char *key_file) {
    if (!cert_file != !key_file || (cert_file && (!*cert_file || !*key_file))) return BULLC_EINVAL;
    if (bullc__str_set2(&o->tls_cert, cert_file, &o->tls_key, key_file, false)) return BULLC_ENOMEM;
    o->tls = true;
    return 0;
}

int bullc_redis_opts_set_tls_server_name(bullc_redis_opts *o, const char *name) {
    if (bullc__str_set(&o->tls_server_name, nonempty(name))) return BULLC_ENOMEM;
    o->tls = true;
    return 0;
}

int bullc_redis_opts_set_tls_insecure(bullc_redis_opts *o, bool insecure) {
    o->tls_insecure = insecure;
    if (insecure) o->tls = true;
    return 0;
}

bool bullc_redis_opts_tls(const bullc_redis_opts *o) { return o->tls; }

const char *bullc_redis_opts_host(const bullc_redis_opts *o) { return o->host; }
int bullc_redis_opts_port(const bullc_redis_opts *o) { return o->port; }
const char *bullc_redis_opts_unix(const bullc_redis_opts *o) { return o->unix_path; }
const char *bullc_redis_opts_user(const bullc_redis_opts *o) { return o->user; }
const char *bullc_redis_opts_password(const bullc_redis_opts *o) { return o->password; }
int bullc_redis_opts_db(const bullc_redis_opts *o) { return o->db; }
int bullc_redis_opts_connect_timeout(const bullc_redis_opts *o) { return o->connect_timeout_ms; }
int bullc_redis_opts_command_timeout(const bullc_redis_opts *o) { return o->command_timeout_ms; }
int bullc_redis_opts_busy_poll(const bullc_redis_opts *o) { return o->busy_poll_us; }

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len) into a new string; NULL on a bad escape. */
static char *pct_decode(const char *s, size_t len) {
    char *out = malloc(len + 1), *w = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len) goto bad;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) goto bad;
            *w++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *w++ = s[i];
        }
    }
    *w = 0;
    return out;
bad:
    free(out);
    return NULL;
}

static bool parse_int_range(const char *s, size_t len, int lo, int hi, int *out) {
    int64_t v;
    if (!bullc__parse_i64(s, len, &v) || s[0] == '+' || s[0] == '-' || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* Applies the query string (db=, password=) of a URL. */
static int apply_query(bullc_redis_opts *t, const char *q, bullc_error *err) {
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        if (!eq) return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: query parameter without '='");
        size_t kn = (size_t)(eq - q), vn = n - kn - 1;
        if (kn == 2 && !memcmp(q, "db", 2)) {
            if (!parse_int_range(eq + 1, vn, 0, 1 << 30, &t->db))
                return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad database number");
        } else if (kn == 8 && !memcmp(q, "password", 8)) {
            char *p = pct_decode(eq + 1, vn);
            if (!p) return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad escape in password");
            bullc__wipe_free(t->password);
            t->password = p;
        } else {
            return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: unknown parameter '%.*s'", (int)kn, q);
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

int bullc_redis_opts_add_sentinel(bullc_redis_opts *o, const char *host, int port) {
    if (!host || !*host || port <= 0 || port > 65535) return BULLC_EINVAL;
    for (size_t i = 0; i < o->nsentinels; i++) /* a URL and flags may name the same one */
        if (o->sentinels[i].port == port && !strcmp(o->sentinels[i].host, host)) return 0;
    struct bullc__sentinel_addr *n = realloc(o->sentinels, (o->nsentinels + 1) * sizeof *n);
    if (!n) return BULLC_ENOMEM;
    o->sentinels = n;
    if (!(n[o->nsentinels].host = strdup(host))) return BULLC_ENOMEM;
    n[o->nsentinels++].port = port;
    free(o->unix_path);
    o->unix_path = NULL;
    return 0;
}

int bullc_redis_opts_set_sentinel_master(bullc_redis_opts *o, const char *name) {
    return bullc__str_set(&o->sentinel_master, nonempty(name));
}

int bullc_redis_opts_set_sentinel_auth(bullc_redis_opts *o, const char *user, const char *password) {
    return bullc__str_set2(&o->sentinel_user, nonempty(user), &o->sentinel_password, nonempty(password), true);
}

int bullc_redis_opts_set_sentinel_tls(bullc_redis_opts *o, bool on) {
    o->sentinel_tls = on;
    return 0;
}
bool bullc_redis_opts_sentinel_tls(const bullc_redis_opts *o) { return o->sentinel_tls; }

size_t bullc_redis_opts_sentinel_count(const bullc_redis_opts *o) { return o->nsentinels; }
const char *bullc_redis_opts_sentinel_master(const bullc_redis_opts *o) { return o->sentinel_master; }

/* Splits "host:port[,host:port...]" (IPv6 as [addr]:port) into sentinels,
 * or cluster seed nodes when `what` says so, appended to `o`. */
static int parse_addr_list(bullc_redis_opts *o, char *list, const char *what, bullc_error *err) {
    bool cluster = !strcmp(what, "cluster node");
    for (char *item = list, *next; item; item = next) {
        next = strchr(item, ',');
        if (next) *next++ = 0;
        char *host = item, *colon;
        if (*host == '[') {
            char *end = strchr(host, ']');
            if (!end || end[1] != ':')
                return bullc__err(err, BULLC_EINVAL, "invalid %s '%s': expected [IPv6]:PORT", what, item);
            *end = 0;
            host++;
            colon = end + 1;
        } else if (!(colon = strrchr(host, ':')))
            return bullc__err(err, BULLC_EINVAL, "invalid %s '%s': expected HOST:PORT", what, item);
        *colon = 0;
        int port;
        if (!*host || !parse_int_range(colon + 1, strlen(colon + 1), 1, 65535, &port))
            return bullc__err(err, BULLC_EINVAL, "invalid %s '%s:%s': expected HOST:PORT", what, host, colon + 1);
        if (cluster ? bullc_redis_opts_add_cluster_node(o, host, port) : bullc_redis_opts_add_sentinel(o, host, port))
            return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return 0;
}
#define parse_sentinel_list(o, list, err) parse_addr_list(o, list, "sentinel", err)

/* Appends the list to a copy of `o`, which replaces `o` only when all of it
 * parsed. */
static int add_addr_list(bullc_redis_opts *o, const char *list, const char *what, bullc_error *err) {
    if (!list || !*list) return bullc__err(err, BULLC_EINVAL, "invalid %s list: empty", what);
    bullc_redis_opts t;
    if (bullc__redis_opts_copy(&t, o)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    char *copy = strdup(list);
    int rc = copy ? parse_addr_list(&t, copy, what, err) : bullc__err(err, BULLC_ENOMEM, "out of memory");
    free(copy);
    if (!rc) {
        bullc__redis_opts_clear(o);
        *o = t;
    } else
        bullc__redis_opts_clear(&t);
    return rc;
}

int bullc_redis_opts_add_cluster_node(bullc_redis_opts *o, const char *host, int port) {
    if (!host || !*host || port <= 0 || port > 65535) return BULLC_EINVAL;
    bullc__sentinels_clear(o);
    free(o->unix_path);
    o->unix_path = NULL;
    for (size_t i = 0; i < o->ncluster; i++) /* a URL and flags may name the same one */
        if (o->cluster_nodes[i].port == port && !strcmp(o->cluster_nodes[i].host, host)) return 0;
    struct bullc__sentinel_addr *n = realloc(o->cluster_nodes, (o->ncluster + 1) * sizeof *n);
    if (!n) return BULLC_ENOMEM;
    o->cluster_nodes = n;
    if (!(n[o->ncluster].host = strdup(host))) return BULLC_ENOMEM;
    n[o->ncluster++].port = port;
    return 0;
}

int bullc_redis_opts_add_cluster_nodes(bullc_redis_opts *o, const char *list, bullc_error *err) {
    return add_addr_list(o, list, "cluster node", err);
}

size_t bullc_redis_opts_cluster_count(const bullc_redis_opts *o) { return o->ncluster; }

int bullc_redis_opts_add_sentinels(bullc_redis_opts *o, const char *list, bullc_error *err) {
    return add_addr_list(o, list, "sentinel", err);
}

/* "[user:]password@hosts": takes the user and password into `t` and points
 * *hosts past them; -1 on a bad escape. */
static int take_userinfo(bullc_redis_opts *t, char *rest, char **hosts) {
    char *at = strrchr(rest, '@');
    *hosts = rest;
    if (!at) return 0;
    *at = 0;
    *hosts = at + 1;
    char *colon = strchr(rest, ':');
    char *u = colon ? pct_decode(rest, (size_t)(colon - rest)) : NULL;
    char *p = pct_decode(colon ? colon + 1 : rest, strlen(colon ? colon + 1 : rest));
    if ((colon && !u) || !p) {
        free(u);
        bullc__wipe_free(p);
        return -1;
    }
    free(t->user);
    bullc__wipe_free(t->password);
    t->user = (u && *u) ? u : (free(u), NULL);
    t->password = p;
    return 0;
}

/* redis+sentinel://[user:pass@]host:port[,host:port...]/MASTER[/db]: the
 * user and password are the master's (the sentinels' are set apart). */
static int parse_sentinel_url(bullc_redis_opts *t, char *rest, bullc_error *err) {
    char *slash = strchr(rest, '/');
    if (!slash || !slash[1] || slash[1] == '/')
        return bullc__err(err, BULLC_EINVAL,
                          "invalid Redis URL: redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] needs the "
                          "master's name");
    *slash = 0;
    char *master = slash + 1, *dbs = strchr(master, '/');
    if (dbs) *dbs++ = 0;
    char *hosts;
    if (take_userinfo(t, rest, &hosts))
        return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad escape in user or password");
    if (dbs && *dbs && !parse_int_range(dbs, strlen(dbs), 0, 1 << 30, &t->db))
        return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad database number '%s'", dbs);
    char *name = pct_decode(master, strlen(master));
    if (!name) return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad escape in the master's name");
    free(t->sentinel_master);
    t->sentinel_master = name;
    if (!*hosts) return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: redis+sentinel:// names no sentinel");
    bullc__sentinels_clear(t);
    bullc__cluster_clear(t);
    int rc = parse_sentinel_list(t, hosts, err);
    if (rc) bullc__err_prefix(err, "invalid Redis URL: ");
    return rc;
}

/* redis+cluster://[user:pass@]host:port[,host:port...][/]: seed nodes (the
 * user and password are every node's; a cluster has database 0 only). */
static int parse_cluster_url(bullc_redis_opts *t, char *rest, bullc_error *err) {
    char *slash = strchr(rest, '/');
    if (slash) {
        if (slash[1] && strcmp(slash + 1, "0"))
            return bullc__err(err, BULLC_EINVAL,
                              "invalid Redis URL: redis+cluster:// takes no database (a cluster has only 0)");
        *slash = 0;
    }
    char *hosts;
    if (take_userinfo(t, rest, &hosts))
        return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad escape in user or password");
    if (!*hosts) return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: redis+cluster:// names no node");
    bullc__cluster_clear(t);
    t->db = 0;
    int rc = parse_addr_list(t, hosts, "cluster node", err);
    if (rc) bullc__err_prefix(err, "invalid Redis URL: ");
    return rc;
}

int bullc__tls_set_ca_path(bullc_redis_opts *o, const char *path) {
    struct stat st;
    bool dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    return bullc_redis_opts_set_tls_ca(o, dir ? NULL : path, dir ? path : NULL);
}

int bullc_redis_opts_parse_url(bullc_redis_opts *o, const char *url, bullc_error *err) {
    if (!url || !*url) return bullc__err(err, BULLC_EINVAL, "invalid Redis URL: empty");
    bullc_redis_opts t;
    if (bullc__redis_opts_copy(&t, o)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = BULLC_EINVAL;
    char *copy = strdup(url);
    if (!copy) {
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        goto out;
    }
    char *q = strchr(copy, '?');
    if (q) *q++ = 0;

    if (!strncmp(copy, "unix://", 7)) {
        const char *path = copy + 7;
        if (*path != '/') {
            bullc__err(err, BULLC_EINVAL, "invalid Redis URL: unix:// needs an absolute path");
            goto out;
        }
        free(t.unix_path);
        if (!(t.unix_path = strdup(path))) goto oom;
        t.tls = false;
        bullc__sentinels_clear(&t);
        bullc__cluster_clear(&t);
    } else if (!strncmp(copy, "redis+sentinel://", 17) || !strncmp(copy, "rediss+sentinel://", 18)) {
        /* rediss+sentinel://: TLS to the sentinels and to the master; a
         * later redis+sentinel:// does not turn either off (no silent
         * fallback to plain TCP) */
        bool tls = copy[5] == 's';
        if (tls) t.tls = t.sentinel_tls = true;
        if ((rc = parse_sentinel_url(&t, copy + (tls ? 18 : 17), err)) != 0) goto out;
        rc = BULLC_EINVAL;
    } else if (!strncmp(copy, "redis+cluster://", 16) || !strncmp(copy, "rediss+cluster://", 17)) {
        /* rediss+cluster://: TLS to the seeds and to every master; like
         * redis://, a later plain URL does not turn it off */
        bool tls = copy[5] == 's';
        if (tls) t.tls = true;
        if ((rc = parse_cluster_url(&t, copy + (tls ? 17 : 16), err)) != 0) goto out;
        rc = BULLC_EINVAL;
    } else if (!strncmp(copy, "redis://", 8) || !strncmp(copy, "rediss://", 9)) {
        bool tls = copy[5] == 's';
        char *rest = copy + (tls ? 9 : 8);
        /* redis:// never turns TLS off once a TLS setting asked for it: no
         * silent fallback to plain TCP */
        if (tls) t.tls = true;
        bullc__sentinels_clear(&t);
        bullc__cluster_clear(&t);
        char *slash = strchr(rest, '/');
        if (slash) *slash = 0;
        char *at = strrchr(rest, '@');
        char *hostport = rest;
        if (at) {
            *at = 0;
            hostport = at + 1;
            char *colon = strchr(rest, ':');
            char *u = NULL, *p = NULL;
            if (colon) {
                u = pct_decode(rest, (size_t)(colon - rest));
                p = pct_decode(colon + 1, strlen(colon + 1));
                if (!u || !p) {
                    free(u);
                    bullc__wipe_free(p);
                    bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad escape in user or password");
                    goto out;
                }
            } else {
                /* redis://password@host is how many tools write a password alone */
                if (!(p = pct_decode(rest, strlen(rest)))) {
                    bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad escape in password");
                    goto out;
                }
            }
            free(t.user);
            bullc__wipe_free(t.password);
            t.user = (u && *u) ? u : (free(u), NULL);
            t.password = p;
        }
        char *host = hostport, *portstr = NULL;
        if (*host == '[') { /* [ipv6]:port */
            char *end = strchr(host, ']');
            if (!end) {
                bullc__err(err, BULLC_EINVAL, "invalid Redis URL: unterminated IPv6 address");
                goto out;
            }
            *end = 0;
            host++;
            if (end[1] == ':')
                portstr = end + 2;
            else if (end[1]) {
                bullc__err(err, BULLC_EINVAL, "invalid Redis URL: junk after IPv6 address");
                goto out;
            }
        } else {
            char *colon = strchr(host, ':');
            if (colon) {
                *colon = 0;
                portstr = colon + 1;
            }
        }
        if (*host) {
            free(t.host);
            if (!(t.host = strdup(host))) goto oom;
        }
        free(t.unix_path);
        t.unix_path = NULL;
        if (portstr && !parse_int_range(portstr, strlen(portstr), 1, 65535, &t.port)) {
            bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad port '%s'", portstr);
            goto out;
        }
        if (slash && slash[1] && !parse_int_range(slash + 1, strlen(slash + 1), 0, 1 << 30, &t.db)) {
            bullc__err(err, BULLC_EINVAL, "invalid Redis URL: bad database number '%s'", slash + 1);
            goto out;
        }
    } else {
        bullc__err(err, BULLC_EINVAL,
                   "invalid Redis URL: expected redis://host[:port][/db], rediss://host[:port][/db], unix:///path, "
                   "redis+sentinel://host:port[,host:port...]/master[/db] or "
                   "redis[s]+cluster://host:port[,host:port...]");
        goto out;
    }
    if ((rc = apply_query(&t, q, err)) != 0) goto out;
    bullc__redis_opts_clear(o);
    *o = t;
    memset(&t, 0, sizeof t);
    rc = 0;
    goto out;
oom:
    rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
out:
    if (copy) {
        memset(copy, 0, strlen(url)); /* it held the password */
        free(copy);
    }
    bullc__redis_opts_clear(&t);
    return rc;
}

/* REDIS_CONNECT_TIMEOUT / REDIS_COMMAND_TIMEOUT (ms), whatever names the
 * server: the timeout messages point at them. Both are checked before
 * either is applied, so an error leaves `o` unchanged. */
static int env_timeouts(bullc_redis_opts *o, bullc_error *err) {
    static const char *const names[2] = {"REDIS_CONNECT_TIMEOUT", "REDIS_COMMAND_TIMEOUT"};
    int ms[2] = {o->connect_timeout_ms, o->command_timeout_ms};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        if (v && *v && !parse_int_range(v, strlen(v), 1, 1 << 30, &ms[i]))
            return bullc__err(err, BULLC_EINVAL, "%s: not a number of milliseconds > 0: '%s'", names[i], v);
    }
    o->connect_timeout_ms = ms[0];
    o->command_timeout_ms = ms[1];
    return 0;
}

/* REDIS_TLS_CA (a file or a directory of hashed certificates),
 * REDIS_TLS_CERT + REDIS_TLS_KEY, REDIS_TLS_SERVER_NAME, REDIS_TLS_INSECURE=1:
 * each turns TLS on. Checked whole before anything is applied. */
static int env_tls(bullc_redis_opts *o, bullc_error *err) {
    const char *ca = getenv("REDIS_TLS_CA"), *cert = getenv("REDIS_TLS_CERT"), *key = getenv("REDIS_TLS_KEY"),
               *sn = getenv("REDIS_TLS_SERVER_NAME"), *insecure = getenv("REDIS_TLS_INSECURE");
    bool has_cert = cert && *cert, has_key = key && *key;
    if (has_cert != has_key)
        return bullc__err(err, BULLC_EINVAL,
                          "REDIS_TLS_CERT and REDIS_TLS_KEY go together (a client certificate "
                          "and its key)");
    if (insecure && *insecure && strcmp(insecure, "0") && strcmp(insecure, "1"))
        return bullc__err(err, BULLC_EINVAL, "REDIS_TLS_INSECURE: 0 or 1, not '%s'", insecure);
    int rc = 0;
    if (ca && *ca) rc = bullc__tls_set_ca_path(o, ca);
    if (!rc && has_cert) rc = bullc_redis_opts_set_tls_cert(o, cert, key);
    if (!rc && sn && *sn) rc = bullc_redis_opts_set_tls_server_name(o, sn);
    if (!rc && insecure && !strcmp(insecure, "1")) rc = bullc_redis_opts_set_tls_insecure(o, true);
    return rc ? bullc__err(err, rc, "out of memory") : 0;
}

/* REDIS_SENTINEL_PASSWORD: the sentinels' password, apart from Redis's
 * (a URL carries only the master's). */
static int env_sentinel(bullc_redis_opts *o, bullc_error *err) {
    const char *tls = getenv("REDIS_SENTINEL_TLS");
    if (tls && *tls && strcmp(tls, "0") && strcmp(tls, "1"))
        return bullc__err(err, BULLC_EINVAL, "REDIS_SENTINEL_TLS: 0 or 1, not '%s'", tls);
    if (tls && !strcmp(tls, "1")) o->sentinel_tls = true;
    const char *pw = getenv("REDIS_SENTINEL_PASSWORD");
    if (!pw || !*pw) return 0;
    return bullc_redis_opts_set_sentinel_auth(o, o->sentinel_user, pw) ? bullc__err(err, BULLC_ENOMEM, "out of memory")
                                                                       : 0;
}

int bullc_redis_opts_from_env(bullc_redis_opts *o, bullc_error *err) {
    int trc = env_timeouts(o, err);
    if (!trc) trc = env_sentinel(o, err);
    if (trc) return trc;
    const char *url = getenv("REDIS_URL");
    if (url && *url) {
        int rc = bullc_redis_opts_parse_url(o, url, err);
        if (rc) bullc__err_prefix(err, "REDIS_URL: ");
        if (!rc) rc = env_tls(o, err);
        return rc ? rc : 1;
    }
    const char *host = getenv("REDIS_HOST"), *port = getenv("REDIS_PORT"), *pw = getenv("REDIS_PASSWORD"),
               *user = getenv("REDIS_USERNAME"), *db = getenv("REDIS_DB");
    bool any = false;
    bullc_redis_opts t;
    if (bullc__redis_opts_copy(&t, o)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = 0;
    if (host && *host) {
        any = true;
        if (bullc_redis_opts_set_host(&t, host, t.port)) {
            rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (port && *port) {
        any = true;
        if (!parse_int_range(port, strlen(port), 1, 65535, &t.port)) {
            rc = bullc__err(err, BULLC_EINVAL, "REDIS_PORT: not a port number: '%s'", port);
            goto out;
        }
        free(t.unix_path);
        t.unix_path = NULL;
    }
    if ((pw && *pw) || (user && *user)) {
        any = true;
        if (bullc_redis_opts_set_auth(&t, user, (pw && *pw) ? pw : NULL)) {
            rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (db && *db) {
        any = true;
        if (!parse_int_range(db, strlen(db), 0, 1 << 30, &t.db)) {
            rc = bullc__err(err, BULLC_EINVAL, "REDIS_DB: not a database number: '%s'", db);
            goto out;
        }
    }
    if ((rc = env_tls(&t, err))) goto out;
    bullc__redis_opts_clear(o);
    *o = t;
    memset(&t, 0, sizeof t);
    rc = any ? 1 : 0;
out:
    bullc__redis_opts_clear(&t);
    return rc;
}

int bullc__redis_opts_default(bullc_redis_opts **out, bullc_error *err) {
    bullc_redis_opts *o;
    if (bullc_redis_opts_new(&o)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc_redis_opts_from_env(o, err);
    if (rc < 0) {
        bullc_redis_opts_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

char *bullc_redis_opts_describe(const bullc_redis_opts *o, char *buf, size_t size) {
    if (!size) return buf;
    char auth[300] = "";
    if (o->user || o->password) snprintf(auth, sizeof auth, "%s%s@", o->user ? o->user : "", o->password ? ":***" : "");
    if (o->nsentinels) {
        /* the sentinels, then the master where it was last found */
        int n = snprintf(buf, size, "redis%s+sentinel://%s", o->sentinel_tls ? "s" : "", auth);
        for (size_t i = 0; i < o->nsentinels && n >= 0 && (size_t)n < size; i++)
            n += snprintf(buf + n, size - (size_t)n, strchr(o->sentinels[i].host, ':') ? "%s[%s]:%d" : "%s%s:%d",
                          i ? "," : "", o->sentinels[i].host, o->sentinels[i].port);
        if (n >= 0 && (size_t)n < size)
            n += snprintf(buf + n, size - (size_t)n, "/%s/%d", o->sentinel_master ? o->sentinel_master : "", o->db);
        if (o->sentinel_resolved && n >= 0 && (size_t)n < size)
            snprintf(buf + n, size - (size_t)n, strchr(o->host, ':') ? " (master at [%s]:%d)" : " (master at %s:%d)",
                     o->host, o->port);
        return buf;
    }
    if (o->ncluster) {
        /* the seeds, then the node this connection serves */
        int n = snprintf(buf, size, "%s+cluster://%s", o->tls ? "rediss" : "redis", auth);
        for (size_t i = 0; i < o->ncluster && n >= 0 && (size_t)n < size; i++)
            n += snprintf(buf + n, size - (size_t)n, strchr(o->cluster_nodes[i].host, ':') ? "%s[%s]:%d" : "%s%s:%d",
                          i ? "," : "", o->cluster_nodes[i].host, o->cluster_nodes[i].port);
        if (o->cluster_slot >= 0 && n >= 0 && (size_t)n < size)
            snprintf(buf + n, size - (size_t)n, strchr(o->host, ':') ? " (slot %d at [%s]:%d)" : " (slot %d at %s:%d)",
                     o->cluster_slot, o->host, o->port);
        return buf;
    }
    if (o->unix_path)
        snprintf(buf, size, "unix://%s?db=%d%s", o->unix_path, o->db, o->password ? "&password=***" : "");
    else if (strchr(o->host, ':'))
        snprintf(buf, size, "%s://%s[%s]:%d/%d", o->tls ? "rediss" : "redis", auth, o->host, o->port, o->db);
    else
        snprintf(buf, size, "%s://%s%s:%d/%d", o->tls ? "rediss" : "redis", auth, o->host, o->port, o->db);
    return buf;
}

/* Replaces url[p, end) with "***" in place, so the mask never tells the
 * password's length. A longer password leaves room, zeroed (argv is read
 * up to its old end by `ps`); a shorter one pushes the URL's last
 * characters out, as argv cannot grow. Returns where the text after the
 * mask now starts. */
static char *mask_span(char *url, char *p, char *end) {
    size_t total = strlen(url), tail = strlen(end), room = total - (size_t)(p - url);
    size_t stars = room < 3 ? room : 3;
    size_t kept = tail < room - stars ? tail : room - stars;
    memmove(p + stars, end, kept);
    memset(p + stars + kept, 0, room - stars - kept + 1);
    memcpy(p, "***", stars);
    return p + stars;
}

char *bullc_redis_url_mask(char *url) {
    if (!url) return url;
    char *scheme = strstr(url, "://");
    if (scheme) {
        char *auth = scheme + 3;
        char *end = auth + strcspn(auth, "/?");
        char *at = NULL;
        for (char *p = auth; p < end; p++)
            if (*p == '@') at = p;
        if (at) {
            char *colon = memchr(auth, ':', (size_t)(at - auth));
            char *pw = colon ? colon + 1 : auth;
            if (pw < at) mask_span(url, pw, at);
        }
    }
    for (char *q = strstr(url, "password="); q; q = strstr(q, "password=")) {
        q += 9;
        char *end = q + strcspn(q, "&");
        if (end > q) q = mask_span(url, q, end);
    }
    return url;
}
