/* The live view: see liveview.h. This file: Page.inspect and its tokens, the screencasts (one
 * per watched page) that feed the viewers, the session's end and the metrics; the viewers'
 * connections are liveview_viewer.c's. */
#include "cdp/liveview.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_ids.h"
#include "cdp/liveview_internal.h"
#include "cdp/liveview_proto.h"
#include "core/log.h"
#include "json/jsonw.h"

#define KEY(s) {s, sizeof s - 1}

/* ---------------------------------------------------------------- helpers ---- */

void lv_frame_unref(lv_frame_t *f) {
    if (f && --f->refs == 0) free(f);
}

int64_t lv_next_id(liveview_session_t *lv) {
    int64_t id = lv->next_id;
    lv->next_id -= 2; /* input sends two commands at most */
    if (lv->next_id < CDP_ID_LIVEVIEW_LAST) lv->next_id = CDP_ID_LIVEVIEW_FIRST;
    return id;
}

void lv_send_browser(session_t *s, char *msg, size_t len) {
    if (!s->browser || s->browser_gone || s->ended) {
        free(msg);
        return;
    }
    browser_send(s->browser, msg, len);
}

void lv_send_command(liveview_session_t *lv, const char *session, const char *method, const char *params) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "{\"id\":%lld,\"sessionId\":\"%s\",\"method\":\"%s\",\"params\":%s}",
                     (long long)lv_next_id(lv), session, method, params);
    if (n < 0 || (size_t)n >= sizeof buf) return;
    char *msg = strdup(buf);
    if (msg) lv_send_browser(lv->s, msg, (size_t)n);
}

/* The observer's page session of a target, or NULL when the page is gone. */
const char *lv_page_session_of(const observer_t *o, const char *target) {
    for (size_t i = 0; i < o->npages; i++)
        if (o->enable_id[i] && strcmp(o->frame_id[i], target) == 0) return o->pages[i];
    return NULL;
}

/* ---------------------------------------------------------------- screencasts ---- */

void lv_stream_start(liveview_session_t *lv, lv_stream_t *st) {
    lv_send_command(lv, st->session, "Page.startScreencast",
                    "{\"format\":\"jpeg\",\"quality\":70,\"maxWidth\":1600,\"maxHeight\":1200}");
    st->casting = true;
    lv->s->gw->metrics.live_screencasts++;
}

static void stream_stop(liveview_session_t *lv, lv_stream_t *st) {
    if (st->casting) {
        st->casting = false;
        lv->s->gw->metrics.live_screencasts--;
        if (!lv->s->ended) lv_send_command(lv, st->session, "Page.stopScreencast", "{}");
    }
    lv_frame_unref(st->latest);
    st->latest = NULL;
    st->ack_due = false;
}

