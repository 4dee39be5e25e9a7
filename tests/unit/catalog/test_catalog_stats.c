/* catalog_stats against a brute-force computation over the same rows: random sessions of two
 * customers, random filters of every kind (zone, status, window, domain and prefix URL
 * filters, each with every query-engine path: the filter budget 16 and 0), hour and day
 * buckets; then the rules one at a time (range from the bounds or the matches, empty
 * buckets, the bucket limit, alignment before 1970, saturation, a customer without sessions). */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "catalog/catalog_internal.h"
#include "catalog/catalog_stats.h"
#include "core/uuid.h"
#include "session/stats_query.h"
#include "session/url_match.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd() % n); }

#define T0_MS INT64_C(1764547200000) /* 2025-12-01T00:00:00Z */
#define HOUR SESSION_BUCKET_HOUR_MS
#define DAY SESSION_BUCKET_DAY_MS

static const char *const zones[] = {"scraping_browser1", "zone_b", "Zone_b"};
static const char *const urls[] = {
    "https://www.example.com/a", "https://example.com", "http://EXAMPLE.com:8080/x", "https://notexample.com/",
    "https://shop.example.com/cart", "https://example.org/p", "http://127.0.0.1/", "https://WWW.Example.COM/A",
};
#define NURLS (sizeof urls / sizeof *urls)
static const char *const codes[] = {"page_navigated_error", "job_killed", "session_timeout", "unknown", "cdp_error"};
static const char *const domain_filters[] = {"example.com", "www.example.com", "notexample.com", "org", "127.0.0.1"};
static const char *const prefix_filters[] = {"https://www.example.com/", "http://", "https://", "https://shop"};

typedef struct {
    const char *customer;
    session_record_t rec;
} row_t;

enum { ROWS = 3000 };
static row_t rows[ROWS];

static char *maybe_url(void) { return rnd_below(6) == 0 ? NULL : strdup(urls[rnd_below(NURLS)]); }

static void random_row(row_t *x, int i) {
    session_record_t *r = &x->rec;
    memset(r, 0, sizeof *r);
    uint8_t id[16];
    for (int k = 0; k < 16; k++) id[k] = (uint8_t)rnd();
    id[0] = (uint8_t)i; /* unique */
    id[1] = (uint8_t)(i >> 8);
    uuid_format(id, r->session_id);
    x->customer = rnd_below(4) == 0 ? "cust_b" : "cust_a";
    r->api_name = strdup(zones[rnd_below(3)]);
    r->status = (session_status_t)rnd_below(3);
    r->target_url = maybe_url();
    r->end_url = maybe_url();
    /* three days, with sessions on the hour and a millisecond before it */
    int64_t at = (int64_t)rnd_below(72) * HOUR;
    r->timestamp_ms = T0_MS + at + (rnd_below(3) == 0 ? (rnd_below(2) ? 0 : HOUR - 1) : rnd_below(HOUR));
    r->duration_ms = r->status == SESSION_RUNNING ? SESSION_DURATION_NULL : 1000;
    r->bandwidth = rnd_below(4) == 0 ? 0 : (int64_t)rnd_below(1 << 30);
    if (r->status == SESSION_FAILED) {
        r->error_code = strdup(codes[rnd_below(5)]);
        r->error_message = strdup("");
    }
}

static bool model_url_match(const url_filter_t *f, const char *url) {
    if (f->kind == URL_FILTER_NONE) return true;
    if (!url) return false;
    if (f->kind == URL_FILTER_PREFIX) return strncasecmp(url, f->value, f->len) == 0;
    const char *h;
    size_t n;
    if (!url_host(url, strlen(url), &h, &n)) return false;
    char host[256];
    for (size_t i = 0; i < n; i++) host[i] = (char)tolower((unsigned char)h[i]);
    host[n] = '\0';
    if (strcmp(host, f->value) == 0) return true;
    return n > f->len && host[n - f->len - 1] == '.' && strcmp(host + n - f->len, f->value) == 0;
}

static bool model_matches(const row_t *x, const char *customer, const session_query_t *q) {
    const session_record_t *r = &x->rec;
    return strcmp(x->customer, customer) == 0 && (!q->api_name || strcmp(q->api_name, r->api_name) == 0) &&
           (q->status < 0 || (int)r->status == q->status) && r->timestamp_ms >= q->start_ms &&
           r->timestamp_ms <= q->end_ms && model_url_match(&q->target_url, r->target_url) &&
           model_url_match(&q->end_url, r->end_url);
}

