/* SPDX-License-Identifier: MIT */
/* bullc flow, deps and the verbs that change a parent's dependencies: trees of
 * parent and child jobs (Node's FlowProducer and the Job methods of flows). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"

/* The whole of FILE, or of stdin for "-" or no FILE (malloc'd, NUL-ended). */
static int slurp(const char *path, char **out) {
    FILE *f = !path || !strcmp(path, "-") ? stdin : fopen(path, "rb");
    if (!f) return cli_fail(EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
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
    if (!rc) rc = bullc_flow_producer_opts_set_bullmq_version(o, c->bullmq_version);
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

/* One line per job, indented by its depth: "<id> <name>". */
static void print_tree(const cJSON *node, int level) {
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(node, "job");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(job, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(job, "name");
    char *pid = cli_printable(cJSON_IsString(id) ? id->valuestring : "?");
    char *pname = cli_printable(cJSON_IsString(name) ? name->valuestring : "");
    if (job)
        printf("%*s%s %s\n", 2 * level, "", pid ? pid : "?", pname ? pname : "");
    else
        printf("%*s(gone)\n", 2 * level, "");
    free(pid), free(pname);
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "children");
    for (const cJSON *k = kids ? kids->child : NULL; k; k = k->next) print_tree(k, level + 1);
}

static int flow_get(cli *c, const char *queue, const char *id, const cli_flag *depth, const cli_flag *max) {
    long long d = 10, m = 20;
    int rc = 0;
    if (depth->set) rc = cli_flag_i64(depth, 1, 1000000, &d);
    if (!rc && max->set) rc = cli_flag_i64(max, 1, 1000000, &m);
    bullc_flow_producer *fp = NULL;
    if (rc || (rc = open_producer(c, &fp))) return rc;
    bullc_error err = {0};
    char *out = NULL;
    int r = bullc_flow_producer_get_flow(fp, queue, id, NULL, (int)d, (int)m, &out, &err);
    if (r < 0) {
        rc = cli_fail_err(r, &err);
    } else if (c->json) {
        printf("%s\n", out);
    } else {
        cJSON *tree = cJSON_Parse(out);
        print_tree(tree, 0);
        cJSON_Delete(tree);
    }
    bullc_free(out);
    bullc_flow_producer_free(fp);
    return rc;
}

int cmd_flow(cli *c) {
    cli_flag flags[] = {{"depth", true, NULL, 0}, {"max-children", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[3];
    int npos = 0;
    int rc = cli_parse_args(c, flags, pos, &npos, 3, NULL, NULL);
    if (rc) return rc;
    bool add = npos >= 1 && !strcmp(pos[0], "add") && npos <= 2 && !flags[0].set && !flags[1].set;
    if (add) return flow_add(c, npos == 2 ? pos[1] : NULL);
    if (npos == 3 && !strcmp(pos[0], "get")) return flow_get(c, pos[1], pos[2], &flags[0], &flags[1]);
    return cli_fail(EXIT_USAGE, "usage: bullc %s", c->verb->usage);
}

/* "<kind> <child key>[ <value>]" lines. */
static void print_deps(const cJSON *o) {
    for (const cJSON *kind = o->child; kind; kind = kind->next)
        for (const cJSON *e = kind->child; e; e = e->next) {
            bool list = cJSON_IsArray(kind); /* unprocessed and failed: keys; the others map keys to values */
            char *v = list ? NULL : cJSON_IsString(e) ? strdup(e->valuestring) : cJSON_PrintUnformatted(e);
            char *key = cli_printable(list ? (cJSON_IsString(e) ? e->valuestring : "") : e->string);
            char *pv = v ? cli_printable(v) : NULL;
            printf("%s %s%s%s\n", kind->string, key ? key : "", pv ? " " : "", pv ? pv : "");
            free(v), free(key), free(pv);
        }
}

int cmd_deps(cli *c) {
    cli_flag flags[] = {{NULL, false, NULL, 0}};
    const char *pos[2];
    int npos = 0;
    int rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (!rc && npos != 2) rc = cli_fail(EXIT_USAGE, "usage: bullc %s", c->verb->usage);
    bullc_queue *q = NULL;
    if (rc || (rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    char *job = NULL, *out = NULL;
    /* Node answers empty dependencies for a job that does not exist: bullc
     * tells the user instead */
    int r = bullc_queue_get_job(q, pos[1], &job, &err);
    bullc_free(job);
    if (!r) r = bullc_queue_get_dependencies(q, pos[1], NULL, &out, &err);
    if (r < 0) {
        rc = cli_fail_err(r, &err);
    } else if (c->json) {
        printf("%s\n", out);
    } else {
        cJSON *o = cJSON_Parse(out);
        if (o) print_deps(o);
        cJSON_Delete(o);
    }
    bullc_free(out);
    bullc_queue_free(q);
    return rc;
}

/* {"id", "<key>": value} with --json, else the sentence. */
static void print_outcome(cli *c, const char *id, const char *key, bool value, const char *sentence) {
    if (!c->json) {
        printf("%s\n", sentence);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddBoolToObject(o, key, value);
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s ? s : "{}");
    free(s);
    cJSON_Delete(o);
}

/* remove-child-dependency QUEUE ID [--parent KEY] */
int cmd_remove_child_dependency(cli *c) {
    cli_flag flags[] = {{"parent", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2];
    int npos = 0;
    int rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (!rc && npos != 2) rc = cli_fail(EXIT_USAGE, "usage: bullc %s", c->verb->usage);
    if (!rc && flags[0].set && !*flags[0].value) rc = cli_fail(EXIT_USAGE, "--parent needs a job key");
    bullc_queue *q = NULL;
    if (rc || (rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    int r = bullc_queue_remove_child_dependency(q, pos[1], flags[0].set ? flags[0].value : NULL, &err);
    if (r < 0) {
        rc = cli_fail_err(r, &err);
    } else {
        char msg[512];
        snprintf(msg, sizeof msg,
                 r == 0 ? "job %s is no longer a dependency of its parent"
                        : "job %s was no pending dependency of a parent: nothing changed",
                 pos[1]);
        print_outcome(c, pos[1], "removed", r == 0, msg);
    }
    bullc_queue_free(q);
    return rc;
}

/* remove-unprocessed-children QUEUE ID */
int cmd_remove_unprocessed_children(cli *c) {
    cli_flag flags[] = {{NULL, false, NULL, 0}};
    const char *pos[2];
    int npos = 0;
    int rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (!rc && npos != 2) rc = cli_fail(EXIT_USAGE, "usage: bullc %s", c->verb->usage);
    char what[400] = "";
    if (!rc) snprintf(what, sizeof what, "Remove the unprocessed children of job %s of queue %s", pos[1], pos[0]);
    bullc_queue *q = NULL;
    if (rc || (rc = cli_confirm(c, what)) || (rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    int r = bullc_queue_remove_unprocessed_children(q, pos[1], &err);
    if (r < 0) {
        rc = cli_fail_err(r, &err);
    } else {
        char msg[400];
        snprintf(msg, sizeof msg, "unprocessed children of job %s removed", pos[1]);
        print_outcome(c, pos[1], "removed", true, msg);
    }
    bullc_queue_free(q);
    return rc;
}
