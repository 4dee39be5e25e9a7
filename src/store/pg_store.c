/* The operations of the PostgreSQL backend (store_internal.h states what each must do;
 * docs/store.md describes the schema, the change feed and the notifications). pg_schema.c
 * provides the connections, statements and transactions; pg_events.c the listener and what it
 * keeps in memory; pg_bulk.c the imports and the destination side of db copy.
 *
 * The change feed: every write of sessions first updates the counter row meta.change_seq
 * (UPDATE ... value + n), whose row lock is then held to the commit. So writers take their
 * seqs one after another and commit in seq order (a SEQUENCE would not: nextval is not
 * transactional). The same statement notifies browserd_changes with the last seq taken; the
 * notification is delivered when, and only if, the transaction commits. */
#include "store/pg_internal.h"

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
#define SESSION_UPDATE                                                                               \
    " ON CONFLICT (customer_id, session_key) DO UPDATE SET session_id = excluded.session_id, "       \
    "api_name = excluded.api_name, status = excluded.status, target_url = excluded.target_url, "      \
    "end_url = excluded.end_url, navigations = excluded.navigations, "                                \
    "timestamp_ms = excluded.timestamp_ms, duration_ms = excluded.duration_ms, "                      \
    "captcha = excluded.captcha, bandwidth = excluded.bandwidth, error_code = excluded.error_code, " \
    "error_message = excluded.error_message, seq = excluded.seq, updated_ms = excluded.updated_ms, "  \
    "worker = excluded.worker"
/* The first 14 columns of a session from parameters, typed (INSERT ... SELECT does not take
 * the target's types for parameters as VALUES does). */
#define SESSION_PARAMS                                                                               \
    "$1::text, $2::text, $3::text, $4::text, $5::smallint, $6::text, $7::text, $8::bigint, $9::bigint, " \
    "$10::bigint, $11::smallint, $12::bigint, $13::text, $14::text"
#define NOTIFY_SEQ "pg_notify('browserd_changes', seq::text)"
/* The sessions of o that a dead process left running, failed ($1 the message, $2 + rn the new
 * seq: $2 is the counter, locked). */
#define FAIL_ORPHAN                                                                                  \
    "UPDATE sessions s SET status = 2, duration_ms = GREATEST(0, s.updated_ms - s.timestamp_ms), " \
    "error_code = 'worker_disconnect', error_message = $1, seq = $2 + o.rn, worker = NULL FROM o "   \
    "WHERE s.customer_id = o.customer_id AND s.session_key = o.session_key"

