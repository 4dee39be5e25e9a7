/* Private-network guard: host parsing, address classes, CIDRs. See proxy_guard.h. */
#include "proxy/proxy_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t cap, const char *fmt, const char *arg) {
    if (err && cap) snprintf(err, cap, fmt, arg ? arg : "");
}

const char *proxy_addr_class_name(proxy_addr_class_t cls) {
    switch (cls) {
    case PROXY_ADDR_PUBLIC: return "public";
    case PROXY_ADDR_LOOPBACK: return "loopback";
    case PROXY_ADDR_PRIVATE: return "private";
    case PROXY_ADDR_LINK_LOCAL: return "link-local";
    case PROXY_ADDR_CGNAT: return "shared (CGNAT)";
    case PROXY_ADDR_MULTICAST: return "multicast";
    case PROXY_ADDR_UNSPECIFIED: return "unspecified";
    case PROXY_ADDR_BROADCAST: return "broadcast";
    case PROXY_ADDR_RESERVED: return "reserved";
    }
    return "unknown";
}

/* ---- classes ---------------------------------------------------------------------------- */

static bool v4_in(const uint8_t a[4], uint32_t net, unsigned prefix) {
    uint32_t x = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
    uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    return (x & mask) == net;
}

proxy_addr_class_t proxy_guard_classify_v4(const uint8_t a[4]) {
    if (v4_in(a, 0x00000000u, 8)) return PROXY_ADDR_UNSPECIFIED;  /* "this network" */
    if (v4_in(a, 0x7f000000u, 8)) return PROXY_ADDR_LOOPBACK;
    if (v4_in(a, 0x0a000000u, 8)) return PROXY_ADDR_PRIVATE;
    if (v4_in(a, 0xac100000u, 12)) return PROXY_ADDR_PRIVATE;
    if (v4_in(a, 0xc0a80000u, 16)) return PROXY_ADDR_PRIVATE;
    if (v4_in(a, 0xa9fe0000u, 16)) return PROXY_ADDR_LINK_LOCAL;
    if (v4_in(a, 0x64400000u, 10)) return PROXY_ADDR_CGNAT;
    if (v4_in(a, 0xe0000000u, 4)) return PROXY_ADDR_MULTICAST;
    if (v4_in(a, 0xffffffffu, 32)) return PROXY_ADDR_BROADCAST;
    if (v4_in(a, 0xf0000000u, 4)) return PROXY_ADDR_RESERVED;   /* class E */
    /* Special-purpose blocks (RFC 6890): IETF assignments, benchmarking (often used for lab
     * networks), documentation. Nothing a browser needs, and some are routed internally. */
    if (v4_in(a, 0xc0000000u, 24)) return PROXY_ADDR_RESERVED;
    if (v4_in(a, 0xc6120000u, 15)) return PROXY_ADDR_RESERVED;
    if (v4_in(a, 0xc0000200u, 24)) return PROXY_ADDR_RESERVED;
    if (v4_in(a, 0xc6336400u, 24)) return PROXY_ADDR_RESERVED;
    if (v4_in(a, 0xcb007100u, 24)) return PROXY_ADDR_RESERVED;
    return PROXY_ADDR_PUBLIC;
}

static bool v6_prefix(const uint8_t a[16], const uint8_t *p, unsigned bits) {
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, p, full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (p[full] & mask);
}

/* Of two classes, the one that should decide (any non-public class beats public). */
static proxy_addr_class_t worse(proxy_addr_class_t x, proxy_addr_class_t y) { return x != PROXY_ADDR_PUBLIC ? x : y; }

