/* Messages both ways: see gateway_internal.h.
 *
 * Client -> browser: frames are read straight into the WebSocket reader's message buffer when
 * it can take them (no copy), each complete message is scanned once (cdp_scan) for its id,
 * method and sessionId, and handed to the browser's pipe as it is (browser_send writes the NUL
 * after it). Browser -> client: a pipe message is scanned once, the observer takes its own, and
 * the rest goes out as a text frame: header + the very buffer the message arrived in.
 *
 * Backpressure: the client is not read while the browser's pipe queue is over its high
 * watermark (what was read waits in s->pending), and the browser is not read while the
 * client's socket queue is over GATEWAY_CLIENT_WRITE_HIGH. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_ids.h"
#include "cdp/gateway_internal.h"
#include "json/jsonw.h"

/* ---------------------------------------------------------------- writing to the client ---- */

typedef struct {
    uv_write_t req;
    session_t *s;
    char *payload; /* owned (a message from the browser), or NULL */
    uint8_t header[WS_MAX_CONTROL_FRAME];
} frame_write_t;

static void on_frame_written(uv_write_t *req, int status) {
    frame_write_t *w = req->data;
    session_t *s = w->s;
    (void)status;
    free(w->payload);
    free(w);
    if (s->browser_paused && !s->browser_gone && s->client_open &&
        uv_stream_get_write_queue_size((uv_stream_t *)&s->client) <= GATEWAY_CLIENT_WRITE_LOW) {
        s->browser_paused = false;
        browser_resume_reading(s->browser);
    }
    session_unref(s);
}

/* Queues header bytes (a control frame, or the header of `payload`) and payload (owned: moves
 * here in every case; NULL for none). */
static int queue_frame(session_t *s, const uint8_t *header, size_t header_len, char *payload, size_t len) {
    frame_write_t *w = malloc(sizeof *w);
    if (!w) {
        free(payload);
        return -ENOMEM;
    }
    w->s = s;
    w->payload = payload;
    memcpy(w->header, header, header_len);
    uv_buf_t bufs[2] = {uv_buf_init((char *)w->header, (unsigned)header_len), uv_buf_init(payload, (unsigned)len)};
    w->req.data = w;
    int rc = uv_write(&w->req, (uv_stream_t *)&s->client, bufs, payload && len ? 2 : 1, on_frame_written);
    if (rc < 0) {
        free(payload);
        free(w);
        return rc;
    }
    session_ref(s);
    return 0;
}

/* A data frame: header + payload (ownership of payload moves here). */
static int send_frame(session_t *s, ws_opcode_t op, char *payload, size_t len) {
    if (!s->client_open || s->client_closing) {
        free(payload);
        return -EPIPE;
    }
    uint8_t header[WS_MAX_HEADER];
    size_t hl = ws_frame_header(header, op, true, len, NULL);
    int rc = queue_frame(s, header, hl, payload, len);
    if (rc < 0) return rc;
    if (!s->browser_paused && !s->browser_gone &&
        uv_stream_get_write_queue_size((uv_stream_t *)&s->client) > GATEWAY_CLIENT_WRITE_HIGH) {
        s->browser_paused = true;
        browser_pause_reading(s->browser);
    }
    return 0;
}

void relay_send_text(session_t *s, char *msg, size_t len) {
    if (s->ended) free(msg);
    else send_frame(s, WS_OP_TEXT, msg, len);
}

static int send_control(session_t *s, const uint8_t *frame, size_t len) {
    if (!s->client_open) return -EPIPE;
    return queue_frame(s, frame, len, NULL, 0);
}

/* ---------------------------------------------------------------- closing ---- */

void relay_close_client(session_t *s) {
    if (!s->client_open) return;
    s->client_open = false;
    s->client_reading = false;
    net_lifetime_close((uv_handle_t *)&s->client);
}

typedef struct {
    uv_shutdown_t req;
    session_t *s;
} shutdown_t;

static void on_client_shutdown(uv_shutdown_t *req, int status) {
    shutdown_t *sd = req->data;
    (void)status;
    relay_close_client(sd->s);
    session_unref(sd->s);
    free(sd);
}

