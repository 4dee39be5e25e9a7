/* Unit tests of what only the SQLite backend does: its file (schema, migrations, WAL, what is
 * written to disk), its connections, and the query plan of every statement. The store is
 * driven through store.h; the file is read with a connection of the test's own. store.c is
 * included for struct store (to reach the backend's connections). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../../src/store/store.c"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/sqlite_internal.h"
#include "store_fixture.h"

#define TEST(name) cmocka_unit_test_setup_teardown(name, store_fixture_setup, store_fixture_teardown)

static sqlite3 *raw_open(const char *path) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t raw_file_int(store_fixture_t *fx, const char *sql) {
    sqlite3 *db = raw_open(fx->target);
    int64_t v = raw_int(db, sql);
    sqlite3_close(db);
    return v;
}

static void assert_text(sqlite3 *db, const char *sql, const char *expect) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), expect);
    sqlite3_finalize(st);
}

/* Whether the bytes of `needle` appear anywhere in the file (a missing file has none). */
static bool file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    size_t got = fread(data, 1, (size_t)size, f);
    fclose(f);
    bool found = memmem(data, got, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

/* Neither the database file nor its WAL holds `secret`. */
static void assert_not_on_disk(store_fixture_t *fx, const char *secret) {
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", fx->target);
    assert_false(file_contains(fx->target, secret));
    assert_false(file_contains(wal, secret));
}

static sqlite_db_t *backend_db(store_fixture_t *fx) { return (sqlite_db_t *)fx->store->db; }

/* ---- the file ---- */

static void test_new_file_gets_the_current_schema(void **state) {
    store_fixture_t *fx = *state;
    sqlite3 *db = raw_open(fx->target);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), store_sqlite_migration_count);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                                 "('meta', 'customers', 'api_keys', 'zones', 'sessions')"),
                     5);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_table_info('zones') WHERE name = 'upstream_proxy'"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'worker'"), 1);
    sqlite3_close(db);
}

static void test_database_is_in_wal_mode(void **state) {
    store_fixture_t *fx = *state;
    sqlite3 *db = raw_open(fx->target);
    assert_text(db, "PRAGMA journal_mode", "wal");
    sqlite3_close(db);
}

/* docs/store.md: synchronous NORMAL, foreign keys on, 16 MiB of page cache, a 64 MiB WAL
 * size limit, a 5 s busy timeout. */
static void test_connections_have_the_documented_settings(void **state) {
    store_fixture_t *fx = *state;
    store_conn_t *c = store_sqlite_conn(fx->store->db, NULL, 0);
    assert_non_null(c);
    assert_int_equal(raw_int(c->db, "PRAGMA synchronous"), 1);
    assert_int_equal(raw_int(c->db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(raw_int(c->db, "PRAGMA cache_size"), -CACHE_KIB_DEFAULT);
    assert_int_equal(raw_int(c->db, "PRAGMA journal_size_limit"), 64 * 1024 * 1024);
    assert_int_equal(raw_int(c->db, "PRAGMA busy_timeout"), 5000);
}

static void test_newer_schema_is_refused(void **state) {
    store_fixture_t *fx = *state;
    store_close(fx->store);
    fx->store = NULL;
    sqlite3 *db = raw_open(fx->target);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512] = "";
    store_t *s = NULL;
    assert_int_equal(store_open(fx->target, &s, err, sizeof err), -EIO);
    assert_null(s);
    assert_non_null(strstr(err, "schema version 99"));
    assert_non_null(strstr(err, "newer"));
}

/* A database of schema version 1 (before sessions had a worker) is migrated at open, and its
 * running sessions count as imported ones: no orphans. */
static void test_version_1_database_is_migrated_with_its_data(void **state) {
    store_fixture_t *fx = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/v1.db", fx->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, store_sqlite_migrations[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA user_version = 1;"
                                  "INSERT INTO customers VALUES ('acme', 1);"
                                  "UPDATE meta SET value = 1 WHERE name IN ('customer_count', 'change_seq');"
                                  "INSERT INTO sessions VALUES ('acme', '0190a1b2-c3d4-7e5f-8a9b-000000000001', "
                                  "'0190a1b2-c3d4-7e5f-8a9b-000000000001', 'zone1', 0, NULL, NULL, 0, 1, NULL, 0, 0, "
                                  "NULL, NULL, 1, 1);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    store_close(fx->store);
    char err[512] = "";
    assert_int_equal(store_open(path, &fx->store, err, sizeof err), 0);
    db = raw_open(path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), store_sqlite_migration_count);
    sqlite3_close(db);
    int64_t customers = 0, failed = -1, rows = 0, last = 0;
    assert_int_equal(store_customer_count(fx->store, &customers), 0);
    assert_int_equal(customers, 1);
    assert_int_equal(store_sessions_fail_orphans(fx->store, "this-node", &failed), 0);
    assert_int_equal(failed, 0);
    assert_int_equal(store_sessions_since(fx->store, 0, &last, count_rows, &rows), 0);
    assert_int_equal(rows, 1);
    assert_int_equal(last, 1);
}

