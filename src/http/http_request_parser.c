#include "http/http_request_parser.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_HEADER_BYTES (16u * 1024u)
#define DEFAULT_MAX_BODY_BYTES (1024u * 1024u)
/* Buffers larger than this are released between requests rather than kept for the next one:
 * an idle keep-alive connection should not pin the memory of its largest upload. */
#define KEEP_BUFFER_BYTES (16u * 1024u)

enum { HEADER_CB_NONE, HEADER_CB_FIELD, HEADER_CB_VALUE };
enum { PAUSE_NONE, PAUSE_HEADERS_COMPLETE, PAUSE_MESSAGE_COMPLETE };

static http_request_parser_t *parser_of(http_parser *hp) { return hp->data; }

static int fail(http_request_parser_t *p, int status, const char *detail) {
    if (!p->error_status) {
        p->error_status = status;
        p->error_detail = detail;
    }
    return -1; /* any non-zero stops http-parser */
}

/* The header bytes seen so far, up to the end of a data callback's slice. Checked in the
 * callbacks so that one large read cannot make us store more than the limit. */
static bool header_bytes_over_at(const http_request_parser_t *p, const char *at, size_t len) {
    return p->header_bytes + (size_t)(at + len - p->chunk_base) > p->max_header_bytes;
}

static int check_header_bytes_at(http_request_parser_t *p, const char *at, size_t len) {
    return header_bytes_over_at(p, at, len) ? fail(p, 431, "request line and headers too large") : 0;
}

static int on_message_begin(http_parser *hp) {
    parser_of(hp)->started = true;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len) {
    http_request_parser_t *p = parser_of(hp);
    /* The limit crossed inside the target: the client is told it is the URL (414, as nginx
     * says), not its headers, which it may not even have sent yet. */
    if (header_bytes_over_at(p, at, len)) return fail(p, 414, "request target too long");
    if (buf_append(&p->target, at, len) < 0) return fail(p, 500, "out of memory");
    return 0;
}

static int terminate_header_text(http_request_parser_t *p) {
    return buf_append_char(&p->header_text, '\0');
}

static int on_header_field(http_parser *hp, const char *at, size_t len) {
    http_request_parser_t *p = parser_of(hp);
    if (p->headers_done) return 0; /* a trailer of a chunked body: dropped */
    if (check_header_bytes_at(p, at, len) < 0) return -1;
    if (p->header_callback != HEADER_CB_FIELD) {
        /* A new header starts: close the previous value, add a span. */
        if (p->header_callback == HEADER_CB_VALUE && terminate_header_text(p) < 0)
            return fail(p, 500, "out of memory");
        if (p->span_count == p->span_cap) {
            size_t cap = p->span_cap ? p->span_cap * 2 : 16;
            http_header_span_t *spans = realloc(p->spans, cap * sizeof *spans);
            if (!spans) return fail(p, 500, "out of memory");
            p->spans = spans;
            p->span_cap = cap;
        }
        p->spans[p->span_count++] = (http_header_span_t){.name_off = p->header_text.len};
        p->header_callback = HEADER_CB_FIELD;
    }
    if (buf_append(&p->header_text, at, len) < 0) return fail(p, 500, "out of memory");
    p->spans[p->span_count - 1].name_len += len;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
    http_request_parser_t *p = parser_of(hp);
    if (p->headers_done) return 0;
    if (check_header_bytes_at(p, at, len) < 0) return -1;
    if (p->header_callback == HEADER_CB_NONE) return 0; /* http-parser never does this */
    if (p->header_callback == HEADER_CB_FIELD) {
        if (terminate_header_text(p) < 0) return fail(p, 500, "out of memory");
        p->spans[p->span_count - 1].value_off = p->header_text.len;
        p->header_callback = HEADER_CB_VALUE;
    }
    if (buf_append(&p->header_text, at, len) < 0) return fail(p, 500, "out of memory");
    p->spans[p->span_count - 1].value_len += len;
    return 0;
}

/* Pausing here (and in on_message_complete) hands control back to http_request_parser_feed,
 * which then knows exactly how many bytes the headers took and checks the limits before a
 * single body byte is stored. */
static int on_headers_complete(http_parser *hp) {
    http_request_parser_t *p = parser_of(hp);
    p->headers_done = true;
    p->pause_event = PAUSE_HEADERS_COMPLETE;
    http_parser_pause(hp, 1);
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) {
    http_request_parser_t *p = parser_of(hp);
    if (len > p->max_body_bytes - p->body.len) return fail(p, 413, "body too large");
    if (buf_append(&p->body, at, len) < 0) return fail(p, 500, "out of memory");
    return 0;
}

