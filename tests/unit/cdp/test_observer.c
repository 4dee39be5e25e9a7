/* The observer (src/cdp/observer.c) driven with the messages Chromium sends over the pipe:
 * what it sends in return (captured from its send function), what it consumes (never shown to
 * the client), and what reaches the recorder. Chromium's own behaviour with a real browser is
 * covered by the end-to-end tests; here every branch of the protocol is reached on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_ids.h"
#include "cdp/observer.h"

#define MAX_SENT 32

typedef struct {
    char *msgs[MAX_SENT];
    size_t n;
    int fail; /* the browser is gone: sends fail */
} sent_t;

static int capture(void *ctx, char *msg, size_t len) {
    sent_t *s = ctx;
    assert_int_equal(strlen(msg), len);
    if (s->fail || s->n == MAX_SENT) {
        free(msg);
        return -32;
    }
    s->msgs[s->n++] = msg;
    return 0;
}

static void sent_clear(sent_t *s) {
    for (size_t i = 0; i < s->n; i++) free(s->msgs[i]);
    s->n = 0;
}

/* The sent message i, scanned: its id, method and session. */
static void sent_at(const sent_t *s, size_t i, int64_t *id, char *method, size_t mcap, char *session, size_t scap) {
    assert_true(i < s->n);
    cdp_msg_t m;
    assert_int_equal(cdp_scan(s->msgs[i], strlen(s->msgs[i]), &m), 0);
    assert_true(m.id_is_int);
    *id = m.id;
    snprintf(method, mcap, "%.*s", (int)m.method.len, m.method.ptr);
    snprintf(session, scap, "%.*s", (int)m.session_id.len, m.session_id.ptr ? m.session_id.ptr : "");
}

static void assert_sent(const sent_t *s, size_t i, int64_t want_id, const char *want_method, const char *want_session) {
    int64_t id;
    char method[96], session[96];
    sent_at(s, i, &id, method, sizeof method, session, sizeof session);
    if (want_id) assert_int_equal(id, want_id);
    assert_true(cdp_id_observer(id));
    assert_string_equal(method, want_method);
    assert_string_equal(session, want_session);
}

static int64_t sent_id(const sent_t *s, size_t i) {
    int64_t id;
    char method[96], session[96];
    sent_at(s, i, &id, method, sizeof method, session, sizeof session);
    return id;
}

/* Feeds one message from the browser; returns whether the observer consumed it. */
static bool from_browser(observer_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool from_browser(observer_t *o, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof msg);
    cdp_msg_t m;
    assert_int_equal(cdp_scan(msg, (size_t)n, &m), 0);
    return observer_consume(o, msg, (size_t)n, &m);
}

/* An observer through its setup: attached (root session "ROOT"), auto-attach on. */
static void set_up(observer_t *o, sent_t *s) {
    memset(s, 0, sizeof *s);
    observer_init(o, capture, s);
    assert_int_equal(observer_start(o), 0);
    assert_true(from_browser(o, "{\"id\":%d,\"result\":{\"sessionId\":\"ROOT\"}}", CDP_ID_OBSERVER_ATTACH));
    assert_true(from_browser(o, "{\"id\":%d,\"result\":{},\"sessionId\":\"ROOT\"}", CDP_ID_OBSERVER_AUTO_ATTACH));
    assert_true(o->ready);
    sent_clear(s);
}

/* A page target attached to the observer as session "P1" (target "T1"); what the observer
 * sends in return is captured. */
static void attach_page(observer_t *o) {
    assert_true(from_browser(o,
                             "{\"method\":\"Target.attachedToTarget\",\"sessionId\":\"ROOT\",\"params\":{\"sessionId\":"
                             "\"P1\",\"targetInfo\":{\"targetId\":\"T1\",\"type\":\"page\",\"url\":\"about:blank\"},"
                             "\"waitingForDebugger\":true}}"));
}