/* SQLite's own words reach the caller. */
static void test_open_refuses_file_that_is_not_a_database(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", path[256];
    store_t *s = NULL;
    snprintf(path, sizeof path, "%s/not-a-db", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++) fputs("this is not a database file\n", f);
    fclose(f);
    assert_int_equal(store_open(path, &s, err, sizeof err), -EIO);
    assert_null(s);
    assert_non_null(strstr(err, "not a database"));
}

static void test_open_does_not_create_a_missing_directory(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", path[256];
    store_t *s = NULL;
    snprintf(path, sizeof path, "%s/missing/browserd.db", fx->dir);
    assert_int_equal(store_open(path, &s, err, sizeof err), -EIO);
    assert_null(s);
    assert_non_null(strstr(err, "unable to open"));
    snprintf(path, sizeof path, "%s/missing", fx->dir);
    assert_int_equal(access(path, F_OK), -1);
}

/* Every thread would get an in-memory database of its own. */
static void test_open_refuses_memory_database(void **state) {
    (void)state;
    char err[512] = "";
    store_t *s = NULL;
    assert_int_equal(store_open(":memory:", &s, err, sizeof err), -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "in-memory"));
}

/* ---- what is written ---- */

/* Only the hash is stored: not in any column of the table, nor anywhere in the files. */
static void test_api_keys_are_stored_only_as_hashes(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", key1[STORE_API_KEY_LEN + 1], key2[STORE_API_KEY_LEN + 1];
    char id1[STORE_KEY_ID_LEN + 1], id2[STORE_KEY_ID_LEN + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", key1, id1, err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", key2, id2, err, sizeof err), 0);
    assert_int_equal(store_key_revoke(fx->store, id1), 0);
    sqlite3 *db = raw_open(fx->target);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT key_id, customer_id, hex(key_hash), lower(hex(key_hash)), "
                                            "created_ms, revoked_ms, CAST(key_hash AS TEXT) FROM api_keys",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        assert_int_equal(sqlite3_column_bytes(st, 2), 64);
        for (int col = 0; col < sqlite3_column_count(st); col++) {
            const char *text = (const char *)sqlite3_column_text(st, col);
            if (!text) continue;
            assert_null(strstr(text, key1));
            assert_null(strstr(text, key2));
        }
    }
    sqlite3_finalize(st);
    assert_int_equal(rows, 2);
    sqlite3_close(db);
    assert_not_on_disk(fx, key1);
    assert_not_on_disk(fx, key2);
}

