/* Lists of the catalog: the page of GET /browser_sessions, found by the query engine of
 * catalog_query.c (docs/catalog.md: candidate sets, exact totals, paging).
 *
 * Ownership and threading: as catalog.h (worker threads; q borrowed; the views handed to fn
 * are borrowed from the catalog for the call, under its read lock). */
#ifndef BROWSERD_CATALOG_CATALOG_QUERY_H
#define BROWSERD_CATALOG_CATALOG_QUERY_H

#include "catalog/catalog.h"
#include "session/session_query.h"

/* Calls fn(ctx, view) for each row of the page of this customer's sessions that q selects
 * (filters, sort, offset, limit), in order, and sets *info. q is borrowed. A customer
 * without sessions has none: 0 with count = total = 0. 0, -ENOMEM, or fn's error (then
 * *info is not set). */
int catalog_list(catalog_t *c, const char *customer_id, const session_query_t *q, catalog_row_fn fn, void *ctx,
                 catalog_page_info_t *info);

#endif
