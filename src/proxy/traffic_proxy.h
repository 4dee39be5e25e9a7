/* Per-session forward proxy on the event loop: every byte of one browser, counted exactly.
 *
 * One traffic_proxy_t per browser session. It listens on 127.0.0.1 (port chosen by the kernel)
 * and the session's Chromium is launched with
 *     --proxy-server=http://127.0.0.1:<traffic_proxy_port> --proxy-bypass-list=<-loopback>
 * so that all of its traffic, loopback included, passes through it and is attributed to the
 * session without guessing. It speaks:
 *   - CONNECT host:port (HTTPS, WSS): "200 Connection established", then bytes are tunnelled
 *     untouched both ways;
 *   - plain HTTP in absolute form (GET http://host/path HTTP/1.1): the request goes to the site
 *     in origin form with hop-by-hop headers removed, the response comes back unchanged;
 *     keep-alive towards the browser, one site connection at a time per browser connection
 *     (kept while the next request goes to the same host:port, replaced when it changes);
 *     bodies streamed both ways.
 * Errors reach the browser as HTML pages: 403 (private-network guard), 502 (DNS failure,
 * refused, reset, upstream proxy refused or asked for credentials), 504 (connect or response
 * timeout), 400/431/501 (requests a proxy cannot serve). See docs/proxy.md.
 *
 * What is counted (traffic_counts_t, exact definitions in docs/proxy.md): on the browser-facing
 * side, every byte read from the browser's connections and every byte of ours the kernel took
 * for them. That is the sites' traffic plus the proxy hop's own lines (CONNECT requests and
 * their 200 answers, the scheme://host:port of absolute-form targets, removed hop-by-hop
 * headers, our error pages).
 *
 * Threading: every function here, and every callback, runs on the loop thread of the loop given
 * to traffic_proxy_start. DNS resolution runs on libuv's thread pool (uv_getaddrinfo); nothing
 * else leaves the loop thread.
 *
 * Ownership: traffic_proxy_start copies everything it needs from the config (strings included);
 * the proxy owns its listener, connections and buffers and frees them all from close callbacks
 * after traffic_proxy_stop. The caller must not use the pointer after calling stop. */
#ifndef BROWSERD_PROXY_TRAFFIC_PROXY_H
#define BROWSERD_PROXY_TRAFFIC_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct traffic_proxy traffic_proxy_t;

typedef struct traffic_totals {
    uint64_t from_browser_bytes, to_browser_bytes, to_upstream_bytes, from_upstream_bytes;
} traffic_totals_t;

typedef struct {
    /* Private-network guard (docs/proxy.md): on unless set false. */
    bool guard_private;
    /* Ranges opened despite the guard: CIDR strings (borrowed during start, copied). */
    const char *const *allow_private;
    size_t allow_private_count;
    /* "http://user:pass@host:port" or NULL/"" for direct connections (copied). */
    const char *upstream_proxy;
    /* For log lines: who this proxy belongs to (copied; may be NULL). */
    const char *session_tag;

    uint64_t connect_timeout_ms;     /* DNS + TCP connect; default 15 s; expiry -> 504 */
    uint64_t response_timeout_ms;    /* no byte either way during an exchange; default 120 s;
                                        before the response head -> 504, after -> close */
    uint64_t idle_timeout_ms;        /* browser connection without a request; default 60 s */
    uint64_t tunnel_idle_timeout_ms; /* CONNECT tunnel without a byte either way; default 600 s */
    size_t max_head_bytes;           /* request or response line + headers; default 64 KiB */
    /* Backpressure, per direction and connection: a side is no longer read once the bytes
     * read from it and not yet taken by the other side's kernel would pass high_watermark, and
     * is read again at low_watermark. Defaults 512 KiB / 128 KiB. Needs
     * max_head_bytes + 4 KiB <= low_watermark < high_watermark. */
    size_t high_watermark;
    size_t low_watermark;
    unsigned max_connections;        /* browser connections at once; default 512; more are closed */

    /* Optional: bytes moved (the four *_bytes counts of traffic_counts_t: from_browser,
     * to_browser, to_upstream, from_upstream) are also added here, for a sum over many
     * proxies (the gateway's metrics). Borrowed; written on the loop thread. */
    struct traffic_totals *totals;

    /* Optional: called whenever the number of open browser connections changes. */
    void (*on_connections)(void *arg, unsigned open_connections);
    void *on_connections_arg;
} traffic_proxy_config_t;

