/* The node: see cluster.h and docs/cluster.md.
 *
 * One timer ticks (at most every second, at least three times per lease); each tick hands
 * the work that is due to a worker thread, one job at a time: renew the lease, reap dead
 * nodes, flush the spool. The store's events arrive on its listener thread and are queued for
 * the loop (uv_async): a change starts a catalog sync on a worker thread (one at a time, the
 * next one after it when more came meanwhile); a request to end a session that runs here is
 * carried out on the loop and answered through the store; an answer completes the request
 * this node waits for.
 *
 * Messages (store_publish; node ids hold no spaces, customers and session ids neither):
 *   kill    "<request> <origin node> <target node> <customer> <session id>"
 *   killed  "<request> <origin node> <result>"       (result: 0 or a negative errno) */
#include "core/log.h"
#include "cluster/cluster.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog_sync.h"
#include "core/timeutil.h"
#include "core/uuid.h"

#define MAX_TICK_MS 1000
#define KILL_MESSAGE_MAX 400

typedef struct message {
    struct message *next;
    char topic[16];
    char payload[];
} message_t;

/* A DELETE waiting for the node that runs the session. */
typedef struct pending_kill {
    struct pending_kill *next;
    cluster_t *c;
    uint64_t request;
    uv_timer_t timer;
    cluster_end_done_fn done;
    void *arg;
    bool answered;
} pending_kill_t;

struct cluster {
    cluster_config_t cfg;
    char node_id[STORE_NODE_ID_MAX + 1];
    char host[STORE_NODE_ID_MAX + 1];
    int pid;
    uv_timer_t tick;
    uv_async_t wake;
    int handles_open;
    bool events_on;
    bool stopping;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
    int jobs; /* worker jobs in flight */

    /* the periodic work */
    bool tick_running;
    int64_t next_heartbeat_ms, next_reap_ms;
    _Atomic bool store_up;

    /* what the listener thread hands over */
    pthread_mutex_t lock;
    message_t *inbox_head, *inbox_tail;
    _Atomic bool changed;
    bool sync_running, sync_again;

    pending_kill_t *pending;
    uint64_t next_request;
};

static void maybe_stopped(cluster_t *c) {
    if (!c->stopping || c->jobs > 0 || c->handles_open > 0 || c->pending || !c->on_stopped) return;
    void (*done)(void *) = c->on_stopped;
    c->on_stopped = NULL;
    done(c->stopped_arg);
}

/* ---------------------------------------------------------------- worker jobs ---- */

typedef struct {
    uv_work_t work;
    cluster_t *c;
    void (*run)(cluster_t *c, void *arg);      /* worker thread */
    void (*after)(cluster_t *c, void *arg);    /* loop thread; may be NULL */
    void *arg;
} job_t;

static void job_work(uv_work_t *w) {
    job_t *j = w->data;
    j->run(j->c, j->arg);
}

static void job_done(uv_work_t *w, int status) {
    job_t *j = w->data;
    cluster_t *c = j->c;
    (void)status;
    if (j->after) j->after(c, j->arg);
    free(j);
    c->jobs--;
    maybe_stopped(c);
}

/* 0, or -ENOMEM / libuv's error (then neither function runs: the caller cleans up). */
static int run_job(cluster_t *c, void (*run)(cluster_t *, void *), void (*after)(cluster_t *, void *), void *arg) {
    job_t *j = calloc(1, sizeof *j);
    if (!j) return -ENOMEM;
    *j = (job_t){.c = c, .run = run, .after = after, .arg = arg};
    j->work.data = j;
    int rc = uv_queue_work(c->cfg.loop, &j->work, job_work, job_done);
    if (rc != 0) {
        free(j);
        return rc;
    }
    c->jobs++;
    return 0;
}

/* ---------------------------------------------------------------- the lease ---- */

