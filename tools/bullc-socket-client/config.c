/* SPDX-License-Identifier: MIT */
/* Flags. Everything is checked here, before anything connects, so that a
 * typo is an exit 2 with a reason rather than a client that runs wrong. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bullmq_version.h"
#include "helptext.h"
#include "sc.h"

/* Every flag, once: the parser accepts these and no others (and knows from
 * `arg` whether one takes a value), --help is printed from them, and
 * tests/doc-test checks them against docs/socket-client.md. A NULL flag
 * starts a section of the help. */
typedef struct sc_flag {
    const char *flag, *arg, *help;
} sc_flag;
static const sc_flag flags[] = {
    {NULL, NULL, "Feed"},
    {"--url", "URL", "ws:// or wss:// (TLS checked against the system CA store)"},
    {"--provider", "NAME", "the provider's name, stored in every job (e.g. NAMED_POWERBALL)"},
    {"--subscribe", "JSON", "a message sent after each (re)connect; repeatable, sent\nin order; never printed"},
    {"--header", "'NAME: VALUE'", "an extra handshake header (e.g. Authorization); repeatable"},
    {"--subprotocol", "NAME", "the Sec-WebSocket-Protocol to ask for"},
    {"--origin", "ORIGIN", "the Origin header"},
    {"--ca-file", "PEM", "trust these CAs (instead of the system store)"},
    {"--insecure", NULL, "wss: accept self-signed or expired certificates, any host name"},
    {"--max-message-bytes", "N", "larger messages are dropped and counted (1048576)"},
    {"--ping-interval", "DURATION", "WebSocket ping period (15s; 0: no pings)"},
    {"--dead-timeout", "DURATION", "no data and no pong for this long: reconnect (45s; 0: never)"},
    {"--connect-timeout", "DURATION", "TCP + TLS + handshake (10s)"},
    {"--reconnect-min", "DURATION", "first reconnect delay, doubled up to --reconnect-max (250ms)"},
    {"--reconnect-max", "DURATION", "(30s); each delay loses a random part of its second half"},
    {NULL, NULL, "Jobs"},
    {"--queue", "NAME", "(test-queue)"},
    {"--job-name", "NAME", "(game_data)"},
    {"--type-field", "NAME", "messageType is this field of the message when a string (type)"},
    {"--redis", "URL",
     "redis://[user:password@]host[:port][/db], rediss://... (TLS),\nunix:///path?db=N, "
     "redis+sentinel://host:port[,host:port...]/MASTER[/db]\nor redis+cluster://host:port[,host:port...] "
     "(docs/connection.md)\n"
     "(default: REDIS_URL, else REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/\n"
     "REDIS_USERNAME/REDIS_DB, else 127.0.0.1:6379; timeouts:\n"
     "REDIS_CONNECT_TIMEOUT and REDIS_COMMAND_TIMEOUT, ms)"},
    {"--prefix", "P", "key prefix (bull)"},
    {"--bullmq-version", "5|6|auto",
     "BullMQ major spoken to the queue (default BULLC_BULLMQ_VERSION, else\n"
     "auto: the queue's meta.version, else 6; docs/versions.md)"},
    {"--remove-on-complete", "JSON", "keep completed jobs: N, true, false or {\"age\":S,\"count\":N} (10)"},
    {"--remove-on-fail", "JSON", "the same for failed jobs (5)"},
    {"--job-opts", "JSON", "more job options, Node's names (merged last)"},
    {"--buffer", "N",
     "messages held while Redis is slow or away (10000); when full,\n"
     "NEW messages are dropped, counted and logged"},
    {"--batch", "N", "jobs per add (one MULTI/EXEC round trip) (100)"},
    {"--dedup-ttl", "DURATION",
     "each job gets a BullMQ deduplication id kept this long, so\n"
     "that a batch re-sent after a lost Redis reply is not added\n"
     "twice (1h; 0: off, jobs exactly as Node adds them,\n"
     "at-least-once across Redis failures)"},
    {"--require-redis", NULL, "exit 3 when Redis is unreachable at start (default: start and buffer)"},
    {"--flush-timeout", "DURATION", "at SIGINT/SIGTERM, time to add what is buffered (10s)"},
    {NULL, NULL, "Logs"},
    {"--log-file", "PATH", "(stderr); SIGHUP reopens it"},
    {"--log-format", "text|json", "(text)"},
    {"--log-level", "debug|info|warn|error", "(info)"},
    {"--stats-interval", "DURATION", "a stats line with every counter (60s; 0: only at exit)"},
    {NULL, NULL, "Program"},
    {"--help", NULL, "this help (also -h)"},
    {"--version", NULL, "bullc-socket-client's and BullMQ's versions"},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

static const sc_flag *find_flag(const char *name) {
    if (!strcmp(name, "-h")) name = "--help";
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags[i].flag && !strcmp(flags[i].flag, name)) return &flags[i];
    return NULL;
}

