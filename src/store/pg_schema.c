/* The PostgreSQL database of the store: connections, statement parameters and results, the
 * error mapping, transactions, and the schema with its migrations (docs/store.md).
 *
 * Connections: a PGconn must never be used by two threads at once, and the daemon calls the
 * store from several libuv worker threads. So, as with SQLite, every calling thread gets a
 * connection of its own on first use (a pthread_key_t finds it again) and the database keeps
 * them all in a list for store_pg_close. A connection that went bad (the server restarted,
 * the network dropped) is reset on its next use; the operation that found it broken has
 * failed with -EIO and its caller retries later. */
#include "store/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"

/* Seconds libpq may take to connect, unless the URI says otherwise: a host that does not
 * answer must not hang a worker thread forever. */
#define CONNECT_TIMEOUT_S "10"

/* ---- schema ---- */

/* One entry per schema version, the same versions as SQLite's (a version means the same
 * tables in both stores): migrations[i] takes a database from version i to i + 1, in its own
 * transaction, under the advisory lock. PostgreSQL has no user_version, so its first step
 * creates schema_version already (SQLite's comes with version 3). Append only. */
const char *const store_pg_migrations[] = {
    /* 1: the initial schema. Ids are ASCII and compared byte by byte: COLLATE "C" (the
     * database's own collation would compare them through the locale, slower, for nothing);
     * every column that is compared with another id column carries it too. */
    "CREATE TABLE schema_version ("
    "  version INTEGER CONSTRAINT schema_version_pkey PRIMARY KEY,"
    "  applied_ms BIGINT NOT NULL,"
    "  description TEXT NOT NULL);"
    "CREATE TABLE meta ("
    "  name TEXT CONSTRAINT meta_pkey PRIMARY KEY,"
    "  value BIGINT NOT NULL);"
    /* change_seq: the change feed's counter (a row, not a SEQUENCE: store_internal.h);
     * customer_count: counting customers is then a lookup */
    "INSERT INTO meta (name, value) VALUES ('change_seq', 0), ('customer_count', 0);"
    "CREATE TABLE customers ("
    "  customer_id TEXT COLLATE \"C\" CONSTRAINT customers_pkey PRIMARY KEY,"
    "  created_ms BIGINT NOT NULL);"
    "CREATE TABLE api_keys ("
    "  key_id TEXT COLLATE \"C\" CONSTRAINT api_keys_pkey PRIMARY KEY,"
    "  customer_id TEXT COLLATE \"C\" NOT NULL REFERENCES customers (customer_id),"
    "  key_hash BYTEA NOT NULL CONSTRAINT api_keys_hash_key UNIQUE,"
    "  created_ms BIGINT NOT NULL,"
    "  revoked_ms BIGINT,"
    /* insertion order: key_list's tie-break between keys of the same millisecond */
    "  ord BIGINT GENERATED ALWAYS AS IDENTITY);"
    "CREATE INDEX api_keys_by_customer ON api_keys (customer_id, created_ms, ord);"
    "CREATE TABLE zones ("
    "  customer_id TEXT COLLATE \"C\" NOT NULL REFERENCES customers (customer_id),"
    "  name TEXT COLLATE \"C\" NOT NULL,"
    "  salt BYTEA NOT NULL,"
    "  password_hash BYTEA NOT NULL,"
    "  created_ms BIGINT NOT NULL,"
    "  upstream_proxy TEXT,"
    "  CONSTRAINT zones_pkey PRIMARY KEY (customer_id, name));"
    /* sessions.customer_id has no FOREIGN KEY here (SQLite's has): PostgreSQL checks one with
     * a trigger per row, a third of a large import's time (measured: 5.4 s of 1.2M rows).
     * Every statement that writes a session checks the customer instead; customers are never
     * deleted, so the check cannot be overtaken. */
    "CREATE TABLE sessions ("
    "  customer_id TEXT COLLATE \"C\" NOT NULL,"
    "  session_key TEXT COLLATE \"C\" NOT NULL,"
    "  session_id TEXT NOT NULL,"
    "  api_name TEXT NOT NULL,"
    "  status SMALLINT NOT NULL CHECK (status BETWEEN 0 AND 2),"
    "  target_url TEXT,"
    "  end_url TEXT,"
    "  navigations BIGINT NOT NULL,"
    "  timestamp_ms BIGINT NOT NULL,"
    "  duration_ms BIGINT,"
    "  captcha SMALLINT NOT NULL CHECK (captcha BETWEEN 0 AND 3),"
    "  bandwidth BIGINT NOT NULL,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  seq BIGINT NOT NULL CONSTRAINT sessions_seq_key UNIQUE,"
    "  updated_ms BIGINT NOT NULL,"
    "  CONSTRAINT sessions_pkey PRIMARY KEY (customer_id, session_key));",
    /* 2: which browserd process runs a session (NULL for imported ones) */
    "ALTER TABLE sessions ADD COLUMN worker TEXT COLLATE \"C\";"
    "CREATE INDEX sessions_running_by_worker ON sessions (worker) WHERE status = 0 AND worker IS NOT NULL;",
    /* 3: the nodes' leases (schema_version came with step 1 here) */
    "CREATE TABLE nodes ("
    "  node_id TEXT COLLATE \"C\" CONSTRAINT nodes_pkey PRIMARY KEY,"
    "  host TEXT NOT NULL,"
    "  pid INTEGER NOT NULL,"
    "  started_ms BIGINT NOT NULL,"
    "  lease_until_ms BIGINT NOT NULL);"
    "CREATE INDEX nodes_by_lease ON nodes (lease_until_ms);",
    /* 4: webhooks and their outbox, filled by triggers in the transaction that writes a
     * session's end (as SQLite's; the WHEN clauses keep COPY of imports free of calls). */
    "CREATE TABLE webhooks ("
    "  webhook_id TEXT COLLATE \"C\" CONSTRAINT webhooks_pkey PRIMARY KEY,"
    "  customer_id TEXT COLLATE \"C\" NOT NULL REFERENCES customers (customer_id),"
    "  url TEXT NOT NULL,"
    "  secret TEXT NOT NULL,"
    "  created_ms BIGINT NOT NULL);"
    "CREATE INDEX webhooks_by_customer ON webhooks (customer_id, created_ms);"
    "CREATE TABLE webhook_deliveries ("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT webhook_deliveries_pkey PRIMARY KEY,"
    "  delivery_id TEXT COLLATE \"C\" NOT NULL CONSTRAINT webhook_deliveries_delivery_id_key UNIQUE,"
    "  webhook_id TEXT COLLATE \"C\" NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,"
    "  customer_id TEXT COLLATE \"C\" NOT NULL,"
    "  session_key TEXT COLLATE \"C\" NOT NULL,"
    "  event TEXT NOT NULL,"
    "  state SMALLINT NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_ms BIGINT NOT NULL,"
    "  next_attempt_ms BIGINT NOT NULL,"
    "  claimed_until_ms BIGINT NOT NULL DEFAULT 0,"
    "  claimed_by TEXT,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  done_ms BIGINT);"
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE state = 0;"
    "CREATE INDEX webhook_deliveries_by_session ON webhook_deliveries (webhook_id, customer_id, session_key, id);"
    "CREATE INDEX webhook_deliveries_by_customer ON webhook_deliveries (customer_id, id);"
    "CREATE FUNCTION browserd_enqueue_webhook_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO webhook_deliveries (delivery_id, webhook_id, customer_id, session_key, event, created_ms, "
    "next_attempt_ms) SELECT gen_random_uuid()::text, w.webhook_id, NEW.customer_id, NEW.session_key, "
    "'session.ended', t.now, t.now FROM webhooks w, "
    "(SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now) t "
    "WHERE w.customer_id = NEW.customer_id ORDER BY w.created_ms; RETURN NULL; END $$;"
    "CREATE TRIGGER sessions_end_webhooks_insert AFTER INSERT ON sessions FOR EACH ROW "
    "WHEN (NEW.status <> 0 AND NEW.worker IS NOT NULL) EXECUTE FUNCTION browserd_enqueue_webhook_deliveries();"
    "CREATE TRIGGER sessions_end_webhooks_update AFTER UPDATE OF status ON sessions FOR EACH ROW "
    "WHEN (OLD.status = 0 AND NEW.status <> 0) EXECUTE FUNCTION browserd_enqueue_webhook_deliveries();",
    /* 5: zone passwords through a slow KDF: the rows are rehashed by rehash_zones (C: the KDF
     * is no SQL function), in this step's transaction; the zones are locked meanwhile. */
    "LOCK TABLE zones IN EXCLUSIVE MODE;",
};
const char *const store_pg_migration_descriptions[] = {
    "customers, keys, zones, sessions",
    "sessions.worker",
    "schema_version, nodes",
    "webhooks, webhook_deliveries",
    "zone passwords: PBKDF2",
};
const int store_pg_migration_count = (int)(sizeof store_pg_migrations / sizeof store_pg_migrations[0]);
#define MIGRATION_COUNT store_pg_migration_count

