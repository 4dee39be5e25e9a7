/* Unit tests of the store's behaviour through store.h only, one behaviour per test, each on a
 * new, empty store (store_fixture.c): what every backend must do alike. What only the SQLite
 * backend does (its files, schema, query plans) is in test_sqlite_store.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "store_fixture.h"

#define TEST(name) cmocka_unit_test_setup_teardown(name, store_fixture_setup, store_fixture_teardown)

static void add_customer(store_fixture_t *fx, const char *customer_id) {
    char err[512] = "";
    assert_int_equal(store_customer_add(fx->store, customer_id, err, sizeof err), 0);
}

static int64_t change_seq(store_fixture_t *fx) {
    int64_t seq = -1;
    assert_int_equal(store_change_seq(fx->store, &seq), 0);
    return seq;
}

static int64_t feed_rows(store_fixture_t *fx) {
    int64_t rows = 0, last = -1;
    assert_int_equal(store_sessions_since(fx->store, 0, &last, count_rows, &rows), 0);
    return rows;
}

/* ---- open ---- */

static void test_new_store_is_empty(void **state) {
    store_fixture_t *fx = *state;
    int64_t customers = -1;
    assert_int_equal(change_seq(fx), 0);
    assert_int_equal(store_customer_count(fx->store, &customers), 0);
    assert_int_equal(customers, 0);
    assert_int_equal(feed_rows(fx), 0);
}

static void test_reopen_keeps_data(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    store_fixture_reopen(fx);
    int64_t customers = -1;
    assert_int_equal(store_customer_exists(fx->store, "acme"), 0);
    assert_int_equal(store_customer_count(fx->store, &customers), 0);
    assert_int_equal(customers, 1);
}

static void test_open_refuses_empty_target(void **state) {
    (void)state;
    static char sentinel;
    char err[512] = "";
    store_t *s = (store_t *)&sentinel;
    assert_int_equal(store_open("", &s, err, sizeof err), -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "no database given"));
}

/* Every form of libpq URI is PostgreSQL's (never taken for a file name), and a server that
 * cannot be reached is named in the error without the password. */
static void test_open_of_unreachable_postgres_names_it_without_password(void **state) {
    (void)state;
    const char *uris[][2] = {
        {"postgresql://browserd:s3cretpw@127.0.0.1:1/x?connect_timeout=2", "postgresql://browserd:***@127.0.0.1:1/x"},
        {"postgres://u:s3cretpw@127.0.0.1:1/x", "postgres://u:***@127.0.0.1:1/x"},
        {"postgresql://127.0.0.1:1/x?password=s3cretpw&user=u", "postgresql://127.0.0.1:1/x?password=***&user=u"},
        {"postgresql://[::1]:1/browserd?user=u&password=s3cretpw", "postgresql://[::1]:1/browserd?user=u&password=***"},
    };
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        char err[512] = "";
        store_t *s = NULL;
        assert_int_equal(store_open(uris[i][0], &s, err, sizeof err), -EIO);
        assert_null(s);
        assert_non_null(strstr(err, uris[i][1]));
        assert_null(strstr(err, "s3cretpw"));
        assert_int_equal(access("x", F_OK), -1);
    }
}

static void test_uri_redact_hides_only_passwords(void **state) {
    (void)state;
    char out[256];
    assert_string_equal(store_uri_redact("postgresql://a:b@h/db", out, sizeof out), "postgresql://a:***@h/db");
    assert_string_equal(store_uri_redact("postgresql://a@h:5/db", out, sizeof out), "postgresql://a@h:5/db");
    assert_string_equal(store_uri_redact("postgresql://a:p@ss@h1,h2/db", out, sizeof out), "postgresql://a:***@h1,h2/db");
    assert_string_equal(store_uri_redact("postgresql:///db?host=/run/pg&password=x", out, sizeof out),
                        "postgresql:///db?host=/run/pg&password=***");
    assert_string_equal(store_uri_redact("/var/lib/browserd/a:b@c.db", out, sizeof out), "/var/lib/browserd/a:b@c.db");
    assert_string_equal(store_uri_redact("postgresql://a:verylongpassword@h/db", out, 20), "postgresql://a:***@");
    assert_true(store_target_is_postgres("postgres://h/db"));
    assert_true(store_target_is_postgres("postgresql://"));
    assert_false(store_target_is_postgres("PostgreSQL://h/db"));
    assert_false(store_target_is_postgres("./browserd.db"));
}

/* ---- customers ---- */

static void test_customer_add_refuses_duplicate(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "";
    add_customer(fx, "acme_1");
    assert_int_equal(store_customer_add(fx->store, "acme_1", err, sizeof err), -EEXIST);
    assert_string_equal(err, "customer acme_1 already exists");
}

static void test_customer_add_refuses_invalid_ids(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "";
    const char *invalid[] = {"", "Acme", "a-b", "a b", "ünï", "abcdefghijklmnopqrstuvwxyz0123456", NULL};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        assert_int_equal(store_customer_add(fx->store, invalid[i], err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "invalid customer id"));
        assert_false(store_valid_customer_id(invalid[i]));
    }
}

static void test_customer_id_may_have_32_characters(void **state) {
    store_fixture_t *fx = *state;
    assert_true(store_valid_customer_id("abcdefghijklmnopqrstuvwxyz012345"));
    add_customer(fx, "abcdefghijklmnopqrstuvwxyz012345");
    assert_int_equal(store_customer_exists(fx->store, "abcdefghijklmnopqrstuvwxyz012345"), 0);
}

static void test_customer_exists_only_when_added(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme_1");
    assert_int_equal(store_customer_exists(fx->store, "acme_1"), 0);
    assert_int_equal(store_customer_exists(fx->store, "acme_2"), -ENOENT);
    assert_int_equal(store_customer_exists(fx->store, "Not Valid"), -ENOENT);
}

static void test_customer_count_counts_only_added_customers(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "";
    add_customer(fx, "acme_1");
    assert_int_equal(store_customer_add(fx->store, "acme_1", err, sizeof err), -EEXIST);
    assert_int_equal(store_customer_add(fx->store, "Acme", err, sizeof err), -EINVAL);
    add_customer(fx, "abcdefghijklmnopqrstuvwxyz012345");
    int64_t count = 0;
    assert_int_equal(store_customer_count(fx->store, &count), 0);
    assert_int_equal(count, 2);
}

static void test_zone_names_are_a_z0_9_up_to_64(void **state) {
    (void)state;
    assert_true(store_valid_zone_name("a_zone_9"));
    assert_true(store_valid_zone_name("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01"));
    assert_false(store_valid_zone_name("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz012"));
    assert_false(store_valid_zone_name("a-zone"));
    assert_false(store_valid_zone_name("Zone"));
    assert_false(store_valid_zone_name(""));
    assert_false(store_valid_zone_name(NULL));
}

/* ---- API keys ---- */

typedef struct {
    char key1[STORE_API_KEY_LEN + 1], key2[STORE_API_KEY_LEN + 1];
    char id1[STORE_KEY_ID_LEN + 1], id2[STORE_KEY_ID_LEN + 1];
    int64_t before_ms;
} two_keys_t;

