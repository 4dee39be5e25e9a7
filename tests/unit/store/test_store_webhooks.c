/* Unit tests of the webhooks' part of the store (store_webhooks.h) through its interface only,
 * each on a new, empty store: run on SQLite (store_webhooks) and on PostgreSQL
 * (store_webhooks_pg, skipped without BROWSERD_TEST_PG_ADMIN_URI). The outbox is filled by
 * the schema's triggers, so every path that ends a session is driven here as the daemon
 * drives it: the gateway's saves, the orphans of a dead process, DELETE's session_end. */
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
#include <unistd.h>

#include "core/timeutil.h"
#include "store/store_webhooks.h"
#include "store_fixture.h"

#define TEST(name) cmocka_unit_test_setup_teardown(name, store_fixture_setup, store_fixture_teardown)
#define LEASE_MS 60000
#define NODE "node-a"

static void add_customer(store_fixture_t *fx, const char *customer_id) {
    char err[512] = "";
    assert_int_equal(store_customer_add(fx->store, customer_id, err, sizeof err), 0);
}

static void add_webhook(store_fixture_t *fx, const char *customer_id, const char *url, char id[STORE_WEBHOOK_ID_LEN + 1],
                        char secret[STORE_WEBHOOK_SECRET_LEN + 1]) {
    char err[512] = "";
    assert_int_equal(store_webhook_add(fx->store, customer_id, url, id, secret, err, sizeof err), 0);
}

/* Saves record n of `customer` as the gateway does (run by NODE) with the given status. */
static void save(store_fixture_t *fx, const char *customer, uint32_t n, session_status_t status) {
    char id[37];
    record_id(id, n);
    session_record_t r = make_record(id, "zone1", status, n);
    store_session_write_t w = {customer, &r};
    assert_int_equal(store_sessions_save(fx->store, &w, 1, NODE), 0);
    session_record_free(&r);
}

static int64_t pending(store_fixture_t *fx) {
    int64_t n = -1;
    assert_int_equal(store_webhook_pending(fx->store, &n), 0);
    return n;
}

static size_t claim(store_fixture_t *fx, const char *claimer, int64_t lease_ms, store_delivery_t **out) {
    size_t n = 99;
    assert_int_equal(store_webhook_claim(fx->store, claimer, lease_ms, 16, out, &n), 0);
    return n;
}

static void record(store_fixture_t *fx, const char *delivery_id, bool delivered, int64_t next_attempt_ms) {
    store_delivery_outcome_t o = {.delivered = delivered, .counted = true, .http_status = delivered ? 200 : 503,
                                  .error = delivered ? "" : "the receiver answered 503",
                                  .next_attempt_ms = next_attempt_ms};
    assert_int_equal(store_webhook_record(fx->store, delivery_id, &o), 0);
}

/* ---- webhooks ---- */

static void test_webhook_add_draws_an_id_and_a_secret_and_lists_it(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    char id2[STORE_WEBHOOK_ID_LEN + 1], secret2[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://hooks.example.com/a", id, secret);
    add_webhook(fx, "acme", "http://hooks.example.com/b", id2, secret2);
    assert_true(store_valid_webhook_id(id));
    assert_int_equal(strlen(secret), STORE_WEBHOOK_SECRET_LEN);
    assert_memory_equal(secret, "whsec_", 6);
    assert_string_not_equal(id, id2);
    assert_string_not_equal(secret, secret2);
    store_webhook_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_webhook_list(fx->store, "acme", &list, &n), 0);
    assert_int_equal(n, 2);
    /* added in the same millisecond, the two may come in either order */
    int a = strcmp(list[0].webhook_id, id) == 0 ? 0 : 1;
    assert_string_equal(list[a].webhook_id, id);
    assert_string_equal(list[a].url, "http://hooks.example.com/a");
    assert_string_equal(list[1 - a].webhook_id, id2);
    assert_string_equal(list[1 - a].url, "http://hooks.example.com/b");
    free(list);
}

