/* SPDX-License-Identifier: MIT */
/* bullc add, add-bulk, scripts. */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"

/* {"id": ..., "added": ...} with the id escaped: custom ids may hold quotes. */
static void print_id_json(const char *id, bool added) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddBoolToObject(o, "added", added);
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s ? s : "{}");
    free(s);
    cJSON_Delete(o);
}

/* Parses "--opts JSON" out of the verb's arguments; the others stay in order. */
static int take_opts(cli *c, bullc_job_opts **opts, int *npos, char **pos, long *batch) {
    bullc_error err = {0};
    *npos = 0;
    for (int i = 1; i < c->argc; i++) {
        const char *a = c->argv[i];
        if (!strcmp(a, "--opts") || (batch && !strcmp(a, "--batch"))) {
            if (i + 1 >= c->argc) return cli_fail(EXIT_USAGE, "%s needs a value", a);
            const char *v = c->argv[++i];
            if (a[2] == 'b') {
                char *end;
                *batch = strtol(v, &end, 10);
                if (*end || *batch < 1 || *batch > 100000)
                    return cli_fail(EXIT_USAGE, "--batch must be an integer from 1 to 100000");
                continue;
            }
            if (!*opts && bullc_job_opts_new(opts)) return cli_fail(EXIT_FAIL, "out of memory");
            if (bullc_job_opts_merge_json(*opts, v, &err)) return cli_fail_opts("--opts", &err);
        } else if (a[0] == '-' && a[1] == '-') {
            return cli_fail(EXIT_USAGE, "unknown flag '%s' for %s (see bullc %s --help)", a, c->argv[0], c->argv[0]);
        } else {
            pos[(*npos)++] = c->argv[i];
        }
    }
    return 0;
}

int cmd_add(cli *c) {
    bullc_job_opts *opts = NULL;
    char **pos = calloc((size_t)c->argc, sizeof *pos);
    int npos = 0, rc;
    bullc_queue *q = NULL;
    if (!pos) return cli_fail(EXIT_FAIL, "out of memory");
    if ((rc = take_opts(c, &opts, &npos, pos, NULL))) goto out;
    if (npos < 2 || npos > 3) {
        rc = cli_fail(EXIT_USAGE, "usage: bullc add QUEUE NAME [DATA_JSON] [--opts JSON]");
        goto out;
    }
    if ((rc = cli_open_tracer(c)) || (rc = cli_open_queue(c, pos[0], &q))) goto out;
    bullc_error err = {0};
    char *id = NULL;
    int r = bullc_queue_add(q, pos[1], npos == 3 ? pos[2] : NULL, opts, &id, &err);
    if (r < 0) {
        rc = cli_fail(cli_exit_for(r), "%s", err.message);
        goto out;
    }
    if (r == 1)
        fprintf(stderr, "bullc: job %s already exists (or its deduplication window is open): nothing added\n", id);
    if (r == 2)
        fprintf(stderr,
                "bullc: job %s added; its deduplication key named another job (replaced, or a stale key "
                "recovered)\n",
                id);
    if (c->json)
        print_id_json(id, r != 1);
    else
        printf("%s\n", id);
    bullc_free(id);
    rc = 0;
out:
    bullc_queue_free(q);
    cli_close_tracer(c);
    bullc_job_opts_free(opts);
    free(pos);
    return rc;
}

typedef struct line_job {
    long lineno;
    char *name;
    char *data;
    bullc_job_opts *opts;
} line_job;

static void line_job_clear(line_job *l) {
    free(l->name);
    free(l->data);
    bullc_job_opts_free(l->opts);
    memset(l, 0, sizeof *l);
}

/* Skips one JSON value starting at p (already validated by cJSON). */
static const char *skip_value(const char *p) {
    int depth = 0;
    do {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (*p) p++;
        } else if (*p == '{' || *p == '[') {
            depth++, p++;
        } else if (*p == '}' || *p == ']') {
            depth--, p++;
        } else if (depth == 0) {
            while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t') p++;
        } else {
            p++;
        }
        while (depth > 0 && *p && (*p == ' ' || *p == '\t')) p++;
    } while (depth > 0 && *p);
    return p;
}

