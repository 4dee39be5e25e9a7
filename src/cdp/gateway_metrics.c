/* The gateway's part of GET /metrics: sessions, the queue, the pool, CDP messages, traffic. */
#include <errno.h>
#include <string.h>

#include "cdp/gateway_metrics.h"

#include "cdp/gateway_internal.h"

void gateway_metrics_init(gateway_metrics_t *m) {
    metric_counter_set_init(&m->ended, "status", "error");
    metric_counter_set_init(&m->refused, "reason", NULL);
    metric_histogram_init(&m->connect, &METRIC_BUCKETS_SLOW);
    metric_histogram_init(&m->queue_wait, &METRIC_BUCKETS_SLOW);
}

void gateway_metrics_free(gateway_metrics_t *m) {
    metric_counter_set_free(&m->ended);
    metric_counter_set_free(&m->refused);
}

void gateway_metrics_ended(gateway_t *gw, session_status_t status, const char *error_code) {
    metric_counter_set_add(&gw->metrics.ended, session_status_name(status), error_code ? error_code : "none", 1);
}

void gateway_metrics_refused(gateway_t *gw, const char *reason) {
    metric_counter_set_add(&gw->metrics.refused, reason, NULL, 1);
}

/* A family of two samples told apart by one label. */
static int write_pair(buf_t *out, const char *name, const char *help, const char *label, const char *a, double va,
                      const char *b, double vb) {
    char la[96], lb[96];
    snprintf(la, sizeof la, "%s=\"%s\"", label, a);
    snprintf(lb, sizeof lb, "%s=\"%s\"", label, b);
    if (metrics_write_family(out, name, "counter", help) < 0 || metrics_write_sample(out, name, la, va) < 0 ||
        metrics_write_sample(out, name, lb, vb) < 0)
        return -ENOMEM;
    return 0;
}

int gateway_metrics_write(const gateway_t *gw, buf_t *out) {
    const gateway_metrics_t *m = &gw->metrics;
    gateway_status_t st;
    gateway_status(gw, &st);
    browser_pool_stats_t ps;
    memset(&ps, 0, sizeof ps);
    if (gw->pool) browser_pool_get_stats(gw->pool, &ps);
    const traffic_totals_t *t = &m->traffic;
    int rc = 0;
#define W(expr) \
    do { \
        if (rc == 0) rc = (expr); \
    } while (0)
    W(metrics_write_one(out, "browserd_sessions_running", "gauge", "Sessions holding a browser now", st.running));
    W(metrics_write_one(out, "browserd_sessions_queued", "gauge", "CDP clients waiting for a browser slot now",
                        st.queued));
    W(metrics_write_one(out, "browserd_sessions_max", "gauge", "Concurrent sessions allowed (--max-sessions)",
                        st.max_sessions));
    W(metrics_write_one(out, "browserd_queue_max", "gauge", "Clients allowed to wait (--max-queue)", st.max_queue));
    W(metrics_write_family(out, "browserd_sessions_ended_total", "counter",
                           "Sessions of this process that ended, by status and error code (none when finished)"));
    W(metrics_write_counter_set(out, "browserd_sessions_ended_total", &m->ended));
    W(metrics_write_family(out, "browserd_cdp_refused_total", "counter",
                           "CDP clients answered an error instead of a session, by reason"));
    W(metrics_write_counter_set(out, "browserd_cdp_refused_total", &m->refused));
    W(metrics_write_family(out, "browserd_connect_duration_seconds", "histogram",
                           "From a CDP client's upgrade request to its 101 answer (the session started)"));
    W(metrics_write_histogram(out, "browserd_connect_duration_seconds", NULL, &m->connect));
    W(metrics_write_family(out, "browserd_queue_wait_seconds", "histogram",
                           "Time a started session waited for a browser slot (0 when one was free)"));
    W(metrics_write_histogram(out, "browserd_queue_wait_seconds", NULL, &m->queue_wait));
    W(metrics_write_one(out, "browserd_pool_size", "gauge", "Warm browsers wanted (--pool)", st.pool_size));
    W(metrics_write_one(out, "browserd_pool_warm", "gauge", "Pooled browsers ready to be taken now", ps.ready));
    W(metrics_write_one(out, "browserd_pool_target", "gauge",
                        "Browsers the pool wants now (ready or starting), from the arrival rate", ps.target));
    W(metrics_write_one(out, "browserd_pool_misses_total", "counter",
                        "Sessions that found no warm browser and waited for a launch", (double)ps.misses));
    W(metrics_write_one(out, "browserd_pool_retired_total", "counter",
                        "Warm browsers stopped because the pool shrank back", (double)ps.retired));
    W(metrics_write_one(out, "browserd_pool_starting", "gauge", "Pooled browsers launched, not ready yet",
                        ps.waiting - ps.ready));
    W(metrics_write_one(out, "browserd_browsers_in_use", "gauge", "Browsers serving a session now", st.running));
    W(metrics_write_one(out, "browserd_pool_launches_total", "counter", "Browsers the pool launched",
                        (double)ps.launched));
    W(metrics_write_one(out, "browserd_pool_lost_total", "counter",
                        "Pooled browsers that exited or timed out while waiting (then replaced)", (double)ps.lost));
    W(metrics_write_one(out, "browserd_pool_launch_errors_total", "counter", "Pool launches that failed at once",
                        (double)ps.launch_errors));
    W(write_pair(out, "browserd_cdp_messages_total", "CDP messages relayed, by direction", "direction",
                 "client_to_browser", (double)m->messages_from_client, "browser_to_client",
                 (double)m->messages_to_client));
    W(write_pair(out, "browserd_cdp_bytes_total", "Bytes of CDP messages relayed (payloads), by direction",
                 "direction", "client_to_browser", (double)m->bytes_from_client, "browser_to_client",
                 (double)m->bytes_to_client));
    W(metrics_write_family(out, "browserd_proxy_bytes_total", "counter",
                           "Bytes through the browsers' traffic proxies: the browser side (what sessions are billed "
                           "for) and the upstream side"));
    W(metrics_write_sample(out, "browserd_proxy_bytes_total", "side=\"browser\",direction=\"in\"",
                           (double)t->from_browser_bytes));
    W(metrics_write_sample(out, "browserd_proxy_bytes_total", "side=\"browser\",direction=\"out\"",
                           (double)t->to_browser_bytes));
    W(metrics_write_sample(out, "browserd_proxy_bytes_total", "side=\"upstream\",direction=\"in\"",
                           (double)t->from_upstream_bytes));
    W(metrics_write_sample(out, "browserd_proxy_bytes_total", "side=\"upstream\",direction=\"out\"",
                           (double)t->to_upstream_bytes));
    W(liveview_metrics_write(gw, out));
#undef W
    return rc;
}
