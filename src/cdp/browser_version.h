/* The browser's product name as Chromium's own /json/version gives it ("HeadlessChrome/156.0.
 * 8078.73"), read once from `chromium --version` at the gateway's start. Clients that discover
 * the browser over HTTP (chromedriver attaching to a browser) refuse a name without a version.
 *
 * Threading: loop thread. Ownership: the probe owns its process and pipe and frees itself after
 * the callback, which is called exactly once (product "" when the version could not be read). */
#ifndef BROWSERD_CDP_BROWSER_VERSION_H
#define BROWSERD_CDP_BROWSER_VERSION_H

#include <stddef.h>
#include <uv.h>

typedef void (*browser_version_cb)(void *arg, const char *product);

/* 0, or a negative libuv error (nothing is called then). */
int browser_version_probe(uv_loop_t *loop, const char *chromium_path, browser_version_cb cb, void *arg);

/* "Chromium 156.0.8078.73 built on Debian ..." -> "HeadlessChrome/156.0.8078.73" in out: 0, or
 * -EINVAL when the text has no dotted version. */
int browser_version_product(const char *text, char *out, size_t cap);

#endif
