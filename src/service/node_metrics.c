#include "service/node_metrics.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdp/gateway_metrics.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "service/process_stats.h"

#define DEFAULT_SAMPLE_MS 10000
/* A walk that took t is repeated no sooner than this many t later: at most ~5 % of a core. */
#define SAMPLE_COST_FACTOR 20

struct node_metrics {
    node_metrics_config_t cfg;
    char *token;
    size_t token_len;
    const api_t *api;
    const http_server_t *api_server, *metrics_server;
    uv_timer_t sample_timer;
    uv_work_t sample_work;
    bool sample_running, stopping;
    /* the sample being taken (worker) and the last one taken (loop) */
    unsigned sampling_count;
    uint64_t sampling_bytes, sampling_took_ns;
    long sampling_fds;
    bool sampled;
    unsigned browser_processes;
    uint64_t browser_memory_bytes;
    long open_fds;
    double sample_age_base_ms; /* when the last sample was taken (time_now_ms) */
    uint64_t samples;
    int in_flight; /* scrapes on a worker thread */
    bool timer_closed;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
};

typedef struct {
    uv_work_t work;
    node_metrics_t *m;
    http_conn_t *conn;
    buf_t body;
    int rc;
} scrape_t;

static void maybe_stopped(node_metrics_t *m) {
    if (!m->stopping || m->sample_running || m->in_flight || !m->timer_closed || !m->on_stopped) return;
    void (*done)(void *) = m->on_stopped;
    m->on_stopped = NULL;
    done(m->stopped_arg);
}

/* ---------------------------------------------------------------- the browsers' memory ---- */

static void schedule_sample(node_metrics_t *m, uint64_t after_ms);

static void sample_work(uv_work_t *w) {
    node_metrics_t *m = w->data;
    uint64_t t0 = uv_hrtime();
    if (process_stats_descendants(getpid(), &m->sampling_count, &m->sampling_bytes) < 0) m->sampling_count = 0;
    m->sampling_fds = process_stats_open_fds();
    m->sampling_took_ns = uv_hrtime() - t0;
}

static void sample_done(uv_work_t *w, int status) {
    node_metrics_t *m = w->data;
    m->sample_running = false;
    if (status == 0) {
        m->sampled = true;
        m->samples++;
        m->browser_processes = m->sampling_count;
        m->browser_memory_bytes = m->sampling_bytes;
        m->open_fds = m->sampling_fds;
        m->sample_age_base_ms = (double)time_now_ms();
    }
    uint64_t next = m->cfg.sample_ms;
    uint64_t cost_ms = m->sampling_took_ns / 1000000u * SAMPLE_COST_FACTOR;
    if (cost_ms > next) next = cost_ms;
    if (!m->stopping) schedule_sample(m, next);
    maybe_stopped(m);
}

static void on_sample_timer(uv_timer_t *t) {
    node_metrics_t *m = t->data;
    if (m->sample_running || m->stopping) return;
    m->sample_work.data = m;
    if (uv_queue_work(m->cfg.loop, &m->sample_work, sample_work, sample_done) == 0) m->sample_running = true;
    else schedule_sample(m, m->cfg.sample_ms);
}

static void schedule_sample(node_metrics_t *m, uint64_t after_ms) {
    uv_timer_start(&m->sample_timer, on_sample_timer, after_ms, 0);
}

/* ---------------------------------------------------------------- life ---- */

int node_metrics_new(const node_metrics_config_t *cfg, node_metrics_t **out) {
    node_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    m->cfg = *cfg;
    if (!m->cfg.sample_ms) m->cfg.sample_ms = DEFAULT_SAMPLE_MS;
    if (cfg->token && *cfg->token) {
        m->token = strdup(cfg->token);
        if (!m->token) {
            free(m);
            return -ENOMEM;
        }
        m->token_len = strlen(m->token);
    }
    m->cfg.token = NULL;
    uv_timer_init(cfg->loop, &m->sample_timer);
    m->sample_timer.data = m;
    schedule_sample(m, 0); /* a first sample at once */
    uv_unref((uv_handle_t *)&m->sample_timer);
    *out = m;
    return 0;
}

