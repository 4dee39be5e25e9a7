/* The client side of the link to a chromedriver: see driver_link.h. */
#include "webdriver/driver_link.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "webdriver/driver_netns.h"

struct driver_link {
    uv_tcp_t tcp;
    http_parser parser;
    http_parser_settings settings;
    bool usable;
    bool closing;
    /* the request in flight */
    driver_link_cb cb;
    void *arg;
    buf_t body;
    bool body_too_big;
    char content_type[128];
    bool header_is_content_type;
    bool complete;
};

typedef struct {
    uv_write_t req;
    char *data;
} link_write_t;

static void answer(driver_link_t *l, int status) {
    driver_link_cb cb = l->cb;
    l->cb = NULL;
    if (!cb) return;
    if (status < 0) {
        buf_reset(&l->body);
        cb(l->arg, status, "", NULL, 0);
        return;
    }
    size_t len = 0;
    char *body = buf_steal(&l->body, &len);
    if (!body) body = calloc(1, 1);
    if (!body) {
        cb(l->arg, -ENOMEM, "", NULL, 0);
        return;
    }
    cb(l->arg, status, l->content_type, body, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    driver_link_t *l = p->data;
    l->header_is_content_type = len == 12 && strncasecmp(at, "content-type", 12) == 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    driver_link_t *l = p->data;
    if (l->header_is_content_type) snprintf(l->content_type, sizeof l->content_type, "%.*s", (int)len, at);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    driver_link_t *l = p->data;
    if (l->body.len + len > DRIVER_LINK_MAX_BODY) {
        l->body_too_big = true;
        return 1;
    }
    return buf_append(&l->body, at, len) < 0 ? 1 : 0;
}

static int on_message_complete(http_parser *p) {
    driver_link_t *l = p->data;
    l->complete = true;
    http_parser_pause(p, 1); /* one answer per request: nothing after it is expected */
    return 0;
}

static void on_closed(uv_handle_t *h) {
    driver_link_t *l = h->data;
    buf_free(&l->body);
    free(l);
}

static void lose(driver_link_t *l, int status) {
    l->usable = false;
    uv_read_stop((uv_stream_t *)&l->tcp);
    answer(l, status);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)h;
    (void)suggested;
    static char space[64 * 1024]; /* loop thread only; a read is parsed before the next one */
    *b = uv_buf_init(space, sizeof space);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    driver_link_t *l = s->data;
    if (n == 0) return;
    if (n < 0 && !l->cb) { /* closed between requests */
        l->usable = false;
        uv_read_stop(s);
        return;
    }
    if (n < 0) {
        lose(l, -ECONNRESET);
        return;
    }
    if (!l->cb) { /* the driver spoke unasked */
        lose(l, -EPROTO);
        return;
    }
    size_t used = http_parser_execute(&l->parser, &l->settings, b->base, (size_t)n);
    if (l->complete) {
        int status = (int)l->parser.status_code;
        bool keep = http_should_keep_alive(&l->parser) && used == (size_t)n;
        if (!keep) { /* the driver closes after this answer: it is the last one */
            l->usable = false;
            uv_read_stop(s);
        }
        answer(l, status);
        return;
    }
    if (used != (size_t)n || HTTP_PARSER_ERRNO(&l->parser) != HPE_OK)
        lose(l, l->body_too_big ? -EMSGSIZE : -EPROTO);
}

int driver_link_open(uv_loop_t *loop, int fd, driver_link_t **out) {
    *out = NULL;
    driver_link_t *l = calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        return UV_ENOMEM;
    }
    buf_init(&l->body);
    uv_tcp_init(loop, &l->tcp);
    l->tcp.data = l;
    int rc = uv_tcp_open(&l->tcp, fd);
    if (rc < 0) {
        close(fd);
        uv_close((uv_handle_t *)&l->tcp, on_closed);
        return rc;
    }
    uv_tcp_nodelay(&l->tcp, 1);
    if ((rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read)) < 0) { /* EOF while idle: unusable */
        uv_close((uv_handle_t *)&l->tcp, on_closed);
        return rc;
    }
    http_parser_settings_init(&l->settings);
    l->settings.on_header_field = on_header_field;
    l->settings.on_header_value = on_header_value;
    l->settings.on_body = on_body;
    l->settings.on_message_complete = on_message_complete;
    l->usable = true;
    *out = l;
    return 0;
}

static void on_written(uv_write_t *w, int status) {
    link_write_t *lw = (link_write_t *)w;
    driver_link_t *l = w->handle->data;
    free(lw->data);
    free(lw);
    if (status < 0 && !l->closing) lose(l, -ECONNRESET);
}

int driver_link_request(driver_link_t *l, const char *method, const char *path, const char *body, size_t len,
                        driver_link_cb cb, void *arg) {
    if (l->cb) return -EBUSY;
    if (!l->usable || l->closing) return -EPIPE;
    buf_t b;
    buf_init(&b);
    int rc = buf_printf(&b,
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json; charset=utf-8\r\n"
                        "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n",
                        method, path, DRIVER_NETNS_DRIVER_PORT, body ? len : 0);
    if (body && len) rc |= buf_append(&b, body, len);
    link_write_t *lw = rc < 0 ? NULL : calloc(1, sizeof *lw);
    if (!lw) {
        buf_free(&b);
        return -ENOMEM;
    }
    size_t n;
    lw->data = buf_steal(&b, &n);
    uv_buf_t ub = uv_buf_init(lw->data, (unsigned)n);
    http_parser_init(&l->parser, HTTP_RESPONSE);
    l->parser.data = l;
    l->complete = l->body_too_big = false;
    l->content_type[0] = '\0';
    buf_reset(&l->body);
    if (uv_write(&lw->req, (uv_stream_t *)&l->tcp, &ub, 1, on_written) < 0) {
        free(lw->data);
        free(lw);
        l->usable = false;
        return -EPIPE;
    }
    l->cb = cb;
    l->arg = arg;
    return 0;
}

bool driver_link_usable(const driver_link_t *l) { return l->usable && !l->closing; }

void driver_link_close(driver_link_t *l) {
    if (!l || l->closing) return;
    l->closing = true;
    l->usable = false;
    answer(l, -ECANCELED);
    uv_close((uv_handle_t *)&l->tcp, on_closed);
}
