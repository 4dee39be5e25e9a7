/* libFuzzer target for the CDP endpoint's connection string (src/cdp/credentials.c): the
 * "Authorization: Basic" value and the user name / password pair of the URL. The input goes
 * in three ways: as the header value itself, base64-encoded behind "Basic ", and split at its
 * first ':' into user and password. Checks, besides crashes and sanitizer reports:
 *   - an accepted customer id and zone are valid store names and NUL-terminated within
 *     their fields, and the password is as long as what was given (header paths: up to
 *     the decoded text's end);
 *   - the same user and password, base64-encoded, give the same verdict and the same fields
 *     (the two doors agree);
 *   - the canonical user name rebuilt from the fields ("brd-customer-C-zone-Z") is accepted
 *     again with the same fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/credentials.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t b64_encode(const uint8_t *in, size_t n, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static void check_fields(const zone_credentials_t *c) {
    if (!memchr(c->customer_id, '\0', sizeof c->customer_id) || !memchr(c->zone, '\0', sizeof c->zone) ||
        !memchr(c->password, '\0', sizeof c->password))
        abort();
    if (!store_valid_customer_id(c->customer_id) || !store_valid_zone_name(c->zone) || !c->password[0]) abort();
}

static int same(const zone_credentials_t *a, const zone_credentials_t *b) {
    return strcmp(a->customer_id, b->customer_id) == 0 && strcmp(a->zone, b->zone) == 0 &&
           strcmp(a->password, b->password) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1024) return 0; /* the header path decodes into 512 bytes: longer says nothing new */
    zone_credentials_t c;

    /* 1. the bytes as a header value */
    if (credentials_from_basic((const char *)data, size, &c) == CREDENTIALS_OK) check_fields(&c);

    /* 2. split at the first ':' as user and password; 3. the same through base64 */
    const uint8_t *colon = memchr(data, ':', size);
    if (!colon) return 0;
    size_t ulen = (size_t)(colon - data), plen = size - ulen - 1;
    if (memchr(data, '\0', size)) return 0; /* the URL door never has a NUL: decoding refuses %00 */
    zone_credentials_t direct;
    credentials_result_t rd = credentials_from_user_password((const char *)data, ulen, (const char *)colon + 1, plen, &direct);
    if (rd == CREDENTIALS_OK) {
        check_fields(&direct);
        if (strlen(direct.password) != plen) abort();
    }

    char header[6 + 4 * (1024 / 3 + 1) + 1];
    memcpy(header, "Basic ", 6);
    size_t hlen = 6 + b64_encode(data, size, header + 6);
    zone_credentials_t via_header;
    credentials_result_t rh = credentials_from_basic(header, hlen, &via_header);
    /* The header decodes into at most 512 bytes: longer inputs may be refused there only. */
    if (size <= 512) {
        if (rh != rd) abort();
        if (rh == CREDENTIALS_OK && !same(&direct, &via_header)) abort();
    }

    if (rd == CREDENTIALS_OK) {
        char user[16 + STORE_ID_MAX + 6 + STORE_ZONE_MAX + 1];
        size_t n = (size_t)snprintf(user, sizeof user, "brd-customer-%s-zone-%s", direct.customer_id, direct.zone);
        zone_credentials_t again;
        if (credentials_from_user_password(user, n, direct.password, strlen(direct.password), &again) != CREDENTIALS_OK ||
            !same(&direct, &again))
            abort();
    }
    return 0;
}
