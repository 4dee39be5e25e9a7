/* HTTP/1.1 server: the socket side. Parsing lives in http_request_parser.c.
 *
 * A connection is in one of four states:
 *   ACTIVE     reading, parsing, dispatching one request at a time to the handler;
 *   FINISHING  the last response is queued; uv_shutdown sends FIN once it is flushed;
 *   LINGERING  FIN sent; we read and drop what the client still sends until it closes or a
 *              short timer ends, so that closing with unread data does not turn into a RST
 *              that could destroy the response before the client has read it;
 *   CLOSED     uv_close called on both handles.
 *
 * Lifetime: the memory of a connection is counted: one reference per open handle (socket,
 * timer), one while the handler owns a request, one while conn_pump runs. It is freed when the
 * count reaches zero, which is never before both close callbacks have run (libuv rule) nor
 * before the handler has answered. */
#include "http/http_server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "http/http_request_parser.h"
#include "net/lifetime.h"

/* Stop reading from a client that sends faster than we answer once this many unparsed bytes
 * wait; resume when they are parsed. */
#define INPUT_BACKLOG_LIMIT (64u * 1024u)
/* Neither read nor start the next pipelined request while this many response bytes wait for
 * the socket: a client that does not read must not make us queue answers without bound. */
#define WRITE_BACKLOG_LIMIT (256u * 1024u)
#define READ_CHUNK (16u * 1024u)
#define READ_MIN_ROOM (4u * 1024u)
#define LINGER_MS 2000u
#define LISTEN_BACKLOG 511

typedef enum { CONN_ACTIVE, CONN_FINISHING, CONN_LINGERING, CONN_CLOSED } conn_state_t;
typedef enum { TIMER_NONE, TIMER_IDLE, TIMER_REQUEST, TIMER_FLUSH, TIMER_LINGER } timer_kind_t;

struct http_conn {
    net_lifetime_t life; /* first: see net/lifetime.h */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    http_server_t *srv;
    http_conn_t *prev, *next;
    conn_state_t state;
    timer_kind_t timer_kind;
    bool reading;
    bool peer_eof;
    bool handler_busy;
    bool pumping;
    bool evicted;           /* closed to make room for a new connection (see on_connection) */
    unsigned writes_pending;
    uint64_t idle_since_ms; /* loop time when it last became idle between requests */
    uint64_t dispatched_ns; /* when the request at the handler arrived complete (uv_hrtime) */
    http_request_parser_t parser;
    /* Bytes read and not yet parsed: [in_start, in_end) of in. libuv reads straight into the
     * free tail, so nothing is copied on the way to the parser. */
    char *in;
    size_t in_start, in_end, in_cap;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    http_server_config_t cfg;
    http_handler_fn handler;
    void *ctx;
    int port;
    http_conn_t *conns;
    size_t conn_count; /* connections not yet freed, open or waiting for their handler */
    size_t evicting;   /* of those, evicted ones still closing */
    uint64_t evicted_total;
    bool stopping;
    bool listener_closed;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
    time_t date_second;
    char date[40];
};

typedef struct {
    uv_write_t req;
    http_conn_t *conn;
    char *body; /* owned, freed when the write completes */
    char head[];
} response_write_t;

static void conn_pump(http_conn_t *c);
static void conn_finish(http_conn_t *c);
static void conn_close(http_conn_t *c);
static void conn_update_timer(http_conn_t *c);
static void conn_update_reading(http_conn_t *c);
static void server_maybe_finish_stop(http_server_t *srv);

/* ---- configuration, small helpers ---------------------------------------------------- */

void http_server_config_defaults(http_server_config_t *cfg) {
    cfg->max_header_bytes = 16 * 1024;
    cfg->max_body_bytes = 1024 * 1024;
    cfg->idle_timeout_ms = 60 * 1000;
    cfg->request_timeout_ms = 10 * 1000;
    cfg->max_connections = 10000;
    cfg->name = "http";
    cfg->on_answered = NULL, cfg->on_answered_ctx = NULL;
    cfg->secret_path_prefix = NULL;
    cfg->adopt_listener = false, cfg->listener_fd = -1;
}

