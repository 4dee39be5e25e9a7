/* A session's captcha engine (src/cdp/captcha.c) driven as the observer drives it: page
 * requests (the trigger), the replies to its commands (the isolated world, the look), the
 * client's Captcha.* commands and sessions. What it sends to the browser (through a real
 * observer, whose send function is captured) and to the client is checked; the record's
 * value follows the rules of captcha.h. Solving against a real solver service and a real
 * browser is tests/e2e/captcha.test.js. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/captcha.h"
#include "cdp/cdp_ids.h"
#include <errno.h>

#define MAX_MSGS 32

typedef struct {
    char *msgs[MAX_MSGS];
    size_t n;
} box_t;

static box_t to_browser, to_client;
static int changes;

static void box_clear(box_t *b) {
    for (size_t i = 0; i < b->n; i++) free(b->msgs[i]);
    b->n = 0;
}

static int browser_send(void *ctx, char *msg, size_t len) {
    (void)ctx;
    (void)len;
    if (to_browser.n == MAX_MSGS) {
        free(msg);
        return -1;
    }
    to_browser.msgs[to_browser.n++] = msg;
    return 0;
}

static void client_send(void *ctx, char *msg, size_t len) {
    (void)ctx;
    (void)len;
    if (to_client.n == MAX_MSGS) {
        free(msg);
        return;
    }
    to_client.msgs[to_client.n++] = msg;
}

static void changed(void *ctx) {
    (void)ctx;
    changes++;
}

typedef struct {
    observer_t obs;
    captcha_config_t cfg;
    captcha_engine_t c;
} fixture_t;

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    observer_init(&f->obs, browser_send, NULL);
    f->cfg.detect = true;
    f->cfg.solver.timeout_ms = 1000;
    captcha_init(&f->c, uv_default_loop(), &f->cfg, &f->obs, client_send, changed, NULL, "test");
    changes = 0;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    captcha_free(&f->c);
    observer_free(&f->obs);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT); /* the engine's timer closes */
    box_clear(&to_browser);
    box_clear(&to_client);
    free(f);
    return 0;
}

static void request(fixture_t *f, const char *url) {
    char params[512];
    snprintf(params, sizeof params, "{\"requestId\":\"1\",\"request\":{\"url\":\"%s\",\"method\":\"GET\"},\"type\":\"Script\"}", url);
    f->obs.hooks.request(f->obs.hooks.ctx, "S1", "T1", params, strlen(params));
}

/* The last command sent to the browser: its id, and that it has method and holds `has`. */
static int64_t last_command(const char *method, const char *has) {
    assert_true(to_browser.n > 0);
    const char *m = to_browser.msgs[to_browser.n - 1];
    cdp_msg_t scan;
    assert_int_equal(cdp_scan(m, strlen(m), &scan), 0);
    assert_true(cdp_string_equals(scan.method, method, strlen(method)));
    assert_true(cdp_string_equals(scan.session_id, "S1", 2));
    if (has) assert_non_null(strstr(m, has));
    return scan.id;
}

static bool reply(fixture_t *f, const char *text) {
    cdp_msg_t scan;
    assert_int_equal(cdp_scan(text, strlen(text), &scan), 0);
    return f->obs.hooks.reply(f->obs.hooks.ctx, scan.id, text, strlen(text), &scan);
}

static void client(fixture_t *f, const char *text) {
    cdp_msg_t scan;
    assert_int_equal(cdp_scan(text, strlen(text), &scan), 0);
    assert_true(captcha_client_command(&f->c, &scan));
}

static const char *last_client(void) {
    assert_true(to_client.n > 0);
    return to_client.msgs[to_client.n - 1];
}

