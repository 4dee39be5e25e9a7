/* URL query strings ("a=1&b=x%20y"): splitting into name=value pairs and decoding them.
 *
 * Ownership: nothing here owns memory except query_decode_alloc's result, which the caller
 * frees. An iterator and the pairs it yields borrow the caller's query string: they are
 * valid only while it is. No global state; every function is reentrant.
 *
 * Splitting happens on the raw text, before decoding, so an encoded "%26" or "%3D" is part
 * of a name or value, never a separator. Decoding is the form rule: "%XX" (hex in any
 * case) is the byte XX, "+" is a space, every other byte is itself. */
#ifndef BROWSERD_HTTP_QUERY_STRING_H
#define BROWSERD_HTTP_QUERY_STRING_H

#include <stdbool.h>
#include <stddef.h>

/* One pair, still encoded: slices of the query string. A segment without '=' has an empty
 * value (value_len 0); the value runs to the next '&' and may contain further '='. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    bool has_equals; /* the segment had a '=' ("a=" vs "a"); both have an empty value */
} query_pair_t;

typedef struct {
    const char *pos;
    const char *end;
} query_iter_t;

/* `qs` is the part after '?' (no fragment); NULL with len 0 is an empty query. */
void query_iter_init(query_iter_t *it, const char *qs, size_t len);

/* The next pair, skipping empty segments ("a=1&&b=2", leading or trailing '&').
 * Returns false when there is none left. */
bool query_iter_next(query_iter_t *it, query_pair_t *pair);

/* Decodes src[0..len) into dst. The decoded length is at most `len`, so dst_cap >= len + 1
 * always suffices (the +1 is the NUL that is written after the bytes when there is room).
 * dst may be NULL to validate and measure only (dst_cap is then ignored).
 *   0       success; *out_len (if not NULL) is the decoded length, without the NUL
 *   -EINVAL invalid percent-encoding: '%' not followed by two hex digits ("%", "%4", "%zz")
 *   -EILSEQ the result would contain a NUL byte ("%00", or a raw NUL in src), which no
 *           C string can carry
 *   -ENOSPC dst_cap is too small for the decoded bytes and the NUL; *out_len is still
 *           the decoded length, so the caller knows what to allocate
 * Encoding errors are reported before -ENOSPC: the whole input is always checked. On error
 * the contents of dst are unspecified. */
int query_decode(const char *src, size_t len, char *dst, size_t dst_cap, size_t *out_len);

/* Like query_decode into a new NUL-terminated allocation that the caller frees.
 * Returns 0, -EINVAL, -EILSEQ or -ENOMEM; *out is NULL on error. */
int query_decode_alloc(const char *src, size_t len, char **out, size_t *out_len);

#endif
