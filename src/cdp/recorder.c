#include "cdp/recorder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static const char *str_field(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
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
    d->url = url ? strdup(url) : NULL;
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

/* The value of the proxy's error header in a response's headers object, if it is one. */
static const char *proxy_error_code(const cJSON *response) {
    const cJSON *headers = cJSON_GetObjectItemCaseSensitive(response, "headers");
    const cJSON *h;
    cJSON_ArrayForEach(h, headers) {
        if (h->string && strcasecmp(h->string, RECORDER_PROXY_ERROR_HEADER) == 0 && cJSON_IsString(h) &&
            strncmp(h->valuestring, "ERR_", 4) == 0)
            return h->valuestring;
    }
    return NULL;
}

static char *dup_or_keep(char *old, const char *s) {
    char *d = strdup(s);
    if (!d) return old; /* out of memory: keep the previous value rather than lose both */
    free(old);
    return d;
}

/* A failed document request of a main frame: counted now, before its error page commits. */
static void on_doc_failed(recorder_t *r, recorder_doc_request_t *d, const cJSON *params) {
    if (d->counted || !d->url || recorder_is_internal_url(d->url) || !is_main_frame(r, d->frame_id)) return;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(params, "canceled")) || strcmp(d->error, "net::ERR_ABORTED") == 0)
        return;
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

static void on_frame_navigated(recorder_t *r, const cJSON *params) {
    const cJSON *frame = cJSON_GetObjectItemCaseSensitive(params, "frame");
    if (!cJSON_IsObject(frame) || cJSON_GetObjectItemCaseSensitive(frame, "parentId")) return;
    const char *unreachable = str_field(frame, "unreachableUrl");
    const char *url = unreachable && *unreachable ? unreachable : str_field(frame, "url");
    if (recorder_is_internal_url(url)) return;
    if (unreachable && *unreachable) {
        /* the error page of a failure counted at its loadingFailed: nothing new */
        const char *loader = str_field(frame, "loaderId");
        recorder_doc_request_t *d = loader ? find_doc(r, loader) : NULL;
        if (d && d->counted) {
            forget_doc(r, d);
            return;
        }
    }
    r->navigations++;
    if (!r->target_url) r->target_url = dup_or_keep(NULL, url);
    r->end_url = dup_or_keep(r->end_url, url);
    r->last_failed = unreachable && *unreachable;
    free(r->last_error);
    r->last_error = NULL;
    /* The document committed is the proxy's error page: its request id is the loader id. */
    const char *loader = str_field(frame, "loaderId");
    recorder_doc_request_t *proxied = !r->last_failed && loader ? find_doc(r, loader) : NULL;
    if (proxied && proxied->proxy_error) {
        r->last_failed = true;
        size_t n = strlen(proxied->error) + strlen(url) + 5;
        r->last_error = malloc(n);
        if (r->last_error) snprintf(r->last_error, n, "%s at %s", proxied->error, url);
        forget_doc(r, proxied);
    } else if (r->last_failed) {
        const char *frame_id = str_field(frame, "id");
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

void recorder_page_event(recorder_t *r, const char *method, const cJSON *params) {
    if (!method || !cJSON_IsObject(params)) return;
    if (strcmp(method, "Page.frameNavigated") == 0) {
        on_frame_navigated(r, params);
    } else if (strcmp(method, "Network.requestWillBeSent") == 0) {
        const char *type = str_field(params, "type");
        const char *id = str_field(params, "requestId");
        const char *frame = str_field(params, "frameId");
        const cJSON *request = cJSON_GetObjectItemCaseSensitive(params, "request");
        if (type && id && frame && strcmp(type, "Document") == 0) track_doc(r, id, frame, str_field(request, "url"));
    } else if (strcmp(method, "Network.loadingFailed") == 0) {
        const char *id = str_field(params, "requestId");
        const char *text = str_field(params, "errorText");
        recorder_doc_request_t *d = id ? find_doc(r, id) : NULL;
        if (d && text) {
            snprintf(d->error, sizeof d->error, "%s", text);
            on_doc_failed(r, d, params);
        }
    } else if (strcmp(method, "Network.responseReceived") == 0) {
        const char *id = str_field(params, "requestId");
        recorder_doc_request_t *d = id ? find_doc(r, id) : NULL;
        const char *code = d ? proxy_error_code(cJSON_GetObjectItemCaseSensitive(params, "response")) : NULL;
        if (code) {
            snprintf(d->error, sizeof d->error, "net::%s", code);
            d->proxy_error = true;
        }
    } else if (strcmp(method, "Network.loadingFinished") == 0) {
        const char *id = str_field(params, "requestId");
        recorder_doc_request_t *d = id ? find_doc(r, id) : NULL;
        /* an error page may finish loading before it commits: kept until its commit */
        if (d && !d->proxy_error) forget_doc(r, d);
    }
}
