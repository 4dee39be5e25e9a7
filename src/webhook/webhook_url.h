/* Webhook URLs: what browserd accepts, and the private-network guard applied to them.
 *
 * Accepted: http:// or https://HOST[:PORT][/PATH][?QUERY], HOST a DNS name, an IPv4 literal
 * or [IPv6]; at most STORE_WEBHOOK_URL_MAX characters, no spaces or control characters.
 * Refused with a reason: any other scheme, credentials in the URL, a fragment.
 *
 * The guard is the traffic proxy's (proxy/proxy_guard.h): a receiver must be a public
 * address unless an --allow-private range covers it. It is applied twice: when the webhook
 * is added (webhook_url_vet: every address its name resolves to then) and at every delivery,
 * to the addresses resolved for it (webhook_http.c), since a name may resolve elsewhere later.
 *
 * Threading: webhook_url_parse is pure; webhook_url_vet resolves the name (blocking: the
 * command line, or the dispatcher's own thread). Ownership: plain values. */
#ifndef BROWSERD_WEBHOOK_WEBHOOK_URL_H
#define BROWSERD_WEBHOOK_WEBHOOK_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proxy_guard.h"
#include "store/store_webhooks.h"

typedef struct {
    proxy_host_t host;                        /* name or literal, canonical */
    bool tls;                                 /* https:// */
    uint16_t port;                            /* 80 (http) or 443 (https) unless given */
    char host_header[300];                    /* the Host header's value: as written, with the port */
    char target[STORE_WEBHOOK_URL_MAX + 1];   /* the request target: path and query ("/" at least) */
} webhook_url_t;

/* 0, or -EINVAL with a reason in err. */
int webhook_url_parse(const char *url, webhook_url_t *out, char *err, size_t err_cap);

/* The guard of these --allow-private ranges (CIDR texts); -EINVAL naming the bad one. */
int webhook_url_guard(const char *const *allow_private, size_t count, proxy_guard_t *out, char *err, size_t err_cap);

/* Parses the URL and resolves its host (a localhost name is loopback, whatever DNS says):
 * 0 when every address passes the guard; -EINVAL (not a URL this accepts), -EACCES (an
 * address the guard refuses: named with its class) or -ENOENT (the name does not resolve),
 * each with a reason in err. */
int webhook_url_vet(const char *url, const proxy_guard_t *guard, char *err, size_t err_cap);

/* A resolved address for a delivery. */
typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;
} webhook_addr_t;
#define WEBHOOK_MAX_ADDRS 8

/* Resolves u's host (blocking) into up to WEBHOOK_MAX_ADDRS addresses the guard allows, with
 * u's port: 0 and *count >= 1; -EACCES when it resolved only to refused addresses; -ENOENT
 * when it did not resolve. A reason in err. */
int webhook_url_resolve(const webhook_url_t *u, const proxy_guard_t *guard, webhook_addr_t *addrs, size_t *count,
                        char *err, size_t err_cap);

#endif
