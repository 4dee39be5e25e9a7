/* The webhook operations of the SQLite backend (store_internal.h states what each must do).
 * Each prepares its statement for the call rather than caching it: they run a few times a
 * second at most (the dispatcher's poll, one record per attempt, the command line), and the
 * SQL stays next to the code that binds it. A file is one node's database, so the claim's
 * write transaction (BEGIN IMMEDIATE) is all it takes to keep two claims apart. */
#include "store/sqlite_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"

#define DELIVERY_COLUMNS                                                                                 \
    "d.delivery_id, d.webhook_id, s.session_id, d.state, d.attempts, d.created_ms, d.next_attempt_ms, " \
    "d.done_ms, d.last_status, d.last_error"

static int prepare(store_conn_t *c, const char *sql, sqlite3_stmt **st, char *err, size_t err_cap) {
    *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) == SQLITE_OK) return 0;
    store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
    return -EIO;
}

static const char *text_or_empty(sqlite3_stmt *st, int col) {
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? t : "";
}

/* Grows an array of `size`-byte items to hold one more; -ENOMEM. */
static int grow(void **items, size_t n, size_t *cap, size_t size) {
    if (n < *cap) return 0;
    size_t new_cap = *cap ? *cap * 2 : 8;
    void *grown = realloc(*items, new_cap * size);
    if (!grown) return -ENOMEM;
    *items = grown;
    *cap = new_cap;
    return 0;
}

static int customer_known(store_conn_t *c, const char *customer_id, char *err, size_t err_cap) {
    sqlite3_stmt *st;
    if (prepare(c, "SELECT 1 FROM customers WHERE customer_id = ?1", &st, err, err_cap) != 0) return -EIO;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), result = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
    if (result == -EIO) store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    return result;
}

int store_sqlite_webhook_add(store_db_t *db, const char *customer_id, const char *webhook_id, const char *url,
                             const char *secret, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st;
    if (!c || prepare(c, "INSERT INTO webhooks (webhook_id, customer_id, url, secret, created_ms) "
                         "VALUES (?1, ?2, ?3, ?4, ?5)", &st, err, err_cap) != 0)
        return -EIO;
    sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, secret, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, time_now_ms());
    int rc = store_sqlite_write_step(c, st, err, err_cap);
    sqlite3_finalize(st);
    return rc;
}

int store_sqlite_webhook_list(store_db_t *db, const char *customer_id, store_webhook_info_t **out, size_t *count,
                              char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    int rc = customer_known(c, customer_id, err, err_cap);
    sqlite3_stmt *st;
    if (rc != 0) return rc;
    if (prepare(c, "SELECT webhook_id, url, created_ms FROM webhooks WHERE customer_id = ?1 "
                   "ORDER BY created_ms, webhook_id", &st, err, err_cap) != 0)
        return -EIO;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    store_webhook_info_t *items = NULL;
    size_t n = 0, cap = 0;
    int result = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((result = grow((void **)&items, n, &cap, sizeof *items)) != 0) break;
        store_webhook_info_t *w = &items[n++];
        snprintf(w->webhook_id, sizeof w->webhook_id, "%s", text_or_empty(st, 0));
        snprintf(w->url, sizeof w->url, "%s", text_or_empty(st, 1));
        w->created_ms = sqlite3_column_int64(st, 2);
    }
    if (result == 0 && rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_finalize(st);
    if (result != 0) {
        free(items);
        return result;
    }
    *out = items;
    *count = n;
    return 0;
}

int store_sqlite_webhook_remove(store_db_t *db, const char *webhook_id, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st;
    /* The deliveries go with it (ON DELETE CASCADE), in the statement's own transaction. */
    if (!c || prepare(c, "DELETE FROM webhooks WHERE webhook_id = ?1", &st, err, err_cap) != 0) return -EIO;
    sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
    int rc = store_sqlite_step_done(c, st, err, err_cap);
    sqlite3_finalize(st);
    if (rc == 0 && sqlite3_changes(c->db) == 0) rc = -ENOENT;
    return rc;
}

