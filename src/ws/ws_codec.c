/* WebSocket codec (RFC 6455). See ws_codec.h for the contract and docs/ws.md for the design.
 *
 * The reader is a small state machine fed arbitrary chunks. The only bytes it copies are
 * the (at most 14) header bytes of a header that arrives split, and control payloads (at
 * most 125 bytes). Data payload bytes go exactly once from the caller's buffer into the
 * buffer that is handed over with the message, unmasked on the way (or not even that, with
 * the direct-read API, which unmasks in place). */
#include "ws/ws_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ---------------------------------------------------------------------------------------
 * Handshake
 * ------------------------------------------------------------------------------------- */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **p, size_t *n) {
    while (*n > 0 && is_ows((*p)[0])) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*p)[*n - 1]))
        (*n)--;
}

static char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* Whether a comma-separated token list (RFC 9110 5.6.1: empty elements and OWS allowed)
 * holds `token`, compared ASCII case-insensitively. */
static bool token_list_has(const char *list, size_t n, const char *token) {
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && list[j] != ',')
            j++;
        const char *e = list + i;
        size_t elen = j - i;
        trim(&e, &elen);
        if (elen == tlen) {
            size_t k = 0;
            while (k < tlen && ascii_lower(e[k]) == token[k])
                k++;
            if (k == tlen)
                return true;
        }
        i = j + 1;
    }
    return false;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* 16 bytes encode to 22 significant characters + "=="; the 22nd carries 2 data bits, so its
 * low 4 bits must be zero for a canonical encoding (RFC 4648 3.5). We insist on canonical
 * form: every real client produces it, and "decodes to 16 bytes" is then unambiguous. */
static bool key_valid(const char *k, size_t n) {
    trim(&k, &n);
    if (n != 24 || k[22] != '=' || k[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (b64_value(k[i]) < 0)
            return false;
    return (b64_value(k[21]) & 0x0f) == 0;
}

int ws_handshake_validate(const ws_handshake_req_t *req, int *http_status, const char **reason) {
    *http_status = 400;
    if (!req->upgrade) {
        *reason = "missing Upgrade header";
        return -EINVAL;
    }
    if (!token_list_has(req->upgrade, req->upgrade_len, "websocket")) {
        *reason = "Upgrade header does not name websocket";
        return -EINVAL;
    }
    if (!req->connection) {
        *reason = "missing Connection header";
        return -EINVAL;
    }
    if (!token_list_has(req->connection, req->connection_len, "upgrade")) {
        *reason = "Connection header does not include upgrade";
        return -EINVAL;
    }
    if (!req->version) {
        *reason = "missing Sec-WebSocket-Version header";
        return -EINVAL;
    }
    const char *v = req->version;
    size_t vn = req->version_len;
    trim(&v, &vn);
    if (vn != 2 || v[0] != '1' || v[1] != '3') {
        *http_status = 426;
        *reason = "unsupported Sec-WebSocket-Version (only 13 is supported)";
        return -EINVAL;
    }
    if (!req->key) {
        *reason = "missing Sec-WebSocket-Key header";
        return -EINVAL;
    }
    if (!key_valid(req->key, req->key_len)) {
        *reason = "Sec-WebSocket-Key is not the base64 encoding of 16 bytes";
        return -EINVAL;
    }
    *http_status = 0;
    *reason = NULL;
    return 0;
}

int ws_handshake_accept(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int rc = -EIO;
    trim(&key, &key_len);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 || EVP_DigestUpdate(ctx, key, key_len) != 1 ||
        EVP_DigestUpdate(ctx, ws_guid, sizeof ws_guid - 1) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 20)
        goto cleanup;
    if (EVP_EncodeBlock((unsigned char *)out, md, (int)md_len) != WS_ACCEPT_LEN)
        goto cleanup;
    out[WS_ACCEPT_LEN] = '\0';
    rc = 0;
cleanup:
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Masking
 * ------------------------------------------------------------------------------------- */

void ws_mask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4], size_t offset) {
    /* Rotate the key so that index 0 of the rotated key lines up with src[0]; every word
     * below starts at a multiple of 4 from src, so the same rotated key applies to all. */
    uint8_t m[4] = {mask[offset & 3], mask[(offset + 1) & 3], mask[(offset + 2) & 3],
                    mask[(offset + 3) & 3]};
    uint32_t m32;
    memcpy(&m32, m, 4);
    size_t i = 0;
#ifdef __SSE2__
    const __m128i vm = _mm_set1_epi32((int)m32);
    for (; i + 64 <= len; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, vm));
        _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, vm));
        _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, vm));
        _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, vm));
    }
    for (; i + 16 <= len; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, vm));
    }
