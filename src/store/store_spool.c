/* The spool: see store_spool.h.
 *
 * What waits is held twice: in the file (what survives a crash) and in memory (what a flush
 * writes), both in the order the saves were made. A flush collapses each session to its
 * latest record (saves are whole records), writes them in one batch, then truncates the file.
 * A crash between the commit and the truncation leaves records that are written again at the
 * next flush: harmless, an upsert of the same record. */
#include "core/log.h"
#include "store/store_spool.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "json/jsonw.h"
#include "store/store_internal.h"

typedef struct {
    char customer[STORE_ID_MAX + 1];
    char worker[STORE_NODE_ID_MAX + 1]; /* "" for none */
    session_record_t rec;
} spooled_t;

struct store_spool {
    pthread_mutex_t lock;     /* one save or flush at a time, in order */
    pthread_mutex_t mem_lock; /* items, n: also taken alone by store_spool_visit, so that a
                               * reader never waits for a flush stuck on the store */
    int fd;
    char *path;
    spooled_t *items;
    size_t n, cap;
    size_t on_file;  /* the file holds items[0..on_file): fewer than n once it could not take
                      * some (a full disk); the rest is appended at the next save it can take */
};

/* ---- the line format ---- */

static void key_string(jsonw_t *w, const char *key, const char *value) {
    jsonw_key(w, key);
    jsonw_string(w, value);
}

static void key_int_or_null(jsonw_t *w, const char *key, int64_t v, bool null) {
    jsonw_key(w, key);
    if (null) jsonw_null(w);
    else jsonw_int(w, v);
}

static int append_line(buf_t *out, const char *customer, const char *worker, const session_record_t *r) {
    jsonw_t w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    key_string(&w, "customer", customer);
    key_string(&w, "worker", worker && *worker ? worker : NULL);
    key_string(&w, "session_id", r->session_id);
    key_string(&w, "api_name", r->api_name);
    key_int_or_null(&w, "status", r->status, false);
    key_string(&w, "target_url", r->target_url);
    key_string(&w, "end_url", r->end_url);
    key_int_or_null(&w, "navigations", r->navigations, false);
    key_int_or_null(&w, "timestamp_ms", r->timestamp_ms, false);
    key_int_or_null(&w, "duration_ms", r->duration_ms, r->duration_ms == SESSION_DURATION_NULL);
    key_int_or_null(&w, "captcha", r->captcha, false);
    key_int_or_null(&w, "bandwidth", r->bandwidth, false);
    key_string(&w, "error_code", r->error_code);
    key_string(&w, "error_message", r->error_message);
    jsonw_object_end(&w);
    if (jsonw_failed(&w) || buf_append_char(out, '\n') < 0) return -ENOMEM;
    return 0;
}

/* A copy of a string member, NULL when null; *bad on a wrong type or no memory. */
static char *opt_string(const cJSON *o, const char *name, bool *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsNull(v) || !v) return NULL;
    if (!cJSON_IsString(v)) {
        *bad = true;
        return NULL;
    }
    char *d = strdup(v->valuestring);
    if (!d) *bad = true;
    return d;
}

static int64_t number(const cJSON *o, const char *name, int64_t if_null, bool *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsNull(v)) return if_null;
    if (!cJSON_IsNumber(v)) {
        *bad = true;
        return 0;
    }
    return (int64_t)v->valuedouble;
}

