/* The traffic proxy's splice mode (proxy_splice.c) over real loopback sockets: tunnels and large
 * Content-Length bodies relayed by splice(2) with every counter exact, keep-alive after a spliced
 * body, small bodies left to the libuv path, the fallback when splice is refused, backpressure
 * (a slow reader holds at most the pipe budget), and a thousand idle tunnels holding no pipes. */
#include <dirent.h>
#include <malloc.h>
#include <sys/resource.h>

#include "proxy_test_util.h"

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        if (de->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

/* Opens a CONNECT tunnel to the origin and reads our 200. */
static void open_tunnel(t_conn_t *c, int proxy_port, int origin_port) {
    t_conn_init(c, t_connect(proxy_port));
    assert_true(t_csendf(c, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", origin_port, origin_port));
    char head[1024];
    assert_true(t_read_head(c, head, sizeof head));
    assert_string_equal(head, "HTTP/1.1 200 Connection established\r\n\r\n");
}

/* Sends `size` pattern bytes through an echo tunnel while reading them back; checks them. */
static void echo_through(t_conn_t *c, uint64_t size) {
    static char data[65536], back[65536];
    uint64_t sent = 0, got = 0;
    while (got < size) {
        size_t k = size - sent < 60000 ? (size_t)(size - sent) : 60000;
        for (size_t i = 0; i < k; i++) data[i] = t_pattern(sent + i);
        if (k) assert_true(t_csend(c, data, k));
        sent += k;
        size_t want = (size_t)(sent - got);
        assert_true(t_read_exact(c, back, want));
        for (size_t i = 0; i < want; i += 997) assert_int_equal(back[i], t_pattern(got + i));
        got += want;
    }
}

/* ---- tunnels ------------------------------------------------------------------------------------ */

static void test_tunnel_relays_by_splice_counted_to_the_byte(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_ECHO);
    t_conn_t c;
    open_tunnel(&c, e->fx.port, e->origin.port);
    const uint64_t size = 8u << 20;
    echo_through(&c, size);
    traffic_proxy_stats_t s = t_stats(&e->fx);
    traffic_counts_t k = t_finish(e, &c);
    uint64_t head = c.sent - size;
    /* Each direction's first bytes may still go the libuv way while our 200 is being written. */
    assert_true(s.spliced_bytes > size);
    assert_int_equal(atomic_load(&e->origin.rx), size);
    assert_int_equal(atomic_load(&e->origin.tx), size);
    assert_int_equal(k.from_browser_bytes, head + size);
    assert_int_equal(k.to_browser_bytes, 39 + size);
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(k.tunnel_bytes, 2 * size);
    assert_int_equal(k.generated_bytes, 39);
    assert_int_equal(k.payload_bytes, 0);
    assert_int_equal(k.to_upstream_bytes, size);
    assert_int_equal(k.from_upstream_bytes, size);
}

static void test_spliced_tunnel_passes_half_close_on(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_ECHO);
    t_conn_t c;
    open_tunnel(&c, e->fx.port, e->origin.port);
    echo_through(&c, 1u << 20); /* in splice mode by now */
    assert_true(t_csend(&c, "last words", 10));
    shutdown(c.fd, SHUT_WR); /* the echo answers, then closes when it sees our FIN */
    char back[16];
    assert_true(t_read_exact(&c, back, 10));
    assert_memory_equal(back, "last words", 10);
    t_fill(&c);
    assert_true(c.eof);
    traffic_proxy_stats_t s = t_stats(&e->fx);
    traffic_counts_t k = t_finish(e, &c);
    assert_true(s.spliced_bytes > 0);
    assert_int_equal(k.tunnel_bytes, 2 * ((1u << 20) + 10));
}

static void test_tunnel_to_a_slow_reader_holds_at_most_the_pipe_budget(void **state) {
    traffic_proxy_config_t cfg;
    t_default_config(&cfg);
    t_env_t *e = *state = t_env_start(&cfg, ORIGIN_HTTP);
    int fd = t_connect(e->fx.port);
    int small = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    t_conn_t c;
    t_conn_init(&c, fd);
    assert_true(t_csendf(&c, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    const uint64_t size = 32u << 20;
    assert_true(t_csendf(&c, "GET /size/%llu HTTP/1.1\r\nHost: x\r\n\r\n", (unsigned long long)size));
    assert_true(t_read_head(&c, head, sizeof head));
    uint64_t got = 0;
    size_t peak_seen = 0;
    while (got < size) {
        if (c.off == c.len && !t_fill(&c)) break;
        size_t k = c.len - c.off;
        if (k > size - got) k = (size_t)(size - got);
        for (size_t i = 0; i < k; i += 4093) assert_int_equal(c.buf[c.off + i], t_pattern(got + i));
        c.off += k;
        got += k;
        if (got < (4u << 20)) { /* slowly at first: the site must be stopped, not buffered */
            t_sleep_ms(1);
            traffic_proxy_stats_t s = t_stats(&e->fx);
            if (s.buffered_to_browser > peak_seen) peak_seen = s.buffered_to_browser;
        }
    }
    assert_int_equal(got, size);
    traffic_proxy_stats_t s = t_stats(&e->fx);
    traffic_counts_t k = t_finish(e, &c);
    print_message("tunnel to a slow reader: peak buffered to browser %zu (seen %zu), high watermark %zu\n",
                  s.peak_buffered_to_browser, peak_seen, cfg.high_watermark);
    assert_true(s.spliced_bytes > size / 2);
    assert_true(s.peak_buffered_to_browser <= cfg.high_watermark);
    assert_true(s.peak_buffered_to_browser >= 64 * 1024); /* the pipe did fill while the reader slept */
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(c.received, 39 + atomic_load(&e->origin.tx));
    assert_int_equal(k.tunnel_bytes, atomic_load(&e->origin.rx) + atomic_load(&e->origin.tx));
}

/* ---- bodies ------------------------------------------------------------------------------------- */

static void test_large_body_goes_by_splice_and_the_connection_stays_usable(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    const uint64_t size = 8u << 20;
    int op = e->origin.port;
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/size/%llu HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op,
                         (unsigned long long)size, op));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_int_equal(t_status(head), 200);
    uint64_t got = 0;
    while (got < size) {
        if (c.off == c.len) assert_true(t_fill(&c));
        size_t k = c.len - c.off;
        if (k > size - got) k = (size_t)(size - got);
        for (size_t i = 0; i < k; i += 1021) assert_int_equal(c.buf[c.off + i], t_pattern(got + i));
        c.off += k;
        got += k;
    }
    /* The body's end is known by its length: the next request goes on the same connections. */
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/hello HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op, op));
    t_response_t *r = malloc(sizeof *r);
    assert_true(t_read_response(&c, r, false));
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "hello");
    free(r);
    traffic_proxy_stats_t s = t_stats(&e->fx);
    traffic_counts_t k = t_finish(e, &c);
    assert_true(s.spliced_bytes > size / 2);
    assert_int_equal(atomic_load(&e->origin.connections), 1);
    assert_int_equal(k.payload_bytes, size + 5);
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(c.received, atomic_load(&e->origin.tx));
    assert_int_equal(k.from_upstream_bytes, atomic_load(&e->origin.tx));
    assert_int_equal(k.tunnel_bytes, 0);
}

