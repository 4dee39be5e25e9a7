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
    r->captcha = CAPTCHA_NONE;
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
typedef struct {
    uv_work_t work;
    session_t *s; /* NULL: a record of a client that never got a session */
    store_t *store;
    catalog_t *catalog;
    char customer[STORE_ID_MAX + 1];
    char worker[128];
    session_record_t rec;
    int rc;
} save_job_t;

/* A save of a copy of `view` (borrowed) for a worker thread; NULL when out of memory. */
static save_job_t *save_job_new(gateway_t *gw, const char *customer, const session_record_t *view) {
    save_job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    if (session_record_copy(&j->rec, view) < 0) {
        free(j);
        return NULL;
    }
    j->store = gw->cfg.store;
    j->catalog = gw->cfg.catalog;
    snprintf(j->customer, sizeof j->customer, "%s", customer);
    snprintf(j->worker, sizeof j->worker, "%s", gw->worker);
    j->work.data = j;
    return j;
}

static void save_job_free(save_job_t *j) {
    session_record_free(&j->rec);
    free(j);
}

static void save_work(uv_work_t *w) {
    save_job_t *j = w->data;
    /* The catalog first: the API sees the change at once, even while the store is busy (an
     * import holds its write lock); the store catches up with this or the next save. */
    catalog_put(j->catalog, j->customer, &j->rec);
    j->rc = store_session_save(j->store, j->customer, &j->rec, j->worker);
}

static void log_save_failure(const save_job_t *j, int status) {
    if (status != 0 || j->rc != 0)
        fprintf(stderr, "event=session_save_failed session=%s error=%s\n", j->rec.session_id,
                status ? uv_strerror(status) : strerror(-j->rc));
}

static void save_done(uv_work_t *w, int status) {
    save_job_t *j = w->data;
    session_t *s = j->s;
    log_save_failure(j, status);
    bool was_final = j->rec.status != SESSION_RUNNING;
    save_job_free(j);
    if (!s) return;
    s->save_in_flight = false;
    if (was_final) s->final_saved = true;
    if (!s->first_saved) {
        s->first_saved = true;
        relay_answer_held_id_requests(s);
    }
    if (s->save_again || (s->ended && !s->final_saved)) {
        s->save_again = false;
        session_save(s);
    }
    session_unref(s);
}

static int save_job_queue(gateway_t *gw, save_job_t *j) {
    int rc = uv_queue_work(gw->cfg.loop, &j->work, save_work, save_done);
    if (rc != 0) save_job_free(j);
    return rc;
}

void session_save(session_t *s) {
    if (s->save_in_flight) {
        s->save_again = true;
        return;
    }
    session_record_t view;
    record_of(s, &view);
    save_job_t *j = save_job_new(s->gw, s->customer, &view);
    if (!j) {
        fprintf(stderr, "event=session_save_failed session=%s error=%s\n", s->id_text, strerror(ENOMEM));
        return;
    }
    j->s = s;
    observer_take_changed(&s->observer);
    if (save_job_queue(s->gw, j) != 0) return;
    s->save_in_flight = true;
    session_ref(s);
}

void session_save_unstarted(gateway_t *gw, const char *customer, const session_record_t *rec) {
    save_job_t *j = save_job_new(gw, customer, rec);
    if (j) save_job_queue(gw, j);
    else fprintf(stderr, "event=session_save_failed session=%s error=%s\n", rec->session_id, strerror(ENOMEM));
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
    uv_timer_start(&s->idle_timer, on_idle_timeout, cfg->idle_timeout_ms, cfg->idle_timeout_ms);
    uv_timer_start(&s->save_timer, on_save_timer, cfg->save_interval_ms, cfg->save_interval_ms);
}

void session_touch(session_t *s) {
    if (s->timers_open) uv_timer_again(&s->idle_timer);
}

/* ---------------------------------------------------------------- the end ---- */

void session_end(session_t *s, session_status_t status, const char *code, const char *message, uint16_t close_code,
                 const char *close_reason) {
    if (s->ended) return;
    s->ended = true;
    s->end_ms = time_now_ms();
    s->status = status;
    s->error_code = code;
    /* Out of memory, the record keeps its error code without a message. */
    s->error_message = message ? strdup(message) : NULL;
    observer_summary_t nav;
    observer_summary(&s->observer, &nav);
    fprintf(stderr, "event=session_end session=%s customer=%s status=%s error=%s navigations=%lld\n", s->id_text,
            s->customer, session_status_name(status), code ? code : "-", (long long)nav.navigations);
    if (s->timers_open) {
        s->timers_open = false;
        net_lifetime_close((uv_handle_t *)&s->session_timer);
        net_lifetime_close((uv_handle_t *)&s->idle_timer);
        net_lifetime_close((uv_handle_t *)&s->save_timer);
    }
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
