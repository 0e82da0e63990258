/* SPDX-License-Identifier: MIT */
/* bullc-socket-client against bullc-fake-provider, on loopback: what lands
 * in Redis (data shape, order, options), reconnects after drops, bad
 * frames, dead connections, wss, flags. The Redis-failure cases are in
 * test_socket_client_redis.c. */
#include "test_socket_client_util.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) {
    sct_kill_all();
    redisFree(rc);
}
TestSuite(socket_client, .init = setup, .fini = teardown, .timeout = 60);

static char port_s[16];

/* The provider on a free port, with `extra` flags; waits for its listening line. */
static sct_proc *provider(const char *const *extra) {
    snprintf(port_s, sizeof port_s, "%d", tu_free_port());
    const char *args[40] = {"--port", port_s, "--duration", "50", "--sent-log", sct_path("sent.log")};
    int n = 6;
    for (int i = 0; extra[i]; i++) args[n++] = extra[i];
    args[n] = NULL;
    sct_proc *p = sct_spawn("bullc-fake-provider", "provider", args);
    cr_assert(sct_wait_for(p->out, "bullc-fake-provider listening", 1, 5000), "the provider did not start");
    return p;
}

static const char *ws_url(const char *scheme, const char *host) {
    static char url[128];
    snprintf(url, sizeof url, "%s://%s:%s/feed?token=sekrit", scheme, host, port_s);
    return url;
}

/* The client for the tests' Redis, prefix `prefix`, with `extra` flags. */
static sct_proc *client(const char *prefix, const char *url, const char *const *extra) {
    const char *args[48] = {"--url",
                            url,
                            "--provider",
                            "NAMED_POWERBALL",
                            "--subscribe",
                            "{\"op\":\"subscribe\",\"game\":\"powerball\"}",
                            "--redis",
                            tu_redis_url(),
                            "--prefix",
                            prefix,
                            "--stats-interval",
                            "0",
                            "--reconnect-min",
                            "50ms",
                            "--reconnect-max",
                            "400ms"};
    int n = 16;
    for (int i = 0; extra[i]; i++) args[n++] = extra[i];
    args[n] = NULL;
    return sct_spawn("bullc-socket-client", "client", args);
}

static bool has_number(const cJSON *o, const char *key, double v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) && x->valuedouble == v;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : "(not a string)";
}

