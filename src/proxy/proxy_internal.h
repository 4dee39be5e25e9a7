/* Private to src/proxy: the browser connection of the traffic proxy and what its three
 * socket-side files share.
 *   traffic_proxy.c   the listener and the browser connection's lifecycle: accept, reading and
 *                     backpressure on both sides, timers, finishing and closing, the public
 *                     functions of traffic_proxy.h;
 *   proxy_upstream.c  the connection onwards (to a site or to the upstream proxy): DNS, the
 *                     private-network guard on resolved addresses, connect, retry, failure;
 *   proxy_exchange.c  what goes through: the request and response sides (heads, bodies,
 *                     CONNECT tunnels, keep-alive), the writes and their byte counts, our error
 *                     pages.
 *   proxy_splice.c    the kernel-side relay: once a CONNECT tunnel (or upgrade) is open, or a
 *                     large Content-Length response body is under way, bytes go socket ->
 *                     pipe -> socket with splice(2) and never enter user space (see below).
 * Heads, targets and pages are in proxy_http.c, the address checks in proxy_guard.c.
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
 * Splice mode (proxy_splice.c): when a connection is in a tunnel, or in a response body of
 * known length with at least SPLICE_MIN_BODY bytes to go, and nothing is queued in libuv or
 * held in our chunks, libuv stops reading both sockets and a uv_poll_t per socket drives two
 * pumps (browser -> upstream, upstream -> browser): splice from the source socket into a pipe,
 * then from the pipe into the destination socket, non-blocking, counted from splice's return
 * values. A pipe holds at most min(high_watermark, 256 KiB) of one direction (its bytes are
 * part of `buffered`) and is only borrowed while it holds bytes: an idle tunnel holds none
 * (the thread keeps a few empty ones). Leaving the mode (the body is complete, or splice is
 * refused: the libuv path takes over where it stopped) stops the polls before libuv touches the
 * sockets again: libuv allows one watcher per fd at a time.
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
 * its conn. The traffic_proxy_t is counted the same way (its listener, each conn_t not yet
 * released); its release, after traffic_proxy_stop, calls on_stopped. A DNS resolution in
 * flight is not counted: it is detached (conn pointer cleared) when the conn gives up on it,
 * and frees itself when it ends.
 *
 * Threading: the loop thread only (traffic_proxy.h). Ownership: a traffic_proxy_t owns its
 * conn_t list; a conn_t owns its upstream_t (c->up), its input chunk and its head buffers; an
 * upstream_t owns its input chunk. Each is freed by its net_lifetime release only. */
#ifndef BROWSERD_PROXY_INTERNAL_H
#define BROWSERD_PROXY_INTERNAL_H

#include <fcntl.h>
#include <http_parser.h>
#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/buf.h"
#include "net/lifetime.h"
#include "proxy/proxy_guard.h"
#include "proxy/proxy_http.h"
#include "proxy/proxy_upstream.h"
#include "proxy/traffic_proxy.h"

#define PROXY_MAX_ADDRS 8

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
typedef enum { CONN_OPEN, CONN_FINISHING, CONN_LINGERING, CONN_CLOSED } conn_life_t;

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
    uv_poll_t poll;    /* splice mode only (one reference while initialised) */
    bool poll_inited;
    int poll_events;   /* what poll is started for (0: stopped) */
} upstream_t;

/* One direction of splice mode: source socket -> pipe -> destination socket. */
typedef struct {
    int pipe_r, pipe_w;  /* -1 when it holds no pipe (borrowed from the thread's pool) */
    size_t in_pipe;      /* bytes in the pipe: read from the source, not yet taken by the
                            destination's kernel */
    uint64_t to_read;    /* what the source may still give; UINT64_MAX: until its FIN */
    bool src_eof;        /* the source sent FIN */
    bool dst_full;       /* the last splice into the destination found no room */
    bool dst_shut;       /* FIN passed on to the destination */
} proxy_pump_t;

typedef enum { SPLICE_NONE, SPLICE_BODY, SPLICE_TUNNEL } splice_mode_t;

/* A DNS resolution in flight (proxy_upstream.c). */
typedef struct resolve resolve_t;

struct conn {
    net_lifetime_t lifetime; /* first: see net/lifetime.h. One reference per open handle (socket,
                                timer) and one per upstream_t not yet released */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    traffic_proxy_t *proxy;
    conn_t *prev, *next;
    conn_life_t life;
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
    struct sockaddr_storage addrs[PROXY_MAX_ADDRS];
    unsigned addr_count, addr_next;
    int last_error;

    uint64_t last_activity;
    uint64_t phase_start;

    splice_mode_t splice;    /* SPLICE_NONE: libuv reads and writes both sockets */
    bool splice_off;         /* splice failed on this connection once: libuv only from now on */
    proxy_pump_t to_up, to_browser;
    uv_poll_t poll;          /* the browser socket in splice mode (one reference while inited) */
    bool poll_inited;
    int poll_events;
};