static int parse_line(const char *line, size_t len, spooled_t *out) {
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -EINVAL;
    }
    bool bad = false;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "customer");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "session_id");
    const cJSON *wk = cJSON_GetObjectItemCaseSensitive(o, "worker");
    if (!cJSON_IsString(c) || strlen(c->valuestring) > STORE_ID_MAX || !cJSON_IsString(id) ||
        strlen(id->valuestring) >= sizeof out->rec.session_id ||
        (cJSON_IsString(wk) && strlen(wk->valuestring) > STORE_NODE_ID_MAX)) {
        cJSON_Delete(o);
        return -EINVAL;
    }
    snprintf(out->customer, sizeof out->customer, "%s", c->valuestring);
    snprintf(out->worker, sizeof out->worker, "%s", cJSON_IsString(wk) ? wk->valuestring : "");
    session_record_t *r = &out->rec;
    snprintf(r->session_id, sizeof r->session_id, "%s", id->valuestring);
    r->api_name = opt_string(o, "api_name", &bad);
    r->status = (session_status_t)number(o, "status", 0, &bad);
    r->target_url = opt_string(o, "target_url", &bad);
    r->end_url = opt_string(o, "end_url", &bad);
    r->navigations = number(o, "navigations", 0, &bad);
    r->timestamp_ms = number(o, "timestamp_ms", 0, &bad);
    r->duration_ms = number(o, "duration_ms", SESSION_DURATION_NULL, &bad);
    r->captcha = (captcha_t)number(o, "captcha", 0, &bad);
    r->bandwidth = number(o, "bandwidth", 0, &bad);
    r->error_code = opt_string(o, "error_code", &bad);
    r->error_message = opt_string(o, "error_message", &bad);
    cJSON_Delete(o);
    if (bad || !r->api_name) {
        session_record_free(r);
        return -EINVAL;
    }
    return 0;
}

/* ---- memory ---- */

/* (mem_lock held) */
static int remember(store_spool_t *sp, const char *customer, const char *worker, const session_record_t *rec) {
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 64;
        spooled_t *grown = realloc(sp->items, cap * sizeof *grown);
        if (!grown) return -ENOMEM;
        sp->items = grown;
        sp->cap = cap;
    }
    spooled_t *it = &sp->items[sp->n];
    if (session_record_copy(&it->rec, rec) < 0) return -ENOMEM;
    snprintf(it->customer, sizeof it->customer, "%s", customer);
    snprintf(it->worker, sizeof it->worker, "%s", worker ? worker : "");
    sp->n++;
    return 0;
}

static void forget_all(store_spool_t *sp) {
    pthread_mutex_lock(&sp->mem_lock);
    for (size_t i = 0; i < sp->n; i++) session_record_free(&sp->items[i].rec);
    sp->n = 0;
    pthread_mutex_unlock(&sp->mem_lock);
}

/* ---- the file ---- */

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int load(store_spool_t *sp, char *err, size_t err_cap) {
    FILE *f = fdopen(dup(sp->fd), "r");
    if (!f) {
        store_set_err(err, err_cap, "cannot read the spool %s: %s", sp->path, strerror(errno));
        return -errno;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    off_t whole = 0; /* the length of the complete lines read */
    for (long no = 1; rc == 0 && (len = getline(&line, &cap, f)) >= 0; no++) {
        if (line[len - 1] != '\n') {
            /* The last line without its end: an append cut short (a crash or a full disk
             * mid-write; saves are acknowledged only after the whole line and fdatasync), so
             * nothing acknowledged is in it. Cut off, the file takes appends again. */
            log_event(LOG_WARN, "spool", "torn_line_dropped", "path=%s line=%ld bytes=%zd", sp->path, no, len);
            if (ftruncate(sp->fd, whole) != 0) {
                store_set_err(err, err_cap, "cannot cut the torn end of the spool %s: %s", sp->path, strerror(errno));
                rc = -EIO;
            }
            break;
        }
        whole += len;
        len--;
        if (len == 0) continue;
        spooled_t it;
        if (parse_line(line, (size_t)len, &it) < 0) {
            store_set_err(err, err_cap, "the spool %s: line %ld is not a record", sp->path, no);
            rc = -EINVAL;
        } else {
            rc = remember(sp, it.customer, it.worker, &it.rec);
            session_record_free(&it.rec);
            if (rc < 0) store_set_err(err, err_cap, "out of memory");
        }
    }
    if (rc == 0 && ferror(f)) {
        store_set_err(err, err_cap, "cannot read the spool %s", sp->path);
        rc = -EIO;
    }
    free(line);
    fclose(f);
    return rc;
}

int store_spool_open(const char *path, store_spool_t **out, char *err, size_t err_cap) {
    *out = NULL;
    store_spool_t *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->path = strdup(path))) {
        free(sp);
        store_set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    sp->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (sp->fd < 0) {
        int e = errno;
        store_set_err(err, err_cap, "cannot open the spool %s: %s", path, strerror(e));
        free(sp->path);
        free(sp);
        return -e;
    }
    pthread_mutex_init(&sp->lock, NULL);
    pthread_mutex_init(&sp->mem_lock, NULL);
    int rc = load(sp, err, err_cap);
    sp->on_file = sp->n;
    if (rc < 0) {
        store_spool_close(sp);
        return rc;
    }
    *out = sp;
    return 0;
}

