/* The catalog's public behaviour (catalog.h), and the catalog against a naive model: random
 * sessions (bulk-loaded, then changed one by one as live sessions are), random queries, every
 * visited row compared. The private header is used only to reach the bulk path
 * (catalog_index_put with defer, then catalog_index_finish) as a sync of a large import does. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "catalog/catalog_internal.h"
#include "catalog/catalog_query.h"
#include "core/uuid.h"
#include "session/url_match.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd() % n); }

static const char *const zones[] = {"scraping_browser1", "Scraping_browser1", "zone_b"};
static const char *const urls[] = {
    "https://www.example.com/a",       "https://example.com",           "http://EXAMPLE.com:8080/x?y=1",
    "https://notexample.com/",         "https://shop.example.com/cart", "https://user:pw@example.org/p",
    "http://[::1]:9000/v6",            "https://www.example.com/a/b",   "https://WWW.Example.COM/A/C",
    "https://deep.sub.example.com/",   "https://example.co.uk/",        "http://127.0.0.1/",
    "https://www.example.com",         "ftp://files.example.net/f",     "https://examplE.com./trail",
};
#define NURLS (sizeof urls / sizeof *urls)

typedef struct {
    const char *customer;
    session_record_t rec;
    uint8_t id[16];
} model_row_t;

static model_row_t *model;
static size_t model_n;

static char *maybe_url(void) { return rnd_below(6) == 0 ? NULL : strdup(urls[rnd_below(NURLS)]); }

static void random_record(session_record_t *r, const char *id_text) {
    memset(r, 0, sizeof *r);
    snprintf(r->session_id, sizeof r->session_id, "%s", id_text);
    r->api_name = strdup(zones[rnd_below(3)]);
    r->status = (session_status_t)rnd_below(3);
    r->target_url = maybe_url();
    r->end_url = maybe_url();
    r->navigations = rnd_below(20);
    r->timestamp_ms = 1700000000000LL + (int64_t)rnd_below(40) * 1000 + (rnd_below(4) == 0 ? rnd_below(3) : 0);
    r->duration_ms = r->status == SESSION_RUNNING ? SESSION_DURATION_NULL : (int64_t)rnd_below(8) * 500;
    r->captcha = (captcha_t)rnd_below(4);
    r->bandwidth = rnd_below(10) * 1000;
    if (r->status == SESSION_FAILED) {
        r->error_code = strdup("page_navigated_error");
        r->error_message = strdup(rnd_below(2) ? "net::ERR_NAME_NOT_RESOLVED" : "");
    }
}

static void random_id(uint8_t id[16], char text[37]) {
    for (int i = 0; i < 16; i++) id[i] = (uint8_t)rnd();
    uuid_format(id, text);
    if (rnd_below(5) == 0) /* imported ids keep their case */
        for (int i = 0; i < 36; i++) text[i] = (char)toupper((unsigned char)text[i]);
}

/* ---- the model: the contract, written plainly ---- */

static bool host_of(const char *url, char *out, size_t cap) {
    const char *h;
    size_t n;
    if (!url || !url_host(url, strlen(url), &h, &n) || n >= cap) return false;
    for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)h[i]);
    out[n] = '\0';
    return true;
}

static bool model_url_match(const url_filter_t *f, const char *url) {
    if (f->kind == URL_FILTER_NONE) return true;
    if (!url) return false;
    if (f->kind == URL_FILTER_PREFIX) return strncasecmp(url, f->value, f->len) == 0;
    char host[512];
    if (!host_of(url, host, sizeof host)) return false;
    size_t hl = strlen(host);
    if (strcmp(host, f->value) == 0) return true;
    return hl > f->len && host[hl - f->len - 1] == '.' && strcmp(host + hl - f->len, f->value) == 0;
}

static int cmp64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

