/* The bulk paths of the PostgreSQL backend: sessions_import, and the destination side of
 * `db copy` (staging, resume, the final transaction). Both send rows with COPY (one stream,
 * no statement per row) into a table of their own, then move them into sessions with one
 * INSERT ... SELECT that numbers them after the locked counter (docs/store.md, "Imports" and
 * "db copy"). */
#include "store/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/uuid.h"

#define COPY_BUF 65536

/* The session columns both bulk tables hold, in COPY order after their own first columns. */
#define ROW_COLUMNS                                                                                    \
    "session_key, session_id, api_name, status, target_url, end_url, navigations, timestamp_ms, "      \
    "duration_ms, captcha, bandwidth, error_code, error_message"
#define ROW_TYPES                                                                                      \
    "session_key TEXT COLLATE \"C\" NOT NULL, session_id TEXT NOT NULL, api_name TEXT NOT NULL, status SMALLINT NOT NULL, " \
    "target_url TEXT, end_url TEXT, navigations BIGINT NOT NULL, timestamp_ms BIGINT NOT NULL, "        \
    "duration_ms BIGINT, captcha SMALLINT NOT NULL, bandwidth BIGINT NOT NULL, error_code TEXT, "        \
    "error_message TEXT"
#define INSERT_SESSIONS "INSERT INTO sessions (customer_id, " ROW_COLUMNS ", seq, updated_ms, worker) "

static pg_db_t *pg_db(store_db_t *db) { return (pg_db_t *)db; }

/* ---- COPY rows ---- */

typedef struct {
    PGconn *conn;
    char data[COPY_BUF];
    size_t n;
    bool failed;
} copy_out_t;

static void copy_flush(copy_out_t *o) {
    if (o->n && !o->failed && PQputCopyData(o->conn, o->data, (int)o->n) != 1) o->failed = true;
    o->n = 0;
}

