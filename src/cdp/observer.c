#include "cdp/observer.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/browser_pool.h"

/* Setup command ids: the attach, then one id per later command, counting down. */
#define ID_ATTACH (BROWSER_POOL_SETUP_ID_MAX)
#define ID_AUTO_ATTACH (BROWSER_POOL_SETUP_ID_MAX - 1)

void observer_init(observer_t *o, browser_t *b, void (*on_ready)(void *ctx), void *ctx) {
    memset(o, 0, sizeof *o);
    o->browser = b;
    o->next_id = BROWSER_POOL_SETUP_ID_MAX - 2;
    o->on_ready = on_ready;
    o->ctx = ctx;
    recorder_init(&o->recorder);
}

void observer_free(observer_t *o) { recorder_free(&o->recorder); }

static int send_command(observer_t *o, int64_t id, const char *session, const char *method, const char *params) {
    char buf[512];
    int n;
    if (session && *session)
        n = snprintf(buf, sizeof buf, "{\"id\":%lld,\"sessionId\":\"%s\",\"method\":\"%s\",\"params\":%s}",
                     (long long)id, session, method, params ? params : "{}");
    else
        n = snprintf(buf, sizeof buf, "{\"id\":%lld,\"method\":\"%s\",\"params\":%s}", (long long)id, method,
                     params ? params : "{}");
    if (n < 0 || (size_t)n >= sizeof buf) return -1;
    char *msg = malloc((size_t)n + 1);
    if (!msg) return -1;
    memcpy(msg, buf, (size_t)n + 1);
    return browser_send(o->browser, msg, (size_t)n) < 0 ? -1 : 0;
}

int observer_start(observer_t *o) {
    return send_command(o, ID_ATTACH, NULL, "Target.attachToBrowserTarget", NULL);
}

bool observer_owns_session(const observer_t *o, const char *id, size_t len) {
    if (!len || len > OBSERVER_SESSION_ID_MAX) return false;
    if (strlen(o->root_session) == len && memcmp(o->root_session, id, len) == 0) return true;
    for (size_t i = 0; i < o->npages; i++)
        if (strlen(o->pages[i]) == len && memcmp(o->pages[i], id, len) == 0) return true;
    return false;
}

/* Every target the observer attaches to (pages, workers, ...) is one of its sessions: what
 * comes from it is never the client's. Pages also get the domains the recorder listens to. */
static void add_session(observer_t *o, const char *session_id, bool page, const char *target_id) {
    if (strlen(session_id) > OBSERVER_SESSION_ID_MAX || o->npages == OBSERVER_MAX_PAGES) return;
    size_t i = o->npages++;
    snprintf(o->pages[i], OBSERVER_SESSION_ID_MAX + 1, "%s", session_id);
    snprintf(o->frame_id[i], OBSERVER_SESSION_ID_MAX + 1, "%s", target_id ? target_id : "");
    o->committed[i] = false;
    o->enable_id[i] = o->history_id[i] = 0;
    if (!page) return;
    /* A first navigation may commit before Page.enable has reached the page (a tab opened
     * with a URL, a navigation sent right after the page appeared): once the enable is
     * answered, the history tells (see catch_up). */
    o->enable_id[i] = o->next_id--;
    send_command(o, o->enable_id[i], session_id, "Page.enable", NULL);
    send_command(o, o->next_id--, session_id, "Network.enable", NULL);
}

static ptrdiff_t session_index(const observer_t *o, const char *id, size_t len) {
    for (size_t i = 0; i < o->npages; i++)
        if (strlen(o->pages[i]) == len && memcmp(o->pages[i], id, len) == 0) return (ptrdiff_t)i;
    return -1;
}

/* The reply to a page's Page.getNavigationHistory, asked once its Page.enable was answered:
 * from then on every commit sends Page.frameNavigated. Events and replies of one session
 * arrive in order, so if no main-frame commit was seen before this reply, a committed document
 * the history shows came before the Page domain was on: it is counted now, as a commit. */
