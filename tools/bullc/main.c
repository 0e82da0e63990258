/* SPDX-License-Identifier: MIT */
/* bullc: add jobs to and inspect BullMQ queues from the shell. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bullmq_version.h"
#include "cli.h"
#include "helptext.h"

static const verb verbs[] = {
    {"add", "add QUEUE NAME [DATA_JSON] [--opts JSON]",
     "Adds one job and prints its id. DATA_JSON defaults to {}; --opts takes Node's job options as JSON.\n"
     "An existing jobId or an open deduplication window adds nothing: the existing id is printed and a\n"
     "note goes to stderr.",
     cmd_add},
    {"add-bulk", "add-bulk QUEUE [--batch N] [--opts JSON]",
     "Reads NDJSON from stdin, one {\"name\":..., \"data\":..., \"opts\":...} per line, adds them in atomic\n"
     "batches of N (default 1000) and prints one id per line. A bad line is reported with its line\n"
     "number; its batch is not written and bullc stops (exit 2). --opts gives defaults for every line.",
     cmd_add_bulk},
    {"flow", "flow (add [FILE|-] | get QUEUE ID [--depth N] [--max-children N])",
     "add: adds a flow, a tree of jobs in Node's FlowJob shape {name, queueName, data, opts, prefix,\n"
     "children}, or an array of trees (Node's addBulk), read from FILE or stdin, in one transaction:\n"
     "the whole tree or nothing. Prints each root's id. --json: the created tree {job: {id, name,\n"
     "queueName}, children} (an array for an array). An invalid node exits 2 naming it, nothing\n"
     "written; a root's missing parent (opts.parent) exits 4.\n"
     "get: prints the tree under job ID (Node's getFlow; depth 10 and 20 children of each kind per\n"
     "node unless given), one job a line indented by depth. --json: {job, children} with each job as\n"
     "`bullc --json get` prints it. A missing job exits 4.",
     cmd_flow},
    {"deps", "deps QUEUE ID",
     "Prints a parent's dependencies (Node's job.getDependencies()): one line per child, its kind\n"
     "(processed, unprocessed, failed, ignored), key and result or failure. --json: Node's\n"
     "{processed, unprocessed, failed, ignored}. A missing job exits 4.",
     cmd_deps},
    {"remove-child-dependency", "remove-child-dependency QUEUE ID [--parent KEY]",
     "Cuts job ID loose from its parent (Node's job.removeChildDependency()): the parent no longer\n"
     "waits for it and moves on when it was the last one pending. --parent names the parent's key\n"
     "(<prefix>:<queue>:<id>; default: the job's parentKey). Prints whether a dependency was removed\n"
     "(--json: {id, removed}); none to remove is no error. A missing job or parent exits 4.",
     cmd_remove_child_dependency},
    {"remove-unprocessed-children", "remove-unprocessed-children QUEUE ID",
     "Removes the children job ID still waits for, with their own children (Node's\n"
     "job.removeUnprocessedChildren()); completed, failed and active ones stay. A missing job exits 4.\n"
     "Destructive: asks on a terminal, else needs --yes.",
     cmd_remove_unprocessed_children},
    {"scripts", "scripts",
     "Lists the embedded BullMQ scripts: name, number of keys, SHA1, size (--bullmq-version 5: 5.x's).", cmd_scripts},
    {"counts", "counts QUEUE",
     "Prints the number of jobs per state. --json: {waiting, active, delayed, prioritized, completed,\n"
     "failed, paused, waiting-children}, as Node's queue.getJobCounts(those states).",
     cmd_counts},
    {"jobs", "jobs QUEUE [--state S[,S...]] [--start N] [--end N] [--asc]",
     "Lists the jobs in the given states (Node's queue.getJobs; default: every state but paused), newest\n"
     "first unless --asc, entries START to END of each state (default 0 to -1: all). --json: an array\n"
     "of jobs as `bullc get --json` prints them. An unknown state exits 2.",
     cmd_jobs},
    {"get", "get QUEUE ID",
     "Prints one job (Node's queue.getJob). --json: {id, name, data, opts, progress, attemptsMade,\n"
     "attemptsStarted, stalledCounter, timestamp, processedOn, finishedOn, returnvalue, failedReason,\n"
     "stacktrace, delay, priority, ...} with JSON fields parsed. A missing job exits 4.",
     cmd_get},
    {"logs", "logs QUEUE ID [--start N] [--end N] [--desc]",
     "Prints a job's log lines, oldest first (Node's queue.getJobLogs). --json: {logs, count}.\n"
     "A missing job exits 4.",
     cmd_logs},
    {"clear-logs", "clear-logs QUEUE ID [--keep N]",
     "Clears a job's log lines, keeping the last N (default 0: none) (Node's job.clearLogs(keepLogs)).\n"
     "A missing job exits 4. Destructive: asks on a terminal, else needs --yes.",
     cmd_clear_logs},
    {"state", "state QUEUE ID",
     "Prints a job's state: waiting, active, delayed, prioritized, completed, failed or\n"
     "waiting-children (Node's queue.getJobState). A missing job (state unknown) exits 4.",
     cmd_state},
    {"wait", "wait QUEUE ID [--timeout MS]",
     "Waits until job ID completes or fails (Node's job.waitUntilFinished) and prints its return value as\n"
     "JSON; a failed job exits 1 with its failed reason, no end within MS milliseconds (default: no\n"
     "limit) exits 1 with Node's timeout message, a missing job exits 4.",
     cmd_wait},
    {"cancel", "cancel QUEUE ID [--reason R] [--timeout MS]",
     "Cancels job ID in the bullc worker (bullc-worker, or a program with a cancel listener) that\n"
     "processes it (Node's worker.cancelJob(id, reason), from another process): the job's processor is\n"
     "told, an exec command gets SIGTERM, and the job fails with R (default \"This operation was\n"
     "aborted\") as its processor ends it. Exits 0 once that worker answered, 4 when the job does not\n"
     "exist or is not being processed, 1 when no bullc worker holding it answered within MS (default\n"
     "5000) milliseconds (a Node worker holds it, or its processor returned).",
     cmd_cancel},
    {"pause", "pause QUEUE", "Pauses the queue for every worker (Node's queue.pause).", cmd_pause},
    {"resume", "resume QUEUE", "Resumes a paused queue (Node's queue.resume).", cmd_resume},
    {"drain", "drain QUEUE [--delayed]",
     "Removes every waiting and prioritized job, delayed ones too with --delayed (Node's queue.drain).\n"
     "Destructive: asks on a terminal, else needs --yes.",
     cmd_drain},
    {"clean", "clean QUEUE --state S --grace MS [--limit N]",
     "Removes the jobs in state S (completed, failed, waiting, active, paused, delayed, prioritized;\n"
     "default completed) older than MS milliseconds, at most N (Node's queue.clean), and prints their\n"
     "ids. Destructive: asks on a terminal, else needs --yes.",
     cmd_clean},
    {"obliterate", "obliterate QUEUE [--force]",
     "Destroys the queue: every job and key (Node's queue.obliterate). Refused while jobs are active\n"
     "unless --force. Destructive: asks on a terminal, else needs --yes.",
     cmd_obliterate},
    {"remove-orphans", "remove-orphans QUEUE [--count N] [--limit N]",
     "Removes job hashes and their keys that no state of the queue references (what BullMQ 5.66.6's\n"
     "removal-by-age bug left behind; Node's queue.removeOrphanedJobs): scans N keys at a time (default\n"
     "1000), stops after --limit jobs, and prints how many it removed. Destructive: asks on a terminal,\n"
     "else needs --yes.",
     cmd_remove_orphans},
    {"retry", "retry QUEUE (ID | --state failed|completed [--count N])",
     "Moves a failed or completed job back to wait (Node's job.retry), or every job in that state\n"
     "(Node's queue.retryJobs).",
     cmd_retry},
    {"promote", "promote QUEUE [ID | --count N]",
     "Moves a delayed job to wait now (Node's job.promote), or every delayed job (queue.promoteJobs,\n"
     "N per call, default 1000).",
     cmd_promote},
    {"remove", "remove QUEUE ID [--keep-children]",
     "Removes a job and its children (Node's queue.remove). A locked (active) job is not removed\n"
     "(exit 1). Destructive: asks on a terminal, else needs --yes.",
     cmd_remove},
    {"workers", "workers QUEUE", "Lists the workers connected to the queue (Node's queue.getWorkers: CLIENT LIST).",
     cmd_workers},
    {"events", "events QUEUE [--from ID] [--follow]",
     "Prints the queue's events, one per line (--json: {id, event, ...fields as stored}): those after\n"
     "ID (default: all), then exits. --follow keeps listening (new events only unless --from) until\n"
     "SIGINT or SIGTERM, and exits 0.",
     cmd_events},
    {"queues", "queues", "Lists the queues under the prefix (keys <prefix>:*:meta and <prefix>:*:id).", cmd_queues},
    {"global-concurrency", "global-concurrency QUEUE [N | --remove]",
     "Sets (N), removes or prints the queue's global concurrency (Node's setGlobalConcurrency).\n"
     "Prints the value in force: a number, or none (--json: null).",
     cmd_global_concurrency},
    {"global-rate-limit", "global-rate-limit QUEUE [MAX DURATION_MS | --remove]",
     "Sets, removes or prints the queue's global rate limit (Node's setGlobalRateLimit).\n"
     "--json: {max, duration} or null.",
     cmd_global_rate_limit},
    {"rate-limit", "rate-limit QUEUE [MS]",
     "Rate-limits the queue now for MS milliseconds (Node's queue.rateLimit); prints the limiter's TTL\n"
     "(Node's getRateLimitTtl; --json: the number).",
     cmd_rate_limit},
    {"cron", "cron next PATTERN [--tz ZONE] [--from MS|ISO] [--count N]",
     "Prints the next N (default 1) fire times of a cron expression after --from (default now), one\n"
     "epoch-ms per line (--json: an array), as Node BullMQ computes them (cron-parser 5.10.3). --tz\n"
     "takes an IANA zone (default: TZ, else /etc/localtime); --from epoch ms or an ISO 8601 time with\n"
     "Z or an offset. An invalid pattern, zone or option exits 2; no further fire time exits 1.\n"
     "Talks to no Redis.",
     cmd_cron},
    {"metrics", "metrics QUEUE [--start N] [--end N] [--prometheus [--label K=V]...]",
     "Prints the completed and failed metrics (Node's queue.getMetrics). --json: {completed, failed},\n"
     "each {meta: {count, prevTS, prevCount}, data, count}. --prometheus: what Node's\n"
     "queue.exportPrometheusMetrics({K: V, ...}) prints (job counts by state, completed and failed totals).",
     cmd_metrics},
    {"scheduler",
     "scheduler upsert QUEUE KEY (--every MS | --pattern CRON) [--tz ZONE] [--limit N] [--offset MS]\n"
     "  scheduler upsert ... [--start-date MS|ISO] [--end-date MS|ISO] [--immediately] [--name NAME] [--data JSON]\n"
     "  scheduler upsert ... [--opts JSON]\n"
     "  scheduler get QUEUE KEY | list QUEUE [--start N] [--end N] [--asc] | remove QUEUE KEY | count QUEUE",
     "Job schedulers (Node's upsertJobScheduler, getJobScheduler, getJobSchedulers, removeJobScheduler,\n"
     "getJobSchedulersCount). upsert creates or replaces scheduler KEY and prints its next job's id; the\n"
     "template is --name (default KEY), --data (default {}) and --opts (Node's job options). get and list\n"
     "print Node's scheduler objects (--json: as Node returns them); get and remove exit 4 for a missing\n"
     "KEY. Dates are epoch ms or ISO 8601 (a time with its zone). Invalid input exits 2, nothing written.",
     cmd_scheduler},
    {"top", "top [QUEUE...] [--interval MS] [--count N]",
     "A live view of the queues (all under the prefix when none is named): job counts, rates of added,\n"
     "completed and failed jobs per second (from the events stream), workers, and the oldest waiting\n"
     "job's age; a new frame every --interval MS (1000) until SIGINT, or --count frames. Plain text,\n"
     "one frame after the other, when stdout is not a terminal.",
     cmd_top},
};

/* The global flags, once: the parser below takes these, --help is printed
 * from them, and tests/doc-test checks them against docs/cli.md. */