/* Customers "acme" (two keys) and "other" (none). */
static two_keys_t add_two_keys(store_fixture_t *fx) {
    two_keys_t k;
    char err[512] = "";
    add_customer(fx, "acme");
    add_customer(fx, "other");
    k.before_ms = time_now_ms();
    assert_int_equal(store_key_add(fx->store, "acme", k.key1, k.id1, err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", k.key2, k.id2, err, sizeof err), 0);
    return k;
}

static bool is_lower_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return s[n] == '\0';
}

static void test_key_add_refuses_unknown_customer(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", key[STORE_API_KEY_LEN + 1], id[STORE_KEY_ID_LEN + 1];
    assert_int_equal(store_key_add(fx->store, "nobody", key, id, err, sizeof err), -ENOENT);
    assert_string_equal(err, "unknown customer nobody");
}

static void test_key_add_refuses_invalid_customer_id(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", key[STORE_API_KEY_LEN + 1], id[STORE_KEY_ID_LEN + 1];
    assert_int_equal(store_key_add(fx->store, "BAD", key, id, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "invalid customer id"));
}

static void test_key_add_draws_distinct_hex_keys_and_ids(void **state) {
    two_keys_t k = add_two_keys(*state);
    assert_true(is_lower_hex(k.key1, 64));
    assert_true(is_lower_hex(k.key2, 64));
    assert_string_not_equal(k.key1, k.key2);
    assert_memory_equal(k.id1, "key_", 4);
    assert_true(is_lower_hex(k.id1 + 4, 12));
    assert_true(is_lower_hex(k.id2 + 4, 12));
    assert_string_not_equal(k.id1, k.id2);
}

static void test_key_authenticate_gives_the_owner(void **state) {
    store_fixture_t *fx = *state;
    two_keys_t k = add_two_keys(fx);
    char customer[STORE_ID_MAX + 1] = "";
    assert_int_equal(store_key_authenticate(fx->store, k.key1, 64, customer), 0);
    assert_string_equal(customer, "acme");
    memset(customer, 0, sizeof customer);
    assert_int_equal(store_key_authenticate(fx->store, k.key2, 64, customer), 0);
    assert_string_equal(customer, "acme");
}

static void test_key_authenticate_refuses_unknown_truncated_and_empty_keys(void **state) {
    store_fixture_t *fx = *state;
    two_keys_t k = add_two_keys(fx);
    char customer[STORE_ID_MAX + 1], wrong[STORE_API_KEY_LEN + 1];
    memcpy(wrong, k.key1, sizeof wrong);
    wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
    assert_int_equal(store_key_authenticate(fx->store, wrong, 64, customer), -ENOENT);
    assert_int_equal(store_key_authenticate(fx->store, k.key1, 63, customer), -ENOENT);
    assert_int_equal(store_key_authenticate(fx->store, "", 0, customer), -ENOENT);
    assert_int_equal(store_key_authenticate(fx->store, NULL, 64, customer), -ENOENT);
}

static void test_key_list_is_oldest_first(void **state) {
    store_fixture_t *fx = *state;
    two_keys_t k = add_two_keys(fx);
    store_key_info_t *keys = NULL;
    size_t count = 0;
    assert_int_equal(store_key_list(fx->store, "acme", &keys, &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(keys[0].key_id, k.id1);
    assert_string_equal(keys[1].key_id, k.id2);
    assert_false(keys[0].revoked);
    assert_false(keys[1].revoked);
    assert_true(keys[0].created_ms >= k.before_ms && keys[0].created_ms <= time_now_ms());
    free(keys);
}

static void test_key_list_of_customer_without_keys_is_empty(void **state) {
    store_fixture_t *fx = *state;
    add_two_keys(fx);
    store_key_info_t *keys = NULL;
    size_t count = 1;
    assert_int_equal(store_key_list(fx->store, "other", &keys, &count), 0);
    assert_int_equal(count, 0);
    free(keys);
}

static void test_key_list_refuses_unknown_customer(void **state) {
    store_fixture_t *fx = *state;
    store_key_info_t *keys = NULL;
    size_t count = 1;
    assert_int_equal(store_key_list(fx->store, "nobody", &keys, &count), -ENOENT);
    assert_null(keys);
    assert_int_equal(count, 0);
    assert_int_equal(store_key_list(fx->store, "No Body", &keys, &count), -EINVAL);
}

static void test_key_revoke_stops_only_that_key(void **state) {
    store_fixture_t *fx = *state;
    two_keys_t k = add_two_keys(fx);
    char customer[STORE_ID_MAX + 1];
    assert_int_equal(store_key_revoke(fx->store, k.id1), 0);
    assert_int_equal(store_key_authenticate(fx->store, k.key1, 64, customer), -ENOENT);
    assert_int_equal(store_key_authenticate(fx->store, k.key2, 64, customer), 0);
}

static void test_key_revoke_is_idempotent(void **state) {
    store_fixture_t *fx = *state;
    two_keys_t k = add_two_keys(fx);
    char customer[STORE_ID_MAX + 1];
    assert_int_equal(store_key_revoke(fx->store, k.id1), 0);
    assert_int_equal(store_key_revoke(fx->store, k.id1), 0);
    assert_int_equal(store_key_authenticate(fx->store, k.key1, 64, customer), -ENOENT);
}

static void test_key_list_shows_revoked_keys(void **state) {
    store_fixture_t *fx = *state;
    two_keys_t k = add_two_keys(fx);
    assert_int_equal(store_key_revoke(fx->store, k.id1), 0);
    store_key_info_t *keys = NULL;
    size_t count = 0;
    assert_int_equal(store_key_list(fx->store, "acme", &keys, &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(keys[0].key_id, k.id1);
    assert_true(keys[0].revoked);
    assert_false(keys[1].revoked);
    free(keys);
}

static void test_key_revoke_refuses_unknown_key(void **state) {
    store_fixture_t *fx = *state;
    add_two_keys(fx);
    assert_int_equal(store_key_revoke(fx->store, "key_000000000000"), -ENOENT);
}

static void test_key_revoke_refuses_malformed_key_id(void **state) {
    store_fixture_t *fx = *state;
    assert_int_equal(store_key_revoke(fx->store, "key_zz"), -EINVAL);
    assert_int_equal(store_key_revoke(fx->store, "key_00000000000g"), -EINVAL);
    assert_int_equal(store_key_revoke(fx->store, NULL), -EINVAL);
}

/* ---- zones ---- */

typedef struct {
    char acme[STORE_PASSWORD_LEN + 1];  /* acme's zone1 */
    char other[STORE_PASSWORD_LEN + 1]; /* other's zone1: same name, another zone */
} zone_passwords_t;

static zone_passwords_t add_two_zones(store_fixture_t *fx) {
    zone_passwords_t p;
    char err[512] = "";
    add_customer(fx, "acme");
    add_customer(fx, "other");
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", p.acme, err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "other", "zone1", p.other, err, sizeof err), 0);
    return p;
}

static void test_zone_add_refuses_unknown_customer(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", password[STORE_PASSWORD_LEN + 1];
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), -ENOENT);
    assert_string_equal(err, "unknown customer acme");
}

static void test_zone_add_refuses_invalid_names(void **state) {
    store_fixture_t *fx = *state;
    char err[512] = "", password[STORE_PASSWORD_LEN + 1];
    add_customer(fx, "acme");
    assert_int_equal(store_zone_add(fx->store, "acme", "Zone-1", password, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "invalid zone name"));
    assert_int_equal(store_zone_add(fx->store, "Acme", "zone1", password, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "invalid customer id"));
}

static void test_zone_add_draws_24_character_password(void **state) {
    zone_passwords_t p = add_two_zones(*state);
    assert_int_equal(strlen(p.acme), STORE_PASSWORD_LEN);
    for (size_t i = 0; i < STORE_PASSWORD_LEN; i++)
        assert_true((p.acme[i] >= 'a' && p.acme[i] <= 'z') || (p.acme[i] >= '0' && p.acme[i] <= '9'));
}

static void test_zone_add_refuses_duplicate(void **state) {
    store_fixture_t *fx = *state;
    add_two_zones(fx);
    char err[512] = "", password[STORE_PASSWORD_LEN + 1];
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), -EEXIST);
    assert_string_equal(err, "zone zone1 already exists for customer acme");
}

/* The same zone name under another customer is another zone, with another password. */
static void test_zone_names_are_per_customer(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    assert_string_not_equal(p.acme, p.other);
    assert_int_equal(store_zone_check(fx->store, "other", "zone1", p.other), 0);
    assert_int_equal(store_zone_check(fx->store, "other", "zone1", p.acme), -EACCES);
}

static void test_zone_check_accepts_its_password(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", p.acme), 0);
}

static void test_zone_check_refuses_other_passwords(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    char wrong[STORE_PASSWORD_LEN + 1];
    memcpy(wrong, p.acme, sizeof wrong);
    wrong[23] = wrong[23] == 'a' ? 'b' : 'a';
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", wrong), -EACCES);
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", ""), -EACCES);
}

static void test_zone_check_refuses_unknown_zone_or_customer(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    assert_int_equal(store_zone_check(fx->store, "acme", "zone2", p.acme), -ENOENT);
    assert_int_equal(store_zone_check(fx->store, "nobody", "zone1", p.acme), -ENOENT);
    assert_int_equal(store_zone_check(fx->store, NULL, "zone1", p.acme), -ENOENT);
    assert_int_equal(store_zone_check(fx->store, "acme", "zone1", NULL), -ENOENT);
}

static void test_zone_authorize_gives_empty_upstream_when_none(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    char upstream[256] = "stale";
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", p.acme, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "");
}

static void test_zone_authorize_gives_the_upstream_set(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    char upstream[256] = "";
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", "http://u:p@127.0.0.1:3128"), 0);
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", p.acme, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "http://u:p@127.0.0.1:3128");
}

/* Nothing of the zone leaks to a wrong password. */
static void test_zone_authorize_wrong_password_gives_no_upstream(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    char upstream[256] = "stale";
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", "http://u:p@127.0.0.1:3128"), 0);
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", p.other, upstream, sizeof upstream), -EACCES);
    assert_string_equal(upstream, "");
}

static void test_zone_upstream_is_per_customer(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    char upstream[256] = "stale";
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", "http://u:p@127.0.0.1:3128"), 0);
    assert_int_equal(store_zone_authorize(fx->store, "other", "zone1", p.other, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "");
}

static void test_zone_set_upstream_null_or_empty_clears(void **state) {
    store_fixture_t *fx = *state;
    zone_passwords_t p = add_two_zones(fx);
    char upstream[256] = "";
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", "http://h:1"), 0);
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", NULL), 0);
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", p.acme, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "");
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", "http://h:1"), 0);
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "zone1", ""), 0);
    assert_int_equal(store_zone_authorize(fx->store, "acme", "zone1", p.acme, upstream, sizeof upstream), 0);
    assert_string_equal(upstream, "");
}

