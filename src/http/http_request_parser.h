/* Socket-free HTTP/1.x request parsing on top of Debian's http-parser 2.9: bytes go in,
 * complete requests (http_request_t) or an error status come out. No I/O and no libuv calls,
 * so unit tests and the fuzzer drive it directly; http_server.c feeds it what it reads.
 *
 * One request at a time: after HTTP_REQUEST_PARSE_READY the parser holds that request and
 * parses nothing more until http_request_parser_next. That is what keeps pipelined requests
 * in order: the caller keeps the bytes that were not consumed and feeds them again once it has
 * answered.
 *
 * Limits and errors (the stream cannot be resynchronised after any of them: close it):
 *   - request line + headers over max_header_bytes -> 431. Counted from the first byte after
 *     the previous request (stray CRLFs between requests count) up to and including the empty
 *     line that ends the headers. http-parser's own limit of 80 KiB also gives 431.
 *   - body over max_body_bytes -> 413, as soon as Content-Length announces it, or when the
 *     chunks received pass it.
 *   - anything http-parser rejects (bad syntax, Content-Length together with chunked, an unknown
 *     Transfer-Encoding, data after a "Connection: close" request) -> 400.
 *   - out of memory -> 500.
 *
 * Ownership: the parser owns the request and every string it points to (path, query, header
 * names and values, body); they stay valid until http_request_parser_next or
 * http_request_parser_free. The body is always NUL-terminated ("" when there is none).
 * Trailer fields of a chunked body are parsed and dropped. */
#ifndef BROWSERD_HTTP_REQUEST_PARSER_H
#define BROWSERD_HTTP_REQUEST_PARSER_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "http/http_server.h"

typedef enum {
    HTTP_REQUEST_PARSE_MORE,  /* every byte consumed; no complete request yet */
    HTTP_REQUEST_PARSE_READY, /* a request is complete (see http_request_parser_request); bytes
                                 after it were not consumed */
    HTTP_REQUEST_PARSE_ERROR, /* see http_request_parser_error_status */
} http_request_parse_result_t;

/* Offsets into header_text while the headers are still arriving (the text may move). */
typedef struct {
    size_t name_off, name_len;
    size_t value_off, value_len;
} http_header_span_t;

/* Embeddable; the members are private to http_request_parser.c. */
typedef struct {
    http_parser parser;
    size_t max_header_bytes;
    size_t max_body_bytes;

    buf_t target;      /* the raw request target, as received */
    buf_t header_text; /* names and values, each NUL-terminated once complete */
    http_header_span_t *spans;
    size_t span_count, span_cap;
    int header_callback; /* which of field/value http-parser called last */
    http_header_t *headers;
    buf_t path_query;  /* "path\0query\0" */
    buf_t body;

    size_t header_bytes;    /* consumed so far for this request's line + headers */
    const char *chunk_base; /* start of the bytes given to the running http_parser_execute */
    int pause_event;        /* why the callbacks paused http-parser */
    bool started;
    bool headers_done;
    bool request_ready;
    bool continue_expected;
    bool after_close; /* the last request did not keep the connection alive */
    /* The last bytes of the request line, to check its protocol name: Debian's lenient
     * http-parser takes any four letters for "HTTP". */
    char line_tail[12];
    uint8_t line_tail_len;
    bool line_done;
    int error_status;
    const char *error_detail;
    http_request_t request;
} http_request_parser_t;

/* Limits of 0 take the defaults of http_server_config_defaults (16 KiB, 1 MiB). */
void http_request_parser_init(http_request_parser_t *p, size_t max_header_bytes, size_t max_body_bytes);
void http_request_parser_free(http_request_parser_t *p);

/* Parses bytes from `data`; *consumed says how many were used. After READY, feed the rest
 * again only after http_request_parser_next (until then feed consumes nothing and answers
 * READY again). After ERROR it consumes nothing and answers ERROR. */
http_request_parse_result_t http_request_parser_feed(http_request_parser_t *p, const char *data, size_t len,
                                                     size_t *consumed);

/* The complete request after READY, else NULL. Owned by the parser. */
const http_request_t *http_request_parser_request(const http_request_parser_t *p);

/* Forgets the current request (its strings become invalid) and gets ready for the next one. */
void http_request_parser_next(http_request_parser_t *p);

/* A request has begun (at least its first byte) and is not complete yet. */
bool http_request_parser_in_progress(const http_request_parser_t *p);

/* True once per request whose headers asked "Expect: 100-continue" (HTTP/1.1, with a body
 * that passed the size check): the caller should send "100 Continue" if the body has not
 * arrived yet. Reading it clears it. */
bool http_request_parser_take_continue(http_request_parser_t *p);

/* The minor HTTP version of the current request (0 for HTTP/1.0). */
unsigned http_request_parser_http_minor(const http_request_parser_t *p);

/* After ERROR: 400, 413, 431 or 500, and a short reason for logs. */
/* The first header named `name` (compared case-insensitively) of headers[0..count), or NULL. */
const http_header_t *http_headers_find(const http_header_t *headers, size_t count, const char *name);

int http_request_parser_error_status(const http_request_parser_t *p);
const char *http_request_parser_error_detail(const http_request_parser_t *p);

#endif
