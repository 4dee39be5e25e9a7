/* The URL filter semantics of the contract, shared by the catalog and its tests.
 * Pure functions over borrowed strings; no allocation. */
#ifndef BROWSERD_SESSION_URL_MATCH_H
#define BROWSERD_SESSION_URL_MATCH_H

#include <stdbool.h>
#include <stddef.h>

/* The host of an absolute URL "scheme://[userinfo@]host[:port][/?#...]": a slice of `url`,
 * case kept. An IPv6 literal keeps its brackets. Returns false when the URL has no "://"
 * or an empty host. */
bool url_host(const char *url, size_t len, const char **host, size_t *host_len);

/* Domain filter: host equals `domain` or ends with "." + domain, ASCII case-insensitively.
 * `domain` is expected lowercase. */
bool url_host_matches_domain(const char *host, size_t host_len, const char *domain, size_t domain_len);

/* Prefix filter: `url` begins with `prefix`, ASCII case-insensitively. */
bool url_has_prefix(const char *url, size_t url_len, const char *prefix, size_t prefix_len);

/* strncasecmp-like ordering on ASCII-lowercased bytes (non-ASCII compared as unsigned). */
int url_casecmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
