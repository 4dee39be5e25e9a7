/* What goes through the traffic proxy: the request side (browser -> upstream) and the response
 * side (upstream -> browser) of each exchange, CONNECT tunnels, keep-alive, the writes and their
 * byte counts, our error pages. See proxy_internal.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proxy/proxy_guard.h"
#include "proxy/proxy_http.h"
#include "proxy/proxy_internal.h"

static const char connect_established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

typedef enum { W_RELAY, W_TUNNEL, W_GENERATED } wkind_t;

typedef struct {
    uv_write_t req;
    conn_t *conn;
    upstream_t *up;    /* NULL: a write to the browser */
    chunk_t *chunk;    /* referenced, or NULL */
    char *owned;       /* malloc'd bytes, or NULL */
    size_t len;
    size_t payload;
    wkind_t kind;
} wreq_t;

/* ---- writing ----------------------------------------------------------------------------------- */

static void count_write(traffic_proxy_t *p, const wreq_t *w) {
    if (w->up) {
        p->counts.to_upstream_bytes += w->len;
        if (p->cfg.totals) p->cfg.totals->to_upstream_bytes += w->len;
        return;
    }
    p->counts.to_browser_bytes += w->len;
    if (p->cfg.totals) p->cfg.totals->to_browser_bytes += w->len;
    p->counts.payload_bytes += w->payload;
    if (w->kind == W_TUNNEL) p->counts.tunnel_bytes += w->len;
    if (w->kind == W_GENERATED) p->counts.generated_bytes += w->len;
}

static void wreq_free(wreq_t *w) {
    proxy_chunk_unref(w->chunk);
    free(w->owned);
    free(w);
}

static void on_write_done(uv_write_t *req, int status) {
    wreq_t *w = (wreq_t *)req;
    conn_t *c = w->conn;
    upstream_t *u = w->up;
    if (status == 0) count_write(c->proxy, w);
    if (u) {
        u->writes--;
        if (w->kind != W_GENERATED) u->pending -= w->len;
    } else {
        c->writes--;
        if (w->kind != W_GENERATED) c->pending -= w->len;
    }
    wreq_free(w);
    if (c->life == CONN_CLOSED || (u && u->closing)) return;
    c->last_activity = proxy_now(c);
    if (status < 0) {
        if (u) proxy_exchange_upstream_ended(c, status);
        else proxy_conn_close(c, false); /* the browser went away */
        return;
    }
    if (!u && c->life == CONN_FINISHING && c->writes == 0) {
        proxy_conn_shutdown_browser(c);
        return;
    }
    if (c->req_state == REQ_TUNNEL) proxy_conn_check_tunnel_done(c);
    if (c->life == CONN_OPEN) proxy_conn_update(c);
}

/* Queues bytes for the browser (u == NULL) or the upstream. The bytes live in `chunk` (a
 * reference is taken) or in `owned` (ownership moves here; freed in every case). Returns 0 or a
 * libuv error; the caller then closes the connection. */
static int queue_write(conn_t *c, upstream_t *u, chunk_t *chunk, const char *data, size_t len, char *owned,
                       size_t payload, wkind_t kind) {
    if (len == 0) {
        free(owned);
        return 0;
    }
    wreq_t *w = malloc(sizeof *w);
    if (!w) {
        free(owned);
        return UV_ENOMEM;
    }
    w->conn = c;
    w->up = u;
    w->chunk = chunk;
    if (chunk) chunk->refs++;
    w->owned = owned;
    w->len = len;
    w->payload = payload;
    w->kind = kind;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    uv_stream_t *s = u ? (uv_stream_t *)&u->tcp : (uv_stream_t *)&c->tcp;
    int rc = uv_write(&w->req, s, &b, 1, on_write_done);
    if (rc < 0) {
        wreq_free(w);
        return rc;
    }
    if (u) {
        u->writes++;
        if (kind != W_GENERATED) u->pending += len;
    } else {
        c->writes++;
        if (kind != W_GENERATED) c->pending += len;
    }
    return 0;
}

/* Copies `data` into a write of its own. */
static int queue_copy(conn_t *c, upstream_t *u, const char *data, size_t len, wkind_t kind) {
    char *copy = malloc(len ? len : 1);
    if (!copy) return UV_ENOMEM;
    memcpy(copy, data, len);
    return queue_write(c, u, NULL, copy, len, copy, 0, kind);
}

