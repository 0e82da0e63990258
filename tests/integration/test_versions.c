/* SPDX-License-Identifier: MIT */
/* BullMQ majors (docs/versions.md): a queue whose meta.version a 5.81.5
 * Queue wrote is served with 5.x's scripts (its pause moves wait to paused),
 * an explicit major the meta contradicts is refused with nothing written
 * (the whole keyspace compared), and a meta.version changing major under a
 * running worker stops it (library: error event; bullc-worker: exit 5). The
 * asynchronous getters (bullc_aqueue) answer as the synchronous ones on both
 * majors, and exactly once when Redis is down or the handle is closed; handles
 * sharing one bullc_aqueue_conn answer as their own and close in any order. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_socket_client_util.h"
#include "private_redis.h"
#include "testutil.h"
#include "worker_harness.h"

static void teardown(void) { sct_kill_all(); }
TestSuite(versions, .fini = teardown, .timeout = 60);

/* What a 5.81.5 Queue's constructor writes (its metaValues). */
static void meta_as_node(redisContext *c, const char *prefix, const char *queue, const char *version) {
    freeReplyObject(tu_cmd(c, "HSET %s:%s:meta opts.maxLenEvents 10000 version %s", prefix, queue, version));
}

static long long llen(redisContext *c, const char *prefix, const char *queue, const char *list) {
    redisReply *r = tu_cmd(c, "LLEN %s:%s:%s", prefix, queue, list);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static bullc_queue *queue_of(const char *prefix, const char *name, int major) {
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_prefix(qo, prefix);
    cr_assert_eq(bullc_queue_opts_set_bullmq_version(qo, major), 0);
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_queue_opts_set_redis(qo, ro);
    bullc_redis_opts_free(ro);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, name, qo, NULL), 0);
    cr_assert_eq(bullc_queue_opts_set_bullmq_version(qo, 0), 0); /* tu_qopts is shared */
    return q;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every key under `prefix` with its DUMP, sorted: the keyspace to compare. */
static char *snapshot(redisContext *c, const char *prefix) {
    redisReply *keys = tu_cmd(c, "KEYS %s:*", prefix);
    size_t n = keys->elements;
    char **names = calloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++) names[i] = keys->element[i]->str;
    qsort(names, n, sizeof *names, by_name);
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    for (size_t i = 0; i < n; i++) {
        redisReply *d = tu_cmd(c, "DUMP %s", names[i]);
        size_t need = strlen(names[i]) + 2 * d->len + 4;
        while (len + need >= cap) out = realloc(out, cap *= 2);
        len += (size_t)sprintf(out + len, "%s=", names[i]);
        for (size_t k = 0; k < d->len; k++) len += (size_t)sprintf(out + len, "%02x", (unsigned char)d->str[k]);
        out[len++] = '\n';
        out[len] = '\0';
        freeReplyObject(d);
    }
    free(names);
    freeReplyObject(keys);
    return out;
}

Test(versions, setters_take_auto_5_and_6_only) {
    bullc_queue_opts *qo;
    bullc_worker_opts *wo;
    bullc_queue_events_opts *eo;
    bullc_queue_opts_new(&qo);
    bullc_worker_opts_new(&wo);
    bullc_queue_events_opts_new(&eo);
    int bad[] = {-1, 1, 4, 7, 60};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(bullc_queue_opts_set_bullmq_version(qo, bad[i]), BULLC_EINVAL);
        cr_assert_eq(bullc_worker_opts_set_bullmq_version(wo, bad[i]), BULLC_EINVAL);
        cr_assert_eq(bullc_queue_events_opts_set_bullmq_version(eo, bad[i]), BULLC_EINVAL);
    }
    for (int m = 0; m <= 6; m += m ? 1 : 5) {
        cr_assert_eq(bullc_queue_opts_set_bullmq_version(qo, m), 0);
        cr_assert_eq(bullc_worker_opts_set_bullmq_version(wo, m), 0);
        cr_assert_eq(bullc_queue_events_opts_set_bullmq_version(eo, m), 0);
    }
    cr_assert_str_eq(bullc_err_name(BULLC_EVERSION), "BULLC_EVERSION");
    bullc_queue_opts_free(qo);
    bullc_worker_opts_free(wo);
    bullc_queue_events_opts_free(eo);
}

Test(versions, a_new_queue_is_6_and_an_explicit_5_writes_what_a_5x_queue_writes) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    bullc_queue *q6 = queue_of(prefix, "six", 0), *q5 = queue_of(prefix, "five", 5);
    cr_assert_eq(bullc_queue_bullmq_version(q5), 5);
    cr_assert_eq(bullc_queue_add(q6, "j", "{}", NULL, NULL, NULL), 0);
    cr_assert_eq(bullc_queue_add(q5, "j", "{}", NULL, NULL, NULL), 0);
    cr_assert_eq(bullc_queue_bullmq_version(q6), 6);
    char key[256];
    snprintf(key, sizeof key, "%s:six:meta", prefix);
    char *v = tu_hget(c, key, "version");
    cr_assert_str_eq(v, "bullmq:" BULLC_BULLMQ_VERSION);
    free(v);
    snprintf(key, sizeof key, "%s:five:meta", prefix);
    v = tu_hget(c, key, "version");
    cr_assert_str_eq(v, "bullmq:5.81.5");
    free(v);
    bullc_queue_free(q6);
    bullc_queue_free(q5);
    redisFree(c);
}

/* Node 5's pause renames wait to paused and its adds go there; its resume
 * renames paused back over wait. bullc speaking 5.x must do the same, or a
 * 5.x peer's resume loses the jobs bullc left in wait. */
Test(versions, a_5x_queue_is_paused_resumed_and_counted_as_5x_does) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "q", "bullmq:5.81.5");
    bullc_queue *q = queue_of(prefix, "q", 0);
    bullc_error err = {0};
    for (int i = 0; i < 2; i++) cr_assert_eq(bullc_queue_add(q, "j", "{}", NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_bullmq_version(q), 5, "settled from meta.version");
    cr_assert_eq(bullc_queue_pause(q, &err), 0, "%s", err.message);
    cr_assert_eq(llen(c, prefix, "q", "wait"), 0, "5.x's pause empties wait");
    cr_assert_eq(llen(c, prefix, "q", "paused"), 2);
    cr_assert_eq(bullc_queue_add(q, "j", "{}", NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(llen(c, prefix, "q", "paused"), 3, "an add while paused goes to paused");
    const char *states[] = {"waiting"};
    int64_t n = 0;
    cr_assert_eq(bullc_queue_count_jobs(q, states, 1, &n, &err), 0, "%s", err.message);
    cr_assert_eq(n, 3, "5.x's waiting count includes paused");
    char *json = NULL;
    cr_assert_eq(bullc_queue_get_job_counts(q, states, 1, &json, &err), 0, "%s", err.message);
    cr_assert(strstr(json, "\"paused\":3"), "getJobCounts('waiting') lists paused too, as Node 5: %s", json);
    bullc_free(json);
    cr_assert_eq(bullc_queue_get_jobs(q, states, 1, 0, -1, true, &json, &err), 0, "%s", err.message);
    cJSON *jobs = cJSON_Parse(json);
    cr_assert_eq(cJSON_GetArraySize(jobs), 3, "getJobs('waiting') lists the paused jobs: %s", json);
    cJSON_Delete(jobs);
    bullc_free(json);
    cr_assert_eq(bullc_queue_resume(q, &err), 0, "%s", err.message);
    cr_assert_eq(llen(c, prefix, "q", "wait"), 3);
    cr_assert_eq(llen(c, prefix, "q", "paused"), 0);
    char key[256];
    snprintf(key, sizeof key, "%s:q:meta", prefix);
    char *v = tu_hget(c, key, "version");
    cr_assert_str_eq(v, "bullmq:5.81.5", "a 5.x queue keeps a 5.x meta.version");
    free(v);
    bullc_queue_free(q);
    redisFree(c);
}

static void complete(bullc_job *job, void *data) {
    (void)data;
    bullc_job_complete(job, "1");
}

Test(versions, a_worker_serves_a_5x_queue_with_5x_scripts) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "q", "bullmq:5.81.5");
    bullc_queue *q = queue_of(prefix, "q", 0);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(q, &err), 0, "%s", err.message);
    for (int i = 0; i < 3; i++) cr_assert_eq(bullc_queue_add(q, "j", "{}", NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(llen(c, prefix, "q", "paused"), 3);
    cr_assert_eq(bullc_queue_resume(q, &err), 0, "%s", err.message);
    wh h;
    wh_init(&h);
    h.want = 3;
    bullc_worker_opts *o = wh_opts(prefix);
    bullc_worker_opts_set_processor(o, complete, NULL);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 15000);
    cr_assert_eq(h.completed, 3, "errors: %s", h.errlog);
    cr_assert_eq(h.errors, 0, "%s", h.errlog);
    bullc_queue_free(q);
    redisFree(c);
}

