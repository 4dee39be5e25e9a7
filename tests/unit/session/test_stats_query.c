/* session_stats_query_parse: the list's filters by the list's rules, and `bucket`. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "session/stats_query.h"

static int parse(const char *qs, session_stats_query_t *q, char *details) {
    return session_stats_query_parse(qs, strlen(qs), q, details, 128);
}

static void test_bucket_defaults_to_hour_and_takes_day(void **state) {
    (void)state;
    session_stats_query_t q;
    char d[128];
    assert_int_equal(parse("", &q, d), 0);
    assert_int_equal(q.bucket_ms, SESSION_BUCKET_HOUR_MS);
    session_stats_query_free(&q);
    assert_int_equal(parse("bucket=day&status=failed&api_name=z", &q, d), 0);
    assert_int_equal(q.bucket_ms, SESSION_BUCKET_DAY_MS);
    assert_int_equal(q.filters.status, 2);
    assert_string_equal(q.filters.api_name, "z");
    session_stats_query_free(&q);
    assert_int_equal(parse("buck%65t=d%61y", &q, d), 0); /* names and values decoded first */
    assert_int_equal(q.bucket_ms, SESSION_BUCKET_DAY_MS);
    session_stats_query_free(&q);
    assert_int_equal(parse("bucket=hour", &q, d), 0);
    assert_int_equal(q.bucket_ms, SESSION_BUCKET_HOUR_MS);
    session_stats_query_free(&q);
    /* other names, even near ones, are ignored like the list ignores them */
    assert_int_equal(parse("Bucket=week&bucket_=x&buckets=1", &q, d), 0);
    assert_int_equal(q.bucket_ms, SESSION_BUCKET_HOUR_MS);
    session_stats_query_free(&q);
}

static void test_bad_buckets_name_the_parameter_and_why(void **state) {
    (void)state;
    static const struct {
        const char *qs, *details;
    } cases[] = {
        {"bucket=week", "bucket: must be one of hour, day"},
        {"bucket=Hour", "bucket: must be one of hour, day"},
        {"bucket=hours", "bucket: must be one of hour, day"},
        {"bucket=day&bucket=day", "bucket: given more than once"},
        {"bucket=", "bucket: must not be empty"},
        {"bucket", "bucket: must not be empty"},
        {"bucket=%zz", "bucket: invalid percent-encoding"},
        {"bucket=d%00", "bucket: must not contain a NUL byte"},
        /* the filters' rules are the list's, and their errors come first */
        {"bucket=week&limit=0", "limit: must be an integer from 1 to 100"},
        {"start_date=2025-12-02&end_date=2025-12-01&bucket=day", "start_date: is later than end_date"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        session_stats_query_t q;
        char d[128];
        assert_int_equal(parse(cases[i].qs, &q, d), -EINVAL);
        assert_string_equal(d, cases[i].details);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_defaults_to_hour_and_takes_day),
        cmocka_unit_test(test_bad_buckets_name_the_parameter_and_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
