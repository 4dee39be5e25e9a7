/* One webhook POST over plain HTTP/1.1 with blocking calls bounded by poll timeouts, for the
 * dispatcher's own thread (never the event loop: webhook_dispatch.h says why a thread).
 *
 * The connection tries the addresses in order (each within the connect timeout), sends the
 * request with Connection: close, and waits for the status line within the response timeout
 * (counted from the connection's start of sending); the rest of the answer is not read. Any
 * wait also ends when stop_fd becomes readable (-ECANCELED), so a stop does not wait out a
 * slow receiver. Ownership: everything borrowed for the call. */
#ifndef BROWSERD_WEBHOOK_WEBHOOK_HTTP_H
#define BROWSERD_WEBHOOK_WEBHOOK_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "webhook/webhook_url.h"

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
} webhook_http_request_t;

/* 0 with the receiver's status (100..599) in *status; or -ETIMEDOUT, -ECONNREFUSED (and other
 * socket errors), -EPROTO (no HTTP status line), -ECANCELED; a reason in err. */
int webhook_http_post(const webhook_http_request_t *rq, int *status, char *err, size_t err_cap);

#endif
