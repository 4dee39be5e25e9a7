/* The catalog's public functions (catalog.h): construction, single changes, lists and gets,
 * each under the catalog's lock, but for lists (catalog_query.c, by catalog_query.h). The
 * index is catalog_index.c, the sync from the store catalog_sync.c; catalog_internal.h describes how
 * they fit, docs/catalog.md why. */
#include "catalog/catalog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_internal.h"
#include "core/uuid.h"

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
    for (uint32_t i = 0; i < c->ncustomers; i++) catalog_index_free_customer(c->customers[i], &c->pool);
    free(c->customers);
    string_pool_free(&c->pool);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->sync_lock);
    free(c);
}

int catalog_put(catalog_t *c, const char *customer_id, const session_record_t *rec) {
    pthread_rwlock_wrlock(&c->lock);
    customer_t *cust = catalog_index_add_customer(c, customer_id);
    int rc = cust ? catalog_index_put(cust, &c->pool, rec, false) : -ENOMEM;
    if (cust) {
        int rb = catalog_index_finish(cust, &c->pool);
        if (rc == 0) rc = rb;
    }
    catalog_index_recount(c);
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

size_t catalog_size(catalog_t *c) { return atomic_load(&c->total_rows); }

int catalog_get(catalog_t *c, const char *customer_id, const uint8_t id[16], catalog_row_fn fn, void *ctx) {
    int rc = -ENOENT;
    pthread_rwlock_rdlock(&c->lock);
    const customer_t *cust = catalog_index_customer(c, customer_id);
    int64_t r = cust ? catalog_index_row(cust, id) : -1;
    if (r >= 0) {
        session_record_t view;
        catalog_index_row_view(cust, &c->pool, (uint32_t)r, &view);
        rc = fn(ctx, &view);
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}
