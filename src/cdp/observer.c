#include "core/log.h"
#include "cdp/observer.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_ids.h"

#define KEY(s) {s, sizeof s - 1}

void observer_init(observer_t *o, observer_send_fn send, void *send_ctx) {
    memset(o, 0, sizeof *o);
    o->send = send;
    o->send_ctx = send_ctx;
    o->next_id = CDP_ID_OBSERVER_NEXT;
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
    return o->send(o->send_ctx, msg, (size_t)n) < 0 ? -1 : 0;
}

void observer_set_hooks(observer_t *o, const observer_hooks_t *hooks) { o->hooks = *hooks; }

int64_t observer_send(observer_t *o, const char *session, const char *method, const char *params) {
    if (!params) params = "{}";
    size_t cap = strlen(params) + strlen(method) + (session ? strlen(session) : 0) + 80;
    char *msg = malloc(cap);
    if (!msg) return 0;
    int64_t id = o->next_id--;
    int n = session && *session
                ? snprintf(msg, cap, "{\"id\":%lld,\"sessionId\":\"%s\",\"method\":\"%s\",\"params\":%s}", (long long)id,
                           session, method, params)
                : snprintf(msg, cap, "{\"id\":%lld,\"method\":\"%s\",\"params\":%s}", (long long)id, method, params);
    if (n < 0 || (size_t)n >= cap) {
        free(msg);
        return 0;
    }
    return o->send(o->send_ctx, msg, (size_t)n) < 0 ? 0 : id;
}

const char *observer_session_target(const observer_t *o, const char *session) {
    for (size_t i = 0; i < o->npages; i++)
        if (strcmp(o->pages[i], session) == 0) return o->frame_id[i];
    return "";
}

const char *observer_target_session(const observer_t *o, const char *target) {
    for (size_t i = o->npages; i-- > 0;)
        if (o->enable_id[i] && strcmp(o->frame_id[i], target) == 0) return o->pages[i];
    return NULL;
}

int observer_start(observer_t *o) {
    return send_command(o, CDP_ID_OBSERVER_ATTACH, NULL, "Target.attachToBrowserTarget", NULL);
}

void observer_summary(const observer_t *o, observer_summary_t *out) {
    const recorder_t *r = &o->recorder;
    out->navigations = r->navigations;
    out->target_url = r->target_url;
    out->end_url = r->end_url;
    out->last_failed = r->last_failed;
    out->last_error = r->last_error;
}

bool observer_take_changed(observer_t *o) {
    bool changed = o->recorder.changed;
    o->recorder.changed = false;
    return changed;
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
    o->committed[page] = true;
    static const cdp_slice_t keys[] = {KEY("currentIndex"), KEY("entries")};
    cdp_value_t v[2], entry, url;
    unsigned found;
    int64_t index;
    if (cdp_object_get_many(scan->result.ptr, scan->result.len, keys, 2, v, &found) != 0 ||
        v[0].type != CDP_T_NUMBER || cdp_number_int(v[0].raw, &index) != 0 || index < 0 ||
        v[1].type != CDP_T_ARRAY || cdp_array_get(v[1].raw.ptr, v[1].raw.len, (size_t)index, &entry) != 0 ||
        entry.type != CDP_T_OBJECT || cdp_object_get(entry.raw.ptr, entry.raw.len, "url", 3, &url) != 0)
        return;
    char *u = cdp_string_dup(&url);
    if (u) recorder_navigation_committed(&o->recorder, u);
    free(u);
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
    if (scan->error.ptr && (id == CDP_ID_OBSERVER_ATTACH || id == CDP_ID_OBSERVER_AUTO_ATTACH)) {
        log_event(LOG_WARN, "gateway", "observer_setup_failed", "id=%lld reply=\"%.*s\"", (long long)id, (int)(len > 300 ? 300 : len),
                msg);
        o->failed = true;
        o->ready = true; /* the session still works; it just cannot see navigations */
        return;
    }
    if (id == CDP_ID_OBSERVER_ATTACH) {
        cdp_value_t v;
        if (scan->result.ptr && cdp_object_get(scan->result.ptr, scan->result.len, "sessionId", 9, &v) == 0 &&
            v.type == CDP_T_STRING && !v.escaped && v.str.len <= OBSERVER_SESSION_ID_MAX) {
            memcpy(o->root_session, v.str.ptr, v.str.len);
            o->root_session[v.str.len] = '\0';
            send_command(o, o->next_id--, o->root_session, "Target.setDiscoverTargets", "{\"discover\":true}");
            send_command(o, CDP_ID_OBSERVER_AUTO_ATTACH, o->root_session, "Target.setAutoAttach",
                         "{\"autoAttach\":true,\"waitForDebuggerOnStart\":true,\"flatten\":true}");
        }
    } else if (id == CDP_ID_OBSERVER_AUTO_ATTACH) {
        o->ready = true;
    }
}

