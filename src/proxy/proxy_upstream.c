/* The traffic proxy's connections onwards (to a site, or to the upstream proxy): DNS, the
 * private-network guard on resolved addresses, connect, retry, failure, close. See
 * proxy_internal.h. Then the upstream proxy's URL (proxy_upstream.h). */
#include "proxy/proxy_upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/lifetime.h"
#include "proxy/proxy_guard.h"
#include "proxy/proxy_http.h"
#include "proxy/proxy_internal.h"

/* Tests swap these (proxy_upstream_set_hooks) to resolve names without a DNS server and to
 * watch every address the proxy connects to. */
static proxy_resolve_fn_t resolve_fn = uv_getaddrinfo;
static proxy_connect_fn_t connect_fn = uv_tcp_connect;

void proxy_upstream_set_hooks(proxy_resolve_fn_t resolve, proxy_connect_fn_t connect) {
    resolve_fn = resolve ? resolve : uv_getaddrinfo;
    connect_fn = connect ? connect : uv_tcp_connect;
}

struct resolve {
    uv_getaddrinfo_t req;
    conn_t *conn;      /* NULL once abandoned */
};

/* ---- closing ----------------------------------------------------------------------------------- */

static void up_release(net_lifetime_t *life) {
    upstream_t *u = (upstream_t *)life;
    conn_t *c = u->conn;
    free(u);
    net_lifetime_unref(&c->lifetime);
}

void proxy_upstream_abandon_resolve(conn_t *c) {
    if (!c->resolve) return;
    c->resolve->conn = NULL;
    uv_cancel((uv_req_t *)&c->resolve->req); /* only works before a pool thread took it; fine */
    c->resolve = NULL;
    c->proxy->stats.pending_resolutions--;
}

void proxy_upstream_close(conn_t *c, bool reset) {
    upstream_t *u = c->up;
    if (!u) return;
    proxy_splice_stop(c);
    c->up = NULL;
    u->closing = true;
    proxy_chunk_unref(u->in);
    u->in = NULL;
    u->in_len = 0;
    if (u->counted) {
        u->counted = false;
        c->proxy->counts.upstream_connections_open--;
    }
    proxy_splice_close_poll(&u->poll, &u->poll_inited); /* before the socket: it watches its fd */
    proxy_close_tcp(&u->tcp, reset && u->connected && !u->shutdown_sent);
}

/* ---- resolving and connecting ------------------------------------------------------------------ */

static void try_connect(conn_t *c);
static void fail_connect(conn_t *c);

/* Fills c->addrs from an addrinfo list, keeping what the guard allows (direct mode). Returns
 * false when it has answered 403. */
static bool take_addresses(conn_t *c, const struct addrinfo *res) {
    traffic_proxy_t *p = c->proxy;
    bool check = !c->via_proxy && p->guard.enabled;
    proxy_addr_class_t refused_cls = PROXY_ADDR_PUBLIC;
    char refused[INET6_ADDRSTRLEN] = "";
    c->addr_count = c->addr_next = 0;
    for (const struct addrinfo *ai = res; ai && c->addr_count < PROXY_MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        proxy_addr_class_t cls;
        if (check && !proxy_guard_check(&p->guard, ai->ai_addr, &cls)) {
            if (!refused[0]) {
                refused_cls = cls;
                const void *a = ai->ai_family == AF_INET
                                    ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                    : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
                inet_ntop(ai->ai_family, a, refused, sizeof refused);
            }
            continue;
        }
        memcpy(&c->addrs[c->addr_count++], ai->ai_addr, ai->ai_addrlen);
    }
    if (c->addr_count == 0 && refused[0]) {
        proxy_exchange_send_error(
            c, 403, "ERR_BLOCKED_PRIVATE_NETWORK",
            "%s resolves to %s, an address of the class '%s'; this session may not reach private networks.",
            c->req.host.name, refused, proxy_addr_class_name(refused_cls));
        return false;
    }
    if (c->addr_count == 0) {
        proxy_exchange_send_error(c, 502, "ERR_NAME_NOT_RESOLVED", "%s has no IPv4 or IPv6 address.", c->req.host.name);
        return false;
    }
    return true;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    resolve_t *r = (resolve_t *)req;
    conn_t *c = r->conn;
    free(r);
    if (!c) { /* abandoned: the connection is gone or stopped waiting */
        if (res) uv_freeaddrinfo(res);
        return;
    }
    c->resolve = NULL;
    c->proxy->stats.pending_resolutions--;
    if (status < 0) {
        if (c->via_proxy)
            proxy_exchange_send_error(c, 502, "ERR_PROXY_CONNECTION_FAILED",
                                      "The upstream proxy's name %s could not be resolved (%s).",
                                      c->proxy->upstream.host, uv_strerror(status));
        else
            proxy_exchange_send_error(c, 502, "ERR_NAME_NOT_RESOLVED", "The name %s could not be resolved (%s).",
                                      c->req.host.name, uv_strerror(status));
        if (res) uv_freeaddrinfo(res);
        return;
    }
    bool ok = take_addresses(c, res);
    uv_freeaddrinfo(res);
    if (ok) try_connect(c);
}

