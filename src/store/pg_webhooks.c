/* The webhook operations of the PostgreSQL backend (store_internal.h states what each must
 * do). Statements with parameters, not prepared ones: they run a few times a second at most.
 *
 * The claim is one statement: the due rows are locked FOR UPDATE SKIP LOCKED and leased to the
 * claimer (claimed_until_ms) in the same UPDATE, so two nodes polling at once take disjoint
 * rows, and a row stays theirs for the lease (a node that dies with it leaves it to the next
 * claim once the lease ran out: at least once). */
#include "store/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"

static int run(store_db_t *db, const char *sql, const pg_params_t *p, PGresult **out, char *err, size_t err_cap) {
    if (out) *out = NULL;
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    return c ? store_pg_exec_params(c, sql, p, out, err, err_cap) : -EIO;
}

static const char *text_or_empty(const PGresult *r, int row, int col) {
    const char *t = store_pg_text(r, row, col);
    return t ? t : "";
}

static int customer_known(store_db_t *db, const char *customer_id, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, customer_id);
    PGresult *r = NULL;
    int rc = run(db, "SELECT 1 FROM customers WHERE customer_id = $1", &p, &r, err, err_cap);
    if (rc == 0 && PQntuples(r) == 0) rc = -ENOENT;
    PQclear(r);
    return rc;
}

int store_pg_webhook_add(store_db_t *db, const char *customer_id, const char *webhook_id, const char *url,
                         const char *secret, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, webhook_id);
    store_pg_param_text(&p, customer_id);
    store_pg_param_text(&p, url);
    store_pg_param_text(&p, secret);
    store_pg_param_int(&p, time_now_ms());
    return run(db, "INSERT INTO webhooks (webhook_id, customer_id, url, secret, created_ms) VALUES ($1, $2, $3, $4, $5)",
               &p, NULL, err, err_cap);
}

int store_pg_webhook_list(store_db_t *db, const char *customer_id, store_webhook_info_t **out, size_t *count,
                          char *err, size_t err_cap) {
    int rc = customer_known(db, customer_id, err, err_cap);
    if (rc != 0) return rc;
    pg_params_t p = {0};
    store_pg_param_text(&p, customer_id);
    PGresult *r = NULL;
    rc = run(db, "SELECT webhook_id, url, created_ms FROM webhooks WHERE customer_id = $1 ORDER BY created_ms, webhook_id",
             &p, &r, err, err_cap);
    if (rc != 0) return rc;
    int n = PQntuples(r);
    store_webhook_info_t *items = n ? calloc((size_t)n, sizeof *items) : NULL;
    if (n && !items) {
        PQclear(r);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        snprintf(items[i].webhook_id, sizeof items[i].webhook_id, "%s", text_or_empty(r, i, 0));
        snprintf(items[i].url, sizeof items[i].url, "%s", text_or_empty(r, i, 1));
        items[i].created_ms = store_pg_int(r, i, 2);
    }
    PQclear(r);
    *out = items;
    *count = (size_t)n;
    return 0;
}

int store_pg_webhook_remove(store_db_t *db, const char *webhook_id, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, webhook_id);
    PGresult *r = NULL;
    /* The deliveries go with it (ON DELETE CASCADE), in the statement's own transaction. */
    int rc = run(db, "DELETE FROM webhooks WHERE webhook_id = $1", &p, &r, err, err_cap);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0) rc = -ENOENT;
    PQclear(r);
    return rc;
}

