/* Unit tests of what only the PostgreSQL backend does: its schema and migrations (under the
 * advisory lock, two opens racing), its URIs and their errors (never the password), its
 * connections (reconnecting after the server went away), what the listener keeps in memory
 * (the change counter, the key cache and its TTL), the feed's pages. Each test gets a new
 * database of the server BROWSERD_TEST_PG_ADMIN_URI names (skipped without it); the restart
 * test starts a private server of its own (tests/pg/pgserver.py), so that pausing it does not
 * disturb the tests that run beside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "store/pg_internal.h"
#include "store_fixture.h"

#define TEST(name) cmocka_unit_test_setup_teardown(name, store_fixture_setup, store_fixture_teardown)

static pg_db_t *backend_db(store_fixture_t *fx) { return (pg_db_t *)fx->store->db; }

/* A single value of a query on the fixture's database, as text (static buffer). */
static const char *pg_value(store_fixture_t *fx, const char *sql) {
    static char out[256];
    assert_int_equal(pq_api_load(NULL, 0), 0);
    PGconn *c = PQconnectdb(fx->target);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    snprintf(out, sizeof out, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
    return out;
}

static void raw_exec(store_fixture_t *fx, const char *sql) { assert_int_equal(pg_admin_exec(fx->pg_db, sql), 0); }

/* ---- schema and migrations ---- */

static void test_new_database_gets_every_version_recorded(void **state) {
    store_fixture_t *fx = *state;
    assert_string_equal(pg_value(fx, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version"),
                        "1,2,3,4,5");
    assert_string_equal(pg_value(fx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN "
                                     "('meta', 'customers', 'api_keys', 'zones', 'sessions', 'nodes', 'webhooks', "
                                     "'webhook_deliveries')"),
                        "8");
    assert_string_equal(pg_value(fx, "SELECT value FROM meta WHERE name = 'change_seq'"), "0");
    /* no SEQUENCE carries the change feed: the counter row does (identity columns order keys and
     * the webhook outbox) */
    assert_string_equal(pg_value(fx, "SELECT count(*) FROM pg_sequences WHERE sequencename NOT LIKE 'api_keys_ord%' "
                                     "AND sequencename NOT LIKE 'webhook_deliveries_id%'"),
                        "0");
}

typedef struct {
    const char *target;
    int rc;
    char err[512];
} opener_t;

static void *open_once(void *arg) {
    opener_t *o = arg;
    store_t *s = NULL;
    o->rc = store_open(o->target, &s, o->err, sizeof o->err);
    store_close(s);
    return NULL;
}

/* Four processes' worth of opens of one new database at once: each step applied once (the
 * advisory lock, the version read again under it), every open succeeds. */
static void test_racing_opens_migrate_once(void **state) {
    store_fixture_t *fx = *state;
    char name[64], uri[512];
    assert_int_equal(pg_new_database(name, uri, sizeof uri), 0);
    enum { OPENERS = 4 };
    pthread_t t[OPENERS];
    opener_t o[OPENERS];
    for (int i = 0; i < OPENERS; i++) {
        o[i] = (opener_t){.target = uri};
        assert_int_equal(pthread_create(&t[i], NULL, open_once, &o[i]), 0);
    }
    for (int i = 0; i < OPENERS; i++) {
        pthread_join(t[i], NULL);
        if (o[i].rc != 0) fail_msg("open %d: %s", i, o[i].err);
    }
    char keep[512];
    snprintf(keep, sizeof keep, "%s", fx->target);
    snprintf(fx->target, sizeof fx->target, "%s", uri);
    assert_string_equal(pg_value(fx, "SELECT count(*) || ':' || max(version) FROM schema_version"), "5:5");
    snprintf(fx->target, sizeof fx->target, "%s", keep);
    pg_drop_database(name);
}

static void test_newer_schema_is_refused(void **state) {
    store_fixture_t *fx = *state;
    raw_exec(fx, "INSERT INTO schema_version VALUES (99, 0, 'from the future')");
    store_close(fx->store);
    fx->store = NULL;
    char err[512] = "";
    store_t *s = NULL;
    assert_int_equal(store_open(fx->target, &s, err, sizeof err), -EIO);
    assert_null(s);
    assert_non_null(strstr(err, "schema version 99"));
    assert_non_null(strstr(err, "newer"));
    raw_exec(fx, "DELETE FROM schema_version WHERE version = 99");
    store_fixture_reopen(fx);
}

/* ---- URIs and errors ---- */

/* The fixture's URI with its password replaced (every form stays in the same place). */
static void with_password(const store_fixture_t *fx, const char *pw, char *out, size_t cap) {
    const char *at = strchr(fx->target, '@'), *colon = strchr(fx->target + strlen("postgresql://"), ':');
    assert_non_null(at);
    assert_non_null(colon);
    snprintf(out, cap, "%.*s%s%s", (int)(colon + 1 - fx->target), fx->target, pw, at);
}

static void test_wrong_password_is_refused_without_showing_it(void **state) {
    store_fixture_t *fx = *state;
    char uri[600], err[512] = "";
    with_password(fx, "Wr0ngPassw0rd", uri, sizeof uri);
    store_t *s = NULL;
    assert_int_equal(store_open(uri, &s, err, sizeof err), -EIO);
    assert_null(s);
    assert_non_null(strstr(err, "cannot connect to postgresql://browserd:***@127.0.0.1:"));
    assert_non_null(strstr(err, "password authentication failed"));
    assert_null(strstr(err, "Wr0ngPassw0rd"));
}

static void test_malformed_uri_is_einval_without_the_password(void **state) {
    (void)state;
    char err[512] = "";
    store_t *s = NULL;
    assert_int_equal(store_open("postgresql://u:S3cretPw@127.0.0.1/db?no_such_option=1", &s, err, sizeof err),
                     -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "invalid PostgreSQL URI postgresql://u:***@127.0.0.1/db"));
    assert_non_null(strstr(err, "no_such_option"));
    assert_null(strstr(err, "S3cretPw"));
    assert_int_equal(store_open("postgresql://u:S3cretPw@[::1/db", &s, err, sizeof err), -EINVAL);
    assert_null(strstr(err, "S3cretPw"));
}

static void test_missing_database_is_named(void **state) {
    store_fixture_t *fx = *state;
    char uri[600], err[512] = "";
    snprintf(uri, sizeof uri, "%s", fx->target);
    char *slash = strrchr(uri, '/');
    snprintf(slash, sizeof uri - (size_t)(slash - uri), "/no_such_db");
    store_t *s = NULL;
    assert_int_equal(store_open(uri, &s, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "no_such_db"));
    assert_non_null(strstr(err, "does not exist"));
}

/* ---- errors of the operations ---- */

/* A key hash that is taken (two keys, one hash) is the database's failure, not "exists". */
static void test_key_hash_clash_is_eio(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "";
    uint8_t hash[STORE_HASH_LEN] = {1, 2, 3};
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_pg_backend.key_add(fx->store->db, "acme", "key_000000000001", hash, err, sizeof err), 0);
    assert_int_equal(store_pg_backend.key_add(fx->store->db, "acme", "key_000000000001", hash, err, sizeof err),
                     -EEXIST);
    err[0] = '\0';
    assert_int_equal(store_pg_backend.key_add(fx->store->db, "acme", "key_000000000002", hash, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "api_keys_hash_key"));
}

