/* SPDX-License-Identifier: MIT */
/* msgpack: bullc's packing of values and of job options, checked byte by byte
 * for the formats Redis's cmsgpack accepts, and against the options Node
 * BullMQ packs (the corpus written by compat-tests/lib/gen-msgpack-corpus.js
 * with bullmq's own Job class and packer; path in BULLC_MSGPACK_CORPUS). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* ---- helpers ------------------------------------------------------------ */

/* One value packed by bullc's codec, as an sds. */
enum pack_kind { P_NUMBER, P_STR, P_STRN, P_JSON };
static sds packed(enum pack_kind kind, double d, const char *s, size_t len, const cJSON *j) {
    bullc__packbuf pb;
    bullc__packbuf_init(&pb);
    switch (kind) {
    case P_NUMBER:
        bullc__pack_number(&pb.pk, d);
        break;
    case P_STR:
        bullc__pack_str(&pb.pk, s);
        break;
    case P_STRN:
        bullc__pack_strn(&pb.pk, s, len);
        break;
    case P_JSON:
        bullc__pack_json(&pb.pk, j);
        break;
    }
    sds out = sdsnewlen(pb.sbuf.data, pb.sbuf.size);
    bullc__packbuf_destroy(&pb);
    return out;
}
#define PACK_NUM(d) packed(P_NUMBER, (d), NULL, 0, NULL)
#define PACK_STR(s) packed(P_STR, 0, (s), 0, NULL)
#define PACK_STRN(s, n) packed(P_STRN, 0, (s), (n), NULL)
#define PACK_JSON(j) packed(P_JSON, 0, NULL, 0, (j))

static void expect_bytes(sds got, const char *hex, const char *what) {
    char buf[2 * 64 + 1] = "";
    for (size_t i = 0; i < sdslen(got) && i < 64; i++) snprintf(buf + 2 * i, 3, "%02x", (unsigned char)got[i]);
    cr_expect_str_eq(buf, hex, "%s: packed as %s, expected %s", what, buf, hex);
    sdsfree(got);
}

/* The decoded value of one msgpack value. */
static msgpack_object_type first_type(const char *buf, size_t len) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&u, buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    msgpack_object_type t = u.data.type;
    msgpack_unpacked_destroy(&u);
    return t;
}

/* ---- bullc__pack_number / pack_json -------------------------------------- */

TestSuite(codec);

Test(codec, integers_use_compact_int_formats) {
    expect_bytes(PACK_NUM(0), "00", "0");
    expect_bytes(PACK_NUM(127), "7f", "127");
    expect_bytes(PACK_NUM(128), "cc80", "128");
    expect_bytes(PACK_NUM(65535), "cdffff", "65535");
    expect_bytes(PACK_NUM(4294967295.0), "ceffffffff", "2^32-1");
    expect_bytes(PACK_NUM(-1), "ff", "-1");
    expect_bytes(PACK_NUM(-33), "d0df", "-33");
    /* beyond 32 bits: a 64-bit integer (msgpackr writes float64; both decode
     * to the same double in Lua) */
    sds s = PACK_NUM(9007199254740991.0);
    cr_expect_eq(first_type(s, sdslen(s)), MSGPACK_OBJECT_POSITIVE_INTEGER);
    cr_expect_eq((unsigned char)s[0], 0xcf);
    sdsfree(s);
}

Test(codec, non_integers_and_unsafe_integers_are_float64_never_float32) {
    double values[] = {0.5, -0.25, 1234.5678, 9007199254740992.0, 1e300, -9007199254740993.0};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        sds s = PACK_NUM(values[i]);
        cr_expect_eq(sdslen(s), 9, "%g: %zu bytes", values[i], sdslen(s));
        cr_expect_eq((unsigned char)s[0], 0xcb, "%g: format 0x%02x, expected float64 0xcb", values[i],
                     (unsigned char)s[0]);
        cJSON *j = bullc__unpack_to_json(s, sdslen(s));
        cr_assert_not_null(j);
        cr_expect_eq(j->valuedouble, values[i], "%g decoded as %g", values[i], j->valuedouble);
        cJSON_Delete(j);
        sdsfree(s);
    }
}