#endif
    const uint64_t m64 = (uint64_t)m32 | ((uint64_t)m32 << 32);
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= m64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < len; i++)
        dst[i] = src[i] ^ m[i & 3];
}

/* ws_mask that also says whether every output byte is ASCII, so ASCII text (all of what
 * Chromium's encoder emits, most of what clients send) is validated within the unmasking
 * pass instead of a second pass over the bytes. */
static bool mask_ascii(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                       size_t offset) {
    uint8_t m[4] = {mask[offset & 3], mask[(offset + 1) & 3], mask[(offset + 2) & 3],
                    mask[(offset + 3) & 3]};
    uint32_t m32;
    memcpy(&m32, m, 4);
    size_t i = 0;
    uint64_t acc = 0;
#ifdef __SSE2__
    const __m128i vm = _mm_set1_epi32((int)m32);
    __m128i vacc = _mm_setzero_si128();
    for (; i + 64 <= len; i += 64) {
        __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), vm);
        __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 16)), vm);
        __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 32)), vm);
        __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 48)), vm);
        _mm_storeu_si128((__m128i *)(dst + i), a);
        _mm_storeu_si128((__m128i *)(dst + i + 16), b);
        _mm_storeu_si128((__m128i *)(dst + i + 32), c);
        _mm_storeu_si128((__m128i *)(dst + i + 48), d);
        vacc = _mm_or_si128(vacc, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)));
    }
    for (; i + 16 <= len; i += 16) {
        __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), vm);
        _mm_storeu_si128((__m128i *)(dst + i), a);
        vacc = _mm_or_si128(vacc, a);
    }
    if (_mm_movemask_epi8(vacc))
        acc = 0x80;
#endif
    const uint64_t m64 = (uint64_t)m32 | ((uint64_t)m32 << 32);
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= m64;
        memcpy(dst + i, &w, 8);
        acc |= w;
    }
    for (; i < len; i++) {
        dst[i] = src[i] ^ m[i & 3];
        acc |= dst[i];
    }
    return (acc & 0x8080808080808080ull) == 0;
}

/* ---------------------------------------------------------------------------------------
 * UTF-8 (incremental, so a character may be split across chunks and fragments)
 * ------------------------------------------------------------------------------------- */

/* Byte classes: 0 ASCII, 1 80-8F, 2 90-9F, 3 A0-BF, 4 never valid (C0 C1 F5-FF), 5 C2-DF,
 * 6 E0, 7 E1-EC EE EF, 8 ED, 9 F0, 10 F1-F3, 11 F4. The classes split the continuation
 * range exactly where the second byte after E0/ED/F0/F4 is restricted (overlongs,
 * surrogates, > U+10FFFF). */
#define R16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
static const uint8_t utf8_class[256] = {
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),
    R16(1), R16(2), R16(3), R16(3),
    4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    R16(5),
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7,
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};
#undef R16

/* States: 0 accept; 1/2/3 need that many 80-BF bytes; 4 after E0 (A0-BF); 5 after ED
 * (80-9F); 6 after F0 (90-BF); 7 after F4 (80-8F); 8 reject (sticky). */
