/* SPDX-License-Identifier: MIT */
/* PRIVATE: what worker_group.c (the lanes: connections, BZPOPMIN),
 * worker_group_wait.c (a lane's waiting members) and worker_group_turns.c
 * (the cap's turns and the first stalled checks) call of each other. All on
 * the group's loop thread. */
#ifndef BULLC_WORKER_GROUP_IMPL_H
#define BULLC_WORKER_GROUP_IMPL_H

#include "bullc-private.h"

/* The cap or the jobs in process changed: the members held back get the
 * free slots in turn, from the loop (never inside the caller). Loop thread. */
void bullc__group_slots_changed(bullc_worker_group *g);
/* `w` leaves the group: it is taken out of the cap's turns and of the
 * first stalled checks due. */
void bullc__group_turns_leave(bullc_worker_group *g, bullc_worker *w);

/* ---- worker_group_wait.c ---- */
/* Room for `n` members in the lane's heaps and marker table (made before a
 * member joins, so that its join and waits cannot fail); false when out of
 * memory. */
bool bullc__lane_room(bullc__lane *l, int n);
/* `w` starts waiting (it must not be waiting): the newest in the ring, and in
 * the heap its g_poll_due and block_until call for. */
void bullc__lane_idle_add(bullc__lane *l, bullc_worker *w);
/* `w` stops waiting (nothing when it does not wait); the rotation goes on
 * from the member after it. */
void bullc__lane_idle_remove(bullc__lane *l, bullc_worker *w);
/* `w`'s g_poll_due, block_until or g_idle changed: puts it in the heap it
 * belongs in, or in none. */
void bullc__lane_due_sync(bullc__lane *l, bullc_worker *w);
/* A joining member into the marker table, a leaving one out of it. */
void bullc__lane_marker_link(bullc__lane *l, bullc_worker *w);
void bullc__lane_marker_unlink(bullc__lane *l, bullc_worker *w);
/* The member of the BZPOPMIN in flight (g_snap >= 0) whose queue's marker key
 * is `key`: the first named when two are of one queue, as Redis takes the keys
 * in order; NULL: none. */
bullc_worker *bullc__lane_marker_member(const bullc__lane *l, const char *key, size_t len);

#endif
