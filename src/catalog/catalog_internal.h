/* What the parts of the catalog share (catalog.c: the public functions and their locking;
 * catalog_index.c: customers, rows and sorted arrays; catalog_query.c: query execution;
 * catalog_sync.c: following the store). Private to src/catalog.
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
 * any array can be found by binary search, which is how rows are updated in place.
 *
 * Ownership: the catalog owns its customers; a customer owns its rows, columns and arrays;
 * every string a row names is a reference it holds in the catalog's pool (released when the
 * row is replaced or freed).
 * Threading: nothing here locks. Changes need the catalog's write lock, lookups and queries
 * at least its read lock (catalog.c and catalog_sync.c take them). */
#ifndef BROWSERD_CATALOG_CATALOG_INTERNAL_H
#define BROWSERD_CATALOG_CATALOG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog/string_pool.h"
#include "session/record.h"
#include "session/session_query.h"
#include "store/store.h"
#include "store/store_spool.h"

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
     * invisible to lists, until the change is finished (catalog_index_finish). */
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
    store_spool_t *spool; /* borrowed, NULL for none: see catalog_sync_follow_spool */
};

/* ---------------------------------------------------------------- keys ---- */

typedef int (*row_cmp_fn)(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b);

/* Inline here: the comparisons run inside the sorts and selections of both the index and the
 * queries, where a call per comparison would cost more than the comparison. */
static inline int cmp_i64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

static inline int key_ts(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    (void)pool;
    int r = cmp_i64(c->ts_col[a], c->ts_col[b]);
    return r ? r : memcmp(c->rows[a].id, c->rows[b].id, 16);
}

static inline int key_bw(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    int r = cmp_i64(c->rows[a].bandwidth, c->rows[b].bandwidth);
    return r ? r : key_ts(c, pool, a, b);
}

static inline int key_dur(const customer_t *c, const string_pool_t *pool, uint32_t a, uint32_t b) {
    int r = cmp_i64(c->rows[a].duration_ms, c->rows[b].duration_ms);
    return r ? r : key_ts(c, pool, a, b);
}

static inline int cmp_reversed(const char *a, uint32_t alen, const char *b, uint32_t blen) {
    uint32_t n = alen < blen ? alen : blen;
    int r = memcmp(a, b, n);
    return r ? r : (alen < blen ? -1 : alen > blen);
}

/* ---------------------------------------------------------------- catalog_index.c ---- */

/* The customer with this id, or NULL. */
customer_t *catalog_index_customer(const catalog_t *cat, const char *id);
/* The customer with this id, added (empty) when new; NULL when out of memory or the id is
 * longer than STORE_ID_MAX. */
customer_t *catalog_index_add_customer(catalog_t *cat, const char *id);
/* Frees the customer, its rows and arrays, and releases its strings from the pool. */
void catalog_index_free_customer(customer_t *c, string_pool_t *pool);
/* Row number of the session with this id, or -1. */
int64_t catalog_index_row(const customer_t *c, const uint8_t id[16]);
/* Index of the zone with this name in c->zones, or -1. */
int64_t catalog_index_zone(const customer_t *c, const string_pool_t *pool, const char *name);
/* Inserts or replaces one session (the record is copied; its strings are interned). A new
 * row is indexed at once unless `defer` is set or earlier rows are waiting; then it waits,
 * invisible to queries, for catalog_index_finish. 0, -EINVAL (unparseable id) or -ENOMEM
 * (then the customer may be marked broken: rebuilt by the next finish). */
int catalog_index_put(customer_t *c, string_pool_t *pool, const session_record_t *rec, bool defer);
/* Brings the arrays up to date with the rows (waiting rows, or a rebuild after a failure).
 * 0 or -ENOMEM (the customer stays broken). */
int catalog_index_finish(customer_t *c, const string_pool_t *pool);
/* Stores the number of rows of all customers in cat->total_rows. */
void catalog_index_recount(catalog_t *cat);

/* ---------------------------------------------------------------- catalog_query.c ---- */

typedef struct {
    uint32_t *rows; /* the page, in order */
    uint32_t count;
    uint64_t total;
} page_t;

/* Runs q over this customer's indexed rows: pg gets the total and the page's rows, in order.
 * pg->rows points into per-thread scratch memory, valid until this thread's next query.
 * 0 or -ENOMEM. */
/* Row r as a session_record_t that borrows the pool's strings (nothing to free). */
void catalog_index_row_view(const customer_t *c, const string_pool_t *pool, uint32_t r, session_record_t *view);
int catalog_query_run(const customer_t *c, const string_pool_t *pool, const session_query_t *q, page_t *pg);
/* A run of n row numbers (borrowed for the call). */
typedef void (*catalog_span_fn)(void *ctx, const uint32_t *rows, uint32_t n);
/* Calls fn for runs of row numbers that are, together, every indexed row matching q's filters,
 * each once, in no particular order (limit, offset and sort do not apply). The runs point into
 * the customer's arrays or this thread's scratch memory. 0 or -ENOMEM. */
int catalog_query_matches(const customer_t *c, const string_pool_t *pool, const session_query_t *q,
                          catalog_span_fn fn, void *ctx);
/* For tests: a candidate set's bitmap is built when it is at most `factor` times the size of
 * the set enumerated (default 16); 0 makes every query check rows instead. Not thread-safe:
 * set it while no query runs. */
void catalog_query_set_filter_budget(uint64_t factor);

#endif
