/* SPDX-License-Identifier: MIT */
/* TLS over a connected socket with OpenSSL, for both connections (conn.c
 * and uv_redis.c): hiredis 0.14 has no TLS, so its socket carries the
 * records and its reply reader is fed what SSL_read decrypts. Every error
 * says what failed (a file, the certificate, the host name, the handshake),
 * because "connection lost" is all a user would see otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bullc-private.h"

/* The newest OpenSSL error's text, or "" (the queue is emptied). */
static const char *ssl_reason(char *buf, size_t size) {
    unsigned long e, last = 0;
    while ((e = ERR_get_error())) last = e;
    buf[0] = 0;
    if (last) ERR_error_string_n(last, buf, size);
    /* "error:0A00010B:SSL routines::wrong version number": the words are what
     * a user can act on */
    const char *p = strrchr(buf, ':');
    return p ? p + 1 : buf;
}

static bool is_ip(const char *host) {
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static const char *check_name(const bullc_redis_opts *o) { return o->tls_server_name ? o->tls_server_name : o->host; }

/* Redis's settings are flags and REDIS_* variables; another peer (the OTLP
 * exporter) names its own, so a hint never points at a setting that would
 * not help. */
static const bullc__tls_words redis_words = {
    .ca = "--tls-ca-cert / REDIS_TLS_CA",
    .client_cert = "--tls-cert and --tls-key",
    .server_name = " (host name check failed; --tls-server-name / REDIS_TLS_SERVER_NAME names the host the "
                   "certificate is for)",
    .plain = "use redis:// for a plain port",
    .timeout = "REDIS_CONNECT_TIMEOUT",
};
static const bullc__tls_words *words(const bullc_redis_opts *o) { return o->tls_words ? o->tls_words : &redis_words; }

static const char *where(const bullc_redis_opts *o, char *buf, size_t size) {
    if (!o->tls_words) return bullc_redis_opts_describe(o, buf, size);
    snprintf(buf, size, strchr(o->host, ':') ? "%s[%s]:%d" : "%s%s:%d", o->tls_words->scheme, o->host, o->port);
    return buf;
}

static SSL_CTX *ctx_new(const bullc_redis_opts *o, bullc_error *err) {
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        bullc__err(err, BULLC_ENOMEM, "TLS: cannot create a context: %s", ssl_reason(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* a partial write then leaves the rest to the next call, as write() */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int ok = o->tls_ca_file || o->tls_ca_dir ? SSL_CTX_load_verify_locations(ctx, o->tls_ca_file, o->tls_ca_dir)
                                             : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        bullc__err(err, BULLC_ECONN, "TLS: cannot load the CA certificates from %s: %s",
                   o->tls_ca_file  ? o->tls_ca_file
                   : o->tls_ca_dir ? o->tls_ca_dir
                                   : "the system's store",
                   ssl_reason(why, sizeof why));
        goto fail;
    }
    if (o->tls_cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1) {
            bullc__err(err, BULLC_ECONN, "TLS: cannot load the client certificate %s: %s", o->tls_cert,
                       ssl_reason(why, sizeof why));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1) {
            const char *r = ssl_reason(why, sizeof why);
            if (strstr(r, "key values mismatch"))
                bullc__err(err, BULLC_ECONN, "TLS: the key %s does not belong to the certificate %s", o->tls_key,
                           o->tls_cert);
            else
                bullc__err(err, BULLC_ECONN, "TLS: cannot load the client key %s: %s", o->tls_key, r);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            bullc__err(err, BULLC_ECONN, "TLS: the key %s does not belong to the certificate %s", o->tls_key,
                       o->tls_cert);
            goto fail;
        }
    }
    SSL_CTX_set_verify(ctx, o->tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int bullc__tls_start(const bullc_redis_opts *o, int fd, SSL **out, bullc_error *err) {
    SSL_CTX *ctx = ctx_new(o, err);
    if (!ctx) return err ? err->code : BULLC_ECONN;
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    const char *name = check_name(o);
    bool ip = is_ip(name);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || (!ip && SSL_set_tlsext_host_name(ssl, name) != 1) ||
        (!o->tls_insecure &&
         (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1 : SSL_set1_host(ssl, name) != 1))) {
        char why[256];
        SSL_free(ssl);
        return bullc__err(err, BULLC_ENOMEM, "TLS: cannot set up the connection: %s", ssl_reason(why, sizeof why));
    }
    SSL_set_app_data(ssl, (void *)o->tls_words); /* io_err's hints, after the handshake */
    *out = ssl;
    return 0;
}

/* The error of a failed handshake, in the words of what failed. */
static int handshake_err(SSL *ssl, const bullc_redis_opts *o, int sslerr, bullc_error *err) {
    char why[256], wbuf[256];
    int saved = errno;
    const char *reason = ssl_reason(why, sizeof why), *at = where(o, wbuf, sizeof wbuf);
    const bullc__tls_words *w = words(o);
    long v = SSL_get_verify_result(ssl);
    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        return bullc__err(err, BULLC_ECONN, "TLS: the certificate of %s is not for host name '%s'%s", at, check_name(o),
                          w->server_name);
    if (v != X509_V_OK)
        return bullc__err(err, BULLC_ECONN,
                          "TLS: the certificate of %s was refused: %s (certificate verification failed; "
                          "%s names the CA that signed it)",
                          at, X509_verify_cert_error_string(v), w->ca);
    if (sslerr == SSL_ERROR_SYSCALL && !reason[0])
        return bullc__err(err, BULLC_ECONN,
                          "TLS handshake with %s failed: the server closed the connection%s%s (is it a TLS port?)", at,
                          saved ? ": " : "", saved ? strerror(saved) : "");
    bool plain = strstr(reason, "wrong version number") || strstr(reason, "packet length");
    bool want_cert = strstr(reason, "certificate required");
    return bullc__err(err, BULLC_ECONN, "TLS handshake with %s failed: %s%s%s%s", at, reason[0] ? reason : "error",
                      plain       ? " (the server does not speak TLS on that port: "
                      : want_cert ? " (the server wants a client certificate: "
                                  : "",
                      plain       ? w->plain
                      : want_cert ? w->client_cert
                                  : "",
                      plain || want_cert ? ")" : "");
}

int bullc__tls_handshake(SSL *ssl, const bullc_redis_opts *o, bullc_error *err) {
    ERR_clear_error();
    errno = 0;
    /* a failing handshake writes an alert to a peer that may have gone: on
       the libuv path too, a program embedding bullc must not die of it */
    bullc__sigpipe g;
    bullc__sigpipe_block(&g);
    int rc = SSL_connect(ssl);
    bullc__sigpipe_unblock(&g, rc != 1);
    if (rc == 1) return 0;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ) return 1;
    if (e == SSL_ERROR_WANT_WRITE) return 2;
    return handshake_err(ssl, o, e, err);
}

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int bullc__tls_connect(const bullc_redis_opts *o, int fd, int timeout_ms, SSL **out, bullc_error *err) {
    SSL *ssl;
    int rc = bullc__tls_start(o, fd, &ssl, err);
    if (rc) return rc;
    /* the handshake in non-blocking steps, so the connect timeout bounds it */
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int64_t deadline = now_ms() + timeout_ms;
    while ((rc = bullc__tls_handshake(ssl, o, err)) > 0) {
        struct pollfd p = {fd, rc == 1 ? POLLIN : POLLOUT, 0};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            char wbuf[256];
            rc = bullc__err(err, BULLC_ETIMEDOUT,
                            "TLS handshake with %s failed: no answer within %d ms (%s): "
                            "is it a TLS port? A plain port does not answer a TLS hello",
                            where(o, wbuf, sizeof wbuf), timeout_ms, words(o)->timeout);
            break;
        }
    }
    fcntl(fd, F_SETFL, flags);
    if (rc) {
        SSL_free(ssl);
        return rc;
    }
    *out = ssl;
    return 0;
}

