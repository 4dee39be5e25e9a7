/* Socket-free request/response head handling of the proxy (proxy_http.c): head ends,
 * authorities, target parsing, the exact rewritten heads (what the site sees), response heads,
 * header removal, error pages, base64. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/proxy_http.h"

/* ---- head ends ----------------------------------------------------------------------------- */

static void test_head_end_is_found_after_crlf_or_bare_lf_lines(void **state) {
    (void)state;
    size_t scan = 0;
    const char *h = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    assert_int_equal(proxy_http_head_end(h, strlen(h), &scan), strlen(h) - 4);
    scan = 0;
    assert_int_equal(proxy_http_head_end("GET / HTTP/1.1\n\nX", 17, &scan), 16);
}

static void test_head_end_split_across_pieces_is_never_missed(void **state) {
    (void)state;
    const char *full = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
    for (size_t cut = 1; cut < strlen(full); cut++) {
        size_t scan = 0;
        size_t first = proxy_http_head_end(full, cut, &scan);
        size_t end = first ? first : proxy_http_head_end(full, strlen(full), &scan);
        assert_int_equal(end, strlen(full));
    }
}

/* ---- authorities ------------------------------------------------------------------------------ */

static void test_authority_gives_host_and_port(void **state) {
    (void)state;
    proxy_host_t host;
    uint16_t port;
    char err[128];
    assert_int_equal(proxy_http_parse_authority("Example.com:8080", 16, 80, false, &host, &port, err, sizeof err), 0);
    assert_string_equal(host.name, "example.com");
    assert_int_equal(port, 8080);
    assert_int_equal(proxy_http_parse_authority("[::1]:443", 9, 80, true, &host, &port, err, sizeof err), 0);
    assert_int_equal(host.kind, PROXY_HOST_IPV6);
    assert_int_equal(port, 443);
}

static void test_authority_without_port_gets_the_default_unless_one_is_required(void **state) {
    (void)state;
    proxy_host_t host;
    uint16_t port;
    char err[128];
    assert_int_equal(proxy_http_parse_authority("h", 1, 80, false, &host, &port, err, sizeof err), 0);
    assert_int_equal(port, 80);
    assert_int_equal(proxy_http_parse_authority("h:", 2, 80, false, &host, &port, err, sizeof err), 0);
    assert_int_equal(port, 80);
    assert_int_equal(proxy_http_parse_authority("h", 1, 0, true, &host, &port, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "port"));
}

