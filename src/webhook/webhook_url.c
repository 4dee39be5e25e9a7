#include "webhook/webhook_url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int webhook_url_parse(const char *url, webhook_url_t *out, char *err, size_t err_cap) {
    memset(out, 0, sizeof *out);
    size_t len = strlen(url);
    if (len == 0 || len > STORE_WEBHOOK_URL_MAX) {
        snprintf(err, err_cap, "a webhook URL has 1 to %d characters", STORE_WEBHOOK_URL_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f) {
            snprintf(err, err_cap, "the URL has a space or a control character (at %zu): percent-encode it", i);
            return -EINVAL;
        }
    out->tls = strncasecmp(url, "https://", 8) == 0;
    if (!out->tls && strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, err_cap, "expected an http:// or https:// URL");
        return -EINVAL;
    }
    if (strchr(url, '#')) {
        snprintf(err, err_cap, "a webhook URL has no fragment (#)");
        return -EINVAL;
    }
    const char *auth = url + (out->tls ? 8 : 7), *end = auth + strcspn(auth, "/?");
    if (memchr(auth, '@', (size_t)(end - auth))) {
        snprintf(err, err_cap, "credentials in a webhook URL are not supported: the signature authenticates browserd");
        return -EINVAL;
    }
    /* host, then an optional :port (an IPv6 literal's colons are inside its brackets) */
    const char *host_end = end;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(end - auth));
        if (!close) {
            snprintf(err, err_cap, "an IPv6 host needs its closing ]");
            return -EINVAL;
        }
        host_end = close + 1;
    } else {
        const char *colon = memchr(auth, ':', (size_t)(end - auth));
        if (colon) host_end = colon;
    }
    out->port = out->tls ? 443 : 80;
    if (host_end < end) {
        if (*host_end != ':' || host_end + 1 == end) {
            snprintf(err, err_cap, "expected :PORT after the host");
            return -EINVAL;
        }
        long port = 0;
        for (const char *p = host_end + 1; p < end; p++) {
            if (*p < '0' || *p > '9' || port > 65535) {
                snprintf(err, err_cap, "the port is not a number from 1 to 65535");
                return -EINVAL;
            }
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535) {
            snprintf(err, err_cap, "the port is not a number from 1 to 65535");
            return -EINVAL;
        }
        out->port = (uint16_t)port;
    }
    char why[200];
    if (host_end == auth || proxy_guard_parse_host(auth, (size_t)(host_end - auth), &out->host, why, sizeof why) < 0) {
        snprintf(err, err_cap, "invalid host: %s", host_end == auth ? "empty" : why);
        return -EINVAL;
    }
    if ((size_t)(end - auth) >= sizeof out->host_header) {
        snprintf(err, err_cap, "the host is too long");
        return -EINVAL;
    }
    memcpy(out->host_header, auth, (size_t)(end - auth));
    snprintf(out->target, sizeof out->target, "%s%s", *end == '/' ? "" : "/", end);
    return 0;
}

int webhook_url_guard(const char *const *allow_private, size_t count, proxy_guard_t *out, char *err, size_t err_cap) {
    memset(out, 0, sizeof *out);
    out->enabled = true;
    if (count > PROXY_GUARD_MAX_CIDRS) {
        snprintf(err, err_cap, "at most %d --allow-private ranges", PROXY_GUARD_MAX_CIDRS);
        return -EINVAL;
    }
    for (size_t i = 0; i < count; i++) {
        char why[200];
        if (proxy_guard_parse_cidr(allow_private[i], &out->cidrs[i], why, sizeof why) < 0) {
            snprintf(err, err_cap, "--allow-private %s: %s", allow_private[i], why);
            return -EINVAL;
        }
        out->cidr_count++;
    }
    return 0;
}

static void set_addr(webhook_addr_t *a, int family, const uint8_t *bytes, uint16_t port) {
    memset(a, 0, sizeof *a);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, bytes, 4);
        a->len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(&sin6->sin6_addr, bytes, 16);
        a->len = sizeof *sin6;
    }
}

