/* SPDX-License-Identifier: MIT */
/* Redis settings: URL parsing, environment, masking. No Redis needed. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static bullc_redis_opts *o;
static void setup(void) { cr_assert_eq(bullc_redis_opts_new(&o), 0); }
static void teardown(void) { bullc_redis_opts_free(o); }
TestSuite(url, .init = setup, .fini = teardown);

Test(url, defaults) {
    cr_assert_str_eq(bullc_redis_opts_host(o), "127.0.0.1");
    cr_assert_eq(bullc_redis_opts_port(o), 6379);
    cr_assert_eq(bullc_redis_opts_db(o), 0);
    cr_assert_null(bullc_redis_opts_password(o));
}

Test(url, full_url) {
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://alice:p%40ss@redis.local:6329/2", &err), 0, "%s", err.message);
    cr_assert_str_eq(bullc_redis_opts_host(o), "redis.local");
    cr_assert_eq(bullc_redis_opts_port(o), 6329);
    cr_assert_eq(bullc_redis_opts_db(o), 2);
    cr_assert_str_eq(bullc_redis_opts_user(o), "alice");
    cr_assert_str_eq(bullc_redis_opts_password(o), "p@ss");
}

Test(url, password_only_forms) {
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://:secret@h:1", NULL), 0);
    cr_assert_null(bullc_redis_opts_user(o));
    cr_assert_str_eq(bullc_redis_opts_password(o), "secret");
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://secret2@h", NULL), 0);
    cr_assert_str_eq(bullc_redis_opts_password(o), "secret2");
    cr_assert_eq(bullc_redis_opts_port(o), 1, "a URL without port keeps the earlier one");
}

Test(url, db_in_query_and_ipv6) {
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://[::1]:7000?db=5", NULL), 0);
    cr_assert_str_eq(bullc_redis_opts_host(o), "::1");
    cr_assert_eq(bullc_redis_opts_port(o), 7000);
    cr_assert_eq(bullc_redis_opts_db(o), 5);
}

Test(url, unix_socket) {
    cr_assert_eq(bullc_redis_opts_parse_url(o, "unix:///run/redis.sock?db=3&password=pw", NULL), 0);
    cr_assert_str_eq(bullc_redis_opts_unix(o), "/run/redis.sock");
    cr_assert_eq(bullc_redis_opts_db(o), 3);
    cr_assert_str_eq(bullc_redis_opts_password(o), "pw");
}

Test(url, errors_leave_opts_unchanged_and_hide_password) {
    const char *bad[] = {"",
                         "http://h",
                         "redis://h:0",
                         "redis://h:99999",
                         "redis://h:12ab",
                         "redis://h/x",
                         "redis://h/-1",
                         "unix://relative",
                         "redis://u:%zz@h",
                         "redis://h?foo=1",
                         "rediss://h:0",
                         "redis+sentinel://s1:26379,s2:26379",
                         "redis+sentinel://s1/mymaster",
                         "redis+sentinel://s1:0/mymaster",
                         "redis+sentinel:///mymaster",
                         "redis+sentinel://s1:1/m/x",
                         "redis+cluster://n1",
                         "redis+cluster://n1:7000/2",
                         "redis+cluster://"};
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://keep:6380/1", NULL), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bullc_error err = {0};
        cr_assert_eq(bullc_redis_opts_parse_url(o, bad[i], &err), BULLC_EINVAL, "accepted '%s'", bad[i]);
        cr_assert_eq(err.code, BULLC_EINVAL);
        cr_assert(strlen(err.message) > 0);
    }
    cr_assert_str_eq(bullc_redis_opts_host(o), "keep");
    cr_assert_eq(bullc_redis_opts_port(o), 6380);
    bullc_error err = {0};
    bullc_redis_opts_parse_url(o, "redis://u:hunter2@h:bad", &err);
    cr_assert_null(strstr(err.message, "hunter2"), "password leaked: %s", err.message);
}

Test(url, describe_masks_password) {
    char buf[256];
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://bob:hunter2@db:6329/2", NULL), 0);
    bullc_redis_opts_describe(o, buf, sizeof buf);
    cr_assert_str_eq(buf, "redis://bob:***@db:6329/2");
    cr_assert_eq(bullc_redis_opts_parse_url(o, "unix:///s.sock?password=hunter2", NULL), 0);
    bullc_redis_opts_describe(o, buf, sizeof buf);
    cr_assert_null(strstr(buf, "hunter2"));
}

Test(url, rediss_turns_tls_on_and_redis_never_turns_it_off) {
    char buf[256];
    cr_assert_not(bullc_redis_opts_tls(o));
    cr_assert_eq(bullc_redis_opts_parse_url(o, "rediss://bob:hunter2@db.example:6380/2", NULL), 0);
    cr_assert(bullc_redis_opts_tls(o));
    cr_assert_str_eq(bullc_redis_opts_host(o), "db.example");
    cr_assert_eq(bullc_redis_opts_port(o), 6380);
    cr_assert_str_eq(bullc_redis_opts_describe(o, buf, sizeof buf), "rediss://bob:***@db.example:6380/2");
    /* a later plain URL keeps TLS: no silent fallback to plain TCP */
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://other:6379", NULL), 0);
    cr_assert(bullc_redis_opts_tls(o));
    cr_assert_eq(bullc_redis_opts_set_tls(o, false), 0);
    cr_assert_not(bullc_redis_opts_tls(o));
    cr_assert_eq(bullc_redis_opts_set_tls_ca(o, "/ca.pem", NULL), 0);
    cr_assert(bullc_redis_opts_tls(o), "a TLS setting turns TLS on");
    cr_assert_eq(bullc_redis_opts_set_tls_cert(o, "/c.pem", NULL), BULLC_EINVAL, "a certificate needs its key");
    cr_assert_eq(bullc_redis_opts_set_tls_cert(o, NULL, "/k.pem"), BULLC_EINVAL);
    cr_assert_eq(bullc_redis_opts_set_tls_cert(o, "/c.pem", "/k.pem"), 0);
    cr_assert_eq(bullc_redis_opts_parse_url(o, "unix:///s.sock", NULL), 0);
    cr_assert_not(bullc_redis_opts_tls(o), "a unix socket is local: no TLS");
}

