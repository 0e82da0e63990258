/* SPDX-License-Identifier: MIT */
/* A batch of adds, shared by the synchronous producer (queue.c) and the
 * asynchronous one (aqueue_add.c): the jobs checked and formatted, the
 * commands each one needs in the MULTI (its probes and its add script
 * call), and the reading of EXEC's reply into each job's id or error. How
 * the commands reach Redis and how the replies come back is the caller's;
 * the keys and arguments are the protocol's (protocol.c, queue.c's
 * bullc__add_call_build). */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

int bullc__add_batch_init(bullc__add_batch *b, bullc_bulk_job *jobs, size_t n, bool prefix_index, sds tm) {
    for (size_t i = 0; i < n; i++) jobs[i].id = NULL, jobs[i].status = 0;
    *b = (bullc__add_batch){
        jobs, calloc(n, sizeof *b->pj), calloc(n, sizeof *b->calls), calloc(n, sizeof *b->pending), n, 0, prefix_index,
        tm};
    return b->pj && b->calls && b->pending ? 0 : BULLC_ENOMEM;
}

void bullc__add_batch_free(bullc__add_batch *b) {
    for (size_t i = 0; i < b->prepared && b->calls; i++) bullc__add_call_free(&b->calls[i]);
    for (size_t i = 0; i < b->prepared && b->pj; i++) bullc__job_prepared_free(&b->pj[i]);
    free(b->pj);
    free(b->calls);
    free(b->pending);
    b->pj = NULL, b->calls = NULL, b->pending = NULL;
}

int bullc__add_batch_prepare(bullc__add_batch *b, const bullc__add_target *t, bullc_error *err) {
    size_t i = b->prepared;
    const bullc_bulk_job *j = &b->jobs[i];
    int rc;
    if (!j->name)
        rc = bullc__err(err, BULLC_EINVAL, "job name must not be NULL");
    else if (i > 0 && j->opts == b->jobs[i - 1].opts)
        rc = bullc__job_prepare_like(&b->pj[i], &b->pj[i - 1], j->name, j->data_json, err);
    else /* t->major 0: not known yet; bullc__add_batch_rebuild checks its rules once it is */
        rc = bullc__job_prepare_major(&b->pj[i], t->major, j->name, j->data_json, t->defaults, j->opts, b->tm, err);
    if (rc) {
        b->jobs[i].status = rc;
        if (b->prefix_index) bullc__err_prefix(err, "job %zu: ", i);
        return rc;
    }
    b->prepared++;
    if (bullc__add_call_build(&b->calls[i], t->proto, t->keys, j->name, &b->pj[i], 0))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    b->pending[i] = true;
    return 0;
}

int bullc__add_batch_rebuild(bullc__add_batch *b, size_t i, const bullc__add_target *t, bullc_error *err) {
    if (b->pj[i].major != t->proto->major) {
        bullc__prepared_job pj;
        const bullc_bulk_job *j = &b->jobs[i];
        int rc =
            bullc__job_prepare_major(&pj, t->proto->major, j->name, j->data_json, t->defaults, j->opts, b->tm, err);
        if (rc) {
            b->jobs[i].status = rc;
            if (b->prefix_index) bullc__err_prefix(err, "job %zu: ", i);
            return rc;
        }
        bullc__job_prepared_free(&b->pj[i]);
        b->pj[i] = pj;
    } else if (b->calls[i].proto == t->proto) {
        return 0;
    }
    bullc__add_call_free(&b->calls[i]);
    if (bullc__add_call_build(&b->calls[i], t->proto, t->keys, b->jobs[i].name, &b->pj[i], 0))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    return 0;
}

size_t bullc__add_probes(const bullc__prepared_job *pj) { return (pj->job_id != NULL) + (pj->dedup_id != NULL); }

/* A custom id that already exists, or an open deduplication window, make
 * the add script return an id without adding anything. Probes run in the
 * same transaction, just before the script, tell these apart. */
int bullc__add_batch_emit(const bullc__add_batch *b, size_t i, const bullc__keys *ks, bullc__add_emit_fn emit,
                          void *ctx, bullc_error *err) {
    const bullc__prepared_job *pj = &b->pj[i];
    int rc = 0;
    if (pj->job_id) {
        sds k = bullc__job_key(ks, pj->job_id, BULLC__K_JOB);
        const char *argv[] = {"EXISTS", k};
        rc = k ? emit(ctx, NULL, 2, argv, NULL, err) : bullc__err(err, BULLC_ENOMEM, "out of memory");
        sdsfree(k);
    }
    if (!rc && pj->dedup_id) {
        sds k = bullc__dedup_key(ks, pj->dedup_id);
        const char *argv[] = {"GET", k};
        rc = k ? emit(ctx, NULL, 2, argv, NULL, err) : bullc__err(err, BULLC_ENOMEM, "out of memory");
        sdsfree(k);
    }
    const bullc__add_call *c = &b->calls[i];
    return rc ? rc : emit(ctx, c->script, c->argc, c->argv, c->lens, err);
}

