/* Shared harness of the proxy tests: the proxy on a libuv loop in its own thread, a test origin
 * server and a test upstream proxy on blocking sockets in threads (each counting exactly the
 * bytes it sent and received), and a blocking client that talks to the proxy as a browser does.
 * Loopback only: the proxy's connects go through a hook that refuses (and counts) any other
 * address, and names are "resolved" without a DNS server. Every blocking call has a timeout so
 * that a bug fails a test instead of hanging it.
 *
 * Header-only with static inline functions: each test executable takes what it uses. */
#ifndef BROWSERD_TESTS_PROXY_TEST_UTIL_H
#define BROWSERD_TESTS_PROXY_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
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
#include <uv.h>

#include "proxy/proxy_internal.h"
#include "proxy/traffic_proxy.h"

#define T_WAIT_SECONDS 10

/* ---- the proxy on its loop thread ---------------------------------------------------------- */

typedef struct loop_fixture loop_fixture_t;
typedef void (*loop_fn)(loop_fixture_t *fx, void *arg);

struct loop_fixture {
    uv_loop_t loop;
    uv_async_t wakeup;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    loop_fn fn;
    void *arg;
    bool pending;
    traffic_proxy_t *proxy;
    int port;
    int start_rc;
    bool stopped;
    unsigned connection_callbacks;
};

/* This process's resident memory in KiB (-1 when /proc cannot tell). */
static inline long t_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static inline void t_deadline(struct timespec *ts, int seconds) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += seconds;
}

static inline void t_on_wakeup(uv_async_t *a) {
    loop_fixture_t *fx = a->data;
    pthread_mutex_lock(&fx->mu);
    loop_fn fn = fx->pending ? fx->fn : NULL;
    void *arg = fx->arg;
    pthread_mutex_unlock(&fx->mu);
    if (!fn) return;
    fn(fx, arg);
    pthread_mutex_lock(&fx->mu);
    fx->pending = false;
    pthread_cond_broadcast(&fx->cond);
    pthread_mutex_unlock(&fx->mu);
}

