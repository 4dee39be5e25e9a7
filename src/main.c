/* browserd: the command line, and the lifecycle of the daemon (`serve`). */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/log.h"
#include "api/api.h"
#include "catalog/catalog.h"
#include "catalog/catalog_sync.h"
#include "cdp/browser.h"
#include "cdp/browser_profile.h"
#include "cdp/browser_user.h"
#include "cdp/supervisor.h"
#include "webdriver/driver_netns.h"
#include "webdriver/webdriver.h"
#include "cdp/gateway.h"
#include "cli/admin.h"
#include "cli/serve_args.h"
#include "cluster/cluster.h"
#include "cli/db_copy.h"
#include "cli/webhook_cli.h"
#include "core/timeutil.h"
#include "http/http_server.h"
#include "net/failure_limit.h"
#include "proxy/proxy_guard.h"
#include "proxy/proxy_upstream.h"
#include "service/node_metrics.h"
#include "webhook/webhook_dispatch.h"
#include "webhook/webhook_url.h"
#include "service/service_notify.h"
#include "service/system_load.h"
#include "store/store.h"

#define DEFAULT_DB "./browserd.db"
#define DEFAULT_API_LISTEN "127.0.0.1:8080"
#define DEFAULT_CDP_LISTEN "127.0.0.1:9222"
#define DEFAULT_CUSTOMER "default"
#define DEFAULT_ZONE "scraping_browser1"
#define DEFAULT_LEASE_MS 30000
#define DEFAULT_DRAIN_MS 60000
#define DEFAULT_POOL_MAX 8
#define BROWSERD_VERSION "0.1.0"
#define HOUSEKEEPING_MS 5000 /* log repeats folded */