Test(socket_client, rounds_become_game_data_jobs_in_order) {
    const char *p = tu_prefix();
    /* fragments of 50 bytes: every round (~140 bytes) comes in 3 pieces */
    sct_proc *fp = provider(
        (const char *const[]){"--count", "20", "--rate", "200", "--linger", "-1", "--fragment-bytes", "50", NULL});
    int64_t t0 = (int64_t)time(NULL) * 1000;
    sct_proc *sc = client(p, ws_url("ws", "127.0.0.1"), (const char *const[]){NULL});
    cr_assert(sct_wait_jobs(rc, p, 20, 10000), "20 jobs expected, %lld in Redis", sct_llen(rc, p, "test-queue"));
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0, "the client must exit 0 on SIGTERM");
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
    int64_t t1 = (int64_t)time(NULL) * 1000 + 1000;

    size_t n;
    sct_job *jobs = sct_jobs(rc, p, &n);
    cr_assert_eq(n, 20);
    for (size_t i = 0; i < n; i++) {
        const sct_job *j = &jobs[i];
        cr_assert_str_eq(j->name, "game_data");
        cr_assert_str_eq(str(j->data, "provider"), "NAMED_POWERBALL");
        cr_assert_str_eq(str(j->data, "messageType"), "round_result");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j->data, "timestamp");
        cr_assert(cJSON_IsNumber(ts) && ts->valuedouble >= (double)(t0 - 1000) && ts->valuedouble <= (double)t1,
                  "timestamp: the receive time in ms");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j->data, "data");
        cr_assert(cJSON_IsObject(d), "data: the parsed message");
        cr_assert_str_eq(str(d, "type"), "round_result");
        cr_assert_eq(sct_seq(j), (long long)i + 1, "job %lld holds seq %lld, expected %zu", j->id, sct_seq(j), i + 1);
        cr_assert(i == 0 || j->id > jobs[i - 1].id);
        /* the message's own text: 1.950 was not re-printed as 1.95 */
        cr_assert(strstr(j->raw, "\"odds\":1.950,"), "message text not kept as sent: %s", j->raw);
        static const char head[] = "{\"provider\":\"NAMED_POWERBALL\",\"data\":{\"type\":\"round_result\",";
        cr_assert(!strncmp(j->raw, head, sizeof head - 1), "data shape: %s", j->raw);
        cJSON *o = cJSON_Parse(j->opts);
        cr_assert(has_number(o, "removeOnComplete", 10) && has_number(o, "removeOnFail", 5), "opts: %s", j->opts);
        cJSON_Delete(o);
    }
    sct_jobs_free(jobs, n);

    /* the provider recorded the subscribe message; the client printed its
     * readiness line; the API key in the URL's query was never printed */
    const char *sub = "subscribe conn=1 msg=\"{\\\"op\\\":\\\"subscribe\\\",\\\"game\\\":\\\"powerball\\\"}\"";
    cr_assert(sct_wait_for(fp->out, sub, 1, 100), "the subscribe message was not recorded");
    char line[200];
    snprintf(line, sizeof line, "bullc-socket-client connected url=ws://127.0.0.1:%s/feed?... provider=NAMED_POWERBALL",
             port_s);
    cr_assert_eq(sct_count(sc->out, line), 1, "readiness line");
    cr_assert_eq(sct_count(sc->err, "sekrit") + sct_count(sc->out, "sekrit"), 0);
    cr_assert_eq(sct_field(sc->err, "exit code=", "added"), 20);
    /* SIGTERM closed the socket with a close frame, which the provider answered */
    cr_assert_eq(sct_count(sc->err, "peer_close code=1000 reason=shutdown answer_to_ours=true"), 1);
}

Test(socket_client, reconnects_after_drops_without_loss_or_doubles) {
    const char *p = tu_prefix();
    sct_proc *fp = provider(
        (const char *const[]){"--count", "200", "--rate", "400", "--drop-every", "25", "--linger", "-1", NULL});
    sct_proc *sc = client(p, ws_url("ws", "127.0.0.1"), (const char *const[]){NULL});
    cr_assert(sct_wait_jobs(rc, p, 200, 20000), "200 jobs expected, %lld", sct_llen(rc, p, "test-queue"));
    sct_sleep_ms(200); /* nothing more may come */
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0);
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);

    cJSON *sent = sct_sent_log(sct_path("sent.log"));
    cr_assert_eq(cJSON_GetArraySize(sent), 200);
    size_t n;
    sct_job *jobs = sct_jobs(rc, p, &n);
    cr_assert_eq(n, 200, "as many jobs as messages sent");
    /* the same messages in the same order: what each connection sent, one
     * connection after the other */
    for (size_t i = 0; i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(sent, (int)i);
        cr_assert_eq(sct_seq(&jobs[i]), (long long)cJSON_GetObjectItem(s, "seq")->valuedouble, "job %zu", i);
    }
    sct_jobs_free(jobs, n);
    cJSON_Delete(sent);
    /* 200 / 25 = 8 connections; the 8th was dropped too */
    cr_assert_geq(sct_count(sc->out, "bullc-socket-client connected"), 8);
    cr_assert_geq(sct_field(fp->out, "summary", "drops"), 7);
    cr_assert_geq(sct_count(sc->err, " reconnect "), 7, "reconnects are logged");
}