static void test_zone_set_upstream_refuses_unknown_zone(void **state) {
    store_fixture_t *fx = *state;
    add_two_zones(fx);
    assert_int_equal(store_zone_set_upstream(fx->store, "acme", "nozone", "http://h:1"), -ENOENT);
    assert_int_equal(store_zone_set_upstream(fx->store, "nobody", "zone1", "http://h:1"), -ENOENT);
}

/* ---- imports ---- */

#define IMPORT_RECORDS 10

/* Customer "acme" and IMPORT_RECORDS valid records (running, finished and failed). */
static void import_records(store_fixture_t *fx, session_record_t recs[IMPORT_RECORDS]) {
    add_customer(fx, "acme");
    for (uint32_t i = 0; i < IMPORT_RECORDS; i++) {
        char id[37];
        record_id(id, i + 1);
        recs[i] = make_record(id, "zone1", (session_status_t)(i % 3), i);
    }
}

static void free_records(session_record_t *recs, size_t n) {
    for (size_t i = 0; i < n; i++) session_record_free(&recs[i]);
}

/* Imports all of `recs` for acme, successfully. */
static void import_all(store_fixture_t *fx, const session_record_t *recs) {
    char err[512] = "";
    int64_t imported = -1;
    array_source_t src = {recs, IMPORT_RECORDS, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &src, &imported, err, sizeof err), 0);
    assert_int_equal(imported, IMPORT_RECORDS);
}

static void test_import_stores_all_records_with_consecutive_seqs(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    import_all(fx, recs);
    assert_int_equal(change_seq(fx), IMPORT_RECORDS);
    collector_t got = {0};
    int64_t last = -1;
    assert_int_equal(store_sessions_since(fx->store, 0, &last, collect, &got), 0);
    assert_int_equal(last, IMPORT_RECORDS);
    assert_int_equal(got.count, IMPORT_RECORDS);
    for (size_t i = 0; i < IMPORT_RECORDS; i++) {
        assert_true(same_record(&got.records[i], &recs[i]));
        assert_string_equal(got.customers[i], "acme");
    }
    collector_free(&got);
    free_records(recs, IMPORT_RECORDS);
}

/* The source fails at the 6th record: nothing stays, and its reason is the error. */
static void test_import_stores_nothing_when_source_fails(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    char err[512] = "";
    int64_t imported = -1;
    array_source_t src = {recs, IMPORT_RECORDS, 0, 5};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &src, &imported, err, sizeof err), -EINVAL);
    assert_string_equal(err, "line 6: bad record");
    assert_int_equal(imported, 0);
    assert_int_equal(change_seq(fx), 0);
    assert_int_equal(feed_rows(fx), 0);
    free_records(recs, IMPORT_RECORDS);
}

/* A record the store itself refuses (status out of range), mid-way. */
static void test_import_refuses_invalid_record(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    recs[1].status = (session_status_t)7;
    char err[512] = "";
    int64_t imported = -1;
    array_source_t src = {recs, 3, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &src, &imported, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "status"));
    assert_int_equal(imported, 0);
    assert_int_equal(feed_rows(fx), 0);
    free_records(recs, IMPORT_RECORDS);
}

/* A duplicate id within one import, differing only in case: the error names it. */
static void test_import_refuses_duplicate_id_within_import(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    session_record_t dup[3] = {record_copy(&recs[0]), record_copy(&recs[1]), record_copy(&recs[0])};
    uppercase_id(&dup[2]);
    char err[512] = "", expect[128];
    int64_t imported = -1;
    array_source_t src = {dup, 3, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &src, &imported, err, sizeof err), -EEXIST);
    snprintf(expect, sizeof expect, "session_id %s already exists", dup[2].session_id);
    assert_string_equal(err, expect);
    assert_int_equal(imported, 0);
    assert_int_equal(change_seq(fx), 0);
    assert_int_equal(feed_rows(fx), 0);
    free_records(dup, 3);
    free_records(recs, IMPORT_RECORDS);
}

/* Importing an id the store already holds (in another case) fails, and adds nothing. */
static void test_import_refuses_id_already_stored(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    import_all(fx, recs);
    session_record_t again = record_copy(&recs[0]);
    uppercase_id(&again);
    char err[512] = "";
    int64_t imported = -1;
    array_source_t src = {&again, 1, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &src, &imported, err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, again.session_id));
    assert_int_equal(change_seq(fx), IMPORT_RECORDS);
    session_record_free(&again);
    free_records(recs, IMPORT_RECORDS);
}

/* The record refused is named by its index, whichever record the backend had pulled last
 * (PostgreSQL pulls them all first): a duplicate within the import, then one of a stored id. */
static void test_import_names_the_refused_record_by_its_index(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    session_record_t mixed[IMPORT_RECORDS];
    memcpy(mixed, recs, sizeof mixed);
    mixed[6] = recs[2]; /* 6 repeats 2; 8 repeats 3, but 6 comes first */
    mixed[8] = recs[3];
    char err[512] = "";
    int64_t imported = -1, refused = -2;
    array_source_t src = {mixed, IMPORT_RECORDS, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import_at(fx->store, "acme", array_next, &src, &imported, &refused, err,
                                              sizeof err),
                     -EEXIST);
    assert_int_equal(refused, 6);
    assert_int_equal(imported, 0);
    char want[128];
    snprintf(want, sizeof want, "session_id %s already exists", recs[2].session_id);
    assert_string_equal(err, want);
    assert_int_equal(change_seq(fx), 0);
    import_all(fx, recs); /* then the same ids again, after a new one */
    char id[37];
    record_id(id, 0xfff);
    session_record_t again[3] = {make_record(id, "zone1", SESSION_FINISHED, 1), recs[4], recs[5]};
    array_source_t src2 = {again, 3, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import_at(fx->store, "acme", array_next, &src2, &imported, &refused, err,
                                              sizeof err),
                     -EEXIST);
    assert_int_equal(refused, 1);
    assert_non_null(strstr(err, recs[4].session_id));
    assert_int_equal(change_seq(fx), IMPORT_RECORDS);
    session_record_free(&again[0]);
    free_records(recs, IMPORT_RECORDS);
}

