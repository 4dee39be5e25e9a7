/* The backend interface of the store: what a database must do for store.h, and the helpers
 * every backend shares. Private to src/store/ (store.c and the backends' files).
 *
 * store.c owns the entry points of store.h. It checks every argument (names, key ids, the
 * session records), draws and hashes the secrets, computes the session keys and words the
 * messages of -ENOENT and -EEXIST, then makes one call through the backend's table. So a
 * backend only stores and finds, and the rules of the store are written once.
 *
 * A backend: its <name>_schema.c (connections, schema and migrations), <name>_store.c (the
 * operations and its `const store_backend_t`), <name>_internal.h (what they share), more
 * files of its own where one would pass 800 lines, its table declared below, and its line in
 * store.c's backend_for(). SQLite: sqlite_*; PostgreSQL: pg_*.
 *
 * Ownership: every pointer an operation receives is borrowed for the call; what it returns
 * through an out parameter is the caller's (key_list: malloc'ed); a record handed out by
 * store_import_next stays the import's; store_db_t belongs to store.c's store_t, from open
 * to close.
 *
 * ---- The contract every operation keeps ----
 * - Arguments are checked already: customer ids and zone names are well formed, key ids are
 *   "key_" + 12 hex, records passed the record checks, session keys are the lowercase
 *   session ids. A backend does not check them again.
 * - Threads: a store_db_t is used by many threads at once (libuv's pool), each op may run
 *   concurrently with any other; the backend makes that safe (SQLite: one connection per
 *   calling thread; PostgreSQL: per thread or a pool, never one connection for two threads).
 * - Results: 0 or a negative errno of store.h. -ENOENT and -EEXIST mean exactly what the op
 *   says (no other cause may produce them); store.c turns them into messages.
 * - err/err_cap: the backend writes a reason there when, and only when, the database or the
 *   backend itself failed (-EIO, or -ENOMEM where said). store.c passes it to the caller, or
 *   logs it for the functions of store.h that have no err; an empty reason is not logged.
 * - Times (created_ms, revoked_ms, updated_ms) are time_now_ms() of this process, read by
 *   the op, never the database server's clock: orphan durations subtract them from session
 *   timestamps, which come from browserd's clock.
 * - Every op that writes more than one row does so in one transaction: all or nothing.
 *
 * ---- The change feed ----
 * Every insert or update of a session takes the next value of one store-wide counter and
 * stores it in the row's seq, in the transaction that writes the row. Commits must become
 * visible in seq order: once a reader has seen seq N, no later commit may carry a seq <= N
 * (the catalog resumes after the last seq it saw and would skip it forever). SQLite gets this
 * from its single write lock (BEGIN IMMEDIATE before taking the seq). A PostgreSQL SEQUENCE
 * does not give it (nextval is not transactional: the transaction that took 5 may commit
 * after the one that took 6); incrementing a counter row inside the write transaction does
 * (its row lock is held to the commit, so writers take seqs and commit one after another).
 * A row updated twice keeps only its latest seq. */
#ifndef BROWSERD_STORE_STORE_INTERNAL_H
#define BROWSERD_STORE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session/record.h"
#include "core/metrics.h"
#include "store/store.h"
#include "store/store_copy.h"
#include "store/store_webhooks.h"

#define STORE_HASH_LEN 32      /* SHA-256 of API keys; PBKDF2-HMAC-SHA256 of zone passwords */
#define STORE_ZONE_SALT_LEN 16 /* random salt of a zone's password hash */

/* The error of sessions that store_sessions_fail_orphans ends (error_code "worker_disconnect"). */
#define STORE_ORPHAN_MESSAGE "the browserd process that ran the session stopped before the session ended"

/* An open database of one backend; each backend defines its own struct and casts. */
typedef struct store_db store_db_t;

/* The records of one import, pulled by the backend through store_import_next. Owned by
 * store.c. */
typedef struct store_import store_import_t;

/* One row of a store as `db copy` moves it (export_items hands them out with borrowed
 * strings; store.c keeps its own copies while it stages them). */
