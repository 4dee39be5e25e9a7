/* The operations of the SQLite backend (store_internal.h states what each must do;
 * docs/store.md describes the schema and the change feed). sqlite_schema.c provides the
 * connections, the statement cache and the transactions.
 *
 * Statements: every SQL statement the store runs is in `store_sqlite_stmt_sql` below,
 * prepared lazily once per connection and reused (the hot per-request calls then cost one
 * step). The unit test runs EXPLAIN QUERY PLAN over this table, so a statement added here is
 * checked for full table scans automatically. */
#include "store/sqlite_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/uuid.h"

/* ---- statements ---- */

#define SESSION_COLUMNS                                                                        \
    "customer_id, session_key, session_id, api_name, status, target_url, end_url, navigations, " \
    "timestamp_ms, duration_ms, captcha, bandwidth, error_code, error_message, seq, updated_ms, worker"
#define SESSION_VALUES "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17"

const char *const store_sqlite_stmt_sql[STMT_COUNT] = {
    [STMT_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_CHANGE_SEQ] = "SELECT value FROM meta WHERE name = 'change_seq'",
    [STMT_CHANGE_SEQ_NEXT] = "UPDATE meta SET value = value + 1 WHERE name = 'change_seq' RETURNING value",
    [STMT_CHANGE_SEQ_SET] = "UPDATE meta SET value = ?1 WHERE name = 'change_seq'",
    [STMT_CUSTOMER_INSERT] = "INSERT INTO customers (customer_id, created_ms) VALUES (?1, ?2)",
    [STMT_CUSTOMER_EXISTS] = "SELECT 1 FROM customers WHERE customer_id = ?1",
    [STMT_CUSTOMER_COUNT] = "SELECT value FROM meta WHERE name = 'customer_count'",
    [STMT_CUSTOMER_COUNT_BUMP] = "UPDATE meta SET value = value + 1 WHERE name = 'customer_count'",
    [STMT_KEY_INSERT] = "INSERT INTO api_keys (key_id, customer_id, key_hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
    [STMT_KEY_LIST] = "SELECT key_id, created_ms, revoked_ms FROM api_keys WHERE customer_id = ?1 "
                      "ORDER BY created_ms, rowid",
    [STMT_KEY_REVOKE] = "UPDATE api_keys SET revoked_ms = ?2 WHERE key_id = ?1 AND revoked_ms IS NULL",
    [STMT_KEY_EXISTS] = "SELECT 1 FROM api_keys WHERE key_id = ?1",
    [STMT_KEY_AUTHENTICATE] = "SELECT customer_id, key_hash, revoked_ms FROM api_keys WHERE key_hash = ?1",
    [STMT_ZONE_INSERT] = "INSERT INTO zones (customer_id, name, salt, password_hash, created_ms) "
                         "VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_ZONE_CHECK] = "SELECT salt, password_hash, upstream_proxy FROM zones WHERE customer_id = ?1 AND name = ?2",
    [STMT_ZONE_SET_UPSTREAM] = "UPDATE zones SET upstream_proxy = ?3 WHERE customer_id = ?1 AND name = ?2",
    [STMT_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLUMNS ") VALUES (" SESSION_VALUES ")",
    [STMT_SESSION_UPSERT] =
        "INSERT INTO sessions (" SESSION_COLUMNS ") VALUES (" SESSION_VALUES ") "
        "ON CONFLICT (customer_id, session_key) DO UPDATE SET session_id = excluded.session_id, "
        "api_name = excluded.api_name, status = excluded.status, target_url = excluded.target_url, "
        "end_url = excluded.end_url, navigations = excluded.navigations, "
        "timestamp_ms = excluded.timestamp_ms, duration_ms = excluded.duration_ms, "
        "captcha = excluded.captcha, bandwidth = excluded.bandwidth, error_code = excluded.error_code, "
        "error_message = excluded.error_message, seq = excluded.seq, updated_ms = excluded.updated_ms, "
        "worker = excluded.worker",
    [STMT_SESSIONS_SINCE] =
        "SELECT customer_id, session_id, api_name, status, target_url, end_url, navigations, "
        "timestamp_ms, duration_ms, captcha, bandwidth, error_code, error_message, seq "
        "FROM sessions WHERE seq > ?1 ORDER BY seq",
    /* ?1 this node, ?2 now: its own previous life's sessions and those of workers without a
     * live lease (the partial index holds exactly the running sessions that have a worker) */
    [STMT_ORPHANS] = "SELECT customer_id, session_key FROM sessions INDEXED BY sessions_running_by_worker "
                     "WHERE status = 0 AND worker IS NOT NULL AND (worker = ?1 OR NOT EXISTS "
                     "(SELECT 1 FROM nodes WHERE nodes.node_id = sessions.worker AND nodes.lease_until_ms > ?2))",
    /* The duration runs to the last time the session was known alive (its last save). */
    [STMT_ORPHAN_FAIL] = "UPDATE sessions SET status = 2, duration_ms = MAX(0, updated_ms - timestamp_ms), "
                         "error_code = 'worker_disconnect', error_message = ?3, seq = ?4, worker = NULL "
                         "WHERE customer_id = ?1 AND session_key = ?2",
    [STMT_NODE_GET] = "SELECT host, pid, lease_until_ms FROM nodes WHERE node_id = ?1",
    [STMT_NODE_PUT] = "INSERT INTO nodes (node_id, host, pid, started_ms, lease_until_ms) VALUES (?1, ?2, ?3, ?4, ?5) "
                      "ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
                      "started_ms = excluded.started_ms, lease_until_ms = excluded.lease_until_ms",
    [STMT_NODE_HEARTBEAT] = "UPDATE nodes SET lease_until_ms = ?3 WHERE node_id = ?1 AND pid = ?2",
    [STMT_NODE_DELETE] = "DELETE FROM nodes WHERE node_id = ?1 AND pid = ?2",
    [STMT_NODES_EXPIRED] = "SELECT node_id FROM nodes WHERE lease_until_ms <= ?1",
    [STMT_NODE_DELETE_EXPIRED] = "DELETE FROM nodes WHERE node_id = ?1 AND lease_until_ms <= ?2",
    [STMT_WORKER_RUNNING] = "SELECT customer_id, session_key FROM sessions INDEXED BY sessions_running_by_worker "
                            "WHERE status = 0 AND worker = ?1",
    [STMT_SESSION_OWNER] = "SELECT status, worker, EXISTS (SELECT 1 FROM nodes WHERE nodes.node_id = sessions.worker "
                           "AND nodes.lease_until_ms > ?3) FROM sessions WHERE customer_id = ?1 AND session_key = ?2",
    [STMT_SESSION_END] = "UPDATE sessions SET status = 2, duration_ms = MAX(0, ?3 - timestamp_ms), error_code = ?4, "
                         "error_message = ?5, seq = ?6, updated_ms = ?3, worker = NULL "
                         "WHERE customer_id = ?1 AND session_key = ?2 AND status = 0",
    [STMT_PING] = "SELECT 1",
};

/* A single-integer query on a cached statement (text parameter ?1 optional). 0 with *value,
 * -ENOENT when there is no row, -EIO. */
static int query_int(store_conn_t *c, stmt_id_t id, const char *param, int64_t *value, char *err, size_t err_cap) {
    sqlite3_stmt *st = store_sqlite_stmt(c, id, err, err_cap);
    if (!st) return -EIO;
    if (param) sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int result;
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
        result = 0;
    } else if (rc == SQLITE_DONE) {
        result = -ENOENT;
    } else {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    return result;
}

/* A counter of the meta table; its row missing is a damaged database. */
static int read_meta(store_db_t *db, stmt_id_t stmt, const char *name, int64_t *value, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    int rc = c ? query_int(c, stmt, NULL, value, err, err_cap) : -EIO;
    if (rc == -ENOENT) {
        store_set_err(err, err_cap, "meta row %s is missing", name);
        rc = -EIO;
    }
    return rc;
}

/* A step that must finish: 0, or -EIO with SQLite's message. */
int store_sqlite_step_done(store_conn_t *c, sqlite3_stmt *st, char *err, size_t err_cap) {
    if (sqlite3_step(st) == SQLITE_DONE) return 0;
    store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
    return -EIO;
}

/* Steps and resets a cached insert or update: 0; -EEXIST when the row's key is taken;
 * -ENOENT when a row it refers to (the customer) does not exist; -EIO with SQLite's message. */
int store_sqlite_write_step(store_conn_t *c, sqlite3_stmt *st, char *err, size_t err_cap) {
    int rc = sqlite3_step(st), result = 0;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        result = -EEXIST;
    } else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        result = -ENOENT;
    } else if (rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    return result;
}