const char *const store_pg_stmt_sql[PSTMT_COUNT] = {
    [PSTMT_CHANGE_SEQ] = "SELECT value FROM meta WHERE name = 'change_seq'",
    [PSTMT_CHANGE_SEQ_LOCK] = "SELECT value FROM meta WHERE name = 'change_seq' FOR UPDATE",
    [PSTMT_CHANGE_SEQ_ADD] = "UPDATE meta SET value = value + $1 WHERE name = 'change_seq' "
                             "RETURNING value, pg_notify('browserd_changes', value::text)",
    [PSTMT_CUSTOMER_INSERT] = "WITH c AS (INSERT INTO customers (customer_id, created_ms) VALUES ($1, $2) RETURNING 1) "
                              "UPDATE meta SET value = value + (SELECT count(*) FROM c) WHERE name = 'customer_count'",
    [PSTMT_CUSTOMER_EXISTS] = "SELECT 1 FROM customers WHERE customer_id = $1",
    [PSTMT_CUSTOMER_COUNT] = "SELECT value FROM meta WHERE name = 'customer_count'",
    [PSTMT_KEY_INSERT] = "INSERT INTO api_keys (key_id, customer_id, key_hash, created_ms) VALUES ($1, $2, $3, $4) "
                         "RETURNING pg_notify('browserd_keys', key_id)",
    [PSTMT_KEY_LIST] = "SELECT key_id, created_ms, revoked_ms IS NOT NULL FROM api_keys WHERE customer_id = $1 "
                       "ORDER BY created_ms, ord",
    [PSTMT_KEY_REVOKE] = "UPDATE api_keys SET revoked_ms = $2 WHERE key_id = $1 AND revoked_ms IS NULL "
                         "RETURNING pg_notify('browserd_keys', key_id)",
    [PSTMT_KEY_EXISTS] = "SELECT 1 FROM api_keys WHERE key_id = $1",
    [PSTMT_KEY_AUTHENTICATE] = "SELECT customer_id, key_hash, revoked_ms IS NOT NULL FROM api_keys WHERE key_hash = $1",
    [PSTMT_ZONE_INSERT] = "INSERT INTO zones (customer_id, name, salt, password_hash, created_ms) "
                          "VALUES ($1, $2, $3, $4, $5)",
    [PSTMT_ZONE_CHECK] = "SELECT salt, password_hash, upstream_proxy FROM zones WHERE customer_id = $1 AND name = $2",
    [PSTMT_ZONE_SET_UPSTREAM] = "UPDATE zones SET upstream_proxy = $3 WHERE customer_id = $1 AND name = $2",
    /* The customer is checked in the statement (sessions has no foreign key: pg_schema.c):
     * without it, no seq is taken and no row is written (0 rows: -ENOENT). */
    [PSTMT_SESSION_SAVE_ONE] = "WITH c AS (UPDATE meta SET value = value + 1 WHERE name = 'change_seq' AND EXISTS "
                               "(SELECT 1 FROM customers WHERE customer_id = $1) RETURNING value) "
                               "INSERT INTO sessions (" SESSION_COLUMNS ") SELECT " SESSION_PARAMS ", c.value, "
                               "$15::bigint, $16::text FROM c" SESSION_UPDATE " RETURNING seq, " NOTIFY_SEQ,
    [PSTMT_SESSION_UPSERT] = "INSERT INTO sessions (" SESSION_COLUMNS ") SELECT " SESSION_PARAMS ", $15::bigint, "
                             "$16::bigint, $17::text WHERE EXISTS (SELECT 1 FROM customers WHERE customer_id = $1)"
                             SESSION_UPDATE,
    [PSTMT_SESSIONS_PAGE] = "SELECT customer_id, session_id, api_name, status, target_url, end_url, navigations, "
                            "timestamp_ms, duration_ms, captcha, bandwidth, error_code, error_message, seq "
                            "FROM sessions WHERE seq > $1 ORDER BY seq LIMIT $2",
    /* $3 this node, $4 now: its own previous life's sessions and those of workers without a
     * live lease; the new seqs follow the old order */
    [PSTMT_ORPHANS_FAIL] = "WITH o AS (SELECT customer_id, session_key, row_number() OVER (ORDER BY seq) AS rn "
                           "FROM sessions WHERE status = 0 AND worker IS NOT NULL AND (worker = $3 OR NOT EXISTS "
                           "(SELECT 1 FROM nodes n WHERE n.node_id = sessions.worker AND n.lease_until_ms > $4))) "
                           FAIL_ORPHAN,
    [PSTMT_NODE_PUT] = "INSERT INTO nodes AS n (node_id, host, pid, started_ms, lease_until_ms) "
                       "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, "
                       "pid = excluded.pid, started_ms = excluded.started_ms, lease_until_ms = excluded.lease_until_ms "
                       "WHERE n.lease_until_ms <= $4 OR (n.host = excluded.host AND n.pid = excluded.pid) "
                       "OR $6::boolean RETURNING 1",
    [PSTMT_NODE_HOLDER] = "SELECT host, pid FROM nodes WHERE node_id = $1",
    [PSTMT_NODE_HEARTBEAT] = "UPDATE nodes SET lease_until_ms = $3 WHERE node_id = $1 AND pid = $2",
    [PSTMT_NODE_DELETE] = "DELETE FROM nodes WHERE node_id = $1 AND pid = $2",
    /* $3 now: the expired nodes go, their running sessions fail */
    [PSTMT_NODES_REAP] = "WITH dead AS (DELETE FROM nodes WHERE lease_until_ms <= $3 RETURNING node_id), "
                         "o AS (SELECT customer_id, session_key, row_number() OVER (ORDER BY seq) AS rn FROM sessions "
                         "WHERE status = 0 AND worker IN (SELECT node_id FROM dead)), "
                         "u AS (" FAIL_ORPHAN " RETURNING 1) "
                         "SELECT (SELECT count(*) FROM dead), (SELECT count(*) FROM u)",
    [PSTMT_SESSION_OWNER] = "SELECT status, coalesce(worker, ''), EXISTS (SELECT 1 FROM nodes WHERE "
                            "nodes.node_id = sessions.worker AND nodes.lease_until_ms > $3) FROM sessions "
                            "WHERE customer_id = $1 AND session_key = $2",
    [PSTMT_SESSION_END] = "UPDATE sessions SET status = 2, duration_ms = GREATEST(0, $3 - timestamp_ms), "
                          "error_code = $4, error_message = $5, seq = $6, updated_ms = $3, worker = NULL "
                          "WHERE customer_id = $1 AND session_key = $2 AND status = 0",
    [PSTMT_PING] = "SELECT 1",
    [PSTMT_PUBLISH] = "SELECT pg_notify('browserd_' || $1, $2)",
};

