/* The catalog follows the store: catalog_sync applies every change the store's change feed
 * (store_sessions_since) has that the catalog has not applied yet, including changes made by
 * other processes (`browserd sessions import` while `serve` runs).
 *
 * Ownership: both the catalog and the store are borrowed for the call; records are copied.
 * Threading: like every catalog function, safe from several worker threads at once (concurrent
 * syncs wait for one another; queries go on meanwhile, on the state before the sync, except
 * while a batch is applied); never from the event-loop thread (a first load takes seconds). */
#ifndef BROWSERD_CATALOG_CATALOG_SYNC_H
#define BROWSERD_CATALOG_CATALOG_SYNC_H

#include "catalog/catalog.h"
#include "store/store.h"
#include "store/store_spool.h"

/* Applies every store change newer than the last one applied. Cheap when there is none
 * (one store_change_seq call). 0, or a negative errno of the store or -ENOMEM; what was
 * applied before a failure stays applied, and the next sync tries the rest again. */
int catalog_sync(catalog_t *c, store_t *s);

/* The records waiting in this spool (borrowed; it must outlive the catalog's syncs) are newer
 * than the store's rows of their sessions (while anything waits, every save goes to the spool
 * first): every catalog_sync puts them back over what it applied from the store, so that an
 * ended session never shows its older running row while the database is away, locked or
 * full. Called once, before the catalog is shared. */
void catalog_sync_follow_spool(catalog_t *c, store_spool_t *sp);

#endif
