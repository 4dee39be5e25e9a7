/* The WebSocket codec: handshake checks, reader (every framing rule, each error with its
 * close code, UTF-8, limits, split-invariance, backpressure, direct reads) and writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws_codec.h"

/* The out-of-memory test asks for an impossible allocation; under ASan that must return
 * NULL like glibc does instead of aborting. Unused without ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ------------------------------------------------------------------------------------ */
/* helpers                                                                              */

typedef struct {
    uint8_t bytes[1 << 20];
    size_t len;
} stream_t;

static stream_t *stream_new(void) {
    stream_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    return s;
}

/* Appends a frame. rsv is OR'ed into the first byte. mask NULL: unmasked. */
static void put_frame_rsv(stream_t *s, uint8_t rsv, ws_opcode_t op, bool fin, const void *payload,
                          size_t len, const uint8_t *mask) {
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header(h, op, fin, len, mask);
    assert_true(hl > 0);
    h[0] |= rsv;
    assert_true(s->len + hl + len <= sizeof s->bytes);
    memcpy(s->bytes + s->len, h, hl);
    s->len += hl;
    if (mask)
        ws_mask(s->bytes + s->len, payload, len, mask, 0);
    else if (len)
        memcpy(s->bytes + s->len, payload, len);
    s->len += len;
}

static void put_frame(stream_t *s, ws_opcode_t op, bool fin, const void *payload, size_t len,
                      const uint8_t *mask) {
    put_frame_rsv(s, 0, op, fin, payload, len, mask);
}

static void put_raw(stream_t *s, const void *p, size_t n) {
    memcpy(s->bytes + s->len, p, n);
    s->len += n;
}

/* One recorded event; payloads are copied so events can be compared after the fact. */
typedef struct {
    ws_event_type_t type;
    ws_opcode_t opcode;
    uint8_t *data;
    size_t len;
    uint16_t code;
    const char *reason;
} rec_t;

typedef struct {
    rec_t ev[64];
    size_t n;
} recs_t;

static void recs_free(recs_t *r) {
    for (size_t i = 0; i < r->n; i++)
        free(r->ev[i].data);
    r->n = 0;
}

static void record(recs_t *out, const ws_event_t *ev) {
    assert_true(out->n < 64);
    rec_t *r = &out->ev[out->n++];
    r->type = ev->type;
    r->opcode = ev->opcode;
    r->len = ev->len;
    r->code = ev->close_code;
    r->reason = ev->reason;
    r->data = NULL;
    if (ev->type == WS_EV_MESSAGE) {
        assert_non_null(ev->data);
        assert_int_equal(ev->data[ev->len], 0); /* NUL-terminated */
        r->data = ev->data;                     /* ownership moved to us */
    } else if (ev->type != WS_EV_ERROR) {
        r->data = malloc(ev->len + 1);
        assert_non_null(r->data);
        if (ev->len)
            memcpy(r->data, ev->data, ev->len);
    }
}

/* Feeds `s` in chunks of `chunk` bytes (0: all at once), recording every event, until the
 * input is used up or an error occurs. */
static void run(const ws_reader_config_t *cfg, const uint8_t *s, size_t len, size_t chunk,
                recs_t *out) {
    ws_reader_t r;
    ws_reader_init(&r, cfg);
    out->n = 0;
    size_t off = 0;
    while (off < len) {
        size_t n = chunk && chunk < len - off ? chunk : len - off;
        const uint8_t *p = s + off;
        while (n > 0) {
            ws_event_t ev;
            size_t used = ws_reader_feed(&r, p, n, &ev);
            assert_true(used <= n);
            if (ev.type == WS_EV_NONE) {
                assert_int_equal(used, n);
                break;
            }
            record(out, &ev);
            if (ev.type == WS_EV_ERROR) {
                ws_reader_free(&r);
                return;
            }
            p += used;
            n -= used;
        }
        off += chunk && chunk < len - off ? chunk : len - off;
    }
    ws_reader_free(&r);
}

static void assert_same(const recs_t *a, const recs_t *b) {
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->ev[i].type, b->ev[i].type);
        assert_int_equal(a->ev[i].opcode, b->ev[i].opcode);
        assert_int_equal(a->ev[i].len, b->ev[i].len);
        assert_int_equal(a->ev[i].code, b->ev[i].code);
        if (a->ev[i].data || b->ev[i].data)
            assert_memory_equal(a->ev[i].data, b->ev[i].data, a->ev[i].len);
    }
}

/* Runs one-shot, byte-by-byte and in 7-byte chunks, checks all agree, returns one-shot. */
static void run_all_splits(const ws_reader_config_t *cfg, const stream_t *s, recs_t *out) {
    recs_t b, c;
    run(cfg, s->bytes, s->len, 0, out);
    run(cfg, s->bytes, s->len, 1, &b);
    run(cfg, s->bytes, s->len, 7, &c);
    assert_same(out, &b);
    assert_same(out, &c);
    recs_free(&b);
    recs_free(&c);
}

static const ws_reader_config_t server_cfg = {.role = WS_ROLE_SERVER};
static const ws_reader_config_t client_cfg = {.role = WS_ROLE_CLIENT};

/* Expects the stream (server role unless client) to end in exactly one error. */
static void expect_error(const stream_t *s, bool client, uint16_t code) {
    recs_t r;
    run_all_splits(client ? &client_cfg : &server_cfg, s, &r);
    assert_true(r.n >= 1);
    assert_int_equal(r.ev[r.n - 1].type, WS_EV_ERROR);
    assert_int_equal(r.ev[r.n - 1].code, code);
    assert_non_null(r.ev[r.n - 1].reason);
    assert_true(strlen(r.ev[r.n - 1].reason) <= 123);
    recs_free(&r);
}

static void expect_message(const stream_t *s, bool client, ws_opcode_t op, const void *payload,
                           size_t len) {
    recs_t r;
    run_all_splits(client ? &client_cfg : &server_cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WS_EV_MESSAGE);
    assert_int_equal(r.ev[0].opcode, op);
    assert_int_equal(r.ev[0].len, len);
    if (len)
        assert_memory_equal(r.ev[0].data, payload, len);
    recs_free(&r);
}

/* ------------------------------------------------------------------------------------ */
/* handshake                                                                            */

