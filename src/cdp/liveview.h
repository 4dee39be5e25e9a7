/* The live view (Page.inspect): a page of a running session, watched in any browser and, when
 * asked for, driven from there. docs/liveview.md has the whole story; in short:
 *
 *   Page.inspect (the client's own connection, answered here, never relayed) -> a URL
 *   http://<the Host the client used>/live/<token> on the CDP listener; the token (256 random
 *   bits, hex) names one page of one session, read-only or with input, and dies with the session.
 *   GET /live/<token> the viewer page (liveview/viewer.*, built in); its WebSocket
 *   /live/<token>/ws gets JPEG frames of Page.startScreencast run in the observer's own page
 *   session (never the client's), and sends input that becomes Input.dispatch* there.
 *
 * Cost rules: a page is screencast only while someone watches (one screencast per page, frames
 * fanned out to every viewer); a viewer that cannot keep up skips frames (each viewer holds at
 * most the frame being written and the newest one); frames are acknowledged no faster than
 * LIVEVIEW_FRAME_INTERVAL_MS. The frames come over the browser's pipe, not its traffic proxy,
 * so they are never billed to the session.
 *
 * Threading: loop thread only. Ownership: a session's live view state (tokens, screencasts) is
 * the session's, freed by liveview_session_ended; each viewer connection owns itself (freed in
 * its close callback) and forgets its session when the session ends. Messages passed in are
 * borrowed. */
#ifndef BROWSERD_CDP_LIVEVIEW_H
#define BROWSERD_CDP_LIVEVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "cdp/cdp_scan.h"
#include "core/buf.h"

#define LIVEVIEW_FRAME_INTERVAL_MS 100 /* ~10 frames a second at the most */
#define LIVEVIEW_MAX_TOKENS 32         /* per session: Page.inspect answers an error beyond */
#define LIVEVIEW_TOKEN_HEX 64          /* 32 random bytes */

typedef struct session session_t;
typedef struct gateway gateway_t;
typedef struct liveview_session liveview_session_t;

/* A client's message (scanned): true when it was Page.inspect, then it has been (or will be)
 * answered here and must not be relayed; the caller still owns and frees the message. */
bool liveview_client_command(session_t *s, const cdp_msg_t *m);

/* A browser message (scanned): true when it is the live view's (a frame, a reply to one of
 * its commands), then it has been handled and must not go further. */
bool liveview_browser_message(session_t *s, const cdp_msg_t *m);

/* A live view URL of the session's newest page (the dashboard's link, through the API): 0,
 * -ENOTSUP (--live-view off), -EINVAL (no page), -ENOSPC (too many views), -ENOMEM. */
int liveview_url(session_t *s, bool input, char *url, size_t cap);

/* The session ended: its viewers are closed (1001, "session ended"), its tokens die. Idempotent. */
void liveview_session_ended(session_t *s);

/* browserd_liveview_* of GET /metrics. 0 or -ENOMEM. */
int liveview_metrics_write(const gateway_t *gw, buf_t *out);

#endif
