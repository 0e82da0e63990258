/* SPDX-License-Identifier: MIT */
/* libFuzzer target: Redis URL parsing and masking. Whatever the input, no
 * crash, no leak, and the description never depends on the password. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *url = malloc(size + 1);
    memcpy(url, data, size);
    url[size] = 0;
    bullc_redis_opts *o;
    if (bullc_redis_opts_new(&o)) abort();
    bullc_error err;
    if (bullc_redis_opts_parse_url(o, url, &err) == 0) {
        char buf[512];
        bullc_redis_opts_describe(o, buf, sizeof buf);
        /* no leak: the description does not depend on the password */
        if (bullc_redis_opts_password(o)) {
            char other[512];
            bullc_redis_opts_set_auth(o, bullc_redis_opts_user(o), "a-different-password");
            bullc_redis_opts_describe(o, other, sizeof other);
            if (strcmp(buf, other)) abort(); /* leaked */
        }
    }
    bullc_redis_opts_free(o);
    free(url);
    return 0;
}