static void test_accept_rfc_example(void **state) {
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(ws_handshake_accept(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* Surrounding whitespace is not part of the key. */
    const char *padded = " \tdGhlIHNhbXBsZSBub25jZQ== ";
    assert_int_equal(ws_handshake_accept(padded, strlen(padded), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#define S(x) x, strlen(x)

static ws_handshake_req_t good_req(void) {
    ws_handshake_req_t r = {S("websocket"), S("Upgrade"), S("13"), S("dGhlIHNhbXBsZSBub25jZQ==")};
    return r;
}

static void expect_hs(const ws_handshake_req_t *r, int rc, int status) {
    int st = -1;
    const char *reason = "unset";
    assert_int_equal(ws_handshake_validate(r, &st, &reason), rc);
    if (rc == 0) {
        assert_null(reason);
    } else {
        assert_int_equal(st, status);
        assert_non_null(reason);
        assert_true(strlen(reason) > 0);
    }
}

static void test_handshake_valid_variants(void **state) {
    (void)state;
    ws_handshake_req_t r = good_req();
    expect_hs(&r, 0, 0);
    const char *upgrades[] = {"WebSocket", "WEBSOCKET", " websocket ", "h2c, websocket", "websocket,"};
    for (size_t i = 0; i < sizeof upgrades / sizeof *upgrades; i++) {
        r = good_req();
        r.upgrade = upgrades[i];
        r.upgrade_len = strlen(upgrades[i]);
        expect_hs(&r, 0, 0);
    }
    const char *conns[] = {"upgrade", "keep-alive, Upgrade", "Upgrade,keep-alive", " ,\tUPGRADE\t, ",
                           "close,upgrade"};
    for (size_t i = 0; i < sizeof conns / sizeof *conns; i++) {
        r = good_req();
        r.connection = conns[i];
        r.connection_len = strlen(conns[i]);
        expect_hs(&r, 0, 0);
    }
    r = good_req();
    r.version = " 13\t";
    r.version_len = 4;
    expect_hs(&r, 0, 0);
    r = good_req();
    r.key = " AAAAAAAAAAAAAAAAAAAAAA== ";
    r.key_len = strlen(r.key);
    expect_hs(&r, 0, 0);
    /* Slices need not be NUL-terminated: a longer buffer cut by the length. */
    r = good_req();
    r.upgrade = "websocketXYZ";
    r.upgrade_len = 9;
    expect_hs(&r, 0, 0);
}

static void test_handshake_invalid(void **state) {
    (void)state;
    ws_handshake_req_t r;
    struct {
        int field; /* 0 upgrade, 1 connection, 2 version, 3 key */
        const char *value; /* NULL: header absent */
        int status;
    } cases[] = {
        {0, NULL, 400},
        {0, "", 400},
        {0, "h2c", 400},
        {0, "websockets", 400},
        {0, "web socket", 400},
        {0, "websocket/13", 400},
        {1, NULL, 400},
        {1, "keep-alive", 400},
        {1, "upgraded", 400},
        {1, "up grade", 400},
        {2, NULL, 400},
        {2, "8", 426},
        {2, "130", 426},
        {2, "13, 8", 426},
        {2, "", 426},
        {3, NULL, 400},
        {3, "", 400},
        {3, "dGhlIHNhbXBsZSBub25jZQ=", 400},   /* 23 chars */
        {3, "dGhlIHNhbXBsZSBub25jZQ", 400},    /* no padding */
        {3, "dGhlIHNhbXBsZSBub25jZQ===", 400}, /* 25 chars */
        {3, "dGhlIHNhbXBsZSBub25j*Q==", 400},  /* not base64 */
        {3, "dGhlIHNhbXBsZSBub25jZR==", 400},  /* non-canonical final bits */
        {3, "dGhlIHNhbXBsZSBub25jZQ=A", 400},
        {3, "dGhlIHNhbXBsZSBub25jZQ", 400},
        {3, "YWJjZGVmZ2hpamtsbW5vcHFy", 400},  /* 18 bytes, no padding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        r = good_req();
        const char **f = cases[i].field == 0   ? &r.upgrade
                         : cases[i].field == 1 ? &r.connection
                         : cases[i].field == 2 ? &r.version
                                               : &r.key;
        size_t *fl = cases[i].field == 0   ? &r.upgrade_len
                     : cases[i].field == 1 ? &r.connection_len
                     : cases[i].field == 2 ? &r.version_len
                                           : &r.key_len;
        *f = cases[i].value;
        *fl = cases[i].value ? strlen(cases[i].value) : 0;
        expect_hs(&r, -EINVAL, cases[i].status);
    }
}

/* ------------------------------------------------------------------------------------ */
/* RFC 6455 5.7 examples                                                                */

static void test_rfc_examples(void **state) {
    (void)state;
    stream_t *s = stream_new();
    /* A single-frame unmasked text message (read as a client). */
    const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    put_raw(s, unmasked, sizeof unmasked);
    expect_message(s, true, WS_OP_TEXT, "Hello", 5);
    /* A single-frame masked text message (read as the server). */
    const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    s->len = 0;
    put_raw(s, masked, sizeof masked);
    expect_message(s, false, WS_OP_TEXT, "Hello", 5);
    /* A fragmented unmasked text message. */
    const uint8_t frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    s->len = 0;
    put_raw(s, frag, sizeof frag);
    expect_message(s, true, WS_OP_TEXT, "Hello", 5);
    /* Unmasked ping and masked pong. */
    const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    s->len = 0;
    put_raw(s, ping, sizeof ping);
    recs_t r;
    run_all_splits(&client_cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WS_EV_PING);
    assert_int_equal(r.ev[0].len, 5);
    assert_memory_equal(r.ev[0].data, "Hello", 5);
    recs_free(&r);
    const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    s->len = 0;
    put_raw(s, pong, sizeof pong);
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WS_EV_PONG);
    assert_memory_equal(r.ev[0].data, "Hello", 5);
    recs_free(&r);
    /* 256 bytes and 64 KiB binary messages in single unmasked frames: exact header bytes. */
    uint8_t *big = calloc(65536, 1);
    assert_non_null(big);
    const uint8_t h256[] = {0x82, 0x7e, 0x01, 0x00};
    s->len = 0;
    put_raw(s, h256, sizeof h256);
    put_raw(s, big, 256);
    expect_message(s, true, WS_OP_BINARY, big, 256);
    const uint8_t h64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    s->len = 0;
    put_raw(s, h64k, sizeof h64k);
    put_raw(s, big, 65536);
    expect_message(s, true, WS_OP_BINARY, big, 65536);
    free(big);
    free(s);
}

static void test_writer_rfc_bytes(void **state) {
    (void)state;
    uint8_t h[WS_MAX_HEADER];
    assert_int_equal(ws_frame_header(h, WS_OP_TEXT, true, 5, NULL), 2);
    assert_memory_equal(h, ((uint8_t[]){0x81, 0x05}), 2);
    assert_int_equal(ws_frame_header(h, WS_OP_TEXT, true, 5, MASK), 6);
    assert_memory_equal(h, ((uint8_t[]){0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}), 6);
    uint8_t p[5];
    ws_mask(p, (const uint8_t *)"Hello", 5, MASK, 0);
    assert_memory_equal(p, ((uint8_t[]){0x7f, 0x9f, 0x4d, 0x51, 0x58}), 5);
    assert_int_equal(ws_frame_header(h, WS_OP_TEXT, false, 3, NULL), 2);
    assert_memory_equal(h, ((uint8_t[]){0x01, 0x03}), 2);
    assert_int_equal(ws_frame_header(h, WS_OP_CONTINUATION, true, 2, NULL), 2);
    assert_memory_equal(h, ((uint8_t[]){0x80, 0x02}), 2);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 256, NULL), 4);
    assert_memory_equal(h, ((uint8_t[]){0x82, 0x7e, 0x01, 0x00}), 4);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 65536, NULL), 10);
    assert_memory_equal(h, ((uint8_t[]){0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0, 0}), 10);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 65536, MASK), 14);
    assert_memory_equal(h + 10, MASK, 4);
    /* The largest encodable length and the first one that is not. */
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, (1ull << 63) - 1, NULL), 10);
    assert_memory_equal(h, ((uint8_t[]){0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
                        10);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 1ull << 63, NULL), 0);
    /* Invalid requests. */
    assert_int_equal(ws_frame_header(h, WS_OP_PING, false, 0, NULL), 0);
    assert_int_equal(ws_frame_header(h, WS_OP_CLOSE, true, 126, NULL), 0);
    assert_int_equal(ws_frame_header(h, WS_OP_PONG, true, 125, NULL), 2);
    assert_int_equal(ws_frame_header(h, (ws_opcode_t)3, true, 0, NULL), 0);
    assert_int_equal(ws_frame_header(h, (ws_opcode_t)0xb, true, 0, NULL), 0);
}

