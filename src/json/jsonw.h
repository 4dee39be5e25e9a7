/* Streaming JSON writer into a buf_t (borrowed; the caller owns it).
 * Commas are placed automatically. The first allocation failure is sticky: check
 * jsonw_failed() once at the end instead of after every call. */
#ifndef BROWSERD_JSON_JSONW_H
#define BROWSERD_JSON_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define JSONW_MAX_DEPTH 32

typedef struct {
    buf_t *out;
    int failed;
    int depth;
    bool need_comma[JSONW_MAX_DEPTH + 1];
    bool after_key;
} jsonw_t;

void jsonw_init(jsonw_t *w, buf_t *out);
void jsonw_object_begin(jsonw_t *w);
void jsonw_object_end(jsonw_t *w);
void jsonw_array_begin(jsonw_t *w);
void jsonw_array_end(jsonw_t *w);
/* `key` must be plain ASCII without characters that need escaping (our own field names). */
void jsonw_key(jsonw_t *w, const char *key);
/* Escapes per RFC 8259; bytes >= 0x80 pass through (input is expected to be UTF-8),
 * control characters become \u00XX. A NULL string writes null. */
void jsonw_string(jsonw_t *w, const char *s);
void jsonw_string_n(jsonw_t *w, const char *s, size_t n);
void jsonw_int(jsonw_t *w, int64_t v);
void jsonw_bool(jsonw_t *w, bool v);
void jsonw_null(jsonw_t *w);
/* Milliseconds as seconds with up to three decimals, trailing zeros dropped:
 * 209444 -> 209.444, 45200 -> 45.2, 12000 -> 12. */
void jsonw_seconds_ms(jsonw_t *w, int64_t ms);
bool jsonw_failed(const jsonw_t *w);

#endif
