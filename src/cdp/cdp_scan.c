/* CDP message scanner. See cdp_scan.h for the contract.
 *
 * One iterative pass (no recursion: the nesting limit is 1000 and the loop thread's stack
 * is not ours to spend) over the bytes, with an explicit one-bit-per-level stack. The time
 * of a big message goes into string bodies (a screenshot is one 20-50 MB base64 string),
 * so strings are skipped 64 bytes per iteration with SSE2: one signed compare finds both
 * control characters and non-ASCII bytes (both are < 0x20 as signed bytes), two more find
 * '"' and '\\'. Everything else is a plain byte-at-a-time state machine, which is fine for
 * the short tokens of CDP messages. */
#include "cdp/cdp_scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef struct {
    const char *err;
    const uint8_t *at;
} scan_err_t;

/* A member captured at the top level of the scanned object. */
typedef struct {
    const uint8_t *p; /* NULL: not found */
    size_t len;
    bool escaped; /* string values: contained a backslash */
} member_t;

static inline bool is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static inline int hexval(uint8_t c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Four hex digits at p (which has at least 4 bytes), or -1. */
static inline int32_t hex4(const uint8_t *p) {
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
    if ((a | b | c | d) < 0)
        return -1;
    return (a << 12) | (b << 8) | (c << 4) | d;
}

/* Length of the valid UTF-8 sequence starting with a non-ASCII byte at p, or 0. The ranges
 * are those of RFC 3629's table: they exclude overlongs, surrogates and > U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    size_t avail = (size_t)(end - p);
    uint8_t lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Validates one escape at p (p[0] == '\\'); returns its length or 0. */
static size_t escape_len(const uint8_t *p, const uint8_t *end, scan_err_t *e) {
    if (end - p < 2) {
        e->err = "unterminated string";
        e->at = p;
        return 0;
    }
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 2;
    case 'u':
        break;
    default:
        e->err = "invalid escape in string";
        e->at = p;
        return 0;
    }
    int32_t u = end - p >= 6 ? hex4(p + 2) : -1;
    if (u < 0) {
        e->err = "invalid \\u escape";
        e->at = p;
        return 0;
    }
    if (u >= 0xdc00 && u <= 0xdfff) {
        e->err = "lone low surrogate escape";
        e->at = p;
        return 0;
    }
    if (u < 0xd800 || u > 0xdbff)
        return 6;
    int32_t l = (end - p >= 12 && p[6] == '\\' && p[7] == 'u') ? hex4(p + 8) : -1;
    if (l < 0xdc00 || l > 0xdfff) {
        e->err = "high surrogate escape not followed by a low surrogate";
        e->at = p;
        return 0;
    }
    return 12;
}

#ifdef __SSE2__
/* Bit i set if s[i] is '"', '\\', < 0x20 or >= 0x80 (all 16 bytes readable). */
static inline unsigned special16(__m128i v) {
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                             _mm_cmplt_epi8(v, space));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

static inline bool special_byte(uint8_t c) { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80; }

/* p is just past the opening quote. Returns the closing quote, or NULL with *e set.
 * *escaped is set if the string holds an escape. */
static inline __attribute__((always_inline)) const uint8_t *
scan_string(const uint8_t *p, const uint8_t *end, bool *escaped, scan_err_t *e) {
    for (;;) {
#ifdef __SSE2__
        /* Most CDP strings are short (names, ids, URLs): one 16-byte probe first, then the
         * 64-byte loop for long bodies. */
        if (end - p >= 16) {
            unsigned m = special16(_mm_loadu_si128((const __m128i *)p));
            if (m) {
                p += __builtin_ctz(m);
                goto special;
            }
            p += 16;
        }
        while (end - p >= 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)p);
            __m128i b = _mm_loadu_si128((const __m128i *)(p + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(p + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(p + 48));
            uint64_t m = (uint64_t)special16(a) | ((uint64_t)special16(b) << 16) |
                         ((uint64_t)special16(c) << 32) | ((uint64_t)special16(d) << 48);
            if (m) {
                p += __builtin_ctzll(m);
                goto special;
            }
            p += 64;
        }
        while (end - p >= 16) {
            unsigned m = special16(_mm_loadu_si128((const __m128i *)p));
            if (m) {
                p += __builtin_ctz(m);
                goto special;
            }
            p += 16;
        }
#endif
        while (p < end && !special_byte(*p))
            p++;
        if (p == end) {
            e->err = "unterminated string";
            e->at = p;
            return NULL;
        }
#ifdef __SSE2__
    special:
#endif
        if (*p == '"')
            return p;
        if (*p == '\\') {
            size_t n = escape_len(p, end, e);
            if (!n)
                return NULL;
            *escaped = true;
            p += n;
        } else if (*p < 0x20) {
            e->err = "control character in string";
            e->at = p;
            return NULL;
        } else {
            size_t n = utf8_seq(p, end);
            if (!n) {
                e->err = "invalid UTF-8 in string";
                e->at = p;
                return NULL;
            }
            p += n;
        }
    }
}