static void usage(FILE *f) {
    fputs("usage: bullc-socket-client --url ws[s]://HOST[:PORT]/PATH --provider NAME [flags]\n"
          "\n"
          "Reads a WebSocket feed and adds each text message to a BullMQ queue as a job (default: a\n"
          "`game_data` job on `test-queue`) with data {provider, data, timestamp, messageType}. Messages\n"
          "wait in a bounded buffer while Redis is away; the socket reconnects with backoff.\n",
          f);
    for (size_t i = 0; i < NFLAGS; i++) {
        if (!flags[i].flag) {
            fprintf(f, "\n%s:\n", flags[i].help);
            continue;
        }
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", flags[i].flag, flags[i].arg ? " " : "", flags[i].arg ? flags[i].arg : "");
        help_line(f, 26, head, flags[i].help, NULL);
        if (!strcmp(flags[i].flag, "--redis"))
            for (int t = 0; t < CLI_TLS_NFLAGS; t++) {
                snprintf(head, sizeof head, "--%s%s%s", cli_tls_flags[t].name, cli_tls_flags[t].arg ? " " : "",
                         cli_tls_flags[t].arg ? cli_tls_flags[t].arg : "");
                help_line(f, 26, head, cli_tls_flags[t].help, NULL);
            }
    }
    fputs("\n"
          "DURATION: milliseconds, or with a unit: 500ms, 15s, 2m.\n"
          "stdout gets one line per connection: \"bullc-socket-client connected url=... provider=...\".\n"
          "Exit codes: 0 stopped by a signal with everything flushed, 1 failure, 2 usage, 3 Redis refused\n"
          "the password/database at start (or unreachable, with --require-redis), 4 the flush timed out and\n"
          "buffered messages were lost.\n",
          f);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bullc-socket-client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see bullc-socket-client --help)\n", stderr);
    va_end(ap);
    return SC_EXIT_USAGE;
}

static bool parse_size(const char *s, size_t *out, size_t min) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > (1ULL << 40)) return false;
    *out = (size_t)v;
    return true;
}

static bool parse_duration(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return false;
    double mult = 1;
    if (!strcmp(end, "") || !strcmp(end, "ms"))
        mult = 1;
    else if (!strcmp(end, "s"))
        mult = 1000;
    else if (!strcmp(end, "m"))
        mult = 60000;
    else
        return false;
    v *= mult;
    if (v > 1e12) return false;
    *out = (int64_t)v;
    return true;
}

static bool valid_json(const char *s) {
    cJSON *j = cJSON_ParseWithOpts(s, NULL, 1);
    cJSON_Delete(j);
    return j != NULL;
}

/* Where a JSON text stops parsing, as a byte offset: the message can point
 * at the error without showing the text, which may hold a token. */
static size_t json_error_at(const char *s) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(s, &end, 1);
    cJSON_Delete(j);
    return end && end >= s ? (size_t)(end - s) : 0;
}

static bool push(const char ***list, size_t *n, const char *v) {
    const char **p = realloc(*list, (*n + 1) * sizeof *p);
    if (!p) return false;
    p[(*n)++] = v;
    *list = p;
    return true;
}

/* ws[s]://host[:port][/path][?query]; userinfo is refused (lws would not
 * send it; --header carries credentials). */
static int parse_url(sc_url *u, const char *text) {
    const char *p;
    if (!strncmp(text, "ws://", 5))
        u->tls = false, p = text + 5;
    else if (!strncmp(text, "wss://", 6))
        u->tls = true, p = text + 6;
    else
        return fail("--url must start with ws:// or wss://");
    size_t alen = strcspn(p, "/?#");
    if (memchr(p, '@', alen)) return fail("--url: user:password@ is not supported; use --header");
    const char *host = p, *hend, *port = NULL;
    if (*p == '[') {
        hend = memchr(p, ']', alen);
        if (!hend) return fail("--url: unterminated [IPv6 address]");
        host = p + 1;
        if (hend + 1 < p + alen) {
            if (hend[1] != ':') return fail("--url: bad port");
            port = hend + 2;
        }
    } else {
        hend = memchr(p, ':', alen);
        if (hend)
            port = hend + 1;
        else
            hend = p + alen;
    }
    if (hend == host) return fail("--url: no host");
    u->port = u->tls ? 443 : 80;
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);
        if (end != p + alen || v <= 0 || v > 65535) return fail("--url: bad port");
        u->port = (int)v;
    }
    const char *rest = p + alen;
    size_t rlen = strcspn(rest, "#"); /* a fragment is never sent */
    size_t qoff = strcspn(rest, "?#");
    int hlen = (int)(hend - host);
    bool default_port = u->port == (u->tls ? 443 : 80);
    bool v6 = *p == '[';
    size_t cap = strlen(text) + 32;
    u->host = malloc(cap);
    u->path = malloc(cap);
    u->host_header = malloc(cap);
    u->display = malloc(cap);
    if (!u->host || !u->path || !u->host_header || !u->display) return fail("out of memory");
    snprintf(u->host, cap, "%.*s", hlen, host);
    snprintf(u->path, cap, "%s%.*s", *rest == '/' ? "" : "/", (int)rlen, rest);
    if (default_port)
        snprintf(u->host_header, cap, "%s%.*s%s", v6 ? "[" : "", hlen, host, v6 ? "]" : "");
    else
        snprintf(u->host_header, cap, "%s%.*s%s:%d", v6 ? "[" : "", hlen, host, v6 ? "]" : "", u->port);
    /* the query often carries an API key: logs show that there is one, not what */
    snprintf(u->display, cap, "%s://%s%s%.*s%s", u->tls ? "wss" : "ws", u->host_header, *rest == '/' ? "" : "/",
             (int)(qoff < rlen ? qoff : rlen), rest, qoff < rlen ? "?..." : "");
    return 0;
}

