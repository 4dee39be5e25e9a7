/* The catalog: see catalog.h and docs/catalog.md.
 *
 * Per customer, every session is a fixed-size row (crow_t) whose strings live in a shared,
 * reference-counted string pool. Queries never scan all rows: each customer keeps arrays of
 * row numbers sorted by the keys the API filters and sorts on, so that
 *   - a total for zone/status/date filters is one binary search (the array for that
 *     zone/status pair, sorted by timestamp, is cut at both ends of the date window);
 *   - a domain filter is a union of per-host arrays, and a URL prefix is a range of an array
 *     sorted by case-folded URL;
 *   - a page is read straight off a sorted array, or found by walking one in order with the
 *     remaining predicate, or by selecting from the smallest candidate set: whichever the
 *     known sizes say is cheapest.
 * Every sort key ends with (timestamp, session id), so keys are unique and a row's place in
 * any array can be found by binary search, which is how rows are updated in place. */
#include "catalog/catalog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/string_pool.h"
#include "core/uuid.h"
#include "session/url_match.h"

/* ---------------------------------------------------------------- rows and arrays ---- */

typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} rowvec_t;

/* The fields every filter reads come first, so checking a candidate costs one cache line. */
typedef struct {
    int64_t ts_ms;
    uint32_t zone;        /* index into customer_t.zones */
    uint32_t target_host; /* customer host id, 0 = no host */
    uint32_t end_host;
    uint32_t target_url;  /* pool ids, 0 = null */
    uint32_t end_url;
    uint8_t status;
    uint8_t captcha;
    /* -- 32 bytes -- */
    int64_t duration_ms; /* SESSION_DURATION_NULL while running */
    int64_t bandwidth;
    int64_t navigations;
    uint8_t id[16];
    uint32_t id_text;     /* pool id of the id as given when it is not lowercase, else 0 */
    uint32_t error_code;  /* pool ids, 0 = no error object */
    uint32_t error_message;
} crow_t;

typedef struct {
    uint32_t name; /* pool id */
    rowvec_t all;  /* by (timestamp, id) */
    rowvec_t by_status[SESSION_STATUS_COUNT];
} zone_t;

typedef struct {
    char *reversed;    /* lowercase host written backwards: "moc.elpmaxe.www" */
    uint32_t len;
    rowvec_t target_rows; /* by (timestamp, id) */
    rowvec_t end_rows;
} host_t;

typedef struct {
    char id[STORE_ID_MAX + 1];
    crow_t *rows;
    uint32_t nrows, rows_cap;
    /* Columns of what most checks read, beside the rows: a few MB that stay in cache where
     * random reads of 96-byte rows would each miss it. */
    int64_t *ts_col;      /* = rows[r].ts_ms */
    uint32_t *zs_col;     /* = rows[r].zone * 4 + rows[r].status */
    uint32_t *slots; /* open addressing on the session id: row + 1, 0 = empty */
    uint32_t slot_mask;

    rowvec_t by_ts;       /* all rows by (timestamp, id) */
    rowvec_t by_bw;       /* all rows by (bandwidth, timestamp, id) */
    rowvec_t by_dur;      /* rows with a duration, by (duration, timestamp, id) */
    rowvec_t running;     /* rows without a duration, by (timestamp, id) */
    rowvec_t by_status[SESSION_STATUS_COUNT];
    rowvec_t by_target_url; /* rows with the URL, by (case-folded URL, timestamp, id) */
    rowvec_t by_end_url;

    zone_t *zones;
    uint32_t nzones;

    string_pool_t host_names; /* pool id = host id */
    host_t *hosts;            /* indexed by host id */
    uint32_t hosts_cap;
    uint32_t *host_by_rev;    /* host ids sorted by reversed name */
    uint32_t nhosts;

    /* Rows [0, indexed) are in the arrays; rows appended during a bulk change wait past it,
     * invisible to lists, until the change is finished (customer_finish). */
    uint32_t indexed;
    bool broken; /* an array update failed (out of memory): rebuild before the next query */
} customer_t;

struct catalog {
    pthread_rwlock_t lock;
    pthread_mutex_t sync_lock;
    string_pool_t pool;
    customer_t **customers; /* sorted by id */
    uint32_t ncustomers;
    _Atomic int64_t applied_seq;
    _Atomic size_t total_rows;
};

static int rowvec_reserve(rowvec_t *v, uint32_t need) {
    if (need <= v->cap) return 0;
    uint32_t cap = v->cap ? v->cap : 16;
    while (cap < need) cap = cap > UINT32_MAX / 2 ? need : cap * 2;
    uint32_t *p = realloc(v->v, (size_t)cap * sizeof *p);
    if (!p) return -ENOMEM;
    v->v = p;
    v->cap = cap;
    return 0;
}

static int rowvec_push(rowvec_t *v, uint32_t row) {
    if (v->n == v->cap && rowvec_reserve(v, v->n + 1) < 0) return -ENOMEM;
    v->v[v->n++] = row;
    return 0;
}

static void rowvec_free(rowvec_t *v) {
    free(v->v);
    memset(v, 0, sizeof *v);
}

/* ---------------------------------------------------------------- keys ---- */

typedef int (*row_cmp_fn)(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b);

static int cmp_i64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

static int key_ts(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    (void)pool;
    int r = cmp_i64(c->ts_col[a], c->ts_col[b]);
    return r ? r : memcmp(c->rows[a].id, c->rows[b].id, 16);
}

static int key_bw(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    int r = cmp_i64(c->rows[a].bandwidth, c->rows[b].bandwidth);
    return r ? r : key_ts(c, pool, a, b);
}

