/* The SQLite database of the store: its connections, their settings, the statement cache,
 * transactions, and the schema with its migrations (docs/store.md describes them).
 *
 * Connections: SQLite connections must not be shared between threads that use them at the
 * same time, and the daemon calls the store from several libuv worker threads at once. So
 * every calling thread gets its own connection, opened on first use and found again through
 * a pthread_key_t; the database keeps them all in a list and closes them in
 * store_sqlite_close. Pool threads live as long as the process, so a connection per thread
 * is bounded by the pool size; a thread that exits leaves its connection to
 * store_sqlite_close. */
#include "store/sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define WAL_SIZE_LIMIT_BYTES (64 * 1024 * 1024)

/* ---- schema ---- */

/* The trigger body of migration 4: one delivery per webhook of the session's customer, with a
 * random (version 4) UUID as its delivery id and the clock as its creation and first due time. */
#define SQLITE_ENQUEUE_DELIVERIES                                                                      \
    "INSERT INTO webhook_deliveries (delivery_id, webhook_id, customer_id, session_key, event, "        \
    "created_ms, next_attempt_ms) SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) " \
    "|| '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1) " \
    "|| substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))), w.webhook_id, "       \
    "NEW.customer_id, NEW.session_key, 'session.ended', "                                               \
    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), "                                      \
    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) "                                       \
    "FROM webhooks w WHERE w.customer_id = NEW.customer_id ORDER BY w.created_ms;"

/* One entry per schema version: migrations[i] takes a database from user_version i to i+1,
 * in its own transaction. Append only; never edit a step that has shipped. */
