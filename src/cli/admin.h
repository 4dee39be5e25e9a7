/* The administrative commands of the browserd command line: customers, API keys, zones and
 * session imports, run against the store and then done (no daemon needed).
 *
 * Output contract (scripts depend on it): stdout carries only the requested value(s); every
 * message goes to stderr as "browserd: <message>". Exit status: 0 ok, 1 failure, 2 usage. */
#ifndef BROWSERD_CLI_ADMIN_H
#define BROWSERD_CLI_ADMIN_H

/* Runs one command. `db_path` is the --db target (borrowed); argv[0] is the command word
 * ("customer", "key", "zone", "sessions", "webhook": cli/webhook_cli.h, "db": cli/db_copy.h), argv[1..argc-1] its
 * arguments (borrowed). The
 * store is opened only after the arguments are known to be well formed, so a usage error
 * never creates a database file. Returns the process exit status. */
int cli_admin_run(const char *db_path, int argc, char **argv);

/* The usage text of these commands (static, one command per line, ends with a newline),
 * for the main program's --help. */
const char *cli_admin_usage(void);

#endif
