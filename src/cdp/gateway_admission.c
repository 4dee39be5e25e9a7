/* The HTTP side of the gateway and a session's start: see gateway_internal.h.
 *
 * An upgrade request is checked (WebSocket headers, then the zone's credentials on a worker
 * thread, where the store is), then admitted at once, queued while every browser slot is
 * taken, or refused. Admitted: the socket is taken over from the HTTP server, answered 101, a
 * browser is taken from the pool (or launched), its proxy is pointed at the zone's upstream,
 * the observer attaches, and the relay starts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "cdp/gateway_internal.h"
#include "core/timeutil.h"
#include "json/jsonw.h"

/* ---------------------------------------------------------------- starting a session ---- */

static int send_to_browser(void *ctx, char *msg, size_t len) {
    int64_t rc = browser_send(ctx, msg, len);
    return rc < 0 ? (int)rc : 0;
}

/* Takes the socket over, answers 101, and relays from now on. */
static void session_start(gateway_t *gw, http_conn_t *conn, const admission_t *adm) {
    int fd = -1;
    char *rest = NULL;
    size_t rest_len = 0;
    session_t *s = session_new(gw, &adm->cred);
    if (!s) {
        http_respond_error(conn, 503, NULL, "Out of memory", true);
        return;
    }
    uv_tcp_init(gw->cfg.loop, &s->client);
    s->client.data = s;
    s->client_open = true;
    if (http_conn_take_over(conn, &fd, &rest, &rest_len) < 0) {
        /* the client went away while waiting: nothing to record */
        s->ended = true;
        gw->active--;
        relay_close_client(s);
        admission_admit_waiters(gw);
        return;
    }
    s->hooks = adm->hooks; /* from here every way out goes through session_end */
    if (s->hooks.started) s->hooks.started(s->hooks.arg, s->id_text);
    if (uv_tcp_open(&s->client, fd) < 0) {
        close(fd);
        free(rest);
        session_end(s, SESSION_FAILED, "unknown", "could not adopt the client socket", WS_CLOSE_INTERNAL_ERROR, "");
        relay_close_client(s);
        return;
    }
    uv_tcp_nodelay(&s->client, 1);

    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      adm->accept);
    uv_buf_t hb = uv_buf_init(head, (unsigned)hn);
    uv_try_write((uv_stream_t *)&s->client, &hb, 1); /* a fresh socket takes 130 bytes at once */
    uint64_t now_ns = uv_hrtime();
    if (adm->arrived_ns) metric_histogram_observe_ns(&gw->metrics.connect, now_ns - adm->arrived_ns);
    metric_histogram_observe_ns(&gw->metrics.queue_wait, adm->queued_ns ? now_ns - adm->queued_ns : 0);

    void *pooled_net = NULL;
    browser_t *b = gw->pool ? browser_pool_take_data(gw->pool, &relay_browser_callbacks, s, &pooled_net) : NULL;
    bool from_pool = b != NULL;
    s->net = pooled_net;
    if (!b) {
        browser_config_t bcfg = gw->browser_cfg;
        if (gateway_net_create(gw, &s->net) == 0) {
            bcfg.extra_args = s->net->args;
            bcfg.extra_arg_count = 2;
        }
        if (!s->net || browser_launch(gw->cfg.loop, &bcfg, &relay_browser_callbacks, s, &b) < 0) {
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
    const char *up = adm->upstream[0] ? adm->upstream : gw->cfg.upstream_proxy;
    if (traffic_proxy_set_upstream(s->net->proxy, up, perr, sizeof perr) < 0)
        log_event(LOG_WARN, "gateway", "upstream_proxy_invalid", "session=%s zone=%s detail=\"%s\"", s->id_text, s->zone, perr);
    s->browser = b;
    snprintf(s->live_host, sizeof s->live_host, "%s", adm->host);

    session_ref(s); /* until on_browser_exit */
    observer_init(&s->observer, send_to_browser, b);
    s->observer_live = true;
    session_captcha_start(s);
    observer_start(&s->observer);
    session_start_timers(s);
    log_event(LOG_INFO, "gateway", "session_start", "session=%s customer=%s zone=%s browser=%s", s->id_text, s->customer, s->zone,
            from_pool ? "pooled" : "launched");
    session_save(s);
    relay_start(s, rest, rest_len);
}

/* ---------------------------------------------------------------- the queue ---- */

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
    /* The timer runs on the loop's clock, the record on the wall clock: wait out the rest, so
     * that no client_timeout is recorded shorter than the queue timeout. */
    int64_t left = w->arrived_ms + (int64_t)w->gw->cfg.queue_timeout_ms - time_now_ms();
    if (left > 0) {
        uv_timer_start(t, on_waiter_timeout, (uint64_t)left, 0);
        return;
    }
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
    session_save_unstarted(w->gw, w->adm.cred.customer_id, &rec);
    log_event(LOG_INFO, "gateway", "client_timeout", "session=%s customer=%s", rec.session_id, w->adm.cred.customer_id);
    http_respond_error(w->conn, 503, "Retry-After: 5\r\n", "No browser became free in time (client_timeout)", true);
    waiter_release(w);
}

