/* Captcha detection and the solver's protocol, the parts without I/O (so they are unit tested
 * and fuzzed on their own): which request URLs trigger a look at a page, the script that looks
 * (run by captcha.c in an isolated world of the page's main frame), what its answer says, the
 * createTask / getTaskResult JSON of the solver service, and its HTTP replies.
 *
 * Detection is two steps on purpose: a vendor's script or frame being requested is the
 * trigger (a string match on a URL the observer sees anyway: nothing runs in a page without
 * one), and the widget's own markup read from an isolated world (page scripts can neither
 * see nor redefine what runs there) confirms it and gives the site key. A page that only
 * draws markers with its own scripts never triggers; a trigger without a widget finds nothing.
 *
 * Ownership: every function borrows its inputs; results that are strings are malloc'ed and the
 * caller's (captcha_found_free, free). Threading: none (pure functions). */
#ifndef BROWSERD_CDP_CAPTCHA_DETECT_H
#define BROWSERD_CDP_CAPTCHA_DETECT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    CAPTCHA_KIND_RECAPTCHA = 0,       /* reCAPTCHA v2 checkbox */
    CAPTCHA_KIND_RECAPTCHA_INVISIBLE, /* reCAPTCHA v2 invisible */
    CAPTCHA_KIND_RECAPTCHA_V3,
    CAPTCHA_KIND_RECAPTCHA_ENTERPRISE,
    CAPTCHA_KIND_HCAPTCHA,
    CAPTCHA_KIND_TURNSTILE,
    CAPTCHA_KIND_CF_CHALLENGE, /* Cloudflare's interstitial challenge page */
    CAPTCHA_KIND_GEETEST,
    CAPTCHA_KIND_COUNT,
} captcha_kind_t;

/* "recaptcha", "recaptcha_invisible", ... (the names of Captcha.* events and setAutoSolve's
 * option types). */
const char *captcha_kind_name(captcha_kind_t k);
/* The kind of a name; -1 when unknown. */
int captcha_kind_from_name(const char *name);

/* Whether a request URL is one of a captcha vendor's scripts or frames (a trigger). Matched
 * on the path (and host where the path alone would be too common), never on the site. */
bool captcha_trigger_url(const char *url, size_t len);

/* The detection script: a Runtime.evaluate expression (awaitPromise, returnByValue) that waits
 * for the widget markup for up to wait_ms and answers an array of {kind, sitekey, url,
 * callback, action} (empty: nothing there). */
extern const char captcha_detect_script[];

typedef struct {
    captcha_kind_t kind;
    char *sitekey;  /* may be "" (a challenge page has none) */
    char *url;      /* the page's URL */
    char *callback; /* the widget's data-callback (a global function's name), or NULL */
    char *action;   /* reCAPTCHA v3's action, or NULL */
} captcha_found_t;

void captcha_found_free(captcha_found_t *f);

/* Parses the detection script's answer: the Runtime.evaluate reply's "result" member (the
 * JSON object {"result":{"type":"object","value":[...]}}). Fills up to cap items; returns how
 * many, or -EINVAL when it is not such an answer. Items with an unknown kind, a sitekey or
 * callback that is not a plain token are skipped (a page controls what is in its DOM). */
int captcha_parse_detection(const char *result_json, size_t len, captcha_found_t *out, int cap);

/* The solver's task type for a kind, or NULL when the kind is not solved: reCAPTCHA v3 (it
 * scores the browser and hands its token to the page's own grecaptcha.execute call, which
 * browserd cannot answer), the challenge page, GeeTest (docs/captcha.md). */
const char *captcha_task_type(captcha_kind_t k);

/* The bodies the solver is sent (malloc'ed JSON text; NULL when out of memory). */
char *captcha_create_task_body(const char *client_key, const captcha_found_t *f);
char *captcha_task_result_body(const char *client_key, long long task_id);

/* A solver reply, parsed. */
typedef enum {
    CAPTCHA_REPLY_ERROR = 0, /* errorId != 0, or not a reply: message says why */
    CAPTCHA_REPLY_TASK,      /* createTask: task_id */
    CAPTCHA_REPLY_PROCESSING,
    CAPTCHA_REPLY_READY,     /* token */
} captcha_reply_kind_t;

typedef struct {
    captcha_reply_kind_t kind;
    long long task_id;
    char *token;      /* READY: malloc'ed */
    char message[160];
} captcha_reply_t;

/* Parses the JSON body of a createTask (want_task) or getTaskResult reply. Always fills *out
 * (free out->token). Task ids may be numbers or strings of digits (both are met). */
void captcha_parse_reply(const char *body, size_t len, bool want_task, captcha_reply_t *out);

/* An HTTP/1.x response read until the server closed: its status and body (borrowed from resp;
 * a chunked body is decoded in place). 0, or -EINVAL (not a complete response). */
int captcha_http_response(char *resp, size_t len, int *status, char **body, size_t *body_len);

/* Whether resp is already a complete response with a Content-Length body (a server that keeps
 * the connection open despite Connection: close need not be waited for); chunked bodies and
 * bodies without a length end with the connection. */
bool captcha_http_complete(const char *resp, size_t len);

/* A solver URL "http://host[:port][/base]": host (IPv6 in brackets), port (default 80), base
 * path without a trailing '/'. 0 or -EINVAL (err says why; https is not supported yet). */
int captcha_solver_url_parse(const char *url, char *host, size_t host_cap, int *port, char *base, size_t base_cap,
                             char *err, size_t err_cap);

#endif
