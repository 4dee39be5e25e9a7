/* session_query_parse against the contract's rules for the list query string
 * (shared/spec/browser-sessions-api.md, docs/api.md), one behaviour per test. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "session/session_query.h"
#include "session/record.h"

#define DEC_1_2025_MS INT64_C(1764547200000) /* 2025-12-01T00:00:00Z */
#define DAY_MS INT64_C(86400000)

static const char *const all_params[] = {"api_name", "limit",      "offset",  "status", "start_date",
                                         "end_date", "target_url", "end_url", "sort",   "order"};
#define ALL_PARAMS_COUNT (sizeof all_params / sizeof all_params[0])

/* A valid value for each of all_params, in the same order. */
static const char *const sample_values[] = {"b1", "10", "20", "failed", "2025-12-01",
                                            "2025-12-02", "example.com", "https://x.org/", "duration", "asc"};

static void assert_defaults(const session_query_t *q) {
    assert_null(q->api_name);
    assert_int_equal(q->status, SESSION_QUERY_STATUS_ALL);
    assert_true(q->start_ms == INT64_MIN);
    assert_true(q->end_ms == INT64_MAX);
    assert_int_equal(q->target_url.kind, URL_FILTER_NONE);
    assert_null(q->target_url.value);
    assert_int_equal(q->target_url.len, 0);
    assert_int_equal(q->end_url.kind, URL_FILTER_NONE);
    assert_null(q->end_url.value);
    assert_int_equal(q->sort, SORT_TIMESTAMP);
    assert_true(q->desc);
    assert_int_equal(q->limit, 50);
    assert_int_equal(q->offset, 0);
}

/* Parses `qs` and expects success; the caller frees *q. */
static void parse_ok(const char *qs, session_query_t *q) {
    char details[128] = "unset";
    const int rc = session_query_parse(qs, strlen(qs), q, details, sizeof details);
    if (rc != 0) print_error("expected valid: \"%s\" -> %s\n", qs, details);
    assert_int_equal(rc, 0);
    assert_string_equal(details, ""); /* cleared on success */
}

/* Parses `qs` and expects -EINVAL with exactly `expected_details`, and a query left at the
 * defaults (nothing to free; ASan reports any leak of a partial parse). */
static void expect_error(const char *qs, const char *expected_details) {
    session_query_t q;
    char details[128] = "unset";
    const int rc = session_query_parse(qs, strlen(qs), &q, details, sizeof details);
    if (rc != -EINVAL || strcmp(details, expected_details) != 0)
        print_error("query \"%s\": rc %d, details \"%s\", expected \"%s\"\n", qs, rc, details, expected_details);
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(details, expected_details);
    assert_defaults(&q);
}

static uint32_t parse_limit(const char *qs) {
    session_query_t q;
    parse_ok(qs, &q);
    const uint32_t limit = q.limit;
    session_query_free(&q);
    return limit;
}

static uint32_t parse_offset(const char *qs) {
    session_query_t q;
    parse_ok(qs, &q);
    const uint32_t offset = q.offset;
    session_query_free(&q);
    return offset;
}

static void test_init_sets_the_defaults(void **state) {
    (void)state;
    session_query_t q;
    session_query_init(&q);
    assert_defaults(&q);
}

static void test_empty_query_gives_the_defaults(void **state) {
    (void)state;
    session_query_t q;
    parse_ok("", &q);
    assert_defaults(&q);
    session_query_free(&q);

    assert_int_equal(session_query_parse(NULL, 0, &q, NULL, 0), 0);
    assert_defaults(&q);
    session_query_free(&q);

    parse_ok("&&&", &q);
    assert_defaults(&q);
    session_query_free(&q);
}

static void test_parse_starts_from_the_defaults_and_free_restores_them(void **state) {
    (void)state;
    session_query_t q;
    /* Parsing initializes: stale values in *q do not survive. */
    memset(&q, 0x5a, sizeof q);
    parse_ok("unknown=1", &q);
    assert_defaults(&q);
    session_query_free(&q);
    session_query_free(&q); /* back to defaults after free: a second free is harmless */
    assert_defaults(&q);
}

