#include "core/log.h"
#include "api/api.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_dashboard.h"
#include "api/api_openapi.h"
#include "api/api_responses.h"
#include "catalog/catalog_sync.h"
#include "core/buf.h"
#include "core/uuid.h"
#include "session/session_query.h"
#include "session/stats_query.h"

struct api {
    uv_loop_t *loop;
    store_t *store;
    catalog_t *catalog;
    api_end_session_fn end_session;
    void *end_session_ctx;
    api_status_fn status;
    void *status_ctx;
    http_handler_fn metrics;
    void *metrics_ctx;
    failure_limit_t *auth_limit;
    api_live_url_fn live_url;
    void *live_url_ctx;
    api_request_metrics_t request_metrics;
};

#define BEARER_CHALLENGE "WWW-Authenticate: Bearer\r\n"
#define SESSIONS_PATH "/browser_sessions"
#define STATS_PATH SESSIONS_PATH "/stats"

/* One request on its way through a worker thread. The request itself stays owned by the
 * connection until http_respond (see http_server.h), so it is borrowed here, not copied. */
typedef struct {
    uv_work_t work;
    api_t *api;
    http_conn_t *conn;
    const http_request_t *req;
    const char *token;
    size_t token_len;
    /* the answer, filled on the worker thread */
    int status;
    const char *extra_headers;
    buf_t body;
    /* DELETE of an existing session: ended on the loop thread, where sessions live */
    bool kill;
    /* POST .../live of an existing session: its URL made on the loop thread (0, 1 with input) */
    int live;
    bool bad_key;                 /* the key was unknown or revoked: one failure of peer */
    bool have_peer;
    struct sockaddr_storage peer;
    char customer[STORE_ID_MAX + 1];
    uint8_t session[16];
} api_job_t;

int api_new(const api_config_t *cfg, api_t **out) {
    api_t *api = calloc(1, sizeof *api);
    if (!api) return -ENOMEM;
    api->loop = cfg->loop;
    api->store = cfg->store;
    api->catalog = cfg->catalog;
    api->end_session = cfg->end_session;
    api->end_session_ctx = cfg->end_session_ctx;
    api->status = cfg->status;
    api->status_ctx = cfg->status_ctx;
    api->metrics = cfg->metrics;
    api->metrics_ctx = cfg->metrics_ctx;
    api->auth_limit = cfg->auth_limit;
    api->live_url = cfg->live_url;
    api->live_url_ctx = cfg->live_url_ctx;
    api_request_metrics_init(&api->request_metrics);
    *out = api;
    return 0;
}

void api_free(api_t *api) {
    if (!api) return;
    api_request_metrics_free(&api->request_metrics);
    free(api);
}

void api_observe(void *ctx, const http_request_t *req, int status, uint64_t duration_ns) {
    api_t *api = ctx;
    api_request_metrics_observe(&api->request_metrics, req, status, duration_ns);
}

int api_metrics_write(const api_t *api, buf_t *out) { return api_request_metrics_write(&api->request_metrics, out); }

/* The answer is an error: status and {"error":message} (with "key":value when key is not
 * NULL), replacing whatever body was started. A body that cannot be written leaves status 500
 * and an empty body, which job_done fills. */
static void set_error(api_job_t *job, int status, const char *message, const char *key, const char *value,
                      size_t value_len) {
    job->status = status;
    buf_reset(&job->body);
    if (http_error_body(&job->body, message, key, value, value_len) < 0) {
        job->status = 500;
        buf_reset(&job->body);
    }
}

/* A failure of the work behind a request: the database away is a 503 (the client may retry;
 * running sessions go on and their records wait in the spool), anything else a 500. */
static void set_failure(api_job_t *job, int rc) {
    if (rc == -EIO) {
        job->extra_headers = "Retry-After: 1\r\n";
        set_error(job, 503, "Service unavailable: the database cannot be reached", NULL, NULL, 0);
    } else {
        set_error(job, 500, "Internal error", NULL, NULL, 0);
    }
}

static bool method_is_read(http_method_t m) { return m == HTTP_M_GET || m == HTTP_M_HEAD; }

