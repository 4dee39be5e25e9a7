/* The catalog's index (catalog_index.c) through its private header: after any sequence of
 * changes every sorted array holds exactly the rows it should, in the order of its key; bulk
 * and row-by-row indexing agree; ids are found; strings are released. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog_internal.h"
#include "catalog/catalog_query.h"
#include "core/uuid.h"
#include "session/url_match.h"

#define T0_MS INT64_C(1764547200000)

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd_below(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static const char *const zones[] = {"zone_a", "Zone_a", "zone_b"};
static const char *const urls[] = {"https://www.example.com/a", "https://EXAMPLE.com/", "http://shop.example.org/x",
                                   "https://www.example.com/A", "ftp://files.example.net/f", NULL};

/* Session n with random fields; strings are borrowed literals (the catalog copies). */
static session_record_t random_session(uint32_t n) {
    session_record_t r;
    memset(&r, 0, sizeof r);
    uint8_t id[16] = {0x01, 0x92, 0, 0, 0, 0, 0x70, 0, 0x80};
    memcpy(id + 12, &n, 4);
    uuid_format(id, r.session_id);
    r.api_name = (char *)zones[rnd_below(3)];
    r.status = (session_status_t)rnd_below(3);
    r.target_url = (char *)urls[rnd_below(6)];
    r.end_url = (char *)urls[rnd_below(6)];
    r.timestamp_ms = T0_MS + rnd_below(50) * 1000;
    r.duration_ms = r.status == SESSION_RUNNING ? SESSION_DURATION_NULL : (int64_t)rnd_below(5) * 100;
    r.bandwidth = rnd_below(4) * 10;
    if (r.status == SESSION_FAILED) {
        r.error_code = "page_navigated_error";
        r.error_message = "net::ERR_NAME_NOT_RESOLVED";
    }
    return r;
}

/* ---- the invariant: each array is exactly its rows, strictly ordered by its key ---- */

typedef bool (*member_fn)(const crow_t *w, uint32_t arg);

static bool any_row(const crow_t *w, uint32_t unused) { return (void)unused, w != NULL; }
static bool has_duration(const crow_t *w, uint32_t unused) {
    return (void)unused, w->duration_ms != SESSION_DURATION_NULL;
}
static bool is_running(const crow_t *w, uint32_t unused) {
    return (void)unused, w->duration_ms == SESSION_DURATION_NULL;
}
static bool has_status(const crow_t *w, uint32_t s) { return w->status == s; }
static bool has_target(const crow_t *w, uint32_t unused) { return (void)unused, w->target_url != 0; }
static bool has_end(const crow_t *w, uint32_t unused) { return (void)unused, w->end_url != 0; }
static bool in_zone(const crow_t *w, uint32_t z) { return w->zone == z; }
static bool in_zone_status(const crow_t *w, uint32_t zs) { return w->zone == zs / 4 && w->status == zs % 4; }
static bool on_target_host(const crow_t *w, uint32_t h) { return w->target_host == h; }
static bool on_end_host(const crow_t *w, uint32_t h) { return w->end_host == h; }

static int url_key(const string_pool_t *pool, uint32_t a, uint32_t b) {
    return url_casecmp(string_pool_get(pool, a), string_pool_len(pool, a), string_pool_get(pool, b),
                       string_pool_len(pool, b));
}
static int key_target(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    int r = url_key(pool, c->rows[a].target_url, c->rows[b].target_url);
    return r ? r : key_ts(c, pool, a, b);
}
static int key_end(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    int r = url_key(pool, c->rows[a].end_url, c->rows[b].end_url);
    return r ? r : key_ts(c, pool, a, b);
}

static void check_array(const customer_t *c, const string_pool_t *pool, const rowvec_t *v, row_cmp_fn key,
                        member_fn member, uint32_t arg, const char *what) {
    uint32_t want = 0;
    for (uint32_t r = 0; r < c->indexed; r++) want += member(&c->rows[r], arg);
    if (v->n != want) fail_msg("%s (%u): %u rows, expected %u", what, arg, v->n, want);
    for (uint32_t i = 0; i < v->n; i++) {
        if (v->v[i] >= c->indexed || !member(&c->rows[v->v[i]], arg))
            fail_msg("%s (%u): row %u does not belong", what, arg, v->v[i]);
        if (i > 0 && key(c, pool, v->v[i - 1], v->v[i]) >= 0) fail_msg("%s (%u): not ordered at %u", what, arg, i);
    }
}

