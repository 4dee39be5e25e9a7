/* The HTTP server over real loopback sockets. The libuv loop runs in its own thread; the test
 * thread is a blocking client (with a receive timeout so that a bug fails a test instead of
 * hanging it). Whatever must happen on the loop thread (stopping the server, answering a held
 * request) is posted to it and waited for. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http_server.h"
#include "../support/loop_thread.h"

#define WAIT_SECONDS 5

/* ---- the server under test, on its loop thread --------------------------------------- */

typedef struct fixture fixture_t;

struct fixture {
    loop_thread_t lt; /* its mutex and condition also guard the fields below */
    bool started;
    http_server_t *srv;
    int port;

    unsigned requests_seen; /* requests the handler received */
    bool stop_requested;    /* http_server_stop was called (test thread's view) */
    bool stopped;           /* on_stopped was called */
    bool takeover_failed;   /* "/takeover" could not take the socket over */

    /* The one request held by "/hold" until the test releases it (loop thread only). */
    http_conn_t *held_conn;
    const http_request_t *held_req;
};

static void deadline_in(struct timespec *ts, int seconds) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += seconds;
}

/* Runs fn on the loop thread and waits until it has returned. */
static void run_on_loop(fixture_t *fx, loop_thread_fn fn, void *arg) {
    if (!loop_thread_run(&fx->lt, fn, arg)) fail_msg("loop command did not run");
}

static void wait_requests_seen(fixture_t *fx, unsigned count) {
    struct timespec deadline;
    deadline_in(&deadline, WAIT_SECONDS);
    pthread_mutex_lock(&fx->lt.mutex);
    int rc = 0;
    while (fx->requests_seen < count && rc == 0) rc = pthread_cond_timedwait(&fx->lt.cond, &fx->lt.mutex, &deadline);
    unsigned seen = fx->requests_seen;
    pthread_mutex_unlock(&fx->lt.mutex);
    if (seen < count) fail_msg("the handler saw %u requests, expected %u", seen, count);
}

typedef struct {
    uv_timer_t timer;
    http_conn_t *conn;
    char path[64];
} delayed_response_t;

static void on_delayed_closed(uv_handle_t *handle) { free(handle->data); }