enum { U8_ACCEPT = 0, U8_REJECT = 8 };
static const uint8_t utf8_next[9][12] = {
    /*         A  80 90 A0 xx C2 E0 E1 ED F0 F1 F4 */
    /* 0 */ {0, 8, 8, 8, 8, 1, 4, 2, 5, 6, 3, 7},
    /* 1 */ {8, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 2 */ {8, 1, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 3 */ {8, 2, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 4 */ {8, 8, 8, 1, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 5 */ {8, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 6 */ {8, 8, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 7 */ {8, 2, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 8 */ {8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8},
};

/* Continues validation from `st`; returns the new state (U8_REJECT on invalid input).
 * CDP text is almost all ASCII, so ASCII is skipped 64 bytes at a time. */
static uint32_t utf8_run(uint32_t st, const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (st == U8_ACCEPT) {
#ifdef __SSE2__
            for (; i + 64 <= n; i += 64) {
                __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
                __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
                __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
                __m128i d = _mm_loadu_si128((const __m128i *)(s + i + 48));
                __m128i o = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
                if (_mm_movemask_epi8(o))
                    break;
            }
            for (; i + 16 <= n; i += 16)
                if (_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + i))))
                    break;
#endif
            for (; i + 8 <= n; i += 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
            }
            while (i < n && s[i] < 0x80)
                i++;
            if (i == n)
                break;
        }
        st = utf8_next[st][utf8_class[s[i]]];
        if (st == U8_REJECT)
            return U8_REJECT;
        i++;
    }
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Reader
 * ------------------------------------------------------------------------------------- */

enum { PH_HEADER = 0, PH_PAYLOAD, PH_CLOSED, PH_ERROR };

/* Payloads are unmasked in blocks that fit L1: a text block that is not all ASCII is
 * validated by the DFA right after, while still in cache, so a 20 MB frame fed at once is
 * not streamed through memory twice. */
#define BLOCK (16u * 1024u)
#define COPY_FIRST_MIN 2048u

void ws_reader_init(ws_reader_t *r, const ws_reader_config_t *cfg) {
    memset(r, 0, sizeof *r);
    ws_reader_config_t def = {0};
    if (!cfg)
        cfg = &def;
    r->max_message = cfg->max_message_size ? cfg->max_message_size : WS_DEFAULT_MAX_MESSAGE;
    /* Keeps max_message + 1 and capacity doubling free of overflow. */
    if (r->max_message > SIZE_MAX / 4)
        r->max_message = SIZE_MAX / 4;
    r->max_prealloc = cfg->max_prealloc;
    r->expect_masked = cfg->role == WS_ROLE_SERVER;
    r->phase = PH_HEADER;
}

static void msg_reset(ws_reader_t *r) {
    free(r->msg);
    r->msg = NULL;
    r->msg_len = r->msg_cap = 0;
    r->msg_open = false;
    r->utf8_state = U8_ACCEPT;
}

void ws_reader_free(ws_reader_t *r) { msg_reset(r); }

static void set_error(ws_reader_t *r, ws_event_t *ev, uint16_t code, const char *reason) {
    msg_reset(r);
    r->phase = PH_ERROR;
    r->err_code = code;
    r->err_reason = reason;
    ev->type = WS_EV_ERROR;
    ev->close_code = code;
    ev->reason = reason;
}

/* Room for `extra` more payload bytes plus the NUL. The first allocation of a message is
 * exact (a single-frame message is sized from its header once); later growth at least
 * doubles, so many small fragments cost amortised O(1) reallocations. Never exceeds
 * max_message + 1. */
static int msg_reserve(ws_reader_t *r, size_t extra) {
    size_t need = r->msg_len + extra + 1;
    if (need <= r->msg_cap)
        return 0;
    size_t cap = need;
    if (r->msg_cap > 0 && cap < r->msg_cap * 2)
        cap = r->msg_cap * 2;
    if (cap > r->max_message + 1)
        cap = r->max_message + 1;
    uint8_t *p = realloc(r->msg, cap);
    if (!p)
        return -ENOMEM;
    r->msg = p;
    r->msg_cap = cap;
    return 0;
}

/* How much to allocate up front for a data frame of `len` bytes. */
static size_t prealloc_size(const ws_reader_t *r, uint64_t len) {
    if (r->max_prealloc && len > r->max_prealloc)
        return r->max_prealloc;
    return (size_t)len;
}

/* Header length from its first two bytes. */
static size_t header_size(const uint8_t *h) {
    uint8_t l7 = h[1] & 0x7f;
    return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* Validates a complete header and sets up the frame. Returns false with *ev filled on error. */
static bool start_frame(ws_reader_t *r, const uint8_t *h, ws_event_t *ev) {
    if (h[0] & 0x70) {
        set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension negotiated)");
        return false;
    }
    uint8_t op = h[0] & 0x0f;
    bool fin = (h[0] & 0x80) != 0;
    bool masked = (h[1] & 0x80) != 0;
    if (op != WS_OP_CONTINUATION && op != WS_OP_TEXT && op != WS_OP_BINARY && op != WS_OP_CLOSE &&
        op != WS_OP_PING && op != WS_OP_PONG) {
        set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "unknown opcode");
        return false;
    }
    if (masked != r->expect_masked) {
        set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR,
                  masked ? "masked frame from the server" : "unmasked frame from the client");
        return false;
    }
    uint8_t l7 = h[1] & 0x7f;
    uint64_t len = l7;
    size_t at = 2;
    if (l7 == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
        at = 4;
        /* RFC 6455 5.2: the minimal number of bytes MUST be used. */
        if (len < 126) {
            set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "non-minimal payload length");
            return false;
        }
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | h[2 + i];
        at = 10;
        if (len >> 63) {
            set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "payload length with the high bit set");
            return false;
        }
        if (len < 65536) {
            set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "non-minimal payload length");
            return false;
        }
    }
    if (masked)
        memcpy(r->mask, h + at, 4);
    r->frame_op = op;
    r->frame_fin = fin;
    r->frame_masked = masked;
    r->frame_left = len;
    r->mask_off = 0;

    if (op >= 0x8) {
        if (!fin) {
            set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "fragmented control frame");
            return false;
        }
        if (len > WS_MAX_CONTROL_PAYLOAD) {
            set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "control frame payload over 125 bytes");
            return false;
        }
        r->ctl_len = 0;
        return true;
    }
    if (op == WS_OP_CONTINUATION) {
        if (!r->msg_open) {
            set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "continuation frame without a message");
            return false;
        }
    } else {
        if (r->msg_open) {
            set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR,
                      "new data frame while a fragmented message is open");
            return false;
        }
        r->msg_open = true;
        r->msg_op = op;
        r->msg_len = 0;
        r->utf8_state = U8_ACCEPT;
    }
    /* Checked against the declared length, before any payload byte is buffered. */
    if (len > r->max_message - r->msg_len) {
        set_error(r, ev, WS_CLOSE_TOO_BIG, "message too big");
        return false;
    }
    if (msg_reserve(r, prealloc_size(r, len)) != 0) {
        set_error(r, ev, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return false;
    }
    return true;
}