const char *http_status_reason(int status) {
    const char *reason = http_status_str((enum http_status)status);
    if (!reason || strcmp(reason, "<unknown>") == 0) return "Unknown";
    return reason;
}

static void http_log(const char *event, const char *detail) { log_event(LOG_WARN, "http", event, "detail=\"%s\"", detail); }

/* One line per answered request (level info): what was asked, the status, the body's size and
 * the time from the request's arrival to its response being queued. Keys travel in headers,
 * never in the target, so it is logged as it came (cut at 512 bytes), but for a secret in it. */
static void log_request(const http_conn_t *c, const http_request_t *req, int status, size_t len, uint64_t took_ns) {
    if (!log_enabled(LOG_INFO)) return;
    double ms = (double)took_ns / 1e6;
    const char *prefix = c->srv->cfg.secret_path_prefix, *path = req->path;
    char redacted[600];
    if (prefix && strncmp(path, prefix, strlen(prefix)) == 0 && path[strlen(prefix)]) {
        path += strlen(prefix);
        snprintf(redacted, sizeof redacted, "%s[redacted]%.400s", prefix, path + strcspn(path, "/"));
        path = redacted;
    }
    log_event(LOG_INFO, "http", "request", "server=%s method=%s path=\"%.512s%s%.*s\" status=%d bytes=%zu ms=%.3f",
              c->srv->cfg.name, req->method_name, path, req->query ? "?" : "",
              req->query ? (int)(req->query_len > 512 ? 512 : req->query_len) : 0, req->query ? req->query : "",
              status, len, ms);
}

/* The Date header (RFC 9110 6.6.1), formatted once per second. */
static const char *server_date(http_server_t *srv) {
    time_t now = time(NULL);
    if (now != srv->date_second || !srv->date[0]) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        srv->date_second = now;
    }
    return srv->date;
}


/* ---- connection lifetime ----------------------------------------------------------- */

static void conn_ref(http_conn_t *c) { net_lifetime_ref(&c->life); }

static void conn_free(net_lifetime_t *life) {
    http_conn_t *c = (http_conn_t *)life;
    http_server_t *srv = c->srv;
    http_request_parser_free(&c->parser);
    free(c->in);
    if (c->prev) c->prev->next = c->next;
    else srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    srv->conn_count--;
    if (c->evicted) srv->evicting--;
    free(c);
    server_maybe_finish_stop(srv);
}

static void conn_unref(http_conn_t *c) { net_lifetime_unref(&c->life); }

static void conn_close(http_conn_t *c) {
    if (c->state == CONN_CLOSED) return;
    c->state = CONN_CLOSED;
    c->reading = false;
    c->timer_kind = TIMER_NONE;
    net_lifetime_close((uv_handle_t *)&c->tcp);
    net_lifetime_close((uv_handle_t *)&c->timer);
}

