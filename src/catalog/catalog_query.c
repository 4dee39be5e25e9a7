/* The catalog's query execution: predicates, candidate sets with their exact sizes, and the
 * cheapest way to the page. See catalog_internal.h and docs/catalog.md. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_query.h"

#include "catalog/catalog_internal.h"
#include "session/url_match.h"

/* Positions [*from, *to) of a (timestamp, id)-sorted array whose timestamps are in [lo, hi]. */
static void ts_window(const rowvec_t *v, const customer_t *c, int64_t lo, int64_t hi, uint32_t *from,
                      uint32_t *to) {
    uint32_t a = 0, b = v->n;
    while (a < b) {
        uint32_t mid = a + (b - a) / 2;
        if (c->ts_col[v->v[mid]] < lo) a = mid + 1;
        else b = mid;
    }
    *from = a;
    b = v->n;
    while (a < b) {
        uint32_t mid = a + (b - a) / 2;
        if (c->ts_col[v->v[mid]] <= hi) a = mid + 1;
        else b = mid;
    }
    *to = a;
}

/* ---------------------------------------------------------------- queries ---- */

/* Checks a candidate set already guarantees and that need not be repeated per row. */
enum { SKIP_ZONE_STATUS = 1, SKIP_WINDOW = 2, SKIP_TARGET = 4, SKIP_END = 8 };

typedef struct {
    const customer_t *c;
    const string_pool_t *pool;
    int64_t zone;   /* -1 = any */
    int status;     /* -1 = any */
    int64_t lo, hi; /* timestamp window, inclusive */
    const url_filter_t *target, *end;
    uint8_t *target_hosts; /* bitsets of matching host ids for domain filters */
    uint8_t *end_hosts;
} predicate_t;

static bool url_matches(const predicate_t *p, const url_filter_t *f, const uint8_t *hosts, uint32_t url,
                        uint32_t host) {
    if (f->kind == URL_FILTER_NONE) return true;
    if (!url) return false;
    if (f->kind == URL_FILTER_DOMAIN) return host && (hosts[host >> 3] >> (host & 7)) & 1;
    return url_has_prefix(string_pool_get(p->pool, url), string_pool_len(p->pool, url), f->value, f->len);
}

static bool row_matches_except(const predicate_t *p, uint32_t r, unsigned skip) {
    const customer_t *c = p->c;
    if (!(skip & SKIP_ZONE_STATUS)) {
        uint32_t zs = c->zs_col[r];
        if (p->zone >= 0 && zs >> 2 != (uint32_t)p->zone) return false;
        if (p->status >= 0 && (int)(zs & 3) != p->status) return false;
    }
    if (!(skip & SKIP_WINDOW) && (c->ts_col[r] < p->lo || c->ts_col[r] > p->hi)) return false;
    if ((skip & (SKIP_TARGET | SKIP_END)) == (SKIP_TARGET | SKIP_END)) return true;
    const crow_t *w = &c->rows[r];
    if (!(skip & SKIP_TARGET) && !url_matches(p, p->target, p->target_hosts, w->target_url, w->target_host))
        return false;
    return (skip & SKIP_END) || url_matches(p, p->end, p->end_hosts, w->end_url, w->end_host);
}

static bool row_matches(const predicate_t *p, uint32_t r) { return row_matches_except(p, r, 0); }

/* Marks the hosts matching a domain filter; returns how many. Hosts are ordered by their
 * reversed name, so those ending with the domain form one range (plus look-alikes such as
 * "notexample.com" inside it, which the label check drops). */
static uint32_t match_hosts(const customer_t *c, const url_filter_t *f, uint8_t *bits) {
    char rev[4097];
    if (f->len > 4096) return 0;
    for (size_t i = 0; i < f->len; i++) rev[i] = f->value[f->len - 1 - i];
    uint32_t rlen = (uint32_t)f->len;
    uint32_t lo = 0, hi = c->nhosts;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const host_t *m = &c->hosts[c->host_by_rev[mid]];
        if (cmp_reversed(m->reversed, m->len, rev, rlen) < 0) lo = mid + 1;
        else hi = mid;
    }
    uint32_t count = 0;
    for (uint32_t i = lo; i < c->nhosts; i++) {
        uint32_t id = c->host_by_rev[i];
        const host_t *h = &c->hosts[id];
        if (h->len < rlen || memcmp(h->reversed, rev, rlen) != 0) break;
        if (h->len == rlen || h->reversed[rlen] == '.') {
            bits[id >> 3] |= (uint8_t)(1u << (id & 7));
            count++;
        }
    }
    return count;
}

