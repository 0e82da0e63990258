/* SPDX-License-Identifier: MIT */
/* bullc counts, jobs, get, logs, state, workers, queues, metrics, and the
 * helpers of the admin verbs (flags, confirmation, failures). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "cli.h"

/* ---- helpers ------------------------------------------------------------------- */

bool cli_usage_names(const char *usage, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = strstr(usage, "--"); p; p = strstr(p + 2, "--"))
        if (!strncmp(p + 2, flag, n) && !(isalnum((unsigned char)p[2 + n]) || p[2 + n] == '-')) return true;
    return false;
}

int cli_parse_args(cli *c, cli_flag *flags, const char **pos, int *npos, int max_pos,
                   int (*each)(const char *flag, const char *value, void *data), void *data) {
    *npos = 0;
    /* The verb's usage line is what --help and docs/cli.md show: a flag
     * missing there is a bug that every run of the verb reports. */
    for (const cli_flag *f = flags; c->verb && f->name; f++)
        if (!cli_usage_names(c->verb->usage, f->name))
            return cli_fail(EXIT_FAIL, "internal error: --%s is not in the usage of %s", f->name, c->verb->name);
    for (int i = 1; i < c->argc; i++) {
        const char *a = c->argv[i];
        if (a[0] == '-' && a[1] == '-' && a[2]) {
            const char *eq = strchr(a, '=');
            size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            cli_flag *f = flags;
            while (f->name && (strlen(f->name) != n || strncmp(f->name, a + 2, n))) f++;
            if (!f->name)
                return cli_fail(EXIT_USAGE, "unknown flag '%.*s' for %s (see bullc %s --help)", (int)(n + 2), a,
                                c->argv[0], c->argv[0]);
            if (f->takes_value) {
                if (eq)
                    f->value = eq + 1;
                else if (i + 1 < c->argc)
                    f->value = c->argv[++i];
                else
                    return cli_fail(EXIT_USAGE, "--%s needs a value", f->name);
                if (each) {
                    int rc = each(f->name, f->value, data);
                    if (rc) return rc;
                }
            } else if (eq) {
                return cli_fail(EXIT_USAGE, "--%s takes no value", f->name);
            }
            f->set++;
        } else {
            if (*npos == max_pos)
                return cli_fail(EXIT_USAGE, "unexpected argument '%s' (see bullc %s --help)", a, c->argv[0]);
            pos[(*npos)++] = a;
        }
    }
    return 0;
}

int cli_flag_i64(const cli_flag *f, long long min, long long max, long long *out) {
    char *end;
    errno = 0; /* out of range: ERANGE, and v clamped into range */
    long long v = strtoll(f->value, &end, 10);
    if (!*f->value || *end || errno || v < min || v > max)
        return cli_fail(EXIT_USAGE, "--%s must be a whole number from %lld to %lld", f->name, min, max);
    *out = v;
    return 0;
}

int cli_pos_i64(const char *what, const char *s, long long min, long long max, long long *out) {
    char *end;
    errno = 0; /* out of range: ERANGE, and v clamped into range */
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return cli_fail(EXIT_USAGE, "%s must be a whole number from %lld to %lld", what, min, max);
    *out = v;
    return 0;
}

int cli_redis_opts(cli *c, bullc_redis_opts **out) {
    bullc_error err = {0};
    bullc_redis_opts *ro = NULL;
    if (bullc_redis_opts_new(&ro)) return cli_fail(EXIT_FAIL, "out of memory");
    int rc = bullc_redis_opts_from_env(ro, &err);
    if (rc >= 0 && c->redis_url) rc = bullc_redis_opts_parse_url(ro, c->redis_url, &err);
    if (rc >= 0) rc = cli_tls_apply(&c->tls, ro, &err);
    if (rc < 0) {
        bullc_redis_opts_free(ro);
        return cli_fail(EXIT_USAGE, "%s", err.message);
    }
    *out = ro;
    return 0;
}

