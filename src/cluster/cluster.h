/* This process as a node of browserd: its lease in the store, the orphans of dead nodes, the
 * spool's flushes, other nodes' changes and ending a session wherever it runs.
 *
 * A node runs sessions under its node id (their worker in the store) and holds a lease on it:
 * cluster_start takes it (a dead process of this host that held it is taken over), ends the
 * sessions its previous life or dead workers left running, then renews it every lease/3. Every
 * node also reaps: a node whose lease ran out has its running sessions failed with
 * worker_disconnect. With an events-capable store (PostgreSQL: LISTEN/NOTIFY) the node hears
 * every other node's writes (its catalog follows at once) and its requests to end sessions.
 * See docs/cluster.md for the design, the guarantees and the failure cases.
 *
 * Threading: loop thread (store work goes to worker threads), but cluster_start, which blocks
 * (it runs before the loop). Ownership: store, catalog and spool are borrowed and must outlive
 * the cluster_t; strings of the config are copied. */
#ifndef BROWSERD_CLUSTER_CLUSTER_H
#define BROWSERD_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "catalog/catalog.h"
#include "store/store.h"
#include "store/store_spool.h"

typedef struct cluster cluster_t;

/* Ends a session of this customer if it runs in this process: 0, or -ENOENT. Loop thread. */
typedef int (*cluster_end_local_fn)(void *ctx, const char *customer_id, const uint8_t id[16]);
/* How cluster_end_session turned out (the codes of api.h's api_end_done_fn). */
typedef void (*cluster_end_done_fn)(void *arg, int rc);

typedef struct {
    uv_loop_t *loop;
    store_t *store;
    catalog_t *catalog;
    store_spool_t *spool;        /* may be NULL */
    const char *node_id;         /* this node (default: the host name) */
    int64_t lease_ms;            /* default 30 s: a dead node's sessions fail within it */
    uint64_t forward_timeout_ms; /* waiting for another node to end a session; default 5 s */
    /* Ends sessions of this process (the gateway); NULL: none run here. */
    cluster_end_local_fn end_local;
    void *end_local_ctx;
} cluster_config_t;

/* Takes the lease (blocking) and fails the orphans, then starts the node's timers and, where
 * the store has them, its events. 0, or a negative errno with a reason (-EBUSY: a live
 * process holds the node id). */
int cluster_start(const cluster_config_t *cfg, cluster_t **out, char *err, size_t err_cap);

/* The node id in force (the config's, or the host name). */
const char *cluster_node_id(const cluster_t *c);
/* Sets (or replaces) how sessions of this process are ended (the gateway exists only after the
 * node has started). */
void cluster_set_end_local(cluster_t *c, cluster_end_local_fn fn, void *ctx);

/* Ends the session, here or on the node that runs it (a request to it through the store's
 * events, answered within forward_timeout_ms), or in the store itself when the node that ran
 * it is dead; calls done(arg, rc) on the loop thread: 0 ended, -EALREADY not running, -ENOENT
 * unknown, -ETIMEDOUT or -EIO out of reach. */
void cluster_end_session(cluster_t *c, const char *customer_id, const uint8_t id[16], cluster_end_done_fn done,
                         void *arg);

/* Whether the store answered the node's last attempt (lease, events). */
bool cluster_store_up(const cluster_t *c);

/* Stops the timers and events (requests waiting for another node get -EIO); done(arg) when
 * nothing of the cluster runs any more. Then cluster_release_lease (blocking; once nothing of
 * the node runs sessions) and cluster_free. */
void cluster_stop(cluster_t *c, void (*done)(void *arg), void *arg);
void cluster_release_lease(cluster_t *c);
void cluster_free(cluster_t *c);

#endif
