/* The live view's viewers: see liveview.h. This file: GET /live/<token> and its assets, the
 * viewer's WebSocket (/live/<token>/ws), frames out (the newest wins), input in. */
#include "cdp/liveview_viewer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdp/liveview_internal.h"
#include "cdp/liveview_proto.h"
#include "cdp/liveview_viewer_css.h" /* generated from liveview/ by the build */
#include "cdp/liveview_viewer_html.h"
#include "cdp/liveview_viewer_js.h"
#include "core/log.h"

/* ---------------------------------------------------------------- viewers: writing ---- */

typedef struct {
    uv_write_t req;
    lv_viewer_t *v;
    lv_frame_t *frame; /* or NULL: a control or text message in `own` */
    bool close_after;
    char own[];
} viewer_write_t;

static void viewer_closed(uv_handle_t *h) {
    lv_viewer_t *v = h->data;
    lv_frame_unref(v->next_frame);
    ws_reader_free(&v->reader);
    free(v);
}


static void viewer_close_now(lv_viewer_t *v) {
    lv_viewer_detach(v);
    if (uv_is_closing((uv_handle_t *)&v->tcp)) return;
    v->open = false;
    uv_close((uv_handle_t *)&v->tcp, viewer_closed);
}


static void on_viewer_written(uv_write_t *req, int status) {
    viewer_write_t *w = req->data;
    lv_viewer_t *v = w->v;
    if (w->frame) {
        v->frames_in_flight--;
        lv_frame_unref(w->frame);
    }
    bool close_after = w->close_after;
    free(w);
    if (close_after || status < 0) {
        viewer_close_now(v);
        return;
    }
    if (v->open && v->next_frame && !v->frames_in_flight) {
        lv_frame_t *f = v->next_frame;
        v->next_frame = NULL;
        lv_viewer_offer(v, f);
        lv_frame_unref(f);
    }
}

/* Writes a frame (f: a reference is taken) or own bytes (copied). */
static int viewer_write(lv_viewer_t *v, lv_frame_t *f, const void *bytes, size_t len, bool close_after) {
    viewer_write_t *w = malloc(sizeof *w + (f ? 0 : len));
    if (!w) return -ENOMEM;
    w->v = v;
    w->frame = f;
    w->close_after = close_after;
    w->req.data = w;
    if (f) {
        f->refs++;
        v->frames_in_flight++;
    } else {
        memcpy(w->own, bytes, len);
    }
    uv_buf_t b = f ? uv_buf_init(f->bytes, (unsigned)f->len) : uv_buf_init(w->own, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&v->tcp, &b, 1, on_viewer_written);
    if (rc < 0) {
        if (f) {
            v->frames_in_flight--;
            lv_frame_unref(f);
        }
        free(w);
    }
    return rc;
}

/* Small answers are dropped while a viewer does not read what it was sent: a peer that only
 * writes must not grow browserd's memory. */
#define VIEWER_TEXT_QUEUE_MAX (64u << 10)

static void viewer_send_text(lv_viewer_t *v, const char *text) {
    if (!v->open || uv_stream_get_write_queue_size((uv_stream_t *)&v->tcp) > VIEWER_TEXT_QUEUE_MAX) return;
    size_t len = strlen(text);
    uint8_t hdr[WS_MAX_HEADER];
    size_t hl = ws_frame_header(hdr, WS_OP_TEXT, true, len, NULL);
    char *p = malloc(hl + len);
    if (!p) return;
    memcpy(p, hdr, hl);
    memcpy(p + hl, text, len);
    viewer_write(v, NULL, p, hl + len, false);
    free(p);
}

/* Sends a close frame, then closes the connection once it is written. */
void lv_viewer_close(lv_viewer_t *v, uint16_t code, const char *reason) {
    if (!v->open) return;
    lv_viewer_detach(v);
    v->open = false;
    uv_read_stop((uv_stream_t *)&v->tcp);
    /* a viewer that has not taken what it was sent would keep its close frame (and the
     * daemon's exit) waiting: it is cut off at once */
    uint8_t frame[WS_MAX_CONTROL_FRAME];
    size_t n = ws_close_frame(frame, code, reason, strlen(reason), NULL);
    if (!n || uv_stream_get_write_queue_size((uv_stream_t *)&v->tcp) > 0 || viewer_write(v, NULL, frame, n, true) < 0)
        viewer_close_now(v);
}

/* The newest frame wins: one written at a time, and while it is, only the latest waits. A
 * slow viewer skips frames (counted as dropped) instead of buffering them. */
void lv_viewer_offer(lv_viewer_t *v, lv_frame_t *f) {
    if (!v->open) return;
    if (v->frames_in_flight) {
        if (v->next_frame) {
            lv_frame_unref(v->next_frame);
            v->gw->metrics.live_frames_dropped++;
        }
        f->refs++;
        v->next_frame = f;
        return;
    }
    if (viewer_write(v, f, NULL, 0, false) == 0) v->gw->metrics.live_frames_sent++;
}