static void on_delay_elapsed(uv_timer_t *timer) {
    delayed_response_t *d = timer->data;
    char json[128];
    snprintf(json, sizeof json, "{\"path\":\"%s\",\"async\":true}", d->path);
    http_respond_json(d->conn, 200, NULL, json);
    uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

static void respond_echo_path(http_conn_t *conn, const http_request_t *req) {
    char json[512];
    snprintf(json, sizeof json, "{\"path\":\"%s\",\"query\":\"%s\"}", req->path, req->query ? req->query : "");
    http_respond_json(conn, 200, NULL, json);
}

static void handler(void *ctx, http_conn_t *conn, const http_request_t *req) {
    fixture_t *fx = ctx;
    pthread_mutex_lock(&fx->lt.mutex);
    fx->requests_seen++;
    pthread_cond_broadcast(&fx->lt.cond);
    pthread_mutex_unlock(&fx->lt.mutex);

    if (strcmp(req->path, "/hello") == 0) {
        respond_echo_path(conn, req);
    } else if (strcmp(req->path, "/echo") == 0) {
        char *body = malloc(req->body_len + 1);
        memcpy(body, req->body, req->body_len + 1);
        http_respond(conn, 200, "X-Echo: yes\r\n", body, req->body_len, false);
    } else if (strcmp(req->path, "/async") == 0) {
        delayed_response_t *d = calloc(1, sizeof *d);
        d->conn = conn;
        snprintf(d->path, sizeof d->path, "%s", req->path);
        uv_timer_init(&fx->lt.loop, &d->timer);
        d->timer.data = d;
        uint64_t ms = req->query ? strtoull(req->query + strlen("ms="), NULL, 10) : 10;
        uv_timer_start(&d->timer, on_delay_elapsed, ms, 0);
    } else if (strcmp(req->path, "/hold") == 0) {
        if (fx->held_conn) { /* one slot; cmocka asserts must not run on this thread */
            http_respond_json(conn, 500, NULL, "{\"error\":\"already holding\"}");
            return;
        }
        fx->held_conn = conn;
        fx->held_req = req;
    } else if (strcmp(req->path, "/big") == 0) {
        size_t len = 256 * 1024;
        char *body = malloc(len);
        memset(body, 'b', len);
        http_respond(conn, 200, NULL, body, len, false);
    } else if (strcmp(req->path, "/takeover") == 0) {
        /* A WebSocket-like upgrade: the new owner writes on its own descriptor, bytes already
         * read after the request included. */
        int fd = -1;
        char *rest = NULL;
        size_t rest_len = 0;
        if (http_conn_take_over(conn, &fd, &rest, &rest_len) == 0) {
            char out[256];
            int n = snprintf(out, sizeof out, "HTTP/1.1 101 Switching Protocols\r\n\r\nrest=%.*s", (int)rest_len,
                             rest ? rest : "");
            if (write(fd, out, (size_t)n) != n) fx->takeover_failed = true;
            close(fd);
        } else {
            fx->takeover_failed = true;
        }
        free(rest);
    } else if (strcmp(req->path, "/nocontent") == 0) {
        http_respond(conn, 204, NULL, NULL, 0, false);
    } else if (strcmp(req->path, "/bye") == 0) {
        char *body = strdup("{\"bye\":true}");
        http_respond(conn, 200, NULL, body, strlen(body), true);
    } else {
        http_respond_json(conn, 404, NULL, "{\"error\":\"Not found\"}");
    }
}

/* Answers the held request; its request data must still be intact (ASan checks the reads). */
static void release_held(void *owner, void *arg) {
    fixture_t *fx = owner;
    (void)arg;
    assert_non_null(fx->held_conn);
    http_conn_t *conn = fx->held_conn;
    const http_request_t *req = fx->held_req;
    fx->held_conn = NULL;
    fx->held_req = NULL;
    respond_echo_path(conn, req);
}

static void on_server_stopped(void *arg) {
    fixture_t *fx = arg;
    pthread_mutex_lock(&fx->lt.mutex);
    fx->stopped = true;
    pthread_cond_broadcast(&fx->lt.cond);
    pthread_mutex_unlock(&fx->lt.mutex);
    loop_thread_release(&fx->lt); /* the last handle: uv_run returns */
}

static void stop_server(void *owner, void *arg) {
    fixture_t *fx = owner;
    (void)arg;
    http_server_stop(fx->srv, on_server_stopped, fx);
}

static void fixture_start(fixture_t *fx, const http_server_config_t *overrides) {
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    if (overrides) cfg = *overrides;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    assert_int_equal(loop_thread_init(&fx->lt, fx, WAIT_SECONDS), 0);
    assert_int_equal(http_server_start(&fx->lt.loop, &cfg, handler, fx, &fx->srv), 0);
    fx->port = http_server_port(fx->srv);
    assert_true(fx->port > 0);
    assert_int_equal(loop_thread_start(&fx->lt), 0);
    fx->started = true;
}

static void request_stop(fixture_t *fx) {
    fx->stop_requested = true;
    run_on_loop(fx, stop_server, NULL);
}

/* Stops the server on its loop (unless the test did), waits for on_stopped and for the loop
 * to run out of handles. */
static void fixture_stop(fixture_t *fx) {
    if (!fx->started) return;
    fx->started = false;
    if (!fx->stop_requested) request_stop(fx);
    /* on_stopped closes the wakeup handle: from here on nothing may be posted to the loop. */
    struct timespec deadline;
    deadline_in(&deadline, WAIT_SECONDS);
    pthread_mutex_lock(&fx->lt.mutex);
    int rc = 0;
    while (!fx->stopped && rc == 0) rc = pthread_cond_timedwait(&fx->lt.cond, &fx->lt.mutex, &deadline);
    bool stopped = fx->stopped;
    pthread_mutex_unlock(&fx->lt.mutex);
    if (!stopped) fail_msg("the server did not stop");
    assert_int_equal(loop_thread_join(&fx->lt), 0); /* every handle was closed */
    assert_true(fx->stopped);
}

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    if (fx->started && fx->held_conn) run_on_loop(fx, release_held, NULL);
    fixture_stop(fx);
    free(fx);
    return 0;
}

/* ---- a blocking test client ---------------------------------------------------------- */

typedef struct {
    int fd;
    char *buf; /* received, not yet taken by client_read_response */
    size_t len, cap;
} client_t;

typedef struct {
    int status;
    char *head; /* status line + headers, NUL-terminated */
    char *body;
    size_t body_len;
} response_t;

static int connect_socket(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = WAIT_SECONDS};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void client_open(client_t *cl, int port) {
    memset(cl, 0, sizeof *cl);
    cl->fd = connect_socket(port);
    assert_true(cl->fd >= 0);
}