proxy_addr_class_t proxy_guard_classify_v6(const uint8_t a[16], uint8_t embedded_out[4], bool *has_embedded_out) {
    static const uint8_t zero[16] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
    static const uint8_t six_to_four[2] = {0x20, 0x02};
    static const uint8_t teredo[4] = {0x20, 0x01, 0, 0};
    static const uint8_t discard[8] = {0x01, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t documentation[4] = {0x20, 0x01, 0x0d, 0xb8};
    uint8_t v4[4];
    bool has = false;
    proxy_addr_class_t cls = PROXY_ADDR_PUBLIC;

    if (memcmp(a, zero, 16) == 0) {
        cls = PROXY_ADDR_UNSPECIFIED;
    } else if (memcmp(a, zero, 15) == 0 && a[15] == 1) {
        cls = PROXY_ADDR_LOOPBACK;
    } else if (memcmp(a, mapped, 12) == 0 || memcmp(a, translated, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
               memcmp(a, zero, 12) == 0 /* IPv4-compatible, deprecated but still routed by some stacks */) {
        memcpy(v4, a + 12, 4);
        has = true;
        cls = proxy_guard_classify_v4(v4);
    } else if (memcmp(a, nat64_local, 6) == 0) {
        cls = PROXY_ADDR_PRIVATE; /* RFC 8215 local-use translation: maps to whatever is local */
    } else if (memcmp(a, six_to_four, 2) == 0) {
        memcpy(v4, a + 2, 4);
        has = true;
        cls = proxy_guard_classify_v4(v4);
    } else if (memcmp(a, teredo, 4) == 0) {
        /* Teredo: bytes 4..7 are the server, 12..15 the client's address inverted. */
        uint8_t server[4], client[4];
        memcpy(server, a + 4, 4);
        for (int i = 0; i < 4; i++) client[i] = (uint8_t)~a[12 + i];
        proxy_addr_class_t cs = proxy_guard_classify_v4(server), cc = proxy_guard_classify_v4(client);
        has = true;
        if (cs != PROXY_ADDR_PUBLIC) {
            memcpy(v4, server, 4);
            cls = cs;
        } else {
            memcpy(v4, client, 4);
            cls = worse(cc, cs);
        }
    } else if (a[0] == 0xff) {
        cls = PROXY_ADDR_MULTICAST;
    } else if ((a[0] & 0xfe) == 0xfc) {
        cls = PROXY_ADDR_PRIVATE; /* fc00::/7 unique local */
    } else if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) {
        cls = PROXY_ADDR_LINK_LOCAL; /* fe80::/10 */
    } else if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) {
        cls = PROXY_ADDR_PRIVATE; /* fec0::/10 site-local, deprecated */
    } else if (v6_prefix(a, discard, 64) || v6_prefix(a, documentation, 32)) {
        cls = PROXY_ADDR_RESERVED;
    }
    if (has_embedded_out) *has_embedded_out = has;
    if (embedded_out && has) memcpy(embedded_out, v4, 4);
    return cls;
}

/* ---- CIDRs -------------------------------------------------------------------------------- */

bool proxy_cidr_contains(const proxy_cidr_t *cidr, int family, const uint8_t *addr) {
    if (cidr->family != family) return false;
    unsigned bits = cidr->prefix_len, full = bits / 8, rest = bits % 8;
    if (memcmp(cidr->addr, addr, full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (cidr->addr[full] & mask) == (addr[full] & mask);
}

int proxy_guard_parse_cidr(const char *text, proxy_cidr_t *out, char *err, size_t err_cap) {
    if (!text || !*text) {
        set_err(err, err_cap, "empty CIDR%s", NULL);
        return -EINVAL;
    }
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof addr) {
        set_err(err, err_cap, "\"%s\" is not an address/prefix (e.g. 10.0.0.0/8 or fc00::/7)", text);
        return -EINVAL;
    }
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    proxy_cidr_t c;
    memset(&c, 0, sizeof c);
    unsigned max_bits;
    if (inet_pton(AF_INET, addr, c.addr) == 1) {
        c.family = AF_INET;
        max_bits = 32;
    } else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
        c.family = AF_INET6;
        max_bits = 128;
    } else {
        set_err(err, err_cap,
                "\"%s\" is not a numeric address (IPv4 as a.b.c.d in decimal, or IPv6; no names)", addr);
        return -EINVAL;
    }
    c.prefix_len = max_bits;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3) {
            set_err(err, err_cap, "bad prefix length in \"%s\"", text);
            return -EINVAL;
        }
        unsigned v = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                set_err(err, err_cap, "bad prefix length in \"%s\"", text);
                return -EINVAL;
            }
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > max_bits) {
            char msg[96];
            snprintf(msg, sizeof msg, "prefix length %u is over %u", v, max_bits);
            set_err(err, err_cap, "%s", msg);
            return -EINVAL;
        }
        c.prefix_len = v;
    }
    /* Host bits set past the prefix usually mean a typo ("10.0.0.1/8"): refuse instead of
     * silently widening or narrowing what the operator opened. */
    for (unsigned bit = c.prefix_len; bit < max_bits; bit++) {
        if (c.addr[bit / 8] & (0x80u >> (bit % 8))) {
            proxy_cidr_t net = c;
            for (unsigned b = c.prefix_len; b < max_bits; b++) net.addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
            char ntext[INET6_ADDRSTRLEN], msg[160];
            inet_ntop(c.family, net.addr, ntext, sizeof ntext);
            snprintf(msg, sizeof msg, "host bits set in \"%.64s\" (did you mean %s/%u?)", text, ntext, c.prefix_len);
            set_err(err, err_cap, "%s", msg);
            return -EINVAL;
        }
    }
    *out = c;
    return 0;
}

