#include "cdp/captcha.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* The steps of the engine's commands to the browser (captcha_cmd_t.step). */
enum {
    STEP_NONE = 0,
    STEP_LOOK_WORLD,   /* Page.createIsolatedWorld for a look */
    STEP_LOOK,         /* Runtime.evaluate of the detection script */
    STEP_INJECT_WORLD, /* Page.createIsolatedWorld for the token */
    STEP_INJECT,       /* Runtime.evaluate: the token into the response fields */
    STEP_CALLBACK,     /* Runtime.evaluate in the page's world: the widget's callback */
};

#define MAX_LOOKS_PER_PAGE 16 /* a page that keeps requesting vendor frames is looked at this often */

static void solve_item(captcha_engine_t *c, captcha_item_t *it);
static void waits_update(captcha_engine_t *c);
static void on_request(void *ctx, const char *session, const char *target, const char *params, size_t len);
static bool on_reply(void *ctx, int64_t id, const char *msg, size_t len, const cdp_msg_t *scan);

/* ---------------------------------------------------------------- helpers ---- */

static void copy_id(char *dst, const char *src) {
    size_t n = src ? strnlen(src, CAPTCHA_ID_MAX) : 0;
    memmove(dst, src ? src : "", n);
    dst[n] = '\0';
}

static bool solvable(const captcha_engine_t *c, const captcha_item_t *it) {
    return c->cfg->solver.url && *c->cfg->solver.url && captcha_task_type(it->f.kind) && !c->disabled[it->f.kind];
}

/* A JSON string literal of s (malloc'ed), for scripts and params. */
static char *json_str(const char *s) {
    cJSON *v = cJSON_CreateString(s ? s : "");
    char *out = v ? cJSON_PrintUnformatted(v) : NULL;
    cJSON_Delete(v);
    return out;
}

static captcha_cmd_t *cmd_new(captcha_engine_t *c, int step, const char *session) {
    for (size_t i = 0; i < CAPTCHA_MAX_CMDS; i++)
        if (!c->cmds[i].id) {
            captcha_cmd_t *cmd = &c->cmds[i];
            memset(cmd, 0, sizeof *cmd);
            cmd->step = step;
            copy_id(cmd->session, session);
            cmd->page = cmd->item = -1;
            return cmd;
        }
    return NULL;
}

/* Sends method/params for cmd; false (cmd freed) when it could not go. */
static bool cmd_send(captcha_engine_t *c, captcha_cmd_t *cmd, const char *method, const char *params) {
    cmd->id = observer_send(c->obs, cmd->session, method, params);
    return cmd->id != 0;
}

/* Writes {"method":..., "params":..., "sessionId":...} or a reply to the client. */
static void to_client(captcha_engine_t *c, cJSON *msg, const char *session) {
    if (session && *session) cJSON_AddItemToObject(msg, "sessionId", cJSON_CreateString(session));
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (text) c->send_client(c->ctx, text, strlen(text));
}

/* An event about an item to every client session of its page. */
static void emit(captcha_engine_t *c, const captcha_item_t *it, const char *method, const char *error) {
    for (size_t i = 0; i < c->nclients; i++) {
        if (strcmp(c->clients[i].target, it->target) != 0) continue;
        cJSON *msg = cJSON_CreateObject(), *params = cJSON_CreateObject();
        if (!msg || !params) {
            cJSON_Delete(msg);
            cJSON_Delete(params);
            return;
        }
        cJSON_AddItemToObject(msg, "method", cJSON_CreateString(method));
        cJSON_AddItemToObject(params, "type", cJSON_CreateString(captcha_kind_name(it->f.kind)));
        cJSON_AddItemToObject(params, "url", cJSON_CreateString(it->f.url));
        cJSON_AddItemToObject(params, "sitekey", cJSON_CreateString(it->f.sitekey));
        if (error) cJSON_AddItemToObject(params, "error", cJSON_CreateString(error));
        cJSON_AddItemToObject(msg, "params", params);
        to_client(c, msg, c->clients[i].session);
    }
}

/* ---------------------------------------------------------------- life ---- */

static void on_timer(uv_timer_t *t) {
    captcha_engine_t *c = t->data;
    waits_update(c);
}

static void on_timer_closed(uv_handle_t *h) { free(h); }

