/* load: an HTTP/1.1 keep-alive load driver for browserd's API (single thread, epoll).
 *
 *   load --target 127.0.0.1:PORT --paths FILE [--key KEY | --key-file F] [--connections 32]
 *        [--duration S | --requests N] [--timeout S] [--expect STR] [--tsv OUT] [--quiet]
 *
 * FILE holds one request per line, `shape<TAB>path` (blank lines and lines starting with '#'
 * are ignored); `--path SHAPE=PATH` adds one on the command line. The paths are issued in
 * round-robin order over all connections, one request in flight per connection (closed loop),
 * so each shape gets the same share of requests.
 *
 * Latency of a request is measured from just before its first write() to the moment the last
 * byte of its response has been read and parsed (Content-Length, chunked, or until close).
 * A response counts as OK when its status is 200 and its body contains STR (default
 * `"total":`; --expect '' disables the body check). Anything else (other status, a body
 * without STR, a connection reset or EOF mid-response, a timeout) is an error of that shape.
 * The value of the last `"total":` in the body (the top-level one of a list response) of the
 * first OK response of each shape is reported (with its first session_id, in the TSV), and a later response of the same shape whose
 * total differs is counted in the `tot_chg` column (the data is static during a benchmark).
 *
 * Output: a table per shape (count, errors, mean, p50, p99, max in ms, first total) and the
 * overall rate; --tsv writes the same as tab-separated values for scripts. Exit status: 0
 * when every request was OK, 1 when any failed, 2 on a usage or setup error.
 *
 * Only loopback targets (127.0.0.0/8) are accepted: this is a benchmark tool for a daemon on
 * the same machine. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 4096
#define RBUF_MAX (64u << 20) /* a response larger than this is an error */

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "load: out of memory\n");
        exit(2);
    }
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xrealloc(NULL, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static const char *memmem_last(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0 || hn < nn)
        return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0)
            return hay + i;
    return NULL;
}

/* ---------------------------------------------------------------- shapes and requests */

typedef struct {
    char *name;
    uint64_t *lat;   /* ns, OK responses only */
    size_t n, cap;
    uint64_t errors;
    uint64_t status_errors, body_errors, io_errors, timeouts;
    int64_t first_total;
    bool have_total;
    char first_id[40];       /* first "session_id" of the first OK response, or "" */
    uint64_t total_changed;
} shape_t;

typedef struct {
    size_t shape;
    char *path;
    char *req;
    size_t req_len;
} request_t;

static shape_t *shapes;
static size_t n_shapes;
static request_t *reqs;
static size_t n_reqs;

static size_t shape_index(const char *name, size_t len)
{
    for (size_t i = 0; i < n_shapes; i++)
        if (strlen(shapes[i].name) == len && memcmp(shapes[i].name, name, len) == 0)
            return i;
    shapes = xrealloc(shapes, (n_shapes + 1) * sizeof *shapes);
    memset(&shapes[n_shapes], 0, sizeof *shapes);
    shapes[n_shapes].name = xstrndup(name, len);
    return n_shapes++;
}

static void add_request(const char *shape, size_t shape_len, const char *path, size_t path_len)
{
    reqs = xrealloc(reqs, (n_reqs + 1) * sizeof *reqs);
    reqs[n_reqs].shape = shape_index(shape, shape_len);
    reqs[n_reqs].path = xstrndup(path, path_len);
    reqs[n_reqs].req = NULL;
    n_reqs++;
}

static int load_paths_file(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "load: cannot open %s: %s\n", file, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0 || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        if (!tab || tab == line || tab[1] != '/') {
            fprintf(stderr, "load: %s:%d: expected 'shape<TAB>/path'\n", file, lineno);
            free(line);
            fclose(f);
            return -1;
        }
        add_request(line, (size_t)(tab - line), tab + 1, strlen(tab + 1));
    }
    free(line);
    fclose(f);
    return 0;
}

static void record_latency(shape_t *s, uint64_t ns)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->lat = xrealloc(s->lat, s->cap * sizeof *s->lat);
    }
    s->lat[s->n++] = ns;
}

/* ---------------------------------------------------------------- connections */

enum { C_CLOSED, C_CONNECTING, C_IDLE, C_BUSY };

