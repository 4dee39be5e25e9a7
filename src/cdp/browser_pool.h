/* A warm pool of pre-launched browsers (`--pool N`), so that a session does not wait for
 * Chromium's start (a few hundred ms, more under load).
 *
 * A pooled browser is "ready" once Chromium answered a first command over the pipe
 * (Browser.getVersion, id CDP_ID_POOL_PROBE) and the optional on_setup hook marked it
 * ready. Each pooled browser serves exactly one session: browser_pool_take hands it over for
 * good and starts a replacement. A pooled browser that exits while waiting (crash, killed by
 * someone) or is not ready within ready_timeout_ms is dropped and replaced; launches that keep
 * failing are retried with exponential backoff (100 ms doubling up to 30 s), so a broken
 * Chromium does not turn into a fork loop.
 *
 * Message ids used before a client exists: the probe's and the setup hook's, from the ranges
 * cdp_ids.h reserves. Replies to them arrive before the browser is taken, so they never reach
 * a client.
 *
 * Sizing: every browser_pool_take is an arrival (found a ready browser or not). The pool wants
 * as many browsers (ready or starting) as arrive while one is replaced (Little's law: the
 * arrival rate, the larger of the last 2 s's and the last 10 s's, times the time from a take to
 * the replacement's readiness, smoothed), times 1.5 for bursts; never fewer than size (the
 * spare) nor more than max_size or the room(). Launches for it start at once and in parallel.
 * When arrivals slow down, ready browsers beyond the target are stopped after
 * BROWSER_POOL_SHRINK_IDLE_MS. At most max_starting browsers start at once. A take that finds no
 * ready browser is a miss: counted, and logged (folded: one line a minute) as the pool not
 * keeping up; it is then given the browser that has been starting longest, if any (it is nearer
 * to ready than a launch of its own would be), unless the pool has an on_setup hook. Such a
 * browser's probe reply (a reserved id, cdp_ids.h) may still come to the taker, which must
 * not pass it on: reserved ids are never a client's.
 *
 * Threading: loop thread only, like browser.h.
 * Ownership: the pool owns its waiting browsers; a taken browser belongs to the caller (who
 * browser_frees it after its on_exit). cfg->browser is borrowed and must outlive the pool. */
#ifndef BROWSERD_CDP_BROWSER_POOL_H
#define BROWSERD_CDP_BROWSER_POOL_H

#include <stdint.h>
#include <uv.h>

#include "cdp/browser.h"
#include "cdp/cdp_ids.h"

#define BROWSER_POOL_DEFAULT_SIZE 2
/* The pool grows back down to its size once it has been idle this long beyond its target. */
#define BROWSER_POOL_SHRINK_IDLE_MS 30000

typedef struct browser_pool browser_pool_t;

typedef struct {
    /* Browsers kept waiting at the least (default BROWSER_POOL_DEFAULT_SIZE; the config field
     * 0 means the default, use browser_pool_new only when a pool is wanted at all). */
    unsigned size;
    /* The most kept waiting when sessions come faster than `size` browsers can be replaced
     * (see "Sizing" above); below size means size (a fixed pool). */
    unsigned max_size;
    /* Optional: how many more browsers could be used now (free session slots; 0 when memory is
     * short). The pool never grows past size + what this allows. NULL: no bound but max_size. */
    unsigned (*room)(void *ctx);
    /* How long a ready browser beyond the target waits before it is stopped (0: the default,
     * BROWSER_POOL_SHRINK_IDLE_MS). */
    uint64_t shrink_idle_ms;
    /* Browsers starting at once, at most (0: the machine's cores, at least 2): on a small
     * machine parallel launches only slow each other down, and every session waits longer. */
    unsigned max_starting;
    /* How each browser is launched; NULL = browser_config_defaults. Borrowed. */
    const browser_config_t *browser;
    /* Launch -> ready limit; over it the browser is killed and replaced. Default 30 s. */
    uint64_t ready_timeout_ms;
    /* Optional. Called once the browser answered the probe. The hook may send its own setup
     * commands (ids of cdp_ids.h's pool range) with browser_send and must call
     * browser_pool_mark_ready(pool, b) when it is done (from the hook or later). NULL: ready
     * at once. */
    void (*on_setup)(void *ctx, browser_pool_t *pool, browser_t *b);
    /* Optional. Every message from a pooled browser other than the probe's reply (replies to
     * the hook's commands, events it subscribed to). Ownership of msg moves to the callee.
     * NULL: such messages are freed. */
    void (*on_setup_message)(void *ctx, browser_pool_t *pool, browser_t *b, char *msg, size_t len);
    /* Optional. Called before each launch with a copy of the browser config that it may
     * change (e.g. extra_args; what they point to must stay valid until the call returns,
     * which the launch copies); *data is kept with the browser and handed to whoever takes
     * it (browser_pool_take_data). A negative return skips this launch (retried later). The
     * gateway gives every browser its own traffic proxy this way. */
    int (*prepare_launch)(void *ctx, browser_config_t *cfg, void **data);
    /* Optional. Releases the data of a browser that leaves the pool without being taken. */
    void (*release_launch)(void *ctx, void *data);
    /* Optional: the answer of the launch probe (Browser.getVersion: product, revision,
     * userAgent, jsVersion), borrowed for the call. */
    void (*on_version)(void *ctx, const char *msg, size_t len);
    void *ctx;
} browser_pool_config_t;