/* Next unescaped byte sequence of validated string contents: writes 1-4 bytes to out,
 * advances *pp. Returns the count, or 0 on a malformed escape. */
static size_t decode_next(const uint8_t **pp, const uint8_t *end, uint8_t out[4]) {
    const uint8_t *p = *pp;
    if (*p != '\\') {
        out[0] = *p;
        *pp = p + 1;
        return 1;
    }
    if (end - p < 2)
        return 0;
    uint8_t c;
    switch (p[1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': {
        int32_t u = end - p >= 6 ? hex4(p + 2) : -1;
        if (u < 0 || (u >= 0xdc00 && u <= 0xdfff))
            return 0;
        size_t used = 6;
        uint32_t cp = (uint32_t)u;
        if (u >= 0xd800 && u <= 0xdbff) {
            int32_t l = (end - p >= 12 && p[6] == '\\' && p[7] == 'u') ? hex4(p + 8) : -1;
            if (l < 0xdc00 || l > 0xdfff)
                return 0;
            cp = 0x10000 + (((uint32_t)u - 0xd800) << 10) + ((uint32_t)l - 0xdc00);
            used = 12;
        }
        *pp = p + used;
        if (cp < 0x80) {
            out[0] = (uint8_t)cp;
            return 1;
        }
        if (cp < 0x800) {
            out[0] = (uint8_t)(0xc0 | (cp >> 6));
            out[1] = (uint8_t)(0x80 | (cp & 0x3f));
            return 2;
        }
        if (cp < 0x10000) {
            out[0] = (uint8_t)(0xe0 | (cp >> 12));
            out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            out[2] = (uint8_t)(0x80 | (cp & 0x3f));
            return 3;
        }
        out[0] = (uint8_t)(0xf0 | (cp >> 18));
        out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (uint8_t)(0x80 | (cp & 0x3f));
        return 4;
    }
    default:
        return 0;
    }
    out[0] = c;
    *pp = p + 2;
    return 1;
}

static bool str_equals(const uint8_t *p, const uint8_t *end, const uint8_t *lit, size_t lit_len) {
    size_t i = 0;
    while (p < end) {
        uint8_t buf[4];
        size_t n = decode_next(&p, end, buf);
        if (n == 0 || n > lit_len - i || memcmp(buf, lit + i, n) != 0)
            return false;
        i += n;
    }
    return i == lit_len;
}

static uint8_t ascii_lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

/* str_equals with ASCII letters compared case-insensitively. */
static bool str_equals_ci(const uint8_t *p, const uint8_t *end, const uint8_t *lit, size_t lit_len) {
    size_t i = 0;
    while (p < end) {
        uint8_t buf[4];
        size_t n = decode_next(&p, end, buf);
        if (n == 0 || n > lit_len - i)
            return false;
        for (size_t k = 0; k < n; k++)
            if (ascii_lower(buf[k]) != ascii_lower((uint8_t)lit[i + k]))
                return false;
        i += n;
    }
    return i == lit_len;
}

static bool raw_equals_ci(const uint8_t *a, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

bool cdp_string_equals(cdp_slice_t contents, const char *lit, size_t lit_len) {
    const uint8_t *p = (const uint8_t *)contents.ptr;
    if (!p)
        return false;
    return str_equals(p, p + contents.len, (const uint8_t *)lit, lit_len);
}

int cdp_string_decode(cdp_slice_t contents, char *out, size_t cap, size_t *out_len) {
    if (!contents.ptr) {
        *out_len = 0;
        return contents.len ? -EINVAL : 0;
    }
    const uint8_t *p = (const uint8_t *)contents.ptr;
    const uint8_t *end = p + contents.len;
    size_t o = 0;
    while (p < end) {
        uint8_t buf[4];
        size_t n = decode_next(&p, end, buf);
        if (n == 0)
            return -EINVAL;
        if (n > cap - o)
            return -ENOSPC;
        memcpy(out + o, buf, n);
        o += n;
    }
    *out_len = o;
    return 0;
}

int cdp_number_int(cdp_slice_t raw, int64_t *out) {
    const uint8_t *p = (const uint8_t *)raw.ptr;
    const uint8_t *end = p + raw.len;
    if (!p || p == end)
        return -EINVAL;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p == end || *p < '0' || *p > '9' || (*p == '0' && end - p > 1))
        return -EINVAL;
    uint64_t v = 0;
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    bool overflow = false;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            overflow = true; /* keep going: "1e999" must still be -EINVAL, not -ERANGE */
        else
            v = v * 10 + d;
    }
    if (overflow)
        return -ERANGE;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* Validates one JSON document whose top level must be an object, and captures the values
 * of top-level members named keys[i] (first occurrence) into mem[i]; dup gets bit i for a
 * repeated name. */