static void test_every_parameter_is_parsed_into_its_field(void **state) {
    (void)state;
    session_query_t q;
    parse_ok("api_name=scraping_browser1&limit=10&offset=20&status=failed&start_date=2025-12-01"
             "&end_date=2025-12-02T00:00:00Z&target_url=Example.com&end_url=https://www.Example.com/X"
             "&sort=duration&order=asc",
             &q);
    assert_string_equal(q.api_name, "scraping_browser1");
    assert_int_equal(q.limit, 10);
    assert_int_equal(q.offset, 20);
    assert_int_equal(q.status, SESSION_FAILED);
    assert_true(q.start_ms == DEC_1_2025_MS);
    assert_true(q.end_ms == DEC_1_2025_MS + DAY_MS);
    assert_int_equal(q.target_url.kind, URL_FILTER_DOMAIN);
    assert_string_equal(q.target_url.value, "example.com");
    assert_int_equal(q.end_url.kind, URL_FILTER_PREFIX);
    assert_string_equal(q.end_url.value, "https://www.example.com/x");
    assert_int_equal(q.sort, SORT_DURATION);
    assert_false(q.desc);
    session_query_free(&q);
    assert_defaults(&q);
}

static void test_limit_from_1_to_100_is_accepted(void **state) {
    (void)state;
    assert_int_equal(parse_limit("limit=1"), 1);
    assert_int_equal(parse_limit("limit=100"), 100);
    assert_int_equal(parse_limit("limit=50"), 50);
    assert_int_equal(parse_limit("limit=7"), 7);
    assert_int_equal(parse_limit("limit=007"), 7); /* leading zeros are still plain digits */
    assert_int_equal(parse_limit("limit=0100"), 100);
    assert_int_equal(parse_limit("limit=%35"), 5);  /* decoded first */
    assert_int_equal(parse_limit("li%6Dit=9"), 9);  /* the name too */
}

static void test_limit_outside_1_to_100_or_not_plain_digits_is_an_error(void **state) {
    (void)state;
    const char *reason = "limit: must be an integer from 1 to 100";
    expect_error("limit=0", reason);
    expect_error("limit=000", reason);
    expect_error("limit=101", reason);
    expect_error("limit=0101", reason);
    expect_error("limit=1000", reason);
    expect_error("limit=4294967297", reason); /* 2^32 + 1: no wrap to 1 */
    expect_error("limit=99999999999999999999999999999999", reason);
    expect_error("limit=-1", reason);
    expect_error("limit=-0", reason);
    expect_error("limit=+5", reason);   /* '+' is a space: " 5" */
    expect_error("limit=%2B5", reason); /* a real '+' sign */
    expect_error("limit=%205", reason);
    expect_error("limit=5%20", reason);
    expect_error("limit=5+", reason);
    expect_error("limit=%095", reason);
    expect_error("limit=0x10", reason);
    expect_error("limit=1e2", reason);
    expect_error("limit=5.0", reason);
    expect_error("limit=5.", reason);
    expect_error("limit=ten", reason);
    expect_error("limit=5a", reason);
    expect_error("limit=%EF%BC%95", reason); /* fullwidth digit five */
}

static void test_offset_from_0_to_2147483647_is_accepted(void **state) {
    (void)state;
    assert_int_equal(parse_offset("offset=0"), 0);
    assert_int_equal(parse_offset("offset=000"), 0);
    assert_int_equal(parse_offset("offset=1"), 1);
    assert_int_equal(parse_offset("offset=2147483647"), 2147483647);
    assert_int_equal(parse_offset("offset=00002147483647"), 2147483647);
}