/* ---- the decision -------------------------------------------------------------------------- */

static bool allowed_by_cidr(const proxy_guard_t *g, int family, const uint8_t *addr) {
    for (size_t i = 0; i < g->cidr_count; i++)
        if (proxy_cidr_contains(&g->cidrs[i], family, addr)) return true;
    return false;
}

bool proxy_guard_check_raw(const proxy_guard_t *g, int family, const uint8_t *addr, proxy_addr_class_t *cls_out) {
    proxy_addr_class_t cls;
    uint8_t v4[4];
    bool has_v4 = false;
    if (family == AF_INET) cls = proxy_guard_classify_v4(addr);
    else if (family == AF_INET6) cls = proxy_guard_classify_v6(addr, v4, &has_v4);
    else {
        if (cls_out) *cls_out = PROXY_ADDR_RESERVED;
        return false;
    }
    if (cls_out) *cls_out = cls;
    if (!g->enabled || cls == PROXY_ADDR_PUBLIC) return true;
    if (allowed_by_cidr(g, family, addr)) return true;
    return has_v4 && allowed_by_cidr(g, AF_INET, v4);
}

bool proxy_guard_check(const proxy_guard_t *g, const struct sockaddr *sa, proxy_addr_class_t *cls_out) {
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return proxy_guard_check_raw(g, AF_INET, (const uint8_t *)&in->sin_addr, cls_out);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return proxy_guard_check_raw(g, AF_INET6, in6->sin6_addr.s6_addr, cls_out);
    }
    if (cls_out) *cls_out = PROXY_ADDR_RESERVED;
    return false;
}

/* ---- host text ------------------------------------------------------------------------------ */

/* One IPv4 part in URL-parser/inet_aton spelling: "0x.." hex (may be empty: "0x" is 0), "0.."
 * octal, else decimal. Returns false when it is not a number or passes 2^32. */
static bool parse_v4_part(const char *s, size_t n, uint64_t *out) {
    if (n == 0) return false;
    unsigned base = 10;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        n -= 2;
    } else if (n >= 2 && s[0] == '0') {
        base = 8;
        s += 1;
        n -= 1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        char ch = s[i];
        if (ch >= '0' && ch <= '9') d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') d = (unsigned)(ch - 'A' + 10);
        else return false;
        if (d >= base) return false;
        v = v * base + d;
        if (v > 0xffffffffull) return false;
    }
    *out = v;
    return true;
}

/* Whether the last label is a number in the sense of the URL standard's "ends in a number":
 * all decimal digits, or "0x"/"0X" followed by hex digits. */
static bool ends_in_number(const char *s, size_t n) {
    if (n && s[n - 1] == '.') n--;
    size_t start = n;
    while (start > 0 && s[start - 1] != '.') start--;
    const char *l = s + start;
    size_t ln = n - start;
    if (ln == 0) return false;
    bool digits = true;
    for (size_t i = 0; i < ln; i++)
        if (l[i] < '0' || l[i] > '9') digits = false;
    if (digits) return true;
    if (ln >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
        for (size_t i = 2; i < ln; i++) {
            char ch = l[i];
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) return false;
        }
        return true;
    }
    return false;
}

