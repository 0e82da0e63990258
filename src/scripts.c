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

size_t bullc_script_count(void) { return bullc__scripts_count; }

int bullc_script_info(size_t i, const char **id, int *numkeys, const char **sha1, size_t *size) {
    if (i >= bullc__scripts_count) return BULLC_EINVAL;
    if (id) *id = bullc__scripts[i].id;
    if (numkeys) *numkeys = bullc__scripts[i].numkeys;
    if (sha1) *sha1 = bullc__scripts[i].sha1;
    if (size) *size = bullc__scripts[i].len;
    return 0;
}

const char *bullc_script_text(size_t i) { return i < bullc__scripts_count ? bullc__scripts[i].text : NULL; }
