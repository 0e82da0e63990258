/* SPDX-License-Identifier: MIT */
/* libFuzzer target: job options and data as a producer receives them. Input:
 * "<options JSON>\n<data JSON>". Validation either fails cleanly or yields
 * packed options that decode back (msgpack Lua can read). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = 0;
    char *nl = strchr(in, '\n');
    const char *job_data = NULL;
    if (nl) {
        *nl = 0;
        job_data = nl + 1;
    }
    bullc_job_opts *o;
    if (bullc_job_opts_new(&o)) abort();
    bullc_error err;
    bullc_job_opts_merge_json(o, in, &err);
    bullc__prepared_job pj;
    if (bullc__job_prepare_named(&pj, "fuzz", job_data, NULL, o, &err) == 0) {
        cJSON *back = bullc__unpack_to_json(pj.packed_opts, sdslen(pj.packed_opts));
        if (!back) abort(); /* packed options Lua could not read */
        cJSON_Delete(back);
        bullc__job_prepared_free(&pj);
    }
    bullc_job_opts_free(o);
    free(in);
    return 0;
}
