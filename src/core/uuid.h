/* UUIDs: parsing any-case text, lowercase formatting, version 7 generation. */
#ifndef BROWSERD_CORE_UUID_H
#define BROWSERD_CORE_UUID_H

#include <stddef.h>
#include <stdint.h>

#define UUID_TEXT_LEN 36

/* Accepts exactly 36 characters, 8-4-4-4-12 hex digits in any case. Any version. Returns 0
 * and the 16 bytes, or -1. */
int uuid_parse(const char *s, size_t len, uint8_t out[16]);
/* Lowercase 8-4-4-4-12 text and a NUL. */
void uuid_format(const uint8_t in[16], char out[UUID_TEXT_LEN + 1]);
/* RFC 9562 version 7: 48-bit Unix ms timestamp, then random bits (from getrandom). */
int uuid_v7_generate(int64_t now_ms, uint8_t out[16]);

#endif