static void addr_text(const struct sockaddr *sa, char *out, size_t cap) {
    const void *a = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                                             : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)cap)) snprintf(out, cap, "?");
}

/* Every address of the host as the delivery would see it: a literal as it is, a localhost
 * name as loopback (RFC 6761), a name through the resolver. */
static int candidates(const webhook_url_t *u, webhook_addr_t *addrs, size_t *count, char *err, size_t err_cap) {
    static const uint8_t lo4[4] = {127, 0, 0, 1};
    static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    *count = 0;
    if (u->host.kind == PROXY_HOST_IPV4 || u->host.kind == PROXY_HOST_IPV6) {
        set_addr(&addrs[0], u->host.kind == PROXY_HOST_IPV4 ? AF_INET : AF_INET6, u->host.addr, u->port);
        *count = 1;
        return 0;
    }
    if (u->host.localhost) {
        set_addr(&addrs[0], AF_INET, lo4, u->port);
        set_addr(&addrs[1], AF_INET6, lo6, u->port);
        *count = 2;
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)u->port);
    int rc = getaddrinfo(u->host.name, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot resolve %s: %s", u->host.name, gai_strerror(rc));
        return -ENOENT;
    }
    for (const struct addrinfo *ai = res; ai && *count < WEBHOOK_MAX_ADDRS; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof addrs[0].addr) continue;
        memcpy(&addrs[*count].addr, ai->ai_addr, ai->ai_addrlen);
        addrs[*count].len = ai->ai_addrlen;
        (*count)++;
    }
    freeaddrinfo(res);
    if (*count == 0) {
        snprintf(err, err_cap, "%s has no IPv4 or IPv6 address", u->host.name);
        return -ENOENT;
    }
    return 0;
}

/* Keeps the allowed addresses (in order); -EACCES naming the first refused one when none is. */
static int keep_allowed(const webhook_url_t *u, const proxy_guard_t *guard, webhook_addr_t *addrs, size_t *count,
                        bool all, char *err, size_t err_cap) {
    size_t kept = 0;
    char refused[INET6_ADDRSTRLEN] = "";
    proxy_addr_class_t refused_cls = PROXY_ADDR_PUBLIC;
    for (size_t i = 0; i < *count; i++) {
        proxy_addr_class_t cls;
        if (!proxy_guard_check(guard, (const struct sockaddr *)&addrs[i].addr, &cls)) {
            if (!refused[0]) {
                addr_text((const struct sockaddr *)&addrs[i].addr, refused, sizeof refused);
                refused_cls = cls;
            }
            continue;
        }
        addrs[kept++] = addrs[i];
    }
    *count = kept;
    if (refused[0] && (all || kept == 0)) {
        snprintf(err, err_cap, "%s is %s, an address of the class '%s': webhooks may not reach it unless "
                 "--allow-private covers it", u->host.kind == PROXY_HOST_NAME ? u->host.name : "the host", refused,
                 proxy_addr_class_name(refused_cls));
        return -EACCES;
    }
    return 0;
}

int webhook_url_resolve(const webhook_url_t *u, const proxy_guard_t *guard, webhook_addr_t *addrs, size_t *count,
                        char *err, size_t err_cap) {
    int rc = candidates(u, addrs, count, err, err_cap);
    return rc != 0 ? rc : keep_allowed(u, guard, addrs, count, false, err, err_cap);
}

int webhook_url_vet(const char *url, const proxy_guard_t *guard, char *err, size_t err_cap) {
    webhook_url_t u;
    int rc = webhook_url_parse(url, &u, err, err_cap);
    if (rc != 0) return rc;
    webhook_addr_t addrs[WEBHOOK_MAX_ADDRS];
    size_t count = 0;
    if ((rc = candidates(&u, addrs, &count, err, err_cap)) != 0) return rc;
    /* At add time every address must pass: a name that also resolves to a private address is
     * refused, rather than sometimes delivered (the delivery would skip that address). */
    return keep_allowed(&u, guard, addrs, &count, true, err, err_cap);
}
