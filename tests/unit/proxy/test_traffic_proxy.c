/* The traffic proxy's listener and browser connections (traffic_proxy.c) over real loopback
 * sockets: timeouts, backpressure on a large download, stop with connections open, the config
 * checks, switching the upstream proxy of a running proxy. */
#include "proxy_test_util.h"

/* ---- timeouts and backpressure ------------------------------------------------------------ */

static void test_idle_browser_connection_is_closed_after_the_idle_timeout(void **state) {
    traffic_proxy_config_t cfg;
    t_default_config(&cfg);
    cfg.idle_timeout_ms = 200;
    t_env_t *e = *state = t_env_start(&cfg, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    char one;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(recv(c.fd, &one, 1, 0), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    assert_true(ms >= 150 && ms < 5000);
    close(c.fd);
}

/* ---- a large download with a slow reader ---------------------------------------------------------- */

static void test_large_download_to_a_slow_reader_stays_under_the_high_watermark(void **state) {
    traffic_proxy_config_t cfg;
    t_default_config(&cfg);
    t_env_t *e = *state = t_env_start(&cfg, ORIGIN_HTTP);
    const uint64_t size = 200ull * 1024 * 1024;
    long rss_before = t_rss_kib();
    t_conn_t c;
    int fd = t_connect(e->fx.port);
    int small = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    t_conn_init(&c, fd);
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/size/%llu HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port,
                         (unsigned long long)size));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_int_equal(t_status(head), 200);
    /* The first 8 MiB slowly (the proxy must stop reading the site), then at full speed; check
     * the content all along. */
    uint64_t got = 0;
    bool content_ok = true;
    size_t peak_seen = 0;
    while (got < size) {
        if (c.off == c.len && !t_fill(&c)) break;
        size_t k = c.len - c.off;
        if (k > size - got) k = (size_t)(size - got);
        for (size_t i = 0; i < k; i += 4093)
            if (c.buf[c.off + i] != t_pattern(got + i)) content_ok = false;
        c.off += k;
        got += k;
        if (got < 8u * 1024 * 1024) {
            t_sleep_ms(1);
            if ((got & 0xfffff) < k) {
                traffic_proxy_stats_t s = t_stats(&e->fx);
                if (s.buffered_to_browser > peak_seen) peak_seen = s.buffered_to_browser;
            }
        }
    }
    assert_int_equal(got, size);
    assert_true(content_ok);
    long rss_after = t_rss_kib();
    traffic_proxy_stats_t s = t_stats(&e->fx);
    traffic_counts_t k = t_finish(e, &c);
    print_message("200 MiB download: peak buffered to browser %zu, to site %zu (high watermark %zu); RSS %+ld KiB\n",
                  s.peak_buffered_to_browser, s.peak_buffered_to_upstream, cfg.high_watermark, rss_after - rss_before);
    assert_true(s.peak_buffered_to_browser <= cfg.high_watermark);
    assert_true(s.peak_buffered_to_upstream <= cfg.high_watermark);
    assert_true(s.peak_buffered_to_browser > cfg.low_watermark); /* the slow phase did fill it */
#ifndef __SANITIZE_ADDRESS__ /* ASan keeps freed chunks in its quarantine (256 MiB) */
    assert_true(rss_after - rss_before < 64 * 1024);
#endif
    assert_int_equal(k.payload_bytes, size);
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.from_upstream_bytes, atomic_load(&e->origin.tx));
}

/* ---- stop ------------------------------------------------------------------------------------------- */

static void test_stop_with_connections_open_frees_everything(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_ECHO);
    t_conn_t a, b, c;
    t_conn_init(&a, t_connect(e->fx.port));
    t_conn_init(&b, t_connect(e->fx.port));
    t_conn_init(&c, t_connect(e->fx.port));
    assert_true(t_csendf(&a, "CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n", e->origin.port));
    char head[256];
    assert_true(t_read_head(&a, head, sizeof head));
    assert_true(t_csendf(&b, "GET http://127.0.0.1:%d/x HTTP/1.1\r\nHost: x\r\n", e->origin.port)); /* head half sent */
    assert_true(t_csendf(&c, "GET http://nowhere.invalid/ HTTP/1.1\r\n\r\n"));
    t_sleep_ms(50);
    traffic_counts_t k = t_counts(&e->fx);
    assert_int_equal(k.connections_open, 3);
    t_env_free(e); /* checks that the loop closes with nothing left */
    *state = NULL;
    close(a.fd);
    close(b.fd);
    close(c.fd);
}

