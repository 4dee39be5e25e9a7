/* libFuzzer target for what browserd reads of WebDriver traffic (src/webdriver/webdriver_proto.c):
 * a client's New Session body, the driver's New Session answer, and command paths. Checks,
 * besides crashes and sanitizer reports:
 *   - an accepted New Session request is JSON whose only chromeOptions key is the attach
 *     address browserd gave (nothing of the client's reaches the driver's browser options);
 *   - a refusal always comes with a message;
 *   - an accepted answer names our session id, and the driver's id fits its buffer;
 *   - a command path's id is non-empty and lies within the path, and its rest starts with '/'
 *     or is empty. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webdriver/webdriver_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *out = NULL;
    char err[256] = "";
    int rc = webdriver_new_session_request(copy, size, "127.0.0.1:9222", &out, err, sizeof err);
    if (rc == 0) {
        cJSON *doc = cJSON_Parse(out);
        cJSON *chrome = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "capabilities"), "alwaysMatch"),
                                            "goog:chromeOptions");
        cJSON *addr = cJSON_GetObjectItem(chrome, "debuggerAddress");
        if (!doc || cJSON_GetArraySize(chrome) != 1 || !cJSON_IsString(addr) || strcmp(addr->valuestring, "127.0.0.1:9222"))
            abort();
        cJSON_Delete(doc);
        free(out);
    } else if (rc == -22 && !err[0]) {
        abort();
    }
    size_t len = 0;
    char driver_id[128];
    if (webdriver_new_session_answer(copy, size, "ours", &out, &len, driver_id, sizeof driver_id) == 0) {
        if (!strstr(out, "\"sessionId\":\"ours\"") || strlen(out) != len || !memchr(driver_id, 0, sizeof driver_id)) abort();
        free(out);
    }
    const char *id, *rest;
    size_t id_len;
    if (webdriver_session_path(copy, &id, &id_len, &rest)) {
        if (!id_len || id < copy || id + id_len > copy + size || (*rest && *rest != '/')) abort();
    }
    free(copy);
    return 0;
}
