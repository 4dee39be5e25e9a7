/* Zone passwords at rest (store_internal.h, "zone passwords"): a slow, salted KDF, and a
 * process-local memory of the passwords it verified, so that the KDF runs once per zone and
 * process rather than at every session connect.
 *
 * The stored hash is PBKDF2-HMAC-SHA256(SHA-256(salt || password), salt, 100000 iterations).
 * Its input is schema 3's stored hash (SHA-256(salt || password)), so that migration 4 turns
 * every existing row into the new form without knowing a single password. */
#include "store/store_internal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>

/* ~22 ms on one core of the test machine (2026): a guess at a password costs that much. */
#define KDF_ITERATIONS 100000
/* Verified (salt, stored hash, password) triples, by a keyed hash of them: 4096 zones
 * connected to recently. A slot holds only that tag (32 bytes), never a password. */
#define CACHE_SLOTS 4096

typedef struct {
    bool used;
    uint8_t tag[32];
} cache_slot_t;

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_slot_t cache[CACHE_SLOTS];
static uint8_t cache_key[32];
static bool cache_ready; /* the key was drawn: without it nothing is cached */

static void cache_init(void) {
    size_t got = 0;
    while (got < sizeof cache_key) {
        ssize_t n = getrandom(cache_key + got, sizeof cache_key - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        got += (size_t)n;
    }
    cache_ready = true;
}

int store_zone_password_upgrade(const uint8_t *salt, size_t salt_len, const uint8_t legacy[STORE_HASH_LEN],
                                uint8_t out[STORE_HASH_LEN]) {
    return PKCS5_PBKDF2_HMAC((const char *)legacy, STORE_HASH_LEN, salt, (int)salt_len, KDF_ITERATIONS, EVP_sha256(),
                             STORE_HASH_LEN, out) == 1
               ? 0
               : -EIO;
}

int store_zone_password_hash(const uint8_t *salt, size_t salt_len, const char *password, size_t password_len,
                             uint8_t out[STORE_HASH_LEN]) {
    uint8_t legacy[STORE_HASH_LEN];
    int rc = store_sha256_two(salt, salt_len, password, password_len, legacy);
    if (rc == 0) rc = store_zone_password_upgrade(salt, salt_len, legacy, out);
    OPENSSL_cleanse(legacy, sizeof legacy);
    return rc;
}

/* HMAC(cache_key, len(salt) || salt || stored || password): the tag binds the password to
 * the very row it was checked against, so a new password (a new row) never matches an old
 * tag. */
static int cache_tag(const uint8_t *salt, size_t salt_len, const uint8_t stored[STORE_HASH_LEN], const char *password,
                     size_t password_len, uint8_t tag[32]) {
    size_t n = 1 + salt_len + STORE_HASH_LEN + password_len;
    uint8_t msg[1 + 64 + STORE_HASH_LEN + 256];
    if (salt_len > 64 || password_len > 256 || n > sizeof msg) return -EINVAL;
    msg[0] = (uint8_t)salt_len;
    memcpy(msg + 1, salt, salt_len);
    memcpy(msg + 1 + salt_len, stored, STORE_HASH_LEN);
    memcpy(msg + 1 + salt_len + STORE_HASH_LEN, password, password_len);
    unsigned int tag_len = 0;
    bool ok = HMAC(EVP_sha256(), cache_key, sizeof cache_key, msg, n, tag, &tag_len) && tag_len == 32;
    OPENSSL_cleanse(msg, n);
    return ok ? 0 : -EIO;
}

static size_t slot_of(const uint8_t tag[32]) {
    return ((size_t)tag[0] | (size_t)tag[1] << 8 | (size_t)tag[2] << 16) % CACHE_SLOTS;
}

int store_zone_password_verify(const uint8_t *salt, size_t salt_len, const uint8_t stored[STORE_HASH_LEN],
                               const char *password, bool *from_cache) {
    size_t password_len = strlen(password);
    uint8_t tag[32], hash[STORE_HASH_LEN];
    bool tagged = false;
    if (from_cache) *from_cache = false;
    pthread_once(&cache_once, cache_init);
    if (cache_ready && cache_tag(salt, salt_len, stored, password, password_len, tag) == 0) {
        tagged = true;
        pthread_mutex_lock(&cache_lock);
        const cache_slot_t *s = &cache[slot_of(tag)];
        bool hit = s->used && CRYPTO_memcmp(s->tag, tag, sizeof tag) == 0;
        pthread_mutex_unlock(&cache_lock);
        if (hit) {
            if (from_cache) *from_cache = true;
            return 0;
        }
    }
    int rc = store_zone_password_hash(salt, salt_len, password, password_len, hash);
    if (rc != 0) return rc;
    rc = CRYPTO_memcmp(stored, hash, STORE_HASH_LEN) == 0 ? 0 : -EACCES;
    if (rc == 0 && tagged) { /* only what was verified: a wrong password is never remembered */
        pthread_mutex_lock(&cache_lock);
        cache_slot_t *s = &cache[slot_of(tag)];
        memcpy(s->tag, tag, sizeof tag);
        s->used = true;
        pthread_mutex_unlock(&cache_lock);
    }
    OPENSSL_cleanse(hash, sizeof hash);
    return rc;
}

void store_zone_password_burn(const char *password) {
    static const uint8_t salt[STORE_ZONE_SALT_LEN] = {0};
    uint8_t hash[STORE_HASH_LEN];
    (void)store_zone_password_hash(salt, sizeof salt, password, strlen(password), hash);
}
