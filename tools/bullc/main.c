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
    case 0: return EXIT_OK;
    case BULLC_EINVAL: return EXIT_USAGE;
    case BULLC_ENOTFOUND: return EXIT_NOTFOUND;
    case BULLC_ECONN:
    case BULLC_ETIMEDOUT:
    case BULLC_EAUTH:
    case BULLC_EREDIS:
    case BULLC_EPROTO: return EXIT_REDIS;
    default: return EXIT_FAIL;
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

int main(int argc, char **argv) {
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
            *(a[2] == 'r' ? &c.redis_url : &c.prefix) = argv[++i];
        } else if (!strncmp(a, "--redis=", 8)) {
            c.redis_url = a + 8;
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