static void test_import_accepts_id_held_by_another_customer(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    import_all(fx, recs);
    add_customer(fx, "other");
    session_record_t again = record_copy(&recs[0]);
    uppercase_id(&again);
    char err[512] = "";
    int64_t imported = -1;
    array_source_t src = {&again, 1, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "other", array_next, &src, &imported, err, sizeof err), 0);
    assert_int_equal(imported, 1);
    assert_int_equal(change_seq(fx), IMPORT_RECORDS + 1);
    session_record_free(&again);
    free_records(recs, IMPORT_RECORDS);
}

static void test_import_refuses_unknown_customer(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    char err[512] = "";
    int64_t imported = -1;
    array_source_t src = {recs, IMPORT_RECORDS, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "nobody", array_next, &src, &imported, err, sizeof err),
                     -ENOENT);
    assert_string_equal(err, "unknown customer nobody");
    assert_int_equal(src.next, 0); /* refused before any record was read */
    assert_int_equal(store_sessions_import(fx->store, "No Body", array_next, &src, &imported, err, sizeof err),
                     -EINVAL);
    free_records(recs, IMPORT_RECORDS);
}

/* An empty import is fine and changes nothing. */
static void test_import_of_no_records_changes_nothing(void **state) {
    store_fixture_t *fx = *state;
    session_record_t recs[IMPORT_RECORDS];
    import_records(fx, recs);
    import_all(fx, recs);
    char err[512] = "";
    int64_t imported = -1;
    array_source_t empty = {recs, 0, 0, SIZE_MAX};
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &empty, &imported, err, sizeof err), 0);
    assert_int_equal(imported, 0);
    assert_int_equal(change_seq(fx), IMPORT_RECORDS);
    free_records(recs, IMPORT_RECORDS);
}

/* ---- the change feed ---- */

typedef struct {
    char id_a[37], id_b[37];
    session_record_t a, b; /* a for acme (put first), b for other */
} two_sessions_t;

static void put_two_sessions(store_fixture_t *fx, two_sessions_t *t) {
    add_customer(fx, "acme");
    add_customer(fx, "other");
    record_id(t->id_a, 0xa);
    record_id(t->id_b, 0xb);
    t->a = make_record(t->id_a, "zone1", SESSION_RUNNING, 1);
    t->b = make_record(t->id_b, "zone2", SESSION_RUNNING, 2);
    assert_int_equal(store_session_put(fx->store, "acme", &t->a), 0);
    assert_int_equal(store_session_put(fx->store, "other", &t->b), 0);
}

static void free_two_sessions(two_sessions_t *t) {
    session_record_free(&t->a);
    session_record_free(&t->b);
}

/* The session a ends: same id in another case, new values, a new seq (3). */
static session_record_t end_session_a(store_fixture_t *fx, const two_sessions_t *t) {
    session_record_t a_done = make_record(t->id_a, "zone1", SESSION_FAILED, 1);
    uppercase_id(&a_done);
    assert_int_equal(store_session_put(fx->store, "acme", &a_done), 0);
    return a_done;
}

static void test_session_put_takes_the_next_seq(void **state) {
    store_fixture_t *fx = *state;
    two_sessions_t t;
    put_two_sessions(fx, &t);
    assert_int_equal(change_seq(fx), 2);
    free_two_sessions(&t);
}

static void test_session_put_refuses_unknown_customer(void **state) {
    store_fixture_t *fx = *state;
    two_sessions_t t;
    put_two_sessions(fx, &t);
    assert_int_equal(store_session_put(fx->store, "nobody", &t.a), -ENOENT);
    assert_int_equal(store_session_put(fx->store, "No Body", &t.a), -EINVAL);
    assert_int_equal(change_seq(fx), 2);
    free_two_sessions(&t);
}

static void test_session_put_refuses_invalid_record(void **state) {
    store_fixture_t *fx = *state;
    two_sessions_t t;
    put_two_sessions(fx, &t);
    session_record_t invalid = record_copy(&t.a);
    invalid.captcha = (captcha_t)9;
    assert_int_equal(store_session_put(fx->store, "acme", &invalid), -EINVAL);
    session_record_free(&invalid);
    assert_int_equal(change_seq(fx), 2);
    free_two_sessions(&t);
}

static void test_session_put_of_same_id_in_other_case_replaces_it(void **state) {
    store_fixture_t *fx = *state;
    two_sessions_t t;
    put_two_sessions(fx, &t);
    session_record_t a_done = end_session_a(fx, &t);
    assert_int_equal(change_seq(fx), 3);
    collector_t got = {0};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(fx->store, 2, &last, collect, &got), 0);
    assert_int_equal(last, 3);
    assert_int_equal(got.count, 1);
    assert_true(same_record(&got.records[0], &a_done));
    collector_free(&got);
    session_record_free(&a_done);
    free_two_sessions(&t);
}

/* From the start: one row per session, its latest version, in seq order (b before the
 * updated a). */
static void test_sessions_since_gives_latest_versions_in_seq_order(void **state) {
    store_fixture_t *fx = *state;
    two_sessions_t t;
    put_two_sessions(fx, &t);
    session_record_t a_done = end_session_a(fx, &t);
    collector_t got = {0};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(fx->store, 0, &last, collect, &got), 0);
    assert_int_equal(last, 3);
    assert_int_equal(got.count, 2);
    assert_string_equal(got.customers[0], "other");
    assert_true(same_record(&got.records[0], &t.b));
    assert_string_equal(got.customers[1], "acme");
    assert_true(same_record(&got.records[1], &a_done));
    collector_free(&got);
    session_record_free(&a_done);
    free_two_sessions(&t);
}

static void test_sessions_since_the_last_seq_gives_nothing(void **state) {
    store_fixture_t *fx = *state;
    two_sessions_t t;
    put_two_sessions(fx, &t);
    collector_t got = {0};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(fx->store, 2, &last, collect, &got), 0);
    assert_int_equal(last, 2);
    assert_int_equal(got.count, 0);
    free_two_sessions(&t);
}

/* A callback that stops: its value comes back, last_seq is the last one it took. */
static void test_sessions_since_stops_with_the_callback(void **state) {
    store_fixture_t *fx = *state;
    two_sessions_t t;
    put_two_sessions(fx, &t);
    session_record_t a_done = end_session_a(fx, &t);
    collector_t got = {.stop_after = 1};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(fx->store, 0, &last, collect, &got), 99);
    assert_int_equal(last, 2);
    assert_int_equal(got.count, 1);
    collector_free(&got);
    session_record_free(&a_done);
    free_two_sessions(&t);
}

/* ---- orphans ---- */

typedef struct {
    char id_live[37], id_imported[37], id_done[37];
} three_ids_t;

/* A running session saved by a browserd process (started 5 s ago), a running one without a
 * process (imported) and an ended one of that process: seqs 1 to 3. */
