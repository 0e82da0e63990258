/* SPDX-License-Identifier: MIT */
/* A worker group's turns: the process-wide cap (members held back by it get
 * the free slots in the order they asked) and the members' first stalled
 * checks (sent a few a millisecond, in the order the members came ready).
 * Both keep members in a FIFO ring; the lanes and their BZPOPMIN are
 * worker_group.c's. */
#include <stdlib.h>

#include "bullc-private.h"
#include "worker_group_impl.h"

/* ---- rings of members (the cap's turns, the first stalled checks) -------------- */

/* Appends `w`; false when out of memory. */
static bool wring_push(bullc__wring *r, bullc_worker *w) {
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        bullc_worker **grown = malloc((size_t)cap * sizeof(bullc_worker *));
        if (!grown) return false;
        for (int i = 0; i < r->n; i++) grown[i] = r->at[(r->head + i) % r->cap];
        free(r->at);
        r->at = grown, r->cap = cap, r->head = 0;
    }
    r->at[(r->head + r->n++) % r->cap] = w;
    return true;
}

/* The oldest (NULL: one that left); the ring must not be empty. */
static bullc_worker *wring_pop(bullc__wring *r) {
    bullc_worker *w = r->at[r->head];
    r->head = (r->head + 1) % r->cap;
    r->n--;
    return w;
}

static void wring_forget(bullc__wring *r, const bullc_worker *w) {
    for (int i = 0; i < r->n; i++)
        if (r->at[(r->head + i) % r->cap] == w) r->at[(r->head + i) % r->cap] = NULL;
}

/* ---- the process-wide cap ------------------------------------------------------ */

static bool cap_reached(const bullc_worker_group *g) {
    return g->max_active && g->active + g->fetching >= g->max_active;
}

bool bullc__group_full(bullc_worker_group *g, bullc_worker *w) {
    /* a free slot goes to the member whose turn it is */
    if (!cap_reached(g) && (!g->want.n || w == g->granted)) return false;
    if (w->g_wanting) return true;
    if (!wring_push(&g->want, w)) return true; /* it fetches again when one of its own jobs ends */
    w->g_wanting = true;
    bullc__group_slots_changed(g);
    return true;
}

bool bullc__group_contended(const bullc_worker_group *g) { return g->want.n > 0; }

static void slot_cb(uv_timer_t *t) {
    bullc_worker_group *g = t->data;
    /* in turn: each member held back gets the next free slot */
    while (g->want.n && !cap_reached(g)) {
        bullc_worker *w = wring_pop(&g->want);
        if (!w) continue; /* it left the group */
        w->g_wanting = false;
        g->granted = w;
        bullc__worker_pump(w);
        g->granted = NULL;
        if (w->g_wanting) break; /* held back again */
    }
}

void bullc__group_slots_changed(bullc_worker_group *g) {
    /* pumped from the loop, never from inside a member's finish */
    if (g->want.n && !cap_reached(g) && !g->closing && !uv_is_active((uv_handle_t *)&g->slot_timer))
        uv_timer_start(&g->slot_timer, slot_cb, 0, 0);
}

void bullc__group_slot_taken(bullc_worker_group *g) { g->active++; }

void bullc__group_slot_freed(bullc_worker_group *g) {
    g->active--;
    bullc__group_slots_changed(g);
}

void bullc__group_fetch(bullc_worker_group *g, int delta) {
    g->fetching += delta;
    if (delta < 0) bullc__group_slots_changed(g);
}

/* ---- the members' first stalled checks ---------------------------------------- */

/* A member's first stalled check goes out once it is ready (as a Worker of
 * Node's checks at start), and the later ones every interval from there.
 * Sent all at once, 5,000 queues' first checks held Redis for a tenth of a
 * second (and every job added meanwhile); spread one a millisecond, the last
 * queue's came 5 s after its start. Sent STALLED_BATCH per tick: 5,000
 * queues' within about 1.5 s of their start. A tick that comes late (a busy loop) sends the
 * batches it missed, up to STALLED_CATCH_UP of them: the pace holds on a
 * loaded machine, and Redis never runs more than a few tens in a row (about
 * 20 us each on an empty queue). */
#define STALLED_BATCH 5
#define STALLED_TICK_MS 1
#define STALLED_CATCH_UP 4

static void stalled_cb(uv_timer_t *t) {
    bullc_worker_group *g = t->data;
    uint64_t now = uv_now(g->loop), ticks = (now - g->stalled_at) / STALLED_TICK_MS;
    g->stalled_at = now;
    int batch = STALLED_BATCH * (int)(ticks < 1 ? 1 : ticks > STALLED_CATCH_UP ? STALLED_CATCH_UP : ticks);
    for (int sent = 0; g->stalled.n && sent < batch;) {
        bullc_worker *w = wring_pop(&g->stalled);
        if (!w) continue; /* it left */
        w->g_stalled_due = false;
        sent += bullc__stalled_first(w);
    }
    if (!g->stalled.n) uv_timer_stop(t);
}

void bullc__group_stalled_due(bullc_worker_group *g, bullc_worker *w) {
    if (g->closing) return;
    if (!wring_push(&g->stalled, w)) {
        bullc__stalled_first(w); /* out of memory: sent now rather than never */
        return;
    }
    w->g_stalled_due = true;
    if (!uv_is_active((uv_handle_t *)&g->stalled_timer)) {
        g->stalled_at = uv_now(g->loop);
        uv_timer_start(&g->stalled_timer, stalled_cb, 0, STALLED_TICK_MS);
    }
}

void bullc__group_turns_leave(bullc_worker_group *g, bullc_worker *w) {
    if (w->g_wanting) wring_forget(&g->want, w);
    w->g_wanting = false;
    if (w->g_stalled_due) wring_forget(&g->stalled, w);
    w->g_stalled_due = false;
}
