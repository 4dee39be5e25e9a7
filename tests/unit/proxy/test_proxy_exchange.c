/* What goes through the traffic proxy (proxy_exchange.c), over real loopback sockets against an
 * origin that counts its bytes: plain HTTP (keep-alive across hosts, bodies in every framing,
 * 1xx, HEAD, 204, upgrades), CONNECT tunnels, exact byte counters, the answers to a site that
 * fails, and the requests a proxy cannot serve. */
#include "proxy_test_util.h"

static const char proxy_connection_line[] = "Proxy-Connection: keep-alive\r\n";

/* Each test's byte counts hold exactly: what the proxy counted on each side is what the browser
 * and the site saw. */
static void assert_counts_match(const traffic_counts_t *k, const t_conn_t *c, const origin_t *o) {
    assert_int_equal(k->from_browser_bytes, c->sent);
    assert_int_equal(k->to_browser_bytes, c->received);
    assert_int_equal(k->to_upstream_bytes, atomic_load(&o->rx));
    assert_int_equal(k->from_upstream_bytes, atomic_load(&o->tx));
}

/* The browser connection and its site connection serve one more request after a body: the
 * framing was followed to its end. */
static void assert_connection_goes_on(t_env_t *e, t_conn_t *c) {
    int op = e->origin.port;
    t_response_t r;
    assert_true(t_csendf(c, "GET http://127.0.0.1:%d/hello HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op, op));
    assert_true(t_read_response(c, &r, false));
    assert_string_equal(r.body, "hello");
}

/* ---- plain HTTP ---------------------------------------------------------------------------- */

static void test_plain_get_is_counted_to_the_byte(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/hello HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sUser-Agent: t\r\n\r\n", op, op,
                         proxy_connection_line));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");

    /* The site saw the origin form, without the hop-by-hop header. */
    char head[8192], want[512];
    origin_last_head(&e->origin, head, sizeof head);
    snprintf(want, sizeof want, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: t\r\n\r\n", op);
    assert_string_equal(head, want);

    traffic_counts_t k = t_finish(e, &c);
    char prefix[64];
    int prefix_len = snprintf(prefix, sizeof prefix, "http://127.0.0.1:%d", op);
    assert_counts_match(&k, &c, &e->origin);
    /* The hop's own bytes: the scheme and authority of the target, the removed header. */
    assert_int_equal(c.sent - atomic_load(&e->origin.rx), (uint64_t)prefix_len + strlen(proxy_connection_line));
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.total_bytes, c.sent + c.received);
    assert_int_equal(k.payload_bytes, 5);
    assert_int_equal(k.overhead_bytes, k.total_bytes - 5);
    assert_int_equal(k.requests, 1);
    assert_int_equal(k.connections_accepted, 1);
    assert_int_equal(k.generated_bytes, 0);
    assert_int_equal(k.tunnel_bytes, 0);
    assert_true(e->fx.connection_callbacks >= 2);
}

