/* gen_sessions: writes realistic browser-session records as JSONL (the import format of
 * `browserd sessions import`) to stdout, deterministic for a given --seed.
 *
 * One line per session, the 11 fields of the contract in its order:
 *   session_id, api_name, status, target_url, end_url, navigations, timestamp, duration,
 *   captcha, bandwidth, error
 *
 * Shape of the data (see docs/benchmarks.md for why):
 *   - status ~80% finished, ~15% failed, ~5% running (duration null while running);
 *   - 3 zones, skewed (scraping_browser1 > scraping_browser2 > checkout_zone);
 *   - 50 target domains with Zipf-like popularity (rank 1 = amazon.com), hosts with and
 *     without "www." and with other subdomains, https mostly;
 *   - end_url on the same host, another host of the same domain, or a related
 *     (login/payment) domain, with realistic paths (/products/123, /search?q=...);
 *   - timestamps over --days days ending at --end (exclusive), weekday/weekend and
 *     hour-of-day shape, slow growth; output in ascending timestamp order;
 *   - heavy-tailed bandwidth and duration (log-normal), navigations 1..50 skewed,
 *     0 navigations (null URLs) for sessions that never navigated;
 *   - UUIDv7 session ids whose 48-bit time prefix is the session's start time.
 *
 * Determinism: the only randomness is a seeded xoshiro256** generator; output is identical
 * for the same --seed, --count, --days and --end with the same libm. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- PRNG */

typedef struct { uint64_t s[4]; } rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform in [0, n). Bias is negligible for the small n used here. */
static uint64_t rng_below(rng_t *r, uint64_t n) { return n ? rng_next(r) % n : 0; }

