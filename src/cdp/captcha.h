/* A session's captchas: detection through the observer's page sessions, solving through the
 * operator's solver service, the record's `captcha` value, and the Captcha CDP domain of the
 * client's connection (Captcha.solve, Captcha.waitForSolve, Captcha.setAutoSolve and the
 * events Captcha.detected, Captcha.solveFinished, Captcha.solveFailed). See docs/captcha.md.
 *
 * Detection: each Network.requestWillBeSent of an observer page session is matched against
 * the vendors' script and frame URLs (captcha_trigger_url); only then does the engine create
 * an isolated world in that page's main frame (Page.createIsolatedWorld) and read the widget
 * markup there (captcha_detect_script). Solving: the site key and page URL go to the solver
 * (captcha_solver.h); the token is written into the widget's response field from an isolated
 * world, and the widget's data-callback is called in the page's own world.
 *
 * Record: CAPTCHA_NONE until one is seen; DETECTED while any is not solved (no solver,
 * auto-solve off, a kind that is not solved); SOLVED when every one seen was; FAILED when any
 * solve failed or timed out.
 *
 * Threading: loop thread. Ownership: the engine borrows the observer, the config and the loop
 * (all outlive it); it owns its solve jobs (cancelled by captcha_free) and one timer, which
 * closes after captcha_free on its own. Messages given to send_client are the callee's. */
#ifndef BROWSERD_CDP_CAPTCHA_H
#define BROWSERD_CDP_CAPTCHA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cdp/captcha_detect.h"
#include "cdp/captcha_solver.h"
#include "cdp/cdp_scan.h"
#include "cdp/observer.h"
#include "session/record.h"

typedef struct {
    bool detect; /* --captcha-detect on (default) */
    captcha_solver_config_t solver;
} captcha_config_t;

#define CAPTCHA_MAX_ITEMS 16
#define CAPTCHA_MAX_PAGES 64
#define CAPTCHA_MAX_CMDS 32
#define CAPTCHA_MAX_WAITS 8
#define CAPTCHA_MAX_CLIENT_SESSIONS 64
#define CAPTCHA_ID_MAX 64

typedef struct captcha_engine captcha_engine_t;

typedef enum { CAPTCHA_ITEM_DETECTED, CAPTCHA_ITEM_SOLVING, CAPTCHA_ITEM_SOLVED, CAPTCHA_ITEM_FAILED } captcha_item_state_t;

typedef struct {
    captcha_engine_t *owner;
    char target[CAPTCHA_ID_MAX + 1];
    captcha_found_t f;
    captcha_item_state_t state;
    captcha_solve_t *job;
    char *token; /* between the solver's answer and the page having it */
    unsigned doc; /* its page's captcha_page_t.doc when it was seen */
} captcha_item_t;

typedef struct {
    char session[CAPTCHA_ID_MAX + 1];
    char target[CAPTCHA_ID_MAX + 1];
    bool busy, again;
    unsigned looks;
    unsigned doc; /* main-frame documents requested so far: a widget seen again in the same
                     document is the same captcha (vendors' frames keep triggering looks) */
} captcha_page_t;

typedef struct {
    int64_t id; /* the observer command's id; 0: free */
    int step;
    char session[CAPTCHA_ID_MAX + 1];
    int page; /* detection: index in pages */
    int item; /* injection: index in items */
} captcha_cmd_t;

typedef struct {
    bool used;
    bool solve; /* Captcha.solve (starts solving) or Captcha.waitForSolve */
    int64_t id;
    char session[CAPTCHA_ID_MAX + 1]; /* the client's sessionId, "" for none */
    char target[CAPTCHA_ID_MAX + 1];  /* its target when known, "" for any page */
    uint64_t detect_deadline;         /* uv_now */
} captcha_wait_t;

typedef struct {
    char session[CAPTCHA_ID_MAX + 1];
    char target[CAPTCHA_ID_MAX + 1];
} captcha_client_session_t;

/* A message for the client (malloc'ed JSON, ownership moves). */
typedef void (*captcha_send_client_fn)(void *ctx, char *msg, size_t len);
/* The record's captcha value changed: time to save. */
typedef void (*captcha_changed_fn)(void *ctx);

struct captcha_engine {
    uv_loop_t *loop;
    const captcha_config_t *cfg;
    observer_t *obs;
    captcha_send_client_fn send_client;
    captcha_changed_fn changed;
    void *ctx;
    const char *log_session; /* for log lines */
    bool auto_solve;
    bool disabled[CAPTCHA_KIND_COUNT];
    captcha_item_t items[CAPTCHA_MAX_ITEMS];
    size_t nitems;
    captcha_page_t pages[CAPTCHA_MAX_PAGES];
    size_t npages;
    captcha_cmd_t cmds[CAPTCHA_MAX_CMDS];
    captcha_wait_t waits[CAPTCHA_MAX_WAITS];
    captcha_client_session_t clients[CAPTCHA_MAX_CLIENT_SESSIONS];
    size_t nclients;
    uv_timer_t *timer; /* the waits' detection deadlines; malloc'ed, freed in its close callback */
    bool in_update;    /* waits_update runs (it may be reached again from inside) */
    bool stopped;      /* captcha_stop: the session ends, nothing more happens */
};

/* Sets the engine up and hooks it into the observer (observer_set_hooks). */
void captcha_init(captcha_engine_t *c, uv_loop_t *loop, const captcha_config_t *cfg, observer_t *obs,
                  captcha_send_client_fn send_client, captcha_changed_fn changed, void *ctx, const char *log_session);
/* The session ends: every solve is cancelled (a captcha being solved stays detected), waits
 * are dropped, nothing is sent or called back afterwards; captcha_record still answers.
 * Idempotent. */
void captcha_stop(captcha_engine_t *c);
/* captcha_stop, and frees what the engine holds. */
void captcha_free(captcha_engine_t *c);

/* The serve options (each NULL when not given; the strings are borrowed and must outlive cfg):
 * --captcha-solver, --captcha-timeout, --captcha-detect, and the solver's key. 0, or -EINVAL
 * with err saying why. */
int captcha_config_parse(captcha_config_t *cfg, const char *solver, const char *timeout, const char *detect, const char *key,
                         char *err, size_t err_cap);
/* The options' lines of `browserd --help`. */
const char *captcha_usage(void);

/* The record's value now. */
captcha_t captcha_record(const captcha_engine_t *c);

/* A message from the client (scanned, borrowed): true when it is of the Captcha domain and
 * has been answered here (now or later); it must not go to the browser then. */
bool captcha_client_command(captcha_engine_t *c, const cdp_msg_t *m);

/* A message from the browser on its way to the client (scanned, borrowed): the client's own
 * sessions are learnt from Target.attachedToTarget / detachedFromTarget, so that events reach
 * the sessions of the page they are about. */
void captcha_watch_client_message(captcha_engine_t *c, const cdp_msg_t *m);

#endif
