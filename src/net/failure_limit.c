#include "net/failure_limit.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define WAYS 4

typedef struct {
    bool used;
    uint8_t addr[16]; /* IPv4 in the first 4 bytes, or an IPv6 /64 in the first 8 */
    uint8_t family;
    double tokens;    /* as of last_ms */
    uint64_t last_ms;
} entry_t;

struct failure_limit {
    unsigned burst;
    double per_ms;
    uint64_t key[2];
    entry_t entries[FAILURE_LIMIT_SLOTS];
};

failure_limit_t *failure_limit_new(unsigned burst, double per_second) {
    if (burst < 1 || !(per_second > 0)) return NULL;
    failure_limit_t *fl = calloc(1, sizeof *fl);
    if (!fl) return NULL;
    fl->burst = burst;
    fl->per_ms = per_second / 1000.0;
    if (getrandom(fl->key, sizeof fl->key, 0) != (ssize_t)sizeof fl->key) {
        free(fl);
        return NULL;
    }
    return fl;
}

void failure_limit_free(failure_limit_t *fl) { free(fl); }

/* The counted form of an address: false for a family that is not limited. */
static bool key_of(const struct sockaddr *sa, uint8_t out[16], uint8_t *family) {
    memset(out, 0, 16);
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        *family = 4;
        return true;
    }
    if (sa->sa_family != AF_INET6) return false;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) {
        memcpy(out, a + 12, 4);
        *family = 4;
    } else {
        memcpy(out, a, 8);
        *family = 6;
    }
    return true;
}

/* A keyed mix of the address (not cryptographic; the key only keeps the sets unpredictable). */
static size_t set_of(const failure_limit_t *fl, const uint8_t k[16], uint8_t family) {
    uint64_t a, b;
    memcpy(&a, k, 8);
    memcpy(&b, k + 8, 8);
    uint64_t h = (a ^ fl->key[0]) * 0x9e3779b97f4a7c15ULL;
    h ^= (b ^ fl->key[1] ^ family) + (h >> 29);
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
    return (size_t)(h % (FAILURE_LIMIT_SLOTS / WAYS)) * WAYS;
}

static double tokens_now(const failure_limit_t *fl, const entry_t *e, uint64_t now_ms) {
    double t = e->tokens + (double)(now_ms > e->last_ms ? now_ms - e->last_ms : 0) * fl->per_ms;
    return t > fl->burst ? fl->burst : t;
}

/* The address's entry, or NULL when it has none (create: make one, replacing the entry of its
 * set with the most tokens). */
static entry_t *find(failure_limit_t *fl, const struct sockaddr *sa, uint64_t now_ms, bool create) {
    uint8_t k[16], family = 0;
    if (!key_of(sa, k, &family)) return NULL;
    entry_t *set = &fl->entries[set_of(fl, k, family)], *victim = NULL;
    double most = -1;
    for (int i = 0; i < WAYS; i++) {
        entry_t *e = &set[i];
        if (e->used && e->family == family && memcmp(e->addr, k, 16) == 0) return e;
        double t = e->used ? tokens_now(fl, e, now_ms) : (double)fl->burst + 1;
        if (t > most) {
            most = t;
            victim = e;
        }
    }
    if (!create) return NULL;
    *victim = (entry_t){.used = true, .family = family, .tokens = fl->burst, .last_ms = now_ms};
    memcpy(victim->addr, k, 16);
    return victim;
}

unsigned failure_limit_wait(failure_limit_t *fl, const struct sockaddr *addr, uint64_t now_ms) {
    entry_t *e = fl ? find(fl, addr, now_ms, false) : NULL;
    if (!e) return 0;
    double t = tokens_now(fl, e, now_ms);
    if (t >= 1) return 0;
    double s = ceil((1 - t) / fl->per_ms / 1000.0);
    return s < 1 ? 1 : (unsigned)s;
}

void failure_limit_fail(failure_limit_t *fl, const struct sockaddr *addr, uint64_t now_ms) {
    entry_t *e = fl ? find(fl, addr, now_ms, true) : NULL;
    if (!e) return;
    double t = tokens_now(fl, e, now_ms) - 1;
    e->tokens = t < 0 ? 0 : t;
    e->last_ms = now_ms;
}
