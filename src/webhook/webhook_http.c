#include "webhook/webhook_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/timeutil.h"

static int64_t now_ms(void) { return (int64_t)(time_monotonic_ns() / 1000000); }

/* Waits until fd is ready for `events` or the deadline (monotonic ms) passes: 0, -ETIMEDOUT,
 * -ECANCELED (stop_fd readable), or a poll error. */
static int wait_fd(int fd, short events, int64_t deadline, int stop_fd) {
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) return -ETIMEDOUT;
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = stop_fd, .events = POLLIN}};
        int n = poll(p, stop_fd >= 0 ? 2 : 1, left > 60000 ? 60000 : (int)left);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (stop_fd >= 0 && (p[1].revents & POLLIN)) return -ECANCELED;
        if (n > 0 && p[0].revents) return 0;
    }
}

int webhook_http_tls_new(const char *ca_file, SSL_CTX **out, char *err, size_t err_cap) {
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, err_cap, "cannot make a TLS context");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        unsigned long e = ERR_get_error();
        snprintf(err, err_cap, "cannot load the CA certificates%s%s: %s", ca_file ? " of " : "", ca_file ? ca_file : "",
                 e ? ERR_reason_error_string(e) : "unknown error");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    *out = ctx;
    return 0;
}

void webhook_http_tls_free(SSL_CTX *ctx) { SSL_CTX_free(ctx); }

/* One connection: its socket and, for https://, its TLS session; the waits' deadline. */
typedef struct {
    int fd;
    SSL *ssl;
    int stop_fd;
    int64_t deadline;
    char tls_error[160]; /* why a TLS call failed, when it did */
} conn_t;

/* After a TLS call returned rc <= 0: waits for what it wants (0: call again), or fails. */
static int tls_retry(conn_t *c, int rc) {
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) return wait_fd(c->fd, POLLIN, c->deadline, c->stop_fd);
    if (e == SSL_ERROR_WANT_WRITE) return wait_fd(c->fd, POLLOUT, c->deadline, c->stop_fd);
    long verify = SSL_get_verify_result(c->ssl);
    unsigned long code = ERR_get_error();
    if (verify != X509_V_OK)
        snprintf(c->tls_error, sizeof c->tls_error, "certificate not accepted: %s",
                 X509_verify_cert_error_string(verify));
    else if (code)
        snprintf(c->tls_error, sizeof c->tls_error, "TLS: %s", ERR_reason_error_string(code));
    else
        snprintf(c->tls_error, sizeof c->tls_error, "TLS: the connection closed");
    ERR_clear_error();
    return -EPROTO;
}

static int tls_start(conn_t *c, SSL_CTX *ctx, const webhook_url_t *u) {
    if (!ctx) {
        snprintf(c->tls_error, sizeof c->tls_error, "TLS is not set up");
        return -EPROTO;
    }
    c->ssl = SSL_new(ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) return -ENOMEM;
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    int ok;
    if (u->host.kind == PROXY_HOST_NAME) /* the name is checked, and sent (SNI) */
        ok = SSL_set1_host(c->ssl, u->host.name) == 1 && SSL_set_tlsext_host_name(c->ssl, u->host.name) == 1;
    else /* an address in the URL: the certificate must name that address */
        ok = X509_VERIFY_PARAM_set1_ip(param, u->host.addr, u->host.kind == PROXY_HOST_IPV4 ? 4 : 16) == 1;
    if (!ok) return -ENOMEM;
    for (;;) {
        int rc = SSL_connect(c->ssl);
        if (rc == 1) return 0;
        if ((rc = tls_retry(c, rc)) != 0) return rc;
    }
}