static void test_offset_outside_its_range_or_not_plain_digits_is_an_error(void **state) {
    (void)state;
    const char *reason = "offset: must be an integer from 0 to 2147483647";
    expect_error("offset=2147483648", reason);
    expect_error("offset=4294967295", reason);
    expect_error("offset=4294967296", reason); /* 2^32: no wrap to 0 */
    expect_error("offset=18446744073709551616", reason);
    expect_error("offset=9999999999999999999999999999", reason);
    expect_error("offset=-1", reason);
    expect_error("offset=-0", reason);
    expect_error("offset=+5", reason);
    expect_error("offset=%2B5", reason);
    expect_error("offset=%205", reason);
    expect_error("offset=5%20", reason);
    expect_error("offset=0x0", reason);
    expect_error("offset=1e3", reason);
    expect_error("offset=1.5", reason);
}

static void test_status_names_and_all_are_accepted(void **state) {
    (void)state;
    static const struct {
        const char *qs;
        int status;
    } valid[] = {
        {"status=running", SESSION_RUNNING},
        {"status=finished", SESSION_FINISHED},
        {"status=failed", SESSION_FAILED},
        {"status=all", SESSION_QUERY_STATUS_ALL},
        {"status=%72unning", SESSION_RUNNING},
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        session_query_t q;
        parse_ok(valid[i].qs, &q);
        assert_int_equal(q.status, valid[i].status);
        session_query_free(&q);
    }
}

static void test_status_other_than_its_exact_names_is_an_error(void **state) {
    (void)state;
    const char *reason = "status: must be one of running, finished, failed, all";
    expect_error("status=Running", reason);
    expect_error("status=RUNNING", reason);
    expect_error("status=ALL", reason);
    expect_error("status=all+", reason);
    expect_error("status=+all", reason);
    expect_error("status=run", reason);
    expect_error("status=runningx", reason);
    expect_error("status=unknown", reason);
    expect_error("status=0", reason);
    expect_error("status=finished,failed", reason);
}

static void test_sort_and_order_values_are_accepted(void **state) {
    (void)state;
    static const struct {
        const char *qs;
        session_sort_t sort;
        bool desc;
    } valid[] = {
        {"sort=timestamp", SORT_TIMESTAMP, true},
        {"sort=duration", SORT_DURATION, true},
        {"sort=bandwidth", SORT_BANDWIDTH, true},
        {"order=asc", SORT_TIMESTAMP, false},
        {"order=desc", SORT_TIMESTAMP, true},
        {"sort=bandwidth&order=asc", SORT_BANDWIDTH, false},
        {"order=desc&sort=duration", SORT_DURATION, true},
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        session_query_t q;
        parse_ok(valid[i].qs, &q);
        assert_int_equal(q.sort, valid[i].sort);
        assert_int_equal(q.desc, valid[i].desc);
        session_query_free(&q);
    }
}

static void test_sort_other_than_its_names_is_an_error(void **state) {
    (void)state;
    const char *sort_reason = "sort: must be one of timestamp, duration, bandwidth";
    expect_error("sort=Timestamp", sort_reason);
    expect_error("sort=DURATION", sort_reason);
    expect_error("sort=time", sort_reason);
    expect_error("sort=size", sort_reason);
    expect_error("sort=navigations", sort_reason);
    expect_error("sort=duration+", sort_reason);
}

static void test_order_other_than_asc_or_desc_is_an_error(void **state) {
    (void)state;
    const char *order_reason = "order: must be one of asc, desc";
    expect_error("order=ASC", order_reason);
    expect_error("order=Desc", order_reason);
    expect_error("order=ascending", order_reason);
    expect_error("order=descending", order_reason);
    expect_error("order=as", order_reason);
    expect_error("order=des", order_reason);
    expect_error("order=1", order_reason);
}