/* Rows sorted by the requested order (direction applied; null durations last both ways). */
typedef struct {
    const customer_t *c;
    const string_pool_t *pool;
    session_sort_t sort;
    bool desc;
} order_t;

static int order_cmp(const order_t *o, uint32_t a, uint32_t b) {
    int r;
    if (o->sort == SORT_DURATION) {
        bool an = o->c->rows[a].duration_ms == SESSION_DURATION_NULL;
        bool bn = o->c->rows[b].duration_ms == SESSION_DURATION_NULL;
        if (an != bn) return an ? 1 : -1;
        r = an ? key_ts(o->c, o->pool, a, b) : key_dur(o->c, o->pool, a, b);
    } else if (o->sort == SORT_BANDWIDTH) {
        r = key_bw(o->c, o->pool, a, b);
    } else {
        r = key_ts(o->c, o->pool, a, b);
    }
    return o->desc ? -r : r;
}

static int order_trampoline(const void *a, const void *b, void *arg) {
    return order_cmp(arg, *(const uint32_t *)a, *(const uint32_t *)b);
}

/* Reorders v[0..n) so that v[k] holds the row of rank k and no row before it ranks
 * higher (Hoare quickselect, median-of-three pivots). */
static void quickselect(uint32_t *v, uint32_t n, uint32_t k, const order_t *o) {
    int64_t lo = 0, hi = (int64_t)n - 1;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        if (order_cmp(o, v[mid], v[lo]) < 0) { uint32_t t = v[mid]; v[mid] = v[lo]; v[lo] = t; }
        if (order_cmp(o, v[hi], v[lo]) < 0) { uint32_t t = v[hi]; v[hi] = v[lo]; v[lo] = t; }
        if (order_cmp(o, v[hi], v[mid]) < 0) { uint32_t t = v[hi]; v[hi] = v[mid]; v[mid] = t; }
        uint32_t pivot = v[mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (order_cmp(o, v[i], pivot) < 0) i++;
            while (order_cmp(o, v[j], pivot) > 0) j--;
            if (i <= j) {
                uint32_t t = v[i]; v[i] = v[j]; v[j] = t;
                i++;
                j--;
            }
        }
        if ((int64_t)k <= j) hi = j;
        else if ((int64_t)k >= i) lo = i;
        else return;
    }
}

/* Leaves the page (ranks off .. off+lim-1 of v[0..n)) sorted in v[off..]. */
static void select_page(uint32_t *v, uint32_t n, uint32_t off, uint32_t lim, const order_t *o) {
    if (off >= n) return;
    if (off > 0) quickselect(v, n, off, o);
    uint32_t end = off + lim < n ? off + lim : n;
    if (end < n) quickselect(v + off, n - off, end - off - 1, o);
    qsort_r(v + off, end - off, sizeof *v, order_trampoline, (void *)o);
}

/* A candidate set: a list of sorted arrays cut to positions [from, to). */
#define MAX_SEGMENTS 4
typedef struct {
    const rowvec_t *vec;
    uint32_t from, to;
} segment_t;

typedef struct {
    segment_t seg[MAX_SEGMENTS];
    int nseg;
    const uint8_t *hosts; /* with host lists: the bitset naming them (segments unused) */
    bool by_target_host;
    uint64_t size;
    bool exact;    /* the set is exactly the matching rows */
    unsigned skip; /* SKIP_* checks the set already guarantees */
} source_t;

/* Calls fn for each run of row numbers of the source (a slice of a sorted array): the loops
 * over rows stay inside fn, where they can be tight. */
