/* SPDX-License-Identifier: MIT */
/* Node BullMQ's removeOrphanedJobs cases (clean.test.ts, clean.redis.test.ts):
 * job keys that no state references are removed with their sub-keys, and
 * nothing else is: not a job in any state, not the queue's own keys, not the
 * keys under repeat: or de:. Orphans are made by writing keys directly, as
 * Node's cases do. The last case drives `bullc remove-orphans`. */
#include "test_parity_util.h"

TestSuite(parity_orphans, .timeout = 60);

static int64_t remove_orphans(ph *h, int64_t count) {
    int64_t removed = -1;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_orphaned_jobs(h->q, count, 0, &removed, &err), 0, "%s", err.message);
    return removed;
}

static long long exists(ph *h, const char *suffix) { return ph_icmd("EXISTS %s", ph_key(h, suffix)); }

static void orphan_hash(ph *h, const char *id) { ph_vcmd("HSET %s name orphan data {}", ph_key(h, id)); }

/* node: "[Cleaner > removeOrphanedJobs] should return 0 on an empty queue" */
Test(parity_orphans, zero_on_empty_queue) {
    ph *h = ph_new("q");
    cr_assert_eq(remove_orphans(h, 0), 0);
    ph_end(h);
}

/* node: "[Cleaner > removeOrphanedJobs] should return 0 when all jobs are in a state set" */
Test(parity_orphans, zero_when_all_jobs_in_a_state) {
    ph *h = ph_new("q");
    const char *ids[3] = {ph_add(h, "a", "{}", NULL), ph_add(h, "b", "{}", "{\"delay\":60000}"),
                          ph_add(h, "c", "{}", "{\"priority\":2}")};
    /* a live job's own sub-keys are not an orphan's either */
    char logs[96];
    snprintf(logs, sizeof logs, "%s:logs", ids[0]);
    ph_vcmd("RPUSH %s line", ph_key(h, logs));
    cr_assert_eq(remove_orphans(h, 0), 0);
    for (int i = 0; i < 3; i++) cr_assert(ph_job_exists(h, ids[i]));
    cr_assert_eq(exists(h, logs), 1);
    ph_end(h);
}

/* node: "[Cleaner > removeOrphanedJobs] should not remove jobs in the wait state" */
Test(parity_orphans, keeps_wait) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"data\":1}", NULL);
    cr_assert_eq(remove_orphans(h, 0), 0);
    cr_assert(ph_job_exists(h, id));
    ph_end(h);
}

static int64_t removed_while_active = -1;
static void check_while_active(ph *h, bullc_job *job, int widx) {
    (void)widx;
    removed_while_active = remove_orphans(h, 0);
    ph_complete(h, job, NULL);
}

/* node: "[Cleaner > removeOrphanedJobs] should not remove jobs in the active state" */
Test(parity_orphans, keeps_active) {
    ph *h = ph_new("q");
    h->proc = check_while_active;
    const char *id = ph_add(h, "test", "{\"data\":1}", NULL);
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_eq(removed_while_active, 0);
    cr_assert(ph_job_exists(h, id));
    ph_end(h);
}

static void complete_it(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, "\"done\"");
}

/* node: "[Cleaner > removeOrphanedJobs] should not remove jobs in the completed state" */
Test(parity_orphans, keeps_completed) {
    ph *h = ph_new("q");
    h->proc = complete_it;
    const char *id = ph_add(h, "test", "{\"data\":1}", NULL);
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_eq(remove_orphans(h, 0), 0);
    cr_assert_str_eq(ph_state(h, id), "completed");
    ph_end(h);
}

static void fail_it(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "fail", 0);
}

/* node: "[Cleaner > removeOrphanedJobs] should not remove jobs in the failed state" */
Test(parity_orphans, keeps_failed) {
    ph *h = ph_new("q");
    h->proc = fail_it;
    const char *id = ph_add(h, "test", "{\"data\":1}", "{\"attempts\":1}");
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_eq(remove_orphans(h, 0), 0);
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

/* node: "[Cleaner > removeOrphanedJobs] should not remove jobs in the delayed state" */
Test(parity_orphans, keeps_delayed) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"data\":1}", "{\"delay\":60000}");
    cr_assert_eq(remove_orphans(h, 0), 0);
    cr_assert_str_eq(ph_state(h, id), "delayed");
    ph_end(h);
}

/* node: "[Cleaner > removeOrphanedJobs] should not remove jobs in the prioritized state" */
Test(parity_orphans, keeps_prioritized) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"data\":1}", "{\"priority\":5}");
    cr_assert_eq(remove_orphans(h, 0), 0);
    cr_assert_str_eq(ph_state(h, id), "prioritized");
    ph_end(h);
}