/* ---- the listener's memory ---- */

/* A revocation that no notification announces (written behind the store's back) is still
 * served from the cache, but for at most its TTL. */
static void test_key_cache_expires_without_a_notification(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", key[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1], customer[STORE_ID_MAX + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", key, key_id, err, sizeof err), 0);
    assert_int_equal(store_events_start(fx->store, NULL, NULL), 0);
    assert_int_equal(store_key_authenticate(fx->store, key, 64, customer), 0);
    raw_exec(fx, "UPDATE api_keys SET revoked_ms = 1");
    int64_t t0 = time_now_ms();
    assert_int_equal(store_key_authenticate(fx->store, key, 64, customer), 0); /* cached */
    while (store_key_authenticate(fx->store, key, 64, customer) == 0) {
        assert_true(time_now_ms() - t0 <= PG_KEY_CACHE_TTL_MS + 200);
        usleep(20000);
    }
    assert_true(time_now_ms() - t0 >= PG_KEY_CACHE_TTL_MS - 300);
}

/* Without the listener nothing is cached: the same revocation counts at once. */
static void test_without_the_listener_keys_are_asked_every_time(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", key[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1], customer[STORE_ID_MAX + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", key, key_id, err, sizeof err), 0);
    assert_int_equal(store_key_authenticate(fx->store, key, 64, customer), 0);
    raw_exec(fx, "UPDATE api_keys SET revoked_ms = 1");
    assert_int_equal(store_key_authenticate(fx->store, key, 64, customer), -ENOENT);
}

