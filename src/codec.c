/* SPDX-License-Identifier: MIT */
/* msgpack for BullMQ's packed script arguments. Lua's cmsgpack decodes every
 * number to a double and needs str (not bin) types and real booleans; map key
 * order does not matter (the stored opts JSON is re-encoded by Lua). */
#include <math.h>
#include <string.h>

#include "bullc-private.h"

void bullc__packbuf_init(bullc__packbuf *b) {
    msgpack_sbuffer_init(&b->sbuf);
    msgpack_packer_init(&b->pk, &b->sbuf, msgpack_sbuffer_write);
}

void bullc__packbuf_destroy(bullc__packbuf *b) { msgpack_sbuffer_destroy(&b->sbuf); }

void bullc__pack_strn(msgpack_packer *pk, const char *s, size_t len) {
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

void bullc__pack_str(msgpack_packer *pk, const char *s) { bullc__pack_strn(pk, s, strlen(s)); }

void bullc__pack_number(msgpack_packer *pk, double v) {
    /* Integers in the compact int formats as msgpackr writes small ones;
     * beyond 2^53 or fractional: float64 (msgpackr never writes float32). */
    if (isfinite(v) && v == trunc(v) && fabs(v) <= BULLC__MAX_SAFE_INTEGER)
        msgpack_pack_int64(pk, (int64_t)v);
    else
        msgpack_pack_double(pk, v);
}

void bullc__pack_json(msgpack_packer *pk, const cJSON *v) {
    if (!v || cJSON_IsNull(v)) {
        msgpack_pack_nil(pk);
    } else if (cJSON_IsTrue(v)) {
        msgpack_pack_true(pk);
    } else if (cJSON_IsFalse(v)) {
        msgpack_pack_false(pk);
    } else if (cJSON_IsNumber(v)) {
        bullc__pack_number(pk, v->valuedouble);
    } else if (cJSON_IsString(v)) {
        bullc__pack_str(pk, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(v));
        for (const cJSON *c = v->child; c; c = c->next) bullc__pack_json(pk, c);
    } else if (cJSON_IsObject(v)) {
        msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(v));
        for (const cJSON *c = v->child; c; c = c->next) {
            bullc__pack_str(pk, c->string);
            bullc__pack_json(pk, c);
        }
    } else {
        msgpack_pack_nil(pk);
    }
}

static cJSON *obj_to_json(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN:
        return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        sds s = sdsnewlen(o->via.str.ptr, o->via.str.size);
        cJSON *j = cJSON_CreateString(s);
        sdsfree(s);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        cJSON *a = cJSON_CreateArray();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            cJSON *e = obj_to_json(&o->via.array.ptr[i]);
            if (!e) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, e);
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        cJSON *m = cJSON_CreateObject();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            cJSON *e = kv->key.type == MSGPACK_OBJECT_STR ? obj_to_json(&kv->val) : NULL;
            if (!e) { /* non-string keys are what Lua cannot index by name */
                cJSON_Delete(m);
                return NULL;
            }
            sds k = sdsnewlen(kv->key.via.str.ptr, kv->key.via.str.size);
            cJSON_AddItemToObject(m, k, e);
            sdsfree(k);
        }
        return m;
    }
    default:
        return NULL; /* bin and ext: Redis's cmsgpack rejects them too */
    }
}

cJSON *bullc__unpack_to_json(const char *buf, size_t len) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cJSON *out = NULL;
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len) out = obj_to_json(&u.data);
    msgpack_unpacked_destroy(&u);
    return out;
}
