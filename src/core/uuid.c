#include "core/uuid.h"

#include <errno.h>
#include <sys/random.h>

/* Byte i of the UUID starts at text position uuid_text_pos[i]; hyphens sit between. */
static const unsigned char uuid_text_pos[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int uuid_parse(const char *s, size_t len, uint8_t out[16]) {
    if (!s || len != UUID_TEXT_LEN) return -1;
    if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return -1;
    uint8_t bytes[16];
    for (int i = 0; i < 16; i++) {
        const int hi = hex_value(s[uuid_text_pos[i]]);
        const int lo = hex_value(s[uuid_text_pos[i] + 1]);
        if (hi < 0 || lo < 0) return -1;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    /* Only now: a malformed id leaves `out` untouched. */
    for (int i = 0; i < 16; i++) out[i] = bytes[i];
    return 0;
}

void uuid_format(const uint8_t in[16], char out[UUID_TEXT_LEN + 1]) {
    static const char hex_digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[uuid_text_pos[i]] = hex_digits[in[i] >> 4];
        out[uuid_text_pos[i] + 1] = hex_digits[in[i] & 0x0f];
    }
    out[8] = out[13] = out[18] = out[23] = '-';
    out[UUID_TEXT_LEN] = '\0';
}

/* getrandom(2) may return fewer bytes or EINTR; loop until the buffer is full. */
static int fill_random(uint8_t *p, size_t n) {
    while (n > 0) {
        const ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int uuid_v7_generate(int64_t now_ms, uint8_t out[16]) {
    /* unix_ts_ms is an unsigned 48-bit field: a time outside it cannot be encoded honestly. */
    if (now_ms < 0 || now_ms > (INT64_C(1) << 48) - 1) return -EINVAL;
    uint8_t bytes[16];
    const int rc = fill_random(bytes + 6, 10);
    if (rc < 0) return rc;
    for (int i = 0; i < 6; i++) bytes[i] = (uint8_t)((uint64_t)now_ms >> (40 - 8 * i));
    bytes[6] = (uint8_t)(0x70 | (bytes[6] & 0x0f)); /* version 7 */
    bytes[8] = (uint8_t)(0x80 | (bytes[8] & 0x3f)); /* variant 10 (RFC 9562) */
    for (int i = 0; i < 16; i++) out[i] = bytes[i];
    return 0;
}
