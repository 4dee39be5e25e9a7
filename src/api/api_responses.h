/* The bodies of the API's 200 responses, written in one place: the session list envelope,
 * one session, the stats, and the health check. (Error bodies are http_error_body's.)
 *
 * Ownership: `out` is the caller's and is appended to (on an error it may hold part of a
 * body: the caller discards it); the catalog and the query are borrowed for the call.
 * Threading: the list and session writers read the catalog, so they run on a worker thread
 * like every catalog query. */
#ifndef BROWSERD_API_API_RESPONSES_H
#define BROWSERD_API_API_RESPONSES_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "catalog/catalog_query.h"
#include "catalog/catalog_stats.h"
#include "core/buf.h"
#include "session/session_query.h"

/* {"sessions":[...],"count":N,"total":T,"pagination":{"offset":O,"limit":L,
 * "has_more":B,"next_offset":X|null}}: the page q selects of this customer's sessions.
 * 0, or -ENOMEM (or another error of catalog_list). */
int api_responses_list(buf_t *out, catalog_t *c, const char *customer_id, const session_query_t *q);

/* {"session":{...}}: 0, -ENOENT when this customer has no such session, or -ENOMEM. */
int api_responses_session(buf_t *out, catalog_t *c, const char *customer_id, const uint8_t id[16]);

/* The same body for a record at hand (borrowed): the body of a webhook's POST, byte for byte
 * what GET /browser_sessions/{id} answers for it. 0 or -ENOMEM. Any thread. */
int api_responses_session_record(buf_t *out, const session_record_t *rec);

/* The body of GET /browser_sessions/stats (docs/api.md) from the catalog's aggregates, buckets
 * of bucket_ms named by session_stats_bucket_name. 0 or -ENOMEM. */
int api_responses_stats(buf_t *out, const catalog_stats_t *s, int64_t bucket_ms);

/* {"status":"ok","sessions":N}: 0 or -ENOMEM. */
int api_responses_health(buf_t *out, size_t sessions);

#endif
