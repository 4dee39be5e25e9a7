/* The store alone, on either backend (a SQLite file or a PostgreSQL URI): import, batched
 * saves, and the full change feed, timed. Records are generated (no JSON parsing), so the
 * figures are the store's own cost (docs/benchmarks.md, "Store").
 *   store_bench TARGET import N              one import of N records (customer "bench")
 *   store_bench TARGET save N BATCH THREADS  N records saved through store_sessions_save in
 *                                            batches of BATCH, from THREADS threads at once
 *   store_bench TARGET feed                  store_sessions_since(0) over everything */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A realistic record: URLs of a few dozen bytes, an error on one in ten. */
static void make(session_record_t *r, uint64_t n, uint32_t salt) {
    static char api[] = "scraping_browser1", url[] = "https://www.example.com/products/item?id=1234567",
                end[] = "https://www.example.com/products/item/checkout", code[] = "navigation_timeout",
                msg[] = "the page did not load within 30 s";
    memset(r, 0, sizeof *r);
    /* ids in random order (as a real import's are): n through a bijective mix of 48 bits */
    uint64_t x = n * UINT64_C(0x9E3779B97F4A7C15) & UINT64_C(0xFFFFFFFFFFFF);
    x ^= x >> 23;
    snprintf(r->session_id, sizeof r->session_id, "%08" PRIx32 "-c3d4-7e5f-8a9b-%012" PRIx64, salt, x);
    r->api_name = api;
    r->status = n % 10 == 0 ? SESSION_FAILED : SESSION_FINISHED;
    r->target_url = url;
    r->end_url = end;
    r->navigations = (int64_t)(n % 7);
    r->timestamp_ms = INT64_C(1764583200000) + (int64_t)n * 1000;
    r->duration_ms = 1000 + (int64_t)(n % 60000);
    r->captcha = (captcha_t)(n % 4);
    r->bandwidth = (int64_t)n * 100;
    if (r->status == SESSION_FAILED) {
        r->error_code = code;
        r->error_message = msg;
    }
}

typedef struct {
    uint64_t next, count;
} gen_t;

/* The import's source: the store frees what it gets, so every string is a copy. */
static int next_record(void *ctx, session_record_t *rec, char *err, size_t err_cap) {
    (void)err;
    (void)err_cap;
    gen_t *g = ctx;
    if (g->next == g->count) return 0;
    session_record_t r;
    make(&r, g->next++, 0x0190a1b2);
    if (session_record_copy(rec, &r) != 0) return -1;
    return 1;
}

typedef struct {
    store_t *store;
    int index;
    uint64_t count, batch;
    int failures;
} saver_t;

static void *saver_main(void *arg) {
    saver_t *s = arg;
    session_record_t *recs = calloc(s->batch, sizeof *recs);
    store_session_write_t *items = calloc(s->batch, sizeof *items);
    if (!recs || !items) {
        s->failures++;
        free(recs);
        free(items);
        return NULL;
    }
    for (uint64_t done = 0; done < s->count;) {
        uint64_t n = s->count - done < s->batch ? s->count - done : s->batch;
        for (uint64_t i = 0; i < n; i++) {
            make(&recs[i], done + i, 0x0190b000u + (uint32_t)s->index);
            items[i] = (store_session_write_t){"bench", &recs[i]};
        }
        if (store_sessions_save(s->store, items, n, "bench-node") != 0) s->failures++;
        done += n;
    }
    free(recs);
    free(items);
    return NULL;
}

static int count_row(void *ctx, const char *customer_id, const session_record_t *rec) {
    (void)customer_id;
    (void)rec;
    (*(int64_t *)ctx)++;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: store_bench TARGET import N | save N BATCH THREADS | feed\n");
        return 2;
    }
    char err[512] = "";
    store_t *s = NULL;
    if (store_open(argv[1], &s, err, sizeof err) != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 1;
    }
    int rc = store_customer_add(s, "bench", err, sizeof err);
    if (rc != 0 && rc != -EEXIST) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 1;
    }
    int result = 0;
    double t0 = now_s();
    if (strcmp(argv[2], "import") == 0 && argc == 4) {
        gen_t g = {0, strtoull(argv[3], NULL, 10)};
        int64_t imported = 0;
        rc = store_sessions_import(s, "bench", next_record, &g, &imported, err, sizeof err);
        double dt = now_s() - t0;
        if (rc != 0) fprintf(stderr, "store_bench: import: %s\n", err);
        else printf("import: %" PRId64 " rows in %.2f s: %.0f rows/s\n", imported, dt, (double)imported / dt);
        result = rc != 0;
    } else if (strcmp(argv[2], "save") == 0 && argc == 6) {
        uint64_t n = strtoull(argv[3], NULL, 10), batch = strtoull(argv[4], NULL, 10);
        int threads = atoi(argv[5]);
        if (batch == 0 || threads < 1 || threads > 64) return 2;
        pthread_t t[64];
        saver_t sv[64];
        for (int i = 0; i < threads; i++) {
            sv[i] = (saver_t){s, i, n / (uint64_t)threads, batch, 0};
            pthread_create(&t[i], NULL, saver_main, &sv[i]);
        }
        int failures = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(t[i], NULL);
            failures += sv[i].failures;
        }
        double dt = now_s() - t0;
        uint64_t total = n / (uint64_t)threads * (uint64_t)threads;
        printf("save: %" PRIu64 " records in batches of %" PRIu64 " from %d threads in %.2f s: %.0f records/s, "
               "%.0f commits/s%s\n",
               total, batch, threads, dt, (double)total / dt, (double)total / (double)batch / dt,
               failures ? " (FAILURES)" : "");
        result = failures != 0;
    } else if (strcmp(argv[2], "feed") == 0) {
        int64_t rows = 0, last = 0;
        rc = store_sessions_since(s, 0, &last, count_row, &rows);
        double dt = now_s() - t0;
        printf("feed: %" PRId64 " rows (last seq %" PRId64 ") in %.2f s: %.0f rows/s\n", rows, last, dt,
               (double)rows / dt);
        result = rc != 0;
    } else {
        fprintf(stderr, "usage: store_bench TARGET import N | save N BATCH THREADS | feed\n");
        result = 2;
    }
    store_close(s);
    return result;
}
