#include "cdp/captcha_solver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define RESPONSE_MAX (256u * 1024u) /* a solver's reply is a few hundred bytes; a token a few KB */

typedef struct conn conn_t;

struct captcha_solve {
    uv_loop_t *loop;
    char host[256], base[512];
    int port;
    char *key;
    char *create_body;
    uint64_t poll_ms;
    long long task_id;
    captcha_solve_cb cb;
    void *ctx;
    bool finished;    /* the callback ran, or the job was cancelled */
    unsigned pending; /* open handles and requests that still call back */
    uv_timer_t deadline, poll;
    uv_getaddrinfo_t gai;
    bool gai_busy;
    struct sockaddr_storage addr;
    conn_t *conn; /* the request in flight, or NULL */
};

/* One HTTP exchange: its own handle, freed in its close callback. */
struct conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    captcha_solve_t *job;
    bool want_task;
    bool closing;
    char *req;
    size_t req_len;
    char *resp;
    size_t resp_len, resp_cap;
};

static void maybe_free(captcha_solve_t *j) {
    if (!j->finished || j->pending) return;
    free(j->key);
    free(j->create_body);
    free(j);
}

static void on_handle_closed(uv_handle_t *h) {
    captcha_solve_t *j = h->data;
    j->pending--;
    maybe_free(j);
}

static void on_conn_closed(uv_handle_t *h) {
    conn_t *c = h->data;
    captcha_solve_t *j = c->job;
    free(c->req);
    free(c->resp);
    free(c);
    j->pending--;
    maybe_free(j);
}

static void conn_close(conn_t *c) {
    if (c->closing) return;
    c->closing = true;
    if (c->job->conn == c) c->job->conn = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void teardown(captcha_solve_t *j) {
    j->finished = true;
    if (!uv_is_closing((uv_handle_t *)&j->deadline)) uv_close((uv_handle_t *)&j->deadline, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&j->poll)) uv_close((uv_handle_t *)&j->poll, on_handle_closed);
    if (j->gai_busy) uv_cancel((uv_req_t *)&j->gai);
    if (j->conn) conn_close(j->conn);
}

static void finish(captcha_solve_t *j, bool ok, const char *token, const char *why) {
    if (j->finished) return;
    j->finished = true;
    j->cb(j->ctx, ok, token, why);
    teardown(j);
}

void captcha_solve_cancel(captcha_solve_t *j) {
    if (!j || j->finished) return;
    teardown(j);
}

static void on_deadline(uv_timer_t *t) {
    captcha_solve_t *j = t->data;
    finish(j, false, NULL, j->task_id ? "the solver did not answer with a solution in time" : "the solver did not take the task in time");
}

static void send_request(captcha_solve_t *j, const char *path, const char *body, bool want_task);

static void on_poll(uv_timer_t *t) {
    captcha_solve_t *j = t->data;
    char *body = captcha_task_result_body(j->key, j->task_id);
    if (!body) {
        finish(j, false, NULL, "out of memory");
        return;
    }
    send_request(j, "/getTaskResult", body, false);
    free(body);
}

