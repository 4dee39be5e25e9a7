/* The machine's load as /pressure reports it: CPU busy fraction between two samples, and the
 * memory in use, from /proc (Linux). procfs reads do not touch a disk, so the loop thread may
 * sample; the daemon does so every few seconds.
 *
 * Ownership: the caller owns the system_load_t; nothing else is kept. */
#ifndef BROWSERD_SERVICE_SYSTEM_LOAD_H
#define BROWSERD_SERVICE_SYSTEM_LOAD_H

#include <stdint.h>

typedef struct {
    uint64_t busy, total; /* jiffies of the last sample (all CPUs) */
    double cpu;           /* busy fraction between the last two samples; -1 before two */
} system_load_t;

void system_load_init(system_load_t *l);
/* Takes a CPU sample (updates l->cpu). */
void system_load_sample(system_load_t *l);
/* Memory in use (1 - MemAvailable/MemTotal), now; -1 when /proc/meminfo cannot be read. */
double system_load_memory(void);

#endif
