/* Per-session forward proxy: the socket side. Heads, targets and pages are in proxy_http.c, the
 * address checks in proxy_guard.c.
 *
 * One browser connection (conn_t) has at most one upstream connection (upstream_t) at a time,
 * to a site or to the configured upstream proxy. Two state machines run on it:
 *   request side  (browser -> upstream): HEAD, CONNECTING, BODY, DONE, TUNNEL
 *   response side (upstream -> browser): IDLE, HANDSHAKE (our CONNECT to the upstream proxy),
 *                                        HEAD, BODY, TUNNEL
 * One exchange at a time: the next request head is not read before the response to the last
 * one is complete (browsers do not pipeline through proxies; the bytes wait in the input).
 *
 * Bytes move without copies once a head is through: what is read goes out in the same
 * reference-counted chunk (chunk_t) that the read filled. Heads are copied into a buffer until
 * complete, then rewritten (requests) or passed on whole (responses).
 *
 * Backpressure, per direction: buffered = bytes read from the source and not yet taken by the
 * destination's kernel (queued writes + unparsed input + a head being collected). A read never
 * asks for more than high_watermark - buffered, and reading stops when fewer than READ_MIN
 * bytes of room are left; it resumes at low_watermark. So `buffered` never passes
 * high_watermark (our own pages and "200 Connection established" are not relayed bytes and are
 * not part of it; they are a few hundred bytes).
 *
 * Lifetime (net/lifetime.h): a conn_t is counted: one reference per open handle (socket, timer)
 * and one per upstream_t that is not yet released (an upstream's callbacks use its conn). It is
 * freed when the count reaches zero, which libuv guarantees is after every write and connect
 * callback. An upstream_t holds one reference, its socket; its release frees it and lets go of
 * its conn. A DNS resolution in flight is not counted: it is detached (conn pointer cleared)
 * when the conn gives up on it, and frees itself when it ends. */
#include "proxy/traffic_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "net/lifetime.h"
#include "proxy/proxy_guard.h"
#include "proxy/proxy_http.h"
#include "proxy/proxy_upstream.h"

#define READ_CHUNK (64u * 1024u)
#define READ_MIN (4u * 1024u)
#define LINGER_MS 2000u
#define MAX_ADDRS 8
#define LISTEN_BACKLOG 128

static const char connect_established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

/* Tests swap these to resolve names without a DNS server and to watch every address the proxy
 * connects to (tests/unit/proxy includes this file). */
static int (*resolve_fn)(uv_loop_t *, uv_getaddrinfo_t *, uv_getaddrinfo_cb, const char *, const char *,
                         const struct addrinfo *) = uv_getaddrinfo;
static int (*connect_fn)(uv_connect_t *, uv_tcp_t *, const struct sockaddr *, uv_connect_cb) = uv_tcp_connect;

/* ---- types ---------------------------------------------------------------------------------- */

typedef struct {
    unsigned refs;
    size_t cap;
    char data[];
} chunk_t;

typedef enum { REQ_HEAD, REQ_CONNECTING, REQ_BODY, REQ_DONE, REQ_TUNNEL } req_state_t;
typedef enum { RESP_IDLE, RESP_HANDSHAKE, RESP_HEAD, RESP_BODY, RESP_TUNNEL } resp_state_t;
/* OPEN: serving. FINISHING: our last bytes are flushing, then FIN. LINGERING: FIN sent, the
 * browser's remaining bytes are read and dropped for a moment so that closing does not turn into
 * a RST that could destroy the response before the browser read it. CLOSED: handles closing. */
typedef enum { CONN_OPEN, CONN_FINISHING, CONN_LINGERING, CONN_CLOSED } life_t;
typedef enum { W_RELAY, W_TUNNEL, W_GENERATED } wkind_t;

typedef struct conn conn_t;

typedef struct {
    net_lifetime_t lifetime; /* first: see net/lifetime.h. One reference: the socket */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    conn_t *conn;
    char key[320];     /* what it is connected to: "host:port", or "upstream proxy" */
    bool connected;
    bool counted;      /* counted in upstream_connections_open */
    bool closing;
    bool reading;
    bool read_paused;
    bool eof;          /* the peer sent FIN */
    bool shutdown_sent;
    bool reused;       /* the current exchange is not its first one */
    chunk_t *in;       /* read, not yet processed: in->data[in_off, in_off + in_len) */
    size_t in_off, in_len;
    size_t pending;    /* relayed bytes in queued writes to it */
    unsigned writes;
} upstream_t;

typedef struct {
    uv_getaddrinfo_t req;
    conn_t *conn;      /* NULL once abandoned */
} resolve_t;

struct conn {
    net_lifetime_t lifetime; /* first: see net/lifetime.h. One reference per open handle (socket,
                                timer) and one per upstream_t not yet released */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    traffic_proxy_t *proxy;
    conn_t *prev, *next;
    life_t life;
    req_state_t req_state;
    resp_state_t resp_state;
    bool reading;
    bool read_paused;
    bool eof;                /* the browser sent FIN */
    bool shutdown_sent;
    bool processing;
    bool counted_open;
    chunk_t *in;
    size_t in_off, in_len;
    size_t pending;          /* relayed bytes in queued writes to the browser */
    unsigned writes;         /* writes to the browser in flight (relayed and ours) */

    buf_t head;              /* the request head being collected */
    size_t head_scan;
    http_parser req_parser;
    proxy_request_t req;
    buf_t out_head;          /* the head sent on, kept to resend once on a fresh connection */
    bool retry_ok;
    bool final_head_sent;    /* a final (non-1xx) response head went to the browser */
    bool via_proxy;          /* this exchange goes through the configured upstream proxy */
    char connect_key[320];

    http_parser resp_parser;
    proxy_response_t resp;
    buf_t resp_head;
    size_t resp_head_scan;
    size_t payload_acc;      /* body bytes seen by the body parser during one execute */
    bool msg_done;

    upstream_t *up;
    resolve_t *resolve;
    struct sockaddr_storage addrs[MAX_ADDRS];
    unsigned addr_count, addr_next;
    int last_error;

    uint64_t last_activity;
    uint64_t phase_start;
};

struct traffic_proxy {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    traffic_proxy_config_t cfg;   /* pointer fields cleared: their content lives below */
    proxy_guard_t guard;
    bool has_upstream;
    proxy_upstream_t upstream;
    proxy_host_t upstream_host;
    unsigned upstream_generation;
    char tag[64];
    conn_t *conns;
    size_t conn_alloc;            /* conn_t not yet freed */
    traffic_counts_t counts;
    traffic_proxy_stats_t stats;
    bool stopping;
    bool listener_closed;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
};

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

