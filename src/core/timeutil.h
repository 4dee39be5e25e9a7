/* Time: the clock, and the date formats of the API. Pure functions, no allocation. */
#ifndef BROWSERD_CORE_TIMEUTIL_H
#define BROWSERD_CORE_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIME_UTC_SECONDS_LEN 20 /* "YYYY-MM-DDTHH:MM:SSZ" */

/* Wall clock, Unix epoch milliseconds. */
int64_t time_now_ms(void);
/* A monotonic clock in nanoseconds (for durations; any thread). */
uint64_t time_monotonic_ns(void);

/* Parses an RFC 3339 date-time ("2025-12-01T00:00:00Z", "2025-12-01T02:00:00+02:00",
 * "t"/"z" accepted in either case, optional fraction of a second of any length, truncated
 * to milliseconds) or a bare date "YYYY-MM-DD". A bare date means 00:00:00.000 UTC of that
 * day, or 23:59:59.999 UTC when `bare_date_is_end_of_day`. Years 0001..9999; calendar-
 * checked (leap years); seconds 00..59. Returns 0 and *out_ms, or -1 when malformed. */
int time_parse_api_date(const char *s, size_t len, bool bare_date_is_end_of_day, int64_t *out_ms);

/* Formats as "YYYY-MM-DDTHH:MM:SSZ" (whole seconds, truncated toward the past). `out` gets
 * TIME_UTC_SECONDS_LEN characters and a NUL. */
void time_format_utc_seconds(int64_t ms, char out[TIME_UTC_SECONDS_LEN + 1]);

/* Days since 1970-01-01 for a proleptic Gregorian date (no validation). */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
