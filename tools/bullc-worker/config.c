/* SPDX-License-Identifier: MIT */
/* Configuration: command-line flags and the --config JSON file, merged into
 * one bw_queue_cfg per queue. One table describes every worker option, so
 * that a flag and its config-file key are parsed and checked alike. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bullmq_version.h"
#include "bw.h"
#include "helptext.h"

/* O_MS_POS: a duration the worker cannot run with at 0 (a lock of 0 ms, a
 * stalled check every 0 ms); O_MS: 0 means none. */
enum { O_POSINT, O_INT, O_MS, O_MS_POS, O_COUNT, O_SECONDS, O_BOOL, O_KEEP, O_STR, O_MAJOR };

static int set_keep_complete(bullc_worker_opts *o, const char *json);
static int set_keep_fail(bullc_worker_opts *o, const char *json);

/* The bullc_worker_opts setter of an option, by its table type (the
 * compiler checks each against the type). */
typedef union wset {
    int (*i)(bullc_worker_opts *, int);          /* O_POSINT, O_INT, O_MAJOR */
    int (*i64)(bullc_worker_opts *, int64_t);    /* O_MS, O_MS_POS, O_COUNT */
    int (*d)(bullc_worker_opts *, double);       /* O_SECONDS */
    int (*b)(bullc_worker_opts *, bool);         /* O_BOOL */
    int (*s)(bullc_worker_opts *, const char *); /* O_KEEP (the JSON text), O_STR */
} wset;

typedef struct optdef {
    const char *flag; /* without the leading "--" */
    const char *key;  /* config-file key; "a.b" is key b of object a */
    int type;
    size_t off; /* in bw_settings */
    wset set;   /* NULL: not a bullc_worker_opts option, or the limiter (one setter of two values) */
    const char *arg, *help;
} optdef;

#define OPT(flag, key, type, field, u, setter, arg, help) \
    { flag, key, type, offsetof(bw_settings, field), {.u = setter}, arg, help }
static const optdef opts[] = {
    OPT("concurrency", "concurrency", O_POSINT, concurrency, i, bullc_worker_opts_set_concurrency, "N",
        "jobs processed at once (1)"),
    OPT("lock-duration", "lockDuration", O_MS_POS, lock_duration, i64, bullc_worker_opts_set_lock_duration, "MS",
        "job lock time to live (30000)"),
    OPT("lock-renew-time", "lockRenewTime", O_MS, lock_renew_time, i64, bullc_worker_opts_set_lock_renew_time, "MS",
        "lock renewal period (lock-duration / 2)"),
    OPT("stalled-interval", "stalledInterval", O_MS_POS, stalled_interval, i64, bullc_worker_opts_set_stalled_interval,
        "MS", "stalled-jobs check period (30000)"),
    OPT("max-stalled-count", "maxStalledCount", O_INT, max_stalled_count, i, bullc_worker_opts_set_max_stalled_count,
        "N", "stalls allowed before a job fails (1)"),
    OPT("drain-delay", "drainDelay", O_SECONDS, drain_delay, d, bullc_worker_opts_set_drain_delay, "S",
        "longest blocking wait on an empty queue, seconds (5)"),
    OPT("limiter-max", "limiter.max", O_COUNT, limiter_max, i64, NULL, "N", "rate limit: jobs per window"),
    OPT("limiter-duration", "limiter.duration", O_MS, limiter_duration, i64, NULL, "MS", "rate limit window"),
    OPT("remove-on-complete", "removeOnComplete", O_KEEP, remove_on_complete, s, set_keep_complete, "JSON",
        "keep completed jobs: true (remove), false, N or {\"age\":S,\"count\":N}"),
    OPT("remove-on-fail", "removeOnFail", O_KEEP, remove_on_fail, s, set_keep_fail, "JSON", "the same for failed jobs"),
    OPT("name", "name", O_STR, name, s, bullc_worker_opts_set_name, "NAME",
        "worker name (stored in the job's processedBy)"),
    OPT("skip-stalled-check", "skipStalledCheck", O_BOOL, skip_stalled_check, b,
        bullc_worker_opts_set_skip_stalled_check, NULL, "do not run the stalled-jobs check"),
    OPT("skip-lock-renewal", "skipLockRenewal", O_BOOL, skip_lock_renewal, b, bullc_worker_opts_set_skip_lock_renewal,
        NULL, "do not renew job locks"),
    OPT("max-started-attempts", "maxStartedAttempts", O_COUNT, max_started_attempts, i64,
        bullc_worker_opts_set_max_started_attempts, "N", "fail a job started more than N times (0: no limit)"),
    OPT("maximum-rate-limit-delay", "maximumRateLimitDelay", O_MS_POS, max_rate_limit_delay, i64,
        bullc_worker_opts_set_maximum_rate_limit_delay, "MS", "longest wait when rate limited (30000)"),
    OPT("metrics-max-data-points", "metrics.maxDataPoints", O_COUNT, metrics_max_data_points, i64,
        bullc_worker_opts_set_metrics, "N", "record Node's per-minute metrics, keeping N points"),
    OPT("prefix", "prefix", O_STR, prefix, s, bullc_worker_opts_set_prefix, "P", "key prefix (bull)"),
    OPT("bullmq-version", "bullmqVersion", O_MAJOR, bullmq_version, i, bullc_worker_opts_set_bullmq_version, "5|6|auto",
        "BullMQ major spoken to the queue (auto: its meta.version's, else 6;\nalso BULLC_BULLMQ_VERSION); "
        "docs/versions.md"),
    OPT("timeout", "timeout", O_MS, timeout, i64, NULL, "MS",
        "fail a job still running after MS ms (0: none); an exec command is killed"),
    OPT("kill-grace", "killGrace", O_MS, kill_grace, i64, NULL, "MS", "exec: delay between SIGTERM and SIGKILL (5000)"),
    OPT("exec-children", "execChildren", O_POSINT, exec_children, i, NULL, "N",
        "exec-persistent: N children shared by the concurrency slots, each\n"
        "holding up to concurrency/N jobs (1..concurrency; default: one per\nslot)"),
};
#undef OPT
#define NOPTS (sizeof opts / sizeof opts[0])

static size_t type_size(int type) {
    switch (type) {
    case O_POSINT:
    case O_INT:
    case O_MAJOR:
        return sizeof(int);
    case O_SECONDS:
        return sizeof(double);
    case O_BOOL:
        return sizeof(bool);
    case O_KEEP:
    case O_STR:
        return sizeof(const char *);
    default:
        return sizeof(int64_t);
    }
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bullc-worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see bullc-worker --help)\n", stderr);
    va_end(ap);
    return BW_EXIT_USAGE;
}

static void *own(bw_config *cfg, void *p) {
    if (!p) return NULL;
    if (cfg->nowned == cfg->owned_cap) {
        size_t cap = cfg->owned_cap ? cfg->owned_cap * 2 : 32;
        void **n = realloc(cfg->owned, cap * sizeof *n);
        if (!n) {
            free(p);
            return NULL;
        }
        cfg->owned = n;
        cfg->owned_cap = cap;
    }
    return cfg->owned[cfg->nowned++] = p;
}