/* Takes the node id; a holder on this host whose process is gone is taken over. */
static int take_lease(cluster_t *c, char *err, size_t err_cap) {
    char holder[STORE_NODE_ID_MAX + 1] = "";
    int holder_pid = 0;
    int rc = store_node_register(c->cfg.store, c->node_id, c->host, c->pid, c->cfg.lease_ms, false, holder,
                                 &holder_pid, err, err_cap);
    if (rc == -EBUSY && strcmp(holder, c->host) == 0 && holder_pid > 0 && kill(holder_pid, 0) != 0 &&
        errno == ESRCH) {
        log_event(LOG_WARN, "cluster", "lease_taken_over", "node=%s dead_pid=%d", c->node_id, holder_pid);
        rc = store_node_register(c->cfg.store, c->node_id, c->host, c->pid, c->cfg.lease_ms, true, holder,
                                 &holder_pid, err, err_cap);
    }
    return rc;
}

typedef struct {
    bool heartbeat, reap, flush;
} tick_work_t;

static void tick_run(cluster_t *c, void *arg) {
    tick_work_t *t = arg;
    store_t *s = c->cfg.store;
    if (t->heartbeat) {
        int rc = store_node_heartbeat(s, c->node_id, c->pid, c->cfg.lease_ms);
        if (rc == -ENOENT) {
            /* The lease ran out (the database was away longer than it) and another node
             * reaped this one, or another process took the id: take it back; the sessions
             * still running here save their true records over what the reaper wrote. */
            char err[256] = "";
            char holder[STORE_NODE_ID_MAX + 1];
            int holder_pid;
            log_event(LOG_WARN, "cluster", "lease_lost", "node=%s", c->node_id);
            rc = store_node_register(s, c->node_id, c->host, c->pid, c->cfg.lease_ms, true, holder, &holder_pid,
                                     err, sizeof err);
        }
        atomic_store(&c->store_up, rc == 0);
    }
    if (t->reap) {
        int64_t nodes = 0, failed = 0;
        if (store_nodes_reap(s, &nodes, &failed) == 0 && nodes > 0)
            log_event(LOG_WARN, "cluster", "nodes_reaped", "nodes=%lld sessions_failed=%lld reason=worker_disconnect",
                    (long long)nodes, (long long)failed);
    }
    if (t->flush && c->cfg.spool) store_spool_flush(c->cfg.spool, s, NULL);
}

static void tick_after(cluster_t *c, void *arg) {
    free(arg);
    c->tick_running = false;
}

static void on_tick(uv_timer_t *timer) {
    cluster_t *c = timer->data;
    if (c->tick_running || c->stopping) return;
    int64_t now = time_now_ms();
    tick_work_t *t = calloc(1, sizeof *t);
    if (!t) return;
    t->heartbeat = now >= c->next_heartbeat_ms;
    t->reap = now >= c->next_reap_ms;
    t->flush = c->cfg.spool && store_spool_pending(c->cfg.spool) > 0;
    if (!t->heartbeat && !t->reap && !t->flush) {
        free(t);
        return;
    }
    if (t->heartbeat) c->next_heartbeat_ms = now + c->cfg.lease_ms / 3;
    if (t->reap) c->next_reap_ms = now + c->cfg.lease_ms / 3;
    if (run_job(c, tick_run, tick_after, t) == 0) c->tick_running = true;
    else free(t);
}

/* ---------------------------------------------------------------- catalog sync ---- */

static void sync_run(cluster_t *c, void *arg) {
    (void)arg;
    catalog_sync(c->cfg.catalog, c->cfg.store);
}

static void start_sync(cluster_t *c);

static void sync_after(cluster_t *c, void *arg) {
    (void)arg;
    c->sync_running = false;
    if (c->sync_again) start_sync(c);
}

static void start_sync(cluster_t *c) {
    if (c->sync_running) {
        c->sync_again = true;
        return;
    }
    c->sync_again = false;
    if (!c->stopping && run_job(c, sync_run, sync_after, NULL) == 0) c->sync_running = true;
}

/* ---------------------------------------------------------------- messages ---- */

