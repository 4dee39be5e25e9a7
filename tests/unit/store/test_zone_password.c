/* Unit tests of src/store/zone_password.c: the KDF's hash, and the memory of verified
 * passwords (what it accepts without the KDF, and what it never accepts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "store/store_internal.h"

static const uint8_t SALT[STORE_ZONE_SALT_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* PBKDF2-HMAC-SHA256(SHA-256(salt || password), salt, 100000), computed here on its own. */
static void test_hash_is_pbkdf2_of_the_old_hash(void **state) {
    (void)state;
    const char *pw = "abcdefghijklmnopqrstuvwx";
    uint8_t fast[32], want[32], got[32], upgraded[32];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned n = 0;
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
    EVP_DigestUpdate(ctx, SALT, sizeof SALT);
    EVP_DigestUpdate(ctx, pw, strlen(pw));
    EVP_DigestFinal_ex(ctx, fast, &n);
    EVP_MD_CTX_free(ctx);
    assert_int_equal(PKCS5_PBKDF2_HMAC((const char *)fast, 32, SALT, sizeof SALT, 100000, EVP_sha256(), 32, want), 1);
    assert_int_equal(store_zone_password_hash(SALT, sizeof SALT, pw, strlen(pw), got), 0);
    assert_memory_equal(got, want, 32);
    assert_int_equal(store_zone_password_upgrade(SALT, sizeof SALT, fast, upgraded), 0);
    assert_memory_equal(upgraded, want, 32);
}

/* The first check runs the KDF, the next ones of the same password against the same row come
 * from memory; a wrong password never does, however often it comes. */
static void test_verified_passwords_are_remembered_wrong_ones_never(void **state) {
    (void)state;
    const char *pw = "rememberedpassword000001";
    uint8_t stored[32];
    bool cached = true;
    assert_int_equal(store_zone_password_hash(SALT, sizeof SALT, pw, strlen(pw), stored), 0);
    assert_int_equal(store_zone_password_verify(SALT, sizeof SALT, stored, pw, &cached), 0);
    assert_false(cached);
    assert_int_equal(store_zone_password_verify(SALT, sizeof SALT, stored, pw, &cached), 0);
    assert_true(cached);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(store_zone_password_verify(SALT, sizeof SALT, stored, "rememberedpassword000002", &cached),
                         -EACCES);
        assert_false(cached);
    }
    assert_int_equal(store_zone_password_verify(SALT, sizeof SALT, stored, "", &cached), -EACCES);
    assert_false(cached);
}

/* The memory is bound to the row: the same password against another stored hash (the zone got
 * a new password, or another zone) or another salt is checked by the KDF again. */
static void test_memory_is_bound_to_the_row(void **state) {
    (void)state;
    const char *pw = "boundpassword00000000001";
    uint8_t stored[32], other[32];
    bool cached = false;
    assert_int_equal(store_zone_password_hash(SALT, sizeof SALT, pw, strlen(pw), stored), 0);
    assert_int_equal(store_zone_password_verify(SALT, sizeof SALT, stored, pw, &cached), 0);
    assert_int_equal(store_zone_password_verify(SALT, sizeof SALT, stored, pw, &cached), 0);
    assert_true(cached);
    memcpy(other, stored, sizeof other);
    other[31] ^= 1;
    assert_int_equal(store_zone_password_verify(SALT, sizeof SALT, other, pw, &cached), -EACCES);
    assert_false(cached);
    uint8_t salt2[STORE_ZONE_SALT_LEN];
    memcpy(salt2, SALT, sizeof salt2);
    salt2[0] ^= 1;
    assert_int_equal(store_zone_password_verify(salt2, sizeof salt2, stored, pw, &cached), -EACCES);
    assert_false(cached);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_pbkdf2_of_the_old_hash),
        cmocka_unit_test(test_verified_passwords_are_remembered_wrong_ones_never),
        cmocka_unit_test(test_memory_is_bound_to_the_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