static pg_db_t *pg_db(store_db_t *db) { return (pg_db_t *)db; }

/* One statement on the calling thread's connection, outside any transaction. */
static int run(store_db_t *db, pg_stmt_id_t id, const pg_params_t *p, PGresult **out, char *err, size_t err_cap) {
    if (out) *out = NULL;
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    return c ? store_pg_exec(c, id, p, out, err, err_cap) : -EIO;
}

/* A statement that must find one row: 0 with *out, -ENOENT when none. */
static int run_row(store_db_t *db, pg_stmt_id_t id, const pg_params_t *p, PGresult **out, char *err, size_t err_cap) {
    int rc = run(db, id, p, out, err, err_cap);
    if (rc == 0 && PQntuples(*out) == 0) {
        PQclear(*out);
        *out = NULL;
        rc = -ENOENT;
    }
    return rc;
}

/* A write that must change a row: 0, or -ENOENT when it changed none. */
static int run_change(store_db_t *db, pg_stmt_id_t id, const pg_params_t *p, char *err, size_t err_cap) {
    PGresult *r = NULL;
    int rc = run(db, id, p, &r, err, err_cap);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0) rc = -ENOENT;
    PQclear(r);
    return rc;
}

/* A counter of the meta table; its row missing is a damaged database. */
static int read_meta(store_db_t *db, pg_stmt_id_t id, const char *name, int64_t *value, char *err, size_t err_cap) {
    PGresult *r = NULL;
    int rc = run_row(db, id, NULL, &r, err, err_cap);
    if (rc == 0) *value = store_pg_int(r, 0, 0);
    PQclear(r);
    if (rc == -ENOENT) store_set_err(err, err_cap, "meta row %s is missing", name);
    return rc == -ENOENT ? -EIO : rc;
}

/* ---- customers ---- */

static int pg_customer_add(store_db_t *db, const char *customer_id, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, customer_id);
    store_pg_param_int(&p, time_now_ms());
    return run(db, PSTMT_CUSTOMER_INSERT, &p, NULL, err, err_cap);
}

static int pg_customer_exists(store_db_t *db, const char *customer_id, char *err, size_t err_cap) {
    pg_params_t p = {0};
    PGresult *r = NULL;
    store_pg_param_text(&p, customer_id);
    int rc = run_row(db, PSTMT_CUSTOMER_EXISTS, &p, &r, err, err_cap);
    PQclear(r);
    return rc;
}

static int pg_customer_count(store_db_t *db, int64_t *count, char *err, size_t err_cap) {
    return read_meta(db, PSTMT_CUSTOMER_COUNT, "customer_count", count, err, err_cap);
}

/* ---- API keys ---- */

static int pg_key_add(store_db_t *db, const char *customer_id, const char *key_id, const uint8_t key_hash[STORE_HASH_LEN],
                   char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, key_id);
    store_pg_param_text(&p, customer_id);
    store_pg_param_bytes(&p, key_hash, STORE_HASH_LEN);
    store_pg_param_int(&p, time_now_ms());
    int rc = run(db, PSTMT_KEY_INSERT, &p, NULL, err, err_cap);
    if (rc == 0) store_pg_key_cache_drop(pg_db(db)); /* a key this process answered "unknown" for */
    return rc;
}

