/* SPDX-License-Identifier: MIT */
/* bullc: a BullMQ-compatible job queue in C. The only header a user includes.
 *
 * Thread rules, stated once: a handle is used by one thread at a time; the
 * library keeps no global mutable state, so handles on different threads are
 * independent. */
#ifndef BULLC_H
#define BULLC_H

#include <bullc/version.h>
#include <bullc/common.h>
#include <bullc/redis.h>
#include <bullc/redis_conn.h>
#include <bullc/job_opts.h>
#include <bullc/queue.h>
#include <bullc/flow.h>
#include <bullc/scripts.h>
#include <bullc/job.h>
#include <bullc/worker.h>
#include <bullc/stats.h>
#include <bullc/trace.h>
#include <bullc/admin.h>
#include <bullc/aqueue.h>
#include <bullc/events.h>
#include <bullc/cron.h>
#include <bullc/scheduler.h>

#endif
