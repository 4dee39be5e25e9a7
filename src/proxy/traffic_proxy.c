/* The traffic proxy's listener and browser connections: accept, reading and backpressure on
 * both sides, timers, finishing and closing; the public functions. See proxy_internal.h. */
#include "core/log.h"
#include "proxy/traffic_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "net/lifetime.h"
#include "proxy/proxy_guard.h"
#include "proxy/proxy_internal.h"
#include "proxy/proxy_upstream.h"

#define READ_CHUNK (256u * 1024u)
#define READ_MIN (4u * 1024u)
#define LINGER_MS 2000u
#define LISTEN_BACKLOG 128

/* ---- small helpers ----------------------------------------------------------------------------- */

static chunk_t *chunk_of(char *data) { return (chunk_t *)(data - offsetof(chunk_t, data)); }

void proxy_log_event(const traffic_proxy_t *p, const char *event, const char *target, const char *detail) {
    log_level_t level = strcmp(event, "refused") == 0 || strcmp(event, "too_many_connections") == 0 ? LOG_WARN : LOG_INFO;
    if (!target) target = "";
    if (!detail) detail = "";
    /* A browser of the pool, before any session: Chromium's own background requests (updates,
     * sign-in, search engines) fail the same way dozens of times a minute; the first of a kind
     * is shown, the rest counted (all idle browsers together). A session's lines all show. */
    char key[320];
    snprintf(key, sizeof key, "%s|%s", target, detail);
    log_event_keyed(level, "proxy", event, p->tag[0] ? NULL : key, "session=%s port=%d target=\"%s\" detail=\"%s\"",
                    p->tag[0] ? p->tag : "-", p->port, target, detail);
}

static size_t buffered_up(const conn_t *c) {
    return (c->up ? c->up->pending : 0) + c->in_len + c->head.len + c->to_up.in_pipe;
}

static size_t buffered_down(const conn_t *c) {
    return c->pending + (c->up ? c->up->in_len : 0) + c->resp_head.len + c->to_browser.in_pipe;
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

/* Full-size read chunks freed on this thread, kept for its next reads: glibc gives a freed block
 * at the heap's top back to the kernel, and the next read then page-faults the same memory in
 * again (a fifth of the proxy's CPU in a download went to those faults). Bounded, and emptied
 * when the thread's last proxy is released, so that nothing outlives the proxies. */
#define SPARE_CHUNKS 8u
static _Thread_local struct {
    chunk_t *list[SPARE_CHUNKS];
    unsigned count;
    unsigned proxies_alive;
} spares;

void proxy_chunk_release(chunk_t *ch) {
    if (ch->cap == READ_CHUNK && spares.count < SPARE_CHUNKS) spares.list[spares.count++] = ch;
    else free(ch);
}

static void spares_free(void) {
    while (spares.count) free(spares.list[--spares.count]);
}

static chunk_t *chunk_new(size_t size) {
    if (size == READ_CHUNK && spares.count) return spares.list[--spares.count];
    return malloc(sizeof(chunk_t) + size);
}

static void alloc_chunk(size_t buffered, const traffic_proxy_t *p, uv_buf_t *buf) {
    size_t room = buffered < p->cfg.high_watermark ? p->cfg.high_watermark - buffered : 0;
    size_t size = room < READ_CHUNK ? room : READ_CHUNK;
    chunk_t *ch = size ? chunk_new(size) : NULL;
    if (!ch) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to the read callback */
        return;
    }
    ch->refs = 1;
    ch->cap = size;
    *buf = uv_buf_init(ch->data, (unsigned)size);
}

/* ---- connection lifetime ----------------------------------------------------------------------- */

static void conn_release(net_lifetime_t *life) {
    conn_t *c = (conn_t *)life;
    traffic_proxy_t *p = c->proxy;
    proxy_chunk_unref(c->in);
    buf_free(&c->head);
    buf_free(&c->out_head);
    buf_free(&c->resp_head);
    if (c->prev) c->prev->next = c->next;
    else p->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
    net_lifetime_unref(&p->lifetime);
}

/* net_lifetime_close's callback for uv_tcp_close_reset, which net/lifetime.h has no variant of. */
static void on_reset_closed(uv_handle_t *h) { net_lifetime_unref(h->data); }

