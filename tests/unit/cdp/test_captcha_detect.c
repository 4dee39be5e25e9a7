/* The parts of captcha detection and of the solver's protocol without I/O
 * (src/cdp/captcha_detect.c): which URLs trigger a look, what a look's answer is taken for
 * (and what of a page's DOM is refused), the createTask / getTaskResult bodies and replies,
 * the solver's HTTP responses and URLs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/captcha_detect.h"

static bool trig(const char *url) { return captcha_trigger_url(url, strlen(url)); }

static void test_triggers(void **state) {
    (void)state;
    assert_true(trig("https://www.google.com/recaptcha/api.js"));
    assert_true(trig("https://www.google.com/recaptcha/api.js?render=KEY"));
    assert_true(trig("https://www.recaptcha.net/recaptcha/enterprise.js"));
    assert_true(trig("https://www.google.com/recaptcha/api2/anchor?k=KEY&size=normal"));
    assert_true(trig("https://www.google.com/recaptcha/enterprise/anchor?k=KEY"));
    assert_true(trig("https://js.hcaptcha.com/1/api.js"));
    assert_true(trig("https://newassets.hcaptcha.com/captcha/v1/abc/static/hcaptcha.html#sitekey=x"));
    assert_true(trig("https://challenges.cloudflare.com/turnstile/v0/api.js?onload=f"));
    assert_true(trig("https://example.com/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=1"));
    assert_true(trig("https://static.geetest.com/static/js/gt.js"));
    assert_true(trig("https://static.geetest.com/v4/gt4.js"));
    assert_true(trig("http://127.0.0.1:8000/recaptcha/api.js")); /* the path, whatever the host */
    /* a site's own URLs, whatever their query says */
    assert_false(trig("https://example.com/"));
    assert_false(trig("https://example.com/app.js?u=/recaptcha/api.js&h=hcaptcha.com/1/api.js"));
    assert_false(trig("https://example.com/search#/recaptcha/api.js"));
    assert_false(trig("https://example.com/recaptcha.html"));
    assert_false(trig("https://example.com/api.js"));
    assert_false(trig(""));
    assert_false(captcha_trigger_url("https://www.google.com/recaptcha/api.js", 20)); /* the length counts, not a NUL */
}

static void test_kind_names(void **state) {
    (void)state;
    for (int k = 0; k < CAPTCHA_KIND_COUNT; k++) assert_int_equal(captcha_kind_from_name(captcha_kind_name((captcha_kind_t)k)), k);
    assert_int_equal(captcha_kind_from_name("nope"), -1);
    assert_int_equal(captcha_kind_from_name(NULL), -1);
    assert_string_equal(captcha_kind_name(CAPTCHA_KIND_COUNT), "unknown");
}

static int parse(const char *json, captcha_found_t *f, int cap) { return captcha_parse_detection(json, strlen(json), f, cap); }

static void test_parse_detection(void **state) {
    (void)state;
    captcha_found_t f[4];
    const char *ok = "{\"result\":{\"type\":\"object\",\"value\":["
                     "{\"kind\":\"recaptcha\",\"sitekey\":\"6Le-abc_1.x\",\"url\":\"https://s/p\",\"callback\":\"onOk\",\"action\":null},"
                     "{\"kind\":\"cf_challenge\",\"sitekey\":\"\",\"url\":\"https://s/c\",\"callback\":null,\"action\":null}]}}";
    assert_int_equal(parse(ok, f, 4), 2);
    assert_int_equal(f[0].kind, CAPTCHA_KIND_RECAPTCHA);
    assert_string_equal(f[0].sitekey, "6Le-abc_1.x");
    assert_string_equal(f[0].url, "https://s/p");
    assert_string_equal(f[0].callback, "onOk");
    assert_null(f[0].action);
    assert_int_equal(f[1].kind, CAPTCHA_KIND_CF_CHALLENGE);
    assert_string_equal(f[1].sitekey, "");
    assert_null(f[1].callback);
    captcha_found_free(&f[0]);
    captcha_found_free(&f[1]);
    /* cap */
    assert_int_equal(parse(ok, f, 1), 1);
    captcha_found_free(&f[0]);
    /* what a page puts in its DOM is refused unless it is a plain token: a callback that is an
     * expression, a key with quotes, an unknown kind */
    const char *bad = "{\"result\":{\"type\":\"object\",\"value\":["
                      "{\"kind\":\"recaptcha\",\"sitekey\":\"k\",\"url\":\"u\",\"callback\":\"alert(1)\"},"
                      "{\"kind\":\"recaptcha\",\"sitekey\":\"k'\\\"\",\"url\":\"u\"},"
                      "{\"kind\":\"hcaptcha\",\"sitekey\":\"k\",\"url\":\"u\",\"callback\":\"1abc\"},"
                      "{\"kind\":\"nope\",\"sitekey\":\"k\",\"url\":\"u\"},"
                      "{\"kind\":\"turnstile\",\"sitekey\":5,\"url\":\"u\"},"
                      "{\"kind\":\"turnstile\",\"sitekey\":\"k\"},"
                      "{\"kind\":\"turnstile\",\"sitekey\":\"k\",\"url\":\"u\",\"action\":\"a b\"},"
                      "7]}}";
    assert_int_equal(parse(bad, f, 4), 0);
    /* not an answer */
    assert_int_equal(parse("{\"result\":{\"type\":\"undefined\"}}", f, 4), -EINVAL);
    assert_int_equal(parse("{\"result\":{\"type\":\"object\",\"value\":[]},\"exceptionDetails\":{}}", f, 4), -EINVAL);
    assert_int_equal(parse("[", f, 4), -EINVAL);
    assert_int_equal(parse("{\"result\":{\"type\":\"object\",\"value\":[]}}", f, 4), 0);
}