static void usage(FILE *out) {
    fprintf(out,
            "Usage: browserd [--db PATH|URI] COMMAND [ARGS]\n"
            "\n"
            "browserd records browser sessions and lists them through a REST API compatible\n"
            "with the Browser Sessions API (GET /browser_sessions).\n"
            "\n"
            "Commands:\n"
            "  serve [OPTIONS]\n"
            "      Run the daemon: the REST API, and the CDP endpoint where Puppeteer and Playwright\n"
            "      connect (ws://brd-customer-<ID>-zone-<ZONE>:<PASSWORD>@HOST:PORT), each connection a\n"
            "      fresh headless Chromium, every session recorded; the dashboard, a web page of the\n"
            "      sessions (sign in with an API key), at http://HOST:PORT/ of --api-listen.\n"
            "      On a fresh database it first creates customer '" DEFAULT_CUSTOMER "', its zone\n"
            "      '" DEFAULT_ZONE "' and an API key, and prints them once on stdout.\n"
            "      SIGTERM or SIGINT drains it: no new sessions (GET /ready says so; new CDP clients get\n"
            "      503), the running ones go on for --drain-timeout, then the rest end as worker_disconnect,\n"
            "      the records are saved and it exits 0. A second SIGTERM or SIGINT ends them at once.\n"
            "      SIGHUP opens the log file again (after it was rotated).\n"
            "        --api-listen HOST:PORT   REST API and dashboard (default " DEFAULT_API_LISTEN ")\n"
            "        --cdp-listen HOST:PORT   CDP endpoint (default " DEFAULT_CDP_LISTEN "; 'off' disables it)\n"
            "        --chromium PATH          browser binary (default /usr/bin/chromium)\n"
            "        --browser-user USER      when browserd runs as root: start its browsers as USER, so that\n"
            "                                 Chromium keeps its sandbox (default: none; as root without it\n"
            "                                 they run with --no-sandbox, and browserd warns)\n"
            "        --pool N                 browsers kept launched and waiting, at the least (default 2)\n"
            "        --pool-max N             the most kept waiting when sessions come faster than the pool\n"
            "                                 refills (default 8, at most --max-sessions; = --pool: fixed)\n"
            "        --max-sessions N         concurrent sessions; more clients wait (default 10)\n"
            "        --max-queue N            clients that may wait; more get 503 at once (default 100)\n"
            "        --queue-timeout SEC      longest wait for a browser, then 503 (default 30)\n"
            "        --session-timeout SEC    longest session (default 3600)\n"
            "        --idle-timeout SEC       longest time without CDP traffic (default 300)\n"
            "        --upstream-proxy URL     send browser traffic through http://[user:pass@]host:port\n"
            "                                 (zones can have their own: browserd zone set-proxy)\n"
            "        --allow-private CIDR     let browsers reach this private/loopback range (repeatable;\n"
            "                                 by default private, loopback and link-local addresses are refused)\n"
            "        --node-id ID             this node's name in a cluster (default: the host name); nodes on\n"
            "                                 one machine need one each\n"
            "        --lease-timeout SEC      a node silent this long is dead: its sessions fail (default 30)\n"
            "        --spool PATH             where session records wait while the database is away\n"
            "                                 (default DB.spool for a file, ./browserd-NODE.spool for PostgreSQL)\n"
            "        --drain-timeout SEC      how long sessions may go on after SIGTERM (default 60; 0: none)\n"
            "        --log-format text|json   one line per event: logfmt key=value pairs, or a JSON object\n"
            "                                 (default text)\n"
            "        --log-level LEVEL        debug, info, warn or error: the least level written (default info;\n"
            "                                 info has a line per session end and per HTTP request)\n"
            "        --log-file PATH          append the log to this file, not stderr (reopened on SIGHUP)\n"
            "        --metrics-listen WHERE   GET /metrics (Prometheus): 'api' on the API listener (default),\n"
            "                                 HOST:PORT on a listener of its own, or 'off'\n"
            "        --auth-fail-limit N      failed authentications (API key or zone password) a source\n"
            "                                 address may have at once; over it every attempt gets 429 with\n"
            "                                 Retry-After (default 30; 0: no limit)\n"
            "        --auth-fail-refill SEC   after how long one of them is forgiven (default 1)\n"
            "        --metrics-token TOKEN    require 'Authorization: Bearer TOKEN' on /metrics (better given\n"
            "                                 as BROWSERD_METRICS_TOKEN: arguments are visible to every user)\n"
            "        --webhook-connect-timeout SEC, --webhook-timeout SEC\n"
            "                                 a webhook receiver's time to accept the connection (default 5)\n"
            "                                 and to answer (default 10); --allow-private also covers receivers\n"
            "        --webhook-retry-base-ms MS  the first retry's delay after a failed delivery (default 10000;\n"
            "                                 doubling, with jitter, up to 1 h; retried for 24 h)\n"
            "        --webhook-ca-file PATH   verify https:// receivers with these CA certificates (PEM)\n"
            "        --live-view on|off       Page.inspect's live view of a session's page (default on)\n"
            "        --webdriver-listen HOST:PORT  WebDriver endpoint for Selenium (default the CDP host, port\n"
            "                                 9515; when that default is taken browserd warns and runs without;\n"
            "                                 'off' disables it). Needs chromedriver and network namespaces\n"
            "        --webdriver-driver PATH  chromedriver (default " WEBDRIVER_DEFAULT_DRIVER ")\n"
            "%s%s%s%s"
            "\n"
            "Options:\n"
            "  --db PATH|URI    SQLite database file (default " DEFAULT_DB "; created if absent), or a\n"
            "                   PostgreSQL database: postgresql://[USER@]HOST[:PORT]/DBNAME[?PARAMS] (every\n"
            "                   libpq URI form; the database must exist, its tables are created; give\n"
            "                   the password through PGPASSWORD or ~/.pgpass rather than in the URI;\n"
            "                   nodes that share one database form a cluster)\n"
            "  -h, --help       show this help\n"
            "  --version        show the version\n"
            "\n"
            "Environment (each the twin of an option; the option wins):\n"
            "  BROWSERD_DB          --db\n"
            "  BROWSERD_API_LISTEN  --api-listen\n"
            "  BROWSERD_CDP_LISTEN  --cdp-listen\n"
            "  BROWSERD_WEBDRIVER_LISTEN, BROWSERD_WEBDRIVER_DRIVER  --webdriver-listen, --webdriver-driver\n"
            "  BROWSERD_CHROMIUM    --chromium\n"
            "  BROWSERD_BROWSER_USER  --browser-user\n"
            "  BROWSERD_POOL        --pool\n"
            "  BROWSERD_POOL_MAX    --pool-max\n"
            "  BROWSERD_MAX_SESSIONS, BROWSERD_MAX_QUEUE, BROWSERD_QUEUE_TIMEOUT, BROWSERD_SESSION_TIMEOUT, BROWSERD_IDLE_TIMEOUT\n"
            "  BROWSERD_UPSTREAM_PROXY  --upstream-proxy\n"
            "  BROWSERD_ALLOW_PRIVATE   --allow-private (comma-separated)\n"
            "  BROWSERD_NODE_ID, BROWSERD_LEASE_TIMEOUT, BROWSERD_SPOOL, BROWSERD_DRAIN_TIMEOUT\n"
            "  BROWSERD_LOG_FORMAT, BROWSERD_LOG_LEVEL, BROWSERD_LOG_FILE\n"
            "  BROWSERD_METRICS_LISTEN, BROWSERD_METRICS_TOKEN, BROWSERD_LIVE_VIEW\n"
            "  BROWSERD_WEBHOOK_CONNECT_TIMEOUT, BROWSERD_WEBHOOK_TIMEOUT, BROWSERD_WEBHOOK_RETRY_BASE_MS,\n"
            "  BROWSERD_WEBHOOK_CA_FILE, BROWSERD_AUTH_FAIL_LIMIT, BROWSERD_AUTH_FAIL_REFILL\n"
            "  UV_THREADPOOL_SIZE   worker threads for database work (default 4)\n"
            "\n"
            "Exit status: 0 ok, 1 failure, 2 usage error.\n",
            captcha_usage(), cli_admin_usage(), cli_webhook_usage(), cli_db_copy_usage());
}

typedef struct {
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t drain_timer, housekeeping;
    http_server_t *api_server;
    http_server_t *metrics_server; /* --metrics-listen HOST:PORT */
    node_metrics_t *metrics;
    gateway_t *gateway;
    webdriver_t *webdriver;
    cluster_t *cluster;
    uint64_t drain_ms;
    int running; /* parts still stopping */
    bool draining;
    bool stopping;
    bool handles_open; /* the signals and timers above */
} daemon_t;

static void on_late_signal(int signum) { (void)signum; }

static void close_handles(daemon_t *d) {
    if (!d->handles_open) return;
    d->handles_open = false;
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    /* Closing them gives SIGINT and SIGTERM back their default action, which would turn a
     * clean exit into death by signal when one more arrives while the store and the threads
     * are let go (a second Ctrl-C, a supervisor that repeats itself): the sessions are saved
     * already, so from here on such a signal changes nothing. A handler, unlike SIG_IGN, is
     * not inherited by a process started later. */
    struct sigaction late = {.sa_handler = on_late_signal};
    sigemptyset(&late.sa_mask);
    sigaction(SIGINT, &late, NULL);
    sigaction(SIGTERM, &late, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->drain_timer, NULL);
    uv_close((uv_handle_t *)&d->housekeeping, NULL);
}

