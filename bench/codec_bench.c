/* Micro-benchmark of the two hot-path parsers of the CDP gateway (see docs/ws.md):
 *   - the WebSocket reader (src/ws/ws_codec.c) on 20 MB masked frames and on many 200-byte
 *     frames, fed in 64 KiB chunks as socket reads would deliver them;
 *   - the CDP scanner (src/cdp/cdp_scan.c) on a 20 MB screenshot-like message and on small
 *     CDP messages (cJSON measured on the same messages for comparison);
 *   - the recorder (src/cdp/recorder.c) fed the events of a page load as the observer gets them
 *     (scanned once, params handed over as slices), against a cJSON parse of the same params,
 *     which is what the recorder did before it read the scanner's slices (a lower bound of its
 *     old cost: its look-ups in the tree came on top).
 * Each figure is paired with memcpy of the same bytes: the two are timed alternately, rep
 * after rep, so both see the same machine state, and each is the best of its repetitions
 * (the least disturbed). Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID): on the
 * shared 2-core machine, wall time mostly measures who else was running.
 *
 * usage: codec_bench [--quick]   (--quick: fewer repetitions, for a smoke run) */
#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdp/cdp_scan.h"
#include "cdp/recorder.h"
#include "ws/ws_codec.h"

#define BIG (20u << 20)
#define CHUNK (64u << 10)

static int reps = 30;
static volatile uint64_t sink; /* keeps results alive */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void die(const char *what) {
    fprintf(stderr, "codec_bench: %s\n", what);
    exit(1);
}

typedef void (*bench_fn)(void *ctx);

static double time_once(bench_fn fn, void *ctx, int inner) {
    double t0 = now();
    for (int i = 0; i < inner; i++)
        fn(ctx);
    return (now() - t0) / inner;
}

/* Times fn and its baseline alternately; returns fn's MB/s (10^6 bytes) and stores the
 * baseline's in *base_mbps. Both process `bytes` per call. */
static double paired(bench_fn fn, void *ctx, bench_fn base, void *base_ctx, size_t bytes, int inner,
                     double *base_mbps) {
    double best = 1e30, best_base = 1e30;
    fn(ctx); /* warm-up: page faults, malloc arenas, caches */
    base(base_ctx);
    for (int r = 0; r < reps; r++) {
        double tb = time_once(base, base_ctx, inner);
        double t = time_once(fn, ctx, inner);
        if (tb < best_base)
            best_base = tb;
        if (t < best)
            best = t;
    }
    *base_mbps = (double)bytes / best_base / 1e6;
    return (double)bytes / best / 1e6;
}

/* ------------------------------------------------------------------------------------ */
/* baselines                                                                            */

typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    size_t len;
    size_t chunk; /* 0: one call */
} copy_ctx_t;

static void run_memcpy(void *p) {
    copy_ctx_t *c = p;
    if (!c->chunk) {
        memcpy(c->dst, c->src, c->len);
    } else {
        for (size_t off = 0; off < c->len; off += c->chunk) {
            size_t n = c->len - off < c->chunk ? c->len - off : c->chunk;
            memcpy(c->dst + off, c->src + off, n);
        }
    }
    sink += c->dst[c->len - 1];
}

/* ------------------------------------------------------------------------------------ */
/* WebSocket reader                                                                     */

typedef struct {
    const uint8_t *wire;
    size_t len;
    size_t chunk;
    size_t expect_msgs;
    bool direct;
    uint8_t *scratch; /* stands in for the socket: direct reads memcpy from wire */
} ws_ctx_t;