/* ---- customers ---- */

static int customer_add(store_db_t *db, const char *customer_id, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    if (store_sqlite_tx_begin(c, err, err_cap) != 0) return -EIO;
    int result = 0;
    sqlite3_stmt *st = store_sqlite_stmt(c, STMT_CUSTOMER_INSERT, err, err_cap);
    if (!st) {
        result = -EIO;
        goto cleanup;
    }
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, time_now_ms());
    result = store_sqlite_write_step(c, st, err, err_cap);
    if (result == 0) result = store_sqlite_run(c, STMT_CUSTOMER_COUNT_BUMP, err, err_cap);
cleanup:
    if (result == 0) return store_sqlite_tx_commit(c, err, err_cap);
    store_sqlite_tx_rollback(c);
    return result;
}

static int customer_exists(store_db_t *db, const char *customer_id, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    int64_t one;
    return c ? query_int(c, STMT_CUSTOMER_EXISTS, customer_id, &one, err, err_cap) : -EIO;
}

static int customer_count(store_db_t *db, int64_t *count, char *err, size_t err_cap) {
    return read_meta(db, STMT_CUSTOMER_COUNT, "customer_count", count, err, err_cap);
}

/* ---- API keys ---- */

static int key_add(store_db_t *db, const char *customer_id, const char *key_id, const uint8_t key_hash[STORE_HASH_LEN],
                   char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_KEY_INSERT, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, key_hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, time_now_ms());
    return store_sqlite_write_step(c, st, err, err_cap);
}

