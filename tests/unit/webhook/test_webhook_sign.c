/* The webhook signature against vectors computed independently (Python's hmac module:
 * hmac.new(secret, b"<t>." + body, hashlib.sha256).hexdigest()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "webhook/webhook_sign.h"

#define SECRET "whsec_0123456789abcdef"

static void test_signature_matches_an_independent_hmac(void **state) {
    (void)state;
    const char *body = "{\"session\":{\"a\":1}}";
    char sig[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign(SECRET, 1700000000, body, strlen(body), sig), 0);
    assert_string_equal(sig, "t=1700000000,v1=7f40c0b3963e59fe40902f361ec4ce778dd0e47d66b9b0fcbba46e448b4cbed5");
}

static void test_an_empty_body_is_signed_over_the_time_alone(void **state) {
    (void)state;
    char sig[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign(SECRET, 1700000000, "", 0, sig), 0);
    assert_string_equal(sig, "t=1700000000,v1=0e1fd9afd303fb6f213cc511093ec9783e6286d777cfee89f917aebd54d9a963");
}

static void test_time_secret_and_body_each_change_the_signature(void **state) {
    (void)state;
    const char *body = "{\"session\":{\"a\":1}}";
    char a[WEBHOOK_SIGNATURE_MAX], b[WEBHOOK_SIGNATURE_MAX], c[WEBHOOK_SIGNATURE_MAX], d[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign(SECRET, 1700000000, body, strlen(body), a), 0);
    assert_int_equal(webhook_sign(SECRET, 1700000001, body, strlen(body), b), 0);
    assert_int_equal(webhook_sign("whsec_other", 1700000000, body, strlen(body), c), 0);
    assert_int_equal(webhook_sign(SECRET, 1700000000, body, strlen(body) - 1, d), 0);
    assert_string_not_equal(strchr(a, 'v'), strchr(b, 'v'));
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_matches_an_independent_hmac),
        cmocka_unit_test(test_an_empty_body_is_signed_over_the_time_alone),
        cmocka_unit_test(test_time_secret_and_body_each_change_the_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
