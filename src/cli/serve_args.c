/* The values of `serve`'s options and their environment twins: see serve_args.h. */
#include "cli/serve_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

/* The spool beside an SQLite file (<db>.spool); for a database server, in the working
 * directory, named after the node (nodes of one machine need one each). */
void serve_default_spool_path(const char *db, const char *node_id, char *out, size_t cap) {
    if (!strstr(db, "://")) {
        snprintf(out, cap, "%s.spool", db);
        return;
    }
    char name[STORE_NODE_ID_MAX + 1] = "";
    if (node_id) snprintf(name, sizeof name, "%s", node_id);
    else gethostname(name, sizeof name - 1);
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            *p = '_';
    snprintf(out, cap, "./browserd-%s.spool", name);
}


/* "HOST:PORT", "[v6]:PORT". Returns 0, or -1 when malformed. */
int serve_parse_listen(const char *s, char *host, size_t host_cap, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return -1;
    const char *h = s, *h_end = colon;
    if (*h == '[') {
        if (h_end[-1] != ']') return -1;
        h++;
        h_end--;
    }
    size_t hl = (size_t)(h_end - h);
    if (hl == 0 || hl >= host_cap) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < 0 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}


/* "SEC" as a number of seconds (fractions allowed, for tests) into milliseconds. */
int serve_parse_seconds(const char *s, uint64_t *ms) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 31536000) return -1;
    *ms = (uint64_t)(v * 1000.0 + 0.5);
    return 0;
}

int serve_parse_count(const char *s, unsigned min, unsigned max, unsigned *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max) return -1;
    *out = (unsigned)v;
    return 0;
}


const char *serve_env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}
