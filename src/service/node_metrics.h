/* GET /metrics: everything the node shows Prometheus, gathered from the parts that count it
 * (the gateway, the API, the store, the spool, the catalog, /proc) and written in the text
 * exposition format. docs/operations.md lists every metric.
 *
 * A scrape: the token checked and the loop-owned parts written on the loop thread (the
 * gateway, the API, the HTTP servers: counters kept there, a few microseconds), the rest on a
 * worker thread (the spool's lock, /proc/self), the answer sent from the loop. The browsers'
 * memory and the number of open descriptors are not read at a scrape: a walk of /proc over
 * hundreds of browsers (or of /proc/self/fd with thousands of sockets) takes longer than a
 * scrape may, so a worker samples them every few seconds (more seldom when a walk is slow) and
 * a scrape shows the last sample with its age.
 *
 * Threading: loop thread, but for the work functions. Ownership: every pointer in the config
 * is borrowed and must outlive the node_metrics_t; the token is copied. */
#ifndef BROWSERD_SERVICE_NODE_METRICS_H
#define BROWSERD_SERVICE_NODE_METRICS_H

#include <stdint.h>
#include <uv.h>

#include "api/api.h"
#include "catalog/catalog.h"
#include "cdp/gateway.h"
#include "http/http_server.h"
#include "store/store.h"
#include "store/store_spool.h"
#include "webhook/webhook_dispatch.h"

typedef struct node_metrics node_metrics_t;

typedef struct {
    uv_loop_t *loop;
    const char *token;      /* NULL or "": no token needed */
    const char *version;    /* for browserd_build_info */
    gateway_t *gateway;     /* NULL: no CDP endpoint */
    store_t *store;
    store_spool_t *spool;   /* may be NULL */
    catalog_t *catalog;
    api_status_fn status;   /* ready, draining, the store, the machine's load */
    void *status_ctx;
    uint64_t sample_ms;     /* the browsers' memory, at least this often (0: 10 s) */
    const webhook_dispatch_t *webhooks; /* may be NULL */
} node_metrics_config_t;

/* 0, or -ENOMEM. Starts the sampler (its timer does not keep the loop alive). */
int node_metrics_new(const node_metrics_config_t *cfg, node_metrics_t **out);
/* The API and its listeners, once they exist (any may be NULL): the API's request metrics
 * and each listener's connections. */
void node_metrics_attach(node_metrics_t *m, const api_t *api, const http_server_t *api_server,
                         const http_server_t *metrics_server);
/* Stops the sampler; done(arg) from the loop once no sample and no scrape is in flight
 * (scrapes still answered before that are answered). Then node_metrics_free. */
void node_metrics_stop(node_metrics_t *m, void (*done)(void *arg), void *arg);
void node_metrics_free(node_metrics_t *m);

/* The http_handler_fn of /metrics (ctx: the node_metrics_t): on the API listener through
 * api_config_t.metrics, or as the whole handler of a listener of its own, where every other
 * path is 404. GET and HEAD; with a token, 401 {"error":"Invalid credentials"} without it. */
void node_metrics_handle(void *ctx, http_conn_t *conn, const http_request_t *req);

/* The Content-Type of the text format, version 0.0.4. */
#define NODE_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
