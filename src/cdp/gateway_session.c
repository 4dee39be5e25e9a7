/* A session's record and its end: see gateway_internal.h.
 *
 * Saving: the record is copied for a worker thread (the session changes while the save runs),
 * written to the catalog first (the API sees it at once) and then to the store. One save is in
 * flight per session; a change meanwhile asks for another one when it is done. The first save
 * is what the API must know before a client may use the session's id (Browser.getSessionId
 * waits for it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "cdp/gateway_internal.h"
#include "core/timeutil.h"

/* ---------------------------------------------------------------- records ---- */

/* The session's record now; the strings are borrowed from the session and its observer. */
static void record_of(const session_t *s, session_record_t *r) {
    observer_summary_t nav;
    observer_summary(&s->observer, &nav);
    memset(r, 0, sizeof *r);
    memcpy(r->session_id, s->id_text, sizeof r->session_id);
    r->api_name = (char *)s->zone;
    r->status = s->ended ? s->status : SESSION_RUNNING;
    r->target_url = (char *)nav.target_url;
    r->end_url = (char *)nav.end_url;
    r->navigations = nav.navigations;
    r->timestamp_ms = s->start_ms;
    r->duration_ms = s->ended ? s->end_ms - s->start_ms : SESSION_DURATION_NULL;
    r->captcha = s->captcha_live ? captcha_record(&s->captcha) : CAPTCHA_NONE;
    r->bandwidth = 0;
    if (s->net) {
        traffic_counts_t c;
        traffic_proxy_counts(s->net->proxy, &c);
        r->bandwidth = (int64_t)(c.total_bytes - s->net_base.total_bytes);
    }
    r->error_code = s->ended && s->status == SESSION_FAILED ? (char *)s->error_code : NULL;
    r->error_message = r->error_code ? s->error_message : NULL;
}

/* A copy for the worker thread: the session may change while the save runs. */
struct save_item {
    session_t *s; /* NULL: a record of a client that never got a session */
    char customer[STORE_ID_MAX + 1];
    session_record_t rec;
};

/* The records saved together: every save asked for while the previous batch was being
 * written goes into the next one, so a busy node pays one store transaction for many
 * records instead of one each. One batch is written at a time. */
struct save_batch {
    uv_work_t work;
    gateway_t *gw;
    save_item_t *items;
    size_t n, cap;
    int rc;
};

static void batch_free(save_batch_t *b) {
    for (size_t i = 0; i < b->n; i++) session_record_free(&b->items[i].rec);
    free(b->items);
    free(b);
}

/* Appends a copy of view (borrowed) to the batch being filled; -ENOMEM. */
static int queue_save(gateway_t *gw, session_t *s, const char *customer, const session_record_t *view) {
    save_batch_t *b = gw->save_queue;
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) return -ENOMEM;
        b->gw = gw;
        b->work.data = b;
        gw->save_queue = b;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        save_item_t *grown = realloc(b->items, cap * sizeof *grown);
        if (!grown) return -ENOMEM;
        b->items = grown;
        b->cap = cap;
    }
    save_item_t *it = &b->items[b->n];
    if (session_record_copy(&it->rec, view) < 0) return -ENOMEM;
    it->s = s;
    snprintf(it->customer, sizeof it->customer, "%s", customer);
    b->n++;
    return 0;
}

static void save_work(uv_work_t *w) {
    save_batch_t *b = w->data;
    gateway_t *gw = b->gw;
    /* The catalog first: the API sees the change at once, even while the store is busy (an
     * import holds its write lock); the store catches up with this or the next save. */
    for (size_t i = 0; i < b->n; i++) catalog_put(gw->cfg.catalog, b->items[i].customer, &b->items[i].rec);
    store_session_write_t *writes = malloc(b->n * sizeof *writes);
    if (!writes) {
        b->rc = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < b->n; i++) writes[i] = (store_session_write_t){b->items[i].customer, &b->items[i].rec};
    b->rc = gw->cfg.spool ? store_spool_save(gw->cfg.spool, gw->cfg.store, writes, b->n, gw->worker)
                          : store_sessions_save(gw->cfg.store, writes, b->n, gw->worker);
    free(writes);
}

static void start_batch(gateway_t *gw);