/* Fills every field with its default (guard on, direct, no allowed ranges). A numeric field
 * left 0 also means its default in traffic_proxy_start. */
void traffic_proxy_config_defaults(traffic_proxy_config_t *cfg);

/* Validates a config the way traffic_proxy_start does, with the reason in err. */
int traffic_proxy_config_check(const traffic_proxy_config_t *cfg, char *err, size_t err_cap);

/* Byte and connection counters of one proxy (= one session), since start. All bytes are counted
 * on the browser-facing side unless the name says upstream; see docs/proxy.md for exactly which
 * bytes count where. */
typedef struct {
    uint64_t total_bytes;          /* from_browser_bytes + to_browser_bytes */
    uint64_t payload_bytes;        /* body bytes of plain-HTTP requests and responses as on the
                                      wire minus chunked framing (chunk-size lines, CRLFs,
                                      trailers), both directions */
    uint64_t overhead_bytes;       /* total_bytes - payload_bytes: request/response lines and
                                      headers, chunk framing, CONNECT tunnels, our own pages */
    uint64_t from_browser_bytes;   /* read from browser connections (upload) */
    uint64_t to_browser_bytes;     /* written to browser connections, as taken by the kernel */
    uint64_t tunnel_bytes;         /* part of overhead: bytes through CONNECT tunnels and
                                      upgraded (101) connections, both directions */
    uint64_t generated_bytes;      /* part of to_browser_bytes: responses the proxy wrote itself
                                      ("200 Connection established", 4xx/5xx pages) */
    uint64_t to_upstream_bytes;    /* written to sites or to the upstream proxy */
    uint64_t from_upstream_bytes;  /* read from sites or from the upstream proxy */
    uint64_t requests;             /* request heads received (plain and CONNECT) */
    uint64_t refused_requests;     /* answered 403 by the private-network guard */
    uint64_t failed_requests;      /* answered 502 or 504 */
    uint64_t connections_accepted; /* browser connections since start */
    uint64_t connections_open;     /* browser connections open now */
    uint64_t upstream_connections_open;
} traffic_counts_t;

/* Starts listening on 127.0.0.1, port 0. Returns 0 and *out, or a negative errno/libuv code
 * (-EINVAL for a bad config: see traffic_proxy_config_check). On failure nothing is left
 * behind except handles the loop closes on its own. */
int traffic_proxy_start(uv_loop_t *loop, const traffic_proxy_config_t *cfg, traffic_proxy_t **out);

/* The port the proxy listens on (127.0.0.1). */
int traffic_proxy_port(const traffic_proxy_t *proxy);

/* A snapshot of the counters; live (updated as bytes move). The figures read just before
 * traffic_proxy_stop are final: bytes still queued when it is called are dropped uncounted. */
void traffic_proxy_counts(const traffic_proxy_t *proxy, traffic_counts_t *out);

/* Internals for tests and metrics. */
typedef struct {
    size_t buffered_to_upstream;      /* relayed bytes held now (queued writes, unparsed input) */
    size_t buffered_to_browser;
    size_t peak_buffered_to_upstream; /* the most ever held on one connection, one direction */
    size_t peak_buffered_to_browser;
    size_t pending_resolutions;       /* uv_getaddrinfo calls not yet answered */
    uint64_t spliced_bytes;           /* relayed by splice(2), both directions, as taken by the
                                         destination's kernel (docs/proxy.md, splice mode) */
} traffic_proxy_stats_t;

void traffic_proxy_get_stats(const traffic_proxy_t *proxy, traffic_proxy_stats_t *out);

/* Stops listening, closes every connection at once (browser and upstream sides), abandons DNS
 * resolutions in progress (their late answers are dropped), frees everything from the close
 * callbacks, then calls on_stopped(arg) from the loop. Call once. */
void traffic_proxy_stop(traffic_proxy_t *proxy, void (*on_stopped)(void *arg), void *arg);

/* Sends the traffic of connections opened from now on through another upstream proxy
 * ("http://user:pass@host:port"), or directly with NULL. A pooled browser's proxy exists
 * before its session (and so its zone) is known; the zone's upstream is set when the
 * session starts. Returns 0 or -EINVAL with a reason in err. */
int traffic_proxy_set_upstream(traffic_proxy_t *proxy, const char *url, char *err, size_t err_cap);

/* The session tag of the proxy's log lines (a pooled browser's proxy gets its session's id
 * when the session starts). */
void traffic_proxy_set_tag(traffic_proxy_t *proxy, const char *tag);

#endif
