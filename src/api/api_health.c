/* /health, /ready, /pressure (see api_health.h). */
#include "api/api_health.h"

#include <string.h>

#include "core/buf.h"
#include "core/timeutil.h"

const char *api_health_not_ready_reason(const api_node_status_t *st) {
    if (st->draining) return "draining";
    if (!st->store_up) return "store_unreachable";
    if (!st->cdp_on) return "cdp_off";
    if (st->running >= st->max_sessions) return "at_capacity";
    return NULL;
}

static const char *reason_message(const char *reason) {
    if (!reason) return "";
    if (strcmp(reason, "draining") == 0) return "browserd is draining: it takes no new sessions";
    if (strcmp(reason, "store_unreachable") == 0) return "the database cannot be reached";
    if (strcmp(reason, "cdp_off") == 0) return "this node has no CDP endpoint";
    return "every session slot is taken: a new client would wait in the queue";
}

static void respond_buf(http_conn_t *conn, int status, buf_t *b, bool ok) {
    size_t len = 0;
    char *body = ok ? buf_steal(b, &len) : NULL;
    buf_free(b);
    if (body) http_respond(conn, status, "Cache-Control: no-store\r\n", body, len, false);
    else http_respond(conn, 500, NULL, NULL, 0, true);
}

/* A fraction as browserless reports it: a whole percentage; -1 when unknown. */
static int percent(double f) { return f < 0 ? -1 : (int)(f * 100.0 + 0.5); }

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
        int rc = reason ? buf_printf(&b, "{\"ready\":false,\"reason\":\"%s\",\"message\":\"%s\"}", reason,
                                     reason_message(reason))
                        : buf_printf(&b, "{\"ready\":true}");
        respond_buf(conn, reason ? 503 : 200, &b, rc >= 0);
        return true;
    }
    int rc = buf_printf(&b,
                        "{\"date\":%lld,\"isAvailable\":%s,\"reason\":%s%s%s,\"message\":\"%s\",\"running\":%u,"
                        "\"queued\":%u,\"maxConcurrent\":%u,\"poolSize\":%u,\"poolReady\":%u,\"cpu\":%d,"
                        "\"memory\":%d,\"draining\":%s,\"storeUp\":%s}",
                        (long long)time_now_ms(), reason ? "false" : "true", reason ? "\"" : "",
                        reason ? reason : "null", reason ? "\"" : "", reason_message(reason), st.running, st.queued,
                        st.max_sessions, st.pool_size, st.pool_ready, percent(st.cpu), percent(st.memory),
                        st.draining ? "true" : "false", st.store_up ? "true" : "false");
    respond_buf(conn, 200, &b, rc >= 0);
    return true;
}
