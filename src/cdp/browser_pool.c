/* The warm pool: see browser_pool.h. */
#include "core/log.h"
#include "cdp/browser_pool.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdp/cdp_scan.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define ARRIVALS_KEPT 256     /* the rate of the last 10 s is exact up to 25 sessions/s */
#define RESIZE_CHECK_MS 1000  /* a pool above its size looks at the rate this often */
#define BURST_FACTOR 1.5

typedef enum { ENTRY_PROBING, ENTRY_SETUP, ENTRY_READY } entry_state_t;

typedef struct pool_entry {
    struct pool_entry *prev, *next; /* launch order: the oldest ready one is taken first */
    browser_pool_t *pool;
    browser_t *b;
    entry_state_t state;
    uint64_t t_launch_ms, t_ready_ms;
    bool killed;  /* by the ready timeout, a shrink or stop; its on_exit is still to come */
    bool retired; /* killed because the pool shrank: not a loss */
    void *data;  /* from prepare_launch */
} pool_entry_t;

struct browser_pool {
    uv_loop_t *loop;
    browser_pool_config_t cfg;
    pool_entry_t *head, *tail;
    unsigned count;
    uv_timer_t timer; /* ready timeouts and backoff, one-shot at the earliest deadline */
    unsigned failures; /* consecutive browsers lost before ready */
    uint64_t next_launch_ms;
    bool stopping, timer_closed;
    void (*done)(void *);
    void *done_arg;
    browser_pool_stats_t st;
    unsigned target;                 /* browsers wanted now: see "Sizing" in browser_pool.h */
    uint64_t arrivals[ARRIVALS_KEPT]; /* when the latest takes came (uv_now), a ring */
    unsigned arrivals_next, arrivals_count;
};

static void reschedule(browser_pool_t *p);
static void refill(browser_pool_t *p);

#define REPLACEMENT_DELAY_MS 150
#define SLACK_REPLACEMENT_DELAY_MS 1000

static void unlink_entry(browser_pool_t *p, pool_entry_t *e) {
    if (e->prev) e->prev->next = e->next;
    else p->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else p->tail = e->prev;
    p->count--;
    if (e->state == ENTRY_READY) p->st.ready--;
}

static void mark_ready(browser_pool_t *p, pool_entry_t *e) {
    e->state = ENTRY_READY;
    p->st.ready++;
    p->st.became_ready++;
    p->failures = 0;
    int64_t us = (int64_t)(uv_now(p->loop) - e->t_launch_ms) * 1000;
    browser_stats_t bs;
    browser_get_stats(e->b, &bs);
    if (bs.first_message_us >= 0 && !p->cfg.on_setup) us = bs.first_message_us; /* finer clock */
    p->st.last_ready_us = us;
    if (p->st.min_ready_us < 0 || us < p->st.min_ready_us) p->st.min_ready_us = us;
    if (us > p->st.max_ready_us) p->st.max_ready_us = us;
    p->st.sum_ready_us += us;
    p->st.ewma_ready_us = p->st.ewma_ready_us < 0 ? us : (p->st.ewma_ready_us * 3 + us) / 4;
    e->t_ready_ms = uv_now(p->loop);
    refill(p); /* a starting slot is free (max_starting) */
}

unsigned browser_pool_wanted(double rate, int64_t ready_us, unsigned size, unsigned max_size, unsigned room) {
    unsigned max = max_size > size ? max_size : size;
    if (rate <= 0 || max == size) return size;
    /* before any browser got ready: assume a second, about a cold launch here */
    double replace_s = (ready_us >= 0 ? (double)ready_us / 1e6 : 1.0) + REPLACEMENT_DELAY_MS / 1000.0;
    double want_d = ceil(rate * replace_s * BURST_FACTOR); /* size itself is the spare */
    unsigned want = want_d > max ? max : (unsigned)want_d;
    unsigned cap = room > size ? room : size;
    if (want > cap) want = cap;
    return want < size ? size : want;
}

/* The browsers wanted now, from the arrival rate and the time a replacement takes. */
static unsigned compute_target(const browser_pool_t *p, uint64_t now) {
    unsigned min = p->cfg.size, max = p->cfg.max_size > min ? p->cfg.max_size : min;
    if (max == min) return min;
    unsigned in2 = 0, in10 = 0;
    unsigned n = p->arrivals_count < ARRIVALS_KEPT ? p->arrivals_count : ARRIVALS_KEPT;
    for (unsigned i = 0; i < n; i++) {
        uint64_t age = now - p->arrivals[i];
        in2 += age < 2000;
        in10 += age < 10000;
    }
    double rate = fmax(in2 / 2.0, in10 / 10.0);
    if (rate <= 0) return min;
    return browser_pool_wanted(rate, p->st.ewma_ready_us, min, max, p->cfg.room ? p->cfg.room(p->cfg.ctx) : UINT_MAX);
}