void bw_config_free(bw_config *cfg) {
    for (size_t i = 0; i < cfg->nowned; i++) free(cfg->owned[i]);
    free(cfg->owned);
    cJSON_Delete(cfg->file_json);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- values ----------------------------------------------------------------- */

static bool parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

/* Stores a value of option opts[i] into `s`: `text` from a flag, or `json`
 * from the config file; `where` names it in messages. 0 or BW_EXIT_USAGE. */
static int set_value(bw_config *cfg, bw_settings *s, size_t i, const char *text, const cJSON *json, const char *where) {
    const optdef *d = &opts[i];
    char *field = (char *)s + d->off;
    int64_t v = 0;
    switch (d->type) {
    case O_POSINT:
    case O_INT:
    case O_MS:
    case O_MS_POS:
    case O_COUNT:
        if (json) {
            if (!cJSON_IsNumber(json) || json->valuedouble != floor(json->valuedouble) ||
                fabs(json->valuedouble) > 9e15)
                return fail("%s must be an integer", where);
            v = (int64_t)json->valuedouble;
        } else if (!parse_i64(text, &v)) {
            return fail("%s must be an integer, not '%s'", where, text);
        }
        int min = d->type == O_POSINT || d->type == O_MS_POS;
        if (v < min) return fail("%s must be at least %d", where, min);
        if (d->type == O_POSINT || d->type == O_INT) {
            if (v > 100000) return fail("%s must be at most 100000", where);
            *(int *)field = (int)v;
        } else {
            *(int64_t *)field = v;
        }
        break;
    case O_SECONDS: {
        double dv;
        if (json) {
            if (!cJSON_IsNumber(json)) return fail("%s must be a number of seconds", where);
            dv = json->valuedouble;
        } else {
            char *end;
            dv = strtod(text, &end);
            if (end == text || *end) return fail("%s must be a number of seconds, not '%s'", where, text);
        }
        /* the library needs drainDelay > 0, as Node's worker */
        if (!(dv > 0) || dv > 1e6) return fail("%s must be more than 0 and at most 1000000 seconds", where);
        *(double *)field = dv;
        break;
    }
    case O_BOOL:
        if (json) {
            if (!cJSON_IsBool(json)) return fail("%s must be true or false", where);
            *(bool *)field = cJSON_IsTrue(json);
        } else if (!text || !strcmp(text, "true")) {
            *(bool *)field = true;
        } else if (!strcmp(text, "false")) {
            *(bool *)field = false;
        } else {
            return fail("%s takes no value, or =true / =false", where);
        }
        break;
    case O_KEEP: {
        cJSON *parsed = json ? NULL : cJSON_Parse(text);
        const cJSON *j = json ? json : parsed;
        if (!j || !(cJSON_IsBool(j) || cJSON_IsNumber(j) || cJSON_IsObject(j))) {
            cJSON_Delete(parsed);
            return fail("%s must be JSON: true, false, a count or {\"age\":SECONDS,\"count\":N}", where);
        }
        char *p = own(cfg, cJSON_PrintUnformatted(j));
        cJSON_Delete(parsed);
        if (!p) return fail("out of memory");
        *(const char **)field = p;
        break;
    }
    case O_MAJOR: {
        char num[8];
        if (json && cJSON_IsNumber(json)) snprintf(num, sizeof num, "%g", json->valuedouble);
        const char *t = json ? (cJSON_IsString(json) ? json->valuestring : cJSON_IsNumber(json) ? num : "") : text;
        int m = bw_parse_bullmq_version(t);
        if (m < 0) return fail("%s must be 5, 6 or auto, not '%s'", where, t);
        *(int *)field = m;
        break;
    }
    default:
        if (json && !cJSON_IsString(json)) return fail("%s must be a string", where);
        text = json ? json->valuestring : text;
        if (!*text) return fail("%s must not be empty", where);
        *(const char **)field = text;
    }
    s->set |= 1u << i;
    return 0;
}

/* Copies the options set in `src` over `dst`. */
static void merge(bw_settings *dst, const bw_settings *src) {
    for (size_t i = 0; i < NOPTS; i++) {
        if (!(src->set & (1u << i))) continue;
        memcpy((char *)dst + opts[i].off, (const char *)src + opts[i].off, type_size(opts[i].type));
        dst->set |= 1u << i;
    }
}

/* removeOn*: the JSON text (checked when parsed) to the typed setters. */
static int set_keep(bullc_worker_opts *o, const char *json, bool complete) {
    cJSON *j = cJSON_Parse(json);
    int rc = BULLC_EINVAL;
    if (cJSON_IsBool(j)) {
        rc = complete ? bullc_worker_opts_set_remove_on_complete(o, cJSON_IsTrue(j))
                      : bullc_worker_opts_set_remove_on_fail(o, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j) || cJSON_IsObject(j)) {
        const cJSON *count = cJSON_IsNumber(j) ? j : cJSON_GetObjectItemCaseSensitive(j, "count");
        const cJSON *age = cJSON_GetObjectItemCaseSensitive(j, "age");
        const cJSON *limit = cJSON_GetObjectItemCaseSensitive(j, "limit");
        int64_t c = cJSON_IsNumber(count) ? (int64_t)count->valuedouble : -1;
        int64_t a = cJSON_IsNumber(age) ? (int64_t)age->valuedouble : -1;
        int64_t l = cJSON_IsNumber(limit) ? (int64_t)limit->valuedouble : -1;
        rc = complete ? bullc_worker_opts_set_keep_on_complete(o, c, a, l)
                      : bullc_worker_opts_set_keep_on_fail(o, c, a, l);
    }
    cJSON_Delete(j);
    return rc;
}
static int set_keep_complete(bullc_worker_opts *o, const char *json) { return set_keep(o, json, true); }
static int set_keep_fail(bullc_worker_opts *o, const char *json) { return set_keep(o, json, false); }

int bw_settings_to_opts(const bw_settings *s, bullc_worker_opts *o, char *why, size_t size) {
    for (size_t i = 0; i < NOPTS; i++) {
        const optdef *d = &opts[i];
        if (!(s->set & (1u << i)) || !d->set.i) continue;
        const char *field = (const char *)s + d->off;
        int rc = 0;
        switch (d->type) {
        case O_POSINT:
        case O_INT:
        case O_MAJOR:
            rc = d->set.i(o, *(const int *)field);
            break;
        case O_SECONDS:
            rc = d->set.d(o, *(const double *)field);
            break;
        case O_BOOL:
            rc = d->set.b(o, *(const bool *)field);
            break;
        case O_KEEP:
        case O_STR:
            rc = d->set.s(o, *(const char *const *)field);
            break;
        default:
            rc = d->set.i64(o, *(const int64_t *)field);
        }
        if (rc) {
            snprintf(why, size, "%s", d->type == O_SECONDS ? "drainDelay must be greater than 0 (--drain-delay)" : "");
            if (!*why) snprintf(why, size, "--%s (%s): value out of range", d->flag, d->key);
            return rc;
        }
    }
    if (bullc_worker_opts_set_limiter(o, s->limiter_max, s->limiter_duration)) {
        snprintf(why, size, "limiter needs both max and duration (--limiter-max, --limiter-duration)");
        return BULLC_EINVAL;
    }
    return 0;
}

/* ---- processors ------------------------------------------------------------- */

/* A processor named on the command line, for one queue or (queue NULL) for
 * every queue that has no processor of its own. */
typedef struct cli_proc {
    const char *queue;
    const char *flag;
    bw_proc proc;
} cli_proc;

/* A --builtin-config QUEUE=JSON: the configuration of that queue's builtin,
 * wherever the builtin was named (flag or file). */
typedef struct cli_builtin_config {
    const char *queue, *json;
} cli_builtin_config;

typedef struct parse_state {
    bw_settings flags;
    const char **queues;
    size_t nqueues;
    cli_proc *procs;
    size_t nprocs;
    cli_builtin_config *bconfs;
    size_t nbconfs;
    int argc;
} parse_state;

/* "[QUEUE=]VALUE": the part before the first '=' is a queue name when it
 * holds no '/' (a path is never taken for a queue). */
static void split_queue(const char *v, const char **queue, const char **value, bw_config *cfg) {
    const char *eq = strchr(v, '=');
    *queue = NULL;
    *value = v;
    if (!eq || eq == v || memchr(v, '/', (size_t)(eq - v))) return;
    char *q = own(cfg, strndup(v, (size_t)(eq - v)));
    if (!q) return;
    *queue = q;
    *value = eq + 1;
}

static cli_proc *add_proc(bw_config *cfg, parse_state *ps, const char *flag, int kind, const char *v) {
    cli_proc *p = &ps->procs[ps->nprocs++];
    memset(p, 0, sizeof *p);
    p->flag = flag;
    p->proc.kind = kind;
    const char *value;
    split_queue(v, &p->queue, &value, cfg);
    if (kind == BW_PROC_EXEC || kind == BW_PROC_EXEC_PERSISTENT) {
        /* room for every remaining argument: --arg never reallocates */
        p->proc.argv = own(cfg, calloc((size_t)ps->argc + 1, sizeof(char *)));
        if (p->proc.argv) p->proc.argv[p->proc.argc++] = (char *)value;
    } else if (kind == BW_PROC_PLUGIN) {
        p->proc.path = value;
    } else {
        p->proc.builtin = value;
    }
    return p;
}

static int check_queue_name(const char *name, const char *where) {
    if (!*name) return fail("%s: a queue name must not be empty", where);
    if (strchr(name, ':')) return fail("%s: queue name '%s' must not contain ':'", where, name);
    return 0;
}

/* Reads "exec" / "plugin" / "pluginConfig" / "builtin" / "builtinConfig" of
 * a config object. */
static int file_proc(bw_config *cfg, const cJSON *item, const char *where, bw_proc *p) {
    const char *k = item->string;
    char w[300];
    snprintf(w, sizeof w, "%s.%s", where, k);
    if (!strcmp(k, "pluginConfig") || !strcmp(k, "builtinConfig")) {
        if (!strcmp(k, "builtinConfig") && !cJSON_IsObject(item)) return fail("%s must be an object", w);
        char *s = own(cfg, cJSON_PrintUnformatted(item));
        if (!s) return fail("out of memory");
        p->config_json = s;
        return 0;
    }
    if (p->kind != BW_PROC_NONE) return fail("%s: give one of exec, execPersistent, plugin and builtin", where);
    if (!strcmp(k, "exec") || !strcmp(k, "execPersistent")) {
        p->kind = k[4] ? BW_PROC_EXEC_PERSISTENT : BW_PROC_EXEC;
        int n = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : 1;
        if (n < 1 || !(p->argv = own(cfg, calloc((size_t)n + 1, sizeof(char *)))))
            return fail("%s must be a program or a non-empty array [program, args...]", w);
        if (cJSON_IsString(item)) {
            p->argv[p->argc++] = item->valuestring;
        } else if (cJSON_IsArray(item)) {
            for (const cJSON *a = item->child; a; a = a->next) {
                if (!cJSON_IsString(a)) return fail("%s: every element must be a string", w);
                p->argv[p->argc++] = a->valuestring;
            }
        } else {
            return fail("%s must be a program or an array [program, args...]", w);
        }
        if (!*p->argv[0]) return fail("%s: the program must not be empty", w);
        return 0;
    }
    if (!cJSON_IsString(item) || !*item->valuestring) return fail("%s must be a non-empty string", w);
    if (!strcmp(k, "plugin"))
        p->kind = BW_PROC_PLUGIN, p->path = item->valuestring;
    else
        p->kind = BW_PROC_BUILTIN, p->builtin = item->valuestring;
    return 0;
}

static int find_opt(const char *key) {
    for (size_t i = 0; i < NOPTS; i++)
        if (!strcmp(opts[i].key, key)) return (int)i;
    return -1;
}

/* A "defaults" or "queues.NAME" object: worker options and a processor. */
static int file_section(bw_config *cfg, const cJSON *obj, const char *where, bw_settings *s, bw_proc *p) {
    if (!cJSON_IsObject(obj)) return fail("%s must be an object", where);
    const char *config_key = NULL; /* pluginConfig or builtinConfig, when given */
    for (const cJSON *item = obj->child; item; item = item->next) {
        const char *k = item->string;
        char w[300];
        snprintf(w, sizeof w, "%s: %s.%s", cfg->config_path, where, k);
        bool is_config = !strcmp(k, "pluginConfig") || !strcmp(k, "builtinConfig");
        if (is_config || !strcmp(k, "exec") || !strcmp(k, "execPersistent") || !strcmp(k, "plugin") ||
            !strcmp(k, "builtin")) {
            if (is_config && config_key) return fail("%s: give pluginConfig or builtinConfig, not both", where);
            if (is_config) config_key = k;
            int rc = file_proc(cfg, item, where, p);
            if (rc) return rc;
            continue;
        }
        if (!strcmp(k, "limiter") || !strcmp(k, "metrics")) {
            if (!cJSON_IsObject(item)) return fail("%s must be an object", w);
            for (const cJSON *sub = item->child; sub; sub = sub->next) {
                char key[128];
                snprintf(key, sizeof key, "%s.%s", k, sub->string);
                int i = find_opt(key);
                if (i < 0) return fail("%s: unknown key %s in %s", cfg->config_path, key, where);
                snprintf(w, sizeof w, "%s: %s.%s", cfg->config_path, where, key);
                int rc = set_value(cfg, s, (size_t)i, NULL, sub, w);
                if (rc) return rc;
            }
            continue;
        }
        int i = find_opt(k);
        if (i < 0 || strchr(k, '.')) return fail("%s: unknown key '%s' in %s", cfg->config_path, k, where);
        int rc = set_value(cfg, s, (size_t)i, NULL, item, w);
        if (rc) return rc;
    }
    if (config_key && !strcmp(config_key, "pluginConfig") && p->kind != BW_PROC_PLUGIN)
        return fail("%s: pluginConfig needs plugin", where);
    if (config_key && !strcmp(config_key, "builtinConfig") && p->kind != BW_PROC_BUILTIN)
        return fail("%s: builtinConfig needs builtin", where);
    return 0;
}

typedef struct file_queue {
    const char *name;
    bw_settings s;
    bw_proc proc;
} file_queue;

typedef struct file_state {
    bw_settings defaults;
    bw_proc default_proc;
    file_queue *queues;
    size_t nqueues;
} file_state;

static int load_file(bw_config *cfg, file_state *fs) {
    FILE *f = fopen(cfg->config_path, "rb");
    if (!f) return fail("cannot read %s: %s", cfg->config_path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *n = realloc(text, cap);
            if (!n) {
                free(text);
                fclose(f);
                return fail("out of memory");
            }
            text = n;
        }
        size_t r = fread(text + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    bool ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        free(text);
        return fail("cannot read %s", cfg->config_path);
    }
    text[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        int line = 1;
        for (const char *c = text; end && c < end; c++) line += *c == '\n';
        free(text);
        return fail("%s: invalid JSON near line %d", cfg->config_path, line);
    }
    free(text);
    cfg->file_json = root;
    if (!cJSON_IsObject(root)) return fail("%s: the file must hold a JSON object", cfg->config_path);
    char where[300];
    for (const cJSON *item = root->child; item; item = item->next) {
        const char *k = item->string;
        snprintf(where, sizeof where, "%s: %s", cfg->config_path, k);
        cli_tls from_file = {0};
        int ti = cli_tls_set_file_key(&from_file, k, NULL);
        if (!strcmp(k, "redis")) {
            if (!cJSON_IsString(item)) return fail("%s must be a URL string", where);
            if (!cfg->redis_url) cfg->redis_url = item->valuestring, cfg->redis_url_from_file = true;
        } else if (ti >= 0) {
            /* flags win over the file */
            if (!cli_tls_flags[ti].arg) {
                if (!cJSON_IsBool(item)) return fail("%s must be true or false", where);
                if (!cli_tls_given(&cfg->tls, ti) && cJSON_IsTrue(item))
                    cli_tls_set(&cfg->tls, cli_tls_flags[ti].name, NULL);
            } else {
                if (!cJSON_IsString(item) || !*item->valuestring)
                    return fail("%s must be a %s", where, ti >= 5 ? "string" : "path or name");
                if (!cli_tls_given(&cfg->tls, ti)) cli_tls_set(&cfg->tls, cli_tls_flags[ti].name, item->valuestring);
            }
        } else if (!strcmp(k, "prefix") || !strcmp(k, "bullmqVersion")) {
            int rc = set_value(cfg, &fs->defaults, (size_t)find_opt(k), NULL, item, where);
            if (rc) return rc;
        } else if (!strcmp(k, "busyPoll")) {
            if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 100000)
                return fail("%s must be a number of µs from 0 to 100000", where);
            if (cfg->busy_poll_us < 0) cfg->busy_poll_us = (int)item->valuedouble;
        } else if (!strcmp(k, "http")) {
            if (!cJSON_IsString(item)) return fail("%s must be a string \"ADDR:PORT\"", where);
            if (!cfg->http) cfg->http = item->valuestring;
        } else if (!strcmp(k, "countsCache") || !strcmp(k, "healthMaxLag")) {
            if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 86400000)
                return fail("%s must be a number of ms from 0 to 86400000", where);
            int64_t *v = k[0] == 'c' ? &cfg->counts_cache_ms : &cfg->health_max_lag;
            if (*v < 0) *v = (int64_t)item->valuedouble;
        } else if (!strcmp(k, "shutdownTimeout")) {
            if (!cJSON_IsNumber(item) || item->valuedouble < 0) return fail("%s must be a number of ms >= 0", where);
            if (cfg->shutdown_timeout < 0) cfg->shutdown_timeout = (int64_t)item->valuedouble;
        } else if (!strcmp(k, "logFormat") || !strcmp(k, "logLevel") || !strcmp(k, "logFile")) {
            if (!cJSON_IsString(item)) return fail("%s must be a string", where);
            const char *v = item->valuestring;
            if (!strcmp(k, "logFormat")) {
                int fmt = !strcmp(v, "json") ? TLOG_JSON : !strcmp(v, "text") ? TLOG_TEXT : -1;
                if (fmt < 0) return fail("%s must be \"text\" or \"json\"", where);
                if (cfg->log_format < 0) cfg->log_format = fmt;
            } else if (!strcmp(k, "logLevel")) {
                int lv = tlog_level_parse(v);
                if (lv < 0) return fail("%s must be debug, info, warn or error", where);
                if (cfg->log_level < 0) cfg->log_level = lv;
            } else if (!cfg->log_file) {
                cfg->log_file = v;
            }
        } else if (!strcmp(k, "defaults")) {
            int rc = file_section(cfg, item, "defaults", &fs->defaults, &fs->default_proc);
            if (rc) return rc;
        } else if (!strcmp(k, "queues")) {
            if (!cJSON_IsObject(item)) return fail("%s must be an object {\"name\": {...}}", where);
            size_t n = (size_t)cJSON_GetArraySize(item);
            fs->queues = own(cfg, calloc(n ? n : 1, sizeof *fs->queues));
            if (!fs->queues) return fail("out of memory");
            for (const cJSON *q = item->child; q; q = q->next) {
                file_queue *fq = &fs->queues[fs->nqueues++];
                fq->name = q->string;
                char w[300];
                snprintf(w, sizeof w, "queues.%s", q->string);
                int rc = check_queue_name(q->string, cfg->config_path);
                if (!rc) rc = file_section(cfg, q, w, &fq->s, &fq->proc);
                if (rc) return rc;
            }
        } else if (!strcmp(k, "schedulers")) {
            char why[512];
            if (bw_schedulers_check(item, why, sizeof why)) return fail("%s: %s", cfg->config_path, why);
            cfg->schedulers = item;
        } else {
            return fail("%s: unknown key '%s'", cfg->config_path, k);
        }
    }
    return 0;
}

