/* Unit tests of the SQLite store, on real database files in a temporary directory. The
 * source is included to reach the statement table (for the EXPLAIN QUERY PLAN check) and
 * the migration list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../../src/store/store.c"
#include "store/sqlite_internal.h"

#include <pthread.h>
#include <sqlite3.h>
#include "core/timeutil.h"

#include <dirent.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char path[128];
    store_t *store;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/browserd-store-test-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->path, sizeof fx->path, "%s/browserd.db", fx->dir);
    char err[512] = "";
    if (store_open(fx->path, &fx->store, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    store_close(fx->store);
    DIR *d = opendir(fx->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char file[512];
            snprintf(file, sizeof file, "%s/%s", fx->dir, e->d_name);
            unlink(file);
        }
        closedir(d);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* ---- helpers ---- */

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

static session_record_t make_record(const char *id, const char *api_name, session_status_t status, int64_t n) {
    session_record_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.session_id, sizeof r.session_id, "%s", id);
    r.api_name = strdup(api_name);
    r.status = status;
    if (n % 3 != 0) {
        r.target_url = strdup("https://www.example.com/");
        r.end_url = strdup("https://www.example.com/end");
    }
    r.navigations = n % 7;
    r.timestamp_ms = INT64_C(1764583200000) + n * 1000;
    r.duration_ms = status == SESSION_RUNNING ? SESSION_DURATION_NULL : 1000 + n;
    r.captcha = (captcha_t)(n % 4);
    r.bandwidth = n * 100;
    if (status == SESSION_FAILED) {
        r.error_code = strdup("session_timeout");
        r.error_message = strdup("the session reached its maximum duration");
    }
    return r;
}

static void record_id(char out[37], uint32_t n) { snprintf(out, 37, "0190a1b2-c3d4-7e5f-8a9b-%012" PRIx32, n); }

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static session_record_t record_copy(const session_record_t *r) {
    session_record_t c = *r;
    c.api_name = dup_or_null(r->api_name);
    c.target_url = dup_or_null(r->target_url);
    c.end_url = dup_or_null(r->end_url);
    c.error_code = dup_or_null(r->error_code);
    c.error_message = dup_or_null(r->error_message);
    return c;
}

static bool same_text(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static bool same_record(const session_record_t *a, const session_record_t *b) {
    return strcmp(a->session_id, b->session_id) == 0 && same_text(a->api_name, b->api_name) &&
           a->status == b->status && same_text(a->target_url, b->target_url) && same_text(a->end_url, b->end_url) &&
           a->navigations == b->navigations && a->timestamp_ms == b->timestamp_ms &&
           a->duration_ms == b->duration_ms && a->captcha == b->captcha && a->bandwidth == b->bandwidth &&
           same_text(a->error_code, b->error_code) && same_text(a->error_message, b->error_message);
}

/* A record source over an array; it fails (as a bad input line would) at index fail_at. */
typedef struct {
    const session_record_t *records;
    size_t count, next, fail_at;
} array_source_t;

static int array_next(void *ctx, session_record_t *rec, char *err, size_t err_cap) {
    array_source_t *src = ctx;
    if (src->next == src->fail_at) {
        snprintf(err, err_cap, "line %zu: bad record", src->next + 1);
        return -1;
    }
    if (src->next >= src->count) return 0;
    *rec = record_copy(&src->records[src->next++]);
    return 1;
}

/* Collects what store_sessions_since delivers. */
typedef struct {
    session_record_t records[64];
    char customers[64][STORE_ID_MAX + 1];
    size_t count;
    size_t stop_after; /* return 99 after this many (0: never) */
} collector_t;

static int collect(void *ctx, const char *customer_id, const session_record_t *rec) {
    collector_t *c = ctx;
    if (c->stop_after && c->count == c->stop_after) return 99;
    assert_true(c->count < 64);
    c->records[c->count] = record_copy(rec);
    memcpy(c->records[c->count].session_id, rec->session_id, sizeof rec->session_id);
    snprintf(c->customers[c->count], sizeof c->customers[0], "%s", customer_id);
    c->count++;
    return 0;
}

static void collector_free(collector_t *c) {
    for (size_t i = 0; i < c->count; i++) session_record_free(&c->records[i]);
    c->count = 0;
}

static int count_rows(void *ctx, const char *customer_id, const session_record_t *rec) {
    (void)customer_id;
    (void)rec;
    (*(int64_t *)ctx)++;
    return 0;
}

static bool file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    size_t got = fread(data, 1, (size_t)size, f);
    fclose(f);
    bool found = memmem(data, got, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

/* ---- migrations ---- */

static void test_migrations_from_empty_and_reopen(void **state) {
    fixture_t *fx = *state;
    sqlite3 *db = raw_open(fx->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), store_sqlite_migration_count);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                                 "('meta', 'customers', 'api_keys', 'zones', 'sessions')"),
                     5);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_table_info('zones') WHERE name = 'upstream_proxy'"), 1);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    int64_t seq = -1, customers = -1;
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(store_customer_count(fx->store, &customers), 0);
    assert_int_equal(customers, 0);
    assert_int_equal(store_customer_add(fx->store, "acme", NULL, 0), 0);

    /* Re-open: nothing to migrate, data kept. */
    store_close(fx->store);
    char err[512] = "";
    assert_int_equal(store_open(fx->path, &fx->store, err, sizeof err), 0);
    assert_int_equal(store_customer_exists(fx->store, "acme"), 0);
    assert_int_equal(store_customer_count(fx->store, &customers), 0);
    assert_int_equal(customers, 1);
}

