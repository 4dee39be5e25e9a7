/* The spool (src/store/store_spool.c) in front of a real SQLite store. The store is made
 * unreachable the way a database can be: another connection holds an exclusive lock, so a
 * write waits out the busy timeout and fails (-EIO) as it would with the server away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "store/store_spool.h"
#include "store_fixture.h"

typedef struct {
    store_fixture_t *fx;
    char path[200];
    store_spool_t *sp;
    sqlite3 *locker;
} spool_fixture_t;

static int setup(void **state) {
    void *inner;
    if (store_fixture_setup(&inner) != 0) return -1;
    spool_fixture_t *f = calloc(1, sizeof *f);
    f->fx = inner;
    char err[256] = "";
    assert_int_equal(store_customer_add(f->fx->store, "acme", err, sizeof err), 0);
    snprintf(f->path, sizeof f->path, "%s/node.spool", f->fx->dir);
    assert_int_equal(store_spool_open(f->path, &f->sp, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    spool_fixture_t *f = *state;
    if (f->locker) sqlite3_close(f->locker);
    store_spool_close(f->sp);
    void *inner = f->fx;
    store_fixture_teardown(&inner);
    free(f);
    return 0;
}

/* The database away: another connection holds the write lock. */
static void lock_store(spool_fixture_t *f) {
    assert_int_equal(sqlite3_open(f->fx->target, &f->locker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(f->locker, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
}

static void unlock_store(spool_fixture_t *f) {
    sqlite3_exec(f->locker, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(f->locker);
    f->locker = NULL;
}

static int save(spool_fixture_t *f, const session_record_t *r) {
    store_session_write_t w = {"acme", r};
    return store_spool_save(f->sp, f->fx->store, &w, 1, "node-a");
}

static int64_t stored_count(spool_fixture_t *f) {
    int64_t rows = 0, last = 0;
    assert_int_equal(store_sessions_since(f->fx->store, 0, &last, count_rows, &rows), 0);
    return rows;
}

static long file_lines(const char *path) {
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    long n = 0;
    int ch;
    while ((ch = fgetc(fp)) != EOF)
        if (ch == '\n') n++;
    fclose(fp);
    return n;
}

static void test_a_reachable_store_takes_the_records_at_once(void **state) {
    spool_fixture_t *f = *state;
    char id[37];
    record_id(id, 1);
    session_record_t r = make_record(id, "z", SESSION_RUNNING, 1);
    assert_int_equal(save(f, &r), 0);
    assert_int_equal(store_spool_pending(f->sp), 0);
    assert_int_equal(file_lines(f->path), 0);
    assert_int_equal(stored_count(f), 1);
    session_record_free(&r);
}

static void test_an_unreachable_store_keeps_records_in_the_file_then_flushes_the_latest(void **state) {
    spool_fixture_t *f = *state;
    char id[37];
    record_id(id, 2);
    session_record_t running = make_record(id, "z", SESSION_RUNNING, 2);
    session_record_t ended = make_record(id, "z", SESSION_FAILED, 2);
    ended.duration_ms = 4321; /* milliseconds survive the file */
    lock_store(f);
    assert_int_equal(save(f, &running), 0); /* durable: in the file */
    assert_int_equal(store_spool_pending(f->sp), 1);
    assert_int_equal(file_lines(f->path), 1);
    unlock_store(f);
    /* behind what waits: the next save of the session goes to the spool too, never around it */
    assert_int_equal(save(f, &ended), 0);
    assert_int_equal(store_spool_pending(f->sp), 2);
    assert_int_equal(stored_count(f), 0);
    size_t written = 0;
    assert_int_equal(store_spool_flush(f->sp, f->fx->store, &written), 0);
    assert_int_equal(written, 1); /* the latest record of the session only */
    assert_int_equal(store_spool_pending(f->sp), 0);
    assert_int_equal(file_lines(f->path), 0);
    collector_t got = {0};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(f->fx->store, 0, &last, collect, &got), 0);
    assert_int_equal(got.count, 1);
    assert_true(same_record(&got.records[0], &ended));
    collector_free(&got);
    /* and saves go straight to the store again */
    assert_int_equal(save(f, &ended), 0);
    assert_int_equal(store_spool_pending(f->sp), 0);
    session_record_free(&running);
    session_record_free(&ended);
}

static void test_a_flush_while_the_store_is_away_keeps_everything(void **state) {
    spool_fixture_t *f = *state;
    char id[37];
    record_id(id, 3);
    session_record_t r = make_record(id, "z", SESSION_FINISHED, 3);
    lock_store(f);
    assert_int_equal(save(f, &r), 0);
    assert_int_equal(store_spool_flush(f->sp, f->fx->store, NULL), -EIO);
    assert_int_equal(store_spool_pending(f->sp), 1);
    assert_int_equal(file_lines(f->path), 1);
    unlock_store(f);
    assert_int_equal(store_spool_flush(f->sp, f->fx->store, NULL), 0);
    assert_int_equal(stored_count(f), 1);
    session_record_free(&r);
}

/* What a crash (or a stop with the database away) left in the file is written after a restart,
 * exactly as it was saved. */
static void test_a_reopened_spool_flushes_what_was_left_exactly(void **state) {
    spool_fixture_t *f = *state;
    char a[37], b[37];
    record_id(a, 4);
    record_id(b, 5);
    session_record_t ra = make_record(a, "zone_one", SESSION_FAILED, 4);
    session_record_t rb = make_record(b, "zone_two", SESSION_RUNNING, 5);
    free(rb.end_url);
    rb.end_url = strdup("https://example.com/\"quoted\"\\\n\xc3\xa9");
    rb.timestamp_ms += 123; /* not a whole second */
    lock_store(f);
    assert_int_equal(save(f, &ra), 0);
    assert_int_equal(save(f, &rb), 0);
    unlock_store(f);
    store_spool_close(f->sp);
    char err[256] = "";
    assert_int_equal(store_spool_open(f->path, &f->sp, err, sizeof err), 0);
    assert_int_equal(store_spool_pending(f->sp), 2);
    assert_int_equal(store_spool_flush(f->sp, f->fx->store, NULL), 0);
    collector_t got = {0};
    int64_t last = 0;
    assert_int_equal(store_sessions_since(f->fx->store, 0, &last, collect, &got), 0);
    assert_int_equal(got.count, 2);
    const session_record_t *ga = strcmp(got.records[0].session_id, a) == 0 ? &got.records[0] : &got.records[1];
    const session_record_t *gb = ga == &got.records[0] ? &got.records[1] : &got.records[0];
    assert_true(same_record(ga, &ra));
    assert_true(same_record(gb, &rb));
    collector_free(&got);
    session_record_free(&ra);
    session_record_free(&rb);
}

static void test_a_line_that_is_no_record_is_refused_with_its_number(void **state) {
    spool_fixture_t *f = *state;
    store_spool_close(f->sp);
    f->sp = NULL;
    FILE *fp = fopen(f->path, "w");
    fputs("\n{\"customer\":\"acme\",\"session_id\":\"x\"}\n", fp);
    fclose(fp);
    char err[256] = "";
    assert_int_equal(store_spool_open(f->path, &f->sp, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "line 2 is not a record"));
    assert_null(f->sp);
}

static off_t file_size(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* The disk full: the spool file cannot grow (RLIMIT_FSIZE at its size: every write past it
 * fails, EFBIG, as ENOSPC would). The records are kept in memory, no torn line stays in the
 * file; the next save the file can take writes it whole again; a flush writes them all. */
static void test_a_file_that_cannot_grow_keeps_the_records_in_memory(void **state) {
    spool_fixture_t *f = *state;
    char id1[37], id2[37];
    record_id(id1, 7);
    record_id(id2, 8);
    session_record_t r1 = make_record(id1, "z", SESSION_FINISHED, 7);
    session_record_t r2 = make_record(id2, "z", SESSION_FAILED, 8);
    lock_store(f);
    struct rlimit old, full;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
    full = old;
    full.rlim_cur = (rlim_t)file_size(f->path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
    int rc = save(f, &r1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, was);
    assert_int_equal(rc, 0); /* kept, in memory */
    assert_int_equal(store_spool_pending(f->sp), 1);
    assert_int_equal(file_size(f->path), 0); /* nothing torn */
    /* space again: the file takes the next save and the one it missed */
    assert_int_equal(save(f, &r2), 0);
    assert_int_equal(store_spool_pending(f->sp), 2);
    assert_int_equal(file_lines(f->path), 2);
    unlock_store(f);
    size_t written = 0;
    assert_int_equal(store_spool_flush(f->sp, f->fx->store, &written), 0);
    assert_int_equal(written, 2);
    assert_int_equal(stored_count(f), 2);
    assert_int_equal(file_size(f->path), 0);
    session_record_free(&r1);
    session_record_free(&r2);
}

/* A crash (or a full disk) mid-append leaves a last line without its newline: nothing
 * acknowledged is in it. The spool opens, cuts it off, keeps the whole lines. */
static void test_a_torn_last_line_is_cut_off_at_open(void **state) {
    spool_fixture_t *f = *state;
    char id[37];
    record_id(id, 9);
    session_record_t r = make_record(id, "z", SESSION_FINISHED, 9);
    lock_store(f);
    assert_int_equal(save(f, &r), 0);
    unlock_store(f);
    off_t whole = file_size(f->path);
    store_spool_close(f->sp);
    f->sp = NULL;
    FILE *fp = fopen(f->path, "a");
    fputs("{\"customer\":\"acme\",\"sess", fp);
    fclose(fp);
    char err[256] = "";
    assert_int_equal(store_spool_open(f->path, &f->sp, err, sizeof err), 0);
    assert_int_equal(store_spool_pending(f->sp), 1);
    assert_int_equal(file_size(f->path), whole);
    size_t written = 0;
    assert_int_equal(store_spool_flush(f->sp, f->fx->store, &written), 0);
    assert_int_equal(written, 1);
    session_record_free(&r);
}

/* Only an unreachable store is spooled: a refusal is the caller's to see. */
static void test_errors_other_than_unreachable_are_returned_and_not_kept(void **state) {
    spool_fixture_t *f = *state;
    char id[37];
    record_id(id, 6);
    session_record_t r = make_record(id, "z", SESSION_RUNNING, 6);
    store_session_write_t w = {"nobody", &r};
    assert_int_equal(store_spool_save(f->sp, f->fx->store, &w, 1, "node-a"), -ENOENT);
    assert_int_equal(store_spool_pending(f->sp), 0);
    session_record_free(&r);
}

int main(void) {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_reachable_store_takes_the_records_at_once),
        T(test_an_unreachable_store_keeps_records_in_the_file_then_flushes_the_latest),
        T(test_a_flush_while_the_store_is_away_keeps_everything),
        T(test_a_reopened_spool_flushes_what_was_left_exactly),
        T(test_a_line_that_is_no_record_is_refused_with_its_number),
        T(test_errors_other_than_unreachable_are_returned_and_not_kept),
        T(test_a_file_that_cannot_grow_keeps_the_records_in_memory),
        T(test_a_torn_last_line_is_cut_off_at_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
