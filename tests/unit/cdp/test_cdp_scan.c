/* The CDP message scanner: reported members (top level only, escapes, duplicates, ids),
 * every class of invalid JSON, nesting limit, huge strings, the one-level lookup and the
 * string helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_scan.h"

static int scan(const char *s, cdp_msg_t *m) { return cdp_scan(s, strlen(s), m); }

static void assert_slice(cdp_slice_t sl, const char *want) {
    if (!want) {
        assert_null(sl.ptr);
        assert_int_equal(sl.len, 0);
        return;
    }
    assert_non_null(sl.ptr);
    assert_int_equal(sl.len, strlen(want));
    assert_memory_equal(sl.ptr, want, sl.len);
}

static void expect_valid(const char *s) {
    cdp_msg_t m;
    int rc = scan(s, &m);
    if (rc != 0)
        fail_msg("rejected valid JSON %s: %s at %zu", s, m.err, m.err_offset);
    /* Every document we accept, cJSON accepts too (it is more lenient, never stricter
     * within our depth limit); the fuzzer checks this at scale. */
    const char *endp = NULL;
    /* cJSON's "require NUL-terminated" wants the NUL inside the given length. */
    cJSON *j = cJSON_ParseWithLengthOpts(s, strlen(s) + 1, &endp, 1);
    if (!j)
        fail_msg("cJSON rejects %.200s", s);
    assert_true(cJSON_IsObject(j));
    cJSON_Delete(j);
}

static void expect_invalid_n(const char *s, size_t n, const char *why) {
    cdp_msg_t m;
    int rc = cdp_scan(s, n, &m);
    if (rc != -EINVAL)
        fail_msg("accepted invalid JSON (%s): %.*s", why, (int)n, s);
    assert_non_null(m.err);
    assert_true(m.err_offset <= n);
}

static void expect_invalid(const char *s, const char *why) { expect_invalid_n(s, strlen(s), why); }

/* ------------------------------------------------------------------------------------ */

static void test_command_event_response(void **state) {
    (void)state;
    cdp_msg_t m;
    const char *cmd = "{\"id\":12,\"method\":\"Page.navigate\",\"params\":{\"url\":\"https://a.b/\"},"
                      "\"sessionId\":\"9A3F\"}";
    assert_int_equal(scan(cmd, &m), 0);
    assert_int_equal(m.present, CDP_KEY_ID | CDP_KEY_METHOD | CDP_KEY_PARAMS | CDP_KEY_SESSION_ID);
    assert_int_equal(m.duplicate, 0);
    assert_true(m.id_is_int);
    assert_int_equal(m.id, 12);
    assert_slice(m.id_raw, "12");
    assert_slice(m.method, "Page.navigate");
    assert_false(m.method_escaped);
    assert_slice(m.params, "{\"url\":\"https://a.b/\"}");
    assert_slice(m.session_id, "9A3F");
    assert_false(m.session_id_escaped);
    assert_slice(m.result, NULL);
    assert_slice(m.error, NULL);
    /* Slices point into the input. */
    assert_ptr_equal(m.method.ptr, cmd + 19);

    const char *resp = "{\"id\":3,\"result\":{\"frameId\":\"F\",\"loaderId\":\"L\"}}";
    assert_int_equal(scan(resp, &m), 0);
    assert_int_equal(m.present, CDP_KEY_ID | CDP_KEY_RESULT);
    assert_slice(m.result, "{\"frameId\":\"F\",\"loaderId\":\"L\"}");
    assert_slice(m.method, NULL);

    const char *err = "{\"id\":4,\"error\":{\"code\":-32601,\"message\":\"'X.y' wasn't found\"}}";
    assert_int_equal(scan(err, &m), 0);
    assert_int_equal(m.present, CDP_KEY_ID | CDP_KEY_ERROR);
    assert_slice(m.error, "{\"code\":-32601,\"message\":\"'X.y' wasn't found\"}");

    const char *ev = "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"inner\","
                     "\"targetInfo\":{\"targetId\":\"T\"}},\"sessionId\":\"outer\"}";
    assert_int_equal(scan(ev, &m), 0);
    assert_int_equal(m.present, CDP_KEY_METHOD | CDP_KEY_PARAMS | CDP_KEY_SESSION_ID);
    assert_slice(m.session_id, "outer");

    /* Scalars and arrays as member values are reported raw. */
    assert_int_equal(scan("{\"params\":[1,{\"a\":2}],\"result\":null,\"error\":\"e\"}", &m), 0);
    assert_slice(m.params, "[1,{\"a\":2}]");
    assert_slice(m.result, "null");
    assert_slice(m.error, "\"e\"");
    assert_int_equal(scan("{}", &m), 0);
    assert_int_equal(m.present, 0);
}