static void run_ws(void *p) {
    ws_ctx_t *c = p;
    ws_reader_t r;
    ws_reader_init(&r, NULL);
    size_t msgs = 0;
    size_t off = 0;
    while (off < c->len) {
        size_t n = c->len - off < c->chunk ? c->len - off : c->chunk;
        ws_event_t ev;
        size_t cap;
        uint8_t *buf = c->direct ? ws_reader_direct_buf(&r, 4096, &cap) : NULL;
        if (buf) {
            /* What recv() into the lent region would do: the kernel's copy is the memcpy. */
            if (n > cap)
                n = cap;
            memcpy(buf, c->wire + off, n);
            ws_reader_direct_commit(&r, n, &ev);
            off += n;
            if (ev.type == WS_EV_MESSAGE) {
                sink += ev.data[ev.len / 2];
                free(ev.data);
                msgs++;
            } else if (ev.type != WS_EV_NONE) {
                die("unexpected event (direct)");
            }
            continue;
        }
        const uint8_t *q = c->wire + off;
        off += n;
        while (n) {
            size_t used = ws_reader_feed(&r, q, n, &ev);
            if (ev.type == WS_EV_NONE)
                break;
            if (ev.type != WS_EV_MESSAGE)
                die("unexpected event");
            sink += ev.data[ev.len / 2];
            free(ev.data);
            msgs++;
            q += used;
            n -= used;
        }
    }
    ws_reader_free(&r);
    if (msgs != c->expect_msgs)
        die("wrong message count");
}