static void test_webhook_add_and_list_refuse_unknown_customers(void **state) {
    store_fixture_t *fx = *state;
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1], err[512] = "";
    assert_int_equal(store_webhook_add(fx->store, "nobody", "http://x.example/", id, secret, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "nobody"));
    store_webhook_info_t *list = NULL;
    size_t n = 9;
    assert_int_equal(store_webhook_list(fx->store, "nobody", &list, &n), -ENOENT);
    assert_int_equal(store_webhook_add(fx->store, "Bad-Id", "http://x.example/", id, secret, err, sizeof err), -EINVAL);
}

static void test_webhook_remove_takes_its_pending_deliveries(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://hooks.example.com/", id, secret);
    save(fx, "acme", 1, SESSION_FINISHED);
    assert_int_equal(pending(fx), 1);
    assert_int_equal(store_webhook_remove(fx->store, id), 0);
    assert_int_equal(pending(fx), 0);
    assert_int_equal(store_webhook_remove(fx->store, id), -ENOENT);
    assert_int_equal(store_webhook_remove(fx->store, "wh_nothex"), -EINVAL);
}

/* ---- the outbox ---- */

static void test_a_session_that_ends_gets_one_delivery_per_webhook(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    add_customer(fx, "other");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    char id2[STORE_WEBHOOK_ID_LEN + 1], secret2[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    add_webhook(fx, "acme", "http://b.example/hook", id2, secret2);
    save(fx, "acme", 1, SESSION_RUNNING);
    save(fx, "acme", 1, SESSION_RUNNING); /* the periodic save: still running, nothing to send */
    assert_int_equal(pending(fx), 0);
    save(fx, "other", 2, SESSION_FINISHED); /* a customer without webhooks */
    assert_int_equal(pending(fx), 0);
    save(fx, "acme", 1, SESSION_FINISHED);
    save(fx, "acme", 1, SESSION_FINISHED); /* saved again after its end: no second event */
    assert_int_equal(pending(fx), 2);

    store_delivery_t *d = NULL;
    assert_int_equal(claim(fx, NODE, LEASE_MS, &d), 2);
    char sid[37];
    record_id(sid, 1);
    int a = strcmp(d[0].webhook_id, id) == 0 ? 0 : 1; /* webhooks of one millisecond: either order */
    assert_string_equal(d[a].webhook_id, id);
    assert_string_equal(d[a].url, "http://a.example/hook");
    assert_string_equal(d[a].secret, secret);
    assert_string_equal(d[1 - a].webhook_id, id2);
    assert_string_equal(d[1 - a].url, "http://b.example/hook");
    assert_string_equal(d[1 - a].secret, secret2);
    assert_string_equal(d[1].rec.session_id, sid);
    assert_string_equal(d[0].customer_id, "acme");
    assert_string_equal(d[0].rec.session_id, sid);
    assert_int_equal(d[0].rec.status, SESSION_FINISHED);
    assert_int_equal(d[0].attempts, 0);
    assert_int_equal(strlen(d[0].delivery_id), STORE_DELIVERY_ID_LEN);
    assert_string_not_equal(d[0].delivery_id, d[1].delivery_id);
    store_webhook_claimed_free(d, 2);
}

static void test_a_session_saved_already_ended_gets_a_delivery_but_an_import_does_not(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    char sid[37];
    record_id(sid, 7);
    session_record_t imported = make_record(sid, "zone1", SESSION_FAILED, 7);
    array_source_t src = {.records = &imported, .count = 1, .fail_at = 99};
    int64_t count = 0;
    char err[512] = "";
    assert_int_equal(store_sessions_import(fx->store, "acme", array_next, &src, &count, err, sizeof err), 0);
    session_record_free(&imported);
    assert_int_equal(pending(fx), 0); /* history is not news */
    save(fx, "acme", 8, SESSION_FAILED); /* a client that never got a browser: saved once, ended */
    assert_int_equal(pending(fx), 1);
}

static void test_orphans_and_session_end_enqueue_deliveries(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_RUNNING);
    save(fx, "acme", 2, SESSION_RUNNING);
    char sid[37];
    record_id(sid, 2);
    assert_int_equal(store_session_end(fx->store, "acme", sid, "killed", "ended through the API"), 0);
    assert_int_equal(pending(fx), 1);
    int64_t failed = 0;
    /* another node id: NODE holds no lease, so its running session is an orphan */
    assert_int_equal(store_sessions_fail_orphans(fx->store, "node-b", &failed), 0);
    assert_int_equal(failed, 1);
    assert_int_equal(pending(fx), 2);
}