int cli_open_admin(cli *c, const char *name, bullc_queue **out) {
    bullc_redis_opts *ro = NULL;
    int rc = cli_redis_opts(c, &ro);
    if (rc) return rc;
    bullc_error err = {0};
    bullc_queue_opts *qo = NULL;
    rc = bullc_queue_opts_new(&qo);
    if (!rc) rc = bullc_queue_opts_set_redis(qo, ro);
    if (!rc) rc = bullc_queue_opts_set_prefix(qo, c->prefix);
    if (!rc) rc = bullc_queue_opts_set_skip_meta_update(qo, true); /* looking at a queue must not create it */
    if (!rc) rc = bullc_queue_opts_set_bullmq_version(qo, c->bullmq_version);
    if (!rc)
        rc = bullc_queue_new(out, name, qo, &err);
    else
        snprintf(err.message, sizeof err.message, "%s", bullc_strerror(rc));
    bullc_queue_opts_free(qo);
    bullc_redis_opts_free(ro);
    return rc ? cli_fail(cli_exit_for(rc), "%s", err.message) : 0;
}

int cli_confirm(cli *c, const char *what) {
    if (c->yes) return 0;
    if (!isatty(0) || !isatty(1))
        return cli_fail(EXIT_USAGE,
                        "%s: not confirmed; pass --yes (stdin/stdout is not a terminal). Nothing was changed.", what);
    fprintf(stderr, "%s? [y/N] ", what);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin) || (strcmp(line, "y\n") && strcmp(line, "yes\n") && strcmp(line, "Y\n")))
        return cli_fail(EXIT_USAGE, "not confirmed. Nothing was changed.");
    return 0;
}

int cli_fail_err(int rc, const bullc_error *err) { return cli_fail(cli_exit_for(rc), "%s", err->message); }

/* The library's messages about the JSON as a whole name it "options":
 * `where` takes that word's place rather than standing before it. */
int cli_fail_opts(const char *where, const bullc_error *err) {
    const char *m = err->message;
    if (!strncmp(m, "options", 7) && (m[7] == ':' || m[7] == ' ')) return cli_fail(EXIT_USAGE, "%s%s", where, m + 7);
    return cli_fail(EXIT_USAGE, "%s: %s", where, m);
}

char *cli_printable(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(n * 6 + 1), *o = out; /* \u009b: 6 bytes for 2 */
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t' || *p == '\\') {
            *o++ = '\\';
            *o++ = *p == '\n' ? 'n' : *p == '\r' ? 'r' : *p == '\t' ? 't' : '\\';
        } else if (*p < 0x20 || *p == 0x7f) {
            o += sprintf(o, "\\x%02x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) { /* U+0080..U+009F, e.g. CSI */
            o += sprintf(o, "\\u%04x", p[1]);
            p++;
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}

const char *cli_iso_time(double ms, char *buf, size_t size) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm)) {
        snprintf(buf, size, "-");
        return buf;
    }
    char t[32];
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", t, (int)((long long)ms % 1000));
    return buf;
}

/* Prints JSON text from the library and a newline. */
static void print_json(const char *json) {
    fputs(json, stdout);
    fputc('\n', stdout);
}

/* The start of a verb that takes no flags of its own and exactly `n`
 * positional arguments, the first a queue: parses them, then opens it. */
static int open_verb(cli *c, int n, const char *usage, const char **pos, bullc_queue **q) {
    cli_flag flags[] = {{NULL, false, NULL, 0}};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, n, NULL, NULL);
    if (rc) return rc;
    if (npos != n) return cli_fail(EXIT_USAGE, "usage: bullc %s", usage);
    return cli_open_admin(c, pos[0], q);
}

/* The end of a verb whose library call gave JSON text: the error, or the
 * JSON as it is (--json), or `text` printing it for people. Frees `json`
 * and the queue. */
static int json_result(cli *c, bullc_queue *q, int r, const bullc_error *err, char *json,
                       void (*text)(const char *json)) {
    int rc = 0;
    if (r)
        rc = cli_fail_err(r, err);
    else if (c->json)
        print_json(json);
    else
        text(json);
    bullc_free(json);
    bullc_queue_free(q);
    return rc;
}

/* ---- counts ------------------------------------------------------------------- */

