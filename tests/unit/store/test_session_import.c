/* Unit tests of the JSONL import format (src/store/session_import.c, docs/import.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/session_import.h"

/* Each field's JSON text; a line is built from them so one test changes one field. A NULL
 * field is left out of the line. */
typedef struct {
    const char *session_id, *api_name, *status, *target_url, *end_url, *navigations, *timestamp, *duration,
        *captcha, *bandwidth, *error;
} fields_t;

static fields_t finished_fields(void) {
    return (fields_t){
        .session_id = "\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"",
        .api_name = "\"scraping_browser1\"",
        .status = "\"finished\"",
        .target_url = "\"https://www.example.com/\"",
        .end_url = "\"https://www.example.com/cart\"",
        .navigations = "3",
        .timestamp = "\"2025-12-01T10:00:00Z\"",
        .duration = "209.444",
        .captcha = "\"none\"",
        .bandwidth = "123456",
        .error = "null",
    };
}

static fields_t failed_fields(void) {
    fields_t f = finished_fields();
    f.status = "\"failed\"";
    f.error = "{\"code\":\"page_navigated_error\",\"message\":\"net::ERR_NAME_NOT_RESOLVED https://x.invalid/\"}";
    return f;
}

static fields_t running_fields(void) {
    fields_t f = finished_fields();
    f.status = "\"running\"";
    f.duration = "null";
    return f;
}

static const char *line_of(const fields_t *f) {
    static char line[8192];
    const char *names[] = {"session_id", "api_name", "status",  "target_url", "end_url", "navigations",
                           "timestamp",  "duration", "captcha", "bandwidth",  "error"};
    const char *values[] = {f->session_id, f->api_name, f->status,  f->target_url, f->end_url, f->navigations,
                            f->timestamp,  f->duration, f->captcha, f->bandwidth,  f->error};
    size_t n = 0;
    n += (size_t)snprintf(line + n, sizeof line - n, "{");
    bool first = true;
    for (size_t i = 0; i < 11; i++) {
        if (!values[i]) continue;
        n += (size_t)snprintf(line + n, sizeof line - n, "%s\"%s\":%s", first ? "" : ",", names[i], values[i]);
        first = false;
    }
    snprintf(line + n, sizeof line - n, "}");
    return line;
}

static void parse_ok(const char *line, session_record_t *rec) {
    char err[256] = "";
    int rc = session_import_parse_line(line, strlen(line), rec, err, sizeof err);
    if (rc != 0) fail_msg("rejected: %s\nline: %s", err, line);
}

/* The line must be refused with a message containing `expect`. */
static void reject_line(const char *line, size_t len, const char *expect) {
    session_record_t rec;
    char err[256] = "";
    int rc = session_import_parse_line(line, len, &rec, err, sizeof err);
    if (rc != -1) fail_msg("accepted: %.*s", (int)len, line);
    if (!strstr(err, expect)) fail_msg("message \"%s\" lacks \"%s\" for %.*s", err, expect, (int)len, line);
    /* A refused record holds nothing to free. */
    assert_null(rec.api_name);
    assert_null(rec.target_url);
    assert_null(rec.error_code);
}

static void reject(const fields_t *f, const char *expect) {
    const char *line = line_of(f);
    reject_line(line, strlen(line), expect);
}

