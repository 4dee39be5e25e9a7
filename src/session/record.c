#include "session/record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"

void session_record_free(session_record_t *r) {
    free(r->api_name);
    free(r->target_url);
    free(r->end_url);
    free(r->error_code);
    free(r->error_message);
    r->api_name = r->target_url = r->end_url = r->error_code = r->error_message = NULL;
}

static char *dup_opt(const char *s, bool *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = true;
    return d;
}

int session_record_copy(session_record_t *dst, const session_record_t *src) {
    bool oom = false;
    *dst = *src;
    dst->api_name = dup_opt(src->api_name, &oom);
    dst->target_url = dup_opt(src->target_url, &oom);
    dst->end_url = dup_opt(src->end_url, &oom);
    dst->error_code = dup_opt(src->error_code, &oom);
    dst->error_message = dup_opt(src->error_message, &oom);
    if (!oom) return 0;
    session_record_free(dst);
    return -ENOMEM;
}

static const char *const status_names[] = {"running", "finished", "failed"};
static const char *const captcha_names[] = {"none", "detected", "solved", "failed"};

static int name_index(const char *const *names, int count, const char *s, size_t n) {
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) return i;
    return -1;
}

const char *session_status_name(session_status_t s) {
    return (unsigned)s < SESSION_STATUS_COUNT ? status_names[s] : "unknown";
}

int session_status_from_name(const char *s, size_t n) { return name_index(status_names, 3, s, n); }

const char *captcha_name(captcha_t c) { return (unsigned)c < 4 ? captcha_names[c] : "none"; }

int captcha_from_name(const char *s, size_t n) { return name_index(captcha_names, 4, s, n); }

void session_record_write_json(const session_record_t *r, jsonw_t *w) {
    char ts[TIME_UTC_SECONDS_LEN + 1];
    time_format_utc_seconds(r->timestamp_ms, ts);
    jsonw_object_begin(w);
    jsonw_key(w, "session_id");
    jsonw_string(w, r->session_id);
    jsonw_key(w, "api_name");
    jsonw_string(w, r->api_name);
    jsonw_key(w, "status");
    jsonw_string(w, session_status_name(r->status));
    jsonw_key(w, "target_url");
    jsonw_string(w, r->target_url);
    jsonw_key(w, "end_url");
    jsonw_string(w, r->end_url);
    jsonw_key(w, "navigations");
    jsonw_int(w, r->navigations);
    jsonw_key(w, "timestamp");
    jsonw_string(w, ts);
    jsonw_key(w, "duration");
    if (r->duration_ms == SESSION_DURATION_NULL) jsonw_null(w);
    else jsonw_seconds_ms(w, r->duration_ms);
    jsonw_key(w, "captcha");
    jsonw_string(w, captcha_name(r->captcha));
    jsonw_key(w, "bandwidth");
    jsonw_int(w, r->bandwidth);
    jsonw_key(w, "error");
    if (r->error_code) {
        jsonw_object_begin(w);
        jsonw_key(w, "code");
        jsonw_string(w, r->error_code);
        jsonw_key(w, "message");
        jsonw_string(w, r->error_message ? r->error_message : "");
        jsonw_object_end(w);
    } else {
        jsonw_null(w);
    }
    jsonw_object_end(w);
}