/* ------------------------------------------------------------------------------------ */
/* lengths                                                                              */

static void test_length_boundaries(void **state) {
    (void)state;
    const size_t lens[] = {0, 1, 124, 125, 126, 127, 65535, 65536, 65537, 200000};
    const size_t hdr[] = {2, 2, 2, 2, 4, 4, 4, 10, 10, 10};
    uint8_t *payload = malloc(200000);
    assert_non_null(payload);
    for (size_t i = 0; i < 200000; i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    stream_t *s = stream_new();
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        uint8_t h[WS_MAX_HEADER];
        assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, lens[i], NULL), hdr[i]);
        assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, lens[i], MASK), hdr[i] + 4);
        for (int masked = 0; masked < 2; masked++) {
            s->len = 0;
            put_frame(s, WS_OP_BINARY, true, payload, lens[i], masked ? MASK : NULL);
            assert_int_equal(s->len, lens[i] + hdr[i] + (masked ? 4 : 0));
            expect_message(s, !masked, WS_OP_BINARY, payload, lens[i]);
        }
    }
    free(s);
    free(payload);
}

static void test_non_minimal_lengths(void **state) {
    (void)state;
    stream_t *s = stream_new();
    uint8_t zeros[200] = {0};
    /* 125 encoded in 16 bits. */
    const uint8_t a[] = {0x82, 0xfe, 0x00, 0x7d, 1, 2, 3, 4};
    put_raw(s, a, sizeof a);
    put_raw(s, zeros, 125);
    expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    /* 65535 encoded in 64 bits. */
    const uint8_t b[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
    s->len = 0;
    put_raw(s, b, sizeof b);
    expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    /* 64-bit length with the most significant bit set. */
    const uint8_t c[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0x10, 1, 2, 3, 4};
    s->len = 0;
    put_raw(s, c, sizeof c);
    expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    /* Just below: 2^63 - 1 is a valid length, refused only as too big. */
    const uint8_t d[] = {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    s->len = 0;
    put_raw(s, d, sizeof d);
    expect_error(s, false, WS_CLOSE_TOO_BIG);
    free(s);
}

/* ------------------------------------------------------------------------------------ */
/* split invariance, fragmentation, control frames                                      */

static uint32_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void build_mixed_stream(stream_t *s, const uint8_t *mask) {
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)('a' + i % 26);
    put_frame(s, WS_OP_TEXT, false, "{\"id\":1,", 8, mask);
    put_frame(s, WS_OP_PING, true, "p1", 2, mask);
    put_frame(s, WS_OP_CONTINUATION, false, "\"method\":\"caf\xc3", 14, mask);
    put_frame(s, WS_OP_PONG, true, "", 0, mask);
    put_frame(s, WS_OP_CONTINUATION, true, "\xa9\"}", 3, mask);
    put_frame(s, WS_OP_BINARY, true, big, sizeof big, mask);
    put_frame(s, WS_OP_TEXT, true, "", 0, mask);
    put_frame(s, WS_OP_BINARY, false, "", 0, mask);
    put_frame(s, WS_OP_CONTINUATION, false, "", 0, mask);
    put_frame(s, WS_OP_CONTINUATION, true, "x", 1, mask);
    put_frame(s, WS_OP_TEXT, true, big, 300, mask);
    uint8_t close[WS_MAX_CONTROL_FRAME];
    size_t n = ws_close_frame(close, 1001, "bye", 3, mask);
    put_raw(s, close, n);
}

static void check_mixed(const recs_t *r) {
    assert_int_equal(r->n, 8);
    assert_int_equal(r->ev[0].type, WS_EV_PING);
    assert_memory_equal(r->ev[0].data, "p1", 2);
    assert_int_equal(r->ev[1].type, WS_EV_PONG);
    assert_int_equal(r->ev[1].len, 0);
    assert_int_equal(r->ev[2].type, WS_EV_MESSAGE);
    assert_int_equal(r->ev[2].opcode, WS_OP_TEXT);
    assert_int_equal(r->ev[2].len, 25);
    assert_memory_equal(r->ev[2].data, "{\"id\":1,\"method\":\"caf\xc3\xa9\"}", 26);
    assert_int_equal(r->ev[3].type, WS_EV_MESSAGE);
    assert_int_equal(r->ev[3].opcode, WS_OP_BINARY);
    assert_int_equal(r->ev[3].len, 70000);
    assert_int_equal(r->ev[4].type, WS_EV_MESSAGE);
    assert_int_equal(r->ev[4].len, 0);
    assert_int_equal(r->ev[5].type, WS_EV_MESSAGE);
    assert_int_equal(r->ev[5].opcode, WS_OP_BINARY);
    assert_int_equal(r->ev[5].len, 1);
    assert_int_equal(r->ev[6].len, 300);
    assert_int_equal(r->ev[7].type, WS_EV_CLOSE);
    assert_int_equal(r->ev[7].code, 1001);
    assert_memory_equal(r->ev[7].data, "bye", 3);
}

static void test_split_invariance(void **state) {
    (void)state;
    stream_t *s = stream_new();
    for (int masked = 0; masked < 2; masked++) {
        s->len = 0;
        build_mixed_stream(s, masked ? MASK : NULL);
        const ws_reader_config_t *cfg = masked ? &server_cfg : &client_cfg;
        recs_t one, other;
        run_all_splits(cfg, s, &one); /* one-shot, 1 byte, 7 bytes */
        check_mixed(&one);
        const size_t chunks[] = {2, 3, 4, 5, 13, 64, 4096, 65536};
        for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
            run(cfg, s->bytes, s->len, chunks[i], &other);
            assert_same(&one, &other);
            recs_free(&other);
        }
        /* Random split points. */
        for (int round = 0; round < 20; round++) {
            ws_reader_t r;
            ws_reader_init(&r, cfg);
            other.n = 0;
            size_t off = 0;
            while (off < s->len) {
                size_t n = 1 + rnd() % 200;
                if (n > s->len - off)
                    n = s->len - off;
                size_t used = 0;
                while (used < n) {
                    ws_event_t ev;
                    size_t u = ws_reader_feed(&r, s->bytes + off + used, n - used, &ev);
                    used += u;
                    if (ev.type == WS_EV_NONE)
                        break;
                    record(&other, &ev);
                }
                off += n;
            }
            ws_reader_free(&r);
            assert_same(&one, &other);
            recs_free(&other);
        }
        recs_free(&one);
    }
    free(s);
}

