/* The SQLite store read whole or from a seq on: the change feed (sessions_since) and the
 * source side of `db copy` (export_items, sessions_count). Each read is one statement of its
 * own (not a cached one: the callback may call the store again on this thread), and one
 * SELECT is one read transaction, so what it delivers is a consistent snapshot. These reads
 * scan tables on purpose (a copy reads everything), so they are not in store_sqlite_stmt_sql,
 * whose statements the unit test requires to use an index. */
#include "store/sqlite_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/uuid.h"

/* The feed's columns; the export adds updated_ms and worker. */
#define FEED_COLUMNS                                                                          \
    "customer_id, session_id, api_name, status, target_url, end_url, navigations, "           \
    "timestamp_ms, duration_ms, captcha, bandwidth, error_code, error_message, seq"

static const char *const EXPORT_SQL[] = {
    [STORE_ITEM_CUSTOMER] = "SELECT customer_id, created_ms FROM customers ORDER BY customer_id",
    /* rowid: insertion order, key_list's tie-break, kept by the destination's insertion */
    [STORE_ITEM_KEY] = "SELECT customer_id, key_id, key_hash, created_ms, revoked_ms FROM api_keys ORDER BY rowid",
    [STORE_ITEM_ZONE] = "SELECT customer_id, name, salt, password_hash, created_ms, upstream_proxy FROM zones "
                        "ORDER BY customer_id, name",
    [STORE_ITEM_SESSION] = "SELECT " FEED_COLUMNS ", updated_ms, worker FROM sessions WHERE seq > ?1 ORDER BY seq",
};

static const char *column_text_or_null(sqlite3_stmt *st, int column) {
    return sqlite3_column_type(st, column) == SQLITE_NULL ? NULL : (const char *)sqlite3_column_text(st, column);
}

/* The FEED_COLUMNS of the current row as a record whose strings are SQLite's (valid until the
 * next step: the callback must copy what it keeps); -EIO for a row that cannot be a session. */
int store_sqlite_feed_row(sqlite3_stmt *st, session_record_t *rec, char *err, size_t err_cap) {
    memset(rec, 0, sizeof *rec);
    const char *customer = (const char *)sqlite3_column_text(st, 0);
    const char *session_id = (const char *)sqlite3_column_text(st, 1);
    int status = sqlite3_column_int(st, 3), captcha = sqlite3_column_int(st, 9);
    if (!customer || !session_id || strlen(session_id) != UUID_TEXT_LEN || status < 0 ||
        status >= SESSION_STATUS_COUNT || captcha < 0 || captcha > CAPTCHA_FAILED) {
        store_set_err(err, err_cap, "malformed session row (seq %" PRId64 ")", (int64_t)sqlite3_column_int64(st, 13));
        return -EIO;
    }
    memcpy(rec->session_id, session_id, UUID_TEXT_LEN + 1);
    rec->api_name = (char *)column_text_or_null(st, 2);
    rec->status = (session_status_t)status;
    rec->target_url = (char *)column_text_or_null(st, 4);
    rec->end_url = (char *)column_text_or_null(st, 5);
    rec->navigations = sqlite3_column_int64(st, 6);
    rec->timestamp_ms = sqlite3_column_int64(st, 7);
    rec->duration_ms = sqlite3_column_type(st, 8) == SQLITE_NULL ? SESSION_DURATION_NULL : sqlite3_column_int64(st, 8);
    rec->captcha = (captcha_t)captcha;
    rec->bandwidth = sqlite3_column_int64(st, 10);
    rec->error_code = (char *)column_text_or_null(st, 11);
    rec->error_message = (char *)column_text_or_null(st, 12);
    if (!rec->api_name) rec->api_name = (char *)"";
    return 0;
}

/* Prepares `sql` (binding after_seq to ?1 when it has one) on this thread's connection. */
static int prepare(store_db_t *db, const char *sql, int64_t after_seq, store_conn_t **conn, sqlite3_stmt **st,
                   char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        return -EIO;
    }
    if (sqlite3_bind_parameter_count(*st) > 0) sqlite3_bind_int64(*st, 1, after_seq);
    *conn = c;
    return 0;
}