void captcha_init(captcha_engine_t *c, uv_loop_t *loop, const captcha_config_t *cfg, observer_t *obs,
                  captcha_send_client_fn send_client, captcha_changed_fn changed, void *ctx, const char *log_session) {
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->cfg = cfg;
    c->obs = obs;
    c->send_client = send_client;
    c->changed = changed;
    c->ctx = ctx;
    c->log_session = log_session;
    c->auto_solve = true; /* as in the hosted API */
    for (size_t i = 0; i < CAPTCHA_MAX_ITEMS; i++) c->items[i].owner = c;
    observer_hooks_t h = {.request = on_request, .reply = on_reply, .ctx = c};
    observer_set_hooks(obs, &h);
    c->timer = malloc(sizeof *c->timer);
    if (c->timer && uv_timer_init(loop, c->timer) == 0) c->timer->data = c;
    else {
        free(c->timer);
        c->timer = NULL;
    }
}

void captcha_stop(captcha_engine_t *c) {
    if (c->stopped) return;
    c->stopped = true;
    for (size_t i = 0; i < c->nitems; i++) {
        captcha_item_t *it = &c->items[i];
        captcha_solve_cancel(it->job);
        it->job = NULL;
        /* cut off by the session's end: seen and not solved */
        if (it->state == CAPTCHA_ITEM_SOLVING) it->state = CAPTCHA_ITEM_DETECTED;
    }
    memset(c->waits, 0, sizeof c->waits); /* their client is going */
    if (c->timer) uv_close((uv_handle_t *)c->timer, on_timer_closed);
    c->timer = NULL;
}

void captcha_free(captcha_engine_t *c) {
    captcha_stop(c);
    for (size_t i = 0; i < c->nitems; i++) {
        captcha_found_free(&c->items[i].f);
        free(c->items[i].token);
        c->items[i].token = NULL;
    }
    c->nitems = 0;
}

captcha_t captcha_record(const captcha_engine_t *c) {
    if (!c->nitems) return CAPTCHA_NONE;
    bool all_solved = true;
    for (size_t i = 0; i < c->nitems; i++) {
        if (c->items[i].state == CAPTCHA_ITEM_FAILED) return CAPTCHA_FAILED;
        if (c->items[i].state != CAPTCHA_ITEM_SOLVED) all_solved = false;
    }
    return all_solved ? CAPTCHA_SOLVED : CAPTCHA_DETECTED;
}

static void set_state(captcha_engine_t *c, captcha_item_t *it, captcha_item_state_t st, const char *why) {
    captcha_t before = captcha_record(c);
    it->state = st;
    if (st == CAPTCHA_ITEM_SOLVED) {
        log_event(LOG_INFO, "captcha", "captcha_solved", "session=%s kind=%s", c->log_session, captcha_kind_name(it->f.kind));
        emit(c, it, "Captcha.solveFinished", NULL);
    } else if (st == CAPTCHA_ITEM_FAILED) {
        log_event(LOG_WARN, "captcha", "captcha_solve_failed", "session=%s kind=%s reason=\"%s\"", c->log_session,
                  captcha_kind_name(it->f.kind), why ? why : "");
        emit(c, it, "Captcha.solveFailed", why);
    }
    if (captcha_record(c) != before) c->changed(c->ctx);
    waits_update(c);
}

/* ---------------------------------------------------------------- detection ---- */

static captcha_page_t *page_of(captcha_engine_t *c, const char *session, const char *target) {
    for (size_t i = 0; i < c->npages; i++)
        if (strcmp(c->pages[i].session, session) == 0) return &c->pages[i];
    captcha_page_t *p = NULL;
    if (c->npages < CAPTCHA_MAX_PAGES) p = &c->pages[c->npages++];
    else
        for (size_t i = 0; i < c->npages && !p; i++)
            if (!c->pages[i].busy) p = &c->pages[i]; /* the oldest idle one: its page is likely gone */
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    copy_id(p->session, session);
    copy_id(p->target, target);
    return p;
}