static void handle_list(api_job_t *job, const char *customer) {
    const http_request_t *req = job->req;
    if (!method_is_read(req->method)) {
        job->extra_headers = "Allow: GET, HEAD\r\n";
        set_error(job, 405, "Method not allowed", NULL, NULL, 0);
        return;
    }
    session_query_t q;
    char details[256];
    int rc = session_query_parse(req->query, req->query_len, &q, details, sizeof details);
    if (rc == -ENOMEM) {
        set_error(job, 500, "Internal error", NULL, NULL, 0);
        return;
    }
    if (rc < 0) {
        set_error(job, 400, "Invalid request parameters", "details", details, strlen(details));
        return;
    }
    rc = catalog_sync(job->api->catalog, job->api->store);
    if (rc == 0) rc = api_responses_list(&job->body, job->api->catalog, customer, &q);
    session_query_free(&q);
    if (rc < 0) {
        log_event(LOG_ERROR, "api", "list_failed", "customer=%s error=%s", customer, strerror(-rc));
        set_failure(job, rc);
        return;
    }
    job->status = 200;
}

static void handle_stats(api_job_t *job, const char *customer) {
    const http_request_t *req = job->req;
    if (!method_is_read(req->method)) {
        job->extra_headers = "Allow: GET, HEAD\r\n";
        set_error(job, 405, "Method not allowed", NULL, NULL, 0);
        return;
    }
    session_stats_query_t q;
    char details[256];
    int rc = session_stats_query_parse(req->query, req->query_len, &q, details, sizeof details);
    if (rc == -ENOMEM) {
        set_error(job, 500, "Internal error", NULL, NULL, 0);
        return;
    }
    if (rc < 0) {
        set_error(job, 400, "Invalid request parameters", "details", details, strlen(details));
        return;
    }
    catalog_stats_t stats;
    rc = catalog_sync(job->api->catalog, job->api->store);
    if (rc == 0) rc = catalog_stats(job->api->catalog, customer, &q.filters, q.bucket_ms, &stats);
    if (rc == -E2BIG) {
        snprintf(details, sizeof details,
                 "bucket: the range holds %u %ss, more than %u: narrow start_date and end_date%s",
                 stats.nbuckets, session_stats_bucket_name(q.bucket_ms), CATALOG_STATS_MAX_BUCKETS,
                 q.bucket_ms == SESSION_BUCKET_HOUR_MS ? ", or use bucket=day" : "");
        session_stats_query_free(&q);
        set_error(job, 400, "Invalid request parameters", "details", details, strlen(details));
        return;
    }
    if (rc == 0) {
        rc = api_responses_stats(&job->body, &stats, q.bucket_ms);
        catalog_stats_free(&stats);
    }
    session_stats_query_free(&q);
    if (rc < 0) {
        log_event(LOG_ERROR, "api", "stats_failed", "customer=%s error=%s", customer, strerror(-rc));
        set_failure(job, rc);
        return;
    }
    job->status = 200;
}