enum { G_REDIS, G_PREFIX, G_BULLMQ, G_JSON, G_YES, G_HELP, G_VERSION };
static const struct gflag {
    const char *flag, *alias, *arg, *help;
} gflags[] = {
    [G_REDIS] = {"--redis", NULL, "URL",
                 "redis://[user:password@]host[:port][/db], rediss://... (TLS),\nunix:///path?db=N, "
                 "redis+sentinel://host:port[,host:port...]/MASTER[/db]\nor redis+cluster://host:port[,host:port...] "
                 "(docs/connection.md)\n"
                 "(default: REDIS_URL, else REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_USERNAME/\n"
                 "REDIS_DB, else 127.0.0.1:6379; timeouts: REDIS_CONNECT_TIMEOUT and\n"
                 "REDIS_COMMAND_TIMEOUT, ms)"},
    [G_PREFIX] = {"--prefix", NULL, "P", "key prefix (default bull)"},
    [G_BULLMQ] = {"--bullmq-version", NULL, "5|6|auto",
                  "BullMQ major spoken to the queue (default BULLC_BULLMQ_VERSION, else auto:\n"
                  "the queue's meta.version, else 6; docs/versions.md)"},
    [G_JSON] = {"--json", NULL, NULL, "machine-readable output"},
    [G_YES] = {"--yes", "-y", NULL, "confirm a destructive verb without asking"},
    [G_HELP] = {"--help", "-h", NULL, "help (also after a verb: bullc VERB --help)"},
    [G_VERSION] = {"--version", NULL, NULL, "bullc's version and the BullMQ versions it speaks"},
};
#define NGFLAGS (int)(sizeof gflags / sizeof gflags[0])

