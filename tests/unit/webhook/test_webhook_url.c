/* Webhook URLs: what is accepted and how it is taken apart, what is refused and why, and the
 * private-network guard at add time (literals and localhost names: no DNS server needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "webhook/webhook_url.h"

static void test_a_plain_url_is_taken_apart(void **state) {
    (void)state;
    webhook_url_t u;
    char err[256] = "";
    assert_int_equal(webhook_url_parse("http://Hooks.Example.com:8080/in/browserd?x=1", &u, err, sizeof err), 0);
    assert_int_equal(u.host.kind, PROXY_HOST_NAME);
    assert_string_equal(u.host.name, "hooks.example.com");
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.host_header, "Hooks.Example.com:8080");
    assert_string_equal(u.target, "/in/browserd?x=1");
    assert_int_equal(webhook_url_parse("http://10.1.2.3", &u, err, sizeof err), 0);
    assert_int_equal(u.host.kind, PROXY_HOST_IPV4);
    assert_int_equal(u.port, 80);
    assert_string_equal(u.target, "/");
    assert_int_equal(webhook_url_parse("HTTP://[::1]:9/h", &u, err, sizeof err), 0);
    assert_int_equal(u.host.kind, PROXY_HOST_IPV6);
    assert_int_equal(u.port, 9);
    assert_int_equal(webhook_url_parse("http://example.com?q", &u, err, sizeof err), 0);
    assert_string_equal(u.target, "/?q");
    assert_false(u.tls);
    assert_int_equal(webhook_url_parse("HTTPS://hooks.example.com/in", &u, err, sizeof err), 0);
    assert_true(u.tls);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.host.name, "hooks.example.com");
    assert_string_equal(u.host_header, "hooks.example.com");
    assert_string_equal(u.target, "/in");
    assert_int_equal(webhook_url_parse("https://10.0.0.1:8443", &u, err, sizeof err), 0);
    assert_int_equal(u.port, 8443);
}

static void refused(const char *url, const char *reason_part) {
    webhook_url_t u;
    char err[256] = "";
    assert_int_equal(webhook_url_parse(url, &u, err, sizeof err), -EINVAL);
    if (!strstr(err, reason_part)) fail_msg("%s: reason \"%s\" lacks \"%s\"", url, err, reason_part);
}

static void test_what_is_refused_says_why(void **state) {
    (void)state;
    refused("ftp://example.com/", "expected an http:// or https:// URL");
    refused("example.com/hook", "expected an http:// or https:// URL");
    refused("https://user@example.com/", "credentials");
    refused("http://user:pw@example.com/", "credentials");
    refused("http://example.com/#top", "fragment");
    refused("http://example.com/a b", "space");
    refused("http://example.com:0/", "port");
    refused("http://example.com:65536/", "port");
    refused("http://example.com:/", "PORT");
    refused("http:///hook", "empty");
    refused("http://[::1/", "]");
    refused("http://1.2.3.4.5/", "invalid host");
    refused("", "characters");
}

static void test_private_receivers_are_refused_unless_a_range_covers_them(void **state) {
    (void)state;
    proxy_guard_t none, lo, metadata;
    char err[256] = "";
    const char *lo_range[] = {"127.0.0.0/8", "::1"};
    const char *md_range[] = {"169.254.169.254"};
    assert_int_equal(webhook_url_guard(NULL, 0, &none, err, sizeof err), 0);
    assert_int_equal(webhook_url_guard(lo_range, 2, &lo, err, sizeof err), 0);
    assert_int_equal(webhook_url_guard(md_range, 1, &metadata, err, sizeof err), 0);

    assert_int_equal(webhook_url_vet("http://169.254.169.254/latest/meta-data", &none, err, sizeof err), -EACCES);
    assert_non_null(strstr(err, "link-local"));
    assert_non_null(strstr(err, "--allow-private"));
    assert_int_equal(webhook_url_vet("http://169.254.169.254/latest/meta-data", &metadata, err, sizeof err), 0);
    assert_int_equal(webhook_url_vet("http://0x7f.1:8080/", &none, err, sizeof err), -EACCES); /* 127.0.0.1 */
    assert_int_equal(webhook_url_vet("http://[::ffff:10.0.0.1]/", &none, err, sizeof err), -EACCES);
    /* localhost is this machine whatever a resolver says: both its addresses must pass */
    assert_int_equal(webhook_url_vet("http://localhost:9/", &none, err, sizeof err), -EACCES);
    assert_int_equal(webhook_url_vet("http://api.localhost:9/", &lo, err, sizeof err), 0);
    assert_int_equal(webhook_url_vet("http://127.0.0.1:9/", &lo, err, sizeof err), 0);
    assert_int_equal(webhook_url_vet("http://192.168.1.1:9/", &lo, err, sizeof err), -EACCES);
    assert_int_equal(webhook_url_vet("http://93.184.216.34/", &none, err, sizeof err), 0); /* public */
}

static void test_a_bad_range_is_named(void **state) {
    (void)state;
    proxy_guard_t g;
    char err[256] = "";
    const char *bad[] = {"10.0.0.1/8"};
    assert_int_equal(webhook_url_guard(bad, 1, &g, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "10.0.0.1/8"));
}

static void test_resolve_keeps_only_allowed_addresses(void **state) {
    (void)state;
    proxy_guard_t lo4;
    char err[256] = "";
    const char *r[] = {"127.0.0.0/8"};
    assert_int_equal(webhook_url_guard(r, 1, &lo4, err, sizeof err), 0);
    webhook_url_t u;
    assert_int_equal(webhook_url_parse("http://localhost:4321/", &u, err, sizeof err), 0);
    webhook_addr_t addrs[WEBHOOK_MAX_ADDRS];
    size_t n = 0;
    /* at delivery: ::1 is refused, 127.0.0.1 is used */
    assert_int_equal(webhook_url_resolve(&u, &lo4, addrs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(addrs[0].addr.ss_family, AF_INET);
    proxy_guard_t none;
    assert_int_equal(webhook_url_guard(NULL, 0, &none, err, sizeof err), 0);
    assert_int_equal(webhook_url_resolve(&u, &none, addrs, &n, err, sizeof err), -EACCES);
    assert_int_equal(n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_plain_url_is_taken_apart),
        cmocka_unit_test(test_what_is_refused_says_why),
        cmocka_unit_test(test_private_receivers_are_refused_unless_a_range_covers_them),
        cmocka_unit_test(test_a_bad_range_is_named),
        cmocka_unit_test(test_resolve_keeps_only_allowed_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