static void test_small_body_stays_on_the_libuv_path(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    const uint64_t size = SPLICE_MIN_BODY - 1000;
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/size/%llu HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op,
                         (unsigned long long)size, op));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    assert_true(t_read_exact(&c, NULL, size));
    traffic_proxy_stats_t s = t_stats(&e->fx);
    traffic_counts_t k = t_finish(e, &c);
    assert_int_equal(s.spliced_bytes, 0);
    assert_int_equal(k.payload_bytes, size);
    assert_int_equal(k.to_browser_bytes, c.received);
}

static void test_site_cutting_a_spliced_body_short_resets_the_browser(void **state) {
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_HTTP);
    t_conn_t c;
    t_conn_init(&c, t_connect(e->fx.port));
    int op = e->origin.port;
    const uint64_t size = 8u << 20; /* announced; the site sends half and closes */
    assert_true(t_csendf(&c, "GET http://127.0.0.1:%d/cut/%llu HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op,
                         (unsigned long long)size, op));
    char head[1024];
    assert_true(t_read_head(&c, head, sizeof head));
    while (t_fill(&c)) c.off = c.len;
    assert_int_equal(errno, ECONNRESET); /* not a FIN: a cut body must not look complete */
    traffic_proxy_stats_t s = t_stats(&e->fx);
    traffic_counts_t k = t_finish(e, &c);
    assert_true(s.spliced_bytes > 0);
    assert_true(c.received < size);
    assert_int_equal(k.to_browser_bytes, c.received);
    assert_int_equal(k.from_upstream_bytes, atomic_load(&e->origin.tx));
}