/* The global flag `a` is (G_*), -1 if none; *value is its value when given
 * as --flag=VALUE. */
static int find_gflag(const char *a, const char **value) {
    *value = NULL;
    for (int i = 0; i < NGFLAGS; i++) {
        size_t n = strlen(gflags[i].flag);
        if (!strcmp(a, gflags[i].flag) || (gflags[i].alias && !strcmp(a, gflags[i].alias))) return i;
        if (gflags[i].arg && !strncmp(a, gflags[i].flag, n) && a[n] == '=') {
            *value = a + n + 1;
            return i;
        }
    }
    return -1;
}

static void usage(FILE *f) {
    fputs("usage: bullc", f);
    for (int i = 0; i < NGFLAGS; i++)
        if (i != G_HELP && i != G_VERSION)
            fprintf(f, " [%s%s%s]", gflags[i].flag, gflags[i].arg ? " " : "", gflags[i].arg ? gflags[i].arg : "");
    fprintf(f,
            " VERB [ARGS]\n\nbullc %s speaks BullMQ %s's and %s's protocols (their own Lua scripts).\n\n"
            "Verbs:\n",
            bullc_version(), bullc_bullmq_version(), BULLC_BULLMQ5_VERSION);
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) fprintf(f, "  %s\n", verbs[i].usage);
    fputs("\nGlobal flags (before or after the verb):\n", f);
    for (int i = 0; i < NGFLAGS; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s%s%s%s%s", gflags[i].flag, gflags[i].alias ? ", " : "",
                 gflags[i].alias ? gflags[i].alias : "", gflags[i].arg ? " " : "", gflags[i].arg ? gflags[i].arg : "");
        help_line(f, 15, head, gflags[i].help, NULL);
    }
    for (int i = 0; i < CLI_TLS_NFLAGS; i++) {
        char head[64];
        snprintf(head, sizeof head, "--%s%s%s", cli_tls_flags[i].name, cli_tls_flags[i].arg ? " " : "",
                 cli_tls_flags[i].arg ? cli_tls_flags[i].arg : "");
        help_line(f, 15, head, cli_tls_flags[i].help, NULL);
    }
    fputs("\nExit codes: 0 ok, 1 other failure (also add-bulk stopped after writing earlier batches),\n"
          "2 usage or invalid input, 3 Redis unreachable or Redis/Lua error, 4 job not found,\n"
          "5 the queue's meta.version is another BullMQ major than the one chosen (nothing written).\n",
          f);
}

