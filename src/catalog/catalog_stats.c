/* The aggregates of GET /browser_sessions/stats, over the rows the query engine finds
 * (catalog_query_matches): one pass for the time range when the query leaves a bound open,
 * one for the sums. Reads the columns (timestamp, status) and, per row, its bandwidth and
 * error code: no strings but the few distinct codes, copied at the end. */
#include "catalog/catalog_stats.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_internal.h"

/* Floor division: bucket starts before 1970 stay aligned. */
static int64_t floor_to(int64_t ms, int64_t width) {
    int64_t q = ms / width;
    if (ms % width != 0 && ms < 0) q--;
    return q * width;
}

static int64_t add_saturated(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

typedef struct {
    const customer_t *c;
    int64_t lo, hi;
    bool any;
} range_ctx_t;

static void range_span(void *ctx, const uint32_t *rows, uint32_t n) {
    range_ctx_t *rc = ctx;
    const int64_t *ts = rc->c->ts_col;
    int64_t lo = rc->lo, hi = rc->hi;
    for (uint32_t k = 0; k < n; k++) {
        int64_t t = ts[rows[k]];
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    rc->lo = lo;
    rc->hi = hi;
    rc->any |= n > 0;
}

/* Error codes by pool id: open addressing, id 0 = empty slot (the pool never hands out 0). */
typedef struct {
    uint32_t *ids;
    uint64_t *counts;
    uint32_t cap, n;
} code_counts_t;

static int codes_grow(code_counts_t *cc) {
    uint32_t cap = cc->cap ? cc->cap * 2 : 16;
    uint32_t *ids = calloc(cap, sizeof *ids);
    uint64_t *counts = calloc(cap, sizeof *counts);
    if (!ids || !counts) {
        free(ids);
        free(counts);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < cc->cap; i++) {
        if (!cc->ids[i]) continue;
        uint32_t s = (cc->ids[i] * 2654435761u) & (cap - 1);
        while (ids[s]) s = (s + 1) & (cap - 1);
        ids[s] = cc->ids[i];
        counts[s] = cc->counts[i];
    }
    free(cc->ids);
    free(cc->counts);
    cc->ids = ids;
    cc->counts = counts;
    cc->cap = cap;
    return 0;
}

static int codes_add(code_counts_t *cc, uint32_t id) {
    if (cc->cap) {
        uint32_t s = (id * 2654435761u) & (cc->cap - 1);
        while (cc->ids[s] && cc->ids[s] != id) s = (s + 1) & (cc->cap - 1);
        if (cc->ids[s]) {
            cc->counts[s]++;
            return 0;
        }
    }
    if ((cc->n + 1) * 2 > cc->cap && codes_grow(cc) < 0) return -ENOMEM;
    uint32_t s = (id * 2654435761u) & (cc->cap - 1);
    while (cc->ids[s]) s = (s + 1) & (cc->cap - 1);
    cc->ids[s] = id;
    cc->counts[s] = 1;
    cc->n++;
    return 0;
}

typedef struct {
    const customer_t *c;
    catalog_stats_t *out;
    int64_t width;
    code_counts_t codes;
    int rc;
} sum_ctx_t;

static void sum_span(void *ctx, const uint32_t *rows, uint32_t n) {
    sum_ctx_t *sc = ctx;
    const customer_t *c = sc->c;
    catalog_stats_t *out = sc->out;
    const int64_t from = out->from_ms, width = sc->width;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t r = rows[k];
        unsigned status = c->zs_col[r] & 3;
        const crow_t *w = &c->rows[r];
        catalog_stats_bucket_t *b = &out->buckets[(c->ts_col[r] - from) / width];
        b->sessions[status]++;
        b->bandwidth = add_saturated(b->bandwidth, w->bandwidth);
        out->sessions[status]++;
        out->bandwidth = add_saturated(out->bandwidth, w->bandwidth);
        if (w->error_code && sc->rc == 0) sc->rc = codes_add(&sc->codes, w->error_code);
    }
    out->total += n;
}

typedef struct {
    uint32_t id;
    uint64_t count;
} code_entry_t;

/* By count, highest first, then by code (bytewise: codes hold no NUL). */
static int cmp_codes(const void *pa, const void *pb, void *arg) {
    const code_entry_t *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    const string_pool_t *pool = arg;
    return strcmp(string_pool_get(pool, a->id), string_pool_get(pool, b->id));
}

/* The most frequent codes, as strings of their own (the pool's are borrowed under the lock);
 * the sessions of the codes past CATALOG_STATS_MAX_ERRORS in out->other_errors. */
static int copy_codes(const code_counts_t *cc, const string_pool_t *pool, catalog_stats_t *out) {
    if (!cc->n) return 0;
    code_entry_t *all = malloc(cc->n * sizeof *all);
    if (!all) return -ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < cc->cap; i++)
        if (cc->ids[i]) all[n++] = (code_entry_t){cc->ids[i], cc->counts[i]};
    qsort_r(all, n, sizeof *all, cmp_codes, (void *)pool);
    uint32_t keep = n < CATALOG_STATS_MAX_ERRORS ? n : CATALOG_STATS_MAX_ERRORS;
    for (uint32_t i = keep; i < n; i++) out->other_errors += all[i].count;
    int rc = 0;
    out->errors = calloc(keep, sizeof *out->errors);
    if (!out->errors) rc = -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < keep; i++) {
        catalog_stats_error_t *e = &out->errors[out->nerrors];
        e->code = strndup(string_pool_get(pool, all[i].id), string_pool_len(pool, all[i].id));
        if (!e->code) rc = -ENOMEM;
        else {
            e->count = all[i].count;
            out->nerrors++;
        }
    }
    free(all);
    return rc;
}