/* The text of a top-level member's value, as written: re-printing it with
 * cJSON would round numbers (0.30000000000000004 -> 0.3). */
static char *member_text(const char *obj, const char *key) {
    const char *p = strchr(obj, '{');
    if (!p) return NULL;
    p++;
    size_t klen = strlen(key);
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p != '"') return NULL;
        const char *k = ++p;
        while (*p && *p != '"') p += (*p == '\\' && p[1]) ? 2 : 1;
        size_t n = (size_t)(p - k);
        p++;
        while (*p == ' ' || *p == '\t' || *p == ':') p++;
        const char *v = p;
        p = skip_value(p);
        if (n == klen && !memcmp(k, key, n)) return strndup(v, (size_t)(p - v));
    }
    return NULL;
}

/* One NDJSON line into a job; a message on error. */
static int parse_line(const char *text, long lineno, const bullc_job_opts *defaults, line_job *out) {
    bullc_error err = {0};
    cJSON *j = cJSON_Parse(text);
    out->lineno = lineno;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return cli_fail(EXIT_USAGE, "line %ld: not a JSON object", lineno);
    }
    int rc = 0;
    for (cJSON *f = j->child; f; f = f->next)
        if (strcmp(f->string, "name") && strcmp(f->string, "data") && strcmp(f->string, "opts")) {
            rc = cli_fail(EXIT_USAGE, "line %ld: unknown field '%s' (expected name, data, opts)", lineno, f->string);
            goto out;
        }
    cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    cJSON *opts = cJSON_GetObjectItemCaseSensitive(j, "opts");
    if (!cJSON_IsString(name)) {
        rc = cli_fail(EXIT_USAGE, "line %ld: \"name\" must be a string", lineno);
        goto out;
    }
    out->name = strdup(name->valuestring);
    out->data = data ? member_text(text, "data") : NULL;
    if (data && !out->data) out->data = cJSON_PrintUnformatted(data);
    if (bullc_job_opts_new(&out->opts)) {
        rc = cli_fail(EXIT_FAIL, "out of memory");
        goto out;
    }
    if (defaults) {
        /* as Node's defaultJobOptions: every option but jobId passes down */
        char *d = bullc_job_opts_to_json(defaults);
        cJSON *dj = d ? cJSON_Parse(d) : NULL;
        cJSON_DeleteItemFromObjectCaseSensitive(dj, "jobId");
        char *dn = dj ? cJSON_PrintUnformatted(dj) : NULL;
        if (dn) bullc_job_opts_merge_json(out->opts, dn, NULL);
        free(dn);
        cJSON_Delete(dj);
        free(d);
    }
    if (opts && !cJSON_IsNull(opts)) {
        char *o = cJSON_PrintUnformatted(opts);
        char where[48];
        snprintf(where, sizeof where, "line %ld: opts", lineno);
        if (bullc_job_opts_merge_json(out->opts, o, &err)) rc = cli_fail_opts(where, &err);
        free(o);
    }
out:
    cJSON_Delete(j);
    return rc;
}