typedef struct {
    char topic[16];
    char payload[KILL_MESSAGE_MAX];
} publish_t;

static void publish_run(cluster_t *c, void *arg) {
    publish_t *p = arg;
    int rc = store_publish(c->cfg.store, p->topic, p->payload);
    if (rc < 0) log_event(LOG_ERROR, "cluster", "publish_failed", "topic=%s error=%s", p->topic, strerror(-rc));
}

static void free_arg(cluster_t *c, void *arg) {
    (void)c;
    free(arg);
}

static int publish_later(cluster_t *c, const char *topic, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int publish_later(cluster_t *c, const char *topic, const char *fmt, ...) {
    publish_t *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->payload, sizeof p->payload, fmt, ap);
    va_end(ap);
    int rc = run_job(c, publish_run, free_arg, p);
    if (rc < 0) free(p);
    return rc;
}

/* A request from another node to end a session: carried out here if it runs here. */
static void on_kill(cluster_t *c, const char *payload) {
    unsigned long long request;
    char origin[STORE_NODE_ID_MAX + 1], target[STORE_NODE_ID_MAX + 1], customer[STORE_ID_MAX + 1], sid[40];
    if (sscanf(payload, "%llu %128s %128s %32s %39s", &request, origin, target, customer, sid) != 5 ||
        strcmp(target, c->node_id) != 0)
        return;
    uint8_t id[16];
    int rc = -ENOENT;
    if (uuid_parse(sid, strlen(sid), id) == 0 && c->cfg.end_local)
        rc = c->cfg.end_local(c->cfg.end_local_ctx, customer, id);
    log_event(LOG_INFO, "cluster", "remote_end", "session=%s customer=%s from=%s result=%d", sid, customer, origin, rc);
    publish_later(c, "killed", "%llu %s %d", request, origin, rc == 0 ? 0 : -EALREADY);
}

static void on_pending_closed(uv_handle_t *h) {
    pending_kill_t *p = h->data;
    cluster_t *c = p->c;
    free(p);
    maybe_stopped(c);
}

