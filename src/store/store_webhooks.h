/* The store's webhooks and their outbox (docs/webhooks.md): one more part of store.h (the same
 * threading, errors and ownership rules), in a header of its own as store_webhooks.c defines it.
 *
 * A customer's webhook is a URL that gets a POST when one of its sessions ends. The outbox
 * (webhook_deliveries) is filled by the database itself, in the transaction that writes the
 * session's end (a trigger: a running session that becomes finished or failed, whatever wrote
 * it: the gateway, the orphan and reap paths, DELETE; or a session saved by a browserd node
 * already ended, one that never got a browser). Imports write no worker and fire nothing; db
 * copy copies no webhooks, so a copy into a new database fires nothing either. So no end is
 * written without its deliveries, and none is lost if browserd dies. */
#ifndef BROWSERD_STORE_STORE_WEBHOOKS_H
#define BROWSERD_STORE_STORE_WEBHOOKS_H

#include "store/store.h"

#define STORE_WEBHOOK_ID_LEN 15      /* "wh_" + 12 lowercase hex */
#define STORE_WEBHOOK_SECRET_LEN 70  /* "whsec_" + 64 lowercase hex (32 random bytes) */
#define STORE_WEBHOOK_URL_MAX 2048
#define STORE_WEBHOOK_ERROR_MAX 255

typedef struct {
    char webhook_id[STORE_WEBHOOK_ID_LEN + 1];
    char url[STORE_WEBHOOK_URL_MAX + 1];
    int64_t created_ms;
} store_webhook_info_t;

/* Adds a webhook for an existing customer (the URL is checked by the caller: webhook/); writes
 * its id and its signing secret (shown once, kept in the database: signing needs it). */
int store_webhook_add(store_t *s, const char *customer_id, const char *url, char id_out[STORE_WEBHOOK_ID_LEN + 1],
                      char secret_out[STORE_WEBHOOK_SECRET_LEN + 1], char *err, size_t err_cap);
/* *out malloc'ed (caller frees), oldest first; -ENOENT for an unknown customer. */
int store_webhook_list(store_t *s, const char *customer_id, store_webhook_info_t **out, size_t *count);
/* Removes the webhook and its deliveries (pending ones are not made). -ENOENT when none. */
int store_webhook_remove(store_t *s, const char *webhook_id);
/* True when id is "wh_" + 12 lowercase hex. */
bool store_valid_webhook_id(const char *id);

typedef enum { STORE_DELIVERY_PENDING = 0, STORE_DELIVERY_DELIVERED = 1, STORE_DELIVERY_FAILED = 2 } store_delivery_state_t;
#define STORE_DELIVERY_ID_LEN 36 /* a UUID */

typedef struct {
    char delivery_id[STORE_DELIVERY_ID_LEN + 1];
    char webhook_id[STORE_WEBHOOK_ID_LEN + 1];
    char session_id[37];
    store_delivery_state_t state;
    int64_t attempts;
    int64_t created_ms, next_attempt_ms, done_ms; /* done_ms: -1 while pending */
    int last_status;                              /* the receiver's HTTP status, 0: none */
    char last_error[STORE_WEBHOOK_ERROR_MAX + 1]; /* "" when none */
} store_delivery_info_t;

/* The customer's deliveries, the most recent `limit` of them, oldest first (*out malloc'ed).
 * -ENOENT for an unknown customer. */
int store_webhook_deliveries(store_t *s, const char *customer_id, size_t limit, store_delivery_info_t **out,
                             size_t *count);

/* A delivery claimed for sending: the webhook's URL and secret, the session's record as stored. */
typedef struct {
    char delivery_id[STORE_DELIVERY_ID_LEN + 1];
    char webhook_id[STORE_WEBHOOK_ID_LEN + 1];
    char customer_id[STORE_ID_MAX + 1];
    char url[STORE_WEBHOOK_URL_MAX + 1];
    char secret[STORE_WEBHOOK_SECRET_LEN + 1];
    int64_t attempts;   /* made before this one */
    int64_t created_ms;
    int64_t order;      /* the outbox's order: a later delivery has a larger one */
    session_record_t rec; /* owned: store_webhook_claimed_free */
} store_delivery_t;

/* Claims up to max deliveries that are due (pending, next attempt <= now, not claimed by
 * anyone until now), oldest first, for `claimer` until now + lease_ms: no other claim takes
 * them meanwhile (PostgreSQL: FOR UPDATE SKIP LOCKED, so nodes of a cluster never take the
 * same row). A delivery waits while an earlier pending one of the same webhook and session
 * exists: in order per session. *out malloc'ed (store_webhook_claimed_free). */
int store_webhook_claim(store_t *s, const char *claimer, int64_t lease_ms, size_t max, store_delivery_t **out,
                        size_t *count);
void store_webhook_claimed_free(store_delivery_t *d, size_t count);

/* The outcome of one attempt. delivered: done. Otherwise the attempt failed: retry at
 * next_attempt_ms, or give up (the delivery becomes failed) when next_attempt_ms < 0.
 * http_status 0: no answer; error: "" or a reason (cut to STORE_WEBHOOK_ERROR_MAX). An
 * attempt cut short by a stop (counted: false) only gives the claim back. */
typedef struct {
    bool delivered;
    bool counted;
    int http_status;
    const char *error;
    int64_t next_attempt_ms;
} store_delivery_outcome_t;
/* Records it on a pending delivery (0 also when the delivery is gone: its webhook removed). */
int store_webhook_record(store_t *s, const char *delivery_id, const store_delivery_outcome_t *o);
/* Gives back every claim `claimer` holds (its previous life's, at start: a node killed in the
 * middle of a delivery must not wait out its own lease). */
int store_webhook_release_claims(store_t *s, const char *claimer);
/* Deletes the deliveries that are done (delivered or given up) since before before_ms, all
 * customers; *deleted (may be NULL): how many. Pending ones are never touched. */
int store_webhook_prune(store_t *s, int64_t before_ms, int64_t *deleted);
/* Pending deliveries, all customers (for GET /metrics). */
int store_webhook_pending(store_t *s, int64_t *pending);


#endif
