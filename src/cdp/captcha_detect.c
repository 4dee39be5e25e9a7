#include "cdp/captcha_detect.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[CAPTCHA_KIND_COUNT] = {
    "recaptcha", "recaptcha_invisible", "recaptcha_v3", "recaptcha_enterprise",
    "hcaptcha",  "turnstile",           "cf_challenge", "geetest",
};

const char *captcha_kind_name(captcha_kind_t k) { return (unsigned)k < CAPTCHA_KIND_COUNT ? kind_names[k] : "unknown"; }

int captcha_kind_from_name(const char *name) {
    for (int i = 0; name && i < CAPTCHA_KIND_COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0) return i;
    return -1;
}

/* ---------------------------------------------------------------- triggers ---- */

static bool has(const char *s, size_t len, const char *needle) {
    size_t n = strlen(needle);
    if (n > len) return false;
    for (size_t i = 0; i + n <= len; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, n) == 0) return true;
    return false;
}

bool captcha_trigger_url(const char *url, size_t len) {
    /* Only the path and host matter: the query (a site's own parameters) is not looked at. */
    size_t end = 0;
    while (end < len && url[end] != '?' && url[end] != '#') end++;
    if (end < 8) return false;
    /* reCAPTCHA (google.com, recaptcha.net; v2, v3, Enterprise): the script and its frames */
    if (has(url, end, "/recaptcha/api.js") || has(url, end, "/recaptcha/enterprise.js") ||
        has(url, end, "/recaptcha/api2/") || has(url, end, "/recaptcha/enterprise/"))
        return true;
    /* hCaptcha: js.hcaptcha.com/1/api.js and its frames on newassets.hcaptcha.com; the path
     * alone (/1/api.js) is the script's, kept under other hosts too (self-hosted proxies) */
    if (has(url, end, "hcaptcha.com/") || has(url, end, "/1/api.js")) return true;
    /* Cloudflare: Turnstile's script and the challenge platform (challenge page, Turnstile's
     * frames) */
    if (has(url, end, "/turnstile/v0/api.js") || has(url, end, "/cdn-cgi/challenge-platform/")) return true;
    /* GeeTest v3 / v4: static.geetest.com/static/js/gt.js, gcaptcha4.geetest.com, gt4.js */
    if (has(url, end, "geetest.com/") || has(url, end, "/gt.js") || has(url, end, "/gt4.js")) return true;
    return false;
}

/* ---------------------------------------------------------------- the script ---- */

/* Runs in an isolated world of the main frame: the page's own scripts cannot see it, and the
 * DOM it reads is the real one (same-origin frames included; a cross-origin frame's document
 * is not reachable from here). Site keys and callback names are checked to be plain tokens
 * before they leave the page. Polls every 250 ms for up to 8 s: the trigger is the vendor's
 * script being requested, the widget may be drawn a little later. */
