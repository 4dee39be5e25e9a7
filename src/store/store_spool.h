/* The spool: session records kept in a local file while the store cannot take them (the
 * database away, a network between), written to the store when it can again. So a session
 * that ends while PostgreSQL is down is not lost, and is written once: saves are upserts by
 * session, and the spool keeps them in the order they were made.
 *
 * While anything waits in the spool, every save goes to the spool too (behind what waits), so
 * that an older record flushed later can never overwrite a newer one. A record is kept once
 * store_spool_save returned 0: in the store, or in the file (written and fdatasync'ed), or,
 * when the file cannot take it either (the disk full), in memory only: flushed like the
 * others, lost only if browserd stops before (logged: write_failed kept=memory); the records
 * the file missed are appended at the next save it can take.
 * store_spool_flush writes what waits, latest record of each session, in one store
 * transaction, and empties the file only once that committed.
 *
 * The file: one line per record, a JSON object of browserd's own (millisecond timestamps,
 * unlike the API's output). A spool opened on a file that holds records (a crash, or a stop
 * with the database away) flushes them like any others; a last line without its newline (an
 * append cut short: nothing acknowledged) is cut off with a warning.
 *
 * Threading: every function blocks (disk, the store) and runs on worker threads; a mutex
 * makes concurrent calls safe. Ownership: the records given are borrowed for the call. */
#ifndef BROWSERD_STORE_STORE_SPOOL_H
#define BROWSERD_STORE_STORE_SPOOL_H

#include <stddef.h>

#include "store/store.h"

typedef struct store_spool store_spool_t;

/* Opens (creating, mode 0600) the spool file at path and reads what it holds. 0, or a
 * negative errno with a reason (a line that is no record: -EINVAL naming its number). */
int store_spool_open(const char *path, store_spool_t **out, char *err, size_t err_cap);
void store_spool_close(store_spool_t *sp);

/* Saves the records through the store (store_sessions_save), or, when the store cannot be
 * reached (-EIO) or records already wait, appends them to the spool. 0 when they are kept (see
 * above); the store's other errors (-EINVAL, -ENOENT) as they are; -ENOMEM. */
int store_spool_save(store_spool_t *sp, store_t *s, const store_session_write_t *items, size_t n, const char *worker);

/* Writes what waits to the store and empties the spool. 0 (also when nothing waits), or the
 * store's error (what waits stays). *written: records written (may be NULL). */
int store_spool_flush(store_spool_t *sp, store_t *s, size_t *written);

/* Records waiting now. */
size_t store_spool_pending(store_spool_t *sp);

/* Calls fn for every record waiting, in the order they were saved (so the last call for a
 * session has its latest record), until fn returns non-zero (returned). The records are
 * borrowed for the call. It does not wait for a flush or a save stuck on the store (a lock
 * of its own): a reader of the records (the catalog) may call it from any thread. */
typedef int (*store_spool_visit_fn)(void *ctx, const char *customer, const session_record_t *rec);
int store_spool_visit(store_spool_t *sp, store_spool_visit_fn fn, void *ctx);

#endif