static int64_t model_floor(int64_t ms, int64_t w) { return (ms >= 0 ? ms / w : -((-ms + w - 1) / w)) * w; }

/* The aggregates written plainly: every row looked at, the range from the bounds or the
 * first and last match, each bucket searched for. Compared field by field with `got`. */
static void check_against_model(const char *customer, const session_query_t *q, int64_t w, const catalog_stats_t *got) {
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    uint64_t total = 0, by_status[3] = {0};
    int64_t bandwidth = 0;
    for (int i = 0; i < ROWS; i++) {
        if (!model_matches(&rows[i], customer, q)) continue;
        const session_record_t *r = &rows[i].rec;
        if (r->timestamp_ms < lo) lo = r->timestamp_ms;
        if (r->timestamp_ms > hi) hi = r->timestamp_ms;
        total++;
        by_status[r->status]++;
        bandwidth += r->bandwidth;
    }
    assert_int_equal(got->total, total);
    for (int s = 0; s < 3; s++) assert_int_equal(got->sessions[s], by_status[s]);
    assert_int_equal(got->bandwidth, bandwidth);
    if (q->start_ms != INT64_MIN) lo = q->start_ms;
    if (q->end_ms != INT64_MAX) hi = q->end_ms;
    if (!total && q->start_ms == INT64_MIN && q->end_ms != INT64_MAX) lo = hi;
    if (!total && q->start_ms != INT64_MIN && q->end_ms == INT64_MAX) hi = lo;
    if (lo > hi) { /* no bounds, no matches */
        assert_int_equal(got->nbuckets, 0);
        assert_int_equal(got->from_ms, 0);
        assert_int_equal(got->to_ms, 0);
        assert_int_equal(got->nerrors, 0);
        return;
    }
    int64_t from = model_floor(lo, w), to = model_floor(hi, w) + w;
    assert_int_equal(got->from_ms, from);
    assert_int_equal(got->to_ms, to);
    assert_int_equal(got->nbuckets, (to - from) / w);
    for (uint32_t b = 0; b < got->nbuckets; b++) {
        const catalog_stats_bucket_t *gb = &got->buckets[b];
        assert_int_equal(gb->start_ms, from + (int64_t)b * w);
        uint64_t n[3] = {0};
        int64_t bw = 0;
        for (int i = 0; i < ROWS; i++) {
            const session_record_t *r = &rows[i].rec;
            if (!model_matches(&rows[i], customer, q) || r->timestamp_ms < gb->start_ms ||
                r->timestamp_ms >= gb->start_ms + w)
                continue;
            n[r->status]++;
            bw += r->bandwidth;
        }
        for (int s = 0; s < 3; s++) assert_int_equal(gb->sessions[s], n[s]);
        assert_int_equal(gb->bandwidth, bw);
    }
    /* errors: every code with its count, in order of count (desc) then code */
    uint32_t seen = 0;
    for (size_t k = 0; k < sizeof codes / sizeof *codes; k++) {
        uint64_t n = 0;
        for (int i = 0; i < ROWS; i++)
            if (model_matches(&rows[i], customer, q) && rows[i].rec.error_code &&
                strcmp(rows[i].rec.error_code, codes[k]) == 0)
                n++;
        if (!n) continue;
        seen++;
        bool found = false;
        for (uint32_t e = 0; e < got->nerrors; e++)
            if (strcmp(got->errors[e].code, codes[k]) == 0) {
                assert_int_equal(got->errors[e].count, n);
                found = true;
            }
        assert_true(found);
    }
    assert_int_equal(got->nerrors, seen);
    assert_int_equal(got->other_errors, 0);
    for (uint32_t e = 1; e < got->nerrors; e++) {
        const catalog_stats_error_t *a = &got->errors[e - 1], *b = &got->errors[e];
        assert_true(a->count > b->count || (a->count == b->count && strcmp(a->code, b->code) < 0));
    }
}

static void random_filter(url_filter_t *f, char *storage) {
    int k = rnd_below(4);
    f->kind = URL_FILTER_NONE;
    f->value = NULL;
    if (k == 0 || k == 3) return;
    const char *v = k == 1 ? domain_filters[rnd_below(5)] : prefix_filters[rnd_below(4)];
    f->kind = k == 1 ? URL_FILTER_DOMAIN : URL_FILTER_PREFIX;
    strcpy(storage, v);
    f->value = storage;
    f->len = strlen(v);
}