/* node: "[Cleaner > removeOrphanedJobs] should not remove jobs in the waiting-children state" */
Test(parity_orphans, keeps_waiting_children) {
    ph *h = ph_new("q");
    bullc_flow_producer_opts *o;
    cr_assert_eq(bullc_flow_producer_opts_new(&o), 0);
    cr_assert_eq(bullc_flow_producer_opts_set_prefix(o, h->prefix), 0);
    bullc_flow_producer *fp;
    bullc_error err = {0};
    cr_assert_eq(bullc_flow_producer_new(&fp, o, &err), 0, "%s", err.message);
    bullc_flow_producer_opts_free(o);
    char *tree = NULL;
    cr_assert_eq(bullc_flow_producer_add(fp,
                                         "{\"name\":\"parent-job\",\"queueName\":\"q\",\"data\":{},\"children\":[{"
                                         "\"name\":\"child-job\",\"data\":{\"idx\":0},\"queueName\":\"children\"}]}",
                                         NULL, &tree, &err),
                 0, "%s", err.message);
    bullc_free(tree);
    bullc_flow_producer_free(fp);
    cr_assert_eq(ph_count(h, "waiting-children"), 1);
    cr_assert_eq(remove_orphans(h, 0), 0);
    cr_assert_eq(ph_count(h, "waiting-children"), 1);
    ph_end(h);
}

/* node: "[Cleaner (redis-only) > removeOrphanedJobs] should remove orphaned job hashes with no sub-keys" */
Test(parity_orphans, removes_bare_hashes) {
    ph *h = ph_new("q");
    static const char *const ids[] = {"9990", "9991", "9992"};
    for (int i = 0; i < 3; i++) orphan_hash(h, ids[i]);
    cr_assert_eq(remove_orphans(h, 0), 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(exists(h, ids[i]), 0);
    ph_end(h);
}

static const char *const subkeys[] = {"", ":logs", ":dependencies", ":processed", ":failed", ":unsuccessful", ":lock"};

/* node: "[Cleaner (redis-only) > removeOrphanedJobs] should remove all sub-keys of orphaned jobs" */
Test(parity_orphans, removes_every_sub_key) {
    ph *h = ph_new("q");
    orphan_hash(h, "7777");
    char k[64];
    for (size_t i = 1; i < sizeof subkeys / sizeof *subkeys; i++) {
        snprintf(k, sizeof k, "7777%s", subkeys[i]);
        ph_vcmd("SET %s x", ph_key(h, k));
    }
    cr_assert_eq(remove_orphans(h, 0), 1);
    for (size_t i = 0; i < sizeof subkeys / sizeof *subkeys; i++) {
        snprintf(k, sizeof k, "7777%s", subkeys[i]);
        cr_assert_eq(exists(h, k), 0, "%s left", k);
    }
    ph_end(h);
}

/* node: "[Cleaner (redis-only) > removeOrphanedJobs] should distinguish orphaned jobs from legitimate jobs across all states" */
Test(parity_orphans, orphans_among_live_jobs) {
    ph *h = ph_new("q");
    const char *live[3] = {ph_add(h, "wait-job", "{\"state\":\"wait\"}", NULL),
                           ph_add(h, "delayed-job", "{\"state\":\"delayed\"}", "{\"delay\":60000}"),
                           ph_add(h, "prioritized-job", "{\"state\":\"prioritized\"}", "{\"priority\":3}")};
    static const char *const ids[] = {"8001", "8002", "8003"};
    for (int i = 0; i < 3; i++) orphan_hash(h, ids[i]);
    cr_assert_eq(remove_orphans(h, 0), 3);
    for (int i = 0; i < 3; i++) cr_assert(ph_job_exists(h, live[i]));
    for (int i = 0; i < 3; i++) cr_assert_eq(exists(h, ids[i]), 0);
    ph_end(h);
}

/* node: "[Cleaner (redis-only) > removeOrphanedJobs] should not remove infrastructure keys" */
Test(parity_orphans, keeps_queue_keys) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"data\":1}", NULL);
    redisReply *before = ph_cmd("KEYS %s:*", h->prefix);
    cr_assert_eq(exists(h, "meta"), 1);
    cr_assert_eq(remove_orphans(h, 0), 0);
    redisReply *after = ph_cmd("KEYS %s:*", h->prefix);
    cr_assert_eq(after->elements, before->elements, "every key is still there");
    cr_assert_eq(exists(h, "meta"), 1);
    freeReplyObject(before), freeReplyObject(after);
    ph_end(h);
}

/* node: "[Cleaner (redis-only) > removeOrphanedJobs] should not confuse repeat sub-keys with orphaned jobs" */
Test(parity_orphans, keeps_repeat_and_dedup_sub_keys) {
    ph *h = ph_new("q");
    ph_vcmd("SET %s x", ph_key(h, "repeat:some-repeat-id"));
    ph_vcmd("SET %s x", ph_key(h, "de:some-dedup-id"));
    cr_assert_eq(remove_orphans(h, 0), 0);
    cr_assert_eq(exists(h, "repeat:some-repeat-id"), 1);
    cr_assert_eq(exists(h, "de:some-dedup-id"), 1);
    ph_end(h);
}