const char captcha_detect_script[] =
    "new Promise((resolve) => {"
    " const deadline = Date.now() + 8000;"
    " const tok = (s) => (typeof s === 'string' && /^[A-Za-z0-9_.-]{1,200}$/.test(s) ? s : null);"
    " const fn = (s) => (typeof s === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]{0,99}$/.test(s) ? s : null);"
    " const param = (src, n) => { try { const u = new URL(src, location.href);"
    "   return u.searchParams.get(n) || new URLSearchParams(u.hash.slice(1)).get(n); } catch (e) { return null; } };"
    " const look = () => {"
    "  const out = [], seen = new Set();"
    "  const add = (kind, key, cb, action) => { const k = kind + ' ' + key; if (seen.has(k)) return; seen.add(k);"
    "   out.push({kind, sitekey: key || '', url: location.href, callback: cb || null, action: action || null}); };"
    "  const docs = [document];"
    "  for (let i = 0; i < docs.length && docs.length < 32; i++)"
    "   for (const f of docs[i].querySelectorAll('iframe,frame')) { try { if (f.contentDocument) docs.push(f.contentDocument); } catch (e) {} }"
    "  for (const d of docs) {"
    "   const srcs = Array.from(d.querySelectorAll('script[src]'), (s) => s.src);"
    "   const ent = srcs.some((s) => s.includes('/recaptcha/enterprise.js'));"
    "   let v2 = false;"
    "   for (const e of d.querySelectorAll('.g-recaptcha[data-sitekey]')) {"
    "    const key = tok(e.getAttribute('data-sitekey')); if (!key) continue; v2 = true;"
    "    add(ent ? 'recaptcha_enterprise' : e.getAttribute('data-size') === 'invisible' ? 'recaptcha_invisible' : 'recaptcha',"
    "     key, fn(e.getAttribute('data-callback')), tok(e.getAttribute('data-action'))); }"
    "   for (const f of d.querySelectorAll('iframe[src*=\"/recaptcha/\"][src*=\"/anchor\"]')) {"
    "    const key = tok(param(f.src, 'k')); if (!key) continue; v2 = true;"
    "    add(f.src.includes('/recaptcha/enterprise/') ? 'recaptcha_enterprise' : param(f.src, 'size') === 'invisible'"
    "     ? 'recaptcha_invisible' : 'recaptcha', key); }"
    "   if (!v2) for (const s of srcs) if (/\\/recaptcha\\/(api|enterprise)\\.js/.test(s)) {"
    "    const key = tok(param(s, 'render')); if (key && key !== 'explicit' && key !== 'onload')"
    "     add(s.includes('/recaptcha/enterprise.js') ? 'recaptcha_enterprise' : 'recaptcha_v3', key); }"
    "   for (const e of d.querySelectorAll('.h-captcha[data-sitekey]')) {"
    "    const key = tok(e.getAttribute('data-sitekey')); if (key) add('hcaptcha', key, fn(e.getAttribute('data-callback'))); }"
    "   for (const f of d.querySelectorAll('iframe[src*=\"hcaptcha\"]')) { const key = tok(param(f.src, 'sitekey')); if (key) add('hcaptcha', key); }"
    "   for (const e of d.querySelectorAll('.cf-turnstile[data-sitekey]')) {"
    "    const key = tok(e.getAttribute('data-sitekey'));"
    "    if (key) add('turnstile', key, fn(e.getAttribute('data-callback')), tok(e.getAttribute('data-action'))); }"
    "   if (d.querySelector('#challenge-form, #challenge-running, #cf-challenge-running') ||"
    "    srcs.some((s) => s.includes('/cdn-cgi/challenge-platform/') && s.includes('/orchestrate/'))) add('cf_challenge', '');"
    "   if (srcs.some((s) => /\\/gt4?\\.js|geetest\\.com\\//.test(s)) && d.querySelector('[class^=\"geetest_\"], [class*=\" geetest_\"]'))"
    "    add('geetest', '');"
    "  }"
    "  return out; };"
    " const tick = () => { let r = []; try { r = look(); } catch (e) {}"
    "  if (r.length || Date.now() > deadline) resolve(r); else setTimeout(tick, 250); };"
    " if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', tick, {once: true}); else tick();"
    "})";

/* ---------------------------------------------------------------- the answer ---- */

void captcha_found_free(captcha_found_t *f) {
    free(f->sitekey);
    free(f->url);
    free(f->callback);
    free(f->action);
    memset(f, 0, sizeof *f);
}

static bool plain_token(const char *s, bool ident) {
    size_t n = strlen(s);
    if (n > 200) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = isalnum(c) || c == '_' || (ident ? c == '$' : (c == '-' || c == '.'));
        if (!ok || (ident && i == 0 && isdigit(c))) return false;
    }
    return !ident || n > 0;
}

static char *dup_or_null(const cJSON *v) { return cJSON_IsString(v) && v->valuestring ? strdup(v->valuestring) : NULL; }

