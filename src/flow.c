/* SPDX-License-Identifier: MIT */
/* Flows: Node's FlowProducer. A tree is checked and packed whole before
 * anything is sent, then written in one MULTI/EXEC across its queues, as
 * Node's RedisQueueBackend.addFlow does: each node through the add script
 * Node picks (addParentJob for a node with children), its parent released
 * from waiting-children once the whole tree is in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

struct bullc_flow_producer_opts {
    bullc_redis_opts *redis;
    char *prefix;
    int bullmq_version; /* 0: auto */
};

struct bullc_flow_producer {
    bullc__conn conn;
    char *prefix;
    int explicit_major;             /* 0: each flow settles on its queues' meta.version */
    unsigned scripts_generation[2]; /* connection generation each major's scripts were loaded on: [0] 6.x, [1] 5.x */
};

int bullc_flow_producer_opts_new(bullc_flow_producer_opts **out) {
    bullc_flow_producer_opts *o = calloc(1, sizeof *o);
    if (!o) return BULLC_ENOMEM;
    *out = o;
    return 0;
}

void bullc_flow_producer_opts_free(bullc_flow_producer_opts *o) {
    if (!o) return;
    bullc_redis_opts_free(o->redis);
    free(o->prefix);
    free(o);
}

int bullc_flow_producer_opts_set_redis(bullc_flow_producer_opts *o, const bullc_redis_opts *redis) {
    return bullc__redis_opts_replace(&o->redis, redis);
}

int bullc_flow_producer_opts_set_prefix(bullc_flow_producer_opts *o, const char *prefix) {
    return bullc__str_set(&o->prefix, prefix);
}

int bullc_flow_producer_opts_set_bullmq_version(bullc_flow_producer_opts *o, int major) {
    if (major != 0 && !bullc__protocol_of(major)) return BULLC_EINVAL;
    o->bullmq_version = major;
    return 0;
}

int bullc_flow_producer_new(bullc_flow_producer **out, const bullc_flow_producer_opts *opts, bullc_error *err) {
    bullc_flow_producer *fp = calloc(1, sizeof *fp);
    if (!fp) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__conn_init(&fp->conn, opts ? opts->redis : NULL, err);
    if (rc) {
        free(fp);
        return rc;
    }
    fp->explicit_major = opts ? opts->bullmq_version : 0;
    if (!(fp->prefix = strdup(opts && opts->prefix ? opts->prefix : BULLC__DEFAULT_PREFIX))) {
        bullc_flow_producer_free(fp);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    *out = fp;
    return 0;
}

void bullc_flow_producer_free(bullc_flow_producer *fp) {
    if (!fp) return;
    bullc__conn_close(&fp->conn);
    free(fp->prefix);
    free(fp);
}

/* ---- one transaction's entries ------------------------------------------- */

/* The keys of one queue a tree touches, shared by its nodes there. */
typedef struct flow_queue {
    bullc__keys keys;
    sds qualified;            /* "<prefix>:<name>", Node's queue.qualifiedName */
    bullc_job_opts *defaults; /* queuesOptions[name].defaultJobOptions, or NULL */
    struct flow_queue *next;
} flow_queue;

/* One job to add: one node of a tree. */
typedef struct flow_entry {
    bullc__prepared_job pj;
    bullc__add_call call; /* built once the tree's major is settled */
    sds name;
    unsigned flags; /* BULLC__ADD_* */
    flow_queue *queue;
    cJSON *out; /* its {"job": ...} in the result tree, borrowed */
    /* in auto, what prepares the node again once the tree settled its major */
    const cJSON *node; /* borrowed from the caller's tree */
    cJSON *opts;       /* jobOpts, owned */
    sds at;            /* its node_path */
} flow_entry;

/* A parent released at the end of the transaction (deduplicated by key). */
typedef struct flow_parent {
    sds key, deps, queue_key, id;
} flow_parent;

typedef struct flow_tx {
    bullc_flow_producer *fp;
    const bullc__protocol *proto; /* the tree's major, settled from its queues' meta.version */
    const cJSON *queues_opts;     /* queuesOptions, or NULL */
    flow_queue *queues;
    flow_entry *entries;
    size_t n, cap;
    flow_parent *parents;
    size_t nparents, capparents;
} flow_tx;

static void tx_free(flow_tx *tx) {
    for (size_t i = 0; i < tx->n; i++) {
        bullc__add_call_free(&tx->entries[i].call);
        bullc__job_prepared_free(&tx->entries[i].pj);
        sdsfree(tx->entries[i].name);
        cJSON_Delete(tx->entries[i].opts);
        sdsfree(tx->entries[i].at);
    }
    free(tx->entries);
    for (size_t i = 0; i < tx->nparents; i++) {
        flow_parent *p = &tx->parents[i];
        sdsfree(p->key), sdsfree(p->deps), sdsfree(p->queue_key), sdsfree(p->id);
    }
    free(tx->parents);
    for (flow_queue *q = tx->queues, *next; q; q = next) {
        next = q->next;
        bullc__keys_free(&q->keys);
        sdsfree(q->qualified);
        bullc_job_opts_free(q->defaults);
        free(q);
    }
}

/* Where a node sits in its tree, for messages: "root", "children[1]...". */
typedef struct node_path {
    char text[256];
} node_path;

static int node_err(bullc_error *err, int code, const node_path *at, const cJSON *node, const char *msg) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(node, "name");
    const cJSON *queue = cJSON_GetObjectItemCaseSensitive(node, "queueName");
    return bullc__err(err, code, "flow node %s ('%s' in queue '%s'): %s", at->text,
                      cJSON_IsString(name) ? name->valuestring : "?", cJSON_IsString(queue) ? queue->valuestring : "?",
                      msg);
}