static int key_dur(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    int r = cmp_i64(c->rows[a].duration_ms, c->rows[b].duration_ms);
    return r ? r : key_ts(c, pool, a, b);
}

static int key_url(const string_pool_t *pool, uint32_t ua, uint32_t ub) {
    return url_casecmp(string_pool_get(pool, ua), string_pool_len(pool, ua), string_pool_get(pool, ub),
                       string_pool_len(pool, ub));
}

static int key_target_url(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    int r = key_url(pool, c->rows[a].target_url, c->rows[b].target_url);
    return r ? r : key_ts(c, pool, a, b);
}

static int key_end_url(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    int r = key_url(pool, c->rows[a].end_url, c->rows[b].end_url);
    return r ? r : key_ts(c, pool, a, b);
}

/* First position whose row is not less than `row` by cmp. */
static uint32_t rowvec_lower_bound(const rowvec_t *v, const customer_t *c, const string_pool_t *pool,
                                   row_cmp_fn cmp, uint32_t row) {
    uint32_t lo = 0, hi = v->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cmp(c, pool, v->v[mid], row) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int rowvec_insert_sorted(rowvec_t *v, const customer_t *c, const string_pool_t *pool, row_cmp_fn cmp,
                                uint32_t row) {
    if (rowvec_reserve(v, v->n + 1) < 0) return -ENOMEM;
    uint32_t pos = rowvec_lower_bound(v, c, pool, cmp, row);
    memmove(v->v + pos + 1, v->v + pos, (size_t)(v->n - pos) * sizeof *v->v);
    v->v[pos] = row;
    v->n++;
    return 0;
}

static void rowvec_remove_sorted(rowvec_t *v, const customer_t *c, const string_pool_t *pool, row_cmp_fn cmp,
                                 uint32_t row) {
    uint32_t pos = rowvec_lower_bound(v, c, pool, cmp, row);
    if (pos >= v->n || v->v[pos] != row) return; /* not present: nothing to do */
    memmove(v->v + pos, v->v + pos + 1, (size_t)(v->n - pos - 1) * sizeof *v->v);
    v->n--;
}

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

/* ---------------------------------------------------------------- customers ---- */

static uint32_t id_hash(const uint8_t id[16]) {
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h >> 32);
}

static int64_t find_row(const customer_t *c, const uint8_t id[16]) {
    if (!c->slots) return -1;
    for (uint32_t i = id_hash(id) & c->slot_mask;; i = (i + 1) & c->slot_mask) {
        uint32_t s = c->slots[i];
        if (!s) return -1;
        if (memcmp(c->rows[s - 1].id, id, 16) == 0) return s - 1;
    }
}

static int slots_insert(customer_t *c, uint32_t row) {
    if (!c->slots || (uint64_t)(c->nrows + 1) * 2 > (uint64_t)c->slot_mask + 1) {
        uint32_t size = c->slots ? (c->slot_mask + 1) * 2 : 1024;
        uint32_t *ns = calloc(size, sizeof *ns);
        if (!ns) return -ENOMEM;
        free(c->slots);
        c->slots = ns;
        c->slot_mask = size - 1;
        for (uint32_t r = 0; r < c->nrows; r++) {
            if (r == row) continue;
            uint32_t i = id_hash(c->rows[r].id) & c->slot_mask;
            while (c->slots[i]) i = (i + 1) & c->slot_mask;
            c->slots[i] = r + 1;
        }
    }
    uint32_t i = id_hash(c->rows[row].id) & c->slot_mask;
    while (c->slots[i]) i = (i + 1) & c->slot_mask;
    c->slots[i] = row + 1;
    return 0;
}

static void customer_free(customer_t *c, string_pool_t *pool) {
    if (!c) return;
    for (uint32_t r = 0; r < c->nrows; r++) {
        crow_t *w = &c->rows[r];
        string_pool_release(pool, w->id_text);
        string_pool_release(pool, w->target_url);
        string_pool_release(pool, w->end_url);
        string_pool_release(pool, w->error_code);
        string_pool_release(pool, w->error_message);
    }
    free(c->rows);
    free(c->ts_col);
    free(c->zs_col);
    free(c->slots);
    rowvec_free(&c->by_ts);
    rowvec_free(&c->by_bw);
    rowvec_free(&c->by_dur);
    rowvec_free(&c->running);
    rowvec_free(&c->by_target_url);
    rowvec_free(&c->by_end_url);
    for (int s = 0; s < SESSION_STATUS_COUNT; s++) rowvec_free(&c->by_status[s]);
    for (uint32_t z = 0; z < c->nzones; z++) {
        string_pool_release(pool, c->zones[z].name);
        rowvec_free(&c->zones[z].all);
        for (int s = 0; s < SESSION_STATUS_COUNT; s++) rowvec_free(&c->zones[z].by_status[s]);
    }
    free(c->zones);
    for (uint32_t h = 1; h < c->host_names.count; h++) {
        if (h >= c->hosts_cap) break;
        free(c->hosts[h].reversed);
        rowvec_free(&c->hosts[h].target_rows);
        rowvec_free(&c->hosts[h].end_rows);
    }
    free(c->hosts);
    free(c->host_by_rev);
    string_pool_free(&c->host_names);
    free(c);
}

