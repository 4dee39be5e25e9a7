/* The API's 200 bodies, byte for byte, from a real catalog: the list envelope with its
 * pagination, one session, the health check. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_responses.h"
#include "core/uuid.h"

#define T0_MS INT64_C(1764547200000) /* 2025-12-01T00:00:00Z */

/* Session n (1..9) of "cust_a": n seconds after T0, so the default order (newest first) is
 * n descending. */
static void put_session(catalog_t *c, int n) {
    session_record_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.session_id, sizeof r.session_id, "0192f5e8-7b3c-7def-8a12-00000000000%c", '0' + n);
    r.api_name = "scraping_browser1";
    r.status = SESSION_FINISHED;
    r.target_url = "https://www.example.com/";
    r.navigations = n;
    r.timestamp_ms = T0_MS + n * 1000;
    r.duration_ms = 12345;
    r.bandwidth = 2048;
    assert_int_equal(catalog_put(c, "cust_a", &r), 0);
}

#define SESSION_JSON(n)                                                                                            \
    "{\"session_id\":\"0192f5e8-7b3c-7def-8a12-00000000000" #n "\",\"api_name\":\"scraping_browser1\","            \
    "\"status\":\"finished\",\"target_url\":\"https://www.example.com/\",\"end_url\":null,\"navigations\":" #n     \
    ",\"timestamp\":\"2025-12-01T00:00:0" #n "Z\",\"duration\":12.345,\"captcha\":\"none\",\"bandwidth\":2048,"    \
    "\"error\":null}"

static int setup(void **state) {
    catalog_t *c = catalog_new();
    if (!c) return -1;
    *state = c;
    return 0;
}

static int teardown(void **state) {
    catalog_free(*state);
    return 0;
}

/* The list body for this query string, as a NUL-terminated string (free it). */
static char *list_body(catalog_t *c, const char *customer, const char *qs) {
    session_query_t q;
    char details[128];
    assert_int_equal(session_query_parse(qs, strlen(qs), &q, details, sizeof details), 0);
    buf_t out;
    buf_init(&out);
    assert_int_equal(api_responses_list(&out, c, customer, &q), 0);
    session_query_free(&q);
    return buf_steal(&out, NULL);
}

static void test_list_without_sessions_is_the_empty_envelope(void **state) {
    char *body = list_body(*state, "cust_a", "");
    assert_string_equal(body, "{\"sessions\":[],\"count\":0,\"total\":0,\"pagination\":{\"offset\":0,\"limit\":50,"
                              "\"has_more\":false,\"next_offset\":null}}");
    free(body);
}

static void test_page_with_more_after_it_names_the_next_offset(void **state) {
    catalog_t *c = *state;
    for (int n = 1; n <= 3; n++) put_session(c, n);
    char *body = list_body(c, "cust_a", "limit=2");
    assert_string_equal(body, "{\"sessions\":[" SESSION_JSON(3) "," SESSION_JSON(2) "],\"count\":2,\"total\":3,"
                              "\"pagination\":{\"offset\":0,\"limit\":2,\"has_more\":true,\"next_offset\":2}}");
    free(body);
}

static void test_last_page_has_no_next_offset(void **state) {
    catalog_t *c = *state;
    for (int n = 1; n <= 3; n++) put_session(c, n);
    char *body = list_body(c, "cust_a", "limit=2&offset=2");
    assert_string_equal(body, "{\"sessions\":[" SESSION_JSON(1) "],\"count\":1,\"total\":3,"
                              "\"pagination\":{\"offset\":2,\"limit\":2,\"has_more\":false,\"next_offset\":null}}");
    free(body);
}

static void test_offset_past_the_end_is_an_empty_page_with_the_total(void **state) {
    catalog_t *c = *state;
    for (int n = 1; n <= 3; n++) put_session(c, n);
    char *body = list_body(c, "cust_a", "offset=10");
    assert_string_equal(body, "{\"sessions\":[],\"count\":0,\"total\":3,\"pagination\":{\"offset\":10,\"limit\":50,"
                              "\"has_more\":false,\"next_offset\":null}}");
    free(body);
}

static void test_session_body_wraps_the_session(void **state) {
    catalog_t *c = *state;
    put_session(c, 4);
    uint8_t id[16];
    const char *text = "0192F5E8-7B3C-7DEF-8A12-000000000004";
    assert_int_equal(uuid_parse(text, strlen(text), id), 0);
    buf_t out;
    buf_init(&out);
    assert_int_equal(api_responses_session(&out, c, "cust_a", id), 0);
    assert_string_equal(out.data, "{\"session\":" SESSION_JSON(4) "}");
    buf_free(&out);
}

static void test_session_of_an_unknown_id_is_enoent(void **state) {
    catalog_t *c = *state;
    put_session(c, 4);
    uint8_t id[16] = {0};
    buf_t out;
    buf_init(&out);
    assert_int_equal(api_responses_session(&out, c, "cust_a", id), -ENOENT);
    buf_free(&out);
}

static void test_health_body_names_the_session_count(void **state) {
    (void)state;
    buf_t out;
    buf_init(&out);
    assert_int_equal(api_responses_health(&out, 1200000), 0);
    assert_string_equal(out.data, "{\"status\":\"ok\",\"sessions\":1200000}");
    buf_free(&out);
}

#define RESPONSES_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        RESPONSES_TEST(test_list_without_sessions_is_the_empty_envelope),
        RESPONSES_TEST(test_page_with_more_after_it_names_the_next_offset),
        RESPONSES_TEST(test_last_page_has_no_next_offset),
        RESPONSES_TEST(test_offset_past_the_end_is_an_empty_page_with_the_total),
        RESPONSES_TEST(test_session_body_wraps_the_session),
        RESPONSES_TEST(test_session_of_an_unknown_id_is_enoent),
        RESPONSES_TEST(test_health_body_names_the_session_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