void lv_stream_free_if_unwatched(liveview_session_t *lv, lv_stream_t *st) {
    if (st->nviewers) return;
    stream_stop(lv, st);
    for (lv_stream_t **p = &lv->streams; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    free(st);
}

static void send_ack(liveview_session_t *lv, lv_stream_t *st, uint64_t now) {
    char params[64];
    snprintf(params, sizeof params, "{\"sessionId\":%lld}", (long long)st->ack_frame);
    lv_send_command(lv, st->session, "Page.screencastFrameAck", params);
    st->ack_due = false;
    st->last_ack_ms = now;
}

/* Acknowledges the frames whose interval is over; Chromium sends the next frame only then,
 * which is what caps the frame rate (and the encoder's work) per page. */
static void on_ack_timer(uv_timer_t *t) {
    liveview_session_t *lv = t->data;
    uint64_t now = uv_now(t->loop), wait = 0;
    for (lv_stream_t *st = lv->streams; st; st = st->next) {
        if (!st->ack_due) continue;
        uint64_t since = now - st->last_ack_ms;
        if (since >= LIVEVIEW_FRAME_INTERVAL_MS) send_ack(lv, st, now);
        else if (!wait || LIVEVIEW_FRAME_INTERVAL_MS - since < wait) wait = LIVEVIEW_FRAME_INTERVAL_MS - since;
    }
    if (wait) uv_timer_start(&lv->ack_timer, on_ack_timer, wait, 0);
}

/* Page.screencastFrame in the stream's session: one frame for every viewer. */
static void on_frame(liveview_session_t *lv, lv_stream_t *st, const cdp_msg_t *m) {
    static const cdp_slice_t keys[] = {KEY("data"), KEY("metadata"), KEY("sessionId")};
    cdp_value_t v[3], w, h;
    unsigned found;
    int64_t frame_id;
    if (!m->params.ptr || cdp_object_get_many(m->params.ptr, m->params.len, keys, 3, v, &found) != 0 ||
        v[0].type != CDP_T_STRING || v[2].type != CDP_T_NUMBER || cdp_number_int(v[2].raw, &frame_id) != 0)
        return;
    if (v[1].type == CDP_T_OBJECT && cdp_object_get(v[1].raw.ptr, v[1].raw.len, "deviceWidth", 11, &w) == 0 &&
        cdp_object_get(v[1].raw.ptr, v[1].raw.len, "deviceHeight", 12, &h) == 0 && w.type == CDP_T_NUMBER &&
        h.type == CDP_T_NUMBER) {
        st->width = strtod(w.raw.ptr, NULL);
        st->height = strtod(h.raw.ptr, NULL);
    }
    st->ack_frame = frame_id;
    st->ack_due = true;
    uint64_t now = uv_now(lv->s->gw->cfg.loop);
    if (now - st->last_ack_ms >= LIVEVIEW_FRAME_INTERVAL_MS) send_ack(lv, st, now);
    else if (!uv_is_active((uv_handle_t *)&lv->ack_timer))
        uv_timer_start(&lv->ack_timer, on_ack_timer, LIVEVIEW_FRAME_INTERVAL_MS - (now - st->last_ack_ms), 0);

    /* {"type":"frame","width":W,"height":H,"data":"<base64 JPEG>"}: the base64 text is copied
     * as it came (it holds no escapes), once for every viewer */
    char head[128];
    int hn = snprintf(head, sizeof head, "{\"type\":\"frame\",\"width\":%.0f,\"height\":%.0f,\"data\":\"",
                      st->width, st->height);
    size_t payload = (size_t)hn + v[0].str.len + 2;
    uint8_t hdr[WS_MAX_HEADER];
    size_t hl = ws_frame_header(hdr, WS_OP_TEXT, true, payload, NULL);
    lv_frame_t *f = malloc(sizeof *f + hl + payload);
    if (!f) return;
    f->refs = 1;
    f->len = hl + payload;
    memcpy(f->bytes, hdr, hl);
    memcpy(f->bytes + hl, head, (size_t)hn);
    memcpy(f->bytes + hl + hn, v[0].str.ptr, v[0].str.len);
    memcpy(f->bytes + hl + hn + v[0].str.len, "\"}", 2);
    lv_frame_unref(st->latest);
    st->latest = f; /* the stream's reference */
    for (lv_viewer_t *x = st->viewers; x; x = x->next) lv_viewer_offer(x, f);
}

/* ---------------------------------------------------------------- Page.inspect ---- */

static liveview_session_t *lv_of(session_t *s) {
    if (s->live) return s->live;
    liveview_session_t *lv = calloc(1, sizeof *lv);
    if (!lv) return NULL;
    lv->s = s;
    lv->next_id = CDP_ID_LIVEVIEW_FIRST;
    uv_timer_init(s->gw->cfg.loop, &lv->ack_timer);
    lv->ack_timer.data = lv;
    s->live = lv;
    return lv;
}

typedef struct {
    const char *url; /* the result's, or NULL for an error */
    int code;
    const char *message;
} inspect_answer_t;

static void fill_inspect_answer(session_t *s, jsonw_t *w, const void *ctx) {
    (void)s;
    const inspect_answer_t *a = ctx;
    jsonw_key(w, a->url ? "result" : "error");
    jsonw_object_begin(w);
    if (a->url) {
        jsonw_key(w, "url");
        jsonw_string(w, a->url);
    } else {
        jsonw_key(w, "code");
        jsonw_int(w, a->code);
        jsonw_key(w, "message");
        jsonw_string(w, a->message);
    }
    jsonw_object_end(w);
}

/* {"id":id,("result":{"url":...}|"error":{...}),"sessionId":...} to the client. */
static void answer(session_t *s, int64_t id, const char *session, size_t session_len, const char *url, int code,
                   const char *message) {
    inspect_answer_t a = {url, code, message};
    relay_reply(s, id, session, session_len, fill_inspect_answer, &a);
}

/* A token for the page `target` (NULL: the session's newest page), answered as the URL. */
/* A new token for the page `target` (NULL: the session's newest page) and its URL into url.
 * 0, or -EINVAL/-ENOSPC/-ENOMEM with *why set. */
static int make_url(session_t *s, const char *target, bool input, char *url, size_t cap, const char **why) {
    liveview_session_t *lv = lv_of(s);
    /* the newest page (pages are appended as they attach): the tab a client opened last is
     * the one it works in, and a background tab may paint no frames at all */
    for (size_t i = s->observer.npages; !target && i-- > 0;)
        if (s->observer.enable_id[i]) target = s->observer.frame_id[i];
    if (!lv || !target || !target[0]) {
        *why = "Page.inspect: the session has no page to show";
        return -EINVAL;
    }
    if (lv->ntokens >= LIVEVIEW_MAX_TOKENS) {
        *why = "Page.inspect: too many live views for this session";
        return -ENOSPC;
    }
    unsigned char raw[LIVEVIEW_TOKEN_HEX / 2];
    lv_token_t *t = calloc(1, sizeof *t);
    if (!t || RAND_bytes(raw, sizeof raw) != 1) {
        free(t);
        *why = "Page.inspect: no token could be made";
        return -ENOMEM;
    }
    for (size_t i = 0; i < sizeof raw; i++) sprintf(t->hex + 2 * i, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof raw);
    snprintf(t->target, sizeof t->target, "%s", target);
    t->input = input;
    t->next = lv->tokens;
    lv->tokens = t;
    lv->ntokens++;
    snprintf(url, cap, "http://%s/live/%s", s->live_host, t->hex);
    log_event(LOG_INFO, "gateway", "live_view_granted", "session=%s input=%s", s->id_text, input ? "true" : "false");
    return 0;
}

int liveview_url(session_t *s, bool input, char *url, size_t cap) {
    const char *why = NULL;
    if (!s->gw->cfg.live_view) return -ENOTSUP;
    return make_url(s, NULL, input, url, cap, &why);
}

static void grant(session_t *s, int64_t id, const char *session, size_t session_len, const char *target, bool input) {
    char url[400];
    const char *why = NULL;
    if (make_url(s, target, input, url, sizeof url, &why) < 0) {
        answer(s, id, session, session_len, NULL, -32000, why);
        return;
    }
    answer(s, id, session, session_len, url, 0, NULL);
    OPENSSL_cleanse(url, sizeof url);
}

bool liveview_client_command(session_t *s, const cdp_msg_t *m) {
    if (!cdp_string_equals(m->method, "Page.inspect", 12)) return false;
    const char *sid = m->session_id.ptr;
    size_t sid_len = m->session_id.len;
    if (!s->gw->cfg.live_view) {
        answer(s, m->id, sid, sid_len, NULL, -32601, "Page.inspect: the live view is off (--live-view off)");
        return true;
    }
    bool input;
    const char *why = NULL;
    if (liveview_inspect_params(m->params.ptr, m->params.len, &input, &why) < 0) {
        answer(s, m->id, sid, sid_len, NULL, -32602, why);
        return true;
    }
    if (!sid) {
        grant(s, m->id, NULL, 0, NULL, input);
        return true;
    }
    /* Which page is that session's? Chromium knows: Target.getTargetInfo on it. */
    liveview_session_t *lv = lv_of(s);
    lv_pending_t *p = lv ? calloc(1, sizeof *p) : NULL;
    char *copy = p ? strndup(sid, sid_len) : NULL;
    if (!copy) {
        free(p);
        answer(s, m->id, sid, sid_len, NULL, -32000, "Page.inspect: out of memory");
        return true;
    }
    p->our_id = lv_next_id(lv);
    p->client_id = m->id;
    p->client_session = copy;
    p->input = input;
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"id\":%lld,\"sessionId\":\"%s\",\"method\":\"Target.getTargetInfo\"}",
                     (long long)p->our_id, copy);
    char *msg = n > 0 && (size_t)n < sizeof buf ? strdup(buf) : NULL;
    if (!msg) {
        free(copy);
        free(p);
        answer(s, m->id, sid, sid_len, NULL, -32602, "Page.inspect: sessionId too long");
        return true;
    }
    p->next = lv->pending;
    lv->pending = p;
    lv_send_browser(s, msg, (size_t)n);
    return true;
}