static void test_fragmentation_interleaved_ping(void **state) {
    (void)state;
    stream_t *s = stream_new();
    put_frame(s, WS_OP_TEXT, false, "Hel", 3, MASK);
    put_frame(s, WS_OP_PING, true, "are you there", 13, MASK);
    put_frame(s, WS_OP_CONTINUATION, false, "l", 1, MASK);
    put_frame(s, WS_OP_PONG, true, "x", 1, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, "o", 1, MASK);
    recs_t r;
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.ev[0].type, WS_EV_PING);
    assert_int_equal(r.ev[0].len, 13);
    assert_memory_equal(r.ev[0].data, "are you there", 13);
    assert_int_equal(r.ev[1].type, WS_EV_PONG);
    assert_int_equal(r.ev[2].type, WS_EV_MESSAGE);
    assert_int_equal(r.ev[2].opcode, WS_OP_TEXT);
    assert_int_equal(r.ev[2].len, 5);
    assert_memory_equal(r.ev[2].data, "Hello", 6); /* includes the NUL */
    recs_free(&r);
    /* A binary message keeps its opcode through continuations. */
    s->len = 0;
    put_frame(s, WS_OP_BINARY, false, "\xff\xfe", 2, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, "\x00\x80", 2, MASK);
    expect_message(s, false, WS_OP_BINARY, "\xff\xfe\x00\x80", 4);
    free(s);
}

static void test_control_frame_limits(void **state) {
    (void)state;
    stream_t *s = stream_new();
    uint8_t p[126];
    memset(p, 'p', sizeof p);
    /* 125 bytes is the largest control payload. */
    put_frame(s, WS_OP_PING, true, p, 125, MASK);
    recs_t r;
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WS_EV_PING);
    assert_int_equal(r.ev[0].len, 125);
    recs_free(&r);
    /* 126 bytes: protocol error (the writer refuses to build it, so build it by hand). */
    const uint8_t h[] = {0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4};
    s->len = 0;
    put_raw(s, h, sizeof h);
    put_raw(s, p, 126);
    expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    /* A fragmented control frame (FIN = 0) for each control opcode. */
    for (uint8_t op = 0x8; op <= 0xa; op++) {
        const uint8_t f[] = {op, 0x80, 1, 2, 3, 4};
        s->len = 0;
        put_raw(s, f, sizeof f);
        expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    }
    free(s);
}

/* ------------------------------------------------------------------------------------ */
/* errors                                                                               */

static void test_reserved_bits_and_opcodes(void **state) {
    (void)state;
    stream_t *s = stream_new();
    for (int bit = 0; bit < 3; bit++) {
        s->len = 0;
        put_frame_rsv(s, (uint8_t)(0x40 >> bit), WS_OP_TEXT, true, "a", 1, MASK);
        expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
        /* Also on a control frame and on a continuation. */
        s->len = 0;
        put_frame_rsv(s, (uint8_t)(0x40 >> bit), WS_OP_PING, true, "", 0, MASK);
        expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
        s->len = 0;
        put_frame(s, WS_OP_TEXT, false, "a", 1, MASK);
        put_frame_rsv(s, (uint8_t)(0x40 >> bit), WS_OP_CONTINUATION, true, "b", 1, MASK);
        expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    }
    const uint8_t bad_ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof bad_ops; i++) {
        const uint8_t f[] = {(uint8_t)(0x80 | bad_ops[i]), 0x80, 1, 2, 3, 4};
        s->len = 0;
        put_raw(s, f, sizeof f);
        expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    }
    free(s);
}

static void test_masking_rules(void **state) {
    (void)state;
    stream_t *s = stream_new();
    /* Unmasked frames from a client are refused by the server ... */
    put_frame(s, WS_OP_TEXT, true, "hi", 2, NULL);
    expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    s->len = 0;
    put_frame(s, WS_OP_PING, true, "", 0, NULL);
    expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    /* ... and masked frames from a server are refused by a client. */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, true, "hi", 2, MASK);
    expect_error(s, true, WS_CLOSE_PROTOCOL_ERROR);
    /* An all-zero mask is still a mask. */
    const uint8_t zero[4] = {0};
    s->len = 0;
    put_frame(s, WS_OP_TEXT, true, "hi", 2, zero);
    expect_message(s, false, WS_OP_TEXT, "hi", 2);
    free(s);
}

static void test_fragmentation_errors(void **state) {
    (void)state;
    stream_t *s = stream_new();
    /* Continuation without a message. */
    put_frame(s, WS_OP_CONTINUATION, true, "x", 1, MASK);
    expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    /* Continuation after a completed message. */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, true, "a", 1, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, "x", 1, MASK);
    recs_t r;
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.ev[0].type, WS_EV_MESSAGE);
    assert_int_equal(r.ev[1].type, WS_EV_ERROR);
    assert_int_equal(r.ev[1].code, WS_CLOSE_PROTOCOL_ERROR);
    recs_free(&r);
    /* A new text or binary frame while a message is open. */
    for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
        s->len = 0;
        put_frame(s, WS_OP_TEXT, false, "a", 1, MASK);
        put_frame(s, (ws_opcode_t)op, true, "b", 1, MASK);
        expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
        s->len = 0;
        put_frame(s, WS_OP_BINARY, false, "a", 1, MASK);
        put_frame(s, WS_OP_CONTINUATION, false, "a", 1, MASK);
        put_frame(s, (ws_opcode_t)op, false, "b", 1, MASK);
        expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    }
    free(s);
}

