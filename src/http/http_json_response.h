/* The JSON answers that every browserd endpoint shares, built on http_respond: the one error
 * shape ({"error": ...}) and a body from a C string. Split from http_server.c (which stays
 * the connection machinery); included by http/http_server.h, so its users see these too.
 * Loop thread, like http_respond. */
#ifndef BROWSERD_HTTP_JSON_RESPONSE_H
#define BROWSERD_HTTP_JSON_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

typedef struct http_conn http_conn_t;

/* The error shape of every browserd endpoint, written in one place: appends
 * {"error":"<message>"} to out, or {"error":"<message>","<key>":"<value>"} when key is not
 * NULL (value: value_len bytes, escaped). 0 or -ENOMEM. */
int http_error_body(buf_t *out, const char *message, const char *key, const char *value, size_t value_len);

/* Responds with http_error_body(message) as the body. */
void http_respond_error(http_conn_t *conn, int status, const char *extra_headers, const char *message,
                        bool close_after);

/* Convenience: a JSON body from a C string (copied). */
void http_respond_json(http_conn_t *conn, int status, const char *extra_headers, const char *json);

#endif
