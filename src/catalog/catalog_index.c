/* The catalog's index: customers, their rows and the sorted arrays over them, kept up to date
 * row by row or rebuilt in bulk. See catalog_internal.h and docs/catalog.md. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_internal.h"
#include "core/uuid.h"
#include "session/url_match.h"

/* ---------------------------------------------------------------- arrays ---- */

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

/* ---------------------------------------------------------------- customers ---- */

static uint32_t id_hash(const uint8_t id[16]) {
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h >> 32);
}

int64_t catalog_index_row(const customer_t *c, const uint8_t id[16]) {
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

static void row_release_strings(crow_t *w, string_pool_t *pool) {
    string_pool_release(pool, w->id_text);
    string_pool_release(pool, w->target_url);
    string_pool_release(pool, w->end_url);
    string_pool_release(pool, w->error_code);
    string_pool_release(pool, w->error_message);
    w->id_text = w->target_url = w->end_url = w->error_code = w->error_message = 0;
}

void catalog_index_free_customer(customer_t *c, string_pool_t *pool) {
    if (!c) return;
    for (uint32_t r = 0; r < c->nrows; r++) row_release_strings(&c->rows[r], pool);
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

customer_t *catalog_index_customer(const catalog_t *cat, const char *id) { return find_customer(cat, id, NULL); }

customer_t *catalog_index_add_customer(catalog_t *cat, const char *id) {
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

int64_t catalog_index_zone(const customer_t *c, const string_pool_t *pool, const char *name) {
    for (uint32_t z = 0; z < c->nzones; z++)
        if (strcmp(string_pool_get(pool, c->zones[z].name), name) == 0) return z;
    return -1;
}

static int64_t get_or_add_zone(customer_t *c, string_pool_t *pool, const char *name) {
    int64_t z = catalog_index_zone(c, pool, name);
    if (z >= 0) return z;
    zone_t *nz = realloc(c->zones, (c->nzones + 1) * sizeof *nz);
    if (!nz) return -ENOMEM;
    c->zones = nz;
    memset(&nz[c->nzones], 0, sizeof *nz);
    nz[c->nzones].name = string_pool_intern(pool, name, strlen(name));
    if (nz[c->nzones].name == UINT32_MAX) return -ENOMEM;
    return c->nzones++;
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
        if (!nh || !nr) goto oom;
        memset(nh + c->hosts_cap, 0, (cap - c->hosts_cap) * sizeof *nh);
        c->hosts_cap = cap;
    }
    host_t *host = &c->hosts[id];
    host->reversed = malloc(hlen + 1);
    if (!host->reversed) goto oom;
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
oom:
    /* Not a host yet: a name left in the pool would pass for a known host next time. */
    string_pool_release(&c->host_names, id);
    return -ENOMEM;
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
    if (v->n == 0) return 0; /* an array never filled has no storage: v->v is NULL */
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

/* A new row is indexed at once only when no earlier row waits: rows [0, indexed) are the
 * indexed ones, so a row can join the arrays only when it is row `indexed`. */
int catalog_index_put(customer_t *c, string_pool_t *pool, const session_record_t *rec, bool defer) {
    uint8_t id[16];
    if (uuid_parse(rec->session_id, strlen(rec->session_id), id) < 0) return -EINVAL;
    int64_t existing = catalog_index_row(c, id);
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

/* A few waiting rows are inserted one by one; many are cheaper to index by sorting every
 * array once. */
int catalog_index_finish(customer_t *c, const string_pool_t *pool) {
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

void catalog_index_recount(catalog_t *cat) {
    size_t n = 0;
    for (uint32_t i = 0; i < cat->ncustomers; i++) n += cat->customers[i]->nrows;
    atomic_store(&cat->total_rows, n);
}

/* The row as a session_record_t that borrows the pool's strings: no copy of any string, and
 * nothing to free (the view is never passed to session_record_free). */
void catalog_index_row_view(const customer_t *c, const string_pool_t *pool, uint32_t r, session_record_t *view) {
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