Test(codec, strings_are_str_never_bin) {
    expect_bytes(PACK_STR(""), "a0", "empty string");
    expect_bytes(PACK_STR("ab"), "a26162", "fixstr");
    char s32[33];
    memset(s32, 'x', 32);
    s32[32] = 0;
    sds s = PACK_STR(s32);
    cr_expect_eq((unsigned char)s[0], 0xd9, "32 bytes: str8 (0xd9), got 0x%02x", (unsigned char)s[0]);
    sdsfree(s);
    char *big = malloc(70001);
    memset(big, 'y', 70000);
    big[70000] = 0;
    s = PACK_STR(big);
    cr_expect_eq((unsigned char)s[0], 0xdb, "70000 bytes: str32 (0xdb), got 0x%02x", (unsigned char)s[0]);
    cr_expect_eq(first_type(s, sdslen(s)), MSGPACK_OBJECT_STR);
    sdsfree(s);
    free(big);
    /* bytes that are not UTF-8 still go out as str, as Lua needs */
    s = PACK_STRN("\xff\x00z", 3);
    expect_bytes(s, "a3ff007a", "binary-ish bytes");
}

Test(codec, json_values_keep_their_types) {
    cJSON *v = cJSON_Parse("{\"t\":true,\"f\":false,\"n\":null,\"a\":[1,\"s\",2.5],\"o\":{\"k\":-2}}");
    cr_assert_not_null(v);
    sds s = PACK_JSON(v);
    /* map of 5 (fixmap), "t" true, "f" false, "n" nil, "a" [1, "s", 2.5], "o" {"k": -2} */
    char hex[256] = "";
    for (size_t i = 0; i < sdslen(s); i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
    cr_expect_str_eq(hex,
                     "85a174c3a166c2a16ec0a16193"
                     "01a173cb4004000000000000"
                     "a16f81a16bfe",
                     "got %s", hex);
    cJSON *back = bullc__unpack_to_json(s, sdslen(s));
    cr_assert_not_null(back);
    cr_expect(cJSON_Compare(v, back, true), "round trip changed the value");
    cJSON_Delete(back);
    cJSON_Delete(v);
    sdsfree(s);
}

Test(codec, unpack_rejects_what_redis_cannot_decode) {
    /* bin8, ext, an integer map key, trailing bytes, a truncated value */
    const struct {
        const char *bytes;
        size_t len;
        const char *what;
    } bad[] = {
        {"\xc4\x01z", 3, "bin8"},
        {"\xd4\x01\x02", 3, "fixext1"},
        {"\x81\x01\xa1z", 4, "integer map key"},
        {"\x01\x02", 2, "trailing bytes"},
        {"\xa5"
         "ab",
         3, "truncated str"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = bullc__unpack_to_json(bad[i].bytes, bad[i].len);
        cr_expect_null(j, "%s decoded", bad[i].what);
        cJSON_Delete(j);
    }
}

/* ---- the corpus: bullc's packed opts vs Node's ---------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static sds hex_decode(const char *hex) {
    size_t n = strlen(hex);
    if (n % 2) return NULL;
    sds out = sdsempty();
    for (size_t i = 0; i < n; i += 2) {
        char b[3] = {hex[i], hex[i + 1], 0}, *end;
        unsigned long v = strtoul(b, &end, 16);
        if (*end) {
            sdsfree(out);
            return NULL;
        }
        char c = (char)v;
        out = sdscatlen(out, &c, 1);
    }
    return out;
}

/* Type classes as Lua's cmsgpack sees them: every number is a double. */
static const char *type_class(msgpack_object_type t) {
    switch (t) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "number";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "?";
}

static double num(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return (double)o->via.i64;
    default:
        return o->via.f64;
    }
}

/* A format bullc must never write: bin, ext, float32, non-str map keys. */
static bool formats_ok(const msgpack_object *o, char *why, size_t cap) {
    switch (o->type) {
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT:
    case MSGPACK_OBJECT_FLOAT32:
        snprintf(why, cap, "a %s value", type_class(o->type));
        return false;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (!formats_ok(&o->via.array.ptr[i], why, cap)) return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
                snprintf(why, cap, "a %s map key", type_class(o->via.map.ptr[i].key.type));
                return false;
            }
            if (!formats_ok(&o->via.map.ptr[i].val, why, cap)) return false;
        }
        return true;
    default:
        return true;
    }
}

static const msgpack_object *map_get(const msgpack_object *m, const char *k, size_t klen) {
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == klen && !memcmp(kv->key.via.str.ptr, k, klen))
            return &kv->val;
    }
    return NULL;
}

static uint32_t map_live(const msgpack_object *m) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->via.map.size; i++) n += m->via.map.ptr[i].val.type != MSGPACK_OBJECT_NIL;
    return n;
}