typedef enum { STORE_ITEM_CUSTOMER, STORE_ITEM_KEY, STORE_ITEM_ZONE, STORE_ITEM_SESSION } store_item_kind_t;
typedef struct {
    store_item_kind_t kind;
    char customer_id[STORE_ID_MAX + 1];
    int64_t created_ms;                   /* customer, key, zone */
    char key_id[STORE_KEY_ID_LEN + 1];    /* key */
    int64_t revoked_ms;                   /* key: -1 while active */
    uint8_t hash[STORE_HASH_LEN];         /* key: key hash; zone: password hash */
    char zone[STORE_ZONE_MAX + 1];        /* zone */
    uint8_t salt[STORE_ZONE_SALT_LEN];    /* zone */
    char *upstream;                       /* zone: NULL for none */
    session_record_t rec;                 /* session */
    int64_t seq, updated_ms;              /* session: its seq in the source, its last save */
    char *worker;                         /* session: NULL for none */
} store_item_t;
typedef int (*store_item_cb)(void *ctx, const store_item_t *item);

typedef struct {
    /* Opens `target` (creating it when the backend can) and brings its schema to the current
     * version: one migration step per transaction, the version read again inside it, so that
     * two processes opening a new database at once do not both migrate it. A version newer
     * than the code knows fails with store_schema_too_new. On failure nothing stays open. */
    int (*open)(const char *target, store_db_t **out, char *err, size_t err_cap);
    /* Closes every connection; called once, when no other call runs. */
    void (*close)(store_db_t *db);

    /* Inserts the customer and counts it in the customer counter, in one transaction.
     * -EEXIST when it exists. */
    int (*customer_add)(store_db_t *db, const char *customer_id, char *err, size_t err_cap);
    /* 0 when it exists, -ENOENT when not. */
    int (*customer_exists)(store_db_t *db, const char *customer_id, char *err, size_t err_cap);
    /* The customer counter: a lookup, never a scan (it is read to detect a fresh database). */
    int (*customer_count)(store_db_t *db, int64_t *count, char *err, size_t err_cap);

    /* Inserts an active key. -EEXIST when key_id is taken (store.c draws another), -ENOENT
     * for an unknown customer; a clash of key_hash (unique) is -EIO. */
    int (*key_add)(store_db_t *db, const char *customer_id, const char *key_id,
                   const uint8_t key_hash[STORE_HASH_LEN], char *err, size_t err_cap);
    /* The customer's keys, oldest first (created_ms, then insertion order), *out malloc'ed
     * (NULL and 0 when none). -ENOENT for an unknown customer, -ENOMEM without a reason. */
    int (*key_list)(store_db_t *db, const char *customer_id, store_key_info_t **out, size_t *count, char *err,
                    size_t err_cap);
    /* Sets the revocation time unless set: revoking twice is 0 and keeps the first time.
     * -ENOENT when no such key. */
    int (*key_revoke)(store_db_t *db, const char *key_id, char *err, size_t err_cap);
    /* Finds the key by its hash (an index lookup: only the hash reaches the database) and
     * returns what store_key_row_check decides over the row; -ENOENT when there is none. */
    int (*key_authenticate)(store_db_t *db, const uint8_t key_hash[STORE_HASH_LEN],
                            char customer_out[STORE_ID_MAX + 1], char *err, size_t err_cap);

    /* Inserts a zone without upstream proxy. -EEXIST when (customer, zone) exists, -ENOENT
     * for an unknown customer. */
    int (*zone_add)(store_db_t *db, const char *customer_id, const char *zone, const uint8_t salt[STORE_ZONE_SALT_LEN],
                    const uint8_t password_hash[STORE_HASH_LEN], char *err, size_t err_cap);
    /* Finds the zone by (customer, zone) and returns what store_zone_row_check decides over
     * the row (which fills `upstream` on success only); -ENOENT when there is none. */
    int (*zone_authorize)(store_db_t *db, const char *customer_id, const char *zone, const char *password,
                          char *upstream, size_t upstream_cap, char *err, size_t err_cap);
    /* Sets the zone's upstream proxy URL as given, or clears it (url NULL). -ENOENT when no
     * such zone. */
    int (*zone_set_upstream)(store_db_t *db, const char *customer_id, const char *zone, const char *url, char *err,
                             size_t err_cap);

    /* One import, in one transaction, all or nothing: -ENOENT for an unknown customer
     * before any record is pulled; then store_import_next until it returns 0 (or a negative
     * code, returned as is, err left as the feed wrote it). The rows get consecutive seqs
     * after the current one, and the counter is written once, at the end; updated_ms is one
     * clock reading for the whole import (it is one change). A (customer, session_key) that
     * exists (stored, or earlier in this import) is -EEXIST, returned before the next record
     * is pulled: store.c and the command line name the record pulled last. Holds the change
     * feed's ordering (no other write takes seqs until it commits). Imports write millions
     * of rows: bind and step one prepared insert per record (or the backend's equivalent),
     * never build SQL text per row. */
    int (*sessions_import)(store_db_t *db, const char *customer_id, store_import_t *im, char *err, size_t err_cap);
    /* Inserts or replaces the session (customer_id, session_key) with `rec`, `worker` (NULL:
     * run by no browserd process), updated_ms now and the next seq, in one transaction.
     * -ENOENT for an unknown customer. */
    int (*session_save)(store_db_t *db, const char *customer_id, const char *session_key, const session_record_t *rec,
                        const char *worker, char *err, size_t err_cap);
    /* n session saves (as session_save, the same worker) in one transaction, each with the
     * next seq in array order; keys[i] is the session key of items[i]. -ENOENT for an unknown
     * customer (nothing written). */
    int (*sessions_save)(store_db_t *db, const store_session_write_t *items, const char *const *keys, size_t n,
                         const char *worker, char *err, size_t err_cap);
    /* In one transaction, every session with status running and a worker that is node_id or
     * holds no live lease (no nodes row with lease_until_ms > now) becomes failed: duration
     * max(0, updated_ms - timestamp_ms) (it ran until its last save), error_code
     * "worker_disconnect", error_message STORE_ORPHAN_MESSAGE, worker NULL, each with a new
     * seq. *failed: how many (set on success only). -ENOMEM with a reason. */
    int (*sessions_fail_orphans)(store_db_t *db, const char *node_id, int64_t *failed, char *err, size_t err_cap);

    /* Nodes (one row per node id: host, pid, started_ms, lease_until_ms). In one
     * transaction: when a row exists with lease_until_ms > now and another (host, pid), and
     * take_over is false: -EBUSY with that host and pid copied out; otherwise the row becomes
     * (host, pid, now, now + lease_ms). */
    int (*node_register)(store_db_t *db, const char *node_id, const char *host, int pid, int64_t lease_ms,
                         bool take_over, char *holder_host, int *holder_pid, char *err, size_t err_cap);
    /* lease_until_ms = now + lease_ms where (node_id, pid) holds the row; -ENOENT when not. */
    int (*node_heartbeat)(store_db_t *db, const char *node_id, int pid, int64_t lease_ms, char *err, size_t err_cap);
    /* Deletes the row where (node_id, pid) holds it (0 also when it does not). */
    int (*node_release)(store_db_t *db, const char *node_id, int pid, char *err, size_t err_cap);
    /* In one transaction, for every row with lease_until_ms <= now: its running sessions
     * (worker = node_id) fail as in sessions_fail_orphans, the row is deleted. Two nodes
     * reaping at once fail each session once (row locks, or the single writer). */
    int (*nodes_reap)(store_db_t *db, int64_t *nodes, int64_t *failed, char *err, size_t err_cap);
    /* The session's status, worker ("" when NULL) and whether the worker holds a live lease;
     * -ENOENT when there is no such session. */
    int (*session_owner)(store_db_t *db, const char *customer_id, const char *session_key, session_status_t *status,
                         char *worker, bool *worker_alive, char *err, size_t err_cap);
    /* A running session becomes failed with code/message, duration max(0, now - timestamp),
     * worker NULL, updated_ms now, a new seq; -ENOENT no session, -EALREADY not running. */
    int (*session_end)(store_db_t *db, const char *customer_id, const char *session_key, const char *code,
                       const char *message, char *err, size_t err_cap);
    /* Optional (NULL: the backend has none, store.h answers -ENOTSUP). */
    int (*events_start)(store_db_t *db, const store_events_t *events, void *ctx, char *err, size_t err_cap);
    void (*events_stop)(store_db_t *db);
    int (*publish)(store_db_t *db, const char *topic, const char *payload, char *err, size_t err_cap);
    /* A trivial round trip: 0, or -EIO with a reason. */
    int (*ping)(store_db_t *db, char *err, size_t err_cap);
    /* The counter's value (0 for a new database): a lookup, called once per API request. A
     * missing counter is a damaged database: -EIO "meta row change_seq is missing". */
    int (*change_seq)(store_db_t *db, int64_t *seq, char *err, size_t err_cap);
    /* Calls cb for every session with seq > after_seq, in seq order, from one consistent
     * snapshot, with the record's strings borrowed for the call (api_name never NULL);
     * *last_seq is the seq of the last row cb accepted (store.c sets it to after_seq first).
     * A non-zero cb result stops and is returned without a reason. cb may call the store
     * again on the same thread, so the rows must not hold the connection that call would
     * use. A row that cannot be a session (bad id, status or captcha) is -EIO. */
    int (*sessions_since)(store_db_t *db, int64_t after_seq, int64_t *last_seq, store_session_cb cb, void *ctx,
                          char *err, size_t err_cap);

    /* ---- webhooks (store.h; the outbox is filled by the schema's triggers) ---- */
    /* Inserts the webhook. -EEXIST when webhook_id is taken (store.c draws another), -ENOENT
     * for an unknown customer. */
    int (*webhook_add)(store_db_t *db, const char *customer_id, const char *webhook_id, const char *url,
                       const char *secret, char *err, size_t err_cap);
    /* Oldest first, *out malloc'ed (NULL and 0 when none); -ENOENT for an unknown customer. */
    int (*webhook_list)(store_db_t *db, const char *customer_id, store_webhook_info_t **out, size_t *count,
                        char *err, size_t err_cap);
    /* Deletes the webhook and its deliveries in one transaction; -ENOENT when none. */
    int (*webhook_remove)(store_db_t *db, const char *webhook_id, char *err, size_t err_cap);
    /* The last `limit` deliveries of the customer, oldest first; -ENOENT for an unknown one. */
    int (*webhook_deliveries)(store_db_t *db, const char *customer_id, size_t limit, store_delivery_info_t **out,
                              size_t *count, char *err, size_t err_cap);
    /* As store_webhook_claim, with the clock read once (now); the records copied (owned). */
    int (*webhook_claim)(store_db_t *db, const char *claimer, int64_t now, int64_t lease_until, size_t max,
                         store_delivery_t **out, size_t *count, char *err, size_t err_cap);
    /* As store_webhook_record; error already cut, never NULL. */
    int (*webhook_record)(store_db_t *db, const char *delivery_id, const store_delivery_outcome_t *o, int64_t now,
                          char *err, size_t err_cap);
    /* Clears the claims held by claimer on pending deliveries. */
    int (*webhook_release)(store_db_t *db, const char *claimer, char *err, size_t err_cap);
    int (*webhook_pending)(store_db_t *db, int64_t *pending, char *err, size_t err_cap);
    /* Deletes rows with state <> 0 and done_ms < before_ms; *deleted: how many. */
    int (*webhook_prune)(store_db_t *db, int64_t before_ms, int64_t *deleted, char *err, size_t err_cap);

    /* ---- db copy (optional: NULL where the backend cannot be that side) ---- */
    /* Source: calls cb for every row of `kind` (sessions: with seq > after_seq, in seq order,
     * from one snapshot), strings borrowed for the call; a non-zero cb result stops and is
     * returned. A row that cannot be one (bad id, hash length) is -EIO. */
    int (*export_items)(store_db_t *db, store_item_kind_t kind, int64_t after_seq, store_item_cb cb, void *ctx,
                        char *err, size_t err_cap);
    /* Source: how many sessions have seq > after_seq. */
    int (*sessions_count)(store_db_t *db, int64_t after_seq, int64_t *count, char *err, size_t err_cap);
    /* Destination: what earlier runs of source_id staged (the last source seq, how many;
     * 0 and 0 when none). */
    int (*copy_resume)(store_db_t *db, const char *source_id, int64_t *staged_seq, int64_t *staged, char *err,
                       size_t err_cap);
    /* Destination: stages n sessions (in source seq order, after the staged ones) and moves
     * the progress mark to the last one's seq, in one transaction. */
    int (*copy_stage)(store_db_t *db, const char *source_id, const store_item_t *items, size_t n, char *err,
                      size_t err_cap);
    /* Destination: in one transaction, the customers, keys and zones given (items) and every
     * staged session of source_id are written (what exists with the same content is kept;
     * other content is -EEXIST with the row named in err, nothing written), the staging of
     * source_id dropped. stats' *_new fields are set. */
    int (*copy_commit)(store_db_t *db, const char *source_id, const store_item_t *items, size_t n,
                       store_copy_stats_t *stats, char *err, size_t err_cap);
    /* Destination: drops the staging of source_id. */
    int (*copy_abandon)(store_db_t *db, const char *source_id, char *err, size_t err_cap);
} store_backend_t;