static void conn_process(conn_t *c);
static void up_process(conn_t *c);
static void conn_update(conn_t *c);
static void conn_close(conn_t *c, bool reset);
static void conn_finish(conn_t *c);
static void send_error(conn_t *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void try_connect(conn_t *c);
static void begin_connect(conn_t *c);
static void proxy_maybe_finish_stop(traffic_proxy_t *p);

/* ---- small helpers -------------------------------------------------------------------------- */

static chunk_t *chunk_of(char *data) { return (chunk_t *)(data - offsetof(chunk_t, data)); }

static void chunk_unref(chunk_t *ch) {
    if (ch && --ch->refs == 0) free(ch);
}

static uint64_t now_ms(const conn_t *c) { return uv_now(c->proxy->loop); }

static void log_event(const traffic_proxy_t *p, const char *event, const char *target, const char *detail) {
    fprintf(stderr, "module=proxy event=%s session=%s port=%d target=\"%s\" detail=\"%s\"\n", event,
            p->tag[0] ? p->tag : "-", p->port, target ? target : "", detail ? detail : "");
}

static size_t buffered_up(const conn_t *c) { return (c->up ? c->up->pending : 0) + c->in_len + c->head.len; }

static size_t buffered_down(const conn_t *c) {
    return c->pending + (c->up ? c->up->in_len : 0) + c->resp_head.len;
}

static void note_peaks(conn_t *c) {
    traffic_proxy_stats_t *s = &c->proxy->stats;
    size_t u = buffered_up(c), d = buffered_down(c);
    if (u > s->peak_buffered_to_upstream) s->peak_buffered_to_upstream = u;
    if (d > s->peak_buffered_to_browser) s->peak_buffered_to_browser = d;
}

/* Hysteresis: pause when a read could no longer get READ_MIN bytes without passing high, resume
 * at low. Returns whether the side is paused. */
static bool backpressure(bool *paused, size_t buffered, const traffic_proxy_t *p) {
    if (*paused) {
        if (buffered <= p->cfg.low_watermark) *paused = false;
    } else if (buffered + READ_MIN > p->cfg.high_watermark) {
        *paused = true;
    }
    return *paused;
}

static void alloc_chunk(size_t buffered, const traffic_proxy_t *p, uv_buf_t *buf) {
    size_t room = buffered < p->cfg.high_watermark ? p->cfg.high_watermark - buffered : 0;
    size_t size = room < READ_CHUNK ? room : READ_CHUNK;
    chunk_t *ch = size ? malloc(sizeof *ch + size) : NULL;
    if (!ch) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to the read callback */
        return;
    }
    ch->refs = 1;
    ch->cap = size;
    *buf = uv_buf_init(ch->data, (unsigned)size);
}

/* ---- connection lifetime ------------------------------------------------------------------- */

static void conn_release(net_lifetime_t *life) {
    conn_t *c = (conn_t *)life;
    traffic_proxy_t *p = c->proxy;
    chunk_unref(c->in);
    buf_free(&c->head);
    buf_free(&c->out_head);
    buf_free(&c->resp_head);
    if (c->prev) c->prev->next = c->next;
    else p->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    p->conn_alloc--;
    free(c);
    proxy_maybe_finish_stop(p);
}

static void up_release(net_lifetime_t *life) {
    upstream_t *u = (upstream_t *)life;
    conn_t *c = u->conn;
    free(u);
    net_lifetime_unref(&c->lifetime);
}

/* net_lifetime_close's callback for uv_tcp_close_reset, which net/lifetime.h has no variant of. */
static void on_reset_closed(uv_handle_t *h) { net_lifetime_unref(h->data); }

/* Closes a socket whose data points at its owner; reset: with a RST, when libuv still can (not
 * after a shutdown was requested). */
static void close_tcp(uv_tcp_t *tcp, bool reset) {
    if (reset && uv_tcp_close_reset(tcp, on_reset_closed) == 0) return;
    net_lifetime_close((uv_handle_t *)tcp);
}

static void resolve_abandon(conn_t *c) {
    if (!c->resolve) return;
    c->resolve->conn = NULL;
    uv_cancel((uv_req_t *)&c->resolve->req); /* only works before a pool thread took it; fine */
    c->resolve = NULL;
    c->proxy->stats.pending_resolutions--;
}

static void up_close(conn_t *c, bool reset) {
    upstream_t *u = c->up;
    if (!u) return;
    c->up = NULL;
    u->closing = true;
    chunk_unref(u->in);
    u->in = NULL;
    u->in_len = 0;
    if (u->counted) {
        u->counted = false;
        c->proxy->counts.upstream_connections_open--;
    }
    close_tcp(&u->tcp, reset && u->connected && !u->shutdown_sent);
}

static void conn_count_closed(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    if (!c->counted_open) return;
    c->counted_open = false;
    p->counts.connections_open--;
    if (p->cfg.on_connections) p->cfg.on_connections(p->cfg.on_connections_arg, (unsigned)p->counts.connections_open);
}

/* Closes both sides now. reset: the browser gets a RST (a response cut short must not look
 * complete to it). */
static void conn_close(conn_t *c, bool reset) {
    if (c->life == CONN_CLOSED) return;
    bool can_reset = reset && !c->shutdown_sent;
    c->life = CONN_CLOSED;
    c->reading = false;
    resolve_abandon(c);
    up_close(c, reset);
    chunk_unref(c->in);
    c->in = NULL;
    c->in_len = 0;
    close_tcp(&c->tcp, can_reset);
    net_lifetime_close((uv_handle_t *)&c->timer);
    conn_count_closed(c);
}

/* ---- writing ----------------------------------------------------------------------------------- */

static void count_write(traffic_proxy_t *p, const wreq_t *w) {
    if (w->up) {
        p->counts.to_upstream_bytes += w->len;
        return;
    }
    p->counts.to_browser_bytes += w->len;
    p->counts.payload_bytes += w->payload;
    if (w->kind == W_TUNNEL) p->counts.tunnel_bytes += w->len;
    if (w->kind == W_GENERATED) p->counts.generated_bytes += w->len;
}

static void wreq_free(wreq_t *w) {
    chunk_unref(w->chunk);
    free(w->owned);
    free(w);
}

static void on_up_failed(conn_t *c, int status);
static void tunnel_check_done(conn_t *c);
static void conn_shutdown_browser(conn_t *c);

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
    c->last_activity = now_ms(c);
    if (status < 0) {
        if (u) on_up_failed(c, status);
        else conn_close(c, false); /* the browser went away */
        return;
    }
    if (!u && c->life == CONN_FINISHING && c->writes == 0) {
        conn_shutdown_browser(c);
        return;
    }
    if (c->req_state == REQ_TUNNEL) tunnel_check_done(c);
    if (c->life == CONN_OPEN) conn_update(c);
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