static three_ids_t save_three_sessions(store_fixture_t *fx) {
    three_ids_t ids;
    add_customer(fx, "acme");
    record_id(ids.id_live, 0x1);
    record_id(ids.id_imported, 0x2);
    record_id(ids.id_done, 0x3);
    session_record_t live = make_record(ids.id_live, "zone1", SESSION_RUNNING, 1);
    session_record_t imported = make_record(ids.id_imported, "zone1", SESSION_RUNNING, 2);
    session_record_t done = make_record(ids.id_done, "zone1", SESSION_FINISHED, 3);
    live.timestamp_ms = time_now_ms() - 5000;
    assert_int_equal(store_session_save(fx->store, "acme", &live, "host:1234"), 0);
    assert_int_equal(store_session_put(fx->store, "acme", &imported), 0);
    assert_int_equal(store_session_save(fx->store, "acme", &done, "host:1234"), 0);
    session_record_free(&live);
    session_record_free(&imported);
    session_record_free(&done);
    return ids;
}

/* Only the session a stopped process left running changes, with a new seq; imported
 * running sessions and ended ones stay. */
static void test_fail_orphans_fails_only_running_sessions_of_a_process(void **state) {
    store_fixture_t *fx = *state;
    three_ids_t ids = save_three_sessions(fx);
    int64_t failed = -1, last = 0;
    assert_int_equal(store_sessions_fail_orphans(fx->store, "this-node", &failed), 0);
    assert_int_equal(failed, 1);
    assert_int_equal(change_seq(fx), 4);
    collector_t got = {0};
    assert_int_equal(store_sessions_since(fx->store, 3, &last, collect, &got), 0);
    assert_int_equal(got.count, 1);
    assert_string_equal(got.records[0].session_id, ids.id_live);
    collector_free(&got);
}

/* It ends as worker_disconnect, its duration up to its last save (about 5 s). */
static void test_fail_orphans_ends_them_as_worker_disconnect(void **state) {
    store_fixture_t *fx = *state;
    save_three_sessions(fx);
    int64_t failed = -1, last = 0;
    assert_int_equal(store_sessions_fail_orphans(fx->store, "this-node", &failed), 0);
    collector_t got = {0};
    assert_int_equal(store_sessions_since(fx->store, 3, &last, collect, &got), 0);
    assert_int_equal(got.count, 1);
    const session_record_t *r = &got.records[0];
    assert_int_equal(r->status, SESSION_FAILED);
    assert_string_equal(r->error_code, "worker_disconnect");
    assert_string_equal(r->error_message,
                        "the browserd process that ran the session stopped before the session ended");
    assert_true(r->duration_ms >= 4900 && r->duration_ms <= 60000);
    collector_free(&got);
}

static void test_fail_orphans_twice_fails_nothing_more(void **state) {
    store_fixture_t *fx = *state;
    save_three_sessions(fx);
    int64_t failed = -1;
    assert_int_equal(store_sessions_fail_orphans(fx->store, "this-node", &failed), 0);
    assert_int_equal(store_sessions_fail_orphans(fx->store, "this-node", &failed), 0);
    assert_int_equal(failed, 0);
    assert_int_equal(change_seq(fx), 4);
}

/* ---- batched saves ---- */

/* Three records of acme (ids 1..3, status running). */
static void batch_records(session_record_t recs[3]) {
    for (uint32_t i = 0; i < 3; i++) {
        char id[37];
        record_id(id, 0x100 + i);
        recs[i] = make_record(id, "zone1", SESSION_RUNNING, i);
    }
}

static void test_batch_save_takes_seqs_in_array_order(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    add_customer(fx, "other");
    session_record_t recs[3];
    batch_records(recs);
    store_session_write_t items[3] = {{"acme", &recs[2]}, {"other", &recs[0]}, {"acme", &recs[1]}};
    assert_int_equal(store_sessions_save(fx->store, items, 3, "node-a"), 0);
    assert_int_equal(change_seq(fx), 3);
    collector_t got = {0};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(fx->store, 0, &last, collect, &got), 0);
    assert_int_equal(got.count, 3);
    assert_int_equal(last, 3);
    assert_true(same_record(&got.records[0], &recs[2]));
    assert_string_equal(got.customers[1], "other");
    assert_true(same_record(&got.records[1], &recs[0]));
    assert_true(same_record(&got.records[2], &recs[1]));
    collector_free(&got);
    free_records(recs, 3);
}

static void test_batch_save_writes_nothing_with_an_unknown_customer(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    session_record_t recs[3];
    batch_records(recs);
    store_session_write_t items[3] = {{"acme", &recs[0]}, {"nobody", &recs[1]}, {"acme", &recs[2]}};
    assert_int_equal(store_sessions_save(fx->store, items, 3, "node-a"), -ENOENT);
    assert_int_equal(change_seq(fx), 0);
    assert_int_equal(feed_rows(fx), 0);
    free_records(recs, 3);
}

static void test_batch_save_writes_nothing_with_an_invalid_record(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    session_record_t recs[3];
    batch_records(recs);
    recs[2].navigations = -1;
    store_session_write_t items[3] = {{"acme", &recs[0]}, {"acme", &recs[1]}, {"acme", &recs[2]}};
    assert_int_equal(store_sessions_save(fx->store, items, 3, NULL), -EINVAL);
    assert_int_equal(store_sessions_save(fx->store, items, 0, NULL), 0);
    assert_int_equal(feed_rows(fx), 0);
    free_records(recs, 3);
}

/* ---- nodes ---- */

#define LEASE_MS 60000

static int register_node(store_fixture_t *fx, const char *node, const char *host, int pid, int64_t lease_ms,
                         bool take_over, char holder[STORE_NODE_ID_MAX + 1], int *holder_pid) {
    char err[512] = "";
    return store_node_register(fx->store, node, host, pid, lease_ms, take_over, holder, holder_pid, err, sizeof err);
}

static void test_node_register_refuses_a_live_holder_and_names_it(void **state) {
    store_fixture_t *fx = *state;
    char holder[STORE_NODE_ID_MAX + 1] = "", err[512] = "";
    int holder_pid = 0;
    assert_int_equal(register_node(fx, "n1", "host-a", 100, LEASE_MS, false, holder, &holder_pid), 0);
    assert_int_equal(store_node_register(fx->store, "n1", "host-b", 200, LEASE_MS, false, holder, &holder_pid, err,
                                         sizeof err),
                     -EBUSY);
    assert_string_equal(holder, "host-a");
    assert_int_equal(holder_pid, 100);
    assert_non_null(strstr(err, "held by process 100 on host-a"));
}

static void test_node_register_again_by_the_same_process_renews(void **state) {
    store_fixture_t *fx = *state;
    char holder[STORE_NODE_ID_MAX + 1] = "";
    int holder_pid = 0;
    assert_int_equal(register_node(fx, "n1", "host-a", 100, LEASE_MS, false, holder, &holder_pid), 0);
    assert_int_equal(register_node(fx, "n1", "host-a", 100, LEASE_MS, false, holder, &holder_pid), 0);
    assert_int_equal(store_node_heartbeat(fx->store, "n1", 100, LEASE_MS), 0);
}

static void test_node_register_takes_over_and_the_old_holder_loses_it(void **state) {
    store_fixture_t *fx = *state;
    char holder[STORE_NODE_ID_MAX + 1] = "";
    int holder_pid = 0;
    assert_int_equal(register_node(fx, "n1", "host-a", 100, LEASE_MS, false, holder, &holder_pid), 0);
    assert_int_equal(register_node(fx, "n1", "host-a", 200, LEASE_MS, true, holder, &holder_pid), 0);
    assert_int_equal(store_node_heartbeat(fx->store, "n1", 100, LEASE_MS), -ENOENT);
    assert_int_equal(store_node_heartbeat(fx->store, "n1", 200, LEASE_MS), 0);
}

static void test_node_register_after_the_lease_ran_out(void **state) {
    store_fixture_t *fx = *state;
    char holder[STORE_NODE_ID_MAX + 1] = "";
    int holder_pid = 0;
    assert_int_equal(register_node(fx, "n1", "host-a", 100, 1, false, holder, &holder_pid), 0);
    usleep(20000);
    assert_int_equal(register_node(fx, "n1", "host-b", 200, LEASE_MS, false, holder, &holder_pid), 0);
}

