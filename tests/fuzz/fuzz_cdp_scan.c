/* libFuzzer target: the CDP message scanner (src/cdp/cdp_scan.c).
 *
 * Three oracles:
 *  1. A reference: a deliberately plain recursive-descent validator written here from
 *     RFC 8259 (byte at a time, UTF-8 checked by decoding code points rather than by byte
 *     ranges). It must agree with the scanner in BOTH directions — accept/reject and every
 *     reported top-level member (first occurrence, duplicates, value spans).
 *  2. cJSON, in the one direction that is sound: cJSON is more lenient than RFC 8259 (it
 *     takes any byte <= 0x20 as whitespace, leading zeros, "1.", "+1", raw control
 *     characters and invalid UTF-8 in strings), so "cJSON accepts ⇒ scanner accepts" would
 *     be false. The reverse holds: whatever the scanner accepts, cJSON must parse to an
 *     object, and the two must agree on id/method/sessionId. Two known cJSON limits are
 *     exempted: a number token longer than 63 bytes (cJSON parses numbers from a 64-byte
 *     buffer and fails on the rest), and "\u0000" (cJSON's NUL-terminated strings cut names
 *     and values there, so it may see "id" where Chromium sees "id\0x").
 *  3. Self-consistency of the results: slices inside the input, string slices bounded by
 *     quotes, id_is_int as cdp_number_int says, cdp_object_get accepting every reported
 *     object member, cdp_string_decode working on reported strings. */
#include <cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                               \
    do {                                                                                       \
        if (!(c))                                                                              \
            abort();                                                                           \
    } while (0)

/* ------------------------------------------------------------------------------------ */
/* reference validator                                                                  */

static const char *const names[6] = {"id", "method", "sessionId", "params", "result", "error"};

typedef struct {
    const uint8_t *p, *end;
    int depth;
    size_t longest_number;
    bool saw_nul_escape;
    const uint8_t *mem_p[6];
    size_t mem_len[6];
    unsigned dup;
} ref_t;

static bool ref_peek(ref_t *r, uint8_t *c) {
    if (r->p >= r->end)
        return false;
    *c = *r->p;
    return true;
}

static void ref_ws(ref_t *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hexdig(uint8_t c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool ref_hex4(ref_t *r, uint32_t *v) {
    if (r->end - r->p < 4)
        return false;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hexdig(r->p[i]);
        if (d < 0)
            return false;
        *v = *v * 16 + (uint32_t)d;
    }
    r->p += 4;
    return true;
}

/* Appends code point cp as UTF-8 to out (if out). */
static void put_cp(uint8_t *out, size_t *n, uint32_t cp) {
    uint8_t b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xc0 | cp >> 6);
        b[1] = (uint8_t)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xe0 | cp >> 12);
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (uint8_t)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        b[0] = (uint8_t)(0xf0 | cp >> 18);
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (uint8_t)(0x80 | (cp & 0x3f));
        k = 4;
    }
    if (out)
        memcpy(out + *n, b, k);
    *n += k;
}

/* Parses a string at r->p (the opening quote), decoding it into out (may be NULL). */
static bool ref_string(ref_t *r, uint8_t *out, size_t *out_len) {
    size_t n = 0;
    r->p++;
    for (;;) {
        if (r->p >= r->end)
            return false;
        uint8_t c = *r->p++;
        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (r->p >= r->end)
                return false;
            uint8_t e = *r->p++;
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *f = e ? strchr(from, e) : NULL;
            if (f) {
                put_cp(out, &n, (uint8_t)to[f - from]);
                continue;
            }
            if (e != 'u')
                return false;
            uint32_t u, l;
            if (!ref_hex4(r, &u))
                return false;
            if (u == 0)
                r->saw_nul_escape = true;
            if (u >= 0xdc00 && u <= 0xdfff)
                return false;
            if (u >= 0xd800 && u <= 0xdbff) {
                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
                    return false;
                r->p += 2;
                if (!ref_hex4(r, &l) || l < 0xdc00 || l > 0xdfff)
                    return false;
                u = 0x10000 + ((u - 0xd800) << 10) + (l - 0xdc00);
            }
            put_cp(out, &n, u);
            continue;
        }
        if (c < 0x80) {
            put_cp(out, &n, c);
            continue;
        }
        /* Decode, then judge the code point. */
        int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (len == 0 || c >= 0xf8)
            return false;
        uint32_t cp = c & (0x7f >> len);
        for (int i = 1; i < len; i++) {
            if (r->p >= r->end || (*r->p & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (*r->p++ & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        put_cp(out, &n, cp);
    }
    if (out_len)
        *out_len = n;
    return true;
}

static bool ref_digits(ref_t *r) {
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
        return false;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return true;
}

static bool ref_number(ref_t *r) {
    const uint8_t *s = r->p;
    if (*r->p == '-')
        r->p++;
    if (r->p < r->end && *r->p == '0')
        r->p++;
    else if (!ref_digits(r))
        return false;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!ref_digits(r))
            return false;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!ref_digits(r))
            return false;
    }
    if ((size_t)(r->p - s) > r->longest_number)
        r->longest_number = (size_t)(r->p - s);
    return true;
}

