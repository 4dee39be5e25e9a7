/* Unit tests of the store's behaviour through store.h only, one behaviour per test, each on a
 * new, empty store (store_fixture.c): what every backend must do alike. What only the SQLite
 * backend does (its files, schema, query plans) is in test_sqlite_store.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
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
        TEST(test_concurrent_changes_each_take_a_seq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
