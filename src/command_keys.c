/* SPDX-License-Identifier: MIT */
/* Which arguments of an arbitrary command are keys, for routing it on a
 * Redis Cluster (bullc_redis_conn): asked of the server, never listed here.
 * COMMAND INFO <name> is asked once per name per connection; its Redis 7
 * key specs (begin_search index / keyword, find_keys range / keynum) are
 * applied to each call locally, so a hot command (XREAD, EVALSHA) costs no
 * extra round trip. COMMAND GETKEYS is asked, per call, only where the specs
 * cannot say: a spec the server marks incomplete or of an unknown kind
 * (SORT's STORE, MIGRATE's KEYS), a movablekeys command without specs (a
 * module's), and every movablekeys command of a Redis 6 (no key specs; its
 * first / last / step range serves the others). A server that refuses
 * COMMAND (renamed or denied by ACL) leaves the fallback below. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bullc-private.h"

/* One key spec, or a Redis 6 first / last / step range as one. */
typedef struct spec {
    char *keyword; /* begin at the argument after this word, searched from `pos`; NULL: begin at `pos` */
    int pos;       /* index, or the keyword search's start (negative: from the end, backwards) */
    bool keynum;   /* find_keys: keynum (a = keynumidx, b = firstkey) or range (a = lastkey, b = limit) */
    int a, b, step;
} spec;

typedef struct entry {
    char *name;  /* lower case; a subcommand as "container|sub" */
    bool ask;    /* the server must say (COMMAND GETKEYS) */
    bool parent; /* has subcommands: look up "name|argv[1]" */
    size_t nspecs;
    spec *specs;
} entry;

struct bullc__cmd_table {
    entry *e;
    size_t n;
    bool no_command; /* COMMAND refused: the fallback */
};

static void entry_clear(entry *e) {
    for (size_t i = 0; i < e->nspecs; i++) free(e->specs[i].keyword);
    free(e->specs);
    free(e->name);
}

void bullc__cmd_table_free(bullc__cmd_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) entry_clear(&t->e[i]);
    free(t->e);
    free(t);
}

static const entry *find(const bullc__cmd_table *t, const char *name, size_t len) {
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->e[i].name) == len && !strncasecmp(t->e[i].name, name, len)) return &t->e[i];
    return NULL;
}

static bool is_str(const redisReply *r) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* The value after `name` in a RESP2 flat map ([k, v, k, v...]), or NULL. */
static const redisReply *map_get(const redisReply *m, const char *name) {
    for (size_t i = 0; m && m->type == REDIS_REPLY_ARRAY && i + 1 < m->elements; i += 2)
        if (is_str(m->element[i]) && !strcasecmp(m->element[i]->str, name)) return m->element[i + 1];
    return NULL;
}

static bool map_int(const redisReply *m, const char *name, int *v) {
    const redisReply *r = map_get(m, name);
    if (!r || r->type != REDIS_REPLY_INTEGER) return false;
    *v = (int)r->integer;
    return true;
}

static bool has_flag(const redisReply *flags, const char *f) {
    for (size_t i = 0; flags && flags->type == REDIS_REPLY_ARRAY && i < flags->elements; i++)
        if (is_str(flags->element[i]) && !strcasecmp(flags->element[i]->str, f)) return true;
    return false;
}

/* One Redis 7 key spec into *s; false when the server marks it incomplete
 * or describes it in a way not known here (then the server must say). */