/* ---- the config ------------------------------------------------------------------------------------ */

static void test_default_config_is_valid(void **state) {
    (void)state;
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    char err[256];
    assert_int_equal(traffic_proxy_config_check(&cfg, err, sizeof err), 0);
}

static void test_config_refuses_an_allowed_range_with_host_bits(void **state) {
    (void)state;
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    char err[256];
    const char *bad[] = {"10.0.0.1/8"};
    cfg.allow_private = bad;
    cfg.allow_private_count = 1;
    assert_int_equal(traffic_proxy_config_check(&cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "10.0.0.0/8"));
}

static void test_config_refuses_an_upstream_proxy_that_is_not_http(void **state) {
    (void)state;
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    char err[256];
    cfg.upstream_proxy = "socks5://x:1";
    assert_int_equal(traffic_proxy_config_check(&cfg, err, sizeof err), -EINVAL);
}

static void test_config_refuses_a_low_watermark_below_the_head_limit(void **state) {
    (void)state;
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    char err[256];
    cfg.low_watermark = 1024;
    assert_int_equal(traffic_proxy_config_check(&cfg, err, sizeof err), -EINVAL);
}

static void test_start_refuses_an_invalid_config_leaving_nothing(void **state) {
    (void)state;
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    cfg.low_watermark = 1024;
    uv_loop_t loop;
    uv_loop_init(&loop);
    traffic_proxy_t *p = NULL;
    assert_int_equal(traffic_proxy_start(&loop, &cfg, &p), -EINVAL);
    assert_null(p);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the upstream proxy of a running proxy ---------------------------------------------------------- */

typedef struct {
    const char *url;
    int rc;
    char err[256];
} set_upstream_arg_t;

static void set_upstream_cmd(loop_fixture_t *fx, void *arg) {
    set_upstream_arg_t *a = arg;
    a->rc = traffic_proxy_set_upstream(fx->proxy, a->url, a->err, sizeof a->err);
}

static int set_upstream(t_env_t *e, const char *url, char *err, size_t err_cap) {
    set_upstream_arg_t a = {.url = url};
    t_run_on_loop(&e->fx, set_upstream_cmd, &a);
    snprintf(err, err_cap, "%s", a.err);
    return a.rc;
}

static void get_hello(t_env_t *e, const char *want_body) {
    char req[256];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port);
    static t_response_t r;
    t_request_once(e->fx.port, req, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, want_body);
}

static void test_set_upstream_sends_new_connections_through_it_and_back(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_env_start_origin2(e, ORIGIN_PROXY); /* answers plain requests itself: "up" */
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", e->origin2.port);
    get_hello(e, "hello");
    assert_int_equal(set_upstream(e, url, err, sizeof err), 0);
    get_hello(e, "up");
    assert_int_equal(set_upstream(e, NULL, err, sizeof err), 0);
    get_hello(e, "hello");
    t_wait_quiet(&e->fx);
    assert_int_equal(atomic_load(&e->origin.requests), 2);
    assert_int_equal(atomic_load(&e->origin2.requests), 1);
}

static void test_set_upstream_refuses_an_invalid_url_and_keeps_the_last(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    char err[256];
    assert_int_equal(set_upstream(e, "https://proxy.example:1", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not supported"));
    get_hello(e, "hello");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_idle_browser_connection_is_closed_after_the_idle_timeout, t_teardown_env),
        cmocka_unit_test_teardown(test_large_download_to_a_slow_reader_stays_under_the_high_watermark, t_teardown_env),
        cmocka_unit_test_teardown(test_stop_with_connections_open_frees_everything, t_teardown_env),
        cmocka_unit_test(test_default_config_is_valid),
        cmocka_unit_test(test_config_refuses_an_allowed_range_with_host_bits),
        cmocka_unit_test(test_config_refuses_an_upstream_proxy_that_is_not_http),
        cmocka_unit_test(test_config_refuses_a_low_watermark_below_the_head_limit),
        cmocka_unit_test(test_start_refuses_an_invalid_config_leaving_nothing),
        cmocka_unit_test_teardown(test_set_upstream_sends_new_connections_through_it_and_back, t_teardown_env),
        cmocka_unit_test_teardown(test_set_upstream_refuses_an_invalid_url_and_keeps_the_last, t_teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