static void source_spans(const customer_t *c, const source_t *s, int64_t lo, int64_t hi, catalog_span_fn fn,
                         void *ctx) {
    if (s->hosts) {
        for (uint32_t i = 0; i < c->nhosts; i++) {
            uint32_t id = c->host_by_rev[i];
            if (!((s->hosts[id >> 3] >> (id & 7)) & 1)) continue;
            const rowvec_t *v = s->by_target_host ? &c->hosts[id].target_rows : &c->hosts[id].end_rows;
            uint32_t f, t;
            ts_window(v, c, lo, hi, &f, &t);
            if (t > f) fn(ctx, v->v + f, t - f);
        }
        return;
    }
    for (int i = 0; i < s->nseg; i++)
        if (s->seg[i].to > s->seg[i].from) fn(ctx, s->seg[i].vec->v + s->seg[i].from, s->seg[i].to - s->seg[i].from);
}

static void add_span_size(void *ctx, const uint32_t *rows, uint32_t n) {
    (void)rows;
    *(uint64_t *)ctx += n;
}

/* The union of the arrays of the hosts marked in bits, each cut to the window. */
static void host_source(const customer_t *c, const uint8_t *bits, bool target, int64_t lo, int64_t hi,
                        source_t *s) {
    memset(s, 0, sizeof *s);
    s->hosts = bits;
    s->by_target_host = target;
    source_spans(c, s, lo, hi, add_span_size, &s->size);
}


/* Per-thread scratch memory for queries: candidate lists and bitmaps over row numbers are
 * reused from one query to the next instead of being allocated (and, at these sizes, mapped
 * and unmapped) each time. Released when the worker thread exits. */
typedef struct {
    uint32_t *rows;
    size_t rows_cap;
    uint64_t *bits[2];
    size_t bits_cap[2];
} query_scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *p) {
    query_scratch_t *sc = p;
    free(sc->rows);
    free(sc->bits[0]);
    free(sc->bits[1]);
    free(sc);
}

static void scratch_key_init(void) { (void)pthread_key_create(&scratch_key, scratch_release); }

static query_scratch_t *scratch_get(void) {
    pthread_once(&scratch_once, scratch_key_init);
    query_scratch_t *sc = pthread_getspecific(scratch_key);
    if (!sc && (sc = calloc(1, sizeof *sc)) && pthread_setspecific(scratch_key, sc) != 0) {
        free(sc);
        sc = NULL;
    }
    return sc;
}

static uint32_t *scratch_rows(query_scratch_t *sc, size_t n) {
    if (n > sc->rows_cap) {
        uint32_t *r = realloc(sc->rows, n * sizeof *r);
        if (!r) return NULL;
        sc->rows = r;
        sc->rows_cap = n;
    }
    return sc->rows;
}

/* A zeroed bitmap of `rows` bits. */
static uint64_t *scratch_bits(query_scratch_t *sc, int which, size_t rows) {
    size_t words = rows / 64 + 1;
    if (words > sc->bits_cap[which]) {
        uint64_t *b = realloc(sc->bits[which], words * sizeof *b);
        if (!b) return NULL;
        sc->bits[which] = b;
        sc->bits_cap[which] = words;
    }
    memset(sc->bits[which], 0, words * sizeof *sc->bits[which]);
    return sc->bits[which];
}

static inline bool bit_test(const uint64_t *bits, uint32_t r) { return (bits[r >> 6] >> (r & 63)) & 1; }
static inline void bit_set(uint64_t *bits, uint32_t r) { bits[r >> 6] |= 1ull << (r & 63); }

/* A bitmap of a candidate set costs about its size in sequential reads; checking a row costs
 * a random memory access. Build one when the set is at most this many times the size of
 * the set enumerated (tests set it to 0 to exercise the row checks too). */
static uint64_t filter_budget_factor = 16;

void catalog_query_set_filter_budget(uint64_t factor) { filter_budget_factor = factor; }

static void mark_span(void *ctx, const uint32_t *rows, uint32_t n) {
    uint64_t *bits = ctx;
    for (uint32_t k = 0; k < n; k++) bit_set(bits, rows[k]);
}

