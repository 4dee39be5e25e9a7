/* What the files of the PostgreSQL backend share. Private to src/store/.
 *
 *   pg_schema.c  the database: connections (one per calling thread), parameters and results,
 *                the error mapping, transactions, the migrations, open and close
 *   pg_store.c   the statements (store_pg_stmt_sql) and the operations of store_internal.h
 *   pg_events.c  the listener thread (LISTEN/NOTIFY), publish, and what it keeps in memory:
 *                the change counter seen and the API key cache
 *   pg_bulk.c    the bulk paths: sessions_import (COPY) and the destination side of db copy
 *
 * Ownership: a pg_db_t owns its target, every connection and the listener; a connection owns
 * its prepared statements (prepared on first use, forgotten when it is reset). A PGresult
 * returned by store_pg_exec is the caller's (PQclear). */
#ifndef BROWSERD_STORE_PG_INTERNAL_H
#define BROWSERD_STORE_PG_INTERNAL_H

#include "store/pq_api.h"
#include <pthread.h>
#include <stdatomic.h>

#include "store/store_internal.h"

/* The session rows a change-feed page holds (sessions_since): each page is one statement,
 * its rows fully fetched before the callback sees the first one. */
#define PG_FEED_PAGE 20000
/* The key given to pg_advisory_xact_lock by every migration step ("brwsrd" in ASCII): two
 * nodes opening a new database at once migrate it one after the other. */
#define PG_MIGRATION_LOCK INT64_C(0x62727773726464)
/* How long an API key's answer (found or not) may be served from memory. */
#define PG_KEY_CACHE_TTL_MS 2000
#define PG_KEY_CACHE_SLOTS 1024
#define PG_MAX_PARAMS 20

typedef enum {
    PSTMT_CHANGE_SEQ,
    PSTMT_CHANGE_SEQ_LOCK,
    PSTMT_CHANGE_SEQ_ADD,
    PSTMT_CUSTOMER_INSERT,
    PSTMT_CUSTOMER_EXISTS,
    PSTMT_CUSTOMER_COUNT,
    PSTMT_KEY_INSERT,
    PSTMT_KEY_LIST,
    PSTMT_KEY_REVOKE,
    PSTMT_KEY_EXISTS,
    PSTMT_KEY_AUTHENTICATE,
    PSTMT_ZONE_INSERT,
    PSTMT_ZONE_CHECK,
    PSTMT_ZONE_SET_UPSTREAM,
    PSTMT_SESSION_SAVE_ONE,
    PSTMT_SESSION_UPSERT,
    PSTMT_SESSIONS_PAGE,
    PSTMT_ORPHANS_FAIL,
    PSTMT_NODE_PUT,
    PSTMT_NODE_HOLDER,
    PSTMT_NODE_HEARTBEAT,
    PSTMT_NODE_DELETE,
    PSTMT_NODES_REAP,
    PSTMT_SESSION_OWNER,
    PSTMT_SESSION_END,
    PSTMT_PING,
    PSTMT_PUBLISH,
    PSTMT_COUNT
} pg_stmt_id_t;

/* Every prepared statement of the backend (pg_store.c). */
extern const char *const store_pg_stmt_sql[PSTMT_COUNT];

/* migrations[i] takes a database from schema version i to i + 1 (pg_schema.c). */
extern const char *const store_pg_migrations[];
extern const char *const store_pg_migration_descriptions[];
extern const int store_pg_migration_count;

typedef struct pg_conn {
    PGconn *conn;
    bool prepared[PSTMT_COUNT];
    struct pg_conn *next;
} pg_conn_t;

typedef struct {
    uint8_t hash[STORE_HASH_LEN];
    bool used, found;
    char customer[STORE_ID_MAX + 1];
    int64_t expires_ms; /* CLOCK_MONOTONIC */
} pg_key_slot_t;