static void test_setup_attaches_to_the_browser_then_turns_on_discovery_and_auto_attach(void **state) {
    (void)state;
    observer_t o;
    sent_t s = {0};
    observer_init(&o, capture, &s);
    assert_int_equal(observer_start(&o), 0);
    assert_int_equal(s.n, 1);
    assert_sent(&s, 0, CDP_ID_OBSERVER_ATTACH, "Target.attachToBrowserTarget", "");
    assert_false(o.ready);
    assert_true(from_browser(&o, "{\"id\":%d,\"result\":{\"sessionId\":\"ROOT\"}}", CDP_ID_OBSERVER_ATTACH));
    assert_int_equal(s.n, 3);
    assert_sent(&s, 1, CDP_ID_OBSERVER_NEXT, "Target.setDiscoverTargets", "ROOT");
    assert_sent(&s, 2, CDP_ID_OBSERVER_AUTO_ATTACH, "Target.setAutoAttach", "ROOT");
    /* new targets wait until the observer lets them run, so no first navigation is missed */
    assert_non_null(strstr(s.msgs[2], "\"waitForDebuggerOnStart\":true"));
    assert_non_null(strstr(s.msgs[2], "\"flatten\":true"));
    assert_true(observer_owns_session(&o, "ROOT", 4));
    assert_true(from_browser(&o, "{\"id\":%d,\"result\":{},\"sessionId\":\"ROOT\"}", CDP_ID_OBSERVER_AUTO_ATTACH));
    assert_true(o.ready);
    assert_false(o.failed);
    sent_clear(&s);
    observer_free(&o);
}

/* Chromium's announcement of the observer's own attach (a root-level Target.attachedToTarget,
 * before or after the reply) is consumed; a client's own attach to the browser is not. */
static void test_the_observers_attach_event_never_reaches_the_client(void **state) {
    (void)state;
    static const char ev[] = "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"%s\",\"targetInfo\":"
                             "{\"targetId\":\"B\",\"type\":\"browser\",\"title\":\"\",\"url\":\"\"},"
                             "\"waitingForDebugger\":false}}";
    for (int after_reply = 0; after_reply < 2; after_reply++) {
        observer_t o;
        sent_t s = {0};
        observer_init(&o, capture, &s);
        assert_int_equal(observer_start(&o), 0);
        if (after_reply)
            assert_true(from_browser(&o, "{\"id\":%d,\"result\":{\"sessionId\":\"ROOT\"}}", CDP_ID_OBSERVER_ATTACH));
        assert_true(from_browser(&o, ev, "ROOT"));   /* the observer's */
        assert_false(from_browser(&o, ev, "C1"));    /* the client's own Target.attachToBrowserTarget */
        assert_false(from_browser(&o, ev, "ROOT2")); /* and another one */
        if (!after_reply)
            assert_true(from_browser(&o, "{\"id\":%d,\"result\":{\"sessionId\":\"ROOT\"}}", CDP_ID_OBSERVER_ATTACH));
        assert_false(observer_owns_session(&o, "C1", 2));
        sent_clear(&s);
        observer_free(&o);
    }
}

static void test_a_failed_setup_leaves_the_session_working_but_blind(void **state) {
    (void)state;
    observer_t o;
    sent_t s = {0};
    observer_init(&o, capture, &s);
    observer_start(&o);
    assert_true(from_browser(&o, "{\"id\":%d,\"error\":{\"code\":-32000,\"message\":\"no\"}}", CDP_ID_OBSERVER_ATTACH));
    assert_true(o.failed);
    assert_true(o.ready);
    assert_int_equal(s.n, 1); /* nothing more is sent */
    sent_clear(&s);
    observer_free(&o);
}

static void test_a_new_page_gets_page_and_network_enabled_before_it_may_run(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    attach_page(&o);
    assert_int_equal(s.n, 3);
    assert_sent(&s, 0, 0, "Page.enable", "P1");
    assert_sent(&s, 1, 0, "Network.enable", "P1");
    assert_sent(&s, 2, 0, "Runtime.runIfWaitingForDebugger", "P1");
    assert_true(observer_owns_session(&o, "P1", 2));
    assert_int_equal(o.recorder.nmain, 1); /* its main frame is known to the recorder */
    /* ids count down and never repeat */
    assert_true(sent_id(&s, 0) > sent_id(&s, 1) && sent_id(&s, 1) > sent_id(&s, 2));
    sent_clear(&s);
    observer_free(&o);
}

static void test_a_worker_target_is_owned_but_gets_no_page_domains(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    assert_true(from_browser(&o,
                             "{\"method\":\"Target.attachedToTarget\",\"sessionId\":\"ROOT\",\"params\":{\"sessionId\":"
                             "\"W1\",\"targetInfo\":{\"targetId\":\"TW\",\"type\":\"service_worker\"},"
                             "\"waitingForDebugger\":false}}"));
    assert_int_equal(s.n, 0);
    assert_true(observer_owns_session(&o, "W1", 2));
    assert_int_equal(o.recorder.nmain, 0);
    observer_free(&o);
}

