/* One browser session as the API describes it (shared/spec/browser-sessions-api.md).
 * Ownership: a session_record_t owns every string it points to; session_record_free
 * releases them (not the struct itself). */
#ifndef BROWSERD_SESSION_RECORD_H
#define BROWSERD_SESSION_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "json/jsonw.h"

typedef enum { SESSION_RUNNING = 0, SESSION_FINISHED = 1, SESSION_FAILED = 2 } session_status_t;
#define SESSION_STATUS_COUNT 3

typedef enum { CAPTCHA_NONE = 0, CAPTCHA_DETECTED = 1, CAPTCHA_SOLVED = 2, CAPTCHA_FAILED = 3 } captcha_t;

#define SESSION_DURATION_NULL INT64_C(-1)

typedef struct {
    char session_id[37];   /* 36 characters as given (case kept) + NUL */
    char *api_name;        /* non-empty */
    session_status_t status;
    char *target_url;      /* NULL = JSON null */
    char *end_url;         /* NULL = JSON null */
    int64_t navigations;
    int64_t timestamp_ms;  /* start, Unix epoch milliseconds, UTC */
    int64_t duration_ms;   /* SESSION_DURATION_NULL while running */
    captcha_t captcha;
    int64_t bandwidth;
    char *error_code;      /* NULL = no error object; error_message is then NULL too */
    char *error_message;
} session_record_t;

void session_record_free(session_record_t *r);
/* A deep copy of src into dst (dst owns its strings then; src may borrow its own): 0, or
 * -ENOMEM with dst holding nothing to free. */
int session_record_copy(session_record_t *dst, const session_record_t *src);

const char *session_status_name(session_status_t s);
/* -1 when unknown. Exact, case-sensitive names. */
int session_status_from_name(const char *s, size_t n);
const char *captcha_name(captcha_t c);
int captcha_from_name(const char *s, size_t n);

/* Writes the record as a JSON object, fields in the contract's order. */
void session_record_write_json(const session_record_t *r, jsonw_t *w);

#endif
