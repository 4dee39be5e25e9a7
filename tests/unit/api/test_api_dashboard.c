/* The dashboard's files built into the binary: the very bytes of src/api/dashboard/, each path
 * with its file, its media type and the security headers, and the route taking its own paths
 * only. (Served to a real Chromium by tests/e2e/dashboard.test.js.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/api/api_dashboard.c"

static unsigned char *read_source(const char *name, size_t *len) {
    const char *root = getenv("BROWSERD_SOURCE_ROOT");
    assert_non_null(root);
    char path[4096];
    snprintf(path, sizeof path, "%s/src/api/dashboard/%s", root, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    unsigned char *data = malloc((size_t)n);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static const asset_t *asset_of(const char *path) {
    for (size_t i = 0; i < sizeof assets / sizeof *assets; i++)
        if (strcmp(assets[i].path, path) == 0) return &assets[i];
    return NULL;
}

static void test_each_path_serves_its_source_file_with_its_type(void **state) {
    (void)state;
    static const struct {
        const char *path, *file, *type;
    } want[] = {
        {"/", "index.html", "Content-Type: text/html; charset=utf-8\r\n"},
        {"/dashboard", "index.html", "Content-Type: text/html; charset=utf-8\r\n"},
        {"/dashboard/", "index.html", "Content-Type: text/html; charset=utf-8\r\n"},
        {"/dashboard/app.js", "app.js", "Content-Type: text/javascript; charset=utf-8\r\n"},
        {"/dashboard/app.css", "app.css", "Content-Type: text/css; charset=utf-8\r\n"},
    };
    assert_int_equal(sizeof assets / sizeof *assets, sizeof want / sizeof *want);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const asset_t *a = asset_of(want[i].path);
        assert_non_null(a);
        size_t len = 0;
        unsigned char *file = read_source(want[i].file, &len);
        assert_int_equal(a->len, len);
        assert_memory_equal(a->bytes, file, len);
        free(file);
        assert_true(strncmp(a->headers, want[i].type, strlen(want[i].type)) == 0);
        assert_non_null(strstr(a->headers, "Content-Security-Policy: default-src 'none'; script-src 'self'; "));
        assert_null(strstr(a->headers, "unsafe-inline"));
        assert_non_null(strstr(a->headers, "X-Content-Type-Options: nosniff\r\n"));
    }
}

static void test_other_paths_are_left_alone(void **state) {
    (void)state;
    const char *paths[] = {"/healthz", "/dashboardx", "/dashboard/app.jsx", "/dashboard/x", "/DASHBOARD", "//",
                           "/browser_sessions", "/index.html", "/app.js", "/dashboard/app.js/"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        http_request_t req;
        memset(&req, 0, sizeof req);
        req.method = HTTP_M_GET;
        req.path = paths[i];
        req.path_len = strlen(paths[i]);
        /* no connection: answering anything would crash */
        assert_false(api_dashboard_handle(NULL, &req));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_path_serves_its_source_file_with_its_type),
        cmocka_unit_test(test_other_paths_are_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
