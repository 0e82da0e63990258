/* SPDX-License-Identifier: MIT */
/* The provider's side of each connection: wait for the subscribe message,
 * then write rounds (and bad messages) at the configured rate, one message
 * at a time, each only when the socket is writable. A message counts as sent
 * once its last byte went to the kernel, so the sent log is exactly what a
 * client can have received before a drop. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fp.h"

struct fp_conn {
    struct lws *wsi;
    uint64_t id;
    bool linked, subscribed, emitting, drop_pending, dropped, stalled, close_pending, close_sent;
    uint64_t rounds; /* rounds written on this connection */
    int64_t emit_start;
    /* the message being written: LWS_PRE bytes of room, then the payload */
    unsigned char *buf;
    size_t len, off;
    int kind;
    uint64_t seq; /* rounds: the global sequence number */
    /* the first message from the client, reassembled */
    char rx[65536];
    size_t rxlen;
    fp_conn *next;
};

/* The close-frame opcode of lws_write(): private in lws 4.1 (LWS_WRITE_CLOSE,
 * 4, in lib/roles/ws/private-lib-roles-ws.h, the same since lws 2), and
 * needed because lws_close_reason() + returning -1 from the writable
 * callback closes the socket without the close frame on the libuv loop. */
#define FP_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)

static uint64_t next_seq; /* sequence numbers handed out (a round cut by a drop leaves a gap) */
static uint64_t bad_serial;
static uint64_t since_bad; /* rounds since the last bad message, over all connections */
static int next_bad;       /* index into cfg.bad_kinds */

const char *const fp_kind_names[FP_NKINDS] = {"round", "text", "binary", "oversized", "untyped", "inject", "bignum"};

static void unlink_conn(fp_conn *c) {
    for (fp_conn **p = &fp.conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    c->linked = false;
}

/* ---- messages --------------------------------------------------------------- */

/* A small deterministic generator, so that a round's balls depend on its seq
 * only and runs are repeatable. */
static uint32_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static unsigned char *alloc_msg(size_t len) {
    unsigned char *b = malloc(LWS_PRE + len + 1);
    if (!b) {
        fprintf(stderr, "bullc-fake-provider: out of memory\n");
        exit(1);
    }
    return b;
}

/* A NAMED_POWERBALL round: five distinct balls of 1..28 and a powerball of
 * 0..9. "odds" keeps a trailing zero on purpose: a client that re-prints
 * numbers instead of keeping the text as received would lose it. */
static void make_round(fp_conn *c) {
    int balls[5], n = 0;
    for (uint64_t k = 0; n < 5; k++) {
        int b = 1 + (int)(mix(c->seq * 131 + k) % 28);
        bool dup = false;
        for (int i = 0; i < n; i++) dup = dup || balls[i] == b;
        if (!dup) balls[n++] = b;
    }
    qsort(balls, 5, sizeof balls[0], cmp_int);
    char text[512];
    int len = snprintf(text, sizeof text,
                       "{\"type\":\"round_result\",\"provider\":\"%s\",\"round\":%llu,\"balls\":[%d,%d,%d,%d,%d],"
                       "\"powerball\":%d,\"odds\":1.950,\"seq\":%llu,\"ts\":%lld}",
                       fp.cfg.provider, (unsigned long long)(c->rounds + 1), balls[0], balls[1], balls[2], balls[3],
                       balls[4], (int)(mix(c->seq * 977) % 10), (unsigned long long)c->seq, (long long)fp_now_ms());
    c->buf = alloc_msg((size_t)len);
    memcpy(c->buf + LWS_PRE, text, (size_t)len);
    c->len = (size_t)len;
}

static void make_bad(fp_conn *c, int kind) {
    char text[256];
    int len = 0;
    unsigned long long n = (unsigned long long)++bad_serial;
    switch (kind) {
    case FP_BAD_TEXT:
        /* quotes, a backslash, a tab and a UTF-8 letter: all must survive */
        len = snprintf(text, sizeof text, "not json #%llu: \"quoted\", back\\slash, tab\t, caf\xc3\xa9", n);
        break;
    case FP_BAD_UNTYPED:
        len = snprintf(text, sizeof text, "{\"provider\":\"%s\",\"note\":\"untyped\",\"type\":7,\"n\":%llu}",
                       fp.cfg.provider, n);
        break;
    case FP_BAD_INJECT:
        len = snprintf(text, sizeof text, "%llu,\"messageType\":\"forged\",\"x\":{\"type\":\"forged\"}", n);
        break;
    case FP_BAD_BIGNUM:
        len = snprintf(text, sizeof text,
                       "{\"type\":\"bignum\",\"big\":12345678901234567890,\"small\":1e-7,\"f\":1.10,\"n\":%llu}", n);
        break;
    case FP_BAD_BINARY:
        c->buf = alloc_msg(16);
        for (int i = 0; i < 16; i++) c->buf[LWS_PRE + i] = (unsigned char)i;
        c->len = 16;
        return;
    default: { /* oversized: valid JSON, only too big */
        size_t size = fp.cfg.oversize_bytes < 32 ? 32 : fp.cfg.oversize_bytes;
        c->buf = alloc_msg(size);
        char *p = (char *)c->buf + LWS_PRE;
        static const char head[] = "{\"type\":\"oversized\",\"pad\":\"";
        memcpy(p, head, sizeof head - 1);
        memset(p + sizeof head - 1, 'x', size - (sizeof head - 1) - 2);
        memcpy(p + size - 2, "\"}", 2);
        c->len = size;
        return;
    }
    }
    c->buf = alloc_msg((size_t)len);
    memcpy(c->buf + LWS_PRE, text, (size_t)len);
    c->len = (size_t)len;
}

static bool round_due(const fp_conn *c) {
    if (fp.cfg.count && next_seq >= fp.cfg.count) return false;
    if (fp.cfg.rate <= 0) return true;
    return fp_now_ms() >= c->emit_start + (int64_t)((double)c->rounds * 1000.0 / fp.cfg.rate);
}

/* Prepares the next message of `c` if one is due. */
static bool next_message(fp_conn *c) {
    if (!c->emitting || c->stalled || c->dropped || c->drop_pending || c->close_pending || fp.finishing) return false;
    if (fp.cfg.bad_every && fp.cfg.nbad_kinds && since_bad >= fp.cfg.bad_every) {
        c->kind = fp.cfg.bad_kinds[next_bad];
        next_bad = (next_bad + 1) % fp.cfg.nbad_kinds;
        since_bad = 0;
        make_bad(c, c->kind);
    } else {
        if (!round_due(c)) return false;
        c->kind = FP_ROUND;
        c->seq = ++next_seq;
        make_round(c);
    }
    c->off = 0;
    return true;
}

static void log_sent(fp_conn *c) {
    if (!fp.sent_log) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "conn", (double)c->id);
    cJSON_AddStringToObject(o, "kind", fp_kind_names[c->kind]);
    if (c->kind == FP_ROUND) cJSON_AddNumberToObject(o, "seq", (double)c->seq);
    if (c->kind != FP_ROUND && c->kind != FP_BAD_BINARY && c->kind != FP_BAD_OVERSIZED) {
        c->buf[LWS_PRE + c->len] = 0;
        cJSON_AddStringToObject(o, "text", (char *)c->buf + LWS_PRE);
    }
    cJSON_AddNumberToObject(o, "bytes", (double)c->len);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) {
        fprintf(fp.sent_log, "%s\n", s);
        fflush(fp.sent_log); /* a test may read it while we run */
    }
    free(s);
}