/* ---- our error pages --------------------------------------------------------------------------- */

void proxy_exchange_send_error(conn_t *c, int status, const char *code, const char *fmt, ...) {
    if (c->life != CONN_OPEN) return;
    traffic_proxy_t *p = c->proxy;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status == 403) p->counts.refused_requests++;
    if (status == 502 || status == 504) p->counts.failed_requests++;
    proxy_log_event(p, status == 403 ? "refused" : "error", c->req.authority, code);
    proxy_upstream_abandon_resolve(c);
    proxy_upstream_close(c, false);
    buf_t b;
    buf_init(&b);
    if (proxy_http_error_response(&b, status, code, msg) < 0) {
        buf_free(&b);
        proxy_conn_close(c, true);
        return;
    }
    size_t len;
    char *data = buf_steal(&b, &len);
    if (queue_write(c, NULL, NULL, data, len, data, 0, W_GENERATED) < 0) {
        proxy_conn_close(c, true);
        return;
    }
    proxy_conn_finish(c);
}

/* ---- input bookkeeping ------------------------------------------------------------------------- */

static void browser_consume(conn_t *c, size_t n) {
    c->in_off += n;
    c->in_len -= n;
    if (c->in_len == 0) {
        proxy_chunk_unref(c->in);
        c->in = NULL;
        c->in_off = 0;
    }
}

static void up_consume(upstream_t *u, size_t n) {
    u->in_off += n;
    u->in_len -= n;
    if (u->in_len == 0) {
        proxy_chunk_unref(u->in);
        u->in = NULL;
        u->in_off = 0;
    }
}

/* Appends input to a head buffer until the head is complete. Returns the head length when
 * complete, 0 when more is needed, -1 when the head passed the limit. *consumed says how many
 * input bytes went into the head. */
static long collect_head(buf_t *head, size_t *scan, const char *data, size_t n, size_t max, size_t *consumed) {
    size_t old = head->len;
    size_t room = max > old ? max - old : 0;
    size_t take = n < room ? n : room;
    *consumed = 0;
    if (take == 0) return -1;
    if (buf_append(head, data, take) < 0) return -1;
    size_t end = proxy_http_head_end(head->data, head->len, scan);
    if (end) {
        *consumed = end - old;
        head->len = end;
        head->data[end] = '\0';
        return (long)end;
    }
    *consumed = take;
    return head->len >= max ? -1 : 0;
}

/* ---- body parsers' callbacks ------------------------------------------------------------------- */

static int on_body_bytes(http_parser *hp, const char *at, size_t n) {
    (void)at;
    conn_t *c = hp->data;
    c->payload_acc += n;
    return 0;
}

static int on_body_message_complete(http_parser *hp) {
    conn_t *c = hp->data;
    c->msg_done = true;
    http_parser_pause(hp, 1); /* the bytes after it belong to the next message */
    return 0;
}

static const http_parser_settings body_settings = {
    .on_body = on_body_bytes,
    .on_message_complete = on_body_message_complete,
};

/* Runs a body parser over data; returns the bytes that belong to the current message, or -1 on
 * a framing error. */
static long run_body(conn_t *c, http_parser *hp, const char *data, size_t n) {
    hp->data = c;
    c->payload_acc = 0;
    c->msg_done = false;
    size_t used = http_parser_execute(hp, &body_settings, data, n);
    enum http_errno e = HTTP_PARSER_ERRNO(hp);
    if (e == HPE_PAUSED) http_parser_pause(hp, 0);
    else if (e != HPE_OK) return -1;
    return (long)used;
}

/* ---- the request side -------------------------------------------------------------------------- */

static void target_key(const conn_t *c, char *key, size_t cap) {
    /* The generation changes with the upstream (traffic_proxy_set_upstream): a connection kept
     * to an earlier upstream is never reused with the new one's credentials. */
    if (c->via_proxy) snprintf(key, cap, "upstream proxy #%u", c->proxy->upstream_generation);
    else snprintf(key, cap, "%s:%u", c->req.host.name, c->req.port);
}