static void save_done(uv_work_t *w, int status) {
    save_batch_t *b = w->data;
    gateway_t *gw = b->gw;
    if (status != 0 || b->rc != 0)
        log_event(LOG_ERROR, "gateway", "session_save_failed", "records=%zu first=%s error=%s", b->n, b->items[0].rec.session_id,
                status ? uv_strerror(status) : strerror(-b->rc));
    gw->save_running = NULL;
    for (size_t i = 0; i < b->n; i++) {
        session_t *s = b->items[i].s;
        if (!s) continue;
        s->save_in_flight = false;
        if (b->items[i].rec.status != SESSION_RUNNING) s->final_saved = true;
        if (!s->first_saved) {
            s->first_saved = true;
            relay_answer_held_id_requests(s);
        }
        if (s->save_again || (s->ended && !s->final_saved)) {
            s->save_again = false;
            session_save(s);
        }
    }
    /* The sessions are let go only now: a release frees the session, and with it gateway
     * state the saves above may still read. */
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].s) session_unref(b->items[i].s);
    batch_free(b);
    gw->stop_pending--;
    start_batch(gw);
    gateway_maybe_stopped(gw);
}

static void start_batch(gateway_t *gw) {
    save_batch_t *b = gw->save_queue;
    if (gw->save_running || !b) return;
    gw->save_queue = NULL;
    gw->save_running = b;
    gw->stop_pending++; /* the gateway may not go before the batch is written */
    if (uv_queue_work(gw->cfg.loop, &b->work, save_work, save_done) != 0) {
        b->rc = -EAGAIN;
        save_done(&b->work, 0);
    }
}

void session_save(session_t *s) {
    if (s->save_in_flight) {
        s->save_again = true;
        return;
    }
    session_record_t view;
    record_of(s, &view);
    if (queue_save(s->gw, s, s->customer, &view) < 0) {
        log_event(LOG_ERROR, "gateway", "session_save_failed", "session=%s error=%s", s->id_text, strerror(ENOMEM));
        return;
    }
    observer_take_changed(&s->observer);
    s->save_in_flight = true;
    session_ref(s);
    start_batch(s->gw);
}

void session_save_unstarted(gateway_t *gw, const char *customer, const session_record_t *rec) {
    if (rec->status != SESSION_RUNNING) gateway_metrics_ended(gw, rec->status, rec->error_code);
    if (queue_save(gw, NULL, customer, rec) < 0)
        log_event(LOG_ERROR, "gateway", "session_save_failed", "session=%s error=%s", rec->session_id, strerror(ENOMEM));
    else start_batch(gw);
}

/* ---------------------------------------------------------------- lifetime ---- */

static void session_release(net_lifetime_t *life) {
    session_t *s = (session_t *)life;
    gateway_t *gw = s->gw;
    for (session_t **p = &gw->sessions; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    ws_reader_free(&s->reader);
    free(s->pending);
    for (size_t i = 0; i < s->nsid_requests; i++) free(s->sid_requests[i]);
    if (s->captcha_live) captcha_free(&s->captcha);
    liveview_session_ended(s);
    if (s->observer_live) observer_free(&s->observer);
    free(s->error_message);
    if (s->browser) browser_free(s->browser);
    gateway_net_release(s->net);
    free(s);
    gateway_maybe_stopped(gw);
}

session_t *session_new(gateway_t *gw, const zone_credentials_t *cred) {
    session_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    net_lifetime_init(&s->life, 1, session_release); /* the client handle */
    s->gw = gw;
    snprintf(s->customer, sizeof s->customer, "%s", cred->customer_id);
    snprintf(s->zone, sizeof s->zone, "%s", cred->zone);
    s->start_ms = time_now_ms();
    uuid_v7_generate(s->start_ms, s->id);
    uuid_format(s->id, s->id_text);
    ws_reader_init(&s->reader, NULL);
    gw->active++;
    s->next = gw->sessions;
    gw->sessions = s;
    return s;
}

void session_ref(session_t *s) { net_lifetime_ref(&s->life); }
void session_unref(session_t *s) { net_lifetime_unref(&s->life); }

/* ---------------------------------------------------------------- timers ---- */

static void on_session_timeout(uv_timer_t *t) {
    session_t *s = t->data;
    /* The timer runs on the loop's clock, the duration on the wall clock: if the timer is a
     * millisecond ahead, wait out the rest, so no session_timeout is shorter than the limit. */
    int64_t left = s->start_ms + (int64_t)s->gw->cfg.session_timeout_ms - time_now_ms();
    if (left > 0) {
        uv_timer_start(t, on_session_timeout, (uint64_t)left, 0);
        return;
    }
    session_end(s, SESSION_FAILED, "session_timeout", "the session reached its maximum duration", WS_CLOSE_GOING_AWAY,
                "session_timeout: the session reached its maximum duration");
}

static void on_idle_timeout(uv_timer_t *t) {
    session_t *s = t->data;
    session_end(s, SESSION_FAILED, "inactivity_timeout", "no CDP message in either direction for the idle limit",
                WS_CLOSE_GOING_AWAY, "inactivity_timeout: no CDP traffic for the idle limit");
}

static void on_save_timer(uv_timer_t *t) {
    /* Saved even when nothing changed: the save time is the session's last sign of life. */
    session_save(t->data);
}

void session_start_timers(session_t *s) {
    const gateway_config_t *cfg = &s->gw->cfg;
    uv_timer_t *timers[3] = {&s->session_timer, &s->idle_timer, &s->save_timer};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(cfg->loop, timers[i]);
        timers[i]->data = s;
        session_ref(s);
    }
    s->timers_open = true;
    uv_timer_start(&s->session_timer, on_session_timeout, cfg->session_timeout_ms, 0);
    /* A browser still starting has not seen the client's first commands yet: the idle limit
     * is about a quiet client and browser, not about Chromium's launch (seconds on a loaded
     * machine), so it runs from the browser's first message (session_browser_answered). A
     * browser that never answers is bounded by the session timeout. */
    browser_stats_t st;
    browser_get_stats(s->browser, &st);
    if (st.first_message_us >= 0) session_browser_answered(s);
    uv_timer_start(&s->save_timer, on_save_timer, cfg->save_interval_ms, cfg->save_interval_ms);
}