static bool ref_value(ref_t *r);

static bool ref_object(ref_t *r, bool top) {
    if (r->depth >= CDP_SCAN_MAX_DEPTH)
        return false;
    r->depth++;
    r->p++;
    ref_ws(r);
    uint8_t c;
    if (!ref_peek(r, &c))
        return false;
    if (c == '}') {
        r->p++;
        r->depth--;
        return true;
    }
    for (;;) {
        ref_ws(r);
        if (!ref_peek(r, &c) || c != '"')
            return false;
        /* A decoded name is never longer than its encoded form. */
        const uint8_t *kstart = r->p;
        size_t klen = 0;
        if (!ref_string(r, NULL, NULL))
            return false;
        uint8_t *key = malloc((size_t)(r->p - kstart) + 1);
        CHECK(key);
        r->p = kstart;
        CHECK(ref_string(r, key, &klen));
        int which = -1;
        if (top)
            for (int i = 0; i < 6; i++)
                if (klen == strlen(names[i]) && memcmp(key, names[i], klen) == 0)
                    which = i;
        free(key);
        ref_ws(r);
        if (!ref_peek(r, &c) || c != ':')
            return false;
        r->p++;
        ref_ws(r);
        const uint8_t *vs = r->p;
        if (!ref_value(r))
            return false;
        if (which >= 0) {
            if (r->mem_p[which])
                r->dup |= 1u << which;
            else {
                r->mem_p[which] = vs;
                r->mem_len[which] = (size_t)(r->p - vs);
            }
        }
        ref_ws(r);
        if (!ref_peek(r, &c))
            return false;
        r->p++;
        if (c == '}')
            break;
        if (c != ',')
            return false;
    }
    r->depth--;
    return true;
}

static bool ref_array(ref_t *r) {
    if (r->depth >= CDP_SCAN_MAX_DEPTH)
        return false;
    r->depth++;
    r->p++;
    ref_ws(r);
    uint8_t c;
    if (!ref_peek(r, &c))
        return false;
    if (c == ']') {
        r->p++;
        r->depth--;
        return true;
    }
    for (;;) {
        ref_ws(r);
        if (!ref_value(r))
            return false;
        ref_ws(r);
        if (!ref_peek(r, &c))
            return false;
        r->p++;
        if (c == ']')
            break;
        if (c != ',')
            return false;
    }
    r->depth--;
    return true;
}

static bool ref_lit(ref_t *r, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return false;
    r->p += n;
    return true;
}