/* Trigger -> isolated world -> look -> detected; the events and the record. */
static void detect_recaptcha(fixture_t *f) {
    request(f, "https://www.google.com/recaptcha/api.js");
    int64_t world = last_command("Page.createIsolatedWorld", "\"frameId\":\"T1\"");
    assert_true(cdp_id_observer(world));
    char text[512];
    snprintf(text, sizeof text, "{\"id\":%lld,\"sessionId\":\"S1\",\"result\":{\"executionContextId\":41}}", (long long)world);
    assert_true(reply(f, text));
    int64_t look = last_command("Runtime.evaluate", "\"contextId\":41");
    assert_non_null(strstr(to_browser.msgs[to_browser.n - 1], "\"awaitPromise\":true"));
    snprintf(text, sizeof text,
             "{\"id\":%lld,\"sessionId\":\"S1\",\"result\":{\"result\":{\"type\":\"object\",\"value\":[{\"kind\":\"recaptcha\","
             "\"sitekey\":\"KEY\",\"url\":\"https://s/p\",\"callback\":\"cb\",\"action\":null}]}}}",
             (long long)look);
    assert_true(reply(f, text));
}

static void test_no_trigger_no_command(void **state) {
    fixture_t *f = *state;
    request(f, "https://example.com/app.js?x=/recaptcha/api.js");
    request(f, "https://example.com/");
    assert_int_equal(to_browser.n, 0);
    assert_int_equal(captcha_record(&f->c), CAPTCHA_NONE);
    /* a reply that is not the engine's is left to the observer */
    assert_false(reply(f, "{\"id\":-1500,\"result\":{}}"));
    /* --captcha-detect off: not even a trigger */
    f->cfg.detect = false;
    request(f, "https://www.google.com/recaptcha/api.js");
    assert_int_equal(to_browser.n, 0);
}

static void test_detected_event_and_record(void **state) {
    fixture_t *f = *state;
    /* the client's page session, from the event the client receives */
    const char *attached = "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"C1\",\"targetInfo\":"
                           "{\"targetId\":\"T1\",\"type\":\"page\"},\"waitingForDebugger\":false}}";
    cdp_msg_t scan;
    assert_int_equal(cdp_scan(attached, strlen(attached), &scan), 0);
    captcha_watch_client_message(&f->c, &scan);
    detect_recaptcha(f);
    assert_int_equal(captcha_record(&f->c), CAPTCHA_DETECTED);
    assert_int_equal(changes, 1);
    assert_int_equal(to_client.n, 1);
    assert_non_null(strstr(last_client(), "\"method\":\"Captcha.detected\""));
    assert_non_null(strstr(last_client(), "\"type\":\"recaptcha\""));
    assert_non_null(strstr(last_client(), "\"sitekey\":\"KEY\""));
    assert_non_null(strstr(last_client(), "\"sessionId\":\"C1\""));
    /* seen again (another trigger): one captcha, not two */
    detect_recaptcha(f);
    assert_int_equal(f->c.nitems, 1);
    assert_int_equal(to_client.n, 1);
    /* no solver: it will not be solved */
    client(f, "{\"id\":7,\"sessionId\":\"C1\",\"method\":\"Captcha.solve\",\"params\":{\"detectTimeout\":0}}");
    assert_string_equal(last_client(), "{\"id\":7,\"result\":{\"status\":\"invalid\"},\"sessionId\":\"C1\"}");
    /* another page's session sees none of it */
    const char *other = "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"C2\",\"targetInfo\":"
                        "{\"targetId\":\"T2\",\"type\":\"page\"}}}";
    assert_int_equal(cdp_scan(other, strlen(other), &scan), 0);
    captcha_watch_client_message(&f->c, &scan);
    client(f, "{\"id\":8,\"sessionId\":\"C2\",\"method\":\"Captcha.waitForSolve\",\"params\":{\"detectTimeout\":0}}");
    assert_string_equal(last_client(), "{\"id\":8,\"result\":{\"status\":\"not_detected\"},\"sessionId\":\"C2\"}");
    /* at the browser level: every page */
    client(f, "{\"id\":9,\"method\":\"Captcha.waitForSolve\",\"params\":{\"detectTimeout\":0}}");
    assert_string_equal(last_client(), "{\"id\":9,\"result\":{\"status\":\"invalid\"}}");
    /* a new document of the page's main frame (a subframe's is not): the widget there is a
     * new captcha */
    const char *sub = "{\"requestId\":\"9\",\"frameId\":\"F2\",\"type\":\"Document\",\"request\":{\"url\":\"https://s/f\"}}";
    f->obs.hooks.request(f->obs.hooks.ctx, "S1", "T1", sub, strlen(sub));
    detect_recaptcha(f);
    assert_int_equal(f->c.nitems, 1);
    const char *doc = "{\"requestId\":\"9\",\"frameId\":\"T1\",\"type\":\"Document\",\"request\":{\"url\":\"https://s/p\"}}";
    size_t sent = to_browser.n;
    f->obs.hooks.request(f->obs.hooks.ctx, "S1", "T1", doc, strlen(doc));
    assert_int_equal(to_browser.n, sent); /* a document is no trigger */
    detect_recaptcha(f);
    assert_int_equal(f->c.nitems, 2);
    /* the end keeps the record */
    captcha_stop(&f->c);
    assert_int_equal(captcha_record(&f->c), CAPTCHA_DETECTED);
}

