#include "store_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/pq_api.h"

bool store_fixture_is_pg(void) {
    const char *s = getenv("BROWSERD_TEST_STORE");
    return s && strcmp(s, "postgres") == 0;
}

static const char *admin_uri(void) {
    const char *u = getenv("BROWSERD_TEST_PG_ADMIN_URI");
    return u && *u ? u : NULL;
}

int store_fixture_skip_code(const char *test_name) {
    if (!store_fixture_is_pg() || admin_uri()) return 0;
    fprintf(stderr, "%s: skipped: BROWSERD_TEST_PG_ADMIN_URI is not set (scripts/test.sh starts a PostgreSQL "
                    "server and sets it; or tests/pg/pgserver.py start DIR)\n", test_name);
    return 77;
}

/* The admin URI with its database replaced by db. */
static void uri_with_db(const char *db, char *out, size_t cap) {
    const char *admin = admin_uri();
    const char *auth = strstr(admin, "://");
    auth = auth ? auth + 3 : admin;
    size_t head = (size_t)(auth - admin) + strcspn(auth, "/?");
    const char *query = strchr(auth, '?');
    snprintf(out, cap, "%.*s/%s%s", (int)head, admin, db, query ? query : "");
}

int pg_admin_exec(const char *db, const char *sql) {
    char uri[512];
    char err[512];
    if (pq_api_load(err, sizeof err) < 0) {
        fprintf(stderr, "pg_admin_exec: %s\n", err);
        return -1;
    }
    if (db) uri_with_db(db, uri, sizeof uri);
    PGconn *c = PQconnectdb(db ? uri : admin_uri());
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
        if (rc) fprintf(stderr, "pg_admin_exec(%s): %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "pg_admin_exec: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

int pg_new_database(char name[64], char *uri, size_t uri_cap) {
    static int counter;
    snprintf(name, 64, "bdt_%d_%d", (int)getpid(), ++counter);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (pg_admin_exec(NULL, sql) != 0) return -1;
    uri_with_db(name, uri, uri_cap);
    return 0;
}

void pg_drop_database(const char *name) {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_admin_exec(NULL, sql);
}

int store_fixture_setup(void **state) {
    store_fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/browserd-store-test-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->target, sizeof fx->target, "%s/browserd.db", fx->dir);
    if (store_fixture_is_pg() && pg_new_database(fx->pg_db, fx->target, sizeof fx->target) != 0) {
        rmdir(fx->dir);
        free(fx);
        return -1;
    }
    char err[512] = "";
    if (store_open(fx->target, &fx->store, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        if (fx->pg_db[0]) pg_drop_database(fx->pg_db);
        rmdir(fx->dir);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

int store_fixture_teardown(void **state) {
    store_fixture_t *fx = *state;
    store_close(fx->store);
    if (fx->pg_db[0]) pg_drop_database(fx->pg_db);
    DIR *d = opendir(fx->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char file[512];
            snprintf(file, sizeof file, "%s/%s", fx->dir, e->d_name);
            unlink(file);
        }
        closedir(d);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

void store_fixture_reopen(store_fixture_t *fx) {
    store_close(fx->store);
    fx->store = NULL;
    char err[512] = "";
    assert_int_equal(store_open(fx->target, &fx->store, err, sizeof err), 0);
}

static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

session_record_t make_record(const char *id, const char *api_name, session_status_t status, int64_t n) {
    session_record_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.session_id, sizeof r.session_id, "%s", id);
    r.api_name = dup_or_null(api_name);
    r.status = status;
    if (n % 3 != 0) {
        r.target_url = dup_or_null("https://www.example.com/");
        r.end_url = dup_or_null("https://www.example.com/end");
    }
    r.navigations = n % 7;
    r.timestamp_ms = INT64_C(1764583200000) + n * 1000;
    r.duration_ms = status == SESSION_RUNNING ? SESSION_DURATION_NULL : 1000 + n;
    r.captcha = (captcha_t)(n % 4);
    r.bandwidth = n * 100;
    if (status == SESSION_FAILED) {
        r.error_code = dup_or_null("session_timeout");
        r.error_message = dup_or_null("the session reached its maximum duration");
    }
    return r;
}

void record_id(char out[37], uint32_t n) { snprintf(out, 37, "0190a1b2-c3d4-7e5f-8a9b-%012" PRIx32, n); }

session_record_t record_copy(const session_record_t *r) {
    session_record_t c = *r;
    c.api_name = dup_or_null(r->api_name);
    c.target_url = dup_or_null(r->target_url);
    c.end_url = dup_or_null(r->end_url);
    c.error_code = dup_or_null(r->error_code);
    c.error_message = dup_or_null(r->error_message);
    return c;
}

static bool same_text(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

bool same_record(const session_record_t *a, const session_record_t *b) {
    return strcmp(a->session_id, b->session_id) == 0 && same_text(a->api_name, b->api_name) &&
           a->status == b->status && same_text(a->target_url, b->target_url) && same_text(a->end_url, b->end_url) &&
           a->navigations == b->navigations && a->timestamp_ms == b->timestamp_ms &&
           a->duration_ms == b->duration_ms && a->captcha == b->captcha && a->bandwidth == b->bandwidth &&
           same_text(a->error_code, b->error_code) && same_text(a->error_message, b->error_message);
}

void uppercase_id(session_record_t *r) {
    for (char *p = r->session_id; *p; p++) *p = (char)toupper((unsigned char)*p);
}

int array_next(void *ctx, session_record_t *rec, char *err, size_t err_cap) {
    array_source_t *src = ctx;
    if (src->next == src->fail_at) {
        snprintf(err, err_cap, "line %zu: bad record", src->next + 1);
        return -1;
    }
    if (src->next >= src->count) return 0;
    *rec = record_copy(&src->records[src->next++]);
    return 1;
}

int collect(void *ctx, const char *customer_id, const session_record_t *rec) {
    collector_t *c = ctx;
    if (c->stop_after && c->count == c->stop_after) return 99;
    assert_true(c->count < COLLECT_MAX);
    c->records[c->count] = record_copy(rec);
    memcpy(c->records[c->count].session_id, rec->session_id, sizeof rec->session_id);
    snprintf(c->customers[c->count], sizeof c->customers[0], "%s", customer_id);
    c->count++;
    return 0;
}

void collector_free(collector_t *c) {
    for (size_t i = 0; i < c->count; i++) session_record_free(&c->records[i]);
    c->count = 0;
}

int count_rows(void *ctx, const char *customer_id, const session_record_t *rec) {
    (void)customer_id;
    (void)rec;
    (*(int64_t *)ctx)++;
    return 0;
}

int list_ids(void *ctx, const char *customer_id, const session_record_t *rec) {
    (void)customer_id;
    id_list_t *l = ctx;
    if (l->count == l->cap) return -ENOSPC;
    memcpy(l->ids[l->count++], rec->session_id, 37);
    if (rec->status == SESSION_FINISHED) l->finished++;
    return 0;
}

/* ---- the concurrent workload ---- */

typedef struct {
    store_t *store;
    int index;
    const char *key;
    const char *password;
    int failures;
} worker_t;

static void *worker_main(void *arg) {
    worker_t *w = arg;
    for (int i = 0; i < PUTS_PER_THREAD; i++) {
        char id[37], customer[STORE_ID_MAX + 1];
        record_id(id, (uint32_t)(w->index * 100000 + i));
        session_record_t r = make_record(id, "zone1", SESSION_RUNNING, i);
        int64_t seq;
        if (store_session_put(w->store, "acme", &r) != 0) w->failures++;
        /* Half of the sessions end, which is a second change of the same row. */
        if (i % 2 == 0) {
            session_record_free(&r);
            r = make_record(id, "zone1", SESSION_FINISHED, i);
            if (store_session_put(w->store, "acme", &r) != 0) w->failures++;
        }
        session_record_free(&r);
        if (store_change_seq(w->store, &seq) != 0 || seq < i) w->failures++;
        if (store_key_authenticate(w->store, w->key, 64, customer) != 0 || strcmp(customer, "acme") != 0)
            w->failures++;
        if (store_zone_check(w->store, "acme", "zone1", w->password) != 0) w->failures++;
    }
    return NULL;
}

void run_concurrent_workload(store_fixture_t *fx) {
    char err[512] = "", key[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1], password[STORE_PASSWORD_LEN + 1];
    assert_int_equal(store_customer_add(fx->store, "acme", err, sizeof err), 0);
    assert_int_equal(store_key_add(fx->store, "acme", key, key_id, err, sizeof err), 0);
    assert_int_equal(store_zone_add(fx->store, "acme", "zone1", password, err, sizeof err), 0);
    pthread_t threads[WORKER_THREADS];
    worker_t workers[WORKER_THREADS];
    for (int t = 0; t < WORKER_THREADS; t++) {
        workers[t] = (worker_t){fx->store, t, key, password, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, worker_main, &workers[t]), 0);
    }
    for (int t = 0; t < WORKER_THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(workers[t].failures, 0);
    }
}
