/* SPDX-License-Identifier: MIT */
/* The programs' --bullmq-version / BULLC_BULLMQ_VERSION / bullmqVersion
 * values, read alike by bullc, bullc-worker and bullc-socket-client, and
 * the --version line they all print. */
#ifndef BULLC_TOOLS_BULLMQ_VERSION_H
#define BULLC_TOOLS_BULLMQ_VERSION_H

#include <bullc/bullc.h>
#include <stdio.h>
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

/* "PROGRAM 0.x.y (BullMQ 6.7.0 and 5.81.5)": the library's version and the
 * BullMQ versions whose scripts it carries. */
static inline void bw_print_version(const char *program) {
    printf("%s %s (BullMQ %s and %s)\n", program, bullc_version(), bullc_bullmq_version(), BULLC_BULLMQ5_VERSION);
}

#endif