int cli_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bullc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_exit_for(int rc) {
    switch (rc) {
    case 0:
        return EXIT_OK;
    case BULLC_EINVAL:
        return EXIT_USAGE;
    case BULLC_ENOTFOUND:
        return EXIT_NOTFOUND;
    case BULLC_ECONN:
    case BULLC_ETIMEDOUT:
    case BULLC_EAUTH:
    case BULLC_EREDIS:
    case BULLC_EPROTO:
        return EXIT_REDIS;
    case BULLC_EVERSION:
        return EXIT_VERSION;
    default:
        return EXIT_FAIL;
    }
}

/* On the exporter's thread: one line per outage, so the user knows why the
 * trace is missing (the command itself succeeds). */
static void export_failed(const bullc_error *err, void *data) {
    (void)data;
    fprintf(stderr, "bullc: %s\n", err->message);
}

int cli_open_tracer(cli *c) {
    bullc_error err = {0};
    bullc_tracer_opts *o = NULL;
    bool on = false;
    if (bullc_tracer_opts_new(&o)) return cli_fail(EXIT_FAIL, "out of memory");
    bullc_tracer_opts_set_service_name(o, "bullc");
    bullc_tracer_opts_set_error_cb(o, export_failed, NULL);
    int rc = bullc_tracer_opts_from_env(o, &on, &err);
    if (!rc && on) rc = bullc_tracer_new(&c->tracer, o, &err);
    bullc_tracer_opts_free(o);
    return rc ? cli_fail(rc == BULLC_EINVAL ? EXIT_USAGE : EXIT_FAIL, "OpenTelemetry: %s", err.message) : 0;
}

