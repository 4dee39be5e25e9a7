/* The query of GET /browser_sessions/stats: the list's filters (session_query.h, parsed by the
 * same rules; its limit, offset, sort and order are validated but do not apply) and the width
 * of the time buckets. Ownership: a session_stats_query_t owns its strings;
 * session_stats_query_free releases them. */
#ifndef BROWSERD_SESSION_STATS_QUERY_H
#define BROWSERD_SESSION_STATS_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "session/session_query.h"

#define SESSION_BUCKET_HOUR_MS INT64_C(3600000)
#define SESSION_BUCKET_DAY_MS INT64_C(86400000)

typedef struct {
    session_query_t filters;
    int64_t bucket_ms; /* SESSION_BUCKET_HOUR_MS (the default) or SESSION_BUCKET_DAY_MS */
} session_stats_query_t;

/* Parses the raw query string like session_query_parse (same returns and details), then the
 * parameter `bucket` (`hour` or `day`) by the same rules: given twice, empty, badly encoded
 * or another value is -EINVAL with details "bucket: ...". The filters' errors come first. */
int session_stats_query_parse(const char *qs, size_t len, session_stats_query_t *q, char *details,
                              size_t details_cap);

/* The bucket's name ("hour", "day"). */
const char *session_stats_bucket_name(int64_t bucket_ms);

void session_stats_query_free(session_stats_query_t *q);

#endif
