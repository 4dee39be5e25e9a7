#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/timeutil.h"

#define DAY_MS INT64_C(86400000)
#define DEC_1_2025_MS INT64_C(1764547200000) /* 2025-12-01T00:00:00Z */
#define UNTOUCHED INT64_C(0x5eed5eed)

static int64_t parse_ok(const char *s, bool end_of_day) {
    int64_t ms = UNTOUCHED;
    const int rc = time_parse_api_date(s, strlen(s), end_of_day, &ms);
    if (rc != 0) print_error("expected valid: \"%s\"\n", s);
    assert_int_equal(rc, 0);
    return ms;
}

static void expect_invalid(const char *s) {
    int64_t ms = UNTOUCHED;
    const int rc = time_parse_api_date(s, strlen(s), false, &ms);
    if (rc != -1) print_error("expected invalid: \"%s\"\n", s);
    assert_int_equal(rc, -1);
    assert_true(ms == UNTOUCHED); /* nothing written on failure */
    assert_int_equal(time_parse_api_date(s, strlen(s), true, &ms), -1);
}

static void test_days_from_civil(void **state) {
    (void)state;
    /* Expected values from Python's datetime.date ordinal arithmetic. */
    assert_int_equal(time_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(time_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(time_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(time_days_from_civil(2024, 2, 29), 19782);
    assert_int_equal(time_days_from_civil(2025, 12, 1), 20423);
    assert_int_equal(time_days_from_civil(1900, 3, 1), -25508);
    assert_int_equal(time_days_from_civil(1600, 2, 29), -135081);
    assert_int_equal(time_days_from_civil(1, 1, 1), -719162);
    assert_int_equal(time_days_from_civil(9999, 12, 31), 2932896);
    /* Negative years (proleptic): consecutive with year 0. */
    assert_int_equal(time_days_from_civil(0, 1, 1) - time_days_from_civil(-1, 12, 31), 1);
    /* Day 0 of a month is the last day of the previous one (no validation, no wrap). */
    assert_int_equal(time_days_from_civil(2025, 3, 0), time_days_from_civil(2025, 2, 28));
}

static void test_now_ms(void **state) {
    (void)state;
    const int64_t before = (int64_t)time(NULL) * 1000;
    const int64_t now = time_now_ms();
    const int64_t after = ((int64_t)time(NULL) + 1) * 1000;
    assert_true(now >= before && now <= after);
    assert_true(time_now_ms() >= now);
}

static void test_parse_utc(void **state) {
    (void)state;
    assert_int_equal(parse_ok("2025-12-01T00:00:00Z", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-12-01t00:00:00z", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-12-01T00:00:00Z", true), DEC_1_2025_MS); /* flag: bare dates only */
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z", false), 0);
    assert_int_equal(parse_ok("2000-02-29T12:34:56Z", false), INT64_C(951827696000));
    assert_int_equal(parse_ok("2025-12-01T23:59:59Z", false), DEC_1_2025_MS + DAY_MS - 1000);
    assert_int_equal(parse_ok("0001-01-01T00:00:00Z", false), INT64_C(-62135596800000));
    assert_int_equal(parse_ok("9999-12-31T23:59:59Z", false), INT64_C(253402300799000));
}

static void test_parse_offsets(void **state) {
    (void)state;
    assert_int_equal(parse_ok("2025-12-01T02:00:00+02:00", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-11-30T22:00:00-02:00", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-12-01T05:30:00+05:30", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-12-01T00:00:00+00:00", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-12-01T00:00:00-00:00", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-12-01T23:59:00+23:59", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-11-30T00:01:00-23:59", false), DEC_1_2025_MS);
    /* An offset can move the instant into another year. */
    assert_int_equal(parse_ok("1970-01-01T00:00:00+01:00", false), -3600000);
    assert_int_equal(parse_ok("2025-12-01T00:00:00.250+01:00", false), DEC_1_2025_MS - 3600000 + 250);
}

static void test_parse_fractions(void **state) {
    (void)state;
    assert_int_equal(parse_ok("2025-12-01T00:00:00.5Z", false), DEC_1_2025_MS + 500);
    assert_int_equal(parse_ok("2025-12-01T00:00:00.05Z", false), DEC_1_2025_MS + 50);
    assert_int_equal(parse_ok("2025-12-01T00:00:00.123Z", false), DEC_1_2025_MS + 123);
    assert_int_equal(parse_ok("2025-12-01T00:00:00.1239Z", false), DEC_1_2025_MS + 123);
    assert_int_equal(parse_ok("2025-12-01T00:00:00.999999999999999999999Z", false), DEC_1_2025_MS + 999);
    assert_int_equal(parse_ok("2025-12-01T00:00:00.0009Z", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-12-01T00:00:00.000Z", false), DEC_1_2025_MS);
    /* Truncation is a floor also before 1970: -0.0001 s is -1 ms, -0.9999 s is -1000 ms. */
    assert_int_equal(parse_ok("1969-12-31T23:59:59.9999Z", false), -1);
    assert_int_equal(parse_ok("1969-12-31T23:59:59.999999Z", false), -1);
    assert_int_equal(parse_ok("1969-12-31T23:59:59.0001Z", false), -1000);
    assert_int_equal(parse_ok("1970-01-01T00:59:59.9999+01:00", false), -1);
}

static void test_parse_bare_dates(void **state) {
    (void)state;
    assert_int_equal(parse_ok("2025-12-01", false), DEC_1_2025_MS);
    assert_int_equal(parse_ok("2025-12-01", true), DEC_1_2025_MS + DAY_MS - 1);
    assert_int_equal(parse_ok("1970-01-01", false), 0);
    assert_int_equal(parse_ok("1969-12-31", true), -1);
    assert_int_equal(parse_ok("2024-02-29", true), time_days_from_civil(2024, 3, 1) * DAY_MS - 1);
    /* Only the first `len` bytes count. */
    int64_t ms = 0;
    assert_int_equal(time_parse_api_date("2025-12-01T99", 10, false, &ms), 0);
    assert_int_equal(ms, DEC_1_2025_MS);
}

static void test_parse_calendar(void **state) {
    (void)state;
    parse_ok("2024-02-29", false); /* divisible by 4 */
    parse_ok("2000-02-29", false); /* divisible by 400 */
    parse_ok("1600-02-29T00:00:00Z", false);
    parse_ok("2025-02-28", false);
    parse_ok("2025-01-31", false);
    parse_ok("2025-04-30", false);
    parse_ok("2025-12-31T23:59:59Z", false);
    parse_ok("0001-01-01", false);
    parse_ok("9999-12-31", true);
    expect_invalid("2023-02-29");
    expect_invalid("1900-02-29"); /* divisible by 100, not by 400 */
    expect_invalid("2100-02-29T00:00:00Z");
    expect_invalid("2024-02-30");
    expect_invalid("2025-04-31");
    expect_invalid("2025-06-31");
    expect_invalid("2025-09-31");
    expect_invalid("2025-11-31");
    expect_invalid("2025-01-32");
    expect_invalid("2025-13-01");
    expect_invalid("2025-00-01");
    expect_invalid("2025-12-00");
    expect_invalid("0000-01-01");
    expect_invalid("0000-01-01T00:00:00Z");
}

static void test_parse_time_fields(void **state) {
    (void)state;
    parse_ok("2025-12-01T23:59:59Z", false);
    expect_invalid("2025-12-01T24:00:00Z");
    expect_invalid("2025-12-01T23:60:00Z");
    expect_invalid("2025-12-01T23:59:60Z"); /* leap second */
    expect_invalid("2025-12-01T99:00:00Z");
    expect_invalid("2025-12-01T00:00:00+24:00");
    expect_invalid("2025-12-01T00:00:00-24:00");
    expect_invalid("2025-12-01T00:00:00+23:60");
    expect_invalid("2025-12-01T00:00:00+99:99");
}

static void test_parse_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",
        "2025",
        "2025-12",
        "2025-12-1",
        "2025-1-01",
        "25-12-01",
        "20251201",
        "2025/12/01",
        "2025-12-01Z",
        "2025-12-01T",
        "2025-12-01T00:00Z",
        "2025-12-01T00:00:00", /* no offset: a local time is ambiguous */
        "2025-12-01T00:00:0Z",
        "2025-12-01T0:00:00Z",
        "2025-12-01T00-00-00Z",
        "2025-12-01X00:00:00Z",
        "2025-12-01 00:00:00Z",
        " 2025-12-01",
        "2025-12-01 ",
        " 2025-12-01T00:00:00Z",
        "2025-12-01T00:00:00Z ",
        "2025-12-01T00:00:00 Z",
        "2025-12-01T00:00:00Zx",
        "2025-12-01T00:00:00ZZ",
        "2025-12-01T00:00:00.Z",
        "2025-12-01T00:00:00.",
        "2025-12-01T00:00:00.5",
        "2025-12-01T00:00:00,5Z",
        "2025-12-01T00:00:00.5 Z",
        "2025-12-01T00:00:00+02",
        "2025-12-01T00:00:00+0200",
        "2025-12-01T00:00:00+02000",
        "2025-12-01T00:00:00+02-00",
        "2025-12-01T00:00:00+2:00",
        "2025-12-01T00:00:00+02:0",
        "2025-12-01T00:00:00+02:000",
        "2025-12-01T00:00:00+02:00Z",
        "2025-12-01T00:00:00 02:00", /* '+' decoded to a space by a query string */
        "2025-12-01T00:00:00Z+02:00",
        "2025-12-01T00:00:00UTC",
        "+2025-12-01",
        "-2025-12-01",
        "02025-12-01",
        "2025-+1-01",
        "2025-12-+1",
        "2025-12-01T+1:00:00Z",
        "2025-0x-01",
        "2025-12-01T00:00:00.-5Z",
        "abcd-ef-gh",
        "2025-12-01T00:00:00+02:00+",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_invalid(bad[i]);

    /* Embedded NUL inside the given length. */
    int64_t ms = 0;
    assert_int_equal(time_parse_api_date("2025-12-01\0", 11, false, &ms), -1);
    assert_int_equal(time_parse_api_date("2025-12-01T00:00:00Z\0", 21, false, &ms), -1);
    /* Shorter length than the text: the cut text is judged. */
    assert_int_equal(time_parse_api_date("2025-12-01T00:00:00Z", 19, false, &ms), -1);
    assert_int_equal(time_parse_api_date("2025-12-01", 9, false, &ms), -1);
    assert_int_equal(time_parse_api_date(NULL, 0, false, &ms), -1);
}

static void format_expect(int64_t ms, const char *expected) {
    char out[TIME_UTC_SECONDS_LEN + 1];
    memset(out, 'x', sizeof out);
    time_format_utc_seconds(ms, out);
    assert_string_equal(out, expected);
    assert_int_equal(strlen(out), TIME_UTC_SECONDS_LEN);
}

static void test_format(void **state) {
    (void)state;
    format_expect(0, "1970-01-01T00:00:00Z");
    format_expect(999, "1970-01-01T00:00:00Z");
    format_expect(-1, "1969-12-31T23:59:59Z");    /* truncation toward the past */
    format_expect(-1000, "1969-12-31T23:59:59Z");
    format_expect(-1001, "1969-12-31T23:59:58Z");
    format_expect(DEC_1_2025_MS + 999, "2025-12-01T00:00:00Z");
    format_expect(DEC_1_2025_MS - 1, "2025-11-30T23:59:59Z");
    format_expect(INT64_C(951827696000), "2000-02-29T12:34:56Z");
    format_expect(INT64_C(1765911221000), "2025-12-16T18:53:41Z");
    format_expect(INT64_C(-62135596800000), "0001-01-01T00:00:00Z");
    format_expect(INT64_C(253402300799999), "9999-12-31T23:59:59Z");
    /* Out of the four-digit-year range: clamped, never longer than 20 characters. */
    format_expect(INT64_MIN, "0001-01-01T00:00:00Z");
    format_expect(INT64_C(-62135596800001), "0001-01-01T00:00:00Z");
    format_expect(INT64_MAX, "9999-12-31T23:59:59Z");
    format_expect(INT64_C(253402300800000), "9999-12-31T23:59:59Z");
}

/* Deterministic pseudo-random values: a failure reproduces. */
static uint64_t next_random(uint64_t *s) {
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 11;
}

static void test_format_parse_round_trip(void **state) {
    (void)state;
    const int64_t min_ms = INT64_C(-62135596800000);
    const int64_t span = INT64_C(253402300799999) - min_ms + 1;
    uint64_t seed = 42;
    for (int i = 0; i < 200000; i++) {
        const int64_t ms = min_ms + (int64_t)(next_random(&seed) % (uint64_t)span);
        char text[TIME_UTC_SECONDS_LEN + 1];
        time_format_utc_seconds(ms, text);
        int64_t back = 0;
        assert_int_equal(time_parse_api_date(text, strlen(text), false, &back), 0);
        const int64_t floor_seconds_ms = ms - ((ms % 1000) + 1000) % 1000;
        if (back != floor_seconds_ms) print_error("ms=%lld text=%s\n", (long long)ms, text);
        assert_true(back == floor_seconds_ms);
    }
    /* Every day of a full 400-year cycle around the epoch, both directions. */
    for (int64_t day = -80000; day <= 80000; day++) {
        char text[TIME_UTC_SECONDS_LEN + 1];
        time_format_utc_seconds(day * DAY_MS, text);
        int64_t back = 0;
        assert_int_equal(time_parse_api_date(text, 10, false, &back), 0); /* the date part */
        assert_true(back == day * DAY_MS);
        assert_int_equal(time_parse_api_date(text, 10, true, &back), 0);
        assert_true(back == day * DAY_MS + DAY_MS - 1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_days_from_civil),
        cmocka_unit_test(test_now_ms),
        cmocka_unit_test(test_parse_utc),
        cmocka_unit_test(test_parse_offsets),
        cmocka_unit_test(test_parse_fractions),
        cmocka_unit_test(test_parse_bare_dates),
        cmocka_unit_test(test_parse_calendar),
        cmocka_unit_test(test_parse_time_fields),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_parse_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