static void test_zone_passwords_are_stored_salted_and_hashed(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", password[STORE_PASSWORD_LEN + 1], password2[STORE_PASSWORD_LEN + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_customer_add(fx->store, "other", err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "other", "zone1", password2, err, sizeof err), 0);
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", "http://u:p@127.0.0.1:3128"), 0);
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", NULL), 0);
    assert_int_equal(raw_file_int(fx, "SELECT count(*) FROM zones WHERE length(salt) = 16 AND "
                                      "length(password_hash) = 32 AND upstream_proxy IS NULL"),
                     2);
    assert_not_on_disk(fx, password);
    assert_not_on_disk(fx, password2);
}

/* A session's identity is its lowercase id; the id keeps the case it was given. */
static void test_session_key_is_the_lowercase_id(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", id_a[37], id_b[37];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    record_id(id_a, 0xa);
    record_id(id_b, 0xb);
    session_record_t a = make_record(id_a, "zone1", SESSION_RUNNING, 1);
    session_record_t b = make_record(id_b, "zone1", SESSION_RUNNING, 2);
    session_record_t a_done = make_record(id_a, "zone1", SESSION_FAILED, 1);
    uppercase_id(&a_done);
    assert_int_equal(store_session_put(fx->store, "acme", &a), 0);
    assert_int_equal(store_session_put(fx->store, "acme", &b), 0);
    assert_int_equal(store_session_put(fx->store, "acme", &a_done), 0);
    assert_int_equal(raw_file_int(fx, "SELECT count(*) FROM sessions"), 2);
    assert_int_equal(raw_file_int(fx, "SELECT count(*) FROM sessions WHERE session_key = lower(session_id)"), 2);
    assert_int_equal(raw_file_int(fx, "SELECT count(*) FROM sessions WHERE session_id = upper(session_id)"), 1);
    session_record_free(&a);
    session_record_free(&b);
    session_record_free(&a_done);
}

/* The import raises its connection's page cache and gives it back after. */
static void test_import_gives_its_page_cache_back(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", id[37];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    record_id(id, 1);
    session_record_t rec = make_record(id, "zone1", SESSION_FINISHED, 1);
    array_source_t src = {&rec, 1, 0, SIZE_MAX};
    int64_t imported = 0;
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &src, &imported, err, sizeof err), 0);
    assert_int_equal(imported, 1);
    store_conn_t *c = store_sqlite_conn(fx->store->db, NULL, 0);
    assert_non_null(c);
    assert_int_equal(raw_int(c->db, "PRAGMA cache_size"), -CACHE_KIB_DEFAULT);
    session_record_free(&rec);
}

/* ---- threads ---- */

/* The seqs in the table are unique and exactly the latest ones, the feed delivers rows in
 * their order, and a feed resumed from any row's seq gives exactly the rows after it. */
static void test_concurrent_changes_store_unique_seqs_in_feed_order(void **state) {
    store_fixture_t *fx = *state;
    run_concurrent_workload(fx);
    int64_t last = 0;
    id_list_t delivered = {calloc(WORKLOAD_SESSIONS, 37), 0, WORKLOAD_SESSIONS, 0};
    assert_non_null(delivered.ids);
    assert_int_equal(store_sessions_since(fx->store, 0, &last, list_ids, &delivered), 0);
    assert_int_equal(delivered.count, WORKLOAD_SESSIONS);
    assert_int_equal(last, WORKLOAD_CHANGES);
    sqlite3 *db = raw_open(fx->target);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT session_id, seq FROM sessions ORDER BY seq", -1, &st, NULL),
                     SQLITE_OK);
    int64_t row = 0, middle_seq = 0, prev_seq = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_string_equal((const char *)sqlite3_column_text(st, 0), delivered.ids[row]);
        assert_true(sqlite3_column_int64(st, 1) > prev_seq);
        prev_seq = sqlite3_column_int64(st, 1);
        if (++row == WORKLOAD_SESSIONS / 2) middle_seq = prev_seq;
    }
    sqlite3_finalize(st);
    assert_int_equal(row, WORKLOAD_SESSIONS);
    id_list_t rest = {calloc(WORKLOAD_SESSIONS, 37), 0, WORKLOAD_SESSIONS, 0};
    assert_non_null(rest.ids);
    assert_int_equal(store_sessions_since(fx->store, middle_seq, &last, list_ids, &rest), 0);
    assert_int_equal(rest.count, WORKLOAD_SESSIONS / 2);
    assert_memory_equal(rest.ids, delivered.ids + WORKLOAD_SESSIONS / 2, (size_t)rest.count * 37);
    free(rest.ids);
    free(delivered.ids);
    assert_int_equal(raw_int(db, "SELECT count(DISTINCT seq) FROM sessions"), WORKLOAD_SESSIONS);
    assert_int_equal(raw_int(db, "SELECT max(seq) FROM sessions"), WORKLOAD_CHANGES);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sessions WHERE status = 1"), WORKLOAD_FINISHED);
    sqlite3_close(db);
}