/* The guard on a literal address or a localhost name in the target, before anything is
 * resolved. Names are checked again after resolution (direct mode). Returns false when it has
 * answered 403. */
static bool guard_literal(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    if (!p->guard.enabled) return true;
    const proxy_host_t *h = &c->req.host;
    proxy_addr_class_t cls;
    if (h->kind == PROXY_HOST_IPV4 || h->kind == PROXY_HOST_IPV6) {
        if (proxy_guard_check_raw(&p->guard, h->kind == PROXY_HOST_IPV4 ? AF_INET : AF_INET6, h->addr, &cls))
            return true;
        proxy_exchange_send_error(c, 403, "ERR_BLOCKED_PRIVATE_NETWORK",
                                  "%s is an address of the class '%s'; this session may not reach private networks.",
                                  h->name, proxy_addr_class_name(cls));
        return false;
    }
    if (h->kind == PROXY_HOST_NAME && h->localhost && p->has_upstream) {
        /* An upstream proxy would resolve it on its own host: refuse unless loopback is open. */
        static const uint8_t lo[4] = {127, 0, 0, 1};
        if (proxy_guard_check_raw(&p->guard, AF_INET, lo, &cls)) return true;
        proxy_exchange_send_error(c, 403, "ERR_BLOCKED_PRIVATE_NETWORK",
                                  "%s names this machine (loopback); this session may not reach it.", h->name);
        return false;
    }
    return true;
}

static void on_request_head(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    char err[256] = "";
    http_parser_init(&c->req_parser, HTTP_REQUEST);
    buf_reset(&c->out_head);
    c->via_proxy = p->has_upstream;
    int status = proxy_http_parse_request(&c->req_parser, c->head.data, c->head.len,
                                          c->via_proxy ? PROXY_REWRITE_UPSTREAM : PROXY_REWRITE_DIRECT,
                                          p->upstream.authorization, &c->req, &c->out_head, err, sizeof err);
    p->counts.requests++;
    buf_reset(&c->head);
    c->head_scan = 0;
    c->final_head_sent = false;
    c->retry_ok = false;
    if (status) {
        proxy_exchange_send_error(c, status, status == 505 ? "ERR_HTTP_VERSION_NOT_SUPPORTED" : "ERR_INVALID_REQUEST",
                                  "%s", err);
        return;
    }
    if (!guard_literal(c)) return;
    target_key(c, c->connect_key, sizeof c->connect_key);
    upstream_t *u = c->up;
    if (u && u->connected && !u->eof && !c->req.is_connect && strcmp(u->key, c->connect_key) == 0) {
        u->reused = true;
        c->retry_ok = c->req.complete; /* a keep-alive connection the site closed meanwhile */
        proxy_exchange_start(c);
        return;
    }
    proxy_upstream_close(c, false);
    proxy_upstream_connect(c);
}

void proxy_exchange_start(conn_t *c) {
    upstream_t *u = c->up;
    c->last_activity = proxy_now(c);
    c->phase_start = c->last_activity;
    if (c->req.is_connect && !c->via_proxy) {
        c->req_state = REQ_TUNNEL;
        c->resp_state = RESP_TUNNEL;
        if (queue_write(c, NULL, NULL, connect_established, sizeof connect_established - 1, NULL, 0, W_GENERATED) < 0) {
            proxy_conn_close(c, true);
            return;
        }
        proxy_exchange_request_side(c);
        proxy_exchange_response_side(c);
        return;
    }
    if (queue_copy(c, u, c->out_head.data, c->out_head.len, W_RELAY) < 0) {
        proxy_conn_close(c, true);
        return;
    }
    buf_reset(&c->resp_head);
    c->resp_head_scan = 0;
    if (c->req.is_connect) {
        c->req_state = REQ_TUNNEL;
        c->resp_state = RESP_HANDSHAKE;
    } else {
        c->req_state = c->req.complete ? REQ_DONE : REQ_BODY;
        c->resp_state = RESP_HEAD;
    }
    proxy_exchange_request_side(c);
    proxy_exchange_response_side(c);
}

