/* How many failed authentications a source address may have: a token bucket per address in a
 * table of fixed size, so that a flood of wrong passwords or keys costs the flooder time, not
 * the daemon memory or its worker threads (a zone password check runs a ~22 ms KDF).
 *
 * An address starts with `burst` tokens; each failure takes one; tokens come back at
 * `per_second` up to `burst`. While an address has less than one token, every attempt from it
 * (right or wrong) is refused before its credentials are looked at, with the seconds until the
 * next token (Retry-After). An IPv6 address counts by its /64 (one host's usual share); an
 * IPv4-mapped IPv6 address as its IPv4 address.
 *
 * The table: FAILURE_LIMIT_SLOTS entries in sets of 4 by a keyed hash of the address (the key
 * drawn at random per table, so that a flooder cannot aim at one set). A new address takes a
 * free entry of its set, or else the one with the most tokens (an address that did the least
 * harm): an address with its bucket empty is only ever replaced by another with an empty one.
 *
 * Threading: loop thread only. Ownership: the table is the caller's (failure_limit_free). */
#ifndef BROWSERD_NET_FAILURE_LIMIT_H
#define BROWSERD_NET_FAILURE_LIMIT_H

#include <stdint.h>
#include <sys/socket.h>

#define FAILURE_LIMIT_SLOTS 8192
/* The defaults of serve (--auth-fail-limit, --auth-fail-refill): 30 failures at once, then
 * one a second. */
#define FAILURE_LIMIT_DEFAULT_BURST 30
#define FAILURE_LIMIT_DEFAULT_REFILL_MS 1000

/* The error of the 429 both listeners answer (with Retry-After). */
#define FAILURE_LIMIT_MESSAGE "Too many failed authentications from this address: retry after Retry-After seconds"

typedef struct failure_limit failure_limit_t;

/* NULL when out of memory or the random key could not be drawn; burst >= 1, per_second > 0. */
failure_limit_t *failure_limit_new(unsigned burst, double per_second);
void failure_limit_free(failure_limit_t *fl);

/* 0 when `addr` (AF_INET or AF_INET6; any other family is never limited) may try now;
 * otherwise the whole seconds (>= 1) until it may. now_ms: a monotonic clock. */
unsigned failure_limit_wait(failure_limit_t *fl, const struct sockaddr *addr, uint64_t now_ms);
/* Counts one failed authentication of `addr`. */
void failure_limit_fail(failure_limit_t *fl, const struct sockaddr *addr, uint64_t now_ms);

#endif