/* The primary keys whose violation is the contract's -EEXIST; any other unique violation
 * (a key hash, a seq) is a failure of the database or of the code: -EIO. */
static const char *const EXISTS_CONSTRAINTS[] = {"customers_pkey", "api_keys_pkey", "zones_pkey", "sessions_pkey",
                                                     "webhooks_pkey"};

static pg_db_t *pg_db(store_db_t *db) { return (pg_db_t *)db; }

/* ---- parameters and results ---- */

void store_pg_param_text(pg_params_t *p, const char *text) {
    p->values[p->n] = text;
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    p->n++;
}

void store_pg_param_int(pg_params_t *p, int64_t v) {
    snprintf(p->num[p->n], sizeof p->num[0], "%" PRId64, v);
    store_pg_param_text(p, p->num[p->n]);
}

void store_pg_param_bytes(pg_params_t *p, const void *data, size_t len) {
    p->values[p->n] = data;
    p->lengths[p->n] = (int)len;
    p->formats[p->n] = 1; /* binary: a bytea's binary form is its bytes */
    p->n++;
}

int64_t store_pg_int(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

const char *store_pg_text(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int store_pg_bytea(const PGresult *r, int row, int col, uint8_t *out, size_t cap) {
    const char *t = store_pg_text(r, row, col);
    if (!t || t[0] != '\\' || t[1] != 'x') return -1; /* bytea_output is hex (the default, set at connect) */
    size_t n = strlen(t + 2);
    if (n % 2 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(t[2 + 2 * i]), lo = hex_digit(t[3 + 2 * i]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

/* ---- passwords out of messages ---- */

/* Replaces every copy of needle[0..n) in msg by ***. */
static void scrub(char *msg, const char *needle, size_t n) {
    if (n == 0) return;
    for (char *hit = msg; (hit = memmem(hit, strlen(hit), needle, n));) {
        memmove(hit + 3, hit + n, strlen(hit + n) + 1);
        memcpy(hit, "***", 3);
        hit += 3;
    }
}

void store_pg_scrub(const pg_db_t *d, char *msg) {
    if (!msg || !d || !d->target) return;
    /* As written in the URI (libpq's parser quotes what it could not read, the URI itself or
     * the token), and as libpq decoded it (a server could echo that). */
    const char *at[8];
    size_t len[8];
    size_t n = store_uri_passwords(d->target, at, len, 8);
    for (size_t i = 0; i < n; i++) scrub(msg, at[i], len[i]);
    PQconninfoOption *opts = PQconninfoParse(d->target, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val) scrub(msg, o->val, strlen(o->val));
    PQconninfoFree(opts);
}

/* The first line of libpq's message (they end with a newline), passwords scrubbed. */
static void set_pg_err(const pg_db_t *d, char *err, size_t err_cap, const char *prefix, const char *msg) {
    char line[400];
    snprintf(line, sizeof line, "%s", msg && *msg ? msg : "unknown error");
    line[strcspn(line, "\n")] = '\0';
    store_pg_scrub(d, line);
    store_set_err(err, err_cap, "%s%s", prefix, line);
}

/* ---- connections ---- */

PGconn *store_pg_connect(pg_db_t *d, char *err, size_t err_cap) {
    /* connect_timeout first: with expand_dbname, the URI's own settings come after it and win */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const values[] = {CONNECT_TIMEOUT_S, "browserd", d->target, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        store_set_err(err, err_cap, "cannot connect to %s: out of memory", d->redacted);
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char prefix[600];
        snprintf(prefix, sizeof prefix, "cannot connect to %s: ", d->redacted);
        set_pg_err(d, err, err_cap, prefix, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    /* Our statements and messages rely on these whatever the server's defaults. */
    PGresult *r = PQexec(conn, "SET bytea_output = 'hex'; SET client_min_messages = warning; "
                               "SET client_encoding = 'UTF8'");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) set_pg_err(d, err, err_cap, "cannot set up the connection: ", PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

pg_conn_t *store_pg_conn(store_db_t *db, char *err, size_t err_cap) {
    pg_db_t *d = pg_db(db);
    pg_conn_t *c = pthread_getspecific(d->thread_conn);
    if (c) {
        if (PQstatus(c->conn) == CONNECTION_OK) {
            /* An operation never leaves a transaction open; should one be, end it here rather
             * than run this operation inside it. */
            if (PQtransactionStatus(c->conn) != PQTRANS_IDLE) store_pg_exec_sql(c, "ROLLBACK", NULL, NULL, 0);
            return c;
        }
        /* Broken since its last use: a new session, whose statements are not prepared. */
        PQfinish(c->conn);
        memset(c->prepared, 0, sizeof c->prepared);
        c->conn = store_pg_connect(d, err, err_cap);
        return c->conn ? c : NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        store_set_err(err, err_cap, "out of memory");
        return NULL;
    }
    c->conn = store_pg_connect(d, err, err_cap);
    /* Registered even when it did not connect: the next call of this thread tries again. */
    if (pthread_setspecific(d->thread_conn, c) != 0) {
        PQfinish(c->conn);
        free(c);
        store_set_err(err, err_cap, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&d->conns_lock);
    c->next = d->conns;
    d->conns = c;
    pthread_mutex_unlock(&d->conns_lock);
    return c->conn ? c : NULL;
}

int store_pg_result_code(PGconn *conn, const PGresult *res, char *err, size_t err_cap) {
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN) return 0;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "23505") == 0) {
        const char *name = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        for (size_t i = 0; name && i < sizeof EXISTS_CONSTRAINTS / sizeof EXISTS_CONSTRAINTS[0]; i++)
            if (strcmp(name, EXISTS_CONSTRAINTS[i]) == 0) return -EEXIST;
    }
    if (state && strcmp(state, "23503") == 0) return -ENOENT;
    const char *msg = res ? PQresultErrorMessage(res) : "";
    char line[400];
    snprintf(line, sizeof line, "%s", *msg ? msg : PQerrorMessage(conn));
    line[strcspn(line, "\n")] = '\0';
    /* The server's messages quote values, not the connection string: no password here. */
    store_set_err(err, err_cap, "%s", line[0] ? line : "the database failed");
    return -EIO;
}

static int finish_exec(pg_conn_t *c, PGresult *res, PGresult **out, char *err, size_t err_cap) {
    int rc = store_pg_result_code(c->conn, res, err, err_cap);
    if (rc == 0 && out) *out = res;
    else PQclear(res);
    return rc;
}

int store_pg_exec(pg_conn_t *c, pg_stmt_id_t id, const pg_params_t *p, PGresult **out, char *err, size_t err_cap) {
    if (out) *out = NULL;
    char name[16];
    snprintf(name, sizeof name, "b%d", (int)id);
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->conn, name, store_pg_stmt_sql[id], 0, NULL);
        int rc = finish_exec(c, r, NULL, err, err_cap);
        if (rc != 0) return -EIO;
        c->prepared[id] = true;
    }
    PGresult *res = PQexecPrepared(c->conn, name, p ? p->n : 0, p ? p->values : NULL, p ? p->lengths : NULL,
                                   p ? p->formats : NULL, 0);
    return finish_exec(c, res, out, err, err_cap);
}

int store_pg_exec_sql(pg_conn_t *c, const char *sql, PGresult **out, char *err, size_t err_cap) {
    if (out) *out = NULL;
    return finish_exec(c, PQexec(c->conn, sql), out, err, err_cap);
}

int store_pg_exec_params(pg_conn_t *c, const char *sql, const pg_params_t *p, PGresult **out, char *err,
                         size_t err_cap) {
    if (out) *out = NULL;
    PGresult *res = PQexecParams(c->conn, sql, p->n, NULL, p->values, p->lengths, p->formats, 0);
    return finish_exec(c, res, out, err, err_cap);
}

int store_pg_tx_begin(pg_conn_t *c, char *err, size_t err_cap) { return store_pg_exec_sql(c, "BEGIN", NULL, err, err_cap); }

int store_pg_tx_end(pg_conn_t *c, int result, char *err, size_t err_cap) {
    if (result == 0) {
        int rc = store_pg_exec_sql(c, "COMMIT", NULL, err, err_cap);
        /* A COMMIT of a failed transaction "succeeds" as a ROLLBACK; the op failed already. */
        if (rc == 0 && PQtransactionStatus(c->conn) != PQTRANS_IDLE) rc = -EIO;
        return rc;
    }
    if (PQtransactionStatus(c->conn) != PQTRANS_IDLE && PQstatus(c->conn) == CONNECTION_OK)
        store_pg_exec_sql(c, "ROLLBACK", NULL, NULL, 0);
    return result;
}

/* ---- the counter ---- */

/* A statement on the counter row that returns its value. */
static int counter_stmt(pg_conn_t *c, pg_stmt_id_t id, const pg_params_t *p, int64_t *value, char *err,
                        size_t err_cap) {
    PGresult *r = NULL;
    int rc = store_pg_exec(c, id, p, &r, err, err_cap);
    if (rc == 0 && PQntuples(r) != 1) {
        store_set_err(err, err_cap, "meta row change_seq is missing");
        rc = -EIO;
    }
    if (rc == 0) *value = store_pg_int(r, 0, 0);
    PQclear(r);
    return rc;
}

int store_pg_take_seqs(pg_conn_t *c, int64_t n, int64_t *last, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_int(&p, n);
    return counter_stmt(c, PSTMT_CHANGE_SEQ_ADD, &p, last, err, err_cap);
}

int store_pg_lock_seq(pg_conn_t *c, int64_t *seq, char *err, size_t err_cap) {
    return counter_stmt(c, PSTMT_CHANGE_SEQ_LOCK, NULL, seq, err, err_cap);
}

/* ---- open, migrate, close ---- */

/* The schema version: 0 before the first step (no schema_version table yet). The table is
 * looked for in pg_class itself, not through to_regclass: a transaction that waited for the
 * migration lock while another process created the table may still hold "no such table" in
 * its catalog cache; reading pg_class (a new relation lock of this transaction) makes it take
 * the other's invalidations first, so the next statement finds the table. */
static int read_version(pg_conn_t *c, int64_t *version, char *err, size_t err_cap) {
    PGresult *r = NULL;
    int rc = store_pg_exec_sql(c,
                               "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class k JOIN pg_catalog.pg_namespace n "
                               "ON n.oid = k.relnamespace WHERE k.relname = 'schema_version' "
                               "AND n.nspname = current_schema())",
                               &r, err, err_cap);
    if (rc != 0) return rc;
    bool exists = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    *version = 0;
    if (!exists) return 0;
    rc = store_pg_exec_sql(c, "SELECT coalesce(max(version), 0) FROM schema_version", &r, err, err_cap);
    if (rc == 0) *version = store_pg_int(r, 0, 0);
    PQclear(r);
    return rc;
}

/* Migration 4's rows: every zone's SHA-256(salt || password) becomes its KDF hash
 * (store_zone_password_upgrade), inside the migration's transaction: all or none. */
static int rehash_zones(pg_conn_t *c, char *err, size_t err_cap) {
    PGresult *r = NULL;
    int rc = store_pg_exec_sql(c, "SELECT customer_id, name, salt, password_hash FROM zones", &r, err, err_cap);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        uint8_t salt[64], legacy[64], hash[STORE_HASH_LEN];
        int salt_len = store_pg_bytea(r, i, 2, salt, sizeof salt), legacy_len = store_pg_bytea(r, i, 3, legacy, sizeof legacy);
        if (salt_len < 0 || legacy_len != STORE_HASH_LEN) {
            store_set_err(err, err_cap, "zone %s of customer %s: a malformed salt or password hash",
                          store_pg_text(r, i, 1), store_pg_text(r, i, 0));
            rc = -EIO;
        } else if (store_zone_password_upgrade(salt, (size_t)salt_len, legacy, hash) != 0) {
            store_set_err(err, err_cap, "the password KDF failed");
            rc = -EIO;
        } else {
            pg_params_t p = {0};
            store_pg_param_bytes(&p, hash, STORE_HASH_LEN);
            store_pg_param_text(&p, store_pg_text(r, i, 0));
            store_pg_param_text(&p, store_pg_text(r, i, 1));
            rc = store_pg_exec_params(c, "UPDATE zones SET password_hash = $1 WHERE customer_id = $2 AND name = $3", &p,
                                      NULL, err, err_cap);
        }
    }
    PQclear(r);
    return rc;
}

/* One step: under the advisory lock (held to the end of the transaction), the version read
 * again, the step applied and recorded. *version: the version after. */
static int migrate_step(pg_conn_t *c, int64_t *version, char *err, size_t err_cap) {
    char lock[96], record[512];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%" PRId64 ")", PG_MIGRATION_LOCK);
    int rc = store_pg_tx_begin(c, err, err_cap);
    if (rc == 0) rc = store_pg_exec_sql(c, lock, NULL, err, err_cap);
    if (rc == 0) rc = read_version(c, version, err, err_cap);
    if (rc != 0) return store_pg_tx_end(c, rc, err, err_cap);
    if (*version >= MIGRATION_COUNT) { /* another process migrated it meanwhile */
        store_pg_tx_end(c, 1, NULL, 0);
        return *version > MIGRATION_COUNT ? -ERANGE : 0;
    }
    int64_t next = *version + 1;
    snprintf(record, sizeof record,
             "INSERT INTO schema_version (version, applied_ms, description) VALUES (%" PRId64 ", %" PRId64
             ", '%s')",
             next, time_now_ms(), store_pg_migration_descriptions[*version]);
    rc = store_pg_exec_sql(c, store_pg_migrations[*version], NULL, err, err_cap);
    if (rc == 0 && next == 5) rc = rehash_zones(c, err, err_cap);
    if (rc == 0) rc = store_pg_exec_sql(c, record, NULL, err, err_cap);
    rc = store_pg_tx_end(c, rc, err, err_cap);
    if (rc == 0) *version = next;
    return rc;
}

static int migrate(pg_conn_t *c, char *err, size_t err_cap) {
    char reason[512] = "";
    int64_t version = 0;
    if (read_version(c, &version, reason, sizeof reason) != 0) {
        store_set_err(err, err_cap, "cannot read the schema version: %s", reason);
        return -EIO;
    }
    while (version < MIGRATION_COUNT) {
        int64_t before = version;
        int rc = migrate_step(c, &version, reason, sizeof reason);
        if (rc == -ERANGE) break;
        if (rc != 0) {
            store_set_err(err, err_cap, "schema migration to version %" PRId64 " failed: %s", before + 1, reason);
            return -EIO;
        }
    }
    if (version > MIGRATION_COUNT) return store_schema_too_new(version, MIGRATION_COUNT, err, err_cap);
    return 0;
}

int store_pg_open(const char *target, store_db_t **out, char *err, size_t err_cap) {
    *out = NULL;
    if (pq_api_load(err, err_cap) < 0) return -ENOTSUP;
    pg_db_t *d = calloc(1, sizeof *d);
    char redacted[512];
    store_uri_redact(target, redacted, sizeof redacted);
    if (!d || !(d->target = strdup(target)) || !(d->redacted = strdup(redacted))) {
        if (d) free(d->target);
        free(d);
        store_set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    char *parse_err = NULL;
    PQconninfoOption *opts = PQconninfoParse(target, &parse_err);
    if (!opts) {
        char prefix[600];
        snprintf(prefix, sizeof prefix, "invalid PostgreSQL URI %s: ", redacted);
        set_pg_err(d, err, err_cap, prefix, parse_err ? parse_err : "out of memory");
        PQfreemem(parse_err);
        free(d->target);
        free(d->redacted);
        free(d);
        return -EINVAL;
    }
    PQconninfoFree(opts);
    d->ev_wake = -1;
    if (pthread_key_create(&d->thread_conn, NULL) != 0) {
        free(d->target);
        free(d->redacted);
        free(d);
        store_set_err(err, err_cap, "cannot create a thread key");
        return -EAGAIN;
    }
    pthread_mutex_init(&d->conns_lock, NULL);
    pthread_mutex_init(&d->ev_lock, NULL);
    store_db_t *db = (store_db_t *)d;
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    int rc = c ? migrate(c, err, err_cap) : -EIO;
    if (rc != 0) {
        store_pg_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void store_pg_close(store_db_t *db) {
    pg_db_t *d = pg_db(db);
    if (!d) return;
    store_pg_events_stop(db);
    pthread_key_delete(d->thread_conn);
    pthread_mutex_lock(&d->conns_lock);
    pg_conn_t *c = d->conns;
    d->conns = NULL;
    pthread_mutex_unlock(&d->conns_lock);
    while (c) {
        pg_conn_t *next = c->next;
        PQfinish(c->conn);
        free(c);
        c = next;
    }
    pthread_mutex_destroy(&d->conns_lock);
    pthread_mutex_destroy(&d->ev_lock);
    free(d->target);
    free(d->redacted);
    free(d);
}