Test(versions, an_explicit_major_the_meta_contradicts_writes_nothing) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "q", "bullmq:5.81.5");
    bullc_queue *q5 = queue_of(prefix, "q", 5);
    cr_assert_eq(bullc_queue_add(q5, "j", "{}", NULL, NULL, NULL), 0);
    bullc_queue_free(q5);
    char *before = snapshot(c, prefix);
    bullc_queue *q = queue_of(prefix, "q", 6);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add(q, "j", "{}", NULL, NULL, &err), BULLC_EVERSION);
    cr_assert(strstr(err.message, "bullmq:5.81.5") && strstr(err.message, "BullMQ 6 was chosen"), "%s", err.message);
    bullc_bulk_job bulk[2] = {{"a", "{}", NULL, NULL, 0}, {"b", "{}", NULL, NULL, 0}};
    cr_assert_eq(bullc_queue_add_bulk(q, bulk, 2, &err), BULLC_EVERSION);
    cr_assert_eq(bullc_queue_pause(q, &err), BULLC_EVERSION);
    const char *states[] = {"waiting"};
    int64_t n;
    cr_assert_eq(bullc_queue_count_jobs(q, states, 1, &n, &err), BULLC_EVERSION);
    char *rep = NULL;
    cr_assert_eq(bullc_queue_check_server(q, &rep, &err), 0, "%s", err.message);
    cr_assert(strstr(rep, "BullMQ 6 was chosen") && strstr(rep, "\"bullmqVersion\":null"), "%s", rep);
    bullc_free(rep);
    bullc_queue_free(q);
    /* the programs: bullc's verbs and bullc-worker exit 5 */
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --redis %s --prefix %s --bullmq-version 6 add q j '{}' 2>&1", tu_bin("bullc"),
             tu_redis_url(), prefix);
    cr_assert_eq(tu_run(cmd, &out), 5, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "BULLC_BULLMQ_VERSION=6 %s --redis %s --prefix %s pause q 2>&1", tu_bin("bullc"),
             tu_redis_url(), prefix);
    cr_assert_eq(tu_run(cmd, &out), 5, "%s", out);
    free(out);
    const char *args[] = {"--redis",   tu_redis_url(), "--prefix",         prefix, "--queue", "q",
                          "--builtin", "noop",         "--bullmq-version", "6",    NULL};
    sct_proc *p = sct_spawn("bullc-worker", "worker", args);
    int code = sct_wait_exit(p, 10000);
    char *log = sct_read(p->err);
    cr_assert_eq(code, 5, "%s", log);
    cr_assert(strstr(log, "bullmq:5.81.5"), "%s", log);
    free(log);
    char *after = snapshot(c, prefix);
    cr_assert_str_eq(after, before, "nothing written:\n%s\n---\n%s", before, after);
    free(before);
    free(after);
    redisFree(c);
}

Test(versions, an_unknown_major_is_refused_unless_chosen_and_never_rewritten) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "q", "bullmq:7.0.0");
    char *before = snapshot(c, prefix);
    bullc_queue *q = queue_of(prefix, "q", 0);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add(q, "j", "{}", NULL, NULL, &err), BULLC_EVERSION);
    cr_assert(strstr(err.message, "--bullmq-version"), "names the way out: %s", err.message);
    bullc_queue_free(q);
    char *after = snapshot(c, prefix);
    cr_assert_str_eq(after, before, "nothing written:\n%s\n---\n%s", before, after);
    free(before);
    free(after);
    q = queue_of(prefix, "q", 6);
    cr_assert_eq(bullc_queue_add(q, "j", "{}", NULL, NULL, &err), 0, "%s", err.message);
    char key[256];
    snprintf(key, sizeof key, "%s:q:meta", prefix);
    char *v = tu_hget(c, key, "version");
    cr_assert_str_eq(v, "bullmq:7.0.0", "another major's meta.version is left as it is");
    free(v);
    bullc_queue_free(q);
    redisFree(c);
}

/* ---- the meta changing major under a running worker ------------------------------ */

typedef struct takeover {
    wh *h;
    const char *prefix;
    uv_timer_t t;
    int ticks;
} takeover;

static void takeover_tick(uv_timer_t *t) {
    takeover *k = t->data;
    if (++k->ticks == 5) { /* the worker has run a while: a 5.x peer takes the queue over */
        redisContext *c = tu_redis();
        meta_as_node(c, k->prefix, "q", "bullmq:5.81.5");
        redisFree(c);
    }
    if (k->h->errors || k->ticks > 100) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        wh_close_all(k->h, false);
    }
}

Test(versions, meta_changing_major_stops_a_running_worker) {
    const char *prefix = tu_prefix();
    wh h;
    wh_init(&h);
    bullc_worker_opts *o = wh_opts(prefix);
    bullc_worker_opts_set_processor(o, complete, NULL);
    bullc_worker_opts_set_stalled_interval(o, 200);
    wh_add_worker(&h, "q", o);
    takeover k = {&h, prefix, {0}, 0};
    uv_timer_init(&h.loop, &k.t);
    k.t.data = &k;
    uv_timer_start(&k.t, takeover_tick, 100, 100);
    wh_run(&h, 20000);
    cr_assert_eq(h.errors, 1, "one error event: %s", h.errlog);
    cr_assert(strstr(h.errlog, "changed to bullmq:5.81.5"), "%s", h.errlog);

    /* bullc-worker: exit 5 */
    redisContext *c = tu_redis();
    freeReplyObject(tu_cmd(c, "DEL %s:q:meta", prefix));
    const char *args[] = {"--redis",   tu_redis_url(), "--prefix",           prefix, "--queue", "q",
                          "--builtin", "noop",         "--stalled-interval", "200",  NULL};
    sct_proc *p = sct_spawn("bullc-worker", "worker", args);
    cr_assert(sct_wait_for(p->err, "ready", 1, 10000), "bullc-worker did not start");
    meta_as_node(c, prefix, "q", "bullmq:5.81.5");
    int code = sct_wait_exit(p, 10000);
    char *log = sct_read(p->err);
    cr_assert_eq(code, 5, "%s", log);
    cr_assert(strstr(log, "BULLC_EVERSION"), "%s", log);
    free(log);
    redisFree(c);
}

/* ---- the programs' options ----------------------------------------------------- */

