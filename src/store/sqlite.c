/* The SQLite backend of store.h (docs/store.md describes the schema and the change feed).
 *
 * Connections: SQLite connections must not be shared between threads that use them at the
 * same time, and the daemon calls the store from several libuv worker threads at once. So
 * every calling thread gets its own connection, opened on first use and found again through
 * a pthread_key_t; the store keeps them all in a list and closes them in store_close. Pool
 * threads live as long as the process, so a connection per thread is bounded by the pool
 * size; a thread that exits leaves its connection to store_close.
 *
 * Statements: every SQL statement the store runs is in `stmt_sql` below, prepared lazily
 * once per connection and reused (the hot per-request calls then cost one step). The unit
 * test runs EXPLAIN QUERY PLAN over this table, so a statement added here is checked for
 * full table scans automatically. */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/timeutil.h"
#include "core/uuid.h"

#define SHA256_LEN 32
#define API_KEY_RANDOM_BYTES 32
#define KEY_ID_RANDOM_BYTES 6
#define ZONE_SALT_LEN 16
#define BUSY_TIMEOUT_MS 5000
/* Page cache (KiB) of an ordinary connection, and of one running a bulk import. An import
 * writes the whole sessions table and its two indexes in one transaction; with the default
 * cache, pages spill to the WAL and are read back again and again. Measured on 1.2M rows in
 * random id order: 16 MiB costs a quarter more time, 128 MiB is as fast as 512 MiB. */
#define CACHE_KIB_DEFAULT 16384
#define CACHE_KIB_IMPORT 131072
#define WAL_SIZE_LIMIT_BYTES (64 * 1024 * 1024)

/* ---- schema ---- */

/* One entry per schema version: migrations[i] takes a database from user_version i to i+1,
 * in its own transaction. Append only; never edit a step that has shipped. */
static const char *const migrations[] = {
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
};
#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- statements ---- */

typedef enum {
    STMT_BEGIN_IMMEDIATE,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_CHANGE_SEQ,
    STMT_CHANGE_SEQ_NEXT,
    STMT_CHANGE_SEQ_SET,
    STMT_CUSTOMER_INSERT,
    STMT_CUSTOMER_EXISTS,
    STMT_CUSTOMER_COUNT,
    STMT_CUSTOMER_COUNT_BUMP,
    STMT_KEY_INSERT,
    STMT_KEY_LIST,
    STMT_KEY_REVOKE,
    STMT_KEY_EXISTS,
    STMT_KEY_AUTHENTICATE,
    STMT_ZONE_INSERT,
    STMT_ZONE_CHECK,
    STMT_ZONE_SET_UPSTREAM,
    STMT_SESSION_INSERT,
    STMT_SESSION_UPSERT,
    STMT_SESSIONS_SINCE,
    STMT_ORPHANS,
    STMT_ORPHAN_FAIL,
    STMT_COUNT
} stmt_id_t;

#define SESSION_COLUMNS                                                                        \
    "customer_id, session_key, session_id, api_name, status, target_url, end_url, navigations, " \
    "timestamp_ms, duration_ms, captcha, bandwidth, error_code, error_message, seq, updated_ms, worker"
#define SESSION_VALUES "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17"

static const char *const stmt_sql[STMT_COUNT] = {
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
    [STMT_ORPHANS] = "SELECT customer_id, session_key FROM sessions WHERE status = 0 AND worker IS NOT NULL",
    /* The duration runs to the last time the session was known alive (its last save). */
    [STMT_ORPHAN_FAIL] = "UPDATE sessions SET status = 2, duration_ms = MAX(0, updated_ms - timestamp_ms), "
                         "error_code = 'worker_disconnect', error_message = ?3, seq = ?4, worker = NULL "
                         "WHERE customer_id = ?1 AND session_key = ?2",
};

/* ---- the store ---- */

typedef struct store_conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[STMT_COUNT];
    struct store_conn *next;
} store_conn_t;