static void assert_index_consistent(const customer_t *c, const string_pool_t *pool) {
    assert_false(c->broken);
    check_array(c, pool, &c->by_ts, key_ts, any_row, 0, "by_ts");
    check_array(c, pool, &c->by_bw, key_bw, any_row, 0, "by_bw");
    check_array(c, pool, &c->by_dur, key_dur, has_duration, 0, "by_dur");
    check_array(c, pool, &c->running, key_ts, is_running, 0, "running");
    check_array(c, pool, &c->by_target_url, key_target, has_target, 0, "by_target_url");
    check_array(c, pool, &c->by_end_url, key_end, has_end, 0, "by_end_url");
    for (uint32_t s = 0; s < SESSION_STATUS_COUNT; s++)
        check_array(c, pool, &c->by_status[s], key_ts, has_status, s, "by_status");
    for (uint32_t z = 0; z < c->nzones; z++) {
        check_array(c, pool, &c->zones[z].all, key_ts, in_zone, z, "zone");
        for (uint32_t s = 0; s < SESSION_STATUS_COUNT; s++)
            check_array(c, pool, &c->zones[z].by_status[s], key_ts, in_zone_status, z * 4 + s, "zone status");
    }
    for (uint32_t i = 0; i < c->nhosts; i++) {
        uint32_t h = c->host_by_rev[i];
        check_array(c, pool, &c->hosts[h].target_rows, key_ts, on_target_host, h, "host target");
        check_array(c, pool, &c->hosts[h].end_rows, key_ts, on_end_host, h, "host end");
    }
}

static void assert_same_array(const rowvec_t *a, const rowvec_t *b) {
    assert_int_equal(a->n, b->n);
    if (a->n) assert_memory_equal(a->v, b->v, a->n * sizeof *a->v);
}

/* ---- helpers ---- */

typedef struct {
    catalog_t *cat;
    customer_t *c;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx || !(fx->cat = catalog_new())) return -1;
    fx->c = catalog_index_add_customer(fx->cat, "cust");
    if (!fx->c) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    catalog_free(fx->cat);
    free(fx);
    return 0;
}

static void put(fixture_t *fx, const session_record_t *r, bool defer) {
    assert_int_equal(catalog_index_put(fx->c, &fx->cat->pool, r, defer), 0);
}

static int count_row(void *ctx, const session_record_t *view) {
    (void)view;
    ++*(int *)ctx;
    return 0;
}

static void finish(fixture_t *fx) { assert_int_equal(catalog_index_finish(fx->c, &fx->cat->pool), 0); }

/* ---- tests ---- */

static void test_rows_put_one_by_one_keep_every_array_exact_and_ordered(void **state) {
    fixture_t *fx = *state;
    for (uint32_t n = 0; n < 400; n++) {
        session_record_t r = random_session(n);
        put(fx, &r, false);
    }
    assert_int_equal(fx->c->indexed, 400);
    assert_index_consistent(fx->c, &fx->cat->pool);
}

static void test_replaced_rows_move_to_their_new_place_in_every_array(void **state) {
    fixture_t *fx = *state;
    for (uint32_t n = 0; n < 300; n++) {
        session_record_t r = random_session(n);
        put(fx, &r, false);
    }
    for (int i = 0; i < 1000; i++) { /* new status, zone, URLs, times: every key moves */
        session_record_t r = random_session(rnd_below(300));
        put(fx, &r, false);
    }
    assert_int_equal(fx->c->nrows, 300);
    assert_index_consistent(fx->c, &fx->cat->pool);
}

static void test_bulk_rebuild_gives_the_arrays_of_row_by_row_indexing(void **state) {
    fixture_t *fx = *state;
    fixture_t *bulk = NULL;
    assert_int_equal(setup((void **)&bulk), 0);
    uint64_t seed = rng_state;
    for (uint32_t n = 0; n < 3000; n++) {
        session_record_t r = random_session(n);
        put(fx, &r, false);
    }
    rng_state = seed;
    for (uint32_t n = 0; n < 3000; n++) {
        session_record_t r = random_session(n);
        put(bulk, &r, true);
    }
    assert_int_equal(bulk->c->indexed, 0); /* waiting, invisible */
    finish(bulk);
    assert_index_consistent(bulk->c, &bulk->cat->pool);
    const customer_t *a = fx->c, *b = bulk->c;
    assert_same_array(&a->by_ts, &b->by_ts);
    assert_same_array(&a->by_bw, &b->by_bw);
    assert_same_array(&a->by_dur, &b->by_dur);
    assert_same_array(&a->running, &b->running);
    assert_same_array(&a->by_target_url, &b->by_target_url);
    assert_same_array(&a->by_end_url, &b->by_end_url);
    for (int s = 0; s < SESSION_STATUS_COUNT; s++) assert_same_array(&a->by_status[s], &b->by_status[s]);
    teardown((void **)&bulk);
}

static void test_rows_waiting_on_top_of_indexed_rows_join_the_arrays_at_finish(void **state) {
    fixture_t *fx = *state;
    for (uint32_t n = 0; n < 2000; n++) {
        session_record_t r = random_session(n);
        put(fx, &r, n >= 1900); /* 100 waiting: few enough to be inserted one by one */
    }
    assert_int_equal(fx->c->indexed, 1900);
    finish(fx);
    assert_int_equal(fx->c->indexed, 2000);
    assert_index_consistent(fx->c, &fx->cat->pool);
}