Test(url, cluster) {
    char buf[256];
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis+cluster://bob:hunter2@n1:7000,[::1]:7001", &err), 0, "%s",
                 err.message);
    cr_assert_eq(bullc_redis_opts_cluster_count(o), 2);
    cr_assert_str_eq(bullc_redis_opts_describe(o, buf, sizeof buf), "redis+cluster://bob:***@n1:7000,[::1]:7001");
    cr_assert_str_eq(bullc_redis_opts_password(o), "hunter2");
    /* a URL and the flags may name the same node once */
    cr_assert_eq(bullc_redis_opts_add_cluster_nodes(o, "n1:7000,n3:7002", &err), 0);
    cr_assert_eq(bullc_redis_opts_cluster_count(o), 3);
    cr_assert_eq(bullc_redis_opts_add_cluster_nodes(o, "n4", &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "invalid cluster node 'n4'"), "%s", err.message);
    cr_assert_eq(bullc_redis_opts_cluster_count(o), 3, "a bad list changes nothing");
    /* seed nodes and sentinels exclude each other; redis:// ends the cluster */
    cr_assert_eq(bullc_redis_opts_add_sentinel(o, "s1", 26379), 0);
    cr_assert_eq(bullc_redis_opts_add_cluster_node(o, "n1", 7000), 0);
    cr_assert_eq(bullc_redis_opts_sentinel_count(o), 0);
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://h:6379", NULL), 0);
    cr_assert_eq(bullc_redis_opts_cluster_count(o), 0);
    /* rediss+cluster://: TLS to the seeds and the masters, kept by a later plain URL */
    cr_assert_eq(bullc_redis_opts_parse_url(o, "rediss+cluster://n1:7000", &err), 0, "%s", err.message);
    cr_assert(o->tls);
    cr_assert_str_eq(bullc_redis_opts_describe(o, buf, sizeof buf), "rediss+cluster://bob:***@n1:7000");
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis+cluster://n2:7000", &err), 0, "%s", err.message);
    cr_assert(o->tls);
}