static void look(captcha_engine_t *c, captcha_page_t *p) {
    if (!p->target[0] || p->looks >= MAX_LOOKS_PER_PAGE) return;
    captcha_cmd_t *cmd = cmd_new(c, STEP_LOOK_WORLD, p->session);
    char *frame = json_str(p->target);
    char params[256];
    if (!cmd || !frame) {
        free(frame);
        return;
    }
    snprintf(params, sizeof params, "{\"frameId\":%s,\"worldName\":\"browserd-captcha\",\"grantUniveralAccess\":false}", frame);
    free(frame);
    cmd->page = (int)(p - c->pages);
    if (!cmd_send(c, cmd, "Page.createIsolatedWorld", params)) return;
    p->busy = true;
    p->again = false;
    p->looks++;
}

static void on_request(void *ctx, const char *session, const char *target, const char *params, size_t len) {
    captcha_engine_t *c = ctx;
    if (!c->cfg->detect || c->stopped) return;
    cdp_value_t req, url, frame;
    /* A new document in the page's main frame: what is seen from now on is new (Chromium's
     * JSON writer never escapes letters, so a request without the word is no document). */
    if (memmem(params, len, "\"Document\"", 10) && cdp_object_get(params, len, "frameId", 7, &frame) == 0 &&
        frame.type == CDP_T_STRING && cdp_string_equals(frame.str, target, strlen(target))) {
        captcha_page_t *p = page_of(c, session, target);
        if (p) {
            p->doc++;
            p->looks = 0; /* the bound on looks is per document */
        }
        return;
    }
    if (cdp_object_get(params, len, "request", 7, &req) != 0 || req.type != CDP_T_OBJECT ||
        cdp_object_get(req.raw.ptr, req.raw.len, "url", 3, &url) != 0 || url.type != CDP_T_STRING ||
        !captcha_trigger_url(url.str.ptr, url.str.len))
        return;
    captcha_page_t *p = page_of(c, session, target);
    if (!p) return;
    if (p->busy) p->again = true; /* looked at once the look in flight ends */
    else look(c, p);
}

static void found(captcha_engine_t *c, const captcha_page_t *p, captcha_found_t *f) {
    const char *target = p->target;
    if (c->stopped) {
        captcha_found_free(f);
        return;
    }
    for (size_t i = 0; i < c->nitems; i++) {
        captcha_item_t *it = &c->items[i];
        if (it->f.kind == f->kind && it->doc == p->doc && strcmp(it->target, target) == 0 &&
            strcmp(it->f.sitekey, f->sitekey) == 0) {
            captcha_found_free(f); /* the same widget of the same document: known (and never solved twice) */
            return;
        }
    }
    if (c->nitems == CAPTCHA_MAX_ITEMS) {
        captcha_found_free(f);
        return;
    }
    captcha_t before = captcha_record(c);
    captcha_item_t *it = &c->items[c->nitems++];
    copy_id(it->target, target);
    it->doc = p->doc;
    it->f = *f;
    memset(f, 0, sizeof *f);
    it->state = CAPTCHA_ITEM_DETECTED;
    log_event(LOG_INFO, "captcha", "captcha_detected", "session=%s kind=%s", c->log_session, captcha_kind_name(it->f.kind));
    emit(c, it, "Captcha.detected", NULL);
    if (captcha_record(c) != before) c->changed(c->ctx);
    if (c->auto_solve && solvable(c, it)) solve_item(c, it);
    waits_update(c);
}

static void look_done(captcha_engine_t *c, captcha_page_t *p) {
    p->busy = false;
    if (p->again) look(c, p);
}

/* ---------------------------------------------------------------- solving ---- */

static void inject(captcha_engine_t *c, captcha_item_t *it) {
    const char *session = observer_target_session(c->obs, it->target);
    captcha_cmd_t *cmd = session ? cmd_new(c, STEP_INJECT_WORLD, session) : NULL;
    char *frame = json_str(it->target);
    char params[256];
    if (!cmd || !frame) {
        free(frame);
        set_state(c, it, CAPTCHA_ITEM_FAILED, "the page is gone");
        return;
    }
    snprintf(params, sizeof params, "{\"frameId\":%s,\"worldName\":\"browserd-captcha\",\"grantUniveralAccess\":false}", frame);
    free(frame);
    cmd->item = (int)(it - c->items);
    if (!cmd_send(c, cmd, "Page.createIsolatedWorld", params)) set_state(c, it, CAPTCHA_ITEM_FAILED, "the browser is gone");
}