/* What a store_t is (store.h keeps it opaque; store.c and store_copy.c reach into it). */
struct store {
    const store_backend_t *backend;
    store_db_t *db;
    metric_histogram_t write_latency; /* store_sessions_save, any thread */
    _Atomic uint64_t write_failures;
};

/* The backends (each defined by its <name>_store.c). */
extern const store_backend_t store_sqlite_backend;
extern const store_backend_t store_pg_backend;

/* ---- shared by the backends (defined in store.c) ---- */

__attribute__((format(printf, 3, 4))) void store_set_err(char *err, size_t err_cap, const char *fmt, ...);

/* The next record of an import: 1 with *rec (checked) and *session_key, both owned by the
 * import and valid until the next call; 0 at the end of the records; -EINVAL with the reason
 * in err when the source failed or the record is not a valid session. */
int store_import_next(store_import_t *im, const session_record_t **rec, const char **session_key, char *err,
                      size_t err_cap);
/* A backend that finds a duplicate after pulling further records (-EEXIST) names the one
 * refused: its index among the records pulled (0-based) and its session id (borrowed). */
void store_import_refuse(store_import_t *im, int64_t index, const char *session_id);
/* The passwords of a libpq URI as written in it (the user part's, each password= parameter's):
 * up to max (pointer into target, length), in order; how many. A file path has none. */
