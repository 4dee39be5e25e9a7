/* The daemon's log: one line per event, as logfmt text or as JSON objects.
 *
 * A line is written by one write(2) of the whole line, under a mutex, so lines of the loop
 * thread, the worker threads and the browser supervisors (other processes that inherit the
 * same standard error) never interleave within a line.
 *
 * The fields of a line come from a printf-style format of logfmt pairs: `key=value` where a
 * value with spaces is quoted (`detail="%s"`). For JSON the pairs are parsed back: a quoted
 * value ends at a quote followed by a space or the end of the line, so a quote inside a
 * message does not cut it; an unquoted value that reads as a JSON number is a number. Control
 * characters (a newline in an error message) become spaces: a line is always one line.
 *
 * Every line starts with ts= (UTC, milliseconds), level=, module= and event=.
 *
 * Repeats: a line with a repeat key (log_event_repeating) shows the first line of a kind (its repeat key) and counts
 * the next ones for LOG_REPEAT_WINDOW_MS; then one line with repeated=N stands for them. The
 * table of kinds is bounded; a kind that does not fit is logged as usual.
 *
 * Ownership: the module owns the log file it opened (log_setup) and standard error's file
 * descriptor when a file is set (the file is dup2'ed onto fd 2, so every child process and
 * every stray fprintf(stderr) writes into it). Thread-safe, except log_setup, which runs once
 * before any thread starts. Secrets (API keys, zone passwords, proxy credentials) must never
 * reach a line: callers log key ids, zone names and redacted URIs. */
#ifndef BROWSERD_CORE_LOG_H
#define BROWSERD_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level_t;
typedef enum { LOG_TEXT = 0, LOG_JSON = 1 } log_format_t;

#define LOG_REPEAT_WINDOW_MS 60000

/* "debug|info|warn|error", "text|json". Return 0, or -1 for anything else. */
int log_parse_level(const char *s, log_level_t *out);
int log_parse_format(const char *s, log_format_t *out);
const char *log_level_name(log_level_t level);

/* Format, least level, and a file to append to (NULL: standard error as it is). Also puts
 * the format and level into the environment (BROWSERD_LOG_FORMAT, BROWSERD_LOG_LEVEL) for
 * the supervisors this process starts. Returns 0, or -1 with a message in err. */
int log_setup(log_format_t format, log_level_t level, const char *path, char *err, size_t err_cap);

/* The setup a supervisor process inherited through the environment (no file: its standard
 * error already is the daemon's). Unknown or absent values keep the defaults (text, info). */
void log_setup_from_env(void);

/* Opens the log file again (after logrotate moved it: SIGHUP). 0 when there is no file or it
 * was reopened; -1 with err when it could not be (the old file stays in use). */
int log_reopen(char *err, size_t err_cap);

bool log_enabled(log_level_t level);

/* One line. With a repeat_key (NULL: none), repeats of that kind (with module and event) are
 * folded together (see above). */
void log_event_keyed(log_level_t level, const char *module, const char *event, const char *repeat_key,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_event(level, module, event, ...) log_event_keyed(level, module, event, NULL, __VA_ARGS__)
#define log_event_repeating(level, module, event, repeat_key, ...) \
    log_event_keyed(level, module, event, repeat_key, __VA_ARGS__)

/* Writes the repeated=N lines of kinds whose window has passed (all of them when `all`),
 * and forgets kinds not seen for a window. Called by a timer of the daemon, and at exit. */
void log_flush_repeats(bool all);

/* Tests: the clock of the repeat windows (NULL: the real one). */
void log_set_clock(int64_t (*now_ms)(void));

#endif
