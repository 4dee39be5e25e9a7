/* libFuzzer target for the proxy's parsing: request heads (target parsing, header rewriting, the
 * body framing that follows), response heads, IPv4 spellings and hosts, CIDRs, upstream proxy
 * URLs. Every input goes through all of them; the checks are crashes, sanitizer reports, and a
 * few invariants:
 *   - a rewritten head is itself a complete head (ends in an empty line, scans to its length);
 *   - a host that parses as IPv4 parses again, from its canonical text, to the same address;
 *   - a parsed CIDR has no bits past its prefix. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_guard.h"
#include "proxy/proxy_http.h"
#include "proxy/proxy_upstream.h"

static int on_body(http_parser *hp, const char *at, size_t n) {
    (void)at;
    *(size_t *)hp->data += n;
    return 0;
}

static const http_parser_settings body_settings = {.on_body = on_body};

static void fuzz_request(const char *data, size_t size, proxy_rewrite_mode_t mode) {
    size_t scan = 0;
    size_t end = proxy_http_head_end(data, size, &scan);
    if (!end) return;
    http_parser hp;
    http_parser_init(&hp, HTTP_REQUEST);
    proxy_request_t req;
    buf_t out;
    buf_init(&out);
    char err[256];
    int st = proxy_http_parse_request(&hp, data, end, mode, "Basic dTpw", &req, &out, err, sizeof err);
    if (st == 0 && out.len) {
        size_t s2 = 0;
        if (proxy_http_head_end(out.data, out.len, &s2) != out.len) abort();
    }
    if (st == 0 && !req.complete && size > end) { /* (with no bytes http-parser reports 1 on error) */
        size_t payload = 0;
        hp.data = &payload;
        size_t used = http_parser_execute(&hp, &body_settings, data + end, size - end);
        if (used > size - end || payload > used) abort();
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
    const char *data = (const char *)bytes;
    fuzz_request(data, size, PROXY_REWRITE_DIRECT);
    fuzz_request(data, size, PROXY_REWRITE_UPSTREAM);

    size_t scan = 0;
    size_t end = proxy_http_head_end(data, size, &scan);
    if (end) {
        http_parser hp;
        http_parser_init(&hp, HTTP_RESPONSE);
        proxy_response_t resp;
        proxy_http_parse_response_head(&hp, data, end, size & 1, &resp);
    }

    /* The short-string parsers get the input up to the first NUL or line end. */
    char text[512];
    size_t n = 0;
    while (n < size && n < sizeof text - 1 && data[n] && data[n] != '\n') {
        text[n] = data[n];
        n++;
    }
    text[n] = '\0';

    proxy_host_t host;
    char err[256];
    if (proxy_guard_parse_host(text, n, &host, err, sizeof err) == 0 && host.kind == PROXY_HOST_IPV4) {
        uint8_t again[4];
        if (proxy_guard_parse_ipv4(host.name, strlen(host.name), again) != 1 || memcmp(again, host.addr, 4) != 0) abort();
        proxy_guard_classify_v4(host.addr);
    }
    if (host.kind == PROXY_HOST_IPV6) proxy_guard_classify_v6(host.addr, NULL, NULL);
    uint8_t a4[4];
    proxy_guard_parse_ipv4(text, n, a4);

    proxy_cidr_t cidr;
    if (proxy_guard_parse_cidr(text, &cidr, err, sizeof err) == 0) {
        unsigned bits = cidr.family == AF_INET ? 32 : 128;
        if (cidr.prefix_len > bits) abort();
        for (unsigned b = cidr.prefix_len; b < bits; b++)
            if (cidr.addr[b / 8] & (0x80u >> (b % 8))) abort();
    }

    proxy_upstream_t up;
    proxy_upstream_parse(text, &up, err, sizeof err);
    return 0;
}