static void test_api_name_is_decoded_and_kept_exactly(void **state) {
    (void)state;
    static const struct {
        const char *qs;
        const char *api_name;
    } valid[] = {
        {"api_name=scraping_browser1", "scraping_browser1"},
        {"api_name=Scraping_Browser1", "Scraping_Browser1"}, /* case kept: exact match */
        {"api_name=a+b", "a b"},
        {"api_name=+", " "},
        {"api_name=a%2Fb", "a/b"},
        {"api_name=a%26b%3Dc", "a&b=c"},
        {"api_name=a=b", "a=b"},
        {"api_name=%E2%9C%93", "\xE2\x9C\x93"},
        {"api_name=%2B", "+"},
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        session_query_t q;
        parse_ok(valid[i].qs, &q);
        assert_string_equal(q.api_name, valid[i].api_name);
        session_query_free(&q);
    }
}

static void test_url_filter_with_a_scheme_is_a_prefix_else_a_domain_both_lowercased(void **state) {
    (void)state;
    static const struct {
        const char *value; /* raw, as in the query string */
        url_filter_kind_t kind;
        const char *stored;
    } cases[] = {
        {"example.com", URL_FILTER_DOMAIN, "example.com"},
        {"Example.COM", URL_FILTER_DOMAIN, "example.com"},
        {"WWW.EXAMPLE.COM", URL_FILTER_DOMAIN, "www.example.com"},
        {"example.com:8080", URL_FILTER_DOMAIN, "example.com:8080"},
        {"a:/b", URL_FILTER_DOMAIN, "a:/b"},
        {"x%3A%2Fy", URL_FILTER_DOMAIN, "x:/y"},
        {"%E2%9C%93.Example", URL_FILTER_DOMAIN, "\xE2\x9C\x93.example"}, /* non-ASCII untouched */
        {"%C3%89cole.fr", URL_FILTER_DOMAIN, "\xC3\x89" "cole.fr"},       /* no Unicode folding */
        {"https://www.Example.com/Path?Q=1", URL_FILTER_PREFIX, "https://www.example.com/path?q=1"},
        {"HTTP://X", URL_FILTER_PREFIX, "http://x"},
        {"https%3A%2F%2Fexample.com%2Fx", URL_FILTER_PREFIX, "https://example.com/x"},
        {"https:%2F/example.com", URL_FILTER_PREFIX, "https://example.com"},
        {"://", URL_FILTER_PREFIX, "://"},
        {"example.com/redirect?to=http://other", URL_FILTER_PREFIX, "example.com/redirect?to=http://other"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int which = 0; which < 2; which++) {
            char qs[256];
            snprintf(qs, sizeof qs, "%s=%s", which ? "end_url" : "target_url", cases[i].value);
            session_query_t q;
            parse_ok(qs, &q);
            const url_filter_t *set = which ? &q.end_url : &q.target_url;
            const url_filter_t *unset = which ? &q.target_url : &q.end_url;
            if (set->kind != cases[i].kind) print_error("%s: kind %d\n", qs, set->kind);
            assert_int_equal(set->kind, cases[i].kind);
            assert_string_equal(set->value, cases[i].stored);
            assert_int_equal(set->len, strlen(cases[i].stored));
            assert_int_equal(unset->kind, URL_FILTER_NONE);
            assert_null(unset->value);
            session_query_free(&q);
        }
    }
}

static void test_target_and_end_url_filters_are_independent(void **state) {
    (void)state;
    /* Both at once, independently. */
    session_query_t q;
    parse_ok("target_url=A.com&end_url=https://B.com", &q);
    assert_int_equal(q.target_url.kind, URL_FILTER_DOMAIN);
    assert_string_equal(q.target_url.value, "a.com");
    assert_int_equal(q.end_url.kind, URL_FILTER_PREFIX);
    assert_string_equal(q.end_url.value, "https://b.com");
    session_query_free(&q);
}

static void expect_dates(const char *qs, int64_t start_ms, int64_t end_ms) {
    session_query_t q;
    parse_ok(qs, &q);
    if (q.start_ms != start_ms || q.end_ms != end_ms)
        print_error("%s: start %lld end %lld\n", qs, (long long)q.start_ms, (long long)q.end_ms);
    assert_true(q.start_ms == start_ms);
    assert_true(q.end_ms == end_ms);
    session_query_free(&q);
}