static int pg_key_list(store_db_t *db, const char *customer_id, store_key_info_t **out, size_t *count, char *err,
                    size_t err_cap) {
    int rc = pg_customer_exists(db, customer_id, err, err_cap);
    if (rc != 0) return rc;
    pg_params_t p = {0};
    PGresult *r = NULL;
    store_pg_param_text(&p, customer_id);
    if ((rc = run(db, PSTMT_KEY_LIST, &p, &r, err, err_cap)) != 0) return rc;
    int n = PQntuples(r);
    store_key_info_t *keys = n ? calloc((size_t)n, sizeof *keys) : NULL;
    if (n && !keys) {
        PQclear(r);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        snprintf(keys[i].key_id, sizeof keys[i].key_id, "%s", PQgetvalue(r, i, 0));
        keys[i].created_ms = store_pg_int(r, i, 1);
        keys[i].revoked = strcmp(PQgetvalue(r, i, 2), "t") == 0;
    }
    PQclear(r);
    *out = keys;
    *count = (size_t)n;
    return 0;
}

static int pg_key_revoke(store_db_t *db, const char *key_id, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, key_id);
    store_pg_param_int(&p, time_now_ms());
    int rc = run_change(db, PSTMT_KEY_REVOKE, &p, err, err_cap);
    /* This process stops accepting the key at once, without waiting for its notification. */
    store_pg_key_cache_drop(pg_db(db));
    if (rc != -ENOENT) return rc;
    /* Nothing changed: no such key, or revoked already (revoking is idempotent). */
    PGresult *r = NULL;
    pg_params_t q = {0};
    store_pg_param_text(&q, key_id);
    rc = run_row(db, PSTMT_KEY_EXISTS, &q, &r, err, err_cap);
    PQclear(r);
    return rc;
}

static int pg_key_authenticate(store_db_t *db, const uint8_t key_hash[STORE_HASH_LEN], char customer_out[STORE_ID_MAX + 1],
                            char *err, size_t err_cap) {
    pg_db_t *d = pg_db(db);
    int cached = 0;
    /* The generation is read before the database, so that an answer read before a drop of
     * the cache is not put back after it. */
    uint64_t generation = store_pg_key_cache_generation(d);
    if (store_pg_key_cache_lookup(d, key_hash, &cached, customer_out)) return cached;
    pg_params_t p = {0};
    PGresult *r = NULL;
    store_pg_param_bytes(&p, key_hash, STORE_HASH_LEN);
    int rc = run(db, PSTMT_KEY_AUTHENTICATE, &p, &r, err, err_cap);
    if (rc != 0) return rc;
    int result = -ENOENT;
    if (PQntuples(r) == 1) {
        uint8_t stored[STORE_HASH_LEN];
        int len = store_pg_bytea(r, 0, 1, stored, sizeof stored);
        result = store_key_row_check(key_hash, len > 0 ? stored : NULL, len > 0 ? (size_t)len : 0,
                                     strcmp(PQgetvalue(r, 0, 2), "t") == 0, store_pg_text(r, 0, 0), customer_out);
    }
    PQclear(r);
    store_pg_key_cache_put(d, generation, key_hash, result, customer_out);
    return result;
}

/* ---- zones ---- */

static int pg_zone_add(store_db_t *db, const char *customer_id, const char *zone, const uint8_t salt[STORE_ZONE_SALT_LEN],
                    const uint8_t password_hash[STORE_HASH_LEN], char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, customer_id);
    store_pg_param_text(&p, zone);
    store_pg_param_bytes(&p, salt, STORE_ZONE_SALT_LEN);
    store_pg_param_bytes(&p, password_hash, STORE_HASH_LEN);
    store_pg_param_int(&p, time_now_ms());
    return run(db, PSTMT_ZONE_INSERT, &p, NULL, err, err_cap);
}

static int pg_zone_authorize(store_db_t *db, const char *customer_id, const char *zone, const char *password,
                          char *upstream, size_t upstream_cap, char *err, size_t err_cap) {
    pg_params_t p = {0};
    PGresult *r = NULL;
    store_pg_param_text(&p, customer_id);
    store_pg_param_text(&p, zone);
    int rc = run_row(db, PSTMT_ZONE_CHECK, &p, &r, err, err_cap);
    if (rc != 0) return rc;
    uint8_t salt[64], hash[64];
    int salt_len = store_pg_bytea(r, 0, 0, salt, sizeof salt), hash_len = store_pg_bytea(r, 0, 1, hash, sizeof hash);
    rc = store_zone_row_check(salt_len >= 0 ? salt : NULL, salt_len >= 0 ? (size_t)salt_len : 0,
                              hash_len >= 0 ? hash : NULL, hash_len >= 0 ? (size_t)hash_len : 0, password,
                              store_pg_text(r, 0, 2), upstream, upstream_cap, err, err_cap);
    PQclear(r);
    return rc;
}