static void test_keepalive_keeps_the_site_connection_while_the_host_stays(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_env_start_origin2(e, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int a = e->origin.port, b = e->origin2.port;
    t_response_t r;
    uint64_t delta = 0;
    /* A, A again (same site connection), B by name (localhost), then A. */
    for (int i = 0; i < 4; i++) {
        bool to_b = i == 2;
        char target[64];
        int tl = snprintf(target, sizeof target, "http://%s:%d", to_b ? "localhost" : "127.0.0.1", to_b ? b : a);
        const char *path = to_b ? "/chunked" : "/hello";
        assert_true(t_csendf(&c, "GET %s%s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, path, target + 7, proxy_connection_line));
        delta += (uint64_t)tl + strlen(proxy_connection_line);
        assert_true(t_read_response(&c, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, to_b ? "hello world" : "hello");
    }
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(atomic_load(&e->origin.connections), 2); /* kept for the 2nd, replaced for B */
    assert_int_equal(atomic_load(&e->origin2.connections), 1);
    assert_int_equal(atomic_load(&e->origin.requests), 3);
    uint64_t origin_rx = atomic_load(&e->origin.rx) + atomic_load(&e->origin2.rx);
    uint64_t origin_tx = atomic_load(&e->origin.tx) + atomic_load(&e->origin2.tx);
    assert_int_equal(k.from_browser_bytes, c.sent);
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(k.to_upstream_bytes, origin_rx);
    assert_int_equal(k.from_upstream_bytes, origin_tx);
    assert_int_equal(c.sent - origin_rx, delta);
    assert_int_equal(c.received, origin_tx);
    assert_int_equal(k.payload_bytes, 5 + 5 + 11 + 5);
    assert_int_equal(k.requests, 4);
}

static void test_content_length_request_body_is_passed_on(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    t_response_t r;
    /* echoed by the site */
    assert_true(t_csendf(&c, "POST http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 11\r\n\r\nhello there",
                         op, op));
    assert_true(t_read_response(&c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello there");
    assert_connection_goes_on(e, &c);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(atomic_load(&e->origin.connections), 1);
    assert_counts_match(&k, &c, &e->origin);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.payload_bytes, 11 + 11 + 5); /* the request body, the echo, "hello" */
}

static void test_chunked_request_body_is_passed_on_with_its_framing(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    t_response_t r;
    /* sent in pieces */
    assert_true(t_csendf(&c, "POST http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab",
                         op, op));
    t_sleep_ms(20);
    assert_true(t_csendf(&c, "cd\r\n3\r\nefg\r\n0\r\n\r\n"));
    assert_true(t_read_response(&c, &r, false));
    assert_string_equal(r.body, "abcdefg");
    char head[8192];
    origin_last_head(&e->origin, head, sizeof head);
    assert_non_null(strstr(head, "Transfer-Encoding: chunked\r\n"));
    assert_connection_goes_on(e, &c);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(atomic_load(&e->origin.connections), 1);
    assert_counts_match(&k, &c, &e->origin);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.payload_bytes, 7 + 7 + 5); /* without the chunk framing */
}

static void test_chunked_response_with_extension_and_trailer_is_passed_on(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    t_response_t r;
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/chunked HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op, op));
    assert_true(t_read_response(&c, &r, false));
    assert_string_equal(r.body, "hello world");
    assert_connection_goes_on(e, &c);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(atomic_load(&e->origin.connections), 1);
    assert_counts_match(&k, &c, &e->origin);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.payload_bytes, 11 + 5); /* without the extension, sizes and trailer */
}

static void test_head_and_204_responses_have_no_body_and_keep_the_connection(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    t_response_t r;
    /* HEAD: a Content-Length but no body; then 204. The connection stays usable. */
    assert_true(t_csendf(&c, "HEAD http://127.0.0.1:%d/head HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op, op));
    assert_true(t_read_response(&c, &r, true));
    assert_int_equal(r.status, 200);
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/nocontent HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op, op));
    assert_true(t_read_response(&c, &r, false));
    assert_int_equal(r.status, 204);
    assert_connection_goes_on(e, &c);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(atomic_load(&e->origin.connections), 1);
    assert_counts_match(&k, &c, &e->origin);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.payload_bytes, 5); /* HEAD and 204 have none */
}

static void test_interim_100_continue_is_passed_on_before_the_body(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    assert_true(t_csendf(&c, "POST http://127.0.0.1:%d/continue HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nExpect: 100-continue\r\n"
                             "Content-Length: 4\r\n\r\n", op, op));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false));
    assert_int_equal(r.status, 100); /* interim response passed on before the body is sent */
    assert_true(t_csendf(&c, "data"));
    assert_true(t_read_response(&c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok");
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.payload_bytes, 4 + 2);
}

static void test_body_until_close_ends_with_a_clean_close(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/close HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op, op));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false)); /* reads until the proxy closes */
    assert_string_equal(r.body, "until the end");
    assert_true(c.eof);
    assert_int_equal(errno, 0); /* a clean end (FIN), not a reset: the body was complete */
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.payload_bytes, strlen("until the end"));
}

static void test_site_closing_ends_the_browser_connection_after_the_response(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    int op = e->origin.port;
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/bye HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op, op));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false));
    assert_string_equal(r.body, "bye");
    char one;
    assert_int_equal(recv(c.fd, &one, 1, 0), 0);
    close(c.fd);
}

static void test_browser_asking_to_close_is_passed_on_to_the_site(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    int op = e->origin.port;
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/hello HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", op, op));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false));
    char one;
    assert_int_equal(recv(c.fd, &one, 1, 0), 0);
    char head[8192], want[256];
    origin_last_head(&e->origin, head, sizeof head);
    snprintf(want, sizeof want, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", op);
    assert_string_equal(head, want);
    close(c.fd);
}

static void test_http10_request_without_host_gets_one(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    int op = e->origin.port;
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/hello HTTP/1.0\r\n\r\n", op));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false));
    assert_string_equal(r.body, "hello");
    char head[8192], want[256];
    origin_last_head(&e->origin, head, sizeof head);
    snprintf(want, sizeof want, "GET /hello HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", op);
    assert_string_equal(head, want);
    t_wait_quiet(&e->fx);
    close(c.fd);
}

static void test_websocket_upgrade_becomes_a_counted_tunnel(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: Upgrade\r\n"
                             "Upgrade: websocket\r\n\r\n", op, op));
    char head[4096];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_int_equal(t_status(head), 101);
    char origin_head[8192];
    origin_last_head(&e->origin, origin_head, sizeof origin_head);
    assert_non_null(strstr(origin_head, "Upgrade: websocket\r\n"));
    assert_non_null(strstr(origin_head, "Connection: Upgrade\r\n"));
    const char msg[] = "\x81\x05hello raw frames";
    assert_true(t_csend(&c, msg, sizeof msg - 1));
    char back[64];
    assert_true(t_read_exact(&c, back, sizeof msg - 1));
    assert_memory_equal(back, msg, sizeof msg - 1);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(k.tunnel_bytes, 2 * (sizeof msg - 1));
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
}