typedef struct {
    int fd;
    int state;
    uint64_t reconnect_at;   /* ns; C_CLOSED connections reopen after this */
    size_t req;              /* index into reqs of the request in flight */
    size_t wr_off;
    bool retry_ok;           /* an EOF before any byte may be an idle close: retry once */
    long retry_req;          /* request to reissue on this connection first, or -1 */
    uint64_t t_start;
    uint64_t served;         /* responses completed on this socket */
    /* response */
    char *rbuf;
    size_t rlen, rcap;
    size_t hdr_len;          /* 0 until the header block is complete */
    int status;
    int64_t content_length;  /* -1 unknown */
    bool chunked;
    bool conn_close;
    uint32_t ev;             /* events registered with epoll */
} conn_t;

static int ep;
static struct sockaddr_in target_addr;
static char target_hostport[64];
static const char *expect_str = "\"total\":";
static uint64_t timeout_ns = 10ull * 1000000000u;

static uint64_t issued, completed, ok_count, err_count, connect_errors, consecutive_connect_errors, reconnects;
static uint64_t max_requests;      /* 0 = unlimited (duration mode) */
static uint64_t deadline_ns;       /* 0 = none (requests mode) */
static uint64_t t_begin, t_last_done;
static size_t rr_next;
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static bool may_issue(void)
{
    if (interrupted)
        return false;
    if (max_requests && issued >= max_requests)
        return false;
    if (deadline_ns && now_ns() >= deadline_ns)
        return false;
    return true;
}

static void conn_set_events(conn_t *c, uint32_t ev)
{
    if (c->ev == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0) {
        perror("load: epoll_ctl");
        exit(2);
    }
    c->ev = ev;
}

static void conn_close(conn_t *c, uint64_t delay_ns)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_CLOSED;
    c->served = 0;
    c->rlen = 0;
    c->reconnect_at = now_ns() + delay_ns;
}

static void conn_open(conn_t *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("load: socket");
        exit(2);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->served = 0;
    c->rlen = 0;
    int r = connect(fd, (struct sockaddr *)&target_addr, sizeof target_addr);
    c->ev = EPOLLOUT;
    struct epoll_event e = {.events = c->ev, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
        perror("load: epoll_ctl");
        exit(2);
    }
    if (r == 0 || errno == EINPROGRESS) {
        c->state = C_CONNECTING;
    } else {
        connect_errors++;
        consecutive_connect_errors++;
        conn_close(c, 100000000u);
    }
}

static void response_reset(conn_t *c)
{
    c->hdr_len = 0;
    c->status = 0;
    c->content_length = -1;
    c->chunked = false;
    c->conn_close = false;
}

static void fail_request(conn_t *c, const char *why, uint64_t *kind)
{
    shape_t *s = &shapes[reqs[c->req].shape];
    s->errors++;
    (*kind)++;
    err_count++;
    completed++;
    t_last_done = now_ns();
    if (s->errors <= 3)
        fprintf(stderr, "load: %s: %s (path %s)\n", s->name, why, reqs[c->req].path);
}

static void write_request(conn_t *c);

/* The server closed a kept-alive connection just as we reused it (the request may never have
 * been read): reissue the same request, once, on a fresh connection. */
static void reissue_later(conn_t *c)
{
    reconnects++;
    issued--;
    c->retry_req = (long)c->req;
    conn_close(c, 0);
}

/* Starts the next request on an idle connection, or closes it when the run is over. */
static void start_next(conn_t *c)
{
    if (!may_issue()) {
        conn_close(c, UINT64_MAX / 2);
        return;
    }
    if (c->retry_req >= 0) {
        c->req = (size_t)c->retry_req;
        c->retry_req = -1;
    } else {
        c->req = rr_next;
        rr_next = (rr_next + 1) % n_reqs;
    }
    issued++;
    c->wr_off = 0;
    c->retry_ok = c->served > 0;
    c->rlen = 0;
    response_reset(c);
    c->state = C_BUSY;
    c->t_start = now_ns();
    write_request(c);
}

static void write_request(conn_t *c)
{
    const request_t *r = &reqs[c->req];
    while (c->wr_off < r->req_len) {
        ssize_t n = write(c->fd, r->req + c->wr_off, r->req_len - c->wr_off);
        if (n > 0) {
            c->wr_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_set_events(c, EPOLLIN | EPOLLOUT);
            return;
        } else {
            if (c->retry_ok) {
                /* The server closed a kept-alive connection: reissue on a new one. */
                reissue_later(c);
                return;
            }
            fail_request(c, "write failed", &shapes[r->shape].io_errors);
            conn_close(c, 10000000u);
            return;
        }
    }
    conn_set_events(c, EPOLLIN);
}