static int pg_zone_set_upstream(store_db_t *db, const char *customer_id, const char *zone, const char *url, char *err,
                             size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, customer_id);
    store_pg_param_text(&p, zone);
    store_pg_param_text(&p, url);
    return run_change(db, PSTMT_ZONE_SET_UPSTREAM, &p, err, err_cap);
}

/* ---- sessions ---- */

/* The first 14 parameters of PSTMT_SESSION_SAVE_ONE and PSTMT_SESSION_UPSERT: everything
 * borrowed until the statement ran. */
static void param_session(pg_params_t *p, const char *customer_id, const char *session_key,
                          const session_record_t *r) {
    store_pg_param_text(p, customer_id);
    store_pg_param_text(p, session_key);
    store_pg_param_text(p, r->session_id);
    store_pg_param_text(p, r->api_name);
    store_pg_param_int(p, (int)r->status);
    store_pg_param_text(p, r->target_url);
    store_pg_param_text(p, r->end_url);
    store_pg_param_int(p, r->navigations);
    store_pg_param_int(p, r->timestamp_ms);
    if (r->duration_ms == SESSION_DURATION_NULL) store_pg_param_text(p, NULL);
    else store_pg_param_int(p, r->duration_ms);
    store_pg_param_int(p, (int)r->captcha);
    store_pg_param_int(p, r->bandwidth);
    store_pg_param_text(p, r->error_code);
    store_pg_param_text(p, r->error_message);
}

static int pg_session_save(store_db_t *db, const char *customer_id, const char *session_key, const session_record_t *rec,
                        const char *worker, char *err, size_t err_cap) {
    pg_params_t p = {0};
    PGresult *r = NULL;
    param_session(&p, customer_id, session_key, rec);
    store_pg_param_int(&p, time_now_ms());
    store_pg_param_text(&p, worker);
    int rc = run(db, PSTMT_SESSION_SAVE_ONE, &p, &r, err, err_cap);
    if (rc == 0 && PQntuples(r) == 0) rc = -ENOENT; /* no such customer */
    if (rc == 0) store_pg_seen_seq(pg_db(db), store_pg_int(r, 0, 0));
    PQclear(r);
    return rc;
}

static int pg_sessions_save(store_db_t *db, const store_session_write_t *items, const char *const *keys, size_t n,
                         const char *worker, char *err, size_t err_cap) {
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    if (!c) return -EIO;
    int64_t last = 0, now = time_now_ms();
    int rc = store_pg_tx_begin(c, err, err_cap);
    if (rc != 0) return rc;
    rc = store_pg_take_seqs(c, (int64_t)n, &last, err, err_cap);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        pg_params_t p = {0};
        param_session(&p, items[i].customer_id, keys[i], items[i].rec);
        store_pg_param_int(&p, last - (int64_t)n + 1 + (int64_t)i);
        store_pg_param_int(&p, now);
        store_pg_param_text(&p, worker);
        PGresult *r = NULL;
        rc = store_pg_exec(c, PSTMT_SESSION_UPSERT, &p, &r, err, err_cap);
        if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0) rc = -ENOENT; /* no such customer */
        PQclear(r);
    }
    rc = store_pg_tx_end(c, rc, err, err_cap);
    if (rc == 0) store_pg_seen_seq(pg_db(db), last);
    return rc;
}

/* Parameters of a statement that fails sessions: $1 the message, $2 the base seq (set by
 * fail_sessions), then the statement's own. */
static void param_fail(pg_params_t *p) {
    store_pg_param_text(p, STORE_ORPHAN_MESSAGE);
    store_pg_param_int(p, 0);
}

/* In one transaction: the counter locked and read, the statement run (sessions failed with the
 * seqs after it), as many seqs taken. The statement reports the sessions failed as its changed
 * rows, or (with_nodes) as one row (nodes removed, sessions failed). */
