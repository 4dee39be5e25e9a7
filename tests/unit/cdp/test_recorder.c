/* Navigation semantics of the recorder, fed the CDP events Chromium sends (src/cdp/recorder.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cdp/cdp_scan.h"
#include "cdp/recorder.h"

/* An event as the observer hands it over: the params slice of a message cdp_scan validated. */
static void feed(recorder_t *r, const char *method, const char *params_json) {
    char msg[2048];
    int n = snprintf(msg, sizeof msg, "{\"method\":\"%s\",\"params\":%s,\"sessionId\":\"S\"}", method, params_json);
    assert_true(n > 0 && (size_t)n < sizeof msg);
    cdp_msg_t m;
    assert_int_equal(cdp_scan(msg, (size_t)n, &m), 0);
    recorder_page_event(r, method, m.params.ptr, m.params.len);
}

static void navigated(recorder_t *r, const char *frame_json) {
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"frame\":%s,\"type\":\"Navigation\"}", frame_json);
    feed(r, "Page.frameNavigated", buf);
}

static void test_main_frame_navigations_count(void **state) {
    (void)state;
    recorder_t r;
    recorder_init(&r);
    navigated(&r, "{\"id\":\"F1\",\"loaderId\":\"L0\",\"url\":\"about:blank\"}");
    assert_int_equal(r.navigations, 0);
    assert_null(r.target_url);
    navigated(&r, "{\"id\":\"F1\",\"url\":\"https://a.example/one\"}");
    navigated(&r, "{\"id\":\"SUB\",\"parentId\":\"F1\",\"url\":\"https://ads.example/frame\"}");
    feed(&r, "Page.navigatedWithinDocument", "{\"frameId\":\"F1\",\"url\":\"https://a.example/one#x\"}");
    navigated(&r, "{\"id\":\"F1\",\"url\":\"https://a.example/two\"}");
    navigated(&r, "{\"id\":\"F1\",\"url\":\"data:text/html,hi\"}");
    /* a popup's main frame counts as well */
    navigated(&r, "{\"id\":\"P9\",\"url\":\"https://popup.example/\"}");
    assert_int_equal(r.navigations, 3);
    assert_string_equal(r.target_url, "https://a.example/one");
    assert_string_equal(r.end_url, "https://popup.example/");
    assert_false(r.last_failed);
    assert_true(r.changed);
    recorder_free(&r);
}

static void test_failed_navigation_counts_with_error(void **state) {
    (void)state;
    recorder_t r;
    recorder_init(&r);
    feed(&r, "Network.requestWillBeSent",
         "{\"requestId\":\"R1\",\"frameId\":\"F1\",\"type\":\"Document\",\"request\":{\"url\":\"https://nx.invalid/\"}}");
    feed(&r, "Network.requestWillBeSent",
         "{\"requestId\":\"R2\",\"frameId\":\"SUB\",\"type\":\"Document\",\"request\":{\"url\":\"https://x/\"}}");
    feed(&r, "Network.loadingFailed", "{\"requestId\":\"R2\",\"errorText\":\"net::ERR_CONNECTION_REFUSED\"}");
    feed(&r, "Network.loadingFailed", "{\"requestId\":\"R1\",\"errorText\":\"net::ERR_NAME_NOT_RESOLVED\"}");
    navigated(&r, "{\"id\":\"F1\",\"url\":\"chrome-error://chromewebdata/\",\"unreachableUrl\":\"https://nx.invalid/\"}");
    assert_int_equal(r.navigations, 1);
    assert_string_equal(r.end_url, "https://nx.invalid/");
    assert_true(r.last_failed);
    assert_string_equal(r.last_error, "net::ERR_NAME_NOT_RESOLVED at https://nx.invalid/");
    /* a later successful navigation clears the failure */
    navigated(&r, "{\"id\":\"F1\",\"url\":\"https://ok.example/\"}");
    assert_false(r.last_failed);
    assert_null(r.last_error);
    assert_string_equal(r.target_url, "https://nx.invalid/");
    /* a failure without a known error code still says what failed */
    navigated(&r, "{\"id\":\"F1\",\"url\":\"chrome-error://chromewebdata/\",\"unreachableUrl\":\"http://down/\"}");
    assert_string_equal(r.last_error, "net::ERR_FAILED at http://down/");
    recorder_free(&r);
}

/* browserd's traffic proxy answers a failed plain-HTTP request with its own error page, which
 * Chromium commits like any page: the X-Browserd-Proxy-Error header makes it a failure. */