/* The states of `counts`, in Node's order of the --json object. */
static const char *const count_states[] = {"waiting",   "active", "delayed", "prioritized",
                                           "completed", "failed", "paused",  "waiting-children"};

#define NCOUNT_STATES (sizeof count_states / sizeof count_states[0])

int cmd_counts(cli *c) {
    const char *pos[1] = {0};
    bullc_queue *q;
    int rc = open_verb(c, 1, "counts QUEUE", pos, &q);
    if (rc) return rc;
    bullc_error err = {0};
    int64_t n[NCOUNT_STATES];
    int r = bullc_queue_count_jobs(q, count_states, NCOUNT_STATES, n, &err);
    bullc_queue_free(q);
    if (r) return cli_fail_err(r, &err);
    for (size_t i = 0; i < NCOUNT_STATES; i++) {
        if (c->json)
            printf("%s\"%s\":%lld", i ? "," : "{", count_states[i], (long long)n[i]);
        else
            printf("%-18s %lld\n", count_states[i], (long long)n[i]);
    }
    if (c->json) printf("}\n");
    return 0;
}

/* ---- jobs, get ----------------------------------------------------------------- */

typedef struct states_acc {
    const char *list[16];
    int n;
    char *buf[16];
} states_acc;

/* --state takes a name or a comma-separated list, and may be repeated. */
static int add_states(const char *flag, const char *value, void *data) {
    states_acc *s = data;
    if (strcmp(flag, "state")) return 0;
    char *copy = strdup(value);
    if (!copy) return cli_fail(EXIT_FAIL, "out of memory");
    if (s->n == 16) {
        free(copy);
        return cli_fail(EXIT_USAGE, "too many states");
    }
    s->buf[s->n] = copy; /* kept for the names' lifetime */
    int first = s->n;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (s->n == 16) return cli_fail(EXIT_USAGE, "too many states");
        s->list[s->n++] = t;
    }
    if (s->n == first) return cli_fail(EXIT_USAGE, "--state needs a state name");
    return 0;
}

static void states_free(states_acc *s) {
    for (int i = 0; i < 16; i++) free(s->buf[i]);
}

/* One line of the jobs table. */
static void job_row(const cJSON *j) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id"), *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(j, "attemptsMade");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(j, "failedReason");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(j, "returnvalue");
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "progress");
    char when[40];
    char *prog = pr ? cJSON_PrintUnformatted(pr) : NULL;
    char *result = fr ? NULL : rv && !cJSON_IsNull(rv) ? cJSON_PrintUnformatted(rv) : NULL;
    /* names, ids and reasons are anyone's text: a newline or an escape
     * sequence in them must not forge a row */
    char *sid = cli_printable(cJSON_IsString(id) ? id->valuestring : "?");
    char *sname = cli_printable(cJSON_IsString(name) ? name->valuestring : "");
    char *outcome = cli_printable(cJSON_IsString(fr) ? fr->valuestring : result ? result : "");
    printf("%-12s %-20s %-24s %-8.0f %-8s %.60s\n", sid ? sid : "?", sname ? sname : "?",
           cJSON_IsNumber(ts) ? cli_iso_time(ts->valuedouble, when, sizeof when) : "-",
           cJSON_IsNumber(am) ? am->valuedouble : 0, prog ? prog : "", outcome ? outcome : "?");
    free(sid);
    free(sname);
    free(outcome);
    free(prog);
    free(result);
}

