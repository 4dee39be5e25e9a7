/* WebSocket (RFC 6455) codec: server handshake checks, a streaming frame reader and a frame
 * writer. Pure: no I/O, no event loop, no global state.
 *
 * Ownership, in one place:
 *  - Handshake helpers borrow their (ptr,len) slices for the duration of the call.
 *  - ws_reader_t is caller-allocated (embed it in the connection); it owns the partially
 *    assembled message until that message is delivered, and ws_reader_free releases it.
 *  - A delivered WS_EV_MESSAGE buffer is owned by the caller from then on: free() it.
 *  - Control payloads (ping/pong/close reason) are borrowed from the reader and stay valid
 *    until the next call on that reader.
 *  - The reader never keeps a pointer to the bytes it was fed: whatever it did not consume
 *    is still the caller's (that is how backpressure works, see ws_reader_feed).
 *  - The writer only builds headers (and tiny control frames) into caller buffers; payloads
 *    are never copied, the caller writev()s header + payload. */
#ifndef BROWSERD_WS_WS_CODEC_H
#define BROWSERD_WS_WS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------
 * Handshake (server side)
 * ------------------------------------------------------------------------------------- */

/* Header values of the upgrade request as (ptr,len); ptr == NULL means the header is absent.
 * If a header was repeated, the HTTP layer passes the values joined with ", " (RFC 9110
 * 5.3), which is what the token-list checks expect. The request line (GET, HTTP/1.1) and
 * Host are the HTTP layer's to check. */
typedef struct {
    const char *upgrade;
    size_t upgrade_len;
    const char *connection;
    size_t connection_len;
    const char *version; /* Sec-WebSocket-Version */
    size_t version_len;
    const char *key; /* Sec-WebSocket-Key */
    size_t key_len;
} ws_handshake_req_t;

/* Length of a Sec-WebSocket-Accept value (base64 of a SHA-1 digest), without the NUL. */
#define WS_ACCEPT_LEN 28

/* Checks the upgrade headers. Returns 0 if the request may be upgraded, else -EINVAL with
 * *http_status set to the answer to send and *reason to a static, human-readable text:
 *   426 Upgrade Required  when Sec-WebSocket-Version is present but not 13 (the answer must
 *                         carry "Sec-WebSocket-Version: 13", RFC 6455 4.2.2);
 *   400 Bad Request       for everything else (missing/invalid Upgrade, Connection, Key,
 *                         missing Version).
 * The reason is static (never freed, never truncated), so no err buffer is needed. */
int ws_handshake_validate(const ws_handshake_req_t *req, int *http_status, const char **reason);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(trimmed key + RFC 6455 GUID)) into
 * out[WS_ACCEPT_LEN + 1] (NUL-terminated). The key is not validated here (call
 * ws_handshake_validate first). Returns 0, or -EIO if libcrypto fails. */
int ws_handshake_accept(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1]);

/* ---------------------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------------------- */

typedef enum {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
} ws_opcode_t;

/* Close codes the reader reports (RFC 6455 7.4.1). */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_NO_STATUS = 1005, /* reported for a close frame without a body; never sent */
    WS_CLOSE_INVALID_PAYLOAD = 1007,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL_ERROR = 1011, /* out of memory, or a misused direct read */
};

#define WS_DEFAULT_MAX_MESSAGE ((size_t)256 << 20)
#define WS_MAX_HEADER 14          /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_MAX_CONTROL_PAYLOAD 125
#define WS_MAX_CONTROL_FRAME (WS_MAX_HEADER + WS_MAX_CONTROL_PAYLOAD)

typedef enum {
    WS_ROLE_SERVER = 0, /* we are the server: every incoming frame must be masked */
    WS_ROLE_CLIENT = 1, /* we are the client (tests, benches): incoming frames must not be */
} ws_role_t;

/* All-zero is the default configuration: server role, 256 MiB messages, full preallocation. */
typedef struct {
    ws_role_t role;
    /* Largest message (sum of its fragments) accepted; larger → error 1009. 0 → default.
     * Values above SIZE_MAX / 4 are treated as SIZE_MAX / 4. */
    size_t max_message_size;
    /* Upper bound of what is allocated from a declared frame length before the bytes have
     * arrived (the buffer then grows as they do). 0 → no bound: a single-frame message is
     * allocated once at its full size, which is what makes delivery copy-free. Set it when
     * peers are less trusted than the memory budget: a 2-byte header may declare 256 MiB. */
    size_t max_prealloc;
} ws_reader_config_t;

typedef enum {
    WS_EV_NONE = 0, /* every byte fed was consumed; feed more when it arrives */
    WS_EV_MESSAGE,  /* a complete text/binary message; the buffer now belongs to the caller */
    WS_EV_PING,     /* answer with a pong carrying the same payload */
    WS_EV_PONG,
    WS_EV_CLOSE,    /* peer's close frame; the reader ignores anything fed afterwards */
    WS_EV_ERROR,    /* protocol violation: send a close frame with close_code, then close */
} ws_event_type_t;

typedef struct {
    ws_event_type_t type;
    ws_opcode_t opcode; /* MESSAGE: WS_OP_TEXT or WS_OP_BINARY */
    /* MESSAGE: malloc'd, owned by the caller (free()), never NULL even when len == 0, and
     *          NUL-terminated at data[len] (so it can go to Chromium's pipe, whose messages
     *          end with NUL, as len + 1 bytes; and so text can be handed to C string code).
     *          Text messages are valid UTF-8.
     * PING/PONG: the payload; CLOSE: the reason (valid UTF-8). Borrowed, see top. */
    uint8_t *data;
    size_t len;
    /* CLOSE: the peer's code (1005 if the frame had no body). ERROR: the code to send. */
    uint16_t close_code;
    const char *reason; /* ERROR: static text, ≤ 123 bytes so it fits a close frame */
} ws_event_t;