/* One step of request-side work on the browser's input. Returns false when it cannot go on. */
static bool request_step(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    const char *data = c->in->data + c->in_off;
    size_t n = c->in_len;
    switch (c->req_state) {
    case REQ_HEAD: {
        if (c->head.len == 0) { /* CRLFs between requests are allowed and ignored */
            size_t skip = 0;
            while (skip < n && (data[skip] == '\r' || data[skip] == '\n')) skip++;
            if (skip) {
                browser_consume(c, skip);
                return true;
            }
        }
        size_t consumed;
        long end = collect_head(&c->head, &c->head_scan, data, n, p->cfg.max_head_bytes, &consumed);
        browser_consume(c, consumed);
        if (end < 0) {
            proxy_exchange_send_error(c, 431, "ERR_REQUEST_HEAD_TOO_LARGE",
                                      "The request line and headers exceed %zu bytes.", p->cfg.max_head_bytes);
            return false;
        }
        if (end > 0) on_request_head(c);
        return true;
    }
    case REQ_BODY: {
        upstream_t *u = c->up;
        if (!u || !u->connected) return false;
        long used = run_body(c, &c->req_parser, data, n);
        if (used <= 0 && !c->msg_done) used = -1; /* no progress would loop forever */
        if (used < 0) { /* the body's framing broke after part of it went on: nothing to answer */
            proxy_log_event(p, "bad_request_body", c->req.authority,
                            http_errno_description(HTTP_PARSER_ERRNO(&c->req_parser)));
            proxy_conn_close(c, true);
            return false;
        }
        p->counts.payload_bytes += c->payload_acc;
        bool done = c->msg_done;
        if (queue_write(c, u, c->in, data, (size_t)used, NULL, 0, W_RELAY) < 0) {
            proxy_conn_close(c, true);
            return false;
        }
        browser_consume(c, (size_t)used);
        if (done) c->req_state = REQ_DONE;
        return true;
    }
    case REQ_TUNNEL: {
        upstream_t *u = c->up;
        if (c->resp_state != RESP_TUNNEL || !u || u->shutdown_sent) return false;
        p->counts.tunnel_bytes += n;
        if (queue_write(c, u, c->in, data, n, NULL, 0, W_TUNNEL) < 0) {
            proxy_conn_close(c, true);
            return false;
        }
        browser_consume(c, n);
        return true;
    }
    case REQ_CONNECTING:
    case REQ_DONE: return false;
    }
    return false;
}

void proxy_exchange_request_side(conn_t *c) {
    if (c->processing) return; /* the outer call's loop picks the new state up */
    c->processing = true;
    while (c->life == CONN_OPEN && c->in_len > 0 && request_step(c)) {
    }
    c->processing = false;
    proxy_conn_update(c);
}

/* ---- the response side ------------------------------------------------------------------------- */

/* The response is complete: keep the site connection for the next request if both ends allow
 * it, else end what must end. */
void proxy_exchange_done(conn_t *c) {
    upstream_t *u = c->up;
    bool up_reusable = u && c->resp.keep_alive && u->in_len == 0 && !u->eof;
    bool browser_goes_on = c->req.keep_alive && c->resp.keep_alive && c->req_state == REQ_DONE && !c->eof;
    c->resp_state = RESP_IDLE;
    buf_reset(&c->out_head);
    if (!up_reusable) proxy_upstream_close(c, false);
    if (!browser_goes_on) {
        proxy_conn_finish(c);
        return;
    }
    c->req_state = REQ_HEAD;
    c->last_activity = proxy_now(c);
    proxy_exchange_request_side(c); /* the next request may be waiting in the input */
}

/* The upstream proxy answered 407 (to CONNECT or to a plain request). */
static void send_proxy_auth_requested(conn_t *c) {
    proxy_exchange_send_error(c, 502, "ERR_PROXY_AUTH_REQUESTED",
                              "The upstream proxy asked for credentials (407 Proxy Authentication Required): %s.",
                              c->proxy->upstream.has_credentials ? "the configured ones were refused"
                                                                 : "none are configured");
}

