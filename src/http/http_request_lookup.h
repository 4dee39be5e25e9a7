/* Lookups in a request the server parsed (http_request_t, http_server.h, which includes this).
 * Pure functions; the results point into the request. */
#ifndef BROWSERD_HTTP_HTTP_REQUEST_LOOKUP_H
#define BROWSERD_HTTP_HTTP_REQUEST_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http_server.h"

/* Case-insensitive header lookup; the first match, or NULL. */
const http_header_t *http_request_header(const http_request_t *req, const char *name);
/* The token of "Authorization: Bearer <token>" (scheme case-insensitive, spaces around either
 * part ignored), pointing into the request. False for a missing header, an empty one, another
 * scheme or an empty token. */
bool http_request_bearer(const http_request_t *req, const char **token, size_t *len);

#endif
