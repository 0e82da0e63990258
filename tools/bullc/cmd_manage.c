/* SPDX-License-Identifier: MIT */
/* bullc pause, resume, drain, clean, remove-orphans, obliterate, retry, promote, remove,
 * global-concurrency, global-rate-limit, rate-limit: Node's Queue and Job
 * actions. Destructive verbs need --yes (or a "y" on a terminal). */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"

/* Prints {"queue":<name>, <key>:<value JSON>} or a sentence. */
static void done(cli *c, const char *queue, const char *key, const char *value_json, const char *sentence) {
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "queue", queue);
        cJSON_AddRawToObject(o, key, value_json);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else {
        printf("%s\n", sentence);
    }
}

/* A verb that takes only QUEUE and the given flags. */
static int queue_only(cli *c, cli_flag *flags, const char **queue, const char *usage) {
    const char *pos[1] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 1, NULL, NULL);
    if (rc) return rc;
    if (npos != 1) return cli_fail(EXIT_USAGE, "usage: bullc %s", usage);
    *queue = pos[0];
    return 0;
}

static int pause_resume(cli *c, bool pause) {
    cli_flag flags[] = {{NULL, false, NULL, 0}};
    const char *name = NULL;
    int rc = queue_only(c, flags, &name, pause ? "pause QUEUE" : "resume QUEUE");
    bullc_queue *q = NULL;
    if (rc || (rc = cli_open_admin(c, name, &q))) return rc;
    bullc_error err = {0};
    int r = pause ? bullc_queue_pause(q, &err) : bullc_queue_resume(q, &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else {
        char s[300];
        snprintf(s, sizeof s, "queue %s %s", name, pause ? "paused" : "resumed");
        done(c, name, "paused", pause ? "true" : "false", s);
    }
    bullc_queue_free(q);
    return rc;
}

int cmd_pause(cli *c) { return pause_resume(c, true); }
int cmd_resume(cli *c) { return pause_resume(c, false); }

int cmd_drain(cli *c) {
    cli_flag flags[] = {{"delayed", false, NULL, 0}, {NULL, false, NULL, 0}};
    const char *name = NULL;
    int rc = queue_only(c, flags, &name, "drain QUEUE [--delayed]");
    if (rc) return rc;
    char what[300];
    snprintf(what, sizeof what, "Remove every waiting%s job of queue %s", flags[0].set ? " and delayed" : "", name);
    if ((rc = cli_confirm(c, what))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, name, &q))) return rc;
    bullc_error err = {0};
    int r = bullc_queue_drain(q, flags[0].set > 0, &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else {
        snprintf(what, sizeof what, "queue %s drained%s", name, flags[0].set ? " (delayed jobs too)" : "");
        done(c, name, "drained", "true", what);
    }
    bullc_queue_free(q);
    return rc;
}

