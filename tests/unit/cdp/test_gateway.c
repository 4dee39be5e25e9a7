/* The CDP gateway (src/cdp/gateway*.c) with its real parts: a real SQLite store in a temporary
 * file, the catalog, Debian's Chromium behind the supervisor, and a WebSocket client on
 * loopback written here with browserd's own codec (client role: masked frames out).
 *
 * The gateway's loop runs in a thread of its own; the test thread is the blocking client, with
 * receive timeouts so that a bug fails a test instead of hanging it. What must happen on the
 * loop thread (ending a session through the API's function, stopping) is posted to it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cdp/browser.h"
#include "cdp/gateway.h"
#include "cdp/supervisor.h"
#include "core/uuid.h"
#include "store/store.h"
#include "ws/ws_codec.h"
#include "../support/loop_thread.h"

#define WAIT_SECONDS 20
#define CUSTOMER "c1"
#define ZONE "z1"

static char base_dir[64];

typedef struct {
    loop_thread_t lt;
    bool stopped;
    store_t *store;
    catalog_t *catalog;
    gateway_t *gw;
    int port;
    char password[STORE_PASSWORD_LEN + 1];
    char db[128];
} fixture_t;

static void run_on_loop(fixture_t *fx, loop_thread_fn fn, void *arg) {
    if (!loop_thread_run(&fx->lt, fn, arg)) fail_msg("loop command did not run");
}

static void on_gateway_stopped(void *arg) {
    fixture_t *fx = arg;
    pthread_mutex_lock(&fx->lt.mutex);
    fx->stopped = true;
    pthread_mutex_unlock(&fx->lt.mutex);
    loop_thread_release(&fx->lt); /* the loop may end now */
}

static void stop_gateway(void *owner, void *arg) {
    fixture_t *fx = owner;
    (void)arg;
    gateway_stop(fx->gw, on_gateway_stopped, fx);
}

/* A gateway on a free loopback port; max_sessions and queue timeout as the test needs. */
static fixture_t *fixture_start(unsigned max_sessions, uint64_t queue_timeout_ms) {
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    static int n;
    snprintf(fx->db, sizeof fx->db, "%s/gw%d.db", base_dir, n++);
    char err[256] = "", key[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1];
    assert_int_equal(store_open(fx->db, &fx->store, err, sizeof err), 0);
    assert_int_equal(store_customer_add(fx->store, CUSTOMER, err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, CUSTOMER, ZONE, fx->password, err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, CUSTOMER, key, key_id, err, sizeof err), 0);
    fx->catalog = catalog_new();
    assert_non_null(fx->catalog);
    assert_int_equal(loop_thread_init(&fx->lt, fx, WAIT_SECONDS), 0);
    gateway_config_t cfg;
    gateway_config_defaults(&cfg);
    cfg.loop = &fx->lt.loop;
    cfg.store = fx->store;
    cfg.catalog = fx->catalog;
    cfg.port = 0;
    cfg.pool_size = 0; /* every session launches its own browser: nothing runs between tests */
    cfg.max_sessions = max_sessions;
    cfg.queue_timeout_ms = queue_timeout_ms;
    cfg.worker_id = "test-worker";
    const char *chromium = getenv("BROWSERD_TEST_CHROMIUM");
    if (chromium && *chromium) cfg.chromium_path = chromium;
    assert_int_equal(gateway_start(&cfg, &fx->gw), 0);
    fx->port = gateway_port(fx->gw);
    assert_int_equal(loop_thread_start(&fx->lt), 0);
    return fx;
}

/* Stops the gateway (running sessions end with worker_disconnect) and waits for its loop. */
static void fixture_stop_gateway(fixture_t *fx) {
    run_on_loop(fx, stop_gateway, NULL);
    assert_int_equal(loop_thread_join(&fx->lt), 0); /* nothing of the gateway is left on the loop */
    assert_true(fx->stopped);
    gateway_free(fx->gw);
}

static void fixture_free(fixture_t *fx) {
    catalog_free(fx->catalog);
    store_close(fx->store);
    unlink(fx->db);
    free(fx);
}

static void fixture_stop(fixture_t *fx) {
    fixture_stop_gateway(fx);
    fixture_free(fx);
}