void admission_admit_waiters(gateway_t *gw) {
    while (gw->queue_head && !gw->stopping && !gw->draining && gw->active < gw->cfg.max_sessions) {
        waiter_t *w = gw->queue_head;
        uv_timer_stop(&w->timer);
        admission_t adm = w->adm;
        http_conn_t *conn = w->conn;
        waiter_release(w);
        session_start(gw, conn, &adm);
        explicit_bzero(&adm, sizeof adm);
    }
}

const char *admission_refusal(const gateway_t *gw) {
    return gw->stopping ? "browserd is shutting down" : "browserd is draining: it takes no new sessions";
}

void admission_refuse_waiters(gateway_t *gw) {
    while (gw->queue_head) {
        waiter_t *w = gw->queue_head;
        uv_timer_stop(&w->timer);
        gateway_metrics_refused(gw, gw->stopping ? "stopping" : "draining");
        http_respond_error(w->conn, 503, NULL, admission_refusal(gw), true);
        waiter_release(w);
    }
}

unsigned admission_queue_length(const gateway_t *gw) {
    unsigned n = 0;
    for (const waiter_t *w = gw->queue_head; w; w = w->next) n++;
    return n;
}

static void enqueue(gateway_t *gw, http_conn_t *conn, const admission_t *adm) {
    waiter_t *wt = calloc(1, sizeof *wt);
    if (!wt) {
        http_respond_error(conn, 503, NULL, "Out of memory", true);
        return;
    }
    wt->gw = gw;
    wt->conn = conn;
    wt->adm = *adm;
    wt->arrived_ms = time_now_ms();
    wt->adm.queued_ns = uv_hrtime();
    uv_timer_init(gw->cfg.loop, &wt->timer);
    wt->timer.data = wt;
    uv_timer_start(&wt->timer, on_waiter_timeout, gw->cfg.queue_timeout_ms, 0);
    wt->prev = gw->queue_tail;
    if (gw->queue_tail) gw->queue_tail->next = wt;
    else gw->queue_head = wt;
    gw->queue_tail = wt;
}

/* A client whose zone is known good: a session now, a place in the queue, or 503. */
static void admit_or_queue(gateway_t *gw, http_conn_t *conn, const admission_t *adm) {
    if (gw->active < gw->cfg.max_sessions && !gw->queue_head) {
        session_start(gw, conn, adm);
    } else if (admission_queue_length(gw) >= gw->cfg.max_queue) {
        gateway_metrics_refused(gw, "full");
        http_respond_error(conn, 503, "Retry-After: 1\r\n", "Every session slot and the whole queue are taken", true);
    } else {
        enqueue(gw, conn, adm);
    }
}

/* ---------------------------------------------------------------- the zone check ---- */

/* One zone check on a worker thread (where the store is), for any front. */
typedef struct {
    uv_work_t work;
    gateway_t *gw;
    zone_credentials_t cred;
    char upstream[1024];
    int rc;
    bool have_peer;
    struct sockaddr_storage peer;
    gateway_zone_checked_fn done;
    void *arg;
} zone_check_t;