void cli_close_tracer(cli *c) {
    bullc_tracer_free(c->tracer);
    c->tracer = NULL;
}

int cli_open_queue(cli *c, const char *name, bullc_queue **out) {
    bullc_error err = {0};
    bullc_redis_opts *ro = NULL;
    int rc = cli_redis_opts(c, &ro);
    if (rc) return rc;
    bullc_queue_opts *qo = NULL;
    rc = bullc_queue_opts_new(&qo);
    if (!rc) rc = bullc_queue_opts_set_redis(qo, ro);
    if (!rc) rc = bullc_queue_opts_set_prefix(qo, c->prefix);
    if (!rc) rc = bullc_queue_opts_set_bullmq_version(qo, c->bullmq_version);
    if (!rc) rc = bullc_queue_opts_set_tracer(qo, c->tracer);
    if (!rc)
        rc = bullc_queue_new(out, name, qo, &err);
    else
        snprintf(err.message, sizeof err.message, "%s", bullc_strerror(rc));
    bullc_queue_opts_free(qo);
    bullc_redis_opts_free(ro);
    return rc ? cli_fail(cli_exit_for(rc), "%s", err.message) : 0;
}

bool cli_wants_help(cli *c) {
    for (int i = 1; i < c->argc; i++)
        if (!strcmp(c->argv[i], "--help") || !strcmp(c->argv[i], "-h")) return true;
    return false;
}

void cli_verb_usage(const verb *v, FILE *f) { fprintf(f, "usage: bullc %s\n\n%s\n", v->usage, v->help); }

/* The --redis URL, copied before argv's copy is masked: `ps` shows the
 * arguments, and a password must not be among them. */
