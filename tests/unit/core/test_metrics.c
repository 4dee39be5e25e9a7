/* core/metrics: histogram buckets (bounds inclusive, cumulative in the text), counter sets
 * (their keys, the "other" overflow), label escaping, values, and counts from many threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "core/metrics.h"

static void test_histogram_buckets(void **state) {
    (void)state;
    static const double bounds[] = {0.001, 0.01, 1};
    metric_buckets_t b = {bounds, 3};
    metric_histogram_t h;
    metric_histogram_init(&h, &b);
    metric_histogram_observe_ns(&h, 1000000);    /* exactly 1 ms: le="0.001" (bounds are inclusive) */
    metric_histogram_observe_ns(&h, 1000001);    /* just over: le="0.01" */
    metric_histogram_observe_ns(&h, 500000000);  /* 0.5 s */
    metric_histogram_observe_ns(&h, 3000000000); /* 3 s: only +Inf */
    buf_t out;
    buf_init(&out);
    assert_int_equal(metrics_write_histogram(&out, "x_seconds", "route=\"/a\"", &h), 0);
    assert_string_equal(out.data, "x_seconds_bucket{route=\"/a\",le=\"0.001\"} 1\n"
                                  "x_seconds_bucket{route=\"/a\",le=\"0.01\"} 2\n"
                                  "x_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
                                  "x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
                                  "x_seconds_sum{route=\"/a\"} 3.502000001\n"
                                  "x_seconds_count{route=\"/a\"} 4\n");
    buf_reset(&out);
    metric_histogram_t empty;
    metric_histogram_init(&empty, &b);
    assert_int_equal(metrics_write_histogram(&out, "y", NULL, &empty), 0);
    assert_string_equal(out.data, "y_bucket{le=\"0.001\"} 0\ny_bucket{le=\"0.01\"} 0\ny_bucket{le=\"1\"} 0\n"
                                  "y_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n");
    buf_free(&out);
}

static void test_default_buckets_ascend(void **state) {
    (void)state;
    const metric_buckets_t *all[] = {&METRIC_BUCKETS_FAST, &METRIC_BUCKETS_SLOW};
    for (size_t k = 0; k < 2; k++) {
        assert_true(all[k]->count > 5 && all[k]->count <= METRIC_MAX_BUCKETS);
        for (size_t i = 1; i < all[k]->count; i++) assert_true(all[k]->bounds[i] > all[k]->bounds[i - 1]);
    }
}

static void test_counter_set(void **state) {
    (void)state;
    metric_counter_set_t s;
    metric_counter_set_init(&s, "status", "error");
    metric_counter_set_add(&s, "failed", "inactivity_timeout", 1);
    metric_counter_set_add(&s, "finished", "none", 2);
    metric_counter_set_add(&s, "failed", "inactivity_timeout", 1);
    metric_counter_set_add(&s, "failed", "job_killed", 1);
    assert_int_equal(metric_counter_set_get(&s, "failed", "inactivity_timeout"), 2);
    assert_int_equal(metric_counter_set_get(&s, "failed", "none"), 0);
    buf_t out;
    buf_init(&out);
    assert_int_equal(metrics_write_counter_set(&out, "s_total", &s), 0);
    assert_string_equal(out.data, "s_total{status=\"failed\",error=\"inactivity_timeout\"} 2\n"
                                  "s_total{status=\"finished\",error=\"none\"} 2\n"
                                  "s_total{status=\"failed\",error=\"job_killed\"} 1\n");
    metric_counter_set_free(&s);
    buf_free(&out);
}

static void test_counter_set_overflow(void **state) {
    (void)state;
    metric_counter_set_t s;
    metric_counter_set_init(&s, "code", NULL);
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%d", i);
        metric_counter_set_add(&s, key, NULL, 1);
    }
    assert_int_equal(s.n, METRIC_COUNTER_SET_MAX);
    uint64_t total = 0;
    for (size_t i = 0; i < s.n; i++) total += s.entries[i].count;
    assert_int_equal(total, 300); /* nothing lost: past the limit, counted as "other" */
    assert_int_equal(metric_counter_set_get(&s, "other", NULL), 300 - (METRIC_COUNTER_SET_MAX - 1));
    metric_counter_set_add(&s, "k0", NULL, 5); /* a key kept before the limit still counts as itself */
    assert_int_equal(metric_counter_set_get(&s, "k0", NULL), 6);
    metric_counter_set_free(&s);
}

static void test_labels_and_values(void **state) {
    (void)state;
    buf_t l, out;
    buf_init(&l);
    buf_init(&out);
    assert_int_equal(metrics_append_label(&l, "a", "x\"y\\z\nw"), 0);
    assert_int_equal(metrics_append_label(&l, "b", ""), 0);
    assert_string_equal(l.data, "a=\"x\\\"y\\\\z\\nw\",b=\"\"");
    assert_int_equal(metrics_write_sample(&out, "n", NULL, 42), 0);
    assert_int_equal(metrics_write_sample(&out, "n", "k=\"v\"", 0.25), 0);
    assert_int_equal(metrics_write_sample(&out, "n", "", 1e18), 0);
    assert_int_equal(metrics_write_sample(&out, "n", NULL, NAN), 0);
    assert_int_equal(metrics_write_sample(&out, "n", NULL, -INFINITY), 0);
    assert_int_equal(metrics_write_sample(&out, "n", NULL, 2.9810000000000001), 0);
    assert_string_equal(out.data, "n 42\nn{k=\"v\"} 0.25\nn 1e+18\nn NaN\nn -Inf\nn 2.981\n");
    buf_reset(&out);
    assert_int_equal(metrics_write_one(&out, "g", "gauge", "A gauge", 3), 0);
    assert_string_equal(out.data, "# HELP g A gauge\n# TYPE g gauge\ng 3\n");
    buf_free(&l);
    buf_free(&out);
}

enum { THREADS = 4, PER_THREAD = 100000 };
static metric_histogram_t shared;

static void *observe_many(void *arg) {
    uint64_t ns = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) metric_histogram_observe_ns(&shared, ns);
    return NULL;
}

static void test_histogram_threads(void **state) {
    (void)state;
    metric_histogram_init(&shared, &METRIC_BUCKETS_FAST);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, observe_many, (void *)(i * 1000000)), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    uint64_t n = 0;
    for (size_t b = 0; b <= shared.buckets.count; b++) n += shared.counts[b];
    assert_int_equal(n, THREADS * PER_THREAD);
    assert_int_equal(shared.sum_ns, (uint64_t)PER_THREAD * (0 + 1 + 2 + 3) * 1000000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_buckets),   cmocka_unit_test(test_default_buckets_ascend),
        cmocka_unit_test(test_counter_set),         cmocka_unit_test(test_counter_set_overflow),
        cmocka_unit_test(test_labels_and_values),   cmocka_unit_test(test_histogram_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