Test(versions, bad_values_exit_2_and_the_config_file_chooses_per_queue) {
    const char *prefix = tu_prefix();
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --redis %s --bullmq-version 7 counts q 2>&1", tu_bin("bullc"), tu_redis_url());
    cr_assert_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_assert(strstr(out, "--bullmq-version must be 5, 6 or auto"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "BULLC_BULLMQ_VERSION=4 %s --redis %s counts q 2>&1", tu_bin("bullc"), tu_redis_url());
    cr_assert_eq(tu_run(cmd, &out), 2, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --queue q --builtin noop --bullmq-version five 2>&1", tu_bin("bullc-worker"));
    cr_assert_eq(tu_run(cmd, &out), 2, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "BULLC_BULLMQ_VERSION=7 %s --queue q --builtin noop 2>&1", tu_bin("bullc-worker"));
    cr_assert_eq(tu_run(cmd, &out), 2, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --url ws://127.0.0.1:1 --provider p --bullmq-version 4 2>&1",
             tu_bin("bullc-socket-client"));
    cr_assert_eq(tu_run(cmd, &out), 2, "%s", out);
    free(out);

    /* the file's per-queue choice wins over its top level and the environment */
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "five", "bullmq:5.81.5");
    const char *path = sct_path("workers.json");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"bullmqVersion\": 5, \"queues\": {\"five\": {\"builtin\": \"noop\", \"bullmqVersion\": \"6\"}}}");
    fclose(f);
    const char *args[] = {"--redis", tu_redis_url(), "--prefix", prefix, "--config", path, NULL};
    sct_proc *p = sct_spawn("bullc-worker", "worker", args);
    int code = sct_wait_exit(p, 10000);
    char *log = sct_read(p->err);
    cr_assert_eq(code, 5, "queues.five.bullmqVersion 6 on a 5.x queue: %s", log);
    free(log);
    f = fopen(path, "w");
    fprintf(f, "{\"bullmqVersion\": \"auto\", \"queues\": {\"five\": {\"builtin\": \"noop\", \"bullmqVersion\": 5}}}");
    fclose(f);
    p = sct_spawn("bullc-worker", "worker", args);
    cr_assert(sct_wait_for(p->err, "ready", 1, 10000), "bullc-worker did not start on its 5.x queue");
    cr_assert_eq(sct_stop(p, SIGTERM, 10000), 0);
    redisFree(c);
}

/* ---- flows: one major per tree ------------------------------------------------- */

static bullc_flow_producer *flow_producer(const char *prefix, int major) {
    bullc_flow_producer_opts *o;
    cr_assert_eq(bullc_flow_producer_opts_new(&o), 0);
    int bad[] = {-1, 4, 7};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(bullc_flow_producer_opts_set_bullmq_version(o, bad[i]), BULLC_EINVAL);
    cr_assert_eq(bullc_flow_producer_opts_set_bullmq_version(o, major), 0);
    cr_assert_eq(bullc_flow_producer_opts_set_prefix(o, prefix), 0);
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_flow_producer_opts_set_redis(o, ro);
    bullc_redis_opts_free(ro);
    bullc_flow_producer *fp;
    cr_assert_eq(bullc_flow_producer_new(&fp, o, NULL), 0);
    bullc_flow_producer_opts_free(o);
    return fp;
}

#define TREE(root, kid1, kid2)                                                                                        \
    "{\"name\":\"p\",\"queueName\":\"" root "\",\"children\":[{\"name\":\"a\",\"queueName\":\"" kid1 "\"},{\"name\":" \
    "\"b\",\"queueName\":\"" kid2 "\"}]}"

/* A paused 5.x queue keeps its jobs in `paused`: a tree added there in 6.x's
 * layout would leave them in `wait`, where a 5.x resume loses them. */
