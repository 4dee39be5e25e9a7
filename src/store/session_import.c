/* The JSONL import format (docs/import.md).
 *
 * cJSON is lenient where this format must not be: it accepts raw control characters in
 * strings, numbers like "01" and "1.", and it silently cuts a string at an escaped NUL
 * ("a\u0000b" becomes "a"). So a line first goes through a strict RFC 8259 check
 * (json_check below), and only then through cJSON, whose tree is read field by field.
 * UTF-8 is checked on each decoded string we keep, so the message can name the field. */
#include "store/session_import.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/uuid.h"

#define API_NAME_MAX 255
#define JSON_DEPTH_MAX 32
/* Integers above 2^53 cannot be held exactly by a JSON number as most tools read it. */
#define JSON_EXACT_INT_MAX 9007199254740992.0

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t err_cap, const char *fmt, ...) {
    if (err && err_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- strict JSON syntax check ---- */

typedef struct {
    const unsigned char *start, *p, *end;
    const char *why; /* set on the first error; p then points at it */
} json_scan_t;

static bool scan_error(json_scan_t *s, const char *why) {
    if (!s->why) s->why = why;
    return false;
}

static void scan_space(json_scan_t *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u"; s->p points at the 'u'. */
static bool scan_u_escape(json_scan_t *s, unsigned *code) {
    if (s->end - s->p < 5) return scan_error(s, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 1; i <= 4; i++) {
        int h = hex_value(s->p[i]);
        if (h < 0) return scan_error(s, "bad \\u escape");
        v = v << 4 | (unsigned)h;
    }
    s->p += 5;
    *code = v;
    return true;
}

static bool scan_string(json_scan_t *s) {
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20) return scan_error(s, "control character in a string");
        if (c != '\\') {
            s->p++;
            continue;
        }
        if (s->end - s->p < 2) return scan_error(s, "truncated escape");
        unsigned char e = s->p[1];
        if (e && strchr("\"\\/bfnrt", e)) {
            s->p += 2;
            continue;
        }
        if (e != 'u') return scan_error(s, "bad escape");
        s->p++;
        unsigned code;
        if (!scan_u_escape(s, &code)) return false;
        if (code == 0) return scan_error(s, "\\u0000 is not allowed in a string");
        if (code >= 0xDC00 && code <= 0xDFFF) return scan_error(s, "lone low surrogate");
        if (code >= 0xD800 && code <= 0xDBFF) {
            if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                return scan_error(s, "high surrogate without a low one");
            s->p++;
            if (!scan_u_escape(s, &code)) return false;
            if (code < 0xDC00 || code > 0xDFFF) return scan_error(s, "high surrogate without a low one");
        }
    }
    return scan_error(s, "unterminated string");
}

static bool scan_digits(json_scan_t *s) {
    const unsigned char *begin = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > begin;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool scan_number(json_scan_t *s) {
    if (*s->p == '-') s->p++;
    if (s->p < s->end && *s->p == '0') {
        s->p++;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9') return scan_error(s, "leading zero in a number");
    } else if (!scan_digits(s)) {
        return scan_error(s, "bad number");
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!scan_digits(s)) return scan_error(s, "bad number");
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!scan_digits(s)) return scan_error(s, "bad number");
    }
    return true;
}

static bool scan_literal(json_scan_t *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return scan_error(s, "unexpected character");
    s->p += n;
    return true;
}

static bool scan_value(json_scan_t *s, int depth);

/* Objects and arrays: the members are separated by commas, nothing trails. */
static bool scan_container(json_scan_t *s, int depth) {
    if (depth >= JSON_DEPTH_MAX) return scan_error(s, "nested too deeply");
    bool object = *s->p == '{';
    unsigned char close = object ? '}' : ']';
    s->p++;
    scan_space(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        if (object) {
            if (s->p >= s->end || *s->p != '"') return scan_error(s, "expected a key");
            if (!scan_string(s)) return false;
            scan_space(s);
            if (s->p >= s->end || *s->p != ':') return scan_error(s, "expected ':'");
            s->p++;
        }
        if (!scan_value(s, depth + 1)) return false;
        scan_space(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            scan_space(s);
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return true;
        }
        return scan_error(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool scan_value(json_scan_t *s, int depth) {
    scan_space(s);
    if (s->p >= s->end) return scan_error(s, "unexpected end");
    switch (*s->p) {
    case '{':
    case '[': return scan_container(s, depth);
    case '"': return scan_string(s);
    case 't': return scan_literal(s, "true");
    case 'f': return scan_literal(s, "false");
    case 'n': return scan_literal(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) return scan_number(s);
        return scan_error(s, "unexpected character");
    }
}

/* 0 when text is exactly one JSON value (with optional surrounding white space). */
static int json_check(const char *text, size_t len, char *err, size_t err_cap) {
    json_scan_t s = {(const unsigned char *)text, (const unsigned char *)text, (const unsigned char *)text + len, NULL};
    if (scan_value(&s, 0)) {
        scan_space(&s);
        if (s.p == s.end) return 0;
        scan_error(&s, "text after the value");
    }
    return fail(err, err_cap, "invalid JSON at column %zu: %s", (size_t)(s.p - s.start) + 1, s.why);
}

/* ---- field checks ---- */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) extra = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) extra = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) extra = 3, cp = c & 0x07, min = 0x10000;
        else return false;
        if (n - i <= extra) return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += extra + 1;
    }
    return true;
}