static int key_list(store_db_t *db, const char *customer_id, store_key_info_t **out, size_t *count, char *err,
                    size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    int64_t one;
    int rc = query_int(c, STMT_CUSTOMER_EXISTS, customer_id, &one, err, err_cap);
    if (rc != 0) return rc;
    sqlite3_stmt *st = store_sqlite_stmt(c, STMT_KEY_LIST, err, err_cap);
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    store_key_info_t *keys = NULL;
    size_t n = 0, cap = 0;
    int result = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t new_cap = cap ? cap * 2 : 8;
            store_key_info_t *grown = realloc(keys, new_cap * sizeof *grown);
            if (!grown) {
                result = -ENOMEM;
                break;
            }
            keys = grown;
            cap = new_cap;
        }
        store_key_info_t *k = &keys[n++];
        snprintf(k->key_id, sizeof k->key_id, "%s", (const char *)sqlite3_column_text(st, 0));
        k->created_ms = sqlite3_column_int64(st, 1);
        k->revoked = sqlite3_column_type(st, 2) != SQLITE_NULL;
    }
    if (result == 0 && rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    if (result != 0) {
        free(keys);
        return result;
    }
    *out = keys;
    *count = n;
    return 0;
}

static int key_revoke(store_db_t *db, const char *key_id, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_KEY_REVOKE, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, time_now_ms());
    int rc = store_sqlite_step_done(c, st, err, err_cap);
    sqlite3_reset(st);
    if (rc != 0) return rc;
    if (sqlite3_changes(c->db) > 0) return 0;
    /* Nothing changed: either no such key, or revoked already (which is fine: revoking is
     * idempotent and keeps the first revocation time). */
    int64_t one;
    return query_int(c, STMT_KEY_EXISTS, key_id, &one, err, err_cap);
}

static int key_authenticate(store_db_t *db, const uint8_t key_hash[STORE_HASH_LEN], char customer_out[STORE_ID_MAX + 1],
                            char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_KEY_AUTHENTICATE, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_blob(st, 1, key_hash, STORE_HASH_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(st), result = -ENOENT;
    if (rc == SQLITE_ROW) {
        result = store_key_row_check(key_hash, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                                     sqlite3_column_type(st, 2) != SQLITE_NULL,
                                     (const char *)sqlite3_column_text(st, 0), customer_out);
    } else if (rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    return result;
}

/* ---- zones ---- */

static int zone_add(store_db_t *db, const char *customer_id, const char *zone, const uint8_t salt[STORE_ZONE_SALT_LEN],
                    const uint8_t password_hash[STORE_HASH_LEN], char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_ZONE_INSERT, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, salt, STORE_ZONE_SALT_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, password_hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, time_now_ms());
    return store_sqlite_write_step(c, st, err, err_cap);
}

static int zone_authorize(store_db_t *db, const char *customer_id, const char *zone, const char *password,
                          char *upstream, size_t upstream_cap, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_ZONE_CHECK, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), result = -ENOENT;
    if (rc == SQLITE_ROW) {
        result = store_zone_row_check(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                                      sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), password,
                                      (const char *)sqlite3_column_text(st, 2), upstream, upstream_cap, err, err_cap);
    } else if (rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    return result;
}