/* ---- the fallback ------------------------------------------------------------------------------- */

static ssize_t refuse_splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len, unsigned int flags) {
    (void)fd_in, (void)off_in, (void)fd_out, (void)off_out, (void)len, (void)flags;
    errno = EINVAL;
    return -1;
}

static void test_refused_splice_falls_back_to_the_libuv_path_exactly(void **state) {
    proxy_splice_set_hook(refuse_splice);
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_ECHO);
    t_env_start_origin2(e, ORIGIN_HTTP);
    t_conn_t c;
    open_tunnel(&c, e->fx.port, e->origin.port);
    const uint64_t size = 2u << 20;
    echo_through(&c, size);
    t_conn_t d;
    t_conn_init(&d, t_connect(e->fx.port));
    int op = e->origin2.port;
    assert_true(t_csendf(&d, "GET http://127.0.0.1:%d/size/%llu HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", op,
                         (unsigned long long)size, op));
    char head[1024];
    assert_true(t_read_head(&d, head, sizeof head));
    static char body[1u << 20];
    for (uint64_t got = 0; got < size; got += sizeof body) {
        assert_true(t_read_exact(&d, body, sizeof body));
        for (size_t i = 0; i < sizeof body; i += 1021) assert_int_equal(body[i], t_pattern(got + i));
    }
    traffic_proxy_stats_t s = t_stats(&e->fx);
    close(d.fd);
    traffic_counts_t k = t_finish(e, &c);
    proxy_splice_set_hook(NULL);
    assert_int_equal(s.spliced_bytes, 0);
    assert_int_equal(k.tunnel_bytes, 2 * size);
    assert_int_equal(k.payload_bytes, size);
    assert_int_equal(k.to_browser_bytes, c.received + d.received);
    assert_int_equal(k.from_upstream_bytes, atomic_load(&e->origin.tx) + atomic_load(&e->origin2.tx));
}

static void test_stop_with_spliced_connections_frees_everything(void **state) {
    int fds_before = count_fds();
    t_env_t *e = *state = t_env_start(NULL, ORIGIN_ECHO);
    t_env_start_origin2(e, ORIGIN_HTTP);
    t_conn_t c;
    open_tunnel(&c, e->fx.port, e->origin.port);
    echo_through(&c, 1u << 20); /* a tunnel in splice mode */
    int fd = t_connect(e->fx.port);
    int small = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    t_conn_t d;
    t_conn_init(&d, fd);
    int op = e->origin2.port;
    assert_true(t_csendf(&d, "GET http://127.0.0.1:%d/size/%llu HTTP/1.1\r\nHost: x\r\n\r\n", op, 64ull << 20));
    char head[1024];
    assert_true(t_read_head(&d, head, sizeof head));
    for (int i = 0; i < 200 && t_stats(&e->fx).buffered_to_browser == 0; i++) t_sleep_ms(5);
    traffic_proxy_stats_t s = t_stats(&e->fx);
    assert_true(s.spliced_bytes > 0);
    assert_true(s.buffered_to_browser > 0); /* a body stalled in its pipe: the reader does not read */
    /* The teardown stops the proxy now: the loop must close with nothing left (t_fixture_stop). */
    t_env_free(e);
    *state = NULL;
    close(c.fd);
    close(d.fd);
    assert_int_equal(count_fds(), fds_before); /* pipes with bytes closed, spares closed at release */
}