const char *const store_sqlite_migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE meta ("
    "  name TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    /* change_seq: the store-wide change sequence; customer_count: kept here so counting
     * customers is a lookup rather than a scan. */
    "INSERT INTO meta (name, value) VALUES ('change_seq', 0), ('customer_count', 0);"
    "CREATE TABLE customers ("
    "  customer_id TEXT PRIMARY KEY,"
    "  created_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE api_keys ("
    "  key_id TEXT PRIMARY KEY,"
    "  customer_id TEXT NOT NULL REFERENCES customers (customer_id),"
    "  key_hash BLOB NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER"
    ");"
    "CREATE INDEX api_keys_by_customer ON api_keys (customer_id, created_ms);"
    "CREATE TABLE zones ("
    "  customer_id TEXT NOT NULL REFERENCES customers (customer_id),"
    "  name TEXT NOT NULL,"
    "  salt BLOB NOT NULL,"
    "  password_hash BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  upstream_proxy TEXT,"
    "  PRIMARY KEY (customer_id, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE sessions ("
    "  customer_id TEXT NOT NULL REFERENCES customers (customer_id),"
    "  session_key TEXT NOT NULL,"
    "  session_id TEXT NOT NULL,"
    "  api_name TEXT NOT NULL,"
    "  status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 2),"
    "  target_url TEXT,"
    "  end_url TEXT,"
    "  navigations INTEGER NOT NULL,"
    "  timestamp_ms INTEGER NOT NULL,"
    "  duration_ms INTEGER,"
    "  captcha INTEGER NOT NULL CHECK (captcha BETWEEN 0 AND 3),"
    "  bandwidth INTEGER NOT NULL,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  seq INTEGER NOT NULL UNIQUE,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (customer_id, session_key)"
    ");",
    /* 2: which browserd process runs a session (NULL for imported ones), so that sessions a
     * stopped process left running can be told from imported running sessions. */
    "ALTER TABLE sessions ADD COLUMN worker TEXT;"
    "CREATE INDEX sessions_running_by_worker ON sessions (worker) WHERE status = 0 AND worker IS NOT NULL;",
    /* 3: the schema version table both backends keep (one row per step applied; PostgreSQL
     * has no user_version), and the nodes' leases: a session's worker is its node's id. */
    "CREATE TABLE schema_version ("
    "  version INTEGER PRIMARY KEY,"
    "  applied_ms INTEGER NOT NULL,"
    "  description TEXT NOT NULL"
    ");"
    "INSERT INTO schema_version (version, applied_ms, description) VALUES"
    "  (1, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'customers, keys, zones, sessions'),"
    "  (2, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'sessions.worker'),"
    "  (3, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'schema_version, nodes');"
    "CREATE TABLE nodes ("
    "  node_id TEXT PRIMARY KEY,"
    "  host TEXT NOT NULL,"
    "  pid INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  lease_until_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX nodes_by_lease ON nodes (lease_until_ms);",
    /* 4: webhooks and their outbox. The deliveries of a session's end are written by triggers
     * in the transaction that writes the end (store_webhooks.h says which writes those are),
     * so no code path can write one without the other. id: the order they were made in. */
    "INSERT INTO schema_version (version, applied_ms, description) VALUES"
    "  (4, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'webhooks, webhook_deliveries');"
    "CREATE TABLE webhooks ("
    "  webhook_id TEXT PRIMARY KEY,"
    "  customer_id TEXT NOT NULL REFERENCES customers (customer_id),"
    "  url TEXT NOT NULL,"
    "  secret TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX webhooks_by_customer ON webhooks (customer_id, created_ms);"
    "CREATE TABLE webhook_deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  delivery_id TEXT NOT NULL UNIQUE,"
    "  webhook_id TEXT NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,"
    "  customer_id TEXT NOT NULL,"
    "  session_key TEXT NOT NULL,"
    "  event TEXT NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  next_attempt_ms INTEGER NOT NULL,"
    "  claimed_until_ms INTEGER NOT NULL DEFAULT 0,"
    "  claimed_by TEXT,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  done_ms INTEGER"
    ");"
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE state = 0;"
    "CREATE INDEX webhook_deliveries_by_session ON webhook_deliveries (webhook_id, customer_id, session_key, id);"
    "CREATE INDEX webhook_deliveries_by_customer ON webhook_deliveries (customer_id, id);"
    "CREATE TRIGGER sessions_end_webhooks_insert AFTER INSERT ON sessions"
    "  WHEN NEW.status <> 0 AND NEW.worker IS NOT NULL BEGIN " SQLITE_ENQUEUE_DELIVERIES " END;"
    "CREATE TRIGGER sessions_end_webhooks_update AFTER UPDATE OF status ON sessions"
    "  WHEN OLD.status = 0 AND NEW.status <> 0 BEGIN " SQLITE_ENQUEUE_DELIVERIES " END;",
    /* 5: zone passwords through a slow KDF; the rows are rehashed by rehash_zones (C: the KDF
     * is no SQL function), in this step's transaction. */
    "INSERT INTO schema_version (version, applied_ms, description) VALUES"
    "  (5, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'zone passwords: PBKDF2');",
};
const int store_sqlite_migration_count = (int)(sizeof store_sqlite_migrations / sizeof store_sqlite_migrations[0]);
#define MIGRATION_COUNT store_sqlite_migration_count

/* ---- connections ---- */

static sqlite_db_t *sqlite_db(store_db_t *db) { return (sqlite_db_t *)db; }

static void conn_close(store_conn_t *c) {
    if (!c) return;
    for (int i = 0; i < STMT_COUNT; i++) sqlite3_finalize(c->stmts[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t err_cap) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    store_set_err(err, err_cap, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -EIO;
}

int store_sqlite_set_cache_kib(store_conn_t *c, int kib) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", kib);
    return exec_sql(c->db, sql, NULL, 0);
}

static int conn_open(const char *path, store_conn_t **out, char *err, size_t err_cap) {
    store_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        store_set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    /* NOMUTEX: a connection is only ever used by the thread that owns it. */
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        store_set_err(err, err_cap, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        conn_close(c);
        return -EIO;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);

    char reason[256] = "";
    sqlite3_stmt *st = NULL;
    /* journal_mode answers with the mode in force: a file system without shared memory
     * support silently stays in "delete" mode, which we would rather know about. */
    if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(c->db));
    } else {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            snprintf(reason, sizeof reason, "cannot switch to WAL mode (journal mode stays %s)", mode ? mode : "?");
    }
    sqlite3_finalize(st);
    if (!reason[0]) {
        /* journal_size_limit: a big import grows the WAL to the size of everything it wrote;
         * without a limit the file keeps that size for as long as anyone has the database
         * open (the server). With it, the WAL shrinks back after the next checkpoint. */
        char sql[200];
        snprintf(sql, sizeof sql,
                 "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -%d; "
                 "PRAGMA journal_size_limit = %d;",
                 CACHE_KIB_DEFAULT, WAL_SIZE_LIMIT_BYTES);
        exec_sql(c->db, sql, reason, sizeof reason);
    }
    if (reason[0]) {
        store_set_err(err, err_cap, "cannot open %s: %s", path, reason);
        conn_close(c);
        return -EIO;
    }
    *out = c;
    return 0;
}