static void on_target_info(session_t *s, lv_pending_t *p, const cdp_msg_t *m) {
    cdp_value_t info, type, id;
    char target[ID_MAX];
    bool page = m->result.ptr && cdp_object_get(m->result.ptr, m->result.len, "targetInfo", 10, &info) == 0 &&
                info.type == CDP_T_OBJECT && cdp_object_get(info.raw.ptr, info.raw.len, "type", 4, &type) == 0 &&
                cdp_string_equals(type.str, "page", 4) &&
                cdp_object_get(info.raw.ptr, info.raw.len, "targetId", 8, &id) == 0 &&
                cdp_string_copy(&id, target, sizeof target) == 0;
    /* the browser's own session (or one Chromium does not know): the session's newest page */
    grant(s, p->client_id, p->client_session, strlen(p->client_session), page ? target : NULL, p->input);
}

bool liveview_browser_message(session_t *s, const cdp_msg_t *m) {
    liveview_session_t *lv = s->live;
    if (m->id_is_int && cdp_id_liveview(m->id)) {
        for (lv_pending_t **pp = lv ? &lv->pending : NULL; pp && *pp; pp = &(*pp)->next)
            if ((*pp)->our_id == m->id) {
                lv_pending_t *p = *pp;
                *pp = p->next;
                if (!s->ended) on_target_info(s, p, m);
                free(p->client_session);
                free(p);
                break;
            }
        return true; /* replies to the live view's commands are nobody else's */
    }
    if (!lv || !m->session_id.ptr || !m->method.ptr || !cdp_string_equals(m->method, "Page.screencastFrame", 20))
        return false;
    for (lv_stream_t *st = lv->streams; st; st = st->next)
        if (strlen(st->session) == m->session_id.len && memcmp(st->session, m->session_id.ptr, m->session_id.len) == 0) {
            if (!s->ended) on_frame(lv, st, m);
            return true;
        }
    return false;
}