void proxy_close_tcp(uv_tcp_t *tcp, bool reset) {
    if (reset && uv_tcp_close_reset(tcp, on_reset_closed) == 0) return;
    net_lifetime_close((uv_handle_t *)tcp);
}

static void conn_count_closed(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    if (!c->counted_open) return;
    c->counted_open = false;
    p->counts.connections_open--;
    if (p->cfg.on_connections) p->cfg.on_connections(p->cfg.on_connections_arg, (unsigned)p->counts.connections_open);
}

void proxy_conn_close(conn_t *c, bool reset) {
    if (c->life == CONN_CLOSED) return;
    bool can_reset = reset && !c->shutdown_sent;
    c->life = CONN_CLOSED;
    c->reading = false;
    proxy_splice_stop(c);
    proxy_upstream_abandon_resolve(c);
    proxy_upstream_close(c, reset);
    proxy_chunk_unref(c->in);
    c->in = NULL;
    c->in_len = 0;
    proxy_splice_close_poll(&c->poll, &c->poll_inited); /* before the socket: it watches its fd */
    proxy_close_tcp(&c->tcp, can_reset);
    net_lifetime_close((uv_handle_t *)&c->timer);
    conn_count_closed(c);
}

/* ---- reading control --------------------------------------------------------------------------- */

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

/* hold: splice mode waits for the bytes already read from the site to be delivered. */
static void up_update_reading(conn_t *c, bool hold) {
    upstream_t *u = c->up;
    if (!u || !u->connected || u->closing) return;
    bool want = c->life == CONN_OPEN && !u->eof && u->in_len == 0 && !hold;
    if (want && c->resp_state != RESP_IDLE && backpressure(&u->read_paused, buffered_down(c), c->proxy)) want = false;
    set_reading((uv_stream_t *)&u->tcp, &u->reading, want, on_up_alloc, on_up_read);
}

/* ---- timers ------------------------------------------------------------------------------------ */

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
    uint64_t deadline = conn_deadline(c), now = proxy_now(c);
    uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

static void on_timer(uv_timer_t *t) {
    conn_t *c = t->data;
    if (c->life == CONN_CLOSED) return;
    uint64_t now = proxy_now(c);
    if (conn_deadline(c) > now) { /* activity moved the deadline since the timer was set */
        conn_arm_timer(c);
        return;
    }
    const traffic_proxy_config_t *cfg = &c->proxy->cfg;
    if (c->life != CONN_OPEN) {
        proxy_conn_close(c, false);
        return;
    }
    switch (c->req_state) {
    case REQ_HEAD: proxy_conn_close(c, false); return; /* idle browser connection */
    case REQ_CONNECTING:
        if (c->resolve)
            proxy_exchange_send_error(c, 504, "ERR_NAME_RESOLUTION_TIMED_OUT", "Resolving %s took longer than %llu ms.",
                                      c->via_proxy ? "the upstream proxy" : c->req.host.name,
                                      (unsigned long long)cfg->connect_timeout_ms);
        else
            proxy_exchange_send_error(
                c, 504, c->via_proxy ? "ERR_PROXY_CONNECTION_TIMED_OUT" : "ERR_CONNECTION_TIMED_OUT",
                "Connecting to %s took longer than %llu ms.", c->via_proxy ? "the upstream proxy" : c->req.authority,
                (unsigned long long)cfg->connect_timeout_ms);
        return;
    case REQ_TUNNEL:
        if (c->resp_state == RESP_HANDSHAKE)
            proxy_exchange_send_error(c, 504, "ERR_PROXY_CONNECTION_TIMED_OUT",
                                      "The upstream proxy did not answer CONNECT %s within %llu ms.", c->req.authority,
                                      (unsigned long long)cfg->connect_timeout_ms);
        else proxy_conn_close(c, false);
        return;
    case REQ_BODY:
    case REQ_DONE:
        if (!c->final_head_sent)
            proxy_exchange_send_error(c, 504, "ERR_TIMED_OUT", "%s did not answer within %llu ms.", c->req.authority,
                                      (unsigned long long)cfg->response_timeout_ms);
        else proxy_conn_close(c, true);
        return;
    }
}