/* ---- the command line --------------------------------------------------------- */

/* The flags that are not worker options (those are `opts` above), once: the
 * parser accepts these and `opts` and nothing else, --help is printed from
 * both, and tests/doc-test checks them against docs/worker.md. `arg` NULL:
 * a flag without a value; a NULL flag starts the next section of the help. */
typedef struct progdef {
    const char *flag, *arg, *help;
    const char *key; /* the config file's key, NULL when none */
} progdef;
static const progdef progdefs[] = {
    {"queue", "NAME", "a queue to serve (repeatable; also -q)", NULL},
    {"queues-file", "PATH",
     "serve the queues named in PATH too, one per line (blank lines and\n"
     "lines starting with # are skipped; read again on SIGHUP); turns\n"
     "--shared-connections on",
     NULL},
    {"exec", "[QUEUE=]PROGRAM",
     "run PROGRAM (no shell; PATH is searched when it has no '/') per job,\n"
     "with the --arg ARGs that follow: the job as JSON on stdin; stdout is the\n"
     "result (JSON, or else a string); a non-zero exit fails the job with the\n"
     "end of stderr; exit 78 fails it without retries; stderr lines\n"
     "'progress: JSON' and 'log: TEXT' update the job's progress and logs.\n"
     "`-- PROGRAM [ARGS...]` (last on the line): the same, for every queue",
     NULL},
    {"exec-persistent", "[QUEUE=]PROGRAM",
     "keep one PROGRAM (with the --arg ARGs that follow) per concurrency\n"
     "slot running: a JSON line per job on its stdin, and back on stdout\n"
     "{\"id\",\"result\"} or {\"id\",\"error\",\"unrecoverable\"}, after optional\n"
     "{\"id\",\"progress\"|\"log\"|\"data\"} lines; a child that dies, hangs past\n"
     "--timeout or writes a bad line fails its job and is restarted\n"
     "(docs/worker.md); --exec-children N: N children shared by the slots",
     NULL},
    {"arg", "ARG", "an argument of the --exec or --exec-persistent before it (repeatable)", NULL},
    {"plugin", "[QUEUE=]PATH.so",
     "bullc_plugin_process() of a shared library (an explicit path), on\nlibuv's thread pool", NULL},
    {"plugin-config", "JSON", "the settings of the --plugin before it (given to bullc_plugin_init)", NULL},
    {"builtin", "[QUEUE=]NAME",
     "noop|echo|sleep: complete at once / return the data / wait data.sleepMs\n"
     "ms, then return the data; game-data|notification: the reference\n"
     "deployment's processors of game_data and send-notification jobs\n"
     "(docs/reference-deployment.md)",
     NULL},
    {"builtin-config", "[QUEUE=]JSON",
     "a builtin's settings (an object): for the --builtin before it, or for\n"
     "QUEUE's builtin. notification: {\"webhookUrl\":URL,\"timeoutMs\":5000,\n"
     "\"cap\":100,\"headers\":{...},\"caFile\":PEM} (webhookUrl also from\n"
     "NOTIFICATION_WEBHOOK_URL)",
     NULL},
    {NULL, NULL, "Program options", NULL},
    {"config", "FILE.json", "queues, processors and options (see docs/worker.md); flags override\nthe file", NULL},
    {"redis", "URL",
     "redis://[user:password@]host[:port][/db], rediss://... (TLS),\nunix:///path?db=N, "
     "redis+sentinel://host:port[,host:port...]/MASTER[/db]\nor redis+cluster://host:port[,host:port...] "
     "(docs/connection.md)\n"
     "(default: REDIS_URL, else REDIS_HOST, REDIS_PORT, REDIS_PASSWORD,\n"
     "REDIS_USERNAME, REDIS_DB, else 127.0.0.1:6379; timeouts:\n"
     "REDIS_CONNECT_TIMEOUT and REDIS_COMMAND_TIMEOUT, ms)",
     "redis"},
    {"shutdown-timeout", "MS",
     "on SIGINT/SIGTERM, wait up to MS for jobs in process (10000; 0: no\nlimit); a second signal stops at once",
     "shutdownTimeout"},
    {"busy-poll", "US",
     "while a Redis reply is due, spin up to US µs instead of sleeping (0:\noff): less latency per job, a busy CPU",
     "busyPoll"},
    {"http", "ADDR:PORT",
     "serve GET /metrics (Prometheus), /healthz and /readyz on ADDR:PORT\n"
     "(docs/observability.md)",
     "http"},
    {"counts-cache", "MS",
     "/metrics fetches the queues' job counts at most once per MS (1000;\n"
     "0: on every scrape)",
     "countsCache"},
    {"health-max-lag", "MS",
     "/healthz answers 503 for a minute after the event loop was stalled\n"
     "longer than MS (5000)",
     "healthMaxLag"},
    {"log-format", "text|json", "one line per event (text)", "logFormat"},
    {"log-file", "PATH", "append to PATH (mode 0600; SIGHUP reopens it), not stderr", "logFile"},
    {"log-level", "debug|info|warn|error", "(info)", "logLevel"},
    {"queue-glob", "PATTERN",
     "serve every queue in Redis whose name matches PATTERN too (fnmatch:\n"
     "* ? [...]; repeatable), found by SCAN of <prefix>:*:meta and :id at\n"
     "start, every --queue-glob-interval and on SIGHUP; turns\n"
     "--shared-connections on",
     NULL},
    {"queue-glob-interval", "MS", "how often --queue-glob looks for new queues (10000; 0: on SIGHUP only)", NULL},
    {"shared-connections", NULL,
     "serve every queue over two Redis connections in all (one shared\n"
     "command connection, one BZPOPMIN on every drained queue's marker)\n"
     "instead of two per queue, two more per 1,000 queues up to six in\n"
     "all; on Redis Cluster two per hash slot the\n"
     "queues are in (two in all with --prefix '{bull}') (docs/worker.md)",
     NULL},
    {"global-concurrency", "N",
     "at most N jobs in process across all queues, each queue's own\n"
     "--concurrency still holding; queues held back are served in turn\n"
     "(0: no cap); turns --shared-connections on",
     NULL},
    {"allow-unsafe-redis", NULL,
     "start although the server checks found a setting that loses jobs\n"
     "(eviction policy other than noeviction, a cluster without a\n"
     "hash-tagged prefix; a BullMQ major conflict is never bypassed)",
     NULL},
    {"allow-low-fd-limit", NULL,
     "start although the open-files limit (ulimit -n, raised up to the hard\n"
     "limit when it can be) cannot cover every queue's connections and\n"
     "processors at full concurrency",
     NULL},
    {"exec-redis-env", NULL,
     "exec commands inherit REDIS_PASSWORD and a REDIS_URL that holds a\n"
     "password (left out by default)",
     NULL},
    {"help", NULL, "this help (also -h)", NULL},
    {"version", NULL, "bullc-worker's and BullMQ's versions", NULL},
};
#define NPROGDEFS (sizeof progdefs / sizeof progdefs[0])
_Static_assert(BW_EXIT_UNRECOVERABLE == 78, "--exec's help names exit 78");

