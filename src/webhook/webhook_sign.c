#include "webhook/webhook_sign.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

int webhook_sign(const char *secret, int64_t unix_seconds, const char *body, size_t body_len,
                 char out[WEBHOOK_SIGNATURE_MAX]) {
    static const char digits[] = "0123456789abcdef";
    out[0] = '\0';
    char prefix[24];
    int prefix_len = snprintf(prefix, sizeof prefix, "%" PRId64 ".", unix_seconds);
    /* HMAC over "<t>." and the body without copying the body: one context, two updates. */
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest_name, 0), OSSL_PARAM_construct_end()};
    unsigned char tag[EVP_MAX_MD_SIZE];
    size_t tag_len = 0;
    int ok = ctx && EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)prefix_len) == 1 &&
             (body_len == 0 || EVP_MAC_update(ctx, (const unsigned char *)body, body_len) == 1) &&
             EVP_MAC_final(ctx, tag, &tag_len, sizeof tag) == 1 && tag_len == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!ok) return -EIO;
    int n = snprintf(out, WEBHOOK_SIGNATURE_MAX, "t=%" PRId64 ",v1=", unix_seconds);
    for (size_t i = 0; i < tag_len; i++) {
        out[n++] = digits[tag[i] >> 4];
        out[n++] = digits[tag[i] & 15];
    }
    out[n] = '\0';
    OPENSSL_cleanse(tag, sizeof tag);
    return 0;
}