/* A string member into buf (session and target ids are short), or NULL. */
static const char *str_of(const cdp_value_t *v, char *buf, size_t cap) {
    return v->type == CDP_T_STRING && cdp_string_copy(v, buf, cap) == 0 ? buf : NULL;
}

static void on_target_attached(observer_t *o, const char *params, size_t len) {
    static const cdp_slice_t keys[] = {KEY("sessionId"), KEY("targetInfo"), KEY("waitingForDebugger")};
    static const cdp_slice_t info_keys[] = {KEY("type"), KEY("targetId")};
    cdp_value_t v[3], info[2] = {{0}};
    unsigned found;
    if (cdp_object_get_many(params, len, keys, 3, v, &found) != 0) return;
    if (v[1].type == CDP_T_OBJECT) cdp_object_get_many(v[1].raw.ptr, v[1].raw.len, info_keys, 2, info, &found);
    char sid_buf[OBSERVER_SESSION_ID_MAX + 1], target_buf[OBSERVER_SESSION_ID_MAX + 1];
    const char *sid = str_of(&v[0], sid_buf, sizeof sid_buf);
    const char *target = str_of(&info[1], target_buf, sizeof target_buf);
    bool page = cdp_string_equals(info[0].str, "page", 4);
    if (sid) add_session(o, sid, page, target);
    if (page && target) recorder_page_opened(&o->recorder, target);
    /* A new target waits (we asked for waitForDebuggerOnStart) until every session that
     * asked for that lets it run: ours does so only after Page and Network are enabled
     * above, so not even the first navigation of a new tab or popup goes unseen. The
     * commands run in order, so the release comes after the enables. */
    if (sid && v[2].type == CDP_T_TRUE) send_command(o, o->next_id--, sid, "Runtime.runIfWaitingForDebugger", NULL);
}

static void on_target_detached(observer_t *o, const char *params, size_t len) {
    static const cdp_slice_t keys[] = {KEY("sessionId"), KEY("targetId")};
    cdp_value_t v[2];
    unsigned found;
    if (cdp_object_get_many(params, len, keys, 2, v, &found) != 0) return;
    char sid_buf[OBSERVER_SESSION_ID_MAX + 1], target_buf[OBSERVER_SESSION_ID_MAX + 1];
    const char *sid = str_of(&v[0], sid_buf, sizeof sid_buf);
    const char *target = str_of(&v[1], target_buf, sizeof target_buf);
    if (sid) remove_page(o, sid);
    if (target) recorder_page_closed(&o->recorder, target);
}

/* Whether a page session's Page.frameNavigated is of its main frame (no parentId). */
static bool main_frame_navigated(const char *params, size_t len) {
    cdp_value_t frame, parent;
    return cdp_object_get(params, len, "frame", 5, &frame) == 0 && frame.type == CDP_T_OBJECT &&
           cdp_object_get(frame.raw.ptr, frame.raw.len, "parentId", 8, &parent) == -ENOENT;
}

