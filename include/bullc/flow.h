/* SPDX-License-Identifier: MIT */
/* Flows: trees of parent and child jobs across queues (Node's FlowProducer). */
#ifndef BULLC_FLOW_H
#define BULLC_FLOW_H

#include <stdint.h>
#include <bullc/common.h>
#include <bullc/queue.h>
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
/* The BullMQ major spoken to every queue a tree touches (its nodes' queues
 * and a root's opts.parent's): 5 (bullmq 5.81.5's protocol: what a Node 5
 * FlowProducer writes), 6 (6.7.0's) or 0, auto: the major of those queues'
 * meta.version, else 6 (docs/versions.md). One tree speaks one major: a
 * queue whose meta.version contradicts the explicit major, two queues whose
 * meta.version majors differ, or a major bullc does not speak make the add
 * fail with BULLC_EVERSION naming the queue, having written nothing.
 * Anything else: BULLC_EINVAL, settings unchanged. */
BULLC_EXPORT int bullc_flow_producer_opts_set_bullmq_version(bullc_flow_producer_opts *opts, int major);

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
 * <key>. addJob"; a root that exists with another parent: BULLC_ESTATE;
 * queues of different BullMQ majors: BULLC_EVERSION (see
 * bullc_flow_producer_opts_set_bullmq_version). */
BULLC_EXPORT int bullc_flow_producer_add(bullc_flow_producer *fp, const char *flow_json, const char *opts_json,
                                         char **out_tree, bullc_error *err);

/* Adds several flows in one transaction, as Node's `addBulk(flows)`:
 * `flows_json` is a JSON array of FlowJob trees (no queuesOptions). The
 * result is a JSON array of trees as bullc_flow_producer_add gives one.
 * Same checks, errors and ownership, but for a root the add script refuses
 * (its opts.parent missing, or existing with another parent): the other
 * roots are written all the same (a transaction does not roll a script's
 * refusal back), and, as Node 6.7.0's addBulk, a tree speaking 6.x returns
 * 0 with that root's tree holding the id bullc generated, which no job has;
 * speaking 5.x the call fails with that root's error, as 5.81.5's throws. */
BULLC_EXPORT int bullc_flow_producer_add_bulk(bullc_flow_producer *fp, const char *flows_json, char **out_trees,
                                              bullc_error *err);

/* Reads a tree (Node's `flowProducer.getFlow({id, queueName, prefix, depth,
 * maxChildren})`): job `id` of `queue` under `prefix` (NULL: the producer's),
 * `depth` levels (0: Node's default 10), at most `max_children` children of
 * each kind per node (0: Node's default 20). JSON {"job": <the job as
 * bullc_queue_get_job gives it>, "children": [...]}; "children" is there when
 * the node has some and depth is left; a child whose job is gone is null.
 * A missing root: BULLC_ENOTFOUND. Ownership as bullc_flow_producer_add. */
BULLC_EXPORT int bullc_flow_producer_get_flow(bullc_flow_producer *fp, const char *queue, const char *id,
                                              const char *prefix, int depth, int max_children, char **out_tree,
                                              bullc_error *err);

/* ---- a parent's dependencies, on a queue handle ------------------------------ */

/* Node's `job.getDependencies(opts)` for job `job_id` of `queue`, as JSON.
 * `opts_json` NULL: everything, {"processed": {"<child key>": <its result>},
 * "unprocessed": [keys], "failed": [keys], "ignored": {"<child key>":
 * "<failure>"}}. Otherwise Node's DependenciesOpts, e.g. {"processed":
 * {"cursor": 0, "count": 10}, "unprocessed": {}}: only those kinds, a page
 * each ({cursor 0, count 20} by default) with Node's next*Cursor fields (0:
 * no more). A job without dependencies (or no such job) gives empty ones, as
 * in Node. *out_json is freed with bullc_free. Same thread rule as the queue. */
BULLC_EXPORT int bullc_queue_get_dependencies(bullc_queue *queue, const char *job_id, const char *opts_json,
                                              char **out_json, bullc_error *err);
/* Node's `queue.getDependencies(parentId, type, start, end)`: one page of
 * job `job_id`'s children, `type` "processed" (its processed hash) or
 * "pending" (its dependencies set), items `start` to `end` inclusive (-1:
 * to the last), walked with SSCAN/HSCAN as BullMQ's paginate script does:
 * the order is Redis's, not stable while the set changes. *out_json (free
 * with bullc_free): {"items": [{"id": "<child key>"}] for pending, [{"id",
 * "v": <its return value>}] for processed ({"id", "err"} when the value is
 * not JSON), "jobs": [the children's jobs as bullc_queue_get_job gives them,
 * those whose hash is gone left out], "total": <members in all>, "cursor":
 * "0" once the scan is over}. BULLC_EINVAL for another type or a bad range.
 * Same thread rule as the queue. */
BULLC_EXPORT int bullc_queue_get_dependencies_page(bullc_queue *queue, const char *job_id, const char *type,
                                                   int64_t start, int64_t end, char **out_json, bullc_error *err);
/* Node's `job.getDependenciesCount()`: counts[0..3] = processed, unprocessed,
 * failed, ignored. */
BULLC_EXPORT int bullc_queue_get_dependencies_count(bullc_queue *queue, const char *job_id, int64_t counts[4],
                                                    bullc_error *err);
/* Node's `job.getChildrenValues()`: {"<child key>": <its return value>} as
 * JSON (values parsed; a value that is not JSON stays a string). */
BULLC_EXPORT int bullc_queue_get_children_values(bullc_queue *queue, const char *job_id, char **out_json,
                                                 bullc_error *err);
/* Node's `job.getIgnoredChildrenFailures()` (and the deprecated
 * getFailedChildrenValues): {"<child key>": "<failed reason>"} of children
 * that failed with ignoreDependencyOnFailure. */
BULLC_EXPORT int bullc_queue_get_ignored_children_failures(bullc_queue *queue, const char *job_id, char **out_json,
                                                           bullc_error *err);

/* ---- changing a parent's dependencies, on a queue handle ------------------------ */

/* Cuts job `job_id` of `queue` loose from its parent (Node's
 * `job.removeChildDependency()`): the parent no longer waits for it (when it
 * was the last one pending, the parent moves on to wait, or delayed or
 * prioritized as its options say) and the job loses its `parent` and
 * `parentKey` fields. `parent_key` is the parent's job key
 * ("<prefix>:<queue>:<id>"), or NULL to use the job's stored `parentKey`.
 * 0: the dependency was removed (Node's true); 1: there was none (the job has
 * no parent, or the parent does not list it as pending; Node's false).
 * BULLC_ENOTFOUND: no such job ("Missing key for job <id>.
 * removeChildDependency") or no such parent ("Missing key for parent job
 * <parent key>. removeChildDependency"), Node's messages. Same thread rule as
 * the queue. */
BULLC_EXPORT int bullc_queue_remove_child_dependency(bullc_queue *queue, const char *job_id, const char *parent_key,
                                                     bullc_error *err);

/* Removes the children that parent `job_id` of `queue` still waits for, and
 * their own children (Node's `job.removeUnprocessedChildren()`): completed
 * and failed children stay, and so does a child being processed (locked); a
 * `removed` event is written for each job removed. The parent itself stays
 * where it is. 0 on success; BULLC_ENOTFOUND when there is no such job (Node
 * reports nothing). Same thread rule as the queue. */
BULLC_EXPORT int bullc_queue_remove_unprocessed_children(bullc_queue *queue, const char *job_id, bullc_error *err);

#ifdef __cplusplus
}
#endif
#endif
