/* What the parts of the CDP gateway share (private to src/cdp). See gateway.h for the whole.
 *
 *   gateway.c            the gateway's life: start, stop, free; each browser's network (its
 *                        traffic proxy and the Chromium arguments that point at it)
 *   gateway_admission.c  the HTTP side: /json/version, the WebSocket upgrade, the zone check
 *                        (worker thread), the queue, and a session's start (the socket taken
 *                        over, a browser from the pool or launched, the observer attached)
 *   gateway_session.c    a session's record and its end: saves (worker threads), the one
 *                        place a session ends, its timers, its lifetime
 *   gateway_relay.c      messages both ways: client WebSocket frames -> Chromium's pipe and
 *                        back, browserd's own commands (Browser.getSessionId, ...), backpressure
 *
 * Lifetime of a session: a net_lifetime_t (net/lifetime.h) counting its client handle, its
 * three timers, its browser (until on_exit), each write and shutdown in flight and its save in
 * a batch; session_release frees it at zero. Saves of all sessions are written in batches,
 * one batch at a time (gateway_session.c).
 * Threading: loop thread only, but for the save jobs' and auth jobs' work functions, which
 * touch only their own copies and the store/catalog. */
#ifndef BROWSERD_CDP_GATEWAY_INTERNAL_H
#define BROWSERD_CDP_GATEWAY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cdp/browser.h"
#include "cdp/browser_pool.h"
#include "cdp/cdp_scan.h"
#include "cdp/credentials.h"
#include "cdp/gateway.h"
#include "cdp/liveview.h"
#include "cdp/liveview_viewer.h"
#include "cdp/observer.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "core/uuid.h"
#include "http/http_server.h"
#include "json/jsonw.h"
#include "net/lifetime.h"
#include "proxy/traffic_proxy.h"
#include "ws/ws_codec.h"

#define GATEWAY_READ_BUF_SIZE (64 * 1024)
/* Stop reading the browser while this much waits to be written to the client. */
#define GATEWAY_CLIENT_WRITE_HIGH (8u << 20)
#define GATEWAY_CLIENT_WRITE_LOW (1u << 20)
/* Browser.getSessionId requests held until the API knows the session. */
#define GATEWAY_MAX_HELD_ID_REQUESTS 8

typedef struct session session_t;
typedef struct waiter waiter_t;
typedef struct save_item save_item_t;
typedef struct save_batch save_batch_t;

/* A browser's traffic proxy, and the Chromium arguments that point the browser at it (kept
 * here because the launch borrows them). Made before the browser, so before its session. */
typedef struct {
    traffic_proxy_t *proxy;
    char proxy_arg[64];
    const char *args[2];
} browser_net_t;

/* What GET /metrics shows of the gateway (gateway_metrics.c writes it). Loop thread only. */
typedef struct {
    metric_counter_set_t ended;   /* sessions ended: status, error code ("none") */
    metric_counter_set_t refused; /* CDP clients refused before a session: reason */
    metric_histogram_t connect;   /* the upgrade request's arrival -> the 101 sent */
    metric_histogram_t queue_wait;/* the zone check's end -> a browser slot (0 when free at once) */
    uint64_t messages_from_client, bytes_from_client; /* CDP messages (and their bytes) */
    uint64_t messages_to_client, bytes_to_client;     /* from the browsers, relayed */
    traffic_totals_t traffic;     /* every session's traffic proxy, added up */
    unsigned live_viewers;        /* live view WebSockets open (liveview.c) */
    unsigned live_screencasts;    /* pages being encoded for them */
    uint64_t live_frames_sent, live_frames_dropped, live_input_dropped;
} gateway_metrics_t;

struct gateway {
    gateway_config_t cfg;
    gateway_metrics_t metrics;
    traffic_proxy_config_t proxy_cfg;
    char host[64];
    char worker[128];
    /* What /json/version says of the browser, as Chromium would: from a pooled browser's
     * Browser.getVersion, else the product alone from `chromium --version`; "" until known. */
    char product[64], revision[80], user_agent[256], js_version[32];
    http_server_t *http;
    browser_config_t browser_cfg;
    browser_pool_t *pool;
    session_t *sessions;
    unsigned active; /* sessions holding a browser slot */
    waiter_t *queue_head, *queue_tail;
    char read_buf[GATEWAY_READ_BUF_SIZE]; /* shared: a read is processed before the next one */
    save_batch_t *save_queue;   /* saves asked for while save_running is written */
    save_batch_t *save_running; /* the batch on a worker thread, or NULL */
    bool stopping;
    bool draining; /* gateway_drain: refuse new clients, let the running sessions end */
    void (*on_drained)(void *arg);
    void *drained_arg;
    int stop_pending;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
};

/* What admitting a client needs, from its request and its zone. */
typedef struct {
    zone_credentials_t cred;
    char accept[WS_ACCEPT_LEN + 1]; /* Sec-WebSocket-Accept */
    char upstream[1024];            /* the zone's upstream proxy, "" for none */
    uint64_t arrived_ns;            /* the upgrade request came (uv_hrtime) */
    uint64_t queued_ns;             /* it joined the queue; 0 when it did not wait */
    char host[256];                 /* its Host header (checked), for the live view's URLs */
    gateway_session_hooks_t hooks;  /* another front's (gateway_admit_checked); zeroed: none */
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
    net_lifetime_t life; /* first: see net/lifetime.h */
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
    captcha_engine_t captcha; /* when captcha_live: set up with the observer */
    bool captcha_live;
    browser_net_t *net;
    traffic_counts_t net_base; /* the proxy's counts when the session began: earlier bytes
                                  (a pooled browser's own start) are not the session's */

    uv_timer_t session_timer, idle_timer, save_timer;
    bool timers_open;
    bool browser_answered; /* a first message came from the browser: the idle timer runs */

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
    char *sid_requests[GATEWAY_MAX_HELD_ID_REQUESTS];
    size_t sid_request_lens[GATEWAY_MAX_HELD_ID_REQUESTS];
    size_t nsid_requests;

    /* the live view (liveview.c): NULL until the first Page.inspect, freed at the end */
    liveview_session_t *live;
    char live_host[256]; /* host[:port] the client reached browserd at */
    gateway_session_hooks_t hooks; /* another front's, from its admission (zeroed: none) */
};