static const session_query_t *cmp_query;
static int model_cmp(const void *pa, const void *pb) {
    const model_row_t *a = *(model_row_t *const *)pa, *b = *(model_row_t *const *)pb;
    int r = 0;
    if (cmp_query->sort == SORT_DURATION) {
        bool an = a->rec.duration_ms < 0, bn = b->rec.duration_ms < 0;
        if (an != bn) return an ? 1 : -1;
        if (!an) r = cmp64(a->rec.duration_ms, b->rec.duration_ms);
    } else if (cmp_query->sort == SORT_BANDWIDTH) {
        r = cmp64(a->rec.bandwidth, b->rec.bandwidth);
    }
    if (!r) r = cmp64(a->rec.timestamp_ms, b->rec.timestamp_ms);
    if (!r) r = memcmp(a->id, b->id, 16);
    return cmp_query->desc ? -r : r;
}

/* What a list returns, in a comparable form: the page's rows as a JSON array, and the info. */
typedef struct {
    buf_t rows;
    jsonw_t w;
    catalog_page_info_t info;
} listing_t;

static void listing_init(listing_t *l) {
    buf_init(&l->rows);
    jsonw_init(&l->w, &l->rows);
    jsonw_array_begin(&l->w);
    l->info = (catalog_page_info_t){0};
}

static void listing_end(listing_t *l) {
    jsonw_array_end(&l->w);
    assert_false(jsonw_failed(&l->w));
}

static int listing_add(void *ctx, const session_record_t *view) {
    listing_t *l = ctx;
    session_record_write_json(view, &l->w);
    return 0;
}

static void model_list(const char *customer, const session_query_t *q, listing_t *out) {
    model_row_t **m = malloc((model_n + 1) * sizeof *m);
    size_t n = 0;
    for (size_t i = 0; i < model_n; i++) {
        const model_row_t *x = &model[i];
        if (strcmp(x->customer, customer) != 0) continue;
        if (q->api_name && strcmp(q->api_name, x->rec.api_name) != 0) continue;
        if (q->status >= 0 && (int)x->rec.status != q->status) continue;
        if (x->rec.timestamp_ms < q->start_ms || x->rec.timestamp_ms > q->end_ms) continue;
        if (!model_url_match(&q->target_url, x->rec.target_url)) continue;
        if (!model_url_match(&q->end_url, x->rec.end_url)) continue;
        m[n++] = &model[i];
    }
    cmp_query = q;
    qsort(m, n, sizeof *m, model_cmp);
    listing_init(out);
    for (size_t i = q->offset; i < n && out->info.count < q->limit; i++, out->info.count++)
        listing_add(out, &m[i]->rec);
    listing_end(out);
    out->info.total = n;
    free(m);
}

static const char *const domain_filters[] = {"example.com", "www.example.com", "notexample.com", "com",
                                             "example.co.uk", "[::1]", "127.0.0.1", "xample.com", "example.com."};
static const char *const prefix_filters[] = {"https://www.example.com/", "https://www.example.com/a",
                                             "http://", "https://", "https://user:pw@", "ftp://files"};

static void random_filter(url_filter_t *f, char *storage) {
    int k = rnd_below(4);
    if (k == 0) {
        f->kind = URL_FILTER_NONE;
        return;
    }
    const char *v = k == 1 ? domain_filters[rnd_below(9)] : prefix_filters[rnd_below(6)];
    f->kind = k == 1 ? URL_FILTER_DOMAIN : URL_FILTER_PREFIX;
    strcpy(storage, v);
    f->value = storage;
    f->len = strlen(v);
}

static void random_query(session_query_t *q, char *a, char *b) {
    memset(q, 0, sizeof *q);
    q->status = rnd_below(2) ? SESSION_QUERY_STATUS_ALL : (int)rnd_below(3);
    q->api_name = rnd_below(3) == 0 ? (char *)zones[rnd_below(3)] : NULL;
    if (rnd_below(8) == 0) q->api_name = "no_such_zone";
    q->start_ms = rnd_below(3) == 0 ? 1700000000000LL + rnd_below(40) * 1000 : INT64_MIN;
    q->end_ms = rnd_below(3) == 0 ? 1700000000000LL + rnd_below(40) * 1000 + rnd_below(3) : INT64_MAX;
    random_filter(&q->target_url, a);
    random_filter(&q->end_url, b);
    q->sort = (session_sort_t)rnd_below(3);
    q->desc = rnd_below(2);
    q->limit = 1 + rnd_below(rnd_below(2) ? 100 : 5);
    q->offset = rnd_below(4) == 0 ? 0 : rnd_below(700);
}