static const progdef *find_progdef(const char *name) {
    for (size_t i = 0; i < NPROGDEFS; i++)
        if (progdefs[i].flag && !strcmp(progdefs[i].flag, name)) return &progdefs[i];
    return NULL;
}

static int parse_args(bw_config *cfg, parse_state *ps, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            if (i + 1 >= argc) return fail("'--' must be followed by a command");
            cli_proc *p = add_proc(cfg, ps, "--", BW_PROC_EXEC, "");
            if (!p->proc.argv) return fail("out of memory");
            p->queue = NULL;
            p->proc.argc = 0;
            for (int j = i + 1; j < argc; j++) p->proc.argv[p->proc.argc++] = argv[j];
            break;
        }
        if (!strcmp(a, "-q")) a = "--queue";
        if (!strcmp(a, "-h")) a = "--help";
        if (strncmp(a, "--", 2)) return fail("unexpected argument '%s'", a);
        /* --flag=value or --flag value */
        char name[64];
        const char *eq = strchr(a + 2, '='), *value = eq ? eq + 1 : NULL;
        size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nlen >= sizeof name) return fail("unknown flag %s", a);
        memcpy(name, a + 2, nlen);
        name[nlen] = '\0';
        cli_tls probe = {0};
        int ti = cli_tls_set(&probe, name, NULL);
        if (ti >= 0) {
            if (!cli_tls_flags[ti].arg && value) return fail("--%s takes no value", name);
            if (cli_tls_flags[ti].arg && !value) {
                if (i + 1 >= argc) return fail("--%s needs a value", name);
                value = argv[++i];
            }
            cli_tls_set(&cfg->tls, name, value);
            continue;
        }
        int oi = -1;
        for (size_t k = 0; k < NOPTS; k++)
            if (!strcmp(opts[k].flag, name)) oi = (int)k;
        const progdef *pd = oi < 0 ? find_progdef(name) : NULL;
        if (oi < 0 && !pd) return fail("unknown flag --%s", name);
        bool needs_value = pd ? pd->arg != NULL : opts[oi].type != O_BOOL;
        if (!needs_value && value) return fail("--%s takes no value", name);
        if (needs_value && !value) {
            if (i + 1 >= argc) return fail("--%s needs a value", name);
            value = argv[++i];
        }
        char where[80];
        snprintf(where, sizeof where, "--%s", name);
        if (oi >= 0) {
            int rc = set_value(cfg, &ps->flags, (size_t)oi, value, NULL, where);
            if (rc) return rc;
        } else if (!strcmp(name, "help")) {
            bw_usage(stdout);
            return 1;
        } else if (!strcmp(name, "version")) {
            bw_print_version("bullc-worker");
            return 1;
        } else if (!strcmp(name, "allow-unsafe-redis")) {
            cfg->allow_unsafe_redis = true;
        } else if (!strcmp(name, "allow-low-fd-limit")) {
            cfg->allow_low_fd_limit = true;
        } else if (!strcmp(name, "exec-redis-env")) {
            cfg->exec_redis_env = true;
        } else if (!strcmp(name, "shared-connections")) {
            cfg->shared_connections = true;
        } else if (!strcmp(name, "global-concurrency")) {
            int64_t v;
            if (!parse_i64(value, &v) || v < 0 || v > 1000000)
                return fail("--global-concurrency must be a number of jobs from 0 to 1000000");
            cfg->global_concurrency = (int)v;
        } else if (!strcmp(name, "queue-glob")) {
            if (!*value || strchr(value, ':')) return fail("--queue-glob must be a non-empty pattern without ':'");
            cfg->globs[cfg->nglobs++] = value;
        } else if (!strcmp(name, "queue-glob-interval")) {
            int64_t v;
            if (!parse_i64(value, &v) || v < 0 || v > 86400000)
                return fail("--queue-glob-interval must be a number of ms from 0 to 86400000");
            cfg->glob_interval_ms = v;
        } else if (!strcmp(name, "queues-file")) {
            if (!*value) return fail("--queues-file must not be empty");
            cfg->queues_file = value;
        } else if (!strcmp(name, "queue")) {
            int rc = check_queue_name(value, where);
            if (rc) return rc;
            for (size_t k = 0; k < ps->nqueues; k++)
                if (!strcmp(ps->queues[k], value)) return fail("queue '%s' is given twice", value);
            ps->queues[ps->nqueues++] = value;
        } else if (!strcmp(name, "config")) {
            cfg->config_path = value;
        } else if (!strcmp(name, "redis")) {
            cfg->redis_url = value, cfg->redis_url_from_file = false;
        } else if (!strcmp(name, "busy-poll")) {
            int64_t v;
            if (!parse_i64(value, &v) || v < 0 || v > 100000)
                return fail("--busy-poll must be a number of µs from 0 to 100000");
            cfg->busy_poll_us = (int)v;
        } else if (!strcmp(name, "http")) {
            cfg->http = value;
        } else if (!strcmp(name, "counts-cache") || !strcmp(name, "health-max-lag")) {
            int64_t v;
            if (!parse_i64(value, &v) || v < 0 || v > 86400000)
                return fail("--%s must be a number of ms from 0 to 86400000", name);
            *(name[0] == 'c' ? &cfg->counts_cache_ms : &cfg->health_max_lag) = v;
        } else if (!strcmp(name, "shutdown-timeout")) {
            int64_t v;
            if (!parse_i64(value, &v) || v < 0) return fail("--shutdown-timeout must be a number of ms >= 0");
            cfg->shutdown_timeout = v;
        } else if (!strcmp(name, "log-format")) {
            cfg->log_format = !strcmp(value, "json") ? TLOG_JSON : !strcmp(value, "text") ? TLOG_TEXT : -1;
            if (cfg->log_format < 0) return fail("--log-format must be text or json");
        } else if (!strcmp(name, "log-level")) {
            if ((cfg->log_level = tlog_level_parse(value)) < 0)
                return fail("--log-level must be debug, info, warn or error");
        } else if (!strcmp(name, "log-file")) {
            if (!*value) return fail("--log-file must not be empty");
            cfg->log_file = value;
        } else if (!strcmp(name, "exec") || !strcmp(name, "exec-persistent") || !strcmp(name, "plugin") ||
                   !strcmp(name, "builtin")) {
            bool persistent = !strcmp(name, "exec-persistent");
            int kind = persistent       ? BW_PROC_EXEC_PERSISTENT
                       : name[0] == 'e' ? BW_PROC_EXEC
                       : name[0] == 'p' ? BW_PROC_PLUGIN
                                        : BW_PROC_BUILTIN;
            cli_proc *p = add_proc(cfg, ps,
                                   persistent       ? "--exec-persistent"
                                   : name[0] == 'e' ? "--exec"
                                   : name[0] == 'p' ? "--plugin"
                                                    : "--builtin",
                                   kind, value);
            bool exec_like = kind == BW_PROC_EXEC || kind == BW_PROC_EXEC_PERSISTENT;
            if (exec_like && !p->proc.argv) return fail("out of memory");
            const char *v = exec_like ? p->proc.argv[0] : kind == BW_PROC_PLUGIN ? p->proc.path : p->proc.builtin;
            if (!*v) return fail("--%s needs a value after the queue name", name);
        } else if (!strcmp(name, "arg")) {
            cli_proc *p = ps->nprocs ? &ps->procs[ps->nprocs - 1] : NULL;
            if (!p || (p->proc.kind != BW_PROC_EXEC && p->proc.kind != BW_PROC_EXEC_PERSISTENT))
                return fail("--arg must follow an --exec or --exec-persistent");
            p->proc.argv[p->proc.argc++] = (char *)value;
        } else if (!strcmp(name, "plugin-config")) {
            cli_proc *p = ps->nprocs ? &ps->procs[ps->nprocs - 1] : NULL;
            if (!p || p->proc.kind != BW_PROC_PLUGIN) return fail("--plugin-config must follow a --plugin");
            cJSON *j = cJSON_Parse(value);
            cJSON_Delete(j);
            if (!j) return fail("--plugin-config must be JSON");
            p->proc.config_json = value;
        } else if (!strcmp(name, "builtin-config")) {
            /* A JSON object, for the --builtin before it; or QUEUE=OBJECT.
             * An object never reads as QUEUE=..., whatever '=' it holds. */
            const char *queue = NULL, *json = value, *eq = strchr(value, '=');
            cJSON *j = cJSON_Parse(value);
            if (!cJSON_IsObject(j) && eq && eq != value) {
                cJSON_Delete(j);
                queue = own(cfg, strndup(value, (size_t)(eq - value)));
                if (!queue) return fail("out of memory");
                j = cJSON_Parse(json = eq + 1);
            }
            bool object = cJSON_IsObject(j);
            cJSON_Delete(j);
            if (!object) return fail("--builtin-config must be a JSON object, or QUEUE={...}");
            if (queue) {
                ps->bconfs[ps->nbconfs++] = (cli_builtin_config){queue, json};
            } else {
                cli_proc *p = ps->nprocs ? &ps->procs[ps->nprocs - 1] : NULL;
                if (!p || p->proc.kind != BW_PROC_BUILTIN)
                    return fail("--builtin-config must follow a --builtin, or name its queue: QUEUE={...}");
                p->proc.config_json = json;
            }
        }
    }
    return 0;
}

