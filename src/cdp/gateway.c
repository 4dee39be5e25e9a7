/* The CDP gateway: see gateway.h and docs/gateway.md.
 *
 * A session's life: the upgrade request is checked (WebSocket headers, then the zone's
 * credentials on a worker thread), admitted or queued, the socket is taken over from the HTTP
 * server, a browser is taken from the pool (or launched), the observer attaches, and from then
 * on messages are relayed: client frames -> NUL-delimited pipe messages, pipe messages ->
 * text frames (header + the very buffer Chromium's message arrived in, no copy). The session
 * ends once, for one reason (session_end), and is freed when its client socket is closed, its
 * browser has exited and its last record is saved. */
#include "cdp/gateway.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cdp/browser.h"
#include "cdp/browser_pool.h"
#include "cdp/credentials.h"
#include "cdp/observer.h"
#include "core/buf.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "http/http_server.h"
#include "json/cdp_scan.h"
#include "json/jsonw.h"
#include "proxy/traffic_proxy.h"
#include "ws/ws_codec.h"

#define READ_BUF_SIZE (64 * 1024)
/* Stop reading the browser while this much waits to be written to the client. */
#define CLIENT_WRITE_HIGH (8u << 20)
#define CLIENT_WRITE_LOW (1u << 20)

typedef struct session session_t;
typedef struct waiter waiter_t;

/* A browser's traffic proxy, and the Chromium arguments that point the browser at it (kept
 * here because the launch borrows them). Made before the browser, so before its session. */
typedef struct {
    traffic_proxy_t *proxy;
    char proxy_arg[64];
    const char *args[2];
} browser_net_t;

struct gateway {
    gateway_config_t cfg;
    traffic_proxy_config_t proxy_cfg;
    char host[64];
    char worker[128];
    http_server_t *http;
    browser_config_t browser_cfg;
    browser_pool_t *pool;
    session_t *sessions;
    unsigned active; /* sessions holding a browser slot */
    waiter_t *queue_head, *queue_tail;
    char read_buf[READ_BUF_SIZE]; /* shared: a read is processed before the next one */
    bool stopping;
    int stop_pending;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
};

/* What admitting a client needs, from its request and its zone. */
typedef struct {
    zone_credentials_t cred;
    char accept[WS_ACCEPT_LEN + 1]; /* Sec-WebSocket-Accept */
    char upstream[1024];            /* the zone's upstream proxy, "" for none */
} admission_t;

/* A client in the admission queue: the HTTP request stays open until it is admitted. */
struct waiter {
    gateway_t *gw;
    http_conn_t *conn;
    admission_t adm;
    int64_t arrived_ms;
    uv_timer_t timer;
    waiter_t *prev, *next;
};

struct session {
    gateway_t *gw;
    session_t *next;
    char customer[STORE_ID_MAX + 1];
    char zone[STORE_ZONE_MAX + 1];
    uint8_t id[16];
    char id_text[UUID_TEXT_LEN + 1];
    int64_t start_ms;

    uv_tcp_t client;
    bool client_open;       /* the handle is initialised and not closed */
    bool client_reading;
    bool client_closing;    /* a close frame was sent; nothing else goes out */
    ws_reader_t reader;
    bool direct_read;       /* the current read goes straight into the reader's message */
    char *pending;          /* input held back by backpressure */
    size_t pending_len;

    browser_t *browser;
    bool browser_gone;
    bool browser_close_requested; /* the client sent Browser.close */
    bool browser_paused;
    observer_t observer;
    bool observer_live;
    browser_net_t *net;
    traffic_counts_t net_base; /* the proxy's counts when the session began: earlier bytes
                                  (a pooled browser's own start) are not the session's */

    uv_timer_t session_timer, idle_timer, save_timer;
    int timers_open;

    /* the end */
    bool ended;
    session_status_t status;
    const char *error_code;
    char *error_message;
    int64_t end_ms;

    /* saving: one save in flight at a time per session */
    bool save_in_flight, save_again, final_saved;
    bool first_saved; /* the API knows the session */
    /* Browser.getSessionId asked before that: answered once it is (the id must be usable) */
    char *sid_requests[8];
    size_t sid_request_lens[8];
    size_t nsid_requests;
    int refs; /* client handle, browser, timers, save in flight */
};

static void session_unref(session_t *s);
static void session_end(session_t *s, session_status_t status, const char *code, const char *message,
                        uint16_t close_code, const char *close_reason);
static void session_save(session_t *s);
static void answer_session_id_requests(session_t *s);
static void admit_waiters(gateway_t *gw);
static void gateway_maybe_stopped(gateway_t *gw);

void gateway_config_defaults(gateway_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 9222;
    cfg->pool_size = BROWSER_POOL_DEFAULT_SIZE;
    cfg->max_sessions = 10;
    cfg->queue_timeout_ms = 30 * 1000;
    cfg->session_timeout_ms = 60 * 60 * 1000;
    cfg->idle_timeout_ms = 5 * 60 * 1000;
    cfg->save_interval_ms = 2000;
    cfg->guard_private = true;
}

/* ---------------------------------------------------------------- records ---- */

