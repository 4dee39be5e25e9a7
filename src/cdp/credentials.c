#include "cdp/credentials.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with optional padding; returns the decoded length or -1. */
static long b64_decode(const char *in, size_t len, char *out, size_t cap) {
    while (len > 0 && in[len - 1] == '=') len--;
    if (len % 4 == 1) return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)o;
}

static bool is_id_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

/* Copies the '-'-free token at *p (up to end) into out when it is a valid id of at most
 * max characters; advances *p past it. */
static bool take_token(const char **p, const char *end, char *out, size_t max) {
    const char *s = *p;
    size_t n = 0;
    while (s + n < end && s[n] != '-') {
        if (!is_id_char(s[n]) || n >= max) return false;
        n++;
    }
    if (n == 0) return false;
    memcpy(out, s, n);
    out[n] = '\0';
    *p = s + n;
    return true;
}

static bool take_literal(const char **p, const char *end, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0) return false;
    *p += n;
    return true;
}

credentials_result_t credentials_from_user_password(const char *user, size_t user_len, const char *password,
                                                    size_t password_len, zone_credentials_t *out) {
    const char *p = user, *end = user + user_len;
    if (user_len == 0) return CREDENTIALS_MISSING;
    (void)take_literal(&p, end, "brd-");
    if (!take_literal(&p, end, "customer-") || !take_token(&p, end, out->customer_id, STORE_ID_MAX) ||
        !take_literal(&p, end, "-zone-") || !take_token(&p, end, out->zone, STORE_ZONE_MAX))
        return CREDENTIALS_MALFORMED;
    /* Options such as "-country-us" come in key-value pairs; their values are not ours to
     * judge, so any non-empty text without '-' will do. */
    while (p < end) {
        if (*p != '-') return CREDENTIALS_MALFORMED;
        p++;
        const char *key = p;
        while (p < end && *p != '-') p++;
        if (p == key || p == end) return CREDENTIALS_MALFORMED;
        p++;
        const char *value = p;
        while (p < end && *p != '-') p++;
        if (p == value) return CREDENTIALS_MALFORMED;
    }
    if (password_len == 0) return CREDENTIALS_MISSING;
    if (password_len >= sizeof out->password) return CREDENTIALS_MALFORMED;
    /* A NUL (possible in Basic's base64, not in a URL) would cut the password short: the
     * check would then see "pw" for "pw\0anything", or an empty one for "\0". */
    if (memchr(password, '\0', password_len)) return CREDENTIALS_MALFORMED;
    memcpy(out->password, password, password_len);
    out->password[password_len] = '\0';
    return CREDENTIALS_OK;
}

credentials_result_t credentials_from_basic(const char *header, size_t len, zone_credentials_t *out) {
    const char *p = header, *end = header + len;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (end - p < 5 || strncasecmp(p, "basic", 5) != 0) return CREDENTIALS_MISSING;
    p += 5;
    if (p < end && *p != ' ' && *p != '\t') return CREDENTIALS_MISSING;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (p == end) return CREDENTIALS_MISSING;
    char decoded[512];
    long n = b64_decode(p, (size_t)(end - p), decoded, sizeof decoded);
    if (n < 0) return CREDENTIALS_MALFORMED;
    const char *colon = memchr(decoded, ':', (size_t)n);
    if (!colon) return CREDENTIALS_MALFORMED;
    size_t ulen = (size_t)(colon - decoded);
    return credentials_from_user_password(decoded, ulen, colon + 1, (size_t)n - ulen - 1, out);
}
