/* The observer: browserd's own CDP session inside each browser, invisible to the client.
 *
 * It attaches to the browser target (Target.attachToBrowserTarget), and in that session turns
 * on target discovery and flat auto-attach, so every page and popup gets a page session of
 * the observer's own, where it enables the Page and Network domains. The events of those
 * sessions feed the recorder (navigations, the last URL, failures), whatever the client
 * itself enables. Every message of the observer's sessions, and every reply to its commands
 * (the observer's ids of cdp_ids.h), is consumed here and never reaches the client.
 *
 * The observer does no I/O itself: it hands the commands it sends to a send function (the
 * gateway's writes to the browser's pipe; a test's recorder of commands), and is fed the
 * browser's messages through observer_consume.
 *
 * Threading: loop thread. Ownership: the observer owns its recorder; messages passed to
 * observer_consume are borrowed; a command given to send is the callee's (malloc'ed). */
#ifndef BROWSERD_CDP_OBSERVER_H
#define BROWSERD_CDP_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdp/cdp_scan.h"
#include "cdp/recorder.h"

#define OBSERVER_MAX_PAGES 64
#define OBSERVER_SESSION_ID_MAX 64

/* Sends one command (a malloc'ed JSON text of len bytes, ownership moves to the callee in
 * every case). Returns 0, or a negative errno when the browser is gone. */
typedef int (*observer_send_fn)(void *ctx, char *msg, size_t len);

/* What another part of browserd (the captcha engine, captcha.h) sees of the observer's page
 * sessions: each Network.requestWillBeSent of a page (its page session and target id; params
 * borrowed), and the replies to the commands it sent with observer_send (return true to take
 * one; the message is borrowed). Both optional. */
typedef struct {
    void (*request)(void *ctx, const char *session, const char *target, const char *params, size_t len);
    bool (*reply)(void *ctx, int64_t id, const char *msg, size_t len, const cdp_msg_t *scan);
    void *ctx;
} observer_hooks_t;

typedef struct {
    observer_send_fn send;
    void *send_ctx;
    char root_session[OBSERVER_SESSION_ID_MAX + 1]; /* "" until attached */
    char pages[OBSERVER_MAX_PAGES][OBSERVER_SESSION_ID_MAX + 1]; /* every attached session */
    size_t npages;
    /* per page session: the id of its Page.enable and of its Page.getNavigationHistory, and
     * whether a main-frame commit was seen there (see observer.c, catch_up) */
    int64_t enable_id[OBSERVER_MAX_PAGES];
    int64_t history_id[OBSERVER_MAX_PAGES];
    char frame_id[OBSERVER_MAX_PAGES][OBSERVER_SESSION_ID_MAX + 1];
    bool committed[OBSERVER_MAX_PAGES];
    int64_t next_id;
    bool ready;     /* discovery and auto-attach are on */
    bool own_attach_seen; /* Chromium's announcement of the observer's attach was taken */
    bool failed;    /* a setup command failed: navigations cannot be seen */
    recorder_t recorder;
    observer_hooks_t hooks;
} observer_t;

/* What the gateway records of a session's navigations (borrowed from the observer: valid until
 * the next observer_consume or observer_free). */
typedef struct {
    int64_t navigations;
    const char *target_url; /* NULL until a navigation counted */
    const char *end_url;
    bool last_failed;       /* the last counted navigation failed */
    const char *last_error; /* "net::ERR_... at URL" when it did */
} observer_summary_t;

void observer_init(observer_t *o, observer_send_fn send, void *send_ctx);
void observer_free(observer_t *o);
/* Hooks (copied) for the observer's page events and replies; see observer_hooks_t. */
void observer_set_hooks(observer_t *o, const observer_hooks_t *hooks);
/* Sends method with params (a JSON object's text, borrowed; NULL for {}) in one of the
 * observer's sessions, under a new id of the observer's: the id (< 0), or 0 when it could not
 * be sent. Its reply goes to hooks.reply. */
int64_t observer_send(observer_t *o, const char *session, const char *method, const char *params);
/* The target id of one of the observer's page sessions ("" when unknown). */
const char *observer_session_target(const observer_t *o, const char *session);
/* One of the observer's page sessions of a target (NULL when it has none now). */
const char *observer_target_session(const observer_t *o, const char *target);

/* Sends the first setup command. 0 or the send function's error. */
int observer_start(observer_t *o);

/* Looks at one message from the browser (already scanned); returns true when it is the
 * observer's (then it has been handled and must not be forwarded). The message is borrowed. */
bool observer_consume(observer_t *o, const char *msg, size_t len, const cdp_msg_t *scan);

/* True for a session id that belongs to the observer (a client must not use it). */
bool observer_owns_session(const observer_t *o, const char *id, size_t len);

/* The navigation fields of the session record, now. */
void observer_summary(const observer_t *o, observer_summary_t *out);
/* Whether they changed since the last call (which clears the mark): time to save. */
bool observer_take_changed(observer_t *o);

#endif