static void random_query(session_query_t *q, char *a, char *b) {
    session_query_init(q);
    q->status = rnd_below(2) ? SESSION_QUERY_STATUS_ALL : (int)rnd_below(3);
    q->api_name = rnd_below(3) == 0 ? (char *)zones[rnd_below(3)] : NULL;
    if (rnd_below(3) == 0) q->start_ms = T0_MS + (int64_t)rnd_below(72) * HOUR + rnd_below(3) - 1;
    if (rnd_below(3) == 0) q->end_ms = T0_MS + (int64_t)rnd_below(72) * HOUR + rnd_below(3) - 1;
    if (q->start_ms > q->end_ms) q->end_ms = q->start_ms;
    random_filter(&q->target_url, a);
    random_filter(&q->end_url, b);
}

static int setup(void **state) {
    catalog_t *c = catalog_new();
    if (!c) return -1;
    for (int i = 0; i < ROWS; i++) {
        random_row(&rows[i], i);
        if (catalog_put(c, rows[i].customer, &rows[i].rec) != 0) return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state) {
    catalog_free(*state);
    for (int i = 0; i < ROWS; i++) session_record_free(&rows[i].rec);
    catalog_query_set_filter_budget(16);
    return 0;
}

static void test_random_queries_aggregate_like_brute_force(void **state) {
    catalog_t *c = *state;
    for (int round = 0; round < 600; round++) {
        catalog_query_set_filter_budget(round % 2 ? 16 : 0);
        session_query_t q;
        char a[64], b[64];
        random_query(&q, a, b);
        const char *customer = rnd_below(4) ? "cust_a" : "cust_b";
        int64_t w = rnd_below(3) ? HOUR : DAY;
        catalog_stats_t s;
        assert_int_equal(catalog_stats(c, customer, &q, w, &s), 0);
        check_against_model(customer, &q, w, &s);
        catalog_stats_free(&s);
    }
}

static void test_range_is_the_bounds_widened_to_whole_buckets_with_empty_ones_kept(void **state) {
    catalog_t *c = *state;
    session_query_t q;
    session_query_init(&q);
    q.start_ms = T0_MS - 10 * DAY + 5; /* no session before T0 */
    q.end_ms = T0_MS - 10 * DAY + 3 * HOUR;
    catalog_stats_t s;
    assert_int_equal(catalog_stats(c, "cust_a", &q, HOUR, &s), 0);
    assert_int_equal(s.from_ms, T0_MS - 10 * DAY);
    assert_int_equal(s.to_ms, T0_MS - 10 * DAY + 4 * HOUR);
    assert_int_equal(s.nbuckets, 4);
    assert_int_equal(s.total, 0);
    for (uint32_t i = 0; i < 4; i++) assert_int_equal(s.buckets[i].sessions[0] + s.buckets[i].sessions[1], 0);
    catalog_stats_free(&s);
    /* one bound and nothing matching: the range is that bound's bucket */
    q.end_ms = INT64_MAX;
    q.api_name = "no_such_zone";
    assert_int_equal(catalog_stats(c, "cust_a", &q, DAY, &s), 0);
    assert_int_equal(s.nbuckets, 1);
    assert_int_equal(s.from_ms, T0_MS - 10 * DAY);
    catalog_stats_free(&s);
}

static void test_more_buckets_than_the_limit_is_e2big_with_their_number(void **state) {
    catalog_t *c = *state;
    session_query_t q;
    session_query_init(&q);
    q.start_ms = T0_MS;
    q.end_ms = T0_MS + (int64_t)CATALOG_STATS_MAX_BUCKETS * HOUR - 1; /* exactly the limit */
    catalog_stats_t s;
    assert_int_equal(catalog_stats(c, "cust_a", &q, HOUR, &s), 0);
    assert_int_equal(s.nbuckets, CATALOG_STATS_MAX_BUCKETS);
    catalog_stats_free(&s);
    q.end_ms += 1;
    assert_int_equal(catalog_stats(c, "cust_a", &q, HOUR, &s), -E2BIG);
    assert_int_equal(s.nbuckets, CATALOG_STATS_MAX_BUCKETS + 1);
    assert_null(s.buckets);
    /* the whole data (three days) in hours is within it; from year 1 it is not */
    session_query_init(&q);
    assert_int_equal(catalog_stats(c, "cust_a", &q, HOUR, &s), 0);
    assert_int_equal(s.nbuckets, 72);
    catalog_stats_free(&s);
    q.start_ms = INT64_C(-62135596800000); /* 0001-01-01 */
    assert_int_equal(catalog_stats(c, "cust_a", &q, DAY, &s), -E2BIG);
}

static void test_a_customer_without_sessions_has_none(void **state) {
    catalog_t *c = *state;
    session_query_t q;
    session_query_init(&q);
    catalog_stats_t s;
    assert_int_equal(catalog_stats(c, "nobody", &q, HOUR, &s), 0);
    assert_int_equal(s.total, 0);
    assert_int_equal(s.nbuckets, 0);
    q.start_ms = T0_MS;
    q.end_ms = T0_MS + DAY - 1;
    assert_int_equal(catalog_stats(c, "nobody", &q, HOUR, &s), 0);
    assert_int_equal(s.nbuckets, 24);
    assert_int_equal(s.total, 0);
    catalog_stats_free(&s);
}

static session_record_t plain(const char *id, int64_t ts, int64_t bandwidth) {
    session_record_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.session_id, sizeof r.session_id, "%s", id);
    r.api_name = "z";
    r.status = SESSION_FINISHED;
    r.timestamp_ms = ts;
    r.duration_ms = 1;
    r.bandwidth = bandwidth;
    return r;
}