/* --queues-file and --queue-glob: their names join those of --queue (a name
 * given twice is served once). The list grows: `ps->queues` is moved into a
 * larger array owned by `cfg` at the first name. */
typedef struct name_list {
    const char **names;
    size_t n, cap;
} name_list;

static int join_name(bw_config *cfg, parse_state *ps, name_list *l, const char *name) {
    if (!l->names) {
        l->cap = ps->nqueues + 64;
        if (!(l->names = own(cfg, malloc(l->cap * sizeof *l->names)))) return fail("out of memory");
        memcpy(l->names, ps->queues, ps->nqueues * sizeof *l->names);
        l->n = ps->nqueues;
        ps->queues = l->names;
    }
    for (size_t k = 0; k < l->n; k++)
        if (!strcmp(l->names[k], name)) return 0;
    if (l->n == l->cap) {
        const char **grown = own(cfg, malloc(l->cap * 2 * sizeof *grown));
        if (!grown) return fail("out of memory");
        memcpy(grown, l->names, l->n * sizeof *grown);
        l->names = ps->queues = grown;
        l->cap *= 2;
    }
    if (!(l->names[l->n] = own(cfg, strdup(name)))) return fail("out of memory");
    ps->nqueues = ++l->n;
    return 0;
}

static int read_queues_file(bw_config *cfg, parse_state *ps, name_list *l) {
    FILE *f = fopen(cfg->queues_file, "r");
    if (!f) return fail("--queues-file %s: %s", cfg->queues_file, strerror(errno));
    size_t lineno = 0, size = 0;
    char *line = NULL;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&line, &size, f)) >= 0) {
        lineno++;
        while (len > 0 && strchr(" \t\r\n", line[len - 1])) line[--len] = '\0';
        const char *name = line + strspn(line, " \t");
        if (!*name || *name == '#') continue;
        char where[300];
        snprintf(where, sizeof where, "%s:%zu", cfg->queues_file, lineno);
        if (!(rc = check_queue_name(name, where))) rc = join_name(cfg, ps, l, name);
    }
    free(line);
    fclose(f);
    return rc;
}