/* ---- reading control ---------------------------------------------------------------------------- */

static void on_browser_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_browser_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void set_reading(uv_stream_t *s, bool *reading, bool want, uv_alloc_cb alloc, uv_read_cb read) {
    if (want && !*reading) {
        if (uv_read_start(s, alloc, read) == 0) *reading = true;
    } else if (!want && *reading) {
        uv_read_stop(s);
        *reading = false;
    }
}

static void browser_update_reading(conn_t *c) {
    bool want;
    if (c->life == CONN_CLOSED) return;
    if (c->life == CONN_LINGERING) want = true;
    else if (c->life == CONN_FINISHING || c->eof || c->in_len > 0) want = false;
    else {
        switch (c->req_state) {
        case REQ_HEAD:
        case REQ_DONE: /* one chunk at most: it shows a browser that gives up (EOF/reset) */
            want = true;
            break;
        case REQ_BODY: want = c->up && c->up->connected; break;
        case REQ_TUNNEL: want = c->resp_state == RESP_TUNNEL && c->up && !c->up->shutdown_sent; break;
        default: want = false;
        }
        if (want && backpressure(&c->read_paused, buffered_up(c), c->proxy)) want = false;
    }
    set_reading((uv_stream_t *)&c->tcp, &c->reading, want, on_browser_alloc, on_browser_read);
}

static void up_update_reading(conn_t *c) {
    upstream_t *u = c->up;
    if (!u || !u->connected || u->closing) return;
    bool want = c->life == CONN_OPEN && !u->eof && u->in_len == 0;
    if (want && c->resp_state != RESP_IDLE && backpressure(&u->read_paused, buffered_down(c), c->proxy)) want = false;
    set_reading((uv_stream_t *)&u->tcp, &u->reading, want, on_up_alloc, on_up_read);
}

/* ---- timers ------------------------------------------------------------------------------------- */

static uint64_t conn_deadline(const conn_t *c) {
    const traffic_proxy_config_t *cfg = &c->proxy->cfg;
    switch (c->life) {
    case CONN_LINGERING: return c->phase_start + LINGER_MS;
    case CONN_FINISHING: return c->last_activity + cfg->response_timeout_ms;
    case CONN_CLOSED: return UINT64_MAX;
    case CONN_OPEN: break;
    }
    switch (c->req_state) {
    case REQ_HEAD: return c->last_activity + cfg->idle_timeout_ms;
    case REQ_CONNECTING: return c->phase_start + cfg->connect_timeout_ms;
    case REQ_TUNNEL:
        if (c->resp_state == RESP_HANDSHAKE) return c->phase_start + cfg->connect_timeout_ms;
        return c->last_activity + cfg->tunnel_idle_timeout_ms;
    case REQ_BODY:
    case REQ_DONE: return c->last_activity + cfg->response_timeout_ms;
    }
    return UINT64_MAX;
}

static void on_timer(uv_timer_t *t);

static void conn_arm_timer(conn_t *c) {
    if (c->life == CONN_CLOSED) return;
    uint64_t deadline = conn_deadline(c), now = now_ms(c);
    uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

static void on_timer(uv_timer_t *t) {
    conn_t *c = t->data;
    if (c->life == CONN_CLOSED) return;
    uint64_t now = now_ms(c);
    if (conn_deadline(c) > now) { /* activity moved the deadline since the timer was set */
        conn_arm_timer(c);
        return;
    }
    const traffic_proxy_config_t *cfg = &c->proxy->cfg;
    if (c->life != CONN_OPEN) {
        conn_close(c, false);
        return;
    }
    switch (c->req_state) {
    case REQ_HEAD: conn_close(c, false); return; /* idle browser connection */
    case REQ_CONNECTING:
        if (c->resolve)
            send_error(c, 504, "ERR_NAME_RESOLUTION_TIMED_OUT", "Resolving %s took longer than %llu ms.",
                       c->via_proxy ? "the upstream proxy" : c->req.host.name, (unsigned long long)cfg->connect_timeout_ms);
        else
            send_error(c, 504, c->via_proxy ? "ERR_PROXY_CONNECTION_TIMED_OUT" : "ERR_CONNECTION_TIMED_OUT",
                       "Connecting to %s took longer than %llu ms.", c->via_proxy ? "the upstream proxy" : c->req.authority,
                       (unsigned long long)cfg->connect_timeout_ms);
        return;
    case REQ_TUNNEL:
        if (c->resp_state == RESP_HANDSHAKE)
            send_error(c, 504, "ERR_PROXY_CONNECTION_TIMED_OUT", "The upstream proxy did not answer CONNECT %s within %llu ms.",
                       c->req.authority, (unsigned long long)cfg->connect_timeout_ms);
        else conn_close(c, false);
        return;
    case REQ_BODY:
    case REQ_DONE:
        if (!c->final_head_sent)
            send_error(c, 504, "ERR_TIMED_OUT", "%s did not answer within %llu ms.", c->req.authority,
                       (unsigned long long)cfg->response_timeout_ms);
        else conn_close(c, true);
        return;
    }
}

/* Re-evaluates reading on both sides, the timer and the peaks: after anything happened. */
static void conn_update(conn_t *c) {
    if (c->life == CONN_CLOSED) return;
    browser_update_reading(c);
    up_update_reading(c);
    note_peaks(c);
    conn_arm_timer(c);
}

/* ---- ending a browser connection ------------------------------------------------------------------- */

static void on_browser_shutdown(uv_shutdown_t *req, int status) {
    conn_t *c = req->data;
    if (c->life == CONN_CLOSED) return;
    if (status < 0) {
        conn_close(c, false);
        return;
    }
    if (c->life == CONN_FINISHING && c->eof) {
        conn_close(c, false);
        return;
    }
    if (c->life == CONN_FINISHING) {
        c->life = CONN_LINGERING;
        c->phase_start = now_ms(c);
        conn_update(c);
        return;
    }
    if (c->req_state == REQ_TUNNEL) tunnel_check_done(c);
}

static void conn_shutdown_browser(conn_t *c) {
    if (c->shutdown_sent) return;
    if (c->eof && c->life == CONN_FINISHING) { /* nothing to linger for: the browser is done too */
        conn_close(c, false);
        return;
    }
    c->shutdown_sent = true;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_browser_shutdown) < 0) conn_close(c, false);
}