size_t store_uri_passwords(const char *target, const char **at, size_t *len, size_t max);

/* rc, after logging reason when rc is a failure that has one: the entry points without an err
 * parameter still owe the operator the database's reason (answers leave it empty). */
int store_logged(int rc, const char *op, const char *reason);
/* Random bytes from the kernel (getrandom): 0 or -EIO. */
int store_fill_random(void *buf, size_t len);
/* Lowercase hex of in (2 * len characters and a NUL into out). */
void store_hex_encode(const uint8_t *in, size_t len, char *out);

/* The lowercase session key of a session id (36 characters). */
void store_session_key_of(const char *session_id, char key[37]);

/* Decides store_key_authenticate over the row found by the key's hash (its columns as
 * stored, borrowed): 0 and the owner copied to customer_out when the stored hash equals
 * key_hash (compared in constant time), the key is not revoked and the owner id fits;
 * -ENOENT otherwise. */
int store_key_row_check(const uint8_t key_hash[STORE_HASH_LEN], const void *stored_hash, size_t stored_len,
                        bool revoked, const char *customer, char customer_out[STORE_ID_MAX + 1]);

/* Decides store_zone_authorize over the zone's row (its columns as stored, borrowed): 0 when
 * store_zone_password_verify accepts the password, then copies the stored upstream (NULL:
 * none) to `upstream`; -EACCES for another password; -EIO with a reason for a malformed row
 * or a hashing failure. */