Test(socket_client, provider_signals_drop_and_report) {
    const char *p = tu_prefix();
    sct_proc *fp = provider((const char *const[]){"--rate", "200", "--count", "0", NULL});
    sct_proc *sc = client(p, ws_url("ws", "127.0.0.1"), (const char *const[]){NULL});
    cr_assert(sct_wait_jobs(rc, p, 20, 10000));
    kill(fp->pid, SIGUSR1); /* drop every connection now */
    cr_assert(sct_wait_for(sc->out, "bullc-socket-client connected", 2, 5000), "no reconnect after SIGUSR1");
    cr_assert(sct_wait_jobs(rc, p, 60, 10000));
    kill(fp->pid, SIGUSR2); /* the summary, without stopping */
    cr_assert(sct_wait_for(fp->out, "summary sent=", 1, 2000));
    cr_assert_eq(sct_field(fp->out, "summary", "drops"), 1);
    cr_assert(!sct_poll_exit(fp), "SIGUSR2 must not stop the provider");
    /* the provider stops first: everything it sent is in Redis */
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
    long long sent = sct_field(fp->out, "summary", "sent");
    cr_assert(sct_wait_jobs(rc, p, sent, 5000));
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0);
    size_t n;
    sct_job *jobs = sct_jobs(rc, p, &n);
    cr_assert_eq((long long)n, sent);
    for (size_t i = 0; i < n; i++) cr_assert_eq(sct_seq(&jobs[i]), (long long)i + 1);
    sct_jobs_free(jobs, n);
}

Test(socket_client, bad_messages_are_kept_as_text_or_counted) {
    const char *p = tu_prefix();
    sct_proc *fp = provider((const char *const[]){"--count", "30", "--rate", "400", "--bad-every", "5", "--bad-kinds",
                                                  "text,binary,oversized,untyped,inject,bignum", "--oversize-bytes",
                                                  "200000", "--fragment-bytes", "4096", "--linger", "-1", NULL});
    sct_proc *sc = client(p, ws_url("ws", "127.0.0.1"), (const char *const[]){"--max-message-bytes", "65536", NULL});
    /* 30 rounds, and after every 5 one of the six other kinds, in turn */
    cr_assert(sct_wait_for(sct_path("sent.log"), "\"kind\"", 36, 10000), "the provider sent less than expected");
    cr_assert(sct_wait_jobs(rc, p, 34, 10000), "34 jobs expected (all but binary and oversized), %lld",
              sct_llen(rc, p, "test-queue"));
    sct_sleep_ms(200);
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0);
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);

    cJSON *sent = sct_sent_log(sct_path("sent.log"));
    size_t n, k = 0;
    sct_job *jobs = sct_jobs(rc, p, &n);
    cr_assert_eq(n, 34);
    for (int i = 0; i < cJSON_GetArraySize(sent); i++) {
        const cJSON *s = cJSON_GetArrayItem(sent, i);
        const char *kind = str(s, "kind");
        if (!strcmp(kind, "binary") || !strcmp(kind, "oversized")) continue; /* no job */
        cr_assert(k < n);
        const sct_job *j = &jobs[k++];
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j->data, "data");
        if (!strcmp(kind, "round")) {
            cr_assert_eq(sct_seq(j), (long long)cJSON_GetObjectItem(s, "seq")->valuedouble);
            cr_assert_str_eq(str(j->data, "messageType"), "round_result");
        } else if (!strcmp(kind, "text") || !strcmp(kind, "inject")) {
            /* not JSON (alone): the raw text, as a JSON string, byte for byte;
             * the injected members did not become the job's */
            cr_assert(cJSON_IsString(d), "%s message: data must be the raw text: %s", kind, j->raw);
            cr_assert_str_eq(d->valuestring, str(s, "text"));
            cr_assert_str_eq(str(j->data, "messageType"), "game_data");
            cr_assert_eq(cJSON_GetArraySize(j->data), 4, "provider, data, timestamp, messageType: %s", j->raw);
        } else if (!strcmp(kind, "bignum")) {
            /* numbers exactly as sent, which cJSON or JSON.parse would change */
            cr_assert(strstr(j->raw, "\"big\":12345678901234567890,\"small\":1e-7,\"f\":1.10,"), "%s", j->raw);
            cr_assert_str_eq(str(j->data, "messageType"), "bignum");
        } else {
            /* JSON whose type is not a string */
            cr_assert(cJSON_IsObject(d) && has_number(d, "type", 7), "untyped: %s", j->raw);
            cr_assert_str_eq(str(j->data, "messageType"), "game_data");
        }
    }
    cr_assert_eq(k, n);
    sct_jobs_free(jobs, n);
    cJSON_Delete(sent);
    cr_assert_eq(sct_field(sc->err, "exit code=", "ignored_binary"), 1);
    cr_assert_eq(sct_field(sc->err, "exit code=", "dropped_oversized"), 1);
    cr_assert_eq(sct_field(sc->err, "exit code=", "received"), 34);
    cr_assert_eq(sct_count(sc->err, "binary_ignored"), 1, "a log line per binary message");
    cr_assert_eq(sct_count(sc->err, "oversized_dropped"), 1, "a log line per oversized message");
    cr_assert_eq(sct_count(sc->out, "bullc-socket-client connected"), 1, "bad frames do not cost the connection");
}