int captcha_parse_detection(const char *result_json, size_t len, captcha_found_t *out, int cap) {
    cJSON *root = cJSON_ParseWithLength(result_json, len);
    if (!root) return -EINVAL;
    int n = -EINVAL;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "result");
    const cJSON *value = res ? cJSON_GetObjectItemCaseSensitive(res, "value") : NULL;
    if (!cJSON_IsArray(value) || cJSON_GetObjectItemCaseSensitive(root, "exceptionDetails")) goto cleanup;
    n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, value) {
        if (n >= cap) break;
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(item, "kind");
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(item, "sitekey");
        const cJSON *url = cJSON_GetObjectItemCaseSensitive(item, "url");
        const cJSON *cb = cJSON_GetObjectItemCaseSensitive(item, "callback");
        const cJSON *action = cJSON_GetObjectItemCaseSensitive(item, "action");
        int k = cJSON_IsString(kind) ? captcha_kind_from_name(kind->valuestring) : -1;
        if (k < 0 || !cJSON_IsString(key) || !plain_token(key->valuestring, false) || !cJSON_IsString(url) ||
            strlen(url->valuestring) > 4096 || (cJSON_IsString(cb) && !plain_token(cb->valuestring, true)) ||
            (cJSON_IsString(action) && !plain_token(action->valuestring, false)))
            continue;
        captcha_found_t *f = &out[n];
        memset(f, 0, sizeof *f);
        f->kind = (captcha_kind_t)k;
        f->sitekey = strdup(key->valuestring);
        f->url = strdup(url->valuestring);
        f->callback = dup_or_null(cb);
        f->action = dup_or_null(action);
        if (!f->sitekey || !f->url || (cJSON_IsString(cb) && !f->callback) || (cJSON_IsString(action) && !f->action)) {
            captcha_found_free(f);
            continue;
        }
        n++;
    }
cleanup:
    cJSON_Delete(root);
    return n;
}

/* ---------------------------------------------------------------- the solver's JSON ---- */

const char *captcha_task_type(captcha_kind_t k) {
    switch (k) {
    case CAPTCHA_KIND_RECAPTCHA:
    case CAPTCHA_KIND_RECAPTCHA_INVISIBLE: return "RecaptchaV2TaskProxyless";
    case CAPTCHA_KIND_RECAPTCHA_ENTERPRISE: return "RecaptchaV2EnterpriseTaskProxyless";
    case CAPTCHA_KIND_HCAPTCHA: return "HCaptchaTaskProxyless";
    case CAPTCHA_KIND_TURNSTILE: return "TurnstileTaskProxyless";
    default: return NULL;
    }
}

static char *print_and_free(cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *captcha_create_task_body(const char *client_key, const captcha_found_t *f) {
    const char *type = captcha_task_type(f->kind);
    if (!type) return NULL;
    cJSON *o = cJSON_CreateObject(), *task = cJSON_CreateObject();
    if (!o || !task) {
        cJSON_Delete(o);
        cJSON_Delete(task);
        return NULL;
    }
    cJSON_AddItemToObject(o, "clientKey", cJSON_CreateString(client_key ? client_key : ""));
    cJSON_AddItemToObject(o, "task", task);
    cJSON_AddItemToObject(task, "type", cJSON_CreateString(type));
    cJSON_AddItemToObject(task, "websiteURL", cJSON_CreateString(f->url ? f->url : ""));
    cJSON_AddItemToObject(task, "websiteKey", cJSON_CreateString(f->sitekey ? f->sitekey : ""));
    if (f->kind == CAPTCHA_KIND_RECAPTCHA_INVISIBLE) cJSON_AddItemToObject(task, "isInvisible", cJSON_CreateTrue());
    if (f->action) cJSON_AddItemToObject(task, "action", cJSON_CreateString(f->action));
    return print_and_free(o);
}

char *captcha_task_result_body(const char *client_key, long long task_id) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddItemToObject(o, "clientKey", cJSON_CreateString(client_key ? client_key : ""));
    cJSON_AddItemToObject(o, "taskId", cJSON_CreateNumber((double)task_id));
    return print_and_free(o);
}