void store_spool_close(store_spool_t *sp) {
    if (!sp) return;
    forget_all(sp);
    free(sp->items);
    close(sp->fd);
    pthread_mutex_destroy(&sp->lock);
    pthread_mutex_destroy(&sp->mem_lock);
    free(sp->path);
    free(sp);
}

/* The records as lines: first what memory holds and the file does not (so that the file is
 * whole again once it can take it), then the new ones. */
static int lines_of(store_spool_t *sp, const store_session_write_t *items, size_t n, const char *worker, buf_t *b) {
    int rc = 0;
    for (size_t i = sp->on_file; rc == 0 && i < sp->n; i++)
        rc = append_line(b, sp->items[i].customer, sp->items[i].worker, &sp->items[i].rec);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = append_line(b, items[i].customer_id, worker, items[i].rec);
    return rc;
}

/* Appends b to the file (lock held). On a failure the file is cut back to what it held, so
 * that no torn line stays in it. */
static int file_write(store_spool_t *sp, const buf_t *b) {
    off_t before = lseek(sp->fd, 0, SEEK_END);
    if (before < 0) return -errno;
    int rc = b->len ? write_all(sp->fd, b->data, b->len) : 0;
    if (rc == 0 && fdatasync(sp->fd) != 0) rc = -errno;
    if (rc < 0 && ftruncate(sp->fd, before) != 0) /* a shorter file needs no space */
        log_event(LOG_ERROR, "spool", "truncate_failed", "path=%s error=\"%s\"", sp->path, strerror(errno));
    return rc;
}

/* Appends the records to file and memory (lock held). When the file cannot take them (a full
 * disk), memory still does: they are flushed like the others and lost only if browserd stops
 * before; what the file missed is appended at the next save it can take. -ENOMEM. */
static int spool_append(store_spool_t *sp, const store_session_write_t *items, size_t n, const char *worker) {
    buf_t b;
    buf_init(&b);
    int rc = lines_of(sp, items, n, worker, &b);
    if (rc == 0) rc = file_write(sp, &b);
    buf_free(&b);
    if (rc < 0 && rc != -ENOMEM)
        log_event(LOG_ERROR, "spool", "write_failed", "path=%s records=%zu kept=memory error=\"%s\"", sp->path, n,
                strerror(-rc));
    bool on_file = rc == 0;
    pthread_mutex_lock(&sp->mem_lock);
    for (size_t i = 0; rc != -ENOMEM && i < n; i++)
        if (remember(sp, items[i].customer_id, worker, items[i].rec) < 0) rc = -ENOMEM;
    pthread_mutex_unlock(&sp->mem_lock);
    if (rc == -ENOMEM) return -ENOMEM;
    if (on_file && sp->on_file + n < sp->n)
        log_event(LOG_INFO, "spool", "file_whole", "path=%s records=%zu", sp->path, sp->n);
    if (on_file) sp->on_file = sp->n;
    return 0;
}