/* Compares two values as Lua sees them: same type class at every place, equal
 * values; a nil map entry is the same as a missing one (Lua has no entry). On
 * a difference writes where to `why`. */
static bool same_value(const msgpack_object *a, const msgpack_object *b, const char *path, char *why, size_t cap) {
    if (strcmp(type_class(a->type), type_class(b->type))) {
        snprintf(why, cap, "%s: bullc wrote a %s, Node a %s", path, type_class(a->type), type_class(b->type));
        return false;
    }
    char sub[512];
    switch (a->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        if (a->via.boolean != b->via.boolean) {
            snprintf(why, cap, "%s: %d vs %d", path, a->via.boolean, b->via.boolean);
            return false;
        }
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (num(a) != num(b)) {
            snprintf(why, cap, "%s: %.17g vs %.17g", path, num(a), num(b));
            return false;
        }
        return true;
    case MSGPACK_OBJECT_STR:
        if (a->via.str.size != b->via.str.size || memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size)) {
            snprintf(why, cap, "%s: strings differ (%u vs %u bytes)", path, a->via.str.size, b->via.str.size);
            return false;
        }
        return true;
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size) {
            snprintf(why, cap, "%s: arrays of %u vs %u", path, a->via.array.size, b->via.array.size);
            return false;
        }
        for (uint32_t i = 0; i < a->via.array.size; i++) {
            snprintf(sub, sizeof sub, "%s[%u]", path, i);
            if (!same_value(&a->via.array.ptr[i], &b->via.array.ptr[i], sub, why, cap)) return false;
        }
        return true;
    case MSGPACK_OBJECT_MAP:
        if (map_live(a) != map_live(b)) {
            snprintf(why, cap, "%s: %u vs %u non-nil entries", path, map_live(a), map_live(b));
            return false;
        }
        for (uint32_t i = 0; i < a->via.map.size; i++) {
            const msgpack_object_kv *kv = &a->via.map.ptr[i];
            if (kv->val.type == MSGPACK_OBJECT_NIL) continue;
            snprintf(sub, sizeof sub, "%s.%.*s", path, (int)kv->key.via.str.size, kv->key.via.str.ptr);
            const msgpack_object *other = map_get(b, kv->key.via.str.ptr, kv->key.via.str.size);
            if (!other || other->type == MSGPACK_OBJECT_NIL) {
                snprintf(why, cap, "%s: only bullc has it", sub);
                return false;
            }
            if (!same_value(&kv->val, other, sub, why, cap)) return false;
        }
        return true;
    default:
        return true;
    }
}

/* Drops null members of objects, recursively: what a nil map entry is to Lua. */
static void strip_nulls(cJSON *v) {
    for (cJSON *c = v ? v->child : NULL, *next; c; c = next) {
        next = c->next;
        if (cJSON_IsObject(v) && cJSON_IsNull(c))
            cJSON_Delete(cJSON_DetachItemViaPointer(v, c));
        else
            strip_nulls(c);
    }
}

static char *corpus_text(size_t *len) {
    const char *path = getenv("BULLC_MSGPACK_CORPUS");
    cr_assert(path && *path, "BULLC_MSGPACK_CORPUS is not set: run through ctest (gen_msgpack_corpus writes it)");
    char *text = read_file(path, len);
    cr_assert_not_null(text, "the msgpack corpus %s is missing: the gen_msgpack_corpus test (node) writes it", path);
    cr_assert_gt(*len, 0, "the msgpack corpus %s is empty", path);
    return text;
}

Test(codec, node_corpus_is_present_and_complete) {
    size_t len;
    char *text = corpus_text(&len);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    cr_expect_geq(lines, 60, "the corpus has only %d entries", lines);
    free(text);
}

