/* The CDP gateway: the endpoint Puppeteer and Playwright connect to. Every WebSocket upgrade
 * (on any path) with valid zone credentials becomes one browser session: a fresh Chromium
 * (from the warm pool when one is ready), relayed message for message, observed by browserd's
 * own invisible CDP session, and recorded in the store and the catalog (running, with current
 * values every few seconds, then its end). See docs/gateway.md.
 *
 * Threading: loop thread only. Store writes go to worker threads.
 * Ownership: the store and catalog are borrowed and must outlive the gateway. */
#ifndef BROWSERD_CDP_GATEWAY_H
#define BROWSERD_CDP_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "catalog/catalog.h"
#include "cdp/captcha.h"
#include "cdp/credentials.h"
#include "http/http_server.h"
#include "net/failure_limit.h"
#include "store/store.h"
#include "store/store_spool.h"

typedef struct gateway gateway_t;

typedef struct {
    uv_loop_t *loop;
    store_t *store;
    catalog_t *catalog;
    const char *host;            /* numeric listen address */
    int port;                    /* 0 = any free port */
    const char *chromium_path;   /* NULL = /usr/bin/chromium */
    bool browser_run_as;         /* browsers as browser_uid:browser_gid (--browser-user) */
    uid_t browser_uid;
    gid_t browser_gid;
    unsigned pool_size;          /* warm browsers at the least; 0 = no pool (launch per session) */
    unsigned pool_max;           /* the most warm browsers when sessions come fast (browser_pool.h,
                                    "Sizing"); <= pool_size: a fixed pool */
    /* Optional: the machine's memory in use, 0..1 (< 0 unknown). Above 0.85 the pool does not
     * grow past pool_size. */
    double (*memory_in_use)(void);
    unsigned max_sessions;       /* concurrent sessions; further clients wait in a queue */
    unsigned max_queue;          /* clients that may wait; more get 503 at once (0: the default, 100) */
    uint64_t queue_timeout_ms;   /* then 503 and a session failed with client_timeout */
    uint64_t session_timeout_ms; /* session_timeout */
    uint64_t idle_timeout_ms;    /* inactivity_timeout: no CDP message either way */
    uint64_t save_interval_ms;   /* how stale a running session's record may get */
    const char *worker_id;       /* this node's id, for the store (worker_disconnect) */
    /* Where records wait while the store cannot take them (NULL: saves that fail are lost
     * until the session's next save). Borrowed. */
    store_spool_t *spool;
    /* Traffic: every browser goes through a proxy of its own session (bandwidth, guard). */
    bool guard_private;                 /* refuse private destinations (default true) */
    const char *const *allow_private;   /* CIDRs opened anyway (borrowed) */
    size_t allow_private_count;
    const char *upstream_proxy;         /* default upstream for zones without one; NULL = direct */
    /* Failed zone checks per source address (NULL: no limit); borrowed, shared with the API.
     * An address over it gets 429 with Retry-After before its credentials are looked at. */
    failure_limit_t *auth_limit;
    bool live_view;                     /* Page.inspect and /live (default true: --live-view) */
    /* Captchas: detection on by default, solving when solver.url is set (docs/captcha.md).
     * The strings are borrowed. */
    captcha_config_t captcha;
} gateway_config_t;

void gateway_config_defaults(gateway_config_t *cfg);

int gateway_start(const gateway_config_t *cfg, gateway_t **out);
int gateway_port(const gateway_t *gw);

/* Ends a running session of this customer with job_killed (the DELETE of the API): 0, or
 * -ENOENT when no such session runs in this process. */
int gateway_kill_session(gateway_t *gw, const char *customer_id, const uint8_t id[16]);
/* A live view URL of the running session `id` of this customer (an api_live_url_fn: ctx is the
 * gateway, NULL when there is none): 0, -ENOENT (not running here), or liveview_url's errors. */
int gateway_live_url(void *ctx, const char *customer_id, const uint8_t id[16], bool input, char *url, size_t cap);

