/* The zone credentials of the CDP endpoint (src/cdp/credentials.c): the user name formats of
 * the hosted Browser API, taken from HTTP Basic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cdp/credentials.h"

static credentials_result_t basic(const char *user_pass, zone_credentials_t *c) {
    /* tiny base64 encoder for the test */
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char enc[600] = "Basic ";
    size_t n = strlen(user_pass), o = 6;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)user_pass[i] << 16;
        if (i + 1 < n) v |= (unsigned char)user_pass[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)user_pass[i + 2];
        enc[o++] = t[(v >> 18) & 63];
        enc[o++] = t[(v >> 12) & 63];
        enc[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        enc[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    enc[o] = '\0';
    return credentials_from_basic(enc, o, c);
}

static void test_brd_prefixed_user_name_gives_customer_zone_and_password(void **state) {
    (void)state;
    zone_credentials_t c;
    assert_int_equal(basic("brd-customer-hl_123-zone-scraping_browser1:pw0", &c), CREDENTIALS_OK);
    assert_string_equal(c.customer_id, "hl_123");
    assert_string_equal(c.zone, "scraping_browser1");
    assert_string_equal(c.password, "pw0");
}

/* Found by tests/fuzz/fuzz_credentials.c: Basic's base64 can carry a NUL, which used to end
 * the password there ("pw\0junk" was checked as "pw", "\0" as an empty password). */
static void test_a_nul_in_the_password_is_malformed(void **state) {
    (void)state;
    zone_credentials_t c;
    /* base64 of "customer-a-zone-b:pw\0junk" and of "customer-a-zone-b:\0" */
    const char *with_nul = "Basic Y3VzdG9tZXItYS16b25lLWI6cHcAanVuaw==";
    const char *only_nul = "Basic Y3VzdG9tZXItYS16b25lLWI6AA==";
    assert_int_equal(credentials_from_basic(with_nul, strlen(with_nul), &c), CREDENTIALS_MALFORMED);
    assert_int_equal(credentials_from_basic(only_nul, strlen(only_nul), &c), CREDENTIALS_MALFORMED);
    assert_int_equal(credentials_from_user_password("customer-a-zone-b", 17, "p\0w", 3, &c), CREDENTIALS_MALFORMED);
}

static void test_prefix_is_optional_and_password_may_hold_colons(void **state) {
    (void)state;
    zone_credentials_t c;
    assert_int_equal(basic("customer-default-zone-z1:p:with:colons", &c), CREDENTIALS_OK);
    assert_string_equal(c.customer_id, "default");
    assert_string_equal(c.password, "p:with:colons");
}

static void test_key_value_options_after_the_zone_are_ignored(void **state) {
    (void)state;
    zone_credentials_t c;
    assert_int_equal(basic("brd-customer-a-zone-b-country-us-session-Xy9:pw", &c), CREDENTIALS_OK);
    assert_string_equal(c.zone, "b");
    assert_int_equal(basic("brd-customer-a-zone-b-country:pw", &c), CREDENTIALS_MALFORMED); /* a key without value */
}

static void test_malformed_user_names_are_refused(void **state) {
    (void)state;
    zone_credentials_t c;
    assert_int_equal(basic("brd-customer-A-zone-b:pw", &c), CREDENTIALS_MALFORMED);
    assert_int_equal(basic("brd-zone-b:pw", &c), CREDENTIALS_MALFORMED);
    assert_int_equal(basic("brd-customer-a-zone-:pw", &c), CREDENTIALS_MALFORMED);
    assert_int_equal(basic("brd-customer-a-zone-b", &c), CREDENTIALS_MALFORMED);
}

static void test_empty_password_or_other_scheme_is_missing_credentials(void **state) {
    (void)state;
    zone_credentials_t c;
    assert_int_equal(basic("brd-customer-a-zone-b:", &c), CREDENTIALS_MISSING);
    assert_int_equal(credentials_from_basic("Bearer abc", 10, &c), CREDENTIALS_MISSING);
    assert_int_equal(credentials_from_basic("Basic", 5, &c), CREDENTIALS_MISSING);
}

static void test_bad_base64_is_malformed_and_the_scheme_word_is_case_insensitive(void **state) {
    (void)state;
    zone_credentials_t c;
    assert_int_equal(credentials_from_basic("Basic !!!", 9, &c), CREDENTIALS_MALFORMED);
    assert_int_equal(credentials_from_basic("  bAsIc   YTpi  ", 16, &c), CREDENTIALS_MALFORMED); /* "a:b" */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brd_prefixed_user_name_gives_customer_zone_and_password),
        cmocka_unit_test(test_a_nul_in_the_password_is_malformed),
        cmocka_unit_test(test_prefix_is_optional_and_password_may_hold_colons),
        cmocka_unit_test(test_key_value_options_after_the_zone_are_ignored),
        cmocka_unit_test(test_malformed_user_names_are_refused),
        cmocka_unit_test(test_empty_password_or_other_scheme_is_missing_credentials),
        cmocka_unit_test(test_bad_base64_is_malformed_and_the_scheme_word_is_case_insensitive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
