/* Browsers under a user of their own (src/cdp/browser_user.c): resolving --browser-user and
 * preparing that user's temp root. Most of it needs root (CI runs as root); as another user
 * only the refusal is checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdp/browser_user.h"

#define NOBODY_UID 65534

static int resolve_refused_as_non_root(void) {
    browser_user_t u;
    char err[256] = "";
    return browser_user_resolve("nobody", &u, err, sizeof err) == -1 && strstr(err, "not root") ? 0 : 1;
}

static void test_not_root_is_refused_with_the_reason(void **state) {
    (void)state;
    if (geteuid() != 0) {
        assert_int_equal(resolve_refused_as_non_root(), 0);
        return;
    }
    pid_t pid = fork(); /* as root: become nobody in a child and ask there */
    assert_true(pid >= 0);
    if (pid == 0) _exit(setuid(NOBODY_UID) == 0 ? resolve_refused_as_non_root() : 2);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_names_and_uids_resolve_root_and_strangers_do_not(void **state) {
    (void)state;
    if (geteuid() != 0) skip();
    browser_user_t u;
    char err[256];
    assert_int_equal(browser_user_resolve("nobody", &u, err, sizeof err), 0);
    assert_int_equal(u.uid, NOBODY_UID);
    assert_string_equal(u.name, "nobody");
    assert_int_equal(browser_user_resolve("65534", &u, err, sizeof err), 0); /* a uid */
    assert_string_equal(u.name, "nobody");
    err[0] = '\0';
    assert_int_equal(browser_user_resolve("no-such-user-xq", &u, err, sizeof err), -1);
    assert_non_null(strstr(err, "no user 'no-such-user-xq'"));
    assert_int_equal(browser_user_resolve("root", &u, err, sizeof err), -1); /* no sandbox as root */
    assert_non_null(strstr(err, "root"));
    assert_int_equal(browser_user_resolve("0", &u, err, sizeof err), -1);
    assert_int_equal(browser_user_resolve("", &u, err, sizeof err), -1);
    assert_int_equal(browser_user_resolve("4294967296", &u, err, sizeof err), -1); /* not a uid */
}

static void test_the_root_is_made_the_users_and_checked_as_the_user(void **state) {
    (void)state;
    if (geteuid() != 0) skip();
    browser_user_t u;
    char err[600];
    assert_int_equal(browser_user_resolve("nobody", &u, err, sizeof err), 0);
    char top[] = "/tmp/browser-user-test-XXXXXX";
    assert_non_null(mkdtemp(top));
    assert_int_equal(chmod(top, 0755), 0);
    char root[128];
    snprintf(root, sizeof root, "%s/browserd-%u", top, (unsigned)u.uid);

    /* absent: created, the user's, 0700 */
    assert_int_equal(browser_user_prepare_root(&u, root, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(lstat(root, &st), 0);
    assert_int_equal(st.st_uid, u.uid);
    assert_int_equal(st.st_mode & 07777, 0700);
    /* present and loose: tightened; again: fine */
    assert_int_equal(chmod(root, 0755), 0);
    assert_int_equal(browser_user_prepare_root(&u, root, err, sizeof err), 0);
    assert_int_equal(lstat(root, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    /* a parent the user cannot search: refused, naming what to fix */
    assert_int_equal(chmod(top, 0700), 0);
    err[0] = '\0';
    assert_int_equal(browser_user_prepare_root(&u, root, err, sizeof err), -1);
    assert_non_null(strstr(err, "searchable"));
    assert_int_equal(chmod(top, 0755), 0);

    /* someone else's directory, or a symlink, under that name: refused */
    assert_int_equal(rmdir(root), 0);
    assert_int_equal(mkdir(root, 0700), 0); /* root's own */
    assert_int_equal(browser_user_prepare_root(&u, root, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a directory owned by nobody"));
    assert_int_equal(rmdir(root), 0);
    assert_int_equal(symlink(top, root), 0);
    assert_int_equal(browser_user_prepare_root(&u, root, err, sizeof err), -1);
    assert_int_equal(unlink(root), 0);
    assert_int_equal(rmdir(top), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_root_is_refused_with_the_reason),
        cmocka_unit_test(test_names_and_uids_resolve_root_and_strangers_do_not),
        cmocka_unit_test(test_the_root_is_made_the_users_and_checked_as_the_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