static void test_newer_database_refused(void **state) {
    fixture_t *fx = *state;
    store_close(fx->store);
    fx->store = NULL;
    sqlite3 *db = raw_open(fx->path);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512] = "";
    store_t *s = NULL;
    assert_int_equal(store_open(fx->path, &s, err, sizeof err), -EIO);
    assert_null(s);
    assert_non_null(strstr(err, "schema version 99"));
    assert_non_null(strstr(err, "newer"));
}

static void test_open_errors(void **state) {
    fixture_t *fx = *state;
    char err[512] = "", path[256];
    store_t *s = NULL;
    /* Not a database: SQLite's own words reach the caller. */
    snprintf(path, sizeof path, "%s/not-a-db", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++) fputs("this is not a database file\n", f);
    fclose(f);
    assert_int_equal(store_open(path, &s, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "not a database"));
    /* A directory that does not exist is not created. */
    snprintf(path, sizeof path, "%s/missing/browserd.db", fx->dir);
    assert_int_equal(store_open(path, &s, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "unable to open"));
    assert_int_equal(store_open("postgres://localhost/x", &s, err, sizeof err), -EINVAL);
    assert_int_equal(store_open("", &s, err, sizeof err), -EINVAL);
    assert_int_equal(store_open(":memory:", &s, err, sizeof err), -EINVAL);
}

/* ---- customers ---- */

static void test_customers(void **state) {
    fixture_t *fx = *state;
    char err[512] = "";
    assert_int_equal(store_customer_add(fx->store, "acme_1", err, sizeof err), 0);
    assert_int_equal(store_customer_add(fx->store, "acme_1", err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, "already exists"));
    const char *invalid[] = {"", "Acme", "a-b", "a b", "ünï", "abcdefghijklmnopqrstuvwxyz0123456"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        assert_int_equal(store_customer_add(fx->store, invalid[i], err, sizeof err), -EINVAL);
    assert_int_equal(store_customer_add(fx->store, NULL, err, sizeof err), -EINVAL);
    assert_int_equal(store_customer_add(fx->store, "abcdefghijklmnopqrstuvwxyz012345", err, sizeof err), 0);
    assert_int_equal(store_customer_exists(fx->store, "acme_1"), 0);
    assert_int_equal(store_customer_exists(fx->store, "acme_2"), -ENOENT);
    assert_int_equal(store_customer_exists(fx->store, "Not Valid"), -ENOENT);
    int64_t count = 0;
    assert_int_equal(store_customer_count(fx->store, &count), 0);
    assert_int_equal(count, 2);
    assert_true(store_valid_zone_name("a_zone_9"));
    assert_false(store_valid_zone_name("a-zone"));
}

/* ---- keys ---- */

static bool is_lower_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return s[n] == '\0';
}