static int fail_sessions(store_db_t *db, pg_stmt_id_t id, pg_params_t *p, bool with_nodes, int64_t *nodes,
                         int64_t *failed, char *err, size_t err_cap) {
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    if (!c) return -EIO;
    int64_t base = 0, last = 0, nfailed = 0, nnodes = 0;
    PGresult *r = NULL;
    int rc = store_pg_tx_begin(c, err, err_cap);
    if (rc == 0) rc = store_pg_lock_seq(c, &base, err, err_cap);
    if (rc == 0) {
        snprintf(p->num[1], sizeof p->num[1], "%" PRId64, base);
        rc = store_pg_exec(c, id, p, &r, err, err_cap);
    }
    if (rc == 0 && with_nodes) {
        nnodes = store_pg_int(r, 0, 0);
        nfailed = store_pg_int(r, 0, 1);
    } else if (rc == 0) {
        nfailed = strtoll(PQcmdTuples(r), NULL, 10);
    }
    PQclear(r);
    if (rc == 0 && nfailed > 0) rc = store_pg_take_seqs(c, nfailed, &last, err, err_cap);
    rc = store_pg_tx_end(c, rc, err, err_cap);
    if (rc != 0) return rc;
    *failed = nfailed;
    if (nodes) *nodes = nnodes;
    if (last) store_pg_seen_seq(pg_db(db), last);
    return 0;
}

static int pg_sessions_fail_orphans(store_db_t *db, const char *node_id, int64_t *failed, char *err, size_t err_cap) {
    pg_params_t p = {0};
    param_fail(&p);
    store_pg_param_text(&p, node_id);
    store_pg_param_int(&p, time_now_ms());
    return fail_sessions(db, PSTMT_ORPHANS_FAIL, &p, false, NULL, failed, err, err_cap);
}

static int pg_nodes_reap(store_db_t *db, int64_t *nodes, int64_t *failed, char *err, size_t err_cap) {
    pg_params_t p = {0};
    param_fail(&p);
    store_pg_param_int(&p, time_now_ms());
    return fail_sessions(db, PSTMT_NODES_REAP, &p, true, nodes, failed, err, err_cap);
}

/* ---- nodes ---- */

static int pg_node_register(store_db_t *db, const char *node_id, const char *host, int pid, int64_t lease_ms,
                         bool take_over, char *holder_host, int *holder_pid, char *err, size_t err_cap) {
    /* One statement decides and writes (the row lock of ON CONFLICT makes it atomic); when it
     * wrote nothing the holder is read after, and a holder gone meanwhile means another try. */
    for (int attempt = 0; attempt < 3; attempt++) {
        int64_t now = time_now_ms();
        pg_params_t p = {0};
        PGresult *r = NULL;
        store_pg_param_text(&p, node_id);
        store_pg_param_text(&p, host);
        store_pg_param_int(&p, pid);
        store_pg_param_int(&p, now);
        store_pg_param_int(&p, now + lease_ms);
        store_pg_param_text(&p, take_over ? "t" : "f");
        int rc = run_change(db, PSTMT_NODE_PUT, &p, err, err_cap);
        if (rc != -ENOENT) return rc;
        pg_params_t q = {0};
        store_pg_param_text(&q, node_id);
        rc = run_row(db, PSTMT_NODE_HOLDER, &q, &r, err, err_cap);
        if (rc == 0) {
            snprintf(holder_host, STORE_NODE_ID_MAX + 1, "%s", PQgetvalue(r, 0, 0));
            *holder_pid = (int)store_pg_int(r, 0, 1);
            PQclear(r);
            return -EBUSY;
        }
        if (rc != -ENOENT) return rc;
    }
    store_set_err(err, err_cap, "the lease of node %s changed hands three times while registering", node_id);
    return -EIO;
}

static int pg_node_heartbeat(store_db_t *db, const char *node_id, int pid, int64_t lease_ms, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, node_id);
    store_pg_param_int(&p, pid);
    store_pg_param_int(&p, time_now_ms() + lease_ms);
    return run_change(db, PSTMT_NODE_HEARTBEAT, &p, err, err_cap);
}

static int pg_node_release(store_db_t *db, const char *node_id, int pid, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, node_id);
    store_pg_param_int(&p, pid);
    return run(db, PSTMT_NODE_DELETE, &p, NULL, err, err_cap);
}