void lv_viewer_detach(lv_viewer_t *v) {
    if (v->counted) {
        v->counted = false;
        v->gw->metrics.live_viewers--;
    }
    lv_stream_t *st = v->stream;
    if (!st) return;
    v->stream = NULL;
    for (lv_viewer_t **p = &st->viewers; *p; p = &(*p)->next)
        if (*p == v) {
            *p = v->next;
            break;
        }
    st->nviewers--;
    if (v->lv) lv_stream_free_if_unwatched(v->lv, st);
    v->lv = NULL;
}

/* ---------------------------------------------------------------- viewers: HTTP ---- */

static void on_viewer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    lv_viewer_t *v = h->data;
    (void)suggested;
    *buf = uv_buf_init(v->rbuf, sizeof v->rbuf);
}

static void on_viewer_input(lv_viewer_t *v, const char *msg, size_t len) {
    liveview_input_t in;
    const char *why = NULL;
    if (!v->stream || !v->lv) return;
    if (!v->input) { /* read-only: dropped, and said so (the page can show it) */
        v->gw->metrics.live_input_dropped++;
        viewer_send_text(v, "{\"type\":\"refused\",\"reason\":\"read-only view\"}");
        return;
    }
    if (liveview_input_parse(msg, len, &in, &why) < 0) {
        char text[160];
        snprintf(text, sizeof text, "{\"type\":\"refused\",\"reason\":\"%s\"}", why);
        viewer_send_text(v, text);
        return;
    }
    char *cmds[LIVEVIEW_MAX_COMMANDS];
    size_t lens[LIVEVIEW_MAX_COMMANDS];
    int n = 0;
    lv_stream_t *st = v->stream;
    session_t *s = v->lv->s;
    if (!s->browser || s->browser_gone || browser_write_queue_size(s->browser) > s->gw->browser_cfg.write_high_watermark)
        return; /* the browser is behind: input waits for nobody (the viewer sends more) */
    if (liveview_input_commands(&in, st->width, st->height, st->session, lv_next_id(v->lv), cmds, lens, &n) < 0)
        return; /* no frame yet: the viewer has nothing it could have aimed at */
    for (int i = 0; i < n; i++) lv_send_browser(v->lv->s, cmds[i], lens[i]);
}

static void on_viewer_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
    lv_viewer_t *v = stream->data;
    if (n < 0) {
        viewer_close_now(v);
        return;
    }
    size_t off = 0;
    while (off < (size_t)n && v->open) {
        ws_event_t ev;
        off += ws_reader_feed(&v->reader, buf->base + off, (size_t)n - off, &ev);
        if (ev.type == WS_EV_MESSAGE) {
            if (ev.opcode == WS_OP_TEXT) on_viewer_input(v, (const char *)ev.data, ev.len);
            free(ev.data);
        } else if (ev.type == WS_EV_PING) {
            uint8_t frame[WS_MAX_CONTROL_FRAME];
            size_t fl = ws_control_frame(frame, WS_OP_PONG, ev.data, ev.len, NULL);
            if (fl && uv_stream_get_write_queue_size((uv_stream_t *)&v->tcp) <= VIEWER_TEXT_QUEUE_MAX)
                viewer_write(v, NULL, frame, fl, false);
        } else if (ev.type == WS_EV_CLOSE) {
            lv_viewer_close(v, WS_CLOSE_NORMAL, "");
        } else if (ev.type == WS_EV_ERROR) {
            lv_viewer_close(v, ev.close_code, ev.reason);
        } else {
            break;
        }
    }
}

static void respond_not_found(http_conn_t *conn) {
    /* one answer for a wrong token, an expired one and a closed page: nothing to learn */
    http_respond_error(conn, 404, "Cache-Control: no-store\r\n", "Not found", true);
}