static unsigned live_count(const browser_pool_t *p) {
    unsigned n = 0;
    for (const pool_entry_t *e = p->head; e; e = e->next) n += !e->killed;
    return n;
}

static unsigned starting_count(const browser_pool_t *p) {
    unsigned n = 0;
    for (const pool_entry_t *e = p->head; e; e = e->next) n += !e->killed && e->state != ENTRY_READY;
    return n;
}

/* Ready browsers idle past BROWSER_POOL_SHRINK_IDLE_MS while the pool holds more than its
 * target: stopped, the longest idle first. */
static void shrink(browser_pool_t *p, uint64_t now) {
    unsigned live = live_count(p);
    for (pool_entry_t *e = p->head; e && live > p->target; e = e->next) {
        if (e->state != ENTRY_READY || e->killed || now - e->t_ready_ms < p->cfg.shrink_idle_ms) continue;
        e->killed = e->retired = true;
        live--;
        log_event(LOG_DEBUG, "browser", "browser_pool_shrink", "chromium_pid=%d target=%u", browser_pid(e->b), p->target);
        browser_kill(e->b);
    }
}

static void on_pooled_message(void *ctx, char *msg, size_t len) {
    pool_entry_t *e = ctx;
    browser_pool_t *p = e->pool;
    if (e->state == ENTRY_PROBING) {
        cdp_msg_t m;
        if (cdp_scan(msg, len, &m) == 0 && m.id_is_int && m.id == CDP_ID_POOL_PROBE) {
            bool ok = (m.present & CDP_KEY_RESULT) != 0;
            if (ok && p->cfg.on_version) p->cfg.on_version(p->cfg.ctx, msg, len);
            free(msg);
            if (!ok) {
                log_event(LOG_WARN, "browser", "browser_pool_probe_failed", "chromium_pid=%d", browser_pid(e->b));
                e->killed = true;
                browser_kill(e->b);
                return;
            }
            e->state = ENTRY_SETUP;
            if (p->cfg.on_setup) p->cfg.on_setup(p->cfg.ctx, p, e->b);
            else mark_ready(p, e);
            return;
        }
    }
    if (p->cfg.on_setup_message) p->cfg.on_setup_message(p->cfg.ctx, p, e->b, msg, len);
    else free(msg);
}

static void on_stopped_timer_closed(uv_handle_t *h) {
    browser_pool_t *p = h->data;
    if (p->done) {
        void (*done)(void *) = p->done;
        p->done = NULL;
        done(p->done_arg);
    }
}


static void on_pooled_exit(void *ctx, int status, int term_signal) {
    pool_entry_t *e = ctx;
    browser_pool_t *p = e->pool;
    bool was_ready = e->state == ENTRY_READY;
    unlink_entry(p, e);
    browser_free(e->b);
    if (e->data && p->cfg.release_launch) p->cfg.release_launch(p->cfg.ctx, e->data);
    if (e->retired) {
        p->st.retired++;
    } else if (!p->stopping) {
        p->st.lost++;
        log_event(LOG_WARN, "browser", "browser_pool_lost", "state=%s end=%s status=%d signal=%d",
                was_ready ? "ready" : "starting", browser_end_str(status), status, term_signal);
        if (!was_ready) {
            /* Never got ready: back off before the next launch. */
            unsigned shift = p->failures < 9 ? p->failures : 9;
            uint64_t delay = (uint64_t)BACKOFF_FIRST_MS << shift;
            if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
            p->failures++;
            p->next_launch_ms = uv_now(p->loop) + delay;
        }
    }
    free(e);
    if (p->stopping) {
        /* done() may free the pool: it comes from the timer's close callback. */
        if (p->count == 0 && !p->timer_closed) {
            p->timer_closed = true;
            uv_close((uv_handle_t *)&p->timer, on_stopped_timer_closed);
        }
        return;
    }
    refill(p);
}

