/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

int bullc__err(bullc_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

void bullc__err_prefix(bullc_error *err, const char *fmt, ...) {
    if (!err) return;
    char head[128], old[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    snprintf(err->message, sizeof err->message, "%s%s", head, old);
}

static const struct {
    int code;
    const char *name;
    const char *text;
} errors[] = {
    {BULLC_OK, "BULLC_OK", "success"},
    {BULLC_EINVAL, "BULLC_EINVAL", "invalid argument"},
    {BULLC_ENOMEM, "BULLC_ENOMEM", "out of memory"},
    {BULLC_ECONN, "BULLC_ECONN", "cannot connect to Redis"},
    {BULLC_ETIMEDOUT, "BULLC_ETIMEDOUT", "Redis did not answer in time"},
    {BULLC_EAUTH, "BULLC_EAUTH", "Redis refused authentication or database selection"},
    {BULLC_EREDIS, "BULLC_EREDIS", "Redis replied with an error"},
    {BULLC_EPROTO, "BULLC_EPROTO", "unexpected reply from Redis"},
    {BULLC_ENOTFOUND, "BULLC_ENOTFOUND", "job not found"},
    {BULLC_ELOCK, "BULLC_ELOCK", "job lock missing or held by another worker"},
    {BULLC_ESTATE, "BULLC_ESTATE", "job not in the expected state"},
    {BULLC_ECLOSED, "BULLC_ECLOSED", "handle closed"},
    {BULLC_ESYS, "BULLC_ESYS", "system call failed"},
    {BULLC_EVERSION, "BULLC_EVERSION", "queue written by another BullMQ major"},
};

const char *bullc_strerror(int code) {
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == code) return errors[i].text;
    return "unknown error";
}

const char *bullc_err_name(int code) {
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == code) return errors[i].name;
    return "BULLC_EUNKNOWN";
}

void bullc_free(void *ptr) { free(ptr); }

const char *bullc_version(void) { return BULLC_VERSION_STRING; }

const char *bullc_bullmq_version(void) { return BULLC_BULLMQ_VERSION; }
