/* Events between processes over PostgreSQL's LISTEN/NOTIFY, and what the listener lets this
 * process keep in memory (docs/store.md, "Notifications").
 *
 * The listener is a thread of its own with a connection of its own (a connection in LISTEN
 * is never lent to an operation). It listens on a fixed set of channels: browserd_changes
 * (every commit that wrote sessions, payload its last seq), browserd_keys (a key added or
 * revoked, payload its id) and the topics browserd_kill and browserd_killed (store_publish:
 * channel "browserd_" + topic). It blocks in poll() on the connection's socket and an eventfd
 * (events_stop), with a timeout after which it checks that the server still answers; on a
 * lost connection it reports it, reconnects with a backoff (100 ms doubling to 5 s), listens
 * again, reports the connection back and a change at the current counter (one may have been
 * missed while away).
 *
 * While LISTEN holds (`listening`), two per-request answers come from memory:
 * - change_seq: the highest seq notified, read right after LISTEN, or committed by this
 *   process; stale by at most a notification's delivery time.
 * - key_authenticate: a direct-mapped cache of answers (found or not) for at most
 *   PG_KEY_CACHE_TTL_MS, dropped whole on any browserd_keys notification, on this process's
 *   own key writes, and whenever the listener is down (then every call asks the database). A
 *   revoked key thus stops working at once where the notification arrives, and within the
 *   TTL even where it is lost. */
#include "core/log.h"
#include "store/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL_PREFIX "browserd_"
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
/* Silence after which the listener asks the server whether it is still there. */
#define IDLE_CHECK_MS 5000

static const char *const CHANNELS[] = {"browserd_changes", "browserd_keys", "browserd_kill", "browserd_killed"};

static pg_db_t *pg_db(store_db_t *db) { return (pg_db_t *)db; }

/* The cache's clock: monotonic, so that a wall clock set back cannot lengthen an answer's life. */
static int64_t mono_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- memory: the seq seen, the key cache ---- */

void store_pg_seen_seq(pg_db_t *d, int64_t seq) {
    int64_t cur = atomic_load(&d->seen_seq);
    while (seq > cur && !atomic_compare_exchange_weak(&d->seen_seq, &cur, seq)) {
    }
}

static pg_key_slot_t *slot_of(pg_db_t *d, const uint8_t hash[STORE_HASH_LEN]) {
    /* The hash is SHA-256: its first bytes are already uniform. */
    uint32_t h = (uint32_t)hash[0] | (uint32_t)hash[1] << 8 | (uint32_t)hash[2] << 16 | (uint32_t)hash[3] << 24;
    return &d->keys[h % PG_KEY_CACHE_SLOTS];
}

int store_pg_key_cache_lookup(pg_db_t *d, const uint8_t hash[STORE_HASH_LEN], int *rc,
                              char customer[STORE_ID_MAX + 1]) {
    if (!atomic_load(&d->listening)) return 0;
    int hit = 0;
    pthread_mutex_lock(&d->ev_lock);
    pg_key_slot_t *s = slot_of(d, hash);
    if (s->used && s->expires_ms > mono_ms() && memcmp(s->hash, hash, STORE_HASH_LEN) == 0) {
        hit = 1;
        *rc = s->found ? 0 : -ENOENT;
        if (s->found) memcpy(customer, s->customer, sizeof s->customer);
    }
    pthread_mutex_unlock(&d->ev_lock);
    return hit;
}

uint64_t store_pg_key_cache_generation(pg_db_t *d) { return atomic_load(&d->key_generation); }

void store_pg_key_cache_put(pg_db_t *d, uint64_t generation, const uint8_t hash[STORE_HASH_LEN], int rc,
                            const char *customer) {
    if ((rc != 0 && rc != -ENOENT) || !atomic_load(&d->listening)) return;
    pthread_mutex_lock(&d->ev_lock);
    /* Under the lock, so that a drop between this check and the store cannot be missed. */
    if (atomic_load(&d->key_generation) == generation) {
        pg_key_slot_t *s = slot_of(d, hash);
        memcpy(s->hash, hash, STORE_HASH_LEN);
        s->used = true;
        s->found = rc == 0;
        snprintf(s->customer, sizeof s->customer, "%s", rc == 0 ? customer : "");
        s->expires_ms = mono_ms() + PG_KEY_CACHE_TTL_MS;
    }
    pthread_mutex_unlock(&d->ev_lock);
}

