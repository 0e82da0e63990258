/* SPDX-License-Identifier: MIT */
/* Changing a parent's dependencies from outside its workers: cutting one
 * child loose from its parent (Node's job.removeChildDependency) and removing
 * the children a parent still waits for (job.removeUnprocessedChildren).
 * Removing a parent with or without its children is bullc_queue_remove_job
 * (admin.c), BullMQ's removeJob script. */
#include <string.h>

#include "bullc-private.h"

/* The job's parentKey field: 1 with *out set (NULL: the job has none), 0
 * when there is no such job hash, or an error. */
static int read_parent_key(bullc_queue *q, const char *id, sds *out, bullc_error *err) {
    bullc__args a;
    bullc__args_init(&a);
    bullc__args_add(&a, "HMGET");
    bullc__args_job_key(&a, q, id);
    bullc__args_add(&a, "parentKey");
    bullc__args_add(&a, "timestamp"); /* every job hash has one: tells "no parent" from "no job" */
    redisReply *r = NULL;
    int rc = bullc__args_cmd(q, &a, &r, err);
    bullc__args_free(&a);
    if (rc) return rc;
    *out = NULL;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        rc = bullc__err(err, BULLC_EPROTO, "HMGET: unexpected reply type %d", r->type);
    } else if (r->element[1]->type != REDIS_REPLY_STRING) {
        rc = 0;
    } else {
        rc = 1;
        if (r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len > 0) {
            *out = sdsnewlen(r->element[0]->str, r->element[0]->len);
            if (!*out) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        }
    }
    freeReplyObject(r);
    return rc;
}

int bullc_queue_remove_child_dependency(bullc_queue *q, const char *id, const char *parent_key, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    sds parent = NULL;
    if (!parent_key) {
        /* Node passes the parentKey its Job object holds, read with the job */
        if ((rc = read_parent_key(q, id, &parent, err)) < 0) return rc;
        if (rc == 0) return bullc__script_code_err(-1, id, "removeChildDependency", NULL, err);
        if (!parent) return 1; /* no parent: no relationship to break */
        parent_key = parent;
    }
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_REMOVE_CHILD_DEPENDENCY, id, 0);
    bullc__args_own(&a, bullc__job_key(bullc__queue_keys(q), id, BULLC__K_JOB));
    bullc__args_add(&a, parent_key);
    long long code = 0;
    rc = bullc__args_eval_int(q, BULLC__C_REMOVE_CHILD_DEPENDENCY, &a, &code, err);
    if (!rc && code < 0) /* Node's finishedErrors: a missing parent is named by its key */
        rc = bullc__script_code_err(code, code == -5 ? parent_key : id, "removeChildDependency", NULL, err);
    else if (!rc)
        rc = code == 0 ? 0 : 1;
    sdsfree(parent);
    return rc;
}

int bullc_queue_remove_unprocessed_children(bullc_queue *q, const char *id, bullc_error *err) {
    int rc = bullc__check_job_id(id, err);
    if (rc) return rc;
    /* Node says nothing of a missing parent; bullc tells it, as
     * bullc_queue_remove_job does */
    if ((rc = bullc__job_exists(q, id, err)) <= 0) return rc < 0 ? rc : bullc__job_not_found(id, err);
    bullc__args a;
    bullc__args_call(&a, q, BULLC__C_REMOVE_UNPROCESSED_CHILDREN, id, 0);
    bullc__args_add(&a, bullc_queue_key_base(q));
    bullc__args_add(&a, id);
    long long code = 0;
    return bullc__args_eval_int(q, BULLC__C_REMOVE_UNPROCESSED_CHILDREN, &a, &code, err);
}