static const bw_proc *cli_proc_for(const parse_state *ps, const char *queue) {
    for (size_t i = 0; i < ps->nprocs; i++)
        if (ps->procs[i].queue && !strcmp(ps->procs[i].queue, queue)) return &ps->procs[i].proc;
    for (size_t i = 0; i < ps->nprocs; i++)
        if (!ps->procs[i].queue) return &ps->procs[i].proc;
    return NULL;
}

int bw_config_parse(bw_config *cfg, int argc, char **argv, char *const *found, size_t nfound) {
    memset(cfg, 0, sizeof *cfg);
    cfg->shutdown_timeout = -1;
    cfg->busy_poll_us = -1;
    cfg->counts_cache_ms = cfg->health_max_lag = -1;
    cfg->log_format = cfg->log_level = -1;
    parse_state ps = {0};
    file_state fs = {0};
    ps.argc = argc;
    /* upper bounds: no reallocation while pointers are handed out */
    ps.queues = own(cfg, calloc((size_t)argc + 1, sizeof *ps.queues));
    ps.procs = own(cfg, calloc((size_t)argc + 1, sizeof *ps.procs));
    ps.bconfs = own(cfg, calloc((size_t)argc + 1, sizeof *ps.bconfs));
    cfg->globs = own(cfg, calloc((size_t)argc + 1, sizeof *cfg->globs));
    cfg->glob_interval_ms = -1;
    if (!ps.queues || !ps.procs || !ps.bconfs || !cfg->globs) return fail("out of memory");
    int rc = parse_args(cfg, &ps, argc, argv);
    if (rc) return rc;
    if (cfg->config_path && (rc = load_file(cfg, &fs))) return rc;
    char why[300];
    if (cfg->http && !bw_httpd_port(cfg->http, why, sizeof why)) return fail("%s", why);
    /* the environment's major is the lowest layer: the file and flags override it */
    bw_settings env = {0};
    const char *env_major = getenv("BULLC_BULLMQ_VERSION");
    if (env_major && *env_major &&
        (rc = set_value(cfg, &env, (size_t)find_opt("bullmqVersion"), env_major, NULL, "BULLC_BULLMQ_VERSION")))
        return rc;
    if (cfg->shutdown_timeout < 0) cfg->shutdown_timeout = 10000;
    if (cfg->busy_poll_us < 0) cfg->busy_poll_us = 0;
    if (cfg->counts_cache_ms < 0) cfg->counts_cache_ms = 1000;
    if (cfg->health_max_lag < 0) cfg->health_max_lag = 5000;
    if (cfg->health_max_lag == 0) return fail("--health-max-lag must be more than 0 ms");
    if (cfg->log_format < 0) cfg->log_format = TLOG_TEXT;
    if (cfg->log_level < 0) cfg->log_level = TLOG_INFO;

    name_list more = {0};
    if (cfg->queues_file && (rc = read_queues_file(cfg, &ps, &more))) return rc;
    for (size_t i = 0; i < nfound && !rc; i++) rc = join_name(cfg, &ps, &more, found[i]);
    if (rc) return rc;
    if (cfg->queues_file || cfg->global_concurrency || cfg->nglobs) cfg->shared_connections = true;
    if (cfg->glob_interval_ms < 0) cfg->glob_interval_ms = 10000;
    /* the prefix a queue that only a glob names would get */
    bw_settings d = {0};
    merge(&d, &env);
    merge(&d, &fs.defaults);
    merge(&d, &ps.flags);
    cfg->glob_prefix = d.prefix;
    /* which queues run: those given with --queue (or in --queues-file), else the config file's */
    size_t n = ps.nqueues ? ps.nqueues : fs.nqueues;
    /* a glob may find its queues later */
    if (!n && !cfg->nglobs) return fail("no queue: give --queue NAME (or a config file with \"queues\")");
    /* a processor flag naming a queue that does not run is a typo (a glob may find it later) */
    for (size_t i = 0; i < ps.nprocs && !cfg->nglobs; i++) {
        bool run = !ps.procs[i].queue;
        for (size_t k = 0; k < n && !run; k++)
            run = !strcmp(ps.nqueues ? ps.queues[k] : fs.queues[k].name, ps.procs[i].queue);
        if (!run) return fail("%s names queue '%s', which is not run", ps.procs[i].flag, ps.procs[i].queue);
    }
    for (size_t i = 0; i < ps.nbconfs && !cfg->nglobs; i++) {
        bool run = false;
        for (size_t k = 0; k < n && !run; k++)
            run = !strcmp(ps.nqueues ? ps.queues[k] : fs.queues[k].name, ps.bconfs[i].queue);
        if (!run) return fail("--builtin-config names queue '%s', which is not run", ps.bconfs[i].queue);
    }
    cfg->queues = own(cfg, calloc(n ? n : 1, sizeof *cfg->queues));
    if (!cfg->queues) return fail("out of memory");
    for (size_t i = 0; i < n; i++) {
        bw_queue_cfg *q = &cfg->queues[cfg->nqueues++];
        q->name = ps.nqueues ? ps.queues[i] : fs.queues[i].name;
        const file_queue *fq = NULL;
        for (size_t k = 0; k < fs.nqueues; k++)
            if (!strcmp(fs.queues[k].name, q->name)) fq = &fs.queues[k];
        merge(&q->s, &env);
        merge(&q->s, &fs.defaults);
        if (fq) merge(&q->s, &fq->s);
        merge(&q->s, &ps.flags);
        const bw_proc *p = cli_proc_for(&ps, q->name);
        if (!p && fq && fq->proc.kind != BW_PROC_NONE) p = &fq->proc;
        if (!p && fs.default_proc.kind != BW_PROC_NONE) p = &fs.default_proc;
        if (!p)
            return fail("queue '%s' has no processor: give --exec, --exec-persistent, --plugin or --builtin", q->name);
        q->proc = *p;
        if (q->proc.kind == BW_PROC_EXEC || q->proc.kind == BW_PROC_EXEC_PERSISTENT) q->proc.argv[q->proc.argc] = NULL;
        if (q->proc.kind == BW_PROC_BUILTIN && !bw_builtin_known(q->proc.builtin))
            return fail("unknown builtin '%s' (noop, echo, sleep, game-data or notification)", q->proc.builtin);
        for (size_t k = 0; k < ps.nbconfs; k++) {
            if (strcmp(ps.bconfs[k].queue, q->name)) continue;
            if (q->proc.kind != BW_PROC_BUILTIN)
                return fail("--builtin-config names queue '%s', whose processor is not a builtin", q->name);
            q->proc.config_json = ps.bconfs[k].json; /* the last one wins */
        }
        if (q->proc.kind == BW_PROC_PLUGIN && !strchr(q->proc.path, '/'))
            return fail("plugin '%s': give a path with a '/', e.g. ./%s (library search paths are not used)",
                        q->proc.path, q->proc.path);
        if (!(q->s.set & (1u << (size_t)find_opt("killGrace")))) q->s.kill_grace = 5000;
        if (q->s.set & (1u << (size_t)find_opt("execChildren"))) {
            int conc = q->s.concurrency > 0 ? q->s.concurrency : 1;
            if (q->proc.kind != BW_PROC_EXEC_PERSISTENT)
                return fail("--exec-children (execChildren) of queue '%s' needs --exec-persistent", q->name);
            if (q->s.exec_children > conc)
                return fail(
                    "--exec-children (execChildren) of queue '%s' must be from 1 to its concurrency (%d), not %d",
                    q->name, conc, q->s.exec_children);
        }
    }
    return 0;
}