int store_zone_row_check(const void *salt, size_t salt_len, const void *stored_hash, size_t stored_len,
                         const char *password, const char *stored_upstream, char *upstream, size_t upstream_cap,
                         char *err, size_t err_cap);

/* SHA-256 of a || b (b may be empty): 0 or -EIO. Any thread. */
int store_sha256_two(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t out[STORE_HASH_LEN]);

/* ---- zone passwords (zone_password.c) ----
 * Stored: PBKDF2-HMAC-SHA256(SHA-256(salt || password), salt, 100000 iterations), 32 bytes,
 * with a random 16-byte salt per zone. Slow on purpose (~20 ms): these functions block and
 * run on worker threads only, like the rest of the store. Any thread (the memory of verified
 * passwords has its own lock). */
/* The hash of a new or presented password. 0 or -EIO. */
int store_zone_password_hash(const uint8_t *salt, size_t salt_len, const char *password, size_t password_len,
                             uint8_t out[STORE_HASH_LEN]);
/* Schema 3 stored SHA-256(salt || password): the stored hash of today from that one, so that
 * migration 4 rehashes every zone without its password. 0 or -EIO. */
int store_zone_password_upgrade(const uint8_t *salt, size_t salt_len, const uint8_t legacy[STORE_HASH_LEN],
                                uint8_t out[STORE_HASH_LEN]);
/* 0 when the password's hash equals `stored` (constant time), -EACCES when not, -EIO when
 * hashing failed. A password verified against this very (salt, stored) before, in this
 * process, is accepted from memory without the KDF (*from_cache set; may be NULL): the memory
 * holds a keyed hash of (salt, stored, password) under a key drawn at random per process,
 * never a password, and forgets nothing but what a newer entry in the same slot replaces.
 * A wrong password always costs the KDF. */
int store_zone_password_verify(const uint8_t *salt, size_t salt_len, const uint8_t stored[STORE_HASH_LEN],
                               const char *password, bool *from_cache);
/* Runs the KDF over the password for nothing: an unknown customer or zone then takes as long
 * as a wrong password, so the time of a refusal does not tell which it was. */
void store_zone_password_burn(const char *password);

/* The refusal of a database whose schema `version` is newer than the `known` one: -EIO. */
int store_schema_too_new(int64_t version, int known, char *err, size_t err_cap);

#endif
