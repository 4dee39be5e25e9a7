/* Query execution (catalog_query.c) through catalog_list, one rule of the contract per test:
 * orders and their ties, nulls last, domain and prefix filters, zone, status and window,
 * totals beyond the page. (test_catalog.c compares random queries with a model.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog_internal.h"
#include "catalog/catalog_query.h"

#define T0_MS INT64_C(1764547200000) /* 2025-12-01T00:00:00Z */

static int setup(void **state) {
    catalog_t *c = catalog_new();
    if (!c) return -1;
    *state = c;
    return 0;
}

static int teardown(void **state) {
    catalog_free(*state);
    catalog_query_set_filter_budget(16);
    return 0;
}

/* Session n (1..99) of "cust": the last two digits of its id are n. Fields beyond these
 * are set by the caller before session_put. */
static session_record_t session_n(int n, int64_t second) {
    session_record_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.session_id, sizeof r.session_id, "0192f5e8-7b3c-7def-8a12-0000000000%c%c", '0' + n / 10, '0' + n % 10);
    r.api_name = "zone_a"; /* borrowed literals: catalog_put copies */
    r.status = SESSION_FINISHED;
    r.timestamp_ms = T0_MS + second * 1000;
    r.duration_ms = 1000;
    return r;
}

static void session_put(catalog_t *c, const session_record_t *r) { assert_int_equal(catalog_put(c, "cust", r), 0); }

static void put_n(catalog_t *c, int n, int64_t second) {
    session_record_t r = session_n(n, second);
    session_put(c, &r);
}

typedef struct {
    char text[512]; /* "n,n,...," in visiting order */
    size_t len;
} visited_t;

static int note_row(void *ctx, const session_record_t *view) {
    visited_t *o = ctx;
    const char *id = view->session_id;
    int n = (id[34] - '0') * 10 + (id[35] - '0');
    o->len += (size_t)snprintf(o->text + o->len, sizeof o->text - o->len, "%d,", n);
    return 0;
}

/* The page of this query string as "n,n,..." and its total. */
static void expect_page(catalog_t *c, const char *qs, const char *want, uint64_t want_total) {
    session_query_t q;
    char details[128];
    assert_int_equal(session_query_parse(qs, strlen(qs), &q, details, sizeof details), 0);
    visited_t o = {.len = 0};
    o.text[0] = '\0';
    catalog_page_info_t info;
    assert_int_equal(catalog_list(c, "cust", &q, note_row, &o, &info), 0);
    session_query_free(&q);
    if (strcmp(o.text, want) != 0 || info.total != want_total)
        print_error("%s: got %s (total %llu), want %s (total %llu)\n", qs, o.text, (unsigned long long)info.total,
                    want, (unsigned long long)want_total);
    assert_string_equal(o.text, want);
    assert_int_equal(info.total, want_total);
}

static void test_default_order_is_newest_first_with_equal_times_by_id(void **state) {
    catalog_t *c = *state;
    put_n(c, 1, 10);
    put_n(c, 2, 30);
    put_n(c, 3, 20);
    put_n(c, 4, 20); /* same time as 3: the id decides, in the same direction */
    expect_page(c, "", "2,4,3,1,", 4);
}

static void test_ascending_order_is_oldest_first(void **state) {
    catalog_t *c = *state;
    put_n(c, 1, 10);
    put_n(c, 2, 30);
    put_n(c, 3, 20);
    put_n(c, 4, 20);
    expect_page(c, "order=asc", "1,3,4,2,", 4);
}

static void test_duration_sort_puts_running_sessions_last_both_ways(void **state) {
    catalog_t *c = *state;
    session_record_t r = session_n(1, 1);
    r.duration_ms = 5000;
    session_put(c, &r);
    r = session_n(2, 2);
    r.status = SESSION_RUNNING;
    r.duration_ms = SESSION_DURATION_NULL;
    session_put(c, &r);
    r = session_n(3, 3);
    r.duration_ms = 1000;
    session_put(c, &r);
    r = session_n(4, 4);
    r.status = SESSION_RUNNING;
    r.duration_ms = SESSION_DURATION_NULL;
    session_put(c, &r);
    expect_page(c, "sort=duration", "1,3,4,2,", 4);
    expect_page(c, "sort=duration&order=asc", "3,1,2,4,", 4);
}