/* Appends a masked frame with a per-frame mask. */
static size_t put_frame(uint8_t *out, ws_opcode_t op, const uint8_t *payload, size_t len, uint32_t seed) {
    uint8_t mask[4] = {(uint8_t)(seed * 2654435761u >> 24), (uint8_t)(seed * 40503u), 0x5a,
                       (uint8_t)(seed | 1)};
    size_t h = ws_frame_header(out, op, true, len, mask);
    ws_mask(out + h, payload, len, mask, 0);
    return h + len;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A screenshot response: {"id":..,"result":{"data":"<base64>"},"sessionId":".."}, `len`
 * bytes in total. */
static char *screenshot_message(size_t len) {
    const char *pre = "{\"id\":4242,\"result\":{\"data\":\"";
    const char *post = "\"},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}";
    size_t lp = strlen(pre), lq = strlen(post);
    char *m = xmalloc(len + 1);
    memcpy(m, pre, lp);
    uint32_t x = 2463534242u;
    for (size_t i = lp; i < len - lq; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        m[i] = b64[x & 63];
    }
    memcpy(m + len - lq, post, lq);
    m[len] = 0;
    return m;
}

/* ------------------------------------------------------------------------------------ */
/* scanner                                                                              */

typedef struct {
    const char **msg;
    size_t *len;
    size_t n;
} scan_ctx_t;

static void run_scan(void *p) {
    scan_ctx_t *c = p;
    for (size_t i = 0; i < c->n; i++) {
        cdp_msg_t m;
        if (cdp_scan(c->msg[i], c->len[i], &m) != 0)
            die("scan failed");
        sink += (uint64_t)m.id + m.method.len;
    }
}

static void run_cjson(void *p) {
    scan_ctx_t *c = p;
    for (size_t i = 0; i < c->n; i++) {
        cJSON *j = cJSON_ParseWithLength(c->msg[i], c->len[i]);
        if (!j)
            die("cJSON failed");
        cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        sink += id ? (uint64_t)id->valueint : 0;
        cJSON_Delete(j);
    }
}

typedef struct {
    const char *p;
    size_t len;
} memchr_ctx_t;

static void run_memchr(void *p) {
    memchr_ctx_t *c = p;
    /* The floor for a string scan: one memchr for a byte that is not there. */
    sink += (uintptr_t)memchr(c->p, 0x01, c->len);
}

/* Realistic small CDP traffic (Puppeteer page load), 80-700 bytes each. */
static const char *small_msgs[] = {
    "{\"id\":1,\"method\":\"Target.setDiscoverTargets\",\"params\":{\"discover\":true}}",
    "{\"id\":2,\"method\":\"Target.attachToTarget\",\"params\":{\"targetId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\",\"flatten\":true}}",
    "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\",\"targetInfo\":{\"targetId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\",\"type\":\"page\",\"title\":\"about:blank\",\"url\":\"about:blank\",\"attached\":true,\"canAccessOpener\":false,\"browserContextId\":\"0D1E2F3A4B5C6D7E8F9A0B1C2D3E4F5A\"},\"waitingForDebugger\":false}}",
    "{\"id\":2,\"result\":{\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}}",
    "{\"id\":3,\"method\":\"Page.navigate\",\"params\":{\"url\":\"https://www.example.com/products/search?q=shoes&page=2&sort=price_asc\",\"referrerPolicy\":\"strictOriginWhenCrossOrigin\"},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"1000.12\",\"loaderId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"documentURL\":\"https://www.example.com/products/search?q=shoes\",\"request\":{\"url\":\"https://cdn.example.com/static/js/app.3f9a1c.js\",\"method\":\"GET\",\"headers\":{\"Referer\":\"https://www.example.com/\",\"User-Agent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36\"},\"mixedContentType\":\"none\",\"initialPriority\":\"High\",\"referrerPolicy\":\"strict-origin-when-cross-origin\"},\"timestamp\":81234.567891,\"wallTime\":1700000000.123,\"initiator\":{\"type\":\"parser\",\"url\":\"https://www.example.com/\",\"lineNumber\":12},\"redirectHasExtraInfo\":false,\"type\":\"Script\",\"frameId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\",\"hasUserGesture\":false},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\",\"loaderId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"name\":\"DOMContentLoaded\",\"timestamp\":81235.001},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"id\":3,\"result\":{\"frameId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\",\"loaderId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\"},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"id\":4,\"method\":\"Runtime.callFunctionOn\",\"params\":{\"functionDeclaration\":\"function() { return document.querySelector(\\\"#main > .item[data-id=\\\\\\\"7\\\\\\\"]\\\")?.textContent; }\",\"executionContextId\":3,\"arguments\":[],\"returnByValue\":true,\"awaitPromise\":true,\"userGesture\":true},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"id\":4,\"result\":{\"result\":{\"type\":\"string\",\"value\":\"Caf\xc3\xa9 \xe2\x80\x94 men\xc3\xbc\"}},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
};

/* ------------------------------------------------------------------------------------ */

/* memcpy of each message into a warm buffer: the per-message baseline. */
typedef struct {
    const char **msg;
    size_t *len;
    size_t n;
    uint8_t *dst;
} msgs_copy_ctx_t;

static void run_msgs_memcpy(void *p) {
    msgs_copy_ctx_t *c = p;
    for (size_t i = 0; i < c->n; i++) {
        memcpy(c->dst, c->msg[i], c->len[i]);
        sink += c->dst[c->len[i] - 1];
    }
}

/* One output line: the figure, its paired memcpy baseline and the ratio. */
/* ------------------------------------------------------------------------------------ */
/* Recorder                                                                             */

/* The observer's events of one page load, as Chromium sends them: the document request, its
 * response and commit, and subresources (most events of a load are theirs). */
static const char *load_events[] = {
    "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"loaderId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"documentURL\":\"https://www.example.com/products/search?q=shoes\",\"request\":{\"url\":\"https://www.example.com/products/search?q=shoes\",\"method\":\"GET\",\"headers\":{\"Upgrade-Insecure-Requests\":\"1\",\"User-Agent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36\"},\"mixedContentType\":\"none\",\"initialPriority\":\"VeryHigh\",\"referrerPolicy\":\"strict-origin-when-cross-origin\",\"isSameSite\":true},\"timestamp\":81234.5,\"wallTime\":1700000000.1,\"initiator\":{\"type\":\"other\"},\"redirectHasExtraInfo\":false,\"type\":\"Document\",\"frameId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\",\"hasUserGesture\":false},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"method\":\"Network.responseReceived\",\"params\":{\"requestId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"loaderId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"timestamp\":81234.6,\"type\":\"Document\",\"response\":{\"url\":\"https://www.example.com/products/search?q=shoes\",\"status\":200,\"statusText\":\"OK\",\"headers\":{\"content-type\":\"text/html; charset=utf-8\",\"content-length\":\"48213\",\"cache-control\":\"no-cache\",\"date\":\"Mon, 07 Dec 2026 10:00:00 GMT\",\"server\":\"nginx\"},\"mimeType\":\"text/html\",\"charset\":\"utf-8\",\"connectionReused\":false,\"connectionId\":12,\"remoteIPAddress\":\"93.184.216.34\",\"remotePort\":443,\"fromDiskCache\":false,\"encodedDataLength\":312,\"protocol\":\"http/1.1\",\"securityState\":\"secure\"},\"hasExtraInfo\":true,\"frameId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\"},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"method\":\"Page.frameNavigated\",\"params\":{\"frame\":{\"id\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\",\"loaderId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"url\":\"https://www.example.com/products/search?q=shoes\",\"domainAndRegistry\":\"example.com\",\"securityOrigin\":\"https://www.example.com\",\"mimeType\":\"text/html\",\"adFrameStatus\":{\"adFrameType\":\"none\"},\"secureContextType\":\"Secure\",\"crossOriginIsolatedContextType\":\"NotIsolated\",\"gatedAPIFeatures\":[]},\"type\":\"Navigation\"},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"requestId\":\"1000.12\",\"loaderId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"documentURL\":\"https://www.example.com/products/search?q=shoes\",\"request\":{\"url\":\"https://cdn.example.com/static/js/app.3f9a1c.js\",\"method\":\"GET\",\"headers\":{\"Referer\":\"https://www.example.com/\",\"User-Agent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36\"},\"mixedContentType\":\"none\",\"initialPriority\":\"High\",\"referrerPolicy\":\"strict-origin-when-cross-origin\"},\"timestamp\":81234.7,\"wallTime\":1700000000.2,\"initiator\":{\"type\":\"parser\",\"url\":\"https://www.example.com/\",\"lineNumber\":12},\"redirectHasExtraInfo\":false,\"type\":\"Script\",\"frameId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\",\"hasUserGesture\":false},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"method\":\"Network.responseReceived\",\"params\":{\"requestId\":\"1000.12\",\"loaderId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"timestamp\":81234.8,\"type\":\"Script\",\"response\":{\"url\":\"https://cdn.example.com/static/js/app.3f9a1c.js\",\"status\":200,\"statusText\":\"OK\",\"headers\":{\"content-type\":\"application/javascript\",\"content-length\":\"183422\",\"cache-control\":\"max-age=31536000\"},\"mimeType\":\"application/javascript\",\"connectionReused\":true,\"connectionId\":14,\"encodedDataLength\":240,\"protocol\":\"h2\"},\"hasExtraInfo\":true,\"frameId\":\"E1A2B3C4D5E6F708192A3B4C5D6E7F80\"},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"method\":\"Network.loadingFinished\",\"params\":{\"requestId\":\"1000.12\",\"timestamp\":81234.9,\"encodedDataLength\":183662},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
    "{\"method\":\"Network.loadingFinished\",\"params\":{\"requestId\":\"5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F\",\"timestamp\":81235.0,\"encodedDataLength\":48525},\"sessionId\":\"8E2A5F0C3B1D4E6F9A7B2C5D8E1F4A3B\"}",
};
#define NLOAD (sizeof load_events / sizeof *load_events)

typedef struct {
    cdp_msg_t scans[NLOAD];
    char methods[NLOAD][64];
    int loads;
} recorder_ctx_t;

static void run_recorder(void *p) {
    recorder_ctx_t *c = p;
    recorder_t r;
    recorder_init(&r);
    recorder_page_opened(&r, "E1A2B3C4D5E6F708192A3B4C5D6E7F80");
    for (int l = 0; l < c->loads; l++)
        for (size_t i = 0; i < NLOAD; i++)
            recorder_page_event(&r, c->methods[i], c->scans[i].params.ptr, c->scans[i].params.len);
    sink += (uint64_t)r.navigations;
    recorder_free(&r);
}

/* What the recorder needed before: a tree of every event's params. */
static void run_params_cjson(void *p) {
    recorder_ctx_t *c = p;
    for (int l = 0; l < c->loads; l++)
        for (size_t i = 0; i < NLOAD; i++) {
            cJSON *j = cJSON_ParseWithLength(c->scans[i].params.ptr, c->scans[i].params.len);
            if (!j)
                die("cJSON failed on params");
            sink += (uint64_t)cJSON_GetArraySize(j);
            cJSON_Delete(j);
        }
}

static double line(const char *name, bench_fn fn, void *ctx, bench_fn base, void *base_ctx,
                   size_t bytes, int inner) {
    double b;
    double v = paired(fn, ctx, base, base_ctx, bytes, inner, &b);
    printf("%-46s %8.0f MB/s   memcpy %6.0f MB/s   %5.2fx\n", name, v, b, v / b);
    fflush(stdout);
    return v;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--quick") == 0)
        reps = 3;
    printf("codec_bench: best of %d, thread CPU time, MB = 10^6 bytes;\n"
           "each figure alternates with memcpy of the same bytes (ratio = figure / memcpy)\n\n",
           reps);

    /* --- 20 MB frames ------------------------------------------------------------- */
    char *shot = screenshot_message(BIG);
    uint8_t *bin = xmalloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        bin[i] = (uint8_t)(i * 2654435761u >> 13);
    /* Non-ASCII text: the screenshot message with a 2-byte character every 16 bytes. */
    char *intl = xmalloc(BIG);
    memcpy(intl, shot, BIG);
    for (size_t i = 64; i + 2 < BIG - 64; i += 16)
        memcpy(intl + i, "\xc3\xa9", 2);
    uint8_t *wire = xmalloc(BIG + WS_MAX_HEADER);
    uint8_t *dst = xmalloc(BIG + WS_MAX_HEADER);
    memset(dst, 0, BIG + WS_MAX_HEADER);

    /* Baseline for the reader: the same bytes copied in the same 64 KiB pieces. */
    copy_ctx_t cc = {wire, dst, 0, CHUNK};
    ws_ctx_t wc = {wire, 0, CHUNK, 1, false, NULL};
    printf("WebSocket reader, one 20 MB masked frame (message handed over, then freed)\n");
    cc.len = wc.len = put_frame(wire, WS_OP_BINARY, bin, BIG, 1);
    line("  binary, 64 KiB feeds", run_ws, &wc, run_memcpy, &cc, wc.len, 1);
    wc.chunk = wc.len;
    line("  binary, one feed", run_ws, &wc, run_memcpy, &cc, wc.len, 1);
    wc.chunk = CHUNK;
    wc.direct = true;
    line("  binary, direct reads (*)", run_ws, &wc, run_memcpy, &cc, wc.len, 1);
    wc.direct = false;
    cc.len = wc.len = put_frame(wire, WS_OP_TEXT, (const uint8_t *)shot, BIG, 2);
    line("  text (ASCII JSON), 64 KiB feeds", run_ws, &wc, run_memcpy, &cc, wc.len, 1);
    wc.direct = true;
    line("  text (ASCII JSON), direct reads (*)", run_ws, &wc, run_memcpy, &cc, wc.len, 1);
    wc.direct = false;
    cc.len = wc.len = put_frame(wire, WS_OP_TEXT, (const uint8_t *)intl, BIG, 3);
    line("  text, 1/8 of bytes non-ASCII, 64 KiB feeds", run_ws, &wc, run_memcpy, &cc, wc.len, 1);

    /* --- many 200-byte frames --------------------------------------------------------- */
    const size_t NSMALL = 20000;
    size_t sl = 0;
    uint8_t *swire = xmalloc(NSMALL * (200 + WS_MAX_HEADER));
    for (size_t i = 0; i < NSMALL; i++)
        sl += put_frame(swire + sl, WS_OP_TEXT, (const uint8_t *)shot + 1000 + (i % 512), 200, (uint32_t)i);
    copy_ctx_t sc = {swire, dst, sl, CHUNK};
    ws_ctx_t sw = {swire, sl, CHUNK, NSMALL, false, NULL};
    printf("\nWebSocket reader, 20000 masked 200-byte text frames in 64 KiB feeds\n");
    double small_mbps = line("  one malloc'd message each", run_ws, &sw, run_memcpy, &sc, sl, 3);
    printf("%-46s %8.2f M messages/s\n", "", small_mbps / ((double)sl / NSMALL));

    /* --- scanner ---------------------------------------------------------------------- */
    copy_ctx_t shc = {(const uint8_t *)shot, dst, BIG, 0};
    printf("\nCDP scanner, one 20 MB screenshot-like message\n");
    const char *one[1] = {shot};
    size_t one_len[1] = {BIG};
    scan_ctx_t scx = {one, one_len, 1};
    line("  cdp_scan", run_scan, &scx, run_memcpy, &shc, BIG, 1);
    memchr_ctx_t mc = {shot, BIG};
    line("  memchr for an absent byte (floor)", run_memchr, &mc, run_memcpy, &shc, BIG, 1);
    const char *one_i[1] = {intl};
    scan_ctx_t scxi = {one_i, one_len, 1};
    {
        cdp_msg_t m;
        if (cdp_scan(intl, BIG, &m) != 0)
            die("intl message invalid");
    }
    line("  cdp_scan, 1/8 of bytes non-ASCII", run_scan, &scxi, run_memcpy, &shc, BIG, 1);
    line("  cJSON parse + delete (for comparison)", run_cjson, &scx, run_memcpy, &shc, BIG, 1);

    const size_t NS = sizeof small_msgs / sizeof *small_msgs;
    const size_t NREP = 2000;
    const char **msgs = xmalloc(NS * NREP * sizeof *msgs);
    size_t *lens = xmalloc(NS * NREP * sizeof *lens);
    size_t total = 0;
    for (size_t i = 0; i < NS * NREP; i++) {
        msgs[i] = small_msgs[i % NS];
        lens[i] = strlen(msgs[i]);
        total += lens[i];
    }
    printf("\nCDP scanner, %zu small CDP messages (avg %zu bytes; memcpy = each copied)\n",
           NS * NREP, total / (NS * NREP));
    msgs_copy_ctx_t mcc = {msgs, lens, NS * NREP, dst};
    scan_ctx_t ssc = {msgs, lens, NS * NREP};
    double scan_small = line("  cdp_scan", run_scan, &ssc, run_msgs_memcpy, &mcc, total, 1);
    printf("%-46s %8.2f M messages/s\n", "", scan_small / ((double)total / (NS * NREP)));
    double cj_small = line("  cJSON parse + delete (for comparison)", run_cjson, &ssc, run_msgs_memcpy,
                           &mcc, total, 1);
    printf("%-46s %8.2f M messages/s (cdp_scan: %.1fx)\n", "", cj_small / ((double)total / (NS * NREP)),
           scan_small / cj_small);

    recorder_ctx_t rc = {.loads = 200};
    size_t params_bytes = 0;
    for (size_t i = 0; i < NLOAD; i++) {
        if (cdp_scan(load_events[i], strlen(load_events[i]), &rc.scans[i]) != 0)
            die("load event invalid");
        snprintf(rc.methods[i], sizeof rc.methods[i], "%.*s", (int)rc.scans[i].method.len, rc.scans[i].method.ptr);
        params_bytes += rc.scans[i].params.len;
    }
    double rec_base;
    double rec = paired(run_recorder, &rc, run_params_cjson, &rc, params_bytes * (size_t)rc.loads, 1, &rec_base);
    double per_event = (double)params_bytes / (double)NLOAD; /* bytes */
    printf("\nRecorder, the %zu observer events of a page load (%zu bytes of params), %d loads\n", (size_t)NLOAD,
           params_bytes, rc.loads);
    printf("%-46s %8.2f us per event\n", "  recorder_page_event on the scanner's slices", per_event / rec);
    printf("%-46s %8.2f us per event   (recorder: %.1fx faster)\n", "  cJSON parse + delete of params (before)",
           per_event / rec_base, rec / rec_base);

    printf("\n(*) direct reads: the reader lends its message buffer, the bench memcpy's the\n"
           "    'socket' bytes into it (what recv() would do) and the reader unmasks in place.\n");
    free(msgs);
    free(lens);
    free(swire);
    free(shot);
    free(bin);
    free(intl);
    free(wire);
    free(dst);
    return sink == 42 ? 1 : 0;
}
