/* libFuzzer target: the HTTP request parser (src/http/http_request_parser.c) and, behind it,
 * the list query of GET /browser_sessions (src/session/session_query.c) and that of
 * GET /browser_sessions/stats (src/session/stats_query.c).
 *
 * The input is fed twice: in one piece, and split in two at a point taken from its first
 * byte, the way a server feeds what each read brings (bytes not consumed after a request are
 * fed again). Both ways must give the same requests and the same outcome; every request must
 * be well formed (NUL-terminated strings of the stated lengths). Small limits make the 431 and
 * 413 paths reachable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/session_query.h"
#include "session/stats_query.h"
#include "http/http_request_parser.h"

#define FUZZ_MAX_HEADER_BYTES 2048
#define FUZZ_MAX_BODY_BYTES 4096
#define MAX_REQUESTS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What is compared between the two feedings: a hash of each request's content. */
typedef struct {
    uint64_t request_hash[MAX_REQUESTS];
    size_t count;
    int error_status;
} outcome_t;

static uint64_t hash_bytes(uint64_t h, const void *p, size_t len) {
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* field separator */
}

static void check_string(const char *s, size_t len) {
    if (!s || memchr(s, '\0', len) || s[len] != '\0') abort();
}

static uint64_t check_request(const http_request_t *r) {
    uint64_t h = 14695981039346656037ull;
    check_string(r->method_name, strlen(r->method_name));
    check_string(r->path, r->path_len);
    h = hash_bytes(h, &r->method, sizeof r->method);
    h = hash_bytes(h, r->path, r->path_len);
    if (r->query) {
        check_string(r->query, r->query_len);
        h = hash_bytes(h, r->query, r->query_len);
    } else if (r->query_len) {
        abort();
    }
    for (size_t i = 0; i < r->header_count; i++) {
        const http_header_t *hd = &r->headers[i];
        if (hd->name_len == 0) abort();
        check_string(hd->name, hd->name_len);
        check_string(hd->value, hd->value_len);
        h = hash_bytes(h, hd->name, hd->name_len);
        h = hash_bytes(h, hd->value, hd->value_len);
    }
    if (!r->body || r->body[r->body_len] != '\0' || r->body_len > FUZZ_MAX_BODY_BYTES) abort();
    h = hash_bytes(h, r->body, r->body_len);
    h = hash_bytes(h, &r->keep_alive, sizeof r->keep_alive);
    h = hash_bytes(h, &r->upgrade, sizeof r->upgrade);

    if (r->path_len == strlen("/browser_sessions") && strcmp(r->path, "/browser_sessions") == 0) {
        session_query_t q;
        char details[256];
        if (session_query_parse(r->query, r->query_len, &q, details, sizeof details) == 0) {
            session_query_free(&q);
        } else if (!memchr(details, '\0', sizeof details) || !details[0]) {
            abort(); /* a rejection always says why */
        }
    }
    if (r->path_len == strlen("/browser_sessions/stats") && strcmp(r->path, "/browser_sessions/stats") == 0) {
        session_stats_query_t q;
        char details[256];
        if (session_stats_query_parse(r->query, r->query_len, &q, details, sizeof details) == 0) {
            if (q.bucket_ms != SESSION_BUCKET_HOUR_MS && q.bucket_ms != SESSION_BUCKET_DAY_MS) abort();
            session_stats_query_free(&q);
        } else if (!memchr(details, '\0', sizeof details) || !details[0]) {
            abort();
        }
    }
    return h;
}

/* Feeds [data, data + size) in pieces ending at `split` and at `size`. */
static outcome_t feed(const char *data, size_t size, size_t split) {
    outcome_t out = {0};
    http_request_parser_t p;
    http_request_parser_init(&p, FUZZ_MAX_HEADER_BYTES, FUZZ_MAX_BODY_BYTES);
    size_t start = 0; /* first byte not consumed yet */
    size_t piece_ends[2] = {split, size};
    for (size_t piece = 0; piece < 2 && !out.error_status; piece++) {
        size_t end = piece_ends[piece];
        while (start < end) {
            size_t consumed = 0;
            http_request_parse_result_t r = http_request_parser_feed(&p, data + start, end - start, &consumed);
            if (consumed > end - start) abort();
            start += consumed;
            if (r == HTTP_REQUEST_PARSE_ERROR) {
                out.error_status = http_request_parser_error_status(&p);
                if (out.error_status != 400 && out.error_status != 413 && out.error_status != 414 &&
                    out.error_status != 431) abort();
                break;
            }
            if (r == HTTP_REQUEST_PARSE_MORE) {
                if (start != end) abort(); /* MORE means everything was taken */
                break;
            }
            const http_request_t *req = http_request_parser_request(&p);
            if (!req || http_request_parser_in_progress(&p)) abort();
            uint64_t h = check_request(req);
            if (out.count < MAX_REQUESTS) out.request_hash[out.count] = h;
            out.count++;
            http_request_parser_next(&p);
        }
    }
    http_request_parser_free(&p);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy, so that any read past the end is caught by ASan. */
    char *input = malloc(size ? size : 1);
    if (!input) return 0;
    if (size) memcpy(input, data, size);
    size_t split = size ? (size_t)data[0] * size / 256 : 0;
    outcome_t whole = feed(input, size, size);
    outcome_t halves = feed(input, size, split);
    size_t compared = whole.count < MAX_REQUESTS ? whole.count : MAX_REQUESTS;
    if (whole.count != halves.count || whole.error_status != halves.error_status ||
        memcmp(whole.request_hash, halves.request_hash, compared * sizeof whole.request_hash[0]) != 0)
        abort(); /* how the bytes arrive must not change what they mean */
    free(input);
    return 0;
}