static void test_new_row_waits_while_earlier_rows_wait(void **state) {
    fixture_t *fx = *state;
    session_record_t r = random_session(1);
    put(fx, &r, false);
    r = random_session(2);
    put(fx, &r, true);
    r = random_session(3);
    put(fx, &r, false); /* not deferred, but row 2 waits before it */
    assert_int_equal(fx->c->indexed, 1);
    r = random_session(2); /* a waiting row replaced: still waiting */
    put(fx, &r, false);
    assert_int_equal(fx->c->indexed, 1);
    assert_index_consistent(fx->c, &fx->cat->pool);
    finish(fx);
    assert_int_equal(fx->c->indexed, 3);
    assert_index_consistent(fx->c, &fx->cat->pool);
}

static void test_broken_arrays_are_rebuilt_by_the_next_finish(void **state) {
    fixture_t *fx = *state;
    for (uint32_t n = 0; n < 50; n++) {
        session_record_t r = random_session(n);
        put(fx, &r, false);
    }
    fx->c->broken = true; /* as an array update that ran out of memory leaves it */
    fx->c->by_ts.n = 0;
    session_query_t q;
    session_query_init(&q);
    catalog_page_info_t info;
    int visited = 0;
    assert_int_equal(catalog_list(fx->cat, "cust", &q, count_row, &visited, &info), -ENOMEM);
    assert_int_equal(visited, 0);
    finish(fx);
    assert_index_consistent(fx->c, &fx->cat->pool);
}

static void test_every_row_is_found_by_its_id_after_the_id_table_grows(void **state) {
    fixture_t *fx = *state;
    enum { N = 5000 }; /* the id table starts with 1024 slots, half full at most */
    for (uint32_t n = 0; n < N; n++) {
        session_record_t r = random_session(n);
        put(fx, &r, true);
    }
    for (uint32_t n = 0; n < N; n++) {
        session_record_t r = random_session(n);
        uint8_t id[16];
        assert_int_equal(uuid_parse(r.session_id, 36, id), 0);
        assert_int_equal(catalog_index_row(fx->c, id), n);
    }
    uint8_t unknown[16] = {0xff};
    assert_int_equal(catalog_index_row(fx->c, unknown), -1);
}

static void test_hosts_are_kept_in_reversed_name_order(void **state) {
    fixture_t *fx = *state;
    static const char *const hosts[] = {"https://b.example.com/", "https://example.com/", "https://a.example.com/",
                                        "https://example.org/",   "https://WWW.EXAMPLE.COM/", "https://xample.com/"};
    for (uint32_t n = 0; n < 6; n++) {
        session_record_t r = random_session(n);
        r.target_url = (char *)hosts[n];
        r.end_url = NULL;
        put(fx, &r, false);
    }
    /* Each host is its lowercase name written backwards, so that the hosts of a domain
     * ("example.com" and its subdomains, not "xample.com") are neighbours. */
    static const char *const want[] = {"gro.elpmaxe",   "moc.elpmax",    "moc.elpmaxe",
                                       "moc.elpmaxe.a", "moc.elpmaxe.b", "moc.elpmaxe.www"};
    const customer_t *c = fx->c;
    assert_int_equal(c->nhosts, 6);
    for (uint32_t i = 0; i < c->nhosts; i++) assert_string_equal(c->hosts[c->host_by_rev[i]].reversed, want[i]);
}

static void test_replacing_a_row_releases_its_old_strings(void **state) {
    fixture_t *fx = *state;
    session_record_t r = random_session(7);
    r.api_name = "zone_a";
    r.target_url = "https://www.example.com/a";
    r.end_url = "https://www.example.com/b";
    r.status = SESSION_FAILED;
    r.error_code = "page_navigated_error";
    r.error_message = "net::ERR_NAME_NOT_RESOLVED";
    put(fx, &r, false);
    r = random_session(7);
    r.api_name = "zone_a";
    r.target_url = r.end_url = NULL;
    r.status = SESSION_RUNNING;
    r.error_code = r.error_message = NULL;
    put(fx, &r, false);
    assert_int_equal(fx->cat->pool.bytes, sizeof "zone_a"); /* only the zone's name is left */
}

#define INDEX_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        INDEX_TEST(test_rows_put_one_by_one_keep_every_array_exact_and_ordered),
        INDEX_TEST(test_replaced_rows_move_to_their_new_place_in_every_array),
        INDEX_TEST(test_bulk_rebuild_gives_the_arrays_of_row_by_row_indexing),
        INDEX_TEST(test_rows_waiting_on_top_of_indexed_rows_join_the_arrays_at_finish),
        INDEX_TEST(test_new_row_waits_while_earlier_rows_wait),
        INDEX_TEST(test_broken_arrays_are_rebuilt_by_the_next_finish),
        INDEX_TEST(test_every_row_is_found_by_its_id_after_the_id_table_grows),
        INDEX_TEST(test_hosts_are_kept_in_reversed_name_order),
        INDEX_TEST(test_replacing_a_row_releases_its_old_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