static void record_of(const session_t *s, session_record_t *r) {
    memset(r, 0, sizeof *r);
    memcpy(r->session_id, s->id_text, sizeof r->session_id);
    r->api_name = (char *)s->zone;
    r->status = s->ended ? s->status : SESSION_RUNNING;
    r->target_url = s->observer.recorder.target_url;
    r->end_url = s->observer.recorder.end_url;
    r->navigations = s->observer.recorder.navigations;
    r->timestamp_ms = s->start_ms;
    r->duration_ms = s->ended ? s->end_ms - s->start_ms : SESSION_DURATION_NULL;
    r->captcha = CAPTCHA_NONE;
    r->bandwidth = 0;
    if (s->net) {
        traffic_counts_t c;
        traffic_proxy_counts(s->net->proxy, &c);
        r->bandwidth = (int64_t)(c.total_bytes - s->net_base.total_bytes);
    }
    r->error_code = s->ended && s->status == SESSION_FAILED ? (char *)s->error_code : NULL;
    r->error_message = r->error_code ? s->error_message : NULL;
}

/* A copy for the worker thread: the session may change while the save runs. */
typedef struct {
    uv_work_t work;
    session_t *s;
    store_t *store;
    catalog_t *catalog;
    char customer[STORE_ID_MAX + 1];
    char worker[128];
    session_record_t rec;
    int rc;
} save_job_t;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void save_work(uv_work_t *w) {
    save_job_t *j = w->data;
    /* The catalog first: the API sees the change at once, even while the store is busy (an
     * import holds its write lock); the store catches up with this or the next save. */
    catalog_put(j->catalog, j->customer, &j->rec);
    j->rc = store_session_save(j->store, j->customer, &j->rec, j->worker);
}

static void save_done(uv_work_t *w, int status) {
    save_job_t *j = w->data;
    session_t *s = j->s;
    if (status != 0 || j->rc != 0)
        fprintf(stderr, "event=session_save_failed session=%s error=%s\n", s->id_text,
                status ? uv_strerror(status) : strerror(-j->rc));
    bool was_final = j->rec.status != SESSION_RUNNING;
    session_record_free(&j->rec);
    free(j);
    s->save_in_flight = false;
    if (was_final) s->final_saved = true;
    if (!s->first_saved) {
        s->first_saved = true;
        answer_session_id_requests(s);
    }
    if (s->save_again || (s->ended && !s->final_saved)) {
        s->save_again = false;
        session_save(s);
    }
    session_unref(s);
}

static void detached_save_done(uv_work_t *w, int status) {
    save_job_t *j = w->data;
    if (status != 0 || j->rc != 0)
        fprintf(stderr, "event=session_save_failed session=%s error=%s\n", j->rec.session_id,
                status ? uv_strerror(status) : strerror(-j->rc));
    session_record_free(&j->rec);
    free(j);
}

/* A save of a copy of `view` (borrowed) for a worker thread; NULL when out of memory. */
static save_job_t *save_job_new(gateway_t *gw, const char *customer, const session_record_t *view) {
    save_job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->rec = *view;
    j->rec.api_name = strdup(view->api_name);
    j->rec.target_url = dup_or_null(view->target_url);
    j->rec.end_url = dup_or_null(view->end_url);
    j->rec.error_code = dup_or_null(view->error_code);
    j->rec.error_message = dup_or_null(view->error_message);
    j->store = gw->cfg.store;
    j->catalog = gw->cfg.catalog;
    snprintf(j->customer, sizeof j->customer, "%s", customer);
    snprintf(j->worker, sizeof j->worker, "%s", gw->worker);
    j->work.data = j;
    return j;
}

static int save_job_queue(gateway_t *gw, save_job_t *j, uv_after_work_cb done) {
    int rc = uv_queue_work(gw->cfg.loop, &j->work, save_work, done);
    if (rc != 0) {
        session_record_free(&j->rec);
        free(j);
    }
    return rc;
}

static void session_save(session_t *s) {
    if (s->save_in_flight) {
        s->save_again = true;
        return;
    }
    session_record_t view;
    record_of(s, &view);
    save_job_t *j = save_job_new(s->gw, s->customer, &view);
    if (!j) return;
    j->s = s;
    s->observer.recorder.changed = false;
    if (save_job_queue(s->gw, j, save_done) != 0) return;
    s->save_in_flight = true;
    s->refs++;
}

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
        uv_stream_get_write_queue_size((uv_stream_t *)&s->client) <= CLIENT_WRITE_LOW) {
        s->browser_paused = false;
        browser_resume_reading(s->browser);
    }
    session_unref(s);
}

/* Queues a frame: header + payload (ownership of payload moves here). */
static int send_frame(session_t *s, ws_opcode_t op, char *payload, size_t len) {
    if (!s->client_open || s->client_closing) {
        free(payload);
        return -EPIPE;
    }
    frame_write_t *w = malloc(sizeof *w);
    if (!w) {
        free(payload);
        return -ENOMEM;
    }
    w->s = s;
    w->payload = payload;
    size_t hl = ws_frame_header(w->header, op, true, len, NULL);
    uv_buf_t bufs[2] = {uv_buf_init((char *)w->header, (unsigned)hl), uv_buf_init(payload, (unsigned)len)};
    w->req.data = w;
    int rc = uv_write(&w->req, (uv_stream_t *)&s->client, bufs, len ? 2 : 1, on_frame_written);
    if (rc < 0) {
        free(payload);
        free(w);
        return rc;
    }
    s->refs++;
    if (!s->browser_paused && !s->browser_gone &&
        uv_stream_get_write_queue_size((uv_stream_t *)&s->client) > CLIENT_WRITE_HIGH) {
        s->browser_paused = true;
        browser_pause_reading(s->browser);
    }
    return 0;
}