void node_metrics_attach(node_metrics_t *m, const api_t *api, const http_server_t *api_server,
                         const http_server_t *metrics_server) {
    m->api = api;
    m->api_server = api_server;
    m->metrics_server = metrics_server;
}

static void on_timer_closed(uv_handle_t *h) {
    node_metrics_t *m = h->data;
    m->timer_closed = true;
    maybe_stopped(m);
}

void node_metrics_stop(node_metrics_t *m, void (*done)(void *arg), void *arg) {
    m->stopping = true;
    m->on_stopped = done;
    m->stopped_arg = arg;
    uv_close((uv_handle_t *)&m->sample_timer, on_timer_closed);
}

void node_metrics_free(node_metrics_t *m) {
    if (!m) return;
    if (m->token) {
        OPENSSL_cleanse(m->token, m->token_len);
        free(m->token);
    }
    free(m);
}

/* ---------------------------------------------------------------- the scrape ---- */

#define W(expr) \
    do { \
        if (rc == 0) rc = (expr); \
    } while (0)

/* The families kept on the loop thread. */
static int write_loop_part(node_metrics_t *m, buf_t *out) {
    int rc = 0;
    api_node_status_t st = {.store_up = true, .cpu = -1, .memory = -1};
    if (m->cfg.status) m->cfg.status(m->cfg.status_ctx, &st);
    char labels[96];
    snprintf(labels, sizeof labels, "version=\"%s\"", m->cfg.version ? m->cfg.version : "unknown");
    W(metrics_write_family(out, "browserd_build_info", "gauge", "Always 1; the version in a label"));
    W(metrics_write_sample(out, "browserd_build_info", labels, 1));
    W(metrics_write_one(out, "browserd_ready", "gauge", "1 when the node accepts new sessions (GET /ready is 200)",
                        api_health_not_ready_reason(&st) ? 0 : 1));
    W(metrics_write_one(out, "browserd_draining", "gauge", "1 once SIGTERM came (no new sessions)", st.draining));
    W(metrics_write_one(out, "browserd_store_up", "gauge", "1 when the node's last attempt at the database worked",
                        st.store_up));
    if (st.cpu >= 0)
        W(metrics_write_one(out, "browserd_machine_load_per_core", "gauge",
                            "The machine's 1-minute load average divided by its cores", st.cpu));
    if (st.memory >= 0)
        W(metrics_write_one(out, "browserd_machine_memory_used_ratio", "gauge", "The machine's memory in use (0..1)",
                            st.memory));
    if (m->cfg.gateway) W(gateway_metrics_write(m->cfg.gateway, out));
    if (m->api) W(api_metrics_write(m->api, out));
    W(metrics_write_family(out, "browserd_http_connections", "gauge", "Open HTTP connections, by listener"));
    const http_server_t *servers[2] = {m->api_server, m->metrics_server};
    const char *names[2] = {"server=\"api\"", "server=\"metrics\""};
    for (int i = 0; i < 2; i++) {
        if (!servers[i]) continue;
        http_server_stats_t hs;
        http_server_get_stats(servers[i], &hs);
        W(metrics_write_sample(out, "browserd_http_connections", names[i], (double)hs.connections));
    }
    if (m->sampled) {
        W(metrics_write_one(out, "browserd_browsers_memory_bytes", "gauge",
                            "Memory of every process under browserd (browsers, their helpers and supervisors): the "
                            "sum of their proportional set sizes, sampled off the loop",
                            (double)m->browser_memory_bytes));
        W(metrics_write_one(out, "browserd_browsers_processes", "gauge", "Processes under browserd, sampled with the "
                            "memory", m->browser_processes));
        if (m->open_fds >= 0)
            W(metrics_write_one(out, "process_open_fds", "gauge", "Open file descriptors of browserd (sampled with the "
                                "browsers' memory)", (double)m->open_fds));
        W(metrics_write_one(out, "browserd_browsers_memory_sample_age_seconds", "gauge",
                            "How old the sample of the browsers' memory and of the open descriptors is",
                            ((double)time_now_ms() - m->sample_age_base_ms) / 1000.0));
    }
    return rc;
}

