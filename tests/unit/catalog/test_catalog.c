/* The catalog against a naive model: random sessions (bulk-loaded and then changed one by
 * one, as live sessions are), random queries, every visited row compared. Uses the
 * catalog's private header to reach the bulk path (catalog_index_put with defer, the
 * rebuild of catalog_index_finish) as a sync of a large import takes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <strings.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_internal.h"
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

static const session_query_t *cmp_query;
static int model_cmp(const void *pa, const void *pb) {
    const model_row_t *a = *(model_row_t *const *)pa, *b = *(model_row_t *const *)pb;
    int r = 0;
    if (cmp_query->sort == SORT_DURATION) {
        bool an = a->rec.duration_ms < 0, bn = b->rec.duration_ms < 0;
        if (an != bn) return an ? 1 : -1;
        if (!an) r = cmp_i64(a->rec.duration_ms, b->rec.duration_ms);
    } else if (cmp_query->sort == SORT_BANDWIDTH) {
        r = cmp_i64(a->rec.bandwidth, b->rec.bandwidth);
    }
    if (!r) r = cmp_i64(a->rec.timestamp_ms, b->rec.timestamp_ms);
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

static void test_random_against_model(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    assert_non_null(cat);
    enum { N = 2500 };
    model = calloc(N, sizeof *model);
    /* Bulk-load most rows, as a sync of a large import does. */
    pthread_rwlock_wrlock(&cat->lock);
    for (model_n = 0; model_n < N - 500; model_n++) {
        model_row_t *x = &model[model_n];
        char text[37];
        random_id(x->id, text);
        x->customer = rnd_below(5) == 0 ? "cust_b" : "cust_a";
        random_record(&x->rec, text);
        customer_t *c = catalog_index_add_customer(cat, x->customer);
        assert_int_equal(catalog_index_put(c, &cat->pool, &x->rec, true), 0);
        if (model_n == 600) /* a first bulk change is finished; the rest waits on top of it */
            for (uint32_t i = 0; i < cat->ncustomers; i++)
                assert_int_equal(catalog_index_finish(cat->customers[i], &cat->pool), 0);
    }
    for (uint32_t i = 0; i < cat->ncustomers; i++) assert_int_equal(catalog_index_finish(cat->customers[i], &cat->pool), 0);
    catalog_index_recount(cat);
    pthread_rwlock_unlock(&cat->lock);
    check_queries(cat, 1500);

    /* Then one at a time: new sessions, and changes to existing ones (live updates). */
    for (int i = 0; i < 1500; i++) {
        if (model_n < N && rnd_below(3) == 0) {
            model_row_t *x = &model[model_n++];
            char text[37];
            random_id(x->id, text);
            x->customer = rnd_below(5) == 0 ? "cust_b" : "cust_a";
            random_record(&x->rec, text);
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
    check_queries(cat, 2000);
    assert_int_equal(catalog_size(cat), model_n);

    /* Get by id: any case of the id finds it; the text comes back as it was given. */
    for (int i = 0; i < 200; i++) {
        model_row_t *x = &model[rnd_below((uint32_t)model_n)];
        listing_t got, want;
        listing_init(&got);
        assert_int_equal(catalog_get(cat, x->customer, x->id, listing_add, &got), 0);
        listing_end(&got);
        listing_init(&want);
        listing_add(&want, &x->rec);
        listing_end(&want);
        assert_string_equal(got.rows.data, want.rows.data);
        const char *other = strcmp(x->customer, "cust_a") == 0 ? "cust_b" : "cust_a";
        assert_int_equal(catalog_get(cat, other, x->id, listing_add, &got), -ENOENT);
        buf_free(&got.rows);
        buf_free(&want.rows);
    }
    free_model();
    catalog_free(cat);
}

static void test_empty_catalog(void **state) {
    (void)state;
    catalog_t *cat = catalog_new();
    session_query_t q;
    session_query_init(&q);
    listing_t got;
    listing_init(&got);
    got.info = (catalog_page_info_t){.count = 7, .total = 7};
    assert_int_equal(catalog_list(cat, "anyone", &q, listing_add, &got, &got.info), 0);
    listing_end(&got);
    assert_string_equal(got.rows.data, "[]");
    assert_int_equal(got.info.count, 0);
    assert_int_equal(got.info.total, 0);
    uint8_t id[16] = {0};
    assert_int_equal(catalog_get(cat, "anyone", id, listing_add, &got), -ENOENT);
    buf_free(&got.rows);
    catalog_free(cat);
}

static void test_string_pool_refcounts(void **state) {
    (void)state;
    string_pool_t p;
    assert_int_equal(string_pool_init(&p), 0);
    uint32_t a = string_pool_intern(&p, "https://a/", 10);
    uint32_t b = string_pool_intern(&p, "https://a/", 10);
    assert_int_equal(a, b);
    string_pool_release(&p, a);
    assert_string_equal(string_pool_get(&p, b), "https://a/");
    string_pool_release(&p, b);
    assert_int_equal(p.bytes, 0);
    /* Many distinct strings grow the buckets and all stay findable. */
    char tmp[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(tmp, sizeof tmp, "s%d", i);
        string_pool_intern(&p, tmp, (size_t)n);
    }
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(tmp, sizeof tmp, "s%d", i);
        uint32_t id = string_pool_intern(&p, tmp, (size_t)n);
        assert_int_equal(p.entries[id].refs, 2);
    }
    string_pool_free(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_catalog),
        cmocka_unit_test(test_string_pool_refcounts),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
