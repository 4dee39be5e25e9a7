/* The OpenAPI document built into the binary: the very bytes of src/api/openapi.json, one
 * valid JSON document of OpenAPI 3.1 with the project's version, and the route that serves it
 * taking its own path only. (Served over HTTP and checked against live answers by
 * tests/openapi/.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "api/api_openapi.h"

/* The whole file, as read from the source tree (the test's environment names it). */
static unsigned char *read_source(size_t *len) {
    const char *root = getenv("BROWSERD_SOURCE_ROOT");
    assert_non_null(root);
    char path[4096];
    snprintf(path, sizeof path, "%s/src/api/openapi.json", root);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    unsigned char *data = malloc(cap);
    assert_non_null(data);
    size_t got;
    while ((got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            data = realloc(data, cap);
            assert_non_null(data);
        }
    }
    fclose(f);
    *len = n;
    return data;
}

static void test_document_is_the_source_file_byte_for_byte(void **state) {
    (void)state;
    size_t len = 0, file_len = 0;
    const unsigned char *doc = api_openapi_document(&len);
    unsigned char *file = read_source(&file_len);
    assert_int_equal(len, file_len);
    assert_memory_equal(doc, file, len);
    free(file);
}

static void test_document_is_openapi_3_1_of_this_version(void **state) {
    (void)state;
    size_t len = 0;
    const unsigned char *doc = api_openapi_document(&len);
    cJSON *root = cJSON_ParseWithLength((const char *)doc, len);
    assert_non_null(root);
    const cJSON *openapi = cJSON_GetObjectItemCaseSensitive(root, "openapi");
    assert_true(cJSON_IsString(openapi));
    assert_string_equal(openapi->valuestring, "3.1.0");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(root, "info");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(info, "version");
    assert_true(cJSON_IsString(version));
    const char *want = getenv("BROWSERD_VERSION");
    assert_non_null(want);
    assert_string_equal(version->valuestring, want);
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(root, "paths");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(paths, API_OPENAPI_PATH));
    cJSON_Delete(root);
}

static void test_other_paths_are_left_alone(void **state) {
    (void)state;
    const char *paths[] = {"/healthz", "/openapi.jso", "/openapi.jsonx", "/openapi.json/", "/OPENAPI.JSON",
                           "/browser_sessions", "/", "//openapi.json"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        http_request_t req;
        memset(&req, 0, sizeof req);
        req.method = HTTP_M_GET;
        req.path = paths[i];
        req.path_len = strlen(paths[i]);
        /* no connection: answering anything would crash */
        assert_false(api_openapi_handle(NULL, &req));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document_is_the_source_file_byte_for_byte),
        cmocka_unit_test(test_document_is_openapi_3_1_of_this_version),
        cmocka_unit_test(test_other_paths_are_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