/* The families read off the loop (locks, /proc). */
static void scrape_work(uv_work_t *w) {
    scrape_t *sc = w->data;
    node_metrics_t *m = sc->m;
    buf_t *out = &sc->body;
    int rc = sc->rc;
    W(metrics_write_one(out, "browserd_catalog_sessions", "gauge", "Sessions in the in-memory catalog (every node's)",
                        (double)catalog_size(m->cfg.catalog)));
    W(metrics_write_one(out, "browserd_spool_records", "gauge",
                        "Session records waiting in the local spool for the database",
                        m->cfg.spool ? (double)store_spool_pending(m->cfg.spool) : 0));
    W(metrics_write_family(out, "browserd_store_write_duration_seconds", "histogram",
                           "Saves of session records into the database (one batch per sample)"));
    W(metrics_write_histogram(out, "browserd_store_write_duration_seconds", NULL, store_write_latency(m->cfg.store)));
    W(metrics_write_one(out, "browserd_store_write_failures_total", "counter",
                        "Saves of session records the database refused or could not take",
                        (double)store_write_failures(m->cfg.store)));
    if (m->cfg.webhooks) W(webhook_dispatch_metrics_write(m->cfg.webhooks, out));
    process_stats_t ps;
    process_stats_self(&ps);
    if (ps.cpu_seconds >= 0)
        W(metrics_write_one(out, "process_cpu_seconds_total", "counter", "User and system CPU time of browserd",
                            ps.cpu_seconds));
    if (ps.resident_bytes >= 0)
        W(metrics_write_one(out, "process_resident_memory_bytes", "gauge", "Resident memory of browserd",
                            ps.resident_bytes));
    if (ps.virtual_bytes >= 0)
        W(metrics_write_one(out, "process_virtual_memory_bytes", "gauge", "Virtual memory of browserd",
                            ps.virtual_bytes));
    if (ps.max_fds >= 0)
        W(metrics_write_one(out, "process_max_fds", "gauge", "The limit on open file descriptors", ps.max_fds));
    if (ps.start_time_seconds >= 0)
        W(metrics_write_one(out, "process_start_time_seconds", "gauge", "When browserd started, since the Unix epoch",
                            ps.start_time_seconds));
    sc->rc = rc;
}

static void scrape_done(uv_work_t *w, int status) {
    scrape_t *sc = w->data;
    node_metrics_t *m = sc->m;
    m->in_flight--;
    if (status != 0 || sc->rc != 0) {
        buf_free(&sc->body);
        http_respond_error(sc->conn, 500, NULL, "Internal error", false);
    } else {
        size_t len = 0;
        char *body = buf_steal(&sc->body, &len);
        http_respond(sc->conn, 200, "Content-Type: " NODE_METRICS_CONTENT_TYPE "\r\n", body, len, false);
    }
    free(sc);
    maybe_stopped(m);
}

static bool token_ok(const node_metrics_t *m, const http_request_t *req) {
    if (!m->token) return true;
    const char *token;
    size_t len;
    return http_request_bearer(req, &token, &len) && len == m->token_len && CRYPTO_memcmp(token, m->token, len) == 0;
}

void node_metrics_handle(void *ctx, http_conn_t *conn, const http_request_t *req) {
    node_metrics_t *m = ctx;
    if (req->path_len != 8 || memcmp(req->path, "/metrics", 8) != 0) {
        http_respond_error(conn, 404, NULL, "Not found", false);
        return;
    }
    if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
        http_respond_error(conn, 405, "Allow: GET, HEAD\r\n", "Method not allowed", false);
        return;
    }
    if (!token_ok(m, req)) {
        http_respond_error(conn, 401, "WWW-Authenticate: Bearer\r\n", "Invalid credentials", false);
        return;
    }
    scrape_t *sc = calloc(1, sizeof *sc);
    if (!sc) {
        http_respond_error(conn, 503, NULL, "Out of memory", true);
        return;
    }
    sc->m = m;
    sc->conn = conn;
    sc->work.data = sc;
    buf_init(&sc->body);
    sc->rc = write_loop_part(m, &sc->body);
    if (uv_queue_work(m->cfg.loop, &sc->work, scrape_work, scrape_done) != 0) {
        buf_free(&sc->body);
        free(sc);
        http_respond_error(conn, 503, NULL, "Service unavailable", false);
        return;
    }
    m->in_flight++;
}