static void test_task_bodies(void **state) {
    (void)state;
    captcha_found_t f = {.kind = CAPTCHA_KIND_RECAPTCHA_INVISIBLE, .sitekey = "KEY", .url = "https://s/p?a=\"b\""};
    char *b = captcha_create_task_body("ck", &f);
    assert_non_null(b);
    assert_string_equal(b, "{\"clientKey\":\"ck\",\"task\":{\"type\":\"RecaptchaV2TaskProxyless\",\"websiteURL\":"
                           "\"https://s/p?a=\\\"b\\\"\",\"websiteKey\":\"KEY\",\"isInvisible\":true}}");
    free(b);
    f.kind = CAPTCHA_KIND_TURNSTILE;
    f.action = "login";
    b = captcha_create_task_body(NULL, &f);
    assert_string_equal(b, "{\"clientKey\":\"\",\"task\":{\"type\":\"TurnstileTaskProxyless\",\"websiteURL\":"
                           "\"https://s/p?a=\\\"b\\\"\",\"websiteKey\":\"KEY\",\"action\":\"login\"}}");
    free(b);
    /* kinds that are not solved have no task */
    f.kind = CAPTCHA_KIND_CF_CHALLENGE;
    assert_null(captcha_create_task_body("ck", &f));
    assert_null(captcha_task_type(CAPTCHA_KIND_RECAPTCHA_V3));
    assert_null(captcha_task_type(CAPTCHA_KIND_GEETEST));
    assert_string_equal(captcha_task_type(CAPTCHA_KIND_HCAPTCHA), "HCaptchaTaskProxyless");
    assert_string_equal(captcha_task_type(CAPTCHA_KIND_RECAPTCHA_ENTERPRISE), "RecaptchaV2EnterpriseTaskProxyless");
    b = captcha_task_result_body("ck", 123456789012LL);
    assert_string_equal(b, "{\"clientKey\":\"ck\",\"taskId\":123456789012}");
    free(b);
}

static void reply(const char *body, bool want_task, captcha_reply_t *r) { captcha_parse_reply(body, strlen(body), want_task, r); }

static void test_replies(void **state) {
    (void)state;
    captcha_reply_t r;
    reply("{\"errorId\":0,\"taskId\":42}", true, &r);
    assert_int_equal(r.kind, CAPTCHA_REPLY_TASK);
    assert_int_equal(r.task_id, 42);
    reply("{\"errorId\":0,\"taskId\":\"73\"}", true, &r); /* capsolver's ids are strings */
    assert_int_equal(r.kind, CAPTCHA_REPLY_TASK);
    assert_int_equal(r.task_id, 73);
    for (const char *const *p = (const char *const[]){"{\"errorId\":0}", "{\"taskId\":0}", "{\"taskId\":1.5}", "{\"taskId\":\"1a\"}",
                                                       "{\"taskId\":-3}", "{\"taskId\":\"\"}", "{\"taskId\":1e300}", NULL};
         *p; p++) {
        reply(*p, true, &r);
        assert_int_equal(r.kind, CAPTCHA_REPLY_ERROR);
        assert_true(strlen(r.message) > 0);
    }
    reply("{\"errorId\":1,\"errorCode\":\"ERROR_KEY_DOES_NOT_EXIST\",\"errorDescription\":\"bad key\"}", true, &r);
    assert_int_equal(r.kind, CAPTCHA_REPLY_ERROR);
    assert_string_equal(r.message, "solver error ERROR_KEY_DOES_NOT_EXIST: bad key");
    reply("{\"errorId\":0,\"status\":\"processing\"}", false, &r);
    assert_int_equal(r.kind, CAPTCHA_REPLY_PROCESSING);
    reply("{\"errorId\":0,\"status\":\"ready\",\"solution\":{\"gRecaptchaResponse\":\"03A\"}}", false, &r);
    assert_int_equal(r.kind, CAPTCHA_REPLY_READY);
    assert_string_equal(r.token, "03A");
    free(r.token);
    reply("{\"status\":\"ready\",\"solution\":{\"token\":\"0.x\"}}", false, &r);
    assert_int_equal(r.kind, CAPTCHA_REPLY_READY);
    assert_string_equal(r.token, "0.x");
    free(r.token);
    for (const char *const *p = (const char *const[]){"{\"status\":\"ready\"}", "{\"status\":\"ready\",\"solution\":{}}",
                                                       "{\"status\":\"ready\",\"solution\":{\"token\":\"\"}}", "{\"status\":\"done\"}",
                                                       "[]", "nope", "", NULL};
         *p; p++) {
        reply(*p, false, &r);
        assert_int_equal(r.kind, CAPTCHA_REPLY_ERROR);
        assert_null(r.token);
    }
}

