/* api/api_metrics: the route of every path, and the request counters and latency written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_metrics.h"

static api_route_t route(const char *p) { return api_route_of(p, strlen(p)); }

static void test_routes(void **state) {
    (void)state;
    assert_int_equal(route("/browser_sessions"), API_ROUTE_LIST);
    assert_int_equal(route("/browser_sessions/0192f5e8-7b3c-7def-8a12-000000000001"), API_ROUTE_SESSION);
    assert_int_equal(route("/browser_sessions/not-a-uuid"), API_ROUTE_SESSION); /* a 400 of that route */
    assert_int_equal(route("/browser_sessions/"), API_ROUTE_OTHER);
    assert_int_equal(route("/browser_sessions/a/b"), API_ROUTE_OTHER);
    assert_int_equal(route("/browser_sessionsx"), API_ROUTE_OTHER);
    assert_int_equal(route("/health"), API_ROUTE_HEALTH);
    assert_int_equal(route("/healthz"), API_ROUTE_HEALTHZ);
    assert_int_equal(route("/ready"), API_ROUTE_READY);
    assert_int_equal(route("/pressure"), API_ROUTE_PRESSURE);
    assert_int_equal(route("/openapi.json"), API_ROUTE_OPENAPI);
    assert_int_equal(route("/metrics"), API_ROUTE_METRICS);
    assert_int_equal(route("/metrics/"), API_ROUTE_OTHER);
    assert_int_equal(route("/browser_sessions/stats"), API_ROUTE_STATS); /* not a session id */
    assert_int_equal(route("/browser_sessions/stats/"), API_ROUTE_OTHER);
    assert_int_equal(route("/"), API_ROUTE_DASHBOARD);
    assert_int_equal(route("/dashboard"), API_ROUTE_DASHBOARD);
    assert_int_equal(route("/dashboard/"), API_ROUTE_DASHBOARD);
    assert_int_equal(route("/dashboard/app.js"), API_ROUTE_DASHBOARD);
    assert_int_equal(route("/dashboard/app.css"), API_ROUTE_DASHBOARD);
    assert_int_equal(route("/dashboard/x"), API_ROUTE_OTHER);
    assert_int_equal(route("//"), API_ROUTE_OTHER);
    assert_string_equal(api_route_name(API_ROUTE_SESSION), "/browser_sessions/{session_id}");
    assert_string_equal(api_route_name(API_ROUTE_OTHER), "other");
}

static void test_observe_and_write(void **state) {
    (void)state;
    api_request_metrics_t m;
    api_request_metrics_init(&m);
    http_request_t a = {.path = "/browser_sessions", .path_len = 17};
    http_request_t b = {.path = "/nope", .path_len = 5};
    api_request_metrics_observe(&m, &a, 200, 200000);   /* 0.2 ms */
    api_request_metrics_observe(&m, &a, 200, 2000000);  /* 2 ms */
    api_request_metrics_observe(&m, &a, 400, 50000);
    api_request_metrics_observe(&m, &b, 401, 1000);
    buf_t out;
    buf_init(&out);
    assert_int_equal(api_request_metrics_write(&m, &out), 0);
    const char *t = out.data;
    assert_non_null(strstr(t, "# TYPE browserd_api_requests_total counter\n"));
    assert_non_null(strstr(t, "browserd_api_requests_total{route=\"/browser_sessions\",code=\"200\"} 2\n"));
    assert_non_null(strstr(t, "browserd_api_requests_total{route=\"/browser_sessions\",code=\"400\"} 1\n"));
    assert_non_null(strstr(t, "browserd_api_requests_total{route=\"other\",code=\"401\"} 1\n"));
    assert_non_null(strstr(t, "# TYPE browserd_api_request_duration_seconds histogram\n"));
    assert_non_null(strstr(t, "browserd_api_request_duration_seconds_bucket{route=\"/browser_sessions\",le=\"0.00025\"} 2\n"));
    assert_non_null(strstr(t, "browserd_api_request_duration_seconds_bucket{route=\"/browser_sessions\",le=\"0.0025\"} 3\n"));
    assert_non_null(strstr(t, "browserd_api_request_duration_seconds_count{route=\"/browser_sessions\"} 3\n"));
    assert_non_null(strstr(t, "browserd_api_request_duration_seconds_count{route=\"other\"} 1\n"));
    assert_null(strstr(t, "route=\"/health\"")); /* never asked for: no series */
    buf_free(&out);
    api_request_metrics_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_routes), cmocka_unit_test(test_observe_and_write)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