struct traffic_proxy {
    net_lifetime_t lifetime;      /* first: see net/lifetime.h. One reference for the listener and
                                     one per conn_t not yet released */
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
    traffic_counts_t counts;
    traffic_proxy_stats_t stats;
    bool stopping;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
};

static inline uint64_t proxy_now(const conn_t *c) { return uv_now(c->proxy->loop); }

/* Gives a chunk back to the thread's spares (see traffic_proxy.c) or to malloc. */
void proxy_chunk_release(chunk_t *ch);

static inline void proxy_chunk_unref(chunk_t *ch) {
    if (ch && --ch->refs == 0) proxy_chunk_release(ch);
}

/* ---- traffic_proxy.c: the browser connection --------------------------------------------------- */

void proxy_log_event(const traffic_proxy_t *p, const char *event, const char *target, const char *detail);
/* Closes a socket whose data points at its owner (net_lifetime_close, whose reference it drops);
 * reset: with a RST, when libuv still can (not after a shutdown was requested). */
void proxy_close_tcp(uv_tcp_t *tcp, bool reset);
/* Re-evaluates reading on both sides, the timer and the peaks: after anything happened. */
void proxy_conn_update(conn_t *c);
/* Closes both sides now. reset: the browser gets a RST (a response cut short must not look
 * complete to it). */
void proxy_conn_close(conn_t *c, bool reset);
/* Ends the browser connection gracefully: what is queued is delivered, then FIN, a short
 * linger, close. The upstream side is closed now. */
void proxy_conn_finish(conn_t *c);
/* FIN to the browser (after what is queued), or a close when it is done as well. */
void proxy_conn_shutdown_browser(conn_t *c);
/* A tunnel is over once both ends sent FIN and every write is done: then it is closed. */
void proxy_conn_check_tunnel_done(conn_t *c);

/* ---- proxy_splice.c: the kernel-side relay ---------------------------------------------------- */

#define SPLICE_MIN_BODY (64u * 1024u)

/* Called from proxy_conn_update: enters splice mode when the connection qualifies and nothing
 * is queued; returns true while the connection is in splice mode (then libuv must not read its
 * sockets), and sets *hold when it qualifies but waits for queued bytes to drain (then the
 * sources should not be read: the mode starts once the writes complete). */
bool proxy_splice_update(conn_t *c, bool *hold);
/* Leaves splice mode at once (polls stopped, pipes given back or closed with their bytes):
 * before closing either socket. */
void proxy_splice_stop(conn_t *c);
/* Closes a socket's poll handle, if it has one (before the socket itself). */
void proxy_splice_close_poll(uv_poll_t *poll, bool *inited);
/* The thread's last proxy is gone: its spare pipes are closed. */
void proxy_splice_thread_done(void);
/* Tests: splice(2) replaced (NULL: the real one), e.g. to refuse it and see the fallback. */
typedef ssize_t (*proxy_splice_fn_t)(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
                                     unsigned int flags);
void proxy_splice_set_hook(proxy_splice_fn_t fn);

/* ---- proxy_upstream.c: the connection onwards -------------------------------------------------- */

/* How the upstream side resolves names and connects: uv_getaddrinfo and uv_tcp_connect, or the
 * tests' stand-ins (names resolved without a DNS server, connects to loopback only). NULL keeps
 * the default. Call before the loop runs a proxy. */
typedef int (*proxy_resolve_fn_t)(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb, const char *node,
                                  const char *service, const struct addrinfo *hints);
typedef int (*proxy_connect_fn_t)(uv_connect_t *req, uv_tcp_t *tcp, const struct sockaddr *addr, uv_connect_cb cb);
void proxy_upstream_set_hooks(proxy_resolve_fn_t resolve, proxy_connect_fn_t connect);

/* Resolves (if needed), checks and connects to the target of c->req, or to the upstream proxy
 * (c->via_proxy); the exchange starts when connected, an error page is sent when not. */
void proxy_upstream_connect(conn_t *c);
/* Closes c->up (if any) and forgets it; reset: with a RST when it is connected. */
void proxy_upstream_close(conn_t *c, bool reset);
/* Stops waiting for a DNS resolution in flight (its late answer is dropped). */
void proxy_upstream_abandon_resolve(conn_t *c);

/* ---- proxy_exchange.c: what goes through ------------------------------------------------------- */

/* Answers the browser with one of our error pages and finishes the connection. */
void proxy_exchange_send_error(conn_t *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The upstream connection is ready (new or kept alive): send the request on. */
void proxy_exchange_start(conn_t *c);
/* Request-side work on the browser's input, as far as the state allows. */
void proxy_exchange_request_side(conn_t *c);
/* Response-side work on the upstream's input, as far as the state allows. */
void proxy_exchange_response_side(conn_t *c);
/* The upstream connection ended (EOF when status == UV_EOF) or failed. */
void proxy_exchange_upstream_ended(conn_t *c, int status);
/* The response is complete (its body went by splice): keep-alive or finish. */
void proxy_exchange_done(conn_t *c);

#endif