/* Adds a parsed batch; prints the ids and counts them in *added. */
static int flush_batch(cli *c, bullc_queue *q, line_job *lines, size_t n, long *added) {
    if (!n) return 0;
    bullc_bulk_job *jobs = calloc(n, sizeof *jobs);
    if (!jobs) return cli_fail(EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < n; i++) jobs[i] = (bullc_bulk_job){lines[i].name, lines[i].data, lines[i].opts, NULL, 0};
    bullc_error err = {0};
    int r = bullc_queue_add_bulk(q, jobs, n, &err);
    int rc = 0;
    if (r < 0) {
        /* the failing job (if one did) has its code as status: report its line */
        size_t idx = 0;
        while (idx < n && jobs[idx].status >= 0) idx++;
        if (idx < n)
            rc = cli_fail(cli_exit_for(r), "line %ld: %s", lines[idx].lineno, err.message);
        else
            rc = cli_fail(cli_exit_for(r), "%s", err.message);
    } else {
        *added += (long)n;
        for (size_t i = 0; i < n; i++) {
            if (jobs[i].status == 2)
                fprintf(stderr,
                        "bullc: line %ld: job %s added; its deduplication key named another job (replaced, "
                        "or a stale key recovered)\n",
                        lines[i].lineno, jobs[i].id);
            if (jobs[i].status == 1)
                fprintf(stderr,
                        "bullc: line %ld: job %s already exists (or its deduplication window is open): nothing added\n",
                        lines[i].lineno, jobs[i].id);
            if (c->json)
                print_id_json(jobs[i].id, jobs[i].status != 1);
            else
                printf("%s\n", jobs[i].id);
        }
        fflush(stdout);
    }
    for (size_t i = 0; i < n; i++) bullc_free(jobs[i].id);
    free(jobs);
    return rc;
}

int cmd_add_bulk(cli *c) {
    bullc_job_opts *defaults = NULL;
    char **pos = calloc((size_t)c->argc, sizeof *pos);
    int npos = 0, rc;
    long batch = 1000, added = 0;
    bullc_queue *q = NULL;
    line_job *lines = NULL;
    size_t n = 0;
    char *buf = NULL;
    size_t cap = 0;
    if (!pos) return cli_fail(EXIT_FAIL, "out of memory");
    if ((rc = take_opts(c, &defaults, &npos, pos, &batch))) goto out;
    if (npos != 1) {
        rc = cli_fail(EXIT_USAGE, "usage: bullc add-bulk QUEUE [--batch N] [--opts JSON] < jobs.ndjson");
        goto out;
    }
    if ((rc = cli_open_tracer(c)) || (rc = cli_open_queue(c, pos[0], &q))) goto out;
    if (!(lines = calloc((size_t)batch, sizeof *lines))) {
        rc = cli_fail(EXIT_FAIL, "out of memory");
        goto out;
    }
    long lineno = 0;
    ssize_t len;
    while ((len = getline(&buf, &cap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) buf[--len] = 0;
        if (len == 0) continue;
        if ((rc = parse_line(buf, lineno, defaults, &lines[n]))) goto out;
        if (++n == (size_t)batch) {
            if ((rc = flush_batch(c, q, lines, n, &added))) goto out;
            while (n) line_job_clear(&lines[--n]);
        }
    }
    rc = flush_batch(c, q, lines, n, &added);
out:
    /* exit 2 and 3 say nothing was written: not true once a batch was. 5 is
     * kept for guard rails, as in bullc-worker: a partial add is "other" (1). */
    if (rc && added)
        rc = cli_fail(EXIT_FAIL, "stopped after %ld job(s) of earlier batches were added (their ids are on stdout)",
                      added);
    if (lines) {
        for (long i = 0; i < batch; i++) line_job_clear(&lines[i]);
        free(lines);
    }
    free(buf);
    bullc_queue_free(q);
    cli_close_tracer(c);
    bullc_job_opts_free(defaults);
    free(pos);
    return rc;
}

int cmd_scripts(cli *c) {
    if (c->argc != 1) return cli_fail(EXIT_USAGE, "usage: bullc scripts");
    /* no queue to settle on: auto is the default major, 6 */
    int major = c->bullmq_version ? c->bullmq_version : 6;
    size_t n = bullc_script_count_of(major);
    if (c->json) printf("[");
    for (size_t i = 0; i < n; i++) {
        const char *id, *sha;
        int nk;
        size_t size;
        bullc_script_info_of(major, i, &id, &nk, &sha, &size);
        if (c->json)
            printf("%s{\"id\":\"%s\",\"keys\":%d,\"sha1\":\"%s\",\"size\":%zu}", i ? "," : "", id, nk, sha, size);
        else
            printf("%-40s %2d  %s  %6zu\n", id, nk, sha, size);
    }
    if (c->json) printf("]\n");
    return 0;
}