int cmd_jobs(cli *c) {
    cli_flag flags[] = {{"state", true, NULL, 0},
                        {"start", true, NULL, 0},
                        {"end", true, NULL, 0},
                        {"asc", false, NULL, 0},
                        {NULL, false, NULL, 0}};
    states_acc st = {0};
    const char *pos[1] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 1, add_states, &st);
    long long start = 0, end = -1;
    if (!rc && npos != 1) rc = cli_fail(EXIT_USAGE, "usage: bullc jobs QUEUE --state S [--start N] [--end N] [--asc]");
    if (!rc && flags[1].set) rc = cli_flag_i64(&flags[1], INT64_MIN, INT64_MAX, &start);
    if (!rc && flags[2].set) rc = cli_flag_i64(&flags[2], INT64_MIN, INT64_MAX, &end);
    bullc_queue *q = NULL;
    if (!rc) rc = cli_open_admin(c, pos[0], &q);
    if (!rc) {
        bullc_error err = {0};
        char *json = NULL;
        int r = bullc_queue_get_jobs(q, st.n ? st.list : NULL, (size_t)st.n, start, end, flags[3].set > 0, &json, &err);
        if (r) {
            rc = cli_fail_err(r, &err);
        } else if (c->json) {
            print_json(json);
        } else {
            cJSON *a = cJSON_Parse(json);
            printf("%-12s %-20s %-24s %-8s %-8s %s\n", "ID", "NAME", "CREATED", "ATTEMPTS", "PROGRESS",
                   "RESULT/REASON");
            for (cJSON *j = a ? a->child : NULL; j; j = j->next) job_row(j);
            cJSON_Delete(a);
        }
        bullc_free(json);
    }
    bullc_queue_free(q);
    states_free(&st);
    return rc;
}

/* Text view of one job: "field: value" lines, JSON values compact. */
static void print_job(const char *json) {
    cJSON *j = cJSON_Parse(json);
    for (cJSON *e = j ? j->child : NULL; e; e = e->next) {
        char when[40];
        if (cJSON_IsString(e)) {
            char *v = cli_printable(e->valuestring);
            printf("%-16s %s\n", e->string, v ? v : "?");
            free(v);
        } else if (cJSON_IsNumber(e) && (!strcmp(e->string, "timestamp") || !strcmp(e->string, "processedOn") ||
                                         !strcmp(e->string, "finishedOn"))) {
            printf("%-16s %.0f (%s)\n", e->string, e->valuedouble, cli_iso_time(e->valuedouble, when, sizeof when));
        } else {
            char *v = cJSON_PrintUnformatted(e); /* control characters escaped as JSON */
            printf("%-16s %s\n", e->string, v ? v : "?");
            free(v);
        }
    }
    cJSON_Delete(j);
}

int cmd_get(cli *c) {
    const char *pos[2] = {0};
    bullc_queue *q;
    int rc = open_verb(c, 2, "get QUEUE ID", pos, &q);
    if (rc) return rc;
    bullc_error err = {0};
    char *json = NULL;
    int r = bullc_queue_get_job(q, pos[1], &json, &err);
    return json_result(c, q, r, &err, json, print_job);
}

/* ---- logs, state ------------------------------------------------------------------- */

/* Node answers a job's logs (and clears them) whether or not the job exists:
 * bullc tells the user instead (BULLC_ENOTFOUND, exit 4). */
static int check_job(bullc_queue *q, const char *id, bullc_error *err) {
    const char *state = NULL;
    int r = bullc_queue_get_job_state(q, id, &state, err);
    if (!r && !strcmp(state, "unknown")) {
        char *job = NULL;
        r = bullc_queue_get_job(q, id, &job, err);
        bullc_free(job);
    }
    return r;
}

