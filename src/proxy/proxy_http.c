/* Socket-free HTTP work of the traffic proxy. See proxy_http.h. */
#include "proxy/proxy_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


static void set_err(char *err, size_t cap, const char *msg) {
    if (err && cap) snprintf(err, cap, "%s", msg);
}

size_t proxy_http_head_end(const char *buf, size_t len, size_t *scan) {
    size_t i = *scan;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) break;
        size_t k = (size_t)(nl - buf);
        if (k + 1 >= len) {
            *scan = k; /* look at this LF again when more bytes are there */
            return 0;
        }
        if (buf[k + 1] == '\n') return k + 2;
        if (buf[k + 1] == '\r') {
            if (k + 2 >= len) {
                *scan = k;
                return 0;
            }
            if (buf[k + 2] == '\n') return k + 3;
        }
        i = k + 1;
    }
    *scan = len;
    return 0;
}

/* ---- http-parser over one complete head -------------------------------------------------- */

typedef struct {
    const char *base;
    size_t url_off, url_len;
    bool url_seen;
    bool headers_done;
    bool message_done;
    bool skip_body;
    bool response;
} head_ctx_t;

static int on_head_url(http_parser *hp, const char *at, size_t n) {
    head_ctx_t *ctx = hp->data;
    if (!ctx->url_seen) {
        ctx->url_seen = true;
        ctx->url_off = (size_t)(at - ctx->base);
        ctx->url_len = n;
    } else {
        ctx->url_len = (size_t)(at + n - (ctx->base + ctx->url_off));
    }
    return 0;
}

static int on_head_headers_complete(http_parser *hp) {
    head_ctx_t *ctx = hp->data;
    ctx->headers_done = true;
    /* http-parser 2.9 reads a Content-Length body after 1xx, 204 and 304 when one is announced;
     * RFC 9112 6.3 says these never have a body. */
    unsigned st = hp->status_code;
    if (ctx->response && (st / 100 == 1 || st == 204 || st == 304)) return 1;
    return ctx->skip_body ? 1 : 0;
}

static int on_head_message_complete(http_parser *hp) {
    head_ctx_t *ctx = hp->data;
    ctx->message_done = true;
    return 0;
}

static const http_parser_settings head_settings = {
    .on_url = on_head_url,
    .on_headers_complete = on_head_headers_complete,
    .on_message_complete = on_head_message_complete,
};

/* Runs hp over the whole head. Returns 0 when it took every byte and saw the end of the
 * headers. */
static int run_head(http_parser *hp, head_ctx_t *ctx, const char *head, size_t len) {
    void *saved = hp->data;
    hp->data = ctx;
    size_t used = http_parser_execute(hp, &head_settings, head, len);
    hp->data = saved;
    if (HTTP_PARSER_ERRNO(hp) != HPE_OK || used != len || !ctx->headers_done) return -1;
    return 0;
}

/* ---- request targets ------------------------------------------------------------------- */

static bool ieq(const char *a, size_t an, const char *b) {
    size_t bn = strlen(b);
    return an == bn && strncasecmp(a, b, an) == 0;
}

int proxy_http_parse_authority(const char *s, size_t n, uint16_t default_port, bool port_required, proxy_host_t *host,
                               uint16_t *port, char *err, size_t err_cap) {
    size_t host_len = n;
    const char *port_text = NULL;
    size_t port_len = 0;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            set_err(err, err_cap, "malformed IPv6 literal in target");
            return -EINVAL;
        }
        host_len = (size_t)(close - s) + 1;
        if (host_len < n) {
            if (s[host_len] != ':') {
                set_err(err, err_cap, "malformed authority in target");
                return -EINVAL;
            }
            port_text = s + host_len + 1;
            port_len = n - host_len - 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            host_len = (size_t)(colon - s);
            port_text = colon + 1;
            port_len = n - host_len - 1;
        }
    }
    if (proxy_guard_parse_host(s, host_len, host, err, err_cap) < 0) return -EINVAL;
    if (!port_text || port_len == 0) {
        if (port_required) {
            set_err(err, err_cap, "CONNECT target needs a port");
            return -EINVAL;
        }
        *port = default_port;
        return 0;
    }
    unsigned v = 0;
    if (port_len > 5) {
        set_err(err, err_cap, "bad port in target");
        return -EINVAL;
    }
    for (size_t i = 0; i < port_len; i++) {
        if (port_text[i] < '0' || port_text[i] > '9') {
            set_err(err, err_cap, "bad port in target");
            return -EINVAL;
        }
        v = v * 10 + (unsigned)(port_text[i] - '0');
    }
    if (v == 0 || v > 65535) {
        set_err(err, err_cap, "port out of range in target");
        return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

static bool same_host(const proxy_host_t *a, uint16_t ap, const proxy_host_t *b, uint16_t bp) {
    return a->kind == b->kind && ap == bp && strcmp(a->name, b->name) == 0;
}

/* ---- header lines -------------------------------------------------------------------------- */

typedef struct {
    const char *line;  /* start of the line */
    size_t line_len;   /* through its LF */
    const char *name;
    size_t name_len;
    const char *value; /* trimmed */
    size_t value_len;
} header_line_t;

/* Splits the line at [p, end) (end is one past its LF). http-parser has validated the head, so
 * there is a colon after a token; still checked, to fail safe. */
static int split_header(const char *p, const char *end, header_line_t *h) {
    h->line = p;
    h->line_len = (size_t)(end - p);
    const char *stop = end - 1; /* the LF */
    if (stop > p && stop[-1] == '\r') stop--;
    const char *colon = memchr(p, ':', (size_t)(stop - p));
    if (!colon || colon == p) return -1;
    /* http-parser 2.9 (not built strict) lets spaces into names; a site could read "A B: x"
     * differently than we do, so only RFC 9110 token characters pass. */
    static const char tchar_punct[] = "!#$%&'*+-.^_`|~";
    for (const char *q = p; q < colon; q++) {
        unsigned char ch = (unsigned char)*q;
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch && strchr(tchar_punct, ch));
        if (!ok) return -1;
    }
    h->name = p;
    h->name_len = (size_t)(colon - p);
    const char *v = colon + 1, *ve = stop;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    h->value = v;
    h->value_len = (size_t)(ve - v);
    return 0;
}

