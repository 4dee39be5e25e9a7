/* Private-network guard of the traffic proxy: which destination addresses a browser may reach.
 *
 * Socket-free and allocation-free, so the unit tests and the fuzzer drive it directly.
 *
 * Two halves:
 *   - host text -> address: proxy_guard_parse_host tells an IPv4 literal in any of the numeric
 *     spellings a URL parser or inet_aton accepts (decimal, octal, hex, 1 to 4 parts, a trailing
 *     dot: "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "127.0.0.1."), an IPv6 literal
 *     ("[::1]"), a DNS name, or something that is none of these (refused: a host that ends in a
 *     number but is no valid IPv4 address would be read as one by some resolvers and as a name
 *     by others).
 *   - address -> class: proxy_guard_classify_* sorts an address into loopback, private,
 *     link-local, CGNAT, multicast, unspecified, broadcast, reserved or public. IPv6 forms
 *     that carry an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-translated ::ffff:0:0:0/96,
 *     IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32) take the
 *     class of the IPv4 address they carry.
 *
 * The decision (proxy_guard_check): public addresses pass; any other class passes only when the
 * address, or the IPv4 address it carries, lies in one of the operator's allowed CIDRs.
 *
 * Ownership: proxy_guard_t and proxy_cidr_t are plain values (no pointers); the caller owns them. */
#ifndef BROWSERD_PROXY_GUARD_H
#define BROWSERD_PROXY_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum {
    PROXY_ADDR_PUBLIC = 0,
    PROXY_ADDR_LOOPBACK,    /* 127/8, ::1 */
    PROXY_ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10, 64:ff9b:1::/48 */
    PROXY_ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    PROXY_ADDR_CGNAT,       /* 100.64/10 */
    PROXY_ADDR_MULTICAST,   /* 224/4, ff00::/8 */
    PROXY_ADDR_UNSPECIFIED, /* 0/8, :: */
    PROXY_ADDR_BROADCAST,   /* 255.255.255.255 */
    PROXY_ADDR_RESERVED,    /* 240/4, 192.0.0/24, 198.18/15, documentation nets, 100::/64, 2001:db8::/32 */
} proxy_addr_class_t;

/* "loopback", "private", ... "public": the words used in logs and in the 403 page. */
const char *proxy_addr_class_name(proxy_addr_class_t cls);

proxy_addr_class_t proxy_guard_classify_v4(const uint8_t a[4]);
/* For an IPv6 address that carries an IPv4 address, *embedded_out (if not NULL) receives it and
 * the function returns the IPv4 address's class (Teredo carries two: the worse class wins and
 * *embedded_out gets that one). *has_embedded_out tells whether there was one. */
proxy_addr_class_t proxy_guard_classify_v6(const uint8_t a[16], uint8_t embedded_out[4], bool *has_embedded_out);

/* An IP range: `family` AF_INET or AF_INET6, `addr` in network order (4 or 16 bytes used), the
 * bits past `prefix_len` zero. */
typedef struct {
    int family;
    unsigned prefix_len;
    uint8_t addr[16];
} proxy_cidr_t;

/* Parses "10.0.0.0/8", "fc00::/7", or a bare address (a /32 or /128). Strict: dotted-quad
 * decimal IPv4 only (no "10/8"), a prefix length in range, no host bits set past the prefix
 * ("10.0.0.1/8" is refused with a hint). Returns 0 or -EINVAL with a reason in err. */
int proxy_guard_parse_cidr(const char *text, proxy_cidr_t *out, char *err, size_t err_cap);

bool proxy_cidr_contains(const proxy_cidr_t *cidr, int family, const uint8_t *addr);

#define PROXY_GUARD_MAX_CIDRS 64

typedef struct {
    bool enabled;                 /* false: every address passes */
    size_t cidr_count;
    proxy_cidr_t cidrs[PROXY_GUARD_MAX_CIDRS];
} proxy_guard_t;

/* Whether a connection to `sa` (AF_INET or AF_INET6; anything else is refused) may be made.
 * *cls_out (optional) receives the address's class even when it is allowed. */
bool proxy_guard_check(const proxy_guard_t *g, const struct sockaddr *sa, proxy_addr_class_t *cls_out);
/* The same for raw address bytes: family AF_INET (4 bytes) or AF_INET6 (16 bytes). */
bool proxy_guard_check_raw(const proxy_guard_t *g, int family, const uint8_t *addr, proxy_addr_class_t *cls_out);

typedef enum {
    PROXY_HOST_INVALID = 0,
    PROXY_HOST_NAME,      /* a DNS name: lowercased, trailing dot removed */
    PROXY_HOST_IPV4,      /* addr[0..3] */
    PROXY_HOST_IPV6,      /* addr[0..15] */
} proxy_host_kind_t;

typedef struct {
    proxy_host_kind_t kind;
    uint8_t addr[16];
    bool localhost;       /* a name that is "localhost" or ends in ".localhost" (RFC 6761) */
    char name[256];       /* NAME: the canonical name; IPV4/IPV6: the canonical numeric text */
} proxy_host_t;

/* Parses a URL host as received (the text between "//" or the start of an authority and the
 * port): "[v6]", an IPv4 literal in any numeric spelling, or a DNS name (percent-decoded,
 * lowercased; letters, digits, '-', '_' and '.' only; at most 253 characters). Returns 0 or
 * -EINVAL with a reason in err. */
int proxy_guard_parse_host(const char *text, size_t len, proxy_host_t *out, char *err, size_t err_cap);

/* The IPv4 parser alone: 1 = `text` is an IPv4 literal (out filled), 0 = it does not end in a
 * number (a name), -1 = it ends in a number but is no valid IPv4 literal. `text` is the host
 * already percent-decoded. */
int proxy_guard_parse_ipv4(const char *text, size_t len, uint8_t out[4]);

/* The value of a hexadecimal digit (either case), or -1: the "%XX" escapes of hosts, and those
 * of the upstream proxy's credentials (proxy_upstream.c). */
int proxy_guard_hex_digit(char c);

#endif
