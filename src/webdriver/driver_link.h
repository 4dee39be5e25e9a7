/* An HTTP/1.1 client on one keep-alive connection to a chromedriver (a socket the driver broker
 * handed over, driver_netns.h): one request at a time, the answer read whole (WebDriver answers
 * are JSON documents; the largest are screenshots) up to DRIVER_LINK_MAX_BODY.
 *
 * Threading: loop thread. Ownership: the link owns its socket; driver_link_close frees it once
 * the handle is closed (a request in flight is answered -ECANCELED first). */
#ifndef BROWSERD_WEBDRIVER_DRIVER_LINK_H
#define BROWSERD_WEBDRIVER_DRIVER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define DRIVER_LINK_MAX_BODY (256u << 20)

typedef struct driver_link driver_link_t;

/* The answer: status 100..599 with the body (malloc'ed, NUL-terminated, ownership moves to the
 * callback) and its Content-Type ("" when none; borrowed for the call); or status a negative
 * errno (-ECONNRESET: the driver closed the connection, -EMSGSIZE: the body was over the
 * limit, -EPROTO: not HTTP, -ECANCELED: closed) with body NULL. */
typedef void (*driver_link_cb)(void *arg, int status, const char *content_type, char *body, size_t len);

/* Wraps a connected socket (ownership moves, also on failure). 0 or a negative libuv error. */
int driver_link_open(uv_loop_t *loop, int fd, driver_link_t **out);
/* Sends one request (body borrowed; NULL for none). -EBUSY while one is in flight, -EPIPE
 * once the connection is gone; else 0 and cb is called exactly once. */
int driver_link_request(driver_link_t *l, const char *method, const char *path, const char *body, size_t len,
                        driver_link_cb cb, void *arg);
/* True while the connection is usable (not reset, not closed). */
bool driver_link_usable(const driver_link_t *l);
void driver_link_close(driver_link_t *l);

#endif
