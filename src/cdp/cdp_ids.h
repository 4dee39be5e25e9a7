/* Every CDP message id browserd reserves for itself, in one place.
 *
 * Chromium accepts only ids that fit a signed 32-bit int (2^31 is refused with "Message must
 * have integer 'id' property"), and clients (Puppeteer, Playwright, chromedp) count up from 1.
 * So everything browserd sends to a browser on its own uses negative ids, and a client's
 * message with a negative id is answered by the gateway with an error instead of being
 * forwarded (it could otherwise steal the reply to one of browserd's commands):
 *
 *   >= 0               the client's own
 *   -1                 the pool's readiness probe (Browser.getVersion), browser_pool.c
 *   -2 .. -999         reserved for the pool (setup before a browser is handed out)
 *   -1000 .. -999999999  the observer (observer.c): -1000 attaches to the browser target,
 *                      -1001 turns on auto-attach, then one id per command counting down
 *   <= -1000000000     the live view (liveview.c: screencasts, input, Page.inspect's look-up),
 *                      counting down and starting over at the top of its range
 *
 * Replies to the pool's ids arrive while the browser waits in the pool, before a client
 * exists; the observer's replies are consumed by the observer and never reach a client. */
#ifndef BROWSERD_CDP_CDP_IDS_H
#define BROWSERD_CDP_CDP_IDS_H

#include <stdbool.h>
#include <stdint.h>

#define CDP_ID_POOL_PROBE (-1)
#define CDP_ID_POOL_LAST (-999)
#define CDP_ID_OBSERVER_ATTACH (-1000)
#define CDP_ID_OBSERVER_AUTO_ATTACH (-1001)
#define CDP_ID_OBSERVER_NEXT (-1002) /* the first of the observer's counted ids */
#define CDP_ID_LIVEVIEW_FIRST (-1000000000)
#define CDP_ID_LIVEVIEW_LAST (-2147483000) /* INT32_MIN with room for a few below */

/* Whether an id is browserd's own (a client may not use it). */
static inline bool cdp_id_reserved(int64_t id) { return id < 0; }
/* Whether an id is one of the observer's. */
static inline bool cdp_id_observer(int64_t id) { return id <= CDP_ID_OBSERVER_ATTACH && id > CDP_ID_LIVEVIEW_FIRST; }
/* Whether an id is one of the live view's. */
static inline bool cdp_id_liveview(int64_t id) { return id <= CDP_ID_LIVEVIEW_FIRST; }

#endif
