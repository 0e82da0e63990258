/* SPDX-License-Identifier: MIT */
/* Node BullMQ's scripts.test.ts (.paginateSet, .paginateHash) and the
 * getters.test.ts .getDependencies cases: bullc_queue_get_dependencies_page
 * runs BullMQ's paginate script on a parent's pending set ("<job>:
 * dependencies") and processed hash ("<job>:processed"), as Node's
 * queue.getDependencies does. Node's script tests page a set and a hash of
 * their own; here the set and hash are a parent's, written with SADD/HSET as
 * Node writes its. Each case runs speaking BullMQ 6 and 5. */
#include "test_flow_util.h"

#define BOTH_MAJORS(name)                               \
    static void name(int major);                        \
    Test(parity_deps_page, name) { name(6); }           \
    Test(parity_deps_page, name##_bullmq5) { name(5); } \
    static void name(int major)

static ph *setup(int major) {
    ph *h = ph_new("q");
    if (major == 5) freeReplyObject(ph_cmd("HSET %s:q:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix));
    return h;
}

static cJSON *page(ph *h, const char *parent, const char *type, int64_t start, int64_t end, int major) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_dependencies_page(h->q, parent, type, start, end, &s, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_bullmq_version(h->q), major);
    cJSON *p = cJSON_Parse(s);
    bullc_free(s);
    return p;
}

static int items_of(const cJSON *p) { return cJSON_GetArraySize(cJSON_GetObjectItem(p, "items")); }
static int jobs_of(const cJSON *p) { return cJSON_GetArraySize(cJSON_GetObjectItem(p, "jobs")); }
static double total_of(const cJSON *p) { return cJSON_GetObjectItem(p, "total")->valuedouble; }
static const char *cursor_of(const cJSON *p) { return cJSON_GetObjectItem(p, "cursor")->valuestring; }

static int by_id(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The page's item ids, sorted, joined with ','. */
static char *sorted_ids(const cJSON *p) {
    const cJSON *items = cJSON_GetObjectItem(p, "items");
    int n = cJSON_GetArraySize(items);
    const char **ids = calloc((size_t)n + 1, sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "id")->valuestring;
    qsort(ids, (size_t)n, sizeof *ids, by_id);
    char *out = calloc(1, (size_t)n * 64 + 1);
    for (int i = 0; i < n; i++) strcat(strcat(out, i ? "," : ""), ids[i]);
    free(ids);
    return out;
}

static void set_of_ten(ph *h) { freeReplyObject(ph_cmd("SADD %s a b c d e f g h i j", ph_key(h, "p:dependencies"))); }
static void hash_of_ten(ph *h) {
    const char *k = ph_key(h, "p:processed");
    for (char c = 'a'; c <= 'j'; c++) {
        char f[2] = {c, 0}, v[4] = {'"', c, '"', 0};
        ph_vcmd("HSET %s %s %s", k, f, v);
    }
}

/* Ten members a..j (hash values their names as JSON strings) in one page
 * of ten: Node's {items, jobs: [], cursor: '0', total: 10}. */
static void small_same_size(int major, bool hash) {
    ph *h = setup(major);
    hash ? hash_of_ten(h) : set_of_ten(h);
    cJSON *p = page(h, "p", hash ? "processed" : "pending", 0, 9, major);
    char *ids = sorted_ids(p);
    cr_assert_str_eq(ids, "a,b,c,d,e,f,g,h,i,j");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(p, "items")) {
        const cJSON *v = cJSON_GetObjectItem(it, "v");
        if (hash)
            cr_assert_str_eq(v->valuestring, cJSON_GetObjectItem(it, "id")->valuestring, "{id: key, v: key}");
        else
            cr_assert_null(v, "a set's items are ids alone");
    }
    cr_assert_eq(jobs_of(p), 0, "no job hashes behind these members");
    cr_assert_str_eq(cursor_of(p), "0");
    cr_assert_eq(total_of(p), 10);
    free(ids);
    cJSON_Delete(p);
    ph_end(h);
}

/* Items 3 to 7 of the ten. */
static void small_different_size(int major, bool hash) {
    ph *h = setup(major);
    hash ? hash_of_ten(h) : set_of_ten(h);
    cJSON *p = page(h, "p", hash ? "processed" : "pending", 3, 7, major);
    cr_assert_eq(items_of(p), 5);
    cr_assert_str_eq(cursor_of(p), "0");
    cr_assert_eq(total_of(p), 10);
    cJSON_Delete(p);
    ph_end(h);
}

/* node: "should paginate a small set same size as set" */
BOTH_MAJORS(small_set_same_size) { small_same_size(major, false); }

/* node: "should paginate a small set different size as set" */
BOTH_MAJORS(small_set_different_size) { small_different_size(major, false); }

/* node: "should paginate a small hash same size as hash" */
BOTH_MAJORS(small_hash_same_size) { small_same_size(major, true); }

/* node: "should paginate a small hash different size as hash" */
BOTH_MAJORS(small_hash_different_size) { small_different_size(major, true); }

/* Pages of `size` over a set or hash of `n` members "0".."n-1" give each
 * member once. */
static void large(int major, bool hash, int n, int size) {
    ph *h = setup(major);
    const char *k = ph_key(h, hash ? "p:processed" : "p:dependencies");
    for (int i = 0; i < n; i++) {
        if (hash)
            ph_vcmd("HSET %s %d %d", k, i, i);
        else
            ph_vcmd("SADD %s %d", k, i);
    }
    char *seen = calloc((size_t)n, 1);
    int got = 0;
    for (int start = 0; start < n; start += size) {
        cJSON *p = page(h, "p", hash ? "processed" : "pending", start, start + size - 1, major);
        cr_assert_eq(items_of(p), start + size <= n ? size : n - start);
        cr_assert_eq(total_of(p), n);
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(p, "items")) {
            int id = atoi(cJSON_GetObjectItem(it, "id")->valuestring);
            cr_assert(id >= 0 && id < n && !seen[id], "member %d twice or unknown", id);
            seen[id] = 1;
            got++;
            if (hash) cr_assert_eq(cJSON_GetObjectItem(it, "v")->valuedouble, id, "the value, parsed");
        }
        cJSON_Delete(p);
    }
    cr_assert_eq(got, n);
    free(seen);
    ph_end(h);
}

/* Node pages 13 members in one page of 13; 1,000 in pages of 130 also walk
 * the script's cursor across calls (100 members a scan round, 5 a call). */
/* node: "should paginate a large set in pages of given size" */
BOTH_MAJORS(large_set) {
    large(major, false, 13, 13);
    large(major, false, 1000, 130);
}

/* node: "should paginate a large hash in pages of given size" */
BOTH_MAJORS(large_hash) {
    large(major, true, 13, 13);
    large(major, true, 1000, 130);
}

/* ---- getters.test.ts ---------------------------------------------------------------- */

static cJSON *four_children(ph *h) {
    return add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"q\",\"data\":{},\"children\":["
                       "{\"name\":\"child-1\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"q\"},"
                       "{\"name\":\"child-2\",\"data\":{\"idx\":1,\"foo\":\"baz\"},\"queueName\":\"q\"},"
                       "{\"name\":\"child-3\",\"data\":{\"idx\":2,\"foo\":\"bac\"},\"queueName\":\"q\"},"
                       "{\"name\":\"child-4\",\"data\":{\"idx\":3,\"foo\":\"bad\"},\"queueName\":\"q\"}]}");
}