Test(versions, a_flow_speaks_the_major_of_its_queues_meta) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "five", "bullmq:5.81.5");
    bullc_queue *q = queue_of(prefix, "five", 0);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(q, &err), 0, "%s", err.message);
    bullc_flow_producer *fp = flow_producer(prefix, 0);
    cr_assert_eq(bullc_flow_producer_add(fp, TREE("five", "five", "five"), NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(llen(c, prefix, "five", "paused"), 2, "5.x's adds beside its pause go to paused");
    cr_assert_eq(llen(c, prefix, "five", "wait"), 0);
    cr_assert_eq(bullc_queue_resume(q, &err), 0, "%s", err.message);
    cr_assert_eq(llen(c, prefix, "five", "wait"), 2);
    /* the same producer, a tree on queues without meta: 6.x, its own scripts */
    cr_assert_eq(bullc_flow_producer_add(fp, TREE("six", "six", "six"), NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(llen(c, prefix, "six", "wait"), 2);
    bullc_flow_producer_free(fp);
    bullc_queue_free(q);
    redisFree(c);
}

Test(versions, a_flow_over_queues_of_two_majors_writes_nothing) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "five", "bullmq:5.81.5");
    meta_as_node(c, prefix, "six", "bullmq:" BULLC_BULLMQ_VERSION);
    char *before = snapshot(c, prefix);
    bullc_flow_producer *fp = flow_producer(prefix, 0);
    bullc_error err = {0};
    cr_assert_eq(bullc_flow_producer_add(fp, TREE("five", "fresh", "six"), NULL, NULL, &err), BULLC_EVERSION);
    char five[128], six[128];
    snprintf(five, sizeof five, "queue %s:five has meta.version bullmq:5.81.5", prefix);
    snprintf(six, sizeof six, "queue %s:six has bullmq:%s", prefix, BULLC_BULLMQ_VERSION);
    cr_assert(strstr(err.message, five) && strstr(err.message, six), "%s", err.message);
    const char *bulk = "[" TREE("fresh", "fresh", "fresh") "," TREE("six", "five", "fresh") "]";
    cr_assert_eq(bullc_flow_producer_add_bulk(fp, bulk, NULL, &err), BULLC_EVERSION, "one tree refuses the bulk");
    bullc_flow_producer_free(fp);
    fp = flow_producer(prefix, 6);
    cr_assert_eq(bullc_flow_producer_add(fp, TREE("fresh", "fresh", "five"), NULL, NULL, &err), BULLC_EVERSION);
    snprintf(five, sizeof five, "queue %s:five: its meta.version is bullmq:5.81.5 (BullMQ 5) but BullMQ 6 was chosen",
             prefix);
    cr_assert(strstr(err.message, five), "%s", err.message);
    char *after = snapshot(c, prefix);
    cr_assert_str_eq(after, before, "nothing written:\n%s\n---\n%s", before, after);
    /* the connection a refusal left replies on is usable again */
    cr_assert_eq(bullc_flow_producer_add(fp, TREE("six", "fresh", "fresh"), NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(llen(c, prefix, "fresh", "wait"), 2);
    bullc_flow_producer_free(fp);
    free(before);
    free(after);
    redisFree(c);
}

/* ---- bullc_aqueue: the asynchronous getters, on both majors ---------------- */

typedef struct {
    int calls, status;
    char *json;
} answer;

static void on_answer(bullc_aqueue *aq, int status, const char *json, const bullc_error *err, void *data) {
    answer *a = data;
    (void)aq;
    cr_assert((status == 0) == (json != NULL) && (status == 0 || err), "a status goes with its JSON or its error");
    a->calls++;
    a->status = status;
    free(a->json);
    a->json = json ? strdup(json) : NULL;
}

/* Runs `loop` until every answer in `as` came (or 10 s went by). */
static void wait_answers(uv_loop_t *loop, answer *as, int n) {
    int64_t until = tu_now_ms() + 10000;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < n; i++) missing += as[i].calls == 0;
        if (!missing || tu_now_ms() > until) break;
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void on_aq_closed(bullc_aqueue *aq, void *data) {
    ++*(int *)data;
    bullc_aqueue_free(aq);
}

/* Closes `aq` and runs `loop` until its close callback ran, once. */
static void close_aqueue(uv_loop_t *loop, bullc_aqueue *aq) {
    int closed = 0;
    bullc_aqueue_close(aq, on_aq_closed, &closed);
    bullc_aqueue_close(aq, on_aq_closed, &closed); /* a second close does nothing */
    while (uv_run(loop, UV_RUN_ONCE)) {
    }
    cr_assert_eq(closed, 1, "the close callback runs exactly once");
    cr_assert_eq(uv_loop_close(loop), 0, "every handle of the queue is closed");
}

static bullc_aqueue *aqueue_of(uv_loop_t *loop, const char *prefix, const char *name, int major, const char *url) {
    bullc_queue_opts *qo;
    cr_assert_eq(bullc_queue_opts_new(&qo), 0);
    bullc_queue_opts_set_prefix(qo, prefix);
    bullc_queue_opts_set_bullmq_version(qo, major);
    bullc_redis_opts *ro = tu_redis_opts_url(url);
    bullc_redis_opts_set_timeouts(ro, 2000, 5000);
    bullc_queue_opts_set_redis(qo, ro);
    bullc_redis_opts_free(ro);
    bullc_aqueue *aq;
    bullc_error err = {0};
    cr_assert_eq(bullc_aqueue_new(&aq, loop, name, qo, &err), 0, "%s", err.message);
    bullc_queue_opts_free(qo);
    return aq;
}

/* A queue with a different number of jobs in every state its major lists:
 * waiting, delayed and prioritized ones added, the others put in place as a
 * worker would leave them (getCounts counts the structures). */
static void fill_every_state(redisContext *c, bullc_queue *q, const char *prefix, bool paused_list) {
    bullc_error err = {0};
    bullc_job_opts *delayed, *prioritized;
    bullc_job_opts_new(&delayed);
    bullc_job_opts_set_delay(delayed, 60000);
    bullc_job_opts_new(&prioritized);
    bullc_job_opts_set_priority(prioritized, 3);
    for (int i = 0; i < 6; i++) cr_assert_eq(bullc_queue_add(q, "w", "{}", NULL, NULL, &err), 0, "%s", err.message);
    for (int i = 0; i < 3; i++) cr_assert_eq(bullc_queue_add(q, "d", "{}", delayed, NULL, &err), 0, "%s", err.message);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(bullc_queue_add(q, "p", "{}", prioritized, NULL, &err), 0, "%s", err.message);
    bullc_job_opts_free(delayed);
    bullc_job_opts_free(prioritized);
    freeReplyObject(tu_cmd(c, "RPUSH %s:q:active a1", prefix));
    freeReplyObject(tu_cmd(c, "ZADD %s:q:completed 1 c1 2 c2", prefix));
    freeReplyObject(tu_cmd(c, "ZADD %s:q:failed 1 f1 2 f2 3 f3 4 f4", prefix));
    freeReplyObject(tu_cmd(c, "ZADD %s:q:waiting-children 1 k1 2 k2 3 k3 4 k4 5 k5 6 k6 7 k7", prefix));
    if (paused_list) freeReplyObject(tu_cmd(c, "RPUSH %s:q:paused p1 p2 p3 p4 p5 p6 p7 p8", prefix));
}

Test(versions, async_counts_and_job_equal_the_sync_getters_on_6x_and_5x) {
    for (int major = 6; major >= 5; major--) {
        const char *prefix = tu_prefix();
        redisContext *c = tu_redis();
        if (major == 5) meta_as_node(c, prefix, "q", "bullmq:5.81.5");
        bullc_queue *q = queue_of(prefix, "q", 0);
        fill_every_state(c, q, prefix, major == 5);
        bullc_error err = {0};
        char *sync_all = NULL, *sync_waiting = NULL, *sync_job = NULL;
        const char *waiting[] = {"waiting"};
        cr_assert_eq(bullc_queue_get_job_counts(q, NULL, 0, &sync_all, &err), 0, "%s", err.message);
        cr_assert_eq(bullc_queue_get_job_counts(q, waiting, 1, &sync_waiting, &err), 0, "%s", err.message);
        cr_assert_eq(bullc_queue_get_job(q, "2", &sync_job, &err), 0, "%s", err.message);
        cr_assert(strstr(sync_all, "\"failed\":4") && strstr(sync_all, "\"waiting-children\":7"), "%s", sync_all);
        cr_assert_eq(strstr(sync_all, "\"paused\":8") != NULL, major == 5, "%s", sync_all);

        uv_loop_t loop;
        uv_loop_init(&loop);
        /* major 0: settled from meta.version, as the synchronous handle did */
        bullc_aqueue *aq = aqueue_of(&loop, prefix, "q", 0, tu_redis_url());
        answer as[4] = {0};
        cr_assert_eq(bullc_aqueue_get_job_counts(aq, NULL, 0, on_answer, &as[0]), 0);
        cr_assert_eq(bullc_aqueue_get_job_counts(aq, waiting, 1, on_answer, &as[1]), 0);
        cr_assert_eq(bullc_aqueue_get_job(aq, "2", on_answer, &as[2]), 0);
        cr_assert_eq(bullc_aqueue_get_job(aq, "nope", on_answer, &as[3]), 0);
        cr_assert_eq(as[0].calls + as[1].calls + as[2].calls + as[3].calls, 0, "no callback inside the call");
        const char *bad[] = {"nowhere"};
        cr_assert_eq(bullc_aqueue_get_job_counts(aq, bad, 1, on_answer, &as[0]), BULLC_EINVAL);
        cr_assert_eq(bullc_aqueue_get_job(aq, "", on_answer, &as[0]), BULLC_EINVAL);
        wait_answers(&loop, as, 4);
        for (int i = 0; i < 4; i++) cr_assert_eq(as[i].calls, 1, "%d.x: call %d answered once", major, i);
        cr_assert_eq(as[0].status, 0);
        cr_assert_str_eq(as[0].json, sync_all, "%d.x: the default counts", major);
        cr_assert_str_eq(as[1].json, sync_waiting, "%d.x: waiting (and 5.x's paused)", major);
        cr_assert_str_eq(as[2].json, sync_job, "%d.x: one job", major);
        cr_assert_eq(as[3].status, BULLC_ENOTFOUND);
        close_aqueue(&loop, aq);
        for (int i = 0; i < 4; i++) free(as[i].json);
        bullc_free(sync_all);
        bullc_free(sync_waiting);
        bullc_free(sync_job);
        bullc_queue_free(q);
        redisFree(c);
    }
}

Test(versions, async_getters_answer_once_when_redis_is_down_and_when_closed) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", tu_free_port());
    bullc_aqueue *aq = aqueue_of(&loop, tu_prefix(), "q", 6, url);
    answer down[2] = {0};
    cr_assert_eq(bullc_aqueue_get_job_counts(aq, NULL, 0, on_answer, &down[0]), 0);
    wait_answers(&loop, down, 1);
    cr_assert_eq(down[0].status, BULLC_ECONN, "nothing listens there");
    cr_assert_eq(bullc_aqueue_get_job(aq, "1", on_answer, &down[1]), 0);
    cr_assert_eq(down[1].calls, 0, "no callback inside the call, even when Redis is known down");
    wait_answers(&loop, down, 2);
    /* the backoff's retries go on: no second answer to a call */
    int64_t until = tu_now_ms() + 500;
    while (tu_now_ms() < until) uv_run(&loop, UV_RUN_NOWAIT), usleep(2000);
    cr_assert(down[0].calls == 1 && down[1].calls == 1 && down[1].status == BULLC_ECONN);
    close_aqueue(&loop, aq);

    /* closed with calls in flight and waiting: each answered once, cancelled */
    uv_loop_init(&loop);
    aq = aqueue_of(&loop, tu_prefix(), "q", 0, tu_redis_url());
    answer first = {0}, more[3] = {0};
    cr_assert_eq(bullc_aqueue_get_job_counts(aq, NULL, 0, on_answer, &first), 0);
    wait_answers(&loop, &first, 1);
    cr_assert_eq(first.status, 0, "connected");
    cr_assert_eq(bullc_aqueue_get_job_counts(aq, NULL, 0, on_answer, &more[0]), 0);
    cr_assert_eq(bullc_aqueue_get_job(aq, "1", on_answer, &more[1]), 0);
    cr_assert_eq(bullc_aqueue_get_job_counts(aq, NULL, 0, on_answer, &more[2]), 0);
    int closed = 0;
    bullc_aqueue_close(aq, on_aq_closed, &closed);
    for (int i = 0; i < 3; i++)
        cr_assert(more[i].calls == 1 && more[i].status == BULLC_ECLOSED, "call %d: %d answers, status %d", i,
                  more[i].calls, more[i].status);
    while (uv_run(&loop, UV_RUN_ONCE)) {
    }
    cr_assert_eq(closed, 1);
    for (int i = 0; i < 3; i++) cr_assert_eq(more[i].calls, 1, "still once after the loop ran");
    cr_assert_eq(uv_loop_close(&loop), 0);
    free(first.json);
}

/* ---- bullc_aqueue: adds ----------------------------------------------------- */

typedef struct {
    int calls, status;
    char *id;      /* a single add's */
    char **ids;    /* a bulk's, each job's */
    int *statuses; /* a bulk's, each job's */
    size_t n;
} added;

static void on_added(bullc_aqueue *aq, int status, const char *id, const bullc_error *err, void *data) {
    added *a = data;
    (void)aq;
    cr_assert((status >= 0) == (id != NULL) && (status >= 0 || err), "a status goes with its id or its error");
    a->calls++;
    a->status = status;
    a->id = id ? strdup(id) : NULL;
}

static void on_bulk(bullc_aqueue *aq, int status, const bullc_bulk_job *jobs, size_t n, const bullc_error *err,
                    void *data) {
    added *a = data;
    (void)aq;
    cr_assert(status == 0 || err);
    a->calls++;
    a->status = status;
    a->n = n;
    a->ids = calloc(n, sizeof *a->ids);
    a->statuses = calloc(n, sizeof *a->statuses);
    for (size_t i = 0; i < n; i++) {
        cr_assert((status == 0) == (jobs[i].id != NULL), "job %zu: an id only when added", i);
        a->ids[i] = jobs[i].id ? strdup(jobs[i].id) : NULL;
        a->statuses[i] = jobs[i].status;
    }
}

static void added_free(added *a) {
    free(a->id);
    for (size_t i = 0; i < a->n; i++) free(a->ids[i]);
    free(a->ids);
    free(a->statuses);
}

static void wait_added(uv_loop_t *loop, added *as, int n) {
    int64_t until = tu_now_ms() + 20000;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < n; i++) missing += as[i].calls == 0;
        if (!missing || tu_now_ms() > until) break;
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

/* The test's own keys: DBSIZE also counts what earlier tests left on the
 * slot's server, whose TTLs (locks, rate limits) may run out at any moment. */
static size_t keys_under(redisContext *c, const char *prefix) {
    redisReply *r = tu_cmd(c, "KEYS %s:*", prefix);
    size_t n = r->elements;
    freeReplyObject(r);
    return n;
}

Test(versions, async_add_options_bulk_and_refusals_on_6x_and_5x) {
    for (int major = 6; major >= 5; major--) {
        const char *prefix = tu_prefix();
        redisContext *c = tu_redis();
        if (major == 5) meta_as_node(c, prefix, "q", "bullmq:5.81.5");
        uv_loop_t loop;
        uv_loop_init(&loop);
        bullc_aqueue *aq = aqueue_of(&loop, prefix, "q", 0, tu_redis_url());
        bullc_error err = {0};
        /* refused during the call, before Redis is even reached: nothing written */
        size_t before = keys_under(c, prefix);
        bullc_job_opts *bad = tu_job_opts("{\"sizeLimit\":3}"), *id = tu_job_opts("{\"jobId\":\"order-1\"}"),
                       *delay = tu_job_opts("{\"delay\":60000}"), *prio = tu_job_opts("{\"priority\":4}"),
                       *dedup = tu_job_opts("{\"deduplication\":{\"id\":\"d1\"}}"),
                       *roc = tu_job_opts("{\"removeOnComplete\":true}");
        added none = {0};
        cr_assert_eq(bullc_aqueue_add(aq, "x", "{\"a\":1}", bad, on_added, &none, &err), BULLC_EINVAL);
        cr_assert(strstr(err.message, "exceeds the limit"), "%s", err.message);
        cr_assert_eq(bullc_aqueue_add(aq, "x", "{not json", NULL, on_added, &none, &err), BULLC_EINVAL);
        bullc_bulk_job badbulk[3] = {
            {"a", "{}", NULL, NULL, 0}, {"b", "{\"a\":1}", bad, NULL, 0}, {"c", "{}", NULL, NULL, 0}};
        cr_assert_eq(bullc_aqueue_add_bulk(aq, badbulk, 3, on_bulk, &none, &err), BULLC_EINVAL);
        cr_assert(!strncmp(err.message, "job 1: ", 7), "%s", err.message);
        cr_assert(badbulk[1].status == BULLC_EINVAL && badbulk[0].status == 0);
        for (int i = 0; i < 50; i++) uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
        cr_assert_eq(keys_under(c, prefix), before, "a refused add writes nothing");
        cr_assert_eq(none.calls, 0, "a refused add has no callback");

        added a[8] = {0};
        cr_assert_eq(bullc_aqueue_add(aq, "plain", "{\"n\":1}", NULL, on_added, &a[0], &err), 0, "%s", err.message);
        cr_assert_eq(bullc_aqueue_add(aq, "custom", "{}", id, on_added, &a[1], &err), 0, "%s", err.message);
        cr_assert_eq(bullc_aqueue_add(aq, "custom", "{}", id, on_added, &a[2], &err), 0, "%s", err.message);
        cr_assert_eq(bullc_aqueue_add(aq, "later", "{}", delay, on_added, &a[3], &err), 0, "%s", err.message);
        cr_assert_eq(bullc_aqueue_add(aq, "urgent", "{}", prio, on_added, &a[4], &err), 0, "%s", err.message);
        cr_assert_eq(bullc_aqueue_add(aq, "once", "{}", dedup, on_added, &a[5], &err), 0, "%s", err.message);
        cr_assert_eq(bullc_aqueue_add(aq, "once", "{}", dedup, on_added, &a[6], &err), 0, "%s", err.message);
        cr_assert_eq(bullc_aqueue_add(aq, "tidy", "{}", roc, on_added, &a[7], &err), 0, "%s", err.message);
        for (int i = 0; i < 8; i++) cr_assert_eq(a[i].calls, 0, "no callback inside the call");
        /* the caller's inputs are copied: freed before the answers come */
        bullc_job_opts_free(id), bullc_job_opts_free(delay), bullc_job_opts_free(prio);
        bullc_job_opts_free(dedup), bullc_job_opts_free(roc);
        wait_added(&loop, a, 8);
        for (int i = 0; i < 8; i++) cr_assert_eq(a[i].calls, 1, "%d.x: add %d answered once", major, i);
        cr_assert_eq(a[0].status, 0);
        cr_assert_str_eq(a[1].id, "order-1");
        cr_assert(a[1].status == 0 && a[2].status == 1, "a second add of a jobId answers 1");
        cr_assert(a[5].status == 0 && a[6].status == 1 && !strcmp(a[5].id, a[6].id), "deduplicated");
        char k[256];
        snprintf(k, sizeof k, "%s:q:delayed", prefix);
        redisReply *r = tu_cmd(c, "ZSCORE %s %s", k, a[3].id);
        cr_assert_eq(r->type, REDIS_REPLY_STRING, "the delayed job is in the delayed set");
        freeReplyObject(r);
        snprintf(k, sizeof k, "%s:q:prioritized", prefix);
        r = tu_cmd(c, "ZSCORE %s %s", k, a[4].id);
        cr_assert_eq(r->type, REDIS_REPLY_STRING, "the prioritized job is in the prioritized set");
        freeReplyObject(r);
        snprintf(k, sizeof k, "%s:q:%s", prefix, a[7].id);
        char *o = tu_hget(c, k, "opts");
        cr_assert(o && strstr(o, "\"removeOnComplete\":true"), "%s", o ? o : "(none)");
        free(o);
        snprintf(k, sizeof k, "%s:q:meta", prefix);
        char *version = tu_hget(c, k, "version");
        cr_assert_str_eq(version, major == 6 ? "bullmq:6.7.0" : "bullmq:5.81.5", "the meta written with the first add");
        free(version);

        /* the scripts flushed under the connection: NOSCRIPT in EXEC, loaded again, sent again, once */
        freeReplyObject(tu_cmd(c, "SCRIPT FLUSH"));
        added again = {0};
        cr_assert_eq(bullc_aqueue_add(aq, "again", "{}", NULL, on_added, &again, &err), 0, "%s", err.message);
        wait_added(&loop, &again, 1);
        cr_assert(again.calls == 1 && again.status == 0, "%d.x: added after SCRIPT FLUSH (%d)", major, again.status);
        added_free(&again);

        /* a bulk of 1,000, whole, in order */
        enum { N = 1000 };
        static bullc_bulk_job jobs[N];
        bullc_job_opts *shared = tu_job_opts("{\"attempts\":3}");
        for (int i = 0; i < N; i++) jobs[i] = (bullc_bulk_job){"bulk", "{\"i\":1}", shared, NULL, 0};
        added bulk = {0};
        cr_assert_eq(bullc_aqueue_add_bulk(aq, jobs, N, on_bulk, &bulk, &err), 0, "%s", err.message);
        bullc_job_opts_free(shared);
        wait_added(&loop, &bulk, 1);
        cr_assert(bulk.calls == 1 && bulk.status == 0 && bulk.n == N);
        for (int i = 1; i < N; i++) cr_assert_eq(atoll(bulk.ids[i]), atoll(bulk.ids[i - 1]) + 1, "ids in order");
        cr_assert_eq(llen(c, prefix, "q", "wait"), N + 5, "plain, custom, once, tidy, again and the bulk");
        close_aqueue(&loop, aq);
        for (int i = 0; i < 8; i++) added_free(&a[i]);
        added_free(&bulk);
        bullc_job_opts_free(bad);
        redisFree(c);
    }
}

static void on_no_job(bullc_aqueue *aq, int status, const char *id, const bullc_error *err, void *data) {
    added *a = data;
    (void)aq;
    (void)err;
    a->calls++;
    a->status = id ? -1000 : status;
}

/* The hash at "<prefix>:<queue>:<key>", its fields in order, the volatile
 * ones (the add's clock) left out. */
static char *hash_of(redisContext *c, const char *prefix, const char *queue, const char *key) {
    redisReply *r = tu_cmd(c, "HGETALL %s:%s:%s", prefix, queue, key);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements > 0, "%s:%s:%s exists", prefix, queue, key);
    char *out = calloc(1, 1);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!strcmp(f, "timestamp") || !strcmp(f, "delay")) continue;
        cJSON *o = !strcmp(f, "opts") ? cJSON_Parse(v) : NULL;
        cJSON_DeleteItemFromObject(o, "timestamp"), cJSON_DeleteItemFromObject(o, "delay");
        char *ov = o ? cJSON_PrintUnformatted(o) : NULL;
        size_t n = strlen(out) + strlen(f) + strlen(ov ? ov : v) + 3;
        out = realloc(out, n);
        strcat(strcat(strcat(strcat(out, f), "="), ov ? ov : v), "\n");
        free(ov);
        cJSON_Delete(o);
    }
    freeReplyObject(r);
    return out;
}