/* ---- CONNECT ---------------------------------------------------------------------------------- */

static void test_connect_tunnel_carries_any_bytes_counted_to_the_byte(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_ECHO);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    char connect_head[256];
    int hl = snprintf(connect_head, sizeof connect_head,
                      "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nProxy-Connection: keep-alive\r\n\r\n",
                      e->origin.port, e->origin.port);
    assert_true(t_csend(&c, connect_head, (size_t)hl));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_string_equal(head, "HTTP/1.1 200 Connection established\r\n\r\n");
    /* Arbitrary bytes, including what would look like HTTP, in both directions, untouched. */
    static char data[300000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)(i * 131 + (i >> 9));
    memcpy(data, "GET / HTTP/1.1\r\n\r\n", 18);
    static char back[sizeof data];
    size_t sent = 0, got = 0;
    while (got < sizeof data) {
        if (sent < sizeof data) {
            size_t k = sizeof data - sent < 7000 ? sizeof data - sent : 7000;
            assert_true(t_csend(&c, data + sent, k));
            sent += k;
        }
        size_t want = sent - got < 5000 ? sent - got : 5000;
        assert_true(t_read_exact(&c, back + got, want));
        got += want;
    }
    assert_memory_equal(back, data, sizeof data);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(atomic_load(&e->origin.rx), sizeof data);
    assert_int_equal(atomic_load(&e->origin.tx), sizeof data);
    assert_int_equal(k.from_browser_bytes, (uint64_t)hl + sizeof data);
    assert_int_equal(k.to_browser_bytes, 39 + sizeof data);
    assert_int_equal(k.tunnel_bytes, 2 * sizeof data);
    assert_int_equal(k.generated_bytes, 39);
    assert_int_equal(k.payload_bytes, 0);
    assert_int_equal(k.to_upstream_bytes, sizeof data);
    assert_int_equal(k.from_upstream_bytes, sizeof data);
    assert_int_equal(k.total_bytes, (uint64_t)hl + 39 + 2 * sizeof data);
}

static void test_connect_half_close_is_passed_on_both_ways(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_ECHO);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csendf(&c, "CONNECT localhost:%d HTTP/1.1\r\nHost: localhost:%d\r\n\r\n", e->origin.port, e->origin.port));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_int_equal(t_status(head), 200);
    assert_true(t_csend(&c, "last words", 10));
    shutdown(c.fd, SHUT_WR); /* the echo still answers, then the proxy passes its close on */
    char back[16];
    assert_true(t_read_exact(&c, back, 10));
    assert_memory_equal(back, "last words", 10);
    t_fill(&c);
    assert_true(c.eof);
    t_finish(e, &c);
}

/* ---- a site that fails ---------------------------------------------------------------------------- */

/* After the failures of a test: each answered by one of our pages, nothing else went out. */
static void assert_failed(t_env_t *e, uint64_t failures) {
    traffic_counts_t k = t_wait_quiet(&e->fx);
    assert_int_equal(k.failed_requests, failures);
    assert_true(k.generated_bytes > 0);
    assert_int_equal(k.to_browser_bytes, k.generated_bytes);
}

static void test_truncated_response_is_reset(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/truncated HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_int_equal(t_status(head), 200);
    char body[100];
    assert_false(t_read_exact(&c, body, 100)); /* cut short: the browser must not take it as complete */
    t_finish(e, &c);
}

static void test_site_reset_before_the_response_is_a_502(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    char req[512];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/reset HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port);
    static t_response_t r;
    t_request_once(e->fx.port, req, &r);
    assert_int_equal(r.status, 502);
    assert_true(strstr(r.body, "ERR_CONNECTION_RESET") || strstr(r.body, "ERR_EMPTY_RESPONSE"));
    assert_failed(e, 1);
}

static void test_site_silent_past_the_response_timeout_is_a_504(void **state) {
    traffic_proxy_config_t cfg;
    t_default_config(&cfg);
    cfg.response_timeout_ms = 300;
    t_env_t *e = *state = t_env_start(&cfg, ORIGIN_HTTP);
    char req[512];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/hang HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port);
    t_expect_error(e->fx.port, req, 504, "ERR_TIMED_OUT");
    assert_failed(e, 1);
}

