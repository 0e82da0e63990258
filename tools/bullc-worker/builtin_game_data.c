/* SPDX-License-Identifier: MIT */
/* The game-data builtin (`--builtin test-queue=game-data`): the reference
 * deployment's processor of `game_data` jobs, as bullc-socket-client and
 * the NestJS QueueService.addTestQueueJob write them:
 *
 *   {"provider": "NAMED_POWERBALL", "data": <any JSON>, "timestamp": <ms>, "messageType": "round_result"}
 *
 * For each valid job it records the provider's latest round in the hash
 * `<prefix>:<queue>:latest` (field: the provider) and publishes the same
 * record on the channel `<prefix>:<queue>:rounds`, for the API to fan out:
 *
 *   {"provider","jobId","messageType","timestamp","data","receivedAt"}
 *
 * `data`, `timestamp` and the strings are the producer's bytes, never
 * re-printed. Jobs are processed concurrently, so an older round may be
 * processed after a newer one: the hash keeps the newest `timestamp` (ties:
 * the later job), while every round is published. Both happen in one Lua
 * script, atomically. The job returns {provider, messageType, round
 * (data.round, when present), published (subscribers reached: on a Redis
 * Cluster, those of the node that ran the script, the master of the hash's
 * slot, though the message reaches every node's)}.
 *
 * A malformed job (another name, a missing or ill-typed field) fails
 * without retries (a retry cannot fix its data), with a reason naming the
 * field. A Redis failure fails it as usual: attempts and backoff apply. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

typedef struct game_data {
    bw_redis_pool *pool;
    char *latest_key; /* <prefix>:<queue>:latest */
    char *channel;    /* <prefix>:<queue>:rounds */
} game_data;

/* KEYS[1] the latest-round hash; ARGV: provider, record, timestamp, channel.
 * The stored record's timestamp is the first "timestamp": of its text: it
 * is written before `data`, and the strings before it hold any quote as
 * \", so no string can fake it. Returns {stored 0/1, subscribers}. */
static const char record_script[] =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local old = cur and tonumber(string.match(cur, '\"timestamp\":(%-?[%d%.eE%+%-]+)'))\n"
    "local stored = 0\n"
    "if not old or tonumber(ARGV[3]) >= old then\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "  stored = 1\n"
    "end\n"
    "return {stored, redis.call('PUBLISH', ARGV[4], ARGV[2])}\n";

int bw_game_data_init(bw_queue *q, const bullc_redis_opts *redis, const char *config_json, char *why, size_t n) {
    if (config_json) {
        snprintf(why, n, "builtin game-data takes no configuration");
        return BW_EXIT_USAGE;
    }
    game_data *g = calloc(1, sizeof *g);
    const char *prefix = q->cfg->s.prefix ? q->cfg->s.prefix : "bull";
    if (g && asprintf(&g->latest_key, "%s:%s:latest", prefix, q->cfg->name) < 0) g->latest_key = NULL;
    if (g && asprintf(&g->channel, "%s:%s:rounds", prefix, q->cfg->name) < 0) g->channel = NULL;
    q->builtin_state = g;
    if (!g || !g->latest_key || !g->channel || bw_redis_pool_new(&g->pool, redis)) {
        bw_game_data_fini(q);
        snprintf(why, n, "out of memory");
        return BW_EXIT_FAIL;
    }
    return 0;
}

void bw_game_data_fini(bw_queue *q) {
    game_data *g = q->builtin_state;
    if (!g) return;
    bw_redis_pool_free(g->pool);
    free(g->latest_key);
    free(g->channel);
    free(g);
    q->builtin_state = NULL;
}

/* The fields of a valid game_data job. */
typedef struct game_round {
    bw_jspan provider, data, timestamp, type;
    char *provider_name; /* decoded: the hash field */
} game_round;

static int fail_unrecoverable(bullc_job_result *out, const char *msg) {
    out->error = strdup(msg);
    out->fail_flags = BULLC_FAIL_UNRECOVERABLE;
    return -1;
}

/* A string member that must be there and not be empty. */
static bool non_empty_string(const char *d, size_t len, const char *key, bw_jspan *v, char **decoded) {
    if (!bw_json_member(d, len, key, v) || bw_json_kind(v) != BW_JSON_STRING) return false;
    char *s = bw_json_string_value(v);
    bool ok = s && *s;
    if (ok && decoded)
        *decoded = s;
    else
        free(s);
    return ok;
}