int cmd_clean(cli *c) {
    cli_flag flags[] = {
        {"state", true, NULL, 0}, {"grace", true, NULL, 0}, {"limit", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *name = NULL;
    int rc = queue_only(c, flags, &name, "clean QUEUE --state S --grace MS [--limit N]");
    if (rc) return rc;
    static const char *const ok[] = {"completed", "failed",  "waiting",     "wait", "active",
                                     "paused",    "delayed", "prioritized", NULL};
    const char *state = flags[0].set ? flags[0].value : "completed";
    int i = 0;
    while (ok[i] && strcmp(ok[i], state)) i++;
    if (!ok[i])
        return cli_fail(EXIT_USAGE,
                        "cannot clean state '%s' (completed, failed, waiting, active, paused, delayed, prioritized)",
                        state);
    if (!flags[1].set) return cli_fail(EXIT_USAGE, "clean needs --grace MS (0: every job)");
    long long grace = 0, limit = 0;
    if ((rc = cli_flag_i64(&flags[1], 0, INT64_MAX / 2, &grace))) return rc;
    if (flags[2].set && (rc = cli_flag_i64(&flags[2], 0, INT64_MAX, &limit))) return rc;
    char what[400];
    snprintf(what, sizeof what, "Remove %s jobs of queue %s older than %lld ms", state, name, grace);
    if ((rc = cli_confirm(c, what))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, name, &q))) return rc;
    bullc_error err = {0};
    char *ids = NULL;
    int r = bullc_queue_clean(q, grace, limit, state, &ids, &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else if (c->json) {
        printf("%s\n", ids);
    } else {
        cJSON *a = cJSON_Parse(ids);
        for (cJSON *e = a ? a->child : NULL; e; e = e->next) printf("%s\n", e->valuestring);
        fprintf(stderr, "bullc: %d %s job(s) removed\n", cJSON_GetArraySize(a), state);
        cJSON_Delete(a);
    }
    bullc_free(ids);
    bullc_queue_free(q);
    return rc;
}

int cmd_remove_orphans(cli *c) {
    cli_flag flags[] = {{"count", true, NULL, 0}, {"limit", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *name = NULL;
    int rc = queue_only(c, flags, &name, "remove-orphans QUEUE [--count N] [--limit N]");
    if (rc) return rc;
    long long count = 1000, limit = 0;
    if (flags[0].set && (rc = cli_flag_i64(&flags[0], 1, INT64_MAX, &count))) return rc;
    if (flags[1].set && (rc = cli_flag_i64(&flags[1], 0, INT64_MAX, &limit))) return rc;
    char what[300];
    snprintf(what, sizeof what, "Remove the job keys of queue %s that no state references", name);
    if ((rc = cli_confirm(c, what))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, name, &q))) return rc;
    bullc_error err = {0};
    int64_t removed = 0;
    int r = bullc_queue_remove_orphaned_jobs(q, count, limit, &removed, &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else {
        char n[24];
        snprintf(n, sizeof n, "%lld", (long long)removed);
        snprintf(what, sizeof what, "queue %s: %lld orphaned job(s) removed", name, (long long)removed);
        done(c, name, "removed", n, what);
    }
    bullc_queue_free(q);
    return rc;
}

int cmd_obliterate(cli *c) {
    cli_flag flags[] = {{"force", false, NULL, 0}, {NULL, false, NULL, 0}};
    const char *name = NULL;
    int rc = queue_only(c, flags, &name, "obliterate QUEUE [--force]");
    if (rc) return rc;
    char what[300];
    snprintf(what, sizeof what, "Destroy queue %s and all its jobs%s", name, flags[0].set ? ", active ones too" : "");
    if ((rc = cli_confirm(c, what))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, name, &q))) return rc;
    bullc_error err = {0};
    int r = bullc_queue_obliterate(q, flags[0].set > 0, 0, &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else {
        snprintf(what, sizeof what, "queue %s obliterated", name);
        done(c, name, "obliterated", "true", what);
    }
    bullc_queue_free(q);
    return rc;
}

/* retry QUEUE ID | retry QUEUE --state failed|completed */
int cmd_retry(cli *c) {
    cli_flag flags[] = {{"state", true, NULL, 0}, {"count", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (rc) return rc;
    if (npos < 1 || (npos == 2) == (flags[0].set > 0))
        return cli_fail(EXIT_USAGE, "usage: bullc retry QUEUE (ID | --state failed|completed)");
    const char *state = flags[0].set ? flags[0].value : NULL;
    if (state && strcmp(state, "failed") && strcmp(state, "completed"))
        return cli_fail(EXIT_USAGE, "can only retry failed or completed jobs, not '%s'", state);
    long long count = 0;
    if (flags[1].set && (rc = cli_flag_i64(&flags[1], 1, INT64_MAX, &count))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    char msg[400];
    int r;
    if (npos == 2) {
        /* Node's job.retry(state): the job must be failed or completed */
        const char *now = NULL;
        r = bullc_queue_get_job_state(q, pos[1], &now, &err);
        if (!r && !strcmp(now, "unknown")) {
            r = BULLC_ENOTFOUND;
            snprintf(err.message, sizeof err.message, "job %s not found", pos[1]);
        } else if (!r && strcmp(now, "failed") && strcmp(now, "completed")) {
            r = BULLC_ESTATE;
            snprintf(err.message, sizeof err.message, "job %s is %s: only failed or completed jobs can be retried",
                     pos[1], now);
        }
        if (!r) r = bullc_queue_retry_job(q, pos[1], now, 0, &err);
        if (!r && c->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", pos[1]);
            cJSON_AddStringToObject(o, "retried", now);
            char *s = cJSON_PrintUnformatted(o);
            printf("%s\n", s);
            free(s);
            cJSON_Delete(o);
        } else if (!r) {
            printf("job %s (%s) moved back to wait\n", pos[1], now);
        }
    } else {
        r = bullc_queue_retry_jobs(q, state, count, 0, &err);
        snprintf(msg, sizeof msg, "%s jobs of queue %s moved back to wait", state, pos[0]);
        if (!r) {
            char v[32];
            snprintf(v, sizeof v, "\"%s\"", state);
            done(c, pos[0], "retried", v, msg);
        }
    }
    if (r) rc = cli_fail_err(r, &err);
    bullc_queue_free(q);
    return rc;
}

/* promote QUEUE [ID] */
int cmd_promote(cli *c) {
    cli_flag flags[] = {{"count", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (rc) return rc;
    if (npos < 1) return cli_fail(EXIT_USAGE, "usage: bullc promote QUEUE [ID]");
    long long count = 0;
    if (flags[0].set && (rc = cli_flag_i64(&flags[0], 1, INT64_MAX, &count))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    char msg[400];
    int r = npos == 2 ? bullc_queue_promote_job(q, pos[1], &err) : bullc_queue_promote_jobs(q, count, &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else if (npos == 2) {
        if (c->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", pos[1]);
            cJSON_AddTrueToObject(o, "promoted");
            char *s = cJSON_PrintUnformatted(o);
            printf("%s\n", s);
            free(s);
            cJSON_Delete(o);
        } else {
            printf("job %s promoted\n", pos[1]);
        }
    } else {
        snprintf(msg, sizeof msg, "every delayed job of queue %s promoted", pos[0]);
        done(c, pos[0], "promoted", "true", msg);
    }
    bullc_queue_free(q);
    return rc;
}

/* remove QUEUE ID [--keep-children] */
int cmd_remove(cli *c) {
    cli_flag flags[] = {{"keep-children", false, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (rc) return rc;
    if (npos != 2) return cli_fail(EXIT_USAGE, "usage: bullc remove QUEUE ID [--keep-children]");
    char what[400];
    snprintf(what, sizeof what, "Remove job %s of queue %s%s", pos[1], pos[0], flags[0].set ? "" : " and its children");
    if ((rc = cli_confirm(c, what))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    int r = bullc_queue_remove_job(q, pos[1], flags[0].set == 0, &err);
    if (r) {
        rc = cli_fail_err(r, &err);
    } else if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", pos[1]);
        cJSON_AddTrueToObject(o, "removed");
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else {
        printf("job %s removed\n", pos[1]);
    }
    bullc_queue_free(q);
    return rc;
}

/* global-concurrency QUEUE [N | --remove]: prints Node's getGlobalConcurrency() */
int cmd_global_concurrency(cli *c) {
    cli_flag flags[] = {{"remove", false, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (rc) return rc;
    if (npos < 1 || (npos == 2 && flags[0].set))
        return cli_fail(EXIT_USAGE, "usage: bullc global-concurrency QUEUE [N | --remove]");
    long long n = 0;
    if (npos == 2 && (rc = cli_pos_i64("N", pos[1], 1, INT64_MAX, &n))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    int r = npos == 2      ? bullc_queue_set_global_concurrency(q, n, &err)
            : flags[0].set ? bullc_queue_remove_global_concurrency(q, &err)
                           : 0;
    int64_t now = 0;
    if (!r) r = bullc_queue_get_global_concurrency(q, &now, &err);
    if (r)
        rc = cli_fail_err(r, &err);
    else if (c->json)
        now ? printf("%lld\n", (long long)now) : printf("null\n");
    else
        now ? printf("%lld\n", (long long)now) : printf("none\n");
    bullc_queue_free(q);
    return rc;
}

/* global-rate-limit QUEUE [MAX DURATION_MS | --remove]: prints Node's getGlobalRateLimit() */
int cmd_global_rate_limit(cli *c) {
    cli_flag flags[] = {{"remove", false, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[3] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 3, NULL, NULL);
    if (rc) return rc;
    if (npos == 0 || npos == 2 || (npos == 3 && flags[0].set))
        return cli_fail(EXIT_USAGE, "usage: bullc global-rate-limit QUEUE [MAX DURATION_MS | --remove]");
    long long max = 0, duration = 0;
    if (npos == 3 && ((rc = cli_pos_i64("MAX", pos[1], 1, INT64_MAX, &max)) ||
                      (rc = cli_pos_i64("DURATION_MS", pos[2], 1, INT64_MAX, &duration))))
        return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    int r = npos == 3      ? bullc_queue_set_global_rate_limit(q, max, duration, &err)
            : flags[0].set ? bullc_queue_remove_global_rate_limit(q, &err)
                           : 0;
    int64_t m = 0, d = 0;
    if (!r) r = bullc_queue_get_global_rate_limit(q, &m, &d, &err);
    if (r)
        rc = cli_fail_err(r, &err);
    else if (!m)
        printf(c->json ? "null\n" : "none\n");
    else if (c->json)
        printf("{\"max\":%lld,\"duration\":%lld}\n", (long long)m, (long long)d);
    else
        printf("%lld jobs per %lld ms\n", (long long)m, (long long)d);
    bullc_queue_free(q);
    return rc;
}

/* rate-limit QUEUE [MS]: Node's queue.rateLimit(ms); prints getRateLimitTtl() */
int cmd_rate_limit(cli *c) {
    cli_flag flags[] = {{NULL, false, NULL, 0}};
    const char *pos[2] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 2, NULL, NULL);
    if (rc) return rc;
    if (npos < 1) return cli_fail(EXIT_USAGE, "usage: bullc rate-limit QUEUE [MS]");
    long long ms = 0;
    if (npos == 2 && (rc = cli_pos_i64("MS", pos[1], 1, INT64_MAX / 2, &ms))) return rc;
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    int r = npos == 2 ? bullc_queue_rate_limit(q, ms, &err) : 0;
    int64_t ttl = 0;
    if (!r) r = bullc_queue_get_rate_limit_ttl(q, 0, &ttl, &err);
    if (r)
        rc = cli_fail_err(r, &err);
    else if (c->json)
        printf("%lld\n", (long long)ttl);
    else if (ttl > 0)
        printf("rate limited for %lld ms more\n", (long long)ttl);
    else
        printf("not rate limited\n");
    bullc_queue_free(q);
    return rc;
}