static void test_a_claim_is_exclusive_until_its_lease_ends(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_FINISHED);
    store_delivery_t *d = NULL, *again = NULL;
    assert_int_equal(claim(fx, NODE, 1, &d), 1);
    /* a lease of 1 ms: once it ran out, the row is anyone's again (a node that died with it) */
    usleep(20 * 1000);
    assert_int_equal(claim(fx, "node-b", LEASE_MS, &again), 1);
    assert_string_equal(again[0].delivery_id, d[0].delivery_id);
    store_webhook_claimed_free(again, 1);
    assert_int_equal(claim(fx, NODE, LEASE_MS, &again), 0); /* node-b's lease holds */
    assert_null(again);
    store_webhook_claimed_free(d, 1);
}

static void test_delivered_is_done_and_listed(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_FINISHED);
    store_delivery_t *d = NULL;
    assert_int_equal(claim(fx, NODE, LEASE_MS, &d), 1);
    record(fx, d[0].delivery_id, true, 0);
    assert_int_equal(pending(fx), 0);
    store_delivery_t *none = NULL;
    assert_int_equal(claim(fx, NODE, 1, &none), 0);
    store_delivery_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_webhook_deliveries(fx->store, "acme", 10, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].delivery_id, d[0].delivery_id);
    assert_string_equal(list[0].webhook_id, id);
    assert_string_equal(list[0].session_id, d[0].rec.session_id);
    assert_int_equal(list[0].state, STORE_DELIVERY_DELIVERED);
    assert_int_equal(list[0].attempts, 1);
    assert_int_equal(list[0].last_status, 200);
    assert_true(list[0].done_ms > 0);
    free(list);
    store_webhook_claimed_free(d, 1);
}

static void test_a_failed_attempt_waits_for_its_next_time_and_a_give_up_fails_it(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_FINISHED);
    store_delivery_t *d = NULL, *again = NULL;
    assert_int_equal(claim(fx, NODE, LEASE_MS, &d), 1);
    record(fx, d[0].delivery_id, false, time_now_ms() + 3600 * 1000);
    assert_int_equal(claim(fx, NODE, LEASE_MS, &again), 0); /* not due for an hour */
    assert_int_equal(pending(fx), 1);
    store_delivery_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_webhook_deliveries(fx->store, "acme", 10, &list, &n), 0);
    assert_int_equal(list[0].state, STORE_DELIVERY_PENDING);
    assert_int_equal(list[0].last_status, 503);
    assert_string_equal(list[0].last_error, "the receiver answered 503");
    free(list);
    /* due again (the next time is past), with the attempt counted */
    record(fx, d[0].delivery_id, false, 0);
    assert_int_equal(claim(fx, NODE, LEASE_MS, &again), 1);
    assert_int_equal(again[0].attempts, 2);
    record(fx, again[0].delivery_id, false, -1); /* given up */
    assert_int_equal(pending(fx), 0);
    assert_int_equal(store_webhook_deliveries(fx->store, "acme", 10, &list, &n), 0);
    assert_int_equal(list[0].state, STORE_DELIVERY_FAILED);
    assert_int_equal(list[0].attempts, 3);
    free(list);
    store_webhook_claimed_free(again, 1);
    store_webhook_claimed_free(d, 1);
}

