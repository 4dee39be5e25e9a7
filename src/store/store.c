/* The entry points of store.h: the backend chosen by the target, and everything that must
 * behave the same whatever the database (store_internal.h): argument checks, the secrets
 * (random keys, ids and passwords, their hashes, constant-time comparisons), the session
 * record checks and keys, the messages, and the log line of a failure that has no caller to
 * tell. Then one call through the backend's table. */
#include "store/store.h"

#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/timeutil.h"
#include "core/uuid.h"
#include "store/store_internal.h"

#define API_KEY_RANDOM_BYTES 32
#define KEY_ID_RANDOM_BYTES 6
#define INVALID_CUSTOMER "invalid customer id (expected [a-z0-9_]{1,32})"

struct store_import {
    store_record_source next;
    void *ctx;
    session_record_t rec; /* the record pulled last, owned until the next pull */
    char session_key[UUID_TEXT_LEN + 1];
    int64_t pulled;       /* records handed to the backend */
    int64_t refused;      /* the index of the record refused (-EEXIST), -1: the last pulled */
    char refused_id[UUID_TEXT_LEN + 1];
};

void store_set_err(char *err, size_t err_cap, const char *fmt, ...) {
    if (!err || err_cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

/* The functions of store.h without an err parameter still owe the operator a reason when the
 * database fails: it goes to the log. A backend leaves the reason empty for the outcomes
 * that are answers (unknown, exists, the callback's own result), so those are not logged. */
int store_logged(int rc, const char *op, const char *reason) {
    if (rc != 0 && reason[0]) log_event(LOG_ERROR, "store", "failed", "op=%s error=\"%s\"", op, reason);
    return rc;
}

/* ---- secrets ---- */

int store_fill_random(void *buf, size_t len) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void store_hex_encode(const uint8_t *in, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* SHA-256 of a‖b (b may be empty). */
int store_sha256_two(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t out[STORE_HASH_LEN]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int out_len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, a, a_len) == 1 &&
             (b_len == 0 || EVP_DigestUpdate(ctx, b, b_len) == 1) && EVP_DigestFinal_ex(ctx, out, &out_len) == 1 &&
             out_len == STORE_HASH_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -EIO;
}

/* 24 characters of [a-z0-9], uniformly: bytes >= 252 (= 7 * 36) are drawn again, so that
 * every character is equally likely (no modulo bias). */
static int random_password(char out[STORE_PASSWORD_LEN + 1]) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = 0;
    while (n < STORE_PASSWORD_LEN) {
        uint8_t bytes[32];
        if (store_fill_random(bytes, sizeof bytes) != 0) return -EIO;
        for (size_t i = 0; i < sizeof bytes && n < STORE_PASSWORD_LEN; i++)
            if (bytes[i] < 252) out[n++] = alphabet[bytes[i] % 36];
        OPENSSL_cleanse(bytes, sizeof bytes);
    }
    out[n] = '\0';
    return 0;
}

int store_key_row_check(const uint8_t key_hash[STORE_HASH_LEN], const void *stored_hash, size_t stored_len,
                        bool revoked, const char *customer, char customer_out[STORE_ID_MAX + 1]) {
    if (!stored_hash || stored_len != STORE_HASH_LEN || CRYPTO_memcmp(stored_hash, key_hash, STORE_HASH_LEN) != 0 ||
        revoked || !customer || strlen(customer) > STORE_ID_MAX)
        return -ENOENT;
    memcpy(customer_out, customer, strlen(customer) + 1);
    return 0;
}

int store_zone_row_check(const void *salt, size_t salt_len, const void *stored_hash, size_t stored_len,
                         const char *password, const char *stored_upstream, char *upstream, size_t upstream_cap,
                         char *err, size_t err_cap) {
    if (!salt || !stored_hash || stored_len != STORE_HASH_LEN) {
        store_set_err(err, err_cap, "malformed zone row (a hash of another length)");
        return -EIO;
    }
    int rc = store_zone_password_verify(salt, salt_len, stored_hash, password, NULL);
    if (rc == -EIO) store_set_err(err, err_cap, "the password KDF failed");
    if (rc != 0) return rc;
    if (stored_upstream && upstream && upstream_cap) snprintf(upstream, upstream_cap, "%s", stored_upstream);
    return 0;
}

/* ---- names ---- */

static bool valid_name(const char *s, size_t max_len) {
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= max_len || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return n > 0;
}

bool store_valid_customer_id(const char *id) { return valid_name(id, STORE_ID_MAX); }
bool store_valid_zone_name(const char *zone) { return valid_name(zone, STORE_ZONE_MAX); }

static bool valid_key_id(const char *key_id) {
    if (!key_id || strlen(key_id) != STORE_KEY_ID_LEN || memcmp(key_id, "key_", 4) != 0) return false;
    for (size_t i = 4; i < STORE_KEY_ID_LEN; i++)
        if (!((key_id[i] >= '0' && key_id[i] <= '9') || (key_id[i] >= 'a' && key_id[i] <= 'f'))) return false;
    return true;
}

/* ---- open, close ---- */

/* libpq takes exactly these two URI designators (compared as libpq compares them, case and
 * all); anything else is a file path. */
bool store_target_is_postgres(const char *target) {
    return target && (strncmp(target, "postgres://", 11) == 0 || strncmp(target, "postgresql://", 13) == 0);
}

/* Appends src[0..n) to out (capacity cap, used *len), cut at the capacity. */
static void append(char *out, size_t cap, size_t *len, const char *src, size_t n) {
    if (*len + 1 >= cap) return;
    if (n > cap - 1 - *len) n = cap - 1 - *len;
    memcpy(out + *len, src, n);
    *len += n;
    out[*len] = '\0';
}

size_t store_uri_passwords(const char *target, const char **at, size_t *len, size_t max) {
    if (!store_target_is_postgres(target)) return 0;
    size_t n = 0;
    /* scheme://[user[:password]@]hosts[/db][?params]: the password ends at the last '@' of
     * the authority (libpq's reading); in the parameters, password=VALUE ends at '&'. */
    const char *auth = strstr(target, "://") + 3;
    size_t auth_len = strcspn(auth, "/?");
    const char *last_at = NULL;
    for (const char *p = auth; p < auth + auth_len; p++)
        if (*p == '@') last_at = p;
    const char *colon = last_at ? memchr(auth, ':', (size_t)(last_at - auth)) : NULL;
    if (colon && n < max) {
        at[n] = colon + 1;
        len[n++] = (size_t)(last_at - colon - 1);
    }
    for (const char *q = strchr(auth, '?'); q && n < max; q = strchr(q + 1, '&')) {
        if (strncmp(q + 1, "password=", 9) != 0) continue;
        at[n] = q + 10;
        len[n++] = strcspn(q + 10, "&");
    }
    return n;
}

char *store_uri_redact(const char *target, char *out, size_t out_cap) {
    if (!out || out_cap == 0) return out;
    out[0] = '\0';
    if (!target) return out;
    const char *at[8];
    size_t len[8], used = 0;
    size_t n = store_uri_passwords(target, at, len, 8);
    const char *p = target;
    for (size_t i = 0; i < n; i++) {
        append(out, out_cap, &used, p, (size_t)(at[i] - p));
        append(out, out_cap, &used, "***", 3);
        p = at[i] + len[i];
    }
    append(out, out_cap, &used, p, strlen(p));
    return out;
}

/* The backend of a --db target. */
static const store_backend_t *backend_for(const char *target) {
    return store_target_is_postgres(target) ? &store_pg_backend : &store_sqlite_backend;
}

int store_schema_too_new(int64_t version, int known, char *err, size_t err_cap) {
    store_set_err(err, err_cap,
                  "the database has schema version %" PRId64 ", newer than this browserd knows (%d); "
                  "use the browserd release that wrote it or a later one",
                  version, known);
    return -EIO;
}

int store_open(const char *target, store_t **out, char *err, size_t err_cap) {
    *out = NULL;
    if (!target || !*target) {
        store_set_err(err, err_cap, "no database given");
        return -EINVAL;
    }
    const store_backend_t *backend = backend_for(target);
    store_t *s = calloc(1, sizeof *s);
    if (!s) {
        store_set_err(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    s->backend = backend;
    metric_histogram_init(&s->write_latency, &METRIC_BUCKETS_FAST);
    int rc = backend->open(target, &s->db, err, err_cap);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void store_close(store_t *s) {
    if (!s) return;
    s->backend->close(s->db);
    free(s);
}

/* ---- customers ---- */

int store_customer_add(store_t *s, const char *customer_id, char *err, size_t err_cap) {
    if (!store_valid_customer_id(customer_id)) {
        store_set_err(err, err_cap, INVALID_CUSTOMER);
        return -EINVAL;
    }
    int rc = s->backend->customer_add(s->db, customer_id, err, err_cap);
    if (rc == -EEXIST) store_set_err(err, err_cap, "customer %s already exists", customer_id);
    return rc;
}

int store_customer_exists(store_t *s, const char *customer_id) {
    if (!store_valid_customer_id(customer_id)) return -ENOENT;
    char reason[256] = "";
    return store_logged(s->backend->customer_exists(s->db, customer_id, reason, sizeof reason), "customer_exists", reason);
}

int store_customer_count(store_t *s, int64_t *count) {
    char reason[256] = "";
    return store_logged(s->backend->customer_count(s->db, count, reason, sizeof reason), "customer_count", reason);
}

/* ---- API keys ---- */

int store_key_add(store_t *s, const char *customer_id, char key_out[STORE_API_KEY_LEN + 1],
                  char key_id_out[STORE_KEY_ID_LEN + 1], char *err, size_t err_cap) {
    if (!store_valid_customer_id(customer_id)) {
        store_set_err(err, err_cap, INVALID_CUSTOMER);
        return -EINVAL;
    }
    /* A key id is only 48 random bits: a collision is unlikely but not impossible, so a
     * clash on key_id draws again. A clash on the 256-bit key hash would mean a broken
     * random generator, and is reported as an error. */
    for (int attempt = 0; attempt < 4; attempt++) {
        uint8_t key_bytes[API_KEY_RANDOM_BYTES], id_bytes[KEY_ID_RANDOM_BYTES], hash[STORE_HASH_LEN];
        char key_text[STORE_API_KEY_LEN + 1], key_id[STORE_KEY_ID_LEN + 1];
        if (store_fill_random(key_bytes, sizeof key_bytes) != 0 || store_fill_random(id_bytes, sizeof id_bytes) != 0) {
            store_set_err(err, err_cap, "getrandom failed: %s", strerror(errno));
            return -EIO;
        }
        store_hex_encode(key_bytes, sizeof key_bytes, key_text);
        memcpy(key_id, "key_", 4);
        store_hex_encode(id_bytes, sizeof id_bytes, key_id + 4);
        OPENSSL_cleanse(key_bytes, sizeof key_bytes);
        if (store_sha256_two(key_text, STORE_API_KEY_LEN, NULL, 0, hash) != 0) {
            OPENSSL_cleanse(key_text, sizeof key_text);
            store_set_err(err, err_cap, "SHA-256 failed");
            return -EIO;
        }
        int rc = s->backend->key_add(s->db, customer_id, key_id, hash, err, err_cap);
        if (rc == 0) {
            memcpy(key_out, key_text, sizeof key_text);
            memcpy(key_id_out, key_id, sizeof key_id);
        }
        OPENSSL_cleanse(key_text, sizeof key_text);
        if (rc == -ENOENT) store_set_err(err, err_cap, "unknown customer %s", customer_id);
        if (rc != -EEXIST) return rc;
    }
    store_set_err(err, err_cap, "could not draw an unused key id");
    return -EIO;
}

int store_key_list(store_t *s, const char *customer_id, store_key_info_t **out, size_t *count) {
    *out = NULL;
    *count = 0;
    if (!store_valid_customer_id(customer_id)) return -EINVAL;
    char reason[256] = "";
    return store_logged(s->backend->key_list(s->db, customer_id, out, count, reason, sizeof reason), "key_list", reason);
}

int store_key_revoke(store_t *s, const char *key_id) {
    if (!valid_key_id(key_id)) return -EINVAL;
    char reason[256] = "";
    return store_logged(s->backend->key_revoke(s->db, key_id, reason, sizeof reason), "key_revoke", reason);
}

int store_key_authenticate(store_t *s, const char *api_key, size_t key_len, char customer_out[STORE_ID_MAX + 1]) {
    /* The length is not secret (every key has 64 characters); the content is. Only its
     * hash is looked up, so index timing reveals nothing about the key's characters. */
    if (!api_key || key_len != STORE_API_KEY_LEN) return -ENOENT;
    char reason[256] = "";
    uint8_t hash[STORE_HASH_LEN];
    if (store_sha256_two(api_key, key_len, NULL, 0, hash) != 0) return store_logged(-EIO, "key_authenticate", "SHA-256 failed");
    int rc = s->backend->key_authenticate(s->db, hash, customer_out, reason, sizeof reason);
    return store_logged(rc, "key_authenticate", reason);
}

/* ---- zones ---- */

int store_zone_add(store_t *s, const char *customer_id, const char *zone,
                   char password_out[STORE_PASSWORD_LEN + 1], char *err, size_t err_cap) {
    if (!store_valid_customer_id(customer_id)) {
        store_set_err(err, err_cap, INVALID_CUSTOMER);
        return -EINVAL;
    }
    if (!store_valid_zone_name(zone)) {
        store_set_err(err, err_cap, "invalid zone name (expected [a-z0-9_]{1,64})");
        return -EINVAL;
    }
    char password[STORE_PASSWORD_LEN + 1];
    uint8_t salt[STORE_ZONE_SALT_LEN], hash[STORE_HASH_LEN];
    int rc = 0;
    if (random_password(password) != 0 || store_fill_random(salt, sizeof salt) != 0) {
        store_set_err(err, err_cap, "getrandom failed: %s", strerror(errno));
        rc = -EIO;
    } else if (store_zone_password_hash(salt, sizeof salt, password, STORE_PASSWORD_LEN, hash) != 0) {
        store_set_err(err, err_cap, "the password KDF failed");
        rc = -EIO;
    } else {
        rc = s->backend->zone_add(s->db, customer_id, zone, salt, hash, err, err_cap);
    }
    if (rc == -EEXIST) store_set_err(err, err_cap, "zone %s already exists for customer %s", zone, customer_id);
    if (rc == -ENOENT) store_set_err(err, err_cap, "unknown customer %s", customer_id);
    if (rc == 0) memcpy(password_out, password, sizeof password);
    OPENSSL_cleanse(password, sizeof password);
    return rc;
}

int store_zone_check(store_t *s, const char *customer_id, const char *zone, const char *password) {
    return store_zone_authorize(s, customer_id, zone, password, NULL, 0);
}

int store_zone_authorize(store_t *s, const char *customer_id, const char *zone, const char *password,
                         char *upstream, size_t upstream_cap) {
    if (upstream && upstream_cap) upstream[0] = '\0';
    if (!customer_id || !zone || !password) return -ENOENT;
    char reason[256] = "";
    int rc = s->backend->zone_authorize(s->db, customer_id, zone, password, upstream, upstream_cap, reason,
                                        sizeof reason);
    if (rc == -ENOENT) store_zone_password_burn(password);
    return store_logged(rc, "zone_check", reason);
}

int store_zone_set_upstream(store_t *s, const char *customer_id, const char *zone, const char *url) {
    char reason[256] = "";
    int rc = s->backend->zone_set_upstream(s->db, customer_id, zone, url && *url ? url : NULL, reason, sizeof reason);
    return store_logged(rc, "zone_set_upstream", reason);
}

/* ---- sessions ---- */

/* What the schema and the catalog rely on; the import parser checks far more (formats). */
static int record_check(const session_record_t *r, char *err, size_t err_cap) {
    uint8_t id[16];
    if (strnlen(r->session_id, sizeof r->session_id) != UUID_TEXT_LEN ||
        uuid_parse(r->session_id, UUID_TEXT_LEN, id) != 0) {
        store_set_err(err, err_cap, "session_id is not a UUID");
        return -EINVAL;
    }
    const char *bad = !r->api_name || !r->api_name[0]                 ? "api_name is empty"
                      : (unsigned)r->status >= SESSION_STATUS_COUNT   ? "status is out of range"
                      : (unsigned)r->captcha > CAPTCHA_FAILED         ? "captcha is out of range"
                      : r->navigations < 0                            ? "navigations is negative"
                      : r->bandwidth < 0                              ? "bandwidth is negative"
                      : r->duration_ms < 0 && r->duration_ms != SESSION_DURATION_NULL ? "duration is negative"
                      : r->error_message && !r->error_code            ? "error message without an error code"
                                                                      : NULL;
    if (bad) {
        store_set_err(err, err_cap, "session %s: %s", r->session_id, bad);
        return -EINVAL;
    }
    return 0;
}

/* The case-insensitive identity of a session: its id in lowercase. */
void store_session_key_of(const char *session_id, char key[UUID_TEXT_LEN + 1]) {
    for (int i = 0; i < UUID_TEXT_LEN; i++) key[i] = (char)tolower((unsigned char)session_id[i]);
    key[UUID_TEXT_LEN] = '\0';
}

int store_import_next(store_import_t *im, const session_record_t **rec, const char **session_key, char *err,
                      size_t err_cap) {
    session_record_free(&im->rec);
    memset(&im->rec, 0, sizeof im->rec);
    int more = im->next(im->ctx, &im->rec, err, err_cap);
    if (more <= 0) return more < 0 ? -EINVAL : 0;
    int rc = record_check(&im->rec, err, err_cap);
    if (rc != 0) return rc;
    store_session_key_of(im->rec.session_id, im->session_key);
    im->pulled++;
    *rec = &im->rec;
    *session_key = im->session_key;
    return 1;
}

void store_import_refuse(store_import_t *im, int64_t index, const char *session_id) {
    im->refused = index;
    snprintf(im->refused_id, sizeof im->refused_id, "%s", session_id ? session_id : "");
}

int store_sessions_import_at(store_t *s, const char *customer_id, store_record_source next, void *ctx,
                             int64_t *imported, int64_t *refused, char *err, size_t err_cap) {
    if (imported) *imported = 0;
    if (refused) *refused = -1;
    if (!store_valid_customer_id(customer_id)) {
        store_set_err(err, err_cap, INVALID_CUSTOMER);
        return -EINVAL;
    }
    store_import_t im = {.next = next, .ctx = ctx, .refused = -1};
    int rc = s->backend->sessions_import(s->db, customer_id, &im, err, err_cap);
    if (rc == -ENOENT) store_set_err(err, err_cap, "unknown customer %s", customer_id);
    if (rc == -EEXIST) {
        /* A backend that stops at the duplicate refuses the record pulled last. */
        if (im.refused < 0) store_import_refuse(&im, im.pulled - 1, im.rec.session_id);
        store_set_err(err, err_cap, "session_id %s already exists", im.refused_id);
        if (refused) *refused = im.refused;
    }
    if (rc == 0 && imported) *imported = im.pulled;
    session_record_free(&im.rec);
    return rc;
}

int store_sessions_import(store_t *s, const char *customer_id, store_record_source next, void *ctx,
                          int64_t *imported, char *err, size_t err_cap) {
    return store_sessions_import_at(s, customer_id, next, ctx, imported, NULL, err, err_cap);
}

int store_session_put(store_t *s, const char *customer_id, const session_record_t *rec) {
    return store_session_save(s, customer_id, rec, NULL);
}

int store_session_save(store_t *s, const char *customer_id, const session_record_t *rec, const char *worker) {
    char reason[256] = "";
    if (!store_valid_customer_id(customer_id)) return -EINVAL;
    if (record_check(rec, reason, sizeof reason) != 0) return store_logged(-EINVAL, "session_put", reason);
    char session_key[UUID_TEXT_LEN + 1];
    store_session_key_of(rec->session_id, session_key);
    int rc = s->backend->session_save(s->db, customer_id, session_key, rec, worker, reason, sizeof reason);
    return store_logged(rc, "session_put", reason);
}

int store_sessions_save(store_t *s, const store_session_write_t *items, size_t n, const char *worker) {
    char reason[256] = "";
    if (n == 0) return 0;
    char (*keys)[UUID_TEXT_LEN + 1] = malloc(n * sizeof *keys);
    const char **key_ptrs = malloc(n * sizeof *key_ptrs);
    int rc = 0;
    if (!keys || !key_ptrs) {
        rc = -ENOMEM;
        snprintf(reason, sizeof reason, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!store_valid_customer_id(items[i].customer_id)) rc = -EINVAL;
        else if (record_check(items[i].rec, reason, sizeof reason) != 0) rc = -EINVAL;
        else {
            store_session_key_of(items[i].rec->session_id, keys[i]);
            key_ptrs[i] = keys[i];
        }
    }
    if (rc == 0) {
        uint64_t t0 = time_monotonic_ns();
        rc = s->backend->sessions_save(s->db, items, key_ptrs, n, worker, reason, sizeof reason);
        metric_histogram_observe_ns(&s->write_latency, time_monotonic_ns() - t0);
        if (rc < 0) atomic_fetch_add_explicit(&s->write_failures, 1, memory_order_relaxed);
    }
    free(keys);
    free(key_ptrs);
    return store_logged(rc, "sessions_save", reason);
}

const metric_histogram_t *store_write_latency(const store_t *s) { return &s->write_latency; }

uint64_t store_write_failures(const store_t *s) {
    return atomic_load_explicit(&((store_t *)s)->write_failures, memory_order_relaxed);
}

int store_sessions_fail_orphans(store_t *s, const char *node_id, int64_t *failed) {
    char reason[256] = "";
    int64_t n = 0;
    int rc = s->backend->sessions_fail_orphans(s->db, node_id ? node_id : "", &n, reason, sizeof reason);
    if (failed) *failed = rc == 0 ? n : 0;
    return store_logged(rc, "fail_orphans", reason);
}

static bool valid_node_id(const char *id) {
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > STORE_NODE_ID_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] >= 0x7f) return false;
    return true;
}

int store_node_register(store_t *s, const char *node_id, const char *host, int pid, int64_t lease_ms, bool take_over,
                        char *holder_host, int *holder_pid, char *err, size_t err_cap) {
    if (!valid_node_id(node_id) || !host || lease_ms <= 0) {
        store_set_err(err, err_cap, "invalid node id (1 to %d printable characters, no spaces)", STORE_NODE_ID_MAX);
        return -EINVAL;
    }
    char hh[STORE_NODE_ID_MAX + 1] = "";
    int hp = 0;
    int rc = s->backend->node_register(s->db, node_id, host, pid, lease_ms, take_over, hh, &hp, err, err_cap);
    if (rc == -EBUSY) {
        if (holder_host) snprintf(holder_host, STORE_NODE_ID_MAX + 1, "%s", hh);
        if (holder_pid) *holder_pid = hp;
        store_set_err(err, err_cap, "node id %s is held by process %d on %s, whose lease has not run out", node_id, hp,
                      hh);
    }
    return rc;
}

int store_node_heartbeat(store_t *s, const char *node_id, int pid, int64_t lease_ms) {
    char reason[256] = "";
    return store_logged(s->backend->node_heartbeat(s->db, node_id, pid, lease_ms, reason, sizeof reason), "node_heartbeat",
                  reason);
}

int store_node_release(store_t *s, const char *node_id, int pid) {
    char reason[256] = "";
    return store_logged(s->backend->node_release(s->db, node_id, pid, reason, sizeof reason), "node_release", reason);
}

int store_nodes_reap(store_t *s, int64_t *nodes, int64_t *failed) {
    char reason[256] = "";
    int64_t n = 0, f = 0;
    int rc = s->backend->nodes_reap(s->db, &n, &f, reason, sizeof reason);
    if (nodes) *nodes = rc == 0 ? n : 0;
    if (failed) *failed = rc == 0 ? f : 0;
    return store_logged(rc, "nodes_reap", reason);
}

/* The session key of a text id, or -ENOENT for what cannot be one (no session has it). */
static int key_of_id(const char *session_id, char key[UUID_TEXT_LEN + 1]) {
    uint8_t id[16];
    if (!session_id || strnlen(session_id, UUID_TEXT_LEN + 1) != UUID_TEXT_LEN ||
        uuid_parse(session_id, UUID_TEXT_LEN, id) != 0)
        return -ENOENT;
    store_session_key_of(session_id, key);
    return 0;
}

int store_session_owner(store_t *s, const char *customer_id, const char *session_id, session_status_t *status,
                        char *worker, bool *worker_alive) {
    char key[UUID_TEXT_LEN + 1], reason[256] = "";
    worker[0] = '\0';
    *worker_alive = false;
    if (!store_valid_customer_id(customer_id) || key_of_id(session_id, key) != 0) return -ENOENT;
    return store_logged(s->backend->session_owner(s->db, customer_id, key, status, worker, worker_alive, reason,
                                            sizeof reason),
                  "session_owner", reason);
}

int store_session_end(store_t *s, const char *customer_id, const char *session_id, const char *code,
                      const char *message) {
    char key[UUID_TEXT_LEN + 1], reason[256] = "";
    if (!store_valid_customer_id(customer_id) || key_of_id(session_id, key) != 0) return -ENOENT;
    if (!code || !*code) return -EINVAL;
    return store_logged(s->backend->session_end(s->db, customer_id, key, code, message ? message : "", reason, sizeof reason),
                  "session_end", reason);
}

int store_events_start(store_t *s, const store_events_t *events, void *ctx) {
    if (!s->backend->events_start) return -ENOTSUP;
    char reason[256] = "";
    return store_logged(s->backend->events_start(s->db, events, ctx, reason, sizeof reason), "events_start", reason);
}

void store_events_stop(store_t *s) {
    if (s->backend->events_stop) s->backend->events_stop(s->db);
}

int store_publish(store_t *s, const char *topic, const char *payload) {
    if (!s->backend->publish) return -ENOTSUP;
    size_t tn = topic ? strlen(topic) : 0;
    if (tn == 0 || tn > 40 || !payload || strlen(payload) > 7000) return -EINVAL;
    for (size_t i = 0; i < tn; i++)
        if (!((topic[i] >= 'a' && topic[i] <= 'z') || topic[i] == '_')) return -EINVAL;
    char reason[256] = "";
    return store_logged(s->backend->publish(s->db, topic, payload, reason, sizeof reason), "publish", reason);
}

int store_ping(store_t *s) {
    char reason[256] = "";
    return store_logged(s->backend->ping(s->db, reason, sizeof reason), "ping", reason);
}

int store_change_seq(store_t *s, int64_t *seq) {
    char reason[256] = "";
    return store_logged(s->backend->change_seq(s->db, seq, reason, sizeof reason), "change_seq", reason);
}

int store_sessions_since(store_t *s, int64_t after_seq, int64_t *last_seq, store_session_cb cb, void *ctx) {
    *last_seq = after_seq;
    char reason[256] = "";
    int rc = s->backend->sessions_since(s->db, after_seq, last_seq, cb, ctx, reason, sizeof reason);
    return store_logged(rc, "sessions_since", reason);
}
