/* One webhook POST over HTTP/1.1, plain or TLS (https://), with non-blocking sockets and
 * poll timeouts, for the dispatcher's own thread (never the event loop: webhook_dispatch.h
 * says why a thread).
 *
 * The connection tries the addresses in order (each within the connect timeout), makes the
 * TLS handshake for https:// (the certificate verified against the context's CAs and the URL's
 * host name or IP address; SNI for names), sends the request with Connection: close, and waits
 * for the status line; handshake, request and status line share the response timeout. The rest
 * of the answer is not read. Any wait also ends when stop_fd becomes readable (-ECANCELED), so a
 * stop does not wait out a slow receiver. Ownership: everything borrowed for the call; a TLS
 * context is the caller's (webhook_http_tls_new/free), used by one thread at a time. */
#ifndef BROWSERD_WEBHOOK_WEBHOOK_HTTP_H
#define BROWSERD_WEBHOOK_WEBHOOK_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "webhook/webhook_url.h"

/* A client context for https:// receivers: TLS 1.2 or later, peers verified against ca_file
 * (PEM, one or more certificates) or, when it is NULL, the system's CAs. 0 or -EINVAL with a
 * reason (a file that cannot be read, no CA in it). */
int webhook_http_tls_new(const char *ca_file, SSL_CTX **out, char *err, size_t err_cap);
void webhook_http_tls_free(SSL_CTX *ctx);

typedef struct {
    const webhook_url_t *url;
    const webhook_addr_t *addrs; /* allowed by the guard already */
    size_t addr_count;
    const char *headers;         /* extra header lines, each ending in \r\n */
    const char *body;
    size_t body_len;
    int64_t connect_timeout_ms;
    int64_t response_timeout_ms;
    int stop_fd;                 /* -1: none */
    SSL_CTX *tls;                /* for https:// (NULL: https:// fails) */
} webhook_http_request_t;

/* 0 with the receiver's status (100..599) in *status; or -ETIMEDOUT, -ECONNREFUSED (and other
 * socket errors), -EPROTO (no HTTP status line, a TLS failure: the reason says which, e.g. the
 * certificate's), -ECANCELED; a reason in err. */
int webhook_http_post(const webhook_http_request_t *rq, int *status, char *err, size_t err_cap);

#endif
