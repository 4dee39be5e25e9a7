/* The traffic proxy's kernel-side relay (splice mode, see proxy_internal.h): CONNECT tunnels,
 * upgraded connections and large Content-Length response bodies go socket -> pipe -> socket
 * with splice(2), so that their bytes are never copied into and out of user space.
 *
 * Why: on loopback and in this VM a relayed byte through read + write costs two copies more
 * than a direct download, which halved the rate (docs/proxy.md, Benchmark). splice moves page
 * references between a socket's queue and a pipe instead.
 *
 * Ownership: a conn_t owns its two pumps and, while they hold bytes, their pipes; an empty pipe
 * goes back to the thread's spares (at most SPARE_PIPES, closed when the thread's last proxy is
 * released). Each uv_poll_t holds one reference on the conn_t or upstream_t it belongs to, from
 * its init to its close callback. Loop thread only. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/lifetime.h"
#include "proxy/proxy_internal.h"

#define PIPE_BYTES (256u * 1024u) /* a pipe's size, and the most one direction holds */
#define SPARE_PIPES 16u
#define STEP_ROUNDS 16u           /* read/write rounds per event: other connections get a turn */

static proxy_splice_fn_t splice_fn = splice;

void proxy_splice_set_hook(proxy_splice_fn_t fn) { splice_fn = fn ? fn : splice; }

/* ---- pipes ------------------------------------------------------------------------------------- */

static _Thread_local struct {
    int fds[SPARE_PIPES][2];
    unsigned count;
} spare_pipes;

