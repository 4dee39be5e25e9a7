/* HTTP/1.1 server on libuv, with Debian's http-parser behind it.
 *
 * What it guarantees: keep-alive and pipelining (requests on one connection are handed to
 * the handler one at a time, and responses go out in request order); a limit on the size
 * of the request line + headers (431 and close); a limit on the body (413 and close);
 * malformed requests get 400 and the connection is closed; a timeout for a client that is
 * idle between requests or too slow to send one (the connection is closed); graceful stop.
 *
 * Threading: everything here runs on the loop thread. A handler may answer later (after
 * work on a worker thread): the request and its connection stay valid until it calls
 * http_respond, even if the client goes away meanwhile (the response is then dropped).
 *
 * Ownership: http_request_t and the strings it points to are owned by the connection and
 * valid until http_respond is called for that request.
 *
 * Upgrades (WebSocket): a request with "Connection: upgrade" + "Upgrade" arrives with
 * `upgrade` set; the handler either answers it with http_respond (a refused upgrade) or takes
 * the socket over with http_conn_take_over (see there). */
#ifndef BROWSERD_HTTP_SERVER_H
#define BROWSERD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

typedef struct http_conn http_conn_t;
typedef struct http_server http_server_t;

typedef enum { HTTP_M_GET, HTTP_M_HEAD, HTTP_M_POST, HTTP_M_PUT, HTTP_M_DELETE, HTTP_M_PATCH,
               HTTP_M_OPTIONS, HTTP_M_OTHER } http_method_t;

typedef struct {
    const char *name;  /* as received; compare case-insensitively */
    size_t name_len;
    const char *value; /* leading/trailing spaces removed */
    size_t value_len;
} http_header_t;

typedef struct {
    http_method_t method;
    const char *method_name;      /* "GET", ... (for logs) */
    const char *path;             /* the request target's path, not decoded, NUL-terminated */
    size_t path_len;
    const char *query;            /* after '?', not decoded, NUL-terminated; NULL when absent */
    size_t query_len;
    const http_header_t *headers;
    size_t header_count;
    const char *body;             /* always NUL-terminated; "" when there is none */
    size_t body_len;
    bool keep_alive;              /* the client wants the connection kept open */
    bool upgrade;                 /* a "Connection: upgrade" request (WebSocket) */
} http_request_t;


typedef void (*http_handler_fn)(void *ctx, http_conn_t *conn, const http_request_t *req);

typedef struct {
    const char *host;            /* "127.0.0.1", "::1", "0.0.0.0" */
    /* Or serve a socket that is bound and listening already (one made in another network
     * namespace): host and port are then not used. The descriptor moves to the server, also
     * when the start fails. */
    bool adopt_listener;
    int listener_fd;
    int port;                    /* 0 = any free port (see http_server_port) */
    size_t max_header_bytes;     /* request line + headers; default 16 KiB; over it: 431 */
    size_t max_body_bytes;       /* default 1 MiB; over it: 413 */
    uint64_t idle_timeout_ms;    /* default 60 s: no complete request for this long -> close */
    uint64_t request_timeout_ms; /* default 10 s: a started request not complete -> 408 close */
    unsigned max_connections;    /* default 10000; at the limit a new connection takes the place
                                    of the longest-idle one, or is closed at accept when none is */
    const char *name;            /* in the log line of each request (server=NAME); default "http" */
    /* Optional: a path prefix (such as "/live/") whose next segment is a secret (a capability
     * token): the log shows "[redacted]" in its place. NULL: none. */
    const char *secret_path_prefix;
    /* Optional: called for every request the handler answered, as its response is queued:
     * the request (valid during the call), the status, and the time since the request was
     * handed to the handler. Loop thread. For metrics. */
    void (*on_answered)(void *ctx, const http_request_t *req, int status, uint64_t duration_ns);
    void *on_answered_ctx;
} http_server_config_t;

/* Fills the defaults listed above (host and port are left to the caller). A field left 0 in
 * the config given to http_server_start also means its default. */
void http_server_config_defaults(http_server_config_t *cfg);

/* Binds and listens, and sets SIGPIPE to ignored (process-wide: libuv writes with writev, and
 * a peer that went away must not kill the daemon). `host` must be a numeric IPv4/IPv6
 * address. Returns 0 or a negative libuv error (e.g. UV_EADDRINUSE); on a bind/listen failure
 * the listener handle is closed and freed by the loop, so run the loop before closing it. */
int http_server_start(uv_loop_t *loop, const http_server_config_t *cfg, http_handler_fn handler, void *ctx,
                      http_server_t **out);
/* The port actually bound. */
int http_server_port(const http_server_t *srv);

/* A snapshot for metrics and tests. Loop thread only. */
typedef struct {
    size_t connections;          /* accepted and not yet freed (includes those awaiting a handler) */
    size_t requests_in_flight;   /* handed to the handler, not yet answered */
    size_t reads_paused;         /* connections not read for backpressure (input or output backlog) */
    size_t buffered_input_bytes; /* read from clients, not yet parsed */
    size_t queued_output_bytes;  /* responses not yet taken by the kernel */
    uint64_t idle_evicted;       /* idle connections closed to make room at max_connections */
} http_server_stats_t;

void http_server_get_stats(const http_server_t *srv, http_server_stats_t *out);

/* Stops accepting, lets requests in progress finish and their responses flush, closes idle
 * connections, then calls on_stopped (from the loop) and frees the server. */
void http_server_stop(http_server_t *srv, void (*on_stopped)(void *arg), void *arg);

/* Sends the response for the connection's current request. `body` ownership moves to the
 * server (it is free()d; NULL with len 0 for no body). `extra_headers` is borrowed: zero or
 * more complete "Name: value\r\n" lines, or NULL. Content-Type: application/json (unless
 * extra_headers has a Content-Type line of its own) and Content-Length are always written, except on 1xx, 204 and 304 (RFC 9110 forbids them there;
 * any body is dropped); for HEAD the body is not sent. `close_after` forces
 * "Connection: close". Must be called exactly once per request, on the loop thread. */
void http_respond(http_conn_t *conn, int status, const char *extra_headers, char *body, size_t len,
                  bool close_after);

/* The client's address (for limits per source address): 0 or a negative libuv error. */
int http_conn_peer(const http_conn_t *conn, struct sockaddr_storage *out);

/* Takes the connection's socket over instead of responding (a WebSocket upgrade): called once,
 * in place of http_respond, for the current request. The caller gets its own descriptor of
 * the socket (close-on-exec, for uv_tcp_open; the caller closes it) and the bytes already read
 * after the request (malloc'ed, may hold the first WebSocket frames; NULL when none). The
 * server forgets the connection: it no longer times it out, and stop no longer waits for it.
 * Nothing is written: the caller sends the 101 response itself. Returns 0, or -ENOTCONN when
 * the client went away meanwhile, or another negative errno (then *fd_out is -1). */
int http_conn_take_over(http_conn_t *conn, int *fd_out, char **rest, size_t *rest_len);

/* The JSON answers every endpoint shares (http_error_body, http_respond_error,
 * http_respond_json): http/http_json_response.h, included here. */

/* Standard reason phrase ("OK", "Not Found", ...). */
const char *http_status_reason(int status);

#include "http/http_json_response.h"
#include "http/http_request_lookup.h"

#endif
