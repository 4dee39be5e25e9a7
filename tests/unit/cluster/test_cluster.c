/* The node (src/cluster/cluster.c) on a real SQLite store: its lease, the orphans it ends at
 * start, the reaping of dead nodes, ending a session wherever it is, and the release of the
 * lease. Other nodes are stood in for by leases written through store.h (another host, a live
 * or a dead pid), as another browserd process would write them. The loop runs in a thread of
 * its own. Events between nodes need PostgreSQL: the cluster tests of tests/cluster cover
 * them with real nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "../support/loop_thread.h"

#define WAIT_SECONDS 10

typedef struct {
    loop_thread_t lt;
    char dir[64], db[128];
    store_t *store;
    catalog_t *catalog;
    cluster_t *cluster;
    bool stopped;
    /* what end_local was asked, and what it answers */
    int local_rc, local_calls;
    /* the answer of cluster_end_session */
    int end_rc;
    bool end_done;
} fixture_t;

static int end_local(void *ctx, const char *customer_id, const uint8_t id[16]) {
    fixture_t *fx = ctx;
    (void)customer_id;
    (void)id;
    fx->local_calls++;
    return fx->local_rc;
}

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/browserd-cluster-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof fx->db, "%s/b.db", fx->dir);
    char err[256] = "";
    assert_int_equal(store_open(fx->db, &fx->store, err, sizeof err), 0);
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    fx->catalog = catalog_new();
    assert_int_equal(loop_thread_init(&fx->lt, fx, WAIT_SECONDS), 0);
    *state = fx;
    return 0;
}

static int start(fixture_t *fx, const char *node_id, int64_t lease_ms) {
    cluster_config_t cfg = {.loop = &fx->lt.loop, .store = fx->store, .catalog = fx->catalog, .node_id = node_id,
                            .lease_ms = lease_ms, .end_local = end_local, .end_local_ctx = fx};
    char err[256] = "";
    int rc = cluster_start(&cfg, &fx->cluster, err, sizeof err);
    if (rc == 0) assert_int_equal(loop_thread_start(&fx->lt), 0);
    return rc;
}

static void on_stopped(void *arg) {
    fixture_t *fx = arg;
    fx->stopped = true;
    loop_thread_release(&fx->lt);
}

