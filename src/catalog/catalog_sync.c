/* The catalog's sync from the store: see catalog_sync.h. */
#include "catalog/catalog_sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_internal.h"

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

static int sync_store(catalog_t *c, store_t *s);

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
        customer_t *cust = catalog_index_add_customer(c, b->items[i].customer);
        int rc = cust ? catalog_index_put(cust, &c->pool, &b->items[i].rec, defer) : -ENOMEM;
        if (rc < 0 && b->rc == 0 && rc != -EINVAL) b->rc = rc;
    }
    catalog_index_recount(c);
    pthread_rwlock_unlock(&c->lock);
    for (size_t i = 0; i < b->n; i++) session_record_free(&b->items[i].rec);
    b->n = 0;
}

static int finish_all(catalog_t *c) {
    int rc = 0;
    pthread_rwlock_wrlock(&c->lock);
    for (uint32_t i = 0; i < c->ncustomers; i++) {
        int r = catalog_index_finish(c->customers[i], &c->pool);
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

void catalog_sync_follow_spool(catalog_t *c, store_spool_t *sp) { c->spool = sp; }

static int put_spooled(void *ctx, const char *customer, const session_record_t *rec) {
    catalog_t *c = ctx;
    customer_t *cust = catalog_index_add_customer(c, customer);
    int rc = cust ? catalog_index_put(cust, &c->pool, rec, false) : -ENOMEM;
    if (cust) {
        int rb = catalog_index_finish(cust, &c->pool);
        if (rc == 0) rc = rb;
    }
    return rc == -EINVAL ? 0 : rc; /* a record the catalog cannot index is skipped, as in a sync */
}

/* The spool's records over the store's (see catalog_sync_follow_spool). Also when nothing
 * changed in the store: a save may have put its record in the catalog and then in the spool
 * while a sync applied the store's older row in between. */
static int overlay_spool(catalog_t *c) {
    if (!c->spool || store_spool_pending(c->spool) == 0) return 0;
    pthread_rwlock_wrlock(&c->lock);
    int rc = store_spool_visit(c->spool, put_spooled, c);
    catalog_index_recount(c);
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

int catalog_sync(catalog_t *c, store_t *s) {
    int rc = sync_store(c, s);
    int ro = overlay_spool(c);
    return rc ? rc : ro;
}

static int sync_store(catalog_t *c, store_t *s) {
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
