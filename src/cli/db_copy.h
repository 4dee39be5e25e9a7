/* `browserd db copy --from PATH --to URI`: a single node's SQLite history (customers, keys,
 * zones, sessions) moved into a PostgreSQL database, all or nothing and resumable
 * (store/store_copy.h; docs/store.md, "db copy").
 *
 * Output: the summary on stdout, one table a line; a progress line on stderr while it runs
 * when stderr is a terminal; errors on stderr as "browserd: db copy: <message>". Exit status
 * as cli_admin_run's.
 *
 * Ownership: argv is borrowed; the stores it opens are its own, closed before it returns. */
#ifndef BROWSERD_CLI_DB_COPY_H
#define BROWSERD_CLI_DB_COPY_H

/* argv: the arguments after "db copy" (borrowed). Returns the process exit status. */
int cli_db_copy_run(int argc, char **argv);

/* The usage lines of the command (static, ends with a newline). */
const char *cli_db_copy_usage(void);

#endif
