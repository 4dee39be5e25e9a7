/* /health, /ready, /pressure (see api_health.h). */
#include "api/api_health.h"

#include <string.h>

#include "core/buf.h"
#include "core/timeutil.h"

const char *api_health_not_ready_reason(const api_node_status_t *st) {
    if (st->draining) return "draining";
    if (!st->store_up) return "store_unreachable";
    if (!st->cdp_on) return "no_cdp_endpoint";
    if (st->running >= st->max_sessions && st->queued >= st->max_queue) return "full";
    return NULL;
}

static void respond_buf(http_conn_t *conn, int status, buf_t *b, bool ok) {
    size_t len = 0;
    char *body = ok ? buf_steal(b, &len) : NULL;
    buf_free(b);
    if (body) http_respond(conn, status, "Cache-Control: no-store\r\n", body, len, false);
    else http_respond(conn, 500, NULL, NULL, 0, true);
}

/* A JSON number with three decimals, or null when unknown. */
static int put_fraction(buf_t *b, double v) { return v < 0 ? buf_printf(b, "null") : buf_printf(b, "%.3f", v); }

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
    buf_t b;
    buf_init(&b);
    if (route == HEALTH) {
        respond_buf(conn, 200, &b, buf_printf(&b, "{\"status\":\"ok\"}") >= 0);
        return true;
    }
    api_node_status_t st = {.store_up = true, .cpu = -1, .memory = -1};
    if (status) status(status_ctx, &st);
    const char *reason = api_health_not_ready_reason(&st);
    if (route == READY) {
        int rc = reason ? buf_printf(&b, "{\"error\":\"Not ready: %s\",\"reason\":\"%s\"}", reason, reason)
                        : buf_printf(&b, "{\"status\":\"ready\"}");
        respond_buf(conn, reason ? 503 : 200, &b, rc >= 0);
        return true;
    }
    bool ok = buf_printf(&b,
                         "{\"pressure\":{\"date\":%lld,\"running\":%u,\"queued\":%u,\"max_sessions\":%u,"
                         "\"max_queue\":%u,\"maxConcurrent\":%u,\"maxQueued\":%u,\"cpu\":",
                         (long long)time_now_ms(), st.running, st.queued, st.max_sessions, st.max_queue,
                         st.max_sessions, st.max_queue) >= 0 &&
              put_fraction(&b, st.cpu) >= 0 && buf_printf(&b, ",\"memory\":") >= 0 &&
              put_fraction(&b, st.memory) >= 0 &&
              buf_printf(&b, ",\"isAvailable\":%s,\"reason\":\"%s\"}}", reason ? "false" : "true",
                         reason ? reason : "") >= 0;
    respond_buf(conn, 200, &b, ok);
    return true;
}