static size_t conn_write_backlog(const http_conn_t *c) {
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

static void conn_drop_input(http_conn_t *c) { c->in_start = c->in_end = 0; }

/* ---- writing ----------------------------------------------------------------------- */

static void on_write_done(uv_write_t *req, int status) {
    response_write_t *w = (response_write_t *)req;
    http_conn_t *c = w->conn;
    free(w->body);
    free(w);
    c->writes_pending--;
    if (c->state == CONN_CLOSED) return;
    if (status < 0) {
        if (status != UV_EPIPE && status != UV_ECONNRESET) http_log("write_failed", uv_strerror(status));
        conn_close(c);
        return;
    }
    /* The write backlog may have drained below the limit: resume what it held back. */
    if (c->state == CONN_ACTIVE) conn_pump(c);
}

/* A write request with room for a response head of head_len bytes (plus its NUL). */
static response_write_t *response_write_new(http_conn_t *c, size_t head_len) {
    response_write_t *w = malloc(sizeof *w + head_len + 1);
    if (w) {
        w->conn = c;
        w->body = NULL;
    }
    return w;
}

/* Queues w's head and `body` (owned: freed when written, or now on failure) as one write of
 * two buffers: the body is never copied. Frees w on failure. */
static int conn_submit_write(http_conn_t *c, response_write_t *w, size_t head_len, char *body, size_t body_len) {
    w->body = body;
    uv_buf_t bufs[2] = {uv_buf_init(w->head, (unsigned)head_len), {.base = body, .len = body_len}};
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, body && body_len ? 2 : 1, on_write_done);
    if (rc < 0) {
        free(w->body);
        free(w);
        return rc;
    }
    c->writes_pending++;
    return 0;
}

/* The handler's extra headers name a Content-Type of their own (a line that starts so). */
static bool has_content_type(const char *extra) {
    for (const char *line = extra; line && *line;) {
        if (strncasecmp(line, "content-type:", 13) == 0) return true;
        line = strstr(line, "\r\n");
        if (line) line += 2;
    }
    return false;
}

/* Writes one response. `body` is owned (freed in every case). Returns 0 or a libuv error. */
static int conn_write_response(http_conn_t *c, int status, const char *extra_headers, char *body, size_t len,
                               bool omit_body, const char *connection_header) {
    if (status < 100 || status > 999) {
        http_log("bad_status", "handler gave a status outside 100..999; sent 500");
        status = 500;
    }
    /* RFC 9110 8.6: no Content-Length (and so no body) on 1xx and 204; 304 has no body. */
    bool no_content = status < 200 || status == 204 || status == 304;
    if (no_content) {
        free(body);
        body = NULL;
        len = 0;
    }
    if (!extra_headers) extra_headers = "";
    size_t extra_len = strlen(extra_headers);
    /* A header line missing its CRLF would swallow the blank line that ends the head. */
    bool extra_lacks_crlf = extra_len > 0 && (extra_len < 2 || memcmp(extra_headers + extra_len - 2, "\r\n", 2) != 0);
    const char *extra_end = extra_lacks_crlf ? "\r\n" : "";
    char length_lines[96] = "";
    if (!no_content)
        snprintf(length_lines, sizeof length_lines, "%sContent-Length: %zu\r\n",
                 has_content_type(extra_headers) ? "" : "Content-Type: application/json\r\n", len);
    static const char fmt[] = "HTTP/1.1 %d %s\r\n%s%s%s%sDate: %s\r\n\r\n";
    const char *reason = http_status_reason(status);
    const char *date = server_date(c->srv);
    int head_len =
        snprintf(NULL, 0, fmt, status, reason, length_lines, connection_header, extra_headers, extra_end, date);
    response_write_t *w = head_len >= 0 ? response_write_new(c, (size_t)head_len) : NULL;
    if (!w) {
        free(body);
        return UV_ENOMEM;
    }
    snprintf(w->head, (size_t)head_len + 1, fmt, status, reason, length_lines, connection_header, extra_headers,
             extra_end, date);
    if (omit_body) { /* HEAD: the length of the body, not the body */
        free(body);
        body = NULL;
        len = 0;
    }
    return conn_submit_write(c, w, (size_t)head_len, body, len);
}

/* A response the server makes itself (errors, timeouts), followed by closing. */
static void conn_fail(http_conn_t *c, int status, const char *message) {
    buf_t b;
    buf_init(&b);
    size_t len = 0;
    char *body = http_error_body(&b, message, NULL, NULL, 0) < 0 ? NULL : buf_steal(&b, &len);
    int rc = body ? conn_write_response(c, status, NULL, body, len, false, "Connection: close\r\n") : UV_ENOMEM;
    if (!body) buf_free(&b);
    if (rc < 0) conn_close(c);
    else conn_finish(c);
}