Test(url, cluster_slots_and_routing) {
    /* the slots Redis's CLUSTER KEYSLOT gives */
    cr_assert_eq(bullc__cluster_key_slot("{bull}", 6), 9263);
    cr_assert_eq(bullc__cluster_key_slot("{bull}:q:wait", 13), 9263);
    cr_assert_eq(bullc__cluster_key_slot("mv:{mv}:wait", 12), 8999);
    cr_assert_eq(bullc__cluster_key_slot("bull:{a}:id", 11), 15495);
    cr_assert_eq(bullc__cluster_key_slot("{b}", 3), 3300);
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_add_cluster_node(o, "n1", 7000), 0);
    cr_assert_eq(bullc__cluster_route(o, "bull", "plain", &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "hash-tagged prefix"), "%s", err.message);
    cr_assert_eq(bullc__cluster_route(o, "{bull}", "q", &err), 0);
    cr_assert_eq(o->cluster_slot, 9263);
    cr_assert_eq(bullc__cluster_route(o, "bull", "{a}", &err), 0);
    cr_assert_eq(o->cluster_slot, 15495);
    /* MOVED repoints the settings; ASK, TRYAGAIN and CLUSTERDOWN ask for a retry */
    redisReply r = {.type = REDIS_REPLY_ERROR, .str = "MOVED 3300 10.0.0.2:7002"};
    cr_assert_eq(bullc__cluster_redirect(o, &r), BULLC__CLUSTER_MOVED);
    cr_assert_str_eq(bullc_redis_opts_host(o), "10.0.0.2");
    cr_assert_eq(bullc_redis_opts_port(o), 7002);
    cr_assert_eq(o->cluster_slot, 3300);
    const char *retry[] = {"ASK 3300 10.0.0.3:7003", "TRYAGAIN Multiple keys", "CLUSTERDOWN The cluster is down"};
    for (size_t i = 0; i < 3; i++) {
        r.str = (char *)retry[i];
        cr_assert_eq(bullc__cluster_redirect(o, &r), BULLC__CLUSTER_RETRY, "%s", retry[i]);
    }
    r.str = "ERR something else";
    cr_assert_eq(bullc__cluster_redirect(o, &r), BULLC__CLUSTER_NONE);
    cr_assert_str_eq(bullc_redis_opts_host(o), "10.0.0.2", "only MOVED repoints");
}

Test(url, sentinel) {
    bullc_redis_opts *o;
    char buf[256];
    cr_assert_eq(bullc_redis_opts_new(&o), 0);
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis+sentinel://:s3cr%40t@s1:26379,[::1]:26380/my%20master/3", NULL),
                 0);
    cr_assert_eq(bullc_redis_opts_sentinel_count(o), 2);
    cr_assert_str_eq(bullc_redis_opts_sentinel_master(o), "my master");
    cr_assert_eq(bullc_redis_opts_db(o), 3);
    cr_assert_str_eq(bullc_redis_opts_password(o), "s3cr@t", "the URL's password is the master's");
    cr_assert_str_eq(bullc_redis_opts_describe(o, buf, sizeof buf),
                     "redis+sentinel://:***@s1:26379,[::1]:26380/my master/3");
    /* flags add to the URL's list; the same sentinel twice is kept once */
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_add_sentinels(o, "s1:26379,s3:1", &err), 0, "%s", err.message);
    cr_assert_eq(bullc_redis_opts_sentinel_count(o), 3);
    cr_assert_eq(bullc_redis_opts_add_sentinels(o, "s4", &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "expected HOST:PORT"), "%s", err.message);
    cr_assert_eq(bullc_redis_opts_sentinel_count(o), 3, "a bad list changes nothing");
    /* the sentinels' password is apart, and never described */
    cr_assert_eq(bullc_redis_opts_set_sentinel_auth(o, NULL, "sentinel-pw"), 0);
    cr_assert_null(strstr(bullc_redis_opts_describe(o, buf, sizeof buf), "sentinel-pw"));
    /* a URL naming one server ends Sentinel */
    cr_assert_eq(bullc_redis_opts_parse_url(o, "redis://h:1", NULL), 0);
    cr_assert_eq(bullc_redis_opts_sentinel_count(o), 0);
    cr_assert_eq(bullc_redis_opts_add_sentinel(o, "s1", 26379), 0);
    cr_assert_eq(bullc_redis_opts_set_host(o, "h", 2), 0);
    cr_assert_eq(bullc_redis_opts_sentinel_count(o), 0);
    /* no master's name: refused when resolving, before any connection */
    cr_assert_eq(bullc_redis_opts_add_sentinel(o, "127.0.0.1", 1), 0);
    cr_assert_eq(bullc_redis_opts_set_sentinel_master(o, NULL), 0);
    int port = 0;
    cr_assert_eq(bullc_redis_opts_resolve(o, buf, sizeof buf, &port, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "no master name"), "%s", err.message);
    bullc_redis_opts_free(o);
}

