/* One-pass scanner of Chrome DevTools Protocol messages: validates a complete JSON message
 * and reports its top-level routing members, without building a tree, allocating or
 * copying. See docs/ws.md ("CDP message scanner") for the contract and the figures.
 *
 * Ownership: every function borrows its input for the duration of the call; every
 * cdp_slice_t it reports points into that input (never copied), so the results are valid
 * exactly as long as the caller keeps the message alive.
 *
 * What "valid" means here (stricter than most parsers, on purpose — the gateway must not see
 * a different message than Chromium does):
 *  - RFC 8259 grammar: one value (which must be an object) surrounded by optional
 *    whitespace (space, tab, LF, CR only); no trailing bytes, not even NUL (pass the length
 *    without the pipe's terminator);
 *  - strings: no raw control characters (< 0x20), only the escapes of RFC 8259, raw bytes
 *    must be valid UTF-8 (no overlongs, surrogates or > U+10FFFF), and \u escapes must
 *    form valid UTF-16 (a high surrogate only directly followed by a low one);
 *  - numbers: the RFC grammar (no leading zeros, no '+', no '.5', no NaN/Infinity);
 *  - at most CDP_SCAN_MAX_DEPTH nested objects/arrays (the same limit, counted the same way,
 *    as cJSON's CJSON_NESTING_LIMIT). */
#ifndef BROWSERD_CDP_CDP_SCAN_H
#define BROWSERD_CDP_CDP_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CDP_SCAN_MAX_DEPTH 1000

/* A borrowed piece of the input. ptr == NULL (len 0) means absent. */
typedef struct {
    const char *ptr;
    size_t len;
} cdp_slice_t;

/* Top-level members the scanner looks for; also the bits of cdp_msg_t's masks. */
enum {
    CDP_KEY_ID = 1u << 0,
    CDP_KEY_METHOD = 1u << 1,
    CDP_KEY_SESSION_ID = 1u << 2,
    CDP_KEY_PARAMS = 1u << 3,
    CDP_KEY_RESULT = 1u << 4,
    CDP_KEY_ERROR = 1u << 5,
};

typedef struct {
    /* CDP_KEY_* bits of the members found at the top level (never in nested objects).
     * Names are compared after unescaping, so "\u0069d" is "id", as Chromium sees it. */
    unsigned present;
    /* Members that occurred more than once. The first occurrence is the one reported (as
     * cJSON does; Chromium may use another), so the gateway should refuse such messages
     * rather than route them. */
    unsigned duplicate;
    /* id: id_raw is the raw JSON value whatever its type. id_is_int says it is a JSON
     * number without fraction or exponent that fits int64_t; then `id` holds it. Anything
     * else (1.0, 1e3, "7", null, 2^63) is present with id_is_int == false: the "flag". */
    bool id_is_int;
    int64_t id;
    cdp_slice_t id_raw;
    /* method / sessionId: the string's contents between the quotes, escapes NOT decoded
     * (*_escaped says whether there were any; then compare with cdp_string_equals or
     * decode with cdp_string_decode). If the member is present but not a string, the slice
     * is absent and the bit is set in `not_string`. */
    cdp_slice_t method;
    bool method_escaped;
    cdp_slice_t session_id;
    bool session_id_escaped;
    unsigned not_string;
    /* params / result / error: the raw JSON value (e.g. "{...}" including the braces). */
    cdp_slice_t params;
    cdp_slice_t result;
    cdp_slice_t error;
    /* On failure: a static reason and the byte offset where the problem was found. */
    const char *err;
    size_t err_offset;
} cdp_msg_t;

/* Validates `json` (one complete message) and fills *out. Returns 0, or -EINVAL if the
 * message is not a valid JSON object as defined above (out->err says why; the other fields
 * are then unspecified). Never allocates; O(len), one pass. */
int cdp_scan(const char *json, size_t len, cdp_msg_t *out);

/* JSON value types, for cdp_object_get. */
typedef enum {
    CDP_T_OBJECT,
    CDP_T_ARRAY,
    CDP_T_STRING,
    CDP_T_NUMBER,
    CDP_T_TRUE,
    CDP_T_FALSE,
    CDP_T_NULL,
} cdp_type_t;

typedef struct {
    cdp_type_t type;
    cdp_slice_t raw; /* the whole JSON value, quotes/braces included */
    cdp_slice_t str; /* CDP_T_STRING: contents between the quotes, escapes not decoded */
    bool escaped;    /* CDP_T_STRING: the contents hold escapes */
} cdp_value_t;

/* One level of lookup without a tree: `obj` is a JSON object (e.g. the params slice of a
 * scanned message); finds its member named key (key_len bytes of UTF-8, compared with the
 * unescaped member names; the first occurrence wins). The whole of `obj` is validated with
 * the same rules as cdp_scan. Returns 0 (found), -ENOENT (valid object without that
 * member) or -EINVAL (not a valid JSON object).
 * Recommended for reading one to three fields of hot-path events (params.targetInfo.url of
 * Target.targetInfoChanged is two calls); use cJSON where a whole structure is needed. */
int cdp_object_get(const char *obj, size_t len, const char *key, size_t key_len, cdp_value_t *out);

/* cdp_object_get with the member name compared case-insensitively (ASCII letters): HTTP
 * header names in Network.* events. */
int cdp_object_get_ci(const char *obj, size_t len, const char *key, size_t key_len, cdp_value_t *out);

/* Several members in one pass: out[i] for keys[i] (first occurrence), bit i of *found set
 * when it is present (out[i] is zeroed otherwise). n <= CDP_GET_MAX_KEYS. 0, or -EINVAL
 * (not a valid object, or too many keys). */
#define CDP_GET_MAX_KEYS 16
int cdp_object_get_many(const char *obj, size_t len, const cdp_slice_t *keys, int n, cdp_value_t *out,
                        unsigned *found);

/* Element `index` of a JSON array that has been validated already (an array value that
 * cdp_scan or cdp_object_get* reported: this walk does not validate again). 0, -ENOENT past
 * the end, or -EINVAL when arr is not an array. */
int cdp_array_get(const char *arr, size_t len, size_t index, cdp_value_t *out);

/* A string value unescaped into out as a C string (cap includes the NUL): 0, -ENOSPC,
 * -EINVAL (not a string, or it holds a \u0000 that a C string cannot). */
int cdp_string_copy(const cdp_value_t *v, char *out, size_t cap);
/* The same into a malloc'ed string (the caller frees it); NULL when out of memory or not
 * representable. */
char *cdp_string_dup(const cdp_value_t *v);

/* Parses a JSON number slice as an integer: 0, -ERANGE (does not fit int64_t) or -EINVAL
 * (not an integer literal: fraction, exponent, or not a number at all). */
int cdp_number_int(cdp_slice_t raw, int64_t *out);

/* Whether the contents of a validated JSON string (between the quotes, as reported above)
 * equal `lit` once unescaped. Single pass, no allocation. */
bool cdp_string_equals(cdp_slice_t contents, const char *lit, size_t lit_len);

/* Unescapes the contents of a validated JSON string into out (UTF-8; the result is never
 * longer than the input, so cap == contents.len always suffices; not NUL-terminated).
 * Returns 0 with *out_len set, -ENOSPC if cap is too small, -EINVAL on a malformed escape. */
int cdp_string_decode(cdp_slice_t contents, char *out, size_t cap, size_t *out_len);

#endif
