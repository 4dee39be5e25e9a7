#include "webhook/webhook_dispatch.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "api/api_responses.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "webhook/webhook_http.h"
#include "webhook/webhook_sign.h"
#include "webhook/webhook_url.h"

/* Deliveries claimed at once. Each is sent in turn, so the lease covers them all. */
#define CLAIM_BATCH 8
#define LEASE_SLACK_MS INT64_C(30000)
/* Done deliveries are kept this long (the history `webhook deliveries` shows), then deleted,
 * looked at this often: the outbox does not grow with every session ever ended. */
#define DONE_KEPT_MS (INT64_C(30) * 24 * 3600 * 1000)
#define PRUNE_EVERY_MS (INT64_C(3600) * 1000)

struct webhook_dispatch {
    webhook_dispatch_config_t cfg;
    char claimer[STORE_NODE_ID_MAX + 1];
    pthread_t thread;
    int stop_fd; /* eventfd: readable once stop was asked */
    /* For https:// receivers, the thread's alone: made at the first one, since loading the
     * system's CA bundle costs a node without https:// receivers memory for nothing. */
    SSL_CTX *tls;
    char *ca_file; /* NULL: the system's CAs */
    uint64_t rng;
    _Atomic uint64_t delivered, failed_attempts, given_up;
    _Atomic int64_t pending; /* -1 before the first look */
    int64_t next_prune_ms;   /* the thread's */
};

