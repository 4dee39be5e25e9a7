/* The recorder: turns the CDP events that browserd's own observer receives from each page
 * of a session into the navigation fields of the session record, with the contract's
 * meaning (shared/spec/browser-sessions-api.md, "Navigations"):
 *   - a navigation is a committed cross-document navigation of a page's main frame, in any
 *     page or popup (Page.frameNavigated without parentId); same-document changes arrive as
 *     Page.navigatedWithinDocument and are ignored;
 *   - a failed navigation commits an error page; it counts, with the URL that was attempted
 *     (frame.unreachableUrl), and its net::ERR_ code comes from Network.loadingFailed of the
 *     main frame's document request. Chromium answers the client's Page.navigate with the
 *     error before it commits the error page, and clients often close right then: so a
 *     failed document request of a known main frame (a page's main frame id is its target
 *     id, see recorder_page_opened) is counted at its Network.loadingFailed already (except
 *     net::ERR_ABORTED: superseded or cancelled, nothing committed), and its error page is
 *     not counted again;
 *   - browserd's traffic proxy answers a plain-HTTP request it could not carry out (name not
 *     resolved, refused, blocked by the private-network guard, ...) with an error page marked
 *     `X-Browserd-Proxy-Error: ERR_...`; Chromium commits it like any page, so a main-frame
 *     document whose response (Network.responseReceived) carries that header is a failed
 *     navigation too, with the error "net::ERR_... at URL";
 *   - internal pages (about:, chrome:, chrome-error:, chrome-untrusted:, devtools:, data:)
 *     are never counted and never become target_url or end_url.
 * Pure: no I/O, fed events as the scanner found them (the raw JSON of their params, already
 * validated by cdp_scan: nothing is parsed twice). Owns its strings; recorder_free releases
 * them. */
#ifndef BROWSERD_CDP_RECORDER_H
#define BROWSERD_CDP_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORDER_MAX_PENDING 64

#define RECORDER_MAX_MAIN_FRAMES 64

typedef struct {
    char request_id[64];
    char frame_id[64];
    char error[128]; /* "" until Network.loadingFailed (or a proxy error page's response) */
    bool proxy_error; /* the response is browserd's traffic proxy's error page (see below) */
    char *url;        /* the URL requested (the last of a redirect chain), owned; may be NULL */
    bool counted;     /* already counted as a failed navigation at its loadingFailed */
} recorder_doc_request_t;

typedef struct {
    int64_t navigations;
    char *target_url;  /* first counted navigation, NULL until one */
    char *end_url;     /* last counted navigation */
    bool last_failed;  /* the last counted navigation failed */
    char *last_error;  /* "net::ERR_... at URL" when last_failed */
    bool changed;      /* set on every change; the caller clears it after saving */
    /* Document requests in flight (any page; request ids are unique per browser). */
    recorder_doc_request_t docs[RECORDER_MAX_PENDING];
    size_t ndocs;
    size_t next_slot;
    /* Main frame ids of the open pages (= their target ids). */
    char main_frames[RECORDER_MAX_MAIN_FRAMES][64];
    size_t nmain;
    size_t next_main;
} recorder_t;

void recorder_init(recorder_t *r);
void recorder_free(recorder_t *r);

/* A page (tab or popup) is observed / gone: its target id is its main frame's id. */
void recorder_page_opened(recorder_t *r, const char *target_id);
void recorder_page_closed(recorder_t *r, const char *target_id);

/* One event from an observed page session: `method` (a C string) and its params object, the
 * raw JSON slice cdp_scan reported (borrowed for the call; NULL is ignored). */
void recorder_page_event(recorder_t *r, const char *method, const char *params, size_t len);

/* A main-frame document at url committed before the observer could see it (found in the
 * page's navigation history): counted as a navigation unless url is internal. */
void recorder_navigation_committed(recorder_t *r, const char *url);

/* The header of the traffic proxy's error pages (src/proxy/proxy_http.h). */
#define RECORDER_PROXY_ERROR_HEADER "X-Browserd-Proxy-Error"

/* True for URLs that are never navigations (about:blank, chrome-error://..., data:...). */
bool recorder_is_internal_url(const char *url);

#endif