struct store {
    char *path;
    pthread_key_t thread_conn; /* this thread's store_conn_t, or NULL before its first call */
    pthread_mutex_t conns_lock;
    store_conn_t *conns;       /* every connection opened, for store_close */
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t err_cap, const char *fmt, ...) {
    if (!err || err_cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

/* The functions of store.h without an err parameter still owe the operator a reason when the
 * database fails: it goes to the log. */
static void log_failure(const char *op, const char *reason) {
    fprintf(stderr, "level=error module=store op=%s error=\"%s\"\n", op, reason);
}

static int fill_random(void *buf, size_t len) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void hex_encode(const uint8_t *in, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* SHA-256 of a‖b (b may be empty). */
static int sha256_two(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t out[SHA256_LEN]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int out_len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, a, a_len) == 1 &&
             (b_len == 0 || EVP_DigestUpdate(ctx, b, b_len) == 1) && EVP_DigestFinal_ex(ctx, out, &out_len) == 1 &&
             out_len == SHA256_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -EIO;
}

static bool valid_name(const char *s, size_t max_len) {
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= max_len || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return n > 0;
}

bool store_valid_customer_id(const char *id) { return valid_name(id, STORE_ID_MAX); }
bool store_valid_zone_name(const char *zone) { return valid_name(zone, STORE_ZONE_MAX); }

static bool valid_key_id(const char *key_id) {
    if (!key_id || strlen(key_id) != STORE_KEY_ID_LEN || memcmp(key_id, "key_", 4) != 0) return false;
    for (size_t i = 4; i < STORE_KEY_ID_LEN; i++)
        if (!((key_id[i] >= '0' && key_id[i] <= '9') || (key_id[i] >= 'a' && key_id[i] <= 'f'))) return false;
    return true;
}

/* ---- connections ---- */

static void conn_close(store_conn_t *c) {
    if (!c) return;
    for (int i = 0; i < STMT_COUNT; i++) sqlite3_finalize(c->stmts[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t err_cap) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    set_err(err, err_cap, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -EIO;
}

static int set_cache_kib(sqlite3 *db, int kib) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", kib);
    return exec_sql(db, sql, NULL, 0);
}

static int conn_open(const char *path, store_conn_t **out, char *err, size_t err_cap) {
    store_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    /* NOMUTEX: a connection is only ever used by the thread that owns it. */
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, err_cap, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
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
        set_err(err, err_cap, "cannot open %s: %s", path, reason);
        conn_close(c);
        return -EIO;
    }
    *out = c;
    return 0;
}

/* This thread's connection, opened on first use. */
static store_conn_t *conn_get(store_t *s, char *err, size_t err_cap) {
    store_conn_t *c = pthread_getspecific(s->thread_conn);
    if (c) return c;
    if (conn_open(s->path, &c, err, err_cap) != 0) return NULL;
    if (pthread_setspecific(s->thread_conn, c) != 0) {
        set_err(err, err_cap, "out of memory");
        conn_close(c);
        return NULL;
    }
    pthread_mutex_lock(&s->conns_lock);
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->conns_lock);
    return c;
}

/* A cached statement, reset and ready to bind. */
static sqlite3_stmt *stmt_get(store_conn_t *c, stmt_id_t id, char *err, size_t err_cap) {
    if (!c->stmts[id] &&
        sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id], NULL) != SQLITE_OK) {
        set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        return NULL;
    }
    return c->stmts[id];
}