static double rng_normal(rng_t *r)
{
    /* Box-Muller; one value per call keeps the stream simple and deterministic. */
    double u1 = rng_unit(r), u2 = rng_unit(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double rng_lognormal(rng_t *r, double median, double sigma)
{
    return median * exp(sigma * rng_normal(r));
}

/* Picks an index from cumulative weights cdf[0..n-1] (cdf[n-1] = total). */
static size_t pick_cdf(rng_t *r, const double *cdf, size_t n)
{
    double x = rng_unit(r) * cdf[n - 1];
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x < cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

typedef struct { const char *name; double w; } wchoice_t;

static const char *pick_w(rng_t *r, const wchoice_t *c, size_t n)
{
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += c[i].w;
    double x = rng_unit(r) * total;
    for (size_t i = 0; i < n; i++) {
        if (x < c[i].w)
            return c[i].name;
        x -= c[i].w;
    }
    return c[n - 1].name;
}

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- vocabulary */

/* Popularity rank order: index 0 is the most popular target. */
static const char *const DOMAINS[50] = {
    "amazon.com",      "walmart.com",      "ebay.com",       "target.com",       "bestbuy.com",
    "homedepot.com",   "google.com",       "linkedin.com",   "booking.com",      "zillow.com",
    "etsy.com",        "aliexpress.com",   "indeed.com",     "expedia.com",      "costco.com",
    "lowes.com",       "wayfair.com",      "tripadvisor.com","airbnb.com",       "yelp.com",
    "macys.com",       "nike.com",         "amazon.de",      "amazon.co.uk",     "ikea.com",
    "kroger.com",      "instacart.com",    "realtor.com",    "redfin.com",       "glassdoor.com",
    "newegg.com",      "chewy.com",        "sephora.com",    "ulta.com",         "asos.com",
    "zalando.de",      "otto.de",          "rakuten.co.jp",  "mercadolibre.com.mx", "adidas.com",
    "zara.com",        "hm.com",           "trustpilot.com", "crunchbase.com",   "g2.com",
    "craigslist.org",  "doordash.com",     "ubereats.com",   "kayak.com",        "skyscanner.net",
};

/* Hosts other than www./bare that a domain is also reached on. */
static const char *const SUBDOMAINS[] = {"m", "shop", "smile", "de", "uk", "fr", "es", "help", "www2", "store"};
/* Hosts an end_url may move to within the same domain (login, checkout, ...). */
static const char *const FLOW_SUBDOMAINS[] = {"checkout", "accounts", "secure", "cart", "signin"};
/* Related domains a session may end on: login and payment providers. */
static const char *const RELATED_HOSTS[] = {
    "www.paypal.com", "accounts.google.com", "checkout.stripe.com", "appleid.apple.com",
    "login.microsoftonline.com", "shop.app", "pay.google.com",
};

/* Paths on the login/checkout hosts a session moves to. */
static const char *const FLOW_PATHS[] = {
    "/signin?return_to=%2Fcart", "/checkout/payment", "/checkout/review", "/cart", "/account/orders",
    "/ap/signin", "/login?next=%2Fcheckout",
};
static const char *const RELATED_PATHS[] = {
    "/checkoutnow?token=EC-8RT51234AB567890C", "/signin/v2/identifier", "/pay/cs_live_a1B2c3D4e5",
    "/auth/authorize", "/oauth2/v2.0/authorize", "/",
};

static const char *const SEARCH_TERMS[] = {
    "running+shoes", "laptop", "iphone+15", "coffee+maker", "air+fryer", "tv+65+inch", "headphones",
    "office+chair", "desk+lamp", "dog+food", "baby+stroller", "hotel+paris", "flights+nyc",
    "apartment+for+rent", "data+engineer", "winter+jacket", "lego", "vacuum+cleaner", "garden+hose",
    "standing+desk", "gaming+mouse", "ssd+2tb", "protein+powder", "yoga+mat", "backpack",
};

static const char *const CATEGORY_SLUGS[] = {
    "electronics", "home-kitchen", "toys-games", "clothing", "shoes", "sports-outdoors",
    "beauty", "grocery", "furniture", "tools", "pet-supplies", "books", "garden", "office",
};

static const char *const NET_ERRORS[] = {
    "net::ERR_NAME_NOT_RESOLVED",   "net::ERR_CONNECTION_REFUSED", "net::ERR_CONNECTION_RESET",
    "net::ERR_TIMED_OUT",           "net::ERR_CONNECTION_TIMED_OUT", "net::ERR_TUNNEL_CONNECTION_FAILED",
    "net::ERR_CERT_AUTHORITY_INVALID", "net::ERR_ABORTED",        "net::ERR_HTTP2_PROTOCOL_ERROR",
    "net::ERR_EMPTY_RESPONSE",      "net::ERR_PROXY_CONNECTION_FAILED", "net::ERR_SSL_PROTOCOL_ERROR",
};
static const double NET_ERROR_W[COUNT_OF(NET_ERRORS)] = {18, 10, 12, 14, 10, 8, 3, 9, 4, 6, 4, 2};

static const wchoice_t ZONES[] = {
    {"scraping_browser1", 68}, {"scraping_browser2", 24}, {"checkout_zone", 8},
};

typedef enum { ST_FINISHED, ST_FAILED, ST_RUNNING } st_t;

typedef enum {
    E_SESSION_TIMEOUT, E_INACTIVITY, E_BROWSER_DISC, E_WORKER_DISC, E_JOB_KILLED, E_CDP,
    E_PAGE_NAV, E_CLIENT_TIMEOUT, E_UNKNOWN, E_COUNT
} ecode_t;

static const char *const ECODE_NAMES[E_COUNT] = {
    "session_timeout", "inactivity_timeout", "browser_disconnected", "worker_disconnect",
    "job_killed", "cdp_error", "page_navigated_error", "client_timeout", "unknown",
};
static const double ECODE_W[E_COUNT] = {9, 16, 9, 3, 2, 6, 38, 10, 7};

/* ---------------------------------------------------------------- output buffer */

static char *out_buf;
static size_t out_len;
#define OUT_CAP (1u << 20)

static void out_flush(void)
{
    if (out_len && fwrite(out_buf, 1, out_len, stdout) != out_len) {
        fprintf(stderr, "gen_sessions: write failed: %s\n", strerror(errno));
        exit(1);
    }
    out_len = 0;
}

static void out_reserve(size_t n)
{
    if (out_len + n > OUT_CAP)
        out_flush();
}

static void out_str(const char *s)
{
    size_t n = strlen(s);
    out_reserve(n);
    memcpy(out_buf + out_len, s, n);
    out_len += n;
}

__attribute__((format(printf, 1, 2))) static void out_fmt(const char *fmt, ...)
{
    out_reserve(4096);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out_buf + out_len, OUT_CAP - out_len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= OUT_CAP - out_len) {
        fprintf(stderr, "gen_sessions: formatting failed\n");
        exit(1);
    }
    out_len += (size_t)n;
}

/* JSON string; our vocabulary has no characters that need escaping, but a URL built from it
 * is escaped anyway so the output stays valid if the vocabulary changes. */
static void out_json_str(const char *s)
{
    out_reserve(2 * strlen(s) + 8);
    out_buf[out_len++] = '"';
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out_buf[out_len++] = '\\';
            out_buf[out_len++] = (char)c;
        } else if (c < 0x20) {
            out_len += (size_t)sprintf(out_buf + out_len, "\\u%04x", c);
        } else {
            out_buf[out_len++] = (char)c;
        }
    }
    out_buf[out_len++] = '"';
}