static void check_queries(catalog_t *cat, int rounds) {
    static const char *const customers[] = {"cust_a", "cust_b", "nobody"};
    for (int i = 0; i < rounds; i++) {
        session_query_t q;
        char a[64], b[64];
        random_query(&q, a, b);
        const char *cust = customers[rnd_below(3)];
        catalog_query_set_filter_budget(i % 2 ? 16 : 0); /* bitmaps of candidate sets, or row checks */
        listing_t got, want;
        listing_init(&got);
        assert_int_equal(catalog_list(cat, cust, &q, listing_add, &got, &got.info), 0);
        listing_end(&got);
        model_list(cust, &q, &want);
        if (strcmp(got.rows.data, want.rows.data) != 0 || got.info.count != want.info.count ||
            got.info.total != want.info.total) {
            print_error("query %d: customer=%s zone=%s status=%d window=[%lld,%lld] t=%d:%s e=%d:%s sort=%d desc=%d "
                        "limit=%u offset=%u\n got: %u of %llu %.600s\nwant: %u of %llu %.600s\n",
                        i, cust, q.api_name ? q.api_name : "-", q.status, (long long)q.start_ms, (long long)q.end_ms,
                        q.target_url.kind, q.target_url.value ? q.target_url.value : "", q.end_url.kind,
                        q.end_url.value ? q.end_url.value : "", q.sort, q.desc, q.limit, q.offset, got.info.count,
                        (unsigned long long)got.info.total, got.rows.data, want.info.count,
                        (unsigned long long)want.info.total, want.rows.data);
            fail();
        }
        buf_free(&got.rows);
        buf_free(&want.rows);
    }
}

static void free_model(void) {
    for (size_t i = 0; i < model_n; i++) session_record_free(&model[i].rec);
    free(model);
    model = NULL;
    model_n = 0;
}

enum { MODEL_ROWS = 2500, BULK_ROWS = 2000 };

/* A new random session of a random customer, in the model (not yet in the catalog). */
static model_row_t *model_add(void) {
    model_row_t *x = &model[model_n++];
    char text[37];
    random_id(x->id, text);
    x->customer = rnd_below(5) == 0 ? "cust_b" : "cust_a";
    random_record(&x->rec, text);
    return x;
}

/* Bulk-loads BULK_ROWS random sessions, as a sync of a large import does: rows wait
 * unindexed and every array is rebuilt at the end (and once on the way, so that the final
 * rebuild starts from a finished state with many rows waiting on top of it). */
static catalog_t *bulk_loaded_catalog(void) {
    catalog_t *cat = catalog_new();
    assert_non_null(cat);
    model = calloc(MODEL_ROWS, sizeof *model);
    assert_non_null(model);
    pthread_rwlock_wrlock(&cat->lock);
    while (model_n < BULK_ROWS) {
        model_row_t *x = model_add();
        customer_t *c = catalog_index_add_customer(cat, x->customer);
        assert_int_equal(catalog_index_put(c, &cat->pool, &x->rec, true), 0);
        if (model_n == 600)
            for (uint32_t i = 0; i < cat->ncustomers; i++)
                assert_int_equal(catalog_index_finish(cat->customers[i], &cat->pool), 0);
    }
    for (uint32_t i = 0; i < cat->ncustomers; i++)
        assert_int_equal(catalog_index_finish(cat->customers[i], &cat->pool), 0);
    catalog_index_recount(cat);
    pthread_rwlock_unlock(&cat->lock);
    return cat;
}

/* Then live updates through catalog_put: new sessions, and changes to existing ones (half of
 * them keeping their timestamp, which moves a row within the time-sorted arrays' equal keys). */