static void message_done(fp_conn *c) {
    log_sent(c);
    if (c->kind == FP_ROUND) {
        fp.st.rounds++;
        fp.st.last_seq = c->seq;
        c->rounds++;
        since_bad++;
        if (fp.cfg.drop_every && c->rounds % fp.cfg.drop_every == 0) c->drop_pending = true;
        if (fp.cfg.stall_after && c->rounds == fp.cfg.stall_after) {
            c->stalled = true;
            /* no reading means no pong either: the client's pings go unanswered */
            lws_rx_flow_control(c->wsi, 0);
            printf("bullc-fake-provider stalled conn=%llu\n", (unsigned long long)c->id);
            fflush(stdout);
        }
    } else {
        fp.st.bad[c->kind]++;
    }
    free(c->buf);
    c->buf = NULL;
}

/* Ends the TCP stream without a close frame, as a network failure would:
 * what was written still arrives, then the client sees EOF. */
static void drop(fp_conn *c) {
    c->drop_pending = false;
    c->dropped = true;
    fp.st.drops++;
    printf("bullc-fake-provider drop conn=%llu rounds=%llu\n", (unsigned long long)c->id,
           (unsigned long long)c->rounds);
    fflush(stdout);
    shutdown(lws_get_socket_fd(c->wsi), SHUT_WR);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 2); /* if the client never closes its side */
}

/* One lws_write per writable callback: lws then never has to buffer more
 * than one chunk, and a fragmented message interleaves with nothing. */
