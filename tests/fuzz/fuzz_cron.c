/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the cron parser and search (cron_parse.c, cron.c) on any
 * bytes as a pattern, in a zone with DST and in UTC. ASan/UBSan catch the
 * memory and arithmetic faults; the properties checked are the contract's:
 * 0, BULLC_EINVAL or BULLC_ENOTFOUND, a message on failure, and successive
 * fire times strictly increasing (luxon only moves forward). Input: a zone
 * selector byte, then the pattern. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bullc/bullc.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const zones[] = {"UTC", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"};
    if (size < 1 || size > 2048) return 0;
    char *pattern = malloc(size);
    memcpy(pattern, data + 1, size - 1);
    pattern[size - 1] = '\0';
    bullc_cron *cr;
    bullc_error err = {0};
    int rc = bullc_cron_new(&cr, pattern, zones[data[0] % 4], "fuzz", &err);
    if (rc != 0) {
        if (rc != BULLC_EINVAL || !err.message[0]) abort();
        free(pattern);
        return 0;
    }
    /* around New York's 2024 spring-forward change, from a sub-second instant */
    bullc_cron_reset(cr, 1710054000123 - (int64_t)(data[0] >> 2) * 3600000);
    int64_t prev = INT64_MIN, t;
    for (int i = 0; i < 3 && (rc = bullc_cron_next_time(cr, &t, &err)) == 0; i++) {
        if (t <= prev) abort();
        prev = t;
    }
    if (rc != 0 && rc != BULLC_ENOTFOUND) abort();
    bullc_cron_free(cr);
    free(pattern);
    return 0;
}
