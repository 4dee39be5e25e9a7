/* The lifetime of an object that owns libuv handles (a connection, a session): it is freed
 * once every handle it owns is closed and every other holder has let go.
 *
 * libuv frees nothing itself, and a handle's memory may be released only in its close
 * callback, after which callbacks of requests on it (writes, connects, shutdowns) have all
 * run. So the owner is counted: one reference per open handle, plus one per holder that may
 * still call back into it (a write in flight, a request at a handler, work on a worker thread).
 * The release function runs exactly once, when the count reaches zero.
 *
 * Rules for the owner:
 *   - net_lifetime_t is its FIRST member, so that the generic close callback can find it from
 *     handle->data (which must point at the owner for every handle closed with
 *     net_lifetime_close);
 *   - every handle it opens adds a reference (net_lifetime_ref, or the initial count) and is
 *     closed with net_lifetime_close, whose callback drops that reference.
 * Threading: loop thread only (the count is not atomic). Ownership: the owner's memory is the
 * release function's to free. */
#ifndef BROWSERD_NET_LIFETIME_H
#define BROWSERD_NET_LIFETIME_H

#include <uv.h>

typedef struct net_lifetime {
    unsigned refs;
    void (*release)(struct net_lifetime *life);
} net_lifetime_t;

/* Starts the count at `refs` (the handles already open, usually). */
void net_lifetime_init(net_lifetime_t *life, unsigned refs, void (*release)(net_lifetime_t *life));
void net_lifetime_ref(net_lifetime_t *life);
/* Drops one reference; the last one calls release (which may free the owner). */
void net_lifetime_unref(net_lifetime_t *life);
/* uv_close(handle) with a callback that drops one reference of the owner handle->data points
 * at (whose first member is its net_lifetime_t). */
void net_lifetime_close(uv_handle_t *handle);

#endif