static void conn_respond_parse_error(http_conn_t *c) {
    int status = http_request_parser_error_status(&c->parser);
    const char *detail = http_request_parser_error_detail(&c->parser);
    http_log(status == 400 ? "bad_request" : status == 413 ? "body_too_large" : status == 414 ? "uri_too_long"
              : status == 431 ? "headers_too_large" : "request_failed", detail);
    switch (status) {
    case 413: conn_fail(c, 413, "Payload too large"); break;
    case 414: conn_fail(c, 414, "URI too long"); break;
    case 431: conn_fail(c, 431, "Request header fields too large"); break;
    case 500: conn_fail(c, 500, "Internal server error"); break;
    default: conn_fail(c, 400, "Bad request"); break;
    }
}

/* ---- closing gracefully -------------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status) {
    http_conn_t *c = req->data;
    if (c->state != CONN_FINISHING) return; /* closed meanwhile; status is UV_ECANCELED */
    if (status < 0 || c->peer_eof || c->srv->stopping) {
        conn_close(c);
        return;
    }
    c->state = CONN_LINGERING;
    conn_update_reading(c);
    conn_update_timer(c);
}

/* No more requests on this connection: flush what is queued, send FIN, then linger. */
static void conn_finish(http_conn_t *c) {
    if (c->state != CONN_ACTIVE) return;
    conn_drop_input(c);
    if (c->writes_pending == 0) {
        conn_close(c);
        return;
    }
    c->state = CONN_FINISHING;
    c->shutdown_req.data = c;
    /* uv_shutdown waits for the queued writes before it sends FIN. */
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    conn_update_reading(c);
    conn_update_timer(c);
}

/* ---- timers and flow control --------------------------------------------------------- */

static uint64_t timer_ms(const http_conn_t *c, timer_kind_t kind) {
    const http_server_config_t *cfg = &c->srv->cfg;
    switch (kind) {
    case TIMER_IDLE:
    case TIMER_FLUSH: return cfg->idle_timeout_ms;
    case TIMER_REQUEST: return cfg->request_timeout_ms;
    case TIMER_LINGER: return cfg->idle_timeout_ms < LINGER_MS ? cfg->idle_timeout_ms : LINGER_MS;
    case TIMER_NONE: break;
    }
    return 0;
}

static void on_conn_timer(uv_timer_t *timer) {
    http_conn_t *c = timer->data;
    timer_kind_t fired = c->timer_kind;
    c->timer_kind = TIMER_NONE;
    if (fired == TIMER_REQUEST && c->state == CONN_ACTIVE && !c->handler_busy) {
        http_log("request_timeout", "request not complete in time");
        conn_fail(c, 408, "Request timeout");
        return;
    }
    conn_close(c); /* idle between requests, or a client that stopped reading or closing */
}

/* One timer per connection, whose meaning follows the state. A kind is started when it
 * begins, not on every read: a client trickling bytes must not extend its request timeout. */
