#include "api/api_metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const route_names[API_ROUTE_COUNT] = {
    [API_ROUTE_LIST] = "/browser_sessions",  [API_ROUTE_SESSION] = "/browser_sessions/{session_id}",
    [API_ROUTE_STATS] = "/browser_sessions/stats", [API_ROUTE_DASHBOARD] = "/dashboard",
    [API_ROUTE_HEALTH] = "/health",          [API_ROUTE_READY] = "/ready",
    [API_ROUTE_PRESSURE] = "/pressure",      [API_ROUTE_HEALTHZ] = "/healthz",
    [API_ROUTE_OPENAPI] = "/openapi.json",   [API_ROUTE_METRICS] = "/metrics",
    [API_ROUTE_LIVE] = "/browser_sessions/{session_id}/live",
    [API_ROUTE_OTHER] = "other",
};

const char *api_route_name(api_route_t route) { return route < API_ROUTE_COUNT ? route_names[route] : "other"; }

static bool is_dashboard(const char *path, size_t len) {
    static const char *const paths[] = {"/", "/dashboard", "/dashboard/", "/dashboard/app.js", "/dashboard/app.css"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        if (strlen(paths[i]) == len && memcmp(paths[i], path, len) == 0) return true;
    return false;
}

api_route_t api_route_of(const char *path, size_t len) {
    static const char sessions[] = "/browser_sessions/";
    size_t sl = sizeof sessions - 1;
    if (is_dashboard(path, len)) return API_ROUTE_DASHBOARD;
    if (len == sizeof "/browser_sessions/stats" - 1 && memcmp(path, "/browser_sessions/stats", len) == 0)
        return API_ROUTE_STATS;
    /* one segment after the prefix, whatever it holds: a malformed id is still this route */
    if (len > sl && memcmp(path, sessions, sl) == 0 && !memchr(path + sl, '/', len - sl)) return API_ROUTE_SESSION;
    if (len > sl + 5 && memcmp(path, sessions, sl) == 0 && memcmp(path + len - 5, "/live", 5) == 0 &&
        !memchr(path + sl, '/', len - sl - 5))
        return API_ROUTE_LIVE;
    for (int r = 0; r < API_ROUTE_OTHER; r++) {
        if (r == API_ROUTE_SESSION || r == API_ROUTE_DASHBOARD || r == API_ROUTE_LIVE) continue;
        size_t n = strlen(route_names[r]);
        if (len == n && memcmp(path, route_names[r], n) == 0) return (api_route_t)r;
    }
    return API_ROUTE_OTHER;
}

void api_request_metrics_init(api_request_metrics_t *m) {
    metric_counter_set_init(&m->requests, "route", "code");
    for (int r = 0; r < API_ROUTE_COUNT; r++) metric_histogram_init(&m->latency[r], &METRIC_BUCKETS_FAST);
}

void api_request_metrics_free(api_request_metrics_t *m) { metric_counter_set_free(&m->requests); }

void api_request_metrics_observe(api_request_metrics_t *m, const http_request_t *req, int status, uint64_t duration_ns) {
    api_route_t r = api_route_of(req->path, req->path_len);
    char code[12];
    snprintf(code, sizeof code, "%d", status);
    metric_counter_set_add(&m->requests, route_names[r], code, 1);
    metric_histogram_observe_ns(&m->latency[r], duration_ns);
}

int api_request_metrics_write(const api_request_metrics_t *m, buf_t *out) {
    static const char req_name[] = "browserd_api_requests_total", lat_name[] = "browserd_api_request_duration_seconds";
    int rc = metrics_write_family(out, req_name, "counter", "HTTP API requests answered, by route and status code");
    if (rc == 0) rc = metrics_write_counter_set(out, req_name, &m->requests);
    if (rc == 0)
        rc = metrics_write_family(out, lat_name, "histogram",
                                  "HTTP API latency by route: the request complete -> its response queued");
    buf_t label;
    buf_init(&label);
    for (int r = 0; r < API_ROUTE_COUNT && rc == 0; r++) {
        uint64_t n = 0;
        for (size_t b = 0; b <= m->latency[r].buckets.count; b++) n += m->latency[r].counts[b];
        if (n == 0) continue; /* a route never asked for has no series */
        buf_reset(&label);
        rc = metrics_append_label(&label, "route", route_names[r]);
        if (rc == 0) rc = metrics_write_histogram(out, lat_name, label.data, &m->latency[r]);
    }
    buf_free(&label);
    return rc < 0 ? -ENOMEM : 0;
}