/* A key revoked by a notified write drops the cache at once (no TTL to wait for). */
static void test_key_notification_drops_the_cache(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", key[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1], customer[STORE_ID_MAX + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", key, key_id, err, sizeof err), 0);
    assert_int_equal(store_events_start(fx->store, NULL, NULL), 0);
    assert_int_equal(store_key_authenticate(fx->store, key, 64, customer), 0);
    uint64_t generation = store_pg_key_cache_generation(backend_db(fx));
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE api_keys SET revoked_ms = 1 RETURNING pg_notify('browserd_keys', key_id)");
    raw_exec(fx, sql);
    int64_t t0 = time_now_ms();
    while (store_pg_key_cache_generation(backend_db(fx)) == generation) {
        assert_true(time_now_ms() - t0 < 1000);
        usleep(1000);
    }
    assert_int_equal(store_key_authenticate(fx->store, key, 64, customer), -ENOENT);
}

/* While listening, change_seq answers from memory: a counter changed without a notification
 * is not seen; without the listener it is read. */
static void test_change_seq_comes_from_memory_while_listening(void **state) {
    store_fixture_t *fx = *state;
    int64_t seq = -1;
    assert_int_equal(store_events_start(fx->store, NULL, NULL), 0);
    raw_exec(fx, "UPDATE meta SET value = 100 WHERE name = 'change_seq'");
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 0);
    raw_exec(fx, "SELECT pg_notify('browserd_changes', '100')");
    for (int i = 0; i < 100 && seq != 100; i++) {
        usleep(10000);
        assert_int_equal(store_change_seq(fx->store, &seq), 0);
    }
    assert_int_equal(seq, 100);
    store_events_stop(fx->store);
    raw_exec(fx, "UPDATE meta SET value = 120 WHERE name = 'change_seq'");
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 120);
}

/* ---- the feed's pages ---- */

typedef struct {
    store_t *store;
    int64_t rows;
} paged_t;

/* Counts, and calls the store again on this thread now and then (the contract allows it). */
static int paged_row(void *ctx, const char *customer_id, const session_record_t *rec) {
    (void)rec;
    paged_t *p = ctx;
    if (p->rows++ % 1000 == 0 && store_customer_exists(p->store, customer_id) != 0) return -EIO;
    return 0;
}

static int next_generated(void *ctx, session_record_t *rec, char *err, size_t err_cap) {
    (void)err;
    (void)err_cap;
    int64_t *n = ctx;
    if (*n == 0) return 0;
    char id[37];
    record_id(id, (uint32_t)(*n)--);
    *rec = make_record(id, "zone1", SESSION_FINISHED, *n);
    return 1;
}

static void test_feed_pages_deliver_every_row_once_in_order(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "";
    int64_t n = PG_FEED_PAGE * 2 + 17, imported = 0, last = 0;
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_sessions_import(fx->store, "acme", next_generated, &n, &imported, err, sizeof err), 0);
    assert_int_equal(imported, PG_FEED_PAGE * 2 + 17);
    paged_t p = {.store = fx->store};
    assert_int_equal(store_sessions_since(fx->store, 0, &last, paged_row, &p), 0);
    assert_int_equal(p.rows, imported);
    assert_int_equal(last, imported);
    p.rows = 0;
    assert_int_equal(store_sessions_since(fx->store, PG_FEED_PAGE, &last, paged_row, &p), 0);
    assert_int_equal(p.rows, PG_FEED_PAGE + 17);
}

/* ---- connections ---- */