int cmd_logs(cli *c) {
    cli_flag flags[] = {
        {"start", true, NULL, 0}, {"end", true, NULL, 0}, {"desc", false, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    long long start = 0, end = -1;
    if (!rc && npos != 2) rc = cli_fail(EXIT_USAGE, "usage: bullc logs QUEUE ID [--start N] [--end N] [--desc]");
    if (!rc && flags[0].set) rc = cli_flag_i64(&flags[0], INT64_MIN, INT64_MAX, &start);
    if (!rc && flags[1].set) rc = cli_flag_i64(&flags[1], INT64_MIN, INT64_MAX, &end);
    if (rc) return rc;
    bullc_queue *q;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    char *json = NULL;
    int r = check_job(q, pos[1], &err);
    if (!r) r = bullc_queue_get_job_logs(q, pos[1], start, end, flags[2].set == 0, &json, &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else if (c->json) {
        print_json(json);
    } else {
        cJSON *o = cJSON_Parse(json);
        cJSON *logs = cJSON_GetObjectItemCaseSensitive(o, "logs");
        cJSON *count = cJSON_GetObjectItemCaseSensitive(o, "count");
        for (cJSON *l = logs ? logs->child : NULL; l; l = l->next) {
            char *line = cli_printable(cJSON_IsString(l) ? l->valuestring : "");
            printf("%s\n", line ? line : "?");
            free(line);
        }
        if (cJSON_IsNumber(count) && count->valuedouble != cJSON_GetArraySize(logs))
            fprintf(stderr, "bullc: %d of %.0f log lines shown\n", cJSON_GetArraySize(logs), count->valuedouble);
        cJSON_Delete(o);
    }
    bullc_free(json);
    bullc_queue_free(q);
    return rc;
}

int cmd_clear_logs(cli *c) {
    cli_flag flags[] = {{"keep", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    long long keep = 0;
    if (!rc && npos != 2) rc = cli_fail(EXIT_USAGE, "usage: bullc clear-logs QUEUE ID [--keep N]");
    if (!rc && flags[0].set) rc = cli_flag_i64(&flags[0], 0, INT64_MAX, &keep);
    if (rc) return rc;
    char what[300];
    snprintf(what, sizeof what, "Clear the log of job %s of queue %s%s", pos[1], pos[0],
             keep ? ", but its last lines" : "");
    if ((rc = cli_confirm(c, what))) return rc;
    bullc_queue *q;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    int r = check_job(q, pos[1], &err);
    if (!r) r = bullc_queue_clear_job_logs(q, pos[1], keep, &err);
    if (r) rc = cli_fail_err(r, &err);
    bullc_queue_free(q);
    return rc;
}

int cmd_wait(cli *c) {
    cli_flag flags[] = {{"timeout", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    long long timeout = 0;
    if (!rc && npos != 2) rc = cli_fail(EXIT_USAGE, "usage: bullc wait QUEUE ID [--timeout MS]");
    if (!rc && flags[0].set) rc = cli_flag_i64(&flags[0], 0, INT64_MAX, &timeout);
    if (rc) return rc;
    bullc_queue *q;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    bool failed = false;
    char *value = NULL;
    int r = bullc_queue_wait_until_finished(q, pos[1], timeout, &failed, &value, &err);
    if (r == BULLC_ETIMEDOUT && !strncmp(err.message, "Job wait", 8))
        rc = cli_fail(EXIT_FAIL, "%s", err.message); /* the job's, not Redis's: Redis answered */
    else if (r)
        rc = cli_fail_err(r, &err);
    else if (failed)
        rc = cli_fail(EXIT_FAIL, "job %s failed: %s", pos[1], value ? value : "");
    else
        printf("%s\n", value ? value : "null");
    bullc_free(value);
    bullc_queue_free(q);
    return rc;
}

int cmd_cancel(cli *c) {
    cli_flag flags[] = {{"reason", true, NULL, 0}, {"timeout", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    long long timeout = 5000;
    if (!rc && npos != 2) rc = cli_fail(EXIT_USAGE, "usage: bullc cancel QUEUE ID [--reason R] [--timeout MS]");
    if (!rc && flags[1].set) rc = cli_flag_i64(&flags[1], 1, INT64_MAX, &timeout);
    if (rc) return rc;
    bullc_queue *q;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    char by[64];
    int r = bullc_queue_cancel_job(q, pos[1], flags[0].value, timeout, by, sizeof by, &err);
    if (r == BULLC_ESTATE)
        rc = cli_fail(EXIT_FAIL, "%s", err.message); /* Redis answered: no worker did */
    else if (r)
        rc = cli_fail_err(r, &err);
    else
        printf("job %s cancelled by worker %s\n", pos[1], by);
    bullc_queue_free(q);
    return rc;
}

int cmd_state(cli *c) {
    const char *pos[2] = {0};
    bullc_queue *q;
    int rc = open_verb(c, 2, "state QUEUE ID", pos, &q);
    if (rc) return rc;
    bullc_error err = {0};
    const char *state = NULL;
    int r = bullc_queue_get_job_state(q, pos[1], &state, &err);
    if (r)
        rc = cli_fail_err(r, &err);
    else if (!strcmp(state, "unknown"))
        rc = cli_fail(EXIT_NOTFOUND, "job %s not found (state unknown)", pos[1]);
    else if (c->json)
        printf("\"%s\"\n", state);
    else
        printf("%s\n", state);
    bullc_queue_free(q);
    return rc;
}

/* ---- workers, queues, metrics ------------------------------------------------------------ */

static void print_workers(const char *json) {
    cJSON *a = cJSON_Parse(json);
    printf("%-8s %-22s %-8s %-8s %s\n", "ID", "ADDR", "AGE", "IDLE", "NAME");
    for (cJSON *w = a ? a->child : NULL; w; w = w->next) {
        const char *f[] = {"id", "addr", "age", "idle", "rawname"};
        const char *v[5];
        for (int i = 0; i < 5; i++) {
            cJSON *x = cJSON_GetObjectItemCaseSensitive(w, f[i]);
            v[i] = cJSON_IsString(x) ? x->valuestring : "";
        }
        printf("%-8s %-22s %-8s %-8s %s\n", v[0], v[1], v[2], v[3], v[4]);
    }
    cJSON_Delete(a);
}

int cmd_workers(cli *c) {
    const char *pos[1] = {0};
    bullc_queue *q;
    int rc = open_verb(c, 1, "workers QUEUE", pos, &q);
    if (rc) return rc;
    bullc_error err = {0};
    char *json = NULL;
    int r = bullc_queue_get_workers(q, &json, &err);
    return json_result(c, q, r, &err, json, print_workers);
}

int cmd_queues(cli *c) {
    cli_flag flags[] = {{NULL, false, NULL, 0}};
    const char *pos[1] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 0, NULL, NULL);
    if (rc) return rc;
    bullc_redis_opts *ro = NULL;
    if ((rc = cli_redis_opts(c, &ro))) return rc;
    bullc_error err = {0};
    char *json = NULL;
    int r = bullc_queue_list(ro, c->prefix, &json, &err);
    bullc_redis_opts_free(ro);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else if (c->json) {
        print_json(json);
    } else {
        cJSON *a = cJSON_Parse(json);
        for (cJSON *n = a ? a->child : NULL; n; n = n->next) printf("%s\n", n->valuestring);
        cJSON_Delete(a);
    }
    bullc_free(json);
    return rc;
}

/* --label K=V, in the order given; a repeated K keeps its first place and
 * takes the last value, as keys of Node's globalVariables object do. */
typedef struct labels {
    const char *k[64], *v[64];
    size_t kn[64];
    int n;
} labels;

static int add_label(const char *flag, const char *value, void *data) {
    labels *l = data;
    if (strcmp(flag, "label")) return 0;
    const char *eq = strchr(value, '=');
    if (!eq || eq == value) return cli_fail(EXIT_USAGE, "--label must be KEY=VALUE, not '%s'", value);
    size_t kn = (size_t)(eq - value);
    for (int i = 0; i < l->n; i++)
        if (l->kn[i] == kn && !memcmp(l->k[i], value, kn)) {
            l->v[i] = eq + 1;
            return 0;
        }
    if (l->n == 64) return cli_fail(EXIT_USAGE, "at most 64 --label");
    l->k[l->n] = value, l->kn[l->n] = kn, l->v[l->n++] = eq + 1;
    return 0;
}

/* Node's escapePrometheusLabelValue: backslash, double quote, newline. */
static void put_label_value(const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            printf("\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", stdout);
        else
            putchar(*v);
    }
}

static double meta_count(const char *metrics_json) {
    cJSON *o = cJSON_Parse(metrics_json);
    cJSON *cnt = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "meta"), "count");
    double n = cJSON_IsNumber(cnt) ? cnt->valuedouble : 0;
    cJSON_Delete(o);
    return n;
}

/* What Node's queue.exportPrometheusMetrics(globalVariables) returns, byte
 * for byte (its ", " between labels included), and console.log's newline.
 * Its states are getJobCounts()'s keys, in their order: the queue's major's
 * (5.x has a "paused" state of its own). */
static int print_prometheus(bullc_queue *q, const labels *l, char *const m[2]) {
    char *json = NULL;
    bullc_error err = {0};
    int r = bullc_queue_get_job_counts(q, NULL, 0, &json, &err);
    if (r) return cli_fail_err(r, &err);
    cJSON *o = cJSON_Parse(json);
    bullc_free(json);
    if (!o) return cli_fail_err(BULLC_ENOMEM, NULL);
    int NSTATES = cJSON_GetArraySize(o);
    const cJSON *state = o ? o->child : NULL;
    printf("# HELP bullmq_job_count Number of jobs in the queue by state\n# TYPE bullmq_job_count gauge\n");
    for (int round = 0; round < NSTATES + 2; round++) {
        if (round == NSTATES)
            printf("# HELP bullmq_job_completed_total Total number of completed jobs\n"
                   "# TYPE bullmq_job_completed_total counter\n");
        if (round == NSTATES + 1)
            printf("# HELP bullmq_job_failed_total Total number of failed jobs\n"
                   "# TYPE bullmq_job_failed_total counter\n");
        printf("%s{queue=\"", round < NSTATES    ? "bullmq_job_count"
                              : round == NSTATES ? "bullmq_job_completed_total"
                                                 : "bullmq_job_failed_total");
        put_label_value(bullc_queue_name(q));
        putchar('"');
        if (round < NSTATES) printf(", state=\"%s\"", state->string);
        for (int i = 0; i < l->n; i++) {
            printf(", %.*s=\"", (int)l->kn[i], l->k[i]);
            put_label_value(l->v[i]);
            putchar('"');
        }
        if (round < NSTATES) {
            printf("} %.0f\n", state->valuedouble);
            state = state->next;
        } else
            printf("} %.0f\n", meta_count(m[round - NSTATES]));
    }
    cJSON_Delete(o);
    return 0;
}

int cmd_metrics(cli *c) {
    cli_flag flags[] = {{"start", true, NULL, 0},
                        {"end", true, NULL, 0},
                        {"prometheus", false, NULL, 0},
                        {"label", true, NULL, 0},
                        {NULL, false, NULL, 0}};
    const char *pos[1] = {0};
    labels l = {.n = 0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 1, add_label, &l);
    long long start = 0, end = -1;
    if (!rc && npos != 1)
        rc = cli_fail(EXIT_USAGE, "usage: bullc metrics QUEUE [--start N] [--end N] [--prometheus [--label K=V]...]");
    if (!rc && flags[3].set && !flags[2].set) rc = cli_fail(EXIT_USAGE, "--label needs --prometheus");
    if (!rc && flags[0].set) rc = cli_flag_i64(&flags[0], INT64_MIN, INT64_MAX, &start);
    if (!rc && flags[1].set) rc = cli_flag_i64(&flags[1], INT64_MIN, INT64_MAX, &end);
    if (rc) return rc;
    bullc_queue *q;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    char *m[2] = {NULL, NULL};
    static const char *const types[] = {"completed", "failed"};
    int r = 0;
    for (int i = 0; i < 2 && !r; i++) r = bullc_queue_get_metrics(q, types[i], start, end, &m[i], &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else if (flags[2].set) {
        rc = print_prometheus(q, &l, m);
    } else if (c->json) {
        printf("{\"completed\":%s,\"failed\":%s}\n", m[0], m[1]);
    } else {
        for (int i = 0; i < 2; i++) {
            cJSON *o = cJSON_Parse(m[i]);
            cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "meta");
            cJSON *cnt = cJSON_GetObjectItemCaseSensitive(meta, "count");
            cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
            printf("%-10s total %.0f; per minute, newest first:", types[i], cJSON_IsNumber(cnt) ? cnt->valuedouble : 0);
            for (cJSON *p = data ? data->child : NULL; p; p = p->next) printf(" %.0f", p->valuedouble);
            printf("\n");
            cJSON_Delete(o);
        }
    }
    bullc_free(m[0]);
    bullc_free(m[1]);
    bullc_queue_free(q);
    return rc;
}
