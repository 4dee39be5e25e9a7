#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/query_string.h"

/* Collects the pairs of `qs` as "name|value|=" strings ('=' when the segment had one). */
static int collect_pairs(const char *qs, size_t len, char out[][64], int max) {
    query_iter_t it;
    query_pair_t pair;
    int n = 0;
    query_iter_init(&it, qs, len);
    while (query_iter_next(&it, &pair)) {
        assert_true(n < max);
        snprintf(out[n], 64, "%.*s|%.*s|%s", (int)pair.name_len, pair.name, (int)pair.value_len, pair.value,
                 pair.has_equals ? "=" : "");
        n++;
    }
    /* Exhausted iterators stay exhausted. */
    assert_false(query_iter_next(&it, &pair));
    return n;
}

static void test_iter_split(void **state) {
    (void)state;
    char pairs[8][64];
    assert_int_equal(collect_pairs("a=1&b=2", 7, pairs, 8), 2);
    assert_string_equal(pairs[0], "a|1|=");
    assert_string_equal(pairs[1], "b|2|=");

    assert_int_equal(collect_pairs("limit=5", 7, pairs, 8), 1);
    assert_string_equal(pairs[0], "limit|5|=");

    /* The value runs to the next '&' and keeps further '='. */
    assert_int_equal(collect_pairs("a=b=c&d==", 9, pairs, 8), 2);
    assert_string_equal(pairs[0], "a|b=c|=");
    assert_string_equal(pairs[1], "d|=|=");

    /* Splitting is on raw text: encoded separators stay inside. */
    assert_int_equal(collect_pairs("a%26b=c%3Dd%26e", 15, pairs, 8), 1);
    assert_string_equal(pairs[0], "a%26b|c%3Dd%26e|=");

    /* The pair is not decoded by the iterator. */
    assert_int_equal(collect_pairs("x+y=%zz", 7, pairs, 8), 1);
    assert_string_equal(pairs[0], "x+y|%zz|=");
}

static void test_iter_empty_segments_and_values(void **state) {
    (void)state;
    char pairs[8][64];
    assert_int_equal(collect_pairs("", 0, pairs, 8), 0);
    assert_int_equal(collect_pairs(NULL, 0, pairs, 8), 0);
    assert_int_equal(collect_pairs("&", 1, pairs, 8), 0);
    assert_int_equal(collect_pairs("&&&", 3, pairs, 8), 0);

    assert_int_equal(collect_pairs("&&a=1&&&b=2&", 12, pairs, 8), 2);
    assert_string_equal(pairs[0], "a|1|=");
    assert_string_equal(pairs[1], "b|2|=");

    /* No '=': an empty value, told apart from "a=" by has_equals. */
    assert_int_equal(collect_pairs("a&b=&=c&=", 9, pairs, 8), 4);
    assert_string_equal(pairs[0], "a||");
    assert_string_equal(pairs[1], "b||=");
    assert_string_equal(pairs[2], "|c|=");
    assert_string_equal(pairs[3], "||=");
}

static void test_iter_respects_length(void **state) {
    (void)state;
    char pairs[8][64];
    /* Only `len` bytes belong to the query: no reading past it. */
    assert_int_equal(collect_pairs("a=1&b=2", 3, pairs, 8), 1);
    assert_string_equal(pairs[0], "a|1|=");
    assert_int_equal(collect_pairs("a=1&b=2", 5, pairs, 8), 2);
    assert_string_equal(pairs[1], "b||");

    /* A heap copy without a NUL, for ASan to catch any overread. */
    char *exact = malloc(7);
    assert_non_null(exact);
    memcpy(exact, "a=1&b=2", 7);
    assert_int_equal(collect_pairs(exact, 7, pairs, 8), 2);
    assert_string_equal(pairs[1], "b|2|=");
    free(exact);
}

/* Decodes into a generous buffer and expects `expected` (length given: may hold any byte). */
static void decode_expect(const char *src, const char *expected, size_t expected_len) {
    char out[128];
    size_t out_len = 9999;
    memset(out, 'x', sizeof out);
    const int rc = query_decode(src, strlen(src), out, sizeof out, &out_len);
    if (rc != 0) print_error("decode \"%s\": rc %d\n", src, rc);
    assert_int_equal(rc, 0);
    assert_int_equal(out_len, expected_len);
    assert_memory_equal(out, expected, expected_len);
    assert_int_equal(out[out_len], '\0');
}

static void decode_expect_error(const char *src, size_t len, int expected_rc) {
    char out[128];
    size_t out_len = 0;
    const int rc = query_decode(src, len, out, sizeof out, &out_len);
    if (rc != expected_rc) print_error("decode \"%.*s\": rc %d, expected %d\n", (int)len, src, rc, expected_rc);
    assert_int_equal(rc, expected_rc);
    /* Measuring and allocating reach the same verdict. */
    assert_int_equal(query_decode(src, len, NULL, 0, NULL), expected_rc);
    char *copy = (char *)0x1;
    assert_int_equal(query_decode_alloc(src, len, &copy, NULL), expected_rc);
    assert_null(copy);
}

