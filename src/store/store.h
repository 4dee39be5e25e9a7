/* The durable store: customers, API keys, zones, sessions. One interface, two backends
 * (SQLite, selected by a file path; PostgreSQL, by a "postgres://" or "postgresql://" --db value:
 * docs/store.md).
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

#include "core/metrics.h"
#include "session/record.h"

typedef struct store store_t;

#define STORE_ID_MAX 32        /* customer ids: [a-z0-9_]{1,32} */
#define STORE_API_KEY_LEN 64   /* API keys: 64 lowercase hex characters (32 random bytes) */
#define STORE_KEY_ID_LEN 16    /* key ids: "key_" + 12 lowercase hex */
#define STORE_PASSWORD_LEN 24  /* zone passwords: 24 characters [a-z0-9] */
#define STORE_ZONE_MAX 64      /* zone names: [a-z0-9_]{1,64} */

/* Opens (creating if needed) and migrates the database to the current schema version.
 * `target` is a file path for SQLite; a libpq URI ("postgresql://…" or "postgres://…", every
 * form libpq takes: hosts, ports, query parameters) names a PostgreSQL database, which must
 * exist (its tables are created). Messages name the target without its password. On failure
 * *out is NULL. */
int store_open(const char *target, store_t **out, char *err, size_t err_cap);
void store_close(store_t *s);

/* True when target names a PostgreSQL database (a libpq URI) rather than a SQLite file. */
bool store_target_is_postgres(const char *target);
/* `target` as it may be shown (logs, messages): a libpq URI with its password (in the user
 * part, or a password= parameter) replaced by ***; a file path as it is. Always terminated
 * (cut at out_cap). Returns out. */
char *store_uri_redact(const char *target, char *out, size_t out_cap);

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
/* The same; on -EEXIST, *refused (when not NULL) is the index (0-based, in the order `next`
 * produced them) of the record refused, -1 otherwise. A backend may read every record before
 * it finds the duplicate (PostgreSQL copies them all first), so the caller cannot take the
 * last record it produced for the one refused. */
int store_sessions_import_at(store_t *s, const char *customer_id, store_record_source next, void *ctx,
                             int64_t *imported, int64_t *refused, char *err, size_t err_cap);
/* Inserts or replaces one session, as not run by any browserd process (worker NULL). */
int store_session_put(store_t *s, const char *customer_id, const session_record_t *rec);

/* Inserts or replaces a session that the browserd process `worker` runs (the gateway saves
 * live sessions this way, every few seconds while they run: the save time is the last time
 * the session was known alive). worker may be NULL. */
int store_session_save(store_t *s, const char *customer_id, const session_record_t *rec, const char *worker);

/* Saves n sessions as store_session_save does, all run by `worker`, in one transaction (all
 * or nothing), each with its own seq in array order: a node writing many records at once
 * pays one commit for them. items[i].rec is borrowed. 0, -EINVAL (a record fails the checks:
 * nothing is written), -ENOENT (an unknown customer: nothing is written) or -EIO. */
typedef struct {
    const char *customer_id;
    const session_record_t *rec;
} store_session_write_t;
int store_sessions_save(store_t *s, const store_session_write_t *items, size_t n, const char *worker);
/* For GET /metrics: the duration of every store_sessions_save that reached the backend (a
 * batch is one sample), and how many of them failed. Any thread. */
const metric_histogram_t *store_write_latency(const store_t *s);
uint64_t store_write_failures(const store_t *s);

/* ---- nodes: the browserd processes that run sessions, each holding a lease ----
 * A node's sessions carry its node id as their worker. The node renews its lease (heartbeat)
 * well within lease_ms; a node whose lease ran out is dead: any other node reaps it (its
 * running sessions become failed with worker_disconnect). */
#define STORE_NODE_ID_MAX 128

/* Takes the lease of node_id for this process (host, pid) until now + lease_ms. -EBUSY when
 * another process holds a lease of that id that has not run out: its host and pid are copied
 * out (holder_host: STORE_NODE_ID_MAX + 1 bytes), so that a caller on the same host can tell a
 * live holder from a dead one and then take it over with take_over set (the dead holder's
 * lease is replaced). */