static void test_node_register_refuses_invalid_ids(void **state) {
    store_fixture_t *fx = *state;
    char holder[STORE_NODE_ID_MAX + 1] = "", long_id[STORE_NODE_ID_MAX + 2];
    int holder_pid = 0;
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(register_node(fx, "", "h", 1, LEASE_MS, false, holder, &holder_pid), -EINVAL);
    assert_int_equal(register_node(fx, "a b", "h", 1, LEASE_MS, false, holder, &holder_pid), -EINVAL);
    assert_int_equal(register_node(fx, long_id, "h", 1, LEASE_MS, false, holder, &holder_pid), -EINVAL);
    assert_int_equal(register_node(fx, "n1", "h", 1, 0, false, holder, &holder_pid), -EINVAL);
}

static void test_node_heartbeat_of_no_lease_is_enoent(void **state) {
    store_fixture_t *fx = *state;
    assert_int_equal(store_node_heartbeat(fx->store, "n1", 100, LEASE_MS), -ENOENT);
}

static void test_node_release_frees_the_id_only_for_its_holder(void **state) {
    store_fixture_t *fx = *state;
    char holder[STORE_NODE_ID_MAX + 1] = "";
    int holder_pid = 0;
    assert_int_equal(register_node(fx, "n1", "host-a", 100, LEASE_MS, false, holder, &holder_pid), 0);
    assert_int_equal(store_node_release(fx->store, "n1", 999), 0);
    assert_int_equal(register_node(fx, "n1", "host-b", 200, LEASE_MS, false, holder, &holder_pid), -EBUSY);
    assert_int_equal(store_node_release(fx->store, "n1", 100), 0);
    assert_int_equal(store_node_heartbeat(fx->store, "n1", 100, LEASE_MS), -ENOENT);
    assert_int_equal(register_node(fx, "n1", "host-b", 200, LEASE_MS, false, holder, &holder_pid), 0);
}

/* Sessions of every kind of worker: "dead" (a lease that runs out), "live" (a lease), "gone"
 * (no lease), "this-node", none (imported); a finished one of "dead". ids 0x1..0x6. */
typedef struct {
    char dead[37], dead_done[37], live[37], gone[37], own[37], imported[37];
} workers_t;

static workers_t save_sessions_of_workers(store_fixture_t *fx) {
    workers_t w;
    char holder[STORE_NODE_ID_MAX + 1];
    int holder_pid;
    add_customer(fx, "acme");
    assert_int_equal(register_node(fx, "dead", "host-a", 100, 1, false, holder, &holder_pid), 0);
    assert_int_equal(register_node(fx, "live", "host-b", 200, LEASE_MS, false, holder, &holder_pid), 0);
    struct {
        char *id;
        const char *worker;
        session_status_t status;
    } s[] = {{w.dead, "dead", SESSION_RUNNING},       {w.dead_done, "dead", SESSION_FINISHED},
             {w.live, "live", SESSION_RUNNING},       {w.gone, "gone", SESSION_RUNNING},
             {w.own, "this-node", SESSION_RUNNING}, {w.imported, NULL, SESSION_RUNNING}};
    for (uint32_t i = 0; i < 6; i++) {
        record_id(s[i].id, i + 1);
        session_record_t r = make_record(s[i].id, "zone1", s[i].status, i);
        r.timestamp_ms = time_now_ms() - 3000;
        assert_int_equal(store_session_save(fx->store, "acme", &r, s[i].worker), 0);
        session_record_free(&r);
    }
    usleep(20000); /* the lease of "dead" runs out */
    return w;
}

/* The status and error code of one session, from the feed. */
static session_status_t status_of(store_fixture_t *fx, const char *id, char code[64]) {
    collector_t got = {0};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(fx->store, 0, &last, collect, &got), 0);
    session_status_t st = SESSION_STATUS_COUNT;
    for (size_t i = 0; i < got.count; i++)
        if (strcmp(got.records[i].session_id, id) == 0) {
            st = got.records[i].status;
            snprintf(code, 64, "%s", got.records[i].error_code ? got.records[i].error_code : "");
        }
    collector_free(&got);
    return st;
}

static void test_nodes_reap_fails_the_running_sessions_of_expired_nodes_only(void **state) {
    store_fixture_t *fx = *state;
    workers_t w = save_sessions_of_workers(fx);
    int64_t nodes = -1, failed = -1;
    char code[64];
    assert_int_equal(store_nodes_reap(fx->store, &nodes, &failed), 0);
    assert_int_equal(nodes, 1);
    assert_int_equal(failed, 1);
    assert_int_equal(change_seq(fx), 7);
    assert_int_equal(status_of(fx, w.dead, code), SESSION_FAILED);
    assert_string_equal(code, "worker_disconnect");
    assert_int_equal(status_of(fx, w.dead_done, code), SESSION_FINISHED);
    assert_int_equal(status_of(fx, w.live, code), SESSION_RUNNING);
    assert_int_equal(status_of(fx, w.gone, code), SESSION_RUNNING);
    assert_int_equal(status_of(fx, w.imported, code), SESSION_RUNNING);
}

static void test_nodes_reap_removes_the_lease_and_twice_fails_nothing(void **state) {
    store_fixture_t *fx = *state;
    save_sessions_of_workers(fx);
    int64_t nodes = -1, failed = -1;
    char holder[STORE_NODE_ID_MAX + 1];
    int holder_pid;
    assert_int_equal(store_nodes_reap(fx->store, &nodes, &failed), 0);
    assert_int_equal(store_node_heartbeat(fx->store, "dead", 100, LEASE_MS), -ENOENT);
    assert_int_equal(store_nodes_reap(fx->store, &nodes, &failed), 0);
    assert_int_equal(nodes, 0);
    assert_int_equal(failed, 0);
    assert_int_equal(change_seq(fx), 7);
    assert_int_equal(store_nodes_reap(fx->store, NULL, NULL), 0);
    assert_int_equal(register_node(fx, "live", "host-c", 300, LEASE_MS, false, holder, &holder_pid), -EBUSY);
}

/* This node's own sessions and those of workers without a live lease (an expired one too);
 * not a live other node's, not imported ones. */
static void test_fail_orphans_spares_live_nodes_and_imported_sessions(void **state) {
    store_fixture_t *fx = *state;
    workers_t w = save_sessions_of_workers(fx);
    int64_t failed = -1;
    char code[64];
    assert_int_equal(store_sessions_fail_orphans(fx->store, "this-node", &failed), 0);
    assert_int_equal(failed, 3);
    assert_int_equal(change_seq(fx), 9);
    assert_int_equal(status_of(fx, w.own, code), SESSION_FAILED);
    assert_string_equal(code, "worker_disconnect");
    assert_int_equal(status_of(fx, w.gone, code), SESSION_FAILED);
    assert_int_equal(status_of(fx, w.dead, code), SESSION_FAILED);
    assert_int_equal(status_of(fx, w.live, code), SESSION_RUNNING);
    assert_int_equal(status_of(fx, w.imported, code), SESSION_RUNNING);
    assert_int_equal(status_of(fx, w.dead_done, code), SESSION_FINISHED);
}

/* ---- one session: owner, end ---- */

