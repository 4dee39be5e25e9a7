/* The CDP gateway's life: see gateway.h, gateway_internal.h (which part does what) and
 * docs/gateway.md.
 *
 * A session ends once, for one reason (session_end in gateway_session.c), and is freed when its
 * client socket is closed, its browser has exited and its last record is saved. Stopping ends
 * every session with worker_disconnect and waits for all of that. */
#include "cdp/gateway.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdp/gateway_internal.h"
#include "cdp/browser_version.h"

#include <cjson/cJSON.h>

void gateway_config_defaults(gateway_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 9222;
    cfg->pool_size = BROWSER_POOL_DEFAULT_SIZE;
    cfg->max_sessions = 10;
    cfg->max_queue = 100;
    cfg->queue_timeout_ms = 30 * 1000;
    cfg->session_timeout_ms = 60 * 60 * 1000;
    cfg->idle_timeout_ms = 5 * 60 * 1000;
    cfg->save_interval_ms = 2000;
    cfg->guard_private = true;
    cfg->live_view = true;
    cfg->captcha.detect = true;
    cfg->captcha.solver.timeout_ms = 120 * 1000;
    cfg->captcha.solver.poll_ms = 1000;
}

/* ---------------------------------------------------------------- a browser's network ---- */

int gateway_net_create(gateway_t *gw, browser_net_t **out) {
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

void gateway_net_release(browser_net_t *n) {
    if (n) traffic_proxy_stop(n->proxy, net_free_after_stop, n);
}

/* The pool launches browsers before any session: each gets its own proxy this way. */
static int pool_prepare_launch(void *ctx, browser_config_t *cfg, void **data) {
    browser_net_t *n;
    int rc = gateway_net_create(ctx, &n);
    if (rc < 0) return rc;
    cfg->extra_args = n->args;
    cfg->extra_arg_count = 2;
    *data = n;
    return 0;
}

static void pool_release_launch(void *ctx, void *data) {
    (void)ctx;
    gateway_net_release(data);
}

/* browser_pool_config_t.room: warm browsers beyond the free session slots would wait for
 * nothing, and none are added while memory is short. */
static unsigned pool_room(void *ctx) {
    gateway_t *gw = ctx;
    if (gw->cfg.memory_in_use && gw->cfg.memory_in_use() > 0.85) return 0;
    return gw->active < gw->cfg.max_sessions ? gw->cfg.max_sessions - gw->active : 0;
}

/* ---------------------------------------------------------------- lifecycle ---- */

static void on_pool_version(void *ctx, const char *msg, size_t len) {
    gateway_t *gw = ctx;
    cJSON *doc = cJSON_ParseWithLength(msg, len); /* once per launch, a few hundred bytes */
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(doc, "result");
    const struct {
        const char *key;
        char *out;
        size_t cap;
    } fields[] = {{"product", gw->product, sizeof gw->product},
                  {"revision", gw->revision, sizeof gw->revision},
                  {"userAgent", gw->user_agent, sizeof gw->user_agent},
                  {"jsVersion", gw->js_version, sizeof gw->js_version}};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, fields[i].key);
        if (cJSON_IsString(v)) snprintf(fields[i].out, fields[i].cap, "%s", v->valuestring);
    }
    cJSON_Delete(doc);
}

static void on_browser_version(void *arg, const char *product) {
    gateway_t *gw = arg;
    if (!gw->product[0]) snprintf(gw->product, sizeof gw->product, "%s", product);
    gw->stop_pending--;
    gateway_maybe_stopped(gw);
}

int gateway_start(const gateway_config_t *cfg, gateway_t **out) {
    gateway_t *gw = calloc(1, sizeof *gw);
    if (!gw) return -ENOMEM;
    gw->cfg = *cfg;
    if (!gw->cfg.max_queue) gw->cfg.max_queue = 100;
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
    gw->browser_cfg.run_as = cfg->browser_run_as;
    gw->browser_cfg.run_uid = cfg->browser_uid;
    gw->browser_cfg.run_gid = cfg->browser_gid;
    traffic_proxy_config_defaults(&gw->proxy_cfg);
    gw->proxy_cfg.guard_private = cfg->guard_private;
    gw->proxy_cfg.allow_private = cfg->allow_private;
    gw->proxy_cfg.allow_private_count = cfg->allow_private_count;
    /* A pooled browser runs (and Chromium makes its own requests) before its session, and so its
     * zone, is known: until then it uses the default upstream, never a direct connection. */
    gw->proxy_cfg.upstream_proxy = cfg->upstream_proxy;
    gw->proxy_cfg.totals = &gw->metrics.traffic;
    char perr[256];
    if (traffic_proxy_config_check(&gw->proxy_cfg, perr, sizeof perr) < 0) {
        fprintf(stderr, "browserd: traffic settings: %s\n", perr);
        free(gw);
        return -EINVAL;
    }
    http_server_config_t hcfg;
    http_server_config_defaults(&hcfg);
    hcfg.name = "cdp";
    hcfg.secret_path_prefix = "/live/"; /* the live view's tokens (liveview.h) */
    hcfg.host = gw->host;
    hcfg.port = cfg->port;
    int rc = http_server_start(cfg->loop, &hcfg, admission_handle, gw, &gw->http);
    if (rc < 0) {
        free(gw);
        return rc;
    }
    gateway_metrics_init(&gw->metrics);
    /* Without a pool no launch probe tells the browser's version: ask the binary once. */
    if (cfg->pool_size == 0 &&
        browser_version_probe(cfg->loop, gw->browser_cfg.chromium_path, on_browser_version, gw) == 0)
        gw->stop_pending++;
    if (cfg->pool_size > 0) {
        browser_pool_config_t pcfg = {.size = cfg->pool_size,
                                      .max_size = cfg->pool_max,
                                      .room = pool_room,
                                      .browser = &gw->browser_cfg,
                                      .prepare_launch = pool_prepare_launch,
                                      .release_launch = pool_release_launch,
                                      .on_version = on_pool_version,
                                      .ctx = gw};
        rc = browser_pool_new(cfg->loop, &pcfg, &gw->pool);
        if (rc < 0) gw->pool = NULL; /* sessions then launch their own browser */
    }
    *out = gw;
    return 0;
}

