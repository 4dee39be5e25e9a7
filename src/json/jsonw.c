#include "json/jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void jsonw_init(jsonw_t *w, buf_t *out) {
    memset(w, 0, sizeof *w);
    w->out = out;
}

static void put(jsonw_t *w, const char *p, size_t n) {
    if (!w->failed && buf_append(w->out, p, n) < 0) w->failed = 1;
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

static void put_escaped(jsonw_t *w, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    size_t run = 0; /* start of the current run of bytes that need no escaping */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(w, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
            len = 6;
        }
        put(w, esc, len);
    }
    put(w, s + run, n - run);
    put(w, "\"", 1);
}

void jsonw_string_n(jsonw_t *w, const char *s, size_t n) {
    before_value(w);
    put_escaped(w, s, n);
}

void jsonw_string(jsonw_t *w, const char *s) {
    if (!s) {
        jsonw_null(w);
        return;
    }
    jsonw_string_n(w, s, strlen(s));
}

void jsonw_int(jsonw_t *w, int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    before_value(w);
    put(w, tmp, (size_t)n);
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
    char tmp[32];
    const char *sign = ms < 0 ? "-" : "";
    uint64_t abs_ms = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    uint64_t whole = abs_ms / 1000, frac = abs_ms % 1000;
    int n;
    if (frac == 0) n = snprintf(tmp, sizeof tmp, "%s%" PRIu64, sign, whole);
    else if (frac % 100 == 0) n = snprintf(tmp, sizeof tmp, "%s%" PRIu64 ".%" PRIu64, sign, whole, frac / 100);
    else if (frac % 10 == 0) n = snprintf(tmp, sizeof tmp, "%s%" PRIu64 ".%02" PRIu64, sign, whole, frac / 10);
    else n = snprintf(tmp, sizeof tmp, "%s%" PRIu64 ".%03" PRIu64, sign, whole, frac);
    before_value(w);
    put(w, tmp, (size_t)n);
}

bool jsonw_failed(const jsonw_t *w) { return w->failed != 0; }