static customer_t *find_customer(const catalog_t *cat, const char *id, uint32_t *insert_at) {
    uint32_t lo = 0, hi = cat->ncustomers;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int r = strcmp(cat->customers[mid]->id, id);
        if (r == 0) return cat->customers[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    if (insert_at) *insert_at = lo;
    return NULL;
}

static customer_t *get_or_add_customer(catalog_t *cat, const char *id) {
    uint32_t at = 0;
    customer_t *c = find_customer(cat, id, &at);
    if (c) return c;
    if (strlen(id) > STORE_ID_MAX) return NULL;
    c = calloc(1, sizeof *c);
    customer_t **nc = realloc(cat->customers, (cat->ncustomers + 1) * sizeof *nc);
    if (!c || !nc || string_pool_init(&c->host_names) < 0) {
        free(c);
        if (nc) cat->customers = nc;
        return NULL;
    }
    strcpy(c->id, id);
    cat->customers = nc;
    memmove(nc + at + 1, nc + at, (cat->ncustomers - at) * sizeof *nc);
    nc[at] = c;
    cat->ncustomers++;
    return c;
}

static int64_t find_zone(const customer_t *c, const string_pool_t *pool, const char *name) {
    for (uint32_t z = 0; z < c->nzones; z++)
        if (strcmp(string_pool_get(pool, c->zones[z].name), name) == 0) return z;
    return -1;
}

static int64_t get_or_add_zone(customer_t *c, string_pool_t *pool, const char *name) {
    int64_t z = find_zone(c, pool, name);
    if (z >= 0) return z;
    zone_t *nz = realloc(c->zones, (c->nzones + 1) * sizeof *nz);
    if (!nz) return -ENOMEM;
    c->zones = nz;
    memset(&nz[c->nzones], 0, sizeof *nz);
    nz[c->nzones].name = string_pool_intern(pool, name, strlen(name));
    if (nz[c->nzones].name == UINT32_MAX) return -ENOMEM;
    return c->nzones++;
}

static int cmp_reversed(const char *a, uint32_t alen, const char *b, uint32_t blen) {
    uint32_t n = alen < blen ? alen : blen;
    int r = memcmp(a, b, n);
    return r ? r : (alen < blen ? -1 : alen > blen);
}

/* Host id of a URL's host (lowercased), adding the host if new; 0 when the URL has none. */
static int64_t host_of_url(customer_t *c, const char *url, size_t url_len) {
    const char *h;
    size_t hlen;
    if (!url || !url_host(url, url_len, &h, &hlen) || hlen > 4096) return 0;
    char lc[4097];
    for (size_t i = 0; i < hlen; i++) lc[i] = (h[i] >= 'A' && h[i] <= 'Z') ? (char)(h[i] + 32) : h[i];
    uint32_t id = string_pool_intern(&c->host_names, lc, hlen);
    if (id == UINT32_MAX) return -ENOMEM;
    if (c->host_names.entries[id].refs > 1) {
        string_pool_release(&c->host_names, id); /* known host; hosts keep a single reference */
        return id;
    }
    /* A new host: give it its lists and a place in the reversed-name order. */
    if (id >= c->hosts_cap) {
        uint32_t cap = c->hosts_cap ? c->hosts_cap : 64;
        while (cap <= id) cap *= 2;
        host_t *nh = realloc(c->hosts, cap * sizeof *nh);
        uint32_t *nr = realloc(c->host_by_rev, cap * sizeof *nr);
        if (nh) c->hosts = nh;
        if (nr) c->host_by_rev = nr;
        if (!nh || !nr) return -ENOMEM;
        memset(nh + c->hosts_cap, 0, (cap - c->hosts_cap) * sizeof *nh);
        c->hosts_cap = cap;
    }
    host_t *host = &c->hosts[id];
    host->reversed = malloc(hlen + 1);
    if (!host->reversed) return -ENOMEM;
    for (size_t i = 0; i < hlen; i++) host->reversed[i] = lc[hlen - 1 - i];
    host->reversed[hlen] = '\0';
    host->len = (uint32_t)hlen;
    uint32_t lo = 0, hi = c->nhosts;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const host_t *m = &c->hosts[c->host_by_rev[mid]];
        if (cmp_reversed(m->reversed, m->len, host->reversed, host->len) < 0) lo = mid + 1;
        else hi = mid;
    }
    memmove(c->host_by_rev + lo + 1, c->host_by_rev + lo, (c->nhosts - lo) * sizeof *c->host_by_rev);
    c->host_by_rev[lo] = id;
    c->nhosts++;
    return id;
}

/* ---------------------------------------------------------------- index maintenance ---- */

static int index_add(customer_t *c, const string_pool_t *pool, uint32_t r) {
    const crow_t *w = &c->rows[r];
    zone_t *z = &c->zones[w->zone];
    int rc = 0;
    rc |= rowvec_insert_sorted(&c->by_ts, c, pool, key_ts, r);
    rc |= rowvec_insert_sorted(&c->by_bw, c, pool, key_bw, r);
    if (w->duration_ms == SESSION_DURATION_NULL) rc |= rowvec_insert_sorted(&c->running, c, pool, key_ts, r);
    else rc |= rowvec_insert_sorted(&c->by_dur, c, pool, key_dur, r);
    rc |= rowvec_insert_sorted(&c->by_status[w->status], c, pool, key_ts, r);
    rc |= rowvec_insert_sorted(&z->all, c, pool, key_ts, r);
    rc |= rowvec_insert_sorted(&z->by_status[w->status], c, pool, key_ts, r);
    if (w->target_url) rc |= rowvec_insert_sorted(&c->by_target_url, c, pool, key_target_url, r);
    if (w->end_url) rc |= rowvec_insert_sorted(&c->by_end_url, c, pool, key_end_url, r);
    if (w->target_host) rc |= rowvec_insert_sorted(&c->hosts[w->target_host].target_rows, c, pool, key_ts, r);
    if (w->end_host) rc |= rowvec_insert_sorted(&c->hosts[w->end_host].end_rows, c, pool, key_ts, r);
    return rc ? -ENOMEM : 0;
}

