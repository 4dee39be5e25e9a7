/* The live view's wire formats (src/cdp/liveview_proto.c): a viewer's input messages, the
 * Input.dispatch* commands they become (scaled to the page), and Page.inspect's params. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_scan.h"
#include "cdp/liveview_proto.h"

static int parse(const char *msg, liveview_input_t *in) {
    const char *why = NULL;
    int rc = liveview_input_parse(msg, strlen(msg), in, &why);
    if (rc < 0) assert_non_null(why);
    return rc;
}

static void test_mouse_down_parses_with_defaults(void **state) {
    (void)state;
    liveview_input_t in;
    assert_int_equal(parse("{\"type\":\"mouse\",\"action\":\"down\",\"x\":0.25,\"y\":1}", &in), 0);
    assert_int_equal(in.kind, LIVEVIEW_MOUSE_DOWN);
    assert_true(in.x == 0.25 && in.y == 1.0);
    assert_string_equal(in.button, "left");
    assert_int_equal(in.clicks, 1);
    assert_int_equal(in.modifiers, 0);
    assert_int_equal(parse("{\"type\":\"mouse\",\"action\":\"up\",\"x\":0,\"y\":0,\"button\":\"right\",\"clicks\":2,"
                           "\"modifiers\":8}", &in), 0);
    assert_int_equal(in.kind, LIVEVIEW_MOUSE_UP);
    assert_string_equal(in.button, "right");
    assert_int_equal(in.clicks, 2);
    assert_int_equal(in.modifiers, 8);
}

static void test_bad_messages_are_refused(void **state) {
    (void)state;
    static const char *bad[] = {
        "", "[]", "{}", "not json", "{\"type\":1}", "{\"type\":\"tap\"}",
        "{\"type\":\"mouse\",\"action\":\"down\",\"x\":1.5,\"y\":0}",   /* outside the view */
        "{\"type\":\"mouse\",\"action\":\"down\",\"x\":-0.1,\"y\":0}",
        "{\"type\":\"mouse\",\"action\":\"down\",\"x\":\"0\",\"y\":0}",
        "{\"type\":\"mouse\",\"action\":\"down\",\"y\":0}",
        "{\"type\":\"mouse\",\"action\":\"hover\",\"x\":0,\"y\":0}",
        "{\"type\":\"mouse\",\"action\":\"down\",\"x\":0,\"y\":0,\"button\":\"back\"}",
        "{\"type\":\"mouse\",\"action\":\"down\",\"x\":0,\"y\":0,\"clicks\":4}",
        "{\"type\":\"mouse\",\"action\":\"down\",\"x\":0,\"y\":0,\"modifiers\":16}",
        "{\"type\":\"wheel\",\"x\":0,\"y\":0,\"dy\":10001}",
        "{\"type\":\"wheel\",\"x\":0,\"y\":0,\"dx\":\"1\"}",
        "{\"type\":\"key\",\"action\":\"down\"}",
        "{\"type\":\"key\",\"action\":\"down\",\"key\":\"\"}",
        "{\"type\":\"key\",\"action\":\"press\",\"key\":\"a\"}",
        "{\"type\":\"key\",\"action\":\"down\",\"key\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", /* 33 bytes */
        "{\"type\":\"key\",\"action\":\"down\",\"key\":\"a\",\"keyCode\":256}",
        "{\"type\":\"key\",\"action\":\"down\",\"key\":\"a\",\"text\":\"\\u0000\"}",
        "{\"type\":\"mouse\",\"action\":\"down\",\"x\":0,\"y\":0} trailing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        liveview_input_t in;
        if (parse(bad[i], &in) != -EINVAL) fail_msg("accepted: %s", bad[i]);
    }
}

/* Every command is valid JSON with the right id, session, method and the page's coordinates. */
static void check_command(const char *cmd, size_t len, int64_t id, const char *method) {
    cdp_msg_t m;
    assert_int_equal(cdp_scan(cmd, len, &m), 0);
    assert_true(m.id_is_int);
    assert_int_equal(m.id, id);
    assert_true(cdp_string_equals(m.session_id, "S1", 2));
    assert_true(cdp_string_equals(m.method, method, strlen(method)));
    assert_non_null(m.params.ptr);
}

static double param_number(const char *cmd, size_t len, const char *key) {
    cdp_msg_t m;
    cdp_value_t v;
    assert_int_equal(cdp_scan(cmd, len, &m), 0);
    assert_int_equal(cdp_object_get(m.params.ptr, m.params.len, key, strlen(key), &v), 0);
    assert_int_equal(v.type, CDP_T_NUMBER);
    return strtod(v.raw.ptr, NULL);
}