int store_node_register(store_t *s, const char *node_id, const char *host, int pid, int64_t lease_ms, bool take_over,
                        char *holder_host, int *holder_pid, char *err, size_t err_cap);
/* Renews the lease until now + lease_ms. -ENOENT when this process holds it no longer (it ran
 * out and another node reaped it, or another process took it over). */
int store_node_heartbeat(store_t *s, const char *node_id, int pid, int64_t lease_ms);
/* Gives the lease up (a clean stop: nothing of the node runs any more). */
int store_node_release(store_t *s, const char *node_id, int pid);
/* Every node whose lease ran out: its running sessions become failed with worker_disconnect
 * (duration up to their last save), its lease is removed; one transaction. *nodes and *failed:
 * how many (either may be NULL). */
int store_nodes_reap(store_t *s, int64_t *nodes, int64_t *failed);

/* At start, once the node's lease is held: every session still recorded as running by this
 * node (its previous life) or by a worker that holds no live lease (a process that ended, a
 * worker id of an older browserd) ended with it. Imported sessions (no worker) are not
 * orphans; sessions of live nodes are theirs. Marks them failed with worker_disconnect, their
 * duration up to their last save. *failed: how many. */
int store_sessions_fail_orphans(store_t *s, const char *node_id, int64_t *failed);

/* Who runs a session: 0 with its status, its worker (STORE_NODE_ID_MAX + 1 bytes; "" when
 * none) and whether that worker holds a live lease; -ENOENT when this customer has no such
 * session (session_id: 36 characters, any case). */
int store_session_owner(store_t *s, const char *customer_id, const char *session_id, session_status_t *status,
                        char *worker, bool *worker_alive);
/* Ends a running session in the store itself (its worker is dead and cannot): failed with
 * code and message, duration up to now, worker cleared, a new seq. -ENOENT when there is no
 * such session, -EALREADY when it is not running. */
int store_session_end(store_t *s, const char *customer_id, const char *session_id, const char *code,
                      const char *message);

/* ---- events between processes (PostgreSQL: LISTEN/NOTIFY; SQLite has none: -ENOTSUP) ----
 * The callbacks run on a thread of the store's own (the listener); they must not block and
 * must not call back into the store. */
typedef struct {
    /* A session write committed with this seq, by any process (several may be folded). */
    void (*on_change)(void *ctx, int64_t seq);
    /* A message published with store_publish by any process (this one too). Borrowed. */
    void (*on_message)(void *ctx, const char *topic, const char *payload);
    /* The listener lost (false) or regained (true) the database. */
    void (*on_connection)(void *ctx, bool up);
} store_events_t;
/* Starts the listener. 0, -ENOTSUP (the backend has no events), or another negative errno. */
int store_events_start(store_t *s, const store_events_t *events, void *ctx);
/* Stops it; no callback runs after this returns. */
void store_events_stop(store_t *s);
/* Sends payload (at most 7000 bytes) to every listener of topic ([a-z_]{1,40}). 0, -ENOTSUP,
 * -EINVAL, -EIO. */
int store_publish(store_t *s, const char *topic, const char *payload);

/* Whether the database answers now (a trivial round trip): 0 or -EIO. */
int store_ping(store_t *s);

/* Largest seq so far (0 for an empty store). Cheap: meant to be called per request.
 * PostgreSQL, while the listener runs (store_events_start): answered from memory, the highest
 * seq notified, read once after LISTEN, or written by this process; a commit of another
 * process shows once its notification arrived (sub-millisecond on loopback). */
int store_change_seq(store_t *s, int64_t *seq);

/* Calls `cb` for every session whose seq is > after_seq, in seq order, with the owning
 * customer. The record is borrowed for the duration of the call. Returns the last seq
 * delivered in *last_seq (after_seq when none). A non-zero return of cb stops and is
 * returned. */
typedef int (*store_session_cb)(void *ctx, const char *customer_id, const session_record_t *rec);
int store_sessions_since(store_t *s, int64_t after_seq, int64_t *last_seq, store_session_cb cb, void *ctx);

#endif
