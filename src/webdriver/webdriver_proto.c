/* WebDriver documents browserd reads and writes: see webdriver_proto.h. cJSON is enough here:
 * these run once per session (New Session) or per error, never per command. */
#include "webdriver/webdriver_proto.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kept_capabilities[] = {"pageLoadStrategy", "timeouts", "unhandledPromptBehavior",
                                                "strictFileInteractability", "acceptInsecureCerts"};

/* Copies the kept capabilities of from into to (to's own win: alwaysMatch comes first). */
static int keep_from(cJSON *to, const cJSON *from) {
    for (size_t i = 0; from && i < sizeof kept_capabilities / sizeof *kept_capabilities; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, kept_capabilities[i]);
        if (!v || cJSON_GetObjectItemCaseSensitive(to, kept_capabilities[i])) continue;
        cJSON *copy = cJSON_Duplicate(v, 1);
        if (!copy || !cJSON_AddItemToObject(to, kept_capabilities[i], copy)) {
            cJSON_Delete(copy);
            return -ENOMEM;
        }
    }
    return 0;
}

/* What the client asked that browserd cannot give: a message, or NULL. */
static const char *refused(const cJSON *caps) {
    if (!caps) return NULL;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(caps, "browserName");
    if (name && !cJSON_IsNull(name) &&
        (!cJSON_IsString(name) || (strcmp(name->valuestring, "chrome") != 0 && strcmp(name->valuestring, "chromium") != 0)))
        return "browserd runs Chromium: browserName must be chrome (or left out)";
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(caps, "webSocketUrl");
    if (ws && cJSON_IsTrue(ws)) return "WebDriver BiDi (webSocketUrl) is not offered by browserd; use the CDP endpoint";
    const cJSON *proxy = cJSON_GetObjectItemCaseSensitive(caps, "proxy");
    if (proxy && !cJSON_IsNull(proxy))
        return "the proxy capability is not taken: a session's traffic goes through its zone's proxy (browserd zone "
               "set-proxy)";
    return NULL;
}

int webdriver_new_session_request(const char *body, size_t len, const char *debugger_address, char **out, char *err,
                                  size_t err_cap) {
    *out = NULL;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(doc, "capabilities");
    if (!cJSON_IsObject(caps)) {
        cJSON_Delete(doc);
        snprintf(err, err_cap, "the New Session body must be a JSON object with a capabilities object");
        return -EINVAL;
    }
    const cJSON *always = cJSON_GetObjectItemCaseSensitive(caps, "alwaysMatch");
    const cJSON *first_match = cJSON_GetObjectItemCaseSensitive(caps, "firstMatch");
    const cJSON *first = cJSON_IsArray(first_match) ? cJSON_GetArrayItem(first_match, 0) : NULL;
    if ((always && !cJSON_IsObject(always)) || (first_match && !cJSON_IsArray(first_match)) ||
        (first && !cJSON_IsObject(first))) {
        cJSON_Delete(doc);
        snprintf(err, err_cap, "capabilities.alwaysMatch must be an object and firstMatch an array of objects");
        return -EINVAL;
    }
    const char *why = refused(always);
    if (!why) why = refused(first);
    if (why) {
        snprintf(err, err_cap, "%s", why);
        cJSON_Delete(doc);
        return -EINVAL;
    }
    int rc = -ENOMEM;
    cJSON *req = cJSON_CreateObject();
    cJSON *rcaps = cJSON_AddObjectToObject(req, "capabilities");
    cJSON *ralways = rcaps ? cJSON_AddObjectToObject(rcaps, "alwaysMatch") : NULL;
    cJSON *chrome = NULL;
    if (ralways && cJSON_AddStringToObject(ralways, "browserName", "chrome") && keep_from(ralways, always) == 0 &&
        keep_from(ralways, first) == 0 && (chrome = cJSON_AddObjectToObject(ralways, "goog:chromeOptions")) &&
        cJSON_AddStringToObject(chrome, "debuggerAddress", debugger_address)) {
        *out = cJSON_PrintUnformatted(req);
        if (*out) rc = 0;
    }
    cJSON_Delete(req);
    cJSON_Delete(doc);
    return rc;
}

int webdriver_new_session_answer(const char *body, size_t len, const char *session_id, char **out, size_t *out_len,
                                 char *driver_id, size_t cap) {
    *out = NULL;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    cJSON *value = cJSON_GetObjectItemCaseSensitive(doc, "value");
    cJSON *sid = cJSON_GetObjectItemCaseSensitive(value, "sessionId");
    if (!cJSON_IsString(sid) || !*sid->valuestring || strlen(sid->valuestring) >= cap) {
        cJSON_Delete(doc);
        return -EINVAL;
    }
    snprintf(driver_id, cap, "%s", sid->valuestring);
    int rc = -ENOMEM;
    cJSON *ours = cJSON_CreateString(session_id);
    if (ours && cJSON_ReplaceItemInObjectCaseSensitive(value, "sessionId", ours)) {
        cJSON *caps = cJSON_GetObjectItemCaseSensitive(value, "capabilities");
        cJSON_DeleteItemFromObjectCaseSensitive(caps, "goog:chromeOptions");
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(caps, "chrome"), "userDataDir");
        *out = cJSON_PrintUnformatted(doc);
        if (*out) {
            *out_len = strlen(*out);
            rc = 0;
        }
    } else {
        cJSON_Delete(ours);
    }
    cJSON_Delete(doc);
    return rc;
}

char *webdriver_error_body(const char *error, const char *message, size_t *len) {
    cJSON *doc = cJSON_CreateObject();
    cJSON *value = cJSON_AddObjectToObject(doc, "value");
    char *s = NULL;
    if (value && cJSON_AddStringToObject(value, "error", error) && cJSON_AddStringToObject(value, "message", message) &&
        cJSON_AddStringToObject(value, "stacktrace", ""))
        s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (s) *len = strlen(s);
    return s;
}

bool webdriver_session_path(const char *path, const char **id, size_t *id_len, const char **rest) {
    static const char prefix[] = "/session/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) return false;
    const char *p = path + sizeof prefix - 1;
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0) return false;
    *id = p;
    *id_len = n;
    *rest = p + n;
    return true;
}