/* A frame's payload is complete. Returns true if that produced an event. */
static bool end_frame(ws_reader_t *r, ws_event_t *ev) {
    r->phase = PH_HEADER;
    switch (r->frame_op) {
    case WS_OP_PING:
    case WS_OP_PONG:
        ev->type = r->frame_op == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
        ev->data = r->ctl;
        ev->len = r->ctl_len;
        return true;
    case WS_OP_CLOSE: {
        if (r->ctl_len == 1) {
            set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte body");
            return true;
        }
        uint16_t code = WS_CLOSE_NO_STATUS;
        if (r->ctl_len >= 2) {
            code = (uint16_t)((r->ctl[0] << 8) | r->ctl[1]);
            if (!ws_close_code_valid(code)) {
                set_error(r, ev, WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
                return true;
            }
            if (utf8_run(U8_ACCEPT, r->ctl + 2, r->ctl_len - 2u) != U8_ACCEPT) {
                set_error(r, ev, WS_CLOSE_INVALID_PAYLOAD, "close reason is not valid UTF-8");
                return true;
            }
        }
        /* A message still open is abandoned: the peer is done. */
        msg_reset(r);
        r->phase = PH_CLOSED;
        ev->type = WS_EV_CLOSE;
        ev->close_code = code;
        ev->data = r->ctl_len >= 2 ? r->ctl + 2 : r->ctl;
        ev->len = r->ctl_len >= 2 ? r->ctl_len - 2u : 0;
        return true;
    }
    default:
        break;
    }
    if (!r->frame_fin)
        return false;
    if (r->msg_op == WS_OP_TEXT && r->utf8_state != U8_ACCEPT) {
        set_error(r, ev, WS_CLOSE_INVALID_PAYLOAD, "text message ends inside a UTF-8 sequence");
        return true;
    }
    r->msg[r->msg_len] = '\0';
    ev->type = WS_EV_MESSAGE;
    ev->opcode = (ws_opcode_t)r->msg_op;
    ev->data = r->msg;
    ev->len = r->msg_len;
    /* Ownership moved: forget the buffer without freeing it. */
    r->msg = NULL;
    r->msg_len = r->msg_cap = 0;
    r->msg_open = false;
    return true;
}

/* Unmasks n payload bytes from src (may equal the destination) into the message buffer,
 * which has room, and validates text as it goes. False with *ev filled on invalid UTF-8. */
static bool take_data(ws_reader_t *r, const uint8_t *src, size_t n, ws_event_t *ev) {
    uint8_t *dst = r->msg + r->msg_len;
    bool text = r->msg_op == WS_OP_TEXT;
    if (!text && !r->frame_masked) {
        if (dst != src)
            memcpy(dst, src, n);
    } else {
        /* Unmasked text goes through the same pass with a zero key. */
        static const uint8_t no_mask[4] = {0, 0, 0, 0};
        const uint8_t *key = r->frame_masked ? r->mask : no_mask;
        /* Large chunks: memcpy a block into the message buffer, then unmask it in place
         * while it is in L1. Measured faster than one load-xor-store pass into the
         * (usually cache-cold) message buffer, because libc's memcpy writes whole lines
         * without reading them first. Small chunks take the single pass. */
        bool copy_first = dst != src && n >= COPY_FIRST_MIN;
        for (size_t done = 0; done < n;) {
            size_t b = n - done < BLOCK ? n - done : BLOCK;
            const uint8_t *from = src + done;
            if (copy_first) {
                memcpy(dst + done, from, b);
                from = dst + done;
            }
            size_t off = (r->mask_off + done) & 3;
            if (!text) {
                ws_mask(dst + done, from, b, key, off);
            } else {
                bool ascii = mask_ascii(dst + done, from, b, key, off);
                /* ASCII keeps an accepting state accepting; anything else needs the DFA
                 * (also an ASCII block after a split character, which the DFA rejects). */
                if (!ascii || r->utf8_state != U8_ACCEPT)
                    r->utf8_state = utf8_run(r->utf8_state, dst + done, b);
                if (r->utf8_state == U8_REJECT) {
                    set_error(r, ev, WS_CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
                    return false;
                }
            }
            done += b;
        }
    }
    r->msg_len += n;
    r->mask_off = (uint32_t)((r->mask_off + n) & 3);
    r->frame_left -= n;
    return true;
}

size_t ws_reader_feed(ws_reader_t *r, const void *data, size_t len, ws_event_t *ev) {
    const uint8_t *p = data;
    const uint8_t *end = len ? p + len : p; /* (NULL, 0) is a valid empty feed */
    memset(ev, 0, sizeof *ev);
    if (r->phase == PH_ERROR) {
        ev->type = WS_EV_ERROR;
        ev->close_code = r->err_code;
        ev->reason = r->err_reason;
        return 0;
    }
    if (r->phase == PH_CLOSED || len == 0)
        return len;
    for (;;) {
        if (r->phase == PH_HEADER) {
            const uint8_t *h;
            if (r->hdr_have == 0 && end - p >= 2 && (size_t)(end - p) >= header_size(p)) {
                /* Common case: the whole header is in this chunk; parse it in place. */
                h = p;
                p += header_size(p);
            } else {
                /* Split header: collect it. The first two bytes tell its full size. */
                while (p < end && r->hdr_have < 2)
                    r->hdr[r->hdr_have++] = *p++;
                if (r->hdr_have < 2)
                    return len;
                size_t need = header_size(r->hdr);
                while (p < end && r->hdr_have < need)
                    r->hdr[r->hdr_have++] = *p++;
                if (r->hdr_have < need)
                    return len;
                r->hdr_have = 0;
                h = r->hdr;
            }
            if (!start_frame(r, h, ev))
                return (size_t)(p - (const uint8_t *)data);
            if (r->frame_left == 0) {
                if (end_frame(r, ev))
                    return (size_t)(p - (const uint8_t *)data);
                continue;
            }
            r->phase = PH_PAYLOAD;
        }
        /* PH_PAYLOAD */
        if (p == end)
            return len;
        size_t n = (size_t)(end - p);
        if (n > r->frame_left)
            n = (size_t)r->frame_left;
        if (r->frame_op >= 0x8) {
            uint8_t *dst = r->ctl + r->ctl_len;
            if (r->frame_masked)
                ws_mask(dst, p, n, r->mask, r->mask_off);
            else
                memcpy(dst, p, n);
            r->ctl_len = (uint8_t)(r->ctl_len + n);
            r->mask_off = (uint32_t)((r->mask_off + n) & 3);
            r->frame_left -= n;
        } else {
            /* With max_prealloc the buffer may be smaller than the frame; grow it. */
            if (msg_reserve(r, n) != 0) {
                set_error(r, ev, WS_CLOSE_INTERNAL_ERROR, "out of memory");
                return (size_t)(p - (const uint8_t *)data);
            }
            if (!take_data(r, p, n, ev))
                return (size_t)(p - (const uint8_t *)data) + n;
        }
        p += n;
        if (r->frame_left == 0 && end_frame(r, ev))
            return (size_t)(p - (const uint8_t *)data);
    }
}

uint8_t *ws_reader_direct_buf(ws_reader_t *r, size_t min_size, size_t *cap) {
    *cap = 0;
    if (r->phase != PH_PAYLOAD || r->frame_op >= 0x8 || r->frame_left < min_size ||
        r->frame_left == 0)
        return NULL;
    size_t room = r->msg_cap ? r->msg_cap - r->msg_len - 1 : 0;
    if (room < min_size || room == 0) {
        /* Only grow when what is left is too small to be worth a read. */
        size_t want = prealloc_size(r, r->frame_left);
        if (want < min_size)
            want = min_size;
        if (msg_reserve(r, want) != 0)
            return NULL;
        room = r->msg_cap - r->msg_len - 1;
    }
    *cap = room < r->frame_left ? room : (size_t)r->frame_left;
    return r->msg + r->msg_len;
}

void ws_reader_direct_commit(ws_reader_t *r, size_t n, ws_event_t *ev) {
    memset(ev, 0, sizeof *ev);
    if (n == 0)
        return;
    /* A commit that does not fit the lent region is a caller bug; fail the connection
     * rather than write past the buffer or into the next frame's accounting. */
    if (r->phase != PH_PAYLOAD || r->frame_op >= 0x8 || n > r->frame_left || !r->msg ||
        n > r->msg_cap - r->msg_len - 1) {
        set_error(r, ev, WS_CLOSE_INTERNAL_ERROR, "direct read commit outside the lent buffer");
        return;
    }
    uint8_t *at = r->msg + r->msg_len;
    if (!take_data(r, at, n, ev))
        return;
    if (r->frame_left == 0)
        end_frame(r, ev);
}

/* ---------------------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------------------- */

bool ws_close_code_valid(uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], ws_opcode_t op, bool fin, uint64_t payload_len,
                       const uint8_t *mask) {
    switch (op) {
    case WS_OP_CONTINUATION:
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        break;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!fin || payload_len > WS_MAX_CONTROL_PAYLOAD)
            return 0;
        break;
    default:
        return 0;
    }
    if (payload_len >> 63)
        return 0;
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | op);
    uint8_t mbit = mask ? 0x80 : 0;
    if (payload_len < 126) {
        out[1] = (uint8_t)(mbit | payload_len);
    } else if (payload_len <= 0xffff) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