static char *redis_url_copy;
static void free_url_copy(void) { free(redis_url_copy); }
static const char *keep_url(char *arg) {
    free(redis_url_copy);
    redis_url_copy = strdup(arg);
    bullc_redis_url_mask(arg);
    return redis_url_copy ? redis_url_copy : arg;
}

int main(int argc, char **argv) {
    atexit(free_url_copy);
    cli c = {0};
    /* Global flags may come before or after the verb; the rest is the verb's. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return cli_fail(EXIT_FAIL, "out of memory");
    int n = 0;
    bool help = false;
    const char *major = getenv("BULLC_BULLMQ_VERSION");
    bool major_flag = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value;
        if (!strncmp(a, "--tls-", 6) || !strncmp(a, "--sentinel", 10) || !strncmp(a, "--cluster", 9)) {
            /* --tls-NAME VALUE, --tls-NAME=VALUE, --tls-insecure, --sentinel*, --cluster */
            char name[32];
            const char *eq = strchr(a, '=');
            snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - a - 2 : (int)strlen(a) - 2), a + 2);
            cli_tls probe = {0}; /* which flag it is, without setting it */
            int t = cli_tls_set(&probe, name, NULL);
            if (t >= 0) {
                if (!cli_tls_flags[t].arg && eq) {
                    free(rest);
                    return cli_fail(EXIT_USAGE, "--%s takes no value", name);
                }
                if (!cli_tls_flags[t].arg) cli_tls_set(&c.tls, name, NULL);
                if (cli_tls_flags[t].arg && !eq && i + 1 >= argc) {
                    free(rest);
                    return cli_fail(EXIT_USAGE, "%s needs a value", a);
                }
                if (cli_tls_flags[t].arg) cli_tls_set(&c.tls, name, eq ? eq + 1 : argv[++i]);
                continue;
            }
        }
        int g = find_gflag(a, &value);
        /* after the verb, --help and --version are the verb's */
        if (g < 0 || ((g == G_HELP || g == G_VERSION) && n > 0)) {
            rest[n++] = argv[i];
            continue;
        }
        if (gflags[g].arg && !value) {
            if (i + 1 >= argc) {
                free(rest);
                return cli_fail(EXIT_USAGE, "%s needs a value", a);
            }
            value = argv[++i];
        }
        switch (g) {
        case G_REDIS:
            c.redis_url = keep_url(argv[i] + (value - argv[i])); /* the writable argv, to mask */
            break;
        case G_PREFIX:
            c.prefix = value;
            break;
        case G_BULLMQ:
            major = value;
            major_flag = true;
            break;
        case G_JSON:
            c.json = true;
            break;
        case G_YES:
            c.yes = true;
            break;
        case G_HELP:
            help = true;
            break;
        default:
            bw_print_version("bullc");
            free(rest);
            return 0;
        }
    }
    if (c.prefix && !*c.prefix) {
        free(rest);
        return cli_fail(EXIT_USAGE, "--prefix must not be empty");
    }
    if (major && (major_flag || *major) && (c.bullmq_version = bw_parse_bullmq_version(major)) < 0) {
        free(rest);
        return cli_fail(EXIT_USAGE, "%s must be 5, 6 or auto, not '%s'",
                        major_flag ? "--bullmq-version" : "BULLC_BULLMQ_VERSION", major);
    }
    if (n == 0) {
        usage(help ? stdout : stderr);
        free(rest);
        return help ? 0 : EXIT_USAGE;
    }
    c.argc = n;
    c.argv = rest;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strcmp(verbs[i].name, rest[0])) continue;
        int rc;
        c.verb = &verbs[i];
        if (help || cli_wants_help(&c)) {
            cli_verb_usage(&verbs[i], stdout);
            rc = 0;
        } else {
            rc = verbs[i].run(&c);
        }
        free(rest);
        return rc;
    }
    if (rest[0][0] == '-')
        cli_fail(EXIT_USAGE, "unknown flag '%s' (see bullc --help)", rest[0]);
    else
        cli_fail(EXIT_USAGE, "unknown verb '%s' (see bullc --help)", rest[0]);
    free(rest);
    return EXIT_USAGE;
}
