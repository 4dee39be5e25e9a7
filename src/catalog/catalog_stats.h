/* Aggregates of the catalog for GET /browser_sessions/stats: over every session of a customer
 * that a list query's filters select (its limit, offset and sort do not apply), the count per
 * time bucket by status, the bandwidth per bucket, and the count per error code. A session
 * counts, with all of its bandwidth, in the bucket of its start (`timestamp`). Buckets are
 * UTC-aligned multiples of their width (an hour, a day) since the epoch.
 *
 * Ownership: q is borrowed; the catalog_stats_t is the caller's, with everything it points to
 * (catalog_stats_free). Threading: as catalog.h (worker threads; the read lock is taken). */
#ifndef BROWSERD_CATALOG_CATALOG_STATS_H
#define BROWSERD_CATALOG_CATALOG_STATS_H

#include <stdint.h>

#include "catalog/catalog.h"
#include "session/record.h"
#include "session/session_query.h"

/* The most buckets one answer holds (1000 hours are 41 days and 16 hours). */
#define CATALOG_STATS_MAX_BUCKETS 1000u
/* The most error codes one answer names (the contract has nine; imported data may have any). */
#define CATALOG_STATS_MAX_ERRORS 100u

typedef struct {
    int64_t start_ms; /* the bucket is [start_ms, start_ms + width) */
    uint64_t sessions[SESSION_STATUS_COUNT];
    int64_t bandwidth; /* sum, saturated at INT64_MAX */
} catalog_stats_bucket_t;

typedef struct {
    char *code; /* the error object's code, as stored */
    uint64_t count;
} catalog_stats_error_t;

typedef struct {
    uint64_t total; /* sessions matching */
    uint64_t sessions[SESSION_STATUS_COUNT];
    int64_t bandwidth; /* sum, saturated at INT64_MAX */
    /* The buckets cover [from_ms, to_ms): from the query's start_ms (or the first matching
     * session) to its end_ms (or the last), both widened to whole buckets. No bound and no
     * match: no buckets, from_ms = to_ms = 0. */
    int64_t from_ms, to_ms;
    catalog_stats_bucket_t *buckets; /* in time order, empty ones included */
    uint32_t nbuckets;
    catalog_stats_error_t *errors; /* by count, highest first, then by code (bytewise); the
                                    * first CATALOG_STATS_MAX_ERRORS codes */
    uint32_t nerrors;
    uint64_t other_errors; /* sessions whose code is past those */
} catalog_stats_t;

/* Fills *out for this customer's sessions that q's filters select, in buckets of width_ms
 * (> 0). A customer without sessions has none (zero counts). 0; -E2BIG when the range holds
 * more than CATALOG_STATS_MAX_BUCKETS buckets (then out->nbuckets is how many it holds, and
 * nothing needs freeing); -ENOMEM. On an error other than -E2BIG *out holds nothing to free. */
int catalog_stats(catalog_t *c, const char *customer_id, const session_query_t *q, int64_t width_ms,
                  catalog_stats_t *out);

void catalog_stats_free(catalog_stats_t *s);

#endif