/* Ends the browser connection gracefully: what is queued is delivered, then FIN, a short
 * linger, close. The upstream side is closed now. */
static void conn_finish(conn_t *c) {
    if (c->life != CONN_OPEN) return;
    c->life = CONN_FINISHING;
    resolve_abandon(c);
    up_close(c, false);
    c->last_activity = now_ms(c);
    if (c->writes == 0) conn_shutdown_browser(c);
    conn_update(c);
}

static void send_error(conn_t *c, int status, const char *code, const char *fmt, ...) {
    if (c->life != CONN_OPEN) return;
    traffic_proxy_t *p = c->proxy;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status == 403) p->counts.refused_requests++;
    if (status == 502 || status == 504) p->counts.failed_requests++;
    log_event(p, status == 403 ? "refused" : "error", c->req.authority, code);
    resolve_abandon(c);
    up_close(c, false);
    buf_t b;
    buf_init(&b);
    if (proxy_http_error_response(&b, status, code, msg) < 0) {
        buf_free(&b);
        conn_close(c, true);
        return;
    }
    size_t len;
    char *data = buf_steal(&b, &len);
    if (queue_write(c, NULL, NULL, data, len, data, 0, W_GENERATED) < 0) {
        conn_close(c, true);
        return;
    }
    conn_finish(c);
}

/* ---- input bookkeeping ------------------------------------------------------------------------------ */

static void browser_consume(conn_t *c, size_t n) {
    c->in_off += n;
    c->in_len -= n;
    if (c->in_len == 0) {
        chunk_unref(c->in);
        c->in = NULL;
        c->in_off = 0;
    }
}

static void up_consume(upstream_t *u, size_t n) {
    u->in_off += n;
    u->in_len -= n;
    if (u->in_len == 0) {
        chunk_unref(u->in);
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

/* ---- body parsers' callbacks ---------------------------------------------------------------------- */

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

/* ---- the request side ------------------------------------------------------------------------------ */

static void start_exchange(conn_t *c);

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
        if (proxy_guard_check_raw(&p->guard, h->kind == PROXY_HOST_IPV4 ? AF_INET : AF_INET6, h->addr, &cls)) return true;
        send_error(c, 403, "ERR_BLOCKED_PRIVATE_NETWORK",
                   "%s is an address of the class '%s'; this session may not reach private networks.", h->name,
                   proxy_addr_class_name(cls));
        return false;
    }
    if (h->kind == PROXY_HOST_NAME && h->localhost && p->has_upstream) {
        /* An upstream proxy would resolve it on its own host: refuse unless loopback is open. */
        static const uint8_t lo[4] = {127, 0, 0, 1};
        if (proxy_guard_check_raw(&p->guard, AF_INET, lo, &cls)) return true;
        send_error(c, 403, "ERR_BLOCKED_PRIVATE_NETWORK", "%s names this machine (loopback); this session may not reach it.",
                   h->name);
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
        send_error(c, status, status == 505 ? "ERR_HTTP_VERSION_NOT_SUPPORTED" : "ERR_INVALID_REQUEST", "%s", err);
        return;
    }
    if (!guard_literal(c)) return;
    target_key(c, c->connect_key, sizeof c->connect_key);
    upstream_t *u = c->up;
    if (u && u->connected && !u->eof && !c->req.is_connect && strcmp(u->key, c->connect_key) == 0) {
        u->reused = true;
        c->retry_ok = c->req.complete; /* a keep-alive connection the site closed meanwhile */
        start_exchange(c);
        return;
    }
    up_close(c, false);
    begin_connect(c);
}

static void fail_connect(conn_t *c);

/* Fills c->addrs from an addrinfo list, keeping what the guard allows (direct mode). Returns
 * false when it has answered 403. */
static bool take_addresses(conn_t *c, const struct addrinfo *res) {
    traffic_proxy_t *p = c->proxy;
    bool check = !c->via_proxy && p->guard.enabled;
    proxy_addr_class_t refused_cls = PROXY_ADDR_PUBLIC;
    char refused[INET6_ADDRSTRLEN] = "";
    c->addr_count = c->addr_next = 0;
    for (const struct addrinfo *ai = res; ai && c->addr_count < MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        proxy_addr_class_t cls;
        if (check && !proxy_guard_check(&p->guard, ai->ai_addr, &cls)) {
            if (!refused[0]) {
                refused_cls = cls;
                const void *a = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                         : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
                inet_ntop(ai->ai_family, a, refused, sizeof refused);
            }
            continue;
        }
        memcpy(&c->addrs[c->addr_count++], ai->ai_addr, ai->ai_addrlen);
    }
    if (c->addr_count == 0 && refused[0]) {
        send_error(c, 403, "ERR_BLOCKED_PRIVATE_NETWORK",
                   "%s resolves to %s, an address of the class '%s'; this session may not reach private networks.",
                   c->req.host.name,
                   refused, proxy_addr_class_name(refused_cls));
        return false;
    }
    if (c->addr_count == 0) {
        send_error(c, 502, "ERR_NAME_NOT_RESOLVED", "%s has no IPv4 or IPv6 address.", c->req.host.name);
        return false;
    }
    return true;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    resolve_t *r = (resolve_t *)req;
    conn_t *c = r->conn;
    free(r);
    if (!c) { /* abandoned: the connection is gone or stopped waiting */
        if (res) uv_freeaddrinfo(res);
        return;
    }
    c->resolve = NULL;
    c->proxy->stats.pending_resolutions--;
    if (status < 0) {
        if (c->via_proxy)
            send_error(c, 502, "ERR_PROXY_CONNECTION_FAILED", "The upstream proxy's name %s could not be resolved (%s).",
                       c->proxy->upstream.host, uv_strerror(status));
        else
            send_error(c, 502, "ERR_NAME_NOT_RESOLVED", "The name %s could not be resolved (%s).", c->req.host.name,
                       uv_strerror(status));
        if (res) uv_freeaddrinfo(res);
        return;
    }
    bool ok = take_addresses(c, res);
    uv_freeaddrinfo(res);
    if (ok) try_connect(c);
}

static void set_addr(struct sockaddr_storage *ss, int family, const uint8_t *addr, uint16_t port) {
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, addr, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        memcpy(&in6->sin6_addr, addr, 16);
    }
}