/* A key as it may be shown in a message: printable ASCII, at most 40 characters. */
static void printable_key(const char *key, char out[48]) {
    size_t n = 0;
    for (; key[n] && n < 40; n++) {
        unsigned char c = (unsigned char)key[n];
        out[n] = c >= 0x20 && c < 0x7F && c != '"' && c != '\\' ? (char)c : '?';
    }
    strcpy(out + n, key[n] ? "..." : "");
}

enum {
    F_SESSION_ID,
    F_API_NAME,
    F_STATUS,
    F_TARGET_URL,
    F_END_URL,
    F_NAVIGATIONS,
    F_TIMESTAMP,
    F_DURATION,
    F_CAPTCHA,
    F_BANDWIDTH,
    F_ERROR,
    FIELD_COUNT
};
static const char *const field_names[FIELD_COUNT] = {
    "session_id", "api_name", "status",  "target_url", "end_url", "navigations",
    "timestamp",  "duration", "captcha", "bandwidth",  "error",
};

/* Finds each of `names` among the members of `object` exactly once; nothing else allowed.
 * `what` prefixes the message ("" at the top level, "error: " inside the error object). */
static int pick_members(const cJSON *object, const char *const *names, int count, const cJSON **found,
                        const char *what, char *err, size_t err_cap) {
    for (int i = 0; i < count; i++) found[i] = NULL;
    for (const cJSON *item = object->child; item; item = item->next) {
        int index = -1;
        size_t key_len = strlen(item->string);
        for (int i = 0; i < count && index < 0; i++)
            if (strlen(names[i]) == key_len && memcmp(item->string, names[i], key_len) == 0) index = i;
        char shown[48];
        printable_key(item->string, shown);
        if (index < 0) return fail(err, err_cap, "%sunknown key \"%s\"", what, shown);
        if (found[index]) return fail(err, err_cap, "%sduplicate key \"%s\"", what, shown);
        found[index] = item;
    }
    for (int i = 0; i < count; i++)
        if (!found[i]) return fail(err, err_cap, "%smissing key \"%s\"", what, names[i]);
    return 0;
}

/* A string field: copied to *out. NULL allowed only when `nullable` (then *out = NULL). */
static int take_string(const cJSON *v, const char *name, bool nullable, bool non_empty, size_t max_len, char **out,
                       char *err, size_t err_cap) {
    *out = NULL;
    if (nullable && cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v))
        return fail(err, err_cap, "%s: must be a %sstring%s", name, non_empty ? "non-empty " : "",
                    nullable ? " or null" : "");
    /* json_check has refused \u0000, so strlen is the true length. */
    size_t n = strlen(v->valuestring);
    if (non_empty && n == 0) return fail(err, err_cap, "%s: must not be empty", name);
    if (max_len && n > max_len) return fail(err, err_cap, "%s: longer than %zu bytes", name, max_len);
    if (!utf8_valid((const unsigned char *)v->valuestring, n)) return fail(err, err_cap, "%s: not valid UTF-8", name);
    if (!(*out = strdup(v->valuestring))) return fail(err, err_cap, "%s: out of memory", name);
    return 0;
}

static int take_count(const cJSON *v, const char *name, int64_t *out, char *err, size_t err_cap) {
    if (!cJSON_IsNumber(v)) return fail(err, err_cap, "%s: must be a non-negative integer", name);
    double d = v->valuedouble;
    if (!(d >= 0)) return fail(err, err_cap, "%s: must be a non-negative integer", name);
    if (d > JSON_EXACT_INT_MAX) return fail(err, err_cap, "%s: larger than 2^53", name);
    if (d != (double)(int64_t)d) return fail(err, err_cap, "%s: must be an integer", name);
    *out = (int64_t)d;
    return 0;
}

static int take_enum(const cJSON *v, const char *name, int (*from_name)(const char *, size_t), const char *allowed,
                     int *out, char *err, size_t err_cap) {
    int value = cJSON_IsString(v) ? from_name(v->valuestring, strlen(v->valuestring)) : -1;
    if (value < 0) return fail(err, err_cap, "%s: must be %s", name, allowed);
    *out = value;
    return 0;
}

static int take_session_id(const cJSON *v, char out[UUID_TEXT_LEN + 1], char *err, size_t err_cap) {
    uint8_t bytes[16];
    if (!cJSON_IsString(v) || strlen(v->valuestring) != UUID_TEXT_LEN ||
        uuid_parse(v->valuestring, UUID_TEXT_LEN, bytes) != 0)
        return fail(err, err_cap, "session_id: must be a UUID (8-4-4-4-12 hex digits)");
    memcpy(out, v->valuestring, UUID_TEXT_LEN + 1);
    return 0;
}

