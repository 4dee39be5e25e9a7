/* The browser's product name from `chromium --version`'s text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>

#include "cdp/browser_version.h"

static void test_product_from_version_text(void **state) {
    (void)state;
    char out[64];
    assert_int_equal(browser_version_product("Chromium 156.0.8078.129 built on Debian GNU/Linux 12 (bookworm)\n", out, sizeof out), 0);
    assert_string_equal(out, "HeadlessChrome/156.0.8078.129");
    assert_int_equal(browser_version_product("Google Chrome 120.0.6099.71 \n", out, sizeof out), 0);
    assert_string_equal(out, "HeadlessChrome/120.0.6099.71");
    /* digits inside a word, a version with one dot, a trailing dot: not a version */
    const char *bad[] = {"", "Chromium", "Chromium 156", "Chromium 1.2", "x156.0.1.2", "Chromium 156.0.", "built on 12"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_int_equal(browser_version_product(bad[i], out, sizeof out), -EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_product_from_version_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
