#include "core/timeutil.h"

#include <time.h>

#define MS_PER_SECOND INT64_C(1000)
#define MS_PER_MINUTE (60 * MS_PER_SECOND)
#define MS_PER_HOUR (60 * MS_PER_MINUTE)
#define MS_PER_DAY (24 * MS_PER_HOUR)

/* The formatter's range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z. Outside it the
 * text would not fit the fixed 20 characters, so values are clamped to it. */
#define FORMAT_MIN_MS (INT64_C(-62135596800) * MS_PER_SECOND)
#define FORMAT_MAX_MS (INT64_C(253402300799) * MS_PER_SECOND + 999)

int64_t time_now_ms(void) {
    struct timespec ts;
    /* CLOCK_REALTIME cannot fail with a valid pointer; keep the zero on the impossible path. */
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * MS_PER_SECOND + ts.tv_nsec / 1000000;
}

/* Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms", days_from_civil. */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;                                    /* [0, 399] */
    /* Signed arithmetic throughout: unsigned `d - 1` would wrap for d == 0. */
    const int64_t mp = m > 2 ? (int64_t)m - 3 : (int64_t)m + 9;          /* March = 0 */
    const int64_t doy = (153 * mp + 2) / 5 + (int64_t)d - 1;              /* [0, 365] */
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The inverse (Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y_out, unsigned *m_out, unsigned *d_out) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;                                  /* [0, 146096] */
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);           /* [0, 365] */
    const int64_t mp = (5 * doy + 2) / 153;                                /* [0, 11] */
    const unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    const unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y_out = yoe + era * 400 + (m <= 2);
    *m_out = m;
    *d_out = d;
}

static bool is_leap_year(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(int64_t y, unsigned m) {
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/* Exactly `n` ASCII digits at s[0..n); no sign, no spaces (strtol would accept both). */
static bool parse_digits(const char *s, size_t n, unsigned *out) {
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" at s[0..10): calendar-checked, year 0001..9999. */
static bool parse_date(const char *s, unsigned *y, unsigned *m, unsigned *d) {
    if (s[4] != '-' || s[7] != '-') return false;
    if (!parse_digits(s, 4, y) || !parse_digits(s + 5, 2, m) || !parse_digits(s + 8, 2, d))
        return false;
    if (*y < 1 || *m < 1 || *m > 12 || *d < 1) return false;
    return *d <= days_in_month(*y, *m);
}

int time_parse_api_date(const char *s, size_t len, bool bare_date_is_end_of_day, int64_t *out_ms) {
    unsigned year, month, day;
    if (!s || len < 10 || !parse_date(s, &year, &month, &day)) return -1;
    const int64_t day_start_ms = time_days_from_civil(year, month, day) * MS_PER_DAY;

    if (len == 10) {
        *out_ms = bare_date_is_end_of_day ? day_start_ms + MS_PER_DAY - 1 : day_start_ms;
        return 0;
    }

    /* "THH:MM:SS" then an optional fraction then the offset: at least 20 characters. */
    if (len < 20 || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') return -1;
    unsigned hour, minute, second;
    if (!parse_digits(s + 11, 2, &hour) || !parse_digits(s + 14, 2, &minute) ||
        !parse_digits(s + 17, 2, &second))
        return -1;
    /* RFC 3339 allows second 60 for leap seconds; the API's timestamps never carry one and
     * Unix time cannot represent it, so it is rejected rather than silently folded. */
    if (hour > 23 || minute > 59 || second > 59) return -1;

    size_t pos = 19;
    int64_t fraction_ms = 0;
    if (s[pos] == '.') {
        pos++;
        const size_t digits_start = pos;
        /* Digits past the third only refine below a millisecond: truncating them is a floor,
         * since the fraction is added to a whole second (also before 1970). */
        int64_t scale = 100;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
            fraction_ms += (s[pos] - '0') * scale;
            scale /= 10;
            pos++;
        }
        if (pos == digits_start) return -1;
    }

    int64_t offset_ms = 0;
    if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
        pos++;
    } else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
        if (len - pos < 6 || s[pos + 3] != ':') return -1;
        unsigned offset_hour, offset_minute;
        if (!parse_digits(s + pos + 1, 2, &offset_hour) || !parse_digits(s + pos + 4, 2, &offset_minute))
            return -1;
        if (offset_hour > 23 || offset_minute > 59) return -1;
        offset_ms = offset_hour * MS_PER_HOUR + offset_minute * MS_PER_MINUTE;
        if (s[pos] == '-') offset_ms = -offset_ms;
        pos += 6;
    } else {
        return -1; /* RFC 3339 requires an offset; a local time would be ambiguous */
    }
    if (pos != len) return -1;

    /* Local time minus its offset is UTC: 02:00+02:00 is 00:00Z. */
    *out_ms = day_start_ms + hour * MS_PER_HOUR + minute * MS_PER_MINUTE + second * MS_PER_SECOND +
              fraction_ms - offset_ms;
    return 0;
}

void time_format_utc_seconds(int64_t ms, char out[TIME_UTC_SECONDS_LEN + 1]) {
    if (ms < FORMAT_MIN_MS) ms = FORMAT_MIN_MS;
    if (ms > FORMAT_MAX_MS) ms = FORMAT_MAX_MS;

    /* Floor division: -1 ms is 1969-12-31T23:59:59Z, not 1970-01-01T00:00:00Z. */
    int64_t days = ms / MS_PER_DAY;
    int64_t ms_of_day = ms % MS_PER_DAY;
    if (ms_of_day < 0) {
        ms_of_day += MS_PER_DAY;
        days--;
    }
    int64_t year;
    unsigned month, day;
    civil_from_days(days, &year, &month, &day);
    const unsigned seconds_of_day = (unsigned)(ms_of_day / MS_PER_SECOND);
    const unsigned fields[6] = {(unsigned)year, month, day, seconds_of_day / 3600, seconds_of_day / 60 % 60,
                                seconds_of_day % 60};

    /* Written by hand rather than snprintf: the widths are fixed and the compiler cannot prove
     * that "%04u" of an unsigned fits, which -Wformat-truncation would flag. */
    static const char separators[6] = {'-', '-', 'T', ':', ':', 'Z'};
    char *p = out;
    for (int i = 0; i < 6; i++) {
        unsigned v = fields[i];
        const int width = i == 0 ? 4 : 2;
        for (int k = width - 1; k >= 0; k--) {
            p[k] = (char)('0' + v % 10);
            v /= 10;
        }
        p += width;
        *p++ = separators[i];
    }
    *p = '\0';
}

uint64_t time_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
