/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the job data scan (src/json_scan.c) at any depth. Input:
 * two bytes of depth (0 ... 65535 levels), then a text. The text is
 * wrapped in that many arrays (or objects, when the first byte is odd): the
 * scan must not crash or exhaust the stack, and a text without brackets,
 * wrapped, is JSON exactly when it is wrapped once (a JSON text, wrapped,
 * always is). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t depth = (size_t)data[0] << 8 | data[1];
    bool obj = data[0] & 1;
    const char *open = obj ? "{\"k\":" : "[", *close = obj ? "}" : "]";
    size_t ol = strlen(open), n = size - 2;
    char *inner = malloc(n + 1);
    memcpy(inner, data + 2, n);
    inner[n] = '\0';
    size_t total = depth * (ol + 1) + n;
    char *text = malloc(total + 1), *p = text;
    for (size_t i = 0; i < depth; i++, p += ol) memcpy(p, open, ol);
    memcpy(p, inner, n), p += n;
    for (size_t i = 0; i < depth; i++) *p++ = *close;
    *p = '\0';
    /* no NUL in the text: the scan's length and cJSON's strlen agree */
    if (!memchr(inner, '\0', n)) {
        bool inner_ok = bullc__json_strict(inner, n), wrapped_ok = bullc__json_strict(text, total);
        /* Depth must not change the verdict: N levels are JSON exactly when one
         * level is. One level is not simply "inner is JSON": "1,2" is no value
         * but [1,2] is an array, and a blank text is no value while [] is. */
        bool expect = inner_ok;
        if (depth > 0) {
            size_t one_len = ol + n + 1;
            char *one = malloc(one_len + 1);
            memcpy(one, open, ol);
            memcpy(one + ol, inner, n);
            memcpy(one + ol + n, close, 2);
            expect = bullc__json_strict(one, one_len);
            free(one);
            bool blank = strspn(inner, " \t\r\n") == n;
            if ((inner_ok || (blank && !obj)) && !expect) abort(); /* a value stays one in a container */
        }
        /* An inner text that closes and reopens a level ("1],[") is no
         * value one level down and a fine one deeper ([[1],[]]): depth keeps
         * the verdict only for a text without brackets. */
        if (!strpbrk(inner, "[]{}") && wrapped_ok != expect) abort();
        (void)bullc__json_parses(text, total); /* cJSON's fallback: its depth limit, not a crash */
    }
    free(inner);
    free(text);
    return 0;
}