static void index_remove(customer_t *c, const string_pool_t *pool, uint32_t r) {
    const crow_t *w = &c->rows[r];
    zone_t *z = &c->zones[w->zone];
    rowvec_remove_sorted(&c->by_ts, c, pool, key_ts, r);
    rowvec_remove_sorted(&c->by_bw, c, pool, key_bw, r);
    if (w->duration_ms == SESSION_DURATION_NULL) rowvec_remove_sorted(&c->running, c, pool, key_ts, r);
    else rowvec_remove_sorted(&c->by_dur, c, pool, key_dur, r);
    rowvec_remove_sorted(&c->by_status[w->status], c, pool, key_ts, r);
    rowvec_remove_sorted(&z->all, c, pool, key_ts, r);
    rowvec_remove_sorted(&z->by_status[w->status], c, pool, key_ts, r);
    if (w->target_url) rowvec_remove_sorted(&c->by_target_url, c, pool, key_target_url, r);
    if (w->end_url) rowvec_remove_sorted(&c->by_end_url, c, pool, key_end_url, r);
    if (w->target_host) rowvec_remove_sorted(&c->hosts[w->target_host].target_rows, c, pool, key_ts, r);
    if (w->end_host) rowvec_remove_sorted(&c->hosts[w->end_host].end_rows, c, pool, key_ts, r);
}

typedef struct {
    const customer_t *c;
    const string_pool_t *pool;
    row_cmp_fn cmp;
} sort_ctx_t;

static int sort_trampoline(const void *a, const void *b, void *arg) {
    const sort_ctx_t *s = arg;
    return s->cmp(s->c, s->pool, *(const uint32_t *)a, *(const uint32_t *)b);
}

static void rowvec_sort(rowvec_t *v, const customer_t *c, const string_pool_t *pool, row_cmp_fn cmp) {
    sort_ctx_t ctx = {c, pool, cmp};
    qsort_r(v->v, v->n, sizeof *v->v, sort_trampoline, &ctx);
}

/* Sorting by comparing rows would chase each row (and for URLs its pool entry and string)
 * through memory on every comparison. Instead an array already in time order is re-sorted
 * by compact (key, position) pairs: equal keys keep their time order, which gives exactly
 * the (key, timestamp, id) order of the arrays, without touching a row while sorting. */
typedef struct {
    int64_t key;
    uint32_t pos;
} keyed_pos_t;

static int keyed_pos_cmp(const void *a, const void *b) {
    const keyed_pos_t *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

typedef enum { KEY_BANDWIDTH, KEY_DURATION, KEY_TARGET_URL, KEY_END_URL } row_key_t;

static int rowvec_sort_by_key(rowvec_t *v, const customer_t *c, row_key_t which, const uint32_t *url_rank) {
    keyed_pos_t *items = malloc(((size_t)v->n + 1) * sizeof *items);
    uint32_t *sorted = malloc(((size_t)v->n + 1) * sizeof *sorted);
    if (!items || !sorted) {
        free(items);
        free(sorted);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < v->n; i++) {
        const crow_t *w = &c->rows[v->v[i]];
        int64_t key = which == KEY_BANDWIDTH ? w->bandwidth
                      : which == KEY_DURATION ? w->duration_ms
                      : url_rank[which == KEY_TARGET_URL ? w->target_url : w->end_url];
        items[i] = (keyed_pos_t){key, i};
    }
    qsort(items, v->n, sizeof *items, keyed_pos_cmp);
    for (uint32_t i = 0; i < v->n; i++) sorted[i] = v->v[items[i].pos];
    memcpy(v->v, sorted, (size_t)v->n * sizeof *sorted);
    free(items);
    free(sorted);
    return 0;
}

static int cmp_pool_url(const void *a, const void *b, void *arg) {
    const string_pool_t *pool = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return url_casecmp(string_pool_get(pool, x), string_pool_len(pool, x), string_pool_get(pool, y),
                       string_pool_len(pool, y));
}

/* Rank of every URL the customer's rows use, in case-folded order (URLs equal but for case
 * share a rank), indexed by pool id; each distinct string is compared, not each row. */
static uint32_t *url_ranks(const customer_t *c, const string_pool_t *pool) {
    uint32_t *rank = calloc(pool->count + 1, sizeof *rank);
    uint32_t *ids = malloc(((size_t)c->nrows * 2 + 1) * sizeof *ids);
    if (!rank || !ids) {
        free(rank);
        free(ids);
        return NULL;
    }
    size_t n = 0;
    for (uint32_t r = 0; r < c->nrows; r++) {
        uint32_t u[2] = {c->rows[r].target_url, c->rows[r].end_url};
        for (int k = 0; k < 2; k++)
            if (u[k] && !rank[u[k]]) {
                rank[u[k]] = 1;
                ids[n++] = u[k];
            }
    }
    qsort_r(ids, n, sizeof *ids, cmp_pool_url, (void *)pool);
    uint32_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || cmp_pool_url(&ids[i - 1], &ids[i], (void *)pool) != 0) r++;
        rank[ids[i]] = r;
    }
    free(ids);
    return rank;
}

/* Rebuilds every array of a customer from its rows: after a bulk load, sorting once beats
 * a million sorted inserts. Every array is filled in timestamp order, then re-sorted by its
 * own key where it has one. */