static int send_control(session_t *s, const uint8_t *frame, size_t len) {
    if (!s->client_open) return -EPIPE;
    frame_write_t *w = malloc(sizeof *w);
    if (!w) return -ENOMEM;
    w->s = s;
    w->payload = NULL;
    memcpy(w->header, frame, len);
    uv_buf_t buf = uv_buf_init((char *)w->header, (unsigned)len);
    w->req.data = w;
    if (uv_write(&w->req, (uv_stream_t *)&s->client, &buf, 1, on_frame_written) < 0) {
        free(w);
        return -EIO;
    }
    s->refs++;
    return 0;
}

static void send_json_text(session_t *s, buf_t *b) {
    size_t len;
    char *p = buf_steal(b, &len);
    if (p) send_frame(s, WS_OP_TEXT, p, len);
}

/* ---------------------------------------------------------------- closing ---- */

static void on_client_closed(uv_handle_t *h) { session_unref(h->data); }

static void close_client(session_t *s) {
    if (!s->client_open) return;
    s->client_open = false;
    s->client_reading = false;
    uv_close((uv_handle_t *)&s->client, on_client_closed);
}

typedef struct {
    uv_shutdown_t req;
    session_t *s;
} shutdown_t;

static void on_client_shutdown(uv_shutdown_t *req, int status) {
    shutdown_t *sd = req->data;
    (void)status;
    close_client(sd->s);
    session_unref(sd->s);
    free(sd);
}

/* Sends a close frame, then closes the connection once it is written. */
static void close_client_with(session_t *s, uint16_t code, const char *reason) {
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
        close_client(s);
        return;
    }
    sd->req.data = sd;
    sd->s = s;
    s->refs++;
}

static void on_timer_closed(uv_handle_t *h) { session_unref(h->data); }

static int net_create(gateway_t *gw, browser_net_t **out) {
    browser_net_t *n = calloc(1, sizeof *n);
    if (!n) return -ENOMEM;
    int rc = traffic_proxy_start(gw->cfg.loop, &gw->proxy_cfg, &n->proxy);
    if (rc < 0) {
        free(n);
        return rc;
    }
    snprintf(n->proxy_arg, sizeof n->proxy_arg, "--proxy-server=http://127.0.0.1:%d", traffic_proxy_port(n->proxy));
    n->args[0] = n->proxy_arg;
    /* Chromium bypasses the proxy for loopback unless told not to: everything goes through. */
    n->args[1] = "--proxy-bypass-list=<-loopback>";
    *out = n;
    return 0;
}

static void net_free_after_stop(void *arg) { free(arg); }

static void net_release(browser_net_t *n) {
    if (n) traffic_proxy_stop(n->proxy, net_free_after_stop, n);
}

static int pool_prepare_launch(void *ctx, browser_config_t *cfg, void **data) {
    browser_net_t *n;
    int rc = net_create(ctx, &n);
    if (rc < 0) return rc;
    cfg->extra_args = n->args;
    cfg->extra_arg_count = 2;
    *data = n;
    return 0;
}

static void pool_release_launch(void *ctx, void *data) {
    (void)ctx;
    net_release(data);
}

