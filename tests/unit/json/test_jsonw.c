/* The JSON writer (and the growable buffer under it), and the session record's JSON form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "json/jsonw.h"
#include "session/record.h"

static char *render(void (*fn)(jsonw_t *)) {
    buf_t b;
    buf_init(&b);
    jsonw_t w;
    jsonw_init(&w, &b);
    fn(&w);
    assert_false(jsonw_failed(&w));
    return buf_steal(&b, NULL);
}

static void nested(jsonw_t *w) {
    jsonw_object_begin(w);
    jsonw_key(w, "a");
    jsonw_array_begin(w);
    jsonw_int(w, 1);
    jsonw_int(w, -2);
    jsonw_object_begin(w);
    jsonw_object_end(w);
    jsonw_array_begin(w);
    jsonw_array_end(w);
    jsonw_array_end(w);
    jsonw_key(w, "b");
    jsonw_bool(w, true);
    jsonw_key(w, "c");
    jsonw_null(w);
    jsonw_key(w, "d");
    jsonw_string(w, NULL);
    jsonw_object_end(w);
}

static void test_commas_and_nesting(void **state) {
    (void)state;
    char *s = render(nested);
    assert_string_equal(s, "{\"a\":[1,-2,{},[]],\"b\":true,\"c\":null,\"d\":null}");
    free(s);
}

static void escapes(jsonw_t *w) { jsonw_string_n(w, "q\"b\\s/\n\r\t\b\f\x01\x1f\xc3\xa9", 15); }

static void test_string_escapes(void **state) {
    (void)state;
    char *s = render(escapes);
    /* Control characters escaped; UTF-8 bytes pass through untouched. */
    assert_string_equal(s, "\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\xc3\xa9\"");
    free(s);
}

/* Every escapable byte at every position of a long string: the word-at-a-time scan and the
 * byte-wise tail must both notice it; bytes >= 0x80 and DEL must pass untouched. */
static void test_escape_at_every_position(void **state) {
    (void)state;
    const unsigned char specials[] = {'"', '\\', '\n', 0x01, 0x1f, 0x00};
    const char *escaped[] = {"\\\"", "\\\\", "\\n", "\\u0001", "\\u001f", "\\u0000"};
    for (size_t k = 0; k < sizeof specials; k++)
        for (size_t pos = 0; pos < 41; pos++) {
            char in[41], want[64];
            for (size_t i = 0; i < 41; i++) in[i] = (char)(i % 3 == 0 ? 0x7f : i % 3 == 1 ? 0xc3 : 'a' + i % 26);
            in[pos] = (char)specials[k];
            size_t o = 0;
            want[o++] = '"';
            for (size_t i = 0; i < 41; i++) {
                if (i == pos) {
                    memcpy(want + o, escaped[k], strlen(escaped[k]));
                    o += strlen(escaped[k]);
                } else {
                    want[o++] = in[i];
                }
            }
            want[o++] = '"';
            buf_t b;
            buf_init(&b);
            jsonw_t w;
            jsonw_init(&w, &b);
            jsonw_string_n(&w, in, sizeof in);
            assert_int_equal(b.len, o);
            assert_memory_equal(b.data, want, o);
            buf_free(&b);
        }
}

static void test_seconds_ms(void **state) {
    (void)state;
    const struct { int64_t ms; const char *want; } cases[] = {
        {209444, "209.444"}, {45200, "45.2"}, {12000, "12"}, {0, "0"}, {1, "0.001"}, {10, "0.01"},
        {120, "0.12"}, {1050, "1.05"}, {INT64_C(9007199254740991), "9007199254740.991"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf_t b;
        buf_init(&b);
        jsonw_t w;
        jsonw_init(&w, &b);
        jsonw_seconds_ms(&w, cases[i].ms);
        assert_string_equal(b.data, cases[i].want);
        buf_free(&b);
    }
}

static void test_int_extremes(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    jsonw_t w;
    jsonw_init(&w, &b);
    jsonw_array_begin(&w);
    jsonw_int(&w, INT64_MAX);
    jsonw_int(&w, INT64_MIN);
    jsonw_array_end(&w);
    assert_string_equal(b.data, "[9223372036854775807,-9223372036854775808]");
    buf_free(&b);
}

static void test_buf_growth(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    for (int i = 0; i < 10000; i++) assert_int_equal(buf_printf(&b, "%05d", i), 0);
    assert_int_equal(b.len, 50000);
    assert_memory_equal(b.data + 49995, "09999", 5);
    assert_int_equal(b.data[b.len], '\0');
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "%s", big), 0); /* longer than printf's stack buffer */
    assert_int_equal(b.len, 999);
    size_t len;
    char *s = buf_steal(&b, &len);
    assert_int_equal(len, 999);
    assert_null(b.data);
    free(s);
}

static void test_record_field_order_and_types(void **state) {
    (void)state;
    session_record_t r = {0};
    strcpy(r.session_id, "0193A4F2-7B3C-7D4E-8F5A-1B2C3D4E5F60");
    r.api_name = "scraping_browser1";
    r.status = SESSION_FAILED;
    r.target_url = "https://www.example.com";
    r.end_url = NULL;
    r.navigations = 4;
    r.timestamp_ms = INT64_C(1765911221999); /* 2025-12-16T18:53:41.999Z: truncated, not rounded */
    r.duration_ms = 45200;
    r.captcha = CAPTCHA_SOLVED;
    r.bandwidth = 123456789;
    r.error_code = "unknown";
    r.error_message = "Error";
    buf_t b;
    buf_init(&b);
    jsonw_t w;
    jsonw_init(&w, &b);
    session_record_write_json(&r, &w);
    assert_string_equal(b.data,
                        "{\"session_id\":\"0193A4F2-7B3C-7D4E-8F5A-1B2C3D4E5F60\",\"api_name\":\"scraping_browser1\","
                        "\"status\":\"failed\",\"target_url\":\"https://www.example.com\",\"end_url\":null,"
                        "\"navigations\":4,\"timestamp\":\"2025-12-16T18:53:41Z\",\"duration\":45.2,"
                        "\"captcha\":\"solved\",\"bandwidth\":123456789,"
                        "\"error\":{\"code\":\"unknown\",\"message\":\"Error\"}}");
    buf_reset(&b);
    r.status = SESSION_RUNNING;
    r.duration_ms = SESSION_DURATION_NULL;
    r.error_code = r.error_message = NULL;
    jsonw_init(&w, &b);
    session_record_write_json(&r, &w);
    assert_non_null(strstr(b.data, "\"duration\":null,"));
    assert_non_null(strstr(b.data, "\"error\":null}"));
    buf_free(&b);
}

static void test_enum_names(void **state) {
    (void)state;
    assert_int_equal(session_status_from_name("finished", 8), SESSION_FINISHED);
    assert_int_equal(session_status_from_name("Finished", 8), -1);
    assert_int_equal(session_status_from_name("all", 3), -1);
    assert_int_equal(captcha_from_name("detected", 8), CAPTCHA_DETECTED);
    assert_int_equal(captcha_from_name("none ", 5), -1);
    assert_string_equal(session_status_name(SESSION_RUNNING), "running");
    assert_string_equal(captcha_name(CAPTCHA_FAILED), "failed");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commas_and_nesting), cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_escape_at_every_position),
        cmocka_unit_test(test_seconds_ms),         cmocka_unit_test(test_int_extremes),
        cmocka_unit_test(test_buf_growth),         cmocka_unit_test(test_record_field_order_and_types),
        cmocka_unit_test(test_enum_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