static void on_response(conn_t *c) {
    captcha_solve_t *j = c->job;
    int status;
    char *body;
    size_t body_len;
    char why[200];
    if (captcha_http_response(c->resp, c->resp_len, &status, &body, &body_len) < 0) {
        finish(j, false, NULL, "the solver's answer is not a complete HTTP response");
        return;
    }
    if (status != 200) {
        snprintf(why, sizeof why, "the solver answered HTTP %d", status);
        finish(j, false, NULL, why);
        return;
    }
    captcha_reply_t r;
    captcha_parse_reply(body, body_len, c->want_task, &r);
    switch (r.kind) {
    case CAPTCHA_REPLY_TASK:
        j->task_id = r.task_id;
        uv_timer_start(&j->poll, on_poll, j->poll_ms, 0);
        break;
    case CAPTCHA_REPLY_PROCESSING:
        uv_timer_start(&j->poll, on_poll, j->poll_ms, 0);
        break;
    case CAPTCHA_REPLY_READY:
        finish(j, true, r.token, NULL);
        break;
    default:
        finish(j, false, NULL, r.message);
        break;
    }
    free(r.token);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    conn_t *c = h->data;
    (void)suggested;
    if (c->resp_cap - c->resp_len < 4096 && c->resp_cap < RESPONSE_MAX) {
        size_t cap = c->resp_cap ? c->resp_cap * 2 : 8192;
        char *p = realloc(c->resp, cap);
        if (p) {
            c->resp = p;
            c->resp_cap = cap;
        }
    }
    *buf = uv_buf_init(c->resp + c->resp_len, (unsigned)(c->resp_cap - c->resp_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    conn_t *c = s->data;
    (void)buf;
    if (n > 0) {
        c->resp_len += (size_t)n;
        if (c->resp_len == c->resp_cap && c->resp_cap >= RESPONSE_MAX) {
            conn_close(c);
            finish(c->job, false, NULL, "the solver's answer is too large");
        } else if (captcha_http_complete(c->resp, c->resp_len)) {
            uv_read_stop(s); /* all there: the connection's end need not be waited for */
            conn_close(c);
            if (!c->job->finished) on_response(c);
        }
        return;
    }
    if (n == 0) return;
    uv_read_stop(s);
    captcha_solve_t *j = c->job;
    conn_close(c);
    if (j->finished) return;
    if (n == UV_EOF) on_response(c);
    else finish(j, false, NULL, "the solver's connection failed while reading");
}

static void on_written(uv_write_t *w, int status) {
    conn_t *c = w->data;
    captcha_solve_t *j = c->job;
    j->pending--;
    if (status < 0 && !c->closing) {
        conn_close(c);
        finish(j, false, NULL, "cannot send to the solver");
    }
    maybe_free(j);
}

static void on_connected(uv_connect_t *req, int status) {
    conn_t *c = req->data;
    captcha_solve_t *j = c->job;
    j->pending--;
    if (c->closing) {
        maybe_free(j);
        return;
    }
    if (status < 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot connect to the solver (%s)", uv_strerror(status));
        conn_close(c);
        finish(j, false, NULL, why);
        return;
    }
    uv_buf_t b = uv_buf_init(c->req, (unsigned)c->req_len);
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        finish(j, false, NULL, "cannot send to the solver");
        return;
    }
    j->pending++;
}

static void send_request(captcha_solve_t *j, const char *path, const char *body, bool want_task) {
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        finish(j, false, NULL, "out of memory");
        return;
    }
    c->job = j;
    c->want_task = want_task;
    size_t blen = strlen(body);
    bool v6 = strchr(j->host, ':') != NULL;
    int n = asprintf(&c->req,
                     "POST %s%s HTTP/1.1\r\nHost: %s%s%s:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     j->base, path, v6 ? "[" : "", j->host, v6 ? "]" : "", j->port, blen, body);
    if (n < 0) {
        c->req = NULL;
        free(c);
        finish(j, false, NULL, "out of memory");
        return;
    }
    c->req_len = (size_t)n;
    if (uv_tcp_init(j->loop, &c->tcp) < 0) {
        free(c->req);
        free(c);
        finish(j, false, NULL, "cannot open a socket");
        return;
    }
    c->tcp.data = c;
    j->pending++; /* the handle */
    j->conn = c;
    c->connect.data = c;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&j->addr, on_connected);
    if (rc < 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot connect to the solver (%s)", uv_strerror(rc));
        conn_close(c);
        finish(j, false, NULL, why);
        return;
    }
    j->pending++; /* the connect request */
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    captcha_solve_t *j = req->data;
    j->gai_busy = false;
    j->pending--;
    if (j->finished || status < 0 || !res) {
        if (!j->finished) {
            char why[200];
            snprintf(why, sizeof why, "cannot resolve the solver's host %.100s (%s)", j->host, uv_strerror(status ? status : UV_ENOENT));
            finish(j, false, NULL, why);
        }
        if (res) uv_freeaddrinfo(res);
        maybe_free(j);
        return;
    }
    memcpy(&j->addr, res->ai_addr, res->ai_addrlen);
    int family = res->ai_family;
    uv_freeaddrinfo(res);
    if (family == AF_INET6) ((struct sockaddr_in6 *)&j->addr)->sin6_port = htons((uint16_t)j->port);
    else ((struct sockaddr_in *)&j->addr)->sin_port = htons((uint16_t)j->port);
    send_request(j, "/createTask", j->create_body, true);
}

int captcha_solve_start(uv_loop_t *loop, const captcha_solver_config_t *cfg, const captcha_found_t *f,
                        captcha_solve_cb cb, void *ctx, captcha_solve_t **out) {
    if (!cfg->url || !*cfg->url || !captcha_task_type(f->kind)) return -EINVAL;
    captcha_solve_t *j = calloc(1, sizeof *j);
    if (!j) return -ENOMEM;
    char err[160];
    if (captcha_solver_url_parse(cfg->url, j->host, sizeof j->host, &j->port, j->base, sizeof j->base, err, sizeof err) < 0) {
        free(j);
        return -EINVAL;
    }
    j->loop = loop;
    j->cb = cb;
    j->ctx = ctx;
    j->poll_ms = cfg->poll_ms ? cfg->poll_ms : 1000;
    j->key = strdup(cfg->key ? cfg->key : "");
    j->create_body = captcha_create_task_body(j->key ? j->key : "", f);
    if (!j->key || !j->create_body) {
        free(j->key);
        free(j->create_body);
        free(j);
        return -ENOMEM;
    }
    uv_timer_init(loop, &j->deadline);
    uv_timer_init(loop, &j->poll);
    j->deadline.data = j->poll.data = j;
    j->pending = 2;
    uv_timer_start(&j->deadline, on_deadline, cfg->timeout_ms ? cfg->timeout_ms : 120000, 0);
    j->gai.data = j;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    int rc = uv_getaddrinfo(loop, &j->gai, on_resolved, j->host, NULL, &hints);
    if (rc < 0) {
        teardown(j); /* frees j once the timers are closed; no callback */
        return rc;
    }
    j->gai_busy = true;
    j->pending++;
    *out = j;
    return 0;
}
