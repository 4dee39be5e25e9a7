#include "http/http_json_response.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_server.h"
#include "json/jsonw.h"

int http_error_body(buf_t *out, const char *message, const char *key, const char *value, size_t value_len) {
    jsonw_t w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "error");
    jsonw_string(&w, message);
    if (key) {
        jsonw_key(&w, key);
        jsonw_string_n(&w, value, value_len);
    }
    jsonw_object_end(&w);
    return jsonw_failed(&w) ? -ENOMEM : 0;
}

void http_respond_error(http_conn_t *c, int status, const char *extra_headers, const char *message,
                        bool close_after) {
    buf_t b;
    buf_init(&b);
    size_t len = 0;
    char *body = http_error_body(&b, message, NULL, NULL, 0) < 0 ? NULL : buf_steal(&b, &len);
    if (!body) {
        buf_free(&b);
        http_respond(c, 500, NULL, NULL, 0, true);
        return;
    }
    http_respond(c, status, extra_headers, body, len, close_after);
}

void http_respond_json(http_conn_t *c, int status, const char *extra_headers, const char *json) {
    size_t len = json ? strlen(json) : 0;
    char *body = json ? strdup(json) : NULL;
    if (json && !body) {
        status = 500;
        len = 0;
    }
    http_respond(c, status, extra_headers, body, len, false);
}
