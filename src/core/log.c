/* The daemon's log (see log.h). */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192 /* longer lines are cut (and end with "...") */
#define REPEAT_SLOTS 128
#define REPEAT_KEY_MAX 200
#define REPEAT_BODY_MAX 1024

typedef struct {
    char key[REPEAT_KEY_MAX];  /* "" = free */
    log_level_t level;
    char module[24], event[48];
    char body[REPEAT_BODY_MAX]; /* the fields of the last line folded in */
    int64_t window_start, last_seen;
    uint64_t folded;            /* lines not written since window_start */
} repeat_slot_t;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_format_t log_format = LOG_TEXT;
static log_level_t log_level = LOG_INFO;
static char *log_path;
static repeat_slot_t repeats[REPEAT_SLOTS];

/* strlcpy: cut to fit, always terminated. */
static void copy_cut(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int64_t real_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int64_t (*clock_ms)(void) = real_now_ms;

void log_set_clock(int64_t (*now_ms)(void)) { clock_ms = now_ms ? now_ms : real_now_ms; }

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *log_level_name(log_level_t level) { return level <= LOG_ERROR ? level_names[level] : "info"; }

int log_parse_level(const char *s, log_level_t *out) {
    for (int i = 0; i <= LOG_ERROR; i++)
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    return -1;
}

int log_parse_format(const char *s, log_format_t *out) {
    if (s && strcmp(s, "text") == 0) *out = LOG_TEXT;
    else if (s && strcmp(s, "json") == 0) *out = LOG_JSON;
    else return -1;
    return 0;
}

static int open_log_file(const char *path, char *err, size_t cap) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, cap, "cannot open log file %s: %s", path, strerror(errno));
        return -1;
    }
    if (dup2(fd, STDERR_FILENO) < 0) { /* dup2 clears FD_CLOEXEC on fd 2: children inherit it */
        snprintf(err, cap, "cannot use log file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int log_setup(log_format_t format, log_level_t level, const char *path, char *err, size_t err_cap) {
    log_format = format;
    log_level = level;
    setenv("BROWSERD_LOG_FORMAT", format == LOG_JSON ? "json" : "text", 1);
    setenv("BROWSERD_LOG_LEVEL", log_level_name(level), 1);
    free(log_path);
    log_path = NULL;
    if (!path) return 0;
    if (open_log_file(path, err, err_cap) < 0) return -1;
    log_path = strdup(path);
    if (!log_path) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    return 0;
}

void log_setup_from_env(void) {
    log_format_t f;
    log_level_t l;
    if (log_parse_format(getenv("BROWSERD_LOG_FORMAT"), &f) == 0) log_format = f;
    if (log_parse_level(getenv("BROWSERD_LOG_LEVEL"), &l) == 0) log_level = l;
}

int log_reopen(char *err, size_t err_cap) {
    pthread_mutex_lock(&log_lock);
    int rc = log_path ? open_log_file(log_path, err, err_cap) : 0;
    pthread_mutex_unlock(&log_lock);
    return rc;
}

bool log_enabled(log_level_t level) { return level >= log_level; }

/* ---- rendering ---------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool cut;
} line_t;

static void put(line_t *l, const char *s, size_t n) {
    if (l->len + n > l->cap) {
        n = l->cap - l->len;
        l->cut = true;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}
static void puts_(line_t *l, const char *s) { put(l, s, strlen(s)); }

static void put_json_string(line_t *l, const char *s, size_t n) {
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

static bool is_json_number(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i == n || s[i] < '0' || s[i] > '9') return false;
    if (s[i] == '0' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') return false; /* 007: a string */
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i < n && s[i] == '.') {
        i++;
        if (i == n || s[i] < '0' || s[i] > '9') return false;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    return i == n;
}

static bool closes_value(const char *after) {
    if (*after == '\0') return true;
    if (*after != ' ') return false;
    const char *k = after + 1;
    while (*k == ' ') k++;
    const char *start = k;
    while ((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '_') k++;
    return k > start && *k == '=';
}

/* The logfmt pairs of `body` as JSON members (each preceded by a comma). A word without '='
 * becomes {"msg": word...}. */
static void put_json_fields(line_t *l, const char *body) {
    const char *s = body;
    while (*s) {
        while (*s == ' ') s++;
        if (!*s) break;
        const char *k = s;
        while (*s && *s != '=' && *s != ' ') s++;
        size_t klen = (size_t)(s - k);
        const char *v;
        size_t vlen;
        bool quoted = false;
        if (*s != '=') { /* a bare word */
            put(l, ",", 1);
            put_json_string(l, "msg", 3);
            put(l, ":", 1);
            put_json_string(l, k, klen);
            continue;
        }
        s++;
        if (*s == '"') {
            quoted = true;
            v = ++s;
            /* the closing quote is one followed by the end, or by a space and the next key= */
            while (*s && !(*s == '"' && closes_value(s + 1))) s++;
            vlen = (size_t)(s - v);
            if (*s == '"') s++;
        } else {
            v = s;
            while (*s && *s != ' ') s++;
            vlen = (size_t)(s - v);
        }
        put(l, ",", 1);
        put_json_string(l, k, klen);
        put(l, ":", 1);
        if (!quoted && is_json_number(v, vlen)) put(l, v, vlen);
        else put_json_string(l, v, vlen);
    }
}

static void put_timestamp(line_t *l) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char b[64];
    snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
    puts_(l, b);
}

