/* Unit tests of src/net/failure_limit.c: the bucket of one address (burst, refill, the wait),
 * how addresses are told apart (IPv4, IPv6 by /64, IPv4-mapped), and that a flood of other
 * addresses cannot push a limited one out of the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/failure_limit.h"

static struct sockaddr_storage addr(const char *text) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) v4->sin_family = AF_INET;
    else {
        assert_int_equal(inet_pton(AF_INET6, text, &v6->sin6_addr), 1);
        v6->sin6_family = AF_INET6;
    }
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_burst_then_one_a_second(void **state) {
    (void)state;
    failure_limit_t *fl = failure_limit_new(3, 1.0);
    assert_non_null(fl);
    struct sockaddr_storage a = addr("192.0.2.1");
    uint64_t t = 1000000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(failure_limit_wait(fl, SA(a), t), 0);
        failure_limit_fail(fl, SA(a), t);
    }
    assert_int_equal(failure_limit_wait(fl, SA(a), t), 1); /* empty: one token comes in 1 s */
    assert_int_equal(failure_limit_wait(fl, SA(a), t + 999), 1);
    assert_int_equal(failure_limit_wait(fl, SA(a), t + 1000), 0);
    failure_limit_fail(fl, SA(a), t + 1000);
    assert_int_equal(failure_limit_wait(fl, SA(a), t + 1000), 1);
    /* after a long quiet time the whole burst is back, no more */
    t += 3600 * 1000;
    for (int i = 0; i < 3; i++) failure_limit_fail(fl, SA(a), t);
    assert_int_equal(failure_limit_wait(fl, SA(a), t), 1);
    failure_limit_free(fl);
}

static void test_slow_refill_says_how_long(void **state) {
    (void)state;
    failure_limit_t *fl = failure_limit_new(1, 0.1); /* one every 10 s */
    struct sockaddr_storage a = addr("192.0.2.7");
    failure_limit_fail(fl, SA(a), 5000);
    assert_int_equal(failure_limit_wait(fl, SA(a), 5000), 10);
    assert_int_equal(failure_limit_wait(fl, SA(a), 9500), 6);
    assert_int_equal(failure_limit_wait(fl, SA(a), 15000), 0);
    failure_limit_free(fl);
}

static void test_addresses_apart_and_together(void **state) {
    (void)state;
    failure_limit_t *fl = failure_limit_new(1, 1.0);
    struct sockaddr_storage a = addr("192.0.2.1"), b = addr("192.0.2.2"), mapped = addr("::ffff:192.0.2.1");
    struct sockaddr_storage v6 = addr("2001:db8:1:2::1"), v6_same64 = addr("2001:db8:1:2:ffff::9"),
                            v6_other64 = addr("2001:db8:1:3::1");
    failure_limit_fail(fl, SA(a), 0);
    assert_int_equal(failure_limit_wait(fl, SA(a), 0), 1);
    assert_int_equal(failure_limit_wait(fl, SA(b), 0), 0);
    assert_int_equal(failure_limit_wait(fl, SA(mapped), 0), 1); /* the same IPv4 host */
    failure_limit_fail(fl, SA(v6), 0);
    assert_int_equal(failure_limit_wait(fl, SA(v6_same64), 0), 1);
    assert_int_equal(failure_limit_wait(fl, SA(v6_other64), 0), 0);
    /* other families (a Unix socket) are never limited */
    struct sockaddr_storage unix_addr = {.ss_family = AF_UNIX};
    failure_limit_fail(fl, SA(unix_addr), 0);
    assert_int_equal(failure_limit_wait(fl, SA(unix_addr), 0), 0);
    assert_int_equal(failure_limit_wait(NULL, SA(a), 0), 0); /* no table: no limit */
    failure_limit_free(fl);
}

/* Ten times as many other addresses as the table holds, each failing once: the limited
 * address is never the one replaced (its bucket is empty, theirs are not). */
static void test_a_flood_of_other_addresses_does_not_free_a_limited_one(void **state) {
    (void)state;
    failure_limit_t *fl = failure_limit_new(2, 0.001);
    struct sockaddr_storage bad = addr("198.51.100.9");
    failure_limit_fail(fl, SA(bad), 0);
    failure_limit_fail(fl, SA(bad), 0);
    assert_true(failure_limit_wait(fl, SA(bad), 0) > 0);
    for (unsigned i = 0; i < 10 * FAILURE_LIMIT_SLOTS; i++) {
        struct sockaddr_storage o;
        memset(&o, 0, sizeof o);
        struct sockaddr_in *v4 = (struct sockaddr_in *)&o;
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(0x0a000000u + i);
        failure_limit_fail(fl, SA(o), 1);
    }
    assert_true(failure_limit_wait(fl, SA(bad), 1) > 0);
    failure_limit_free(fl);
}

static void test_bad_parameters(void **state) {
    (void)state;
    assert_null(failure_limit_new(0, 1.0));
    assert_null(failure_limit_new(1, 0));
    failure_limit_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_one_a_second),
        cmocka_unit_test(test_slow_refill_says_how_long),
        cmocka_unit_test(test_addresses_apart_and_together),
        cmocka_unit_test(test_a_flood_of_other_addresses_does_not_free_a_limited_one),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