static int connect_one(const webhook_addr_t *a, int64_t timeout_ms, int stop_fd, int *out) {
    int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc = 0;
    if (connect(fd, (const struct sockaddr *)&a->addr, a->len) != 0) {
        rc = errno == EINPROGRESS ? 0 : -errno;
        if (rc == 0) rc = wait_fd(fd, POLLOUT, now_ms() + timeout_ms, stop_fd);
        int so = 0;
        socklen_t len = sizeof so;
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0) rc = -errno;
        if (rc == 0 && so != 0) rc = -so;
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

static int send_all(conn_t *c, const char *data, size_t len) {
    while (len > 0) {
        if (c->ssl) {
            int n = SSL_write(c->ssl, data, len > (1 << 30) ? 1 << 30 : (int)len);
            if (n > 0) {
                data += n;
                len -= (size_t)n;
                continue;
            }
            int rc = tls_retry(c, n);
            if (rc != 0) return rc;
            continue;
        }
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        int rc = wait_fd(c->fd, POLLOUT, c->deadline, c->stop_fd);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Some bytes of the answer: > 0, 0 at its end, or a negative errno. */
static ssize_t receive(conn_t *c, char *buf, size_t cap) {
    for (;;) {
        if (c->ssl) {
            int n = SSL_read(c->ssl, buf, (int)cap);
            if (n > 0) return n;
            if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN) return 0;
            int rc = tls_retry(c, n);
            if (rc != 0) return rc;
            continue;
        }
        ssize_t n = recv(c->fd, buf, cap, 0);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        int rc = wait_fd(c->fd, POLLIN, c->deadline, c->stop_fd);
        if (rc != 0) return rc;
    }
}

/* Reads until the status line is complete: "HTTP/1.x NNN ...". */
static int read_status(conn_t *c, int *status) {
    char line[512];
    size_t have = 0;
    for (;;) {
        char *eol = have ? memchr(line, '\n', have) : NULL;
        if (eol || have == sizeof line) {
            if (have >= 12 && memcmp(line, "HTTP/1.", 7) == 0 && line[8] == ' ' && line[9] >= '1' && line[9] <= '5' &&
                line[10] >= '0' && line[10] <= '9' && line[11] >= '0' && line[11] <= '9') {
                *status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
                return 0;
            }
            return -EPROTO;
        }
        ssize_t n = receive(c, line + have, sizeof line - have);
        if (n < 0) return (int)n;
        if (n == 0) return -EPROTO; /* closed before a status line */
        have += (size_t)n;
    }
}

static const char *reason_of(const conn_t *c, int rc) {
    if (rc == -ETIMEDOUT) return "response timeout";
    if (rc == -EPROTO) return c->tls_error[0] ? c->tls_error : "not an HTTP answer";
    return strerror(-rc);
}

int webhook_http_post(const webhook_http_request_t *rq, int *status, char *err, size_t err_cap) {
    *status = 0;
    conn_t c = {.fd = -1, .stop_fd = rq->stop_fd};
    int rc = -EHOSTUNREACH;
    for (size_t i = 0; i < rq->addr_count; i++) {
        rc = connect_one(&rq->addrs[i], rq->connect_timeout_ms, rq->stop_fd, &c.fd);
        if (rc == 0 || rc == -ECANCELED) break;
    }
    if (rc != 0) {
        snprintf(err, err_cap, "cannot connect to %s: %s", rq->url->host_header,
                 rc == -ETIMEDOUT ? "connect timeout" : strerror(-rc));
        return rc;
    }
    c.deadline = now_ms() + rq->response_timeout_ms;
    const char *stage = "TLS handshake";
    buf_t head;
    buf_init(&head);
    rc = rq->url->tls ? tls_start(&c, rq->tls, rq->url) : 0;
    if (rc == 0) {
        stage = "sending the request";
        rc = buf_printf(&head,
                        "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: browserd-webhooks\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                        rq->url->target, rq->url->host_header, rq->body_len, rq->headers ? rq->headers : "") < 0
                 ? -ENOMEM
                 : 0;
    }
    if (rc == 0) rc = send_all(&c, head.data, head.len);
    if (rc == 0) rc = send_all(&c, rq->body, rq->body_len);
    if (rc == 0) {
        stage = "waiting for the answer";
        rc = read_status(&c, status);
    }
    buf_free(&head);
    if (c.ssl) {
        /* No close_notify exchange: the answer's status is all that is wanted, and waiting
         * for the peer's alert would cost a round trip per delivery. */
        SSL_free(c.ssl);
    }
    close(c.fd);
    if (rc != 0) snprintf(err, err_cap, "%s %s: %s", rq->url->host_header, stage, reason_of(&c, rc));
    return rc;
}
