/* SPDX-License-Identifier: MIT */
/* The bounded FIFO between the socket and Redis. A ring of job data texts:
 * the socket side appends at the tail, the producer adds batches from the
 * head and removes them only once Redis took them, so the batch being added
 * still counts against the size. When the ring is full the NEW message is
 * dropped: what is already buffered is a gap-free run of the feed that will
 * be added in order, and the entries at the head may be in the middle of
 * being added (they cannot be taken back). Both sides run on the loop's
 * thread: no lock. */
#include <stdlib.h>
#include <string.h>

#include "sc.h"

int sc_buffer_init(sc_buffer *b, size_t cap) {
    memset(b, 0, sizeof *b);
    if (!(b->ring = calloc(cap, sizeof *b->ring))) return -1;
    b->cap = cap;
    return 0;
}

void sc_buffer_destroy(sc_buffer *b) {
    for (size_t i = 0; i < b->count; i++) free(b->ring[(b->head + i) % b->cap].data);
    free(b->ring);
    memset(b, 0, sizeof *b);
}

/* An overflow episode starts when a message is dropped and ends when the
 * buffer is down to three quarters: a producer that drains a batch at a time
 * would otherwise start and end one per batch. */
static size_t low_water(const sc_buffer *b) { return b->cap - b->cap / 4; }

/* The drops of the episode that just ended, or 0. */
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
    if (b->count == b->cap) {
        bool first = !b->full;
        int64_t now = tlog_mono_ms();
        bool remind = !first && now - b->last_overflow_log >= 10000;
        if (first || remind) b->last_overflow_log = now;
        b->full = true;
        uint64_t episode = ++b->episode_drops;
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
    log_episode_end(episode_end(b));
    if (b->on_data) b->on_data(b->on_data_arg);
    return true;
}

size_t sc_buffer_peek(sc_buffer *b, sc_entry **out, size_t max) {
    size_t n = b->abandon ? 0 : b->count < max ? b->count : max;
    /* the socket side only writes past head + count: these slots stay put
     * until sc_buffer_pop */
    for (size_t i = 0; i < n; i++) out[i] = &b->ring[(b->head + i) % b->cap];
    return n;
}

void sc_buffer_pop(sc_buffer *b, size_t n) {
    for (size_t i = 0; i < n && b->count; i++) {
        free(b->ring[b->head].data);
        b->ring[b->head].data = NULL;
        b->head = (b->head + 1) % b->cap;
        b->count--;
    }
    log_episode_end(episode_end(b));
}

void sc_buffer_close(sc_buffer *b) {
    b->closed = true;
    if (b->on_data) b->on_data(b->on_data_arg);
}

void sc_buffer_abandon(sc_buffer *b) { b->abandon = true; }

bool sc_buffer_finished(const sc_buffer *b) { return b->abandon || (b->closed && !b->count); }

size_t sc_buffer_count(const sc_buffer *b) { return b->count; }