static void test_site_asking_for_proxy_credentials_is_a_502(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    char req[512];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/proxy-auth HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port);
    t_expect_error(e->fx.port, req, 502, "ERR_UNEXPECTED_PROXY_AUTH");
    assert_failed(e, 1);
}

/* ---- requests a proxy cannot serve ---------------------------------------------------------------- */

static t_env_t *small_heads_env(void) {
    traffic_proxy_config_t cfg;
    t_default_config(&cfg);
    cfg.max_head_bytes = 2048;
    cfg.low_watermark = 8192;
    cfg.high_watermark = 65536;
    return t_env_start(&cfg, ORIGIN_HTTP);
}

/* Refused before any connection to a site. */
static void assert_nothing_connected(t_env_t *e) {
    traffic_counts_t k = t_wait_quiet(&e->fx);
    assert_int_equal(k.upstream_connections_open, 0);
    assert_int_equal(atomic_load(&e->origin.connections), 0);
}

static void test_requests_a_proxy_cannot_serve_are_a_400(void **state) {
    t_env_t *e = *state = small_heads_env();
    t_expect_error(e->fx.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "GET https://example.com/ HTTP/1.1\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "GET ftp://example.com/ HTTP/1.1\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "CONNECT example.com HTTP/1.1\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "GET http://user@example.com/ HTTP/1.1\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "GET http://a b/ HTTP/1.1\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "GET http://x/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "GET http://x/ HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "POST http://x/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
                   "ERR_INVALID_REQUEST");
    t_expect_error(e->fx.port, "GET http://x:99999/ HTTP/1.1\r\n\r\n", 400, "ERR_INVALID_REQUEST");
    assert_nothing_connected(e);
}

static void test_request_head_over_the_limit_is_a_431(void **state) {
    t_env_t *e = *state = small_heads_env();
    char big[4096];
    int n = snprintf(big, sizeof big, "GET http://x/ HTTP/1.1\r\nX: ");
    memset(big + n, 'a', 3000);
    strcpy(big + n + 3000, "\r\n\r\n");
    t_expect_error(e->fx.port, big, 431, "ERR_REQUEST_HEAD_TOO_LARGE");
    assert_nothing_connected(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_plain_get_is_counted_to_the_byte, t_teardown_env),
        cmocka_unit_test_teardown(test_keepalive_keeps_the_site_connection_while_the_host_stays, t_teardown_env),
        cmocka_unit_test_teardown(test_content_length_request_body_is_passed_on, t_teardown_env),
        cmocka_unit_test_teardown(test_chunked_request_body_is_passed_on_with_its_framing, t_teardown_env),
        cmocka_unit_test_teardown(test_chunked_response_with_extension_and_trailer_is_passed_on, t_teardown_env),
        cmocka_unit_test_teardown(test_head_and_204_responses_have_no_body_and_keep_the_connection, t_teardown_env),
        cmocka_unit_test_teardown(test_interim_100_continue_is_passed_on_before_the_body, t_teardown_env),
        cmocka_unit_test_teardown(test_body_until_close_ends_with_a_clean_close, t_teardown_env),
        cmocka_unit_test_teardown(test_site_closing_ends_the_browser_connection_after_the_response, t_teardown_env),
        cmocka_unit_test_teardown(test_browser_asking_to_close_is_passed_on_to_the_site, t_teardown_env),
        cmocka_unit_test_teardown(test_http10_request_without_host_gets_one, t_teardown_env),
        cmocka_unit_test_teardown(test_websocket_upgrade_becomes_a_counted_tunnel, t_teardown_env),
        cmocka_unit_test_teardown(test_connect_tunnel_carries_any_bytes_counted_to_the_byte, t_teardown_env),
        cmocka_unit_test_teardown(test_connect_half_close_is_passed_on_both_ways, t_teardown_env),
        cmocka_unit_test_teardown(test_truncated_response_is_reset, t_teardown_env),
        cmocka_unit_test_teardown(test_site_reset_before_the_response_is_a_502, t_teardown_env),
        cmocka_unit_test_teardown(test_site_silent_past_the_response_timeout_is_a_504, t_teardown_env),
        cmocka_unit_test_teardown(test_site_asking_for_proxy_credentials_is_a_502, t_teardown_env),
        cmocka_unit_test_teardown(test_requests_a_proxy_cannot_serve_are_a_400, t_teardown_env),
        cmocka_unit_test_teardown(test_request_head_over_the_limit_is_a_431, t_teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