static void test_max_message_size(void **state) {
    (void)state;
    stream_t *s = stream_new();
    uint8_t p[1001];
    memset(p, 'a', sizeof p);
    ws_reader_config_t cfg = {.role = WS_ROLE_SERVER, .max_message_size = 1000};
    recs_t r;
    /* Exactly the limit: fine, as one frame and as fragments. */
    put_frame(s, WS_OP_TEXT, true, p, 1000, MASK);
    put_frame(s, WS_OP_BINARY, false, p, 500, MASK);
    put_frame(s, WS_OP_CONTINUATION, false, p, 0, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, p, 500, MASK);
    run_all_splits(&cfg, s, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.ev[0].len, 1000);
    assert_int_equal(r.ev[1].len, 1000);
    recs_free(&r);
    /* One byte over, as one frame: refused from the header alone (no payload sent). */
    s->len = 0;
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header(h, WS_OP_TEXT, true, 1001, MASK);
    put_raw(s, h, hl);
    run_all_splits(&cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WS_EV_ERROR);
    assert_int_equal(r.ev[0].code, WS_CLOSE_TOO_BIG);
    assert_string_equal(r.ev[0].reason, "message too big");
    recs_free(&r);
    /* One byte over across fragments. */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, false, p, 500, MASK);
    put_frame(s, WS_OP_PING, true, "", 0, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, p, 501, MASK);
    run_all_splits(&cfg, s, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.ev[0].type, WS_EV_PING);
    assert_int_equal(r.ev[1].type, WS_EV_ERROR);
    assert_int_equal(r.ev[1].code, WS_CLOSE_TOO_BIG);
    recs_free(&r);
    /* The default is 256 MiB: a header declaring 256 MiB + 1 is refused, 256 MiB is not
     * (only the header is fed, so nothing is buffered either way beyond the allocation). */
    ws_reader_t rd;
    ws_event_t ev;
    ws_reader_init(&rd, NULL);
    hl = ws_frame_header(h, WS_OP_BINARY, true, WS_DEFAULT_MAX_MESSAGE + 1, MASK);
    assert_int_equal(ws_reader_feed(&rd, h, hl, &ev), hl);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, 1009);
    ws_reader_free(&rd);
    ws_reader_init(&rd, NULL);
    hl = ws_frame_header(h, WS_OP_BINARY, true, WS_DEFAULT_MAX_MESSAGE, MASK);
    assert_int_equal(ws_reader_feed(&rd, h, hl, &ev), hl);
    assert_int_equal(ev.type, WS_EV_NONE);
    ws_reader_free(&rd);
    free(s);
}

static void test_sticky_error(void **state) {
    (void)state;
    ws_reader_t r;
    ws_event_t ev;
    ws_reader_init(&r, NULL);
    const uint8_t bad[] = {0x83, 0x80, 1, 2, 3, 4, 0x81, 0x80, 1, 2, 3, 4};
    size_t used = ws_reader_feed(&r, bad, sizeof bad, &ev);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, 1002);
    assert_int_equal(used, 6);
    /* Dead: nothing more is consumed and the same error comes back. */
    used = ws_reader_feed(&r, bad + 6, 6, &ev);
    assert_int_equal(used, 0);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, 1002);
    ws_reader_free(&r);
}

static void test_out_of_memory(void **state) {
    (void)state;
    /* A limit beyond the address space makes the up-front allocation fail. */
    ws_reader_config_t cfg = {.role = WS_ROLE_SERVER, .max_message_size = SIZE_MAX};
    ws_reader_t r;
    ws_event_t ev;
    ws_reader_init(&r, &cfg);
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header(h, WS_OP_BINARY, true, 1ull << 60, MASK);
    ws_reader_feed(&r, h, hl, &ev);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, WS_CLOSE_INTERNAL_ERROR);
    ws_reader_free(&r);
}

/* ------------------------------------------------------------------------------------ */
/* UTF-8                                                                                */

static void expect_text(const char *bytes, size_t n, bool valid) {
    stream_t *s = stream_new();
    put_frame(s, WS_OP_TEXT, true, bytes, n, MASK);
    if (valid)
        expect_message(s, false, WS_OP_TEXT, bytes, n);
    else
        expect_error(s, false, WS_CLOSE_INVALID_PAYLOAD);
    /* The same bytes in a binary message are never checked. */
    s->len = 0;
    put_frame(s, WS_OP_BINARY, true, bytes, n, MASK);
    expect_message(s, false, WS_OP_BINARY, bytes, n);
    free(s);
}

#define TEXT_OK(lit) expect_text(lit, sizeof lit - 1, true)
#define TEXT_BAD(lit) expect_text(lit, sizeof lit - 1, false)

static void test_utf8_boundaries(void **state) {
    (void)state;
    TEXT_OK("\x7f");                 /* U+007F */
    TEXT_OK("\xc2\x80");             /* U+0080 */
    TEXT_OK("\xdf\xbf");             /* U+07FF */
    TEXT_OK("\xe0\xa0\x80");         /* U+0800 */
    TEXT_OK("\xed\x9f\xbf");         /* U+D7FF */
    TEXT_OK("\xee\x80\x80");         /* U+E000 */
    TEXT_OK("\xef\xbf\xbf");         /* U+FFFF */
    TEXT_OK("\xf0\x90\x80\x80");     /* U+10000 */
    TEXT_OK("\xf4\x8f\xbf\xbf");     /* U+10FFFF */
    TEXT_OK("\xf3\xbf\xbf\xbf");
    TEXT_OK("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"); /* Autobahn 6.2: κόσμε */
    TEXT_OK("a\x00z");                                     /* NUL is valid UTF-8 */
}

static void test_utf8_invalid(void **state) {
    (void)state;
    TEXT_BAD("\x80");                 /* lone continuation */
    TEXT_BAD("\xbf");
    TEXT_BAD("\xc0\x80");             /* overlong NUL */
    TEXT_BAD("\xc1\xbf");             /* overlong U+007F */
    TEXT_BAD("\xe0\x80\x80");         /* overlong */
    TEXT_BAD("\xe0\x9f\xbf");         /* overlong U+07FF */
    TEXT_BAD("\xf0\x8f\xbf\xbf");     /* overlong U+FFFF */
    TEXT_BAD("\xed\xa0\x80");         /* U+D800 */
    TEXT_BAD("\xed\xbf\xbf");         /* U+DFFF */
    TEXT_BAD("\xed\xa0\x80\xed\xb0\x80"); /* CESU-8 pair */
    TEXT_BAD("\xf4\x90\x80\x80");     /* U+110000 */
    TEXT_BAD("\xf5\x80\x80\x80");
    TEXT_BAD("\xf8\x88\x80\x80\x80"); /* 5-byte form */
    TEXT_BAD("\xfe");
    TEXT_BAD("\xff");
    TEXT_BAD("\xc2");                 /* truncated at the end of the message */
    TEXT_BAD("\xe2\x82");
    TEXT_BAD("\xf0\x9f\x98");
    TEXT_BAD("\xc2\x41");             /* continuation expected, ASCII found */
    TEXT_BAD("\xe2\x28\xa1");
    TEXT_BAD("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64");
}

/* Non-ASCII bytes at every position around the 8/16/64-byte fast-path boundaries. */
static void test_utf8_fast_path_offsets(void **state) {
    (void)state;
    char buf[300];
    for (size_t pos = 0; pos < 200; pos++) {
        memset(buf, 'a', sizeof buf);
        memcpy(buf + pos, "\xe2\x82\xac", 3); /* € */
        expect_text(buf, 250, true);
        buf[pos + 1] = 'a'; /* broken sequence */
        expect_text(buf, 250, false);
        memset(buf, 'a', sizeof buf);
        buf[pos] = (char)0xff;
        expect_text(buf, 250, false);
    }
}