static void test_valid_finished(void **state) {
    (void)state;
    fields_t f = finished_fields();
    session_record_t rec;
    parse_ok(line_of(&f), &rec);
    assert_string_equal(rec.session_id, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    assert_string_equal(rec.api_name, "scraping_browser1");
    assert_int_equal(rec.status, SESSION_FINISHED);
    assert_string_equal(rec.target_url, "https://www.example.com/");
    assert_string_equal(rec.end_url, "https://www.example.com/cart");
    assert_int_equal(rec.navigations, 3);
    assert_int_equal(rec.timestamp_ms, INT64_C(1764583200000));
    assert_int_equal(rec.duration_ms, 209444);
    assert_int_equal(rec.captcha, CAPTCHA_NONE);
    assert_int_equal(rec.bandwidth, 123456);
    assert_null(rec.error_code);
    assert_null(rec.error_message);
    session_record_free(&rec);
}

static void test_valid_running_and_failed(void **state) {
    (void)state;
    fields_t f = running_fields();
    f.target_url = f.end_url = "null";
    f.navigations = "0";
    f.captcha = "\"detected\"";
    session_record_t rec;
    parse_ok(line_of(&f), &rec);
    assert_int_equal(rec.status, SESSION_RUNNING);
    assert_int_equal(rec.duration_ms, SESSION_DURATION_NULL);
    assert_null(rec.target_url);
    assert_null(rec.end_url);
    assert_int_equal(rec.captcha, CAPTCHA_DETECTED);
    session_record_free(&rec);

    f = failed_fields();
    f.captcha = "\"solved\"";
    parse_ok(line_of(&f), &rec);
    assert_int_equal(rec.status, SESSION_FAILED);
    assert_string_equal(rec.error_code, "page_navigated_error");
    assert_string_equal(rec.error_message, "net::ERR_NAME_NOT_RESOLVED https://x.invalid/");
    assert_int_equal(rec.captcha, CAPTCHA_SOLVED);
    session_record_free(&rec);

    /* An empty message is allowed; the code must not be empty. */
    f.error = "{\"message\":\"\",\"code\":\"job_killed\"}";
    f.captcha = "\"failed\"";
    parse_ok(line_of(&f), &rec);
    assert_string_equal(rec.error_code, "job_killed");
    assert_string_equal(rec.error_message, "");
    assert_int_equal(rec.captcha, CAPTCHA_FAILED);
    session_record_free(&rec);
}

static void test_valid_shapes(void **state) {
    (void)state;
    session_record_t rec;
    /* Any key order, white space, a trailing CR, an upper-case id kept as given. */
    const char *line = " { \"error\" : null , \"bandwidth\":0,\"captcha\":\"none\",\"duration\":12,"
                       "\"timestamp\":\"2025-12-01t02:00:00.1239+02:00\",\"navigations\":1,"
                       "\"end_url\":\"http://a\",\"target_url\":\"http://a\",\"status\":\"finished\","
                       "\"api_name\":\"z\",\"session_id\":\"0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B\"}\t\r";
    parse_ok(line, &rec);
    assert_string_equal(rec.session_id, "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B");
    assert_int_equal(rec.timestamp_ms, INT64_C(1764547200123));
    assert_int_equal(rec.duration_ms, 12000);
    assert_int_equal(rec.bandwidth, 0);
    session_record_free(&rec);

    /* Escapes decode to UTF-8; a surrogate pair is one code point. Raw UTF-8 passes. */
    fields_t f = finished_fields();
    f.api_name = "\"caf\\u00e9 \\ud83d\\ude00 \xc3\xa9\\n\"";
    parse_ok(line_of(&f), &rec);
    assert_string_equal(rec.api_name, "caf\xc3\xa9 \xf0\x9f\x98\x80 \xc3\xa9\n");
    session_record_free(&rec);

    /* Whole numbers in any JSON spelling; 2^53 is the largest. Durations round to ms. */
    f = finished_fields();
    f.navigations = "1e3";
    f.bandwidth = "9007199254740992";
    f.duration = "45.2";
    parse_ok(line_of(&f), &rec);
    assert_int_equal(rec.navigations, 1000);
    assert_int_equal(rec.bandwidth, INT64_C(9007199254740992));
    assert_int_equal(rec.duration_ms, 45200);
    session_record_free(&rec);

    f.duration = "0.0004";
    f.navigations = "7.0";
    parse_ok(line_of(&f), &rec);
    assert_int_equal(rec.duration_ms, 0);
    assert_int_equal(rec.navigations, 7);
    session_record_free(&rec);

    /* 255 bytes of api_name are fine. */
    char name[300];
    name[0] = '"';
    memset(name + 1, 'a', 255);
    strcpy(name + 256, "\"");
    f = finished_fields();
    f.api_name = name;
    parse_ok(line_of(&f), &rec);
    assert_int_equal(strlen(rec.api_name), 255);
    session_record_free(&rec);
}

static void test_keys(void **state) {
    (void)state;
    const char *names[] = {"session_id", "api_name", "status",  "target_url", "end_url", "navigations",
                           "timestamp",  "duration", "captcha", "bandwidth",  "error"};
    for (size_t i = 0; i < 11; i++) {
        fields_t f = finished_fields();
        const char **slots[] = {&f.session_id, &f.api_name, &f.status,  &f.target_url, &f.end_url, &f.navigations,
                                &f.timestamp,  &f.duration, &f.captcha, &f.bandwidth,  &f.error};
        *slots[i] = NULL;
        char expect[64];
        snprintf(expect, sizeof expect, "missing key \"%s\"", names[i]);
        reject(&f, expect);
    }
    char line[9000];
    fields_t f = finished_fields();
    snprintf(line, sizeof line, "%s", line_of(&f));
    line[strlen(line) - 1] = '\0';
    char with_extra[9100];
    snprintf(with_extra, sizeof with_extra, "%s,\"browser\":\"chrome\"}", line);
    reject_line(with_extra, strlen(with_extra), "unknown key \"browser\"");
    snprintf(with_extra, sizeof with_extra, "%s,\"status\":\"finished\"}", line);
    reject_line(with_extra, strlen(with_extra), "duplicate key \"status\"");
    /* Keys are case-sensitive, and a strange key is shown in a printable form. */
    snprintf(with_extra, sizeof with_extra, "%s,\"Status\":1}", line);
    reject_line(with_extra, strlen(with_extra), "unknown key \"Status\"");
    snprintf(with_extra, sizeof with_extra, "%s,\"a\\\"b\\u0001\":1}", line);
    reject_line(with_extra, strlen(with_extra), "unknown key \"a?b?\"");
}

static void test_not_json(void **state) {
    (void)state;
    reject_line("", 0, "invalid JSON");
    reject_line("   ", 3, "invalid JSON");
    reject_line("[1,2]", 5, "not a JSON object");
    reject_line("\"x\"", 3, "not a JSON object");
    reject_line("{", 1, "invalid JSON");
    reject_line("{}", 2, "missing key \"session_id\"");
    fields_t f = finished_fields();
    char line[9000];
    snprintf(line, sizeof line, "%s x", line_of(&f));
    reject_line(line, strlen(line), "text after the value");
    snprintf(line, sizeof line, "%s{}", line_of(&f));
    reject_line(line, strlen(line), "text after the value");
    /* cJSON would accept these; JSON does not. */
    f.navigations = "01";
    reject(&f, "leading zero");
    f.navigations = "1.";
    reject(&f, "bad number");
    f.navigations = "+1";
    reject(&f, "invalid JSON");
    f = finished_fields();
    f.api_name = "\"a\tb\"";
    reject(&f, "control character");
    f.api_name = "\"a\\u0000b\"";
    reject(&f, "\\u0000");
    f.api_name = "\"\\ud800\"";
    reject(&f, "surrogate");
    f.api_name = "\"\\udc00x\"";
    reject(&f, "surrogate");
    f.api_name = "\"\\x\"";
    reject(&f, "bad escape");
    f.error = "nul";
    reject(&f, "invalid JSON");
    /* A NUL byte in the line itself. */
    const char with_nul[] = "{\"a\":\"x\0y\"}";
    reject_line(with_nul, sizeof with_nul - 1, "control character");
    /* Deep nesting stops early instead of recursing without bound. */
    char deep[200];
    memset(deep, '[', sizeof deep);
    reject_line(deep, sizeof deep, "nested too deeply");
}

static void test_session_id(void **state) {
    (void)state;
    fields_t f = finished_fields();
    const char *bad[] = {"\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5\"", "\"0190a1b2c3d47e5f8a9b0c1d2e3f4a5b\"",
                         "\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g\"", "\"{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a}\"",
                         "\"\"", "12", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f.session_id = bad[i];
        reject(&f, "session_id: must be a UUID");
    }
}

static void test_api_name_and_urls(void **state) {
    (void)state;
    fields_t f = finished_fields();
    f.api_name = "\"\"";
    reject(&f, "api_name: must not be empty");
    f.api_name = "null";
    reject(&f, "api_name: must be a non-empty string");
    f.api_name = "7";
    reject(&f, "api_name");
    char name[300];
    name[0] = '"';
    memset(name + 1, 'a', 256);
    strcpy(name + 257, "\"");
    f.api_name = name;
    reject(&f, "api_name: longer than 255 bytes");

    f = finished_fields();
    f.target_url = "\"\"";
    reject(&f, "target_url: must not be empty");
    f.target_url = "5";
    reject(&f, "target_url: must be a non-empty string or null");
    f = finished_fields();
    f.end_url = "[]";
    reject(&f, "end_url");
}

static void test_utf8(void **state) {
    (void)state;
    const char *bad[] = {
        "\"\xff\"",             /* never valid */
        "\"\xc0\xaf\"",         /* overlong '/' */
        "\"\xe0\x80\xaf\"",     /* overlong, three bytes */
        "\"\xed\xa0\x80\"",     /* an encoded surrogate */
        "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
        "\"\xc3\"",             /* truncated */
        "\"\xe2\x82x\"",        /* bad continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fields_t f = finished_fields();
        f.api_name = bad[i];
        reject(&f, "api_name: not valid UTF-8");
        f = finished_fields();
        f.end_url = bad[i];
        reject(&f, "end_url: not valid UTF-8");
        f = failed_fields();
        char error[64];
        snprintf(error, sizeof error, "{\"code\":\"unknown\",\"message\":%s}", bad[i]);
        f.error = error;
        reject(&f, "error.message: not valid UTF-8");
    }
}

static void test_enums(void **state) {
    (void)state;
    fields_t f = finished_fields();
    const char *bad_status[] = {"\"Running\"", "\"done\"", "\"\"", "null", "1", "\"finished \""};
    for (size_t i = 0; i < sizeof bad_status / sizeof bad_status[0]; i++) {
        f.status = bad_status[i];
        reject(&f, "status: must be running, finished or failed");
    }
    f = finished_fields();
    const char *bad_captcha[] = {"\"None\"", "\"maybe\"", "null", "0", "\"\""};
    for (size_t i = 0; i < sizeof bad_captcha / sizeof bad_captcha[0]; i++) {
        f.captcha = bad_captcha[i];
        reject(&f, "captcha: must be none, detected, solved or failed");
    }
}

static void test_integers(void **state) {
    (void)state;
    const char *bad[] = {"-1", "1.5", "\"3\"", "null", "true", "9007199254740994", "1e300", "0.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fields_t f = finished_fields();
        f.navigations = bad[i];
        reject(&f, "navigations:");
        f = finished_fields();
        f.bandwidth = bad[i];
        reject(&f, "bandwidth:");
    }
}

static void test_timestamp(void **state) {
    (void)state;
    const char *bad[] = {"\"2025-12-01\"", "\"yesterday\"", "1764583200", "null", "\"2025-02-30T00:00:00Z\"",
                         "\"2025-12-01T10:00:00\"", "\"2025-12-01 10:00:00Z\"", "\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fields_t f = finished_fields();
        f.timestamp = bad[i];
        reject(&f, "timestamp:");
    }
}

static void test_duration(void **state) {
    (void)state;
    fields_t f = finished_fields();
    f.duration = "-0.5";
    reject(&f, "duration: must not be negative");
    f.duration = "\"12\"";
    reject(&f, "duration: must be a number");
    f.duration = "null";
    reject(&f, "duration: must be a number unless status is running");
    f.duration = "1e300";
    reject(&f, "duration: too large");
    f = failed_fields();
    f.duration = "null";
    reject(&f, "duration: must be a number unless status is running");
    f = running_fields();
    f.duration = "1.5";
    reject(&f, "duration: must be null while status is running");
}

static void test_error(void **state) {
    (void)state;
    fields_t f = finished_fields();
    f.error = "{\"code\":\"unknown\",\"message\":\"x\"}";
    reject(&f, "error: must be null unless status is failed");
    f = running_fields();
    f.error = "{\"code\":\"unknown\",\"message\":\"x\"}";
    reject(&f, "error: must be null unless status is failed");
    f = failed_fields();
    f.error = "null";
    reject(&f, "error: must be an object when status is failed");
    f.error = "\"boom\"";
    reject(&f, "error: must be an object or null");
    f.error = "{\"code\":\"unknown\"}";
    reject(&f, "error: missing key \"message\"");
    f.error = "{\"message\":\"x\"}";
    reject(&f, "error: missing key \"code\"");
    f.error = "{\"code\":\"a\",\"message\":\"x\",\"detail\":1}";
    reject(&f, "error: unknown key \"detail\"");
    f.error = "{\"code\":\"a\",\"code\":\"b\",\"message\":\"x\"}";
    reject(&f, "error: duplicate key \"code\"");
    f.error = "{\"code\":\"\",\"message\":\"x\"}";
    reject(&f, "error.code: must not be empty");
    f.error = "{\"code\":3,\"message\":\"x\"}";
    reject(&f, "error.code: must be a non-empty string");
    f.error = "{\"code\":\"a\",\"message\":null}";
    reject(&f, "error.message: must be a string");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_finished),  cmocka_unit_test(test_valid_running_and_failed),
        cmocka_unit_test(test_valid_shapes),    cmocka_unit_test(test_keys),
        cmocka_unit_test(test_not_json),        cmocka_unit_test(test_session_id),
        cmocka_unit_test(test_api_name_and_urls), cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_enums),           cmocka_unit_test(test_integers),
        cmocka_unit_test(test_timestamp),       cmocka_unit_test(test_duration),
        cmocka_unit_test(test_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
