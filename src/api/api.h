/* The REST API: GET /healthz, GET /browser_sessions, GET|DELETE /browser_sessions/{id}.
 *
 * api_handle runs on the loop thread; it answers what needs no database there (health,
 * missing credentials) and sends everything else to a worker thread (key check, catalog
 * sync, query, JSON), then responds from the loop. The store and catalog are borrowed:
 * they must outlive the api_t and every request in flight (api_free waits for none: stop
 * the HTTP server first, which waits for responses in flight). */
#ifndef BROWSERD_API_API_H
#define BROWSERD_API_API_H

#include <uv.h>

#include "catalog/catalog.h"
#include "cdp/gateway.h"
#include "http/http_server.h"
#include "store/store.h"

typedef struct api api_t;

typedef struct {
    uv_loop_t *loop;
    store_t *store;
    catalog_t *catalog;
    gateway_t *gateway; /* may be NULL (no CDP endpoint): no session runs here then */
} api_config_t;

int api_new(const api_config_t *cfg, api_t **out);
void api_free(api_t *api);

/* The http_handler_fn of the API listener; ctx is the api_t. */
void api_handle(void *ctx, http_conn_t *conn, const http_request_t *req);

#endif