Test(socket_client, job_name_type_field_and_job_opts_flags) {
    const char *p = tu_prefix();
    sct_proc *fp = provider((const char *const[]){"--count", "3", "--rate", "100", "--linger", "-1", NULL});
    sct_proc *sc = client(p, ws_url("ws", "127.0.0.1"),
                          (const char *const[]){"--job-name", "round", "--type-field", "provider",
                                                "--remove-on-complete", "{\"count\":100,\"age\":3600}", "--job-opts",
                                                "{\"attempts\":3}", "--dedup-ttl", "0", NULL});
    cr_assert(sct_wait_jobs(rc, p, 3, 10000));
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0);
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
    size_t n;
    sct_job *jobs = sct_jobs(rc, p, &n);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(jobs[0].name, "round");
    cr_assert_str_eq(str(jobs[0].data, "messageType"), "NAMED_POWERBALL");
    cJSON *o = cJSON_Parse(jobs[0].opts);
    const cJSON *roc = cJSON_GetObjectItemCaseSensitive(o, "removeOnComplete");
    cr_assert(has_number(roc, "count", 100) && has_number(roc, "age", 3600), "%s", jobs[0].opts);
    cr_assert(has_number(o, "removeOnFail", 5) && has_number(o, "attempts", 3), "%s", jobs[0].opts);
    cr_assert(!cJSON_HasObjectItem(o, "de") && !cJSON_HasObjectItem(o, "deduplication"),
              "--dedup-ttl 0: no deduplication id: %s", jobs[0].opts);
    cJSON_Delete(o);
    sct_jobs_free(jobs, n);
}

Test(socket_client, dead_connection_is_dropped_and_reconnected) {
    const char *p = tu_prefix();
    /* after 5 rounds a connection stalls: no data, no pong (it is not read) */
    sct_proc *fp =
        provider((const char *const[]){"--count", "10", "--rate", "100", "--stall-after", "5", "--linger", "-1", NULL});
    sct_proc *sc = client(p, ws_url("ws", "127.0.0.1"),
                          (const char *const[]){"--ping-interval", "100ms", "--dead-timeout", "700ms", NULL});
    cr_assert(sct_wait_jobs(rc, p, 10, 10000), "10 jobs expected, %lld", sct_llen(rc, p, "test-queue"));
    cr_assert(sct_wait_for(sc->out, "bullc-socket-client connected", 2, 100));
    cr_assert_geq(sct_count(sc->err, " dead "), 1, "the dead connection is logged");
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0);
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
    size_t n;
    sct_job *jobs = sct_jobs(rc, p, &n);
    cr_assert_eq(n, 10);
    for (size_t i = 0; i < n; i++) cr_assert_eq(sct_seq(&jobs[i]), (long long)i + 1);
    sct_jobs_free(jobs, n);
}