/* The jitter's random numbers: xorshift64*, seeded from the kernel (not a secret). */
static double next_jitter(webhook_dispatch_t *d) {
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return (double)((d->rng * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

typedef struct {
    bool cancelled;  /* a stop cut it short */
    bool delivered;
    int status;
    char error[STORE_WEBHOOK_ERROR_MAX + 1];
} attempt_t;

static void attempt(webhook_dispatch_t *d, const store_delivery_t *dl, attempt_t *a) {
    memset(a, 0, sizeof *a);
    webhook_url_t url;
    webhook_addr_t addrs[WEBHOOK_MAX_ADDRS];
    size_t naddrs = 0;
    buf_t body;
    buf_init(&body);
    char reason[STORE_WEBHOOK_ERROR_MAX + 1] = "";
    int rc = webhook_url_parse(dl->url, &url, reason, sizeof reason);
    /* The guard again, after this resolution: what the name resolved to when the webhook was
     * added says nothing about now. */
    if (rc == 0) rc = webhook_url_resolve(&url, &d->cfg.guard, addrs, &naddrs, reason, sizeof reason);
    if (rc == 0 && url.tls && !d->tls) rc = webhook_http_tls_new(d->ca_file, &d->tls, reason, sizeof reason);
    if (rc == 0 && api_responses_session_record(&body, &dl->rec) != 0) {
        rc = -ENOMEM;
        snprintf(reason, sizeof reason, "out of memory");
    }
    char signature[WEBHOOK_SIGNATURE_MAX], headers[512];
    if (rc == 0 && webhook_sign(dl->secret, time_now_ms() / 1000, body.data, body.len, signature) != 0) {
        rc = -EIO;
        snprintf(reason, sizeof reason, "HMAC-SHA256 failed");
    }
    if (rc == 0) {
        snprintf(headers, sizeof headers,
                 "Browserd-Event: session.ended\r\nBrowserd-Delivery: %s\r\nBrowserd-Webhook: %s\r\n"
                 "Browserd-Attempt: %" PRId64 "\r\nBrowserd-Signature: %s\r\n",
                 dl->delivery_id, dl->webhook_id, dl->attempts + 1, signature);
        webhook_http_request_t rq = {.url = &url, .addrs = addrs, .addr_count = naddrs, .headers = headers,
                                     .body = body.data, .body_len = body.len,
                                     .connect_timeout_ms = d->cfg.connect_timeout_ms,
                                     .response_timeout_ms = d->cfg.response_timeout_ms, .stop_fd = d->stop_fd,
                                     .tls = d->tls};
        rc = webhook_http_post(&rq, &a->status, reason, sizeof reason);
        if (rc == -ECANCELED) a->cancelled = true;
        if (rc == 0 && a->status >= 200 && a->status <= 299) a->delivered = true;
        else if (rc == 0) snprintf(reason, sizeof reason, "the receiver answered %d", a->status);
    }
    snprintf(a->error, sizeof a->error, "%s", reason);
    buf_free(&body);
}

static void deliver(webhook_dispatch_t *d, const store_delivery_t *dl) {
    attempt_t a;
    attempt(d, dl, &a);
    int64_t now = time_now_ms();
    store_delivery_outcome_t o = {.delivered = a.delivered, .counted = !a.cancelled, .http_status = a.status,
                                  .error = a.error, .next_attempt_ms = 0};
    int64_t made = dl->attempts + 1;
    if (a.delivered) {
        atomic_fetch_add(&d->delivered, 1);
        log_event(LOG_INFO, "webhook", "delivered", "delivery=%s webhook=%s session=%s status=%d attempt=%" PRId64,
                  dl->delivery_id, dl->webhook_id, dl->rec.session_id, a.status, made);
    } else if (!a.cancelled) {
        atomic_fetch_add(&d->failed_attempts, 1);
        o.next_attempt_ms = webhook_backoff_next_ms(&d->cfg.backoff, dl->created_ms, now, made, next_jitter(d));
        if (o.next_attempt_ms < 0) {
            atomic_fetch_add(&d->given_up, 1);
            log_event(LOG_ERROR, "webhook", "given_up", "delivery=%s webhook=%s session=%s attempts=%" PRId64
                      " error=\"%s\"", dl->delivery_id, dl->webhook_id, dl->rec.session_id, made, a.error);
        } else {
            log_event(LOG_WARN, "webhook", "attempt_failed", "delivery=%s webhook=%s session=%s attempt=%" PRId64
                      " retry_in_ms=%" PRId64 " error=\"%s\"", dl->delivery_id, dl->webhook_id, dl->rec.session_id,
                      made, o.next_attempt_ms - now, a.error);
        }
    }
    /* A record that fails leaves the claim to run out: the delivery is made again then (at
     * least once), with the same delivery id. */
    if (store_webhook_record(d->cfg.store, dl->delivery_id, &o) != 0)
        log_event(LOG_ERROR, "webhook", "record_failed", "delivery=%s", dl->delivery_id);
}

static bool stop_asked(const webhook_dispatch_t *d) {
    struct pollfd p = {.fd = d->stop_fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* One look at the outbox: true when it gave a full batch (more may be due at once). */
static bool run_batch(webhook_dispatch_t *d) {
    store_delivery_t *due = NULL;
    size_t n = 0;
    int64_t lease = CLAIM_BATCH * (d->cfg.connect_timeout_ms + d->cfg.response_timeout_ms) + LEASE_SLACK_MS;
    if (store_webhook_claim(d->cfg.store, d->claimer, lease, CLAIM_BATCH, &due, &n) != 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (stop_asked(d)) { /* what is left goes back to the outbox at once, uncounted */
            store_delivery_outcome_t back = {.counted = false};
            store_webhook_record(d->cfg.store, due[i].delivery_id, &back);
            continue;
        }
        deliver(d, &due[i]);
    }
    store_webhook_claimed_free(due, n);
    int64_t pending;
    if (store_webhook_pending(d->cfg.store, &pending) == 0) atomic_store(&d->pending, pending);
    return n == CLAIM_BATCH;
}

static void prune(webhook_dispatch_t *d) {
    int64_t now = time_now_ms(), deleted = 0;
    if (now < d->next_prune_ms) return;
    d->next_prune_ms = now + PRUNE_EVERY_MS;
    if (store_webhook_prune(d->cfg.store, now - DONE_KEPT_MS, &deleted) == 0 && deleted > 0)
        log_event(LOG_INFO, "webhook", "pruned", "deliveries=%" PRId64 " older_than_days=30", deleted);
}

static void *dispatch_main(void *arg) {
    webhook_dispatch_t *d = arg;
    /* This node's previous life may have died holding claims: they are ours to send now. */
    if (store_webhook_release_claims(d->cfg.store, d->claimer) != 0)
        log_event(LOG_WARN, "webhook", "release_failed", "node=%s", d->claimer);
    while (!stop_asked(d)) {
        prune(d);
        if (run_batch(d)) continue;
        struct pollfd p = {.fd = d->stop_fd, .events = POLLIN};
        poll(&p, 1, (int)d->cfg.poll_ms);
    }
    return NULL;
}

int webhook_dispatch_start(const webhook_dispatch_config_t *cfg, webhook_dispatch_t **out, char *err, size_t err_cap) {
    *out = NULL;
    if (!cfg->store || !cfg->claimer || !*cfg->claimer || strlen(cfg->claimer) > STORE_NODE_ID_MAX) {
        snprintf(err, err_cap, "a store and a node id are needed");
        return -EINVAL;
    }
    webhook_dispatch_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    d->cfg = *cfg;
    snprintf(d->claimer, sizeof d->claimer, "%s", cfg->claimer);
    d->cfg.claimer = d->claimer;
    d->cfg.tls_ca_file = NULL;
    /* Read at the first https:// delivery; a path that cannot be read is refused now. */
    if (cfg->tls_ca_file && (access(cfg->tls_ca_file, R_OK) != 0 || !(d->ca_file = strdup(cfg->tls_ca_file)))) {
        snprintf(err, err_cap, "--webhook-ca-file %s: %s", cfg->tls_ca_file, strerror(errno));
        free(d);
        return -EINVAL;
    }
    int rc;
    if (d->cfg.connect_timeout_ms <= 0) d->cfg.connect_timeout_ms = WEBHOOK_CONNECT_TIMEOUT_MS;
    if (d->cfg.response_timeout_ms <= 0) d->cfg.response_timeout_ms = WEBHOOK_RESPONSE_TIMEOUT_MS;
    if (d->cfg.poll_ms <= 0) d->cfg.poll_ms = WEBHOOK_POLL_MS;
    if (d->cfg.backoff.base_ms <= 0) d->cfg.backoff.base_ms = WEBHOOK_BACKOFF_BASE_MS;
    if (d->cfg.backoff.max_delay_ms <= 0) d->cfg.backoff.max_delay_ms = WEBHOOK_BACKOFF_MAX_DELAY_MS;
    if (d->cfg.backoff.max_age_ms <= 0) d->cfg.backoff.max_age_ms = WEBHOOK_BACKOFF_MAX_AGE_MS;
    atomic_store(&d->pending, -1);
    if (getrandom(&d->rng, sizeof d->rng, 0) != sizeof d->rng || d->rng == 0) d->rng = (uint64_t)time_now_ms() | 1;
    d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->stop_fd < 0) {
        snprintf(err, err_cap, "eventfd: %s", strerror(errno));
        free(d->ca_file);
        free(d);
        return -EMFILE;
    }
    rc = pthread_create(&d->thread, NULL, dispatch_main, d);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot start the webhook thread: %s", strerror(rc));
        close(d->stop_fd);
        free(d->ca_file);
        free(d);
        return -rc;
    }
    *out = d;
    return 0;
}

void webhook_dispatch_stop(webhook_dispatch_t *d) {
    if (!d) return;
    uint64_t one = 1;
    if (write(d->stop_fd, &one, sizeof one) != sizeof one)
        log_event(LOG_ERROR, "webhook", "stop_failed", "error=\"%s\"", strerror(errno));
    pthread_join(d->thread, NULL);
    close(d->stop_fd);
    webhook_http_tls_free(d->tls);
    free(d->ca_file);
    free(d);
}

int webhook_dispatch_metrics_write(const webhook_dispatch_t *d, buf_t *out) {
    int rc = metrics_write_family(out, "browserd_webhook_attempts_total", "counter",
                                  "Webhook POSTs this node made, by outcome (delivered: a 2xx answer)");
    if (rc == 0)
        rc = metrics_write_sample(out, "browserd_webhook_attempts_total", "outcome=\"delivered\"",
                                  (double)atomic_load(&d->delivered));
    if (rc == 0)
        rc = metrics_write_sample(out, "browserd_webhook_attempts_total", "outcome=\"failed\"",
                                  (double)atomic_load(&d->failed_attempts));
    if (rc == 0)
        rc = metrics_write_one(out, "browserd_webhook_given_up_total", "counter",
                               "Webhook deliveries this node gave up after retrying for the longest time",
                               (double)atomic_load(&d->given_up));
    int64_t pending = atomic_load(&d->pending);
    if (rc == 0 && pending >= 0)
        rc = metrics_write_one(out, "browserd_webhook_deliveries_pending", "gauge",
                               "Webhook deliveries waiting in the outbox (every node's), at the dispatcher's last look",
                               (double)pending);
    return rc;
}