static void test_authority_with_a_bad_port_or_bracket_is_refused(void **state) {
    (void)state;
    proxy_host_t host;
    uint16_t port;
    char err[128];
    const char *bad[] = {"h:0", "h:65536", "h:123456", "h:8x", "[::1", "[::1]x", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (proxy_http_parse_authority(bad[i], strlen(bad[i]), 80, false, &host, &port, err, sizeof err) != -EINVAL)
            fail_msg("%s accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
}

/* ---- request heads ------------------------------------------------------------------------------ */

/* Parses `head` and returns the status; *out gets the rewritten head. */
static int rewrite(const char *head, proxy_rewrite_mode_t mode, const char *auth, proxy_request_t *req, buf_t *out, char *err) {
    http_parser hp;
    http_parser_init(&hp, HTTP_REQUEST);
    buf_reset(out);
    return proxy_http_parse_request(&hp, head, strlen(head), mode, auth, req, out, err, 256);
}

static void expect_rewrite(const char *in, proxy_rewrite_mode_t mode, const char *want) {
    proxy_request_t req;
    buf_t out;
    buf_init(&out);
    char err[256] = "";
    int st = rewrite(in, mode, "Basic QQ==", &req, &out, err);
    if (st != 0) fail_msg("%s -> %d %s", in, st, err);
    assert_string_equal(out.data ? out.data : "", want);
    buf_free(&out);
}

static void expect_status(const char *in, int status, const char *why) {
    proxy_request_t req;
    buf_t out;
    buf_init(&out);
    char err[256] = "";
    int st = rewrite(in, PROXY_REWRITE_DIRECT, NULL, &req, &out, err);
    if (st != status || !strstr(err, why)) fail_msg("%s -> %d \"%s\", wanted %d \"%s\"", in, st, err, status, why);
    buf_free(&out);
}

static void test_direct_request_goes_on_in_origin_form_without_proxy_headers(void **state) {
    (void)state;
    expect_rewrite("GET http://example.com/a?b=c#frag HTTP/1.1\r\nHost: example.com\r\nProxy-Connection: keep-alive\r\n"
                   "Proxy-Authorization: Basic eDp5\r\nAccept: */*\r\n\r\n",
                   PROXY_REWRITE_DIRECT, "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    expect_rewrite("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", PROXY_REWRITE_DIRECT,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    expect_rewrite("GET http://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n", PROXY_REWRITE_DIRECT,
                   "GET /?x HTTP/1.1\r\nHost: example.com\r\n\r\n");
}

static void test_host_naming_another_authority_is_replaced_by_the_target(void **state) {
    (void)state;
    expect_rewrite("GET http://example.com:8080/ HTTP/1.1\r\nHost: evil.example\r\n\r\n", PROXY_REWRITE_DIRECT,
                   "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
}

static void test_host_naming_the_target_differently_is_kept_as_sent(void **state) {
    (void)state;
    expect_rewrite("GET http://EXAMPLE.com:80/ HTTP/1.1\r\nHost: example.com\r\n\r\n", PROXY_REWRITE_DIRECT,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
}

static void test_headers_named_by_connection_go_but_framing_headers_stay(void **state) {
    (void)state;
    expect_rewrite("POST http://h/ HTTP/1.1\r\nHost: h\r\nConnection: X-Foo, Content-Length, keep-alive\r\nX-Foo: 1\r\n"
                   "Keep-Alive: 5\r\nTE: trailers\r\nContent-Length: 2\r\n\r\n",
                   PROXY_REWRITE_DIRECT, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n");
}

static void test_connection_close_is_passed_on(void **state) {
    (void)state;
    expect_rewrite("GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", PROXY_REWRITE_DIRECT,
                   "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
}

static void test_http10_request_gets_host_and_its_connection_choice(void **state) {
    (void)state;
    expect_rewrite("GET http://h/ HTTP/1.0\r\n\r\n", PROXY_REWRITE_DIRECT, "GET / HTTP/1.0\r\nHost: h\r\nConnection: close\r\n\r\n");
    expect_rewrite("GET http://h/ HTTP/1.0\r\nConnection: keep-alive\r\nHost: h\r\n\r\n", PROXY_REWRITE_DIRECT,
                   "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
}

static void test_upgrade_request_keeps_upgrade_and_connection_upgrade(void **state) {
    (void)state;
    expect_rewrite("GET http://h/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", PROXY_REWRITE_DIRECT,
                   "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
}

static void test_bare_lf_line_ends_are_passed_on_as_they_are(void **state) {
    (void)state;
    expect_rewrite("GET http://h/ HTTP/1.1\nHost: h\nProxy-Connection: keep-alive\n\n", PROXY_REWRITE_DIRECT,
                   "GET / HTTP/1.1\nHost: h\n\n");
}

static void test_request_to_an_upstream_proxy_keeps_absolute_form_with_our_credentials(void **state) {
    (void)state;
    expect_rewrite("GET http://h/p HTTP/1.1\r\nHost: h\r\nProxy-Authorization: Basic eDp5\r\n\r\n", PROXY_REWRITE_UPSTREAM,
                   "GET http://h/p HTTP/1.1\r\nHost: h\r\nProxy-Authorization: Basic QQ==\r\n\r\n");
    expect_rewrite("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nProxy-Connection: keep-alive\r\nUser-Agent: u\r\n\r\n",
                   PROXY_REWRITE_UPSTREAM, "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nUser-Agent: u\r\nProxy-Authorization: Basic QQ==\r\n\r\n");
}

static void test_direct_connect_sends_no_head_on(void **state) {
    (void)state;
    expect_rewrite("CONNECT h:443 HTTP/1.1\r\n\r\n", PROXY_REWRITE_DIRECT, "");
}

static void test_connect_request_gives_its_target(void **state) {
    (void)state;
    proxy_request_t req;
    buf_t out;
    buf_init(&out);
    char err[256];
    assert_int_equal(rewrite("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n", PROXY_REWRITE_DIRECT, NULL, &req, &out, err), 0);
    assert_true(req.is_connect);
    assert_int_equal(req.host.kind, PROXY_HOST_IPV6);
    assert_int_equal(req.port, 8443);
    assert_string_equal(req.authority, "[::1]:8443");
    buf_free(&out);
}

static void test_head_request_is_complete_with_a_canonical_host(void **state) {
    (void)state;
    proxy_request_t req;
    buf_t out;
    buf_init(&out);
    char err[256];
    assert_int_equal(rewrite("HEAD http://0x7f.1:81/ HTTP/1.1\r\nHost: x\r\n\r\n", PROXY_REWRITE_DIRECT, NULL, &req, &out, err), 0);
    assert_true(req.is_head_method);
    assert_true(req.complete);
    assert_int_equal(req.host.kind, PROXY_HOST_IPV4);
    assert_string_equal(req.host.name, "127.0.0.1");
    assert_int_equal(req.port, 81);
    buf_free(&out);
}

static void test_chunked_request_is_incomplete_and_keeps_the_connection(void **state) {
    (void)state;
    proxy_request_t req;
    buf_t out;
    buf_init(&out);
    char err[256];
    assert_int_equal(rewrite("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", PROXY_REWRITE_DIRECT, NULL, &req, &out, err), 0);
    assert_false(req.complete);
    assert_true(req.keep_alive);
    buf_free(&out);
}

static void test_targets_a_proxy_cannot_serve_are_a_400_with_the_reason(void **state) {
    (void)state;
    expect_status("GET / HTTP/1.1\r\n\r\n", 400, "absolute");
    expect_status("GET https://h/ HTTP/1.1\r\n\r\n", 400, "CONNECT");
    expect_status("GET ws://h/ HTTP/1.1\r\n\r\n", 400, "unsupported");
    expect_status("CONNECT h HTTP/1.1\r\n\r\n", 400, "port");
    expect_status("CONNECT h:0 HTTP/1.1\r\n\r\n", 400, "range");
    expect_status("GET http://u:p@h/ HTTP/1.1\r\n\r\n", 400, "credentials");
    expect_status("GET http://h:x/ HTTP/1.1\r\n\r\n", 400, "port");
    expect_status("GET http://1.2.3.4.5/ HTTP/1.1\r\n\r\n", 400, "IPv4");
    expect_status("GET http://[::1/ HTTP/1.1\r\n\r\n", 400, "");
}

static void test_malformed_request_heads_are_a_400_with_the_reason(void **state) {
    (void)state;
    expect_status("GET http://h/ HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "Host");
    expect_status("GET http://h/ HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400, "folding");
    expect_status("GET http://h/ HTJP/1.1\r\n\r\n", 400, "HTTP/1.x");
    expect_status("GET http://h/  HTTP/1.1\r\n\r\n", 400, "");
    expect_status("GET http://h/ HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "malformed");
    expect_status("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "malformed");
    expect_status("POST http://h/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "malformed");
}

static void test_http_versions_other_than_1_are_a_505(void **state) {
    (void)state;
    expect_status("GET http://h/ HTTP/2.0\r\n\r\n", 505, "HTTP/1");
}

/* ---- response heads ------------------------------------------------------------------------------- */

static void test_response_heads_give_status_framing_and_keep_alive(void **state) {
    (void)state;
    struct {
        const char *head;
        bool skip;
        unsigned status;
        bool complete, keep_alive, upgrade;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, 200, false, true, false},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, 200, true, true, false},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, true, true, false},
        {"HTTP/1.1 200 OK\r\n\r\n", false, 200, false, false, false},
        {"HTTP/1.1 204 No Content\r\n\r\n", false, 204, true, true, false},
        {"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, 304, true, true, false},
        {"HTTP/1.1 100 Continue\r\n\r\n", false, 100, true, true, false},
        {"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, 101, true, true, true}, /* becomes a tunnel */
        {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, 200, false, false, false},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", false, 200, false, false, false},
        {"HTTP/1.1 200 Connection established\r\n\r\n", true, 200, true, true, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_parser hp;
        http_parser_init(&hp, HTTP_RESPONSE);
        proxy_response_t r;
        assert_int_equal(proxy_http_parse_response_head(&hp, cases[i].head, strlen(cases[i].head), cases[i].skip, &r), 0);
        if (r.status != cases[i].status || r.complete != cases[i].complete || r.keep_alive != cases[i].keep_alive ||
            r.upgrade != cases[i].upgrade)
            fail_msg("case %zu: status %u complete %d keep_alive %d upgrade %d", i, r.status, r.complete, r.keep_alive, r.upgrade);
    }
}

static void test_malformed_status_line_is_refused(void **state) {
    (void)state;
    http_parser hp;
    http_parser_init(&hp, HTTP_RESPONSE);
    proxy_response_t r;
    const char *bad = "HTTP/1.1 abc\r\n\r\n";
    assert_int_equal(proxy_http_parse_response_head(&hp, bad, strlen(bad), false, &r), -1);
}

/* A site's own X-Browserd-Proxy-Error header is removed (it would pass its page off as one
 * of the proxy's error pages, which the gateway records as failed navigations). */
static void test_strip_header_removes_every_spelling_of_the_name_only(void **state) {
    (void)state;
    char head[] = "HTTP/1.1 200 OK\r\nX-Browserd-Proxy-Error: ERR_FAKE\r\nContent-Length: 2\r\n"
                  "x-browserd-proxy-error:ERR_AGAIN\r\nX-Browserd-Proxy-Errors: kept\r\n\r\n";
    size_t n = proxy_http_strip_header(head, strlen(head), "x-browserd-proxy-error");
    const char *want = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Browserd-Proxy-Errors: kept\r\n\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(head, want, n);
}

static void test_strip_header_never_removes_the_first_line(void **state) {
    (void)state;
    char status_line_only[] = "X-Browserd-Proxy-Error: 1\r\n\r\n"; /* the first line is the status line */
    assert_int_equal(proxy_http_strip_header(status_line_only, strlen(status_line_only), "x-browserd-proxy-error"),
                     strlen(status_line_only));
}

/* ---- our pages ------------------------------------------------------------------------------------- */

static void test_error_page_names_the_code_escapes_the_message_and_counts_its_body(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(proxy_http_error_response(&b, 502, "ERR_NAME_NOT_RESOLVED", "The name <x&y> could not be resolved."), 0);
    assert_non_null(strstr(b.data, "HTTP/1.1 502 Bad Gateway\r\n"));
    assert_non_null(strstr(b.data, "X-Browserd-Proxy-Error: ERR_NAME_NOT_RESOLVED\r\n"));
    assert_non_null(strstr(b.data, "&lt;x&amp;y&gt;"));
    const char *body = strstr(b.data, "\r\n\r\n") + 4;
    char cl[64];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(b.data, cl));
    buf_free(&b);
}

static void test_base64_encodes_and_refuses_too_small_a_buffer(void **state) {
    (void)state;
    char out[16];
    assert_int_equal(proxy_base64((const unsigned char *)"user:p@ss", 9, out, sizeof out), 12);
    assert_string_equal(out, "dXNlcjpwQHNz");
    assert_int_equal(proxy_base64((const unsigned char *)"ab", 2, out, 4), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_end_is_found_after_crlf_or_bare_lf_lines),
        cmocka_unit_test(test_head_end_split_across_pieces_is_never_missed),
        cmocka_unit_test(test_authority_gives_host_and_port),
        cmocka_unit_test(test_authority_without_port_gets_the_default_unless_one_is_required),
        cmocka_unit_test(test_authority_with_a_bad_port_or_bracket_is_refused),
        cmocka_unit_test(test_direct_request_goes_on_in_origin_form_without_proxy_headers),
        cmocka_unit_test(test_host_naming_another_authority_is_replaced_by_the_target),
        cmocka_unit_test(test_host_naming_the_target_differently_is_kept_as_sent),
        cmocka_unit_test(test_headers_named_by_connection_go_but_framing_headers_stay),
        cmocka_unit_test(test_connection_close_is_passed_on),
        cmocka_unit_test(test_http10_request_gets_host_and_its_connection_choice),
        cmocka_unit_test(test_upgrade_request_keeps_upgrade_and_connection_upgrade),
        cmocka_unit_test(test_bare_lf_line_ends_are_passed_on_as_they_are),
        cmocka_unit_test(test_request_to_an_upstream_proxy_keeps_absolute_form_with_our_credentials),
        cmocka_unit_test(test_direct_connect_sends_no_head_on),
        cmocka_unit_test(test_connect_request_gives_its_target),
        cmocka_unit_test(test_head_request_is_complete_with_a_canonical_host),
        cmocka_unit_test(test_chunked_request_is_incomplete_and_keeps_the_connection),
        cmocka_unit_test(test_targets_a_proxy_cannot_serve_are_a_400_with_the_reason),
        cmocka_unit_test(test_malformed_request_heads_are_a_400_with_the_reason),
        cmocka_unit_test(test_http_versions_other_than_1_are_a_505),
        cmocka_unit_test(test_response_heads_give_status_framing_and_keep_alive),
        cmocka_unit_test(test_malformed_status_line_is_refused),
        cmocka_unit_test(test_strip_header_removes_every_spelling_of_the_name_only),
        cmocka_unit_test(test_strip_header_never_removes_the_first_line),
        cmocka_unit_test(test_error_page_names_the_code_escapes_the_message_and_counts_its_body),
        cmocka_unit_test(test_base64_encodes_and_refuses_too_small_a_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
