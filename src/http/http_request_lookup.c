/* Lookups in a parsed request: see http_request_lookup.h. */
#include "http/http_request_lookup.h"

#include <string.h>
#include <strings.h>

#include "http/http_request_parser.h"

const http_header_t *http_request_header(const http_request_t *req, const char *name) {
    if (!req || !name) return NULL;
    return http_headers_find(req->headers, req->header_count, name);
}

/* "Bearer <token>": scheme case-insensitive, spaces around either part ignored. Returns
 * false for a missing header, an empty one, another scheme or an empty token. */
bool http_request_bearer(const http_request_t *req, const char **token, size_t *len) {
    const http_header_t *h = http_request_header(req, "authorization");
    if (!h) return false;
    const char *p = h->value, *end = h->value + h->value_len;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (end - p < 6 || strncasecmp(p, "bearer", 6) != 0) return false;
    p += 6;
    if (p < end && *p != ' ' && *p != '\t') return false; /* "Bearerx" is another scheme */
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (p == end) return false;
    *token = p;
    *len = (size_t)(end - p);
    return true;
}