/* The error of a failed read or write after the handshake. TLS 1.3 sends a
 * refusal of the client's certificate after the client's handshake is done,
 * so it surfaces here. */
static int io_err(SSL *ssl, int rc, const char *doing, bullc_error *err) {
    char why[256];
    const bullc__tls_words *w = SSL_get_app_data(ssl);
    const char *cc = (w ? w : &redis_words)->client_cert;
    int e = SSL_get_error(ssl, rc), saved = errno;
    const char *reason = ssl_reason(why, sizeof why);
    /* A server that requires a client certificate may reset the connection
     * before its alert is read: without one of ours, say so. */
    bool mine = SSL_get_certificate(ssl);
    const char *hint = mine ? "" : " (if the server requires client certificates: ";
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !reason[0] && !saved))
        return bullc__err(err, BULLC_ECONN, "TLS: the server closed the connection%s%s%s", hint, mine ? "" : cc,
                          mine ? "" : ")");
    bool reset = saved == ECONNRESET || saved == EPIPE;
    if (e == SSL_ERROR_SYSCALL && !reason[0])
        return bullc__err(err, BULLC_ECONN, "TLS: %s failed: %s%s%s%s", doing, strerror(saved), reset ? hint : "",
                          reset && !mine ? cc : "", reset && !mine ? ")" : "");
    bool want_cert = strstr(reason, "certificate required");
    return bullc__err(err, BULLC_ECONN, "TLS: %s failed: %s%s%s%s", doing, reason,
                      want_cert ? " (the server wants a client certificate: " : "", want_cert ? cc : "",
                      want_cert ? ")" : "");
}

ssize_t bullc__tls_read(SSL *ssl, char *buf, size_t n, bool *want_write, bullc_error *err) {
    bullc__sigpipe g;
    bullc__sigpipe_block(&g);
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read(ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
    int e = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc);
    bullc__sigpipe_unblock(&g, rc <= 0);
    if (want_write) *want_write = e == SSL_ERROR_WANT_WRITE;
    if (rc > 0) return rc;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    return io_err(ssl, rc, "read", err);
}

ssize_t bullc__tls_write(SSL *ssl, const char *buf, size_t n, bullc_error *err) {
    bullc__sigpipe g;
    bullc__sigpipe_block(&g);
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write(ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
    int e = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc);
    bullc__sigpipe_unblock(&g, rc <= 0);
    if (rc > 0) return rc;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    return io_err(ssl, rc, "write", err);
}

bool bullc__tls_alive(SSL *ssl, int fd) {
    /* Readable between calls: TLS 1.3 session tickets (the server sends them
     * after the handshake), or a close. Reading without blocking consumes
     * the former and tells the latter. */
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    char b;
    ERR_clear_error();
    bullc__sigpipe g; /* SSL_peek may answer a key update: a write */
    bullc__sigpipe_block(&g);
    int rc = SSL_peek(ssl, &b, 1);
    bullc__sigpipe_unblock(&g, rc <= 0);
    int e = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc);
    ERR_clear_error();
    fcntl(fd, F_SETFL, flags);
    /* data nobody asked for would be read as the next command's reply */
    return e == SSL_ERROR_WANT_READ;
}

size_t bullc__tls_pending(SSL *ssl) { return (size_t)SSL_pending(ssl); }

void bullc__tls_free(SSL *ssl) { SSL_free(ssl); }