static inline void *t_loop_main(void *arg) {
    loop_fixture_t *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Runs fn on the loop thread and waits for it to return. */
static inline void t_run_on_loop(loop_fixture_t *fx, loop_fn fn, void *arg) {
    pthread_mutex_lock(&fx->mu);
    fx->fn = fn;
    fx->arg = arg;
    fx->pending = true;
    pthread_mutex_unlock(&fx->mu);
    uv_async_send(&fx->wakeup);
    struct timespec dl;
    t_deadline(&dl, T_WAIT_SECONDS);
    pthread_mutex_lock(&fx->mu);
    int rc = 0;
    while (fx->pending && rc == 0) rc = pthread_cond_timedwait(&fx->cond, &fx->mu, &dl);
    bool done = !fx->pending;
    pthread_mutex_unlock(&fx->mu);
    if (!done) fail_msg("loop command did not run");
}

static inline void t_on_connections(void *arg, unsigned open) {
    (void)open;
    loop_fixture_t *fx = arg;
    fx->connection_callbacks++;
}

static inline void t_start_cmd(loop_fixture_t *fx, void *arg) {
    traffic_proxy_config_t *cfg = arg;
    cfg->on_connections = t_on_connections;
    cfg->on_connections_arg = fx;
    fx->start_rc = traffic_proxy_start(&fx->loop, cfg, &fx->proxy);
    if (fx->start_rc == 0) fx->port = traffic_proxy_port(fx->proxy);
}

/* Starts the loop thread and a proxy with cfg (borrowed for the call). */
static inline void t_fixture_start(loop_fixture_t *fx, traffic_proxy_config_t *cfg) {
    memset(fx, 0, sizeof *fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    pthread_mutex_init(&fx->mu, NULL);
    pthread_cond_init(&fx->cond, NULL);
    assert_int_equal(uv_async_init(&fx->loop, &fx->wakeup, t_on_wakeup), 0);
    fx->wakeup.data = fx;
    assert_int_equal(pthread_create(&fx->thread, NULL, t_loop_main, fx), 0);
    t_run_on_loop(fx, t_start_cmd, cfg);
    assert_int_equal(fx->start_rc, 0);
    assert_true(fx->port > 0);
}

static inline void t_counts_cmd(loop_fixture_t *fx, void *arg) { traffic_proxy_counts(fx->proxy, arg); }
static inline void t_stats_cmd(loop_fixture_t *fx, void *arg) { traffic_proxy_get_stats(fx->proxy, arg); }

static inline traffic_counts_t t_counts(loop_fixture_t *fx) {
    traffic_counts_t c;
    t_run_on_loop(fx, t_counts_cmd, &c);
    return c;
}

static inline traffic_proxy_stats_t t_stats(loop_fixture_t *fx) {
    traffic_proxy_stats_t s;
    t_run_on_loop(fx, t_stats_cmd, &s);
    return s;
}

static inline void t_sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until the proxy has no connection open on either side (counters final). */
static inline traffic_counts_t t_wait_quiet(loop_fixture_t *fx) {
    for (int i = 0; i < T_WAIT_SECONDS * 100; i++) {
        traffic_counts_t c = t_counts(fx);
        if (c.connections_open == 0 && c.upstream_connections_open == 0) {
            traffic_proxy_stats_t s = t_stats(fx);
            if (s.buffered_to_browser == 0 && s.buffered_to_upstream == 0) return c;
        }
        t_sleep_ms(10);
    }
    fail_msg("the proxy did not become quiet");
    traffic_counts_t none = {0};
    return none;
}

static inline void t_on_stopped(void *arg) {
    loop_fixture_t *fx = arg;
    fx->stopped = true;
}

static inline void t_stop_cmd(loop_fixture_t *fx, void *arg) {
    (void)arg;
    traffic_proxy_stop(fx->proxy, t_on_stopped, fx);
}

static inline void t_close_async_cmd(loop_fixture_t *fx, void *arg) {
    (void)arg;
    uv_close((uv_handle_t *)&fx->wakeup, NULL);
}

static inline void t_noop_cmd(loop_fixture_t *fx, void *arg) {
    (void)fx;
    (void)arg;
}

/* Stops the proxy, checks that it freed everything (the loop closes cleanly), joins. */
static inline void t_fixture_stop(loop_fixture_t *fx) {
    t_run_on_loop(fx, t_stop_cmd, NULL);
    for (int i = 0; i < T_WAIT_SECONDS * 100 && !fx->stopped; i++) {
        t_run_on_loop(fx, t_noop_cmd, NULL);
        t_sleep_ms(10);
    }
    assert_true(fx->stopped);
    /* uv_async_send after the close would be undefined: the command closes it and returns. */
    pthread_mutex_lock(&fx->mu);
    fx->fn = t_close_async_cmd;
    fx->arg = NULL;
    fx->pending = true;
    pthread_mutex_unlock(&fx->mu);
    uv_async_send(&fx->wakeup);
    pthread_join(fx->thread, NULL);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    pthread_mutex_destroy(&fx->mu);
    pthread_cond_destroy(&fx->cond);
}

static inline void t_default_config(traffic_proxy_config_t *cfg) {
    static const char *const loopback[] = {"127.0.0.0/8", "::1/128"};
    traffic_proxy_config_defaults(cfg);
    cfg->allow_private = loopback; /* the test sites live on loopback */
    cfg->allow_private_count = 2;
}

/* ---- sockets ---------------------------------------------------------------------------------- */

static inline void t_set_timeouts(int fd, int seconds) {
    struct timeval tv = {seconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static inline int t_listen(int *port_out, int backlog) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, backlog), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port_out = ntohs(a.sin_port);
    return fd;
}

static inline int t_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    t_set_timeouts(fd, T_WAIT_SECONDS);
    return fd;
}

static inline bool t_send_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* ---- a buffered reader that counts --------------------------------------------------------------- */

typedef struct {
    int fd;
    char buf[65536];
    size_t off, len;
    uint64_t received; /* bytes taken from the socket */
    uint64_t sent;     /* bytes given to the socket */
    bool eof;
} t_conn_t;

static inline void t_conn_init(t_conn_t *c, int fd) {
    memset(c, 0, sizeof *c);
    c->fd = fd;
}

static inline bool t_fill(t_conn_t *c) {
    if (c->off == c->len) c->off = c->len = 0;
    if (c->len == sizeof c->buf) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    ssize_t n;
    errno = 0; /* callers tell a timeout (EAGAIN) from an end (0) by it */
    do n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        c->eof = true;
        return false;
    }
    c->len += (size_t)n;
    c->received += (uint64_t)n;
    return true;
}