int store_pg_webhook_deliveries(store_db_t *db, const char *customer_id, size_t limit, store_delivery_info_t **out,
                                size_t *count, char *err, size_t err_cap) {
    int rc = customer_known(db, customer_id, err, err_cap);
    if (rc != 0) return rc;
    pg_params_t p = {0};
    store_pg_param_text(&p, customer_id);
    store_pg_param_int(&p, (int64_t)limit);
    PGresult *r = NULL;
    rc = run(db, "SELECT * FROM (SELECT d.delivery_id, d.webhook_id, s.session_id, d.state, d.attempts, d.created_ms, "
                 "d.next_attempt_ms, d.done_ms, d.last_status, d.last_error, d.id FROM webhook_deliveries d "
                 "JOIN sessions s ON s.customer_id = d.customer_id AND s.session_key = d.session_key "
                 "WHERE d.customer_id = $1 ORDER BY d.id DESC LIMIT $2) x ORDER BY id",
             &p, &r, err, err_cap);
    if (rc != 0) return rc;
    int n = PQntuples(r);
    store_delivery_info_t *items = n ? calloc((size_t)n, sizeof *items) : NULL;
    if (n && !items) {
        PQclear(r);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        store_delivery_info_t *d = &items[i];
        snprintf(d->delivery_id, sizeof d->delivery_id, "%s", text_or_empty(r, i, 0));
        snprintf(d->webhook_id, sizeof d->webhook_id, "%s", text_or_empty(r, i, 1));
        snprintf(d->session_id, sizeof d->session_id, "%s", text_or_empty(r, i, 2));
        d->state = (store_delivery_state_t)store_pg_int(r, i, 3);
        d->attempts = store_pg_int(r, i, 4);
        d->created_ms = store_pg_int(r, i, 5);
        d->next_attempt_ms = store_pg_int(r, i, 6);
        d->done_ms = PQgetisnull(r, i, 7) ? -1 : store_pg_int(r, i, 7);
        d->last_status = (int)store_pg_int(r, i, 8);
        snprintf(d->last_error, sizeof d->last_error, "%s", text_or_empty(r, i, 9));
    }
    PQclear(r);
    *out = items;
    *count = (size_t)n;
    return 0;
}

/* $1 now, $2 the most rows, $3 the lease's end, $4 the claimer. The due rows (as SQLite's
 * claim: not claimed now, the first pending one of their webhook and session), locked and
 * skipped when another claim holds them; returned with the session's 14 feed columns first. */
#define CLAIM_SQL                                                                                              \
    "WITH due AS (SELECT d.id FROM webhook_deliveries d WHERE d.state = 0 AND d.next_attempt_ms <= $1 "       \
    "AND d.claimed_until_ms <= $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e "                        \
    "WHERE e.webhook_id = d.webhook_id AND e.customer_id = d.customer_id AND e.session_key = d.session_key "  \
    "AND e.id < d.id AND e.state = 0) ORDER BY d.id LIMIT $2 FOR UPDATE SKIP LOCKED) "                        \
    "UPDATE webhook_deliveries d SET claimed_until_ms = $3, claimed_by = $4 FROM due, webhooks w, sessions s " \
    "WHERE d.id = due.id AND w.webhook_id = d.webhook_id AND s.customer_id = d.customer_id "                   \
    "AND s.session_key = d.session_key RETURNING s.customer_id, s.session_id, s.api_name, s.status, "          \
    "s.target_url, s.end_url, s.navigations, s.timestamp_ms, s.duration_ms, s.captcha, s.bandwidth, "          \
    "s.error_code, s.error_message, s.seq, d.delivery_id, d.webhook_id, w.url, w.secret, d.attempts, "          \
    "d.created_ms, d.id"

