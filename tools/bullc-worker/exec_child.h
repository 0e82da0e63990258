/* SPDX-License-Identifier: MIT */
/* Private to bullc-worker's --exec-persistent: one child process, its pipes
 * and its lines (exec_child.c). The pool of slots in exec_persistent.c owns
 * the children through this interface: it gets each answer line and the
 * child's end through hooks, and decides what they mean for its jobs. */
#ifndef BW_EXEC_CHILD_H
#define BW_EXEC_CHILD_H

#include "bw.h"

#define XCHILD_MAX_LINE (16u << 20) /* a longer answer line is a protocol error (as --exec's 16 MiB of stdout) */

typedef struct xchild xchild;

/* Called on the loop thread with the owner given to xchild_start, and only
 * while the child is not retired. */
typedef struct xchild_hooks {
    /* One stdout line, NUL-terminated, without its '\n'. */
    void (*line)(void *owner, xchild *c, char *line, size_t len);
    /* The child exited and its pipes closed, or closed its stdout and still
     * ran a second later (xchild_mute) (overlong false), or it wrote a line
     * longer than XCHILD_MAX_LINE (overlong true). */
    void (*gone)(void *owner, xchild *c, bool overlong);
    /* The job id a stderr line is logged with, or NULL. */
    const char *(*job_id)(void *owner);
} xchild_hooks;

/* Starts the queue's program with `env` (borrowed: must outlive the child)
 * in a session of its own. 0 with *out set, or a libuv error. `slot` only
 * names the child in the log. */
int xchild_start(bw_queue *q, char **env, const xchild_hooks *hooks, void *owner, long slot, xchild **out);
/* Gives up on the child: no hook runs any more; its stdin is closed, `sig`
 * goes to its process group (0: SIGTERM, or SIGKILL without --kill-grace;
 * SIGKILL after --kill-grace) and it frees itself once it exited and its
 * pipes closed. */
void xchild_retire(xchild *c, int sig);
/* Sends `sig` to its process group while it runs. */
void xchild_signal(xchild *c, int sig);
/* Writes `len` bytes to its stdin: what the pipe takes at once, the rest
 * copied and written as the child reads (after anything queued before). */
void xchild_write(xchild *c, const char *p, size_t len);
int xchild_pid(const xchild *c);
/* Why it went, into `buf`: "PROG exited with code N", "PROG killed by
 * signal 9 (KILL)", "PROG closed its stdout but kept running" or (overlong)
 * "PROG wrote an answer line longer than ...". */
void xchild_why(const xchild *c, bool overlong, char *buf, size_t size);
void xchild_status(const xchild *c, int64_t *code, int *sig);
/* It closed its stdout but kept running (the `gone` hook's third case). */
bool xchild_mute(const xchild *c);
/* The stderr lines since the last xchild_tail_clear, as bw_tail_text
 * gives them (malloc'd; empty when there are none), NULL when out of memory. */
char *xchild_tail_text(const xchild *c);
void xchild_tail_clear(xchild *c);

#endif
