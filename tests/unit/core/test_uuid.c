#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "core/uuid.h"

static const uint8_t sample_bytes[16] = {0x01, 0x93, 0x6b, 0x2a, 0xbc, 0xde, 0x7f, 0x01,
                                         0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67};

static void expect_invalid(const char *s, size_t len) {
    uint8_t out[16];
    memset(out, 0xee, sizeof out);
    if (uuid_parse(s, len, out) != -1) print_error("expected invalid: \"%.*s\"\n", (int)len, s);
    assert_int_equal(uuid_parse(s, len, out), -1);
    for (int i = 0; i < 16; i++) assert_int_equal(out[i], 0xee); /* untouched */
}

static void test_parse_valid(void **state) {
    (void)state;
    uint8_t out[16];
    assert_int_equal(uuid_parse("01936b2a-bcde-7f01-89ab-cdef01234567", 36, out), 0);
    assert_memory_equal(out, sample_bytes, 16);
    assert_int_equal(uuid_parse("01936B2A-BCDE-7F01-89AB-CDEF01234567", 36, out), 0);
    assert_memory_equal(out, sample_bytes, 16);
    assert_int_equal(uuid_parse("01936b2A-BcDe-7F01-89aB-cDeF01234567", 36, out), 0);
    assert_memory_equal(out, sample_bytes, 16);
    /* Any version and variant. */
    assert_int_equal(uuid_parse("00000000-0000-0000-0000-000000000000", 36, out), 0);
    assert_int_equal(uuid_parse("ffffffff-ffff-ffff-ffff-ffffffffffff", 36, out), 0);
    for (int i = 0; i < 16; i++) assert_int_equal(out[i], 0xff);
    assert_int_equal(uuid_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8", 36, out), 0); /* v1 */
    /* Only `len` bytes are read: trailing text beyond it does not matter. */
    assert_int_equal(uuid_parse("01936b2a-bcde-7f01-89ab-cdef01234567trailing", 36, out), 0);
}

static void test_parse_invalid(void **state) {
    (void)state;
    const char *good = "01936b2a-bcde-7f01-89ab-cdef01234567";
    expect_invalid(good, 35);
    expect_invalid("01936b2a-bcde-7f01-89ab-cdef012345678", 37);
    expect_invalid("", 0);
    expect_invalid(NULL, 0);
    expect_invalid("01936b2abcde7f0189abcdef01234567", 32);
    expect_invalid("{01936b2a-bcde-7f01-89ab-cdef012345}", 36);
    expect_invalid("01936b2a-bcde-7f01-89ab-cdef0123456g", 36);
    expect_invalid("01936b2g-bcde-7f01-89ab-cdef01234567", 36);
    expect_invalid("01936b2a_bcde-7f01-89ab-cdef01234567", 36);
    expect_invalid("01936b2ab-cde-7f01-89ab-cdef01234567", 36); /* hyphen moved */
    expect_invalid("01936b2a-bcde-7f01-89abc-def01234567", 36);
    expect_invalid("01936b2a-bcde-7f0-189ab-cdef01234567", 36);
    expect_invalid("01936b2a-bcde-7f01-89ab-cdef-1234567", 36); /* hyphen in a hex position */
    expect_invalid(" 1936b2a-bcde-7f01-89ab-cdef01234567", 36);
    expect_invalid("01936b2a-bcde-7f01-89ab-cdef0123456 ", 36);
    expect_invalid("+1936b2a-bcde-7f01-89ab-cdef01234567", 36);
    expect_invalid("01936b2a-bcde-7f01-89ab-cdef0123456\0", 36);
    expect_invalid("0x936b2a-bcde-7f01-89ab-cdef01234567", 36);
    /* Each hyphen checked on its own: replaced by a hex digit, the rest intact. */
    static const int hyphen_positions[4] = {8, 13, 18, 23};
    for (int i = 0; i < 4; i++) {
        char text[UUID_TEXT_LEN + 1];
        memcpy(text, good, sizeof text);
        text[hyphen_positions[i]] = '0';
        expect_invalid(text, 36);
    }
}

static void test_format(void **state) {
    (void)state;
    char text[UUID_TEXT_LEN + 1];
    memset(text, 'x', sizeof text);
    uuid_format(sample_bytes, text);
    assert_string_equal(text, "01936b2a-bcde-7f01-89ab-cdef01234567");
    uint8_t parsed[16];
    assert_int_equal(uuid_parse("01936B2A-BCDE-7F01-89AB-CDEF01234567", 36, parsed), 0);
    uuid_format(parsed, text);
    assert_string_equal(text, "01936b2a-bcde-7f01-89ab-cdef01234567"); /* lowercase out */
}

static void test_v7_layout(void **state) {
    (void)state;
    const int64_t ms = INT64_C(0x0123456789ab);
    uint8_t id[16];
    assert_int_equal(uuid_v7_generate(ms, id), 0);
    /* 48-bit big-endian timestamp. */
    const uint8_t expected_ts[6] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
    assert_memory_equal(id, expected_ts, 6);
    assert_int_equal(id[6] >> 4, 7);    /* version */
    assert_int_equal(id[8] >> 6, 2);    /* variant 10 */
    char text[UUID_TEXT_LEN + 1];
    uuid_format(id, text);
    assert_true(strncmp(text, "01234567-89ab-7", 15) == 0);
    assert_non_null(strchr("89ab", text[19]));
    uint8_t back[16];
    assert_int_equal(uuid_parse(text, strlen(text), back), 0);
    assert_memory_equal(back, id, 16);

    /* The bounds of the 48-bit field. */
    assert_int_equal(uuid_v7_generate(0, id), 0);
    for (int i = 0; i < 6; i++) assert_int_equal(id[i], 0);
    assert_int_equal(uuid_v7_generate((INT64_C(1) << 48) - 1, id), 0);
    for (int i = 0; i < 6; i++) assert_int_equal(id[i], 0xff);
    assert_int_equal(uuid_v7_generate(-1, id), -EINVAL);
    assert_int_equal(uuid_v7_generate(INT64_C(1) << 48, id), -EINVAL);
    assert_int_equal(uuid_v7_generate(INT64_MIN, id), -EINVAL);
}

static void test_v7_bits_over_many(void **state) {
    (void)state;
    /* The fixed bits hold for every id, and the random part varies (all 74 random bits
     * are seen both set and clear over a few hundred ids). */
    uint8_t ones[16] = {0}, zeros[16] = {0};
    for (int n = 0; n < 512; n++) {
        uint8_t id[16];
        assert_int_equal(uuid_v7_generate(INT64_C(1765911221000), id), 0);
        assert_int_equal(id[6] & 0xf0, 0x70);
        assert_int_equal(id[8] & 0xc0, 0x80);
        for (int i = 0; i < 16; i++) {
            ones[i] |= id[i];
            zeros[i] |= (uint8_t)~id[i];
        }
    }
    assert_int_equal(ones[6] & 0x0f, 0x0f);
    assert_int_equal(zeros[6] & 0x0f, 0x0f);
    assert_int_equal(ones[8] & 0x3f, 0x3f);
    assert_int_equal(zeros[8] & 0x3f, 0x3f);
    for (int i = 7; i < 16; i++) {
        if (i == 8) continue;
        assert_int_equal(ones[i], 0xff);
        assert_int_equal(zeros[i], 0xff);
    }
}

static void test_v7_time_order(void **state) {
    (void)state;
    /* Ids of later milliseconds sort after earlier ones, as bytes and as text. */
    char previous_text[UUID_TEXT_LEN + 1] = "";
    uint8_t previous[16] = {0};
    int64_t ms = INT64_C(1765911221000);
    for (int n = 0; n < 2000; n++, ms += 1 + n % 3) {
        uint8_t id[16];
        char text[UUID_TEXT_LEN + 1];
        assert_int_equal(uuid_v7_generate(ms, id), 0);
        uuid_format(id, text);
        if (n > 0) {
            assert_true(memcmp(previous, id, 16) < 0);
            assert_true(strcmp(previous_text, text) < 0);
        }
        memcpy(previous, id, 16);
        memcpy(previous_text, text, sizeof text);
    }
    /* With the real clock: the timestamp field of successive ids never goes backwards. */
    uint8_t earlier[16], later[16];
    assert_int_equal(uuid_v7_generate(time_now_ms(), earlier), 0);
    for (int n = 0; n < 1000; n++) {
        assert_int_equal(uuid_v7_generate(time_now_ms(), later), 0);
        assert_true(memcmp(earlier, later, 6) <= 0);
        memcpy(earlier, later, 16);
    }
    /* Same millisecond: distinct by their random bits. */
    uint8_t a[16], b[16];
    assert_int_equal(uuid_v7_generate(INT64_C(1765911221000), a), 0);
    assert_int_equal(uuid_v7_generate(INT64_C(1765911221000), b), 0);
    assert_memory_not_equal(a, b, 16);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_v7_layout),
        cmocka_unit_test(test_v7_bits_over_many),
        cmocka_unit_test(test_v7_time_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
