/* The dashboard (docs/dashboard.md): GET / and /dashboard serve its page, /dashboard/app.js
 * and /dashboard/app.css its script and style, all three built into the binary from
 * src/api/dashboard/ (scripts/embed_file.py at build time) and served without a key: the page
 * asks for one and sends it to the API itself. Every answer carries a strict
 * Content-Security-Policy (scripts and styles from this origin only, no inline code, requests
 * to this origin only) and X-Content-Type-Options: nosniff. Loop thread only. */
#ifndef BROWSERD_API_API_DASHBOARD_H
#define BROWSERD_API_API_DASHBOARD_H

#include <stdbool.h>

#include "http/http_server.h"

/* Answers the request when its path is one of the dashboard's (200 for GET and HEAD, 405
 * with Allow otherwise) and returns true; returns false, having done nothing, for any other
 * path. */
bool api_dashboard_handle(http_conn_t *conn, const http_request_t *req);

#endif