static void test_nested_same_name_keys_ignored(void **state) {
    (void)state;
    cdp_msg_t m;
    assert_int_equal(scan("{\"params\":{\"id\":7,\"method\":\"inner\",\"sessionId\":\"in\","
                          "\"params\":1,\"result\":2,\"error\":3},\"method\":\"outer\"}",
                          &m),
                     0);
    assert_int_equal(m.present, CDP_KEY_PARAMS | CDP_KEY_METHOD);
    assert_slice(m.method, "outer");
    assert_int_equal(m.duplicate, 0);
    /* In arrays and deeper objects, before and after the top-level member. */
    assert_int_equal(scan("{\"a\":[{\"id\":1},[{\"method\":\"x\"}]],\"b\":{\"c\":{\"sessionId\":\"s\"}},"
                          "\"id\":2,\"z\":[{\"id\":3}]}",
                          &m),
                     0);
    assert_int_equal(m.present, CDP_KEY_ID);
    assert_int_equal(m.id, 2);
    assert_int_equal(m.duplicate, 0);
    /* Names appearing as string values are not members. */
    assert_int_equal(scan("{\"x\":\"id\",\"y\":[\"method\",\"sessionId\"],\"w\":\"params\"}", &m), 0);
    assert_int_equal(m.present, 0);
    /* Near-miss names. */
    assert_int_equal(scan("{\"Id\":1,\"ID\":1,\"id \":1,\"methods\":\"x\",\"sessionid\":\"s\",\"i\":1,"
                          "\"\":1,\"param\":{},\"results\":{}}",
                          &m),
                     0);
    assert_int_equal(m.present, 0);
}