static void on_solved(void *ctx, bool ok, const char *token, const char *why) {
    captcha_item_t *it = ctx;
    captcha_engine_t *c = it->owner;
    it->job = NULL;
    if (c->stopped) return;
    if (!ok) {
        set_state(c, it, CAPTCHA_ITEM_FAILED, why);
        return;
    }
    free(it->token);
    it->token = strdup(token);
    if (!it->token) set_state(c, it, CAPTCHA_ITEM_FAILED, "out of memory");
    else inject(c, it);
}

static void solve_item(captcha_engine_t *c, captcha_item_t *it) {
    it->state = CAPTCHA_ITEM_SOLVING;
    int rc = captcha_solve_start(c->loop, &c->cfg->solver, &it->f, on_solved, it, &it->job);
    if (rc < 0) {
        it->job = NULL;
        set_state(c, it, CAPTCHA_ITEM_FAILED, "the solver could not be asked");
    }
}

/* The token into the widget's response fields (every field of the kind on the page: the
 * vendors' scripts make them; one is made in the widget when there is none), from an isolated
 * world; answers the number of fields written. */
static char *inject_params(const captcha_item_t *it, int64_t context) {
    static const char script[] =
        "((token, kind, key) => {"
        " const names = kind === 'hcaptcha' ? ['h-captcha-response', 'g-recaptcha-response']"
        "  : kind === 'turnstile' ? ['cf-turnstile-response'] : ['g-recaptcha-response'];"
        " let n = 0;"
        " for (const name of names) for (const e of document.querySelectorAll('textarea[name=\"' + name + '\"], input[name=\"' + name + '\"]'))"
        "  { e.value = token; n++; }"
        " if (!n) { const w = Array.from(document.querySelectorAll('[data-sitekey]')).find((e) => e.getAttribute('data-sitekey') === key);"
        "  if (w) { const t = document.createElement('textarea'); t.name = names[0]; t.style.display = 'none'; t.value = token;"
        "   w.appendChild(t); n++; } }"
        " return n; })";
    char *tok = json_str(it->token), *kind = json_str(captcha_kind_name(it->f.kind)), *key = json_str(it->f.sitekey);
    char *expr = NULL, *params = NULL, *expr_json = NULL;
    if (tok && kind && key && asprintf(&expr, "%s(%s,%s,%s)", script, tok, kind, key) >= 0) {
        expr_json = json_str(expr);
        if (expr_json && asprintf(&params, "{\"expression\":%s,\"contextId\":%lld,\"returnByValue\":true}", expr_json,
                                  (long long)context) < 0)
            params = NULL;
    }
    free(tok);
    free(kind);
    free(key);
    free(expr);
    free(expr_json);
    return params;
}

/* The widget's data-callback with the token, in the page's own world (where the page's
 * function is): what the vendor's script does once the user solved it. */
static char *callback_params(const captcha_item_t *it) {
    char *tok = json_str(it->token), *name = json_str(it->f.callback);
    char *expr = NULL, *expr_json = NULL, *params = NULL;
    if (tok && name &&
        asprintf(&expr, "(() => { const f = window[%s]; if (typeof f !== 'function') return false; f(%s); return true; })()", name,
                 tok) >= 0) {
        expr_json = json_str(expr);
        if (expr_json && asprintf(&params, "{\"expression\":%s,\"returnByValue\":true}", expr_json) < 0) params = NULL;
    }
    free(tok);
    free(name);
    free(expr);
    free(expr_json);
    return params;
}

/* ---------------------------------------------------------------- replies ---- */

static bool context_of(const cdp_msg_t *scan, int64_t *out) {
    cdp_value_t v;
    return scan->result.ptr && cdp_object_get(scan->result.ptr, scan->result.len, "executionContextId", 18, &v) == 0 &&
           v.type == CDP_T_NUMBER && cdp_number_int(v.raw, out) == 0;
}