size_t ws_control_frame(uint8_t out[WS_MAX_CONTROL_FRAME], ws_opcode_t op, const void *payload,
                        size_t len, const uint8_t *mask) {
    if ((op != WS_OP_PING && op != WS_OP_PONG) || len > WS_MAX_CONTROL_PAYLOAD)
        return 0;
    size_t h = ws_frame_header(out, op, true, len, mask);
    if (len) {
        if (mask)
            ws_mask(out + h, payload, len, mask, 0);
        else
            memcpy(out + h, payload, len);
    }
    return h + len;
}

size_t ws_close_frame(uint8_t out[WS_MAX_CONTROL_FRAME], uint16_t code, const char *reason,
                      size_t reason_len, const uint8_t *mask) {
    if (code == 0) {
        if (reason_len)
            return 0; /* a reason cannot be sent without a code */
        return ws_frame_header(out, WS_OP_CLOSE, true, 0, mask);
    }
    if (!ws_close_code_valid(code))
        return 0;
    if (reason_len > WS_MAX_CONTROL_PAYLOAD - 2) {
        reason_len = WS_MAX_CONTROL_PAYLOAD - 2;
        /* Do not cut a character in two: back up over continuation bytes. */
        while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xc0) == 0x80)
            reason_len--;
    }
    uint8_t body[WS_MAX_CONTROL_PAYLOAD];
    body[0] = (uint8_t)(code >> 8);
    body[1] = (uint8_t)code;
    if (reason_len)
        memcpy(body + 2, reason, reason_len);
    size_t n = 2 + reason_len;
    size_t h = ws_frame_header(out, WS_OP_CLOSE, true, n, mask);
    if (mask)
        ws_mask(out + h, body, n, mask, 0);
    else
        memcpy(out + h, body, n);
    return h + n;
}
