/* libFuzzer target for what browserd reads from a captcha solver service and from a page
 * (src/cdp/captcha_detect.c): the solver's HTTP response (status, Content-Length, chunked
 * bodies decoded in place), its createTask and getTaskResult JSON, and the detection script's
 * answer. Checks, besides crashes and sanitizer reports:
 *   - an accepted HTTP body lies within the response, and its status is 100..999;
 *   - a reply is READY exactly when it carries a non-empty token, TASK exactly with a task id
 *     > 0, and its message is NUL-terminated within its field;
 *   - every detection item has a known kind, a sitekey and a url, and a callback (when there
 *     is one) that is a plain identifier (nothing a page wrote can become an expression). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/captcha_detect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const captcha_reply_t *r) {
    if (memchr(r->message, '\0', sizeof r->message) == NULL) abort();
    if ((r->kind == CAPTCHA_REPLY_READY) != (r->token != NULL)) abort();
    if (r->token && !r->token[0]) abort();
    if (r->kind == CAPTCHA_REPLY_TASK && r->task_id <= 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    (void)captcha_http_complete(copy, size);
    int status;
    char *body;
    size_t body_len;
    if (captcha_http_response(copy, size, &status, &body, &body_len) == 0) {
        if (body < copy || body + body_len > copy + size || status < 0 || status > 999) abort();
        captcha_reply_t r;
        captcha_parse_reply(body, body_len, true, &r);
        check_reply(&r);
        free(r.token);
    }
    for (int want_task = 0; want_task < 2; want_task++) {
        captcha_reply_t r;
        captcha_parse_reply((const char *)data, size, want_task, &r);
        check_reply(&r);
        free(r.token);
    }
    captcha_found_t f[4];
    int n = captcha_parse_detection((const char *)data, size, f, 4);
    for (int i = 0; i < n; i++) {
        if ((unsigned)f[i].kind >= CAPTCHA_KIND_COUNT || !f[i].sitekey || !f[i].url) abort();
        if (f[i].callback) {
            if (!f[i].callback[0] || isdigit((unsigned char)f[i].callback[0])) abort();
            for (const char *p = f[i].callback; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '_' && *p != '$') abort();
        }
        captcha_found_free(&f[i]);
    }
    free(copy);
    return 0;
}