/* ---- many tunnels ------------------------------------------------------------------------------- */

static void test_a_thousand_idle_tunnels_hold_no_pipes(void **state) {
    enum { TUNNELS = 1000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 4 * TUNNELS + 200) {
        rl.rlim_cur = rl.rlim_max < 4 * TUNNELS + 200 ? rl.rlim_max : 4 * TUNNELS + 200;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 4 * TUNNELS + 200) skip();
    traffic_proxy_config_t cfg;
    t_default_config(&cfg);
    cfg.max_connections = TUNNELS + 10;
    t_env_t *e = *state = t_env_start(&cfg, ORIGIN_ECHO);
    int fds_before = count_fds();
    long rss_before = t_rss_kib();
    size_t heap_before = mallinfo2().uordblks; /* the origin's threads use their stacks, not the heap */
    int *fd = calloc(TUNNELS, sizeof *fd);
    for (int i = 0; i < TUNNELS; i++) {
        t_conn_t *c = malloc(sizeof *c);
        open_tunnel(c, e->fx.port, e->origin.port);
        /* 100 KiB each way: enough to enter splice mode and move bytes by it */
        echo_through(c, 100 * 1024);
        fd[i] = c->fd;
        free(c);
    }
    int fds_after = count_fds();
    long rss_after = t_rss_kib();
    long heap_per_tunnel = ((long)mallinfo2().uordblks - (long)heap_before) / TUNNELS;
    traffic_proxy_stats_t s = t_stats(&e->fx);
    traffic_counts_t k = t_counts(&e->fx);
    print_message("%d idle tunnels: %+d fds (4 per tunnel: client, proxy x2, origin), RSS %+ld KiB (mostly the "
                  "origin's thread per tunnel), heap %+ld bytes per tunnel (structs: %zu), spliced %llu bytes\n",
                  TUNNELS, fds_after - fds_before, rss_after - rss_before, heap_per_tunnel,
                  sizeof(conn_t) + sizeof(upstream_t), (unsigned long long)s.spliced_bytes);
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator is not glibc's: mallinfo2 does not see it */
    assert_true(heap_per_tunnel < 16 * 1024); /* no read chunk and no buffer kept per idle tunnel */
#endif
    assert_int_equal(k.connections_open, TUNNELS);
    assert_true(s.spliced_bytes > 0);
    assert_int_equal(s.buffered_to_browser, 0);
    assert_int_equal(s.buffered_to_upstream, 0);
    /* Pipes are borrowed only while they hold bytes: at most the thread's spares stay open. */
    assert_true(fds_after - fds_before <= 4 * TUNNELS + 2 * 16);
    for (int i = 0; i < TUNNELS; i++) close(fd[i]);
    free(fd);
    traffic_counts_t end = t_wait_quiet(&e->fx);
    origin_wait_idle(&e->origin);
    assert_int_equal(end.tunnel_bytes, 2ull * TUNNELS * 100 * 1024);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tunnel_relays_by_splice_counted_to_the_byte, t_teardown_env),
        cmocka_unit_test_teardown(test_spliced_tunnel_passes_half_close_on, t_teardown_env),
        cmocka_unit_test_teardown(test_tunnel_to_a_slow_reader_holds_at_most_the_pipe_budget, t_teardown_env),
        cmocka_unit_test_teardown(test_large_body_goes_by_splice_and_the_connection_stays_usable, t_teardown_env),
        cmocka_unit_test_teardown(test_small_body_stays_on_the_libuv_path, t_teardown_env),
        cmocka_unit_test_teardown(test_site_cutting_a_spliced_body_short_resets_the_browser, t_teardown_env),
        cmocka_unit_test_teardown(test_refused_splice_falls_back_to_the_libuv_path_exactly, t_teardown_env),
        cmocka_unit_test_teardown(test_stop_with_spliced_connections_frees_everything, t_teardown_env),
        cmocka_unit_test_teardown(test_a_thousand_idle_tunnels_hold_no_pipes, t_teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
