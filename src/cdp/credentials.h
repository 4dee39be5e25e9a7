/* Zone credentials of the CDP endpoint: "brd-customer-<CUSTOMER_ID>-zone-<ZONE>:<PASSWORD>"
 * (the "brd-" prefix is optional), as URL user info turned into "Authorization: Basic" by
 * Puppeteer and Playwright, or sent as that header directly. Extra "-<key>-<value>" pairs
 * after the zone (e.g. "-country-us", "-session-abc") are accepted and ignored.
 * Pure functions; no allocation. */
#ifndef BROWSERD_CDP_CREDENTIALS_H
#define BROWSERD_CDP_CREDENTIALS_H

#include <stddef.h>

#include "store/store.h"

typedef struct {
    char customer_id[STORE_ID_MAX + 1];
    char zone[STORE_ZONE_MAX + 1];
    char password[256];
} zone_credentials_t;

typedef enum {
    CREDENTIALS_OK = 0,
    CREDENTIALS_MISSING = -1,   /* no header, another scheme, empty */
    CREDENTIALS_MALFORMED = -2, /* not base64, no ':', or a user name not of the form above */
} credentials_result_t;

/* Parses an "Authorization" header value ("Basic <base64>"; scheme case-insensitive). */
credentials_result_t credentials_from_basic(const char *header, size_t len, zone_credentials_t *out);

/* Parses the user name and password (already percent-decoded). */
credentials_result_t credentials_from_user_password(const char *user, size_t user_len, const char *password,
                                                    size_t password_len, zone_credentials_t *out);

#endif