static int launch_one(browser_pool_t *p) {
    pool_entry_t *e = calloc(1, sizeof *e);
    if (!e) return -ENOMEM;
    e->pool = p;
    e->state = ENTRY_PROBING;
    e->t_launch_ms = uv_now(p->loop);
    browser_callbacks_t cb = {.on_message = on_pooled_message, .on_exit = on_pooled_exit};
    browser_config_t cfg;
    if (p->cfg.browser) cfg = *p->cfg.browser;
    else browser_config_defaults(&cfg);
    if (p->cfg.prepare_launch && p->cfg.prepare_launch(p->cfg.ctx, &cfg, &e->data) < 0) {
        free(e);
        return -EAGAIN;
    }
    int rc = browser_launch(p->loop, &cfg, &cb, e, &e->b);
    if (rc < 0) {
        if (e->data && p->cfg.release_launch) p->cfg.release_launch(p->cfg.ctx, e->data);
        free(e);
        return rc;
    }
    char probe[64];
    int n = snprintf(probe, sizeof probe, "{\"id\":%d,\"method\":\"Browser.getVersion\"}", CDP_ID_POOL_PROBE);
    char *msg = malloc((size_t)n + 1);
    if (msg) {
        memcpy(msg, probe, (size_t)n + 1);
        rc = (int)browser_send(e->b, msg, (size_t)n);
    }
    if (!msg || rc < 0) browser_kill(e->b); /* its on_exit will find it linked */
    e->prev = p->tail;
    if (p->tail) p->tail->next = e;
    else p->head = e;
    p->tail = e;
    p->count++;
    p->st.launched++;
    return 0;
}

static void refill(browser_pool_t *p) {
    if (p->stopping) return;
    while (live_count(p) < p->target && starting_count(p) < p->cfg.max_starting && uv_now(p->loop) >= p->next_launch_ms) {
        int rc = launch_one(p);
        if (rc < 0) {
            p->st.launch_errors++;
            unsigned shift = p->failures < 9 ? p->failures : 9;
            uint64_t delay = (uint64_t)BACKOFF_FIRST_MS << shift;
            p->failures++;
            p->next_launch_ms = uv_now(p->loop) + (delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay);
            log_event(LOG_ERROR, "browser", "browser_pool_launch_failed", "error=\"%s\" retry_ms=%llu", strerror(-rc),
                    (unsigned long long)(p->next_launch_ms - uv_now(p->loop)));
            break;
        }
    }
    reschedule(p);
}

static void on_timer(uv_timer_t *t) {
    browser_pool_t *p = t->data;
    uint64_t now = uv_now(p->loop);
    for (pool_entry_t *e = p->head; e; e = e->next)
        if (e->state != ENTRY_READY && !e->killed && now - e->t_launch_ms >= p->cfg.ready_timeout_ms) {
            log_event(LOG_WARN, "browser", "browser_pool_ready_timeout", "chromium_pid=%d ms=%llu", browser_pid(e->b),
                    (unsigned long long)(now - e->t_launch_ms));
            e->killed = true;
            browser_kill(e->b); /* on_exit replaces it */
        }
    p->target = compute_target(p, now);
    shrink(p, now);
    refill(p);
}

static void reschedule(browser_pool_t *p) {
    if (p->stopping) return;
    uint64_t due = UINT64_MAX, now = uv_now(p->loop);
    unsigned live = live_count(p);
    /* A launch waits for a starting slot: mark_ready and on_pooled_exit refill then. */
    if (live < p->target && starting_count(p) < p->cfg.max_starting) due = p->next_launch_ms;
    if (p->target > p->cfg.size || live > p->target) due = due < now + RESIZE_CHECK_MS ? due : now + RESIZE_CHECK_MS;
    for (pool_entry_t *e = p->head; e; e = e->next)
        if (e->state != ENTRY_READY && !e->killed && e->t_launch_ms + p->cfg.ready_timeout_ms < due)
            due = e->t_launch_ms + p->cfg.ready_timeout_ms;
    if (due == UINT64_MAX) {
        uv_timer_stop(&p->timer);
        return;
    }
    uv_timer_start(&p->timer, on_timer, due > now ? due - now : 0, 0);
}