store_conn_t *store_sqlite_conn(store_db_t *db, char *err, size_t err_cap) {
    sqlite_db_t *d = sqlite_db(db);
    store_conn_t *c = pthread_getspecific(d->thread_conn);
    if (c) return c;
    if (conn_open(d->path, &c, err, err_cap) != 0) return NULL;
    if (pthread_setspecific(d->thread_conn, c) != 0) {
        store_set_err(err, err_cap, "out of memory");
        conn_close(c);
        return NULL;
    }
    pthread_mutex_lock(&d->conns_lock);
    c->next = d->conns;
    d->conns = c;
    pthread_mutex_unlock(&d->conns_lock);
    return c;
}

/* ---- statements and transactions ---- */

sqlite3_stmt *store_sqlite_stmt(store_conn_t *c, stmt_id_t id, char *err, size_t err_cap) {
    if (!c->stmts[id] && sqlite3_prepare_v3(c->db, store_sqlite_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &c->stmts[id], NULL) != SQLITE_OK) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        return NULL;
    }
    return c->stmts[id];
}

int store_sqlite_run(store_conn_t *c, stmt_id_t id, char *err, size_t err_cap) {
    sqlite3_stmt *st = store_sqlite_stmt(c, id, err, err_cap);
    if (!st) return -EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

int store_sqlite_tx_begin(store_conn_t *c, char *err, size_t err_cap) {
    return store_sqlite_run(c, STMT_BEGIN_IMMEDIATE, err, err_cap);
}

int store_sqlite_tx_commit(store_conn_t *c, char *err, size_t err_cap) {
    int rc = store_sqlite_run(c, STMT_COMMIT, err, err_cap);
    if (rc != 0 && !sqlite3_get_autocommit(c->db)) store_sqlite_run(c, STMT_ROLLBACK, NULL, 0);
    return rc;
}

void store_sqlite_tx_rollback(store_conn_t *c) {
    /* SQLite may already have rolled back by itself (e.g. after SQLITE_FULL). */
    if (!sqlite3_get_autocommit(c->db)) store_sqlite_run(c, STMT_ROLLBACK, NULL, 0);
}

/* ---- open, migrate, close ---- */

/* Migration 4's rows: every zone's SHA-256(salt || password) becomes its KDF hash
 * (store_zone_password_upgrade), inside the migration's transaction: all or none. */
static int rehash_zones(sqlite3 *db, char *err, size_t err_cap) {
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int rc = SQLITE_OK;
    if (sqlite3_prepare_v2(db, "SELECT customer_id, name, salt, password_hash FROM zones", -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE zones SET password_hash = ?1 WHERE customer_id = ?2 AND name = ?3", -1, &upd, NULL) != SQLITE_OK) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(db));
        goto done;
    }
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        const void *salt = sqlite3_column_blob(sel, 2), *legacy = sqlite3_column_blob(sel, 3);
        int salt_len = sqlite3_column_bytes(sel, 2), legacy_len = sqlite3_column_bytes(sel, 3);
        uint8_t hash[STORE_HASH_LEN];
        if (!salt || !legacy || legacy_len != STORE_HASH_LEN) {
            store_set_err(err, err_cap, "zone %s of customer %s: a password hash of %d bytes",
                          (const char *)sqlite3_column_text(sel, 1), (const char *)sqlite3_column_text(sel, 0), legacy_len);
            rc = SQLITE_CORRUPT;
            goto done;
        }
        if (store_zone_password_upgrade(salt, (size_t)salt_len, legacy, hash) != 0) {
            store_set_err(err, err_cap, "the password KDF failed");
            rc = SQLITE_ERROR;
            goto done;
        }
        sqlite3_bind_blob(upd, 1, hash, STORE_HASH_LEN, SQLITE_TRANSIENT);
        sqlite3_bind_value(upd, 2, sqlite3_column_value(sel, 0));
        sqlite3_bind_value(upd, 3, sqlite3_column_value(sel, 1));
        if (sqlite3_step(upd) != SQLITE_DONE) {
            store_set_err(err, err_cap, "%s", sqlite3_errmsg(db));
            rc = SQLITE_ERROR;
            goto done;
        }
        sqlite3_reset(upd);
    }
    if (rc != SQLITE_DONE) store_set_err(err, err_cap, "%s", sqlite3_errmsg(db));
done:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static int read_user_version(sqlite3 *db, int64_t *version, char *err, size_t err_cap) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *version = sqlite3_column_int64(st, 0);
    else store_set_err(err, err_cap, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

/* Brings the schema to MIGRATION_COUNT, one step per transaction. The version is read again
 * inside each write transaction because another process may be migrating the same file. */
static int migrate(store_conn_t *c, char *err, size_t err_cap) {
    char reason[512] = "";
    int64_t version = 0;
    if (read_user_version(c->db, &version, reason, sizeof reason) != 0) goto failed;
    if (version > MIGRATION_COUNT) return store_schema_too_new(version, MIGRATION_COUNT, err, err_cap);
    while (version < MIGRATION_COUNT) {
        if (store_sqlite_tx_begin(c, reason, sizeof reason) != 0) goto failed;
        if (read_user_version(c->db, &version, reason, sizeof reason) != 0) goto rollback;
        if (version > MIGRATION_COUNT) {
            store_sqlite_tx_rollback(c);
            return store_schema_too_new(version, MIGRATION_COUNT, err, err_cap);
        }
        if (version == MIGRATION_COUNT) {
            store_sqlite_tx_rollback(c);
            break;
        }
        char set_version[64];
        snprintf(set_version, sizeof set_version, "PRAGMA user_version = %" PRId64, version + 1);
        if (exec_sql(c->db, store_sqlite_migrations[version], reason, sizeof reason) != 0 ||
            (version + 1 == 5 && rehash_zones(c->db, reason, sizeof reason) != 0) ||
            exec_sql(c->db, set_version, reason, sizeof reason) != 0 ||
            store_sqlite_tx_commit(c, reason, sizeof reason) != 0) {
            store_sqlite_tx_rollback(c);
            store_set_err(err, err_cap, "schema migration to version %" PRId64 " failed: %s", version + 1, reason);
            return -EIO;
        }
        version++;
    }
    return 0;
rollback:
    store_sqlite_tx_rollback(c);
failed:
    store_set_err(err, err_cap, "cannot read the schema version: %s", reason);
    return -EIO;
}

int store_sqlite_open(const char *target, store_db_t **out, char *err, size_t err_cap) {
    *out = NULL;
    if (strcmp(target, ":memory:") == 0) {
        /* Every thread has its own connection, and each would get a database of its own. */
        store_set_err(err, err_cap, "an in-memory database cannot be shared between threads; give a file path");
        return -EINVAL;
    }
    sqlite_db_t *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(target))) {
        free(d);
        store_set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    if (pthread_key_create(&d->thread_conn, NULL) != 0) {
        free(d->path);
        free(d);
        store_set_err(err, err_cap, "cannot create a thread key");
        return -EAGAIN;
    }
    pthread_mutex_init(&d->conns_lock, NULL);
    /* Created 0600 before SQLite creates it 0644: it holds key and password hashes and every
     * customer's sessions. SQLite gives the -wal and -shm files the main file's mode. An
     * existing file keeps the mode its operator gave it. */
    int fd = open(target, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    store_db_t *db = (store_db_t *)d;
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    int rc = c ? migrate(c, err, err_cap) : -EIO;
    if (rc != 0) {
        store_sqlite_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void store_sqlite_close(store_db_t *db) {
    sqlite_db_t *d = sqlite_db(db);
    if (!d) return;
    pthread_key_delete(d->thread_conn);
    pthread_mutex_lock(&d->conns_lock);
    store_conn_t *c = d->conns;
    d->conns = NULL;
    pthread_mutex_unlock(&d->conns_lock);
    while (c) {
        store_conn_t *next = c->next;
        conn_close(c);
        c = next;
    }
    pthread_mutex_destroy(&d->conns_lock);
    free(d->path);
    free(d);
}
