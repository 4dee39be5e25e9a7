#include "api/api_openapi.h"

#include <stdlib.h>
#include <string.h>

#include "api/openapi_json.h" /* generated from openapi.json by the build */

const unsigned char *api_openapi_document(size_t *len) {
    *len = OPENAPI_JSON_LEN;
    return openapi_json;
}

bool api_openapi_handle(http_conn_t *conn, const http_request_t *req) {
    if (req->path_len != sizeof API_OPENAPI_PATH - 1 || memcmp(req->path, API_OPENAPI_PATH, req->path_len) != 0)
        return false;
    if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
        http_respond_error(conn, 405, "Allow: GET, HEAD\r\n", "Method not allowed", false);
        return true;
    }
    /* http_respond takes a body it may free: a copy of the static bytes (50 KiB, rarely asked). */
    char *body = malloc(OPENAPI_JSON_LEN);
    if (!body) {
        http_respond(conn, 500, NULL, NULL, 0, true);
        return true;
    }
    memcpy(body, openapi_json, OPENAPI_JSON_LEN);
    http_respond(conn, 200, NULL, body, OPENAPI_JSON_LEN, false);
    return true;
}
