/* What the live view's files share (private to src/cdp): liveview.c (Page.inspect, tokens,
 * screencasts, the session's end, metrics) and liveview_viewer.c (viewer connections: HTTP,
 * WebSocket, frames out, input in). See liveview.h for the whole.
 * Threading: loop thread only. */
#ifndef BROWSERD_CDP_LIVEVIEW_INTERNAL_H
#define BROWSERD_CDP_LIVEVIEW_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cdp/gateway_internal.h"
#include "cdp/liveview.h"

#define ID_MAX (OBSERVER_SESSION_ID_MAX + 1)
#define VIEWER_READ_BUF 4096
#define VIEWER_MAX_MESSAGE 4096

/* A frame as it goes out: the whole WebSocket frame (header + JSON), shared by every viewer it
 * is written to, freed by the last. */
typedef struct {
    unsigned refs;
    size_t len;
    char bytes[];
} lv_frame_t;

typedef struct lv_viewer lv_viewer_t;

/* One watched page: its screencast, run in the observer's page session. */
typedef struct lv_stream {
    struct lv_stream *next;
    char target[ID_MAX];
    char session[ID_MAX]; /* the observer's page session */
    lv_viewer_t *viewers;
    unsigned nviewers;
    bool casting;       /* Page.startScreencast sent, not stopped */
    lv_frame_t *latest; /* what a viewer that joins now sees first */
    double width, height; /* the page's CSS pixels, from the last frame's metadata */
    int64_t ack_frame;    /* the screencastFrame's sessionId to acknowledge */
    bool ack_due;
    uint64_t last_ack_ms;
} lv_stream_t;

typedef struct lv_token {
    struct lv_token *next;
    char hex[LIVEVIEW_TOKEN_HEX + 1];
    char target[ID_MAX];
    bool input;
} lv_token_t;

/* A Page.inspect waiting for Target.getTargetInfo on the client's session (which page it is). */
typedef struct lv_pending {
    struct lv_pending *next;
    int64_t our_id, client_id;
    char *client_session; /* as it came (JSON string contents) */
    bool input;
} lv_pending_t;

struct liveview_session {
    session_t *s;
    lv_token_t *tokens;
    unsigned ntokens;
    lv_stream_t *streams;
    lv_pending_t *pending;
    int64_t next_id;
    uv_timer_t ack_timer; /* freed with this struct, in its close callback */
};

struct lv_viewer {
    uv_tcp_t tcp;
    gateway_t *gw;
    lv_stream_t *stream; /* NULL once detached (its session ended, or the viewer left) */
    liveview_session_t *lv;
    bool input;
    bool open;     /* reading, and frames may be written */
    bool counted;  /* in browserd_liveview_viewers */
    unsigned frames_in_flight;
    lv_frame_t *next_frame; /* the newest frame not written yet */
    lv_viewer_t *next;
    ws_reader_t reader;
    char rbuf[VIEWER_READ_BUF];
};


/* ---- liveview.c ---- */
void lv_frame_unref(lv_frame_t *f);
/* A message id of the live view's range (two in a row are free: input may send two). */
int64_t lv_next_id(liveview_session_t *lv);
/* To the session's browser (msg: malloc'ed, ownership moves here; dropped once it ended). */
void lv_send_browser(session_t *s, char *msg, size_t len);
void lv_send_command(liveview_session_t *lv, const char *session, const char *method, const char *params);
/* The observer's page session of a target, or NULL when the page is gone. */
const char *lv_page_session_of(const observer_t *o, const char *target);
/* Starts the page's screencast (the first viewer came). */
void lv_stream_start(liveview_session_t *lv, lv_stream_t *st);
/* Stops the page's screencast and frees the stream once nobody watches it. */
void lv_stream_free_if_unwatched(liveview_session_t *lv, lv_stream_t *st);
/* The live token `hex` (LIVEVIEW_TOKEN_HEX characters) of a running session, and its session. */
lv_token_t *lv_find_token(gateway_t *gw, const char *hex, session_t **owner);

/* ---- liveview_viewer.c ---- */
/* The newest frame wins (f: a reference is taken when kept). */
void lv_viewer_offer(lv_viewer_t *v, lv_frame_t *f);
/* Sends a close frame, then closes the connection once it is written. */
void lv_viewer_close(lv_viewer_t *v, uint16_t code, const char *reason);
/* Leaves its stream (the last viewer stops the screencast) and the viewers gauge. */
void lv_viewer_detach(lv_viewer_t *v);

#endif
