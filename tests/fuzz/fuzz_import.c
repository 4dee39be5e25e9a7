/* libFuzzer target: one line of the JSONL import format (src/store/session_import.c).
 * Whatever the input, the parser must not crash, leak, or read past `size`; a record it
 * accepts must satisfy the rules of docs/import.md, which is checked here too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/session_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy, so that any read past the end is caught by ASan. */
    char *line = malloc(size ? size : 1);
    if (!line) return 0;
    if (size) memcpy(line, data, size);
    session_record_t rec;
    char err[256];
    if (session_import_parse_line(line, size, &rec, err, sizeof err) == 0) {
        bool running = rec.status == SESSION_RUNNING, failed = rec.status == SESSION_FAILED;
        if (strlen(rec.session_id) != 36 || !rec.api_name || !rec.api_name[0] || strlen(rec.api_name) > 255 ||
            rec.navigations < 0 || rec.bandwidth < 0 || (running != (rec.duration_ms == SESSION_DURATION_NULL)) ||
            (!running && rec.duration_ms < 0) || (failed != (rec.error_code != NULL)) ||
            (rec.error_code && (!rec.error_code[0] || !rec.error_message)) ||
            (rec.target_url && !rec.target_url[0]) || (rec.end_url && !rec.end_url[0]))
            abort();
        session_record_free(&rec);
    } else if (!memchr(err, '\0', sizeof err) || !err[0]) {
        abort(); /* every rejection gives a reason */
    }
    free(line);
    return 0;
}
