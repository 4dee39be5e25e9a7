#include "session/session_query.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "http/query_string.h"
#include "session/record.h"

/* The rules are those of shared/spec/browser-sessions-api.md; docs/api.md lists them with
 * examples. Decisions the contract leaves open, kept consistent here:
 *  - A name counts as a known parameter only when it decodes cleanly to exactly one of the
 *    names below (case-sensitive: "LIMIT" is unknown). Anything else, including a name that
 *    is badly encoded or decodes to a NUL, is an unknown name and ignored with its value,
 *    however often it appears.
 *  - For a known name the checks run in this order: given before, empty value, encoding,
 *    value. The first pair (left to right) that fails decides the details.
 *  - Integers may have leading zeros ("007" is 7): they are still plain decimal digits. */

typedef enum {
    PARAM_API_NAME,
    PARAM_LIMIT,
    PARAM_OFFSET,
    PARAM_STATUS,
    PARAM_START_DATE,
    PARAM_END_DATE,
    PARAM_TARGET_URL,
    PARAM_END_URL,
    PARAM_SORT,
    PARAM_ORDER,
    PARAM_COUNT
} param_t;

static const char *const param_names[PARAM_COUNT] = {
    [PARAM_API_NAME] = "api_name",     [PARAM_LIMIT] = "limit",       [PARAM_OFFSET] = "offset",
    [PARAM_STATUS] = "status",         [PARAM_START_DATE] = "start_date", [PARAM_END_DATE] = "end_date",
    [PARAM_TARGET_URL] = "target_url", [PARAM_END_URL] = "end_url",   [PARAM_SORT] = "sort",
    [PARAM_ORDER] = "order",
};

/* Longer than every known name, so that a longer decoded name is recognised as unknown
 * by -ENOSPC instead of being cut to a known one. */
#define PARAM_NAME_CAP 16

#define MAX_OFFSET UINT32_C(2147483647)

static const char *const sort_names[] = {[SORT_TIMESTAMP] = "timestamp", [SORT_DURATION] = "duration",
                                         [SORT_BANDWIDTH] = "bandwidth"};

static const char *const invalid_value_reasons[PARAM_COUNT] = {
    [PARAM_LIMIT] = "must be an integer from 1 to 100",
    [PARAM_OFFSET] = "must be an integer from 0 to 2147483647",
    [PARAM_STATUS] = "must be one of running, finished, failed, all",
    [PARAM_START_DATE] = "must be an RFC 3339 date-time or YYYY-MM-DD",
    [PARAM_END_DATE] = "must be an RFC 3339 date-time or YYYY-MM-DD",
    [PARAM_SORT] = "must be one of timestamp, duration, bandwidth",
    [PARAM_ORDER] = "must be one of asc, desc",
};

void session_query_init(session_query_t *q) {
    memset(q, 0, sizeof *q);
    q->api_name = NULL;
    q->status = SESSION_QUERY_STATUS_ALL;
    q->start_ms = INT64_MIN;
    q->end_ms = INT64_MAX;
    q->target_url = (url_filter_t){.kind = URL_FILTER_NONE, .value = NULL, .len = 0};
    q->end_url = (url_filter_t){.kind = URL_FILTER_NONE, .value = NULL, .len = 0};
    q->sort = SORT_TIMESTAMP;
    q->desc = true;
    q->limit = SESSION_QUERY_DEFAULT_LIMIT;
    q->offset = 0;
}

void session_query_free(session_query_t *q) {
    free(q->api_name);
    free(q->target_url.value);
    free(q->end_url.value);
    /* Back to the defaults: a second free, or a free after a failed parse, is harmless. */
    session_query_init(q);
}

static void set_details(char *details, size_t details_cap, const char *fmt, ...) {
    if (!details || details_cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(details, details_cap, fmt, ap);
    va_end(ap);
}

/* -1 for a name that is not (cleanly) one of ours. */
static int known_param(const char *raw_name, size_t raw_len) {
    char name[PARAM_NAME_CAP];
    size_t name_len = 0;
    if (query_decode(raw_name, raw_len, name, sizeof name, &name_len) != 0) return -1;
    for (int p = 0; p < PARAM_COUNT; p++)
        if (strlen(param_names[p]) == name_len && memcmp(param_names[p], name, name_len) == 0) return p;
    return -1;
}

static int name_index(const char *const *names, int count, const char *s, size_t len) {
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) return i;
    return -1;
}

/* Plain decimal digits, value in [min, max]. Stops at the first digit that takes the value
 * past max, so no length of input can overflow. */
static bool parse_bounded_uint(const char *s, size_t len, uint32_t min, uint32_t max, uint32_t *out) {
    if (len == 0) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > max) return false;
    }
    if (v < min) return false;
    *out = (uint32_t)v;
    return true;
}