static bool scan_object(const uint8_t *s, size_t len, const cdp_slice_t *keys, int nkeys, bool fold_case,
                        member_t *mem, unsigned *dup, scan_err_t *e) {
    const uint8_t *p = s;
    const uint8_t *end = s + len;
    uint64_t stack[(CDP_SCAN_MAX_DEPTH + 63) / 64] = {0}; /* bit set: object; clear: array */
    int depth = 0;
    int cur = -1;                 /* index of the top-level member whose value is being read */
    const uint8_t *vstart = NULL; /* where that value starts */
    bool str_escaped = false;     /* escape flag of the most recent string value */

    for (int i = 0; i < nkeys; i++)
        mem[i].p = NULL;
    *dup = 0;

#define FAIL(msg, where)                                                                        \
    do {                                                                                       \
        e->err = (msg);                                                                        \
        e->at = (where);                                                                       \
        return false;                                                                          \
    } while (0)
#define PUSH(is_obj)                                                                           \
    do {                                                                                       \
        if (depth >= CDP_SCAN_MAX_DEPTH)                                                       \
            FAIL("nesting too deep", p);                                                       \
        if (is_obj)                                                                            \
            stack[depth >> 6] |= (uint64_t)1 << (depth & 63);                                  \
        else                                                                                   \
            stack[depth >> 6] &= ~((uint64_t)1 << (depth & 63));                               \
        depth++;                                                                               \
    } while (0)
#define IN_OBJECT() ((stack[(depth - 1) >> 6] >> ((depth - 1) & 63)) & 1)

    p = skip_ws(p, end);
    if (p == end || *p != '{')
        FAIL("top-level value is not an object", p);
    PUSH(1);
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        depth = 0;
        p++;
        goto done;
    }

member:
    /* p: first non-whitespace byte where a member name must start. */
    if (p == end || *p != '"')
        FAIL("expected a member name", p);
    {
        bool kesc = false;
        const uint8_t *k = p + 1;
        const uint8_t *q = scan_string(k, end, &kesc, e);
        if (!q)
            return false;
        if (depth == 1) {
            size_t klen = (size_t)(q - k);
            for (int i = 0; i < nkeys; i++) {
                const uint8_t *want = (const uint8_t *)keys[i].ptr;
                bool eq;
                if (kesc)
                    eq = fold_case ? str_equals_ci(k, q, want, keys[i].len) : str_equals(k, q, want, keys[i].len);
                else
                    eq = klen == keys[i].len &&
                         (fold_case ? raw_equals_ci(k, want, klen) : memcmp(k, want, klen) == 0);
                if (eq) {
                    if (mem[i].p)
                        *dup |= 1u << i;
                    else
                        cur = i;
                    break;
                }
            }
        }
        p = skip_ws(q + 1, end);
    }
    if (p == end || *p != ':')
        FAIL("expected ':' after a member name", p);
    p = skip_ws(p + 1, end);
    if (depth == 1)
        vstart = p;

