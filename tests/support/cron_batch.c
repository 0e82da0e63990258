/* SPDX-License-Identifier: MIT */
/* bullc-test-cron: many cron cases per process for the differential test
 * (compat-tests/test/cron-diff.test.js). Reads lines
 *   PATTERN<TAB>ZONE<TAB>FROM_MS<TAB>COUNT
 * (ZONE "-" for none; backslash escapes \\t, \\n and \\\\ in PATTERN) and prints one line each: "ok T1 T2 ..." (up to
 * COUNT successive fire times, fewer when the search gives up), or "invalid". A line "@offsets<TAB>ZONE<TAB>MS MS ..."
 * prints the zone's UTC offsets in seconds at those instants (the test compares the machine's tzdata with Node's before
 * comparing fire times). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bullc/bullc.h>

#include "tz.h"

/* Undoes the test's escapes of tabs, newlines and backslashes, in place. */
static void unescape(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *o++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

int main(void) {
    static char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        char *f[4];
        int n = 0;
        for (char *p = line; n < 4; n++) {
            f[n] = p;
            char *tab = strchr(p, '\t');
            if (!tab) {
                n++;
                break;
            }
            *tab = 0;
            p = tab + 1;
        }
        if (n < 3 || (n != 4 && strcmp(f[0], "@offsets") != 0)) {
            fprintf(stderr, "bad input line\n");
            return 2;
        }
        bullc_cron *cr;
        bullc_error err = {0};
        if (strcmp(f[0], "@offsets") == 0) {
            bullc__tz *tz;
            if (bullc__tz_open(&tz, f[1], &err) != 0) {
                printf("invalid\n");
                continue;
            }
            fputs("ok", stdout);
            for (char *p = f[2], *e; *p; p = e) {
                long long ms = strtoll(p, &e, 10);
                if (e == p) break;
                printf(" %d", (int)bullc__tz_offset(tz, ms));
            }
            putchar('\n');
            bullc__tz_free(tz);
            continue;
        }
        const char *tz = strcmp(f[1], "-") == 0 ? NULL : f[1];
        unescape(f[0]);
        if (bullc_cron_new(&cr, f[0], tz, "diff", &err) != 0) {
            printf("invalid\n");
            continue;
        }
        bullc_cron_reset(cr, strtoll(f[2], NULL, 10));
        fputs("ok", stdout);
        for (long i = 0, count = strtol(f[3], NULL, 10); i < count; i++) {
            int64_t t;
            if (bullc_cron_next_time(cr, &t, &err) != 0) break;
            printf(" %lld", (long long)t);
        }
        putchar('\n');
        bullc_cron_free(cr);
    }
    return 0;
}