static void test_bare_dates_cover_whole_days(void **state) {
    (void)state;
    /* Bare dates: start of day for start_date, end of day (inclusive) for end_date. */
    expect_dates("start_date=2025-12-01", DEC_1_2025_MS, INT64_MAX);
    expect_dates("end_date=2025-12-01", INT64_MIN, DEC_1_2025_MS + DAY_MS - 1);
    expect_dates("start_date=2025-12-01&end_date=2025-12-01", DEC_1_2025_MS, DEC_1_2025_MS + DAY_MS - 1);
    expect_dates("start_date=2024-02-29&end_date=2024-02-29", INT64_C(19782) * DAY_MS,
                 INT64_C(19783) * DAY_MS - 1);
}

static void test_date_times_are_exact(void **state) {
    (void)state;
    /* Date-times: exact, bare-date rule does not apply. */
    expect_dates("start_date=2025-12-01T00:00:00Z&end_date=2025-12-01T00:00:00Z", DEC_1_2025_MS, DEC_1_2025_MS);
    expect_dates("end_date=2025-12-01T00:00:00Z", INT64_MIN, DEC_1_2025_MS);
    expect_dates("start_date=2025-12-01t00:00:00.5z", DEC_1_2025_MS + 500, INT64_MAX);
    expect_dates("start_date=2025-12-01T00:00:00.123456Z", DEC_1_2025_MS + 123, INT64_MAX);
}

static void test_date_offsets_apply_with_the_plus_encoded(void **state) {
    (void)state;
    expect_dates("start_date=2025-12-01T02:00:00%2B02:00", DEC_1_2025_MS, INT64_MAX);
    expect_dates("start_date=2025-11-30T22:00:00-02:00", DEC_1_2025_MS, INT64_MAX);
    expect_dates("end_date=2025-12-01T05:30:00%2b05%3A30", INT64_MIN, DEC_1_2025_MS);
}

/* '+' decodes to a space (the contract), and a space makes any date malformed. */
static void test_an_unencoded_plus_in_an_offset_is_a_400(void **state) {
    (void)state;
    expect_error("start_date=2025-12-01T02:00:00+02:00", "start_date: must be an RFC 3339 date-time or YYYY-MM-DD");
    expect_error("end_date=2025-12-01T05:30:00%2005:30", "end_date: must be an RFC 3339 date-time or YYYY-MM-DD");
}

static void test_bare_dates_and_date_times_mix(void **state) {
    (void)state;
    /* Mixed forms, and equal bounds. */
    expect_dates("start_date=2025-12-01&end_date=2025-12-01T00:00:00Z", DEC_1_2025_MS, DEC_1_2025_MS);
    expect_dates("start_date=2025-12-01T23:59:59.999Z&end_date=2025-12-01", DEC_1_2025_MS + DAY_MS - 1,
                 DEC_1_2025_MS + DAY_MS - 1);
    expect_dates("end_date=2025-12-01&start_date=2025-11-30", DEC_1_2025_MS - DAY_MS, DEC_1_2025_MS + DAY_MS - 1);
}

static void test_invalid_dates_are_errors(void **state) {
    (void)state;
    const char *start_reason = "start_date: must be an RFC 3339 date-time or YYYY-MM-DD";
    const char *end_reason = "end_date: must be an RFC 3339 date-time or YYYY-MM-DD";
    expect_error("start_date=2025-12-01T02:00:00++02:00", start_reason);
    expect_error("start_date=2025-12-01%2000:00:00Z", start_reason); /* a space elsewhere stays wrong */
    expect_error("start_date=2025-02-29", start_reason);
    expect_error("start_date=2025-13-01", start_reason);
    expect_error("start_date=2025-12-01T24:00:00Z", start_reason);
    expect_error("start_date=2025-12-01T00:00:00", start_reason);
    expect_error("start_date=2025-12-01+00:00:00Z", start_reason);
    expect_error("start_date=2025-12-01%20", start_reason);
    expect_error("start_date=1764547200", start_reason);
    expect_error("start_date=yesterday", start_reason);
    expect_error("end_date=2023-02-29", end_reason);
    expect_error("end_date=2025-12-01T00:00:60Z", end_reason);
    expect_error("end_date=2025-12-1", end_reason);
    expect_error("end_date=2025-12-01T00:00:00%2B24:00", end_reason);
}