Test(url, tls_environment) {
    unsetenv("REDIS_HOST");
    unsetenv("REDIS_PORT");
    unsetenv("REDIS_PASSWORD");
    unsetenv("REDIS_DB");
    unsetenv("REDIS_USERNAME");
    setenv("REDIS_URL", "redis://h:1", 1);
    setenv("REDIS_TLS_CA", "/nonexistent-ca.pem", 1);
    setenv("REDIS_TLS_CERT", "/c.pem", 1);
    unsetenv("REDIS_TLS_KEY");
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_from_env(o, &err), BULLC_EINVAL, "a certificate without its key");
    cr_assert(strstr(err.message, "REDIS_TLS_KEY"), "%s", err.message);
    setenv("REDIS_TLS_KEY", "/k.pem", 1);
    setenv("REDIS_TLS_INSECURE", "yes", 1);
    cr_assert_eq(bullc_redis_opts_from_env(o, &err), BULLC_EINVAL);
    setenv("REDIS_TLS_INSECURE", "0", 1);
    cr_assert_eq(bullc_redis_opts_from_env(o, NULL), 1);
    cr_assert(bullc_redis_opts_tls(o), "REDIS_TLS_CA turns TLS on under a redis:// URL");
    unsetenv("REDIS_URL");
    unsetenv("REDIS_TLS_CA");
    unsetenv("REDIS_TLS_CERT");
    unsetenv("REDIS_TLS_KEY");
    unsetenv("REDIS_TLS_INSECURE");
}

Test(url, environment) {
    setenv("REDIS_URL", "", 1);
    setenv("REDIS_HOST", "envhost", 1);
    setenv("REDIS_PORT", "6329", 1);
    setenv("REDIS_PASSWORD", "pw", 1);
    setenv("REDIS_DB", "2", 1);
    unsetenv("REDIS_USERNAME");
    cr_assert_eq(bullc_redis_opts_from_env(o, NULL), 1);
    cr_assert_str_eq(bullc_redis_opts_host(o), "envhost");
    cr_assert_eq(bullc_redis_opts_port(o), 6329);
    cr_assert_str_eq(bullc_redis_opts_password(o), "pw");
    cr_assert_eq(bullc_redis_opts_db(o), 2);

    setenv("REDIS_PORT", "abc", 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_from_env(o, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "REDIS_PORT"));

    setenv("REDIS_URL", "redis://urlhost:1234/4", 1);
    cr_assert_eq(bullc_redis_opts_from_env(o, NULL), 1, "REDIS_URL wins over REDIS_HOST and friends");
    cr_assert_str_eq(bullc_redis_opts_host(o), "urlhost");
    cr_assert_eq(bullc_redis_opts_db(o), 4);

    unsetenv("REDIS_URL");
    unsetenv("REDIS_HOST");
    unsetenv("REDIS_PORT");
    unsetenv("REDIS_PASSWORD");
    unsetenv("REDIS_DB");
    cr_assert_eq(bullc_redis_opts_from_env(o, NULL), 0);
}

Test(url, mask_in_place) {
    char a[] = "redis://alice:hunter2@db:6329/2";
    cr_assert_str_eq(bullc_redis_url_mask(a), "redis://alice:***@db:6329/2");
    /* argv keeps its old length in /proc/PID/cmdline: the rest is zeroed */
    for (size_t i = strlen(a); i < sizeof a; i++) cr_assert_eq(a[i], 0, "byte %zu", i);
    char b[] = "redis://:s3cret@h";
    cr_assert_str_eq(bullc_redis_url_mask(b), "redis://:***@h");
    char c[] = "redis://justpw@h:1/0";
    cr_assert_str_eq(bullc_redis_url_mask(c), "redis://***@h:1/0");
    char d[] = "unix:///s.sock?db=1&password=pw&x=1";
    cr_assert_str_eq(bullc_redis_url_mask(d), "unix:///s.sock?db=1&password=***&x=", "a short one cuts the end");
    char e[] = "redis://host:6379/0";
    cr_assert_str_eq(bullc_redis_url_mask(e), "redis://host:6379/0");
    char f[] = "redis://u:p@ss@host";
    cr_assert_str_eq(bullc_redis_url_mask(f), "redis://u:***@host", "the last @ ends the userinfo");
    char g[] = "redis://:a@h";
    cr_assert_str_eq(bullc_redis_url_mask(g), "redis://:***", "one character: still three stars");
    char h[] = "unix:///s?password=longsecret&password=verylongsecret2";
    cr_assert_str_eq(bullc_redis_url_mask(h), "unix:///s?password=***&password=***");
    char i[] = "redis://u:@h";
    cr_assert_str_eq(bullc_redis_url_mask(i), "redis://u:@h", "no password: nothing to hide");
    /* the same length-free mask whatever the password */
    char j[] = "redis://:123456789012345678901234567890@h";
    cr_assert_str_eq(bullc_redis_url_mask(j), "redis://:***@h");
}
