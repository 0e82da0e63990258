/* SPDX-License-Identifier: MIT */
/* Lookup in the table of BullMQ's scripts generated at build time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

const bullc__script *bullc__script_find(const bullc__script *table, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(table[i].name, name)) return &table[i];
    /* Only ever called with literal names: a miss means the table does not
     * come from the pinned BullMQ release. */
    fprintf(stderr, "bullc: BullMQ script '%s' is not embedded\n", name);
    abort();
}

/* The table of major 5 or 6, NULL for another. */
static const bullc__script *table_of(int major, size_t *n) {
    *n = major == 6 ? bullc__scripts_count : major == 5 ? bullc__scripts5_count : 0;
    return major == 6 ? bullc__scripts : major == 5 ? bullc__scripts5 : NULL;
}

size_t bullc_script_count_of(int major) {
    size_t n;
    table_of(major, &n);
    return n;
}

int bullc_script_info_of(int major, size_t i, const char **id, int *numkeys, const char **sha1, size_t *size) {
    size_t n;
    const bullc__script *t = table_of(major, &n);
    if (i >= n) return BULLC_EINVAL;
    if (id) *id = t[i].id;
    if (numkeys) *numkeys = t[i].numkeys;
    if (sha1) *sha1 = t[i].sha1;
    if (size) *size = t[i].len;
    return 0;
}

size_t bullc_script_count(void) { return bullc_script_count_of(6); }

int bullc_script_info(size_t i, const char **id, int *numkeys, const char **sha1, size_t *size) {
    return bullc_script_info_of(6, i, id, numkeys, sha1, size);
}

const char *bullc_script_text(size_t i) { return i < bullc__scripts_count ? bullc__scripts[i].text : NULL; }