/* ---------------------------------------------------------------- records ---- */

typedef struct {
    session_record_t rec;
    bool found;
} last_record_t;

static int keep_last(void *ctx, const char *customer, const session_record_t *rec) {
    last_record_t *l = ctx;
    assert_string_equal(customer, CUSTOMER);
    session_record_free(&l->rec);
    assert_int_equal(session_record_copy(&l->rec, rec), 0);
    l->found = true;
    return 0;
}

/* Waits for the store to hold a session in a final state (the last one changed), copies it. */
static void wait_final_record(fixture_t *fx, last_record_t *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < WAIT_SECONDS * 20; i++) {
        int64_t last;
        last_record_t l = {0};
        assert_int_equal(store_sessions_since(fx->store, 0, &last, keep_last, &l), 0);
        if (l.found && l.rec.status != SESSION_RUNNING) {
            *out = l;
            return;
        }
        session_record_free(&l.rec);
        usleep(50 * 1000);
    }
    fail_msg("no final session record within %d s", WAIT_SECONDS);
}

/* ---------------------------------------------------------------- a WebSocket client ---- */

typedef struct {
    int fd;
    ws_reader_t reader;
    char head[2048]; /* the HTTP response head */
    int status;
    char buf[65536]; /* read from the socket, buf[off, len) not fed to the reader yet */
    size_t off, len;
} client_t;

static int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = WAIT_SECONDS};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        assert_true(w > 0);
        c += w;
        n -= (size_t)w;
    }
}

/* The gateway's child processes (browsers, the version probe) end while this thread waits:
 * their SIGCHLD may interrupt it. */
