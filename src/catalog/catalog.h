/* The catalog: an in-memory, read-optimised index of every session, per customer, that
 * answers the list and get queries of the API with exact totals in O(log n) for the common
 * shapes (see docs/catalog.md). The store stays the durable record; the catalog follows it
 * through the store's change feed (catalog_sync, in catalog_sync.h). Lists are catalog_query.h's.
 *
 * Ownership: the catalog owns copies of everything put into it; arguments are borrowed for
 * the call; the views handed to a catalog_row_fn are borrowed from the catalog (see there).
 *
 * Threading: all functions are safe to call from several worker threads at once; queries
 * share a read lock, changes take the write lock. Never call from the event-loop thread
 * (a sync can take seconds on a large first load). */
#ifndef BROWSERD_CATALOG_CATALOG_H
#define BROWSERD_CATALOG_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "session/record.h"

typedef struct catalog catalog_t;

/* An empty catalog, or NULL when out of memory. */
catalog_t *catalog_new(void);
void catalog_free(catalog_t *c);

/* Inserts a session or replaces the one with the same id (case-insensitive) of the same
 * customer. The record is copied. 0 or -ENOMEM / -EINVAL (unparseable id). */
int catalog_put(catalog_t *c, const char *customer_id, const session_record_t *rec);

/* What a list found: `count` rows visited (the page), of `total` that match the filters. */
typedef struct {
    uint32_t count;
    uint64_t total;
} catalog_page_info_t;

/* Called for each row a list or get visits. `view` and every string it points to are
 * borrowed from the catalog and valid only during the call, which runs under the catalog's
 * read lock (so it must not call catalog_put or catalog_sync). Returns 0 to go on, or a
 * negative errno that stops the visit and is returned by catalog_list / catalog_get. */
typedef int (*catalog_row_fn)(void *ctx, const session_record_t *view);

/* Calls fn(ctx, view) for the session with this id (16 bytes: any case of its text finds it).
 * 0, -ENOENT when this customer has no such session, or fn's error. */
int catalog_get(catalog_t *c, const char *customer_id, const uint8_t id[16], catalog_row_fn fn, void *ctx);

/* Number of sessions held, all customers (for /healthz and logs). */
size_t catalog_size(catalog_t *c);

#endif