/* Runs a cached statement that returns no row we need; 0 or -EIO with SQLite's message. */
static int stmt_run(store_conn_t *c, stmt_id_t id, char *err, size_t err_cap) {
    sqlite3_stmt *st = stmt_get(c, id, err, err_cap);
    if (!st) return -EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

static int tx_begin(store_conn_t *c, char *err, size_t err_cap) { return stmt_run(c, STMT_BEGIN_IMMEDIATE, err, err_cap); }

static int tx_commit(store_conn_t *c, char *err, size_t err_cap) {
    int rc = stmt_run(c, STMT_COMMIT, err, err_cap);
    if (rc != 0 && !sqlite3_get_autocommit(c->db)) stmt_run(c, STMT_ROLLBACK, NULL, 0);
    return rc;
}

static void tx_rollback(store_conn_t *c) {
    /* SQLite may already have rolled back by itself (e.g. after SQLITE_FULL). */
    if (!sqlite3_get_autocommit(c->db)) stmt_run(c, STMT_ROLLBACK, NULL, 0);
}

/* A single-integer query on a cached statement (text parameter ?1 optional). 0 with *value,
 * -ENOENT when there is no row, -EIO. */
static int query_int(store_conn_t *c, stmt_id_t id, const char *param, int64_t *value, char *err, size_t err_cap) {
    sqlite3_stmt *st = stmt_get(c, id, err, err_cap);
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
        set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    return result;
}

/* ---- open, migrate, close ---- */

static int read_user_version(sqlite3 *db, int64_t *version, char *err, size_t err_cap) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *version = sqlite3_column_int64(st, 0);
    else set_err(err, err_cap, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

static int refuse_newer(int64_t version, char *err, size_t err_cap) {
    set_err(err, err_cap,
            "the database has schema version %" PRId64 ", newer than this browserd knows (%d); "
            "use the browserd release that wrote it or a later one",
            version, MIGRATION_COUNT);
    return -EIO;
}

/* Brings the schema to MIGRATION_COUNT, one step per transaction. The version is read again
 * inside each write transaction because another process may be migrating the same file. */
static int migrate(store_conn_t *c, char *err, size_t err_cap) {
    char reason[512] = "";
    int64_t version = 0;
    if (read_user_version(c->db, &version, reason, sizeof reason) != 0) goto failed;
    if (version > MIGRATION_COUNT) return refuse_newer(version, err, err_cap);
    while (version < MIGRATION_COUNT) {
        if (tx_begin(c, reason, sizeof reason) != 0) goto failed;
        if (read_user_version(c->db, &version, reason, sizeof reason) != 0) goto rollback;
        if (version > MIGRATION_COUNT) {
            tx_rollback(c);
            return refuse_newer(version, err, err_cap);
        }
        if (version == MIGRATION_COUNT) {
            tx_rollback(c);
            break;
        }
        char set_version[64];
        snprintf(set_version, sizeof set_version, "PRAGMA user_version = %" PRId64, version + 1);
        if (exec_sql(c->db, migrations[version], reason, sizeof reason) != 0 ||
            exec_sql(c->db, set_version, reason, sizeof reason) != 0 || tx_commit(c, reason, sizeof reason) != 0) {
            tx_rollback(c);
            set_err(err, err_cap, "schema migration to version %" PRId64 " failed: %s", version + 1, reason);
            return -EIO;
        }
        version++;
    }
    return 0;
rollback:
    tx_rollback(c);
failed:
    set_err(err, err_cap, "cannot read the schema version: %s", reason);
    return -EIO;
}

int store_open(const char *target, store_t **out, char *err, size_t err_cap) {
    *out = NULL;
    if (!target || !*target) {
        set_err(err, err_cap, "no database given");
        return -EINVAL;
    }
    if (strcmp(target, ":memory:") == 0) {
        /* Every thread has its own connection, and each would get a database of its own. */
        set_err(err, err_cap, "an in-memory database cannot be shared between threads; give a file path");
        return -EINVAL;
    }
    if (strncmp(target, "postgres://", 11) == 0 || strncmp(target, "postgresql://", 13) == 0) {
        set_err(err, err_cap, "PostgreSQL databases are not supported by this build; give a SQLite file path");
        return -EINVAL;
    }
    store_t *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(target))) {
        free(s);
        set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    if (pthread_key_create(&s->thread_conn, NULL) != 0) {
        free(s->path);
        free(s);
        set_err(err, err_cap, "cannot create a thread key");
        return -EAGAIN;
    }
    pthread_mutex_init(&s->conns_lock, NULL);
    store_conn_t *c = conn_get(s, err, err_cap);
    int rc = c ? migrate(c, err, err_cap) : -EIO;
    if (rc != 0) {
        store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void store_close(store_t *s) {
    if (!s) return;
    pthread_key_delete(s->thread_conn);
    pthread_mutex_lock(&s->conns_lock);
    store_conn_t *c = s->conns;
    s->conns = NULL;
    pthread_mutex_unlock(&s->conns_lock);
    while (c) {
        store_conn_t *next = c->next;
        conn_close(c);
        c = next;
    }
    pthread_mutex_destroy(&s->conns_lock);
    free(s->path);
    free(s);
}

/* ---- customers ---- */

int store_customer_add(store_t *s, const char *customer_id, char *err, size_t err_cap) {
    if (!store_valid_customer_id(customer_id)) {
        set_err(err, err_cap, "invalid customer id (expected [a-z0-9_]{1,32})");
        return -EINVAL;
    }
    store_conn_t *c = conn_get(s, err, err_cap);
    if (!c) return -EIO;
    if (tx_begin(c, err, err_cap) != 0) return -EIO;
    int result = 0;
    sqlite3_stmt *st = stmt_get(c, STMT_CUSTOMER_INSERT, err, err_cap);
    if (!st) {
        result = -EIO;
        goto cleanup;
    }
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, time_now_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        set_err(err, err_cap, "customer %s already exists", customer_id);
        result = -EEXIST;
    } else if (rc != SQLITE_DONE) {
        set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    if (result == 0) result = stmt_run(c, STMT_CUSTOMER_COUNT_BUMP, err, err_cap);
cleanup:
    if (result == 0) return tx_commit(c, err, err_cap);
    tx_rollback(c);
    return result;
}

int store_customer_exists(store_t *s, const char *customer_id) {
    if (!store_valid_customer_id(customer_id)) return -ENOENT;
    char reason[256] = "";
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    int64_t one;
    int rc = c ? query_int(c, STMT_CUSTOMER_EXISTS, customer_id, &one, reason, sizeof reason) : -EIO;
    if (rc == -EIO) log_failure("customer_exists", reason);
    return rc;
}

/* A counter of the meta table; its row missing is a damaged database. */
static int read_meta(store_t *s, stmt_id_t stmt, const char *name, int64_t *value) {
    char reason[256] = "";
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    int rc = c ? query_int(c, stmt, NULL, value, reason, sizeof reason) : -EIO;
    if (rc == -ENOENT) {
        snprintf(reason, sizeof reason, "meta row %s is missing", name);
        rc = -EIO;
    }
    if (rc != 0) log_failure(name, reason);
    return rc;
}

int store_customer_count(store_t *s, int64_t *count) {
    return read_meta(s, STMT_CUSTOMER_COUNT, "customer_count", count);
}

/* ---- API keys ---- */

int store_key_add(store_t *s, const char *customer_id, char key_out[STORE_API_KEY_LEN + 1],
                  char key_id_out[STORE_KEY_ID_LEN + 1], char *err, size_t err_cap) {
    if (!store_valid_customer_id(customer_id)) {
        set_err(err, err_cap, "invalid customer id (expected [a-z0-9_]{1,32})");
        return -EINVAL;
    }
    store_conn_t *c = conn_get(s, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *st = stmt_get(c, STMT_KEY_INSERT, err, err_cap);
    if (!st) return -EIO;

    /* A key id is only 48 random bits: a collision is unlikely but not impossible, so a
     * clash on key_id draws again. A clash on the 256-bit key hash would mean a broken
     * random generator, and is reported as an error. */
    for (int attempt = 0; attempt < 4; attempt++) {
        uint8_t key_bytes[API_KEY_RANDOM_BYTES], id_bytes[KEY_ID_RANDOM_BYTES], hash[SHA256_LEN];
        char key_text[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1];
        if (fill_random(key_bytes, sizeof key_bytes) != 0 || fill_random(id_bytes, sizeof id_bytes) != 0) {
            set_err(err, err_cap, "getrandom failed: %s", strerror(errno));
            return -EIO;
        }
        hex_encode(key_bytes, sizeof key_bytes, key_text);
        memcpy(key_id, "key_", 4);
        hex_encode(id_bytes, sizeof id_bytes, key_id + 4);
        OPENSSL_cleanse(key_bytes, sizeof key_bytes);
        if (sha256_two(key_text, STORE_API_KEY_LEN, NULL, 0, hash) != 0) {
            OPENSSL_cleanse(key_text, sizeof key_text);
            set_err(err, err_cap, "SHA-256 failed");
            return -EIO;
        }
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, customer_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, hash, SHA256_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, time_now_ms());
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) {
            memcpy(key_out, key_text, sizeof key_text);
            memcpy(key_id_out, key_id, sizeof key_id);
            OPENSSL_cleanse(key_text, sizeof key_text);
            return 0;
        }
        OPENSSL_cleanse(key_text, sizeof key_text);
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
            set_err(err, err_cap, "unknown customer %s", customer_id);
            return -ENOENT;
        }
        if (rc != SQLITE_CONSTRAINT_PRIMARYKEY) return -EIO;
    }
    set_err(err, err_cap, "could not draw an unused key id");
    return -EIO;
}

int store_key_list(store_t *s, const char *customer_id, store_key_info_t **out, size_t *count) {
    *out = NULL;
    *count = 0;
    if (!store_valid_customer_id(customer_id)) return -EINVAL;
    char reason[256] = "";
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    if (!c) goto failed;
    int64_t one;
    int rc = query_int(c, STMT_CUSTOMER_EXISTS, customer_id, &one, reason, sizeof reason);
    if (rc == -ENOENT) return -ENOENT;
    if (rc != 0) goto failed;
    sqlite3_stmt *st = stmt_get(c, STMT_KEY_LIST, reason, sizeof reason);
    if (!st) goto failed;
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
        snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    if (result != 0) {
        free(keys);
        if (result == -EIO) log_failure("key_list", reason);
        return result;
    }
    *out = keys;
    *count = n;
    return 0;
failed:
    log_failure("key_list", reason);
    return -EIO;
}

int store_key_revoke(store_t *s, const char *key_id) {
    if (!valid_key_id(key_id)) return -EINVAL;
    char reason[256] = "";
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    if (!c) goto failed;
    sqlite3_stmt *st = stmt_get(c, STMT_KEY_REVOKE, reason, sizeof reason);
    if (!st) goto failed;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, time_now_ms());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(c->db));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) goto failed;
    if (sqlite3_changes(c->db) > 0) return 0;
    /* Nothing changed: either no such key, or revoked already (which is fine: revoking is
     * idempotent and keeps the first revocation time). */
    int64_t one;
    int found = query_int(c, STMT_KEY_EXISTS, key_id, &one, reason, sizeof reason);
    if (found == -EIO) goto failed;
    return found;