static void stop_cluster(void *owner, void *arg) {
    fixture_t *fx = owner;
    (void)arg;
    cluster_stop(fx->cluster, on_stopped, fx);
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    if (fx->cluster) {
        assert_true(loop_thread_run(&fx->lt, stop_cluster, NULL));
        assert_int_equal(loop_thread_join(&fx->lt), 0);
        assert_true(fx->stopped);
        cluster_release_lease(fx->cluster);
        cluster_free(fx->cluster);
    } else {
        loop_thread_release(&fx->lt);
        loop_thread_start(&fx->lt);
        loop_thread_join(&fx->lt);
    }
    catalog_free(fx->catalog);
    store_close(fx->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* A session of `worker`, running (or finished), with a fresh id written to id. */
static void save_session(fixture_t *fx, const char *worker, bool running, char id[37]) {
    static uint32_t n;
    uint8_t raw[16];
    uuid_v7_generate(time_now_ms() + n++, raw);
    uuid_format(raw, id);
    session_record_t r = {.api_name = "z", .status = running ? SESSION_RUNNING : SESSION_FINISHED,
                          .timestamp_ms = time_now_ms() - 5000,
                          .duration_ms = running ? SESSION_DURATION_NULL : 1000};
    memcpy(r.session_id, id, 37);
    store_session_write_t w = {"acme", &r};
    assert_int_equal(store_sessions_save(fx->store, &w, 1, worker), 0);
}

static session_status_t status_of(fixture_t *fx, const char *id, char *worker_out) {
    session_status_t st;
    char worker[STORE_NODE_ID_MAX + 1];
    bool alive;
    assert_int_equal(store_session_owner(fx->store, "acme", id, &st, worker, &alive), 0);
    if (worker_out) strcpy(worker_out, worker);
    return st;
}

/* The error code of the last session the feed delivers. */
static int error_code_of(void *ctx, const char *customer_id, const session_record_t *rec) {
    (void)customer_id;
    snprintf(ctx, 64, "%s", rec->error_code ? rec->error_code : "");
    return 0;
}

/* A pid that ran and is gone (reaped). */
static int dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return (int)p;
}

static void other_node(fixture_t *fx, const char *node_id, const char *host, int pid, int64_t lease_ms) {
    char err[256] = "", holder[STORE_NODE_ID_MAX + 1];
    int hp;
    assert_int_equal(store_node_register(fx->store, node_id, host, pid, lease_ms, true, holder, &hp, err, sizeof err), 0);
}

static void test_a_node_id_held_by_a_live_process_is_refused(void **state) {
    fixture_t *fx = *state;
    char host[STORE_NODE_ID_MAX + 1] = "";
    gethostname(host, sizeof host - 1);
    other_node(fx, "n1", host, 1, 30000); /* pid 1 lives */
    assert_int_equal(start(fx, "n1", 30000), -EBUSY);
    assert_null(fx->cluster);
}

static void test_a_node_id_of_a_dead_process_of_this_host_is_taken_over(void **state) {
    fixture_t *fx = *state;
    char host[STORE_NODE_ID_MAX + 1] = "";
    gethostname(host, sizeof host - 1);
    other_node(fx, "n1", host, dead_pid(), 30000);
    assert_int_equal(start(fx, "n1", 30000), 0);
}

/* At start: the sessions this node's previous life left running, and those of workers without a
 * live lease, end as worker_disconnect; a live node's and imported ones stay. */
static void test_start_ends_its_own_and_dead_workers_sessions_only(void **state) {
    fixture_t *fx = *state;
    char own[37], dead[37], alive[37], imported[37];
    save_session(fx, "n1", true, own);
    save_session(fx, "gone:1234", true, dead);
    other_node(fx, "n2", "other-host", 1, 30000);
    save_session(fx, "n2", true, alive);
    save_session(fx, NULL, true, imported);
    assert_int_equal(start(fx, "n1", 30000), 0);
    assert_int_equal(status_of(fx, own, NULL), SESSION_FAILED);
    assert_int_equal(status_of(fx, dead, NULL), SESSION_FAILED);
    assert_int_equal(status_of(fx, alive, NULL), SESSION_RUNNING);
    assert_int_equal(status_of(fx, imported, NULL), SESSION_RUNNING);
}

/* A node whose lease runs out is reaped by a living one: its running sessions fail. */
static void test_a_node_whose_lease_runs_out_is_reaped(void **state) {
    fixture_t *fx = *state;
    other_node(fx, "n2", "other-host", 1, 400);
    char id[37];
    save_session(fx, "n2", true, id);
    assert_int_equal(start(fx, "n1", 600), 0);
    assert_int_equal(status_of(fx, id, NULL), SESSION_RUNNING); /* n2 still within its lease */
    for (int i = 0; i < 100 && status_of(fx, id, NULL) == SESSION_RUNNING; i++) usleep(50 * 1000);
    char worker[STORE_NODE_ID_MAX + 1];
    assert_int_equal(status_of(fx, id, worker), SESSION_FAILED);
    assert_string_equal(worker, "");
    /* n1 itself keeps its lease (it renews it) */
    int64_t nodes = -1, failed = -1;
    usleep(700 * 1000);
    assert_int_equal(store_nodes_reap(fx->store, &nodes, &failed), 0);
    assert_int_equal(nodes, 0);
}

typedef struct {
    fixture_t *fx;
    char id[37];
} end_arg_t;

static void on_end(void *arg, int rc) {
    fixture_t *fx = arg;
    fx->end_rc = rc;
    fx->end_done = true;
}

static void ask_end(void *owner, void *arg) {
    fixture_t *fx = owner;
    end_arg_t *e = arg;
    uint8_t id[16];
    assert_int_equal(uuid_parse(e->id, 36, id), 0);
    fx->end_done = false;
    cluster_end_session(fx->cluster, "acme", id, on_end, fx);
}

static int end_and_wait(fixture_t *fx, const char *id) {
    end_arg_t e = {fx, ""};
    memcpy(e.id, id, 37);
    assert_true(loop_thread_run(&fx->lt, ask_end, &e));
    for (int i = 0; i < 200 && !fx->end_done; i++) usleep(20 * 1000);
    assert_true(fx->end_done);
    return fx->end_rc;
}

static void test_a_session_running_here_is_ended_here(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(start(fx, "n1", 30000), 0);
    char id[37];
    save_session(fx, "n1", true, id);
    fx->local_rc = 0;
    assert_int_equal(end_and_wait(fx, id), 0);
    assert_int_equal(fx->local_calls, 1);
}

static void test_a_session_of_a_dead_node_is_ended_in_the_store_as_job_killed(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(start(fx, "n1", 30000), 0);
    char id[37];
    save_session(fx, "n9", true, id); /* n9 holds no lease: dead */
    fx->local_rc = -ENOENT;
    assert_int_equal(end_and_wait(fx, id), 0);
    assert_int_equal(status_of(fx, id, NULL), SESSION_FAILED);
    char code[64] = "";
    int64_t last = 0;
    assert_int_equal(store_sessions_since(fx->store, 0, &last, error_code_of, code), 0);
    assert_string_equal(code, "job_killed");
    assert_int_equal(end_and_wait(fx, id), -EALREADY); /* once */
}

static void test_a_session_not_running_anywhere_is_not_ended(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(start(fx, "n1", 30000), 0);
    char done[37], imported[37];
    save_session(fx, "n2", false, done);
    save_session(fx, NULL, true, imported);
    fx->local_rc = -ENOENT;
    assert_int_equal(end_and_wait(fx, done), -EALREADY);
    assert_int_equal(end_and_wait(fx, imported), -EALREADY);
}

/* Without events (SQLite) a live node that runs the session cannot be asked: out of reach. */
static void test_a_session_of_a_live_node_without_events_is_out_of_reach(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(start(fx, "n1", 30000), 0);
    other_node(fx, "n2", "other-host", 1, 30000);
    char id[37];
    save_session(fx, "n2", true, id);
    fx->local_rc = -ENOENT;
    assert_int_equal(end_and_wait(fx, id), -EIO);
    assert_int_equal(status_of(fx, id, NULL), SESSION_RUNNING);
}

static void test_a_stopped_node_gives_its_lease_up(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(start(fx, "n1", 30000), 0);
    assert_true(loop_thread_run(&fx->lt, stop_cluster, NULL));
    assert_int_equal(loop_thread_join(&fx->lt), 0);
    cluster_release_lease(fx->cluster);
    cluster_free(fx->cluster);
    fx->cluster = NULL;
    /* another process may take the id at once */
    char err[256] = "", holder[STORE_NODE_ID_MAX + 1];
    int hp;
    assert_int_equal(store_node_register(fx->store, "n1", "other-host", 1, 30000, false, holder, &hp, err, sizeof err),
                     0);
    assert_int_equal(loop_thread_init(&fx->lt, fx, WAIT_SECONDS), 0); /* for the teardown */
}

int main(void) {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_node_id_held_by_a_live_process_is_refused),
        T(test_a_node_id_of_a_dead_process_of_this_host_is_taken_over),
        T(test_start_ends_its_own_and_dead_workers_sessions_only),
        T(test_a_node_whose_lease_runs_out_is_reaped),
        T(test_a_session_running_here_is_ended_here),
        T(test_a_session_of_a_dead_node_is_ended_in_the_store_as_job_killed),
        T(test_a_session_not_running_anywhere_is_not_ended),
        T(test_a_session_of_a_live_node_without_events_is_out_of_reach),
        T(test_a_stopped_node_gives_its_lease_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