static void test_session_owner_names_the_worker_and_its_lease(void **state) {
    store_fixture_t *fx = *state;
    workers_t w = save_sessions_of_workers(fx);
    session_status_t status;
    char worker[STORE_NODE_ID_MAX + 1];
    bool alive = false;
    assert_int_equal(store_session_owner(fx->store, "acme", w.live, &status, worker, &alive), 0);
    assert_int_equal(status, SESSION_RUNNING);
    assert_string_equal(worker, "live");
    assert_true(alive);
    char upper[37];
    snprintf(upper, sizeof upper, "%s", w.dead);
    for (char *p = upper; *p; p++) *p = (char)toupper((unsigned char)*p);
    assert_int_equal(store_session_owner(fx->store, "acme", upper, &status, worker, &alive), 0);
    assert_string_equal(worker, "dead");
    assert_false(alive);
    assert_int_equal(store_session_owner(fx->store, "acme", w.imported, &status, worker, &alive), 0);
    assert_string_equal(worker, "");
    assert_false(alive);
    assert_int_equal(store_session_owner(fx->store, "acme", w.dead_done, &status, worker, &alive), 0);
    assert_int_equal(status, SESSION_FINISHED);
    assert_int_equal(store_session_owner(fx->store, "other", w.live, &status, worker, &alive), -ENOENT);
    assert_int_equal(store_session_owner(fx->store, "acme", "0190a1b2-c3d4-7e5f-8a9b-0000000000ff", &status, worker,
                                         &alive),
                     -ENOENT);
    assert_int_equal(store_session_owner(fx->store, "acme", "not-an-id", &status, worker, &alive), -ENOENT);
}

static void test_session_end_fails_a_running_session_with_a_new_seq(void **state) {
    store_fixture_t *fx = *state;
    workers_t w = save_sessions_of_workers(fx);
    assert_int_equal(store_session_end(fx->store, "acme", w.live, "session_killed", "killed by the API"), 0);
    assert_int_equal(change_seq(fx), 7);
    collector_t got = {0};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(fx->store, 6, &last, collect, &got), 0);
    assert_int_equal(got.count, 1);
    assert_string_equal(got.records[0].session_id, w.live);
    assert_int_equal(got.records[0].status, SESSION_FAILED);
    assert_string_equal(got.records[0].error_code, "session_killed");
    assert_string_equal(got.records[0].error_message, "killed by the API");
    assert_true(got.records[0].duration_ms >= 2900 && got.records[0].duration_ms <= 60000);
    collector_free(&got);
    session_status_t status;
    char worker[STORE_NODE_ID_MAX + 1];
    bool alive;
    assert_int_equal(store_session_owner(fx->store, "acme", w.live, &status, worker, &alive), 0);
    assert_string_equal(worker, "");
}

static void test_session_end_refuses_ended_and_unknown_sessions(void **state) {
    store_fixture_t *fx = *state;
    workers_t w = save_sessions_of_workers(fx);
    assert_int_equal(store_session_end(fx->store, "acme", w.dead_done, "x", "y"), -EALREADY);
    assert_int_equal(store_session_end(fx->store, "acme", "0190a1b2-c3d4-7e5f-8a9b-0000000000ff", "x", "y"), -ENOENT);
    assert_int_equal(store_session_end(fx->store, "other", w.live, "x", "y"), -ENOENT);
    assert_int_equal(store_session_end(fx->store, "acme", w.live, "", "y"), -EINVAL);
    assert_int_equal(change_seq(fx), 6);
}

static void test_ping_answers(void **state) {
    store_fixture_t *fx = *state;
    assert_int_equal(store_ping(fx->store), 0);
}

/* ---- events between processes (another store handle stands for another node) ---- */

typedef struct {
    pthread_mutex_t lock;
    int64_t seq;
    char topic[64], payload[128];
    int messages, ups, downs;
} heard_t;

static void heard_change(void *ctx, int64_t seq) {
    heard_t *h = ctx;
    pthread_mutex_lock(&h->lock);
    if (seq > h->seq) h->seq = seq;
    pthread_mutex_unlock(&h->lock);
}

static void heard_message(void *ctx, const char *topic, const char *payload) {
    heard_t *h = ctx;
    pthread_mutex_lock(&h->lock);
    snprintf(h->topic, sizeof h->topic, "%s", topic);
    snprintf(h->payload, sizeof h->payload, "%s", payload);
    h->messages++;
    pthread_mutex_unlock(&h->lock);
}

static void heard_connection(void *ctx, bool up) {
    heard_t *h = ctx;
    pthread_mutex_lock(&h->lock);
    if (up) h->ups++;
    else h->downs++;
    pthread_mutex_unlock(&h->lock);
}

static const store_events_t HEAR = {heard_change, heard_message, heard_connection};

/* Waits up to 5 s for what `done` tells; whether it came. */
static bool heard_within(heard_t *h, bool (*done)(const heard_t *h, int64_t arg), int64_t arg) {
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&h->lock);
        bool ok = done(h, arg);
        pthread_mutex_unlock(&h->lock);
        if (ok) return true;
        usleep(10000);
    }
    return false;
}

static bool heard_seq(const heard_t *h, int64_t seq) { return h->seq >= seq; }
static bool heard_messages(const heard_t *h, int64_t n) { return h->messages >= n; }

static store_t *second_handle(store_fixture_t *fx) {
    store_t *s = NULL;
    char err[512] = "";
    assert_int_equal(store_open(fx->target, &s, err, sizeof err), 0);
    return s;
}

