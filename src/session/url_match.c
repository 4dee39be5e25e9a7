#include "session/url_match.h"

#include <stdint.h>
#include <string.h>

static inline unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

bool url_host(const char *url, size_t len, const char **host, size_t *host_len) {
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < len; i++) {
        if (url[i] == ':' && url[i + 1] == '/' && url[i + 2] == '/') {
            sep = url + i + 3;
            break;
        }
        /* A scheme is letters, digits, '+', '-', '.': anything else means no scheme. */
        char c = url[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '-' || c == '.'))
            return false;
    }
    if (!sep) return false;
    const char *end = url + len;
    const char *auth_end = sep;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#') auth_end++;
    const char *h = sep;
    for (const char *p = auth_end; p > sep; p--)
        if (p[-1] == '@') {
            h = p;
            break;
        }
    const char *h_end;
    if (h < auth_end && *h == '[') {
        h_end = memchr(h, ']', (size_t)(auth_end - h));
        if (!h_end) return false;
        h_end++;
    } else {
        h_end = h;
        while (h_end < auth_end && *h_end != ':') h_end++;
    }
    if (h_end == h) return false;
    *host = h;
    *host_len = (size_t)(h_end - h);
    return true;
}

static bool equal_nocase(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return false;
    return true;
}

bool url_host_matches_domain(const char *host, size_t host_len, const char *domain, size_t domain_len) {
    if (host_len == domain_len) return equal_nocase(host, domain, domain_len);
    if (host_len < domain_len + 1) return false;
    const char *tail = host + host_len - domain_len;
    return tail[-1] == '.' && equal_nocase(tail, domain, domain_len);
}

bool url_has_prefix(const char *url, size_t url_len, const char *prefix, size_t prefix_len) {
    return url_len >= prefix_len && equal_nocase(url, prefix, prefix_len);
}

int url_casecmp(const char *a, size_t alen, const char *b, size_t blen) {
    size_t n = alen < blen ? alen : blen, i = 0;
    /* Sorted URLs share long prefixes ("https://www.example.com/products/"): skip the bytes
     * that are equal as they are, eight at a time, before folding case byte by byte. */
    while (i + 8 <= n) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) break;
        i += 8;
    }
    for (; i < n; i++) {
        unsigned char x = lower((unsigned char)a[i]), y = lower((unsigned char)b[i]);
        if (x != y) return x < y ? -1 : 1;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}
