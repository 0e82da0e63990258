/* SPDX-License-Identifier: MIT */
/* Where the exec-persistent helpers (bullc_processor.py/.js/.sh) are, told
 * to the processors bullc-worker starts. They are installed beside the
 * program (BULLC_HELPERS_REL from its bin directory, the same layout in the
 * build tree), so the place is found from the running binary, never from a
 * prefix compiled in: an installed tree moved elsewhere keeps working. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bw.h"

#ifndef BULLC_HELPERS_REL
#define BULLC_HELPERS_REL "../share/bullc/helpers"
#endif

/* VAR=old:dir (or VAR=dir): the user's own entries come first. */
static int append_path(const char *var, const char *dir) {
    const char *old = getenv(var);
    if (!old || !*old) return setenv(var, dir, 1);
    size_t len = strlen(old) + strlen(dir) + 2;
    char *v = malloc(len);
    if (!v) return -1;
    snprintf(v, len, "%s:%s", old, dir);
    int rc = setenv(var, v, 1);
    free(v);
    return rc;
}

int bw_helpers_export(void) {
    const char *given = getenv("BULLC_HELPERS");
    char dir[PATH_MAX];
    if (given && *given) {
        snprintf(dir, sizeof dir, "%s", given);
    } else {
        char exe[PATH_MAX], joined[PATH_MAX + sizeof BULLC_HELPERS_REL + 1];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return 0; /* nowhere to look from: processors name paths themselves */
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (!slash) return 0;
        *slash = '\0';
        snprintf(joined, sizeof joined, "%s/%s", exe, BULLC_HELPERS_REL);
        struct stat st;
        if (!realpath(joined, dir) || stat(dir, &st) || !S_ISDIR(st.st_mode)) return 0;
        if (setenv("BULLC_HELPERS", dir, 1)) return -1;
    }
    /* `import bullc_processor` and require('bullc_processor') then work as
     * they are written in docs/worker.md, from any working directory */
    return append_path("PYTHONPATH", dir) || append_path("NODE_PATH", dir) ? -1 : 0;
}