static void test_events_carry_messages_and_changes_to_another_handle(void **state) {
    store_fixture_t *fx = *state;
    store_t *other = second_handle(fx);
    heard_t h = {.lock = PTHREAD_MUTEX_INITIALIZER};
    int rc = store_events_start(other, &HEAR, &h);
    if (!store_fixture_is_pg()) {
        assert_int_equal(rc, -ENOTSUP);
        assert_int_equal(store_publish(fx->store, "kill", "x"), -ENOTSUP);
        store_close(other);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(store_events_start(other, &HEAR, &h), -EALREADY);
    assert_int_equal(store_publish(fx->store, "kill", "{\"session\":\"s1\"}"), 0);
    assert_true(heard_within(&h, heard_messages, 1));
    assert_string_equal(h.topic, "kill");
    assert_string_equal(h.payload, "{\"session\":\"s1\"}");
    two_sessions_t t;
    put_two_sessions(fx, &t);
    assert_true(heard_within(&h, heard_seq, 2));
    store_events_stop(other);
    int messages = h.messages;
    assert_int_equal(store_publish(fx->store, "killed", "after the stop"), 0);
    usleep(100000);
    assert_int_equal(h.messages, messages); /* nothing after events_stop */
    store_close(other);
    free_two_sessions(&t);
}

static void test_publish_refuses_bad_topics_and_payloads(void **state) {
    store_fixture_t *fx = *state;
    int expect = store_fixture_is_pg() ? -EINVAL : -ENOTSUP;
    char big[7002];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(store_publish(fx->store, "Kill", "x"), expect);
    assert_int_equal(store_publish(fx->store, "", "x"), expect);
    assert_int_equal(store_publish(fx->store, "kill", big), expect);
    assert_int_equal(store_publish(fx->store, "kill", NULL), expect);
}

/* Another process's writes reach this one's change counter (PostgreSQL: through the
 * notification, answered from memory; SQLite: read from the file). */
static void test_change_seq_follows_writes_of_another_handle(void **state) {
    store_fixture_t *fx = *state;
    store_t *other = second_handle(fx);
    heard_t h = {.lock = PTHREAD_MUTEX_INITIALIZER};
    int rc = store_events_start(other, &HEAR, &h);
    assert_true(rc == 0 || rc == -ENOTSUP);
    two_sessions_t t;
    put_two_sessions(fx, &t);
    int64_t seq = 0;
    for (int i = 0; i < 200 && seq < 2; i++) {
        assert_int_equal(store_change_seq(other, &seq), 0);
        if (seq < 2) usleep(10000);
    }
    assert_int_equal(seq, 2);
    store_close(other);
    free_two_sessions(&t);
}

/* A key revoked by another process stops working here well within the cache's 2 s. */
static void test_key_revoked_by_another_handle_stops_working(void **state) {
    store_fixture_t *fx = *state;
    two_keys_t k = add_two_keys(fx);
    store_t *other = second_handle(fx);
    heard_t h = {.lock = PTHREAD_MUTEX_INITIALIZER};
    int rc = store_events_start(other, &HEAR, &h);
    assert_true(rc == 0 || rc == -ENOTSUP);
    char customer[STORE_ID_MAX + 1];
    assert_int_equal(store_key_authenticate(other, k.key1, 64, customer), 0);
    assert_int_equal(store_key_authenticate(other, k.key1, 64, customer), 0);
    int64_t t0 = time_now_ms();
    assert_int_equal(store_key_revoke(fx->store, k.id1), 0);
    while (store_key_authenticate(other, k.key1, 64, customer) == 0) {
        assert_true(time_now_ms() - t0 < 1000);
        usleep(1000);
    }
    assert_int_equal(store_key_authenticate(other, k.key2, 64, customer), 0);
    store_close(other);
}

/* ---- threads ---- */

/* Every change from every thread got its own seq (1.5 changes per session); the feed gives
 * each session once, its latest version, and resumed from the middle exactly the rest. */
static void test_concurrent_changes_each_take_a_seq(void **state) {
    store_fixture_t *fx = *state;
    run_concurrent_workload(fx);
    assert_int_equal(change_seq(fx), WORKLOAD_CHANGES);
    int64_t last = 0, middle = 0;
    id_list_t all = {calloc(WORKLOAD_SESSIONS, 37), 0, WORKLOAD_SESSIONS, 0};
    assert_non_null(all.ids);
    assert_int_equal(store_sessions_since(fx->store, 0, &last, list_ids, &all), 0);
    assert_int_equal(all.count, WORKLOAD_SESSIONS);
    assert_int_equal(all.finished, WORKLOAD_FINISHED);
    assert_int_equal(last, WORKLOAD_CHANGES);
    id_list_t half = {calloc(WORKLOAD_SESSIONS, 37), 0, WORKLOAD_SESSIONS / 2, 0};
    id_list_t rest = {calloc(WORKLOAD_SESSIONS, 37), 0, WORKLOAD_SESSIONS, 0};
    assert_non_null(half.ids);
    assert_non_null(rest.ids);
    assert_int_equal(store_sessions_since(fx->store, 0, &middle, list_ids, &half), -ENOSPC);
    assert_int_equal(store_sessions_since(fx->store, middle, &last, list_ids, &rest), 0);
    assert_int_equal(rest.count, WORKLOAD_SESSIONS / 2);
    assert_memory_equal(half.ids, all.ids, (size_t)half.count * 37);
    assert_memory_equal(rest.ids, all.ids + WORKLOAD_SESSIONS / 2, (size_t)rest.count * 37);
    free(all.ids);
    free(half.ids);
    free(rest.ids);
}

int main(void) {
    int skip = store_fixture_skip_code(store_fixture_is_pg() ? "store_pg" : "store");
    if (skip) return skip;
    const struct CMUnitTest tests[] = {
        TEST(test_new_store_is_empty),
        TEST(test_reopen_keeps_data),
        TEST(test_open_refuses_empty_target),
        TEST(test_open_of_unreachable_postgres_names_it_without_password),
        TEST(test_uri_redact_hides_only_passwords),
        TEST(test_customer_add_refuses_duplicate),
        TEST(test_customer_add_refuses_invalid_ids),
        TEST(test_customer_id_may_have_32_characters),
        TEST(test_customer_exists_only_when_added),
        TEST(test_customer_count_counts_only_added_customers),
        TEST(test_zone_names_are_a_z0_9_up_to_64),
        TEST(test_key_add_refuses_unknown_customer),
        TEST(test_key_add_refuses_invalid_customer_id),
        TEST(test_key_add_draws_distinct_hex_keys_and_ids),
        TEST(test_key_authenticate_gives_the_owner),
        TEST(test_key_authenticate_refuses_unknown_truncated_and_empty_keys),
        TEST(test_key_list_is_oldest_first),
        TEST(test_key_list_of_customer_without_keys_is_empty),
        TEST(test_key_list_refuses_unknown_customer),
        TEST(test_key_revoke_stops_only_that_key),
        TEST(test_key_revoke_is_idempotent),
        TEST(test_key_list_shows_revoked_keys),
        TEST(test_key_revoke_refuses_unknown_key),
        TEST(test_key_revoke_refuses_malformed_key_id),
        TEST(test_zone_add_refuses_unknown_customer),
        TEST(test_zone_add_refuses_invalid_names),
        TEST(test_zone_add_draws_24_character_password),
        TEST(test_zone_add_refuses_duplicate),
        TEST(test_zone_names_are_per_customer),
        TEST(test_zone_check_accepts_its_password),
        TEST(test_zone_check_refuses_other_passwords),
        TEST(test_zone_check_refuses_unknown_zone_or_customer),
        TEST(test_zone_authorize_gives_empty_upstream_when_none),
        TEST(test_zone_authorize_gives_the_upstream_set),
        TEST(test_zone_authorize_wrong_password_gives_no_upstream),
        TEST(test_zone_upstream_is_per_customer),
        TEST(test_zone_set_upstream_null_or_empty_clears),
        TEST(test_zone_set_upstream_refuses_unknown_zone),
        TEST(test_import_stores_all_records_with_consecutive_seqs),
        TEST(test_import_stores_nothing_when_source_fails),
        TEST(test_import_refuses_invalid_record),
        TEST(test_import_refuses_duplicate_id_within_import),
        TEST(test_import_refuses_id_already_stored),
        TEST(test_import_names_the_refused_record_by_its_index),
        TEST(test_import_accepts_id_held_by_another_customer),
        TEST(test_import_refuses_unknown_customer),
        TEST(test_import_of_no_records_changes_nothing),
        TEST(test_session_put_takes_the_next_seq),
        TEST(test_session_put_refuses_unknown_customer),
        TEST(test_session_put_refuses_invalid_record),
        TEST(test_session_put_of_same_id_in_other_case_replaces_it),
        TEST(test_sessions_since_gives_latest_versions_in_seq_order),
        TEST(test_sessions_since_the_last_seq_gives_nothing),
        TEST(test_sessions_since_stops_with_the_callback),
        TEST(test_fail_orphans_fails_only_running_sessions_of_a_process),
        TEST(test_fail_orphans_ends_them_as_worker_disconnect),
        TEST(test_fail_orphans_twice_fails_nothing_more),
        TEST(test_batch_save_takes_seqs_in_array_order),
        TEST(test_batch_save_writes_nothing_with_an_unknown_customer),
        TEST(test_batch_save_writes_nothing_with_an_invalid_record),
        TEST(test_node_register_refuses_a_live_holder_and_names_it),
        TEST(test_node_register_again_by_the_same_process_renews),
        TEST(test_node_register_takes_over_and_the_old_holder_loses_it),
        TEST(test_node_register_after_the_lease_ran_out),
        TEST(test_node_register_refuses_invalid_ids),
        TEST(test_node_heartbeat_of_no_lease_is_enoent),
        TEST(test_node_release_frees_the_id_only_for_its_holder),
        TEST(test_nodes_reap_fails_the_running_sessions_of_expired_nodes_only),
        TEST(test_nodes_reap_removes_the_lease_and_twice_fails_nothing),
        TEST(test_fail_orphans_spares_live_nodes_and_imported_sessions),
        TEST(test_session_owner_names_the_worker_and_its_lease),
        TEST(test_session_end_fails_a_running_session_with_a_new_seq),
        TEST(test_session_end_refuses_ended_and_unknown_sessions),
        TEST(test_ping_answers),
        TEST(test_events_carry_messages_and_changes_to_another_handle),
        TEST(test_publish_refuses_bad_topics_and_payloads),
        TEST(test_change_seq_follows_writes_of_another_handle),
        TEST(test_key_revoked_by_another_handle_stops_working),
        TEST(test_concurrent_changes_each_take_a_seq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
