/* What /metrics says of processes: browserd's own (resident memory, CPU time, open file
 * descriptors, start time; the names Prometheus' client libraries use) and the memory of
 * every process under it (the browsers, their supervisors and Chromium's helpers).
 *
 * Threading: every function reads /proc and may take milliseconds (a descendant walk with
 * hundreds of browsers: far more), so none runs on the loop thread; any other thread may
 * call them. Ownership: nothing is kept. */
#ifndef BROWSERD_SERVICE_PROCESS_STATS_H
#define BROWSERD_SERVICE_PROCESS_STATS_H

#include <stdint.h>
#include <sys/types.h>

typedef struct {
    double resident_bytes;     /* < 0 when unknown, like every field */
    double virtual_bytes;
    double cpu_seconds;        /* user + system, all threads */
    double max_fds;            /* the soft limit on open file descriptors */
    double start_time_seconds; /* since the Unix epoch */
} process_stats_t;

/* This process, cheaply (a few small /proc files). 0, or -1 when /proc could not be read (the
 * fields it had are filled). */
int process_stats_self(process_stats_t *out);

/* This process's open file descriptors, or -1. A walk of /proc/self/fd: with a thousand
 * sessions (5,000 descriptors) about 2 ms, so the sampler takes it, not every scrape. */
long process_stats_open_fds(void);

/* The processes under root (children, their children, ...; root itself not counted): how
 * many, and their memory as the sum of each one's proportional set size (a page shared by n
 * processes counts 1/n in each, so Chromium's shared pages are not counted again in every
 * helper; the resident size where the kernel has no smaps_rollup). 0 or -1 (no /proc). */
int process_stats_descendants(pid_t root, unsigned *count, uint64_t *memory_bytes);

#endif
