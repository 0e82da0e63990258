/* SPDX-License-Identifier: MIT */
/* The programs' --bullmq-version / BULLC_BULLMQ_VERSION / bullmqVersion
 * values, read alike by bullc, bullc-worker and bullc-socket-client. */
#ifndef BULLC_TOOLS_BULLMQ_VERSION_H
#define BULLC_TOOLS_BULLMQ_VERSION_H

#include <string.h>

/* "5" or "6": that major; "auto": 0 (the queue's meta.version, else 6);
 * anything else: -1. */
static inline int bw_parse_bullmq_version(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "auto")) return 0;
    if (!strcmp(s, "5")) return 5;
    if (!strcmp(s, "6")) return 6;
    return -1;
}

#endif
