/* The REST API: GET /healthz, GET /openapi.json (api_openapi.h), the dashboard's files
 * (api_dashboard.h), GET /browser_sessions, GET /browser_sessions/stats,
 * GET|DELETE /browser_sessions/{id}.
 *
 * api_handle runs on the loop thread; it answers what needs no database there (health,
 * missing credentials) and sends everything else to a worker thread (key check, catalog
 * sync, query, JSON), then responds from the loop. The store and catalog are borrowed:
 * they must outlive the api_t and every request in flight (api_free waits for none: stop
 * the HTTP server first, which waits for responses in flight). */
#ifndef BROWSERD_API_API_H
#define BROWSERD_API_API_H

#include <stdint.h>
#include <uv.h>

#include "api/api_health.h"
#include "api/api_metrics.h"
#include "catalog/catalog.h"
#include "http/http_server.h"
#include "net/failure_limit.h"
#include "store/store.h"

typedef struct api api_t;

/* How a DELETE's end_session turned out: 0 the session ran and is ending (204); -EALREADY
 * or -ENOENT it does not run (409); -EIO or -ETIMEDOUT the database or the node that runs it
 * could not be reached (503). Called on the loop thread, once, possibly from inside
 * end_session. */
typedef void (*api_end_done_fn)(void *done_arg, int rc);

/* Ends the running session `id` (16 bytes) of this customer, wherever it runs, for a DELETE
 * of it, and calls done(done_arg, rc) when that is known. Called on the loop thread, which
 * owns this process's running sessions; the strings are borrowed for the call. */
typedef void (*api_end_session_fn)(void *ctx, const char *customer_id, const uint8_t id[16], api_end_done_fn done,
                                   void *done_arg);

/* A live view URL (Page.inspect's, docs/liveview.md) of the running session `id` of this
 * customer, when it runs in this process: 0 with url filled, -ENOENT (not running here),
 * -ENOTSUP (--live-view off), or another negative errno (no page, too many views). Loop thread;
 * the strings are borrowed for the call. */
typedef int (*api_live_url_fn)(void *ctx, const char *customer_id, const uint8_t id[16], bool input, char *url,
                               size_t cap);

typedef struct {
    uv_loop_t *loop;
    store_t *store;
    catalog_t *catalog;
    /* NULL when no session runs in this process (no CDP endpoint): every DELETE of a known
     * session is then a 409. The ctx is borrowed and passed to every call. */
    api_end_session_fn end_session;
    void *end_session_ctx;
    /* The node's state for /ready and /pressure (NULL: ready, nothing known). Borrowed ctx. */
    api_status_fn status;
    void *status_ctx;
    /* Who answers GET /metrics on this listener (NULL: nobody, /metrics is an unknown path).
     * Called on the loop thread, before any key check, for every method. Borrowed ctx. */
    http_handler_fn metrics;
    void *metrics_ctx;
    /* Failed key checks per source address (NULL: no limit); borrowed, shared with the CDP
     * listener. An address over it gets 429 with Retry-After before its key is looked at. */
    failure_limit_t *auth_limit;
    /* POST /browser_sessions/{id}/live (the dashboard's link); NULL: every such POST is a 409. */
    api_live_url_fn live_url;
    void *live_url_ctx;
} api_config_t;

/* The config is copied (the pointers in it stay borrowed). 0 or -ENOMEM. */
int api_new(const api_config_t *cfg, api_t **out);
void api_free(api_t *api);

/* The http_handler_fn of the API listener; ctx is the api_t. */
void api_handle(void *ctx, http_conn_t *conn, const http_request_t *req);

/* The on_answered hook of http_server_config_t for the listeners whose requests the API's
 * metrics count (ctx: the api_t). Loop thread. */
void api_observe(void *ctx, const http_request_t *req, int status, uint64_t duration_ns);
/* GET /metrics: the API's request counters and latency histograms. Loop thread. 0 or -ENOMEM. */
int api_metrics_write(const api_t *api, buf_t *out);

#endif