int store_spool_save(store_spool_t *sp, store_t *s, const store_session_write_t *items, size_t n, const char *worker) {
    pthread_mutex_lock(&sp->lock);
    bool behind = sp->n > 0;
    int rc = behind ? spool_append(sp, items, n, worker) : store_sessions_save(s, items, n, worker);
    if (!behind && rc == -EIO) {
        rc = spool_append(sp, items, n, worker);
        if (rc == 0)
            log_event(LOG_WARN, "spool", "spooled", "records=%zu path=%s reason=store_unreachable", n,
                    sp->path);
    }
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

static bool same_session(const spooled_t *a, const spooled_t *b) {
    return strcmp(a->customer, b->customer) == 0 && strcasecmp(a->rec.session_id, b->rec.session_id) == 0;
}

/* Indices by (customer, session id in any case), then by the order the saves were made. */
static int by_session_then_age(const void *x, const void *y, void *arg) {
    const store_spool_t *sp = arg;
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    const spooled_t *a = &sp->items[i], *b = &sp->items[j];
    int r = strcmp(a->customer, b->customer);
    if (!r) r = strcasecmp(a->rec.session_id, b->rec.session_id);
    return r ? r : (i < j ? -1 : i > j);
}

int store_spool_flush(store_spool_t *sp, store_t *s, size_t *written) {
    if (written) *written = 0;
    pthread_mutex_lock(&sp->lock);
    if (sp->n == 0) {
        pthread_mutex_unlock(&sp->lock);
        return 0;
    }
    /* The latest record of each session (a later save of a session replaces all before it),
     * grouped by worker in the order of their first record. */
    store_session_write_t *w = malloc(sp->n * sizeof *w);
    bool *keep = calloc(sp->n, sizeof *keep);
    size_t *order = malloc(sp->n * sizeof *order);
    int rc = w && keep && order ? 0 : -ENOMEM;
    if (rc == 0) {
        for (size_t i = 0; i < sp->n; i++) order[i] = i;
        qsort_r(order, sp->n, sizeof *order, by_session_then_age, sp);
        for (size_t k = 0; k < sp->n; k++) /* the last of each run of one session */
            keep[order[k]] = k + 1 == sp->n || !same_session(&sp->items[order[k]], &sp->items[order[k + 1]]);
    }
    free(order);
    size_t total = 0;
    for (size_t i = 0; rc == 0 && i < sp->n; i++) {
        if (!keep[i]) continue;
        size_t m = 0;
        const char *worker = sp->items[i].worker;
        for (size_t j = i; j < sp->n; j++)
            if (keep[j] && strcmp(sp->items[j].worker, worker) == 0) {
                w[m++] = (store_session_write_t){sp->items[j].customer, &sp->items[j].rec};
                keep[j] = false;
            }
        rc = store_sessions_save(s, w, m, *worker ? worker : NULL);
        if (rc == 0) total += m;
    }
    if (rc == 0) {
        if (ftruncate(sp->fd, 0) != 0) {
            rc = -errno;
            log_event(LOG_ERROR, "spool", "truncate_failed", "path=%s error=\"%s\"", sp->path,
                    strerror(errno));
        } else {
            log_event(LOG_INFO, "spool", "spool_flushed", "records=%zu path=%s", total, sp->path);
            forget_all(sp);
            sp->on_file = 0;
            if (written) *written = total;
        }
    }
    pthread_mutex_unlock(&sp->lock);
    free(w);
    free(keep);
    return rc;
}

size_t store_spool_pending(store_spool_t *sp) {
    pthread_mutex_lock(&sp->mem_lock);
    size_t n = sp->n;
    pthread_mutex_unlock(&sp->mem_lock);
    return n;
}

int store_spool_visit(store_spool_t *sp, store_spool_visit_fn fn, void *ctx) {
    int rc = 0;
    pthread_mutex_lock(&sp->mem_lock);
    for (size_t i = 0; rc == 0 && i < sp->n; i++) rc = fn(ctx, sp->items[i].customer, &sp->items[i].rec);
    pthread_mutex_unlock(&sp->mem_lock);
    return rc;
}