void sc_config_free(sc_config *cfg) {
    free((char *)cfg->redis_url); /* the copy made by set_value */
    free(cfg->subscribe);
    free(cfg->headers);
    free(cfg->url.host);
    free(cfg->url.path);
    free(cfg->url.host_header);
    free(cfg->url.display);
    memset(cfg, 0, sizeof *cfg);
}

static int set_value(sc_config *c, const char *flag, const char *v) {
    size_t z;
    int64_t d;
#define IS(f) (!strcmp(flag, f))
#define DURATION(f, field)                                                         \
    if (IS(f)) {                                                                   \
        if (!parse_duration(v, &d)) return fail("%s: bad duration '%s'", flag, v); \
        c->field = d;                                                              \
        return 0;                                                                  \
    }
    if (IS("--url"))
        c->url_text = v;
    else if (IS("--provider"))
        c->provider = v;
    else if (IS("--subscribe")) {
        /* subscribe messages carry tokens (socket-client.md: never logged) */
        if (!valid_json(v))
            return fail(
                "--subscribe: not valid JSON (stops at byte %zu of %zu; the text is not shown, as it may hold a "
                "token)",
                json_error_at(v), strlen(v));
        if (!push(&c->subscribe, &c->nsubscribe, v)) return fail("out of memory");
    } else if (IS("--header")) {
        const char *colon = strchr(v, ':');
        if (!colon || colon == v || colon - v > 100 || strpbrk(v, "\r\n"))
            return fail("--header: expected 'Name: value' (the text is not shown, as it may hold a credential)");
        if (!push(&c->headers, &c->nheaders, v)) return fail("out of memory");
    } else if (IS("--subprotocol"))
        c->subprotocol = v;
    else if (IS("--origin"))
        c->origin = v;
    else if (IS("--ca-file"))
        c->ca_file = v;
    else if (IS("--queue"))
        c->queue = v;
    else if (IS("--job-name"))
        c->job_name = v;
    else if (IS("--type-field"))
        c->type_field = v;
    else if (IS("--redis")) {
        /* keep a copy and mask the argument in place: `ps` shows argv */
        char *copy = strdup(v);
        if (!copy) return fail("out of memory");
        bullc_redis_url_mask((char *)v);
        free((char *)c->redis_url); /* given twice: the last wins */
        c->redis_url = copy;
    } else if (IS("--prefix"))
        c->prefix = v;
    else if (IS("--bullmq-version")) {
        if ((c->bullmq_version = bw_parse_bullmq_version(v)) < 0)
            return fail("--bullmq-version must be 5, 6 or auto, not '%s'", v);
    } else if (IS("--remove-on-complete"))
        c->remove_on_complete = v;
    else if (IS("--remove-on-fail"))
        c->remove_on_fail = v;
    else if (IS("--job-opts"))
        c->job_opts = v;
    else if (IS("--buffer")) {
        if (!parse_size(v, &z, 1)) return fail("--buffer: expected a positive number, got '%s'", v);
        c->buffer_size = z;
    } else if (IS("--batch")) {
        if (!parse_size(v, &z, 1) || z > 10000) return fail("--batch: expected 1..10000, got '%s'", v);
        c->batch = z;
    } else if (IS("--max-message-bytes")) {
        if (!parse_size(v, &z, 1) || z > (1u << 30)) return fail("--max-message-bytes: expected 1..2^30, got '%s'", v);
        c->max_message_bytes = z;
    } else if (IS("--log-file"))
        c->log_file = v;
    else if (IS("--log-format")) {
        if (!strcmp(v, "text"))
            c->log_format = TLOG_TEXT;
        else if (!strcmp(v, "json"))
            c->log_format = TLOG_JSON;
        else
            return fail("--log-format: text or json, not '%s'", v);
    } else if (IS("--log-level")) {
        if ((c->log_level = tlog_level_parse(v)) < 0) return fail("--log-level: debug, info, warn or error");
    } else {
        DURATION("--ping-interval", ping_interval_ms)
        DURATION("--dead-timeout", dead_timeout_ms)
        DURATION("--connect-timeout", connect_timeout_ms)
        DURATION("--reconnect-min", reconnect_min_ms)
        DURATION("--reconnect-max", reconnect_max_ms)
        DURATION("--flush-timeout", flush_timeout_ms)
        DURATION("--stats-interval", stats_interval_ms)
        DURATION("--dedup-ttl", dedup_ttl_ms)
        return fail("unknown flag %s", flag);
    }
    return 0;
#undef IS
#undef DURATION
}