/* Answers a waiting DELETE once and forgets it. */
static void pending_finish(pending_kill_t *p, int rc) {
    cluster_t *c = p->c;
    for (pending_kill_t **q = &c->pending; *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    p->done(p->arg, rc);
    uv_close((uv_handle_t *)&p->timer, on_pending_closed);
}

static void on_killed(cluster_t *c, const char *payload) {
    unsigned long long request;
    char origin[STORE_NODE_ID_MAX + 1];
    int rc;
    if (sscanf(payload, "%llu %128s %d", &request, origin, &rc) != 3 || strcmp(origin, c->node_id) != 0) return;
    for (pending_kill_t *p = c->pending; p; p = p->next)
        if (p->request == request) {
            pending_finish(p, rc);
            return;
        }
}

static void on_wake(uv_async_t *async) {
    cluster_t *c = async->data;
    pthread_mutex_lock(&c->lock);
    message_t *m = c->inbox_head;
    c->inbox_head = c->inbox_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    while (m) {
        message_t *next = m->next;
        if (!c->stopping) {
            if (strcmp(m->topic, "kill") == 0) on_kill(c, m->payload);
            else if (strcmp(m->topic, "killed") == 0) on_killed(c, m->payload);
        }
        free(m);
        m = next;
    }
    if (atomic_exchange(&c->changed, false)) start_sync(c);
}

/* ---- the store's listener thread ---- */

static void ev_change(void *ctx, int64_t seq) {
    cluster_t *c = ctx;
    (void)seq;
    atomic_store(&c->changed, true);
    uv_async_send(&c->wake);
}

static void ev_message(void *ctx, const char *topic, const char *payload) {
    cluster_t *c = ctx;
    if (strcmp(topic, "kill") != 0 && strcmp(topic, "killed") != 0) return;
    size_t n = strlen(payload);
    message_t *m = malloc(sizeof *m + n + 1);
    if (!m) return; /* a lost request times out at its origin */
    m->next = NULL;
    snprintf(m->topic, sizeof m->topic, "%s", topic);
    memcpy(m->payload, payload, n + 1);
    pthread_mutex_lock(&c->lock);
    if (c->inbox_tail) c->inbox_tail->next = m;
    else c->inbox_head = m;
    c->inbox_tail = m;
    pthread_mutex_unlock(&c->lock);
    uv_async_send(&c->wake);
}

static void ev_connection(void *ctx, bool up) {
    cluster_t *c = ctx;
    atomic_store(&c->store_up, up);
    fprintf(stderr, "event=%s node=%s\n", up ? "store_events_up" : "store_events_down", c->node_id);
}

/* ---------------------------------------------------------------- ending sessions ---- */

typedef struct {
    char customer[STORE_ID_MAX + 1];
    char sid[UUID_TEXT_LEN + 1];
    cluster_end_done_fn done;
    void *arg;
    int rc;            /* the answer, or 1: ask the node that runs it */
    char owner[STORE_NODE_ID_MAX + 1];
} end_t;

static void end_run(cluster_t *c, void *arg) {
    end_t *e = arg;
    session_status_t status;
    bool alive;
    int rc = store_session_owner(c->cfg.store, e->customer, e->sid, &status, e->owner, &alive);
    if (rc == 0 && status != SESSION_RUNNING) rc = -EALREADY;
    else if (rc == 0 && (!e->owner[0] || strcmp(e->owner, c->node_id) == 0))
        rc = -EALREADY; /* imported as running, or ending here already */
    else if (rc == 0 && alive)
        rc = 1;
    else if (rc == 0) /* its node is dead: nobody else can end it */
        rc = store_session_end(c->cfg.store, e->customer, e->sid, "job_killed",
                               "the session was ended through the API (its node had stopped)");
    e->rc = rc;
}

static void on_forward_timeout(uv_timer_t *t) {
    pending_kill_t *p = t->data;
    log_event(LOG_WARN, "cluster", "remote_end_timeout", "request=%llu", (unsigned long long)p->request);
    pending_finish(p, -ETIMEDOUT);
}

static void end_after(cluster_t *c, void *arg) {
    end_t *e = arg;
    if (e->rc != 1 || c->stopping) {
        e->done(e->arg, e->rc == 1 ? -EIO : e->rc);
        free(e);
        return;
    }
    if (!c->events_on) { /* no way to reach the node that runs it */
        e->done(e->arg, -EIO);
        free(e);
        return;
    }
    pending_kill_t *p = calloc(1, sizeof *p);
    if (!p || publish_later(c, "kill", "%llu %s %s %s %s", (unsigned long long)(c->next_request + 1), c->node_id,
                            e->owner, e->customer, e->sid) < 0) {
        free(p);
        e->done(e->arg, -EIO);
        free(e);
        return;
    }
    p->c = c;
    p->request = ++c->next_request;
    p->done = e->done;
    p->arg = e->arg;
    uv_timer_init(c->cfg.loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_forward_timeout, c->cfg.forward_timeout_ms, 0);
    p->next = c->pending;
    c->pending = p;
    free(e);
}

void cluster_end_session(cluster_t *c, const char *customer_id, const uint8_t id[16], cluster_end_done_fn done,
                         void *arg) {
    if (c->cfg.end_local && c->cfg.end_local(c->cfg.end_local_ctx, customer_id, id) == 0) {
        done(arg, 0);
        return;
    }
    end_t *e = calloc(1, sizeof *e);
    if (!e) {
        done(arg, -EIO);
        return;
    }
    snprintf(e->customer, sizeof e->customer, "%s", customer_id);
    uuid_format(id, e->sid);
    e->done = done;
    e->arg = arg;
    if (c->stopping || run_job(c, end_run, end_after, e) < 0) {
        free(e);
        done(arg, -EIO);
    }
}

/* ---------------------------------------------------------------- life ---- */

int cluster_start(const cluster_config_t *cfg, cluster_t **out, char *err, size_t err_cap) {
    *out = NULL;
    cluster_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    c->cfg = *cfg;
    if (c->cfg.lease_ms <= 0) c->cfg.lease_ms = 30000;
    if (!c->cfg.forward_timeout_ms) c->cfg.forward_timeout_ms = 5000;
    gethostname(c->host, sizeof c->host - 1);
    snprintf(c->node_id, sizeof c->node_id, "%s", cfg->node_id && *cfg->node_id ? cfg->node_id : c->host);
    c->cfg.node_id = c->node_id;
    c->pid = (int)getpid();
    pthread_mutex_init(&c->lock, NULL);
    int rc = take_lease(c, err, err_cap);
    if (rc < 0) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return rc;
    }
    atomic_store(&c->store_up, true);
    int64_t orphans = 0;
    if (store_sessions_fail_orphans(c->cfg.store, c->node_id, &orphans) == 0 && orphans > 0)
        log_event(LOG_WARN, "cluster", "orphans_failed", "sessions=%lld reason=worker_disconnect", (long long)orphans);
    uv_timer_init(c->cfg.loop, &c->tick);
    uv_async_init(c->cfg.loop, &c->wake, on_wake);
    c->tick.data = c->wake.data = c;
    c->handles_open = 2;
    int64_t now = time_now_ms();
    c->next_heartbeat_ms = now + c->cfg.lease_ms / 3;
    /* Reaping starts a little later on each node, so that nodes started together do not all
     * reap at the same moments. */
    c->next_reap_ms = now + c->cfg.lease_ms / 3 + (int64_t)(c->pid % 997);
    uint64_t tick = (uint64_t)(c->cfg.lease_ms / 3 < MAX_TICK_MS ? c->cfg.lease_ms / 3 : MAX_TICK_MS);
    uv_timer_start(&c->tick, on_tick, tick, tick);
    static const store_events_t events = {ev_change, ev_message, ev_connection};
    rc = store_events_start(c->cfg.store, &events, c);
    c->events_on = rc == 0;
    if (rc < 0 && rc != -ENOTSUP)
        log_event(LOG_ERROR, "cluster", "store_events_failed", "node=%s error=%s", c->node_id, strerror(-rc));
    log_event(LOG_INFO, "cluster", "node_started", "node=%s lease_ms=%lld events=%s", c->node_id, (long long)c->cfg.lease_ms,
            c->events_on ? "on" : "off");
    *out = c;
    return 0;
}