failed:
    log_failure("key_revoke", reason);
    return -EIO;
}

int store_key_authenticate(store_t *s, const char *api_key, size_t key_len, char customer_out[STORE_ID_MAX + 1]) {
    /* The length is not secret (every key has 64 characters); the content is. Only its
     * hash is looked up, so index timing reveals nothing about the key's characters. */
    if (!api_key || key_len != STORE_API_KEY_LEN) return -ENOENT;
    uint8_t hash[SHA256_LEN];
    if (sha256_two(api_key, key_len, NULL, 0, hash) != 0) {
        log_failure("key_authenticate", "SHA-256 failed");
        return -EIO;
    }
    char reason[256] = "";
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    sqlite3_stmt *st = c ? stmt_get(c, STMT_KEY_AUTHENTICATE, reason, sizeof reason) : NULL;
    if (!st) {
        log_failure("key_authenticate", reason);
        return -EIO;
    }
    sqlite3_bind_blob(st, 1, hash, SHA256_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(st), result = -ENOENT;
    if (rc == SQLITE_ROW) {
        const void *stored = sqlite3_column_blob(st, 1);
        int stored_len = sqlite3_column_bytes(st, 1);
        const char *customer = (const char *)sqlite3_column_text(st, 0);
        bool revoked = sqlite3_column_type(st, 2) != SQLITE_NULL;
        if (stored && stored_len == SHA256_LEN && CRYPTO_memcmp(stored, hash, SHA256_LEN) == 0 && !revoked &&
            customer && strlen(customer) <= STORE_ID_MAX) {
            memcpy(customer_out, customer, strlen(customer) + 1);
            result = 0;
        }
    } else if (rc != SQLITE_DONE) {
        log_failure("key_authenticate", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    return result;
}

/* ---- zones ---- */

/* 24 characters of [a-z0-9], uniformly: bytes >= 252 (= 7 * 36) are drawn again, so that
 * every character is equally likely (no modulo bias). */
static int random_password(char out[STORE_PASSWORD_LEN + 1]) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = 0;
    while (n < STORE_PASSWORD_LEN) {
        uint8_t bytes[32];
        if (fill_random(bytes, sizeof bytes) != 0) return -EIO;
        for (size_t i = 0; i < sizeof bytes && n < STORE_PASSWORD_LEN; i++)
            if (bytes[i] < 252) out[n++] = alphabet[bytes[i] % 36];
        OPENSSL_cleanse(bytes, sizeof bytes);
    }
    out[n] = '\0';
    return 0;
}

int store_zone_add(store_t *s, const char *customer_id, const char *zone,
                   char password_out[STORE_PASSWORD_LEN + 1], char *err, size_t err_cap) {
    if (!store_valid_customer_id(customer_id)) {
        set_err(err, err_cap, "invalid customer id (expected [a-z0-9_]{1,32})");
        return -EINVAL;
    }
    if (!store_valid_zone_name(zone)) {
        set_err(err, err_cap, "invalid zone name (expected [a-z0-9_]{1,64})");
        return -EINVAL;
    }
    store_conn_t *c = conn_get(s, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *st = stmt_get(c, STMT_ZONE_INSERT, err, err_cap);
    if (!st) return -EIO;
    char password[STORE_PASSWORD_LEN + 1];
    uint8_t salt[ZONE_SALT_LEN], hash[SHA256_LEN];
    if (random_password(password) != 0 || fill_random(salt, sizeof salt) != 0) {
        set_err(err, err_cap, "getrandom failed: %s", strerror(errno));
        return -EIO;
    }
    if (sha256_two(salt, sizeof salt, password, STORE_PASSWORD_LEN, hash) != 0) {
        OPENSSL_cleanse(password, sizeof password);
        set_err(err, err_cap, "SHA-256 failed");
        return -EIO;
    }
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, salt, sizeof salt, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, time_now_ms());
    int rc = sqlite3_step(st), result = 0;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        set_err(err, err_cap, "zone %s already exists for customer %s", zone, customer_id);
        result = -EEXIST;
    } else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        set_err(err, err_cap, "unknown customer %s", customer_id);
        result = -ENOENT;
    } else if (rc != SQLITE_DONE) {
        set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    if (result == 0) memcpy(password_out, password, sizeof password);
    OPENSSL_cleanse(password, sizeof password);
    return result;
}

int store_zone_check(store_t *s, const char *customer_id, const char *zone, const char *password) {
    return store_zone_authorize(s, customer_id, zone, password, NULL, 0);
}

int store_zone_authorize(store_t *s, const char *customer_id, const char *zone, const char *password,
                         char *upstream, size_t upstream_cap) {
    if (upstream && upstream_cap) upstream[0] = '\0';
    if (!customer_id || !zone || !password) return -ENOENT;
    char reason[256] = "";
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    sqlite3_stmt *st = c ? stmt_get(c, STMT_ZONE_CHECK, reason, sizeof reason) : NULL;
    if (!st) {
        log_failure("zone_check", reason);
        return -EIO;
    }
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), result = -ENOENT;
    if (rc == SQLITE_ROW) {
        const void *salt = sqlite3_column_blob(st, 0);
        int salt_len = sqlite3_column_bytes(st, 0);
        const void *stored = sqlite3_column_blob(st, 1);
        int stored_len = sqlite3_column_bytes(st, 1);
        uint8_t hash[SHA256_LEN];
        if (!salt || !stored || stored_len != SHA256_LEN ||
            sha256_two(salt, (size_t)salt_len, password, strlen(password), hash) != 0) {
            log_failure("zone_check", "malformed zone row or SHA-256 failure");
            result = -EIO;
        } else {
            result = CRYPTO_memcmp(stored, hash, SHA256_LEN) == 0 ? 0 : -EACCES;
            const unsigned char *up = sqlite3_column_text(st, 2);
            if (result == 0 && up && upstream && upstream_cap) snprintf(upstream, upstream_cap, "%s", up);
        }
    } else if (rc != SQLITE_DONE) {
        log_failure("zone_check", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    return result;
}

int store_zone_set_upstream(store_t *s, const char *customer_id, const char *zone, const char *url) {
    char reason[256] = "";
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    sqlite3_stmt *st = c ? stmt_get(c, STMT_ZONE_SET_UPSTREAM, reason, sizeof reason) : NULL;
    if (!st) {
        log_failure("zone_set_upstream", reason);
        return -EIO;
    }
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
    if (url && *url) sqlite3_bind_text(st, 3, url, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 3);
    int rc = sqlite3_step(st), result = 0;
    if (rc != SQLITE_DONE) {
        log_failure("zone_set_upstream", sqlite3_errmsg(c->db));
        result = -EIO;
    } else if (sqlite3_changes(c->db) == 0) {
        result = -ENOENT;
    }
    sqlite3_reset(st);
    return result;
}

/* ---- sessions ---- */

/* What the schema and the catalog rely on; the import parser checks far more (formats). */
static int record_check(const session_record_t *r, char *err, size_t err_cap) {
    uint8_t id[16];
    if (strnlen(r->session_id, sizeof r->session_id) != UUID_TEXT_LEN ||
        uuid_parse(r->session_id, UUID_TEXT_LEN, id) != 0) {
        set_err(err, err_cap, "session_id is not a UUID");
        return -EINVAL;
    }
    const char *bad = !r->api_name || !r->api_name[0]                 ? "api_name is empty"
                      : (unsigned)r->status >= SESSION_STATUS_COUNT   ? "status is out of range"
                      : (unsigned)r->captcha > CAPTCHA_FAILED         ? "captcha is out of range"
                      : r->navigations < 0                            ? "navigations is negative"
                      : r->bandwidth < 0                              ? "bandwidth is negative"
                      : r->duration_ms < 0 && r->duration_ms != SESSION_DURATION_NULL ? "duration is negative"
                      : r->error_message && !r->error_code            ? "error message without an error code"
                                                                      : NULL;
    if (bad) {
        set_err(err, err_cap, "session %s: %s", r->session_id, bad);
        return -EINVAL;
    }
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int index, const char *text) {
    if (text) sqlite3_bind_text(st, index, text, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, index);
}

/* Binds the 16 parameters of STMT_SESSION_INSERT / _UPSERT. Everything is bound STATIC:
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

/* The case-insensitive identity of a session: its id in lowercase. */
static void session_key_of(const char *session_id, char key[UUID_TEXT_LEN + 1]) {
    for (int i = 0; i < UUID_TEXT_LEN; i++) key[i] = (char)tolower((unsigned char)session_id[i]);
    key[UUID_TEXT_LEN] = '\0';
}

int store_sessions_import(store_t *s, const char *customer_id, store_record_source next, void *ctx,
                          int64_t *imported, char *err, size_t err_cap) {
    if (imported) *imported = 0;
    if (!store_valid_customer_id(customer_id)) {
        set_err(err, err_cap, "invalid customer id (expected [a-z0-9_]{1,32})");
        return -EINVAL;
    }
    store_conn_t *c = conn_get(s, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *insert = stmt_get(c, STMT_SESSION_INSERT, err, err_cap);
    if (!insert) return -EIO;
    set_cache_kib(c->db, CACHE_KIB_IMPORT);
    int result = tx_begin(c, err, err_cap);
    if (result != 0) goto restore_cache;

    int64_t one, seq = 0, count = 0;
    result = query_int(c, STMT_CUSTOMER_EXISTS, customer_id, &one, err, err_cap);
    if (result == -ENOENT) set_err(err, err_cap, "unknown customer %s", customer_id);
    if (result == 0) {
        result = query_int(c, STMT_CHANGE_SEQ, NULL, &seq, err, err_cap);
        if (result == -ENOENT) {
            set_err(err, err_cap, "meta row change_seq is missing");
            result = -EIO;
        }
    }
    /* One clock reading for the whole import: it is one change, made at one time. */
    int64_t now_ms = time_now_ms();
    while (result == 0) {
        session_record_t rec;
        memset(&rec, 0, sizeof rec);
        int more = next(ctx, &rec, err, err_cap);
        if (more <= 0) {
            session_record_free(&rec);
            if (more < 0) result = -EINVAL;
            break;
        }
        result = record_check(&rec, err, err_cap);
        if (result == 0) {
            char session_key[UUID_TEXT_LEN + 1];
            session_key_of(rec.session_id, session_key);
            bind_session(insert, customer_id, session_key, &rec, seq + 1, now_ms, NULL);
            int rc = sqlite3_step(insert);
            if (rc == SQLITE_DONE) {
                seq++;
                count++;
            } else if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
                set_err(err, err_cap, "session_id %s already exists", rec.session_id);
                result = -EEXIST;
            } else {
                set_err(err, err_cap, "session %s: %s", rec.session_id, sqlite3_errmsg(c->db));
                result = -EIO;
            }
            sqlite3_reset(insert);
        }
        session_record_free(&rec);
    }
    if (result == 0 && count > 0) {
        sqlite3_stmt *st = stmt_get(c, STMT_CHANGE_SEQ_SET, err, err_cap);
        if (st) {
            sqlite3_bind_int64(st, 1, seq);
            if (sqlite3_step(st) != SQLITE_DONE) {
                set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
                result = -EIO;
            }
            sqlite3_reset(st);
        } else {
            result = -EIO;
        }
    }
    if (result == 0) result = tx_commit(c, err, err_cap);
    else tx_rollback(c);
    if (result == 0 && imported) *imported = count;
restore_cache:
    /* Give the import's page cache back: this connection may live on in a long process. */
    set_cache_kib(c->db, CACHE_KIB_DEFAULT);
    return result;
}

/* Takes the next store-wide change sequence number (inside the caller's transaction). */
static int next_change_seq(store_conn_t *c, sqlite3_stmt *next_seq, int64_t *seq, char *reason, size_t cap) {
    int result = 0;
    int rc = sqlite3_step(next_seq);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(next_seq, 0);
        rc = sqlite3_step(next_seq);
    } else if (rc == SQLITE_DONE) {
        snprintf(reason, cap, "meta row change_seq is missing");
        result = -EIO;
    }
    if (result == 0 && rc != SQLITE_DONE) {
        snprintf(reason, cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(next_seq);
    return result;
}

int store_session_put(store_t *s, const char *customer_id, const session_record_t *rec) {
    return store_session_save(s, customer_id, rec, NULL);
}

int store_session_save(store_t *s, const char *customer_id, const session_record_t *rec, const char *worker) {
    char reason[256] = "";
    if (!store_valid_customer_id(customer_id)) return -EINVAL;
    if (record_check(rec, reason, sizeof reason) != 0) {
        log_failure("session_put", reason);
        return -EINVAL;
    }
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    if (!c) goto failed;
    sqlite3_stmt *upsert = stmt_get(c, STMT_SESSION_UPSERT, reason, sizeof reason);
    sqlite3_stmt *next_seq = stmt_get(c, STMT_CHANGE_SEQ_NEXT, reason, sizeof reason);
    if (!upsert || !next_seq || tx_begin(c, reason, sizeof reason) != 0) goto failed;

    int rc;
    int64_t seq = 0;
    int result = next_change_seq(c, next_seq, &seq, reason, sizeof reason);
    if (result == 0) {
        char session_key[UUID_TEXT_LEN + 1];
        session_key_of(rec->session_id, session_key);
        bind_session(upsert, customer_id, session_key, rec, seq, time_now_ms(), worker);
        rc = sqlite3_step(upsert);
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
            result = -ENOENT;
        } else if (rc != SQLITE_DONE) {
            snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(c->db));
            result = -EIO;
        }
        sqlite3_reset(upsert);
    }
    if (result == 0) result = tx_commit(c, reason, sizeof reason);
    else tx_rollback(c);
    if (result == -EIO) log_failure("session_put", reason);
    return result;
failed:
    log_failure("session_put", reason);
    return -EIO;
}

int store_sessions_fail_orphans(store_t *s, int64_t *failed) {
    char reason[256] = "";
    if (failed) *failed = 0;
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    if (!c) goto failed;
    sqlite3_stmt *list = stmt_get(c, STMT_ORPHANS, reason, sizeof reason);
    sqlite3_stmt *fail = stmt_get(c, STMT_ORPHAN_FAIL, reason, sizeof reason);
    sqlite3_stmt *next_seq = stmt_get(c, STMT_CHANGE_SEQ_NEXT, reason, sizeof reason);
    if (!list || !fail || !next_seq || tx_begin(c, reason, sizeof reason) != 0) goto failed;
    /* Collect first: updating rows while the statement that lists them is still running would
     * change what it lists. Orphans are few (at most the sessions of one stopped process). */
    typedef struct {
        char customer[STORE_ID_MAX + 1];
        char key[UUID_TEXT_LEN + 1];
    } orphan_t;
    orphan_t *orphans = NULL;
    size_t n = 0, cap = 0;
    int rc, result = 0;
    while ((rc = sqlite3_step(list)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            orphan_t *grown = realloc(orphans, cap * sizeof *grown);
            if (!grown) {
                result = -ENOMEM;
                break;
            }
            orphans = grown;
        }
        snprintf(orphans[n].customer, sizeof orphans[n].customer, "%s", (const char *)sqlite3_column_text(list, 0));
        snprintf(orphans[n].key, sizeof orphans[n].key, "%s", (const char *)sqlite3_column_text(list, 1));
        n++;
    }
    if (result == 0 && rc != SQLITE_DONE) {
        snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(list);
    for (size_t i = 0; result == 0 && i < n; i++) {
        int64_t seq = 0;
        if ((result = next_change_seq(c, next_seq, &seq, reason, sizeof reason)) != 0) break;
        sqlite3_bind_text(fail, 1, orphans[i].customer, -1, SQLITE_STATIC);
        sqlite3_bind_text(fail, 2, orphans[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(fail, 3, "the browserd process that ran the session stopped before the session ended", -1,
                          SQLITE_STATIC);
        sqlite3_bind_int64(fail, 4, seq);
        if (sqlite3_step(fail) != SQLITE_DONE) {
            snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(c->db));
            result = -EIO;
        }
        sqlite3_reset(fail);
    }
    free(orphans);
    if (result == 0) result = tx_commit(c, reason, sizeof reason);
    else tx_rollback(c);
    if (result == 0 && failed) *failed = (int64_t)n;
    if (result != 0) log_failure("fail_orphans", reason);
    return result;
failed:
    log_failure("fail_orphans", reason);
    return -EIO;
}

int store_change_seq(store_t *s, int64_t *seq) { return read_meta(s, STMT_CHANGE_SEQ, "change_seq", seq); }

static const char *column_text_or_null(sqlite3_stmt *st, int column) {
    return sqlite3_column_type(st, column) == SQLITE_NULL ? NULL : (const char *)sqlite3_column_text(st, column);
}

int store_sessions_since(store_t *s, int64_t after_seq, int64_t *last_seq, store_session_cb cb, void *ctx) {
    *last_seq = after_seq;
    char reason[256] = "";
    store_conn_t *c = conn_get(s, reason, sizeof reason);
    if (!c) {
        log_failure("sessions_since", reason);
        return -EIO;
    }
    /* A statement of its own rather than a cached one: the callback may call the store
     * again on this thread. The one SELECT is one read transaction, so the rows delivered
     * are a consistent snapshot; seqs are assigned and committed under the write lock, so
     * no commit after it can carry a seq at or below the last one delivered. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, stmt_sql[STMT_SESSIONS_SINCE], -1, &st, NULL) != SQLITE_OK) {
        log_failure("sessions_since", sqlite3_errmsg(c->db));
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, after_seq);
    int rc, result = 0;
    bool db_failed = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        session_record_t rec;
        memset(&rec, 0, sizeof rec);
        const char *customer = (const char *)sqlite3_column_text(st, 0);
        const char *session_id = (const char *)sqlite3_column_text(st, 1);
        int status = sqlite3_column_int(st, 3), captcha = sqlite3_column_int(st, 9);
        if (!customer || !session_id || strlen(session_id) != UUID_TEXT_LEN || status < 0 ||
            status >= SESSION_STATUS_COUNT || captcha < 0 || captcha > CAPTCHA_FAILED) {
            snprintf(reason, sizeof reason, "malformed session row (seq %" PRId64 ")",
                     (int64_t)sqlite3_column_int64(st, 13));
            result = -EIO;
            db_failed = true;
            break;
        }
        memcpy(rec.session_id, session_id, UUID_TEXT_LEN + 1);
        /* Borrowed from SQLite until the next step: the callback must copy what it keeps. */
        rec.api_name = (char *)column_text_or_null(st, 2);
        rec.status = (session_status_t)status;
        rec.target_url = (char *)column_text_or_null(st, 4);
        rec.end_url = (char *)column_text_or_null(st, 5);
        rec.navigations = sqlite3_column_int64(st, 6);
        rec.timestamp_ms = sqlite3_column_int64(st, 7);
        rec.duration_ms =
            sqlite3_column_type(st, 8) == SQLITE_NULL ? SESSION_DURATION_NULL : sqlite3_column_int64(st, 8);
        rec.captcha = (captcha_t)captcha;
        rec.bandwidth = sqlite3_column_int64(st, 10);
        rec.error_code = (char *)column_text_or_null(st, 11);
        rec.error_message = (char *)column_text_or_null(st, 12);
        if (!rec.api_name) rec.api_name = (char *)"";
        int64_t seq = sqlite3_column_int64(st, 13);
        result = cb(ctx, customer, &rec);
        if (result != 0) break;
        *last_seq = seq;
    }
    if (result == 0 && rc != SQLITE_DONE) {
        snprintf(reason, sizeof reason, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
        db_failed = true;
    }
    sqlite3_finalize(st);
    if (db_failed) log_failure("sessions_since", reason);
    return result;
}
