/* catalog_sync against a real SQLite store in a temporary directory: what the store's change
 * feed has is what the catalog answers, after a first load, after single changes, after a
 * change too large for one batch, and when another store handle (another process) wrote. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "catalog/catalog_query.h"
#include "catalog/catalog_sync.h"
#include "core/uuid.h"
#include "store/store.h"
#include "store/store_spool.h"

#define T0_MS INT64_C(1764547200000) /* 2025-12-01T00:00:00Z */

typedef struct {
    char dir[64];
    char path[128];
    store_t *store;
    catalog_t *catalog;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/browserd-catalog-sync-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->path, sizeof fx->path, "%s/browserd.db", fx->dir);
    char err[512] = "";
    if (store_open(fx->path, &fx->store, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    if (store_customer_add(fx->store, "cust_a", err, sizeof err) != 0 ||
        store_customer_add(fx->store, "cust_b", err, sizeof err) != 0) {
        fprintf(stderr, "store_customer_add: %s\n", err);
        return -1;
    }
    fx->catalog = catalog_new();
    if (!fx->catalog) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    catalog_free(fx->catalog);
    store_close(fx->store);
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

/* ---- helpers ---- */

/* Session n: its id encodes n, its start is n seconds after T0. The strings are borrowed
 * literals (store_session_put copies what it keeps). */
static session_record_t record_n(uint32_t n, session_status_t status) {
    session_record_t r;
    memset(&r, 0, sizeof r);
    uint8_t id[16] = {0x01, 0x92, 0, 0, 0, 0, 0x70, 0, 0x80};
    memcpy(id + 12, &n, 4);
    uuid_format(id, r.session_id);
    r.api_name = "scraping_browser1";
    r.status = status;
    r.target_url = "https://www.example.com/";
    r.timestamp_ms = T0_MS + (int64_t)n * 1000;
    r.duration_ms = status == SESSION_RUNNING ? SESSION_DURATION_NULL : 2000;
    if (status == SESSION_FAILED) {
        r.error_code = "page_navigated_error";
        r.error_message = "net::ERR_NAME_NOT_RESOLVED";
    }
    return r;
}

static void put(store_t *s, const char *customer, uint32_t n, session_status_t status) {
    session_record_t r = record_n(n, status);
    assert_int_equal(store_session_put(s, customer, &r), 0);
}

static int count_row(void *ctx, const session_record_t *view) {
    (void)view;
    ++*(int *)ctx;
    return 0;
}

/* total of the customer's sessions with this status (SESSION_QUERY_STATUS_ALL: all). */
static uint64_t total(catalog_t *c, const char *customer, int status) {
    session_query_t q;
    session_query_init(&q);
    q.status = status;
    catalog_page_info_t info;
    int visited = 0;
    assert_int_equal(catalog_list(c, customer, &q, count_row, &visited, &info), 0);
    assert_int_equal(visited, info.count);
    return info.total;
}

typedef struct {
    char session_id[37];
    session_status_t status;
    int64_t timestamp_ms;
} seen_t;

static int remember_row(void *ctx, const session_record_t *view) {
    seen_t *s = ctx;
    memcpy(s->session_id, view->session_id, sizeof s->session_id);
    s->status = view->status;
    s->timestamp_ms = view->timestamp_ms;
    return 0;
}

static seen_t get(catalog_t *c, const char *customer, uint32_t n, int expect_rc) {
    session_record_t r = record_n(n, SESSION_RUNNING);
    uint8_t id[16];
    assert_int_equal(uuid_parse(r.session_id, strlen(r.session_id), id), 0);
    seen_t s = {0};
    assert_int_equal(catalog_get(c, customer, id, remember_row, &s), expect_rc);
    return s;
}

/* Sessions first..first+count-1 of a customer, as store_sessions_import's record source. */
typedef struct {
    uint32_t next, end;
} import_ctx_t;

static int next_record(void *ctx, session_record_t *rec, char *err, size_t err_cap) {
    import_ctx_t *it = ctx;
    (void)err;
    (void)err_cap;
    if (it->next == it->end) return 0;
    session_record_t r = record_n(it->next++, SESSION_FINISHED);
    *rec = r;
    /* The store frees what the source gives it. */
    rec->api_name = strdup(r.api_name);
    rec->target_url = strdup(r.target_url);
    return rec->api_name && rec->target_url ? 1 : -1;
}

static void import(store_t *s, const char *customer, uint32_t first, uint32_t count) {
    import_ctx_t it = {first, first + count};
    int64_t imported = 0;
    char err[256] = "";
    int rc = store_sessions_import(s, customer, next_record, &it, &imported, err, sizeof err);
    if (rc != 0) fprintf(stderr, "import: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(imported, count);
}

/* ---- tests ---- */

static void test_first_sync_loads_every_session_of_every_customer(void **state) {
    fixture_t *fx = *state;
    put(fx->store, "cust_a", 1, SESSION_FINISHED);
    put(fx->store, "cust_a", 2, SESSION_RUNNING);
    put(fx->store, "cust_a", 3, SESSION_FAILED);
    put(fx->store, "cust_b", 4, SESSION_FINISHED);
    put(fx->store, "cust_b", 5, SESSION_FINISHED);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(catalog_size(fx->catalog), 5);
    assert_int_equal(total(fx->catalog, "cust_a", SESSION_QUERY_STATUS_ALL), 3);
    assert_int_equal(total(fx->catalog, "cust_b", SESSION_QUERY_STATUS_ALL), 2);
    seen_t s = get(fx->catalog, "cust_a", 3, 0);
    assert_int_equal(s.status, SESSION_FAILED);
    assert_true(s.timestamp_ms == T0_MS + 3000);
}

static void test_sync_of_an_empty_store_leaves_the_catalog_empty(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(catalog_size(fx->catalog), 0);
    assert_int_equal(total(fx->catalog, "cust_a", SESSION_QUERY_STATUS_ALL), 0);
}

static void test_sync_without_store_changes_changes_nothing(void **state) {
    fixture_t *fx = *state;
    put(fx->store, "cust_a", 1, SESSION_RUNNING);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    /* A session only the catalog has (catalog_put, as the gateway does before the store
     * write lands) is not touched by a sync that has nothing to apply. */
    session_record_t r = record_n(2, SESSION_RUNNING);
    assert_int_equal(catalog_put(fx->catalog, "cust_a", &r), 0);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(catalog_size(fx->catalog), 2);
    assert_int_equal(get(fx->catalog, "cust_a", 1, 0).status, SESSION_RUNNING);
}

static void test_sync_applies_updates_and_new_sessions_since_the_last_sync(void **state) {
    fixture_t *fx = *state;
    put(fx->store, "cust_a", 1, SESSION_RUNNING);
    put(fx->store, "cust_a", 2, SESSION_RUNNING);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    put(fx->store, "cust_a", 1, SESSION_FINISHED); /* a running session ends */
    put(fx->store, "cust_b", 3, SESSION_RUNNING);  /* a new one starts */
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(catalog_size(fx->catalog), 3);
    assert_int_equal(get(fx->catalog, "cust_a", 1, 0).status, SESSION_FINISHED);
    assert_int_equal(total(fx->catalog, "cust_a", SESSION_RUNNING), 1);
    assert_int_equal(total(fx->catalog, "cust_a", SESSION_FINISHED), 1);
    assert_int_equal(get(fx->catalog, "cust_b", 3, 0).status, SESSION_RUNNING);
    get(fx->catalog, "cust_a", 3, -ENOENT);
}

static void test_change_larger_than_one_batch_is_applied_completely(void **state) {
    fixture_t *fx = *state;
    /* More than a batch (65536 records): the first batch is applied while the store is still
     * being read, in bulk mode, and the rest after it. */
    enum { N = 65536 + 1000 };
    put(fx->store, "cust_b", N + 1, SESSION_RUNNING);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    import(fx->store, "cust_a", 0, N);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(catalog_size(fx->catalog), N + 1);
    assert_int_equal(total(fx->catalog, "cust_a", SESSION_QUERY_STATUS_ALL), N);
    assert_int_equal(total(fx->catalog, "cust_a", SESSION_FINISHED), N);
    /* The newest session first (timestamp desc): the last one imported. */
    session_query_t q;
    session_query_init(&q);
    q.limit = 1;
    seen_t first = {0};
    catalog_page_info_t info;
    assert_int_equal(catalog_list(fx->catalog, "cust_a", &q, remember_row, &first, &info), 0);
    assert_string_equal(first.session_id, record_n(N - 1, SESSION_FINISHED).session_id);
    get(fx->catalog, "cust_a", 0, 0);
    get(fx->catalog, "cust_a", 65536, 0);
}

static void test_changes_written_through_another_store_handle_are_seen(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    /* `browserd sessions import` in another process while `serve` runs */
    store_t *other = NULL;
    char err[256] = "";
    assert_int_equal(store_open(fx->path, &other, err, sizeof err), 0);
    import(other, "cust_b", 10, 3);
    store_close(other);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(total(fx->catalog, "cust_b", SESSION_QUERY_STATUS_ALL), 3);
    get(fx->catalog, "cust_b", 12, 0);
}

/* The database away (or locked, or full) while a session ended: the store still has its
 * running row, the spool its end. The catalog must answer the end, not the older row, however
 * often it syncs. */
static void test_records_waiting_in_the_spool_win_over_the_stores_older_rows(void **state) {
    fixture_t *fx = *state;
    put(fx->store, "cust_a", 1, SESSION_RUNNING);
    put(fx->store, "cust_a", 2, SESSION_RUNNING);
    session_record_t ended = record_n(1, SESSION_FINISHED);
    char spool_path[160];
    snprintf(spool_path, sizeof spool_path, "%s/node.spool", fx->dir);
    FILE *f = fopen(spool_path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"customer\":\"cust_a\",\"worker\":null,\"session_id\":\"%s\",\"api_name\":\"scraping_browser1\","
            "\"status\":1,\"target_url\":\"https://www.example.com/\",\"end_url\":null,\"navigations\":0,"
            "\"timestamp_ms\":%lld,\"duration_ms\":2000,\"captcha\":0,\"bandwidth\":0,\"error_code\":null,"
            "\"error_message\":null}\n",
            ended.session_id, (long long)ended.timestamp_ms);
    fclose(f);
    store_spool_t *sp = NULL;
    char err[256] = "";
    assert_int_equal(store_spool_open(spool_path, &sp, err, sizeof err), 0);
    assert_int_equal(store_spool_pending(sp), 1);
    catalog_sync_follow_spool(fx->catalog, sp);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(get(fx->catalog, "cust_a", 1, 0).status, SESSION_FINISHED);
    assert_int_equal(get(fx->catalog, "cust_a", 2, 0).status, SESSION_RUNNING);
    assert_int_equal(total(fx->catalog, "cust_a", SESSION_FINISHED), 1);
    /* a later change in the store (another session) applies the running row again: still the end */
    put(fx->store, "cust_a", 1, SESSION_RUNNING);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(get(fx->catalog, "cust_a", 1, 0).status, SESSION_FINISHED);
    /* once the spool is flushed, the store has the end itself */
    size_t written = 0;
    assert_int_equal(store_spool_flush(sp, fx->store, &written), 0);
    assert_int_equal(written, 1);
    assert_int_equal(catalog_sync(fx->catalog, fx->store), 0);
    assert_int_equal(get(fx->catalog, "cust_a", 1, 0).status, SESSION_FINISHED);
    catalog_sync_follow_spool(fx->catalog, NULL);
    store_spool_close(sp);
}

#define SYNC_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        SYNC_TEST(test_first_sync_loads_every_session_of_every_customer),
        SYNC_TEST(test_sync_of_an_empty_store_leaves_the_catalog_empty),
        SYNC_TEST(test_sync_without_store_changes_changes_nothing),
        SYNC_TEST(test_sync_applies_updates_and_new_sessions_since_the_last_sync),
        SYNC_TEST(test_change_larger_than_one_batch_is_applied_completely),
        SYNC_TEST(test_changes_written_through_another_store_handle_are_seen),
        SYNC_TEST(test_records_waiting_in_the_spool_win_over_the_stores_older_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
