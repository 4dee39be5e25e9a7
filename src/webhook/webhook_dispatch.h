/* The webhook dispatcher: the node's sender of the outbox (store_webhooks.h). One thread of
 * its own claims due deliveries from the store, POSTs each (webhook_http.h) signed
 * (webhook_sign.h) with the session's record as the API writes it, and records the outcome:
 * delivered on a 2xx answer, otherwise retried on the backoff schedule (webhook_backoff.h)
 * until it is given up.
 *
 * Why a thread and not the event loop: a delivery is a store claim, a DNS resolution, a
 * connection and a record, in a row, one delivery at a time per node; on the loop that
 * would be four asynchronous steps with libuv's resolver and the worker pool for the store,
 * and a slow database would hold the pool's threads that the API and the gateway need. Blocking
 * calls bounded by poll timeouts on one thread of its own keep the loop and the pool out of it
 * entirely; its cost is one thread and one connection to the store.
 *
 * Delivery is at least once: a node that dies between the POST and the record leaves the
 * claim to run out (the lease), and the delivery is sent again with the same delivery id
 * (Browserd-Delivery), which receivers use to drop the duplicate.
 *
 * Threading: start, stop and the metrics from any one thread (the loop); the dispatcher's own
 * thread does the rest. Ownership: the store is borrowed and must outlive the dispatcher;
 * the config's strings are copied. */
#ifndef BROWSERD_WEBHOOK_WEBHOOK_DISPATCH_H
#define BROWSERD_WEBHOOK_WEBHOOK_DISPATCH_H

#include <stdint.h>

#include "core/buf.h"
#include "proxy/proxy_guard.h"
#include "store/store_webhooks.h"
#include "webhook/webhook_backoff.h"

typedef struct webhook_dispatch webhook_dispatch_t;

typedef struct {
    store_t *store;
    const char *claimer;         /* this node's id: who holds a claim */
    proxy_guard_t guard;         /* receivers' addresses (enabled, with the --allow-private ranges) */
    webhook_backoff_t backoff;
    int64_t connect_timeout_ms;  /* 0: 5 s */
    int64_t response_timeout_ms; /* 0: 10 s */
    int64_t poll_ms;             /* how often the outbox is looked at when idle (0: 1 s) */
    const char *tls_ca_file;     /* https:// receivers are verified against it (NULL: the system's CAs);
                                  * read at the first https:// delivery, refused at start if unreadable */
} webhook_dispatch_config_t;

#define WEBHOOK_CONNECT_TIMEOUT_MS INT64_C(5000)
#define WEBHOOK_RESPONSE_TIMEOUT_MS INT64_C(10000)
#define WEBHOOK_POLL_MS INT64_C(1000)

/* Starts the thread. 0, or a negative errno with a reason in err. */
int webhook_dispatch_start(const webhook_dispatch_config_t *cfg, webhook_dispatch_t **out, char *err, size_t err_cap);
/* Stops the thread (an attempt in flight is cut short and its claim given back, not counted)
 * and frees the dispatcher. Blocks until the thread ended: at most one store call. NULL: no-op. */
void webhook_dispatch_stop(webhook_dispatch_t *d);

/* The dispatcher's part of GET /metrics: attempts by outcome, deliveries given up, and the
 * pending deliveries the store held at the last look. 0 or -ENOMEM. Any thread. */
int webhook_dispatch_metrics_write(const webhook_dispatch_t *d, buf_t *out);

#endif