void proxy_conn_update(conn_t *c) {
    if (c->life == CONN_CLOSED) return;
    bool hold;
    if (proxy_splice_update(c, &hold)) { /* its polls read and write both sockets */
        conn_arm_timer(c);
        return;
    }
    browser_update_reading(c);
    up_update_reading(c, hold);
    note_peaks(c);
    conn_arm_timer(c);
}

/* ---- ending a browser connection --------------------------------------------------------------- */

void proxy_conn_check_tunnel_done(conn_t *c) {
    upstream_t *u = c->up;
    if (c->life != CONN_OPEN || !u) return;
    if (c->eof && u->eof && c->writes == 0 && u->writes == 0) proxy_conn_close(c, false);
}

static void on_browser_shutdown(uv_shutdown_t *req, int status) {
    conn_t *c = req->data;
    if (c->life == CONN_CLOSED) return;
    if (status < 0) {
        proxy_conn_close(c, false);
        return;
    }
    if (c->life == CONN_FINISHING && c->eof) {
        proxy_conn_close(c, false);
        return;
    }
    if (c->life == CONN_FINISHING) {
        c->life = CONN_LINGERING;
        c->phase_start = proxy_now(c);
        proxy_conn_update(c);
        return;
    }
    if (c->req_state == REQ_TUNNEL) proxy_conn_check_tunnel_done(c);
}

static void on_up_shutdown(uv_shutdown_t *req, int status) {
    upstream_t *u = req->data;
    if (u->closing) return;
    conn_t *c = u->conn;
    if (status < 0) {
        proxy_conn_close(c, true);
        return;
    }
    proxy_conn_check_tunnel_done(c);
}

void proxy_conn_shutdown_browser(conn_t *c) {
    if (c->shutdown_sent) return;
    if (c->eof && c->life == CONN_FINISHING) { /* nothing to linger for: the browser is done too */
        proxy_conn_close(c, false);
        return;
    }
    c->shutdown_sent = true;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_browser_shutdown) < 0) proxy_conn_close(c, false);
}

void proxy_conn_finish(conn_t *c) {
    if (c->life != CONN_OPEN) return;
    c->life = CONN_FINISHING;
    proxy_upstream_abandon_resolve(c);
    proxy_upstream_close(c, false);
    c->last_activity = proxy_now(c);
    if (c->writes == 0) proxy_conn_shutdown_browser(c);
    proxy_conn_update(c);
}

/* ---- the end of a read ------------------------------------------------------------------------- */

/* The end of a read that brought no bytes (either side). Nothing (0) or no room (UV_ENOBUFS)
 * leaves reading as it is, for proxy_conn_update to decide; an end or an error stops it, and
 * the caller handles that (returns true). */
static bool read_stopped(conn_t *c, uv_stream_t *s, bool *reading, chunk_t *ch, ssize_t nread) {
    proxy_chunk_unref(ch);
    if (nread == 0 || nread == UV_ENOBUFS) {
        proxy_conn_update(c);
        return false;
    }
    *reading = false;
    uv_read_stop(s);
    return true;
}

/* ---- upstream events --------------------------------------------------------------------------- */

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
        proxy_chunk_unref(ch);
        return;
    }
    conn_t *c = u->conn;
    if (nread > 0) {
        c->proxy->counts.from_upstream_bytes += (uint64_t)nread;
        if (c->proxy->cfg.totals) c->proxy->cfg.totals->from_upstream_bytes += (uint64_t)nread;
        c->last_activity = proxy_now(c);
        u->in = ch;
        u->in_off = 0;
        u->in_len = (size_t)nread;
        proxy_exchange_response_side(c);
        return;
    }
    if (read_stopped(c, s, &u->reading, ch, nread)) proxy_exchange_upstream_ended(c, (int)nread);
}

/* ---- browser events ---------------------------------------------------------------------------- */