/* Returns 1 when the chunked body starting at `p` is complete and writes the decoded body
 * to *out (malloc'ed), 0 when more bytes are needed, -1 when malformed. */
static int dechunk(const char *p, size_t n, char **out, size_t *out_len)
{
    size_t i = 0, olen = 0;
    char *o = NULL;
    for (;;) {
        size_t j = i;
        while (j + 1 < n && !(p[j] == '\r' && p[j + 1] == '\n'))
            j++;
        if (j + 1 >= n)
            goto more;
        uint64_t sz = 0;
        size_t k = i;
        if (k == j || !isxdigit((unsigned char)p[k]))
            goto bad;
        for (; k < j && isxdigit((unsigned char)p[k]); k++) {
            int d = isdigit((unsigned char)p[k]) ? p[k] - '0' : (tolower((unsigned char)p[k]) - 'a' + 10);
            sz = sz * 16 + (uint64_t)d;
            if (sz > RBUF_MAX)
                goto bad;
        }
        i = j + 2;
        if (sz == 0) {
            /* Trailers, then an empty line. */
            for (;;) {
                size_t e = i;
                while (e + 1 < n && !(p[e] == '\r' && p[e + 1] == '\n'))
                    e++;
                if (e + 1 >= n)
                    goto more;
                if (e == i) {
                    *out = o ? o : xrealloc(NULL, 1);
                    *out_len = olen;
                    return 1;
                }
                i = e + 2;
            }
        }
        if (n - i < sz + 2)
            goto more;
        if (p[i + sz] != '\r' || p[i + sz + 1] != '\n')
            goto bad;
        o = xrealloc(o, olen + sz + 1);
        memcpy(o + olen, p + i, sz);
        olen += sz;
        i += sz + 2;
    }
more:
    free(o);
    return 0;
bad:
    free(o);
    return -1;
}

/* Parses the header block in c->rbuf[0..hdr_len). 0 or -1 when malformed. */
static int parse_headers(conn_t *c)
{
    const char *p = c->rbuf, *end = c->rbuf + c->hdr_len;
    if (c->hdr_len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return -1;
    if (!isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]))
        return -1;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    bool http10 = p[7] == '0';
    c->conn_close = http10;
    const char *line = memchr(p, '\n', (size_t)(end - p));
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t nlen = (size_t)(colon - line);
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(eol - v);
            while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
                int64_t cl = 0;
                if (vlen == 0)
                    return -1;
                for (size_t i = 0; i < vlen; i++) {
                    if (!isdigit((unsigned char)v[i]) || cl > RBUF_MAX)
                        return -1;
                    cl = cl * 10 + (v[i] - '0');
                }
                c->content_length = cl;
            } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
                if (vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0)
                    c->chunked = true;
            } else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0) {
                if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
                    c->conn_close = true;
                else if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0)
                    c->conn_close = false;
            }
        }
        line = eol;
    }
    return 0;
}

static void finish_response(conn_t *c, const char *body, size_t body_len)
{
    uint64_t t = now_ns();
    shape_t *s = &shapes[reqs[c->req].shape];
    size_t elen = strlen(expect_str);
    if (c->status != 200) {
        char why[64];
        snprintf(why, sizeof why, "status %d", c->status);
        fail_request(c, why, &s->status_errors);
    } else if (elen && !memmem(body, body_len, expect_str, elen)) {
        fail_request(c, "body does not contain the expected string", &s->body_errors);
    } else {
        record_latency(s, t - c->t_start);
        ok_count++;
        completed++;
        t_last_done = t;
        const char *tp = memmem_last(body, body_len, "\"total\":", 8);
        if (tp) {
            tp += 8;
            const char *e = body + body_len;
            while (tp < e && (*tp == ' ' || *tp == '\t'))
                tp++;
            int64_t v = 0;
            bool any = false;
            while (tp < e && isdigit((unsigned char)*tp)) {
                v = v * 10 + (*tp - '0');
                tp++;
                any = true;
            }
            if (any) {
                if (!s->have_total) {
                    s->have_total = true;
                    s->first_total = v;
                    const char *ip = memmem(body, body_len, "\"session_id\":\"", 14);
                    if (ip && (size_t)(body + body_len - ip) > 14 + 36 && ip[14 + 36] == '"') {
                        memcpy(s->first_id, ip + 14, 36);
                        s->first_id[36] = 0;
                    }
                } else if (v != s->first_total) {
                    s->total_changed++;
                }
            }
        }
    }
    c->served++;
    consecutive_connect_errors = 0;
    if (c->conn_close) {
        conn_close(c, 0);
        return;
    }
    c->state = C_IDLE;
    c->rlen = 0;
    start_next(c);
}

