/* The catalog: an in-memory, read-optimised index of every session, per customer, that
 * answers the list and get queries of the API with exact totals in O(log n) for the common
 * shapes (see docs/catalog.md). The store stays the durable record; the catalog follows it
 * through the store's change feed (catalog_sync).
 *
 * Threading: all functions are safe to call from several worker threads at once; queries
 * share a read lock, changes take the write lock. Never call from the event-loop thread
 * (a sync can take seconds on a large first load). */
#ifndef BROWSERD_CATALOG_CATALOG_H
#define BROWSERD_CATALOG_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "session/session_query.h"
#include "core/buf.h"
#include "session/record.h"
#include "store/store.h"

typedef struct catalog catalog_t;

catalog_t *catalog_new(void);
void catalog_free(catalog_t *c);

/* Inserts a session or replaces the one with the same id (case-insensitive) of the same
 * customer. The record is copied. 0 or -ENOMEM / -EINVAL (unparseable id). */
int catalog_put(catalog_t *c, const char *customer_id, const session_record_t *rec);

/* Applies every store change newer than the last one applied. Cheap when there is none
 * (one store_change_seq call). Concurrent callers wait for one another. */
int catalog_sync(catalog_t *c, store_t *s);

/* Appends the 200 body of GET /browser_sessions for this customer to `out`:
 * {"sessions":[...],"count":N,"total":T,"pagination":{...}}. 0 or -ENOMEM. */
int catalog_list_json(catalog_t *c, const char *customer_id, const session_query_t *q, buf_t *out);

/* Appends {"session":{...}} for the session with this id (16 bytes, case folded by parsing).
 * 0, or -ENOENT when this customer has no such session. */
int catalog_get_json(catalog_t *c, const char *customer_id, const uint8_t id[16], buf_t *out);

/* Number of sessions held, all customers (for /healthz and logs). */
size_t catalog_size(catalog_t *c);

#endif