/* Every statement prepares on a real connection. */
static void test_every_statement_prepares(void **state) {
    store_fixture_t *fx = *state;
    pg_conn_t *c = store_pg_conn(fx->store->db, NULL, 0);
    assert_non_null(c);
    for (int id = 0; id < PSTMT_COUNT; id++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", id);
        PGresult *r = PQprepare(c->conn, name, store_pg_stmt_sql[id], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("statement %d does not prepare: %s", id, PQresultErrorMessage(r));
        PQclear(r);
    }
}

/* One connection per calling thread (the workers and this one). */
static void test_one_connection_per_calling_thread(void **state) {
    store_fixture_t *fx = *state;
    run_concurrent_workload(fx);
    int conns = 0;
    for (pg_conn_t *c = backend_db(fx)->conns; c; c = c->next) conns++;
    assert_int_equal(conns, WORKER_THREADS + 1);
}

typedef struct {
    pthread_mutex_t lock;
    int ups, downs;
    int64_t seq;
} conn_events_t;

static void on_conn(void *ctx, bool up) {
    conn_events_t *e = ctx;
    pthread_mutex_lock(&e->lock);
    if (up) e->ups++;
    else e->downs++;
    pthread_mutex_unlock(&e->lock);
}

static void on_change_seq(void *ctx, int64_t seq) {
    conn_events_t *e = ctx;
    pthread_mutex_lock(&e->lock);
    e->seq = seq;
    pthread_mutex_unlock(&e->lock);
}

/* The private server of the restart test, stopped by its teardown even when an assertion
 * failed halfway (a server left running would outlive the test run). */
static char restart_dir[64], restart_srv[160];

static int stop_restart_server(void **state) {
    (void)state;
    const char *pgserver = getenv("BROWSERD_TEST_PGSERVER");
    if (pgserver && restart_srv[0]) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "python3 %s stop %s >/dev/null 2>&1", pgserver, restart_srv);
        if (system(cmd) != 0) fprintf(stderr, "could not stop the server in %s\n", restart_srv);
    }
    if (restart_dir[0]) rmdir(restart_dir);
    return 0;
}

/* The server goes away and comes back: the operations fail with -EIO meanwhile and work again
 * after (a broken connection is replaced on its next use); the listener reports the loss,
 * reconnects and reports the connection and the current counter. */
static void test_store_and_listener_reconnect_after_a_server_restart(void **state) {
    (void)state;
    const char *pgserver = getenv("BROWSERD_TEST_PGSERVER");
    if (!pgserver) skip();
    char state_path[256], *cmd_dir = restart_srv;
    snprintf(restart_dir, sizeof restart_dir, "/tmp/browserd-pg-restart-XXXXXX");
    assert_non_null(mkdtemp(restart_dir));
    assert_int_equal(chmod(restart_dir, 0755), 0); /* the server may run as another user (as root: browserd-test) */
    snprintf(restart_srv, sizeof restart_srv, "%s/srv", restart_dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 %s start %s >/dev/null", pgserver, cmd_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(state_path, sizeof state_path, "%s/state", cmd_dir);
    FILE *f = fopen(state_path, "r");
    assert_non_null(f);
    char line[512], uri[512] = "";
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "PG_URI=", 7) == 0) snprintf(uri, sizeof uri, "%.*s", (int)strcspn(line + 7, "\n"), line + 7);
    fclose(f);
    store_t *s = NULL;
    char err[512] = "";
    assert_int_equal(store_open(uri, &s, err, sizeof err), 0);
    conn_events_t e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    store_events_t ev = {.on_change = on_change_seq, .on_connection = on_conn};
    assert_int_equal(store_events_start(s, &ev, &e), 0);
    assert_int_equal(store_customer_add(s, "acme", err, sizeof err), 0);

    snprintf(cmd, sizeof cmd, "python3 %s pause %s", pgserver, cmd_dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(store_ping(s), -EIO);
    err[0] = '\0';
    assert_int_equal(store_customer_add(s, "other", err, sizeof err), -EIO);
    assert_non_null(strstr(err, "postgresql://browserd:***@127.0.0.1:"));
    for (int i = 0; i < 500 && e.downs == 0; i++) usleep(10000);
    assert_int_equal(e.downs, 1);
    snprintf(cmd, sizeof cmd, "python3 %s resume %s", pgserver, cmd_dir);
    assert_int_equal(system(cmd), 0);

    int rc = -EIO;
    for (int i = 0; i < 3 && rc != 0; i++) rc = store_customer_add(s, "other", err, sizeof err);
    assert_int_equal(rc, 0);
    char id[37];
    record_id(id, 1);
    session_record_t r = make_record(id, "zone1", SESSION_RUNNING, 1);
    assert_int_equal(store_session_put(s, "acme", &r), 0);
    session_record_free(&r);
    for (int i = 0; i < 1000 && (e.ups == 0 || e.seq < 1); i++) usleep(10000);
    assert_int_equal(e.ups, 1);
    assert_int_equal(e.seq, 1);
    store_close(s);
}