value:
    if (p == end)
        FAIL("expected a value", p);
    switch (*p) {
    case '{':
        PUSH(1);
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            depth--;
            p++;
            goto value_end;
        }
        goto member;
    case '[':
        PUSH(0);
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            depth--;
            p++;
            goto value_end;
        }
        goto value;
    case '"': {
        bool esc = false;
        const uint8_t *q = scan_string(p + 1, end, &esc, e);
        if (!q)
            return false;
        str_escaped = esc;
        p = q + 1;
        goto value_end;
    }
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0)
            FAIL("invalid literal", p);
        p += 4;
        goto value_end;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0)
            FAIL("invalid literal", p);
        p += 5;
        goto value_end;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            FAIL("invalid literal", p);
        p += 4;
        goto value_end;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9': {
        const uint8_t *n0 = p;
        if (*p == '-')
            p++;
        if (p == end || *p < '0' || *p > '9')
            FAIL("invalid number", n0);
        if (*p == '0')
            p++; /* a leading zero stands alone: "01" fails below as a missing separator */
        else
            while (p < end && *p >= '0' && *p <= '9')
                p++;
        if (p < end && *p == '.') {
            p++;
            if (p == end || *p < '0' || *p > '9')
                FAIL("invalid number", n0);
            while (p < end && *p >= '0' && *p <= '9')
                p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < end && (*p == '+' || *p == '-'))
                p++;
            if (p == end || *p < '0' || *p > '9')
                FAIL("invalid number", n0);
            while (p < end && *p >= '0' && *p <= '9')
                p++;
        }
        goto value_end;
    }
    default:
        FAIL("unexpected character", p);
    }

value_end:
    /* A value just ended at nesting `depth` (a closed container has been popped already).
     * Back at depth 1 means a top-level member's value is complete. */
    if (depth == 1 && cur >= 0) {
        mem[cur].p = vstart;
        mem[cur].len = (size_t)(p - vstart);
        mem[cur].escaped = *vstart == '"' && str_escaped;
        cur = -1;
    }
    if (depth == 0)
        goto done;
    p = skip_ws(p, end);
    if (p == end)
        FAIL(IN_OBJECT() ? "unterminated object" : "unterminated array", p);
    if (IN_OBJECT()) {
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            goto member;
        }
        if (*p == '}') {
            depth--;
            p++;
            goto value_end;
        }
        FAIL("expected ',' or '}'", p);
    }
    if (*p == ',') {
        p = skip_ws(p + 1, end);
        goto value;
    }
    if (*p == ']') {
        depth--;
        p++;
        goto value_end;
    }
    FAIL("expected ',' or ']'", p);

done:
    p = skip_ws(p, end);
    if (p != end)
        FAIL("trailing characters after the top-level object", p);
    return true;
#undef FAIL
#undef PUSH
#undef IN_OBJECT
}

#define K(s) {s, sizeof s - 1}
static const cdp_slice_t cdp_keys[6] = {K("id"),     K("method"), K("sessionId"),
                                        K("params"), K("result"), K("error")};
#undef K

static cdp_slice_t slice_of(const member_t *m) {
    cdp_slice_t s = {(const char *)m->p, m->p ? m->len : 0};
    return s;
}

/* Contents of a string member, or absent (and the not_string bit) for another type. */
static cdp_slice_t string_member(const member_t *m, unsigned bit, bool *escaped, unsigned *not_string) {
    cdp_slice_t s = {NULL, 0};
    *escaped = false;
    if (!m->p)
        return s;
    if (m->p[0] != '"') {
        *not_string |= bit;
        return s;
    }
    s.ptr = (const char *)m->p + 1;
    s.len = m->len - 2;
    *escaped = m->escaped;
    return s;
}

int cdp_scan(const char *json, size_t len, cdp_msg_t *out) {
    if (!json) {
        json = ""; /* an absent message is an empty one, refused below */
        len = 0;
    }
    member_t mem[6];
    scan_err_t e = {NULL, NULL};
    memset(out, 0, sizeof *out);
    if (!scan_object((const uint8_t *)json, len, cdp_keys, 6, false, mem, &out->duplicate, &e)) {
        out->err = e.err;
        out->err_offset = (size_t)(e.at - (const uint8_t *)json);
        return -EINVAL;
    }
    for (int i = 0; i < 6; i++)
        if (mem[i].p)
            out->present |= 1u << i;
    out->id_raw = slice_of(&mem[0]);
    if (mem[0].p)
        out->id_is_int = cdp_number_int(out->id_raw, &out->id) == 0;
    out->method = string_member(&mem[1], CDP_KEY_METHOD, &out->method_escaped, &out->not_string);
    out->session_id =
        string_member(&mem[2], CDP_KEY_SESSION_ID, &out->session_id_escaped, &out->not_string);
    out->params = slice_of(&mem[3]);
    out->result = slice_of(&mem[4]);
    out->error = slice_of(&mem[5]);
    return 0;
}