static void test_escaped_names_and_values(void **state) {
    (void)state;
    cdp_msg_t m;
    /* Names are compared unescaped, as Chromium sees them: escaping cannot hide a method. */
    assert_int_equal(scan("{\"\\u0069d\":3,\"m\\u0065thod\":\"Browser.close\",\"sessionI\\u0064\":\"S\","
                          "\"\\u0070arams\":{},\"r\\u0065sult\":1,\"erro\\u0072\":2}",
                          &m),
                     0);
    assert_int_equal(m.present, 0x3f);
    assert_int_equal(m.id, 3);
    assert_slice(m.method, "Browser.close");
    /* An escaped name that decodes to something else is not a match. */
    assert_int_equal(scan("{\"i\\u0064x\":1,\"\\u0069\":2,\"\\\"id\":3}", &m), 0);
    assert_int_equal(m.present, 0);
    /* Escaped values: raw slice plus flag; helpers compare and decode. */
    assert_int_equal(scan("{\"method\":\"Page.\\u006eavigate\",\"sessionId\":\"a\\/b\\\"c\"}", &m), 0);
    assert_slice(m.method, "Page.\\u006eavigate");
    assert_true(m.method_escaped);
    assert_true(cdp_string_equals(m.method, "Page.navigate", 13));
    assert_false(cdp_string_equals(m.method, "Page.navigat", 12));
    assert_false(cdp_string_equals(m.method, "Page.navigatee", 14));
    assert_true(m.session_id_escaped);
    char buf[32];
    size_t n;
    assert_int_equal(cdp_string_decode(m.session_id, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "a/b\"c", 5);
    /* The escape flag is per member. */
    assert_int_equal(scan("{\"params\":\"\\n\",\"method\":\"plain\",\"x\":\"\\t\"}", &m), 0);
    assert_false(m.method_escaped);
    /* Strings that end in an escaped backslash or quote. */
    assert_int_equal(scan("{\"method\":\"a\\\\\",\"sessionId\":\"\\\"\"}", &m), 0);
    assert_slice(m.method, "a\\\\");
    assert_slice(m.session_id, "\\\"");
}

static void test_not_strings_and_duplicates(void **state) {
    (void)state;
    cdp_msg_t m;
    assert_int_equal(scan("{\"method\":5,\"sessionId\":{\"a\":1}}", &m), 0);
    assert_int_equal(m.present, CDP_KEY_METHOD | CDP_KEY_SESSION_ID);
    assert_int_equal(m.not_string, CDP_KEY_METHOD | CDP_KEY_SESSION_ID);
    assert_slice(m.method, NULL);
    assert_slice(m.session_id, NULL);
    assert_int_equal(scan("{\"id\":1,\"method\":\"a\",\"id\":2,\"method\":\"b\",\"params\":{},"
                          "\"params\":[]}",
                          &m),
                     0);
    assert_int_equal(m.duplicate, CDP_KEY_ID | CDP_KEY_METHOD | CDP_KEY_PARAMS);
    assert_int_equal(m.id, 1);
    assert_slice(m.method, "a");
    assert_slice(m.params, "{}");
    /* Duplicates through escapes count too. */
    assert_int_equal(scan("{\"method\":\"a\",\"\\u006dethod\":\"b\"}", &m), 0);
    assert_int_equal(m.duplicate, CDP_KEY_METHOD);
    assert_slice(m.method, "a");
}

static void expect_id(const char *raw, bool is_int, int64_t v) {
    char doc[128];
    snprintf(doc, sizeof doc, "{\"id\":%s}", raw);
    cdp_msg_t m;
    assert_int_equal(scan(doc, &m), 0);
    assert_int_equal(m.present, CDP_KEY_ID);
    assert_slice(m.id_raw, raw);
    if (is_int != m.id_is_int)
        fail_msg("id %s: is_int %d", raw, m.id_is_int);
    if (is_int)
        assert_true(m.id == v);
}

static void test_ids(void **state) {
    (void)state;
    expect_id("0", true, 0);
    expect_id("-0", true, 0);
    expect_id("1", true, 1);
    expect_id("-1", true, -1);
    expect_id("2147483648", true, 2147483648LL);
    expect_id("9223372036854775807", true, INT64_MAX);
    expect_id("-9223372036854775808", true, INT64_MIN);
    expect_id("9223372036854775808", false, 0);
    expect_id("-9223372036854775809", false, 0);
    expect_id("99999999999999999999999", false, 0);
    expect_id("1.0", false, 0);
    expect_id("1.5", false, 0);
    expect_id("1e3", false, 0);
    expect_id("1E+3", false, 0);
    expect_id("-1.5e-3", false, 0);
    expect_id("\"7\"", false, 0);
    expect_id("null", false, 0);
    expect_id("true", false, 0);
    expect_id("{}", false, 0);
    expect_id("[1]", false, 0);

    int64_t v;
    assert_int_equal(cdp_number_int((cdp_slice_t){"42", 2}, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cdp_number_int((cdp_slice_t){"9223372036854775808", 19}, &v), -ERANGE);
    assert_int_equal(cdp_number_int((cdp_slice_t){"1e999", 5}, &v), -EINVAL);
    assert_int_equal(cdp_number_int((cdp_slice_t){"99999999999999999999e1", 22}, &v), -EINVAL);
    assert_int_equal(cdp_number_int((cdp_slice_t){"01", 2}, &v), -EINVAL);
    assert_int_equal(cdp_number_int((cdp_slice_t){"-", 1}, &v), -EINVAL);
    assert_int_equal(cdp_number_int((cdp_slice_t){"", 0}, &v), -EINVAL);
    assert_int_equal(cdp_number_int((cdp_slice_t){NULL, 0}, &v), -EINVAL);
}

static void test_whitespace_everywhere(void **state) {
    (void)state;
    cdp_msg_t m;
    const char *s = " \t\r\n{ \t\r\n\"id\" \t\r\n: \t\r\n-5 \t\r\n, \"method\"\n:\n\"m\"\n,\"params\" : [ 1 ,"
                    " { } , [ ] , { \"a\" : true } , null ] \t\r\n} \t\r\n";
    assert_int_equal(scan(s, &m), 0);
    assert_int_equal(m.id, -5);
    assert_slice(m.method, "m");
    assert_slice(m.params, "[ 1 , { } , [ ] , { \"a\" : true } , null ]");
    expect_valid(s);
    expect_valid("{ }");
    expect_valid("{\"a\":[ ]}");
    /* Only the four JSON whitespace characters. */
    expect_invalid("\f{}", "form feed");
    expect_invalid("{}\v", "vertical tab");
    expect_invalid("{\x01}", "control");
    expect_invalid("\xc2\xa0{}", "NBSP");
    expect_invalid("\xef\xbb\xbf{}", "BOM");
}

static void test_valid_grammar(void **state) {
    (void)state;
    const char *ok[] = {
        "{\"a\":0}", "{\"a\":-0}", "{\"a\":0.0}", "{\"a\":-0.5e-10}", "{\"a\":1E5}", "{\"a\":1e+5}",
        "{\"a\":123456789012345678901234567890}", "{\"a\":1.7976931348623157e308}",
        "{\"a\":true,\"b\":false,\"c\":null}", "{\"a\":\"\"}", "{\"\":\"\"}",
        "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "{\"a\":\"\\u0000\\u001f\\u00e9\\uFFFF\\uabcd\"}",
        "{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\\uDBFF\\uDFFF\"}", "{\"a\":\"\x7f\"}",
        "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}", "{\"\xc3\xa9\":1}",
        "{\"a\":[[[[]]]],\"b\":{\"c\":{\"d\":{}}}}", "{\"a\":[1,\"2\",[3],{\"4\":4},true,null]}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        expect_valid(ok[i]);
}

static void test_invalid_structure(void **state) {
    (void)state;
    expect_invalid("", "empty");
    expect_invalid(" \n", "whitespace only");
    expect_invalid("[]", "array at top level");
    expect_invalid("\"s\"", "string at top level");
    expect_invalid("1", "number at top level");
    expect_invalid("true", "literal at top level");
    expect_invalid("null", "null at top level");
    expect_invalid("{", "unterminated");
    expect_invalid("{\"id\":1", "unterminated");
    expect_invalid("{\"a\"", "no colon, no value");
    expect_invalid("{\"a\":", "no value");
    expect_invalid("{\"a\":1,", "trailing comma, end");
    expect_invalid("{\"a\":1,}", "trailing comma");
    expect_invalid("{\"a\":[1,]}", "trailing comma in array");
    expect_invalid("{\"a\":[,1]}", "leading comma in array");
    expect_invalid("{,\"a\":1}", "leading comma");
    expect_invalid("{\"a\":1,,\"b\":2}", "double comma");
    expect_invalid("{\"a\" 1}", "missing colon");
    expect_invalid("{\"a\"::1}", "double colon");
    expect_invalid("{\"a\":1 \"b\":2}", "missing comma");
    expect_invalid("{\"a\":[1 2]}", "missing comma in array");
    expect_invalid("{a:1}", "unquoted name");
    expect_invalid("{'a':1}", "single quotes");
    expect_invalid("{\"a\":'x'}", "single-quoted value");
    expect_invalid("{1:1}", "number as name");
    expect_invalid("{\"a\":1} x", "trailing garbage");
    expect_invalid("{}{}", "two objects");
    expect_invalid("{}}", "extra closer");
    expect_invalid("{\"a\":[1}}", "mismatched closer");
    expect_invalid("{\"a\":{]}", "mismatched closer");
    expect_invalid("{\"a\":{\"b\":1]}", "mismatched closer");
    expect_invalid("{\"a\":[}", "mismatched closer");
    expect_invalid("{\"a\":}", "missing value");
    expect_invalid("{\"a\":1/*c*/}", "comment");
    expect_invalid_n("{}\0", 3, "trailing NUL");
    expect_invalid_n("{\"a\":1\0}", 8, "NUL inside");
    cdp_msg_t m;
    assert_int_equal(cdp_scan(NULL, 0, &m), -EINVAL);
    cdp_value_t v;
    assert_int_equal(cdp_object_get(NULL, 0, "a", 1, &v), -EINVAL);
    assert_int_equal(cdp_object_get("{\"\":1}", 6, NULL, 0, &v), 0);
}

static void test_invalid_literals_and_numbers(void **state) {
    (void)state;
    const char *bad[] = {"tru",  "True", "nul",  "nulll", "falsy", "NaN", "Infinity", "-Infinity",
                         "01",   "-01",  "00",   "+1",    ".5",    "1.",  "1.e5",     "1e",
                         "1e+",  "1E-",  "-",    "--1",   "0x10",  "1_0", "- 1",      "1.5.2",
                         "1e5e5", "0-1", "undefined", "t", "\"\\u\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"a\":%s}", bad[i]);
        expect_invalid(doc, bad[i]);
        snprintf(doc, sizeof doc, "{\"a\":[%s]}", bad[i]);
        expect_invalid(doc, bad[i]);
    }
    /* A literal cut by the end of input. */
    expect_invalid_n("{\"a\":true}", 8, "cut literal");
    expect_invalid_n("{\"a\":-}", 6, "cut number");
}

static void test_invalid_strings(void **state) {
    (void)state;
    expect_invalid("{\"a\":\"abc}", "unterminated");
    expect_invalid("{\"a\":\"abc\\\"}", "unterminated after escaped quote");
    expect_invalid("{\"abc}", "unterminated name");
    /* Every raw control character, in values and names. */
    for (int c = 0; c < 0x20; c++) {
        char doc[32];
        int n = snprintf(doc, sizeof doc, "{\"a\":\"x%cy\"}", c == 0 ? '?' : c);
        if (c == 0)
            doc[7] = 0;
        expect_invalid_n(doc, (size_t)n, "control character in value");
        n = snprintf(doc, sizeof doc, "{\"x%cy\":1}", c == 0 ? '?' : c);
        if (c == 0)
            doc[3] = 0;
        expect_invalid_n(doc, (size_t)n, "control character in name");
    }
    const char *bad_esc[] = {"\\a", "\\x41", "\\U0041", "\\'", "\\0", "\\u12", "\\u12G4", "\\u",
                             "\\uDC00", "\\uDFFF", "\\uD800", "\\uDBFF", "\\uD800\\u0041",
                             "\\uD800\\uD800", "\\uD800x", "\\uD800\\", "\\uD800\\n", "\\ ",
                             "\\\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_esc / sizeof *bad_esc; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"a\":\"%s\"}", bad_esc[i]);
        expect_invalid(doc, bad_esc[i]);
        snprintf(doc, sizeof doc, "{\"%s\":1}", bad_esc[i]);
        expect_invalid(doc, bad_esc[i]);
    }
    const char *bad_utf8[] = {"\x80",         "\xbf",         "\xc0\x80",     "\xc1\xbf",
                              "\xe0\x80\x80", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
                              "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                              "\xff",         "\xfe",         "\xc2",         "\xe2\x82",
                              "\xf0\x9f\x98", "\xc2\x41",     "\xe2\x28\xa1"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"a\":\"%s\"}", bad_utf8[i]);
        expect_invalid(doc, "invalid UTF-8 in value");
        snprintf(doc, sizeof doc, "{\"a\":\"x%s", bad_utf8[i]); /* cut at the end */
        expect_invalid(doc, "invalid UTF-8 at end");
        snprintf(doc, sizeof doc, "{\"%s\":1}", bad_utf8[i]);
        expect_invalid(doc, "invalid UTF-8 in name");
    }
}

/* The offending byte is reported. */
static void test_error_offsets(void **state) {
    (void)state;
    cdp_msg_t m;
    assert_int_equal(scan("{\"a\":[1,2,x]}", &m), -EINVAL);
    assert_int_equal(m.err_offset, 10);
    assert_string_equal(m.err, "unexpected character");
    assert_int_equal(scan("{\"a\":\"bc\\q\"}", &m), -EINVAL);
    assert_int_equal(m.err_offset, 8);
    assert_int_equal(scan("[1]", &m), -EINVAL);
    assert_int_equal(m.err_offset, 0);
    assert_int_equal(scan("{} ,", &m), -EINVAL);
    assert_int_equal(m.err_offset, 3);
}

static char *nested(int depth, int obj_every) {
    /* {"a": [ {"a": [ ... 1 ... ] } ] } style nesting, `depth` containers in total, the
     * outermost an object; every obj_every-th level an object, the others arrays. */
    char *s = malloc((size_t)depth * 8 + 16);
    assert_non_null(s);
    size_t n = 0;
    char kinds[2048];
    for (int i = 0; i < depth; i++) {
        bool obj = i == 0 || i % obj_every == 0;
        kinds[i] = obj ? '{' : '[';
        if (obj)
            n += (size_t)sprintf(s + n, "{\"a\":");
        else
            s[n++] = '[';
    }
    s[n++] = '1';
    for (int i = depth - 1; i >= 0; i--)
        s[n++] = kinds[i] == '{' ? '}' : ']';
    s[n] = 0;
    return s;
}

static void test_nesting_limit(void **state) {
    (void)state;
    for (int every = 1; every <= 3; every++) {
        char *ok = nested(CDP_SCAN_MAX_DEPTH, every);
        expect_valid(ok); /* cJSON accepts exactly this depth too */
        free(ok);
        char *bad = nested(CDP_SCAN_MAX_DEPTH + 1, every);
        cdp_msg_t m;
        assert_int_equal(scan(bad, &m), -EINVAL);
        assert_string_equal(m.err, "nesting too deep");
        /* cJSON draws the line at the same depth. */
        assert_null(cJSON_Parse(bad));
        free(bad);
    }
    /* Mismatched closers deep down (the level stack crosses 64-bit words). */
    char *s = nested(130, 2);
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '}' && s[i] != ']')
            continue;
        s[i] = s[i] == '}' ? ']' : '}';
        expect_invalid(s, "mismatched closer");
        s[i] = s[i] == '}' ? ']' : '}';
    }
    expect_valid(s);
    free(s);
}