static void test_start_date_later_than_end_date_is_an_error(void **state) {
    (void)state;
    const char *order_reason = "start_date: is later than end_date";
    expect_error("start_date=2025-12-02&end_date=2025-12-01", order_reason);
    expect_error("end_date=2025-12-01&start_date=2025-12-02", order_reason);
    expect_error("start_date=2025-12-01T00:00:00.001Z&end_date=2025-12-01T00:00:00Z", order_reason);
    expect_error("start_date=2025-12-01T01:00:00Z&end_date=2025-12-01T02:00:00%2B02:00", order_reason);
    expect_error("start_date=2025-12-02&end_date=2025-12-01T23:59:59.999Z", order_reason);
}

static void test_date_order_is_checked_after_every_parameter(void **state) {
    (void)state;
    /* The ordering check comes after every parameter is valid. */
    expect_error("start_date=2025-12-02&end_date=2025-12-01&limit=0", "limit: must be an integer from 1 to 100");
}

static void test_empty_value_of_a_known_parameter_is_an_error(void **state) {
    (void)state;
    for (size_t i = 0; i < ALL_PARAMS_COUNT; i++) {
        char qs[64], reason[64];
        snprintf(reason, sizeof reason, "%s: must not be empty", all_params[i]);
        snprintf(qs, sizeof qs, "%s=", all_params[i]);
        expect_error(qs, reason);
        snprintf(qs, sizeof qs, "%s", all_params[i]); /* no '=' at all */
        expect_error(qs, reason);
        snprintf(qs, sizeof qs, "limit=5&%s=&offset=1", all_params[i]);
        expect_error(qs, strcmp(all_params[i], "limit") == 0 ? "limit: given more than once" : reason);
    }
    expect_error("api_name=", "api_name: must not be empty");
}

static void test_known_parameter_given_twice_is_an_error(void **state) {
    (void)state;
    for (size_t i = 0; i < ALL_PARAMS_COUNT; i++) {
        char qs[128], reason[64];
        snprintf(reason, sizeof reason, "%s: given more than once", all_params[i]);
        /* Same value twice is still twice. */
        snprintf(qs, sizeof qs, "%s=%s&%s=%s", all_params[i], sample_values[i], all_params[i], sample_values[i]);
        expect_error(qs, reason);
        /* The second one empty or without '=': the repetition is what is reported. */
        snprintf(qs, sizeof qs, "%s=%s&%s=", all_params[i], sample_values[i], all_params[i]);
        expect_error(qs, reason);
        snprintf(qs, sizeof qs, "%s=%s&%s", all_params[i], sample_values[i], all_params[i]);
        expect_error(qs, reason);
        /* Once is fine. */
        session_query_t q;
        snprintf(qs, sizeof qs, "%s=%s", all_params[i], sample_values[i]);
        parse_ok(qs, &q);
        session_query_free(&q);
    }
    /* The name is compared after decoding. */
    expect_error("li%6Dit=5&limit=6", "limit: given more than once");
    expect_error("limit=5&%6c%69%6d%69%74=5", "limit: given more than once");
    expect_error("api_name=a&api%5Fname=b", "api_name: given more than once");
    expect_error("offset=1&limit=5&offset=1", "offset: given more than once");
}