#define MAX_CONNECTION_TOKENS 16

typedef struct {
    struct {
        const char *p;
        size_t n;
    } tok[MAX_CONNECTION_TOKENS];
    size_t count;
} tokens_t;

static void add_tokens(tokens_t *t, const char *v, size_t n) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > s && t->count < MAX_CONNECTION_TOKENS) {
            t->tok[t->count].p = v + s;
            t->tok[t->count].n = e - s;
            t->count++;
        }
    }
}

static bool tokens_have(const tokens_t *t, const char *name, size_t n) {
    for (size_t i = 0; i < t->count; i++)
        if (t->tok[i].n == n && strncasecmp(t->tok[i].p, name, n) == 0) return true;
    return false;
}

/* Headers that describe this hop only (RFC 9110 7.6.1), plus the proxy credentials meant for
 * us. Upgrade stays on an upgrade request: the site must see it to switch protocols. */
static bool hop_by_hop(const header_line_t *h, bool upgrade) {
    static const char *const names[] = {"connection", "proxy-connection", "keep-alive", "proxy-authorization",
                                        "proxy-authenticate", "te", "upgrade"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (ieq(h->name, h->name_len, names[i])) return !(upgrade && i == 6);
    }
    return false;
}

/* Headers that Connection must never make us drop: the framing of the body we relay as is, and
 * the Host we check. */
static bool protected_header(const header_line_t *h) {
    return ieq(h->name, h->name_len, "host") || ieq(h->name, h->name_len, "content-length") ||
           ieq(h->name, h->name_len, "transfer-encoding");
}