static void test_proxy_error_page_is_a_failed_navigation(void **state) {
    (void)state;
    recorder_t r;
    recorder_init(&r);
    feed(&r, "Network.requestWillBeSent",
         "{\"requestId\":\"L1\",\"loaderId\":\"L1\",\"frameId\":\"F1\",\"type\":\"Document\","
         "\"request\":{\"url\":\"http://nx.invalid/x\"}}");
    feed(&r, "Network.responseReceived",
         "{\"requestId\":\"L1\",\"frameId\":\"F1\",\"type\":\"Document\",\"response\":{\"status\":502,"
         "\"headers\":{\"Content-Type\":\"text/html\",\"X-Browserd-Proxy-Error\":\"ERR_NAME_NOT_RESOLVED\"}}}");
    /* the small page may finish loading before it commits */
    feed(&r, "Network.loadingFinished", "{\"requestId\":\"L1\"}");
    navigated(&r, "{\"id\":\"F1\",\"loaderId\":\"L1\",\"url\":\"http://nx.invalid/x\"}");
    assert_int_equal(r.navigations, 1);
    assert_string_equal(r.end_url, "http://nx.invalid/x");
    assert_true(r.last_failed);
    assert_string_equal(r.last_error, "net::ERR_NAME_NOT_RESOLVED at http://nx.invalid/x");
    assert_int_equal(r.ndocs, 0);
    /* an ordinary page after it: no failure; header names in any case */
    feed(&r, "Network.requestWillBeSent",
         "{\"requestId\":\"L2\",\"frameId\":\"F1\",\"type\":\"Document\",\"request\":{\"url\":\"http://ok/\"}}");
    feed(&r, "Network.responseReceived",
         "{\"requestId\":\"L2\",\"type\":\"Document\",\"response\":{\"status\":200,\"headers\":{\"x-other\":\"1\"}}}");
    feed(&r, "Network.loadingFinished", "{\"requestId\":\"L2\"}");
    navigated(&r, "{\"id\":\"F1\",\"loaderId\":\"L2\",\"url\":\"http://ok/\"}");
    assert_false(r.last_failed);
    assert_null(r.last_error);
    feed(&r, "Network.requestWillBeSent",
         "{\"requestId\":\"L3\",\"frameId\":\"F1\",\"type\":\"Document\",\"request\":{\"url\":\"http://10.1.2.3/\"}}");
    feed(&r, "Network.responseReceived",
         "{\"requestId\":\"L3\",\"type\":\"Document\",\"response\":{\"status\":403,"
         "\"headers\":{\"x-browserd-proxy-error\":\"ERR_BLOCKED_PRIVATE_NETWORK\"}}}");
    navigated(&r, "{\"id\":\"F1\",\"loaderId\":\"L3\",\"url\":\"http://10.1.2.3/\"}");
    assert_int_equal(r.navigations, 3);
    assert_true(r.last_failed);
    assert_string_equal(r.last_error, "net::ERR_BLOCKED_PRIVATE_NETWORK at http://10.1.2.3/");
    /* an iframe's error page does not make the main frame's navigation fail */
    feed(&r, "Network.requestWillBeSent",
         "{\"requestId\":\"L4\",\"frameId\":\"SUB\",\"type\":\"Document\",\"request\":{\"url\":\"http://nx2/\"}}");
    feed(&r, "Network.responseReceived",
         "{\"requestId\":\"L4\",\"type\":\"Document\",\"response\":{\"status\":502,"
         "\"headers\":{\"X-Browserd-Proxy-Error\":\"ERR_NAME_NOT_RESOLVED\"}}}");
    navigated(&r, "{\"id\":\"SUB\",\"parentId\":\"F1\",\"loaderId\":\"L4\",\"url\":\"http://nx2/\"}");
    navigated(&r, "{\"id\":\"F1\",\"loaderId\":\"L5\",\"url\":\"http://ok/again\"}");
    assert_int_equal(r.navigations, 4);
    assert_false(r.last_failed);
    recorder_free(&r);
}

static void doc(recorder_t *r, const char *id, const char *frame, const char *url) {
    char buf[512];
    snprintf(buf, sizeof buf, "{\"requestId\":\"%s\",\"loaderId\":\"%s\",\"frameId\":\"%s\",\"type\":\"Document\","
             "\"request\":{\"url\":\"%s\"}}", id, id, frame, url);
    feed(r, "Network.requestWillBeSent", buf);
}

/* Chromium answers Page.navigate with the error before it commits the error page, and a client
 * may close right then: a main frame's failed document request counts at its loadingFailed. */