static void session_free(session_t *s) {
    gateway_t *gw = s->gw;
    for (session_t **p = &gw->sessions; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    ws_reader_free(&s->reader);
    free(s->pending);
    for (size_t i = 0; i < s->nsid_requests; i++) free(s->sid_requests[i]);
    if (s->observer_live) observer_free(&s->observer);
    free(s->error_message);
    if (s->browser) browser_free(s->browser);
    net_release(s->net);
    free(s);
    gateway_maybe_stopped(gw);
}

static void session_unref(session_t *s) {
    if (--s->refs == 0) session_free(s);
}

/* The one place a session ends: records why, stops its timers, says goodbye to the client,
 * ends the browser, and saves the final record. */
static void session_end(session_t *s, session_status_t status, const char *code, const char *message,
                        uint16_t close_code, const char *close_reason) {
    if (s->ended) return;
    s->ended = true;
    s->end_ms = time_now_ms();
    s->status = status;
    s->error_code = code;
    s->error_message = message ? strdup(message) : NULL;
    fprintf(stderr, "event=session_end session=%s customer=%s status=%s error=%s navigations=%lld\n", s->id_text,
            s->customer, session_status_name(status), code ? code : "-",
            (long long)s->observer.recorder.navigations);
    if (s->timers_open) {
        s->timers_open = 0;
        uv_close((uv_handle_t *)&s->session_timer, on_timer_closed);
        uv_close((uv_handle_t *)&s->idle_timer, on_timer_closed);
        uv_close((uv_handle_t *)&s->save_timer, on_timer_closed);
    }
    close_client_with(s, close_code, close_reason);
    if (s->browser && !s->browser_gone) browser_kill(s->browser);
    session_save(s);
    gateway_t *gw = s->gw;
    gw->active--;
    admit_waiters(gw);
}

/* How a session the client ended by itself (or with Browser.close) is recorded. */
static void end_by_client(session_t *s, uint16_t close_code, const char *reason) {
    const recorder_t *r = &s->observer.recorder;
    if (r->last_failed)
        session_end(s, SESSION_FAILED, "page_navigated_error", r->last_error ? r->last_error : "navigation failed",
                    close_code, reason);
    else
        session_end(s, SESSION_FINISHED, NULL, NULL, close_code, reason);
}

/* ---------------------------------------------------------------- timers ---- */

static void on_session_timeout(uv_timer_t *t) {
    session_t *s = t->data;
    /* The timer runs on the loop's clock, the duration on the wall clock: if the timer is a
     * millisecond ahead, wait out the rest, so no session_timeout is shorter than the limit. */
    int64_t left = s->start_ms + (int64_t)s->gw->cfg.session_timeout_ms - time_now_ms();
    if (left > 0) {
        uv_timer_start(t, on_session_timeout, (uint64_t)left, 0);
        return;
    }
    session_end(s, SESSION_FAILED, "session_timeout", "the session reached its maximum duration", WS_CLOSE_GOING_AWAY,
                "session_timeout: the session reached its maximum duration");
}

static void on_idle_timeout(uv_timer_t *t) {
    session_t *s = t->data;
    session_end(s, SESSION_FAILED, "inactivity_timeout", "no CDP message in either direction for the idle limit",
                WS_CLOSE_GOING_AWAY, "inactivity_timeout: no CDP traffic for the idle limit");
}

static void on_save_timer(uv_timer_t *t) {
    session_t *s = t->data;
    /* Saved even when nothing changed: the save time is the session's last sign of life. */
    session_save(s);
}

static void touch(session_t *s) {
    if (s->timers_open) uv_timer_again(&s->idle_timer);
}

/* ---------------------------------------------------------------- client -> browser ---- */

static void reply_to_client(session_t *s, const cdp_msg_t *m, void (*fill)(session_t *, jsonw_t *)) {
    buf_t b;
    buf_init(&b);
    jsonw_t w;
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_key(&w, "id");
    jsonw_int(&w, m->id);
    fill(s, &w);
    if (m->session_id.ptr) {
        jsonw_key(&w, "sessionId");
        jsonw_string_n(&w, m->session_id.ptr, m->session_id.len);
    }
    jsonw_object_end(&w);
    if (jsonw_failed(&w)) buf_free(&b);
    else send_json_text(s, &b);
}

static void fill_session_id(session_t *s, jsonw_t *w) {
    jsonw_key(w, "result");
    jsonw_object_begin(w);
    jsonw_key(w, "sessionId");
    jsonw_string(w, s->id_text);
    jsonw_object_end(w);
}

static void answer_session_id_requests(session_t *s) {
    for (size_t i = 0; i < s->nsid_requests; i++) {
        cdp_msg_t m;
        if (cdp_scan(s->sid_requests[i], s->sid_request_lens[i], &m) == 0 && !s->ended)
            reply_to_client(s, &m, fill_session_id);
        free(s->sid_requests[i]);
    }
    s->nsid_requests = 0;
}

static void fill_bandwidth(session_t *s, jsonw_t *w) {
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

static void fill_negative_id_error(session_t *s, jsonw_t *w) {
    (void)s;
    jsonw_key(w, "error");
    jsonw_object_begin(w);
    jsonw_key(w, "code");
    jsonw_int(w, -32600);
    jsonw_key(w, "message");
    jsonw_string(w, "browserd: negative message ids are reserved");
    jsonw_object_end(w);
}

static void client_reading_update(session_t *s);

static void on_client_message(session_t *s, char *data, size_t len) {
    touch(s);
    cdp_msg_t m;
    if (cdp_scan(data, len, &m) != 0 || m.duplicate || !m.id_is_int || !m.method.ptr) {
        char reason[120];
        snprintf(reason, sizeof reason, "cdp_error: %s",
                 m.err ? m.err : m.duplicate ? "duplicate member" : !m.id_is_int ? "no integer id" : "no method");
        free(data);
        session_end(s, SESSION_FAILED, "cdp_error", reason + 11, WS_CLOSE_INVALID_PAYLOAD, reason);
        return;
    }
    if (m.id < 0) {
        reply_to_client(s, &m, fill_negative_id_error);
        free(data);
        return;
    }
    if (m.session_id.ptr && observer_owns_session(&s->observer, m.session_id.ptr, m.session_id.len)) {
        free(data); /* the observer's sessions are not the client's to use */
        return;
    }
    if (cdp_string_equals(m.method, "Browser.getSessionId", 20)) {
        if (!s->first_saved && s->nsid_requests < sizeof s->sid_requests / sizeof *s->sid_requests) {
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
        touch(s);
        break;
    }
    case WS_EV_CLOSE:
        end_by_client(s, WS_CLOSE_NORMAL, "");
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
    uint8_t *direct = s->pending_len ? NULL : ws_reader_direct_buf(&s->reader, READ_BUF_SIZE, &cap);
    if (direct) {
        s->direct_read = true;
        *buf = uv_buf_init((char *)direct, (unsigned)(cap > (1u << 30) ? (1u << 30) : cap));
        return;
    }
    s->direct_read = false;
    *buf = uv_buf_init(s->gw->read_buf, READ_BUF_SIZE);
}

static void on_client_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
    session_t *s = stream->data;
    if (n < 0) {
        s->direct_read = false;
        if (!s->ended) end_by_client(s, WS_CLOSE_NORMAL, ""); /* EOF or reset without a close frame */
        close_client(s);
        return;
    }
    if (n == 0 || s->ended) {
        if (s->direct_read && n > 0) s->direct_read = false;
        return;
    }
    s->refs++; /* the handlers below may end the session */
    if (s->direct_read) {
        s->direct_read = false;
        ws_event_t ev;
        ws_reader_direct_commit(&s->reader, (size_t)n, &ev);
        touch(s);
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

/* ---------------------------------------------------------------- browser -> client ---- */

static void on_browser_message(void *ctx, char *msg, size_t len) {
    session_t *s = ctx;
    cdp_msg_t m;
    if (cdp_scan(msg, len, &m) == 0 && s->observer_live && observer_consume(&s->observer, msg, len, &m)) {
        free(msg);
        if (s->observer.recorder.changed && !s->ended) session_save(s);
        return;
    }
    if (s->ended) {
        free(msg);
        return;
    }
    touch(s);
    send_frame(s, WS_OP_TEXT, msg, len);
}

static void on_browser_exit(void *ctx, int status, int term_signal) {
    session_t *s = ctx;
    s->browser_gone = true;
    if (!s->ended) {
        if (s->browser_close_requested && status >= 0) {
            end_by_client(s, WS_CLOSE_NORMAL, "Browser.close");
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

static const browser_callbacks_t session_browser_callbacks = {
    .on_message = on_browser_message,
    .on_exit = on_browser_exit,
    .on_drain = on_browser_drain,
};

/* ---------------------------------------------------------------- starting a session ---- */

/* Takes the socket over, answers 101, and relays from now on. */
static void session_start(gateway_t *gw, http_conn_t *conn, const admission_t *adm) {
    const zone_credentials_t *cred = &adm->cred;
    const char *accept = adm->accept, *upstream = adm->upstream;
    session_t *s = calloc(1, sizeof *s);
    int fd = -1;
    char *rest = NULL;
    size_t rest_len = 0;
    if (!s) {
        http_respond_error(conn, 503, NULL, "Out of memory", true);
        return;
    }
    if (http_conn_take_over(conn, &fd, &rest, &rest_len) < 0) {
        free(s);
        return; /* the client went away while waiting */
    }
    s->gw = gw;
    snprintf(s->customer, sizeof s->customer, "%s", cred->customer_id);
    snprintf(s->zone, sizeof s->zone, "%s", cred->zone);
    s->start_ms = time_now_ms();
    uuid_v7_generate(s->start_ms, s->id);
    uuid_format(s->id, s->id_text);
    ws_reader_init(&s->reader, NULL);
    s->refs = 1; /* the client handle */
    gw->active++;
    s->next = gw->sessions;
    gw->sessions = s;

    uv_tcp_init(gw->cfg.loop, &s->client);
    s->client.data = s;
    if (uv_tcp_open(&s->client, fd) < 0) {
        close(fd);
        s->client_open = true;
        free(rest);
        session_end(s, SESSION_FAILED, "unknown", "could not adopt the client socket", WS_CLOSE_INTERNAL_ERROR, "");
        close_client(s);
        return;
    }
    s->client_open = true;
    uv_tcp_nodelay(&s->client, 1);

    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
    uv_buf_t hb = uv_buf_init(head, (unsigned)hn);
    uv_try_write((uv_stream_t *)&s->client, &hb, 1); /* a fresh socket takes 130 bytes at once */

    void *pooled_net = NULL;
    browser_t *b = gw->pool ? browser_pool_take_data(gw->pool, &session_browser_callbacks, s, &pooled_net) : NULL;
    bool from_pool = b != NULL;
    s->net = pooled_net;
    if (!b) {
        browser_config_t bcfg = gw->browser_cfg;
        if (net_create(gw, &s->net) == 0) {
            bcfg.extra_args = s->net->args;
            bcfg.extra_arg_count = 2;
        }
        if (!s->net || browser_launch(gw->cfg.loop, &bcfg, &session_browser_callbacks, s, &b) < 0) {
            free(rest);
            s->browser_gone = true;
            session_end(s, SESSION_FAILED, "unknown", "no browser could be started", WS_CLOSE_INTERNAL_ERROR,
                        "no browser could be started");
            return;
        }
    }
    traffic_proxy_counts(s->net->proxy, &s->net_base);
    traffic_proxy_set_tag(s->net->proxy, s->id_text);
    /* The zone's own upstream proxy, else the default one: known only now. */
    char perr[256];
    const char *up = upstream && *upstream ? upstream : gw->cfg.upstream_proxy;
    if (traffic_proxy_set_upstream(s->net->proxy, up, perr, sizeof perr) < 0)
        fprintf(stderr, "event=upstream_proxy_invalid session=%s zone=%s detail=\"%s\"\n", s->id_text, s->zone, perr);
    s->browser = b;
    s->refs++; /* until on_browser_exit */
    observer_init(&s->observer, b, NULL, NULL);
    s->observer_live = true;
    observer_start(&s->observer);

    uv_timer_init(gw->cfg.loop, &s->session_timer);
    uv_timer_init(gw->cfg.loop, &s->idle_timer);
    uv_timer_init(gw->cfg.loop, &s->save_timer);
    s->session_timer.data = s->idle_timer.data = s->save_timer.data = s;
    s->timers_open = 1;
    s->refs += 3;
    uv_timer_start(&s->session_timer, on_session_timeout, gw->cfg.session_timeout_ms, 0);
    uv_timer_start(&s->idle_timer, on_idle_timeout, gw->cfg.idle_timeout_ms, gw->cfg.idle_timeout_ms);
    uv_timer_start(&s->save_timer, on_save_timer, gw->cfg.save_interval_ms, gw->cfg.save_interval_ms);
    fprintf(stderr, "event=session_start session=%s customer=%s zone=%s browser=%s\n", s->id_text, s->customer, s->zone,
            from_pool ? "pooled" : "launched");
    session_save(s);

    s->refs++;
    if (rest_len) feed_client_bytes(s, rest, rest_len);
    free(rest);
    client_reading_update(s);
    session_unref(s);
}

/* ---------------------------------------------------------------- admission ---- */

static void waiter_unlink(gateway_t *gw, waiter_t *w) {
    if (w->prev) w->prev->next = w->next;
    else gw->queue_head = w->next;
    if (w->next) w->next->prev = w->prev;
    else gw->queue_tail = w->prev;
}

static void on_waiter_timer_closed(uv_handle_t *h) {
    waiter_t *w = h->data;
    gateway_t *gw = w->gw;
    explicit_bzero(&w->adm, sizeof w->adm);
    free(w);
    gw->stop_pending--;
    gateway_maybe_stopped(gw);
}

static void waiter_release(waiter_t *w) {
    waiter_unlink(w->gw, w);
    w->gw->stop_pending++;
    uv_close((uv_handle_t *)&w->timer, on_waiter_timer_closed);
}

/* A client that waited too long: 503, and a session record failed with client_timeout. */
static void on_waiter_timeout(uv_timer_t *t) {
    waiter_t *w = t->data;
    gateway_t *gw = w->gw;
    uint8_t id[16];
    session_record_t rec = {
        .api_name = w->adm.cred.zone,
        .status = SESSION_FAILED,
        .timestamp_ms = w->arrived_ms,
        .duration_ms = time_now_ms() - w->arrived_ms,
        .captcha = CAPTCHA_NONE,
        .error_code = "client_timeout",
        .error_message = "the client waited in the queue for a free browser longer than allowed",
    };
    uuid_v7_generate(rec.timestamp_ms, id);
    uuid_format(id, rec.session_id);
    /* no session to report back to: a save that only frees itself */
    save_job_t *j = save_job_new(gw, w->adm.cred.customer_id, &rec);
    if (j) save_job_queue(gw, j, detached_save_done);
    fprintf(stderr, "event=client_timeout session=%s customer=%s\n", rec.session_id, w->adm.cred.customer_id);
    http_respond_error(w->conn, 503, "Retry-After: 5\r\n", "No browser became free in time (client_timeout)", true);
    waiter_release(w);
}

static void admit_waiters(gateway_t *gw) {
    while (gw->queue_head && !gw->stopping && gw->active < gw->cfg.max_sessions) {
        waiter_t *w = gw->queue_head;
        uv_timer_stop(&w->timer);
        admission_t adm = w->adm;
        http_conn_t *conn = w->conn;
        waiter_release(w);
        session_start(gw, conn, &adm);
        explicit_bzero(&adm, sizeof adm);
    }
}

/* After the zone check (worker thread): admit, queue, or refuse. */
typedef struct {
    uv_work_t work;
    gateway_t *gw;
    http_conn_t *conn;
    admission_t adm;
    int rc;
} auth_job_t;

static void auth_work(uv_work_t *w) {
    auth_job_t *j = w->data;
    admission_t *a = &j->adm;
    j->rc = store_zone_authorize(j->gw->cfg.store, a->cred.customer_id, a->cred.zone, a->cred.password, a->upstream,
                                 sizeof a->upstream);
}

static void auth_done(uv_work_t *w, int status) {
    auth_job_t *j = w->data;
    gateway_t *gw = j->gw;
    if (status != 0 || gw->stopping) {
        http_respond_error(j->conn, 503, NULL, "browserd is shutting down", true);
    } else if (j->rc == -ENOENT) {
        http_respond_error(j->conn, 403, NULL, "Invalid credentials: unknown customer or zone", true);
    } else if (j->rc == -EACCES) {
        http_respond_error(j->conn, 403, NULL, "Invalid credentials: wrong zone password", true);
    } else if (j->rc < 0) {
        http_respond_error(j->conn, 503, NULL, "Credentials could not be checked", true);
    } else if (gw->active < gw->cfg.max_sessions && !gw->queue_head) {
        session_start(gw, j->conn, &j->adm);
    } else {
        waiter_t *wt = calloc(1, sizeof *wt);
        if (!wt) {
            http_respond_error(j->conn, 503, NULL, "Out of memory", true);
        } else {
            wt->gw = gw;
            wt->conn = j->conn;
            wt->adm = j->adm;
            wt->arrived_ms = time_now_ms();
            uv_timer_init(gw->cfg.loop, &wt->timer);
            wt->timer.data = wt;
            uv_timer_start(&wt->timer, on_waiter_timeout, gw->cfg.queue_timeout_ms, 0);
            wt->prev = gw->queue_tail;
            if (gw->queue_tail) gw->queue_tail->next = wt;
            else gw->queue_head = wt;
            gw->queue_tail = wt;
        }
    }
    explicit_bzero(&j->adm, sizeof j->adm); /* the password and the upstream's credentials */
    free(j);
}

static const char *header_value(const http_request_t *req, const char *name, size_t *len) {
    const http_header_t *h = http_request_header(req, name);
    *len = h ? h->value_len : 0;
    return h ? h->value : NULL;
}

/* /json/version: what Chromium answers there, with webSocketDebuggerUrl pointing back at
 * browserd (with the caller's own credentials, when it sent some, so that clients that
 * discover the endpoint over HTTP keep them for the WebSocket). */
static void respond_version(gateway_t *gw, http_conn_t *conn, const http_request_t *req) {
    size_t host_len;
    const char *host = header_value(req, "host", &host_len);
    char fallback[96];
    if (!host || !host_len) {
        snprintf(fallback, sizeof fallback, "%s:%d", gw->host, gateway_port(gw));
        host = fallback;
        host_len = strlen(fallback);
    }
    buf_t url;
    buf_init(&url);
    buf_append_str(&url, "ws://");
    size_t auth_len;
    const char *auth = header_value(req, "authorization", &auth_len);
    zone_credentials_t cred;
    if (auth && credentials_from_basic(auth, auth_len, &cred) == CREDENTIALS_OK) {
        buf_printf(&url, "brd-customer-%s-zone-%s:", cred.customer_id, cred.zone);
        for (const char *p = cred.password; *p; p++) { /* percent-encode all but unreserved */
            unsigned char c = (unsigned char)*p;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c))
                buf_append_char(&url, (char)c);
            else
                buf_printf(&url, "%%%02X", c);
        }
        buf_append_char(&url, '@');
        explicit_bzero(cred.password, sizeof cred.password);
    }
    buf_append(&url, host, host_len);
    buf_append_str(&url, "/devtools/browser/browserd");
    buf_t b;
    buf_init(&b);
    jsonw_t w;
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_key(&w, "Browser");
    jsonw_string(&w, "HeadlessChrome (browserd)");
    jsonw_key(&w, "Protocol-Version");
    jsonw_string(&w, "1.3");
    jsonw_key(&w, "User-Agent");
    jsonw_string(&w, "browserd");
    jsonw_key(&w, "webSocketDebuggerUrl");
    jsonw_string_n(&w, url.data, url.len);
    jsonw_object_end(&w);
    buf_free(&url);
    size_t len;
    char *body = jsonw_failed(&w) ? NULL : buf_steal(&b, &len);
    if (!body) {
        buf_free(&b);
        http_respond(conn, 500, NULL, NULL, 0, true);
        return;
    }
    http_respond(conn, 200, NULL, body, len, false);
}

static void gateway_handle(void *ctx, http_conn_t *conn, const http_request_t *req) {
    gateway_t *gw = ctx;
    if (!req->upgrade) {
        if (req->method == HTTP_M_GET &&
            (strcmp(req->path, "/json/version") == 0 || strcmp(req->path, "/json/version/") == 0)) {
            respond_version(gw, conn, req);
            return;
        }
        http_respond_error(conn, 404, NULL, "Not found: connect with a WebSocket", true);
        return;
    }
    if (gw->stopping) {
        http_respond_error(conn, 503, NULL, "browserd is shutting down", true);
        return;
    }
    ws_handshake_req_t hs = {0};
    hs.upgrade = header_value(req, "upgrade", &hs.upgrade_len);
    hs.connection = header_value(req, "connection", &hs.connection_len);
    hs.version = header_value(req, "sec-websocket-version", &hs.version_len);
    hs.key = header_value(req, "sec-websocket-key", &hs.key_len);
    int status = 400;
    const char *reason = NULL;
    if (ws_handshake_validate(&hs, &status, &reason) != 0) {
        http_respond_error(conn, status, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, reason, true);
        return;
    }
    size_t auth_len;
    const char *auth = header_value(req, "authorization", &auth_len);
    auth_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        http_respond_error(conn, 503, NULL, "Out of memory", true);
        return;
    }
    credentials_result_t cr = auth ? credentials_from_basic(auth, auth_len, &j->adm.cred) : CREDENTIALS_MISSING;
    if (cr == CREDENTIALS_MISSING) {
        free(j);
        http_respond_error(conn, 407, "Proxy-Authenticate: Basic realm=\"browserd\"\r\n",
                      "Credentials are missing: use brd-customer-<ID>-zone-<ZONE>:<PASSWORD>", true);
        return;
    }
    if (cr != CREDENTIALS_OK) {
        free(j);
        http_respond_error(conn, 403, NULL, "Invalid credentials: expected brd-customer-<ID>-zone-<ZONE>:<PASSWORD>", true);
        return;
    }
    if (ws_handshake_accept(hs.key, hs.key_len, j->adm.accept) != 0) {
        free(j);
        http_respond_error(conn, 500, NULL, "Internal error", true);
        return;
    }
    j->gw = gw;
    j->conn = conn;
    j->work.data = j;
    if (uv_queue_work(gw->cfg.loop, &j->work, auth_work, auth_done) != 0) {
        free(j);
        http_respond_error(conn, 503, NULL, "Service unavailable", true);
    }
}

/* ---------------------------------------------------------------- lifecycle ---- */

int gateway_start(const gateway_config_t *cfg, gateway_t **out) {
    gateway_t *gw = calloc(1, sizeof *gw);
    if (!gw) return -ENOMEM;
    gw->cfg = *cfg;
    snprintf(gw->host, sizeof gw->host, "%s", cfg->host);
    gw->cfg.host = gw->host;
    if (cfg->worker_id) snprintf(gw->worker, sizeof gw->worker, "%s", cfg->worker_id);
    else {
        char hn[64] = "host";
        gethostname(hn, sizeof hn - 1);
        snprintf(gw->worker, sizeof gw->worker, "%s:%d", hn, (int)getpid());
    }
    browser_config_defaults(&gw->browser_cfg);
    if (cfg->chromium_path) gw->browser_cfg.chromium_path = cfg->chromium_path;
    traffic_proxy_config_defaults(&gw->proxy_cfg);
    gw->proxy_cfg.guard_private = cfg->guard_private;
    gw->proxy_cfg.allow_private = cfg->allow_private;
    gw->proxy_cfg.allow_private_count = cfg->allow_private_count;
    /* A pooled browser runs (and Chromium makes its own requests) before its session, and so its
     * zone, is known: until then it uses the default upstream, never a direct connection. */
    gw->proxy_cfg.upstream_proxy = cfg->upstream_proxy;
    char perr[256];
    if (traffic_proxy_config_check(&gw->proxy_cfg, perr, sizeof perr) < 0) {
        fprintf(stderr, "browserd: traffic settings: %s\n", perr);
        free(gw);
        return -EINVAL;
    }
    http_server_config_t hcfg;
    http_server_config_defaults(&hcfg);
    hcfg.host = gw->host;
    hcfg.port = cfg->port;
    int rc = http_server_start(cfg->loop, &hcfg, gateway_handle, gw, &gw->http);
    if (rc < 0) {
        free(gw);
        return rc;
    }
    if (cfg->pool_size > 0) {
        browser_pool_config_t pcfg = {.size = cfg->pool_size,
                                      .browser = &gw->browser_cfg,
                                      .prepare_launch = pool_prepare_launch,
                                      .release_launch = pool_release_launch,
                                      .ctx = gw};
        rc = browser_pool_new(cfg->loop, &pcfg, &gw->pool);
        if (rc < 0) gw->pool = NULL; /* sessions then launch their own browser */
    }
    *out = gw;
    return 0;
}

int gateway_port(const gateway_t *gw) { return http_server_port(gw->http); }

int gateway_kill_session(gateway_t *gw, const char *customer_id, const uint8_t id[16]) {
    for (session_t *s = gw->sessions; s; s = s->next)
        if (!s->ended && memcmp(s->id, id, 16) == 0 && strcmp(s->customer, customer_id) == 0) {
            session_end(s, SESSION_FAILED, "job_killed", "the session was ended through the API",
                        WS_CLOSE_GOING_AWAY, "job_killed: ended through the API");
            return 0;
        }
    return -ENOENT;
}

static void gateway_maybe_stopped(gateway_t *gw) {
    if (!gw->stopping || gw->stop_pending > 0 || gw->sessions || !gw->on_stopped) return;
    void (*done)(void *) = gw->on_stopped;
    gw->on_stopped = NULL;
    done(gw->stopped_arg);
}

static void on_part_stopped(void *arg) {
    gateway_t *gw = arg;
    gw->stop_pending--;
    gateway_maybe_stopped(gw);
}

void gateway_stop(gateway_t *gw, void (*done)(void *arg), void *arg) {
    gw->stopping = true;
    gw->on_stopped = done;
    gw->stopped_arg = arg;
    gw->stop_pending += 1; /* the HTTP server */
    while (gw->queue_head) {
        waiter_t *w = gw->queue_head;
        uv_timer_stop(&w->timer);
        http_respond_error(w->conn, 503, NULL, "browserd is shutting down", true);
        waiter_release(w);
    }
    for (session_t *s = gw->sessions; s; s = s->next)
        session_end(s, SESSION_FAILED, "worker_disconnect", "browserd stopped while the session ran",
                    WS_CLOSE_GOING_AWAY, "worker_disconnect: browserd is shutting down");
    if (gw->pool) {
        gw->stop_pending++;
        browser_pool_stop(gw->pool, on_part_stopped, gw);
    }
    http_server_stop(gw->http, on_part_stopped, gw);
}

void gateway_free(gateway_t *gw) {
    if (!gw) return;
    if (gw->pool) browser_pool_free(gw->pool);
    free(gw);
}