void relay_close_client_with(session_t *s, uint16_t code, const char *reason) {
    if (!s->client_open || s->client_closing) return;
    uint8_t frame[WS_MAX_CONTROL_FRAME];
    size_t n = ws_close_frame(frame, code, reason, strlen(reason), NULL);
    if (n) send_control(s, frame, n);
    s->client_closing = true;
    if (s->client_reading) {
        uv_read_stop((uv_stream_t *)&s->client);
        s->client_reading = false;
    }
    shutdown_t *sd = malloc(sizeof *sd);
    if (!sd || uv_shutdown(&sd->req, (uv_stream_t *)&s->client, on_client_shutdown) < 0) {
        free(sd);
        relay_close_client(s);
        return;
    }
    sd->req.data = sd;
    sd->s = s;
    session_ref(s);
}

/* ---------------------------------------------------------------- browserd's own answers ---- */

void relay_reply(session_t *s, int64_t id, const char *session_id, size_t session_id_len, relay_fill_fn fill,
                 const void *ctx) {
    buf_t b;
    buf_init(&b);
    jsonw_t w;
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_key(&w, "id");
    jsonw_int(&w, id);
    fill(s, &w, ctx);
    if (session_id) {
        jsonw_key(&w, "sessionId");
        jsonw_string_n(&w, session_id, session_id_len);
    }
    jsonw_object_end(&w);
    size_t len;
    char *p = jsonw_failed(&w) ? NULL : buf_steal(&b, &len);
    if (p) send_frame(s, WS_OP_TEXT, p, len);
    else buf_free(&b);
}

/* The answer to the client's message m, under its id and sessionId. */
static void reply_to_client(session_t *s, const cdp_msg_t *m, relay_fill_fn fill) {
    relay_reply(s, m->id, m->session_id.ptr, m->session_id.len, fill, NULL);
}

static void fill_session_id(session_t *s, jsonw_t *w, const void *ctx) {
    (void)ctx;
    jsonw_key(w, "result");
    jsonw_object_begin(w);
    jsonw_key(w, "sessionId");
    jsonw_string(w, s->id_text);
    jsonw_object_end(w);
}

void relay_answer_held_id_requests(session_t *s) {
    for (size_t i = 0; i < s->nsid_requests; i++) {
        cdp_msg_t m;
        if (cdp_scan(s->sid_requests[i], s->sid_request_lens[i], &m) == 0 && !s->ended)
            reply_to_client(s, &m, fill_session_id);
        free(s->sid_requests[i]);
    }
    s->nsid_requests = 0;
}

static void fill_bandwidth(session_t *s, jsonw_t *w, const void *ctx) {
    (void)ctx;
    traffic_counts_t c = {0};
    if (s->net) {
        traffic_proxy_counts(s->net->proxy, &c);
        c.total_bytes -= s->net_base.total_bytes;
        c.payload_bytes -= s->net_base.payload_bytes;
        c.overhead_bytes -= s->net_base.overhead_bytes;
    }
    jsonw_key(w, "result");
    jsonw_object_begin(w);
    jsonw_key(w, "bandwidth");
    jsonw_object_begin(w);
    jsonw_key(w, "total");
    jsonw_int(w, (int64_t)c.total_bytes);
    jsonw_key(w, "payload_bytes");
    jsonw_int(w, (int64_t)c.payload_bytes);
    jsonw_key(w, "overhead_bytes");
    jsonw_int(w, (int64_t)c.overhead_bytes);
    jsonw_object_end(w);
    jsonw_object_end(w);
}

static void fill_reserved_id_error(session_t *s, jsonw_t *w, const void *ctx) {
    (void)ctx;
    (void)s;
    jsonw_key(w, "error");
    jsonw_object_begin(w);
    jsonw_key(w, "code");
    jsonw_int(w, -32600);
    jsonw_key(w, "message");
    jsonw_string(w, "browserd: negative message ids are reserved");
    jsonw_object_end(w);
}

/* ---------------------------------------------------------------- client -> browser ---- */

static void client_reading_update(session_t *s);

/* One complete message from the client (data: malloc'ed, NUL-terminated; ownership moves
 * here). */