static int check(bullc_job *job, game_round *r, bullc_job_result *out) {
    char msg[300];
    const char *name = bullc_job_name(job);
    if (strcmp(name, "game_data")) {
        snprintf(msg, sizeof msg, "game-data: unknown job name '%s' (this processor takes game_data jobs)", name);
        return fail_unrecoverable(out, msg);
    }
    const char *d = bullc_job_data(job);
    size_t len = strlen(d);
    bw_jspan all = {d, len};
    if (!bw_json_valid(d, len) || bw_json_kind(&all) != BW_JSON_OBJECT)
        return fail_unrecoverable(out, "game_data: the job data must be a JSON object");
    if (!non_empty_string(d, len, "provider", &r->provider, &r->provider_name))
        return fail_unrecoverable(out, "game_data: \"provider\" must be a non-empty string");
    if (!bw_json_member(d, len, "data", &r->data)) return fail_unrecoverable(out, "game_data: \"data\" is missing");
    char num[64] = "";
    bool is_num = bw_json_member(d, len, "timestamp", &r->timestamp) && bw_json_kind(&r->timestamp) == BW_JSON_NUMBER &&
                  r->timestamp.n < sizeof num;
    if (is_num) memcpy(num, r->timestamp.p, r->timestamp.n), num[r->timestamp.n] = '\0';
    double ts = is_num ? strtod(num, NULL) : -1;
    if (!is_num || !isfinite(ts) || ts < 0)
        return fail_unrecoverable(out, "game_data: \"timestamp\" must be a number of milliseconds since the epoch");
    if (!non_empty_string(d, len, "messageType", &r->type, NULL))
        return fail_unrecoverable(out, "game_data: \"messageType\" must be a non-empty string");
    return 0;
}

/* Thread-pool thread. */
void bw_game_data_process(bullc_job *job, bullc_job_result *out, void *data) {
    bw_queue *q = data;
    game_data *g = q->builtin_state;
    game_round r = {0};
    if (check(job, &r, out)) {
        free(r.provider_name);
        return;
    }
    bw_sb rec = {0};
    bw_sb_puts(&rec, "{\"provider\":");
    bw_sb_put(&rec, r.provider.p, r.provider.n);
    bw_sb_puts(&rec, ",\"jobId\":");
    bw_sb_quote(&rec, bullc_job_id(job));
    bw_sb_puts(&rec, ",\"messageType\":");
    bw_sb_put(&rec, r.type.p, r.type.n);
    bw_sb_puts(&rec, ",\"timestamp\":");
    bw_sb_put(&rec, r.timestamp.p, r.timestamp.n);
    bw_sb_puts(&rec, ",\"data\":");
    bw_sb_put(&rec, r.data.p, r.data.n);
    bw_sb_printf(&rec, ",\"receivedAt\":%lld}", (long long)tlog_now_ms());
    if (rec.failed) {
        free(r.provider_name);
        bw_sb_take(&rec);
        out->error = strdup("game-data: out of memory");
        return;
    }
    char ts[64];
    snprintf(ts, sizeof ts, "%.*s", (int)r.timestamp.n, r.timestamp.p);
    const char *argv[] = {"EVAL", record_script, "1", g->latest_key, r.provider_name, rec.p, ts, g->channel};
    size_t lens[] = {4,          sizeof record_script - 1, 1, strlen(g->latest_key), strlen(r.provider_name), rec.len,
                     strlen(ts), strlen(g->channel)};
    char why[600];
    bullc_redis_reply *rep = bw_redis_pool_command(g->pool, 8, argv, lens, why, sizeof why);
    long long published = -1;
    const bullc_redis_reply *subs = rep ? bullc_redis_reply_element(rep, 1) : NULL;
    if (subs && bullc_redis_reply_count(rep) == 2 && bullc_redis_reply_type(subs) == BULLC_REPLY_INTEGER)
        published = bullc_redis_reply_integer(subs);
    else if (rep)
        snprintf(why, sizeof why, "Redis: unexpected reply to the record script");
    bullc_redis_reply_free(rep);
    free(rec.p);
    free(r.provider_name);
    if (published < 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "game-data: %s", why);
        out->error = strdup(msg); /* retried per the job's attempts */
        return;
    }
    bw_sb res = {0};
    bw_sb_puts(&res, "{\"provider\":");
    bw_sb_put(&res, r.provider.p, r.provider.n);
    bw_sb_puts(&res, ",\"messageType\":");
    bw_sb_put(&res, r.type.p, r.type.n);
    bw_jspan round_no;
    if (bw_json_kind(&r.data) == BW_JSON_OBJECT && bw_json_member(r.data.p, r.data.n, "round", &round_no)) {
        bw_sb_puts(&res, ",\"round\":");
        bw_sb_put(&res, round_no.p, round_no.n);
    }
    bw_sb_printf(&res, ",\"published\":%lld}", published);
    out->result_json = bw_sb_take(&res);
    if (!out->result_json) out->error = strdup("game-data: out of memory");
}