static void test_utf8_across_fragments(void **state) {
    (void)state;
    stream_t *s = stream_new();
    /* "€" (E2 82 AC) split after each byte, and a 4-byte character split over 4 frames. */
    put_frame(s, WS_OP_TEXT, false, "\xe2", 1, MASK);
    put_frame(s, WS_OP_CONTINUATION, false, "\x82", 1, MASK);
    put_frame(s, WS_OP_PING, true, "", 0, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, "\xac", 1, MASK);
    put_frame(s, WS_OP_TEXT, false, "\xf0", 1, MASK);
    put_frame(s, WS_OP_CONTINUATION, false, "\x9f", 1, MASK);
    put_frame(s, WS_OP_CONTINUATION, false, "\x98", 1, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, "\x80", 1, MASK);
    recs_t r;
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.ev[1].type, WS_EV_MESSAGE);
    assert_memory_equal(r.ev[1].data, "\xe2\x82\xac", 3);
    assert_memory_equal(r.ev[2].data, "\xf0\x9f\x98\x80", 4);
    recs_free(&r);
    /* A surrogate split across fragments. */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, false, "ok\xed", 3, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, "\xa0\x80", 2, MASK);
    expect_error(s, false, WS_CLOSE_INVALID_PAYLOAD);
    /* A character cut off by an all-ASCII fragment (ASCII blocks skip the DFA only when no
     * character is pending). */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, false, "ab\xc3", 3, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 68,
              MASK);
    expect_error(s, false, WS_CLOSE_INVALID_PAYLOAD);
    s->len = 0;
    put_frame(s, WS_OP_TEXT, false, "ab\xc3", 3, NULL);
    put_frame(s, WS_OP_CONTINUATION, false, "z", 1, NULL);
    put_frame(s, WS_OP_CONTINUATION, true, "\xa9", 1, NULL); /* would complete \xc3 if 'z' were skipped */
    expect_error(s, true, WS_CLOSE_INVALID_PAYLOAD);
    /* A message that ends in the middle of a character split over fragments. */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, false, "\xf0\x9f", 2, MASK);
    put_frame(s, WS_OP_CONTINUATION, true, "\x98", 1, MASK);
    expect_error(s, false, WS_CLOSE_INVALID_PAYLOAD);
    /* Fail fast: invalid bytes in the first fragment are reported before the message ends
     * (no continuation is ever sent here). */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, false, "ab\xc0\xaf", 4, MASK);
    expect_error(s, false, WS_CLOSE_INVALID_PAYLOAD);
    /* ... even before the frame ends: the header declares 100 bytes, 3 are sent. */
    ws_reader_t rd;
    ws_event_t ev;
    ws_reader_init(&rd, NULL);
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header(h, WS_OP_TEXT, true, 100, MASK);
    uint8_t body[3];
    ws_mask(body, (const uint8_t *)"a\xff", 3, MASK, 0);
    assert_int_equal(ws_reader_feed(&rd, h, hl, &ev), hl);
    assert_int_equal(ev.type, WS_EV_NONE);
    ws_reader_feed(&rd, body, 3, &ev);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, 1007);
    ws_reader_free(&rd);
    free(s);
}

/* ------------------------------------------------------------------------------------ */
/* close frames                                                                         */

static void close_with_body(stream_t *s, const void *body, size_t n) {
    s->len = 0;
    put_frame(s, WS_OP_CLOSE, true, body, n, MASK);
}

static void test_close_frames(void **state) {
    (void)state;
    stream_t *s = stream_new();
    recs_t r;
    /* No body: reported as 1005. */
    close_with_body(s, "", 0);
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WS_EV_CLOSE);
    assert_int_equal(r.ev[0].code, WS_CLOSE_NO_STATUS);
    assert_int_equal(r.ev[0].len, 0);
    recs_free(&r);
    /* Code and reason. */
    close_with_body(s, "\x03\xe8normal \xc3\xa9", 11);
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].code, 1000);
    assert_int_equal(r.ev[0].len, 9);
    assert_memory_equal(r.ev[0].data, "normal \xc3\xa9", 9);
    recs_free(&r);
    /* A 1-byte body. */
    close_with_body(s, "\x03", 1);
    expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
    /* Codes. */
    const uint16_t ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                           3000, 3999, 4000, 4999};
    const uint16_t bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint8_t b[2] = {(uint8_t)(ok[i] >> 8), (uint8_t)ok[i]};
        close_with_body(s, b, 2);
        run_all_splits(&server_cfg, s, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.ev[0].type, WS_EV_CLOSE);
        assert_int_equal(r.ev[0].code, ok[i]);
        recs_free(&r);
        assert_true(ws_close_code_valid(ok[i]));
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t b[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        close_with_body(s, b, 2);
        expect_error(s, false, WS_CLOSE_PROTOCOL_ERROR);
        assert_false(ws_close_code_valid(bad[i]));
    }
    /* Invalid UTF-8 in the reason. */
    close_with_body(s, "\x03\xe8\xc0\xaf", 4);
    expect_error(s, false, WS_CLOSE_INVALID_PAYLOAD);
    close_with_body(s, "\x03\xe8\xe2\x82", 4); /* truncated character */
    expect_error(s, false, WS_CLOSE_INVALID_PAYLOAD);
    /* After a close, anything else is consumed and ignored, even garbage, and an open
     * message is abandoned. */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, false, "partial", 7, MASK);
    put_frame(s, WS_OP_CLOSE, true, "\x03\xe8", 2, MASK);
    put_frame(s, WS_OP_TEXT, true, "late", 4, MASK);
    put_raw(s, "\xff\xff\xff", 3);
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WS_EV_CLOSE);
    recs_free(&r);
    free(s);
}

static void test_close_writer(void **state) {
    (void)state;
    uint8_t f[WS_MAX_CONTROL_FRAME];
    size_t n = ws_close_frame(f, 1000, "bye", 3, NULL);
    assert_int_equal(n, 7);
    assert_memory_equal(f, "\x88\x05\x03\xe8" "bye", 7);
    n = ws_close_frame(f, 0, NULL, 0, NULL);
    assert_int_equal(n, 2);
    assert_memory_equal(f, "\x88\x00", 2);
    assert_int_equal(ws_close_frame(f, 0, "x", 1, NULL), 0);
    assert_int_equal(ws_close_frame(f, 1005, NULL, 0, NULL), 0);
    assert_int_equal(ws_close_frame(f, 1006, NULL, 0, NULL), 0);
    assert_int_equal(ws_close_frame(f, 1015, NULL, 0, NULL), 0);
    assert_int_equal(ws_close_frame(f, 999, NULL, 0, NULL), 0);
    assert_int_equal(ws_close_frame(f, 5000, NULL, 0, NULL), 0);
    /* Error codes the reader reports can all be sent. */
    assert_true(ws_close_frame(f, 1002, "x", 1, NULL) > 0);
    assert_true(ws_close_frame(f, 1007, "x", 1, NULL) > 0);
    assert_true(ws_close_frame(f, 1009, "x", 1, NULL) > 0);
    assert_true(ws_close_frame(f, 1011, "x", 1, NULL) > 0);
    /* Long reasons are cut to 123 bytes, never inside a character. */
    char reason[200];
    memset(reason, 'r', sizeof reason);
    n = ws_close_frame(f, 1000, reason, sizeof reason, NULL);
    assert_int_equal(n, 2 + 125);
    memcpy(reason + 122, "\xe2\x82\xac", 3); /* € straddles the 123-byte cut */
    n = ws_close_frame(f, 1000, reason, 125, NULL);
    assert_int_equal(n, 2 + 2 + 122);
    memset(reason, 'r', sizeof reason);
    memcpy(reason + 120, "\xe2\x82\xac", 3); /* ends exactly at 123 */
    n = ws_close_frame(f, 1000, reason, 125, NULL);
    assert_int_equal(n, 2 + 2 + 123);
    /* A masked close frame round-trips through the server-side reader. */
    n = ws_close_frame(f, 4001, "gateway \xc3\xa9", 10, MASK);
    recs_t r;
    stream_t *s = stream_new();
    put_raw(s, f, n);
    run_all_splits(&server_cfg, s, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].type, WS_EV_CLOSE);
    assert_int_equal(r.ev[0].code, 4001);
    assert_memory_equal(r.ev[0].data, "gateway \xc3\xa9", 10);
    recs_free(&r);
    free(s);
}