static void zone_check_work(uv_work_t *w) {
    zone_check_t *j = w->data;
    j->rc = store_zone_authorize(j->gw->cfg.store, j->cred.customer_id, j->cred.zone, j->cred.password, j->upstream,
                                 sizeof j->upstream);
}

static void zone_check_done(uv_work_t *w, int status) {
    zone_check_t *j = w->data;
    /* One answer for an unknown customer or zone and a wrong password: which exist is not the
     * caller's to learn (the store takes as long for either: store_zone_password_burn). */
    int rc = status != 0 ? -ECANCELED : j->rc == -ENOENT ? -EACCES : j->rc;
    if (rc == -EACCES && j->have_peer)
        failure_limit_fail(j->gw->cfg.auth_limit, (const struct sockaddr *)&j->peer, uv_now(j->gw->cfg.loop));
    j->done(j->arg, rc, j->upstream);
    explicit_bzero(j, sizeof *j); /* the password and the upstream's credentials */
    free(j);
}

int admission_check_zone(gateway_t *gw, const zone_credentials_t *cred, const struct sockaddr_storage *peer,
                         gateway_zone_checked_fn done, void *arg) {
    zone_check_t *j = calloc(1, sizeof *j);
    if (!j) return -ENOMEM;
    j->gw = gw;
    j->cred = *cred;
    j->have_peer = peer != NULL;
    if (peer) j->peer = *peer;
    j->done = done;
    j->arg = arg;
    j->work.data = j;
    if (uv_queue_work(gw->cfg.loop, &j->work, zone_check_work, zone_check_done) != 0) {
        explicit_bzero(j, sizeof *j);
        free(j);
        return -EAGAIN;
    }
    return 0;
}

/* A CDP client whose zone is being checked; then admitted, queued, or refused. */
typedef struct {
    gateway_t *gw;
    http_conn_t *conn;
    admission_t adm;
} checking_t;

static void on_zone_checked(void *arg, int rc, const char *upstream) {
    checking_t *c = arg;
    gateway_t *gw = c->gw;
    if (rc == -ECANCELED || gw->stopping || gw->draining) {
        gateway_metrics_refused(gw, gw->stopping ? "stopping" : "draining");
        http_respond_error(c->conn, 503, NULL, admission_refusal(gw), true);
    } else if (rc == -EACCES) {
        gateway_metrics_refused(gw, "invalid_credentials");
        http_respond_error(c->conn, 403, NULL, "Invalid credentials: unknown customer or zone, or a wrong password",
                           true);
    } else if (rc < 0) {
        gateway_metrics_refused(gw, "store_unreachable");
        http_respond_error(c->conn, 503, NULL, "Credentials could not be checked", true);
    } else {
        snprintf(c->adm.upstream, sizeof c->adm.upstream, "%s", upstream);
        admit_or_queue(gw, c->conn, &c->adm);
    }
    explicit_bzero(&c->adm, sizeof c->adm); /* the password and the upstream's credentials */
    free(c);
}

/* ---------------------------------------------------------------- HTTP requests ---- */

static const char *header_value(const http_request_t *req, const char *name, size_t *len) {
    const http_header_t *h = http_request_header(req, name);
    *len = h ? h->value_len : 0;
    return h ? h->value : NULL;
}

void gateway_ws_handshake_of(const http_request_t *req, ws_handshake_req_t *hs) {
    *hs = (ws_handshake_req_t){0};
    hs->upgrade = header_value(req, "upgrade", &hs->upgrade_len);
    hs->connection = header_value(req, "connection", &hs->connection_len);
    hs->version = header_value(req, "sec-websocket-version", &hs->version_len);
    hs->key = header_value(req, "sec-websocket-key", &hs->key_len);
}

/* /json/version: what Chromium answers there, with webSocketDebuggerUrl pointing back at
 * browserd (with the caller's own credentials, when it sent some, so that clients that
 * discover the endpoint over HTTP keep them for the WebSocket). */
