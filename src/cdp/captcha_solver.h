/* A client of a captcha solver service (the createTask / getTaskResult JSON protocol that
 * 2captcha, anti-captcha and capsolver share): one task at a time per captcha_solve_t, HTTP/1.1
 * over plain TCP (http:// only for now), DNS through uv_getaddrinfo, every step on the loop
 * thread and none blocking. createTask, then getTaskResult every poll_ms until the solution is
 * ready, an error comes back, or timeout_ms has passed since the start.
 *
 * Threading: loop thread. Ownership: the job owns its handles and frees itself once they are
 * closed; the caller holds the pointer until the callback has run or it cancelled the job
 * (after either, the pointer must not be used). The callback's strings are borrowed for the
 * call. */
#ifndef BROWSERD_CDP_CAPTCHA_SOLVER_H
#define BROWSERD_CDP_CAPTCHA_SOLVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cdp/captcha_detect.h"

typedef struct {
    const char *url;        /* http://host[:port][/base]; NULL or "": no solver */
    const char *key;        /* the clientKey (BROWSERD_CAPTCHA_SOLVER_KEY); NULL = "" */
    uint64_t timeout_ms;    /* the whole solve, createTask to token (--captcha-timeout) */
    uint64_t poll_ms;       /* between getTaskResult requests */
} captcha_solver_config_t;

typedef struct captcha_solve captcha_solve_t;

/* ok: the token (never NULL then); else why (a short text for logs and the client). */
typedef void (*captcha_solve_cb)(void *ctx, bool ok, const char *token, const char *why);

/* Starts solving f. 0 with *out set (cb is called exactly once, later, unless cancelled), or a
 * negative errno (-EINVAL: the URL or the kind cannot be solved; nothing is called then). */
int captcha_solve_start(uv_loop_t *loop, const captcha_solver_config_t *cfg, const captcha_found_t *f,
                        captcha_solve_cb cb, void *ctx, captcha_solve_t **out);
/* Stops the job: its callback is not called any more. */
void captcha_solve_cancel(captcha_solve_t *j);

#endif
