/* SPDX-License-Identifier: MIT */
/* bullc: add jobs to and inspect BullMQ queues from the shell. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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
    {"scripts", "scripts", "Lists the embedded BullMQ scripts: name, number of keys, SHA1, size.", cmd_scripts},
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
    {"state", "state QUEUE ID",
     "Prints a job's state: waiting, active, delayed, prioritized, completed, failed or\n"
     "waiting-children (Node's queue.getJobState). A missing job (state unknown) exits 4.",
     cmd_state},
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
    {"retry", "retry QUEUE (ID | --state failed|completed [--count N])",
     "Moves a failed or completed job back to wait (Node's job.retry), or every job in that state\n"
     "(Node's queue.retryJobs).",
     cmd_retry},
    {"promote", "promote QUEUE [ID]",
     "Moves a delayed job to wait now (Node's job.promote), or every delayed job (queue.promoteJobs).", cmd_promote},
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
    {"metrics", "metrics QUEUE [--start N] [--end N]",
     "Prints the completed and failed metrics (Node's queue.getMetrics). --json: {completed, failed},\n"
     "each {meta: {count, prevTS, prevCount}, data, count}.",
     cmd_metrics},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: bullc [--redis URL] [--prefix PREFIX] [--json] VERB [ARGS]\n\n"
            "bullc %s speaks BullMQ %s's protocol (its own Lua scripts).\n\nVerbs:\n",
            bullc_version(), bullc_bullmq_version());
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) fprintf(f, "  %s\n", verbs[i].usage);
    fprintf(f, "\nGlobal flags:\n"
               "  --redis URL     redis://[user:password@]host[:port][/db] or unix:///path?db=N\n"
               "                  (default: REDIS_URL, else REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB,\n"
               "                  else 127.0.0.1:6379)\n"
               "  --prefix P      key prefix (default bull)\n"
               "  --json          machine-readable output\n"
               "  --help          help (also after a verb)\n\n"
               "Exit codes: 0 ok, 1 other failure, 2 usage or invalid input, 3 Redis unreachable or\n"
               "Redis/Lua error, 4 job not found.\n");
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
    default:
        return EXIT_FAIL;
    }
}

int cli_open_queue(cli *c, const char *name, bullc_queue **out) {
    bullc_error err = {0};
    bullc_redis_opts *ro = NULL;
    if (bullc_redis_opts_new(&ro)) return cli_fail(EXIT_FAIL, "out of memory");
    int rc = bullc_redis_opts_from_env(ro, &err);
    if (rc >= 0 && c->redis_url) rc = bullc_redis_opts_parse_url(ro, c->redis_url, &err);
    if (rc < 0) {
        bullc_redis_opts_free(ro);
        return cli_fail(EXIT_USAGE, "%s", err.message);
    }
    bullc_queue_opts qo;
    bullc_queue_opts_init(&qo);
    qo.redis = ro;
    qo.prefix = c->prefix;
    rc = bullc_queue_new(out, name, &qo, &err);
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--redis") || !strcmp(a, "--prefix")) {
            if (i + 1 >= argc) {
                free(rest);
                return cli_fail(EXIT_USAGE, "%s needs a value", a);
            }
            if (a[2] == 'r')
                c.redis_url = keep_url(argv[++i]);
            else
                c.prefix = argv[++i];
        } else if (!strncmp(a, "--redis=", 8)) {
            c.redis_url = keep_url(argv[i] + 8);
        } else if (!strncmp(a, "--prefix=", 9)) {
            c.prefix = a + 9;
        } else if (!strcmp(a, "--json")) {
            c.json = true;
        } else if (!strcmp(a, "--yes") || !strcmp(a, "-y")) {
            c.yes = true;
        } else if ((!strcmp(a, "--help") || !strcmp(a, "-h")) && n == 0) {
            help = true;
        } else if (!strcmp(a, "--version") && n == 0) {
            printf("bullc %s (BullMQ %s)\n", bullc_version(), bullc_bullmq_version());
            free(rest);
            return 0;
        } else {
            rest[n++] = argv[i];
        }
    }
    if (c.prefix && !*c.prefix) {
        free(rest);
        return cli_fail(EXIT_USAGE, "--prefix must not be empty");
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
        if (help || cli_wants_help(&c)) {
            cli_verb_usage(&verbs[i], stdout);
            rc = 0;
        } else {
            rc = verbs[i].run(&c);
        }
        free(rest);
        return rc;
    }
    cli_fail(EXIT_USAGE, "unknown verb '%s' (see bullc --help)", rest[0]);
    free(rest);
    return EXIT_USAGE;
}