static void set_addr(struct sockaddr_storage *ss, int family, const uint8_t *addr, uint16_t port) {
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, addr, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        memcpy(&in6->sin6_addr, addr, 16);
    }
}

void proxy_upstream_connect(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    c->req_state = REQ_CONNECTING;
    c->phase_start = proxy_now(c);
    c->last_error = 0;
    const proxy_host_t *h = c->via_proxy ? &p->upstream_host : &c->req.host;
    uint16_t port = c->via_proxy ? p->upstream.port : c->req.port;
    if (h->kind == PROXY_HOST_IPV4 || h->kind == PROXY_HOST_IPV6) {
        /* A literal: no resolution; the guard already passed it (or it is the upstream proxy). */
        set_addr(&c->addrs[0], h->kind == PROXY_HOST_IPV4 ? AF_INET : AF_INET6, h->addr, port);
        c->addr_count = 1;
        c->addr_next = 0;
        try_connect(c);
        return;
    }
    if (!c->via_proxy && h->localhost) {
        /* RFC 6761: localhost names are this machine, whatever a DNS server says. */
        static const uint8_t lo4[4] = {127, 0, 0, 1};
        static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        struct sockaddr_storage ss[2];
        set_addr(&ss[0], AF_INET, lo4, port);
        set_addr(&ss[1], AF_INET6, lo6, port);
        struct addrinfo ai[2];
        memset(ai, 0, sizeof ai);
        ai[0].ai_family = AF_INET;
        ai[0].ai_addr = (struct sockaddr *)&ss[0];
        ai[0].ai_addrlen = sizeof(struct sockaddr_in);
        ai[0].ai_next = &ai[1];
        ai[1].ai_family = AF_INET6;
        ai[1].ai_addr = (struct sockaddr *)&ss[1];
        ai[1].ai_addrlen = sizeof(struct sockaddr_in6);
        if (take_addresses(c, ai)) try_connect(c);
        return;
    }
    resolve_t *r = calloc(1, sizeof *r);
    if (!r) {
        proxy_exchange_send_error(c, 502, "ERR_INSUFFICIENT_RESOURCES", "Out of memory.");
        return;
    }
    r->conn = c;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = resolve_fn(p->loop, &r->req, on_resolved, h->name, service, &hints);
    if (rc < 0) {
        free(r);
        proxy_exchange_send_error(c, 502, "ERR_NAME_NOT_RESOLVED", "The name %s could not be resolved (%s).", h->name,
                                  uv_strerror(rc));
        return;
    }
    c->resolve = r;
    p->stats.pending_resolutions++;
    proxy_conn_update(c);
}

static void on_up_connected(uv_connect_t *req, int status);

static void try_connect(conn_t *c) {
    traffic_proxy_t *p = c->proxy;
    while (c->life == CONN_OPEN && c->addr_next < c->addr_count) {
        upstream_t *u = calloc(1, sizeof *u);
        if (!u) {
            c->last_error = UV_ENOMEM;
            break;
        }
        if (uv_tcp_init(p->loop, &u->tcp) < 0) {
            free(u);
            c->last_error = UV_ENOMEM;
            break;
        }
        u->tcp.data = u;
        u->conn = c;
        net_lifetime_init(&u->lifetime, 1, up_release); /* the socket */
        net_lifetime_ref(&c->lifetime);                 /* until up_release */
        snprintf(u->key, sizeof u->key, "%s", c->connect_key);
        c->up = u;
        const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[c->addr_next++];
        int rc = connect_fn(&u->connect_req, &u->tcp, sa, on_up_connected);
        if (rc == 0) {
            proxy_conn_update(c);
            return;
        }
        c->last_error = rc;
        proxy_upstream_close(c, false);
    }
    if (c->life == CONN_OPEN) fail_connect(c);
}

static void fail_connect(conn_t *c) {
    int e = c->last_error;
    const char *what = c->via_proxy ? "the upstream proxy" : c->req.authority;
    if (e == UV_ETIMEDOUT) {
        proxy_exchange_send_error(c, 504, c->via_proxy ? "ERR_PROXY_CONNECTION_TIMED_OUT" : "ERR_CONNECTION_TIMED_OUT",
                                  "Connecting to %s timed out.", what);
        return;
    }
    const char *code = "ERR_CONNECTION_FAILED";
    if (e == UV_ECONNREFUSED) code = "ERR_CONNECTION_REFUSED";
    else if (e == UV_ECONNRESET) code = "ERR_CONNECTION_RESET";
    else if (e == UV_ENETUNREACH || e == UV_EHOSTUNREACH) code = "ERR_ADDRESS_UNREACHABLE";
    if (c->via_proxy) code = "ERR_PROXY_CONNECTION_FAILED";
    proxy_exchange_send_error(c, 502, code, "Could not connect to %s: %s.", what, e ? uv_strerror(e) : "no address");
}