static void on_cluster_stopped(void *arg) { close_handles(arg); }

static void open_handles(daemon_t *d, uv_loop_t *loop) {
    uv_signal_init(loop, &d->sigint);
    uv_signal_init(loop, &d->sigterm);
    uv_signal_init(loop, &d->sighup);
    uv_timer_init(loop, &d->drain_timer);
    uv_timer_init(loop, &d->housekeeping);
    d->sigint.data = d->sigterm.data = d->sighup.data = d;
    d->drain_timer.data = d->housekeeping.data = d;
    d->handles_open = true;
}

/* The node stops last: the sessions' final records go through the store (and the spool)
 * before the node gives its lease up. */
static void stop_cluster(void *arg) {
    daemon_t *d = arg;
    if (d->cluster) cluster_stop(d->cluster, on_cluster_stopped, d);
    else on_cluster_stopped(d);
}

/* Then the metrics (scrapes answered while the listeners stopped are done by now). */
static void on_part_stopped(void *arg) {
    daemon_t *d = arg;
    if (--d->running > 0) return;
    if (d->metrics) node_metrics_stop(d->metrics, stop_cluster, d);
    else stop_cluster(d);
}

static void stop_now(daemon_t *d, const char *why) {
    if (d->stopping) return;
    d->stopping = true;
    uv_timer_stop(&d->drain_timer);
    log_event(LOG_INFO, "daemon", "stopping", "reason=%s", why);
    /* Sessions end first (their records are saved through the store, which stays open). */
    d->running = 1 + (d->gateway ? 1 : 0) + (d->metrics_server ? 1 : 0) + (d->webdriver ? 1 : 0);
    if (d->webdriver) webdriver_stop(d->webdriver, on_part_stopped, d);
    if (d->gateway) gateway_stop(d->gateway, on_part_stopped, d);
    if (d->metrics_server) http_server_stop(d->metrics_server, on_part_stopped, d);
    http_server_stop(d->api_server, on_part_stopped, d);
}

static void on_drained(void *arg) { stop_now(arg, "drained"); }

static void on_drain_timeout(uv_timer_t *t) { stop_now(t->data, "drain_timeout"); }

static void on_signal(uv_signal_t *h, int signum) {
    daemon_t *d = h->data;
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (d->stopping) return;
    if (d->draining || !d->gateway || d->drain_ms == 0) { /* the second one: at once */
        bool second = d->draining;
        log_event(LOG_INFO, "daemon", "signal", "signal=%s", name);
        if (!second) service_notify_stopping(signum == SIGINT ? "stopping (SIGINT)" : "stopping (SIGTERM)");
        stop_now(d, second ? "second_signal" : "signal");
        return;
    }
    d->draining = true;
    gateway_status_t st;
    gateway_status(d->gateway, &st);
    log_event(LOG_INFO, "daemon", "draining", "signal=%s running=%u queued=%u drain_timeout_ms=%llu", name,
              st.running, st.queued, (unsigned long long)d->drain_ms);
    service_notify_stopping(signum == SIGINT ? "stopping (SIGINT)" : "stopping (SIGTERM)");
    uv_timer_start(&d->drain_timer, on_drain_timeout, d->drain_ms, 0);
    gateway_drain(d->gateway, on_drained, d); /* may call on_drained at once */
}

static void on_sighup(uv_signal_t *h, int signum) {
    (void)h;
    (void)signum;
    char err[300];
    if (log_reopen(err, sizeof err) < 0) log_event(LOG_ERROR, "daemon", "log_reopen_failed", "error=\"%s\"", err);
    else log_event(LOG_INFO, "daemon", "log_reopened", "%s", "");
}

static void on_housekeeping(uv_timer_t *t) {
    (void)t;
    log_flush_repeats(false);
}

/* api_status_fn: the node as /ready and /pressure see it. */
static void node_status(void *ctx, api_node_status_t *out) {
    daemon_t *d = ctx;
    out->cdp_on = d->gateway != NULL;
    if (d->gateway) {
        gateway_status_t st;
        gateway_status(d->gateway, &st);
        out->running = st.running;
        out->queued = st.queued;
        out->max_sessions = st.max_sessions;
        out->max_queue = st.max_queue;
        out->draining = st.draining;
        out->pool_warm = st.pool_ready;
        out->pool_target = st.pool_target;
        out->pool_misses = st.pool_misses;
    }
    out->draining = out->draining || d->draining || d->stopping;
    out->store_up = d->cluster ? cluster_store_up(d->cluster) : true;
    out->cpu = system_load_cpu();
    out->memory = system_load_memory();
}

/* On a fresh database: the default customer, zone and key, printed once. */
static int bootstrap(store_t *store) {
    int64_t customers = 0;
    int rc = store_customer_count(store, &customers);
    if (rc < 0 || customers > 0) return rc;
    char err[256] = "", key[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1], pw[STORE_PASSWORD_LEN + 1];
    rc = store_customer_add(store, DEFAULT_CUSTOMER, err, sizeof err);
    if (rc == -EEXIST) return 0; /* another node, starting at the same time on the same database, made it */
    if (rc < 0 ||
        (rc = store_zone_add(store, DEFAULT_CUSTOMER, DEFAULT_ZONE, pw, err, sizeof err)) < 0 ||
        (rc = store_key_add(store, DEFAULT_CUSTOMER, key, key_id, err, sizeof err)) < 0) {
        fprintf(stderr, "browserd: cannot create the default customer: %s\n", err);
        return rc;
    }
    fprintf(stderr, "browserd: new database: created customer '%s', zone '%s' and an API key "
                    "(shown once; store them now)\n", DEFAULT_CUSTOMER, DEFAULT_ZONE);
    printf("customer_id=%s\napi_key=%s\nzone=%s\nzone_password=%s\n", DEFAULT_CUSTOMER, key, DEFAULT_ZONE, pw);
    fflush(stdout);
    return 0;
}