static void on_event(observer_t *o, const cdp_msg_t *scan, bool in_root) {
    char method[96];
    if (!scan->method.ptr || scan->method_escaped || scan->method.len >= sizeof method || !scan->params.ptr) return;
    memcpy(method, scan->method.ptr, scan->method.len);
    method[scan->method.len] = '\0';
    const char *params = scan->params.ptr;
    size_t len = scan->params.len;
    if (in_root) {
        if (strcmp(method, "Target.attachedToTarget") == 0) on_target_attached(o, params, len);
        else if (strcmp(method, "Target.detachedFromTarget") == 0) on_target_detached(o, params, len);
        return;
    }
    if (strcmp(method, "Page.frameNavigated") == 0) {
        ptrdiff_t i = session_index(o, scan->session_id.ptr, scan->session_id.len);
        if (i >= 0 && main_frame_navigated(params, len)) o->committed[i] = true;
    }
    /* The recorder picks what it needs: frame commits and document requests. */
    recorder_page_event(&o->recorder, method, params, len);
    if (o->hooks.request && strcmp(method, "Network.requestWillBeSent") == 0) {
        char sid[OBSERVER_SESSION_ID_MAX + 1];
        if (scan->session_id.len <= OBSERVER_SESSION_ID_MAX && !scan->session_id_escaped) {
            memcpy(sid, scan->session_id.ptr, scan->session_id.len);
            sid[scan->session_id.len] = '\0';
            o->hooks.request(o->hooks.ctx, sid, observer_session_target(o, sid), params, len);
        }
    }
}

/* Chromium announces the observer's attach to the browser target with a Target.attachedToTarget
 * at the root (no top-level sessionId), usually before its reply: browserd's, never the
 * client's to see. Before the reply, the first such event for a "browser" target (the observer
 * attaches before the client's first message is relayed); after it, the one naming the root
 * session. */
static bool is_own_browser_attach(observer_t *o, const cdp_msg_t *scan) {
    if (scan->session_id.ptr || (scan->present & CDP_KEY_ID) || !scan->params.ptr || !scan->method.ptr ||
        !cdp_string_equals(scan->method, "Target.attachedToTarget", 23))
        return false;
    cdp_value_t sid, info, type;
    const char *params = scan->params.ptr;
    size_t len = scan->params.len;
    if (cdp_object_get(params, len, "sessionId", 9, &sid) != 0 || sid.type != CDP_T_STRING) return false;
    if (o->root_session[0]) return cdp_string_equals(sid.str, o->root_session, strlen(o->root_session));
    if (o->own_attach_seen || cdp_object_get(params, len, "targetInfo", 10, &info) != 0 || info.type != CDP_T_OBJECT ||
        cdp_object_get(info.raw.ptr, info.raw.len, "type", 4, &type) != 0 || type.type != CDP_T_STRING ||
        !cdp_string_equals(type.str, "browser", 7))
        return false;
    o->own_attach_seen = true;
    return true;
}

bool observer_consume(observer_t *o, const char *msg, size_t len, const cdp_msg_t *scan) {
    if (is_own_browser_attach(o, scan)) return true;
    bool has_session = scan->session_id.ptr != NULL;
    bool ours = has_session && observer_owns_session(o, scan->session_id.ptr, scan->session_id.len);
    if (scan->id_is_int && cdp_id_observer(scan->id) && (!has_session || ours)) {
        ptrdiff_t i = has_session ? session_index(o, scan->session_id.ptr, scan->session_id.len) : -1;
        if (i >= 0 && o->enable_id[i] == scan->id) {
            o->history_id[i] = o->next_id--;
            send_command(o, o->history_id[i], o->pages[i], "Page.getNavigationHistory", NULL);
        } else if (i >= 0 && o->history_id[i] == scan->id) {
            catch_up(o, (size_t)i, scan);
        } else if (!o->hooks.reply || !o->hooks.reply(o->hooks.ctx, scan->id, msg, len, scan)) {
            on_reply(o, scan->id, msg, len, scan);
        }
        return true;
    }
    if (!ours) return false;
    if (!(scan->present & CDP_KEY_ID)) {
        bool in_root = strlen(o->root_session) == scan->session_id.len &&
                       memcmp(o->root_session, scan->session_id.ptr, scan->session_id.len) == 0;
        on_event(o, scan, in_root);
    }
    return true;
}