static void on_look_reply(captcha_engine_t *c, captcha_cmd_t *cmd, const cdp_msg_t *scan) {
    captcha_page_t *p = cmd->page >= 0 && (size_t)cmd->page < c->npages ? &c->pages[cmd->page] : NULL;
    if (!p || strcmp(p->session, cmd->session) != 0) return; /* the slot went to another page */
    if (cmd->step == STEP_LOOK_WORLD) {
        int64_t context;
        captcha_cmd_t *next = context_of(scan, &context) ? cmd_new(c, STEP_LOOK, cmd->session) : NULL;
        char *expr = next ? json_str(captcha_detect_script) : NULL, *params = NULL;
        if (expr && asprintf(&params, "{\"expression\":%s,\"contextId\":%lld,\"awaitPromise\":true,\"returnByValue\":true}", expr,
                             (long long)context) < 0)
            params = NULL;
        free(expr);
        if (next && params) {
            next->page = cmd->page;
            if (cmd_send(c, next, "Runtime.evaluate", params)) {
                free(params);
                return;
            }
        }
        free(params);
        look_done(c, p);
        return;
    }
    captcha_found_t f[8];
    int n = scan->result.ptr && !scan->error.ptr ? captcha_parse_detection(scan->result.ptr, scan->result.len, f, 8) : -EINVAL;
    for (int i = 0; i < n; i++) found(c, p, &f[i]);
    look_done(c, p);
}

static void on_inject_reply(captcha_engine_t *c, captcha_cmd_t *cmd, const cdp_msg_t *scan) {
    if (cmd->item < 0 || (size_t)cmd->item >= c->nitems) return;
    captcha_item_t *it = &c->items[cmd->item];
    if (it->state != CAPTCHA_ITEM_SOLVING) return;
    char *params = NULL;
    int next_step = 0;
    if (cmd->step == STEP_INJECT_WORLD) {
        int64_t context;
        if (context_of(scan, &context)) params = inject_params(it, context);
        next_step = STEP_INJECT;
    } else if (cmd->step == STEP_INJECT) {
        cdp_value_t res, value;
        int64_t fields = 0;
        bool ok = scan->result.ptr && !scan->error.ptr &&
                  cdp_object_get(scan->result.ptr, scan->result.len, "result", 6, &res) == 0 && res.type == CDP_T_OBJECT &&
                  cdp_object_get(res.raw.ptr, res.raw.len, "value", 5, &value) == 0 && value.type == CDP_T_NUMBER &&
                  cdp_number_int(value.raw, &fields) == 0;
        if (ok && it->f.callback) {
            params = callback_params(it);
            next_step = STEP_CALLBACK;
        } else if (ok && fields > 0) {
            set_state(c, it, CAPTCHA_ITEM_SOLVED, NULL);
            return;
        } else {
            set_state(c, it, CAPTCHA_ITEM_FAILED, ok ? "the page has no response field for the token" : "the token could not be put in the page");
            return;
        }
    } else {
        cdp_value_t res, value;
        bool called = scan->result.ptr && !scan->error.ptr &&
                      cdp_object_get(scan->result.ptr, scan->result.len, "result", 6, &res) == 0 && res.type == CDP_T_OBJECT &&
                      cdp_object_get(res.raw.ptr, res.raw.len, "value", 5, &value) == 0 && value.type == CDP_T_TRUE;
        if (called) set_state(c, it, CAPTCHA_ITEM_SOLVED, NULL);
        else set_state(c, it, CAPTCHA_ITEM_FAILED, "the widget's callback could not be called");
        return;
    }
    captcha_cmd_t *next = params ? cmd_new(c, next_step, cmd->session) : NULL;
    if (next) {
        next->item = cmd->item;
        if (cmd_send(c, next, "Runtime.evaluate", params)) {
            free(params);
            return;
        }
    }
    free(params);
    set_state(c, it, CAPTCHA_ITEM_FAILED, "the token could not be put in the page");
}

static bool on_reply(void *ctx, int64_t id, const char *msg, size_t len, const cdp_msg_t *scan) {
    captcha_engine_t *c = ctx;
    (void)msg;
    (void)len;
    for (size_t i = 0; i < CAPTCHA_MAX_CMDS; i++) {
        if (c->cmds[i].id != id) continue;
        captcha_cmd_t cmd = c->cmds[i];
        c->cmds[i].id = 0; /* free before the next command is made */
        if (cmd.step == STEP_LOOK_WORLD || cmd.step == STEP_LOOK) on_look_reply(c, &cmd, scan);
        else on_inject_reply(c, &cmd, scan);
        return true;
    }
    return false;
}