static void test_keys(void **state) {
    fixture_t *fx = *state;
    char err[512] = "", key1[STORE_API_KEY_LEN + 1], key2[STORE_API_KEY_LEN + 1];
    char id1[STORE_KEY_ID_LEN + 1], id2[STORE_KEY_ID_LEN + 1], customer[STORE_ID_MAX + 1];
    assert_int_equal(store_key_add(fx->store, "nobody", key1, id1, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "unknown customer"));
    assert_int_equal(store_key_add(fx->store, "BAD", key1, id1, err, sizeof err), -EINVAL);
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_customer_add(fx->store, "other", err, sizeof err), 0);
    int64_t before = time_now_ms();
    assert_int_equal(store_key_add(fx->store, "acme", key1, id1, err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", key2, id2, err, sizeof err), 0);
    assert_true(is_lower_hex(key1, 64));
    assert_true(is_lower_hex(key2, 64));
    assert_string_not_equal(key1, key2);
    assert_memory_equal(id1, "key_", 4);
    assert_true(is_lower_hex(id1 + 4, 12));
    assert_string_not_equal(id1, id2);

    assert_int_equal(store_key_authenticate(fx->store, key1, 64, customer), 0);
    assert_string_equal(customer, "acme");
    assert_int_equal(store_key_authenticate(fx->store, key2, 64, customer), 0);
    /* Unknown, truncated, longer, empty. */
    char wrong[65];
    memcpy(wrong, key1, sizeof wrong);
    wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
    assert_int_equal(store_key_authenticate(fx->store, wrong, 64, customer), -ENOENT);
    assert_int_equal(store_key_authenticate(fx->store, key1, 63, customer), -ENOENT);
    assert_int_equal(store_key_authenticate(fx->store, "", 0, customer), -ENOENT);
    assert_int_equal(store_key_authenticate(fx->store, NULL, 64, customer), -ENOENT);

    store_key_info_t *keys = NULL;
    size_t count = 0;
    assert_int_equal(store_key_list(fx->store, "acme", &keys, &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(keys[0].key_id, id1);
    assert_string_equal(keys[1].key_id, id2);
    assert_false(keys[0].revoked);
    assert_true(keys[0].created_ms >= before && keys[0].created_ms <= time_now_ms());
    free(keys);
    assert_int_equal(store_key_list(fx->store, "other", &keys, &count), 0);
    assert_int_equal(count, 0);
    free(keys);
    assert_int_equal(store_key_list(fx->store, "nobody", &keys, &count), -ENOENT);

    assert_int_equal(store_key_revoke(fx->store, id1), 0);
    assert_int_equal(store_key_authenticate(fx->store, key1, 64, customer), -ENOENT);
    assert_int_equal(store_key_authenticate(fx->store, key2, 64, customer), 0);
    assert_int_equal(store_key_revoke(fx->store, id1), 0); /* idempotent */
    assert_int_equal(store_key_revoke(fx->store, "key_000000000000"), -ENOENT);
    assert_int_equal(store_key_revoke(fx->store, "key_zz"), -EINVAL);
    assert_int_equal(store_key_list(fx->store, "acme", &keys, &count), 0);
    assert_int_equal(count, 2);
    assert_true(keys[0].revoked);
    assert_false(keys[1].revoked);
    free(keys);

    /* Only the hash is stored: not in any column of the table, nor anywhere in the files. */
    sqlite3 *db = raw_open(fx->path);
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
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", fx->path);
    assert_false(file_contains(fx->path, key1));
    assert_false(file_contains(wal, key1));
    assert_false(file_contains(wal, key2));
}

/* ---- zones ---- */

static void test_zones(void **state) {
    fixture_t *fx = *state;
    char err[512] = "", password[STORE_PASSWORD_LEN + 1], password2[STORE_PASSWORD_LEN + 1];
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), -ENOENT);
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_customer_add(fx->store, "other", err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "acme", "Zone-1", password, err, sizeof err), -EINVAL);
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), 0);
    assert_int_equal(strlen(password), STORE_PASSWORD_LEN);
    for (size_t i = 0; i < STORE_PASSWORD_LEN; i++)
        assert_true((password[i] >= 'a' && password[i] <= 'z') || (password[i] >= '0' && password[i] <= '9'));
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password2, err, sizeof err), -EEXIST);
    /* The same zone name under another customer is another zone, with another password. */
    assert_int_equal(store_zone_add(fx->store, "other", "zone1", password2, err, sizeof err), 0);
    assert_string_not_equal(password, password2);

    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", password), 0);
    assert_int_equal(store_zone_check(fx->store, "other", "zone1", password2), 0);
    assert_int_equal(store_zone_check(fx->store, "other", "zone1", password), -EACCES);
    char wrong[STORE_PASSWORD_LEN + 1];
    memcpy(wrong, password, sizeof wrong);
    wrong[23] = wrong[23] == 'a' ? 'b' : 'a';
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", wrong), -EACCES);
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", ""), -EACCES);
    assert_int_equal(store_zone_check(fx->store, "acme", "zone2", password), -ENOENT);
    assert_int_equal(store_zone_check(fx->store, "nobody", "zone1", password), -ENOENT);

    /* A zone's upstream proxy: set, read back on a successful check only, cleared. */
    char upstream[256] = "stale";
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", password, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "");
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", "http://u:p@127.0.0.1:3128"), 0);
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", password, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "http://u:p@127.0.0.1:3128");
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", wrong, upstream, sizeof upstream), -EACCES);
    assert_string_equal(upstream, ""); /* nothing of the zone leaks to a wrong password */
    assert_int_equal(store_zone_authorize(fx->store, "other", "zone1", password2, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, ""); /* the other customer's zone of the same name has none */
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "nozone", "http://h:1"), -ENOENT);
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", NULL), 0);
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", password, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "");

    sqlite3 *db = raw_open(fx->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM zones WHERE length(salt) = 16 AND length(password_hash) = 32 "
                                 "AND upstream_proxy IS NULL"),
                     2);
    sqlite3_close(db);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", fx->path);
    assert_false(file_contains(fx->path, password));
    assert_false(file_contains(wal, password));
}