static bool ref_value(ref_t *r) {
    uint8_t c;
    if (!ref_peek(r, &c))
        return false;
    switch (c) {
    case '{': return ref_object(r, false);
    case '[': return ref_array(r);
    case '"': return ref_string(r, NULL, NULL);
    case 't': return ref_lit(r, "true");
    case 'f': return ref_lit(r, "false");
    case 'n': return ref_lit(r, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return ref_number(r);
        return false;
    }
}

static bool ref_document(ref_t *r) {
    ref_ws(r);
    uint8_t c;
    if (!ref_peek(r, &c) || c != '{')
        return false;
    if (!ref_object(r, true))
        return false;
    ref_ws(r);
    return r->p == r->end;
}

/* ------------------------------------------------------------------------------------ */

static bool in_input(cdp_slice_t s, const uint8_t *data, size_t size) {
    if (!s.ptr)
        return s.len == 0;
    const uint8_t *p = (const uint8_t *)s.ptr;
    return p >= data && p + s.len <= data + size;
}

/* Checks a reported string member: contents between quotes that decode. */
static void check_string_slice(cdp_slice_t s, bool escaped, const uint8_t *data, size_t size) {
    if (!s.ptr)
        return;
    CHECK(in_input(s, data, size));
    CHECK(s.ptr > (const char *)data && s.ptr[-1] == '"' && s.ptr + s.len < (const char *)data + size &&
          s.ptr[s.len] == '"');
    CHECK(escaped == (memchr(s.ptr, '\\', s.len) != NULL));
    char *buf = malloc(s.len + 1);
    CHECK(buf);
    size_t n;
    CHECK(cdp_string_decode(s, buf, s.len, &n) == 0);
    CHECK(cdp_string_equals(s, buf, n));
    free(buf);
}

static void check_against_cjson(const cdp_msg_t *m, const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    CHECK(copy);
    memcpy(copy, data, size);
    copy[size] = '\0';
    /* require_null_terminated: the NUL must lie within the length given. */
    cJSON *j = cJSON_ParseWithLengthOpts(copy, size + 1, NULL, 1);
    CHECK(j && cJSON_IsObject(j));
    cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    CHECK((id != NULL) == ((m->present & CDP_KEY_ID) != 0));
    if (m->id_is_int)
        CHECK(cJSON_IsNumber(id) && id->valuedouble == (double)m->id);
    const cdp_slice_t *str[2] = {&m->method, &m->session_id};
    const char *key[2] = {"method", "sessionId"};
    const unsigned bit[2] = {CDP_KEY_METHOD, CDP_KEY_SESSION_ID};
    for (int i = 0; i < 2; i++) {
        cJSON *it = cJSON_GetObjectItemCaseSensitive(j, key[i]);
        CHECK((it != NULL) == ((m->present & bit[i]) != 0));
        if (!it)
            continue;
        CHECK(cJSON_IsString(it) == ((m->not_string & bit[i]) == 0));
        if (cJSON_IsString(it)) {
            char *buf = malloc(str[i]->len + 1);
            CHECK(buf);
            size_t n;
            CHECK(cdp_string_decode(*str[i], buf, str[i]->len, &n) == 0);
            CHECK(strlen(it->valuestring) == n && memcmp(it->valuestring, buf, n) == 0);
            free(buf);
        }
    }
    CHECK((cJSON_GetObjectItemCaseSensitive(j, "params") != NULL) == ((m->present & CDP_KEY_PARAMS) != 0));
    CHECK((cJSON_GetObjectItemCaseSensitive(j, "result") != NULL) == ((m->present & CDP_KEY_RESULT) != 0));
    CHECK((cJSON_GetObjectItemCaseSensitive(j, "error") != NULL) == ((m->present & CDP_KEY_ERROR) != 0));
    cJSON_Delete(j);
    free(copy);
}

/* The elements of a valid array, one by one: each lies within it, in order, and is itself a
 * valid value where the lookups can check it (objects); their number is cJSON's when j is given. */
static void check_array(const cdp_slice_t *arr, const cJSON *j) {
    size_t count = 0;
    const char *prev_end = arr->ptr;
    for (;; count++) {
        cdp_value_t v;
        int rc = cdp_array_get(arr->ptr, arr->len, count, &v);
        CHECK(rc == 0 || rc == -ENOENT);
        if (rc != 0)
            break;
        CHECK(v.raw.ptr > prev_end && v.raw.ptr + v.raw.len < arr->ptr + arr->len);
        prev_end = v.raw.ptr + v.raw.len - 1;
        if (v.type == CDP_T_OBJECT) {
            cdp_value_t w;
            int g = cdp_object_get(v.raw.ptr, v.raw.len, "id", 2, &w);
            CHECK(g == 0 || g == -ENOENT);
        }
        if (count > 100000)
            break;
    }
    if (j && cJSON_IsArray(j))
        CHECK((int)count == cJSON_GetArraySize(j));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cdp_msg_t m;
    int rc = cdp_scan((const char *)data, size, &m);
    CHECK(rc == 0 || rc == -EINVAL);

    ref_t r = {data, data + size, 0, 0, false, {0}, {0}, 0};
    bool ref_ok = ref_document(&r);
    CHECK(ref_ok == (rc == 0));
    if (rc != 0) {
        CHECK(m.err != NULL && m.err_offset <= size);
        return 0;
    }

    /* Members: same as the reference. */
    const cdp_slice_t *raw[6] = {&m.id_raw, NULL, NULL, &m.params, &m.result, &m.error};
    for (int i = 0; i < 6; i++) {
        bool present = (m.present >> i) & 1;
        CHECK(present == (r.mem_p[i] != NULL));
        if (!present)
            continue;
        if (raw[i]) {
            CHECK((const uint8_t *)raw[i]->ptr == r.mem_p[i] && raw[i]->len == r.mem_len[i]);
        }
    }
    CHECK(m.duplicate == r.dup);
    const cdp_slice_t *strs[2] = {&m.method, &m.session_id};
    const bool esc[2] = {m.method_escaped, m.session_id_escaped};
    for (int i = 0; i < 2; i++) {
        int k = i + 1;
        unsigned bit = 1u << k;
        if (!r.mem_p[k])
            continue;
        if (r.mem_p[k][0] == '"') {
            CHECK(!(m.not_string & bit));
            CHECK((const uint8_t *)strs[i]->ptr == r.mem_p[k] + 1 && strs[i]->len == r.mem_len[k] - 2);
            check_string_slice(*strs[i], esc[i], data, size);
        } else {
            CHECK(m.not_string & bit);
            CHECK(strs[i]->ptr == NULL);
        }
    }

    /* id: integer flag as cdp_number_int says. */
    if (m.present & CDP_KEY_ID) {
        int64_t v;
        int irc = cdp_number_int(m.id_raw, &v);
        CHECK(m.id_is_int == (irc == 0));
        if (irc == 0)
            CHECK(v == m.id);
    }

    /* Every object-valued member is itself a valid object for the one-level lookup. */
    const cdp_slice_t *objs[4] = {&m.id_raw, &m.params, &m.result, &m.error};
    for (int i = 0; i < 4; i++) {
        if (!objs[i]->ptr || objs[i]->ptr[0] != '{')
            continue;
        cdp_value_t v;
        int g = cdp_object_get(objs[i]->ptr, objs[i]->len, "url", 3, &v);
        CHECK(g == 0 || g == -ENOENT);
        if (g == 0)
            CHECK(v.raw.ptr >= objs[i]->ptr && v.raw.ptr + v.raw.len <= objs[i]->ptr + objs[i]->len);
    }
    /* The whole message through the lookup: the same first "method". */
    cdp_value_t v;
    int g = cdp_object_get((const char *)data, size, "method", 6, &v);
    CHECK(g == ((m.present & CDP_KEY_METHOD) ? 0 : -ENOENT));
    if (g == 0 && v.type == CDP_T_STRING)
        CHECK(v.str.ptr == m.method.ptr && v.str.len == m.method.len);

    /* Several members in one pass: the same slices as the scanner's. */
    static const cdp_slice_t keys[6] = {{"id", 2}, {"method", 6}, {"sessionId", 9},
                                        {"params", 6}, {"result", 6}, {"error", 5}};
    cdp_value_t many[6];
    unsigned found;
    CHECK(cdp_object_get_many((const char *)data, size, keys, 6, many, &found) == 0);
    CHECK(found == m.present);
    for (int i = 0; i < 6; i++)
        if (found & (1u << i))
            CHECK((const uint8_t *)many[i].raw.ptr == r.mem_p[i] && many[i].raw.len == r.mem_len[i]);
    /* Case-insensitive lookup: finds at least what the exact one finds, never a later member. */
    cdp_value_t ci;
    int gci = cdp_object_get_ci((const char *)data, size, "METHOD", 6, &ci);
    CHECK(gci == 0 || gci == -ENOENT);
    if (g == 0)
        CHECK(gci == 0 && ci.raw.ptr <= v.raw.ptr);
    /* Arrays among the members. */
    bool comparable = r.longest_number <= 63 && !r.saw_nul_escape;
    cJSON *j = NULL;
    if (comparable) {
        char *copy = malloc(size + 1);
        CHECK(copy);
        memcpy(copy, data, size);
        copy[size] = '\0';
        j = cJSON_ParseWithLengthOpts(copy, size + 1, NULL, 1);
        free(copy);
    }
    static const char *const names[6] = {"id", "method", "sessionId", "params", "result", "error"};
    for (int i = 0; i < 6; i++)
        if ((found & (1u << i)) && many[i].type == CDP_T_ARRAY)
            check_array(&many[i].raw, j ? cJSON_GetObjectItemCaseSensitive(j, names[i]) : NULL);
    cJSON_Delete(j);

    if (comparable)
        check_against_cjson(&m, data, size);
    return 0;
}