static bool task_id_of(const cJSON *v, long long *out) {
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d < 1 || d > 9007199254740991.0 || d != (double)(long long)d) return false;
        *out = (long long)d;
        return true;
    }
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 15) return false;
    long long n = 0;
    for (const char *p = v->valuestring; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        n = n * 10 + (*p - '0');
    }
    *out = n;
    return n > 0;
}

void captcha_parse_reply(const char *body, size_t len, bool want_task, captcha_reply_t *out) {
    memset(out, 0, sizeof *out);
    out->kind = CAPTCHA_REPLY_ERROR;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        snprintf(out->message, sizeof out->message, "the solver's reply is not a JSON object");
        cJSON_Delete(root);
        return;
    }
    const cJSON *error_id = cJSON_GetObjectItemCaseSensitive(root, "errorId");
    if (cJSON_IsNumber(error_id) && error_id->valuedouble != 0) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "errorCode");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "errorDescription");
        snprintf(out->message, sizeof out->message, "solver error %s%s%.100s",
                 cJSON_IsString(code) ? code->valuestring : "(no code)", cJSON_IsString(desc) ? ": " : "",
                 cJSON_IsString(desc) ? desc->valuestring : "");
    } else if (want_task) {
        if (task_id_of(cJSON_GetObjectItemCaseSensitive(root, "taskId"), &out->task_id)) out->kind = CAPTCHA_REPLY_TASK;
        else snprintf(out->message, sizeof out->message, "the solver's createTask reply has no taskId");
    } else {
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
        const cJSON *solution = cJSON_GetObjectItemCaseSensitive(root, "solution");
        if (cJSON_IsString(status) && strcmp(status->valuestring, "processing") == 0) {
            out->kind = CAPTCHA_REPLY_PROCESSING;
        } else if (cJSON_IsString(status) && strcmp(status->valuestring, "ready") == 0 && cJSON_IsObject(solution)) {
            /* reCAPTCHA and hCaptcha solutions carry gRecaptchaResponse (2captcha, anti-captcha,
             * capsolver alike), Turnstile's a token */
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(solution, "gRecaptchaResponse");
            if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(solution, "token");
            if (cJSON_IsString(t) && t->valuestring[0] && strlen(t->valuestring) <= 65536) {
                out->token = strdup(t->valuestring);
                if (out->token) out->kind = CAPTCHA_REPLY_READY;
                else snprintf(out->message, sizeof out->message, "out of memory");
            } else {
                snprintf(out->message, sizeof out->message, "the solver's solution has no token");
            }
        } else {
            snprintf(out->message, sizeof out->message, "the solver's getTaskResult reply has no known status");
        }
    }
    cJSON_Delete(root);
}

/* ---------------------------------------------------------------- HTTP ---- */