/* One connection per thread that used the store (the workers and this one). */
static void test_one_connection_per_calling_thread(void **state) {
    store_fixture_t *fx = *state;
    run_concurrent_workload(fx);
    int conns = 0;
    for (store_conn_t *c = backend_db(fx)->conns; c; c = c->next) conns++;
    assert_int_equal(conns, WORKER_THREADS + 1);
}

/* ---- statements ---- */

/* No statement scans a whole table or sorts without an index. */
static void test_every_statement_uses_an_index(void **state) {
    store_fixture_t *fx = *state;
    sqlite3 *db = raw_open(fx->target);
    for (int id = 0; id < STMT_COUNT; id++) {
        assert_non_null(store_sqlite_stmt_sql[id]);
        char sql[2048];
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", store_sqlite_stmt_sql[id]);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
            fail_msg("statement %d does not prepare: %s", id, sqlite3_errmsg(db));
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(st, 3);
            if (strncmp(detail, "SCAN ", 5) == 0 && strcmp(detail, "SCAN CONSTANT ROW") != 0)
                fail_msg("full scan in statement %d (%s): %s", id, store_sqlite_stmt_sql[id], detail);
            if (strstr(detail, "TEMP B-TREE"))
                fail_msg("sort without an index in statement %d (%s): %s", id, store_sqlite_stmt_sql[id], detail);
        }
        assert_int_equal(rc, SQLITE_DONE);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

/* Every statement of the table prepares on a real connection (no typo waits for its first
 * use in production). */
static void test_every_statement_prepares(void **state) {
    store_fixture_t *fx = *state;
    store_conn_t *c = store_sqlite_conn(fx->store->db, NULL, 0);
    assert_non_null(c);
    for (int id = 0; id < STMT_COUNT; id++) assert_non_null(store_sqlite_stmt(c, (stmt_id_t)id, NULL, 0));
}


/* ---- zone passwords at rest, the file's mode ---- */

/* The zone's row of the raw file: its salt and stored hash. */
static void zone_row(const char *path, const char *customer, const char *zone, uint8_t salt[STORE_ZONE_SALT_LEN],
                     uint8_t hash[STORE_HASH_LEN]) {
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT salt, password_hash FROM zones WHERE customer_id = ?1 AND name = ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, customer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(st, 0), STORE_ZONE_SALT_LEN);
    assert_int_equal(sqlite3_column_bytes(st, 1), STORE_HASH_LEN);
    memcpy(salt, sqlite3_column_blob(st, 0), STORE_ZONE_SALT_LEN);
    memcpy(hash, sqlite3_column_blob(st, 1), STORE_HASH_LEN);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A new zone's hash is the KDF's, not the fast SHA-256(salt || password) of schema 3. */
static void test_zone_password_is_stored_through_the_kdf(void **state) {
    store_fixture_t *fx = *state;
    char err[256] = "", password[STORE_PASSWORD_LEN + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), 0);
    uint8_t salt[STORE_ZONE_SALT_LEN], stored[STORE_HASH_LEN], fast[STORE_HASH_LEN], slow[STORE_HASH_LEN];
    zone_row(fx->target, "acme", "zone1", salt, stored);
    assert_int_equal(store_sha256_two(salt, sizeof salt, password, STORE_PASSWORD_LEN, fast), 0);
    assert_int_equal(store_zone_password_hash(salt, sizeof salt, password, STORE_PASSWORD_LEN, slow), 0);
    assert_memory_not_equal(stored, fast, STORE_HASH_LEN);
    assert_memory_equal(stored, slow, STORE_HASH_LEN);
}