/* ---- sessions ---- */

static void test_import_all_or_nothing(void **state) {
    fixture_t *fx = *state;
    char err[512] = "";
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    session_record_t recs[10];
    for (uint32_t i = 0; i < 10; i++) {
        char id[37];
        record_id(id, i + 1);
        recs[i] = make_record(id, "zone1", (session_status_t)(i % 3), i);
    }
    int64_t imported = -1, seq = -1, last = -1, rows = 0;

    /* The source fails at the 6th record: nothing stays. */
    array_source_t src = {recs, 10, 0, 5};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &src, &imported, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 6: bad record");
    assert_int_equal(imported, 0);
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(store_sessions_since(fx->store, 0, &last, count_rows, &rows), 0);
    assert_int_equal(rows, 0);

    /* A record the store itself refuses (status out of range), mid-way. */
    session_record_t bad[3] = {record_copy(&recs[0]), record_copy(&recs[1]), record_copy(&recs[2])};
    bad[1].status = (session_status_t)7;
    array_source_t bad_src = {bad, 3, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &bad_src, &imported, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "status"));
    for (int i = 0; i < 3; i++) session_record_free(&bad[i]);

    /* A duplicate id within one import, differing only in case. */
    session_record_t dup[3] = {record_copy(&recs[0]), record_copy(&recs[1]), record_copy(&recs[0])};
    for (char *p = dup[2].session_id; *p; p++) *p = (char)toupper((unsigned char)*p);
    array_source_t dup_src = {dup, 3, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &dup_src, &imported, err, sizeof err),
                     -EEXIST);
    assert_non_null(strstr(err, dup[2].session_id));
    assert_int_equal(store_sessions_since(fx->store, 0, &last, count_rows, &rows), 0);
    assert_int_equal(rows, 0);

    /* Unknown customer. */
    array_source_t ok_src = {recs, 10, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "nobody", array_next, &ok_src, &imported, err, sizeof err),
                     -ENOENT);

    /* The whole set. */
    ok_src.next = 0;
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &ok_src, &imported, err, sizeof err), 0);
    assert_int_equal(imported, 10);
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 10);
    collector_t got = {0};
    assert_int_equal(store_sessions_since(fx->store, 0, &last, collect, &got), 0);
    assert_int_equal(last, 10);
    assert_int_equal(got.count, 10);
    for (size_t i = 0; i < 10; i++) {
        assert_true(same_record(&got.records[i], &recs[i]));
        assert_string_equal(got.customers[i], "acme");
    }
    collector_free(&got);

    /* Importing an id the store already holds (in another case) fails, and adds nothing. */
    dup_src.next = 2;
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &dup_src, &imported, err, sizeof err),
                     -EEXIST);
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 10);
    /* ... but another customer may hold the same id. */
    assert_int_equal(store_customer_add(fx->store, "other", err, sizeof err), 0);
    dup_src.next = 2;
    assert_int_equal(store_sessions_import(fx->store, "other", array_next, &dup_src, &imported, err, sizeof err), 0);
    assert_int_equal(imported, 1);
    /* An empty import is fine and changes nothing. */
    array_source_t empty = {recs, 0, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &empty, &imported, err, sizeof err), 0);
    assert_int_equal(imported, 0);
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 11);
    for (int i = 0; i < 3; i++) session_record_free(&dup[i]);
    for (int i = 0; i < 10; i++) session_record_free(&recs[i]);
}

