#include "json/jsonw.h"

#include <stdint.h>
#include <string.h>

void jsonw_init(jsonw_t *w, buf_t *out) {
    memset(w, 0, sizeof *w);
    w->out = out;
}

/* The hot path of every write: room is usually there already, so copy without a call. */
static inline void put(jsonw_t *w, const char *p, size_t n) {
    buf_t *b = w->out;
    if (b->len + n < b->cap) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    if (!w->failed && buf_append(b, p, n) < 0) w->failed = 1;
}


/* Called before every value: writes the separating comma unless a key just preceded it. */
static void before_value(jsonw_t *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth]) put(w, ",", 1);
    w->need_comma[w->depth] = true;
}

static void open_container(jsonw_t *w, char c) {
    before_value(w);
    put(w, &c, 1);
    if (w->depth >= JSONW_MAX_DEPTH) {
        w->failed = 1;
        return;
    }
    w->depth++;
    w->need_comma[w->depth] = false;
}

static void close_container(jsonw_t *w, char c) {
    put(w, &c, 1);
    if (w->depth > 0) w->depth--;
}

void jsonw_object_begin(jsonw_t *w) { open_container(w, '{'); }
void jsonw_object_end(jsonw_t *w) { close_container(w, '}'); }
void jsonw_array_begin(jsonw_t *w) { open_container(w, '['); }
void jsonw_array_end(jsonw_t *w) { close_container(w, ']'); }

void jsonw_key(jsonw_t *w, const char *key) {
    before_value(w);
    put(w, "\"", 1);
    put(w, key, strlen(key));
    put(w, "\":", 2);
    w->after_key = true;
}

/* Bytes that cannot appear raw inside a JSON string: control characters, '"' and '\\'. */
static const unsigned char needs_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};

static void put_escaped(jsonw_t *w, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    /* Reserve for the worst case (every byte as \u00XX) once, then write in place. */
    if (n > (SIZE_MAX - 2) / 6 || buf_reserve(w->out, n * 6 + 2) < 0) {
        w->failed = 1;
        return;
    }
    if (w->failed) return;
    char *o = w->out->data + w->out->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!needs_escape[c]) {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = hex[c >> 4]; *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    *o = '\0';
    w->out->len = (size_t)(o - w->out->data);
}

/* True when no byte of s needs escaping; eight bytes at a time (URLs are long and clean). */
static bool is_clean(const char *s, size_t n) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t ctl = (x - ones * 0x20) & ~x & highs;          /* a byte < 0x20 */
        uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\'); /* zero where '"' or '\\' */
        if (ctl | ((q - ones) & ~q & highs) | ((bs - ones) & ~bs & highs)) return false;
    }
    for (; i < n; i++)
        if (needs_escape[(unsigned char)s[i]]) return false;
    return true;
}

void jsonw_string_n(jsonw_t *w, const char *s, size_t n) {
    before_value(w);
    if (!is_clean(s, n)) {
        put_escaped(w, s, n);
        return;
    }
    if (n > SIZE_MAX - 3 || buf_reserve(w->out, n + 2) < 0) {
        w->failed = 1;
        return;
    }
    char *o = w->out->data + w->out->len;
    o[0] = '"';
    memcpy(o + 1, s, n);
    o[n + 1] = '"';
    o[n + 2] = '\0';
    w->out->len += n + 2;
}

void jsonw_string(jsonw_t *w, const char *s) {
    if (!s) {
        jsonw_null(w);
        return;
    }
    jsonw_string_n(w, s, strlen(s));
}

/* Decimal digits of v into the end of tmp[24]; returns the start. printf costs more than
 * the rest of a session's serialisation. */
static char *format_u64(uint64_t v, char tmp[24]) {
    char *p = tmp + 24;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void jsonw_int(jsonw_t *w, int64_t v) {
    char tmp[25];
    char *p = format_u64(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, tmp + 1);
    if (v < 0) *--p = '-';
    before_value(w);
    put(w, p, (size_t)(tmp + 25 - p));
}

void jsonw_bool(jsonw_t *w, bool v) {
    before_value(w);
    if (v) put(w, "true", 4);
    else put(w, "false", 5);
}

void jsonw_null(jsonw_t *w) {
    before_value(w);
    put(w, "null", 4);
}

void jsonw_seconds_ms(jsonw_t *w, int64_t ms) {
    char tmp[25];
    uint64_t abs_ms = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    unsigned frac = (unsigned)(abs_ms % 1000);
    char *p = format_u64(abs_ms / 1000, tmp + 1);
    if (ms < 0) *--p = '-';
    before_value(w);
    put(w, p, (size_t)(tmp + 25 - p));
    if (frac == 0) return;
    char f[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10)};
    size_t n = frac % 100 == 0 ? 2 : frac % 10 == 0 ? 3 : 4; /* trailing zeros dropped */
    put(w, f, n);
}

bool jsonw_failed(const jsonw_t *w) { return w->failed != 0; }