/* A 5.x legacy repeatable job added on the loop writes what the synchronous
 * add writes (the repeat entry and hash, the delayed job), answered once and
 * never inside the call; none when its limit is reached; BULLC_ECLOSED once
 * when the handle closes with the first of its two calls in flight. */
Test(versions, async_repeat_on_5x_adds_what_the_sync_add_adds_and_answers_once) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "qa", "bullmq:5.81.5");
    meta_as_node(c, prefix, "qs", "bullmq:5.81.5");
    uv_loop_t loop;
    uv_loop_init(&loop);
    bullc_aqueue *aq = aqueue_of(&loop, prefix, "qa", 0, tu_redis_url());
    bullc_queue *q = queue_of(prefix, "qs", 0);
    bullc_job_opts *rep = tu_job_opts("{\"repeat\":{\"every\":3600000,\"tz\":\"UTC\"},\"attempts\":2}"),
                   *spent = tu_job_opts("{\"repeat\":{\"every\":1000,\"limit\":0}}");
    bullc_error err = {0};
    char *sync_id = NULL;
    cr_assert_eq(bullc_queue_add(q, "r", "{\"x\":1}", rep, &sync_id, &err), 0, "%s", err.message);
    added a = {0}, none = {0}, gone = {0};
    cr_assert_eq(bullc_aqueue_add(aq, "r", "{\"x\":1}", rep, on_added, &a, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_aqueue_add(aq, "r", "{}", spent, on_no_job, &none, &err), 0, "%s", err.message);
    cr_assert(a.calls == 0 && none.calls == 0, "no callback inside the call");
    wait_added(&loop, &a, 1);
    wait_added(&loop, &none, 1);
    cr_assert(a.calls == 1 && a.status == 0, "%d", a.status);
    cr_assert(none.calls == 1 && none.status == 0, "the limit reached: no job, no error (%d)", none.status);
    cr_assert_str_eq(a.id, sync_id, "the same job id: the same repeat key and time slot");
    char *ka = NULL, *ks = NULL, *ha, *hs;
    for (int i = 0; i < 2; i++) {
        redisReply *r = tu_cmd(c, "ZRANGE %s:%s:repeat 0 -1 WITHSCORES", prefix, i ? "qs" : "qa");
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2, "one repeat entry");
        *(i ? &ks : &ka) = strdup(r->element[0]->str);
        cr_assert(strstr(sync_id, r->element[0]->str) && strstr(sync_id, r->element[1]->str), "%s", sync_id);
        freeReplyObject(r);
    }
    cr_assert_str_eq(ka, ks);
    char rk[128];
    snprintf(rk, sizeof rk, "repeat:%s", ka);
    ha = hash_of(c, prefix, "qa", rk), hs = hash_of(c, prefix, "qs", rk);
    cr_assert_str_eq(ha, hs, "the repeat hash");
    free(ha), free(hs);
    ha = hash_of(c, prefix, "qa", a.id), hs = hash_of(c, prefix, "qs", sync_id);
    cr_assert_str_eq(ha, hs, "the job hash");
    free(ha), free(hs);
    redisReply *r = tu_cmd(c, "ZSCORE %s:qa:delayed %s", prefix, a.id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "the job is delayed");
    freeReplyObject(r);

    /* closed with addRepeatableJob in flight: answered once, BULLC_ECLOSED */
    cr_assert_eq(bullc_aqueue_add(aq, "r2", "{}", rep, on_added, &gone, &err), 0, "%s", err.message);
    close_aqueue(&loop, aq); /* runs the loop until every reply came or was dropped */
    cr_assert(gone.calls == 1 && gone.status == BULLC_ECLOSED, "%d calls, %d", gone.calls, gone.status);
    bullc_job_opts_free(rep), bullc_job_opts_free(spent);
    bullc_queue_free(q);
    bullc_free(sync_id);
    free(ka), free(ks);
    added_free(&a), added_free(&gone);
    redisFree(c);
}

