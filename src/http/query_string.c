#include "http/query_string.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void query_iter_init(query_iter_t *it, const char *qs, size_t len) {
    it->pos = qs;
    it->end = qs ? qs + len : qs;
}

bool query_iter_next(query_iter_t *it, query_pair_t *pair) {
    while (it->pos && it->pos < it->end) {
        const char *segment = it->pos;
        const char *amp = memchr(segment, '&', (size_t)(it->end - segment));
        const char *segment_end = amp ? amp : it->end;
        it->pos = amp ? amp + 1 : it->end;
        if (segment_end == segment) continue; /* "&&", leading or trailing '&' */

        const char *eq = memchr(segment, '=', (size_t)(segment_end - segment));
        pair->name = segment;
        pair->name_len = (size_t)((eq ? eq : segment_end) - segment);
        pair->value = eq ? eq + 1 : segment_end;
        pair->value_len = (size_t)(segment_end - pair->value);
        pair->has_equals = eq != NULL;
        return true;
    }
    return false;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int query_decode(const char *src, size_t len, char *dst, size_t dst_cap, size_t *out_len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char byte = (unsigned char)src[i];
        if (byte == '%') {
            const int hi = i + 1 < len ? hex_value((unsigned char)src[i + 1]) : -1;
            const int lo = i + 2 < len ? hex_value((unsigned char)src[i + 2]) : -1;
            if (hi < 0 || lo < 0) return -EINVAL;
            byte = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (byte == '+') {
            byte = ' ';
        }
        /* A NUL (escaped or raw) would silently cut every C string made from the value. */
        if (byte == 0) return -EILSEQ;
        /* Keep scanning when out of room: a later bad escape must win over -ENOSPC so that
         * the verdict on the input does not depend on the caller's buffer size. */
        if (dst && n + 1 < dst_cap) dst[n] = (char)byte;
        n++;
    }
    if (out_len) *out_len = n;
    if (!dst) return 0;
    if (n >= dst_cap) return -ENOSPC;
    dst[n] = '\0';
    return 0;
}

int query_decode_alloc(const char *src, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    size_t decoded_len = 0;
    int rc = query_decode(src, len, NULL, 0, &decoded_len);
    if (rc < 0) return rc;
    char *copy = malloc(decoded_len + 1);
    if (!copy) return -ENOMEM;
    rc = query_decode(src, len, copy, decoded_len + 1, NULL);
    if (rc < 0) { /* cannot happen after the measuring pass; keep the error path honest */
        free(copy);
        return rc;
    }
    *out = copy;
    if (out_len) *out_len = decoded_len;
    return 0;
}