/* One flag of the help: "--flag ARG", its text, and its config-file key. */
static void usage_line(FILE *f, const char *flag, const char *arg, const char *help, const char *key) {
    char head[80], tail[80] = "";
    snprintf(head, sizeof head, "--%s%s%s", flag, arg ? " " : "", arg ? arg : "");
    if (key) snprintf(tail, sizeof tail, "; file: %s", key);
    help_line(f, 32, head, help, tail);
}

void bw_usage(FILE *f) {
    fprintf(f,
            "usage: bullc-worker --queue NAME [--queue NAME ...] PROCESSOR [OPTIONS]\n"
            "       bullc-worker --config FILE.json [--queue NAME ...] [OPTIONS]\n\n"
            "Processes the jobs of BullMQ queues, as a Node BullMQ Worker does (bullc %s, BullMQ %s).\n"
            "One worker per queue, all on one event loop.\n\n"
            "Queues and processors ([QUEUE=] limits a processor to a queue; without it, it serves every\n"
            "queue that has no processor of its own):\n",
            bullc_version(), bullc_bullmq_version());
    size_t i = 0;
    for (; i < NPROGDEFS && progdefs[i].flag; i++)
        usage_line(f, progdefs[i].flag, progdefs[i].arg, progdefs[i].help, progdefs[i].key);
    fputs("\nWorker options (defaults are Node BullMQ's; \"file:\" names the config file's key, which may\n"
          "also be set per queue):\n",
          f);
    for (size_t k = 0; k < NOPTS; k++) usage_line(f, opts[k].flag, opts[k].arg, opts[k].help, opts[k].key);
    for (; i < NPROGDEFS; i++) {
        if (!progdefs[i].flag)
            fprintf(f, "\n%s:\n", progdefs[i].help);
        else
            usage_line(f, progdefs[i].flag, progdefs[i].arg, progdefs[i].help, progdefs[i].key);
        if (progdefs[i].flag && !strcmp(progdefs[i].flag, "redis"))
            for (int t = 0; t < CLI_TLS_NFLAGS; t++)
                usage_line(f, cli_tls_flags[t].name, cli_tls_flags[t].arg, cli_tls_flags[t].help,
                           cli_tls_flags[t].file_key);
    }
    fputs("\nA.b keys are key b of object a ({\"limiter\": {\"max\": N}}).\n"
          "Exit codes: 0 stopped by a signal after finishing the jobs in process; 1 run-time failure\n"
          "(a worker or a plugin's init failed); 2 usage, config file, plugin or log file error;\n"
          "3 Redis unreachable or refusing the password/database at start; 4 shutdown forced (second\n"
          "signal or --shutdown-timeout): jobs in process were left to stalled recovery; 5 the\n"
          "server checks refused the Redis settings (see --allow-unsafe-redis), or the open-files\n"
          "limit is too low for the queues (see --allow-low-fd-limit).\n",
          f);
}