static inline bool t_csend(t_conn_t *c, const void *data, size_t len) {
    if (!t_send_all(c->fd, data, len)) return false;
    c->sent += len;
    return true;
}

static inline bool t_csendf(t_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline bool t_csendf(t_conn_t *c, const char *fmt, ...) {
    char tmp[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < sizeof tmp && t_csend(c, tmp, (size_t)n);
}

/* Reads a head (through the empty line) into out (NUL-terminated). */
static inline bool t_read_head(t_conn_t *c, char *out, size_t cap) {
    for (;;) {
        char *start = c->buf + c->off;
        size_t avail = c->len - c->off;
        char *end = avail >= 4 ? memmem(start, avail, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t hl = (size_t)(end - start) + 4;
            if (hl >= cap) return false;
            memcpy(out, start, hl);
            out[hl] = '\0';
            c->off += hl;
            return true;
        }
        if (!t_fill(c)) return false;
    }
}

/* Reads exactly n bytes; into out when not NULL (else dropped). */
static inline bool t_read_exact(t_conn_t *c, char *out, uint64_t n) {
    while (n) {
        if (c->off == c->len && !t_fill(c)) return false;
        size_t k = c->len - c->off;
        if (k > n) k = (size_t)n;
        if (out) {
            memcpy(out, c->buf + c->off, k);
            out += k;
        }
        c->off += k;
        n -= k;
    }
    return true;
}

static inline bool t_read_line(t_conn_t *c, char *out, size_t cap) {
    for (;;) {
        char *start = c->buf + c->off;
        size_t avail = c->len - c->off;
        char *nl = memchr(start, '\n', avail);
        if (nl) {
            size_t l = (size_t)(nl - start) + 1;
            if (l >= cap) return false;
            memcpy(out, start, l);
            out[l] = '\0';
            c->off += l;
            return true;
        }
        if (!t_fill(c)) return false;
    }
}

/* The value of a header in a head, or NULL (copied into out). */
static inline const char *t_header(const char *head, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t l = (size_t)(e - v);
            if (l >= cap) l = cap - 1;
            memcpy(out, v, l);
            out[l] = '\0';
            return out;
        }
    }
    return NULL;
}

/* A message body per its head: Content-Length, chunked, or until close (allow_close). body may
 * be NULL (dropped); *payload gets the body length without chunk framing. */