/* Writes one line; the caller holds log_lock. */
static void write_line(log_level_t level, const char *module, const char *event, const char *body) {
    char buf[LINE_MAX_BYTES + 16];
    line_t l = {.p = buf, .cap = LINE_MAX_BYTES};
    if (log_format == LOG_JSON) {
        puts_(&l, "{\"ts\":\"");
        put_timestamp(&l);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, log_level_name(level));
        puts_(&l, "\",\"module\":");
        put_json_string(&l, module, strlen(module));
        puts_(&l, ",\"event\":");
        put_json_string(&l, event, strlen(event));
        put_json_fields(&l, body);
        if (l.cut) { /* a cut JSON line must still parse: end it with a marker */
            l.len = LINE_MAX_BYTES - 32;
            while (l.len > 0 && (buf[l.len - 1] & 0xC0) == 0x80) l.len--;
            /* drop back to before a dangling escape */
            size_t bs = 0;
            while (bs < l.len && buf[l.len - 1 - bs] == '\\') bs++;
            l.len -= bs % 2;
            l.cut = false;
            l.cap = LINE_MAX_BYTES + 8;
            puts_(&l, "\",\"truncated\":true}");
        } else {
            puts_(&l, "}");
        }
    } else {
        puts_(&l, "ts=");
        put_timestamp(&l);
        puts_(&l, " level=");
        puts_(&l, log_level_name(level));
        puts_(&l, " module=");
        puts_(&l, module);
        puts_(&l, " event=");
        puts_(&l, event);
        if (*body) {
            put(&l, " ", 1);
            puts_(&l, body);
        }
        if (l.cut) {
            l.len = LINE_MAX_BYTES - 3;
            l.cap = LINE_MAX_BYTES + 8;
            puts_(&l, "...");
        }
    }
    if (l.len > sizeof buf - 1) l.len = sizeof buf - 1;
    buf[l.len++] = '\n';
    for (size_t off = 0; off < l.len;) {
        ssize_t w = write(STDERR_FILENO, buf + off, l.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* nowhere to log to: nothing better to do */
        off += (size_t)w;
    }
}

/* The fields, one line: control characters become spaces. */
static void format_body(char *out, size_t cap, const char *fmt, va_list ap) {
    int n = vsnprintf(out, cap, fmt, ap);
    if (n < 0) out[0] = '\0';
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
}

/* ---- repeats ------------------------------------------------------------------------------ */

static void write_folded(repeat_slot_t *r, int64_t now) {
    char body[REPEAT_BODY_MAX + 96];
    snprintf(body, sizeof body, "%s repeated=%llu window_s=%lld", r->body, (unsigned long long)r->folded,
             (long long)((now - r->window_start + 999) / 1000));
    write_line(r->level, r->module, r->event, body);
    r->folded = 0;
}

/* Folds a line of kind repeat_key into its slot, or writes it (and the last window's count).
 * The caller holds log_lock. */
static void write_repeating(log_level_t level, const char *module, const char *event, const char *repeat_key,
                            const char *body) {
    char key[REPEAT_KEY_MAX];
    snprintf(key, sizeof key, "%s/%s/%s", module, event, repeat_key);
    int64_t now = clock_ms();
    repeat_slot_t *slot = NULL, *free_slot = NULL;
    for (size_t i = 0; i < REPEAT_SLOTS && !slot; i++) {
        if (!repeats[i].key[0]) {
            if (!free_slot) free_slot = &repeats[i];
        } else if (strcmp(repeats[i].key, key) == 0) {
            slot = &repeats[i];
        }
    }
    if (slot && now - slot->window_start < LOG_REPEAT_WINDOW_MS) { /* folded in */
        slot->folded++;
        slot->last_seen = now;
        copy_cut(slot->body, sizeof slot->body, body);
        return;
    }
    if (slot && slot->folded) write_folded(slot, now); /* the last window's count, then this line */
    if (!slot) slot = free_slot;
    if (slot) {
        copy_cut(slot->key, sizeof slot->key, key);
        slot->level = level;
        copy_cut(slot->module, sizeof slot->module, module);
        copy_cut(slot->event, sizeof slot->event, event);
        slot->body[0] = '\0';
        slot->window_start = slot->last_seen = now;
        slot->folded = 0;
    }
    write_line(level, module, event, body);
}

void log_event_keyed(log_level_t level, const char *module, const char *event, const char *repeat_key,
                     const char *fmt, ...) {
    if (!log_enabled(level)) return;
    char body[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    format_body(body, sizeof body, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    if (repeat_key) write_repeating(level, module, event, repeat_key, body);
    else write_line(level, module, event, body);
    pthread_mutex_unlock(&log_lock);
}

void log_flush_repeats(bool all) {
    int64_t now = clock_ms();
    pthread_mutex_lock(&log_lock);
    for (size_t i = 0; i < REPEAT_SLOTS; i++) {
        repeat_slot_t *r = &repeats[i];
        if (!r->key[0]) continue;
        bool window_over = now - r->window_start >= LOG_REPEAT_WINDOW_MS;
        if (r->folded && (all || window_over)) {
            write_folded(r, now);
            r->window_start = now; /* the next ones fold into a new window */
        }
        if (all || (window_over && now - r->last_seen >= LOG_REPEAT_WINDOW_MS)) r->key[0] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}
