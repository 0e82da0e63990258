/* SPDX-License-Identifier: MIT */
/* The `bullc` command: shared declarations of its verbs. */
#ifndef BULLC_CLI_H
#define BULLC_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <bullc/bullc.h>

/* Exit codes (docs/cli.md). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_REDIS = 3, EXIT_NOTFOUND = 4 };

typedef struct cli {
    const char *redis_url; /* --redis */
    const char *prefix;    /* --prefix */
    bool json;             /* --json */
    bool yes;              /* --yes */
    int argc;              /* the verb's own arguments (verb first) */
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
/* Opens the queue named on the command line with the global flags. */
int cli_open_queue(cli *c, const char *name, bullc_queue **out);
/* True when argv[i] is --help / -h. */
bool cli_wants_help(cli *c);
void cli_verb_usage(const verb *v, FILE *f);

int cmd_add(cli *c);
int cmd_add_bulk(cli *c);
int cmd_scripts(cli *c);

#endif