/* Special bytes at every position around the 16/64-byte fast-path boundaries of strings. */
static void test_string_fast_path_offsets(void **state) {
    (void)state;
    char doc[400];
    for (size_t pos = 0; pos < 150; pos++) {
        for (int kind = 0; kind < 6; kind++) {
            memset(doc, 'a', sizeof doc);
            memcpy(doc, "{\"method\":\"", 11);
            char *body = doc + 11;
            size_t blen = 200;
            bool valid = true;
            switch (kind) {
            case 0: memcpy(body + pos, "\\\"", 2); break;            /* escaped quote */
            case 1: memcpy(body + pos, "\\u00e9", 6); break;         /* escape */
            case 2: memcpy(body + pos, "\xe2\x82\xac", 3); break;    /* 3-byte UTF-8 */
            case 3: body[pos] = '\x1f'; valid = false; break;        /* control */
            case 4: body[pos] = '\xc0'; valid = false; break;        /* invalid UTF-8 */
            case 5: blen = pos; break;                               /* string ends at pos */
            }
            memcpy(body + blen, "\"}", 2);
            size_t len = 11 + blen + 2;
            cdp_msg_t m;
            int rc = cdp_scan(doc, len, &m);
            if (valid) {
                assert_int_equal(rc, 0);
                assert_int_equal(m.method.len, blen);
                assert_int_equal(m.method_escaped, kind <= 1);
            } else {
                assert_int_equal(rc, -EINVAL);
                assert_int_equal(m.err_offset, 11 + pos);
            }
        }
    }
}