static int customer_rebuild(customer_t *c, const string_pool_t *pool) {
    rowvec_t *plain[] = {&c->by_ts, &c->by_bw, &c->by_dur, &c->running, &c->by_target_url, &c->by_end_url,
                         &c->by_status[0], &c->by_status[1], &c->by_status[2]};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) plain[i]->n = 0;
    for (uint32_t z = 0; z < c->nzones; z++) {
        c->zones[z].all.n = 0;
        for (int s = 0; s < SESSION_STATUS_COUNT; s++) c->zones[z].by_status[s].n = 0;
    }
    for (uint32_t h = 1; h < c->hosts_cap; h++) c->hosts[h].target_rows.n = c->hosts[h].end_rows.n = 0;

    if (rowvec_reserve(&c->by_ts, c->nrows) < 0) return -ENOMEM;
    for (uint32_t r = 0; r < c->nrows; r++) c->by_ts.v[r] = r;
    c->by_ts.n = c->nrows;
    rowvec_sort(&c->by_ts, c, pool, key_ts);

    int rc = 0;
    for (uint32_t i = 0; i < c->by_ts.n; i++) {
        uint32_t r = c->by_ts.v[i];
        const crow_t *w = &c->rows[r];
        zone_t *z = &c->zones[w->zone];
        rc |= rowvec_push(&c->by_bw, r);
        rc |= rowvec_push(w->duration_ms == SESSION_DURATION_NULL ? &c->running : &c->by_dur, r);
        rc |= rowvec_push(&c->by_status[w->status], r);
        rc |= rowvec_push(&z->all, r);
        rc |= rowvec_push(&z->by_status[w->status], r);
        if (w->target_url) rc |= rowvec_push(&c->by_target_url, r);
        if (w->end_url) rc |= rowvec_push(&c->by_end_url, r);
        if (w->target_host) rc |= rowvec_push(&c->hosts[w->target_host].target_rows, r);
        if (w->end_host) rc |= rowvec_push(&c->hosts[w->end_host].end_rows, r);
    }
    if (rc) return -ENOMEM;
    uint32_t *rank = url_ranks(c, pool);
    if (!rank || rowvec_sort_by_key(&c->by_bw, c, KEY_BANDWIDTH, NULL) < 0 ||
        rowvec_sort_by_key(&c->by_dur, c, KEY_DURATION, NULL) < 0 ||
        rowvec_sort_by_key(&c->by_target_url, c, KEY_TARGET_URL, rank) < 0 ||
        rowvec_sort_by_key(&c->by_end_url, c, KEY_END_URL, rank) < 0) {
        free(rank);
        return -ENOMEM;
    }
    free(rank);
    c->indexed = c->nrows;
    c->broken = false;
    return 0;
}

static void row_release_strings(crow_t *w, string_pool_t *pool) {
    string_pool_release(pool, w->id_text);
    string_pool_release(pool, w->target_url);
    string_pool_release(pool, w->end_url);
    string_pool_release(pool, w->error_code);
    string_pool_release(pool, w->error_message);
    w->id_text = w->target_url = w->end_url = w->error_code = w->error_message = 0;
}

static uint32_t intern_opt(string_pool_t *pool, const char *s, bool *oom) {
    if (!s) return 0;
    uint32_t id = string_pool_intern(pool, s, strlen(s));
    if (id == UINT32_MAX) {
        *oom = true;
        return 0;
    }
    return id;
}

/* Fills a row from a record (interning its strings). On failure the row holds no references. */
static int row_fill(customer_t *c, string_pool_t *pool, crow_t *w, const session_record_t *rec,
                    const uint8_t id[16]) {
    int64_t zone = get_or_add_zone(c, pool, rec->api_name ? rec->api_name : "");
    if (zone < 0) return (int)zone;
    int64_t th = host_of_url(c, rec->target_url, rec->target_url ? strlen(rec->target_url) : 0);
    int64_t eh = host_of_url(c, rec->end_url, rec->end_url ? strlen(rec->end_url) : 0);
    if (th < 0 || eh < 0) return -ENOMEM;
    char canonical[UUID_TEXT_LEN + 1];
    uuid_format(id, canonical);
    bool oom = false;
    crow_t n = {
        .ts_ms = rec->timestamp_ms,
        .duration_ms = rec->duration_ms < 0 ? SESSION_DURATION_NULL : rec->duration_ms,
        .bandwidth = rec->bandwidth,
        .navigations = rec->navigations,
        .zone = (uint32_t)zone,
        .target_host = (uint32_t)th,
        .end_host = (uint32_t)eh,
        .status = (uint8_t)((unsigned)rec->status < SESSION_STATUS_COUNT ? rec->status : SESSION_FAILED),
        .captcha = (uint8_t)rec->captcha,
    };
    memcpy(n.id, id, 16);
    if (strcmp(canonical, rec->session_id) != 0) n.id_text = intern_opt(pool, rec->session_id, &oom);
    n.target_url = intern_opt(pool, rec->target_url, &oom);
    n.end_url = intern_opt(pool, rec->end_url, &oom);
    if (rec->error_code) {
        n.error_code = intern_opt(pool, rec->error_code, &oom);
        n.error_message = intern_opt(pool, rec->error_message ? rec->error_message : "", &oom);
    }
    if (oom) {
        row_release_strings(&n, pool);
        return -ENOMEM;
    }
    *w = n;
    return 0;
}