/* ---- one session ---- */

static int owner_on(pg_conn_t *c, const char *customer_id, const char *session_key, session_status_t *status,
                    char *worker, bool *worker_alive, char *err, size_t err_cap) {
    pg_params_t p = {0};
    PGresult *r = NULL;
    store_pg_param_text(&p, customer_id);
    store_pg_param_text(&p, session_key);
    store_pg_param_int(&p, time_now_ms());
    int rc = store_pg_exec(c, PSTMT_SESSION_OWNER, &p, &r, err, err_cap);
    if (rc == 0 && PQntuples(r) == 0) rc = -ENOENT;
    if (rc == 0) {
        int64_t st = store_pg_int(r, 0, 0);
        *status = st >= 0 && st < SESSION_STATUS_COUNT ? (session_status_t)st : SESSION_FAILED;
        snprintf(worker, STORE_NODE_ID_MAX + 1, "%s", PQgetvalue(r, 0, 1));
        *worker_alive = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    }
    PQclear(r);
    return rc;
}

static int pg_session_owner(store_db_t *db, const char *customer_id, const char *session_key, session_status_t *status,
                         char *worker, bool *worker_alive, char *err, size_t err_cap) {
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    return c ? owner_on(c, customer_id, session_key, status, worker, worker_alive, err, err_cap) : -EIO;
}

static int pg_session_end(store_db_t *db, const char *customer_id, const char *session_key, const char *code,
                       const char *message, char *err, size_t err_cap) {
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    if (!c) return -EIO;
    int64_t base = 0, last = 0;
    PGresult *r = NULL;
    int rc = store_pg_tx_begin(c, err, err_cap);
    if (rc == 0) rc = store_pg_lock_seq(c, &base, err, err_cap);
    if (rc == 0) {
        pg_params_t p = {0};
        store_pg_param_text(&p, customer_id);
        store_pg_param_text(&p, session_key);
        store_pg_param_int(&p, time_now_ms());
        store_pg_param_text(&p, code);
        store_pg_param_text(&p, message);
        store_pg_param_int(&p, base + 1);
        rc = store_pg_exec(c, PSTMT_SESSION_END, &p, &r, err, err_cap);
    }
    if (rc == 0 && strcmp(PQcmdTuples(r), "1") == 0) {
        rc = store_pg_take_seqs(c, 1, &last, err, err_cap);
    } else if (rc == 0) {
        /* nothing ended: no such session, or not running */
        session_status_t status;
        char worker[STORE_NODE_ID_MAX + 1];
        bool alive;
        rc = owner_on(c, customer_id, session_key, &status, worker, &alive, err, err_cap);
        if (rc == 0) rc = -EALREADY;
    }
    PQclear(r);
    rc = store_pg_tx_end(c, rc, err, err_cap);
    if (rc == 0) store_pg_seen_seq(pg_db(db), last);
    return rc;
}

static int pg_ping(store_db_t *db, char *err, size_t err_cap) { return run(db, PSTMT_PING, NULL, NULL, err, err_cap); }

static int pg_change_seq(store_db_t *db, int64_t *seq, char *err, size_t err_cap) {
    pg_db_t *d = pg_db(db);
    /* While LISTEN holds, every commit's seq reaches seen_seq: no round trip per request. */
    if (atomic_load(&d->listening)) {
        *seq = atomic_load(&d->seen_seq);
        return 0;
    }
    int rc = read_meta(db, PSTMT_CHANGE_SEQ, "change_seq", seq, err, err_cap);
    if (rc == 0) store_pg_seen_seq(d, *seq);
    return rc;
}

/* ---- the change feed ---- */