static int zone_set_upstream(store_db_t *db, const char *customer_id, const char *zone, const char *url, char *err,
                             size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_ZONE_SET_UPSTREAM, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
    if (url) sqlite3_bind_text(st, 3, url, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 3);
    int result = store_sqlite_step_done(c, st, err, err_cap);
    if (result == 0 && sqlite3_changes(c->db) == 0) result = -ENOENT;
    sqlite3_reset(st);
    return result;
}

/* ---- sessions ---- */

static void bind_text_or_null(sqlite3_stmt *st, int index, const char *text) {
    if (text) sqlite3_bind_text(st, index, text, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, index);
}

/* Binds the 17 parameters of STMT_SESSION_INSERT / _UPSERT. Everything is bound STATIC:
 * the caller keeps `r` and `session_key` alive until the statement is reset. */
static void bind_session(sqlite3_stmt *st, const char *customer_id, const char *session_key,
                         const session_record_t *r, int64_t seq, int64_t now_ms, const char *worker) {
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, session_key, UUID_TEXT_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->session_id, UUID_TEXT_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->api_name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, (int)r->status);
    bind_text_or_null(st, 6, r->target_url);
    bind_text_or_null(st, 7, r->end_url);
    sqlite3_bind_int64(st, 8, r->navigations);
    sqlite3_bind_int64(st, 9, r->timestamp_ms);
    if (r->duration_ms == SESSION_DURATION_NULL) sqlite3_bind_null(st, 10);
    else sqlite3_bind_int64(st, 10, r->duration_ms);
    sqlite3_bind_int(st, 11, (int)r->captcha);
    sqlite3_bind_int64(st, 12, r->bandwidth);
    bind_text_or_null(st, 13, r->error_code);
    bind_text_or_null(st, 14, r->error_message);
    sqlite3_bind_int64(st, 15, seq);
    sqlite3_bind_int64(st, 16, now_ms);
    bind_text_or_null(st, 17, worker);
}

static int sessions_import(store_db_t *db, const char *customer_id, store_import_t *im, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *insert = store_sqlite_stmt(c, STMT_SESSION_INSERT, err, err_cap);
    if (!insert) return -EIO;
    store_sqlite_set_cache_kib(c, CACHE_KIB_IMPORT);
    int result = store_sqlite_tx_begin(c, err, err_cap);
    if (result != 0) goto restore_cache;

    int64_t one, seq = 0, count = 0;
    result = query_int(c, STMT_CUSTOMER_EXISTS, customer_id, &one, err, err_cap);
    if (result == 0) {
        result = query_int(c, STMT_CHANGE_SEQ, NULL, &seq, err, err_cap);
        if (result == -ENOENT) {
            store_set_err(err, err_cap, "meta row change_seq is missing");
            result = -EIO;
        }
    }
    /* One clock reading for the whole import: it is one change, made at one time. */
    int64_t now_ms = time_now_ms();
    while (result == 0) {
        const session_record_t *rec;
        const char *session_key;
        int more = store_import_next(im, &rec, &session_key, err, err_cap);
        if (more <= 0) {
            result = more;
            break;
        }
        bind_session(insert, customer_id, session_key, rec, seq + 1, now_ms, NULL);
        int rc = sqlite3_step(insert);
        if (rc == SQLITE_DONE) {
            seq++;
            count++;
        } else if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
            result = -EEXIST;
        } else {
            store_set_err(err, err_cap, "session %s: %s", rec->session_id, sqlite3_errmsg(c->db));
            result = -EIO;
        }
        sqlite3_reset(insert);
    }
    if (result == 0 && count > 0) {
        sqlite3_stmt *st = store_sqlite_stmt(c, STMT_CHANGE_SEQ_SET, err, err_cap);
        if (st) {
            sqlite3_bind_int64(st, 1, seq);
            result = store_sqlite_step_done(c, st, err, err_cap);
            sqlite3_reset(st);
        } else {
            result = -EIO;
        }
    }
    if (result == 0) result = store_sqlite_tx_commit(c, err, err_cap);
    else store_sqlite_tx_rollback(c);
restore_cache:
    /* Give the import's page cache back: this connection may live on in a long process. */
    store_sqlite_set_cache_kib(c, CACHE_KIB_DEFAULT);
    return result;
}