static void viewer_start(gateway_t *gw, http_conn_t *conn, const http_request_t *req, const char *hex) {
    ws_handshake_req_t hs;
    gateway_ws_handshake_of(req, &hs);
    int status = 400;
    const char *reason = NULL;
    char accept[WS_ACCEPT_LEN + 1];
    if (ws_handshake_validate(&hs, &status, &reason) != 0 || ws_handshake_accept(hs.key, hs.key_len, accept) != 0) {
        http_respond_error(conn, status, NULL, reason ? reason : "Bad request", true);
        return;
    }
    session_t *s = NULL;
    lv_token_t *t = lv_find_token(gw, hex, &s);
    const char *page = t ? lv_page_session_of(&s->observer, t->target) : NULL;
    liveview_session_t *lv = s ? s->live : NULL;
    if (!t || !page || !lv) {
        respond_not_found(conn);
        return;
    }
    lv_viewer_t *v = calloc(1, sizeof *v);
    if (!v) {
        http_respond_error(conn, 503, NULL, "Out of memory", true);
        return;
    }
    int fd = -1;
    char *rest = NULL;
    size_t rest_len = 0;
    if (http_conn_take_over(conn, &fd, &rest, &rest_len) < 0) {
        free(v);
        return;
    }
    free(rest); /* a viewer speaks only after it saw the 101 */
    uv_tcp_init(gw->cfg.loop, &v->tcp);
    v->tcp.data = v;
    v->gw = gw;
    if (uv_tcp_open(&v->tcp, fd) < 0) {
        close(fd);
        uv_close((uv_handle_t *)&v->tcp, viewer_closed);
        return;
    }
    ws_reader_config_t rc = {.role = WS_ROLE_SERVER, .max_message_size = VIEWER_MAX_MESSAGE};
    ws_reader_init(&v->reader, &rc);
    char head[192];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
    v->open = true;
    v->input = t->input;
    viewer_write(v, NULL, head, (size_t)hn, false);
    if (uv_read_start((uv_stream_t *)&v->tcp, on_viewer_alloc, on_viewer_read) < 0) {
        viewer_close_now(v);
        return;
    }
    lv_stream_t *st = NULL;
    for (lv_stream_t *x = lv->streams; x && !st; x = x->next)
        if (strcmp(x->target, t->target) == 0) st = x;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) {
            lv_viewer_close(v, WS_CLOSE_INTERNAL_ERROR, "out of memory");
            return;
        }
        snprintf(st->target, sizeof st->target, "%s", t->target);
        snprintf(st->session, sizeof st->session, "%s", page);
        st->next = lv->streams;
        lv->streams = st;
    }
    v->stream = st;
    v->lv = lv;
    v->next = st->viewers;
    st->viewers = v;
    v->counted = true;
    gw->metrics.live_viewers++;
    viewer_send_text(v, v->input ? "{\"type\":\"hello\",\"input\":true}" : "{\"type\":\"hello\",\"input\":false}");
    if (st->nviewers++ == 0) lv_stream_start(lv, st); /* the first viewer: only now is the page encoded */
    else if (st->latest)
        lv_viewer_offer(v, st->latest);
    log_event(LOG_INFO, "gateway", "live_viewer_open", "session=%s input=%s viewers=%u", s->id_text,
              v->input ? "true" : "false", st->nviewers);
}

typedef struct {
    const char *path;
    const unsigned char *bytes;
    size_t len;
    const char *type;
} lv_asset_t;

/* No inline script or style: what the page shows cannot run. img-src data: is the frames. */
#define SECURITY_HEADERS                                                                               \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "                \
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n" \
    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"      \
    "Cache-Control: no-store\r\n"

static void respond_asset(http_conn_t *conn, const http_request_t *req, const unsigned char *bytes, size_t len,
                          const char *type) {
    if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
        http_respond_error(conn, 405, "Allow: GET, HEAD\r\n", "Method not allowed", false);
        return;
    }
    char headers[640];
    snprintf(headers, sizeof headers, "Content-Type: %s\r\n" SECURITY_HEADERS, type);
    char *body = malloc(len);
    if (!body) {
        http_respond(conn, 500, NULL, NULL, 0, true);
        return;
    }
    memcpy(body, bytes, len);
    http_respond(conn, 200, headers, body, len, false);
}

static bool is_hex_token(const char *p, size_t len) {
    if (len != LIVEVIEW_TOKEN_HEX) return false;
    for (size_t i = 0; i < len; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return false;
    return true;
}

bool liveview_http(gateway_t *gw, http_conn_t *conn, const http_request_t *req) {
    if (strncmp(req->path, "/live", 5) != 0 || (req->path[5] != '/' && req->path[5] != '\0')) return false;
    const char *rest = req->path[5] ? req->path + 6 : "";
    if (!gw->cfg.live_view) {
        respond_not_found(conn);
        return true;
    }
    if (!req->upgrade && strcmp(rest, "viewer.js") == 0) {
        respond_asset(conn, req, liveview_viewer_js, LIVEVIEW_VIEWER_JS_LEN, "text/javascript; charset=utf-8");
        return true;
    }
    if (!req->upgrade && strcmp(rest, "viewer.css") == 0) {
        respond_asset(conn, req, liveview_viewer_css, LIVEVIEW_VIEWER_CSS_LEN, "text/css; charset=utf-8");
        return true;
    }
    size_t n = strcspn(rest, "/");
    if (!is_hex_token(rest, n)) {
        respond_not_found(conn);
        return true;
    }
    if (strcmp(rest + n, "/ws") == 0 && req->upgrade && req->method == HTTP_M_GET) {
        viewer_start(gw, conn, req, rest);
        return true;
    }
    session_t *s = NULL;
    lv_token_t *t = rest[n] || req->upgrade ? NULL : lv_find_token(gw, rest, &s);
    if (!t || !lv_page_session_of(&s->observer, t->target)) {
        respond_not_found(conn);
        return true;
    }
    respond_asset(conn, req, liveview_viewer_html, LIVEVIEW_VIEWER_HTML_LEN, "text/html; charset=utf-8");
    return true;
}

