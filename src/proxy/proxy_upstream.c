/* The upstream proxy: its URL. See proxy_upstream.h. */
#include "proxy/proxy_upstream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy_guard.h"
#include "proxy/proxy_http.h"

static void set_err(char *err, size_t cap, const char *msg) {
    if (err && cap) snprintf(err, cap, "%s", msg);
}

/* ---- the upstream proxy URL -------------------------------------------------------------------- */

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
        if (n < 0 || (size_t)n >= sizeof pair || proxy_base64((const unsigned char *)pair, (size_t)n, b64, sizeof b64) < 0) {
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
        snprintf(msg, sizeof msg, "bad host or port in upstream proxy URL%s%s", hp == ae ? "" : ": ", hp == ae ? "" : why);
        set_err(err, err_cap, msg);
        return -EINVAL;
    }
    snprintf(out->host, sizeof out->host, "%s", host.name);
    out->port = port;
    return 0;
}