static void test_look_failures(void **state) {
    fixture_t *f = *state;
    request(f, "https://js.hcaptcha.com/1/api.js");
    int64_t world = last_command("Page.createIsolatedWorld", NULL);
    /* while a look is in flight, a second trigger waits for it */
    request(f, "https://newassets.hcaptcha.com/captcha/v1/x/static/hcaptcha.html");
    assert_int_equal(to_browser.n, 1);
    char text[256];
    snprintf(text, sizeof text, "{\"id\":%lld,\"sessionId\":\"S1\",\"error\":{\"code\":-32000,\"message\":\"No frame\"}}", (long long)world);
    assert_true(reply(f, text));
    /* the world failed: the waiting trigger looks again */
    assert_int_equal(to_browser.n, 2);
    world = last_command("Page.createIsolatedWorld", NULL);
    snprintf(text, sizeof text, "{\"id\":%lld,\"sessionId\":\"S1\",\"result\":{\"executionContextId\":3}}", (long long)world);
    assert_true(reply(f, text));
    int64_t look = last_command("Runtime.evaluate", NULL);
    /* the page navigated away meanwhile: nothing found, nothing recorded */
    snprintf(text, sizeof text, "{\"id\":%lld,\"sessionId\":\"S1\",\"error\":{\"code\":-32000,\"message\":\"Execution context was destroyed.\"}}",
             (long long)look);
    assert_true(reply(f, text));
    assert_int_equal(captcha_record(&f->c), CAPTCHA_NONE);
    assert_int_equal(changes, 0);
    assert_int_equal(to_client.n, 0);
}

static void test_domain_errors(void **state) {
    fixture_t *f = *state;
    client(f, "{\"id\":1,\"sessionId\":\"C9\",\"method\":\"Captcha.nope\"}");
    assert_non_null(strstr(last_client(), "\"code\":-32601"));
    assert_non_null(strstr(last_client(), "\"sessionId\":\"C9\""));
    const char *bad[] = {
        "{\"id\":2,\"method\":\"Captcha.setAutoSolve\",\"params\":{}}",
        "{\"id\":2,\"method\":\"Captcha.setAutoSolve\",\"params\":{\"autoSolve\":1}}",
        "{\"id\":2,\"method\":\"Captcha.setAutoSolve\",\"params\":{\"autoSolve\":true,\"options\":{}}}",
        "{\"id\":2,\"method\":\"Captcha.setAutoSolve\",\"params\":{\"autoSolve\":true,\"options\":[{\"type\":\"x\"}]}}",
        "{\"id\":2,\"method\":\"Captcha.setAutoSolve\",\"params\":{\"autoSolve\":true,\"options\":[{\"type\":\"hcaptcha\",\"disabled\":\"y\"}]}}",
        "{\"id\":2,\"method\":\"Captcha.solve\",\"params\":{\"detectTimeout\":\"1\"}}",
        "{\"id\":2,\"method\":\"Captcha.solve\",\"params\":{\"detectTimeout\":-1}}",
        "{\"id\":2,\"method\":\"Captcha.waitForSolve\",\"params\":{\"detectTimeout\":600001}}",
        "{\"id\":2,\"method\":\"Captcha.solve\",\"params\":[]}",
        NULL,
    };
    for (const char **b = bad; *b; b++) {
        client(f, *b);
        assert_non_null(strstr(last_client(), "\"code\":-32602"));
    }
    /* a bad setAutoSolve changed nothing */
    assert_true(f->c.auto_solve);
    assert_false(f->c.disabled[CAPTCHA_KIND_HCAPTCHA]);
    client(f, "{\"id\":3,\"method\":\"Captcha.setAutoSolve\",\"params\":{\"autoSolve\":false,\"options\":[{\"type\":\"hcaptcha\",\"disabled\":true}]}}");
    assert_string_equal(last_client(), "{\"id\":3,\"result\":{}}");
    assert_false(f->c.auto_solve);
    assert_true(f->c.disabled[CAPTCHA_KIND_HCAPTCHA]);
    /* other domains are not the engine's */
    const char *other = "{\"id\":4,\"method\":\"Page.navigate\",\"params\":{}}";
    cdp_msg_t scan;
    assert_int_equal(cdp_scan(other, strlen(other), &scan), 0);
    assert_false(captcha_client_command(&f->c, &scan));
}