static bool parse_spec(const redisReply *ks, spec *s) {
    const redisReply *bs = map_get(ks, "begin_search"), *fk = map_get(ks, "find_keys");
    const redisReply *bt = map_get(bs, "type"), *bsp = map_get(bs, "spec");
    const redisReply *ft = map_get(fk, "type"), *fsp = map_get(fk, "spec");
    if (has_flag(map_get(ks, "flags"), "incomplete") || !is_str(bt) || !is_str(ft)) return false;
    if (!strcmp(bt->str, "index")) {
        if (!map_int(bsp, "index", &s->pos)) return false;
    } else if (!strcmp(bt->str, "keyword")) {
        const redisReply *kw = map_get(bsp, "keyword");
        if (!is_str(kw) || !map_int(bsp, "startfrom", &s->pos) || !(s->keyword = strdup(kw->str))) return false;
    } else {
        return false;
    }
    if (!strcmp(ft->str, "range")) {
        s->keynum = false;
        return map_int(fsp, "lastkey", &s->a) && map_int(fsp, "keystep", &s->step) && map_int(fsp, "limit", &s->b) &&
               s->step > 0;
    }
    s->keynum = true;
    return !strcmp(ft->str, "keynum") && map_int(fsp, "keynumidx", &s->a) && map_int(fsp, "firstkey", &s->b) &&
           map_int(fsp, "keystep", &s->step) && s->step > 0;
}