static void test_control_writer(void **state) {
    (void)state;
    uint8_t f[WS_MAX_CONTROL_FRAME];
    uint8_t p[126];
    memset(p, 'z', sizeof p);
    assert_int_equal(ws_control_frame(f, WS_OP_PING, p, 125, NULL), 127);
    assert_int_equal(f[0], 0x89);
    assert_int_equal(f[1], 125);
    assert_int_equal(ws_control_frame(f, WS_OP_PONG, p, 125, MASK), 131);
    assert_int_equal(f[0], 0x8a);
    assert_int_equal(f[1], 0x80 | 125);
    assert_int_equal(ws_control_frame(f, WS_OP_PING, p, 126, NULL), 0);
    assert_int_equal(ws_control_frame(f, WS_OP_CLOSE, p, 1, NULL), 0);
    assert_int_equal(ws_control_frame(f, WS_OP_TEXT, p, 1, NULL), 0);
    assert_int_equal(ws_control_frame(f, WS_OP_PONG, NULL, 0, NULL), 2);
    /* Masked pong round-trip. */
    size_t n = ws_control_frame(f, WS_OP_PONG, "Hello", 5, MASK);
    assert_memory_equal(f, ((uint8_t[]){0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51,
                                        0x58}),
                        n);
}

/* ------------------------------------------------------------------------------------ */
/* masking, ownership, backpressure, preallocation, direct reads                        */

static void test_mask_offsets_and_alignment(void **state) {
    (void)state;
    uint8_t src[300], dst[300], ref[300];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)rnd();
    const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    for (size_t off = 0; off < 8; off++)
        for (size_t align = 0; align < 16; align++)
            for (size_t len = 0; len < 140; len += (len < 70 ? 1 : 13)) {
                for (size_t i = 0; i < len; i++)
                    ref[i] = src[align + i] ^ key[(off + i) % 4];
                ws_mask(dst + (15 - align), src + align, len, key, off);
                assert_memory_equal(dst + (15 - align), ref, len);
                /* In place. */
                memcpy(dst + align, src + align, len);
                ws_mask(dst + align, dst + align, len, key, off);
                assert_memory_equal(dst + align, ref, len);
            }
}

static void test_backpressure(void **state) {
    (void)state;
    stream_t *s = stream_new();
    put_frame(s, WS_OP_TEXT, true, "one", 3, MASK);
    put_frame(s, WS_OP_TEXT, true, "two", 3, MASK);
    put_frame(s, WS_OP_PING, true, "", 0, MASK);
    put_frame(s, WS_OP_TEXT, true, "three", 5, MASK);
    ws_reader_t r;
    ws_event_t ev;
    ws_reader_init(&r, NULL);
    /* The first call stops right after the first frame. */
    size_t used = ws_reader_feed(&r, s->bytes, s->len, &ev);
    assert_int_equal(used, 2 + 4 + 3);
    assert_int_equal(ev.type, WS_EV_MESSAGE);
    assert_memory_equal(ev.data, "one", 4);
    free(ev.data);
    /* The caller pauses; the rest moves to another buffer and the original is wiped:
     * the reader must not have kept a pointer into it. */
    size_t rest = s->len - used;
    uint8_t *copy = malloc(rest);
    assert_non_null(copy);
    memcpy(copy, s->bytes + used, rest);
    memset(s->bytes, 0xAA, s->len);
    const char *want[] = {"two", NULL, "three"};
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        used = ws_reader_feed(&r, copy + off, rest - off, &ev);
        off += used;
        if (want[i]) {
            assert_int_equal(ev.type, WS_EV_MESSAGE);
            assert_string_equal((char *)ev.data, want[i]);
            free(ev.data);
        } else {
            assert_int_equal(ev.type, WS_EV_PING);
        }
    }
    assert_int_equal(off, rest);
    assert_int_equal(ws_reader_feed(&r, copy + off, 0, &ev), 0);
    assert_int_equal(ev.type, WS_EV_NONE);
    assert_int_equal(ws_reader_feed(&r, NULL, 0, &ev), 0);
    assert_int_equal(ev.type, WS_EV_NONE);
    /* Paused in the middle of a fragmented message: state survives across calls. */
    s->len = 0;
    put_frame(s, WS_OP_BINARY, false, "ab", 2, MASK);
    size_t first = s->len;
    put_frame(s, WS_OP_CONTINUATION, true, "cd", 2, MASK);
    assert_int_equal(ws_reader_feed(&r, s->bytes, first, &ev), first);
    assert_int_equal(ev.type, WS_EV_NONE);
    assert_int_equal(ws_reader_feed(&r, s->bytes + first, s->len - first, &ev), s->len - first);
    assert_int_equal(ev.type, WS_EV_MESSAGE);
    assert_memory_equal(ev.data, "abcd", 5);
    free(ev.data);
    ws_reader_free(&r);
    free(copy);
    free(s);
}

static void test_empty_message_ownership(void **state) {
    (void)state;
    stream_t *s = stream_new();
    put_frame(s, WS_OP_TEXT, true, "", 0, MASK);
    ws_reader_t r;
    ws_event_t ev;
    ws_reader_init(&r, NULL);
    assert_int_equal(ws_reader_feed(&r, s->bytes, s->len, &ev), s->len);
    assert_int_equal(ev.type, WS_EV_MESSAGE);
    assert_int_equal(ev.len, 0);
    assert_non_null(ev.data);
    assert_int_equal(ev.data[0], 0);
    free(ev.data);
    /* Freeing a reader in the middle of a message releases that message (ASan checks). */
    s->len = 0;
    put_frame(s, WS_OP_TEXT, false, "abc", 3, MASK);
    assert_int_equal(ws_reader_feed(&r, s->bytes, s->len, &ev), s->len);
    ws_reader_free(&r);
    free(s);
}

/* The header alone sizes the message buffer: the direct-read region right after a header
 * is the whole frame (one allocation), or max_prealloc of it when bounded. */