/* Sessions a stopped browserd left running end as worker_disconnect at the next start, with
 * their duration up to their last save; imported running sessions and ended ones stay. */
static void test_orphans_fail_at_start(void **state) {
    fixture_t *fx = *state;
    char err[512] = "", id_live[37], id_imported[37], id_done[37];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    record_id(id_live, 0x1);
    record_id(id_imported, 0x2);
    record_id(id_done, 0x3);
    session_record_t live = make_record(id_live, "zone1", SESSION_RUNNING, 1);
    session_record_t imported = make_record(id_imported, "zone1", SESSION_RUNNING, 2);
    session_record_t done = make_record(id_done, "zone1", SESSION_FINISHED, 3);
    live.timestamp_ms = time_now_ms() - 5000;
    assert_int_equal(store_session_save(fx->store, "acme", &live, "host:1234"), 0);
    assert_int_equal(store_session_put(fx->store, "acme", &imported), 0);
    assert_int_equal(store_session_save(fx->store, "acme", &done, "host:1234"), 0);
    int64_t failed = -1, last = 0;
    assert_int_equal(store_sessions_fail_orphans(fx->store, &failed), 0);
    assert_int_equal(failed, 1);
    collector_t got = {0};
    assert_int_equal(store_sessions_since(fx->store, 3, &last, collect, &got), 0);
    assert_int_equal(got.count, 1); /* only the orphan changed, with a new seq */
    const session_record_t *r = &got.records[0];
    assert_string_equal(r->session_id, id_live);
    assert_int_equal(r->status, SESSION_FAILED);
    assert_string_equal(r->error_code, "worker_disconnect");
    assert_non_null(r->error_message);
    assert_true(r->duration_ms >= 4900 && r->duration_ms <= 60000); /* up to its save, ~5 s */
    collector_free(&got);
    /* nothing left to fail a second time */
    assert_int_equal(store_sessions_fail_orphans(fx->store, &failed), 0);
    assert_int_equal(failed, 0);
    session_record_free(&live);
    session_record_free(&imported);
    session_record_free(&done);
}