static void conn_update_timer(http_conn_t *c) {
    timer_kind_t want;
    switch (c->state) {
    case CONN_CLOSED: return;
    case CONN_LINGERING: want = TIMER_LINGER; break;
    case CONN_FINISHING: want = TIMER_FLUSH; break;
    default:
        if (c->handler_busy) want = TIMER_NONE; /* the handler's time is not the client's */
        else if (http_request_parser_in_progress(&c->parser)) want = TIMER_REQUEST;
        else want = TIMER_IDLE;
    }
    if (want == c->timer_kind) return;
    c->timer_kind = want;
    if (want == TIMER_IDLE) c->idle_since_ms = uv_now(c->srv->loop);
    uv_timer_stop(&c->timer);
    if (want != TIMER_NONE) uv_timer_start(&c->timer, on_conn_timer, timer_ms(c, want), 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *out) {
    (void)suggested;
    http_conn_t *c = handle->data;
    if (c->in_start == c->in_end) c->in_start = c->in_end = 0;
    if (c->in_cap - c->in_end < READ_MIN_ROOM && c->in_start > 0) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
    if (c->in_cap - c->in_end < READ_MIN_ROOM) {
        size_t cap = c->in_end + READ_CHUNK;
        char *in = realloc(c->in, cap);
        if (!in) {
            *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        c->in = in;
        c->in_cap = cap;
    }
    *out = uv_buf_init(c->in + c->in_end, (unsigned)(c->in_cap - c->in_end));
}

static void on_peer_eof(http_conn_t *c) {
    c->peer_eof = true;
    switch (c->state) {
    case CONN_LINGERING: conn_close(c); break;
    case CONN_ACTIVE: conn_pump(c); break; /* answer what is complete, then close */
    default: conn_update_reading(c); break; /* FINISHING: on_shutdown closes */
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    http_conn_t *c = stream->data;
    if (nread == 0) return;
    if (nread == UV_EOF) {
        on_peer_eof(c);
        return;
    }
    if (nread < 0) {
        if (nread != UV_ECONNRESET) http_log("read_failed", uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (c->state != CONN_ACTIVE) return; /* lingering: the bytes are dropped */
    c->in_end += (size_t)nread;
    conn_pump(c);
}

static void conn_update_reading(http_conn_t *c) {
    bool want = false;
    if (c->state == CONN_LINGERING) want = !c->peer_eof;
    else if (c->state == CONN_ACTIVE)
        want = !c->peer_eof && c->in_end - c->in_start < INPUT_BACKLOG_LIMIT &&
               conn_write_backlog(c) < WRITE_BACKLOG_LIMIT;
    if (want == c->reading) return;
    if (want) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc < 0) {
            http_log("read_start_failed", uv_strerror(rc));
            conn_close(c);
            return;
        }
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = want;
}

/* ---- requests ---------------------------------------------------------------------- */

static void conn_send_continue(http_conn_t *c) {
    static const char head[] = "HTTP/1.1 100 Continue\r\n\r\n";
    response_write_t *w = response_write_new(c, sizeof head - 1);
    if (!w) {
        conn_close(c);
        return;
    }
    memcpy(w->head, head, sizeof head);
    if (conn_submit_write(c, w, sizeof head - 1, NULL, 0) < 0) conn_close(c);
}

static void conn_dispatch(http_conn_t *c) {
    const http_request_t *req = http_request_parser_request(&c->parser);
    c->handler_busy = true;
    c->dispatched_ns = uv_hrtime();
    conn_ref(c); /* held until http_respond */
    conn_update_timer(c);
    c->srv->handler(c->srv->ctx, c, req);
}

/* Parses and dispatches what has been read, as long as nothing holds it back: a request at
 * the handler, a full write backlog, a stop. Re-entrant calls (http_respond from inside the
 * handler) return at once; the running loop picks up the work. */
static void conn_pump(http_conn_t *c) {
    if (c->pumping) return;
    c->pumping = true;
    conn_ref(c);
    http_server_t *srv = c->srv;
    while (c->state == CONN_ACTIVE && !c->handler_busy && !srv->stopping && c->in_start < c->in_end &&
           conn_write_backlog(c) < WRITE_BACKLOG_LIMIT) {
        size_t consumed = 0;
        http_request_parse_result_t r =
            http_request_parser_feed(&c->parser, c->in + c->in_start, c->in_end - c->in_start, &consumed);
        c->in_start += consumed;
        if (r == HTTP_REQUEST_PARSE_READY) {
            conn_dispatch(c);
        } else if (r == HTTP_REQUEST_PARSE_ERROR) {
            conn_respond_parse_error(c);
        } else if (http_request_parser_take_continue(&c->parser)) {
            conn_send_continue(c);
        }
    }
    if (c->state == CONN_ACTIVE) {
        if (c->in_start == c->in_end) {
            /* Release the read buffer while nothing waits in it: idle keep-alive connections
             * are many, and a malloc per read is cheap next to the read itself. */
            conn_drop_input(c);
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
        if (!c->handler_busy) {
            if (srv->stopping) conn_finish(c);
            else if (c->peer_eof && c->in_start == c->in_end) conn_finish(c); /* nothing more can come */
        }
    }
    conn_update_reading(c);
    conn_update_timer(c);
    c->pumping = false;
    conn_unref(c);
}

void http_respond(http_conn_t *c, int status, const char *extra_headers, char *body, size_t len, bool close_after) {
    if (!c || !c->handler_busy) {
        http_log("respond_misuse", "http_respond without a request waiting for it");
        free(body);
        return;
    }
    c->handler_busy = false;
    if (!body) len = 0;
    if (c->state == CONN_CLOSED) { /* the client went away: drop the response */
        free(body);
        conn_unref(c);
        return;
    }
    const http_request_t *req = http_request_parser_request(&c->parser);
    bool keep_alive = req->keep_alive && !close_after && !c->srv->stopping;
    /* An HTTP/1.0 client keeps the connection only if told so. */
    const char *connection_header = !keep_alive                                          ? "Connection: close\r\n"
                                    : http_request_parser_http_minor(&c->parser) == 0 ? "Connection: keep-alive\r\n"
                                                                                      : "";
    uint64_t took_ns = uv_hrtime() - c->dispatched_ns;
    log_request(c, req, status, len, took_ns);
    if (c->srv->cfg.on_answered) c->srv->cfg.on_answered(c->srv->cfg.on_answered_ctx, req, status, took_ns);
    int rc = conn_write_response(c, status, extra_headers, body, len, req->method == HTTP_M_HEAD, connection_header);
    http_request_parser_next(&c->parser); /* the request's strings are invalid from here */
    if (rc < 0) conn_close(c);
    else if (!keep_alive) conn_finish(c);
    else conn_pump(c);
    conn_unref(c);
}

int http_conn_peer(const http_conn_t *c, struct sockaddr_storage *out) {
    int len = (int)sizeof *out;
    return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)out, &len);
}

int http_conn_take_over(http_conn_t *c, int *fd_out, char **rest, size_t *rest_len) {
    *fd_out = -1;
    *rest = NULL;
    *rest_len = 0;
    if (!c || !c->handler_busy) {
        http_log("take_over_misuse", "http_conn_take_over without a request waiting for it");
        return -EINVAL;
    }
    c->handler_busy = false;
    int rc = 0;
    uv_os_fd_t fd;
    if (c->state == CONN_CLOSED) {
        rc = -ENOTCONN; /* the client went away while the handler worked */
    } else if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
        rc = -EBADF;
    } else {
        /* The new owner gets its own descriptor of the same socket: closing this handle
         * (which can only be freed in its close callback) then leaves the socket open. */
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        size_t n = c->in_end - c->in_start;
        char *copy = n ? malloc(n) : NULL;
        if (dup_fd < 0 || (n && !copy)) {
            if (dup_fd >= 0) close(dup_fd);
            free(copy);
            rc = dup_fd < 0 ? -errno : -ENOMEM;
        } else {
            if (n) memcpy(copy, c->in + c->in_start, n);
            *fd_out = dup_fd;
            *rest = copy;
            *rest_len = n;
        }
    }
    if (c->state != CONN_CLOSED) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        conn_drop_input(c);
        conn_close(c);
    }
    conn_unref(c);
    return rc;
}

/* ---- accepting --------------------------------------------------------------------- */

static void on_rejected_closed(uv_handle_t *handle) { free(handle); }

/* Accepts and closes at once: a connection left in the listen queue would make libuv stop
 * watching the listener until it is accepted. */
static void reject_connection(http_server_t *srv) {
    uv_tcp_t *tcp = malloc(sizeof *tcp);
    if (!tcp || uv_tcp_init(srv->loop, tcp) < 0) {
        free(tcp);
        http_log("reject_failed", "out of memory");
        return;
    }
    uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)tcp);
    uv_close((uv_handle_t *)tcp, on_rejected_closed);
}

