/* The JSONL format of `browserd sessions import`: one session record a line, in the API's
 * own format (the objects that GET /browser_sessions returns). Pure parsing, no I/O. */
#ifndef BROWSERD_STORE_SESSION_IMPORT_H
#define BROWSERD_STORE_SESSION_IMPORT_H

#include <stddef.h>

#include "session/record.h"

/* Parses one line (without its newline; a trailing '\r' is allowed) into *out, which the
 * caller frees with session_record_free. Returns 0, or -1 with a reason in err (the caller
 * adds the line number). See docs/import.md for the rules. */
int session_import_parse_line(const char *line, size_t len, session_record_t *out, char *err, size_t err_cap);

#endif