static int writable(fp_conn *c) {
    if (c->dropped) return 0;
    if (!c->buf) {
        if (c->close_pending) {
            /* by hand: lws 4.1 on libuv drops the close frame of
             * lws_close_reason() + return -1; the client's answer ends it */
            if (!c->close_sent) {
                unsigned char b[LWS_PRE + 5] = {0};
                b[LWS_PRE] = LWS_CLOSE_STATUS_NORMAL >> 8;
                b[LWS_PRE + 1] = LWS_CLOSE_STATUS_NORMAL & 0xff;
                memcpy(b + LWS_PRE + 2, "bye", 3);
                c->close_sent = true;
                if (lws_write(c->wsi, b + LWS_PRE, 5, FP_LWS_WRITE_CLOSE) < 0) return -1;
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 2); /* no answer */
            }
            return 0;
        }
        if (c->drop_pending) {
            drop(c);
            return 0;
        }
        if (!next_message(c)) return 0;
    }
    size_t chunk = c->len - c->off;
    bool binary = c->kind == FP_BAD_BINARY;
    if (!binary && fp.cfg.fragment_bytes && chunk > fp.cfg.fragment_bytes) chunk = fp.cfg.fragment_bytes;
    int flags = c->off ? LWS_WRITE_CONTINUATION : binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
    if (c->off + chunk < c->len) flags |= LWS_WRITE_NO_FIN;
    /* lws writes the frame header into the LWS_PRE bytes in front of the
     * chunk: for a continuation those hold bytes already sent, not needed again */
    int w = lws_write(c->wsi, c->buf + LWS_PRE + c->off, chunk, (enum lws_write_protocol)flags);
    if (w < (int)chunk) {
        fprintf(stderr, "bullc-fake-provider: write failed on conn %llu\n", (unsigned long long)c->id);
        return -1;
    }
    c->off += chunk;
    if (c->off == c->len) message_done(c);
    lws_callback_on_writable(c->wsi);
    return 0;
}

static void received(fp_conn *c, const char *in, size_t len) {
    size_t room = sizeof c->rx - 1 - c->rxlen;
    if (len > room) len = room;
    memcpy(c->rx + c->rxlen, in, len);
    c->rxlen += len;
    if (!lws_is_final_fragment(c->wsi)) return;
    c->rx[c->rxlen] = 0;
    cJSON *s = cJSON_CreateString(c->rx);
    char *q = s ? cJSON_PrintUnformatted(s) : NULL;
    printf("bullc-fake-provider %s conn=%llu msg=%s\n", c->subscribed ? "message" : "subscribe",
           (unsigned long long)c->id, q ? q : "?");
    fflush(stdout);
    free(q);
    cJSON_Delete(s);
    c->rxlen = 0;
    if (!c->subscribed) {
        c->subscribed = true;
        fp.st.subscribes++;
        c->emitting = true;
        c->emit_start = fp_now_ms();
        lws_callback_on_writable(c->wsi);
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    fp_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED: {
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        c->id = ++fp.st.connections;
        if (fp.finishing) return -1;
        c->next = fp.conns;
        fp.conns = c;
        c->linked = true;
        char peer[64] = "?";
        lws_get_peer_simple(wsi, peer, sizeof peer);
        printf("bullc-fake-provider connection conn=%llu peer=%s\n", (unsigned long long)c->id, peer);
        fflush(stdout);
        if (!fp.cfg.wait_subscribe) {
            c->emitting = true;
            c->emit_start = fp_now_ms();
            lws_callback_on_writable(wsi);
        }
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        if (c->linked) received(c, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c->linked ? writable(c) : 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* the answer to our close frame: done (nonzero); else lws answers it */
        return c->linked && c->close_sent ? 1 : 0;
    case LWS_CALLBACK_CLOSED:
        if (c->linked) {
            printf("bullc-fake-provider closed conn=%llu rounds=%llu\n", (unsigned long long)c->id,
                   (unsigned long long)c->rounds);
            fflush(stdout);
            unlink_conn(c);
            free(c->buf); /* a message cut short was never counted as sent */
            c->buf = NULL;
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols fp_protocols[] = {
    {"bullc-fake-provider", callback, sizeof(fp_conn), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

void fp_conns_tick(void) {
    for (fp_conn *c = fp.conns; c; c = c->next)
        if (!c->buf && c->emitting && !c->stalled && !c->dropped) lws_callback_on_writable(c->wsi);
}

void fp_conns_drop_all(void) {
    for (fp_conn *c = fp.conns; c; c = c->next)
        if (!c->dropped) {
            c->drop_pending = true;
            lws_callback_on_writable(c->wsi);
        }
}

void fp_conns_close_all(void) {
    for (fp_conn *c = fp.conns; c; c = c->next) {
        if (c->dropped) continue;
        c->close_pending = true;
        if (c->stalled)
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        else
            lws_callback_on_writable(c->wsi);
    }
}

bool fp_all_sent(void) {
    if (!fp.cfg.count || next_seq < fp.cfg.count) return false;
    for (fp_conn *c = fp.conns; c; c = c->next)
        if (c->buf) return false;
    return true;
}