/* The connection idle between requests for the longest time, or NULL when none is. */
static http_conn_t *longest_idle(http_server_t *srv) {
    http_conn_t *oldest = NULL;
    for (http_conn_t *c = srv->conns; c; c = c->next)
        if (c->state == CONN_ACTIVE && c->timer_kind == TIMER_IDLE && !c->handler_busy && !c->writes_pending &&
            !c->evicted && (!oldest || c->idle_since_ms < oldest->idle_since_ms))
            oldest = c;
    return oldest;
}

static void on_connection(uv_stream_t *listener, int status) {
    http_server_t *srv = listener->data;
    if (status < 0) {
        http_log("accept_failed", uv_strerror(status));
        return;
    }
    if (srv->conn_count - srv->evicting >= srv->cfg.max_connections) {
        /* At the limit, an idle keep-alive connection gives its place to a new one (as nginx
         * reuses its idle connections): otherwise clients that open connections and leave them
         * idle would lock everyone else out until the idle timeout. Only when none is idle is
         * the new one refused. The scan runs only at the limit. */
        http_conn_t *victim = longest_idle(srv);
        if (!victim) {
            log_event_keyed(LOG_WARN, "http", "connection_rejected", srv->cfg.name,
                            "server=%s detail=\"max_connections (%u) reached, none idle\"", srv->cfg.name,
                            srv->cfg.max_connections);
            reject_connection(srv);
            return;
        }
        victim->evicted = true;
        srv->evicting++;
        srv->evicted_total++;
        log_event_keyed(LOG_INFO, "http", "idle_connection_closed", srv->cfg.name,
                        "server=%s detail=\"max_connections (%u) reached: the longest idle gave its place\"",
                        srv->cfg.name, srv->cfg.max_connections);
        conn_close(victim);
    }
    http_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        reject_connection(srv);
        return;
    }
    c->srv = srv;
    http_request_parser_init(&c->parser, srv->cfg.max_header_bytes, srv->cfg.max_body_bytes);
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    net_lifetime_init(&c->life, 2, conn_free); /* the two handles */
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    srv->conn_count++;
    int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        http_log("accept_failed", uv_strerror(rc));
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* small responses should leave at once */
    conn_update_reading(c);
    conn_update_timer(c);
}