/* Takes ownership of `value` (decoded, NUL-terminated). */
static void set_url_filter(url_filter_t *f, char *value, size_t len) {
    /* Both filter kinds compare case-insensitively; lowercasing once here lets the matcher
     * and SQL compare against a canonical form. Bytes >= 0x80 are left alone. */
    for (size_t i = 0; i < len; i++)
        if (value[i] >= 'A' && value[i] <= 'Z') value[i] = (char)(value[i] - 'A' + 'a');
    f->kind = memmem(value, len, "://", 3) ? URL_FILTER_PREFIX : URL_FILTER_DOMAIN;
    f->value = value;
    f->len = len;
}

/* The contract decodes '+' to a space before anything else, so a '+' typed unencoded in an
 * offset ("...T02:00:00+02:00") is a space there, and a date with a space is malformed: a
 * 400 that tells the client to write %2B. Guessing what was meant would make browserd accept
 * what the hosted API refuses. */
static bool parse_date(const char *value, size_t len, bool end_of_day, int64_t *out) {
    return time_parse_api_date(value, len, end_of_day, out) == 0;
}

/* Validates one decoded value of a known parameter into q. Takes ownership of `value`.
 * Returns false when the value is invalid (and frees it). */
static bool apply_value(session_query_t *q, param_t param, char *value, size_t len) {
    bool ok = true;
    int index;
    switch (param) {
    case PARAM_API_NAME:
        q->api_name = value;
        return true;
    case PARAM_TARGET_URL:
        set_url_filter(&q->target_url, value, len);
        return true;
    case PARAM_END_URL:
        set_url_filter(&q->end_url, value, len);
        return true;
    case PARAM_LIMIT:
        ok = parse_bounded_uint(value, len, 1, SESSION_QUERY_MAX_LIMIT, &q->limit);
        break;
    case PARAM_OFFSET:
        ok = parse_bounded_uint(value, len, 0, MAX_OFFSET, &q->offset);
        break;
    case PARAM_STATUS:
        if (len == 3 && memcmp(value, "all", 3) == 0) {
            q->status = SESSION_QUERY_STATUS_ALL;
        } else {
            index = session_status_from_name(value, len);
            ok = index >= 0;
            if (ok) q->status = index;
        }
        break;
    case PARAM_START_DATE:
        ok = parse_date(value, len, false, &q->start_ms);
        break;
    case PARAM_END_DATE:
        /* A bare end date includes its whole day. */
        ok = parse_date(value, len, true, &q->end_ms);
        break;
    case PARAM_SORT:
        index = name_index(sort_names, 3, value, len);
        ok = index >= 0;
        if (ok) q->sort = (session_sort_t)index;
        break;
    case PARAM_ORDER:
        ok = (len == 3 && memcmp(value, "asc", 3) == 0) || (len == 4 && memcmp(value, "desc", 4) == 0);
        if (ok) q->desc = len == 4;
        break;
    case PARAM_COUNT:
        ok = false;
        break;
    }
    free(value);
    return ok;
}

int session_query_parse(const char *qs, size_t len, session_query_t *q, char *details, size_t details_cap) {
    session_query_init(q);
    set_details(details, details_cap, "%s", "");

    bool seen[PARAM_COUNT] = {false};
    int rc = 0;
    query_iter_t it;
    query_pair_t pair;
    query_iter_init(&it, qs, len);
    while (query_iter_next(&it, &pair)) {
        const int param = known_param(pair.name, pair.name_len);
        if (param < 0) continue;
        const char *name = param_names[param];

        if (seen[param]) {
            set_details(details, details_cap, "%s: given more than once", name);
            rc = -EINVAL;
            goto cleanup;
        }
        seen[param] = true;
        if (pair.value_len == 0) {
            set_details(details, details_cap, "%s: must not be empty", name);
            rc = -EINVAL;
            goto cleanup;
        }

        char *value = NULL;
        size_t value_len = 0;
        const int decode_rc = query_decode_alloc(pair.value, pair.value_len, &value, &value_len);
        if (decode_rc == -ENOMEM) {
            set_details(details, details_cap, "%s", "out of memory");
            rc = -ENOMEM;
            goto cleanup;
        }
        if (decode_rc == -EILSEQ) {
            set_details(details, details_cap, "%s: must not contain a NUL byte", name);
            rc = -EINVAL;
            goto cleanup;
        }
        if (decode_rc < 0) {
            set_details(details, details_cap, "%s: invalid percent-encoding", name);
            rc = -EINVAL;
            goto cleanup;
        }
        if (!apply_value(q, (param_t)param, value, value_len)) {
            set_details(details, details_cap, "%s: %s", name, invalid_value_reasons[param]);
            rc = -EINVAL;
            goto cleanup;
        }
    }

    if (q->start_ms > q->end_ms) {
        set_details(details, details_cap, "%s", "start_date: is later than end_date");
        rc = -EINVAL;
        goto cleanup;
    }

cleanup:
    if (rc != 0) session_query_free(q);
    return rc;
}
