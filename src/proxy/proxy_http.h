/* Socket-free HTTP work of the traffic proxy: finding message heads, reading and rewriting
 * request heads, reading response heads, authorities, our error pages.
 *
 * No I/O, no libuv: the unit tests and the fuzzer call these directly; traffic_proxy.c feeds
 * them what it reads.
 *
 * Why heads are found by hand and then handed to http-parser whole: the proxy must know the
 * exact byte where a head ends (everything before it is rewritten, everything after it is body
 * bytes relayed untouched), and http-parser 2.9 reports the end of the headers from inside a
 * callback without the offset. Scanning for the empty line and then running http-parser over
 * exactly those bytes gives both: http-parser validates the head and sets up the body framing
 * (Content-Length, chunked, none), and the caller keeps feeding the same parser with the body.
 *
 * Ownership: every function writes into caller-owned memory (structs, buf_t); nothing is
 * retained. */
#ifndef BROWSERD_PROXY_HTTP_H
#define BROWSERD_PROXY_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proxy/proxy_guard.h"

/* Length of the head at the start of buf (request/status line + headers + the empty line), or 0
 * while it is incomplete. Accepts CRLF and bare LF line ends, as http-parser does. *scan is the
 * caller's cursor (start at 0) so that a head arriving in pieces is scanned once overall. */
size_t proxy_http_head_end(const char *buf, size_t len, size_t *scan);

/* Reads an authority "host[:port]" (host as proxy_guard_parse_host takes it, "[v6]" included):
 * request targets, Host headers, the upstream proxy's URL. An empty or absent port is
 * default_port; port_required refuses that. Returns 0 or -EINVAL with the reason in err. */
int proxy_http_parse_authority(const char *s, size_t n, uint16_t default_port, bool port_required, proxy_host_t *host,
                               uint16_t *port, char *err, size_t err_cap);

typedef enum {
    PROXY_REWRITE_DIRECT,   /* to the site: origin-form target */
    PROXY_REWRITE_UPSTREAM, /* to an upstream proxy: absolute form kept, our Proxy-Authorization */
} proxy_rewrite_mode_t;

typedef struct {
    bool is_connect;
    bool upgrade;          /* a non-CONNECT request asking for a protocol switch (ws:// WebSocket) */
    bool keep_alive;       /* the browser may send another request on this connection */
    bool complete;         /* no body follows the head */
    bool is_head_method;   /* HEAD: the response carries no body */
    unsigned short http_major, http_minor;
    proxy_host_t host;     /* the target's host, parsed and canonical */
    uint16_t port;
    char authority[300];   /* the target's host[:port] as received (brackets kept) */
    char method[24];
} proxy_request_t;

/* Reads a complete request head (`head`, `len` from proxy_http_head_end) with `hp`, which the
 * caller has initialised with http_parser_init(hp, HTTP_REQUEST); on success hp has consumed the
 * head and is ready for the body bytes (req->complete tells when there are none), its `data`
 * left for the caller to set.
 *
 * Writes into out_head (appended; the caller resets it) the head to send on:
 *   DIRECT, plain request: the request line with the target in origin form, hop-by-hop headers
 *     (Connection, Proxy-Connection, Keep-Alive, Proxy-Authorization, Proxy-Authenticate, TE,
 *     Upgrade, and those named in Connection, never Host or the body framing headers) removed,
 *     a Host added when missing or replaced when it names another authority than the target,
 *     then "Connection: Upgrade" for an upgrade request or "Connection: close" when the browser
 *     will not reuse the connection;
 *   UPSTREAM, plain or CONNECT: the request line unchanged, the same header changes, and
 *     "Proxy-Authorization: <proxy_authorization>" when that is not NULL/"";
 *   DIRECT CONNECT: nothing (the tunnel starts at the proxy).
 * Returns 0, or an HTTP status for the browser (400, 501, 505) with the reason in err. */
int proxy_http_parse_request(http_parser *hp, const char *head, size_t len, proxy_rewrite_mode_t mode,
                             const char *proxy_authorization, proxy_request_t *req, buf_t *out_head, char *err,
                             size_t err_cap);

typedef struct {
    unsigned status;
    bool keep_alive;  /* the site may serve another request on this connection */
    bool complete;    /* no body follows the head (1xx, 204, 304, HEAD, CONNECT 2xx, length 0) */
    bool upgrade;     /* 101 Switching Protocols with Upgrade: the connection becomes a tunnel */
} proxy_response_t;

/* Reads a complete response head with `hp` (caller: http_parser_init(hp, HTTP_RESPONSE)).
 * skip_body: the request was HEAD or a CONNECT (no body follows whatever the headers say).
 * Returns 0, or -1 when the head is not valid HTTP/1.x. hp is then ready for the body. */
int proxy_http_parse_response_head(http_parser *hp, const char *head, size_t len, bool skip_body,
                                   proxy_response_t *resp);

/* Removes, in place, every header line of a head whose name is `name` (compared
 * case-insensitively; the first line, the request or status line, is never one); returns the
 * new length. */
size_t proxy_http_strip_header(char *head, size_t len, const char *name);

/* A complete response of ours: status line, Content-Type text/html, Content-Length,
 * Connection: close, Cache-Control: no-store, X-Browserd-Proxy-Error: <code>, then an HTML page
 * naming the code and the message (escaped). Appends to out; 0 or -ENOMEM. */
int proxy_http_error_response(buf_t *out, int status, const char *code, const char *message);

/* Standard reason phrase for the statuses the proxy writes. */
const char *proxy_http_reason(int status);

/* RFC 4648 base64 of n bytes into out (NUL-terminated); needs 4 * ((n + 2) / 3) + 1 bytes.
 * Returns the length written or -1 when out_cap is too small. */
int proxy_base64(const unsigned char *in, size_t n, char *out, size_t out_cap);

#endif
