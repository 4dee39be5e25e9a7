/* The live view's HTTP side on the CDP listener (see liveview.h): GET /live/<token> (the viewer
 * page), /live/viewer.js, /live/viewer.css, and the viewer's WebSocket /live/<token>/ws.
 * A wrong, expired or malformed token, or a page that is gone, is one and the same 404.
 * Threading: loop thread. Ownership: the request is borrowed; a viewer connection owns itself. */
#ifndef BROWSERD_CDP_LIVEVIEW_VIEWER_H
#define BROWSERD_CDP_LIVEVIEW_VIEWER_H

#include <stdbool.h>

#include "http/http_server.h"

typedef struct gateway gateway_t;

/* A request on the CDP listener: true when its path is the live view's (/live, /live/...),
 * then it has been answered (or taken over: a viewer's WebSocket). */
bool liveview_http(gateway_t *gw, http_conn_t *conn, const http_request_t *req);

#endif
