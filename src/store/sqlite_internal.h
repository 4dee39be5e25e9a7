/* What the files of the SQLite backend share. sqlite_schema.c owns the database: its
 * connections (one per calling thread), their settings, the statement cache, transactions
 * and the migrations. sqlite_store.c owns the statements (store_sqlite_stmt_sql) and the
 * operations of store_internal.h but the reading of sessions in seq order (the change feed,
 * the export of db copy), which is sqlite_feed.c's. Private to src/store/.
 *
 * Ownership: a sqlite_db_t owns its path and every connection; a connection owns its
 * prepared statements. A statement returned by store_sqlite_stmt belongs to the connection:
 * reset it after use, never finalize it. */
#ifndef BROWSERD_STORE_SQLITE_INTERNAL_H
#define BROWSERD_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store_internal.h"

/* Page cache (KiB) of an ordinary connection, and of one running a bulk import. An import
 * writes the whole sessions table and its two indexes in one transaction; with the default
 * cache, pages spill to the WAL and are read back again and again. Measured on 1.2M rows in
 * random id order: 16 MiB costs a quarter more time, 128 MiB is as fast as 512 MiB. */
#define CACHE_KIB_DEFAULT 16384
#define CACHE_KIB_IMPORT 131072

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
    STMT_NODE_GET,
    STMT_NODE_PUT,
    STMT_NODE_HEARTBEAT,
    STMT_NODE_DELETE,
    STMT_NODES_EXPIRED,
    STMT_NODE_DELETE_EXPIRED,
    STMT_WORKER_RUNNING,
    STMT_SESSION_OWNER,
    STMT_SESSION_END,
    STMT_PING,
    STMT_COUNT
} stmt_id_t;

/* Every SQL statement the backend runs but the migrations (sqlite_store.c). */
extern const char *const store_sqlite_stmt_sql[STMT_COUNT];

/* migrations[i] takes a database from user_version i to i + 1 (sqlite_schema.c). */
extern const char *const store_sqlite_migrations[];
extern const int store_sqlite_migration_count;

typedef struct store_conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[STMT_COUNT]; /* prepared on first use */
    struct store_conn *next;
} store_conn_t;

typedef struct {
    char *path;
    pthread_key_t thread_conn; /* this thread's store_conn_t, or NULL before its first call */
    pthread_mutex_t conns_lock;
    store_conn_t *conns;       /* every connection opened, for store_sqlite_close */
} sqlite_db_t;

/* The backend's open and close (store_internal.h). */
int store_sqlite_open(const char *target, store_db_t **out, char *err, size_t err_cap);
void store_sqlite_close(store_db_t *db);

/* The calling thread's connection, opened on first use; NULL with a reason. */
store_conn_t *store_sqlite_conn(store_db_t *db, char *err, size_t err_cap);
/* A cached statement, reset and ready to bind; NULL with SQLite's message. */
sqlite3_stmt *store_sqlite_stmt(store_conn_t *c, stmt_id_t id, char *err, size_t err_cap);
/* Runs a cached statement that returns no row we need; 0 or -EIO with SQLite's message. */
int store_sqlite_run(store_conn_t *c, stmt_id_t id, char *err, size_t err_cap);

/* BEGIN IMMEDIATE: the write lock from the start, so two writers never deadlock upgrading
 * read locks; the second waits (up to the busy timeout) instead. */
int store_sqlite_tx_begin(store_conn_t *c, char *err, size_t err_cap);
/* COMMIT; a failed commit is rolled back. */
int store_sqlite_tx_commit(store_conn_t *c, char *err, size_t err_cap);
void store_sqlite_tx_rollback(store_conn_t *c);

/* Shared by the operations (sqlite_store.c): a step that must finish (0 or -EIO with
 * SQLite's message); a step + reset of an insert or update (-EEXIST taken key, -ENOENT a
 * missing referenced row, -EIO); the next change seq inside the caller's transaction; commit
 * or roll back by result (returns the result, or the commit's failure). */
