/* SPDX-License-Identifier: MIT */
/* The embedded BullMQ scripts, for diagnostics and compatibility checks. */
#ifndef BULLC_SCRIPTS_H
#define BULLC_SCRIPTS_H

#include <bullc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of embedded scripts (BullMQ's queue scripts, the relay ones aside). */
BULLC_EXPORT size_t bullc_script_count(void);

/* Describes script `index` (< bullc_script_count()): its file name as in
 * BullMQ ("moveToActive-11"), number of keys, SHA1 (40 hex digits) and size
 * in bytes. Pointers are static. Returns 0 or BULLC_EINVAL. */
BULLC_EXPORT int bullc_script_info(size_t index, const char **id, int *numkeys, const char **sha1, size_t *size);

/* The text of script `index`, NULL when out of range. Static. */
BULLC_EXPORT const char *bullc_script_text(size_t index);

/* The same for the scripts of BullMQ major 5 or 6 whose protocol bullc
 * speaks (docs/versions.md); bullc_script_count and bullc_script_info give
 * 6's. Another major: 0 scripts, BULLC_EINVAL. Pointers are static. */
BULLC_EXPORT size_t bullc_script_count_of(int major);
BULLC_EXPORT int bullc_script_info_of(int major, size_t index, const char **id, int *numkeys, const char **sha1,
                                      size_t *size);

#ifdef __cplusplus
}
#endif
#endif