/* A wait with a detection timeout is answered by the engine's timer. */
static void test_wait_times_out(void **state) {
    fixture_t *f = *state;
    client(f, "{\"id\":5,\"method\":\"Captcha.solve\",\"params\":{\"detectTimeout\":20}}");
    assert_int_equal(to_client.n, 0);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT); /* only the engine's timer is running */
    assert_string_equal(last_client(), "{\"id\":5,\"result\":{\"status\":\"not_detected\"}}");
}

/* Solving fails when the solver cannot be reached (a port nothing listens on): failed. */
static void test_solver_down_fails(void **state) {
    fixture_t *f = *state;
    uv_tcp_t probe;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(uv_default_loop(), &probe);
    uv_tcp_bind(&probe, (const struct sockaddr *)&a, 0);
    int len = sizeof a;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&a, &len);
    uv_close((uv_handle_t *)&probe, NULL); /* bound, never listening, closed: refused */
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    f->cfg.solver.url = url;
    detect_recaptcha(f);
    assert_int_equal(captcha_record(&f->c), CAPTCHA_DETECTED);
    client(f, "{\"id\":6,\"method\":\"Captcha.waitForSolve\",\"params\":{\"detectTimeout\":0}}");
    size_t before = to_client.n;
    while (captcha_record(&f->c) == CAPTCHA_DETECTED) uv_run(uv_default_loop(), UV_RUN_ONCE);
    assert_int_equal(captcha_record(&f->c), CAPTCHA_FAILED);
    assert_string_equal(last_client(), "{\"id\":6,\"result\":{\"status\":\"solve_failed\"}}");
    assert_true(to_client.n == before + 1);
    f->cfg.solver.url = NULL;
    teardown(state);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT); /* the job's handles close and it frees itself */
    setup(state);
}

static void test_config(void **state) {
    (void)state;
    captcha_config_t cfg = {.detect = true};
    char err[200];
    assert_int_equal(captcha_config_parse(&cfg, "http://127.0.0.1:9", "2.5", "off", "k", err, sizeof err), 0);
    assert_false(cfg.detect);
    assert_int_equal(cfg.solver.timeout_ms, 2500);
    assert_string_equal(cfg.solver.url, "http://127.0.0.1:9");
    assert_string_equal(cfg.solver.key, "k");
    assert_int_equal(captcha_config_parse(&cfg, NULL, NULL, "maybe", NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--captcha-detect"));
    assert_int_equal(captcha_config_parse(&cfg, NULL, "0", NULL, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--captcha-timeout"));
    assert_int_equal(captcha_config_parse(&cfg, "https://api.capsolver.com", NULL, NULL, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "https"));
    assert_int_equal(captcha_config_parse(&cfg, "", NULL, NULL, NULL, err, sizeof err), 0);
    assert_null(cfg.solver.url);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_trigger_no_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detected_event_and_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_look_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_solver_down_fails, setup, teardown),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
