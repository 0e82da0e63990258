/* SPDX-License-Identifier: MIT */
/* bullc-test-redis-command: commands on one bullc_redis_conn, for the Node
 * tests that check where they ran (compat_cluster: routing by the keys the
 * server's command table names).
 *   REDIS_URL=... bullc-test-redis-command CMD ARG... [-- CMD ARG...]...
 * One line per command: "ok <reply>" (arrays as [a, b], nil as nil) or
 * "error <BULLC_E name> <message>". Exit 0, or 2 on a usage error. */
#include <stdio.h>
#include <string.h>

#include <bullc/bullc.h>

static void print_reply(const bullc_redis_reply *r) {
    switch (bullc_redis_reply_type(r)) {
    case BULLC_REPLY_INTEGER:
        printf("%lld", bullc_redis_reply_integer(r));
        break;
    case BULLC_REPLY_ARRAY:
        printf("[");
        for (size_t i = 0; i < bullc_redis_reply_count(r); i++) {
            if (i) printf(", ");
            print_reply(bullc_redis_reply_element(r, i));
        }
        printf("]");
        break;
    case BULLC_REPLY_NIL:
        printf("nil");
        break;
    default: {
        size_t len;
        const char *s = bullc_redis_reply_str(r, &len);
        /* one line per command: INFO's lines joined */
        for (size_t i = 0; i < len; i++) putchar(s[i] == '\n' || s[i] == '\r' ? ' ' : s[i]);
    }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: REDIS_URL=... %s CMD ARG... [-- CMD ARG...]...\n", argv[0]);
        return 2;
    }
    bullc_error err = {0};
    bullc_redis_opts *o = NULL;
    bullc_redis_conn *c = NULL;
    if (bullc_redis_opts_new(&o) || bullc_redis_opts_from_env(o, &err) < 0 || bullc_redis_conn_new(&c, o, &err)) {
        fprintf(stderr, "%s\n", err.message);
        bullc_redis_opts_free(o);
        return 2;
    }
    for (int i = 1; i < argc;) {
        int n = 0;
        while (i + n < argc && strcmp(argv[i + n], "--")) n++;
        bullc_redis_reply *r = NULL;
        int rc = n ? bullc_redis_conn_command(c, n, (const char *const *)argv + i, NULL, &r, &err) : BULLC_EINVAL;
        if (rc) {
            printf("error %s %s\n", bullc_err_name(rc), n ? err.message : "empty command");
        } else {
            printf("ok ");
            print_reply(r);
            printf("\n");
            bullc_redis_reply_free(r);
        }
        fflush(stdout);
        i += n + 1;
    }
    bullc_redis_conn_free(c);
    bullc_redis_opts_free(o);
    return 0;
}