typedef struct {
    const predicate_t *p;
    unsigned skip;          /* checks that need no row access */
    const uint64_t *filter; /* rows of other candidate sets (all must be in), or NULL */
    uint32_t *out;
    uint32_t n;
} collect_ctx_t;

/* Rows arrive in index order, not memory order: their bitmap words and column entries are
 * fetched a few rows ahead so the misses overlap instead of following one another. */
#define PREFETCH_AHEAD 16

static void collect_span(void *ctx, const uint32_t *rows, uint32_t n) {
    collect_ctx_t *cc = ctx;
    const predicate_t *p = cc->p;
    /* Everything the loop reads, in locals: the stores to out could alias struct fields, and
     * the compiler would reload them on every row. */
    const uint64_t *filter = cc->filter;
    const uint32_t *zs_col = p->c->zs_col;
    const int64_t *ts_col = p->c->ts_col;
    const unsigned skip = cc->skip;
    const bool check_zone = !(skip & SKIP_ZONE_STATUS) && p->zone >= 0;
    const bool check_status = !(skip & SKIP_ZONE_STATUS) && p->status >= 0;
    const bool check_window = !(skip & SKIP_WINDOW);
    const bool check_urls = (skip & (SKIP_TARGET | SKIP_END)) != (SKIP_TARGET | SKIP_END);
    const uint32_t zone = (uint32_t)p->zone, status = (uint32_t)p->status;
    const int64_t lo = p->lo, hi = p->hi;
    const unsigned url_skip = skip | SKIP_ZONE_STATUS | SKIP_WINDOW;
    uint32_t *out = cc->out;
    uint32_t got = cc->n;
    for (uint32_t k = 0; k < n; k++) {
        if (k + PREFETCH_AHEAD < n) {
            uint32_t ahead = rows[k + PREFETCH_AHEAD];
            if (filter) __builtin_prefetch(&filter[ahead >> 6]);
            __builtin_prefetch(&zs_col[ahead]);
        }
        uint32_t r = rows[k];
        if (filter && !((filter[r >> 6] >> (r & 63)) & 1)) continue;
        uint32_t zs = zs_col[r];
        if (check_zone && zs >> 2 != zone) continue;
        if (check_status && (zs & 3) != status) continue;
        if (check_window && (ts_col[r] < lo || ts_col[r] > hi)) continue;
        if (check_urls && !row_matches_except(p, r, url_skip)) continue;
        out[got++] = r;
    }
    cc->n = got;
}

/* Positions [from, to) of a url-sorted array whose URLs begin with the prefix. */
static void prefix_range(const rowvec_t *v, const customer_t *c, const string_pool_t *pool, bool target,
                         const url_filter_t *f, uint32_t *from, uint32_t *to) {
    uint32_t lo = 0, hi = v->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t u = target ? c->rows[v->v[mid]].target_url : c->rows[v->v[mid]].end_url;
        if (url_casecmp(string_pool_get(pool, u), string_pool_len(pool, u), f->value, f->len) < 0) lo = mid + 1;
        else hi = mid;
    }
    *from = lo;
    hi = v->n;
    while (lo < hi) { /* first URL past every URL that has the prefix */
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t u = target ? c->rows[v->v[mid]].target_url : c->rows[v->v[mid]].end_url;
        if (url_has_prefix(string_pool_get(pool, u), string_pool_len(pool, u), f->value, f->len)) lo = mid + 1;
        else hi = mid;
    }
    *to = lo;
}


/* Walks an order (segments in the requested direction) with the predicate, keeping the
 * rows of ranks [off, off+lim). */
static void walk_order(const predicate_t *p, const segment_t *segs, int nseg, bool backwards, uint32_t off,
                       uint32_t lim, page_t *pg) {
    uint64_t seen = 0;
    for (int s = 0; s < nseg && pg->count < lim; s++) {
        const segment_t *g = &segs[s];
        for (uint32_t i = 0; i < g->to - g->from && pg->count < lim; i++) {
            uint32_t r = g->vec->v[backwards ? g->to - 1 - i : g->from + i];
            if (!row_matches(p, r)) continue;
            if (seen++ >= off) pg->rows[pg->count++] = r;
        }
    }
}

