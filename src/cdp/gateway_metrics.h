/* The gateway's part of GET /metrics: sessions running, queued and ended (by status and error
 * code), CDP clients refused (by reason), the connect and queue-wait histograms, the warm
 * pool, CDP messages and bytes each way, and the bytes through the browsers' traffic proxies.
 * docs/operations.md lists every metric. The counters live in the gateway (gateway_internal.h)
 * and are counted where what they count happens.
 *
 * Threading: loop thread. Ownership: the text is appended to the caller's buffer. */
#ifndef BROWSERD_CDP_GATEWAY_METRICS_H
#define BROWSERD_CDP_GATEWAY_METRICS_H

#include "cdp/gateway.h"
#include "core/buf.h"

/* Appends the gateway's metric families in the Prometheus text format. 0 or -ENOMEM. */
int gateway_metrics_write(const gateway_t *gw, buf_t *out);

#endif
