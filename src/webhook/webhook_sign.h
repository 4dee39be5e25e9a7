/* The signature of a webhook POST (Stripe's scheme, docs/webhooks.md):
 *   Browserd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * The key is the whole secret as `webhook add` printed it ("whsec_..."). A receiver recomputes
 * v1 over the raw body it got, compares in constant time, and refuses an old t (replays).
 *
 * Pure: no allocation, any thread. */
#ifndef BROWSERD_WEBHOOK_WEBHOOK_SIGN_H
#define BROWSERD_WEBHOOK_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* "t=" + up to 20 digits + ",v1=" + 64 hex digits + NUL */
#define WEBHOOK_SIGNATURE_MAX 96

/* Writes the header's value for this secret, time and body into out. 0, or -EIO when OpenSSL
 * fails (out is then ""). */
int webhook_sign(const char *secret, int64_t unix_seconds, const char *body, size_t body_len,
                 char out[WEBHOOK_SIGNATURE_MAX]);

#endif