/* A 20 MB screenshot-like message: one huge base64 string inside result. */
static void test_huge_string(void **state) {
    (void)state;
    const size_t B = 20u << 20;
    const char *pre = "{\"id\":77,\"result\":{\"data\":\"";
    const char *post = "\"},\"sessionId\":\"ABCDEF\"}";
    size_t lp = strlen(pre), lq = strlen(post);
    char *s = malloc(lp + B + lq);
    assert_non_null(s);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memcpy(s, pre, lp);
    for (size_t i = 0; i < B; i++)
        s[lp + i] = b64[(i * 7 + (i >> 9)) & 63];
    memcpy(s + lp + B, post, lq);
    size_t len = lp + B + lq;
    cdp_msg_t m;
    assert_int_equal(cdp_scan(s, len, &m), 0);
    assert_int_equal(m.id, 77);
    assert_int_equal(m.result.len, B + 11);
    assert_ptr_equal(m.result.ptr, s + lp - 9);
    assert_slice(m.session_id, "ABCDEF");
    /* The string's body with an escape near its end ... */
    memcpy(s + lp + B - 10, "\\/", 2);
    assert_int_equal(cdp_scan(s, len, &m), 0);
    /* ... and with a control character or an invalid byte near the end. */
    s[lp + B - 3] = '\n';
    assert_int_equal(cdp_scan(s, len, &m), -EINVAL);
    assert_int_equal(m.err_offset, lp + B - 3);
    s[lp + B - 3] = (char)0x80;
    assert_int_equal(cdp_scan(s, len, &m), -EINVAL);
    assert_int_equal(m.err_offset, lp + B - 3);
    s[lp + B - 3] = 'A';
    /* Unterminated. */
    assert_int_equal(cdp_scan(s, lp + B - 1, &m), -EINVAL);
    assert_string_equal(m.err, "unterminated string");
    free(s);
}