typedef struct {
    char *target;   /* the URI as given (with its password: it is what libpq needs) */
    char *redacted; /* the URI without its password: the only form that goes into messages */
    pthread_key_t thread_conn;
    pthread_mutex_t conns_lock;
    pg_conn_t *conns;

    /* the listener (pg_events.c) */
    pthread_mutex_t ev_lock;   /* the fields below but the atomics */
    bool ev_started;
    pthread_t ev_thread;
    int ev_wake;               /* eventfd: events_stop wakes the listener's poll */
    PGconn *ev_conn;           /* the listener's own connection */
    store_events_t ev;
    void *ev_ctx;
    atomic_bool listening;     /* LISTEN is established now: the memory below is current */
    atomic_bool ev_stop;
    _Atomic int64_t seen_seq;  /* the highest change seq notified, read or written */
    atomic_uint_fast64_t key_generation; /* bumped whenever the cache is dropped */
    pg_key_slot_t keys[PG_KEY_CACHE_SLOTS];
} pg_db_t;

/* Parameters of one statement, all text but bytea (binary). */
typedef struct {
    int n;
    const char *values[PG_MAX_PARAMS];
    int lengths[PG_MAX_PARAMS];
    int formats[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
} pg_params_t;

void store_pg_param_text(pg_params_t *p, const char *text); /* NULL: SQL NULL */
void store_pg_param_int(pg_params_t *p, int64_t v);
void store_pg_param_bytes(pg_params_t *p, const void *data, size_t len);

/* ---- pg_schema.c ---- */
int store_pg_open(const char *target, store_db_t **out, char *err, size_t err_cap);
void store_pg_close(store_db_t *db);
/* A new connection to the target (not registered with any thread), or NULL with a reason that
 * names the target without its password. */
PGconn *store_pg_connect(pg_db_t *d, char *err, size_t err_cap);
/* The calling thread's connection, opened on first use and reset when it went bad (its
 * statements prepared again on next use); NULL with a reason. */
pg_conn_t *store_pg_conn(store_db_t *db, char *err, size_t err_cap);
/* Runs a prepared statement: 0 with *out (when out is not NULL; else cleared) for a command or
 * rows; -EEXIST for a unique violation of a primary key the contract names; -ENOENT for a
 * foreign key violation; -EIO with the server's message (the connection is reset on its
 * next use when it broke). */
int store_pg_exec(pg_conn_t *c, pg_stmt_id_t id, const pg_params_t *p, PGresult **out, char *err, size_t err_cap);
/* Runs SQL text without parameters (transaction control, DDL, bulk steps); as store_pg_exec. */
int store_pg_exec_sql(pg_conn_t *c, const char *sql, PGresult **out, char *err, size_t err_cap);
/* The result's state as store_pg_exec maps it (the result is not cleared). */
int store_pg_result_code(PGconn *conn, const PGresult *res, char *err, size_t err_cap);
/* SQL text with parameters (statements run once per import or copy); as store_pg_exec. */
int store_pg_exec_params(pg_conn_t *c, const char *sql, const pg_params_t *p, PGresult **out, char *err,
                         size_t err_cap);
int store_pg_tx_begin(pg_conn_t *c, char *err, size_t err_cap);
/* Commits when result is 0, else rolls back; returns result, or the commit's failure. */
int store_pg_tx_end(pg_conn_t *c, int result, char *err, size_t err_cap);
/* Inside a transaction: locks the counter row (to the commit: no other write takes a seq
 * meanwhile) and reads it; takes n seqs and notifies browserd_changes of the last (*last).
 * -EIO "meta row change_seq is missing" without the row. */
int store_pg_lock_seq(pg_conn_t *c, int64_t *seq, char *err, size_t err_cap);
int store_pg_take_seqs(pg_conn_t *c, int64_t n, int64_t *last, char *err, size_t err_cap);
/* Column helpers: the integer (0 for NULL), the text or NULL, and a bytea column's bytes
 * (decoded from the text form; -1 when malformed or longer than cap). */
int64_t store_pg_int(const PGresult *r, int row, int col);
const char *store_pg_text(const PGresult *r, int row, int col);
int store_pg_bytea(const PGresult *r, int row, int col, uint8_t *out, size_t cap);
/* Replaces every copy of the target's password in msg (in place) by ***: libpq's messages do
 * not carry it, but a server's or a parser's might echo what it was given. */
void store_pg_scrub(const pg_db_t *d, char *msg);

/* ---- pg_events.c ---- */
int store_pg_events_start(store_db_t *db, const store_events_t *events, void *ctx, char *err, size_t err_cap);
void store_pg_events_stop(store_db_t *db);
int store_pg_publish(store_db_t *db, const char *topic, const char *payload, char *err, size_t err_cap);
/* A seq this process committed (or read): kept when it is the highest seen. */
void store_pg_seen_seq(pg_db_t *d, int64_t seq);
/* The key cache (used only while listening). lookup: 1 with the answer (*rc 0 and the
 * customer, or *rc -ENOENT), 0 on a miss. put: stores an answer read at `generation`
 * (dropped when the cache was dropped since). */
int store_pg_key_cache_lookup(pg_db_t *d, const uint8_t hash[STORE_HASH_LEN], int *rc,
                              char customer[STORE_ID_MAX + 1]);
uint64_t store_pg_key_cache_generation(pg_db_t *d);
void store_pg_key_cache_put(pg_db_t *d, uint64_t generation, const uint8_t hash[STORE_HASH_LEN], int rc,
                            const char *customer);
void store_pg_key_cache_drop(pg_db_t *d);

/* ---- pg_store.c ---- */
/* Row i's first 14 columns (customer_id, session_id, api_name, status, target_url, end_url,
 * navigations, timestamp_ms, duration_ms, captcha, bandwidth, error_code, error_message, seq:
 * the feed's order) as a record borrowing the result's strings; -EIO when malformed. */
int store_pg_page_row(const PGresult *r, int i, session_record_t *rec, char *err, size_t err_cap);

/* ---- pg_webhooks.c (store_internal.h) ---- */
int store_pg_webhook_add(store_db_t *db, const char *customer_id, const char *webhook_id, const char *url,
                         const char *secret, char *err, size_t err_cap);
int store_pg_webhook_list(store_db_t *db, const char *customer_id, store_webhook_info_t **out, size_t *count,
                          char *err, size_t err_cap);
int store_pg_webhook_remove(store_db_t *db, const char *webhook_id, char *err, size_t err_cap);
int store_pg_webhook_deliveries(store_db_t *db, const char *customer_id, size_t limit, store_delivery_info_t **out,
                                size_t *count, char *err, size_t err_cap);
int store_pg_webhook_claim(store_db_t *db, const char *claimer, int64_t now, int64_t lease_until, size_t max,
                           store_delivery_t **out, size_t *count, char *err, size_t err_cap);
int store_pg_webhook_record(store_db_t *db, const char *delivery_id, const store_delivery_outcome_t *o, int64_t now,
                            char *err, size_t err_cap);
int store_pg_webhook_release(store_db_t *db, const char *claimer, char *err, size_t err_cap);
int store_pg_webhook_prune(store_db_t *db, int64_t before_ms, int64_t *deleted, char *err, size_t err_cap);
int store_pg_webhook_pending(store_db_t *db, int64_t *pending, char *err, size_t err_cap);

/* ---- pg_bulk.c ---- */
int store_pg_sessions_import(store_db_t *db, const char *customer_id, store_import_t *im, char *err, size_t err_cap);
int store_pg_copy_resume(store_db_t *db, const char *source_id, int64_t *staged_seq, int64_t *staged, char *err,
                         size_t err_cap);
int store_pg_copy_stage(store_db_t *db, const char *source_id, const store_item_t *items, size_t n, char *err,
                        size_t err_cap);
int store_pg_copy_commit(store_db_t *db, const char *source_id, const store_item_t *items, size_t n,
                         store_copy_stats_t *stats, char *err, size_t err_cap);
int store_pg_copy_abandon(store_db_t *db, const char *source_id, char *err, size_t err_cap);

#endif