/* ---- server ------------------------------------------------------------------------ */

static void on_failed_listener_closed(uv_handle_t *handle) { free(handle->data); }

int http_server_start(uv_loop_t *loop, const http_server_config_t *cfg, http_handler_fn handler, void *ctx,
                      http_server_t **out) {
    *out = NULL;
    if (!loop || !cfg || (!cfg->host && !cfg->adopt_listener) || !handler || cfg->port < 0 || cfg->port > 65535)
        return cfg && cfg->adopt_listener ? (close(cfg->listener_fd), UV_EINVAL) : UV_EINVAL;
    struct sockaddr_storage addr;
    int rc = cfg->adopt_listener       ? 0
             : strchr(cfg->host, ':') ? uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr)
                                      : uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr);
    http_server_t *srv = rc < 0 ? NULL : calloc(1, sizeof *srv);
    if (!srv) return cfg->adopt_listener ? (close(cfg->listener_fd), UV_ENOMEM) : rc < 0 ? rc : UV_ENOMEM;
    http_server_config_defaults(&srv->cfg);
    /* Zero fields keep the defaults, so a partly filled config is still sane. */
    if (cfg->max_header_bytes) srv->cfg.max_header_bytes = cfg->max_header_bytes;
    if (cfg->max_body_bytes) srv->cfg.max_body_bytes = cfg->max_body_bytes;
    if (cfg->idle_timeout_ms) srv->cfg.idle_timeout_ms = cfg->idle_timeout_ms;
    if (cfg->request_timeout_ms) srv->cfg.request_timeout_ms = cfg->request_timeout_ms;
    if (cfg->max_connections) srv->cfg.max_connections = cfg->max_connections;
    if (cfg->name) srv->cfg.name = cfg->name; /* a string literal of the caller's */
    srv->cfg.on_answered = cfg->on_answered, srv->cfg.on_answered_ctx = cfg->on_answered_ctx;
    srv->cfg.secret_path_prefix = cfg->secret_path_prefix; /* a string literal of the caller's */
    srv->cfg.host = NULL; /* borrowed; not needed after bind */
    srv->cfg.port = cfg->port;
    srv->loop = loop;
    srv->handler = handler;
    /* libuv writes with writev: a peer that has gone away would raise SIGPIPE and kill the
     * daemon. Ignoring it is process-wide, and what every libuv server has to do. */
    signal(SIGPIPE, SIG_IGN);
    srv->ctx = ctx;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    rc = cfg->adopt_listener ? uv_tcp_open(&srv->listener, cfg->listener_fd)
                             : uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (rc < 0 && cfg->adopt_listener) close(cfg->listener_fd); /* not adopted: still ours to close */
    if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->listener, LISTEN_BACKLOG, on_connection);
    struct sockaddr_storage bound;
    int bound_len = sizeof bound;
    if (rc == 0) rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &bound_len);
    if (rc < 0) {
        /* The handle is initialised: it can only be freed from its close callback. */
        uv_close((uv_handle_t *)&srv->listener, on_failed_listener_closed);
        return rc;
    }
    srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = srv;
    return 0;
}