static void value_of(const member_t *m, cdp_value_t *out) {
    memset(out, 0, sizeof *out);
    out->raw = slice_of(m);
    switch (m->p[0]) {
    case '{': out->type = CDP_T_OBJECT; break;
    case '[': out->type = CDP_T_ARRAY; break;
    case 't': out->type = CDP_T_TRUE; break;
    case 'f': out->type = CDP_T_FALSE; break;
    case 'n': out->type = CDP_T_NULL; break;
    case '"':
        out->type = CDP_T_STRING;
        out->str.ptr = (const char *)m->p + 1;
        out->str.len = m->len - 2;
        out->escaped = m->escaped;
        break;
    default: out->type = CDP_T_NUMBER; break;
    }
}

static int object_get(const char *obj, size_t len, const cdp_slice_t *keys, int n, bool fold_case, cdp_value_t *out,
                      unsigned *found) {
    if (!obj) {
        obj = "";
        len = 0;
    }
    member_t m[CDP_GET_MAX_KEYS];
    unsigned dup;
    scan_err_t e = {NULL, NULL};
    *found = 0;
    if (n < 0 || n > CDP_GET_MAX_KEYS)
        return -EINVAL;
    if (!scan_object((const uint8_t *)obj, len, keys, n, fold_case, m, &dup, &e))
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        if (m[i].p) {
            value_of(&m[i], &out[i]);
            *found |= 1u << i;
        } else {
            memset(&out[i], 0, sizeof out[i]);
        }
    }
    return 0;
}

int cdp_object_get(const char *obj, size_t len, const char *key, size_t key_len, cdp_value_t *out) {
    cdp_slice_t k = {key ? key : "", key_len};
    unsigned found;
    int rc = object_get(obj, len, &k, 1, false, out, &found);
    return rc < 0 ? rc : found ? 0 : -ENOENT;
}

int cdp_object_get_ci(const char *obj, size_t len, const char *key, size_t key_len, cdp_value_t *out) {
    cdp_slice_t k = {key ? key : "", key_len};
    unsigned found;
    int rc = object_get(obj, len, &k, 1, true, out, &found);
    return rc < 0 ? rc : found ? 0 : -ENOENT;
}

int cdp_object_get_many(const char *obj, size_t len, const cdp_slice_t *keys, int n, cdp_value_t *out,
                        unsigned *found) {
    return object_get(obj, len, keys, n, false, out, found);
}

/* The end of the (valid) value starting at p: strings skip their escapes, containers count
 * their brackets outside strings. Only for input the scanner has validated already. */
static const uint8_t *skip_valid_value(const uint8_t *p, const uint8_t *end) {
    int depth = 0;
    do {
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\')
                    p++;
            p++;
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else if (depth == 0) {
            while (p < end && *p != ',' && *p != ']' && *p != '}' && !is_ws(*p))
                p++;
        } else {
            p++;
        }
    } while (depth > 0 && p < end);
    return p;
}

int cdp_array_get(const char *arr, size_t len, size_t index, cdp_value_t *out) {
    memset(out, 0, sizeof *out);
    if (!arr)
        return -EINVAL;
    const uint8_t *p = skip_ws((const uint8_t *)arr, (const uint8_t *)arr + len);
    const uint8_t *end = (const uint8_t *)arr + len;
    if (p == end || *p != '[')
        return -EINVAL;
    p = skip_ws(p + 1, end);
    for (size_t i = 0; p < end && *p != ']'; i++) {
        const uint8_t *v = p;
        p = skip_valid_value(p, end);
        if (p > end)
            return -EINVAL;
        if (i == index) {
            member_t m = {v, (size_t)(p - v), false};
            if (*v == '"')
                m.escaped = memchr(v + 1, '\\', m.len - 2) != NULL;
            value_of(&m, out);
            return 0;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    return -ENOENT;
}

int cdp_string_copy(const cdp_value_t *v, char *out, size_t cap) {
    if (v->type != CDP_T_STRING || cap == 0)
        return -EINVAL;
    size_t n;
    int rc = cdp_string_decode(v->str, out, cap - 1, &n);
    if (rc < 0)
        return rc;
    out[n] = '\0';
    return memchr(out, '\0', n) ? -EINVAL : 0; /* a \u0000 would cut a C string short */
}

char *cdp_string_dup(const cdp_value_t *v) {
    if (v->type != CDP_T_STRING)
        return NULL;
    char *out = malloc(v->str.len + 1);
    if (out && cdp_string_copy(v, out, v->str.len + 1) < 0) {
        free(out);
        out = NULL;
    }
    return out;
}
