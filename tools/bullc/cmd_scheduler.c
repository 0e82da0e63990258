/* SPDX-License-Identifier: MIT */
/* `bullc scheduler`: job schedulers (Node's upsertJobScheduler,
 * getJobScheduler, getJobSchedulers, getJobSchedulersCount,
 * removeJobScheduler). Every argument is checked before Redis is touched, so
 * invalid input writes nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "cli.h"

#define USAGE_GET "usage: bullc scheduler get QUEUE KEY"

/* An epoch-ms or an ISO 8601 date as JavaScript's Date reads it: a date
 * alone is UTC, a time needs its zone (Z or +HH:MM), which a machine's
 * local zone would otherwise change. */
static int parse_date(const char *flag, const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && !errno) {
        if (v < 0) return cli_fail(EXIT_USAGE, "--%s must not be negative", flag);
        *out = v;
        return 0;
    }
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%d", &tm);
    long long ms = 0, offset = 0;
    if (p && *p == 'T') {
        p = strptime(p + 1, "%H:%M", &tm);
        if (p && *p == ':') p = strptime(p + 1, "%S", &tm);
        if (p && *p == '.') {
            int digits = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                if (digits < 3) ms = ms * 10 + (*p - '0');
            for (; digits > 0 && digits < 3; digits++) ms *= 10;
        }
        int h, m;
        if (p && *p == 'Z')
            p++;
        else if (p && (*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &h, &m) == 2 && strlen(p) == 6) {
            offset = (*p == '-' ? -1 : 1) * (h * 60LL + m) * 60000;
            p += 6;
        } else {
            p = NULL;
        }
    }
    if (!p || *p) return cli_fail(EXIT_USAGE, "--%s must be epoch milliseconds or an ISO date (%s)", flag, s);
    *out = (long long)timegm(&tm) * 1000 + ms - offset;
    return 0;
}

static int upsert(cli *c) {
    enum { EVERY, PATTERN, TZ, LIMIT, START, END, IMMEDIATELY, OFFSET, NAME, DATA, OPTS, NFLAGS };
    cli_flag flags[NFLAGS + 1] = {[EVERY] = {"every", true, NULL, 0},
                                  [PATTERN] = {"pattern", true, NULL, 0},
                                  [TZ] = {"tz", true, NULL, 0},
                                  [LIMIT] = {"limit", true, NULL, 0},
                                  [START] = {"start-date", true, NULL, 0},
                                  [END] = {"end-date", true, NULL, 0},
                                  [IMMEDIATELY] = {"immediately", false, NULL, 0},
                                  [OFFSET] = {"offset", true, NULL, 0},
                                  [NAME] = {"name", true, NULL, 0},
                                  [DATA] = {"data", true, NULL, 0},
                                  [OPTS] = {"opts", true, NULL, 0},
                                  [NFLAGS] = {NULL, false, NULL, 0}};
    const char *pos[3] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 3, NULL, NULL);
    if (rc) return rc;
    if (npos != 3) return cli_fail(EXIT_USAGE, "usage: bullc %s", c->verb->usage);
    if (!!flags[EVERY].set == !!flags[PATTERN].set) return cli_fail(EXIT_USAGE, "give one of --every and --pattern");
    if (flags[TZ].set && !flags[PATTERN].set) return cli_fail(EXIT_USAGE, "--tz goes with --pattern");
    bullc_scheduler_opts *so = NULL;
    bullc_job_opts *jo = NULL;
    bullc_error err = {0};
    if (bullc_scheduler_opts_new(&so) || bullc_job_opts_new(&jo)) {
        bullc_scheduler_opts_free(so);
        return cli_fail(EXIT_FAIL, "out of memory");
    }
    long long v;
    if (flags[EVERY].set && !(rc = cli_flag_i64(&flags[EVERY], 1, 9007199254740991LL, &v)))
        bullc_scheduler_opts_set_every(so, v);
    if (!rc && flags[PATTERN].set &&
        bullc_scheduler_opts_set_pattern(so, flags[PATTERN].value, flags[TZ].set ? flags[TZ].value : NULL))
        rc = cli_fail(EXIT_USAGE, "--pattern and --tz must not be empty");
    if (!rc && flags[LIMIT].set && !(rc = cli_flag_i64(&flags[LIMIT], 0, 9007199254740991LL, &v)))
        bullc_scheduler_opts_set_limit(so, v);
    if (!rc && flags[OFFSET].set && !(rc = cli_flag_i64(&flags[OFFSET], 0, 9007199254740991LL, &v)))
        bullc_scheduler_opts_set_offset(so, v);
    if (!rc && flags[START].set && !(rc = parse_date("start-date", flags[START].value, &v)))
        bullc_scheduler_opts_set_start_date(so, v);
    if (!rc && flags[END].set && !(rc = parse_date("end-date", flags[END].value, &v)))
        bullc_scheduler_opts_set_end_date(so, v);
    if (!rc && flags[IMMEDIATELY].set) bullc_scheduler_opts_set_immediately(so, true);
    if (!rc && flags[OPTS].set && bullc_job_opts_merge_json(jo, flags[OPTS].value, &err) < 0)
        rc = cli_fail_opts("--opts", &err);
    bullc_queue *q = NULL;
    if (!rc) rc = cli_open_queue(c, pos[1], &q);
    char *id = NULL;
    if (!rc) {
        int r = bullc_queue_upsert_job_scheduler(q, pos[2], so, flags[NAME].set ? flags[NAME].value : NULL,
                                                 flags[DATA].set ? flags[DATA].value : NULL, jo, &id, &err);
        if (r < 0)
            rc = cli_fail_err(r, &err);
        else if (c->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "key", cJSON_CreateString(pos[2]));
            cJSON_AddItemToObject(o, "jobId", id ? cJSON_CreateString(id) : cJSON_CreateNull());
            char *out = cJSON_PrintUnformatted(o);
            if (out) printf("%s\n", out);
            free(out);
            cJSON_Delete(o);
        } else if (id)
            printf("%s\n", id);
        else
            fprintf(stderr, "bullc: nothing scheduled: the limit or the end date leaves no iteration\n");
    }
    bullc_free(id);
    bullc_queue_free(q);
    bullc_job_opts_free(jo);
    bullc_scheduler_opts_free(so);
    return rc;
}

