/* The upstream proxy of the traffic proxy, as configured: its URL, parsed.
 *
 * The rest of proxy_upstream.c is the socket side of every connection the traffic proxy opens
 * onwards (to a site, or to this upstream proxy): DNS, the private-network guard on resolved
 * addresses, connect, retry, failure. That part is private to src/proxy and declared in
 * proxy_internal.h.
 *
 * Ownership: proxy_upstream_t is a plain value (no pointers) that the caller owns; it holds the
 * credentials (user, and the password inside `authorization`), so callers should not log it. */
#ifndef BROWSERD_PROXY_UPSTREAM_H
#define BROWSERD_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An upstream proxy, parsed from "http://user:pass@host:port" (credentials optional, port
 * defaults to 80, path empty or "/"). user and pass are percent-decoded; `authorization` holds
 * the ready header value "Basic base64(user:pass)", or "" without credentials. */
typedef struct {
    char host[256];          /* name or numeric address, IPv6 without brackets */
    uint16_t port;
    bool has_credentials;
    char user[256];
    char authorization[1024];
} proxy_upstream_t;

/* Returns 0, or -EINVAL with the reason in err (which never contains the password). */
int proxy_upstream_parse(const char *url, proxy_upstream_t *out, char *err, size_t err_cap);

#endif