/* Sets out's range from the query's bounds and, where one is open, the matches'. */
static int set_range(const customer_t *cust, const string_pool_t *pool, const session_query_t *q, int64_t width,
                     catalog_stats_t *out) {
    bool open_lo = q->start_ms == INT64_MIN, open_hi = q->end_ms == INT64_MAX;
    int64_t lo = q->start_ms, hi = q->end_ms;
    if (open_lo || open_hi) {
        range_ctx_t rc = {.c = cust, .lo = INT64_MAX, .hi = INT64_MIN};
        if (cust) {
            int r = catalog_query_matches(cust, pool, q, range_span, &rc);
            if (r < 0) return r;
        }
        if (!rc.any) { /* nothing matches: an open bound takes the other one, if any */
            if (open_lo && open_hi) return 0;
            if (open_lo) lo = hi;
            else hi = lo;
        } else {
            if (open_lo) lo = rc.lo;
            if (open_hi) hi = rc.hi;
        }
    }
    out->from_ms = floor_to(lo, width);
    out->to_ms = floor_to(hi, width) + width;
    uint64_t count = (uint64_t)((out->to_ms - out->from_ms) / width);
    if (count > CATALOG_STATS_MAX_BUCKETS) {
        out->nbuckets = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
        return -E2BIG;
    }
    out->nbuckets = (uint32_t)count;
    return 0;
}

int catalog_stats(catalog_t *c, const char *customer_id, const session_query_t *q, int64_t width_ms,
                  catalog_stats_t *out) {
    memset(out, 0, sizeof *out);
    if (width_ms <= 0) return -EINVAL;
    sum_ctx_t sc = {.out = out, .width = width_ms};
    pthread_rwlock_rdlock(&c->lock);
    const customer_t *cust = catalog_index_customer(c, customer_id);
    int rc = cust && cust->broken ? -ENOMEM : 0; /* a failed update left the arrays incomplete */
    if (rc == 0) rc = set_range(cust, &c->pool, q, width_ms, out);
    if (rc == 0 && out->nbuckets) {
        out->buckets = calloc(out->nbuckets, sizeof *out->buckets);
        if (!out->buckets) rc = -ENOMEM;
        for (uint32_t i = 0; rc == 0 && i < out->nbuckets; i++)
            out->buckets[i].start_ms = out->from_ms + (int64_t)i * width_ms;
    }
    if (rc == 0 && cust && out->nbuckets) {
        sc.c = cust;
        rc = catalog_query_matches(cust, &c->pool, q, sum_span, &sc);
        if (rc == 0) rc = sc.rc;
        if (rc == 0) rc = copy_codes(&sc.codes, &c->pool, out);
    }
    pthread_rwlock_unlock(&c->lock);
    free(sc.codes.ids);
    free(sc.codes.counts);
    if (rc < 0 && rc != -E2BIG) catalog_stats_free(out);
    return rc;
}

void catalog_stats_free(catalog_stats_t *s) {
    for (uint32_t i = 0; i < s->nerrors; i++) free(s->errors[i].code);
    free(s->errors);
    free(s->buckets);
    memset(s, 0, sizeof *s);
}