static void on_client_message(session_t *s, char *data, size_t len) {
    session_touch(s);
    s->gw->metrics.messages_from_client++;
    s->gw->metrics.bytes_from_client += len;
    cdp_msg_t m;
    if (cdp_scan(data, len, &m) != 0 || m.duplicate || !m.id_is_int || !m.method.ptr) {
        char reason[120];
        snprintf(reason, sizeof reason, "cdp_error: %s",
                 m.err ? m.err : m.duplicate ? "duplicate member" : !m.id_is_int ? "no integer id" : "no method");
        free(data);
        session_end(s, SESSION_FAILED, "cdp_error", reason + 11, WS_CLOSE_INVALID_PAYLOAD, reason);
        return;
    }
    if (cdp_id_reserved(m.id)) {
        reply_to_client(s, &m, fill_reserved_id_error);
        free(data);
        return;
    }
    if (m.session_id.ptr && observer_owns_session(&s->observer, m.session_id.ptr, m.session_id.len)) {
        free(data); /* the observer's sessions are not the client's to use */
        return;
    }
    if (s->captcha_live && captcha_client_command(&s->captcha, &m)) {
        free(data); /* the Captcha domain is browserd's (captcha.h) */
        return;
    }
    if (cdp_string_equals(m.method, "Browser.getSessionId", 20)) {
        if (!s->first_saved && s->nsid_requests < GATEWAY_MAX_HELD_ID_REQUESTS) {
            s->sid_requests[s->nsid_requests] = data;
            s->sid_request_lens[s->nsid_requests++] = len;
            return;
        }
        reply_to_client(s, &m, fill_session_id);
        free(data);
        return;
    }
    if (cdp_string_equals(m.method, "Browser.getBandwidth", 20)) {
        reply_to_client(s, &m, fill_bandwidth);
        free(data);
        return;
    }
    if (liveview_client_command(s, &m)) {
        free(data);
        return;
    }
    if (cdp_string_equals(m.method, "Browser.close", 13)) s->browser_close_requested = true;
    int64_t queued = browser_send(s->browser, data, len);
    if (queued < 0) return; /* the browser is going away; its exit ends the session */
    if ((size_t)queued > s->gw->browser_cfg.write_high_watermark) client_reading_update(s);
}

static void handle_ws_event(session_t *s, const ws_event_t *ev) {
    switch (ev->type) {
    case WS_EV_MESSAGE:
        on_client_message(s, (char *)ev->data, ev->len);
        break;
    case WS_EV_PING: {
        uint8_t frame[WS_MAX_CONTROL_FRAME];
        size_t n = ws_control_frame(frame, WS_OP_PONG, ev->data, ev->len, NULL);
        if (n) send_control(s, frame, n);
        session_touch(s);
        break;
    }
    case WS_EV_CLOSE:
        session_end_by_client(s, WS_CLOSE_NORMAL, "");
        break;
    case WS_EV_ERROR: {
        char reason[123];
        snprintf(reason, sizeof reason, "cdp_error: %s", ev->reason);
        session_end(s, SESSION_FAILED, "cdp_error", ev->reason, ev->close_code, reason);
        break;
    }
    default:
        break;
    }
}

static bool browser_backlogged(const session_t *s) {
    return s->browser && !s->browser_gone &&
           browser_write_queue_size(s->browser) > s->gw->browser_cfg.write_high_watermark;
}

/* Feeds bytes to the reader until they are used up or the browser's queue is full; what is
 * left waits in s->pending. Returns false when the session ended on the way. */
static bool feed_client_bytes(session_t *s, const char *data, size_t len) {
    size_t off = 0;
    while (off < len && !s->ended) {
        if (browser_backlogged(s)) break;
        ws_event_t ev;
        size_t used = ws_reader_feed(&s->reader, data + off, len - off, &ev);
        off += used;
        if (ev.type != WS_EV_NONE) handle_ws_event(s, &ev);
        else if (used == 0) break;
    }
    if (s->ended) return false;
    if (off < len) {
        char *p = malloc(s->pending_len + (len - off));
        if (!p) {
            session_end(s, SESSION_FAILED, "unknown", "out of memory", WS_CLOSE_INTERNAL_ERROR, "out of memory");
            return false;
        }
        if (s->pending_len) memcpy(p, s->pending, s->pending_len);
        memcpy(p + s->pending_len, data + off, len - off);
        free(s->pending);
        s->pending = p;
        s->pending_len += len - off;
    }
    return true;
}

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    session_t *s = h->data;
    (void)suggested;
    size_t cap = 0;
    uint8_t *direct = s->pending_len ? NULL : ws_reader_direct_buf(&s->reader, GATEWAY_READ_BUF_SIZE, &cap);
    if (direct) {
        s->direct_read = true;
        *buf = uv_buf_init((char *)direct, (unsigned)(cap > (1u << 30) ? (1u << 30) : cap));
        return;
    }
    s->direct_read = false;
    *buf = uv_buf_init(s->gw->read_buf, GATEWAY_READ_BUF_SIZE);
}