static void test_failed_main_frame_counts_before_its_error_page(void **state) {
    (void)state;
    recorder_t r;
    recorder_init(&r);
    recorder_page_opened(&r, "T1");
    recorder_page_opened(&r, "T1"); /* once */
    assert_int_equal(r.nmain, 1);
    doc(&r, "L1", "T1", "https://nx.invalid/");
    feed(&r, "Network.loadingFailed",
         "{\"requestId\":\"L1\",\"type\":\"Document\",\"errorText\":\"net::ERR_NAME_NOT_RESOLVED\",\"canceled\":false}");
    assert_int_equal(r.navigations, 1);
    assert_string_equal(r.target_url, "https://nx.invalid/");
    assert_string_equal(r.end_url, "https://nx.invalid/");
    assert_true(r.last_failed);
    assert_string_equal(r.last_error, "net::ERR_NAME_NOT_RESOLVED at https://nx.invalid/");
    /* its error page commits afterwards: not a second navigation */
    r.changed = false;
    navigated(&r, "{\"id\":\"T1\",\"loaderId\":\"L1\",\"url\":\"chrome-error://chromewebdata/\","
                  "\"unreachableUrl\":\"https://nx.invalid/\"}");
    assert_int_equal(r.navigations, 1);
    assert_false(r.changed);
    assert_int_equal(r.ndocs, 0);
    /* superseded or cancelled requests are not failed navigations */
    doc(&r, "L2", "T1", "https://slow.example/");
    feed(&r, "Network.loadingFailed", "{\"requestId\":\"L2\",\"errorText\":\"net::ERR_ABORTED\",\"canceled\":false}");
    doc(&r, "L3", "T1", "https://slow2.example/");
    feed(&r, "Network.loadingFailed",
         "{\"requestId\":\"L3\",\"errorText\":\"net::ERR_CONNECTION_RESET\",\"canceled\":true}");
    /* an iframe's failure is not the page's navigation */
    doc(&r, "L4", "SUB", "https://frame.invalid/");
    feed(&r, "Network.loadingFailed", "{\"requestId\":\"L4\",\"errorText\":\"net::ERR_NAME_NOT_RESOLVED\"}");
    assert_int_equal(r.navigations, 1);
    /* a redirect chain that fails at its last hop: the URL attempted last */
    doc(&r, "L5", "T1", "http://a.example/");
    doc(&r, "L5", "T1", "https://b.invalid/next");
    feed(&r, "Network.loadingFailed", "{\"requestId\":\"L5\",\"errorText\":\"net::ERR_TUNNEL_CONNECTION_FAILED\"}");
    assert_int_equal(r.navigations, 2);
    assert_string_equal(r.end_url, "https://b.invalid/next");
    assert_string_equal(r.last_error, "net::ERR_TUNNEL_CONNECTION_FAILED at https://b.invalid/next");
    /* a success after it */
    navigated(&r, "{\"id\":\"T1\",\"loaderId\":\"L6\",\"url\":\"https://ok.example/\"}");
    assert_int_equal(r.navigations, 3);
    assert_false(r.last_failed);
    /* once the page is gone, its frame id is not a main frame any more: counted at commit only */
    recorder_page_closed(&r, "T1");
    assert_int_equal(r.nmain, 0);
    doc(&r, "L7", "T1", "https://late.invalid/");
    feed(&r, "Network.loadingFailed", "{\"requestId\":\"L7\",\"errorText\":\"net::ERR_NAME_NOT_RESOLVED\"}");
    assert_int_equal(r.navigations, 3);
    navigated(&r, "{\"id\":\"T1\",\"loaderId\":\"L7\",\"url\":\"chrome-error://chromewebdata/\","
                  "\"unreachableUrl\":\"https://late.invalid/\"}");
    assert_int_equal(r.navigations, 4);
    assert_string_equal(r.last_error, "net::ERR_NAME_NOT_RESOLVED at https://late.invalid/");
    recorder_free(&r); /* the URLs still held (L2, L3, L4, L5) are freed here */
}

static void test_internal_urls(void **state) {
    (void)state;
    assert_true(recorder_is_internal_url("about:blank"));
    assert_true(recorder_is_internal_url("about:srcdoc"));
    assert_true(recorder_is_internal_url("chrome://newtab/"));
    assert_true(recorder_is_internal_url("chrome-error://chromewebdata/"));
    assert_true(recorder_is_internal_url("devtools://devtools/x"));
    assert_true(recorder_is_internal_url("DATA:text/plain,x"));
    assert_true(recorder_is_internal_url(""));
    assert_true(recorder_is_internal_url(NULL));
    assert_false(recorder_is_internal_url("https://example.com/about:blank"));
    assert_false(recorder_is_internal_url("http://127.0.0.1:8000/"));
}

static void test_doc_table_is_bounded(void **state) {
    (void)state;
    recorder_t r;
    recorder_init(&r);
    char buf[200];
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "{\"requestId\":\"R%d\",\"frameId\":\"F%d\",\"type\":\"Document\"}", i, i);
        feed(&r, "Network.requestWillBeSent", buf);
    }
    assert_true(r.ndocs <= RECORDER_MAX_PENDING);
    feed(&r, "Network.requestWillBeSent", "{\"requestId\":\"I\",\"frameId\":\"F\",\"type\":\"Image\"}");
    feed(&r, "Network.loadingFinished", "{\"requestId\":\"R999\"}");
    assert_true(r.ndocs < RECORDER_MAX_PENDING);
    recorder_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_main_frame_navigations_count), cmocka_unit_test(test_failed_navigation_counts_with_error),
        cmocka_unit_test(test_proxy_error_page_is_a_failed_navigation),
        cmocka_unit_test(test_failed_main_frame_counts_before_its_error_page),
        cmocka_unit_test(test_internal_urls),               cmocka_unit_test(test_doc_table_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