/* ---------------------------------------------------------------- the client's sessions ---- */

void captcha_watch_client_message(captcha_engine_t *c, const cdp_msg_t *m) {
    if (!m->method.ptr || (m->present & CDP_KEY_ID) || m->method.len < 20 || memcmp(m->method.ptr, "Target.", 7) != 0 ||
        !m->params.ptr)
        return;
    bool attached = cdp_string_equals(m->method, "Target.attachedToTarget", 23);
    if (!attached && !cdp_string_equals(m->method, "Target.detachedFromTarget", 25)) return;
    cdp_value_t sid, info, target;
    char session[CAPTCHA_ID_MAX + 1], tid[CAPTCHA_ID_MAX + 1];
    if (cdp_object_get(m->params.ptr, m->params.len, "sessionId", 9, &sid) != 0 || cdp_string_copy(&sid, session, sizeof session) != 0)
        return;
    if (!attached) {
        for (size_t i = 0; i < c->nclients; i++)
            if (strcmp(c->clients[i].session, session) == 0) {
                c->clients[i] = c->clients[--c->nclients];
                return;
            }
        return;
    }
    if (cdp_object_get(m->params.ptr, m->params.len, "targetInfo", 10, &info) != 0 || info.type != CDP_T_OBJECT ||
        cdp_object_get(info.raw.ptr, info.raw.len, "targetId", 8, &target) != 0 || cdp_string_copy(&target, tid, sizeof tid) != 0)
        return;
    if (c->nclients == CAPTCHA_MAX_CLIENT_SESSIONS) c->clients[0] = c->clients[--c->nclients]; /* the oldest goes */
    copy_id(c->clients[c->nclients].session, session);
    copy_id(c->clients[c->nclients].target, tid);
    c->nclients++;
}

static const char *client_target(const captcha_engine_t *c, const char *session) {
    for (size_t i = 0; session && *session && i < c->nclients; i++)
        if (strcmp(c->clients[i].session, session) == 0) return c->clients[i].target;
    return "";
}

/* ---------------------------------------------------------------- Captcha.* ---- */

static void reply_result(captcha_engine_t *c, int64_t id, const char *session, cJSON *result) {
    cJSON *msg = cJSON_CreateObject();
    if (!msg) {
        cJSON_Delete(result);
        return;
    }
    cJSON_AddItemToObject(msg, "id", cJSON_CreateNumber((double)id));
    cJSON_AddItemToObject(msg, "result", result ? result : cJSON_CreateObject());
    to_client(c, msg, session);
}

static void reply_error(captcha_engine_t *c, int64_t id, const char *session, int code, const char *message) {
    cJSON *msg = cJSON_CreateObject(), *err = cJSON_CreateObject();
    if (!msg || !err) {
        cJSON_Delete(msg);
        cJSON_Delete(err);
        return;
    }
    cJSON_AddItemToObject(msg, "id", cJSON_CreateNumber((double)id));
    cJSON_AddItemToObject(err, "code", cJSON_CreateNumber(code));
    cJSON_AddItemToObject(err, "message", cJSON_CreateString(message));
    cJSON_AddItemToObject(msg, "error", err);
    to_client(c, msg, session);
}

/* What a wait answers now, or NULL while it must go on waiting. Captchas of its page (of any
 * page when its session's page is not known): any being solved -> wait; then any failed ->
 * solve_failed; any that will not be solved (no solver, a kind not solved or disabled,
 * auto-solve off for waitForSolve) -> invalid; all solved -> solve_finished; none ->
 * not_detected once detectTimeout has passed. Captcha.solve starts solving what waits. */
static const char *wait_status(captcha_engine_t *c, captcha_wait_t *w, uint64_t now) {
    bool any = false, solving = false, failed = false, unsolved = false;
    for (size_t i = 0; i < c->nitems; i++) {
        captcha_item_t *it = &c->items[i];
        if (w->target[0] && strcmp(it->target, w->target) != 0) continue;
        any = true;
        if (it->state == CAPTCHA_ITEM_DETECTED && w->solve && solvable(c, it)) solve_item(c, it);
        if (it->state == CAPTCHA_ITEM_SOLVING) solving = true;
        else if (it->state == CAPTCHA_ITEM_FAILED) failed = true;
        else if (it->state == CAPTCHA_ITEM_DETECTED) unsolved = true;
    }
    if (!any) return now >= w->detect_deadline ? "not_detected" : NULL;
    if (solving) return NULL;
    return failed ? "solve_failed" : unsolved ? "invalid" : "solve_finished";
}