static void on_response_head(conn_t *c, size_t head_len) {
    bool handshake = c->resp_state == RESP_HANDSHAKE;
    http_parser_init(&c->resp_parser, HTTP_RESPONSE);
    if (proxy_http_parse_response_head(&c->resp_parser, c->resp_head.data, head_len,
                                       handshake || c->req.is_head_method, &c->resp) < 0) {
        if (handshake)
            proxy_exchange_send_error(c, 502, "ERR_TUNNEL_CONNECTION_FAILED",
                                      "The upstream proxy answered CONNECT with something that is not HTTP.");
        else
            proxy_exchange_send_error(c, 502, "ERR_INVALID_HTTP_RESPONSE", "%s sent a malformed response head.",
                                      c->req.authority);
        return;
    }
    c->retry_ok = false;
    unsigned status = c->resp.status;
    if (handshake) {
        if (status >= 200 && status < 300) {
            buf_reset(&c->resp_head);
            c->resp_head_scan = 0;
            c->resp_state = RESP_TUNNEL;
            c->final_head_sent = true;
            if (queue_write(c, NULL, NULL, connect_established, sizeof connect_established - 1, NULL, 0,
                            W_GENERATED) < 0) {
                proxy_conn_close(c, true);
                return;
            }
            proxy_exchange_request_side(c); /* bytes the browser sent after CONNECT */
            return;
        }
        if (status == 407) send_proxy_auth_requested(c);
        else
            proxy_exchange_send_error(c, 502, "ERR_TUNNEL_CONNECTION_FAILED",
                                      "The upstream proxy refused CONNECT %s with status %u.", c->req.authority,
                                      status);
        return;
    }
    if (status == 407) {
        /* Passed on, it would make the browser ask its user for credentials for this proxy. */
        if (c->via_proxy) send_proxy_auth_requested(c);
        else
            proxy_exchange_send_error(c, 502, "ERR_UNEXPECTED_PROXY_AUTH",
                                      "%s answered 407 Proxy Authentication Required, which a proxy cannot pass on.",
                                      c->req.authority);
        return;
    }
    if (status == 101 && !(c->resp.upgrade && c->req.upgrade)) {
        proxy_exchange_send_error(c, 502, "ERR_INVALID_HTTP_RESPONSE", "%s switched protocols without being asked to.",
                                  c->req.authority);
        return;
    }
    /* Pass the head on as received, but for the header that marks our own error pages: a
     * site must not be able to make its page look like one (the gateway records those as
     * failed navigations). */
    head_len = proxy_http_strip_header(c->resp_head.data, head_len, "x-browserd-proxy-error");
    size_t len;
    char *head = buf_steal(&c->resp_head, &len);
    c->resp_head_scan = 0;
    if (queue_write(c, NULL, NULL, head, head_len, head, 0, W_RELAY) < 0) {
        proxy_conn_close(c, true);
        return;
    }
    if (status == 101) {
        c->final_head_sent = true;
        c->req_state = REQ_TUNNEL;
        c->resp_state = RESP_TUNNEL;
        proxy_exchange_request_side(c);
        return;
    }
    if (status < 200) return; /* interim (100 Continue, 103): the final response follows */
    c->final_head_sent = true;
    if (c->resp.complete) {
        proxy_exchange_done(c);
        return;
    }
    c->resp_state = RESP_BODY;
}

static bool response_step(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    upstream_t *u = c->up;
    const char *data = u->in->data + u->in_off;
    size_t n = u->in_len;
    switch (c->resp_state) {
    case RESP_IDLE: /* bytes nobody asked for: the connection is no longer usable */
        proxy_upstream_close(c, false);
        return false;
    case RESP_HANDSHAKE:
    case RESP_HEAD: {
        if (c->resp_head.len == 0 && c->resp_state == RESP_HEAD) {
            size_t skip = 0; /* tolerated before a status line, as http-parser does */
            while (skip < n && (data[skip] == '\r' || data[skip] == '\n')) skip++;
            if (skip) {
                up_consume(u, skip);
                return true;
            }
        }
        size_t consumed;
        long end = collect_head(&c->resp_head, &c->resp_head_scan, data, n, p->cfg.max_head_bytes, &consumed);
        up_consume(u, consumed);
        if (end < 0) {
            proxy_exchange_send_error(c, 502, "ERR_RESPONSE_HEADERS_TOO_BIG", "%s sent a response head over %zu bytes.",
                                      c->via_proxy ? "The upstream proxy" : c->req.authority, p->cfg.max_head_bytes);
            return false;
        }
        if (end > 0) on_response_head(c, (size_t)end);
        return true;
    }
    case RESP_BODY: {
        long used = run_body(c, &c->resp_parser, data, n);
        if (used <= 0 && !c->msg_done) used = -1; /* no progress would loop forever */
        if (used < 0) {
            proxy_log_event(p, "bad_response_body", c->req.authority,
                            http_errno_description(HTTP_PARSER_ERRNO(&c->resp_parser)));
            proxy_conn_close(c, true);
            return false;
        }
        bool done = c->msg_done;
        if (queue_write(c, NULL, u->in, data, (size_t)used, NULL, c->payload_acc, W_RELAY) < 0) {
            proxy_conn_close(c, true);
            return false;
        }
        up_consume(u, (size_t)used);
        if (done) proxy_exchange_done(c);
        return true;
    }
    case RESP_TUNNEL:
        if (queue_write(c, NULL, u->in, data, n, NULL, 0, W_TUNNEL) < 0) {
            proxy_conn_close(c, true);
            return false;
        }
        up_consume(u, n);
        return true;
    }
    return false;
}

