/* SPDX-License-Identifier: MIT */
/* PRIVATE: what worker_group.c (the lanes: connections, BZPOPMIN, the
 * waiting members) and worker_group_turns.c (the cap's turns and the first
 * stalled checks) call of each other. */
#ifndef BULLC_WORKER_GROUP_IMPL_H
#define BULLC_WORKER_GROUP_IMPL_H

#include "bullc-private.h"

/* The cap or the jobs in process changed: the members held back get the
 * free slots in turn, from the loop (never inside the caller). Loop thread. */
void bullc__group_slots_changed(bullc_worker_group *g);
/* `w` leaves the group: it is taken out of the cap's turns and of the
 * first stalled checks due. */
void bullc__group_turns_leave(bullc_worker_group *g, bullc_worker *w);

#endif