static void copy_put(copy_out_t *o, const char *s, size_t len) {
    while (len > 0) {
        if (o->n == COPY_BUF) copy_flush(o);
        size_t k = COPY_BUF - o->n < len ? COPY_BUF - o->n : len;
        memcpy(o->data + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
    }
}

/* A text field of COPY's text format: NULL as \N, the separators and backslash escaped. */
static void copy_text(copy_out_t *o, const char *s, bool last) {
    if (!s) {
        copy_put(o, "\\N", 2);
    } else {
        for (const char *run = s;; s++) {
            char c = *s;
            if (c != '\\' && c != '\t' && c != '\n' && c != '\r' && c != '\0') continue;
            copy_put(o, run, (size_t)(s - run));
            if (c == '\0') break;
            copy_put(o, c == '\\' ? "\\\\" : c == '\t' ? "\\t" : c == '\n' ? "\\n" : "\\r", 2);
            run = s + 1;
        }
    }
    copy_put(o, last ? "\n" : "\t", 1);
}

static void copy_int(copy_out_t *o, int64_t v, bool null, bool last) {
    char num[24];
    snprintf(num, sizeof num, "%" PRId64, v);
    copy_text(o, null ? NULL : num, last);
}

/* The ROW_COLUMNS of a record (session key computed from the id). */
static void copy_record(copy_out_t *o, const session_record_t *r, bool last) {
    char key[UUID_TEXT_LEN + 1];
    store_session_key_of(r->session_id, key);
    copy_text(o, key, false);
    copy_text(o, r->session_id, false);
    copy_text(o, r->api_name, false);
    copy_int(o, (int)r->status, false, false);
    copy_text(o, r->target_url, false);
    copy_text(o, r->end_url, false);
    copy_int(o, r->navigations, false, false);
    copy_int(o, r->timestamp_ms, false, false);
    copy_int(o, r->duration_ms, r->duration_ms == SESSION_DURATION_NULL, false);
    copy_int(o, (int)r->captcha, false, false);
    copy_int(o, r->bandwidth, false, false);
    copy_text(o, r->error_code, false);
    copy_text(o, r->error_message, last);
}

/* Starts `COPY ... FROM STDIN` (sql) on c. */
static int copy_begin(pg_conn_t *c, copy_out_t *o, const char *sql, char *err, size_t err_cap) {
    o->conn = c->conn;
    o->n = 0;
    o->failed = false;
    PGresult *r = PQexec(c->conn, sql);
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    int rc = ok ? 0 : store_pg_result_code(c->conn, r, err, err_cap);
    PQclear(r);
    return ok ? 0 : rc ? rc : -EIO;
}

/* Ends the COPY: with `abort_reason` it is cancelled (the transaction fails). 0 when the rows
 * went in, else -EIO with the server's reason (unless aborted: the caller has its own). */
static int copy_end(copy_out_t *o, const char *abort_reason, char *err, size_t err_cap) {
    if (!abort_reason) copy_flush(o);
    int rc = o->failed ? -EIO : 0;
    const char *reason = abort_reason ? abort_reason : o->failed ? "sending the rows failed" : NULL;
    if (PQputCopyEnd(o->conn, reason) != 1) rc = -EIO;
    for (PGresult *r; (r = PQgetResult(o->conn));) {
        if (rc == 0 && !abort_reason) rc = store_pg_result_code(o->conn, r, err, err_cap);
        PQclear(r);
    }
    if (rc != 0 && !abort_reason && err && !err[0]) store_set_err(err, err_cap, "%s", PQerrorMessage(o->conn));
    return abort_reason ? -ECANCELED : rc;
}

/* ---- sessions_import ---- */

/* After a duplicate: the first record (in import order) whose key is stored already or came
 * earlier in the import; it is the one a row-by-row import would have refused. */
static int name_duplicate(pg_conn_t *c, const char *customer_id, store_import_t *im, char *err, size_t err_cap) {
    pg_params_t p = {0};
    PGresult *r = NULL;
    store_pg_param_text(&p, customer_id);
    int rc = store_pg_exec_params(c,
                                  "SELECT ord, session_id FROM (SELECT ord, session_id, session_key, row_number() "
                                  "OVER (PARTITION BY session_key ORDER BY ord) AS k FROM import_rows) i "
                                  "WHERE k > 1 OR EXISTS (SELECT 1 FROM sessions s WHERE s.customer_id = $1 "
                                  "AND s.session_key = i.session_key) ORDER BY ord LIMIT 1",
                                  &p, &r, err, err_cap);
    if (rc == 0 && PQntuples(r) == 1) store_import_refuse(im, store_pg_int(r, 0, 0) - 1, PQgetvalue(r, 0, 1));
    PQclear(r);
    return rc ? rc : -EEXIST;
}

/* Pulls every record into COPY (ord: 1, 2, ... in import order); *count. A failing source or
 * record returns its code with its reason in err. */
static int import_rows(pg_conn_t *c, store_import_t *im, int64_t *count, char *err, size_t err_cap) {
    copy_out_t *o = malloc(sizeof *o);
    if (!o) {
        store_set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    int rc = copy_begin(c, o, "COPY import_rows (ord, " ROW_COLUMNS ") FROM STDIN", err, err_cap);
    int more = 1;
    while (rc == 0 && !o->failed) {
        const session_record_t *rec;
        const char *session_key;
        more = store_import_next(im, &rec, &session_key, err, err_cap);
        if (more <= 0) break;
        copy_int(o, ++*count, false, false);
        copy_record(o, rec, true);
    }
    if (rc == 0) rc = copy_end(o, more < 0 ? "the import's source failed" : NULL, err, err_cap);
    free(o);
    return more < 0 ? more : rc;
}

int store_pg_sessions_import(store_db_t *db, const char *customer_id, store_import_t *im, char *err, size_t err_cap) {
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    if (!c) return -EIO;
    pg_params_t p = {0};
    PGresult *r = NULL;
    store_pg_param_text(&p, customer_id);
    int64_t count = 0, base = 0, last = 0;
    int rc = store_pg_tx_begin(c, err, err_cap);
    if (rc == 0) rc = store_pg_exec(c, PSTMT_CUSTOMER_EXISTS, &p, &r, err, err_cap);
    if (rc == 0 && PQntuples(r) == 0) rc = -ENOENT;
    PQclear(r);
    if (rc == 0)
        rc = store_pg_exec_sql(c, "CREATE TEMP TABLE import_rows (ord BIGINT NOT NULL, " ROW_TYPES ") ON COMMIT DROP",
                               NULL, err, err_cap);
    /* The rows go in without any lock: other writers go on while the file streams. */
    if (rc == 0) rc = import_rows(c, im, &count, err, err_cap);
    /* Then the counter's lock (no other write takes seqs until the commit) and one insert. */
    if (rc == 0 && count > 0) rc = store_pg_lock_seq(c, &base, err, err_cap);
    if (rc == 0 && count > 0) rc = store_pg_exec_sql(c, "SAVEPOINT import_insert", NULL, err, err_cap);
    if (rc == 0 && count > 0) {
        /* One clock reading for the whole import: it is one change, made at one time. */
        pg_params_t q = {0};
        store_pg_param_text(&q, customer_id);
        store_pg_param_int(&q, base);
        store_pg_param_int(&q, time_now_ms());
        rc = store_pg_exec_params(c, INSERT_SESSIONS "SELECT $1, " ROW_COLUMNS ", $2 + ord, $3, NULL FROM import_rows",
                                  &q, NULL, err, err_cap);
        if (rc == -EEXIST) {
            store_pg_exec_sql(c, "ROLLBACK TO SAVEPOINT import_insert", NULL, NULL, 0);
            rc = name_duplicate(c, customer_id, im, err, err_cap);
        }
    }
    if (rc == 0 && count > 0) rc = store_pg_take_seqs(c, count, &last, err, err_cap);
    rc = store_pg_tx_end(c, rc, err, err_cap);
    if (rc == 0 && last) store_pg_seen_seq(pg_db(db), last);
    return rc;
}

/* ---- db copy: the destination ---- */

#define STAGE_TABLES                                                                                 \
    "CREATE TABLE IF NOT EXISTS browserd_copy_runs (source_id TEXT PRIMARY KEY, "                    \
    "staged_seq BIGINT NOT NULL, staged BIGINT NOT NULL, started_ms BIGINT NOT NULL);"               \
    "CREATE TABLE IF NOT EXISTS browserd_copy_sessions (source_id TEXT NOT NULL, src_seq BIGINT NOT NULL, " \
    "customer_id TEXT COLLATE \"C\" NOT NULL, " ROW_TYPES ", updated_ms BIGINT NOT NULL, worker TEXT, "             \
    "PRIMARY KEY (source_id, src_seq));"

/* Runs `sql` (with source_id as $1) in a transaction of its own under the copy's advisory lock
 * (two copies at once do not create the staging tables twice). */
static int staging_tx(store_db_t *db, const char *sql, const char *source_id, PGresult **out, char *err,
                      size_t err_cap) {
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    if (!c) return -EIO;
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%" PRId64 ")", PG_MIGRATION_LOCK + 1);
    pg_params_t p = {0};
    store_pg_param_text(&p, source_id);
    int rc = store_pg_tx_begin(c, err, err_cap);
    if (rc == 0) rc = store_pg_exec_sql(c, lock, NULL, err, err_cap);
    if (rc == 0) rc = store_pg_exec_sql(c, STAGE_TABLES, NULL, err, err_cap);
    if (rc == 0) rc = store_pg_exec_params(c, sql, &p, out, err, err_cap);
    return store_pg_tx_end(c, rc, err, err_cap);
}

int store_pg_copy_resume(store_db_t *db, const char *source_id, int64_t *staged_seq, int64_t *staged, char *err,
                         size_t err_cap) {
    PGresult *r = NULL;
    int rc = staging_tx(db, "SELECT staged_seq, staged FROM browserd_copy_runs WHERE source_id = $1", source_id, &r,
                        err, err_cap);
    *staged_seq = *staged = 0;
    if (rc == 0 && PQntuples(r) == 1) {
        *staged_seq = store_pg_int(r, 0, 0);
        *staged = store_pg_int(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

/* The staging tables go with the last run they held (a transaction of its own: what called
 * it is done whatever happens here). */
static void drop_staging_if_unused(store_db_t *db) {
    pg_conn_t *c = store_pg_conn(db, NULL, 0);
    if (c)
        store_pg_exec_sql(c,
                          "DO $$BEGIN IF to_regclass('browserd_copy_runs') IS NOT NULL AND NOT EXISTS "
                          "(SELECT 1 FROM browserd_copy_runs) THEN "
                          "DROP TABLE browserd_copy_sessions, browserd_copy_runs; END IF; END$$",
                          NULL, NULL, 0);
}

int store_pg_copy_abandon(store_db_t *db, const char *source_id, char *err, size_t err_cap) {
    int rc = staging_tx(db,
                        "WITH r AS (DELETE FROM browserd_copy_runs WHERE source_id = $1) "
                        "DELETE FROM browserd_copy_sessions WHERE source_id = $1",
                        source_id, NULL, err, err_cap);
    if (rc == 0) drop_staging_if_unused(db);
    return rc;
}

int store_pg_copy_stage(store_db_t *db, const char *source_id, const store_item_t *items, size_t n, char *err,
                        size_t err_cap) {
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    if (!c) return -EIO;
    if (n == 0) return 0;
    copy_out_t *o = malloc(sizeof *o);
    if (!o) {
        store_set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    int rc = store_pg_tx_begin(c, err, err_cap);
    if (rc == 0)
        rc = copy_begin(c, o,
                        "COPY browserd_copy_sessions (source_id, src_seq, customer_id, " ROW_COLUMNS
                        ", updated_ms, worker) FROM STDIN",
                        err, err_cap);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        copy_text(o, source_id, false);
        copy_int(o, items[i].seq, false, false);
        copy_text(o, items[i].customer_id, false);
        copy_record(o, &items[i].rec, false);
        copy_int(o, items[i].updated_ms, false, false);
        copy_text(o, items[i].worker, true);
    }
    if (rc == 0) rc = copy_end(o, NULL, err, err_cap);
    free(o);
    if (rc == 0) {
        /* The progress mark moves in the transaction of the rows it covers. */
        pg_params_t p = {0};
        store_pg_param_text(&p, source_id);
        store_pg_param_int(&p, items[n - 1].seq);
        store_pg_param_int(&p, (int64_t)n);
        store_pg_param_int(&p, time_now_ms());
        rc = store_pg_exec_params(c,
                                  "INSERT INTO browserd_copy_runs VALUES ($1, $2, $3, $4) ON CONFLICT (source_id) "
                                  "DO UPDATE SET staged_seq = $2, staged = browserd_copy_runs.staged + $3",
                                  &p, NULL, err, err_cap);
    }
    return store_pg_tx_end(c, rc, err, err_cap);
}

/* A row of the destination with the identity of a source row: *same tells whether it holds
 * the same content (columns compared by the query, parameters: the source's). 0 with *found. */
static int find_existing(pg_conn_t *c, const char *sql, const pg_params_t *p, bool *found, bool *same, char *err,
                         size_t err_cap) {
    PGresult *r = NULL;
    int rc = store_pg_exec_params(c, sql, p, &r, err, err_cap);
    *found = rc == 0 && PQntuples(r) == 1;
    *same = *found && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return rc;
}

/* Writes one customer, key or zone unless the destination has it with the same content:
 * *added 1 when written; -EEXIST naming it when it differs. */
static int commit_item(pg_conn_t *c, const store_item_t *it, int *added, char *err, size_t err_cap) {
    pg_params_t p = {0};
    bool found = false, same = false;
    int rc = 0;
    *added = 0;
    store_pg_param_text(&p, it->customer_id);
    if (it->kind == STORE_ITEM_CUSTOMER) {
        PGresult *r = NULL;
        store_pg_param_int(&p, it->created_ms);
        rc = store_pg_exec_params(c, "INSERT INTO customers VALUES ($1, $2) ON CONFLICT (customer_id) DO NOTHING", &p,
                                  &r, err, err_cap);
        if (rc == 0) *added = strcmp(PQcmdTuples(r), "1") == 0;
        PQclear(r);
        return rc;
    }
    if (it->kind == STORE_ITEM_KEY) {
        store_pg_param_text(&p, it->key_id);
        store_pg_param_bytes(&p, it->hash, STORE_HASH_LEN);
        store_pg_param_int(&p, it->created_ms);
        if (it->revoked_ms < 0) store_pg_param_text(&p, NULL);
        else store_pg_param_int(&p, it->revoked_ms);
        rc = find_existing(c,
                           "SELECT key_id = $2 AND customer_id = $1 AND key_hash = $3 AND created_ms = $4 AND revoked_ms IS NOT "
                           "DISTINCT FROM $5::bigint FROM api_keys WHERE key_id = $2 OR key_hash = $3 "
                           "ORDER BY key_id = $2 DESC LIMIT 1",
                           &p, &found, &same, err, err_cap);
        if (rc == 0 && found && !same) {
            store_set_err(err, err_cap, "key %s of customer %s: the destination has this key id or hash with "
                                        "other content", it->key_id, it->customer_id);
            return -EEXIST;
        }
        if (rc == 0 && !found)
            rc = store_pg_exec_params(c, "INSERT INTO api_keys (customer_id, key_id, key_hash, created_ms, revoked_ms) "
                                      "VALUES ($1, $2, $3, $4, $5)", &p, NULL, err, err_cap);
    } else {
        store_pg_param_text(&p, it->zone);
        store_pg_param_bytes(&p, it->salt, STORE_ZONE_SALT_LEN);
        store_pg_param_bytes(&p, it->hash, STORE_HASH_LEN);
        store_pg_param_int(&p, it->created_ms);
        store_pg_param_text(&p, it->upstream);
        rc = find_existing(c,
                           "SELECT salt = $3 AND password_hash = $4 AND created_ms = $5 AND upstream_proxy IS NOT "
                           "DISTINCT FROM $6::text FROM zones WHERE customer_id = $1 AND name = $2",
                           &p, &found, &same, err, err_cap);
        if (rc == 0 && found && !same) {
            store_set_err(err, err_cap, "zone %s of customer %s: the destination has this zone with other content",
                          it->zone, it->customer_id);
            return -EEXIST;
        }
        if (rc == 0 && !found)
            rc = store_pg_exec_params(c, "INSERT INTO zones (customer_id, name, salt, password_hash, created_ms, "
                                      "upstream_proxy) VALUES ($1, $2, $3, $4, $5, $6)", &p, NULL, err, err_cap);
    }
    if (rc == 0) *added = !found;
    return rc;
}

/* The staged sessions (the latest staged version of each) into sessions, after the locked
 * counter `base`, in source seq order; those the destination has with the same content are
 * kept, one with other content is -EEXIST. *added: how many were written. */
static int commit_sessions(pg_conn_t *c, const char *source_id, int64_t base, int64_t *added, char *err,
                           size_t err_cap) {
    pg_params_t p = {0};
    PGresult *r = NULL;
    store_pg_param_text(&p, source_id);
    int rc = store_pg_exec_params(c,
                                  "CREATE TEMP TABLE copy_latest ON COMMIT DROP AS SELECT DISTINCT ON (customer_id, "
                                  "session_key) * FROM browserd_copy_sessions WHERE source_id = $1 "
                                  "ORDER BY customer_id, session_key, src_seq DESC",
                                  &p, NULL, err, err_cap);
    if (rc == 0)
        rc = store_pg_exec_sql(c,
                               "SELECT l.customer_id, l.session_id FROM copy_latest l JOIN sessions s ON "
                               "s.customer_id = l.customer_id AND s.session_key = l.session_key WHERE "
                               "(s.session_id, s.api_name, s.status, s.target_url, s.end_url, s.navigations, "
                               "s.timestamp_ms, s.duration_ms, s.captcha, s.bandwidth, s.error_code, s.error_message) "
                               "IS DISTINCT FROM (l.session_id, l.api_name, l.status, l.target_url, l.end_url, "
                               "l.navigations, l.timestamp_ms, l.duration_ms, l.captcha, l.bandwidth, l.error_code, "
                               "l.error_message) ORDER BY l.src_seq LIMIT 1",
                               &r, err, err_cap);
    if (rc == 0 && PQntuples(r) == 1) {
        store_set_err(err, err_cap, "session %s of customer %s: the destination has this session with other content",
                      PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0));
        rc = -EEXIST;
    }
    PQclear(r);
    r = NULL;
    /* sessions has no foreign key (pg_schema.c): every customer must have come with the copy */
    if (rc == 0)
        rc = store_pg_exec_sql(c,
                               "SELECT customer_id FROM copy_latest l WHERE NOT EXISTS (SELECT 1 FROM customers k "
                               "WHERE k.customer_id = l.customer_id) LIMIT 1",
                               &r, err, err_cap);
    if (rc == 0 && PQntuples(r) == 1) {
        store_set_err(err, err_cap, "the source has sessions of customer %s, which it does not have",
                      PQgetvalue(r, 0, 0));
        rc = -EIO;
    }
    PQclear(r);
    r = NULL;
    if (rc == 0) {
        pg_params_t q = {0};
        store_pg_param_int(&q, base);
        rc = store_pg_exec_params(c,
                                  INSERT_SESSIONS "SELECT customer_id, " ROW_COLUMNS ", $1 + row_number() OVER "
                                  "(ORDER BY src_seq), updated_ms, worker FROM copy_latest l WHERE NOT EXISTS "
                                  "(SELECT 1 FROM sessions s WHERE s.customer_id = l.customer_id AND "
                                  "s.session_key = l.session_key)",
                                  &q, &r, err, err_cap);
    }
    if (rc == 0) *added = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return rc;
}

int store_pg_copy_commit(store_db_t *db, const char *source_id, const store_item_t *items, size_t n,
                         store_copy_stats_t *stats, char *err, size_t err_cap) {
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    if (!c) return -EIO;
    int64_t base = 0, last = 0, sessions = 0;
    int64_t *counts[] = {&stats->customers_new, &stats->keys_new, &stats->zones_new};
    int rc = store_pg_tx_begin(c, err, err_cap);
    if (rc == 0) rc = store_pg_lock_seq(c, &base, err, err_cap);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int added = 0;
        rc = commit_item(c, &items[i], &added, err, err_cap);
        if (rc == 0 && items[i].kind <= STORE_ITEM_ZONE) *counts[items[i].kind] += added;
    }
    if (rc == 0 && stats->customers_new > 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE meta SET value = value + %" PRId64 " WHERE name = 'customer_count'",
                 stats->customers_new);
        rc = store_pg_exec_sql(c, sql, NULL, err, err_cap);
    }
    if (rc == 0) rc = commit_sessions(c, source_id, base, &sessions, err, err_cap);
    if (rc == 0 && sessions > 0) rc = store_pg_take_seqs(c, sessions, &last, err, err_cap);
    if (rc == 0) {
        pg_params_t p = {0};
        store_pg_param_text(&p, source_id);
        rc = store_pg_exec_params(c,
                                  "WITH r AS (DELETE FROM browserd_copy_runs WHERE source_id = $1) "
                                  "DELETE FROM browserd_copy_sessions WHERE source_id = $1",
                                  &p, NULL, err, err_cap);
    }
    rc = store_pg_tx_end(c, rc, err, err_cap);
    if (rc != 0) return rc;
    stats->sessions_new = sessions;
    if (last) store_pg_seen_seq(pg_db(db), last);
    drop_staging_if_unused(db);
    return 0;
}