static void begin_connect(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    c->req_state = REQ_CONNECTING;
    c->phase_start = now_ms(c);
    c->last_error = 0;
    const proxy_host_t *h = c->via_proxy ? &p->upstream_host : &c->req.host;
    uint16_t port = c->via_proxy ? p->upstream.port : c->req.port;
    if (h->kind == PROXY_HOST_IPV4 || h->kind == PROXY_HOST_IPV6) {
        /* A literal: no resolution; the guard already passed it (or it is the upstream proxy). */
        set_addr(&c->addrs[0], h->kind == PROXY_HOST_IPV4 ? AF_INET : AF_INET6, h->addr, port);
        c->addr_count = 1;
        c->addr_next = 0;
        try_connect(c);
        return;
    }
    if (!c->via_proxy && h->localhost) {
        /* RFC 6761: localhost names are this machine, whatever a DNS server says. */
        static const uint8_t lo4[4] = {127, 0, 0, 1};
        static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        struct sockaddr_storage ss[2];
        set_addr(&ss[0], AF_INET, lo4, port);
        set_addr(&ss[1], AF_INET6, lo6, port);
        struct addrinfo ai[2];
        memset(ai, 0, sizeof ai);
        ai[0].ai_family = AF_INET;
        ai[0].ai_addr = (struct sockaddr *)&ss[0];
        ai[0].ai_addrlen = sizeof(struct sockaddr_in);
        ai[0].ai_next = &ai[1];
        ai[1].ai_family = AF_INET6;
        ai[1].ai_addr = (struct sockaddr *)&ss[1];
        ai[1].ai_addrlen = sizeof(struct sockaddr_in6);
        if (take_addresses(c, ai)) try_connect(c);
        return;
    }
    resolve_t *r = calloc(1, sizeof *r);
    if (!r) {
        send_error(c, 502, "ERR_INSUFFICIENT_RESOURCES", "Out of memory.");
        return;
    }
    r->conn = c;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = resolve_fn(p->loop, &r->req, on_resolved, h->name, service, &hints);
    if (rc < 0) {
        free(r);
        send_error(c, 502, "ERR_NAME_NOT_RESOLVED", "The name %s could not be resolved (%s).", h->name, uv_strerror(rc));
        return;
    }
    c->resolve = r;
    p->stats.pending_resolutions++;
    conn_update(c);
}

static void on_up_connected(uv_connect_t *req, int status);

static void try_connect(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    while (c->life == CONN_OPEN && c->addr_next < c->addr_count) {
        upstream_t *u = calloc(1, sizeof *u);
        if (!u) {
            c->last_error = UV_ENOMEM;
            break;
        }
        if (uv_tcp_init(p->loop, &u->tcp) < 0) {
            free(u);
            c->last_error = UV_ENOMEM;
            break;
        }
        u->tcp.data = u;
        u->conn = c;
        net_lifetime_init(&u->lifetime, 1, up_release); /* the socket */
        net_lifetime_ref(&c->lifetime);                 /* until up_release */
        snprintf(u->key, sizeof u->key, "%s", c->connect_key);
        c->up = u;
        const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[c->addr_next++];
        int rc = connect_fn(&u->connect_req, &u->tcp, sa, on_up_connected);
        if (rc == 0) {
            conn_update(c);
            return;
        }
        c->last_error = rc;
        up_close(c, false);
    }
    if (c->life == CONN_OPEN) fail_connect(c);
}

static void fail_connect(conn_t *c) {
    int e = c->last_error;
    const char *what = c->via_proxy ? "the upstream proxy" : c->req.authority;
    if (e == UV_ETIMEDOUT) {
        send_error(c, 504, c->via_proxy ? "ERR_PROXY_CONNECTION_TIMED_OUT" : "ERR_CONNECTION_TIMED_OUT",
                   "Connecting to %s timed out.", what);
        return;
    }
    const char *code = "ERR_CONNECTION_FAILED";
    if (e == UV_ECONNREFUSED) code = "ERR_CONNECTION_REFUSED";
    else if (e == UV_ECONNRESET) code = "ERR_CONNECTION_RESET";
    else if (e == UV_ENETUNREACH || e == UV_EHOSTUNREACH) code = "ERR_ADDRESS_UNREACHABLE";
    if (c->via_proxy) code = "ERR_PROXY_CONNECTION_FAILED";
    send_error(c, 502, code, "Could not connect to %s: %s.", what, e ? uv_strerror(e) : "no address");
}

static void on_up_connected(uv_connect_t *req, int status) {
    upstream_t *u = req->handle->data;
    if (u->closing) return;
    conn_t *c = u->conn;
    if (status < 0) {
        c->last_error = status;
        up_close(c, false);
        try_connect(c);
        return;
    }
    u->connected = true;
    u->counted = true;
    c->proxy->counts.upstream_connections_open++;
    uv_tcp_nodelay(&u->tcp, 1);
    c->last_activity = now_ms(c);
    start_exchange(c);
}