static void change_one_by_one(catalog_t *cat, int rounds) {
    for (int i = 0; i < rounds; i++) {
        if (model_n < MODEL_ROWS && rnd_below(3) == 0) {
            model_row_t *x = model_add();
            assert_int_equal(catalog_put(cat, x->customer, &x->rec), 0);
        } else {
            model_row_t *x = &model[rnd_below((uint32_t)model_n)];
            char text[37];
            memcpy(text, x->rec.session_id, 37);
            int64_t ts = x->rec.timestamp_ms;
            session_record_free(&x->rec);
            random_record(&x->rec, text);
            if (rnd_below(2)) x->rec.timestamp_ms = ts;
            assert_int_equal(catalog_put(cat, x->customer, &x->rec), 0);
        }
    }
}

static void test_bulk_loaded_sessions_list_like_the_model(void **state) {
    (void)state;
    catalog_t *cat = bulk_loaded_catalog();
    check_queries(cat, 1500);
    assert_int_equal(catalog_size(cat), model_n);
    free_model();
    catalog_free(cat);
}

static void test_sessions_changed_one_by_one_list_like_the_model(void **state) {
    (void)state;
    catalog_t *cat = bulk_loaded_catalog();
    change_one_by_one(cat, 1500);
    check_queries(cat, 2000);
    assert_int_equal(catalog_size(cat), model_n);
    free_model();
    catalog_free(cat);
}

static void test_every_session_gets_like_the_model(void **state) {
    (void)state;
    catalog_t *cat = bulk_loaded_catalog();
    change_one_by_one(cat, 500);
    for (size_t i = 0; i < model_n; i++) {
        const model_row_t *x = &model[i];
        listing_t got, want;
        listing_init(&got);
        assert_int_equal(catalog_get(cat, x->customer, x->id, listing_add, &got), 0);
        listing_end(&got);
        listing_init(&want);
        listing_add(&want, &x->rec);
        listing_end(&want);
        assert_string_equal(got.rows.data, want.rows.data);
        buf_free(&got.rows);
        buf_free(&want.rows);
    }
    free_model();
    catalog_free(cat);
}

/* ---- single behaviours ---- */

static const char *const ID_LOWER = "0192f5e8-7b3c-7def-8a12-3456789abcde";
static const char *const ID_UPPER = "0192F5E8-7B3C-7DEF-8A12-3456789ABCDE";

static void fixed_record(session_record_t *r, const char *id_text, int64_t ts_ms) {
    memset(r, 0, sizeof *r);
    snprintf(r->session_id, sizeof r->session_id, "%s", id_text);
    r->api_name = "zone_a"; /* borrowed literals: these records are never freed */
    r->status = SESSION_FINISHED;
    r->target_url = "https://www.example.com/";
    r->timestamp_ms = ts_ms;
    r->duration_ms = 1500;
    r->bandwidth = 1000;
}

static void parse_id(const char *text, uint8_t id[16]) { assert_int_equal(uuid_parse(text, strlen(text), id), 0); }

/* Visits into a listing and returns its rows as JSON (the listing's buffer: free it). */
static char *list_rows(catalog_t *cat, const char *customer, const session_query_t *q, catalog_page_info_t *info) {
    listing_t l;
    listing_init(&l);
    assert_int_equal(catalog_list(cat, customer, q, listing_add, &l, info), 0);
    listing_end(&l);
    return l.rows.data;
}

static void test_list_of_a_customer_without_sessions_is_empty(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    session_query_t q;
    session_query_init(&q);
    catalog_page_info_t info = {.count = 7, .total = 7};
    char *rows = list_rows(cat, "anyone", &q, &info);
    assert_string_equal(rows, "[]");
    assert_int_equal(info.count, 0);
    assert_int_equal(info.total, 0);
    free(rows);
    catalog_free(cat);
}

static void test_get_of_an_unknown_session_is_enoent(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    session_record_t r;
    fixed_record(&r, ID_LOWER, 1700000000000);
    assert_int_equal(catalog_put(cat, "cust_a", &r), 0);
    uint8_t id[16] = {0};
    listing_t l;
    listing_init(&l);
    assert_int_equal(catalog_get(cat, "cust_a", id, listing_add, &l), -ENOENT);
    assert_int_equal(catalog_get(cat, "nobody", id, listing_add, &l), -ENOENT);
    listing_end(&l);
    assert_string_equal(l.rows.data, "[]"); /* the row function was not called */
    buf_free(&l.rows);
    catalog_free(cat);
}