static inline bool t_read_body(t_conn_t *c, const char *head, bool allow_close, char *body, size_t cap, uint64_t *payload) {
    char v[64];
    *payload = 0;
    if (t_header(head, "Content-Length", v, sizeof v)) {
        uint64_t n = strtoull(v, NULL, 10);
        if (body && n > cap) return false;
        *payload = n;
        return t_read_exact(c, body, n);
    }
    if (t_header(head, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0) {
        for (;;) {
            char line[128];
            if (!t_read_line(c, line, sizeof line)) return false;
            uint64_t n = strtoull(line, NULL, 16);
            if (n == 0) {
                /* trailers until the empty line */
                for (;;) {
                    if (!t_read_line(c, line, sizeof line)) return false;
                    if (strcmp(line, "\r\n") == 0) return true;
                }
            }
            if (body && *payload + n > cap) return false;
            if (!t_read_exact(c, body ? body + *payload : NULL, n)) return false;
            *payload += n;
            if (!t_read_line(c, line, sizeof line) || strcmp(line, "\r\n") != 0) return false;
        }
    }
    if (!allow_close) return true; /* a request without a body */
    for (;;) {
        size_t k = c->len - c->off;
        if (body) {
            if (*payload + k > cap) return false;
            memcpy(body + *payload, c->buf + c->off, k);
        }
        *payload += k;
        c->off = c->len;
        if (!t_fill(c)) return true;
    }
}

static inline int t_status(const char *head) {
    int st = 0;
    sscanf(head, "HTTP/1.%*d %d", &st);
    return st;
}

typedef struct {
    int status;
    char head[16384];
    char body[65536];
    uint64_t payload;
} t_response_t;

/* Reads a response (skipping nothing: 1xx heads are returned as they are). */
static inline bool t_read_response(t_conn_t *c, t_response_t *r, bool head_request) {
    memset(r, 0, sizeof *r - sizeof r->body);
    r->body[0] = '\0';
    if (!t_read_head(c, r->head, sizeof r->head)) return false;
    r->status = t_status(r->head);
    if (head_request || r->status == 204 || r->status == 304 || r->status < 200) return true;
    bool ok = t_read_body(c, r->head, true, r->body, sizeof r->body - 1, &r->payload);
    if (ok) r->body[r->payload] = '\0';
    return ok;
}

/* ---- the test origin server ------------------------------------------------------------------- */

/* HTTP: the routes of o_serve_one. ECHO: every byte back. PROXY: a small upstream proxy that
 * wants `expect_auth` in Proxy-Authorization (407 otherwise), answers plain requests itself
 * ("up") and CONNECT with 200 and then an echo of the tunnel. */
typedef enum { ORIGIN_HTTP, ORIGIN_ECHO, ORIGIN_PROXY } origin_mode_t;

typedef struct {
    int fd;
    int port;
    origin_mode_t mode;
    pthread_t thread;
    atomic_bool stop;
    atomic_int active;
    atomic_ullong rx, tx;
    atomic_uint connections;
    atomic_uint requests;
    pthread_mutex_t mu;
    char last_head[8192];
    char last_body[65536];
    uint64_t last_body_len;
    unsigned slow_send_ms; /* pause between 64 KiB pieces of /size/ bodies */
    char expect_auth[512]; /* PROXY mode: the Proxy-Authorization value required ("" = none) */
} origin_t;

typedef struct {
    origin_t *o;
    int fd;
} origin_conn_arg_t;

static inline bool o_send(origin_t *o, t_conn_t *c, const void *p, size_t n) {
    if (!t_csend(c, p, n)) return false;
    atomic_fetch_add(&o->tx, n);
    return true;
}

static inline bool o_sendf(origin_t *o, t_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline bool o_sendf(origin_t *o, t_conn_t *c, const char *fmt, ...) {
    char tmp[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return n > 0 && o_send(o, c, tmp, (size_t)n);
}

/* The byte at offset i of every generated body, so that receivers can check content. */
static inline char t_pattern(uint64_t i) { return (char)('a' + (i * 7 + i / 251) % 26); }

static inline bool o_serve_one(origin_t *o, t_conn_t *c) {
    char head[8192];
    if (!t_read_head(c, head, sizeof head)) return false;
    char method[16] = "", path[1024] = "";
    sscanf(head, "%15s %1023s", method, path);
    char v[256];
    static _Thread_local char body[65536];
    uint64_t blen = 0;
    if (t_header(head, "Expect", v, sizeof v) && strcasecmp(v, "100-continue") == 0)
        o_sendf(o, c, "HTTP/1.1 100 Continue\r\n\r\n");
    pthread_mutex_lock(&o->mu);
    bool ok = t_read_body(c, head, false, body, sizeof body, &blen);
    snprintf(o->last_head, sizeof o->last_head, "%s", head);
    memcpy(o->last_body, body, blen);
    o->last_body_len = blen;
    pthread_mutex_unlock(&o->mu);
    if (!ok) return false;
    atomic_fetch_add(&o->requests, 1);
    if (o->mode == ORIGIN_PROXY) {
        bool auth_ok = !o->expect_auth[0] || (t_header(head, "Proxy-Authorization", v, sizeof v) && strcmp(v, o->expect_auth) == 0);
        if (!auth_ok)
            return o_sendf(o, c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n"
                                 "Content-Length: 0\r\n\r\n");
        if (strcmp(method, "CONNECT") != 0) return o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nup");
        if (!o_sendf(o, c, "HTTP/1.1 200 Connection established\r\n\r\n")) return false;
        path[0] = '\0';
        strcpy(path, "/tunnel-echo");
    }
    if (strcmp(path, "/tunnel-echo") == 0) {
        for (;;) {
            if (c->off == c->len && !t_fill(c)) {
                if ((errno == EAGAIN || errno == EWOULDBLOCK) && !atomic_load(&o->stop)) continue;
                return false;
            }
            size_t k = c->len - c->off;
            if (!o_send(o, c, c->buf + c->off, k)) return false;
            c->off = c->len;
        }
    }
    bool is_head = strcmp(method, "HEAD") == 0;
    if (strcmp(path, "/hello") == 0) return o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    if (strcmp(path, "/echo") == 0) {
        return o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n", (unsigned long long)blen) &&
               o_send(o, c, body, blen);
    }
    if (strcmp(path, "/chunked") == 0)
        return o_sendf(o, c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    if (strcmp(path, "/close") == 0) {
        o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
        return false;
    }
    if (strcmp(path, "/head") == 0) return o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n%s", is_head ? "" : "");
    if (strcmp(path, "/nocontent") == 0) return o_sendf(o, c, "HTTP/1.1 204 No Content\r\n\r\n");
    if (strcmp(path, "/continue") == 0) return o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    if (strcmp(path, "/bye") == 0) {
        o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye");
        return false;
    }
    if (strcmp(path, "/proxy-auth") == 0)
        return o_sendf(o, c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    if (strcmp(path, "/hang") == 0) {
        while (!atomic_load(&o->stop)) {
            if (!t_fill(c) && errno != EAGAIN && errno != EWOULDBLOCK) break;
            c->off = c->len;
        }
        return false;
    }
    if (strcmp(path, "/reset") == 0) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        return false;
    }
    if (strcmp(path, "/truncated") == 0) {
        o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part");
        return false;
    }
    if (strncmp(path, "/size/", 6) == 0 || strncmp(path, "/cut/", 5) == 0) {
        /* /cut/N announces N bytes, sends half of them and closes */
        bool cut = path[1] == 'c';
        uint64_t n = strtoull(path + (cut ? 5 : 6), NULL, 10);
        if (!o_sendf(o, c, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n", (unsigned long long)n)) return false;
        static _Thread_local char piece[65536];
        uint64_t end = cut ? n / 2 : n;
        for (uint64_t off = 0; off < end;) {
            size_t k = end - off < sizeof piece ? (size_t)(end - off) : sizeof piece;
            for (size_t i = 0; i < k; i++) piece[i] = t_pattern(off + i);
            if (!o_send(o, c, piece, k)) return false;
            off += k;
            if (o->slow_send_ms) t_sleep_ms(o->slow_send_ms);
        }
        return !cut;
    }
    if (strcmp(path, "/ws") == 0) {
        if (!o_sendf(o, c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")) return false;
        for (;;) { /* then a raw echo */
            if (c->off == c->len && !t_fill(c)) return false;
            size_t k = c->len - c->off;
            if (!o_send(o, c, c->buf + c->off, k)) return false;
            c->off = c->len;
        }
    }
    return o_sendf(o, c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

static inline void *o_conn_main(void *arg) {
    origin_conn_arg_t *a = arg;
    origin_t *o = a->o;
    static _Thread_local t_conn_t c;
    t_conn_init(&c, a->fd);
    free(a);
    /* Short receive timeouts to notice the end of a test; long send timeouts, since a proxy
     * that applies backpressure may not read for a while. */
    struct timeval rtv = {1, 0}, stv = {T_WAIT_SECONDS, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &rtv, sizeof rtv);
    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof stv);
    if (o->mode == ORIGIN_ECHO) {
        while (!atomic_load(&o->stop)) {
            if (!t_fill(&c)) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    c.eof = false;
                    continue;
                }
                break;
            }
            size_t k = c.len - c.off;
            if (!o_send(o, &c, c.buf + c.off, k)) break;
            c.off = c.len;
        }
    } else {
        for (;;) {
            errno = 0;
            if (o_serve_one(o, &c)) continue;
            /* An idle keep-alive connection times out every second: keep waiting for requests
             * until the peer closes or the test ends. */
            if (c.eof && (errno == EAGAIN || errno == EWOULDBLOCK) && c.len == c.off && !atomic_load(&o->stop)) {
                c.eof = false;
                continue;
            }
            break;
        }
    }
    atomic_fetch_add(&o->rx, c.received); /* every byte the proxy sent us */
    close(c.fd);
    atomic_fetch_sub(&o->active, 1);
    return NULL;
}

static inline void *o_accept_main(void *arg) {
    origin_t *o = arg;
    while (!atomic_load(&o->stop)) {
        struct pollfd pfd = {o->fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) continue;
        int fd = accept(o->fd, NULL, NULL);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        atomic_fetch_add(&o->connections, 1);
        atomic_fetch_add(&o->active, 1);
        origin_conn_arg_t *a = malloc(sizeof *a);
        a->o = o;
        a->fd = fd;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, o_conn_main, a) != 0) {
            close(fd);
            free(a);
            atomic_fetch_sub(&o->active, 1);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

static inline void origin_start(origin_t *o, origin_mode_t mode) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    pthread_mutex_init(&o->mu, NULL);
    o->fd = t_listen(&o->port, 64);
    assert_int_equal(pthread_create(&o->thread, NULL, o_accept_main, o), 0);
}

/* Waits until every connection the origin accepted has ended (its counters final). */
static inline void origin_wait_idle(origin_t *o) {
    for (int i = 0; i < T_WAIT_SECONDS * 100 && atomic_load(&o->active) > 0; i++) t_sleep_ms(10);
    assert_int_equal(atomic_load(&o->active), 0);
}

static inline void origin_stop(origin_t *o) {
    atomic_store(&o->stop, true);
    pthread_join(o->thread, NULL);
    close(o->fd);
    origin_wait_idle(o);
    pthread_mutex_destroy(&o->mu);
}

static inline void origin_last_head(origin_t *o, char *out, size_t cap) {
    pthread_mutex_lock(&o->mu);
    snprintf(out, cap, "%s", o->last_head);
    pthread_mutex_unlock(&o->mu);
}

/* ---- the upstream hooks: loopback only, no DNS ------------------------------------------------- */

static atomic_uint t_connects;
static atomic_uint t_non_loopback_connects;

static inline bool t_is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return ((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr)[0] == 127;
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return memcmp(a, lo, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
    }
    return false;
}

/* Every connect of the proxy: one that is not to loopback fails (and the test, at teardown), so
 * a broken guard cannot reach another network from here. */
static inline int t_loopback_only_connect(uv_connect_t *req, uv_tcp_t *h, const struct sockaddr *sa, uv_connect_cb cb) {
    atomic_fetch_add(&t_connects, 1);
    if (!t_is_loopback(sa)) {
        atomic_fetch_add(&t_non_loopback_connects, 1);
        return UV_EACCES;
    }
    return uv_tcp_connect(req, h, sa, cb);
}

/* Test names: *.invalid and every other name fail to resolve; a few *.test names map to fixed
 * addresses. AI_NUMERICHOST keeps getaddrinfo off the network in every case. */
static inline int t_fake_resolve(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb, const char *node,
                                 const char *service, const struct addrinfo *hints) {
    struct addrinfo h = *hints;
    h.ai_flags |= AI_NUMERICHOST; /* never a DNS query */
    const char *map = node;
    if (strcmp(node, "loopback.test") == 0) map = "127.0.0.1";
    else if (strcmp(node, "v6loopback.test") == 0) map = "::1";
    else if (strcmp(node, "mapped.test") == 0) map = "::ffff:127.0.0.1";
    else if (strcmp(node, "private.test") == 0) map = "10.1.2.3";
    else if (strcmp(node, "linklocal.test") == 0) map = "169.254.169.254";
    else if (strcmp(node, "ula.test") == 0) map = "fd00::1";
    return uv_getaddrinfo(loop, req, cb, map, service, &h);
}

/* Installs the hooks (connect: `connect`, or t_loopback_only_connect when NULL) and clears the
 * counters. Before the proxy's loop thread starts. */
static inline void t_install_hooks(proxy_connect_fn_t connect) {
    proxy_upstream_set_hooks(t_fake_resolve, connect ? connect : t_loopback_only_connect);
    atomic_store(&t_connects, 0);
    atomic_store(&t_non_loopback_connects, 0);
}

/* ---- one proxy and its origins per test ---------------------------------------------------------- */

typedef struct {
    loop_fixture_t fx;
    origin_t origin;       /* the site, or the upstream proxy (ORIGIN_PROXY) */
    origin_t origin2;      /* a second site, when a test starts it */
    bool origin2_started;
} t_env_t;

/* The hooks and the origin, before the proxy (whose config may need the origin's port). */
static inline t_env_t *t_env_new(origin_mode_t mode, proxy_connect_fn_t connect) {
    t_install_hooks(connect);
    t_env_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    origin_start(&e->origin, mode);
    return e;
}

static inline void t_env_start_proxy(t_env_t *e, traffic_proxy_config_t *cfg) {
    traffic_proxy_config_t def;
    if (!cfg) {
        t_default_config(&def);
        cfg = &def;
    }
    t_fixture_start(&e->fx, cfg);
}

/* A proxy with cfg (NULL: t_default_config) and an origin in `mode`. */
static inline t_env_t *t_env_start(traffic_proxy_config_t *cfg, origin_mode_t mode) {
    t_env_t *e = t_env_new(mode, NULL);
    t_env_start_proxy(e, cfg);
    return e;
}

static inline void t_env_start_origin2(t_env_t *e, origin_mode_t mode) {
    origin_start(&e->origin2, mode);
    e->origin2_started = true;
}

/* Stops everything; checks that the proxy freed all it had and connected nowhere else. */
static inline void t_env_free(t_env_t *e) {
    t_fixture_stop(&e->fx);
    origin_stop(&e->origin);
    if (e->origin2_started) origin_stop(&e->origin2);
    free(e);
    assert_int_equal(atomic_load(&t_non_loopback_connects), 0);
}

static inline int t_teardown_env(void **state) {
    if (*state) t_env_free(*state);
    *state = NULL;
    return 0;
}

/* Closes the client and waits until proxy and origin counters are final. */
static inline traffic_counts_t t_finish(t_env_t *e, t_conn_t *c) {
    close(c->fd);
    traffic_counts_t k = t_wait_quiet(&e->fx);
    origin_wait_idle(&e->origin);
    if (e->origin2_started) origin_wait_idle(&e->origin2);
    return k;
}

/* One request on a connection of its own; *r gets the response. */
static inline void t_request_once(int proxy_port, const char *request, t_response_t *r) {
    t_conn_t c;
    t_conn_init(&c, t_connect(proxy_port));
    assert_true(t_csend(&c, request, strlen(request)));
    assert_true(t_read_response(&c, r, false));
    close(c.fd);
}

/* One request on a connection of its own, answered by one of the proxy's error pages: status and
 * error code in the head and the page. */
static inline void t_expect_error(int proxy_port, const char *request, int status, const char *code) {
    static t_response_t r; /* 80 KiB */
    t_request_once(proxy_port, request, &r);
    if (r.status != status || !strstr(r.head, code))
        fail_msg("%s -> %d, wanted %d %s:\n%s%s", request, r.status, status, code, r.head, r.body);
    assert_non_null(strstr(r.body, code));
    assert_non_null(strstr(r.head, "Content-Type: text/html"));
}

#endif