int proxy_guard_parse_ipv4(const char *text, size_t len, uint8_t out[4]) {
    if (!ends_in_number(text, len)) return 0;
    size_t n = len;
    if (n && text[n - 1] == '.') n--; /* one trailing dot is the root label, as resolvers read it */
    uint64_t parts[4];
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || text[i] == '.') {
            if (count == 4) return -1;
            if (!parse_v4_part(text + start, i - start, &parts[count])) return -1;
            count++;
            start = i + 1;
        }
    }
    if (count == 0) return -1;
    for (size_t i = 0; i + 1 < count; i++)
        if (parts[i] > 255) return -1;
    uint64_t last_max = count == 1 ? 0xffffffffull : (1ull << (8 * (5 - count))) - 1;
    if (parts[count - 1] > last_max) return -1;
    uint32_t v = (uint32_t)parts[count - 1];
    for (size_t i = 0; i + 1 < count; i++) v |= (uint32_t)parts[i] << (8 * (3 - i));
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
    return 1;
}

int proxy_guard_hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int proxy_guard_parse_host(const char *text, size_t len, proxy_host_t *out, char *err, size_t err_cap) {
    memset(out, 0, sizeof *out);
    out->kind = PROXY_HOST_INVALID;
    if (len == 0) {
        set_err(err, err_cap, "empty host%s", NULL);
        return -EINVAL;
    }
    if (text[0] == '[') {
        char tmp[64];
        if (len < 3 || text[len - 1] != ']' || len - 2 >= sizeof tmp) {
            set_err(err, err_cap, "malformed IPv6 literal%s", NULL);
            return -EINVAL;
        }
        memcpy(tmp, text + 1, len - 2);
        tmp[len - 2] = '\0';
        /* Zone identifiers ("%25eth0") name an interface of this machine: never a site. */
        if (strchr(tmp, '%') || inet_pton(AF_INET6, tmp, out->addr) != 1) {
            set_err(err, err_cap, "malformed IPv6 literal%s", NULL);
            return -EINVAL;
        }
        out->kind = PROXY_HOST_IPV6;
        inet_ntop(AF_INET6, out->addr, out->name, sizeof out->name);
        return 0;
    }
    /* Percent-decode and lowercase first, as a URL parser does before it looks for an IPv4
     * address: "%31%32%37.0.0.1" is 127.0.0.1. */
    char host[256];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '%') {
            int hi = i + 2 < len ? proxy_guard_hex_digit(text[i + 1]) : -1;
            int lo = i + 2 < len ? proxy_guard_hex_digit(text[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                set_err(err, err_cap, "bad percent-encoding in host%s", NULL);
                return -EINVAL;
            }
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if (n + 1 >= sizeof host) {
            set_err(err, err_cap, "host name too long%s", NULL);
            return -EINVAL;
        }
        host[n++] = ch;
    }
    host[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        char ch = host[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok) {
            set_err(err, err_cap, "invalid character in host name%s", NULL);
            return -EINVAL;
        }
    }
    int v4 = proxy_guard_parse_ipv4(host, n, out->addr);
    if (v4 < 0) {
        set_err(err, err_cap, "host ends in a number but is not a valid IPv4 address%s", NULL);
        return -EINVAL;
    }
    if (v4 == 1) {
        out->kind = PROXY_HOST_IPV4;
        inet_ntop(AF_INET, out->addr, out->name, sizeof out->name);
        return 0;
    }
    if (n && host[n - 1] == '.') host[--n] = '\0';
    if (n == 0 || n > 253) {
        set_err(err, err_cap, "invalid host name length%s", NULL);
        return -EINVAL;
    }
    /* Empty labels ("a..b", ".a") are no DNS names. */
    if (host[0] == '.' || strstr(host, "..")) {
        set_err(err, err_cap, "empty label in host name%s", NULL);
        return -EINVAL;
    }
    out->kind = PROXY_HOST_NAME;
    memcpy(out->name, host, n + 1);
    out->localhost = strcmp(host, "localhost") == 0 || (n > 10 && strcmp(host + n - 10, ".localhost") == 0);
    return 0;
}