/* ---------------------------------------------------------------- the session's end ---- */

static void lv_closed(uv_handle_t *h) { free(h->data); }

void liveview_session_ended(session_t *s) {
    liveview_session_t *lv = s->live;
    if (!lv) return;
    s->live = NULL;
    for (lv_stream_t *st = lv->streams, *next; st; st = next) {
        next = st->next;
        while (st->viewers) {
            lv_viewer_t *v = st->viewers;
            st->viewers = v->next;
            v->stream = NULL;
            v->lv = NULL;
            lv_viewer_close(v, WS_CLOSE_GOING_AWAY, "session ended");
        }
        stream_stop(lv, st);
        free(st);
    }
    while (lv->tokens) {
        lv_token_t *t = lv->tokens;
        lv->tokens = t->next;
        OPENSSL_cleanse(t->hex, sizeof t->hex);
        free(t);
    }
    while (lv->pending) {
        lv_pending_t *p = lv->pending;
        lv->pending = p->next;
        free(p->client_session);
        free(p);
    }
    uv_close((uv_handle_t *)&lv->ack_timer, lv_closed);
}

/* The token of a live path ("/live/<hex>" or "/live/<hex>/ws"), or NULL; constant time in the
 * token's bytes, so timing does not tell how much of a guess was right. */
lv_token_t *lv_find_token(gateway_t *gw, const char *hex, session_t **owner) {
    lv_token_t *hit = NULL;
    for (session_t *s = gw->sessions; s; s = s->next) {
        if (s->ended || !s->live) continue;
        for (lv_token_t *t = s->live->tokens; t; t = t->next)
            if (CRYPTO_memcmp(t->hex, hex, LIVEVIEW_TOKEN_HEX) == 0) {
                hit = t;
                *owner = s;
            }
    }
    return hit;
}

/* ---------------------------------------------------------------- metrics ---- */

int liveview_metrics_write(const gateway_t *gw, buf_t *out) {
    const gateway_metrics_t *m = &gw->metrics;
    int rc = metrics_write_one(out, "browserd_liveview_viewers", "gauge", "Live view WebSockets open now",
                               m->live_viewers);
    if (rc == 0)
        rc = metrics_write_one(out, "browserd_liveview_screencasts", "gauge",
                               "Pages screencast for live viewers now (one per watched page)", m->live_screencasts);
    if (rc == 0)
        rc = metrics_write_one(out, "browserd_liveview_frames_sent_total", "counter",
                               "Live view frames written to viewers", (double)m->live_frames_sent);
    if (rc == 0)
        rc = metrics_write_one(out, "browserd_liveview_frames_dropped_total", "counter",
                               "Live view frames a slow viewer skipped (a newer frame took their place)",
                               (double)m->live_frames_dropped);
    if (rc == 0)
        rc = metrics_write_one(out, "browserd_liveview_input_dropped_total", "counter",
                               "Input from read-only live viewers, dropped", (double)m->live_input_dropped);
    return rc;
}