int store_sqlite_webhook_deliveries(store_db_t *db, const char *customer_id, size_t limit, store_delivery_info_t **out,
                                    size_t *count, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    int rc = customer_known(c, customer_id, err, err_cap);
    sqlite3_stmt *st;
    if (rc != 0) return rc;
    if (prepare(c, "SELECT * FROM (SELECT " DELIVERY_COLUMNS ", d.id FROM webhook_deliveries d JOIN sessions s "
                   "ON s.customer_id = d.customer_id AND s.session_key = d.session_key WHERE d.customer_id = ?1 "
                   "ORDER BY d.id DESC LIMIT ?2) ORDER BY id", &st, err, err_cap) != 0)
        return -EIO;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    store_delivery_info_t *items = NULL;
    size_t n = 0, cap = 0;
    int result = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((result = grow((void **)&items, n, &cap, sizeof *items)) != 0) break;
        store_delivery_info_t *d = &items[n++];
        snprintf(d->delivery_id, sizeof d->delivery_id, "%s", text_or_empty(st, 0));
        snprintf(d->webhook_id, sizeof d->webhook_id, "%s", text_or_empty(st, 1));
        snprintf(d->session_id, sizeof d->session_id, "%s", text_or_empty(st, 2));
        d->state = (store_delivery_state_t)sqlite3_column_int(st, 3);
        d->attempts = sqlite3_column_int64(st, 4);
        d->created_ms = sqlite3_column_int64(st, 5);
        d->next_attempt_ms = sqlite3_column_int64(st, 6);
        d->done_ms = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 7);
        d->last_status = sqlite3_column_int(st, 8);
        snprintf(d->last_error, sizeof d->last_error, "%s", text_or_empty(st, 9));
    }
    if (result == 0 && rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_finalize(st);
    if (result != 0) {
        free(items);
        return result;
    }
    *out = items;
    *count = n;
    return 0;
}

/* The due deliveries, oldest first: not claimed now, and the first pending one of their
 * webhook and session (a later one waits for it: in order per session). Columns: the
 * session's 14 feed columns, then the delivery's. */
#define CLAIM_SELECT                                                                                         \
    "SELECT s.customer_id, s.session_id, s.api_name, s.status, s.target_url, s.end_url, s.navigations, "    \
    "s.timestamp_ms, s.duration_ms, s.captcha, s.bandwidth, s.error_code, s.error_message, s.seq, "          \
    "d.delivery_id, d.webhook_id, w.url, w.secret, d.attempts, d.created_ms, d.id "                          \
    "FROM webhook_deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id "                             \
    "JOIN sessions s ON s.customer_id = d.customer_id AND s.session_key = d.session_key "                   \
    "WHERE d.state = 0 AND d.next_attempt_ms <= ?1 AND d.claimed_until_ms <= ?1 AND NOT EXISTS "            \
    "(SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id AND e.customer_id = d.customer_id " \
    "AND e.session_key = d.session_key AND e.id < d.id AND e.state = 0) ORDER BY d.id LIMIT ?2"

static int claim_row(sqlite3_stmt *st, store_delivery_t *d, char *err, size_t err_cap) {
    session_record_t view;
    int rc = store_sqlite_feed_row(st, &view, err, err_cap);
    if (rc != 0) return rc;
    memset(d, 0, sizeof *d);
    if (session_record_copy(&d->rec, &view) != 0) {
        store_set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    snprintf(d->customer_id, sizeof d->customer_id, "%s", text_or_empty(st, 0));
    snprintf(d->delivery_id, sizeof d->delivery_id, "%s", text_or_empty(st, 14));
    snprintf(d->webhook_id, sizeof d->webhook_id, "%s", text_or_empty(st, 15));
    snprintf(d->url, sizeof d->url, "%s", text_or_empty(st, 16));
    snprintf(d->secret, sizeof d->secret, "%s", text_or_empty(st, 17));
    d->attempts = sqlite3_column_int64(st, 18);
    d->created_ms = sqlite3_column_int64(st, 19);
    d->order = sqlite3_column_int64(st, 20);
    return 0;
}

int store_sqlite_webhook_claim(store_db_t *db, const char *claimer, int64_t now, int64_t lease_until, size_t max,
                               store_delivery_t **out, size_t *count, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *sel = NULL, *upd = NULL;
    store_delivery_t *items = NULL;
    size_t n = 0, cap = 0;
    int result = store_sqlite_tx_begin(c, err, err_cap);
    if (result != 0) return result;
    if ((result = prepare(c, CLAIM_SELECT, &sel, err, err_cap)) != 0 ||
        (result = prepare(c, "UPDATE webhook_deliveries SET claimed_until_ms = ?2, claimed_by = ?3 WHERE id = ?1",
                          &upd, err, err_cap)) != 0)
        goto cleanup;
    sqlite3_bind_int64(sel, 1, now);
    sqlite3_bind_int64(sel, 2, (sqlite3_int64)max);
    int rc;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        if ((result = grow((void **)&items, n, &cap, sizeof *items)) != 0) goto cleanup;
        if ((result = claim_row(sel, &items[n], err, err_cap)) != 0) goto cleanup;
        n++;
        sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 20));
        sqlite3_bind_int64(upd, 2, lease_until);
        sqlite3_bind_text(upd, 3, claimer, -1, SQLITE_STATIC);
        if ((result = store_sqlite_step_done(c, upd, err, err_cap)) != 0) goto cleanup;
        sqlite3_reset(upd);
    }
    if (rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
cleanup:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    if (result == 0) result = store_sqlite_tx_commit(c, err, err_cap);
    else store_sqlite_tx_rollback(c);
    if (result != 0) {
        store_webhook_claimed_free(items, n);
        return result;
    }
    *out = items;
    *count = n;
    return 0;
}

