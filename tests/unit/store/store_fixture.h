/* What the store's tests share: a fresh store per test, session records to put and import,
 * a record source and a feed collector, and a workload of threads. Everything goes through
 * store.h, so the tests that use only this can run against any backend.
 *
 * Ownership: records from make_record/record_copy own their strings (session_record_free);
 * a collector owns its copies until collector_free. */
#ifndef BROWSERD_TESTS_STORE_FIXTURE_H
#define BROWSERD_TESTS_STORE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session/record.h"
#include "store/store.h"

typedef struct {
    char dir[64];     /* a temporary directory, removed with everything in it */
    char target[512]; /* what store_open was given: a SQLite file in dir, or a PostgreSQL URI */
    char pg_db[64];   /* PostgreSQL: the database made for this test (dropped at teardown) */
    store_t *store;
} store_fixture_t;

/* The backend the tests run against: SQLite, or PostgreSQL when BROWSERD_TEST_STORE is
 * "postgres" (meson's store_pg test), each test then on a new database of the server that
 * BROWSERD_TEST_PG_ADMIN_URI names (scripts/test.sh starts one and sets it). */
bool store_fixture_is_pg(void);
/* For main(): 77 (meson's "skipped") with a message on stderr when the PostgreSQL run has no
 * server to use; 0 when the tests can run. */
int store_fixture_skip_code(const char *test_name);
/* PostgreSQL: runs sql on the server's admin database (or `db` when not NULL); 0 or -1 with
 * the server's message printed. */
int pg_admin_exec(const char *db, const char *sql);
/* PostgreSQL: a new, empty database (created, not migrated) and its URI: 0 or -1. */
int pg_new_database(char name[64], char *uri, size_t uri_cap);
void pg_drop_database(const char *name);

/* cmocka setup/teardown: a new, empty store in *state, and its removal. */
int store_fixture_setup(void **state);
int store_fixture_teardown(void **state);
/* Closes and opens the fixture's store again. */
void store_fixture_reopen(store_fixture_t *fx);

/* A valid record; n varies the fields (URLs, captcha, counts). */
session_record_t make_record(const char *id, const char *api_name, session_status_t status, int64_t n);
/* A UUID whose last 12 digits are n in hex. */
void record_id(char out[37], uint32_t n);
session_record_t record_copy(const session_record_t *r);
bool same_record(const session_record_t *a, const session_record_t *b);
/* The session id in upper case (ids are case-insensitive). */
void uppercase_id(session_record_t *r);

/* A record source over an array; it fails (as a bad input line would) at index fail_at. */
typedef struct {
    const session_record_t *records;
    size_t count, next, fail_at;
} array_source_t;
int array_next(void *ctx, session_record_t *rec, char *err, size_t err_cap);

/* Collects what store_sessions_since delivers. */
#define COLLECT_MAX 64
typedef struct {
    session_record_t records[COLLECT_MAX];
    char customers[COLLECT_MAX][STORE_ID_MAX + 1];
    size_t count;
    size_t stop_after; /* return 99 after this many (0: never) */
} collector_t;
int collect(void *ctx, const char *customer_id, const session_record_t *rec);
void collector_free(collector_t *c);
/* Counts rows into *(int64_t *)ctx. */
int count_rows(void *ctx, const char *customer_id, const session_record_t *rec);

/* The workload of the thread tests: customer "acme" with a key and zone "zone1", then
 * WORKER_THREADS threads that each put PUTS_PER_THREAD sessions (every other one twice, as
 * it ends: a second change of the same row), reading the change seq, authenticating the key
 * and checking the zone between puts. Asserts that no call failed. */
#define WORKER_THREADS 4
#define PUTS_PER_THREAD 150
#define WORKLOAD_SESSIONS (WORKER_THREADS * PUTS_PER_THREAD)
#define WORKLOAD_FINISHED (WORKER_THREADS * ((PUTS_PER_THREAD + 1) / 2))
#define WORKLOAD_CHANGES (WORKLOAD_SESSIONS + WORKLOAD_FINISHED)
void run_concurrent_workload(store_fixture_t *fx);

/* The session ids the feed delivers, in order, up to `cap` (then the callback stops with
 * -ENOSPC), and how many of them are finished. */
typedef struct {
    char (*ids)[37];
    int64_t count, cap, finished;
} id_list_t;
int list_ids(void *ctx, const char *customer_id, const session_record_t *rec);

#endif