static void catch_up(observer_t *o, size_t page, const cdp_msg_t *scan) {
    if (o->committed[page] || !scan->result.ptr) return;
    cJSON *result = cJSON_ParseWithLength(scan->result.ptr, scan->result.len);
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(result, "currentIndex");
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(result, "entries");
    const cJSON *entry = cJSON_IsNumber(index) ? cJSON_GetArrayItem(entries, index->valueint) : NULL;
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(entry, "url");
    if (cJSON_IsString(url) && !recorder_is_internal_url(url->valuestring)) {
        cJSON *params = cJSON_CreateObject(), *frame = cJSON_CreateObject();
        if (params && frame && cJSON_AddStringToObject(frame, "id", o->frame_id[page]) &&
            cJSON_AddStringToObject(frame, "url", url->valuestring)) {
            cJSON_AddItemToObject(params, "frame", frame);
            frame = NULL;
            recorder_page_event(&o->recorder, "Page.frameNavigated", params);
        }
        cJSON_Delete(frame);
        cJSON_Delete(params);
    }
    o->committed[page] = true;
    cJSON_Delete(result);
}

static void remove_page(observer_t *o, const char *session_id) {
    for (size_t i = 0; i < o->npages; i++)
        if (strcmp(o->pages[i], session_id) == 0) {
            size_t last = --o->npages;
            memcpy(o->pages[i], o->pages[last], sizeof o->pages[i]);
            memcpy(o->frame_id[i], o->frame_id[last], sizeof o->frame_id[i]);
            o->enable_id[i] = o->enable_id[last];
            o->history_id[i] = o->history_id[last];
            o->committed[i] = o->committed[last];
            return;
        }
}

static void on_reply(observer_t *o, int64_t id, const char *msg, size_t len, const cdp_msg_t *scan) {
    if (scan->error.ptr && (id == ID_ATTACH || id == ID_AUTO_ATTACH)) {
        fprintf(stderr, "event=observer_setup_failed id=%lld reply=%.*s\n", (long long)id, (int)(len > 300 ? 300 : len),
                msg);
        o->failed = true;
        o->ready = true; /* the session still works; it just cannot see navigations */
        if (o->on_ready) o->on_ready(o->ctx);
        return;
    }
    if (id == ID_ATTACH) {
        cdp_value_t v;
        if (scan->result.ptr && cdp_object_get(scan->result.ptr, scan->result.len, "sessionId", 9, &v) == 0 &&
            v.type == CDP_T_STRING && !v.escaped && v.str.len <= OBSERVER_SESSION_ID_MAX) {
            memcpy(o->root_session, v.str.ptr, v.str.len);
            o->root_session[v.str.len] = '\0';
            send_command(o, o->next_id--, o->root_session, "Target.setDiscoverTargets", "{\"discover\":true}");
            send_command(o, ID_AUTO_ATTACH, o->root_session, "Target.setAutoAttach",
                         "{\"autoAttach\":true,\"waitForDebuggerOnStart\":true,\"flatten\":true}");
        }
    } else if (id == ID_AUTO_ATTACH) {
        o->ready = true;
        if (o->on_ready) o->on_ready(o->ctx);
    }
}