static void param_string(const char *cmd, size_t len, const char *key, const char *want) {
    cdp_msg_t m;
    cdp_value_t v;
    char buf[64];
    assert_int_equal(cdp_scan(cmd, len, &m), 0);
    assert_int_equal(cdp_object_get(m.params.ptr, m.params.len, key, strlen(key), &v), 0);
    assert_int_equal(cdp_string_copy(&v, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
}

static void test_mouse_down_is_a_move_then_a_press_scaled_to_the_page(void **state) {
    (void)state;
    liveview_input_t in;
    assert_int_equal(parse("{\"type\":\"mouse\",\"action\":\"down\",\"x\":0.25,\"y\":0.5,\"clicks\":1}", &in), 0);
    char *out[LIVEVIEW_MAX_COMMANDS];
    size_t lens[LIVEVIEW_MAX_COMMANDS];
    int n;
    assert_int_equal(liveview_input_commands(&in, 800, 600, "S1", -1000000000, out, lens, &n), 0);
    assert_int_equal(n, 2);
    check_command(out[0], lens[0], -1000000000, "Input.dispatchMouseEvent");
    param_string(out[0], lens[0], "type", "mouseMoved");
    check_command(out[1], lens[1], -1000000001, "Input.dispatchMouseEvent");
    param_string(out[1], lens[1], "type", "mousePressed");
    param_string(out[1], lens[1], "button", "left");
    assert_true(param_number(out[1], lens[1], "x") == 200.0);
    assert_true(param_number(out[1], lens[1], "y") == 300.0);
    assert_true(param_number(out[1], lens[1], "clickCount") == 1.0);
    for (int i = 0; i < n; i++) free(out[i]);
}

static void test_wheel_and_keys(void **state) {
    (void)state;
    liveview_input_t in;
    char *out[LIVEVIEW_MAX_COMMANDS];
    size_t lens[LIVEVIEW_MAX_COMMANDS];
    int n;
    assert_int_equal(parse("{\"type\":\"wheel\",\"x\":1,\"y\":1,\"dy\":120.5}", &in), 0);
    assert_int_equal(liveview_input_commands(&in, 1000, 500, "S1", 7, out, lens, &n), 0);
    assert_int_equal(n, 1);
    check_command(out[0], lens[0], 7, "Input.dispatchMouseEvent");
    param_string(out[0], lens[0], "type", "mouseWheel");
    assert_true(param_number(out[0], lens[0], "x") == 1000.0);
    assert_true(param_number(out[0], lens[0], "deltaY") == 120.5);
    free(out[0]);

    /* a printable key types its text; quotes and backslashes stay inside their string */
    assert_int_equal(parse("{\"type\":\"key\",\"action\":\"down\",\"key\":\"\\\"\",\"code\":\"Quote\",\"text\":\"\\\"\","
                           "\"keyCode\":222}", &in), 0);
    assert_int_equal(liveview_input_commands(&in, 10, 10, "S1", 9, out, lens, &n), 0);
    check_command(out[0], lens[0], 9, "Input.dispatchKeyEvent");
    param_string(out[0], lens[0], "type", "keyDown");
    param_string(out[0], lens[0], "key", "\"");
    param_string(out[0], lens[0], "text", "\"");
    assert_true(param_number(out[0], lens[0], "windowsVirtualKeyCode") == 222.0);
    free(out[0]);
    /* without text: a raw key down (Tab, arrows); up never carries text */
    assert_int_equal(parse("{\"type\":\"key\",\"action\":\"down\",\"key\":\"Tab\",\"keyCode\":9}", &in), 0);
    assert_int_equal(liveview_input_commands(&in, 10, 10, "S1", 9, out, lens, &n), 0);
    param_string(out[0], lens[0], "type", "rawKeyDown");
    free(out[0]);
    assert_int_equal(parse("{\"type\":\"key\",\"action\":\"up\",\"key\":\"a\",\"text\":\"a\"}", &in), 0);
    assert_int_equal(liveview_input_commands(&in, 10, 10, "S1", 9, out, lens, &n), 0);
    param_string(out[0], lens[0], "type", "keyUp");
    assert_null(strstr(out[0], "\"text\""));
    free(out[0]);
}

/* Before a first frame the page's size is unknown: nothing is sent. */
static void test_no_commands_without_a_page_size(void **state) {
    (void)state;
    liveview_input_t in;
    char *out[LIVEVIEW_MAX_COMMANDS];
    size_t lens[LIVEVIEW_MAX_COMMANDS];
    int n = 5;
    assert_int_equal(parse("{\"type\":\"mouse\",\"action\":\"up\",\"x\":0,\"y\":0}", &in), 0);
    assert_int_equal(liveview_input_commands(&in, 0, 600, "S1", 1, out, lens, &n), -EINVAL);
    assert_int_equal(n, 0);
}

static void test_inspect_params(void **state) {
    (void)state;
    bool input = true;
    const char *why = NULL;
    assert_int_equal(liveview_inspect_params(NULL, 0, &input, &why), 0);
    assert_false(input);
    assert_int_equal(liveview_inspect_params("{}", 2, &input, &why), 0);
    assert_false(input);
    assert_int_equal(liveview_inspect_params("{\"input\":true}", 14, &input, &why), 0);
    assert_true(input);
    assert_int_equal(liveview_inspect_params("{\"input\":false}", 15, &input, &why), 0);
    assert_false(input);
    assert_int_equal(liveview_inspect_params("{\"input\":1}", 11, &input, &why), -EINVAL);
    assert_string_equal(why, "Page.inspect: params.input must be a boolean");
    assert_int_equal(liveview_inspect_params("[true]", 6, &input, &why), -EINVAL);
    assert_string_equal(why, "Page.inspect: params must be an object");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mouse_down_parses_with_defaults),
        cmocka_unit_test(test_bad_messages_are_refused),
        cmocka_unit_test(test_mouse_down_is_a_move_then_a_press_scaled_to_the_page),
        cmocka_unit_test(test_wheel_and_keys),
        cmocka_unit_test(test_no_commands_without_a_page_size),
        cmocka_unit_test(test_inspect_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