/* The upstream connection is ready (new or kept alive): send the request on. */
static void start_exchange(conn_t *c) {
    upstream_t *u = c->up;
    c->last_activity = now_ms(c);
    c->phase_start = c->last_activity;
    if (c->req.is_connect && !c->via_proxy) {
        c->req_state = REQ_TUNNEL;
        c->resp_state = RESP_TUNNEL;
        if (queue_write(c, NULL, NULL, connect_established, sizeof connect_established - 1, NULL, 0, W_GENERATED) < 0) {
            conn_close(c, true);
            return;
        }
        conn_process(c);
        up_process(c);
        return;
    }
    if (queue_copy(c, u, c->out_head.data, c->out_head.len, W_RELAY) < 0) {
        conn_close(c, true);
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
    conn_process(c);
    up_process(c);
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
            send_error(c, 431, "ERR_REQUEST_HEAD_TOO_LARGE", "The request line and headers exceed %zu bytes.",
                       p->cfg.max_head_bytes);
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
            log_event(p, "bad_request_body", c->req.authority, http_errno_description(HTTP_PARSER_ERRNO(&c->req_parser)));
            conn_close(c, true);
            return false;
        }
        p->counts.payload_bytes += c->payload_acc;
        bool done = c->msg_done;
        if (queue_write(c, u, c->in, data, (size_t)used, NULL, 0, W_RELAY) < 0) {
            conn_close(c, true);
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
            conn_close(c, true);
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

static void conn_process(conn_t *c) {
    if (c->processing) return; /* the outer call's loop picks the new state up */
    c->processing = true;
    while (c->life == CONN_OPEN && c->in_len > 0 && request_step(c)) {
    }
    c->processing = false;
    conn_update(c);
}

/* ---- the response side --------------------------------------------------------------------------- */

/* The response is complete: keep the site connection for the next request if both ends allow
 * it, else end what must end. */
static void exchange_done(conn_t *c) {
    upstream_t *u = c->up;
    bool up_reusable = u && c->resp.keep_alive && u->in_len == 0 && !u->eof;
    bool browser_goes_on = c->req.keep_alive && c->resp.keep_alive && c->req_state == REQ_DONE && !c->eof;
    c->resp_state = RESP_IDLE;
    buf_reset(&c->out_head);
    if (!up_reusable) up_close(c, false);
    if (!browser_goes_on) {
        conn_finish(c);
        return;
    }
    c->req_state = REQ_HEAD;
    c->last_activity = now_ms(c);
    conn_process(c); /* the next request may be waiting in the input */
}

static void on_response_head(conn_t *c, size_t head_len) {
    traffic_proxy_t *p = c->proxy;
    bool handshake = c->resp_state == RESP_HANDSHAKE;
    http_parser_init(&c->resp_parser, HTTP_RESPONSE);
    if (proxy_http_parse_response_head(&c->resp_parser, c->resp_head.data, head_len,
                                       handshake || c->req.is_head_method, &c->resp) < 0) {
        if (handshake) send_error(c, 502, "ERR_TUNNEL_CONNECTION_FAILED", "The upstream proxy answered CONNECT with something that is not HTTP.");
        else send_error(c, 502, "ERR_INVALID_HTTP_RESPONSE", "%s sent a malformed response head.", c->req.authority);
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
            if (queue_write(c, NULL, NULL, connect_established, sizeof connect_established - 1, NULL, 0, W_GENERATED) < 0) {
                conn_close(c, true);
                return;
            }
            conn_process(c); /* bytes the browser sent after CONNECT */
            return;
        }
        if (status == 407)
            send_error(c, 502, "ERR_PROXY_AUTH_REQUESTED",
                       "The upstream proxy asked for credentials (407 Proxy Authentication Required): %s.",
                       p->upstream.has_credentials ? "the configured ones were refused" : "none are configured");
        else
            send_error(c, 502, "ERR_TUNNEL_CONNECTION_FAILED", "The upstream proxy refused CONNECT %s with status %u.",
                       c->req.authority, status);
        return;
    }
    if (status == 407) {
        /* Passed on, it would make the browser ask its user for credentials for this proxy. */
        if (c->via_proxy)
            send_error(c, 502, "ERR_PROXY_AUTH_REQUESTED",
                       "The upstream proxy asked for credentials (407 Proxy Authentication Required): %s.",
                       p->upstream.has_credentials ? "the configured ones were refused" : "none are configured");
        else
            send_error(c, 502, "ERR_UNEXPECTED_PROXY_AUTH", "%s answered 407 Proxy Authentication Required, which a proxy cannot pass on.",
                       c->req.authority);
        return;
    }
    if (status == 101 && !(c->resp.upgrade && c->req.upgrade)) {
        send_error(c, 502, "ERR_INVALID_HTTP_RESPONSE", "%s switched protocols without being asked to.", c->req.authority);
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
        conn_close(c, true);
        return;
    }
    if (status == 101) {
        c->final_head_sent = true;
        c->req_state = REQ_TUNNEL;
        c->resp_state = RESP_TUNNEL;
        conn_process(c);
        return;
    }
    if (status < 200) return; /* interim (100 Continue, 103): the final response follows */
    c->final_head_sent = true;
    if (c->resp.complete) {
        exchange_done(c);
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
        up_close(c, false);
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
            send_error(c, 502, "ERR_RESPONSE_HEADERS_TOO_BIG", "%s sent a response head over %zu bytes.",
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
            log_event(p, "bad_response_body", c->req.authority, http_errno_description(HTTP_PARSER_ERRNO(&c->resp_parser)));
            conn_close(c, true);
            return false;
        }
        bool done = c->msg_done;
        if (queue_write(c, NULL, u->in, data, (size_t)used, NULL, c->payload_acc, W_RELAY) < 0) {
            conn_close(c, true);
            return false;
        }
        up_consume(u, (size_t)used);
        if (done) exchange_done(c);
        return true;
    }
    case RESP_TUNNEL:
        if (queue_write(c, NULL, u->in, data, n, NULL, 0, W_TUNNEL) < 0) {
            conn_close(c, true);
            return false;
        }
        up_consume(u, n);
        return true;
    }
    return false;
}

static void up_process(conn_t *c) {
    while (c->life == CONN_OPEN && c->up && c->up->in_len > 0 && response_step(c)) {
    }
    conn_update(c);
}

/* ---- upstream events ------------------------------------------------------------------------------ */

static void tunnel_check_done(conn_t *c) {
    upstream_t *u = c->up;
    if (c->life != CONN_OPEN || !u) return;
    if (c->eof && u->eof && c->writes == 0 && u->writes == 0) conn_close(c, false);
}

static void on_up_shutdown(uv_shutdown_t *req, int status) {
    upstream_t *u = req->data;
    if (u->closing) return;
    conn_t *c = u->conn;
    if (status < 0) {
        conn_close(c, true);
        return;
    }
    tunnel_check_done(c);
}

/* The upstream connection ended (EOF when status == UV_EOF) or failed. */
static void on_up_failed(conn_t *c, int status) {
    upstream_t *u = c->up;
    bool eof = status == UV_EOF;
    switch (c->resp_state) {
    case RESP_IDLE: /* a kept-alive connection the site closed: forget it */
        up_close(c, false);
        conn_update(c);
        return;
    case RESP_HANDSHAKE:
        send_error(c, 502, "ERR_TUNNEL_CONNECTION_FAILED", "The upstream proxy %s before answering CONNECT %s.",
                   eof ? "closed the connection" : uv_strerror(status), c->req.authority);
        return;
    case RESP_HEAD:
        if (c->retry_ok && u->reused && c->resp_head.len == 0 && !c->final_head_sent) {
            /* The site closed a kept-alive connection just as we reused it: once more on a new one. */
            c->retry_ok = false;
            up_close(c, false);
            begin_connect(c);
            return;
        }
        if (c->final_head_sent) { /* only interim responses went out */
            conn_close(c, true);
            return;
        }
        if (eof)
            send_error(c, 502, c->resp_head.len ? "ERR_INVALID_HTTP_RESPONSE" : "ERR_EMPTY_RESPONSE",
                       "%s closed the connection without a complete response.",
                       c->via_proxy ? "The upstream proxy" : c->req.authority);
        else
            send_error(c, 502, status == UV_ECONNRESET ? "ERR_CONNECTION_RESET" : "ERR_CONNECTION_FAILED",
                       "The connection to %s failed before a response: %s.", c->via_proxy ? "the upstream proxy" : c->req.authority,
                       uv_strerror(status));
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
                exchange_done(c);
                return;
            }
        }
        log_event(c->proxy, "response_cut", c->req.authority, eof ? "eof" : uv_strerror(status));
        conn_close(c, true);
        return;
    case RESP_TUNNEL:
        if (!eof) {
            conn_close(c, true); /* pass the reset on: TLS must see the abort */
            return;
        }
        u->eof = true;
        conn_shutdown_browser(c); /* after what is queued; then the browser may still send */
        tunnel_check_done(c);
        conn_update(c);
        return;
    }
}