static void test_put_with_an_unparseable_id_is_einval(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    session_record_t r;
    fixed_record(&r, "not-a-uuid", 1700000000000);
    assert_int_equal(catalog_put(cat, "cust_a", &r), -EINVAL);
    assert_int_equal(catalog_size(cat), 0);
    catalog_free(cat);
}

static void test_get_finds_any_case_of_the_id_and_returns_the_text_as_given(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    session_record_t upper, lower;
    fixed_record(&upper, ID_UPPER, 1700000000000);
    fixed_record(&lower, "0192f5e8-7b3c-7def-8a12-000000000001", 1700000000001);
    assert_int_equal(catalog_put(cat, "cust_a", &upper), 0);
    assert_int_equal(catalog_put(cat, "cust_a", &lower), 0);
    uint8_t id[16];
    listing_t l;
    listing_init(&l);
    parse_id(ID_LOWER, id); /* the lowercase text finds the uppercase session */
    assert_int_equal(catalog_get(cat, "cust_a", id, listing_add, &l), 0);
    parse_id("0192F5E8-7B3C-7DEF-8A12-000000000001", id);
    assert_int_equal(catalog_get(cat, "cust_a", id, listing_add, &l), 0);
    listing_end(&l);
    assert_non_null(strstr(l.rows.data, "\"session_id\":\"0192F5E8-7B3C-7DEF-8A12-3456789ABCDE\""));
    assert_non_null(strstr(l.rows.data, "\"session_id\":\"0192f5e8-7b3c-7def-8a12-000000000001\""));
    buf_free(&l.rows);
    catalog_free(cat);
}

static void test_put_of_a_known_id_replaces_the_session(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    session_record_t r;
    fixed_record(&r, ID_LOWER, 1700000000000);
    assert_int_equal(catalog_put(cat, "cust_a", &r), 0);
    fixed_record(&r, ID_UPPER, 1700000005000); /* the same session, its id in another case */
    r.status = SESSION_FAILED;
    r.error_code = "page_navigated_error";
    r.error_message = "net::ERR_NAME_NOT_RESOLVED";
    assert_int_equal(catalog_put(cat, "cust_a", &r), 0);
    assert_int_equal(catalog_size(cat), 1);
    session_query_t q;
    session_query_init(&q);
    q.status = SESSION_FINISHED;
    catalog_page_info_t info;
    char *rows = list_rows(cat, "cust_a", &q, &info);
    assert_int_equal(info.total, 0); /* no longer in the arrays of its old status */
    free(rows);
    q.status = SESSION_FAILED;
    rows = list_rows(cat, "cust_a", &q, &info);
    assert_int_equal(info.total, 1);
    assert_non_null(strstr(rows, "\"session_id\":\"0192F5E8-7B3C-7DEF-8A12-3456789ABCDE\""));
    assert_non_null(strstr(rows, "\"code\":\"page_navigated_error\""));
    free(rows);
    catalog_free(cat);
}

static void test_sessions_of_one_customer_are_invisible_to_another(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    session_record_t r;
    fixed_record(&r, ID_LOWER, 1700000000000);
    assert_int_equal(catalog_put(cat, "cust_a", &r), 0);
    session_query_t q;
    session_query_init(&q);
    catalog_page_info_t info;
    char *rows = list_rows(cat, "cust_b", &q, &info);
    assert_string_equal(rows, "[]");
    assert_int_equal(info.total, 0);
    free(rows);
    uint8_t id[16];
    parse_id(ID_LOWER, id);
    listing_t l;
    listing_init(&l);
    assert_int_equal(catalog_get(cat, "cust_b", id, listing_add, &l), -ENOENT);
    assert_int_equal(catalog_get(cat, "cust_a", id, listing_add, &l), 0);
    listing_end(&l);
    buf_free(&l.rows);
    catalog_free(cat);
}

