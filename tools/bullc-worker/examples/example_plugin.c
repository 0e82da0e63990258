/* SPDX-License-Identifier: MIT */
/* An example bullc-worker plugin (the tests use it):
 *
 *   bullc-worker --queue math --plugin ./libbullc_example_plugin.so \
 *                --plugin-config '{"multiplier":10}'
 *
 * For a job with data {"a":1,"b":2} it returns {"sum":30,"queue":"math",
 * "id":"<id>","name":"<name>","attemptsMade":0}. Other data keys:
 *   "fail": "text"        fail the job with that reason
 *   "unrecoverable": true fail it without retries (with "fail")
 *   "steps": N            report progress 1..N (as percent) and log "step i"
 *   "sleepMs": N          sleep N ms first, stopping early if the lock is lost
 *                         or the job is cancelled (then it fails with the
 *                         cancel reason, as a Node processor throwing
 *                         signal.reason)
 *   "hangMs": N           block N ms first, whatever happens (a plugin that
 *                         hangs: the tests' stuck pool thread)
 *   "delayMs": N          a step job: the first run sets "delayed": true in
 *                         the data and moves the job to delayed for N ms
 *                         (Node's moveToDelayed + DelayedError); the next
 *                         run goes on as usual
 *   "waitChildren": true  a step job: counts the run in "waits" (data and
 *                         result) and moves the job to waiting-children
 *                         while it has pending children (Node's
 *                         moveToWaitingChildren + WaitingChildrenError);
 *                         without them it goes on as usual
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bullc/plugin.h>

typedef struct state {
    char *queue;
    double multiplier;
} state;

int bullc_plugin_init(const char *queue, const char *config_json, void **out) {
    state *s = calloc(1, sizeof *s);
    if (!s || !(s->queue = strdup(queue))) {
        free(s);
        return -1;
    }
    s->multiplier = 1;
    if (config_json) {
        cJSON *c = cJSON_Parse(config_json);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "multiplier");
        if (cJSON_IsNumber(m)) s->multiplier = m->valuedouble;
        bool bad = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "failInit"));
        cJSON_Delete(c);
        if (bad) { /* lets the tests check that a failing init stops the program */
            free(s->queue);
            free(s);
            return 7;
        }
    }
    *out = s;
    return 0;
}

void bullc_plugin_fini(void *p) {
    state *s = p;
    if (!s) return;
    free(s->queue);
    free(s);
}

static void sleep_ms(bullc_job *job, double ms) {
    /* in slices, so that a lost lock (or the worker's timeout) stops it */
    while (ms > 0 && !bullc_job_lock_lost(job) && !bullc_job_is_cancelled(job)) {
        double slice = ms < 20 ? ms : 20;
        struct timespec ts = {0, (long)(slice * 1e6)};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

/* Stores `data` as the job's data (sent before whatever the job does next). */
static void update_data(bullc_job *job, const cJSON *data) {
    char *d = cJSON_PrintUnformatted(data);
    if (d) bullc_job_update_data(job, d, NULL, NULL);
    free(d);
}

/* The flow-control steps; returns 1 when the job was moved or the move
 * failed (`out` says which), 0 to go on. */
static int flow_steps(bullc_job *job, cJSON *data, bullc_job_result *out) {
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(data, "delayMs");
    int rc = 0;
    if (cJSON_IsNumber(delay) && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(data, "delayed"))) {
        cJSON_AddTrueToObject(data, "delayed");
        update_data(job, data);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t at = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + (int64_t)delay->valuedouble;
        rc = bullc_job_move_to_delayed(job, at, NULL, NULL); /* waits for Redis's answer */
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(data, "waitChildren"))) {
        cJSON *waits = cJSON_GetObjectItemCaseSensitive(data, "waits");
        double n = cJSON_IsNumber(waits) ? waits->valuedouble + 1 : 1;
        if (waits)
            cJSON_SetNumberValue(waits, n);
        else
            cJSON_AddNumberToObject(data, "waits", n);
        update_data(job, data);
        rc = bullc_job_move_to_waiting_children(job, NULL, NULL);
    }
    if (rc == 1) {
        out->fail_flags = BULLC_FAIL_MOVED; /* as a Node processor throws DelayedError */
        return 1;
    }
    if (rc < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "the move failed: %s", bullc_strerror(rc));
        out->error = strdup(msg);
        return 1;
    }
    return 0;
}

int bullc_plugin_process(bullc_job *job, bullc_job_result *out, void *p) {
    state *s = p;
    cJSON *data = cJSON_Parse(bullc_job_data(job));
    if (flow_steps(job, data, out)) {
        cJSON_Delete(data);
        return 1;
    }
    const cJSON *fail = cJSON_GetObjectItemCaseSensitive(data, "fail");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(data, "steps");
    const cJSON *sleep = cJSON_GetObjectItemCaseSensitive(data, "sleepMs");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(data, "a"), *b = cJSON_GetObjectItemCaseSensitive(data, "b");
    const cJSON *hang = cJSON_GetObjectItemCaseSensitive(data, "hangMs");
    if (cJSON_IsNumber(hang)) {
        long long ms = (long long)hang->valuedouble;
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts)) continue;
    }
    if (cJSON_IsNumber(sleep)) sleep_ms(job, sleep->valuedouble);
    if (bullc_job_is_cancelled(job)) {
        out->error = strdup(bullc_job_cancel_reason(job));
        cJSON_Delete(data);
        return 1;
    }
    if (cJSON_IsNumber(steps)) {
        int n = (int)steps->valuedouble;
        for (int i = 1; i <= n; i++) {
            char buf[64];
            snprintf(buf, sizeof buf, "%d", i * 100 / n);
            bullc_job_update_progress(job, buf, NULL, NULL); /* from this thread: no callback */
            snprintf(buf, sizeof buf, "step %d", i);
            bullc_job_log(job, buf, NULL, NULL);
        }
    }
    if (cJSON_IsString(fail)) {
        out->error = strdup(fail->valuestring);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(data, "unrecoverable")))
            out->fail_flags = BULLC_FAIL_UNRECOVERABLE;
        cJSON_Delete(data);
        return 1;
    }
    cJSON *r = cJSON_CreateObject();
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        cJSON_AddNumberToObject(r, "sum", (a->valuedouble + b->valuedouble) * s->multiplier);
    cJSON_AddStringToObject(r, "queue", s->queue);
    cJSON_AddStringToObject(r, "id", bullc_job_id(job));
    cJSON_AddStringToObject(r, "name", bullc_job_name(job));
    cJSON_AddNumberToObject(r, "attemptsMade", (double)bullc_job_attempts_made(job));
    const cJSON *waits = cJSON_GetObjectItemCaseSensitive(data, "waits");
    if (cJSON_IsNumber(waits)) cJSON_AddNumberToObject(r, "waits", waits->valuedouble);
    out->result_json = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    cJSON_Delete(data);
    return 0;
}
