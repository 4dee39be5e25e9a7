#include "cdp/recorder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdp/cdp_scan.h"

void recorder_init(recorder_t *r) { memset(r, 0, sizeof *r); }

void recorder_free(recorder_t *r) {
    for (size_t i = 0; i < r->ndocs; i++) free(r->docs[i].url);
    free(r->target_url);
    free(r->end_url);
    free(r->last_error);
    recorder_init(r);
}

bool recorder_is_internal_url(const char *url) {
    static const char *const prefixes[] = {"about:", "chrome:", "chrome-error:", "chrome-untrusted:",
                                           "devtools:", "data:"};
    if (!url || !*url) return true;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncasecmp(url, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

/* The values of an event's members, found in one pass over its (validated) JSON. */
#define KEY(s) {s, sizeof s - 1}

static bool get_fields(const char *obj, size_t len, const cdp_slice_t *keys, int n, cdp_value_t *v) {
    unsigned found;
    return obj && cdp_object_get_many(obj, len, keys, n, v, &found) == 0;
}

/* A string member copied into buf (a C string), or NULL when absent, not a string or too long
 * (ids are short; a longer one is not one Chromium sends). */
static const char *copy_str(const cdp_value_t *v, char *buf, size_t cap) {
    return v->type == CDP_T_STRING && cdp_string_copy(v, buf, cap) == 0 ? buf : NULL;
}

static recorder_doc_request_t *find_doc(recorder_t *r, const char *request_id) {
    for (size_t i = 0; i < r->ndocs; i++)
        if (strcmp(r->docs[i].request_id, request_id) == 0) return &r->docs[i];
    return NULL;
}

static void forget_doc(recorder_t *r, recorder_doc_request_t *d) {
    free(d->url);
    *d = r->docs[--r->ndocs]; /* the last entry (and its url) moves here */
}

/* Remembers a document request so that its failure can be told apart by frame. The table is
 * small: requests that never finish (the page was closed) are overwritten in turn. */
static void track_doc(recorder_t *r, const char *request_id, const char *frame_id, const char *url) {
    if (strlen(request_id) >= sizeof r->docs[0].request_id || strlen(frame_id) >= sizeof r->docs[0].frame_id)
        return;
    recorder_doc_request_t *d = find_doc(r, request_id);
    if (!d) {
        if (r->ndocs < RECORDER_MAX_PENDING) {
            d = &r->docs[r->ndocs++];
            d->url = NULL; /* a stale copy of a moved entry's pointer */
        } else {
            d = &r->docs[r->next_slot++ % RECORDER_MAX_PENDING];
        }
    }
    free(d->url); /* a redirect (same request id) or an overwritten entry */
    d->url = url ? strdup(url) : NULL; /* out of memory: a request of unknown URL, never counted */
    snprintf(d->request_id, sizeof d->request_id, "%s", request_id);
    snprintf(d->frame_id, sizeof d->frame_id, "%s", frame_id);
    d->error[0] = '\0';
    d->proxy_error = false;
    d->counted = false;
}

void recorder_page_opened(recorder_t *r, const char *target_id) {
    if (!target_id || strlen(target_id) >= sizeof r->main_frames[0]) return;
    for (size_t i = 0; i < r->nmain; i++)
        if (strcmp(r->main_frames[i], target_id) == 0) return;
    char *slot = r->nmain < RECORDER_MAX_MAIN_FRAMES ? r->main_frames[r->nmain++]
                                                     : r->main_frames[r->next_main++ % RECORDER_MAX_MAIN_FRAMES];
    snprintf(slot, sizeof r->main_frames[0], "%s", target_id);
}

void recorder_page_closed(recorder_t *r, const char *target_id) {
    for (size_t i = 0; target_id && i < r->nmain; i++)
        if (strcmp(r->main_frames[i], target_id) == 0) {
            memcpy(r->main_frames[i], r->main_frames[--r->nmain], sizeof r->main_frames[i]);
            return;
        }
}

static bool is_main_frame(const recorder_t *r, const char *frame_id) {
    for (size_t i = 0; i < r->nmain; i++)
        if (strcmp(r->main_frames[i], frame_id) == 0) return true;
    return false;
}

/* Whether hay holds needle, ASCII letters compared case-insensitively. */
static bool contains_ci(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if ((hay[i] | 0x20) == (needle[0] | 0x20) && strncasecmp(hay + i, needle, m) == 0) return true;
    return false;
}

/* The value of the proxy's error header in a response's headers object (any case of the
 * name, as Chromium reports headers as sent) into code, if it is one. */
static bool proxy_error_code(const cdp_value_t *response, char *code, size_t cap) {
    if (response->type != CDP_T_OBJECT) return false;
    cdp_value_t headers, h;
    if (cdp_object_get(response->raw.ptr, response->raw.len, "headers", 7, &headers) != 0 ||
        headers.type != CDP_T_OBJECT ||
        cdp_object_get_ci(headers.raw.ptr, headers.raw.len, RECORDER_PROXY_ERROR_HEADER,
                          sizeof RECORDER_PROXY_ERROR_HEADER - 1, &h) != 0)
        return false;
    return copy_str(&h, code, cap) && strncmp(code, "ERR_", 4) == 0;
}

static char *dup_or_keep(char *old, const char *s) {
    char *d = strdup(s);
    if (!d) return old; /* out of memory: keep the previous value rather than lose both */
    free(old);
    return d;
}

/* A failed document request of a main frame: counted now, before its error page commits. */
static void on_doc_failed(recorder_t *r, recorder_doc_request_t *d, bool canceled) {
    if (d->counted || !d->url || recorder_is_internal_url(d->url) || !is_main_frame(r, d->frame_id)) return;
    if (canceled || strcmp(d->error, "net::ERR_ABORTED") == 0) return;
    r->navigations++;
    if (!r->target_url) r->target_url = dup_or_keep(NULL, d->url);
    r->end_url = dup_or_keep(r->end_url, d->url);
    r->last_failed = true;
    free(r->last_error);
    size_t n = strlen(d->error) + strlen(d->url) + 5;
    r->last_error = malloc(n);
    if (r->last_error) snprintf(r->last_error, n, "%s at %s", d->error, d->url);
    d->counted = true;
    r->changed = true;
}

/* A committed main-frame document at url (internal pages excluded by the caller): counted.
 * unreachable: it is an error page for url; loader: its loader id (= its request id), or NULL. */
static void committed(recorder_t *r, const char *url, bool unreachable, const char *loader, const char *frame_id) {
    r->navigations++;
    if (!r->target_url) r->target_url = dup_or_keep(NULL, url);
    r->end_url = dup_or_keep(r->end_url, url);
    r->last_failed = unreachable;
    free(r->last_error);
    r->last_error = NULL;
    /* The document committed is the proxy's error page: its request id is the loader id. */
    recorder_doc_request_t *proxied = !r->last_failed && loader ? find_doc(r, loader) : NULL;
    if (proxied && proxied->proxy_error) {
        r->last_failed = true;
        size_t n = strlen(proxied->error) + strlen(url) + 5;
        r->last_error = malloc(n);
        if (r->last_error) snprintf(r->last_error, n, "%s at %s", proxied->error, url);
        forget_doc(r, proxied);
    } else if (r->last_failed) {
        const char *code = "net::ERR_FAILED";
        for (size_t i = 0; frame_id && i < r->ndocs; i++)
            if (strcmp(r->docs[i].frame_id, frame_id) == 0 && r->docs[i].error[0]) code = r->docs[i].error;
        size_t n = strlen(code) + strlen(url) + 5;
        r->last_error = malloc(n);
        if (r->last_error) snprintf(r->last_error, n, "%s at %s", code, url);
        for (size_t i = 0; frame_id && i < r->ndocs;) {
            if (strcmp(r->docs[i].frame_id, frame_id) == 0) forget_doc(r, &r->docs[i]);
            else i++;
        }
    }
    r->changed = true;
}

void recorder_navigation_committed(recorder_t *r, const char *url) {
    if (!recorder_is_internal_url(url)) committed(r, url, false, NULL, NULL);
}

static void on_frame_navigated(recorder_t *r, const char *params, size_t len) {
    static const cdp_slice_t frame_key[] = {KEY("frame")};
    static const cdp_slice_t keys[] = {KEY("parentId"), KEY("unreachableUrl"), KEY("url"), KEY("loaderId"), KEY("id")};
    cdp_value_t frame, v[5];
    if (!get_fields(params, len, frame_key, 1, &frame) || frame.type != CDP_T_OBJECT ||
        !get_fields(frame.raw.ptr, frame.raw.len, keys, 5, v) || v[0].raw.ptr)
        return; /* not a main frame */
    char *unreachable = cdp_string_dup(&v[1]);
    bool failed = unreachable && *unreachable;
    char *url = failed ? unreachable : cdp_string_dup(&v[2]);
    char loader_buf[64], frame_buf[64];
    const char *loader = copy_str(&v[3], loader_buf, sizeof loader_buf);
    const char *frame_id = copy_str(&v[4], frame_buf, sizeof frame_buf);
    if (recorder_is_internal_url(url)) goto done;
    if (failed) {
        /* the error page of a failure counted at its loadingFailed: nothing new */
        recorder_doc_request_t *d = loader ? find_doc(r, loader) : NULL;
        if (d && d->counted) {
            forget_doc(r, d);
            goto done;
        }
    }
    committed(r, url, failed, loader, frame_id);
done:
    if (url != unreachable) free(url);
    free(unreachable);
}

void recorder_page_event(recorder_t *r, const char *method, const char *params, size_t len) {
    if (!method || !params) return;
    if (strcmp(method, "Page.frameNavigated") == 0) {
        on_frame_navigated(r, params, len);
        return;
    }
    static const cdp_slice_t doc_keys[] = {KEY("requestId"), KEY("type"), KEY("frameId"), KEY("request"),
                                           KEY("errorText"), KEY("canceled"), KEY("response")};
    char id_buf[64];
    cdp_value_t v[7];
    if (strcmp(method, "Network.requestWillBeSent") == 0) {
        /* Every subresource of every page passes here; only documents matter, and Chromium's
         * JSON writer never escapes letters, so a message without the word is none. */
        if (!memmem(params, len, "\"Document\"", 10) || !get_fields(params, len, doc_keys, 4, v)) return;
        char frame_buf[64];
        const char *id = copy_str(&v[0], id_buf, sizeof id_buf);
        const char *frame = copy_str(&v[2], frame_buf, sizeof frame_buf);
        cdp_value_t url = {0};
        if (!id || !frame || !cdp_string_equals(v[1].str, "Document", 8) || v[1].type != CDP_T_STRING) return;
        if (v[3].type == CDP_T_OBJECT) cdp_object_get(v[3].raw.ptr, v[3].raw.len, "url", 3, &url);
        char *u = cdp_string_dup(&url);
        track_doc(r, id, frame, u);
        free(u);
        return;
    }
    bool failed = strcmp(method, "Network.loadingFailed") == 0;
    bool response = !failed && strcmp(method, "Network.responseReceived") == 0;
    bool finished = !failed && !response && strcmp(method, "Network.loadingFinished") == 0;
    /* Only requests of the document table matter: nothing to look up while it is empty; and of
     * the responses only the proxy's error pages. */
    if ((!failed && !response && !finished) || r->ndocs == 0) return;
    if (response && !contains_ci(params, len, RECORDER_PROXY_ERROR_HEADER)) return;
    if (!get_fields(params, len, doc_keys, 7, v)) return;
    const char *id = copy_str(&v[0], id_buf, sizeof id_buf);
    recorder_doc_request_t *d = id ? find_doc(r, id) : NULL;
    if (!d) return;
    if (failed) {
        char text[sizeof d->error * 2];
        if (copy_str(&v[4], text, sizeof text)) {
            size_t n = strnlen(text, sizeof d->error - 1); /* a longer text is cut, as before */
            memcpy(d->error, text, n);
            d->error[n] = '\0';
            on_doc_failed(r, d, v[5].type == CDP_T_TRUE);
        }
    } else if (response) {
        char code[96];
        if (proxy_error_code(&v[6], code, sizeof code)) {
            snprintf(d->error, sizeof d->error, "net::%s", code);
            d->proxy_error = true;
        }
    } else if (!d->proxy_error) {
        forget_doc(r, d); /* an error page may finish loading before it commits: kept until then */
    }
}