int proxy_http_parse_request(http_parser *hp, const char *head, size_t len, proxy_rewrite_mode_t mode,
                             const char *proxy_authorization, proxy_request_t *req, buf_t *out_head, char *err,
                             size_t err_cap) {
    memset(req, 0, sizeof *req);
    head_ctx_t ctx = {.base = head};
    if (run_head(hp, &ctx, head, len) < 0) {
        if (HTTP_PARSER_ERRNO(hp) != HPE_OK) {
            char msg[160];
            snprintf(msg, sizeof msg, "malformed request head: %s", http_errno_description(HTTP_PARSER_ERRNO(hp)));
            set_err(err, err_cap, msg);
        } else {
            set_err(err, err_cap, "malformed request head");
        }
        return 400;
    }
    if (!ctx.url_seen) {
        set_err(err, err_cap, "request without a target");
        return 400;
    }
    if (hp->http_major != 1) {
        set_err(err, err_cap, "only HTTP/1.x requests are served");
        return 505;
    }
    req->http_major = hp->http_major;
    req->http_minor = hp->http_minor;
    snprintf(req->method, sizeof req->method, "%s", http_method_str((enum http_method)hp->method));
    req->is_connect = hp->method == HTTP_CONNECT;
    req->is_head_method = hp->method == HTTP_HEAD;
    req->keep_alive = http_should_keep_alive(hp) != 0;
    req->upgrade = !req->is_connect && hp->upgrade;
    req->complete = ctx.message_done;

    /* The request line, and where the head's lines start. */
    const char *line = head;
    const char *end = head + len;
    while (line < end && (*line == '\r' || *line == '\n')) line++; /* http-parser skips these too */
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol) {
        set_err(err, err_cap, "malformed request line");
        return 400;
    }
    const char *url = head + ctx.url_off;
    size_t url_len = ctx.url_len;
    if (url < line || url + url_len > eol) {
        set_err(err, err_cap, "malformed request line");
        return 400;
    }
    /* http-parser 2.9 (not built strict) takes "HTJP/1.1" for a version: require the real one,
     * since the request line goes on to the site as written. */
    const char *ver = url + url_len;
    size_t ver_len = (size_t)(eol - ver);
    if (ver_len && ver[ver_len - 1] == '\r') ver_len--;
    if (ver_len != 9 || memcmp(ver, " HTTP/1.", 8) != 0 || ver[8] < '0' || ver[8] > '9') {
        set_err(err, err_cap, "malformed request line (expected \" HTTP/1.x\" after the target)");
        return 400;
    }

    /* The target. */
    const char *origin = NULL; /* origin-form path+query to send on */
    size_t origin_len = 0;
    if (req->is_connect) {
        if (url_len >= sizeof req->authority ||
            proxy_http_parse_authority(url, url_len, 0, true, &req->host, &req->port, err, err_cap) < 0) {
            if (url_len >= sizeof req->authority) set_err(err, err_cap, "CONNECT target too long");
            return 400;
        }
        memcpy(req->authority, url, url_len);
        req->authority[url_len] = '\0';
    } else {
        static const char http_scheme[] = "http://";
        size_t sl = sizeof http_scheme - 1;
        if (url_len < sl || strncasecmp(url, http_scheme, sl) != 0) {
            if (url_len && url[0] == '/') set_err(err, err_cap, "this is a proxy: request targets must be absolute (http://host/path)");
            else if (url_len >= 8 && strncasecmp(url, "https://", 8) == 0) set_err(err, err_cap, "https:// targets go through CONNECT");
            else set_err(err, err_cap, "unsupported request target (only http:// URLs and CONNECT)");
            return 400;
        }
        const char *a = url + sl, *ue = url + url_len;
        const char *ae = a;
        while (ae < ue && *ae != '/' && *ae != '?' && *ae != '#') ae++;
        if (memchr(a, '@', (size_t)(ae - a))) {
            set_err(err, err_cap, "credentials in the request target are not allowed");
            return 400;
        }
        if ((size_t)(ae - a) >= sizeof req->authority) {
            set_err(err, err_cap, "request target authority too long");
            return 400;
        }
        if (proxy_http_parse_authority(a, (size_t)(ae - a), 80, false, &req->host, &req->port, err, err_cap) < 0) return 400;
        memcpy(req->authority, a, (size_t)(ae - a));
        req->authority[ae - a] = '\0';
        const char *pe = memchr(ae, '#', (size_t)(ue - ae)); /* fragments are never sent */
        if (!pe) pe = ue;
        origin = ae;
        origin_len = (size_t)(pe - ae);
    }

    /* First pass over the headers: Connection tokens, Host, folding. */
    tokens_t conn_tokens = {0};
    size_t host_headers = 0;
    bool host_matches = false;
    for (const char *p = eol + 1; p < end;) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le) break;
        if (p[0] == '\n' || (p[0] == '\r' && p + 1 == le)) break; /* the empty line */
        if (p[0] == ' ' || p[0] == '\t') {
            set_err(err, err_cap, "obsolete header line folding is not accepted");
            return 400;
        }
        header_line_t h;
        if (split_header(p, le + 1, &h) < 0) {
            set_err(err, err_cap, "malformed header line");
            return 400;
        }
        if (ieq(h.name, h.name_len, "connection") || ieq(h.name, h.name_len, "proxy-connection"))
            add_tokens(&conn_tokens, h.value, h.value_len);
        if (ieq(h.name, h.name_len, "host")) {
            host_headers++;
            if (!req->is_connect && host_headers == 1) {
                proxy_host_t hh;
                uint16_t hport;
                char ignored[8];
                host_matches = proxy_http_parse_authority(h.value, h.value_len, 80, false, &hh, &hport, ignored, sizeof ignored) == 0 &&
                               same_host(&hh, hport, &req->host, req->port);
            }
        }
        p = le + 1;
    }
    if (host_headers > 1) {
        set_err(err, err_cap, "more than one Host header");
        return 400;
    }

    if (mode == PROXY_REWRITE_DIRECT && req->is_connect) return 0;

    /* Second pass: write the head to send on. */
    int rc = 0;
    if (mode == PROXY_REWRITE_DIRECT) {
        rc |= buf_append(out_head, line, (size_t)(url - line));
        if (origin_len == 0 || origin[0] != '/') rc |= buf_append_char(out_head, '/');
        rc |= buf_append(out_head, origin, origin_len);
        rc |= buf_append(out_head, url + url_len, (size_t)(eol + 1 - (url + url_len)));
    } else {
        rc |= buf_append(out_head, line, (size_t)(eol + 1 - line));
    }
    const char *final_line = end;
    for (const char *p = eol + 1; p < end;) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le) break;
        if (p[0] == '\n' || (p[0] == '\r' && p + 1 == le)) {
            final_line = p;
            break;
        }
        header_line_t h;
        split_header(p, le + 1, &h);
        p = le + 1;
        if (hop_by_hop(&h, req->upgrade)) continue;
        if (!protected_header(&h) && tokens_have(&conn_tokens, h.name, h.name_len) &&
            !(req->upgrade && ieq(h.name, h.name_len, "upgrade")))
            continue;
        if (!req->is_connect && ieq(h.name, h.name_len, "host") && !host_matches) {
            rc |= buf_printf(out_head, "Host: %s\r\n", req->authority);
            continue;
        }
        rc |= buf_append(out_head, h.line, h.line_len);
    }
    if (!req->is_connect) {
        if (host_headers == 0) rc |= buf_printf(out_head, "Host: %s\r\n", req->authority);
        if (req->upgrade) rc |= buf_append_str(out_head, "Connection: Upgrade\r\n");
        else if (!req->keep_alive) rc |= buf_append_str(out_head, "Connection: close\r\n");
        else if (req->http_minor == 0) rc |= buf_append_str(out_head, "Connection: keep-alive\r\n");
    }
    if (mode == PROXY_REWRITE_UPSTREAM && proxy_authorization && *proxy_authorization)
        rc |= buf_printf(out_head, "Proxy-Authorization: %s\r\n", proxy_authorization);
    rc |= buf_append(out_head, final_line, (size_t)(end - final_line));
    if (rc) {
        set_err(err, err_cap, "out of memory");
        return 500;
    }
    return 0;
}