/* Tries to complete the response from the buffered bytes; eof = the peer closed. */
static void try_parse(conn_t *c, bool eof)
{
    if (!c->hdr_len) {
        const char *h = c->rlen >= 4 ? memmem(c->rbuf, c->rlen, "\r\n\r\n", 4) : NULL;
        if (!h) {
            if (eof) {
                if (c->rlen == 0 && c->retry_ok) {
                    reissue_later(c);
                    return;
                }
                fail_request(c, c->rlen ? "connection closed mid-headers" : "connection closed before a response",
                             &shapes[reqs[c->req].shape].io_errors);
                conn_close(c, 10000000u);
            }
            return;
        }
        c->hdr_len = (size_t)(h - c->rbuf) + 4;
        if (parse_headers(c) < 0) {
            fail_request(c, "malformed response headers", &shapes[reqs[c->req].shape].io_errors);
            conn_close(c, 10000000u);
            return;
        }
        if (c->status >= 100 && c->status < 200) {
            /* Interim response: drop it and keep reading. */
            memmove(c->rbuf, c->rbuf + c->hdr_len, c->rlen - c->hdr_len);
            c->rlen -= c->hdr_len;
            response_reset(c);
            try_parse(c, eof);
            return;
        }
    }
    const char *body = c->rbuf + c->hdr_len;
    size_t avail = c->rlen - c->hdr_len;
    if (c->chunked) {
        char *dec = NULL;
        size_t dlen = 0;
        int r = dechunk(body, avail, &dec, &dlen);
        if (r < 0) {
            fail_request(c, "malformed chunked body", &shapes[reqs[c->req].shape].io_errors);
            conn_close(c, 10000000u);
        } else if (r > 0) {
            finish_response(c, dec, dlen);
            free(dec);
        } else if (eof) {
            fail_request(c, "connection closed mid-body", &shapes[reqs[c->req].shape].io_errors);
            conn_close(c, 10000000u);
        }
        return;
    }
    if (c->content_length >= 0) {
        if (avail >= (size_t)c->content_length) {
            if (avail > (size_t)c->content_length)
                c->conn_close = true; /* bytes we did not ask for: do not trust this socket */
            finish_response(c, body, (size_t)c->content_length);
        } else if (eof) {
            fail_request(c, "connection closed mid-body", &shapes[reqs[c->req].shape].io_errors);
            conn_close(c, 10000000u);
        }
        return;
    }
    if (c->status == 204 || c->status == 304) {
        finish_response(c, body, 0);
        return;
    }
    /* No length: the body ends at close. */
    if (eof) {
        c->conn_close = true;
        finish_response(c, body, avail);
    }
}

static void on_readable(conn_t *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 16384) {
            if (c->rcap >= RBUF_MAX) {
                fail_request(c, "response too large", &shapes[reqs[c->req].shape].io_errors);
                conn_close(c, 10000000u);
                return;
            }
            c->rcap = c->rcap ? c->rcap * 2 : 65536;
            c->rbuf = xrealloc(c->rbuf, c->rcap);
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) {
            if (c->state != C_BUSY) {
                /* Unsolicited bytes on an idle connection. */
                conn_close(c, 0);
                return;
            }
            c->rlen += (size_t)n;
            if ((size_t)n < c->rcap - c->rlen + (size_t)n) {
                /* Short read: the socket is drained for now. */
                try_parse(c, false);
                return;
            }
            continue;
        }
        if (n == 0) {
            if (c->state == C_BUSY)
                try_parse(c, true);
            else
                conn_close(c, 0);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (c->state == C_BUSY)
                try_parse(c, false);
            return;
        }
        if (c->state == C_BUSY) {
            if (c->rlen == 0 && c->retry_ok && errno == ECONNRESET) {
                reissue_later(c);
                return;
            }
            fail_request(c, strerror(errno), &shapes[reqs[c->req].shape].io_errors);
        }
        conn_close(c, 10000000u);
        return;
    }
}