static void test_an_uncounted_outcome_gives_the_claim_back(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_FINISHED);
    store_delivery_t *d = NULL, *again = NULL;
    assert_int_equal(claim(fx, NODE, LEASE_MS, &d), 1);
    store_delivery_outcome_t back = {.counted = false};
    assert_int_equal(store_webhook_record(fx->store, d[0].delivery_id, &back), 0);
    assert_int_equal(claim(fx, "node-b", LEASE_MS, &again), 1);
    assert_int_equal(again[0].attempts, 0);
    store_webhook_claimed_free(again, 1);
    store_webhook_claimed_free(d, 1);
}

static void test_a_node_gives_back_its_own_claims_only(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_FINISHED);
    store_delivery_t *d = NULL, *again = NULL;
    assert_int_equal(claim(fx, NODE, LEASE_MS, &d), 1);
    assert_int_equal(store_webhook_release_claims(fx->store, "node-b"), 0); /* not node-b's */
    assert_int_equal(claim(fx, NODE, LEASE_MS, &again), 0);
    assert_int_equal(store_webhook_release_claims(fx->store, NODE), 0); /* NODE started again */
    assert_int_equal(claim(fx, NODE, LEASE_MS, &again), 1);
    store_webhook_claimed_free(again, 1);
    store_webhook_claimed_free(d, 1);
}

static void test_prune_deletes_only_done_deliveries_older_than_the_cutoff(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_FINISHED);
    save(fx, "acme", 2, SESSION_FINISHED);
    save(fx, "acme", 3, SESSION_FINISHED);
    store_delivery_t *d = NULL;
    assert_int_equal(claim(fx, NODE, LEASE_MS, &d), 3);
    record(fx, d[0].delivery_id, true, 0);
    record(fx, d[1].delivery_id, false, -1); /* given up */
    /* d[2] stays pending */
    int64_t deleted = -1;
    assert_int_equal(store_webhook_prune(fx->store, time_now_ms() - 3600 * 1000, &deleted), 0);
    assert_int_equal(deleted, 0); /* done just now: kept */
    assert_int_equal(store_webhook_prune(fx->store, time_now_ms() + 1000, &deleted), 0);
    assert_int_equal(deleted, 2);
    store_delivery_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_webhook_deliveries(fx->store, "acme", 10, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].delivery_id, d[2].delivery_id);
    assert_int_equal(pending(fx), 1);
    free(list);
    store_webhook_claimed_free(d, 3);
}

/* A session that ends twice (reaped as failed while its node was cut off, then saved running
 * and finished by it): the second event waits until the first is done. */
static void test_deliveries_of_one_session_go_in_order(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_FAILED);
    save(fx, "acme", 1, SESSION_RUNNING);
    save(fx, "acme", 1, SESSION_FINISHED);
    save(fx, "acme", 2, SESSION_FINISHED);
    assert_int_equal(pending(fx), 3);
    store_delivery_t *d = NULL;
    assert_int_equal(claim(fx, NODE, LEASE_MS, &d), 2); /* session 1's first event, session 2's */
    char sid1[37], sid2[37];
    record_id(sid1, 1);
    record_id(sid2, 2);
    assert_string_equal(d[0].rec.session_id, sid1);
    assert_string_equal(d[1].rec.session_id, sid2);
    store_delivery_t *second = NULL;
    record(fx, d[0].delivery_id, false, 0); /* a failed attempt keeps the first one first */
    assert_int_equal(claim(fx, NODE, LEASE_MS, &second), 1);
    assert_string_equal(second[0].delivery_id, d[0].delivery_id);
    record(fx, second[0].delivery_id, true, 0);
    store_webhook_claimed_free(second, 1);
    assert_int_equal(claim(fx, NODE, LEASE_MS, &second), 1);
    assert_string_equal(second[0].rec.session_id, sid1);
    assert_string_not_equal(second[0].delivery_id, d[0].delivery_id);
    store_webhook_claimed_free(second, 1);
    store_webhook_claimed_free(d, 2);
}

/* Nodes claiming at once (threads with handles of their own, as nodes of a cluster) never
 * take the same delivery. */
