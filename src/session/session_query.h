/* The list query of GET /browser_sessions: which sessions (filters), in which order (sort)
 * and which page of them. A session concept, not an HTTP one: the catalog executes it, the
 * API only parses it from a query string, with the contract's rules
 * (shared/spec/browser-sessions-api.md).
 * Ownership: a session_query_t owns its strings; session_query_free releases them. */
#ifndef BROWSERD_SESSION_SESSION_QUERY_H
#define BROWSERD_SESSION_SESSION_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { URL_FILTER_NONE = 0, URL_FILTER_DOMAIN = 1, URL_FILTER_PREFIX = 2 } url_filter_kind_t;

typedef struct {
    url_filter_kind_t kind;
    char *value; /* lowercased (ASCII), NUL-terminated; NULL when kind == URL_FILTER_NONE */
    size_t len;
} url_filter_t;

typedef enum { SORT_TIMESTAMP = 0, SORT_DURATION = 1, SORT_BANDWIDTH = 2 } session_sort_t;

#define SESSION_QUERY_STATUS_ALL (-1)
#define SESSION_QUERY_DEFAULT_LIMIT 50
#define SESSION_QUERY_MAX_LIMIT 100

typedef struct {
    char *api_name;     /* NULL = no filter; exact, case-sensitive */
    int status;         /* SESSION_QUERY_STATUS_ALL or a session_status_t */
    int64_t start_ms;   /* INT64_MIN = no bound; inclusive */
    int64_t end_ms;     /* INT64_MAX = no bound; inclusive */
    url_filter_t target_url;
    url_filter_t end_url;
    session_sort_t sort;
    bool desc;          /* order=desc (the default) */
    uint32_t limit;     /* 1..100, default 50 */
    uint32_t offset;    /* 0..2^31-1, default 0 */
} session_query_t;

/* Sets the defaults (no filters, sort timestamp desc, limit 50, offset 0). */
void session_query_init(session_query_t *q);

/* Parses the raw query string (the part after '?', not decoded; may be empty or NULL).
 * Returns 0 with *q filled, -ENOMEM when out of memory, or -EINVAL with `details` set to a
 * short human-readable reason naming the parameter ("limit: must be an integer from 1 to
 * 100"); on an error *q holds nothing that needs freeing. `details` is borrowed (may be
 * NULL). Unknown parameter names are ignored; known ones given twice, empty, or invalid are
 * errors; percent-encoding and '+' are decoded first. */
int session_query_parse(const char *qs, size_t len, session_query_t *q, char *details, size_t details_cap);

void session_query_free(session_query_t *q);

#endif