/* id_text may end in "/live": POST .../live asks for a live view URL of a running session. */
static void handle_one(api_job_t *job, const char *customer, const char *id_text, size_t id_len) {
    const http_request_t *req = job->req;
    bool is_delete = req->method == HTTP_M_DELETE;
    bool live = id_len > 5 && memcmp(id_text + id_len - 5, "/live", 5) == 0;
    if (live) id_len -= 5;
    if (live && req->method != HTTP_M_POST) {
        job->extra_headers = "Allow: POST\r\n";
        set_error(job, 405, "Method not allowed", NULL, NULL, 0);
        return;
    }
    if (!live && !method_is_read(req->method) && !is_delete) {
        job->extra_headers = "Allow: GET, HEAD, DELETE\r\n";
        set_error(job, 405, "Method not allowed", NULL, NULL, 0);
        return;
    }
    uint8_t id[16];
    if (uuid_parse(id_text, id_len, id) < 0) {
        set_error(job, 400, "Invalid session_id format", NULL, NULL, 0);
        return;
    }
    int rc = catalog_sync(job->api->catalog, job->api->store);
    if (rc == 0) rc = api_responses_session(&job->body, job->api->catalog, customer, id);
    if (rc == -ENOENT) {
        set_error(job, 404, "Session not found", "session_id", id_text, id_len);
        return;
    }
    if (rc < 0) {
        log_event(LOG_ERROR, "api", "get_failed", "customer=%s error=%s", customer, strerror(-rc));
        set_failure(job, rc);
        return;
    }
    if (live) { /* like DELETE: whether it runs here is the loop thread's to know */
        job->live = 1 + (req->query && strstr(req->query, "input=true") != NULL);
        memcpy(job->session, id, 16);
        snprintf(job->customer, sizeof job->customer, "%s", customer);
        buf_reset(&job->body);
        set_error(job, 409, "Session is not running on this node", "session_id", id_text, id_len);
        return;
    }
    if (is_delete) {
        /* Whether it runs is known only where it runs (this process's loop thread, or another
         * node): decided by end_session after job_done. The 409 body is ready for the case it
         * does not. */
        job->kill = true;
        memcpy(job->session, id, 16);
        snprintf(job->customer, sizeof job->customer, "%s", customer);
        set_error(job, 409, "Session is not running", "session_id", id_text, id_len);
        return;
    }
    job->status = 200;
}

static void job_work(uv_work_t *work) {
    api_job_t *job = work->data;
    char customer[STORE_ID_MAX + 1];
    int rc = store_key_authenticate(job->api->store, job->token, job->token_len, customer);
    if (rc == -ENOENT) {
        job->bad_key = true;
        job->extra_headers = BEARER_CHALLENGE;
        set_error(job, 401, "Invalid credentials", NULL, NULL, 0);
        return;
    }
    if (rc < 0) {
        log_event(LOG_WARN, "api", "auth_failed", "error=%s", strerror(-rc));
        set_failure(job, rc);
        return;
    }
    const char *path = job->req->path;
    size_t plen = job->req->path_len, base = sizeof SESSIONS_PATH - 1;
    if (plen == base && memcmp(path, SESSIONS_PATH, base) == 0) {
        handle_list(job, customer);
    } else if (plen == sizeof STATS_PATH - 1 && memcmp(path, STATS_PATH, plen) == 0) {
        handle_stats(job, customer);
    } else if (plen >= base + 1 && memcmp(path, SESSIONS_PATH "/", base + 1) == 0 &&
               (!memchr(path + base + 1, '/', plen - base - 1) ||
                (plen > base + 6 && memcmp(path + plen - 5, "/live", 5) == 0 &&
                 !memchr(path + base + 1, '/', plen - base - 6)))) {
        handle_one(job, customer, path + base + 1, plen - base - 1);
    } else {
        set_error(job, 404, "Not found", NULL, NULL, 0);
    }
}

static void respond(api_job_t *job) {
    if (job->status == 500 && job->body.len == 0) (void)http_error_body(&job->body, "Internal error", NULL, NULL, 0);
    size_t len = 0;
    char *body = buf_steal(&job->body, &len);
    http_respond(job->conn, job->status, job->extra_headers, body, len, false);
    free(job);
}

/* The end of a DELETE's session, wherever it ran. */
static void on_session_ended(void *arg, int rc) {
    api_job_t *job = arg;
    if (rc == 0) {
        buf_free(&job->body);
        http_respond(job->conn, 204, NULL, NULL, 0, false);
        free(job);
        return;
    }
    if (rc != -EALREADY && rc != -ENOENT) { /* the 409 body stays for a session not running */
        job->extra_headers = NULL;
        set_failure(job, rc == -ETIMEDOUT ? -EIO : rc);
    }
    respond(job);
}

