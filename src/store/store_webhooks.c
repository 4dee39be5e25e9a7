/* The entry points of store_webhooks.h: the checks, the secrets and ids drawn here (as for
 * keys: store.c), the clock read once per operation, then one call through the backend. */
#include "store/store_webhooks.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "store/store_internal.h"

#define WEBHOOK_ID_RANDOM_BYTES 6
#define SECRET_RANDOM_BYTES 32

bool store_valid_webhook_id(const char *id) {
    if (!id || strlen(id) != STORE_WEBHOOK_ID_LEN || strncmp(id, "wh_", 3) != 0) return false;
    for (const char *p = id + 3; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

int store_webhook_add(store_t *s, const char *customer_id, const char *url, char id_out[STORE_WEBHOOK_ID_LEN + 1],
                      char secret_out[STORE_WEBHOOK_SECRET_LEN + 1], char *err, size_t err_cap) {
    if (!store_valid_customer_id(customer_id)) {
        store_set_err(err, err_cap, "invalid customer id (expected [a-z0-9_]{1,32})");
        return -EINVAL;
    }
    if (!url || !*url || strlen(url) > STORE_WEBHOOK_URL_MAX) {
        store_set_err(err, err_cap, "a webhook URL has 1 to %d characters", STORE_WEBHOOK_URL_MAX);
        return -EINVAL;
    }
    /* 48 random bits of id: a clash is unlikely but possible, and draws again (as key ids do). */
    for (int attempt = 0; attempt < 4; attempt++) {
        uint8_t id_bytes[WEBHOOK_ID_RANDOM_BYTES], secret_bytes[SECRET_RANDOM_BYTES];
        char id[STORE_WEBHOOK_ID_LEN + 1], secret[STORE_WEBHOOK_SECRET_LEN + 1];
        if (store_fill_random(id_bytes, sizeof id_bytes) != 0 || store_fill_random(secret_bytes, sizeof secret_bytes) != 0) {
            store_set_err(err, err_cap, "getrandom failed: %s", strerror(errno));
            return -EIO;
        }
        memcpy(id, "wh_", 3);
        store_hex_encode(id_bytes, sizeof id_bytes, id + 3);
        memcpy(secret, "whsec_", 6);
        store_hex_encode(secret_bytes, sizeof secret_bytes, secret + 6);
        OPENSSL_cleanse(secret_bytes, sizeof secret_bytes);
        int rc = s->backend->webhook_add(s->db, customer_id, id, url, secret, err, err_cap);
        if (rc == 0) {
            memcpy(id_out, id, sizeof id);
            memcpy(secret_out, secret, sizeof secret);
        }
        OPENSSL_cleanse(secret, sizeof secret);
        if (rc == -ENOENT) store_set_err(err, err_cap, "unknown customer %s", customer_id);
        if (rc != -EEXIST) return rc;
    }
    store_set_err(err, err_cap, "could not draw an unused webhook id");
    return -EIO;
}

int store_webhook_list(store_t *s, const char *customer_id, store_webhook_info_t **out, size_t *count) {
    *out = NULL;
    *count = 0;
    if (!store_valid_customer_id(customer_id)) return -EINVAL;
    char reason[256] = "";
    return store_logged(s->backend->webhook_list(s->db, customer_id, out, count, reason, sizeof reason), "webhook_list",
                  reason);
}

int store_webhook_remove(store_t *s, const char *webhook_id) {
    if (!store_valid_webhook_id(webhook_id)) return -EINVAL;
    char reason[256] = "";
    return store_logged(s->backend->webhook_remove(s->db, webhook_id, reason, sizeof reason), "webhook_remove", reason);
}

int store_webhook_deliveries(store_t *s, const char *customer_id, size_t limit, store_delivery_info_t **out,
                             size_t *count) {
    *out = NULL;
    *count = 0;
    if (!store_valid_customer_id(customer_id) || limit == 0) return -EINVAL;
    char reason[256] = "";
    return store_logged(s->backend->webhook_deliveries(s->db, customer_id, limit, out, count, reason, sizeof reason),
                  "webhook_deliveries", reason);
}

int store_webhook_claim(store_t *s, const char *claimer, int64_t lease_ms, size_t max, store_delivery_t **out,
                        size_t *count) {
    *out = NULL;
    *count = 0;
    if (!claimer || !*claimer || strlen(claimer) > STORE_NODE_ID_MAX || lease_ms <= 0 || max == 0) return -EINVAL;
    int64_t now = time_now_ms();
    char reason[256] = "";
    return store_logged(s->backend->webhook_claim(s->db, claimer, now, now + lease_ms, max, out, count, reason, sizeof reason),
                  "webhook_claim", reason);
}

void store_webhook_claimed_free(store_delivery_t *d, size_t count) {
    if (!d) return;
    for (size_t i = 0; i < count; i++) {
        session_record_free(&d[i].rec);
        OPENSSL_cleanse(d[i].secret, sizeof d[i].secret);
    }
    free(d);
}

int store_webhook_record(store_t *s, const char *delivery_id, const store_delivery_outcome_t *o) {
    if (!delivery_id || strlen(delivery_id) != STORE_DELIVERY_ID_LEN || !o) return -EINVAL;
    char error[STORE_WEBHOOK_ERROR_MAX + 1];
    snprintf(error, sizeof error, "%s", o->error ? o->error : "");
    store_delivery_outcome_t cut = *o;
    cut.error = error;
    char reason[256] = "";
    return store_logged(s->backend->webhook_record(s->db, delivery_id, &cut, time_now_ms(), reason, sizeof reason),
                  "webhook_record", reason);
}

int store_webhook_release_claims(store_t *s, const char *claimer) {
    if (!claimer || !*claimer) return -EINVAL;
    char reason[256] = "";
    return store_logged(s->backend->webhook_release(s->db, claimer, reason, sizeof reason), "webhook_release", reason);
}

int store_webhook_prune(store_t *s, int64_t before_ms, int64_t *deleted) {
    char reason[256] = "";
    int64_t n = 0;
    int rc = s->backend->webhook_prune(s->db, before_ms, &n, reason, sizeof reason);
    if (deleted) *deleted = rc == 0 ? n : 0;
    return store_logged(rc, "webhook_prune", reason);
}

int store_webhook_pending(store_t *s, int64_t *pending) {
    char reason[256] = "";
    return store_logged(s->backend->webhook_pending(s->db, pending, reason, sizeof reason), "webhook_pending", reason);
}
