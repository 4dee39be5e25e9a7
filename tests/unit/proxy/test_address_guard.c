/* The private-network guard: address classes (IPv4, IPv6, IPv4 carried in IPv6), the numeric
 * spellings of IPv4 hosts, host parsing, CIDR parsing, and end to end through the proxy: every
 * class and trick answered 403 before any connection, names checked after resolution, an
 * allowed range let through.
 *
 * Installs the upstream hooks (proxy_internal.h): a connect to anything but loopback fails the test
 * (so a broken guard cannot reach another network from here) and test names resolve without
 * DNS. */
#include "proxy/proxy_internal.h"

#include "proxy_test_util.h"

static atomic_uint non_loopback_connects;
static atomic_uint connects;

static bool is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return ((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr)[0] == 127;
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return memcmp(a, lo, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
    }
    return false;
}

static int loopback_only_connect(uv_connect_t *req, uv_tcp_t *h, const struct sockaddr *sa, uv_connect_cb cb) {
    atomic_fetch_add(&connects, 1);
    if (!is_loopback(sa)) {
        atomic_fetch_add(&non_loopback_connects, 1);
        return UV_EACCES;
    }
    return uv_tcp_connect(req, h, sa, cb);
}

static int fake_resolve(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb, const char *node, const char *service,
                        const struct addrinfo *hints) {
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

/* ---- classes ----------------------------------------------------------------------------------- */

static proxy_addr_class_t v4(const char *text) {
    uint8_t a[4];
    assert_int_equal(inet_pton(AF_INET, text, a), 1);
    return proxy_guard_classify_v4(a);
}

static proxy_addr_class_t v6(const char *text) {
    uint8_t a[16];
    if (inet_pton(AF_INET6, text, a) != 1) fail_msg("bad test address %s", text);
    return proxy_guard_classify_v6(a, NULL, NULL);
}

static void test_classes_v4(void **state) {
    (void)state;
    assert_int_equal(v4("127.0.0.1"), PROXY_ADDR_LOOPBACK);
    assert_int_equal(v4("127.255.255.254"), PROXY_ADDR_LOOPBACK);
    assert_int_equal(v4("10.0.0.1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v4("172.16.0.1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v4("172.31.255.255"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v4("172.32.0.1"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v4("172.15.255.255"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v4("192.168.1.1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v4("169.254.169.254"), PROXY_ADDR_LINK_LOCAL);
    assert_int_equal(v4("100.64.0.1"), PROXY_ADDR_CGNAT);
    assert_int_equal(v4("100.127.255.255"), PROXY_ADDR_CGNAT);
    assert_int_equal(v4("100.128.0.1"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v4("224.0.0.1"), PROXY_ADDR_MULTICAST);
    assert_int_equal(v4("239.255.255.250"), PROXY_ADDR_MULTICAST);
    assert_int_equal(v4("0.0.0.0"), PROXY_ADDR_UNSPECIFIED);
    assert_int_equal(v4("0.1.2.3"), PROXY_ADDR_UNSPECIFIED);
    assert_int_equal(v4("255.255.255.255"), PROXY_ADDR_BROADCAST);
    assert_int_equal(v4("240.0.0.1"), PROXY_ADDR_RESERVED);
    assert_int_equal(v4("198.18.0.1"), PROXY_ADDR_RESERVED);
    assert_int_equal(v4("192.0.0.8"), PROXY_ADDR_RESERVED);
    assert_int_equal(v4("8.8.8.8"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v4("1.1.1.1"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v4("93.184.216.34"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v4("11.0.0.1"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v4("126.255.255.255"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v4("128.0.0.1"), PROXY_ADDR_PUBLIC);
}

static void test_classes_v6(void **state) {
    (void)state;
    assert_int_equal(v6("::1"), PROXY_ADDR_LOOPBACK);
    assert_int_equal(v6("::"), PROXY_ADDR_UNSPECIFIED);
    assert_int_equal(v6("fc00::1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v6("fdff:ffff::1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v6("fe80::1"), PROXY_ADDR_LINK_LOCAL);
    assert_int_equal(v6("febf::1"), PROXY_ADDR_LINK_LOCAL);
    assert_int_equal(v6("fec0::1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v6("ff02::1"), PROXY_ADDR_MULTICAST);
    assert_int_equal(v6("ff05::1:3"), PROXY_ADDR_MULTICAST);
    /* IPv4 carried in IPv6 takes the IPv4 address's class. */
    assert_int_equal(v6("::ffff:127.0.0.1"), PROXY_ADDR_LOOPBACK);
    assert_int_equal(v6("::ffff:7f00:1"), PROXY_ADDR_LOOPBACK);
    assert_int_equal(v6("::ffff:10.1.2.3"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v6("::ffff:169.254.169.254"), PROXY_ADDR_LINK_LOCAL);
    assert_int_equal(v6("::ffff:0.0.0.0"), PROXY_ADDR_UNSPECIFIED);
    assert_int_equal(v6("::ffff:8.8.8.8"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v6("::ffff:0:127.0.0.1"), PROXY_ADDR_LOOPBACK);   /* IPv4-translated */
    assert_int_equal(v6("::127.0.0.1"), PROXY_ADDR_LOOPBACK);          /* IPv4-compatible */
    assert_int_equal(v6("::192.168.0.1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v6("64:ff9b::7f00:1"), PROXY_ADDR_LOOPBACK);      /* NAT64 */
    assert_int_equal(v6("64:ff9b::10.0.0.1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v6("64:ff9b::8.8.8.8"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v6("64:ff9b:1::1"), PROXY_ADDR_PRIVATE);          /* local-use NAT64 */
    assert_int_equal(v6("2002:7f00:1::1"), PROXY_ADDR_LOOPBACK);       /* 6to4 */
    assert_int_equal(v6("2002:c0a8:101::1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v6("2002:808:808::1"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v6("2001:0:a00:1::1"), PROXY_ADDR_PRIVATE);        /* Teredo, server 10.0.0.1 */
    assert_int_equal(v6("2001:0:4136:e378:8000:63bf:80ff:fffe"), PROXY_ADDR_LOOPBACK); /* client ~ = 127.0.0.1 */
    assert_int_equal(v6("2001:0:4136:e378:8000:63bf:f7f7:f7f7"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v6("2001:db8::1"), PROXY_ADDR_RESERVED);
    assert_int_equal(v6("100::1"), PROXY_ADDR_RESERVED);
    assert_int_equal(v6("2606:4700:4700::1111"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v6("2a00:1450:4001::200e"), PROXY_ADDR_PUBLIC);
    uint8_t a[16], emb[4];
    bool has;
    inet_pton(AF_INET6, "::ffff:192.168.7.9", a);
    proxy_guard_classify_v6(a, emb, &has);
    assert_true(has);
    assert_int_equal(emb[0], 192);
    assert_int_equal(emb[3], 9);
}

/* ---- numeric spellings ------------------------------------------------------------------------- */

static void expect_ipv4(const char *text, const char *want) {
    uint8_t a[4];
    int rc = proxy_guard_parse_ipv4(text, strlen(text), a);
    if (rc != 1) fail_msg("%s: not read as IPv4 (%d)", text, rc);
    char got[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, a, got, sizeof got);
    if (strcmp(got, want) != 0) fail_msg("%s -> %s, wanted %s", text, got, want);
}

static void expect_ipv4_rc(const char *text, int want) {
    uint8_t a[4];
    int rc = proxy_guard_parse_ipv4(text, strlen(text), a);
    if (rc != want) fail_msg("%s -> %d, wanted %d", text, rc, want);
}

static void test_ipv4_spellings(void **state) {
    (void)state;
    expect_ipv4("127.0.0.1", "127.0.0.1");
    expect_ipv4("2130706433", "127.0.0.1");
    expect_ipv4("0x7f.1", "127.0.0.1");
    expect_ipv4("0x7F.0.0.1", "127.0.0.1");
    expect_ipv4("0177.0.0.1", "127.0.0.1");
    expect_ipv4("0177.1", "127.0.0.1");
    expect_ipv4("127.1", "127.0.0.1");
    expect_ipv4("127.0.1", "127.0.0.1");
    expect_ipv4("127.0.0.1.", "127.0.0.1");
    expect_ipv4("0x7f000001", "127.0.0.1");
    expect_ipv4("017700000001", "127.0.0.1");
    expect_ipv4("0", "0.0.0.0");
    expect_ipv4("0x", "0.0.0.0");
    expect_ipv4("10.0x10.0.1", "10.16.0.1");
    expect_ipv4("192.168.257", "192.168.1.1");
    expect_ipv4("3232235777", "192.168.1.1");
    expect_ipv4("0xa9fea9fe", "169.254.169.254");
    expect_ipv4("4294967295", "255.255.255.255");
    expect_ipv4_rc("4294967296", -1);
    expect_ipv4_rc("256.0.0.1", -1);
    expect_ipv4_rc("1.2.3.4.5", -1);
    expect_ipv4_rc("1.2.3.256", -1);
    expect_ipv4_rc("1.2.65536", -1);
    expect_ipv4_rc("08.0.0.1", -1);
    expect_ipv4_rc("1..2.3", -1);
    expect_ipv4_rc("foo.123", -1);
    expect_ipv4_rc("0x7g.0.0.1", -1); /* ends in a number, so it must be a valid IPv4: refused */
    expect_ipv4_rc("0x7f.example", 0); /* does not end in a number: a name */
    expect_ipv4_rc("example.com", 0);
    expect_ipv4_rc("1e3", 0);
    expect_ipv4_rc("a.b.0x", -1);
}

static void expect_host(const char *text, proxy_host_kind_t kind, const char *name, bool localhost) {
    proxy_host_t h;
    char err[128] = "";
    int rc = proxy_guard_parse_host(text, strlen(text), &h, err, sizeof err);
    if (kind == PROXY_HOST_INVALID) {
        if (rc == 0) fail_msg("%s accepted as %s", text, h.name);
        assert_true(err[0] != '\0');
        return;
    }
    if (rc != 0) fail_msg("%s refused: %s", text, err);
    assert_int_equal(h.kind, kind);
    assert_string_equal(h.name, name);
    assert_int_equal(h.localhost, localhost);
}

static void test_hosts(void **state) {
    (void)state;
    expect_host("Example.COM", PROXY_HOST_NAME, "example.com", false);
    expect_host("example.com.", PROXY_HOST_NAME, "example.com", false);
    expect_host("localhost", PROXY_HOST_NAME, "localhost", true);
    expect_host("LocalHost.", PROXY_HOST_NAME, "localhost", true);
    expect_host("foo.localhost", PROXY_HOST_NAME, "foo.localhost", true);
    expect_host("notlocalhost", PROXY_HOST_NAME, "notlocalhost", false);
    expect_host("%31%32%37.0.0.1", PROXY_HOST_IPV4, "127.0.0.1", false);
    expect_host("0x7f.1", PROXY_HOST_IPV4, "127.0.0.1", false);
    expect_host("[::1]", PROXY_HOST_IPV6, "::1", false);
    expect_host("[::ffff:127.0.0.1]", PROXY_HOST_IPV6, "::ffff:127.0.0.1", false);
    expect_host("[::FFFF:7F00:1]", PROXY_HOST_IPV6, "::ffff:127.0.0.1", false);
    expect_host("[fe80::1%25eth0]", PROXY_HOST_INVALID, NULL, false);
    expect_host("[::1", PROXY_HOST_INVALID, NULL, false);
    expect_host("[1.2.3.4]", PROXY_HOST_INVALID, NULL, false);
    expect_host("exa mple.com", PROXY_HOST_INVALID, NULL, false);
    expect_host("a..b", PROXY_HOST_INVALID, NULL, false);
    expect_host(".a", PROXY_HOST_INVALID, NULL, false);
    expect_host("", PROXY_HOST_INVALID, NULL, false);
    expect_host("%zz", PROXY_HOST_INVALID, NULL, false);
    expect_host("%00evil", PROXY_HOST_INVALID, NULL, false);
    expect_host("1.2.3.4.5", PROXY_HOST_INVALID, NULL, false);
    expect_host("xn--bcher-kva.example", PROXY_HOST_NAME, "xn--bcher-kva.example", false);
}

static void test_cidrs(void **state) {
    (void)state;
    proxy_cidr_t c;
    char err[200];
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/8", &c, err, sizeof err), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix_len, 8);
    assert_int_equal(proxy_guard_parse_cidr("fc00::/7", &c, err, sizeof err), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix_len, 7);
    assert_int_equal(proxy_guard_parse_cidr("192.168.1.7", &c, err, sizeof err), 0);
    assert_int_equal(c.prefix_len, 32);
    assert_int_equal(proxy_guard_parse_cidr("::1", &c, err, sizeof err), 0);
    assert_int_equal(c.prefix_len, 128);
    assert_int_equal(proxy_guard_parse_cidr("0.0.0.0/0", &c, err, sizeof err), 0);
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.1/8", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "did you mean 10.0.0.0/8"));
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/33", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "over 32"));
    assert_int_equal(proxy_guard_parse_cidr("10/8", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a numeric address"));
    assert_int_equal(proxy_guard_parse_cidr("example.com/8", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/8x", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/-1", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("/8", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("fe80::1/10", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "fe80::/10"));
    assert_int_equal(proxy_guard_parse_cidr("::/129", &c, err, sizeof err), -EINVAL);
}

static void test_guard_decisions(void **state) {
    (void)state;
    proxy_guard_t g;
    memset(&g, 0, sizeof g);
    g.enabled = true;
    char err[128];
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/8", &g.cidrs[g.cidr_count++], err, sizeof err), 0);
    assert_int_equal(proxy_guard_parse_cidr("fd00::/8", &g.cidrs[g.cidr_count++], err, sizeof err), 0);
    struct {
        const char *addr;
        bool allowed;
    } cases[] = {
        {"10.1.2.3", true},         {"::ffff:10.1.2.3", true}, {"64:ff9b::10.1.2.3", true}, {"11.0.0.1", true},
        {"192.168.0.1", false},     {"127.0.0.1", false},      {"::ffff:127.0.0.1", false}, {"fd00::1", true},
        {"fc00::1", false},         {"::1", false},            {"2606:4700::1", true},     {"0.0.0.0", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t a[16];
        int fam = strchr(cases[i].addr, ':') ? AF_INET6 : AF_INET;
        inet_pton(fam, cases[i].addr, a);
        proxy_addr_class_t cls;
        if (proxy_guard_check_raw(&g, fam, a, &cls) != cases[i].allowed) fail_msg("%s: wrong decision", cases[i].addr);
    }
    g.enabled = false;
    uint8_t lo[4] = {127, 0, 0, 1};
    assert_true(proxy_guard_check_raw(&g, AF_INET, lo, NULL));
}

/* ---- end to end --------------------------------------------------------------------------------- */

typedef struct {
    loop_fixture_t fx;
    origin_t origin;
} env_t;

static env_t *env_new(const char *const *allow, size_t allow_count) {
    proxy_upstream_set_hooks(fake_resolve, loopback_only_connect);
    atomic_store(&non_loopback_connects, 0);
    atomic_store(&connects, 0);
    env_t *e = calloc(1, sizeof *e);
    origin_start(&e->origin, ORIGIN_HTTP);
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    cfg.allow_private = allow;
    cfg.allow_private_count = allow_count;
    t_fixture_start(&e->fx, &cfg);
    return e;
}

static int teardown_env(void **state) {
    env_t *e = *state;
    if (!e) return 0;
    t_fixture_stop(&e->fx);
    origin_stop(&e->origin);
    free(e);
    *state = NULL;
    assert_int_equal(atomic_load(&non_loopback_connects), 0);
    return 0;
}

static void request_status(int proxy_port, const char *request, int *status, char *body, size_t cap) {
    t_conn_t c;
    t_conn_init(&c, t_connect(proxy_port));
    assert_true(t_csend(&c, request, strlen(request)));
    t_response_t r;
    assert_true(t_read_response(&c, &r, false));
    *status = r.status;
    snprintf(body, cap, "%s", r.body);
    close(c.fd);
}

static void test_every_trick_refused(void **state) {
    env_t *e = *state = env_new(NULL, 0);
    int op = e->origin.port;
    const char *hosts[] = {
        /* loopback in every spelling; the origin listens there, so a miss would show */
        "127.0.0.1", "2130706433", "0x7f.1", "0x7F000001", "0177.0.0.1", "017700000001", "127.1", "127.0.1", "127.0.0.1.",
        "%31%32%37.0.0.1", "127.000.000.001", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
        "[::ffff:0:7f00:1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "localhost", "localhost.", "LOCALHOST",
        "foo.localhost", "loopback.test", "v6loopback.test", "mapped.test",
        /* unspecified: connecting to it reaches this machine on Linux */
        "0", "0.0.0.0", "0x0", "[::]", "[::ffff:0.0.0.0]",
        /* the other classes (never connected to: the hook would fail the test) */
        "10.0.0.1", "10.255.255.255", "012.0.0.1", "167772161", "172.16.0.1", "172.31.1.1", "192.168.0.1", "0xc0a80001",
        "169.254.169.254", "0xa9fea9fe", "100.64.0.1", "224.0.0.1", "239.1.2.3", "255.255.255.255", "4294967295",
        "240.0.0.1", "[fc00::1]", "[fd12:3456::1]", "[fe80::1]", "[ff02::1]", "[fec0::1]", "[::ffff:10.0.0.1]",
        "[::ffff:a9fe:a9fe]", "[64:ff9b::a00:1]", "[2002:c0a8:1::]", "private.test", "linklocal.test", "ula.test",
    };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char req[512], body[65536];
        int status;
        snprintf(req, sizeof req, "GET http://%s:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", hosts[i], op);
        request_status(e->fx.port, req, &status, body, sizeof body);
        if (status != 403 || !strstr(body, "ERR_BLOCKED_PRIVATE_NETWORK")) fail_msg("GET %s -> %d %s", hosts[i], status, body);
        snprintf(req, sizeof req, "CONNECT %s:%d HTTP/1.1\r\n\r\n", hosts[i], op);
        request_status(e->fx.port, req, &status, body, sizeof body);
        if (status != 403) fail_msg("CONNECT %s -> %d", hosts[i], status);
    }
    traffic_counts_t k = t_wait_quiet(&e->fx);
    assert_int_equal(k.refused_requests, 2 * (sizeof hosts / sizeof hosts[0]));
    assert_int_equal(atomic_load(&connects), 0);
    assert_int_equal(atomic_load(&e->origin.connections), 0);
}

static void test_allowed_range_lets_through(void **state) {
    static const char *const allow[] = {"127.0.0.0/8"};
    env_t *e = *state = env_new(allow, 1);
    int op = e->origin.port;
    const char *ok_hosts[] = {"127.0.0.1", "127.1", "2130706433", "0x7f.1", "localhost", "loopback.test", "[::ffff:127.0.0.1]",
                              "mapped.test"};
    for (size_t i = 0; i < sizeof ok_hosts / sizeof ok_hosts[0]; i++) {
        char req[512], body[65536];
        int status;
        snprintf(req, sizeof req, "GET http://%s:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", ok_hosts[i], op);
        request_status(e->fx.port, req, &status, body, sizeof body);
        if (status != 200 || strcmp(body, "hello") != 0) fail_msg("%s -> %d %s", ok_hosts[i], status, body);
    }
    /* Outside the allowed range: still refused. */
    const char *refused[] = {"[::1]", "v6loopback.test", "0.0.0.0", "10.0.0.1"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char req[512], body[65536];
        int status;
        snprintf(req, sizeof req, "GET http://%s:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", refused[i], op);
        request_status(e->fx.port, req, &status, body, sizeof body);
        if (status != 403) fail_msg("%s -> %d", refused[i], status);
    }
    assert_int_equal(atomic_load(&e->origin.requests), sizeof ok_hosts / sizeof ok_hosts[0]);
}

static void test_guard_off(void **state) {
    proxy_upstream_set_hooks(fake_resolve, loopback_only_connect);
    env_t *e = calloc(1, sizeof *e);
    *state = e;
    origin_start(&e->origin, ORIGIN_HTTP);
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    cfg.guard_private = false;
    t_fixture_start(&e->fx, &cfg);
    char req[256], body[65536];
    int status;
    snprintf(req, sizeof req, "GET http://0x7f.1:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port);
    request_status(e->fx.port, req, &status, body, sizeof body);
    assert_int_equal(status, 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_v4),
        cmocka_unit_test(test_classes_v6),
        cmocka_unit_test(test_ipv4_spellings),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_guard_decisions),
        cmocka_unit_test_teardown(test_every_trick_refused, teardown_env),
        cmocka_unit_test_teardown(test_allowed_range_lets_through, teardown_env),
        cmocka_unit_test_teardown(test_guard_off, teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