/* The rows of the whole sort order, as segments in the direction of the query. */
static int sort_order(const customer_t *c, session_sort_t sort, segment_t order[2]) {
    if (sort == SORT_BANDWIDTH) {
        order[0] = (segment_t){&c->by_bw, 0, c->by_bw.n};
        return 1;
    }
    if (sort == SORT_DURATION) { /* null durations last in both directions: running rows follow */
        order[0] = (segment_t){&c->by_dur, 0, c->by_dur.n};
        order[1] = (segment_t){&c->running, 0, c->running.n};
        return 2;
    }
    order[0] = (segment_t){&c->by_ts, 0, c->by_ts.n};
    return 1;
}

/* Given all k matching rows in m (any order), leaves the page at m[0..count). Selecting it
 * costs a few random row reads (cache misses) per match; walking the sort order and testing
 * membership in a bitmap of the matches costs (off + lim) * n / k sequential array reads and
 * cache-resident bit tests, an order of magnitude cheaper each (measured: with 14,000 matches
 * of 1,000,000 rows, selecting took ~1.5 ms, walking ~0.05 ms). */
static int page_from_matches(const customer_t *c, query_scratch_t *sc, const order_t *ord, uint32_t *m,
                             uint32_t k, uint32_t off, uint32_t lim, page_t *pg) {
    pg->count = k - off < lim ? k - off : lim;
    double walk = ((double)off + lim) * (double)c->nrows / (double)k;
    if (walk >= 16.0 * (double)k || k < 256) {
        select_page(m, k, off, lim, ord);
        memmove(m, m + off, pg->count * sizeof *m);
        return 0;
    }
    /* bits[1]: bits[0] may hold the filter the matches were collected with */
    uint64_t *bits = scratch_bits(sc, 1, c->nrows);
    if (!bits) return -ENOMEM;
    for (uint32_t i = 0; i < k; i++) bit_set(bits, m[i]);
    segment_t order[2];
    int n = sort_order(c, ord->sort, order);
    uint32_t seen = 0, got = 0;
    for (int s = 0; s < n && got < pg->count; s++) {
        const segment_t *g = &order[s];
        for (uint32_t i = 0; i < g->to && got < pg->count; i++) {
            uint32_t r = g->vec->v[ord->desc ? g->to - 1 - i : i];
            if (!bit_test(bits, r)) continue;
            if (seen++ >= off) m[got++] = r;
        }
    }
    return 0;
}

/* The page of a domain filter sorted by time: each matching host's array is already in
 * time order, so the page lies within the first off+lim entries (in the query's direction)
 * of each array cut to the window; select among those few instead of all matches. */
typedef struct {
    uint32_t *out; /* NULL: only count */
    uint64_t n, want;
    bool desc;
} head_ctx_t;

static void head_span(void *ctx, const uint32_t *rows, uint32_t n) {
    head_ctx_t *h = ctx;
    uint32_t take = n < h->want ? n : (uint32_t)h->want;
    if (h->out)
        for (uint32_t j = 0; j < take; j++) h->out[h->n + j] = rows[h->desc ? n - 1 - j : j];
    h->n += take;
}

static int page_from_host_lists(const customer_t *c, query_scratch_t *sc, const source_t *s, const order_t *ord,
                                int64_t lo, int64_t hi, uint32_t off, uint32_t lim, page_t *pg) {
    head_ctx_t h = {.want = (uint64_t)off + lim, .desc = ord->desc};
    source_spans(c, s, lo, hi, head_span, &h);
    uint32_t *m = scratch_rows(sc, h.n ? h.n : 1);
    if (!m) return -ENOMEM;
    h.out = m;
    h.n = 0;
    source_spans(c, s, lo, hi, head_span, &h);
    uint32_t k = (uint32_t)h.n;
    select_page(m, k, off, lim, ord);
    pg->count = k > off ? (k - off < lim ? k - off : lim) : 0;
    memmove(m, m + off, pg->count * sizeof *m);
    pg->rows = m;
    return 0;
}