/* Redis killed (kill -9, appendfsync always) and restarted while adds are in
 * flight: every callback runs once, and every job reported added is in
 * Redis once. */
Test(versions, async_adds_across_a_redis_kill_are_answered_once_and_never_doubled) {
    private_redis pr;
    pr_start(&pr, "--appendonly yes --appendfsync always");
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *prefix = tu_prefix();
    bullc_aqueue *aq = aqueue_of(&loop, prefix, "q", 6, pr.url);
    enum { CALLS = 400, PER = 5 };
    static added as[CALLS];
    static bullc_bulk_job jobs[PER];
    for (int i = 0; i < PER; i++) jobs[i] = (bullc_bulk_job){"j", "{}", NULL, NULL, 0};
    bullc_error err = {0};
    int sent = 0;
    bool killed = false, restarted = false;
    int64_t until = tu_now_ms() + 30000;
    while (sent < CALLS && tu_now_ms() < until) {
        /* a few in flight at a time, so that the kill lands among them */
        int answered = 0;
        for (int i = 0; i < sent; i++) answered += as[i].calls > 0;
        if (sent - answered < 8) {
            cr_assert_eq(bullc_aqueue_add_bulk(aq, jobs, PER, on_bulk, &as[sent], &err), 0, "%s", err.message);
            sent++;
        }
        if (!killed && answered >= 100) {
            pr_kill(&pr);
            killed = true;
        } else if (killed && !restarted && sent >= 250) {
            pr_up(&pr);
            restarted = true;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    if (!restarted) pr_up(&pr);
    wait_added(&loop, as, sent);
    int ok = 0, failed = 0;
    redisContext *c = pr_connect(&pr);
    for (int i = 0; i < sent; i++) {
        cr_assert_eq(as[i].calls, 1, "call %d answered once", i);
        if (as[i].status) {
            failed++;
            continue;
        }
        ok++;
        for (size_t j = 0; j < PER; j++) {
            char k[256];
            snprintf(k, sizeof k, "%s:q:%s", prefix, as[i].ids[j]);
            redisReply *r = tu_cmd(c, "EXISTS %s", k);
            cr_assert_eq(r->integer, 1, "job %s reported added is in Redis", as[i].ids[j]);
            freeReplyObject(r);
        }
    }
    cr_assert(ok >= 100 && failed > 0, "%d added, %d failed: the kill landed among the adds", ok, failed);
    /* each id reported once: a job is never reported twice (nor resent) */
    char key[256];
    snprintf(key, sizeof key, "%s:q:wait", prefix);
    redisReply *r = tu_cmd(c, "LLEN %s", key);
    cr_assert(r->integer >= ok * PER, "%lld jobs waiting, %d reported added", r->integer, ok * PER);
    cr_assert(r->integer <= (ok + failed) * PER, "no job added twice: %lld for %d calls", r->integer, ok + failed);
    freeReplyObject(r);
    redisFree(c);
    close_aqueue(&loop, aq);
    for (int i = 0; i < sent; i++) added_free(&as[i]);
    pr_stop(&pr);
}

static void on_conn_closed(bullc_aqueue_conn *conn, void *data) {
    ++*(int *)data;
    bullc_aqueue_conn_free(conn);
}

/* A connection set on `loop` (initialised here) to the Redis at `url`, and
 * `n` handles on it in q[], with the settings `qo` (NULL: the defaults),
 * for the queues `names` (NULL: q0, q1...). */
static bullc_aqueue_conn *shared_handles(uv_loop_t *loop, const char *url, const bullc_queue_opts *qo,
                                         const char *const *names, bullc_aqueue **q, int n) {
    uv_loop_init(loop);
    bullc_redis_opts *ro = tu_redis_opts_url(url);
    bullc_aqueue_conn *conn;
    bullc_error err = {0};
    cr_assert_eq(bullc_aqueue_conn_new(&conn, loop, ro, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "q%d", i);
        cr_assert_eq(bullc_aqueue_new_shared(&q[i], conn, names ? names[i] : name, qo, &err), 0, "%s", err.message);
    }
    return conn;
}

Test(versions, async_handles_sharing_one_connection_answer_as_their_own_and_close_in_any_order) {
    const char *prefix = tu_prefix();
    redisContext *c = tu_redis();
    meta_as_node(c, prefix, "five", "bullmq:5.81.5");
    freeReplyObject(tu_cmd(c, "ZADD %s:five:failed 1 f1 2 f2", prefix));
    freeReplyObject(tu_cmd(c, "ZADD %s:six:completed 1 c1 2 c2 3 c3", prefix));
    uv_loop_t loop;
    bullc_queue_opts *qo;
    bullc_queue_opts_new(&qo);
    bullc_queue_opts_set_prefix(qo, prefix);
    bullc_aqueue *h[2];
    const char *names[] = {"five", "six"};
    bullc_aqueue_conn *conn = shared_handles(&loop, tu_redis_url(), qo, names, h, 2);
    bullc_aqueue *five = h[0], *six = h[1];
    bullc_error err = {0};
    answer as[3] = {0};
    cr_assert_eq(bullc_aqueue_get_job_counts(five, NULL, 0, on_answer, &as[0]), 0);
    cr_assert_eq(bullc_aqueue_get_job_counts(six, NULL, 0, on_answer, &as[1]), 0);
    wait_answers(&loop, as, 2);
    cr_assert(as[0].status == 0 && strstr(as[0].json, "\"failed\":2") && strstr(as[0].json, "\"paused\":0"), "%s",
              as[0].json);
    cr_assert(as[1].status == 0 && strstr(as[1].json, "\"completed\":3") && !strstr(as[1].json, "paused"), "%s",
              as[1].json);
    redisReply *r = tu_cmd(c, "CLIENT LIST");
    cr_assert(r && r->type == REDIS_REPLY_STRING && !strstr(r->str, prefix), "not named for a queue");
    freeReplyObject(r);

    /* adds of both handles interleaved on the one connection: each lands in its queue */
    added ad[6] = {0};
    bullc_bulk_job two[2] = {{"b", "{}", NULL, NULL, 0}, {"b", "{}", NULL, NULL, 0}};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(bullc_aqueue_add(five, "f", "{}", NULL, on_added, &ad[2 * i], &err), 0, "%s", err.message);
        cr_assert_eq(bullc_aqueue_add_bulk(six, two, 2, on_bulk, &ad[2 * i + 1], &err), 0, "%s", err.message);
    }
    wait_added(&loop, ad, 6);
    for (int i = 0; i < 6; i++) cr_assert(ad[i].calls == 1 && ad[i].status == 0, "add %d: %d", i, ad[i].status);
    cr_assert(llen(c, prefix, "five", "wait") == 3 && llen(c, prefix, "six", "wait") == 6);
    char mk[256];
    snprintf(mk, sizeof mk, "%s:five:meta", prefix);
    char *version = tu_hget(c, mk, "version");
    cr_assert_str_eq(version, "bullmq:5.81.5", "each handle's own major");
    free(version);

    /* one handle closed with a call and an add in flight: the connection stays for the other */
    int closed = 0, conn_closed = 0;
    answer gone = {0};
    added gone_add = {0};
    cr_assert_eq(bullc_aqueue_get_job_counts(five, NULL, 0, on_answer, &gone), 0);
    cr_assert_eq(bullc_aqueue_add(five, "f", "{}", NULL, on_added, &gone_add, &err), 0, "%s", err.message);
    bullc_aqueue_close(five, on_aq_closed, &closed);
    cr_assert(gone.calls == 1 && gone.status == BULLC_ECLOSED);
    cr_assert(gone_add.calls == 1 && gone_add.status == BULLC_ECLOSED, "%d", gone_add.status);
    cr_assert_eq(bullc_aqueue_get_job_counts(six, NULL, 0, on_answer, &as[2]), 0);
    wait_answers(&loop, &as[2], 1);
    cr_assert_eq(as[2].status, 0, "%d", as[2].status);
    /* the set closed before its last handle: it waits for it */
    bullc_aqueue_conn_close(conn, on_conn_closed, &conn_closed);
    cr_assert_eq(bullc_aqueue_new_shared(&five, conn, "five", qo, &err), BULLC_ECLOSED);
    for (int i = 0; i < 50; i++) uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
    cr_assert(closed == 1 && conn_closed == 0 && gone.calls == 1 && gone_add.calls == 1, "closed %d, set closed %d",
              closed, conn_closed);
    bullc_aqueue_close(six, on_aq_closed, &closed);
    while (uv_run(&loop, UV_RUN_ONCE)) {
    }
    cr_assert(closed == 2 && conn_closed == 1, "closed %d, set closed %d", closed, conn_closed);
    cr_assert_eq(uv_loop_close(&loop), 0);
    bullc_queue_opts_free(qo);
    for (int i = 0; i < 3; i++) free(as[i].json);
    for (int i = 0; i < 6; i++) added_free(&ad[i]);
    added_free(&gone_add);
    free(gone.json);
    redisFree(c);
}

/* SCRIPT LOADs Redis ran so far (commandstats: "script|load" since Redis 7). */
static long long script_loads(redisContext *c) {
    redisReply *r = tu_cmd(c, "INFO commandstats");
    const char *at = strstr(r->str, "cmdstat_script|load:calls=");
    if (!at) at = strstr(r->str, "cmdstat_script:calls=");
    long long n = at ? atoll(strchr(at, '=') + 1) : 0;
    freeReplyObject(r);
    return n;
}

/* One add of each handle in `q`, retried while the set reconnects
 * (answered ECONN at once until it is back). */
static void add_each(uv_loop_t *loop, bullc_aqueue **q, int n) {
    for (int i = 0; i < n; i++)
        for (int64_t until = tu_now_ms() + 10000;;) {
            added a = {0};
            bullc_error err = {0};
            cr_assert_eq(bullc_aqueue_add(q[i], "j", "{}", NULL, on_added, &a, &err), 0, "%s", err.message);
            wait_added(loop, &a, 1);
            cr_assert_eq(a.calls, 1, "handle %d: answered", i);
            int status = a.status;
            added_free(&a);
            if (!status) break;
            cr_assert(tu_now_ms() < until, "handle %d: %d", i, status);
            usleep(20000);
        }
}

/* Closes the set (first: it waits for its handles) and its `n` handles. */
static void close_shared(uv_loop_t *loop, bullc_aqueue_conn *conn, bullc_aqueue **q, int n) {
    int closed = 0, conn_closed = 0;
    bullc_aqueue_conn_close(conn, on_conn_closed, &conn_closed);
    for (int i = 0; i < n; i++) bullc_aqueue_close(q[i], on_aq_closed, &closed);
    while (uv_run(loop, UV_RUN_ONCE)) {
    }
    cr_assert(closed == n && conn_closed == 1);
    cr_assert_eq(uv_loop_close(loop), 0);
}

/* The add scripts are loaded once per connection, not once per handle:
 * 20 handles' first adds cost 3 SCRIPT LOADs, and 3 again once the
 * connection was killed and made again. */
Test(versions, shared_handles_load_the_add_scripts_once_per_connection) {
    private_redis pr;
    pr_start(&pr, NULL);
    redisContext *c = pr_connect(&pr);
    uv_loop_t loop;
    enum { N = 20 };
    bullc_aqueue *q[N];
    bullc_aqueue_conn *conn = shared_handles(&loop, pr.url, NULL, NULL, q, N);
    long long before = script_loads(c);
    add_each(&loop, q, N);
    cr_assert_eq(script_loads(c) - before, 3, "%lld SCRIPT LOADs", script_loads(c) - before);
    redisReply *r = tu_cmd(c, "CLIENT KILL TYPE normal SKIPME yes");
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer == 1, "the set's one connection killed");
    freeReplyObject(r);
    before = script_loads(c);
    add_each(&loop, q, N);
    cr_assert_eq(script_loads(c) - before, 3, "after the reconnect: %lld SCRIPT LOADs", script_loads(c) - before);
    close_shared(&loop, conn, q, N);
    redisFree(c);
    pr_stop(&pr);
}