/* Creates the pool and starts filling it. cfg is copied (cfg->browser is borrowed). Returns 0
 * or -ENOMEM / -EINVAL. */
int browser_pool_new(uv_loop_t *loop, const browser_pool_config_t *cfg, browser_pool_t **out);

/* A ready browser with its callbacks set to cb/ctx (ownership moves to the caller), and a
 * replacement launch started; NULL if none is ready (then launch one with browser_launch).
 * NULL also after browser_pool_stop. */
browser_t *browser_pool_take(browser_pool_t *pool, const browser_callbacks_t *cb, void *ctx);
/* The same, also handing over the data prepare_launch gave the browser (NULL if none). */
browser_t *browser_pool_take_data(browser_pool_t *pool, const browser_callbacks_t *cb, void *ctx, void **data);

/* For on_setup: b (still in the pool) is ready to be taken. Ignored for a browser not in setup. */
void browser_pool_mark_ready(browser_pool_t *pool, browser_t *b);

/* Kills every waiting browser and launches no more; done(arg) is called (from the loop, never
 * from inside this call) once they are all gone and cleaned up. Then browser_pool_free. */
void browser_pool_stop(browser_pool_t *pool, void (*done)(void *arg), void *arg);

/* After done: releases the pool. */
void browser_pool_free(browser_pool_t *pool);

typedef struct {
    unsigned waiting;        /* in the pool now, ready or not */
    unsigned ready;          /* ready now */
    uint64_t launched;       /* browsers launched, in total */
    uint64_t became_ready;
    uint64_t taken;
    uint64_t lost;           /* exited or timed out while waiting (then replaced) */
    uint64_t launch_errors;  /* browser_launch itself failed */
    int64_t last_ready_us;   /* launch -> ready of the latest ready browser; -1 before any */
    int64_t min_ready_us, max_ready_us;
    int64_t sum_ready_us;    /* / became_ready = the mean */
    int64_t ewma_ready_us;   /* smoothed launch -> ready (the recent ones count most); -1 before any */
    uint64_t misses;         /* takes that found no ready browser */
    unsigned target;         /* browsers wanted now (size .. max_size) */
    uint64_t retired;        /* ready browsers stopped because the pool shrank */
    uint64_t taken_starting; /* misses given a browser still starting (part of misses and taken) */
} browser_pool_stats_t;
void browser_pool_get_stats(const browser_pool_t *pool, browser_pool_stats_t *out);

/* The sizing rule (see "Sizing"), without a pool: the browsers wanted for an arrival rate (per
 * second), a smoothed launch -> ready time (µs; < 0 unknown: a second is assumed), the pool's
 * size and max_size, and the room (UINT_MAX: no bound). */
unsigned browser_pool_wanted(double rate, int64_t ready_us, unsigned size, unsigned max_size, unsigned room);

#endif