/* Row `i` of a feed page as a record borrowing the result's strings; -EIO when malformed. */
int store_pg_page_row(const PGresult *r, int i, session_record_t *rec, char *err, size_t err_cap) {
    memset(rec, 0, sizeof *rec);
    const char *session_id = store_pg_text(r, i, 1);
    int64_t status = store_pg_int(r, i, 3), captcha = store_pg_int(r, i, 9);
    if (!store_pg_text(r, i, 0) || !session_id || strlen(session_id) != UUID_TEXT_LEN || status < 0 ||
        status >= SESSION_STATUS_COUNT || captcha < 0 || captcha > CAPTCHA_FAILED) {
        store_set_err(err, err_cap, "malformed session row (seq %" PRId64 ")", store_pg_int(r, i, 13));
        return -EIO;
    }
    memcpy(rec->session_id, session_id, UUID_TEXT_LEN + 1);
    const char *api_name = store_pg_text(r, i, 2);
    rec->api_name = (char *)(api_name ? api_name : "");
    rec->status = (session_status_t)status;
    rec->target_url = (char *)store_pg_text(r, i, 4);
    rec->end_url = (char *)store_pg_text(r, i, 5);
    rec->navigations = store_pg_int(r, i, 6);
    rec->timestamp_ms = store_pg_int(r, i, 7);
    rec->duration_ms = PQgetisnull(r, i, 8) ? SESSION_DURATION_NULL : store_pg_int(r, i, 8);
    rec->captcha = (captcha_t)captcha;
    rec->bandwidth = store_pg_int(r, i, 10);
    rec->error_code = (char *)store_pg_text(r, i, 11);
    rec->error_message = (char *)store_pg_text(r, i, 12);
    return 0;
}

static int pg_sessions_since(store_db_t *db, int64_t after_seq, int64_t *last_seq, store_session_cb cb, void *ctx,
                          char *err, size_t err_cap) {
    /* Keyset pages: each page is one statement (one snapshot), fetched whole before the
     * callback runs, so the callback may use this thread's connection and memory stays one
     * page. Commits become visible in seq order, so a page that starts after the last seq
     * delivered skips nothing that committed between the pages. */
    int64_t after = after_seq;
    for (;;) {
        pg_params_t p = {0};
        PGresult *r = NULL;
        store_pg_param_int(&p, after);
        store_pg_param_int(&p, PG_FEED_PAGE);
        int rc = run(db, PSTMT_SESSIONS_PAGE, &p, &r, err, err_cap);
        if (rc != 0) return rc;
        int n = PQntuples(r);
        for (int i = 0; rc == 0 && i < n; i++) {
            session_record_t rec;
            rc = store_pg_page_row(r, i, &rec, err, err_cap);
            if (rc == 0) rc = cb(ctx, store_pg_text(r, i, 0), &rec);
            if (rc == 0) *last_seq = after = store_pg_int(r, i, 13);
        }
        PQclear(r);
        if (rc != 0 || n < PG_FEED_PAGE) return rc;
    }
}

const store_backend_t store_pg_backend = {
    .open = store_pg_open,
    .close = store_pg_close,
    .customer_add = pg_customer_add,
    .customer_exists = pg_customer_exists,
    .customer_count = pg_customer_count,
    .key_add = pg_key_add,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .key_authenticate = pg_key_authenticate,
    .zone_add = pg_zone_add,
    .zone_authorize = pg_zone_authorize,
    .zone_set_upstream = pg_zone_set_upstream,
    .sessions_import = store_pg_sessions_import,
    .session_save = pg_session_save,
    .sessions_save = pg_sessions_save,
    .sessions_fail_orphans = pg_sessions_fail_orphans,
    .node_register = pg_node_register,
    .node_heartbeat = pg_node_heartbeat,
    .node_release = pg_node_release,
    .nodes_reap = pg_nodes_reap,
    .session_owner = pg_session_owner,
    .session_end = pg_session_end,
    .events_start = store_pg_events_start,
    .events_stop = store_pg_events_stop,
    .publish = store_pg_publish,
    .ping = pg_ping,
    .change_seq = pg_change_seq,
    .sessions_since = pg_sessions_since,
    .copy_resume = store_pg_copy_resume,
    .copy_stage = store_pg_copy_stage,
    .copy_commit = store_pg_copy_commit,
    .copy_abandon = store_pg_copy_abandon,
    .webhook_add = store_pg_webhook_add,
    .webhook_list = store_pg_webhook_list,
    .webhook_remove = store_pg_webhook_remove,
    .webhook_deliveries = store_pg_webhook_deliveries,
    .webhook_claim = store_pg_webhook_claim,
    .webhook_record = store_pg_webhook_record,
    .webhook_release = store_pg_webhook_release,
    .webhook_pending = store_pg_webhook_pending,
    .webhook_prune = store_pg_webhook_prune,
};
