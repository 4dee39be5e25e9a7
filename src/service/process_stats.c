#include "service/process_stats.h"

#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads a small /proc file whole into buf (NUL-terminated); bytes read or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* The fields of /proc/PID/stat after the command, which may hold spaces and parentheses:
 * field k (1-based, as proc(5) numbers them; k >= 3) or NULL. */
static const char *stat_field(const char *stat, int k) {
    const char *p = strrchr(stat, ')');
    if (!p) return NULL;
    p++;
    for (int i = 3; i <= k; i++) {
        while (*p == ' ') p++;
        if (!*p) return NULL;
        if (i == k) return p;
        while (*p && *p != ' ') p++;
    }
    return NULL;
}

/* When this process started, since the epoch: boot time + its start in clock ticks since boot.
 * Read once (it does not change), not at every scrape. -1 if unknown. */
static double start_time;
static void read_start_time(void) {
    start_time = -1;
    char buf[8192];
    long ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0 || read_small("/proc/stat", buf, sizeof buf) < 0) return;
    const char *bt = strstr(buf, "\nbtime ");
    if (!bt) return;
    double boot = strtod(bt + 7, NULL);
    const char *start = NULL;
    if (read_small("/proc/self/stat", buf, sizeof buf) > 0 && (start = stat_field(buf, 22)))
        start_time = boot + strtod(start, NULL) / (double)ticks;
}

int process_stats_self(process_stats_t *out) {
    out->resident_bytes = out->virtual_bytes = out->cpu_seconds = -1;
    out->max_fds = out->start_time_seconds = -1;
    int rc = 0;
    long page = sysconf(_SC_PAGESIZE);
    char buf[1024];
    unsigned long long size = 0, resident = 0;
    if (read_small("/proc/self/statm", buf, sizeof buf) > 0 && sscanf(buf, "%llu %llu", &size, &resident) == 2) {
        out->virtual_bytes = (double)size * (double)page;
        out->resident_bytes = (double)resident * (double)page;
    } else {
        rc = -1;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        out->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                           (double)ru.ru_stime.tv_usec / 1e6;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) out->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_start_time);
    out->start_time_seconds = start_time;
    return rc;
}

long process_stats_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* not the descriptor of this walk */
}

typedef struct {
    pid_t pid, ppid;
    int under; /* a descendant of root: 0 not known yet, 1 yes, -1 no */
} proc_t;

static int by_pid(const void *a, const void *b) {
    pid_t x = ((const proc_t *)a)->pid, y = ((const proc_t *)b)->pid;
    return (x > y) - (x < y);
}

/* Whether procs[i] is under root, following parents (sorted by pid) and remembering each
 * answer, so that the walk of all processes is n log n. */
static int resolve_under(proc_t *procs, size_t n, size_t i, pid_t root, int depth) {
    if (procs[i].under) return procs[i].under;
    int under = -1;
    if (procs[i].ppid == root) {
        under = 1;
    } else if (procs[i].ppid > 1 && depth < 64) {
        proc_t key = {.pid = procs[i].ppid};
        proc_t *parent = bsearch(&key, procs, n, sizeof *procs, by_pid);
        if (parent) under = resolve_under(procs, n, (size_t)(parent - procs), root, depth + 1);
    }
    procs[i].under = under;
    return under;
}

/* Proportional set size of one process in bytes, its resident size when the kernel has no
 * smaps_rollup, 0 when it is gone. */
static uint64_t process_memory(pid_t pid, long page) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    if (read_small(path, buf, sizeof buf) > 0) {
        const char *p = strstr(buf, "\nPss:");
        if (p) return strtoull(p + 5, NULL, 10) * 1024u;
    }
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    unsigned long long size, resident;
    if (read_small(path, buf, sizeof buf) > 0 && sscanf(buf, "%llu %llu", &size, &resident) == 2)
        return resident * (uint64_t)page;
    return 0;
}

int process_stats_descendants(pid_t root, unsigned *count, uint64_t *memory_bytes) {
    *count = 0;
    *memory_bytes = 0;
    DIR *d = opendir("/proc");
    if (!d) return -1;
    proc_t *procs = NULL;
    size_t n = 0, cap = 0;
    char path[64], buf[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        snprintf(path, sizeof path, "/proc/%.20s/stat", e->d_name);
        const char *ppid;
        if (read_small(path, buf, sizeof buf) <= 0 || !(ppid = stat_field(buf, 4))) continue; /* gone meanwhile */
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 512;
            proc_t *grown = realloc(procs, ncap * sizeof *grown);
            if (!grown) break; /* out of memory: what was read is counted */
            procs = grown;
            cap = ncap;
        }
        procs[n++] = (proc_t){.pid = (pid_t)atoi(e->d_name), .ppid = (pid_t)atoi(ppid), .under = 0};
    }
    closedir(d);
    if (n) qsort(procs, n, sizeof *procs, by_pid);
    for (size_t i = 0; i < n; i++) resolve_under(procs, n, i, root, 0);
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < n; i++) {
        if (procs[i].under != 1) continue;
        (*count)++;
        *memory_bytes += process_memory(procs[i].pid, page);
    }
    free(procs);
    return 0;
}
