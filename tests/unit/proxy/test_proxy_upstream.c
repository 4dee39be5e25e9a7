/* The connection onwards (proxy_upstream.c): the upstream proxy's URL; end to end against a small
 * test upstream proxy that wants Basic credentials and answers 407 otherwise (CONNECT and plain
 * requests carry our Proxy-Authorization, never the browser's; 407 or an unreachable upstream
 * becomes a 502 that names the reason; the guard still refuses literal private targets; counters
 * stay exact); and, without an upstream proxy, the sites that cannot be reached. */
#include "proxy_test_util.h"

/* ---- the URL ---------------------------------------------------------------------------------- */

static void test_upstream_url_credentials_become_basic_authorization(void **state) {
    (void)state;
    proxy_upstream_t u;
    char err[256];
    assert_int_equal(proxy_upstream_parse("http://user:p%40ss@127.0.0.1:3128", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 3128);
    assert_true(u.has_credentials);
    assert_string_equal(u.user, "user");
    assert_string_equal(u.authorization, "Basic dXNlcjpwQHNz"); /* base64("user:p@ss") */
}

static void test_upstream_url_without_credentials_has_no_authorization(void **state) {
    (void)state;
    proxy_upstream_t u;
    char err[256];
    assert_int_equal(proxy_upstream_parse("HTTP://Proxy.Example:8080/", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "proxy.example");
    assert_false(u.has_credentials);
    assert_string_equal(u.authorization, "");
}

static void test_upstream_url_port_defaults_to_80(void **state) {
    (void)state;
    proxy_upstream_t u;
    char err[256];
    assert_int_equal(proxy_upstream_parse("http://proxy.example", &u, err, sizeof err), 0);
    assert_int_equal(u.port, 80);
}

static void test_upstream_url_ipv6_host_and_empty_password(void **state) {
    (void)state;
    proxy_upstream_t u;
    char err[256];
    assert_int_equal(proxy_upstream_parse("http://u@[::1]:1", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.authorization, "Basic dTo="); /* "u:" */
}

static void test_upstream_url_user_with_a_colon_is_refused(void **state) {
    (void)state;
    proxy_upstream_t u;
    char err[256];
    assert_int_equal(proxy_upstream_parse("http://a%3Ab:c:d@h:1", &u, err, sizeof err), -EINVAL); /* ':' in user */
}

static void test_upstream_url_last_at_ends_the_credentials(void **state) {
    (void)state;
    proxy_upstream_t u;
    char err[256];
    assert_int_equal(proxy_upstream_parse("http://u:p@ss@h:1", &u, err, sizeof err), 0);
    assert_string_equal(u.authorization, "Basic dTpwQHNz");
}

static void test_upstream_url_malformed_is_refused_with_the_reason(void **state) {
    (void)state;
    proxy_upstream_t u;
    char err[256];
    struct {
        const char *url;
        const char *why;
    } bad[] = {
        {"https://h:1", "not supported"},     {"socks5://h:1", "only http://"}, {"h:1", "must be a URL"},
        {"http://h:0", "bad host or port"},   {"http://h:99999", "bad host or port"}, {"http://h/x", "path"},
        {"http://h:1?x", "path"},             {"http://:p@h:1", "empty user"},  {"http://u:p@", "bad host"},
        {"http://u%zz@h:1", "bad user"},      {"http://u:%00@h:1", "bad password"}, {"", "empty"},
        {"http://h h:1", "bad host"},         {"http://h:1x", "bad host or port"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (proxy_upstream_parse(bad[i].url, &u, err, sizeof err) != -EINVAL) fail_msg("%s accepted", bad[i].url);
        if (!strstr(err, bad[i].why)) fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].url, err, bad[i].why);
    }
}

/* ---- through an upstream proxy ---------------------------------------------------------------------- */

/* The upstream proxy listens on 127.0.0.1: a connect to anything else, ::1 included, is a bug. */
static int ipv4_loopback_only_connect(uv_connect_t *req, uv_tcp_t *h, const struct sockaddr *sa, uv_connect_cb cb) {
    if (sa->sa_family != AF_INET) {
        atomic_fetch_add(&t_non_loopback_connects, 1);
        return UV_EACCES;
    }
    return t_loopback_only_connect(req, h, sa, cb);
}

/* creds: the user:pass part of the configured URL ("" for none); want_auth: what the test proxy
 * (e->origin) requires ("" for nothing). */
static t_env_t *upstream_env(const char *creds, const char *want_auth, bool upstream_running) {
    t_env_t *e = t_env_new(ORIGIN_PROXY, ipv4_loopback_only_connect);
    snprintf(e->origin.expect_auth, sizeof e->origin.expect_auth, "%s", want_auth);
    int port = e->origin.port;
    if (!upstream_running) { /* a port where nothing listens */
        int fd = t_listen(&port, 1);
        close(fd);
    }
    char url[256];
    snprintf(url, sizeof url, "http://%s%s127.0.0.1:%d", creds, creds[0] ? "@" : "", port);
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    cfg.upstream_proxy = url;
    t_env_start_proxy(e, &cfg);
    return e;
}

static const char good_auth[] = "Basic dXNlcjpwQHNz"; /* user:p@ss */
static const char browser_auth[] = "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n";

/* The bytes our Proxy-Authorization line replaced the browser's with. */
static uint64_t auth_line_swap(void) {
    return strlen(browser_auth) - (strlen("Proxy-Authorization: ") + strlen(good_auth) + 2);
}

static void test_plain_requests_go_through_with_our_credentials_on_one_connection(void **state) {
    t_env_t *e = *state = upstream_env("user:p%40ss", good_auth, true);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    /* Two plain requests to two sites: one upstream connection, absolute form kept, our
     * credentials instead of the browser's. */
    uint64_t delta = 0;
    for (int i = 0; i < 2; i++) {
        const char *host = i ? "other.example" : "site.example";
        assert_true(t_csendf(&c, "GET http://%s/page?q=1 HTTP/1.1\r\nHost: %s\r\n%sProxy-Connection: keep-alive\r\n\r\n", host,
                             host, browser_auth));
        delta += auth_line_swap() + strlen("Proxy-Connection: keep-alive\r\n");
        t_response_t r;
        assert_true(t_read_response(&c, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "up");
        char head[8192], want[512];
        origin_last_head(&e->origin, head, sizeof head);
        snprintf(want, sizeof want, "GET http://%s/page?q=1 HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", host, host,
                 good_auth);
        assert_string_equal(head, want);
    }
    assert_int_equal(atomic_load(&e->origin.connections), 1);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(k.to_upstream_bytes, atomic_load(&e->origin.rx));
    assert_int_equal(k.from_upstream_bytes, atomic_load(&e->origin.tx));
    assert_int_equal(k.tunnel_bytes, 0);
    assert_int_equal(k.payload_bytes, 2 * 2);
    assert_int_equal(k.requests, 2);
    assert_int_equal(k.from_browser_bytes, c.sent);
    assert_int_equal(k.to_browser_bytes, c.received);
    /* Exactly the headers we swapped; the answers match. */
    assert_int_equal(c.sent - atomic_load(&e->origin.rx), delta);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
}

static void test_connect_goes_through_with_our_credentials_then_tunnels(void **state) {
    t_env_t *e = *state = upstream_env("user:p%40ss", good_auth, true);
    /* CONNECT: forwarded as CONNECT with our credentials, then a tunnel of exact bytes. */
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csendf(&c, "CONNECT secure.example:443 HTTP/1.1\r\nHost: secure.example:443\r\n%s\r\n", browser_auth));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_string_equal(head, "HTTP/1.1 200 Connection established\r\n\r\n");
    char uh[8192], want[512];
    origin_last_head(&e->origin, uh, sizeof uh);
    snprintf(want, sizeof want, "CONNECT secure.example:443 HTTP/1.1\r\nHost: secure.example:443\r\nProxy-Authorization: %s\r\n\r\n",
             good_auth);
    assert_string_equal(uh, want);
    char data[5000], back[5000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)(i * 13);
    assert_true(t_csend(&c, data, sizeof data));
    assert_true(t_read_exact(&c, back, sizeof back));
    assert_memory_equal(data, back, sizeof data);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(k.to_upstream_bytes, atomic_load(&e->origin.rx));
    assert_int_equal(k.from_upstream_bytes, atomic_load(&e->origin.tx));
    assert_int_equal(k.tunnel_bytes, 2 * sizeof data);
    assert_int_equal(k.payload_bytes, 0);
    assert_int_equal(k.requests, 1);
    assert_int_equal(k.from_browser_bytes, c.sent);
    assert_int_equal(k.to_browser_bytes, c.received);
    /* Exactly the header we swapped; the answers (the test proxy's 200 line is ours too) match. */
    assert_int_equal(c.sent - atomic_load(&e->origin.rx), auth_line_swap());
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
}

static void expect_502(int port, const char *request, const char *code, const char *words) {
    static t_response_t r;
    t_request_once(port, request, &r);
    if (r.status != 502 || !strstr(r.body, code) || !strstr(r.body, words))
        fail_msg("%s-> %d\n%s", request, r.status, r.body);
}

static void test_refused_credentials_are_a_502_that_says_so(void **state) {
    t_env_t *e = *state = upstream_env("user:wrong", good_auth, true);
    expect_502(e->fx.port, "GET http://site.example/ HTTP/1.1\r\nHost: site.example\r\n\r\n", "ERR_PROXY_AUTH_REQUESTED",
               "the configured ones were refused");
    expect_502(e->fx.port, "CONNECT secure.example:443 HTTP/1.1\r\n\r\n", "ERR_PROXY_AUTH_REQUESTED", "407");
    t_wait_quiet(&e->fx);
}

static void test_missing_credentials_are_a_502_that_says_so(void **state) {
    t_env_t *e = *state = upstream_env("", good_auth, true);
    expect_502(e->fx.port, "GET http://site.example/ HTTP/1.1\r\nHost: site.example\r\n\r\n", "ERR_PROXY_AUTH_REQUESTED",
               "none are configured");
    expect_502(e->fx.port, "CONNECT secure.example:443 HTTP/1.1\r\n\r\n", "ERR_PROXY_AUTH_REQUESTED", "none are configured");
    t_wait_quiet(&e->fx);
}

static void test_unreachable_upstream_proxy_is_a_502(void **state) {
    t_env_t *e = *state = upstream_env("user:p%40ss", good_auth, false);
    expect_502(e->fx.port, "GET http://site.example/ HTTP/1.1\r\nHost: site.example\r\n\r\n", "ERR_PROXY_CONNECTION_FAILED",
               "upstream proxy");
    expect_502(e->fx.port, "CONNECT secure.example:443 HTTP/1.1\r\n\r\n", "ERR_PROXY_CONNECTION_FAILED", "refused");
    traffic_counts_t k = t_wait_quiet(&e->fx);
    assert_int_equal(k.failed_requests, 2);
}

static void test_guard_refuses_private_targets_before_the_upstream_proxy(void **state) {
    t_env_t *e = *state = upstream_env("user:p%40ss", good_auth, true);
    const char *reqs[] = {
        "GET http://127.0.0.1/ HTTP/1.1\r\n\r\n",  "GET http://0x7f.1/ HTTP/1.1\r\n\r\n",
        "GET http://[::1]/ HTTP/1.1\r\n\r\n",      "GET http://localhost/ HTTP/1.1\r\n\r\n",
        "GET http://10.0.0.1/ HTTP/1.1\r\n\r\n",   "CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n",
        "CONNECT localhost:443 HTTP/1.1\r\n\r\n", "CONNECT [::ffff:192.168.0.1]:443 HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        static t_response_t r;
        t_request_once(e->fx.port, reqs[i], &r);
        if (r.status != 403) fail_msg("%s -> %d", reqs[i], r.status);
    }
    t_wait_quiet(&e->fx);
    assert_int_equal(atomic_load(&e->origin.connections), 0); /* refused before the upstream */
}

/* ---- sites that cannot be reached ------------------------------------------------------------------ */

/* After the failures of a test: each answered by one of our pages, nothing else went out. */
static void assert_failed(t_env_t *e, uint64_t failures) {
    traffic_counts_t k = t_wait_quiet(&e->fx);
    assert_int_equal(k.failed_requests, failures);
    assert_true(k.generated_bytes > 0);
    assert_int_equal(k.to_browser_bytes, k.generated_bytes);
}

static void test_refused_connection_is_a_502(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    char req[512];
    int closed_port;
    int lfd = t_listen(&closed_port, 1);
    close(lfd); /* nothing listens there now */
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n", closed_port);
    t_expect_error(e->fx.port, req, 502, "ERR_CONNECTION_REFUSED");
    snprintf(req, sizeof req, "CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n", closed_port);
    t_expect_error(e->fx.port, req, 502, "ERR_CONNECTION_REFUSED");
    assert_failed(e, 2);
}

static void test_name_that_does_not_resolve_is_a_502(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_expect_error(e->fx.port, "GET http://nowhere.invalid/ HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n", 502,
                   "ERR_NAME_NOT_RESOLVED");
    t_expect_error(e->fx.port, "CONNECT nowhere.invalid:443 HTTP/1.1\r\n\r\n", 502, "ERR_NAME_NOT_RESOLVED");
    assert_failed(e, 2);
}

static void test_connect_past_the_connect_timeout_is_a_504(void **state) {
    traffic_proxy_config_t cfg;
    t_default_config(&cfg);
    cfg.connect_timeout_ms = 300;
    t_env_t *e = *state = t_env_start(&cfg, ORIGIN_HTTP);
    /* A listener that never accepts, with its queue full: further SYNs are dropped. */
    int port;
    int lfd = t_listen(&port, 0);
    int fillers[8];
    int nf = 0;
    for (; nf < 8; nf++) {
        fillers[nf] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fillers[nf], (struct sockaddr *)&a, sizeof a);
    }
    t_sleep_ms(50);
    char req[256];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n", port);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csend(&c, req, strlen(req)));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false));
    if (r.status == 504) assert_non_null(strstr(r.body, "ERR_CONNECTION_TIMED_OUT"));
    else print_message("note: this kernel accepted past the backlog (%d): the timeout path was not reached\n", r.status);
    close(c.fd);
    for (int i = 0; i < nf; i++) close(fillers[i]);
    close(lfd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_url_credentials_become_basic_authorization),
        cmocka_unit_test(test_upstream_url_without_credentials_has_no_authorization),
        cmocka_unit_test(test_upstream_url_port_defaults_to_80),
        cmocka_unit_test(test_upstream_url_ipv6_host_and_empty_password),
        cmocka_unit_test(test_upstream_url_user_with_a_colon_is_refused),
        cmocka_unit_test(test_upstream_url_last_at_ends_the_credentials),
        cmocka_unit_test(test_upstream_url_malformed_is_refused_with_the_reason),
        cmocka_unit_test_teardown(test_plain_requests_go_through_with_our_credentials_on_one_connection, t_teardown_env),
        cmocka_unit_test_teardown(test_connect_goes_through_with_our_credentials_then_tunnels, t_teardown_env),
        cmocka_unit_test_teardown(test_refused_credentials_are_a_502_that_says_so, t_teardown_env),
        cmocka_unit_test_teardown(test_missing_credentials_are_a_502_that_says_so, t_teardown_env),
        cmocka_unit_test_teardown(test_unreachable_upstream_proxy_is_a_502, t_teardown_env),
        cmocka_unit_test_teardown(test_guard_refuses_private_targets_before_the_upstream_proxy, t_teardown_env),
        cmocka_unit_test_teardown(test_refused_connection_is_a_502, t_teardown_env),
        cmocka_unit_test_teardown(test_name_that_does_not_resolve_is_a_502, t_teardown_env),
        cmocka_unit_test_teardown(test_connect_past_the_connect_timeout_is_a_504, t_teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