int store_sqlite_step_done(store_conn_t *c, sqlite3_stmt *st, char *err, size_t err_cap);
int store_sqlite_write_step(store_conn_t *c, sqlite3_stmt *st, char *err, size_t err_cap);
int store_sqlite_next_seq(store_conn_t *c, sqlite3_stmt *next_seq, int64_t *seq, char *err, size_t err_cap);
int store_sqlite_tx_end(store_conn_t *c, int result, char *err, size_t err_cap);

/* The node, orphan and single-session operations (sqlite_nodes.c; store_internal.h). */
int store_sqlite_sessions_fail_orphans(store_db_t *db, const char *node_id, int64_t *failed, char *err,
                                       size_t err_cap);
int store_sqlite_node_register(store_db_t *db, const char *node_id, const char *host, int pid, int64_t lease_ms,
                               bool take_over, char *holder_host, int *holder_pid, char *err, size_t err_cap);
int store_sqlite_node_heartbeat(store_db_t *db, const char *node_id, int pid, int64_t lease_ms, char *err,
                                size_t err_cap);
int store_sqlite_node_release(store_db_t *db, const char *node_id, int pid, char *err, size_t err_cap);
int store_sqlite_nodes_reap(store_db_t *db, int64_t *nodes, int64_t *failed, char *err, size_t err_cap);
int store_sqlite_session_owner(store_db_t *db, const char *customer_id, const char *session_key,
                               session_status_t *status, char *worker, bool *worker_alive, char *err, size_t err_cap);
int store_sqlite_session_end(store_db_t *db, const char *customer_id, const char *session_key, const char *code,
                             const char *message, char *err, size_t err_cap);
int store_sqlite_ping(store_db_t *db, char *err, size_t err_cap);

/* PRAGMA cache_size = -kib; 0 or -EIO. */
int store_sqlite_set_cache_kib(store_conn_t *c, int kib);


/* The first 14 columns of the current row (customer_id, session_id, api_name, status,
 * target_url, end_url, navigations, timestamp_ms, duration_ms, captcha, bandwidth, error_code,
 * error_message, seq: the feed's order) as a record borrowing SQLite's strings (valid to the
 * next step); -EIO for a row that cannot be a session (sqlite_feed.c). */
int store_sqlite_feed_row(sqlite3_stmt *st, session_record_t *rec, char *err, size_t err_cap);

/* The webhook operations (sqlite_webhooks.c; store_internal.h). */
int store_sqlite_webhook_add(store_db_t *db, const char *customer_id, const char *webhook_id, const char *url,
                             const char *secret, char *err, size_t err_cap);
int store_sqlite_webhook_list(store_db_t *db, const char *customer_id, store_webhook_info_t **out, size_t *count,
                              char *err, size_t err_cap);
int store_sqlite_webhook_remove(store_db_t *db, const char *webhook_id, char *err, size_t err_cap);
int store_sqlite_webhook_deliveries(store_db_t *db, const char *customer_id, size_t limit, store_delivery_info_t **out,
                                    size_t *count, char *err, size_t err_cap);
int store_sqlite_webhook_claim(store_db_t *db, const char *claimer, int64_t now, int64_t lease_until, size_t max,
                               store_delivery_t **out, size_t *count, char *err, size_t err_cap);
int store_sqlite_webhook_record(store_db_t *db, const char *delivery_id, const store_delivery_outcome_t *o, int64_t now,
                                char *err, size_t err_cap);
int store_sqlite_webhook_release(store_db_t *db, const char *claimer, char *err, size_t err_cap);
int store_sqlite_webhook_prune(store_db_t *db, int64_t before_ms, int64_t *deleted, char *err, size_t err_cap);
int store_sqlite_webhook_pending(store_db_t *db, int64_t *pending, char *err, size_t err_cap);

/* Reading the sessions in seq order (sqlite_feed.c): the change feed, and the source side
 * of db copy (store_internal.h). */
int store_sqlite_sessions_since(store_db_t *db, int64_t after_seq, int64_t *last_seq, store_session_cb cb, void *ctx,
                                char *err, size_t err_cap);
int store_sqlite_export_items(store_db_t *db, store_item_kind_t kind, int64_t after_seq, store_item_cb cb, void *ctx,
                              char *err, size_t err_cap);
int store_sqlite_sessions_count(store_db_t *db, int64_t after_seq, int64_t *count, char *err, size_t err_cap);

#endif