/* Ends a read: the last step's code turned into the result (unless a row or callback failed). */
static int finish(store_conn_t *c, sqlite3_stmt *st, int rc, int result, char *err, size_t err_cap) {
    if (result == 0 && rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_finalize(st);
    return result;
}

int store_sqlite_sessions_since(store_db_t *db, int64_t after_seq, int64_t *last_seq, store_session_cb cb, void *ctx,
                                char *err, size_t err_cap) {
    /* Seqs are assigned and committed under the write lock, so no commit after this read can
     * carry a seq at or below the last one it delivers. */
    store_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int result = prepare(db, "SELECT " FEED_COLUMNS " FROM sessions WHERE seq > ?1 ORDER BY seq", after_seq, &c, &st,
                         err, err_cap);
    if (result != 0) return result;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        session_record_t rec;
        if ((result = store_sqlite_feed_row(st, &rec, err, err_cap)) != 0) break;
        if ((result = cb(ctx, (const char *)sqlite3_column_text(st, 0), &rec)) != 0) break;
        *last_seq = sqlite3_column_int64(st, 13);
    }
    return finish(c, st, rc, result, err, err_cap);
}

int store_sqlite_sessions_count(store_db_t *db, int64_t after_seq, int64_t *count, char *err, size_t err_cap) {
    store_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int result = prepare(db, "SELECT count(*) FROM sessions WHERE seq > ?1", after_seq, &c, &st, err, err_cap);
    if (result != 0) return result;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *count = sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    return finish(c, st, rc, 0, err, err_cap);
}

/* A blob column of exactly `len` bytes into out: 0, or -EIO naming the row. */
static int blob_of(sqlite3_stmt *st, int col, uint8_t *out, size_t len, const char *what, char *err, size_t err_cap) {
    const void *b = sqlite3_column_blob(st, col);
    if (!b || (size_t)sqlite3_column_bytes(st, col) != len) {
        store_set_err(err, err_cap, "malformed %s row (a hash or salt of another length)", what);
        return -EIO;
    }
    memcpy(out, b, len);
    return 0;
}

/* The current row of EXPORT_SQL[kind] as an item (strings borrowed from SQLite). */
static int export_row(sqlite3_stmt *st, store_item_kind_t kind, store_item_t *it, char *err, size_t err_cap) {
    memset(it, 0, sizeof *it);
    it->kind = kind;
    const char *customer = (const char *)sqlite3_column_text(st, 0);
    if (!customer || strlen(customer) > STORE_ID_MAX) {
        store_set_err(err, err_cap, "malformed row: customer id");
        return -EIO;
    }
    memcpy(it->customer_id, customer, strlen(customer) + 1);
    if (kind == STORE_ITEM_CUSTOMER) {
        it->created_ms = sqlite3_column_int64(st, 1);
    } else if (kind == STORE_ITEM_KEY) {
        const char *key_id = (const char *)sqlite3_column_text(st, 1);
        if (!key_id || strlen(key_id) != STORE_KEY_ID_LEN) {
            store_set_err(err, err_cap, "malformed api_keys row: key id");
            return -EIO;
        }
        memcpy(it->key_id, key_id, STORE_KEY_ID_LEN + 1);
        it->created_ms = sqlite3_column_int64(st, 3);
        it->revoked_ms = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4);
        return blob_of(st, 2, it->hash, STORE_HASH_LEN, "api_keys", err, err_cap);
    } else if (kind == STORE_ITEM_ZONE) {
        const char *zone = (const char *)sqlite3_column_text(st, 1);
        if (!zone || strlen(zone) > STORE_ZONE_MAX) {
            store_set_err(err, err_cap, "malformed zones row: zone name");
            return -EIO;
        }
        memcpy(it->zone, zone, strlen(zone) + 1);
        it->created_ms = sqlite3_column_int64(st, 4);
        it->upstream = (char *)column_text_or_null(st, 5);
        int rc = blob_of(st, 2, it->salt, STORE_ZONE_SALT_LEN, "zones", err, err_cap);
        return rc ? rc : blob_of(st, 3, it->hash, STORE_HASH_LEN, "zones", err, err_cap);
    } else {
        int rc = store_sqlite_feed_row(st, &it->rec, err, err_cap);
        it->seq = sqlite3_column_int64(st, 13);
        it->updated_ms = sqlite3_column_int64(st, 14);
        it->worker = (char *)column_text_or_null(st, 15);
        return rc;
    }
    return 0;
}

int store_sqlite_export_items(store_db_t *db, store_item_kind_t kind, int64_t after_seq, store_item_cb cb, void *ctx,
                              char *err, size_t err_cap) {
    store_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int result = prepare(db, EXPORT_SQL[kind], after_seq, &c, &st, err, err_cap);
    if (result != 0) return result;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_item_t it;
        if ((result = export_row(st, kind, &it, err, err_cap)) != 0) break;
        if ((result = cb(ctx, &it)) != 0) break;
    }
    return finish(c, st, rc, result, err, err_cap);
}