static void test_prealloc_and_direct_read(void **state) {
    (void)state;
    const size_t N = 100000;
    uint8_t *plain = malloc(N), *wire = malloc(N);
    assert_non_null(plain);
    assert_non_null(wire);
    for (size_t i = 0; i < N; i++)
        plain[i] = (uint8_t)('A' + i % 50);
    ws_mask(wire, plain, N, MASK, 0);
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header(h, WS_OP_TEXT, true, N, MASK);

    for (int bounded = 0; bounded < 2; bounded++) {
        ws_reader_config_t cfg = {.role = WS_ROLE_SERVER, .max_prealloc = bounded ? 4096 : 0};
        ws_reader_t r;
        ws_event_t ev;
        ws_reader_init(&r, &cfg);
        size_t cap;
        assert_null(ws_reader_direct_buf(&r, 1, &cap)); /* no frame yet */
        assert_int_equal(ws_reader_feed(&r, h, hl, &ev), hl);
        assert_int_equal(ev.type, WS_EV_NONE);
        /* 10 bytes through the normal path, so the direct region starts at an odd mask
         * offset. */
        assert_int_equal(ws_reader_feed(&r, wire, 10, &ev), 10);
        size_t off = 10;
        uint8_t *buf = ws_reader_direct_buf(&r, 1, &cap);
        assert_non_null(buf);
        /* Bounded: the 4096 bytes allocated from the header, less the 10 already taken. */
        assert_int_equal(cap, bounded ? 4096 - 10 : N - 10);
        assert_null(ws_reader_direct_buf(&r, N, &cap)); /* below min_size */
        while (off < N) {
            buf = ws_reader_direct_buf(&r, 1, &cap);
            assert_non_null(buf);
            size_t n = cap < 3333 ? cap : 3333; /* short "reads" */
            memcpy(buf, wire + off, n);
            ws_reader_direct_commit(&r, n, &ev);
            off += n;
            if (off < N)
                assert_int_equal(ev.type, WS_EV_NONE);
        }
        assert_int_equal(ev.type, WS_EV_MESSAGE);
        assert_int_equal(ev.len, N);
        assert_memory_equal(ev.data, plain, N);
        assert_int_equal(ev.data[N], 0);
        free(ev.data);
        /* The same with bounded preallocation through ws_reader_feed. */
        stream_t *s = stream_new();
        put_raw(s, h, hl);
        put_raw(s, wire, N);
        recs_t rs;
        run_all_splits(&cfg, s, &rs);
        assert_int_equal(rs.n, 1);
        assert_memory_equal(rs.ev[0].data, plain, N);
        recs_free(&rs);
        free(s);
        ws_reader_free(&r);
    }

    /* Direct reads validate UTF-8 too, and control frames are never lent out. */
    ws_reader_t r;
    ws_event_t ev;
    ws_reader_init(&r, NULL);
    hl = ws_frame_header(h, WS_OP_TEXT, true, 4, MASK);
    ws_reader_feed(&r, h, hl, &ev);
    size_t cap;
    uint8_t *buf = ws_reader_direct_buf(&r, 1, &cap);
    assert_non_null(buf);
    assert_int_equal(cap, 4);
    ws_mask(buf, (const uint8_t *)"ab\xc0\x80", 4, MASK, 0);
    ws_reader_direct_commit(&r, 4, &ev);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, 1007);
    ws_reader_free(&r);
    ws_reader_init(&r, NULL);
    hl = ws_frame_header(h, WS_OP_PING, true, 4, MASK);
    ws_reader_feed(&r, h, hl, &ev);
    assert_null(ws_reader_direct_buf(&r, 1, &cap));
    ws_reader_free(&r);
    /* Committing more than was lent fails the connection instead of overrunning. */
    ws_reader_init(&r, NULL);
    hl = ws_frame_header(h, WS_OP_BINARY, true, 8, MASK);
    ws_reader_feed(&r, h, hl, &ev);
    assert_non_null(ws_reader_direct_buf(&r, 1, &cap));
    assert_int_equal(cap, 8);
    ws_reader_direct_commit(&r, 9, &ev);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, WS_CLOSE_INTERNAL_ERROR);
    ws_reader_free(&r);
    free(plain);
    free(wire);
}

/* A large random stream: random frame sizes, fragments, masks and chunkings must all
 * yield the same messages as were written. */
static void test_randomized_roundtrip(void **state) {
    (void)state;
    stream_t *s = stream_new();
    uint8_t *payload = malloc(1 << 18);
    assert_non_null(payload);
    for (size_t i = 0; i < (1 << 18); i++)
        payload[i] = (uint8_t)('a' + rnd() % 26);
    for (int round = 0; round < 10; round++) {
        s->len = 0;
        size_t expect_len[16];
        size_t nmsg = 0;
        while (nmsg < 16 && s->len < (1 << 19)) {
            size_t total = 0;
            int frags = 1 + (int)(rnd() % 4);
            for (int f = 0; f < frags; f++) {
                size_t n = rnd() % 3 == 0 ? rnd() % 70000 : rnd() % 300;
                uint8_t m[4] = {(uint8_t)rnd(), (uint8_t)rnd(), (uint8_t)rnd(), (uint8_t)rnd()};
                put_frame(s, f == 0 ? WS_OP_TEXT : WS_OP_CONTINUATION, f == frags - 1, payload + total,
                          n, m);
                total += n;
                if (rnd() % 3 == 0)
                    put_frame(s, WS_OP_PING, true, "x", 1, m);
            }
            expect_len[nmsg++] = total;
        }
        recs_t one, rch;
        run(&server_cfg, s->bytes, s->len, 0, &one);
        run(&server_cfg, s->bytes, s->len, 1 + rnd() % 5000, &rch);
        assert_same(&one, &rch);
        size_t m = 0;
        for (size_t i = 0; i < one.n; i++) {
            if (one.ev[i].type != WS_EV_MESSAGE)
                continue;
            assert_int_equal(one.ev[i].len, expect_len[m]);
            assert_memory_equal(one.ev[i].data, payload, expect_len[m]);
            m++;
        }
        assert_int_equal(m, nmsg);
        recs_free(&one);
        recs_free(&rch);
    }
    free(payload);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_rfc_example),
        cmocka_unit_test(test_handshake_valid_variants),
        cmocka_unit_test(test_handshake_invalid),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_writer_rfc_bytes),
        cmocka_unit_test(test_length_boundaries),
        cmocka_unit_test(test_non_minimal_lengths),
        cmocka_unit_test(test_split_invariance),
        cmocka_unit_test(test_fragmentation_interleaved_ping),
        cmocka_unit_test(test_control_frame_limits),
        cmocka_unit_test(test_reserved_bits_and_opcodes),
        cmocka_unit_test(test_masking_rules),
        cmocka_unit_test(test_fragmentation_errors),
        cmocka_unit_test(test_max_message_size),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_utf8_boundaries),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_utf8_fast_path_offsets),
        cmocka_unit_test(test_utf8_across_fragments),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_close_writer),
        cmocka_unit_test(test_control_writer),
        cmocka_unit_test(test_mask_offsets_and_alignment),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_empty_message_ownership),
        cmocka_unit_test(test_prealloc_and_direct_read),
        cmocka_unit_test(test_randomized_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
