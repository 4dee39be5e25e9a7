/* The machine's load as /pressure reports it, from the kernel: the 1-minute load average per
 * core, and the memory in use. procfs reads do not touch a disk: the loop thread may ask.
 *
 * Ownership: nothing is kept. */
#ifndef BROWSERD_SERVICE_SYSTEM_LOAD_H
#define BROWSERD_SERVICE_SYSTEM_LOAD_H

/* The 1-minute load average divided by the online cores; -1 when unknown. */
double system_load_cpu(void);
/* Memory in use (1 - MemAvailable/MemTotal), now; -1 when /proc/meminfo cannot be read. */
double system_load_memory(void);

#endif