static void client_close(client_t *cl) {
    if (cl->fd >= 0) close(cl->fd);
    cl->fd = -1;
    free(cl->buf);
    cl->buf = NULL;
    cl->len = cl->cap = 0;
}

/* Closes with a RST instead of a FIN. */
static void client_reset(client_t *cl) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    client_close(cl);
}

static void client_send(client_t *cl, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(cl->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

static void client_send_str(client_t *cl, const char *s) { client_send(cl, s, strlen(s)); }

/* Receives more bytes; returns what recv returned (0 at EOF, -1 on error or timeout). */
static ssize_t client_fill(client_t *cl) {
    if (cl->cap - cl->len < 65536) {
        cl->cap = cl->cap * 2 + 65536;
        cl->buf = realloc(cl->buf, cl->cap);
        assert_non_null(cl->buf);
    }
    ssize_t n;
    do n = recv(cl->fd, cl->buf + cl->len, cl->cap - cl->len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) cl->len += (size_t)n;
    return n;
}

static void response_free(response_t *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* A header's value from a response head, or NULL. */
static const char *response_header(const response_t *r, const char *name, char *out, size_t cap) {
    size_t name_len = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *start = line + 2;
        if (strncasecmp(start, name, name_len) == 0 && start[name_len] == ':') {
            const char *v = start + name_len + 1;
            while (*v == ' ') v++;
            const char *end = strstr(v, "\r\n");
            size_t len = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Takes one complete response from the bytes already received: 1 if there was one, else 0.
 * For a HEAD request the body is not expected. */
static int client_take_response(client_t *cl, bool head_request, response_t *r) {
    memset(r, 0, sizeof *r);
    char *end = cl->buf ? memmem(cl->buf, cl->len, "\r\n\r\n", 4) : NULL;
    if (!end) return 0;
    size_t head_len = (size_t)(end - cl->buf) + 4;
    /* not strndup: the receive buffer has no terminator, and strict ASan checks want one */
    r->head = malloc(head_len + 1);
    memcpy(r->head, cl->buf, head_len);
    r->head[head_len] = '\0';
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    char value[64];
    size_t body_len = 0;
    if (!head_request && response_header(r, "Content-Length", value, sizeof value))
        body_len = strtoul(value, NULL, 10);
    if (cl->len < head_len + body_len) {
        response_free(r);
        return 0;
    }
    r->body = malloc(body_len + 1);
    memcpy(r->body, cl->buf + head_len, body_len);
    r->body[body_len] = '\0';
    r->body_len = body_len;
    memmove(cl->buf, cl->buf + head_len + body_len, cl->len - head_len - body_len);
    cl->len -= head_len + body_len;
    return 1;
}

/* Reads one response. Returns 0, or -1 if the connection ended (or timed out) first. */
static int client_read_response(client_t *cl, bool head_request, response_t *r) {
    while (!client_take_response(cl, head_request, r))
        if (client_fill(cl) <= 0) return -1;
    return 0;
}

static unsigned requests_seen(fixture_t *fx) {
    pthread_mutex_lock(&fx->lt.mutex);
    unsigned seen = fx->requests_seen;
    pthread_mutex_unlock(&fx->lt.mutex);
    return seen;
}

/* The server closed the connection and nothing else was left to read. */
static void assert_closed_by_server(client_t *cl) {
    ssize_t n = client_fill(cl);
    if (n < 0 && errno == ECONNRESET) n = 0;
    if (n != 0) fail_msg("expected the server to close (recv gave %zd, errno %d)", n, errno);
    assert_int_equal(cl->len, 0);
}

static void expect_response(client_t *cl, int status, const char *body_part) {
    response_t r;
    if (client_read_response(cl, false, &r) != 0) fail_msg("no response (expected %d)", status);
    if (r.status != status) fail_msg("status %d, expected %d; head: %s", r.status, status, r.head);
    if (body_part && !strstr(r.body, body_part)) fail_msg("body %s lacks %s", r.body, body_part);
    response_free(&r);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_keep_alive_two_sequential_requests(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hello?a=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    response_t r;
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"path\":\"/hello\",\"query\":\"a=1\"}");
    char v[64];
    assert_string_equal(response_header(&r, "Content-Type", v, sizeof v), "application/json");
    assert_string_equal(response_header(&r, "Content-Length", v, sizeof v), "31");
    assert_non_null(response_header(&r, "Date", v, sizeof v));
    assert_null(response_header(&r, "Connection", v, sizeof v));
    assert_non_null(strstr(r.head, "HTTP/1.1 200 OK\r\n"));
    response_free(&r);
    client_send_str(&cl, "GET /hello?a=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(&cl, 200, "\"a=2\"");
    client_send_str(&cl, "GET /nowhere HTTP/1.1\r\n\r\n");
    expect_response(&cl, 404, "Not found");
    client_close(&cl);
    assert_int_equal(requests_seen(fx), 3);
}

static void test_take_over_hands_socket_and_unread_bytes(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /takeover HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                         "FRAME-BYTES");
    char got[512];
    size_t len = 0;
    for (;;) { /* until the new owner closes its descriptor: the server must not hold it */
        ssize_t n = read(cl.fd, got + len, sizeof got - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    got[len] = '\0';
    assert_string_equal(got, "HTTP/1.1 101 Switching Protocols\r\n\r\nrest=FRAME-BYTES");
    assert_false(fx->takeover_failed);
    client_close(&cl);
}

static void test_pipelined_requests_answer_in_order(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hello?n=1 HTTP/1.1\r\n\r\n"
                         "POST /echo HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"n\":2}"
                         "GET /hello?n=3 HTTP/1.1\r\n\r\n");
    expect_response(&cl, 200, "n=1");
    response_t r;
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    assert_string_equal(r.body, "{\"n\":2}");
    char v[16];
    assert_string_equal(response_header(&r, "X-Echo", v, sizeof v), "yes");
    response_free(&r);
    expect_response(&cl, 200, "n=3");
    client_close(&cl);
}

static void test_async_handler_with_pipelined_second_request(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /async?ms=50 HTTP/1.1\r\n\r\nGET /hello?second HTTP/1.1\r\n\r\n"
                         "GET /async?ms=1 HTTP/1.1\r\n\r\n");
    expect_response(&cl, 200, "\"async\":true");
    expect_response(&cl, 200, "second");
    expect_response(&cl, 200, "\"async\":true");
    client_close(&cl);
}

static void test_head_has_length_but_no_body(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    response_t head, get;
    assert_int_equal(client_read_response(&cl, true, &head), 0);
    assert_int_equal(client_read_response(&cl, false, &get), 0);
    char v1[32], v2[32];
    assert_int_equal(head.status, 200);
    assert_string_equal(response_header(&head, "Content-Length", v1, sizeof v1),
                        response_header(&get, "Content-Length", v2, sizeof v2));
    assert_int_equal(get.body_len, strtoul(v2, NULL, 10));
    assert_string_equal(get.body, "{\"path\":\"/hello\",\"query\":\"\"}"); /* no stray bytes before it */
    response_free(&head);
    response_free(&get);
    client_close(&cl);
}

static void test_no_content_has_no_length(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "DELETE /nocontent HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    response_t r;
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    assert_int_equal(r.status, 204);
    char v[32];
    assert_null(response_header(&r, "Content-Length", v, sizeof v));
    response_free(&r);
    expect_response(&cl, 200, "/hello");
    client_close(&cl);
}

static void test_oversized_headers_get_431_and_close(void **state) {
    fixture_t *fx = *state;
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    cfg.max_header_bytes = 1024;
    fixture_start(fx, &cfg);
    client_t cl;
    client_open(&cl, fx->port);
    char request[4096];
    int n = snprintf(request, sizeof request, "GET /hello HTTP/1.1\r\nX-Big: %02000d\r\n\r\n", 7);
    client_send(&cl, request, (size_t)n);
    response_t r;
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    assert_int_equal(r.status, 431);
    assert_string_equal(r.body, "{\"error\":\"Request header fields too large\"}");
    char v[32];
    assert_string_equal(response_header(&r, "Connection", v, sizeof v), "close");
    response_free(&r);
    assert_closed_by_server(&cl);
    client_close(&cl);
    assert_int_equal(requests_seen(fx), 0);
}

static void test_oversized_body_gets_413_and_close(void **state) {
    fixture_t *fx = *state;
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    cfg.max_body_bytes = 1024;
    fixture_start(fx, &cfg);

    /* Refused from Content-Length alone, before the body is sent. */
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    expect_response(&cl, 413, "{\"error\":\"Payload too large\"}");
    assert_closed_by_server(&cl);
    client_close(&cl);

    /* The client sends the whole body anyway: the response still arrives intact. */
    client_open(&cl, fx->port);
    char *request = malloc(6000);
    int n = sprintf(request, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    memset(request + n, 'x', 5000);
    client_send(&cl, request, (size_t)n + 5000);
    free(request);
    expect_response(&cl, 413, "Payload too large");
    assert_closed_by_server(&cl);
    client_close(&cl);

    /* Chunked: refused once the chunks pass the limit. */
    client_open(&cl, fx->port);
    char chunk[900];
    memset(chunk, 'c', sizeof chunk);
    client_send_str(&cl, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n384\r\n");
    client_send(&cl, chunk, sizeof chunk);
    client_send_str(&cl, "\r\n384\r\n");
    client_send(&cl, chunk, sizeof chunk);
    expect_response(&cl, 413, "Payload too large");
    assert_closed_by_server(&cl);
    client_close(&cl);
    assert_int_equal(requests_seen(fx), 0);
}

static void test_bad_request_gets_400_and_close(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    /* A good request first: its answer arrives before the 400. */
    client_send_str(&cl, "GET /hello HTTP/1.1\r\n\r\nTHIS IS NOT HTTP\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    expect_response(&cl, 200, "/hello");
    response_t r;
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "{\"error\":\"Bad request\"}");
    char v[32];
    assert_string_equal(response_header(&r, "Connection", v, sizeof v), "close");
    response_free(&r);
    assert_closed_by_server(&cl);
    client_close(&cl);
    assert_int_equal(requests_seen(fx), 1);
}

static void test_http10_closes_unless_keep_alive(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hello HTTP/1.0\r\n\r\n");
    response_t r;
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    char v[32];
    assert_string_equal(response_header(&r, "Connection", v, sizeof v), "close");
    response_free(&r);
    assert_closed_by_server(&cl);
    client_close(&cl);

    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    assert_string_equal(response_header(&r, "Connection", v, sizeof v), "keep-alive");
    response_free(&r);
    client_send_str(&cl, "GET /hello?again HTTP/1.0\r\n\r\n");
    expect_response(&cl, 200, "again");
    assert_closed_by_server(&cl);
    client_close(&cl);
}

static void test_close_after_and_connection_close(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /bye HTTP/1.1\r\n\r\n");
    response_t r;
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    char v[32];
    assert_string_equal(response_header(&r, "Connection", v, sizeof v), "close");
    response_free(&r);
    assert_closed_by_server(&cl);
    client_close(&cl);

    /* "Connection: close" from the client; what it pipelined after is not answered. */
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    expect_response(&cl, 200, "/hello");
    assert_closed_by_server(&cl);
    client_close(&cl);
    assert_int_equal(requests_seen(fx), 2);
}

static void test_expect_100_continue(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    expect_response(&cl, 100, NULL);
    client_send_str(&cl, "hello");
    expect_response(&cl, 200, "hello");
    client_close(&cl);
}

static void test_idle_timeout_closes(void **state) {
    fixture_t *fx = *state;
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    cfg.idle_timeout_ms = 100;
    fixture_start(fx, &cfg);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hello HTTP/1.1\r\n\r\n");
    expect_response(&cl, 200, "/hello");
    assert_closed_by_server(&cl); /* silently: no response, just the close */
    client_close(&cl);
}

static void test_request_timeout_gives_408(void **state) {
    fixture_t *fx = *state;
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    cfg.request_timeout_ms = 100;
    fixture_start(fx, &cfg);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hello HTTP/1.1\r\nHost: x\r\n"); /* never finished */
    response_t r;
    assert_int_equal(client_read_response(&cl, false, &r), 0);
    assert_int_equal(r.status, 408);
    char v[32];
    assert_string_equal(response_header(&r, "Connection", v, sizeof v), "close");
    response_free(&r);
    assert_closed_by_server(&cl);
    client_close(&cl);
    assert_int_equal(requests_seen(fx), 0);
}

/* The timeouts are the client's: a handler slower than both must still be answered. */
static void test_slow_handler_is_not_timed_out(void **state) {
    fixture_t *fx = *state;
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    cfg.idle_timeout_ms = 50;
    cfg.request_timeout_ms = 50;
    fixture_start(fx, &cfg);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /async?ms=300 HTTP/1.1\r\n\r\n");
    expect_response(&cl, 200, "\"async\":true");
    assert_closed_by_server(&cl); /* and then the idle timeout applies again */
    client_close(&cl);
}

/* A round trip on a fresh connection: after it, the server has handled every event that
 * reached it before (a RST sent earlier included). */
static void round_trip(fixture_t *fx) {
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hello?sync HTTP/1.1\r\n\r\n");
    expect_response(&cl, 200, "sync");
    client_close(&cl);
}

static void test_client_reset_while_response_pending(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hold?reset HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    wait_requests_seen(fx, 1);
    client_reset(&cl);
    round_trip(fx);
    /* The connection is gone; the response is dropped, the request was still readable. */
    run_on_loop(fx, release_held, NULL);
    round_trip(fx);
    assert_int_equal(requests_seen(fx), 3); /* the pipelined /hello of the dead client never ran */
}

static void test_client_half_close_still_gets_answer(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hold?fin HTTP/1.1\r\n\r\nGET /hello?after HTTP/1.1\r\n\r\n");
    wait_requests_seen(fx, 1);
    shutdown(cl.fd, SHUT_WR); /* like `printf ... | nc`: done sending, still reading */
    round_trip(fx);
    run_on_loop(fx, release_held, NULL);
    expect_response(&cl, 200, "fin");
    expect_response(&cl, 200, "after");
    assert_closed_by_server(&cl);
    client_close(&cl);
}

static void test_client_close_while_response_pending(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    client_send_str(&cl, "GET /hold?closed HTTP/1.1\r\n\r\n");
    wait_requests_seen(fx, 1);
    client_close(&cl);
    round_trip(fx);
    run_on_loop(fx, release_held, NULL); /* written to a closed peer: no crash, no leak */
    round_trip(fx);
}

static void test_graceful_stop_with_request_in_flight(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t idle, busy;
    client_open(&idle, fx->port);
    client_send_str(&idle, "GET /hello HTTP/1.1\r\n\r\n");
    expect_response(&idle, 200, "/hello");
    client_open(&busy, fx->port);
    client_send_str(&busy, "GET /hold?inflight HTTP/1.1\r\n\r\n");
    wait_requests_seen(fx, 2);

    request_stop(fx);
    assert_closed_by_server(&idle); /* idle connections are closed at once */
    assert_true(connect_socket(fx->port) < 0); /* no longer listening */
    pthread_mutex_lock(&fx->lt.mutex);
    bool stopped_early = fx->stopped;
    pthread_mutex_unlock(&fx->lt.mutex);
    assert_false(stopped_early); /* waits for the request in flight */

    run_on_loop(fx, release_held, NULL);
    response_t r;
    assert_int_equal(client_read_response(&busy, false, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "inflight"));
    char v[32];
    assert_string_equal(response_header(&r, "Connection", v, sizeof v), "close");
    response_free(&r);
    assert_closed_by_server(&busy);
    client_close(&idle);
    client_close(&busy);
    fixture_stop(fx); /* joins the loop thread: on_stopped was called, every handle closed */
}

static void read_stats(void *owner, void *arg);

/* At the limit with none idle (the first connection's request is at the handler), a new
 * connection is closed at accept and the first is unharmed. */
static void test_max_connections_refuses_when_none_is_idle(void **state) {
    fixture_t *fx = *state;
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    cfg.max_connections = 1;
    fixture_start(fx, &cfg);
    client_t first, second;
    client_open(&first, fx->port);
    client_send_str(&first, "GET /hold?first HTTP/1.1\r\n\r\n"); /* held at the handler: not idle */
    wait_requests_seen(fx, 1);
    client_open(&second, fx->port); /* the kernel accepts; the server closes it at once */
    assert_closed_by_server(&second);
    client_close(&second);
    run_on_loop(fx, release_held, NULL);
    expect_response(&first, 200, "first");
    http_server_stats_t st;
    run_on_loop(fx, read_stats, &st);
    assert_int_equal(st.idle_evicted, 0);
    client_close(&first);
}

/* At the limit, a new connection takes the place of the one idle for longest: clients that
 * open connections and leave them idle cannot lock others out until the idle timeout. */
static void test_max_connections_new_one_replaces_the_longest_idle(void **state) {
    fixture_t *fx = *state;
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    cfg.max_connections = 2;
    fixture_start(fx, &cfg);
    client_t older, newer, third;
    client_open(&older, fx->port);
    client_send_str(&older, "GET /hello?older HTTP/1.1\r\n\r\n");
    expect_response(&older, 200, "older");
    usleep(30 * 1000); /* the loop clock has millisecond steps */
    client_open(&newer, fx->port);
    client_send_str(&newer, "GET /hello?newer HTTP/1.1\r\n\r\n");
    expect_response(&newer, 200, "newer");
    client_open(&third, fx->port);
    client_send_str(&third, "GET /hello?third HTTP/1.1\r\n\r\n");
    expect_response(&third, 200, "third");
    assert_closed_by_server(&older);
    client_send_str(&newer, "GET /hello?still HTTP/1.1\r\n\r\n");
    expect_response(&newer, 200, "still");
    http_server_stats_t st;
    run_on_loop(fx, read_stats, &st);
    assert_int_equal(st.idle_evicted, 1);
    client_close(&older);
    client_close(&newer);
    client_close(&third);
}

static void test_pipelining_flood_is_answered_in_order(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    /* About 120 KiB of requests, more than the server buffers before it stops reading. */
    enum { COUNT = 3000 };
    size_t cap = COUNT * 64;
    char *out = malloc(cap);
    size_t out_len = 0;
    for (int i = 0; i < COUNT; i++) out_len += (size_t)sprintf(out + out_len, "GET /hello?i=%05d HTTP/1.1\r\n\r\n", i);
    size_t sent = 0;
    int next_expected = 0;
    while (next_expected < COUNT) {
        struct pollfd pfd = {.fd = cl.fd, .events = POLLIN | (sent < out_len ? POLLOUT : 0)};
        assert_true(poll(&pfd, 1, WAIT_SECONDS * 1000) > 0);
        if (pfd.revents & POLLOUT) {
            ssize_t n = send(cl.fd, out + sent, out_len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) sent += (size_t)n;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            assert_true(client_fill(&cl) > 0);
            response_t r;
            while (client_take_response(&cl, false, &r)) {
                char expected[32];
                sprintf(expected, "i=%05d", next_expected);
                if (!strstr(r.body, expected)) fail_msg("response %d out of order: %s", next_expected, r.body);
                response_free(&r);
                next_expected++;
            }
        }
    }
    free(out);
    client_close(&cl);
    assert_int_equal(requests_seen(fx), COUNT);
}

static void test_large_responses_pipelined(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    enum { COUNT = 24 }; /* 6 MiB of responses: more than the write backlog limit */
    char requests[COUNT * 32];
    size_t len = 0;
    for (int i = 0; i < COUNT; i++) len += (size_t)sprintf(requests + len, "GET /big HTTP/1.1\r\n\r\n");
    client_send(&cl, requests, len);
    size_t body_len = 256 * 1024;
    for (int i = 0; i < COUNT; i++) {
        response_t r;
        assert_int_equal(client_read_response(&cl, false, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, body_len);
        assert_int_equal(r.body[body_len - 1], 'b');
        response_free(&r);
    }
    assert_int_equal(cl.len, 0);
    client_close(&cl);
}

static void read_stats(void *owner, void *arg) {
    fixture_t *fx = owner;
    http_server_get_stats(fx->srv, arg);
}

/* A client pipelines ~100 KiB behind a request the handler holds: the server stops reading
 * at its input limit instead of buffering everything, then catches up once answered. */
static void test_input_backlog_is_bounded(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    client_open(&cl, fx->port);
    enum { COUNT = 3000 };
    char *out = malloc(COUNT * 40 + 64);
    size_t out_len = (size_t)sprintf(out, "GET /hold?first HTTP/1.1\r\n\r\n");
    for (int i = 0; i < COUNT; i++) out_len += (size_t)sprintf(out + out_len, "GET /hello?i=%05d HTTP/1.1\r\n\r\n", i);
    client_send(&cl, out, out_len); /* fits in our buffer plus the kernel's */
    free(out);
    wait_requests_seen(fx, 1);
    round_trip(fx); /* the server has read what it was going to read */
    http_server_stats_t st;
    run_on_loop(fx, read_stats, &st);
    assert_int_equal(st.requests_in_flight, 1);
    assert_int_equal(st.reads_paused, 1);
    assert_true(st.buffered_input_bytes >= 64 * 1024);
    assert_true(st.buffered_input_bytes < 96 * 1024);
    assert_int_equal(requests_seen(fx), 2); /* /hold and the round trip */

    run_on_loop(fx, release_held, NULL);
    expect_response(&cl, 200, "first");
    for (int i = 0; i < COUNT; i++) {
        char expected[32];
        sprintf(expected, "i=%05d", i);
        expect_response(&cl, 200, expected);
    }
    run_on_loop(fx, read_stats, &st);
    assert_int_equal(st.reads_paused, 0);
    assert_int_equal(st.buffered_input_bytes, 0);
    client_close(&cl);
}

/* A client pipelines requests for large responses and does not read them: the server stops
 * starting new requests once its own write queue is full, and resumes as the client reads. */
static void test_output_backlog_is_bounded(void **state) {
    fixture_t *fx = *state;
    fixture_start(fx, NULL);
    client_t cl;
    memset(&cl, 0, sizeof cl);
    cl.fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096; /* a small receive window, so the kernel cannot absorb the responses */
    setsockopt(cl.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct timeval tv = {.tv_sec = WAIT_SECONDS};
    setsockopt(cl.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(cl.fd, (struct sockaddr *)&addr, sizeof addr), 0);
    enum { COUNT = 64 }; /* 16 MiB of responses */
    char requests[COUNT * 32];
    size_t len = 0;
    for (int i = 0; i < COUNT; i++) len += (size_t)sprintf(requests + len, "GET /big HTTP/1.1\r\n\r\n");
    client_send(&cl, requests, len);
    round_trip(fx);
    http_server_stats_t st;
    run_on_loop(fx, read_stats, &st);
    assert_true(st.queued_output_bytes > 0);
    assert_true(st.queued_output_bytes <= 2 * 256 * 1024); /* the limit plus the response that crossed it */
    assert_int_equal(st.reads_paused, 1);
    unsigned started = requests_seen(fx) - 1;
    assert_true(started < COUNT); /* some were held back; how many the kernel absorbed varies */

    size_t body_len = 256 * 1024;
    for (int i = 0; i < COUNT; i++) {
        response_t r;
        assert_int_equal(client_read_response(&cl, false, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, body_len);
        response_free(&r);
    }
    assert_int_equal(requests_seen(fx), COUNT + 1);
    client_close(&cl);
}

static void test_start_errors(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    http_server_config_t cfg;
    http_server_config_defaults(&cfg);
    cfg.host = "not-an-address";
    cfg.port = 0;
    http_server_t *srv = NULL;
    assert_int_equal(http_server_start(&loop, &cfg, handler, NULL, &srv), UV_EINVAL);
    assert_null(srv);
    /* A port in use: the listener is closed and freed by the loop. */
    cfg.host = "127.0.0.1";
    http_server_t *first = NULL;
    assert_int_equal(http_server_start(&loop, &cfg, handler, NULL, &first), 0);
    cfg.port = http_server_port(first);
    assert_int_equal(http_server_start(&loop, &cfg, handler, NULL, &srv), UV_EADDRINUSE);
    assert_null(srv);
    http_server_stop(first, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

#define SERVER_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        SERVER_TEST(test_keep_alive_two_sequential_requests),
        SERVER_TEST(test_pipelined_requests_answer_in_order),
        SERVER_TEST(test_take_over_hands_socket_and_unread_bytes),
        SERVER_TEST(test_async_handler_with_pipelined_second_request),
        SERVER_TEST(test_head_has_length_but_no_body),
        SERVER_TEST(test_no_content_has_no_length),
        SERVER_TEST(test_oversized_headers_get_431_and_close),
        SERVER_TEST(test_oversized_body_gets_413_and_close),
        SERVER_TEST(test_bad_request_gets_400_and_close),
        SERVER_TEST(test_http10_closes_unless_keep_alive),
        SERVER_TEST(test_close_after_and_connection_close),
        SERVER_TEST(test_expect_100_continue),
        SERVER_TEST(test_idle_timeout_closes),
        SERVER_TEST(test_request_timeout_gives_408),
        SERVER_TEST(test_slow_handler_is_not_timed_out),
        SERVER_TEST(test_client_reset_while_response_pending),
        SERVER_TEST(test_client_half_close_still_gets_answer),
        SERVER_TEST(test_client_close_while_response_pending),
        SERVER_TEST(test_graceful_stop_with_request_in_flight),
        SERVER_TEST(test_max_connections_refuses_when_none_is_idle),
        SERVER_TEST(test_max_connections_new_one_replaces_the_longest_idle),
        SERVER_TEST(test_pipelining_flood_is_answered_in_order),
        SERVER_TEST(test_large_responses_pipelined),
        SERVER_TEST(test_input_backlog_is_bounded),
        SERVER_TEST(test_output_backlog_is_bounded),
        cmocka_unit_test(test_start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
