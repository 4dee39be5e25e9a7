/* store_copy: the source read in seq order and staged into the destination chunk by chunk
 * (each chunk one transaction of the destination, with its progress mark), then the small
 * tables and the staged sessions written in the destination's one final transaction. The
 * rows the source's backend hands out are borrowed, so every staged item is a copy of ours. */
#include "store/store_copy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

typedef struct {
    store_item_t *v;
    size_t n, cap;
} items_t;

typedef struct {
    store_t *to;
    const char *source_id;
    items_t items;
    size_t chunk;
    int64_t staged, total;
    store_copy_progress progress;
    void *ctx;
    char *err;
    size_t err_cap;
} stager_t;

static void item_free(store_item_t *it) {
    session_record_free(&it->rec);
    free(it->upstream);
    free(it->worker);
}

static void items_clear(items_t *l) {
    for (size_t i = 0; i < l->n; i++) item_free(&l->v[i]);
    l->n = 0;
}

static char *dup_or_null(const char *s, bool *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = true;
    return d;
}

/* Appends a deep copy of `it`: 0 or -ENOMEM. */
static int items_add(items_t *l, const store_item_t *it) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        store_item_t *grown = realloc(l->v, cap * sizeof *grown);
        if (!grown) return -ENOMEM;
        l->v = grown;
        l->cap = cap;
    }
    store_item_t *c = &l->v[l->n];
    *c = *it;
    memset(&c->rec, 0, sizeof c->rec);
    bool oom = false;
    c->upstream = dup_or_null(it->upstream, &oom);
    c->worker = dup_or_null(it->worker, &oom);
    if (it->kind == STORE_ITEM_SESSION && session_record_copy(&c->rec, &it->rec) != 0) oom = true;
    if (oom) {
        item_free(c);
        return -ENOMEM;
    }
    l->n++;
    return 0;
}

static int stage_flush(stager_t *st) {
    if (st->items.n == 0) return 0;
    int rc = st->to->backend->copy_stage(st->to->db, st->source_id, st->items.v, st->items.n, st->err, st->err_cap);
    if (rc != 0) return rc;
    st->staged += (int64_t)st->items.n;
    items_clear(&st->items);
    if (st->progress) st->progress(st->ctx, st->staged, st->total);
    return 0;
}

static int stage_one(void *ctx, const store_item_t *it) {
    stager_t *st = ctx;
    if (items_add(&st->items, it) != 0) {
        store_set_err(st->err, st->err_cap, "out of memory");
        return -ENOMEM;
    }
    return st->items.n >= st->chunk ? stage_flush(st) : 0;
}

static int collect_one(void *ctx, const store_item_t *it) {
    return items_add(ctx, it);
}

int store_copy(store_t *from, store_t *to, const char *source_id, size_t chunk, store_copy_progress progress,
               void *ctx, store_copy_stats_t *stats, char *err, size_t err_cap) {
    memset(stats, 0, sizeof *stats);
    const store_backend_t *src = from->backend, *dst = to->backend;
    if (!src->export_items || !src->sessions_count) {
        store_set_err(err, err_cap, "the source cannot be read whole (give a SQLite file)");
        return -ENOTSUP;
    }
    if (!dst->copy_resume || !dst->copy_stage || !dst->copy_commit || !dst->copy_abandon) {
        store_set_err(err, err_cap, "only a PostgreSQL database can be the destination of a copy");
        return -ENOTSUP;
    }
    int64_t staged_seq = 0;
    stager_t st = {.to = to, .source_id = source_id, .chunk = chunk ? chunk : STORE_COPY_CHUNK,
                   .progress = progress, .ctx = ctx, .err = err, .err_cap = err_cap};
    int rc = dst->copy_resume(to->db, source_id, &staged_seq, &stats->resumed, err, err_cap);
    if (rc == 0) rc = src->sessions_count(from->db, 0, &st.total, err, err_cap);
    st.staged = stats->resumed;
    /* A resumed run goes on after the last seq staged: a session changed in the source since
     * comes again with its new seq, and the final transaction takes its latest version. */
    if (rc == 0) rc = src->export_items(from->db, STORE_ITEM_SESSION, staged_seq, stage_one, &st, err, err_cap);
    if (rc == 0) rc = stage_flush(&st);
    items_clear(&st.items);
    free(st.items.v);
    if (rc == -ENOMEM) store_set_err(err, err_cap, "out of memory");
    if (rc != 0) return rc;

    /* The small tables are read whole now (they may have changed since an earlier run). */
    items_t meta = {0};
    int64_t *counts[] = {&stats->customers, &stats->keys, &stats->zones};
    for (int kind = STORE_ITEM_CUSTOMER; rc == 0 && kind <= STORE_ITEM_ZONE; kind++) {
        size_t before = meta.n;
        rc = src->export_items(from->db, (store_item_kind_t)kind, 0, collect_one, &meta, err, err_cap);
        *counts[kind] = (int64_t)(meta.n - before);
    }
    if (rc == -ENOMEM) store_set_err(err, err_cap, "out of memory");
    stats->sessions = st.total;
    if (rc == 0) rc = dst->copy_commit(to->db, source_id, meta.v, meta.n, stats, err, err_cap);
    if (rc == -EEXIST) {
        /* A conflict is a decision, not an interruption: nothing of this copy stays. */
        char reason[256] = "";
        dst->copy_abandon(to->db, source_id, reason, sizeof reason);
    }
    items_clear(&meta);
    free(meta.v);
    if (rc == 0 && progress) progress(ctx, st.total, st.total);
    return rc;
}