int bullc__add_reply(const redisReply *r, const bullc__prepared_job *pj, const bullc__add_probes_seen *pr,
                     bullc_bulk_job *job, bullc_error *err) {
    if (r->type == REDIS_REPLY_ERROR) return bullc__reply_err(r, err);
    if (r->type == REDIS_REPLY_INTEGER && r->integer < 0)
        return bullc__script_code_err(r->integer, r->integer == -5 || r->integer == -7 ? pj->parent_key : pj->job_id,
                                      "addJob", NULL, err);
    sds id;
    if (r->type == REDIS_REPLY_STRING)
        id = sdsnewlen(r->str, r->len);
    else if (r->type == REDIS_REPLY_INTEGER)
        id = sdsfromlonglong(r->integer);
    else
        return bullc__err(err, BULLC_EPROTO, "addJob: unexpected reply type %d", r->type);
    int status = 0;
    if (pr->job_existed) status = 1;
    if (pr->has_dedup_owner && !strcmp(pr->dedup_owner, id)) status = 1;
    /* the key named another job, yet this one was added: that job was a
     * delayed one replaced, or gone (a stale key BullMQ 6.7 recovers) */
    else if (pr->has_dedup_owner)
        status = 2;
    job->id = id ? strdup(id) : NULL;
    sdsfree(id);
    if (!job->id) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    job->status = status;
    return 0;
}

int bullc__add_batch_exec(bullc__add_batch *b, const redisReply *r, size_t queued, bool *noscript, bullc_error *err) {
    *noscript = false;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != queued)
        return r->type == REDIS_REPLY_ERROR ? bullc__reply_err(r, err)
                                            : bullc__err(err, BULLC_EPROTO, "EXEC: unexpected reply");
    int rc = 0;
    size_t e = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->pending[i]) continue;
        bullc__add_probes_seen pr = {0};
        if (b->pj[i].job_id) pr.job_existed = r->element[e++]->integer == 1;
        if (b->pj[i].dedup_id) {
            const redisReply *o = r->element[e++];
            if (o->type == REDIS_REPLY_STRING) {
                pr.has_dedup_owner = true;
                pr.dedup_owner = sdsnewlen(o->str, o->len);
            }
        }
        const redisReply *sr = r->element[e++];
        if (bullc__reply_is_noscript(sr)) {
            sdsfree(pr.dedup_owner);
            *noscript = true; /* the scripts must be loaded again before the retry */
            continue;         /* stays pending */
        }
        int jrc = bullc__add_reply(sr, &b->pj[i], &pr, &b->jobs[i], err);
        sdsfree(pr.dedup_owner);
        b->pending[i] = false;
        if (jrc && !rc) {
            rc = jrc;
            b->jobs[i].status = jrc;
            if (b->prefix_index) bullc__err_prefix(err, "job %zu: ", i);
        }
    }
    return rc;
}

void bullc__add_batch_fail(bullc__add_batch *b) {
    for (size_t i = 0; i < b->n; i++) {
        free(b->jobs[i].id);
        b->jobs[i].id = NULL;
        if (b->jobs[i].status > 0) b->jobs[i].status = 0; /* only the failing job's stays: negative */
    }
}

/* Node's add span: "add <queue>.<name>" with the job's name and id, or
 * "addBulk <queue>" with every name and the count (bullc_queue's adds and
 * bullc_aqueue's alike). */
void bullc__add_span_end(bullc_tracer *tracer, const bullc__span *s, const char *queue, const bullc_bulk_job *jobs,
                         size_t n, bool bulk) {
    sds name = sdscatprintf(sdsempty(), bulk ? "addBulk %s" : "add %s.%s", queue, jobs[0].name ? jobs[0].name : "");
    sds names = sdsempty();
    for (size_t i = 0; bulk && i < n && names; i++)
        names = sdscatlen(names, jobs[i].name ? jobs[i].name : "", (jobs[i].name ? strlen(jobs[i].name) : 0) + 1);
    const char *op = bulk ? "addBulk" : "add";
    bullc__attr a[4] = {{"bullmq.queue.name", BULLC__ATTR_STR, queue, strlen(queue), 0},
                        {"bullmq.queue.operation", BULLC__ATTR_STR, op, strlen(op), 0}};
    size_t na = 2;
    if (bulk) {
        a[na++] = (bullc__attr){"bullmq.job.bulk.names", BULLC__ATTR_STR_ARRAY, names, 0, (int64_t)n};
        a[na++] = (bullc__attr){"bullmq.job.bulk.count", BULLC__ATTR_INT, NULL, 0, (int64_t)n};
    } else {
        a[na++] =
            (bullc__attr){"bullmq.job.name", BULLC__ATTR_STR, jobs[0].name, jobs[0].name ? strlen(jobs[0].name) : 0, 0};
        if (jobs[0].id) a[na++] = (bullc__attr){"bullmq.job.id", BULLC__ATTR_STR, jobs[0].id, strlen(jobs[0].id), 0};
    }
    if (name && names) bullc__span_end(tracer, s, name, sdslen(name), a, na, NULL, NULL, 0);
    sdsfree(name);
    sdsfree(names);
}