static int on_message_complete(http_parser *hp) {
    http_request_parser_t *p = parser_of(hp);
    /* Read here: http_should_keep_alive is only meaningful inside the callbacks. */
    p->request.keep_alive = http_should_keep_alive(hp) != 0;
    p->request.upgrade = hp->upgrade && hp->method != HTTP_CONNECT;
    p->pause_event = PAUSE_MESSAGE_COMPLETE;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static bool is_space_or_tab(char c) { return c == ' ' || c == '\t'; }

/* RFC 9110 5.6.2. Debian builds http-parser without HTTP_PARSER_STRICT, which lets a space
 * into header names; "Name : value" must be refused (RFC 9112 5.1), not read as another
 * header than the one a proxy in front of us saw. */
static bool is_token(const char *s, size_t len) {
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return false;
    }
    return true;
}

/* RFC 9110 5.5: a field value is visible characters, spaces and tabs (and obs-text); a NUL,
 * CR or LF in it must be refused (the lenient http-parser lets NUL through, and a value with an
 * embedded NUL would read as a shorter string than its length says). */
static bool is_field_value(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

/* Turns the spans into the public header array; names and values get their NUL and values lose
 * surrounding blanks (http-parser keeps trailing ones). Returns 0, 1 for an invalid header name or
 * value, or -1 when out of memory. */
static int finish_headers(http_request_parser_t *p) {
    if (p->header_callback == HEADER_CB_FIELD) {
        /* A name without a value: give it an empty one. */
        if (terminate_header_text(p) < 0) return -1;
        p->spans[p->span_count - 1].value_off = p->header_text.len;
        p->spans[p->span_count - 1].value_len = 0;
        p->header_callback = HEADER_CB_VALUE;
    }
    if (p->header_callback == HEADER_CB_VALUE && terminate_header_text(p) < 0) return -1;
    if (p->span_count == 0) return 0;
    p->headers = calloc(p->span_count, sizeof *p->headers);
    if (!p->headers) return -1;
    char *text = p->header_text.data;
    for (size_t i = 0; i < p->span_count; i++) {
        const http_header_span_t *s = &p->spans[i];
        if (!is_token(text + s->name_off, s->name_len) || !is_field_value(text + s->value_off, s->value_len))
            return 1;
        char *value = text + s->value_off;
        size_t value_len = s->value_len;
        while (value_len > 0 && is_space_or_tab(value[0])) {
            value++;
            value_len--;
        }
        while (value_len > 0 && is_space_or_tab(value[value_len - 1])) value_len--;
        value[value_len] = '\0';
        p->headers[i] = (http_header_t){.name = text + s->name_off, .name_len = s->name_len,
                                        .value = value, .value_len = value_len};
    }
    return 0;
}

const http_header_t *http_headers_find(const http_header_t *headers, size_t count, const char *name) {
    size_t name_len = strlen(name);
    for (size_t i = 0; i < count; i++)
        if (headers[i].name_len == name_len && strncasecmp(headers[i].name, name, name_len) == 0)
            return &headers[i];
    return NULL;
}

static http_method_t method_of(unsigned parser_method) {
    switch (parser_method) {
    case HTTP_GET: return HTTP_M_GET;
    case HTTP_HEAD: return HTTP_M_HEAD;
    case HTTP_POST: return HTTP_M_POST;
    case HTTP_PUT: return HTTP_M_PUT;
    case HTTP_DELETE: return HTTP_M_DELETE;
    case HTTP_PATCH: return HTTP_M_PATCH;
    case HTTP_OPTIONS: return HTTP_M_OPTIONS;
    default: return HTTP_M_OTHER;
    }
}

/* Keeps the last bytes before the request line's LF (blank lines before a request, which
 * RFC 9112 allows, are skipped). */
static void track_request_line(http_request_parser_t *p, const char *data, size_t len) {
    for (size_t i = 0; i < len && !p->line_done; i++) {
        char c = data[i];
        if (c == '\n') {
            if (p->line_tail_len > 0) p->line_done = true;
            continue;
        }
        if (c == '\r') continue;
        if (p->line_tail_len == sizeof p->line_tail) {
            memmove(p->line_tail, p->line_tail + 1, sizeof p->line_tail - 1);
            p->line_tail_len--;
        }
        p->line_tail[p->line_tail_len++] = c;
    }
}

/* Checks made once the headers are known, before any of the body is stored. */
static int after_headers(http_request_parser_t *p) {
    http_parser *hp = &p->parser;
    if (hp->http_major != 1) return fail(p, 400, "unsupported HTTP version");
    if (p->line_tail_len < 9 || memcmp(p->line_tail + p->line_tail_len - 9, " HTTP/1.", 8) != 0)
        return fail(p, 400, "malformed request line");
    int rc = finish_headers(p);
    if (rc < 0) return fail(p, 500, "out of memory");
    if (rc > 0) return fail(p, 400, "invalid header name or value");
    bool chunked = (hp->flags & F_CHUNKED) != 0;
    bool has_length = hp->content_length != ULLONG_MAX && !chunked;
    if (has_length && hp->content_length > p->max_body_bytes) return fail(p, 413, "Content-Length too large");
    bool has_body = chunked || (has_length && hp->content_length > 0);
    if (has_body && hp->http_major == 1 && hp->http_minor >= 1) {
        const http_header_t *expect = http_headers_find(p->headers, p->span_count, "Expect");
        if (expect && strcasecmp(expect->value, "100-continue") == 0) p->continue_expected = true;
    }
    return 0;
}

/* Splits the request target into path and query. Origin form ("/a?b") is the usual one;
 * absolute form ("http://host/a?b") must be accepted by servers too (RFC 9112 3.2.2), and its
 * path is what follows the authority ("/" when empty). A fragment is dropped. */
static int finish_target(http_request_parser_t *p) {
    const char *t = p->target.data ? p->target.data : "";
    size_t len = p->target.len;
    size_t path_start = 0;
    bool absolute_form = false;
    if (len > 0 && t[0] != '/' && t[0] != '*') {
        const char *scheme_end = memmem(t, len, "://", 3);
        if (scheme_end) {
            absolute_form = true;
            path_start = (size_t)(scheme_end - t) + 3;
            while (path_start < len && t[path_start] != '/' && t[path_start] != '?' && t[path_start] != '#')
                path_start++;
        }
    }
    size_t path_end = path_start;
    while (path_end < len && t[path_end] != '?' && t[path_end] != '#') path_end++;
    bool has_query = path_end < len && t[path_end] == '?';
    size_t query_start = has_query ? path_end + 1 : path_end;
    size_t query_end = query_start;
    while (query_end < len && t[query_end] != '#') query_end++;

    buf_t *out = &p->path_query;
    const char *path = t + path_start;
    size_t path_len = path_end - path_start;
    if (absolute_form && path_len == 0) {
        path = "/";
        path_len = 1;
    }
    if (buf_append(out, path, path_len) < 0 || buf_append_char(out, '\0') < 0 ||
        buf_append(out, t + query_start, query_end - query_start) < 0)
        return fail(p, 500, "out of memory");
    /* Pointers are taken only now: the appends above may have moved the buffer. */
    p->request.path = out->data;
    p->request.path_len = path_len;
    p->request.query = has_query ? out->data + path_len + 1 : NULL;
    p->request.query_len = has_query ? query_end - query_start : 0;
    return 0;
}

static int finish_request(http_request_parser_t *p) {
    http_parser *hp = &p->parser;
    if (finish_target(p) < 0) return -1;
    http_request_t *r = &p->request;
    r->method = method_of(hp->method);
    r->method_name = http_method_str((enum http_method)hp->method);
    r->headers = p->headers;
    r->header_count = p->headers ? p->span_count : 0;
    r->body = p->body.data ? p->body.data : "";
    r->body_len = p->body.len;
    /* keep_alive and upgrade were set in on_message_complete. */
    p->request_ready = true;
    return 0;
}

void http_request_parser_init(http_request_parser_t *p, size_t max_header_bytes, size_t max_body_bytes) {
    memset(p, 0, sizeof *p);
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->parser.data = p;
    p->max_header_bytes = max_header_bytes ? max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
    p->max_body_bytes = max_body_bytes ? max_body_bytes : DEFAULT_MAX_BODY_BYTES;
    buf_init(&p->target);
    buf_init(&p->header_text);
    buf_init(&p->path_query);
    buf_init(&p->body);
}

void http_request_parser_free(http_request_parser_t *p) {
    buf_free(&p->target);
    buf_free(&p->header_text);
    buf_free(&p->path_query);
    buf_free(&p->body);
    free(p->spans);
    free(p->headers);
    p->spans = NULL;
    p->headers = NULL;
    p->span_count = p->span_cap = 0;
}

static void reset_buf(buf_t *b) {
    if (b->cap > KEEP_BUFFER_BYTES) buf_free(b);
    else buf_reset(b);
}

void http_request_parser_next(http_request_parser_t *p) {
    if (p->error_status) return; /* dead; http_parser_pause would assert on its error state */
    if (p->request_ready && !p->request.keep_alive) p->after_close = true;
    reset_buf(&p->target);
    reset_buf(&p->header_text);
    reset_buf(&p->path_query);
    reset_buf(&p->body);
    free(p->headers);
    p->headers = NULL;
    p->span_count = 0;
    if (p->span_cap > 64) {
        free(p->spans);
        p->spans = NULL;
        p->span_cap = 0;
    }
    p->header_callback = HEADER_CB_NONE;
    p->header_bytes = 0;
    p->pause_event = PAUSE_NONE;
    p->started = false;
    p->headers_done = false;
    p->line_tail_len = 0;
    p->line_done = false;
    p->request_ready = false;
    p->continue_expected = false;
    memset(&p->request, 0, sizeof p->request);
    http_parser_pause(&p->parser, 0);
}

/* After http-parser stopped on an error: one of our callbacks may already have said why. */
static void error_from_parser(http_request_parser_t *p) {
    enum http_errno err = HTTP_PARSER_ERRNO(&p->parser);
    fail(p, err == HPE_HEADER_OVERFLOW ? 431 : 400, http_errno_description(err));
}

http_request_parse_result_t http_request_parser_feed(http_request_parser_t *p, const char *data, size_t len,
                                                     size_t *consumed) {
    *consumed = 0;
    if (p->error_status) return HTTP_REQUEST_PARSE_ERROR;
    if (p->request_ready) return HTTP_REQUEST_PARSE_READY;
    if (p->after_close && len > 0) {
        /* Strict http-parser would refuse this itself; Debian's lenient build reads on. */
        fail(p, 400, "data after a Connection: close request");
        return HTTP_REQUEST_PARSE_ERROR;
    }
    track_request_line(p, data, len);
    size_t offset = 0;
    /* Never call http_parser_execute with 0 bytes: for http-parser that means end of stream. */
    while (offset < len) {
        p->chunk_base = data + offset;
        p->pause_event = PAUSE_NONE;
        bool in_headers = !p->headers_done;
        size_t n = http_parser_execute(&p->parser, &parser_settings, data + offset, len - offset);
        enum http_errno err = HTTP_PARSER_ERRNO(&p->parser);
        if (err != HPE_OK && err != HPE_PAUSED) {
            error_from_parser(p);
            *consumed = offset + n;
            return HTTP_REQUEST_PARSE_ERROR;
        }
        if (in_headers) p->header_bytes += n;
        offset += n;
        if (err == HPE_OK) {
            if (n == 0) { /* no progress and no reason given: never loop on it */
                fail(p, 400, "parser made no progress");
                *consumed = offset;
                return HTTP_REQUEST_PARSE_ERROR;
            }
            if (in_headers && p->header_bytes > p->max_header_bytes) {
                fail(p, 431, "request line and headers too large");
                *consumed = offset;
                return HTTP_REQUEST_PARSE_ERROR;
            }
            continue; /* normally n == len - offset and the loop ends */
        }
        if (p->pause_event == PAUSE_HEADERS_COMPLETE) {
            /* http-parser stopped on the final LF without consuming it: count it now. */
            if (p->header_bytes + 1 > p->max_header_bytes) {
                fail(p, 431, "request line and headers too large");
            } else {
                after_headers(p);
            }
            if (p->error_status) {
                *consumed = offset;
                return HTTP_REQUEST_PARSE_ERROR;
            }
            http_parser_pause(&p->parser, 0);
            continue;
        }
        if (p->pause_event == PAUSE_MESSAGE_COMPLETE) {
            *consumed = offset;
            if (finish_request(p) < 0) return HTTP_REQUEST_PARSE_ERROR;
            return HTTP_REQUEST_PARSE_READY;
        }
        fail(p, 400, "parser paused for no reason");
        *consumed = offset;
        return HTTP_REQUEST_PARSE_ERROR;
    }
    *consumed = offset;
    return HTTP_REQUEST_PARSE_MORE;
}

const http_request_t *http_request_parser_request(const http_request_parser_t *p) {
    return p->request_ready ? &p->request : NULL;
}

bool http_request_parser_in_progress(const http_request_parser_t *p) {
    return p->started && !p->request_ready && !p->error_status;
}

bool http_request_parser_take_continue(http_request_parser_t *p) {
    bool expected = p->continue_expected;
    p->continue_expected = false;
    return expected;
}

unsigned http_request_parser_http_minor(const http_request_parser_t *p) { return p->parser.http_minor; }

int http_request_parser_error_status(const http_request_parser_t *p) { return p->error_status; }

const char *http_request_parser_error_detail(const http_request_parser_t *p) {
    return p->error_detail ? p->error_detail : "";
}