/* {"url": ...} of a new live view, or the 409 made ready on the worker thread. */
static void answer_live(api_job_t *job) {
    api_t *api = job->api;
    char url[512];
    int rc = api->live_url ? api->live_url(api->live_url_ctx, job->customer, job->session, job->live == 2, url,
                                           sizeof url)
                           : -ENOENT;
    if (rc == -ENOTSUP || (rc < 0 && rc != -ENOENT)) {
        buf_reset(&job->body);
        (void)http_error_body(&job->body, rc == -ENOTSUP ? "Live view is off" : "No live view could be made", NULL,
                              NULL, 0);
    } else if (rc == 0) {
        buf_reset(&job->body);
        int w = buf_append_str(&job->body, "{\"url\":\"");
        if (w == 0) w = buf_append_str(&job->body, url); /* hex and a checked host: nothing to escape */
        if (w == 0) w = buf_append_str(&job->body, "\"}");
        job->status = w == 0 ? 200 : 500;
        job->extra_headers = "Cache-Control: no-store\r\n";
        explicit_bzero(url, sizeof url);
    }
    respond(job);
}

static void job_done(uv_work_t *work, int status) {
    api_job_t *job = work->data;
    if (status != 0) set_error(job, 500, "Internal error", NULL, NULL, 0);
    api_t *api = job->api;
    if (job->bad_key && job->have_peer)
        failure_limit_fail(api->auth_limit, (const struct sockaddr *)&job->peer, uv_now(api->loop));
    if (status == 0 && job->live) {
        answer_live(job);
        return;
    }
    if (status == 0 && job->kill && api->end_session) {
        api->end_session(api->end_session_ctx, job->customer, job->session, on_session_ended, job);
        return;
    }
    respond(job);
}

void api_handle(void *ctx, http_conn_t *conn, const http_request_t *req) {
    api_t *api = ctx;
    if (api_openapi_handle(conn, req)) return; /* no key needed */
    if (api_dashboard_handle(conn, req)) return; /* nor for the page, which asks for one */
    if (api_health_handle(api->status, api->status_ctx, conn, req)) return; /* no key either */
    if (api->metrics && req->path_len == 8 && memcmp(req->path, "/metrics", 8) == 0) {
        api->metrics(api->metrics_ctx, conn, req); /* its own token, if any */
        return;
    }
    if (req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0) {
        if (!method_is_read(req->method)) {
            http_respond_error(conn, 405, "Allow: GET, HEAD\r\n", "Method not allowed", false);
            return;
        }
        buf_t b;
        buf_init(&b);
        char *body = NULL;
        size_t len = 0;
        if (api_responses_health(&b, catalog_size(api->catalog)) == 0) body = buf_steal(&b, &len);
        buf_free(&b); /* what a failed write left (nothing after buf_steal) */
        if (body) http_respond(conn, 200, NULL, body, len, false);
        else http_respond(conn, 500, NULL, NULL, 0, true);
        return;
    }
    /* Authentication comes before everything else, so 401 precedes 400, 404 and 405. */
    const char *token;
    size_t token_len;
    if (!http_request_bearer(req, &token, &token_len)) {
        http_respond_error(conn, 401, BEARER_CHALLENGE, "Credentials are missing", false);
        return;
    }
    struct sockaddr_storage peer;
    bool have_peer = api->auth_limit && http_conn_peer(conn, &peer) == 0;
    unsigned wait_s = have_peer ? failure_limit_wait(api->auth_limit, (const struct sockaddr *)&peer, uv_now(api->loop)) : 0;
    if (wait_s) {
        char retry[48];
        snprintf(retry, sizeof retry, "Retry-After: %u\r\n", wait_s);
        http_respond_error(conn, 429, retry, FAILURE_LIMIT_MESSAGE, false);
        return;
    }
    api_job_t *job = calloc(1, sizeof *job);
    if (!job) {
        http_respond(conn, 503, NULL, NULL, 0, true);
        return;
    }
    job->have_peer = have_peer;
    if (have_peer) job->peer = peer;
    job->api = api;
    job->conn = conn;
    job->req = req;
    job->token = token;
    job->token_len = token_len;
    job->work.data = job;
    buf_init(&job->body);
    int rc = uv_queue_work(api->loop, &job->work, job_work, job_done);
    if (rc < 0) {
        free(job);
        http_respond_error(conn, 503, NULL, "Service unavailable", false);
    }
}