static void test_decode_valid(void **state) {
    (void)state;
    decode_expect("", "", 0);
    decode_expect("plain", "plain", 5);
    decode_expect("%2F", "/", 1);
    decode_expect("%2f", "/", 1);
    decode_expect("a+b", "a b", 3);
    decode_expect("+++", "   ", 3);
    decode_expect("%2B", "+", 1);
    decode_expect("%20", " ", 1);
    decode_expect("%E2%9C%93", "\xE2\x9C\x93", 3);
    decode_expect("%e2%9c%93", "\xE2\x9C\x93", 3);
    decode_expect("%C3%a9t%C3%A9", "\xC3\xA9t\xC3\xA9", 5);
    decode_expect("%25", "%", 1);
    decode_expect("%2541", "%41", 3); /* decoded once, not twice */
    decode_expect("%41%42C", "ABC", 3);
    decode_expect("a%26b%3Dc", "a&b=c", 5);
    decode_expect("https%3A%2F%2Fexample.com%2Fx", "https://example.com/x", 21);
    decode_expect("%FF", "\xFF", 1);
    decode_expect("%01", "\x01", 1);
}

static void test_decode_invalid(void **state) {
    (void)state;
    decode_expect_error("%", 1, -EINVAL);
    decode_expect_error("%4", 2, -EINVAL);
    decode_expect_error("%zz", 3, -EINVAL);
    decode_expect_error("%4g", 3, -EINVAL);
    decode_expect_error("%g4", 3, -EINVAL);
    decode_expect_error("abc%", 4, -EINVAL);
    decode_expect_error("abc%a", 5, -EINVAL);
    decode_expect_error("%%41", 4, -EINVAL);
    decode_expect_error("%+41", 4, -EINVAL);
    decode_expect_error("% 4", 3, -EINVAL);
    decode_expect_error("%-1", 3, -EINVAL);
    decode_expect_error("ok%2Fthen%x", 11, -EINVAL);
    /* The escape must be complete within `len`, even if the text goes on. */
    decode_expect_error("%41", 2, -EINVAL);

    decode_expect_error("%00", 3, -EILSEQ);
    decode_expect_error("a%00b", 5, -EILSEQ);
    decode_expect_error("a\0b", 3, -EILSEQ); /* raw NUL */
}

static void test_decode_capacity(void **state) {
    (void)state;
    char out[8];
    size_t out_len = 0;
    /* Exactly enough: bytes plus NUL. */
    assert_int_equal(query_decode("abc", 3, out, 4, &out_len), 0);
    assert_string_equal(out, "abc");
    assert_int_equal(out_len, 3);
    /* One short: -ENOSPC, and the needed length is still reported. */
    assert_int_equal(query_decode("abc", 3, out, 3, &out_len), -ENOSPC);
    assert_int_equal(out_len, 3);
    assert_int_equal(query_decode("%41%42%43", 9, out, 3, &out_len), -ENOSPC);
    assert_int_equal(out_len, 3);
    assert_int_equal(query_decode("%41%42%43", 9, out, 4, &out_len), 0);
    assert_string_equal(out, "ABC");
    assert_int_equal(query_decode("", 0, out, 0, &out_len), -ENOSPC);
    assert_int_equal(query_decode("", 0, out, 1, &out_len), 0);
    assert_string_equal(out, "");
    /* A bad escape past the room still wins: the verdict does not depend on the buffer. */
    assert_int_equal(query_decode("abcdefgh%zz", 11, out, 2, &out_len), -EINVAL);
    assert_int_equal(query_decode("abcdefgh%00", 11, out, 2, &out_len), -EILSEQ);
    /* Nothing written past dst_cap. */
    char guarded[6] = {'x', 'x', 'x', 'x', 'x', 'x'};
    assert_int_equal(query_decode("abcdefgh", 8, guarded, 4, NULL), -ENOSPC);
    assert_int_equal(guarded[4], 'x');
    assert_int_equal(guarded[5], 'x');
    /* Measure only. */
    assert_int_equal(query_decode("a+%2Fb", 6, NULL, 0, &out_len), 0);
    assert_int_equal(out_len, 4);
}

static void test_decode_alloc(void **state) {
    (void)state;
    char *s = NULL;
    size_t len = 0;
    assert_int_equal(query_decode_alloc("x%2Fy+z", 7, &s, &len), 0);
    assert_non_null(s);
    assert_int_equal(len, 5);
    assert_string_equal(s, "x/y z");
    free(s);

    assert_int_equal(query_decode_alloc("", 0, &s, &len), 0);
    assert_non_null(s);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
    free(s);

    assert_int_equal(query_decode_alloc("%E2%9C%93", 9, &s, NULL), 0);
    assert_string_equal(s, "\xE2\x9C\x93");
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iter_split),
        cmocka_unit_test(test_iter_empty_segments_and_values),
        cmocka_unit_test(test_iter_respects_length),
        cmocka_unit_test(test_decode_valid),
        cmocka_unit_test(test_decode_invalid),
        cmocka_unit_test(test_decode_capacity),
        cmocka_unit_test(test_decode_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