/* Reader state. Caller-allocated; treat the fields as private. */
typedef struct {
    /* configuration */
    size_t max_message;
    size_t max_prealloc;
    bool expect_masked;
    /* phase: see ws_codec.c */
    uint8_t phase;
    /* frame header being assembled when it arrives split */
    uint8_t hdr[WS_MAX_HEADER];
    uint8_t hdr_have;
    /* current frame */
    uint8_t frame_op;
    bool frame_fin;
    bool frame_masked;
    uint8_t mask[4];
    uint32_t mask_off; /* payload bytes of this frame already unmasked, mod 4 */
    uint64_t frame_left;
    /* data message being assembled */
    bool msg_open;
    uint8_t msg_op;
    uint8_t *msg;
    size_t msg_len;
    size_t msg_cap; /* bytes allocated, including room for the terminating NUL */
    uint32_t utf8_state;
    /* control frame payload (the only bytes the reader copies into itself) */
    uint8_t ctl[WS_MAX_CONTROL_PAYLOAD];
    uint8_t ctl_len;
    /* sticky error */
    uint16_t err_code;
    const char *err_reason;
} ws_reader_t;

/* cfg may be NULL (defaults). Does not allocate. */
void ws_reader_init(ws_reader_t *r, const ws_reader_config_t *cfg);
/* Releases a partially assembled message. The reader may be re-initialised afterwards. */
void ws_reader_free(ws_reader_t *r);

/* Parses bytes from the peer, stopping at the first event. Returns the number of bytes
 * consumed and fills *ev:
 *   WS_EV_NONE: all `len` bytes were consumed (and the reader wants more);
 *   any other: the bytes up to and including the frame that produced the event were
 *     consumed; handle the event, then call again with data + consumed, len - consumed.
 * Backpressure: the caller may stop after any event (e.g. while the message is queued to
 * Chromium) and call again later with the unconsumed rest; the reader keeps no pointer to
 * it. Any split of the input into calls gives the same events (down to 1 byte per call).
 * After WS_EV_ERROR the reader is dead: further calls consume nothing and repeat the error.
 * After WS_EV_CLOSE further input is consumed and ignored (RFC 6455 5.5.1). */
size_t ws_reader_feed(ws_reader_t *r, const void *data, size_t len, ws_event_t *ev);

/* Copy-free receive of large payloads: while the reader is inside a data frame's payload
 * it can lend the caller the part of the message buffer those bytes will occupy, so the
 * socket can be read straight into it (libuv: return it from alloc_cb). Returns NULL when
 * that is not possible now (in a header or a control frame, or on allocation failure):
 * use ws_reader_feed with your own buffer then. *cap is at most the rest of the frame, so
 * a read into it never takes bytes of the next frame. ws_reader_direct_commit(n) then
 * accounts for the n bytes written there (n ≤ *cap), unmasking and validating them in
 * place, and reports an event like ws_reader_feed (a completed message, or an error).
 * Only `min_size` and larger regions are offered, so small frames keep using one read
 * buffer. Any other call on the reader between the two invalidates the region; a commit
 * larger than the region lent is refused as an error (1011). */
uint8_t *ws_reader_direct_buf(ws_reader_t *r, size_t min_size, size_t *cap);
void ws_reader_direct_commit(ws_reader_t *r, size_t n, ws_event_t *ev);

/* Writes the header of a frame carrying payload_len bytes into out and returns its length
 * (2..14), or 0 for an invalid request (unknown opcode, control frame with fin == false or
 * payload > 125, payload_len ≥ 2^63). mask == NULL: unmasked (server → client). With a
 * mask (client → server; tests and benches), the caller masks the payload itself with
 * ws_mask(..., offset 0) — the header never includes payload bytes. */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], ws_opcode_t op, bool fin, uint64_t payload_len,
                       const uint8_t *mask);

/* dst[i] = src[i] ^ mask[(offset + i) % 4]. dst == src is allowed (in place); other
 * overlaps are not. Word-at-a-time; any alignment. */
void ws_mask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4], size_t offset);

/* A whole close frame into out[WS_MAX_CONTROL_FRAME]; returns its length, or 0 for a code
 * that must not be sent (< 1000, 1004-1006, 1015, 1016-2999, ≥ 5000). code == 0 sends a
 * close frame without a body. A reason longer than 123 bytes is cut at a UTF-8 character
 * boundary (the reason is expected to be UTF-8). mask as for ws_frame_header; here the
 * body is masked for you. */
size_t ws_close_frame(uint8_t out[WS_MAX_CONTROL_FRAME], uint16_t code, const char *reason,
                      size_t reason_len, const uint8_t *mask);

/* A whole ping or pong frame; returns its length, or 0 if op is not PING/PONG or
 * len > 125. */
size_t ws_control_frame(uint8_t out[WS_MAX_CONTROL_FRAME], ws_opcode_t op, const void *payload,
                        size_t len, const uint8_t *mask);

/* True for codes a peer may put in a close frame (1000-1003, 1007-1014, 3000-4999). */
bool ws_close_code_valid(uint16_t code);

#endif