static void test_unknown_parameter_names_are_ignored(void **state) {
    (void)state;
    static const char *const ignored[] = {
        "foo=1",
        "foo=1&foo=2",          /* unknown, twice */
        "foo=%zz",              /* unknown, bad value: not even decoded */
        "foo=%00",
        "fo%zz=1&fo%zz=2",      /* badly encoded name: cannot be a known one */
        "limit%zz=0",
        "limit%=0",
        "%00limit=0",
        "limit%00=0",
        "LIMIT=0",              /* names are case-sensitive */
        "Limit=0&LIMIT=0",
        "limit+=0",             /* "limit " */
        "+limit=0",
        "limits=0",
        "lim=0",
        "=5",
        "=",
        "a_very_long_parameter_name_that_is_unknown=1",
        "limitlimitlimitlimit=0",
        "api_name%5B%5D=x",
        "callback=x&_=1764547200",
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        session_query_t q;
        parse_ok(ignored[i], &q);
        assert_defaults(&q);
        session_query_free(&q);
    }
    /* Unknown parameters around known ones change nothing. */
    session_query_t q;
    parse_ok("foo=1&limit=5&foo=2&bar=%zz&LIMIT=7", &q);
    assert_int_equal(q.limit, 5);
    session_query_free(&q);
}

static void test_bad_percent_encoding_in_a_known_value_is_an_error(void **state) {
    (void)state;
    expect_error("limit=%zz", "limit: invalid percent-encoding");
    expect_error("limit=%", "limit: invalid percent-encoding");
    expect_error("limit=5%", "limit: invalid percent-encoding");
    expect_error("limit=%3", "limit: invalid percent-encoding");
    expect_error("api_name=%", "api_name: invalid percent-encoding");
    expect_error("api_name=ab%4", "api_name: invalid percent-encoding");
    expect_error("api_name=%g0", "api_name: invalid percent-encoding");
    expect_error("target_url=https%3A%2F%2Fx%2", "target_url: invalid percent-encoding");
    expect_error("end_url=%zzexample.com", "end_url: invalid percent-encoding");
    expect_error("start_date=2025-12-01T02:00:00%2G02:00", "start_date: invalid percent-encoding");
    expect_error("status=%", "status: invalid percent-encoding");
}

static void test_nul_byte_in_a_known_value_is_an_error(void **state) {
    (void)state;
    expect_error("api_name=a%00b", "api_name: must not contain a NUL byte");
    expect_error("target_url=%00", "target_url: must not contain a NUL byte");
    expect_error("limit=5%00", "limit: must not contain a NUL byte");
}

static void test_first_failing_parameter_decides_the_details(void **state) {
    (void)state;
    expect_error("limit=abc&offset=-1", "limit: must be an integer from 1 to 100");
    expect_error("offset=-1&limit=abc", "offset: must be an integer from 0 to 2147483647");
    expect_error("status=x&status=y", "status: must be one of running, finished, failed, all");
    expect_error("status=all&status=x", "status: given more than once");
    expect_error("api_name=&api_name=x", "api_name: must not be empty");
    /* Errors after strings were stored: nothing leaks (ASan), the query is back to defaults. */
    expect_error("api_name=x&target_url=a.com&end_url=https://b.com&limit=0",
                 "limit: must be an integer from 1 to 100");
    expect_error("api_name=x&target_url=a.com&end_url=https://b.com&api_name=y", "api_name: given more than once");
    expect_error("api_name=x&target_url=a.com&start_date=2025-12-02&end_date=2025-12-01",
                 "start_date: is later than end_date");
    expect_error("end_url=x.com&target_url=%zz", "target_url: invalid percent-encoding");
}

static void test_details_are_cut_to_their_buffer(void **state) {
    (void)state;
    session_query_t q;
    /* No buffer at all. */
    assert_int_equal(session_query_parse("limit=0", 7, &q, NULL, 0), -EINVAL);
    assert_defaults(&q);
    char details[8];
    memset(details, 'x', sizeof details);
    assert_int_equal(session_query_parse("limit=0", 7, &q, details, 0), -EINVAL);
    assert_int_equal(details[0], 'x'); /* capacity 0: untouched */
    /* Truncated, always NUL-terminated, never past the capacity. */
    assert_int_equal(session_query_parse("limit=0", 7, &q, details, 6), -EINVAL);
    assert_string_equal(details, "limit");
    assert_int_equal(details[6], 'x');
}