/* A schema 4 database (zone hashes SHA-256(salt || password)) is rehashed by migration 5 at
 * open: the stored hash becomes the KDF's and the old passwords keep working. */
static void test_version_4_zone_passwords_are_rehashed(void **state) {
    store_fixture_t *fx = *state;
    char err[256] = "", password[STORE_PASSWORD_LEN + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), 0);
    store_close(fx->store);
    fx->store = NULL;
    uint8_t salt[STORE_ZONE_SALT_LEN], stored[STORE_HASH_LEN], legacy[STORE_HASH_LEN];
    zone_row(fx->target, "acme", "zone1", salt, stored);
    assert_int_equal(store_sha256_two(salt, sizeof salt, password, STORE_PASSWORD_LEN, legacy), 0);
    /* back to what schema 4 wrote */
    sqlite3 *db = raw_open(fx->target);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE zones SET password_hash = ?1", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, legacy, STORE_HASH_LEN, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM schema_version WHERE version = 5; PRAGMA user_version = 4", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(store_open(fx->target, &fx->store, err, sizeof err), 0);
    assert_int_equal(raw_file_int(fx, "PRAGMA user_version"), 5);
    assert_int_equal(raw_file_int(fx, "SELECT count(*) FROM schema_version WHERE version = 5"), 1);
    uint8_t after[STORE_HASH_LEN], slow[STORE_HASH_LEN];
    zone_row(fx->target, "acme", "zone1", salt, after);
    assert_int_equal(store_zone_password_hash(salt, sizeof salt, password, STORE_PASSWORD_LEN, slow), 0);
    assert_memory_equal(after, slow, STORE_HASH_LEN);
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", password), 0);
    password[0] = password[0] == 'a' ? 'b' : 'a';
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", password), -EACCES);
}

static unsigned mode_of(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)st.st_mode & 07777;
}

/* The database and the files SQLite keeps beside it are the owner's only: they hold key and
 * password hashes and every customer's sessions. */
static void test_database_files_are_0600(void **state) {
    store_fixture_t *fx = *state;
    char err[256] = "", wal[600], shm[600];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0); /* a write: the WAL exists */
    snprintf(wal, sizeof wal, "%s-wal", fx->target);
    snprintf(shm, sizeof shm, "%s-shm", fx->target);
    assert_int_equal(mode_of(fx->target), 0600);
    assert_int_equal(mode_of(wal), 0600);
    assert_int_equal(mode_of(shm), 0600);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TEST(test_new_file_gets_the_current_schema),
        TEST(test_zone_password_is_stored_through_the_kdf),
        TEST(test_version_4_zone_passwords_are_rehashed),
        TEST(test_database_files_are_0600),
        TEST(test_database_is_in_wal_mode),
        TEST(test_connections_have_the_documented_settings),
        TEST(test_newer_schema_is_refused),
        TEST(test_version_1_database_is_migrated_with_its_data),
        TEST(test_open_refuses_file_that_is_not_a_database),
        TEST(test_open_does_not_create_a_missing_directory),
        TEST(test_open_refuses_memory_database),
        TEST(test_api_keys_are_stored_only_as_hashes),
        TEST(test_zone_passwords_are_stored_salted_and_hashed),
        TEST(test_session_key_is_the_lowercase_id),
        TEST(test_import_gives_its_page_cache_back),
        TEST(test_concurrent_changes_store_unique_seqs_in_feed_order),
        TEST(test_one_connection_per_calling_thread),
        TEST(test_every_statement_uses_an_index),
        TEST(test_every_statement_prepares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