/* The rows of a candidate set that pass the checks it does not guarantee (`skip` names those
 * it does) and, when given, are in `filter`: into per-thread scratch, *n of them. */
static int collect_matches(const customer_t *c, query_scratch_t *sc, const source_t *src, const predicate_t *p,
                           unsigned skip, const uint64_t *filter, uint32_t **out, uint32_t *n) {
    uint32_t *m = scratch_rows(sc, src->size ? src->size : 1);
    if (!m) return -ENOMEM;
    collect_ctx_t cc = {.p = p, .skip = skip, .filter = filter, .out = m};
    source_spans(c, src, p->lo, p->hi, collect_span, &cc);
    *out = m;
    *n = cc.n;
    return 0;
}

/* What a query's filters make of a customer's arrays: the predicate and the candidate sets,
 * each with its exact size (the smallest, and one that is exactly the matches, if any).
 * Points into itself and into q: built in place, used while q lives. */
typedef struct {
    predicate_t p;
    uint8_t *bits; /* host bitsets of the domain filters (owned) */
    source_t sources[3];
    int nsrc;
    const source_t *smallest, *exact;
    bool has_zs, has_window, has_t, has_e;
} plan_t;

/* 0 with the plan built (free its bits with plan_free), 1 when nothing can match (nothing to
 * free), -ENOMEM. */
static int plan_build(const customer_t *c, const string_pool_t *pool, const session_query_t *q, plan_t *pl) {
    memset(pl, 0, sizeof *pl);
    predicate_t *pp = &pl->p;
    *pp = (predicate_t){.c = c, .pool = pool, .zone = -1, .status = q->status, .lo = q->start_ms, .hi = q->end_ms,
                        .target = &q->target_url, .end = &q->end_url};
    if (q->api_name) {
        pp->zone = catalog_index_zone(c, pool, q->api_name);
        if (pp->zone < 0) return 1; /* no such zone: nothing matches */
    }
    if (pp->lo > pp->hi) return 1;
    size_t bitset_bytes = (size_t)c->host_names.count / 8 + 1;
    if (q->target_url.kind == URL_FILTER_DOMAIN || q->end_url.kind == URL_FILTER_DOMAIN) {
        pl->bits = calloc(2, bitset_bytes);
        if (!pl->bits) return -ENOMEM;
        pp->target_hosts = pl->bits;
        pp->end_hosts = pl->bits + bitset_bytes;
        if ((q->target_url.kind == URL_FILTER_DOMAIN && !match_hosts(c, &q->target_url, pp->target_hosts)) ||
            (q->end_url.kind == URL_FILTER_DOMAIN && !match_hosts(c, &q->end_url, pp->end_hosts))) {
            free(pl->bits);
            pl->bits = NULL;
            return 1;
        }
    }

    pl->has_zs = pp->zone >= 0 || pp->status >= 0;
    pl->has_window = pp->lo != INT64_MIN || pp->hi != INT64_MAX;
    pl->has_t = q->target_url.kind != URL_FILTER_NONE;
    pl->has_e = q->end_url.kind != URL_FILTER_NONE;

    /* Candidate sets, each with its exact size. */
    const rowvec_t *base = &c->by_ts;
    if (pp->zone >= 0) base = pp->status >= 0 ? &c->zones[pp->zone].by_status[pp->status] : &c->zones[pp->zone].all;
    else if (pp->status >= 0) base = &c->by_status[pp->status];
    source_t *s = &pl->sources[pl->nsrc++];
    s->nseg = 1;
    s->seg[0].vec = base;
    ts_window(base, c, pp->lo, pp->hi, &s->seg[0].from, &s->seg[0].to);
    s->size = s->seg[0].to - s->seg[0].from;
    s->exact = !pl->has_t && !pl->has_e;
    s->skip = SKIP_ZONE_STATUS | SKIP_WINDOW;
    const url_filter_t *filters[2] = {&q->target_url, &q->end_url};
    for (int k = 0; k < 2; k++) {
        const url_filter_t *f = filters[k];
        bool target = k == 0;
        bool other = target ? pl->has_e : pl->has_t;
        if (f->kind == URL_FILTER_DOMAIN) {
            s = &pl->sources[pl->nsrc++];
            host_source(c, target ? pp->target_hosts : pp->end_hosts, target, pp->lo, pp->hi, s);
            s->exact = !pl->has_zs && !other;
            s->skip = SKIP_WINDOW | (target ? SKIP_TARGET : SKIP_END);
        } else if (f->kind == URL_FILTER_PREFIX) {
            s = &pl->sources[pl->nsrc++];
            s->nseg = 1;
            s->seg[0].vec = target ? &c->by_target_url : &c->by_end_url;
            prefix_range(s->seg[0].vec, c, pool, target, f, &s->seg[0].from, &s->seg[0].to);
            s->size = s->seg[0].to - s->seg[0].from;
            s->exact = !pl->has_zs && !pl->has_window && !other;
            s->skip = target ? SKIP_TARGET : SKIP_END;
        }
    }
    pl->smallest = &pl->sources[0];
    for (int i = 0; i < pl->nsrc; i++) {
        if (pl->sources[i].size < pl->smallest->size) pl->smallest = &pl->sources[i];
        if (pl->sources[i].exact) pl->exact = &pl->sources[i];
    }
    return 0;
}

