/* The WebDriver documents browserd reads and writes: New Session as the driver gets it and as
 * the client gets its answer, the error document, command paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "webdriver/webdriver_proto.h"

static char *request(const char *body, char *err, size_t cap, int *rc) {
    char *out = NULL;
    *rc = webdriver_new_session_request(body, strlen(body), "127.0.0.1:9222", &out, err, cap);
    return out;
}

static void test_new_session_keeps_the_standard_capabilities_and_attaches(void **state) {
    (void)state;
    char err[256];
    int rc;
    char *out = request("{\"capabilities\":{\"alwaysMatch\":{\"browserName\":\"chrome\",\"pageLoadStrategy\":\"eager\","
                        "\"goog:chromeOptions\":{\"args\":[\"--headless\"],\"binary\":\"/x\"},\"platformName\":\"any\"},"
                        "\"firstMatch\":[{\"timeouts\":{\"script\":5000},\"pageLoadStrategy\":\"none\"},{\"acceptInsecureCerts\":true}]}}",
                        err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    cJSON *doc = cJSON_Parse(out);
    cJSON *always = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "capabilities"), "alwaysMatch");
    assert_string_equal(cJSON_GetObjectItem(always, "browserName")->valuestring, "chrome");
    /* alwaysMatch wins over firstMatch; only the first firstMatch entry is read */
    assert_string_equal(cJSON_GetObjectItem(always, "pageLoadStrategy")->valuestring, "eager");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(always, "timeouts"), "script")->valueint, 5000);
    assert_null(cJSON_GetObjectItem(always, "acceptInsecureCerts"));
    assert_null(cJSON_GetObjectItem(always, "platformName"));
    cJSON *chrome = cJSON_GetObjectItem(always, "goog:chromeOptions");
    assert_string_equal(cJSON_GetObjectItem(chrome, "debuggerAddress")->valuestring, "127.0.0.1:9222");
    assert_int_equal(cJSON_GetArraySize(chrome), 1); /* the client's args and binary are not applied */
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "capabilities"), "firstMatch"));
    cJSON_Delete(doc);
    free(out);
    /* an empty capabilities object is fine: chrome it is */
    out = request("{\"capabilities\":{}}", err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"browserName\":\"chrome\""));
    free(out);
}

static void test_new_session_refuses_what_browserd_cannot_give(void **state) {
    (void)state;
    const struct {
        const char *body;
        const char *says;
    } cases[] = {
        {"not json", "JSON object with a capabilities object"},
        {"{}", "capabilities object"},
        {"{\"capabilities\":[]}", "capabilities object"},
        {"{\"capabilities\":{\"alwaysMatch\":[]}}", "alwaysMatch must be an object"},
        {"{\"capabilities\":{\"firstMatch\":{}}}", "firstMatch an array"},
        {"{\"capabilities\":{\"firstMatch\":[1]}}", "firstMatch an array"},
        {"{\"capabilities\":{\"alwaysMatch\":{\"browserName\":\"firefox\"}}}", "browserName must be chrome"},
        {"{\"capabilities\":{\"firstMatch\":[{\"browserName\":7}]}}", "browserName must be chrome"},
        {"{\"capabilities\":{\"alwaysMatch\":{\"webSocketUrl\":true}}}", "BiDi"},
        {"{\"capabilities\":{\"alwaysMatch\":{\"proxy\":{\"proxyType\":\"direct\"}}}}", "proxy capability"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[256] = "";
        int rc;
        char *out = request(cases[i].body, err, sizeof err, &rc);
        assert_int_equal(rc, -EINVAL);
        assert_null(out);
        assert_non_null(strstr(err, cases[i].says));
    }
    char err[256];
    int rc;
    char *out = request("{\"capabilities\":{\"alwaysMatch\":{\"browserName\":\"chromium\",\"webSocketUrl\":false,\"proxy\":null}}}",
                        err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    free(out);
}

static void test_new_session_answer_gets_our_id_and_loses_the_attach_address(void **state) {
    (void)state;
    const char *answer = "{\"value\":{\"sessionId\":\"abc123\",\"capabilities\":{\"browserName\":\"chrome\","
                         "\"chrome\":{\"chromedriverVersion\":\"156\",\"userDataDir\":\"/tmp/p\"},"
                         "\"goog:chromeOptions\":{\"debuggerAddress\":\"127.0.0.1:9222\"}}}}";
    char *out = NULL;
    size_t len = 0;
    char driver_id[64];
    assert_int_equal(webdriver_new_session_answer(answer, strlen(answer), "01a2-ours", &out, &len, driver_id, sizeof driver_id), 0);
    assert_string_equal(driver_id, "abc123");
    assert_int_equal(len, strlen(out));
    cJSON *doc = cJSON_Parse(out);
    cJSON *value = cJSON_GetObjectItem(doc, "value");
    assert_string_equal(cJSON_GetObjectItem(value, "sessionId")->valuestring, "01a2-ours");
    cJSON *caps = cJSON_GetObjectItem(value, "capabilities");
    assert_null(cJSON_GetObjectItem(caps, "goog:chromeOptions"));
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(caps, "chrome"), "userDataDir"));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(caps, "chrome"), "chromedriverVersion")->valuestring, "156");
    cJSON_Delete(doc);
    free(out);
    const char *bad[] = {"", "{}", "{\"value\":{}}", "{\"value\":{\"sessionId\":\"\"}}", "{\"value\":{\"sessionId\":3}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(webdriver_new_session_answer(bad[i], strlen(bad[i]), "x", &out, &len, driver_id, sizeof driver_id),
                         -EINVAL);
    char tiny[4]; /* a driver id that does not fit is not cut */
    assert_int_equal(webdriver_new_session_answer(answer, strlen(answer), "x", &out, &len, tiny, sizeof tiny), -EINVAL);
}

static void test_error_body_and_session_paths(void **state) {
    (void)state;
    size_t len = 0;
    char *body = webdriver_error_body("invalid session id", "the \"session\" ended", &len);
    assert_string_equal(body, "{\"value\":{\"error\":\"invalid session id\",\"message\":\"the \\\"session\\\" ended\",\"stacktrace\":\"\"}}");
    assert_int_equal(len, strlen(body));
    free(body);
    const char *id, *rest;
    size_t n;
    assert_true(webdriver_session_path("/session/abc/element/x/click", &id, &n, &rest));
    assert_int_equal(n, 3);
    assert_memory_equal(id, "abc", 3);
    assert_string_equal(rest, "/element/x/click");
    assert_true(webdriver_session_path("/session/abc", &id, &n, &rest));
    assert_string_equal(rest, "");
    const char *not_commands[] = {"/session", "/session/", "/session//url", "/status", "/sessions/abc", ""};
    for (size_t i = 0; i < sizeof not_commands / sizeof *not_commands; i++)
        assert_false(webdriver_session_path(not_commands[i], &id, &n, &rest));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_session_keeps_the_standard_capabilities_and_attaches),
        cmocka_unit_test(test_new_session_refuses_what_browserd_cannot_give),
        cmocka_unit_test(test_new_session_answer_gets_our_id_and_loses_the_attach_address),
        cmocka_unit_test(test_error_body_and_session_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
