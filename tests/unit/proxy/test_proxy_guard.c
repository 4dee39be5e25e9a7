/* The private-network guard (proxy_guard.c): address classes (IPv4, IPv6, IPv4 carried in
 * IPv6), the numeric spellings of IPv4 hosts, host parsing, CIDR parsing, the decision; and end
 * to end through the proxy: every class and trick answered 403 before any connection, names
 * checked after resolution, an allowed range let through, the guard switched off.
 *
 * The proxy's connects go through the loopback-only hook (proxy_test_util.h), so a broken guard
 * cannot reach another network from here. */
#include "proxy_test_util.h"

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

static void test_ipv4_addresses_fall_into_their_classes(void **state) {
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

static void test_ipv6_addresses_fall_into_their_classes(void **state) {
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
    assert_int_equal(v6("64:ff9b:1::1"), PROXY_ADDR_PRIVATE); /* local-use NAT64 */
    assert_int_equal(v6("2001:db8::1"), PROXY_ADDR_RESERVED);
    assert_int_equal(v6("100::1"), PROXY_ADDR_RESERVED);
    assert_int_equal(v6("2606:4700:4700::1111"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v6("2a00:1450:4001::200e"), PROXY_ADDR_PUBLIC);
}

static void test_ipv6_carrying_ipv4_takes_the_ipv4_class(void **state) {
    (void)state;
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
    assert_int_equal(v6("2002:7f00:1::1"), PROXY_ADDR_LOOPBACK);       /* 6to4 */
    assert_int_equal(v6("2002:c0a8:101::1"), PROXY_ADDR_PRIVATE);
    assert_int_equal(v6("2002:808:808::1"), PROXY_ADDR_PUBLIC);
    assert_int_equal(v6("2001:0:a00:1::1"), PROXY_ADDR_PRIVATE);        /* Teredo, server 10.0.0.1 */
    assert_int_equal(v6("2001:0:4136:e378:8000:63bf:80ff:fffe"), PROXY_ADDR_LOOPBACK); /* client ~ = 127.0.0.1 */
    assert_int_equal(v6("2001:0:4136:e378:8000:63bf:f7f7:f7f7"), PROXY_ADDR_PUBLIC);
}

static void test_ipv6_classification_hands_out_the_carried_ipv4(void **state) {
    (void)state;
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

static void test_ipv4_is_read_in_every_numeric_spelling(void **state) {
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
}

static void test_host_ending_in_a_number_must_be_a_valid_ipv4(void **state) {
    (void)state;
    expect_ipv4_rc("4294967296", -1);
    expect_ipv4_rc("256.0.0.1", -1);
    expect_ipv4_rc("1.2.3.4.5", -1);
    expect_ipv4_rc("1.2.3.256", -1);
    expect_ipv4_rc("1.2.65536", -1);
    expect_ipv4_rc("08.0.0.1", -1);
    expect_ipv4_rc("1..2.3", -1);
    expect_ipv4_rc("foo.123", -1);
    expect_ipv4_rc("0x7g.0.0.1", -1); /* ends in a number, so it must be a valid IPv4: refused */
    expect_ipv4_rc("a.b.0x", -1);
}

static void test_host_not_ending_in_a_number_is_a_name(void **state) {
    (void)state;
    expect_ipv4_rc("0x7f.example", 0); /* does not end in a number: a name */
    expect_ipv4_rc("example.com", 0);
    expect_ipv4_rc("1e3", 0);
}

static void test_hex_digits_are_read_in_either_case(void **state) {
    (void)state;
    assert_int_equal(proxy_guard_hex_digit('0'), 0);
    assert_int_equal(proxy_guard_hex_digit('9'), 9);
    assert_int_equal(proxy_guard_hex_digit('a'), 10);
    assert_int_equal(proxy_guard_hex_digit('F'), 15);
    assert_int_equal(proxy_guard_hex_digit('g'), -1);
    assert_int_equal(proxy_guard_hex_digit('%'), -1);
    assert_int_equal(proxy_guard_hex_digit('\0'), -1);
}

/* ---- hosts --------------------------------------------------------------------------------------- */

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

static void test_host_names_are_made_canonical(void **state) {
    (void)state;
    expect_host("Example.COM", PROXY_HOST_NAME, "example.com", false);
    expect_host("example.com.", PROXY_HOST_NAME, "example.com", false);
    expect_host("notlocalhost", PROXY_HOST_NAME, "notlocalhost", false);
    expect_host("xn--bcher-kva.example", PROXY_HOST_NAME, "xn--bcher-kva.example", false);
}

static void test_localhost_names_are_marked(void **state) {
    (void)state;
    expect_host("localhost", PROXY_HOST_NAME, "localhost", true);
    expect_host("LocalHost.", PROXY_HOST_NAME, "localhost", true);
    expect_host("foo.localhost", PROXY_HOST_NAME, "foo.localhost", true);
}

static void test_ipv4_hosts_are_decoded_to_their_canonical_text(void **state) {
    (void)state;
    expect_host("%31%32%37.0.0.1", PROXY_HOST_IPV4, "127.0.0.1", false);
    expect_host("0x7f.1", PROXY_HOST_IPV4, "127.0.0.1", false);
}

static void test_ipv6_hosts_in_brackets_get_their_canonical_text(void **state) {
    (void)state;
    expect_host("[::1]", PROXY_HOST_IPV6, "::1", false);
    expect_host("[::ffff:127.0.0.1]", PROXY_HOST_IPV6, "::ffff:127.0.0.1", false);
    expect_host("[::FFFF:7F00:1]", PROXY_HOST_IPV6, "::ffff:127.0.0.1", false);
}

static void test_malformed_hosts_are_refused_with_a_reason(void **state) {
    (void)state;
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
}

/* ---- CIDRs ----------------------------------------------------------------------------------------- */

static void test_cidr_prefixes_are_parsed(void **state) {
    (void)state;
    proxy_cidr_t c;
    char err[200];
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/8", &c, err, sizeof err), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix_len, 8);
    assert_int_equal(proxy_guard_parse_cidr("fc00::/7", &c, err, sizeof err), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix_len, 7);
    assert_int_equal(proxy_guard_parse_cidr("0.0.0.0/0", &c, err, sizeof err), 0);
}

static void test_cidr_bare_address_is_one_address(void **state) {
    (void)state;
    proxy_cidr_t c;
    char err[200];
    assert_int_equal(proxy_guard_parse_cidr("192.168.1.7", &c, err, sizeof err), 0);
    assert_int_equal(c.prefix_len, 32);
    assert_int_equal(proxy_guard_parse_cidr("::1", &c, err, sizeof err), 0);
    assert_int_equal(c.prefix_len, 128);
}

static void test_cidr_with_host_bits_is_refused_with_the_network_it_meant(void **state) {
    (void)state;
    proxy_cidr_t c;
    char err[200];
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.1/8", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "did you mean 10.0.0.0/8"));
    assert_int_equal(proxy_guard_parse_cidr("fe80::1/10", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "fe80::/10"));
}

static void test_cidr_prefix_over_the_address_length_is_refused(void **state) {
    (void)state;
    proxy_cidr_t c;
    char err[200];
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/33", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "over 32"));
    assert_int_equal(proxy_guard_parse_cidr("::/129", &c, err, sizeof err), -EINVAL);
}

static void test_cidr_not_numeric_or_malformed_is_refused(void **state) {
    (void)state;
    proxy_cidr_t c;
    char err[200];
    assert_int_equal(proxy_guard_parse_cidr("10/8", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a numeric address"));
    assert_int_equal(proxy_guard_parse_cidr("example.com/8", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/8x", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/-1", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("", &c, err, sizeof err), -EINVAL);
    assert_int_equal(proxy_guard_parse_cidr("/8", &c, err, sizeof err), -EINVAL);
}

/* ---- the decision ------------------------------------------------------------------------------------ */

/* A guard that opens 10/8 and fd00::/8. */
static void guard_with_two_ranges(proxy_guard_t *g) {
    memset(g, 0, sizeof *g);
    g->enabled = true;
    char err[128];
    assert_int_equal(proxy_guard_parse_cidr("10.0.0.0/8", &g->cidrs[g->cidr_count++], err, sizeof err), 0);
    assert_int_equal(proxy_guard_parse_cidr("fd00::/8", &g->cidrs[g->cidr_count++], err, sizeof err), 0);
}

static void expect_decision(const proxy_guard_t *g, const char *addr, bool allowed) {
    uint8_t a[16];
    int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
    inet_pton(fam, addr, a);
    proxy_addr_class_t cls;
    if (proxy_guard_check_raw(g, fam, a, &cls) != allowed) fail_msg("%s: wrong decision", addr);
}

static void test_guard_lets_public_addresses_through(void **state) {
    (void)state;
    proxy_guard_t g;
    guard_with_two_ranges(&g);
    expect_decision(&g, "11.0.0.1", true);
    expect_decision(&g, "2606:4700::1", true);
}

static void test_guard_opens_allowed_ranges_also_when_carried_in_ipv6(void **state) {
    (void)state;
    proxy_guard_t g;
    guard_with_two_ranges(&g);
    expect_decision(&g, "10.1.2.3", true);
    expect_decision(&g, "::ffff:10.1.2.3", true);
    expect_decision(&g, "64:ff9b::10.1.2.3", true);
    expect_decision(&g, "fd00::1", true);
}

static void test_guard_refuses_other_addresses_that_are_not_public(void **state) {
    (void)state;
    proxy_guard_t g;
    guard_with_two_ranges(&g);
    expect_decision(&g, "192.168.0.1", false);
    expect_decision(&g, "127.0.0.1", false);
    expect_decision(&g, "::ffff:127.0.0.1", false);
    expect_decision(&g, "fc00::1", false);
    expect_decision(&g, "::1", false);
    expect_decision(&g, "0.0.0.0", false);
}

static void test_guard_switched_off_lets_everything_through(void **state) {
    (void)state;
    proxy_guard_t g;
    guard_with_two_ranges(&g);
    g.enabled = false;
    uint8_t lo[4] = {127, 0, 0, 1};
    assert_true(proxy_guard_check_raw(&g, AF_INET, lo, NULL));
}

/* ---- end to end ------------------------------------------------------------------------------------- */

static t_env_t *guard_env(const char *const *allow, size_t allow_count) {
    t_env_t *e = t_env_new(ORIGIN_HTTP, NULL);
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    cfg.allow_private = allow;
    cfg.allow_private_count = allow_count;
    t_env_start_proxy(e, &cfg);
    return e;
}

static int request_status(int proxy_port, const char *request, char *body, size_t cap) {
    static t_response_t r;
    t_request_once(proxy_port, request, &r);
    snprintf(body, cap, "%s", r.body);
    return r.status;
}

/* Every host refused with 403, as a plain request and as a CONNECT, before any connection. The
 * origin listens on loopback, so a miss there would show. */
static void expect_all_refused(t_env_t *e, const char *const *hosts, size_t n) {
    int op = e->origin.port;
    for (size_t i = 0; i < n; i++) {
        char req[512];
        static char body[65536];
        snprintf(req, sizeof req, "GET http://%s:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", hosts[i], op);
        int status = request_status(e->fx.port, req, body, sizeof body);
        if (status != 403 || !strstr(body, "ERR_BLOCKED_PRIVATE_NETWORK")) fail_msg("GET %s -> %d %s", hosts[i], status, body);
        snprintf(req, sizeof req, "CONNECT %s:%d HTTP/1.1\r\n\r\n", hosts[i], op);
        status = request_status(e->fx.port, req, body, sizeof body);
        if (status != 403) fail_msg("CONNECT %s -> %d", hosts[i], status);
    }
    traffic_counts_t k = t_wait_quiet(&e->fx);
    assert_int_equal(k.refused_requests, 2 * n);
    assert_int_equal(atomic_load(&t_connects), 0);
    assert_int_equal(atomic_load(&e->origin.connections), 0);
}

#define EXPECT_ALL_REFUSED(e, hosts) expect_all_refused(e, hosts, sizeof hosts / sizeof hosts[0])

static void test_loopback_is_refused_in_every_spelling(void **state) {
    t_env_t *e = *state = guard_env(NULL, 0);
    static const char *const hosts[] = {
        "127.0.0.1", "2130706433", "0x7f.1", "0x7F000001", "0177.0.0.1", "017700000001", "127.1", "127.0.1", "127.0.0.1.",
        "%31%32%37.0.0.1", "127.000.000.001", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
        "[::ffff:0:7f00:1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]",
    };
    EXPECT_ALL_REFUSED(e, hosts);
}

static void test_localhost_names_are_refused(void **state) {
    t_env_t *e = *state = guard_env(NULL, 0);
    static const char *const hosts[] = {"localhost", "localhost.", "LOCALHOST", "foo.localhost"};
    EXPECT_ALL_REFUSED(e, hosts);
}

static void test_names_resolving_to_private_addresses_are_refused(void **state) {
    t_env_t *e = *state = guard_env(NULL, 0);
    static const char *const hosts[] = {"loopback.test", "v6loopback.test", "mapped.test", "private.test", "linklocal.test",
                                        "ula.test"};
    EXPECT_ALL_REFUSED(e, hosts);
}

static void test_unspecified_addresses_are_refused(void **state) {
    t_env_t *e = *state = guard_env(NULL, 0);
    /* connecting to it reaches this machine on Linux */
    static const char *const hosts[] = {"0", "0.0.0.0", "0x0", "[::]", "[::ffff:0.0.0.0]"};
    EXPECT_ALL_REFUSED(e, hosts);
}

static void test_private_and_special_classes_are_refused(void **state) {
    t_env_t *e = *state = guard_env(NULL, 0);
    /* never connected to: the hook would fail the test */
    static const char *const hosts[] = {
        "10.0.0.1", "10.255.255.255", "012.0.0.1", "167772161", "172.16.0.1", "172.31.1.1", "192.168.0.1", "0xc0a80001",
        "169.254.169.254", "0xa9fea9fe", "100.64.0.1", "224.0.0.1", "239.1.2.3", "255.255.255.255", "4294967295",
        "240.0.0.1", "[fc00::1]", "[fd12:3456::1]", "[fe80::1]", "[ff02::1]", "[fec0::1]", "[::ffff:10.0.0.1]",
        "[::ffff:a9fe:a9fe]", "[64:ff9b::a00:1]", "[2002:c0a8:1::]",
    };
    EXPECT_ALL_REFUSED(e, hosts);
}

static void test_allowed_range_lets_its_addresses_through(void **state) {
    static const char *const allow[] = {"127.0.0.0/8"};
    t_env_t *e = *state = guard_env(allow, 1);
    int op = e->origin.port;
    const char *ok_hosts[] = {"127.0.0.1", "127.1", "2130706433", "0x7f.1", "localhost", "loopback.test", "[::ffff:127.0.0.1]",
                              "mapped.test"};
    for (size_t i = 0; i < sizeof ok_hosts / sizeof ok_hosts[0]; i++) {
        char req[512];
        static char body[65536];
        snprintf(req, sizeof req, "GET http://%s:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", ok_hosts[i], op);
        int status = request_status(e->fx.port, req, body, sizeof body);
        if (status != 200 || strcmp(body, "hello") != 0) fail_msg("%s -> %d %s", ok_hosts[i], status, body);
    }
    assert_int_equal(atomic_load(&e->origin.requests), sizeof ok_hosts / sizeof ok_hosts[0]);
}

static void test_allowed_range_keeps_the_rest_refused(void **state) {
    static const char *const allow[] = {"127.0.0.0/8"};
    t_env_t *e = *state = guard_env(allow, 1);
    int op = e->origin.port;
    const char *refused[] = {"[::1]", "v6loopback.test", "0.0.0.0", "10.0.0.1"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char req[512];
        static char body[65536];
        snprintf(req, sizeof req, "GET http://%s:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", refused[i], op);
        int status = request_status(e->fx.port, req, body, sizeof body);
        if (status != 403) fail_msg("%s -> %d", refused[i], status);
    }
    assert_int_equal(atomic_load(&e->origin.requests), 0);
}

static void test_guard_switched_off_lets_private_addresses_through(void **state) {
    t_env_t *e = t_env_new(ORIGIN_HTTP, NULL);
    *state = e;
    traffic_proxy_config_t cfg;
    traffic_proxy_config_defaults(&cfg);
    cfg.guard_private = false;
    t_env_start_proxy(e, &cfg);
    char req[256];
    static char body[65536];
    snprintf(req, sizeof req, "GET http://0x7f.1:%d/hello HTTP/1.1\r\nHost: x\r\n\r\n", e->origin.port);
    assert_int_equal(request_status(e->fx.port, req, body, sizeof body), 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_addresses_fall_into_their_classes),
        cmocka_unit_test(test_ipv6_addresses_fall_into_their_classes),
        cmocka_unit_test(test_ipv6_carrying_ipv4_takes_the_ipv4_class),
        cmocka_unit_test(test_ipv6_classification_hands_out_the_carried_ipv4),
        cmocka_unit_test(test_ipv4_is_read_in_every_numeric_spelling),
        cmocka_unit_test(test_host_ending_in_a_number_must_be_a_valid_ipv4),
        cmocka_unit_test(test_host_not_ending_in_a_number_is_a_name),
        cmocka_unit_test(test_hex_digits_are_read_in_either_case),
        cmocka_unit_test(test_host_names_are_made_canonical),
        cmocka_unit_test(test_localhost_names_are_marked),
        cmocka_unit_test(test_ipv4_hosts_are_decoded_to_their_canonical_text),
        cmocka_unit_test(test_ipv6_hosts_in_brackets_get_their_canonical_text),
        cmocka_unit_test(test_malformed_hosts_are_refused_with_a_reason),
        cmocka_unit_test(test_cidr_prefixes_are_parsed),
        cmocka_unit_test(test_cidr_bare_address_is_one_address),
        cmocka_unit_test(test_cidr_with_host_bits_is_refused_with_the_network_it_meant),
        cmocka_unit_test(test_cidr_prefix_over_the_address_length_is_refused),
        cmocka_unit_test(test_cidr_not_numeric_or_malformed_is_refused),
        cmocka_unit_test(test_guard_lets_public_addresses_through),
        cmocka_unit_test(test_guard_opens_allowed_ranges_also_when_carried_in_ipv6),
        cmocka_unit_test(test_guard_refuses_other_addresses_that_are_not_public),
        cmocka_unit_test(test_guard_switched_off_lets_everything_through),
        cmocka_unit_test_teardown(test_loopback_is_refused_in_every_spelling, t_teardown_env),
        cmocka_unit_test_teardown(test_localhost_names_are_refused, t_teardown_env),
        cmocka_unit_test_teardown(test_names_resolving_to_private_addresses_are_refused, t_teardown_env),
        cmocka_unit_test_teardown(test_unspecified_addresses_are_refused, t_teardown_env),
        cmocka_unit_test_teardown(test_private_and_special_classes_are_refused, t_teardown_env),
        cmocka_unit_test_teardown(test_allowed_range_lets_its_addresses_through, t_teardown_env),
        cmocka_unit_test_teardown(test_allowed_range_keeps_the_rest_refused, t_teardown_env),
        cmocka_unit_test_teardown(test_guard_switched_off_lets_private_addresses_through, t_teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
