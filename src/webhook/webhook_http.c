#include "webhook/webhook_http.h"

#include <arpa/inet.h>
#include <errno.h>
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

static int send_all(int fd, const char *data, size_t len, int64_t deadline, int stop_fd) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        int rc = wait_fd(fd, POLLOUT, deadline, stop_fd);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Reads until the status line is complete: "HTTP/1.x NNN ...". */
static int read_status(int fd, int64_t deadline, int stop_fd, int *status) {
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
        ssize_t n = recv(fd, line + have, sizeof line - have, 0);
        if (n > 0) {
            have += (size_t)n;
            continue;
        }
        if (n == 0) return -EPROTO; /* closed before a status line */
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        int rc = wait_fd(fd, POLLIN, deadline, stop_fd);
        if (rc != 0) return rc;
    }
}

int webhook_http_post(const webhook_http_request_t *rq, int *status, char *err, size_t err_cap) {
    *status = 0;
    int fd = -1, rc = -EHOSTUNREACH;
    for (size_t i = 0; i < rq->addr_count; i++) {
        rc = connect_one(&rq->addrs[i], rq->connect_timeout_ms, rq->stop_fd, &fd);
        if (rc == 0 || rc == -ECANCELED) break;
    }
    if (rc != 0) {
        snprintf(err, err_cap, "cannot connect to %s: %s", rq->url->host_header,
                 rc == -ETIMEDOUT ? "connect timeout" : strerror(-rc));
        return rc;
    }
    buf_t head;
    buf_init(&head);
    rc = buf_printf(&head,
                    "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: browserd-webhooks\r\n"
                    "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                    rq->url->target, rq->url->host_header, rq->body_len, rq->headers ? rq->headers : "") < 0
             ? -ENOMEM
             : 0;
    int64_t deadline = now_ms() + rq->response_timeout_ms;
    if (rc == 0) rc = send_all(fd, head.data, head.len, deadline, rq->stop_fd);
    if (rc == 0) rc = send_all(fd, rq->body, rq->body_len, deadline, rq->stop_fd);
    const char *stage = "sending the request";
    if (rc == 0) {
        stage = "waiting for the answer";
        rc = read_status(fd, deadline, rq->stop_fd, status);
    }
    buf_free(&head);
    close(fd);
    if (rc != 0)
        snprintf(err, err_cap, "%s %s: %s", rq->url->host_header, stage,
                 rc == -ETIMEDOUT ? "response timeout" : rc == -EPROTO ? "not an HTTP answer" : strerror(-rc));
    return rc;
}