static void on_up_connected(uv_connect_t *req, int status) {
    upstream_t *u = req->handle->data;
    if (u->closing) return;
    conn_t *c = u->conn;
    if (status < 0) {
        c->last_error = status;
        proxy_upstream_close(c, false);
        try_connect(c);
        return;
    }
    u->connected = true;
    u->counted = true;
    c->proxy->counts.upstream_connections_open++;
    uv_tcp_nodelay(&u->tcp, 1);
    c->last_activity = proxy_now(c);
    proxy_exchange_start(c);
}

/* ---- the upstream proxy URL -------------------------------------------------------------------- */

static void set_err(char *err, size_t cap, const char *msg) {
    if (err && cap) snprintf(err, cap, "%s", msg);
}

/* Percent-decodes [s, s+n) into out (NUL-terminated). -1 on a bad escape, a NUL or overflow. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = proxy_guard_hex_digit(s[i + 1]), l = proxy_guard_hex_digit(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}

int proxy_upstream_parse(const char *url, proxy_upstream_t *out, char *err, size_t err_cap) {
    memset(out, 0, sizeof *out);
    if (!url || !*url) {
        set_err(err, err_cap, "empty upstream proxy URL");
        return -EINVAL;
    }
    const char *sep = strstr(url, "://");
    if (!sep) {
        set_err(err, err_cap, "upstream proxy must be a URL: http://user:pass@host:port");
        return -EINVAL;
    }
    if ((size_t)(sep - url) != 4 || strncasecmp(url, "http", 4) != 0) {
        if ((size_t)(sep - url) == 5 && strncasecmp(url, "https", 5) == 0)
            set_err(err, err_cap, "https:// upstream proxies are not supported (no TLS to the proxy); use http://");
        else set_err(err, err_cap, "only http:// upstream proxies are supported");
        return -EINVAL;
    }
    const char *a = sep + 3;
    const char *ae = a + strcspn(a, "/?#");
    if (*ae && strcmp(ae, "/") != 0) {
        set_err(err, err_cap, "upstream proxy URL must not have a path, query or fragment");
        return -EINVAL;
    }
    /* The last '@' ends the credentials: a password may contain a raw '@'. */
    const char *at = NULL;
    for (const char *p = a; p < ae; p++)
        if (*p == '@') at = p;
    const char *hp = a;
    if (at) {
        const char *colon = memchr(a, ':', (size_t)(at - a));
        const char *ue = colon ? colon : at;
        char pass[256];
        if (pct_decode(a, (size_t)(ue - a), out->user, sizeof out->user) < 0) {
            set_err(err, err_cap, "bad user name in upstream proxy URL (percent-encoding, NUL or length)");
            return -EINVAL;
        }
        pass[0] = '\0';
        if (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), pass, sizeof pass) < 0) {
            set_err(err, err_cap, "bad password in upstream proxy URL (percent-encoding, NUL or length)");
            return -EINVAL;
        }
        if (!out->user[0]) {
            set_err(err, err_cap, "empty user name in upstream proxy URL");
            return -EINVAL;
        }
        if (strchr(out->user, ':')) {
            set_err(err, err_cap, "user name must not contain ':' (Basic authentication)");
            return -EINVAL;
        }
        char pair[520];
        int n = snprintf(pair, sizeof pair, "%s:%s", out->user, pass);
        char b64[720];
        if (n < 0 || (size_t)n >= sizeof pair ||
            proxy_base64((const unsigned char *)pair, (size_t)n, b64, sizeof b64) < 0) {
            set_err(err, err_cap, "credentials too long");
            return -EINVAL;
        }
        snprintf(out->authorization, sizeof out->authorization, "Basic %s", b64);
        out->has_credentials = true;
        memset(pair, 0, sizeof pair);
        memset(pass, 0, sizeof pass);
        hp = at + 1;
    }
    proxy_host_t host;
    uint16_t port;
    char why[160];
    if (hp == ae || proxy_http_parse_authority(hp, (size_t)(ae - hp), 80, false, &host, &port, why, sizeof why) < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "bad host or port in upstream proxy URL%s%s", hp == ae ? "" : ": ",
                 hp == ae ? "" : why);
        set_err(err, err_cap, msg);
        return -EINVAL;
    }
    snprintf(out->host, sizeof out->host, "%s", host.name);
    out->port = port;
    return 0;
}