static void test_equal_bandwidths_are_ordered_by_time(void **state) {
    catalog_t *c = *state;
    int64_t bandwidth[] = {0, 300, 100, 300, 200};
    for (int n = 1; n <= 4; n++) {
        session_record_t r = session_n(n, n);
        r.bandwidth = bandwidth[n];
        session_put(c, &r);
    }
    expect_page(c, "sort=bandwidth", "3,1,4,2,", 4);
    expect_page(c, "sort=bandwidth&order=asc", "2,4,1,3,", 4);
}

static void put_url(catalog_t *c, int n, const char *target, const char *end) {
    session_record_t r = session_n(n, n);
    r.target_url = (char *)target;
    r.end_url = (char *)end;
    session_put(c, &r);
}

static void test_domain_filter_matches_the_host_and_its_subdomains_not_look_alikes(void **state) {
    catalog_t *c = *state;
    put_url(c, 1, "https://example.com/", NULL);
    put_url(c, 2, "https://www.example.com/a", NULL);
    put_url(c, 3, "https://deep.sub.example.com", NULL);
    put_url(c, 4, "https://notexample.com/", NULL);
    put_url(c, 5, "https://example.com.evil.org/", NULL);
    put_url(c, 6, NULL, NULL);
    expect_page(c, "target_url=example.com", "3,2,1,", 3);
    expect_page(c, "target_url=www.example.com", "2,", 1);
    expect_page(c, "target_url=xample.com", "", 0);
}

static void test_domain_filter_ignores_case_port_and_user_info(void **state) {
    catalog_t *c = *state;
    put_url(c, 1, "http://user:pw@WWW.Example.COM:8080/x?y=1", NULL);
    put_url(c, 2, "http://[::1]:9000/v6", NULL);
    expect_page(c, "target_url=example.com", "1,", 1);
    expect_page(c, "target_url=%5B::1%5D", "2,", 1);
}

static void test_domain_filter_merges_its_hosts_in_time_order(void **state) {
    catalog_t *c = *state;
    /* Two hosts of one domain, their sessions interleaved in time: each host's list is in
     * time order, the page is their merge. */
    for (int n = 1; n <= 8; n++) put_url(c, n, n % 2 ? "https://a.example.com/" : "https://b.example.com/", NULL);
    expect_page(c, "target_url=example.com&limit=5", "8,7,6,5,4,", 8);
    expect_page(c, "target_url=example.com&order=asc&offset=2&limit=3", "3,4,5,", 8);
}

static void test_prefix_filter_ignores_case_and_needs_the_whole_prefix(void **state) {
    catalog_t *c = *state;
    put_url(c, 1, "https://www.example.com/a/b", NULL);
    put_url(c, 2, "https://WWW.Example.COM/A/C", NULL);
    put_url(c, 3, "https://www.example.com", NULL);
    put_url(c, 4, "http://www.example.com/a", NULL);
    expect_page(c, "target_url=https://www.example.com/a", "2,1,", 2);
    expect_page(c, "target_url=https://www.example.com", "3,2,1,", 3);
}

static void test_end_url_filter_reads_the_end_url_only(void **state) {
    catalog_t *c = *state;
    put_url(c, 1, "https://shop.example.com/", "https://pay.example.org/done");
    put_url(c, 2, "https://pay.example.org/", "https://shop.example.com/cart");
    put_url(c, 3, "https://pay.example.org/", NULL);
    expect_page(c, "end_url=example.org", "1,", 1);
    expect_page(c, "end_url=https://shop.example.com/", "2,", 1);
    expect_page(c, "target_url=example.org&end_url=example.com", "2,", 1);
}