static int id_order(const void *a, const void *b) {
    const store_delivery_t *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

int store_pg_webhook_claim(store_db_t *db, const char *claimer, int64_t now, int64_t lease_until, size_t max,
                           store_delivery_t **out, size_t *count, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_int(&p, now);
    store_pg_param_int(&p, (int64_t)max);
    store_pg_param_int(&p, lease_until);
    store_pg_param_text(&p, claimer);
    PGresult *r = NULL;
    int rc = run(db, CLAIM_SQL, &p, &r, err, err_cap);
    if (rc != 0) return rc;
    int n = PQntuples(r);
    store_delivery_t *items = n ? calloc((size_t)n, sizeof *items) : NULL;
    if (n && !items) {
        PQclear(r);
        return -ENOMEM;
    }
    int got = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        session_record_t view;
        store_delivery_t *d = &items[i];
        if ((rc = store_pg_page_row(r, i, &view, err, err_cap)) != 0) break;
        if (session_record_copy(&d->rec, &view) != 0) {
            rc = -ENOMEM;
            break;
        }
        got++;
        snprintf(d->customer_id, sizeof d->customer_id, "%s", text_or_empty(r, i, 0));
        snprintf(d->delivery_id, sizeof d->delivery_id, "%s", text_or_empty(r, i, 14));
        snprintf(d->webhook_id, sizeof d->webhook_id, "%s", text_or_empty(r, i, 15));
        snprintf(d->url, sizeof d->url, "%s", text_or_empty(r, i, 16));
        snprintf(d->secret, sizeof d->secret, "%s", text_or_empty(r, i, 17));
        d->attempts = store_pg_int(r, i, 18);
        d->created_ms = store_pg_int(r, i, 19);
        d->order = store_pg_int(r, i, 20);
    }
    PQclear(r);
    if (rc != 0) {
        /* The rows stay leased until the lease ends: the next claim after it takes them. */
        store_webhook_claimed_free(items, (size_t)got);
        return rc;
    }
    /* UPDATE ... RETURNING has no order: oldest first, as the contract says. */
    if (n > 1) qsort(items, (size_t)n, sizeof *items, id_order);
    *out = items;
    *count = (size_t)n;
    return 0;
}

int store_pg_webhook_record(store_db_t *db, const char *delivery_id, const store_delivery_outcome_t *o, int64_t now,
                            char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, delivery_id);
    const char *sql;
    if (!o->counted) {
        sql = "UPDATE webhook_deliveries SET claimed_until_ms = 0, claimed_by = NULL WHERE delivery_id = $1 AND state = 0";
    } else if (o->delivered) {
        store_pg_param_int(&p, o->http_status);
        store_pg_param_int(&p, now);
        sql = "UPDATE webhook_deliveries SET state = 1, attempts = attempts + 1, last_status = $2, last_error = NULL, "
              "done_ms = $3, claimed_until_ms = 0, claimed_by = NULL WHERE delivery_id = $1 AND state = 0";
    } else {
        store_pg_param_int(&p, o->http_status);
        store_pg_param_int(&p, now);
        store_pg_param_text(&p, o->error);
        store_pg_param_int(&p, o->next_attempt_ms);
        sql = "UPDATE webhook_deliveries SET state = CASE WHEN $5::bigint < 0 THEN 2 ELSE 0 END, "
              "attempts = attempts + 1, last_status = $2, last_error = $4, "
              "next_attempt_ms = CASE WHEN $5::bigint < 0 THEN next_attempt_ms ELSE $5::bigint END, "
              "done_ms = CASE WHEN $5::bigint < 0 THEN $3::bigint END, claimed_until_ms = 0, claimed_by = NULL "
              "WHERE delivery_id = $1 AND state = 0";
    }
    return run(db, sql, &p, NULL, err, err_cap);
}

int store_pg_webhook_release(store_db_t *db, const char *claimer, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, claimer);
    return run(db, "UPDATE webhook_deliveries SET claimed_until_ms = 0, claimed_by = NULL "
                   "WHERE claimed_by = $1 AND state = 0", &p, NULL, err, err_cap);
}

int store_pg_webhook_prune(store_db_t *db, int64_t before_ms, int64_t *deleted, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_int(&p, before_ms);
    PGresult *r = NULL;
    int rc = run(db, "DELETE FROM webhook_deliveries WHERE state <> 0 AND done_ms < $1", &p, &r, err, err_cap);
    if (rc == 0) *deleted = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return rc;
}

int store_pg_webhook_pending(store_db_t *db, int64_t *pending, char *err, size_t err_cap) {
    pg_params_t p = {0};
    PGresult *r = NULL;
    int rc = run(db, "SELECT count(*) FROM webhook_deliveries WHERE state = 0", &p, &r, err, err_cap);
    if (rc == 0) *pending = store_pg_int(r, 0, 0);
    PQclear(r);
    return rc;
}