static char *lower(const char *s, size_t len) {
    char *o = malloc(len + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < len; i++) o[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    o[len] = 0;
    return o;
}

static int add_entry(bullc__cmd_table *t, entry *e) {
    entry *more = realloc(t->e, sizeof *more * (t->n + 1));
    if (!more) {
        entry_clear(e);
        return BULLC_ENOMEM;
    }
    t->e = more;
    t->e[t->n++] = *e;
    return 0;
}

/* One COMMAND INFO element ([name, arity, flags, first, last, step, ...,
 * key specs at 8, subcommands at 9 on Redis 7]) and its subcommands into
 * the table. `name` (lower case, taken) names it. */
static int add_info(bullc__cmd_table *t, const redisReply *ci, char *name) {
    entry e = {.name = name};
    if (!e.name) return BULLC_ENOMEM;
    bool ok = ci->type == REDIS_REPLY_ARRAY && ci->elements >= 6;
    for (int i = 3; ok && i < 6; i++) ok = ci->element[i]->type == REDIS_REPLY_INTEGER;
    if (!ok) { /* not a command of this server: sent as it is, the server answers */
        return add_entry(t, &e);
    }
    bool movable = has_flag(ci->element[2], "movablekeys");
    const redisReply *specs = ci->elements > 8 && ci->element[8]->type == REDIS_REPLY_ARRAY ? ci->element[8] : NULL;
    const redisReply *subs = ci->elements > 9 && ci->element[9]->type == REDIS_REPLY_ARRAY ? ci->element[9] : NULL;
    e.parent = subs && subs->elements;
    if (specs) {
        e.ask = movable && !specs->elements;
        e.specs = specs->elements ? calloc(specs->elements, sizeof *e.specs) : NULL;
        if (specs->elements && !e.specs) e.ask = true; /* out of memory: the server says */
        for (size_t i = 0; e.specs && !e.ask && i < specs->elements; i++, e.nspecs++)
            e.ask = !parse_spec(specs->element[i], &e.specs[i]);
    } else if (movable) {
        e.ask = true;
    } else if (ci->element[3]->integer > 0) {
        /* Redis 6: first, last (negative: from the end), step */
        long long first = ci->element[3]->integer, last = ci->element[4]->integer, step = ci->element[5]->integer;
        if (!(e.specs = calloc(1, sizeof *e.specs)))
            e.ask = true;
        else {
            e.nspecs = 1;
            e.specs[0] =
                (spec){.pos = (int)first, .a = (int)(last < 0 ? last : last - first), .step = step > 0 ? (int)step : 1};
        }
    }
    int rc = add_entry(t, &e);
    for (size_t i = 0; !rc && subs && i < subs->elements; i++) {
        const redisReply *s = subs->element[i];
        if (s->type == REDIS_REPLY_ARRAY && s->elements && is_str(s->element[0]))
            rc = add_info(t, s, lower(s->element[0]->str, s->element[0]->len));
    }
    return rc;
}

/* The table's entry for argv[0] (asked of the server when new), and for
 * its subcommand when it has them; NULL with t->no_command when COMMAND is
 * refused. */
static int lookup(bullc__cmd_table *t, bullc__conn *c, int argc, const char *const *argv, const size_t *lens,
                  const entry **out, bullc_error *err) {
    size_t n0 = lens ? lens[0] : strlen(argv[0]);
    const entry *e = find(t, argv[0], n0);
    if (!e) {
        const char *q[] = {"COMMAND", "INFO", argv[0]};
        size_t ql[] = {7, 4, n0};
        redisReply *r = NULL;
        bullc_error ie = {0};
        int rc = bullc__conn_command(c, &r, &ie, 3, q, ql);
        if (rc == BULLC_EAUTH || (rc == BULLC_EREDIS && strstr(ie.message, "unknown command"))) {
            t->no_command = true; /* not allowed to this user, or renamed */
            *out = NULL;
            return 0;
        }
        if (rc) return bullc__err(err, rc, "%s", ie.message);
        size_t at = t->n; /* the container goes in before its subcommands */
        bool shaped = r->type == REDIS_REPLY_ARRAY && r->elements == 1;
        rc = shaped ? add_info(t, r->element[0], lower(argv[0], n0)) : 0;
        freeReplyObject(r);
        if (rc) return bullc__err(err, rc, "out of memory");
        if (!shaped) return bullc__err(err, BULLC_EREDIS, "unexpected answer to COMMAND INFO");
        e = &t->e[at];
    }
    if (e->parent && argc > 1) {
        size_t n1 = lens ? lens[1] : strlen(argv[1]);
        char name[128];
        size_t nl = strlen(e->name);
        const entry *s = NULL;
        if (nl + 1 + n1 < sizeof name) {
            memcpy(name, e->name, nl);
            name[nl] = '|';
            memcpy(name + nl + 1, argv[1], n1);
            s = find(t, name, nl + 1 + n1);
        }
        static const entry none = {0};
        e = s ? s : &none; /* an unknown subcommand: the server answers */
    }
    *out = e;
    return 0;
}

static size_t len_of(const char *const *argv, const size_t *lens, int i) { return lens ? lens[i] : strlen(argv[i]); }

/* The keys one spec finds in argv, appended to keys[]. */
static void apply(const spec *s, int argc, const char *const *argv, const size_t *lens, bullc__cmd_key *keys,
                  size_t *n) {
    int first = -1;
    if (!s->keyword) {
        first = s->pos;
    } else {
        /* the word's first occurrence searching from `pos`, forwards or,
         * from the end, backwards; the keys start after it */
        int from = s->pos > 0 ? s->pos : argc + s->pos, dir = s->pos > 0 ? 1 : -1;
        size_t kl = strlen(s->keyword);
        for (int i = from; i >= 1 && i < argc; i += dir)
            if (len_of(argv, lens, i) == kl && !strncasecmp(argv[i], s->keyword, kl)) {
                first = i + 1;
                break;
            }
    }
    if (first < 1 || first >= argc) return;
    int last;
    if (s->keynum) {
        if (first + s->a >= argc) return;
        /* a count (binary-safe argument: copied to end it) */
        char num[24], *end;
        size_t nl = len_of(argv, lens, first + s->a);
        if (!nl || nl >= sizeof num) return;
        memcpy(num, argv[first + s->a], nl);
        num[nl] = 0;
        long k = strtol(num, &end, 10);
        if (*end || k <= 0 || k > argc) return;
        first += s->b;
        last = first + (int)k - 1;
    } else if (s->a >= 0) {
        last = first + s->a;
    } else {
        /* to the end, or (limit) that part of the rest: XREAD's streams
         * are the first half of what follows STREAMS */
        last = s->b ? first + (argc - first) / s->b + s->a : argc + s->a;
    }
    for (int i = first; i <= last && i < argc; i += s->step) {
        keys[*n].p = argv[i];
        keys[(*n)++].len = len_of(argv, lens, i);
    }
}

/* The fallback without COMMAND: the first key of a script call (after its
 * key count), else argv[1]. */
static void fallback(int argc, const char *const *argv, const size_t *lens, bullc__cmd_key *keys, size_t *n) {
    static const char *const scripts[] = {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"};
    size_t n0 = len_of(argv, lens, 0);
    int k = argc > 1 ? 1 : -1;
    for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++)
        if (n0 == strlen(scripts[i]) && !strncasecmp(argv[0], scripts[i], n0))
            k = argc > 3 && len_of(argv, lens, 2) && argv[2][0] >= '1' && argv[2][0] <= '9' ? 3 : -1;
    if (k > 0) {
        keys[0].p = argv[k];
        keys[0].len = len_of(argv, lens, k);
        *n = 1;
    }
}

int bullc__command_keys(bullc__cmd_table **tp, bullc__conn *c, int argc, const char *const *argv, const size_t *lens,
                        bullc__cmd_keys *out, bullc_error *err) {
    memset(out, 0, sizeof *out);
    if (!*tp && !(*tp = calloc(1, sizeof **tp))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    bullc__cmd_table *t = *tp;
    const entry *e = NULL;
    if (!t->no_command) {
        int rc = lookup(t, c, argc, argv, lens, &e, err);
        if (rc) return rc;
    }
    /* every key is an argument: argc bounds them (specs may overlap) */
    size_t cap = (size_t)argc * (e ? e->nspecs + 1 : 1);
    if (!(out->key = calloc(cap, sizeof *out->key))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (!e) {
        fallback(argc, argv, lens, out->key, &out->n);
        return 0;
    }
    if (!e->ask) {
        for (size_t i = 0; i < e->nspecs; i++) apply(&e->specs[i], argc, argv, lens, out->key, &out->n);
        return 0;
    }
    const char **q = malloc(sizeof *q * ((size_t)argc + 2));
    size_t *ql = malloc(sizeof *ql * ((size_t)argc + 2));
    if (!q || !ql) {
        free(q);
        free(ql);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    q[0] = "COMMAND", ql[0] = 7, q[1] = "GETKEYS", ql[1] = 7;
    for (int i = 0; i < argc; i++) q[i + 2] = argv[i], ql[i + 2] = len_of(argv, lens, i);
    redisReply *r = NULL;
    bullc_error ge = {0};
    int rc = bullc__conn_command(c, &r, &ge, argc + 2, q, ql);
    free(q);
    free(ql);
    /* no keys, or arguments the server refuses: the command itself will say */
    if (rc == BULLC_EREDIS) return 0;
    if (rc) return bullc__err(err, rc, "%s", ge.message);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && out->n < cap; i++)
        if (is_str(r->element[i])) {
            out->key[out->n].p = r->element[i]->str;
            out->key[out->n++].len = r->element[i]->len;
        }
    out->held = r;
    return 0;
}

void bullc__cmd_keys_clear(bullc__cmd_keys *k) {
    free(k->key);
    freeReplyObject(k->held);
    memset(k, 0, sizeof *k);
}

int bullc__command_slot(bullc__cmd_table **t, bullc__conn *c, int argc, const char *const *argv, const size_t *lens,
                        int *slot, bullc_error *err) {
    bullc__cmd_keys k;
    int rc = bullc__command_keys(t, c, argc, argv, lens, &k, err);
    *slot = -1;
    for (size_t i = 0; !rc && i < k.n; i++) {
        int s = bullc__cluster_key_slot(k.key[i].p, k.key[i].len);
        if (*slot >= 0 && s != *slot)
            rc = bullc__err(err, BULLC_EINVAL,
                            "keys in different slots: %.*s is in slot %d, %.*s in slot %d (a Redis Cluster runs a "
                            "command only on keys of one slot: give them a common hash tag such as {tag})",
                            (int)(k.key[0].len > 64 ? 64 : k.key[0].len), k.key[0].p, *slot,
                            (int)(k.key[i].len > 64 ? 64 : k.key[i].len), k.key[i].p, s);
        *slot = s;
    }
    bullc__cmd_keys_clear(&k);
    return rc;
}
