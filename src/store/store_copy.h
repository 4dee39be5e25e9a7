/* Copying one store into another: `browserd db copy` (docs/store.md, "db copy"). Built on
 * store.h's stores; the backends provide the reading of the source and the staging into the
 * destination (store_internal.h).
 *
 * Ownership: everything passed is borrowed for the call. */
#ifndef BROWSERD_STORE_STORE_COPY_H
#define BROWSERD_STORE_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* ---- copying one store into another (`browserd db copy`) ----
 * Everything of `from` (customers, keys with their hashes, zones with their salts, hashes and
 * upstreams, sessions with their workers and save times) goes into `to` in one final
 * transaction: all or nothing. The sessions are first staged in `to` in chunks, each chunk
 * committed with a progress mark under `source_id` (the identity of the source: a run that
 * was interrupted and is started again with the same id continues after the last chunk). A
 * row of `to` with the same identity as one of `from` (customer id, key id, (customer, zone),
 * (customer, session id)) is kept when its content is the same, and refused (-EEXIST, the row
 * named in err, nothing written, the staging dropped) when it differs. Sessions get new seqs
 * of `to` in the source's seq order. -ENOTSUP when `from` cannot be read whole or `to`
 * cannot stage (only PostgreSQL can be a destination). */
typedef struct {
    int64_t customers, keys, zones, sessions;  /* read from the source */
    int64_t customers_new, keys_new, zones_new, sessions_new; /* written (the rest were there) */
    int64_t resumed;                           /* sessions an earlier run had staged already */
} store_copy_stats_t;
/* Called after each staged chunk and once at the end; total is the source's session count. */
typedef void (*store_copy_progress)(void *ctx, int64_t staged, int64_t total);
/* chunk: sessions staged per transaction (0: STORE_COPY_CHUNK). */
#define STORE_COPY_CHUNK 5000
int store_copy(store_t *from, store_t *to, const char *source_id, size_t chunk, store_copy_progress progress,
               void *ctx, store_copy_stats_t *stats, char *err, size_t err_cap);

#endif
