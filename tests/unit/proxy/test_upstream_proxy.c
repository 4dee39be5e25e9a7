/* The upstream proxy: URL parsing, and end to end against a small test proxy (in the test) that
 * wants Basic credentials and answers 407 otherwise: CONNECT and plain requests carry our
 * Proxy-Authorization (never the browser's), 407 or an unreachable upstream becomes a 502 that
 * names the reason, the guard still refuses literal private targets, counters stay exact.
 *
 * Installs the upstream hooks (proxy_internal.h): loopback-only connects, no DNS. */
#include "proxy/proxy_internal.h"

#include "proxy_test_util.h"

static atomic_uint non_loopback_connects;

static int loopback_only_connect(uv_connect_t *req, uv_tcp_t *h, const struct sockaddr *sa, uv_connect_cb cb) {
    if (sa->sa_family != AF_INET || ((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr)[0] != 127) {
        atomic_fetch_add(&non_loopback_connects, 1);
        return UV_EACCES;
    }
    return uv_tcp_connect(req, h, sa, cb);
}

static int no_dns(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb, const char *node, const char *service,
                  const struct addrinfo *hints) {
    struct addrinfo h = *hints;
    h.ai_flags |= AI_NUMERICHOST;
    return uv_getaddrinfo(loop, req, cb, node, service, &h);
}

/* ---- parsing ---------------------------------------------------------------------------------- */

static void test_parse_upstream(void **state) {
    (void)state;
    proxy_upstream_t u;
    char err[256];
    assert_int_equal(proxy_upstream_parse("http://user:p%40ss@127.0.0.1:3128", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 3128);
    assert_true(u.has_credentials);
    assert_string_equal(u.user, "user");
    assert_string_equal(u.authorization, "Basic dXNlcjpwQHNz"); /* base64("user:p@ss") */
    assert_int_equal(proxy_upstream_parse("HTTP://Proxy.Example:8080/", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "proxy.example");
    assert_false(u.has_credentials);
    assert_string_equal(u.authorization, "");
    assert_int_equal(proxy_upstream_parse("http://proxy.example", &u, err, sizeof err), 0);
    assert_int_equal(u.port, 80);
    assert_int_equal(proxy_upstream_parse("http://u@[::1]:1", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.authorization, "Basic dTo="); /* "u:" */
    assert_int_equal(proxy_upstream_parse("http://a%3Ab:c:d@h:1", &u, err, sizeof err), -EINVAL); /* ':' in user */
    assert_int_equal(proxy_upstream_parse("http://u:p@ss@h:1", &u, err, sizeof err), 0); /* last '@' ends them */
    assert_string_equal(u.authorization, "Basic dTpwQHNz");
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

/* ---- end to end ---------------------------------------------------------------------------------- */

typedef struct {
    loop_fixture_t fx;
    origin_t up; /* the test upstream proxy */
} env_t;

/* creds: the user:pass part of the configured URL ("" for none); want: what the test proxy
 * requires ("" for nothing). */
static env_t *env_new(const char *creds, const char *want_auth, bool upstream_running) {
    proxy_upstream_set_hooks(no_dns, loopback_only_connect);
    atomic_store(&non_loopback_connects, 0);
    env_t *e = calloc(1, sizeof *e);
    origin_start(&e->up, ORIGIN_PROXY);
    snprintf(e->up.expect_auth, sizeof e->up.expect_auth, "%s", want_auth);
    int port = e->up.port;
    if (!upstream_running) { /* a port where nothing listens */
        int fd = t_listen(&port, 1);
        close(fd);
    }
    char url[256];
    snprintf(url, sizeof url, "http://%s%s127.0.0.1:%d", creds, creds[0] ? "@" : "", port);
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    cfg.upstream_proxy = url;
    t_fixture_start(&e->fx, &cfg);
    return e;
}

static int teardown_env(void **state) {
    env_t *e = *state;
    if (!e) return 0;
    t_fixture_stop(&e->fx);
    origin_stop(&e->up);
    free(e);
    *state = NULL;
    assert_int_equal(atomic_load(&non_loopback_connects), 0);
    return 0;
}

static const char good_auth[] = "Basic dXNlcjpwQHNz"; /* user:p@ss */

static void test_plain_and_connect_with_credentials(void **state) {
    env_t *e = *state = env_new("user:p%40ss", good_auth, true);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    /* Two plain requests to two sites: one upstream connection, absolute form kept, our
     * credentials instead of the browser's. */
    const char browser_auth[] = "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n";
    uint64_t delta = 0;
    for (int i = 0; i < 2; i++) {
        const char *host = i ? "other.example" : "site.example";
        assert_true(t_csendf(&c, "GET http://%s/page?q=1 HTTP/1.1\r\nHost: %s\r\n%sProxy-Connection: keep-alive\r\n\r\n", host,
                             host, browser_auth));
        delta += strlen(browser_auth) + strlen("Proxy-Connection: keep-alive\r\n");
        delta -= strlen("Proxy-Authorization: ") + strlen(good_auth) + 2;
        t_response_t r;
        assert_true(t_read_response(&c, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "up");
        char head[8192], want[512];
        origin_last_head(&e->up, head, sizeof head);
        snprintf(want, sizeof want, "GET http://%s/page?q=1 HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", host, host,
                 good_auth);
        assert_string_equal(head, want);
    }
    assert_int_equal(atomic_load(&e->up.connections), 1);
    uint64_t browser_sent = c.sent, browser_received = c.received;
    close(c.fd);

    /* CONNECT: forwarded as CONNECT with our credentials, then a tunnel of exact bytes. */
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csendf(&c, "CONNECT secure.example:443 HTTP/1.1\r\nHost: secure.example:443\r\n%s\r\n", browser_auth));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_string_equal(head, "HTTP/1.1 200 Connection established\r\n\r\n");
    char uh[8192], want[512];
    origin_last_head(&e->up, uh, sizeof uh);
    snprintf(want, sizeof want, "CONNECT secure.example:443 HTTP/1.1\r\nHost: secure.example:443\r\nProxy-Authorization: %s\r\n\r\n",
             good_auth);
    assert_string_equal(uh, want);
    char data[5000], back[5000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)(i * 13);
    assert_true(t_csend(&c, data, sizeof data));
    assert_true(t_read_exact(&c, back, sizeof back));
    assert_memory_equal(data, back, sizeof data);
    browser_sent += c.sent;
    browser_received += c.received;
    delta += strlen(browser_auth) - (strlen("Proxy-Authorization: ") + strlen(good_auth) + 2);
    close(c.fd);
    traffic_counts_t k = t_wait_quiet(&e->fx);
    origin_wait_idle(&e->up);
    assert_int_equal(k.to_upstream_bytes, atomic_load(&e->up.rx));
    assert_int_equal(k.from_upstream_bytes, atomic_load(&e->up.tx));
    assert_int_equal(k.tunnel_bytes, 2 * sizeof data);
    assert_int_equal(k.payload_bytes, 2 * 2);
    assert_int_equal(k.requests, 3);
    assert_int_equal(k.from_browser_bytes, browser_sent);
    assert_int_equal(k.to_browser_bytes, browser_received);
    /* Exactly the headers we swapped; the answers (the test proxy's 200 line is ours too) match. */
    assert_int_equal(browser_sent - atomic_load(&e->up.rx), delta);
    assert_int_equal(browser_received, atomic_load(&e->up.tx));
}

static void expect_502(int port, const char *request, const char *code, const char *words) {
    t_conn_t c;
    t_conn_init(&c, t_connect(port));
    assert_true(t_csend(&c, request, strlen(request)));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false));
    if (r.status != 502 || !strstr(r.body, code) || !strstr(r.body, words))
        fail_msg("%s-> %d\n%s", request, r.status, r.body);
    close(c.fd);
}

static void test_wrong_credentials(void **state) {
    env_t *e = *state = env_new("user:wrong", good_auth, true);
    expect_502(e->fx.port, "GET http://site.example/ HTTP/1.1\r\nHost: site.example\r\n\r\n", "ERR_PROXY_AUTH_REQUESTED",
               "the configured ones were refused");
    expect_502(e->fx.port, "CONNECT secure.example:443 HTTP/1.1\r\n\r\n", "ERR_PROXY_AUTH_REQUESTED", "407");
    t_wait_quiet(&e->fx);
}

static void test_no_credentials(void **state) {
    env_t *e = *state = env_new("", good_auth, true);
    expect_502(e->fx.port, "GET http://site.example/ HTTP/1.1\r\nHost: site.example\r\n\r\n", "ERR_PROXY_AUTH_REQUESTED",
               "none are configured");
    expect_502(e->fx.port, "CONNECT secure.example:443 HTTP/1.1\r\n\r\n", "ERR_PROXY_AUTH_REQUESTED", "none are configured");
    t_wait_quiet(&e->fx);
}

static void test_upstream_unreachable(void **state) {
    env_t *e = *state = env_new("user:p%40ss", good_auth, false);
    expect_502(e->fx.port, "GET http://site.example/ HTTP/1.1\r\nHost: site.example\r\n\r\n", "ERR_PROXY_CONNECTION_FAILED",
               "upstream proxy");
    expect_502(e->fx.port, "CONNECT secure.example:443 HTTP/1.1\r\n\r\n", "ERR_PROXY_CONNECTION_FAILED", "refused");
    traffic_counts_t k = t_wait_quiet(&e->fx);
    assert_int_equal(k.failed_requests, 2);
}

static void test_guard_with_upstream(void **state) {
    env_t *e = *state = env_new("user:p%40ss", good_auth, true);
    const char *reqs[] = {
        "GET http://127.0.0.1/ HTTP/1.1\r\n\r\n",  "GET http://0x7f.1/ HTTP/1.1\r\n\r\n",
        "GET http://[::1]/ HTTP/1.1\r\n\r\n",      "GET http://localhost/ HTTP/1.1\r\n\r\n",
        "GET http://10.0.0.1/ HTTP/1.1\r\n\r\n",   "CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n",
        "CONNECT localhost:443 HTTP/1.1\r\n\r\n", "CONNECT [::ffff:192.168.0.1]:443 HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        t_conn_t c;
        t_conn_init(&c, t_connect(e->fx.port));
        assert_true(t_csend(&c, reqs[i], strlen(reqs[i])));
        t_response_t r;
        assert_true(t_read_response(&c, &r, false));
        if (r.status != 403) fail_msg("%s -> %d", reqs[i], r.status);
        close(c.fd);
    }
    t_wait_quiet(&e->fx);
    assert_int_equal(atomic_load(&e->up.connections), 0); /* refused before the upstream */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_upstream),
        cmocka_unit_test_teardown(test_plain_and_connect_with_credentials, teardown_env),
        cmocka_unit_test_teardown(test_wrong_credentials, teardown_env),
        cmocka_unit_test_teardown(test_no_credentials, teardown_env),
        cmocka_unit_test_teardown(test_upstream_unreachable, teardown_env),
        cmocka_unit_test_teardown(test_guard_with_upstream, teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
