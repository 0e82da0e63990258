/* SPDX-License-Identifier: MIT */
/* Writes to Redis that cannot raise SIGPIPE.
 *
 * hiredis 0.14 writes with write(), so a write to a connection that Redis
 * (or a proxy) has closed raises SIGPIPE, whose default action kills the
 * process: a program embedding bullc died when Redis went away mid-write. A
 * library must not change the process's disposition (SIG_IGN would hide the
 * signal from the program's own pipes), so each write runs with SIGPIPE
 * blocked in the calling thread only (a signal raised by a socket write is
 * directed at the writing thread), and a SIGPIPE the write raised is taken
 * off the pending set with sigtimedwait before the mask is restored, as
 * libpq and libcurl do. A SIGPIPE already pending before (the caller had it
 * blocked) is left pending: it is not ours to consume. Cost: two
 * pthread_sigmask calls per write, and sigpending/sigtimedwait only after a
 * failed write. The asynchronous connections write a connected plain socket
 * themselves, with send(MSG_NOSIGNAL), and skip this (uv_redis.c). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "bullc-private.h"

void bullc__sigpipe_block(bullc__sigpipe *g) {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    g->pending_before = false;
    if (pthread_sigmask(SIG_BLOCK, &pipe, &g->old) != 0) {
        g->active = false;
        return;
    }
    g->active = true;
    /* only a signal blocked before can be pending now */
    if (sigismember(&g->old, SIGPIPE)) {
        sigset_t pend;
        g->pending_before = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
    }
}

void bullc__sigpipe_unblock(bullc__sigpipe *g, bool write_failed) {
    if (!g->active) return;
    int saved = errno; /* the caller reports the write's errno */
    if (write_failed && !g->pending_before) {
        sigset_t pipe, pend;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        if (sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE)) {
            static const struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR) {
            }
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = saved;
}

redisReply *bullc__command_argv(redisContext *ctx, int argc, const char **argv) {
    bullc__sigpipe g;
    bullc__sigpipe_block(&g);
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    bullc__sigpipe_unblock(&g, !r);
    return r;
}