typedef struct {
    int calls, status;
    bool may_be_written;
} lost_add;

static void on_lost_add(bullc_aqueue *aq, int status, const char *id, const bullc_error *err, void *data) {
    lost_add *l = data;
    (void)aq;
    (void)id;
    l->calls++;
    l->status = status;
    l->may_be_written = err && strstr(err->message, "may have been written");
}

/* Redis killed with adds of two shared handles in flight (held by CLIENT
 * PAUSE, so that none is answered first; one a 5.x legacy repeatable job's
 * first call): each callback runs once, saying the add may have been
 * written; the set serves both once Redis is back. */
Test(versions, adds_of_shared_handles_in_flight_when_redis_dies_are_answered_once) {
    private_redis pr;
    pr_start(&pr, NULL);
    redisContext *c = pr_connect(&pr);
    meta_as_node(c, "bull", "q1", "bullmq:5.81.5"); /* q[1] speaks 5.x */
    uv_loop_t loop;
    bullc_aqueue *q[2];
    bullc_aqueue_conn *conn = shared_handles(&loop, pr.url, NULL, NULL, q, 2);
    bullc_error err = {0};
    added warm[2] = {0};
    for (int i = 0; i < 2; i++) cr_assert_eq(bullc_aqueue_add(q[i], "w", "{}", NULL, on_added, &warm[i], &err), 0);
    wait_added(&loop, warm, 2);
    cr_assert(warm[0].status == 0 && warm[1].status == 0);
    freeReplyObject(redisCommand(c, "CLIENT PAUSE 10000 ALL"));
    enum { N = 11 };
    lost_add l[N] = {{0}};
    bullc_job_opts *rep = tu_job_opts("{\"repeat\":{\"every\":60000}}");
    for (int i = 0; i < N; i++)
        cr_assert_eq(bullc_aqueue_add(q[i % 2], "j", "{}", i == N - 2 ? rep : NULL, on_lost_add, &l[i], &err), 0);
    bullc_job_opts_free(rep);
    for (int i = 0; i < 50; i++) uv_run(&loop, UV_RUN_NOWAIT), usleep(1000); /* written out, unanswered */
    for (int i = 0; i < N; i++) cr_assert_eq(l[i].calls, 0, "add %d held by the pause", i);
    pr_kill(&pr);
    redisFree(c);
    int64_t until = tu_now_ms() + 10000;
    for (int missing = N; missing && tu_now_ms() < until;) {
        uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
        missing = 0;
        for (int i = 0; i < N; i++) missing += !l[i].calls;
    }
    for (int i = 0; i < 200; i++) uv_run(&loop, UV_RUN_NOWAIT), usleep(1000); /* and never again */
    for (int i = 0; i < N; i++)
        cr_assert(l[i].calls == 1 && l[i].status == BULLC_ECONN && l[i].may_be_written, "add %d: %d calls, %d", i,
                  l[i].calls, l[i].status);
    pr_up(&pr);
    add_each(&loop, q, 2); /* the set serves both again */
    close_shared(&loop, conn, q, 2);
    for (int i = 0; i < 2; i++) added_free(&warm[i]);
    pr_stop(&pr);
}