static void on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    upstream_t *u = h->data;
    conn_t *c = u->conn;
    alloc_chunk(c->resp_state == RESP_IDLE ? 0 : buffered_down(c), c->proxy, buf);
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    upstream_t *u = s->data;
    chunk_t *ch = buf->base ? chunk_of(buf->base) : NULL;
    if (u->closing) {
        chunk_unref(ch);
        return;
    }
    conn_t *c = u->conn;
    if (nread > 0) {
        c->proxy->counts.from_upstream_bytes += (uint64_t)nread;
        c->last_activity = now_ms(c);
        u->in = ch;
        u->in_off = 0;
        u->in_len = (size_t)nread;
        up_process(c);
        return;
    }
    chunk_unref(ch);
    if (nread == 0 || nread == UV_ENOBUFS) {
        conn_update(c);
        return;
    }
    u->reading = false;
    uv_read_stop(s);
    on_up_failed(c, (int)nread);
}

/* ---- browser events ------------------------------------------------------------------------------- */

static void on_browser_eof(conn_t *c) {
    c->eof = true;
    switch (c->life) {
    case CONN_LINGERING:
    case CONN_FINISHING: conn_close(c, false); return;
    case CONN_CLOSED: return;
    case CONN_OPEN: break;
    }
    switch (c->req_state) {
    case REQ_HEAD:
        if (c->head.len == 0) conn_finish(c); /* between requests: a normal end */
        else conn_close(c, false);
        return;
    case REQ_CONNECTING:
        /* A client that half-closes after a complete request still waits for the answer. */
        if (!c->req.complete || c->req.is_connect) conn_close(c, false);
        else conn_update(c);
        return;
    case REQ_BODY: conn_close(c, true); return; /* the request was cut short */
    case REQ_DONE: conn_update(c); return;
    case REQ_TUNNEL: {
        upstream_t *u = c->up;
        if (c->resp_state != RESP_TUNNEL || !u) {
            conn_close(c, false);
            return;
        }
        if (!u->shutdown_sent) {
            u->shutdown_sent = true;
            u->shutdown_req.data = u;
            if (uv_shutdown(&u->shutdown_req, (uv_stream_t *)&u->tcp, on_up_shutdown) < 0) {
                conn_close(c, true);
                return;
            }
        }
        tunnel_check_done(c);
        conn_update(c);
        return;
    }
    }
}

static void on_browser_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    conn_t *c = h->data;
    /* Lingering: what arrives is dropped at once, so it needs no room under the watermark. */
    alloc_chunk(c->life == CONN_LINGERING ? 0 : buffered_up(c), c->proxy, buf);
}

static void on_browser_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    conn_t *c = s->data;
    chunk_t *ch = buf->base ? chunk_of(buf->base) : NULL;
    if (c->life == CONN_CLOSED) {
        chunk_unref(ch);
        return;
    }
    if (nread > 0) {
        c->proxy->counts.from_browser_bytes += (uint64_t)nread;
        c->last_activity = now_ms(c);
        if (c->life != CONN_OPEN) { /* lingering: read and dropped */
            chunk_unref(ch);
            return;
        }
        c->in = ch;
        c->in_off = 0;
        c->in_len = (size_t)nread;
        conn_process(c);
        return;
    }
    chunk_unref(ch);
    if (nread == 0 || nread == UV_ENOBUFS) {
        conn_update(c);
        return;
    }
    c->reading = false;
    uv_read_stop(s);
    if (nread == UV_EOF) on_browser_eof(c);
    else conn_close(c, true); /* reset or error: pass it on */
}

/* ---- the listener ------------------------------------------------------------------------------------ */

static void on_connection(uv_stream_t *server, int status) {
    traffic_proxy_t *p = server->data;
    if (status < 0 || p->stopping) return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c) return;
    if (uv_tcp_init(p->loop, &c->tcp) < 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->proxy = p;
    net_lifetime_init(&c->lifetime, 1, conn_release); /* the socket */
    p->conn_alloc++;
    c->next = p->conns;
    if (p->conns) p->conns->prev = c;
    p->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        c->life = CONN_CLOSED;
        net_lifetime_close((uv_handle_t *)&c->tcp);
        return;
    }
    uv_timer_init(p->loop, &c->timer);
    c->timer.data = c;
    net_lifetime_ref(&c->lifetime); /* the timer */
    buf_init(&c->head);
    buf_init(&c->out_head);
    buf_init(&c->resp_head);
    p->counts.connections_accepted++;
    if (p->counts.connections_open >= p->cfg.max_connections) {
        log_event(p, "too_many_connections", NULL, "closed at accept");
        conn_close(c, false);
        return;
    }
    c->counted_open = true;
    p->counts.connections_open++;
    if (p->cfg.on_connections) p->cfg.on_connections(p->cfg.on_connections_arg, (unsigned)p->counts.connections_open);
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_activity = now_ms(c);
    c->req_state = REQ_HEAD;
    c->resp_state = RESP_IDLE;
    conn_update(c);
}

/* ---- configuration and the public functions ---------------------------------------------------------- */

void traffic_proxy_config_defaults(traffic_proxy_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->guard_private = true;
    cfg->connect_timeout_ms = 15 * 1000;
    cfg->response_timeout_ms = 120 * 1000;
    cfg->idle_timeout_ms = 60 * 1000;
    cfg->tunnel_idle_timeout_ms = 600 * 1000;
    cfg->max_head_bytes = 64 * 1024;
    cfg->high_watermark = 512 * 1024;
    cfg->low_watermark = 128 * 1024;
    cfg->max_connections = 512;
}

/* The config with zero fields replaced by their defaults. */
static traffic_proxy_config_t effective_config(const traffic_proxy_config_t *in) {
    traffic_proxy_config_t d, c = *in;
    traffic_proxy_config_defaults(&d);
    if (!c.connect_timeout_ms) c.connect_timeout_ms = d.connect_timeout_ms;
    if (!c.response_timeout_ms) c.response_timeout_ms = d.response_timeout_ms;
    if (!c.idle_timeout_ms) c.idle_timeout_ms = d.idle_timeout_ms;
    if (!c.tunnel_idle_timeout_ms) c.tunnel_idle_timeout_ms = d.tunnel_idle_timeout_ms;
    if (!c.max_head_bytes) c.max_head_bytes = d.max_head_bytes;
    if (!c.high_watermark) c.high_watermark = d.high_watermark;
    if (!c.low_watermark) c.low_watermark = d.low_watermark;
    if (!c.max_connections) c.max_connections = d.max_connections;
    return c;
}