static void test_buckets_before_1970_are_aligned_and_sums_saturate(void **state) {
    catalog_t *c = *state;
    session_record_t a = plain("00000000-0000-4000-8000-000000000001", -1, INT64_MAX - 5);
    session_record_t b = plain("00000000-0000-4000-8000-000000000002", -HOUR, 10);
    assert_int_equal(catalog_put(c, "old", &a), 0);
    assert_int_equal(catalog_put(c, "old", &b), 0);
    session_query_t q;
    session_query_init(&q);
    catalog_stats_t s;
    assert_int_equal(catalog_stats(c, "old", &q, HOUR, &s), 0);
    assert_int_equal(s.from_ms, -HOUR);
    assert_int_equal(s.to_ms, 0);
    assert_int_equal(s.nbuckets, 1);
    assert_int_equal(s.buckets[0].sessions[SESSION_FINISHED], 2);
    assert_int_equal(s.buckets[0].bandwidth, INT64_MAX);
    assert_int_equal(s.bandwidth, INT64_MAX);
    catalog_stats_free(&s);
}

static void test_past_the_most_frequent_codes_the_rest_is_one_count(void **state) {
    catalog_t *c = *state;
    /* code k (0..149) on k + 1 sessions: the 100 most frequent are 149..50 */
    int n = 0;
    for (int k = 0; k < 150; k++) {
        char code[16];
        snprintf(code, sizeof code, "code_%03d", k);
        for (int j = 0; j <= k; j++, n++) {
            char id[37];
            snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", n);
            session_record_t r = plain(id, T0_MS, 1);
            r.status = SESSION_FAILED;
            r.error_code = code;
            r.error_message = "";
            assert_int_equal(catalog_put(c, "codes", &r), 0);
        }
    }
    session_query_t q;
    session_query_init(&q);
    catalog_stats_t s;
    assert_int_equal(catalog_stats(c, "codes", &q, DAY, &s), 0);
    assert_int_equal(s.total, n);
    assert_int_equal(s.nerrors, CATALOG_STATS_MAX_ERRORS);
    assert_string_equal(s.errors[0].code, "code_149");
    assert_int_equal(s.errors[0].count, 150);
    assert_string_equal(s.errors[99].code, "code_050");
    uint64_t rest = 0;
    for (int k = 0; k < 50; k++) rest += (uint64_t)k + 1;
    assert_int_equal(s.other_errors, rest);
    catalog_stats_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_queries_aggregate_like_brute_force),
        cmocka_unit_test(test_range_is_the_bounds_widened_to_whole_buckets_with_empty_ones_kept),
        cmocka_unit_test(test_more_buckets_than_the_limit_is_e2big_with_their_number),
        cmocka_unit_test(test_a_customer_without_sessions_has_none),
        cmocka_unit_test(test_buckets_before_1970_are_aligned_and_sums_saturate),
        cmocka_unit_test(test_past_the_most_frequent_codes_the_rest_is_one_count),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
