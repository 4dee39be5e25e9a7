/* The durable store: customers, API keys, zones, sessions. One interface, two backends
 * (SQLite now; PostgreSQL next, selected by a "postgres://" or "postgresql://" --db value).
 *
 * Threading: every function blocks (disk, network) and so is called from worker threads or
 * from the command line, never from the event-loop thread. A store_t is safe to use from
 * several threads at once: the backend keeps one connection per calling thread (or a pool).
 *
 * Errors: functions return 0 on success or a negative errno-style code:
 *   -ENOENT  the named customer/key/zone/session does not exist
 *   -EEXIST  it exists already
 *   -EINVAL  bad argument (the message says which)
 *   -EIO     the database failed (the message says how)
 *   -ENOMEM  out of memory
 * Where a function takes `err`/`err_cap`, a human-readable reason is written there on failure.
 *
 * Change feed: every insert or update of a session gets a new, strictly increasing `seq`
 * (store-wide). The in-memory catalog follows the store by asking for sessions whose seq is
 * above the last one it applied; this is also how changes made by other processes (the
 * `sessions import` command while `serve` runs) become visible. */
#ifndef BROWSERD_STORE_STORE_H
#define BROWSERD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session/record.h"

typedef struct store store_t;

#define STORE_ID_MAX 32        /* customer ids: [a-z0-9_]{1,32} */
#define STORE_API_KEY_LEN 64   /* API keys: 64 lowercase hex characters (32 random bytes) */
#define STORE_KEY_ID_LEN 16    /* key ids: "key_" + 12 lowercase hex */
#define STORE_PASSWORD_LEN 24  /* zone passwords: 24 characters [a-z0-9] */
#define STORE_ZONE_MAX 64      /* zone names: [a-z0-9_]{1,64} */

/* Opens (creating if needed) and migrates the database to the current schema version.
 * `target` is a file path for SQLite; a libpq URI ("postgresql://…" or "postgres://…") names
 * a PostgreSQL database, which this build refuses with -EINVAL. On failure *out is NULL. */
int store_open(const char *target, store_t **out, char *err, size_t err_cap);
void store_close(store_t *s);

/* True when `id` is a valid customer id ([a-z0-9_]{1,32}); likewise for zone names. */
bool store_valid_customer_id(const char *id);
bool store_valid_zone_name(const char *zone);

/* ---- customers ---- */
int store_customer_add(store_t *s, const char *customer_id, char *err, size_t err_cap);
/* 0 when it exists, -ENOENT when not. */
int store_customer_exists(store_t *s, const char *customer_id);
/* Number of customers (to detect a fresh database). */
int store_customer_count(store_t *s, int64_t *count);

/* ---- API keys (stored as SHA-256 hashes; the key itself is shown once) ---- */
typedef struct {
    char key_id[STORE_KEY_ID_LEN + 1];
    int64_t created_ms;
    bool revoked;
} store_key_info_t;

/* Creates a key for an existing customer; writes it (NUL-terminated) to key_out. */
int store_key_add(store_t *s, const char *customer_id, char key_out[STORE_API_KEY_LEN + 1],
                  char key_id_out[STORE_KEY_ID_LEN + 1], char *err, size_t err_cap);
/* *out is malloc'ed (caller frees), oldest first. */
int store_key_list(store_t *s, const char *customer_id, store_key_info_t **out, size_t *count);
int store_key_revoke(store_t *s, const char *key_id);
/* Authenticates a presented API key: 0 and the owning customer id, or -ENOENT when the key
 * is unknown or revoked. Constant-time in the key's content. */
int store_key_authenticate(store_t *s, const char *api_key, size_t key_len,
                           char customer_out[STORE_ID_MAX + 1]);

/* ---- zones (a customer's Browser API names; the password is stored salted and hashed) ---- */
int store_zone_add(store_t *s, const char *customer_id, const char *zone,
                   char password_out[STORE_PASSWORD_LEN + 1], char *err, size_t err_cap);
/* 0 when customer, zone and password match; -ENOENT for an unknown customer or zone;
 * -EACCES for a wrong password. Constant-time in the password's content. */
int store_zone_check(store_t *s, const char *customer_id, const char *zone, const char *password);
/* The same check; on success also copies the zone's upstream proxy URL ("" when it has none). */
int store_zone_authorize(store_t *s, const char *customer_id, const char *zone, const char *password,
                         char *upstream, size_t upstream_cap);
/* Sets (url) or clears (NULL or "") the upstream proxy of a zone: its sessions' traffic then
 * goes through it. The URL is stored as given (it carries credentials browserd must send).
 * -ENOENT for an unknown customer or zone. */
int store_zone_set_upstream(store_t *s, const char *customer_id, const char *zone, const char *url);

/* ---- sessions ---- */
/* Imports sessions for one existing customer in one transaction: all or nothing.
 * `next` is called repeatedly to produce the records: it fills *rec (which the store frees
 * after use) and returns 1, returns 0 at the end, or returns -1 with a reason in err (the
 * import is then rolled back and -EINVAL returned). A session_id already present for this
 * customer (case-insensitively, in the store or earlier in the same import) fails the import
 * with -EEXIST and the id in err. On success *imported is the number of records. */
typedef int (*store_record_source)(void *ctx, session_record_t *rec, char *err, size_t err_cap);
int store_sessions_import(store_t *s, const char *customer_id, store_record_source next, void *ctx,
                          int64_t *imported, char *err, size_t err_cap);
/* Inserts or replaces one session, as not run by any browserd process (worker NULL). */
int store_session_put(store_t *s, const char *customer_id, const session_record_t *rec);

/* Inserts or replaces a session that the browserd process `worker` runs (the gateway saves
 * live sessions this way, every few seconds while they run: the save time is the last time
 * the session was known alive). worker may be NULL. */
int store_session_save(store_t *s, const char *customer_id, const session_record_t *rec, const char *worker);

/* At start: every session still recorded as running by a browserd process (imported
 * sessions are not) ended with that process. Marks them failed with worker_disconnect, their
 * duration up to their last save. *failed: how many. */
int store_sessions_fail_orphans(store_t *s, int64_t *failed);

/* Largest seq so far (0 for an empty store). Cheap: meant to be called per request. */
int store_change_seq(store_t *s, int64_t *seq);

/* Calls `cb` for every session whose seq is > after_seq, in seq order, with the owning
 * customer. The record is borrowed for the duration of the call. Returns the last seq
 * delivered in *last_seq (after_seq when none). A non-zero return of cb stops and is
 * returned. */
typedef int (*store_session_cb)(void *ctx, const char *customer_id, const session_record_t *rec);
int store_sessions_since(store_t *s, int64_t after_seq, int64_t *last_seq, store_session_cb cb, void *ctx);

#endif