static int grow_rows(customer_t *c) {
    uint32_t cap = c->rows_cap ? c->rows_cap * 2 : 1024;
    crow_t *nr = realloc(c->rows, (size_t)cap * sizeof *nr);
    if (nr) c->rows = nr;
    int64_t *nt = realloc(c->ts_col, (size_t)cap * sizeof *nt);
    if (nt) c->ts_col = nt;
    uint32_t *nz = realloc(c->zs_col, (size_t)cap * sizeof *nz);
    if (nz) c->zs_col = nz;
    if (!nr || !nt || !nz) return -ENOMEM;
    c->rows_cap = cap;
    return 0;
}

static void set_row(customer_t *c, uint32_t r, const crow_t *w) {
    c->rows[r] = *w;
    c->ts_col[r] = w->ts_ms;
    c->zs_col[r] = w->zone * 4 + w->status;
}

/* Inserts or replaces one session. A new row is indexed at once unless `defer` is set or
 * earlier rows are waiting; then it waits for customer_finish. */
static int customer_put(customer_t *c, string_pool_t *pool, const session_record_t *rec, bool defer) {
    uint8_t id[16];
    if (uuid_parse(rec->session_id, strlen(rec->session_id), id) < 0) return -EINVAL;
    int64_t existing = find_row(c, id);
    crow_t fresh;
    int rc = row_fill(c, pool, &fresh, rec, id);
    if (rc < 0) return rc;
    if (existing >= 0) {
        uint32_t r = (uint32_t)existing;
        bool in_arrays = r < c->indexed && !c->broken;
        if (in_arrays) index_remove(c, pool, r);
        row_release_strings(&c->rows[r], pool);
        set_row(c, r, &fresh);
        if (in_arrays && index_add(c, pool, r) < 0) {
            c->broken = true;
            return -ENOMEM;
        }
        return 0;
    }
    if (c->nrows == c->rows_cap && grow_rows(c) < 0) {
        row_release_strings(&fresh, pool);
        return -ENOMEM;
    }
    uint32_t r = c->nrows;
    set_row(c, r, &fresh);
    c->nrows++;
    if (slots_insert(c, r) < 0) {
        c->nrows--;
        row_release_strings(&c->rows[r], pool);
        return -ENOMEM;
    }
    if (defer || c->indexed != r || c->broken) return 0;
    if (index_add(c, pool, r) < 0) {
        c->broken = true;
        return -ENOMEM;
    }
    c->indexed = c->nrows;
    return 0;
}

/* Brings the arrays up to date with the rows: a few waiting rows are inserted one by one;
 * many are cheaper to index by sorting every array once. */
static int customer_finish(customer_t *c, const string_pool_t *pool) {
    uint32_t waiting = c->nrows - c->indexed;
    if (!c->broken && waiting == 0) return 0;
    if (!c->broken && waiting <= 1024 && waiting <= c->indexed / 16) {
        for (; c->indexed < c->nrows; c->indexed++)
            if (index_add(c, pool, c->indexed) < 0) {
                c->broken = true;
                return -ENOMEM;
            }
        return 0;
    }
    int rc = customer_rebuild(c, pool);
    if (rc < 0) c->broken = true;
    return rc;
}

/* ---------------------------------------------------------------- public: changes ---- */

catalog_t *catalog_new(void) {
    catalog_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Queries are many and short; a steady stream of them must not starve a pending sync. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&c->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->sync_lock, NULL);
    if (string_pool_init(&c->pool) < 0) {
        pthread_rwlock_destroy(&c->lock);
        pthread_mutex_destroy(&c->sync_lock);
        free(c);
        return NULL;
    }
    return c;
}

void catalog_free(catalog_t *c) {
    if (!c) return;
    for (uint32_t i = 0; i < c->ncustomers; i++) customer_free(c->customers[i], &c->pool);
    free(c->customers);
    string_pool_free(&c->pool);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->sync_lock);
    free(c);
}

static void recount(catalog_t *c) {
    size_t n = 0;
    for (uint32_t i = 0; i < c->ncustomers; i++) n += c->customers[i]->nrows;
    atomic_store(&c->total_rows, n);
}

int catalog_put(catalog_t *c, const char *customer_id, const session_record_t *rec) {
    pthread_rwlock_wrlock(&c->lock);
    customer_t *cust = get_or_add_customer(c, customer_id);
    int rc = cust ? customer_put(cust, &c->pool, rec, false) : -ENOMEM;
    if (cust) {
        int rb = customer_finish(cust, &c->pool);
        if (rc == 0) rc = rb;
    }
    recount(c);
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

/* A sync copies changed records into a batch (no lock held while the store is read), then
 * applies the batch under the write lock. Large batches are applied in bulk mode. */
#define SYNC_BATCH 65536
#define SYNC_BULK_THRESHOLD 2048

typedef struct {
    char customer[STORE_ID_MAX + 1];
    session_record_t rec;
} sync_item_t;

typedef struct {
    catalog_t *cat;
    sync_item_t *items;
    size_t n;
    int rc;
} sync_batch_t;

static char *dup_opt(const char *s, bool *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = true;
    return d;
}

/* Applies a batch under the write lock. In a large batch new rows wait unindexed (queries
 * keep seeing the previous state) until catalog_sync finishes every customer at the end. */
static void batch_apply(sync_batch_t *b) {
    catalog_t *c = b->cat;
    bool defer = b->n >= SYNC_BULK_THRESHOLD;
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < b->n; i++) {
        customer_t *cust = get_or_add_customer(c, b->items[i].customer);
        int rc = cust ? customer_put(cust, &c->pool, &b->items[i].rec, defer) : -ENOMEM;
        if (rc < 0 && b->rc == 0 && rc != -EINVAL) b->rc = rc;
    }
    recount(c);
    pthread_rwlock_unlock(&c->lock);
    for (size_t i = 0; i < b->n; i++) session_record_free(&b->items[i].rec);
    b->n = 0;
}

