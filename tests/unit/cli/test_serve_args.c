/* serve's option values: listen addresses, seconds, counts, the spool's default path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli/serve_args.h"

static void test_listen_addresses_and_their_errors(void **state) {
    (void)state;
    char host[64];
    int port = -1;
    assert_int_equal(serve_parse_listen("127.0.0.1:9222", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9222);
    assert_int_equal(serve_parse_listen("[::1]:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    const char *bad[] = {"", "9222", ":9222", "host:", "host:65536", "host:-1", "host:12x", "[::1:80", "[]:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(serve_parse_listen(bad[i], host, sizeof host, &port), -1);
    char tiny[4];
    assert_int_equal(serve_parse_listen("abcd:1", tiny, sizeof tiny, &port), -1); /* no room for the NUL */
}

static void test_seconds_are_positive_and_at_most_a_year(void **state) {
    (void)state;
    uint64_t ms = 0;
    assert_int_equal(serve_parse_seconds("2", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(serve_parse_seconds("0.25", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(serve_parse_seconds("31536000", &ms), 0);
    const char *bad[] = {"", "0", "-1", "1s", "31536001", "nan", "inf", " "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(serve_parse_seconds(bad[i], &ms), -1);
}

static void test_counts_are_plain_digits_in_range(void **state) {
    (void)state;
    unsigned n = 0;
    assert_int_equal(serve_parse_count("8", 0, 64, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(serve_parse_count("0", 0, 64, &n), 0);
    const char *bad[] = {"", "65", "-1", "1x", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(serve_parse_count(bad[i], 0, 64, &n), -1);
    assert_int_equal(serve_parse_count("0", 1, 64, &n), -1);
}

static void test_spool_beside_a_file_or_named_after_the_node(void **state) {
    (void)state;
    char out[256];
    serve_default_spool_path("/var/lib/browserd/b.db", NULL, out, sizeof out);
    assert_string_equal(out, "/var/lib/browserd/b.db.spool");
    serve_default_spool_path("postgresql://h/db", "node-1.a", out, sizeof out);
    assert_string_equal(out, "./browserd-node-1.a.spool");
    serve_default_spool_path("postgresql://h/db", "a/b c", out, sizeof out); /* never a path */
    assert_string_equal(out, "./browserd-a_b_c.spool");
}

static void test_env_or_takes_a_set_non_empty_value(void **state) {
    (void)state;
    setenv("BROWSERD_TEST_SERVE_ARGS", "x", 1);
    assert_string_equal(serve_env_or("BROWSERD_TEST_SERVE_ARGS", "d"), "x");
    setenv("BROWSERD_TEST_SERVE_ARGS", "", 1);
    assert_string_equal(serve_env_or("BROWSERD_TEST_SERVE_ARGS", "d"), "d");
    unsetenv("BROWSERD_TEST_SERVE_ARGS");
    assert_null(serve_env_or("BROWSERD_TEST_SERVE_ARGS", NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_addresses_and_their_errors),
        cmocka_unit_test(test_seconds_are_positive_and_at_most_a_year),
        cmocka_unit_test(test_counts_are_plain_digits_in_range),
        cmocka_unit_test(test_spool_beside_a_file_or_named_after_the_node),
        cmocka_unit_test(test_env_or_takes_a_set_non_empty_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