static int check_config(const traffic_proxy_config_t *cfg, proxy_guard_t *guard, proxy_upstream_t *up, bool *has_up,
                        char *err, size_t err_cap) {
    traffic_proxy_config_t c = effective_config(cfg);
    if (c.max_head_bytes < 1024) {
        snprintf(err, err_cap, "max_head_bytes must be at least 1024");
        return -EINVAL;
    }
    if (c.low_watermark < c.max_head_bytes + READ_MIN || c.low_watermark >= c.high_watermark) {
        snprintf(err, err_cap, "watermarks need max_head_bytes + %u <= low_watermark < high_watermark", READ_MIN);
        return -EINVAL;
    }
    if (c.allow_private_count > PROXY_GUARD_MAX_CIDRS) {
        snprintf(err, err_cap, "at most %d allowed private ranges", PROXY_GUARD_MAX_CIDRS);
        return -EINVAL;
    }
    memset(guard, 0, sizeof *guard);
    guard->enabled = c.guard_private;
    for (size_t i = 0; i < c.allow_private_count; i++) {
        char why[200];
        if (!c.allow_private || proxy_guard_parse_cidr(c.allow_private[i], &guard->cidrs[i], why, sizeof why) < 0) {
            snprintf(err, err_cap, "allow_private: %s", c.allow_private ? why : "missing list");
            return -EINVAL;
        }
        guard->cidr_count++;
    }
    *has_up = c.upstream_proxy && *c.upstream_proxy;
    if (*has_up) {
        char why[200];
        if (proxy_upstream_parse(c.upstream_proxy, up, why, sizeof why) < 0) {
            snprintf(err, err_cap, "upstream_proxy: %s", why);
            return -EINVAL;
        }
    } else {
        memset(up, 0, sizeof *up);
    }
    return 0;
}

int traffic_proxy_config_check(const traffic_proxy_config_t *cfg, char *err, size_t err_cap) {
    proxy_guard_t *guard = malloc(sizeof *guard);
    proxy_upstream_t up;
    bool has_up;
    if (!guard) return -ENOMEM;
    int rc = check_config(cfg, guard, &up, &has_up, err, err_cap);
    free(guard);
    return rc;
}

int traffic_proxy_set_upstream(traffic_proxy_t *p, const char *url, char *err, size_t err_cap) {
    if (!url || !*url) {
        p->has_upstream = false;
        p->upstream_generation++;
        return 0;
    }
    proxy_upstream_t up;
    proxy_host_t host;
    if (proxy_upstream_parse(url, &up, err, err_cap) < 0 ||
        proxy_guard_parse_host(up.host, strlen(up.host), &host, err, err_cap) < 0)
        return -EINVAL;
    p->upstream = up;
    p->upstream_host = host;
    p->has_upstream = true;
    p->upstream_generation++;
    return 0;
}

void traffic_proxy_set_tag(traffic_proxy_t *p, const char *tag) {
    snprintf(p->tag, sizeof p->tag, "%s", tag ? tag : "");
}

static void on_listener_closed_after_failure(uv_handle_t *h) { free(h->data); }

int traffic_proxy_start(uv_loop_t *loop, const traffic_proxy_config_t *cfg, traffic_proxy_t **out) {
    char err[256];
    traffic_proxy_t *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    int rc = check_config(cfg, &p->guard, &p->upstream, &p->has_upstream, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "module=proxy event=bad_config detail=\"%s\"\n", err);
        free(p);
        return rc;
    }
    if (p->has_upstream && proxy_guard_parse_host(p->upstream.host, strlen(p->upstream.host), &p->upstream_host, err, sizeof err) < 0) {
        free(p);
        return -EINVAL;
    }
    p->cfg = effective_config(cfg);
    p->cfg.allow_private = NULL;
    p->cfg.allow_private_count = 0;
    p->cfg.upstream_proxy = NULL;
    p->cfg.session_tag = NULL;
    if (cfg->session_tag) snprintf(p->tag, sizeof p->tag, "%s", cfg->session_tag);
    p->loop = loop;
    /* libuv writes with write(2): a browser that went away must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    rc = uv_tcp_init(loop, &p->listener);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->listener.data = p;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    rc = uv_tcp_bind(&p->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&p->listener, LISTEN_BACKLOG, on_connection);
    if (rc == 0) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        rc = uv_tcp_getsockname(&p->listener, (struct sockaddr *)&ss, &len);
        if (rc == 0) p->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (rc < 0) {
        uv_close((uv_handle_t *)&p->listener, on_listener_closed_after_failure);
        return rc;
    }
    *out = p;
    return 0;
}

int traffic_proxy_port(const traffic_proxy_t *p) { return p->port; }

void traffic_proxy_counts(const traffic_proxy_t *p, traffic_counts_t *out) {
    *out = p->counts;
    out->total_bytes = out->from_browser_bytes + out->to_browser_bytes;
    out->overhead_bytes = out->total_bytes >= out->payload_bytes ? out->total_bytes - out->payload_bytes : 0;
}

void traffic_proxy_get_stats(const traffic_proxy_t *p, traffic_proxy_stats_t *out) {
    *out = p->stats;
    out->buffered_to_upstream = 0;
    out->buffered_to_browser = 0;
    for (const conn_t *c = p->conns; c; c = c->next) {
        if (c->life == CONN_CLOSED) continue;
        out->buffered_to_upstream += buffered_up(c);
        out->buffered_to_browser += buffered_down(c);
    }
}

static void proxy_maybe_finish_stop(traffic_proxy_t *p) {
    if (!p->stopping || !p->listener_closed || p->conns) return;
    void (*cb)(void *) = p->on_stopped;
    void *arg = p->stopped_arg;
    free(p);
    if (cb) cb(arg);
}

static void on_listener_closed(uv_handle_t *h) {
    traffic_proxy_t *p = h->data;
    p->listener_closed = true;
    proxy_maybe_finish_stop(p);
}

void traffic_proxy_stop(traffic_proxy_t *p, void (*on_stopped)(void *arg), void *arg) {
    if (p->stopping) return;
    p->stopping = true;
    p->on_stopped = on_stopped;
    p->stopped_arg = arg;
    for (conn_t *c = p->conns; c; c = c->next) conn_close(c, false);
    uv_close((uv_handle_t *)&p->listener, on_listener_closed);
}