static void waits_update(captcha_engine_t *c) {
    if (c->in_update || c->stopped) return; /* solve_item -> set_state -> here again: the outer pass goes on */
    c->in_update = true;
    uint64_t now = uv_now(c->loop), next = 0;
    for (size_t i = 0; i < CAPTCHA_MAX_WAITS; i++) {
        captcha_wait_t *w = &c->waits[i];
        if (!w->used) continue;
        const char *status = wait_status(c, w, now);
        if (status) {
            w->used = false;
            cJSON *r = cJSON_CreateObject();
            if (r) cJSON_AddItemToObject(r, "status", cJSON_CreateString(status));
            reply_result(c, w->id, w->session, r);
        } else if (w->detect_deadline > now && (!next || w->detect_deadline < next)) {
            next = w->detect_deadline;
        }
    }
    c->in_update = false;
    if (c->timer) {
        if (next) uv_timer_start(c->timer, on_timer, next - now, 0);
        else uv_timer_stop(c->timer);
    }
}

static void cmd_wait(captcha_engine_t *c, const cdp_msg_t *m, const char *session, cJSON *params, bool solve) {
    const cJSON *t = params ? cJSON_GetObjectItemCaseSensitive(params, "detectTimeout") : NULL;
    double timeout = 30000;
    if (t && !cJSON_IsNull(t)) {
        if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble > 600000) {
            reply_error(c, m->id, session, -32602, "Invalid parameters: detectTimeout: a number of milliseconds 0..600000");
            return;
        }
        timeout = t->valuedouble;
    }
    captcha_wait_t *w = NULL;
    for (size_t i = 0; i < CAPTCHA_MAX_WAITS && !w; i++)
        if (!c->waits[i].used) w = &c->waits[i];
    if (!w) {
        reply_error(c, m->id, session, -32000, "browserd: too many Captcha waits at once");
        return;
    }
    w->used = true;
    w->solve = solve;
    w->id = m->id;
    copy_id(w->session, session);
    copy_id(w->target, client_target(c, session));
    w->detect_deadline = uv_now(c->loop) + (uint64_t)timeout;
    waits_update(c);
}

static void cmd_set_auto_solve(captcha_engine_t *c, const cdp_msg_t *m, const char *session, cJSON *params) {
    const cJSON *a = params ? cJSON_GetObjectItemCaseSensitive(params, "autoSolve") : NULL;
    const cJSON *opts = params ? cJSON_GetObjectItemCaseSensitive(params, "options") : NULL;
    if (!cJSON_IsBool(a)) {
        reply_error(c, m->id, session, -32602, "Invalid parameters: autoSolve: a boolean is required");
        return;
    }
    bool disabled[CAPTCHA_KIND_COUNT];
    memcpy(disabled, c->disabled, sizeof disabled);
    if (opts && !cJSON_IsNull(opts)) {
        if (!cJSON_IsArray(opts)) {
            reply_error(c, m->id, session, -32602, "Invalid parameters: options: an array of {type, disabled}");
            return;
        }
        const cJSON *o;
        cJSON_ArrayForEach(o, opts) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
            const cJSON *dis = cJSON_GetObjectItemCaseSensitive(o, "disabled");
            int k = cJSON_IsString(type) ? captcha_kind_from_name(type->valuestring) : -1;
            if (k < 0 || (dis && !cJSON_IsBool(dis))) {
                reply_error(c, m->id, session, -32602,
                            "Invalid parameters: options[].type: one of recaptcha, recaptcha_invisible, recaptcha_v3, "
                            "recaptcha_enterprise, hcaptcha, turnstile, cf_challenge, geetest; options[].disabled: a boolean");
                return;
            }
            disabled[k] = dis ? cJSON_IsTrue(dis) : false;
        }
    }
    memcpy(c->disabled, disabled, sizeof disabled);
    c->auto_solve = cJSON_IsTrue(a);
    reply_result(c, m->id, session, NULL);
    if (c->auto_solve)
        for (size_t i = 0; i < c->nitems; i++)
            if (c->items[i].state == CAPTCHA_ITEM_DETECTED && solvable(c, &c->items[i])) solve_item(c, &c->items[i]);
    waits_update(c);
}