/* printf is most of the generator's time; the per-row numbers and ids use these. */
static void out_u64(uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out_reserve((size_t)n);
    while (n)
        out_buf[out_len++] = tmp[--n];
}

static void hex_fixed(char *dst, uint64_t v, int digits)
{
    static const char HEX[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        dst[i] = HEX[v & 0xf];
        v >>= 4;
    }
}

/* ---------------------------------------------------------------- generation */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Builds the host a target URL uses for a domain. Most sites are on www.; a few are always
 * bare (g2.com, hm.com), some sessions hit m./regional/product subdomains. */
static void make_host(rng_t *r, const char *domain, char *host, size_t cap)
{
    double u = rng_unit(r);
    bool bare_site = !strcmp(domain, "g2.com") || !strcmp(domain, "craigslist.org") ||
                     !strcmp(domain, "shop.app");
    if (bare_site) {
        if (u < 0.85)
            snprintf(host, cap, "%s", domain);
        else
            snprintf(host, cap, "%s.%s", SUBDOMAINS[rng_below(r, COUNT_OF(SUBDOMAINS))], domain);
    } else if (u < 0.78) {
        snprintf(host, cap, "www.%s", domain);
    } else if (u < 0.90) {
        snprintf(host, cap, "%s", domain);
    } else {
        snprintf(host, cap, "%s.%s", SUBDOMAINS[rng_below(r, COUNT_OF(SUBDOMAINS))], domain);
    }
}

/* A realistic path (with query) on a shopping/travel/jobs site. `landing` favours the
 * entry pages a scraper starts from. */