static void plan_free(plan_t *pl) {
    free(pl->bits);
    pl->bits = NULL;
}

/* Every matching row of a plan that has no exact candidate set, into per-thread scratch (any
 * order). Counts by enumerating the smallest candidate set. A filter it does not cover is
 * checked against a bitmap of another candidate set that covers it, when building one is
 * cheap (a sequential read of a sorted array, no row access), and against the row itself
 * otherwise. */
static int plan_collect(const customer_t *c, query_scratch_t *sc, const plan_t *pl, uint32_t **m, uint32_t *k) {
    const source_t *smallest = pl->smallest;
    unsigned covered = smallest->skip;
    uint64_t *filter = NULL;
    uint64_t budget = filter_budget_factor * (smallest->size > 4096 ? smallest->size : 4096);
    for (int i = 0; i < pl->nsrc; i++) {
        const source_t *o = &pl->sources[i];
        /* zone, status and window are cheap to check from the columns: a bitmap pays
         * only for a URL filter, whose check reads the row and its string */
        if (o == smallest || !(o->skip & ~covered & (SKIP_TARGET | SKIP_END)) || o->size > budget) continue;
        uint64_t *b = scratch_bits(sc, filter ? 1 : 0, c->nrows);
        if (!b) return -ENOMEM;
        source_spans(c, o, pl->p.lo, pl->p.hi, mark_span, b);
        if (filter)
            for (size_t w = 0; w <= c->nrows / 64; w++) filter[w] &= b[w];
        else
            filter = b;
        covered |= o->skip;
    }
    return collect_matches(c, sc, smallest, &pl->p, covered, filter, m, k);
}

