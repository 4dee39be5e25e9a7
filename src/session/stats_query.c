#include "session/stats_query.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/query_string.h"

/* `bucket` is not a name of the list's parser, which ignores it: it is found here, by the
 * same rule for names (it counts only when it decodes cleanly to exactly "bucket"). */
static bool is_bucket_name(const char *raw, size_t len) {
    char name[8];
    size_t n = 0;
    return query_decode(raw, len, name, sizeof name, &n) == 0 && n == 6 && memcmp(name, "bucket", 6) == 0;
}

static int parse_bucket(const char *qs, size_t len, int64_t *bucket_ms, char *details, size_t details_cap) {
    bool seen = false;
    query_iter_t it;
    query_pair_t pair;
    query_iter_init(&it, qs, len);
    while (query_iter_next(&it, &pair)) {
        if (!is_bucket_name(pair.name, pair.name_len)) continue;
        const char *why = NULL;
        char value[8];
        size_t n = 0;
        int rc = 0;
        if (seen) why = "given more than once";
        else if (pair.value_len == 0) why = "must not be empty";
        else if ((rc = query_decode(pair.value, pair.value_len, value, sizeof value, &n)) == -EINVAL)
            why = "invalid percent-encoding";
        else if (rc == -EILSEQ) why = "must not contain a NUL byte";
        else if (rc == 0 && n == 4 && memcmp(value, "hour", 4) == 0) *bucket_ms = SESSION_BUCKET_HOUR_MS;
        else if (rc == 0 && n == 3 && memcmp(value, "day", 3) == 0) *bucket_ms = SESSION_BUCKET_DAY_MS;
        else why = "must be one of hour, day";
        if (why) {
            if (details && details_cap) snprintf(details, details_cap, "bucket: %s", why);
            return -EINVAL;
        }
        seen = true;
    }
    return 0;
}

int session_stats_query_parse(const char *qs, size_t len, session_stats_query_t *q, char *details,
                              size_t details_cap) {
    q->bucket_ms = SESSION_BUCKET_HOUR_MS;
    int rc = session_query_parse(qs, len, &q->filters, details, details_cap);
    if (rc < 0) return rc;
    rc = parse_bucket(qs, len, &q->bucket_ms, details, details_cap);
    if (rc < 0) session_query_free(&q->filters);
    return rc;
}

const char *session_stats_bucket_name(int64_t bucket_ms) { return bucket_ms == SESSION_BUCKET_DAY_MS ? "day" : "hour"; }

void session_stats_query_free(session_stats_query_t *q) { session_query_free(&q->filters); }