static void test_messages_of_the_client_pass_through(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    attach_page(&o);
    sent_clear(&s);
    /* the client's replies and events, in its own sessions or none */
    assert_false(from_browser(&o, "{\"id\":7,\"result\":{\"product\":\"x\"}}"));
    assert_false(from_browser(&o, "{\"id\":8,\"result\":{},\"sessionId\":\"CLIENT1\"}"));
    assert_false(from_browser(&o, "{\"method\":\"Page.frameNavigated\",\"sessionId\":\"CLIENT1\","
                                  "\"params\":{\"frame\":{\"id\":\"T1\",\"url\":\"https://a.example/\"}}}"));
    assert_false(from_browser(&o, "{\"method\":\"Target.targetCreated\",\"params\":{\"targetInfo\":{}}}"));
    /* an id in the observer's range inside a session that is not the observer's is the client's */
    assert_false(from_browser(&o, "{\"id\":%d,\"result\":{},\"sessionId\":\"CLIENT1\"}", CDP_ID_OBSERVER_NEXT - 5));
    assert_int_equal(o.recorder.navigations, 0); /* the client's own event did not count */
    /* the observer's events are consumed */
    assert_true(from_browser(&o, "{\"method\":\"Network.dataReceived\",\"sessionId\":\"P1\",\"params\":{}}"));
    assert_int_equal(s.n, 0);
    observer_free(&o);
}

static void test_main_frame_commits_in_observed_pages_reach_the_recorder(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    attach_page(&o);
    assert_false(observer_take_changed(&o));
    assert_true(from_browser(&o, "{\"method\":\"Page.frameNavigated\",\"sessionId\":\"P1\",\"params\":{\"frame\":"
                                 "{\"id\":\"T1\",\"loaderId\":\"L1\",\"url\":\"https://a.example/x\\u0026y\"},"
                                 "\"type\":\"Navigation\"}}"));
    assert_true(from_browser(&o, "{\"method\":\"Page.frameNavigated\",\"sessionId\":\"P1\",\"params\":{\"frame\":"
                                 "{\"id\":\"SUB\",\"parentId\":\"T1\",\"url\":\"https://ads.example/\"}}}"));
    observer_summary_t sum;
    observer_summary(&o, &sum);
    assert_int_equal(sum.navigations, 1);
    assert_string_equal(sum.target_url, "https://a.example/x&y"); /* escapes decoded */
    assert_string_equal(sum.end_url, "https://a.example/x&y");
    assert_false(sum.last_failed);
    assert_true(observer_take_changed(&o));
    assert_false(observer_take_changed(&o)); /* taken */
    sent_clear(&s);
    observer_free(&o);
}

/* A first navigation that commits before Page.enable reached the page is found in the
 * navigation history asked for once the enable is answered. */
static void test_a_commit_before_page_enable_is_caught_up_from_the_history(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    attach_page(&o);
    int64_t enable = sent_id(&s, 0);
    sent_clear(&s);
    assert_true(from_browser(&o, "{\"id\":%lld,\"result\":{},\"sessionId\":\"P1\"}", (long long)enable));
    assert_int_equal(s.n, 1);
    assert_sent(&s, 0, 0, "Page.getNavigationHistory", "P1");
    int64_t history = sent_id(&s, 0);
    assert_true(from_browser(&o,
                             "{\"id\":%lld,\"sessionId\":\"P1\",\"result\":{\"currentIndex\":1,\"entries\":["
                             "{\"id\":1,\"url\":\"about:blank\",\"title\":\"[x]\"},"
                             "{\"id\":2,\"url\":\"https://first.example/\",\"title\":\"a, b\"}]}}",
                             (long long)history));
    observer_summary_t sum;
    observer_summary(&o, &sum);
    assert_int_equal(sum.navigations, 1);
    assert_string_equal(sum.end_url, "https://first.example/");
    sent_clear(&s);
    observer_free(&o);
}