int catalog_query_run(const customer_t *c, const string_pool_t *pool, const session_query_t *q, page_t *pg) {
    query_scratch_t *sc = scratch_get();
    if (!sc) return -ENOMEM;
    plan_t pl;
    int rc = plan_build(c, pool, q, &pl);
    if (rc != 0) return rc < 0 ? rc : 0;
    const predicate_t p = pl.p;
    source_t *sources = pl.sources;
    const source_t *exact = pl.exact;
    const bool has_zs = pl.has_zs, has_window = pl.has_window, has_t = pl.has_t, has_e = pl.has_e;
    order_t ord = {.c = c, .pool = pool, .sort = q->sort, .desc = q->desc};
    uint32_t off = q->offset, lim = q->limit;

    if (!exact) {
        uint32_t *m, k;
        rc = plan_collect(c, sc, &pl, &m, &k);
        if (rc < 0) goto done;
        pg->total = k;
        pg->rows = m;
        if (off < k) rc = page_from_matches(c, sc, &ord, m, k, off, lim, pg);
        goto done;
    }

    pg->total = exact->size;
    if (off >= pg->total) goto done;
    pg->rows = scratch_rows(sc, lim);
    if (!pg->rows) {
        rc = -ENOMEM;
        goto done;
    }
    if (exact->hosts && q->sort == SORT_TIMESTAMP && (uint64_t)off + lim <= 100000) {
        rc = page_from_host_lists(c, sc, exact, &ord, p.lo, p.hi, off, lim, pg);
        goto done;
    }
    /* Fast paths: the page is a slice of a sorted array. */
    if (exact == &sources[0] && q->sort == SORT_TIMESTAMP) {
        const segment_t *g = &sources[0].seg[0];
        for (uint32_t i = off; i < pg->total && pg->count < lim; i++)
            pg->rows[pg->count++] = g->vec->v[q->desc ? g->to - 1 - i : g->from + i];
        goto done;
    }
    bool no_filters = !has_zs && !has_window && !has_t && !has_e;
    segment_t order[2];
    int norder = sort_order(c, q->sort, order);
    if (q->sort == SORT_TIMESTAMP) order[0] = sources[0].seg[0]; /* the zone/status array cut to the window */
    uint64_t order_len = 0;
    for (int i = 0; i < norder; i++) order_len += order[i].to - order[i].from;
    if (no_filters) {
        /* Rank i of the order is a position: segment by segment, each read in the query's
         * direction (for duration: by_dur, then the running rows with their null durations). */
        for (uint32_t i = off; pg->count < lim && i < pg->total; i++) {
            uint32_t k = i;
            int g = 0;
            while (k >= order[g].to - order[g].from) {
                k -= order[g].to - order[g].from;
                g++;
            }
            const segment_t *seg = &order[g];
            pg->rows[pg->count++] = seg->vec->v[q->desc ? seg->to - 1 - k : seg->from + k];
        }
        goto done;
    }
    /* Walking the order costs about (off+lim) * order_len / total rows; selecting from the
     * exact set costs about its size. Take the cheaper. */
    double walk_cost = ((double)off + lim) * (double)order_len / (double)pg->total;
    if (walk_cost <= 2.0 * (double)exact->size) {
        walk_order(&p, order, norder, q->desc, off, lim, pg);
        goto done;
    }
    uint32_t *m, k;
    rc = collect_matches(c, sc, exact, &p, exact->skip, NULL, &m, &k);
    if (rc == 0) {
        pg->rows = m;
        rc = page_from_matches(c, sc, &ord, m, k, off, lim, pg);
    }
done:
    plan_free(&pl);
    return rc;
}

int catalog_query_matches(const customer_t *c, const string_pool_t *pool, const session_query_t *q,
                          catalog_span_fn fn, void *ctx) {
    query_scratch_t *sc = scratch_get();
    if (!sc) return -ENOMEM;
    plan_t pl;
    int rc = plan_build(c, pool, q, &pl);
    if (rc != 0) return rc < 0 ? rc : 0;
    if (pl.exact) {
        source_spans(c, pl.exact, pl.p.lo, pl.p.hi, fn, ctx);
    } else {
        uint32_t *m, k;
        rc = plan_collect(c, sc, &pl, &m, &k);
        if (rc == 0 && k) fn(ctx, m, k);
    }
    plan_free(&pl);
    return rc;
}

int catalog_list(catalog_t *c, const char *customer_id, const session_query_t *q, catalog_row_fn fn, void *ctx,
                 catalog_page_info_t *info) {
    page_t pg = {0};
    int rc = 0;
    pthread_rwlock_rdlock(&c->lock);
    const customer_t *cust = catalog_index_customer(c, customer_id);
    if (cust && cust->broken) rc = -ENOMEM; /* a failed update left the arrays incomplete */
    else if (cust) rc = catalog_query_run(cust, &c->pool, q, &pg);
    /* The rows are visited under the read lock: the views borrow the pool's strings, and
     * pg.rows is this thread's scratch, reused by its next query. */
    for (uint32_t i = 0; rc == 0 && i < pg.count; i++) {
        session_record_t view;
        catalog_index_row_view(cust, &c->pool, pg.rows[i], &view);
        rc = fn(ctx, &view);
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc < 0) return rc;
    info->count = pg.count;
    info->total = pg.total;
    return 0;
}