void admission_respond_version(gateway_t *gw, http_conn_t *conn, const http_request_t *req) {
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
    int rc = buf_append_str(&url, "ws://");
    size_t auth_len;
    const char *auth = header_value(req, "authorization", &auth_len);
    zone_credentials_t cred;
    if (auth && credentials_from_basic(auth, auth_len, &cred) == CREDENTIALS_OK) {
        rc |= buf_printf(&url, "brd-customer-%s-zone-%s:", cred.customer_id, cred.zone);
        for (const char *p = cred.password; *p; p++) { /* percent-encode all but unreserved */
            unsigned char c = (unsigned char)*p;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c))
                rc |= buf_append_char(&url, (char)c);
            else
                rc |= buf_printf(&url, "%%%02X", c);
        }
        rc |= buf_append_char(&url, '@');
        explicit_bzero(cred.password, sizeof cred.password);
    }
    rc |= buf_append(&url, host, host_len);
    rc |= buf_append_str(&url, "/devtools/browser/browserd");
    buf_t b;
    buf_init(&b);
    jsonw_t w;
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_key(&w, "Browser");
    jsonw_string(&w, gw->product[0] ? gw->product : "HeadlessChrome (browserd)");
    jsonw_key(&w, "Protocol-Version");
    jsonw_string(&w, "1.3");
    jsonw_key(&w, "User-Agent");
    jsonw_string(&w, gw->user_agent[0] ? gw->user_agent : "browserd");
    jsonw_key(&w, "V8-Version");
    jsonw_string(&w, gw->js_version[0] ? gw->js_version : "0.0.0.0");
    /* chromedriver reads the Blink revision from here ("537.36 (@<revision>)") */
    char webkit[128];
    snprintf(webkit, sizeof webkit, "537.36 (%s)", gw->revision[0] ? gw->revision : "@0");
    jsonw_key(&w, "WebKit-Version");
    jsonw_string(&w, webkit);
    jsonw_key(&w, "webSocketDebuggerUrl");
    jsonw_string_n(&w, url.data, url.len);
    jsonw_object_end(&w);
    explicit_bzero(url.data, url.len);
    buf_free(&url);
    size_t len;
    char *body = rc < 0 || jsonw_failed(&w) ? NULL : buf_steal(&b, &len);
    if (!body) {
        buf_free(&b);
        http_respond_error(conn, 500, NULL, "Internal error", true);
        return;
    }
    http_respond(conn, 200, NULL, body, len, false);
}

/* Where the client reached browserd (its Host header, when it is a plain host[:port]), for the
 * live view's URLs; else the listen address. */