static void on_event(observer_t *o, const char *msg, size_t len, const cdp_msg_t *scan, bool in_root) {
    (void)len;
    char method[96];
    if (!scan->method.ptr || scan->method_escaped || scan->method.len >= sizeof method) return;
    memcpy(method, scan->method.ptr, scan->method.len);
    method[scan->method.len] = '\0';
    /* Only a handful of event kinds matter; the rest (most of Network.*) is dropped unparsed. */
    /* Of the responses, only the traffic proxy's error pages matter (parsed only then). */
    bool proxy_error_page = strcmp(method, "Network.responseReceived") == 0 && scan->params.ptr &&
                            memmem(scan->params.ptr, scan->params.len, RECORDER_PROXY_ERROR_HEADER,
                                   strlen(RECORDER_PROXY_ERROR_HEADER)) != NULL;
    bool wanted = strcmp(method, "Page.frameNavigated") == 0 || strcmp(method, "Network.requestWillBeSent") == 0 ||
                  strcmp(method, "Network.loadingFailed") == 0 || strcmp(method, "Network.loadingFinished") == 0 ||
                  proxy_error_page ||
                  (in_root && (strcmp(method, "Target.attachedToTarget") == 0 ||
                               strcmp(method, "Target.detachedFromTarget") == 0));
    if (!wanted || !scan->params.ptr) return;
    cJSON *params = cJSON_ParseWithLength(scan->params.ptr, scan->params.len);
    if (!params) return;
    (void)msg;
    if (in_root && strcmp(method, "Target.attachedToTarget") == 0) {
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(params, "sessionId");
        const cJSON *info = cJSON_GetObjectItemCaseSensitive(params, "targetInfo");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(info, "type");
        const cJSON *target = cJSON_GetObjectItemCaseSensitive(info, "targetId");
        bool page = cJSON_IsString(type) && strcmp(type->valuestring, "page") == 0;
        if (cJSON_IsString(sid))
            add_session(o, sid->valuestring, page, cJSON_IsString(target) ? target->valuestring : NULL);
        if (page && cJSON_IsString(target)) recorder_page_opened(&o->recorder, target->valuestring);
        /* A new target waits (we asked for waitForDebuggerOnStart) until every session that
         * asked for that lets it run: ours does so only after Page and Network are enabled
         * above, so not even the first navigation of a new tab or popup goes unseen. The
         * commands run in order, so the release comes after the enables. */
        if (cJSON_IsString(sid) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(params, "waitingForDebugger")))
            send_command(o, o->next_id--, sid->valuestring, "Runtime.runIfWaitingForDebugger", NULL);
    } else if (in_root && strcmp(method, "Target.detachedFromTarget") == 0) {
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(params, "sessionId");
        const cJSON *target = cJSON_GetObjectItemCaseSensitive(params, "targetId");
        if (cJSON_IsString(sid)) remove_page(o, sid->valuestring);
        if (cJSON_IsString(target)) recorder_page_closed(&o->recorder, target->valuestring);
    } else if (!in_root) {
        if (strcmp(method, "Page.frameNavigated") == 0) {
            const cJSON *frame = cJSON_GetObjectItemCaseSensitive(params, "frame");
            ptrdiff_t i = session_index(o, scan->session_id.ptr, scan->session_id.len);
            if (i >= 0 && cJSON_IsObject(frame) && !cJSON_GetObjectItemCaseSensitive(frame, "parentId"))
                o->committed[i] = true;
        }
        recorder_page_event(&o->recorder, method, params);
    }
    cJSON_Delete(params);
}

bool observer_consume(observer_t *o, const char *msg, size_t len, const cdp_msg_t *scan) {
    bool has_session = scan->session_id.ptr != NULL;
    bool ours = has_session && observer_owns_session(o, scan->session_id.ptr, scan->session_id.len);
    if (scan->id_is_int && scan->id <= BROWSER_POOL_SETUP_ID_MAX && (!has_session || ours)) {
        ptrdiff_t i = has_session ? session_index(o, scan->session_id.ptr, scan->session_id.len) : -1;
        if (i >= 0 && o->enable_id[i] == scan->id) {
            o->history_id[i] = o->next_id--;
            send_command(o, o->history_id[i], o->pages[i], "Page.getNavigationHistory", NULL);
        } else if (i >= 0 && o->history_id[i] == scan->id) {
            catch_up(o, (size_t)i, scan);
        } else {
            on_reply(o, scan->id, msg, len, scan);
        }
        return true;
    }
    if (!ours) return false;
    if (!(scan->present & CDP_KEY_ID)) {
        bool in_root = strlen(o->root_session) == scan->session_id.len &&
                       memcmp(o->root_session, scan->session_id.ptr, scan->session_id.len) == 0;
        on_event(o, msg, len, scan, in_root);
    }
    return true;
}