static void test_size_counts_the_sessions_of_all_customers(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    assert_int_equal(catalog_size(cat), 0);
    session_record_t r;
    fixed_record(&r, ID_LOWER, 1700000000000);
    assert_int_equal(catalog_put(cat, "cust_a", &r), 0);
    assert_int_equal(catalog_put(cat, "cust_b", &r), 0); /* the same id is another session there */
    fixed_record(&r, "0192f5e8-7b3c-7def-8a12-000000000002", 1700000000000);
    assert_int_equal(catalog_put(cat, "cust_b", &r), 0);
    assert_int_equal(catalog_size(cat), 3);
    catalog_free(cat);
}

typedef struct {
    int calls;
    int fail_at; /* the call that returns the error, 1-based */
} stop_ctx_t;

static int stop_at(void *ctx, const session_record_t *view) {
    stop_ctx_t *s = ctx;
    (void)view;
    return ++s->calls == s->fail_at ? -ECANCELED : 0;
}

static void test_row_fn_error_stops_the_list_and_is_returned(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    for (int i = 0; i < 5; i++) {
        char text[37];
        snprintf(text, sizeof text, "0192f5e8-7b3c-7def-8a12-00000000000%c", '0' + i);
        session_record_t r;
        fixed_record(&r, text, 1700000000000 + i);
        assert_int_equal(catalog_put(cat, "cust_a", &r), 0);
    }
    session_query_t q;
    session_query_init(&q);
    stop_ctx_t s = {.fail_at = 2};
    catalog_page_info_t info = {.count = 99, .total = 99};
    assert_int_equal(catalog_list(cat, "cust_a", &q, stop_at, &s, &info), -ECANCELED);
    assert_int_equal(s.calls, 2);
    assert_int_equal(info.count, 99); /* not set on an error */
    uint8_t id[16];
    parse_id("0192f5e8-7b3c-7def-8a12-000000000003", id);
    s = (stop_ctx_t){.fail_at = 1};
    assert_int_equal(catalog_get(cat, "cust_a", id, stop_at, &s), -ECANCELED);
    catalog_free(cat);
}

static void test_rows_waiting_for_the_index_are_invisible_until_finished(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    session_record_t r;
    fixed_record(&r, ID_LOWER, 1700000000000);
    pthread_rwlock_wrlock(&cat->lock);
    customer_t *c = catalog_index_add_customer(cat, "cust_a");
    assert_int_equal(catalog_index_put(c, &cat->pool, &r, true), 0);
    pthread_rwlock_unlock(&cat->lock);
    session_query_t q;
    session_query_init(&q);
    catalog_page_info_t info;
    char *rows = list_rows(cat, "cust_a", &q, &info);
    assert_int_equal(info.total, 0); /* a bulk change in progress: queries see the state before it */
    free(rows);
    pthread_rwlock_wrlock(&cat->lock);
    assert_int_equal(catalog_index_finish(c, &cat->pool), 0);
    pthread_rwlock_unlock(&cat->lock);
    rows = list_rows(cat, "cust_a", &q, &info);
    assert_int_equal(info.total, 1);
    assert_int_equal(info.count, 1);
    free(rows);
    catalog_free(cat);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_of_a_customer_without_sessions_is_empty),
        cmocka_unit_test(test_get_of_an_unknown_session_is_enoent),
        cmocka_unit_test(test_put_with_an_unparseable_id_is_einval),
        cmocka_unit_test(test_get_finds_any_case_of_the_id_and_returns_the_text_as_given),
        cmocka_unit_test(test_put_of_a_known_id_replaces_the_session),
        cmocka_unit_test(test_sessions_of_one_customer_are_invisible_to_another),
        cmocka_unit_test(test_size_counts_the_sessions_of_all_customers),
        cmocka_unit_test(test_row_fn_error_stops_the_list_and_is_returned),
        cmocka_unit_test(test_rows_waiting_for_the_index_are_invisible_until_finished),
        cmocka_unit_test(test_bulk_loaded_sessions_list_like_the_model),
        cmocka_unit_test(test_sessions_changed_one_by_one_list_like_the_model),
        cmocka_unit_test(test_every_session_gets_like_the_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
