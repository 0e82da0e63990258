/* SPDX-License-Identifier: MIT */
/* bullc-test-protocol PREFIX QUEUE JOB_ID STATE [MAJOR]: prints bullc's protocol
 * tables (src/protocol.c) as JSON, every key made concrete for that queue,
 * job and state, for compat-tests/test/protocol.test.js to compare with what
 * BullMQ's own classes send; MAJOR 5 gives the 5.x protocol's. Test-only: it reads bullc's private tables. */
#include <stdio.h>
#include <stdlib.h>

#include "bullc-private.h"

static cJSON *call_json(const bullc__protocol *p, bullc__call_id c, const bullc__keys *ks, const char *job, int state) {
    const bullc__call *d = bullc__call_of(p, c);
    const bullc__script *s = bullc__call_script(p, c);
    sds logs = bullc__job_key(ks, job, BULLC__K_JOB_LOGS), lock = bullc__job_key(ks, job, BULLC__K_JOB_LOCK);
    sds jk = bullc__job_key(ks, job, BULLC__K_JOB), deps = bullc__job_key(ks, job, BULLC__K_JOB_DEPS);
    sds unsuccessful = bullc__job_key(ks, job, BULLC__K_JOB_UNSUCCESSFUL);
    sds processed = bullc__job_key(ks, job, BULLC__K_JOB_PROCESSED);
    sds dedup = bullc__job_key(ks, job, BULLC__K_DEDUP_ID); /* the job id as the deduplication id */
    const bullc__call_ctx x = {state, jk, logs, lock, deps, unsuccessful, processed, dedup};
    const char *argv[BULLC__CALL_MAX_KEYS];
    size_t lens[BULLC__CALL_MAX_KEYS];
    int n = bullc__call_keys(p, c, ks, &x, argv, lens);
    cJSON *o = cJSON_CreateObject(), *keys = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "script", d->script);
    cJSON_AddStringToObject(o, "id", s->id);
    cJSON_AddStringToObject(o, "sha1", s->sha1);
    cJSON_AddNumberToObject(o, "numkeys", s->numkeys);
    cJSON_AddNumberToObject(o, "nargs", d->nargs);
    cJSON_AddStringToObject(o, "args", d->args);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(keys, cJSON_CreateString(argv[i]));
    cJSON_AddItemToObject(o, "keys", keys);
    sdsfree(logs), sdsfree(lock), sdsfree(jk), sdsfree(deps), sdsfree(unsuccessful), sdsfree(processed), sdsfree(dedup);
    return o;
}

int main(int argc, char **argv) {
    const bullc__protocol *p = argc == 6 ? bullc__protocol_of(atoi(argv[5])) : &bullc__protocol_v6;
    if ((argc != 5 && argc != 6) || !p) {
        fprintf(stderr, "usage: %s PREFIX QUEUE JOB_ID STATE [5|6]\n", argv[0]);
        return 2;
    }
    const char *job = argv[3];
    int state = bullc__keys_state(argv[4]);
    bullc__keys ks;
    if (state < 0 || bullc__keys_init(&ks, argv[1], argv[2])) {
        fprintf(stderr, "%s: bad state or out of memory\n", argv[0]);
        return 2;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "major", p->major);
    cJSON_AddStringToObject(out, "version", p->version);
    cJSON_AddStringToObject(out, "metaVersion", p->meta_version);
    cJSON_AddNumberToObject(out, "addArgs", p->add_args);
    cJSON *keys = cJSON_AddObjectToObject(out, "keys");
    for (int k = 0; k < BULLC__K_N; k++) cJSON_AddStringToObject(keys, bullc__keys_suffix(k), ks.k[k]);
    cJSON *names = cJSON_AddArrayToObject(out, "queueKeysNames");
    for (int i = 0; bullc__queuekeys_names[i]; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(bullc__queuekeys_names[i]));
    cJSON *calls = cJSON_AddArrayToObject(out, "calls");
    for (int c = 0; c < BULLC__C_N; c++)
        if (bullc__call_script(p, c)) cJSON_AddItemToArray(calls, call_json(p, c, &ks, job, state));
    cJSON *opts = cJSON_AddObjectToObject(out, "optsDecodeMap");
    for (size_t i = 0; i < bullc__opt_names_count; i++)
        cJSON_AddStringToObject(opts, bullc__opt_names[i].short_name, bullc__opt_names[i].name);
    /* each code's message for this job, as command "cmd" from state "active" */
    cJSON *errors = cJSON_AddObjectToObject(out, "errors");
    for (int code = -12; code <= -1; code++) {
        bullc_error e;
        char k[8];
        snprintf(k, sizeof k, "%d", code);
        int rc = bullc__script_code_err(code, job, "cmd", "active", &e);
        cJSON *o = cJSON_AddObjectToObject(errors, k);
        cJSON_AddStringToObject(o, "message", e.message);
        cJSON_AddStringToObject(o, "code", bullc_err_name(rc));
    }
    char *s = cJSON_Print(out);
    puts(s);
    free(s);
    cJSON_Delete(out);
    bullc__keys_free(&ks);
    return 0;
}
