/* Parsers of `browserd serve`'s option values (main.c reads the command line and the
 * environment; these turn one value into what the daemon's parts take). Pure functions of
 * their arguments, no allocation; any thread. */
#ifndef BROWSERD_CLI_SERVE_ARGS_H
#define BROWSERD_CLI_SERVE_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* The spool beside an SQLite file (<db>.spool); for a database server (db holds "://"), in the
 * working directory, named after node_id (NULL: the host name), nodes of one machine need one
 * each. Writes at most cap bytes, NUL-terminated. */
void serve_default_spool_path(const char *db, const char *node_id, char *out, size_t cap);
/* "HOST:PORT" or "[v6]:PORT" into host (at most host_cap bytes with its NUL) and port.
 * 0, or -1 when malformed. */
int serve_parse_listen(const char *s, char *host, size_t host_cap, int *port);
/* "SEC": seconds, fractions allowed (for tests), > 0 and at most a year, into milliseconds.
 * 0 or -1. */
int serve_parse_seconds(const char *s, uint64_t *ms);
/* Plain decimal digits within [min, max]. 0 or -1. */
int serve_parse_count(const char *s, unsigned min, unsigned max, unsigned *out);
/* The environment variable's value, or fallback when it is unset or empty. */
const char *serve_env_or(const char *name, const char *fallback);

#endif
