/* SPDX-License-Identifier: MIT */
/* The bounded FIFO between the socket and Redis. A ring of job data texts:
 * the socket thread appends at the tail, the producer thread adds batches
 * from the head and removes them only once Redis took them, so the batch
 * being added still counts against the size. When the ring is full the NEW
 * message is dropped: what is already buffered is a gap-free run of the
 * feed that will be added in order, and the entries at the head may be in
 * the middle of being added (they cannot be taken back). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sc.h"

int sc_buffer_init(sc_buffer *b, size_t cap) {
    memset(b, 0, sizeof *b);
    if (!(b->ring = calloc(cap, sizeof *b->ring))) return -1;
    b->cap = cap;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    /* timed waits must not jump with the wall clock */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->mu, NULL);
    return 0;
}

void sc_buffer_destroy(sc_buffer *b) {
    for (size_t i = 0; i < b->count; i++) free(b->ring[(b->head + i) % b->cap].data);
    free(b->ring);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    memset(b, 0, sizeof *b);
}

/* An overflow episode starts when a message is dropped and ends when the
 * buffer is down to three quarters: a producer that drains a batch at a time
 * would otherwise start and end one per batch. */
static size_t low_water(const sc_buffer *b) { return b->cap - b->cap / 4; }

/* Under the lock: the drops of the episode that just ended, or 0. */
static uint64_t episode_end(sc_buffer *b) {
    if (!b->full || b->count > low_water(b)) return 0;
    uint64_t n = b->episode_drops;
    b->full = false;
    b->episode_drops = 0;
    return n;
}

static void log_episode_end(uint64_t dropped) {
    if (dropped)
        TLOG(TLOG_WARN, "overflow_end", TLOG_S("msg", "buffer has room again"), TLOG_I("dropped", dropped),
             TLOG_I("dropped_total", atomic_load(&sc_st.dropped_overflow)));
}

bool sc_buffer_push(sc_buffer *b, char *data) {
    pthread_mutex_lock(&b->mu);
    if (b->count == b->cap) {
        bool first = !b->full;
        int64_t now = tlog_mono_ms();
        bool remind = !first && now - b->last_overflow_log >= 10000;
        if (first || remind) b->last_overflow_log = now;
        b->full = true;
        uint64_t episode = ++b->episode_drops;
        pthread_mutex_unlock(&b->mu);
        free(data);
        uint64_t total = atomic_fetch_add(&sc_st.dropped_overflow, 1) + 1;
        /* a line when an overflow starts, every 10 s while it lasts, and when
         * it ends (with its count), plus the totals in every stats line:
         * never silent, and never a line per message */
        if (first)
            TLOG(TLOG_WARN, "overflow", TLOG_S("msg", "buffer full: dropping new messages until Redis catches up"),
                 TLOG_I("buffer", b->cap), TLOG_I("dropped_total", total));
        else if (remind)
            TLOG(TLOG_WARN, "overflow_continues", TLOG_S("msg", "buffer still full: new messages are dropped"),
                 TLOG_I("dropped", episode), TLOG_I("dropped_total", total));
        return false;
    }
    b->ring[(b->head + b->count) % b->cap] = (sc_entry){data, ++b->next_serial, false};
    b->count++;
    uint64_t ended = episode_end(b);
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    log_episode_end(ended);
    return true;
}

static void deadline(struct timespec *ts, int64_t ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

size_t sc_buffer_peek(sc_buffer *b, sc_entry **out, size_t max, int64_t wait_ms) {
    struct timespec until;
    deadline(&until, wait_ms);
    pthread_mutex_lock(&b->mu);
    while (!b->count && !b->closed && !b->abandon)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT) break;
    size_t n = b->abandon ? 0 : b->count < max ? b->count : max;
    /* the socket thread only writes past head + count, so these slots stay
     * put after the lock is released */
    for (size_t i = 0; i < n; i++) out[i] = &b->ring[(b->head + i) % b->cap];
    pthread_mutex_unlock(&b->mu);
    return n;
}

void sc_buffer_pop(sc_buffer *b, size_t n) {
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < n && b->count; i++) {
        free(b->ring[b->head].data);
        b->ring[b->head].data = NULL;
        b->head = (b->head + 1) % b->cap;
        b->count--;
    }
    uint64_t ended = episode_end(b);
    pthread_mutex_unlock(&b->mu);
    log_episode_end(ended);
}

bool sc_buffer_sleep(sc_buffer *b, int64_t ms) {
    struct timespec until;
    deadline(&until, ms);
    pthread_mutex_lock(&b->mu);
    while (!b->abandon)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT) break;
    bool abandoned = b->abandon;
    pthread_mutex_unlock(&b->mu);
    return abandoned;
}

void sc_buffer_close(sc_buffer *b) {
    pthread_mutex_lock(&b->mu);
    b->closed = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void sc_buffer_abandon(sc_buffer *b) {
    pthread_mutex_lock(&b->mu);
    b->abandon = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

bool sc_buffer_finished(sc_buffer *b) {
    pthread_mutex_lock(&b->mu);
    bool f = b->abandon || (b->closed && !b->count);
    pthread_mutex_unlock(&b->mu);
    return f;
}

size_t sc_buffer_count(sc_buffer *b) {
    pthread_mutex_lock(&b->mu);
    size_t n = b->count;
    pthread_mutex_unlock(&b->mu);
    return n;
}