void proxy_exchange_response_side(conn_t *c) {
    while (c->life == CONN_OPEN && c->up && c->up->in_len > 0 && response_step(c)) {
    }
    proxy_conn_update(c);
}

void proxy_exchange_upstream_ended(conn_t *c, int status) {
    upstream_t *u = c->up;
    bool eof = status == UV_EOF;
    switch (c->resp_state) {
    case RESP_IDLE: /* a kept-alive connection the site closed: forget it */
        proxy_upstream_close(c, false);
        proxy_conn_update(c);
        return;
    case RESP_HANDSHAKE:
        proxy_exchange_send_error(c, 502, "ERR_TUNNEL_CONNECTION_FAILED",
                                  "The upstream proxy %s before answering CONNECT %s.",
                                  eof ? "closed the connection" : uv_strerror(status), c->req.authority);
        return;
    case RESP_HEAD:
        if (c->retry_ok && u->reused && c->resp_head.len == 0 && !c->final_head_sent) {
            /* The site closed a kept-alive connection just as we reused it: once more on a new one. */
            c->retry_ok = false;
            proxy_upstream_close(c, false);
            proxy_upstream_connect(c);
            return;
        }
        if (c->final_head_sent) { /* only interim responses went out */
            proxy_conn_close(c, true);
            return;
        }
        if (eof)
            proxy_exchange_send_error(c, 502, c->resp_head.len ? "ERR_INVALID_HTTP_RESPONSE" : "ERR_EMPTY_RESPONSE",
                                      "%s closed the connection without a complete response.",
                                      c->via_proxy ? "The upstream proxy" : c->req.authority);
        else
            proxy_exchange_send_error(c, 502,
                                      status == UV_ECONNRESET ? "ERR_CONNECTION_RESET" : "ERR_CONNECTION_FAILED",
                                      "The connection to %s failed before a response: %s.",
                                      c->via_proxy ? "the upstream proxy" : c->req.authority, uv_strerror(status));
        return;
    case RESP_BODY:
        if (eof) {
            /* A body that runs until the connection closes ends here; any other is cut short. */
            c->payload_acc = 0;
            c->msg_done = false;
            c->resp_parser.data = c;
            http_parser_execute(&c->resp_parser, &body_settings, NULL, 0);
            enum http_errno pe = HTTP_PARSER_ERRNO(&c->resp_parser);
            if (pe == HPE_PAUSED) http_parser_pause(&c->resp_parser, 0); /* our own pause at the end */
            if (c->msg_done && (pe == HPE_OK || pe == HPE_PAUSED)) {
                proxy_exchange_done(c);
                return;
            }
        }
        proxy_log_event(c->proxy, "response_cut", c->req.authority, eof ? "eof" : uv_strerror(status));
        proxy_conn_close(c, true);
        return;
    case RESP_TUNNEL:
        if (!eof) {
            proxy_conn_close(c, true); /* pass the reset on: TLS must see the abort */
            return;
        }
        u->eof = true;
        proxy_conn_shutdown_browser(c); /* after what is queued; then the browser may still send */
        proxy_conn_check_tunnel_done(c);
        proxy_conn_update(c);
        return;
    }
}
