/* SPDX-License-Identifier: MIT */
/* Helpers of the tests that mirror Node BullMQ's flow.test.ts with the
 * library (test_flow_*.c): trees added with bullc_flow_producer under the
 * ph's prefix, their ids by path, states in any queue, workers on other
 * queues of the same ph (one loop for all). Header only. */
#ifndef BULLC_TEST_FLOW_UTIL_H
#define BULLC_TEST_FLOW_UTIL_H

#include "test_parity_util.h"

static PH_UNUSED bullc_flow_producer *producer(ph *h) {
    bullc_flow_producer_opts *o;
    cr_assert_eq(bullc_flow_producer_opts_new(&o), 0);
    cr_assert_eq(bullc_flow_producer_opts_set_prefix(o, h->prefix), 0);
    bullc_flow_producer *fp;
    bullc_error err = {0};
    cr_assert_eq(bullc_flow_producer_new(&fp, o, &err), 0, "%s", err.message);
    bullc_flow_producer_opts_free(o);
    return fp;
}

/* Adds `flow` and returns the created tree (cJSON, delete it). */
static PH_UNUSED cJSON *add_flow(ph *h, const char *flow) {
    bullc_flow_producer *fp = producer(h);
    bullc_error err = {0};
    char *tree = NULL;
    cr_assert_eq(bullc_flow_producer_add(fp, flow, NULL, &tree, &err), 0, "%s", err.message);
    cJSON *t = cJSON_Parse(tree);
    bullc_free(tree);
    bullc_flow_producer_free(fp);
    return t;
}

/* The id of a node of a created tree: "" is the root, "1" its second child,
 * "1.0" that child's first child. Borrowed from the tree. */
static PH_UNUSED const char *nid(const cJSON *t, const char *path) {
    for (const char *p = path; *p; p += *p == '.') {
        char *end;
        long i = strtol(p, &end, 10);
        t = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "children"), (int)i);
        cr_assert(t, "no node %s in the tree", path);
        p = end;
    }
    return cJSON_GetObjectItem(cJSON_GetObjectItem(t, "job"), "id")->valuestring;
}

static PH_UNUSED const char *state_of(bullc_queue *q, const char *id) {
    const char *st = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_state(q, id, &st, &err), 0, "%s", err.message);
    return st;
}

/* A worker with options `o` (from ph_wopts) on queue `qname` of the ph's
 * prefix (the ph's processor). */
static PH_UNUSED bullc_worker *worker_on_with(ph *h, const char *qname, bullc_worker_opts *o) {
    char keep[sizeof h->qname];
    snprintf(keep, sizeof keep, "%s", h->qname);
    snprintf(h->qname, sizeof h->qname, "%s", qname);
    bullc_worker *w = ph_worker(h, o);
    snprintf(h->qname, sizeof h->qname, "%s", keep);
    return w;
}
static PH_UNUSED void worker_on(ph *h, const char *qname) { worker_on_with(h, qname, ph_wopts(h)); }

/* "<prefix>:<queue>:<id>" */
static PH_UNUSED const char *job_key(ph *h, const char *queue, const char *id) {
    static char k[256];
    snprintf(k, sizeof k, "%s:%s:%s", h->prefix, queue, id);
    return k;
}

static PH_UNUSED void complete_all(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, "{}");
}

/* Whether job `id` of `q` is gone. */
static PH_UNUSED bool gone(bullc_queue *q, const char *id) {
    char *s = NULL;
    int rc = bullc_queue_get_job(q, id, &s, NULL);
    bullc_free(s);
    return rc == BULLC_ENOTFOUND;
}

/* Job `id` of `q` as getJob gives it (cJSON, delete it), NULL when gone. */
static PH_UNUSED cJSON *ph_job_in(bullc_queue *q, const char *id) {
    char *s = NULL;
    bullc_error err = {0};
    int rc = bullc_queue_get_job(q, id, &s, &err);
    if (rc == BULLC_ENOTFOUND) return NULL;
    cr_assert_eq(rc, 0, "getJob %s: %s", id, err.message);
    cJSON *j = cJSON_Parse(s);
    bullc_free(s);
    return j;
}

/* How many jobs `q` has in Node state `state`. */
static PH_UNUSED int64_t count_in(bullc_queue *q, const char *state) {
    int64_t n = -1;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_count_jobs(q, &state, 1, &n, &err), 0, "%s", err.message);
    return n;
}

#endif
