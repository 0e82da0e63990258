/* SPDX-License-Identifier: MIT */
/* The `bullc` command: shared declarations of its verbs. */
#ifndef BULLC_CLI_H
#define BULLC_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <bullc/bullc.h>

#include "tls_flags.h"

/* Exit codes (docs/cli.md). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_REDIS = 3, EXIT_NOTFOUND = 4, EXIT_VERSION = 5 };

typedef struct cli {
    const char *redis_url;   /* --redis */
    cli_tls tls;             /* --tls-* */
    const char *prefix;      /* --prefix */
    int bullmq_version;      /* --bullmq-version or BULLC_BULLMQ_VERSION: 5, 6, 0 (auto) */
    bool json;               /* --json */
    bool yes;                /* --yes */
    bullc_tracer *tracer;    /* add, add-bulk with OTEL_* set: their spans */
    const struct verb *verb; /* the verb being run; its usage names every flag it takes */
    int argc;                /* the verb's own arguments (verb first) */
    char **argv;
} cli;

typedef struct verb {
    const char *name;
    const char *usage;
    const char *help;
    int (*run)(cli *c);
} verb;

/* Prints "bullc: <message>" on stderr; returns `code`. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit code for a bullc error code. */
int cli_exit_for(int bullc_code);
/* Starts c->tracer when the OTEL_* variables configure tracing (else leaves
 * it NULL); 0 or an exit code. cli_open_queue hands it to the queue;
 * cli_close_tracer exports what is left and frees it. */
int cli_open_tracer(cli *c);
void cli_close_tracer(cli *c);
/* Opens the queue named on the command line with the global flags. */
int cli_open_queue(cli *c, const char *name, bullc_queue **out);
/* True when argv[i] is --help / -h. */
bool cli_wants_help(cli *c);
void cli_verb_usage(const verb *v, FILE *f);

int cmd_add(cli *c);
int cmd_add_bulk(cli *c);
int cmd_scripts(cli *c);
int cmd_flow(cli *c);
int cmd_deps(cli *c);
int cmd_remove_child_dependency(cli *c);
int cmd_remove_unprocessed_children(cli *c);

/* ---- admin and events verbs (cmd_admin.c, cmd_manage.c, cmd_events.c) ---- */
/* A verb's flag: `--name` alone, or `--name VALUE` / `--name=VALUE` when
 * `takes_value`. `value` / `set` are filled by cli_parse_args; a repeated
 * flag keeps its last value and counts every use. */
typedef struct cli_flag {
    const char *name;
    bool takes_value;
    const char *value;
    int set;
} cli_flag;
/* Splits the verb's arguments into flags (`flags` ends with a NULL name)
 * and up to `max_pos` positionals; an unknown flag or too many positionals
 * is a usage error (exit 2). For a repeated value flag, `each` (may be NULL)
 * is called with every value. */
/* Whether a usage line names `--flag` (a whole flag name). */
bool cli_usage_names(const char *usage, const char *flag);
int cli_parse_args(cli *c, cli_flag *flags, const char **pos, int *npos, int max_pos,
                   int (*each)(const char *flag, const char *value, void *data), void *data);
/* A flag's value as a whole number in [min, max]; a usage error otherwise. */
int cli_flag_i64(const cli_flag *f, long long min, long long max, long long *out);
/* A positional argument as a whole number in [min, max]; a usage error otherwise. */
int cli_pos_i64(const char *what, const char *s, long long min, long long max, long long *out);
/* The connection settings of the global flags (--redis, then the environment). */
int cli_redis_opts(cli *c, bullc_redis_opts **out);
/* Opens a queue for inspection or administration: no meta write. */
int cli_open_admin(cli *c, const char *name, bullc_queue **out);
/* Confirms a destructive verb: --yes, or "y" typed on a terminal; otherwise
 * nothing may be changed and the verb exits 2 (the returned code). */
int cli_confirm(cli *c, const char *what);
/* Prints a library failure and returns its exit code (4 for a missing job). */
int cli_fail_err(int rc, const bullc_error *err);
/* A job options error of bullc_job_opts_merge_json, said of `where` ("--opts",
 * "line 3: opts"): exit 2. */
int cli_fail_opts(const char *where, const bullc_error *err);
/* `s` for a terminal (malloc'd): control characters (C0, DEL, C1), which
 * could forge lines or send escape sequences, and backslashes written as
 * escapes (\n, \x1b, \u009b, \\). */
char *cli_printable(const char *s);
/* Writes `ms` since the epoch as "2024-05-01T12:00:00.000Z" into buf. */
const char *cli_iso_time(double ms, char *buf, size_t size);

int cmd_counts(cli *c);
int cmd_jobs(cli *c);
int cmd_get(cli *c);
int cmd_logs(cli *c);
int cmd_clear_logs(cli *c);
int cmd_state(cli *c);
int cmd_wait(cli *c);
int cmd_cancel(cli *c);
int cmd_workers(cli *c);
int cmd_queues(cli *c);
int cmd_metrics(cli *c);
int cmd_top(cli *c); /* cmd_top.c */
int cmd_pause(cli *c);
int cmd_resume(cli *c);
int cmd_drain(cli *c);
int cmd_clean(cli *c);
int cmd_obliterate(cli *c);
int cmd_remove_orphans(cli *c);
int cmd_retry(cli *c);
int cmd_promote(cli *c);
int cmd_remove(cli *c);
int cmd_global_concurrency(cli *c);
int cmd_global_rate_limit(cli *c);
int cmd_rate_limit(cli *c);
int cmd_events(cli *c);
/* cmd_scheduler.c */
int cmd_scheduler(cli *c);
/* cmd_cron.c */
int cmd_cron(cli *c);

#endif
