/* The observer: browserd's own CDP session inside each browser, invisible to the client.
 *
 * It attaches to the browser target (Target.attachToBrowserTarget), and in that session turns
 * on target discovery and flat auto-attach, so every page and popup gets a page session of
 * the observer's own, where it enables the Page and Network domains. The events of those
 * sessions feed the recorder (navigations, the last URL, failures), whatever the client
 * itself enables. Every message of the observer's sessions, and every reply to its commands
 * (ids <= BROWSER_POOL_SETUP_ID_MAX, negative so no client id can collide), is consumed here
 * and never reaches the client.
 *
 * Threading: loop thread. Ownership: the observer borrows the browser; it owns its recorder. */
#ifndef BROWSERD_CDP_OBSERVER_H
#define BROWSERD_CDP_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "cdp/browser.h"
#include "cdp/recorder.h"
#include "json/cdp_scan.h"

#define OBSERVER_MAX_PAGES 64
#define OBSERVER_SESSION_ID_MAX 64

typedef struct {
    browser_t *browser;
    char root_session[OBSERVER_SESSION_ID_MAX + 1]; /* "" until attached */
    char pages[OBSERVER_MAX_PAGES][OBSERVER_SESSION_ID_MAX + 1]; /* every attached session */
    size_t npages;
    /* per page session: the id of its Page.getNavigationHistory, and whether a main-frame
     * commit was seen there (see observer.c, catch_up) */
    int64_t enable_id[OBSERVER_MAX_PAGES];
    int64_t history_id[OBSERVER_MAX_PAGES];
    char frame_id[OBSERVER_MAX_PAGES][OBSERVER_SESSION_ID_MAX + 1];
    bool committed[OBSERVER_MAX_PAGES];
    int64_t next_id;
    bool ready;     /* discovery and auto-attach are on */
    bool failed;    /* a setup command failed: navigations cannot be seen */
    recorder_t recorder;
    void (*on_ready)(void *ctx);
    void *ctx;
} observer_t;

/* on_ready (may be NULL) is called once discovery and auto-attach are on. */
void observer_init(observer_t *o, browser_t *b, void (*on_ready)(void *ctx), void *ctx);
void observer_free(observer_t *o);
/* Sends the first setup command. */
int observer_start(observer_t *o);

/* Looks at one message from the browser (already scanned); returns true when it is the
 * observer's (then it has been handled and must not be forwarded). The message is borrowed. */
bool observer_consume(observer_t *o, const char *msg, size_t len, const cdp_msg_t *scan);

/* True for a session id that belongs to the observer (a client must not use it). */
bool observer_owns_session(const observer_t *o, const char *id, size_t len);

#endif
