/* GET /openapi.json: the OpenAPI 3.1 description of the API (src/api/openapi.json), built
 * into the binary byte for byte (scripts/embed_file.py at build time) and served without a
 * key. Loop thread only. */
#ifndef BROWSERD_API_OPENAPI_H
#define BROWSERD_API_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http_server.h"

#define API_OPENAPI_PATH "/openapi.json"

/* Answers the request when its path is /openapi.json (200 with the document for GET and
 * HEAD, 405 otherwise) and returns true; returns false, having done nothing, for any other
 * path. */
bool api_openapi_handle(http_conn_t *conn, const http_request_t *req);

/* The document's bytes (not NUL-terminated; static, never freed) and their number. */
const unsigned char *api_openapi_document(size_t *len);

#endif