/* A session of this process ends in the gateway (cluster_end_local_fn). */
static int end_gateway_session(void *gateway, const char *customer_id, const uint8_t id[16]) {
    return gateway ? gateway_kill_session(gateway, customer_id, id) : -ENOENT;
}

/* The API's DELETE ends a session wherever it runs (api_end_session_fn). */
static void end_session_anywhere(void *cluster, const char *customer_id, const uint8_t id[16], api_end_done_fn done,
                                 void *done_arg) {
    cluster_end_session(cluster, customer_id, id, done, done_arg);
}

static int serve(const char *db, int argc, char **argv) {
    const char *listen = serve_env_or("BROWSERD_API_LISTEN", DEFAULT_API_LISTEN);
    const char *cdp_listen = serve_env_or("BROWSERD_CDP_LISTEN", DEFAULT_CDP_LISTEN);
    const char *chromium = serve_env_or("BROWSERD_CHROMIUM", NULL);
    const char *pool = serve_env_or("BROWSERD_POOL", NULL), *max_sessions = serve_env_or("BROWSERD_MAX_SESSIONS", NULL);
    const char *pool_max = serve_env_or("BROWSERD_POOL_MAX", NULL);
    const char *queue_timeout = serve_env_or("BROWSERD_QUEUE_TIMEOUT", NULL);
    const char *session_timeout = serve_env_or("BROWSERD_SESSION_TIMEOUT", NULL);
    const char *idle_timeout = serve_env_or("BROWSERD_IDLE_TIMEOUT", NULL);
    const char *upstream = serve_env_or("BROWSERD_UPSTREAM_PROXY", NULL);
    const char *node_id = serve_env_or("BROWSERD_NODE_ID", NULL), *lease = serve_env_or("BROWSERD_LEASE_TIMEOUT", NULL);
    const char *spool_path = serve_env_or("BROWSERD_SPOOL", NULL);
    const char *drain = serve_env_or("BROWSERD_DRAIN_TIMEOUT", NULL), *max_queue = serve_env_or("BROWSERD_MAX_QUEUE", NULL);
    const char *log_format_s = serve_env_or("BROWSERD_LOG_FORMAT", "text"), *log_level_s = serve_env_or("BROWSERD_LOG_LEVEL", "info");
    const char *log_file = serve_env_or("BROWSERD_LOG_FILE", NULL);
    const char *metrics_listen = serve_env_or("BROWSERD_METRICS_LISTEN", "api");
    const char *metrics_token = serve_env_or("BROWSERD_METRICS_TOKEN", NULL);
    const char *wh_connect = serve_env_or("BROWSERD_WEBHOOK_CONNECT_TIMEOUT", NULL);
    const char *wh_timeout = serve_env_or("BROWSERD_WEBHOOK_TIMEOUT", NULL);
    const char *wh_retry = serve_env_or("BROWSERD_WEBHOOK_RETRY_BASE_MS", NULL);
    const char *wh_ca = serve_env_or("BROWSERD_WEBHOOK_CA_FILE", NULL);
    const char *auth_fail_limit = serve_env_or("BROWSERD_AUTH_FAIL_LIMIT", NULL);
    const char *auth_fail_refill = serve_env_or("BROWSERD_AUTH_FAIL_REFILL", NULL);
    const char *browser_user_s = serve_env_or("BROWSERD_BROWSER_USER", NULL), *live_view = serve_env_or("BROWSERD_LIVE_VIEW", "on");
    const char *wd_listen = serve_env_or("BROWSERD_WEBDRIVER_LISTEN", NULL), *wd_driver = serve_env_or("BROWSERD_WEBDRIVER_DRIVER", NULL);
    const char *csolver = serve_env_or("BROWSERD_CAPTCHA_SOLVER", NULL), *ctimeout = serve_env_or("BROWSERD_CAPTCHA_TIMEOUT", NULL), *cdetect = serve_env_or("BROWSERD_CAPTCHA_DETECT", NULL);
    /* --allow-private repeats; the environment twin is a comma-separated list */
    enum { MAX_ALLOW = 64 };
    const char *allow[MAX_ALLOW];
    size_t nallow = 0;
    char allow_env[1024] = "";
    const char *ae = serve_env_or("BROWSERD_ALLOW_PRIVATE", NULL);
    if (ae) {
        snprintf(allow_env, sizeof allow_env, "%s", ae);
        for (char *save = NULL, *tok = strtok_r(allow_env, ",", &save); tok && nallow < MAX_ALLOW;
             tok = strtok_r(NULL, ",", &save))
            allow[nallow++] = tok;
    }
    struct {
        const char *name;
        const char **value;
    } options[] = {
        {"--api-listen", &listen},         {"--cdp-listen", &cdp_listen},           {"--chromium", &chromium},
        {"--pool", &pool},                 {"--max-sessions", &max_sessions},       {"--queue-timeout", &queue_timeout},
        {"--session-timeout", &session_timeout}, {"--idle-timeout", &idle_timeout},
        {"--upstream-proxy", &upstream},   {"--node-id", &node_id},                 {"--lease-timeout", &lease},
        {"--spool", &spool_path},          {"--drain-timeout", &drain},             {"--log-format", &log_format_s},
        {"--log-level", &log_level_s},     {"--log-file", &log_file},               {"--max-queue", &max_queue},
        {"--metrics-listen", &metrics_listen}, {"--metrics-token", &metrics_token}, {"--pool-max", &pool_max},
        {"--webhook-connect-timeout", &wh_connect}, {"--webhook-timeout", &wh_timeout},
        {"--webhook-retry-base-ms", &wh_retry}, {"--webhook-ca-file", &wh_ca},
        {"--auth-fail-limit", &auth_fail_limit}, {"--auth-fail-refill", &auth_fail_refill},
        {"--browser-user", &browser_user_s}, {"--live-view", &live_view}, {"--captcha-solver", &csolver}, {"--captcha-timeout", &ctimeout}, {"--captcha-detect", &cdetect},
        {"--webdriver-listen", &wd_listen}, {"--webdriver-driver", &wd_driver},
    };
    for (int i = 1; i < argc; i++) {
        bool known = false;
        if (strcmp(argv[i], "--allow-private") == 0 && i + 1 < argc) {
            if (nallow == MAX_ALLOW) {
                fprintf(stderr, "browserd: serve: at most %d --allow-private ranges\n", MAX_ALLOW);
                return 2;
            }
            allow[nallow++] = argv[++i];
            continue;
        }
        for (size_t k = 0; k < sizeof options / sizeof *options && !known; k++) {
            size_t n = strlen(options[k].name);
            if (strcmp(argv[i], options[k].name) == 0 && i + 1 < argc) {
                *options[k].value = argv[++i];
                known = true;
            } else if (strncmp(argv[i], options[k].name, n) == 0 && argv[i][n] == '=') {
                *options[k].value = argv[i] + n + 1;
                known = true;
            }
        }
        if (!known) {
            fprintf(stderr, "browserd: serve: unknown or incomplete option '%s' (see browserd --help)\n", argv[i]);
            return 2;
        }
    }
    char host[256], cdp_host[256];
    int port, cdp_port = 0;
    if (serve_parse_listen(listen, host, sizeof host, &port) < 0) {
        fprintf(stderr, "browserd: --api-listen: expected HOST:PORT, got '%s'\n", listen);
        return 2;
    }
    char metrics_host[256];
    int metrics_port = 0;
    bool metrics_on = strcmp(metrics_listen, "off") != 0, metrics_own = metrics_on && strcmp(metrics_listen, "api") != 0;
    if (metrics_own && serve_parse_listen(metrics_listen, metrics_host, sizeof metrics_host, &metrics_port) < 0) {
        fprintf(stderr, "browserd: --metrics-listen: expected api, HOST:PORT or off, got '%s'\n", metrics_listen);
        return 2;
    }
    if (metrics_token && !metrics_on) {
        fprintf(stderr, "browserd: --metrics-token: metrics are off (--metrics-listen off)\n");
        return 2;
    }
    bool cdp_on = strcmp(cdp_listen, "off") != 0;
    if (cdp_on && serve_parse_listen(cdp_listen, cdp_host, sizeof cdp_host, &cdp_port) < 0) {
        fprintf(stderr, "browserd: --cdp-listen: expected HOST:PORT or off, got '%s'\n", cdp_listen);
        return 2;
    }
    char wd_host[256];
    int wd_port = 9515;
    bool wd_on = cdp_on && !(wd_listen && strcmp(wd_listen, "off") == 0);
    if (wd_listen && wd_on && serve_parse_listen(wd_listen, wd_host, sizeof wd_host, &wd_port) < 0)
        return fprintf(stderr, "browserd: --webdriver-listen: expected HOST:PORT or off, got '%s'\n", wd_listen), 2;
    if (wd_listen && strcmp(wd_listen, "off") != 0 && !cdp_on)
        return fprintf(stderr, "browserd: --webdriver-listen: WebDriver sessions go through the CDP gateway (--cdp-listen is off)\n"), 2;
    if (!wd_listen) snprintf(wd_host, sizeof wd_host, "%s", cdp_host);
    gateway_config_t gcfg;
    gateway_config_defaults(&gcfg);
    uint64_t lease_ms = DEFAULT_LEASE_MS;
    gcfg.chromium_path = chromium;
    browser_user_t browser_user;
    if (browser_user_s && *browser_user_s) {
        char uerr[256];
        if (browser_user_resolve(browser_user_s, &browser_user, uerr, sizeof uerr) < 0) {
            fprintf(stderr, "browserd: %s\n", uerr);
            return 2;
        }
        gcfg.browser_run_as = true;
        gcfg.browser_uid = browser_user.uid;
        gcfg.browser_gid = browser_user.gid;
    }
    if ((pool && serve_parse_count(pool, 0, 64, &gcfg.pool_size) < 0) || (pool_max && serve_parse_count(pool_max, 0, 64, &gcfg.pool_max) < 0) ||
        (max_sessions && serve_parse_count(max_sessions, 1, 100000, &gcfg.max_sessions) < 0) ||
        (max_queue && serve_parse_count(max_queue, 1, 100000, &gcfg.max_queue) < 0) ||
        (queue_timeout && serve_parse_seconds(queue_timeout, &gcfg.queue_timeout_ms) < 0) ||
        (session_timeout && serve_parse_seconds(session_timeout, &gcfg.session_timeout_ms) < 0) ||
        (idle_timeout && serve_parse_seconds(idle_timeout, &gcfg.idle_timeout_ms) < 0) ||
        (lease && serve_parse_seconds(lease, &lease_ms) < 0)) {
        fprintf(stderr, "browserd: serve: --pool and --pool-max take 0..64, --max-sessions and --max-queue 1..100000, timeouts a number of "
                        "seconds > 0\n");
        return 2;
    }
    unsigned auth_burst = FAILURE_LIMIT_DEFAULT_BURST;
    uint64_t auth_refill_ms = FAILURE_LIMIT_DEFAULT_REFILL_MS;
    if ((auth_fail_limit && serve_parse_count(auth_fail_limit, 0, 1000000, &auth_burst) < 0) ||
        (auth_fail_refill && serve_parse_seconds(auth_fail_refill, &auth_refill_ms) < 0)) {
        fprintf(stderr, "browserd: --auth-fail-limit takes a count 0..1000000, --auth-fail-refill a number of seconds > 0\n");
        return 2;
    }
    if (!pool_max) gcfg.pool_max = DEFAULT_POOL_MAX;
    if (gcfg.pool_max > gcfg.max_sessions) gcfg.pool_max = gcfg.max_sessions;
    if (pool_max && gcfg.pool_max < gcfg.pool_size) {
        fprintf(stderr, "browserd: --pool-max %u is below --pool %u\n", gcfg.pool_max, gcfg.pool_size);
        return 2;
    }
    gcfg.memory_in_use = system_load_memory;
    gcfg.live_view = strcmp(live_view, "on") == 0;
    if (!gcfg.live_view && strcmp(live_view, "off") != 0)
        return fprintf(stderr, "browserd: --live-view: expected on or off, got '%s'\n", live_view), 2;
    uint64_t drain_ms = DEFAULT_DRAIN_MS;
    if (drain && strcmp(drain, "0") == 0) drain_ms = 0;
    else if (drain && serve_parse_seconds(drain, &drain_ms) < 0) {
        fprintf(stderr, "browserd: --drain-timeout: expected a number of seconds >= 0, got '%s'\n", drain);
        return 2;
    }
    log_format_t log_format;
    log_level_t log_level;
    if (log_parse_format(log_format_s, &log_format) < 0) {
        fprintf(stderr, "browserd: --log-format: expected text or json, got '%s'\n", log_format_s);
        return 2;
    }
    if (log_parse_level(log_level_s, &log_level) < 0) {
        fprintf(stderr, "browserd: --log-level: expected debug, info, warn or error, got '%s'\n", log_level_s);
        return 2;
    }
    if (log_file && !*log_file) log_file = NULL;
    char perr[256];
    for (size_t k = 0; k < nallow; k++) {
        proxy_cidr_t cidr;
        if (proxy_guard_parse_cidr(allow[k], &cidr, perr, sizeof perr) < 0) {
            fprintf(stderr, "browserd: --allow-private %s: %s\n", allow[k], perr);
            return 2;
        }
    }
    proxy_upstream_t up;
    if (upstream && proxy_upstream_parse(upstream, &up, perr, sizeof perr) < 0) {
        fprintf(stderr, "browserd: --upstream-proxy: %s (expected http://[user:pass@]host:port)\n", perr);
        return 2;
    }
    gcfg.allow_private = allow;
    gcfg.allow_private_count = nallow;
    webhook_dispatch_config_t wcfg = {0};
    unsigned retry_base_ms = 0;
    uint64_t wh_connect_ms = 0, wh_timeout_ms = 0;
    if ((wh_connect && serve_parse_seconds(wh_connect, &wh_connect_ms) < 0) ||
        (wh_timeout && serve_parse_seconds(wh_timeout, &wh_timeout_ms) < 0) ||
        (wh_retry && serve_parse_count(wh_retry, 1, 3600000, &retry_base_ms) < 0)) {
        fprintf(stderr, "browserd: serve: the webhook timeouts take a number of seconds > 0, "
                        "--webhook-retry-base-ms 1..3600000\n");
        return 2;
    }
    wcfg.connect_timeout_ms = (int64_t)wh_connect_ms;
    wcfg.response_timeout_ms = (int64_t)wh_timeout_ms;
    wcfg.backoff.base_ms = retry_base_ms;
    wcfg.tls_ca_file = wh_ca && *wh_ca ? wh_ca : NULL;
    if (webhook_url_guard(allow, nallow, &wcfg.guard, perr, sizeof perr) < 0) {
        fprintf(stderr, "browserd: %s\n", perr);
        return 2;
    }
    gcfg.upstream_proxy = upstream;
    if (captcha_config_parse(&gcfg.captcha, csolver, ctimeout, cdetect, getenv("BROWSERD_CAPTCHA_SOLVER_KEY"), perr, sizeof perr) < 0) return fprintf(stderr, "browserd: %s\n", perr), 2;
    if (chromium && access(chromium, X_OK) != 0) {
        fprintf(stderr, "browserd: --chromium: %s is not an executable file\n", chromium);
        return 2;
    }

    /* Large CDP messages grow their buffers by realloc: with a fixed mmap threshold they stay
     * mmap'ed and grow by mremap instead of copying (glibc's threshold otherwise rises after the
     * first big free; measured 20-45% less CPU per 20 MiB message). Few arenas: the worker
     * threads' own arenas were most of the memory per session. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_ARENA_MAX, 2);

    int exit_code = 1;
    store_t *store = NULL;
    catalog_t *catalog = NULL;
    store_spool_t *spool = NULL;
    api_t *api = NULL;
    webhook_dispatch_t *webhooks = NULL;
    failure_limit_t *auth_limit = NULL;
    char err[512] = "";
    uv_loop_t *loop = uv_default_loop();
    daemon_t d = {.drain_ms = drain_ms};
    if (log_setup(log_format, log_level, log_file, err, sizeof err) < 0) {
        fprintf(stderr, "browserd: --log-file: %s\n", err);
        return 2;
    }

    char db_shown[512];
    store_uri_redact(db, db_shown, sizeof db_shown); /* the only form of db that is printed */
    if (store_open(db, &store, err, sizeof err) < 0) {
        fprintf(stderr, "browserd: cannot open database %s: %s\n", db_shown, err);
        goto cleanup;
    }
    if (bootstrap(store) < 0) goto cleanup;
    char spool_default[600];
    if (!spool_path) {
        serve_default_spool_path(db, node_id, spool_default, sizeof spool_default);
        spool_path = spool_default;
    }
    if (store_spool_open(spool_path, &spool, err, sizeof err) < 0) {
        fprintf(stderr, "browserd: %s\n", err);
        goto cleanup;
    }
    catalog = catalog_new();
    if (!catalog) goto cleanup;
    catalog_sync_follow_spool(catalog, spool);
    cluster_config_t ccfg = {.loop = loop, .store = store, .catalog = catalog, .spool = spool, .node_id = node_id,
                             .lease_ms = (int64_t)lease_ms};
    if (cluster_start(&ccfg, &d.cluster, err, sizeof err) < 0) {
        fprintf(stderr, "browserd: cannot join as node %s: %s\n", node_id ? node_id : "(host name)", err);
        goto cleanup;
    }
    wcfg.store = store;
    wcfg.claimer = cluster_node_id(d.cluster);
    if (webhook_dispatch_start(&wcfg, &webhooks, err, sizeof err) < 0) {
        fprintf(stderr, "browserd: %s\n", err);
        goto cleanup;
    }
    char temp_root[512];
    uid_t browsers_uid = gcfg.browser_run_as ? gcfg.browser_uid : geteuid();
    if (cdp_on && browser_temp_root_for(temp_root, sizeof temp_root, browsers_uid) == 0) {
        char uerr[600];
        if (gcfg.browser_run_as && browser_user_prepare_root(&browser_user, temp_root, uerr, sizeof uerr) < 0) {
            fprintf(stderr, "browserd: %s\n", uerr);
            goto cleanup;
        }
        int removed = browser_profile_cleanup_stale_of(temp_root, browsers_uid);
        if (removed > 0) log_event(LOG_INFO, "daemon", "stale_profiles_removed", "count=%d", removed);
    }
    /* The first load happens before the loop runs, so it may block. */
    int64_t t0 = time_now_ms();
    int rc = catalog_sync(catalog, store);
    if (rc < 0) {
        fprintf(stderr, "browserd: cannot load sessions: %s\n", strerror(-rc));
        goto cleanup;
    }
    log_event(LOG_INFO, "daemon", "catalog_loaded", "sessions=%zu ms=%lld", catalog_size(catalog),
            (long long)(time_now_ms() - t0));

    if (auth_burst && !(auth_limit = failure_limit_new(auth_burst, 1000.0 / (double)(auth_refill_ms ? auth_refill_ms : 1)))) goto cleanup;
    gcfg.auth_limit = auth_limit;
    if (cdp_on && gcfg.browser_run_as)
        log_event(LOG_INFO, "daemon", "browser_user", "user=%s uid=%u gid=%u sandbox=on", browser_user.name,
                  (unsigned)browser_user.uid, (unsigned)browser_user.gid);
    else if (cdp_on && geteuid() == 0)
        log_event(LOG_WARN, "daemon", "no_sandbox",
                  "detail=\"browserd runs as root: its browsers run WITHOUT Chromium's sandbox (--no-sandbox), so a "
                  "page that exploits Chromium owns the machine; give them a user of their own (--browser-user) "
                  "or run browserd as its own user (docs/install.md)\"");
    if (cdp_on) {
        gcfg.loop = loop;
        gcfg.store = store;
        gcfg.catalog = catalog;
        gcfg.host = cdp_host;
        gcfg.worker_id = cluster_node_id(d.cluster);
        gcfg.spool = spool;
        gcfg.port = cdp_port;
        rc = gateway_start(&gcfg, &d.gateway);
        if (rc < 0) {
            fprintf(stderr, "browserd: cannot listen on %s: %s\n", cdp_listen, uv_strerror(rc));
            goto cleanup;
        }
    }
    if (wd_on) {
        webdriver_config_t wcfg = {.loop = loop, .gateway = d.gateway, .host = wd_host, .port = wd_port, .driver_path = wd_driver,
                                   .driver_run_as = gcfg.browser_run_as, .driver_uid = gcfg.browser_uid, .driver_gid = gcfg.browser_gid};
        rc = webdriver_start(&wcfg, &d.webdriver);
        if (rc < 0 && !wd_listen && rc == UV_EADDRINUSE) /* the default address: no reason to refuse to start */
            log_event(LOG_WARN, "daemon", "webdriver_off", "detail=\"%s:%d is taken: no WebDriver endpoint (--webdriver-listen)\"", wd_host, wd_port);
        else if (rc < 0) {
            fprintf(stderr, "browserd: cannot listen on %s:%d (WebDriver): %s\n", wd_host, wd_port, uv_strerror(rc));
            goto cleanup;
        }
    }
    cluster_set_end_local(d.cluster, end_gateway_session, d.gateway);
    if (metrics_on) {
        node_metrics_config_t mcfg = {.loop = loop, .token = metrics_token, .version = BROWSERD_VERSION,
                                      .gateway = d.gateway, .store = store, .spool = spool, .catalog = catalog,
                                      .status = node_status, .status_ctx = &d, .webhooks = webhooks};
        if (node_metrics_new(&mcfg, &d.metrics) < 0) goto cleanup;
    }
    api_config_t acfg = {.loop = loop, .store = store, .catalog = catalog, .end_session = end_session_anywhere,
                         .end_session_ctx = d.cluster, .status = node_status, .status_ctx = &d,
                         .metrics = metrics_on && !metrics_own ? node_metrics_handle : NULL, .metrics_ctx = d.metrics,
                         .auth_limit = auth_limit, .live_url = gateway_live_url, .live_url_ctx = d.gateway};
    if (api_new(&acfg, &api) < 0) goto cleanup;
    http_server_config_t hcfg;
    http_server_config_defaults(&hcfg);
    hcfg.host = host;
    hcfg.port = port;
    hcfg.name = "api";
    hcfg.on_answered = api_observe;
    hcfg.on_answered_ctx = api;
    rc = http_server_start(loop, &hcfg, api_handle, api, &d.api_server);
    if (rc < 0) {
        fprintf(stderr, "browserd: cannot listen on %s: %s\n", listen, uv_strerror(rc));
        goto cleanup;
    }
    if (metrics_own) {
        hcfg.host = metrics_host;
        hcfg.port = metrics_port;
        hcfg.name = "metrics";
        rc = http_server_start(loop, &hcfg, node_metrics_handle, d.metrics, &d.metrics_server);
        if (rc < 0) {
            fprintf(stderr, "browserd: cannot listen on %s: %s\n", metrics_listen, uv_strerror(rc));
            goto cleanup;
        }
    }
    if (d.metrics) node_metrics_attach(d.metrics, api, d.api_server, d.metrics_server);
    open_handles(&d, loop);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sighup, on_sighup, SIGHUP);
    uv_timer_start(&d.housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
    uv_unref((uv_handle_t *)&d.housekeeping);
    log_event(LOG_INFO, "daemon", "listening", "api=http://%s%s%s:%d db=%s", strchr(host, ':') ? "[" : "", host,
            strchr(host, ':') ? "]" : "", http_server_port(d.api_server), db_shown);
    if (d.gateway)
        log_event(LOG_INFO, "daemon", "listening", "cdp=ws://%s:%d pool=%u max_sessions=%u", cdp_host, gateway_port(d.gateway),
                gcfg.pool_size, gcfg.max_sessions);
    if (d.webdriver) log_event(LOG_INFO, "daemon", "listening", "webdriver=http://%s:%d", wd_host, webdriver_port(d.webdriver));
    if (d.metrics_server)
        log_event(LOG_INFO, "daemon", "listening", "metrics=http://%s%s%s:%d/metrics", strchr(metrics_host, ':') ? "[" : "",
                  metrics_host, strchr(metrics_host, ':') ? "]" : "", http_server_port(d.metrics_server));
    char ready[600];
    snprintf(ready, sizeof ready, "listening: api %s, cdp %s", listen, d.gateway ? cdp_listen : "off");
    if (service_notify_ready(loop, ready) < 0) log_event(LOG_WARN, "daemon", "notify_failed", "what=READY");
    uv_run(loop, UV_RUN_DEFAULT);
    log_flush_repeats(true);
    log_event(LOG_INFO, "daemon", "stopped", "%s", "");
    exit_code = 0;

cleanup:
    if (!d.stopping && (d.gateway || d.cluster)) { /* started, but what came after could not: stop again */
        d.running = 1 + (d.gateway ? 1 : 0) + (d.api_server ? 1 : 0) + (d.webdriver ? 1 : 0);
        d.stopping = true;
        open_handles(&d, loop);
        if (d.webdriver) webdriver_stop(d.webdriver, on_part_stopped, &d);
        if (d.gateway) gateway_stop(d.gateway, on_part_stopped, &d);
        if (d.api_server) http_server_stop(d.api_server, on_part_stopped, &d);
        on_part_stopped(&d);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    webdriver_free(d.webdriver);
    gateway_free(d.gateway);
    node_metrics_free(d.metrics);
    webhook_dispatch_stop(webhooks); /* the loop is done: waiting for the thread blocks nothing */
    if (d.cluster) {
        cluster_release_lease(d.cluster); /* nothing of the node runs any more */
        cluster_free(d.cluster);
    }
    uv_loop_close(loop);
    api_free(api);
    catalog_free(catalog);
    store_spool_close(spool);
    if (store) store_close(store);
    failure_limit_free(auth_limit);
    return exit_code;
}

int main(int argc, char **argv) {
    /* Hidden mode: browserd re-executes itself as the supervisor of one Chromium (see
     * src/cdp/supervisor.h); not a user command, so it bypasses the option parsing below. */
    if (argc > 1 && strcmp(argv[1], BROWSER_SUPERVISOR_COMMAND) == 0) return supervisor_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], DRIVER_NETNS_COMMAND) == 0) return driver_netns_main(argc, argv); /* webdriver/driver_netns.h */
    signal(SIGPIPE, SIG_IGN); /* a client that goes away must not kill the daemon */
    const char *db = getenv("BROWSERD_DB");
    if (!db || !*db) db = DEFAULT_DB;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("browserd " BROWSERD_VERSION "\n");
            return 0;
        }
        if (strcmp(argv[i], "--db") == 0) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                fprintf(stderr, "browserd: --db needs a PATH\n");
                return 2;
            }
            db = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0 && argv[i][5]) {
            db = argv[i] + 5;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "browserd: unknown option '%s' (see browserd --help)\n", argv[i]);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (int k = i + 1; k < argc; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    if (strcmp(argv[i], "serve") == 0) return serve(db, argc - i, argv + i);
    return cli_admin_run(db, argc - i, argv + i);
}