static void test_only_len_bytes_of_the_query_count(void **state) {
    (void)state;
    session_query_t q;
    char details[8];
    /* Only `len` bytes of the query count. */
    assert_int_equal(session_query_parse("limit=5&limit=6", 7, &q, details, sizeof details), 0);
    assert_int_equal(q.limit, 5);
    session_query_free(&q);
    assert_int_equal(session_query_parse("limit=100", 8, &q, details, sizeof details), 0);
    assert_int_equal(q.limit, 10);
    session_query_free(&q);
}

static void test_details_never_quote_the_request(void **state) {
    (void)state;
    /* Hostile input never reaches the details. */
    static const char *const hostile[] = {
        "api_name=%22%3Cscript%3E&limit=%E2%9C%93",
        "status=%22quoted%22",
        "start_date=%0A%0D",
        "target_url=%FF&target_url=%FE",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        session_query_t q;
        char details[128];
        assert_int_equal(session_query_parse(hostile[i], strlen(hostile[i]), &q, details, sizeof details), -EINVAL);
        assert_true(strlen(details) < 64);
        for (const char *p = details; *p; p++) {
            assert_true(*p >= 0x20 && *p < 0x7f);
            assert_true(*p != '"' && *p != '\\' && *p != '<');
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_sets_the_defaults),
        cmocka_unit_test(test_empty_query_gives_the_defaults),
        cmocka_unit_test(test_parse_starts_from_the_defaults_and_free_restores_them),
        cmocka_unit_test(test_every_parameter_is_parsed_into_its_field),
        cmocka_unit_test(test_limit_from_1_to_100_is_accepted),
        cmocka_unit_test(test_limit_outside_1_to_100_or_not_plain_digits_is_an_error),
        cmocka_unit_test(test_offset_from_0_to_2147483647_is_accepted),
        cmocka_unit_test(test_offset_outside_its_range_or_not_plain_digits_is_an_error),
        cmocka_unit_test(test_status_names_and_all_are_accepted),
        cmocka_unit_test(test_status_other_than_its_exact_names_is_an_error),
        cmocka_unit_test(test_sort_and_order_values_are_accepted),
        cmocka_unit_test(test_sort_other_than_its_names_is_an_error),
        cmocka_unit_test(test_order_other_than_asc_or_desc_is_an_error),
        cmocka_unit_test(test_api_name_is_decoded_and_kept_exactly),
        cmocka_unit_test(test_url_filter_with_a_scheme_is_a_prefix_else_a_domain_both_lowercased),
        cmocka_unit_test(test_target_and_end_url_filters_are_independent),
        cmocka_unit_test(test_bare_dates_cover_whole_days),
        cmocka_unit_test(test_date_times_are_exact),
        cmocka_unit_test(test_date_offsets_apply_with_the_plus_encoded),
        cmocka_unit_test(test_an_unencoded_plus_in_an_offset_is_a_400),
        cmocka_unit_test(test_bare_dates_and_date_times_mix),
        cmocka_unit_test(test_invalid_dates_are_errors),
        cmocka_unit_test(test_start_date_later_than_end_date_is_an_error),
        cmocka_unit_test(test_date_order_is_checked_after_every_parameter),
        cmocka_unit_test(test_empty_value_of_a_known_parameter_is_an_error),
        cmocka_unit_test(test_known_parameter_given_twice_is_an_error),
        cmocka_unit_test(test_unknown_parameter_names_are_ignored),
        cmocka_unit_test(test_bad_percent_encoding_in_a_known_value_is_an_error),
        cmocka_unit_test(test_nul_byte_in_a_known_value_is_an_error),
        cmocka_unit_test(test_first_failing_parameter_decides_the_details),
        cmocka_unit_test(test_details_are_cut_to_their_buffer),
        cmocka_unit_test(test_only_len_bytes_of_the_query_count),
        cmocka_unit_test(test_details_never_quote_the_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