Test(codec, job_opts_pack_as_node_packs_them) {
    size_t len;
    char *text = corpus_text(&len);
    int n = 0, failures = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        n++;
        cJSON *entry = cJSON_Parse(line);
        cr_assert_not_null(entry, "corpus line %d is not JSON", n);
        const cJSON *title = cJSON_GetObjectItemCaseSensitive(entry, "title");
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(entry, "opts");
        const cJSON *packed = cJSON_GetObjectItemCaseSensitive(entry, "packed");
        const cJSON *script = cJSON_GetObjectItemCaseSensitive(entry, "script");
        const cJSON *text_opts = cJSON_GetObjectItemCaseSensitive(entry, "optsText");
        cr_assert(cJSON_IsString(title) && cJSON_IsObject(opts) && cJSON_IsString(packed) && cJSON_IsString(script) &&
                      cJSON_IsString(text_opts),
                  "corpus line %d lacks title/opts/packed/script/optsText", n);
        const char *t = title->valuestring;

        /* bullc's side: the options as a user passes them (Node's own JSON
         * text of them: re-printing with cJSON would round some numbers),
         * through the add path's preparation. */
        char *opts_json = strdup(text_opts->valuestring);
        bullc_job_opts *o;
        cr_assert_eq(bullc_job_opts_new(&o), 0);
        bullc_error err = {0};
        bullc__prepared_job pj;
        int rc = bullc_job_opts_merge_json(o, opts_json, &err);
        if (!rc) rc = bullc__job_prepare(&pj, "{}", NULL, o, &err);
        bullc_job_opts_free(o);
        if (rc) {
            cr_expect_eq(rc, 0, "[%s] bullc rejects options Node accepts: %s: %s", t, opts_json, err.message);
            failures++;
            free(opts_json);
            cJSON_Delete(entry);
            continue;
        }

        sds node = hex_decode(packed->valuestring);
        cr_assert_not_null(node, "[%s] bad hex", t);

        /* 1. bytes: only formats Redis decodes, and a map at the top */
        msgpack_unpacked ub, un;
        msgpack_unpacked_init(&ub);
        msgpack_unpacked_init(&un);
        size_t ob = 0, on = 0;
        bool ok = msgpack_unpack_next(&ub, pj.packed_opts, sdslen(pj.packed_opts), &ob) == MSGPACK_UNPACK_SUCCESS &&
                  ob == sdslen(pj.packed_opts);
        cr_expect(ok, "[%s] bullc's packed opts do not decode as one msgpack value", t);
        cr_assert(msgpack_unpack_next(&un, node, sdslen(node), &on) == MSGPACK_UNPACK_SUCCESS && on == sdslen(node),
                  "[%s] Node's packed opts do not decode", t);
        char why[600] = "";
        if (ok) {
            ok = ub.data.type == MSGPACK_OBJECT_MAP;
            cr_expect(ok, "[%s] bullc's packed opts are a %s, not a map", t, type_class(ub.data.type));
        }
        if (ok) {
            ok = formats_ok(&ub.data, why, sizeof why);
            cr_expect(ok, "[%s] bullc wrote %s (Redis's cmsgpack cannot decode it)", t, why);
        }
        /* 2. types and values at every place, as Lua sees them */
        if (ok) {
            ok = same_value(&ub.data, &un.data, "opts", why, sizeof why);
            cr_expect(ok, "[%s] %s\n  opts: %s", t, why, opts_json);
        }
        /* 3. the decoded JSON trees, nil map entries dropped (order-insensitive) */
        cJSON *jb = bullc__unpack_to_json(pj.packed_opts, sdslen(pj.packed_opts));
        cJSON *jn = bullc__unpack_to_json(node, sdslen(node));
        cr_expect_not_null(jb, "[%s] bullc's packed opts do not convert to JSON", t);
        cr_expect_not_null(jn, "[%s] Node's packed opts do not convert to JSON", t);
        if (jb && jn) {
            strip_nulls(jb);
            strip_nulls(jn);
            bool same = cJSON_Compare(jb, jn, true);
            if (!same) {
                char *sb = cJSON_PrintUnformatted(jb), *sn = cJSON_PrintUnformatted(jn);
                cr_expect(same, "[%s] decoded opts differ\n  bullc: %s\n  node:  %s", t, sb, sn);
                free(sb), free(sn);
            }
            ok = ok && same;
        } else {
            ok = false;
        }
        /* 4. the add script Node picked follows from what bullc derived */
        const char *mine = pj.delay > 0 ? "delayed" : pj.priority > 0 ? "prioritized" : "standard";
        if (strcmp(mine, script->valuestring)) {
            cr_expect_str_eq(mine, script->valuestring, "[%s] bullc would use the %s add script, Node used %s", t, mine,
                             script->valuestring);
            ok = false;
        }
        failures += !ok;

        cJSON_Delete(jb);
        cJSON_Delete(jn);
        msgpack_unpacked_destroy(&ub);
        msgpack_unpacked_destroy(&un);
        sdsfree(node);
        bullc__job_prepared_free(&pj);
        free(opts_json);
        cJSON_Delete(entry);
    }
    cr_expect_gt(n, 0, "no corpus entries");
    cr_expect_eq(failures, 0, "%d of %d corpus entries differ", failures, n);
    free(text);
}