static void test_change_feed(void **state) {
    fixture_t *fx = *state;
    char err[512] = "", id_a[37], id_b[37];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_customer_add(fx->store, "other", err, sizeof err), 0);
    record_id(id_a, 0xa);
    record_id(id_b, 0xb);
    session_record_t a = make_record(id_a, "zone1", SESSION_RUNNING, 1);
    session_record_t b = make_record(id_b, "zone2", SESSION_RUNNING, 2);
    int64_t seq = 0, last = 0;

    assert_int_equal(store_session_put(fx->store, "acme", &a), 0);
    assert_int_equal(store_session_put(fx->store, "other", &b), 0);
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 2);
    assert_int_equal(store_session_put(fx->store, "nobody", &a), -ENOENT);
    session_record_t invalid = record_copy(&a);
    invalid.captcha = (captcha_t)9;
    assert_int_equal(store_session_put(fx->store, "acme", &invalid), -EINVAL);
    session_record_free(&invalid);
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 2);

    /* The session ends: same id (in another case), new values, new seq. */
    session_record_t a_done = make_record(id_a, "zone1", SESSION_FAILED, 1);
    for (char *p = a_done.session_id; *p; p++) *p = (char)toupper((unsigned char)*p);
    assert_int_equal(store_session_put(fx->store, "acme", &a_done), 0);
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, 3);

    collector_t got = {0};
    assert_int_equal(store_sessions_since(fx->store, 2, &last, collect, &got), 0);
    assert_int_equal(last, 3);
    assert_int_equal(got.count, 1);
    assert_true(same_record(&got.records[0], &a_done));
    collector_free(&got);

    /* From the start: one row per session, in seq order (b before the updated a). */
    assert_int_equal(store_sessions_since(fx->store, 0, &last, collect, &got), 0);
    assert_int_equal(got.count, 2);
    assert_string_equal(got.customers[0], "other");
    assert_true(same_record(&got.records[0], &b));
    assert_string_equal(got.customers[1], "acme");
    assert_true(same_record(&got.records[1], &a_done));
    collector_free(&got);

    /* Nothing new. */
    assert_int_equal(store_sessions_since(fx->store, 3, &last, collect, &got), 0);
    assert_int_equal(last, 3);
    assert_int_equal(got.count, 0);

    /* A callback that stops: its value comes back, last_seq is the last one it took. */
    got.stop_after = 1;
    assert_int_equal(store_sessions_since(fx->store, 0, &last, collect, &got), 99);
    assert_int_equal(last, 2);
    collector_free(&got);

    sqlite3 *db = raw_open(fx->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sessions"), 2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sessions WHERE session_key = lower(session_id)"), 2);
    sqlite3_close(db);

    session_record_free(&a);
    session_record_free(&b);
    session_record_free(&a_done);
}

/* ---- threads ---- */

#define THREADS 4
#define PUTS_PER_THREAD 150

typedef struct {
    store_t *store;
    int index;
    const char *key;
    const char *password;
    int failures;
} worker_t;

static void *worker_main(void *arg) {
    worker_t *w = arg;
    for (int i = 0; i < PUTS_PER_THREAD; i++) {
        char id[37], customer[STORE_ID_MAX + 1];
        record_id(id, (uint32_t)(w->index * 100000 + i));
        session_record_t r = make_record(id, "zone1", SESSION_RUNNING, i);
        int64_t seq;
        if (store_session_put(w->store, "acme", &r) != 0) w->failures++;
        /* Half of the sessions end, which is a second change of the same row. */
        if (i % 2 == 0) {
            session_record_free(&r);
            r = make_record(id, "zone1", SESSION_FINISHED, i);
            if (store_session_put(w->store, "acme", &r) != 0) w->failures++;
        }
        session_record_free(&r);
        if (store_change_seq(w->store, &seq) != 0 || seq < i) w->failures++;
        if (store_key_authenticate(w->store, w->key, 64, customer) != 0 || strcmp(customer, "acme") != 0)
            w->failures++;
        if (store_zone_check(w->store, "acme", "zone1", w->password) != 0) w->failures++;
    }
    return NULL;
}