int sc_config_parse(sc_config *c, int argc, char **argv) {
    memset(c, 0, sizeof *c);
    c->queue = "test-queue";
    c->job_name = "game_data";
    c->type_field = "type";
    c->remove_on_complete = "10";
    c->remove_on_fail = "5";
    c->buffer_size = 10000;
    c->batch = 100;
    c->max_message_bytes = 1u << 20;
    c->ping_interval_ms = 15000;
    c->dead_timeout_ms = 45000;
    c->connect_timeout_ms = 10000;
    c->reconnect_min_ms = 250;
    c->reconnect_max_ms = 30000;
    c->flush_timeout_ms = 10000;
    c->stats_interval_ms = 60000;
    c->dedup_ttl_ms = 3600000;
    c->log_level = TLOG_INFO;
    /* the environment's major first: --bullmq-version overrides it */
    const char *env_major = getenv("BULLC_BULLMQ_VERSION");
    if (env_major && *env_major && (c->bullmq_version = bw_parse_bullmq_version(env_major)) < 0)
        return fail("BULLC_BULLMQ_VERSION must be 5, 6 or auto, not '%s'", env_major);
    for (int i = 1; i < argc; i++) {
        char flag[64];
        const char *a = argv[i], *v = NULL, *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) && strcmp(a, "-h")) return fail("unexpected argument '%s'", a);
        if (eq && eq - a < (long)sizeof flag) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
        }
        cli_tls probe = {0};
        int ti = cli_tls_set(&probe, flag + 2, NULL);
        if (ti >= 0) {
            if (!cli_tls_flags[ti].arg && v) return fail("%s takes no value", flag);
            if (cli_tls_flags[ti].arg && !v && ++i >= argc) return fail("%s needs a value", flag);
            cli_tls_set(&c->tls, flag + 2, cli_tls_flags[ti].arg && !v ? argv[i] : v);
            continue;
        }
        const sc_flag *def = find_flag(flag);
        if (!def) return fail("unknown flag %s", flag);
        if (!strcmp(def->flag, "--help")) {
            usage(stdout);
            return -1;
        }
        if (!strcmp(def->flag, "--version")) {
            bw_print_version("bullc-socket-client");
            return -1;
        }
        if (!def->arg) {
            if (v) return fail("%s takes no value", flag);
            if (!strcmp(flag, "--insecure"))
                c->insecure = true;
            else
                c->require_redis = true;
            continue;
        }
        if (!v) {
            if (i + 1 >= argc) return fail("%s needs a value", flag);
            v = argv[++i];
        }
        int rc = set_value(c, flag, v);
        if (rc) return rc;
    }
    if (!c->url_text) return fail("--url is required");
    if (!c->provider || !*c->provider) return fail("--provider is required");
    int rc = parse_url(&c->url, c->url_text);
    if (rc) return rc;
    if (!*c->queue || strchr(c->queue, ':')) return fail("--queue: a name without ':'");
    if (!*c->job_name) return fail("--job-name must not be empty");
    if (!*c->type_field) return fail("--type-field must not be empty");
    if (c->prefix && !*c->prefix) return fail("--prefix must not be empty");

    if (c->dead_timeout_ms && c->dead_timeout_ms < 100) return fail("--dead-timeout must be 0 (off) or at least 100ms");
    /* a quiet feed is only known to be alive through its pongs */
    if (c->dead_timeout_ms && c->ping_interval_ms >= c->dead_timeout_ms)
        return fail("--ping-interval must be shorter than --dead-timeout");
    if (c->connect_timeout_ms < 1000) return fail("--connect-timeout must be at least 1s");
    if (c->reconnect_min_ms < 1 || c->reconnect_max_ms < c->reconnect_min_ms)
        return fail("--reconnect-min must be > 0 and at most --reconnect-max");
    if (c->ca_file && !c->url.tls) return fail("--ca-file needs a wss:// URL");
    return 0;
}
