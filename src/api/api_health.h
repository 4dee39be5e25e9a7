/* The routes for load balancers and orchestrators, answered without a key and without the
 * store: GET /health (the process answers), GET /ready (it accepts sessions now) and
 * GET /pressure (load and limits, in JSON, the shape browserless's /pressure has).
 *
 * /ready is 200 {"status":"ready"} or 503 {"error":"Not ready: REASON","reason":REASON}:
 * "draining" (SIGTERM came), "store_unreachable" (the node's last attempt at the database
 * failed), "no_cdp_endpoint" (--cdp-listen off), "full" (every session slot and the whole
 * queue are taken: a new client would be refused). src/api/openapi.json describes all three.
 *
 * Threading: loop thread. Ownership: the status comes from the daemon, through the
 * callback, at every request; nothing is kept. */
#ifndef BROWSERD_API_HEALTH_H
#define BROWSERD_API_HEALTH_H

#include <stdbool.h>

#include "http/http_server.h"

typedef struct {
    bool cdp_on;             /* the node has a CDP endpoint */
    unsigned running, queued, max_sessions, max_queue;
    bool draining;
    bool store_up;
    double cpu;              /* the machine's 1-minute load average per core; < 0 unknown */
    double memory;           /* the machine's memory in use (0..1); < 0 unknown */
    unsigned pool_warm, pool_target; /* warm browsers ready now; wanted now */
    unsigned long long pool_misses;  /* sessions that found no warm browser */
} api_node_status_t;

typedef void (*api_status_fn)(void *ctx, api_node_status_t *out);

/* The reason the node is not ready, or NULL when it is. */
const char *api_health_not_ready_reason(const api_node_status_t *st);

/* Answers the request when it is one of the three routes (true), else false. */
bool api_health_handle(api_status_fn status, void *status_ctx, http_conn_t *conn, const http_request_t *req);

#endif