static void make_path(rng_t *r, bool landing, char *path, size_t cap)
{
    double u = rng_unit(r);
    if (landing) {
        if (u < 0.22)
            snprintf(path, cap, "/");
        else if (u < 0.50)
            snprintf(path, cap, "/search?q=%s", SEARCH_TERMS[rng_below(r, COUNT_OF(SEARCH_TERMS))]);
        else if (u < 0.82)
            snprintf(path, cap, "/products/%" PRIu64, 1000 + rng_below(r, 9000000));
        else
            snprintf(path, cap, "/category/%s", CATEGORY_SLUGS[rng_below(r, COUNT_OF(CATEGORY_SLUGS))]);
        return;
    }
    if (u < 0.42)
        snprintf(path, cap, "/products/%" PRIu64, 1000 + rng_below(r, 9000000));
    else if (u < 0.52)
        snprintf(path, cap, "/products/%" PRIu64 "/reviews?page=%" PRIu64, 1000 + rng_below(r, 9000000),
                 1 + rng_below(r, 20));
    else if (u < 0.72)
        snprintf(path, cap, "/search?q=%s&page=%" PRIu64, SEARCH_TERMS[rng_below(r, COUNT_OF(SEARCH_TERMS))],
                 1 + rng_below(r, 10));
    else if (u < 0.82)
        snprintf(path, cap, "/category/%s?sort=price_asc", CATEGORY_SLUGS[rng_below(r, COUNT_OF(CATEGORY_SLUGS))]);
    else if (u < 0.90)
        snprintf(path, cap, "/cart");
    else if (u < 0.95)
        snprintf(path, cap, "/checkout/shipping");
    else
        snprintf(path, cap, "/");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gen_sessions [--seed S] [--count N] [--days D] [--end YYYY-MM-DD]\n"
            "  Writes N sessions as JSONL (browserd import format) to stdout.\n"
            "  --seed S    PRNG seed (default 1); same seed, same output\n"
            "  --count N   number of sessions (default 1000000)\n"
            "  --days D    span of start timestamps in days (default 90)\n"
            "  --end DATE  end of the span, exclusive, UTC midnight (default 2025-12-01)\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

/* Days since 1970-01-01 for a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* YYYY-MM-DDTHH:MM:SS.mmmZ; the date part is cached (rows come in time order). */
static void format_ts(int64_t ms, char *out, size_t cap)
{
    static int64_t cached_day = INT64_MIN;
    static char day_str[48];
    int64_t secs = ms / 1000, day = secs / 86400, sod = secs % 86400;
    if (day != cached_day) {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(day_str, sizeof day_str, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        cached_day = day;
    }
    if (cap < 25)
        return;
    memcpy(out, day_str, 10);
    int h = (int)(sod / 3600), m = (int)(sod / 60 % 60), sec = (int)(sod % 60), frac = (int)(ms % 1000);
    char *p = out + 10;
    *p++ = 'T';
    *p++ = (char)('0' + h / 10);
    *p++ = (char)('0' + h % 10);
    *p++ = ':';
    *p++ = (char)('0' + m / 10);
    *p++ = (char)('0' + m % 10);
    *p++ = ':';
    *p++ = (char)('0' + sec / 10);
    *p++ = (char)('0' + sec % 10);
    *p++ = '.';
    *p++ = (char)('0' + frac / 100);
    *p++ = (char)('0' + frac / 10 % 10);
    *p++ = (char)('0' + frac % 10);
    *p++ = 'Z';
    *p = 0;
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, count = 1000000, days = 90;
    int64_t end_day = days_from_civil(2025, 12, 1);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--seed") && parse_u64(v, &seed)) {
            i++;
        } else if (!strcmp(a, "--count") && parse_u64(v, &count)) {
            i++;
        } else if (!strcmp(a, "--days") && parse_u64(v, &days) && days >= 1 && days <= 3650) {
            i++;
        } else if (!strcmp(a, "--end") && v) {
            int y, m, d;
            char tail;
            if (sscanf(v, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 || d > 31) {
                usage(stderr);
                return 2;
            }
            end_day = days_from_civil(y, (unsigned)m, (unsigned)d);
            i++;
        } else {
            fprintf(stderr, "gen_sessions: bad argument: %s\n", a);
            usage(stderr);
            return 2;
        }
    }

    out_buf = malloc(OUT_CAP);
    int64_t *ts = malloc((count ? count : 1) * sizeof *ts);
    double *day_cdf = malloc(days * sizeof *day_cdf);
    if (!out_buf || !ts || !day_cdf) {
        fprintf(stderr, "gen_sessions: out of memory\n");
        return 1;
    }

    rng_t rng;
    rng_seed(&rng, seed);

    /* Day weights: weekdays busier than weekends, ~40% growth over the span. */
    int64_t first_day = end_day - (int64_t)days;
    double acc = 0;
    for (uint64_t d = 0; d < days; d++) {
        int64_t day = first_day + (int64_t)d;
        int dow = (int)(((day % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday (4); 0 = Sunday */
        double w = (dow == 0) ? 0.62 : (dow == 6) ? 0.70 : 1.0;
        w *= 0.8 + 0.4 * (double)d / (double)days;
        acc += w;
        day_cdf[d] = acc;
    }
    /* Hour-of-day (UTC) weights: trough at night in the Americas/Europe, peak mid-afternoon UTC. */
    static const double HOUR_W[24] = {0.55, 0.45, 0.40, 0.38, 0.40, 0.48, 0.62, 0.78, 0.92, 1.00, 1.05, 1.10,
                                      1.18, 1.26, 1.35, 1.40, 1.38, 1.30, 1.20, 1.08, 0.96, 0.85, 0.74, 0.64};
    double hour_cdf[24];
    acc = 0;
    for (int h = 0; h < 24; h++) {
        acc += HOUR_W[h];
        hour_cdf[h] = acc;
    }

    /* Timestamps first, then sort: the output is in start order like an export would be, and
     * every other field is drawn afterwards so it does not depend on the sort. */
    for (uint64_t i = 0; i < count; i++) {
        size_t d = pick_cdf(&rng, day_cdf, days);
        size_t h = pick_cdf(&rng, hour_cdf, 24);
        int64_t ms = ((first_day + (int64_t)d) * 86400 + (int64_t)h * 3600) * 1000 +
                     (int64_t)rng_below(&rng, 3600000);
        ts[i] = ms;
    }
    qsort(ts, count, sizeof *ts, cmp_i64);

    /* Zipf-like popularity of target domains (s = 1.07). */
    double dom_cdf[COUNT_OF(DOMAINS)];
    acc = 0;
    for (size_t k = 0; k < COUNT_OF(DOMAINS); k++) {
        acc += 1.0 / pow((double)(k + 1), 1.07);
        dom_cdf[k] = acc;
    }
    double ecode_cdf[E_COUNT];
    acc = 0;
    for (size_t k = 0; k < E_COUNT; k++) {
        acc += ECODE_W[k];
        ecode_cdf[k] = acc;
    }
    double neterr_cdf[COUNT_OF(NET_ERRORS)];
    acc = 0;
    for (size_t k = 0; k < COUNT_OF(NET_ERRORS); k++) {
        acc += NET_ERROR_W[k];
        neterr_cdf[k] = acc;
    }

    char host[128], path[256], target[512], endu[512], tsbuf[96], msg[700];
    for (uint64_t i = 0; i < count; i++) {
        int64_t start_ms = ts[i];

        /* UUIDv7: 48-bit ms time, version 7, 12 random bits, variant 10, 62 random bits. */
        uint64_t ra = rng_next(&rng), rb = rng_next(&rng);
        uint64_t hi = ((uint64_t)start_ms << 16) | 0x7000u | (ra & 0x0fffu);
        uint64_t lo = (rb & UINT64_C(0x3fffffffffffffff)) | UINT64_C(0x8000000000000000);
        char id[37];
        hex_fixed(id, hi >> 32, 8);
        id[8] = '-';
        hex_fixed(id + 9, (hi >> 16) & 0xffff, 4);
        id[13] = '-';
        hex_fixed(id + 14, hi & 0xffff, 4);
        id[18] = '-';
        hex_fixed(id + 19, lo >> 48, 4);
        id[23] = '-';
        hex_fixed(id + 24, lo & UINT64_C(0xffffffffffff), 12);
        id[36] = 0;

        const char *zone = pick_w(&rng, ZONES, COUNT_OF(ZONES));

        double su = rng_unit(&rng);
        st_t st = su < 0.80 ? ST_FINISHED : su < 0.95 ? ST_FAILED : ST_RUNNING;
        ecode_t ec = E_COUNT;
        if (st == ST_FAILED)
            ec = (ecode_t)pick_cdf(&rng, ecode_cdf, E_COUNT);

        /* Navigations: most sessions do a handful; a long tail crawls up to 50 pages. A few
         * never navigate (connected and left, or timed out in the queue). */
        int64_t nav;
        if (ec == E_CLIENT_TIMEOUT) {
            nav = 0;
        } else {
            double nu = rng_unit(&rng);
            if (nu < 0.025 && ec != E_PAGE_NAV) {
                nav = 0;
            } else {
                double x = rng_lognormal(&rng, 2.6, 0.95);
                nav = (int64_t)x + 1;
                if (nav > 50)
                    nav = 50 - (int64_t)rng_below(&rng, 5);
            }
        }

        /* URLs. */
        bool has_url = nav > 0;
        const char *domain = DOMAINS[pick_cdf(&rng, dom_cdf, COUNT_OF(DOMAINS))];
        const char *scheme = rng_unit(&rng) < 0.965 ? "https" : "http";
        if (has_url) {
            make_host(&rng, domain, host, sizeof host);
            make_path(&rng, true, path, sizeof path);
            snprintf(target, sizeof target, "%s://%s%s", scheme, host, path);
            if (nav == 1) {
                snprintf(endu, sizeof endu, "%s", target);
            } else {
                /* Mostly the same host; else the site's own login/checkout host, or a
                 * login/payment provider it hands over to. */
                double eu = rng_unit(&rng);
                char ehost[160];
                if (eu < 0.82) {
                    snprintf(ehost, sizeof ehost, "%s", host);
                    make_path(&rng, false, path, sizeof path);
                } else if (eu < 0.94) {
                    snprintf(ehost, sizeof ehost, "%s.%s", FLOW_SUBDOMAINS[rng_below(&rng, COUNT_OF(FLOW_SUBDOMAINS))],
                             domain);
                    snprintf(path, sizeof path, "%s", FLOW_PATHS[rng_below(&rng, COUNT_OF(FLOW_PATHS))]);
                } else {
                    snprintf(ehost, sizeof ehost, "%s", RELATED_HOSTS[rng_below(&rng, COUNT_OF(RELATED_HOSTS))]);
                    snprintf(path, sizeof path, "%s", RELATED_PATHS[rng_below(&rng, COUNT_OF(RELATED_PATHS))]);
                }
                /* http sites redirect to https on later navigations most of the time. */
                const char *escheme = (scheme[4] == 's' || rng_unit(&rng) < 0.3) ? "https" : "http";
                snprintf(endu, sizeof endu, "%s://%s%s", escheme, ehost, path);
            }
        }

        /* Duration (ms): grows with navigations, heavy-tailed, capped by the 60-minute limit. */
        int64_t dur_ms = -1;
        if (st != ST_RUNNING) {
            double med = 4000.0 + 3500.0 * (double)nav;
            double d = rng_lognormal(&rng, med, 1.0);
            if (d < 350)
                d = 350 + rng_unit(&rng) * 500;
            if (d > 3599000)
                d = 3599000 - rng_unit(&rng) * 600000;
            dur_ms = (int64_t)d;
            switch (ec) {
            case E_SESSION_TIMEOUT: dur_ms = 3600000 + (int64_t)rng_below(&rng, 1500); break;
            case E_INACTIVITY: dur_ms = 300000 + dur_ms / 4 + (int64_t)rng_below(&rng, 2000); break;
            case E_CLIENT_TIMEOUT: dur_ms = 30000 + (int64_t)rng_below(&rng, 250); break;
            default: break;
            }
        }

        /* Bandwidth (bytes): per-navigation log-normal, median ~1.1 MB, tail into GBs (media,
         * downloads); a session that never navigated moved almost nothing. */
        int64_t bw;
        if (nav == 0) {
            bw = ec == E_CLIENT_TIMEOUT ? 0 : (int64_t)rng_below(&rng, 4096);
        } else {
            double b = rng_lognormal(&rng, 1.1e6, 1.6) * pow((double)nav, 0.9);
            if (b > 6.0e9)
                b = 6.0e9 - rng_unit(&rng) * 1.0e9;
            bw = (int64_t)b + 512;
        }

        double cu = rng_unit(&rng);
        const char *captcha = cu < 0.875 ? "none" : cu < 0.925 ? "detected" : cu < 0.985 ? "solved" : "failed";
        if (nav == 0)
            captcha = "none";

        /* Error object. */
        msg[0] = 0;
        if (st == ST_FAILED) {
            switch (ec) {
            case E_SESSION_TIMEOUT:
                snprintf(msg, sizeof msg, "Session reached the maximum duration of 60 minutes");
                break;
            case E_INACTIVITY:
                snprintf(msg, sizeof msg, "No CDP messages for 300 seconds");
                break;
            case E_BROWSER_DISC:
                snprintf(msg, sizeof msg, "%s",
                         rng_unit(&rng) < 0.6 ? "Browser process exited unexpectedly (signal 9)"
                                              : "Browser process crashed (signal 11)");
                break;
            case E_WORKER_DISC:
                snprintf(msg, sizeof msg, "Worker stopped before the session ended");
                break;
            case E_JOB_KILLED:
                snprintf(msg, sizeof msg, "Session ended by an operator");
                break;
            case E_CDP:
                snprintf(msg, sizeof msg, "%s",
                         rng_unit(&rng) < 0.5 ? "Invalid CDP message: not valid JSON"
                                              : "Invalid WebSocket frame: reserved bits set");
                break;
            case E_PAGE_NAV:
                snprintf(msg, sizeof msg, "%s at %s",
                         NET_ERRORS[pick_cdf(&rng, neterr_cdf, COUNT_OF(NET_ERRORS))], endu);
                break;
            case E_CLIENT_TIMEOUT:
                snprintf(msg, sizeof msg, "Timed out after 30 seconds waiting for a free browser");
                break;
            default:
                snprintf(msg, sizeof msg, "Internal error");
                break;
            }
        }

        /* Emit. */
        format_ts(start_ms, tsbuf, sizeof tsbuf);
        out_str("{\"session_id\":\"");
        out_str(id);
        out_str("\",\"api_name\":\"");
        out_str(zone);
        out_str("\",\"status\":\"");
        out_str(st == ST_FINISHED ? "finished" : st == ST_FAILED ? "failed" : "running");
        out_str("\",\"target_url\":");
        if (has_url)
            out_json_str(target);
        else
            out_str("null");
        out_str(",\"end_url\":");
        if (has_url)
            out_json_str(endu);
        else
            out_str("null");
        out_str(",\"navigations\":");
        out_u64((uint64_t)nav);
        out_str(",\"timestamp\":\"");
        out_str(tsbuf);
        out_str("\",\"duration\":");
        if (dur_ms < 0) {
            out_str("null");
        } else {
            out_u64((uint64_t)(dur_ms / 1000));
            char frac[5] = {'.', (char)('0' + dur_ms % 1000 / 100), (char)('0' + dur_ms % 100 / 10),
                            (char)('0' + dur_ms % 10), 0};
            out_str(frac);
        }
        out_str(",\"captcha\":\"");
        out_str(captcha);
        out_str("\",\"bandwidth\":");
        out_u64((uint64_t)bw);
        out_str(",\"error\":");
        if (st == ST_FAILED) {
            out_fmt("{\"code\":\"%s\",\"message\":", ECODE_NAMES[ec]);
            out_json_str(msg);
            out_str("}");
        } else {
            out_str("null");
        }
        out_str("}\n");
    }
    out_flush();
    if (fflush(stdout) != 0) {
        fprintf(stderr, "gen_sessions: write failed: %s\n", strerror(errno));
        return 1;
    }
    free(day_cdf);
    free(ts);
    free(out_buf);
    return 0;
}