static void on_event(conn_t *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            connect_errors++;
            consecutive_connect_errors++;
            if (connect_errors <= 3)
                fprintf(stderr, "load: connect: %s\n", strerror(err));
            conn_close(c, 100000000u);
            return;
        }
        c->state = C_IDLE;
        conn_set_events(c, EPOLLIN);
        start_next(c);
        return;
    }
    if (c->state == C_BUSY && (ev & EPOLLOUT) && c->wr_off < reqs[c->req].req_len) {
        write_request(c);
        if (c->state != C_BUSY)
            return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

/* ---------------------------------------------------------------- report */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t pct(const uint64_t *sorted, size_t n, double p)
{
    if (!n)
        return 0;
    size_t rank = (size_t)(p * (double)n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: load --target 127.0.0.1:PORT (--paths FILE | --path SHAPE=PATH ...)\n"
            "            [--key KEY | --key-file FILE] [--connections N] [--duration S | --requests N]\n"
            "            [--timeout S] [--expect STR] [--tsv FILE] [--quiet]\n"
            "  --connections N  concurrent keep-alive connections, one request in flight each (32)\n"
            "  --duration S     issue requests for S seconds (default 10 when --requests is absent)\n"
            "  --requests N     issue exactly N requests\n"
            "  --timeout S      per-request timeout, counted as an error (10)\n"
            "  --expect STR     an OK body must contain STR (default '\"total\":'; '' = no check)\n"
            "  --tsv FILE       also write the results as TSV (shape count errors mean_us p50_us\n"
            "                   p99_us max_us total total_changed first_id; then an ALL row, and a last row\n"
            "                   RATE req_per_s elapsed_s ok errors connections cpu_s)\n");
}

int main(int argc, char **argv)
{
    const char *target = NULL, *key = NULL, *tsv = NULL;
    char keybuf[512];
    int nconn = 32;
    double duration = 0;
    bool quiet = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "load: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        char *end = NULL;
        if (!strcmp(a, "--target")) {
            target = v;
        } else if (!strcmp(a, "--paths")) {
            if (load_paths_file(v) < 0)
                return 2;
        } else if (!strcmp(a, "--path")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || eq[1] != '/') {
                fprintf(stderr, "load: --path wants SHAPE=/path\n");
                return 2;
            }
            add_request(v, (size_t)(eq - v), eq + 1, strlen(eq + 1));
        } else if (!strcmp(a, "--key")) {
            key = v;
        } else if (!strcmp(a, "--key-file")) {
            FILE *f = fopen(v, "r");
            if (!f || !fgets(keybuf, sizeof keybuf, f)) {
                fprintf(stderr, "load: cannot read key from %s\n", v);
                if (f)
                    fclose(f);
                return 2;
            }
            fclose(f);
            keybuf[strcspn(keybuf, "\r\n")] = 0;
            key = keybuf;
        } else if (!strcmp(a, "--connections")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > MAX_CONNECTIONS) {
                fprintf(stderr, "load: --connections must be 1..%d\n", MAX_CONNECTIONS);
                return 2;
            }
            nconn = (int)n;
        } else if (!strcmp(a, "--duration")) {
            duration = strtod(v, &end);
            if (*end || !(duration > 0)) {
                fprintf(stderr, "load: bad --duration\n");
                return 2;
            }
        } else if (!strcmp(a, "--requests")) {
            unsigned long long n = strtoull(v, &end, 10);
            if (*end || n < 1 || v[0] == '-') {
                fprintf(stderr, "load: bad --requests\n");
                return 2;
            }
            max_requests = n;
        } else if (!strcmp(a, "--timeout")) {
            double t = strtod(v, &end);
            if (*end || !(t > 0)) {
                fprintf(stderr, "load: bad --timeout\n");
                return 2;
            }
            timeout_ns = (uint64_t)(t * 1e9);
        } else if (!strcmp(a, "--expect")) {
            expect_str = v;
        } else if (!strcmp(a, "--tsv")) {
            tsv = v;
        } else {
            fprintf(stderr, "load: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!target || n_reqs == 0) {
        usage(stderr);
        return 2;
    }
    if (duration > 0 && max_requests) {
        fprintf(stderr, "load: give --duration or --requests, not both\n");
        return 2;
    }
    if (duration <= 0 && !max_requests)
        duration = 10;

    /* Target: numeric IPv4 loopback only. */
    const char *colon = strrchr(target, ':');
    char host[48];
    if (!colon || (size_t)(colon - target) >= sizeof host) {
        fprintf(stderr, "load: --target wants 127.0.0.1:PORT\n");
        return 2;
    }
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = 0;
    char *pend;
    long port = strtol(colon + 1, &pend, 10);
    memset(&target_addr, 0, sizeof target_addr);
    target_addr.sin_family = AF_INET;
    if (*pend || port < 1 || port > 65535 || inet_pton(AF_INET, host, &target_addr.sin_addr) != 1) {
        fprintf(stderr, "load: --target wants 127.0.0.1:PORT\n");
        return 2;
    }
    if ((ntohl(target_addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "load: refusing a non-loopback target %s (benchmarks stay on 127.0.0.0/8)\n", host);
        return 2;
    }
    target_addr.sin_port = htons((uint16_t)port);
    snprintf(target_hostport, sizeof target_hostport, "%s:%ld", host, port);

    /* Prebuilt request bytes per path. */
    for (size_t i = 0; i < n_reqs; i++) {
        size_t cap = strlen(reqs[i].path) + (key ? strlen(key) : 0) + 256;
        reqs[i].req = xrealloc(NULL, cap);
        int n;
        if (key && *key)
            n = snprintf(reqs[i].req, cap,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: application/json\r\n"
                         "User-Agent: browserd-bench-load\r\n\r\n",
                         reqs[i].path, target_hostport, key);
        else
            n = snprintf(reqs[i].req, cap,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                         "User-Agent: browserd-bench-load\r\n\r\n",
                         reqs[i].path, target_hostport);
        reqs[i].req_len = (size_t)n;
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("load: epoll_create1");
        return 2;
    }
    conn_t *conns = calloc((size_t)nconn, sizeof *conns);
    if (!conns) {
        fprintf(stderr, "load: out of memory\n");
        return 2;
    }

    t_begin = now_ns();
    t_last_done = t_begin;
    if (duration > 0)
        deadline_ns = t_begin + (uint64_t)(duration * 1e9);
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = -1;
        conns[i].retry_req = -1;
        conn_open(&conns[i]);
    }

    struct epoll_event evs[256];
    bool aborted = false;
    for (;;) {
        uint64_t now = now_ns();
        /* Timeouts, reconnects, and the end condition. */
        bool any_active = false;
        for (int i = 0; i < nconn; i++) {
            conn_t *c = &conns[i];
            if (c->state == C_BUSY && now - c->t_start > timeout_ns) {
                fail_request(c, "timeout", &shapes[reqs[c->req].shape].timeouts);
                conn_close(c, 0);
            }
            if (c->state == C_CLOSED && now >= c->reconnect_at && may_issue())
                conn_open(c);
            if (c->state == C_CONNECTING || c->state == C_BUSY)
                any_active = true;
            else if (c->state == C_CLOSED && may_issue())
                any_active = true;
        }
        if (!any_active)
            break;
        if (interrupted || consecutive_connect_errors > (uint64_t)nconn * 20) {
            if (!interrupted)
                fprintf(stderr, "load: giving up: %" PRIu64 " connection failures in a row\n",
                        consecutive_connect_errors);
            aborted = true;
            break;
        }
        int n = epoll_wait(ep, evs, 256, 20);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("load: epoll_wait");
            return 2;
        }
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events);
    }
    for (int i = 0; i < nconn; i++) {
        if (conns[i].state == C_BUSY)
            fail_request(&conns[i], "aborted", &shapes[reqs[conns[i].req].shape].io_errors);
        if (conns[i].fd >= 0)
            close(conns[i].fd);
        free(conns[i].rbuf);
    }
    free(conns);
    close(ep);

    double elapsed = (double)(t_last_done - t_begin) / 1e9;
    if (elapsed <= 0)
        elapsed = 1e-9;

    FILE *tf = NULL;
    if (tsv) {
        tf = fopen(tsv, "w");
        if (!tf) {
            fprintf(stderr, "load: cannot write %s: %s\n", tsv, strerror(errno));
            return 2;
        }
        fprintf(tf, "shape\tcount\terrors\tmean_us\tp50_us\tp99_us\tmax_us\ttotal\ttotal_changed\tfirst_id\n");
    }
    if (!quiet)
        printf("%-22s %9s %7s %9s %9s %9s %9s %12s\n", "shape", "count", "errors", "mean ms", "p50 ms", "p99 ms",
               "max ms", "total");
    uint64_t *all = xrealloc(NULL, (ok_count ? ok_count : 1) * sizeof *all);
    size_t nall = 0;
    for (size_t i = 0; i < n_shapes; i++) {
        shape_t *s = &shapes[i];
        qsort(s->lat, s->n, sizeof *s->lat, cmp_u64);
        uint64_t sum = 0;
        for (size_t k = 0; k < s->n; k++) {
            sum += s->lat[k];
            all[nall++] = s->lat[k];
        }
        double mean = s->n ? (double)sum / (double)s->n : 0;
        uint64_t p50 = pct(s->lat, s->n, 0.50), p99 = pct(s->lat, s->n, 0.99), mx = s->n ? s->lat[s->n - 1] : 0;
        char tot[32] = "-";
        if (s->have_total)
            snprintf(tot, sizeof tot, "%" PRId64, s->first_total);
        if (!quiet) {
            printf("%-22s %9zu %7" PRIu64 " %9.3f %9.3f %9.3f %9.3f %12s", s->name, s->n, s->errors, mean / 1e6,
                   (double)p50 / 1e6, (double)p99 / 1e6, (double)mx / 1e6, tot);
            if (s->total_changed)
                printf("  (total changed in %" PRIu64 " responses)", s->total_changed);
            if (s->errors)
                printf("  [status %" PRIu64 ", body %" PRIu64 ", io %" PRIu64 ", timeout %" PRIu64 "]",
                       s->status_errors, s->body_errors, s->io_errors, s->timeouts);
            printf("\n");
        }
        if (tf)
            fprintf(tf, "%s\t%zu\t%" PRIu64 "\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%" PRIu64 "\t%s\n", s->name, s->n,
                    s->errors, mean / 1e3, (double)p50 / 1e3, (double)p99 / 1e3, (double)mx / 1e3, tot,
                    s->total_changed, s->first_id[0] ? s->first_id : "-");
    }
    qsort(all, nall, sizeof *all, cmp_u64);
    uint64_t sum = 0;
    for (size_t k = 0; k < nall; k++)
        sum += all[k];
    double rps = (double)ok_count / elapsed;
    /* Our own CPU time: on a small machine the driver competes with the server for cores. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                   (double)ru.ru_stime.tv_usec / 1e6;
    if (!quiet) {
        printf("%-22s %9zu %7" PRIu64 " %9.3f %9.3f %9.3f %9.3f\n", "ALL", nall, err_count,
               nall ? (double)sum / (double)nall / 1e6 : 0, (double)pct(all, nall, 0.5) / 1e6,
               (double)pct(all, nall, 0.99) / 1e6, nall ? (double)all[nall - 1] / 1e6 : 0);
        printf("%" PRIu64 " OK, %" PRIu64 " errors in %.2f s with %d connections: %.0f req/s", ok_count, err_count,
               elapsed, nconn, rps);
        printf(" (load itself used %.2f CPU s)", cpu_s);
        if (reconnects || connect_errors)
            printf(" (%" PRIu64 " reissued after a server close, %" PRIu64 " connect failures)", reconnects,
                   connect_errors);
        printf("\n");
    }
    if (tf) {
        fprintf(tf, "ALL\t%zu\t%" PRIu64 "\t%.1f\t%.1f\t%.1f\t%.1f\t-\t0\t-\n", nall, err_count,
                nall ? (double)sum / (double)nall / 1e3 : 0, (double)pct(all, nall, 0.5) / 1e3,
                (double)pct(all, nall, 0.99) / 1e3, nall ? (double)all[nall - 1] / 1e3 : 0);
        fprintf(tf, "RATE\t%.1f\t%.3f\t%" PRIu64 "\t%" PRIu64 "\t%d\t%.3f\n", rps, elapsed, ok_count, err_count, nconn,
                cpu_s);
        fclose(tf);
    }
    free(all);
    if (aborted || err_count || connect_errors)
        return 1;
    return 0;
}