static void on_browser_eof(conn_t *c) {
    c->eof = true;
    switch (c->life) {
    case CONN_LINGERING:
    case CONN_FINISHING: proxy_conn_close(c, false); return;
    case CONN_CLOSED: return;
    case CONN_OPEN: break;
    }
    switch (c->req_state) {
    case REQ_HEAD:
        if (c->head.len == 0) proxy_conn_finish(c); /* between requests: a normal end */
        else proxy_conn_close(c, false);
        return;
    case REQ_CONNECTING:
        /* A client that half-closes after a complete request still waits for the answer. */
        if (!c->req.complete || c->req.is_connect) proxy_conn_close(c, false);
        else proxy_conn_update(c);
        return;
    case REQ_BODY: proxy_conn_close(c, true); return; /* the request was cut short */
    case REQ_DONE: proxy_conn_update(c); return;
    case REQ_TUNNEL: {
        upstream_t *u = c->up;
        if (c->resp_state != RESP_TUNNEL || !u) {
            proxy_conn_close(c, false);
            return;
        }
        if (!u->shutdown_sent) {
            u->shutdown_sent = true;
            u->shutdown_req.data = u;
            if (uv_shutdown(&u->shutdown_req, (uv_stream_t *)&u->tcp, on_up_shutdown) < 0) {
                proxy_conn_close(c, true);
                return;
            }
        }
        proxy_conn_check_tunnel_done(c);
        proxy_conn_update(c);
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
        proxy_chunk_unref(ch);
        return;
    }
    if (nread > 0) {
        c->proxy->counts.from_browser_bytes += (uint64_t)nread;
        if (c->proxy->cfg.totals) c->proxy->cfg.totals->from_browser_bytes += (uint64_t)nread;
        c->last_activity = proxy_now(c);
        if (c->life != CONN_OPEN) { /* lingering: read and dropped */
            proxy_chunk_unref(ch);
            return;
        }
        c->in = ch;
        c->in_off = 0;
        c->in_len = (size_t)nread;
        proxy_exchange_request_side(c);
        return;
    }
    if (!read_stopped(c, s, &c->reading, ch, nread)) return;
    if (nread == UV_EOF) on_browser_eof(c);
    else proxy_conn_close(c, true); /* reset or error: pass it on */
}

/* ---- the listener ------------------------------------------------------------------------------ */

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
    net_lifetime_ref(&p->lifetime); /* until conn_release */
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
        proxy_log_event(p, "too_many_connections", NULL, "closed at accept");
        proxy_conn_close(c, false);
        return;
    }
    c->counted_open = true;
    p->counts.connections_open++;
    if (p->cfg.on_connections) p->cfg.on_connections(p->cfg.on_connections_arg, (unsigned)p->counts.connections_open);
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_activity = proxy_now(c);
    c->req_state = REQ_HEAD;
    c->resp_state = RESP_IDLE;
    c->to_up.pipe_r = c->to_up.pipe_w = c->to_browser.pipe_r = c->to_browser.pipe_w = -1;
    proxy_conn_update(c);
}

/* ---- configuration and the public functions ---------------------------------------------------- */

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

/* The listener is closed and every connection released: after traffic_proxy_stop (or a failed
 * start, without on_stopped). */
static void proxy_release(net_lifetime_t *life) {
    traffic_proxy_t *p = (traffic_proxy_t *)life;
    void (*cb)(void *) = p->on_stopped;
    void *arg = p->stopped_arg;
    free(p);
    if (--spares.proxies_alive == 0) {
        spares_free();
        proxy_splice_thread_done();
    }
    if (cb) cb(arg);
}

int traffic_proxy_start(uv_loop_t *loop, const traffic_proxy_config_t *cfg, traffic_proxy_t **out) {
    char err[256];
    traffic_proxy_t *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    int rc = check_config(cfg, &p->guard, &p->upstream, &p->has_upstream, err, sizeof err);
    if (rc < 0) {
        log_event(LOG_ERROR, "proxy", "bad_config", "detail=\"%s\"", err);
        free(p);
        return rc;
    }
    if (p->has_upstream &&
        proxy_guard_parse_host(p->upstream.host, strlen(p->upstream.host), &p->upstream_host, err, sizeof err) < 0) {
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
    net_lifetime_init(&p->lifetime, 1, proxy_release); /* the listener */
    spares.proxies_alive++;
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
        net_lifetime_close((uv_handle_t *)&p->listener);
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

void traffic_proxy_stop(traffic_proxy_t *p, void (*on_stopped)(void *arg), void *arg) {
    if (p->stopping) return;
    p->stopping = true;
    p->on_stopped = on_stopped;
    p->stopped_arg = arg;
    for (conn_t *c = p->conns; c; c = c->next) proxy_conn_close(c, false);
    net_lifetime_close((uv_handle_t *)&p->listener);
}
