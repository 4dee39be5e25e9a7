#include "net/lifetime.h"

void net_lifetime_init(net_lifetime_t *life, unsigned refs, void (*release)(net_lifetime_t *life)) {
    life->refs = refs;
    life->release = release;
}

void net_lifetime_ref(net_lifetime_t *life) { life->refs++; }

void net_lifetime_unref(net_lifetime_t *life) {
    if (--life->refs == 0) life->release(life);
}

static void on_handle_closed(uv_handle_t *handle) { net_lifetime_unref((net_lifetime_t *)handle->data); }

void net_lifetime_close(uv_handle_t *handle) { uv_close(handle, on_handle_closed); }