static int http(const char *text, int *status, char *out, size_t cap) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    char *body;
    size_t len;
    int rc = captcha_http_response(buf, strlen(buf), status, &body, &len);
    if (rc == 0) snprintf(out, cap, "%.*s", (int)len, body);
    return rc;
}

static void test_http_responses(void **state) {
    (void)state;
    int status;
    char body[128];
    assert_int_equal(http("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}{}extra", &status, body, sizeof body), 0);
    assert_int_equal(status, 200);
    assert_string_equal(body, "{}{}");
    assert_int_equal(http("HTTP/1.0 503 Busy\r\n\r\nlater", &status, body, sizeof body), 0); /* until the close */
    assert_int_equal(status, 503);
    assert_string_equal(body, "later");
    assert_int_equal(http("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n", &status, body,
                          sizeof body),
                     0);
    assert_string_equal(body, "{\"a\":1}");
    /* cut short, or not HTTP */
    assert_int_equal(http("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", &status, body, sizeof body), -EINVAL);
    assert_int_equal(http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", &status, body, sizeof body), -EINVAL);
    assert_int_equal(http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &status, body, sizeof body), -EINVAL);
    assert_int_equal(http("HTTP/1.1 200 OK\r\n", &status, body, sizeof body), -EINVAL);
    assert_int_equal(http("SSH-2.0-OpenSSH\r\n\r\n", &status, body, sizeof body), -EINVAL);
    assert_int_equal(http("HTTP/1.1 2x0 OK\r\n\r\n", &status, body, sizeof body), -EINVAL);
}

static void test_http_complete(void **state) {
    (void)state;
    const char *full = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}{}";
    assert_true(captcha_http_complete(full, strlen(full)));
    assert_false(captcha_http_complete(full, strlen(full) - 1));
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n";
    assert_false(captcha_http_complete(head, strlen(head)));
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n1\r\nx\r\n0\r\n\r\n";
    assert_false(captcha_http_complete(chunked, strlen(chunked))); /* until the close */
    const char *none = "HTTP/1.0 200 OK\r\n\r\n{}";
    assert_false(captcha_http_complete(none, strlen(none)));
}

static int url(const char *u, char *host, int *port, char *base) {
    char err[160] = "";
    int rc = captcha_solver_url_parse(u, host, 64, port, base, 64, err, sizeof err);
    if (rc < 0) assert_true(strlen(err) > 0);
    return rc;
}

static void test_solver_urls(void **state) {
    (void)state;
    char host[64], base[64];
    int port;
    assert_int_equal(url("http://127.0.0.1:8080", host, &port, base), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_string_equal(base, "");
    assert_int_equal(url("http://solver.local/api/v2/", host, &port, base), 0);
    assert_string_equal(host, "solver.local");
    assert_int_equal(port, 80);
    assert_string_equal(base, "/api/v2");
    assert_int_equal(url("http://[::1]:9/x", host, &port, base), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9);
    assert_string_equal(base, "/x");
    const char *bad[] = {"https://api.2captcha.com", "ftp://x", "http://", "http://h:0", "http://h:65536", "http://h:x",
                         "http://u:p@h", "http://h/?k=1", "http://[::1", "http://[::1]x", "http://h:", NULL};
    for (const char **b = bad; *b; b++) assert_int_equal(url(*b, host, &port, base), -EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_triggers),        cmocka_unit_test(test_kind_names), cmocka_unit_test(test_parse_detection),
        cmocka_unit_test(test_task_bodies),     cmocka_unit_test(test_replies),    cmocka_unit_test(test_http_responses),
        cmocka_unit_test(test_solver_urls),     cmocka_unit_test(test_http_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
