/* The SQLite backend's operations on nodes and their leases, on the orphans they leave, and
 * on single sessions a dead node cannot end itself (store_internal.h states what each must
 * do). The statements are in sqlite_store.c's table, like every other. */
#include "store/sqlite_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/uuid.h"

/* A session to fail, collected before failing: updating rows while the statement that lists
 * them is still running would change what it lists. */
typedef struct {
    char customer[STORE_ID_MAX + 1];
    char key[UUID_TEXT_LEN + 1];
} orphan_t;

typedef struct {
    orphan_t *v;
    size_t n, cap;
} orphans_t;

/* Appends every (customer, key) row `list` (bound by the caller) yields, then resets it. */
static int collect_orphans(store_conn_t *c, sqlite3_stmt *list, orphans_t *o, char *err, size_t err_cap) {
    int rc, result = 0;
    while ((rc = sqlite3_step(list)) == SQLITE_ROW) {
        if (o->n == o->cap) {
            size_t cap = o->cap ? o->cap * 2 : 16;
            orphan_t *grown = realloc(o->v, cap * sizeof *grown);
            if (!grown) {
                store_set_err(err, err_cap, "out of memory");
                result = -ENOMEM;
                break;
            }
            o->v = grown;
            o->cap = cap;
        }
        snprintf(o->v[o->n].customer, sizeof o->v[o->n].customer, "%s", (const char *)sqlite3_column_text(list, 0));
        snprintf(o->v[o->n].key, sizeof o->v[o->n].key, "%s", (const char *)sqlite3_column_text(list, 1));
        o->n++;
    }
    if (result == 0 && rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(list);
    return result;
}

/* Fails the collected sessions as worker_disconnect, each with a new seq (in the caller's
 * transaction). */
static int fail_orphans(store_conn_t *c, const orphans_t *o, char *err, size_t err_cap) {
    sqlite3_stmt *fail = store_sqlite_stmt(c, STMT_ORPHAN_FAIL, err, err_cap);
    sqlite3_stmt *next_seq = store_sqlite_stmt(c, STMT_CHANGE_SEQ_NEXT, err, err_cap);
    if (!fail || !next_seq) return -EIO;
    int result = 0;
    for (size_t i = 0; result == 0 && i < o->n; i++) {
        int64_t seq = 0;
        if ((result = store_sqlite_next_seq(c, next_seq, &seq, err, err_cap)) != 0) break;
        sqlite3_bind_text(fail, 1, o->v[i].customer, -1, SQLITE_STATIC);
        sqlite3_bind_text(fail, 2, o->v[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(fail, 3, STORE_ORPHAN_MESSAGE, -1, SQLITE_STATIC);
        sqlite3_bind_int64(fail, 4, seq);
        result = store_sqlite_step_done(c, fail, err, err_cap);
        sqlite3_reset(fail);
    }
    return result;
}

int store_sqlite_sessions_fail_orphans(store_db_t *db, const char *node_id, int64_t *failed, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *list = store_sqlite_stmt(c, STMT_ORPHANS, err, err_cap);
    if (!list || store_sqlite_tx_begin(c, err, err_cap) != 0) return -EIO;
    orphans_t o = {0};
    sqlite3_bind_text(list, 1, node_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(list, 2, time_now_ms());
    int result = collect_orphans(c, list, &o, err, err_cap);
    if (result == 0) result = fail_orphans(c, &o, err, err_cap);
    result = store_sqlite_tx_end(c, result, err, err_cap);
    if (result == 0) *failed = (int64_t)o.n;
    free(o.v);
    return result;
}

static void copy_column(sqlite3_stmt *st, int col, char *out, size_t cap) {
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

int store_sqlite_node_register(store_db_t *db, const char *node_id, const char *host, int pid, int64_t lease_ms,
                         bool take_over, char *holder_host, int *holder_pid, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *get = store_sqlite_stmt(c, STMT_NODE_GET, err, err_cap);
    sqlite3_stmt *put = store_sqlite_stmt(c, STMT_NODE_PUT, err, err_cap);
    if (!get || !put || store_sqlite_tx_begin(c, err, err_cap) != 0) return -EIO;
    int64_t now = time_now_ms();
    int result = 0;
    sqlite3_bind_text(get, 1, node_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(get);
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(get, 0);
        int p = sqlite3_column_int(get, 1);
        bool same = p == pid && h && strcmp(h, host) == 0;
        if (!same && !take_over && sqlite3_column_int64(get, 2) > now) {
            copy_column(get, 0, holder_host, STORE_NODE_ID_MAX + 1);
            *holder_pid = p;
            result = -EBUSY;
        }
    } else if (rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(get);
    if (result == 0) {
        sqlite3_bind_text(put, 1, node_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(put, 2, host, -1, SQLITE_STATIC);
        sqlite3_bind_int(put, 3, pid);
        sqlite3_bind_int64(put, 4, now);
        sqlite3_bind_int64(put, 5, now + lease_ms);
        result = store_sqlite_write_step(c, put, err, err_cap);
    }
    return store_sqlite_tx_end(c, result, err, err_cap);
}

int store_sqlite_node_heartbeat(store_db_t *db, const char *node_id, int pid, int64_t lease_ms, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_NODE_HEARTBEAT, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, pid);
    sqlite3_bind_int64(st, 3, time_now_ms() + lease_ms);
    int result = store_sqlite_write_step(c, st, err, err_cap);
    if (result == 0 && sqlite3_changes(c->db) == 0) result = -ENOENT;
    return result;
}

int store_sqlite_node_release(store_db_t *db, const char *node_id, int pid, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_NODE_DELETE, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, pid);
    return store_sqlite_write_step(c, st, err, err_cap);
}

int store_sqlite_nodes_reap(store_db_t *db, int64_t *nodes, int64_t *failed, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *expired = store_sqlite_stmt(c, STMT_NODES_EXPIRED, err, err_cap);
    sqlite3_stmt *running = store_sqlite_stmt(c, STMT_WORKER_RUNNING, err, err_cap);
    sqlite3_stmt *del = store_sqlite_stmt(c, STMT_NODE_DELETE_EXPIRED, err, err_cap);
    if (!expired || !running || !del || store_sqlite_tx_begin(c, err, err_cap) != 0) return -EIO;
    int64_t now = time_now_ms();
    /* The dead nodes first (few), then each one's running sessions, collected before any
     * row changes under the statements that list them. */
    typedef char node_id_t[STORE_NODE_ID_MAX + 1];
    node_id_t *dead = NULL;
    size_t ndead = 0, cap = 0;
    orphans_t o = {0};
    int rc, result = 0;
    sqlite3_bind_int64(expired, 1, now);
    while (result == 0 && (rc = sqlite3_step(expired)) == SQLITE_ROW) {
        if (ndead == cap) {
            cap = cap ? cap * 2 : 8;
            node_id_t *grown = realloc(dead, cap * sizeof *grown);
            if (!grown) {
                store_set_err(err, err_cap, "out of memory");
                result = -ENOMEM;
                break;
            }
            dead = grown;
        }
        copy_column(expired, 0, dead[ndead++], sizeof *dead);
    }
    if (result == 0 && rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(expired);
    for (size_t i = 0; result == 0 && i < ndead; i++) {
        sqlite3_bind_text(running, 1, dead[i], -1, SQLITE_STATIC);
        result = collect_orphans(c, running, &o, err, err_cap);
    }
    if (result == 0) result = fail_orphans(c, &o, err, err_cap);
    for (size_t i = 0; result == 0 && i < ndead; i++) {
        sqlite3_bind_text(del, 1, dead[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(del, 2, now);
        result = store_sqlite_write_step(c, del, err, err_cap);
    }
    result = store_sqlite_tx_end(c, result, err, err_cap);
    if (result == 0) {
        *nodes = (int64_t)ndead;
        *failed = (int64_t)o.n;
    }
    free(dead);
    free(o.v);
    return result;
}

int store_sqlite_session_owner(store_db_t *db, const char *customer_id, const char *session_key, session_status_t *status,
                         char *worker, bool *worker_alive, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_SESSION_OWNER, err, err_cap) : NULL;
    if (!st) return -EIO;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, session_key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, time_now_ms());
    int rc = sqlite3_step(st), result = -ENOENT;
    if (rc == SQLITE_ROW) {
        int st_val = sqlite3_column_int(st, 0);
        *status = st_val >= 0 && st_val < SESSION_STATUS_COUNT ? (session_status_t)st_val : SESSION_FAILED;
        copy_column(st, 1, worker, STORE_NODE_ID_MAX + 1);
        *worker_alive = sqlite3_column_int(st, 2) != 0;
        result = 0;
    } else if (rc != SQLITE_DONE) {
        store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
        result = -EIO;
    }
    sqlite3_reset(st);
    return result;
}

int store_sqlite_session_end(store_db_t *db, const char *customer_id, const char *session_key, const char *code,
                       const char *message, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    if (!c) return -EIO;
    sqlite3_stmt *end = store_sqlite_stmt(c, STMT_SESSION_END, err, err_cap);
    sqlite3_stmt *next_seq = store_sqlite_stmt(c, STMT_CHANGE_SEQ_NEXT, err, err_cap);
    sqlite3_stmt *owner = store_sqlite_stmt(c, STMT_SESSION_OWNER, err, err_cap);
    if (!end || !next_seq || !owner || store_sqlite_tx_begin(c, err, err_cap) != 0) return -EIO;
    int64_t seq = 0;
    int result = store_sqlite_next_seq(c, next_seq, &seq, err, err_cap);
    if (result == 0) {
        sqlite3_bind_text(end, 1, customer_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(end, 2, session_key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(end, 3, time_now_ms());
        sqlite3_bind_text(end, 4, code, -1, SQLITE_STATIC);
        sqlite3_bind_text(end, 5, message, -1, SQLITE_STATIC);
        sqlite3_bind_int64(end, 6, seq);
        result = store_sqlite_write_step(c, end, err, err_cap);
    }
    if (result == 0 && sqlite3_changes(c->db) == 0) {
        /* nothing ended: no such session, or not running (the seq taken is given back) */
        session_status_t status;
        char worker[STORE_NODE_ID_MAX + 1];
        bool alive;
        result = store_sqlite_session_owner(db, customer_id, session_key, &status, worker, &alive, err, err_cap);
        if (result == 0) result = -EALREADY;
    }
    return store_sqlite_tx_end(c, result, err, err_cap);
}

int store_sqlite_ping(store_db_t *db, char *err, size_t err_cap) {
    store_conn_t *c = store_sqlite_conn(db, err, err_cap);
    sqlite3_stmt *st = c ? store_sqlite_stmt(c, STMT_PING, err, err_cap) : NULL;
    if (!st) return -EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) store_set_err(err, err_cap, "%s", sqlite3_errmsg(c->db));
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