/* One scheduler for people: "key: value" lines in Node's names. */
static void print_text(const char *json) {
    /* the JSON is the library's, one object per scheduler: printed as it is
     * but one field a line, so grep and a reader both find their way */
    int depth = 0;
    bool in_str = false;
    for (const char *p = json; *p; p++) {
        char ch = *p;
        if (in_str) {
            putchar(ch);
            if (ch == '\\' && p[1])
                putchar(*++p);
            else if (ch == '"')
                in_str = false;
            continue;
        }
        if (ch == '"') in_str = true;
        if (ch == '{' || ch == '[') depth++;
        if (ch == '}' || ch == ']') depth--;
        putchar(ch);
        if (ch == ',' && depth == 1) putchar('\n');
        if (ch == ',' && depth == 2 && json[0] == '[') putchar(' ');
    }
    putchar('\n');
}

/* The end of get and list: the error, or the JSON (--json as it is); frees
 * `json` and the queue. */
static int finish(cli *c, bullc_queue *q, int r, const bullc_error *err, char *json) {
    int rc = r ? cli_fail_err(r, err) : 0;
    if (!r && c->json)
        printf("%s\n", json);
    else if (!r)
        print_text(json);
    bullc_free(json);
    bullc_queue_free(q);
    return rc;
}

static int get(cli *c, const char *const *pos, int npos) {
    if (npos != 3) return cli_fail(EXIT_USAGE, USAGE_GET);
    bullc_queue *q;
    int rc = cli_open_admin(c, pos[1], &q);
    if (rc) return rc;
    bullc_error err = {0};
    char *json = NULL;
    int r = bullc_queue_get_job_scheduler(q, pos[2], &json, &err);
    return finish(c, q, r, &err, json);
}

static int list(cli *c) {
    cli_flag flags[] = {
        {"start", true, NULL, 0}, {"end", true, NULL, 0}, {"asc", false, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    long long start = 0, end = -1;
    if (!rc && npos != 2) rc = cli_fail(EXIT_USAGE, "usage: bullc scheduler list QUEUE [--start N] [--end N] [--asc]");
    if (!rc && flags[0].set) rc = cli_flag_i64(&flags[0], INT64_MIN, INT64_MAX, &start);
    if (!rc && flags[1].set) rc = cli_flag_i64(&flags[1], INT64_MIN, INT64_MAX, &end);
    bullc_queue *q;
    if (rc || (rc = cli_open_admin(c, pos[1], &q))) return rc;
    bullc_error err = {0};
    char *json = NULL;
    int r = bullc_queue_get_job_schedulers(q, start, end, flags[2].set > 0, &json, &err);
    return finish(c, q, r, &err, json);
}

int cmd_scheduler(cli *c) {
    const char *sub = c->argc > 1 ? c->argv[1] : "";
    if (!strcmp(sub, "upsert")) return upsert(c);
    if (!strcmp(sub, "list")) return list(c);
    cli_flag none[] = {{NULL, false, NULL, 0}};
    const char *pos[3] = {0};
    int npos, rc = cli_parse_args(c, none, pos, &npos, 3, NULL, NULL);
    if (rc) return rc;
    if (!strcmp(sub, "get")) return get(c, pos, npos);
    bool remove = !strcmp(sub, "remove"), count = !strcmp(sub, "count");
    if (!remove && !count) return cli_fail(EXIT_USAGE, "usage: bullc %s", c->verb->usage);
    if (npos != (remove ? 3 : 2))
        return cli_fail(EXIT_USAGE,
                        remove ? "usage: bullc scheduler remove QUEUE KEY" : "usage: bullc scheduler count QUEUE");
    bullc_queue *q;
    if ((rc = cli_open_admin(c, pos[1], &q))) return rc;
    bullc_error err = {0};
    int64_t n = 0;
    int r =
        remove ? bullc_queue_remove_job_scheduler(q, pos[2], &err) : bullc_queue_get_job_schedulers_count(q, &n, &err);
    if (r < 0)
        rc = cli_fail_err(r, &err);
    else if (count)
        printf("%lld\n", (long long)n);
    else if (r == 1)
        rc = cli_fail(EXIT_NOTFOUND, "no job scheduler '%s'", pos[2]);
    else if (c->json)
        printf("{\"removed\":true}\n");
    else
        printf("removed\n");
    bullc_queue_free(q);
    return rc;
}
