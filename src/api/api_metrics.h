/* What GET /metrics shows of the HTTP API: requests by route and status code, and their
 * latency by route (the time from a request's arrival at the handler to its response).
 *
 * Threading: loop thread only (the HTTP server reports answered requests there, and the
 * metrics are written there). Ownership: an api_request_metrics_t is embedded in its owner
 * (the api_t) and freed with api_request_metrics_free. */
#ifndef BROWSERD_API_METRICS_H
#define BROWSERD_API_METRICS_H

#include <stdint.h>

#include "core/buf.h"
#include "core/metrics.h"
#include "http/http_server.h"

/* The routes of src/api/openapi.json, and "other" for every path it does not list. The
 * dashboard's five paths (/, /dashboard, /dashboard/, its script and style) are one route,
 * "/dashboard". */
typedef enum {
    API_ROUTE_LIST,
    API_ROUTE_SESSION,
    API_ROUTE_STATS,
    API_ROUTE_DASHBOARD,
    API_ROUTE_HEALTH,
    API_ROUTE_READY,
    API_ROUTE_PRESSURE,
    API_ROUTE_HEALTHZ,
    API_ROUTE_OPENAPI,
    API_ROUTE_METRICS,
    API_ROUTE_LIVE,
    API_ROUTE_OTHER,
    API_ROUTE_COUNT
} api_route_t;

typedef struct {
    metric_counter_set_t requests; /* route, code */
    metric_histogram_t latency[API_ROUTE_COUNT];
} api_request_metrics_t;

/* The route of a request path (not decoded), and its name as the label shows it. */
api_route_t api_route_of(const char *path, size_t len);
const char *api_route_name(api_route_t route);

void api_request_metrics_init(api_request_metrics_t *m);
void api_request_metrics_free(api_request_metrics_t *m);
void api_request_metrics_observe(api_request_metrics_t *m, const http_request_t *req, int status, uint64_t duration_ns);
/* browserd_api_requests_total and browserd_api_request_duration_seconds. 0 or -ENOMEM. */
int api_request_metrics_write(const api_request_metrics_t *m, buf_t *out);

#endif