static int queue_for(flow_tx *tx, const char *prefix, const char *name, flow_queue **out, bullc_error *err) {
    /* "<prefix>:<name>" names one queue: a queue name holds no ':' */
    size_t plen = strlen(prefix);
    for (flow_queue *q = tx->queues; q; q = q->next)
        if (!strncmp(q->qualified, prefix, plen) && q->qualified[plen] == ':' &&
            !strcmp(q->qualified + plen + 1, name)) {
            *out = q;
            return 0;
        }
    flow_queue *q = calloc(1, sizeof *q);
    if (!q || bullc__keys_init(&q->keys, prefix, name)) {
        free(q);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    q->next = tx->queues;
    tx->queues = q;
    if (!(q->qualified = sdscatprintf(sdsempty(), "%s:%s", prefix, name)))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    const cJSON *qo = cJSON_GetObjectItemCaseSensitive(tx->queues_opts, name);
    const cJSON *djo = cJSON_GetObjectItemCaseSensitive(qo, "defaultJobOptions");
    if (djo && !cJSON_IsNull(djo)) {
        if (!cJSON_IsObject(djo))
            return bullc__err(err, BULLC_EINVAL, "queuesOptions.%s.defaultJobOptions must be an object", name);
        if (bullc_job_opts_new(&q->defaults)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
        cJSON_Delete(q->defaults->obj);
        if (!(q->defaults->obj = cJSON_Duplicate(djo, 1))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
        int rc = bullc_job_opts_validate(q->defaults, err);
        if (rc) {
            bullc__err_prefix(err, "queuesOptions.%s.defaultJobOptions: ", name);
            return rc;
        }
    }
    *out = q;
    return 0;
}

static flow_entry *new_entry(flow_tx *tx) {
    if (tx->n == tx->cap) {
        size_t cap = tx->cap ? tx->cap * 2 : 8;
        flow_entry *e = realloc(tx->entries, cap * sizeof *e);
        if (!e) return NULL;
        tx->entries = e;
        tx->cap = cap;
    }
    flow_entry *e = &tx->entries[tx->n];
    memset(e, 0, sizeof *e);
    return e;
}

/* Remembers the parent of an entry, once per parent key. */
static int note_parent(flow_tx *tx, const cJSON *parent, const sds key) {
    for (size_t i = 0; i < tx->nparents; i++)
        if (!strcmp(tx->parents[i].key, key)) return 0;
    if (tx->nparents == tx->capparents) {
        size_t cap = tx->capparents ? tx->capparents * 2 : 4;
        flow_parent *p = realloc(tx->parents, cap * sizeof *p);
        if (!p) return BULLC_ENOMEM;
        tx->parents = p;
        tx->capparents = cap;
    }
    flow_parent *p = &tx->parents[tx->nparents++];
    p->key = sdsdup(key);
    p->deps = sdscat(sdsdup(key), ":dependencies");
    p->queue_key = sdsnew(cJSON_GetObjectItemCaseSensitive(parent, "queue")->valuestring);
    p->id = sdsnew(cJSON_GetObjectItemCaseSensitive(parent, "id")->valuestring);
    return p->key && p->deps && p->queue_key && p->id ? 0 : BULLC_ENOMEM;
}

/* Node's validateFlowJobs and the shape of a FlowJob. */
static int check_node(const cJSON *node, const node_path *at, bullc_error *err) {
    if (!cJSON_IsObject(node)) return bullc__err(err, BULLC_EINVAL, "flow node %s: not an object", at->text);
    static const char *const keys[] = {"name", "queueName", "data", "opts", "prefix", "children"};
    for (const cJSON *c = node->child; c; c = c->next) {
        size_t i = 0;
        while (i < 6 && strcmp(c->string, keys[i])) i++;
        if (i == 6) {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown field '%.100s'", c->string);
            return node_err(err, BULLC_EINVAL, at, node, msg);
        }
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(node, "name");
    const cJSON *queue = cJSON_GetObjectItemCaseSensitive(node, "queueName");
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(node, "opts");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(node, "prefix");
    const cJSON *children = cJSON_GetObjectItemCaseSensitive(node, "children");
    if (!cJSON_IsString(name)) return node_err(err, BULLC_EINVAL, at, node, "name must be a string");
    if (!cJSON_IsString(queue)) return node_err(err, BULLC_EINVAL, at, node, "queueName is missing");
    bullc_error qe = {0};
    if (bullc__validate_queue_name(queue->valuestring, &qe)) return node_err(err, BULLC_EINVAL, at, node, qe.message);
    if (opts && !cJSON_IsNull(opts) && !cJSON_IsObject(opts))
        return node_err(err, BULLC_EINVAL, at, node, "opts must be an object");
    if (prefix && !cJSON_IsNull(prefix) && !cJSON_IsString(prefix))
        return node_err(err, BULLC_EINVAL, at, node, "prefix must be a string");
    if (children && !cJSON_IsNull(children) && !cJSON_IsArray(children))
        return node_err(err, BULLC_EINVAL, at, node, "children must be an array");
    const cJSON *dedup = cJSON_GetObjectItemCaseSensitive(opts, "deduplication");
    if (cJSON_GetArraySize(children) > 0 && dedup && !cJSON_IsNull(dedup) && !cJSON_IsFalse(dedup))
        return node_err(err, BULLC_EINVAL, at, node,
                        "Deduplication options cannot be used on flow nodes with children");
    return 0;
}

/* Adds `node` (and its children) to the transaction, in the order Node
 * queues them: each parent before its children. `parent` is the node's
 * opts.parent ({id, queue}), NULL for a root without one. */
static int add_node(flow_tx *tx, const cJSON *node, const cJSON *parent, cJSON *out, const node_path *at,
                    bullc_error *err) {
    int rc = check_node(node, at, err);
    if (rc) return rc;
    const char *name = cJSON_GetObjectItemCaseSensitive(node, "name")->valuestring;
    const char *qname = cJSON_GetObjectItemCaseSensitive(node, "queueName")->valuestring;
    const cJSON *np = cJSON_GetObjectItemCaseSensitive(node, "prefix");
    const char *prefix = cJSON_IsString(np) && *np->valuestring ? np->valuestring : tx->fp->prefix;
    const cJSON *children = cJSON_GetObjectItemCaseSensitive(node, "children");
    int nchildren = cJSON_GetArraySize(children);
    flow_queue *q = NULL;
    if ((rc = queue_for(tx, prefix, qname, &q, err))) return rc;
    if (!parent && q->defaults) parent = cJSON_GetObjectItemCaseSensitive(q->defaults->obj, "parent");
    if (cJSON_IsNull(parent)) parent = NULL;

    /* jobOpts = {...defaultJobOptions, ...node.opts, parent} */
    bullc_job_opts opts = {0};
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(node, "opts");
    opts.obj = cJSON_IsObject(given) ? cJSON_Duplicate(given, 1) : cJSON_CreateObject();
    if (!opts.obj) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (parent) {
        cJSON *p = cJSON_Duplicate(parent, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(opts.obj, "parent");
        if (!p || !cJSON_AddItemToObject(opts.obj, "parent", p)) {
            cJSON_Delete(p);
            cJSON_Delete(opts.obj);
            return bullc__err(err, BULLC_ENOMEM, "out of memory");
        }
        const cJSON *dedup = cJSON_GetObjectItemCaseSensitive(opts.obj, "deduplication");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dedup, "keepLastIfActive"))) {
            cJSON_Delete(opts.obj);
            return node_err(err, BULLC_EINVAL, at, node,
                            "keepLastIfActive deduplication cannot be used on flow nodes with a parent");
        }
    }
    flow_entry *e = new_entry(tx);
    if (!e) {
        cJSON_Delete(opts.obj);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(node, "data");
    char *data_json = data && !cJSON_IsNull(data) ? cJSON_PrintUnformatted(data) : NULL;
    bullc_error je = {0};
    /* a node is prepared before the tree's major is settled: in auto its
       major's rules (debounce, jobId '0') wait for reprepare */
    const int major = tx->fp->explicit_major;
    rc = bullc__job_prepare_major(&e->pj, major, name, data_json, q->defaults, &opts, NULL, &je);
    cJSON_free(data_json);
    if (rc || major) cJSON_Delete(opts.obj);
    if (rc) return node_err(err, rc, at, node, je.message);
    tx->n++; /* from here tx_free frees it */
    e->queue = q;
    if (!major) {
        e->node = node, e->opts = opts.obj;
        if (!(e->at = sdsnew(at->text))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    char uuid[37];
    if (!e->pj.job_id) {
        bullc__uuid4(uuid);
        e->pj.job_id = sdsnew(uuid);
    }
    e->name = sdsnew(name);
    e->flags = BULLC__ADD_DEFER_RELEASE | (nchildren > 0 ? BULLC__ADD_WAITING_CHILDREN : 0);
    if (!e->pj.job_id || !e->name || (e->pj.parent_key && note_parent(tx, parent, e->pj.parent_key)))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");

    cJSON *job = cJSON_AddObjectToObject(out, "job");
    if (!job || !cJSON_AddStringToObject(job, "id", e->pj.job_id) || !cJSON_AddStringToObject(job, "name", name) ||
        !cJSON_AddStringToObject(job, "queueName", qname))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    e->out = job;
    if (nchildren == 0) return 0;

    /* the children's parent: {id, queue: qualifiedName} */
    cJSON *child_parent = cJSON_CreateObject();
    cJSON *kids = cJSON_AddArrayToObject(out, "children");
    sds id = sdsdup(e->pj.job_id); /* e moves when the entries grow */
    if (!child_parent || !kids || !id || !cJSON_AddStringToObject(child_parent, "id", id) ||
        !cJSON_AddStringToObject(child_parent, "queue", q->qualified))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    int i = 0;
    for (const cJSON *c = children->child; c && !rc; c = c->next, i++) {
        node_path sub;
        bool root = !strcmp(at->text, "root");
        snprintf(sub.text, sizeof sub.text, "%s%schildren[%d]", root ? "" : at->text, root ? "" : ".", i);
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(kids, o)) {
            cJSON_Delete(o);
            rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
            break;
        }
        rc = add_node(tx, c, child_parent, o, &sub, err);
    }
    sdsfree(id);
    cJSON_Delete(child_parent);
    return rc;
}

/* ---- sending ----------------------------------------------------------------- */

static const bullc__call_id flow_calls[] = {BULLC__C_ADD_STANDARD, BULLC__C_ADD_DELAYED, BULLC__C_ADD_PRIORITIZED,
                                            BULLC__C_ADD_PARENT, BULLC__C_RELEASE_PARENT};
#define FLOW_CALLS (sizeof flow_calls / sizeof flow_calls[0])

/* SCRIPT LOAD once per connection: an EVALSHA inside MULTI cannot fall back
 * to EVAL (ioredis loads a pipeline's scripts first for the same reason). */
static int load_scripts(bullc_flow_producer *fp, const bullc__protocol *proto, bullc_error *err) {
    const bullc__script *scripts[FLOW_CALLS];
    size_t n = 0;
    for (size_t k = 0; k < FLOW_CALLS; k++)
        if ((scripts[n] = bullc__call_script(proto, flow_calls[k]))) n++; /* 5.x has no release script */
    return bullc__conn_load_scripts(&fp->conn, scripts, n, &fp->scripts_generation[proto->major == 5], err);
}

static int append_release(flow_tx *tx, const flow_parent *p, const char *now, bullc_error *err) {
    const bullc__call_ctx x = {.job = p->key, .deps = p->deps};
    const char *argv[BULLC__CALL_MAX_KEYS + 3];
    size_t lens[BULLC__CALL_MAX_KEYS + 3];
    int argc = bullc__call_keys(tx->proto, BULLC__C_RELEASE_PARENT, NULL, &x, argv, lens);
    const char *args[] = {p->queue_key, p->id, now};
    for (int i = 0; i < 3; i++) argv[argc] = args[i], lens[argc++] = strlen(args[i]);
    return bullc__conn_append_script(&tx->fp->conn, bullc__call_script(tx->proto, BULLC__C_RELEASE_PARENT), false, argc,
                                     argv, lens, err);
}

/* An entry's reply: its id (the one asked for, or an existing job's). */
static int entry_reply(flow_entry *e, const redisReply *r, bullc_error *err) {
    if (r->type == REDIS_REPLY_ERROR) return bullc__reply_err(r, err);
    if (r->type == REDIS_REPLY_INTEGER && r->integer < 0)
        return bullc__script_code_err(
            r->integer, r->integer == -5 || r->integer == -7 ? e->pj.parent_key : e->pj.job_id, "addJob", NULL, err);
    char num[24];
    const char *id = num;
    if (r->type == REDIS_REPLY_STRING)
        id = r->str;
    else if (r->type == REDIS_REPLY_INTEGER)
        snprintf(num, sizeof num, "%lld", r->integer);
    else
        return bullc__err(err, BULLC_EPROTO, "addJob: unexpected reply type %d", r->type);
    cJSON *s = cJSON_CreateString(id);
    if (!s) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    cJSON_ReplaceItemInObjectCaseSensitive(e->out, "id", s);
    return 0;
}

/* The queues a tree touches: its nodes' and a root's existing parent's. */
typedef struct touched {
    sds name; /* qualified: "<prefix>:<queue>" */
    sds meta; /* its meta key */
} touched;

static int touch(touched *t, size_t *n, const char *qualified) {
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(t[i].name, qualified)) return 0;
    t[*n].name = sdsnew(qualified);
    t[*n].meta = t[*n].name ? sdscat(sdsdup(t[*n].name), ":meta") : NULL;
    (*n)++;
    return t[*n - 1].meta ? 0 : BULLC_ENOMEM;
}

/* One tree speaks one major to all its queues: a child's moveToFinished
 * moves its parent in the parent's queue by the child's major's layout (5.x
 * to `paused` on a paused queue, 6.x to `wait`), so queues whose majors
 * differ cannot share a tree. Each queue settles as a queue handle does
 * (explicit, else its meta.version, else 6) and they must agree; anything
 * else is BULLC_EVERSION before anything is written. */
static int settle_tree(flow_tx *tx, bullc_error *err) {
    const int explicit_major = tx->fp->explicit_major;
    size_t nq = 0, cap = tx->nparents;
    for (flow_queue *q = tx->queues; q; q = q->next) cap++;
    touched *t = calloc(cap ? cap : 1, sizeof *t);
    int rc = t ? 0 : BULLC_ENOMEM;
    for (flow_queue *q = tx->queues; q && !rc; q = q->next) rc = touch(t, &nq, q->qualified);
    for (size_t i = 0; i < nq / 2; i++) { /* tx->queues is newest first: messages name them in tree order */
        touched tmp = t[i];
        t[i] = t[nq - 1 - i], t[nq - 1 - i] = tmp;
    }
    for (size_t i = 0; i < tx->nparents && !rc; i++) rc = touch(t, &nq, tx->parents[i].queue_key);
    if (rc) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    /* one pipelined HGET per queue: one round trip however many queues */
    for (size_t i = 0; i < nq && !rc; i++) {
        const char *argv[] = {"HGET", t[i].meta, "version"};
        rc = bullc__conn_append(&tx->fp->conn, 3, argv, NULL, err);
    }
    if (rc) bullc__conn_drop(&tx->fp->conn);
    const bullc__protocol *p = NULL;
    size_t from = 0;           /* in auto, the first queue with a meta.version: it chose p */
    redisReply *from_r = NULL; /* its reply */
    for (size_t i = 0; i < nq && !rc; i++) {
        redisReply *r = NULL;
        if ((rc = bullc__conn_read(&tx->fp->conn, &r, err))) break;
        const char *v = r->type == REDIS_REPLY_STRING ? r->str : NULL;
        const bullc__protocol *mine = NULL;
        bool write_version;
        rc = bullc__protocol_settle(t[i].name, explicit_major, v, NULL, &mine, &write_version, err);
        if (!rc && explicit_major) {
            p = mine;
        } else if (!rc && v && p && p != mine) {
            rc = bullc__err(err, BULLC_EVERSION,
                            "flow: queue %s has meta.version %s (BullMQ %d) but queue %s has %s (BullMQ %d): one "
                            "tree speaks one major to all its queues (a child's completion moves its parent by its "
                            "own major's layout): nothing written; move these queues' Node peers to one major first",
                            t[from].name, from_r->str, p->major, t[i].name, v, mine->major);
        } else if (!rc && v && !p) {
            p = mine, from = i, from_r = r;
            continue; /* kept for a later message */
        }
        freeReplyObject(r);
    }
    freeReplyObject(from_r);
    /* the replies of the queues after a conflict are still owed: a fresh
     * connection is simpler than reading them off */
    if (rc && tx->fp->conn.unread) bullc__conn_drop(&tx->fp->conn);
    for (size_t i = 0; i < nq; i++) sdsfree(t[i].name), sdsfree(t[i].meta);
    free(t);
    if (rc) return rc;
    tx->proto = p ? p : &bullc__protocol_v6;
    return 0;
}

/* A node prepared in auto is prepared again by the rules of the major its
 * tree settled on, as a queue's first add is (its generated id kept: its
 * children's opts.parent name it). */
static int reprepare(flow_tx *tx, flow_entry *e, bullc_error *err) {
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(e->node, "data");
    char *data_json = data && !cJSON_IsNull(data) ? cJSON_PrintUnformatted(data) : NULL;
    if (data && !cJSON_IsNull(data) && !data_json) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    bullc_job_opts opts = {.obj = e->opts};
    bullc__prepared_job pj;
    bullc_error je = {0};
    int rc = bullc__job_prepare_major(&pj, tx->proto->major, e->name, data_json, e->queue->defaults, &opts, NULL, &je);
    cJSON_free(data_json);
    if (rc) {
        node_path at;
        snprintf(at.text, sizeof at.text, "%s", e->at);
        return node_err(err, rc, &at, e->node, je.message);
    }
    if (!pj.job_id) pj.job_id = e->pj.job_id, e->pj.job_id = NULL;
    bullc__job_prepared_free(&e->pj);
    e->pj = pj;
    return 0;
}

/* Every entry's add call, in the tree's major. */
static int build_calls(flow_tx *tx, bullc_error *err) {
    for (size_t i = 0; i < tx->n; i++) {
        flow_entry *e = &tx->entries[i];
        int rc = e->pj.major != tx->proto->major ? reprepare(tx, e, err) : 0;
        if (rc) return rc;
        if (bullc__add_call_build(&e->call, tx->proto, &e->queue->keys, e->name, &e->pj, e->flags))
            return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    return 0;
}

/* In a cluster, a flow is one transaction on one node: every queue of the
 * tree must be in one slot (Node's rule too), and the producer's
 * connection moves to that slot's master. */
static int route_tx(flow_tx *tx, bullc_error *err) {
    bullc_redis_opts *o = tx->fp->conn.opts;
    if (!o->ncluster || !tx->n) return 0;
    int slot = -1;
    for (size_t i = 0; i < tx->n; i++) {
        const sds q = tx->entries[i].queue->qualified;
        int s, rc = bullc__cluster_queue_slot(q, &s, err);
        if (rc) return rc;
        if (slot >= 0 && s != slot)
            return bullc__err(err, BULLC_EINVAL,
                              "Redis Cluster: a flow's queues must share one hash tag (one slot); '%s' differs", q);
        slot = s;
    }
    if (slot != o->cluster_slot) {
        o->cluster_slot = slot;
        o->cluster_redirected = false;
        bullc__conn_drop(&tx->fp->conn);
    }
    return 0;
}

/* MULTI, every entry's add, every parent's release, EXEC; one round trip.
 * `bulk`: an addBulk, whose roots 6.x does not fail the call for. */
static int send_tx(flow_tx *tx, const size_t *roots, size_t nroots, bool bulk, bullc_error *err) {
    bullc_flow_producer *fp = tx->fp;
    int rc = route_tx(tx, err);
    if (!rc) rc = bullc__conn_ensure(&fp->conn, err);
    if (rc || (rc = settle_tree(tx, err)) || (rc = build_calls(tx, err)) || (rc = load_scripts(fp, tx->proto, err)))
        return rc;
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)bullc__now_ms());
    rc = bullc__conn_append(&fp->conn, 1, multi, NULL, err);
    for (size_t i = 0; i < tx->n && !rc; i++) {
        const bullc__add_call *c = &tx->entries[i].call;
        rc = bullc__conn_append_script(&fp->conn, c->script, false, c->argc, c->argv, c->lens, err);
    }
    /* 5.x's adds release nothing to defer: a parent waits for its children
     * as each child is added, and 5.x has no release script */
    size_t nreleases = tx->proto->major == 5 ? 0 : tx->nparents;
    for (size_t i = 0; i < nreleases && !rc; i++) rc = append_release(tx, &tx->parents[i], now, err);
    if (!rc) rc = bullc__conn_append(&fp->conn, 1, exec, NULL, err);
    if (rc) {
        bullc__conn_drop(&fp->conn);
        return rc;
    }
    size_t queued = tx->n + nreleases;
    redisReply *r = NULL;
    for (size_t k = 0; k < 1 + queued; k++) {
        int rrc = bullc__conn_read(&fp->conn, &r, rc ? NULL : err);
        if (rrc) return rc ? rc : rrc;
        if (!rc && r->type == REDIS_REPLY_ERROR) rc = bullc__reply_err(r, err);
        freeReplyObject(r);
    }
    int qrc = rc;
    if ((rc = bullc__conn_read(&fp->conn, &r, qrc ? NULL : err))) return qrc ? qrc : rc;
    if (qrc || r->type != REDIS_REPLY_ARRAY || r->elements != queued) {
        rc = qrc                            ? qrc
             : r->type == REDIS_REPLY_ERROR ? bullc__reply_err(r, err)
                                            : bullc__err(err, BULLC_EPROTO, "EXEC: unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    for (size_t i = 0; i < queued && !rc; i++)
        if (bullc__reply_is_noscript(r->element[i])) {
            fp->scripts_generation[tx->proto->major == 5] = 0;
            rc = bullc__err(err, BULLC_EREDIS,
                            "NOSCRIPT: Redis's script cache was flushed while the flow was being added");
        }
    /* Node reports a root's error (a missing or replaced parent); the other
     * nodes' replies only give their ids. 6.7.0's addBulk reports none: a
     * root the script refused keeps its generated id, and no job has it. */
    bool lenient = bulk && tx->proto->major == 6;
    for (size_t k = 0; k < nroots && !rc; k++) {
        const redisReply *e = r->element[roots[k]];
        if (lenient && e->type == REDIS_REPLY_INTEGER && e->integer < 0) continue;
        rc = entry_reply(&tx->entries[roots[k]], e, err);
    }
    for (size_t i = 0; i < tx->n && !rc; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER || r->element[i]->integer >= 0)
            rc = entry_reply(&tx->entries[i], r->element[i], err);
    for (size_t i = tx->n; i < queued && !rc; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR) rc = bullc__reply_err(r->element[i], err);
    freeReplyObject(r);
    return rc;
}

/* Adds `flows` (an array of trees) in one transaction; *out gets the array
 * of created trees. */
static int add_flows(bullc_flow_producer *fp, const cJSON *flows, bool bulk, const cJSON *queues_opts, cJSON **out,
                     bullc_error *err) {
    flow_tx tx = {.fp = fp, .queues_opts = queues_opts};
    size_t nroots = (size_t)cJSON_GetArraySize(flows);
    size_t *roots = calloc(nroots ? nroots : 1, sizeof *roots);
    cJSON *trees = cJSON_CreateArray();
    int rc = roots && trees ? 0 : bullc__err(err, BULLC_ENOMEM, "out of memory");
    size_t k = 0;
    for (const cJSON *f = flows->child; f && !rc; f = f->next, k++) {
        node_path at;
        if (bulk)
            snprintf(at.text, sizeof at.text, "[%zu]", k);
        else
            snprintf(at.text, sizeof at.text, "root");
        cJSON *tree = cJSON_CreateObject();
        if (!tree || !cJSON_AddItemToArray(trees, tree)) {
            cJSON_Delete(tree);
            rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
            break;
        }
        roots[k] = tx.n;
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(f, "opts");
        const cJSON *parent = cJSON_GetObjectItemCaseSensitive(opts, "parent");
        rc = add_node(&tx, f, parent, tree, &at, err);
    }
    if (!rc && tx.n) rc = send_tx(&tx, roots, nroots, bulk, err);
    tx_free(&tx);
    free(roots);
    if (rc) {
        cJSON_Delete(trees);
        return rc;
    }
    *out = trees;
    return 0;
}

static int parse(const char *json, const char *what, cJSON **out, bullc_error *err) {
    if (!json) return bullc__err(err, BULLC_EINVAL, "%s: NULL", what);
    if (!(*out = cJSON_ParseWithOpts(json, NULL, 1)))
        return bullc__err(err, BULLC_EINVAL, "%s: invalid JSON near '%.20s'", what,
                          cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "");
    return 0;
}

static int hand_out(cJSON *v, char **out, bullc_error *err) {
    if (!out) return 0;
    if (!(*out = cJSON_PrintUnformatted(v))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    return 0;
}

int bullc_flow_producer_add(bullc_flow_producer *fp, const char *flow_json, const char *opts_json, char **out_tree,
                            bullc_error *err) {
    cJSON *flow = NULL, *opts = NULL, *trees = NULL;
    int rc = parse(flow_json, "flow", &flow, err);
    if (!rc && opts_json) rc = parse(opts_json, "flow options", &opts, err);
    const cJSON *qo = cJSON_GetObjectItemCaseSensitive(opts, "queuesOptions");
    if (!rc && opts && (!cJSON_IsObject(opts) || (qo && !cJSON_IsNull(qo) && !cJSON_IsObject(qo))))
        rc = bullc__err(err, BULLC_EINVAL, "flow options must be {\"queuesOptions\": {\"<queue>\": {...}}}");
    cJSON *one = rc ? NULL : cJSON_CreateArray();
    if (!rc && (!one || !cJSON_AddItemReferenceToArray(one, flow))) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (!rc) rc = add_flows(fp, one, false, cJSON_IsObject(qo) ? qo : NULL, &trees, err);
    if (!rc) rc = hand_out(trees->child, out_tree, err);
    cJSON_Delete(one);
    cJSON_Delete(trees);
    cJSON_Delete(flow);
    cJSON_Delete(opts);
    return rc;
}

int bullc_flow_producer_add_bulk(bullc_flow_producer *fp, const char *flows_json, char **out_trees, bullc_error *err) {
    cJSON *flows = NULL, *trees = NULL;
    int rc = parse(flows_json, "flows", &flows, err);
    if (!rc && !cJSON_IsArray(flows)) rc = bullc__err(err, BULLC_EINVAL, "flows must be a JSON array of flow trees");
    if (!rc) rc = add_flows(fp, flows, true, NULL, &trees, err);
    if (!rc) rc = hand_out(trees, out_trees, err);
    cJSON_Delete(trees);
    cJSON_Delete(flows);
    return rc;
}

int bullc_flow_producer_get_flow(bullc_flow_producer *fp, const char *queue, const char *id, const char *prefix,
                                 int depth, int max_children, char **out_tree, bullc_error *err) {
    return bullc__flow_get(&fp->conn, prefix ? prefix : fp->prefix, queue, id, depth ? depth : 10,
                           max_children ? max_children : 20, out_tree, err);
}