static void hex_of(const uint8_t *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static void unhex(const char *hex, uint8_t *out, size_t n) {
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* A schema 4 database (zone hashes SHA-256(salt || password)) is rehashed by migration 5 at
 * open: the stored hash becomes the KDF's and the old passwords keep working. */
static void test_version_4_zone_passwords_are_rehashed(void **state) {
    store_fixture_t *fx = *state;
    char err[256] = "", password[STORE_PASSWORD_LEN + 1], sql[512], hex[2 * STORE_HASH_LEN + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), 0);
    store_close(fx->store);
    fx->store = NULL;
    uint8_t salt[STORE_ZONE_SALT_LEN], legacy[STORE_HASH_LEN], slow[STORE_HASH_LEN], after[STORE_HASH_LEN];
    unhex(pg_value(fx, "SELECT encode(salt, 'hex') FROM zones"), salt, sizeof salt);
    assert_int_equal(store_sha256_two(salt, sizeof salt, password, STORE_PASSWORD_LEN, legacy), 0);
    assert_int_equal(store_zone_password_hash(salt, sizeof salt, password, STORE_PASSWORD_LEN, slow), 0);
    unhex(pg_value(fx, "SELECT encode(password_hash, 'hex') FROM zones"), after, sizeof after);
    assert_memory_equal(after, slow, STORE_HASH_LEN); /* a new zone's hash is the KDF's */
    hex_of(legacy, sizeof legacy, hex);
    snprintf(sql, sizeof sql,
             "UPDATE zones SET password_hash = decode('%s', 'hex'); DELETE FROM schema_version WHERE version = 5", hex);
    raw_exec(fx, sql);

    assert_int_equal(store_open(fx->target, &fx->store, err, sizeof err), 0);
    assert_string_equal(pg_value(fx, "SELECT max(version) FROM schema_version"), "5");
    unhex(pg_value(fx, "SELECT encode(password_hash, 'hex') FROM zones"), after, sizeof after);
    assert_memory_equal(after, slow, STORE_HASH_LEN);
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", password), 0);
    password[0] = password[0] == 'a' ? 'b' : 'a';
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", password), -EACCES);
}

int main(void) {
    int skip_code = store_fixture_skip_code("pg_store");
    if (skip_code) return skip_code;
    const struct CMUnitTest tests[] = {
        TEST(test_new_database_gets_every_version_recorded),
        TEST(test_racing_opens_migrate_once),
        TEST(test_version_4_zone_passwords_are_rehashed),
        TEST(test_newer_schema_is_refused),
        TEST(test_wrong_password_is_refused_without_showing_it),
        TEST(test_malformed_uri_is_einval_without_the_password),
        TEST(test_missing_database_is_named),
        TEST(test_key_hash_clash_is_eio),
        TEST(test_key_cache_expires_without_a_notification),
        TEST(test_without_the_listener_keys_are_asked_every_time),
        TEST(test_key_notification_drops_the_cache),
        TEST(test_change_seq_comes_from_memory_while_listening),
        TEST(test_feed_pages_deliver_every_row_once_in_order),
        TEST(test_every_statement_prepares),
        TEST(test_one_connection_per_calling_thread),
        cmocka_unit_test_teardown(test_store_and_listener_reconnect_after_a_server_restart, stop_restart_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