const char *cluster_node_id(const cluster_t *c) { return c->node_id; }

void cluster_set_end_local(cluster_t *c, cluster_end_local_fn fn, void *ctx) {
    c->cfg.end_local = fn;
    c->cfg.end_local_ctx = ctx;
}

bool cluster_store_up(const cluster_t *c) { return atomic_load(&((cluster_t *)c)->store_up); }

static void on_handle_closed(uv_handle_t *h) {
    cluster_t *c = h->data;
    c->handles_open--;
    maybe_stopped(c);
}

void cluster_stop(cluster_t *c, void (*done)(void *arg), void *arg) {
    c->stopping = true;
    c->on_stopped = done;
    c->stopped_arg = arg;
    if (c->events_on) store_events_stop(c->cfg.store); /* joins the listener: no callback after it */
    c->events_on = false;
    while (c->pending) pending_finish(c->pending, -EIO);
    uv_close((uv_handle_t *)&c->tick, on_handle_closed);
    uv_close((uv_handle_t *)&c->wake, on_handle_closed);
}

void cluster_release_lease(cluster_t *c) {
    if (c->cfg.spool && store_spool_pending(c->cfg.spool) > 0) store_spool_flush(c->cfg.spool, c->cfg.store, NULL);
    store_node_release(c->cfg.store, c->node_id, c->pid);
}

void cluster_free(cluster_t *c) {
    if (!c) return;
    message_t *m = c->inbox_head;
    while (m) {
        message_t *next = m->next;
        free(m);
        m = next;
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}