int browser_pool_new(uv_loop_t *loop, const browser_pool_config_t *cfg, browser_pool_t **out) {
    *out = NULL;
    browser_pool_t *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->loop = loop;
    p->cfg = *cfg;
    if (!p->cfg.size) p->cfg.size = BROWSER_POOL_DEFAULT_SIZE;
    if (!p->cfg.ready_timeout_ms) p->cfg.ready_timeout_ms = 30000;
    if (!p->cfg.shrink_idle_ms) p->cfg.shrink_idle_ms = BROWSER_POOL_SHRINK_IDLE_MS;
    if (!p->cfg.max_starting) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        p->cfg.max_starting = cores > 2 ? (unsigned)cores : 2;
    }
    p->st.last_ready_us = p->st.min_ready_us = p->st.ewma_ready_us = -1;
    p->target = p->cfg.size;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    *out = p;
    refill(p);
    return 0;
}

browser_t *browser_pool_take(browser_pool_t *p, const browser_callbacks_t *cb, void *ctx) {
    void *data = NULL;
    browser_t *b = browser_pool_take_data(p, cb, ctx, &data);
    if (data && p->cfg.release_launch) p->cfg.release_launch(p->cfg.ctx, data);
    return b;
}

browser_t *browser_pool_take_data(browser_pool_t *p, const browser_callbacks_t *cb, void *ctx, void **data) {
    *data = NULL;
    if (p->stopping) return NULL;
    uint64_t now = uv_now(p->loop);
    p->arrivals[p->arrivals_next] = now;
    p->arrivals_next = (p->arrivals_next + 1) % ARRIVALS_KEPT;
    p->arrivals_count++;
    p->target = compute_target(p, now);
    pool_entry_t *e = p->head;
    /* A ready one whose end is already under way (its on_exit not yet run) is no use. */
    while (e && (e->state != ENTRY_READY || e->killed || !browser_alive(e->b))) e = e->next;
    if (!e) {
        p->st.misses++;
        log_event_repeating(LOG_WARN, "browser", "browser_pool_empty", "browser_pool_empty",
                            "detail=\"a session found no warm browser and waits for one to start\" target=%u "
                            "starting=%u max=%u", p->target, starting_count(p),
                            p->cfg.max_size > p->cfg.size ? p->cfg.max_size : p->cfg.size);
        /* The one starting longest (launch order: the first found) is nearer to ready than a
         * launch of the session's own. Not with a setup hook: its setup would be cut short. */
        for (e = p->head; e && !p->cfg.on_setup; e = e->next)
            if (e->state == ENTRY_PROBING && !e->killed && browser_alive(e->b)) break;
        if (!e || p->cfg.on_setup) {
            refill(p); /* the target may have grown: launch for it now */
            return NULL;
        }
        p->st.taken_starting++;
    }
    unlink_entry(p, e);
    browser_t *b = e->b;
    *data = e->data;
    free(e);
    browser_set_callbacks(b, cb, ctx);
    p->st.taken++;
    /* The replacement is launched from the timer a moment later: spawning blocks the loop for
     * a few ms (measured 1-8 ms), and a starting Chromium takes both cores of a small machine for
     * a few hundred: neither should land on the new session's first exchanges (Puppeteer's
     * connect is a dozen of them). While another browser is still ready, there is time to wait
     * for the session to get going; when none is, the next session needs this one soon. */
    uint64_t soon = uv_now(p->loop) + (p->st.ready > 0 ? SLACK_REPLACEMENT_DELAY_MS : REPLACEMENT_DELAY_MS);
    if (p->next_launch_ms < soon) p->next_launch_ms = soon;
    reschedule(p);
    return b;
}

void browser_pool_mark_ready(browser_pool_t *p, browser_t *b) {
    for (pool_entry_t *e = p->head; e; e = e->next)
        if (e->b == b) {
            if (e->state == ENTRY_SETUP && !e->killed) mark_ready(p, e);
            return;
        }
}

void browser_pool_stop(browser_pool_t *p, void (*done)(void *arg), void *arg) {
    if (p->stopping) return;
    p->stopping = true;
    p->done = done;
    p->done_arg = arg;
    uv_timer_stop(&p->timer);
    if (p->count == 0) {
        /* Nothing to wait for: done comes from the close callback, never from this call. */
        p->timer_closed = true;
        uv_close((uv_handle_t *)&p->timer, on_stopped_timer_closed);
        return;
    }
    for (pool_entry_t *e = p->head; e; e = e->next) {
        e->killed = true;
        browser_kill(e->b);
    }
}

void browser_pool_free(browser_pool_t *p) {
    free(p);
}

void browser_pool_get_stats(const browser_pool_t *p, browser_pool_stats_t *out) {
    *out = p->st;
    out->waiting = p->count;
    out->target = p->target;
}