static void test_object_get(void **state) {
    (void)state;
    const char *msg = "{\"method\":\"Target.targetInfoChanged\",\"params\":{\"targetInfo\":{"
                      "\"targetId\":\"T1\",\"type\":\"page\",\"title\":\"x\",\"url\":"
                      "\"https://example.com/a?b=1\\u0026c=2\",\"attached\":true,\"nested\":{\"url\":"
                      "\"no\"}}}}";
    cdp_msg_t m;
    assert_int_equal(scan(msg, &m), 0);
    cdp_value_t ti, url, v;
    assert_int_equal(cdp_object_get(m.params.ptr, m.params.len, "targetInfo", 10, &ti), 0);
    assert_int_equal(ti.type, CDP_T_OBJECT);
    assert_int_equal(cdp_object_get(ti.raw.ptr, ti.raw.len, "url", 3, &url), 0);
    assert_int_equal(url.type, CDP_T_STRING);
    assert_true(url.escaped);
    assert_slice(url.str, "https://example.com/a?b=1\\u0026c=2");
    assert_slice(url.raw, "\"https://example.com/a?b=1\\u0026c=2\"");
    char buf[64];
    size_t n;
    assert_int_equal(cdp_string_decode(url.str, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 29);
    assert_memory_equal(buf, "https://example.com/a?b=1&c=2", 29);
    assert_int_equal(cdp_object_get(ti.raw.ptr, ti.raw.len, "attached", 8, &v), 0);
    assert_int_equal(v.type, CDP_T_TRUE);
    /* One level only: "url" of the nested object is not a member of params. */
    assert_int_equal(cdp_object_get(m.params.ptr, m.params.len, "url", 3, &v), -ENOENT);
    assert_int_equal(cdp_object_get(m.params.ptr, m.params.len, "targetinfo", 10, &v), -ENOENT);
    /* Types, first occurrence, escaped names, non-ASCII names. */
    const char *o = " {\"n\":-1.5,\"f\":false,\"z\":null,\"a\":[1],\"s\":\"x\",\"s\":\"y\","
                    "\"\\u00e9t\\u00e9\":1,\"k\xc3\xa9y\":2} ";
    assert_int_equal(cdp_object_get(o, strlen(o), "n", 1, &v), 0);
    assert_int_equal(v.type, CDP_T_NUMBER);
    assert_slice(v.raw, "-1.5");
    assert_int_equal(cdp_object_get(o, strlen(o), "f", 1, &v), 0);
    assert_int_equal(v.type, CDP_T_FALSE);
    assert_int_equal(cdp_object_get(o, strlen(o), "z", 1, &v), 0);
    assert_int_equal(v.type, CDP_T_NULL);
    assert_int_equal(cdp_object_get(o, strlen(o), "a", 1, &v), 0);
    assert_int_equal(v.type, CDP_T_ARRAY);
    assert_int_equal(cdp_object_get(o, strlen(o), "s", 1, &v), 0);
    assert_slice(v.str, "x");
    assert_false(v.escaped);
    assert_int_equal(cdp_object_get(o, strlen(o), "\xc3\xa9t\xc3\xa9", 5, &v), 0);
    assert_slice(v.raw, "1");
    assert_int_equal(cdp_object_get(o, strlen(o), "k\xc3\xa9y", 4, &v), 0);
    assert_slice(v.raw, "2");
    /* Not an object, or invalid: -EINVAL. */
    assert_int_equal(cdp_object_get("[1]", 3, "a", 1, &v), -EINVAL);
    assert_int_equal(cdp_object_get("{\"a\":1", 6, "a", 1, &v), -EINVAL);
    assert_int_equal(cdp_object_get("{\"a\":1,\"b\":01}", 14, "a", 1, &v), -EINVAL);
}

static void test_string_helpers(void **state) {
    (void)state;
    char buf[64];
    size_t n;
    const char *raw = "\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00x";
    cdp_slice_t s = {raw, strlen(raw)};
    assert_int_equal(cdp_string_decode(s, buf, sizeof buf, &n), 0);
    const char want[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80x";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(buf, want, n);
    assert_true(cdp_string_equals(s, want, sizeof want - 1));
    /* The decoded form is never longer than the input: cap == len is enough. */
    assert_int_equal(cdp_string_decode(s, buf, s.len, &n), 0);
    assert_int_equal(cdp_string_decode(s, buf, sizeof want - 2, &n), -ENOSPC);
    /* \u0000 decodes to a NUL byte (which is why callers get lengths, not C strings). */
    cdp_slice_t z = {"a\\u0000b", 8};
    assert_int_equal(cdp_string_decode(z, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "a\0b", 3);
    assert_false(cdp_string_equals(z, "a", 1));
    /* Malformed escapes (unvalidated input) are refused, not misread. */
    cdp_slice_t bad = {"\\uD800", 6};
    assert_int_equal(cdp_string_decode(bad, buf, sizeof buf, &n), -EINVAL);
    assert_false(cdp_string_equals(bad, "?", 1));
    cdp_slice_t cut = {"ab\\", 3};
    assert_int_equal(cdp_string_decode(cut, buf, sizeof buf, &n), -EINVAL);
    assert_false(cdp_string_equals((cdp_slice_t){NULL, 0}, "", 0));
    assert_true(cdp_string_equals((cdp_slice_t){"", 0}, "", 0));
}

static void test_object_get_many_finds_several_members_in_one_pass(void **state) {
    (void)state;
    const char *o = "{\"requestId\":\"R1\",\"type\":\"Document\",\"x\":{\"requestId\":\"no\"},\"frameId\":\"F\","
                    "\"type\":\"Image\"}";
    static const cdp_slice_t keys[] = {{"requestId", 9}, {"type", 4}, {"frameId", 7}, {"absent", 6}};
    cdp_value_t v[4];
    unsigned found = 0;
    assert_int_equal(cdp_object_get_many(o, strlen(o), keys, 4, v, &found), 0);
    assert_int_equal(found, 7); /* the first three, not "absent" */
    assert_slice(v[0].str, "R1");    /* the top-level member, not the nested one */
    assert_slice(v[1].str, "Document"); /* the first occurrence */
    assert_slice(v[2].str, "F");
    assert_null(v[3].raw.ptr);
    assert_int_equal(cdp_object_get_many("{\"a\":", 5, keys, 1, v, &found), -EINVAL);
    assert_int_equal(cdp_object_get_many(o, strlen(o), keys, CDP_GET_MAX_KEYS + 1, v, &found), -EINVAL);
}

static void test_object_get_ci_compares_names_ignoring_ascii_case(void **state) {
    (void)state;
    const char *h = "{\"Content-Type\":\"text/html\",\"x-browserd-proxy-error\":\"ERR_X\",\"X-\\u0041\":\"esc\"}";
    cdp_value_t v;
    assert_int_equal(cdp_object_get_ci(h, strlen(h), "X-Browserd-Proxy-Error", 22, &v), 0);
    assert_slice(v.str, "ERR_X");
    assert_int_equal(cdp_object_get_ci(h, strlen(h), "content-type", 12, &v), 0);
    assert_slice(v.str, "text/html");
    assert_int_equal(cdp_object_get_ci(h, strlen(h), "x-a", 3, &v), 0); /* an escaped name */
    assert_slice(v.str, "esc");
    assert_int_equal(cdp_object_get(h, strlen(h), "content-type", 12, &v), -ENOENT); /* exact lookup */
    assert_int_equal(cdp_object_get_ci(h, strlen(h), "content-typ", 11, &v), -ENOENT);
}

static void test_array_get_walks_elements_of_every_type(void **state) {
    (void)state;
    const char *a = " [ {\"url\":\"a,]b\"} , [1,[2]] ,\"s\\\"]\", -1.5e3,true,null ] ";
    cdp_value_t v;
    assert_int_equal(cdp_array_get(a, strlen(a), 0, &v), 0);
    assert_int_equal(v.type, CDP_T_OBJECT);
    assert_slice(v.raw, "{\"url\":\"a,]b\"}");
    assert_int_equal(cdp_array_get(a, strlen(a), 1, &v), 0);
    assert_int_equal(v.type, CDP_T_ARRAY);
    assert_slice(v.raw, "[1,[2]]");
    assert_int_equal(cdp_array_get(a, strlen(a), 2, &v), 0);
    assert_int_equal(v.type, CDP_T_STRING);
    assert_true(v.escaped);
    assert_slice(v.str, "s\\\"]");
    assert_int_equal(cdp_array_get(a, strlen(a), 3, &v), 0);
    assert_slice(v.raw, "-1.5e3");
    assert_int_equal(cdp_array_get(a, strlen(a), 4, &v), 0);
    assert_int_equal(v.type, CDP_T_TRUE);
    assert_int_equal(cdp_array_get(a, strlen(a), 5, &v), 0);
    assert_int_equal(v.type, CDP_T_NULL);
    assert_int_equal(cdp_array_get(a, strlen(a), 6, &v), -ENOENT);
    assert_int_equal(cdp_array_get("[]", 2, 0, &v), -ENOENT);
    assert_int_equal(cdp_array_get("{}", 2, 0, &v), -EINVAL);
}

static void test_string_copy_and_dup_give_c_strings(void **state) {
    (void)state;
    const char *o = "{\"u\":\"a\\u0026b\",\"z\":\"a\\u0000b\",\"n\":1}";
    cdp_value_t u, z, n;
    assert_int_equal(cdp_object_get(o, strlen(o), "u", 1, &u), 0);
    assert_int_equal(cdp_object_get(o, strlen(o), "z", 1, &z), 0);
    assert_int_equal(cdp_object_get(o, strlen(o), "n", 1, &n), 0);
    char buf[8];
    assert_int_equal(cdp_string_copy(&u, buf, sizeof buf), 0);
    assert_string_equal(buf, "a&b");
    assert_int_equal(cdp_string_copy(&u, buf, 3), -ENOSPC); /* room for the NUL is needed */
    assert_int_equal(cdp_string_copy(&z, buf, sizeof buf), -EINVAL); /* no C string holds it */
    assert_int_equal(cdp_string_copy(&n, buf, sizeof buf), -EINVAL); /* not a string */
    char *d = cdp_string_dup(&u);
    assert_string_equal(d, "a&b");
    free(d);
    assert_null(cdp_string_dup(&z));
    assert_null(cdp_string_dup(&n));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_event_response),
        cmocka_unit_test(test_nested_same_name_keys_ignored),
        cmocka_unit_test(test_escaped_names_and_values),
        cmocka_unit_test(test_not_strings_and_duplicates),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_whitespace_everywhere),
        cmocka_unit_test(test_valid_grammar),
        cmocka_unit_test(test_invalid_structure),
        cmocka_unit_test(test_invalid_literals_and_numbers),
        cmocka_unit_test(test_invalid_strings),
        cmocka_unit_test(test_error_offsets),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_string_fast_path_offsets),
        cmocka_unit_test(test_huge_string),
        cmocka_unit_test(test_object_get),
        cmocka_unit_test(test_string_helpers),
        cmocka_unit_test(test_object_get_many_finds_several_members_in_one_pass),
        cmocka_unit_test(test_object_get_ci_compares_names_ignoring_ascii_case),
        cmocka_unit_test(test_array_get_walks_elements_of_every_type),
        cmocka_unit_test(test_string_copy_and_dup_give_c_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