static void test_a_commit_seen_before_the_history_is_not_counted_twice(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    attach_page(&o);
    int64_t enable = sent_id(&s, 0);
    sent_clear(&s);
    assert_true(from_browser(&o, "{\"id\":%lld,\"result\":{},\"sessionId\":\"P1\"}", (long long)enable));
    int64_t history = sent_id(&s, 0);
    assert_true(from_browser(&o, "{\"method\":\"Page.frameNavigated\",\"sessionId\":\"P1\",\"params\":{\"frame\":"
                                 "{\"id\":\"T1\",\"url\":\"https://first.example/\"}}}"));
    assert_true(from_browser(&o,
                             "{\"id\":%lld,\"sessionId\":\"P1\",\"result\":{\"currentIndex\":0,\"entries\":["
                             "{\"id\":2,\"url\":\"https://first.example/\"}]}}",
                             (long long)history));
    assert_int_equal(o.recorder.navigations, 1);
    sent_clear(&s);
    observer_free(&o);
}

static void test_an_internal_page_in_the_history_is_not_counted(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    attach_page(&o);
    int64_t enable = sent_id(&s, 0);
    sent_clear(&s);
    assert_true(from_browser(&o, "{\"id\":%lld,\"result\":{},\"sessionId\":\"P1\"}", (long long)enable));
    int64_t history = sent_id(&s, 0);
    assert_true(from_browser(&o, "{\"id\":%lld,\"sessionId\":\"P1\",\"result\":{\"currentIndex\":0,\"entries\":["
                                 "{\"id\":1,\"url\":\"about:blank\"}]}}",
                             (long long)history));
    assert_int_equal(o.recorder.navigations, 0);
    sent_clear(&s);
    observer_free(&o);
}

static void test_a_detached_page_is_forgotten(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    attach_page(&o);
    sent_clear(&s);
    assert_true(from_browser(&o, "{\"method\":\"Target.detachedFromTarget\",\"sessionId\":\"ROOT\",\"params\":"
                                 "{\"sessionId\":\"P1\",\"targetId\":\"T1\"}}"));
    assert_false(observer_owns_session(&o, "P1", 2));
    assert_int_equal(o.recorder.nmain, 0);
    /* its late events belong to no observed session: they pass */
    assert_false(from_browser(&o, "{\"method\":\"Page.frameNavigated\",\"sessionId\":\"P1\",\"params\":{\"frame\":"
                                  "{\"id\":\"T1\",\"url\":\"https://late.example/\"}}}"));
    assert_int_equal(o.recorder.navigations, 0);
    observer_free(&o);
}

static void test_a_gone_browser_makes_start_fail(void **state) {
    (void)state;
    observer_t o;
    sent_t s = {.fail = 1};
    observer_init(&o, capture, &s);
    assert_true(observer_start(&o) < 0);
    observer_free(&o);
}

static void test_session_ids_are_matched_exactly(void **state) {
    (void)state;
    observer_t o;
    sent_t s;
    set_up(&o, &s);
    attach_page(&o);
    assert_false(observer_owns_session(&o, "P", 1));
    assert_false(observer_owns_session(&o, "P12", 3));
    assert_false(observer_owns_session(&o, "", 0));
    assert_true(observer_owns_session(&o, "P12", 2)); /* a length-delimited slice */
    sent_clear(&s);
    observer_free(&o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_attaches_to_the_browser_then_turns_on_discovery_and_auto_attach),
        cmocka_unit_test(test_the_observers_attach_event_never_reaches_the_client),
        cmocka_unit_test(test_a_failed_setup_leaves_the_session_working_but_blind),
        cmocka_unit_test(test_a_new_page_gets_page_and_network_enabled_before_it_may_run),
        cmocka_unit_test(test_a_worker_target_is_owned_but_gets_no_page_domains),
        cmocka_unit_test(test_messages_of_the_client_pass_through),
        cmocka_unit_test(test_main_frame_commits_in_observed_pages_reach_the_recorder),
        cmocka_unit_test(test_a_commit_before_page_enable_is_caught_up_from_the_history),
        cmocka_unit_test(test_a_commit_seen_before_the_history_is_not_counted_twice),
        cmocka_unit_test(test_an_internal_page_in_the_history_is_not_counted),
        cmocka_unit_test(test_a_detached_page_is_forgotten),
        cmocka_unit_test(test_a_gone_browser_makes_start_fail),
        cmocka_unit_test(test_session_ids_are_matched_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