typedef struct {
    char (*ids)[37];
    int64_t count, cap;
} id_list_t;

static int list_ids(void *ctx, const char *customer_id, const session_record_t *rec) {
    (void)customer_id;
    id_list_t *l = ctx;
    if (l->count == l->cap) return -ENOSPC;
    memcpy(l->ids[l->count++], rec->session_id, 37);
    return 0;
}

static void test_threads(void **state) {
    fixture_t *fx = *state;
    char err[512] = "", key[65], key_id[17], password[25];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", key, key_id, err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), 0);
    pthread_t threads[THREADS];
    worker_t workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (worker_t){fx->store, t, key, password, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, worker_main, &workers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(workers[t].failures, 0);
    }
    /* Every change got its own seq: 1.5 changes per session. */
    int64_t expected_changes = THREADS * (PUTS_PER_THREAD + (PUTS_PER_THREAD + 1) / 2), seq = 0, last = 0;
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    assert_int_equal(seq, expected_changes);
    id_list_t delivered = {calloc(THREADS * PUTS_PER_THREAD, 37), 0, THREADS * PUTS_PER_THREAD};
    assert_int_equal(store_sessions_since(fx->store, 0, &last, list_ids, &delivered), 0);
    assert_int_equal(delivered.count, THREADS * PUTS_PER_THREAD);
    assert_int_equal(last, expected_changes);
    sqlite3 *db = raw_open(fx->path);
    /* Delivered in seq order, and a feed resumed from the middle gives exactly the rest. */
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT session_id, seq FROM sessions ORDER BY seq", -1, &st, NULL),
                     SQLITE_OK);
    int64_t row = 0, middle_seq = 0, prev_seq = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_string_equal((const char *)sqlite3_column_text(st, 0), delivered.ids[row]);
        assert_true(sqlite3_column_int64(st, 1) > prev_seq);
        prev_seq = sqlite3_column_int64(st, 1);
        if (++row == THREADS * PUTS_PER_THREAD / 2) middle_seq = prev_seq;
    }
    sqlite3_finalize(st);
    id_list_t rest = {calloc(THREADS * PUTS_PER_THREAD, 37), 0, THREADS * PUTS_PER_THREAD};
    assert_int_equal(store_sessions_since(fx->store, middle_seq, &last, list_ids, &rest), 0);
    assert_int_equal(rest.count, THREADS * PUTS_PER_THREAD / 2);
    assert_memory_equal(rest.ids, delivered.ids + THREADS * PUTS_PER_THREAD / 2, (size_t)rest.count * 37);
    free(rest.ids);
    free(delivered.ids);
    /* Unique and exactly the latest seqs: the feed skips no committed change. */
    assert_int_equal(raw_int(db, "SELECT count(DISTINCT seq) FROM sessions"), THREADS * PUTS_PER_THREAD);
    assert_int_equal(raw_int(db, "SELECT max(seq) FROM sessions"), expected_changes);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sessions WHERE status = 1"),
                     THREADS * ((PUTS_PER_THREAD + 1) / 2));
    sqlite3_close(db);
    /* One connection per thread that used the store (the 4 workers and this one). */
    int conns = 0;
    for (store_conn_t *c = ((sqlite_db_t *)fx->store->db)->conns; c; c = c->next) conns++;
    assert_int_equal(conns, THREADS + 1);
}

/* ---- query plans ---- */

static void test_query_plans(void **state) {
    fixture_t *fx = *state;
    sqlite3 *db = raw_open(fx->path);
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
static void test_statements_prepare(void **state) {
    fixture_t *fx = *state;
    store_conn_t *c = store_sqlite_conn(fx->store->db, NULL, 0);
    assert_non_null(c);
    for (int id = 0; id < STMT_COUNT; id++) assert_non_null(store_sqlite_stmt(c, (stmt_id_t)id, NULL, 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_from_empty_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphans_fail_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statements_prepare, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
