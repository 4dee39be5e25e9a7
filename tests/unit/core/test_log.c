/* core/log: the text and JSON forms of a line, levels, one line per call, repeats folded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>

#include "core/log.h"

static char path[] = "/tmp/browserd-test-log-XXXXXX";
static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }

/* Everything written since the last call. */
static char *take_log(void) {
    static long offset;
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    fseek(f, offset, SEEK_SET);
    char *s = calloc(1, (size_t)(end - offset) + 1);
    assert_int_equal(fread(s, 1, (size_t)(end - offset), f), (size_t)(end - offset));
    fclose(f);
    offset = end;
    return s;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int setup(void **state) {
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    log_set_clock(fake_clock);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (!getenv("KEEP_LOG")) unlink(path);
    return 0;
}

static void test_text_line(void **state) {
    (void)state;
    char err[200];
    assert_int_equal(log_setup(LOG_TEXT, LOG_INFO, path, err, sizeof err), 0);
    log_event(LOG_INFO, "gateway", "session_end", "session=%s status=%s detail=\"%s\"", "abc", "failed",
              "two\nlines");
    char *s = take_log();
    assert_non_null(strstr(s, " level=info module=gateway event=session_end session=abc status=failed "
                              "detail=\"two lines\"\n"));
    assert_true(strncmp(s, "ts=20", 5) == 0);
    assert_int_equal(count_lines(s), 1);
    free(s);
}

static void test_levels(void **state) {
    (void)state;
    char err[200];
    assert_int_equal(log_setup(LOG_TEXT, LOG_WARN, path, err, sizeof err), 0);
    assert_false(log_enabled(LOG_INFO));
    log_event(LOG_INFO, "m", "quiet", "%s", "");
    log_event(LOG_ERROR, "m", "loud", "%s", "");
    char *s = take_log();
    assert_null(strstr(s, "quiet"));
    assert_non_null(strstr(s, "level=error module=m event=loud"));
    free(s);
    log_level_t l;
    assert_int_equal(log_parse_level("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_parse_level("verbose", &l), -1);
    log_format_t f;
    assert_int_equal(log_parse_format("json", &f), 0);
    assert_int_equal(log_parse_format("xml", &f), -1);
}

static void test_json_line(void **state) {
    (void)state;
    char err[200];
    assert_int_equal(log_setup(LOG_JSON, LOG_DEBUG, path, err, sizeof err), 0);
    log_event(LOG_WARN, "proxy", "error", "port=%d target=\"%s\" detail=\"%s\" ms=%s code=%s neg=%d",
              8080, "a.example:443", "say \"hi\" now", "0.125", "007", -3);
    char *s = take_log();
    assert_int_equal(count_lines(s), 1);
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
    assert_string_equal(cJSON_GetObjectItem(j, "module")->valuestring, "proxy");
    assert_string_equal(cJSON_GetObjectItem(j, "event")->valuestring, "error");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "port")));
    assert_int_equal(cJSON_GetObjectItem(j, "port")->valueint, 8080);
    assert_string_equal(cJSON_GetObjectItem(j, "target")->valuestring, "a.example:443");
    /* a quote inside a quoted value does not end it */
    assert_string_equal(cJSON_GetObjectItem(j, "detail")->valuestring, "say \"hi\" now");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "ms")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "code"))); /* 007 is not a JSON number */
    assert_int_equal(cJSON_GetObjectItem(j, "neg")->valueint, -3);
    assert_non_null(cJSON_GetObjectItem(j, "ts"));
    cJSON_Delete(j);
    free(s);
    /* a line too long is cut and still parses */
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    log_event(LOG_INFO, "m", "big", "v=\"%s\"", big);
    free(big);
    s = take_log();
    j = cJSON_Parse(s);
    assert_non_null(j);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated")));
    cJSON_Delete(j);
    free(s);
}

static void test_repeats_fold(void **state) {
    (void)state;
    char err[200];
    assert_int_equal(log_setup(LOG_TEXT, LOG_INFO, path, err, sizeof err), 0);
    fake_now = 1000000;
    for (int i = 0; i < 30; i++)
        log_event_repeating(LOG_INFO, "proxy", "error", "x.example|ERR_NAME_NOT_RESOLVED", "target=x.example n=%d", i);
    log_event_repeating(LOG_INFO, "proxy", "error", "y.example|ERR_NAME_NOT_RESOLVED", "target=y.example n=0");
    char *s = take_log();
    assert_int_equal(count_lines(s), 2); /* the first of each kind */
    assert_non_null(strstr(s, "target=x.example n=0\n"));
    assert_non_null(strstr(s, "target=y.example n=0\n"));
    free(s);
    log_flush_repeats(false); /* inside the window: nothing yet */
    s = take_log();
    assert_string_equal(s, "");
    free(s);
    fake_now += LOG_REPEAT_WINDOW_MS;
    log_flush_repeats(false);
    s = take_log();
    assert_int_equal(count_lines(s), 1); /* y had no repeats */
    assert_non_null(strstr(s, "target=x.example n=29 repeated=29 window_s=60\n"));
    free(s);
    /* after the window, the next one is shown again */
    fake_now += LOG_REPEAT_WINDOW_MS + 1;
    log_flush_repeats(false); /* forgets both kinds (quiet for a window) */
    log_event_repeating(LOG_INFO, "proxy", "error", "x.example|ERR_NAME_NOT_RESOLVED", "target=x.example n=30");
    log_event_repeating(LOG_INFO, "proxy", "error", "x.example|ERR_NAME_NOT_RESOLVED", "target=x.example n=31");
    log_flush_repeats(true);
    s = take_log();
    assert_int_equal(count_lines(s), 2);
    assert_non_null(strstr(s, "target=x.example n=30\n"));
    assert_non_null(strstr(s, "n=31 repeated=1"));
    free(s);
}

static void test_reopen(void **state) {
    (void)state;
    char err[200];
    assert_int_equal(log_setup(LOG_TEXT, LOG_INFO, path, err, sizeof err), 0);
    char moved[64];
    snprintf(moved, sizeof moved, "%s.1", path);
    assert_int_equal(rename(path, moved), 0);
    log_event(LOG_INFO, "m", "before", "%s", "");
    assert_int_equal(log_reopen(err, sizeof err), 0);
    log_event(LOG_INFO, "m", "after", "%s", "");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "event=after"));
    unlink(moved);
    assert_int_equal(log_setup(LOG_TEXT, LOG_INFO, "/nonexistent-dir/x.log", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/x.log"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_line),  cmocka_unit_test(test_levels), cmocka_unit_test(test_json_line),
        cmocka_unit_test(test_repeats_fold), cmocka_unit_test(test_reopen),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