/* Each job of the page has what Node's test looks for, and is a child of `parent`. */
static void assert_child_jobs(ph *h, const cJSON *p, const char *parent) {
    static const char *const fields[] = {"opts",   "data",      "delay", "priority",
                                         "parent", "parentKey", "name",  "timestamp"};
    const cJSON *j;
    cJSON_ArrayForEach(j, cJSON_GetObjectItem(p, "jobs")) {
        for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
            cr_assert(cJSON_GetObjectItem(j, fields[i]), "a child job without %s", fields[i]);
        cr_assert_str_eq(cJSON_GetObjectItem(j, "parentKey")->valuestring, job_key(h, "q", parent));
        cr_assert(!strncmp(cJSON_GetObjectItem(j, "name")->valuestring, "child-", 6));
    }
}

/* node: "return unprocessed jobs that are dependencies of a given parent job" */
BOTH_MAJORS(pending_dependencies) {
    ph *h = setup(major);
    cJSON *t = four_children(h);
    cJSON *p = page(h, nid(t, ""), "pending", 0, -1, major);
    cr_assert_eq(items_of(p), 4);
    cr_assert_eq(jobs_of(p), 4);
    cr_assert_eq(total_of(p), 4);
    assert_child_jobs(h, p, nid(t, ""));
    cJSON_Delete(p);
    p = page(h, nid(t, ""), "pending", 0, 2, major);
    cr_assert_eq(items_of(p), 3);
    cr_assert_eq(total_of(p), 4);
    cJSON_Delete(p);
    cJSON_Delete(t);
    ph_end(h);
}

/* node: "return processed jobs that are dependencies of a given parent job" */
BOTH_MAJORS(processed_dependencies) {
    ph *h = setup(major);
    cJSON *t = four_children(h);
    h->proc = complete_all;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed >= 4), "%d completed", h->n_completed);
    cJSON *p = page(h, nid(t, ""), "pending", 0, -1, major);
    cr_assert_eq(items_of(p), 0);
    cr_assert_eq(total_of(p), 0);
    cJSON_Delete(p);
    p = page(h, nid(t, ""), "processed", 0, -1, major);
    cr_assert_eq(items_of(p), 4);
    cr_assert_eq(jobs_of(p), 4);
    cr_assert_eq(total_of(p), 4);
    assert_child_jobs(h, p, nid(t, ""));
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(p, "items")) {
        cr_assert(cJSON_IsObject(cJSON_GetObjectItem(it, "v")), "each child's return value, {}");
    }
    cJSON_Delete(p);
    cJSON_Delete(t);
    ph_end(h);
}

/* Not Node's: what the getter refuses. */
Test(parity_deps_page, refusals) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    char *s = NULL;
    cr_assert_eq(bullc_queue_get_dependencies_page(h->q, "p", "failed", 0, -1, &s, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_get_dependencies_page(h->q, "p", "pending", 3, 1, &s, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_get_dependencies_page(h->q, "p", "pending", -1, 1, &s, &err), BULLC_EINVAL);
    cJSON *p = page(h, "nothing", "pending", 0, -1, 6);
    cr_assert_eq(items_of(p), 0);
    cr_assert_eq(total_of(p), 0);
    cJSON_Delete(p);
    ph_end(h);
}
