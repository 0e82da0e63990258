/* SPDX-License-Identifier: MIT */
/* A worker group lane's waiting members: a ring in the order they started
 * waiting (the BZPOPMIN's key order), two min-heaps on their wake-up times,
 * and a table of all of the lane's members by their queue's marker key. All
 * of it is kept so that a BZPOPMIN reply or a poll tick, a job's path with
 * thousands of queues a lane, never walks every member to find the one the
 * reply is for or those due. The BZPOPMIN itself is worker_group.c's. */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"
#include "worker_group_impl.h"

/* The waiting members are a ring in the order they started waiting (a
 * member's removal keeps the others' order, which is the rotation's, in
 * O(1): thousands of queues wait, and each fetch removes one). Each of them
 * is also in one of two min-heaps on g_poll_due, so that the members due are
 * found without a walk over all (a BZPOPMIN reply, a job's path, looks for
 * them): `due` holds those waiting without a delayed job (their drain-delay
 * polls), `delayed` those waiting for a delayed job's time. */
static void heap_set(bullc__wheap *h, int i, bullc_worker *w) {
    h->at[i] = w;
    w->g_due = i + 1;
}

static void heap_up(bullc__wheap *h, int i) {
    bullc_worker *w = h->at[i];
    while (i > 0 && h->at[(i - 1) / 2]->g_poll_due > w->g_poll_due) {
        heap_set(h, i, h->at[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(h, i, w);
}

static void heap_down(bullc__wheap *h, int i) {
    bullc_worker *w = h->at[i];
    for (int c; (c = 2 * i + 1) < h->n; i = c) {
        if (c + 1 < h->n && h->at[c + 1]->g_poll_due < h->at[c]->g_poll_due) c++;
        if (h->at[c]->g_poll_due >= w->g_poll_due) break;
        heap_set(h, i, h->at[c]);
    }
    heap_set(h, i, w);
}

/* Room for `n` members; false when out of memory. */
static bool heap_room(bullc__wheap *h, int n) {
    if (h->cap >= n) return true;
    int cap = h->cap ? h->cap * 2 : 64;
    while (cap < n) cap *= 2;
    bullc_worker **grown = realloc(h->at, (size_t)cap * sizeof(bullc_worker *));
    if (!grown) return false;
    h->at = grown, h->cap = cap;
    return true;
}

static void heap_remove(bullc__wheap *h, bullc_worker *w) {
    int i = w->g_due - 1;
    w->g_due = 0;
    bullc_worker *last = h->at[--h->n];
    if (i == h->n) return;
    heap_set(h, i, last);
    heap_down(h, i);
    heap_up(h, last->g_due - 1);
}

/* Puts `w` in the heap it belongs in (none when not waiting), takes it out
 * of the other, or moves it in its own (its time changed). */
void bullc__lane_due_sync(bullc__lane *l, bullc_worker *w) {
    bullc__wheap *to = !w->g_idle ? NULL : w->block_until ? &l->delayed : &l->due;
    bullc__wheap *from = !w->g_due ? NULL : w->g_delayed ? &l->delayed : &l->due;
    if (from && from != to) heap_remove(from, w);
    if (to && to == from) {
        heap_up(to, w->g_due - 1);
        heap_down(to, w->g_due - 1);
        return;
    }
    if (!to) return;
    if (to->n == to->cap) {
        /* cannot be: bullc__group_lane makes room in both heaps for one more
         * member before each joins, and a member is in one of them once at
         * most (g_due). Said once per lane if it ever is, and the heap grown
         * here: a member in neither would not poll until a marker came. */
        if (!l->said_heap_full)
            bullc__worker_error(w, BULLC_ESTATE,
                                "worker group: internal error: no room in the lane's heap of "
                                "waiting members (%d of %d members)",
                                to->n, l->nmembers);
        l->said_heap_full = true;
        if (!heap_room(to, to->n + 1)) return;
    }
    w->g_delayed = to == &l->delayed;
    heap_set(to, to->n++, w);
    heap_up(to, to->n - 1);
}

/* The members by their queue's marker key, to find the one a BZPOPMIN
 * reply names without comparing every key it named: chained through
 * g_mnext, in a table of a power of two buckets, at least one a member. */
static size_t marker_bucket(const bullc__lane *l, const char *key, size_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return (size_t)h & (size_t)(l->nmk - 1);
}

void bullc__lane_marker_link(bullc__lane *l, bullc_worker *w) {
    const sds mk = w->keys.k[BULLC__K_MARKER];
    bullc_worker **b = &l->mk[marker_bucket(l, mk, sdslen(mk))];
    w->g_mnext = *b;
    *b = w;
}

void bullc__lane_marker_unlink(bullc__lane *l, bullc_worker *w) {
    const sds mk = w->keys.k[BULLC__K_MARKER];
    if (!l->nmk) return;
    for (bullc_worker **p = &l->mk[marker_bucket(l, mk, sdslen(mk))]; *p; p = &(*p)->g_mnext)
        if (*p == w) {
            *p = w->g_mnext;
            break;
        }
    w->g_mnext = NULL;
}

/* Room for `n` members; false when out of memory. */
static bool marker_room(bullc__lane *l, int n) {
    if (l->nmk >= n) return true;
    int nmk = l->nmk ? l->nmk : 64;
    while (nmk < n) nmk *= 2;
    bullc_worker **mk = calloc((size_t)nmk, sizeof(bullc_worker *));
    if (!mk) return false;
    free(l->mk);
    l->mk = mk, l->nmk = nmk;
    for (bullc_worker *w = l->members; w; w = w->gnext) bullc__lane_marker_link(l, w);
    return true;
}

/* The member the BZPOPMIN in flight named `key` for: the first named, as
 * Redis takes the keys in order (members of one queue share its key). */
bullc_worker *bullc__lane_marker_member(const bullc__lane *l, const char *key, size_t len) {
    bullc_worker *hit = NULL;
    if (!l->nmk) return NULL;
    for (bullc_worker *w = l->mk[marker_bucket(l, key, len)]; w; w = w->g_mnext) {
        const sds mk = w->keys.k[BULLC__K_MARKER];
        if (w->g_snap >= 0 && (!hit || w->g_snap < hit->g_snap) && sdslen(mk) == len && !memcmp(mk, key, len)) hit = w;
    }
    return hit;
}

void bullc__lane_idle_remove(bullc__lane *l, bullc_worker *w) {
    if (!w->g_idle) return;
    bullc_worker *next = w->g_inext;
    if (--l->nidle == 0) {
        l->idle = l->rot = NULL;
    } else {
        w->g_iprev->g_inext = next;
        next->g_iprev = w->g_iprev;
        if (l->idle == w) l->idle = next;
        /* the rotation goes on from the member after it */
        if (l->rot == w) l->rot = next;
    }
    w->g_idle = false;
    w->g_inext = w->g_iprev = NULL;
    bullc__lane_due_sync(l, w);
}

void bullc__lane_idle_add(bullc__lane *l, bullc_worker *w) {
    /* the newest: just before the oldest in the ring */
    if (!l->idle) {
        l->idle = w->g_inext = w->g_iprev = w;
    } else {
        w->g_inext = l->idle;
        w->g_iprev = l->idle->g_iprev;
        w->g_iprev->g_inext = w;
        l->idle->g_iprev = w;
    }
    w->g_idle = true;
    l->nidle++;
    bullc__lane_due_sync(l, w);
}

bool bullc__lane_room(bullc__lane *l, int n) {
    return heap_room(&l->due, n) && heap_room(&l->delayed, n) && marker_room(l, n);
}