#define CLAIMERS 4
#define SESSIONS 60
typedef struct {
    const char *target;
    char name[16];
    char (*got)[STORE_DELIVERY_ID_LEN + 1];
    size_t count;
} claimer_t;

static void *claim_all(void *arg) {
    claimer_t *c = arg;
    store_t *s = NULL;
    char err[512] = "";
    if (store_open(c->target, &s, err, sizeof err) != 0) return NULL;
    for (;;) {
        store_delivery_t *d = NULL;
        size_t n = 0;
        if (store_webhook_claim(s, c->name, LEASE_MS, 3, &d, &n) != 0 || n == 0) break;
        for (size_t i = 0; i < n; i++) snprintf(c->got[c->count++], STORE_DELIVERY_ID_LEN + 1, "%s", d[i].delivery_id);
        store_webhook_claimed_free(d, n);
    }
    store_close(s);
    return NULL;
}

static void test_concurrent_claims_take_each_delivery_once(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    for (uint32_t i = 1; i <= SESSIONS; i++) save(fx, "acme", i, SESSION_FINISHED);
    claimer_t c[CLAIMERS];
    pthread_t t[CLAIMERS];
    for (int i = 0; i < CLAIMERS; i++) {
        c[i] = (claimer_t){.target = fx->target, .got = calloc(SESSIONS, STORE_DELIVERY_ID_LEN + 1)};
        snprintf(c[i].name, sizeof c[i].name, "node-%d", i);
        assert_int_equal(pthread_create(&t[i], NULL, claim_all, &c[i]), 0);
    }
    size_t total = 0;
    for (int i = 0; i < CLAIMERS; i++) {
        pthread_join(t[i], NULL);
        total += c[i].count;
    }
    assert_int_equal(total, SESSIONS);
    for (int i = 0; i < CLAIMERS; i++)
        for (size_t a = 0; a < c[i].count; a++)
            for (int j = 0; j < CLAIMERS; j++)
                for (size_t b = 0; b < c[j].count; b++)
                    if ((i != j || a != b) && strcmp(c[i].got[a], c[j].got[b]) == 0) fail_msg("claimed twice: %s", c[i].got[a]);
    for (int i = 0; i < CLAIMERS; i++) free(c[i].got);
}

static void test_deliveries_survive_a_reopen(void **state) {
    store_fixture_t *fx = *state;
    add_customer(fx, "acme");
    char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
    add_webhook(fx, "acme", "http://a.example/hook", id, secret);
    save(fx, "acme", 1, SESSION_FINISHED);
    store_fixture_reopen(fx);
    store_delivery_t *d = NULL;
    assert_int_equal(claim(fx, NODE, LEASE_MS, &d), 1);
    store_webhook_claimed_free(d, 1);
}

int main(void) {
    int skip = store_fixture_skip_code(store_fixture_is_pg() ? "store_webhooks_pg" : "store_webhooks");
    if (skip) return skip;
    const struct CMUnitTest tests[] = {
        TEST(test_webhook_add_draws_an_id_and_a_secret_and_lists_it),
        TEST(test_webhook_add_and_list_refuse_unknown_customers),
        TEST(test_webhook_remove_takes_its_pending_deliveries),
        TEST(test_a_session_that_ends_gets_one_delivery_per_webhook),
        TEST(test_a_session_saved_already_ended_gets_a_delivery_but_an_import_does_not),
        TEST(test_orphans_and_session_end_enqueue_deliveries),
        TEST(test_a_claim_is_exclusive_until_its_lease_ends),
        TEST(test_delivered_is_done_and_listed),
        TEST(test_a_failed_attempt_waits_for_its_next_time_and_a_give_up_fails_it),
        TEST(test_an_uncounted_outcome_gives_the_claim_back),
        TEST(test_a_node_gives_back_its_own_claims_only),
        TEST(test_prune_deletes_only_done_deliveries_older_than_the_cutoff),
        TEST(test_deliveries_of_one_session_go_in_order),
        TEST(test_concurrent_claims_take_each_delivery_once),
        TEST(test_deliveries_survive_a_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
