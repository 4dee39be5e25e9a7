#include "api/api_dashboard.h"

#include <stdlib.h>
#include <string.h>

#include "api/dashboard_app_css.h" /* generated from dashboard/ by the build */
#include "api/dashboard_app_js.h"
#include "api/dashboard_index_html.h"

/* No inline script or style anywhere in the page, so none is allowed: data the page shows can
 * never run, even if it reached the DOM as markup. img-src data: is the empty favicon. */
#define SECURITY_HEADERS                                                                                 \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "                  \
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "                   \
    "frame-ancestors 'none'\r\n"                                                                          \
    "X-Content-Type-Options: nosniff\r\n"                                                                 \
    "X-Frame-Options: DENY\r\n"                                                                           \
    "Referrer-Policy: no-referrer\r\n"                                                                    \
    "Cache-Control: no-cache\r\n"

typedef struct {
    const char *path;
    const unsigned char *bytes;
    size_t len;
    const char *headers;
} asset_t;

#define PAGE_HEADERS "Content-Type: text/html; charset=utf-8\r\n" SECURITY_HEADERS

static const asset_t assets[] = {
    {"/", dashboard_index_html, DASHBOARD_INDEX_HTML_LEN, PAGE_HEADERS},
    {"/dashboard", dashboard_index_html, DASHBOARD_INDEX_HTML_LEN, PAGE_HEADERS},
    {"/dashboard/", dashboard_index_html, DASHBOARD_INDEX_HTML_LEN, PAGE_HEADERS},
    {"/dashboard/app.js", dashboard_app_js, DASHBOARD_APP_JS_LEN,
     "Content-Type: text/javascript; charset=utf-8\r\n" SECURITY_HEADERS},
    {"/dashboard/app.css", dashboard_app_css, DASHBOARD_APP_CSS_LEN,
     "Content-Type: text/css; charset=utf-8\r\n" SECURITY_HEADERS},
};

bool api_dashboard_handle(http_conn_t *conn, const http_request_t *req) {
    const asset_t *a = NULL;
    for (size_t i = 0; i < sizeof assets / sizeof *assets && !a; i++)
        if (strlen(assets[i].path) == req->path_len && memcmp(assets[i].path, req->path, req->path_len) == 0)
            a = &assets[i];
    if (!a) return false;
    if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
        http_respond_error(conn, 405, "Allow: GET, HEAD\r\n", "Method not allowed", false);
        return true;
    }
    /* http_respond takes a body it frees: a copy of the static bytes (tens of KiB). */
    char *body = malloc(a->len);
    if (!body) {
        http_respond(conn, 500, NULL, NULL, 0, true);
        return true;
    }
    memcpy(body, a->bytes, a->len);
    http_respond(conn, 200, a->headers, body, a->len, false);
    return true;
}