static int finish_all(catalog_t *c) {
    int rc = 0;
    pthread_rwlock_wrlock(&c->lock);
    for (uint32_t i = 0; i < c->ncustomers; i++) {
        int r = customer_finish(c->customers[i], &c->pool);
        if (r < 0 && rc == 0) rc = r;
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

static int sync_collect(void *ctx, const char *customer_id, const session_record_t *rec) {
    sync_batch_t *b = ctx;
    sync_item_t *it = &b->items[b->n];
    bool oom = false;
    snprintf(it->customer, sizeof it->customer, "%s", customer_id);
    it->rec = *rec;
    it->rec.api_name = dup_opt(rec->api_name, &oom);
    it->rec.target_url = dup_opt(rec->target_url, &oom);
    it->rec.end_url = dup_opt(rec->end_url, &oom);
    it->rec.error_code = dup_opt(rec->error_code, &oom);
    it->rec.error_message = dup_opt(rec->error_message, &oom);
    if (oom) {
        session_record_free(&it->rec);
        return -ENOMEM;
    }
    if (++b->n == SYNC_BATCH) batch_apply(b);
    return b->rc;
}

int catalog_sync(catalog_t *c, store_t *s) {
    int64_t seq = 0;
    int rc = store_change_seq(s, &seq);
    if (rc < 0) return rc;
    if (seq <= atomic_load(&c->applied_seq)) return 0;
    pthread_mutex_lock(&c->sync_lock);
    int64_t from = atomic_load(&c->applied_seq);
    if (seq <= from) {
        pthread_mutex_unlock(&c->sync_lock);
        return 0;
    }
    sync_batch_t b = {.cat = c, .items = malloc(SYNC_BATCH * sizeof(sync_item_t))};
    if (!b.items) {
        pthread_mutex_unlock(&c->sync_lock);
        return -ENOMEM;
    }
    int64_t last = from;
    rc = store_sessions_since(s, from, &last, sync_collect, &b);
    batch_apply(&b);
    int fin = finish_all(c);
    if (rc == 0) rc = b.rc;
    if (rc == 0) rc = fin;
    /* Even after a failure, what was applied stays applied; a later sync starts after it
     * only when everything up to `last` went in. */
    if (rc == 0) atomic_store(&c->applied_seq, last);
    free(b.items);
    pthread_mutex_unlock(&c->sync_lock);
    return rc;
}

size_t catalog_size(catalog_t *c) { return atomic_load(&c->total_rows); }

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
typedef void (*span_fn)(void *ctx, const uint32_t *rows, uint32_t n);

static void source_spans(const customer_t *c, const source_t *s, int64_t lo, int64_t hi, span_fn fn, void *ctx) {
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

typedef struct {
    uint32_t *rows; /* the page, in order */
    uint32_t count;
    uint64_t total;
} page_t;

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

/* Fills pg with the total and the page's rows; pg->rows points into per-thread scratch. */
static int run_query(const customer_t *c, const string_pool_t *pool, const session_query_t *q, page_t *pg) {
    predicate_t p = {.c = c, .pool = pool, .zone = -1, .status = q->status, .lo = q->start_ms, .hi = q->end_ms,
                     .target = &q->target_url, .end = &q->end_url};
    uint8_t *bits = NULL;
    int rc = 0;
    query_scratch_t *sc = scratch_get();
    if (!sc) return -ENOMEM;
    if (q->api_name) {
        p.zone = find_zone(c, pool, q->api_name);
        if (p.zone < 0) return 0; /* no such zone: nothing matches */
    }
    if (p.lo > p.hi) return 0;
    size_t bitset_bytes = (size_t)c->host_names.count / 8 + 1;
    if (q->target_url.kind == URL_FILTER_DOMAIN || q->end_url.kind == URL_FILTER_DOMAIN) {
        bits = calloc(2, bitset_bytes);
        if (!bits) return -ENOMEM;
        p.target_hosts = bits;
        p.end_hosts = bits + bitset_bytes;
        if (q->target_url.kind == URL_FILTER_DOMAIN && !match_hosts(c, &q->target_url, p.target_hosts)) goto done;
        if (q->end_url.kind == URL_FILTER_DOMAIN && !match_hosts(c, &q->end_url, p.end_hosts)) goto done;
    }

    bool has_zs = p.zone >= 0 || p.status >= 0;
    bool has_window = p.lo != INT64_MIN || p.hi != INT64_MAX;
    bool has_t = q->target_url.kind != URL_FILTER_NONE, has_e = q->end_url.kind != URL_FILTER_NONE;

    /* Candidate sets, each with its exact size. */
    const rowvec_t *base = &c->by_ts;
    if (p.zone >= 0) base = p.status >= 0 ? &c->zones[p.zone].by_status[p.status] : &c->zones[p.zone].all;
    else if (p.status >= 0) base = &c->by_status[p.status];
    source_t sources[3];
    int nsrc = 0;
    source_t *s = &sources[nsrc++];
    memset(s, 0, sizeof *s);
    s->nseg = 1;
    s->seg[0].vec = base;
    ts_window(base, c, p.lo, p.hi, &s->seg[0].from, &s->seg[0].to);
    s->size = s->seg[0].to - s->seg[0].from;
    s->exact = !has_t && !has_e;
    s->skip = SKIP_ZONE_STATUS | SKIP_WINDOW;
    const url_filter_t *filters[2] = {&q->target_url, &q->end_url};
    for (int k = 0; k < 2; k++) {
        const url_filter_t *f = filters[k];
        bool target = k == 0;
        bool other = target ? has_e : has_t;
        if (f->kind == URL_FILTER_DOMAIN) {
            s = &sources[nsrc++];
            host_source(c, target ? p.target_hosts : p.end_hosts, target, p.lo, p.hi, s);
            s->exact = !has_zs && !other;
            s->skip = SKIP_WINDOW | (target ? SKIP_TARGET : SKIP_END);
        } else if (f->kind == URL_FILTER_PREFIX) {
            s = &sources[nsrc++];
            memset(s, 0, sizeof *s);
            s->nseg = 1;
            s->seg[0].vec = target ? &c->by_target_url : &c->by_end_url;
            prefix_range(s->seg[0].vec, c, pool, target, f, &s->seg[0].from, &s->seg[0].to);
            s->size = s->seg[0].to - s->seg[0].from;
            s->exact = !has_zs && !has_window && !other;
            s->skip = target ? SKIP_TARGET : SKIP_END;
        }
    }
    const source_t *smallest = &sources[0], *exact = NULL;
    for (int i = 0; i < nsrc; i++) {
        if (sources[i].size < smallest->size) smallest = &sources[i];
        if (sources[i].exact) exact = &sources[i];
    }
    order_t ord = {.c = c, .pool = pool, .sort = q->sort, .desc = q->desc};
    uint32_t off = q->offset, lim = q->limit;

    if (!exact) {
        /* Count by enumerating the smallest candidate set. A filter it does not cover is
         * checked against a bitmap of another candidate set that covers it, when building
         * one is cheap (a sequential read of a sorted array, no row access), and against
         * the row itself otherwise. */
        unsigned covered = smallest->skip;
        uint64_t *filter = NULL;
        uint64_t budget = filter_budget_factor * (smallest->size > 4096 ? smallest->size : 4096);
        for (int i = 0; i < nsrc; i++) {
            const source_t *o = &sources[i];
            /* zone, status and window are cheap to check from the columns: a bitmap pays
             * only for a URL filter, whose check reads the row and its string */
            if (o == smallest || !(o->skip & ~covered & (SKIP_TARGET | SKIP_END)) || o->size > budget) continue;
            uint64_t *b = scratch_bits(sc, filter ? 1 : 0, c->nrows);
            if (!b) {
                rc = -ENOMEM;
                goto done;
            }
            source_spans(c, o, p.lo, p.hi, mark_span, b);
            if (filter)
                for (size_t w = 0; w <= c->nrows / 64; w++) filter[w] &= b[w];
            else
                filter = b;
            covered |= o->skip;
        }
        uint32_t *m, k;
        rc = collect_matches(c, sc, smallest, &p, covered, filter, &m, &k);
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
    free(bits);
    return rc;
}

/* The row as a session_record_t that borrows the pool's strings: no copy of any string, and
 * nothing to free (the view is never passed to session_record_free). */
static void row_view(const customer_t *c, const string_pool_t *pool, uint32_t r, session_record_t *view) {
    const crow_t *x = &c->rows[r];
    *view = (session_record_t){
        .status = x->status,
        .navigations = x->navigations,
        .timestamp_ms = x->ts_ms,
        .duration_ms = x->duration_ms,
        .captcha = x->captcha,
        .bandwidth = x->bandwidth,
    };
    if (x->id_text) memcpy(view->session_id, string_pool_get(pool, x->id_text), UUID_TEXT_LEN + 1);
    else uuid_format(x->id, view->session_id);
    view->api_name = (char *)string_pool_get(pool, c->zones[x->zone].name);
    view->target_url = (char *)string_pool_get(pool, x->target_url);
    view->end_url = (char *)string_pool_get(pool, x->end_url);
    view->error_code = (char *)string_pool_get(pool, x->error_code);
    view->error_message = (char *)string_pool_get(pool, x->error_message);
}

int catalog_list(catalog_t *c, const char *customer_id, const session_query_t *q, catalog_row_fn fn, void *ctx,
                 catalog_page_info_t *info) {
    page_t pg = {0};
    int rc = 0;
    pthread_rwlock_rdlock(&c->lock);
    const customer_t *cust = find_customer(c, customer_id, NULL);
    if (cust && cust->broken) rc = -ENOMEM; /* a failed update left the arrays incomplete */
    else if (cust) rc = run_query(cust, &c->pool, q, &pg);
    /* The rows are visited under the read lock: the views borrow the pool's strings, and
     * pg.rows is this thread's scratch, reused by its next query. */
    for (uint32_t i = 0; rc == 0 && i < pg.count; i++) {
        session_record_t view;
        row_view(cust, &c->pool, pg.rows[i], &view);
        rc = fn(ctx, &view);
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc < 0) return rc;
    info->count = pg.count;
    info->total = pg.total;
    return 0;
}

int catalog_get(catalog_t *c, const char *customer_id, const uint8_t id[16], catalog_row_fn fn, void *ctx) {
    int rc = -ENOENT;
    pthread_rwlock_rdlock(&c->lock);
    const customer_t *cust = find_customer(c, customer_id, NULL);
    int64_t r = cust ? find_row(cust, id) : -1;
    if (r >= 0) {
        session_record_t view;
        row_view(cust, &c->pool, (uint32_t)r, &view);
        rc = fn(ctx, &view);
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}
