#include "api/api_responses.h"

#include <errno.h>
#include <stdbool.h>

#include "core/timeutil.h"
#include "json/jsonw.h"
#include "session/stats_query.h"
#include "session/record.h"

/* A row of the catalog straight into the body: the view's strings are escaped from the
 * catalog's pool, never copied. jsonw's failure is sticky; stopping the visit at the first
 * one saves writing rows that will be thrown away. */
static int write_row(void *ctx, const session_record_t *view) {
    jsonw_t *w = ctx;
    session_record_write_json(view, w);
    return jsonw_failed(w) ? -ENOMEM : 0;
}

int api_responses_list(buf_t *out, catalog_t *c, const char *customer_id, const session_query_t *q) {
    jsonw_t w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "sessions");
    jsonw_array_begin(&w);
    catalog_page_info_t info;
    int rc = catalog_list(c, customer_id, q, write_row, &w, &info);
    if (rc < 0) return rc;
    jsonw_array_end(&w);
    bool has_more = (uint64_t)q->offset + info.count < info.total;
    jsonw_key(&w, "count");
    jsonw_int(&w, info.count);
    jsonw_key(&w, "total");
    jsonw_int(&w, (int64_t)info.total);
    jsonw_key(&w, "pagination");
    jsonw_object_begin(&w);
    jsonw_key(&w, "offset");
    jsonw_int(&w, q->offset);
    jsonw_key(&w, "limit");
    jsonw_int(&w, q->limit);
    jsonw_key(&w, "has_more");
    jsonw_bool(&w, has_more);
    jsonw_key(&w, "next_offset");
    if (has_more) jsonw_int(&w, (int64_t)q->offset + q->limit);
    else jsonw_null(&w);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
    return jsonw_failed(&w) ? -ENOMEM : 0;
}

int api_responses_session(buf_t *out, catalog_t *c, const char *customer_id, const uint8_t id[16]) {
    jsonw_t w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "session");
    int rc = catalog_get(c, customer_id, id, write_row, &w);
    if (rc < 0) return rc;
    jsonw_object_end(&w);
    return jsonw_failed(&w) ? -ENOMEM : 0;
}

int api_responses_session_record(buf_t *out, const session_record_t *rec) {
    jsonw_t w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "session");
    write_row(&w, rec);
    jsonw_object_end(&w);
    return jsonw_failed(&w) ? -ENOMEM : 0;
}

static void write_time_or_null(jsonw_t *w, const char *key, int64_t ms, bool present) {
    jsonw_key(w, key);
    if (!present) {
        jsonw_null(w);
        return;
    }
    char text[TIME_UTC_SECONDS_LEN + 1];
    time_format_utc_seconds(ms, text);
    jsonw_string(w, text);
}

static void write_by_status(jsonw_t *w, const uint64_t counts[SESSION_STATUS_COUNT]) {
    for (int st = 0; st < SESSION_STATUS_COUNT; st++) {
        jsonw_key(w, session_status_name((session_status_t)st));
        jsonw_int(w, (int64_t)counts[st]);
    }
}

int api_responses_stats(buf_t *out, const catalog_stats_t *s, int64_t bucket_ms) {
    jsonw_t w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "bucket");
    jsonw_string(&w, session_stats_bucket_name(bucket_ms));
    write_time_or_null(&w, "from", s->from_ms, s->nbuckets > 0);
    write_time_or_null(&w, "to", s->to_ms, s->nbuckets > 0);
    jsonw_key(&w, "total");
    jsonw_int(&w, (int64_t)s->total);
    jsonw_key(&w, "sessions");
    jsonw_object_begin(&w);
    write_by_status(&w, s->sessions);
    jsonw_object_end(&w);
    jsonw_key(&w, "bandwidth");
    jsonw_int(&w, s->bandwidth);
    jsonw_key(&w, "buckets");
    jsonw_array_begin(&w);
    for (uint32_t i = 0; i < s->nbuckets; i++) {
        const catalog_stats_bucket_t *b = &s->buckets[i];
        jsonw_object_begin(&w);
        write_time_or_null(&w, "start", b->start_ms, true);
        write_by_status(&w, b->sessions);
        jsonw_key(&w, "bandwidth");
        jsonw_int(&w, b->bandwidth);
        jsonw_object_end(&w);
    }
    jsonw_array_end(&w);
    jsonw_key(&w, "errors");
    jsonw_array_begin(&w);
    for (uint32_t i = 0; i < s->nerrors; i++) {
        jsonw_object_begin(&w);
        jsonw_key(&w, "code");
        jsonw_string(&w, s->errors[i].code);
        jsonw_key(&w, "count");
        jsonw_int(&w, (int64_t)s->errors[i].count);
        jsonw_object_end(&w);
    }
    jsonw_array_end(&w);
    jsonw_key(&w, "other_errors");
    jsonw_int(&w, (int64_t)s->other_errors);
    jsonw_object_end(&w);
    return jsonw_failed(&w) ? -ENOMEM : 0;
}

int api_responses_health(buf_t *out, size_t sessions) {
    return buf_printf(out, "{\"status\":\"ok\",\"sessions\":%zu}", sessions) < 0 ? -ENOMEM : 0;
}