static int pipe_take(proxy_pump_t *pm) {
    if (pm->pipe_r >= 0) return 0;
    if (spare_pipes.count) {
        spare_pipes.count--;
        pm->pipe_r = spare_pipes.fds[spare_pipes.count][0];
        pm->pipe_w = spare_pipes.fds[spare_pipes.count][1];
        return 0;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
    /* Fewer, larger splices. Refused past the user's pipe quota (fs.pipe-user-pages-soft): the
     * pipe then keeps its default size, which only means more rounds. */
    (void)fcntl(fds[1], F_SETPIPE_SZ, (int)PIPE_BYTES);
    pm->pipe_r = fds[0];
    pm->pipe_w = fds[1];
    return 0;
}

/* An empty pipe goes to the spares; one with bytes (a connection that ends mid-way) is closed
 * with them. */
static void pipe_give_back(proxy_pump_t *pm) {
    if (pm->pipe_r < 0) return;
    if (pm->in_pipe == 0 && spare_pipes.count < SPARE_PIPES) {
        spare_pipes.fds[spare_pipes.count][0] = pm->pipe_r;
        spare_pipes.fds[spare_pipes.count][1] = pm->pipe_w;
        spare_pipes.count++;
    } else {
        close(pm->pipe_r);
        close(pm->pipe_w);
    }
    pm->pipe_r = pm->pipe_w = -1;
    pm->in_pipe = 0;
}

void proxy_splice_thread_done(void) {
    while (spare_pipes.count) {
        spare_pipes.count--;
        close(spare_pipes.fds[spare_pipes.count][0]);
        close(spare_pipes.fds[spare_pipes.count][1]);
    }
}

/* ---- counting ---------------------------------------------------------------------------------- */

/* The same counters as the libuv path, at the same moments: a read when it is read, a write when
 * the destination's kernel took it (docs/proxy.md, "What is counted"). */
static void count_read(conn_t *c, bool down, size_t n) {
    traffic_proxy_t *p = c->proxy;
    if (down) {
        p->counts.from_upstream_bytes += n;
        if (p->cfg.totals) p->cfg.totals->from_upstream_bytes += n;
        return;
    }
    p->counts.from_browser_bytes += n;
    if (p->cfg.totals) p->cfg.totals->from_browser_bytes += n;
    p->counts.tunnel_bytes += n; /* browser to site: counted when relayed, as in request_step */
}

static void count_written(conn_t *c, bool down, size_t n) {
    traffic_proxy_t *p = c->proxy;
    p->stats.spliced_bytes += n;
    if (!down) {
        p->counts.to_upstream_bytes += n;
        if (p->cfg.totals) p->cfg.totals->to_upstream_bytes += n;
        return;
    }
    p->counts.to_browser_bytes += n;
    if (p->cfg.totals) p->cfg.totals->to_browser_bytes += n;
    if (c->splice == SPLICE_BODY) p->counts.payload_bytes += n; /* identity body: all payload */
    else p->counts.tunnel_bytes += n;
}

/* ---- one direction ----------------------------------------------------------------------------- */

typedef enum { PUMP_OK, PUMP_READ_FAILED, PUMP_WRITE_FAILED, PUMP_UNSUPPORTED } pump_result_t;

static size_t pump_budget(const conn_t *c) {
    size_t high = c->proxy->cfg.high_watermark;
    return high < PIPE_BYTES ? high : PIPE_BYTES;
}

static bool pump_wants_read(const proxy_pump_t *pm, size_t budget) {
    return !pm->src_eof && pm->to_read > 0 && pm->in_pipe < budget;
}

/* Moves what can move now from src to dst, a bounded number of rounds. *err: the errno of a
 * failure. *progress: whether any byte moved. */
static pump_result_t pump_step(conn_t *c, proxy_pump_t *pm, int src, int dst, bool down, int *err, bool *progress) {
    size_t budget = pump_budget(c);
    for (unsigned round = 0; round < STEP_ROUNDS; round++) {
        bool moved = false;
        if (pump_wants_read(pm, budget)) {
            int rc = pipe_take(pm);
            if (rc < 0) {
                *err = -rc;
                return pm->in_pipe == 0 ? PUMP_UNSUPPORTED : PUMP_READ_FAILED;
            }
            size_t want = budget - pm->in_pipe;
            if (pm->to_read < want) want = (size_t)pm->to_read;
            ssize_t n = splice_fn(src, NULL, pm->pipe_w, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                pm->in_pipe += (size_t)n;
                if (pm->to_read != UINT64_MAX) pm->to_read -= (uint64_t)n;
                count_read(c, down, (size_t)n);
                moved = true;
            } else if (n == 0) {
                pm->src_eof = true;
            } else if (errno != EAGAIN && errno != EINTR) {
                *err = errno;
                /* No splice for this socket (or kernel): the libuv path can take over only
                 * while nothing sits in the pipe. */
                if ((errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) && pm->in_pipe == 0)
                    return PUMP_UNSUPPORTED;
                return PUMP_READ_FAILED;
            }
        }
        if (pm->in_pipe > 0) {
            ssize_t m = splice_fn(pm->pipe_r, NULL, dst, NULL, pm->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (m > 0) {
                pm->in_pipe -= (size_t)m;
                pm->dst_full = false;
                count_written(c, down, (size_t)m);
                moved = true;
            } else if (m < 0 && (errno == EAGAIN || errno == EINTR)) {
                pm->dst_full = true;
            } else {
                *err = m < 0 ? errno : EPIPE;
                return PUMP_WRITE_FAILED;
            }
        }
        if (!moved) break;
        *progress = true;
    }
    if (pm->in_pipe == 0) pipe_give_back(pm);
    return PUMP_OK;
}

/* ---- the poll handles -------------------------------------------------------------------------- */

static void on_browser_poll(uv_poll_t *h, int status, int events);
static void on_up_poll(uv_poll_t *h, int status, int events);

/* `owner` (a conn_t or upstream_t: net_lifetime_t first) is what poll->data points at. */
static int poll_init(uv_loop_t *loop, uv_poll_t *poll, bool *inited, uv_tcp_t *tcp, void *owner) {
    if (*inited) return 0;
    uv_os_fd_t fd;
    int rc = uv_fileno((uv_handle_t *)tcp, &fd);
    /* Fails with UV_EEXIST while libuv still watches the socket (a read or write pending). */
    if (rc == 0) rc = uv_poll_init_socket(loop, poll, fd);
    if (rc < 0) return rc;
    poll->data = owner;
    net_lifetime_ref((net_lifetime_t *)owner);
    *inited = true;
    return 0;
}

static int poll_set(uv_poll_t *poll, int *current, int want, uv_poll_cb cb) {
    if (want == *current) return 0;
    int rc = want ? uv_poll_start(poll, want, cb) : uv_poll_stop(poll);
    if (rc == 0) *current = want;
    return rc;
}

void proxy_splice_close_poll(uv_poll_t *poll, bool *inited) {
    if (!*inited) return;
    *inited = false;
    net_lifetime_close((uv_handle_t *)poll);
}

/* ---- entering and leaving ---------------------------------------------------------------------- */

static splice_mode_t qualifies(const conn_t *c) {
    const upstream_t *u = c->up;
    if (c->splice_off || c->life != CONN_OPEN || !u || !u->connected || u->closing) return SPLICE_NONE;
    if (c->req_state == REQ_TUNNEL && c->resp_state == RESP_TUNNEL && !c->eof && !u->eof && !c->shutdown_sent &&
        !u->shutdown_sent)
        return SPLICE_TUNNEL;
    /* A body of known length (http-parser counts down content_length; ULLONG_MAX: none): its
     * end is a byte count, so nothing needs parsing. Chunked and until-close bodies stay on the
     * libuv path. REQ_DONE: the request is all sent, the browser socket has nothing to read. */
    const http_parser *hp = &c->resp_parser;
    if (c->resp_state == RESP_BODY && c->req_state == REQ_DONE && !u->eof && !(hp->flags & F_CHUNKED) &&
        hp->content_length != ULLONG_MAX && hp->content_length >= SPLICE_MIN_BODY)
        return SPLICE_BODY;
    return SPLICE_NONE;
}

static void pump_init(proxy_pump_t *pm, uint64_t to_read) {
    *pm = (proxy_pump_t){.pipe_r = -1, .pipe_w = -1, .to_read = to_read};
}

void proxy_splice_stop(conn_t *c) {
    if (c->splice == SPLICE_NONE) return;
    c->splice = SPLICE_NONE;
    if (c->poll_inited) poll_set(&c->poll, &c->poll_events, 0, NULL);
    if (c->up && c->up->poll_inited) poll_set(&c->up->poll, &c->up->poll_events, 0, NULL);
    pipe_give_back(&c->to_browser);
    pipe_give_back(&c->to_up);
}

/* Watches what each pump waits for: its source when its pipe is empty, its destination while
 * the pipe holds bytes. A pipe with bytes does not watch its source as well: it may be full in
 * the kernel's pages before it is in bytes, and a readable socket would then wake us for
 * nothing; the destination's room brings the next read. */
static int watch(conn_t *c) {
    upstream_t *u = c->up;
    size_t budget = pump_budget(c);
    int browser = 0, up = 0;
    if (c->to_browser.in_pipe > 0) browser |= UV_WRITABLE;
    else if (pump_wants_read(&c->to_browser, budget)) up |= UV_READABLE;
    if (c->splice == SPLICE_TUNNEL) {
        if (c->to_up.in_pipe > 0) up |= UV_WRITABLE;
        else if (pump_wants_read(&c->to_up, budget)) browser |= UV_READABLE;
    }
    int rc = poll_set(&c->poll, &c->poll_events, browser, on_browser_poll);
    if (rc == 0) rc = poll_set(&u->poll, &u->poll_events, up, on_up_poll);
    return rc;
}

static int enter(conn_t *c, splice_mode_t mode) {
    upstream_t *u = c->up;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (u->reading) {
        uv_read_stop((uv_stream_t *)&u->tcp);
        u->reading = false;
    }
    uv_loop_t *loop = c->proxy->loop;
    int rc = poll_init(loop, &c->poll, &c->poll_inited, &c->tcp, c);
    if (rc == 0) rc = poll_init(loop, &u->poll, &u->poll_inited, &u->tcp, u);
    if (rc < 0) return rc;
    pump_init(&c->to_browser, mode == SPLICE_BODY ? c->resp_parser.content_length : UINT64_MAX);
    pump_init(&c->to_up, mode == SPLICE_TUNNEL ? UINT64_MAX : 0);
    c->splice = mode;
    rc = watch(c); /* the first event runs the pumps */
    if (rc < 0) proxy_splice_stop(c);
    return rc;
}

/* Back to the libuv path where splice stopped, with nothing in flight (the pipes are empty). */
static void fall_back(conn_t *c, int err) {
    proxy_log_event(c->proxy, "splice_unavailable", c->req.authority, strerror(err));
    if (c->splice == SPLICE_BODY) c->resp_parser.content_length = c->to_browser.to_read;
    proxy_splice_stop(c);
    c->splice_off = true;
    proxy_conn_update(c);
}

bool proxy_splice_update(conn_t *c, bool *hold) {
    *hold = false;
    if (c->splice != SPLICE_NONE) return true;
    splice_mode_t mode = qualifies(c);
    if (mode == SPLICE_NONE) return false;
    upstream_t *u = c->up;
    bool browser_side_quiet = u->writes == 0 && (mode == SPLICE_BODY || c->in_len == 0);
    if (!browser_side_quiet) return false; /* no hold: the site may wait for those bytes */
    if (c->writes > 0 || u->in_len > 0 || c->resp_head.len > 0) {
        /* Only the site's bytes are in flight: stop reading it until they are delivered, then
         * switch. The browser goes on being read, so nothing waits on us. */
        *hold = true;
        return false;
    }
    if (enter(c, mode) < 0) {
        c->splice_off = true;
        return false;
    }
    return true;
}

/* ---- running the pumps ------------------------------------------------------------------------- */

/* Passes a FIN on once its pump is empty (tunnels); false when the connection was closed. */
static bool pass_fin(conn_t *c, proxy_pump_t *pm, int dst, bool *shutdown_sent, bool *src_eof_flag) {
    if (!pm->src_eof || pm->in_pipe > 0 || pm->dst_shut) return true;
    *src_eof_flag = true;
    pm->dst_shut = true;
    *shutdown_sent = true;
    if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN) {
        proxy_conn_close(c, true);
        return false;
    }
    return true;
}

static void run(conn_t *c) {
    upstream_t *u = c->up;
    uv_os_fd_t bfd, ufd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &bfd) < 0 || uv_fileno((uv_handle_t *)&u->tcp, &ufd) < 0) {
        proxy_conn_close(c, true);
        return;
    }
    bool progress = false;
    int err = 0;
    pump_result_t down = pump_step(c, &c->to_browser, ufd, bfd, true, &err, &progress);
    pump_result_t upward = PUMP_OK;
    if (down == PUMP_OK && c->splice == SPLICE_TUNNEL)
        upward = pump_step(c, &c->to_up, bfd, ufd, false, &err, &progress);
    if (progress) c->last_activity = proxy_now(c);
    size_t held = c->to_browser.in_pipe, held_up = c->to_up.in_pipe;
    if (held > c->proxy->stats.peak_buffered_to_browser) c->proxy->stats.peak_buffered_to_browser = held;
    if (held_up > c->proxy->stats.peak_buffered_to_upstream) c->proxy->stats.peak_buffered_to_upstream = held_up;

    bool untouched = c->to_browser.in_pipe == 0 && c->to_up.in_pipe == 0 && !c->to_browser.src_eof &&
                     !c->to_up.src_eof;
    if ((down == PUMP_UNSUPPORTED || upward == PUMP_UNSUPPORTED) && untouched) {
        fall_back(c, err);
        return;
    }
    if (down == PUMP_WRITE_FAILED) { /* the browser went away */
        proxy_conn_close(c, false);
        return;
    }
    if (down != PUMP_OK) {
        if (c->splice == SPLICE_BODY) proxy_log_event(c->proxy, "response_cut", c->req.authority, strerror(err));
        proxy_conn_close(c, true); /* a reset passed on: a cut body must not look complete */
        return;
    }
    if (upward != PUMP_OK) {
        proxy_conn_close(c, true);
        return;
    }
    if (c->splice == SPLICE_BODY) {
        if (c->to_browser.to_read == 0 && c->to_browser.in_pipe == 0) {
            proxy_splice_stop(c);
            proxy_exchange_done(c);
            return;
        }
        if (c->to_browser.src_eof) {
            proxy_log_event(c->proxy, "response_cut", c->req.authority, "eof");
            proxy_conn_close(c, true);
            return;
        }
    } else {
        if (!pass_fin(c, &c->to_browser, bfd, &c->shutdown_sent, &u->eof)) return;
        if (!pass_fin(c, &c->to_up, ufd, &u->shutdown_sent, &c->eof)) return;
        if (c->to_browser.dst_shut && c->to_up.dst_shut) { /* both ends are done */
            proxy_conn_close(c, false);
            return;
        }
    }
    if (watch(c) < 0) proxy_conn_close(c, true);
}

static void on_poll(conn_t *c, int status) {
    if (c->life != CONN_OPEN || c->splice == SPLICE_NONE || !c->up) return;
    if (status < 0) {
        proxy_conn_close(c, true);
        return;
    }
    run(c);
}

static void on_browser_poll(uv_poll_t *h, int status, int events) {
    (void)events;
    on_poll(h->data, status);
}

static void on_up_poll(uv_poll_t *h, int status, int events) {
    (void)events;
    upstream_t *u = h->data;
    if (u->closing) return;
    on_poll(u->conn, status);
}
