/* SPDX-License-Identifier: MIT */
/* bullc flow add: trees of parent and child jobs (Node's FlowProducer). */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"

/* The whole of FILE, or of stdin for "-" or no FILE (malloc'd, NUL-ended). */
static int slurp(const char *path, char **out) {
    FILE *f = !path || !strcmp(path, "-") ? stdin : fopen(path, "rb");
    if (!f) return cli_fail(EXIT_USAGE, "cannot open %s", path);
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n - 1 == 0) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    bool bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf) return cli_fail(EXIT_FAIL, "out of memory");
    if (bad) {
        free(buf);
        return cli_fail(EXIT_FAIL, "cannot read %s", path && strcmp(path, "-") ? path : "stdin");
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

static int open_producer(cli *c, bullc_flow_producer **out) {
    bullc_redis_opts *ro = NULL;
    int rc = cli_redis_opts(c, &ro);
    if (rc) return rc;
    bullc_flow_producer_opts *o = NULL;
    bullc_error err = {0};
    rc = bullc_flow_producer_opts_new(&o);
    if (!rc) rc = bullc_flow_producer_opts_set_redis(o, ro);
    if (!rc) rc = bullc_flow_producer_opts_set_prefix(o, c->prefix);
    if (!rc)
        rc = bullc_flow_producer_new(out, o, &err);
    else
        snprintf(err.message, sizeof err.message, "%s", bullc_strerror(rc));
    bullc_flow_producer_opts_free(o);
    bullc_redis_opts_free(ro);
    return rc ? cli_fail(cli_exit_for(rc), "%s", err.message) : 0;
}

/* The root ids of created trees, one a line. */
static void print_roots(const cJSON *trees) {
    for (const cJSON *t = trees->child; t; t = t->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "job"), "id");
        char *p = cli_printable(cJSON_IsString(id) ? id->valuestring : "");
        printf("%s\n", p ? p : "");
        free(p);
    }
}

static int flow_add(cli *c, const char *path) {
    char *text = NULL;
    int rc = slurp(path, &text);
    if (rc) return rc;
    /* an array is addBulk's, an object add's: anything else add refuses */
    const char *p = text + strspn(text, " \t\r\n");
    bool bulk = *p == '[';
    bullc_flow_producer *fp = NULL;
    char *out = NULL;
    bullc_error err = {0};
    if ((rc = open_producer(c, &fp))) goto done;
    int r =
        bulk ? bullc_flow_producer_add_bulk(fp, text, &out, &err) : bullc_flow_producer_add(fp, text, NULL, &out, &err);
    if (r < 0) {
        rc = cli_fail(cli_exit_for(r), "%s%s", r == BULLC_EINVAL ? "nothing added: " : "", err.message);
        goto done;
    }
    if (c->json) {
        printf("%s\n", out);
    } else {
        cJSON *trees = cJSON_Parse(out);
        if (!trees) {
            rc = cli_fail(EXIT_FAIL, "out of memory");
            goto done;
        }
        if (bulk) {
            print_roots(trees);
        } else {
            cJSON *one = cJSON_CreateArray();
            if (one && cJSON_AddItemReferenceToArray(one, trees)) print_roots(one);
            cJSON_Delete(one);
        }
        cJSON_Delete(trees);
    }
    rc = 0;
done:
    bullc_free(out);
    bullc_flow_producer_free(fp);
    free(text);
    return rc;
}

int cmd_flow(cli *c) {
    cli_flag flags[] = {{NULL, false, NULL, 0}};
    const char *pos[3];
    int npos = 0;
    int rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (rc) return rc;
    if (npos >= 1 && !strcmp(pos[0], "add")) return flow_add(c, npos == 2 ? pos[1] : NULL);
    return cli_fail(EXIT_USAGE, "usage: bullc %s", c->verb->usage);
}