Test(socket_client, wss_verified_by_ca_file_or_insecure) {
    char cmd[1600];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s -out %s 2>/dev/null",
             sct_path("key.pem"), sct_path("cert.pem"));
    cr_assert_eq(tu_run(cmd, NULL), 0, "openssl could not make a certificate");
    char cert[600], key[600];
    snprintf(cert, sizeof cert, "%s", sct_path("cert.pem"));
    snprintf(key, sizeof key, "%s", sct_path("key.pem"));
    sct_proc *fp =
        provider((const char *const[]){"--count", "0", "--rate", "100", "--tls-cert", cert, "--tls-key", key, NULL});
    /* the system CA store does not know this certificate: no connection */
    sct_proc *strict = client(tu_prefix(), ws_url("wss", "127.0.0.1"), (const char *const[]){NULL});
    cr_assert(sct_wait_for(strict->err, "connect_failed", 1, 5000), "an unknown CA must be refused");
    cr_assert_eq(sct_stop(strict, SIGTERM, 10000), 0);
    cr_assert_eq(sct_count(strict->out, "connected"), 0);
    /* --ca-file trusts it, and the host name is checked against it */
    const char *p1 = tu_prefix();
    sct_proc *ca = client(p1, ws_url("wss", "localhost"), (const char *const[]){"--ca-file", cert, NULL});
    cr_assert(sct_wait_jobs(rc, p1, 3, 10000), "jobs expected over wss with --ca-file, %lld",
              sct_llen(rc, p1, "test-queue"));
    cr_assert_eq(sct_stop(ca, SIGTERM, 10000), 0);
    cr_assert_eq(sct_count(ca->out, "connected url=wss://localhost"), 1);
    /* --insecure accepts it without a CA */
    const char *p2 = tu_prefix();
    sct_proc *sc = client(p2, ws_url("wss", "127.0.0.1"), (const char *const[]){"--insecure", NULL});
    cr_assert(sct_wait_jobs(rc, p2, 3, 10000), "jobs expected over wss with --insecure, %lld",
              sct_llen(rc, p2, "test-queue"));
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0);
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
    cr_assert_eq(sct_count(sc->out, "connected url=wss://127.0.0.1"), 1);
}

Test(socket_client, flags_and_exit_codes) {
    char cmd[1200], *out;
    const char *bin = tu_bin("bullc-socket-client");
    char b[600];
    snprintf(b, sizeof b, "%s", bin);
    snprintf(cmd, sizeof cmd, "%s --provider X 2>&1", b);
    cr_assert_eq(tu_run(cmd, &out), 2, "no --url: usage");
    cr_assert(strstr(out, "--url is required"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --url ws://127.0.0.1:1/ --provider X --subscribe '{nope' 2>&1", b);
    cr_assert_eq(tu_run(cmd, &out), 2, "bad --subscribe JSON: usage");
    free(out);
    snprintf(cmd, sizeof cmd, "%s --url http://x/ --provider X 2>&1", b);
    cr_assert_eq(tu_run(cmd, &out), 2);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --url ws://x/ --provider X --job-opts '{\"attempts\":\"many\"}' 2>&1", b);
    cr_assert_eq(tu_run(cmd, &out), 2, "bad job options: usage");
    free(out);
    snprintf(cmd, sizeof cmd, "%s --url ws://x/ --provider X --ping-interval 5parsecs 2>&1", b);
    cr_assert_eq(tu_run(cmd, &out), 2);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --help", b);
    cr_assert_eq(tu_run(cmd, &out), 0);
    cr_assert(strstr(out, "Exit codes"));
    free(out);
    /* a misspelled last flag is named as unknown, not as missing its value */
    snprintf(cmd, sizeof cmd, "%s --rate 5 --prot 2>&1", tu_bin("bullc-fake-provider"));
    cr_assert_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_assert(strstr(out, "unknown flag --prot"), "%s", out);
    free(out);
    /* --require-redis with nothing listening: 3, and the password is not printed */
    snprintf(cmd, sizeof cmd,
             "%s --url ws://127.0.0.1:1/ --provider X --require-redis --redis redis://:hunter2@127.0.0.1:%d 2>&1", b,
             tu_free_port());
    cr_assert_eq(tu_run(cmd, &out), 3, "%s", out);
    cr_assert(!strstr(out, "hunter2"), "the password was printed: %s", out);
    cr_assert(strstr(out, "***"), "%s", out);
    free(out);
    /* a refused password is exit 3 even without --require-redis */
    const char *auth = getenv("BULLC_TEST_AUTH_PORT");
    if (auth) {
        snprintf(cmd, sizeof cmd, "%s --url ws://127.0.0.1:1/ --provider X --redis redis://:wrong@127.0.0.1:%s 2>&1", b,
                 auth);
        cr_assert_eq(tu_run(cmd, &out), 3, "%s", out);
        cr_assert(!strstr(out, "wrong@"), "%s", out);
        free(out);
    }
}
