/* The URL filter rules of the contract: host extraction, domain and prefix matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "session/url_match.h"

static const char *host(const char *url) {
    static char out[256];
    const char *h;
    size_t n;
    if (!url_host(url, strlen(url), &h, &n)) return NULL;
    memcpy(out, h, n);
    out[n] = '\0';
    return out;
}

static void test_host_extraction(void **state) {
    (void)state;
    assert_string_equal(host("https://www.example.com/x"), "www.example.com");
    assert_string_equal(host("http://example.com"), "example.com");
    assert_string_equal(host("http://EXAMPLE.com:8080/x?y"), "EXAMPLE.com");
    assert_string_equal(host("https://user:p%40ss@example.org/p"), "example.org");
    assert_string_equal(host("https://a@b@example.org/"), "example.org");
    assert_string_equal(host("http://[::1]:9000/v6"), "[::1]");
    assert_string_equal(host("https://example.com?q=a/b"), "example.com");
    assert_string_equal(host("https://example.com#frag"), "example.com");
    assert_string_equal(host("https://x.com/path@notahost.com"), "x.com");
    assert_null(host("about:blank"));
    assert_null(host("data:text/html,hi"));
    assert_null(host("https:///path"));
    assert_null(host("example.com/x"));
    assert_null(host("ht tp://example.com/")); /* not a scheme */
    assert_null(host("http://[::1/"));
}

static bool domain(const char *h, const char *d) { return url_host_matches_domain(h, strlen(h), d, strlen(d)); }

static void test_domain_matching(void **state) {
    (void)state;
    assert_true(domain("example.com", "example.com"));
    assert_true(domain("www.example.com", "example.com"));
    assert_true(domain("a.b.example.com", "example.com"));
    assert_true(domain("WWW.EXAMPLE.COM", "example.com"));
    assert_false(domain("notexample.com", "example.com"));
    assert_false(domain("example.com.evil.org", "example.com"));
    assert_false(domain("example.co", "example.com"));
    assert_false(domain("com", "example.com"));
    assert_true(domain("www.example.com", "com"));
    assert_false(domain(".example.com", "xample.com"));
    assert_true(domain(".example.com", "example.com")); /* ends with "." + domain */
}

static bool prefix(const char *u, const char *p) { return url_has_prefix(u, strlen(u), p, strlen(p)); }

static void test_prefix_and_order(void **state) {
    (void)state;
    assert_true(prefix("https://www.example.com/x", "https://www.example.com/"));
    assert_true(prefix("HTTPS://WWW.Example.com/X", "https://www.example.com/x"));
    assert_false(prefix("https://www.example.com", "https://www.example.com/"));
    assert_false(prefix("http://www.example.com/", "https://"));
    assert_true(url_casecmp("ABC", 3, "abc", 3) == 0);
    assert_true(url_casecmp("abc", 3, "abd", 3) < 0);
    assert_true(url_casecmp("ab", 2, "abc", 3) < 0);
    assert_true(url_casecmp("Z", 1, "a", 1) > 0); /* folded: 'z' > 'a' */
    assert_true(url_casecmp("\xc3", 1, "z", 1) > 0);
    /* long strings: the word-at-a-time prefix skip must not decide on raw bytes */
    const char *u1 = "https://www.example.com/Products/1", *u2 = "https://www.example.com/products/2";
    assert_true(url_casecmp(u1, strlen(u1), u2, strlen(u2)) < 0);
    assert_true(url_casecmp(u2, strlen(u2), u1, strlen(u1)) > 0);
    const char *u3 = "HTTPS://WWW.EXAMPLE.COM/PRODUCTS/1";
    assert_int_equal(url_casecmp(u1, strlen(u1), u3, strlen(u3)), 0);
    assert_true(url_casecmp(u1, 16, u1, 17) < 0);
    assert_true(url_casecmp("https://www.a.com/z", 19, "https://www.a.com/Y", 19) > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_extraction),
        cmocka_unit_test(test_domain_matching),
        cmocka_unit_test(test_prefix_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