static ssize_t recv_retry(int fd, void *buf, size_t len, int flags) {
    ssize_t r;
    do r = recv(fd, buf, len, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(const char *in, char *out) {
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Sends a request head and reads the response head; what follows it waits in c->buf. */
static void http_exchange(client_t *c, const char *request) {
    send_all(c->fd, request, strlen(request));
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        assert_true(got < sizeof c->head - 1);
        ssize_t r = recv_retry(c->fd, c->head + got, sizeof c->head - 1 - got, 0);
        if (r <= 0) fail_msg("the connection ended before a response head (%zd)", r);
        got += (size_t)r;
        c->head[got] = '\0';
        end = strstr(c->head, "\r\n\r\n");
    }
    assert_int_equal(sscanf(c->head, "HTTP/1.1 %d", &c->status), 1);
    size_t head_len = (size_t)(end + 4 - c->head);
    memcpy(c->buf, c->head + head_len, got - head_len);
    c->off = 0;
    c->len = got - head_len;
    c->head[head_len] = '\0';
    ws_reader_config_t rc = {.role = WS_ROLE_CLIENT};
    ws_reader_init(&c->reader, &rc);
}

/* Connects with the given user:password (NULL: no Authorization) and upgrades. */
static void client_open(client_t *c, int port, const char *user_pass) {
    memset(c, 0, sizeof *c);
    c->fd = tcp_connect(port);
    char auth[512] = "";
    if (user_pass) {
        char enc[400];
        base64(user_pass, enc);
        snprintf(auth, sizeof auth, "Authorization: Basic %s\r\n", enc);
    }
    char req[1024];
    snprintf(req, sizeof req,
             "GET /devtools/browser/x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             port, auth);
    http_exchange(c, req);
}

static void client_open_ok(client_t *c, fixture_t *fx) {
    char up[128];
    snprintf(up, sizeof up, "brd-customer-%s-zone-%s:%s", CUSTOMER, ZONE, fx->password);
    client_open(c, fx->port, up);
    assert_int_equal(c->status, 101);
    assert_non_null(strstr(c->head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

static void client_send_frame(client_t *c, ws_opcode_t op, const char *payload, size_t len) {
    static const uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t head[WS_MAX_HEADER];
    size_t hl = ws_frame_header(head, op, true, len, mask);
    char *masked = malloc(len + 1);
    assert_non_null(masked);
    ws_mask((uint8_t *)masked, (const uint8_t *)payload, len, mask, 0);
    send_all(c->fd, head, hl);
    send_all(c->fd, masked, len);
    free(masked);
}

static void client_send(client_t *c, const char *text) { client_send_frame(c, WS_OP_TEXT, text, strlen(text)); }

/* The next event from the server: a message (malloc'ed into *msg), a close (*close_code), or
 * WS_EV_NONE when the connection ended without a close frame. */
static ws_event_type_t client_next(client_t *c, char **msg, uint16_t *close_code) {
    for (;;) {
        if (c->off == c->len) {
            ssize_t r = recv_retry(c->fd, c->buf, sizeof c->buf, 0);
            if (r <= 0) return WS_EV_NONE;
            c->off = 0;
            c->len = (size_t)r;
        }
        ws_event_t ev;
        c->off += ws_reader_feed(&c->reader, c->buf + c->off, c->len - c->off, &ev);
        switch (ev.type) {
        case WS_EV_MESSAGE: *msg = (char *)ev.data; return WS_EV_MESSAGE;
        case WS_EV_CLOSE: *close_code = ev.close_code; return WS_EV_CLOSE;
        case WS_EV_ERROR: fail_msg("bad frame from the gateway: %s", ev.reason); return WS_EV_ERROR;
        default: break; /* more bytes needed, or a ping/pong */
        }
    }
}

/* The next message whose text contains `needle` (events before it are skipped). */
static char *client_wait_message(client_t *c, const char *needle) {
    for (int i = 0; i < 200; i++) {
        char *msg = NULL;
        uint16_t code = 0;
        ws_event_type_t t = client_next(c, &msg, &code);
        if (t != WS_EV_MESSAGE) fail_msg("the session ended (close %u) before a message with %s", code, needle);
        if (strstr(msg, needle)) return msg;
        free(msg);
    }
    fail_msg("no message with %s", needle);
    return NULL;
}

/* Reads until the server's close frame; returns its code (0: closed without one). */
static uint16_t client_wait_close(client_t *c) {
    for (int i = 0; i < 1000; i++) {
        char *msg = NULL;
        uint16_t code = 0;
        ws_event_type_t t = client_next(c, &msg, &code);
        if (t == WS_EV_MESSAGE) {
            free(msg);
            continue;
        }
        return t == WS_EV_CLOSE ? code : 0;
    }
    return 0;
}

static void client_close(client_t *c) {
    ws_reader_free(&c->reader);
    close(c->fd);
}

/* ---------------------------------------------------------------- tests ---- */

static void test_an_upgrade_without_credentials_is_407_and_records_nothing(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(2, 1000);
    client_t c;
    client_open(&c, fx->port, NULL);
    assert_int_equal(c.status, 407);
    assert_non_null(strstr(c.head, "Proxy-Authenticate: Basic"));
    client_close(&c);
    int64_t seq;
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 0);
    fixture_stop(fx);
}

static void test_a_wrong_password_or_unknown_zone_is_403(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(2, 1000);
    client_t c;
    client_open(&c, fx->port, "brd-customer-c1-zone-z1:wrong");
    assert_int_equal(c.status, 403);
    assert_non_null(strstr(c.head, "Content-Type: application/json"));
    client_close(&c);
    client_open(&c, fx->port, "brd-customer-c1-zone-nope:pw");
    assert_int_equal(c.status, 403);
    client_close(&c);
    client_open(&c, fx->port, "not-a-zone-user:pw");
    assert_int_equal(c.status, 403);
    client_close(&c);
    fixture_stop(fx);
}

static void test_json_version_points_back_at_the_gateway_with_the_callers_credentials(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(2, 1000);
    client_t c;
    memset(&c, 0, sizeof c);
    c.fd = tcp_connect(fx->port);
    char enc[128], req[512];
    base64("brd-customer-c1-zone-z1:p@ss", enc);
    snprintf(req, sizeof req, "GET /json/version HTTP/1.1\r\nHost: gw.example:9222\r\nAuthorization: Basic %s\r\n\r\n",
             enc);
    send_all(c.fd, req, strlen(req));
    char resp[2048] = "";
    size_t got = 0;
    while (!strstr(resp, "browserd\"}") && got < sizeof resp - 1) {
        ssize_t r = recv_retry(c.fd, resp + got, sizeof resp - 1 - got, 0);
        assert_true(r > 0);
        got += (size_t)r;
        resp[got] = '\0';
    }
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(
        strstr(resp, "\"webSocketDebuggerUrl\":\"ws://brd-customer-c1-zone-z1:p%40ss@gw.example:9222/devtools/browser/browserd\""));
    close(c.fd);
    fixture_stop(fx);
}

static void test_commands_reach_chromium_and_the_session_is_recorded_finished(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(2, 1000);
    client_t c;
    client_open_ok(&c, fx);
    client_send(&c, "{\"id\":1,\"method\":\"Browser.getVersion\"}");
    char *reply = client_wait_message(&c, "\"id\":1,");
    assert_non_null(strstr(reply, "\"result\":{")); /* Chromium's own answer */
    assert_non_null(strstr(reply, "\"protocolVersion\":\"1.3\""));
    free(reply);
    client_send(&c, "{\"id\":2,\"method\":\"Browser.getSessionId\"}");
    reply = client_wait_message(&c, "\"id\":2,");
    char id[37] = "";
    const char *p = strstr(reply, "\"sessionId\":\"");
    assert_non_null(p);
    memcpy(id, p + 13, 36);
    free(reply);
    /* the id is usable at once: the API knows the session */
    int64_t last;
    last_record_t l = {0};
    assert_int_equal(store_sessions_since(fx->store, 0, &last, keep_last, &l), 0);
    assert_true(l.found);
    assert_string_equal(l.rec.session_id, id);
    assert_int_equal(l.rec.status, SESSION_RUNNING);
    session_record_free(&l.rec);
    client_send_frame(&c, WS_OP_CLOSE, "\x03\xe8", 2);
    assert_int_equal(client_wait_close(&c), WS_CLOSE_NORMAL);
    client_close(&c);
    last_record_t fin;
    wait_final_record(fx, &fin);
    assert_string_equal(fin.rec.session_id, id);
    assert_int_equal(fin.rec.status, SESSION_FINISHED);
    assert_string_equal(fin.rec.api_name, ZONE);
    assert_null(fin.rec.error_code);
    assert_true(fin.rec.duration_ms >= 0);
    session_record_free(&fin.rec);
    fixture_stop(fx);
}

static void test_a_negative_id_is_answered_by_browserd_and_not_forwarded(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(2, 1000);
    client_t c;
    client_open_ok(&c, fx);
    client_send(&c, "{\"id\":-1000,\"method\":\"Browser.getVersion\",\"sessionId\":\"S9\"}");
    char *reply = client_wait_message(&c, "\"id\":-1000,");
    assert_string_equal(reply, "{\"id\":-1000,\"error\":{\"code\":-32600,\"message\":\"browserd: negative message "
                               "ids are reserved\"},\"sessionId\":\"S9\"}");
    free(reply);
    /* the session goes on */
    client_send(&c, "{\"id\":3,\"method\":\"Browser.getVersion\"}");
    free(client_wait_message(&c, "\"id\":3,"));
    client_close(&c);
    fixture_stop(fx);
}

static void test_invalid_json_ends_the_session_with_1007_and_cdp_error(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(2, 1000);
    client_t c;
    client_open_ok(&c, fx);
    client_send(&c, "{\"id\":1,\"method\":\"Browser.getVersion\"");
    assert_int_equal(client_wait_close(&c), WS_CLOSE_INVALID_PAYLOAD);
    client_close(&c);
    last_record_t fin;
    wait_final_record(fx, &fin);
    assert_int_equal(fin.rec.status, SESSION_FAILED);
    assert_string_equal(fin.rec.error_code, "cdp_error");
    session_record_free(&fin.rec);
    fixture_stop(fx);
}

typedef struct {
    uint8_t id[16];
    int rc[2];
} kill_t;

static void kill_twice(void *owner, void *arg) {
    fixture_t *fx = owner;
    kill_t *k = arg;
    k->rc[0] = gateway_kill_session(fx->gw, CUSTOMER, k->id);
    k->rc[1] = gateway_kill_session(fx->gw, CUSTOMER, k->id);
}

static void test_killing_a_session_closes_it_with_1001_and_records_job_killed(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(2, 1000);
    client_t c;
    client_open_ok(&c, fx);
    client_send(&c, "{\"id\":2,\"method\":\"Browser.getSessionId\"}");
    char *reply = client_wait_message(&c, "\"id\":2,");
    const char *p = strstr(reply, "\"sessionId\":\"");
    assert_non_null(p);
    kill_t k = {0};
    assert_int_equal(uuid_parse(p + 13, 36, k.id), 0);
    free(reply);
    kill_t other = k;
    other.id[15] ^= 1;
    run_on_loop(fx, kill_twice, &other);
    assert_int_equal(other.rc[0], -ENOENT); /* no such session runs */
    run_on_loop(fx, kill_twice, &k);
    assert_int_equal(k.rc[0], 0);
    assert_int_equal(k.rc[1], -ENOENT); /* ended already */
    assert_int_equal(client_wait_close(&c), WS_CLOSE_GOING_AWAY);
    client_close(&c);
    last_record_t fin;
    wait_final_record(fx, &fin);
    assert_string_equal(fin.rec.error_code, "job_killed");
    session_record_free(&fin.rec);
    fixture_stop(fx);
}

static void test_a_client_that_waits_too_long_gets_503_and_a_client_timeout_record(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(1, 300);
    client_t first, second;
    client_open_ok(&first, fx);
    client_send(&first, "{\"id\":1,\"method\":\"Browser.getVersion\"}");
    free(client_wait_message(&first, "\"id\":1,"));
    char up[128];
    snprintf(up, sizeof up, "brd-customer-%s-zone-%s:%s", CUSTOMER, ZONE, fx->password);
    client_open(&second, fx->port, up); /* waits in the queue, then 503 */
    assert_int_equal(second.status, 503);
    assert_non_null(strstr(second.head, "Retry-After: 5"));
    client_close(&second);
    last_record_t fin;
    wait_final_record(fx, &fin);
    assert_string_equal(fin.rec.error_code, "client_timeout");
    assert_true(fin.rec.duration_ms >= 300);
    session_record_free(&fin.rec);
    client_close(&first);
    fixture_stop(fx);
}

static void test_stopping_ends_running_sessions_with_worker_disconnect(void **state) {
    (void)state;
    fixture_t *fx = fixture_start(2, 1000);
    client_t c;
    client_open_ok(&c, fx);
    client_send(&c, "{\"id\":1,\"method\":\"Browser.getVersion\"}");
    free(client_wait_message(&c, "\"id\":1,"));
    fixture_stop_gateway(fx); /* the store stays open: the record is read below */
    assert_int_equal(client_wait_close(&c), WS_CLOSE_GOING_AWAY);
    client_close(&c);
    last_record_t fin;
    wait_final_record(fx, &fin);
    assert_string_equal(fin.rec.error_code, "worker_disconnect");
    session_record_free(&fin.rec);
    fixture_free(fx);
}

static void remove_base(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base_dir);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], BROWSER_SUPERVISOR_COMMAND) == 0) return supervisor_main(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    snprintf(base_dir, sizeof base_dir, "/tmp/browserd-gw-test-XXXXXX");
    if (!mkdtemp(base_dir)) return 1;
    atexit(remove_base);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_upgrade_without_credentials_is_407_and_records_nothing),
        cmocka_unit_test(test_a_wrong_password_or_unknown_zone_is_403),
        cmocka_unit_test(test_json_version_points_back_at_the_gateway_with_the_callers_credentials),
        cmocka_unit_test(test_commands_reach_chromium_and_the_session_is_recorded_finished),
        cmocka_unit_test(test_a_negative_id_is_answered_by_browserd_and_not_forwarded),
        cmocka_unit_test(test_invalid_json_ends_the_session_with_1007_and_cdp_error),
        cmocka_unit_test(test_killing_a_session_closes_it_with_1001_and_records_job_killed),
        cmocka_unit_test(test_a_client_that_waits_too_long_gets_503_and_a_client_timeout_record),
        cmocka_unit_test(test_stopping_ends_running_sessions_with_worker_disconnect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