void session_browser_answered(session_t *s) {
    if (s->browser_answered || !s->timers_open) return;
    s->browser_answered = true;
    uv_timer_start(&s->idle_timer, on_idle_timeout, s->gw->cfg.idle_timeout_ms, s->gw->cfg.idle_timeout_ms);
}

void session_touch(session_t *s) {
    if (s->timers_open && s->browser_answered) uv_timer_again(&s->idle_timer);
}

/* ---------------------------------------------------------------- the end ---- */

static void captcha_to_client(void *ctx, char *msg, size_t len) { relay_send_text(ctx, msg, len); }

static void captcha_changed(void *ctx) {
    session_t *s = ctx;
    if (!s->ended) session_save(s);
}

void session_captcha_start(session_t *s) {
    captcha_init(&s->captcha, s->gw->cfg.loop, &s->gw->cfg.captcha, &s->observer, captcha_to_client, captcha_changed, s,
                 s->id_text);
    s->captcha_live = true;
}

void session_end(session_t *s, session_status_t status, const char *code, const char *message, uint16_t close_code,
                 const char *close_reason) {
    if (s->ended) return;
    s->ended = true;
    s->end_ms = time_now_ms();
    s->status = status;
    s->error_code = code;
    /* Out of memory, the record keeps its error code without a message. */
    s->error_message = message ? strdup(message) : NULL;
    if (s->captcha_live) captcha_stop(&s->captcha); /* the record's captcha is final from here */
    gateway_metrics_ended(s->gw, status, code);
    if (s->hooks.ended) s->hooks.ended(s->hooks.arg, code);
    if (log_enabled(LOG_INFO)) { /* the record as it is saved, one line */
        session_record_t r;
        record_of(s, &r);
        log_event(LOG_INFO, "gateway", "session_end",
                  "session=%s customer=%s zone=%s status=%s error=%s navigations=%lld duration_ms=%lld bandwidth=%lld "
                  "captcha=%s target_url=\"%s\" end_url=\"%s\" error_message=\"%s\"",
                  s->id_text, s->customer, r.api_name, session_status_name(status), code ? code : "-",
                  (long long)r.navigations, (long long)r.duration_ms, (long long)r.bandwidth, captcha_name(r.captcha),
                  r.target_url ? r.target_url : "", r.end_url ? r.end_url : "", r.error_message ? r.error_message : "");
    }
    if (s->timers_open) {
        s->timers_open = false;
        net_lifetime_close((uv_handle_t *)&s->session_timer);
        net_lifetime_close((uv_handle_t *)&s->idle_timer);
        net_lifetime_close((uv_handle_t *)&s->save_timer);
    }
    liveview_session_ended(s);
    relay_close_client_with(s, close_code, close_reason);
    if (s->browser && !s->browser_gone) browser_kill(s->browser);
    session_save(s);
    gateway_t *gw = s->gw;
    gw->active--;
    admission_admit_waiters(gw);
}

void session_end_by_client(session_t *s, uint16_t close_code, const char *reason) {
    observer_summary_t nav;
    observer_summary(&s->observer, &nav);
    if (nav.last_failed)
        session_end(s, SESSION_FAILED, "page_navigated_error", nav.last_error ? nav.last_error : "navigation failed",
                    close_code, reason);
    else
        session_end(s, SESSION_FINISHED, NULL, NULL, close_code, reason);
}
