/* SPDX-License-Identifier: MIT */
/* Flows: trees of parent and child jobs across queues (Node's FlowProducer). */
#ifndef BULLC_FLOW_H
#define BULLC_FLOW_H

#include <bullc/common.h>
#include <bullc/redis.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A flow producer: one Redis connection (synchronous, opened on first use
 * and reopened after a failure), not bound to a queue: each node of a tree
 * names its own. Opaque. One thread at a time. */
typedef struct bullc_flow_producer bullc_flow_producer;

/* Flow producer settings (Node's QueueBaseOptions). Opaque; created with
 * bullc_flow_producer_opts_new, freed with bullc_flow_producer_opts_free;
 * bullc_flow_producer_new copies them. Setters copy strings and return 0,
 * BULLC_EINVAL (settings unchanged) or BULLC_ENOMEM. */
typedef struct bullc_flow_producer_opts bullc_flow_producer_opts;

/* The defaults: Redis from bullc_redis_opts' defaults then the environment,
 * prefix "bull". 0 or BULLC_ENOMEM. */
BULLC_EXPORT int bullc_flow_producer_opts_new(bullc_flow_producer_opts **out);
/* Frees the settings. NULL is a no-op. */
BULLC_EXPORT void bullc_flow_producer_opts_free(bullc_flow_producer_opts *opts);
/* Where Redis is; NULL: the defaults, then the environment. */
BULLC_EXPORT int bullc_flow_producer_opts_set_redis(bullc_flow_producer_opts *opts, const bullc_redis_opts *redis);
/* The key prefix of nodes that name none; NULL: "bull". */
BULLC_EXPORT int bullc_flow_producer_opts_set_prefix(bullc_flow_producer_opts *opts, const char *prefix);

/* Creates a flow producer (NULL opts: the defaults). Does not connect.
 * 0 and *out, or BULLC_ENOMEM. Free with bullc_flow_producer_free. */
BULLC_EXPORT int bullc_flow_producer_new(bullc_flow_producer **out, const bullc_flow_producer_opts *opts,
                                         bullc_error *err);
/* Closes the connection and frees the handle. NULL is a no-op. */
BULLC_EXPORT void bullc_flow_producer_free(bullc_flow_producer *fp);

/* Adds one flow, as Node's `flowProducer.add(flow, opts)`.
 *
 * `flow_json` is a tree in Node's FlowJob shape: {"name", "queueName",
 * "data"?, "opts"?, "prefix"?, "children"?: [FlowJob...]}; `opts_json` is
 * NULL or Node's FlowOpts {"queuesOptions": {"<queue>": {"defaultJobOptions":
 * {...}}}}. Node's rules: a node without opts.jobId gets a random UUID; a
 * node with children is added to waiting-children and its children carry
 * `parent` {id, queue: "<prefix>:<queue>"}; the root may name an existing
 * parent in opts.parent; deduplication is refused on a node with children
 * or a parent. The whole tree is checked before anything is sent (a bad node
 * returns BULLC_EINVAL naming it, e.g. "children[1].children[0] ('name' in
 * queue 'q'): ..."), then written in one MULTI/EXEC across all its queues.
 *
 * Returns 0 and, when `out_tree` is not NULL, the created tree as JSON
 * {"job":{"id","name","queueName"},"children":[...]} ("children" on nodes
 * that have some) in *out_tree (free with bullc_free). A root whose
 * opts.parent is missing: BULLC_ENOTFOUND, "Missing key for parent job
 * <key>. addJob"; a root that exists with another parent: BULLC_ESTATE. */
BULLC_EXPORT int bullc_flow_producer_add(bullc_flow_producer *fp, const char *flow_json, const char *opts_json,
                                         char **out_tree, bullc_error *err);

/* Adds several flows in one transaction, as Node's `addBulk(flows)`:
 * `flows_json` is a JSON array of FlowJob trees (no queuesOptions). The
 * result is a JSON array of trees as bullc_flow_producer_add gives one.
 * Same checks, errors and ownership. */
BULLC_EXPORT int bullc_flow_producer_add_bulk(bullc_flow_producer *fp, const char *flows_json, char **out_trees,
                                              bullc_error *err);

#ifdef __cplusplus
}
#endif
#endif