int gateway_port(const gateway_t *gw) { return http_server_port(gw->http); }

const gateway_config_t *gateway_config(const gateway_t *gw) { return &gw->cfg; }

bool gateway_browser_version_known(const gateway_t *gw) { return gw->product[0] != '\0'; }

int gateway_check_zone(gateway_t *gw, const zone_credentials_t *cred, const struct sockaddr_storage *peer,
                       gateway_zone_checked_fn done, void *arg) {
    return admission_check_zone(gw, cred, peer, done, arg);
}

void gateway_respond_version(gateway_t *gw, http_conn_t *conn, const http_request_t *req) {
    admission_respond_version(gw, conn, req);
}

void gateway_admit_checked(gateway_t *gw, http_conn_t *conn, const http_request_t *req, const zone_credentials_t *cred,
                           const char *upstream, const char *live_host, const gateway_session_hooks_t *hooks) {
    admission_admit_checked(gw, conn, req, cred, upstream, live_host, hooks);
}

int gateway_kill_session(gateway_t *gw, const char *customer_id, const uint8_t id[16]) {
    for (session_t *s = gw->sessions; s; s = s->next)
        if (!s->ended && memcmp(s->id, id, 16) == 0 && strcmp(s->customer, customer_id) == 0) {
            session_end(s, SESSION_FAILED, "job_killed", "the session was ended through the API",
                        WS_CLOSE_GOING_AWAY, "job_killed: ended through the API");
            return 0;
        }
    return -ENOENT;
}

int gateway_live_url(void *ctx, const char *customer_id, const uint8_t id[16], bool input, char *url, size_t cap) {
    gateway_t *gw = ctx;
    for (session_t *s = gw ? gw->sessions : NULL; s; s = s->next)
        if (!s->ended && memcmp(s->id, id, 16) == 0 && strcmp(s->customer, customer_id) == 0)
            return liveview_url(s, input, url, cap);
    return -ENOENT;
}

void gateway_maybe_stopped(gateway_t *gw) {
    if (gw->draining && !gw->stopping && !gw->sessions && gw->on_drained) {
        void (*drained)(void *) = gw->on_drained;
        gw->on_drained = NULL;
        drained(gw->drained_arg);
        return;
    }
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

void gateway_status(const gateway_t *gw, gateway_status_t *out) {
    memset(out, 0, sizeof *out);
    out->running = gw->active;
    out->queued = admission_queue_length(gw);
    out->max_sessions = gw->cfg.max_sessions;
    out->max_queue = gw->cfg.max_queue;
    out->pool_size = gw->cfg.pool_size;
    if (gw->pool) {
        browser_pool_stats_t ps;
        browser_pool_get_stats(gw->pool, &ps);
        out->pool_ready = ps.ready;
        out->pool_target = ps.target;
        out->pool_misses = ps.misses;
    }
    out->draining = gw->draining || gw->stopping;
}

void gateway_drain(gateway_t *gw, void (*drained)(void *arg), void *arg) {
    if (gw->stopping || gw->draining) return;
    gw->draining = true;
    gw->on_drained = drained;
    gw->drained_arg = arg;
    admission_refuse_waiters(gw);
    gateway_maybe_stopped(gw);
}

void gateway_stop(gateway_t *gw, void (*done)(void *arg), void *arg) {
    gw->stopping = true;
    gw->on_drained = NULL;
    gw->on_stopped = done;
    gw->stopped_arg = arg;
    gw->stop_pending += 1; /* the HTTP server */
    admission_refuse_waiters(gw);
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
    gateway_metrics_free(&gw->metrics);
    free(gw);
}
