/* The parts of the WebDriver protocol (W3C WebDriver, the HTTP flavour Selenium speaks) that
 * browserd itself reads or writes; everything else goes to chromedriver as it came.
 *
 * Pure functions (no I/O): the New Session request as chromedriver gets it, its answer as the
 * client gets it, the error document, and the session part of a command's path. Strings out
 * are malloc'ed (the caller frees them). */
#ifndef BROWSERD_WEBDRIVER_WEBDRIVER_PROTO_H
#define BROWSERD_WEBDRIVER_WEBDRIVER_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* A client's New Session body -> the body chromedriver gets: the standard capabilities that
 * make sense for a browser browserd launched (pageLoadStrategy, timeouts,
 * unhandledPromptBehavior, strictFileInteractability, acceptInsecureCerts) from alwaysMatch
 * merged with the first firstMatch entry, and goog:chromeOptions with only debuggerAddress
 * (the browser, its flags and profile are browserd's: the client's chromeOptions are not
 * applied). 0 with *out, or -EINVAL with a message for the client in err: not JSON, no
 * capabilities object, a browserName other than chrome or chromium, webSocketUrl (BiDi is not
 * offered), or a proxy capability (the zone's proxy is the session's). -ENOMEM. */
int webdriver_new_session_request(const char *body, size_t len, const char *debugger_address, char **out, char *err,
                                  size_t err_cap);

/* chromedriver's successful New Session answer -> the client's: sessionId replaced by
 * session_id, the driver's own sessionId written to driver_id (cap bytes), and what names the
 * private attach address (goog:chromeOptions.debuggerAddress, chrome.userDataDir) removed.
 * 0, -EINVAL (not the shape of a New Session answer), -ENOMEM. */
int webdriver_new_session_answer(const char *body, size_t len, const char *session_id, char **out, size_t *out_len,
                                 char *driver_id, size_t cap);

/* {"value":{"error":error,"message":message,"stacktrace":""}}; NULL when out of memory. */
char *webdriver_error_body(const char *error, const char *message, size_t *len);

/* A command path "/session/ID[/REST]": true with the id and the rest ("" or "/..."), pointing
 * into path. False for any other path ("/session" itself, "/status"). */
bool webdriver_session_path(const char *path, const char **id, size_t *id_len, const char **rest);

#endif