/* ---- gateway.c ---- */
/* A traffic proxy for one browser (before its session exists). 0 or a negative errno. */
int gateway_net_create(gateway_t *gw, browser_net_t **out);
/* Stops the proxy and frees n (NULL is ignored). */
void gateway_net_release(browser_net_t *n);
/* Calls the stop callback once nothing of the gateway is left running. */
void gateway_maybe_stopped(gateway_t *gw);

/* ---- gateway_admission.c ---- */
/* The http_handler_fn of the CDP listener; ctx is the gateway. */
void admission_handle(void *ctx, http_conn_t *conn, const http_request_t *req);
/* Starts queued clients while browser slots are free. */
void admission_admit_waiters(gateway_t *gw);
/* gateway_respond_version, gateway_admit_checked and gateway_check_zone (gateway.h). */
int admission_check_zone(gateway_t *gw, const zone_credentials_t *cred, const struct sockaddr_storage *peer,
                         gateway_zone_checked_fn done, void *arg);
void admission_respond_version(gateway_t *gw, http_conn_t *conn, const http_request_t *req);
void admission_admit_checked(gateway_t *gw, http_conn_t *conn, const http_request_t *req, const zone_credentials_t *cred,
                             const char *upstream, const char *live_host, const gateway_session_hooks_t *hooks);
/* Answers every queued client 503 (a stop or a drain). */
void admission_refuse_waiters(gateway_t *gw);
/* Clients waiting in the queue now (at most max_queue: a walk is cheap). */
unsigned admission_queue_length(const gateway_t *gw);
/* The 503's message for a client that comes while the gateway stops or drains. */
const char *admission_refusal(const gateway_t *gw);

/* ---- gateway_metrics.c ---- */
void gateway_metrics_init(gateway_metrics_t *m);
void gateway_metrics_free(gateway_metrics_t *m);
/* A session or a client that never became one ended: status "finished" or "failed". */
void gateway_metrics_ended(gateway_t *gw, session_status_t status, const char *error_code);
/* A CDP client was answered an error instead of a session; reason: a short word. */
void gateway_metrics_refused(gateway_t *gw, const char *reason);

/* ---- gateway_session.c ---- */
/* A new session for an admitted client (not started yet: admission does that); NULL when out
 * of memory. The count starts at 1, for the client handle. */
session_t *session_new(gateway_t *gw, const zone_credentials_t *cred);
void session_ref(session_t *s);
void session_unref(session_t *s);
/* The session timers (maximum duration, idle, periodic save) start now. */
void session_start_timers(session_t *s);
/* The browser's first message (it is up): the idle timer starts. Idempotent. */
void session_browser_answered(session_t *s);
/* A CDP message went one way or the other: the idle timer starts over. */
void session_touch(session_t *s);
/* Saves the current record (worker thread; coalesced: one save in flight at a time). */
void session_save(session_t *s);
/* The one place a session ends: records why, stops its timers, closes the client with
 * close_code/close_reason, ends the browser, and saves the final record. Idempotent. */
void session_end(session_t *s, session_status_t status, const char *code, const char *message, uint16_t close_code,
                 const char *close_reason);
/* The client ended the session itself (close frame, EOF, Browser.close): finished, or failed
 * with page_navigated_error when its last navigation failed. */
void session_end_by_client(session_t *s, uint16_t close_code, const char *reason);
/* The session's captcha engine, hooked into its observer (once the observer is set up). */
void session_captcha_start(session_t *s);
/* A record of a client that never got a session (client_timeout), saved and forgotten. */
void session_save_unstarted(gateway_t *gw, const char *customer, const session_record_t *rec);

/* ---- gateway_relay.c ---- */
/* How a session's browser reports back (messages, exit, drain). */
extern const browser_callbacks_t relay_browser_callbacks;
/* The client socket is the session's from now on: relays `rest` (bytes read after the
 * upgrade request; ownership moves here) and starts reading. */
void relay_start(session_t *s, char *rest, size_t rest_len);
/* Sends a close frame, then closes the connection once it is written. */
void relay_close_client_with(session_t *s, uint16_t code, const char *reason);
/* Closes the client handle now. */
void relay_close_client(session_t *s);
/* A text message (malloc'ed, ownership moves) to the client, if it is still there. */
void relay_send_text(session_t *s, char *msg, size_t len);
/* The WebSocket handshake's headers of req (borrowed from it), for ws_handshake_validate: the
 * CDP endpoint's and the live viewer's upgrade read them the same way. */
void gateway_ws_handshake_of(const http_request_t *req, ws_handshake_req_t *hs);
/* Writes the members of an answer after its "id" (e.g. "result": {...} or "error": {...}). */
typedef void (*relay_fill_fn)(session_t *s, jsonw_t *w, const void *ctx);
/* Sends browserd's own answer {"id": id, <what fill writes>, "sessionId": session_id (when not
 * NULL; the string's contents as the client sent them)} to the client. */
void relay_reply(session_t *s, int64_t id, const char *session_id, size_t session_id_len, relay_fill_fn fill,
                 const void *ctx);
/* Answers the Browser.getSessionId requests held until the first save. */
void relay_answer_held_id_requests(session_t *s);

#endif
