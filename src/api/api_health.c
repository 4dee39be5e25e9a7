/* /health, /ready, /pressure (see api_health.h). */
#include "api/api_health.h"

#include <stdio.h>
#include <string.h>

#include "core/timeutil.h"

const char *api_health_not_ready_reason(const api_node_status_t *st) {
    if (st->draining) return "draining";
    if (!st->store_up) return "store_unreachable";
    if (!st->cdp_on) return "no_cdp_endpoint";
    if (st->running >= st->max_sessions && st->queued >= st->max_queue) return "full";
    return NULL;
}

#define NO_STORE "Cache-Control: no-store\r\n"

/* A JSON number with three decimals, or null when unknown. */
static const char *fraction(char *out, size_t cap, double v) {
    if (v < 0) return "null";
    snprintf(out, cap, "%.3f", v);
    return out;
}

bool api_health_handle(api_status_fn status, void *status_ctx, http_conn_t *conn, const http_request_t *req) {
    enum { HEALTH, READY, PRESSURE } route;
    if (strcmp(req->path, "/health") == 0) route = HEALTH;
    else if (strcmp(req->path, "/ready") == 0) route = READY;
    else if (strcmp(req->path, "/pressure") == 0) route = PRESSURE;
    else return false;
    if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
        http_respond_error(conn, 405, "Allow: GET, HEAD\r\n", "Method not allowed", false);
        return true;
    }
    if (route == HEALTH) {
        http_respond_json(conn, 200, NO_STORE, "{\"status\":\"ok\"}");
        return true;
    }
    api_node_status_t st = {.store_up = true, .cpu = -1, .memory = -1};
    if (status) status(status_ctx, &st);
    const char *reason = api_health_not_ready_reason(&st);
    char body[512];
    if (route == READY) {
        if (!reason) {
            http_respond_json(conn, 200, NO_STORE, "{\"status\":\"ready\"}");
            return true;
        }
        snprintf(body, sizeof body, "{\"error\":\"Not ready: %s\",\"reason\":\"%s\"}", reason, reason);
        http_respond_json(conn, 503, NO_STORE, body);
        return true;
    }
    char cpu[32], memory[32];
    snprintf(body, sizeof body,
             "{\"pressure\":{\"date\":%lld,\"running\":%u,\"queued\":%u,\"max_sessions\":%u,\"max_queue\":%u,"
             "\"maxConcurrent\":%u,\"maxQueued\":%u,\"cpu\":%s,\"memory\":%s,\"isAvailable\":%s,\"reason\":\"%s\","
             "\"pool_warm\":%u,\"pool_target\":%u,\"pool_misses\":%llu}}",
             (long long)time_now_ms(), st.running, st.queued, st.max_sessions, st.max_queue, st.max_sessions,
             st.max_queue, fraction(cpu, sizeof cpu, st.cpu), fraction(memory, sizeof memory, st.memory),
             reason ? "false" : "true", reason ? reason : "", st.pool_warm, st.pool_target, st.pool_misses);
    http_respond_json(conn, 200, NO_STORE, body);
    return true;
}
