/* SPDX-License-Identifier: MIT */
/* A WebSocket text message as the data of a game_data job. The message's
 * JSON is embedded as received, never parsed and printed again: cJSON would
 * turn 1.950 into 1.95 and 12345678901234567890 into 1.2345678901234567e+19,
 * and a Node consumer must see what the provider sent. The result is checked
 * with the same parser (and options) as bullc's add, so what this file
 * accepts, bullc_queue_add_bulk accepts. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

char *sc_json_string(const char *s, size_t len) {
    /* worst case: every byte becomes \u00XX */
    char *out = malloc(len * 6 + 3), *p = out;
    if (!out) return NULL;
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            *p++ = '\\', *p++ = '"';
            break;
        case '\\':
            *p++ = '\\', *p++ = '\\';
            break;
        case '\n':
            *p++ = '\\', *p++ = 'n';
            break;
        case '\r':
            *p++ = '\\', *p++ = 'r';
            break;
        case '\t':
            *p++ = '\\', *p++ = 't';
            break;
        case '\b':
            *p++ = '\\', *p++ = 'b';
            break;
        case '\f':
            *p++ = '\\', *p++ = 'f';
            break;
        default:
            if (c < 0x20) {
                static const char hex[] = "0123456789abcdef";
                memcpy(p, "\\u00", 4);
                p[4] = hex[c >> 4];
                p[5] = hex[c & 15];
                p += 6;
            } else {
                /* bytes >= 0x80 go through as they are: the frame was UTF-8 */
                *p++ = (char)c;
            }
        }
    }
    *p++ = '"';
    *p = 0;
    return out;
}

/* `{"provider":P,"data":` D `,"timestamp":T` — without the closing brace,
 * so that messageType can be appended once D is known to be JSON. */
static char *wrap(const char *provider_json, const char *d, size_t dlen, int64_t ts_ms, size_t *len_out) {
    static const char a[] = "{\"provider\":", b[] = ",\"data\":", c[] = ",\"timestamp\":";
    char ts[32];
    int tslen = snprintf(ts, sizeof ts, "%lld", (long long)ts_ms);
    size_t plen = strlen(provider_json);
    size_t len = sizeof a - 1 + plen + sizeof b - 1 + dlen + sizeof c - 1 + (size_t)tslen;
    /* room for the messageType the caller appends */
    char *out = malloc(len + 1);
    if (!out) return NULL;
    char *p = out;
    memcpy(p, a, sizeof a - 1), p += sizeof a - 1;
    memcpy(p, provider_json, plen), p += plen;
    memcpy(p, b, sizeof b - 1), p += sizeof b - 1;
    memcpy(p, d, dlen), p += dlen;
    memcpy(p, c, sizeof c - 1), p += sizeof c - 1;
    memcpy(p, ts, (size_t)tslen), p += tslen;
    *p = 0;
    *len_out = len;
    return out;
}

static char *finish(char *w, size_t wlen, const char *type_json) {
    static const char k[] = ",\"messageType\":";
    size_t tlen = strlen(type_json);
    char *out = realloc(w, wlen + sizeof k - 1 + tlen + 2);
    if (!out) {
        free(w);
        return NULL;
    }
    memcpy(out + wlen, k, sizeof k - 1);
    memcpy(out + wlen + sizeof k - 1, type_json, tlen);
    memcpy(out + wlen + sizeof k - 1 + tlen, "}", 2);
    return out;
}

/* The message's type: the string value of `field` in a JSON object. */
static char *type_of(const cJSON *msg, const char *field) {
    const cJSON *t = cJSON_IsObject(msg) ? cJSON_GetObjectItemCaseSensitive(msg, field) : NULL;
    if (!cJSON_IsString(t) || !t->valuestring) return NULL;
    return sc_json_string(t->valuestring, strlen(t->valuestring));
}

/* True when bullc's add will accept `w` + "}" as data: parsed as bullc
 * parses it (cJSON, nothing but whitespace after the value). This catches
 * a message nested as deep as cJSON allows, which the wrapping pushes over. */
static bool accepted(const char *w, size_t wlen) {
    char *probe = malloc(wlen + 2);
    if (!probe) return false;
    memcpy(probe, w, wlen);
    memcpy(probe + wlen, "}", 2);
    cJSON *doc = cJSON_ParseWithOpts(probe, NULL, 1);
    free(probe);
    cJSON_Delete(doc);
    return doc != NULL;
}

char *sc_message_to_data(const char *provider_json, const char *type_field, const char *msg, size_t len,
                         int64_t ts_ms) {
    size_t wlen;
    char *w = NULL;
    /* The message alone must be one JSON value (a NUL byte cannot be in
     * JSON, and would cut the text short): checking only the wrapped text
     * would let `1,"timestamp":0` through as two members. */
    cJSON *doc = memchr(msg, 0, len) ? NULL : cJSON_ParseWithOpts(msg, NULL, 1);
    if (doc) {
        char *type = type_of(doc, type_field);
        cJSON_Delete(doc);
        w = wrap(provider_json, msg, len, ts_ms, &wlen);
        if (w && accepted(w, wlen)) {
            char *out = finish(w, wlen, type ? type : "\"game_data\"");
            free(type);
            return out;
        }
        free(type);
        free(w);
    }
    char *s = sc_json_string(msg, len);
    if (!s) return NULL;
    w = wrap(provider_json, s, strlen(s), ts_ms, &wlen);
    free(s);
    return w ? finish(w, wlen, "\"game_data\"") : NULL;
}