/* ---- another front's clients (the WebDriver endpoint, src/webdriver/) ----
 * A front that checked a zone's credentials itself hands the gateway the CDP client that acts
 * for its user (chromedriver): that client's session is the user's, with the same pool, queue,
 * timeouts and record as any CDP client's. */
typedef struct {
    /* The session began (its id, the record's, borrowed for the call). */
    void (*started)(void *arg, const char *session_id);
    /* It ended, whatever the reason (error_code NULL when it finished without one): called
     * once, and only after started. arg must stay valid until then. */
    void (*ended)(void *arg, const char *error_code);
    void *arg;
} gateway_session_hooks_t;

/* Checks a zone's credentials as the CDP endpoint does, on a worker thread (where the store is);
 * a wrong one from peer (NULL: not counted) counts against its address's failure limit. Then
 * done(arg, rc, upstream) on the loop thread: rc 0 with the zone's upstream proxy ("" for none),
 * -EACCES for an unknown customer or zone or a wrong password (one answer for all), -ECANCELED
 * when the loop is closing, another negative errno when the store could not tell. cred is
 * copied. 0, or a negative errno (then done is never called). */
typedef void (*gateway_zone_checked_fn)(void *arg, int rc, const char *upstream);
int gateway_check_zone(gateway_t *gw, const zone_credentials_t *cred, const struct sockaddr_storage *peer,
                       gateway_zone_checked_fn done, void *arg);
/* Answers GET /json/version the way the CDP endpoint does (webSocketDebuggerUrl on the
 * request's Host). */
void gateway_respond_version(gateway_t *gw, http_conn_t *conn, const http_request_t *req);
/* A WebSocket upgrade request whose zone was checked already: the handshake is checked, then
 * the client is admitted at once, queued, or refused exactly as a CDP client would be (the
 * answer goes on conn). cred and upstream ("" for none; the zone's, else the default one) are
 * copied. live_host: host[:port] of the CDP listener as the user reaches it, for the live view's
 * URLs (NULL: the request's Host). hooks: called as above when a session begins (NULL: none). */
void gateway_admit_checked(gateway_t *gw, http_conn_t *conn, const http_request_t *req, const zone_credentials_t *cred,
                           const char *upstream, const char *live_host, const gateway_session_hooks_t *hooks);
/* Whether /json/version can name the browser's product yet (known from the pool's first launch,
 * or from `chromium --version` without a pool, within a second or so of the start). */
bool gateway_browser_version_known(const gateway_t *gw);
/* The loop, store and failure limit the gateway was started with (for another front). */
const gateway_config_t *gateway_config(const gateway_t *gw);

/* What a load balancer or an orchestrator asks of the node (GET /ready, /pressure). */
typedef struct {
    unsigned running;       /* sessions holding a browser */
    unsigned queued;        /* clients waiting for one */
    unsigned max_sessions, max_queue;
    unsigned pool_size, pool_ready; /* warm browsers wanted at the least, and ready now */
    unsigned pool_target;           /* warm browsers wanted now */
    uint64_t pool_misses;           /* sessions that found no warm browser */
    bool draining;          /* gateway_drain was called: no new sessions */
} gateway_status_t;
void gateway_status(const gateway_t *gw, gateway_status_t *out);

/* Drains: new clients (and those waiting in the queue) get 503 "browserd is draining", running
 * sessions go on. drained(arg) once none runs any more and every record is saved (at once
 * when none runs); not called when gateway_stop comes first. */
void gateway_drain(gateway_t *gw, void (*drained)(void *arg), void *arg);

/* Stops: no new sessions, waiting clients get 503, running sessions end with
 * worker_disconnect (their clients get a close frame), the pool is emptied; done(arg) once
 * every browser is gone and every record saved. Then gateway_free. */
void gateway_stop(gateway_t *gw, void (*done)(void *arg), void *arg);
void gateway_free(gateway_t *gw);

#endif