static int take_timestamp(const cJSON *v, int64_t *out, char *err, size_t err_cap) {
    if (!cJSON_IsString(v)) return fail(err, err_cap, "timestamp: must be a string");
    size_t n = strlen(v->valuestring);
    /* A bare date ("2025-12-01") is a valid API filter but not a session's start time. */
    if (n <= 10 || time_parse_api_date(v->valuestring, n, false, out) != 0)
        return fail(err, err_cap, "timestamp: must be an RFC 3339 date-time");
    return 0;
}

static int take_duration(const cJSON *v, session_status_t status, int64_t *out, char *err, size_t err_cap) {
    if (cJSON_IsNull(v)) {
        if (status != SESSION_RUNNING) return fail(err, err_cap, "duration: must be a number unless status is running");
        *out = SESSION_DURATION_NULL;
        return 0;
    }
    if (!cJSON_IsNumber(v)) return fail(err, err_cap, "duration: must be a number of seconds or null");
    if (status == SESSION_RUNNING) return fail(err, err_cap, "duration: must be null while status is running");
    double ms = v->valuedouble * 1000.0;
    if (!(ms >= 0)) return fail(err, err_cap, "duration: must not be negative");
    if (ms > JSON_EXACT_INT_MAX) return fail(err, err_cap, "duration: too large");
    *out = (int64_t)(ms + 0.5); /* to the nearest millisecond: 209.444 is 209443.99999... */
    return 0;
}

static int take_error(const cJSON *v, session_status_t status, session_record_t *r, char *err, size_t err_cap) {
    if (cJSON_IsNull(v)) {
        if (status == SESSION_FAILED) return fail(err, err_cap, "error: must be an object when status is failed");
        return 0;
    }
    if (!cJSON_IsObject(v)) return fail(err, err_cap, "error: must be an object or null");
    if (status != SESSION_FAILED) return fail(err, err_cap, "error: must be null unless status is failed");
    static const char *const names[] = {"code", "message"};
    const cJSON *members[2];
    if (pick_members(v, names, 2, members, "error: ", err, err_cap) != 0) return -1;
    if (take_string(members[0], "error.code", false, true, 0, &r->error_code, err, err_cap) != 0) return -1;
    return take_string(members[1], "error.message", false, false, 0, &r->error_message, err, err_cap);
}

static int parse_fields(const cJSON *root, session_record_t *r, char *err, size_t err_cap) {
    if (!cJSON_IsObject(root)) return fail(err, err_cap, "not a JSON object");
    const cJSON *f[FIELD_COUNT];
    if (pick_members(root, field_names, FIELD_COUNT, f, "", err, err_cap) != 0) return -1;
    int status = 0, captcha = 0;
    if (take_session_id(f[F_SESSION_ID], r->session_id, err, err_cap) != 0 ||
        take_string(f[F_API_NAME], "api_name", false, true, API_NAME_MAX, &r->api_name, err, err_cap) != 0 ||
        take_enum(f[F_STATUS], "status", session_status_from_name, "running, finished or failed", &status, err,
                  err_cap) != 0)
        return -1;
    r->status = (session_status_t)status;
    if (take_string(f[F_TARGET_URL], "target_url", true, true, 0, &r->target_url, err, err_cap) != 0 ||
        take_string(f[F_END_URL], "end_url", true, true, 0, &r->end_url, err, err_cap) != 0 ||
        take_count(f[F_NAVIGATIONS], "navigations", &r->navigations, err, err_cap) != 0 ||
        take_timestamp(f[F_TIMESTAMP], &r->timestamp_ms, err, err_cap) != 0 ||
        take_duration(f[F_DURATION], r->status, &r->duration_ms, err, err_cap) != 0 ||
        take_enum(f[F_CAPTCHA], "captcha", captcha_from_name, "none, detected, solved or failed", &captcha, err,
                  err_cap) != 0)
        return -1;
    r->captcha = (captcha_t)captcha;
    if (take_count(f[F_BANDWIDTH], "bandwidth", &r->bandwidth, err, err_cap) != 0 ||
        take_error(f[F_ERROR], r->status, r, err, err_cap) != 0)
        return -1;
    return 0;
}

int session_import_parse_line(const char *line, size_t len, session_record_t *out, char *err, size_t err_cap) {
    memset(out, 0, sizeof *out);
    if (len > 0 && line[len - 1] == '\r') len--;
    if (json_check(line, len, err, err_cap) != 0) return -1;
    cJSON *root = cJSON_ParseWithLength(line, len);
    if (!root) return fail(err, err_cap, "invalid JSON (or out of memory)");
    int rc = parse_fields(root, out, err, err_cap);
    cJSON_Delete(root);
    if (rc != 0) {
        session_record_free(out);
        memset(out, 0, sizeof *out);
    }
    return rc;
}