/* Takes the next store-wide change sequence number (inside the caller's transaction). */
int store_sqlite_next_seq(store_conn_t *c, sqlite3_stmt *next_seq, int64_t *seq, char *err, size_t err_cap) {
    int result = 0;
    int rc = sqlite3_step(next_seq);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(next_seq, 0);
        rc = sqlite3_step(next_seq);
    } else if (rc == SQLITE_DONE) {
        store_set_err(err, err_cap, "meta row change_seq is missing");
        result = -EIO;
    }
    if (result == 0 && rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(next_seq);
    return result;
}

static int session_save(store_db_t *db, const char *customer_id, const char *session_key, const session_record_t *rec,
                        const char *worker, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *upsert = store_sqlite_stmt(c, STMT_SESSION_UPSERT, err, err_cap);
    sqlite3_stmt *next_seq = store_sqlite_stmt(c, STMT_CHANGE_SEQ_NEXT, err, err_cap);
    if (!upsert || !next_seq || store_sqlite_tx_begin(c, err, err_cap) != 0) return -EIO;

    int64_t seq = 0;
    int result = store_sqlite_next_seq(c, next_seq, &seq, err, err_cap);
    if (result == 0) {
        bind_session(upsert, customer_id, session_key, rec, seq, time_now_ms(), worker);
        result = store_sqlite_write_step(c, upsert, err, err_cap);
    }
    if (result == 0) result = store_sqlite_tx_commit(c, err, err_cap);
    else store_sqlite_tx_rollback(c);
    return result;
}

/* Commits or rolls back by result; returns the result. */
int store_sqlite_tx_end(store_conn_t *c, int result, char *err, size_t err_cap) {
    if (result == 0) return store_sqlite_tx_commit(c, err, err_cap);
    store_sqlite_tx_rollback(c);
    return result;
}

static int sessions_save(store_db_t *db, const store_session_write_t *items, const char *const *keys, size_t n,
                         const char *worker, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *upsert = store_sqlite_stmt(c, STMT_SESSION_UPSERT, err, err_cap);
    sqlite3_stmt *next_seq = store_sqlite_stmt(c, STMT_CHANGE_SEQ_NEXT, err, err_cap);
    if (!upsert || !next_seq || store_sqlite_tx_begin(c, err, err_cap) != 0) return -EIO;
    int64_t now = time_now_ms();
    int result = 0;
    for (size_t i = 0; result == 0 && i < n; i++) {
        int64_t seq = 0;
        result = store_sqlite_next_seq(c, next_seq, &seq, err, err_cap);
        if (result != 0) break;
        bind_session(upsert, items[i].customer_id, keys[i], items[i].rec, seq, now, worker);
        result = store_sqlite_write_step(c, upsert, err, err_cap);
    }
    return store_sqlite_tx_end(c, result, err, err_cap);
}

static int change_seq(store_db_t *db, int64_t *seq, char *err, size_t err_cap) {
    return read_meta(db, STMT_CHANGE_SEQ, "change_seq", seq, err, err_cap);
}

const store_backend_t store_sqlite_backend = {
    .open = store_sqlite_open,
    .close = store_sqlite_close,
    .customer_add = customer_add,
    .customer_exists = customer_exists,
    .customer_count = customer_count,
    .key_add = key_add,
    .key_list = key_list,
    .key_revoke = key_revoke,
    .key_authenticate = key_authenticate,
    .zone_add = zone_add,
    .zone_authorize = zone_authorize,
    .zone_set_upstream = zone_set_upstream,
    .sessions_import = sessions_import,
    .session_save = session_save,
    .sessions_save = sessions_save,
    .sessions_fail_orphans = store_sqlite_sessions_fail_orphans,
    .node_register = store_sqlite_node_register,
    .node_heartbeat = store_sqlite_node_heartbeat,
    .node_release = store_sqlite_node_release,
    .nodes_reap = store_sqlite_nodes_reap,
    .session_owner = store_sqlite_session_owner,
    .session_end = store_sqlite_session_end,
    .ping = store_sqlite_ping,
    .change_seq = change_seq,
    .sessions_since = store_sqlite_sessions_since,
    .export_items = store_sqlite_export_items,
    .sessions_count = store_sqlite_sessions_count,
    .webhook_add = store_sqlite_webhook_add,
    .webhook_list = store_sqlite_webhook_list,
    .webhook_remove = store_sqlite_webhook_remove,
    .webhook_deliveries = store_sqlite_webhook_deliveries,
    .webhook_claim = store_sqlite_webhook_claim,
    .webhook_record = store_sqlite_webhook_record,
    .webhook_release = store_sqlite_webhook_release,
    .webhook_pending = store_sqlite_webhook_pending,
    .webhook_prune = store_sqlite_webhook_prune,
};
