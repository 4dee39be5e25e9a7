/* The catalog's string pool: interning, reference counts, reuse of freed ids, growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/string_pool.h"

static int setup(void **state) {
    static string_pool_t pool;
    if (string_pool_init(&pool) != 0) return -1;
    *state = &pool;
    return 0;
}

static int teardown(void **state) {
    string_pool_free(*state);
    return 0;
}

static uint32_t intern(string_pool_t *p, const char *s) { return string_pool_intern(p, s, strlen(s)); }

static void test_null_is_id_0_and_reads_back_as_null(void **state) {
    string_pool_t *p = *state;
    assert_int_equal(string_pool_intern(p, NULL, 0), 0);
    assert_null(string_pool_get(p, 0));
    assert_int_equal(string_pool_len(p, 0), 0);
    assert_int_equal(p->bytes, 0);
}

static void test_empty_string_is_a_string_not_null(void **state) {
    string_pool_t *p = *state;
    uint32_t id = string_pool_intern(p, "", 0);
    assert_int_not_equal(id, 0);
    assert_int_not_equal(id, UINT32_MAX);
    assert_string_equal(string_pool_get(p, id), "");
}

static void test_equal_strings_share_one_id(void **state) {
    string_pool_t *p = *state;
    uint32_t a = intern(p, "https://a/");
    uint32_t b = intern(p, "https://a/");
    assert_int_equal(a, b);
    assert_int_equal(p->entries[a].refs, 2);
    assert_int_equal(p->bytes, sizeof "https://a/"); /* stored once */
}

static void test_strings_differing_in_length_or_case_get_their_own_ids(void **state) {
    string_pool_t *p = *state;
    uint32_t ab = intern(p, "ab"), abc = intern(p, "abc"), AB = intern(p, "AB");
    assert_int_not_equal(ab, abc);
    assert_int_not_equal(ab, AB);
    assert_int_not_equal(abc, AB);
    assert_string_equal(string_pool_get(p, ab), "ab");
    assert_string_equal(string_pool_get(p, abc), "abc");
    assert_string_equal(string_pool_get(p, AB), "AB");
}

static void test_intern_keeps_a_nul_terminated_copy_of_len_bytes(void **state) {
    string_pool_t *p = *state;
    char source[] = "zone_abcdef";
    uint32_t id = string_pool_intern(p, source, 6);
    memset(source, 'x', sizeof source - 1);
    assert_string_equal(string_pool_get(p, id), "zone_a");
    assert_int_equal(string_pool_len(p, id), 6);
    assert_int_equal(intern(p, "zone_a"), id); /* the same string as a whole */
}

static void test_string_stays_until_its_last_release(void **state) {
    string_pool_t *p = *state;
    uint32_t a = intern(p, "kept");
    uint32_t b = intern(p, "kept");
    string_pool_release(p, a);
    assert_string_equal(string_pool_get(p, b), "kept");
    assert_int_equal(p->bytes, sizeof "kept");
    string_pool_release(p, b);
    assert_null(p->entries[b].str);
    assert_int_equal(p->bytes, 0);
}

static void test_release_of_id_0_is_ignored(void **state) {
    string_pool_t *p = *state;
    uint32_t id = intern(p, "x");
    string_pool_release(p, 0);
    assert_int_equal(p->entries[id].refs, 1);
    assert_int_equal(p->bytes, 2);
}

static void test_released_string_is_not_found_again(void **state) {
    string_pool_t *p = *state;
    uint32_t id = intern(p, "gone");
    string_pool_release(p, id);
    uint32_t again = intern(p, "gone");
    assert_int_equal(p->entries[again].refs, 1); /* a new entry, not a revived reference */
    assert_string_equal(string_pool_get(p, again), "gone");
}

static void test_freed_id_is_reused_by_the_next_new_string(void **state) {
    string_pool_t *p = *state;
    uint32_t a = intern(p, "a"), b = intern(p, "b");
    (void)a;
    uint32_t count = p->count;
    string_pool_release(p, b);
    uint32_t c = intern(p, "c");
    assert_int_equal(c, b);
    assert_int_equal(p->count, count); /* no new slot */
    assert_string_equal(string_pool_get(p, c), "c");
    assert_int_equal(intern(p, "a"), a); /* the chain of "a" survived b's removal */
}

static void test_many_strings_grow_the_pool_and_stay_findable(void **state) {
    string_pool_t *p = *state;
    enum { N = 5000 }; /* past the initial 1024 entries and 1024 buckets, several times */
    uint32_t cap = p->cap, buckets = p->bucket_mask + 1;
    static uint32_t ids[N];
    char tmp[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(tmp, sizeof tmp, "s%d", i);
        ids[i] = string_pool_intern(p, tmp, (size_t)n);
        assert_int_not_equal(ids[i], UINT32_MAX);
    }
    assert_true(p->cap > cap);
    assert_true(p->bucket_mask + 1 > buckets);
    for (int i = 0; i < N; i++) {
        int n = snprintf(tmp, sizeof tmp, "s%d", i);
        assert_int_equal(string_pool_intern(p, tmp, (size_t)n), ids[i]);
        assert_int_equal(p->entries[ids[i]].refs, 2);
        assert_string_equal(string_pool_get(p, ids[i]), tmp);
    }
}

#define POOL_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        POOL_TEST(test_null_is_id_0_and_reads_back_as_null),
        POOL_TEST(test_empty_string_is_a_string_not_null),
        POOL_TEST(test_equal_strings_share_one_id),
        POOL_TEST(test_strings_differing_in_length_or_case_get_their_own_ids),
        POOL_TEST(test_intern_keeps_a_nul_terminated_copy_of_len_bytes),
        POOL_TEST(test_string_stays_until_its_last_release),
        POOL_TEST(test_release_of_id_0_is_ignored),
        POOL_TEST(test_released_string_is_not_found_again),
        POOL_TEST(test_freed_id_is_reused_by_the_next_new_string),
        POOL_TEST(test_many_strings_grow_the_pool_and_stay_findable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
