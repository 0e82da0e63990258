/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "bullc-private.h"

sds bullc__key(const char *base, const char *suffix) {
    sds k = sdsnew(base);
    return sdscat(k, suffix);
}

int bullc__validate_queue_name(const char *name, bullc_error *err) {
    if (!name || !*name) return bullc__err(err, BULLC_EINVAL, "queue name must not be empty");
    /* Node's Queue constructor throws on ':' because keys are split on it. */
    if (strchr(name, ':')) return bullc__err(err, BULLC_EINVAL, "queue name cannot contain ':' (\"%s\")", name);
    return 0;
}
