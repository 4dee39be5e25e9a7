/* `browserd webhook add|list|remove|deliveries`: a customer's webhooks and what was delivered
 * to them (docs/webhooks.md), run against the store and then done, like the other
 * administrative commands (cli/admin.h: the same output contract and exit statuses).
 *
 * Ownership: argv is borrowed; the store it opens is its own, closed before it returns. */
#ifndef BROWSERD_CLI_WEBHOOK_CLI_H
#define BROWSERD_CLI_WEBHOOK_CLI_H

/* db_path: the --db target; argv: the arguments after "webhook" (the verb first). Returns the
 * process exit status. */
int cli_webhook_run(const char *db_path, int argc, char **argv);

/* The usage lines of the commands (static, ends with a newline). */
const char *cli_webhook_usage(void);

#endif
