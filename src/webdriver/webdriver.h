/* The WebDriver endpoint (Selenium): W3C WebDriver over HTTP on its own listener, with the same
 * zone credentials (HTTP Basic in the remote URL) as the CDP endpoint. See docs/webdriver.md.
 *
 * Each New Session gets a chromedriver of its own in a network namespace of its own
 * (driver_netns.h), attached to a browser session of the gateway: the driver is a CDP client
 * of browserd like Puppeteer, so the session has the same pool, queue, timeouts, proxy and
 * record as any CDP session, and the WebDriver session id is the browser session's id (the one
 * GET /browser_sessions lists and DELETE ends). Every other command goes to that driver as it
 * came, with the driver's own session id in the path.
 *
 * Threading: loop thread only; the zone check runs on a worker thread. Ownership: the gateway
 * is borrowed and must outlive the endpoint (stop the endpoint first, or both together: a
 * session's driver state is freed only once its browser session has ended). */
#ifndef BROWSERD_WEBDRIVER_WEBDRIVER_H
#define BROWSERD_WEBDRIVER_WEBDRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "cdp/gateway.h"

#define WEBDRIVER_DEFAULT_DRIVER "/usr/bin/chromedriver"

typedef struct webdriver webdriver_t;

typedef struct {
    uv_loop_t *loop;
    gateway_t *gateway;
    const char *host;         /* numeric listen address */
    int port;                 /* 0 = any free port */
    const char *driver_path;  /* NULL = WEBDRIVER_DEFAULT_DRIVER */
    bool driver_run_as;       /* the drivers as driver_uid:driver_gid (browserd as root) */
    uid_t driver_uid;
    gid_t driver_gid;
    /* New Session: the driver started and attached within this (the queue's wait comes on
     * top). 0: 20 s. */
    uint64_t start_timeout_ms;
} webdriver_config_t;

/* 0, or a negative libuv error (the listen address taken, ...). */
int webdriver_start(const webdriver_config_t *cfg, webdriver_t **out);
int webdriver_port(const webdriver_t *wd);
/* Stops: no new sessions, every session's driver ends (their browser sessions end as closed by
 * the client); done(arg) once nothing of the endpoint runs. Then webdriver_free. */
void webdriver_stop(webdriver_t *wd, void (*done)(void *arg), void *arg);
void webdriver_free(webdriver_t *wd);

#endif
