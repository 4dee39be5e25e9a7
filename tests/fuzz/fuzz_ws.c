/* libFuzzer target: the WebSocket frame reader (src/ws/ws_codec.c).
 *
 * Input layout: byte 0 = flags, byte 1 = k, then k chunk-size bytes, then the byte stream.
 *   flags bit 0: client role (frames must be unmasked: the "no-mask" mode)
 *   flags bit 1: small message limit (300 bytes) instead of 1 MiB (keeps 1009 reachable
 *                and allocations small; the default 256 MiB behaves the same way)
 *   flags bit 2: small max_prealloc (16 bytes), so buffers grow while bytes arrive
 *   flags bit 3: take payload through ws_reader_direct_buf/commit whenever offered
 * The stream is read twice: in one call, and in chunks whose sizes cycle through the k
 * chunk bytes (1..256 each). Oracles:
 *   - both readings give exactly the same events (type, opcode, payload, codes);
 *   - every message is NUL-terminated, within the limit, and text messages are valid UTF-8
 *     by an independent decoder written here (code point ranges, not byte classes);
 *   - close codes and error codes are ones the API promises; an error ends the stream;
 *   - consumed counts never exceed what was fed, and WS_EV_NONE means all was consumed. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                               \
    do {                                                                                       \
        if (!(c))                                                                              \
            abort();                                                                           \
    } while (0)

#define MAX_EVENTS 4096

typedef struct {
    uint8_t type, opcode;
    uint16_t code;
    size_t len;
    uint64_t hash;
} ev_rec_t;

typedef struct {
    ev_rec_t ev[MAX_EVENTS];
    size_t n;
    bool dead;
} run_t;

static uint64_t fnv(const uint8_t *p, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Independent UTF-8 check: decode each sequence, then judge the code point. */
static bool utf8_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i++];
        if (c < 0x80)
            continue;
        int len = c >= 0xf8 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (!len)
            return false;
        uint32_t cp = c & (0x7f >> len);
        for (int k = 1; k < len; k++) {
            if (i >= n || (s[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i++] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
    }
    return true;
}

static void record(run_t *r, const ws_event_t *ev, size_t max_message) {
    CHECK(r->n < MAX_EVENTS);
    ev_rec_t *e = &r->ev[r->n++];
    e->type = (uint8_t)ev->type;
    e->opcode = 0;
    e->code = 0;
    e->len = ev->len;
    e->hash = 0;
    switch (ev->type) {
    case WS_EV_MESSAGE:
        CHECK(ev->data && ev->data[ev->len] == 0);
        CHECK(ev->len <= max_message);
        CHECK(ev->opcode == WS_OP_TEXT || ev->opcode == WS_OP_BINARY);
        if (ev->opcode == WS_OP_TEXT)
            CHECK(utf8_ok(ev->data, ev->len));
        e->opcode = (uint8_t)ev->opcode;
        e->hash = fnv(ev->data, ev->len);
        free(ev->data);
        break;
    case WS_EV_PING:
    case WS_EV_PONG:
        CHECK(ev->len <= 125);
        e->hash = fnv(ev->data, ev->len);
        break;
    case WS_EV_CLOSE:
        CHECK(ev->len <= 123);
        CHECK(ev->close_code == WS_CLOSE_NO_STATUS || ws_close_code_valid(ev->close_code));
        CHECK(ev->close_code != WS_CLOSE_NO_STATUS || ev->len == 0);
        CHECK(utf8_ok(ev->data, ev->len));
        e->code = ev->close_code;
        e->hash = fnv(ev->data, ev->len);
        break;
    case WS_EV_ERROR:
        CHECK(ev->close_code == 1002 || ev->close_code == 1007 || ev->close_code == 1009 ||
              ev->close_code == 1011);
        CHECK(ev->reason && strlen(ev->reason) <= 123);
        e->code = ev->close_code;
        r->dead = true;
        break;
    default:
        abort();
    }
}

/* Feeds p[0..n) completely (or until an error), recording events. */
static void feed_all(ws_reader_t *rd, run_t *r, const uint8_t *p, size_t n, size_t max_message) {
    while (!r->dead) {
        ws_event_t ev;
        size_t used = ws_reader_feed(rd, p, n, &ev);
        CHECK(used <= n);
        if (ev.type == WS_EV_NONE) {
            CHECK(used == n);
            return;
        }
        record(r, &ev, max_message);
        p += used;
        n -= used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    size_t k = data[1] % 32;
    if (size < 2 + k)
        return 0;
    const uint8_t *sizes = data + 2;
    const uint8_t *s = data + 2 + k;
    size_t n = size - 2 - k;

    ws_reader_config_t cfg = {
        .role = (flags & 1) ? WS_ROLE_CLIENT : WS_ROLE_SERVER,
        .max_message_size = (flags & 2) ? 300 : (1u << 20),
        .max_prealloc = (flags & 4) ? 16 : 0,
    };
    bool direct = flags & 8;

    static run_t one, chunked;
    one.n = chunked.n = 0;
    one.dead = chunked.dead = false;

    ws_reader_t rd;
    ws_reader_init(&rd, &cfg);
    feed_all(&rd, &one, s, n, cfg.max_message_size);
    ws_reader_free(&rd);

    ws_reader_init(&rd, &cfg);
    size_t off = 0, ci = 0;
    while (off < n && !chunked.dead) {
        size_t c = k ? (size_t)sizes[ci++ % k] + 1 : 1;
        if (c > n - off)
            c = n - off;
        size_t cap = 0;
        uint8_t *buf = direct ? ws_reader_direct_buf(&rd, 1, &cap) : NULL;
        if (buf) {
            /* The region never reaches past the frame, so it is always fully usable. */
            CHECK(cap > 0);
            if (c > cap)
                c = cap;
            memcpy(buf, s + off, c);
            ws_event_t ev;
            ws_reader_direct_commit(&rd, c, &ev);
            if (ev.type != WS_EV_NONE)
                record(&chunked, &ev, cfg.max_message_size);
        } else {
            feed_all(&rd, &chunked, s + off, c, cfg.max_message_size);
        }
        off += c;
    }
    ws_reader_free(&rd);

    CHECK(one.n == chunked.n);
    CHECK(one.dead == chunked.dead);
    for (size_t i = 0; i < one.n; i++) {
        CHECK(one.ev[i].type == chunked.ev[i].type);
        CHECK(one.ev[i].opcode == chunked.ev[i].opcode);
        CHECK(one.ev[i].code == chunked.ev[i].code);
        CHECK(one.ev[i].len == chunked.ev[i].len);
        CHECK(one.ev[i].hash == chunked.ev[i].hash);
        /* Nothing follows an error or a close. */
        if (one.ev[i].type == WS_EV_ERROR || one.ev[i].type == WS_EV_CLOSE)
            CHECK(i == one.n - 1);
    }
    return 0;
}