/* node: "[Cleaner (redis-only) > removeOrphanedJobs] should handle jobs with custom string IDs" */
Test(parity_orphans, custom_string_ids) {
    ph *h = ph_new("q");
    const char *real = ph_add(h, "test", "{\"data\":1}", "{\"jobId\":\"my-custom-job\"}");
    orphan_hash(h, "orphan-custom-id");
    cr_assert_eq(remove_orphans(h, 0), 1);
    cr_assert(ph_job_exists(h, real));
    cr_assert_eq(exists(h, "orphan-custom-id"), 0);
    ph_end(h);
}

/* node: "[Cleaner (redis-only) > removeOrphanedJobs] should detect orphans found only via sub-keys" */
Test(parity_orphans, orphans_seen_only_by_sub_keys) {
    ph *h = ph_new("q");
    ph_vcmd("SET %s x", ph_key(h, "5555:logs"));
    ph_vcmd("SET %s x", ph_key(h, "5555:lock"));
    cr_assert_eq(remove_orphans(h, 0), 1);
    cr_assert_eq(exists(h, "5555:logs"), 0);
    cr_assert_eq(exists(h, "5555:lock"), 0);
    ph_end(h);
}

/* node: "[Cleaner (redis-only) > removeOrphanedJobs] should handle a large number of orphaned jobs across SCAN iterations" */
Test(parity_orphans, many_orphans_over_many_scans) {
    ph *h = ph_new("q");
    char id[32];
    for (int i = 0; i < 150; i++) {
        snprintf(id, sizeof id, "orphan-%04d", i);
        orphan_hash(h, id);
    }
    ph_add(h, "real1", "{\"data\":1}", NULL);
    ph_add(h, "real2", "{\"data\":2}", NULL);
    cr_assert_eq(remove_orphans(h, 10), 150);
    for (int i = 0; i < 150; i++) {
        snprintf(id, sizeof id, "orphan-%04d", i);
        cr_assert_eq(exists(h, id), 0);
    }
    cr_assert_eq(ph_count(h, "wait"), 2);
    /* one scan of every key: 150 candidates in one script call, as Node sends them */
    for (int i = 0; i < 150; i++) {
        snprintf(id, sizeof id, "again-%04d", i);
        orphan_hash(h, id);
    }
    cr_assert_eq(remove_orphans(h, 0), 150);
    cr_assert_eq(ph_count(h, "wait"), 2);
    ph_end(h);
}

/* Not one of Node's: Node 6.7.0 deletes the metrics:failed key here (it takes
   it for the failed key of a job "metrics"); bullc leaves metrics alone. */
Test(parity_orphans, keeps_metrics_keys) {
    ph *h = ph_new("q");
    h->proc = fail_it;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_metrics(o, 100);
    ph_add(h, "test", "{}", NULL);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_eq(exists(h, "metrics:failed"), 1);
    cr_assert_eq(remove_orphans(h, 0), 0);
    cr_assert_eq(exists(h, "metrics:failed"), 1);
    ph_end(h);
}

/* Not one of Node's: the limit, another queue's keys, and the CLI. */
Test(parity_orphans, limit_glob_prefix_and_cli) {
    ph *h = ph_new("q");
    char id[32];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "o%d", i);
        orphan_hash(h, id);
    }
    int64_t removed = -1;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_orphaned_jobs(h->q, 5, 3, &removed, &err), 0, "%s", err.message);
    cr_assert(removed >= 3 && removed < 40, "stopped at the limit after a batch: %lld", (long long)removed);
    cr_assert_eq(bullc_queue_remove_orphaned_jobs(h->q, -1, 0, NULL, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_remove_orphaned_jobs(h->q, 0, -1, NULL, &err), BULLC_EINVAL);
    /* another queue's key under the same prefix is never this queue's orphan
       (the scan's match and the base check both keep to "<prefix>:q:") */
    ph_vcmd("HSET %s:q*:x name orphan", h->prefix);
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --redis '%s' --prefix '%s' --json remove-orphans q --yes </dev/null 2>/dev/null",
             tu_bin("bullc"), tu_redis_url(), h->prefix);
    cr_assert_eq(tu_run(cmd, &out), 0);
    char want[64];
    snprintf(want, sizeof want, "{\"queue\":\"q\",\"removed\":%lld}\n", 40 - (long long)removed);
    cr_assert_str_eq(out, want);
    free(out);
    cr_assert_eq(ph_icmd("EXISTS %s:q*:x", h->prefix), 1, "another queue's key is not this queue's orphan");
    ph_end(h);
}