bool captcha_client_command(captcha_engine_t *c, const cdp_msg_t *m) {
    if (m->method.len < 8 || memcmp(m->method.ptr, "Captcha.", 8) != 0) return false;
    if (c->stopped) return true;
    char session[CAPTCHA_ID_MAX + 1] = "";
    size_t slen = 0;
    if (m->session_id.ptr && cdp_string_decode(m->session_id, session, CAPTCHA_ID_MAX, &slen) == 0) session[slen] = '\0';
    else session[0] = '\0'; /* a session id that long is none of Chromium's: the answer goes without one */
    cJSON *params = NULL;
    if (m->params.ptr) {
        params = cJSON_ParseWithLength(m->params.ptr, m->params.len);
        if (!cJSON_IsObject(params)) {
            cJSON_Delete(params);
            reply_error(c, m->id, session, -32602, "Invalid parameters: params must be an object");
            return true;
        }
    }
    if (cdp_string_equals(m->method, "Captcha.solve", 13)) cmd_wait(c, m, session, params, true);
    else if (cdp_string_equals(m->method, "Captcha.waitForSolve", 20)) cmd_wait(c, m, session, params, false);
    else if (cdp_string_equals(m->method, "Captcha.setAutoSolve", 20)) cmd_set_auto_solve(c, m, session, params);
    else {
        char text[200];
        snprintf(text, sizeof text, "'%.*s' wasn't found: the Captcha domain has solve, waitForSolve and setAutoSolve",
                 (int)(m->method.len > 60 ? 60 : m->method.len), m->method.ptr);
        reply_error(c, m->id, session, -32601, text);
    }
    cJSON_Delete(params);
    return true;
}

/* ---------------------------------------------------------------- configuration ---- */

int captcha_config_parse(captcha_config_t *cfg, const char *solver, const char *timeout, const char *detect, const char *key,
                         char *err, size_t err_cap) {
    if (detect) {
        if (strcmp(detect, "on") == 0) cfg->detect = true;
        else if (strcmp(detect, "off") == 0) cfg->detect = false;
        else {
            snprintf(err, err_cap, "--captcha-detect: expected on or off, got '%s'", detect);
            return -EINVAL;
        }
    }
    if (timeout) {
        char *end;
        errno = 0;
        double sec = strtod(timeout, &end);
        if (errno || end == timeout || *end || !(sec > 0) || sec > 3600) {
            snprintf(err, err_cap, "--captcha-timeout: expected a number of seconds 0 < SEC <= 3600, got '%s'", timeout);
            return -EINVAL;
        }
        cfg->solver.timeout_ms = (uint64_t)(sec * 1000 + 0.5);
        if (!cfg->solver.timeout_ms) cfg->solver.timeout_ms = 1;
    }
    if (solver && *solver) {
        char host[256], base[512], why[160];
        int port;
        if (captcha_solver_url_parse(solver, host, sizeof host, &port, base, sizeof base, why, sizeof why) < 0) {
            snprintf(err, err_cap, "--captcha-solver: %s", why);
            return -EINVAL;
        }
        cfg->solver.url = solver;
    } else {
        cfg->solver.url = NULL;
    }
    cfg->solver.key = key ? key : "";
    return 0;
}

const char *captcha_usage(void) {
    return "        --captcha-detect on|off  detect captchas in every page (default on; docs/captcha.md)\n"
           "        --captcha-solver URL     solve them through this solver service, http://host[:port][/path]\n"
           "                                 speaking createTask/getTaskResult (2captcha, anti-captcha,\n"
           "                                 capsolver); its key from BROWSERD_CAPTCHA_SOLVER_KEY\n"
           "        --captcha-timeout SEC    the longest a solve may take, then the captcha failed (default 120)\n"
           "                                 (environment: BROWSERD_CAPTCHA_DETECT, BROWSERD_CAPTCHA_SOLVER,\n"
           "                                 BROWSERD_CAPTCHA_TIMEOUT; the key: BROWSERD_CAPTCHA_SOLVER_KEY)\n";
}