static void test_zone_filter_is_exact_and_case_sensitive(void **state) {
    catalog_t *c = *state;
    const char *zones[] = {"", "zone_a", "Zone_a", "zone_b"};
    for (int n = 1; n <= 3; n++) {
        session_record_t r = session_n(n, n);
        r.api_name = (char *)zones[n];
        session_put(c, &r);
    }
    expect_page(c, "api_name=zone_a", "1,", 1);
    expect_page(c, "api_name=Zone_a", "2,", 1);
    expect_page(c, "api_name=zone", "", 0);
}

static void test_status_and_date_window_bounds_are_inclusive(void **state) {
    catalog_t *c = *state;
    for (int n = 1; n <= 6; n++) {
        session_record_t r = session_n(n, n);
        r.status = n % 2 ? SESSION_FINISHED : SESSION_FAILED;
        session_put(c, &r);
    }
    expect_page(c, "start_date=2025-12-01T00:00:02Z&end_date=2025-12-01T00:00:05Z", "5,4,3,2,", 4);
    expect_page(c, "status=failed&start_date=2025-12-01T00:00:02Z&end_date=2025-12-01T00:00:05Z", "4,2,", 2);
    expect_page(c, "status=running", "", 0);
}

static void test_total_counts_every_match_beyond_the_page(void **state) {
    catalog_t *c = *state;
    for (int n = 1; n <= 5; n++) put_url(c, n, "https://example.com/", NULL);
    put_url(c, 6, "https://other.org/", NULL);
    expect_page(c, "target_url=example.com&limit=2", "5,4,", 5);
    expect_page(c, "target_url=example.com&offset=4&limit=2", "1,", 5);
    expect_page(c, "target_url=example.com&offset=5", "", 5);
    expect_page(c, "target_url=example.com&sort=bandwidth&offset=9", "", 5);
}

static void test_row_checks_and_candidate_bitmaps_give_the_same_page(void **state) {
    catalog_t *c = *state;
    /* Two URL filters: the rows of the smaller candidate set are checked against the other's
     * bitmap, or (budget 0) against the rows themselves. */
    static const char *const targets[] = {"https://example.com/", "https://www.example.com/x", "https://other.org/"};
    static const char *const ends[] = {"https://example.com/done", "https://pay.example.org/", NULL};
    for (int n = 1; n <= 60; n++) put_url(c, n, targets[n % 3], ends[(n / 3) % 3]);
    const char *qs = "target_url=example.com&end_url=https://example.com/&sort=bandwidth&limit=4&offset=1";
    catalog_query_set_filter_budget(16);
    expect_page(c, qs, "54,46,45,37,", 13);
    catalog_query_set_filter_budget(0);
    expect_page(c, qs, "54,46,45,37,", 13);
}

#define QUERY_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        QUERY_TEST(test_default_order_is_newest_first_with_equal_times_by_id),
        QUERY_TEST(test_ascending_order_is_oldest_first),
        QUERY_TEST(test_duration_sort_puts_running_sessions_last_both_ways),
        QUERY_TEST(test_equal_bandwidths_are_ordered_by_time),
        QUERY_TEST(test_domain_filter_matches_the_host_and_its_subdomains_not_look_alikes),
        QUERY_TEST(test_domain_filter_ignores_case_port_and_user_info),
        QUERY_TEST(test_domain_filter_merges_its_hosts_in_time_order),
        QUERY_TEST(test_prefix_filter_ignores_case_and_needs_the_whole_prefix),
        QUERY_TEST(test_end_url_filter_reads_the_end_url_only),
        QUERY_TEST(test_zone_filter_is_exact_and_case_sensitive),
        QUERY_TEST(test_status_and_date_window_bounds_are_inclusive),
        QUERY_TEST(test_total_counts_every_match_beyond_the_page),
        QUERY_TEST(test_row_checks_and_candidate_bitmaps_give_the_same_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