int store_sqlite_webhook_record(store_db_t *db, const char *delivery_id, const store_delivery_outcome_t *o, int64_t now,
                                char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *st;
    const char *sql;
    if (!o->counted)
        sql = "UPDATE webhook_deliveries SET claimed_until_ms = 0, claimed_by = NULL WHERE delivery_id = ?1 AND state = 0";
    else if (o->delivered)
        sql = "UPDATE webhook_deliveries SET state = 1, attempts = attempts + 1, last_status = ?2, last_error = NULL, "
              "done_ms = ?4, claimed_until_ms = 0, claimed_by = NULL WHERE delivery_id = ?1 AND state = 0";
    else
        sql = "UPDATE webhook_deliveries SET state = CASE WHEN ?5 < 0 THEN 2 ELSE 0 END, attempts = attempts + 1, "
              "last_status = ?2, last_error = ?3, next_attempt_ms = CASE WHEN ?5 < 0 THEN next_attempt_ms ELSE ?5 END, "
              "done_ms = CASE WHEN ?5 < 0 THEN ?4 END, claimed_until_ms = 0, claimed_by = NULL "
              "WHERE delivery_id = ?1 AND state = 0";
    if (prepare(c, sql, &st, err, err_cap) != 0) return -EIO;
    sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
    if (o->counted) {
        sqlite3_bind_int(st, 2, o->http_status);
        sqlite3_bind_int64(st, 4, now);
        if (!o->delivered) {
            sqlite3_bind_text(st, 3, o->error, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 5, o->next_attempt_ms);
        }
    }
    int rc = store_sqlite_step_done(c, st, err, err_cap);
    sqlite3_finalize(st);
    return rc;
}

int store_sqlite_webhook_release(store_db_t *db, const char *claimer, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st;
    if (!c || prepare(c, "UPDATE webhook_deliveries SET claimed_until_ms = 0, claimed_by = NULL "
                         "WHERE claimed_by = ?1 AND state = 0", &st, err, err_cap) != 0)
        return -EIO;
    sqlite3_bind_text(st, 1, claimer, -1, SQLITE_STATIC);
    int rc = store_sqlite_step_done(c, st, err, err_cap);
    sqlite3_finalize(st);
    return rc;
}

int store_sqlite_webhook_prune(store_db_t *db, int64_t before_ms, int64_t *deleted, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st;
    if (!c || prepare(c, "DELETE FROM webhook_deliveries WHERE state <> 0 AND done_ms < ?1", &st, err, err_cap) != 0)
        return -EIO;
    sqlite3_bind_int64(st, 1, before_ms);
    int rc = store_sqlite_step_done(c, st, err, err_cap);
    sqlite3_finalize(st);
    if (rc == 0) *deleted = sqlite3_changes(c->db);
    return rc;
}

int store_sqlite_webhook_pending(store_db_t *db, int64_t *pending, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st;
    if (!c || prepare(c, "SELECT count(*) FROM webhook_deliveries WHERE state = 0", &st, err, err_cap) != 0) return -EIO;
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
    if (rc == 0) *pending = sqlite3_column_int64(st, 0);
    else store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    return rc;
}