int http_server_port(const http_server_t *srv) { return srv->port; }

void http_server_get_stats(const http_server_t *srv, http_server_stats_t *out) {
    memset(out, 0, sizeof *out);
    out->connections = srv->conn_count;
    out->idle_evicted = srv->evicted_total;
    for (const http_conn_t *c = srv->conns; c; c = c->next) {
        if (c->handler_busy) out->requests_in_flight++;
        if (c->state == CONN_CLOSED) continue;
        if (c->state == CONN_ACTIVE && !c->reading && !c->peer_eof) out->reads_paused++;
        out->buffered_input_bytes += c->in_end - c->in_start;
        out->queued_output_bytes += conn_write_backlog(c);
    }
}

static void server_maybe_finish_stop(http_server_t *srv) {
    if (!srv->stopping || !srv->listener_closed || srv->conn_count > 0) return;
    void (*on_stopped)(void *) = srv->on_stopped;
    void *arg = srv->stopped_arg;
    free(srv);
    if (on_stopped) on_stopped(arg);
}

static void on_listener_closed(uv_handle_t *handle) {
    http_server_t *srv = handle->data;
    srv->listener_closed = true;
    server_maybe_finish_stop(srv);
}

void http_server_stop(http_server_t *srv, void (*on_stopped)(void *arg), void *arg) {
    if (!srv || srv->stopping) return;
    srv->stopping = true;
    srv->on_stopped = on_stopped;
    srv->stopped_arg = arg;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    /* Nothing below frees a connection synchronously (closing goes through callbacks), so the
     * list stays walkable. */
    for (http_conn_t *c = srv->conns; c; c = c->next) {
        switch (c->state) {
        case CONN_ACTIVE:
            /* A request at the handler finishes first: http_respond closes after it. */
            if (!c->handler_busy) conn_finish(c);
            break;
        case CONN_LINGERING: conn_close(c); break;
        default: break; /* FINISHING: on_shutdown closes; CLOSED: waits for its handler */
        }
    }
}
