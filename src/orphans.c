/* SPDX-License-Identifier: MIT */
/* Queue.removeOrphanedJobs: job keys no state references. The client picks
 * candidates from a SCAN of the queue's keys exactly as Node does (same
 * skipping rules, same batches), and the removeOrphanedJobs script decides
 * each batch atomically, so the two clients remove the same keys. */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"
#include "protocol.h"

static bool in_list(const char *const *list, const char *s, size_t len) {
    for (; *list; list++)
        if (strlen(*list) == len && !memcmp(*list, s, len)) return true;
    return false;
}

/* The job id a scanned key names, as Node's loop picks it, or NULL: the
 * queue's own keys, the sub-keys of those (repeat:..., de:...) and a job's
 * keys other than the ones the script deletes are never candidates. */
static const char *candidate(const char *suffix, size_t len, size_t *id_len) {
    if (!len || in_list(bullc__queuekeys_names, suffix, len)) return NULL;
    const char *colon = memchr(suffix, ':', len);
    if (!colon) {
        *id_len = len;
        return suffix;
    }
    size_t head = (size_t)(colon - suffix);
    if (!head || in_list(bullc__queuekeys_names, suffix, head) || in_list(bullc__orphan_skip_extra, suffix, head))
        return NULL;
    if (!in_list(bullc__orphan_subkeys, colon + 1, len - head - 1)) return NULL;
    *id_len = head;
    return suffix;
}

/* Node collects a scan batch's ids in a Set: each once, in the order first
 * seen. */
static bool seen(const char **ids, const size_t *lens, size_t n, const char *id, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (lens[i] == len && !memcmp(ids[i], id, len)) return true;
    return false;
}

/* Runs the script over ids[0..n), one call for the scan batch as Node
 * makes it; adds what it removed to *total. */
static int remove_batch(bullc_queue *q, const char **ids, const size_t *lens, size_t n, int64_t *total,
                        bullc_error *err) {
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_REMOVE_ORPHANED_JOBS, NULL, 0);
    int ns = 0, nk = 0;
    while (bullc__queuekeys_names[ns]) ns++;
    while (bullc__orphan_subkeys[nk]) nk++;
    bullc__args_i64(&a, ns);
    for (int i = 0; i < ns; i++) bullc__args_add(&a, bullc__queuekeys_names[i]);
    bullc__args_i64(&a, nk);
    for (int i = 0; i < nk; i++) bullc__args_add(&a, bullc__orphan_subkeys[i]);
    for (size_t i = 0; i < n; i++) bullc__args_addn(&a, ids[i], lens[i]);
    redisReply *r = NULL;
    int rc = bullc__args_eval(q, BULLC__C_REMOVE_ORPHANED_JOBS, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = bullc__err(err, BULLC_EPROTO, "removeOrphanedJobs: unexpected reply type %d", r->type);
    else
        *total += r->integer;
    freeReplyObject(r);
    return rc;
}

int bullc_queue_remove_orphaned_jobs(bullc_queue *q, int64_t count, int64_t limit, int64_t *removed, bullc_error *err) {
    if (removed) *removed = 0;
    if (!q) return bullc__err(err, BULLC_EINVAL, "queue must not be NULL");
    if (count < 0) return bullc__err(err, BULLC_EINVAL, "count must not be negative (0: 1000 keys per scan)");
    if (limit < 0) return bullc__err(err, BULLC_EINVAL, "limit must not be negative (0: no limit)");
    if (!count) count = 1000;
    const char *base = bullc_queue_key_base(q);
    size_t blen = strlen(base);
    sds pattern = bullc__glob_escape(base);
    if (pattern) pattern = sdscat(pattern, "*");
    sds cursor = sdsnew("0");
    char count_s[24];
    snprintf(count_s, sizeof count_s, "%lld", (long long)count);
    int64_t total = 0;
    int rc = pattern && cursor ? 0 : bullc__err(err, BULLC_ENOMEM, "out of memory");
    while (!rc) {
        bullc__args scan;
        bullc__args_init(&scan);
        const char *sargv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", count_s};
        for (size_t i = 0; i < sizeof sargv / sizeof *sargv; i++) bullc__args_add(&scan, sargv[i]);
        redisReply *r = NULL;
        rc = bullc__args_cmd(q, &scan, &r, err);
        bullc__args_free(&scan);
        if (rc) break;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            rc = bullc__err(err, BULLC_EPROTO, "SCAN: unexpected reply");
            break;
        }
        sdsfree(cursor);
        cursor = sdsnewlen(r->element[0]->str, r->element[0]->len);
        const redisReply *keys = r->element[1];
        const char **ids = malloc(sizeof *ids * (keys->elements + 1));
        size_t *lens = malloc(sizeof *lens * (keys->elements + 1)), n = 0;
        if (!ids || !lens) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < keys->elements; i++) {
            const redisReply *k = keys->element[i];
            size_t id_len;
            const char *id;
            if (k->type != REDIS_REPLY_STRING || k->len < blen || memcmp(k->str, base, blen) ||
                !(id = candidate(k->str + blen, k->len - blen, &id_len)) || seen(ids, lens, n, id, id_len))
                continue;
            ids[n] = id, lens[n++] = id_len;
        }
        if (!rc && n) rc = remove_batch(q, ids, lens, n, &total, err);
        free(ids);
        free(lens);
        freeReplyObject(r);
        if (!cursor && !rc) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        if (rc || (limit > 0 && total >= limit) || !strcmp(cursor, "0")) break;
    }
    sdsfree(cursor);
    sdsfree(pattern);
    if (removed) *removed = total;
    return rc;
}