/* Decodes a chunked body in place; its length, or -1. */
static long dechunk(char *p, size_t len) {
    size_t in = 0, out = 0;
    for (;;) {
        size_t size = 0, digits = 0;
        while (in < len && isxdigit((unsigned char)p[in])) {
            if (++digits > 8) return -1;
            char c = p[in++];
            size = size * 16 + (size_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        if (!digits) return -1;
        while (in < len && p[in] != '\n') in++; /* chunk extensions */
        if (in >= len) return -1;
        in++;
        if (size == 0) return (long)out;
        if (size > len - in || len - in - size < 2) return -1;
        memmove(p + out, p + in, size);
        out += size;
        in += size;
        if (p[in] == '\r') in++;
        if (in >= len || p[in] != '\n') return -1;
        in++;
    }
}

int captcha_http_response(char *resp, size_t len, int *status, char **body, size_t *body_len) {
    if (len < 12 || memcmp(resp, "HTTP/1.", 7) != 0 || resp[8] != ' ' || !isdigit((unsigned char)resp[9]) ||
        !isdigit((unsigned char)resp[10]) || !isdigit((unsigned char)resp[11]))
        return -EINVAL;
    *status = (resp[9] - '0') * 100 + (resp[10] - '0') * 10 + (resp[11] - '0');
    size_t head_end = 0;
    for (size_t i = 0; i + 3 < len; i++)
        if (resp[i] == '\r' && resp[i + 1] == '\n' && resp[i + 2] == '\r' && resp[i + 3] == '\n') {
            head_end = i + 4;
            break;
        }
    if (!head_end) return -EINVAL;
    bool chunked = false;
    long long content_length = -1;
    /* header lines, case-insensitively */
    for (size_t i = 0; i < head_end;) {
        size_t e = i;
        while (e < head_end && resp[e] != '\n') e++;
        size_t n = e - i;
        const char *line = resp + i;
        if (n > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            for (size_t k = 18; k + 7 <= n; k++)
                if (strncasecmp(line + k, "chunked", 7) == 0) chunked = true;
        } else if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            long long v = 0;
            size_t k = 15, digits = 0;
            while (k < n && line[k] == ' ') k++;
            while (k < n && isdigit((unsigned char)line[k]) && digits < 12) v = v * 10 + (line[k++] - '0'), digits++;
            if (digits) content_length = v;
        }
        i = e + 1;
    }
    char *b = resp + head_end;
    size_t blen = len - head_end;
    if (chunked) {
        long n = dechunk(b, blen);
        if (n < 0) return -EINVAL;
        blen = (size_t)n;
    } else if (content_length >= 0) {
        if ((unsigned long long)content_length > blen) return -EINVAL; /* cut short */
        blen = (size_t)content_length;
    }
    *body = b;
    *body_len = blen;
    return 0;
}

bool captcha_http_complete(const char *resp, size_t len) {
    const char *end = memmem(resp, len, "\r\n\r\n", 4);
    if (!end) return false;
    size_t head = (size_t)(end - resp) + 4;
    long long cl = -1;
    for (size_t i = 0; i < head;) {
        const char *nl = memchr(resp + i, '\n', head - i);
        size_t n = nl ? (size_t)(nl - (resp + i)) : head - i;
        if (n > 18 && strncasecmp(resp + i, "transfer-encoding:", 18) == 0) return false;
        if (n > 15 && strncasecmp(resp + i, "content-length:", 15) == 0) {
            size_t k = i + 15, digits = 0;
            cl = 0;
            while (k < i + n && resp[k] == ' ') k++;
            while (k < i + n && isdigit((unsigned char)resp[k]) && digits < 12) cl = cl * 10 + (resp[k++] - '0'), digits++;
            if (!digits) return false;
        }
        i += n + 1;
    }
    return cl >= 0 && len - head >= (unsigned long long)cl;
}

int captcha_solver_url_parse(const char *url, char *host, size_t host_cap, int *port, char *base, size_t base_cap,
                             char *err, size_t err_cap) {
    if (strncmp(url, "https://", 8) == 0) {
        snprintf(err, err_cap, "https solvers are not supported yet (use http:// on a trusted network)");
        return -EINVAL;
    }
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, err_cap, "expected http://host[:port][/path]");
        return -EINVAL;
    }
    const char *h = url + 7, *end = h + strcspn(h, "/?#");
    if (strpbrk(h, "?#@")) {
        snprintf(err, err_cap, "no query, fragment or user info in the solver URL (the key comes from the environment)");
        return -EINVAL;
    }
    const char *colon = NULL;
    const char *hs = h, *he;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) goto bad;
        hs = h + 1;
        he = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':') goto bad;
            colon = rb + 1;
        }
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
    }
    if (he == hs || (size_t)(he - hs) >= host_cap) goto bad;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    *port = 80;
    if (colon) {
        long p = 0;
        const char *c = colon + 1;
        if (c == end) goto bad;
        for (; c < end; c++) {
            if (!isdigit((unsigned char)*c)) goto bad;
            p = p * 10 + (*c - '0');
            if (p > 65535) goto bad;
        }
        if (p == 0) goto bad;
        *port = (int)p;
    }
    size_t blen = strlen(end);
    while (blen && end[blen - 1] == '/') blen--;
    if (blen >= base_cap) goto bad;
    memcpy(base, end, blen);
    base[blen] = '\0';
    return 0;
bad:
    snprintf(err, err_cap, "expected http://host[:port][/path]");
    return -EINVAL;
}