int proxy_http_parse_response_head(http_parser *hp, const char *head, size_t len, bool skip_body,
                                   proxy_response_t *resp) {
    memset(resp, 0, sizeof *resp);
    head_ctx_t ctx = {.base = head, .skip_body = skip_body, .response = true};
    if (run_head(hp, &ctx, head, len) < 0) return -1;
    if (hp->http_major != 1) return -1;
    resp->status = hp->status_code;
    resp->upgrade = hp->upgrade && hp->status_code == 101;
    resp->complete = ctx.message_done;
    resp->keep_alive = http_should_keep_alive(hp) != 0;
    return 0;
}

size_t proxy_http_strip_header(char *head, size_t len, const char *name) {
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < len) {
        char *eol = memchr(head + i, '\n', len - i);
        size_t line_end = eol ? (size_t)(eol - head) + 1 : len;
        if (i > 0 && line_end - i > nlen && strncasecmp(head + i, name, nlen) == 0 && head[i + nlen] == ':') {
            memmove(head + i, head + line_end, len - line_end);
            len -= line_end - i;
            continue;
        }
        i = line_end;
    }
    return len;
}

/* ---- our own pages ----------------------------------------------------------------------- */

const char *proxy_http_reason(int status) {
    switch (status) {
    case 200: return "Connection established";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Error";
}

static int append_escaped(buf_t *b, const char *s) {
    int rc = 0;
    for (; *s && rc == 0; s++) {
        switch (*s) {
        case '<': rc = buf_append_str(b, "&lt;"); break;
        case '>': rc = buf_append_str(b, "&gt;"); break;
        case '&': rc = buf_append_str(b, "&amp;"); break;
        case '"': rc = buf_append_str(b, "&quot;"); break;
        case '\'': rc = buf_append_str(b, "&#39;"); break;
        default:
            rc = (unsigned char)*s < 0x20 ? buf_append_char(b, ' ') : buf_append_char(b, *s);
        }
    }
    return rc;
}

int proxy_http_error_response(buf_t *out, int status, const char *code, const char *message) {
    buf_t body;
    buf_init(&body);
    const char *reason = proxy_http_reason(status);
    int rc = buf_printf(&body,
                        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n"
                        "<body><h1>%d %s</h1>\n<p>",
                        status, reason, status, reason);
    rc |= append_escaped(&body, message);
    rc |= buf_append_str(&body, "</p>\n<p><code>");
    rc |= append_escaped(&body, code);
    rc |= buf_append_str(&body, "</code></p>\n<hr><p>browserd session proxy</p></body></html>\n");
    if (rc == 0)
        rc = buf_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\nCache-Control: no-store\r\nX-Browserd-Proxy-Error: %s\r\n\r\n",
                        status, reason, body.len, code);
    if (rc == 0) rc = buf_append(out, body.data, body.len);
    buf_free(&body);
    return rc ? -ENOMEM : 0;
}

/* ---- Basic credentials ------------------------------------------------------------------------- */

int proxy_base64(const unsigned char *in, size_t n, char *out, size_t out_cap) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (out_cap < need) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return (int)o;
}