void store_pg_key_cache_drop(pg_db_t *d) {
    pthread_mutex_lock(&d->ev_lock);
    atomic_fetch_add(&d->key_generation, 1);
    for (size_t i = 0; i < PG_KEY_CACHE_SLOTS; i++) d->keys[i].used = false;
    pthread_mutex_unlock(&d->ev_lock);
}

/* ---- the listener's connection ---- */

/* A connection that listens on every channel, and the counter read after LISTEN (so that no
 * commit between the two is missed: it is in the counter or in a notification). */
static PGconn *listen_connect(pg_db_t *d, int64_t *seq, char *err, size_t err_cap) {
    PGconn *conn = store_pg_connect(d, err, err_cap);
    if (!conn) return NULL;
    char sql[256] = "";
    for (size_t i = 0; i < sizeof CHANNELS / sizeof CHANNELS[0]; i++) {
        size_t used = strlen(sql);
        snprintf(sql + used, sizeof sql - used, "LISTEN %s; ", CHANNELS[i]);
    }
    PGresult *r = PQexec(conn, sql);
    int rc = store_pg_result_code(conn, r, err, err_cap);
    PQclear(r);
    if (rc == 0) {
        r = PQexec(conn, "SELECT value FROM meta WHERE name = 'change_seq'");
        rc = store_pg_result_code(conn, r, err, err_cap);
        if (rc == 0 && PQntuples(r) != 1) {
            store_set_err(err, err_cap, "meta row change_seq is missing");
            rc = -EIO;
        }
        if (rc == 0) *seq = store_pg_int(r, 0, 0);
        PQclear(r);
    }
    if (rc != 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* From here on the memory is current: every later commit arrives as a notification. */
static void went_up(pg_db_t *d, int64_t seq) {
    store_pg_seen_seq(d, seq);
    store_pg_key_cache_drop(d); /* a key may have been revoked while nobody listened */
    atomic_store(&d->listening, true);
}

static void went_down(pg_db_t *d) {
    atomic_store(&d->listening, false);
    store_pg_key_cache_drop(d);
}

/* One notification: the seq of a change, a key write, or a topic's message. */
static void deliver(pg_db_t *d, const PGnotify *n) {
    const char *topic = n->relname;
    if (strncmp(topic, CHANNEL_PREFIX, strlen(CHANNEL_PREFIX)) == 0) topic += strlen(CHANNEL_PREFIX);
    if (strcmp(topic, "changes") == 0) {
        int64_t seq = strtoll(n->extra, NULL, 10);
        store_pg_seen_seq(d, seq);
        if (d->ev.on_change) d->ev.on_change(d->ev_ctx, seq);
        return;
    }
    if (strcmp(topic, "keys") == 0) store_pg_key_cache_drop(d);
    if (d->ev.on_message) d->ev.on_message(d->ev_ctx, topic, n->extra);
}

/* Waits up to ms for the socket or the wake-up: 1 readable, 0 timeout, -1 stop asked. */
static int wait_for(pg_db_t *d, int sock, int ms) {
    struct pollfd fds[2] = {{.fd = d->ev_wake, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
    int n = poll(fds, sock >= 0 ? 2 : 1, ms);
    if (atomic_load(&d->ev_stop) || (n > 0 && fds[0].revents)) return -1;
    return n > 0 ? 1 : 0;
}

/* Serves the connection until it is lost (0) or a stop is asked (-1). */
static int serve(pg_db_t *d) {
    PGconn *conn = d->ev_conn;
    for (;;) {
        int w = wait_for(d, PQsocket(conn), IDLE_CHECK_MS);
        if (w < 0) return -1;
        if (w == 0) {
            /* Silence: is the server still there? (A dead peer does not always close.) */
            PGresult *r = PQexec(conn, "SELECT 1");
            bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            PQclear(r);
            if (!ok) return 0;
        } else if (!PQconsumeInput(conn)) {
            return 0;
        }
        for (PGnotify *n; (n = PQnotifies(conn));) {
            deliver(d, n);
            PQfreemem(n);
        }
        if (PQstatus(conn) != CONNECTION_OK) return 0;
    }
}

static void *listener_main(void *arg) {
    pg_db_t *d = arg;
    for (;;) {
        if (serve(d) < 0) break;
        went_down(d);
        PQfinish(d->ev_conn);
        d->ev_conn = NULL;
        if (d->ev.on_connection) d->ev.on_connection(d->ev_ctx, false);
        log_event(LOG_WARN, "store", "listener_lost", "db=%s", d->redacted);
        int64_t seq = 0;
        for (int backoff = BACKOFF_FIRST_MS; !d->ev_conn;) {
            if (wait_for(d, -1, backoff) < 0) return NULL;
            d->ev_conn = listen_connect(d, &seq, NULL, 0);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        }
        went_up(d, seq);
        log_event(LOG_INFO, "store", "listener_back", "db=%s", d->redacted);
        if (d->ev.on_connection) d->ev.on_connection(d->ev_ctx, true);
        if (d->ev.on_change) d->ev.on_change(d->ev_ctx, atomic_load(&d->seen_seq));
    }
    return NULL;
}

/* ---- start, stop, publish ---- */

int store_pg_events_start(store_db_t *db, const store_events_t *events, void *ctx, char *err, size_t err_cap) {
    pg_db_t *d = pg_db(db);
    pthread_mutex_lock(&d->ev_lock);
    bool started = d->ev_started;
    pthread_mutex_unlock(&d->ev_lock);
    if (started) {
        store_set_err(err, err_cap, "the listener runs already");
        return -EALREADY;
    }
    /* The first connection is made here, so that the caller learns of a failure, and the
     * memory is current from the return on. */
    int64_t seq = 0;
    PGconn *conn = listen_connect(d, &seq, err, err_cap);
    if (!conn) return -EIO;
    int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) {
        PQfinish(conn);
        store_set_err(err, err_cap, "eventfd: %s", strerror(errno));
        return -EIO;
    }
    d->ev_conn = conn;
    d->ev_wake = wake;
    d->ev = events ? *events : (store_events_t){0};
    d->ev_ctx = ctx;
    atomic_store(&d->ev_stop, false);
    went_up(d, seq);
    int rc = pthread_create(&d->ev_thread, NULL, listener_main, d);
    if (rc != 0) {
        went_down(d);
        PQfinish(conn);
        close(wake);
        d->ev_conn = NULL;
        d->ev_wake = -1;
        store_set_err(err, err_cap, "cannot start the listener thread: %s", strerror(rc));
        return -rc;
    }
    pthread_mutex_lock(&d->ev_lock);
    d->ev_started = true;
    pthread_mutex_unlock(&d->ev_lock);
    return 0;
}

void store_pg_events_stop(store_db_t *db) {
    pg_db_t *d = pg_db(db);
    pthread_mutex_lock(&d->ev_lock);
    bool started = d->ev_started;
    d->ev_started = false;
    pthread_mutex_unlock(&d->ev_lock);
    if (!started) return;
    atomic_store(&d->ev_stop, true);
    uint64_t one = 1;
    ssize_t w = write(d->ev_wake, &one, sizeof one);
    (void)w; /* the flag is read after every poll: the write only shortens the wait */
    pthread_join(d->ev_thread, NULL);
    went_down(d);
    PQfinish(d->ev_conn);
    d->ev_conn = NULL;
    close(d->ev_wake);
    d->ev_wake = -1;
}

int store_pg_publish(store_db_t *db, const char *topic, const char *payload, char *err, size_t err_cap) {
    pg_params_t p = {0};
    store_pg_param_text(&p, topic);
    store_pg_param_text(&p, payload);
    pg_conn_t *c = store_pg_conn(db, err, err_cap);
    return c ? store_pg_exec(c, PSTMT_PUBLISH, &p, NULL, err, err_cap) : -EIO;
}