static void live_host_of(const gateway_t *gw, const http_request_t *req, char *out, size_t cap) {
    size_t len;
    const char *host = header_value(req, "host", &len);
    bool plain = host && len && len < cap;
    for (size_t i = 0; plain && i < len; i++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", host[i]) && host[i];
    if (plain) snprintf(out, cap, "%.*s", (int)len, host);
    else snprintf(out, cap, "%s:%d", gw->host, gateway_port(gw));
}

/* The WebSocket handshake of an upgrade request: true, or false once answered with its error. */
static bool handshake_checked(gateway_t *gw, http_conn_t *conn, const http_request_t *req, ws_handshake_req_t *hs) {
    gateway_ws_handshake_of(req, hs);
    int status = 400;
    const char *reason = NULL;
    if (ws_handshake_validate(hs, &status, &reason) == 0) return true;
    gateway_metrics_refused(gw, "bad_handshake");
    http_respond_error(conn, status, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, reason, true);
    return false;
}

void admission_admit_checked(gateway_t *gw, http_conn_t *conn, const http_request_t *req, const zone_credentials_t *cred,
                             const char *upstream, const char *live_host, const gateway_session_hooks_t *hooks) {
    if (gw->stopping || gw->draining) {
        gateway_metrics_refused(gw, gw->stopping ? "stopping" : "draining");
        http_respond_error(conn, 503, NULL, admission_refusal(gw), true);
        return;
    }
    ws_handshake_req_t hs;
    if (!req->upgrade || !handshake_checked(gw, conn, req, &hs)) {
        if (!req->upgrade) http_respond_error(conn, 404, NULL, "Not found: connect with a WebSocket", true);
        return;
    }
    admission_t *adm = calloc(1, sizeof *adm); /* 1.4 KB: not on the stack of every caller */
    if (!adm || ws_handshake_accept(hs.key, hs.key_len, adm->accept) != 0) {
        free(adm);
        http_respond_error(conn, 500, NULL, "Internal error", true);
        return;
    }
    adm->cred = *cred;
    snprintf(adm->upstream, sizeof adm->upstream, "%s", upstream ? upstream : "");
    if (live_host) snprintf(adm->host, sizeof adm->host, "%s", live_host);
    else live_host_of(gw, req, adm->host, sizeof adm->host);
    if (hooks) adm->hooks = *hooks;
    adm->arrived_ns = uv_hrtime();
    admit_or_queue(gw, conn, adm);
    explicit_bzero(adm, sizeof *adm);
    free(adm);
}

void admission_handle(void *ctx, http_conn_t *conn, const http_request_t *req) {
    gateway_t *gw = ctx;
    if (liveview_http(gw, conn, req)) return;
    if (!req->upgrade) {
        if (req->method == HTTP_M_GET &&
            (strcmp(req->path, "/json/version") == 0 || strcmp(req->path, "/json/version/") == 0)) {
            admission_respond_version(gw, conn, req);
            return;
        }
        http_respond_error(conn, 404, NULL, "Not found: connect with a WebSocket", true);
        return;
    }
    if (gw->stopping || gw->draining) {
        gateway_metrics_refused(gw, gw->stopping ? "stopping" : "draining");
        http_respond_error(conn, 503, NULL, admission_refusal(gw), true);
        return;
    }
    ws_handshake_req_t hs;
    if (!handshake_checked(gw, conn, req, &hs)) return;
    struct sockaddr_storage peer;
    bool have_peer = gw->cfg.auth_limit && http_conn_peer(conn, &peer) == 0;
    unsigned wait_s =
        have_peer ? failure_limit_wait(gw->cfg.auth_limit, (const struct sockaddr *)&peer, uv_now(gw->cfg.loop)) : 0;
    if (wait_s) {
        char retry[48];
        snprintf(retry, sizeof retry, "Retry-After: %u\r\n", wait_s);
        gateway_metrics_refused(gw, "auth_rate_limited");
        http_respond_error(conn, 429, retry, FAILURE_LIMIT_MESSAGE, true);
        return;
    }
    size_t auth_len;
    const char *auth = header_value(req, "authorization", &auth_len);
    checking_t *j = calloc(1, sizeof *j);
    if (!j) {
        http_respond_error(conn, 503, NULL, "Out of memory", true);
        return;
    }
    credentials_result_t cr = auth ? credentials_from_basic(auth, auth_len, &j->adm.cred) : CREDENTIALS_MISSING;
    if (cr == CREDENTIALS_MISSING) {
        free(j);
        gateway_metrics_refused(gw, "missing_credentials");
        http_respond_error(conn, 407, "Proxy-Authenticate: Basic realm=\"browserd\"\r\n",
                           "Credentials are missing: use brd-customer-<ID>-zone-<ZONE>:<PASSWORD>", true);
        return;
    }
    if (cr != CREDENTIALS_OK) {
        free(j);
        gateway_metrics_refused(gw, "invalid_credentials");
        http_respond_error(conn, 403, NULL, "Invalid credentials: expected brd-customer-<ID>-zone-<ZONE>:<PASSWORD>",
                           true);
        return;
    }
    if (ws_handshake_accept(hs.key, hs.key_len, j->adm.accept) != 0) {
        explicit_bzero(j, sizeof *j); /* the password */
        free(j);
        http_respond_error(conn, 500, NULL, "Internal error", true);
        return;
    }
    live_host_of(gw, req, j->adm.host, sizeof j->adm.host);
    j->gw = gw;
    j->conn = conn;
    j->adm.arrived_ns = uv_hrtime();
    if (admission_check_zone(gw, &j->adm.cred, have_peer ? &peer : NULL, on_zone_checked, j) < 0) {
        explicit_bzero(j, sizeof *j); /* the password */
        free(j);
        http_respond_error(conn, 503, NULL, "Service unavailable", true);
    }
}