static void on_client_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
    session_t *s = stream->data;
    if (n < 0) {
        s->direct_read = false;
        if (!s->ended) session_end_by_client(s, WS_CLOSE_NORMAL, ""); /* EOF or reset without a close frame */
        relay_close_client(s);
        return;
    }
    if (n == 0 || s->ended) {
        if (s->direct_read && n > 0) s->direct_read = false;
        return;
    }
    session_ref(s); /* the handlers below may end the session */
    if (s->direct_read) {
        s->direct_read = false;
        ws_event_t ev;
        ws_reader_direct_commit(&s->reader, (size_t)n, &ev);
        session_touch(s);
        if (ev.type != WS_EV_NONE) handle_ws_event(s, &ev);
    } else {
        feed_client_bytes(s, buf->base, (size_t)n);
    }
    if (!s->ended) client_reading_update(s);
    session_unref(s);
}

/* Reads from the client exactly while the browser's queue has room and nothing is pending. */
static void client_reading_update(session_t *s) {
    if (!s->client_open || s->client_closing || s->ended) return;
    if (s->pending_len && !browser_backlogged(s)) {
        char *p = s->pending;
        size_t len = s->pending_len;
        s->pending = NULL;
        s->pending_len = 0;
        bool alive = feed_client_bytes(s, p, len);
        free(p);
        if (!alive) return;
    }
    bool want = !browser_backlogged(s) && s->pending_len == 0;
    if (want && !s->client_reading) {
        if (uv_read_start((uv_stream_t *)&s->client, on_client_alloc, on_client_read) == 0) s->client_reading = true;
    } else if (!want && s->client_reading) {
        uv_read_stop((uv_stream_t *)&s->client);
        s->client_reading = false;
    }
}

void relay_start(session_t *s, char *rest, size_t rest_len) {
    session_ref(s);
    if (rest_len) feed_client_bytes(s, rest, rest_len);
    free(rest);
    client_reading_update(s);
    session_unref(s);
}

/* ---------------------------------------------------------------- browser -> client ---- */

static void on_browser_message(void *ctx, char *msg, size_t len) {
    session_t *s = ctx;
    cdp_msg_t m;
    bool scanned = cdp_scan(msg, len, &m) == 0;
    session_browser_answered(s);
    if (scanned && liveview_browser_message(s, &m)) {
        free(msg);
        return;
    }
    if (scanned && s->observer_live && observer_consume(&s->observer, msg, len, &m)) {
        free(msg);
        if (!s->ended && observer_take_changed(&s->observer)) session_save(s);
        return;
    }
    if (s->ended) {
        free(msg);
        return;
    }
    /* A reply with a reserved id the observer did not take (the pool's probe of a browser taken
     * while starting) is browserd's: clients cannot use those ids (on_client_message refuses
     * them), so it is never theirs. */
    if (scanned && m.id_is_int && cdp_id_reserved(m.id) && !m.method.ptr) {
        free(msg);
        return;
    }
    if (scanned && s->captcha_live) captcha_watch_client_message(&s->captcha, &m);
    session_touch(s);
    s->gw->metrics.messages_to_client++;
    s->gw->metrics.bytes_to_client += len;
    send_frame(s, WS_OP_TEXT, msg, len);
}

static void on_browser_exit(void *ctx, int status, int term_signal) {
    session_t *s = ctx;
    s->browser_gone = true;
    if (!s->ended) {
        if (s->browser_close_requested && status >= 0) {
            session_end_by_client(s, WS_CLOSE_NORMAL, "Browser.close");
        } else {
            char why[160];
            snprintf(why, sizeof why, "the browser process ended (%s%s%s)", browser_end_str(status),
                     term_signal ? ", signal " : "", term_signal ? strsignal(term_signal) : "");
            session_end(s, SESSION_FAILED, "browser_disconnected", why, 1011, "browser_disconnected");
        }
    }
    session_unref(s);
}

static void on_browser_drain(void *ctx) { client_reading_update(ctx); }

const browser_callbacks_t relay_browser_callbacks = {
    .on_message = on_browser_message,
    .on_exit = on_browser_exit,
    .on_drain = on_browser_drain,
};
